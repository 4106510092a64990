//! Non-root and read-only service trees (issue 6 item 7): rsvscan as uid 65534 on a scan
//! directory it cannot write keeps the state in the runtime directory ($RSV_RUNDIR), and the
//! clients find it there; a read-only bind mount; `supervise -> /run/...` symlinks shipped in
//! the tree for runit's sv and s6's tools; stale state left by an unclean stop.
//!
//! Every test runs rsvscan as PID 1 of its own pid namespace (dropping the guard ends it) and
//! needs root (to drop to 65534 with setpriv, to unshare, to bind-mount).

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use scan::{child_of, unshare_ok};

const SEC: Duration = Duration::from_secs(1);
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Root, unshare and setpriv available (else skipped).
fn can_run() -> bool {
    if !is_root() {
        eprintln!("SKIPPED: needs root");
        return false;
    }
    have_refs(&["setpriv", "unshare"]) && unshare_ok()
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A tree: `<t>/scan` (root's, 0755) and `<t>/rt` (the runtime dir, 1777), `<t>/out` (1777,
/// where services write what they saw).
struct Tree {
    t: TempDir,
    /// The runtime dir's name: `rt` (given as RSV_RUNDIR) or `xdg` (as XDG_RUNTIME_DIR).
    rt_name: &'static str,
}

impl Tree {
    fn new(tag: &str) -> Tree {
        let t = TempDir::new(tag);
        chmod(t.path(), 0o755);
        for d in ["scan", "rt", "out"] {
            fs::create_dir(t.path().join(d)).unwrap();
        }
        chmod(&t.path().join("scan"), 0o755);
        chmod(&t.path().join("rt"), 0o1777);
        chmod(&t.path().join("out"), 0o1777);
        Tree { t, rt_name: "rt" }
    }
    /// The same, with the runtime dir given as XDG_RUNTIME_DIR (a 0700 dir of the user).
    fn with_xdg(tag: &str, uid: u32) -> Tree {
        let mut tree = Tree::new(tag);
        tree.rt_name = "xdg";
        let x = tree.rt();
        fs::create_dir(&x).unwrap();
        chown(&x, Some(uid), Some(uid)).unwrap();
        chmod(&x, 0o700);
        tree
    }
    fn scan(&self) -> PathBuf {
        self.t.path().join("scan")
    }
    fn rt(&self) -> PathBuf {
        self.t.path().join(self.rt_name)
    }
    fn out(&self) -> PathBuf {
        self.t.path().join("out")
    }
    /// A service that records its uid and then sleeps.
    fn service(&self, name: &str) -> PathBuf {
        let sd = self.scan().join(name);
        let out = self.out();
        script(
            &sd.join("run"),
            &format!(
                "#!/bin/sh\nid -u > {o}/{name}.uid\necho $$ >> {o}/{name}.starts\nexec sleep 1000\n",
                o = out.display()
            ),
        );
        chmod(&sd, 0o755);
        sd
    }
}

/// Points `c` at runtime dir `rt`: RSV_RUNDIR=`rt`, except for a dir named `xdg`, which is
/// given as XDG_RUNTIME_DIR (RSV_RUNDIR unset) to exercise the second candidate.
fn runtime_env(c: &mut Command, rt: &Path) {
    c.env_remove("RSV_RUNDIR").env_remove("XDG_RUNTIME_DIR");
    if rt.file_name().and_then(|n| n.to_str()) == Some("xdg") {
        c.env("XDG_RUNTIME_DIR", rt);
    } else {
        c.env("RSV_RUNDIR", rt);
    }
}

/// Runs one of our clients (as `uid` when given) with runtime dir `rt` (see [`runtime_env`]).
fn client(uid: Option<u32>, rt: &Path, prog: &str, args: &[&Path]) -> (i32, String, String) {
    let mut c = match uid {
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={u}"))
                .arg(format!("--regid={u}"))
                .arg("--clear-groups")
                .arg(bin(prog));
            c
        }
        None => Command::new(bin(prog)),
    };
    runtime_env(&mut c, rt);
    c.current_dir("/");
    for a in args {
        c.arg(a);
    }
    run(&mut c, 10 * SEC)
}

fn rsvc(uid: Option<u32>, rt: &Path, flag: &str, sd: &Path) -> (i32, String, String) {
    client(uid, rt, "rsvc", &[Path::new(flag), sd])
}

fn rsvstat(uid: Option<u32>, rt: &Path, sd: &Path) -> String {
    let (_, out, err) = client(uid, rt, "rsvstat", &[sd]);
    format!("{out}{err}")
}

/// Waits until `rsvstat SD` (as `uid`) starts with `what` (`up`/`down`); returns the line.
/// A pid recorded by a previous (killed) supervisor does not count as up: it is shown for the
/// few milliseconds between the new supervisor's lock and its first status write.
fn wait_state(uid: Option<u32>, rt: &Path, sd: &Path, what: &str) -> String {
    wait_for(5 * SEC, &format!("{} {what}", sd.display()), || {
        let s = rsvstat(uid, rt, sd);
        (s.starts_with(&format!("{what} ")) && !s.contains("(pid 999999)")).then_some(s)
    })
}

/// The pid in an `up (pid N) ...` line.
fn pid_of(line: &str) -> i32 {
    line.split("(pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

/// rsvscan as PID 1 of a new pid namespace. `pre` is a shell prefix run inside (as root)
/// before rsvscan is exec'ed, e.g. a bind mount; `uid` drops privileges for rsvscan.
struct Scanner {
    guard: Guard,
    init: i32,
    err: PathBuf,
    out: PathBuf,
}

impl Scanner {
    fn start(tree: &Tree, uid: Option<u32>, args: &[&str], mount_ns: bool, pre: &str) -> Scanner {
        let tag = rand_tag();
        let err = tree.t.path().join(format!("err-{tag}"));
        let errf = fs::File::create(&err).unwrap();
        let out = tree.t.path().join(format!("stdout-{tag}"));
        let outf = fs::File::create(&out).unwrap();
        let mut cmd = Command::new("unshare");
        if mount_ns {
            cmd.arg("--mount");
        }
        cmd.args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "sh",
            "-c",
        ]);
        let drop = match uid {
            Some(u) => format!("setpriv --reuid={u} --regid={u} --clear-groups "),
            None => String::new(),
        };
        let mut line = format!(
            "{pre}exec {drop}{} --supervisor {}",
            bin("rsvscan").display(),
            bin("rsupervise").display()
        );
        for a in args {
            line.push(' ');
            line.push_str(a);
        }
        line.push(' ');
        line.push_str(&tree.scan().display().to_string());
        runtime_env(&mut cmd, &tree.rt());
        cmd.arg(line).stdin(Stdio::null()).stdout(outf).stderr(errf);
        let guard = Guard::spawn(&mut cmd);
        let up = guard.pid();
        let init = wait_for(5 * SEC, "PID 1 of the namespace", || child_of(up));
        Scanner {
            guard,
            init,
            err,
            out,
        }
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// SIGTERM to rsvscan; waits for the namespace to end and returns rsvscan's exit code.
    fn term(mut self) -> i32 {
        // SAFETY: kill(2) on PID 1 of the namespace this test started.
        unsafe {
            libc::kill(self.init, libc::SIGTERM);
        }
        let st = self.guard.wait_exit(15 * SEC);
        st.code().unwrap_or(-1)
    }
}

impl Drop for Scanner {
    fn drop(&mut self) {
        kill_pid(self.init);
    }
}

fn rand_tag() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Nothing was written into the (read-only for the user) scan tree.
fn assert_untouched(scan: &Path) {
    assert!(!scan.join(".s6-svscan").exists());
    for e in fs::read_dir(scan).unwrap().flatten() {
        for entry in ["supervise", "event"] {
            assert!(
                !e.path().join(entry).exists(),
                "{} was created",
                e.path().join(entry).display()
            );
        }
    }
}

#[test]
fn nonroot_with_readonly_scan_dir() {
    if !can_run() {
        return;
    }
    let tree = Tree::new("nonroot-ro");
    let a = tree.service("a");
    let b = tree.service("b");
    script(
        &b.join("log/run"),
        &format!(
            "#!/bin/sh\nid -u > {}/b-log.uid\nexec cat > /dev/null\n",
            tree.out().display()
        ),
    );
    chmod(&b.join("log"), 0o755);
    let rt = tree.rt();
    let me = Some(NOBODY);
    let sc = Scanner::start(&tree, me, &[], false, "");

    let line = wait_state(me, &rt, &a, "up");
    wait_state(me, &rt, &b, "up");
    wait_state(me, &rt, &b.join("log"), "up");
    for f in ["a.uid", "b.uid", "b-log.uid"] {
        // A complete line: the shell creates the file before `id` writes into it.
        let got = wait_for(5 * SEC, f, || {
            fs::read_to_string(tree.out().join(f))
                .ok()
                .filter(|s| s.ends_with('\n'))
        });
        assert_eq!(got.trim(), "65534", "{f}");
    }
    // The state is in the runtime dir, the tree is untouched.
    let canon = fs::canonicalize(&a).unwrap();
    let rel = canon.strip_prefix("/").unwrap();
    let sup = rt.join("sv").join(rel).join("supervise");
    assert!(sup.join("status").is_file(), "{}", sup.display());
    assert!(rt.join("sv").join(rel).join("event").is_dir());
    assert_untouched(&tree.scan());
    assert_eq!(
        fs::metadata(&sup)
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .unwrap(),
        NOBODY
    );

    // Control and status as the same user, with the same environment.
    let (rc, _, err) = rsvc(me, &rt, "-d", &a);
    assert_eq!(rc, 0, "{err}");
    wait_state(me, &rt, &a, "down");
    let (rc, _, err) = rsvc(me, &rt, "-u", &a);
    assert_eq!(rc, 0, "{err}");
    let line2 = wait_state(me, &rt, &a, "up");
    assert_ne!(pid_of(&line), pid_of(&line2));
    let (rc, _, _) = client(me, &rt, "rsvok", &[&a]);
    assert_eq!(rc, 0);
    // The sv personality of rsvc finds it too (status and a command word).
    let (rc, out, err) = client(me, &rt, "rsvc", &[Path::new("status"), &a]);
    assert_eq!(rc, 0, "{err}");
    let want = format!("run: {}: (pid {})", a.display(), pid_of(&line2));
    assert!(out.starts_with(&want), "{out}");
    let (rc, out, err) = client(me, &rt, "rsvc", &[Path::new("-v"), Path::new("down"), &b]);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.starts_with("ok: down: "), "{out}");
    let (rc, _, err) = rsvc(me, &rt, "-u", &b);
    assert_eq!(rc, 0, "{err}");
    // rsvc -wu (waits on the relocated event dir).
    let (rc, _, err) = client(me, &rt, "rsvc", &[Path::new("-wD"), Path::new("-d"), &a]);
    assert_eq!(rc, 0, "{err}");
    // Root finds it too (it may inspect a non-root tree).
    assert!(rsvstat(None, &rt, &a).starts_with("down "));
    // The scan dir as operand: the table lists both services as supervised.
    let table = rsvstat(me, &rt, &tree.scan());
    assert!(!table.contains("unsupervised"), "{table}");
    // Root starting a second supervisor or scanner on the same tree (where root could write)
    // is refused: the state is live in the runtime dir.
    let (rc, _, err) = client(None, &rt, "rsupervise", &[&a]);
    assert_eq!(rc, 111, "{err}");
    assert!(err.contains("another supervisor holds"), "{err}");
    let (rc, _, err) = client(None, &rt, "rsvscan", &[&tree.scan()]);
    assert_eq!(rc, 111, "{err}");
    assert!(err.contains("another supervisor holds"), "{err}");
    assert_untouched(&tree.scan());
    // rsvscanctl finds the relocated control FIFO.
    let (rc, _, err) = client(me, &rt, "rsvscanctl", &[Path::new("-a"), &tree.scan()]);
    assert_eq!(rc, 0, "{err}");

    let err = sc.stderr();
    assert_eq!(sc.term(), 0, "stderr: {err}");
    assert!(
        !err.contains("fatal") && !err.contains("unusable"),
        "stderr: {err}"
    );
    assert_untouched(&tree.scan());
}

#[test]
fn readonly_bind_mount_as_root() {
    if !can_run() || !have_refs(&["mount"]) {
        return;
    }
    let tree = Tree::new("nonroot-bind");
    let a = tree.service("a");
    let rt = tree.rt();
    let scan = tree.scan();
    let pre = format!(
        "mount --bind {s} {s} && mount -o remount,bind,ro {s} && touch {s}/probe 2>/dev/null && exit 3; ",
        s = scan.display()
    );
    let sc = Scanner::start(&tree, None, &["--compat", "runit"], true, &pre);
    let line = wait_state(None, &rt, &a, "up");
    assert!(pid_of(&line) > 0);
    assert_eq!(
        wait_for(5 * SEC, "a.uid", || fs::read_to_string(
            tree.out().join("a.uid")
        )
        .ok()
        .filter(|s| s.ends_with('\n')))
        .trim(),
        "0"
    );
    // Outside the mount namespace the tree is writable, but nothing was written into it.
    assert_untouched(&scan);
    let (rc, _, err) = rsvc(None, &rt, "-d", &a);
    assert_eq!(rc, 0, "{err}");
    wait_state(None, &rt, &a, "down");
    let err = sc.stderr();
    assert_eq!(sc.term(), 0, "stderr: {err}");
}

/// The Debian way: the tree ships `supervise -> <runtime>/...` symlinks (dangling until the
/// supervisor creates the targets, parents included); runit's sv and s6's tools see the
/// state through them.
#[test]
fn shipped_symlinks_work_with_the_references() {
    if !can_run() || !have_refs(&["sv", "s6-svstat", "s6-svok", "s6-svc"]) {
        return;
    }
    // runit mode for sv (it needs the ok FIFO), s6 mode for s6's tools (they need the s6
    // status layout).
    for mode in ["runit", "s6"] {
        let tree = Tree::new(&format!("nonroot-link-{mode}"));
        let a = tree.service("a");
        let target = tree.rt().join("links/a/supervise");
        std::os::unix::fs::symlink(&target, a.join("supervise")).unwrap();
        let rt = tree.rt();
        let me = Some(NOBODY);
        let sc = Scanner::start(&tree, me, &["--compat", mode], false, "");
        let line = wait_state(me, &rt, &a, "up");
        assert!(target.join("status").is_file());
        let pid = pid_of(&line);
        let as_nobody = |prog: &str, args: &[&str]| {
            run(
                Command::new("setpriv")
                    .args(["--reuid=65534", "--regid=65534", "--clear-groups", prog])
                    .args(args)
                    .arg(&a),
                10 * SEC,
            )
        };
        if mode == "runit" {
            let (rc, out, err) = run(Command::new("sv").arg("status").arg(&a), 10 * SEC);
            assert_eq!(rc, 0, "{out}{err}");
            let want = format!("run: {}: (pid {pid})", a.display());
            assert!(out.starts_with(&want), "{out}");
            let (rc, out, err) = as_nobody("sv", &["down"]);
            assert_eq!(rc, 0, "{out}{err}");
        } else {
            let (rc, out, err) = run(Command::new("s6-svstat").arg(&a), 10 * SEC);
            assert_eq!(rc, 0, "{err}");
            assert!(out.starts_with(&format!("up (pid {pid})")), "{out}");
            let (rc, _, _) = run(Command::new("s6-svok").arg(&a), 10 * SEC);
            assert_eq!(rc, 0);
            let (rc, out, err) = as_nobody("s6-svc", &["-d"]);
            assert_eq!(rc, 0, "{out}{err}");
        }
        wait_state(me, &rt, &a, "down");
        let err = sc.stderr();
        assert_eq!(sc.term(), 0, "stderr: {err}");
        assert!(!err.contains("unusable"), "stderr: {err}");
    }
}

/// A 20-byte runit status saying "up, pid PID, want up" (an unclean stop's leftover).
fn stale_runit_status(pid: u32) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 100;
    let mut b = Vec::new();
    b.extend_from_slice(&((1u64 << 62) + 10 + now).to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&pid.to_le_bytes());
    b.extend_from_slice(&[0, b'u', 0, 1]);
    b
}

