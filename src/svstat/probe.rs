//! `rsvstat --ready`: one call that says whether a whole tree is up and ready, for
//! container health checks and Kubernetes exec probes.
//!
//! Counted: every service that is wanted up, plus one that gave up (it is down for good).
//! A service wanted down (a `down` file it was not started from, or `rsvc -d`) is left out:
//! it is down on purpose. A service passes when its supervisor runs, it is up, not paused,
//! ready and not unhealthy. A logger (`NAME/log`) passes when it is up: loggers have no
//! readiness, but a logger that is down stops its service's output once the pipe is full.

use super::{Info, rsv_line};
use crate::diag::EXIT_SYS;
use crate::tai::Tai64N;

/// Why `info` fails the probe, or None when it passes or is not counted.
pub fn failure(info: &Info, now: Tai64N, now_ms: u64) -> Option<String> {
    let v = match &info.view {
        Ok(v) => v,
        Err(_) if !info.supervised => return Some("not supervised".into()),
        Err(e) => return Some(format!("status unreadable: {e}")),
    };
    let gave_up = info.ext.as_ref().is_some_and(|e| e.gave_up);
    if !v.wantup && !gave_up {
        return None;
    }
    if !info.supervised {
        return Some("not supervised".into());
    }
    let pass = if info.logger {
        v.up
    } else {
        v.up && !v.paused && info.probe_ready() && !info.unhealthy()
    };
    if pass {
        return None;
    }
    Some(rsv_line(
        v,
        info.normallyup,
        false,
        info.ext.as_ref(),
        info.give_up,
        now,
        now_ms,
    ))
}

/// Prints one line per failing service to stdout (`NAME: not ready: WHY`); exit 0 when
/// none fails, 1 when one does, 111 when an operand is missing or stdout fails.
pub fn main(infos: &[Info], now: Tai64N, now_ms: u64, missing: bool) -> i32 {
    let mut out = String::new();
    let mut failed = false;
    for info in infos {
        if let Some(why) = failure(info, now, now_ms) {
            failed = true;
            out.push_str(&format!("{}: not ready: {why}\n", info.name));
        }
    }
    if super::write_stdout(&out).is_err() {
        return EXIT_SYS;
    }
    if missing {
        EXIT_SYS
    } else if failed {
        1
    } else {
        0
    }
}
