//! rsupervise's resource guards (a program that allocates or spins on purpose), alerts
//! (a recorder script, per service and for the scan dir), and `stop-tree` (a double-forking
//! daemon stopped through the service's cgroup; leftovers of a plain service left alone, as
//! runsv and s6-supervise leave them, and listed by rsvstat).

mod common;
mod supervisor;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{TempDir, alive, bin, kill_pid, run, script, wait_for};
use rsv::extstate::ExtState;
use supervisor::*;

fn state(sd: &Path) -> Option<ExtState> {
    rsv::extstate::read(&sd.join("supervise")).ok()
}

fn wait_state(sd: &Path, what: &str, f: impl Fn(&ExtState) -> bool) -> ExtState {
    wait_for(T, what, || state(sd).filter(|s| f(s)))
}

fn have_python() -> bool {
    let ok = Command::new("python3")
        .arg("-c")
        .arg("pass")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: python3 is needed for the allocating program");
    }
    ok
}

/// The recorder: one line `EVENT|NAME|DETAILS|$RSV_EVENT|$RSV_SERVICE` per alert.
fn recorder(path: &Path, log: &Path) {
    script(
        path,
        &format!(
            "#!/bin/sh\necho \"$1|$2|$3|$RSV_EVENT|$RSV_SERVICE\" >> {}\n",
            log.display()
        ),
    );
}

