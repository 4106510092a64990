//! rsvexec invoked as `chpst` against runit's real chpst: the same options on the same inputs
//! must give the same exit code, output and messages (ids, groups, environment, limits,
//! nice value, root change, locks, closed descriptors, errors).

mod common;

use common::{TempDir, have_refs, run, script};
use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
const STATUS: &str = "while read k v; do case $k in Uid:|Gid:|Groups:) echo \"$k $v\";; esac; done </proc/self/status";

/// A directory holding a link named `chpst` to our binary.
struct Ours {
    _dir: TempDir,
    chpst: PathBuf,
}

fn ours() -> Ours {
    let dir = TempDir::new("rsvexec-bin");
    let chpst = dir.path().join("chpst");
    symlink(env!("CARGO_BIN_EXE_rsvexec"), &chpst).unwrap();
    Ours { _dir: dir, chpst }
}

/// Runs `prog args` in `cwd` with a fixed environment, optionally as uid/gid 65534.
fn outcome(prog: &Path, args: &[&str], cwd: &Path, nobody: bool) -> (i32, String, String) {
    let mut c = Command::new(prog);
    c.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("KEEP", "kept")
        .env("A", "old");
    if nobody {
        c.uid(65534).gid(65534);
    }
    run(&mut c, LIMIT)
}

/// Asserts that real chpst and ours agree on `args`; returns our outcome.
fn same(o: &Ours, args: &[&str], cwd: &Path, nobody: bool) -> (i32, String, String) {
    let theirs = outcome(Path::new("chpst"), args, cwd, nobody);
    let mine = outcome(&o.chpst, args, cwd, nobody);
    assert_eq!(mine, theirs, "chpst {args:?} (nobody: {nobody})");
    mine
}

fn refs() -> bool {
    have_refs(&["chpst"])
}

#[test]
fn usage_errors_match() {
    if !refs() {
        return;
    }
    let o = ours();
    let t = TempDir::new("rsvexec-usage");
    for args in [
        &[][..],
        &["-V"],
        &["-x", "true"],
        &["-u"],
        &["-m", "abc", "true"],
        &["-m", "-5", "true"],
        &["-n", "3x", "true"],
        &["-n", "-+3", "true"],
        &["-o", "=", "true"],
        &["-v"],
    ] {
        let (rc, _, err) = same(&o, args, t.path(), false);
        assert_eq!(rc, 100, "{args:?}");
        assert!(err.contains("usage: chpst"), "{err}");
    }
}

#[test]
fn users_and_groups_match() {
    if !refs() {
        return;
    }
    let o = ours();
    let t = TempDir::new("rsvexec-users");
    for spec in [
        "nobody",
        "nobody:nogroup",
        "nobody:nogroup:root:daemon",
        ":1234:5678:910",
        ":77:",
        "::88",
        ":1:2::3",
    ] {
        let (rc, out, _) = same(&o, &["-u", spec, "sh", "-c", STATUS], t.path(), false);
        assert_eq!(rc, 0, "{spec}");
        assert!(out.starts_with("Uid:"), "{out}");
    }
    for spec in [
        "nosuchuser",
        "nobody:nosuchgroup",
        "nobody:",
        "",
        ":77",
        ":1:2x",
        ":-1:2",
    ] {
        let (rc, _, err) = same(&o, &["-u", spec, "true"], t.path(), false);
        assert_eq!(rc, 111, "{spec}");
        assert!(err.starts_with("chpst: fatal: "), "{err}");
    }
    for spec in [
        "nobody",
        "nobody:nogroup:root",
        ":1:2:3",
        ":1",
        "nosuchuser",
    ] {
        same(
            &o,
            &["-U", spec, "sh", "-c", "echo $UID $GID"],
            t.path(),
            false,
        );
    }
    // Both: -U sets the variables, -u the ids.
    same(
        &o,
        &[
            "-U",
            "nobody",
            "-u",
            ":5:6",
            "sh",
            "-c",
            &format!("echo $UID $GID; {STATUS}"),
        ],
        t.path(),
        false,
    );
}

