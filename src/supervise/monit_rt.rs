//! The supervisor's side of guards, alerts and stop-tree ([`crate::monit`]).

use super::Sup;
use crate::machine::{Child, Event, Mode};

impl Sup {
    /// [`crate::monit`]: `run` of service `i` started as `pid`. Called just before the machine
    /// hears of it, whose event writes rsv-state (with monit's fields) once.
    pub(super) fn monit_run_started(&mut self, i: usize, pid: i32) {
        let now = self.now().mono_ms;
        let leader =
            (self.opts.mode == Mode::S6 && !self.nosetsid) || self.svcs[i].mon.run_extras().1;
        let s = &mut self.svcs[i];
        s.mon.run_started(pid, leader, now, &s.dir);
    }

    /// [`crate::monit`]: `run` of service `i` was reaped (before the machine hears of it).
    pub(super) fn monit_run_died(&mut self, i: usize, wstat: i32) {
        let now = self.now().mono_ms;
        let mut known: Vec<i32> = Vec::new();
        for s in &self.svcs {
            if let Child::Run(p) | Child::Finish(p) = s.m.child {
                known.push(p);
            }
            known.extend(s.health.c.check);
            known.extend(s.mon.alert_pid());
        }
        let s = &mut self.svcs[i];
        s.mon.run_died(wstat, now, &s.dir, &known);
    }

    /// [`crate::monit`]: after the machine took event `ev`.
    pub(super) fn monit_after(&mut self, i: usize, ev: Event) {
        if let Event::RunDied(_) = ev {
            let now = self.now().mono_ms;
            let s = &mut self.svcs[i];
            let backoff = s.m.pending_start().map(|(_, b)| b);
            s.mon.after_death(backoff, s.m.gave_up, now, &s.dir);
        }
    }

    /// [`crate::monit`]: one of its deadlines passed.
    pub(super) fn monit_timer(&mut self, i: usize) {
        let now = self.now().mono_ms;
        let s = &mut self.svcs[i];
        let m = &s.m;
        let active = m.state == crate::machine::State::Up
            && !m.forced_down
            && !m.paused
            && m.want == crate::machine::Want::Up;
        let (changed, ask) = s.mon.timer(now, active, &s.dir);
        if let (Some(ask), Child::Run(pid)) = (ask, s.m.child) {
            let sig = match ask {
                crate::monit::Ask::Restart => crate::machine::Files::down_signal(&mut s.dir),
                crate::monit::Ask::KillRun => libc::SIGKILL,
            };
            // SAFETY: signalling our own (not yet reaped) run child.
            unsafe {
                libc::kill(pid, sig);
                libc::kill(pid, libc::SIGCONT);
            }
        }
        if changed {
            self.write_ext(i);
        }
    }
}