fn lines(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn memory_guard_restarts_a_growing_service() {
    if !have_python() {
        return;
    }
    let t = TempDir::new("guard-mem");
    let sd = t.path().join("hog");
    // Touches 64 MiB, then sleeps.
    script(
        &sd.join("run"),
        "#!/bin/sh\nexec python3 -c 'import time\nx = bytearray(b\"\\x01\") * (64 << 20)\ntime.sleep(1000)'\n",
    );
    fs::write(sd.join("limit-memory"), "32M\n").unwrap();
    fs::write(sd.join("limit-cycles"), "2\n").unwrap();
    fs::write(sd.join("check-interval"), "200\n").unwrap();
    let log = t.path().join("alerts");
    recorder(&sd.join("alert"), &log);
    let sup = Sup::start("s6", t.path(), "hog");
    let first = wait_up(&sd, None);
    let st = wait_state(&sd, "a guard restart", |s| s.restarts >= 1);
    assert!(st.memory_bytes > 32 << 20 || st.limit.is_empty(), "{st:?}");
    wait_up(&sd, Some(first));
    assert!(
        sup.err().contains("limit exceeded (memory ")
            && sup.err().contains("restarting the service"),
        "{}",
        sup.err()
    );
    let l = wait_for(T, "the limit alert", || {
        let l = lines(&log);
        l.iter()
            .any(|x| x.starts_with("limit|hog|memory "))
            .then_some(l)
    });
    assert!(l.iter().any(|x| x.starts_with("started|hog|pid ")), "{l:?}");
    sup.stop();
}

#[test]
fn cpu_guard_reports_a_spinning_service() {
    let t = TempDir::new("guard-cpu");
    let sd = t.path().join("spin");
    script(&sd.join("run"), "#!/bin/sh\nwhile :; do :; done\n");
    fs::write(sd.join("limit-cpu"), "5\n").unwrap();
    fs::write(sd.join("limit-cycles"), "2\n").unwrap();
    fs::write(sd.join("limit-action"), "report\n").unwrap();
    fs::write(sd.join("check-interval"), "300\n").unwrap();
    let sup = Sup::start("s6", t.path(), "spin");
    let st = wait_state(&sd, "a cpu limit report", |s| s.limit.starts_with("cpu "));
    assert!(st.cpu_percent.is_some_and(|c| c > 5), "{st:?}");
    assert!(st.limit.contains("% > 5%"), "{st:?}");
    let (_, out, _) = run(Command::new(bin("rsvstat")).arg(&sd), T);
    assert!(out.contains("limit: cpu "), "{out}");
    assert_eq!(state(&sd).unwrap().restarts, 0, "report only");
    sup.stop();
}

#[test]
fn alerts_on_deaths_and_backoff_for_service_and_scan_dir() {
    let t = TempDir::new("alerts");
    let log = t.path().join("alerts");
    recorder(&t.path().join(".rsv/alert"), &log);
    let sd = t.path().join("crashy");
    script(&sd.join("run"), "#!/bin/sh\nexit 3\n");
    let sup = Sup::start("s6", t.path(), "crashy");
    let l = wait_for(T, "died and backoff alerts", || {
        let l = lines(&log);
        l.iter()
            .any(|x| x.starts_with("backoff|crashy|next try in "))
            .then_some(l)
    });
    assert!(
        l.contains(&"died|crashy|exit 3|died|crashy".to_string()),
        "{l:?}"
    );
    assert!(
        l.iter().any(|x| x.starts_with("started|crashy|pid ")),
        "{l:?}"
    );
    // Down: the crash loop stops, so do the alerts.
    let (code, _, _) = cmd(t.path(), bin("rsvc").to_str().unwrap(), &["-d", "crashy"]);
    assert_eq!(code, 0);
    sup.stop();
}

#[test]
fn alert_is_bounded_and_never_blocks() {
    let t = TempDir::new("alert-slow");
    let sd = t.path().join("svc");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    // An alert that would hang: the supervisor still answers at once.
    script(
        &sd.join("alert"),
        "#!/bin/sh\necho $$ > alert.pid\nexec sleep 1000\n",
    );
    let sup = Sup::start("s6", t.path(), "svc");
    let apid: i32 = wait_for(T, "the alert to run", || {
        fs::read_to_string(sd.join("alert.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    let (code, _, _) = cmd(
        t.path(),
        bin("rsvc").to_str().unwrap(),
        &["-wd", "-T", "5000", "-d", "svc"],
    );
    assert_eq!(
        code, 0,
        "control commands are answered while the alert runs"
    );
    assert!(alive(apid));
    sup.stop();
    kill_pid(apid);
}

/// A run that starts a daemon which double-forks out of run's process group and session,
/// recording its pid; run itself stays in the foreground.
fn double_forker(sd: &Path) {
    script(
        &sd.join("run"),
        "#!/bin/sh\nsh -c 'setsid sh -c \"echo \\$\\$ > daemon.pid; exec sleep 1000\" &' \nexec sleep 1000\n",
    );
}

#[test]
fn stop_tree_stops_a_double_forked_daemon_through_its_cgroup() {
    let t = TempDir::new("stoptree");
    let sd = t.path().join("forker");
    double_forker(&sd);
    fs::write(sd.join("stop-tree"), "").unwrap();
    fs::write(sd.join("timeout-kill"), "1000").unwrap();
    let sup = Sup::start("runit", t.path(), "forker");
    wait_up(&sd, None);
    let daemon: i32 = wait_for(T, "the daemon", || {
        fs::read_to_string(sd.join("daemon.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    let st = wait_state(&sd, "rsv-state", |_| true);
    if st.cgroup.is_empty() {
        eprintln!("note: no cgroup could be created here; the subreaper path is tested");
    } else {
        let cg = fs::read_to_string(format!("/proc/{daemon}/cgroup")).unwrap_or_default();
        let leaf = Path::new(&st.cgroup)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(cg.contains(&leaf), "daemon not in {}: {cg}", st.cgroup);
    }
    let (code, _, _) = cmd(
        t.path(),
        bin("rsvc").to_str().unwrap(),
        &["-wd", "-d", "forker"],
    );
    assert_eq!(code, 0);
    wait_for(T, "the daemon to be stopped", || {
        (!alive(daemon)).then_some(())
    });
    sup.stop();
    if !st.cgroup.is_empty() {
        assert!(
            !Path::new(&st.cgroup).exists(),
            "the cgroup is removed when the supervisor exits"
        );
    }
}

#[test]
fn without_stop_tree_leftovers_stay_and_rsvstat_lists_them() {
    let t = TempDir::new("leftover");
    let sd = t.path().join("plain");
    script(
        &sd.join("run"),
        "#!/bin/sh\nsleep 1000 &\necho $! > child.pid\nexec sleep 1000\n",
    );
    let sup = Sup::start("s6", t.path(), "plain");
    wait_up(&sd, None);
    let child: i32 = wait_for(T, "the child", || {
        fs::read_to_string(sd.join("child.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    let (code, _, _) = cmd(
        t.path(),
        bin("rsvc").to_str().unwrap(),
        &["-wd", "-d", "plain"],
    );
    assert_eq!(code, 0);
    // As s6-supervise: only run's pid got the signal.
    assert!(alive(child), "a plain service dir keeps s6's behaviour");
    let (_, out, _) = run(Command::new(bin("rsvstat")).arg(&sd), T);
    assert!(out.contains(&format!("leftovers: {child}")), "{out}");
    let (_, json, _) = run(Command::new(bin("rsvstat")).arg("--json").arg(&sd), T);
    assert!(json.contains(&format!("\"leftovers\":[{child}]")), "{json}");
    kill_pid(child);
    sup.stop();
}
