//! Where an overlay start keeps its files: the run directory (`/run`, a tmpfs mounted there,
//! or rsv's runtime directory when neither can be written), its skeleton, and the helpers'
//! links in `RUN/s6/rsv-bin`.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::config::Config;
use super::{RESULTS, SCAN, STEP};
use crate::svdir::errtext;

/// Where things are for one start.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The image root (`/`, or `$RSV_OVERLAY_ROOT`).
    pub root: PathBuf,
    /// The run directory (`ROOT/run`, or the fallback).
    pub run: PathBuf,
    /// The run directory is not `ROOT/run`.
    pub relocated: bool,
}

impl Layout {
    pub fn scan(&self) -> PathBuf {
        self.run.join(SCAN)
    }
    pub fn bin(&self) -> PathBuf {
        self.run.join("s6/rsv-bin")
    }
    pub fn exitcode(&self) -> PathBuf {
        self.run.join(RESULTS).join("exitcode")
    }
}

fn mkdir(p: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().recursive(true).mode(0o755).create(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Tries a tmpfs on `/run` (root with `S6_READ_ONLY_ROOT`, as s6-overlay's preinit does).
fn mount_run_tmpfs() -> bool {
    let (Ok(src), Ok(target), Ok(fstype), Ok(data)) = (
        std::ffi::CString::new("tmpfs"),
        std::ffi::CString::new("/run"),
        std::ffi::CString::new("tmpfs"),
        std::ffi::CString::new("mode=0755"),
    ) else {
        return false;
    };
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
    unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        ) == 0
    }
}

/// Decides the run directory (see the module documentation).
pub fn place_run(prog: &str, root: &Path, cfg: &Config) -> Result<Layout, String> {
    let run = root.join("run");
    let usable = |p: &Path| mkdir(p).is_ok() && crate::rundir::writable(p);
    if usable(&run)
        || (cfg.read_only_root
            && root == Path::new("/")
            && nix::unistd::geteuid().is_root()
            && mount_run_tmpfs()
            && usable(&run))
    {
        return Ok(Layout {
            root: root.to_path_buf(),
            run,
            relocated: false,
        });
    }
    let rt = crate::rundir::runtime_root().map_err(|e| e.to_string())?;
    let alt = rt.join("s6-overlay");
    mkdir(&alt).map_err(|e| format!("unable to mkdir {}: {}", alt.display(), errtext(&e)))?;
    if cfg.shows(1) {
        crate::diag::warn(
            prog,
            &format!(
                "{} is not writable by uid {}: using {} instead (RSV_OVERLAY_RUN names it)",
                run.display(),
                nix::unistd::geteuid(),
                alt.display()
            ),
        );
    }
    Ok(Layout {
        root: root.to_path_buf(),
        run: alt,
        relocated: true,
    })
}

/// Empties what a previous start left and creates the run directory's skeleton.
pub fn prepare_run(l: &Layout) -> io::Result<()> {
    for d in ["s6", SCAN, "uncaught-logs"] {
        match fs::remove_dir_all(l.run.join(d)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    match fs::remove_file(l.exitcode()) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    for d in ["s6", SCAN, RESULTS, "s6/basedir/bin"] {
        mkdir(&l.run.join(d))?;
    }
    // s6-overlay makes /var/run a link to /run; only when nothing is there.
    let vr = l.root.join("var/run");
    if !l.relocated && l.root.join("var").is_dir() && fs::symlink_metadata(&vr).is_err() {
        let _ = std::os::unix::fs::symlink("../run", &vr);
    }
    Ok(())
}

/// The helpers' links in `RUN/s6/rsv-bin`, and `RUN/s6/basedir/bin/halt`.
pub fn make_bin(l: &Layout, exe: &Path) -> io::Result<()> {
    let bin = l.bin();
    mkdir(&bin)?;
    for n in ["with-contenv", "printcontenv", "s6-rc", STEP] {
        std::os::unix::fs::symlink(exe, bin.join(n))?;
    }
    let halt = l.run.join("s6/basedir/bin/halt");
    fs::write(
        &halt,
        format!(
            "#!/bin/sh\nexec {} halt {} {}\n",
            bin.join(STEP).display(),
            l.run.display(),
            l.root.display()
        ),
    )?;
    fs::set_permissions(&halt, fs::Permissions::from_mode(0o755))
}
