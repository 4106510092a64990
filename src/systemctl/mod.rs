//! The `systemctl` personality: systemctl's commands for containers, on rsv's supervision
//! tree. Unit files are read from systemd's search path (under `--root`), imported on the fly
//! into a scan directory (`$RSV_SYSTEMD_SCANDIR`, default /run/rsv/systemd) that `rsvscan
//! --systemd` watches, and controlled there. `enable`/`disable` write systemd's own
//! `*.wants` links, so package scripts and `RUN systemctl enable nginx` work in an image
//! without any process running. Exit codes are systemctl's (see man systemctl.8).

pub mod boot;
pub mod engine;
pub mod notify;
pub mod state;
pub mod units;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::import::systemd as imp;
use crate::svview::View;
use state::Facts;
use units::{Env, Found};

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
    let listening = || crate::control::write_control(&sd, b"").is_ok();
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

/// "Sat 2026-12-05 08:11:36 UTC" for unix seconds.
pub fn utc_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    format!(
        "{wd} {y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn ago(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}min {}s ago", secs / 60, secs % 60),
        _ => format!("{}h {}min ago", secs / 3600, secs % 3600 / 60),
    }
}

fn comm(pid: u64) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn enabled_state(env: &Env, u: &str) -> Option<&'static str> {
    let found = units::find(env, u)?;
    if found.masked {
        return Some("masked");
    }
    if found.name != u {
        return Some("alias");
    }
    if !units::links_to(env, &found.name).is_empty() {
        return Some("enabled");
    }
    let unit = units::load_unit(env, &found).ok()?;
    let (t, a, also) = units::install_info(&unit);
    if t.is_empty() && a.is_empty() && also.is_empty() {
        return Some("static");
    }
    Some("disabled")
}

fn description(env: &Env, u: &str) -> String {
    units::find(env, u)
        .and_then(|f| units::load_unit(env, &f).ok())
        .and_then(|x| {
            let inst = x.template_parts().map_or("", |(_, i)| i).to_string();
            x.get("Unit", "Description")
                .map(|d| imp::unit::expand_specifiers(d, &x, imp::unit::Instance::Fixed(&inst)).0)
        })
        .unwrap_or_default()
}

