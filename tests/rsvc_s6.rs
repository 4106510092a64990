//! rsvc in its s6-svc personality, against real s6-supervise and runsv, compared with s6-svc.

mod cli_util;
mod common;

use cli_util::*;
use common::{TempDir, bin, have_refs, script};
use rsv::svview::View;
use std::fs;
use std::time::{Duration, Instant};

fn refs() -> bool {
    have_refs(&["runsv", "s6-supervise", "s6-svc", "s6-svstat"])
}

fn rsvc(args: &[&str], cwd: &std::path::Path) -> (i32, String, String) {
    exec(&bin("rsvc"), args, cwd, &[])
}

#[test]
fn errors_match_s6_svc() {
    if !refs() {
        return;
    }
    let t = TempDir::new("svc-err");
    let names = Names::new();
    let ours = names.ours("s6-svc");
    let cwd = t.path();
    // A dir whose supervisor is gone: status and control FIFO left behind.
    let dead = {
        let s = Svc::start(t.path(), "dead", Kind::S6, "exec sleep 1000");
        s.wait_up();
        s.dir.clone()
    };
    fs::create_dir_all(cwd.join("nocontrol/supervise")).unwrap();
    let too_many = format!("-{}", "c".repeat(63));
    let most = format!("-{}", "c".repeat(62));
    for args in [
        vec![],
        vec!["-Z", "dead"],
        vec!["-u"],
        vec!["-T", "x", "-u", "dead"],
        vec!["-wz", "-u", "dead"],
        vec!["-u", "dead"],
        vec!["dead"],
        vec!["-u", "/nonexistent"],
        vec!["-u", "nocontrol"],
        vec!["-wu", "-T", "300", "-u", "/nonexistent"],
        vec![&too_many, "dead"],
        vec![&most, "/nonexistent"],
    ] {
        same("s6-svc", &ours, &args, cwd, &[]);
    }
    let _ = dead;
    // s6-svc's waits need the s6 layout: on a runsv dir they fail as s6-svlisten1 does.
    let r = Svc::start(t.path(), "r", Kind::Runsv, "exec sleep 1000");
    r.wait_up();
    same("s6-svc", &ours, &["-wu", "-T", "500", "-u", "r"], cwd, &[]);
    same("s6-svc", &ours, &["-wd", "-T", "300", "r"], cwd, &[]);
    // rsvc's own messages: one line, naming the path.
    let (code, _, err) = rsvc(&["-u", "dead"], cwd);
    assert_eq!(code, 100);
    assert_eq!(
        err,
        "rsvc: fatal: unable to control dead: supervisor not listening (no reader on dead/supervise/control)\n"
    );
    let (code, _, err) = rsvc(&["-wu", "-T", "500", "-u", "dead"], cwd);
    assert_eq!(code, 100, "{err}");
    let (code, _, err) = rsvc(&["-u", "/nonexistent"], cwd);
    assert_eq!(
        (code, err.as_str()),
        (
            111,
            "rsvc: fatal: unable to control /nonexistent: No such file or directory\n"
        )
    );
}

#[test]
fn letters_in_one_write_and_extra_args() {
    if !refs() {
        return;
    }
    let t = TempDir::new("svc-multi");
    let names = Names::new();
    let a = Svc::start(t.path(), "a", Kind::S6, "exec sleep 1000");
    let b = Svc::start(t.path(), "b", Kind::S6, "exec sleep 1000");
    a.wait_up();
    b.wait_up();
    // rsvc controls every dir given.
    let (code, _, err) = rsvc(&["-wd", "-T", "5000", "-d", a.path(), b.path()], t.path());
    assert_eq!((code, err.as_str()), (0, ""));
    for s in [&a, &b] {
        let v = View::read(&s.dir).unwrap();
        assert!(!v.up && !v.wantup, "{v:?}");
    }
    // Started as s6-svc: only the first, with s6-svc's warning.
    let (code, _, err) = exec(
        &names.ours("s6-svc"),
        &["-u", a.path(), b.path()],
        t.path(),
        &[],
    );
    assert_eq!(
        (code, err.as_str()),
        (0, "s6-svc: warning: ignoring extra arguments\n")
    );
    a.wait_up();
    assert!(!View::read(&b.dir).unwrap().wantup);
    // Several letters in command-line order, one write: -d then -u leaves it wanted up.
    let (code, _, _) = rsvc(&["-d", "-u", b.path()], t.path());
    assert_eq!(code, 0);
    b.wait_up();
    // No letters: exit 0 while a supervisor listens.
    assert_eq!(rsvc(&[a.path()], t.path()).0, 0);
}

