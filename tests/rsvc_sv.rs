//! rsvc in its sv personality, against real runsv (and s6-supervise), compared with runit's sv.

mod cli_util;
mod common;

use cli_util::*;
use common::{TempDir, have_refs, script, wait_for};
use std::fs;
use std::path::Path;
use std::time::Duration;

fn refs() -> bool {
    have_refs(&["runsv", "sv", "s6-supervise"])
}

#[test]
fn status_lines_match_sv() {
    if !refs() {
        return;
    }
    let t = TempDir::new("sv-status");
    let names = Names::new();
    let sv = names.ours("sv");
    let a = Svc::start(t.path(), "a", Kind::Runsv, "exec sleep 1000");
    script(
        &t.path().join("b/log/run"),
        "#!/bin/sh\nexec cat >/dev/null\n",
    );
    let b = Svc::start(t.path(), "b", Kind::Runsv, "exec sleep 1000");
    fs::create_dir_all(t.path().join("c")).unwrap();
    fs::write(t.path().join("c/down"), "").unwrap();
    let c = Svc::start(t.path(), "c", Kind::Runsv, "exec sleep 1000");
    a.wait_up();
    b.wait_up();
    wait_for(Duration::from_secs(5), "log up", || {
        (pid_of(&b.dir.join("log")) != 0).then_some(())
    });
    let svdir = t.path().to_str().unwrap();
    let env = [("SVDIR", svdir)];
    let root = Path::new("/");
    for args in [
        vec!["status", "./a"],
        vec!["status", "a", "b", "c", "nosuch"],
        vec!["status", "a/"],
        vec!["s", "b"],
        vec!["status", a.path()],
        vec!["status", "b/log"],
    ] {
        let cwd = if args[1].starts_with('.') || args[1].ends_with('/') {
            t.path()
        } else {
            root
        };
        let (code, out, _) = same("sv", &sv, &args, cwd, &env);
        assert!(code <= 1, "{args:?}: {code} {out}");
    }
    let (code, out, _) = same("sv", &sv, &["status", "b"], root, &env);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("run: b: (pid ") && out.contains("; run: log: (pid "),
        "{out}"
    );
    // paused, and a service whose run is not yet up after sv once on a down-file service
    same("sv", &sv, &["pause", "a"], root, &env);
    wait_for(Duration::from_secs(5), "paused", || {
        matches!(rsv::svview::View::read(&a.dir), Ok(v) if v.paused).then_some(())
    });
    let (_, out, _) = same("sv", &sv, &["status", "a", "c"], root, &env);
    assert!(out.contains(", paused"), "{out}");
    assert!(out.contains("down: c: "), "{out}");
    same("sv", &sv, &["cont", "a"], root, &env);
    // Started as rsvc: a bare name under SVDIR that does not exist gets sv's one line and
    // exit code, for every kind of command word; the other services are still served.
    let rsvc = common::bin("rsvc");
    for w in ["status", "up", "down", "restart", "check"] {
        let (code, out, err) = exec(&rsvc, &[w, "nosuch"], root, &env);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (
                1,
                "fail: nosuch: unable to change to service directory: file does not exist\n",
                ""
            ),
            "{w}"
        );
    }
    let (code, out, _) = exec(&rsvc, &["status", "nosuch", "a"], root, &env);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("fail: nosuch: unable to change to service directory: file does not exist\nrun: a: (pid "),
        "{out}"
    );
    drop(c);
}

