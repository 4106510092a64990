//! The supervisor's behaviour as a pure state machine: no system calls, no clock reads.
//!
//! One [`Machine`] supervises one service (the main service, or its `log/`). The event loop
//! ([`crate::supervise`]) feeds it [`Event`]s together with the current time and carries out
//! the returned [`Action`]s. Service-directory files that must be read fresh each time
//! (`timeout-kill`, `timeout-finish`, `down-signal`, `finish`) are asked for through the
//! [`Files`] trait, so tests can answer without touching the disk.
//!
//! The model is s6-supervise's transition table (DOWN, UP, FINISH and their "last" variants,
//! where the supervisor exits once the service is down), with runsv's letters and rules as
//! the second personality ([`Mode::Runit`]). Restart throttling never blocks: instead of
//! runsv's `sleep(1)` the machine keeps a deadline ([`Machine::next_deadline`]).
//!
//! On top of both personalities (rsv's own files, asked for through [`Files`]): crash-loop
//! backoff (`backoff-max`, `backoff-reset`: after k consecutive deaths each following an
//! uptime below backoff-reset, the next automatic start comes no sooner than
//! [`backoff_delay`] after the previous start; k <= 1 leaves each mode's own 1-s rule alone),
//! `give-up` (COUNT deaths within SECONDS: want down, no restart, until `u`), and
//! `essential` (a final stop sets [`Machine::final_exit`] and ends the supervision). Deaths
//! caused by a control command (`d`, `t`, `k`, ...) or by a supervisor signal never count.
//!
//! [`Machine`] holds the one "minimum state" of compat.md section 10; both on-disk status
//! encodings are derived from it ([`Machine::runit_status`], [`Machine::s6_status`]).

use std::time::SystemTime;

use crate::status::{Death, Ended, RunitState, RunitStatus, S6Status};
use crate::tai::{Family, Tai64N};

/// Which program the supervisor imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// runsv 2.1.2.
    Runit,
    /// s6-supervise 2.11.
    S6,
}

/// The time of an event: a monotonic clock (milliseconds since any origin) for deadlines and
/// the wall clock for stamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub mono_ms: u64,
    pub wall: SystemTime,
}

/// What the supervisor wants for its service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Up,
    Down,
    /// runit's "want exit": down, then the supervisor exits.
    Exit,
}

/// Where the service is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No run and no finish process.
    Down,
    /// `run` is running.
    Up,
    /// `finish` is running.
    Finish,
}

/// Which child the machine is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    None,
    Run(i32),
    Finish(i32),
}

/// The supervisor's own signals, as the loop reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SupSignal {
    Term,
    Hup,
    Int,
    Quit,
}

/// Inputs to the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The supervisor has started (sent once, first).
    Start,
    /// One byte read from the control FIFO.
    Control(u8),
    /// `run` was forked and exec'd (the handshake confirmed it).
    RunStarted(i32),
    /// `run` could not be started (fork or exec failed).
    RunFailed,
    /// The run child was reaped with this wait status.
    RunDied(i32),
    /// `finish` was forked.
    FinishStarted(i32),
    /// Forking `finish` failed.
    FinishFailed,
    /// There is no `finish` to run (runit: not readable; s6: absent): as if it exited 0 at once.
    NoFinish,
    /// The finish child was reaped.
    FinishDied(i32),
    /// A newline arrived on the readiness pipe.
    Ready,
    /// The loop noticed that a deadline of [`Machine::next_deadline`] has passed.
    Timer,
    /// A signal to the supervisor process.
    Signal(SupSignal),
    /// A `control/<c>` override (runit) handled the letter: for `t`, no TERM was sent.
    TermOverridden,
    /// The main service is gone for good (log machine only): stop restarting and report
    /// [`Action::Exit`] once the logger is down. The logger is not signalled; it exits on EOF.
    Shutdown,
}

/// Outputs: what the loop must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fork and exec `run`; answer with [`Event::RunStarted`] or [`Event::RunFailed`].
    /// runit mode: run the `control/u` override first.
    SpawnRun,
    /// Fork and exec `finish` with these two mode-specific arguments (s6 adds NAME);
    /// answer with [`Event::FinishStarted`] or [`Event::FinishFailed`].
    SpawnFinish(String, String),
    /// kill(pid, sig), or killpg when `group`.
    Kill {
        pid: i32,
        sig: i32,
        group: bool,
    },
    /// runit: if `control/<letter>` is eligible, run it; if it exits 0, do not send `sig`
    /// (and answer [`Event::TermOverridden`] when letter is `t`); otherwise kill(pid, sig).
    Signal {
        pid: i32,
        letter: u8,
        sig: i32,
    },
    /// runit: run `control/<letter>` if eligible, result ignored (`d`, `x`).
    Custom(u8),
    /// Rewrite the status file(s) from the machine's state.
    WriteStatus,
    /// Append a record to s6's `death_tally`.
    DeathTally(Death),
    /// Write these event letters to `event/`.
    Broadcast(&'static [u8]),
    /// Create / remove the `down` file.
    CreateDown,
    RemoveDown,
    /// Replace the supervisor's stdin and stdout by /dev/null (s6 "last" states).
    CloseStdio,
    /// Close the readiness pipe of the current run, if any.
    CloseNotify,
    /// A warning for stderr (without the program prefix).
    Warn(String),
    /// This service's supervision is over (after an `x` broadcast when the supervisor exits).
    Exit,
}

/// Service-directory settings that are read fresh when needed.
pub trait Files {
    /// `timeout-kill` in ms (0 = never).
    fn timeout_kill(&mut self) -> u64;
    /// `timeout-finish` in ms (0 = unlimited).
    fn timeout_finish(&mut self) -> u64;
    /// `down-signal`, default SIGTERM.
    fn down_signal(&mut self) -> i32;
    /// `backoff-max` in ms: cap of the crash-loop delay.
    fn backoff_max(&mut self) -> u64 {
        DEFAULT_BACKOFF_MAX_MS
    }
    /// `backoff-reset` in ms: an uptime at least this long ends a crash loop.
    fn backoff_reset(&mut self) -> u64 {
        DEFAULT_BACKOFF_RESET_MS
    }
    /// `give-up`: (COUNT, SECONDS), or None when absent or malformed.
    fn give_up(&mut self) -> Option<(u32, u64)> {
        None
    }
    /// The `essential` file exists.
    fn essential(&mut self) -> bool {
        false
    }
}

/// Repeat period of SIGKILL after `timeout-kill` / `timeout-finish`.
pub const KILL_REPEAT_MS: u64 = 5000;
/// s6: delay before retrying after exec of `run` failed.
pub const S6_EXEC_RETRY_MS: u64 = 10_000;
/// Both: minimum spacing between automatic restarts.
pub const RESTART_MS: u64 = 1000;
/// Default `backoff-max`: the crash-loop delay never exceeds this.
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 30_000;
/// Default `backoff-reset`: a death after at least this uptime is not a quick death.
pub const DEFAULT_BACKOFF_RESET_MS: u64 = 10_000;

/// The crash-loop delay after `k` consecutive quick deaths: 1 s up to k = 1, then doubling,
/// capped at `cap` (a cap of 1 s or less is the plain 1-s rule).
pub fn backoff_delay(k: u32, cap: u64) -> u64 {
    if k <= 1 || cap <= RESTART_MS {
        return RESTART_MS;
    }
    let factor = 1u64.checked_shl(k - 1).unwrap_or(u64::MAX);
    RESTART_MS.saturating_mul(factor).min(cap)
}

