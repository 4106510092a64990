//! Health checks as a pure state machine: when to run a service's `check` script, what its
//! result means, and when it makes the service ready or gets it restarted. No system calls,
//! no clock reads; the supervisor's loop ([`crate::supervise`]) spawns and reaps the check,
//! reads its output and feeds [`Input`]s with a [`Ctx`], then carries out the [`Output`]s.
//!
//! Files of the service directory (read at each start of `run`, see [`read_config`]):
//!
//! - `check`: runit's check script (exit 0 = OK), and/or the built-in probes of
//!   [`crate::probe`] (`check-tcp`, `check-http`, `check-unix`, `check-file`), which the
//!   check child runs first. Without any of them nothing here ever runs: no timer, no
//!   descriptor, no wake-up.
//! - no `notification-fd`: the check decides readiness. After each start of `run` it is run
//!   first [`FIRST_POLL_MS`] after the start, then with a doubling pause (capped at
//!   [`MAX_POLL_MS`]) until it passes; the first pass makes the service ready (s6's `U`).
//!   Failures while polling for readiness are not counted.
//! - `check-interval` (ms): periodic checks while the service is up and ready, one
//!   interval after the end of the previous check. `check-retries` (default 3) consecutive
//!   failures make the service unhealthy and restart it (its down-signal, as a restart by
//!   hand would; 0 = report only, never restart). A pass makes it healthy again.
//! - `check-timeout` (ms, default 5000, 0 = none): a check still running after that is
//!   killed (its whole process group) and counts as a failure.
//!
//! Health ([`Health`]) is `none` without periodic checks, `starting` after a start until the
//! service is found healthy (a check passed) or unhealthy, then `healthy` or `unhealthy`. After a health restart the service
//! stays `unhealthy` (with the failing check's output) until a check passes again.

use crate::extstate::{Health, one_line};
use crate::machine::KILL_REPEAT_MS;
use crate::status::Ended;
use crate::svdir::{Setting, SvDir};

/// First readiness check, after the start of `run`.
pub const FIRST_POLL_MS: u64 = 100;
/// Longest pause between two readiness checks.
pub const MAX_POLL_MS: u64 = 1000;
/// Default `check-timeout`.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// Default `check-retries`.
pub const DEFAULT_RETRIES: u32 = 3;
/// `check-interval` when the file exists but cannot be read as a number.
pub const DEFAULT_INTERVAL_MS: u64 = 10_000;
/// Shortest accepted `check-interval`.
pub const MIN_INTERVAL_MS: u64 = 100;
/// Output of a check kept for `health_output` (more is read and dropped).
pub const MAX_CAPTURE: usize = 4096;

/// The check settings of one start of `run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The check decides readiness (the service dir has no usable `notification-fd`).
    pub readiness: bool,
    /// `check-interval`: periodic checks while up.
    pub interval_ms: Option<u64>,
    /// `check-timeout` (0 = none).
    pub timeout_ms: u64,
    /// `check-retries` (0 = report only, never restart).
    pub retries: u32,
    /// `timeout-kill` for a health restart (0 = never SIGKILL).
    pub kill_ms: u64,
    /// Built-in probes (`check-tcp`, `check-http`, ...), run before `check` if both exist.
    pub probes: Option<crate::probe::Set>,
}

/// Does the service dir have a `check` script or a built-in probe file?
pub fn has_checks(dir: &SvDir) -> bool {
    dir.exists("check") || crate::probe::any(dir)
}

