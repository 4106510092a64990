//! The report pipe between rsvscan and the supervisors of its dependency graph's longruns:
//! rsvscan passes the write end of a pipe in `$RSV_REPORT_FD`, and the supervisor writes one
//! byte on it after each change of its service's state, so that the scanner reads the new
//! state at once instead of polling. Supervisors of other services get no such descriptor.

use std::os::fd::RawFd;

/// The environment variable naming the descriptor.
pub const VAR: &str = "RSV_REPORT_FD";

/// The supervisor's end: nothing when it was not given one.
#[derive(Debug, Default)]
pub struct Reporter(Option<RawFd>);

impl Reporter {
    /// Takes the descriptor named by `$RSV_REPORT_FD` (and removes the variable, so that the
    /// service does not see it); the descriptor is made close-on-exec and non-blocking.
    pub fn from_env() -> Reporter {
        let Some(v) = std::env::var_os(VAR) else {
            return Reporter(None);
        };
        // SAFETY: called at the supervisor's start, before it starts any thread or child.
        unsafe { std::env::remove_var(VAR) };
        let Some(fd) = v.to_str().and_then(|s| s.parse::<RawFd>().ok()) else {
            return Reporter(None);
        };
        // SAFETY: fcntl on a descriptor number; an invalid one just fails with EBADF.
        let ok = unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0
                && libc::fcntl(
                    fd,
                    libc::F_SETFL,
                    libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
                ) == 0
        };
        Reporter(ok.then_some(fd))
    }

    /// Tells the scanner that the state changed. Never blocks: a full pipe already tells it.
    pub fn tell(&self) {
        if let Some(fd) = self.0 {
            // SAFETY: a one-byte write from a static buffer; errors are ignored.
            unsafe {
                libc::write(fd, b"s".as_ptr().cast(), 1);
            }
        }
    }
}
