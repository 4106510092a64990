//! The main loop shared by both personalities: poll stdin and a signal pipe, read large
//! chunks, cut them into lines with memchr, hand the lines to the personality, write the
//! output once per chunk, stop reading while output is stuck on an error.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::stamp::Now;

/// What a personality does with lines and events.
pub trait Handler {
    /// A piece of a line (without its newline). `start`: first piece of the line; `end`: the
    /// line ends here (a newline follows, or is supplied).
    fn line(&mut self, data: &[u8], start: bool, end: bool, now: Now);
    /// Writes queued output; returns false when some output is stuck (input must pause).
    fn flush(&mut self) -> bool;
    /// The next time `tick` must run (retries, age rotation).
    fn deadline(&self) -> Option<Instant>;
    fn tick(&mut self, now: Instant);
    /// SIGALRM.
    fn alarm(&mut self);
    /// SIGHUP; true when the logger must exit (s6-log).
    fn hup(&mut self) -> bool;
    /// End: write everything (retrying as needed) and close cleanly.
    fn finish(&mut self);
}

/// How input is cut into lines.
#[derive(Clone, Copy, Debug)]
pub struct Cutting {
    /// s6-log `-l`: a line longer than this becomes several lines (0: never).
    pub split: usize,
    /// Without `split`, a line is handed over in pieces of at most this size.
    pub piece: usize,
    /// s6-log `-p`: SIGTERM is ignored.
    pub ignore_term: bool,
}

struct Signals {
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
    alrm: Arc<AtomicBool>,
    pipe_r: OwnedFd,
}

fn install() -> io::Result<Signals> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
        .map_err(io::Error::from)?;
    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    let alrm = Arc::new(AtomicBool::new(false));
    for (sig, flag) in [
        (libc::SIGTERM, &term),
        (libc::SIGHUP, &hup),
        (libc::SIGALRM, &alrm),
    ] {
        signal_hook::flag::register(sig, Arc::clone(flag))?;
        signal_hook::low_level::pipe::register(sig, w.try_clone()?)?;
    }
    // A processor's exit is an event too: it wakes the loop, which collects the processor and
    // performs a rotation that was postponed for it.
    signal_hook::low_level::pipe::register(libc::SIGCHLD, w.try_clone()?)?;
    // A full disk reported as EFBIG (RLIMIT_FSIZE) must be an error, not a kill; a closed
    // stdout must be an error for the `1` action.
    // SAFETY: setting the disposition to SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    drop(w);
    Ok(Signals {
        term,
        hup,
        alrm,
        pipe_r: r,
    })
}

fn find_nl(b: &[u8]) -> Option<usize> {
    if b.is_empty() {
        return None;
    }
    // SAFETY: memchr reads at most b.len() bytes from a valid slice.
    let p = unsafe { libc::memchr(b.as_ptr() as *const libc::c_void, b'\n' as i32, b.len()) };
    if p.is_null() {
        None
    } else {
        Some(p as usize - b.as_ptr() as usize)
    }
}

/// Line assembly across reads.
struct Lines {
    carry: Vec<u8>,
    /// A piece of the current line was already handed over.
    mid: bool,
    cut: Cutting,
}

impl Lines {
    fn emit<H: Handler>(&mut self, h: &mut H, data: &[u8], end: bool, now: Now) {
        h.line(data, !self.mid, end, now);
        self.mid = !end;
    }

    /// More bytes of the current line; `end`: the newline follows them.
    /// Invariant: `carry` never holds more than `lim` bytes.
    fn feed<H: Handler>(&mut self, h: &mut H, mut data: &[u8], end: bool, now: Now) {
        let whole = self.cut.split > 0;
        let lim = if whole {
            self.cut.split
        } else {
            self.cut.piece
        };
        if !self.carry.is_empty() {
            let take = data.len().min(lim - self.carry.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if data.is_empty() {
                if end {
                    let c = std::mem::take(&mut self.carry);
                    self.emit(h, &c, true, now);
                    self.carry = c;
                    self.carry.clear();
                }
                return;
            }
            // More follows: the carried bytes are a full piece.
            let c = std::mem::take(&mut self.carry);
            self.emit(h, &c, whole, now);
            self.carry = c;
            self.carry.clear();
        }
        while data.len() > lim {
            self.emit(h, &data[..lim], whole, now);
            data = &data[lim..];
        }
        if end {
            self.emit(h, data, true, now);
        } else {
            self.carry.extend_from_slice(data);
        }
    }

    fn chunk<H: Handler>(&mut self, h: &mut H, mut buf: &[u8], now: Now) {
        while let Some(i) = find_nl(buf) {
            self.feed(h, &buf[..i], true, now);
            buf = &buf[i + 1..];
        }
        if !buf.is_empty() {
            self.feed(h, buf, false, now);
        }
    }

    fn partial(&self) -> bool {
        !self.carry.is_empty() || self.mid
    }
}

fn read_fd(fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: reads into a valid, writable buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Err(io::Error::from(io::ErrorKind::WouldBlock)),
            _ => return Err(e),
        }
    }
}

