//! A burst of control bytes (everything one read(2) of a control FIFO returned) is carried
//! out letter by letter, each letter exactly as if it had come alone; only what clients read
//! is held back and written once at the end of the burst: `supervise/status` (with runit's
//! `pid` and `stat`), `supervise/rsv-state`, the event letters (all of them, in order, in one
//! write per listener) and the byte on rsvscan's report pipe. A flood of commands then costs
//! one status write per read instead of one per letter.
//!
//! Order at the flush: status, rsv-state, events, report, so that a client woken by an event
//! letter reads a status that already has every letter before it. Whatever lets another
//! process look (a child started: run, finish, check, a runit control script) and the
//! supervisor's exit flush first.

use std::io::Read;

use super::Sup;
use crate::machine::Event;

/// What is held back for each service ([main] or [main, log]) during a burst.
#[derive(Default)]
pub(super) struct Held {
    /// A burst is being carried out: outputs are held.
    pub(super) on: bool,
    status: [bool; 2],
    ext: [bool; 2],
    events: [Vec<u8>; 2],
    report: bool,
}

/// Bytes taken per read(2) of a control FIFO (one page of stack).
const CHUNK: usize = 4096;
/// At most this many bytes make one burst (a FIFO's default capacity): a writer that never
/// stops cannot keep the supervisor from its children and signals.
const BURST_MAX: usize = 64 * 1024;

impl Sup {
    /// Carries out what service `i`'s control FIFO holds (up to [`BURST_MAX`] bytes), letter
    /// by letter, as one burst.
    pub(super) fn control_burst(&mut self, i: usize) {
        let mut buf = [0u8; CHUNK];
        let mut total = 0;
        self.burst_begin();
        while total < BURST_MAX && !self.svcs[i].done {
            let got = match (&self.svcs[i].ctl).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            for &c in &buf[..got] {
                self.feed(i, Event::Control(c));
            }
            total += got;
            if got < CHUNK {
                break;
            }
        }
        self.burst_end();
    }

    /// Starts holding outputs back (see the module documentation).
    pub(super) fn burst_begin(&mut self) {
        self.held.on = true;
    }

    /// Writes what was held back and stops holding.
    pub(super) fn burst_end(&mut self) {
        self.burst_flush();
        self.held.on = false;
    }

    /// Writes what was held back so far (the burst goes on).
    pub(super) fn burst_flush(&mut self) {
        if !self.held.on {
            return;
        }
        self.held.on = false;
        for i in 0..self.svcs.len().min(2) {
            if std::mem::take(&mut self.held.status[i]) {
                self.write_status(i);
            }
            if std::mem::take(&mut self.held.ext[i]) {
                self.write_ext(i);
            }
            let ev = std::mem::take(&mut self.held.events[i]);
            if !ev.is_empty() {
                crate::fifodir::broadcast(&self.svcs[i].dir.path("event"), &ev);
            }
        }
        if std::mem::take(&mut self.held.report) {
            self.report.tell();
        }
        self.held.on = true;
    }

    /// The status of service `i` changed: written now, or at the end of the burst.
    pub(super) fn status_changed(&mut self, i: usize) {
        if self.held.on {
            self.held.status[i] = true;
        } else {
            self.write_status(i);
        }
    }

    /// Event letters for service `i`'s listeners: sent now, or at the end of the burst.
    pub(super) fn events(&mut self, i: usize, letters: &[u8]) {
        if self.held.on {
            self.held.events[i].extend_from_slice(letters);
        } else {
            crate::fifodir::broadcast(&self.svcs[i].dir.path("event"), letters);
        }
    }

    /// After each step of service `i`'s machine: rsv-state (if it changed) and, for the main
    /// service, the byte on the report pipe; now, or at the end of the burst.
    pub(super) fn stepped(&mut self, i: usize) {
        if self.held.on {
            self.held.ext[i] = true;
            self.held.report |= i == 0;
        } else {
            self.write_ext(i);
            if i == 0 {
                self.report.tell();
            }
        }
    }
}
