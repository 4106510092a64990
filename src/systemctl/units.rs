//! Unit files as systemctl sees them: the search path (under `--root`), names and aliases,
//! the scan directory where rsv runs them, importing a unit there on the fly, and the
//! `[Install]` symlinks of enable/disable/mask.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::import::systemd::{self as imp, load, unit::Unit};

/// Where rsv runs the units systemctl starts, unless `$RSV_SYSTEMD_SCANDIR` says otherwise.
pub const DEFAULT_SCANDIR: &str = "/run/rsv/systemd";
/// The variable naming the scan directory.
pub const SCANDIR_VAR: &str = "RSV_SYSTEMD_SCANDIR";
/// The variable that gives a default for `--root` (for rsvscan --systemd too).
pub const ROOT_VAR: &str = "RSV_SYSTEMD_ROOT";

/// The places systemctl works on.
#[derive(Clone, Debug)]
pub struct Env {
    /// `--root` (or `/`).
    pub root: PathBuf,
    pub scandir: PathBuf,
}

impl Env {
    pub fn new(root: Option<&str>) -> Env {
        let from_env = std::env::var(ROOT_VAR).ok().filter(|v| !v.is_empty());
        let root = PathBuf::from(root.or(from_env.as_deref()).unwrap_or("/"));
        let scandir = std::env::var_os(SCANDIR_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SCANDIR));
        Env { root, scandir }
    }

    fn under(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    /// The configuration directory enable writes to.
    pub fn etc(&self) -> PathBuf {
        self.under("/etc/systemd/system")
    }

    /// The unit search path, most important first.
    pub fn search(&self) -> Vec<PathBuf> {
        load::SEARCH_PATH.iter().map(|d| self.under(d)).collect()
    }

    /// The service dir of a unit in the scan dir.
    pub fn sd(&self, unit: &str) -> PathBuf {
        self.scandir.join(imp::service_name(unit))
    }
}

/// `nginx` -> `nginx.service`; names with a known suffix are kept.
pub fn full_name(n: &str) -> String {
    let known = [
        ".service",
        ".socket",
        ".target",
        ".timer",
        ".mount",
        ".path",
        ".slice",
        ".scope",
        ".device",
        ".swap",
        ".automount",
    ];
    if known.iter().any(|s| n.ends_with(s)) {
        n.to_string()
    } else {
        format!("{n}.service")
    }
}

/// A unit as found: its (alias-resolved) name and the file that defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub path: PathBuf,
    /// Masked (a link to /dev/null).
    pub masked: bool,
}

/// Finds a unit in the search path, following an alias link to the unit it names.
pub fn find(env: &Env, name: &str) -> Option<Found> {
    for d in env.search() {
        let p = d.join(name);
        if let Ok(t) = fs::read_link(&p) {
            if t == Path::new("/dev/null") {
                return Some(Found {
                    name: name.into(),
                    path: p,
                    masked: true,
                });
            }
            let target_name = t.file_name()?.to_string_lossy().into_owned();
            if target_name != name && t.is_absolute() {
                // An alias (Alias= or a Debian compatibility link): the unit it names.
                return find(env, &target_name).or(Some(Found {
                    name: target_name,
                    path: env.under(&t.to_string_lossy()),
                    masked: false,
                }));
            }
        }
        if let Some(p) = load::find(name, std::slice::from_ref(&d)) {
            return Some(Found {
                name: name.into(),
                path: p,
                masked: false,
            });
        }
    }
    None
}

/// Loads a found unit with its drop-ins from every directory of the search path.
pub fn load_unit(env: &Env, f: &Found) -> Result<Unit, String> {
    let dirs = env.search();
    let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let mut u = load::load_path(&f.path, &refs)?;
    u.name = f.name.clone();
    Ok(u)
}

/// The services `u` pulls in (Requires=, Wants=, BindsTo=), as unit names.
pub fn pulled_in(u: &Unit) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["Requires", "Wants", "BindsTo"] {
        for v in u.list("Unit", key) {
            for n in v.split_whitespace() {
                if n.ends_with(".service") {
                    out.push(n.to_string());
                }
            }
        }
    }
    out
}

/// Imports `f` and, first, the services it pulls in (recursively) that have a unit file and
/// no directory yet, so that every `dependencies.d` entry names a directory that exists (the
/// dependency engine refuses a graph with a missing name). Returns the notes.
pub fn import_closure(env: &Env, f: &Found) -> Result<Vec<String>, String> {
    let mut order: Vec<Found> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![(f.clone(), false)];
    // Depth-first, dependencies before dependents.
    while let Some((x, expanded)) = stack.pop() {
        if expanded {
            order.push(x);
            continue;
        }
        if !seen.insert(x.name.clone()) {
            continue;
        }
        let u = load_unit(env, &x)?;
        stack.push((x, true));
        for n in pulled_in(&u) {
            if let Some(d) = find(env, &n).filter(|d| !d.masked) {
                if !env.sd(&d.name).exists() && !seen.contains(&d.name) {
                    stack.push((d, false));
                }
            }
        }
    }
    let names: BTreeSet<String> = order.iter().map(|x| imp::service_name(&x.name)).collect();
    let mut notes = Vec::new();
    for x in &order {
        notes.extend(import_into(env, x, &names)?);
    }
    Ok(notes)
}

