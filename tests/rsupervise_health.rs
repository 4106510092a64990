//! rsupervise health checks: `check` as readiness for services without notification-fd
//! (rsvc -wU, real s6-svwait -U and sv -w start), periodic checks with restarts, check
//! timeouts, and no cost at all for services without `check`.

mod common;
mod supervisor;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Guard, TempDir, alive, bin, have_refs, run, script, wait_for};
use rsv::extstate::{ExtState, Health};
use supervisor::*;

fn state(sd: &Path) -> Option<ExtState> {
    rsv::extstate::read(&sd.join("supervise")).ok()
}

/// Waits until rsv-state satisfies `f`, returning it.
fn wait_state(sd: &Path, what: &str, f: impl Fn(&ExtState) -> bool) -> ExtState {
    wait_for(T, what, || state(sd).filter(|s| f(s)))
}

/// The supervisor's children (pids), from /proc.
fn children(pid: i32) -> Vec<i32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Voluntary context switches of `pid`: a process asleep in poll(2) without timeout does
/// not add any.
fn wakeups(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Asserts that the supervisor `pid` goes quiet: once the work in progress is done (two
/// readings 200 ms apart agree), it does not wake up for `ms` milliseconds.
fn assert_quiet(pid: i32, ms: u64) {
    let mut last = wakeups(pid);
    let settled = wait_for(T, "the supervisor to go quiet", || {
        std::thread::sleep(Duration::from_millis(200));
        let now = wakeups(pid);
        let same = now == last;
        last = now;
        same.then_some(now)
    });
    std::thread::sleep(Duration::from_millis(ms));
    assert_eq!(wakeups(pid), settled, "the supervisor woke up while idle");
}

/// A service whose run becomes "ready" (creates `ready`) 300 ms after it starts, and whose
/// check tests for that file.
fn slow_starter(sd: &Path) {
    script(
        &sd.join("run"),
        "#!/bin/sh\nrm -f ready\n(sleep 0.3; touch ready) &\nexec sleep 1000\n",
    );
    script(
        &sd.join("check"),
        "#!/bin/sh\necho \"not ready yet\" >&2\ntest -e ready\n",
    );
}

/// Runs `prog args...` in `dir` in the background (stdout/stderr to files), returning the
/// guard and the path prefix of its output files.
fn background(dir: &Path, tag: &str, prog: &Path, args: &[&str]) -> Guard {
    Guard::spawn(
        Command::new(prog)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join(format!("{tag}.out"))).unwrap())
            .stderr(fs::File::create(dir.join(format!("{tag}.err"))).unwrap()),
    )
}

/// Waits for a background client; returns (exit code, whether `ready` existed when it
/// ended, its stderr).
fn finish_client(g: &mut Guard, dir: &Path, sd: &Path, tag: &str) -> (i32, bool, String) {
    let child = g.0.as_mut().unwrap();
    let (code, ready) = wait_for(T, tag, || {
        let st = child.try_wait().unwrap()?;
        Some((st.code().unwrap_or(-1), sd.join("ready").exists()))
    });
    g.0 = None;
    let err = fs::read_to_string(dir.join(format!("{tag}.err"))).unwrap_or_default();
    (code, ready, err)
}

