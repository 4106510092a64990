//! `supervise/rsv-state`: what rsv knows about a service beyond the fixed runit and s6 status
//! formats (restarts, recent exits, crash-loop backoff, give-up, essential final stop, health).
//!
//! The supervisor rewrites it atomically whenever one of these values changes; clients
//! (`rsvstat`, `rsvscan`) read it. It is a text file of `key value` lines, one per field, so a
//! human can `cat` it. Unknown keys are ignored and missing keys keep their defaults, so the
//! format can grow. Times are wall-clock milliseconds since the Unix epoch (0 = none).
//!
//! ```text
//! restarts 3
//! ready 1
//! exits exit:1 exit:1 signal:9
//! backoff_ms 4000
//! next_try_ms 1795000000000
//! gave_up 0
//! essential 1
//! final_exit 3
//! health unhealthy
//! health_failures 2
//! health_at_ms 1795000000000
//! health_output curl: (7) Failed to connect
//! sd_status Serving 3 clients
//! sd_phase reloading
//! main_pid 4243
//! ```
//!
//! The last three come from sd_notify ([`crate::sdnotify`]) and are written only when set.

use std::fs;
use std::io;
use std::path::Path;

use crate::status::{Ended, write_atomic};

/// File name inside `supervise/`.
pub const FILE: &str = "rsv-state";
/// How many recent ends of `run` are kept, newest first.
pub const MAX_EXITS: usize = 5;
/// Longest `health_output` kept, in bytes.
pub const MAX_OUTPUT: usize = 256;

/// Health of a service with periodic checks (`none` when it has none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Health {
    #[default]
    None,
    /// Checks are configured but none has passed or failed since the last start.
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::None => "none",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }

    pub fn parse(s: &str) -> Option<Health> {
        Some(match s {
            "none" => Health::None,
            "starting" => Health::Starting,
            "healthy" => Health::Healthy,
            "unhealthy" => Health::Unhealthy,
            _ => return None,
        })
    }
}

/// The extended state of one supervised service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtState {
    /// Starts of `run` after the first one, since the supervisor started.
    pub restarts: u64,
    /// `run` is up and ready: it notified readiness (`notification-fd`), or its `check`
    /// passed, or it is simply up when the service dir has neither.
    pub ready: bool,
    /// The last ends of `run`, newest first, at most [`MAX_EXITS`].
    pub exits: Vec<Ended>,
    /// Current crash-loop delay (0 = not backing off).
    pub backoff_ms: u64,
    /// When the next automatic start is due (0 = none pending).
    pub next_try_ms: u64,
    /// The give-up rule fired: the service stays down until a control command.
    pub gave_up: bool,
    /// The service dir has an `essential` file.
    pub essential: bool,
    /// Set once an essential service has stopped for good: the code the container exits with
    /// (exit code, or 128 + signal).
    pub final_exit: Option<i32>,
    pub health: Health,
    /// Consecutive failed checks.
    pub health_failures: u32,
    /// When the last check ended.
    pub health_at_ms: u64,
    /// The last check's output, one line, at most [`MAX_OUTPUT`] bytes.
    pub health_output: String,
    /// sd_notify `STATUS=` of the current run (empty: none).
    pub sd_status: String,
    /// sd_notify `stopping` or `reloading` (empty: neither).
    pub sd_phase: String,
    /// sd_notify `MAINPID=` while up (0: none).
    pub main_pid: i32,
    /// Process group of the last `run` that led one (0 = none): rsvstat lists its members
    /// that outlived it.
    pub pgid: i32,
    /// The service's cgroup (empty = none).
    pub cgroup: String,
    /// With resource guards: the last sample's memory (bytes) and CPU use (percent of one
    /// core; None before the second sample), and the limit exceeded (empty = none).
    pub memory_bytes: u64,
    pub cpu_percent: Option<u64>,
    pub limit: String,
}

fn ended_token(e: Ended) -> String {
    match e {
        Ended::Exited(c) => format!("exit:{c}"),
        Ended::Signaled(s) => format!("signal:{s}"),
    }
}

