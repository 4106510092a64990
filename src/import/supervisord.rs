//! supervisord.conf `[program:x]` sections to service directories.
//!
//! Mapping (see `man rsv-import` and docs/migration.md):
//! command -> exec'd by `run` (split as supervisord splits it, no shell); directory -> `cd`;
//! user -> `rsvexec -u`; environment -> `env/` (applied by `rsvexec -e`); autostart=false ->
//! `down`; autorestart false/unexpected + exitcodes -> `finish` exiting 125 (s6's "do not
//! restart"); startsecs -> `backoff-reset`; startretries -> `give-up COUNT SECONDS`;
//! stopsignal -> `down-signal`; stopwaitsecs -> `timeout-kill`; stdout/stderr logfiles ->
//! `log/run` with rsvlog (`n<backups> s<bytes>`), `/dev/stdout` or AUTO -> container output;
//! priority -> `dependencies.d/` on the next-lower priority group (module `priority`).

use std::collections::HashMap;
use std::path::Path;

use super::ini::{self, Section, sh_quote};
use super::priority;
use super::systemd::sh_text;
use super::systemd::unit::{RT_CLOSE, RT_OPEN};
use super::{Outcome, Service, valid_name};

/// Keys handled for a program (others are listed as not translated).
const HANDLED: &[&str] = &[
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
    "directory",
    "user",
    "environment",
    "autostart",
    "autorestart",
    "exitcodes",
    "startsecs",
    "startretries",
    "stopsignal",
    "stopwaitsecs",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "umask",
    "priority",
];

/// rsv's default crash-loop backoff cap (ms), used to size the give-up window.
const BACKOFF_MAX_MS: u64 = 30000;
/// s6-log's largest `s` (bytes per file).
const MAX_S: u64 = 268_435_455;
const MIN_S: u64 = 4096;

fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// supervisord's byte sizes: a number with an optional KB, MB or GB suffix (powers of 1024).
pub fn byte_size(v: &str) -> Option<u64> {
    let u = v.trim().to_ascii_uppercase();
    let (num, mult) = if let Some(n) = u.strip_suffix("KB") {
        (n, 1024)
    } else if let Some(n) = u.strip_suffix("MB") {
        (n, 1024 * 1024)
    } else if let Some(n) = u.strip_suffix("GB") {
        (n, 1024 * 1024 * 1024)
    } else {
        (u.as_str(), 1)
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

/// rsv's delay (ms) before the next start after k consecutive quick deaths.
fn backoff_delay(k: u32) -> u64 {
    if k <= 1 {
        1000
    } else {
        BACKOFF_MAX_MS.min(1000u64.saturating_mul(1 << (k - 1).min(20)))
    }
}

/// The `give-up` line for supervisord's startretries and startsecs: COUNT = startretries + 1
/// quick deaths (at least 2); SECONDS = the longest time those deaths can take under rsv's
/// backoff (each start-to-start interval is at most max(startsecs, backoff delay)), plus one.
pub fn give_up(startretries: u32, startsecs: u64) -> (u32, u64) {
    let count = (startretries + 1).max(2);
    let mut ms: u64 = startsecs * 1000;
    for k in 1..count {
        ms += (startsecs * 1000).max(backoff_delay(k));
    }
    (count, ms.div_ceil(1000) + 1)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// The container's output (no log/).
    Console,
    /// The container's stderr.
    ConsoleErr,
    /// Discarded.
    Null,
    /// Merged into stdout (redirect_stderr).
    Merged,
    File(String),
}

fn target(v: Option<&str>, here: &Path) -> Target {
    match v {
        None => Target::Console,
        Some(v) => match v {
            "" | "AUTO" | "/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1" => Target::Console,
            "NONE" => Target::Null,
            "/dev/stderr" | "/dev/fd/2" | "/proc/self/fd/2" => Target::ConsoleErr,
            p if p.starts_with('/') => Target::File(p.to_string()),
            p => Target::File(here.join(p).display().to_string()),
        },
    }
}

/// The log directory used for a supervisord log file path: the path without its `.log`
/// suffix, or the path with `.d` appended when it has none.
pub fn log_dir_for(file: &str) -> String {
    match file.strip_suffix(".log") {
        Some(base) if !base.is_empty() && !base.ends_with('/') => base.to_string(),
        _ => format!("{file}.d"),
    }
}

struct Prog<'a> {
    sec: &'a Section,
    title: String,
    notes: Vec<String>,
}

impl Prog<'_> {
    fn note(&mut self, key: &str, value: &str, why: &str) {
        self.notes
            .push(format!("[{}] {key}={} ({why})", self.title, plain(value)));
    }
}