/// Runs until end of input or a stopping signal, then finishes the handler. Returns the
/// exit code (0, or 111 when stdin could not be read).
pub fn run<H: Handler>(h: &mut H, cut: Cutting, prog: &str) -> i32 {
    let sig = match install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{prog}: fatal: unable to install signal handlers: {e}");
            return 111;
        }
    };
    let mut buf = vec![0u8; 1 << 17];
    let mut lines = Lines {
        carry: Vec::new(),
        mid: false,
        cut: Cutting {
            piece: cut.piece.max(1),
            ..cut
        },
    };
    let mut stopping = false;
    let mut code = 0;
    loop {
        if sig.alrm.swap(false, Ordering::SeqCst) {
            h.alarm();
        }
        if sig.hup.swap(false, Ordering::SeqCst) && h.hup() {
            stopping = true;
        }
        if sig.term.swap(false, Ordering::SeqCst) && !cut.ignore_term {
            stopping = true;
        }
        let ok = h.flush();
        if stopping && !lines.partial() {
            break;
        }
        let now = Instant::now();
        let mut timeout: Option<Duration> = h.deadline().map(|d| d.saturating_duration_since(now));
        if !ok && timeout.is_none() {
            timeout = Some(Duration::from_millis(100));
        }
        let ms = match timeout {
            None => -1,
            Some(d) => d.as_millis().min(i32::MAX as u128) as i32,
        };
        // SAFETY: fd 0 stays open for the life of the process.
        let stdin = unsafe { BorrowedFd::borrow_raw(0) };
        let mut fds = vec![nix::poll::PollFd::new(
            sig.pipe_r.as_fd_ref(),
            nix::poll::PollFlags::POLLIN,
        )];
        if ok {
            fds.push(nix::poll::PollFd::new(stdin, nix::poll::PollFlags::POLLIN));
        }
        let pt = if ms < 0 {
            nix::poll::PollTimeout::NONE
        } else {
            nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX)
        };
        match nix::poll::poll(&mut fds, pt) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("{prog}: fatal: unable to poll: {e}");
                code = 111;
                break;
            }
        }
        let sig_ready = fds[0].revents().map(|r| !r.is_empty()).unwrap_or(false);
        let in_ready = ok
            && fds
                .get(1)
                .and_then(|f| f.revents())
                .map(|r| !r.is_empty())
                .unwrap_or(false);
        drop(fds);
        if sig_ready {
            let mut junk = [0u8; 64];
            let _ = read_fd(sig.pipe_r.as_raw_fd(), &mut junk);
        }
        h.tick(Instant::now());
        if !in_ready {
            continue;
        }
        // Once stopping, read byte-wise to the end of the current line, like the references.
        let want = if stopping { 1 } else { buf.len() };
        match read_fd(0, &mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => {
                let now = Now::read();
                lines.chunk(h, &buf[..n], now);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                eprintln!("{prog}: warning: unable to read stdin: {e}");
                code = 111;
                break;
            }
        }
    }
    // A last line without newline is kept, newline-terminated: no line is lost.
    if lines.partial() {
        let now = Now::read();
        let c = std::mem::take(&mut lines.carry);
        lines.emit(h, &c, true, now);
    }
    h.finish();
    code
}

trait AsFdRef {
    fn as_fd_ref(&self) -> BorrowedFd<'_>;
}
impl AsFdRef for OwnedFd {
    fn as_fd_ref(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.as_fd()
    }
}