fn check_ready(mode: &str) {
    let t = TempDir::new(&format!("hready{mode}"));
    let sd = t.path().join("a");
    slow_starter(&sd);
    let refs = match mode {
        "s6" => have_refs(&["s6-svwait"]),
        _ => have_refs(&["sv"]),
    };
    let sup = Sup::start(mode, t.path(), "a");
    let started = Instant::now();
    let mut rsvc = background(t.path(), "rsvc", &bin("rsvc"), &["-wU", "a"]);
    let mut reference = refs.then(|| match mode {
        "s6" => background(t.path(), "ref", Path::new("s6-svwait"), &["-U", "a"]),
        // sv runs ./check itself (after seeing the service up).
        _ => background(
            t.path(),
            "ref",
            Path::new("sv"),
            &["-w", "7", "start", "./a"],
        ),
    });
    let (code, ready, err) = finish_client(&mut rsvc, t.path(), &sd, "rsvc");
    assert_eq!(code, 0, "rsvc -wU: {err}");
    assert!(ready, "rsvc -wU returned before the check could pass");
    assert!(!err.contains("notification-fd"), "no downgrade: {err}");
    let took = started.elapsed();
    if let Some(g) = reference.as_mut() {
        let (code, ready, err) = finish_client(g, t.path(), &sd, "ref");
        let out = fs::read_to_string(t.path().join("ref.out")).unwrap_or_default();
        assert_eq!(code, 0, "reference client: {out}{err}");
        assert!(ready, "reference client returned before the check passed");
    }
    // Ready is recorded: s6's status flag, rsv-state in both modes, a `U` was broadcast.
    let st = wait_state(&sd, "ready in rsv-state", |s| s.ready);
    assert_eq!(st.health, Health::None, "no periodic checks configured");
    assert!(st.health_at_ms > 0);
    if mode == "s6" && have_refs(&["s6-svstat"]) {
        let (_, out, _) = cmd(t.path(), "s6-svstat", &["-o", "up,ready", "a"]);
        assert_eq!(out, "true true\n");
    }
    // Once ready, a new wait returns at once (runit: from rsv-state, no event needed).
    let (code, _, err) = run(
        Command::new(bin("rsvc"))
            .args(["-wU", "a"])
            .current_dir(t.path()),
        T,
    );
    assert_eq!(code, 0, "{err}");
    // Readiness is polled from ~100 ms with a doubling pause: ready well within 2 s.
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // Readiness only: once passed, the check is not run again and the supervisor has
    // nothing but run as a child.
    let pid = wait_up(&sd, None);
    wait_for(T, "only run left as child", || {
        (children(sup.g.pid()) == vec![pid]).then_some(())
    });
    assert_quiet(sup.g.pid(), 300);
    assert_eq!(sup.stop(), 0);
}

#[test]
fn check_readiness_s6() {
    check_ready("s6");
}

#[test]
fn check_readiness_runit() {
    check_ready("runit");
}

/// A service with periodic checks that fail while `bad` exists.
fn checked(sd: &Path, interval: u64, retries: u32, timeout: Option<u64>) {
    script(
        &sd.join("run"),
        "#!/bin/sh\necho $$ >> runs\nexec sleep 1000\n",
    );
    script(
        &sd.join("check"),
        "#!/bin/sh\nif test -e bad; then echo \"sick: $(cat bad)\"; exit 1; fi\necho fine\n",
    );
    fs::write(sd.join("check-interval"), format!("{interval}\n")).unwrap();
    fs::write(sd.join("check-retries"), format!("{retries}\n")).unwrap();
    if let Some(t) = timeout {
        fs::write(sd.join("check-timeout"), format!("{t}\n")).unwrap();
    }
}

