//! Cross tests, runit mode: our clients (rsvc as sv and as s6-svc, rsvstat, rsvok) against
//! `rsupervise --compat runit` (and rsupervise started as `runsv`), compared with runit's `sv`.

mod cli_util;
mod common;
mod supervisor;

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_util::{Names, exec, same};
use common::{Guard, TempDir, alive, bin, have_refs, run, script, wait_for};
use supervisor::{Sup, T, wait_down, wait_up};

fn refs() -> bool {
    have_refs(&["sv", "runsv"])
}

fn p(sd: &Path) -> &str {
    sd.to_str().unwrap()
}

fn rsvc(args: &[&str]) -> (i32, String, String) {
    run(Command::new(bin("rsvc")).args(args), T)
}

/// Traps the non-fatal signals (logging them to ./sigs); TERM and KILL end it. Writes its
/// pid to ./trapped once the traps are set.
const SIGRUN: &str = "#!/bin/sh\n\
for s in ALRM QUIT HUP INT USR1 USR2; do trap \"echo $s >> sigs\" $s; done\n\
echo $$ > trapped.tmp && mv trapped.tmp trapped\n\
while :; do sleep 1 & wait $!; done\n";

/// Has the running run of `d` (its pid in the status) set its traps? (A signal word sent
/// before would kill the shell.) True when nothing runs.
fn traps_set(d: &Path) -> bool {
    match supervisor::pid_of(d) {
        None => true,
        Some(pid) => {
            fs::read_to_string(d.join("trapped")).is_ok_and(|s| s.trim() == pid.to_string())
        }
    }
}

/// A runit service dir `parent/svc` with run, finish, check and a logger.
fn service(parent: &Path) -> PathBuf {
    let sd = parent.join("svc");
    script(&sd.join("run"), SIGRUN);
    script(&sd.join("finish"), "#!/bin/sh\necho \"$*\" >> finished\n");
    script(
        &sd.join("check"),
        // rsupervise also runs check (for readiness, stdout on a pipe): only the runs by sv
        // (real or ours) are examined for a closed stdout.
        "#!/bin/sh\n[ -e nocheck ] && exit 1\n[ \"$(cat /proc/$PPID/comm)\" = sv ] || exit 0\necho stdout-open >&1 2>/dev/null && echo open > check-stdout\nexit 0\n",
    );
    script(&sd.join("log/run"), "#!/bin/sh\nexec cat > /dev/null\n");
    sd
}

/// Replaces pids and second counts, which legitimately differ between two supervisors.
fn norm(s: &str) -> String {
    let b = s.as_bytes();
    let mut o = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"(pid ") {
            o.push_str("(pid N");
            i += 5;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            continue;
        }
        if b[i].is_ascii_digit() && i > 0 && b[i - 1] == b' ' {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j < b.len() && b[j] == b's' {
                o.push('N');
                i = j;
                continue;
            }
        }
        o.push(b[i] as char);
        i += 1;
    }
    o
}

