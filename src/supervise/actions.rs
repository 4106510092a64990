//! Carrying out the machine's actions for one service, and writing what clients read:
//! `supervise/status` (runit or s6 bytes) and `supervise/rsv-state`.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use super::spawn::append;
use super::{EXIT_ESSENTIAL, RunFiles, Sup, What};
use crate::extstate::{self, ExtState};
use crate::machine::{Action, Event, Mode};
use crate::status::{self, DEATH_LEN};
use crate::svdir::errtext;

impl Sup {
    /// The extended state of service `i` (`supervise/rsv-state`), composed from its machine
    /// and its service directory.
    pub(super) fn ext_state(&self, i: usize) -> ExtState {
        let s = &self.svcs[i];
        let m = &s.m;
        let up = m.state == crate::machine::State::Up && !m.forced_down;
        let (next_try_ms, backoff_ms) = match m.pending_start() {
            Some((wall, backoff)) => (extstate::unix_ms(wall), backoff),
            None => (0, 0),
        };
        let mut st = ExtState {
            restarts: m.starts.saturating_sub(1),
            ready: up && (m.ready || s.run_files.plain),
            exits: m.exits.clone(),
            backoff_ms,
            next_try_ms,
            gave_up: m.gave_up,
            essential: s.run_files.essential,
            final_exit: m.final_exit,
            ..Default::default()
        };
        self.health_into(i, &mut st);
        if let Some(r) = &s.sd {
            st.sd_status = r.n.status.clone();
            st.sd_phase = r.n.phase.as_str().to_string();
            st.main_pid = r.n.main_pid.filter(|_| up).unwrap_or(0);
        }
        s.mon.ext_into(&mut st);
        st
    }

    /// Rewrites `supervise/rsv-state` of service `i` if its content changed. Not once the
    /// supervisor has been told to exit (SIGTERM, `x`): the file then keeps the service's
    /// state from before the stop (the status file has the last exit). That spares every
    /// supervisor a file creation during a shutdown, where they all run at once.
    pub(super) fn write_ext(&mut self, i: usize) {
        let s = &self.svcs[i];
        if s.m.exiting() && s.ext_written.is_some() {
            return;
        }
        let st = self.ext_state(i);
        let s = &mut self.svcs[i];
        if s.ext_written.as_ref() == Some(&st) {
            return;
        }
        if let Err(e) = extstate::write(&s.dir.path("supervise"), &st) {
            s.dir.warn(&format!(
                "unable to write {}: {}",
                s.dir.show("supervise/rsv-state"),
                errtext(&e)
            ));
        }
        s.ext_written = Some(st);
    }

