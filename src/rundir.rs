//! Where run-time state lives when a service directory (or scan directory) cannot hold it.
//!
//! A service directory normally keeps its state in `SD/supervise/` and `SD/event/`, a scan
//! directory in `DIR/.s6-svscan/`. When that is impossible (read-only root filesystem, a
//! directory owned by root while we run as an unprivileged user, a stale `supervise/` left by
//! a root run that we cannot write), the state goes to a *runtime directory*:
//!
//! ```text
//! <runtime>/sv/<canonical SD>/supervise      <runtime>/sv/<canonical SD>/event
//! <runtime>/scan/<canonical DIR>/.s6-svscan
//! ```
//!
//! `<runtime>` is the first usable of: `$RSV_RUNDIR`, `$XDG_RUNTIME_DIR/rsv`, `/run/rsv`,
//! `/tmp/rsv-$EUID` (each must be an absolute path; "usable" = an existing directory we can
//! write, or one we can create; `/tmp/rsv-$EUID` must moreover be a real directory owned by us).
//!
//! Clients find the state with [`supervise_dir`] and [`event_dir`]: `SD/supervise` when it
//! exists, otherwise the same location in the candidates above (a live one, whose lock is
//! held, is preferred over a stale one). Callers that are root also look in `/tmp/rsv-N` for
//! every uid N, so that root can inspect a tree run by an unprivileged user. Everything under
//! `$RSV_RUNDIR` is believed (the user named it); elsewhere a runtime entry is believed only if
//! it is owned by the caller, by root, or by the owner of the runtime directory it is in (for
//! `/tmp/rsv-N`: only if that directory is a real directory owned by N).
//!
//! runit's `sv` and s6's tools know nothing of this search: for them, ship a symlink
//! `SD/supervise -> /run/...` in the image (the Debian way); rsv's supervisor follows it and
//! creates the missing target (with its parents), and everyone finds the state through it.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// Environment variable naming the runtime directory (first candidate).
pub const ENV_RUNDIR: &str = "RSV_RUNDIR";

/// Which tree of the runtime directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Service directories: `<runtime>/sv/...`.
    Sv,
    /// Scan directories: `<runtime>/scan/...`.
    Scan,
}

impl Kind {
    fn sub(self) -> &'static str {
        match self {
            Kind::Sv => "sv",
            Kind::Scan => "scan",
        }
    }
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// One runtime-directory candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Root {
    path: PathBuf,
    /// `Some(uid)` for `/tmp/rsv-UID`: must be a real directory owned by `uid`.
    tmp_uid: Option<u32>,
    /// Named by the user ($RSV_RUNDIR): whatever is in it is believed.
    trusted: bool,
}

fn env_abs(name: &str) -> Option<PathBuf> {
    let v = std::env::var_os(name)?;
    let p = PathBuf::from(v);
    p.is_absolute().then_some(p)
}

/// The candidates in search order, for the current environment and effective uid.
fn roots() -> Vec<Root> {
    let mut v = Vec::new();
    let mut push = |path: PathBuf, tmp_uid: Option<u32>, trusted: bool| {
        if !v.iter().any(|r: &Root| r.path == path) {
            v.push(Root {
                path,
                tmp_uid,
                trusted,
            });
        }
    };
    if let Some(p) = env_abs(ENV_RUNDIR) {
        push(p, None, true);
    }
    if let Some(p) = env_abs("XDG_RUNTIME_DIR") {
        push(p.join("rsv"), None, false);
    }
    push(PathBuf::from("/run/rsv"), None, false);
    let me = euid();
    push(PathBuf::from(format!("/tmp/rsv-{me}")), Some(me), false);
    v
}

/// The list of candidate runtime directories, in search order (for messages and docs).
pub fn candidates() -> Vec<PathBuf> {
    roots().into_iter().map(|r| r.path).collect()
}

/// Extra candidates searched by root only: `/tmp/rsv-N` for every other uid N.
fn other_tmp_roots() -> Vec<Root> {
    let me = euid();
    let mut v = Vec::new();
    if me != 0 {
        return v;
    }
    let Ok(rd) = fs::read_dir("/tmp") else {
        return v;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(uid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("rsv-"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if uid != me {
            v.push(Root {
                path: e.path(),
                tmp_uid: Some(uid),
                trusted: false,
            });
        }
    }
    v.sort_by(|a, b| a.path.cmp(&b.path));
    v
}

/// Can we (effective ids) write and search `p`?
pub fn writable(p: &Path) -> bool {
    eaccess(p, libc::W_OK | libc::X_OK)
}

/// access(2) with the effective ids.
fn eaccess(p: &Path, mode: i32) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: faccessat only reads the NUL-terminated path.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) == 0 }
}

