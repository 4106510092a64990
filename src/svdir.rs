//! Reading a service directory's settings files (`down`, `finish`, `notification-fd`,
//! `timeout-kill`, `timeout-finish`, `down-signal`, `max-death-tally`, `nosetsid`,
//! `control/<c>`, `backoff-max`, `backoff-reset`, `give-up`, `essential`). Integer files are read fresh every time they are needed; a malformed one
//! gives one warning naming the file, then the default.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::machine::{DEFAULT_BACKOFF_MAX_MS, DEFAULT_BACKOFF_RESET_MS, Files, Mode};

/// s6's default `timeout-finish`.
pub const DEFAULT_TIMEOUT_FINISH: u64 = 5000;
/// s6's default and maximum `max-death-tally`.
pub const DEFAULT_DEATH_TALLY: usize = 100;
pub const MAX_DEATH_TALLY: usize = 4096;

/// Result of reading a small settings file.
#[derive(Debug, PartialEq, Eq)]
pub enum Setting<T> {
    Absent,
    Invalid,
    Value(T),
}

/// Parses decimal digits up to the first newline (s6's rule for integer files).
pub fn parse_uint(data: &[u8]) -> Option<u64> {
    let line = data.split(|&b| b == b'\n').next().unwrap_or(&[]);
    if line.is_empty() || !line.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(line).ok()?.parse().ok()
}

/// Parses a `down-signal` file: its first line (at most 15 bytes read), a signal name or number.
pub fn parse_signal(data: &[u8]) -> Option<i32> {
    let data = &data[..data.len().min(15)];
    let line = data.split(|&b| b == b'\n').next().unwrap_or(&[]);
    crate::sig::parse(std::str::from_utf8(line).ok()?)
}

/// Parses a `give-up` file: its first line, `COUNT SECONDS`, both positive integers.
pub fn parse_give_up(data: &[u8]) -> Option<(u32, u64)> {
    let line = data.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_ascii_whitespace();
    let count = parse_uint(words.next()?.as_bytes())?;
    let secs = parse_uint(words.next()?.as_bytes())?;
    if words.next().is_some() || count == 0 || secs == 0 {
        return None;
    }
    Some((u32::try_from(count).ok()?, secs))
}

/// One service directory as seen from the supervisor's working directory (the main service
/// dir): `base` is "" for the main service and "log/" for its logger.
pub struct SvDir {
    base: &'static str,
    /// How warnings name this service: `rsupervise SD` or `rsupervise SD/log`.
    pub tag: String,
    /// The directory as the user named it, for messages.
    pub shown: String,
    pub mode: Mode,
    /// `supervise` and `event` when they live in a runtime directory (see [`crate::rundir`]).
    relocated: Vec<(&'static str, PathBuf)>,
}

impl SvDir {
    pub fn new(prog: &str, shown_main: &str, is_log: bool, mode: Mode) -> SvDir {
        let shown = if is_log {
            format!("{}/log", shown_main.trim_end_matches('/'))
        } else {
            shown_main.to_string()
        };
        SvDir {
            base: if is_log { "log/" } else { "" },
            tag: format!("{prog} {shown}"),
            shown,
            mode,
            relocated: Vec::new(),
        }
    }

    /// Keeps entry `entry` (`supervise` or `event`) at `at` instead of in the service
    /// directory: [`SvDir::path`] and [`SvDir::show`] then name `at` for it and what is in it.
    pub fn relocate(&mut self, entry: &'static str, at: PathBuf) {
        self.relocated.retain(|(e, _)| *e != entry);
        self.relocated.push((entry, at));
    }

    /// The relocated path of `name` (`entry` or `entry/...`), if its entry is relocated.
    fn relocated_path(&self, name: &str) -> Option<PathBuf> {
        self.relocated.iter().find_map(|(e, at)| {
            let rest = name.strip_prefix(e)?;
            if rest.is_empty() {
                Some(at.clone())
            } else {
                rest.strip_prefix('/').map(|r| at.join(r))
            }
        })
    }

    /// Path of an entry, relative to the main service directory.
    pub fn path(&self, name: &str) -> PathBuf {
        if let Some(p) = self.relocated_path(name) {
            return p;
        }
        PathBuf::from(format!("{}{name}", self.base))
    }

    /// How messages name an entry: `SD/name`.
    pub fn show(&self, name: &str) -> String {
        if let Some(p) = self.relocated_path(name) {
            return p.display().to_string();
        }
        format!("{}/{name}", self.shown.trim_end_matches('/'))
    }

    /// Prints `rsupervise SD: warning: MSG` (never fails, never raises SIGPIPE).
    pub fn warn(&self, msg: &str) {
        let _ = writeln!(io::stderr(), "{}: warning: {msg}", self.tag);
    }

    fn read_small(&self, name: &str) -> Option<Vec<u8>> {
        match fs::read(self.path(name)) {
            Ok(d) => Some(d),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                self.warn(&format!(
                    "unable to read {}: {}",
                    self.show(name),
                    errtext(&e)
                ));
                None
            }
        }
    }