#[test]
fn commands_and_waits() {
    if !refs() {
        return;
    }
    let t = TempDir::new("sv-cmd");
    let names = Names::new();
    let sv = names.ours("sv");
    let a = Svc::start(t.path(), "a", Kind::Runsv, "exec sleep 1000");
    let p1 = a.wait_up();
    let cwd = t.path();
    let (code, out, err) = exec(&sv, &["-w", "5", "down", "./a"], cwd, &[]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert!(
        out.starts_with("ok: down: ./a: ") && out.ends_with("s, normally up\n"),
        "{out}"
    );
    assert_eq!(a.pid(), 0);
    let (code, out, _) = exec(&sv, &["-v", "up", "./a"], cwd, &[]);
    assert_eq!(code, 0);
    let p2 = a.pid();
    assert!(p2 != 0 && p2 != p1);
    assert!(
        out.starts_with(&format!("ok: run: ./a: (pid {p2}) ")),
        "{out}"
    );
    assert!(out.ends_with("s\n") && out.lines().count() == 1, "{out}");
    // sv up on a want-up service writes nothing and waits for nothing without -v.
    let (code, out, _) = exec(&sv, &["up", "./a"], cwd, &[]);
    assert_eq!((code, out.as_str()), (0, ""));
    // restart: tcu, waits for a new run.
    std::thread::sleep(Duration::from_millis(1100));
    let (code, out, _) = exec(&sv, &["restart", "./a"], cwd, &[]);
    assert_eq!(code, 0, "{out}");
    let p3 = a.wait_up();
    assert!(out.starts_with("ok: run: ./a: (pid "), "{out}");
    assert_ne!(p3, p2);
    // try-restart: tc, waits for the restart.
    std::thread::sleep(Duration::from_millis(1100));
    let (code, out, _) = exec(&sv, &["try-restart", "./a"], cwd, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: run: ./a: (pid "), "{out}");
    let p4 = a.wait_up();
    assert_ne!(p4, p3);
    // exit: runsv goes away; then x is ok, anything else fails.
    let (code, out, _) = exec(&sv, &["-w", "5", "exit", "./a"], cwd, &[]);
    assert_eq!(code, 0, "{out}");
    let mut a = a;
    a.sup.wait_exit(Duration::from_secs(5));
    let (code, out, _) = same("sv", &sv, &["exit", "./a"], cwd, &[]);
    assert_eq!((code, out.as_str()), (0, "ok: ./a: runsv not running\n"));
    let (code, out, _) = same("sv", &sv, &["up", "./a"], cwd, &[]);
    assert_eq!((code, out.as_str()), (1, "fail: ./a: runsv not running\n"));
    let (code, _, _) = same(
        "sv",
        &sv,
        &["status", "./a", "./a", "/nonexistent"],
        cwd,
        &[],
    );
    assert_eq!(code, 3);
}

#[test]
fn timeout_kill_and_check_with_stdout_closed() {
    if !refs() {
        return;
    }
    let t = TempDir::new("sv-check");
    let names = Names::new();
    let sv = names.ours("sv");
    let a = Svc::start(t.path(), "a", Kind::Runsv, "exec sleep 1000");
    a.wait_up();
    // ./check fails: waits time out.
    script(&a.dir.join("check"), "#!/bin/sh\nexit 1\n");
    let (code, out, _) = exec(&sv, &["-w", "1", "check", "./a"], t.path(), &[]);
    assert_eq!(code, 1);
    assert!(out.starts_with("timeout: run: ./a: (pid "), "{out}");
    // force-restart times out and sends k.
    let p = a.pid();
    let (code, out, _) = exec(&sv, &["-w", "1", "force-restart", "./a"], t.path(), &[]);
    assert_eq!(code, 1);
    assert!(out.starts_with("kill: "), "{out}");
    wait_for(Duration::from_secs(5), "new pid", || {
        let n = a.pid();
        (n != 0 && n != p).then_some(())
    });
    // ./check runs with stdout closed: echo fails, so this check succeeds only then.
    script(
        &a.dir.join("check"),
        "#!/bin/sh\necho probe 2>/dev/null || exit 0\nexit 1\n",
    );
    let (code, out, _) = exec(&sv, &["-w", "2", "check", "./a"], t.path(), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: run: ./a: "), "{out}");
    let (rc, rout, _) = exec(
        Path::new("/usr/bin/sv"),
        &["-w", "2", "check", "./a"],
        t.path(),
        &[],
    );
    assert_eq!(rc, 0, "{rout}");
}

#[test]
fn usage_errors_and_bad_status() {
    if !refs() {
        return;
    }
    let t = TempDir::new("sv-err");
    let names = Names::new();
    let sv = names.ours("sv");
    let cwd = t.path();
    for args in [
        vec![],
        vec!["status"],
        vec!["-z", "status", "x"],
        vec!["-V"],
        vec!["bogus", "x"],
        vec!["rebuild", "x"],
        vec!["-w"],
        vec!["status", ""],
    ] {
        same("sv", &sv, &args, cwd, &[]);
    }
    let a = Svc::start(t.path(), "a", Kind::Runsv, "exec sleep 1000");
    a.wait_up();
    // A status file of the wrong size (runsv keeps running and does not rewrite it).
    fs::write(a.dir.join("supervise/status"), b"garbage").unwrap();
    let (code, out, _) = same("sv", &sv, &["status", "./a"], cwd, &[]);
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            "warning: ./a: unable to read supervise/status: bad format\n"
        )
    );
    // Not a directory / permission denied.
    fs::write(cwd.join("file"), "").unwrap();
    same("sv", &sv, &["status", "./file"], cwd, &[]);
    if let (Some(r), Some(o)) = (
        exec_as_nobody(Path::new("/usr/bin/sv"), &["status", "./a"], cwd),
        exec_as_nobody(&sv, &["status", "./a"], cwd),
    ) {
        assert_eq!(r, o);
        assert!(o.1.contains("access denied"), "{o:?}");
    }
}

#[test]
fn lsb_mode() {
    if !refs() {
        return;
    }
    let t = TempDir::new("sv-lsb");
    let names = Names::new();
    let a = Svc::start(t.path(), "web", Kind::Runsv, "exec sleep 1000");
    a.wait_up();
    // Our link and the reference's under the same base name, in two dirs.
    let ours = names.link("web", "rsvc");
    let refdir = TempDir::new("sv-lsb-ref");
    let theirs = refdir.path().join("web");
    std::os::unix::fs::symlink("/usr/bin/sv", &theirs).unwrap();
    let svdir = t.path().to_str().unwrap();
    let env = [("SVDIR", svdir)];
    for (args, want) in [
        (vec!["status"], 0),
        (vec![], 2),
        (vec!["bogus"], 2),
        (vec!["sleep"], 2),
        (vec!["-w", "3", "stop"], 0),
        (vec!["status"], 3),
        (vec!["start"], 0),
        (vec!["reload"], 0),
    ] {
        let r = exec(&theirs, &args, t.path(), &env);
        let o = exec(&ours, &args, t.path(), &env);
        let norm = |s: &str| {
            s.replace("(pid ", "(pid")
                .split(' ')
                .map(|w| {
                    if w.ends_with("s,")
                        || w.ends_with('s') && w[..w.len() - 1].chars().all(|c| c.is_ascii_digit())
                    {
                        "N"
                    } else {
                        w
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(o.0, want, "{args:?}: {o:?}");
        assert_eq!(r.0, o.0, "{args:?}: {r:?} {o:?}");
        assert_eq!(norm(&r.2), norm(&o.2), "{args:?}");
        assert_eq!(
            r.1.lines().count(),
            o.1.lines().count(),
            "{args:?}: {r:?} {o:?}"
        );
    }
    // Unknown service under LSB: fail, exit 1.
    let other = names.link("nosuch", "rsvc");
    let o = exec(&other, &["status"], t.path(), &env);
    assert_eq!(o.0, 1);
    assert_eq!(
        o.1,
        "fail: nosuch: unable to change to service directory: file does not exist\n"
    );
}

#[test]
fn s6_format_dirs_are_read() {
    if !refs() {
        return;
    }
    let t = TempDir::new("sv-s6");
    let names = Names::new();
    let s = Svc::start(t.path(), "s", Kind::S6, "exec sleep 1000");
    let pid = s.wait_up();
    let (code, out, _) = exec(&names.ours("sv"), &["status", "./s"], t.path(), &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with(&format!("run: ./s: (pid {pid}) ")), "{out}");
    let (code, out, _) = exec(
        &names.ours("sv"),
        &["-w", "5", "down", "./s"],
        t.path(),
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: down: ./s: "), "{out}");
    s.wait_down();
    // rsvc with sv-style arguments picks the sv personality.
    let (code, out, _) = exec(
        &common::bin("rsvc"),
        &["-w", "5", "up", "./s"],
        t.path(),
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: run: ./s: (pid "), "{out}");
    // Once s6-supervise is gone, the dir reads as not running.
    let mut s = s;
    let pid = s.pid();
    let _ = s.sup.0.as_mut().map(|c| c.kill());
    s.sup.wait_exit(Duration::from_secs(5));
    common::kill_pid(pid as i32);
    let (code, out, _) = exec(&names.ours("sv"), &["exit", "./s"], t.path(), &[]);
    assert_eq!((code, out.as_str()), (0, "ok: ./s: runsv not running\n"));
    let (code, out, _) = exec(&names.ours("sv"), &["status", "./s"], t.path(), &[]);
    assert_eq!((code, out.as_str()), (1, "fail: ./s: runsv not running\n"));
}

/// A fake runit supervise dir held by the test itself: `ok` has a reader, `control` is
/// drained by the test, `status` is written by hand. Lets us compare the exact bytes that
/// sv and rsvc write for every command word, and their output, deterministically.
struct FakeSupervise {
    _ok: fs::File,
    control: fs::File,
}

impl FakeSupervise {
    fn new(sd: &Path) -> FakeSupervise {
        use std::os::unix::fs::OpenOptionsExt;
        let sup = sd.join("supervise");
        fs::create_dir_all(&sup).unwrap();
        for f in ["ok", "control"] {
            nix::unistd::mkfifo(
                &sup.join(f),
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )
            .unwrap();
        }
        let open = |f: &str| {
            fs::OpenOptions::new()
                .read(true)
                .write(f == "control")
                .custom_flags(libc::O_NONBLOCK)
                .open(sup.join(f))
                .unwrap()
        };
        FakeSupervise {
            _ok: open("ok"),
            control: open("control"),
        }
    }
    fn drain(&mut self) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n) = self.control.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }
}

fn runit_status(pid: u32, want: u8, got_term: bool, state: u8) -> Vec<u8> {
    let st = rsv::status::RunitStatus {
        // In the future: sv prints 0s, so the two programs cannot differ by a clock tick.
        stamp: rsv::tai::Tai64N::from_unix(4_000_000_000, 500, rsv::tai::Family::Runit),
        pid,
        paused: false,
        want_up: want == b'u',
        got_term,
        state: match state {
            1 => rsv::status::RunitState::Run,
            2 => rsv::status::RunitState::Finish,
            _ => rsv::status::RunitState::Down,
        },
    };
    st.encode().to_vec()
}

#[test]
fn command_words_write_the_same_letters() {
    if !refs() {
        return;
    }
    // Two identical fake dirs so that sv and rsvc run side by side (waits take 420 ms).
    let t = TempDir::new("sv-words");
    let names = Names::new();
    let (rdir, odir) = (t.path().join("r"), t.path().join("o"));
    let mut fr = FakeSupervise::new(&rdir.join("f"));
    let mut fo = FakeSupervise::new(&odir.join("f"));
    let statuses = [
        runit_status(0, b'u', false, 0),
        runit_status(4242, b'u', false, 1),
        runit_status(4242, b'd', false, 1),
        runit_status(4242, b'd', true, 1),
        runit_status(4243, b'd', false, 2),
    ];
    let quick = [
        "up",
        "down",
        "once",
        "exit",
        "pause",
        "cont",
        "hup",
        "alarm",
        "interrupt",
        "quit",
        "1",
        "2",
        "term",
        "kill",
        "dance",
        "u",
        "xyz",
        "e",
        "status",
        "rebuild",
        "boo",
        "force",
        "",
    ];
    let waiting = [
        "start",
        "stop",
        "restart",
        "reload",
        "shutdown",
        "try-restart",
        "check",
        "force-stop",
        "force-reload",
        "force-restart",
        "force-shutdown",
        "Down",
        "Term",
        "Xit",
        "Exit",
    ];
    let mut written = 0;
    for (i, st) in statuses.iter().enumerate() {
        let words: Vec<&str> = if i < 2 {
            quick.iter().chain(waiting.iter()).copied().collect()
        } else {
            quick.to_vec()
        };
        for w in words {
            let mut ok = false;
            let mut last = None;
            for _ in 0..3 {
                fs::write(rdir.join("f/supervise/status"), st).unwrap();
                fs::write(odir.join("f/supervise/status"), st).unwrap();
                fr.drain();
                fo.drain();
                let env = [("SVWAIT", "0")];
                let ours = names.ours("sv");
                let od = odir.clone();
                let h = std::thread::spawn(move || exec(&ours, &[w, "./f"], &od, &env));
                let r = exec(Path::new("/usr/bin/sv"), &[w, "./f"], &rdir, &env);
                let o = h.join().unwrap();
                let (rb, ob) = (fr.drain(), fo.drain());
                if r == o && rb == ob {
                    written += rb.len();
                    ok = true;
                    break;
                }
                last = Some((r, rb, o, ob));
            }
            assert!(ok, "sv {w:?} on {st:?}: {last:?}");
        }
    }
    assert!(
        written > 40,
        "the comparison saw letters written ({written})"
    );
}