/// Text for a comment: run-time markers removed.
fn plain(v: &str) -> String {
    v.replace([RT_OPEN, RT_CLOSE], "")
}

/// Imports the text of a supervisord.conf whose directory is `here`.
pub fn import(text: &str, here: &Path) -> Result<Outcome, String> {
    let sections = ini::parse(text)?;
    let mut out = Outcome::default();
    let mut group_of: HashMap<String, String> = HashMap::new();
    for s in &sections {
        if let Some(g) = s.name.strip_prefix("group:") {
            for p in s.get("programs").unwrap_or("").split(',') {
                group_of.insert(p.trim().to_string(), g.to_string());
            }
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    // The priority of each service in out.services.
    let mut prios: Vec<i64> = Vec::new();
    for s in &sections {
        let name = s.name.as_str();
        if let Some(p) = name.strip_prefix("program:") {
            let prio = match s.get("priority") {
                None => priority::DEFAULT,
                Some(v) => match priority::parse(v) {
                    Some(n) => n,
                    None => {
                        out.errors
                            .push(format!("[{name}] priority is not a number: {v}"));
                        continue;
                    }
                },
            };
            let group = group_of.get(p).cloned().unwrap_or_else(|| p.to_string());
            program(s, p, &group, here, &host, &mut out);
            prios.resize(out.services.len(), prio);
        } else if let Some(g) = name.strip_prefix("group:") {
            out.notes.push(format!(
                "[group:{g}] programs={} (groups are not translated: each program is its own service)",
                s.get("programs").unwrap_or("")
            ));
        } else if name.starts_with("eventlistener:") || name.starts_with("fcgi-program:") {
            out.notes.push(format!(
                "[{name}] command={} (this section type is not translated)",
                s.get("command").unwrap_or("")
            ));
        } else if name == "include" {
            out.notes.push(format!(
                "[include] files={} (import each included file separately)",
                s.get("files").unwrap_or("")
            ));
        } else {
            out.notes.push(format!(
                "[{name}] (settings of the supervisord daemon and its clients are not translated)"
            ));
        }
    }
    let entries: Vec<priority::Entry> = out
        .services
        .iter()
        .zip(&prios)
        .map(|(svc, &p)| priority::Entry {
            name: svc.name.clone(),
            priority: p,
            // A template is no service of its own: nothing depends on it.
            autostart: !svc.down && !crate::template::is_template(&svc.name),
        })
        .collect();
    for (svc, deps) in out
        .services
        .iter_mut()
        .zip(priority::dependencies(&entries))
    {
        svc.deps = deps;
    }
    Ok(out)
}

fn program(s: &Section, pname: &str, group: &str, here: &Path, host: &str, out: &mut Outcome) {
    let mut p = Prog {
        sec: s,
        title: s.name.clone(),
        notes: Vec::new(),
    };
    let numprocs: u32 = match s.get("numprocs").map(str::parse) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            out.errors
                .push(format!("[{}] numprocs is not a positive number", s.name));
            return;
        }
    };
    let start: u32 = match s.get("numprocs_start").map(str::parse) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            out.errors
                .push(format!("[{}] numprocs_start is not a number", s.name));
            return;
        }
    };
    let process_name = s.get("process_name").unwrap_or("%(program_name)s");
    let mut vars: HashMap<String, String> = std::env::vars()
        .map(|(k, v)| (format!("ENV_{k}"), v))
        .collect();
    vars.insert("program_name".into(), pname.into());
    vars.insert("group_name".into(), group.into());
    vars.insert("host_node_name".into(), host.into());
    vars.insert("here".into(), here.display().to_string());
    vars.insert("numprocs".into(), numprocs.to_string());
    // Several processes: a template NAME@ whose instances are the process numbers; every
    // %(process_num) is computed by the scripts from the instance (ini::RUNTIME).
    let templated = numprocs > 1;
    vars.insert(
        "process_num".into(),
        if templated {
            ini::RUNTIME.to_string()
        } else {
            start.to_string()
        },
    );
    let proc_name = match ini::expand(process_name, &vars) {
        Ok(v) => v,
        Err(e) => {
            out.errors.push(format!("[{}] process_name: {e}", s.name));
            return;
        }
    };
    let name = if templated {
        if !process_name.contains("process_num") {
            p.note(
                "process_name",
                process_name,
                "without %(process_num) every instance has the same SUPERVISOR_PROCESS_NAME",
            );
        }
        format!("{pname}@")
    } else {
        proc_name.clone()
    };
    if !valid_name(&name) || (templated && pname.contains('@')) {
        out.errors.push(format!(
            "[{}] {name:?} is not usable as a service directory name",
            s.name
        ));
        return;
    }
    match translate(&mut p, &name, &proc_name, group, &vars, here) {
        Ok(svc) => {
            out.notes.append(&mut p.notes);
            if templated {
                let insts = (start..start + numprocs).map(|n| instance(&svc, &n.to_string()));
                let insts: Vec<Service> = insts.collect();
                out.services.push(svc);
                out.services.extend(insts);
            } else {
                out.services.push(svc);
            }
        }
        Err(e) => out.errors.push(format!("[{}] {}", s.name, plain(&e))),
    }
}

