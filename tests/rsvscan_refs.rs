//! rsvscan with the reference clients: runit's `sv` against the runsvdir drop-in, s6's
//! `s6-svc`, `s6-svstat` and `s6-svscanctl` against s6 mode; hooks, finish, ALRM, HUP.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::*;
use scan::*;

const SEC: Duration = Duration::from_secs(1);

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) on the rsvscan the test started.
    unsafe {
        libc::kill(pid, sig);
    }
}

#[test]
fn runsvdir_usage() {
    let t = TempDir::new("scan-usage");
    let link = t.path().join("runsvdir");
    std::os::unix::fs::symlink(bin("rsvscan"), &link).unwrap();
    let (rc, _, err) = run(&mut Command::new(&link), 5 * SEC);
    // runsvdir's own bytes: a blank line follows the usage line.
    assert_eq!((rc, err.as_str()), (1, "usage: runsvdir [-P] dir\n\n"));
    if have_refs(&["runsvdir"]) {
        let (rrc, _, rerr) = run(&mut Command::new("runsvdir"), 5 * SEC);
        assert_eq!((rrc, rerr.as_str()), (rc, err.as_str()));
    }
}

#[test]
fn runsvdir_dropin_with_sv() {
    if !unshare_ok() || !have_refs(&["sv"]) {
        return;
    }
    let t = TempDir::new("scan-runit");
    let dir = t.path().join("service");
    script(&dir.join("a/run"), "#!/bin/sh\nexec sleep 1000\n");
    script(&dir.join("a/log/run"), "#!/bin/sh\nexec cat > /dev/null\n");
    // Started as `runsvdir`: runit mode, runsvdir's syntax; rsupervise found next to us.
    let link = t.path().join("runsvdir");
    std::os::unix::fs::symlink(bin("rsvscan"), &link).unwrap();
    let args: Vec<OsString> = vec!["-P".into(), dir.clone().into()];
    let mut ns = start_ns_prog(&link, &args, &dir, &t.path().join("err"));
    wait_up(&dir.join("a"), 3 * SEC);
    wait_up(&dir.join("a/log"), 3 * SEC);
    let sd = dir.join("a");
    let (rc, out, _) = run(Command::new("sv").arg("status").arg(&sd), 5 * SEC);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.starts_with(&format!("run: {}: (pid ", sd.display())),
        "{out}"
    );
    assert!(out.contains("; run: log: (pid "), "{out}");
    let (rc, out, _) = run(
        Command::new("sv").args(["-w", "3", "down"]).arg(&sd),
        10 * SEC,
    );
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.starts_with(&format!("ok: down: {}: ", sd.display())),
        "{out}"
    );
    let (rc, out, _) = run(
        Command::new("sv").args(["-w", "3", "up"]).arg(&sd),
        10 * SEC,
    );
    assert_eq!(rc, 0, "{out}");

    // SIGALRM: forced rescan, Debian's `.forced-rescan` stamp.
    script(
        &t.path().join("stage/b/run"),
        "#!/bin/sh\nexec sleep 1000\n",
    );
    kill(ns.init, libc::SIGALRM);
    let stamp = dir.join(".forced-rescan");
    let b = wait_for(3 * SEC, ".forced-rescan", || fs::read(&stamp).ok());
    assert_eq!(b.len(), 25);
    assert!(b.starts_with(b"@4000000"), "{b:?}");
    assert_eq!(
        fs::metadata(&stamp).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // A second one renews the stamp and leaves nothing else in the scan directory.
    kill(ns.init, libc::SIGALRM);
    wait_for(3 * SEC, "a new .forced-rescan", || {
        fs::read(&stamp).ok().filter(|x| *x != b)
    });
    assert!(!dir.join(".forced-rescan.new").exists());

    // SIGHUP: services stopped in order, then exit 111 (runsvdir's code).
    let run_pid = ns.host_pid(status_pid(&sd)).unwrap();
    kill(ns.init, libc::SIGHUP);
    let st = ns.guard.wait_exit(10 * SEC);
    assert_eq!(st.code(), Some(111), "{}", ns.stderr());
    assert!(!alive(run_pid));
}