fn parse_ended(t: &str) -> Option<Ended> {
    let (kind, n) = t.split_once(':')?;
    let n: i32 = n.parse().ok()?;
    match kind {
        "exit" => Some(Ended::Exited(n)),
        "signal" => Some(Ended::Signaled(n)),
        _ => None,
    }
}

/// Makes check output fit on one line: control characters become spaces, runs of blanks
/// shrink to one, and the text is cut to [`MAX_OUTPUT`] bytes on a character boundary.
pub fn one_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    for ch in text.chars() {
        let ch = if ch.is_control() { ' ' } else { ch };
        if ch == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        if out.len() + ch.len_utf8() > MAX_OUTPUT {
            break;
        }
        out.push(ch);
    }
    out.trim_end().to_string()
}

/// The code a container exits with when a process ended this way.
pub fn exit_code(e: Ended) -> i32 {
    match e {
        Ended::Exited(c) => c,
        Ended::Signaled(s) => 128 + s,
    }
}

impl ExtState {
    /// Records one end of `run` (newest first, bounded).
    pub fn push_exit(&mut self, e: Ended) {
        self.exits.insert(0, e);
        self.exits.truncate(MAX_EXITS);
    }

    pub fn encode(&self) -> String {
        let exits: Vec<String> = self.exits.iter().map(|e| ended_token(*e)).collect();
        let mut s = format!(
            "restarts {}\nready {}\nexits {}\nbackoff_ms {}\nnext_try_ms {}\ngave_up {}\nessential {}\n",
            self.restarts,
            u8::from(self.ready),
            exits.join(" "),
            self.backoff_ms,
            self.next_try_ms,
            u8::from(self.gave_up),
            u8::from(self.essential),
        );
        if let Some(c) = self.final_exit {
            s.push_str(&format!("final_exit {c}\n"));
        }
        s.push_str(&format!(
            "health {}\nhealth_failures {}\nhealth_at_ms {}\nhealth_output {}\n",
            self.health.as_str(),
            self.health_failures,
            self.health_at_ms,
            one_line(self.health_output.as_bytes()),
        ));
        // sd_notify lines only for services that use it: other files stay as they were.
        if !self.sd_status.is_empty() {
            s.push_str(&format!(
                "sd_status {}\n",
                one_line(self.sd_status.as_bytes())
            ));
        }
        if !self.sd_phase.is_empty() {
            s.push_str(&format!("sd_phase {}\n", self.sd_phase));
        }
        if self.main_pid != 0 {
            s.push_str(&format!("main_pid {}\n", self.main_pid));
        }
        // Fields of newer features: written only when set, so that files of services
        // without them stay as they were.
        if self.pgid != 0 {
            s.push_str(&format!("pgid {}\n", self.pgid));
        }
        if !self.cgroup.is_empty() {
            s.push_str(&format!("cgroup {}\n", one_line(self.cgroup.as_bytes())));
        }
        if self.memory_bytes != 0 {
            s.push_str(&format!("memory_bytes {}\n", self.memory_bytes));
        }
        if let Some(c) = self.cpu_percent {
            s.push_str(&format!("cpu_percent {c}\n"));
        }
        if !self.limit.is_empty() {
            s.push_str(&format!("limit {}\n", one_line(self.limit.as_bytes())));
        }
        s
    }

