//! Environment directories: one file per variable, as read by s6-envdir and runit's
//! `chpst -e` / `envdir`.
//!
//! A file `NAME` whose first line is `v` sets `NAME=v`; an empty file (0 bytes) removes
//! `NAME`. The first line ends at the first newline; trailing blanks are removed (s6: spaces,
//! tabs and carriage returns; runit: spaces and tabs) and NUL bytes become newlines. Entries
//! whose name starts with a dot or contains `=` are skipped, as are subdirectories.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// Whose trimming rule applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    S6,
    Runit,
}

/// One variable to set (`Some`) or remove (`None`).
pub type Change = (OsString, Option<OsString>);

/// The value a file's content gives, `None` for an empty file.
pub fn value_of(content: &[u8], flavor: Flavor) -> Option<OsString> {
    if content.is_empty() {
        return None;
    }
    let line = content.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let blank = |b: &u8| match flavor {
        Flavor::S6 => matches!(b, b' ' | b'\t' | b'\r'),
        Flavor::Runit => matches!(b, b' ' | b'\t'),
    };
    let end = line.iter().rposition(|b| !blank(b)).map_or(0, |i| i + 1);
    let v: Vec<u8> = line[..end]
        .iter()
        .map(|&b| if b == 0 { b'\n' } else { b })
        .collect();
    Some(OsString::from_vec(v))
}

/// Reads every variable file of `dir`, sorted by name. Errors: the directory cannot be read,
/// or a file in it cannot be read (the error names nothing; callers add the path).
pub fn read(dir: &Path, flavor: Flavor) -> io::Result<Vec<Change>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let b = name.as_bytes();
        if b.is_empty() || b[0] == b'.' || b.contains(&b'=') {
            continue;
        }
        let path = entry.path();
        if fs::metadata(&path).map(|m| m.is_dir()).unwrap_or(false) {
            continue;
        }
        let content = fs::read(&path)?;
        out.push((name, value_of(&content, flavor)));
    }
    out.sort();
    Ok(out)
}

/// Applies changes to an environment given as `NAME=value` pairs, keeping its order; new
/// variables are appended.
pub fn apply(env: &mut Vec<(OsString, OsString)>, changes: &[Change]) {
    for (name, value) in changes {
        env.retain(|(k, _)| k != name);
        if let Some(v) = value {
            env.push((name.clone(), v.clone()));
        }
    }
}

/// The current process environment as pairs.
pub fn current() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

/// `NAME=value` byte strings, e.g. for `execve`.
pub fn to_pairs(env: &[(OsString, OsString)]) -> Vec<Vec<u8>> {
    env.iter()
        .map(|(k, v)| {
            let mut s = k.as_bytes().to_vec();
            s.push(b'=');
            s.extend_from_slice(OsStr::as_bytes(v));
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(b: &[u8], f: Flavor) -> Option<String> {
        value_of(b, f).map(|s| s.to_string_lossy().into_owned())
    }

    #[test]
    fn file_values() {
        assert_eq!(v(b"", Flavor::S6), None);
        assert_eq!(v(b"\n", Flavor::S6), Some(String::new()));
        assert_eq!(v(b"abc  \t\nsecond", Flavor::S6), Some("abc".into()));
        assert_eq!(v(b"a\0b\r", Flavor::S6), Some("a\nb".into()));
        assert_eq!(v(b"a\0b\r", Flavor::Runit), Some("a\nb\r".into()));
        assert_eq!(v(b" lead", Flavor::Runit), Some(" lead".into()));
    }

    #[test]
    fn apply_sets_and_removes() {
        let mut env = vec![
            (OsString::from("A"), OsString::from("1")),
            (OsString::from("B"), OsString::from("2")),
        ];
        apply(
            &mut env,
            &[
                (OsString::from("A"), None),
                (OsString::from("C"), Some(OsString::from("3"))),
                (OsString::from("B"), Some(OsString::from("x"))),
            ],
        );
        let pairs = to_pairs(&env);
        assert_eq!(pairs, vec![b"C=3".to_vec(), b"B=x".to_vec()]);
    }

    #[test]
    fn reads_a_directory() {
        let d = std::env::temp_dir().join(format!("rsv-envdir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(d.join("B"), "two\n").unwrap();
        fs::write(d.join("A"), "").unwrap();
        fs::write(d.join(".hidden"), "x").unwrap();
        let got = read(&d, Flavor::S6).unwrap();
        fs::remove_dir_all(&d).unwrap();
        assert_eq!(
            got,
            vec![
                (OsString::from("A"), None),
                (OsString::from("B"), Some(OsString::from("two")))
            ]
        );
    }
}
