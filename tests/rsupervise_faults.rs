//! rsupervise under bad input and hostile conditions: second supervisors (ours and the real
//! ones), a control path that is not a FIFO, a missing or non-executable run, garbage on the
//! control FIFO, closed output pipes, unprivileged clients, symlinked supervise dirs and
//! malformed settings files.

mod common;
mod supervisor;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Guard, TempDir, alive, bin, have_refs, script, wait_for};
use rsv::status::{AnyStatus, read_status};
use supervisor::*;

#[test]
fn second_supervisor_is_refused_and_the_first_is_untouched() {
    for mode in ["s6", "runit"] {
        let t = TempDir::new("f2nd");
        let sd = t.path().join("a");
        script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
        let sup = Sup::start(mode, t.path(), "a");
        let pid = wait_up(&sd, None);
        for other in ["s6", "runit"] {
            let (c, _, err) = cmd(
                t.path(),
                bin("rsupervise").to_str().unwrap(),
                &["--compat", other, "a"],
            );
            assert_eq!(c, 111, "{err}");
            assert_eq!(
                err,
                "rsupervise: fatal: unable to lock a/supervise/lock: another supervisor holds it\n"
            );
        }
        // The real programs are locked out too (runsv by flock, s6-supervise by fcntl).
        if have_refs(&["runsv", "s6-supervise"]) {
            let (c, _, err) = cmd(t.path(), "runsv", &["a"]);
            assert_eq!(c, 111, "{err}");
            assert!(err.contains("unable to lock supervise/lock"), "{err}");
            let (c, _, err) = cmd(t.path(), "s6-supervise", &["a"]);
            assert_eq!(c, 100, "{err}");
            assert!(err.contains("another instance"), "{err}");
        }
        assert_eq!(pid_of(&sd), Some(pid));
        assert!(alive(pid));
        assert!(alive(sup.g.pid()));
        assert_eq!(sup.stop(), 0);
    }
}

#[test]
fn control_that_is_not_a_fifo_is_fatal() {
    let t = TempDir::new("fctl");
    let sd = t.path().join("a");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    fs::create_dir_all(sd.join("supervise")).unwrap();
    fs::write(sd.join("supervise/control"), "").unwrap();
    let (c, _, err) = cmd(t.path(), bin("rsupervise").to_str().unwrap(), &["a"]);
    assert_eq!(c, 111);
    assert_eq!(
        err,
        "rsupervise: fatal: a/supervise/control exists but is not a fifo\n"
    );
    let (c, _, err) = cmd(t.path(), bin("rsupervise").to_str().unwrap(), &["nosuch"]);
    assert_eq!(c, 111);
    assert!(
        err.starts_with("rsupervise: fatal: unable to change to directory nosuch: "),
        "{err}"
    );
    let (c, _, err) = cmd(
        t.path(),
        bin("rsupervise").to_str().unwrap(),
        &["--compat", "x", "a"],
    );
    assert_eq!(c, 100, "{err}");
    let (c, _, _) = cmd(t.path(), bin("rsupervise").to_str().unwrap(), &[]);
    assert_eq!(c, 100);
}

#[test]
fn missing_or_unexecutable_run_stays_controllable() {
    if !have_refs(&["s6-svc", "s6-svstat"]) {
        return;
    }
    let t = TempDir::new("fnorun");
    let sd = t.path().join("a");
    fs::create_dir_all(&sd).unwrap();
    fs::write(sd.join("run"), "#!/bin/sh\nexec sleep 1000\n").unwrap(); // not executable
    let sup = Sup::start("s6", t.path(), "a");
    let err = wait_for(T, "warning", || Some(sup.err()).filter(|e| !e.is_empty()));
    assert_eq!(
        err,
        "rsupervise a: warning: a/run is not executable: starting it once it is\n"
    );
    let (_, out, _) = cmd(t.path(), "s6-svstat", &["a"]);
    assert!(
        out.starts_with("down (exitcode 0) ") && out.contains("normally up, want up"),
        "{out}"
    );
    // Started as soon as run is fixed, without a command.
    let t0 = Instant::now();
    fs::set_permissions(sd.join("run"), fs::Permissions::from_mode(0o755)).unwrap();
    let pid = wait_up(&sd, None);
    assert!(t0.elapsed() < Duration::from_secs(3));
    wait_for(T, "run to exec sleep", || {
        (cmdline(pid) == "sleep 1000").then_some(())
    });
    assert_eq!(sup.stop(), 0);

    // Missing run, runit mode: no retry loop (runsv tries every second), one warning, no
    // finish; sv sees it down, wanted up; -d and SIGTERM work.
    let sd = t.path().join("b");
    fs::create_dir_all(&sd).unwrap();
    script(
        &sd.join("finish"),
        "#!/bin/sh\necho \"$#|$*\" >> finished\n",
    );
    let sup = Sup::start("runit", t.path(), "b");
    let err = wait_for(T, "the warning", || {
        Some(sup.err()).filter(|e| !e.is_empty())
    });
    assert_eq!(
        err,
        "rsupervise b: warning: b/run does not exist: starting it once it does\n"
    );
    if have_refs(&["sv"]) {
        let (_, out, _) = cmd(t.path(), "sv", &["status", "./b"]);
        assert!(
            out.starts_with("down: ./b: ") && out.ends_with("s, normally up, want up\n"),
            "{out}"
        );
    }
    cmd(t.path(), "s6-svc", &["-d", "b"]);
    cmd(t.path(), "s6-svc", &["-u", "b"]);
    assert_eq!(sup.err(), err, "one warning for the whole wait");
    assert!(!sd.join("finished").exists());
    assert_eq!(sup.stop(), 0);
}

