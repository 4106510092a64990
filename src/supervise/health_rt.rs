//! The supervisor's side of health checks (`check`, see [`crate::health`]): feeding the
//! checker, spawning the check, reading its output.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;

use super::{Sup, What};
use crate::extstate::{self, ExtState};
use crate::health;
use crate::machine::{Child, Event};
use crate::status;
use crate::svdir::errtext;

impl Sup {
    /// Fills the health fields of `supervise/rsv-state` for service `i`.
    pub(super) fn health_into(&self, i: usize, st: &mut ExtState) {
        let c = &self.svcs[i].health.c;
        st.health = c.health;
        st.health_failures = c.failures;
        st.health_at_ms = c.at_ms;
        st.health_output = c.output.clone();
    }

    /// After a start of `run`: read the check settings (only `check` is looked at when
    /// there is none) and arm the first check.
    pub(super) fn health_run_started(&mut self, i: usize) {
        let cfg = {
            let d = &mut self.svcs[i].dir;
            if health::has_checks(d) {
                let kill_ms = crate::machine::Files::timeout_kill(d);
                health::read_config(d, kill_ms)
            } else {
                None
            }
        };
        self.health_feed(i, health::Input::RunStarted(cfg));
    }

    /// Steps the checker of service `i` and carries out its outputs.
    pub(super) fn health_feed(&mut self, i: usize, input: health::Input) {
        let now = self.now();
        let ctx = {
            let m = &self.svcs[i].m;
            health::Ctx {
                mono_ms: now.mono_ms,
                wall_ms: extstate::unix_ms(now.wall),
                active: m.state == crate::machine::State::Up && !m.forced_down && !m.paused,
                want_up: m.want == crate::machine::Want::Up,
            }
        };
        let before = self.svcs[i].health.c.health;
        let outputs = self.svcs[i].health.c.step(input, ctx);
        let s = &mut self.svcs[i];
        if s.health.c.health != before {
            let c = &s.health.c;
            s.mon
                .health_changed(before, c.health, &c.output, now.mono_ms, &s.dir);
        }
        for o in outputs {
            match o {
                health::Output::SpawnCheck => self.spawn_check(i),
                health::Output::KillCheck(pid) => {
                    // SAFETY: signalling the process group our check child leads (setsid).
                    unsafe { libc::killpg(pid, libc::SIGKILL) };
                }
                health::Output::Ready => self.feed(i, Event::Ready),
                health::Output::Restart | health::Output::KillRun => {
                    if let Child::Run(pid) = self.svcs[i].m.child {
                        let sig = if o == health::Output::Restart {
                            crate::machine::Files::down_signal(&mut self.svcs[i].dir)
                        } else {
                            libc::SIGKILL
                        };
                        // SAFETY: signalling our own (not yet reaped) run child.
                        unsafe {
                            libc::kill(pid, sig);
                            libc::kill(pid, libc::SIGCONT);
                        }
                    }
                }
                health::Output::Changed => {
                    self.write_ext(i);
                    if i == 0 {
                        self.report.tell();
                    }
                }
                health::Output::Warn(msg) => self.svcs[i].dir.warn(&msg),
            }
        }
    }

    /// Starts `./check` for service `i` with stdin on /dev/null and stdout+stderr on a pipe.
    pub(super) fn spawn_check(&mut self, i: usize) {
        let pipe = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from);
        let null = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/null");
        let (r, w, null) = match (pipe, null) {
            (Ok((r, w)), Ok(null)) => (r, w, null),
            (Err(e), _) | (_, Err(e)) => {
                let msg = format!("unable to start check: {}", errtext(&e));
                return self.health_feed(i, health::Input::CheckNotStarted(msg));
            }
        };
        match self.spawn(i, What::Check(null.as_raw_fd(), w.as_raw_fd())) {
            Ok(pid) => {
                let _ = nix::fcntl::fcntl(
                    &r,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                let h = &mut self.svcs[i].health;
                h.out = Some(r);
                h.buf.clear();
                self.health_feed(i, health::Input::CheckStarted(pid));
            }
            Err(e) => {
                let msg = format!("unable to start check: {}", e.desc());
                self.health_feed(i, health::Input::CheckNotStarted(msg));
            }
        }
    }

    /// Reads what the running check wrote (keeping at most [`health::MAX_CAPTURE`] bytes);
    /// closes the pipe at end of file.
    pub(super) fn read_check_output(&mut self, i: usize) {
        let h = &mut self.svcs[i].health;
        let Some(fd) = &h.out else { return };
        let mut buf = [0u8; 1024];
        loop {
            // SAFETY: reading into a stack buffer from a descriptor we own.
            let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r > 0 {
                let room = health::MAX_CAPTURE.saturating_sub(h.buf.len());
                h.buf.extend_from_slice(&buf[..(r as usize).min(room)]);
            } else if r < 0 && Errno::last() == Errno::EINTR {
                continue;
            } else {
                if r == 0 || Errno::last() != Errno::EAGAIN {
                    h.out = None;
                }
                return;
            }
        }
    }

    /// The check of service `i` was reaped: collect what is left of its output and feed the
    /// result.
    pub(super) fn check_reaped(&mut self, i: usize, wstat: i32) {
        self.read_check_output(i);
        let h = &mut self.svcs[i].health;
        h.out = None;
        let output = std::mem::take(&mut h.buf);
        let ended = status::Ended::from_wstat(wstat);
        self.health_feed(i, health::Input::CheckEnded { ended, output });
    }
}
