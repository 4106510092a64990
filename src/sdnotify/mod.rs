//! systemd's readiness protocol (`sd_notify`) for services whose directory has a
//! `notify-socket` file. This file is the pure part: parsing datagrams and the per-run state
//! they drive (readiness, status text, stopping/reloading, main pid, watchdog). No system
//! calls and no clock reads; [`socket`] receives the datagrams and checks who sent them, the
//! supervisor's loop ([`crate::supervise`]) feeds [`Input`]s and carries out [`Output`]s.
//!
//! Service-dir files (read at each start of `run`):
//!
//! - `notify-socket`: empty, the supervisor binds an abstract datagram socket; otherwise one
//!   line naming the path of the socket to bind (relative to the service directory). Either
//!   way `run` gets its address in `$NOTIFY_SOCKET`.
//! - `watchdog-usec`: microseconds (systemd's `WatchdogSec=`). `run` gets
//!   `$WATCHDOG_USEC`; once the service is ready (or sent its first `WATCHDOG=1`), a gap of
//!   more than that between two `WATCHDOG=1` restarts it (its down-signal).
//!
//! Messages understood: `READY=1`, `STATUS=`, `STOPPING=1`, `RELOADING=1`, `MAINPID=`,
//! `WATCHDOG=1`, `WATCHDOG=trigger`, `WATCHDOG_USEC=`; others (`BARRIER=1`, `ERRNO=`,
//! `FDSTORE=1`, ...) are accepted and ignored, as systemd ignores what it does not know.

pub mod rt;
pub mod socket;

use crate::extstate::one_line;

/// Longest datagram accepted (systemd's own limit, the size of a pipe buffer).
pub const MAX_DATAGRAM: usize = 4096;
/// The service-dir file that turns the protocol on.
pub const FILE: &str = "notify-socket";
/// The service-dir file with the watchdog interval in microseconds.
pub const WATCHDOG_FILE: &str = "watchdog-usec";

/// One assignment of a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    Ready,
    Status(String),
    Stopping,
    Reloading,
    MainPid(i32),
    Watchdog,
    WatchdogTrigger,
    WatchdogUsec(u64),
    /// A well-formed assignment that rsv does not act on.
    Other,
}

/// Why a datagram was ignored as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Malformed {
    Oversized,
    NotText,
    /// A line that is not `NAME=value`, or a value that does not parse.
    BadLine(String),
}

impl Malformed {
    pub fn describe(&self) -> String {
        match self {
            Malformed::Oversized => format!("a datagram longer than {MAX_DATAGRAM} bytes"),
            Malformed::NotText => "a datagram that is not text (NUL byte or invalid UTF-8)".into(),
            Malformed::BadLine(l) => format!("a malformed line: {}", one_line(l.as_bytes())),
        }
    }
}

/// Parses one datagram: newline-separated `NAME=value` assignments. A datagram with any bad
/// line is ignored whole (nothing of it is acted on).
pub fn parse(data: &[u8]) -> Result<Vec<Msg>, Malformed> {
    if data.len() > MAX_DATAGRAM {
        return Err(Malformed::Oversized);
    }
    if data.contains(&0) {
        return Err(Malformed::NotText);
    }
    let text = std::str::from_utf8(data).map_err(|_| Malformed::NotText)?;
    let mut out = Vec::new();
    for line in text.split('\n') {
        if line.is_empty() {
            continue;
        }
        let bad = || Malformed::BadLine(line.to_string());
        let (name, value) = line.split_once('=').ok_or_else(bad)?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(bad());
        }
        out.push(match (name, value) {
            ("READY", "1") => Msg::Ready,
            ("STATUS", v) => Msg::Status(one_line(v.as_bytes())),
            ("STOPPING", "1") => Msg::Stopping,
            ("RELOADING", "1") => Msg::Reloading,
            ("MAINPID", v) => match v.parse::<i32>() {
                Ok(p) if p > 1 => Msg::MainPid(p),
                _ => return Err(bad()),
            },
            ("WATCHDOG", "1") => Msg::Watchdog,
            ("WATCHDOG", "trigger") => Msg::WatchdogTrigger,
            ("WATCHDOG_USEC", v) => match v.parse::<u64>() {
                Ok(u) => Msg::WatchdogUsec(u),
                Err(_) => return Err(bad()),
            },
            _ => Msg::Other,
        });
    }
    Ok(out)
}

/// What the service said it is doing, beyond up and ready.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    #[default]
    Running,
    Stopping,
    Reloading,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "",
            Phase::Stopping => "stopping",
            Phase::Reloading => "reloading",
        }
    }

    pub fn parse(s: &str) -> Phase {
        match s {
            "stopping" => Phase::Stopping,
            "reloading" => Phase::Reloading,
            _ => Phase::Running,
        }
    }
}