pub use crate::lock::lock_held;
pub use crate::svdir::is_denied;

/// Control directory of a scanner, with its lock and control FIFO (the same path as
/// s6-svscan's, in both modes), inside the scan directory unless relocated.
pub const SCAN_CTL_DIR: &str = ".s6-svscan";

/// `p` as a relative path: an absolute canonical path without its leading `/`.
fn rel(canon: &Path) -> PathBuf {
    canon
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// The runtime location of `entry` of directory `dir` under runtime root `root`.
fn under(root: &Path, kind: Kind, canon: &Path, entry: &str) -> PathBuf {
    root.join(kind.sub()).join(rel(canon)).join(entry)
}

/// Makes `root` usable for writing: creates it if missing; returns whether it can be used.
fn prepare_root(r: &Root) -> bool {
    let mode = if r.tmp_uid.is_some() { 0o700 } else { 0o755 };
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(&r.path)
    {
        Ok(()) => {}
        Err(_) => return false,
    }
    if let Some(uid) = r.tmp_uid {
        match fs::symlink_metadata(&r.path) {
            Ok(m) if m.is_dir() && m.uid() == uid => {}
            _ => return false,
        }
    }
    writable(&r.path)
}

/// The first usable runtime directory (created if needed).
pub fn runtime_root() -> io::Result<PathBuf> {
    for r in roots() {
        if prepare_root(&r) {
            return Ok(r.path);
        }
    }
    Err(no_root())
}

fn no_root() -> io::Error {
    let tried: Vec<String> = candidates()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    io::Error::other(format!(
        "no usable runtime directory (tried {})",
        tried.join(", ")
    ))
}

/// Where the supervisor (or scanner) keeps one state entry.
#[derive(Debug)]
pub struct Placed {
    /// The directory to use (relative to the current directory when in place).
    pub path: PathBuf,
    /// True when it is in a runtime directory instead of its usual place.
    pub relocated: bool,
    /// Set when something unusable was found in the usual place: the warning to print once.
    pub warning: Option<String>,
}

/// Decides where entry `entry` (`supervise`, `event`, `.s6-svscan`) of directory `dir`
/// lives, and creates it.
///
/// `create` makes the directory at a given path (it follows symlinks as the supervisor
/// wants, and sets the modes). First the usual place `dir/entry` is tried: it is kept when
/// `create` succeeds and the result is writable by us. When `create` is refused
/// (EACCES/EPERM/EROFS) or the result is not writable, the entry is made in the first usable
/// runtime directory. Any other error of `create` is returned as is. `shown` names the usual
/// place in the warning.
pub fn place(
    dir: &Path,
    entry: &str,
    kind: Kind,
    shown: &str,
    create: impl Fn(&Path) -> io::Result<()>,
) -> io::Result<Placed> {
    let here = dir.join(entry);
    // Never a second supervisor for one directory: not in place while a live one keeps the
    // state in a runtime directory, not relocated while one holds the usual place.
    let busy = |p: &Path| {
        io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!("another supervisor holds {}", p.join("lock").display()),
        )
    };
    // Our own runtime roots only: listing /tmp for other users' roots (what a root client
    // does) would cost every supervisor start a directory read.
    if let Some(p) = candidates_in(roots().into_iter(), dir, kind, entry)
        .into_iter()
        .find(|p| surely_held(&p.join("lock")))
    {
        return Err(busy(&p));
    }
    let existed = fs::symlink_metadata(&here).is_ok();
    let why = match create(&here) {
        Ok(()) if writable(&here) => {
            return Ok(Placed {
                path: here,
                relocated: false,
                warning: None,
            });
        }
        Ok(()) => "not writable by us".to_string(),
        Err(e) if is_denied(&e) => crate::svdir::errtext(&e).to_lowercase(),
        Err(e) => return Err(e),
    };
    if surely_held(&here.join("lock")) {
        return Err(busy(&here));
    }
    let mut pl = place_elsewhere(dir, entry, kind, shown, &why, create)?;
    if existed {
        pl.warning = Some(format!(
            "{shown} is unusable ({why}): keeping its state in {}",
            pl.path.display()
        ));
    }
    Ok(pl)
}

