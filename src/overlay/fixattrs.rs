//! `/etc/fix-attrs.d` (deprecated by s6-overlay v3, still run by it): each line
//! `PATH RECURSE ACCOUNT FMODE DMODE` sets the owner and mode of PATH (and, with RECURSE
//! `true`, of everything below it; entries starting with a dot are left alone unless
//! `S6_FIX_ATTRS_HIDDEN` is set). ACCOUNT is `USER[:GROUP][,UID:GID]`: names or numbers, the
//! numbers after the comma standing in for a name that does not exist. Blank lines and lines
//! starting with `#` are skipped. PATH is taken literally (no glob patterns).

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::config::{Stage2Failure, flag};
use super::steps::{etc_dir, saved_config, scripts};
use crate::svdir::errtext;

/// One rule of a fix-attrs file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub path: String,
    pub recurse: bool,
    pub user: String,
    pub group: Option<String>,
    pub fallback: Option<(u32, u32)>,
    pub fmode: u32,
    pub dmode: u32,
}

/// Parses one line; `Ok(None)` for a blank or comment line.
pub fn parse(line: &str) -> Result<Option<Rule>, String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.is_empty() || w[0].starts_with('#') {
        return Ok(None);
    }
    let [path, recurse, account, fmode, dmode] = w[..] else {
        return Err(format!("expected 5 fields, found {}", w.len()));
    };
    let recurse = match recurse {
        "true" => true,
        "false" => false,
        o => return Err(format!("recurse must be true or false, not {o}")),
    };
    let (acct, fallback) = match account.split_once(',') {
        Some((a, f)) => {
            let f = f.trim_end_matches(':');
            let (u, g) = f.split_once(':').ok_or(format!("bad fallback {f}"))?;
            let n = |s: &str| s.parse::<u32>().map_err(|_| format!("bad fallback {f}"));
            (a, Some((n(u)?, n(g)?)))
        }
        None => (account, None),
    };
    let acct = acct.trim_end_matches(':');
    let (user, group) = match acct.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (acct.to_string(), None),
    };
    let mode = |s: &str| u32::from_str_radix(s, 8).map_err(|_| format!("bad mode {s}"));
    Ok(Some(Rule {
        path: path.to_string(),
        recurse,
        user,
        group,
        fallback,
        fmode: mode(fmode)?,
        dmode: mode(dmode)?,
    }))
}

/// The uid and gid a rule gives, looking names up in `/etc/passwd` and `/etc/group`.
pub fn ids(r: &Rule) -> Result<(u32, u32), String> {
    use crate::exec::{lookup_group, lookup_user};
    let fb = r.fallback;
    let (uid, primary) = match r.user.parse::<u32>() {
        Ok(n) => (n, None),
        Err(_) => match lookup_user(r.user.as_bytes()) {
            Some((u, g)) => (u, Some(g)),
            None => match fb {
                Some((u, _)) => (u, None),
                None => return Err(format!("unknown user {}", r.user)),
            },
        },
    };
    let gid = match &r.group {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => match lookup_group(g.as_bytes()) {
                Some(gid) => gid,
                None => fb.map(|f| f.1).ok_or(format!("unknown group {g}"))?,
            },
        },
        None => primary
            .or(fb.map(|f| f.1))
            .ok_or(format!("no group for {}", r.user))?,
    };
    Ok((uid, gid))
}

fn apply(p: &Path, r: &Rule, uid: u32, gid: u32, hidden: bool) -> io::Result<()> {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
    let m = std::fs::symlink_metadata(p)?;
    if m.file_type().is_symlink() {
        return Ok(());
    }
    let mode = if m.is_dir() { r.dmode } else { r.fmode };
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
    if m.is_dir() && r.recurse {
        for e in std::fs::read_dir(p)? {
            let e = e?;
            if !hidden && e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            apply(&e.path(), r, uid, gid, hidden)?;
        }
    }
    Ok(())
}

/// The `fix-attrs` step: applies every file of `/etc/fix-attrs.d`.
pub fn step(run: &Path, root: &Path) -> i32 {
    let cfg = saved_config(run);
    let hidden = flag(
        super::env::load(&run.join(super::env::CONTENV))
            .unwrap_or_default()
            .iter()
            .find(|(k, _)| k == "S6_FIX_ATTRS_HIDDEN")
            .and_then(|(_, v)| v.as_ref()?.to_str()),
    );
    let files = scripts(&etc_dir(root, &cfg).join("fix-attrs.d"));
    let mut failed = false;
    for f in &files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(
                    io::stderr(),
                    "fix-attrs: warning: unable to read {}: {}",
                    f.display(),
                    errtext(&e)
                );
                failed = true;
                continue;
            }
        };
        for (i, line) in text.lines().enumerate() {
            let r = parse(line).and_then(|r| match r {
                None => Ok(()),
                Some(r) => {
                    let (uid, gid) = ids(&r)?;
                    let p = root.join(r.path.trim_start_matches('/'));
                    apply(&p, &r, uid, gid, hidden)
                        .map_err(|e| format!("{}: {}", p.display(), errtext(&e)))
                }
            });
            if let Err(e) = r {
                let _ = writeln!(
                    io::stderr(),
                    "fix-attrs: warning: {} line {}: {e}",
                    f.display(),
                    i + 1
                );
                failed = true;
            }
        }
    }
    if !files.is_empty() && cfg.shows(1) {
        let _ = writeln!(
            io::stderr(),
            "fix-attrs: warning: fix-attrs.d is deprecated: set ownership and modes in the image or the container manager"
        );
    }
    if failed && cfg.on_failure == Stage2Failure::Stop {
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("  ").unwrap(), None);
        assert_eq!(parse("# x y").unwrap(), None);
        let r = parse("/var/log/x true nobody,32768:32768 0644 2700")
            .unwrap()
            .unwrap();
        assert_eq!(r.path, "/var/log/x");
        assert!(r.recurse);
        assert_eq!(r.user, "nobody");
        assert_eq!(r.group, None);
        assert_eq!(r.fallback, Some((32768, 32768)));
        assert_eq!((r.fmode, r.dmode), (0o644, 0o2700));
        let r = parse("/d false daemon:unexisting,3:4: 0600 0700")
            .unwrap()
            .unwrap();
        assert_eq!(r.group.as_deref(), Some("unexisting"));
        assert_eq!(ids(&r).unwrap().1, 4);
        let r = parse("/d false 11111:11111 0600 0700").unwrap().unwrap();
        assert_eq!(ids(&r).unwrap(), (11111, 11111));
        let r = parse("/d false unexisting-user-x:0,3:4 0600 0700")
            .unwrap()
            .unwrap();
        assert_eq!(ids(&r).unwrap(), (3, 0));
        assert!(parse("/d maybe root 0600 0700").is_err());
        assert!(parse("/d true root 0689 0700").is_err());
        assert!(parse("/d true root").is_err());
    }
}
