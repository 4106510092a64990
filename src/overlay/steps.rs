//! The work of s6-overlay's own oneshots, run by the scanner through the one-line `up`/`down`
//! scripts of the generated scan directory: `rsv-overlay-step STEP RUN ROOT`, where RUN is the
//! run directory (normally `/run`) and ROOT the image root (normally `/`).
//!
//! - `cont-init`: every entry of `/etc/cont-init.d` in byte order; a failure is reported and,
//!   with `S6_BEHAVIOUR_IF_STAGE2_FAILS` 2 or more, fails the oneshot (exit 1).
//! - `cont-finish`: every entry of `/etc/cont-finish.d` in byte order, each bounded by
//!   `S6_KILL_FINISH_MAXTIME` (then SIGKILLed); always exits 0.
//! - `fix-attrs`: `/etc/fix-attrs.d` (deprecated by s6-overlay): see [`super::fixattrs`].
//! - `legacy-services`: nothing (the oneshot only orders `user2` after `/etc/services.d`).
//! - `halt`: asks the scanner for the orderly stop (`/run/s6/basedir/bin/halt`).
//! - `cmd-stdio OUT ERR CMD...` (no RUN ROOT): see [`super::logging`].
//!
//! The settings come from the saved container environment, as s6-overlay's scripts read them
//! with `printcontenv`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::config::{Config, Stage2Failure};
use super::env;
use crate::diag::EXIT_USAGE;
use crate::svdir::errtext;

/// The name of the step personality in the multi-call binary.
pub const STEP: &str = "rsv-overlay-step";

/// The settings as the container environment saved at boot gives them.
pub fn saved_config(run: &Path) -> Config {
    let vars: HashMap<String, String> = env::load(&run.join(env::CONTENV))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v?.into_string().ok()?)))
        .collect();
    Config::from_lookup(|k| vars.get(k).cloned())
}

/// `/etc`, or `/etc/cont-profile.d/PROFILE` with `S6_RUNTIME_PROFILE`, under `root`.
pub fn etc_dir(root: &Path, cfg: &Config) -> PathBuf {
    match &cfg.runtime_profile {
        Some(p) => root.join("etc/cont-profile.d").join(p),
        None => root.join("etc"),
    }
}

/// The entries of `dir` to run, in byte order (dot-files and directories left out); an
/// absent directory has none.
pub fn scripts(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| !p.is_dir())
        .collect();
    v.sort();
    v
}

/// Runs one script to its end, SIGKILLed after `bound` (when set). Returns its exit code
/// (128+N when killed by signal N; 126/127 when it cannot be run, with a message).
fn run_one(tag: &str, p: &Path, bound: Option<Duration>) -> i32 {
    let mut child = match Command::new(p).spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "{tag}: warning: unable to run {}: {}",
                p.display(),
                errtext(&e)
            );
            return if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            };
        }
    };
    let deadline = bound.map(|b| Instant::now() + b);
    let st = loop {
        match deadline {
            None => break child.wait(),
            Some(d) => match child.try_wait() {
                Ok(Some(st)) => break Ok(st),
                Ok(None) if Instant::now() >= d => {
                    let _ = writeln!(
                        io::stderr(),
                        "{tag}: warning: {} still runs after {} ms: killing it",
                        p.display(),
                        bound.unwrap_or_default().as_millis()
                    );
                    let _ = child.kill();
                    break child.wait();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => break Err(e),
            },
        }
    };
    match st {
        Ok(st) => st
            .code()
            .or_else(|| st.signal().map(|n| 128 + n))
            .unwrap_or(1),
        Err(_) => 1,
    }
}

fn cont_init(run: &Path, root: &Path) -> i32 {
    let cfg = saved_config(run);
    let mut failed = false;
    for p in scripts(&etc_dir(root, &cfg).join("cont-init.d")) {
        let code = run_one("cont-init", &p, None);
        if cfg.shows(2) {
            let _ = writeln!(io::stderr(), "cont-init: {} exited {code}", p.display());
        }
        failed |= code != 0;
    }
    if failed && cfg.on_failure != Stage2Failure::Continue {
        if cfg.shows(1) {
            let _ = writeln!(
                io::stderr(),
                "cont-init: warning: a script of cont-init.d failed"
            );
        }
        if cfg.on_failure == Stage2Failure::Stop {
            return 1;
        }
    }
    0
}

fn cont_finish(run: &Path, root: &Path) -> i32 {
    let cfg = saved_config(run);
    let bound =
        (cfg.kill_finish_maxtime_ms > 0).then(|| Duration::from_millis(cfg.kill_finish_maxtime_ms));
    for p in scripts(&etc_dir(root, &cfg).join("cont-finish.d")) {
        let code = run_one("cont-finish", &p, bound);
        if cfg.shows(2) {
            let _ = writeln!(io::stderr(), "cont-finish: {} exited {code}", p.display());
        }
    }
    0
}

/// `rsv-overlay-step STEP RUN ROOT`.
pub fn main(args: &[OsString]) -> i32 {
    let usage = || {
        let _ = writeln!(
            io::stderr(),
            "{STEP}: usage: {STEP} cont-init|cont-finish|fix-attrs|legacy-services|halt run root"
        );
        EXIT_USAGE
    };
    if args.get(1).is_some_and(|a| a == "cmd-stdio") {
        return super::logging::cmd_stdio(&args[2..]);
    }
    let [_, step, run, root] = args else {
        return usage();
    };
    let (run, root) = (Path::new(run), Path::new(root));
    match step.to_str() {
        Some("cont-init") => cont_init(run, root),
        Some("cont-finish") => cont_finish(run, root),
        Some("fix-attrs") => super::fixattrs::step(run, root),
        Some("legacy-services") => 0,
        Some("halt") => {
            let scan = run.join(super::SCAN);
            crate::scan::control("halt", &scan.to_string_lossy(), b"t")
        }
        _ => usage(),
    }
}