/// The per-service state (compat.md section 10's minimum state) and its transitions.
#[derive(Clone, Debug)]
pub struct Machine {
    pub mode: Mode,
    /// Supervising `log/` (runit ignores `x` there).
    pub is_log: bool,
    pub state: State,
    pub child: Child,
    pub want: Want,
    /// s6 LASTUP/LASTFINISH: exit once the service is down.
    pub last: bool,
    pub paused: bool,
    pub got_term: bool,
    pub ready: bool,
    /// runit `k`: reported as down, status not rewritten until the child is reaped.
    pub forced_down: bool,
    /// Last wait status of run.
    pub wstat: i32,
    /// Last start of run (runit stamp while run/finish; s6 stamp while up).
    pub start_stamp: SystemTime,
    /// Last death of run (s6 stamp while finishing or down).
    pub death_stamp: SystemTime,
    /// Last end of finish (runit stamp while down).
    pub down_stamp: SystemTime,
    /// Last readiness change.
    pub ready_stamp: SystemTime,
    /// Monotonic time of the last run start and of the last readiness notification.
    start_mono: u64,
    ready_mono: Option<u64>,
    /// Deadlines (monotonic ms): restart of run, SIGKILL to run, SIGKILL to finish.
    pub restart_at: Option<u64>,
    pub kill_at: Option<u64>,
    pub finish_kill_at: Option<u64>,
    /// Wall-clock time of the pending automatic start (valid while `restart_at` is set).
    pub restart_wall: SystemTime,
    /// Crash-loop delay behind the pending automatic start (valid while `restart_at` is set).
    pub backoff_ms: u64,
    /// Consecutive quick deaths (uptime < `backoff-reset`).
    pub quick_deaths: u32,
    /// Monotonic times of recent deaths of run on its own, for `give-up`.
    deaths: Vec<u64>,
    /// The last death of run was on its own (want up, not caused by a control command).
    natural_death: bool,
    /// A control command sent a signal to the current run.
    ctl_signalled: bool,
    /// The `give-up` rule fired; cleared by `u`.
    pub gave_up: bool,
    /// An essential service stopped for good: its exit code (or 128 + signal).
    pub final_exit: Option<i32>,
    /// Starts of run since the supervisor started, and the last ends of run (newest first).
    pub starts: u64,
    pub exits: Vec<Ended>,
}

fn sig_of_s6_letter(c: u8) -> Option<i32> {
    Some(match c {
        b'a' => libc::SIGALRM,
        b'b' => libc::SIGABRT,
        b'q' => libc::SIGQUIT,
        b'h' => libc::SIGHUP,
        b'k' => libc::SIGKILL,
        b't' => libc::SIGTERM,
        b'i' => libc::SIGINT,
        b'1' => libc::SIGUSR1,
        b'2' => libc::SIGUSR2,
        b'y' => libc::SIGWINCH,
        _ => return None,
    })
}

fn sig_of_runit_letter(c: u8) -> Option<i32> {
    Some(match c {
        b'k' => libc::SIGKILL,
        b'p' => libc::SIGSTOP,
        b'c' => libc::SIGCONT,
        b'h' => libc::SIGHUP,
        b'a' => libc::SIGALRM,
        b'i' => libc::SIGINT,
        b'q' => libc::SIGQUIT,
        b'1' => libc::SIGUSR1,
        b'2' => libc::SIGUSR2,
        _ => return None,
    })
}

impl Machine {
    /// A machine for a service that is down; `down_file` = the `down` file exists.
    pub fn new(mode: Mode, is_log: bool, down_file: bool, now: Now) -> Machine {
        Machine {
            mode,
            is_log,
            state: State::Down,
            child: Child::None,
            want: if down_file { Want::Down } else { Want::Up },
            last: false,
            paused: false,
            got_term: false,
            ready: true,
            forced_down: false,
            wstat: 0,
            start_stamp: now.wall,
            death_stamp: now.wall,
            down_stamp: now.wall,
            ready_stamp: now.wall,
            start_mono: now.mono_ms,
            ready_mono: None,
            restart_at: None,
            kill_at: None,
            finish_kill_at: None,
            restart_wall: now.wall,
            backoff_ms: 0,
            quick_deaths: 0,
            deaths: Vec::new(),
            natural_death: false,
            ctl_signalled: false,
            gave_up: false,
            final_exit: None,
            starts: 0,
            exits: Vec::new(),
        }
    }

    /// The pending automatic start, if any: (wall-clock time, crash-loop delay behind it).
    pub fn pending_start(&self) -> Option<(SystemTime, u64)> {
        self.restart_at
            .map(|_| (self.restart_wall, self.backoff_ms))
    }

    /// Arms the automatic start at monotonic `at`.
    fn arm_restart(&mut self, at: u64, now: Now) {
        self.restart_at = Some(at);
        self.restart_wall =
            now.wall + std::time::Duration::from_millis(at.saturating_sub(now.mono_ms));
    }

    /// The pid shown in the status files: run's, or finish's while finishing, 0 if none.
    pub fn pid(&self) -> i32 {
        match self.child {
            Child::None => 0,
            Child::Run(p) | Child::Finish(p) => p,
        }
    }

    /// `run` ended while the main process it named (sd_notify's `MAINPID=`) lives on as the
    /// supervisor's child: that process is the service from now on (status shows its pid,
    /// signals go to it, its death is the service's). Nothing happens unless `run` is up.
    pub fn follow_main(&mut self, pid: i32) -> Vec<Action> {
        if self.state == State::Up && matches!(self.child, Child::Run(_)) {
            self.child = Child::Run(pid);
            return vec![Action::WriteStatus];
        }
        Vec::new()
    }

