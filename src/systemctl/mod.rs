//! The `systemctl` personality: systemctl's commands for containers, on rsv's supervision
//! tree. Unit files are read from systemd's search path (under `--root`), imported on the fly
//! into a scan directory (`$RSV_SYSTEMD_SCANDIR`, default /run/rsv/systemd) that `rsvscan
//! --systemd` watches, and controlled there. `enable`/`disable` write systemd's own
//! `*.wants` links, so package scripts and `RUN systemctl enable nginx` work in an image
//! without any process running. Exit codes are systemctl's (see man systemctl.8).

pub mod boot;
pub mod engine;
mod install;
pub mod notify;
mod show;
pub mod state;
pub mod units;

use install::{disable, enable, is_enabled, mask};
pub use show::utc_time;
use show::{cat, list_unit_files, list_units, loaded_services, show, status};

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::import::systemd as imp;
use crate::svview::View;
use state::Facts;
use units::Env;

/// systemctl's codes.
pub const EXIT_FAILURE: i32 = 1;
/// Not active (status, is-active).
pub const EXIT_INACTIVE: i32 = 3;
/// No such unit (status).
pub const EXIT_NO_UNIT_STATUS: i32 = 4;
/// No such unit (start, stop ...).
pub const EXIT_NO_UNIT: i32 = 5;

/// Marker of a oneshot whose start script ran (removed by stop).
pub const ONESHOT_DONE: &str = ".systemctl-active";

const VERBS: &str = "start stop restart try-restart reload reload-or-restart status is-active is-enabled is-failed enable disable mask unmask list-units list-unit-files daemon-reload show cat is-system-running get-default";

#[derive(Default)]
struct Opts {
    root: Option<String>,
    now: bool,
    quiet: bool,
    all: bool,
    no_block: bool,
    value: bool,
    no_legend: bool,
    props: Vec<String>,
}