    /// An unsigned integer file.
    pub fn uint(&self, name: &str) -> Setting<u64> {
        match self.read_small(name) {
            None => Setting::Absent,
            Some(d) => match parse_uint(&d) {
                Some(v) => Setting::Value(v),
                None => Setting::Invalid,
            },
        }
    }

    fn uint_or(&self, name: &str, default: u64) -> u64 {
        match self.uint(name) {
            Setting::Absent => default,
            Setting::Value(v) => v,
            Setting::Invalid => {
                self.warn(&format!("invalid {}, using the default", self.show(name)));
                default
            }
        }
    }

    /// `notification-fd`, if present and valid.
    pub fn notification_fd(&self) -> Option<i32> {
        match self.uint_or("notification-fd", u64::MAX) {
            v if v < i32::MAX as u64 => Some(v as i32),
            _ => None,
        }
    }

    /// `max-death-tally`: default 100, capped at 4096.
    pub fn max_death_tally(&self) -> usize {
        (self.uint_or("max-death-tally", DEFAULT_DEATH_TALLY as u64) as usize).min(MAX_DEATH_TALLY)
    }

    pub fn exists(&self, name: &str) -> bool {
        fs::symlink_metadata(self.path(name)).is_ok()
    }

    /// runsv's test for `finish`: it can be opened for reading.
    pub fn finish_readable(&self) -> bool {
        fs::File::open(self.path("finish")).is_ok()
    }

    /// runit's `control/<c>` override: exists with the owner-execute bit, never for the log.
    pub fn override_eligible(&self, letter: u8) -> bool {
        if self.mode != Mode::Runit || !self.base.is_empty() {
            return false;
        }
        let name = format!("control/{}", letter as char);
        fs::metadata(self.path(&name))
            .map(|m| m.is_file() && m.permissions().mode() & 0o100 != 0)
            .unwrap_or(false)
    }
}

impl Files for SvDir {
    fn backoff_max(&mut self) -> u64 {
        self.uint_or("backoff-max", DEFAULT_BACKOFF_MAX_MS)
    }

    fn backoff_reset(&mut self) -> u64 {
        self.uint_or("backoff-reset", DEFAULT_BACKOFF_RESET_MS)
    }

    fn give_up(&mut self) -> Option<(u32, u64)> {
        let data = self.read_small("give-up")?;
        let v = parse_give_up(&data);
        if v.is_none() {
            self.warn(&format!(
                "invalid {} (want COUNT SECONDS), not giving up",
                self.show("give-up")
            ));
        }
        v
    }

    fn essential(&mut self) -> bool {
        self.exists("essential")
    }

    fn timeout_kill(&mut self) -> u64 {
        self.uint_or("timeout-kill", 0)
    }

    fn timeout_finish(&mut self) -> u64 {
        let default = match self.mode {
            Mode::S6 => DEFAULT_TIMEOUT_FINISH,
            Mode::Runit => 0,
        };
        self.uint_or("timeout-finish", default)
    }

    fn down_signal(&mut self) -> i32 {
        match self.read_small("down-signal") {
            None => libc::SIGTERM,
            Some(d) => parse_signal(&d).unwrap_or_else(|| {
                self.warn(&format!(
                    "invalid {}, using SIGTERM",
                    self.show("down-signal")
                ));
                libc::SIGTERM
            }),
        }
    }
}

/// An error's text without Rust's "(os error N)" suffix.
pub fn errtext(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// Is this error "we may not create or write here" (as opposed to a real fault)?
pub fn is_denied(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_files() {
        assert_eq!(parse_uint(b"1500\n"), Some(1500));
        assert_eq!(parse_uint(b"3"), Some(3));
        assert_eq!(parse_uint(b"3\ngarbage"), Some(3));
        assert_eq!(parse_uint(b""), None);
        assert_eq!(parse_uint(b" 3"), None);
        assert_eq!(parse_uint(b"-1"), None);
        assert_eq!(parse_uint(b"12x"), None);
    }

    #[test]
    fn give_up_files() {
        assert_eq!(parse_give_up(b"5 60\n"), Some((5, 60)));
        assert_eq!(parse_give_up(b"3  10"), Some((3, 10)));
        assert_eq!(parse_give_up(b"3\n10"), None);
        assert_eq!(parse_give_up(b"0 10"), None);
        assert_eq!(parse_give_up(b"3 0"), None);
        assert_eq!(parse_give_up(b"3 10 x"), None);
        assert_eq!(parse_give_up(b"x 10"), None);
        assert_eq!(parse_give_up(b""), None);
    }

    #[test]
    fn signal_files() {
        assert_eq!(parse_signal(b"SIGHUP\n"), Some(libc::SIGHUP));
        assert_eq!(parse_signal(b"term"), Some(libc::SIGTERM));
        assert_eq!(parse_signal(b"9\n"), Some(9));
        assert_eq!(parse_signal(b"nope"), None);
    }
}