/// Two identical services under rsupervise (runit mode): one driven by the real sv, the
/// other by ours (a symlink named sv); every word's output, normalised, and exit code must match.
fn words_pair(tag: &str, words: &[&str]) {
    let names = Names::new();
    let ta = TempDir::new(&format!("xr-{tag}-ref"));
    let tb = TempDir::new(&format!("xr-{tag}-ours"));
    let (a, b) = (service(ta.path()), service(tb.path()));
    let mut sa = Sup::start("runit", ta.path(), "svc");
    let mut sb = Sup::start("runit", tb.path(), "svc");
    wait_up(&a, None);
    wait_up(&b, None);
    wait_up(&a.join("log"), None);
    wait_up(&b.join("log"), None);
    let mut exited = false;
    for w in words {
        let args = ["-v", "-w", "3", w, "./svc"];
        let r = exec(Path::new("/usr/bin/sv"), &args, ta.path(), &[]);
        let o = exec(&names.ours("sv"), &args, tb.path(), &[]);
        // After a word that restarts the service, sv reports "ok" once the pid has changed:
        // whether it then reads "finish" (finish still running) or "run" (already restarted)
        // depends only on when that sv happened to look.
        let restarts = matches!(
            *w,
            "term" | "kill" | "restart" | "try-restart" | "force-reload" | "force-restart"
        );
        let norm = |s: &str| {
            let n = norm(s);
            if restarts {
                n.replace("ok: finish: ", "ok: run: ")
            } else {
                n
            }
        };
        assert_eq!(
            (r.0, norm(&r.1), norm(&r.2)),
            (o.0, norm(&o.1), norm(&o.2)),
            "sv -v {w}: real sv vs ours"
        );
        assert!(
            *w == "status" || r.1.starts_with("ok: "),
            "sv -v {w}: {r:?}"
        );
        if matches!(*w, "exit" | "shutdown" | "force-shutdown") {
            exited = true;
        }
        // Both services in the same state before the next word.
        if !exited {
            let st = |d: &Path| {
                norm(&exec(Path::new("/usr/bin/sv"), &["status", p(d)], d, &[]).1).replace(p(d), "")
            };
            // ... and not between a death and its restart (down, want up: a restart within
            // 1 s of the last start waits that second). A word sent then is answered from the
            // status as it was, on either side, whichever sv runs it.
            // Nor while finish runs after a death (the next word would find "finish" on one
            // side and "run" on the other, depending on how fast finish is).
            let settled = |s: &str| {
                let main = s.split(';').next().unwrap_or("");
                let restarting = main.starts_with("down:") && main.contains("want up");
                !(restarting || main.starts_with("finish:"))
            };
            wait_for(T, "same settled state", || {
                let (x, y) = (st(&a), st(&b));
                (x == y && settled(&x) && traps_set(&a) && traps_set(&b)).then_some(())
            });
        }
    }
    if exited {
        assert_eq!(sa.g.wait_exit(T).code(), Some(0));
        assert_eq!(sb.g.wait_exit(T).code(), Some(0));
        for d in [&a, &b] {
            assert_eq!(run(Command::new(bin("rsvok")).arg(d), T).0, 1);
        }
    } else {
        // The trapped signals arrived on both sides, the same ones.
        let sigs = |d: &Path| {
            let mut v: Vec<String> = fs::read_to_string(d.join("sigs"))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
            v.sort();
            v
        };
        assert_eq!(sigs(&a), sigs(&b));
        assert_eq!(
            sigs(&b),
            ["ALRM", "HUP", "HUP", "INT", "QUIT", "USR1", "USR2"]
        );
        // finish ran with runit's argv the same number of times.
        let fin = |d: &Path| fs::read_to_string(d.join("finished")).unwrap_or_default();
        assert_eq!(fin(&a).lines().count(), fin(&b).lines().count());
        // ./check ran with stdout closed.
        assert!(!b.join("check-stdout").exists() && !a.join("check-stdout").exists());
        sa.stop();
        sb.stop();
    }
}

#[test]
fn every_word_with_v_same_as_sv() {
    if !refs() {
        return;
    }
    words_pair(
        "words",
        &[
            "status",
            "down",
            "up",
            "once",
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
            "start",
            "stop",
            "restart",
            "reload",
            "try-restart",
            "check",
            "force-stop",
            "force-reload",
            "start",
            "force-reload",
            "force-restart",
            "exit",
        ],
    );
}

#[test]
fn shutdown_words_same_as_sv() {
    if !refs() {
        return;
    }
    words_pair("shut", &["shutdown"]);
    words_pair("fshut", &["force-shutdown"]);
}

