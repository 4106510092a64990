//! rsvscan under a low descriptor limit (RLIMIT_NOFILE, set with `prlimit`): start-up errors
//! are one clear line each; with `--prefix` (two pipes held per service) new services that do
//! not fit are refused with one warning while the old ones keep running, stay controllable
//! and are restarted; a refused one starts once descriptors are free again.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rsv::status::{AnyStatus, read_status};
use scan::*;

const T: Duration = Duration::from_secs(10);

/// Is `sd`'s service up (its status says so)?
fn up(sd: &Path) -> bool {
    matches!(read_status(&sd.join("supervise")), Ok(AnyStatus::S6(s)) if s.is_up())
}

/// The pid (in the namespace) of `sd`'s service while its status says up.
fn up_pid(sd: &Path) -> Option<u64> {
    match read_status(&sd.join("supervise")) {
        Ok(AnyStatus::S6(s)) if s.is_up() => Some(s.pid),
        _ => None,
    }
}

fn down(sd: &Path) -> bool {
    matches!(read_status(&sd.join("supervise")), Ok(AnyStatus::S6(s)) if s.pid == 0)
}

/// Host pids of the supervisors of `name` in the namespace (not zombies).
fn supervisors_of(ns: &Ns, name: &str) -> Vec<i32> {
    let tail = format!(" -- {name}");
    ns.procs()
        .into_iter()
        .filter(|&p| {
            let c = fs::read(format!("/proc/{p}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            c.contains("rsupervise") && c.trim_end().ends_with(&tail) && alive(p)
        })
        .collect()
}

fn rsvc(dir: &Path, args: &[&str]) -> i32 {
    run(Command::new(bin("rsvc")).args(args).current_dir(dir), T).0
}

/// The lines of rsvscan's stderr that refuse `name`.
fn refusals(ns: &Ns, dir: &Path, name: &str) -> usize {
    let want = format!(
        "rsvscan: warning: unable to start supervisor for {}/{name}: too few file descriptors left",
        dir.display()
    );
    ns.stderr().lines().filter(|l| l.starts_with(&want)).count()
}

#[test]
fn low_limit_refuses_new_services_keeps_old_ones() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("fdlimit");
    let dir = t.path().join("scan");
    const N: usize = 8;
    let names: Vec<String> = (0..N).map(|i| format!("s{i}")).collect();
    for n in &names {
        script(
            &dir.join(n).join("run"),
            "#!/bin/sh\necho started\nexec sleep 1000\n",
        );
    }
    // 40 descriptors: rsvscan's own dozen, then four per service with --prefix, and a
    // reserve it keeps for what already runs: a few services fit, not eight.
    let args: Vec<std::ffi::OsString> = vec![
        "--nofile=40:40".into(),
        bin("rsvscan").into(),
        "--supervisor".into(),
        bin("rsupervise").into(),
        "--prefix".into(),
        dir.clone().into(),
    ];
    let prlimit = Path::new("/usr/bin/prlimit");
    let mut ns = start_ns_prog(prlimit, &args, &dir, &t.path().join("err"));
    // Every service ends up either up or refused (once).
    let (started, refused) = wait_for(T, "every service up or refused", || {
        let (s, r): (Vec<&String>, Vec<&String>) = names
            .iter()
            .filter(|n| up(&dir.join(n)) || refusals(&ns, &dir, n) > 0)
            .partition(|n| up(&dir.join(n)));
        (s.len() + r.len() == N).then(|| {
            (
                s.into_iter().cloned().collect::<Vec<_>>(),
                r.into_iter().cloned().collect::<Vec<_>>(),
            )
        })
    });
    eprintln!("started {started:?}, refused {refused:?}");
    assert!(
        !started.is_empty() && !refused.is_empty(),
        "{}",
        ns.stderr()
    );
    // The old ones obey, and a supervisor killed is replaced (the reserve is for that).
    let old = &started[0];
    assert_eq!(rsvc(&dir, &["-d", old]), 0);
    wait_for(T, "old service down", || down(&dir.join(old)).then_some(()));
    assert_eq!(rsvc(&dir, &["-u", old]), 0);
    wait_for(T, "old service up", || up(&dir.join(old)).then_some(()));
    let sup = wait_for(T, "one supervisor", || {
        let v = supervisors_of(&ns, old);
        (v.len() == 1).then(|| v[0])
    });
    let before = up_pid(&dir.join(old));
    kill_pid(sup);
    // The new supervisor stops the run left behind and starts a new one.
    wait_for(T, "a new supervisor, a new run", || {
        let v = supervisors_of(&ns, old);
        let now = up_pid(&dir.join(old));
        (v.len() == 1 && v[0] != sup && now.is_some() && now != before).then_some(())
    });
    // A refused one has no supervisor and is warned about once, though retried each second.
    for n in &refused {
        assert!(supervisors_of(&ns, n).is_empty(), "{n}");
        assert_ne!(rsvc(&dir, &["-u", n]), 0, "{n} has no supervisor");
    }
    // Descriptors freed (a service removed, its supervisor stopped by -n): the first
    // refused one starts.
    let gone = started.last().unwrap();
    fs::remove_dir_all(dir.join(gone)).unwrap();
    let (rc, _, _) = run(
        Command::new(bin("rsvscanctl"))
            .arg("-an")
            .arg(&dir)
            .stdout(Stdio::null()),
        T,
    );
    assert_eq!(rc, 0);
    let now_up = wait_for(T, "a refused service started", || {
        refused.iter().find(|n| up(&dir.join(n))).cloned()
    });
    assert_eq!(supervisors_of(&ns, &now_up).len(), 1);
    for n in &refused {
        assert_eq!(refusals(&ns, &dir, n), 1, "{}", ns.stderr());
    }
    let err = ns.stderr();
    assert!(!err.contains("os error"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
}

/// Limits too low for rsvscan itself: each fails with one line naming rsvscan (no Rust
/// error suffix) and exit code 111.
#[test]
fn too_low_limit_at_start_is_one_clear_line() {
    let t = TempDir::new("fdlimit-start");
    let dir = t.path().join("scan");
    fs::create_dir_all(&dir).unwrap();
    for n in 4..=10 {
        let _ = fs::remove_dir_all(dir.join(".s6-svscan"));
        let (rc, _, err) = run(
            Command::new("/usr/bin/prlimit")
                .arg(format!("--nofile={n}:{n}"))
                .arg(bin("rsvscan"))
                .arg(&dir)
                .stdin(Stdio::null()),
            T,
        );
        assert_eq!(rc, 111, "limit {n}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "limit {n}: {err}");
        assert!(
            lines[0].starts_with("rsvscan: fatal: unable to ")
                && lines[0].ends_with(": Too many open files"),
            "limit {n}: {err}"
        );
    }
}
