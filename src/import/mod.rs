//! rsv-import: turns a supervisord.conf, a Procfile or systemd units into service
//! directories.
//!
//! `rsv-import [-f] supervisord FILE OUTDIR`, `rsv-import [-f] [-p PORT] procfile FILE
//! OUTDIR` and `rsv-import [-f] systemd UNIT... OUTDIR`. Each program becomes `OUTDIR/NAME/` with `run` (a /bin/sh script that ends in
//! `exec`), and as needed `finish`, `down`, `log/run`, `env/` and the rsv files
//! `backoff-reset`, `give-up`, `down-signal`, `timeout-kill`, and `dependencies.d/` for
//! supervisord's start order (`priority`); a program with `numprocs` > 1 becomes a template
//! `OUTDIR/NAME@/` and its instances `NAME@N` (see [`crate::template`]). Every setting that has no
//! translation is listed on stderr, one line each. Nothing is written when a target service
//! directory exists (unless -f) or a file cannot be read.

pub mod ini;
pub mod priority;
pub mod procfile;
pub mod supervisord;
pub mod systemd;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::diag::{EXIT_SYS, EXIT_USAGE};

/// Exit code when a program could not be imported (the others were).
pub const EXIT_PARTIAL: i32 = 1;

const USAGE: &str = "rsv-import [ -f ] supervisord file outdir | rsv-import [ -f ] [ -p baseport ] procfile file outdir | rsv-import [ -f ] systemd unit... outdir";

/// One service directory to write.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub run: String,
    pub finish: Option<String>,
    pub log_run: Option<String>,
    pub down: bool,
    /// `env/` files: name and value.
    pub env: Vec<(String, String)>,
    /// Other files (`backoff-reset`, `give-up`, `down-signal`, `timeout-kill`): name and content.
    pub files: Vec<(String, String)>,
    /// Other executable scripts (a oneshot's `start`/`stop`, `reload`, a longrun's `stop`, an
    /// instance's `run.template`): name and content.
    pub execs: Vec<(String, String)>,
    /// `dependencies.d/` entries: the services that must be up before this one starts.
    pub deps: Vec<String>,
}

/// What an import produced: services, lines for settings not translated, and programs that
/// could not be imported at all.
#[derive(Debug, Default)]
pub struct Outcome {
    pub services: Vec<Service>,
    pub notes: Vec<String>,
    pub errors: Vec<String>,
}

/// The files rsv-import writes into a service directory (removed first under -f).
const MANAGED: &[&str] = &[
    "run",
    "finish",
    "down",
    "log/run",
    "backoff-reset",
    "give-up",
    "down-signal",
    "timeout-kill",
    "timeout-finish",
    "notify-socket",
    "watchdog-usec",
    "type",
    "up",
    "start",
    "stop",
    "reload",
    "stop-tree",
    "run.template",
    crate::template::MARKER,
];