#[test]
fn waits_on_s6() {
    if !refs() {
        return;
    }
    let t = TempDir::new("svc-wait");
    let a = Svc::start(t.path(), "a", Kind::S6, "exec sleep 1000");
    let p1 = a.wait_up();
    let (code, _, err) = rsvc(&["-wD", "-T", "5000", "-d", a.path()], t.path());
    assert_eq!((code, err.as_str()), (0, ""));
    let v = View::read(&a.dir).unwrap();
    assert!(!v.up && v.ready && v.pid == 0);
    let (code, _, _) = rsvc(&["-wu", "-T", "5000", "-u", a.path()], t.path());
    assert_eq!(code, 0);
    let p2 = a.pid();
    assert!(p2 != 0 && p2 != p1);
    let (code, _, _) = rsvc(&["-wr", "-T", "5000", "-r", a.path()], t.path());
    assert_eq!(code, 0);
    let p3 = a.pid();
    assert!(p3 != 0 && p3 != p2, "restart gave a new pid");
    // Timeout: waiting for down without sending anything.
    let start = Instant::now();
    let (code, _, err) = rsvc(&["-wd", "-T", "300", a.path()], t.path());
    assert_eq!((code, err.as_str()), (99, "rsvc: fatal: timed out\n"));
    assert!(start.elapsed() < Duration::from_secs(3));
    // -wU without notification-fd: warning and downgrade.
    let (code, _, err) = rsvc(&["-wU", "-T", "3000", "-u", a.path()], t.path());
    assert_eq!(code, 0);
    assert_eq!(
        err,
        format!(
            "rsvc: warning: {}/notification-fd not present - ignoring request for readiness notification\n",
            a.path()
        )
    );
}

#[test]
fn readiness_and_permanent_failure() {
    if !refs() {
        return;
    }
    let t = TempDir::new("svc-ready");
    fs::create_dir_all(t.path().join("r")).unwrap();
    fs::write(t.path().join("r/notification-fd"), "3\n").unwrap();
    let r = Svc::start(
        t.path(),
        "r",
        Kind::S6,
        "sleep 0.3; echo >&3; exec sleep 1000",
    );
    let (code, _, err) = rsvc(&["-wU", "-T", "5000", r.path()], t.path());
    assert_eq!((code, err.as_str()), (0, ""));
    let v = View::read(&r.dir).unwrap();
    assert!(v.up && v.ready);
    let p1 = v.pid;
    let (code, _, _) = rsvc(&["-wR", "-T", "5000", "-r", r.path()], t.path());
    assert_eq!(code, 0);
    let v = View::read(&r.dir).unwrap();
    assert!(v.up && v.ready && v.pid != p1);

    // finish exits 125: the supervisor reports permanent failure (O) while we wait for
    // up and ready (run never notifies).
    fs::create_dir_all(t.path().join("f")).unwrap();
    fs::write(t.path().join("f/down"), "").unwrap();
    fs::write(t.path().join("f/notification-fd"), "3\n").unwrap();
    script(&t.path().join("f/finish"), "#!/bin/sh\nexit 125\n");
    let f = Svc::start(t.path(), "f", Kind::S6, "exit 1");
    let (code, _, err) = rsvc(&["-wU", "-T", "5000", "-u", f.path()], t.path());
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        format!(
            "rsvc: fatal: {} failed permanently or its supervisor died\n",
            f.path()
        )
    );
    // The supervisor exits (x) while we wait for up: failure too.
    let (code, _, err) = rsvc(&["-wu", "-T", "5000", "-x", f.path()], t.path());
    assert_eq!(code, 1, "{err}");
    let mut f = f;
    f.sup.wait_exit(Duration::from_secs(5));
}

#[test]
fn waits_on_runsv() {
    if !refs() {
        return;
    }
    let t = TempDir::new("svc-runit");
    let a = Svc::start(t.path(), "a", Kind::Runsv, "exec sleep 1000");
    let p1 = a.wait_up();
    let (code, _, err) = rsvc(&["-wd", "-T", "5000", "-d", a.path()], t.path());
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(a.pid(), 0);
    let (code, _, _) = rsvc(&["-wu", "-T", "5000", "-u", a.path()], t.path());
    assert_eq!(code, 0);
    let p2 = a.pid();
    assert!(p2 != 0 && p2 != p1);
    // runsv knows no 'r'; its restart letter is 't'.
    let (code, _, _) = rsvc(&["-wr", "-T", "5000", "-t", a.path()], t.path());
    assert_eq!(code, 0);
    let p3 = a.wait_up();
    assert_ne!(p3, p2);
    // x: runsv stops the service and exits; waiting for down succeeds.
    let (code, _, err) = rsvc(&["-wd", "-T", "5000", "-x", a.path()], t.path());
    assert_eq!((code, err.as_str()), (0, ""));
    let mut a = a;
    a.sup.wait_exit(Duration::from_secs(5));
    // Now nobody listens.
    let (code, _, _) = rsvc(&["-u", a.path()], t.path());
    assert_eq!(code, 100);
}

