//! `rsvscan --systemd` (or rsvscan started as `systemd`): before the scanner starts, the
//! units enabled for boot (linked from multi-user.target.wants and the like) and the services
//! they pull in are imported into the scan directory; the scanner's dependency engine then
//! starts them in dependency order (see rsv-deps(7)).

use std::path::Path;

use super::units::{self, Env};

/// Is a scanner running on `dir` (its control FIFO has a reader)?
pub fn scanner_listening(dir: &Path) -> bool {
    let fifo = crate::rundir::scan_ctl_dir(dir).join("control");
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .is_ok()
}

use std::os::unix::fs::OpenOptionsExt;

/// Imports the enabled units (and the services they pull in, dependencies first) into
/// `env.scandir`. Returns warnings (one line each) for units that could not be imported; the
/// boot goes on without them. The scanner's dependency engine then runs them in order
/// (oneshots included).
pub fn prepare(env: &Env) -> Vec<String> {
    let mut warnings = Vec::new();
    for u in units::enabled_for_boot(env) {
        let Some(found) = units::find(env, &u) else {
            warnings.push(format!("{u}: enabled, but no unit file was found"));
            continue;
        };
        if found.masked || env.sd(&found.name).exists() {
            continue;
        }
        if let Err(e) = units::import_closure(env, &found) {
            warnings.push(format!("{u}: {e}"));
        }
    }
    warnings
}
