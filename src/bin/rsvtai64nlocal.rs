//! rsvtai64nlocal: TAI64N labels to local time (s6-tai64nlocal, or daemontools' tai64nlocal).

use std::os::fd::AsFd;

use rsv::diag::{EXIT_SYS, fatal, invoked_as, usage};
use rsv::tai64nlocal::{FilterError, Options, Style, filter};

const USAGE: &str = "rsvtai64nlocal [ -g ] [ -s | -r ]";

fn errtext(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(c) => nix::errno::Errno::from_raw(c).desc().to_string(),
        None => e.to_string(),
    }
}

pub(crate) fn main() {
    let prog = invoked_as("rsvtai64nlocal");
    let mut opts = Options {
        style: if prog == "tai64nlocal" {
            Style::Daemontools
        } else {
            Style::S6
        },
        utc: false,
    };
    for arg in std::env::args_os().skip(1) {
        let a = arg.as_encoded_bytes();
        if a == b"--" || a.first() != Some(&b'-') || a.len() == 1 {
            // Operands are ignored, as by both reference programs.
            break;
        }
        for &c in &a[1..] {
            match c {
                b'g' => opts.utc = true,
                b's' => opts.style = Style::S6,
                b'r' => opts.style = Style::Daemontools,
                _ => usage(&prog, USAGE),
            }
        }
    }

    // SAFETY: restoring the default SIGPIPE action before any other thread exists, so that
    // `rsvtai64nlocal | head` ends quietly like the reference programs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }

    let dup = |fd: std::io::Result<std::os::fd::OwnedFd>, what: &str| match fd {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => fatal(
            &prog,
            EXIT_SYS,
            &format!("unable to use {what}: {}", errtext(&e)),
        ),
    };
    let mut input = dup(std::io::stdin().as_fd().try_clone_to_owned(), "stdin");
    let mut output = dup(std::io::stdout().as_fd().try_clone_to_owned(), "stdout");
    match filter(&mut input, &mut output, opts) {
        Ok(()) => {}
        Err(FilterError::Read(e)) => fatal(
            &prog,
            EXIT_SYS,
            &format!("unable to read from stdin: {}", errtext(&e)),
        ),
        Err(FilterError::Write(e)) => fatal(
            &prog,
            EXIT_SYS,
            &format!("unable to write to stdout: {}", errtext(&e)),
        ),
    }
}