/// Status lines (incl. the log part) and check, with the real sv and ours on the same dir.
#[test]
fn status_and_check_on_the_same_dir() {
    if !refs() {
        return;
    }
    let names = Names::new();
    let t = TempDir::new("xr-status");
    let sd = service(t.path());
    let s = Sup::start("runit", t.path(), "svc");
    let pid = wait_up(&sd, None);
    wait_up(&sd.join("log"), None);
    let sv = names.ours("sv");
    let cwd = t.path();
    let (c, out, _) = same("sv", &sv, &["status", "./svc"], cwd, &[]);
    assert_eq!(c, 0);
    assert!(
        out.starts_with(&format!("run: ./svc: (pid {pid}) ")) && out.contains("; run: log: (pid "),
        "{out}"
    );
    same(
        "sv",
        &sv,
        &["status", p(&sd), "svc/log"],
        cwd,
        &[("SVDIR", p(cwd))],
    );
    same("sv", &sv, &["check", "./svc"], cwd, &[]);
    // paused
    rsvc(&["-p", p(&sd)]);
    wait_for(T, "paused", || {
        exec(&sv, &["status", "./svc"], cwd, &[])
            .1
            .contains(", paused")
            .then_some(())
    });
    let (_, out, _) = same("sv", &sv, &["status", "./svc"], cwd, &[]);
    assert!(out.contains(", paused;"), "{out}");
    rsvc(&["-c", p(&sd)]);
    // a failing ./check: both time out the same way
    fs::write(sd.join("nocheck"), "").unwrap();
    // (each call lasts the whole second: compare with the seconds normalised)
    let r = exec(
        Path::new("/usr/bin/sv"),
        &["-w", "1", "check", "./svc"],
        cwd,
        &[],
    );
    let (c, out, e) = exec(&sv, &["-w", "1", "check", "./svc"], cwd, &[]);
    assert_eq!((r.0, norm(&r.1), r.2), (c, norm(&out), e));
    assert_eq!(c, 1);
    assert!(out.starts_with("timeout: run: ./svc: "), "{out}");
    fs::remove_file(sd.join("nocheck")).unwrap();
    // normally down, want down
    fs::write(sd.join("down"), "").unwrap();
    let (_, out, _) = same("sv", &sv, &["status", "./svc"], cwd, &[]);
    assert!(out.contains(", normally down"), "{out}");
    same("sv", &sv, &["-v", "down", "./svc"], cwd, &[]);
    let (c, out, _) = same("sv", &sv, &["status", "./svc"], cwd, &[]);
    assert_eq!(c, 0);
    assert!(out.starts_with("down: ./svc: ") && !alive(pid), "{out}");
    // down service: check succeeds at once
    let (c, out, _) = same("sv", &sv, &["check", "./svc"], cwd, &[]);
    assert_eq!((c, out.starts_with("ok: down: ")), (0, true), "{out}");
    assert_eq!(s.stop(), 0);
    // no supervisor any more
    let (c, out, _) = same("sv", &sv, &["status", "./svc"], cwd, &[]);
    assert_eq!(c, 1);
    assert!(out.contains("runsv not running"), "{out}");
    same("sv", &sv, &["-v", "up", "./svc"], cwd, &[]);
    same("sv", &sv, &["-v", "exit", "./svc"], cwd, &[]);
    same("sv", &sv, &["status", "./nosuch"], cwd, &[]);
}