/// Reads the check settings of a service directory; `None` when it has neither `check` nor
/// a probe file (then nothing else is read). `kill_ms` is the service's `timeout-kill`. A
/// malformed file gives one warning naming it, and its default applies.
pub fn read_config(dir: &SvDir, kill_ms: u64) -> Option<Config> {
    let script = dir.exists("check");
    if !script && !crate::probe::any(dir) {
        return None;
    }
    let num = |name: &str, default: u64| match dir.uint(name) {
        Setting::Absent => None,
        Setting::Value(v) => Some(v),
        Setting::Invalid => {
            dir.warn(&format!("invalid {}, using the default", dir.show(name)));
            Some(default)
        }
    };
    let timeout_ms = num("check-timeout", DEFAULT_TIMEOUT_MS).unwrap_or(DEFAULT_TIMEOUT_MS);
    Some(Config {
        readiness: !notifies(dir),
        interval_ms: num("check-interval", DEFAULT_INTERVAL_MS).map(|v| v.max(MIN_INTERVAL_MS)),
        timeout_ms,
        retries: num("check-retries", u64::from(DEFAULT_RETRIES))
            .unwrap_or(u64::from(DEFAULT_RETRIES))
            .min(u64::from(u32::MAX)) as u32,
        kill_ms,
        probes: crate::probe::read(dir, script, timeout_ms),
    })
}

/// Does the service notify its readiness itself: a usable `notification-fd` (the same test
/// as the supervisor's when it starts `run`, without its warning) or sd_notify's
/// `notify-socket`?
pub fn notifies(dir: &SvDir) -> bool {
    matches!(dir.uint("notification-fd"), Setting::Value(v) if v < i32::MAX as u64)
        || dir.exists(crate::sdnotify::FILE)
}

/// What the checker is doing for the current run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No checks (no `check`, `run` not up, or readiness done without periodic checks).
    Idle,
    /// Running the check until it passes, to declare readiness; the pause before the next.
    Polling { pause_ms: u64 },
    /// Periodic checks wait for readiness notified on `notification-fd`.
    AwaitReady,
    /// Periodic checks.
    Periodic,
    /// A health restart was requested; no checks until `run` is gone.
    Restarting,
}

/// Inputs from the loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// `run` was started; `None` when the service dir has no `check`.
    RunStarted(Option<Config>),
    /// The service notified readiness on its `notification-fd`.
    Ready,
    /// `run` died (or will not come back up): stop checking.
    RunStopped,
    /// A check process was started (answer to [`Output::SpawnCheck`]).
    CheckStarted(i32),
    /// The check could not be started: a failed check with this text as its output.
    CheckNotStarted(String),
    /// The check process was reaped, with what it wrote on stdout and stderr.
    CheckEnded { ended: Ended, output: Vec<u8> },
    /// A deadline of [`Checker::next_deadline`] may have passed.
    Timer,
}

/// Outputs, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Start `./check`; answer [`Input::CheckStarted`] or [`Input::CheckNotStarted`].
    SpawnCheck,
    /// SIGKILL to the check's process group (timeout, or `run` is gone).
    KillCheck(i32),
    /// The check passed: the service is ready (feed the supervisor machine `Ready`).
    Ready,
    /// Restart `run`: its down-signal (then SIGCONT), as a restart by hand would.
    Restart,
    /// `run` outlived `timeout-kill` after a health restart: SIGKILL it.
    KillRun,
    /// The health fields changed: rewrite `supervise/rsv-state`.
    Changed,
    /// A line for the supervisor's stderr (without the program prefix).
    Warn(String),
}

/// The loop's view of the service when it feeds an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    /// Monotonic milliseconds (same clock as the supervisor machine's deadlines).
    pub mono_ms: u64,
    /// Wall-clock milliseconds since the Unix epoch, for `health_at_ms`.
    pub wall_ms: u64,
    /// `run` is up and not paused: checks make sense.
    pub active: bool,
    /// The supervisor wants the service up: a failing service may be restarted.
    pub want_up: bool,
}

/// The health-check state of one service.
#[derive(Clone, Debug)]
pub struct Checker {
    cfg: Option<Config>,
    pub phase: Phase,
    /// The running check process, if any.
    pub check: Option<i32>,
    /// The running check was killed because `run` went away: ignore its result.
    discard: bool,
    /// The running check was killed at `check-timeout`.
    timed_out: bool,
    /// A check fell due while a discarded one was still being reaped: start it at its end.
    pending: bool,
    /// A check that could not be started was reported since the last start of `run`.
    warned: bool,
    /// Deadlines (monotonic ms): next check, check timeout, SIGKILL after a health restart.
    next_at: Option<u64>,
    kill_at: Option<u64>,
    run_kill_at: Option<u64>,
    pub health: Health,
    /// Consecutive failed periodic checks.
    pub failures: u32,
    /// Wall-clock ms of the end of the last check (0 = none yet).
    pub at_ms: u64,
    /// The last check's output, one line.
    pub output: String,
}