fn err(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn out(msg: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{msg}");
}

/// Entry point (`args` without argv[0]).
pub fn main(args: &[String]) -> i32 {
    let mut o = Opts::default();
    let mut words = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--now" => o.now = true,
            "-q" | "--quiet" => o.quiet = true,
            "-a" | "--all" => o.all = true,
            "--no-block" => o.no_block = true,
            "--value" => o.value = true,
            "--no-legend" => o.no_legend = true,
            "--no-pager" | "--system" | "--no-ask-password" | "--no-reload" | "-l" | "--full"
            | "--plain" | "-f" | "--force" | "--runtime" => {}
            "--version" => {
                out("rsv systemctl 0.1.0 (a systemctl for containers on rsv)");
                return 0;
            }
            "-h" | "--help" => {
                out(&format!(
                    "systemctl [OPTIONS...] COMMAND [UNIT...]\ncommands: {VERBS}"
                ));
                return 0;
            }
            "-p" | "--property" => match it.next() {
                Some(v) => o.props.extend(v.split(',').map(str::to_string)),
                None => {
                    err("systemctl: option requires an argument -- 'p'");
                    return EXIT_FAILURE;
                }
            },
            "-t" | "--type" | "--state" => {
                it.next();
            }
            s if s.starts_with("--property=") => {
                o.props
                    .extend(s["--property=".len()..].split(',').map(str::to_string));
            }
            s if s.starts_with("-p") && s.len() > 2 => {
                o.props.extend(s[2..].split(',').map(str::to_string));
            }
            s if s.starts_with("--root=") => o.root = Some(s["--root=".len()..].to_string()),
            "--root" => o.root = it.next().cloned(),
            s if s.starts_with("--type=") || s.starts_with("--state=") => {}
            s if s.starts_with('-') && s.len() > 1 => {
                err(&format!("systemctl: unrecognized option '{s}'"));
                return EXIT_FAILURE;
            }
            _ => words.push(a.clone()),
        }
    }
    let env = Env::new(o.root.as_deref());
    let Some((verb, units)) = words.split_first() else {
        return list_units(&env, &o);
    };
    let units: Vec<String> = units.iter().map(|u| units::full_name(u)).collect();
    let no_units = matches!(
        verb.as_str(),
        "list-units" | "list-unit-files" | "daemon-reload" | "is-system-running" | "get-default"
    ) || verb == "show";
    let need_units = !no_units;
    if need_units && units.is_empty() {
        err("Too few arguments.");
        return EXIT_FAILURE;
    }
    match verb.as_str() {
        "start" => each(&units, |u| start(&env, u, &o)),
        "stop" => each(&units, |u| stop(&env, u, &o)),
        "restart" => each(&units, |u| {
            let r = stop(&env, u, &o);
            if r != 0 { r } else { start(&env, u, &o) }
        }),
        "try-restart" => each(&units, |u| {
            if facts(&env, u).0 == "active" {
                let r = stop(&env, u, &o);
                if r != 0 { r } else { start(&env, u, &o) }
            } else {
                0
            }
        }),
        "reload" => each(&units, |u| reload(&env, u, false)),
        "reload-or-restart" | "force-reload" => each(&units, |u| reload(&env, u, true)),
        "status" => status(&env, &units),
        "is-active" => is_state(&units, &o, |u| facts(&env, u).0, "active", EXIT_INACTIVE),
        "is-failed" => is_state(&units, &o, |u| facts(&env, u).0, "failed", EXIT_FAILURE),
        "is-enabled" => is_enabled(&env, &units, &o),
        "enable" => each(&units, |u| enable(&env, u, &o)),
        "disable" => each(&units, |u| disable(&env, u, &o)),
        "mask" => each(&units, |u| mask(&env, u, true)),
        "unmask" => each(&units, |u| mask(&env, u, false)),
        "list-units" => list_units(&env, &o),
        "list-unit-files" => list_unit_files(&env, &o),
        "daemon-reload" => daemon_reload(&env),
        "show" => show(&env, &units, &o),
        "cat" => each(&units, |u| cat(&env, u)),
        "is-system-running" => {
            let running = boot::scanner_listening(&env.scandir);
            if !o.quiet {
                out(if running { "running" } else { "offline" });
            }
            if running { 0 } else { EXIT_FAILURE }
        }
        "get-default" => {
            out("multi-user.target");
            0
        }
        other => {
            err(&format!("Unknown command verb '{other}'."));
            EXIT_FAILURE
        }
    }
}

/// Runs `f` for each unit; the result is the first failure's code (all are tried).
fn each(units: &[String], mut f: impl FnMut(&str) -> i32) -> i32 {
    let mut rc = 0;
    for u in units {
        let r = f(u);
        if rc == 0 {
            rc = r;
        }
    }
    rc
}

fn not_found(verb: &str, u: &str) -> i32 {
    err(&format!("Failed to {verb} {u}: Unit {u} not found."));
    EXIT_NO_UNIT
}

/// (ActiveState, SubState) of a unit, and what they came from.
fn facts(env: &Env, u: &str) -> (&'static str, &'static str, Facts, Option<View>) {
    let sd = env.sd(u);
    let mut f = Facts {
        present: sd.is_dir(),
        ..Facts::default()
    };
    let mut view = None;
    if f.present {
        f.oneshot = fs::read_to_string(sd.join("type")).is_ok_and(|t| t.trim() == "oneshot");
        f.oneshot_done = match engine::state_of(&env.scandir, &imp::service_name(u)) {
            Some(st) => st == crate::deps::plan::St::Up,
            None => sd.join(ONESHOT_DONE).exists(),
        };
        if let Ok(v) = View::read(&sd) {
            f.supervised = true;
            f.up = v.up;
            f.finishing = v.finishing;
            f.want_up = v.wantup;
            f.last = v.ended();
            view = Some(v);
        }
        f.ext = crate::extstate::read(&crate::rundir::supervise_dir(&sd)).ok();
        let notify = sd.join(crate::sdnotify::FILE).exists();
        f.awaiting_ready = notify && f.up && !f.ext.as_ref().is_some_and(|e| e.ready);
        if let Some(e) = &f.ext {
            if f.last.is_none() {
                f.last = e.exits.first().copied();
            }
        }
    }
    let (a, s) = state::active_state(&f);
    (a, s, f, view)
}