#[test]
fn garbage_on_control_is_ignored() {
    if !have_refs(&["s6-svc"]) {
        return;
    }
    let t = TempDir::new("fgarb");
    let sd = t.path().join("a");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    let sup = Sup::start("s6", t.path(), "a");
    let pid = wait_up(&sd, None);
    let garbage: Vec<u8> = (0u8..=255)
        .filter(|b| !b"abqhktipcyroduDUxOQ12".contains(b))
        .collect();
    fs::OpenOptions::new()
        .write(true)
        .open(sd.join("supervise/control"))
        .unwrap()
        .write_all_ok(&garbage);
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(sup.g.pid()));
    assert_eq!(pid_of(&sd), Some(pid));
    assert_eq!(
        cmd(t.path(), "s6-svc", &["-wd", "-T", "5000", "-d", "a"]).0,
        0
    );
    assert_eq!(sup.stop(), 0);
}

trait WriteOk {
    fn write_all_ok(self, b: &[u8]);
}
impl WriteOk for fs::File {
    fn write_all_ok(mut self, b: &[u8]) {
        use std::io::Write;
        self.write_all(b).unwrap();
    }
}

#[test]
fn closed_output_pipe_does_not_kill_the_supervisor() {
    let t = TempDir::new("fpipe");
    let sd = t.path().join("a");
    // run writes to a stdout whose reader is gone: it gets SIGPIPE (default in children).
    script(
        &sd.join("run"),
        "#!/bin/sh\nsleep 0.1\necho hello\necho survived > survived\nexec sleep 1000\n",
    );
    let mut child = Command::new(bin("rsupervise"))
        .arg("a")
        .current_dir(t.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let g = Guard(Some(child));
    // Also make the supervisor write to its closed stderr: a malformed settings file.
    fs::write(sd.join("timeout-finish"), "junk\n").unwrap();
    wait_for(T, "status", || {
        fs::metadata(sd.join("supervise/status")).ok()
    });
    // run dies of SIGPIPE and is restarted; the supervisor lives on.
    let tally = wait_for(T, "a SIGPIPE death", || {
        let d = fs::read(sd.join("supervise/death_tally")).ok()?;
        (d.len() >= 14).then_some(d)
    });
    assert_eq!((tally[12], tally[13]), (128 + 13, 13));
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(g.pid()));
    assert!(!sd.join("survived").exists());
    let sup = Sup {
        g,
        parent: t.path().to_path_buf(),
        name: "a".into(),
        stderr: t.path().join("none"),
    };
    assert_eq!(sup.stop(), 0);
}

#[test]
fn unprivileged_clients_are_refused() {
    if !have_refs(&["s6-svc", "setpriv"]) || unsafe { libc::geteuid() } != 0 {
        return;
    }
    let t = TempDir::new("fperm");
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let sd = t.path().join("a");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    let sup = Sup::start("s6", t.path(), "a");
    let pid = wait_up(&sd, None);
    let (c, _, err) = cmd(
        t.path(),
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "s6-svc",
            "-d",
            "a",
        ],
    );
    assert_ne!(c, 0, "{err}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(pid_of(&sd), Some(pid));
    assert_eq!(sup.stop(), 0);
}

#[test]
fn dangling_supervise_symlink_and_malformed_settings() {
    let t = TempDir::new("fsym");
    let sd = t.path().join("a");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    std::os::unix::fs::symlink("../run-a-supervise", sd.join("supervise")).unwrap();
    fs::write(sd.join("timeout-kill"), "soon\n").unwrap();
    fs::write(sd.join("down-signal"), "SIGNOPE\n").unwrap();
    let sup = Sup::start("runit", t.path(), "a");
    let pid = wait_up(&sd, None);
    assert!(t.path().join("run-a-supervise/status").exists());
    // (rsvc speaking sv: this test needs no reference program)
    let (c, out, _) = cmd(t.path(), bin("rsvc").to_str().unwrap(), &["down", "./a"]);
    assert_eq!((c, out.as_str()), (0, ""));
    wait_down(&sd);
    assert!(!alive(pid));
    let err = sup.err();
    assert!(
        err.contains("rsupervise a: warning: invalid a/timeout-kill, using the default\n"),
        "{err}"
    );
    assert!(
        err.contains("rsupervise a: warning: invalid a/down-signal, using SIGTERM\n"),
        "{err}"
    );
    assert_eq!(sup.stop(), 0);
}