impl Default for Checker {
    fn default() -> Self {
        Checker::new()
    }
}

impl Checker {
    pub fn new() -> Checker {
        Checker {
            cfg: None,
            phase: Phase::Idle,
            check: None,
            discard: false,
            timed_out: false,
            pending: false,
            warned: false,
            next_at: None,
            kill_at: None,
            run_kill_at: None,
            health: Health::None,
            failures: 0,
            at_ms: 0,
            output: String::new(),
        }
    }

    /// The built-in probes of the current run, if any (the check child runs them).
    pub fn probes(&self) -> Option<&crate::probe::Set> {
        self.cfg.as_ref().and_then(|c| c.probes.as_ref())
    }

    /// The nearest pending deadline, if any (none at all for a service without `check`).
    pub fn next_deadline(&self) -> Option<u64> {
        [self.next_at, self.kill_at, self.run_kill_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Feeds one input; returns what to do, in order.
    pub fn step(&mut self, input: Input, ctx: Ctx) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::RunStarted(cfg) => self.run_started(cfg, ctx, &mut out),
            Input::Ready => {
                if self.phase == Phase::AwaitReady {
                    self.phase = Phase::Periodic;
                    self.next_at = self.interval().map(|i| ctx.mono_ms + i);
                }
            }
            Input::RunStopped => self.stop(&mut out),
            Input::CheckStarted(pid) => {
                self.check = Some(pid);
                self.timed_out = false;
                self.discard = false;
                let t = self.cfg.as_ref().map_or(0, |c| c.timeout_ms);
                self.kill_at = (t > 0).then(|| ctx.mono_ms.saturating_add(t));
            }
            Input::CheckNotStarted(text) => {
                if !std::mem::replace(&mut self.warned, true) {
                    out.push(Output::Warn(format!("{text} (counted as a failed check)")));
                }
                self.result(false, text, ctx, &mut out)
            }
            Input::CheckEnded { ended, output } => {
                self.check = None;
                self.kill_at = None;
                if std::mem::take(&mut self.discard) {
                    if std::mem::take(&mut self.pending) {
                        out.push(Output::SpawnCheck);
                    }
                    return out;
                }
                let ok = ended == Ended::Exited(0) && !self.timed_out;
                let text = self.describe(ended, &output);
                self.result(ok, text, ctx, &mut out);
            }
            Input::Timer => self.timer(ctx, &mut out),
        }
        out
    }

    fn interval(&self) -> Option<u64> {
        self.cfg.as_ref().and_then(|c| c.interval_ms)
    }

    fn run_started(&mut self, cfg: Option<Config>, ctx: Ctx, out: &mut Vec<Output>) {
        self.stop(out);
        self.warned = false;
        let Some(cfg) = cfg else {
            if self.health != Health::None {
                self.health = Health::None;
                self.failures = 0;
                out.push(Output::Changed);
            }
            return;
        };
        let before = (self.health, self.failures);
        if cfg.interval_ms.is_none() {
            self.health = Health::None;
            self.failures = 0;
        } else if self.health != Health::Unhealthy {
            // An unhealthy service stays so until a check passes again.
            self.health = Health::Starting;
            self.failures = 0;
        }
        if (self.health, self.failures) != before {
            out.push(Output::Changed);
        }
        if cfg.readiness {
            self.phase = Phase::Polling {
                pause_ms: FIRST_POLL_MS,
            };
            self.next_at = Some(ctx.mono_ms + FIRST_POLL_MS);
        } else if cfg.interval_ms.is_some() {
            self.phase = Phase::AwaitReady;
        }
        self.cfg = Some(cfg);
    }

