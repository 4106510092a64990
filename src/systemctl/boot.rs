//! `rsvscan --systemd` (or rsvscan started as `systemd`): before the scanner starts, the
//! units enabled for boot (linked from multi-user.target.wants and the like) and the services
//! they require are imported into the scan directory, and their oneshots run, dependencies
//! first. Longruns are then started by the scanner; their `dependencies.d` orders them once
//! the dependency engine reads it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
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

/// Imports the enabled units (and what they require) into `env.scandir` and runs the
/// oneshots in dependency order. Returns warnings (one line each) for units that could not
/// be imported or oneshots that failed; the boot goes on without them.
pub fn prepare(env: &Env) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut todo: Vec<String> = units::enabled_for_boot(env);
    let mut seen = BTreeSet::new();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(u) = todo.pop() {
        if !seen.insert(u.clone()) {
            continue;
        }
        let Some(found) = units::find(env, &u) else {
            warnings.push(format!("{u}: enabled, but no unit file was found"));
            continue;
        };
        if found.masked {
            continue;
        }
        match units::load_unit(env, &found) {
            Ok(unit) => {
                let mut mine = Vec::new();
                for key in ["Requires", "Wants", "BindsTo"] {
                    for v in unit.list("Unit", key) {
                        for n in v.split_whitespace() {
                            if n.ends_with(".service") {
                                todo.push(n.to_string());
                                mine.push(n.to_string());
                            }
                        }
                    }
                }
                deps.insert(found.name.clone(), mine);
            }
            Err(e) => {
                warnings.push(e);
                continue;
            }
        }
        if let Err(e) = units::import_into(env, &found) {
            warnings.push(format!("{u}: {e}"));
        }
    }
    // Oneshots, dependencies first (a cycle is broken where it is found).
    let mut done = BTreeSet::new();
    let names: Vec<String> = deps.keys().cloned().collect();
    for n in names {
        run_ordered(
            env,
            &n,
            &deps,
            &mut done,
            &mut BTreeSet::new(),
            &mut warnings,
        );
    }
    warnings
}

fn run_ordered(
    env: &Env,
    n: &str,
    deps: &BTreeMap<String, Vec<String>>,
    done: &mut BTreeSet<String>,
    path: &mut BTreeSet<String>,
    warnings: &mut Vec<String>,
) {
    if done.contains(n) || !path.insert(n.to_string()) {
        return;
    }
    for d in deps.get(n).into_iter().flatten() {
        run_ordered(env, d, deps, done, path, warnings);
    }
    path.remove(n);
    done.insert(n.to_string());
    let sd = env.sd(n);
    if fs::read_to_string(sd.join("type")).is_ok_and(|t| t.trim() == "oneshot")
        && !sd.join(super::ONESHOT_DONE).exists()
    {
        let st = std::process::Command::new(sd.join("start"))
            .current_dir(&sd)
            .status();
        match st {
            Ok(s) if s.success() => {
                let _ = fs::write(sd.join(super::ONESHOT_DONE), "");
            }
            _ => warnings.push(format!("{n}: its start command failed")),
        }
    }
}