#[test]
fn letters_written_match_s6_svc() {
    if !refs() {
        return;
    }
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let t = TempDir::new("svc-letters");
    let names = Names::new();
    let sup = t.path().join("f/supervise");
    fs::create_dir_all(&sup).unwrap();
    nix::unistd::mkfifo(
        &sup.join("control"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let mut ctl = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(sup.join("control"))
        .unwrap();
    let mut drain = || {
        let mut v = Vec::new();
        let mut b = [0u8; 128];
        while let Ok(n) = ctl.read(&mut b) {
            if n == 0 {
                break;
            }
            v.extend_from_slice(&b[..n]);
        }
        v
    };
    for args in [
        vec!["-u", "f"],
        vec!["-abqhkti12", "f"],
        vec!["-p", "-c", "-y", "-r", "f"],
        vec!["-o", "-d", "-u", "-D", "-U", "-x", "-O", "-Q", "f"],
        vec!["-du", "-ud", "f"],
        vec!["-T", "100", "-k", "f"],
        vec!["-uu", "--", "f"],
        vec!["f"],
    ] {
        drain();
        let r = exec(
            std::path::Path::new("/usr/bin/s6-svc"),
            &args,
            t.path(),
            &[],
        );
        let rb = drain();
        let o = exec(&names.ours("s6-svc"), &args, t.path(), &[]);
        let ob = drain();
        assert_eq!((&r, &rb), (&o, &ob), "{args:?}");
        // rsvc (own name) writes the same bytes.
        let o2 = exec(&bin("rsvc"), &args, t.path(), &[]);
        assert_eq!((o2.0, drain()), (0, rb.clone()), "rsvc {args:?}");
        if args.len() > 1 {
            let want: String = args
                .iter()
                .filter(|a| a.starts_with('-') && **a != "--" && **a != "-T")
                .flat_map(|a| a[1..].chars())
                .collect();
            assert_eq!(String::from_utf8(rb).unwrap(), want, "{args:?}");
        }
    }
}

#[test]
fn garbage_status_and_permission_denied() {
    if !refs() {
        return;
    }
    let t = TempDir::new("svc-garbage");
    let names = Names::new();
    let a = Svc::start(t.path(), "a", Kind::S6, "exec sleep 1000");
    a.wait_up();
    fs::write(a.dir.join("supervise/status"), b"1234567").unwrap();
    let (code, _, err) = rsvc(&["-wu", "-T", "500", "-u", "a"], t.path());
    assert_eq!(code, 111);
    assert_eq!(
        err,
        "rsvc: fatal: unable to read status for a: a/supervise/status: status file has 7 bytes, neither 20 (runit) nor 35 (s6)\n"
    );
    same(
        "s6-svc",
        &names.ours("s6-svc"),
        &["-wu", "-T", "500", "-u", "a"],
        t.path(),
        &[],
    );
    // Without a wait the status is not read: the letter goes through.
    assert_eq!(rsvc(&["-u", "a"], t.path()).0, 0);
    // supervise/ is 0700: as nobody, the control FIFO cannot be opened.
    if let Some(o) = exec_as_nobody(&names.ours("s6-svc"), &["-u", "a"], t.path()) {
        let r = exec_as_nobody(
            std::path::Path::new("/usr/bin/s6-svc"),
            &["-u", "a"],
            t.path(),
        )
        .unwrap();
        assert_eq!(r, o);
        let (code, _, err) = exec_as_nobody(&bin("rsvc"), &["-u", "a"], t.path()).unwrap();
        assert_eq!(
            (code, err.as_str()),
            (111, "rsvc: fatal: unable to control a: Permission denied\n")
        );
    }
}

#[test]
fn supervisor_killed_during_wait() {
    if !refs() {
        return;
    }
    let t = TempDir::new("svc-killed");
    let mut a = Svc::start(t.path(), "a", Kind::S6, "exec sleep 1000");
    a.wait_up();
    let mut cmd = std::process::Command::new(bin("rsvc"));
    cmd.args(["-wd", "-T", "10000", a.path()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Let it subscribe, then kill the supervisor without letting it broadcast anything.
    common::wait_for(Duration::from_secs(5), "listener fifo", || {
        fs::read_dir(a.dir.join("event"))
            .ok()?
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("ftrig1:@"))
            .then_some(())
    });
    let start = Instant::now();
    a.sup.signal(libc::SIGKILL);
    a.sup.wait_exit(Duration::from_secs(5));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "rsvc: fatal: {} failed permanently or its supervisor died\n",
            a.path()
        )
    );
}
