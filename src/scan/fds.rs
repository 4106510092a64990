//! Descriptors and new services: rsvscan starts the supervisor of a new service only while
//! enough descriptors are left under its limit (RLIMIT_NOFILE) to also restart the
//! supervisors it already runs and to go on scanning. A new service that does not fit is
//! refused with one warning and tried again every second, quietly, so that it starts once
//! descriptors are free again (a service removed, the limit raised with `prlimit`).
//!
//! What rsvscan holds per service: nothing, except with `--prefix`, where each service
//! without `log/` has two pipes (four descriptors) for as long as its directory exists.
//! Starting a supervisor takes a few more for a moment (the exec-error pipe of the spawn,
//! copies of the prefix pipes' write ends).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Descriptors a spawn takes for a moment: the exec-error pipe, the two write ends passed.
pub const SPAWN: usize = 4;
/// Descriptors a service without `log/` holds under `--prefix` (two pipes).
pub const PREFIX_PIPES: usize = 4;
/// Kept free for what already runs: a supervisor's restart (with its prefix pipes' copies),
/// a scan (the directory, a graph file), a hook script.
pub const RESERVE: usize = 8;

/// How many descriptors must be free to start the supervisor of a new service.
pub fn needed(prefix_pipes: bool) -> usize {
    SPAWN + RESERVE + if prefix_pipes { PREFIX_PIPES } else { 0 }
}

/// Does this error say that no descriptor is left (ours or the system's)?
pub fn exhausted(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// Are at least `n` descriptors free now? Finds out by taking them (copies of `any`, an
/// open descriptor) and letting them go at once.
pub fn room(any: BorrowedFd<'_>, n: usize) -> bool {
    let mut taken = Vec::with_capacity(n);
    while taken.len() < n {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on an open descriptor; the copy is closed below.
        let fd = unsafe { libc::fcntl(any.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            break;
        }
        taken.push(fd);
    }
    let ok = taken.len() == n;
    for fd in taken {
        // SAFETY: closing a copy made just above, owned by nothing else.
        unsafe { libc::close(fd) };
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_pipes_need_more() {
        assert_eq!(needed(false), SPAWN + RESERVE);
        assert_eq!(needed(true), SPAWN + RESERVE + PREFIX_PIPES);
    }

    #[test]
    fn exhaustion_errors() {
        assert!(exhausted(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(exhausted(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(!exhausted(&io::Error::from_raw_os_error(libc::ENOENT)));
    }

    #[test]
    fn room_for_a_few() {
        let f = std::fs::File::open("/").unwrap();
        use std::os::fd::AsFd;
        assert!(room(f.as_fd(), 3));
    }
}