/// Inputs from the loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// `run` started, with the `watchdog-usec` setting of this start.
    RunStarted { watchdog_usec: Option<u64> },
    /// `run` is gone (the watchdog stops).
    RunStopped,
    /// Accepted messages of one datagram. `main_pid_ok` tells, for a `MAINPID=` among them,
    /// whether that pid is a process of the service (checked by the caller).
    Msgs { msgs: Vec<Msg>, main_pid_ok: bool },
    /// A deadline of [`Notify::next_deadline`] may have passed.
    Timer,
}

/// What the loop must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// `READY=1`: feed the supervisor machine `Ready` (the same as `notification-fd`).
    Ready,
    /// The watchdog expired: warn with this text and restart the service.
    WatchdogRestart(String),
    /// Something shown by rsvstat changed (rewrite `supervise/rsv-state`).
    Changed,
    Warn(String),
}

/// The state of the protocol for the current run of one service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    pub status: String,
    pub phase: Phase,
    /// `MAINPID=`, accepted.
    pub main_pid: Option<i32>,
    /// Watchdog interval in ms (0 = none).
    pub watchdog_ms: u64,
    /// When the watchdog fires unless pinged (monotonic ms).
    pub watchdog_at: Option<u64>,
    /// `READY=1` arrived during this run.
    pub ready: bool,
}

fn usec_to_ms(u: u64) -> u64 {
    u.div_ceil(1000)
}

impl Notify {
    pub fn next_deadline(&self) -> Option<u64> {
        self.watchdog_at
    }

    fn arm(&mut self, now_ms: u64) {
        if self.watchdog_ms > 0 {
            self.watchdog_at = Some(now_ms.saturating_add(self.watchdog_ms));
        } else {
            self.watchdog_at = None;
        }
    }

