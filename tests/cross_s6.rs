//! Cross tests, s6 mode: our clients (rsvc, rsvstat, rsvok) against our supervisor
//! (rsupervise), compared with the real s6 programs on the same directories.

mod cli_util;
mod common;
#[path = "common/json.rs"]
mod json;
mod supervisor;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_util::{Kind, Names, Svc, exec, same};
use common::{Guard, TempDir, alive, bin, have_refs, run, script, wait_for};
use json::{J, parse_json};
use supervisor::{Sup, T, sleeper, wait_down, wait_up};

fn refs() -> bool {
    have_refs(&["s6-supervise", "s6-svc", "s6-svstat", "s6-svok"])
}

const ALL: &str = "up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum,updownsince,readysince,updownfor,readyfor";

fn rsvc(args: &[&str]) -> (i32, String, String) {
    run(Command::new(bin("rsvc")).args(args), T)
}

fn p(sd: &Path) -> &str {
    sd.to_str().unwrap()
}

/// The real s6-svstat's view of a few state fields plus the down file.
fn state(sd: &Path) -> String {
    let out = run(
        Command::new("s6-svstat").args(["-o", "up,wantedup,normallyup,paused", p(sd)]),
        T,
    );
    format!("{} down={}", out.1.trim(), sd.join("down").exists())
}

/// A run script that logs every trapped signal name to ./sigs (TERM and KILL not trapped),
/// and writes its pid to ./trapped once the traps are set.
const SIGRUN: &str = "#!/bin/sh\n\
for s in ALRM ABRT QUIT HUP INT USR1 USR2 WINCH; do trap \"echo $s >> sigs\" $s; done\n\
echo $$ > trapped.tmp && mv trapped.tmp trapped\n\
while :; do sleep 1 & wait $!; done\n";

/// Waits until the run of `sd` with this pid has set its traps (up is not enough: a signal
/// sent before would kill the shell).
fn wait_trapped(sd: &Path, pid: i32) {
    wait_for(T, "traps set", || {
        let s = fs::read_to_string(sd.join("trapped")).ok()?;
        (s.trim() == pid.to_string()).then_some(())
    });
}

