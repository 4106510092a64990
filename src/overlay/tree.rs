//! The scan directory an s6-overlay image runs from (normally `/run/service`), built at each
//! start from the image's definitions, the way s6-overlay's stage 2 compiles them:
//!
//! - every service of `/etc/s6-overlay/s6-rc.d` (copied: the copy is writable even on a
//!   read-only root, and its `run`/`finish` are made executable as s6-rc-compile does);
//! - the bundles `user` and `user2`: from `s6-rc.d/user` and `s6-rc.d/user2` when
//!   `s6-rc.d/user` exists (whatever their `type` file says: s6-overlay forces `bundle`),
//!   otherwise from `/etc/s6-overlay/user-bundles.d` (or `S6_RUNTIME_BUNDLEDIR`), whose other
//!   definitions are copied too;
//! - s6-overlay's own services: `fix-attrs` and `legacy-cont-init` (oneshots running
//!   `/etc/fix-attrs.d` and `/etc/cont-init.d`; the latter's `down` runs
//!   `/etc/cont-finish.d`), the bundle `base` of the two, every `/etc/services.d` longrun
//!   (depending on `base` and `user`), the oneshot `legacy-services` (depending on them all:
//!   what `user2` services name to start after them) and the bundle `top` of everything.
//!
//! s6-rc's pipelines of two (a producer with `producer-for LOGGER`, the logger with
//! `consumer-for PRODUCER`) become runit-style logged services: the logger's definition is
//! copied into the producer's `log/` (its dependencies added to the producer's), and the
//! logger's name (and `pipeline-name`) become bundles of the producer. Longer pipelines and a
//! logger shared by several producers are refused at start.
//!
//! [`plan`] decides (pure, unit-tested); [`build`] writes.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const BASE: &str = "base";
pub const FIX_ATTRS: &str = "fix-attrs";
pub const CONT_INIT: &str = "legacy-cont-init";
pub const LEGACY: &str = "legacy-services";
pub const TOP: &str = "top";
pub const USER: &str = "user";
pub const USER2: &str = "user2";

/// Names s6-overlay defines itself (an image may not define them).
pub const RESERVED: [&str; 5] = [BASE, FIX_ATTRS, CONT_INIT, LEGACY, TOP];

/// What the image defines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// Service definitions (s6-rc source format): name and directory.
    pub defs: Vec<(String, PathBuf)>,
    /// Contents of the `user` and `user2` bundles.
    pub user: Vec<String>,
    pub user2: Vec<String>,
    /// `/etc/services.d` longruns: name and directory.
    pub legacy: Vec<(String, PathBuf)>,
    /// Those of them with a `down` file (supervised, not started: s6-supervise's rule).
    pub legacy_down: Vec<String>,
    /// The pipeline files of the definitions that have any.
    pub pipes: Vec<PipeFiles>,
}

/// What one definition says about pipelines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipeFiles {
    pub name: String,
    pub producer_for: Option<String>,
    pub consumer_for: Vec<String>,
    pub pipeline_name: Option<String>,
    /// Its dependencies (`dependencies.d/` and `dependencies`).
    pub deps: Vec<String>,
}

/// The one-line scripts of s6-overlay's own oneshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lines {
    pub fix_attrs: String,
    pub cont_init: String,
    pub cont_finish: String,
    pub legacy_up: String,
}

/// One entry of the scan directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A copy of a definition directory, with extra dependencies and, for the producer of a
    /// pipeline, its logger's definition copied as `log/`.
    Copy {
        name: String,
        from: PathBuf,
        add_deps: Vec<String>,
        log: Option<PathBuf>,
    },
    Bundle {
        name: String,
        contents: Vec<String>,
    },
    Oneshot {
        name: String,
        up: String,
        down: Option<String>,
        deps: Vec<String>,
    },
}

impl Entry {
    pub fn name(&self) -> &str {
        match self {
            Entry::Copy { name, .. } | Entry::Bundle { name, .. } | Entry::Oneshot { name, .. } => {
                name
            }
        }
    }
}

