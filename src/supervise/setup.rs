//! Creating `supervise/` and `event/` (or placing them in a runtime directory) and the
//! control FIFOs, at start-up.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::Mode as FileMode;

use super::fatal;
use crate::svdir::{SvDir, errtext};

/// Creates `path` as a directory with `mode`, following a (possibly dangling) symlink and
/// creating its target (relative to the link's directory) when missing.
pub(super) fn ensure_dir_follow(path: &Path, mode: u32, fifodir: bool) -> io::Result<()> {
    let target = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            if fs::metadata(path).is_ok() {
                return Ok(());
            }
            let t = fs::read_link(path)?;
            let t = match path.parent() {
                Some(p) if t.is_relative() => p.join(t),
                _ => t,
            };
            // Unlike runsv (one level), the target's parents are created too, so that a
            // `supervise -> /run/...` link shipped in an image works on an empty tmpfs.
            if let Some(p) = t.parent() {
                let _ = fs::DirBuilder::new().recursive(true).mode(0o755).create(p);
            }
            t
        }
        _ => path.to_path_buf(),
    };
    if fifodir {
        return crate::fifodir::ensure_dir(&target);
    }
    match fs::DirBuilder::new().mode(mode).create(&target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && target.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Decides where `event/` and `supervise/` of this service live (in the service directory,
/// or in a runtime directory when it cannot hold them, see [`crate::rundir`]) and creates them.
pub(super) fn place_state(prog: &str, dir: &mut SvDir, is_log: bool) {
    use crate::rundir::{Kind, lock_probeable, place, place_elsewhere};
    let base = Path::new(if is_log { "log" } else { "." });
    let mut moved = false;
    for (entry, mode, fifodir) in [("supervise", 0o700, false), ("event", 0o3730, true)] {
        let shown = dir.show(entry);
        let create = |p: &Path| {
            ensure_dir_follow(p, mode, fifodir)?;
            lock_probeable(p)
        };
        // event/ follows supervise/ into the runtime directory.
        let placed = if moved {
            place_elsewhere(base, entry, Kind::Sv, &shown, "kept with supervise", create)
        } else {
            place(base, entry, Kind::Sv, &shown, create)
        };
        match placed {
            Ok(pl) => {
                if let Some(w) = &pl.warning {
                    dir.warn(w);
                }
                if pl.relocated {
                    moved = true;
                    dir.relocate(entry, pl.path);
                }
            }
            Err(e) => fatal(prog, &format!("unable to create {shown}: {}", errtext(&e))),
        }
    }
}

/// With the lock held: removes what an unclean stop left that would get in the way
/// (`*.new` temporary files; FIFOs of another uid that we cannot open).
pub(super) fn clean_stale(dir: &SvDir) {
    let sup = dir.path("supervise");
    crate::rundir::sweep_temp(&sup);
    for f in ["control", "ok"] {
        crate::rundir::replace_if_denied(&sup, f);
    }
}

/// mkfifo if missing; an existing non-FIFO is an error naming the path.
pub(super) fn ensure_fifo(path: &Path, shown: &str, prog: &str) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_fifo() => {}
        Ok(_) => fatal(prog, &format!("{shown} exists but is not a fifo")),
        Err(_) => {
            if let Err(e) = nix::unistd::mkfifo(path, FileMode::from_bits_truncate(0o600)) {
                if e != Errno::EEXIST {
                    fatal(prog, &format!("unable to mkfifo {shown}: {}", e.desc()));
                }
            }
        }
    }
}

pub(super) fn open_fifo(path: &Path, shown: &str, prog: &str, write: bool) -> File {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .unwrap_or_else(|e| fatal(prog, &format!("unable to open {shown}: {}", errtext(&e))))
}