    pub(super) fn act(&mut self, i: usize, a: Action) {
        match a {
            Action::SpawnRun => {
                // A missing, not executable or empty run: start it once it is there.
                let run = self.svcs[i].dir.path("run");
                if let Err(why) = self.runwait.gate(i, &run) {
                    if let Some(why) = why {
                        let shown = self.svcs[i].dir.show("run");
                        self.svcs[i].dir.warn(&crate::runwait::message(&shown, why));
                    }
                    return;
                }
                if self.opts.mode == Mode::Runit && self.svcs[i].dir.override_eligible(b'u') {
                    let _ = self.run_control(i, b'u');
                }
                self.sd_refresh(i);
                let now = self.now().mono_ms;
                let s = &mut self.svcs[i];
                s.mon.prepare(&mut s.dir, now);
                match self.spawn(i, What::Run) {
                    Ok(pid) => {
                        let s = &mut self.svcs[i];
                        s.run_files = RunFiles::read(&s.dir, s.m.is_log);
                        // monit first: its pgid then goes into the rsv-state write that
                        // follows RunStarted (one write per start, no spare at start-up).
                        self.monit_run_started(i, pid);
                        self.feed(i, Event::RunStarted(pid));
                        self.health_run_started(i);
                        self.sd_run_started(i);
                    }
                    Err(e) => {
                        let secs = match self.opts.mode {
                            Mode::S6 => 10,
                            Mode::Runit => 1,
                        };
                        self.svcs[i].dir.warn(&format!(
                            "unable to start run: {} \u{2014} retrying in {secs} s",
                            e.desc()
                        ));
                        self.feed(i, Event::RunFailed);
                    }
                }
            }
            Action::SpawnFinish(a1, a2) => {
                let d = &self.svcs[i].dir;
                let present = match self.opts.mode {
                    Mode::Runit => d.finish_readable(),
                    Mode::S6 => d.exists("finish"),
                };
                if !present {
                    self.feed(i, Event::NoFinish);
                    return;
                }
                match self.spawn(i, What::Finish(a1, a2)) {
                    Ok(pid) => self.feed(i, Event::FinishStarted(pid)),
                    Err(e) => {
                        self.svcs[i]
                            .dir
                            .warn(&format!("unable to spawn finish: {}", e.desc()));
                        self.feed(i, Event::FinishFailed)
                    }
                }
            }
            Action::Kill { pid, sig, group } => {
                self.sd_signal_main(i, pid, sig);
                let r = if group {
                    // SAFETY: signalling the process group led by our child.
                    unsafe { libc::killpg(pid, sig) }
                } else {
                    // SAFETY: signalling our own (not yet reaped) child.
                    unsafe { libc::kill(pid, sig) }
                };
                let _ = r;
            }
            Action::Signal { pid, letter, sig } => {
                let handled = self.svcs[i].dir.override_eligible(letter)
                    && self.run_control(i, letter) == Some(0);
                if handled {
                    if letter == b't' {
                        self.feed(i, Event::TermOverridden);
                    }
                } else {
                    self.sd_signal_main(i, pid, sig);
                    // SAFETY: signalling our own (not yet reaped) child.
                    unsafe { libc::kill(pid, sig) };
                }
            }
            Action::Custom(letter) => {
                if self.svcs[i].dir.override_eligible(letter) {
                    let _ = self.run_control(i, letter);
                }
            }
            Action::WriteStatus => self.status_changed(i),
            Action::DeathTally(d) => {
                let s = &self.svcs[i];
                let max = s.dir.max_death_tally();
                let sup_dir = s.dir.path("supervise");
                let path = sup_dir.join("death_tally");
                let len = fs::metadata(&path).map(|m| m.len() as usize);
                let room = matches!(len, Ok(n) if n % DEATH_LEN == 0 && n < max * DEATH_LEN);
                let r = if room {
                    // Append the record in place. A reader sees the old or the new length
                    // (the size grows once the bytes are in), never half a record.
                    append(&path, &d.encode())
                } else {
                    let mut data = fs::read(&path).unwrap_or_default();
                    if data.len() % DEATH_LEN != 0 {
                        data.clear();
                    }
                    data.extend_from_slice(&d.encode());
                    let start = data.len().saturating_sub(max * DEATH_LEN);
                    status::write_atomic(&sup_dir, "death_tally", &data[start..], 0o644)
                };
                if let Err(e) = r {
                    s.dir.warn(&format!(
                        "unable to write {}: {}",
                        s.dir.show("supervise/death_tally"),
                        errtext(&e)
                    ));
                }
            }
            Action::Broadcast(letters) => self.events(i, letters),
            Action::CreateDown => {
                let d = &self.svcs[i].dir;
                if let Err(e) = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(d.path("down"))
                {
                    d.warn(&format!(
                        "unable to create {}: {}",
                        d.show("down"),
                        errtext(&e)
                    ));
                }
            }
            Action::RemoveDown => {
                let d = &self.svcs[i].dir;
                if let Err(e) = fs::remove_file(d.path("down")) {
                    if e.kind() != io::ErrorKind::NotFound {
                        d.warn(&format!(
                            "unable to remove {}: {}",
                            d.show("down"),
                            errtext(&e)
                        ));
                    }
                }
            }
            Action::CloseStdio => {
                if let Ok(f) = OpenOptions::new().read(true).write(true).open("/dev/null") {
                    // SAFETY: replacing our stdin/stdout by /dev/null.
                    unsafe {
                        libc::dup2(f.as_raw_fd(), 0);
                        libc::dup2(f.as_raw_fd(), 1);
                    }
                }
            }
            Action::CloseNotify => self.svcs[i].notify = None,
            Action::Warn(msg) => self.svcs[i].dir.warn(&msg),
            Action::Exit => {
                self.burst_flush();
                self.svcs[i].done = true;
                if i == 0 && self.svcs.len() > 1 && !self.svcs[1].done {
                    // The service is gone: close our pipe ends so the logger sees EOF once
                    // the service's leftovers have closed theirs, then wait for it.
                    self.pipe = None;
                    self.feed(1, Event::Shutdown);
                }
                if self.svcs.iter().all(|s| s.done) {
                    for k in 0..self.svcs.len() {
                        self.write_ext(k);
                    }
                    let now = self.now().mono_ms;
                    for s in &mut self.svcs {
                        s.mon.on_exit(now);
                    }
                    std::process::exit(if self.svcs[0].m.final_exit.is_some() {
                        EXIT_ESSENTIAL
                    } else {
                        0
                    });
                }
            }
        }
    }

    pub(super) fn write_status(&mut self, i: usize) {
        let s = &mut self.svcs[i];
        let dir: PathBuf = s.dir.path("supervise");
        let r = match self.opts.mode {
            Mode::S6 => status::write_atomic(&dir, "status", &s.m.s6_status().encode(), 0o666),
            Mode::Runit => {
                // As runsv: pid, then stat, then status, so that a client that saw the new
                // status also finds the new text files.
                let st = s.m.runit_status();
                let mut r = Ok(());
                if s.pid_written != Some(st.pid as i32) {
                    r = status::write_atomic(&dir, "pid", st.pid_text().as_bytes(), 0o644);
                    s.pid_written = Some(st.pid as i32);
                }
                if r.is_ok() {
                    r = status::write_atomic(
                        &dir,
                        "stat",
                        st.stat_text(s.m.want_exit()).as_bytes(),
                        0o644,
                    );
                }
                if r.is_ok() {
                    r = status::write_atomic(&dir, "status", &st.encode(), 0o644);
                }
                r
            }
        };
        if let Err(e) = r {
            s.dir.warn(&format!(
                "unable to write {}: {}",
                s.dir.show("supervise/status"),
                errtext(&e)
            ));
        }
    }
}