/// LSB mode: sv and rsvc linked under the service's name, SVDIR pointing at the parent.
#[test]
fn lsb_mode_same_as_sv() {
    if !refs() {
        return;
    }
    let names = Names::new();
    let t = TempDir::new("xr-lsb");
    let links = TempDir::new("xr-lsb-links");
    let sd = t.path().join("web");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    let s = Sup::start("runit", t.path(), "web");
    wait_up(&sd, None);
    let real = links.path().join("web");
    std::os::unix::fs::symlink("/usr/bin/sv", &real).unwrap();
    let ours = names.link("web", "rsvc");
    let env = [("SVDIR", p(t.path()))];
    let both = |args: &[&str]| -> (i32, String, String) {
        let mut last = None;
        for _ in 0..4 {
            let r = exec(&real, args, t.path(), &env);
            let o = exec(&ours, args, t.path(), &env);
            if r == o {
                return r;
            }
            last = Some((r, o));
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("LSB {args:?}: real vs ours {last:?}");
    };
    assert_eq!(both(&["status"]).0, 0);
    let (c, out, _) = both(&["stop"]);
    assert_eq!(c, 0);
    assert!(out.starts_with("ok: down: web: "), "{out}");
    assert_eq!(both(&["status"]).0, 3);
    let (c, out, _) = both(&["start"]);
    assert_eq!(c, 0);
    assert!(out.starts_with("ok: run: web: (pid "), "{out}");
    assert_eq!(both(&["bogus"]).0, 2);
    assert_eq!(both(&["-w", "2", "reload"]).0, 0);
    assert_eq!(s.stop(), 0);
    assert_eq!(both(&["start"]).0, 1);
}

/// rsupervise started through a symlink named runsv: runit's layout; sv and rsvok work.
#[test]
fn rsupervise_as_runsv() {
    if !refs() {
        return;
    }
    let names = Names::new();
    let link = names.link("runsv", "rsupervise");
    let t = TempDir::new("xr-runsv");
    let sd = service(t.path());
    let s = Sup::start_prog(&link, &[], t.path(), "svc");
    let pid = wait_up(&sd, None);
    wait_up(&sd.join("log"), None);
    let sup = sd.join("supervise");
    assert_eq!(fs::metadata(sup.join("status")).unwrap().len(), 20);
    assert!(fs::metadata(sup.join("ok")).unwrap().file_type().is_fifo());
    assert_eq!(
        fs::read_to_string(sup.join("pid")).unwrap(),
        format!("{pid}\n")
    );
    assert_eq!(fs::read_to_string(sup.join("stat")).unwrap(), "run\n");
    let (c, out, _) = same("sv", &names.ours("sv"), &["status", "./svc"], t.path(), &[]);
    assert_eq!(c, 0, "{out}");
    assert_eq!(run(Command::new(bin("rsvok")).arg(&sd), T).0, 0);
    // rsvstat reads the runit format
    let (c, out, err) = run(Command::new(bin("rsvstat")).arg(&sd), T);
    assert_eq!(c, 0, "{err}");
    assert!(out.starts_with(&format!("up (pid {pid}) ")), "{out}");
    assert_eq!(s.stop(), 0);
    assert_eq!(run(Command::new(bin("rsvok")).arg(&sd), T).0, 1);
}

fn field(sd: &Path, f: &str) -> String {
    run(Command::new(bin("rsvstat")).args(["-o", f, p(sd)]), T)
        .1
        .trim()
        .to_string()
}

/// rsvc's s6 personality and rsvstat on a runit-mode dir.
#[test]
fn s6_letters_waits_and_rsvstat_on_runit_dir() {
    if !refs() {
        return;
    }
    let t = TempDir::new("xr-s6c");
    let sd = service(t.path());
    let s = Sup::start("runit", t.path(), "svc");
    let p1 = wait_up(&sd, None);
    assert_eq!(
        field(&sd, "up,wantedup,normallyup,ready,paused,pid"),
        format!("true true true false false {p1}")
    );
    let (c, out, e) = run(Command::new(bin("rsvstat")).args(["--json", p(&sd)]), T);
    assert_eq!(c, 0, "{e}");
    assert!(
        out.contains("\"format\":\"runit\"") && out.contains(&format!("\"pid\":{p1},")),
        "{out}"
    );

    // runit's signal letters in one write (once the run's traps are set)
    wait_for(T, "traps set", || traps_set(&sd).then_some(()));
    assert_eq!(rsvc(&["-ahiq12", p(&sd)]).0, 0);
    wait_for(T, "signals", || {
        (fs::read_to_string(sd.join("sigs"))
            .unwrap_or_default()
            .lines()
            .count()
            == 6)
            .then_some(())
    });
    assert_eq!(supervisor::pid_of(&sd), Some(p1));

    // pause / continue
    rsvc(&["-p", p(&sd)]);
    wait_for(T, "paused", || {
        (field(&sd, "paused") == "true").then_some(())
    });
    rsvc(&["-c", p(&sd)]);
    wait_for(T, "continued", || {
        (field(&sd, "paused") == "false").then_some(())
    });

    // waits
    let (c, _, e) = rsvc(&["-wd", "-T", "5000", "-d", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    assert!(!alive(p1));
    assert_eq!(field(&sd, "up,wantedup"), "false false");
    // -wd (s6 semantics) may return while ./finish still runs: "finish (pid N)" then "down".
    let (c, out, _) = run(Command::new(bin("rsvstat")).arg(&sd), T);
    assert_eq!(c, 0);
    assert!(
        out.starts_with("down ") || out.starts_with("finish (pid "),
        "{out}"
    );
    wait_down(&sd);
    let (c, out, _) = run(Command::new(bin("rsvstat")).arg(&sd), T);
    assert_eq!(c, 0);
    assert!(out.starts_with("down ") && !out.contains("(pid"), "{out}");
    let (c, _, e) = rsvc(&["-wu", "-T", "5000", "-u", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    let p2 = supervisor::pid_of(&sd).unwrap();
    assert!(alive(p2));
    let (c, _, e) = rsvc(&["-wr", "-T", "5000", "-t", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    let p3 = wait_up(&sd, Some(p2));
    assert_eq!(supervisor::pid_of(&sd), Some(p3));
    let (c, _, e) = rsvc(&["-wD", "-T", "5000", "-d", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    wait_down(&sd);
    // -wU on runit: no notification-fd but a check => ready once rsupervise saw it pass
    let (c, _, e) = rsvc(&["-wU", "-T", "5000", "-u", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    assert!(!e.contains("notification-fd"), "{e}");
    // neither notification-fd nor check => warning, then as -wu
    assert_eq!(rsvc(&["-wD", "-T", "5000", "-d", p(&sd)]).0, 0);
    fs::rename(sd.join("check"), sd.join("check.off")).unwrap();
    let (c, _, e) = rsvc(&["-wU", "-T", "5000", "-u", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    assert!(e.contains("notification-fd not present"), "{e}");
    fs::rename(sd.join("check.off"), sd.join("check")).unwrap();
    // -T bound: waiting for down while the letter is only a pause
    let t0 = Instant::now();
    let (c, _, e) = rsvc(&["-wd", "-T", "300", "-p", p(&sd)]);
    assert_eq!(c, 99, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    rsvc(&["-c", p(&sd)]);
    // the log service too
    let (c, out, _) = run(Command::new(bin("rsvstat")).arg(sd.join("log")), T);
    assert_eq!(c, 0);
    assert!(out.starts_with("up (pid "), "{out}");
    assert_eq!(s.stop(), 0);
    let (c, out, _) = run(Command::new(bin("rsvstat")).arg(&sd), T);
    assert_eq!(c, 1, "{out}");
}

/// SIGKILL to rsupervise (runit mode) while rsvc -wu waits: the wait ends with 1.
#[test]
fn supervisor_killed_during_wait_runit() {
    if !refs() {
        return;
    }
    let t = TempDir::new("xr-kill");
    let sd = t.path().join("k");
    // run is not executable: never up, rsupervise keeps retrying.
    fs::create_dir_all(&sd).unwrap();
    fs::write(sd.join("run"), "#!/bin/sh\nexec sleep 1000\n").unwrap();
    fs::write(sd.join("down"), "").unwrap();
    let mut s = Sup::start("runit", t.path(), "k");
    let mut w = Guard::spawn(
        Command::new(bin("rsvc"))
            .args(["-wu", "-T", "20000", "-u", p(&sd)])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for(T, "want up", || {
        (field(&sd, "wantedup") == "true").then_some(())
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        w.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "rsvc ended early"
    );
    s.g.signal(libc::SIGKILL);
    s.g.wait_exit(T);
    let t0 = Instant::now();
    assert_eq!(w.wait_exit(Duration::from_secs(5)).code(), Some(1));
    assert!(t0.elapsed() < Duration::from_secs(3));
    // No supervisor now: s6 personality names the path, sv says runsv not running.
    let (c, _, e) = rsvc(&["-u", p(&sd)]);
    assert_eq!(c, 100);
    assert!(e.contains(p(&sd)), "{e}");
    let names = Names::new();
    let (c, out, _) = same("sv", &names.ours("sv"), &["up", "./k"], t.path(), &[]);
    assert_eq!((c, out.as_str()), (1, "fail: ./k: runsv not running\n"));
}
