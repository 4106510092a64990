//! One view of a service's state, whichever status format its supervisor writes.
//!
//! The clients (`rsvc`, `rsvstat`) read `supervise/status` through this module: a 20-byte runit
//! file and a 35-byte s6 file are both turned into the same fields, with stamps converted to
//! unix time and to the s6 (+37) label family that s6's tools print.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::status::{AnyStatus, Death, Ended, RunitState, read_status};
use crate::tai::{Family, Tai64N};

/// Which layout the status file had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Runit,
    S6,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Runit => "runit",
            Format::S6 => "s6",
        }
    }
}

/// The state of one service, decoded from either format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub format: Format,
    pub raw: AnyStatus,
    /// Pid of run, or of finish while finishing; 0 if none.
    pub pid: u64,
    /// run is running: a pid and not finishing.
    pub up: bool,
    /// finish is running.
    pub finishing: bool,
    pub wantup: bool,
    pub paused: bool,
    /// s6's ready flag (always false for runit, which has no readiness).
    pub ready: bool,
    /// runit's got-TERM flag (always false for s6).
    pub got_term: bool,
    /// Last up/down transition, as an s6-family label.
    pub stamp: Tai64N,
    /// Last readiness change, as an s6-family label (runit: the same as `stamp`).
    pub readystamp: Tai64N,
    /// Unix seconds of `stamp` and `readystamp`.
    pub since: i64,
    pub ready_since: i64,
    /// s6's last wait status of run (`None` for runit).
    pub wstat: Option<u16>,
}

impl View {
    pub fn from_status(st: AnyStatus) -> View {
        match st {
            AnyStatus::S6(s) => {
                let (since, _) = s.stamp.to_unix(Family::S6);
                let (ready_since, _) = s.readystamp.to_unix(Family::S6);
                View {
                    format: Format::S6,
                    raw: st,
                    pid: s.pid,
                    up: s.is_up(),
                    finishing: s.finishing,
                    wantup: s.wantup,
                    paused: s.paused,
                    ready: s.ready,
                    got_term: false,
                    stamp: s.stamp,
                    readystamp: s.readystamp,
                    since,
                    ready_since,
                    wstat: Some(s.wstat),
                }
            }
            AnyStatus::Runit(r) => {
                let (since, nanos) = r.stamp.to_unix(Family::Runit);
                let stamp = Tai64N::from_unix(since, nanos, Family::S6);
                View {
                    format: Format::Runit,
                    raw: st,
                    pid: r.pid as u64,
                    up: r.pid != 0 && r.state == RunitState::Run,
                    finishing: r.state == RunitState::Finish,
                    wantup: r.want_up,
                    paused: r.paused,
                    ready: false,
                    got_term: r.got_term,
                    stamp,
                    readystamp: stamp,
                    since,
                    ready_since: since,
                    wstat: None,
                }
            }
        }
    }

    /// Reads `SD/supervise/status`.
    pub fn read(sd: &Path) -> io::Result<View> {
        read_status(&crate::rundir::supervise_dir(sd)).map(View::from_status)
    }

    /// How run last ended, from the s6 wait status, when the service is down.
    pub fn ended(&self) -> Option<Ended> {
        match self.wstat {
            Some(w) if !self.up => Some(Ended::from_wstat(w as i32)),
            _ => None,
        }
    }

    /// The status as runit's 20-byte fields: (pid, state byte, want byte, paused, got TERM,
    /// stamp as a runit-family label). s6 statuses are translated.
    pub fn as_runit(&self) -> (u64, u8, u8, bool, bool, Tai64N) {
        match self.raw {
            AnyStatus::Runit(r) => (
                r.pid as u64,
                r.state as u8,
                if r.want_up { b'u' } else { b'd' },
                r.paused,
                r.got_term,
                r.stamp,
            ),
            AnyStatus::S6(s) => {
                let (u, n) = s.stamp.to_unix(Family::S6);
                let state = if s.pid == 0 {
                    0
                } else if s.finishing {
                    2
                } else {
                    1
                };
                (
                    s.pid,
                    state,
                    if s.wantup { b'u' } else { b'd' },
                    s.paused,
                    false,
                    Tai64N::from_unix(u, n, Family::Runit),
                )
            }
        }
    }
}

/// Whole seconds from `from` to `now` (s6's floor of the difference), 0 when `from` is later.
pub fn secs_between(from: Tai64N, now: Tai64N) -> u64 {
    if now <= from {
        return 0;
    }
    let mut s = now.secs - from.secs;
    if now.nanos < from.nanos {
        s -= 1;
    }
    s
}

/// Is a `down` file present in the service directory?
pub fn has_down_file(sd: &Path) -> bool {
    fs::symlink_metadata(sd.join("down")).is_ok()
}

/// The newest record of `supervise/death_tally`, if any.
pub fn last_death(sd: &Path) -> Option<Death> {
    let b = fs::read(crate::rundir::supervise_dir(sd).join("death_tally")).ok()?;
    Death::decode_all(&b).last().copied()
}

/// Is `dir` a scan directory: no `run` file of its own but subdirectories that have one?
pub fn is_scan_dir(dir: &Path) -> bool {
    if dir.join("run").exists() || crate::rundir::supervise_dir(dir).is_dir() {
        return false;
    }
    !scan_services(dir).is_empty()
}

/// The service directories in a scan directory, sorted by name (hidden entries skipped):
/// every subdirectory with a `run` file or a `supervise` directory.
pub fn scan_services(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir() && (p.join("run").exists() || crate::rundir::supervise_dir(p).is_dir())
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{RunitStatus, S6Status};

    #[test]
    fn secs_between_floors() {
        let a = Tai64N {
            secs: 100,
            nanos: 900,
        };
        assert_eq!(
            secs_between(
                a,
                Tai64N {
                    secs: 101,
                    nanos: 100
                }
            ),
            0
        );
        assert_eq!(
            secs_between(
                a,
                Tai64N {
                    secs: 101,
                    nanos: 900
                }
            ),
            1
        );
        assert_eq!(secs_between(a, Tai64N { secs: 50, nanos: 0 }), 0);
    }

    #[test]
    fn s6_status_as_runit_fields() {
        let stamp = Tai64N::from_unix(1_800_000_000, 7, Family::S6);
        let s = S6Status {
            stamp,
            readystamp: stamp,
            pid: 42,
            wstat: 0,
            paused: true,
            finishing: true,
            wantup: false,
            ready: false,
        };
        let v = View::from_status(AnyStatus::S6(s));
        assert!(!v.up && v.finishing);
        let (pid, state, want, paused, got_term, st) = v.as_runit();
        assert_eq!(
            (pid, state, want, paused, got_term),
            (42, 2, b'd', true, false)
        );
        assert_eq!(st, Tai64N::from_unix(1_800_000_000, 7, Family::Runit));
        assert_eq!(v.since, 1_800_000_000);
    }

    #[test]
    fn runit_stamps_convert_to_the_s6_family() {
        let r = RunitStatus {
            stamp: Tai64N::from_unix(1_800_000_000, 500, Family::Runit),
            pid: 9,
            paused: false,
            want_up: true,
            got_term: true,
            state: RunitState::Run,
        };
        let v = View::from_status(AnyStatus::Runit(r));
        assert!(v.up && v.wantup && v.got_term && !v.ready);
        assert_eq!(v.stamp.secs, r.stamp.secs + 27);
        assert_eq!(v.since, 1_800_000_000);
        assert_eq!(v.ended(), None);
    }
}