    pub fn step(&mut self, input: Input, now_ms: u64) -> Vec<Output> {
        let mut out = Vec::new();
        let before = (self.status.clone(), self.phase, self.main_pid);
        match input {
            Input::RunStarted { watchdog_usec } => {
                *self = Notify {
                    watchdog_ms: watchdog_usec.map(usec_to_ms).unwrap_or(0),
                    ..Notify::default()
                };
            }
            Input::RunStopped => {
                self.watchdog_at = None;
                self.main_pid = None;
                self.phase = Phase::Running;
            }
            Input::Msgs { msgs, main_pid_ok } => {
                for m in msgs {
                    match m {
                        Msg::Ready => {
                            self.ready = true;
                            if self.phase == Phase::Reloading {
                                self.phase = Phase::Running;
                            }
                            if self.watchdog_at.is_none() {
                                self.arm(now_ms);
                            }
                            out.push(Output::Ready);
                        }
                        Msg::Status(s) => self.status = s,
                        Msg::Stopping => self.phase = Phase::Stopping,
                        Msg::Reloading => self.phase = Phase::Reloading,
                        Msg::MainPid(p) => {
                            if main_pid_ok {
                                self.main_pid = Some(p);
                            } else {
                                out.push(Output::Warn(format!(
                                    "ignoring MAINPID={p}: not a process of this service"
                                )));
                            }
                        }
                        Msg::Watchdog => self.arm(now_ms),
                        Msg::WatchdogTrigger => {
                            self.watchdog_at = None;
                            out.push(Output::WatchdogRestart(
                                "watchdog triggered by the service (WATCHDOG=trigger): restarting"
                                    .into(),
                            ));
                        }
                        Msg::WatchdogUsec(u) => {
                            self.watchdog_ms = usec_to_ms(u);
                            self.arm(now_ms);
                        }
                        Msg::Other => {}
                    }
                }
            }
            Input::Timer => {
                if self.watchdog_at.is_some_and(|d| d <= now_ms) {
                    self.watchdog_at = None;
                    out.push(Output::WatchdogRestart(format!(
                        "watchdog timeout: no WATCHDOG=1 for {} ms: restarting",
                        self.watchdog_ms
                    )));
                }
            }
        }
        if (self.status.clone(), self.phase, self.main_pid) != before {
            out.push(Output::Changed);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(m: Vec<Msg>) -> Input {
        Input::Msgs {
            msgs: m,
            main_pid_ok: true,
        }
    }

    #[test]
    fn parses_what_systemd_notify_sends() {
        assert_eq!(
            parse(b"READY=1\nSTATUS=hi there"),
            Ok(vec![Msg::Ready, Msg::Status("hi there".into())])
        );
        assert_eq!(parse(b"BARRIER=1"), Ok(vec![Msg::Other]));
        assert_eq!(
            parse(b"MAINPID=42\nWATCHDOG=1\n"),
            Ok(vec![Msg::MainPid(42), Msg::Watchdog])
        );
        assert_eq!(
            parse(b"WATCHDOG_USEC=1500"),
            Ok(vec![Msg::WatchdogUsec(1500)])
        );
        assert_eq!(
            parse(b"READY=0\nX_FOO=bar"),
            Ok(vec![Msg::Other, Msg::Other])
        );
        assert_eq!(parse(b""), Ok(vec![]));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse(b"READY=1\0"), Err(Malformed::NotText));
        assert_eq!(parse(&[0xff, b'=', b'1']), Err(Malformed::NotText));
        assert_eq!(parse(b"hello"), Err(Malformed::BadLine("hello".into())));
        assert_eq!(parse(b"=1"), Err(Malformed::BadLine("=1".into())));
        assert_eq!(
            parse(b"MAINPID=x"),
            Err(Malformed::BadLine("MAINPID=x".into()))
        );
        assert_eq!(
            parse(b"MAINPID=1"),
            Err(Malformed::BadLine("MAINPID=1".into()))
        );
        assert_eq!(
            parse(&vec![b'a'; MAX_DATAGRAM + 1]),
            Err(Malformed::Oversized)
        );
        assert!(Malformed::Oversized.describe().contains("4096"));
    }

    #[test]
    fn status_is_one_line() {
        assert_eq!(parse(b"STATUS=a\tb"), Ok(vec![Msg::Status("a b".into())]));
    }

    #[test]
    fn ready_status_phases() {
        let mut n = Notify::default();
        n.step(
            Input::RunStarted {
                watchdog_usec: None,
            },
            0,
        );
        let o = n.step(msgs(vec![Msg::Ready, Msg::Status("serving".into())]), 5);
        assert_eq!(o, vec![Output::Ready, Output::Changed]);
        assert_eq!(n.status, "serving");
        assert_eq!(n.next_deadline(), None);
        assert_eq!(n.step(msgs(vec![Msg::Reloading]), 6), vec![Output::Changed]);
        assert_eq!(n.phase, Phase::Reloading);
        assert_eq!(
            n.step(msgs(vec![Msg::Ready]), 7),
            vec![Output::Ready, Output::Changed]
        );
        assert_eq!(n.phase, Phase::Running);
        n.step(msgs(vec![Msg::Stopping]), 8);
        assert_eq!(n.phase.as_str(), "stopping");
        // A new run forgets everything of the last one.
        assert_eq!(
            n.step(
                Input::RunStarted {
                    watchdog_usec: None
                },
                9
            ),
            vec![Output::Changed]
        );
        assert_eq!(n, Notify::default());
    }

    #[test]
    fn main_pid_only_when_of_the_service() {
        let mut n = Notify::default();
        let o = n.step(
            Input::Msgs {
                msgs: vec![Msg::MainPid(77)],
                main_pid_ok: false,
            },
            0,
        );
        assert!(matches!(o.as_slice(), [Output::Warn(_)]));
        assert_eq!(n.main_pid, None);
        assert_eq!(
            n.step(msgs(vec![Msg::MainPid(77)]), 0),
            vec![Output::Changed]
        );
        assert_eq!(n.main_pid, Some(77));
        n.step(Input::RunStopped, 1);
        assert_eq!(n.main_pid, None);
    }

    #[test]
    fn watchdog() {
        let mut n = Notify::default();
        n.step(
            Input::RunStarted {
                watchdog_usec: Some(1_000_000),
            },
            0,
        );
        // Not armed before readiness or the first ping.
        assert_eq!(n.next_deadline(), None);
        n.step(msgs(vec![Msg::Ready]), 100);
        assert_eq!(n.next_deadline(), Some(1100));
        n.step(msgs(vec![Msg::Watchdog]), 900);
        assert_eq!(n.next_deadline(), Some(1900));
        assert_eq!(n.step(Input::Timer, 1899), vec![]);
        let o = n.step(Input::Timer, 1900);
        assert!(matches!(o.as_slice(), [Output::WatchdogRestart(t)] if t.contains("1000 ms")));
        assert_eq!(n.next_deadline(), None);
        // WATCHDOG_USEC= changes the interval and rearms; trigger fires at once.
        n.step(msgs(vec![Msg::WatchdogUsec(500)]), 2000);
        assert_eq!(n.next_deadline(), Some(2001));
        let o = n.step(msgs(vec![Msg::WatchdogTrigger]), 2000);
        assert!(matches!(o.as_slice(), [Output::WatchdogRestart(_)]));
        n.step(msgs(vec![Msg::Watchdog]), 3000);
        n.step(Input::RunStopped, 3001);
        assert_eq!(n.next_deadline(), None);
    }

    #[test]
    fn no_watchdog_without_setting() {
        let mut n = Notify::default();
        n.step(
            Input::RunStarted {
                watchdog_usec: None,
            },
            0,
        );
        n.step(msgs(vec![Msg::Watchdog]), 10);
        assert_eq!(n.next_deadline(), None);
    }
}