fn scanner_needed(env: &Env, u: &str) -> Option<i32> {
    if boot::scanner_listening(&env.scandir) {
        return None;
    }
    err(&format!(
        "Failed to start {u}: no rsvscan runs on {} (System has not been booted with rsvscan --systemd)",
        env.scandir.display()
    ));
    Some(EXIT_FAILURE)
}

fn start(env: &Env, u: &str, o: &Opts) -> i32 {
    let Some(found) = units::find(env, u) else {
        return not_found("start", u);
    };
    if found.masked {
        err(&format!("Failed to start {u}: Unit {u} is masked."));
        return EXIT_FAILURE;
    }
    let sd = env.sd(&found.name);
    let oneshot = units::load_unit(env, &found).is_ok_and(|x| {
        x.get("Service", "Type") == Some("oneshot") || x.get("Service", "ExecStart").is_none()
    });
    // A longrun needs a scanner; nothing is written without one.
    if !oneshot {
        if let Some(rc) = scanner_needed(env, u) {
            return rc;
        }
    }
    if !sd.exists() {
        if let Err(e) = units::import_closure(env, &found) {
            err(&format!("Failed to start {u}: {e}"));
            return EXIT_FAILURE;
        }
    }
    let name = imp::service_name(&found.name);
    if oneshot && !boot::scanner_listening(&env.scandir) {
        // At image build time: nothing runs the graph; run the script here.
        return run_oneshot(&sd, "start", u, true);
    }
    if oneshot || engine::state_of(&env.scandir, &name).is_some() {
        return match engine::request(&env.scandir, true, &name, Duration::from_secs(90)) {
            Some(0) => 0,
            Some(_) => {
                err(&format!(
                    "Job for {u} failed because the control process exited with error code.\nSee \"systemctl status {u}\" for details."
                ));
                EXIT_FAILURE
            }
            None => {
                err(&format!("Failed to start {u}: no answer from rsvscan"));
                EXIT_FAILURE
            }
        };
    }
    let listening = || crate::control::write_control(&sd, b"").is_ok() && View::read(&sd).is_ok();
    if !crate::template::wait_until(Duration::from_secs(10), listening) {
        err(&format!(
            "Failed to start {u}: the scanner did not start a supervisor for {}",
            sd.display()
        ));
        return EXIT_FAILURE;
    }
    if let Err(e) = crate::control::write_control(&sd, b"u") {
        err(&format!("Failed to start {u}: {e:?}"));
        return EXIT_FAILURE;
    }
    if o.no_block {
        return 0;
    }
    let mut last = ("", "");
    let ok = crate::template::wait_until(Duration::from_secs(90), || {
        let (a, s, _, _) = facts(env, &found.name);
        last = (a, s);
        a == "active" || a == "failed"
    });
    if !ok || last.0 != "active" {
        err(&format!(
            "Job for {u} failed because the service did not start (now {} ({})).\nSee \"systemctl status {u}\" for details.",
            last.0, last.1
        ));
        return EXIT_FAILURE;
    }
    0
}

/// Runs a oneshot's `start` or `stop` script (as its `up`/`down` file names it).
fn run_oneshot(sd: &Path, which: &str, u: &str, starting: bool) -> i32 {
    let marker = sd.join(ONESHOT_DONE);
    if starting && marker.exists() {
        return 0;
    }
    let script = sd.join(which);
    if script.exists() {
        let st = std::process::Command::new(&script).current_dir(sd).status();
        match st {
            Ok(s) if s.success() => {}
            Ok(s) => {
                err(&format!(
                    "Job for {u} failed because the control process exited with error code ({}).",
                    s.code().map_or("signal".into(), |c| c.to_string())
                ));
                return EXIT_FAILURE;
            }
            Err(e) => {
                err(&format!("Failed to run {}: {e}", script.display()));
                return EXIT_FAILURE;
            }
        }
    }
    if starting {
        let _ = fs::write(&marker, "");
    } else {
        let _ = fs::remove_file(&marker);
    }
    0
}