fn sigs(sd: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_to_string(sd.join("sigs"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Every s6-svc letter, sent by rsvc to rsupervise and to the real s6-supervise: both
/// supervisors must end in the same state (as seen by the real s6-svstat).
#[test]
fn every_letter_same_as_s6_supervise() {
    if !refs() {
        return;
    }
    let t1 = TempDir::new("x6-ref");
    let t2 = TempDir::new("x6-ours");
    script(&t1.path().join("svc/run"), SIGRUN);
    script(&t2.path().join("svc/run"), SIGRUN);
    let theirs = Svc::supervise(t1.path().join("svc"), Kind::S6);
    let ours = Sup::start("s6", t2.path(), "svc");
    let (a, b) = (theirs.dir.clone(), ours.sd());
    let pa = wait_up(&a, None);
    let pb = wait_up(&b, None);
    theirs.seen.borrow_mut().push(pa as u64);
    wait_trapped(&a, pa);
    wait_trapped(&b, pb);

    // Polls until both supervisors show the same state (and, when given, the wanted one: a
    // transient state both pass through, e.g. still down right after -u, does not count).
    let same_state = |what: &str, want: Option<&str>| {
        let mut last = (String::new(), String::new());
        let ok = (0..300).any(|_| {
            last = (state(&a), state(&b));
            if last.0 == last.1 && want.is_none_or(|w| last.1 == w) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
            false
        });
        assert!(
            ok,
            "after {what}: s6-supervise {:?} vs rsupervise {:?}",
            last.0, last.1
        );
        last.1
    };

    // The eight trapped signals in one write, in this order.
    for sd in [&a, &b] {
        assert_eq!(rsvc(&["-abqhi12y", p(sd)]).0, 0);
    }
    let want: Vec<String> = [
        "ABRT", "ALRM", "HUP", "INT", "QUIT", "USR1", "USR2", "WINCH",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (sd, who) in [(&b, "ours"), (&a, "s6")] {
        let end = Instant::now() + T;
        while sigs(sd) != want {
            assert!(
                Instant::now() < end,
                "signals trapped ({who}): {:?}",
                sigs(sd)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert_eq!(
        same_state("-abqhi12y", Some("true true true false down=false")),
        "true true true false down=false"
    );
    assert_eq!(
        supervisor::pid_of(&b),
        Some(pb),
        "trapped signals restarted the service"
    );

    // p / c
    for sd in [&a, &b] {
        rsvc(&["-p", p(sd)]);
    }
    assert_eq!(
        same_state("-p", Some("true true true true down=false")),
        "true true true true down=false"
    );
    // SIGSTOP was sent before the status said "paused"; the process stops when the kernel
    // delivers it (on a loaded machine, a moment later).
    wait_for(T, "run stopped", || {
        let st = fs::read_to_string(format!("/proc/{pb}/stat")).ok()?;
        st.rsplit(')').next()?.trim().starts_with('T').then_some(())
    });
    for sd in [&a, &b] {
        rsvc(&["-c", p(sd)]);
    }
    assert_eq!(
        same_state("-c", Some("true true true false down=false")),
        "true true true false down=false"
    );

    // t (TERM kills the shell: restarted), k likewise.
    for letter in ["-t", "-k"] {
        let before = supervisor::pid_of(&b);
        for sd in [&a, &b] {
            assert_eq!(rsvc(&[letter, p(sd)]).0, 0);
        }
        wait_up(&b, before);
        wait_up(&a, None);
        assert_eq!(
            same_state(letter, Some("true true true false down=false")),
            "true true true false down=false"
        );
    }

    // o then k: stays down; u brings it back.
    for sd in [&a, &b] {
        rsvc(&["-o", p(sd)]);
    }
    assert_eq!(
        same_state("-o", Some("true false true false down=false")),
        "true false true false down=false"
    );
    for sd in [&a, &b] {
        rsvc(&["-k", p(sd)]);
    }
    assert_eq!(
        same_state("-o -k", Some("false false true false down=false")),
        "false false true false down=false"
    );
    for sd in [&a, &b] {
        rsvc(&["-u", p(sd)]);
    }
    assert_eq!(
        same_state("-u", Some("true true true false down=false")),
        "true true true false down=false"
    );

    // d / u / D / U / r / O / Q, compared step by step.
    for letters in [
        "-d", "-u", "-D", "-U", "-r", "-O", "-u", "-Q", "-U", "-d", "-u",
    ] {
        let before = [supervisor::pid_of(&a), supervisor::pid_of(&b)];
        for sd in [&a, &b] {
            assert_eq!(rsvc(&[letters, p(sd)]).0, 0, "{letters}");
        }
        if letters == "-r" {
            // Both must have restarted before the next letter: the state before and after
            // a restart is the same ("up"), and s6-supervise restarts 1 s after the death
            // while rsupervise may restart at once, so an equal state alone does not say
            // that the restart is over, and `-O` would find one down and the other up.
            let na = wait_up(&a, before[0]);
            theirs.seen.borrow_mut().push(na as u64);
            wait_up(&b, before[1]);
        }
        same_state(letters, None);
    }
    wait_up(&b, None);
    let pa = wait_up(&a, None);
    theirs.seen.borrow_mut().push(pa as u64);

    // x with d: both supervisors exit, rsvok and s6-svok agree afterwards.
    assert_eq!(run(Command::new(bin("rsvok")).arg(&b), T).0, 0);
    let mut ours = ours;
    let mut theirs = theirs;
    for sd in [&a, &b] {
        assert_eq!(rsvc(&["-dx", p(sd)]).0, 0);
    }
    assert_eq!(ours.g.wait_exit(T).code(), Some(0));
    theirs.sup.wait_exit(T);
    assert!(!alive(pb));
    for sd in [&a, &b] {
        assert_eq!(run(Command::new(bin("rsvok")).arg(sd), T).0, 1);
        assert_eq!(run(Command::new("s6-svok").arg(sd), T).0, 1);
    }
}

/// A service that signals readiness on fd 3 after `delay`, and whose finish takes a moment.
fn notifier(sd: &Path, delay: &str) {
    script(
        &sd.join("run"),
        &format!("#!/bin/sh\nsleep {delay}\necho >&3\nexec 3>&-\nexec sleep 1000\n"),
    );
    script(
        &sd.join("finish"),
        "#!/bin/sh\nsleep 0.3\necho done >> finished\n",
    );
    fs::write(sd.join("notification-fd"), "3\n").unwrap();
}

fn field(sd: &Path, f: &str) -> String {
    run(Command::new(bin("rsvstat")).args(["-o", f, p(sd)]), T)
        .1
        .trim()
        .to_string()
}

/// Every -w wait of rsvc against rsupervise, -T, and several service dirs in one call.
#[test]
fn waits_against_rsupervise() {
    if !refs() {
        return;
    }
    let t = TempDir::new("x6-wait");
    let sd = t.path().join("n");
    notifier(&sd, "0.4");
    fs::write(sd.join("down"), "").unwrap();
    let s = Sup::start("s6", t.path(), "n");
    wait_down(&sd);

    // -wU -u: returns only once ready.
    let t0 = Instant::now();
    let (c, _, e) = rsvc(&["-wU", "-T", "5000", "-u", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    assert!(
        t0.elapsed() >= Duration::from_millis(350),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(field(&sd, "up,ready"), "true true");
    let p1 = supervisor::pid_of(&sd).unwrap();

    // -wR -r: a new pid, ready again.
    let (c, _, e) = rsvc(&["-wR", "-T", "5000", "-r", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    let p2 = supervisor::pid_of(&sd).unwrap();
    assert_ne!(p1, p2);
    assert_eq!(field(&sd, "up,ready"), "true true");

    // -wr -r: a new pid (readiness not awaited).
    let (c, _, e) = rsvc(&["-wr", "-T", "5000", "-r", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    let p3 = supervisor::pid_of(&sd).unwrap();
    assert_ne!(p2, p3);
    assert!(alive(p3));

    // -wD -d: finish has run to its end.
    let _ = fs::remove_file(sd.join("finished"));
    let (c, _, e) = rsvc(&["-wD", "-T", "5000", "-d", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    assert!(
        sd.join("finished").exists(),
        "-wD returned before finish ended"
    );
    assert_eq!(field(&sd, "up,wantedup"), "false false");

    // -wu -u, -wd -d.
    let (c, _, e) = rsvc(&["-wu", "-T", "5000", "-u", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    assert_eq!(field(&sd, "up"), "true");
    let (c, _, e) = rsvc(&["-wd", "-T", "5000", "-d", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    assert_eq!(field(&sd, "up"), "false");

    // -T: readiness never comes within 300 ms => 99 with s6-svlisten1's words.
    fs::write(sd.join("notification-fd"), "3\n").unwrap();
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    let t0 = Instant::now();
    let (c, _, e) = rsvc(&["-wU", "-T", "300", "-u", p(&sd)]);
    assert_eq!(c, 99, "{e}");
    assert!(e.contains("timed out"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    wait_up(&sd, None);

    // -wU on a service without notification-fd: s6-svc's warning, then waits as -wu.
    fs::remove_file(sd.join("notification-fd")).unwrap();
    rsvc(&["-wd", "-T", "5000", "-d", p(&sd)]);
    let (c, _, e) = rsvc(&["-wU", "-T", "5000", "-u", p(&sd)]);
    assert_eq!(c, 0, "{e}");
    assert!(
        e.contains(&format!(
            "{}/notification-fd not present - ignoring request for readiness notification",
            p(&sd)
        )),
        "{e}"
    );
    s.stop();
}

#[test]
fn several_service_dirs_in_one_call() {
    if !refs() {
        return;
    }
    let t = TempDir::new("x6-multi");
    let mut sups = Vec::new();
    for n in ["a", "b", "c"] {
        sleeper(&t.path().join(n));
        sups.push(Sup::start("s6", t.path(), n));
    }
    let sds: Vec<PathBuf> = sups.iter().map(|s| s.sd()).collect();
    let pids: Vec<i32> = sds.iter().map(|sd| wait_up(sd, None)).collect();
    let mut args = vec!["-wd", "-T", "5000", "-d"];
    args.extend(sds.iter().map(|s| p(s)));
    let (c, _, e) = rsvc(&args);
    assert_eq!(c, 0, "{e}");
    for (sd, pid) in sds.iter().zip(&pids) {
        assert_eq!(field(sd, "up,wantedup"), "false false");
        assert!(!alive(*pid));
    }
    let mut args = vec!["-u"];
    args.extend(sds.iter().map(|s| p(s)));
    assert_eq!(rsvc(&args).0, 0);
    for sd in &sds {
        wait_up(sd, None);
    }
    for s in sups {
        assert_eq!(s.stop(), 0);
    }
}

/// A status line with every "N seconds" made "_ seconds" (a second may tick between runs).
fn no_secs(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let next_is_secs = words.get(i + 1).is_some_and(|n| n.starts_with("second"));
        out.push(if next_is_secs && w.chars().all(|c| c.is_ascii_digit()) {
            "_"
        } else {
            w
        });
    }
    out.join(" ")
}

/// rsvstat's human line and every field against the real s6-svstat on rsupervise dirs.
fn compare_all(sd: &Path) {
    let cwd = sd.parent().unwrap();
    let name = sd.file_name().unwrap().to_str().unwrap();
    let mut arg_sets: Vec<Vec<&str>> = vec![vec![], vec!["-n"], vec!["-o", ALL]];
    for o in ["-u", "-w", "-N", "-r", "-p", "-e", "-s", "-t", "-uwNrpest"] {
        arg_sets.push(vec![o]);
    }
    for f in ALL.split(',') {
        arg_sets.push(vec!["-o", f]);
    }
    arg_sets.push(vec!["-o", "up,pid,updownf,sig,ready"]);
    let names = Names::new();
    for mut a in arg_sets {
        let human = a.is_empty() || a == ["-n"];
        a.push(name);
        // Started as s6-svstat: byte for byte, every form.
        same("s6-svstat", &names.ours("s6-svstat"), &a, cwd, &[]);
        if !human {
            // rsvstat's own personality: the same for every field option.
            same("s6-svstat", &bin("rsvstat"), &a, cwd, &[]);
        } else {
            // Its human line is s6-svstat's, followed by what rsv-state adds.
            let (_, reference, _) = exec(Path::new("s6-svstat"), &a, cwd, &[]);
            let (_, ours, _) = exec(&bin("rsvstat"), &a, cwd, &[]);
            let head = no_secs(reference.trim_end());
            assert!(
                no_secs(&ours).starts_with(&head),
                "{a:?}: {reference} / {ours}"
            );
        }
    }
}

#[test]
fn rsvstat_same_as_s6_svstat() {
    if !refs() {
        return;
    }
    let t = TempDir::new("x6-stat");
    // up, normally down, ready
    let r = t.path().join("r");
    notifier(&r, "0");
    fs::write(r.join("down"), "").unwrap();
    let sr = Sup::start("s6", t.path(), "r");
    assert_eq!(rsvc(&["-wU", "-T", "5000", "-u", p(&r)]).0, 0);
    compare_all(&r);
    // paused
    rsvc(&["-p", p(&r)]);
    wait_for(T, "paused", || {
        (field(&r, "paused") == "true").then_some(())
    });
    compare_all(&r);
    rsvc(&["-c", p(&r)]);
    // down by signal, want down
    assert_eq!(rsvc(&["-wD", "-T", "5000", "-d", p(&r)]).0, 0);
    compare_all(&r);

    // down after exit code 3, run once
    let e = t.path().join("e");
    script(&e.join("run"), "#!/bin/sh\nexit 3\n");
    fs::write(e.join("down"), "").unwrap();
    let se = Sup::start("s6", t.path(), "e");
    rsvc(&["-o", p(&e)]);
    wait_for(T, "exit 3", || (field(&e, "exitcode") == "3").then_some(()));
    compare_all(&e);
    // a fresh, never started service
    let f = t.path().join("f");
    sleeper(&f);
    fs::write(f.join("down"), "").unwrap();
    let sf = Sup::start("s6", t.path(), "f");
    compare_all(&f);
    for s in [sr, se, sf] {
        assert_eq!(s.stop(), 0);
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// --json on one service and on a scan dir; the table on a scan dir with a logged service.
#[test]
fn json_and_table_on_a_scan_dir() {
    if !refs() {
        return;
    }
    let t = TempDir::new("x6-scan");
    let scan = t.path();
    sleeper(&scan.join("a"));
    sleeper(&scan.join("b"));
    script(&scan.join("b/log/run"), "#!/bin/sh\nexec cat > /dev/null\n");
    sleeper(&scan.join("c"));
    fs::write(scan.join("c/down"), "").unwrap();
    let e = scan.join("e");
    script(&e.join("run"), "#!/bin/sh\nexit 7\n");
    fs::write(e.join("down"), "").unwrap();
    let sups: Vec<Sup> = ["a", "b", "c", "e"]
        .iter()
        .map(|n| Sup::start("s6", scan, n))
        .collect();
    let pa = wait_up(&scan.join("a"), None);
    let pb = wait_up(&scan.join("b"), None);
    let pl = wait_up(&scan.join("b/log"), None);
    rsvc(&["-o", p(&e)]);
    wait_for(T, "e exited", || {
        (field(&e, "exitcode") == "7").then_some(())
    });

    // One service: one object.
    let (c, out, err) = run(
        Command::new(bin("rsvstat")).args(["--json", p(&scan.join("a"))]),
        T,
    );
    assert_eq!(c, 0, "{err}");
    let j = parse_json(&out);
    assert_eq!(
        j.keys(),
        [
            "name",
            "path",
            "format",
            "supervised",
            "state",
            "pid",
            "since",
            "uptime",
            "ready",
            "ready_since",
            "want",
            "paused",
            "normally_up",
            "last_exit",
            "logger",
            "rsv_state",
            "restarts",
            "exits",
            "throttling",
            "gave_up",
            "essential",
            "final_exit",
            "health",
            "sd_notify",
            "resources",
            "type",
            "dependencies",
            "waiting_for",
            "graph_state",
            "timed_out"
        ]
    );
    // A service is named by its directory's last component; the path is as given.
    assert_eq!(j.at("name"), &J::Str("a".into()));
    assert_eq!(j.at("path"), &J::Str(p(&scan.join("a")).into()));
    assert_eq!(j.at("format"), &J::Str("s6".into()));
    assert_eq!(j.at("supervised"), &J::Bool(true));
    assert_eq!(j.at("state"), &J::Str("up".into()));
    assert_eq!(j.at("pid"), &J::Num(pa as f64));
    assert_eq!(j.at("want"), &J::Str("up".into()));
    assert_eq!(j.at("paused"), &J::Bool(false));
    assert_eq!(j.at("normally_up"), &J::Bool(true));
    // Up without notification-fd or check: rsv-state counts it ready (s6's flag does not).
    assert_eq!(j.at("ready"), &J::Bool(true));
    assert_eq!(j.at("last_exit"), &J::Null);
    let J::Num(since) = j.at("since") else {
        panic!("since")
    };
    assert!((unix_now() - since).abs() < 15.0, "since {since}");
    let J::Num(up) = j.at("uptime") else {
        panic!("uptime")
    };
    assert!((0.0..15.0).contains(up));

    // The scan dir: an array with a, b, b/log, c, e.
    let (c, out, err) = run(Command::new(bin("rsvstat")).args(["--json", p(scan)]), T);
    assert_eq!(c, 0, "{err}");
    let J::Arr(items) = parse_json(&out) else {
        panic!("not an array: {out}")
    };
    let by = |n: &str| -> J {
        items
            .iter()
            .find(|o| o.at("name") == &J::Str(n.into()))
            .unwrap_or_else(|| panic!("{n} missing in {out}"))
            .clone()
    };
    assert_eq!(items.len(), 5, "{out}");
    assert_eq!(by("b").at("pid"), &J::Num(pb as f64));
    assert_eq!(by("b/log").at("pid"), &J::Num(pl as f64));
    assert_eq!(by("b/log").at("state"), &J::Str("up".into()));
    assert_eq!(by("c").at("state"), &J::Str("down".into()));
    assert_eq!(by("c").at("pid"), &J::Null);
    assert_eq!(by("c").at("normally_up"), &J::Bool(false));
    assert_eq!(by("e").at("last_exit").at("code"), &J::Num(7.0));
    assert_eq!(by("e").at("want"), &J::Str("down".into()));

    // The table.
    let (c, out, err) = run(Command::new(bin("rsvstat")).arg(scan), T);
    assert_eq!(c, 0, "{err}");
    let row = |n: &str| -> Vec<String> {
        out.lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .find(|w| w.first().map(String::as_str) == Some(n))
            .unwrap_or_else(|| panic!("no row {n} in\n{out}"))
    };
    assert_eq!(row("a")[1..3], ["up".to_string(), pa.to_string()]);
    assert_eq!(row("b")[1..3], ["up".to_string(), pb.to_string()]);
    assert_eq!(row("b/log")[1..3], ["up".to_string(), pl.to_string()]);
    assert_eq!(row("c")[1], "down");
    assert_eq!(row("e")[1], "down");
    assert!(row("e").iter().any(|w| w.contains('7')), "{out}");
    assert_eq!(out.lines().count(), 6, "header + 5 rows:\n{out}");

    for s in sups {
        assert_eq!(s.stop(), 0);
    }
    // Not supervised any more: the table says so and the exit code is 1.
    let (c, out, _) = run(Command::new(bin("rsvstat")).arg(scan), T);
    assert_eq!(c, 1, "{out}");
    assert_eq!(row_state(&out, "a"), "unsupervised");
}

fn row_state(out: &str, n: &str) -> String {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(n))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_string()
}

#[test]
fn rsvok_follows_rsupervise() {
    if !refs() {
        return;
    }
    let t = TempDir::new("x6-ok");
    sleeper(&t.path().join("s"));
    let s = Sup::start("s6", t.path(), "s");
    let sd = s.sd();
    wait_up(&sd, None);
    assert_eq!(run(Command::new(bin("rsvok")).arg(&sd), T).0, 0);
    assert_eq!(run(Command::new("s6-svok").arg(&sd), T).0, 0);
    assert_eq!(s.stop(), 0);
    assert_eq!(run(Command::new(bin("rsvok")).arg(&sd), T).0, 1);
    assert_eq!(run(Command::new("s6-svok").arg(&sd), T).0, 1);
}

/// Faults seen through our clients.
#[test]
fn supervisor_killed_during_wait() {
    if !refs() {
        return;
    }
    let t = TempDir::new("x6-kill");
    let sd = t.path().join("k");
    // Never ready: rsvc -wU waits until the supervisor disappears.
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    fs::write(sd.join("notification-fd"), "3\n").unwrap();
    fs::write(sd.join("down"), "").unwrap();
    let mut s = Sup::start("s6", t.path(), "k");
    let mut w = Guard::spawn(
        Command::new(bin("rsvc"))
            .args(["-wU", "-T", "20000", "-u", p(&sd)])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let pid = wait_up(&sd, None);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        w.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "rsvc ended early"
    );
    s.g.signal(libc::SIGKILL);
    s.g.wait_exit(T);
    let t0 = Instant::now();
    let st = w.wait_exit(Duration::from_secs(5));
    assert_eq!(st.code(), Some(1), "documented: supervisor died => 1");
    assert!(t0.elapsed() < Duration::from_secs(3));
    common::kill_pid(pid);
}

#[test]
fn no_supervisor_and_missing_dirs() {
    if !refs() {
        return;
    }
    let t = TempDir::new("x6-none");
    sleeper(&t.path().join("s"));
    let s = Sup::start("s6", t.path(), "s");
    let sd = s.sd();
    wait_up(&sd, None);
    assert_eq!(s.stop(), 0);
    // Stale dir: control FIFO without a reader. Same code as s6-svc; message names the path.
    let (rc, _, re) = run(Command::new("s6-svc").args(["-u", p(&sd)]), T);
    let (c, _, e) = rsvc(&["-u", p(&sd)]);
    assert_eq!(c, rc, "s6-svc said {re:?}, we said {e:?}");
    assert_eq!(c, 100);
    assert!(e.contains(p(&sd)) && e.starts_with("rsvc: "), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    // Same with a wait.
    let (c, _, e) = rsvc(&["-wu", "-T", "1000", "-u", p(&sd)]);
    assert_eq!(c, 100, "{e}");
    assert!(e.contains(p(&sd)), "{e}");
    // Never supervised, and nonexistent.
    let bare = t.path().join("bare");
    sleeper(&bare);
    let missing = t.path().join("missing");
    for d in [&bare, &missing] {
        let (rc, _, re) = run(Command::new("s6-svc").args(["-u", p(d)]), T);
        let (c, _, e) = rsvc(&["-u", p(d)]);
        assert_eq!(c, rc, "s6-svc said {re:?}, we said {e:?}");
        assert!(e.contains(p(d)), "{e}");
    }
    // rsvstat on a nonexistent dir: s6-svstat's code, one line naming the path.
    let (rc, _, re) = run(Command::new("s6-svstat").arg(&missing), T);
    let (c, o, e) = run(Command::new(bin("rsvstat")).arg(&missing), T);
    assert_eq!(c, rc, "s6-svstat said {re:?}, we said {e:?}");
    assert_eq!(o, "");
    assert!(e.contains(p(&missing)) && e.lines().count() == 1, "{e}");
    let (c, _, e) = run(
        Command::new(bin("rsvstat")).args(["--json", p(&missing)]),
        T,
    );
    assert!(c != 0 || e.is_empty(), "{c} {e}");
}