    /// Decodes leniently: unknown keys and malformed values are skipped.
    pub fn decode(text: &str) -> ExtState {
        let mut st = ExtState::default();
        for line in text.lines() {
            let (key, val) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "restarts" => st.restarts = val.parse().unwrap_or(0),
                "ready" => st.ready = val == "1",
                "exits" => st.exits = val.split_whitespace().filter_map(parse_ended).collect(),
                "backoff_ms" => st.backoff_ms = val.parse().unwrap_or(0),
                "next_try_ms" => st.next_try_ms = val.parse().unwrap_or(0),
                "gave_up" => st.gave_up = val == "1",
                "essential" => st.essential = val == "1",
                "final_exit" => st.final_exit = val.parse().ok(),
                "health" => st.health = Health::parse(val).unwrap_or_default(),
                "health_failures" => st.health_failures = val.parse().unwrap_or(0),
                "health_at_ms" => st.health_at_ms = val.parse().unwrap_or(0),
                "health_output" => st.health_output = val.to_string(),
                "sd_status" => st.sd_status = val.to_string(),
                "sd_phase" => st.sd_phase = val.to_string(),
                "main_pid" => st.main_pid = val.parse().unwrap_or(0),
                "pgid" => st.pgid = val.parse().unwrap_or(0),
                "cgroup" => st.cgroup = val.to_string(),
                "memory_bytes" => st.memory_bytes = val.parse().unwrap_or(0),
                "cpu_percent" => st.cpu_percent = val.parse().ok(),
                "limit" => st.limit = val.to_string(),
                _ => {}
            }
        }
        st.exits.truncate(MAX_EXITS);
        st
    }
}

/// Reads `supervise_dir/rsv-state`. A missing file is `NotFound` (a supervisor that is not
/// rsv, or one that has not written it yet).
pub fn read(supervise_dir: &Path) -> io::Result<ExtState> {
    let text = fs::read(supervise_dir.join(FILE))?;
    Ok(ExtState::decode(&String::from_utf8_lossy(&text)))
}

/// Writes `supervise_dir/rsv-state` atomically, mode 0644.
pub fn write(supervise_dir: &Path, st: &ExtState) -> io::Result<()> {
    write_atomic(supervise_dir, FILE, st.encode().as_bytes(), 0o644)
}

/// Milliseconds since the Unix epoch of a wall-clock time (0 before the epoch).
pub fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut st = ExtState {
            restarts: 7,
            ready: true,
            backoff_ms: 4000,
            next_try_ms: 1_795_000_000_123,
            gave_up: true,
            essential: true,
            final_exit: Some(137),
            health: Health::Unhealthy,
            health_failures: 3,
            health_at_ms: 1_795_000_000_000,
            health_output: "connection refused".into(),
            sd_status: "serving 3 clients".into(),
            sd_phase: "reloading".into(),
            main_pid: 4242,
            pgid: 42,
            cgroup: "/sys/fs/cgroup/rsv_srv_web".into(),
            memory_bytes: 1 << 20,
            cpu_percent: Some(12),
            limit: "memory 2.0 MiB > 1.0 MiB for 1 of 3 cycles".into(),
            ..Default::default()
        };
        for e in [
            Ended::Exited(1),
            Ended::Signaled(9),
            Ended::Exited(0),
            Ended::Exited(2),
            Ended::Exited(3),
            Ended::Exited(4),
        ] {
            st.push_exit(e);
        }
        assert_eq!(st.exits.len(), MAX_EXITS);
        assert_eq!(st.exits[0], Ended::Exited(4));
        assert_eq!(ExtState::decode(&st.encode()), st);
    }

    #[test]
    fn lenient_decode() {
        let st = ExtState::decode(
            "restarts x\nfuture_key 1\nexits exit:1 bogus signal:15\nhealth weird\n",
        );
        assert_eq!(st.restarts, 0);
        assert_eq!(st.exits, vec![Ended::Exited(1), Ended::Signaled(15)]);
        assert_eq!(st.health, Health::None);
        assert_eq!(ExtState::decode(""), ExtState::default());
    }

    #[test]
    fn output_is_one_bounded_line() {
        assert_eq!(one_line(b"a\nb\t\tc\r\n"), "a b c");
        let long = vec![b'x'; 1000];
        assert_eq!(one_line(&long).len(), MAX_OUTPUT);
        assert_eq!(one_line("é".repeat(200).as_bytes()).len(), MAX_OUTPUT);
    }

    #[test]
    fn container_exit_codes() {
        assert_eq!(exit_code(Ended::Exited(3)), 3);
        assert_eq!(exit_code(Ended::Signaled(15)), 143);
    }
}