    /// `run` is gone: no more checks; a running one is killed and its result ignored.
    fn stop(&mut self, out: &mut Vec<Output>) {
        self.phase = Phase::Idle;
        self.cfg = None;
        self.next_at = None;
        self.run_kill_at = None;
        self.pending = false;
        if let Some(pid) = self.check {
            if !self.discard {
                self.discard = true;
                self.kill_at = None;
                out.push(Output::KillCheck(pid));
            }
        }
    }

    fn describe(&self, ended: Ended, output: &[u8]) -> String {
        let text = one_line(output);
        let why = if self.timed_out {
            let t = self.cfg.as_ref().map_or(0, |c| c.timeout_ms);
            Some(format!("check timed out after {t} ms"))
        } else {
            match ended {
                Ended::Exited(0) => None,
                Ended::Exited(c) if text.is_empty() => Some(format!("check exited {c}")),
                Ended::Exited(_) => None,
                Ended::Signaled(s) => Some(format!("check killed by {}", crate::sig::long_name(s))),
            }
        };
        match why {
            None => text,
            Some(w) if text.is_empty() => w,
            Some(w) => one_line(format!("{w}: {text}").as_bytes()),
        }
    }

    fn result(&mut self, ok: bool, text: String, ctx: Ctx, out: &mut Vec<Output>) {
        self.at_ms = ctx.wall_ms;
        self.output = text;
        let mut changed = true;
        match self.phase {
            Phase::Polling { pause_ms } => {
                if ok {
                    out.push(Output::Ready);
                    match self.interval() {
                        Some(i) => {
                            self.phase = Phase::Periodic;
                            self.health = Health::Healthy;
                            self.failures = 0;
                            self.next_at = Some(ctx.mono_ms + i);
                        }
                        None => {
                            self.phase = Phase::Idle;
                            self.cfg = None;
                        }
                    }
                } else {
                    let pause = (pause_ms * 2).min(MAX_POLL_MS);
                    self.phase = Phase::Polling { pause_ms: pause };
                    self.next_at = Some(ctx.mono_ms + pause);
                }
            }
            Phase::Periodic => {
                let interval = self.interval().unwrap_or(DEFAULT_INTERVAL_MS);
                self.next_at = Some(ctx.mono_ms + interval);
                if ok {
                    self.health = Health::Healthy;
                    self.failures = 0;
                } else {
                    self.failures = self.failures.saturating_add(1);
                    let retries = self.cfg.as_ref().map_or(DEFAULT_RETRIES, |c| c.retries);
                    if self.failures >= retries.max(1) {
                        self.health = Health::Unhealthy;
                        if retries > 0 && ctx.want_up && ctx.active {
                            out.push(Output::Warn(format!(
                                "check failed {} times in a row, restarting the service: {}",
                                self.failures, self.output
                            )));
                            out.push(Output::Restart);
                            self.phase = Phase::Restarting;
                            self.next_at = None;
                            let k = self.cfg.as_ref().map_or(0, |c| c.kill_ms);
                            self.run_kill_at = (k > 0).then(|| ctx.mono_ms.saturating_add(k));
                        }
                    }
                }
            }
            Phase::Idle | Phase::AwaitReady | Phase::Restarting => changed = false,
        }
        if changed {
            out.push(Output::Changed);
        }
    }

