//! `rsvc -d` of a service that others depend on: rather than stopping that one supervisor
//! under its dependents, rsvc asks the scanner to take the service down the way `s6-rc -d
//! change` does (its dependents first), and says on stderr what else goes down. Without a
//! published graph, or for a service nothing depends on, rsvc writes to the supervisor as it
//! always did.

use std::io::Write;
use std::path::Path;

use super::live::Live;
use super::select;

/// Handles `rsvc -d SD` through the scanner when SD's scan directory publishes a graph in
/// which SD has dependents: returns rsvc's exit code, or None when rsvc should control the
/// supervisor itself.
pub fn rsvc_down(prog: &str, sd: &Path) -> Option<i32> {
    let name = sd.file_name()?.to_str()?;
    let scandir = match sd.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let live = Live::at(scandir);
    let g = live.read().ok()??;
    // A graph left by a scanner that is gone: the supervisor is all there is to tell.
    if !live.listening() {
        return None;
    }
    g.svc(name)?;
    let dependents = select::dependents(&g, name);
    if dependents.is_empty() {
        return None;
    }
    let going: Vec<&str> = dependents
        .iter()
        .filter(|d| g.svc(d).is_some_and(|s| !select::is_down(s)))
        .map(String::as_str)
        .collect();
    let mut err = std::io::stderr().lock();
    if !going.is_empty() {
        let _ = writeln!(err, "{prog}: also taking down: {}", going.join(" "));
    }
    match live.send(false, &[name.to_string()]) {
        Ok(_) => Some(0),
        Err(e) => {
            let why = if e.raw_os_error() == Some(libc::ENXIO) {
                "rsvscan is not running there".to_string()
            } else {
                crate::control::errstr(&e)
            };
            let _ = writeln!(
                err,
                "{prog}: fatal: unable to ask rsvscan to take down {}: {}: {why}",
                sd.display(),
                live.ctl.join("control").display()
            );
            Some(crate::diag::EXIT_SYS)
        }
    }
}