    /// The nearest pending deadline (monotonic ms), if any. No deadline = sleep until an fd
    /// or a signal wakes the loop.
    pub fn next_deadline(&self) -> Option<u64> {
        [self.restart_at, self.kill_at, self.finish_kill_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// runit's 20-byte status (+10 family).
    pub fn runit_status(&self) -> RunitStatus {
        let (state, stamp) = match self.state {
            State::Up if self.forced_down => (RunitState::Down, self.start_stamp),
            State::Up => (RunitState::Run, self.start_stamp),
            State::Finish => (RunitState::Finish, self.start_stamp),
            State::Down => (RunitState::Down, self.down_stamp),
        };
        RunitStatus {
            stamp: Tai64N::from_system(stamp, Family::Runit),
            pid: self.pid() as u32,
            paused: self.paused,
            want_up: self.want == Want::Up,
            got_term: self.got_term,
            state,
        }
    }

    /// s6 2.11's 35-byte status (+37 family).
    pub fn s6_status(&self) -> S6Status {
        let stamp = match self.state {
            State::Up => self.start_stamp,
            _ => self.death_stamp,
        };
        S6Status {
            stamp: Tai64N::from_system(stamp, Family::S6),
            readystamp: Tai64N::from_system(self.ready_stamp, Family::S6),
            pid: self.pid() as u64,
            wstat: self.wstat as u16,
            paused: self.paused,
            finishing: self.state == State::Finish,
            wantup: self.want == Want::Up,
            ready: self.ready,
        }
    }

    /// Told to exit once the service is down (s6 LASTUP/LASTFINISH, runit's want exit).
    pub fn exiting(&self) -> bool {
        self.last || self.want == Want::Exit
    }

    /// runit's "want exit" (for the `stat` text).
    pub fn want_exit(&self) -> bool {
        self.want == Want::Exit
    }

    /// Feeds one event; returns what to do, in order.
    pub fn step(&mut self, ev: Event, now: Now, files: &mut dyn Files) -> Vec<Action> {
        let mut out = Vec::new();
        match ev {
            Event::Start => {
                out.push(Action::WriteStatus);
                out.push(Action::Broadcast(b"s"));
                if self.want == Want::Up {
                    out.push(Action::SpawnRun);
                }
            }
            Event::Control(c) => {
                if matches!(c, b'u' | b'U') {
                    // An explicit "up" ends a crash loop and clears a give-up.
                    self.quick_deaths = 0;
                    self.deaths.clear();
                    // (gave_up implies want down: the status is rewritten as want changes.)
                    self.gave_up = false;
                }
                match self.mode {
                    Mode::S6 => self.control_s6(c, now, files, &mut out),
                    Mode::Runit => self.control_runit(c, now, files, &mut out),
                }
                let run = match self.child {
                    Child::Run(p) => p,
                    _ => 0,
                };
                if out.iter().any(|a| {
                    matches!(a, Action::Kill { pid, .. } | Action::Signal { pid, .. } if *pid == run)
                }) {
                    self.ctl_signalled = true;
                }
            }
            Event::RunStarted(pid) => {
                self.state = State::Up;
                self.child = Child::Run(pid);
                self.start_stamp = now.wall;
                self.start_mono = now.mono_ms;
                self.ready = false;
                self.ready_mono = None;
                self.paused = false;
                self.got_term = false;
                self.forced_down = false;
                self.restart_at = None;
                self.ctl_signalled = false;
                self.starts += 1;
                out.push(Action::WriteStatus);
                out.push(Action::Broadcast(b"u"));
            }
            Event::RunFailed => match self.mode {
                // s6: status untouched, retry in 10 s.
                Mode::S6 => {
                    self.backoff_ms = 0;
                    self.arm_restart(now.mono_ms + S6_EXEC_RETRY_MS, now);
                }
                // runsv's child reports the failure and exits 111: an immediate death, so
                // finish runs with "111 0" and the 1-s rule spaces the retries.
                Mode::Runit => {
                    self.start_mono = now.mono_ms;
                    self.start_stamp = now.wall;
                    self.ctl_signalled = false;
                    self.run_died(111 << 8, now, files, &mut out);
                }
            },
            Event::RunDied(wstat) => self.run_died(wstat, now, files, &mut out),
            Event::FinishStarted(pid) => {
                self.state = State::Finish;
                self.child = Child::Finish(pid);
                if self.mode == Mode::Runit {
                    // runsv starts finish through the same path as run, which clears the
                    // paused flag; without a finish the flag survives the death (obs).
                    self.paused = false;
                }
                let tf = files.timeout_finish();
                self.finish_kill_at = (tf > 0).then(|| now.mono_ms.saturating_add(tf));
                out.push(Action::WriteStatus);
                out.push(Action::Broadcast(b"d"));
            }
            Event::FinishFailed => {
                self.child = Child::None;
                self.service_down(0, true, now, files, &mut out);
            }
            Event::NoFinish => {
                self.child = Child::None;
                out.push(Action::Broadcast(b"d"));
                self.service_down(0, false, now, files, &mut out);
            }
            Event::FinishDied(wstat) => {
                self.child = Child::None;
                self.finish_kill_at = None;
                let code = match Ended::from_wstat(wstat) {
                    Ended::Exited(c) => c,
                    Ended::Signaled(_) => -1,
                };
                self.service_down(code, false, now, files, &mut out);
            }
            Event::Ready => {
                if self.state == State::Up && !self.ready {
                    self.ready = true;
                    self.ready_stamp = now.wall;
                    self.ready_mono = Some(now.mono_ms);
                    out.push(Action::WriteStatus);
                    out.push(Action::Broadcast(b"U"));
                }
                out.push(Action::CloseNotify);
            }
            Event::Timer => self.timer(now, &mut out),
            Event::Signal(s) => self.signal(s, now, files, &mut out),
            Event::TermOverridden => {
                if self.got_term {
                    self.got_term = false;
                    out.push(Action::WriteStatus);
                }
            }
            Event::Shutdown => {
                self.want = match self.mode {
                    Mode::Runit => Want::Exit,
                    Mode::S6 => Want::Down,
                };
                self.last = true;
                self.restart_at = None;
                if self.state == State::Down && self.child == Child::None {
                    out.push(Action::Exit);
                } else {
                    out.push(Action::WriteStatus);
                }
            }
        }
        out
    }

    fn exit(&self, out: &mut Vec<Action>) {
        out.push(Action::Broadcast(b"x"));
        out.push(Action::Exit);
    }

    /// Start run now (a `u`/`o` while down, or a due restart).
    fn start(&mut self, out: &mut Vec<Action>) {
        self.restart_at = None;
        out.push(Action::SpawnRun);
    }

    fn is_down(&self) -> bool {
        self.state == State::Down && self.child == Child::None
    }

    // s6-supervise's down sequence: down-signal, SIGCONT, arm timeout-kill.
    fn s6_down_sequence(&mut self, now: Now, files: &mut dyn Files, out: &mut Vec<Action>) {
        if let Child::Run(pid) = self.child {
            let sig = files.down_signal();
            out.push(Action::Kill {
                pid,
                sig,
                group: false,
            });
            out.push(Action::Kill {
                pid,
                sig: libc::SIGCONT,
                group: false,
            });
            self.paused = false;
            let tk = files.timeout_kill();
            self.kill_at = (tk > 0).then(|| now.mono_ms.saturating_add(tk));
        }
    }

    fn set_want(&mut self, w: Want, out: &mut Vec<Action>) {
        if self.want != w {
            self.want = w;
            out.push(Action::WriteStatus);
        }
        if w != Want::Up {
            self.restart_at = None;
        }
    }

    fn control_s6(&mut self, c: u8, now: Now, files: &mut dyn Files, out: &mut Vec<Action>) {
        let up = self.state == State::Up;
        match c {
            b'u' | b'U' | b'o' => {
                if c == b'U' {
                    out.push(Action::RemoveDown);
                }
                self.set_want(if c == b'o' { Want::Down } else { Want::Up }, out);
                if self.is_down() {
                    self.start(out);
                }
            }
            b'd' | b'D' => {
                if c == b'D' {
                    out.push(Action::CreateDown);
                }
                let was_paused = self.paused;
                self.set_want(Want::Down, out);
                if up {
                    self.s6_down_sequence(now, files, out);
                    if was_paused && !self.paused && !out.contains(&Action::WriteStatus) {
                        out.push(Action::WriteStatus);
                    }
                }
            }
            b'O' | b'Q' => {
                if c == b'Q' {
                    out.push(Action::CreateDown);
                }
                self.set_want(Want::Down, out);
            }
            // The logger lives as long as the main service: `x` is ignored for it (the
            // supervisor exits through the main service).
            b'x' if self.is_log => {}
            b'x' => {
                if self.is_down() {
                    self.exit(out);
                } else {
                    self.last = true;
                    out.push(Action::CloseStdio);
                }
            }
            b'p' | b'c' if up => {
                if let Child::Run(pid) = self.child {
                    let (sig, p) = if c == b'p' {
                        (libc::SIGSTOP, true)
                    } else {
                        (libc::SIGCONT, false)
                    };
                    out.push(Action::Kill {
                        pid,
                        sig,
                        group: false,
                    });
                    if self.paused != p {
                        self.paused = p;
                        out.push(Action::WriteStatus);
                    }
                }
            }
            b'r' if up => {
                if let Child::Run(pid) = self.child {
                    out.push(Action::Kill {
                        pid,
                        sig: files.down_signal(),
                        group: false,
                    });
                }
            }
            _ => {
                if let (true, Some(sig), Child::Run(pid)) = (up, sig_of_s6_letter(c), self.child) {
                    out.push(Action::Kill {
                        pid,
                        sig,
                        group: false,
                    });
                }
            }
        }
    }

    // runsv's stop sequence with the current want; `down-signal` and `timeout-kill` are
    // honoured when those files exist (compat.md 10 #8).
    fn runit_stop(&mut self, now: Now, files: &mut dyn Files, out: &mut Vec<Action>) {
        if let Child::Run(pid) = self.child {
            if !self.forced_down {
                out.push(Action::Signal {
                    pid,
                    letter: b't',
                    sig: files.down_signal(),
                });
                self.got_term = true;
                out.push(Action::WriteStatus);
                let tk = files.timeout_kill();
                self.kill_at = (tk > 0).then(|| now.mono_ms.saturating_add(tk));
            }
            match self.want {
                Want::Down => {
                    out.push(Action::Kill {
                        pid,
                        sig: libc::SIGCONT,
                        group: false,
                    });
                    out.push(Action::Custom(b'd'));
                }
                Want::Exit => {
                    out.push(Action::Kill {
                        pid,
                        sig: libc::SIGCONT,
                        group: false,
                    });
                    out.push(Action::Custom(b'x'));
                }
                Want::Up => {}
            }
        }
    }

    fn control_runit(&mut self, c: u8, now: Now, files: &mut dyn Files, out: &mut Vec<Action>) {
        let run = self.state == State::Up && !self.forced_down;
        match c {
            b'u' => {
                self.set_want(Want::Up, out);
                if self.is_down() {
                    self.start(out);
                }
            }
            b'o' => {
                self.set_want(Want::Down, out);
                if self.is_down() {
                    self.start(out);
                }
            }
            b'd' => {
                self.set_want(Want::Down, out);
                if run {
                    self.runit_stop(now, files, out);
                }
            }
            b'x' if !self.is_log => {
                self.set_want(Want::Exit, out);
                if run {
                    self.runit_stop(now, files, out);
                } else if self.is_down() {
                    self.exit(out);
                }
            }
            b't' if run => self.runit_stop(now, files, out),
            b'p' | b'c' if self.state != State::Finish => {
                let p = c == b'p';
                if run {
                    if let Child::Run(pid) = self.child {
                        out.push(Action::Signal {
                            pid,
                            letter: c,
                            sig: if p { libc::SIGSTOP } else { libc::SIGCONT },
                        });
                    }
                }
                // runsv records the flag even when nothing runs.
                if self.paused != p {
                    self.paused = p;
                    out.push(Action::WriteStatus);
                }
            }
            _ => {
                if let (true, Some(sig), Child::Run(pid)) =
                    (run, sig_of_runit_letter(c), self.child)
                {
                    out.push(Action::Signal {
                        pid,
                        letter: c,
                        sig,
                    });
                    if c == b'k' {
                        // runsv: state down at once; the file is rewritten when reaped.
                        self.forced_down = true;
                    }
                }
            }
        }
    }

    fn run_died(&mut self, wstat: i32, now: Now, files: &mut dyn Files, out: &mut Vec<Action>) {
        self.child = Child::None;
        self.exits.insert(0, Ended::from_wstat(wstat));
        self.exits.truncate(crate::extstate::MAX_EXITS);
        // Crash-loop accounting: only deaths of run on its own count.
        self.natural_death = self.want == Want::Up && !self.last && !self.ctl_signalled;
        if self.natural_death {
            let uptime = now.mono_ms.saturating_sub(self.start_mono);
            if uptime < files.backoff_reset() {
                self.quick_deaths = self.quick_deaths.saturating_add(1);
            } else {
                self.quick_deaths = 0;
            }
            self.deaths.push(now.mono_ms);
        } else {
            self.quick_deaths = 0;
        }
        self.wstat = wstat;
        self.got_term = false;
        self.forced_down = false;
        self.kill_at = None;
        self.death_stamp = now.wall;
        out.push(Action::CloseNotify);
        match self.mode {
            Mode::S6 => {
                self.paused = false;
                self.ready = false;
                self.state = State::Finish;
                out.push(Action::DeathTally(Death::from_ended(
                    Tai64N::from_system(now.wall, Family::S6),
                    Ended::from_wstat(wstat),
                )));
                let (a1, a2) = match Ended::from_wstat(wstat) {
                    Ended::Exited(c) => (c.to_string(), "0".to_string()),
                    Ended::Signaled(s) => ("256".to_string(), s.to_string()),
                };
                out.push(Action::SpawnFinish(a1, a2));
            }
            Mode::Runit => {
                self.state = State::Finish;
                let (a1, a2) = match Ended::from_wstat(wstat) {
                    Ended::Exited(c) => (c.to_string(), "0".to_string()),
                    Ended::Signaled(_) => ("-1".to_string(), (wstat & 0xff).to_string()),
                };
                out.push(Action::SpawnFinish(a1, a2));
            }
        }
    }

    // Finish is over (or there was none): the service is down.
    fn service_down(
        &mut self,
        finish_code: i32,
        finish_failed: bool,
        now: Now,
        files: &mut dyn Files,
        out: &mut Vec<Action>,
    ) {
        self.state = State::Down;
        let (final_stop, gave_up) = self.final_stop_check(finish_code, finish_failed, now, files);
        match self.mode {
            Mode::S6 => {
                self.ready = true;
                self.ready_stamp = now.wall;
                let permanent = finish_code == 125 && !finish_failed;
                if permanent {
                    self.want = Want::Down;
                }
                out.push(Action::WriteStatus);
                out.push(Action::Broadcast(
                    match (finish_failed, permanent || gave_up) {
                        (true, _) => b"dD",
                        (false, true) => b"OD",
                        (false, false) => b"D",
                    },
                ));
                if self.last || final_stop {
                    self.exit(out);
                    return;
                }
                if self.want == Want::Up {
                    // At once if run started 1 s ago or more; after a shorter life, 1 s after
                    // D, or 1 s after readiness if the service had notified it. Never later
                    // than s6-supervise (which always waits for one of those two).
                    let at = match self.ready_mono {
                        _ if self.lived_long(now) => now.mono_ms,
                        Some(r) => r + RESTART_MS,
                        None => now.mono_ms + RESTART_MS,
                    };
                    self.schedule_backoff(at, now, files, out);
                }
            }
            Mode::Runit => {
                // runsv keeps the paused flag until the next start (obs).
                self.down_stamp = now.wall;
                out.push(Action::WriteStatus);
                out.push(Action::Broadcast(if finish_failed { b"dD" } else { b"D" }));
                if self.want == Want::Exit || self.last || final_stop {
                    self.exit(out);
                    return;
                }
                if self.want == Want::Up {
                    // runsv sleeps 1 s when run lived less than 1 s; we arm a deadline.
                    let at = if self.lived_long(now) {
                        now.mono_ms
                    } else {
                        now.mono_ms + RESTART_MS
                    };
                    self.schedule_backoff(at, now, files, out);
                }
            }
        }
    }

    /// The last start of run was at least 1 s ago: no busy loop to fear, restart at once.
    fn lived_long(&self, now: Now) -> bool {
        now.mono_ms >= self.start_mono + RESTART_MS
    }

    /// At the end of a death of run: applies `give-up` and decides whether an `essential`
    /// service has stopped for good (then `final_exit` is set and want is down).
    /// Returns (final stop, gave up just now).
    fn final_stop_check(
        &mut self,
        finish_code: i32,
        finish_failed: bool,
        now: Now,
        files: &mut dyn Files,
    ) -> (bool, bool) {
        let natural = std::mem::take(&mut self.natural_death);
        let give_up = files.give_up();
        // Keep only the deaths that the give-up rule can still count.
        match give_up {
            Some((count, secs)) => {
                let since = now.mono_ms.saturating_sub(secs.saturating_mul(1000));
                self.deaths.retain(|&t| t >= since);
                let excess = self.deaths.len().saturating_sub(count as usize);
                self.deaths.drain(..excess);
            }
            None => self.deaths.clear(),
        }
        if self.last || self.want != Want::Up {
            return (false, false);
        }
        let mut gave_up_now = false;
        if let Some((count, _)) = give_up {
            if natural && self.deaths.len() >= count as usize {
                gave_up_now = true;
                self.gave_up = true;
                self.want = Want::Down;
                self.deaths.clear();
            }
        }
        if self.is_log || !files.essential() {
            return (false, gave_up_now);
        }
        let permanent = finish_code == 125 && !finish_failed;
        // Without give-up, the first end of run on its own is final.
        let first_end = give_up.is_none() && natural;
        if !(gave_up_now || permanent || first_end) {
            return (false, gave_up_now);
        }
        self.want = Want::Down;
        self.final_exit = Some(crate::extstate::exit_code(Ended::from_wstat(self.wstat)));
        (true, gave_up_now)
    }

    /// Schedules the automatic restart: at `base` (the mode's own 1-s rule), or later when
    /// the crash-loop delay after the previous start says so.
    fn schedule_backoff(
        &mut self,
        base: u64,
        now: Now,
        files: &mut dyn Files,
        out: &mut Vec<Action>,
    ) {
        let mut at = base;
        self.backoff_ms = 0;
        if self.quick_deaths >= 1 {
            let delay = backoff_delay(self.quick_deaths, files.backoff_max());
            self.backoff_ms = delay;
            if self.quick_deaths >= 2 {
                at = at.max(self.start_mono.saturating_add(delay));
            }
        }
        if at <= now.mono_ms {
            self.start(out);
        } else {
            self.arm_restart(at, now);
        }
    }

    fn timer(&mut self, now: Now, out: &mut Vec<Action>) {
        if let Some(t) = self.restart_at {
            if t <= now.mono_ms {
                self.restart_at = None;
                if self.want == Want::Up && self.is_down() {
                    out.push(Action::SpawnRun);
                }
            }
        }
        if let Some(t) = self.kill_at {
            if t <= now.mono_ms {
                self.kill_at = None;
                if let Child::Run(pid) = self.child {
                    out.push(Action::Kill {
                        pid,
                        sig: libc::SIGKILL,
                        group: false,
                    });
                    self.kill_at = Some(now.mono_ms + KILL_REPEAT_MS);
                }
            }
        }
        if let Some(t) = self.finish_kill_at {
            if t <= now.mono_ms {
                self.finish_kill_at = None;
                if let Child::Finish(pid) = self.child {
                    out.push(Action::Warn(
                        "finish script lifetime reached maximum value - sending it a SIGKILL"
                            .to_string(),
                    ));
                    out.push(Action::Kill {
                        pid,
                        sig: libc::SIGCONT,
                        group: false,
                    });
                    out.push(Action::Kill {
                        pid,
                        sig: libc::SIGKILL,
                        group: false,
                    });
                    self.finish_kill_at = Some(now.mono_ms + KILL_REPEAT_MS);
                }
            }
        }
    }

    fn signal(&mut self, s: SupSignal, now: Now, files: &mut dyn Files, out: &mut Vec<Action>) {
        match s {
            SupSignal::Quit => self.exit(out),
            SupSignal::Int => {
                let pid = self.pid();
                if pid > 0 {
                    out.push(Action::Kill {
                        pid,
                        sig: libc::SIGINT,
                        group: self.mode == Mode::S6,
                    });
                }
                self.exit(out);
            }
            SupSignal::Hup => {
                if self.is_down() {
                    self.exit(out);
                } else {
                    self.last = true;
                    self.restart_at = None;
                    out.push(Action::CloseStdio);
                }
            }
            SupSignal::Term => {
                if self.is_down() {
                    self.exit(out);
                    return;
                }
                match self.mode {
                    Mode::S6 => {
                        let was_last = self.last;
                        self.last = true;
                        match self.state {
                            State::Up => {
                                self.set_want(Want::Down, out);
                                self.s6_down_sequence(now, files, out);
                            }
                            _ if !was_last => out.push(Action::CloseStdio),
                            _ => {}
                        }
                    }
                    Mode::Runit => {
                        // runsv: want exit, stop sequence; down-signal and timeout-kill too
                        // when those files exist (compat.md 10 #8).
                        self.last = true;
                        self.set_want(Want::Exit, out);
                        if self.state == State::Up {
                            self.runit_stop(now, files, out);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    struct Fake {
        tk: u64,
        tf: u64,
        ds: i32,
        bmax: u64,
        breset: u64,
        give_up: Option<(u32, u64)>,
        essential: bool,
    }
    impl Files for Fake {
        fn backoff_max(&mut self) -> u64 {
            self.bmax
        }
        fn backoff_reset(&mut self) -> u64 {
            self.breset
        }
        fn give_up(&mut self) -> Option<(u32, u64)> {
            self.give_up
        }
        fn essential(&mut self) -> bool {
            self.essential
        }
        fn timeout_kill(&mut self) -> u64 {
            self.tk
        }
        fn timeout_finish(&mut self) -> u64 {
            self.tf
        }
        fn down_signal(&mut self) -> i32 {
            self.ds
        }
    }
    fn files() -> Fake {
        Fake {
            tk: 0,
            tf: 5000,
            ds: libc::SIGTERM,
            bmax: DEFAULT_BACKOFF_MAX_MS,
            breset: DEFAULT_BACKOFF_RESET_MS,
            give_up: None,
            essential: false,
        }
    }
    fn at(ms: u64) -> Now {
        Now {
            mono_ms: ms,
            wall: UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(ms),
        }
    }

    /// Renders actions compactly so the tables below read like a specification.
    fn render(acts: &[Action]) -> String {
        let sig = |s: i32| crate::sig::short_name(s).unwrap_or("?").to_string();
        acts.iter()
            .map(|a| match a {
                Action::SpawnRun => "spawn".to_string(),
                Action::SpawnFinish(a, b) => format!("finish({a},{b})"),
                Action::Kill { sig: s, group, .. } => {
                    format!("{}:{}", if *group { "killpg" } else { "kill" }, sig(*s))
                }
                Action::Signal { letter, sig: s, .. } => {
                    format!("sig:{}/{}", *letter as char, sig(*s))
                }
                Action::Custom(l) => format!("custom:{}", *l as char),
                Action::WriteStatus => "status".to_string(),
                Action::DeathTally(d) => format!("tally({},{})", d.exit, d.sig),
                Action::Broadcast(l) => format!("ev:{}", String::from_utf8_lossy(l)),
                Action::CreateDown => "mkdown".to_string(),
                Action::RemoveDown => "rmdown".to_string(),
                Action::CloseStdio => "closestdio".to_string(),
                Action::CloseNotify => "closenotify".to_string(),
                Action::Warn(_) => "warn".to_string(),
                Action::Exit => "exit".to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The machine's state after an event, compactly: state/want[/last][/paused][/term].
    fn summary(m: &Machine) -> String {
        let mut s = format!(
            "{}/{}",
            match (m.state, m.forced_down) {
                (State::Up, true) => "killed",
                (State::Up, false) => "up",
                (State::Down, _) => "down",
                (State::Finish, _) => "finish",
            },
            match m.want {
                Want::Up => "u",
                Want::Down => "d",
                Want::Exit => "x",
            }
        );
        for (flag, name) in [(m.last, "last"), (m.paused, "paused"), (m.got_term, "term")] {
            if flag {
                s.push('/');
                s.push_str(name);
            }
        }
        s
    }

    /// A machine in a named state: DOWN (want down), UP and FINISH (want up), LASTUP,
    /// LASTFINISH.
    fn in_state(mode: Mode, name: &str) -> Machine {
        let f = &mut files();
        let mut m = Machine::new(mode, false, name == "DOWN", at(0));
        m.step(Event::Start, at(0), f);
        if name == "DOWN" {
            return m;
        }
        m.step(Event::RunStarted(100), at(10), f);
        if name.ends_with("FINISH") {
            m.step(Event::RunDied(0x0300), at(2000), f);
            m.step(Event::FinishStarted(200), at(2000), f);
        }
        if name.starts_with("LAST") {
            m.last = true;
        }
        m
    }

    fn check(mode: Mode, table: &[(&str, u8, &str, &str)]) {
        let mut failures = Vec::new();
        for &(state, letter, acts, after) in table {
            let mut m = in_state(mode, state);
            let got = m.step(Event::Control(letter), at(5000), &mut files());
            let (ga, gs) = (render(&got), summary(&m));
            if ga != acts || gs != after {
                failures.push(format!(
                    "{mode:?} {state} '{}': got [{ga}] -> {gs}, want [{acts}] -> {after}",
                    letter as char
                ));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    /// Every letter s6-supervise accepts, plus garbage, in every state.
    #[test]
    fn s6_control_table() {
        #[rustfmt::skip]
        let table: &[(&str, u8, &str, &str)] = &[
            // state    letter actions                                   resulting state
            ("DOWN",   b'a', "",                                         "down/d"),
            ("DOWN",   b'b', "",                                         "down/d"),
            ("DOWN",   b'q', "",                                         "down/d"),
            ("DOWN",   b'h', "",                                         "down/d"),
            ("DOWN",   b'k', "",                                         "down/d"),
            ("DOWN",   b't', "",                                         "down/d"),
            ("DOWN",   b'i', "",                                         "down/d"),
            ("DOWN",   b'1', "",                                         "down/d"),
            ("DOWN",   b'2', "",                                         "down/d"),
            ("DOWN",   b'y', "",                                         "down/d"),
            ("DOWN",   b'p', "",                                         "down/d"),
            ("DOWN",   b'c', "",                                         "down/d"),
            ("DOWN",   b'r', "",                                         "down/d"),
            ("DOWN",   b'o', "spawn",                                    "down/d"),
            ("DOWN",   b'd', "",                                         "down/d"),
            ("DOWN",   b'u', "status spawn",                             "down/u"),
            ("DOWN",   b'D', "mkdown",                                   "down/d"),
            ("DOWN",   b'U', "rmdown status spawn",                      "down/u"),
            ("DOWN",   b'x', "ev:x exit",                                "down/d"),
            ("DOWN",   b'O', "",                                         "down/d"),
            ("DOWN",   b'Q', "mkdown",                                   "down/d"),
            ("DOWN",   b'z', "",                                         "down/d"),
            ("DOWN",   0,    "",                                         "down/d"),
            ("UP",     b'a', "kill:ALRM",                                "up/u"),
            ("UP",     b'b', "kill:ABRT",                                "up/u"),
            ("UP",     b'q', "kill:QUIT",                                "up/u"),
            ("UP",     b'h', "kill:HUP",                                 "up/u"),
            ("UP",     b'k', "kill:KILL",                                "up/u"),
            ("UP",     b't', "kill:TERM",                                "up/u"),
            ("UP",     b'i', "kill:INT",                                 "up/u"),
            ("UP",     b'1', "kill:USR1",                                "up/u"),
            ("UP",     b'2', "kill:USR2",                                "up/u"),
            ("UP",     b'y', "kill:WINCH",                               "up/u"),
            ("UP",     b'p', "kill:STOP status",                         "up/u/paused"),
            ("UP",     b'c', "kill:CONT",                                "up/u"),
            ("UP",     b'r', "kill:TERM",                                "up/u"),
            ("UP",     b'o', "status",                                   "up/d"),
            ("UP",     b'd', "status kill:TERM kill:CONT",               "up/d"),
            ("UP",     b'u', "",                                         "up/u"),
            ("UP",     b'D', "mkdown status kill:TERM kill:CONT",        "up/d"),
            ("UP",     b'U', "rmdown",                                   "up/u"),
            ("UP",     b'x', "closestdio",                               "up/u/last"),
            ("UP",     b'O', "status",                                   "up/d"),
            ("UP",     b'Q', "mkdown status",                            "up/d"),
            ("UP",     b'z', "",                                         "up/u"),
            ("FINISH", b'a', "",                                         "finish/u"),
            ("FINISH", b'k', "",                                         "finish/u"),
            ("FINISH", b't', "",                                         "finish/u"),
            ("FINISH", b'p', "",                                         "finish/u"),
            ("FINISH", b'c', "",                                         "finish/u"),
            ("FINISH", b'r', "",                                         "finish/u"),
            ("FINISH", b'o', "status",                                   "finish/d"),
            ("FINISH", b'd', "status",                                   "finish/d"),
            ("FINISH", b'u', "",                                         "finish/u"),
            ("FINISH", b'D', "mkdown status",                            "finish/d"),
            ("FINISH", b'U', "rmdown",                                   "finish/u"),
            ("FINISH", b'x', "closestdio",                               "finish/u/last"),
            ("FINISH", b'O', "status",                                   "finish/d"),
            ("FINISH", b'Q', "mkdown status",                            "finish/d"),
            ("LASTUP", b't', "kill:TERM",                                "up/u/last"),
            ("LASTUP", b'd', "status kill:TERM kill:CONT",               "up/d/last"),
            ("LASTUP", b'x', "closestdio",                               "up/u/last"),
            ("LASTUP", b'u', "",                                         "up/u/last"),
            ("LASTFINISH", b'x', "closestdio",                           "finish/u/last"),
            ("LASTFINISH", b'k', "",                                     "finish/u/last"),
            ("LASTFINISH", b'd', "status",                               "finish/d/last"),
        ];
        check(Mode::S6, table);
    }

    /// Every letter runsv accepts (and s6-only letters, which runsv ignores), in every state.
    #[test]
    fn runit_control_table() {
        #[rustfmt::skip]
        let table: &[(&str, u8, &str, &str)] = &[
            ("DOWN",   b'u', "status spawn",                             "down/u"),
            ("DOWN",   b'o', "spawn",                                    "down/d"),
            ("DOWN",   b'd', "",                                         "down/d"),
            ("DOWN",   b'x', "status ev:x exit",                         "down/x"),
            ("DOWN",   b't', "",                                         "down/d"),
            ("DOWN",   b'k', "",                                         "down/d"),
            ("DOWN",   b'p', "status",                                   "down/d/paused"),
            ("DOWN",   b'c', "",                                         "down/d"),
            ("DOWN",   b'h', "",                                         "down/d"),
            ("DOWN",   b'a', "",                                         "down/d"),
            ("DOWN",   b'i', "",                                         "down/d"),
            ("DOWN",   b'q', "",                                         "down/d"),
            ("DOWN",   b'1', "",                                         "down/d"),
            ("DOWN",   b'2', "",                                         "down/d"),
            ("DOWN",   b'D', "",                                         "down/d"),
            ("DOWN",   b'U', "",                                         "down/d"),
            ("DOWN",   b'Q', "",                                         "down/d"),
            ("DOWN",   b'z', "",                                         "down/d"),
            ("UP",     b'u', "",                                         "up/u"),
            ("UP",     b'o', "status",                                   "up/d"),
            ("UP",     b'd', "status sig:t/TERM status kill:CONT custom:d", "up/d/term"),
            ("UP",     b'x', "status sig:t/TERM status kill:CONT custom:x", "up/x/term"),
            ("UP",     b't', "sig:t/TERM status",                        "up/u/term"),
            ("UP",     b'k', "sig:k/KILL",                               "killed/u"),
            ("UP",     b'p', "sig:p/STOP status",                        "up/u/paused"),
            ("UP",     b'c', "sig:c/CONT",                               "up/u"),
            ("UP",     b'h', "sig:h/HUP",                                "up/u"),
            ("UP",     b'a', "sig:a/ALRM",                               "up/u"),
            ("UP",     b'i', "sig:i/INT",                                "up/u"),
            ("UP",     b'q', "sig:q/QUIT",                               "up/u"),
            ("UP",     b'1', "sig:1/USR1",                               "up/u"),
            ("UP",     b'2', "sig:2/USR2",                               "up/u"),
            ("UP",     b'D', "",                                         "up/u"),
            ("UP",     b'r', "",                                         "up/u"),
            ("UP",     b'b', "",                                         "up/u"),
            ("UP",     b'y', "",                                         "up/u"),
            ("FINISH", b'u', "",                                         "finish/u"),
            ("FINISH", b'o', "status",                                   "finish/d"),
            ("FINISH", b'd', "status",                                   "finish/d"),
            ("FINISH", b'x', "status",                                   "finish/x"),
            ("FINISH", b't', "",                                         "finish/u"),
            ("FINISH", b'k', "",                                         "finish/u"),
            ("FINISH", b'p', "",                                         "finish/u"),
            ("FINISH", b'c', "",                                         "finish/u"),
            ("FINISH", b'h', "",                                         "finish/u"),
            ("FINISH", b'1', "",                                         "finish/u"),
        ];
        check(Mode::Runit, table);
    }

    /// Child events and timers: (mode, state, event, time, actions, resulting state).
    #[test]
    fn child_event_table() {
        #[rustfmt::skip]
        let table: &[(Mode, &str, Event, u64, &str, &str)] = &[
            (Mode::S6,    "UP",     Event::RunDied(0x0300), 5000, "closenotify tally(3,0) finish(3,0)", "finish/u"),
            (Mode::S6,    "UP",     Event::RunDied(15),     5000, "closenotify tally(143,15) finish(256,15)", "finish/u"),
            (Mode::Runit, "UP",     Event::RunDied(0x0300), 5000, "closenotify finish(3,0)", "finish/u"),
            (Mode::Runit, "UP",     Event::RunDied(15),     5000, "closenotify finish(-1,15)", "finish/u"),
            (Mode::Runit, "UP",     Event::RunDied(0x89),   5000, "closenotify finish(-1,137)", "finish/u"),
            (Mode::S6,    "FINISH", Event::FinishDied(0),   5000, "status ev:D spawn", "down/u"),
            (Mode::S6,    "FINISH", Event::FinishDied(0),   500,  "status ev:D", "down/u"),
            (Mode::S6,    "FINISH", Event::FinishDied(125 << 8), 5000, "status ev:OD", "down/d"),
            (Mode::S6,    "LASTFINISH", Event::FinishDied(0), 5000, "status ev:D ev:x exit", "down/u/last"),
            (Mode::S6,    "FINISH", Event::FinishFailed,    5000, "status ev:dD spawn", "down/u"),
            (Mode::S6,    "FINISH", Event::NoFinish,        5000, "ev:d status ev:D spawn", "down/u"),
            (Mode::S6,    "FINISH", Event::NoFinish,        900,  "ev:d status ev:D", "down/u"),
            (Mode::Runit, "FINISH", Event::FinishDied(0),   5000, "status ev:D spawn", "down/u"),
            (Mode::Runit, "FINISH", Event::FinishDied(0),   500,  "status ev:D", "down/u"),
            (Mode::Runit, "FINISH", Event::FinishDied(125 << 8), 5000, "status ev:D spawn", "down/u"),
            (Mode::S6,    "UP",     Event::Ready,           5000, "status ev:U closenotify", "up/u"),
            (Mode::S6,    "DOWN",   Event::RunStarted(7),   5000, "status ev:u", "up/d"),
            (Mode::S6,    "DOWN",   Event::RunFailed,       5000, "", "down/d"),
            (Mode::Runit, "DOWN",   Event::RunFailed,       5000, "closenotify finish(111,0)", "finish/d"),
            (Mode::S6,    "UP",     Event::Timer,           5000, "", "up/u"),
        ];
        let mut failures = Vec::new();
        for &(mode, state, ev, t, acts, after) in table {
            let mut m = in_state(mode, state);
            let got = m.step(ev, at(t), &mut files());
            let (ga, gs) = (render(&got), summary(&m));
            if ga != acts || gs != after {
                failures.push(format!(
                    "{mode:?} {state} {ev:?}: got [{ga}] -> {gs}, want [{acts}] -> {after}"
                ));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    /// Supervisor signals (compat.md 6.2.5), both modes.
    #[test]
    fn supervisor_signal_table() {
        use SupSignal::*;
        #[rustfmt::skip]
        let table: &[(Mode, &str, SupSignal, &str, &str)] = &[
            (Mode::S6,    "DOWN",   Term, "ev:x exit",                          "down/d"),
            (Mode::S6,    "UP",     Term, "status kill:TERM kill:CONT",         "up/d/last"),
            (Mode::S6,    "FINISH", Term, "closestdio",                         "finish/u/last"),
            (Mode::S6,    "LASTUP", Term, "status kill:TERM kill:CONT",         "up/d/last"),
            (Mode::S6,    "LASTFINISH", Term, "",                               "finish/u/last"),
            (Mode::S6,    "DOWN",   Hup,  "ev:x exit",                          "down/d"),
            (Mode::S6,    "UP",     Hup,  "closestdio",                         "up/u/last"),
            (Mode::S6,    "UP",     Quit, "ev:x exit",                          "up/u"),
            (Mode::S6,    "UP",     Int,  "killpg:INT ev:x exit",               "up/u"),
            (Mode::S6,    "FINISH", Int,  "killpg:INT ev:x exit",               "finish/u"),
            (Mode::Runit, "DOWN",   Term, "ev:x exit",                          "down/d"),
            (Mode::Runit, "UP",     Term, "status sig:t/TERM status kill:CONT custom:x", "up/x/last/term"),
            (Mode::Runit, "FINISH", Term, "status",                             "finish/x/last"),
            (Mode::Runit, "UP",     Hup,  "closestdio",                         "up/u/last"),
            (Mode::Runit, "UP",     Int,  "kill:INT ev:x exit",                 "up/u"),
        ];
        let mut failures = Vec::new();
        for &(mode, state, sig, acts, after) in table {
            let mut m = in_state(mode, state);
            let got = m.step(Event::Signal(sig), at(5000), &mut files());
            let (ga, gs) = (render(&got), summary(&m));
            if ga != acts || gs != after {
                failures.push(format!(
                    "{mode:?} {state} {sig:?}: got [{ga}] -> {gs}, want [{acts}] -> {after}"
                ));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn s6_restart_at_once_after_a_long_run_else_one_second_after_down_or_ready() {
        let f = &mut files();
        // Started at 10, down at 3000: restarted at once (s6-supervise would wait until 4000).
        let mut m = in_state(Mode::S6, "FINISH");
        assert_eq!(
            render(&m.step(Event::FinishDied(0), at(3000), f)),
            "status ev:D spawn"
        );
        // Lived 400 ms, never ready: 1 s after D.
        let mut m = in_state(Mode::S6, "UP");
        m.step(Event::RunDied(15), at(400), f);
        m.step(Event::FinishStarted(9), at(400), f);
        assert_eq!(
            render(&m.step(Event::FinishDied(0), at(500), f)),
            "status ev:D"
        );
        assert_eq!(m.next_deadline(), Some(1500));
        assert_eq!(render(&m.step(Event::Timer, at(1499), f)), "");
        assert_eq!(render(&m.step(Event::Timer, at(1500), f)), "spawn");
        // Lived 900 ms, ready at 100: 1 s after readiness.
        let mut m = in_state(Mode::S6, "UP");
        m.step(Event::Ready, at(100), f);
        m.step(Event::RunDied(15), at(900), f);
        m.step(Event::FinishStarted(9), at(900), f);
        assert_eq!(
            render(&m.step(Event::FinishDied(0), at(950), f)),
            "status ev:D"
        );
        assert_eq!(m.next_deadline(), Some(1100));
    }

    #[test]
    fn follows_the_main_pid_only_while_up() {
        let mut m = in_state(Mode::S6, "UP");
        assert_eq!(render(&m.follow_main(4321)), "status");
        assert_eq!(m.pid(), 4321);
        let mut m = in_state(Mode::S6, "DOWN");
        assert_eq!(render(&m.follow_main(4321)), "");
        assert_eq!(m.child, Child::None);
    }

    #[test]
    fn timeouts_kill_and_repeat() {
        let f = &mut Fake {
            tk: 1500,
            tf: 2000,
            ds: libc::SIGHUP,
            ..files()
        };
        let mut m = in_state(Mode::S6, "UP");
        assert_eq!(
            render(&m.step(Event::Control(b'd'), at(1000), f)),
            "status kill:HUP kill:CONT"
        );
        assert_eq!(m.next_deadline(), Some(2500));
        assert_eq!(render(&m.step(Event::Timer, at(2500), f)), "kill:KILL");
        assert_eq!(m.next_deadline(), Some(2500 + KILL_REPEAT_MS));
        m.step(Event::RunDied(9), at(2600), f);
        m.step(Event::FinishStarted(9), at(2600), f);
        assert_eq!(m.next_deadline(), Some(4600));
        assert_eq!(
            render(&m.step(Event::Timer, at(4600), f)),
            "warn kill:CONT kill:KILL"
        );
    }

    #[test]
    fn runit_exec_failure_retries_in_one_second_and_u_retries_at_once() {
        let f = &mut files();
        let mut m = Machine::new(Mode::Runit, false, false, at(0));
        assert_eq!(render(&m.step(Event::Start, at(0), f)), "status ev:s spawn");
        m.step(Event::RunFailed, at(1), f);
        assert_eq!(
            render(&m.step(Event::NoFinish, at(1), f)),
            "ev:d status ev:D"
        );
        assert_eq!(m.next_deadline(), Some(1001));
        assert_eq!(render(&m.step(Event::Control(b'u'), at(2), f)), "spawn");
        assert_eq!(m.next_deadline(), None);
        // 'd' while waiting cancels the retry.
        m.step(Event::RunFailed, at(3), f);
        m.step(Event::NoFinish, at(3), f);
        m.step(Event::Control(b'd'), at(4), f);
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn both_encodings_come_from_one_state() {
        let f = &mut files();
        let mut m = in_state(Mode::Runit, "UP");
        let start = m.start_stamp;
        m.step(Event::RunDied(15), at(3000), f);
        m.step(Event::FinishStarted(77), at(3000), f);
        let r = m.runit_status();
        assert_eq!(r.pid, 77);
        assert_eq!(r.state, RunitState::Finish);
        // runit: the stamp stays at run's start while finishing; s6: it is run's death.
        assert_eq!(r.stamp, Tai64N::from_system(start, Family::Runit));
        let s = m.s6_status();
        assert!(s.finishing && !s.ready);
        assert_eq!(s.stamp, Tai64N::from_system(at(3000).wall, Family::S6));
        assert_eq!(s.wstat, 15);
        assert_eq!(s.stamp.secs - r.stamp.secs, 27 + 3);
    }

    #[test]
    fn log_shutdown_exits_after_the_logger() {
        let f = &mut files();
        let mut m = Machine::new(Mode::Runit, true, false, at(0));
        m.step(Event::Start, at(0), f);
        m.step(Event::RunStarted(5), at(0), f);
        // x is ignored for the log (both modes).
        assert_eq!(render(&m.step(Event::Control(b'x'), at(1), f)), "");
        let mut s6log = Machine::new(Mode::S6, true, true, at(0));
        assert_eq!(render(&s6log.step(Event::Control(b'x'), at(1), f)), "");
        assert_eq!(render(&m.step(Event::Shutdown, at(2), f)), "status");
        m.step(Event::RunDied(0), at(3), f);
        assert_eq!(
            render(&m.step(Event::NoFinish, at(3), f)),
            "ev:d status ev:D ev:x exit"
        );
    }

    #[test]
    fn backoff_delays() {
        let d = |k| backoff_delay(k, 4000);
        assert_eq!(
            [d(0), d(1), d(2), d(3), d(4), d(9)],
            [1000, 1000, 2000, 4000, 4000, 4000]
        );
        let d = |k| backoff_delay(k, DEFAULT_BACKOFF_MAX_MS);
        assert_eq!([d(5), d(6), d(200)], [16000, 30000, 30000]);
        // A cap of 1 s or less is the plain 1-s rule.
        assert_eq!([backoff_delay(5, 1000), backoff_delay(5, 10)], [1000, 1000]);
    }

    /// run starts at `t0` and dies at `t1` with `wstat`; no finish. Returns the actions of the
    /// end of the death.
    fn cycle(m: &mut Machine, f: &mut Fake, t0: u64, t1: u64, wstat: i32) -> String {
        m.step(Event::RunStarted(100), at(t0), f);
        m.step(Event::RunDied(wstat), at(t1), f);
        render(&m.step(Event::NoFinish, at(t1), f))
    }

    #[test]
    fn crash_loop_backs_off_in_both_modes() {
        for mode in [Mode::S6, Mode::Runit] {
            let f = &mut Fake {
                bmax: 4000,
                ..files()
            };
            let mut m = Machine::new(mode, false, false, at(0));
            m.step(Event::Start, at(0), f);
            // Immediate deaths: starts at 0, 1010, 3010, 7010, 11010 (1, 2, 4, 4 s after the
            // previous start; the first gap is each mode's own 1-s rule).
            let mut t = 0;
            for (k, gap) in [(1, 1010), (2, 2000), (3, 4000), (4, 4000)] {
                assert_eq!(
                    cycle(&mut m, f, t, t + 10, 0x100),
                    "ev:d status ev:D",
                    "{mode:?}"
                );
                assert_eq!(m.quick_deaths, k);
                assert_eq!(m.next_deadline(), Some(t + gap), "{mode:?} k={k}");
                let (wall, backoff) = m.pending_start().unwrap();
                assert_eq!(wall, at(t + gap).wall);
                assert_eq!(backoff, backoff_delay(k, 4000));
                assert_eq!(render(&m.step(Event::Timer, at(t + gap - 1), f)), "");
                assert_eq!(render(&m.step(Event::Timer, at(t + gap), f)), "spawn");
                t += gap;
            }
            assert_eq!(m.starts, 4);
            assert_eq!(m.exits.len(), 4);
            // `u` during the wait starts at once and ends the loop.
            cycle(&mut m, f, t, t + 10, 0x100);
            assert_eq!(m.next_deadline(), Some(t + 4000));
            assert_eq!(
                render(&m.step(Event::Control(b'u'), at(t + 20), f)),
                "spawn"
            );
            assert_eq!((m.quick_deaths, m.pending_start()), (0, None));
            m.step(Event::RunStarted(100), at(t + 20), f);
            m.step(Event::RunDied(0x100), at(t + 30), f);
            m.step(Event::NoFinish, at(t + 30), f);
            assert_eq!(
                m.next_deadline(),
                Some(t + 1030),
                "{mode:?}: back to the 1-s rule"
            );
        }
    }

    #[test]
    fn a_long_enough_uptime_resets_the_backoff() {
        let f = &mut Fake {
            bmax: 4000,
            breset: 500,
            ..files()
        };
        let mut m = Machine::new(Mode::Runit, false, false, at(0));
        m.step(Event::Start, at(0), f);
        cycle(&mut m, f, 0, 10, 0x100);
        cycle(&mut m, f, 1010, 1020, 0x100);
        cycle(&mut m, f, 3010, 3020, 0x100);
        assert_eq!(m.quick_deaths, 3);
        // Up 600 ms >= backoff-reset: runsv's rule again (< 1 s up: 1 s after the end).
        assert_eq!(cycle(&mut m, f, 7010, 7610, 0x100), "ev:d status ev:D");
        assert_eq!((m.quick_deaths, m.next_deadline()), (0, Some(8610)));
        // Up 2 s: restarts at once.
        assert_eq!(
            cycle(&mut m, f, 8610, 10610, 0x100),
            "ev:d status ev:D spawn"
        );
        // s6: 1 s after the death.
        let mut m = Machine::new(Mode::S6, false, false, at(0));
        m.step(Event::Start, at(0), f);
        cycle(&mut m, f, 0, 10, 0x100);
        cycle(&mut m, f, 1010, 1020, 0x100);
        cycle(&mut m, f, 3010, 3600, 0x100);
        assert_eq!((m.quick_deaths, m.next_deadline()), (0, Some(4600)));
    }

    #[test]
    fn deaths_caused_by_control_commands_do_not_count() {
        let f = &mut Fake {
            bmax: 4000,
            give_up: Some((2, 60)),
            essential: true,
            ..files()
        };
        let mut m = Machine::new(Mode::S6, false, false, at(0));
        m.step(Event::Start, at(0), f);
        cycle(&mut m, f, 0, 10, 0x100);
        assert_eq!(m.quick_deaths, 1);
        m.step(Event::Timer, at(1010), f);
        m.step(Event::RunStarted(100), at(1010), f);
        // s6-svc -t: the death is ours, restart by the 1-s rule, no give-up.
        m.step(Event::Control(b't'), at(1020), f);
        m.step(Event::RunDied(15), at(1020), f);
        assert_eq!(
            render(&m.step(Event::NoFinish, at(1020), f)),
            "ev:d status ev:D"
        );
        assert_eq!((m.quick_deaths, m.gave_up, m.final_exit), (0, false, None));
        assert_eq!(m.next_deadline(), Some(2020));
    }

    #[test]
    fn give_up_stays_down_until_u() {
        for (mode, ev) in [
            (Mode::S6, "ev:d status ev:OD"),
            (Mode::Runit, "ev:d status ev:D"),
        ] {
            let f = &mut Fake {
                give_up: Some((3, 10)),
                ..files()
            };
            let mut m = Machine::new(mode, false, false, at(0));
            m.step(Event::Start, at(0), f);
            cycle(&mut m, f, 0, 10, 0x100);
            cycle(&mut m, f, 1010, 1020, 0x100);
            assert!(!m.gave_up);
            assert_eq!(cycle(&mut m, f, 3010, 3020, 0x100), ev, "{mode:?}");
            assert!(m.gave_up);
            assert_eq!(
                (m.want, m.next_deadline(), m.final_exit),
                (Want::Down, None, None)
            );
            assert_eq!(render(&m.step(Event::Timer, at(60_000), f)), "");
            assert_eq!(
                render(&m.step(Event::Control(b'u'), at(60_000), f)),
                "status spawn"
            );
            assert!(!m.gave_up && m.want == Want::Up);
            // Deaths outside the window do not add up.
            cycle(&mut m, f, 60_000, 60_010, 0x100);
            cycle(&mut m, f, 61_010, 61_020, 0x100);
            cycle(&mut m, f, 75_000, 75_010, 0x100);
            assert!(!m.gave_up, "{mode:?}");
        }
    }

    #[test]
    fn essential_final_stop() {
        for mode in [Mode::S6, Mode::Runit] {
            let f = &mut Fake {
                essential: true,
                ..files()
            };
            // Without give-up: the first end of run on its own, exit code or 128 + signal.
            for (wstat, code) in [(3 << 8, 3), (9, 137), (0, 0)] {
                let mut m = Machine::new(mode, false, false, at(0));
                m.step(Event::Start, at(0), f);
                assert_eq!(
                    cycle(&mut m, f, 0, 5000, wstat),
                    "ev:d status ev:D ev:x exit"
                );
                assert_eq!((m.final_exit, m.want), (Some(code), Want::Down), "{mode:?}");
            }
            // A control command that takes it down is not a final stop.
            let mut m = Machine::new(mode, false, false, at(0));
            m.step(Event::Start, at(0), f);
            m.step(Event::RunStarted(100), at(0), f);
            m.step(Event::Control(b'd'), at(10), f);
            m.step(Event::RunDied(15), at(20), f);
            assert_eq!(
                render(&m.step(Event::NoFinish, at(20), f)),
                "ev:d status ev:D"
            );
            assert_eq!(m.final_exit, None);
            // The logger is never essential.
            let mut m = Machine::new(mode, true, false, at(0));
            m.step(Event::Start, at(0), f);
            assert!(!cycle(&mut m, f, 0, 5000, 0x100).contains("exit"));
            // finish exiting 125 is final.
            let mut m = Machine::new(mode, false, false, at(0));
            m.step(Event::Start, at(0), f);
            let f2 = &mut Fake {
                essential: true,
                give_up: Some((5, 60)),
                ..files()
            };
            m.step(Event::RunStarted(100), at(0), f2);
            m.step(Event::RunDied(2 << 8), at(10), f2);
            m.step(Event::FinishStarted(101), at(10), f2);
            let got = render(&m.step(Event::FinishDied(125 << 8), at(20), f2));
            assert!(got.ends_with("ev:x exit"), "{mode:?}: {got}");
            assert_eq!(m.final_exit, Some(2));
        }
    }

    #[test]
    fn essential_with_give_up_restarts_until_it_fires() {
        let f = &mut Fake {
            essential: true,
            give_up: Some((2, 60)),
            ..files()
        };
        let mut m = Machine::new(Mode::S6, false, false, at(0));
        m.step(Event::Start, at(0), f);
        assert_eq!(cycle(&mut m, f, 0, 10, 4 << 8), "ev:d status ev:D");
        assert_eq!(m.final_exit, None);
        assert_eq!(
            cycle(&mut m, f, 1010, 1020, 5 << 8),
            "ev:d status ev:OD ev:x exit"
        );
        assert_eq!(m.final_exit, Some(5));
        assert!(m.gave_up);
    }
}
