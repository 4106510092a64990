//! Real containers for the tests: podman with the runc runtime, images made from a root
//! directory (busybox-static and rsv's multi-call binary with its links) that is `tar`red and
//! `podman import`ed, or built with `podman build` from such a base; no registry is used.
//!
//! The runtime is probed once per test binary. When it does not work, a test fails with the
//! reason under `RSV_REQUIRE_REFERENCES=1` (as in CI) and prints `SKIPPED: ...` elsewhere.
//! Every image and container a test makes has a unique name and is removed when its handle
//! is dropped (declare the image before its containers, so the containers go first).
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{TempDir, bin, run};

/// Bound of one podman command (a build with a RUN step, an import of the root, a stop).
pub const PODMAN_LIMIT: Duration = Duration::from_secs(120);

/// A working podman: the options every `podman run` and `podman build` needs here.
pub struct Runtime {
    /// `--runtime runc` (crun fails on some hosts' cgroup layout) and `--ulimit` values below
    /// the current ones (podman's defaults are refused without CAP_SYS_RESOURCE).
    pub opts: Vec<String>,
}

fn fail_or_skip(msg: &str) -> Option<&'static Runtime> {
    if std::env::var_os("RSV_REQUIRE_REFERENCES").is_some() {
        panic!("no working container runtime: {msg}");
    }
    eprintln!("SKIPPED: no working container runtime: {msg}; install podman runc busybox-static");
    None
}

fn rlimit_cap(res: libc::__rlimit_resource_t, cap: u64) -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into the struct we pass.
    if unsafe { libc::getrlimit(res, &mut rl) } != 0 {
        return cap.min(1024);
    }
    rl.rlim_cur.min(rl.rlim_max).min(cap)
}

/// The runtime, probed once: podman, runc and busybox present, and a container actually runs.
pub fn podman() -> Option<&'static Runtime> {
    static RT: OnceLock<Result<Runtime, String>> = OnceLock::new();
    match RT.get_or_init(probe) {
        Ok(rt) => Some(rt),
        Err(msg) => fail_or_skip(msg),
    }
}

fn probe() -> Result<Runtime, String> {
    for p in ["podman", "runc"] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err(format!("{p} is not installed"));
        }
    }
    if busybox().is_none() {
        return Err("busybox (static) is not installed".into());
    }
    // The limits a container gets: the lower of ours and a small fixed value. podman's
    // defaults are refused without CAP_SYS_RESOURCE, and so were values close to ours
    // (nproc at our own hard limit, and one below it, on a Debian 12 host).
    let nofile = rlimit_cap(libc::RLIMIT_NOFILE, 1024);
    let nproc = rlimit_cap(libc::RLIMIT_NPROC, 4096);
    let rt = Runtime {
        opts: vec![
            "--runtime".into(),
            "runc".into(),
            // No network is needed, so none is set up (no network plugin needed either).
            "--network".into(),
            "none".into(),
            "--ulimit".into(),
            format!("nofile={nofile}:{nofile}"),
            "--ulimit".into(),
            format!("nproc={nproc}:{nproc}"),
        ],
    };
    // A container that runs: an image with busybox alone.
    let root = Root::bare("probe");
    let img = root
        .try_import(&[])
        .map_err(|e| format!("podman import failed: {e}"))?;
    let mut cmd = Command::new("podman");
    cmd.args(["run", "--rm"])
        .args(&rt.opts)
        .arg(&img.name)
        .args(["/bin/sh", "-c", "exit 42"]);
    let (code, _, err) = run(&mut cmd, PODMAN_LIMIT);
    if code != 42 {
        return Err(format!(
            "podman run (runc) of a busybox image exited {code}: {}",
            err.trim()
        ));
    }
    Ok(rt)
}

/// The host's static busybox.
pub fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// A unique name for an image or container of this test process.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "rsv-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn podman_ok(args: &[&str]) -> Result<String, String> {
    let (code, out, err) = run(Command::new("podman").args(args), PODMAN_LIMIT);
    if code == 0 {
        Ok(out)
    } else {
        Err(format!(
            "podman {} exited {code}: {}",
            args.join(" "),
            err.trim()
        ))
    }
}

/// A root directory being made into an image.
pub struct Root {
    tmp: TempDir,
}

/// busybox applets left out of the image: rsv's links stand for these programs.
const NOT_BUSYBOX: &[&str] = &["runsv", "runsvdir", "sv", "svlogd", "chpst", "svc", "svok"];