#[test]
fn nosetsid_and_invocation_names() {
    let t = TempDir::new("fname");
    let sd = t.path().join("a");
    script(
        &sd.join("run"),
        "#!/bin/sh\ncut -d\" \" -f5 /proc/$$/stat > pgid\nexec sleep 1000\n",
    );
    fs::write(sd.join("nosetsid"), "").unwrap();
    fs::create_dir_all(sd.join("log")).unwrap();
    script(&sd.join("log/run"), "#!/bin/sh\nexec cat\n");
    // Started as s6-supervise: s6 mode, and the log/ directory is not supervised.
    let link = t.path().join("s6-supervise");
    std::os::unix::fs::symlink(bin("rsupervise"), &link).unwrap();
    let sup = Sup::start_prog(&link, &[], t.path(), "a");
    let pid = wait_up(&sd, None);
    assert_eq!(fs::metadata(sd.join("supervise/status")).unwrap().len(), 35);
    assert!(!sd.join("log/supervise").exists());
    let pgid = wait_for(T, "pgid", || {
        fs::read_to_string(sd.join("pgid"))
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    assert_ne!(pgid.trim(), pid.to_string(), "nosetsid: no new session");
    assert_eq!(sup.stop(), 0);
    // Started as runsv: runit mode.
    let link = t.path().join("runsv");
    std::os::unix::fs::symlink(bin("rsupervise"), &link).unwrap();
    fs::remove_dir_all(sd.join("supervise")).unwrap();
    let sup = Sup::start_prog(&link, &[], t.path(), "a");
    wait_up(&sd, None);
    match read_status(&sd.join("supervise")).unwrap() {
        AnyStatus::Runit(_) => {}
        other => panic!("{other:?}"),
    }
    assert!(sd.join("log/supervise/ok").exists());
    assert_eq!(sup.stop(), 0);
}

#[test]
fn real_supervisor_first_then_ours_is_refused() {
    if !have_refs(&["runsv", "s6-supervise"]) {
        return;
    }
    for real in ["runsv", "s6-supervise"] {
        let t = TempDir::new("freal");
        let sd = t.path().join("a");
        script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
        let sup = Sup::start_prog(std::path::Path::new(real), &[], t.path(), "a");
        let pid = wait_up(&sd, None);
        // wait until the real program holds its lock
        wait_for(T, "lock", || {
            rsv::lock::supervised(&sd.join("supervise"))
                .ok()
                .filter(|b| *b)
        });
        let (c, _, err) = cmd(
            t.path(),
            bin("rsupervise").to_str().unwrap(),
            &["--compat", "runit", "a"],
        );
        assert_eq!(c, 111, "{real}: {err}");
        assert!(
            err.contains("a/supervise/lock: another supervisor holds it"),
            "{err}"
        );
        assert_eq!(pid_of(&sd), Some(pid));
        sup.stop();
    }
}

/// An idle supervisor sleeps in poll(2) without a timeout: no wake-ups at all.
#[test]
fn idle_supervisor_makes_no_system_calls() {
    if !have_refs(&["strace"]) {
        return;
    }
    let t = TempDir::new("fidle");
    let sd = t.path().join("a");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    script(&sd.join("log/run"), "#!/bin/sh\nexec cat > /dev/null\n");
    let sup = Sup::start("runit", t.path(), "a");
    let pid = wait_up(&sd, None);
    wait_up(&sd.join("log"), None);
    // The run child: empty signal mask, SIGPIPE not ignored.
    let st = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        let v = st.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(v.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(field("SigBlk:"), 0);
    assert_eq!(field("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0);
    let (_, _, err) = cmd(
        t.path(),
        "timeout",
        &[
            "-s",
            "INT",
            "2",
            "strace",
            "-e",
            "trace=poll,ppoll,read,wait4",
            "-p",
            &sup.g.pid().to_string(),
        ],
    );
    let calls: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("poll(") || l.contains("read(") || l.contains("wait4("))
        .collect();
    assert!(
        calls.is_empty(),
        "system calls while idle: {calls:?}\n{err}"
    );
    assert!(err.contains("attached"), "strace did not attach: {err}");
    assert_eq!(sup.stop(), 0);
}