fn write_exec(path: &Path, text: &str) -> std::io::Result<()> {
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

/// Writes one service directory under `outdir`.
pub fn write_service(outdir: &Path, s: &Service) -> Result<(), String> {
    let dir = outdir.join(&s.name);
    let err = |p: &Path, e: std::io::Error| format!("{}: {}", p.display(), why(&e));
    fs::create_dir_all(&dir).map_err(|e| err(&dir, e))?;
    for f in MANAGED {
        let _ = fs::remove_file(dir.join(f));
    }
    for sub in ["env", "dependencies.d"] {
        if dir.join(sub).is_dir() {
            let _ = fs::remove_dir_all(dir.join(sub));
        }
    }
    if !s.run.is_empty() {
        write_exec(&dir.join("run"), &s.run).map_err(|e| err(&dir.join("run"), e))?;
    }
    for (name, text) in &s.execs {
        write_exec(&dir.join(name), text).map_err(|e| err(&dir.join(name), e))?;
    }
    if let Some(f) = &s.finish {
        write_exec(&dir.join("finish"), f).map_err(|e| err(&dir.join("finish"), e))?;
    }
    if let Some(l) = &s.log_run {
        let ld = dir.join("log");
        fs::create_dir_all(&ld).map_err(|e| err(&ld, e))?;
        write_exec(&ld.join("run"), l).map_err(|e| err(&ld.join("run"), e))?;
    }
    if s.down {
        fs::write(dir.join("down"), "").map_err(|e| err(&dir.join("down"), e))?;
    }
    if !s.env.is_empty() {
        let ed = dir.join("env");
        fs::create_dir_all(&ed).map_err(|e| err(&ed, e))?;
        for (k, v) in &s.env {
            // An envdir value is one line; a newline in it is stored as NUL.
            let mut b: Vec<u8> = v.bytes().map(|c| if c == b'\n' { 0 } else { c }).collect();
            b.push(b'\n');
            fs::write(ed.join(k), b).map_err(|e| err(&ed.join(k), e))?;
        }
    }
    for (name, content) in &s.files {
        fs::write(dir.join(name), format!("{content}\n")).map_err(|e| err(&dir.join(name), e))?;
    }
    if !s.deps.is_empty() {
        let dd = dir.join("dependencies.d");
        fs::create_dir_all(&dd).map_err(|e| err(&dd, e))?;
        for d in &s.deps {
            fs::write(dd.join(d), "").map_err(|e| err(&dd.join(d), e))?;
        }
    }
    Ok(())
}

/// A service name must be usable as a directory name of a scan dir.
pub fn valid_name(n: &str) -> bool {
    !n.is_empty() && !n.starts_with('.') && !n.contains('/') && n != "log"
}

/// The program's entry point (`args` without argv[0]).
pub fn main(prog: &str, args: &[String]) -> i32 {
    let mut force = false;
    let mut port: u32 = 5000;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-f" => force = true,
            "-p" => {
                i += 1;
                match args.get(i).and_then(|p| p.parse().ok()) {
                    Some(p) if p > 0 && p < 65536 => port = p,
                    _ => return usage(prog),
                }
            }
            "--" => {
                i += 1;
                break;
            }
            a if a.starts_with('-') && a.len() > 1 => return usage(prog),
            _ => break,
        }
        i += 1;
    }
    let rest = &args[i..];
    if rest.first().map(String::as_str) == Some("systemd") {
        if rest.len() < 3 {
            return usage(prog);
        }
        let outdir = Path::new(&rest[rest.len() - 1]);
        return match systemd_outcome(prog, &rest[1..rest.len() - 1], outdir) {
            Ok(o) => write_outcome(prog, &o, outdir, force),
            Err(code) => code,
        };
    }
    if rest.len() != 3 {
        return usage(prog);
    }
    let (kind, file, outdir) = (rest[0].as_str(), Path::new(&rest[1]), Path::new(&rest[2]));
    if kind != "supervisord" && kind != "procfile" {
        return usage(prog);
    }
    let text = match fs::read(file) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) => {
            eprintln!(
                "{prog}: fatal: unable to read {}: {}",
                file.display(),
                why(&e)
            );
            return EXIT_SYS;
        }
    };
    let outcome = match kind {
        "supervisord" => {
            let here = fs::canonicalize(file)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from("."));
            match supervisord::import(&text, &here) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("{prog}: fatal: {}: {e}", file.display());
                    return EXIT_SYS;
                }
            }
        }
        "procfile" => procfile::import(&text, port),
        _ => return usage(prog),
    };
    write_outcome(prog, &outcome, outdir, force)
}

/// Reads the units named on the command line and translates them.
fn systemd_outcome(prog: &str, units: &[String], outdir: &Path) -> Result<Outcome, i32> {
    let mut loaded = Vec::new();
    for u in units {
        match systemd::load::load_path(Path::new(u), &[]) {
            Ok(x) => loaded.push(x),
            Err(e) => {
                eprintln!("{prog}: fatal: {e}");
                return Err(EXIT_SYS);
            }
        }
    }
    let mut known: std::collections::BTreeSet<String> = loaded
        .iter()
        .map(|u| systemd::service_name(&u.name))
        .collect();
    if let Ok(rd) = fs::read_dir(outdir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                known.insert(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let abs = std::path::absolute(outdir).unwrap_or_else(|_| outdir.to_path_buf());
    Ok(systemd::import(&loaded, &known, &abs))
}

/// Writes what an import produced (after refusing existing directories without -f) and
/// reports on stderr; returns the exit code.
pub fn write_outcome(prog: &str, outcome: &Outcome, outdir: &Path, force: bool) -> i32 {
    let mut err = std::io::stderr().lock();
    // Refuse before writing anything.
    if !force {
        for s in &outcome.services {
            let d = outdir.join(&s.name);
            if d.exists() {
                let _ = writeln!(
                    err,
                    "{prog}: fatal: {} exists (use -f to overwrite the files rsv-import writes)",
                    d.display()
                );
                return EXIT_SYS;
            }
        }
    }
    for n in &outcome.notes {
        let _ = writeln!(err, "{prog}: not translated: {n}");
    }
    for e in &outcome.errors {
        let _ = writeln!(err, "{prog}: not imported: {e}");
    }
    if let Err(e) = fs::create_dir_all(outdir) {
        let _ = writeln!(
            err,
            "{prog}: fatal: unable to create {}: {e}",
            outdir.display()
        );
        return EXIT_SYS;
    }
    for s in &outcome.services {
        if let Err(e) = write_service(outdir, s) {
            let _ = writeln!(err, "{prog}: fatal: unable to write {e}");
            return EXIT_SYS;
        }
        let _ = writeln!(err, "{prog}: wrote {}", outdir.join(&s.name).display());
    }
    if outcome.errors.is_empty() {
        0
    } else {
        EXIT_PARTIAL
    }
}

/// A short reason for an I/O error (runit's words for errno values).
fn why(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => crate::exec::errstr(n),
        None => e.to_string(),
    }
}

fn usage(prog: &str) -> i32 {
    eprintln!("{prog}: usage: {USAGE}");
    EXIT_USAGE
}