fn stop(env: &Env, u: &str, o: &Opts) -> i32 {
    let name = units::find(env, u).map_or(u.to_string(), |f| f.name);
    let sd = env.sd(&name);
    if !sd.is_dir() {
        if units::find(env, u).is_none() {
            return not_found("stop", u);
        }
        return 0;
    }
    let sname = imp::service_name(&name);
    if engine::state_of(&env.scandir, &sname).is_some() {
        // A member of the graph: stopped in order (what depends on it first).
        return match engine::request(&env.scandir, false, &sname, Duration::from_secs(120)) {
            Some(0) => 0,
            _ => {
                err(&format!("Failed to stop {u}."));
                EXIT_FAILURE
            }
        };
    }
    if fs::read_to_string(sd.join("type")).is_ok_and(|t| t.trim() == "oneshot") {
        if !sd.join(ONESHOT_DONE).exists() {
            return 0;
        }
        return run_oneshot(&sd, "stop", u, false);
    }
    if crate::control::write_control(&sd, b"d").is_err() {
        return 0; // not supervised: nothing runs
    }
    if o.no_block {
        return 0;
    }
    let bound = fs::read_to_string(sd.join("timeout-kill"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(90_000)
        + 5000;
    let ok = crate::template::wait_until(Duration::from_millis(bound), || {
        let (_, _, f, _) = facts(env, &name);
        !f.up && !f.finishing
    });
    if !ok {
        err(&format!(
            "Failed to stop {u}: still running after {bound} ms"
        ));
        return EXIT_FAILURE;
    }
    0
}

fn reload(env: &Env, u: &str, or_restart: bool) -> i32 {
    let name = units::find(env, u).map_or(u.to_string(), |f| f.name);
    let sd = env.sd(&name);
    let (active, _, _, view) = facts(env, &name);
    if active != "active" && active != "reloading" {
        if or_restart {
            return start(env, u, &Opts::default());
        }
        err(&format!("Failed to reload {u}: Unit {u} is not active."));
        return EXIT_FAILURE;
    }
    let script = sd.join("reload");
    if !script.exists() {
        // No ExecReload: the signal systemd-less daemons reload on.
        return match crate::control::write_control(&sd, b"h") {
            Ok(()) => 0,
            Err(_) => EXIT_FAILURE,
        };
    }
    let mut envv = crate::envdir::current();
    if let Ok(ch) = crate::envdir::read(&sd.join("env"), crate::envdir::Flavor::S6) {
        crate::envdir::apply(&mut envv, &ch);
    }
    let mut cmd = std::process::Command::new(&script);
    cmd.env_clear().envs(envv).current_dir("/");
    if let Some(v) = view {
        cmd.env("MAINPID", v.pid.to_string());
    }
    match cmd.status() {
        Ok(s) if s.success() => 0,
        _ => {
            err(&format!(
                "Job for {u} failed because the control process exited with error code."
            ));
            EXIT_FAILURE
        }
    }
}

/// Prints each unit's state; 0 when one of them is in `good`, else `otherwise`.
fn is_state(
    units_: &[String],
    o: &Opts,
    get: impl Fn(&str) -> &'static str,
    good: &str,
    otherwise: i32,
) -> i32 {
    let mut any = false;
    for u in units_ {
        let s = get(u);
        if !o.quiet {
            out(s);
        }
        any |= s == good;
    }
    if any { 0 } else { otherwise }
}

fn daemon_reload(env: &Env) -> i32 {
    for u in loaded_services(env) {
        if let Some(f) = units::find(env, &u) {
            if !f.masked {
                let _ = units::import_into(env, &f, &Default::default());
            }
        }
    }
    0
}
