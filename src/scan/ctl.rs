//! rsvscanctl's side: sending letters to a running scanner's control FIFO.

use super::*;

/// rsvscanctl: writes `letters` to `DIR/.s6-svscan/control` in one write().
/// Returns the exit code (0 sent, 100 not listening, 111 other errors).
pub fn control(prog: &str, dir: &str, letters: &[u8]) -> i32 {
    let p = crate::rundir::scan_ctl_dir(Path::new(dir)).join("control");
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&p);
    // s6-svscanctl 2.11.3.2 prints an empty field before "unable" (compat.md 8.3).
    let colon = if prog == "s6-svscanctl" { ": " } else { "" };
    let not_listening = || {
        let _ = writeln!(
            io::stderr(),
            "{prog}: fatal: {colon}unable to control {dir}: supervisor not listening"
        );
        crate::diag::EXIT_USAGE
    };
    let mut f = match f {
        Ok(f) => f,
        // As s6-svscanctl: an existing scan dir without a listening scanner is "not
        // listening" (100); a scan dir that does not exist is a system error (111).
        Err(e)
            if e.raw_os_error() == Some(libc::ENXIO)
                || (e.raw_os_error() == Some(libc::ENOENT) && Path::new(dir).is_dir()) =>
        {
            return not_listening();
        }
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "{prog}: fatal: unable to control {dir}: {}",
                errtext(&e)
            );
            return EXIT_SYS;
        }
    };
    if letters.is_empty() {
        return 0;
    }
    match f.write(letters) {
        Ok(n) if n == letters.len() => 0,
        Ok(_) => {
            let _ = writeln!(
                io::stderr(),
                "{prog}: fatal: unable to control {dir}: short write"
            );
            EXIT_SYS
        }
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "{prog}: fatal: unable to control {dir}: {}",
                errtext(&e)
            );
            EXIT_SYS
        }
    }
}
