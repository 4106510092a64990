//! `rsvc -d` of a service that others depend on: rather than stopping that one supervisor
//! under its dependents, rsvc asks the scanner to take the service down the way `s6-rc -d
//! change` does (its dependents first), and says on stderr what else goes down. A oneshot has
//! no supervisor at all: `rsvc -d` and `rsvc -u` of one always go to the scanner (its `down` or
//! `up` script runs). Without a published graph, or for a longrun nothing depends on, rsvc
//! writes to the supervisor as it always did.

use std::io::Write;
use std::path::Path;

use super::live::Live;
use super::select;
use crate::deps::graph::Kind;

/// Handles `rsvc -d SD` through the scanner when SD's scan directory publishes a graph in
/// which SD has dependents: returns rsvc's exit code, or None when rsvc should control the
/// supervisor itself.
pub fn rsvc_down(prog: &str, sd: &Path) -> Option<i32> {
    let name = sd.file_name()?.to_str()?;
    let live = Live::at(scan_dir_of(sd));
    let g = live.read().ok()??;
    // A graph left by a scanner that is gone: the supervisor is all there is to tell.
    if !live.listening() {
        return None;
    }
    let oneshot = g.svc(name)?.kind == Kind::Oneshot;
    let dependents = select::dependents(&g, name);
    if dependents.is_empty() && !oneshot {
        return None;
    }
    let going: Vec<&str> = dependents
        .iter()
        .filter(|d| g.svc(d).is_some_and(|s| !select::is_down(s)))
        .map(String::as_str)
        .collect();
    if !going.is_empty() {
        let _ = writeln!(
            std::io::stderr(),
            "{prog}: also taking down: {}",
            going.join(" ")
        );
    }
    Some(send(prog, &live, false, sd, name))
}

/// `rsvc -u` of a oneshot: the scanner runs its `up` (with its dependencies first). None when
/// SD is not a oneshot of a published graph whose scanner listens.
pub fn rsvc_up(prog: &str, sd: &Path) -> Option<i32> {
    let name = sd.file_name()?.to_str()?;
    let live = Live::at(scan_dir_of(sd));
    let g = live.read().ok()??;
    if g.svc(name)?.kind != Kind::Oneshot || !live.listening() {
        return None;
    }
    Some(send(prog, &live, true, sd, name))
}

/// The scan directory a service directory is in.
fn scan_dir_of(sd: &Path) -> &Path {
    match sd.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn send(prog: &str, live: &Live, up: bool, sd: &Path, name: &str) -> i32 {
    match live.send(up, &[name.to_string()]) {
        Ok(_) => 0,
        Err(e) => {
            let why = if e.raw_os_error() == Some(libc::ENXIO) {
                "rsvscan is not running there".to_string()
            } else {
                crate::control::errstr(&e)
            };
            let _ = writeln!(
                std::io::stderr(),
                "{prog}: fatal: unable to ask rsvscan to bring {} {}: {}: {why}",
                sd.display(),
                if up { "up" } else { "down" },
                live.ctl.join("control").display()
            );
            crate::diag::EXIT_SYS
        }
    }
}
