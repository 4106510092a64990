//! Helpers for the client tests (rsvc, rsvstat, rsvok): real supervisors on temp service
//! dirs, our binaries under the reference programs' names, output comparison.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{Guard, TempDir, bin, kill_pid, run, script, wait_for};

pub const LIMIT: Duration = Duration::from_secs(20);

/// Which real supervisor runs a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Runsv,
    S6,
}

/// A service dir under a real supervisor. Dropping it kills the supervisor and the service
/// (by pid).
pub struct Svc {
    pub dir: PathBuf,
    pub kind: Kind,
    pub sup: Guard,
    /// Service pids seen by wait_up, killed on drop even if the status file was replaced.
    pub seen: std::cell::RefCell<Vec<u64>>,
}

impl Svc {
    /// Creates `parent/name` with `run` (and optionally `finish`, a `down` file, a
    /// `notification-fd`) and starts the supervisor; waits until the status file exists.
    pub fn start(parent: &Path, name: &str, kind: Kind, run_body: &str) -> Svc {
        let dir = parent.join(name);
        script(&dir.join("run"), &format!("#!/bin/sh\n{run_body}\n"));
        Svc::supervise(dir, kind)
    }

    pub fn supervise(dir: PathBuf, kind: Kind) -> Svc {
        let prog = match kind {
            Kind::Runsv => "runsv",
            Kind::S6 => "s6-supervise",
        };
        let mut cmd = Command::new(prog);
        cmd.arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // The reference passes signals ignored at its start on to the service (a shell cannot
        // trap those): the test run may have been started in the background, where SIGINT and
        // SIGQUIT are ignored. Start it with every disposition at its default, as an init does.
        // SAFETY: signal(2) is async-signal-safe; called in the child between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                for sig in 1..32 {
                    if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                        libc::signal(sig, libc::SIG_DFL);
                    }
                }
                Ok(())
            });
        }
        let sup = Guard::spawn(&mut cmd);
        let status = dir.join("supervise/status");
        wait_for(Duration::from_secs(5), "status file", || {
            fs::metadata(&status)
                .ok()
                .filter(|m| m.len() >= 20)
                .map(|_| ())
        });
        Svc {
            dir,
            kind,
            sup,
            seen: Default::default(),
        }
    }

    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// The service's pid from the status file, 0 if none.
    pub fn pid(&self) -> u64 {
        pid_of(&self.dir)
    }

    /// Waits until the service runs (pid != 0, not finishing) and returns its pid.
    pub fn wait_up(&self) -> u64 {
        let p = wait_for(Duration::from_secs(5), "service up", || {
            let v = rsv::svview::View::read(&self.dir).ok()?;
            (v.up).then_some(v.pid)
        });
        self.seen.borrow_mut().push(p);
        p
    }

    /// Waits until the service is down (no pid).
    pub fn wait_down(&self) {
        wait_for(Duration::from_secs(5), "service down", || {
            let v = rsv::svview::View::read(&self.dir).ok()?;
            (v.pid == 0).then_some(())
        })
    }
}

pub fn pid_of(dir: &Path) -> u64 {
    rsv::svview::View::read(dir).map(|v| v.pid).unwrap_or(0)
}

impl Drop for Svc {
    fn drop(&mut self) {
        let pid = self.pid();
        if let Some(c) = self.sup.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.sup.0 = None;
        kill_pid(pid as i32);
        for p in self.seen.borrow().iter() {
            kill_pid(*p as i32);
        }
        let logpid = pid_of(&self.dir.join("log"));
        kill_pid(logpid as i32);
    }
}

/// A temp dir holding symlinks to our binaries under the reference names
/// (`sv`, `s6-svc`, `s6-svstat`, `s6-svok`) and any other name asked for.
pub struct Names {
    pub dir: TempDir,
}

impl Names {
    pub fn new() -> Names {
        let dir = TempDir::new("names");
        for (n, b) in [
            ("sv", "rsvc"),
            ("s6-svc", "rsvc"),
            ("s6-svstat", "rsvstat"),
            ("s6-svok", "rsvok"),
        ] {
            std::os::unix::fs::symlink(bin(b), dir.path().join(n)).unwrap();
        }
        Names { dir }
    }
    /// Adds `name` as another link to `rsvc` (for LSB mode) and returns its path.
    pub fn link(&self, name: &str, target: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        let _ = std::os::unix::fs::symlink(bin(target), &p);
        p
    }
    pub fn ours(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs a command in `cwd` with `env`; returns (code, stdout, stderr).
pub fn exec(prog: &Path, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(prog);
    c.args(args).current_dir(cwd);
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c, LIMIT)
}

/// Runs the reference program and ours (same args, cwd, env) and asserts identical exit code,
/// stdout and stderr. Retries a few times when the outputs differ, since a second may tick
/// between the two runs.
pub fn same(
    reference: &str,
    ours: &Path,
    args: &[&str],
    cwd: &Path,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let refprog = PathBuf::from(
        String::from_utf8(
            Command::new("sh")
                .args(["-c", &format!("command -v {reference}")])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim(),
    );
    let mut last = None;
    for _ in 0..4 {
        let a = exec(&refprog, args, cwd, env);
        let b = exec(ours, args, cwd, env);
        if a == b {
            return a;
        }
        last = Some((a, b));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (a, b) = last.unwrap();
    panic!("{reference} {args:?} differs:\nreference: {a:?}\nours:      {b:?}");
}

/// `true` when running as root (permission tests then drop to nobody with setpriv).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs `prog args` as user nobody (needs root and setpriv); None when impossible.
pub fn exec_as_nobody(prog: &Path, args: &[&str], cwd: &Path) -> Option<(i32, String, String)> {
    if !is_root() || !Path::new("/usr/bin/setpriv").exists() {
        return None;
    }
    let mut c = Command::new("/usr/bin/setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(prog)
        .args(args)
        .current_dir(cwd);
    Some(run(&mut c, LIMIT))
}
