//! A service left running by a supervisor that died (its pid still in `supervise/`): found
//! at start-up by pid and start time, and stopped before `run` starts again.

use std::fs;
use std::time::Instant;

use super::Svc;
use crate::machine::Files;
use crate::status;
use crate::svdir::SvDir;

/// How long to wait after SIGKILL for a leftover process to disappear.
pub(super) const LEFTOVER_KILL_WAIT_MS: u64 = 2000;
/// Bound on the wait after the down-signal when `timeout-kill` is not set.
pub(super) const LEFTOVER_DEFAULT_WAIT_MS: u64 = 5000;
/// Allowed difference between a leftover's start time (whole ticks since boot, boot time in
/// whole seconds) and the status stamp.
pub(super) const LEFTOVER_CLOCK_SLACK_S: f64 = 2.0;

/// Fields of `/proc/PID/stat` after the command name, starting with field 3 (state).
pub(super) fn proc_stat(pid: i32) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Is `pid` gone (no such process, or a zombie waiting for its parent)?
pub(super) fn proc_gone(pid: i32) -> bool {
    match proc_stat(pid) {
        None => true,
        Some(f) => matches!(f.first().map(String::as_str), Some("Z" | "X" | "x")),
    }
}

/// Start time of `pid` in seconds since the epoch, from its start in ticks after boot.
pub(super) fn proc_start_unix(pid: i32) -> Option<f64> {
    let ticks: f64 = proc_stat(pid)?.get(22 - 3)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        return None;
    }
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let btime: f64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(btime + ticks / hz as f64)
}

/// The pid a previous supervisor recorded in `supervise/` (either status format, or runit's
/// `pid` file), with the status stamp in seconds since the epoch when known.
pub(super) fn recorded_pid(dir: &SvDir) -> Option<(i32, Option<f64>)> {
    let sup_dir = dir.path("supervise");
    let (pid, stamp) = match status::read_status(&sup_dir) {
        Ok(st) => {
            let family = st.family();
            let (pid, stamp) = match st {
                status::AnyStatus::Runit(r) => (u64::from(r.pid), r.stamp),
                status::AnyStatus::S6(r) => (r.pid, r.stamp),
            };
            let (secs, nanos) = stamp.to_unix(family);
            (pid, Some(secs as f64 + f64::from(nanos) / 1e9))
        }
        Err(_) => {
            let text = fs::read(sup_dir.join("pid")).ok()?;
            (crate::svdir::parse_uint(&text)?, None)
        }
    };
    let pid = i32::try_from(pid).ok().filter(|&p| p > 1)?;
    Some((pid, stamp))
}

/// Stops a `run` or `finish` left running by a previous supervisor of this directory that
/// was killed without cleaning up (SIGKILL), so that the service never runs twice.
///
/// The recorded pid is acted on only if that process is alive, its working directory is
/// this service directory (a guard against pid reuse), and it did not start after the
/// recorded status stamp. It gets the down-signal (and SIGCONT), to its process group when
/// it leads one of its own, then `timeout-kill` ms (5 s when unset) to disappear, then
/// SIGKILL. It is not our child: its disappearance is watched in /proc (a zombie counts as
/// gone; its new parent, the scanner or init, reaps it).
pub(super) fn stop_leftover(s: &mut Svc) {
    let Some((pid, stamp)) = recorded_pid(&s.dir) else {
        return;
    };
    if pid == std::process::id() as i32 || proc_gone(pid) {
        return;
    }
    let here = if s.m.is_log { "log" } else { "." };
    let (Ok(mine), Ok(theirs)) = (
        fs::canonicalize(here),
        fs::read_link(format!("/proc/{pid}/cwd")),
    ) else {
        return;
    };
    if mine != theirs {
        return;
    }
    if let (Some(stamp), Some(start)) = (stamp, proc_start_unix(pid)) {
        if start > stamp + LEFTOVER_CLOCK_SLACK_S {
            return;
        }
    }
    // SAFETY: getpgid/getpgrp only query process groups.
    let (pgid, ours) = unsafe { (libc::getpgid(pid), libc::getpgrp()) };
    let group = pgid == pid && pgid != ours;
    let send = |sig: i32| {
        // SAFETY: signalling the verified leftover process (or the group it leads).
        unsafe {
            if group {
                libc::killpg(pid, sig);
            } else {
                libc::kill(pid, sig);
            }
        }
    };
    let sig = s.dir.down_signal();
    s.dir.warn(&format!(
        "pid {pid} is still running from a previous supervisor: sending {} and waiting for it to exit",
        crate::sig::long_name(sig)
    ));
    send(sig);
    send(libc::SIGCONT);
    let bound = match s.dir.timeout_kill() {
        0 => LEFTOVER_DEFAULT_WAIT_MS,
        ms => ms,
    };
    if wait_gone(pid, bound) {
        return;
    }
    send(libc::SIGKILL);
    if !wait_gone(pid, LEFTOVER_KILL_WAIT_MS) {
        s.dir.warn(&format!("pid {pid} survived SIGKILL"));
    }
}

/// Polls /proc until `pid` is gone or `ms` milliseconds have passed.
pub(super) fn wait_gone(pid: i32, ms: u64) -> bool {
    let end = Instant::now() + std::time::Duration::from_millis(ms);
    loop {
        if proc_gone(pid) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