/// Decides the entries of the scan directory; errors are one line each.
pub fn plan(src: &Sources, lines: &Lines) -> Result<Vec<Entry>, Vec<String>> {
    let mut errors = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (name, from) in &src.defs {
        if RESERVED.contains(&name.as_str()) || name == USER || name == USER2 {
            errors.push(format!(
                "{}: the name {name} is s6-overlay's own: rename the service",
                from.display()
            ));
        } else if !seen.insert(name) {
            errors.push(format!("{}: {name} is defined twice", from.display()));
        }
    }
    for (name, from) in &src.legacy {
        if RESERVED.contains(&name.as_str()) || name == USER || name == USER2 {
            errors.push(format!(
                "{}: the name {name} is s6-overlay's own: rename the service",
                from.display()
            ));
        } else if !seen.insert(name) {
            errors.push(format!(
                "{}: {name} is also defined in s6-rc.d: rename one of them",
                from.display()
            ));
        }
    }
    // Pipelines: producer -> (logger name, logger's deps); loggers -> producer.
    let pf = |n: &str| src.pipes.iter().find(|p| p.name == n);
    let mut logged: Vec<(String, String)> = Vec::new();
    for p in &src.pipes {
        let Some(c) = &p.producer_for else {
            continue;
        };
        match pf(c) {
            Some(cf) if cf.consumer_for.contains(&p.name) => {
                if cf.producer_for.is_some() || !p.consumer_for.is_empty() {
                    errors.push(format!(
                        "{} -> {c}: pipelines longer than a service and its logger are not supported",
                        p.name
                    ));
                } else if cf.consumer_for.len() > 1 {
                    errors.push(format!(
                        "{c}: a logger for several services ({}) is not supported",
                        cf.consumer_for.join(", ")
                    ));
                } else {
                    logged.push((p.name.clone(), c.clone()));
                }
            }
            _ => errors.push(format!(
                "{}: producer-for names {c}, which does not declare consumer-for {}",
                p.name, p.name
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut out = Vec::new();
    for (name, from) in &src.defs {
        if let Some((prod, _)) = logged.iter().find(|(_, c)| c == name) {
            out.push(Entry::Bundle {
                name: name.clone(),
                contents: vec![prod.clone()],
            });
            if let Some(pn) = pf(name).and_then(|c| c.pipeline_name.clone()) {
                out.push(Entry::Bundle {
                    name: pn,
                    contents: vec![prod.clone()],
                });
            }
            continue;
        }
        let (add_deps, log) = match logged.iter().find(|(p, _)| p == name) {
            Some((_, c)) => (
                pf(c)
                    .map(|cf| cf.deps.iter().filter(|d| *d != name).cloned().collect())
                    .unwrap_or_default(),
                src.defs
                    .iter()
                    .find(|(n, _)| n == c)
                    .map(|(_, p)| p.clone()),
            ),
            None => (Vec::new(), None),
        };
        out.push(Entry::Copy {
            name: name.clone(),
            from: from.clone(),
            add_deps,
            log,
        });
    }
    out.push(Entry::Bundle {
        name: USER.into(),
        contents: src.user.clone(),
    });
    out.push(Entry::Bundle {
        name: USER2.into(),
        contents: src.user2.clone(),
    });
    out.push(Entry::Oneshot {
        name: FIX_ATTRS.into(),
        up: lines.fix_attrs.clone(),
        down: None,
        deps: Vec::new(),
    });
    out.push(Entry::Oneshot {
        name: CONT_INIT.into(),
        up: lines.cont_init.clone(),
        down: Some(lines.cont_finish.clone()),
        deps: vec![FIX_ATTRS.into()],
    });
    out.push(Entry::Bundle {
        name: BASE.into(),
        contents: vec![FIX_ATTRS.into(), CONT_INIT.into()],
    });
    let mut legacy_deps = vec![BASE.to_string(), USER.to_string()];
    for (name, from) in &src.legacy {
        out.push(Entry::Copy {
            name: name.clone(),
            from: from.clone(),
            add_deps: vec![BASE.into(), USER.into()],
            log: None,
        });
        if !src.legacy_down.contains(name) {
            legacy_deps.push(name.clone());
        }
    }
    out.push(Entry::Oneshot {
        name: LEGACY.into(),
        up: lines.legacy_up.clone(),
        down: None,
        deps: legacy_deps,
    });
    out.push(Entry::Bundle {
        name: TOP.into(),
        contents: vec![BASE.into(), USER.into(), LEGACY.into(), USER2.into()],
    });
    Ok(out)
}

/// The entries of a directory that name something: not starting with a dot, sorted.
fn names_in(dir: &Path) -> io::Result<Vec<String>> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir)? {
        let n = e?.file_name().to_string_lossy().into_owned();
        if !n.starts_with('.') {
            v.push(n);
        }
    }
    v.sort();
    Ok(v)
}

/// Subdirectories of `dir` (sorted), an absent `dir` giving none.
fn subdirs(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    match names_in(dir) {
        Ok(names) => Ok(names
            .into_iter()
            .map(|n| {
                let p = dir.join(&n);
                (n, p)
            })
            .filter(|(_, p)| p.is_dir())
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The contents of a bundle definition: `contents.d/` and the older `contents` file.
fn bundle_contents(dir: &Path) -> io::Result<Vec<String>> {
    let mut v = match names_in(&dir.join("contents.d")) {
        Ok(v) => v,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    match fs::read_to_string(dir.join("contents")) {
        Ok(s) => v.extend(
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    v.sort();
    v.dedup();
    Ok(v)
}

/// Reads what the image defines. `profile` is `/etc/s6-overlay` (or the runtime profile's),
/// `bundledir` the `user-bundles.d` to use when `s6-rc.d/user` does not exist, `etc` the
/// directory holding `services.d`. Errors name the path.
pub fn read_sources(profile: &Path, bundledir: &Path, etc: &Path) -> Result<Sources, String> {
    let fail = |p: &Path, e: io::Error| {
        format!(
            "unable to read {}: {}",
            p.display(),
            crate::svdir::errtext(&e)
        )
    };
    let rc = profile.join("s6-rc.d");
    let mut src = Sources::default();
    let bundles_from = |d: &Path, src: &mut Sources| -> Result<(), String> {
        for (n, p) in subdirs(d).map_err(|e| fail(d, e))? {
            match n.as_str() {
                USER => src
                    .user
                    .extend(bundle_contents(&p).map_err(|e| fail(&p, e))?),
                USER2 => src
                    .user2
                    .extend(bundle_contents(&p).map_err(|e| fail(&p, e))?),
                _ => src.defs.push((n, p)),
            }
        }
        Ok(())
    };
    bundles_from(&rc, &mut src)?;
    if !rc.join(USER).is_dir() && bundledir.is_dir() {
        bundles_from(bundledir, &mut src)?;
    }
    for v in [&mut src.user, &mut src.user2] {
        v.sort();
        v.dedup();
    }
    let sd = etc.join("services.d");
    src.legacy = subdirs(&sd).map_err(|e| fail(&sd, e))?;
    src.legacy_down = src
        .legacy
        .iter()
        .filter(|(_, p)| fs::symlink_metadata(p.join("down")).is_ok())
        .map(|(n, _)| n.clone())
        .collect();
    for (n, p) in &src.defs {
        let pf = pipe_files(n, p).map_err(|e| fail(p, e))?;
        if pf.producer_for.is_some() || !pf.consumer_for.is_empty() {
            src.pipes.push(pf);
        }
    }
    Ok(src)
}

/// The words of a file (one name a line; blank lines and `#` comments skipped); an absent
/// file has none.
fn words_of(p: &Path) -> io::Result<Vec<String>> {
    match fs::read_to_string(p) {
        Ok(s) => Ok(s
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The pipeline files of definition `name` in `dir`, with its dependencies.
fn pipe_files(name: &str, dir: &Path) -> io::Result<PipeFiles> {
    let mut deps = match names_in(&dir.join("dependencies.d")) {
        Ok(v) => v,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    deps.extend(words_of(&dir.join("dependencies"))?);
    Ok(PipeFiles {
        name: name.to_string(),
        producer_for: words_of(&dir.join("producer-for"))?.into_iter().next(),
        consumer_for: words_of(&dir.join("consumer-for"))?,
        pipeline_name: words_of(&dir.join("pipeline-name"))?.into_iter().next(),
        deps,
    })
}

/// Copies `from` into `to` (created), recursively: files with their modes, symbolic links
/// as links.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(0o755).create(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let src = e.path();
        let dst = to.join(e.file_name());
        let ft = e.file_type()?;
        if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)?;
        } else if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_file() {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

fn touch_all(dir: &Path, names: &[String]) -> io::Result<()> {
    fs::DirBuilder::new().mode(0o755).create(dir).or_else(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    for n in names {
        fs::write(dir.join(n), b"")?;
    }
    Ok(())
}

fn make_executable(p: &Path) -> io::Result<()> {
    match fs::metadata(p) {
        Ok(m) if m.is_file() => {
            let mode = m.permissions().mode();
            if mode & 0o111 != 0o111 {
                fs::set_permissions(p, fs::Permissions::from_mode(mode | 0o111))?;
            }
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes the entries into `scan` (an existing, empty directory). Errors name the path.
pub fn build(scan: &Path, entries: &[Entry]) -> Result<(), String> {
    for en in entries {
        let dir = scan.join(en.name());
        let r = (|| -> io::Result<()> {
            match en {
                Entry::Copy {
                    from,
                    add_deps,
                    log,
                    ..
                } => {
                    copy_tree(from, &dir)?;
                    if let Some(l) = log {
                        let ld = dir.join("log");
                        copy_tree(l, &ld)?;
                        for f in ["type", "consumer-for", "pipeline-name", "dependencies"] {
                            let _ = fs::remove_file(ld.join(f));
                        }
                        let _ = fs::remove_dir_all(ld.join("dependencies.d"));
                        for f in ["run", "finish"] {
                            make_executable(&ld.join(f))?;
                        }
                    }
                    for f in ["run", "finish"] {
                        make_executable(&dir.join(f))?;
                    }
                    if !add_deps.is_empty() {
                        touch_all(&dir.join("dependencies.d"), add_deps)?;
                    }
                }
                Entry::Bundle { contents, .. } => {
                    fs::DirBuilder::new().mode(0o755).create(&dir)?;
                    fs::write(dir.join("type"), b"bundle\n")?;
                    touch_all(&dir.join("contents.d"), contents)?;
                }
                Entry::Oneshot { up, down, deps, .. } => {
                    fs::DirBuilder::new().mode(0o755).create(&dir)?;
                    fs::write(dir.join("type"), b"oneshot\n")?;
                    fs::write(dir.join("up"), format!("{up}\n"))?;
                    if let Some(d) = down {
                        fs::write(dir.join("down"), format!("{d}\n"))?;
                    }
                    if !deps.is_empty() {
                        touch_all(&dir.join("dependencies.d"), deps)?;
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            let what = match en {
                Entry::Copy { from, .. } => {
                    format!("unable to copy {} to {}", from.display(), dir.display())
                }
                _ => format!("unable to create {}", dir.display()),
            };
            return Err(format!("{what}: {}", crate::svdir::errtext(&e)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines() -> Lines {
        Lines {
            fix_attrs: "F".into(),
            cont_init: "I".into(),
            cont_finish: "X".into(),
            legacy_up: "L".into(),
        }
    }

    fn find<'a>(v: &'a [Entry], n: &str) -> &'a Entry {
        v.iter().find(|e| e.name() == n).unwrap()
    }

    #[test]
    fn the_overlay_layout() {
        let src = Sources {
            defs: vec![
                ("db".into(), "/s/db".into()),
                ("app".into(), "/s/app".into()),
            ],
            user: vec!["app".into(), "db".into()],
            user2: vec![],
            legacy: vec![
                ("cron".into(), "/sd/cron".into()),
                ("off".into(), "/sd/off".into()),
            ],
            legacy_down: vec!["off".into()],
            pipes: vec![],
        };
        let v = plan(&src, &lines()).unwrap();
        assert_eq!(
            find(&v, "cron"),
            &Entry::Copy {
                name: "cron".into(),
                from: "/sd/cron".into(),
                add_deps: vec!["base".into(), "user".into()],
                log: None,
            }
        );
        assert_eq!(
            find(&v, LEGACY),
            &Entry::Oneshot {
                name: LEGACY.into(),
                up: "L".into(),
                down: None,
                deps: vec!["base".into(), "user".into(), "cron".into()]
            }
        );
        assert_eq!(
            find(&v, CONT_INIT),
            &Entry::Oneshot {
                name: CONT_INIT.into(),
                up: "I".into(),
                down: Some("X".into()),
                deps: vec![FIX_ATTRS.into()]
            }
        );
        assert_eq!(
            find(&v, TOP),
            &Entry::Bundle {
                name: TOP.into(),
                contents: vec!["base".into(), "user".into(), LEGACY.into(), "user2".into()]
            }
        );
        assert_eq!(
            find(&v, USER),
            &Entry::Bundle {
                name: USER.into(),
                contents: vec!["app".into(), "db".into()]
            }
        );
        assert!(matches!(find(&v, USER2), Entry::Bundle { contents, .. } if contents.is_empty()));
    }

    #[test]
    fn a_pipeline_of_two_becomes_a_logged_service() {
        let pipe = |n: &str, p: Option<&str>, c: &[&str], pn: Option<&str>, d: &[&str]| PipeFiles {
            name: n.into(),
            producer_for: p.map(String::from),
            consumer_for: c.iter().map(|s| s.to_string()).collect(),
            pipeline_name: pn.map(String::from),
            deps: d.iter().map(|s| s.to_string()).collect(),
        };
        let mut src = Sources {
            defs: vec![
                ("app".into(), "/s/app".into()),
                ("app-log".into(), "/s/app-log".into()),
                ("prep".into(), "/s/prep".into()),
            ],
            pipes: vec![
                pipe("app", Some("app-log"), &[], None, &["base"]),
                pipe("app-log", None, &["app"], Some("app-pipeline"), &["prep"]),
            ],
            ..Default::default()
        };
        let v = plan(&src, &lines()).unwrap();
        assert_eq!(
            find(&v, "app"),
            &Entry::Copy {
                name: "app".into(),
                from: "/s/app".into(),
                add_deps: vec!["prep".into()],
                log: Some("/s/app-log".into()),
            }
        );
        for b in ["app-log", "app-pipeline"] {
            assert_eq!(
                find(&v, b),
                &Entry::Bundle {
                    name: b.into(),
                    contents: vec!["app".into()]
                }
            );
        }
        // A chain of three, and a producer-for without the matching consumer-for.
        src.pipes[1].producer_for = Some("prep".into());
        src.pipes.push(pipe("prep", None, &["app-log"], None, &[]));
        let e = plan(&src, &lines()).unwrap_err();
        assert!(e[0].contains("pipelines longer than"), "{e:?}");
        src.pipes = vec![pipe("app", Some("prep"), &[], None, &[])];
        let e = plan(&src, &lines()).unwrap_err();
        assert!(e[0].contains("does not declare consumer-for app"), "{e:?}");
    }

    #[test]
    fn clashes_are_refused() {
        let src = Sources {
            defs: vec![
                ("base".into(), "/s/base".into()),
                ("a".into(), "/s/a".into()),
            ],
            legacy: vec![
                ("a".into(), "/sd/a".into()),
                ("top".into(), "/sd/top".into()),
            ],
            ..Default::default()
        };
        let e = plan(&src, &lines()).unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("/s/base: the name base is s6-overlay's own"));
        assert!(e[1].contains("/sd/a: a is also defined in s6-rc.d"));
    }

    #[test]
    fn sources_from_a_tree() {
        let t = std::env::temp_dir().join(format!("rsv-ovtree-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        let prof = t.join("etc/s6-overlay");
        let rc = prof.join("s6-rc.d");
        fs::create_dir_all(rc.join("user/contents.d")).unwrap();
        fs::write(rc.join("user/contents.d/a"), "").unwrap();
        fs::write(rc.join("user/contents.d/.keep"), "").unwrap();
        fs::create_dir_all(rc.join("a")).unwrap();
        fs::create_dir_all(prof.join("user-bundles.d/user/contents.d")).unwrap();
        fs::write(prof.join("user-bundles.d/user/contents.d/ignored"), "").unwrap();
        fs::create_dir_all(t.join("etc/services.d/old")).unwrap();
        fs::write(t.join("etc/services.d/file"), "").unwrap();
        let s = read_sources(&prof, &prof.join("user-bundles.d"), &t.join("etc")).unwrap();
        assert_eq!(s.defs, vec![("a".to_string(), rc.join("a"))]);
        assert_eq!(s.user, vec!["a".to_string()]);
        assert!(s.user2.is_empty());
        assert_eq!(
            s.legacy,
            vec![("old".to_string(), t.join("etc/services.d/old"))]
        );
        // Without s6-rc.d/user, the bundles come from user-bundles.d (type file ignored).
        fs::remove_dir_all(rc.join("user")).unwrap();
        fs::write(prof.join("user-bundles.d/user/contents"), "x\n# c\n\n").unwrap();
        let s = read_sources(&prof, &prof.join("user-bundles.d"), &t.join("etc")).unwrap();
        assert_eq!(s.user, vec!["ignored".to_string(), "x".to_string()]);
        fs::remove_dir_all(&t).unwrap();
    }
}
