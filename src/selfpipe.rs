//! Catching signals: each caught signal sets its flag and writes a byte to one self-pipe (a
//! socket pair), whose read end a poll loop waits on. One write end serves every signal, so
//! catching twenty signals costs two descriptors, not one per signal.

use std::io;
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The read end and one flag per caught signal, in the order given.
pub struct Caught {
    pub r: UnixStream,
    pub flags: Vec<(i32, Arc<AtomicBool>)>,
}

/// Catches `sigs`. The write end stays open for the life of the process (the handlers may
/// run until it exits).
pub fn catch(sigs: &[i32]) -> io::Result<Caught> {
    let (r, w) = UnixStream::pair()?;
    r.set_nonblocking(true)?;
    w.set_nonblocking(true)?;
    let wfd = w.into_raw_fd();
    let mut flags = Vec::with_capacity(sigs.len());
    for &sig in sigs {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let action = move || {
            f.store(true, Ordering::SeqCst);
            // SAFETY: send(2) is async-signal-safe; one byte from a static buffer, never
            // blocking (a full socket already wakes the reader), on a descriptor never closed.
            unsafe {
                libc::send(wfd, b"s".as_ptr().cast(), 1, libc::MSG_DONTWAIT);
            }
        };
        // SAFETY: the action only stores to an atomic and calls send(2), both
        // async-signal-safe; signal-hook keeps errno intact around it.
        unsafe { signal_hook::low_level::register(sig, action) }?;
        flags.push((sig, flag));
    }
    Ok(Caught { r, flags })
}
