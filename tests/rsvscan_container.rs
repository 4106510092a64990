//! Crash-loop backoff and health checks as a container sees them: rsvscan is PID 1 of its own
//! pid namespace, the state is read from `supervise/rsv-state` and `rsvstat` (never slept for),
//! and the controls are the user's own (`rsvc -u`, `rsvstat --ready`).

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use rsv::extstate::{self, Health};
use rsv::status::Ended;
use scan::*;

const SEC: Duration = Duration::from_secs(1);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn starts(p: &std::path::Path) -> Vec<u64> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .map(|ns| ns / 1_000_000)
        .collect()
}

#[test]
fn crash_loop_backs_off_and_rsvc_up_starts_at_once() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("ct-backoff");
    let scan = t.path().join("scan");
    let sd = scan.join("flaky");
    let log = t.path().join("starts");
    script(
        &sd.join("run"),
        &format!(
            "#!/bin/sh\ndate +%s%N >> {}\necho flaky: failing >&2\nexit 3\n",
            log.display()
        ),
    );
    fs::write(sd.join("backoff-max"), "4000\n").unwrap();
    let ns = start_ns(&scan, &[], &t.path().join("err"));

    // The third wait is 4 s (1, 2, 4): rsv-state announces it before it happens.
    let sup = sd.join("supervise");
    let st = wait_for(15 * SEC, "a 4-s backoff announced", || {
        extstate::read(&sup)
            .ok()
            .filter(|s| s.backoff_ms == 4000 && s.next_try_ms > now_ms() + 1000)
    });
    assert_eq!(st.exits.first(), Some(&Ended::Exited(3)), "{st:?}");
    assert!(st.restarts >= 2, "{st:?}");
    let s = starts(&log);
    assert!(s.len() >= 3, "{s:?}");
    let gaps: Vec<u64> = s.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= 900 && gaps[1] >= 1800, "gaps {gaps:?}");

    // rsvstat says so, in words.
    let (code, out, _) = run(Command::new(bin("rsvstat")).arg(&sd), 10 * SEC);
    assert_eq!(code, 0);
    assert!(
        out.contains("throttled, next try in ") && out.contains("last exits: 3 3"),
        "{out}"
    );

    // A user's `rsvc -u` does not wait for the backoff.
    let before = starts(&log).len();
    let sent = now_ms();
    let (code, _, err) = run(Command::new(bin("rsvc")).args(["-u"]).arg(&sd), 10 * SEC);
    assert_eq!(code, 0, "{err}");
    let s = wait_for(5 * SEC, "start after -u", || {
        let s = starts(&log);
        (s.len() > before).then_some(s)
    });
    let took = s[before].saturating_sub(sent);
    assert!(took < 1000, "started {took} ms after rsvc -u");
    drop(ns);
}

#[test]
fn failing_health_check_restarts_and_rsvstat_ready_reports_it() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("ct-health");
    let scan = t.path().join("scan");
    let sd = scan.join("web");
    let sick = t.path().join("sick");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    script(
        &sd.join("check"),
        &format!(
            "#!/bin/sh\nif [ -e {0} ]; then echo \"web: backend gone\"; exit 1; fi\necho ok\n",
            sick.display()
        ),
    );
    fs::write(sd.join("check-interval"), "200\n").unwrap();
    fs::write(sd.join("check-retries"), "2\n").unwrap();
    fs::write(sd.join("check-timeout"), "2000\n").unwrap();
    let ns = start_ns(&scan, &[], &t.path().join("err"));
    let sup = sd.join("supervise");
    let (_, pid1) = wait_up(&sd, 10 * SEC);

    // Ready once the check passed, then healthy: the probe says yes.
    wait_for(10 * SEC, "healthy", || {
        extstate::read(&sup)
            .ok()
            .filter(|s| s.ready && s.health == Health::Healthy)
    });
    let (code, out, _) = run(
        Command::new(bin("rsvstat")).arg("--ready").arg(&scan),
        10 * SEC,
    );
    assert_eq!(code, 0, "{out}");

    // The backend goes away: two failed checks, the service is restarted (new pid), and
    // both rsv-state and the probe say why.
    fs::write(&sick, "").unwrap();
    let st = wait_for(10 * SEC, "unhealthy and restarted", || {
        let st = extstate::read(&sup).ok()?;
        let pid = status_pid(&sd);
        (st.health == Health::Unhealthy && pid != 0 && pid != pid1).then_some(st)
    });
    assert!(st.health_failures >= 2, "{st:?}");
    assert_eq!(st.health_output, "web: backend gone");
    let (code, out, _) = run(
        Command::new(bin("rsvstat")).arg("--ready").arg(&scan),
        10 * SEC,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("web") && out.contains("unhealthy"), "{out}");
    let (_, line, _) = run(Command::new(bin("rsvstat")).arg(&sd), 10 * SEC);
    assert!(
        line.contains("unhealthy (") && line.contains("web: backend gone"),
        "{line}"
    );

    // It comes back.
    fs::remove_file(&sick).unwrap();
    wait_for(10 * SEC, "healthy again", || {
        extstate::read(&sup)
            .ok()
            .filter(|s| s.health == Health::Healthy)
    });
    let (code, out, _) = run(
        Command::new(bin("rsvstat")).arg("--ready").arg(&scan),
        10 * SEC,
    );
    assert_eq!(code, 0, "{out}");
    drop(ns);
}
