//! rsupervise in s6 mode, driven by the real s6 clients (s6-svc, s6-svstat, s6-svok,
//! s6-svwait) and compared with the real s6-supervise where cheap.

mod common;
mod supervisor;

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::{Duration, Instant};

use common::{TempDir, alive, have_refs, script, wait_for};
use rsv::status::{AnyStatus, Death, read_status};
use supervisor::*;

fn s6(sd: &std::path::Path) -> rsv::status::S6Status {
    match read_status(&sd.join("supervise")).unwrap() {
        AnyStatus::S6(s) => s,
        other => panic!("not an s6 status: {other:?}"),
    }
}

#[test]
fn layout_argv_session_and_svstat() {
    if !have_refs(&["s6-svstat", "s6-svok", "s6-svc"]) {
        return;
    }
    let t = TempDir::new("s6lay");
    let sd = t.path().join("a");
    sleeper(&sd);
    let sup = Sup::start("s6", t.path(), "a");
    let pid = wait_up(&sd, None);
    // The pid in status is the real run process (it exec'd sleep).
    wait_for(T, "run to exec sleep", || {
        (cmdline(pid) == "sleep 1000").then_some(())
    });
    assert_eq!(fs::metadata(sd.join("supervise/status")).unwrap().len(), 35);
    let mode = |p: &str| fs::metadata(sd.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("supervise"), 0o700);
    assert_eq!(mode("supervise/lock"), 0o644);
    assert_eq!(mode("supervise/control"), 0o600);
    assert_eq!(mode("event"), 0o3730);
    assert!(
        fs::metadata(sd.join("supervise/control"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    for absent in ["supervise/ok", "supervise/stat", "supervise/pid"] {
        assert!(
            !sd.join(absent).exists(),
            "{absent} must not exist in s6 mode"
        );
    }
    assert_eq!(fs::read(sd.join("supervise/death_tally")).unwrap().len(), 0);
    // argv ["run", NAME]; $0 is ./run for a script; own session.
    let argv = wait_for(T, "argv", || {
        fs::read_to_string(sd.join("argv"))
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    assert_eq!(argv.trim(), "./run|1|a");
    let pgid = wait_for(T, "pgid", || {
        fs::read_to_string(sd.join("pgid"))
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    assert_eq!(pgid.trim(), pid.to_string());

    assert_eq!(cmd(t.path(), "s6-svok", &["a"]).0, 0);
    let (c, out, _) = cmd(t.path(), "s6-svstat", &["a"]);
    assert_eq!(c, 0);
    assert!(out.starts_with(&format!("up (pid {pid}) ")), "{out}");
    assert!(out.trim_end().ends_with("seconds"), "{out}");
    let (c, out, _) = cmd(t.path(), "s6-svstat", &["-upe", "a"]);
    assert_eq!((c, out.as_str()), (0, format!("true {pid} -1\n").as_str()));
    let (_, out, _) = cmd(t.path(), "s6-svstat", &["-uwNrpest", "a"]);
    let secs = out.trim_end().rsplit(' ').next().unwrap().to_string();
    assert!(secs.parse::<u64>().unwrap() < 5, "{out}");
    assert_eq!(out, format!("true true true false {pid} -1 NA {secs}\n"));
    let (_, out, _) = cmd(
        t.path(),
        "s6-svstat",
        &[
            "-o",
            "up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum",
            "a",
        ],
    );
    assert_eq!(out, format!("true true true false false {pid} -1 NA -1\n"));
    let (_, out, _) = cmd(
        t.path(),
        "s6-svstat",
        &["-o", "updownsince,readysince", "a"],
    );
    let st = s6(&sd);
    assert_eq!(
        out,
        format!("{} {}\n", st.stamp.to_hex(), st.readystamp.to_hex())
    );
    assert_eq!(sup.stop(), 0);
    assert!(!alive(pid));
    // finish ran on the way out, with s6's arguments.
    assert_eq!(finish_line(&sd, 1), "3|256 15 a");
}

#[test]
fn every_svc_letter() {
    if !have_refs(&["s6-svc", "s6-svstat", "s6-svlisten1", "s6-svwait"]) {
        return;
    }
    let t = TempDir::new("s6let");
    let sd = t.path().join("a");
    sleeper(&sd);
    script(
        &sd.join("run"),
        "#!/bin/sh\nfor s in HUP ALRM INT QUIT USR1 USR2 WINCH ABRT; do trap \"echo $s >> sigs\" $s; done\necho $$ > runpid\nwhile :; do sleep 0.05; done\n",
    );
    let sup = Sup::start("s6", t.path(), "a");
    let pid = wait_up(&sd, None);
    let sigs = |n: usize| {
        wait_for(T, "signals", || {
            let s = fs::read_to_string(sd.join("sigs")).ok()?;
            (s.lines().count() >= n).then_some(s)
        })
    };
    for (i, (letter, name)) in [
        ("-h", "HUP"),
        ("-a", "ALRM"),
        ("-i", "INT"),
        ("-q", "QUIT"),
        ("-1", "USR1"),
        ("-2", "USR2"),
        ("-y", "WINCH"),
        ("-b", "ABRT"),
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(cmd(t.path(), "s6-svc", &[letter, "a"]).0, 0);
        assert_eq!(sigs(i + 1).lines().nth(i), Some(*name));
    }
    assert_eq!(pid_of(&sd), Some(pid));
    // p / c
    cmd(t.path(), "s6-svc", &["-p", "a"]);
    wait_for(T, "paused", || s6(&sd).paused.then_some(()));
    assert!(cmd(t.path(), "s6-svstat", &["a"]).1.contains(", paused"));
    cmd(t.path(), "s6-svc", &["-c", "a"]);
    wait_for(T, "unpaused", || (!s6(&sd).paused).then_some(()));
    // -wd -d: down, signal TERM, finish args, ready after finish
    let (c, _, e) = cmd(t.path(), "s6-svc", &["-wD", "-T", "5000", "-d", "a"]);
    assert_eq!(c, 0, "{e}");
    let st = s6(&sd);
    assert!(!st.wantup && st.ready && st.pid == 0 && !st.finishing);
    assert_eq!(finish_line(&sd, 1), "3|256 15 a");
    let (_, out, _) = cmd(t.path(), "s6-svstat", &["a"]);
    assert!(out.starts_with("down (signal SIGTERM) "), "{out}");
    assert!(out.contains(", normally up, ready "), "{out}");
    // -wu -u
    assert_eq!(
        cmd(t.path(), "s6-svc", &["-wu", "-T", "5000", "-u", "a"]).0,
        0
    );
    let pid2 = wait_up(&sd, Some(pid));
    // -k records a death, restarts after about 1 s (not ready before)
    let t0 = Instant::now();
    assert_eq!(
        cmd(t.path(), "s6-svc", &["-wR", "-T", "5000", "-k", "a"]).0,
        0
    );
    let pid3 = wait_up(&sd, Some(pid2));
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    let tally = Death::decode_all(&fs::read(sd.join("supervise/death_tally")).unwrap());
    assert_eq!(
        tally.iter().map(|d| (d.exit, d.sig)).collect::<Vec<_>>(),
        vec![(128 + 15, 15), (128 + 9, 9)]
    );
    // -r: restart with the down-signal file's signal (HUP is trapped by run, so KILL)
    fs::write(sd.join("down-signal"), "SIGKILL\n").unwrap();
    assert_eq!(
        cmd(t.path(), "s6-svc", &["-wr", "-T", "5000", "-r", "a"]).0,
        0
    );
    let pid4 = wait_up(&sd, Some(pid3));
    assert_eq!(finish_line(&sd, 3), "3|256 9 a");
    // -o: want down, runs once
    cmd(t.path(), "s6-svc", &["-o", "a"]);
    wait_for(T, "want down", || (!s6(&sd).wantup).then_some(()));
    assert!(cmd(t.path(), "s6-svstat", &["a"]).1.contains(", want down"));
    // -u again, -D creates down and stops, -U removes and starts
    cmd(t.path(), "s6-svc", &["-u", "a"]);
    assert_eq!(
        cmd(t.path(), "s6-svc", &["-wD", "-T", "5000", "-D", "a"]).0,
        0
    );
    assert!(sd.join("down").exists());
    assert_eq!(cmd(t.path(), "s6-svstat", &["-N", "a"]).1, "false\n");
    assert_eq!(
        cmd(t.path(), "s6-svc", &["-wu", "-T", "5000", "-U", "a"]).0,
        0
    );
    assert!(!sd.join("down").exists());
    let pid5 = wait_up(&sd, Some(pid4));
    // -O / -Q: want down without a signal
    cmd(t.path(), "s6-svc", &["-Q", "a"]);
    wait_for(T, "Q", || {
        (!s6(&sd).wantup && sd.join("down").exists()).then_some(())
    });
    assert_eq!(pid_of(&sd), Some(pid5));
    cmd(t.path(), "s6-svc", &["-U", "a"]);
    cmd(t.path(), "s6-svc", &["-O", "a"]);
    wait_for(T, "O", || (!s6(&sd).wantup).then_some(()));
    assert_eq!(pid_of(&sd), Some(pid5));
    // -t: TERM; not restarted (want down)
    assert_eq!(
        cmd(t.path(), "s6-svc", &["-wD", "-T", "5000", "-t", "a"]).0,
        0
    );
    // -x while down: the supervisor exits 0 and s6-svwait sees it
    let mut sup = sup;
    assert_eq!(cmd(t.path(), "s6-svc", &["-x", "a"]).0, 0);
    assert_eq!(sup.g.wait_exit(T).code(), Some(0));
    assert_eq!(cmd(t.path(), "s6-svok", &["a"]).0, 1);
}

#[test]
fn readiness_and_svwait() {
    if !have_refs(&["s6-svc", "s6-svstat", "s6-svwait"]) {
        return;
    }
    let t = TempDir::new("s6rdy");
    let sd = t.path().join("a");
    script(
        &sd.join("run"),
        "#!/bin/sh\nsleep 0.3\necho >&3\nexec sleep 1000\n",
    );
    fs::write(sd.join("notification-fd"), "3\n").unwrap();
    fs::write(sd.join("down"), "").unwrap();
    let sup = Sup::start("s6", t.path(), "a");
    assert_eq!(cmd(t.path(), "s6-svstat", &["-u", "a"]).1, "false\n");
    let t0 = Instant::now();
    let (c, _, e) = cmd(t.path(), "s6-svc", &["-wU", "-T", "5000", "-u", "a"]);
    assert_eq!(c, 0, "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(250));
    assert_eq!(cmd(t.path(), "s6-svstat", &["-ur", "a"]).1, "true true\n");
    let st = s6(&sd);
    assert!(st.ready && st.readystamp > st.stamp);
    // s6-svwait: already up; -d with timeout fails with 99; -a/-o
    assert_eq!(cmd(t.path(), "s6-svwait", &["-U", "-t", "2000", "a"]).0, 0);
    assert_eq!(cmd(t.path(), "s6-svwait", &["-d", "-t", "200", "a"]).0, 99);
    assert_eq!(
        cmd(t.path(), "s6-svwait", &["-u", "-o", "-t", "2000", "a"]).0,
        0
    );
    let pid = pid_of(&sd).unwrap();
    // s6-svwait -D while a -d arrives
    let w = std::process::Command::new("s6-svwait")
        .args(["-D", "-t", "5000", "a"])
        .current_dir(t.path())
        .spawn()
        .unwrap();
    let mut w = common::Guard(Some(w));
    std::thread::sleep(Duration::from_millis(100));
    cmd(t.path(), "s6-svc", &["-d", "a"]);
    assert_eq!(w.wait_exit(T).code(), Some(0));
    assert!(!alive(pid));
    // -R: restart waiting for readiness
    cmd(t.path(), "s6-svc", &["-u", "a"]);
    wait_up(&sd, None);
    assert_eq!(
        cmd(t.path(), "s6-svc", &["-wR", "-T", "5000", "-r", "a"]).0,
        0
    );
    assert!(s6(&sd).ready);
    assert_eq!(sup.stop(), 0);
}

#[test]
fn finish_125_timeout_kill_and_death_tally_limit() {
    if !have_refs(&["s6-svc", "s6-svstat"]) {
        return;
    }
    let t = TempDir::new("s6fin");
    let sd = t.path().join("a");
    script(
        &sd.join("run"),
        "#!/bin/sh\ntrap '' TERM\nexec sleep 1000\n",
    );
    script(
        &sd.join("finish"),
        "#!/bin/sh\necho \"$*\" >> finished\nexit 125\n",
    );
    fs::write(sd.join("timeout-kill"), "300\n").unwrap();
    fs::write(sd.join("max-death-tally"), "1\n").unwrap();
    let sup = Sup::start("s6", t.path(), "a");
    let pid = wait_up(&sd, None);
    let t0 = Instant::now();
    // sleep inherits the ignored TERM: only timeout-kill's SIGKILL ends it.
    let (c, _, e) = cmd(t.path(), "s6-svc", &["-wD", "-T", "5000", "-d", "a"]);
    assert_eq!(c, 0, "{e}");
    assert!(
        t0.elapsed() >= Duration::from_millis(280),
        "{:?}",
        t0.elapsed()
    );
    assert!(!alive(pid));
    assert_eq!(finish_line(&sd, 1), "256 9 a");
    let (_, out, _) = cmd(t.path(), "s6-svstat", &["a"]);
    assert!(out.starts_with("down (signal SIGKILL) "), "{out}");
    assert!(!out.contains("want up"), "{out}");
    let (_, out, _) = cmd(t.path(), "s6-svstat", &["-n", "a"]);
    assert!(out.starts_with("down (signal 9) "), "{out}");
    let (_, out, _) = cmd(
        t.path(),
        "s6-svstat",
        &["-o", "signal,signum,exitcode,pid", "a"],
    );
    assert_eq!(out, "SIGKILL 9 -1 -1\n");
    // finish 125 after a normal u: want becomes down (OD)
    fs::write(sd.join("timeout-kill"), "0\n").unwrap();
    cmd(t.path(), "s6-svc", &["-u", "a"]);
    let pid2 = wait_up(&sd, Some(pid));
    cmd(t.path(), "s6-svc", &["-k", "a"]);
    wait_for(T, "permanent failure", || {
        let st = s6(&sd);
        (st.pid == 0 && !st.wantup && st.ready).then_some(())
    });
    assert!(!alive(pid2));
    assert_eq!(
        fs::read(sd.join("supervise/death_tally")).unwrap().len(),
        14
    );
    assert_eq!(sup.stop(), 0);
}

/// The same scenario under the real s6-supervise and under rsupervise: finish arguments and
/// s6-svstat's machine-readable fields must agree.
#[test]
fn same_as_real_s6_supervise() {
    if !have_refs(&["s6-supervise", "s6-svc", "s6-svstat"]) {
        return;
    }
    let mut results = Vec::new();
    for real in [true, false] {
        let t = TempDir::new("s6cmp");
        let sd = t.path().join("a");
        script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
        script(
            &sd.join("finish"),
            "#!/bin/sh\necho \"$0 $*\" >> finished\n",
        );
        let sup = if real {
            Sup::start_prog(std::path::Path::new("s6-supervise"), &[], t.path(), "a")
        } else {
            Sup::start("s6", t.path(), "a")
        };
        wait_up(&sd, None);
        let fields = "up,wantedup,normallyup,ready,paused,exitcode,signal,signum";
        let before = cmd(t.path(), "s6-svstat", &["-o", fields, "a"]).1;
        cmd(t.path(), "s6-svc", &["-wD", "-T", "5000", "-d", "a"]);
        let after = cmd(t.path(), "s6-svstat", &["-o", fields, "a"]).1;
        let fin = finish_line(&sd, 1);
        let human = cmd(t.path(), "s6-svstat", &["a"]).1;
        let human = human.split(' ').take(3).collect::<Vec<_>>().join(" ");
        let stamp_len = cmd(t.path(), "s6-svstat", &["-o", "updownsince", "a"])
            .1
            .len();
        assert_eq!(sup.stop(), 0);
        results.push((before, after, fin, human, stamp_len));
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn log_pipeline_survives_logger_restart() {
    if !have_refs(&["s6-svc", "s6-svstat"]) {
        return;
    }
    let t = TempDir::new("s6log");
    let sd = t.path().join("a");
    script(
        &sd.join("run"),
        // Lines 0..99, then (once the test has killed the logger) 100..199: every line is either
        // written by a logger already or waiting in the pipe, never inside the killed `cat`.
        "#!/bin/sh\ni=0\nwhile [ $i -lt 100 ]; do echo $i; i=$((i+1)); done\nwhile [ ! -e go ]; do sleep 0.01; done\nwhile [ $i -lt 200 ]; do echo $i; i=$((i+1)); done\nexec sleep 1000\n",
    );
    script(
        &sd.join("log/run"),
        "#!/bin/sh\necho \"$0|$*\" > argv\nexec cat >> ../logged\n",
    );
    let sup = Sup::start("s6", t.path(), "a");
    wait_up(&sd, None);
    let lpid = wait_up(&sd.join("log"), None);
    assert_eq!(
        wait_for(T, "log argv", || fs::read_to_string(sd.join("log/argv"))
            .ok()
            .filter(|s| s.ends_with('\n')))
        .trim(),
        "./run|a/log"
    );
    let (c, out, _) = cmd(t.path(), "s6-svstat", &["a/log"]);
    assert_eq!(c, 0);
    assert!(out.starts_with(&format!("up (pid {lpid}) ")), "{out}");
    // Kill the logger mid-stream; it restarts on the same pipe and nothing is lost.
    let count = |n: usize| {
        wait_for(T, "logged lines", || {
            let s = fs::read_to_string(sd.join("logged")).ok()?;
            (s.lines().count() >= n).then_some(s)
        })
    };
    count(100);
    cmd(t.path(), "s6-svc", &["-k", "a/log"]);
    wait_for(T, "logger killed", || (!alive(lpid)).then_some(()));
    fs::write(sd.join("go"), "").unwrap();
    wait_up(&sd.join("log"), Some(lpid));
    let all = count(200);
    let want: Vec<String> = (0..200).map(|i| i.to_string()).collect();
    assert_eq!(all.lines().collect::<Vec<_>>(), want);
    assert_eq!(sup.stop(), 0);
}

#[test]
fn timeout_finish_kills_a_slow_finish() {
    if !have_refs(&["s6-svc", "s6-svstat"]) {
        return;
    }
    let t = TempDir::new("s6tf");
    let sd = t.path().join("a");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    script(
        &sd.join("finish"),
        "#!/bin/sh\necho $$ > finpid\nexec sleep 1000\n",
    );
    fs::write(sd.join("timeout-finish"), "300\n").unwrap();
    let sup = Sup::start("s6", t.path(), "a");
    wait_up(&sd, None);
    let t0 = Instant::now();
    assert_eq!(
        cmd(t.path(), "s6-svc", &["-wD", "-T", "5000", "-d", "a"]).0,
        0
    );
    assert!(t0.elapsed() >= Duration::from_millis(280));
    let fpid: i32 = fs::read_to_string(sd.join("finpid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!alive(fpid));
    assert!(sup.err().contains(
        "rsupervise a: warning: finish script lifetime reached maximum value - sending it a SIGKILL"
    ));
    assert_eq!(sup.stop(), 0);
}

/// Event letters broadcast to `event/` for the same scenario, real s6-supervise vs ours.
#[test]
fn same_events_as_real_s6_supervise() {
    if !have_refs(&["s6-supervise", "s6-svc"]) {
        return;
    }
    let mut results = Vec::new();
    for real in [true, false] {
        let t = TempDir::new("s6ev");
        let sd = t.path().join("a");
        script(
            &sd.join("run"),
            "#!/bin/sh\nsleep 0.2\necho >&3\nexec sleep 1000\n",
        );
        fs::write(sd.join("notification-fd"), "3\n").unwrap();
        let mut l = rsv::fifodir::Listener::subscribe(&sd.join("event")).unwrap();
        let mut seen = String::new();
        let mut until = |l: &mut rsv::fifodir::Listener, want: &str| {
            wait_for(T, want, || {
                seen.push_str(&String::from_utf8_lossy(&l.read_events().unwrap()));
                seen.ends_with(want).then_some(())
            });
        };
        let sup = if real {
            Sup::start_prog(std::path::Path::new("s6-supervise"), &[], t.path(), "a")
        } else {
            Sup::start("s6", t.path(), "a")
        };
        until(&mut l, "U");
        cmd(t.path(), "s6-svc", &["-d", "a"]);
        until(&mut l, "D");
        cmd(t.path(), "s6-svc", &["-u", "a"]);
        until(&mut l, "U");
        cmd(t.path(), "s6-svc", &["-x", "a"]);
        std::thread::sleep(Duration::from_millis(100));
        cmd(t.path(), "s6-svc", &["-d", "a"]);
        until(&mut l, "x");
        let mut sup = sup;
        assert_eq!(sup.g.wait_exit(T).code(), Some(0));
        results.push(seen);
    }
    assert_eq!(results[0], "suUdDuUdDx");
    assert_eq!(results[0], results[1]);
}

/// Signals to the supervisor itself (compat.md 6.2.5): HUP waits for the service to die by
/// itself, QUIT leaves at once, INT takes the service's process group along.
#[test]
fn supervisor_signals() {
    let t = TempDir::new("s6sig");
    let sd = t.path().join("a");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    // HUP: the supervisor stays until the service dies.
    let mut sup = Sup::start("s6", t.path(), "a");
    let pid = wait_up(&sd, None);
    sup.g.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(200));
    assert!(alive(sup.g.pid()) && alive(pid));
    common::kill_pid(pid);
    assert_eq!(sup.g.wait_exit(T).code(), Some(0));
    // QUIT: exits at once, the service is left running.
    let mut sup = Sup::start("s6", t.path(), "a");
    let pid = wait_up(&sd, Some(pid));
    sup.g.signal(libc::SIGQUIT);
    assert_eq!(sup.g.wait_exit(T).code(), Some(0));
    assert!(alive(pid));
    common::kill_pid(pid);
    // INT: SIGINT to the service's process group, then exit.
    let mut sup = Sup::start("s6", t.path(), "a");
    let pid = wait_up(&sd, Some(pid));
    sup.g.signal(libc::SIGINT);
    assert_eq!(sup.g.wait_exit(T).code(), Some(0));
    wait_for(T, "service gone", || (!alive(pid)).then_some(()));
}

/// State writes reuse two inodes per file (the file and its `.new` spare, swapped by
/// RENAME_EXCHANGE) and death_tally grows in place: a SIGTERM stop with a finish script, the
/// moment every supervisor of a container writes at once, creates no file in `supervise/`.
/// Both modes; checked by inode numbers, before and after.
#[test]
fn shutdown_creates_no_file_in_supervise() {
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;
    for mode in ["s6", "runit"] {
        let t = TempDir::new(&format!("noinode-{mode}"));
        let sd = t.path().join("a");
        sleeper(&sd);
        script(&sd.join("finish"), "#!/bin/sh\nexit 0\n");
        let sup = Sup::start(mode, t.path(), "a");
        wait_up(&sd, None);
        let inodes = || -> BTreeMap<String, u64> {
            fs::read_dir(sd.join("supervise"))
                .unwrap()
                .flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name, e.metadata().unwrap().ino())
                })
                .collect()
        };
        let before = inodes();
        assert!(before.contains_key("status.new"), "{mode}: {before:?}");
        let old: std::collections::BTreeSet<u64> = before.values().copied().collect();
        let tally_before = fs::read(sd.join("supervise/death_tally")).ok();
        assert_eq!(sup.stop(), 0);
        let after = inodes();
        let new: Vec<_> = after.iter().filter(|(_, i)| !old.contains(i)).collect();
        assert!(
            new.is_empty(),
            "{mode}: new files {new:?} (before {before:?})"
        );
        // The stop was recorded all the same.
        match read_status(&sd.join("supervise")).unwrap() {
            AnyStatus::S6(s) => {
                assert_eq!((s.pid, s.wstat & 0x7f), (0, libc::SIGTERM as u16), "{mode}")
            }
            AnyStatus::Runit(r) => assert_eq!(r.pid, 0, "{mode}"),
        }
        if mode == "s6" {
            let tally = fs::read(sd.join("supervise/death_tally")).unwrap();
            assert_eq!(
                tally.len(),
                tally_before.unwrap().len() + rsv::status::DEATH_LEN
            );
        }
    }
}