#[test]
fn envdir_matches() {
    if !refs() {
        return;
    }
    let o = ours();
    let t = TempDir::new("rsvexec-env");
    let e = t.path().join("env");
    fs::create_dir(&e).unwrap();
    fs::write(e.join("A"), "new\n").unwrap();
    fs::write(e.join("B"), "trailing \t \nsecond line").unwrap();
    fs::write(e.join("C"), b"nul\0inside\r").unwrap();
    fs::write(e.join("KEEP"), "").unwrap();
    fs::write(e.join(".hidden"), "x").unwrap();
    fs::write(e.join("X=Y"), "eq").unwrap();
    fs::create_dir(e.join("SUB")).unwrap();
    symlink("/nonexistent", e.join("DANGLING")).unwrap();
    // The environment in order, as the program sees it.
    let (rc, out, _) = same(&o, &["-e", "env", "env"], t.path(), false);
    assert_eq!(rc, 0);
    assert!(out.contains("A=new\n") && !out.contains("KEEP="), "{out}");
    assert!(out.contains("B=trailing\n"), "{out}");
    same(&o, &["-v", "-e", "env", "true"], t.path(), false);
    // PATH emptied by the envdir does not change where the program is found.
    fs::write(e.join("PATH"), "").unwrap();
    same(&o, &["-e", "env", "env"], t.path(), false);
    let (rc, _, err) = same(&o, &["-e", "missing", "true"], t.path(), false);
    assert_eq!(rc, 111, "{err}");
    same(&o, &["-e", "env/A", "true"], t.path(), false);
    // Unreadable file, as nobody.
    let locked = t.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::write(locked.join("S"), "secret").unwrap();
    fs::set_permissions(
        locked.join("S"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (rc, _, err) = same(&o, &["-e", "locked", "true"], t.path(), true);
    assert_eq!(rc, 111);
    assert!(
        err.contains("unable to read locked/S: access denied"),
        "{err}"
    );
}

#[test]
fn limits_nice_argv0_and_descriptors_match() {
    if !refs() {
        return;
    }
    let o = ours();
    let t = TempDir::new("rsvexec-limits");
    let limits = ["sh", "-c", "cat /proc/self/limits"];
    for opts in [
        &["-o", "64"][..],
        &["-m", "100000000"],
        &["-m", "100000000", "-d", "5000000"],
        &[
            "-d", "12345678", "-f", "4096", "-c", "0", "-t", "30", "-r", "1000000", "-p", "500",
        ],
        &["-o", "99999999"],
        &["-c", "18446744073709551615"],
        &["-c", "18446744073709551614"],
        &["-c", ""],
    ] {
        let args: Vec<&str> = opts.iter().chain(limits.iter()).copied().collect();
        let (rc, out, _) = same(&o, &args, t.path(), false);
        assert_eq!(rc, 0, "{opts:?}");
        assert!(out.contains("Max open files"));
        let (rc, _, _) = same(&o, &args, t.path(), true);
        assert_eq!(rc, 0, "{opts:?} as nobody");
    }
    let nice = ["sh", "-c", "cut -d' ' -f19 /proc/self/stat"];
    for n in ["5", "+3", "-5", "100", "-100", "-", ""] {
        let args: Vec<&str> = ["-n", n].iter().chain(nice.iter()).copied().collect();
        let (rc, out, _) = same(&o, &args, t.path(), false);
        assert_eq!(rc, 0, "nice {n}");
        assert!(!out.is_empty());
    }
    // Raising priority as nobody fails.
    let (rc, _, err) = same(&o, &["-n", "-3", "true"], t.path(), true);
    assert_eq!(rc, 111);
    assert!(
        err.contains("unable to set nice level: permission denied"),
        "{err}"
    );
    same(&o, &["-b", "zero", "sh", "-c", "echo $0"], t.path(), false);
    same(
        &o,
        &[
            "-P",
            "sh",
            "-c",
            "cut -d' ' -f1,5,6 /proc/self/stat | awk '{print ($1==$2) ($2==$3)}'",
        ],
        t.path(),
        false,
    );
    // Which of fds 0, 1, 2 the program has, as its exit code (bit N = fd N open): stable,
    // unlike a listing of /proc/$$/fd, which races with the shell's own pipe descriptors.
    let probe = "c=0; [ -e /proc/$$/fd/0 ] && c=$((c+1)); [ -e /proc/$$/fd/1 ] && c=$((c+2)); \
                 [ -e /proc/$$/fd/2 ] && c=$((c+4)); exit $c";
    for (c, want) in [("-0", 6), ("-1", 5), ("-2", 3), ("-012", 0)] {
        let (code, _, _) = same(&o, &[c, "sh", "-c", probe], t.path(), false);
        assert_eq!(code, want, "chpst {c}");
    }
}

#[test]
fn program_errors_match() {
    if !refs() {
        return;
    }
    let o = ours();
    let t = TempDir::new("rsvexec-prog");
    script(&t.path().join("noshebang"), "echo hi\n");
    script(&t.path().join("badinterp"), "#!/nonexistent/interp\n");
    fs::write(t.path().join("plain"), "#!/bin/sh\n").unwrap();
    for args in [
        &["nosuchprog"][..],
        &["/nonexistent/prog"],
        &["./noshebang"],
        &["./badinterp"],
        &["./plain"],
        &["/tmp"],
        &[""],
        &["-b", "shown", "nosuchprog"],
        &["--", "sh", "-c", "exit 7"],
        &["sh", "-c", "kill -TERM $$"],
    ] {
        same(&o, args, t.path(), false);
    }
    same(
        &o,
        &["-u", "nobody", "chpst", "-u", "root", "true"],
        t.path(),
        false,
    );
    same(&o, &["-/", "/", "true"], t.path(), true);
}

fn flock_held_by_us(path: &Path) -> fs::File {
    let f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock(2) on a descriptor we own for the duration of the test.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(r, 0);
    f
}

#[test]
fn locks_match() {
    if !refs() {
        return;
    }
    let o = ours();
    let t = TempDir::new("rsvexec-lock");
    // Free lock: created, held by the program (fd 3).
    same(
        &o,
        &[
            "-L",
            "lk",
            "sh",
            "-c",
            "ls -l /proc/$$/fd/3 | sed 's/.*-> //'",
        ],
        t.path(),
        false,
    );
    same(&o, &["-L", "nodir/lk", "true"], t.path(), false);
    fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    same(&o, &["-l", "lk2", "true"], t.path(), true);
    // Held lock: -L fails at once.
    let held = flock_held_by_us(&t.path().join("lk"));
    let (rc, _, err) = same(&o, &["-L", "lk", "true"], t.path(), false);
    assert_eq!(rc, 111);
    assert!(
        err.contains("unable to lock: lk: temporary failure"),
        "{err}"
    );
    // -l waits until the lock is released.
    let mut waiters = Vec::new();
    for (i, prog) in [PathBuf::from("chpst"), o.chpst.clone()].iter().enumerate() {
        let marker = t.path().join(format!("got{i}"));
        let child = Command::new(prog)
            .args(["-l", "lk", "touch"])
            .arg(&marker)
            .current_dir(t.path())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        waiters.push((common::Guard(Some(child)), marker));
    }
    std::thread::sleep(Duration::from_millis(300));
    for (g, m) in &mut waiters {
        assert!(!m.exists(), "lock not waited for");
        assert!(g.0.as_mut().unwrap().try_wait().unwrap().is_none());
    }
    drop(held);
    for (mut g, m) in waiters {
        assert!(g.wait_exit(LIMIT).success());
        assert!(m.exists());
    }
}

/// A root directory with /bin/sh and its shared libraries (found with ldd), and its own
/// passwd and group files.
fn make_root(root: &Path) -> bool {
    let out = Command::new("ldd").arg("/bin/sh").output();
    let Ok(out) = out else { return false };
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::copy("/bin/sh", root.join("bin/sh")).unwrap();
    for word in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        if word.starts_with('/') {
            let dest = root.join(word.trim_start_matches('/'));
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            if fs::copy(word, &dest).is_err() {
                return false;
            }
        }
    }
    fs::write(root.join("etc/passwd"), "ghost:x:4242:4343::/:/bin/sh\n").unwrap();
    fs::write(
        root.join("etc/group"),
        "ghostg:x:4343:\nextra:x:5000:ghost\nother:x:5001:\n",
    )
    .unwrap();
    fs::create_dir_all(root.join("env")).unwrap();
    fs::write(root.join("env/WHERE"), "inside").unwrap();
    true
}

#[test]
fn root_change_matches() {
    if !refs() {
        return;
    }
    let o = ours();
    let t = TempDir::new("rsvexec-root");
    let root = t.path().join("root");
    if !make_root(&root) {
        eprintln!("SKIPPED: cannot build a root dir from /bin/sh and ldd");
        return;
    }
    fs::create_dir(t.path().join("env")).unwrap();
    fs::write(t.path().join("env/WHERE"), "outside").unwrap();
    let read = "read x </proc/self/status 2>/dev/null; echo \"$WHERE $UID $GID $(pwd)\"";
    for args in [
        &["-/", "root", "/bin/sh", "-c", read][..],
        &["-/", "root", "-e", "env", "/bin/sh", "-c", read],
        &[
            "-/",
            "root",
            "-U",
            "ghost:other:extra",
            "/bin/sh",
            "-c",
            read,
        ],
        &["-/", "root", "-u", "nobody", "/bin/sh", "-c", "true"],
        &[
            "-/",
            "root",
            "-l",
            "/lockfile",
            "/bin/sh",
            "-c",
            "echo locked",
        ],
        &["-/", "root", "sh", "-c", "true"],
        &["-/", "missing", "/bin/sh", "-c", "true"],
    ] {
        same(&o, args, t.path(), false);
    }
    assert!(root.join("lockfile").exists());
    // Ids set inside the root, from the root's own files: a directory only uid 4242 may
    // write, and one only group 5000 ("extra") may write.
    use std::os::unix::fs::PermissionsExt;
    for (d, uid, gid, mode) in [("u", 4242, 0, 0o700), ("g", 0, 5000, 0o070)] {
        let p = root.join(d);
        fs::create_dir(&p).unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
    let probe = "echo >/u/a && echo u-ok; echo >/g/a && echo g-ok";
    let (rc, out, _) = same(
        &o,
        &[
            "-/",
            "root",
            "-u",
            "ghost:other:extra",
            "/bin/sh",
            "-c",
            probe,
        ],
        t.path(),
        false,
    );
    assert_eq!((rc, out.as_str()), (0, "u-ok\ng-ok\n"));
    let (_, out, _) = same(
        &o,
        &["-/", "root", "-u", "ghost", "/bin/sh", "-c", probe],
        t.path(),
        false,
    );
    assert_eq!(out, "u-ok\n");
}

#[test]
fn rsvexec_name_and_version() {
    let t = TempDir::new("rsvexec-name");
    let exe = Path::new(env!("CARGO_BIN_EXE_rsvexec"));
    let (rc, _, err) = outcome(exe, &["-u", "nosuchuser", "true"], t.path(), false);
    assert_eq!(
        (rc, err.as_str()),
        (111, "rsvexec: fatal: unknown user/group: nosuchuser\n")
    );
    let (rc, _, err) = outcome(exe, &["-V"], t.path(), false);
    assert_eq!(rc, 100);
    assert!(err.starts_with("rsvexec "), "{err}");
    assert!(
        err.contains("usage: rsvexec ") && err.contains("[-r n]"),
        "{err}"
    );
    let (rc, out, _) = outcome(
        exe,
        &[
            "-u",
            "nobody:nogroup",
            "-n",
            "2",
            "-o",
            "77",
            "sh",
            "-c",
            "id -u; id -g; ulimit -n",
        ],
        t.path(),
        false,
    );
    assert_eq!((rc, out.as_str()), (0, "65534\n65534\n77\n"));
}
