//! `rsvscan --prefix`: the output of services without `log/` reaches rsvscan's stdout and
//! stderr as whole lines `NAME | line`, so that `docker logs` tells the services apart and
//! never shows two services' lines mixed.
//!
//! Each such service gets two pipes (one for stdout, one for stderr), created when its
//! supervisor is first started and kept (write ends held here) until the service directory is
//! gone, so that supervisor and service restarts lose nothing. rsvscan is the only reader and
//! the only writer of prefixed lines: it reads without blocking from the poll loop, buffers
//! the partial line of each pipe, and queues complete lines for fd 1 or 2. The queues are
//! written only when poll(2) says the descriptor is writable, in pieces of at most
//! [`PIPE_BUF`] bytes cut at line ends, so a slow reader never blocks the scanner; while a
//! queue holds more than [`QUEUE_LIMIT`] bytes, the pipes feeding it are not read (the
//! services then block in write(2): memory stays bounded).
//!
//! A line longer than [`MAX_LINE`] bytes is cut into pieces of that size, each written as its
//! own prefixed line. A partial last line is completed with a newline when its pipe closes and
//! at rsvscan's stop, where everything left is drained before exiting.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::plan::Id;

/// Longest line copied as one: longer lines are cut into pieces of this many bytes.
pub const MAX_LINE: usize = 16 * 1024;
/// Pending output (per destination) above which the services' pipes are not read.
pub const QUEUE_LIMIT: usize = 64 * 1024;
/// Largest single write(2): atomic on a pipe, and never blocks once poll(2) reported the
/// pipe writable.
pub const PIPE_BUF: usize = 4096;
/// How long the final drain at stop may wait for a blocked stdout/stderr.
pub const DRAIN_BOUND: Duration = Duration::from_secs(3);

/// Output waiting for fd 1 or fd 2.
struct Queue {
    fd: i32,
    buf: Vec<u8>,
    /// The reader is gone (EPIPE or another write error): output is dropped.
    dead: bool,
}

impl Queue {
    fn borrowed(&self) -> BorrowedFd<'static> {
        // SAFETY: fd 1 and fd 2 stay open for the whole life of rsvscan.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }

    fn full(&self) -> bool {
        self.buf.len() >= QUEUE_LIMIT
    }

    fn push_line(&mut self, name: &str, line: &[u8]) {
        if self.dead {
            return;
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b" | ");
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
    }

    /// Is fd writable within `ms` milliseconds?
    fn writable(&self, ms: u16) -> bool {
        let mut fds = [PollFd::new(self.borrowed(), PollFlags::POLLOUT)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => {
                let r = fds[0].revents().unwrap_or(PollFlags::empty());
                if r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
                    // Nobody reads any more: the write below reports it (EPIPE).
                    return true;
                }
                r.contains(PollFlags::POLLOUT)
            }
            _ => false,
        }
    }

    /// Writes as much as the descriptor takes without blocking (`ms`: how long to wait for
    /// it to become writable the first time).
    fn flush(&mut self, ms: u16) {
        let mut wait = ms;
        while !self.buf.is_empty() && !self.dead {
            if !self.writable(wait) {
                break;
            }
            wait = 0;
            let mut n = self.buf.len().min(PIPE_BUF);
            if n < self.buf.len() {
                // Cut at a line end when there is one, so a line shorter than PIPE_BUF is
                // always written by one write(2).
                if let Some(p) = self.buf[..n].iter().rposition(|&b| b == b'\n') {
                    n = p + 1;
                }
            }
            // SAFETY: writing from a valid buffer of at least n bytes to fd 1/2.
            let r = unsafe { libc::write(self.fd, self.buf.as_ptr().cast(), n) };
            if r > 0 {
                self.buf.drain(..r as usize);
            } else if r < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) | Some(libc::EAGAIN) => {}
                    _ => {
                        self.dead = true;
                        self.buf = Vec::new();
                    }
                }
            }
        }
        if self.buf.is_empty() && self.buf.capacity() > 4 * QUEUE_LIMIT {
            self.buf = Vec::new();
        }
    }
}

/// One pipe of one service.
struct Stream {
    id: Id,
    /// 0: stdout, 1: stderr.
    to: usize,
    r: File,
    /// Our copy of the write end: the pipe survives the supervisor's restarts.
    w: Option<OwnedFd>,
    partial: Vec<u8>,
    eof: bool,
}

/// Every prefix pipe of the scanner, with the two output queues.
pub struct LogMux {
    streams: Vec<Stream>,
    names: BTreeMap<Id, String>,
    queues: [Queue; 2],
    buf: Vec<u8>,
}

impl Default for LogMux {
    fn default() -> Self {
        Self::new()
    }
}

fn pipe() -> io::Result<(File, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    nix::fcntl::fcntl(
        &r,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )?;
    Ok((File::from(r), w))
}

impl LogMux {
    pub fn new() -> LogMux {
        LogMux {
            streams: Vec::new(),
            names: BTreeMap::new(),
            queues: [
                Queue {
                    fd: 1,
                    buf: Vec::new(),
                    dead: false,
                },
                Queue {
                    fd: 2,
                    buf: Vec::new(),
                    dead: false,
                },
            ],
            buf: vec![0u8; MAX_LINE],
        }
    }

