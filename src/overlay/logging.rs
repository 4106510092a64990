//! `S6_LOGGING` 1 and 2: a catch-all logger. Everything rsv and the services write on standard
//! output and error goes through a pipe to an `s6-log`-compatible logger (rsvlog) writing
//! `RUN/uncaught-logs` with the directives of `S6_LOGGING_SCRIPT` (default `n20 s1000000 T`).
//! With 1, CMD keeps the container's own standard output and error: its command line goes
//! through the step `cmd-stdio`, which reopens them from the scanner's saved copies
//! (`/proc/PPID/fd/N`) and executes CMD in its own place (no extra process). With 2, CMD is
//! logged too.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::Layout;
use crate::svdir::errtext;

/// The logger's directives when `S6_LOGGING_SCRIPT` is not set (s6-overlay's default).
pub const DEFAULT_SCRIPT: &str = "n20 s1000000 T";

/// The container's own standard output and error, kept (close-on-exec) while they point at
/// the logger.
pub struct Saved {
    pub out: OwnedFd,
    pub err: OwnedFd,
}

fn dup_cloexec(fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor we own; the result is a new descriptor
    // that the OwnedFd then owns.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `n` was just created for us.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Starts the catch-all logger and points our standard output and error at it. Returns the
/// saved originals.
pub fn start(l: &Layout, exe: &Path, script: Option<&str>) -> Result<Saved, String> {
    let dir = l.run.join("uncaught-logs");
    fs::DirBuilder::new()
        .mode(0o750)
        .create(&dir)
        .or_else(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| format!("unable to mkdir {}: {}", dir.display(), errtext(&e)))?;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("unable to create a pipe: {}", e.desc()))?;
    let saved = Saved {
        out: dup_cloexec(1).map_err(|e| format!("unable to dup stdout: {}", errtext(&e)))?,
        err: dup_cloexec(2).map_err(|e| format!("unable to dup stderr: {}", errtext(&e)))?,
    };
    let logger_err =
        dup_cloexec(2).map_err(|e| format!("unable to dup stderr: {}", errtext(&e)))?;
    Command::new(exe)
        .arg0("s6-log")
        .args(script.unwrap_or(DEFAULT_SCRIPT).split_ascii_whitespace())
        .arg(&dir)
        .stdin(Stdio::from(r))
        .stdout(Stdio::null())
        .stderr(Stdio::from(logger_err))
        .process_group(0)
        .spawn()
        .map_err(|e| format!("unable to start the catch-all logger: {}", errtext(&e)))?;
    // SAFETY: dup2 onto our own standard descriptors, from a pipe end we own.
    unsafe {
        libc::dup2(w.as_raw_fd(), 1);
        libc::dup2(w.as_raw_fd(), 2);
    }
    Ok(saved)
}

/// CMD's command line when it must write to the saved originals (`S6_LOGGING=1`).
pub fn cmd_argv(step: &Path, saved: &Saved, cmd: Vec<OsString>) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![
        step.into(),
        "cmd-stdio".into(),
        saved.out.as_raw_fd().to_string().into(),
        saved.err.as_raw_fd().to_string().into(),
    ];
    v.extend(cmd);
    v
}

/// The step `cmd-stdio OUT ERR CMD...`: standard output and error reopened from the parent's
/// descriptors OUT and ERR (left as they are when that fails), then CMD executed.
pub fn cmd_stdio(args: &[OsString]) -> i32 {
    let [out, err, cmd @ ..] = args else {
        return crate::diag::EXIT_USAGE;
    };
    let Some((prog, rest)) = cmd.split_first() else {
        return crate::diag::EXIT_USAGE;
    };
    let ppid = nix::unistd::getppid();
    for (fd, target) in [(out, 1), (err, 2)] {
        let p = format!("/proc/{ppid}/fd/{}", fd.to_string_lossy());
        if let Ok(f) = fs::OpenOptions::new().append(true).open(&p) {
            // SAFETY: dup2 onto our standard descriptors from a file we just opened.
            unsafe {
                libc::dup2(f.as_raw_fd(), target);
            }
        }
    }
    let e = Command::new(prog).args(rest).exec();
    eprintln!(
        "{}: fatal: unable to exec {}: {}",
        super::STEP,
        prog.to_string_lossy(),
        errtext(&e)
    );
    if e.kind() == io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}
