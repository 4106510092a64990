//! A service directory without a usable `run`: the supervisor answers for it ("down") and
//! starts it the moment `run` is there, executable and written — no retry loop, one warning.
//!
//! runsv retries every second and s6-supervise every 10 s, each time with a warning. Here the
//! start is deferred instead: the directory holding `run` gets an inotify watch (created
//! only when needed), and an event naming `run` (created, moved in, closed after writing,
//! mode changed) checks it again.

use std::fs;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use inotify::{Inotify, WatchDescriptor, WatchMask};

/// Why `run` cannot be started yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotReady {
    Missing,
    NotExecutable,
    /// Executable but still empty (being written).
    Empty,
}

/// Is `run` at `path` ready to exec: a regular file (or a link to one) with an execute bit,
/// not empty?
pub fn check(path: &Path) -> Result<(), NotReady> {
    let m = fs::metadata(path).map_err(|_| NotReady::Missing)?;
    if !m.is_file() || m.permissions().mode() & 0o111 == 0 {
        return Err(NotReady::NotExecutable);
    }
    if m.len() == 0 {
        return Err(NotReady::Empty);
    }
    Ok(())
}

/// The message for a deferred start (printed once per wait).
pub fn message(shown_run: &str, why: NotReady) -> String {
    match why {
        NotReady::Missing => format!("{shown_run} does not exist: starting it once it does"),
        NotReady::NotExecutable => {
            format!("{shown_run} is not executable: starting it once it is")
        }
        NotReady::Empty => format!("{shown_run} is empty: starting it once it is written"),
    }
}

struct Waiting {
    run: PathBuf,
    wd: Option<WatchDescriptor>,
}

/// Deferred starts of the services of one supervisor (index 0: the service, 1: its logger).
#[derive(Default)]
pub struct RunWait {
    ino: Option<Inotify>,
    waiting: [Option<Waiting>; 2],
}

impl RunWait {
    /// Before a start of service `i`: Ok when `run` can be started now; otherwise the start
    /// is deferred (a watch is placed) and the reason is returned, `Some` only the first time
    /// for this wait (to warn once).
    pub fn gate(&mut self, i: usize, run: &Path) -> Result<(), Option<NotReady>> {
        let why = match check(run) {
            Ok(()) => {
                self.forget(i);
                return Ok(());
            }
            Err(w) => w,
        };
        if self.waiting[i].is_some() {
            return Err(None);
        }
        if self.ino.is_none() {
            self.ino = Inotify::init().ok();
        }
        let dir = match run.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let wd = self.ino.as_mut().and_then(|ino| {
            ino.watches()
                .add(
                    &dir,
                    WatchMask::CREATE
                        | WatchMask::MOVED_TO
                        | WatchMask::ATTRIB
                        | WatchMask::CLOSE_WRITE
                        | WatchMask::ONLYDIR,
                )
                .ok()
        });
        self.waiting[i] = Some(Waiting {
            run: run.to_path_buf(),
            wd,
        });
        Err(Some(why))
    }

    fn forget(&mut self, i: usize) {
        if let Some(w) = self.waiting[i].take() {
            if let (Some(ino), Some(wd)) = (self.ino.as_mut(), w.wd) {
                // Both services may watch one directory (never: "." and "log" differ), so
                // the watch is removed with its wait.
                let _ = ino.watches().remove(wd);
            }
        }
    }

    /// The inotify descriptor to poll while a start is deferred.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        if self.waiting.iter().all(Option::is_none) {
            return None;
        }
        self.ino.as_ref().map(|i| i.as_fd())
    }

    /// Reads the pending events; returns the services whose `run` is ready now (their wait
    /// is over: the caller starts them if they are still wanted up).
    pub fn ready(&mut self) -> Vec<usize> {
        let mut touched = false;
        if let Some(ino) = self.ino.as_mut() {
            let mut buf = [0u8; 4096];
            while let Ok(evs) = ino.read_events(&mut buf) {
                let mut any = false;
                for ev in evs {
                    any = true;
                    if ev.name.is_none_or(|n| n == "run") {
                        touched = true;
                    }
                }
                if !any {
                    break;
                }
            }
        }
        let mut out = Vec::new();
        if !touched {
            return out;
        }
        for i in 0..2 {
            let ok = self.waiting[i]
                .as_ref()
                .is_some_and(|w| check(&w.run).is_ok());
            if ok {
                self.forget(i);
                out.push(i);
            }
        }
        out
    }

    /// Service `i` was stopped being wanted: no deferred start left for it.
    pub fn cancel(&mut self, i: usize) {
        self.forget(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_of_run() {
        let d = std::env::temp_dir().join(format!("rsv-runwait-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        let run = d.join("run");
        assert_eq!(check(&run), Err(NotReady::Missing));
        fs::write(&run, "").unwrap();
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check(&run), Err(NotReady::Empty));
        fs::write(&run, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&run, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(check(&run), Err(NotReady::NotExecutable));
        let mut w = RunWait::default();
        assert_eq!(w.gate(0, &run), Err(Some(NotReady::NotExecutable)));
        assert_eq!(w.gate(0, &run), Err(None), "warned once");
        assert!(w.fd().is_some());
        assert!(w.ready().is_empty());
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(w.ready(), vec![0]);
        assert!(w.fd().is_none());
        assert_eq!(w.gate(0, &run), Ok(()));
        fs::remove_dir_all(&d).unwrap();
    }
}
