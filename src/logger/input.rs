//! The main loop shared by both personalities: poll stdin and a signal pipe, read large
//! chunks, cut them into lines with memchr, hand the lines to the personality, write the
//! output once per chunk, stop reading while output is stuck on an error.
//!
//! When stdin is a pipe, a chunk leaves the pipe only after its output is on disk: it is
//! peeked ([`super::peek`]), its lines handed over, an intent record written in every log
//! directory ([`super::intent`]), the output written, and then exactly the bytes handed over
//! are consumed. A partial line at the end of a chunk stays in the pipe. At start-up a chunk
//! interrupted by a kill is redone from the records: only its output not yet on disk is
//! written.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::intent;
use super::logdir::Logdir;
use super::peek::{Peeked, Peeker};
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
    /// The open log directories (for the exactly-once protocol).
    fn logdirs(&mut self) -> Vec<&mut Logdir> {
        Vec::new()
    }
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

    /// Hands over carried bytes as the piece they were when more input followed them.
    fn flush_piece<H: Handler>(&mut self, h: &mut H, now: Now) {
        if !self.carry.is_empty() {
            let c = std::mem::take(&mut self.carry);
            self.emit(h, &c, self.cut.split > 0, now);
            self.carry = c;
            self.carry.clear();
        }
    }
}