impl Root {
    /// busybox alone (with its applets as links), and the usual top directories.
    pub fn bare(tag: &str) -> Root {
        let tmp = TempDir::new(&format!("root-{tag}"));
        let r = Root { tmp };
        for d in ["bin", "etc", "run", "proc", "sys", "dev", "root", "var"] {
            fs::create_dir_all(r.path(d)).unwrap();
        }
        for d in ["tmp", "var/tmp"] {
            fs::create_dir_all(r.path(d)).unwrap();
            fs::set_permissions(r.path(d), fs::Permissions::from_mode(0o1777)).unwrap();
        }
        fs::write(r.path("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(r.path("etc/group"), "root:x:0:\n").unwrap();
        if let Some(bb) = busybox() {
            fs::copy(&bb, r.path("bin/busybox")).unwrap();
            let (_, list, _) = run(Command::new(&bb).arg("--list"), Duration::from_secs(20));
            for a in list.split_whitespace() {
                let link = r.path("bin").join(a);
                if !NOT_BUSYBOX.contains(&a) && fs::symlink_metadata(&link).is_err() {
                    std::os::unix::fs::symlink("busybox", &link).unwrap();
                }
            }
        }
        r
    }

    /// busybox plus rsv's multi-call binary as /bin/rsv with the links `rsv install` makes
    /// (`extra`: `--runit`, `--s6`), as an image's `RUN rsv install /bin` would.
    pub fn with_rsv(tag: &str, extra: &[&str]) -> Root {
        let r = Root::bare(tag);
        r.install_rsv("bin", extra);
        r
    }

    /// Copies rsv to DIR/rsv in the root and runs that copy's `install` on DIR.
    pub fn install_rsv(&self, dir: &str, extra: &[&str]) {
        let dest = self.path(dir).join("rsv");
        let _ = fs::remove_file(&dest);
        crate::common::copy_exe(&bin("rsv"), &dest);
        let (code, _, err) = crate::common::run(
            Command::new(&dest)
                .arg("install")
                .arg("-f")
                .args(extra)
                .arg(self.path(dir)),
            Duration::from_secs(20),
        );
        assert_eq!(code, 0, "rsv install: {err}");
    }

    /// Path inside the root (`rel` without a leading slash).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel.trim_start_matches('/'))
    }

    /// The root directory itself.
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Writes a file (parents created).
    pub fn file(&self, rel: &str, body: &str) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }

    /// Writes an executable script (parents created).
    pub fn script(&self, rel: &str, body: &str) {
        crate::common::script(&self.path(rel), body);
    }

    /// Imports the root (owned by root in the image, whoever runs the test) with `changes`
    /// (`ENTRYPOINT [...]`, `CMD [...]`, `USER ...`: podman import --change).
    pub fn import(&self, changes: &[&str]) -> Image {
        self.try_import(changes).unwrap()
    }

    fn try_import(&self, changes: &[&str]) -> Result<Image, String> {
        let name = format!("localhost/{}:1", unique("img"));
        let mut cmd = Command::new("podman");
        cmd.arg("import");
        // As any base image has it (exec probes and `podman exec NAME prog` look prog up).
        cmd.args([
            "--change",
            "ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        ]);
        for c in changes {
            cmd.arg("--change").arg(c);
        }
        cmd.args(["-", &name]);
        let tar = Command::new("tar")
            .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
            .arg(self.dir())
            .args(["-cf", "-", "."])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("tar: {e}"))?;
        cmd.stdin(tar.stdout.unwrap());
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("podman: {e}"))?;
        let out = wait_output(child, PODMAN_LIMIT)?;
        if !out.0 {
            return Err(out.2);
        }
        Ok(Image { name })
    }
}

fn wait_output(
    child: std::process::Child,
    limit: Duration,
) -> Result<(bool, String, String), String> {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(o)) => Ok((
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => {
            crate::common::kill_pid(pid);
            Err(format!("no answer within {limit:?}"))
        }
    }
}

/// An image, removed (with `podman rmi -f`) when dropped.
pub struct Image {
    pub name: String,
}

impl Image {
    /// `podman build` of `containerfile` in the context directory `ctx` (which the caller
    /// fills), `FROM` this image; `docker` format so HEALTHCHECK is kept.
    pub fn build(&self, rt: &Runtime, ctx: &Path, containerfile: &str) -> Image {
        build(rt, ctx, &containerfile.replace("@BASE@", &self.name))
    }
}

/// `podman build` of `containerfile` (written as written) in the context directory `ctx`;
/// `docker` format so HEALTHCHECK is kept.
pub fn build(rt: &Runtime, ctx: &Path, containerfile: &str) -> Image {
    {
        let name = format!("localhost/{}:1", unique("build"));
        fs::write(ctx.join("Containerfile"), containerfile).unwrap();
        let mut cmd = Command::new("podman");
        cmd.args(["build", "--pull=never", "--format", "docker", "-q"])
            .args(&rt.opts)
            .args(["-t", &name, "-f"])
            .arg(ctx.join("Containerfile"))
            .arg(ctx);
        let (code, out, err) = run(&mut cmd, PODMAN_LIMIT);
        let img = Image { name };
        assert_eq!(code, 0, "podman build failed: {out}{err}");
        img
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = run(
            Command::new("podman").args(["rmi", "-f", &self.name]),
            PODMAN_LIMIT,
        );
    }
}