/// Fills `sup` with what an unclean stop leaves: status "up" with a dead pid, a lock nobody
/// holds, control and ok FIFOs, temp files; `event/` with a FIFO nobody reads.
fn plant_stale(sd: &Path, sup: &Path) {
    fs::create_dir_all(sup).unwrap();
    fs::write(sup.join("status"), stale_runit_status(999_999)).unwrap();
    fs::write(sup.join("pid"), "999999\n").unwrap();
    fs::write(sup.join("stat"), "run\n").unwrap();
    fs::write(sup.join("lock"), "").unwrap();
    for f in ["status.new", "stat.new", "pid.new", "rsv-state.new"] {
        fs::write(sup.join(f), "garbage").unwrap();
    }
    let mkfifo =
        |p: &Path| nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    mkfifo(&sup.join("control"));
    mkfifo(&sup.join("ok"));
    fs::create_dir_all(sd.join("event")).unwrap();
    mkfifo(&sd.join("event/ftrig1:@400000006b089ea52902bae6:abcdef"));
}

/// Same uid: a tree killed with SIGKILL (and a synthetic leftover) comes back controllable
/// by rsvc, runit's sv and s6-svc; the status says the truth at once.
#[test]
fn stale_state_same_uid_is_reused() {
    if !can_run() || !have_refs(&["sv", "s6-svc"]) {
        return;
    }
    let tree = Tree::new("nonroot-stale");
    let a = tree.service("a");
    let b = tree.service("b");
    plant_stale(&a, &a.join("supervise"));
    let scan = tree.scan();
    fs::create_dir_all(scan.join(".s6-svscan")).unwrap();
    fs::write(scan.join(".s6-svscan/lock"), "").unwrap();
    nix::unistd::mkfifo(
        &scan.join(".s6-svscan/control"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let rt = tree.rt();
    let sc = Scanner::start(&tree, None, &["--compat", "runit"], false, "");
    let line = wait_state(None, &rt, &a, "up");
    let pid = pid_of(&line);
    assert_ne!(pid, 999_999);
    // The planted temp files are gone; what has the name now is our own spare (the
    // previous content of the file it belongs to).
    for f in ["status.new", "stat.new", "pid.new", "rsv-state.new"] {
        let left = fs::read(a.join("supervise").join(f)).unwrap_or_default();
        assert!(!left.starts_with(b"garbage"), "{f} left");
    }
    assert_eq!(
        fs::read_to_string(a.join("supervise/pid")).unwrap(),
        format!("{pid}\n")
    );
    wait_state(None, &rt, &b, "up");
    assert!(
        !a.join("event/ftrig1:@400000006b089ea52902bae6:abcdef")
            .exists()
    );

    // SIGKILL the whole tree (PID 1 dies, the namespace goes), as a container runtime does.
    drop(sc);
    wait_for(5 * SEC, "old supervisor gone", || {
        (client(None, &rt, "rsvok", &[&a]).0 == 1).then_some(())
    });
    let sc = Scanner::start(&tree, None, &["--compat", "runit"], false, "");
    let starts = tree.out().join("a.starts");
    wait_for(5 * SEC, "second start of a", || {
        let n = fs::read_to_string(&starts)
            .unwrap_or_default()
            .lines()
            .count();
        (n == 2).then_some(())
    });
    let line2 = wait_state(None, &rt, &a, "up");
    let second = fs::read_to_string(&starts).unwrap();
    assert_eq!(
        second.lines().nth(1),
        Some(pid_of(&line2).to_string().as_str())
    );

    let (rc, out, err) = run(Command::new("sv").arg("down").arg(&a), 10 * SEC);
    assert_eq!(rc, 0, "{out}{err}");
    wait_state(None, &rt, &a, "down");
    let (rc, _, err) = run(Command::new("s6-svc").arg("-u").arg(&a), 10 * SEC);
    assert_eq!(rc, 0, "{err}");
    wait_state(None, &rt, &a, "up");
    let (rc, _, err) = rsvc(None, &rt, "-d", &a);
    assert_eq!(rc, 0, "{err}");
    wait_state(None, &rt, &a, "down");
    let (rc, _, err) = client(None, &rt, "rsvscanctl", &[Path::new("-a"), &scan]);
    assert_eq!(rc, 0, "{err}");
    let err = sc.stderr();
    assert_eq!(sc.term(), 0, "stderr: {err}");
}

/// Another uid: state left by a root run. `a/supervise` is root's and not writable by the
/// user: the state moves to the runtime dir with one warning; `b/supervise` is the user's but
/// holds root's lock, FIFOs and temp files: they are replaced in place. `.s6-svscan` is
/// root's: relocated. Both services come up and are controllable.
#[test]
fn stale_state_of_another_uid() {
    if !can_run() {
        return;
    }
    // runit mode (waits poll the status) and s6 mode (waits listen on event/).
    for mode in ["runit", "s6"] {
        stale_of_another_uid(mode);
    }
}

fn stale_of_another_uid(mode: &str) {
    let tree = Tree::new(&format!("nonroot-stale-uid-{mode}"));
    let scan = tree.scan();
    let a = tree.service("a");
    let b = tree.service("b");
    plant_stale(&a, &a.join("supervise"));
    chmod(&a.join("supervise"), 0o700);
    plant_stale(&b, &b.join("supervise"));
    // c: the user's supervise dir, but runsv's 0600 lock of root in it (cannot be probed).
    let c = tree.service("c");
    plant_stale(&c, &c.join("supervise"));
    chmod(&c.join("supervise/lock"), 0o600);
    chown(c.join("supervise"), Some(NOBODY), Some(NOBODY)).unwrap();
    chown(&c, Some(NOBODY), Some(NOBODY)).unwrap();
    // The user owns the tree (a writable scan dir), but not what root left in it.
    for d in [&scan, &a, &b, &b.join("supervise")] {
        chown(d, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    fs::create_dir_all(scan.join(".s6-svscan")).unwrap();
    fs::write(scan.join(".s6-svscan/lock"), "").unwrap();
    let rt = tree.rt();
    let me = Some(NOBODY);
    let sc = Scanner::start(&tree, me, &["--compat", mode], false, "");
    let la = wait_state(me, &rt, &a, "up");
    let lb = wait_state(me, &rt, &b, "up");
    wait_state(me, &rt, &c, "up");
    assert_ne!(pid_of(&la), 999_999);
    assert_ne!(pid_of(&lb), 999_999);
    // b kept its place; its stale files were replaced by ours.
    let bsup = b.join("supervise");
    let files: &[&str] = match mode {
        "runit" => &["lock", "control", "ok", "status"],
        _ => &["lock", "control", "status"],
    };
    for f in files {
        let m = fs::metadata(bsup.join(f)).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&m), NOBODY, "{f}");
    }
    assert!(
        !fs::read(bsup.join("status.new"))
            .unwrap_or_default()
            .starts_with(b"garbage")
    );
    // a moved; root's stale dir is untouched.
    assert_eq!(
        fs::read(a.join("supervise/status")).unwrap()[12..16],
        999_999u32.to_le_bytes()
    );
    for sd in [&a, &b, &c] {
        let (rc, _, err) = rsvc(me, &rt, "-d", sd);
        assert_eq!(rc, 0, "{err}");
        wait_state(me, &rt, sd, "down");
    }
    // Root's view prefers the live state over the stale one in a/supervise, and its waits
    // listen on the live supervisor's event dir, not on root's stale a/event or b/event.
    assert!(rsvstat(None, &rt, &a).starts_with("down "));
    for sd in [&a, &b] {
        let (rc, _, err) = client(
            None,
            &rt,
            "rsvc",
            &[Path::new("-wu"), Path::new("-T5000"), Path::new("-u"), sd],
        );
        assert_eq!(rc, 0, "{err}");
        assert!(rsvstat(None, &rt, sd).starts_with("up "));
    }
    let (rc, _, err) = client(me, &rt, "rsvscanctl", &[Path::new("-a"), &scan]);
    assert_eq!(rc, 0, "{err}");
    let err = sc.stderr();
    assert_eq!(sc.term(), 0, "stderr: {err}");
    let warned = |what: &str| err.lines().filter(|l| l.contains(what)).count();
    assert_eq!(warned("a/supervise is unusable"), 1, "stderr: {err}");
    assert_eq!(warned(".s6-svscan is unusable"), 1, "stderr: {err}");
    assert_eq!(warned("b/supervise is unusable"), 0, "stderr: {err}");
    assert_eq!(warned("c/supervise is unusable"), 1, "stderr: {err}");
}

/// No RSV_RUNDIR: the state goes to $XDG_RUNTIME_DIR/rsv.
#[test]
fn xdg_runtime_dir_is_the_second_candidate() {
    if !can_run() {
        return;
    }
    let tree = Tree::with_xdg("nonroot-xdg", NOBODY);
    let a = tree.service("a");
    let rt = tree.rt();
    let me = Some(NOBODY);
    let sc = Scanner::start(&tree, me, &[], false, "");
    wait_state(me, &rt, &a, "up");
    let canon = fs::canonicalize(&a).unwrap();
    let sup = rt
        .join("rsv/sv")
        .join(canon.strip_prefix("/").unwrap())
        .join("supervise");
    assert!(sup.join("lock").is_file(), "{}", sup.display());
    let (rc, _, err) = rsvc(me, &rt, "-d", &a);
    assert_eq!(rc, 0, "{err}");
    wait_state(me, &rt, &a, "down");
    assert_untouched(&tree.scan());
    let err = sc.stderr();
    assert_eq!(sc.term(), 0, "stderr: {err}");
}

/// servicedirs-examples/nonroot runs as documented: a root-owned copy, rsvscan as 65534.
#[test]
fn nonroot_example_runs_as_documented() {
    if !can_run() {
        return;
    }
    let tree = Tree::new("nonroot-example");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("servicedirs-examples/nonroot");
    let (rc, _, err) = run(
        Command::new("cp")
            .arg("-a")
            .arg(src.join("hello"))
            .arg(src.join("ticker"))
            .arg(src.join("README.md"))
            .arg(tree.scan()),
        10 * SEC,
    );
    assert_eq!(rc, 0, "{err}");
    let rt = tree.rt();
    let me = Some(NOBODY);
    let sc = Scanner::start(&tree, me, &[], false, "");
    for name in ["hello", "ticker"] {
        wait_state(me, &rt, &tree.scan().join(name), "up");
    }
    wait_for(5 * SEC, "output of both services", || {
        let out = sc.stdout();
        (out.contains("hello: running as uid 65534, gid 65534") && out.contains("ticker: tick 1"))
            .then_some(())
    });
    let table = rsvstat(me, &rt, &tree.scan());
    assert_eq!(
        table.lines().filter(|l| l.contains(" up ")).count(),
        2,
        "{table}"
    );
    assert_untouched(&tree.scan());
    let err = sc.stderr();
    assert_eq!(sc.term(), 0, "stderr: {err}");
}

/// An essential service of a read-only tree run as 65534: its final stop ends rsvscan with the
/// service's exit code, read from the relocated `supervise/rsv-state`.
#[test]
fn essential_service_of_a_readonly_tree() {
    if !can_run() {
        return;
    }
    let tree = Tree::new("nonroot-essential");
    tree.service("helper");
    let app = tree.scan().join("app");
    script(&app.join("run"), "#!/bin/sh\nsleep 0.3\nexit 7\n");
    fs::write(app.join("essential"), "").unwrap();
    chmod(&app, 0o755);
    let mut sc = Scanner::start(&tree, Some(NOBODY), &[], false, "");
    let st = sc.guard.wait_exit(15 * SEC);
    let err = sc.stderr();
    assert_eq!(st.code(), Some(7), "stderr: {err}");
    assert_untouched(&tree.scan());
}