fn health_restart(mode: &str) {
    let t = TempDir::new(&format!("hrestart{mode}"));
    let sd = t.path().join("a");
    checked(&sd, 150, 2, None);
    let sup = Sup::start(mode, t.path(), "a");
    let pid1 = wait_up(&sd, None);
    let st = wait_state(&sd, "healthy", |s| s.health == Health::Healthy);
    assert_eq!((st.health_failures, st.health_output.as_str()), (0, "fine"));
    assert!(st.ready);

    fs::write(sd.join("bad"), "disk\tfull\n").unwrap();
    let failed_at = Instant::now();
    let pid2 = wait_up(&sd, Some(pid1));
    let elapsed = failed_at.elapsed();
    assert!(!alive(pid1));
    // Two failures 150 ms apart (plus check run time), then the restart.
    assert!(
        elapsed >= Duration::from_millis(150),
        "restarted too early: {elapsed:?}"
    );
    let st = state(&sd).unwrap();
    assert_eq!(st.health, Health::Unhealthy, "{st:?}");
    assert_eq!(st.health_failures, 2);
    assert_eq!(st.health_output, "sick: disk full");
    assert!(
        sup.err()
            .contains("check failed 2 times in a row, restarting the service: sick: disk full"),
        "{}",
        sup.err()
    );
    // The old run died of its down-signal (a death, not a control command).
    if mode == "s6" {
        let tally = fs::read(sd.join("supervise/death_tally")).unwrap();
        assert!(!tally.is_empty());
    }

    // While `bad` stays, the new run never becomes ready and is not restarted again
    // (readiness polling does not count failures).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(wait_up(&sd, None), pid2);
    let st = state(&sd).unwrap();
    assert_eq!((st.health, st.ready), (Health::Unhealthy, false));

    fs::remove_file(sd.join("bad")).unwrap();
    let st = wait_state(&sd, "healthy again", |s| s.health == Health::Healthy);
    assert_eq!((st.health_failures, st.ready), (0, true));
    assert_eq!(st.health_output, "fine");
    assert_eq!(wait_up(&sd, None), pid2, "recovery does not restart");
    let runs = fs::read_to_string(sd.join("runs")).unwrap();
    assert_eq!(runs.lines().count(), 2, "{runs}");
    assert_eq!(sup.stop(), 0);
}

#[test]
fn health_restart_and_recovery_s6() {
    health_restart("s6");
}

#[test]
fn health_restart_and_recovery_runit() {
    health_restart("runit");
}

#[test]
fn hanging_check_is_killed_at_timeout() {
    let t = TempDir::new("hhang");
    let sd = t.path().join("a");
    checked(&sd, 100, 1, Some(300));
    // While `hang` exists the check prints something, then hangs with a child.
    script(
        &sd.join("check"),
        "#!/bin/sh\nif test -e hang; then echo $$ > checkpid; echo partial; sleep 1000 & echo $! > sleeppid; wait; fi\necho fine\n",
    );
    let sup = Sup::start("s6", t.path(), "a");
    let pid1 = wait_up(&sd, None);
    wait_state(&sd, "healthy", |s| s.health == Health::Healthy);
    fs::write(sd.join("hang"), "").unwrap();
    let num = |f: &str| -> Option<i32> { fs::read_to_string(sd.join(f)).ok()?.trim().parse().ok() };
    let (check_pid, sleep_pid) = wait_for(T, "hanging check", || {
        Some((num("checkpid")?, num("sleeppid")?))
    });
    let hung_at = Instant::now();
    let pid2 = wait_up(&sd, Some(pid1));
    let took = hung_at.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    let st = state(&sd).unwrap();
    assert_eq!(st.health, Health::Unhealthy);
    assert_eq!(st.health_output, "check timed out after 300 ms: partial");
    // The check's whole process group was killed.
    wait_for(T, "check and its child gone", || {
        (!alive(check_pid) && !alive(sleep_pid)).then_some(())
    });
    fs::remove_file(sd.join("hang")).unwrap();
    wait_state(&sd, "healthy again", |s| s.health == Health::Healthy);
    assert_eq!(wait_up(&sd, None), pid2);
    assert_eq!(sup.stop(), 0);
}

