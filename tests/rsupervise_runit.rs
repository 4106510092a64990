//! rsupervise in runit mode, driven by runit's real `sv` (every command word, -v, -w,
//! check, LSB mode) and compared with the real runsv where cheap.

mod common;
mod supervisor;

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{TempDir, alive, have_refs, script, wait_for};
use rsv::status::{AnyStatus, RunitState, RunitStatus, read_status};
use supervisor::*;

fn rs(sd: &Path) -> RunitStatus {
    match read_status(&sd.join("supervise")).unwrap() {
        AnyStatus::Runit(s) => s,
        other => panic!("not a runit status: {other:?}"),
    }
}

fn sv(dir: &Path, args: &[&str]) -> (i32, String) {
    let (c, o, e) = cmd(dir, "sv", args);
    (c, format!("{o}{e}"))
}

#[test]
fn layout_status_files_and_sv_status() {
    if !have_refs(&["sv"]) {
        return;
    }
    let t = TempDir::new("rlay");
    let sd = t.path().join("a");
    sleeper(&sd);
    let sup = Sup::start("runit", t.path(), "a");
    let pid = wait_up(&sd, None);
    wait_for(T, "run to exec sleep", || {
        (cmdline(pid) == "sleep 1000").then_some(())
    });
    assert_eq!(fs::metadata(sd.join("supervise/status")).unwrap().len(), 20);
    for f in ["control", "ok"] {
        assert!(
            fs::metadata(sd.join("supervise").join(f))
                .unwrap()
                .file_type()
                .is_fifo()
        );
    }
    assert_eq!(
        fs::read_to_string(sd.join("supervise/stat")).unwrap(),
        "run\n"
    );
    assert_eq!(
        fs::read_to_string(sd.join("supervise/pid")).unwrap(),
        format!("{pid}\n")
    );
    let st = rs(&sd);
    assert!(st.want_up && st.state == RunitState::Run && !st.paused && !st.got_term);
    // runit argv and no new session: run's pgid is the supervisor's
    let argv = wait_for(T, "argv", || {
        fs::read_to_string(sd.join("argv"))
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    assert_eq!(argv.trim(), "./run|0|");
    let pgid = wait_for(T, "pgid", || {
        fs::read_to_string(sd.join("pgid"))
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    let sup_pgid = fs::read_to_string(format!("/proc/{}/stat", sup.g.pid())).unwrap();
    let sup_pgid = sup_pgid
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    assert_eq!(pgid.trim(), sup_pgid);
    let (c, out) = sv(t.path(), &["status", "./a"]);
    assert_eq!(c, 0);
    assert!(out.starts_with(&format!("run: ./a: (pid {pid}) ")), "{out}");
    assert!(out.ends_with("s\n"), "{out}");
    // The s6 fcntl lock is held too.
    assert_eq!(cmd(t.path(), "s6-svok", &["a"]).0, 0);
    assert_eq!(sup.stop(), 0);
    assert_eq!(finish_line(&sd, 1), "2|-1 15");
}

#[test]
fn every_sv_word() {
    if !have_refs(&["sv"]) {
        return;
    }
    let t = TempDir::new("rword");
    let sd = t.path().join("a");
    sleeper(&sd);
    script(
        &sd.join("run"),
        "#!/bin/sh\nfor s in HUP ALRM INT QUIT USR1 USR2; do trap \"echo $s >> sigs\" $s; done\ntrap 'exit 0' TERM\necho $$ > trapped\nwhile :; do sleep 0.05; done\n",
    );
    // Up is not enough before a signal: the traps must be set (a loaded machine can deliver a
    // signal to the shell before it has read them).
    let trapped = |pid: i32| {
        wait_for(T, "traps set", || {
            let p = fs::read_to_string(sd.join("trapped")).ok()?;
            (p.trim() == pid.to_string()).then_some(())
        })
    };
    let sup = Sup::start("runit", t.path(), "a");
    let mut pid = wait_up(&sd, None);
    trapped(pid);
    let sigs = |n: usize| {
        wait_for(T, "signals", || {
            let s = fs::read_to_string(sd.join("sigs")).ok()?;
            (s.lines().count() >= n).then_some(s)
        })
    };
    for (i, (word, name)) in [
        ("hup", "HUP"),
        ("alarm", "ALRM"),
        ("interrupt", "INT"),
        ("quit", "QUIT"),
        ("1", "USR1"),
        ("2", "USR2"),
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(sv(t.path(), &[word, "./a"]).0, 0);
        assert_eq!(sigs(i + 1).lines().nth(i), Some(*name));
    }
    assert_eq!(pid_of(&sd), Some(pid));
    let (c, out) = sv(t.path(), &["-v", "pause", "./a"]);
    assert_eq!(c, 0);
    assert!(
        out.starts_with("ok: run: ./a: (pid ") && out.contains(", paused"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(sd.join("supervise/stat")).unwrap(),
        "run, paused\n"
    );
    let (c, out) = sv(t.path(), &["-v", "cont", "./a"]);
    assert!(c == 0 && !out.contains("paused"), "{out}");
    // down / up with -v
    let (c, out) = sv(t.path(), &["-v", "down", "./a"]);
    assert_eq!(c, 0, "{out}");
    assert!(
        out.starts_with("ok: down: ./a: ") && out.ends_with("s, normally up\n"),
        "{out}"
    );
    assert_eq!(finish_line(&sd, 1), "2|0 0");
    assert_eq!(fs::read_to_string(sd.join("supervise/pid")).unwrap(), "");
    let (c, out) = sv(t.path(), &["-v", "up", "./a"]);
    assert_eq!(c, 0, "{out}");
    assert!(out.starts_with("ok: run: ./a: (pid "), "{out}");
    pid = wait_up(&sd, Some(pid));
    // term: restarts (want up)
    sv(t.path(), &["term", "./a"]);
    pid = wait_up(&sd, Some(pid));
    // kill: finish sees -1 9
    sv(t.path(), &["kill", "./a"]);
    pid = wait_up(&sd, Some(pid));
    assert_eq!(finish_line(&sd, 3), "2|-1 9");
    // once: want down, runs once
    sv(t.path(), &["once", "./a"]);
    wait_for(T, "want down", || (!rs(&sd).want_up).then_some(()));
    assert!(sv(t.path(), &["status", "./a"]).1.contains(", want down"));
    sv(t.path(), &["term", "./a"]);
    wait_down(&sd);
    assert!(!alive(pid));
    let (c, out) = sv(t.path(), &["-v", "once", "./a"]);
    assert_eq!(c, 0, "{out}");
    pid = wait_up(&sd, Some(pid));
    // LSB-ish words
    let (c, out) = sv(t.path(), &["start", "./a"]);
    assert!(c == 0 && out.starts_with("ok: run: "), "{out}");
    let (c, out) = sv(t.path(), &["restart", "./a"]);
    assert_eq!(c, 0, "{out}");
    pid = wait_up(&sd, Some(pid));
    trapped(pid);
    let (c, out) = sv(t.path(), &["reload", "./a"]);
    assert!(c == 0 && out.starts_with("ok: "), "{out}");
    let (c, out) = sv(t.path(), &["try-restart", "./a"]);
    assert_eq!(c, 0, "{out}");
    pid = wait_up(&sd, Some(pid));
    let (c, out) = sv(t.path(), &["force-reload", "./a"]);
    assert_eq!(c, 0, "{out}");
    pid = wait_up(&sd, Some(pid));
    let (c, out) = sv(t.path(), &["force-restart", "./a"]);
    assert_eq!(c, 0, "{out}");
    pid = wait_up(&sd, Some(pid));
    // check with a ./check script: fails while the marker is absent
    script(&sd.join("check"), "#!/bin/sh\ntest -e ok-marker\n");
    let (c, out) = sv(t.path(), &["-w", "1", "check", "./a"]);
    assert_eq!(c, 1, "{out}");
    assert!(out.starts_with("timeout: run: ./a: "), "{out}");
    fs::write(sd.join("ok-marker"), "").unwrap();
    let (c, out) = sv(t.path(), &["check", "./a"]);
    assert!(c == 0 && out.starts_with("ok: run: ./a: "), "{out}");
    let (c, out) = sv(t.path(), &["stop", "./a"]);
    assert!(c == 0 && out.starts_with("ok: down: ./a: "), "{out}");
    assert!(!alive(pid));
    let (c, out) = sv(t.path(), &["force-stop", "./a"]);
    assert!(c == 0 && out.starts_with("ok: down: "), "{out}");
    sv(t.path(), &["up", "./a"]);
    wait_up(&sd, Some(pid));
    // shutdown: the supervisor exits after the service
    let (c, out) = sv(t.path(), &["shutdown", "./a"]);
    assert_eq!(c, 0, "{out}");
    let mut sup = sup;
    assert_eq!(sup.g.wait_exit(T).code(), Some(0));
    let (c, out) = sv(t.path(), &["status", "./a"]);
    assert_eq!((c, out.as_str()), (1, "fail: ./a: runsv not running\n"));
}

#[test]
fn force_stop_kills_a_term_ignoring_service_and_exit_word() {
    if !have_refs(&["sv"]) {
        return;
    }
    let t = TempDir::new("rforce");
    let sd = t.path().join("a");
    script(
        &sd.join("run"),
        "#!/bin/sh\ntrap '' TERM\nexec sleep 1000\n",
    );
    let sup = Sup::start("runit", t.path(), "a");
    let pid = wait_up(&sd, None);
    let (c, out) = sv(t.path(), &["-w", "1", "force-stop", "./a"]);
    assert_eq!(c, 1, "{out}");
    assert!(
        out.starts_with("kill: run: ./a: ") && out.contains("want down, got TERM"),
        "{out}"
    );
    wait_down(&sd);
    assert!(!alive(pid));
    assert_eq!(
        fs::read_to_string(sd.join("supervise/stat")).unwrap(),
        "down\n"
    );
    let (c, out) = sv(t.path(), &["-v", "exit", "./a"]);
    assert!(c == 0 && out == "ok: ./a: runsv not running\n", "{out}");
    let mut sup = sup;
    assert_eq!(sup.g.wait_exit(T).code(), Some(0));
}

#[test]
fn lsb_mode_through_a_symlink() {
    if !have_refs(&["sv"]) {
        return;
    }
    let t = TempDir::new("rlsb");
    let svdir = t.path().join("service");
    let sd = svdir.join("c");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    fs::write(sd.join("down"), "").unwrap();
    let sv_path = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v sv"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    fs::create_dir_all(t.path().join("init.d")).unwrap();
    let link = t.path().join("init.d/c");
    std::os::unix::fs::symlink(sv_path.trim(), &link).unwrap();
    let sup = Sup::start("runit", &svdir, "c");
    let lsb = |args: &[&str]| {
        common::run(
            std::process::Command::new(&link)
                .args(args)
                .env("SVDIR", &svdir),
            T,
        )
    };
    let (c, out, _) = lsb(&["status"]);
    assert_eq!(c, 3, "{out}");
    assert!(
        out.starts_with("down: c: ") && out.ends_with("s\n"),
        "{out}"
    );
    let (c, out, _) = lsb(&["start"]);
    assert_eq!(c, 0, "{out}");
    assert!(out.starts_with("ok: run: c: (pid "), "{out}");
    assert_eq!(lsb(&["status"]).0, 0);
    let (c, _, err) = lsb(&["bogus"]);
    assert_eq!(c, 2);
    assert!(err.contains("usage: c [-w sec] command"), "{err}");
    let (c, out, _) = lsb(&["stop"]);
    assert_eq!(c, 0, "{out}");
    assert_eq!(sup.stop(), 0);
}

#[test]
fn log_service_in_the_same_process() {
    if !have_refs(&["sv"]) {
        return;
    }
    let t = TempDir::new("rlog");
    let sd = t.path().join("a");
    script(
        &sd.join("run"),
        // Lines 0..99, then (once the test has killed the logger) 100..199: every line is either
        // written by a logger already or waiting in the pipe, never inside the killed `cat`.
        "#!/bin/sh\ni=0\nwhile [ $i -lt 100 ]; do echo $i; i=$((i+1)); done\nwhile [ ! -e go ]; do sleep 0.01; done\nwhile [ $i -lt 200 ]; do echo $i; i=$((i+1)); done\nexec sleep 1000\n",
    );
    script(
        &sd.join("log/run"),
        "#!/bin/sh\necho \"$0|$#\" > argv\nexec cat >> ../logged\n",
    );
    let sup = Sup::start("runit", t.path(), "a");
    let pid = wait_up(&sd, None);
    let lpid = wait_up(&sd.join("log"), None);
    let (c, out) = sv(t.path(), &["status", "./a"]);
    assert_eq!(c, 0);
    assert!(
        out.starts_with(&format!("run: ./a: (pid {pid}) "))
            && out.contains(&format!("; run: log: (pid {lpid}) ")),
        "{out}"
    );
    assert_eq!(
        wait_for(T, "log argv", || fs::read_to_string(sd.join("log/argv"))
            .ok()
            .filter(|s| s.ends_with('\n')))
        .trim(),
        "./run|0"
    );
    let count = |n: usize| {
        wait_for(T, "logged lines", || {
            let s = fs::read_to_string(sd.join("logged")).ok()?;
            (s.lines().count() >= n).then_some(s)
        })
    };
    count(100);
    let (c, _) = sv(t.path(), &["kill", "./a/log"]);
    assert_eq!(c, 0);
    wait_for(T, "logger killed", || (!alive(lpid)).then_some(()));
    fs::write(sd.join("go"), "").unwrap();
    let lpid2 = wait_up(&sd.join("log"), Some(lpid));
    let all = count(200);
    let want: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    assert_eq!(all.lines().collect::<Vec<_>>(), want);
    // x on the log is ignored
    sv(t.path(), &["exit", "./a/log"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(pid_of(&sd.join("log")), Some(lpid2));
    // exit on the main service: stops it, then the logger gets EOF, then the supervisor exits
    let (c, out) = sv(t.path(), &["-w", "5", "exit", "./a"]);
    assert_eq!(c, 0, "{out}");
    let mut sup = sup;
    assert_eq!(sup.g.wait_exit(T).code(), Some(0));
    assert!(!alive(pid) && !alive(lpid2));
}

#[test]
fn control_override_and_throttle() {
    if !have_refs(&["sv"]) {
        return;
    }
    let t = TempDir::new("rctl");
    let sd = t.path().join("a");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    script(
        &sd.join("control/t"),
        "#!/bin/sh\necho t >> overrides\nexit 0\n",
    );
    script(
        &sd.join("control/d"),
        "#!/bin/sh\necho d >> overrides\nexit 1\n",
    );
    let sup = Sup::start("runit", t.path(), "a");
    let pid = wait_up(&sd, None);
    let (c, out) = sv(t.path(), &["down", "./a"]);
    assert_eq!(c, 0, "{out}");
    let ov = wait_for(T, "overrides", || {
        fs::read_to_string(sd.join("overrides"))
            .ok()
            .filter(|s| s.lines().count() >= 2)
    });
    assert_eq!(ov, "t\nd\n");
    // control/t exited 0: no TERM, no got-TERM flag; the service still runs
    let out = sv(t.path(), &["status", "./a"]).1;
    assert!(out.starts_with(&format!("run: ./a: (pid {pid}) ")), "{out}");
    assert!(out.trim_end().ends_with(", want down"), "{out}");
    assert!(alive(pid));
    // (control/t would also swallow the supervisor's own SIGTERM, as with runsv.)
    common::kill_pid(pid);
    wait_down(&sd);
    assert_eq!(sup.stop(), 0);

    // Crash loop: restarts about 1 s apart, and control is served during the wait.
    let sd = t.path().join("b");
    script(&sd.join("run"), "#!/bin/sh\ndate +%s%N >> starts\nexit 1\n");
    let sup = Sup::start("runit", t.path(), "b");
    let starts = wait_for(T, "3 starts", || {
        let s = fs::read_to_string(sd.join("starts")).ok()?;
        (s.lines().count() >= 3).then_some(s)
    });
    let ns: Vec<u128> = starts.lines().map(|l| l.parse().unwrap()).collect();
    for w in ns.windows(2) {
        let gap = (w[1] - w[0]) / 1_000_000;
        assert!((900..2500).contains(&gap), "restart gap {gap} ms");
    }
    // runsv would be blocked in sleep(1) here; we serve the letter at once.
    let t0 = Instant::now();
    fs::OpenOptions::new()
        .write(true)
        .open(sd.join("supervise/control"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"d"))
        .unwrap();
    wait_for(T, "want down", || (!rs(&sd).want_up).then_some(()));
    assert!(
        // (below the 1 s a blocked supervisor could take; loose for a loaded machine)
        t0.elapsed() < Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    let (c, out) = sv(t.path(), &["-v", "-w", "3", "down", "./b"]);
    assert_eq!(c, 0, "{out}");
    assert_eq!(sup.stop(), 0);
}

/// The same scenario under the real runsv and under rsupervise: sv's output (pids and
/// seconds masked), the stat text and finish's arguments must agree.
#[test]
fn same_as_real_runsv() {
    if !have_refs(&["runsv", "sv"]) {
        return;
    }
    let mask = |s: &str| {
        s.split(' ')
            .map(|w| {
                if w.trim_end_matches([')', ';', ',', '\n'])
                    .trim_end_matches('s')
                    .chars()
                    .all(|c| c.is_ascii_digit())
                    && !w.is_empty()
                {
                    "N"
                } else {
                    w
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut results = Vec::new();
    for real in [true, false] {
        let t = TempDir::new("rcmp");
        let sd = t.path().join("a");
        sleeper(&sd);
        script(&sd.join("log/run"), "#!/bin/sh\nexec cat > /dev/null\n");
        let sup = if real {
            Sup::start_prog(Path::new("runsv"), &[], t.path(), "a")
        } else {
            Sup::start("runit", t.path(), "a")
        };
        let pid = wait_up(&sd, None);
        wait_up(&sd.join("log"), None);
        let mut r = vec![mask(&sv(t.path(), &["status", "./a"]).1)];
        r.push(fs::read_to_string(sd.join("supervise/stat")).unwrap());
        // Let run live over 1 s: runsv would otherwise block in sleep(1) after the death
        // and serve the next letters late.
        std::thread::sleep(Duration::from_millis(1100));
        r.push(mask(&sv(t.path(), &["-v", "pause", "./a"]).1));
        r.push(fs::read_to_string(sd.join("supervise/stat")).unwrap());
        r.push(mask(&sv(t.path(), &["-v", "down", "./a"]).1));
        r.push(finish_line(&sd, 1));
        r.push(fs::read_to_string(sd.join("supervise/stat")).unwrap());
        r.push(mask(&sv(t.path(), &["cont", "./a"]).1));
        r.push(mask(&sv(t.path(), &["-v", "status", "./a"]).1));
        r.push(fs::read_to_string(sd.join("supervise/stat")).unwrap());
        r.push(mask(&sv(t.path(), &["status", "./a/log"]).1));
        let argv = fs::read_to_string(sd.join("argv")).unwrap();
        r.push(argv);
        assert!(!alive(pid));
        assert_eq!(sup.stop(), 0);
        results.push(r);
    }
    assert_eq!(results[0], results[1]);
}
