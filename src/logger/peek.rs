//! Reading stdin without taking the bytes out of the pipe: `tee(2)` duplicates the head of
//! the pipe into a private pipe, from which the copy is read; the bytes leave stdin only
//! when [`Peeker::consume`] is called, after they are on disk. Only when stdin is a pipe.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// The private pipe (and `/dev/null`, where consumed bytes are spliced).
pub struct Peeker {
    r: OwnedFd,
    w: OwnedFd,
    null: Option<File>,
}

/// What one peek found.
pub enum Peeked {
    /// This many bytes copied from the head of the pipe.
    Data(usize),
    /// Nothing there right now.
    Empty,
    /// The pipe is empty and has no writer left.
    Eof,
}

fn check(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl Peeker {
    /// A peeker for fd 0, or None when stdin is not a pipe (or tee is refused).
    pub fn new() -> Option<Peeker> {
        // SAFETY: fstat on fd 0 into a zeroed stat buffer we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: see above.
        if unsafe { libc::fstat(0, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFIFO {
            return None;
        }
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .ok()?;
        // The private pipe must hold as much as stdin can: one peek then sees it all.
        // SAFETY: fcntl F_GETPIPE_SZ / F_SETPIPE_SZ on descriptors we own or hold.
        unsafe {
            let sz = libc::fcntl(0, libc::F_GETPIPE_SZ);
            if sz > 0 {
                libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, sz);
            }
        }
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .ok();
        Some(Peeker { r, w, null })
    }

    /// Copies the head of stdin (at most `buf.len()` bytes) into `buf`, leaving it in stdin.
    pub fn peek(&mut self, buf: &mut [u8]) -> io::Result<Peeked> {
        let n = loop {
            // SAFETY: tee between fd 0 and our pipe's write end; no memory is passed.
            let n = unsafe { libc::tee(0, self.w.as_raw_fd(), buf.len(), libc::SPLICE_F_NONBLOCK) };
            match check(n) {
                Ok(0) => return Ok(Peeked::Eof),
                Ok(n) => break n,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(Peeked::Empty),
                Err(e) => return Err(e),
            }
        };
        let mut got = 0;
        while got < n {
            // SAFETY: reads into the unfilled part of a valid, writable buffer.
            let k = unsafe {
                libc::read(
                    self.r.as_raw_fd(),
                    buf[got..].as_mut_ptr() as *mut libc::c_void,
                    n - got,
                )
            };
            match check(k) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Peeked::Data(got))
    }

    /// Takes exactly `n` bytes out of stdin (they were peeked, so they are there).
    pub fn consume(&mut self, mut n: usize) -> io::Result<()> {
        let mut scratch = [0u8; 8192];
        while n > 0 {
            let k = match &self.null {
                // SAFETY: splice from fd 0 to /dev/null; no memory is passed.
                Some(f) => unsafe {
                    libc::splice(
                        0,
                        std::ptr::null_mut(),
                        f.as_raw_fd(),
                        std::ptr::null_mut(),
                        n,
                        0,
                    )
                },
                // SAFETY: reads into a valid stack buffer of the given length.
                None => unsafe {
                    libc::read(
                        0,
                        scratch.as_mut_ptr() as *mut libc::c_void,
                        n.min(scratch.len()),
                    )
                },
            };
            match check(k) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Ok(k) => n -= k,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && self.null.is_some() => {
                    self.null = None;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Only a partial line waits in the pipe: true when no writer is left (end of input).
    pub fn hung_up(&self) -> bool {
        let mut p = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd we own, no wait.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n > 0 && p.revents & libc::POLLHUP != 0
    }
}