    /// Copies of the write ends of service `id`'s pipes (stdout, stderr), creating the pipes
    /// the first time.
    pub fn writers(&mut self, id: Id, name: &str) -> io::Result<(OwnedFd, OwnedFd)> {
        self.names.insert(id, name.to_string());
        Ok((self.writer(id, 0)?, self.writer(id, 1)?))
    }

    fn writer(&mut self, id: Id, to: usize) -> io::Result<OwnedFd> {
        let found = self
            .streams
            .iter()
            .find(|s| s.id == id && s.to == to && s.w.is_some());
        if let Some(w) = found.and_then(|s| s.w.as_ref()) {
            return w.try_clone();
        }
        let (r, w) = pipe()?;
        let copy = w.try_clone()?;
        self.streams.push(Stream {
            id,
            to,
            r,
            w: Some(w),
            partial: Vec::new(),
            eof: false,
        });
        Ok(copy)
    }

    /// Follows the scanner's services: `name_of(id)` is the current name of a known service,
    /// `None` once it is forgotten; then its pipes are let go (read until every process
    /// holding them has closed them).
    pub fn sync<'a>(&mut self, name_of: impl Fn(&Id) -> Option<&'a str>) {
        for s in &mut self.streams {
            if s.w.is_some() && name_of(&s.id).is_none() {
                s.w = None;
            }
        }
        for (id, n) in self.names.iter_mut() {
            if let Some(now) = name_of(id) {
                if n != now {
                    *n = now.to_string();
                }
            }
        }
    }

    /// Adds to `fds` what the poll loop must wait for: the pipes that may be read now, and
    /// fd 1/2 while output waits for them.
    pub fn poll_fds<'a>(&'a self, fds: &mut Vec<PollFd<'a>>) {
        for s in &self.streams {
            if !s.eof && !self.queues[s.to].full() {
                fds.push(PollFd::new(s.r.as_fd(), PollFlags::POLLIN));
            }
        }
        for q in &self.queues {
            if !q.buf.is_empty() && !q.dead {
                fds.push(PollFd::new(q.borrowed(), PollFlags::POLLOUT));
            }
        }
    }

    /// Reads what each pipe has (one read per pipe, so no service starves the others) and
    /// writes what fd 1/2 take without blocking. Returns true if any pipe gave data.
    pub fn pump(&mut self) -> bool {
        let mut got = false;
        for i in 0..self.streams.len() {
            got |= self.read_one(i);
        }
        self.streams.retain(|s| !(s.eof && s.w.is_none()));
        let live: std::collections::BTreeSet<Id> = self.streams.iter().map(|s| s.id).collect();
        self.names.retain(|id, _| live.contains(id));
        for q in &mut self.queues {
            q.flush(0);
        }
        got
    }

    fn read_one(&mut self, i: usize) -> bool {
        let s = &mut self.streams[i];
        let q = &mut self.queues[s.to];
        if s.eof || q.full() {
            return false;
        }
        let name = self.names.get(&s.id).map(String::as_str).unwrap_or("?");
        let room = MAX_LINE - s.partial.len().min(MAX_LINE - 1);
        let n = loop {
            match s.r.read(&mut self.buf[..room]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(0) => {
                    // Every writer closed (only once our own copy is let go).
                    if s.w.is_none() {
                        s.eof = true;
                        if !s.partial.is_empty() {
                            q.push_line(name, &s.partial);
                            s.partial.clear();
                        }
                    }
                    return false;
                }
                Ok(n) => break n,
                Err(_) => return false,
            }
        };
        let mut data = &self.buf[..n];
        while let Some(p) = data.iter().position(|&b| b == b'\n') {
            if s.partial.is_empty() {
                q.push_line(name, &data[..p]);
            } else {
                s.partial.extend_from_slice(&data[..p]);
                q.push_line(name, &s.partial);
                s.partial.clear();
            }
            data = &data[p + 1..];
        }
        s.partial.extend_from_slice(data);
        if s.partial.len() >= MAX_LINE {
            q.push_line(name, &s.partial[..MAX_LINE]);
            s.partial.drain(..MAX_LINE);
        }
        true
    }

    /// At stop: lets go of every pipe, reads what is left, completes partial lines and writes
    /// everything, waiting at most [`DRAIN_BOUND`] for a blocked stdout/stderr.
    pub fn drain(&mut self) {
        for s in &mut self.streams {
            s.w = None;
        }
        let end = Instant::now() + DRAIN_BOUND;
        loop {
            let got = self.pump();
            let pending = self.queues.iter().any(|q| !q.buf.is_empty() && !q.dead);
            if !got && !pending {
                break;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if pending {
                let ms = left.as_millis().min(100) as u16;
                for q in &mut self.queues {
                    q.flush(ms);
                }
            }
        }
        // Pipes still held open by leftover processes: what they had is read; complete the
        // partial lines.
        for s in &mut self.streams {
            if !s.partial.is_empty() {
                let name = self.names.get(&s.id).map(String::as_str).unwrap_or("?");
                self.queues[s.to].push_line(name, &s.partial);
                s.partial.clear();
            }
        }
        let left = end.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(u16::MAX as u128) as u16;
        for q in &mut self.queues {
            q.flush(ms);
        }
    }
}
