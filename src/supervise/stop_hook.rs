//! The `stop` file of a service directory (rsv's own; systemd's `ExecStop=`): an executable
//! run when the service is stopped on request (`d`, `D`, `x`, `r`, runit's `t`, or the
//! supervisor's SIGTERM, which is how the scanner stops services), before the down-signal
//! is sent. It gets `env/` applied and `$MAINPID` (the pid about to be signalled), runs in
//! the service directory, leads its own process group, and is waited for: at most
//! `timeout-kill` ms (10 s without it), then its group gets SIGKILL. Whatever it exits with,
//! the down-signal follows (the remaining processes are stopped as usual). A service that
//! ends on its own does not run it. Without the file nothing changes (one `stat` per stop).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{Sup, What};
use crate::machine::{Action, Event, Files, Mode, SupSignal};

/// The bound of a `stop` without `timeout-kill`.
pub const DEFAULT_MS: u64 = 10_000;

/// Is `ev` a request to stop (or restart) the service, in this personality?
pub fn is_stop_request(ev: Event, mode: Mode) -> bool {
    match ev {
        Event::Control(b'd' | b'D' | b'x') | Event::Signal(SupSignal::Term) => true,
        Event::Control(b'r') => mode == Mode::S6,
        Event::Control(b't') => mode == Mode::Runit,
        _ => false,
    }
}

/// Is `a` the stop's signal to `run` (not the SIGCONT that follows it)?
pub fn is_stop_signal(a: &Action, run: i32) -> bool {
    match *a {
        Action::Kill { pid, sig, .. } => pid == run && sig != libc::SIGCONT,
        Action::Signal { pid, letter, .. } => pid == run && letter == b't',
        _ => false,
    }
}

impl Sup {
    /// Runs service `i`'s `stop`, if it is an executable file, for `main` (see the module).
    pub(super) fn stop_hook(&mut self, i: usize, main: i32) {
        if self.svcs[i].m.is_log {
            return;
        }
        let exe = std::fs::metadata(self.svcs[i].dir.path("stop"))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !exe {
            return;
        }
        let limit = match Files::timeout_kill(&mut self.svcs[i].dir) {
            0 => DEFAULT_MS,
            ms => ms,
        };
        let pid = match self.spawn(i, What::Stop(main)) {
            Ok(p) => p,
            Err(e) => {
                self.svcs[i]
                    .dir
                    .warn(&format!("unable to start stop: {}", e.desc()));
                return;
            }
        };
        let end = Instant::now() + Duration::from_millis(limit);
        let child = Pid::from_raw(pid);
        loop {
            match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => {}
                Ok(WaitStatus::Exited(_, 0)) => return,
                Ok(WaitStatus::Exited(_, c)) => {
                    let shown = self.svcs[i].dir.show("stop");
                    self.svcs[i].dir.warn(&format!("{shown} exited {c}"));
                    return;
                }
                Ok(WaitStatus::Signaled(_, s, _)) => {
                    let shown = self.svcs[i].dir.show("stop");
                    self.svcs[i]
                        .dir
                        .warn(&format!("{shown} killed by signal {}", s as i32));
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
            if Instant::now() >= end {
                // SAFETY: signalling the process group our `stop` child leads.
                unsafe { libc::killpg(pid, libc::SIGKILL) };
                let _ = waitpid(child, None);
                let shown = self.svcs[i].dir.show("stop");
                self.svcs[i]
                    .dir
                    .warn(&format!("{shown} still ran after {limit} ms: killed"));
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_signals() {
        assert!(is_stop_request(Event::Control(b'd'), Mode::S6));
        assert!(is_stop_request(Event::Signal(SupSignal::Term), Mode::Runit));
        assert!(is_stop_request(Event::Control(b'r'), Mode::S6));
        assert!(!is_stop_request(Event::Control(b't'), Mode::S6));
        assert!(is_stop_request(Event::Control(b't'), Mode::Runit));
        assert!(!is_stop_request(Event::Control(b'h'), Mode::S6));
        let k = |sig| Action::Kill {
            pid: 7,
            sig,
            group: false,
        };
        assert!(is_stop_signal(&k(libc::SIGTERM), 7));
        assert!(!is_stop_signal(&k(libc::SIGCONT), 7));
        assert!(!is_stop_signal(&k(libc::SIGTERM), 8));
        let t = Action::Signal {
            pid: 7,
            letter: b't',
            sig: libc::SIGTERM,
        };
        assert!(is_stop_signal(&t, 7));
        assert!(!is_stop_signal(&Action::WriteStatus, 7));
    }
}
