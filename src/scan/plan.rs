//! The pure part of the scanner: given what the scan directory holds now and what the
//! scanner runs, decide what to do. No system calls here, so it is unit-tested directly.

use std::collections::{BTreeMap, BTreeSet};

use crate::machine::Mode;

/// Identity of a service: (st_dev, st_ino) of its directory (symlinks followed).
pub type Id = (u64, u64);

/// A service directory found by a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub id: Id,
    pub name: String,
}

/// What the scanner knows about one service it runs (or ran).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub name: String,
    /// Still present in the scan directory at the last scan.
    pub active: bool,
    /// Its supervisor is running.
    pub alive: bool,
    /// SIGTERM was already sent to the supervisor.
    pub termed: bool,
}

/// One decision of [`diff`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    /// A new service: start a supervisor for it.
    Start(Id, String),
    /// A known service seen under another name (renamed entry): remember the new name.
    Rename(Id, String),
    /// A known service seen again after it had gone: mark it active.
    Activate(Id),
    /// A known service is gone: mark it inactive.
    Deactivate(Id),
    /// Send SIGTERM to its supervisor (runit mode, right when the entry disappears).
    Term(Id),
    /// No room for this new service (`-c`).
    OverCapacity(String),
}

/// Compares a scan with the known services. `seen` may hold the same id twice (two names for
/// one directory): the first one wins. `capacity` bounds the number of known services.
pub fn diff(mode: Mode, seen: &[Seen], known: &BTreeMap<Id, Known>, capacity: usize) -> Vec<Act> {
    let mut acts = Vec::new();
    let mut ids = BTreeSet::new();
    let mut count = known.len();
    for s in seen {
        if !ids.insert(s.id) {
            continue;
        }
        match known.get(&s.id) {
            Some(k) => {
                if k.name != s.name {
                    acts.push(Act::Rename(s.id, s.name.clone()));
                }
                if !k.active {
                    acts.push(Act::Activate(s.id));
                }
            }
            None if count < capacity => {
                count += 1;
                acts.push(Act::Start(s.id, s.name.clone()));
            }
            None => acts.push(Act::OverCapacity(s.name.clone())),
        }
    }
    for (id, k) in known {
        if ids.contains(id) || !k.active {
            continue;
        }
        acts.push(Act::Deactivate(*id));
        if mode == Mode::Runit && k.alive && !k.termed {
            acts.push(Act::Term(*id));
        }
    }
    acts
}

/// Which supervisors a prune signals: inactive ones still running and not yet signalled.
pub fn prune(known: &BTreeMap<Id, Known>) -> Vec<Id> {
    known
        .iter()
        .filter(|(_, k)| !k.active && k.alive && !k.termed)
        .map(|(id, _)| *id)
        .collect()
}

/// What to do when a supervisor has died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterDeath {
    /// Forget the service (its directory is gone, or we are stopping).
    Forget,
    /// Start a new supervisor now.
    RestartNow,
    /// Start a new one after this many milliseconds (it died within 1 s of its start).
    RestartIn(u64),
}

/// Restart rule: at once, unless this supervisor was itself a restart and lived less than
/// 1 s (then 1 s after its start), so a supervisor that cannot run does not make the scanner
/// fork in a loop.
pub fn after_death(active: bool, stopping: bool, was_restart: bool, lived_ms: u64) -> AfterDeath {
    if !active || stopping {
        AfterDeath::Forget
    } else if !was_restart || lived_ms >= 1000 {
        AfterDeath::RestartNow
    } else {
        AfterDeath::RestartIn(1000 - lived_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(v: &[(u64, &str)]) -> Vec<Seen> {
        v.iter()
            .map(|(i, n)| Seen {
                id: (1, *i),
                name: n.to_string(),
            })
            .collect()
    }

    fn known(v: &[(u64, &str, bool, bool)]) -> BTreeMap<Id, Known> {
        v.iter()
            .map(|(i, n, active, alive)| {
                (
                    (1, *i),
                    Known {
                        name: n.to_string(),
                        active: *active,
                        alive: *alive,
                        termed: false,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn new_services_start() {
        let a = diff(Mode::S6, &seen(&[(1, "a"), (2, "b")]), &BTreeMap::new(), 10);
        assert_eq!(
            a,
            vec![
                Act::Start((1, 1), "a".into()),
                Act::Start((1, 2), "b".into())
            ]
        );
    }

    #[test]
    fn same_dir_twice_starts_once() {
        let a = diff(Mode::S6, &seen(&[(1, "a"), (1, "b")]), &BTreeMap::new(), 10);
        assert_eq!(a, vec![Act::Start((1, 1), "a".into())]);
    }

    #[test]
    fn rename_does_not_restart() {
        let k = known(&[(1, "a", true, true)]);
        let a = diff(Mode::Runit, &seen(&[(1, "z")]), &k, 10);
        assert_eq!(a, vec![Act::Rename((1, 1), "z".into())]);
    }

    #[test]
    fn removal_per_mode() {
        let k = known(&[(1, "a", true, true), (2, "b", true, true)]);
        let s6 = diff(Mode::S6, &seen(&[(2, "b")]), &k, 10);
        assert_eq!(s6, vec![Act::Deactivate((1, 1))]);
        let runit = diff(Mode::Runit, &seen(&[(2, "b")]), &k, 10);
        assert_eq!(runit, vec![Act::Deactivate((1, 1)), Act::Term((1, 1))]);
        // Already inactive: nothing more.
        let k2 = known(&[(1, "a", false, true)]);
        assert!(diff(Mode::Runit, &[], &k2, 10).is_empty());
    }

    #[test]
    fn reappearing_is_reactivated() {
        let k = known(&[(1, "a", false, true)]);
        assert_eq!(
            diff(Mode::S6, &seen(&[(1, "a")]), &k, 10),
            vec![Act::Activate((1, 1))]
        );
    }

    #[test]
    fn capacity() {
        let k = known(&[(1, "a", true, true)]);
        let a = diff(Mode::S6, &seen(&[(1, "a"), (2, "b"), (3, "c")]), &k, 2);
        assert_eq!(
            a,
            vec![
                Act::Start((1, 2), "b".into()),
                Act::OverCapacity("c".into())
            ]
        );
    }

    #[test]
    fn prune_picks_inactive_alive() {
        let k = known(&[
            (1, "a", false, true),
            (2, "b", true, true),
            (3, "c", false, false),
        ]);
        assert_eq!(prune(&k), vec![(1, 1)]);
    }

    #[test]
    fn restart_rule() {
        assert_eq!(after_death(true, false, true, 5000), AfterDeath::RestartNow);
        assert_eq!(after_death(true, false, false, 300), AfterDeath::RestartNow);
        assert_eq!(
            after_death(true, false, true, 300),
            AfterDeath::RestartIn(700)
        );
        assert_eq!(after_death(false, false, true, 5000), AfterDeath::Forget);
        assert_eq!(after_death(true, true, false, 5000), AfterDeath::Forget);
    }
}