#[test]
fn report_only_and_down_stops_checks() {
    let t = TempDir::new("hreport");
    let sd = t.path().join("a");
    // check-retries 0: unhealthy is reported, nothing is restarted.
    checked(&sd, 100, 0, None);
    let sup = Sup::start("s6", t.path(), "a");
    let pid = wait_up(&sd, None);
    wait_state(&sd, "healthy", |s| s.health == Health::Healthy);
    fs::write(sd.join("bad"), "x").unwrap();
    let st = wait_state(&sd, "unhealthy", |s| s.health_failures >= 3);
    assert_eq!(st.health, Health::Unhealthy);
    assert_eq!(wait_up(&sd, None), pid, "report only: no restart");
    // Down: no more checks, no more children, no more wake-ups.
    let (code, _, err) = run(
        Command::new(bin("rsvc"))
            .args(["-wd", "-d", "a"])
            .current_dir(t.path()),
        T,
    );
    assert_eq!(code, 0, "{err}");
    let spid = sup.g.pid();
    wait_for(T, "no children", || children(spid).is_empty().then_some(()));
    let at = state(&sd).unwrap().health_at_ms;
    assert_quiet(spid, 500);
    assert_eq!(
        state(&sd).unwrap().health_at_ms,
        at,
        "no check ran while down"
    );
    assert_eq!(sup.stop(), 0);
}

#[test]
fn no_check_no_children_no_wakeups() {
    let t = TempDir::new("hnone");
    let sd = t.path().join("a");
    sleeper(&sd);
    // Periodic settings without a check script do nothing.
    fs::write(sd.join("check-interval"), "100\n").unwrap();
    let sup = Sup::start("s6", t.path(), "a");
    let pid = wait_up(&sd, None);
    let spid = sup.g.pid();
    wait_for(T, "only run as child", || {
        (children(spid) == vec![pid]).then_some(())
    });
    // Up without notification-fd or check: ready as far as rsv-state is concerned.
    let st = wait_state(&sd, "rsv-state ready", |s| s.ready);
    assert_eq!(st.health, Health::None);
    assert_eq!((st.health_at_ms, st.health_output.as_str()), (0, ""));
    assert_quiet(spid, 500);
    assert_eq!(children(spid), vec![pid]);
    assert_eq!(sup.stop(), 0);
}

/// Copies a directory tree (files and subdirectories, modes kept).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            fs::copy(&p, &dest).unwrap();
        }
    }
}

#[test]
fn example_health_web_becomes_ready_and_healthy() {
    let t = TempDir::new("hexample");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("servicedirs-examples/health");
    assert!(
        fs::read_to_string(examples.join("README.md"))
            .unwrap()
            .contains("check-interval")
    );
    copy_tree(&examples, t.path());
    let sd = t.path().join("web");
    let sup = Sup::start("s6", t.path(), "web");
    let (code, _, err) = run(
        Command::new(bin("rsvc"))
            .args(["-wU", "web"])
            .current_dir(t.path()),
        T,
    );
    assert_eq!(code, 0, "{err}");
    assert!(sd.join("heartbeat").exists());
    let st = wait_state(&sd, "healthy", |s| s.health == Health::Healthy);
    assert!(st.ready);
    assert!(
        st.health_output.starts_with("heartbeat ") && st.health_output.ends_with("s old"),
        "{st:?}"
    );
    assert_eq!(sup.stop(), 0);
}

#[test]
fn logger_check_decides_logger_readiness() {
    let t = TempDir::new("hlog");
    let sd = t.path().join("a");
    sleeper(&sd);
    script(
        &sd.join("log/run"),
        "#!/bin/sh\nrm -f started\n(sleep 0.2; touch started) &\nexec cat > /dev/null\n",
    );
    // The logger's check runs in log/ and sees log/started.
    script(
        &sd.join("log/check"),
        "#!/bin/sh\ntest -e started && echo \"logger up in $(basename \"$PWD\")\"\n",
    );
    let sup = Sup::start("runit", t.path(), "a");
    let (code, _, err) = run(
        Command::new(bin("rsvc"))
            .args(["-wU", "a/log"])
            .current_dir(t.path()),
        T,
    );
    assert_eq!(code, 0, "{err}");
    assert!(sd.join("log/started").exists());
    let st = wait_state(&sd.join("log"), "logger ready", |s| s.ready);
    assert_eq!(st.health_output, "logger up in log");
    // The main service has no check: ready as soon as it is up.
    assert!(wait_state(&sd, "service ready", |s| s.ready).health_at_ms == 0);
    assert_eq!(sup.stop(), 0);
}
