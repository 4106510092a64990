// Helpers for the rsvscan tests, included with `#[path = "common/scan.rs"] mod scan;`.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Can this machine run `unshare --pid --fork --mount-proc`? If not: skip (or fail under
/// RSV_REQUIRE_REFERENCES).
pub fn unshare_ok() -> bool {
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let msg = "unshare --pid --fork --mount-proc is not permitted here";
        if std::env::var_os("RSV_REQUIRE_REFERENCES").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
    }
    ok
}

/// rsvscan running as PID 1 of a new pid namespace. Dropping it SIGKILLs PID 1, which ends
/// the whole namespace.
pub struct Ns {
    pub guard: Guard,
    /// Host pid of rsvscan (PID 1 inside).
    pub init: i32,
    /// `/proc/PID/ns/pid` link text of the namespace.
    pub link: String,
    pub err: PathBuf,
}

impl Drop for Ns {
    fn drop(&mut self) {
        kill_pid(self.init);
    }
}

pub fn child_of(pid: i32) -> Option<i32> {
    let s = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

pub fn ppid(pid: i32) -> Option<i32> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn state(pid: i32) -> Option<char> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(')').next()?.trim_start().chars().next()
}

/// Starts `rsvscan ARGS DIR` as PID 1 of a new pid namespace, stderr to `err`.
pub fn start_ns(dir: &Path, args: &[&str], err: &Path) -> Ns {
    let mut full: Vec<std::ffi::OsString> = vec!["--supervisor".into(), bin("rsupervise").into()];
    full.extend(args.iter().map(|a| a.into()));
    full.push(dir.into());
    start_ns_prog(&bin("rsvscan"), &full, dir, err)
}

/// Starts `PROG ARGS` (ARGS include the scan dir `dir`) as PID 1 of a new pid namespace.
pub fn start_ns_prog(prog: &Path, args: &[std::ffi::OsString], dir: &Path, err: &Path) -> Ns {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    spawn_ns(cmd, dir, err)
}

/// `unshare ... rsvscan --supervisor RSUPERVISE ARGS DIR`, for callers that set more
/// (environment, stdout) before [`spawn_ns`].
pub fn ns_rsvscan(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(bin("rsvscan"))
        .arg("--supervisor")
        .arg(bin("rsupervise"))
        .args(args)
        .arg(dir)
        .stdin(Stdio::null());
    cmd
}

/// `unshare --pid [--net] ... env PATH=OURBINS:$PATH rsvscan --supervisor RSUPERVISE DIR`:
/// rsvscan as PID 1 with our programs first on PATH (for the scripts of the services), started
/// and listening.
pub fn start_ns_with_bins(dir: &Path, err: &Path, net: bool) -> Ns {
    let bindir = bin("rsvscan").parent().unwrap().to_path_buf();
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"]);
    if net {
        cmd.arg("--net");
    }
    cmd.arg("/usr/bin/env")
        .arg(format!(
            "PATH={}:{}",
            bindir.display(),
            std::env::var("PATH").unwrap_or_default()
        ))
        .arg(bin("rsvscan"))
        .arg("--supervisor")
        .arg(bin("rsupervise"))
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    spawn_ns(cmd, dir, err)
}

/// Spawns a prepared `unshare ...` command (stderr goes to `err`), finds its PID 1 and waits
/// until the scanner of `dir` listens.
pub fn spawn_ns(mut cmd: Command, dir: &Path, err: &Path) -> Ns {
    cmd.stderr(fs::File::create(err).unwrap());
    let guard = Guard::spawn(&mut cmd);
    let up = guard.pid();
    let init = wait_for(Duration::from_secs(5), "rsvscan as PID 1", || child_of(up));
    let link = wait_for(Duration::from_secs(5), "ns link", || {
        fs::read_link(format!("/proc/{init}/ns/pid"))
            .ok()
            .map(|l| l.display().to_string())
    });
    let ns = Ns {
        guard,
        init,
        link,
        err: err.to_path_buf(),
    };
    wait_listening(dir);
    ns
}

/// Waits until the control FIFO of `dir` has a reader.
pub fn wait_listening(dir: &Path) {
    let fifo = dir.join(".s6-svscan/control");
    wait_for(Duration::from_secs(5), "rsvscan listening", || {
        fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .ok()
            .map(|_| ())
    });
}

use std::os::unix::fs::OpenOptionsExt;

impl Ns {
    /// SIGTERM to rsvscan (PID 1); its exit code once the namespace is gone (15 s bound).
    pub fn stop(&mut self) -> Option<i32> {
        // SAFETY: kill(2) on rsvscan, PID 1 of the namespace this test started.
        unsafe {
            libc::kill(self.init, libc::SIGTERM);
        }
        self.guard.wait_exit(Duration::from_secs(15)).code()
    }
    /// Host pids of every process of the namespace.
    pub fn procs(&self) -> Vec<i32> {
        ns_procs(&self.link)
    }
    /// Host pid of the namespace's `nspid`.
    pub fn host_pid(&self, nspid: i32) -> Option<i32> {
        self.procs().into_iter().find(|&p| {
            fs::read_to_string(format!("/proc/{p}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("NSpid:"))
                        .and_then(|l| l.split_whitespace().last().map(str::to_string))
                })
                .and_then(|v| v.parse::<i32>().ok())
                == Some(nspid)
        })
    }
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }
}

pub fn ns_procs(link: &str) -> Vec<i32> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if fs::read_link(format!("/proc/{pid}/ns/pid"))
            .map(|l| l.display().to_string() == link)
            .unwrap_or(false)
        {
            v.push(pid);
        }
    }
    v
}

/// The pid in `SD/supervise/status` (either format), 0 if none.
pub fn status_pid(sd: &Path) -> i32 {
    match rsv::status::read_status(&sd.join("supervise")) {
        Ok(rsv::status::AnyStatus::Runit(r)) => r.pid as i32,
        Ok(rsv::status::AnyStatus::S6(s)) => s.pid as i32,
        Err(_) => 0,
    }
}

/// Waits for `SD` to be supervised with its run up; returns the elapsed time and ns pid.
pub fn wait_up(sd: &Path, limit: Duration) -> (Duration, i32) {
    let t0 = Instant::now();
    let pid = wait_for(limit, &format!("{} up", sd.display()), || {
        let p = status_pid(sd);
        (p > 0).then_some(p)
    });
    (t0.elapsed(), pid)
}

pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

pub fn cwd(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/cwd")).ok()
}