    fn timer(&mut self, ctx: Ctx, out: &mut Vec<Output>) {
        let now = ctx.mono_ms;
        if self.kill_at.is_some_and(|t| t <= now) {
            self.kill_at = None;
            if let Some(pid) = self.check {
                self.timed_out = true;
                out.push(Output::KillCheck(pid));
            }
        }
        if self.run_kill_at.is_some_and(|t| t <= now) {
            self.run_kill_at = Some(now + KILL_REPEAT_MS);
            out.push(Output::KillRun);
        }
        if self.next_at.is_some_and(|t| t <= now) {
            self.next_at = None;
            if !ctx.active {
                // Paused (or on its way down): try again later, without running the check.
                let later = match self.phase {
                    Phase::Polling { pause_ms } => pause_ms,
                    _ => self.interval().unwrap_or(DEFAULT_INTERVAL_MS),
                };
                self.next_at = Some(now + later);
            } else if self.check.is_some() {
                self.pending = true;
            } else {
                out.push(Output::SpawnCheck);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(ms: u64) -> Ctx {
        Ctx {
            mono_ms: ms,
            wall_ms: 1_000_000 + ms,
            active: true,
            want_up: true,
        }
    }

    fn cfg(readiness: bool, interval: Option<u64>) -> Config {
        Config {
            readiness,
            interval_ms: interval,
            timeout_ms: 500,
            retries: 2,
            kill_ms: 0,
            probes: None,
        }
    }

    fn ended(code: i32, text: &str) -> Input {
        Input::CheckEnded {
            ended: Ended::Exited(code),
            output: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn no_check_costs_nothing() {
        let mut c = Checker::new();
        assert!(c.step(Input::RunStarted(None), ctx(0)).is_empty());
        assert_eq!(c.next_deadline(), None);
        assert!(c.step(Input::Timer, ctx(100_000)).is_empty());
        assert!(c.step(Input::RunStopped, ctx(1)).is_empty());
        assert_eq!(c.health, Health::None);
    }

    #[test]
    fn readiness_polls_with_doubling_pause_until_pass() {
        let mut c = Checker::new();
        assert!(
            c.step(Input::RunStarted(Some(cfg(true, None))), ctx(0))
                .is_empty()
        );
        assert_eq!(c.next_deadline(), Some(FIRST_POLL_MS));
        assert!(c.step(Input::Timer, ctx(50)).is_empty());
        let mut t = FIRST_POLL_MS;
        let mut pauses = Vec::new();
        for pid in 1..=6 {
            assert_eq!(c.step(Input::Timer, ctx(t)), vec![Output::SpawnCheck]);
            c.step(Input::CheckStarted(pid), ctx(t));
            assert_eq!(c.next_deadline(), Some(t + 500), "timeout armed");
            t += 10;
            assert_eq!(c.step(ended(1, "not yet"), ctx(t)), vec![Output::Changed]);
            let next = c.next_deadline().unwrap();
            pauses.push(next - t);
            t = next;
        }
        assert_eq!(pauses, vec![200, 400, 800, 1000, 1000, 1000]);
        // Failures while waiting for readiness are not counted, health stays none.
        assert_eq!((c.failures, c.health), (0, Health::None));
        assert_eq!(c.output, "not yet");
        assert_eq!(c.step(Input::Timer, ctx(t)), vec![Output::SpawnCheck]);
        c.step(Input::CheckStarted(9), ctx(t));
        assert_eq!(
            c.step(ended(0, "fine\n"), ctx(t + 5)),
            vec![Output::Ready, Output::Changed]
        );
        // Readiness only: nothing more to do.
        assert_eq!(c.phase, Phase::Idle);
        assert_eq!(c.next_deadline(), None);
        assert_eq!((c.at_ms, c.output.as_str()), (1_000_000 + t + 5, "fine"));
    }

    #[test]
    fn periodic_failures_restart_then_recover() {
        let mut c = Checker::new();
        assert_eq!(
            c.step(Input::RunStarted(Some(cfg(true, Some(1000)))), ctx(0)),
            vec![Output::Changed]
        );
        assert_eq!(c.health, Health::Starting);
        assert_eq!(c.step(Input::Timer, ctx(100)), vec![Output::SpawnCheck]);
        c.step(Input::CheckStarted(5), ctx(100));
        assert_eq!(
            c.step(ended(0, ""), ctx(120)),
            vec![Output::Ready, Output::Changed]
        );
        assert_eq!((c.phase, c.health), (Phase::Periodic, Health::Healthy));
        assert_eq!(c.next_deadline(), Some(1120));
        assert_eq!(c.step(Input::Timer, ctx(1120)), vec![Output::SpawnCheck]);
        c.step(Input::CheckStarted(6), ctx(1120));
        assert_eq!(c.step(ended(1, "down!"), ctx(1130)), vec![Output::Changed]);
        assert_eq!((c.failures, c.health), (1, Health::Healthy));
        assert_eq!(c.step(Input::Timer, ctx(2130)), vec![Output::SpawnCheck]);
        c.step(Input::CheckStarted(7), ctx(2130));
        let out = c.step(ended(1, "still down"), ctx(2140));
        assert!(matches!(out[0], Output::Warn(_)), "{out:?}");
        assert_eq!(&out[1..], &[Output::Restart, Output::Changed]);
        assert_eq!((c.failures, c.health), (2, Health::Unhealthy));
        assert_eq!(c.phase, Phase::Restarting);
        assert_eq!(c.next_deadline(), None, "no checks while restarting");
        assert!(c.step(Input::RunStopped, ctx(2200)).is_empty());
        // Restarted: stays unhealthy (with the failing output) until a check passes.
        assert!(
            c.step(Input::RunStarted(Some(cfg(true, Some(1000)))), ctx(3200))
                .is_empty()
        );
        assert_eq!(
            (c.health, c.failures, c.output.as_str()),
            (Health::Unhealthy, 2, "still down")
        );
        assert_eq!(c.step(Input::Timer, ctx(3300)), vec![Output::SpawnCheck]);
        c.step(Input::CheckStarted(8), ctx(3300));
        assert_eq!(
            c.step(ended(0, "ok"), ctx(3310)),
            vec![Output::Ready, Output::Changed]
        );
        assert_eq!((c.health, c.failures), (Health::Healthy, 0));
    }

    #[test]
    fn timeout_kills_and_counts_as_failure() {
        let mut c = Checker::new();
        c.step(Input::RunStarted(Some(cfg(true, Some(1000)))), ctx(0));
        c.step(Input::Timer, ctx(100));
        c.step(Input::CheckStarted(5), ctx(100));
        c.step(ended(0, ""), ctx(110));
        c.step(Input::Timer, ctx(1110));
        c.step(Input::CheckStarted(6), ctx(1110));
        assert_eq!(c.next_deadline(), Some(1610));
        assert_eq!(c.step(Input::Timer, ctx(1610)), vec![Output::KillCheck(6)]);
        assert_eq!(c.next_deadline(), None, "waiting for the reap");
        let out = c.step(
            Input::CheckEnded {
                ended: Ended::Signaled(9),
                output: b"partial".to_vec(),
            },
            ctx(1612),
        );
        assert_eq!(out, vec![Output::Changed]);
        assert_eq!(c.failures, 1);
        assert_eq!(c.output, "check timed out after 500 ms: partial");
        assert_eq!(c.next_deadline(), Some(2612));
    }

    #[test]
    fn run_death_kills_running_check_and_ignores_it() {
        let mut c = Checker::new();
        c.step(Input::RunStarted(Some(cfg(true, None))), ctx(0));
        c.step(Input::Timer, ctx(100));
        c.step(Input::CheckStarted(5), ctx(100));
        assert_eq!(
            c.step(Input::RunStopped, ctx(150)),
            vec![Output::KillCheck(5)]
        );
        assert_eq!(c.next_deadline(), None);
        // A new run starts before the killed check is reaped; its first check waits.
        c.step(Input::RunStarted(Some(cfg(true, None))), ctx(160));
        assert!(c.step(Input::Timer, ctx(260)).is_empty());
        assert_eq!(c.next_deadline(), None);
        assert_eq!(
            c.step(
                Input::CheckEnded {
                    ended: Ended::Signaled(9),
                    output: Vec::new()
                },
                ctx(270)
            ),
            vec![Output::SpawnCheck]
        );
        assert_eq!(c.output, "", "the discarded result is not recorded");
    }

    #[test]
    fn notification_fd_services_check_only_after_ready() {
        let mut c = Checker::new();
        c.step(Input::RunStarted(Some(cfg(false, Some(1000)))), ctx(0));
        assert_eq!(c.phase, Phase::AwaitReady);
        assert_eq!(c.next_deadline(), None);
        c.step(Input::Ready, ctx(300));
        assert_eq!(c.next_deadline(), Some(1300));
        // A check alone, with notification-fd, is left to runit's sv: nothing runs.
        let mut d = Checker::new();
        d.step(Input::RunStarted(Some(cfg(false, None))), ctx(0));
        d.step(Input::Ready, ctx(10));
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn paused_or_stopping_services_are_not_checked_or_restarted() {
        let mut c = Checker::new();
        c.step(Input::RunStarted(Some(cfg(true, Some(1000)))), ctx(0));
        let paused = Ctx {
            active: false,
            ..ctx(100)
        };
        assert!(c.step(Input::Timer, paused).is_empty());
        assert_eq!(c.next_deadline(), Some(200));
        c.step(Input::Timer, ctx(200));
        c.step(Input::CheckStarted(5), ctx(200));
        c.step(ended(0, ""), ctx(210));
        let not_wanted = Ctx {
            want_up: false,
            ..ctx(0)
        };
        for (k, t) in [1210u64, 2220].into_iter().enumerate() {
            c.step(
                Input::Timer,
                Ctx {
                    mono_ms: t,
                    ..not_wanted
                },
            );
            c.step(Input::CheckStarted(6 + k as i32), ctx(t));
            let out = c.step(
                ended(3, ""),
                Ctx {
                    mono_ms: t + 10,
                    ..not_wanted
                },
            );
            assert_eq!(out, vec![Output::Changed]);
        }
        assert_eq!(c.health, Health::Unhealthy);
        assert_eq!(c.output, "check exited 3");
        assert_eq!(c.phase, Phase::Periodic);
    }

    #[test]
    fn retries_zero_reports_only_and_kill_after_restart() {
        let mut c = Checker::new();
        let report_only = Config {
            retries: 0,
            ..cfg(true, Some(1000))
        };
        c.step(Input::RunStarted(Some(report_only)), ctx(0));
        c.step(Input::Timer, ctx(100));
        c.step(Input::CheckStarted(5), ctx(100));
        c.step(ended(0, ""), ctx(110));
        c.step(Input::Timer, ctx(1110));
        c.step(Input::CheckStarted(6), ctx(1110));
        assert_eq!(c.step(ended(1, "x"), ctx(1120)), vec![Output::Changed]);
        assert_eq!(c.health, Health::Unhealthy);

        let mut d = Checker::new();
        let killing = Config {
            retries: 1,
            kill_ms: 300,
            ..cfg(true, Some(1000))
        };
        d.step(Input::RunStarted(Some(killing)), ctx(0));
        d.step(Input::Timer, ctx(100));
        d.step(Input::CheckStarted(5), ctx(100));
        d.step(ended(0, ""), ctx(110));
        d.step(Input::Timer, ctx(1110));
        d.step(Input::CheckStarted(6), ctx(1110));
        assert!(d.step(ended(1, ""), ctx(1120)).contains(&Output::Restart));
        assert_eq!(d.next_deadline(), Some(1420));
        assert_eq!(d.step(Input::Timer, ctx(1420)), vec![Output::KillRun]);
        assert_eq!(d.next_deadline(), Some(1420 + KILL_REPEAT_MS));
        d.step(Input::RunStopped, ctx(1500));
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn spawn_failure_is_a_failed_check() {
        let mut c = Checker::new();
        c.step(Input::RunStarted(Some(cfg(true, None))), ctx(0));
        c.step(Input::Timer, ctx(100));
        let failed = || Input::CheckNotStarted("unable to start check: Permission denied".into());
        let out = c.step(failed(), ctx(100));
        assert_eq!(
            out,
            vec![
                Output::Warn(
                    "unable to start check: Permission denied (counted as a failed check)".into()
                ),
                Output::Changed
            ]
        );
        assert_eq!(c.next_deadline(), Some(300));
        assert_eq!(c.output, "unable to start check: Permission denied");
        // One warning per start of run.
        c.step(Input::Timer, ctx(300));
        assert_eq!(c.step(failed(), ctx(300)), vec![Output::Changed]);
        c.step(Input::RunStopped, ctx(400));
        c.step(Input::RunStarted(Some(cfg(true, None))), ctx(500));
        c.step(Input::Timer, ctx(600));
        assert_eq!(c.step(failed(), ctx(600)).len(), 2);
    }
}
