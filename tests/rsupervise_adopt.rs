//! A supervisor started on a directory whose previous supervisor was killed with SIGKILL:
//! the old run (and the old logger) still running are stopped first, so the service never
//! runs twice; a recorded pid that is not the service's process is left alone.

mod common;
mod supervisor;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::{Guard, TempDir, alive, kill_pid, script, wait_for};
use rsv::status::{S6Status, write_atomic};
use rsv::tai::{Family, Tai64N};
use supervisor::*;

/// Live (non-zombie) pids whose working directory is `dir`, other than `except`.
fn procs_in(dir: &Path, except: &[i32]) -> Vec<i32> {
    let dir = fs::canonicalize(dir).unwrap();
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if except.contains(&pid) || !alive(pid) {
            continue;
        }
        if fs::read_link(format!("/proc/{pid}/cwd")).ok().as_deref() == Some(dir.as_path()) {
            v.push(pid);
        }
    }
    v
}

/// Starts a supervisor, SIGKILLs it, starts another; checks that the old run (and logger)
/// was stopped and exactly one new one runs.
fn restart_after_sigkill(mode: &str, with_log: bool, run: &str) {
    let t = TempDir::new(&format!("adopt-{mode}"));
    let sd = t.path().join("a");
    script(&sd.join("run"), run);
    fs::write(sd.join("timeout-kill"), "300\n").unwrap();
    if with_log {
        script(&sd.join("log/run"), "#!/bin/sh\nexec sleep 1000\n");
    }
    let mut first = Sup::start(mode, t.path(), "a");
    let old = wait_up(&sd, None);
    let old_log = with_log.then(|| wait_up(&sd.join("log"), None));
    first.g.signal(libc::SIGKILL);
    first.g.wait_exit(T);
    // The old processes survive their supervisor.
    assert!(alive(old));
    if let Some(p) = old_log {
        assert!(alive(p));
    }

    let second = Sup::start(mode, t.path(), "a");
    let new = wait_up(&sd, Some(old));
    wait_for(T, "old run gone", || (!alive(old)).then_some(()));
    let mut sup_pids = vec![second.g.pid()];
    sup_pids.extend(first.g.0.as_ref().map(|c| c.id() as i32));
    assert_eq!(
        procs_in(&sd, &sup_pids),
        vec![new],
        "exactly one run in {sd:?}"
    );
    let err = second.err();
    assert!(
        err.contains(&format!(
            "rsupervise a: warning: pid {old} is still running from a previous supervisor: sending SIGTERM"
        )),
        "{err}"
    );
    let mut new_log = None;
    if let Some(old_log) = old_log {
        let nl = wait_up(&sd.join("log"), Some(old_log));
        new_log = Some(nl);
        let new_log = nl;
        wait_for(T, "old logger gone", || (!alive(old_log)).then_some(()));
        assert_eq!(procs_in(&sd.join("log"), &[]), vec![new_log]);
        assert!(
            err.contains(&format!(
                "rsupervise a/log: warning: pid {old_log} is still running"
            )),
            "{err}"
        );
    }
    assert_eq!(err.lines().count(), if with_log { 2 } else { 1 }, "{err}");
    match new_log {
        // A logger that does not read its input would keep a graceful stop waiting.
        Some(new_log) => {
            let mut second = second;
            second.g.signal(libc::SIGKILL);
            second.g.wait_exit(T);
            kill_pid(new);
            kill_pid(new_log);
        }
        None => assert_eq!(second.stop(), 0),
    }
    kill_pid(old);
}

#[test]
fn s6_old_run_is_stopped_before_the_new_start() {
    restart_after_sigkill("s6", false, "#!/bin/sh\nexec sleep 1000\n");
}

#[test]
fn runit_old_run_and_logger_are_stopped() {
    restart_after_sigkill("runit", true, "#!/bin/sh\nexec sleep 1000\n");
}

#[test]
fn old_run_that_ignores_the_down_signal_is_killed() {
    // SIGTERM ignored across exec: the bound (timeout-kill, 300 ms) ends with SIGKILL.
    restart_after_sigkill("s6", false, "#!/bin/sh\ntrap '' TERM\nexec sleep 1000\n");
}

/// Writes an s6 status naming `pid`, up since `stamp`.
fn fake_status(sd: &Path, pid: i32, stamp: SystemTime) {
    fs::create_dir_all(sd.join("supervise")).unwrap();
    let st = S6Status {
        stamp: Tai64N::from_system(stamp, Family::S6),
        readystamp: Tai64N::from_system(stamp, Family::S6),
        pid: pid as u64,
        wantup: true,
        ..Default::default()
    };
    write_atomic(&sd.join("supervise"), "status", &st.encode(), 0o644).unwrap();
}

#[test]
fn unrelated_pid_in_old_status_is_left_alone() {
    let t = TempDir::new("adopt-reuse");
    let sd = t.path().join("a");
    let other = t.path().join("other");
    fs::create_dir_all(&other).unwrap();
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    for mode in ["s6", "runit"] {
        // 1: a live process in another directory (a reused pid).
        let stranger = Guard::spawn(
            Command::new("sleep")
                .arg("1000")
                .current_dir(&other)
                .stdin(Stdio::null()),
        );
        fake_status(&sd, stranger.pid(), SystemTime::now());
        let sup = Sup::start(mode, t.path(), "a");
        let new = wait_up(&sd, Some(stranger.pid()));
        assert!(alive(stranger.pid()));
        assert_ne!(new, stranger.pid());
        assert_eq!(sup.err(), "");
        assert_eq!(sup.stop(), 0);
        drop(stranger);

        // 2: a process in the service directory, but started after the recorded stamp.
        let late = Guard::spawn(
            Command::new("sleep")
                .arg("1000")
                .current_dir(&sd)
                .stdin(Stdio::null()),
        );
        fake_status(
            &sd,
            late.pid(),
            SystemTime::now() - Duration::from_secs(3600),
        );
        let sup = Sup::start(mode, t.path(), "a");
        let new = wait_up(&sd, Some(late.pid()));
        assert!(alive(late.pid()));
        assert_ne!(new, late.pid());
        assert_eq!(sup.err(), "");
        assert_eq!(sup.stop(), 0);
        drop(late);
        fs::remove_dir_all(sd.join("supervise")).unwrap();
    }
}