/// The instance `inst` of the template service `t`, as `rsvc -u NAME@INST` makes it
/// ([`crate::template`]): the template's files, its run as `run.template` behind the
/// wrapper, and the marker.
fn instance(t: &Service, inst: &str) -> Service {
    let mut s = t.clone();
    s.name = format!("{}{inst}", t.name);
    s.run = crate::template::wrapper(&t.name, inst);
    s.execs.insert(0, ("run.template".into(), t.run.clone()));
    s.files
        .push((crate::template::MARKER.into(), t.name.clone()));
    s
}

/// Shell lines that set the variables of `%(process_num)` expansions (ini::rt_format) that
/// `script` uses, from the instance: `$RSV_INSTANCE`, else the name of the directory `dir`
/// (`.` for run, `..` for log/run).
fn process_num_prelude(script: &str, template: &str, dir: &str) -> String {
    let mut vars = std::collections::BTreeSet::new();
    let mut rest = script;
    while let Some(i) = rest.find("${process_num_") {
        let after = &rest[i + 2..];
        let end = after.find('}').unwrap_or(after.len());
        vars.insert(after[..end].to_string());
        rest = &after[end..];
    }
    if vars.is_empty() {
        return String::new();
    }
    let from = if dir == "." {
        format!("${{{}:-$(basename \"$(pwd)\")}}", crate::template::VAR)
    } else {
        "$(cd .. && basename \"$(pwd)\")".to_string()
    };
    let mut out = format!(
        "# numprocs: the process number is the instance of {template} (this directory's NAME@N).\nn={from}\nn=${{n##*@}}\ncase $n in\n  ''|*[!0-9]*|0?*) echo {q}\": instance $n is not a process number\" >&2; exit 100 ;;\nesac\n",
        q = sh_quote(template)
    );
    for v in vars {
        if let Some((_, fmt)) = ini::rt_format(&v) {
            out.push_str(&format!("{v}=$(printf {} \"$n\")\n", sh_quote(&fmt)));
        }
    }
    out
}

/// Inserts `prelude` after the first two lines (the #! line and the comment) of `script`.
fn after_header(script: &str, prelude: &str) -> String {
    if prelude.is_empty() {
        return script.to_string();
    }
    let mut cut = 0;
    for _ in 0..2 {
        cut += script[cut..]
            .find('\n')
            .map_or(script.len() - cut, |k| k + 1);
    }
    format!("{}{prelude}{}", &script[..cut], &script[cut..])
}

