//! Locks and liveness probes on `supervise/`.
//!
//! runit's runsv holds `flock(LOCK_EX)` on `supervise/lock` and keeps `supervise/ok` open for
//! reading; s6-supervise holds an fcntl write lock on `supervise/lock`. The two lock kinds do not
//! exclude each other, so rsv takes both, and its probes accept either.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};

fn whole_file_lock(kind: i32) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it (flock or fcntl).
    Busy,
    Io(io::Error),
}

/// [`take_both`], except that a lock file we may not open (left by a previous run under
/// another uid) is replaced, unless some process holds it ([`LockError::Busy`] then).
pub fn take_both_or_replace(path: &Path) -> Result<File, LockError> {
    match take_both(path) {
        Err(LockError::Io(e)) if crate::svdir::is_denied(&e) => {
            if lock_held(path) {
                return Err(LockError::Busy);
            }
            let _ = std::fs::remove_file(path);
            take_both(path)
        }
        r => r,
    }
}

/// Is the lock file `path` held by some supervisor (flock or fcntl)? Unknown counts as held.
pub fn lock_held(path: &Path) -> bool {
    fcntl_lock_held(path).unwrap_or(true) || flock_held(path).unwrap_or(true)
}

/// Creates (mode 0644 as s6 does) or opens `path` and takes both a non-blocking exclusive
/// `flock` and a non-blocking fcntl write lock on it. The locks live as long as the file.
pub fn take_both(path: &Path) -> Result<File, LockError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(LockError::Io)?;
    // flock: Flock wrappers would unlock on drop; use the raw call and keep the File.
    #[allow(deprecated)]
    match nix::fcntl::flock(f.as_raw_fd(), nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(()) => {}
        Err(Errno::EWOULDBLOCK) => return Err(LockError::Busy),
        Err(e) => return Err(LockError::Io(e.into())),
    }
    let fl = whole_file_lock(libc::F_WRLCK);
    match fcntl(&f, FcntlArg::F_SETLK(&fl)) {
        Ok(_) => Ok(f),
        Err(Errno::EAGAIN) | Err(Errno::EACCES) => Err(LockError::Busy),
        Err(e) => Err(LockError::Io(e.into())),
    }
}

/// s6-svok's probe: is an fcntl lock held on `path` by another process?
/// A missing file is `Ok(false)`.
pub fn fcntl_lock_held(path: &Path) -> io::Result<bool> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut fl = whole_file_lock(libc::F_RDLCK);
    fcntl(&f, FcntlArg::F_GETLK(&mut fl)).map_err(io::Error::from)?;
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// Is a `flock` held on `path` by another open file? (Probed by trying a shared lock.)
pub fn flock_held(path: &Path) -> io::Result<bool> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    #[allow(deprecated)]
    match nix::fcntl::flock(f.as_raw_fd(), nix::fcntl::FlockArg::LockSharedNonblock) {
        Ok(()) => Ok(false), // dropped with f
        Err(Errno::EWOULDBLOCK) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// runit's probe: can `supervise/ok` be opened for writing without blocking?
/// `Ok(false)` when no reader (ENXIO); other errors are returned (e.g. NotFound).
pub fn ok_fifo_alive(path: &Path) -> io::Result<bool> {
    match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Is some supervisor (rsupervise, runsv or s6-supervise) holding the `supervise/` directory?
pub fn supervised(supervise_dir: &Path) -> io::Result<bool> {
    let lock = supervise_dir.join("lock");
    if fcntl_lock_held(&lock)? || flock_held(&lock)? {
        return Ok(true);
    }
    match ok_fifo_alive(&supervise_dir.join("ok")) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_locks_exclude_a_second_taker_in_another_process() {
        let dir = std::env::temp_dir().join(format!("rsv-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("lock");
        let held = take_both(&p).unwrap();
        // fcntl locks are per process, so probe from a child: flock(1) is not assumed
        // installed; the probe functions open new descriptions, which flock sees.
        assert!(flock_held(&p).unwrap());
        drop(held);
        assert!(!flock_held(&p).unwrap());
        assert!(!fcntl_lock_held(&dir.join("missing")).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
