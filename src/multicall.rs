//! The multi-call binary `rsv`: every program in one executable, chosen by the name it was
//! started as (as busybox does), and `rsv install DIR` to create the names as symlinks.
//!
//! `rsv PROGRAM ARGS...` also works without links: it re-executes itself with argv[0] set to
//! PROGRAM, so each program sees exactly the argv it would see when started through a link
//! (several programs read argv[0] for their personality, and the runsvdir personality keeps
//! its log in the argv memory).

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::diag::{EXIT_SYS, EXIT_USAGE};

static ACTIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks this process as the multi-call binary (called first thing by its `main`).
pub fn set_active() {
    ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether this process is the multi-call binary.
pub fn active() -> bool {
    ACTIVE.load(std::sync::atomic::Ordering::Relaxed)
}

/// The programs inside the multi-call binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applet {
    Rsupervise,
    Rsvc,
    Rsvstat,
    Rsvok,
    Rsvscan,
    Rsvscanctl,
    Rsvlog,
    Rsvtai64nlocal,
    Rsvexec,
    RsvImport,
    /// s6-rc's client (`rsv::rc`).
    S6Rc,
    /// s6-overlay's `/init` (see [`crate::overlay`]).
    OverlayInit,
    /// s6-overlay's `with-contenv`.
    WithContenv,
    /// s6-overlay's `printcontenv`.
    Printcontenv,
    /// The steps of the overlay's generated oneshots (internal).
    OverlayStep,
    Systemctl,
}

/// Which set of names a link belongs to (what `rsv install` creates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    /// rsv's own names, always installed.
    Rsv,
    /// runit's names (`--runit`).
    Runit,
    /// s6's names (`--s6`).
    S6,
    /// s6-overlay's names (`--s6-overlay`): `init`, `with-contenv`, `printcontenv`.
    Overlay,
    /// systemd's names (`--systemd`): systemctl, systemd-notify, and systemd (rsvscan
    /// --systemd).
    Systemd,
}

/// Every name the binary answers to.
pub const NAMES: &[(&str, Applet, Set)] = &[
    ("rsvscan", Applet::Rsvscan, Set::Rsv),
    ("rsupervise", Applet::Rsupervise, Set::Rsv),
    ("rsvc", Applet::Rsvc, Set::Rsv),
    ("rsvstat", Applet::Rsvstat, Set::Rsv),
    ("rsvok", Applet::Rsvok, Set::Rsv),
    ("rsvscanctl", Applet::Rsvscanctl, Set::Rsv),
    ("rsvlog", Applet::Rsvlog, Set::Rsv),
    ("rsvtai64nlocal", Applet::Rsvtai64nlocal, Set::Rsv),
    ("rsvexec", Applet::Rsvexec, Set::Rsv),
    ("rsv-import", Applet::RsvImport, Set::Rsv),
    ("runsvdir", Applet::Rsvscan, Set::Runit),
    ("runsv", Applet::Rsupervise, Set::Runit),
    ("sv", Applet::Rsvc, Set::Runit),
    ("svlogd", Applet::Rsvlog, Set::Runit),
    ("chpst", Applet::Rsvexec, Set::Runit),
    ("s6-svscan", Applet::Rsvscan, Set::S6),
    ("s6-supervise", Applet::Rsupervise, Set::S6),
    ("s6-svc", Applet::Rsvc, Set::S6),
    ("s6-svstat", Applet::Rsvstat, Set::S6),
    ("s6-svok", Applet::Rsvok, Set::S6),
    ("s6-svscanctl", Applet::Rsvscanctl, Set::S6),
    ("s6-log", Applet::Rsvlog, Set::S6),
    ("s6-tai64nlocal", Applet::Rsvtai64nlocal, Set::S6),
    ("s6-rc", Applet::S6Rc, Set::S6),
    ("init", Applet::OverlayInit, Set::Overlay),
    ("with-contenv", Applet::WithContenv, Set::Overlay),
    ("printcontenv", Applet::Printcontenv, Set::Overlay),
    (crate::overlay::STEP, Applet::OverlayStep, Set::Overlay),
    ("systemctl", Applet::Systemctl, Set::Systemd),
    ("systemd-notify", Applet::Systemctl, Set::Systemd),
    ("systemd", Applet::Rsvscan, Set::Systemd),
];

