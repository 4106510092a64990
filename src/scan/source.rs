//! Reading s6-rc's source format from a service directory of the scan directory: `type`,
//! `dependencies.d/` (or the older `dependencies` file), `contents.d/` (or `contents`) for
//! bundles, and the oneshot settings. Read once per directory (the scanner keeps the result
//! by the directory's identity), with one `getdents` for the names present.

use std::fs;
use std::io;
use std::path::Path;

use crate::deps::graph::{Def, Kind};
use crate::svdir::errtext;

/// What one service directory says about the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub kind: Kind,
    pub deps: Vec<String>,
    pub contents: Vec<String>,
    /// It has `type` or dependencies: a member of the graph on its own account.
    pub member: bool,
    /// A `down` file: not in the default start set.
    pub down: bool,
    /// `essential`: a failure of this oneshot stops the container.
    pub essential: bool,
    /// `timeout-up` / `timeout-down` in ms (0 = none).
    pub timeout_up: u64,
    pub timeout_down: u64,
    /// A oneshot's `down` script exists.
    pub has_down: bool,
}

impl Source {
    pub fn def(&self, name: &str) -> Def {
        Def {
            name: name.to_string(),
            kind: self.kind,
            deps: self.deps.clone(),
            contents: self.contents.clone(),
        }
    }
}

/// Names listed by a `NAME.d/` directory (dot-files ignored) and a `NAME` file (one a line,
/// `#` comments and blanks ignored), sorted, without duplicates.
fn names(dir: &Path, base: &str, present: &[String]) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    if present.iter().any(|p| *p == format!("{base}.d")) {
        for e in fs::read_dir(dir.join(format!("{base}.d")))? {
            if let Ok(n) = e?.file_name().into_string() {
                if !n.starts_with('.') {
                    out.push(n);
                }
            }
        }
    }
    if present.iter().any(|p| p == base) {
        for l in fs::read_to_string(dir.join(base))?.lines() {
            let l = l.trim();
            if !l.is_empty() && !l.starts_with('#') {
                out.push(l.to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn millis(dir: &Path, file: &str, present: &[String], shown: &str) -> Result<u64, String> {
    if !present.iter().any(|p| p == file) {
        return Ok(0);
    }
    let t = fs::read_to_string(dir.join(file))
        .map_err(|e| format!("unable to read {shown}/{file}: {}", errtext(&e)))?;
    t.trim()
        .parse()
        .map_err(|_| format!("{shown}/{file}: not a number of milliseconds: {}", t.trim()))
}

/// Reads the graph files of service directory `dir` (shown as `shown` in messages).
pub fn read(dir: &Path, shown: &str) -> Result<Source, String> {
    let present: Vec<String> = fs::read_dir(dir)
        .map_err(|e| format!("unable to read {shown}: {}", errtext(&e)))?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let has = |n: &str| present.iter().any(|p| p == n);
    let kind = if has("type") {
        let t = fs::read_to_string(dir.join("type"))
            .map_err(|e| format!("unable to read {shown}/type: {}", errtext(&e)))?;
        Kind::parse(t.trim()).ok_or_else(|| {
            format!(
                "{shown}/type: unknown type {:?} (must be longrun, oneshot or bundle)",
                t.trim()
            )
        })?
    } else {
        Kind::Longrun
    };
    let listed = |base: &str| {
        names(dir, base, &present)
            .map_err(|e| format!("unable to read {shown}/{base}.d: {}", errtext(&e)))
    };
    let deps = listed("dependencies")?;
    let contents = if kind == Kind::Bundle {
        listed("contents")?
    } else {
        Vec::new()
    };
    if kind == Kind::Oneshot && !has("up") {
        return Err(format!("{shown}: a oneshot needs an up file"));
    }
    for n in deps.iter().chain(&contents) {
        if n.contains(['/', '\t', ',', '\n', ' ']) {
            return Err(format!("{shown}: invalid service name {n:?}"));
        }
    }
    Ok(Source {
        kind,
        member: has("type") || has("dependencies.d") || has("dependencies"),
        deps,
        contents,
        // A oneshot's `down` is its down script: s6-rc has no "not started" mark for oneshots.
        down: kind != Kind::Oneshot && has("down"),
        essential: has("essential"),
        timeout_up: millis(dir, "timeout-up", &present, shown)?,
        timeout_down: millis(dir, "timeout-down", &present, shown)?,
        has_down: kind == Kind::Oneshot && has("down"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("rsv-source-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn plain_dir_is_a_longrun_and_not_a_member() {
        let d = tmp("plain");
        fs::write(d.join("run"), "#!/bin/sh\n").unwrap();
        let s = read(&d, "scan/plain").unwrap();
        assert_eq!(s.kind, Kind::Longrun);
        assert!(!s.member && s.deps.is_empty());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn oneshot_with_both_dependency_forms_and_timeouts() {
        let d = tmp("oneshot");
        fs::write(d.join("type"), "oneshot\n").unwrap();
        fs::write(d.join("up"), "/bin/true\n").unwrap();
        fs::write(d.join("down"), "/bin/true\n").unwrap();
        fs::write(d.join("timeout-up"), "500\n").unwrap();
        fs::create_dir(d.join("dependencies.d")).unwrap();
        fs::write(d.join("dependencies.d/db"), "").unwrap();
        fs::write(d.join("dependencies.d/.hidden"), "").unwrap();
        fs::write(d.join("dependencies"), "# old form\ncache\ndb\n").unwrap();
        let s = read(&d, "scan/mig").unwrap();
        assert_eq!(s.kind, Kind::Oneshot);
        assert!(s.member && s.has_down);
        assert_eq!(s.deps, ["cache", "db"]);
        assert_eq!((s.timeout_up, s.timeout_down), (500, 0));
        fs::write(d.join("timeout-up"), "soon").unwrap();
        let e = read(&d, "scan/mig").unwrap_err();
        assert_eq!(e, "scan/mig/timeout-up: not a number of milliseconds: soon");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_type_and_missing_up_are_errors_naming_the_file() {
        let d = tmp("bad");
        fs::write(d.join("type"), "daemon\n").unwrap();
        let e = read(&d, "scan/x").unwrap_err();
        assert_eq!(
            e,
            "scan/x/type: unknown type \"daemon\" (must be longrun, oneshot or bundle)"
        );
        fs::write(d.join("type"), "oneshot").unwrap();
        assert_eq!(
            read(&d, "scan/x").unwrap_err(),
            "scan/x: a oneshot needs an up file"
        );
        fs::write(d.join("type"), "bundle").unwrap();
        fs::create_dir(d.join("contents.d")).unwrap();
        fs::write(d.join("contents.d/a"), "").unwrap();
        fs::write(d.join("contents"), "b\n").unwrap();
        assert_eq!(read(&d, "scan/x").unwrap().contents, ["a", "b"]);
        fs::remove_dir_all(&d).unwrap();
    }
}