/// Makes entry `entry` of `dir` in the first usable runtime directory (see [`place`]), without
/// trying the usual place: for `event/` when `supervise/` had to move, so that the two stay
/// together. `why` explains, in the error, why the usual place was not used.
pub fn place_elsewhere(
    dir: &Path,
    entry: &str,
    kind: Kind,
    shown: &str,
    why: &str,
    create: impl Fn(&Path) -> io::Result<()>,
) -> io::Result<Placed> {
    let canon = fs::canonicalize(dir)?;
    for r in roots() {
        if !prepare_root(&r) {
            continue;
        }
        let target = under(&r.path, kind, &canon, entry);
        if let Some(parent) = target.parent() {
            if fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .is_err()
            {
                continue;
            }
        }
        if create(&target).is_err() {
            continue;
        }
        match fs::symlink_metadata(&target) {
            Ok(m) if m.is_dir() && m.uid() == euid() && writable(&target) => {}
            _ => continue,
        }
        return Ok(Placed {
            path: target,
            relocated: true,
            warning: None,
        });
    }
    Err(io::Error::other(format!(
        "unable to create {shown} ({why}), and {}",
        no_root()
    )))
}

/// Runtime locations of `entry` of `dir` that a client may believe, in search order.
fn client_candidates(dir: &Path, kind: Kind, entry: &str) -> Vec<PathBuf> {
    candidates_in(
        roots().into_iter().chain(other_tmp_roots()),
        dir,
        kind,
        entry,
    )
}

/// The locations of `entry` of `dir` under the given runtime roots that may be believed.
fn candidates_in(
    roots: impl Iterator<Item = Root>,
    dir: &Path,
    kind: Kind,
    entry: &str,
) -> Vec<PathBuf> {
    let Ok(canon) = fs::canonicalize(dir) else {
        return Vec::new();
    };
    let me = euid();
    let mut out = Vec::new();
    for r in roots {
        let Ok(rm) = fs::symlink_metadata(&r.path).or_else(|_| fs::metadata(&r.path)) else {
            continue;
        };
        if let Some(uid) = r.tmp_uid {
            if !rm.is_dir() || rm.uid() != uid {
                continue;
            }
        }
        let owner_r = fs::metadata(&r.path).map(|m| m.uid()).unwrap_or(rm.uid());
        let p = under(&r.path, kind, &canon, entry);
        match fs::symlink_metadata(&p) {
            Ok(m)
                if m.is_dir()
                    && (r.trusted || m.uid() == me || m.uid() == 0 || m.uid() == owner_r) =>
            {
                out.push(p)
            }
            _ => {}
        }
    }
    out
}

/// The `supervise` directory of service directory `sd`, as clients should use it:
/// `sd/supervise` when it exists (also through a symlink) and a supervisor holds it; else a
/// runtime location whose supervisor is alive; else the first that exists; else
/// `sd/supervise` (so that messages and errors are the usual ones).
pub fn supervise_dir(sd: &Path) -> PathBuf {
    let here = sd.join("supervise");
    let here_exists = here.is_dir();
    if here_exists && crate::lock::supervised(&here).unwrap_or(false) {
        return here;
    }
    let others = client_candidates(sd, Kind::Sv, "supervise");
    if let Some(p) = others
        .iter()
        .find(|p| crate::lock::supervised(p).unwrap_or(false))
    {
        return p.clone();
    }
    if here_exists {
        return here;
    }
    others.into_iter().next().unwrap_or(here)
}

/// The `event` fifodir of `sd`, as clients should use it: of the existing candidates (next to
/// a relocated `supervise`, `sd/event`, the runtime ones), the first owned by the owner of the
/// supervisor's lock (the live supervisor's uid), else the first; else `sd/event`.
pub fn event_dir(sd: &Path) -> PathBuf {
    let here = sd.join("event");
    let sup = supervise_dir(sd);
    let mut cands = Vec::new();
    if sup != sd.join("supervise") {
        if let Some(parent) = sup.parent() {
            cands.push(parent.join("event"));
        }
    }
    cands.push(here.clone());
    cands.extend(client_candidates(sd, Kind::Sv, "event"));
    cands.retain(|c| c.is_dir());
    let owner = fs::metadata(sup.join("lock")).map(|m| m.uid()).ok();
    let owned = cands
        .iter()
        .find(|c| owner.is_some() && fs::metadata(c).map(|m| m.uid()).ok() == owner);
    owned.or(cands.first()).cloned().unwrap_or(here)
}