fn translate(
    p: &mut Prog,
    name: &str,
    proc_name: &str,
    group: &str,
    vars: &HashMap<String, String>,
    here: &Path,
) -> Result<Service, String> {
    let s = p.sec;
    let get = |k: &str| -> Result<Option<String>, String> {
        match s.get(k) {
            None => Ok(None),
            Some(v) => ini::expand(v, vars)
                .map(Some)
                .map_err(|e| format!("{k}: {e}")),
        }
    };
    for (k, v) in &s.entries {
        if v.contains("%(ENV_") {
            p.note(k, v, "%(ENV_x)s is expanded once, at import time");
        }
        if !HANDLED.contains(&k.as_str()) {
            p.note(k, v, "no rsv equivalent");
        }
    }
    let command = get("command")?.ok_or("no command")?;
    let words = ini::shlex_split(&command).map_err(|e| format!("command: {e}"))?;
    if words.is_empty() {
        return Err("empty command".into());
    }
    let mut svc = Service {
        name: name.to_string(),
        ..Service::default()
    };
    // Environment: supervisord's own markers, then the program's settings.
    svc.env.push(("SUPERVISOR_ENABLED".into(), "1".into()));
    svc.env
        .push(("SUPERVISOR_PROCESS_NAME".into(), proc_name.into()));
    svc.env.push(("SUPERVISOR_GROUP_NAME".into(), group.into()));
    if let Some(e) = get("environment")? {
        let pairs = ini::env_pairs(&e).map_err(|err| format!("environment: {err}"))?;
        for (k, v) in pairs {
            if v != v.trim_end_matches([' ', '\t', '\r']) {
                p.note(
                    "environment",
                    &format!("{k}={v}"),
                    "trailing blanks are removed by envdirs",
                );
            }
            svc.env.retain(|(n, _)| *n != k);
            svc.env.push((k, v));
        }
    }
    // Output.
    let out_t = target(get("stdout_logfile")?.as_deref(), here);
    let redirect = match get("redirect_stderr")? {
        Some(v) => boolean(&v).ok_or(format!("redirect_stderr: not a boolean: {v}"))?,
        None => false,
    };
    let err_t = if redirect {
        Target::Merged
    } else {
        target(get("stderr_logfile")?.as_deref(), here)
    };
    for (k, t) in [("stdout_logfile", &out_t), ("stderr_logfile", &err_t)] {
        if let Some(v) = s.get(k) {
            if v == "syslog" {
                p.note(
                    k,
                    v,
                    "syslog is not supported; output goes to the container",
                );
            }
        }
        let _ = t;
    }
    let mut redirs: Vec<&str> = Vec::new();
    let mut log: Option<(String, &str)> = None;
    match (&out_t, &err_t) {
        (Target::File(f), e) => {
            log = Some((f.clone(), "stdout"));
            match e {
                Target::Merged => redirs.push("2>&1"),
                Target::File(g) if g == f => redirs.push("2>&1"),
                Target::File(g) => {
                    redirs.push("2>&1");
                    p.note(
                        "stderr_logfile",
                        g,
                        &format!("one log per service: stderr goes to the log of {f}"),
                    );
                }
                Target::Null => redirs.push("2>/dev/null"),
                _ => {}
            }
        }
        (o, Target::File(g)) => {
            log = Some((g.clone(), "stderr"));
            match o {
                Target::Null => redirs.push("2>&1 >/dev/null"),
                _ => redirs.push("3>&1 1>&2 2>&3 3>&-"),
            }
        }
        (o, e) => {
            match o {
                Target::Null => redirs.push(">/dev/null"),
                Target::ConsoleErr => redirs.push("1>&2"),
                _ => {}
            }
            match e {
                Target::Merged => redirs.push("2>&1"),
                Target::Null => redirs.push("2>/dev/null"),
                _ => {}
            }
        }
    }
    if let Some((file, stream)) = &log {
        let maxbytes = match get(&format!("{stream}_logfile_maxbytes"))? {
            Some(v) => byte_size(&v).ok_or(format!("{stream}_logfile_maxbytes: bad size {v}"))?,
            None => 50 * 1024 * 1024,
        };
        let backups: u64 = match get(&format!("{stream}_logfile_backups"))? {
            Some(v) => v
                .parse()
                .map_err(|_| format!("{stream}_logfile_backups: not a number: {v}"))?,
            None => 10,
        };
        let size = if maxbytes == 0 {
            p.note(
                &format!("{stream}_logfile_maxbytes"),
                "0",
                "no rotation is approximated by the largest file size, 268435455 bytes",
            );
            MAX_S
        } else if !(MIN_S..=MAX_S).contains(&maxbytes) {
            let c = maxbytes.clamp(MIN_S, MAX_S);
            p.note(
                &format!("{stream}_logfile_maxbytes"),
                &maxbytes.to_string(),
                &format!("rsvlog rotates at {c} bytes (its limits are {MIN_S} to {MAX_S})"),
            );
            c
        } else {
            maxbytes
        };
        let dir = log_dir_for(file);
        svc.log_run = Some(format!(
            "#!/bin/sh\n# Generated by rsv-import from [{}] {stream}_logfile={}\nmkdir -p {q} || exit 111\nexec rsvlog n{backups} s{size} {q}\n",
            s.name,
            plain(file),
            q = sh_text(&dir)
        ));
    }
    // Restart policy.
    let autorestart = get("autorestart")?
        .unwrap_or_else(|| "unexpected".into())
        .to_ascii_lowercase();
    let exitcodes = get("exitcodes")?.unwrap_or_else(|| "0".into());
    let codes: Vec<u32> = exitcodes
        .split(',')
        .map(|c| c.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("exitcodes: not a list of numbers: {exitcodes}"))?;
    match boolean(&autorestart).map(|b| if b { "true" } else { "false" }) {
        Some("true") => {}
        Some(_) => {
            svc.finish = Some(
                "#!/bin/sh\n# Generated by rsv-import: autorestart=false, so the service is not restarted\n# after it ends on its own (exit 125 tells the supervisor so).\nexit 125\n"
                    .to_string(),
            );
        }
        None if autorestart == "unexpected" => {
            let pat: Vec<String> = codes.iter().map(u32::to_string).collect();
            svc.finish = Some(format!(
                "#!/bin/sh\n# Generated by rsv-import: autorestart=unexpected, exitcodes={exitcodes}: an expected\n# exit code ends the service for good (exit 125); anything else restarts it.\ncase \"$1\" in\n{}) exit 125 ;;\nesac\nexit 0\n",
                pat.join("|")
            ));
        }
        None => {
            return Err(format!(
                "autorestart: not true, false or unexpected: {autorestart}"
            ));
        }
    }
    if let Some(v) = get("autostart")? {
        if !boolean(&v).ok_or(format!("autostart: not a boolean: {v}"))? {
            svc.down = true;
        }
    }
    let startsecs: u64 = match get("startsecs")? {
        Some(v) => v
            .parse()
            .map_err(|_| format!("startsecs: not a number: {v}"))?,
        None => 1,
    };
    let startretries: u32 = match get("startretries")? {
        Some(v) => v
            .parse()
            .map_err(|_| format!("startretries: not a number: {v}"))?,
        None => 3,
    };
    svc.files
        .push(("backoff-reset".into(), (startsecs * 1000).to_string()));
    if startsecs > 0 {
        if startretries == 0 {
            p.note(
                "startretries",
                "0",
                "rsv gives up after 2 quick deaths at the earliest",
            );
        }
        let (count, secs) = give_up(startretries, startsecs);
        svc.files
            .push(("give-up".into(), format!("{count} {secs}")));
    }
    if let Some(sig) = get("stopsignal")? {
        let sig = sig.trim().to_ascii_uppercase();
        let sig = sig.strip_prefix("SIG").unwrap_or(&sig).to_string();
        if crate::svdir::parse_signal(sig.as_bytes()).is_none() {
            return Err(format!("stopsignal: unknown signal {sig}"));
        }
        if sig != "TERM" {
            svc.files.push(("down-signal".into(), sig));
        }
    }
    let stopwait: u64 = match get("stopwaitsecs")? {
        Some(v) => v
            .parse()
            .map_err(|_| format!("stopwaitsecs: not a number: {v}"))?,
        None => 10,
    };
    svc.files
        .push(("timeout-kill".into(), (stopwait * 1000).to_string()));
    // The run script.
    let mut run = format!(
        "#!/bin/sh\n# Generated by rsv-import from [{}]; see man rsv-import.\n",
        s.name
    );
    for r in &redirs {
        run.push_str(&format!("exec {r}\n"));
    }
    let envdir = if let Some(d) = get("directory")? {
        run.push_str(&format!("svdir=$PWD\ncd {} || exit 111\n", sh_text(&d)));
        "\"$svdir/env\"".to_string()
    } else {
        "./env".to_string()
    };
    if let Some(u) = get("umask")? {
        if u.is_empty() || !u.chars().all(|c| ('0'..='7').contains(&c)) {
            return Err(format!("umask: not an octal number: {u}"));
        }
        run.push_str(&format!("umask {u}\n"));
    }
    let mut cmd = format!("exec rsvexec -e {envdir}");
    if let Some(u) = get("user")? {
        if !u.is_empty() && u.chars().all(|c| c.is_ascii_digit()) {
            p.note(
                "user",
                &u,
                "a numeric user is run with the same number as group",
            );
            cmd.push_str(&format!(" -u :{u}:{u}"));
        } else {
            cmd.push_str(&format!(" -u {}", sh_text(&u)));
        }
    }
    cmd.push_str(" --");
    for w in &words {
        cmd.push(' ');
        cmd.push_str(&sh_text(w));
    }
    // Values known only at run time are exported by run (envdirs hold fixed values).
    for (k, v) in svc.env.iter().filter(|(_, v)| v.contains(RT_OPEN)) {
        run.push_str(&format!("{k}={}\nexport {k}\n", sh_text(v)));
    }
    svc.env.retain(|(_, v)| !v.contains(RT_OPEN));
    run.push_str(&cmd);
    run.push('\n');
    svc.run = after_header(&run, &process_num_prelude(&run, name, "."));
    if let Some(l) = &svc.log_run {
        svc.log_run = Some(after_header(l, &process_num_prelude(l, name, "..")));
    }
    Ok(svc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_give_up() {
        assert_eq!(byte_size("50MB"), Some(52428800));
        assert_eq!(byte_size("1kb"), Some(1024));
        assert_eq!(byte_size("12"), Some(12));
        assert_eq!(byte_size("x"), None);
        // Defaults: 4 deaths, intervals max(1s, 1s/2s/4s) + 1 s of run + 1.
        assert_eq!(give_up(3, 1), (4, 9));
        assert_eq!(give_up(0, 1), (2, 3));
        assert_eq!(give_up(1, 10), (2, 21));
    }

    #[test]
    fn log_dirs() {
        assert_eq!(log_dir_for("/var/log/app/out.log"), "/var/log/app/out");
        assert_eq!(log_dir_for("/var/log/app/out"), "/var/log/app/out.d");
        assert_eq!(log_dir_for("/var/log/.log"), "/var/log/.log.d");
    }

    #[test]
    fn a_program() {
        let conf = "[program:web]\ncommand=/usr/sbin/nginx -g 'daemon off;'\ndirectory=/srv\nuser=www\nenvironment=A=\"1,2\",B=x\nautostart=false\nautorestart=false\nstartsecs=5\nstopsignal=QUIT\nstopwaitsecs=7\nstdout_logfile=/var/log/web.log\nstdout_logfile_maxbytes=1MB\nstdout_logfile_backups=3\nredirect_stderr=true\npriority=5\nstopasgroup=true\n[group:g]\nprograms=web\n";
        let o = import(conf, Path::new("/etc")).unwrap();
        assert!(o.errors.is_empty(), "{:?}", o.errors);
        let s = &o.services[0];
        assert_eq!(s.name, "web");
        assert!(s.down);
        assert!(s.run.contains("exec 2>&1\n"));
        assert!(s.run.contains("cd /srv || exit 111"));
        assert!(s.run.ends_with(
            "exec rsvexec -e \"$svdir/env\" -u www -- /usr/sbin/nginx -g 'daemon off;'\n"
        ));
        assert_eq!(
            s.finish.as_deref().map(|f| f.ends_with("exit 125\n")),
            Some(true)
        );
        assert!(
            s.log_run
                .as_ref()
                .unwrap()
                .contains("rsvlog n3 s1048576 /var/log/web")
        );
        assert!(s.env.contains(&("A".into(), "1,2".into())));
        assert!(
            s.env
                .contains(&("SUPERVISOR_GROUP_NAME".into(), "g".into()))
        );
        assert!(s.files.contains(&("down-signal".into(), "QUIT".into())));
        assert!(s.files.contains(&("timeout-kill".into(), "7000".into())));
        assert!(s.files.contains(&("backoff-reset".into(), "5000".into())));
        assert!(s.files.contains(&("give-up".into(), "4 21".into())));
        let notes = o.notes.join("\n");
        assert!(!notes.contains("priority"), "{notes}");
        assert!(notes.contains("stopasgroup=true"), "{notes}");
        assert!(notes.contains("[group:g]"), "{notes}");
    }

    #[test]
    fn numprocs_and_unexpected() {
        let conf = "[program:w]\ncommand=work %(process_num)d --name=%(program_name)s_%(process_num)02d\nprocess_name=%(program_name)s_%(process_num)02d\nnumprocs=2\nnumprocs_start=1\nexitcodes=0,2\nenvironment=SLOT=\"s%(process_num)s\",FIXED=1\nstdout_logfile=/l/w_%(process_num)02d.log\n[program:x]\ncommand=x\npriority=1\n";
        let o = import(conf, Path::new("/")).unwrap();
        assert!(o.errors.is_empty(), "{:?}", o.errors);
        let names: Vec<&str> = o.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["w@", "w@1", "w@2", "x"]);
        let t = &o.services[0];
        assert!(
            t.run
                .contains("n=${RSV_INSTANCE:-$(basename \"$(pwd)\")}\nn=${n##*@}\n"),
            "{}",
            t.run
        );
        assert!(
            t.run.contains(
                "process_num_02d=$(printf %02d \"$n\")\nprocess_num_d=$(printf %d \"$n\")\n"
            ),
            "{}",
            t.run
        );
        assert!(
            t.run.contains(
                "SUPERVISOR_PROCESS_NAME=w_\"${process_num_02d}\"\nexport SUPERVISOR_PROCESS_NAME\n"
            ),
            "{}",
            t.run
        );
        assert!(t.run.contains("SLOT=s\"${process_num_s}\"\n"), "{}", t.run);
        assert!(
            t.run
                .ends_with("-- work \"${process_num_d}\" --name=w_\"${process_num_02d}\"\n"),
            "{}",
            t.run
        );
        assert!(t.env.contains(&("FIXED".into(), "1".into())));
        assert!(
            !t.env
                .iter()
                .any(|(k, _)| k == "SLOT" || k == "SUPERVISOR_PROCESS_NAME")
        );
        let l = t.log_run.as_ref().unwrap();
        assert!(l.contains("n=$(cd .. && basename \"$(pwd)\")\n"), "{l}");
        assert!(
            l.contains("exec rsvlog n10 s52428800 /l/w_\"${process_num_02d}\"\n"),
            "{l}"
        );
        // An instance: the template's files, its run behind the wrapper, the marker.
        let i = &o.services[2];
        assert_eq!(i.run, crate::template::wrapper("w@", "2"));
        assert_eq!(i.execs[0], ("run.template".to_string(), t.run.clone()));
        assert!(i.files.contains(&(".rsv-instance".into(), "w@".into())));
        assert_eq!(i.log_run, t.log_run);
        // priority: the instances (not the template) depend on x; nothing depends on w@.
        assert_eq!(i.deps, ["x"]);
        assert_eq!(t.deps, ["x"]);
        assert!(
            o.services[0]
                .finish
                .as_ref()
                .unwrap()
                .contains("0|2) exit 125")
        );
        assert!(
            !o.notes.iter().any(|n| n.contains("numprocs")),
            "{:?}",
            o.notes
        );
        // The generated scripts compute the numbers.
        let d = std::env::temp_dir().join(format!("rsv-numprocs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let sd = d.join("w@7");
        std::fs::create_dir_all(sd.join("log")).unwrap();
        let head: String = t
            .run
            .lines()
            .take_while(|l| !l.starts_with("exec"))
            .map(|l| format!("{l}\n"))
            .collect();
        let script = format!("{head}echo \"$SUPERVISOR_PROCESS_NAME $SLOT $process_num_d\"\n");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(&sd)
            .env_remove("RSV_INSTANCE")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "w_07 s7 7\n");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(&sd)
            .env("RSV_INSTANCE", "12")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "w_12 s12 12\n");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(&sd)
            .env("RSV_INSTANCE", "x1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(100));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("w@: instance x1 is not a process number")
        );
        let lhead: String = l
            .lines()
            .filter(|l| !l.starts_with("exec") && !l.starts_with("mkdir"))
            .map(|l| format!("{l}\n"))
            .collect();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{lhead}echo $process_num_02d\n"))
            .current_dir(sd.join("log"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "07\n");
        std::fs::remove_dir_all(&d).unwrap();

        let bad = import(
            "[program:x]\ncommand=a %(nope)s\n[program:y]\ncommand=b\n[program:a@b]\ncommand=c\nnumprocs=2\n",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(bad.services.len(), 1);
        assert!(bad.errors[0].contains("nope"));
        assert!(bad.errors[1].contains("a@b@"), "{:?}", bad.errors);
    }

    #[test]
    fn stderr_only_log() {
        let conf = "[program:e]\ncommand=e\nstderr_logfile=/l/e.err\n";
        let o = import(conf, Path::new("/")).unwrap();
        let s = &o.services[0];
        assert!(s.run.contains("exec 3>&1 1>&2 2>&3 3>&-\n"));
        assert!(s.log_run.as_ref().unwrap().contains("/l/e.err.d"));
    }
}
