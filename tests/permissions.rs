//! Missing permissions, for the programs not covered elsewhere (rsvok, rsvstat and rsvc have
//! theirs in their own files): one line naming the program and the path, the reference's exit
//! code; svlogd's interface skips a directory it cannot use and logs into the others.
//! Runs only as root (drops to nobody with setpriv).

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TempDir, bin, have_refs};

const LIMIT: Duration = Duration::from_secs(10);
const NOBODY: u32 = 65534;

fn can_drop() -> bool {
    nix::unistd::geteuid().is_root() && have_refs(&["setpriv"])
}

/// Runs PROG ARGS as nobody in `cwd` with `input` on stdin: (exit code, stdout, stderr).
fn as_nobody(prog: &Path, args: &[&str], cwd: &Path, input: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    let mut c = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(prog)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let _ = stdin.write_all(input);
    drop(stdin);
    let pid = c.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(c.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(Ok(o)) => (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        _ => {
            common::kill_pid(pid);
            panic!("{prog:?} {args:?} did not finish");
        }
    }
}

/// A temp dir that nobody can traverse, with `closed` (mode 700, root's) inside it and
/// `open` (nobody's) beside it.
fn setup(tag: &str) -> TempDir {
    let t = TempDir::new(tag);
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for d in ["closed", "open"] {
        fs::create_dir(t.path().join(d)).unwrap();
    }
    fs::set_permissions(t.path().join("closed"), fs::Permissions::from_mode(0o700)).unwrap();
    chown(t.path().join("open"), Some(NOBODY), Some(NOBODY)).unwrap();
    t
}

#[test]
fn svlogd_interface_skips_unusable_dirs_like_svlogd() {
    if !can_drop() {
        return;
    }
    let t = setup("perm-svlogd");
    // A usable dir whose config nobody can read: a warning, the defaults, lines still logged.
    let c = t.path().join("noconf");
    fs::create_dir(&c).unwrap();
    chown(&c, Some(NOBODY), Some(NOBODY)).unwrap();
    fs::write(c.join("config"), "s100\n").unwrap();
    fs::set_permissions(c.join("config"), fs::Permissions::from_mode(0o000)).unwrap();
    let (code, _, err) = as_nobody(
        &bin("rsvlog"),
        &["closed", "noconf", "open"],
        t.path(),
        b"one\ntwo\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err,
        "rsvlog: warning: unable to open log directory: closed: access denied\n\
         rsvlog: warning: unable to read config: noconf: access denied\n"
    );
    assert_eq!(
        fs::read(t.path().join("open/current")).unwrap(),
        b"one\ntwo\n"
    );
    assert_eq!(fs::read(c.join("current")).unwrap(), b"one\ntwo\n");
    // Nothing usable: svlogd's fatal line, 111.
    let (code, _, err) = as_nobody(&bin("rsvlog"), &["closed"], t.path(), b"x\n");
    assert_eq!(
        (code, err.as_str()),
        (
            111,
            "rsvlog: warning: unable to open log directory: closed: access denied\n\
             rsvlog: fatal: no functional log directories.\n"
        )
    );
    if have_refs(&["svlogd"]) {
        let (rc, _, rerr) = as_nobody(Path::new("/usr/bin/svlogd"), &["closed"], t.path(), b"x\n");
        assert_eq!((rc, rerr.replace("svlogd", "rsvlog")), (code, err));
    }
}

#[test]
fn s6_log_interface_unusable_dir_is_fatal() {
    if !can_drop() {
        return;
    }
    let t = setup("perm-s6log");
    let (code, _, err) = as_nobody(&bin("rsvlog"), &["t", "./closed"], t.path(), b"x\n");
    assert_eq!(code, 111, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rsvlog: fatal: ") && err.contains("./closed"),
        "{err}"
    );
}

#[test]
fn scanner_supervisor_and_scanctl_name_the_path() {
    if !can_drop() {
        return;
    }
    let t = setup("perm-scan");
    common::script(&t.path().join("closed/run"), "#!/bin/sh\nexec sleep 1000\n");
    for (prog, args) in [
        ("rsvscan", vec!["closed"]),
        ("rsvscan", vec!["--compat", "runit", "closed"]),
        ("rsvscanctl", vec!["-a", "closed"]),
        ("rsupervise", vec!["closed"]),
        ("rsupervise", vec!["--compat", "runit", "closed"]),
    ] {
        let (code, _, err) = as_nobody(&bin(prog), &args, t.path(), b"");
        assert_eq!(code, 111, "{prog} {args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{prog} {args:?}: {err}");
        assert!(
            err.starts_with(&format!("{prog}: fatal: "))
                && err.contains("closed")
                && err.ends_with(": Permission denied\n"),
            "{prog} {args:?}: {err}"
        );
    }
    // Nothing was created inside the service dir.
    assert!(!t.path().join("closed/supervise").exists());
}
