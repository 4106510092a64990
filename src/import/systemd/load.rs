//! Finding and reading unit files: a unit named by path (or by name in the search path),
//! template units for instances (`foo@bar.service` from `foo@.service`), and drop-ins
//! (`UNIT.d/*.conf`, for an instance also the template's) merged in name order.

use std::fs;
use std::path::{Path, PathBuf};

use super::unit::{self, Unit};

/// The directories systemd reads system units from, most important first.
pub const SEARCH_PATH: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

fn read(p: &Path) -> Result<String, String> {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| {
            format!(
                "unable to read {}: {}",
                p.display(),
                crate::svdir::errtext(&e)
            )
        })
}

/// The file that defines `name` in `dir`: the unit itself, or its template.
fn file_in(dir: &Path, name: &str) -> Option<PathBuf> {
    let p = dir.join(name);
    if p.is_file() {
        return Some(p);
    }
    let (stem, ty) = name.rsplit_once('.')?;
    let (prefix, inst) = stem.split_once('@')?;
    if inst.is_empty() {
        return None;
    }
    let t = dir.join(format!("{prefix}@.{ty}"));
    t.is_file().then_some(t)
}

/// Loads a unit given as a path (`dir/foo@bar.service` may name an instance of
/// `dir/foo@.service`). `dropin_dirs` are searched for `NAME.d/` besides the file's own
/// directory.
pub fn load_path(path: &Path, dropin_dirs: &[&Path]) -> Result<Unit, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{}: not a unit file name", path.display()))?;
    if !name.contains('.') {
        return Err(format!(
            "{}: a unit file name has a type suffix (.service)",
            path.display()
        ));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let file = file_in(dir, &name)
        .ok_or_else(|| format!("unable to read {}: file does not exist", path.display()))?;
    let mut u = Unit {
        name: name.clone(),
        ..Unit::default()
    };
    let text = read(&file)?;
    unit::parse_into(&mut u, &text, &file.display().to_string())?;
    // Drop-ins: the template's first, then the instance's; later files win.
    let mut names = Vec::new();
    if let Some((stem, ty)) = name.rsplit_once('.') {
        if let Some((prefix, inst)) = stem.split_once('@') {
            if !inst.is_empty() {
                names.push(format!("{prefix}@.{ty}.d"));
            }
        }
    }
    names.push(format!("{name}.d"));
    let mut dirs: Vec<&Path> = vec![dir];
    for d in dropin_dirs {
        if !dirs.contains(d) {
            dirs.push(d);
        }
    }
    let mut confs: Vec<(String, PathBuf)> = Vec::new();
    for n in &names {
        for d in dirs.iter().rev() {
            let Ok(rd) = fs::read_dir(d.join(n)) else {
                continue;
            };
            for e in rd.flatten() {
                let fname = e.file_name().to_string_lossy().into_owned();
                if fname.ends_with(".conf") {
                    // A file of the same name in a more important directory replaces it.
                    confs.retain(|(f, _)| *f != fname);
                    confs.push((fname, e.path()));
                }
            }
        }
    }
    confs.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, p) in confs {
        let text = read(&p)?;
        unit::parse_into(&mut u, &text, &p.display().to_string())?;
    }
    Ok(u)
}

/// Finds a unit by name in `search` (the first directory that has it).
pub fn find(name: &str, search: &[PathBuf]) -> Option<PathBuf> {
    search
        .iter()
        .find(|d| file_in(d, name).is_some())
        .map(|d| d.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_and_dropins() {
        let d = std::env::temp_dir().join(format!("rsv-unit-load-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("a@.service.d")).unwrap();
        fs::create_dir_all(d.join("a@x.service.d")).unwrap();
        fs::write(
            d.join("a@.service"),
            "[Service]\nExecStart=/bin/a %i\nUser=u\n",
        )
        .unwrap();
        fs::write(d.join("a@.service.d/10-user.conf"), "[Service]\nUser=v\n").unwrap();
        fs::write(
            d.join("a@x.service.d/20-start.conf"),
            "[Service]\nExecStart=\nExecStart=/bin/b\n",
        )
        .unwrap();
        let u = load_path(&d.join("a@x.service"), &[]).unwrap();
        assert_eq!(u.name, "a@x.service");
        assert_eq!(u.get("Service", "User"), Some("v"));
        assert_eq!(u.list("Service", "ExecStart"), vec!["/bin/b"]);
        assert!(
            load_path(&d.join("b.service"), &[])
                .unwrap_err()
                .contains("does not exist")
        );
        assert_eq!(
            find("a@y.service", std::slice::from_ref(&d)),
            Some(d.join("a@y.service"))
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
