//! Templated services: a directory `NAME@` in a scan directory is a template, `NAME@INST` an
//! instance of it. `rsvc -u NAME@INST` (and `systemctl start`) creates the instance from the
//! template when it does not exist; `rsvc -x NAME@INST` stops it and removes it.
//!
//! An instance is a copy of the template (without `supervise/` and `event/`, its own or its
//! logger's) whose `run` is a small script that exports `RSV_INSTANCE=INST` and executes the
//! template's run, copied to `run.template`, with INST as its first argument. The copy is made
//! under a dot name (which the scanner ignores) and renamed into place whole, so the scanner
//! never sees half an instance. A file `.rsv-instance` (holding the template's name) marks a
//! directory that `rsvc -x` may remove.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The marker file of an instance made from a template.
pub const MARKER: &str = ".rsv-instance";
/// The variable `run` gets the instance in.
pub const VAR: &str = "RSV_INSTANCE";

/// `("NAME@", "INST")` for a name `NAME@INST` with both parts non-empty.
pub fn split(name: &str) -> Option<(&str, &str)> {
    let at = name.find('@')?;
    let (prefix, inst) = (&name[..=at], &name[at + 1..]);
    (at > 0 && !inst.is_empty() && !inst.contains('/')).then_some((prefix, inst))
}

/// Is `name` a template's (`NAME@`)? The scanner must not supervise those.
pub fn is_template(name: &str) -> bool {
    name.len() > 1 && name.ends_with('@')
}

/// For a service dir path `.../NAME@INST`: the template dir `.../NAME@` and the instance,
/// when the template exists.
pub fn template_of(sd: &Path) -> Option<(PathBuf, String)> {
    let name = sd.file_name()?.to_str()?;
    let (prefix, inst) = split(name)?;
    let t = sd.with_file_name(prefix);
    t.is_dir().then(|| (t, inst.to_string()))
}

fn copy_tree(from: &Path, to: &Path, top: bool) -> io::Result<()> {
    fs::create_dir(to)?;
    fs::set_permissions(to, fs::metadata(from)?.permissions())?;
    for e in fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        let n = name.to_string_lossy();
        if (top || n == "supervise" || n == "event") && matches!(n.as_ref(), "supervise" | "event")
        {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        let ft = e.file_type()?;
        if ft.is_symlink() {
            symlink(fs::read_link(&src)?, &dst)?;
        } else if ft.is_dir() {
            // log/ keeps the rule: no supervise/ or event/ copied from it either.
            copy_tree(&src, &dst, n == "log")?;
        } else if ft.is_file() {
            fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// The instance's `run`.
pub fn wrapper(template: &str, inst: &str) -> String {
    let q = crate::import::ini::sh_quote(inst);
    format!(
        "#!/bin/sh\n# Instance {inst} of the template {template}: the template's run, copied to\n# run.template, gets the instance as $1 and in ${VAR}.\n{VAR}={q}\nexport {VAR}\nexec ./run.template {q} \"$@\"\n"
    )
}

/// Creates the instance `sd` from `template` (see the module doc). An existing `sd` is left
/// alone (`Ok(false)`).
pub fn create(sd: &Path, template: &Path, inst: &str) -> io::Result<bool> {
    if fs::symlink_metadata(sd).is_ok() {
        return Ok(false);
    }
    let name = sd
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tname = template
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = sd.with_file_name(format!(".{name}.new-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let r = (|| {
        copy_tree(template, &tmp, true)?;
        if tmp.join("run").exists() {
            fs::rename(tmp.join("run"), tmp.join("run.template"))?;
            let w = tmp.join("run");
            fs::write(&w, wrapper(&tname, inst))?;
            fs::set_permissions(&w, fs::Permissions::from_mode(0o755))?;
        }
        fs::write(tmp.join(MARKER), format!("{tname}\n"))?;
        fs::rename(&tmp, sd)
    })();
    if r.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    r.map(|()| true)
}

/// Is `sd` an instance made from a template (it has the marker)?
pub fn is_instance(sd: &Path) -> bool {
    fs::symlink_metadata(sd.join(MARKER)).is_ok()
}

/// Polls `f` every 20 ms until it is true or `limit` has passed.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the instance `sd`: renames it to a dot name (the scanner forgets it), stops its
/// service and supervisor (`d`, `x`), waits up to `limit` for the supervisor to go, and
/// deletes the directory. Returns an error text naming the path.
pub fn remove(sd: &Path, limit: Duration) -> Result<(), String> {
    let name = sd
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let gone = sd.with_file_name(format!(".{name}.removed-{}", std::process::id()));
    fs::rename(sd, &gone).map_err(|e| {
        format!(
            "unable to rename {}: {}",
            sd.display(),
            crate::svdir::errtext(&e)
        )
    })?;
    let listening = || crate::control::write_control(&gone, b"").is_ok();
    if listening() {
        let _ = crate::control::write_control(&gone, b"dx");
        if !wait_until(limit, || !listening()) {
            return Err(format!(
                "the supervisor of {} did not exit within {} ms; left in {}",
                sd.display(),
                limit.as_millis(),
                gone.display()
            ));
        }
    }
    fs::remove_dir_all(&gone).map_err(|e| {
        format!(
            "unable to remove {}: {}",
            gone.display(),
            crate::svdir::errtext(&e)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(split("getty@tty1"), Some(("getty@", "tty1")));
        assert_eq!(split("getty@"), None);
        assert_eq!(split("@x"), None);
        assert_eq!(split("plain"), None);
        assert!(is_template("getty@"));
        assert!(!is_template("@") && !is_template("getty@1"));
    }

    #[test]
    fn instance_from_template() {
        let d = std::env::temp_dir().join(format!("rsv-template-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let t = d.join("w@");
        fs::create_dir_all(t.join("supervise")).unwrap();
        fs::create_dir_all(t.join("log/supervise")).unwrap();
        fs::write(t.join("run"), "#!/bin/sh\necho \"$1 $RSV_INSTANCE\"\n").unwrap();
        fs::set_permissions(t.join("run"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(t.join("log/run"), "#!/bin/sh\n").unwrap();
        let sd = d.join("w@it's");
        let (tp, inst) = template_of(&sd).unwrap();
        assert_eq!((tp.as_path(), inst.as_str()), (t.as_path(), "it's"));
        assert!(create(&sd, &tp, &inst).unwrap());
        assert!(!create(&sd, &tp, &inst).unwrap());
        assert!(is_instance(&sd));
        assert!(!sd.join("supervise").exists() && !sd.join("log/supervise").exists());
        assert!(sd.join("log/run").exists());
        let out = std::process::Command::new(sd.join("run"))
            .current_dir(&sd)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's it's\n");
        remove(&sd, Duration::from_secs(1)).unwrap();
        assert!(!sd.exists());
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }
}