#[test]
fn s6_mode_with_s6_tools_hooks_and_finish() {
    if !unshare_ok() || !have_refs(&["s6-svc", "s6-svstat", "s6-svscanctl"]) {
        return;
    }
    let t = TempDir::new("scan-s6");
    let dir = t.path().join("service");
    let marks = t.path().join("marks");
    fs::create_dir_all(&marks).unwrap();
    script(&dir.join("a/run"), "#!/bin/sh\nexec sleep 1000\n");
    script(
        &dir.join(".s6-svscan/SIGUSR1"),
        &format!("#!/bin/sh\necho usr1 > {}/usr1\n", marks.display()),
    );
    script(
        &dir.join(".s6-svscan/finish"),
        &format!("#!/bin/sh\necho $$ > {}/finish\nexit 7\n", marks.display()),
    );
    let mut ns = start_ns(&dir, &[], &t.path().join("err"));
    let sd = dir.join("a");
    wait_up(&sd, 3 * SEC);
    let (rc, out, _) = run(Command::new("s6-svstat").arg(&sd), 5 * SEC);
    assert_eq!(rc, 0);
    assert!(out.starts_with("up (pid "), "{out}");
    let (rc, _, _) = run(
        Command::new("s6-svc")
            .args(["-wd", "-T", "3000", "-d"])
            .arg(&sd),
        10 * SEC,
    );
    assert_eq!(rc, 0);
    let (_, out, _) = run(Command::new("s6-svstat").arg(&sd), 5 * SEC);
    assert!(out.starts_with("down "), "{out}");
    // A hook replaces the default action and does not stop the scanner.
    kill(ns.init, libc::SIGUSR1);
    wait_for(3 * SEC, "SIGUSR1 hook", || {
        fs::read(marks.join("usr1")).ok()
    });
    // A second s6-svscanctl letter set: rescan picks up a new service.
    script(&dir.join("b/run"), "#!/bin/sh\nexec sleep 1000\n");
    let (rc, _, _) = run(Command::new("s6-svscanctl").arg("-a").arg(&dir), 5 * SEC);
    assert_eq!(rc, 0);
    wait_up(&dir.join("b"), 3 * SEC);
    // Removed service: kept until a prune (s6 mode), then stopped.
    let bpid = ns.host_pid(status_pid(&dir.join("b"))).unwrap();
    fs::rename(dir.join("b"), t.path().join("b-gone")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(bpid));
    let (rc, _, _) = run(Command::new("s6-svscanctl").arg("-n").arg(&dir), 5 * SEC);
    assert_eq!(rc, 0);
    wait_for(3 * SEC, "pruned service stopped", || {
        (!alive(bpid)).then_some(())
    });
    // Terminate: orderly stop, then `.s6-svscan/finish` is exec'd as the same process.
    let (rc, _, _) = run(Command::new("s6-svscanctl").arg("-t").arg(&dir), 5 * SEC);
    assert_eq!(rc, 0);
    let st = ns.guard.wait_exit(10 * SEC);
    assert_eq!(st.code(), Some(7), "{}", ns.stderr());
    assert_eq!(
        fs::read_to_string(marks.join("finish")).unwrap().trim(),
        "1"
    );
}

#[test]
fn rsvscanctl_errors_match_s6_svscanctl() {
    if !have_refs(&["s6-svscanctl"]) {
        return;
    }
    let t = TempDir::new("ctlerr");
    let missing = t.path().join("missing");
    let missing = missing.to_str().unwrap();
    let idle = t.path().to_str().unwrap();
    for (dir, code, tail) in [
        (missing, 111, "No such file or directory"),
        (idle, 100, "supervisor not listening"),
    ] {
        let (c, _, err) = run(
            Command::new(bin("rsvscanctl")).args(["-a", dir]),
            Duration::from_secs(10),
        );
        let (rc, _, rerr) = run(
            Command::new("s6-svscanctl").args(["-a", dir]),
            Duration::from_secs(10),
        );
        assert_eq!((c, rc), (code, code), "{err} / {rerr}");
        assert_eq!(
            err,
            format!("rsvscanctl: fatal: unable to control {dir}: {tail}\n")
        );
        assert!(rerr.ends_with(&format!("unable to control {dir}: {tail}\n")));
    }
    let (c, _, err) = run(
        Command::new(bin("rsvscanctl")).args(["-w", idle]),
        Duration::from_secs(10),
    );
    assert_eq!(c, 100, "{err}");
}
