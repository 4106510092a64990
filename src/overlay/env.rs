//! The container environment, as s6-overlay keeps it: saved at boot in
//! `/run/s6/container_environment` (one file per variable, the value verbatim), while
//! services and CMD start with a minimal environment (`PATH` only) unless `S6_KEEP_ENV` is
//! set. `with-contenv PROG...` runs PROG with the saved environment; `printcontenv NAME`
//! prints one saved variable.
//!
//! Reading a file: its whole content with one trailing newline removed, NUL bytes turned into
//! newlines; an empty file removes the variable. A script may add or change files at run time
//! (`printf %s value > /run/s6/container_environment/NAME`): later `with-contenv` calls see it.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::diag::{EXIT_SYS, EXIT_USAGE};
use crate::svdir::errtext;

/// Where the container environment is, relative to the run directory.
pub const CONTENV: &str = "s6/container_environment";

/// Set (only) when the run directory is not `/run` (a test root, or the fallback of a
/// non-root container with a root-owned `/run`): the run directory, so that `with-contenv`
/// and `printcontenv` find the saved environment.
pub const RUN_VAR: &str = "RSV_OVERLAY_RUN";

/// The container environment directory, as seen by `with-contenv` and `printcontenv`.
pub fn contenv_dir() -> PathBuf {
    let run = std::env::var_os(RUN_VAR)
        .filter(|v| Path::new(v).is_absolute())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run"));
    run.join(CONTENV)
}

/// Can `name` be a file of the directory (and a variable)?
fn storable(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/') && !b.contains(&b'=')
}

/// Saves `vars` into `dir` (created or emptied first, mode 0755), one file per variable
/// holding its value verbatim (mode 0644).
pub fn save(dir: &Path, vars: &[(OsString, OsString)]) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)?;
    for (k, v) in vars {
        if !storable(k) {
            continue;
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(dir.join(k))?;
        f.write_all(v.as_bytes())?;
    }
    Ok(())
}

/// The value a file gives (see the module documentation); `None` removes the variable.
pub fn value_of(content: &[u8]) -> Option<OsString> {
    if content.is_empty() {
        return None;
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    Some(OsString::from_vec(
        body.iter()
            .map(|&b| if b == 0 { b'\n' } else { b })
            .collect(),
    ))
}

/// Reads the directory: (name, value) for each file, sorted; `None` values remove.
pub fn load(dir: &Path) -> io::Result<Vec<(OsString, Option<OsString>)>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        if name.as_bytes().first() == Some(&b'.') || !storable(&name) {
            continue;
        }
        let p = e.path();
        if fs::metadata(&p).map(|m| m.is_dir()).unwrap_or(true) {
            continue;
        }
        out.push((name, value_of(&fs::read(&p)?)));
    }
    out.sort();
    Ok(out)
}

/// The environment `with-contenv` gives: `PATH` from `current` (when set), then every
/// variable of the saved environment (which may replace or remove `PATH` too).
pub fn contenv(
    current_path: Option<OsString>,
    saved: &[(OsString, Option<OsString>)],
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::new();
    if let Some(p) = current_path {
        env.push(("PATH".into(), p));
    }
    for (k, v) in saved {
        env.retain(|(n, _)| n != k);
        if let Some(v) = v {
            env.push((k.clone(), v.clone()));
        }
    }
    env
}

/// `S6_KEEP_ENV` as the helpers see it: in their own environment.
fn keep_env() -> bool {
    super::config::flag(std::env::var("S6_KEEP_ENV").ok().as_deref())
}

fn prog_of(args: &[OsString], default: &str) -> String {
    args.first()
        .and_then(|a| Path::new(a).file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| default.to_string())
}

