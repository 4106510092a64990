//! Reading the scan directory: which entries are services, what changed since the last scan
//! (decided by [`super::plan`]), and inotify watches on entries still waiting for `run`.

use super::source;
use super::*;
use crate::deps::graph::Kind;

impl Scanner {
    pub(super) fn known_view(&self) -> BTreeMap<Id, Known> {
        self.svcs
            .iter()
            .map(|(id, s)| {
                (
                    *id,
                    Known {
                        name: s.name.clone(),
                        active: s.active,
                        alive: s.pid.is_some(),
                        termed: s.termed,
                    },
                )
            })
            .collect()
    }

    pub(super) fn report(
        &mut self,
        fresh: &mut HashMap<String, String>,
        name: &str,
        sig: String,
        msg: &str,
    ) {
        if self.problems.get(name) != Some(&sig) {
            self.warn(msg);
        }
        fresh.insert(name.to_string(), sig);
    }

    pub(super) fn scan(&mut self) {
        self.trim_due = true;
        self.need_scan = false;
        if self.stop.is_some() {
            return;
        }
        let rd = match fs::read_dir(".") {
            Ok(rd) => rd,
            Err(e) => {
                let msg = format!("unable to read {}: {}", self.opts.dir, errtext(&e));
                if self.problems.get(".") != Some(&msg) {
                    self.warn(&msg);
                    self.problems.insert(".".into(), msg);
                }
                if super::fds::exhausted(&e) {
                    // No descriptor to read it with: again in a second.
                    let again = Instant::now() + Duration::from_secs(1);
                    self.next_rescan = Some(self.next_rescan.map_or(again, |r| r.min(again)));
                }
                return;
            }
        };
        let mut names: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            // `NAME@` is a template (rsvc -u NAME@INST makes its instances), not a service.
            .filter(|n| !(n.starts_with('.') || n.len() > 1 && n.ends_with('@')))
            .collect();
        names.sort();
        let mut fresh = HashMap::new();
        let mut seen = Vec::new();
        let mut candidates = Vec::new();
        let mut entries = Vec::new();
        let mut live = std::collections::HashSet::new();
        for name in names {
            let l = match fs::symlink_metadata(&name) {
                Ok(l) => l,
                Err(_) => continue, // gone meanwhile
            };
            let sig = format!("{}:{}", l.dev(), l.ino());
            let m = match fs::metadata(&name) {
                Ok(m) => m,
                Err(e) => {
                    let target = fs::read_link(&name)
                        .map(|t| t.display().to_string())
                        .unwrap_or_default();
                    let msg = format!("unable to stat {}/{name}: {}", self.opts.dir, errtext(&e));
                    self.report(&mut fresh, &name, format!("stat:{sig}:{target}"), &msg);
                    continue;
                }
            };
            if !m.is_dir() {
                let msg = format!("{}/{name} is not a directory: ignored", self.opts.dir);
                self.report(&mut fresh, &name, format!("file:{sig}"), &msg);
                continue;
            }
            let id = (m.dev(), m.ino());
            let src = match self.sources.get(&id) {
                Some(src) => src.clone(),
                None => {
                    match source::read(Path::new(&name), &format!("{}/{name}", self.opts.dir)) {
                        Ok(src) => src,
                        Err(msg) => {
                            if !self.scanned {
                                crate::diag::fatal(&self.opts.prog, crate::diag::EXIT_USAGE, &msg);
                            }
                            self.report(&mut fresh, &name, format!("source:{sig}:{msg}"), &msg);
                            candidates.push((id, name));
                            continue;
                        }
                    }
                }
            };
            if src.kind != Kind::Longrun {
                // Oneshots and bundles have no supervisor: the graph runs them.
                self.sources.insert(id, src.clone());
                live.insert(id);
                entries.push((name, src));
                continue;
            }
            // Every directory gets its supervisor at once, as with runsvdir and s6-svscan;
            // the supervisor starts run once it is there (see runwait).
            self.sources.insert(id, src.clone());
            live.insert(id);
            entries.push((name.clone(), src));
            seen.push(Seen { id, name });
        }
        self.sources.retain(|id, _| live.contains(id));
        self.update_watches(&candidates);
        self.graph_update(&entries, &mut fresh);
        self.scanned = true;
        self.graph_tick();
        let acts = plan::diff(
            self.opts.mode,
            &seen,
            &self.known_view(),
            self.opts.capacity,
        );
        for a in acts {
            match a {
                Act::Start(id, name) => {
                    self.svcs.insert(
                        id,
                        Svc {
                            name,
                            pid: None,
                            active: true,
                            termed: false,
                            started: Instant::now(),
                            restarted: false,
                            restart_at: None,
                            refused: false,
                        },
                    );
                    self.start(id);
                }
                Act::Rename(id, name) => {
                    if let Some(s) = self.svcs.get_mut(&id) {
                        s.name = name;
                    }
                }
                Act::Activate(id) => {
                    if let Some(s) = self.svcs.get_mut(&id) {
                        s.active = true;
                        if s.pid.is_none() && s.restart_at.is_none() {
                            s.restart_at = Some(Instant::now());
                        }
                    }
                }
                Act::Deactivate(id) => {
                    if let Some(s) = self.svcs.get_mut(&id) {
                        s.active = false;
                    }
                }
                Act::Term(id) => self.term(id, libc::SIGTERM),
                Act::OverCapacity(name) => {
                    let msg = format!("unable to start supervisor for {name}: too many services");
                    self.report(&mut fresh, &name, "capacity".into(), &msg);
                }
            }
        }
        self.problems = fresh;
        self.svcs.retain(|_, s| s.pid.is_some() || s.active);
    }

    /// Keeps an inotify watch on each directory that lacks an executable `run`, so that it is
    /// picked up as soon as `run` appears or is made executable; drops watches of directories that are no longer candidates.
    pub(super) fn update_watches(&mut self, candidates: &[(Id, String)]) {
        let keep: std::collections::HashSet<Id> = candidates.iter().map(|(id, _)| *id).collect();
        let gone: Vec<Id> = self
            .watched
            .keys()
            .filter(|id| !keep.contains(id))
            .copied()
            .collect();
        for id in gone {
            if let Some(wd) = self.watched.remove(&id) {
                let _ = self.inotify.watches().remove(wd);
            }
        }
        for (id, name) in candidates {
            if self.watched.contains_key(id) {
                continue;
            }
            if let Ok(wd) = self.inotify.watches().add(
                name,
                WatchMask::CREATE | WatchMask::MOVED_TO | WatchMask::ATTRIB | WatchMask::ONLYDIR,
            ) {
                self.watched.insert(*id, wd);
                // run may have become ready between the scan and the watch: look again.
                let run = fs::metadata(Path::new(name).join("run"));
                if run.is_ok_and(|r| r.mode() & 0o111 != 0) {
                    self.need_scan = true;
                }
            }
        }
    }
}