/// Redoes the chunk a killed predecessor had not finished, if its bytes are still at the head
/// of the pipe; otherwise forgets the records. Returns the bytes to consume once flushed.
fn redo<H: Handler>(h: &mut H, p: &mut Peeker, lines: &mut Lines, buf: &mut [u8]) -> Option<usize> {
    let rec = h
        .logdirs()
        .iter()
        .filter_map(|l| l.recovered())
        .map(|x| x.0)
        .find(|r| r.active)?;
    let n = rec.in_len as usize;
    let same = n > 0
        && n <= buf.len()
        && matches!(p.peek(&mut buf[..n]), Ok(Peeked::Data(k)) if k == n)
        && intent::hash(&buf[..n]) == rec.hash;
    if !same {
        for l in h.logdirs() {
            l.end_chunk();
        }
        return None;
    }
    for l in h.logdirs() {
        let skip = l
            .recovered()
            .filter(|x| x.0.hash == rec.hash && x.0.in_len == rec.in_len)
            .map(|x| x.1)
            .unwrap_or(0);
        l.set_skip(skip);
    }
    lines.carry.clear();
    lines.mid = rec.mid;
    lines.chunk(h, &buf[..n], rec.now);
    lines.flush_piece(h, rec.now);
    for l in h.logdirs() {
        l.begin_chunk(rec.in_len, rec.hash, rec.now, rec.mid);
    }
    Some(n)
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

/// How long to wait for the rest of a line when only its beginning is in the pipe.
const STARVE: Duration = Duration::from_millis(10);
const STARVE_MIN: Duration = Duration::from_micros(20);
/// A line that fills this much of the pipe without ending is not waited for in it.
const GIANT: usize = 1 << 15;

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
    // Exactly-once input (stdin is a pipe): the chunk handed over and not yet consumed.
    let mut peeker = Peeker::new();
    let mut inflight: Option<usize> = None;
    // Only part of a line waits in the pipe: poll again a little later.
    let mut starve = false;
    let mut starve_wait = STARVE_MIN;
    // The current line was taken out of the pipe before its end (see below): read it to its
    // end before peeking again.
    let mut hold = false;
    match peeker.as_mut() {
        Some(p) => inflight = redo(h, p, &mut lines, &mut buf),
        None => {
            for l in h.logdirs() {
                l.end_chunk();
            }
        }
    }
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
        if ok {
            if let (Some(n), Some(p)) = (inflight, peeker.as_mut()) {
                if let Err(e) = p.consume(n) {
                    eprintln!("{prog}: warning: unable to read stdin: {e}");
                    code = 111;
                    break;
                }
                inflight = None;
                for l in h.logdirs() {
                    l.end_chunk();
                }
            }
        }
        if stopping && !lines.partial() && inflight.is_none() {
            // Like the references, finish a line whose beginning is already here: take it
            // in and read the rest byte-wise. Whole lines stay in the pipe for the next one.
            let head = match peeker.as_mut().map(|p| p.peek(&mut buf)) {
                Some(Ok(Peeked::Data(k))) if find_nl(&buf[..k]).is_none() => k,
                _ => 0,
            };
            if head == 0 {
                break;
            }
            peeker = None;
            match read_fd(0, &mut buf[..head]) {
                Ok(n) if n > 0 => lines.chunk(h, &buf[..n], Now::read()),
                _ => break,
            }
            continue;
        }
        let now = Instant::now();
        let mut timeout: Option<Duration> = h.deadline().map(|d| d.saturating_duration_since(now));
        if !ok && timeout.is_none() {
            timeout = Some(Duration::from_millis(100));
        }
        if starve {
            // The wait was taken already: look at signals, then peek again.
            timeout = Some(Duration::ZERO);
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
        if ok && !starve {
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
            && !starve
            && fds
                .get(1)
                .and_then(|f| f.revents())
                .map(|r| !r.is_empty())
                .unwrap_or(false);
        drop(fds);
        let starved = std::mem::replace(&mut starve, false);
        if sig_ready {
            let mut junk = [0u8; 64];
            let _ = read_fd(sig.pipe_r.as_raw_fd(), &mut junk);
        }
        h.tick(Instant::now());
        if !(in_ready || (starved && ok)) {
            continue;
        }
        if let (Some(p), true) = (peeker.as_mut(), hold) {
            match p.peek(&mut buf) {
                Ok(Peeked::Data(k)) => {
                    // Exactly up to the end of the held line.
                    let n = find_nl(&buf[..k]).map_or(k, |i| i + 1);
                    if let Err(e) = p.consume(n) {
                        eprintln!("{prog}: warning: unable to read stdin: {e}");
                        code = 111;
                        break;
                    }
                    lines.chunk(h, &buf[..n], Now::read());
                    hold = lines.partial();
                }
                Ok(Peeked::Empty) => {}
                Ok(Peeked::Eof) => break,
                Err(e) => {
                    eprintln!("{prog}: warning: unable to read stdin: {e}");
                    code = 111;
                    break;
                }
            }
            continue;
        }
        if let Some(p) = peeker.as_mut() {
            match p.peek(&mut buf) {
                Ok(Peeked::Data(k)) => {
                    let now = Now::read();
                    let mid = lines.mid;
                    lines.carry.clear();
                    lines.chunk(h, &buf[..k], now);
                    let used = k - lines.carry.len();
                    lines.carry.clear();
                    if used == 0 {
                        if p.hung_up() {
                            // The writer is gone: read the rest the plain way.
                            peeker = None;
                        } else if k >= GIANT || starve_wait >= STARVE {
                            // A line too long to wait for in the pipe, or a writer pausing
                            // in the middle of a line: take that line in (it is in memory
                            // until its end is written), then peek again. Polling for the
                            // rest would wake the logger up all the time.
                            hold = true;
                            starve_wait = STARVE_MIN;
                        } else {
                            // Most often the writer is filling the room the last consume
                            // made: look again very soon, then less and less often.
                            std::thread::sleep(starve_wait);
                            starve_wait = (starve_wait * 2).min(STARVE);
                            starve = true;
                        }
                        continue;
                    }
                    starve_wait = STARVE_MIN;
                    let hash = intent::hash(&buf[..used]);
                    for l in h.logdirs() {
                        l.begin_chunk(used as u64, hash, now, mid);
                    }
                    inflight = Some(used);
                }
                Ok(Peeked::Empty) => {}
                Ok(Peeked::Eof) => break,
                Err(e) => {
                    eprintln!("{prog}: warning: unable to read stdin: {e}");
                    code = 111;
                    break;
                }
            }
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