/// A container, removed (`podman rm -f -t 0`) when dropped.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `podman run -d` of `image` with the runtime options, `opts` and the command `cmd`
    /// (empty: the image's CMD).
    pub fn run(rt: &Runtime, image: &Image, opts: &[&str], cmd: &[&str]) -> Container {
        let c = Container { name: unique("ct") };
        let mut p = Command::new("podman");
        p.args(["run", "-d", "--name", &c.name])
            .args(&rt.opts)
            .args(opts)
            .arg(&image.name)
            .args(cmd);
        let (code, out, err) = run(&mut p, PODMAN_LIMIT);
        assert_eq!(code, 0, "podman run failed: {out}{err}");
        c
    }

    /// `podman exec` (as root unless `opts` says otherwise): (code, stdout, stderr).
    pub fn exec_as(&self, opts: &[&str], args: &[&str]) -> (i32, String, String) {
        run(
            Command::new("podman")
                .arg("exec")
                .args(opts)
                .arg(&self.name)
                .args(args),
            PODMAN_LIMIT,
        )
    }

    pub fn exec(&self, args: &[&str]) -> (i32, String, String) {
        self.exec_as(&[], args)
    }

    /// `sh -c SCRIPT` in the container; panics unless it exits 0; returns its stdout.
    pub fn sh(&self, script: &str) -> String {
        let (code, out, err) = self.exec(&["/bin/sh", "-c", script]);
        assert_eq!(code, 0, "{script}: exit {code}: {out}{err}");
        out
    }

    /// Polls `sh -c SCRIPT` until it exits 0 (at most `limit`); returns its stdout.
    pub fn wait_sh(&self, limit: Duration, script: &str) -> String {
        let end = Instant::now() + limit;
        loop {
            let (code, out, err) = self.exec(&["/bin/sh", "-c", script]);
            if code == 0 {
                return out;
            }
            if Instant::now() >= end {
                panic!(
                    "timed out after {limit:?} waiting for `{script}`; last: exit {code}: {out}{err}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A field of `podman inspect` (a Go template such as `{{.State.Status}}`).
    pub fn inspect(&self, fmt: &str) -> String {
        podman_ok(&["inspect", "--format", fmt, &self.name])
            .unwrap()
            .trim()
            .to_string()
    }

    /// When the container's process ended (ns since the epoch), once it has.
    pub fn finished_ns(&self) -> u128 {
        self.inspect("{{.State.FinishedAt.UnixNano}}")
            .parse()
            .unwrap()
    }

    /// `podman stop -t GRACE`: returns how long after the stop began the container's
    /// process ended (from the runtime's own record), and the exit code.
    pub fn stop(&self, grace_s: u32) -> (Duration, i32) {
        let t0 = now_ns();
        podman_ok(&["stop", "-t", &grace_s.to_string(), &self.name]).unwrap();
        let end = self.finished_ns();
        let code = self.exit_code();
        let took = Duration::from_nanos(end.saturating_sub(t0) as u64);
        eprintln!("podman stop: the container ended {took:?} after the stop began, exit {code}");
        (took, code)
    }

    /// A file of the container, running or stopped (`podman cp`).
    pub fn read_file(&self, path: &str) -> String {
        let tmp = TempDir::new("cp");
        let dest = tmp.path().join("file");
        podman_ok(&[
            "cp",
            &format!("{}:{path}", self.name),
            dest.to_str().unwrap(),
        ])
        .unwrap();
        fs::read_to_string(dest).unwrap()
    }

    /// `podman start` of the container again (same writable layer, as a restart policy does).
    pub fn start(&self) {
        podman_ok(&["start", &self.name]).unwrap();
    }

    /// `podman kill --signal SIG`.
    pub fn kill(&self, sig: &str) {
        podman_ok(&["kill", "--signal", sig, &self.name]).unwrap();
    }

    /// Waits (bounded) for the container to end on its own and returns its exit code as
    /// `podman wait` reports it.
    pub fn wait(&self, limit: Duration) -> i32 {
        let (code, out, err) = run(Command::new("podman").args(["wait", &self.name]), limit);
        assert_eq!(code, 0, "podman wait: {err}");
        out.trim().parse().unwrap()
    }

    pub fn exit_code(&self) -> i32 {
        self.inspect("{{.State.ExitCode}}").parse().unwrap()
    }

    /// `podman logs`: (stdout, stderr) of the container so far.
    pub fn logs(&self) -> (String, String) {
        let (code, out, err) = run(
            Command::new("podman").args(["logs", &self.name]),
            PODMAN_LIMIT,
        );
        assert_eq!(code, 0, "podman logs: {err}");
        (out, err)
    }

    /// Polls `podman logs` until `pred(stdout, stderr)` holds.
    pub fn wait_logs(&self, limit: Duration, what: &str, pred: impl Fn(&str, &str) -> bool) {
        let end = Instant::now() + limit;
        loop {
            let (o, e) = self.logs();
            if pred(&o, &e) {
                return;
            }
            if Instant::now() >= end {
                let state = self.inspect("{{.State.Status}} {{.State.ExitCode}}");
                panic!(
                    "timed out after {limit:?} waiting for {what}; container {state}; logs:\n{o}{e}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The container's processes, from its /proc.
    pub fn procs(&self) -> Vec<Proc> {
        let out = self.sh(
            "for d in /proc/[0-9]*; do s=$(cat $d/stat 2>/dev/null) || continue; \
             c=$(tr '\\0' ' ' < $d/cmdline 2>/dev/null); \
             echo \"${d#/proc/}|${s##*) }|$c\"; done",
        );
        out.lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, '|');
                let pid = it.next()?.parse().ok()?;
                let mut st = it.next()?.split_whitespace();
                let state = st.next()?.chars().next()?;
                let ppid = st.next()?.parse().ok()?;
                let cmd = it.next().unwrap_or("").trim().to_string();
                Some(Proc {
                    pid,
                    state,
                    ppid,
                    cmd,
                })
            })
            .collect()
    }
}

/// One process of a container (pids as the container sees them).
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
    /// argv joined by spaces.
    pub cmd: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = run(
            Command::new("podman").args(["rm", "-f", "-t", "0", &self.name]),
            PODMAN_LIMIT,
        );
    }
}

pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A build context directory for `Image::build`.
pub fn context(tag: &str) -> TempDir {
    TempDir::new(&format!("ctx-{tag}"))
}

/// Writes `body` to `path` (for build contexts).
pub fn write(path: &Path, body: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = fs::File::create(path).unwrap();
    f.write_all(body.as_bytes()).unwrap();
}

/// Where the tests keep what is slow to make (a Debian root): `$RSV_TEST_CACHE`, else
/// /var/tmp/rsv-test-cache (outside the repository, kept between runs).
pub fn cache_dir() -> PathBuf {
    let d = std::env::var_os("RSV_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/rsv-test-cache"));
    fs::create_dir_all(&d).unwrap();
    d
}

/// Debian release of the image roots.
pub const DEBIAN_SUITE: &str = "bookworm";

/// A tar of a minimal Debian root with `packages` (comma-separated), made once with
/// mmdebstrap from Debian's package archive and cached (under a lock, so that concurrent
/// test processes make it once). None (skipped, or a failure in CI) when it cannot be made.
pub fn debian_root_tar(packages: &str) -> Option<PathBuf> {
    let dir = cache_dir();
    let tar = dir.join(format!(
        "debian-{DEBIAN_SUITE}-minbase-{}.tar",
        packages.replace(',', "-")
    ));
    let lock = fs::File::create(dir.join(".lock")).unwrap();
    // SAFETY: flock(2) on a descriptor we own; released when `lock` is closed.
    unsafe {
        libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX);
    }
    if tar.is_file() {
        return Some(tar);
    }
    let ok = Command::new("sh")
        .args(["-c", "command -v mmdebstrap"])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        fail_or_skip_image("mmdebstrap is not installed (apt-get install mmdebstrap)");
        return None;
    }
    let part = dir.join(format!("{}.part", std::process::id()));
    let (code, _, err) = run(
        Command::new("mmdebstrap")
            .args(["--variant=minbase", "--quiet"])
            .arg(format!("--include={packages}"))
            .arg(DEBIAN_SUITE)
            .arg(&part),
        Duration::from_secs(900),
    );
    if code != 0 {
        let _ = fs::remove_file(&part);
        fail_or_skip_image(&format!("mmdebstrap exited {code}: {}", err.trim()));
        return None;
    }
    fs::rename(&part, &tar).unwrap();
    Some(tar)
}

fn fail_or_skip_image(msg: &str) {
    if std::env::var_os("RSV_REQUIRE_REFERENCES").is_some() {
        panic!("cannot make the Debian root: {msg}");
    }
    eprintln!("SKIPPED: cannot make the Debian root: {msg}");
}

/// Imports a root tar file as an image.
pub fn import_tar(tar: &Path, changes: &[&str]) -> Image {
    let name = format!("localhost/{}:1", unique("deb"));
    let mut cmd = Command::new("podman");
    cmd.arg("import");
    for c in changes {
        cmd.arg("--change").arg(c);
    }
    cmd.arg(tar).arg(&name);
    let (code, out, err) = run(&mut cmd, PODMAN_LIMIT);
    let img = Image { name };
    assert_eq!(code, 0, "podman import {}: {out}{err}", tar.display());
    img
}