fn status(env: &Env, units_: &[String]) -> i32 {
    let mut rc = 0;
    let now = crate::svstat::now_ms() / 1000;
    for (k, u) in units_.iter().enumerate() {
        let found = units::find(env, u);
        let name = found.as_ref().map_or(u.clone(), |f| f.name.clone());
        let (a, s, f, view) = facts(env, &name);
        if found.is_none() && !f.present {
            err(&format!("Unit {u} could not be found."));
            rc = rc.max(EXIT_NO_UNIT_STATUS);
            continue;
        }
        if k > 0 {
            out("");
        }
        let desc = description(env, &name);
        let bullet = if a == "active" {
            "●"
        } else if a == "failed" {
            "×"
        } else {
            "○"
        };
        out(&format!(
            "{bullet} {name}{}",
            if desc.is_empty() {
                String::new()
            } else {
                format!(" - {desc}")
            }
        ));
        let loaded = match &found {
            Some(fd) if fd.masked => "masked (Reason: Unit {name} is masked.)".to_string(),
            Some(fd) => format!(
                "loaded ({}; {}; preset: enabled)",
                Path::new("/")
                    .join(fd.path.strip_prefix(&env.root).unwrap_or(&fd.path))
                    .display(),
                enabled_state(env, &name).unwrap_or("disabled")
            ),
            None => "not-found (Reason: Unit not found.)".into(),
        };
        out(&format!("     Loaded: {loaded}"));
        let since = view
            .as_ref()
            .filter(|_| f.supervised)
            .map(|v| {
                format!(
                    " since {}; {}",
                    utc_time(v.since),
                    ago(now.saturating_sub(v.since.max(0) as u64))
                )
            })
            .unwrap_or_default();
        out(&format!("     Active: {a} ({s}){since}"));
        if let Some(v) = &view {
            if v.up {
                let main = f.ext.as_ref().map_or(0, |e| e.main_pid);
                let pid = if main > 0 { main as u64 } else { v.pid };
                out(&format!("   Main PID: {pid} ({})", comm(pid)));
            }
        }
        if let Some(e) = &f.ext {
            if f.up && !e.sd_status.is_empty() {
                out(&format!("     Status: \"{}\"", e.sd_status));
            }
        }
        if a != "active" {
            rc = rc.max(EXIT_INACTIVE);
        }
    }
    rc
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

fn is_enabled(env: &Env, units_: &[String], o: &Opts) -> i32 {
    let mut any = false;
    let mut rc = 0;
    for u in units_ {
        match enabled_state(env, u) {
            Some(s) => {
                if !o.quiet {
                    out(s);
                }
                any |= matches!(s, "enabled" | "static" | "alias" | "indirect");
            }
            None => {
                err(&format!(
                    "Failed to get unit file state for {u}: No such file or directory"
                ));
                rc = EXIT_FAILURE;
            }
        }
    }
    if rc != 0 {
        rc
    } else if any {
        0
    } else {
        EXIT_FAILURE
    }
}

fn enable(env: &Env, u: &str, o: &Opts) -> i32 {
    let Some(found) = units::find(env, u) else {
        err(&format!(
            "Failed to enable unit: Unit file {u} does not exist."
        ));
        return EXIT_FAILURE;
    };
    if found.masked {
        err(&format!("Failed to enable unit: Unit file {u} is masked."));
        return EXIT_FAILURE;
    }
    let unit = match units::load_unit(env, &found) {
        Ok(x) => x,
        Err(e) => {
            err(&format!("Failed to enable unit: {e}"));
            return EXIT_FAILURE;
        }
    };
    let links = units::enable_links(env, &found, &unit);
    let (_, _, also) = units::install_info(&unit);
    if links.is_empty() && also.is_empty() {
        err(&String::from(
            "The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\nAlias= settings in the [Install] section, and DefaultInstance= for template\nunits). This means they are not meant to be enabled or disabled using systemctl.",
        ));
    }
    match units::make_links(&links) {
        Ok(made) => {
            for (l, t) in made {
                err(&format!(
                    "Created symlink {} → {}.",
                    l.display(),
                    t.display()
                ));
            }
        }
        Err(e) => {
            err(&format!("Failed to enable unit: {e}"));
            return EXIT_FAILURE;
        }
    }
    let mut rc = 0;
    for a in also {
        let r = enable(env, &units::full_name(&a), &Opts::default());
        if rc == 0 {
            rc = r;
        }
    }
    if o.now && rc == 0 {
        rc = start(env, &found.name, o);
    }
    rc
}

fn disable(env: &Env, u: &str, o: &Opts) -> i32 {
    let Some(found) = units::find(env, u) else {
        err(&format!(
            "Failed to disable unit: Unit file {u} does not exist."
        ));
        return EXIT_FAILURE;
    };
    for l in units::links_to(env, &found.name) {
        if fs::remove_file(&l).is_ok() {
            err(&format!("Removed \"{}\".", l.display()));
        }
    }
    if o.now {
        return stop(env, &found.name, o);
    }
    0
}

fn mask(env: &Env, u: &str, on: bool) -> i32 {
    let l = env.etc().join(u);
    if on {
        let _ = fs::create_dir_all(env.etc());
        let _ = fs::remove_file(&l);
        if let Err(e) = std::os::unix::fs::symlink("/dev/null", &l) {
            err(&format!("Failed to mask unit: {e}"));
            return EXIT_FAILURE;
        }
        err(&format!("Created symlink {} → /dev/null.", l.display()));
    } else if fs::read_link(&l).is_ok_and(|t| t == Path::new("/dev/null")) {
        let _ = fs::remove_file(&l);
        err(&format!("Removed \"{}\".", l.display()));
    }
    0
}

fn loaded_services(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(&env.scandir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && !n.ends_with('@'))
                .map(|n| format!("{n}.service"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn list_units(env: &Env, o: &Opts) -> i32 {
    let mut rows = Vec::new();
    for u in loaded_services(env) {
        let (a, s, _, _) = facts(env, &u);
        if !o.all && a == "inactive" {
            continue;
        }
        rows.push((u.clone(), "loaded", a, s, description(env, &u)));
    }
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    if !o.no_legend {
        out(&format!(
            "  {:<w$} LOAD   ACTIVE     SUB          DESCRIPTION",
            "UNIT"
        ));
    }
    for (u, l, a, s, d) in &rows {
        out(&format!("  {u:<w$} {l:<6} {a:<10} {s:<12} {d}"));
    }
    if !o.no_legend {
        out(&format!("\n{} loaded units listed.", rows.len()));
    }
    0
}

fn list_unit_files(env: &Env, o: &Opts) -> i32 {
    let mut names = std::collections::BTreeSet::new();
    for d in env.search() {
        if let Ok(rd) = fs::read_dir(&d) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".service") {
                    names.insert(n);
                }
            }
        }
    }
    if !o.no_legend {
        out("UNIT FILE STATE");
    }
    for n in &names {
        out(&format!("{n} {}", enabled_state(env, n).unwrap_or("bad")));
    }
    if !o.no_legend {
        out(&format!("\n{} unit files listed.", names.len()));
    }
    0
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

fn show(env: &Env, units_: &[String], o: &Opts) -> i32 {
    let props: Vec<String> = if o.props.is_empty() {
        [
            "Id",
            "Names",
            "Description",
            "LoadState",
            "ActiveState",
            "SubState",
            "UnitFileState",
            "FragmentPath",
            "MainPID",
            "ExecMainPID",
            "StatusText",
            "Type",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    } else {
        o.props.clone()
    };
    for (k, u) in units_.iter().enumerate() {
        if k > 0 && !o.value {
            out("");
        }
        let found: Option<Found> = units::find(env, u);
        let name = found.as_ref().map_or(u.clone(), |f| f.name.clone());
        let (a, s, f, view) = facts(env, &name);
        let pid = view.filter(|v| v.up).map_or(0, |v| {
            f.ext.as_ref().map_or(v.pid, |e| {
                if e.main_pid > 0 {
                    e.main_pid as u64
                } else {
                    v.pid
                }
            })
        });
        for p in &props {
            let v = match p.as_str() {
                "Id" => name.clone(),
                "Names" => name.clone(),
                "Description" => description(env, &name),
                "LoadState" => match &found {
                    Some(x) if x.masked => "masked".into(),
                    Some(_) => "loaded".into(),
                    None => "not-found".into(),
                },
                "ActiveState" => a.into(),
                "SubState" => s.into(),
                "UnitFileState" => enabled_state(env, &name).unwrap_or("").into(),
                "FragmentPath" => found.as_ref().map_or(String::new(), |x| {
                    Path::new("/")
                        .join(x.path.strip_prefix(&env.root).unwrap_or(&x.path))
                        .display()
                        .to_string()
                }),
                "MainPID" | "ExecMainPID" => pid.to_string(),
                "StatusText" => f
                    .ext
                    .as_ref()
                    .map_or(String::new(), |e| e.sd_status.clone()),
                "Type" => found
                    .as_ref()
                    .and_then(|x| units::load_unit(env, x).ok())
                    .and_then(|x| x.get("Service", "Type").map(str::to_string))
                    .unwrap_or_else(|| "simple".into()),
                "NRestarts" => f.ext.as_ref().map_or(0, |e| e.restarts).to_string(),
                _ => String::new(),
            };
            if o.value {
                out(&v);
            } else {
                out(&format!("{p}={v}"));
            }
        }
    }
    0
}

fn cat(env: &Env, u: &str) -> i32 {
    let Some(f) = units::find(env, u) else {
        err(&format!("No files found for {u}."));
        return EXIT_FAILURE;
    };
    out(&format!("# {}", f.path.display()));
    out(fs::read_to_string(&f.path).unwrap_or_default().trim_end());
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(utc_time(0), "Thu 1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(1_796_457_096), "Sat 2026-12-05 08:31:36 UTC");
        assert_eq!(ago(5), "5s ago");
        assert_eq!(ago(65), "1min 5s ago");
    }
}