/// `with-contenv PROG [ARGS...]`: execs PROG with the container environment (or unchanged
/// when `S6_KEEP_ENV` is set). Exit codes: 100 no PROG, 111 the saved environment cannot be
/// read, 127/126 PROG not found / not executable.
pub fn with_contenv_main(args: &[OsString]) -> i32 {
    let prog = prog_of(args, "with-contenv");
    let Some((cmd, rest)) = args.get(1..).and_then(|a| a.split_first()) else {
        let _ = writeln!(io::stderr(), "{prog}: usage: {prog} prog [ args... ]");
        return EXIT_USAGE;
    };
    let mut c = Command::new(cmd);
    c.args(rest);
    if !keep_env() {
        let dir = contenv_dir();
        let saved = match load(&dir) {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(
                    io::stderr(),
                    "{prog}: fatal: unable to read {}: {}",
                    dir.display(),
                    errtext(&e)
                );
                return EXIT_SYS;
            }
        };
        c.env_clear();
        c.envs(contenv(std::env::var_os("PATH"), &saved));
    }
    let e = c.exec();
    let _ = writeln!(
        io::stderr(),
        "{prog}: fatal: unable to exec {}: {}",
        cmd.to_string_lossy(),
        errtext(&e)
    );
    if e.kind() == io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// `printcontenv NAME`: prints the value of NAME in the container environment and a newline;
/// exits 1 (silently) when it is not there, 100 without NAME. With `S6_KEEP_ENV`, the value
/// comes from our own environment, and an empty one counts as missing.
pub fn printcontenv_main(args: &[OsString]) -> i32 {
    let prog = prog_of(args, "printcontenv");
    let Some(name) = args.get(1) else {
        let _ = writeln!(io::stderr(), "{prog}: fatal: too few arguments");
        return EXIT_USAGE;
    };
    let value: Option<Vec<u8>> = if keep_env() {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(OsString::into_vec)
    } else if storable(name) {
        fs::read(contenv_dir().join(name)).ok()
    } else {
        None
    };
    let Some(mut v) = value else {
        return 1;
    };
    v.push(b'\n');
    match io::stdout().write_all(&v) {
        Ok(()) => 0,
        Err(_) => EXIT_SYS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_chomp_one_newline() {
        assert_eq!(value_of(b""), None);
        assert_eq!(value_of(b"\n"), Some("".into()));
        assert_eq!(value_of(b"a b  "), Some("a b  ".into()));
        assert_eq!(value_of(b"x\ny\n"), Some("x\ny".into()));
        assert_eq!(value_of(b"a\n\n"), Some("a\n".into()));
        assert_eq!(value_of(b"a\0b"), Some("a\nb".into()));
    }

    #[test]
    fn contenv_keeps_path_unless_saved() {
        let saved = vec![
            ("A".into(), Some("1".into())),
            ("GONE".into(), None),
            ("PATH".into(), Some("/x".into())),
        ];
        let e = contenv(Some("/bin".into()), &saved);
        assert_eq!(
            e,
            vec![("A".into(), "1".into()), ("PATH".into(), "/x".into())]
        );
        let e = contenv(Some("/bin".into()), &saved[..1]);
        assert_eq!(
            e,
            vec![("PATH".into(), "/bin".into()), ("A".into(), "1".into())]
        );
    }

    #[test]
    fn save_and_load_round_trip() {
        let d = std::env::temp_dir().join(format!("rsv-contenv-{}", std::process::id()));
        let vars: Vec<(OsString, OsString)> = vec![
            ("HOME".into(), "/root".into()),
            ("EMPTY".into(), "".into()),
            ("ML".into(), "a\nb".into()),
            ("bad/name".into(), "x".into()),
        ];
        save(&d, &vars).unwrap();
        fs::write(d.join(".hidden"), "x").unwrap();
        let got = load(&d).unwrap();
        assert_eq!(
            got,
            vec![
                ("EMPTY".into(), None),
                ("HOME".into(), Some("/root".into())),
                ("ML".into(), Some("a\nb".into())),
            ]
        );
        // Saving again empties the directory first.
        save(&d, &vars[..1]).unwrap();
        assert_eq!(load(&d).unwrap().len(), 1);
        fs::remove_dir_all(&d).unwrap();
    }
}