/// Imports `f` into the scan directory (replacing the files a previous import wrote).
/// Dependencies are written for the services in the scan directory and in `coming` (being
/// imported with it). Returns the notes (directives not translated).
pub fn import_into(env: &Env, f: &Found, coming: &BTreeSet<String>) -> Result<Vec<String>, String> {
    let u = load_unit(env, f)?;
    let mut known: BTreeSet<String> = coming.clone();
    if let Ok(rd) = fs::read_dir(&env.scandir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if !n.starts_with('.') {
                known.insert(n);
            }
        }
    }
    let mut out = imp::import(std::slice::from_ref(&u), &known, &env.scandir);
    if let Some(e) = out.errors.first() {
        return Err(e.clone());
    }
    fs::create_dir_all(&env.scandir).map_err(|e| {
        format!(
            "unable to create {}: {}",
            env.scandir.display(),
            crate::svdir::errtext(&e)
        )
    })?;
    for s in &out.services {
        // A new directory is written under a dot name and renamed into place whole, so that
        // the scanner never starts half of it.
        let dest = env.scandir.join(&s.name);
        if dest.exists() {
            crate::import::write_service(&env.scandir, s)?;
        } else {
            let tmp_name = format!(".{}.new-{}", s.name, std::process::id());
            let mut t = s.clone();
            t.name = tmp_name.clone();
            // The oneshot's up/down lines name the final place already.
            crate::import::write_service(&env.scandir, &t)?;
            fs::rename(env.scandir.join(&tmp_name), &dest)
                .map_err(|e| format!("unable to rename into {}: {}", dest.display(), e))?;
        }
    }
    Ok(std::mem::take(&mut out.notes))
}

/// The `[Install]` section of a unit: (wanted-by and required-by targets, aliases, also).
pub fn install_info(u: &Unit) -> (Vec<(String, &'static str)>, Vec<String>, Vec<String>) {
    let words = |k: &str| -> Vec<String> {
        u.list("Install", k)
            .iter()
            .flat_map(|v| v.split_whitespace().map(str::to_string))
            .collect()
    };
    let mut targets = Vec::new();
    for t in words("WantedBy") {
        targets.push((t, "wants"));
    }
    for t in words("RequiredBy") {
        targets.push((t, "requires"));
    }
    (targets, words("Alias"), words("Also"))
}

/// Links that enable `f`: (link path, target).
pub fn enable_links(env: &Env, f: &Found, u: &Unit) -> Vec<(PathBuf, PathBuf)> {
    let (targets, aliases, _) = install_info(u);
    let target = Path::new("/").join(f.path.strip_prefix(&env.root).unwrap_or(&f.path));
    let mut links = Vec::new();
    // A template enabled without an instance uses DefaultInstance=.
    let link_name = match (u.template_parts(), u.get("Install", "DefaultInstance")) {
        (Some((p, "")), Some(i)) => format!("{p}@{i}.service"),
        _ => f.name.clone(),
    };
    for (t, kind) in targets {
        links.push((
            env.etc().join(format!("{t}.{kind}")).join(&link_name),
            target.clone(),
        ));
    }
    for a in aliases {
        links.push((env.etc().join(a), target.clone()));
    }
    links
}

/// Creates the links (replacing wrong ones); returns those created.
pub fn make_links(links: &[(PathBuf, PathBuf)]) -> io::Result<Vec<(PathBuf, PathBuf)>> {
    let mut made = Vec::new();
    for (l, t) in links {
        if fs::read_link(l).ok().as_deref() == Some(t.as_path()) {
            continue;
        }
        if let Some(p) = l.parent() {
            fs::create_dir_all(p)?;
        }
        let _ = fs::remove_file(l);
        symlink(t, l)?;
        made.push((l.clone(), t.clone()));
    }
    Ok(made)
}

/// Every link under the configuration directory (one level of `*.wants`/`*.requires` and
/// the top) whose name is `name` or that points at a file named `name`.
pub fn links_to(env: &Env, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let etc = env.etc();
    let mut dirs = vec![etc.clone()];
    if let Ok(rd) = fs::read_dir(&etc) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".wants") || n.ends_with(".requires") {
                dirs.push(e.path());
            }
        }
    }
    for d in dirs {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(t) = fs::read_link(&p) else { continue };
            if t == Path::new("/dev/null") {
                continue;
            }
            let in_wants = d != etc;
            let names_it = t.file_name().is_some_and(|n| n == name);
            let is_it = e.file_name() == name;
            // In *.wants: a link named after it (or to it); at the top: an alias to it.
            let hit = if in_wants {
                is_it || names_it
            } else {
                names_it && !is_it
            };
            if hit {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Units enabled for boot: those linked from `multi-user.target.wants` and
/// `default.target.wants` (and `graphical.target.wants`), in name order.
pub fn enabled_for_boot(env: &Env) -> Vec<String> {
    let mut out = BTreeSet::new();
    for t in ["multi-user.target", "default.target", "graphical.target"] {
        for kind in ["wants", "requires"] {
            if let Ok(rd) = fs::read_dir(env.etc().join(format!("{t}.{kind}"))) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if n.ends_with(".service") {
                        out.insert(n);
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(full_name("nginx"), "nginx.service");
        assert_eq!(full_name("multi-user.target"), "multi-user.target");
        assert_eq!(full_name("getty@tty1"), "getty@tty1.service");
    }
}