/// The control directory (`.s6-svscan`) of scan directory `dir`, as clients should use it:
/// `dir/.s6-svscan` when its control FIFO exists, else a runtime one whose control FIFO has a
/// reader, else the first runtime one, else `dir/.s6-svscan`.
pub fn scan_ctl_dir(dir: &Path) -> PathBuf {
    let here = dir.join(SCAN_CTL_DIR);
    let listening = |d: &Path| {
        crate::lock::ok_fifo_alive(&d.join("control")).unwrap_or(false)
            || crate::lock::supervised(d).unwrap_or(false)
    };
    if here.join("control").exists() && listening(&here) {
        return here;
    }
    let others = client_candidates(dir, Kind::Scan, SCAN_CTL_DIR);
    if let Some(p) = others.iter().find(|p| listening(p)) {
        return p.clone();
    }
    if here.join("control").exists() {
        return here;
    }
    others.into_iter().next().unwrap_or(here)
}

/// For a state directory that is otherwise usable: is its `lock` file (if any) one we can at
/// least probe? A lock left by another uid that we cannot even read (runit makes it 0600)
/// could be held by a live supervisor we cannot see: then the directory is refused with
/// EACCES, and the state goes elsewhere.
pub fn lock_probeable(dir: &Path) -> io::Result<()> {
    let lock = dir.join("lock");
    if fs::symlink_metadata(&lock).is_ok() && !eaccess(&lock, libc::R_OK) {
        return Err(io::Error::from_raw_os_error(libc::EACCES));
    }
    Ok(())
}

/// Is the lock file `path` known to be held (a probe that fails counts as not held)?
fn surely_held(path: &Path) -> bool {
    matches!(crate::lock::fcntl_lock_held(path), Ok(true))
        || matches!(crate::lock::flock_held(path), Ok(true))
}

/// Removes `name` in `dir` when it exists but cannot be opened by us for `write` (left by a
/// previous run under another uid): the caller then recreates it. Only call this while holding
/// the lock of `dir`. Returns true if something was removed.
pub fn replace_if_denied(dir: &Path, name: &str) -> bool {
    let p = dir.join(name);
    if fs::symlink_metadata(&p).is_err() {
        return false;
    }
    !eaccess(&p, libc::R_OK | libc::W_OK) && fs::remove_file(&p).is_ok()
}

/// Removes leftover temporary files (`*.new`) of an unclean stop from `dir`. Only call this
/// while holding the lock of `dir`.
pub fn sweep_temp(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        if name.as_bytes().ends_with(b".new") && name != OsStr::new(".new") {
            if let Ok(m) = e.metadata() {
                if m.is_file() {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_paths() {
        let p = under(
            Path::new("/run/rsv"),
            Kind::Sv,
            Path::new("/etc/service/a"),
            "supervise",
        );
        assert_eq!(p, PathBuf::from("/run/rsv/sv/etc/service/a/supervise"));
        let p = under(
            Path::new("/x"),
            Kind::Scan,
            Path::new("/srv/scan"),
            ".s6-svscan",
        );
        assert_eq!(p, PathBuf::from("/x/scan/srv/scan/.s6-svscan"));
    }

    #[test]
    fn candidate_order() {
        let c = candidates();
        let me = euid();
        assert_eq!(c.last(), Some(&PathBuf::from(format!("/tmp/rsv-{me}"))));
        assert!(c.contains(&PathBuf::from("/run/rsv")));
    }

    #[test]
    fn sweep_removes_only_temp_files() {
        let d = std::env::temp_dir().join(format!("rsv-rundir-sweep-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("status.new"), b"x").unwrap();
        fs::write(d.join("status"), b"x").unwrap();
        fs::create_dir(d.join("dir.new")).unwrap();
        sweep_temp(&d);
        assert!(!d.join("status.new").exists());
        assert!(d.join("status").exists());
        assert!(d.join("dir.new").exists());
        fs::remove_dir_all(&d).unwrap();
    }
}