/// The name of the multi-call binary itself.
pub const SELF: &str = "rsv";

const USAGE: &str = "usage: rsv program [ args... ] | rsv install [ --runit ] [ --s6 ] [ --s6-overlay ] [ --systemd ] [ -f ] dir | rsv --list";

/// The program a name (argv[0]'s base name) selects.
pub fn lookup(name: &str) -> Option<Applet> {
    NAMES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, a, _)| *a)
}

/// Base name of a path given as argv[0].
pub fn base_name(arg0: &OsStr) -> String {
    Path::new(arg0)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Where our own executable is: /proc/self/exe, else argv[0] when it holds a slash.
pub fn self_exe(arg0: &OsStr) -> Option<PathBuf> {
    if let Ok(p) = fs::read_link("/proc/self/exe") {
        return Some(p);
    }
    if arg0.as_bytes().contains(&b'/') {
        return fs::canonicalize(arg0).ok();
    }
    None
}

/// What `rsv` does when not started under a program name.
pub enum Decision {
    /// Run this program in-process.
    Run(Applet),
    /// Exit with this code (usage, list, install done).
    Exit(i32),
}

/// Handles `rsv ARGS...` (argv[0] is `rsv` or unknown). Re-executes itself for
/// `rsv PROGRAM ...` (does not return on success).
pub fn dispatch_self(args: &[OsString]) -> i32 {
    let arg0 = args.first().cloned().unwrap_or_default();
    let Some(first) = args.get(1).map(|a| a.to_string_lossy().into_owned()) else {
        let _ = writeln!(io::stderr(), "{SELF}: {USAGE}");
        return EXIT_USAGE;
    };
    match first.as_str() {
        "--list" => {
            let mut out = io::stdout().lock();
            for (n, _, _) in NAMES.iter().filter(|(n, _, _)| *n != crate::overlay::STEP) {
                let _ = writeln!(out, "{n}");
            }
            0
        }
        "install" => install(&args[2..]),
        "-h" | "--help" => {
            println!("{USAGE}");
            0
        }
        name if lookup(name).is_some() => {
            let Some(exe) = self_exe(&arg0) else {
                let _ = writeln!(
                    io::stderr(),
                    "{SELF}: fatal: unable to find my own executable (no /proc/self/exe): use a link named {name}"
                );
                return EXIT_SYS;
            };
            reexec(&exe, &args[1..])
        }
        other => {
            let _ = writeln!(
                io::stderr(),
                "{SELF}: fatal: unknown program: {other} (rsv --list shows the names)"
            );
            EXIT_USAGE
        }
    }
}

fn reexec(exe: &Path, argv: &[OsString]) -> i32 {
    let cs = |s: &OsStr| CString::new(s.as_bytes()).ok();
    let (Some(path), Some(argv)) = (
        cs(exe.as_os_str()),
        argv.iter().map(|a| cs(a)).collect::<Option<Vec<CString>>>(),
    ) else {
        let _ = writeln!(io::stderr(), "{SELF}: fatal: argument contains a NUL byte");
        return EXIT_USAGE;
    };
    let err = nix::unistd::execv(&path, &argv).unwrap_err();
    let _ = writeln!(
        io::stderr(),
        "{SELF}: fatal: unable to exec {}: {}",
        exe.display(),
        err.desc()
    );
    EXIT_SYS
}

/// `rsv install [--runit] [--s6] [-f] DIR`: creates DIR/NAME -> our executable for every name
/// of the chosen sets. An existing link to us is left alone; any other existing file is an
/// error unless `-f`.
pub fn install(args: &[OsString]) -> i32 {
    let mut sets = vec![Set::Rsv];
    let mut force = false;
    let mut dir: Option<PathBuf> = None;
    for a in args {
        match a.to_str() {
            Some("--runit") => sets.push(Set::Runit),
            Some("--s6") => sets.push(Set::S6),
            Some("--s6-overlay") => sets.push(Set::Overlay),
            Some("--systemd") => sets.push(Set::Systemd),
            Some("-f") | Some("--force") => force = true,
            Some(o) if o.starts_with('-') => {
                let _ = writeln!(io::stderr(), "{SELF}: {USAGE}");
                return EXIT_USAGE;
            }
            _ if dir.is_none() => dir = Some(PathBuf::from(a)),
            _ => {
                let _ = writeln!(io::stderr(), "{SELF}: {USAGE}");
                return EXIT_USAGE;
            }
        }
    }
    let Some(dir) = dir else {
        let _ = writeln!(io::stderr(), "{SELF}: {USAGE}");
        return EXIT_USAGE;
    };
    let arg0 = std::env::args_os().next().unwrap_or_default();
    let Some(exe) = self_exe(&arg0) else {
        let _ = writeln!(
            io::stderr(),
            "{SELF}: fatal: unable to find my own executable"
        );
        return EXIT_SYS;
    };
    // A link in the executable's own directory points at the bare name, so the set can be
    // moved or copied (COPY --from) as a whole.
    let same_dir =
        fs::canonicalize(&dir).ok() == exe.parent().and_then(|p| fs::canonicalize(p).ok());
    let target: PathBuf = if same_dir {
        PathBuf::from(exe.file_name().unwrap_or(OsStr::new(SELF)))
    } else {
        exe.clone()
    };
    if let Err(e) = fs::create_dir_all(&dir) {
        let _ = writeln!(
            io::stderr(),
            "{SELF}: fatal: unable to create {}: {}",
            dir.display(),
            crate::svdir::errtext(&e)
        );
        return EXIT_SYS;
    }
    for (name, _, set) in NAMES {
        if !sets.contains(set) || *name == crate::overlay::STEP {
            continue;
        }
        let link = dir.join(name);
        if let Ok(meta) = fs::symlink_metadata(&link) {
            let points_to_us = meta.file_type().is_symlink()
                && fs::canonicalize(&link).ok() == fs::canonicalize(&exe).ok();
            if points_to_us {
                continue;
            }
            if !force {
                let _ = writeln!(
                    io::stderr(),
                    "{SELF}: fatal: {} exists and is not a link to {} (use -f to replace it)",
                    link.display(),
                    exe.display()
                );
                return EXIT_SYS;
            }
            if let Err(e) = fs::remove_file(&link) {
                let _ = writeln!(
                    io::stderr(),
                    "{SELF}: fatal: unable to remove {}: {}",
                    link.display(),
                    crate::svdir::errtext(&e)
                );
                return EXIT_SYS;
            }
        }
        if let Err(e) = symlink(&target, &link) {
            let _ = writeln!(
                io::stderr(),
                "{SELF}: fatal: unable to create {}: {}",
                link.display(),
                crate::svdir::errtext(&e)
            );
            return EXIT_SYS;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_unique_and_found() {
        for (i, (n, a, _)) in NAMES.iter().enumerate() {
            assert_eq!(lookup(n), Some(*a));
            assert!(NAMES[i + 1..].iter().all(|(m, _, _)| m != n), "{n} twice");
        }
        assert_eq!(lookup("rsv"), None);
        assert_eq!(lookup("runsv"), Some(Applet::Rsupervise));
    }

    #[test]
    fn base_names() {
        assert_eq!(base_name(OsStr::new("/usr/bin/sv")), "sv");
        assert_eq!(base_name(OsStr::new("./run")), "run");
    }
}
