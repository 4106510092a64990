//! The environment a supervisor gives `run` and `finish` at each start: its own (inherited
//! from rsvscan, so the container's environment reaches every service), then the
//! container-wide envdir named by `$RSV_ENVDIR`, then the service's own `env/` (for the
//! logger: `log/env/`). Both directories are in s6-envdir format ([`crate::envdir`],
//! [`Flavor::S6`]) and read fresh at each start.
//!
//! A directory that does not exist is no error. One that exists but cannot be read makes
//! the start fail (as `s6-envdir env ./run` would not exec `run`): the caller warns, naming
//! the path, and treats it as a failed start.

use std::ffi::CString;
use std::io;
use std::path::Path;

use crate::envdir::{self, Flavor};
use crate::svdir::{SvDir, errtext};

/// The variable naming the container-wide envdir (set by rsvscan, read by every supervisor).
pub const VAR: &str = "RSV_ENVDIR";

/// Why the environment could not be built: the warning to print and the errno to report.
pub struct EnvError {
    pub msg: String,
    pub errno: i32,
}

fn changes_of(dir: &Path, shown: &str, out: &mut Vec<envdir::Change>) -> Result<(), EnvError> {
    match envdir::read(dir, Flavor::S6) {
        Ok(c) => {
            out.extend(c);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EnvError {
            msg: format!("unable to read envdir {shown}: {}", errtext(&e)),
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        }),
    }
}

/// The `NAME=value` strings for `execve`, or `None` when neither directory changes anything
/// (the child then simply inherits the supervisor's environment).
pub fn for_start(dir: &SvDir) -> Result<Option<Vec<CString>>, EnvError> {
    let mut changes = Vec::new();
    if let Some(global) = std::env::var_os(VAR).filter(|v| !v.is_empty()) {
        let p = Path::new(&global);
        changes_of(p, &format!("${VAR} {}", p.display()), &mut changes)?;
    }
    changes_of(&dir.path("env"), &dir.show("env"), &mut changes)?;
    if changes.is_empty() {
        return Ok(None);
    }
    let mut env = envdir::current();
    envdir::apply(&mut env, &changes);
    let mut out = Vec::with_capacity(env.len());
    for pair in envdir::to_pairs(&env) {
        // Names come from file names and values had their NULs turned into newlines: no
        // NUL can be inside; skip rather than fail if one ever is.
        if let Ok(c) = CString::new(pair) {
            out.push(c);
        }
    }
    Ok(Some(out))
}
