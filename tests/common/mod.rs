//! Helpers shared by the integration tests: temp dirs, bounded waits, process clean-up and
//! detection of the reference programs (runit, s6).
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "rsv-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes an executable script.
pub fn script(path: &Path, body: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, body).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The content of `p` once it is there and ends with a newline (a script may be caught between
/// creating the file and writing its line).
pub fn whole_line(p: &Path, limit: Duration) -> String {
    wait_for(limit, &p.display().to_string(), || {
        fs::read_to_string(p).ok().filter(|s| s.ends_with('\n'))
    })
}

/// Polls `f` every 10 ms until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= end {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped, so a failing test
/// leaves nothing behind. Processes it started in their own sessions are the test's to end.
pub struct Guard(pub Option<Child>);

impl Guard {
    pub fn spawn(cmd: &mut Command) -> Guard {
        Guard(Some(cmd.spawn().expect("spawn")))
    }
    pub fn pid(&self) -> i32 {
        self.0.as_ref().unwrap().id() as i32
    }
    /// Sends a signal to the child.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }
    /// Waits (bounded) for the child to exit and returns its status.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let child = self.0.as_mut().unwrap();
        let st = wait_for(limit, "process exit", || child.try_wait().unwrap());
        self.0 = None;
        st
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Is `pid` alive (and not a zombie)?
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// Kills `pid` with SIGKILL if alive (for clean-up of service processes by pid).
pub fn kill_pid(pid: i32) {
    if pid > 0 && alive(pid) {
        // SAFETY: kill(2) on a pid the test learned from its own supervisor.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Copies `servicedirs-examples/NAME` to `dest` (`cp -a`, so modes stay) and returns `dest`.
pub fn copy_example(name: &str, dest: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("servicedirs-examples")
        .join(name);
    let (code, _, err) = run(
        Command::new("cp").arg("-a").arg(&src).arg(dest),
        Duration::from_secs(20),
    );
    assert_eq!(code, 0, "cp -a {}: {err}", src.display());
    dest.to_path_buf()
}

/// Copies an executable (mode 0755) and waits (bounded) until it can be run: a child forked
/// by another test thread while the copy was open for writing holds that fd until it execs,
/// and exec of the copy fails with ETXTBSY meanwhile. The copy is run with `--list` (rsv).
pub fn copy_exe(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::copy(from, to).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).unwrap();
    wait_for(
        Duration::from_secs(20),
        "the copy to be executable",
        || match Command::new(to)
            .arg("--list")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => None,
            _ => Some(()),
        },
    );
}

/// Path of one of our binaries, built by cargo for the integration tests.
pub fn bin(name: &str) -> PathBuf {
    let p = match name {
        "rsupervise" => option_env!("CARGO_BIN_EXE_rsupervise"),
        "rsvc" => option_env!("CARGO_BIN_EXE_rsvc"),
        "rsvstat" => option_env!("CARGO_BIN_EXE_rsvstat"),
        "rsvok" => option_env!("CARGO_BIN_EXE_rsvok"),
        "rsvlog" => option_env!("CARGO_BIN_EXE_rsvlog"),
        "rsvtai64nlocal" => option_env!("CARGO_BIN_EXE_rsvtai64nlocal"),
        "rsvscan" => option_env!("CARGO_BIN_EXE_rsvscan"),
        "rsvscanctl" => option_env!("CARGO_BIN_EXE_rsvscanctl"),
        "rsv" => option_env!("CARGO_BIN_EXE_rsv"),
        _ => None,
    };
    PathBuf::from(p.unwrap_or_else(|| panic!("binary {name} is not built by this crate")))
}

/// True when every named reference program is on PATH. When one is missing, the test is
/// reported as skipped (with the install command), unless RSV_REQUIRE_REFERENCES is set
/// (as in CI), where it fails.
pub fn have_refs(progs: &[&str]) -> bool {
    let missing: Vec<&str> = progs
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {p}")])
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "reference programs missing: {}; install them with: apt-get install -y runit s6 execline",
        missing.join(" ")
    );
    if std::env::var_os("RSV_REQUIRE_REFERENCES").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// Runs a command to completion with a bound, returning (exit code, stdout, stderr).
pub fn run(cmd: &mut Command, limit: Duration) -> (i32, String, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(out)) => (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Ok(Err(e)) => panic!("waiting for command: {e}"),
        Err(_) => {
            kill_pid(pid);
            panic!("command {cmd:?} did not finish within {limit:?}");
        }
    }
}

/// What a log directory holds, in order: the archives (`@…`) by name, then `current`.
/// A missing directory or `current` counts as empty.
pub fn logdir_content(dir: &Path) -> Vec<u8> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('@'))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        out.extend(fs::read(dir.join(n)).unwrap_or_default());
    }
    out.extend(fs::read(dir.join("current")).unwrap_or_default());
    out
}
