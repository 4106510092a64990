//! The supervisor's side of sd_notify (`notify-socket`, see [`crate::sdnotify`]).

use super::Sup;
use crate::health;
use crate::machine::{Child, Event};
use crate::sdnotify::rt::Rt as SdRt;

/// sd_notify (`notify-socket`, see [`crate::sdnotify`]): the supervisor's side.
impl Sup {
    /// At a start of `run`: bind, rebind or drop the socket as `notify-socket` now says.
    pub(super) fn sd_refresh(&mut self, i: usize) {
        let s = &mut self.svcs[i];
        let tag = if s.m.is_log { "log" } else { "main" };
        SdRt::refresh(&mut s.sd, &s.dir, tag);
    }

    /// The supervisor's children other than service `i`'s run.
    pub(super) fn sd_others(&self, i: usize) -> Vec<i32> {
        let mut v = Vec::new();
        for (k, s) in self.svcs.iter().enumerate() {
            if k != i && s.m.pid() != 0 {
                v.push(s.m.pid());
            }
            v.extend(s.health.c.check);
        }
        v
    }

    pub(super) fn sd_run_started(&mut self, i: usize) {
        let now = self.now().mono_ms;
        let s = &mut self.svcs[i];
        let Some(r) = &mut s.sd else { return };
        let usec = crate::sdnotify::rt::watchdog_usec(&s.dir);
        let out = r.run_started(usec, now);
        self.sd_outputs(i, out);
    }

    pub(super) fn read_sd(&mut self, i: usize) {
        let run = match self.svcs[i].m.child {
            Child::Run(p) => Some(p),
            _ => None,
        };
        let others = self.sd_others(i);
        let now = self.now().mono_ms;
        let Some(r) = &mut self.svcs[i].sd else {
            return;
        };
        let out = r.read(run, &others, now);
        self.sd_outputs(i, out);
    }

    pub(super) fn sd_timer(&mut self, i: usize) {
        let now = self.now().mono_ms;
        let Some(r) = &mut self.svcs[i].sd else {
            return;
        };
        let out = r.n.step(crate::sdnotify::Input::Timer, now);
        self.sd_outputs(i, out);
    }

    pub(super) fn sd_outputs(&mut self, i: usize, out: Vec<crate::sdnotify::Output>) {
        use crate::sdnotify::Output;
        for o in out {
            match o {
                Output::Ready => {
                    self.feed(i, Event::Ready);
                    self.health_feed(i, health::Input::Ready);
                }
                Output::WatchdogRestart(msg) => {
                    self.svcs[i].dir.warn(&msg);
                    if let Child::Run(pid) = self.svcs[i].m.child {
                        let sig = crate::machine::Files::down_signal(&mut self.svcs[i].dir);
                        self.sd_signal_main(i, pid, sig);
                        // SAFETY: signalling our own (not yet reaped) run child.
                        unsafe {
                            libc::kill(pid, sig);
                            libc::kill(pid, libc::SIGCONT);
                        }
                    }
                }
                Output::Changed => self.write_ext(i),
                Output::Warn(msg) => self.svcs[i].dir.warn(&msg),
            }
        }
    }

    /// `run` (pid) of service `i` was reaped. Returns true when its `MAINPID=` lives on as
    /// our child and has become the service's process (the death is then not the service's).
    pub(super) fn sd_run_died(&mut self, i: usize, pid: i32) -> bool {
        if self.svcs[i].sd.is_none() {
            return false;
        }
        self.read_sd(i);
        let now = self.now().mono_ms;
        let me = std::process::id() as i32;
        let main = self.svcs[i].sd.as_ref().and_then(|r| r.n.main_pid);
        if let Some(main) = main.filter(|&m| m != pid) {
            if crate::sdnotify::socket::parent_of(main) == Some(me) {
                let actions = self.svcs[i].m.follow_main(main);
                for a in actions {
                    self.act(i, a);
                }
                self.write_ext(i);
                return true;
            }
        }
        let Some(r) = &mut self.svcs[i].sd else {
            return false;
        };
        let out = r.n.step(crate::sdnotify::Input::RunStopped, now);
        self.sd_outputs(i, out);
        false
    }

    /// A signal for `run` (pid) also goes to the main process it named, when that differs.
    pub(super) fn sd_signal_main(&self, i: usize, pid: i32, sig: i32) {
        let Some(r) = &self.svcs[i].sd else { return };
        if let Some(main) = r.n.main_pid.filter(|&m| m != pid) {
            // SAFETY: signalling a process checked to be of this service when it was named.
            unsafe { libc::kill(main, sig) };
        }
    }
}
