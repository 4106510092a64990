//! Start-up steps of the scanner before its loop: where its control directory goes, the
//! container-wide envdir, and the `--init` programs.

use super::*;

/// The container-wide envdir rsvscan creates when `$RSV_ENVDIR` is not set: `env` in the
/// scanner's control directory (`.s6-svscan` of the scan directory, relative to it, or its
/// runtime-directory replacement when the scan directory is read-only).
pub fn container_envdir(ctl_dir: &Path) -> PathBuf {
    ctl_dir.join("env")
}

/// Unless `$RSV_ENVDIR` is set already: creates [`container_envdir`] (mode 0755) and exports
/// its absolute path as `$RSV_ENVDIR` to every child. A failure is one warning; services
/// then run without a container-wide envdir.
pub(super) fn export_envdir(prog: &str, shown: &str, ctl_dir: &Path) {
    if std::env::var_os(crate::svenv::VAR).is_some() {
        return;
    }
    let rel = container_envdir(ctl_dir);
    let made = match fs::DirBuilder::new().mode(0o755).create(&rel) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && rel.is_dir() => Ok(()),
        Err(e) => Err(e),
    };
    let abs = made.and_then(|()| std::env::current_dir().map(|d| d.join(&rel)));
    match abs {
        // SAFETY: rsvscan is single-threaded (signal-hook's flag and pipe handlers start no
        // thread), so nothing reads the environment concurrently.
        Ok(p) => unsafe { std::env::set_var(crate::svenv::VAR, p) },
        Err(e) => crate::diag::warn(
            prog,
            &format!(
                "unable to mkdir {}: {}",
                if rel.is_absolute() {
                    rel.display().to_string()
                } else {
                    format!("{shown}/{}", rel.display())
                },
                errtext(&e)
            ),
        ),
    }
}

/// `--init PROG`: runs each step in order (in the scan directory, stdio inherited, with
/// `$RSV_ENVDIR` set) before any service starts. A step that fails ends rsvscan with its exit
/// code (128+N when killed by signal N; 111 when it cannot be run), before any service starts.
/// SIGTERM, SIGINT or SIGQUIT received meanwhile is passed on to the running step (and, left
/// pending, stops rsvscan afterwards).
pub(super) fn run_init_steps(
    prog: &str,
    steps: &[PathBuf],
    sig_r: &UnixStream,
    flags: &[(i32, Arc<AtomicBool>)],
) {
    for step in steps {
        let status = Command::new(step).spawn().and_then(|mut child| {
            let mut passed_on = false;
            loop {
                if let Some(st) = child.try_wait()? {
                    return Ok(st);
                }
                let stop = flags.iter().any(|(sig, f)| {
                    matches!(*sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
                        && f.load(Ordering::SeqCst)
                });
                if stop && !passed_on {
                    passed_on = true;
                    // SAFETY: kill(2) on our own child, not yet reaped.
                    unsafe {
                        libc::kill(child.id() as i32, libc::SIGTERM);
                    }
                }
                // SIGCHLD (like every caught signal) wakes us through the self-pipe.
                let mut fds = [PollFd::new(
                    std::os::fd::AsFd::as_fd(sig_r),
                    PollFlags::POLLIN,
                )];
                let _ = poll(&mut fds, PollTimeout::from(1000u16));
                let mut b = [0u8; 64];
                while matches!((&*sig_r).read(&mut b), Ok(n) if n > 0) {}
            }
        });
        let code = match status {
            Ok(st) if st.success() => continue,
            Ok(st) => {
                use std::os::unix::process::ExitStatusExt;
                st.code()
                    .or_else(|| st.signal().map(|n| 128 + n))
                    .unwrap_or(EXIT_SYS)
            }
            Err(e) => fatal(
                prog,
                &format!(
                    "unable to run init step {}: {}",
                    step.display(),
                    errtext(&e)
                ),
            ),
        };
        crate::diag::fatal(
            prog,
            code,
            &format!(
                "init step {} failed (exit code {code}): no service started",
                step.display()
            ),
        );
    }
}

/// Where the scanner's lock and control FIFO live: `DIR/.s6-svscan`, or a runtime directory
/// when the scan directory cannot hold them (see [`crate::rundir`]). Hook scripts
/// (`finish`, `crash`, `SIG*`) are always read from `DIR/.s6-svscan`. Returns the directory
/// and how messages name it.
pub(super) fn place_ctl_dir(prog: &str, shown: &str) -> (PathBuf, String) {
    let usual = format!("{}/{CTL_DIR}", shown.trim_end_matches('/'));
    let placed = crate::rundir::place(
        Path::new("."),
        CTL_DIR,
        crate::rundir::Kind::Scan,
        &usual,
        |p| {
            match fs::DirBuilder::new().mode(0o700).create(p) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => {}
                r => r?,
            }
            crate::rundir::lock_probeable(p)
        },
    );
    match placed {
        Ok(pl) => {
            if let Some(w) = &pl.warning {
                crate::diag::warn(prog, w);
            }
            if pl.relocated {
                let s = pl.path.display().to_string();
                (pl.path, s)
            } else {
                (PathBuf::from(CTL_DIR), usual)
            }
        }
        Err(e) => fatal(prog, &format!("unable to mkdir {usual}: {}", errtext(&e))),
    }
}
