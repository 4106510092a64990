//! systemd `.service` units to service directories (`rsv-import systemd UNIT... OUTDIR`).
//!
//! Mapping (see `man rsv-import` and docs/migration.md, "From systemd"): ExecStart is exec'd
//! by `run` (a /bin/sh script, `set -f`, every literal word single-quoted, `$X` split and
//! `${X}` not, as systemd does), after ExecStartPre, conditions, environment files, umask,
//! limits, runtime directories and `cd`; User/Group -> `rsvexec -u`; Type=notify ->
//! `notify-socket` (+ WatchdogSec -> `watchdog-usec`); Type=forking + PIDFile -> `run` starts
//! the daemon and names it with `systemd-notify --pid` (the supervisor then follows it);
//! Type=oneshot -> an s6-rc oneshot (`type`, `up`, `down` naming scripts beside them);
//! Restart/SuccessExitStatus/RestartSec -> `finish`; KillSignal -> `down-signal`;
//! TimeoutStopSec -> `timeout-kill`; ExecStop -> `stop` (run by the supervisor before the
//! down-signal); KillMode control-group (the default) or mixed -> `stop-tree`;
//! Requires/Wants/BindsTo/After on other imported units -> `dependencies.d/NAME`; ExecReload
//! -> `reload` (used by the systemctl personality).

mod finish;
pub mod load;
mod shell;
pub mod unit;

use std::collections::BTreeSet;
use std::path::Path;

use super::ini::sh_quote;
use super::{Outcome, Service};
use finish::restart_policy;
pub use shell::sh_text;
use shell::{sh_command, step};
use unit::{Command, Instance, Piece, RT_CLOSE, RT_OPEN, Unit};

/// The variable that holds a template's instance at run time.
pub const INSTANCE_VAR: &str = "RSV_INSTANCE";

/// Keys of `[Service]` that are translated.
const SERVICE_KEYS: &[&str] = &[
    "Type",
    "ExecStart",
    "ExecStartPre",
    "ExecStartPost",
    "ExecStop",
    "ExecReload",
    "RemainAfterExit",
    "PIDFile",
    "Restart",
    "RestartSec",
    "User",
    "Group",
    "SupplementaryGroups",
    "Environment",
    "EnvironmentFile",
    "UnsetEnvironment",
    "WorkingDirectory",
    "RootDirectory",
    "UMask",
    "Nice",
    "KillSignal",
    "KillMode",
    "TimeoutStopSec",
    "TimeoutSec",
    "SuccessExitStatus",
    "RestartPreventExitStatus",
    "WatchdogSec",
    "NotifyAccess",
    "RuntimeDirectory",
    "RuntimeDirectoryMode",
    "StateDirectory",
    "StateDirectoryMode",
    "CacheDirectory",
    "CacheDirectoryMode",
    "LogsDirectory",
    "LogsDirectoryMode",
];

/// `Limit*` keys and their `ulimit` letter (dash's) and unit divisor (bytes to its unit).
const LIMITS: &[(&str, &str, u64)] = &[
    ("LimitCPU", "t", 1),
    ("LimitFSIZE", "f", 512),
    ("LimitDATA", "d", 1024),
    ("LimitSTACK", "s", 1024),
    ("LimitCORE", "c", 512),
    ("LimitRSS", "m", 1024),
    ("LimitNOFILE", "n", 1),
    ("LimitAS", "v", 1024),
    ("LimitNPROC", "p", 1),
    ("LimitMEMLOCK", "l", 1024),
    ("LimitLOCKS", "w", 1),
    ("LimitRTPRIO", "r", 1),
];

/// Dependency keys of `[Unit]`.
const DEP_KEYS: &[&str] = &["Requires", "Wants", "BindsTo", "Requisite", "After"];

/// Keys of `[Unit]` that are translated (or only informative).
const UNIT_KEYS: &[&str] = &["Description", "Documentation"];

/// Conditions translated into checks in `run`: (key, shell test, its negation's sense).
const CONDITIONS: &[(&str, &str)] = &[
    ("ConditionPathExists", "-e"),
    ("ConditionPathIsDirectory", "-d"),
    ("ConditionFileNotEmpty", "-s"),
    ("ConditionFileIsExecutable", "-x"),
    ("ConditionPathIsSymbolicLink", "-L"),
];

pub(crate) struct Ctx<'a> {
    u: &'a Unit,
    inst: Instance<'a>,
    notes: Vec<String>,
}

impl Ctx<'_> {
    pub(crate) fn note(&mut self, key: &str, value: &str, why: &str) {
        self.notes
            .push(format!("[{}] {key}={value} ({why})", self.u.name));
    }

    /// A setting with its specifiers expanded (unknown ones noted).
    fn expand(&mut self, key: &str, v: &str) -> String {
        let (s, unknown) = unit::expand_specifiers(v, self.u, self.inst);
        for c in unknown {
            self.note(
                key,
                v,
                &format!("specifier %{c} is not known; left as it is"),
            );
        }
        s
    }

    pub(crate) fn get(&mut self, sec: &str, key: &str) -> Option<String> {
        let v = self.u.get(sec, key)?.to_string();
        Some(self.expand(key, &v))
    }

    pub(crate) fn list(&mut self, sec: &str, key: &str) -> Vec<String> {
        let vals: Vec<String> = self
            .u
            .list(sec, key)
            .iter()
            .map(|s| s.to_string())
            .collect();
        vals.iter().map(|v| self.expand(key, v)).collect()
    }
}

fn parse_cmds(ctx: &mut Ctx, key: &str) -> Result<Vec<Command>, String> {
    let mut out = Vec::new();
    for v in ctx.list("Service", key) {
        let cmds = unit::parse_exec(&v).map_err(|e| format!("{key}: {e}"))?;
        for c in &cmds {
            let path = match c.words.first().map(|w| w.as_slice()) {
                Some([Piece::Lit(p)]) => p.clone(),
                _ => String::new(),
            };
            if !path.starts_with('/') && !path.is_empty() {
                // systemd looks a relative name up in a fixed PATH; the shell uses $PATH.
                ctx.note(key, &v, "a command without a path is looked up in $PATH");
            }
        }
        out.extend(cmds);
    }
    Ok(out)
}

/// Signal name (without SIG) or number, as rsv's `down-signal` accepts it.
fn signal_name(v: &str) -> Option<String> {
    let s = v.trim().to_ascii_uppercase();
    let s = s.strip_prefix("SIG").unwrap_or(&s).to_string();
    crate::svdir::parse_signal(s.as_bytes()).map(|_| s)
}

/// A `Limit*` value (`N`, `soft:hard`, `infinity`) in the ulimit's unit.
fn limit_value(v: &str, div: u64, key: &str) -> Result<String, String> {
    let v = v.trim();
    if v == "infinity" {
        return Ok("unlimited".into());
    }
    let (num, mult) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (v, 1u64),
        Some((i, _)) => {
            let m = match &v[i..] {
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ if key == "LimitCPU" => {
                    let ms = unit::time_span_ms(v, 1000.0)?.unwrap_or(0);
                    return Ok(ms.div_ceil(1000).to_string());
                }
                _ => return Err(format!("{key}: bad value {v}")),
            };
            (&v[..i], m)
        }
    };
    let n: u64 = num.parse().map_err(|_| format!("{key}: bad value {v}"))?;
    Ok((n.saturating_mul(mult) / div).to_string())
}

/// The names a dependency list names (space-separated units).
fn unit_names(v: &str) -> Vec<String> {
    v.split_whitespace().map(str::to_string).collect()
}

/// The service name a unit becomes: its stem (`foo@` for a template).
pub fn service_name(unit_name: &str) -> String {
    unit_name
        .strip_suffix(".service")
        .unwrap_or(unit_name)
        .to_string()
}

/// Translates units. `known` are the service names (of this import and of the target
/// directory) that dependencies may name; `outdir` is where the directories go (absolute),
/// for the lines of a oneshot's `up` and `down`.
pub fn import(units: &[Unit], known: &BTreeSet<String>, outdir: &Path) -> Outcome {
    let mut out = Outcome::default();
    for u in units {
        let name = service_name(&u.name);
        if !super::valid_name(&name) {
            out.errors.push(format!(
                "{}: not usable as a service directory name",
                u.name
            ));
            continue;
        }
        let inst = match u.template_parts() {
            Some((_, "")) => Instance::Runtime(INSTANCE_VAR),
            Some((_, i)) => Instance::Fixed(i),
            None => Instance::Fixed(""),
        };
        let mut ctx = Ctx {
            u,
            inst,
            notes: Vec::new(),
        };
        match translate(&mut ctx, &name, known, outdir) {
            Ok(s) => {
                out.notes.append(&mut ctx.notes);
                out.services.push(s);
            }
            Err(e) => {
                out.notes.append(&mut ctx.notes);
                out.errors.push(format!("{}: {e}", u.name));
            }
        }
    }
    out
}

fn translate(
    ctx: &mut Ctx,
    name: &str,
    known: &BTreeSet<String>,
    outdir: &Path,
) -> Result<Service, String> {
    let u = ctx.u;
    // What is not translated, with the reason.
    for (sec, k, v) in &u.entries {
        let why = match sec.as_str() {
            "Service" if SERVICE_KEYS.contains(&k.as_str()) => continue,
            "Service" if LIMITS.iter().any(|(l, _, _)| l == k) => continue,
            "Unit" if UNIT_KEYS.contains(&k.as_str()) || DEP_KEYS.contains(&k.as_str()) => {
                continue;
            }
            "Unit" if CONDITIONS.iter().any(|(c, _)| c == k) => continue,
            "Install" => continue,
            "Service"
                if k.starts_with("Protect")
                    || k.starts_with("Private")
                    || k.starts_with("Restrict")
                    || k.starts_with("Capability")
                    || k.starts_with("Ambient")
                    || k.starts_with("ReadWrite")
                    || k.starts_with("ReadOnly")
                    || k.starts_with("Inaccessible")
                    || k.starts_with("SystemCall")
                    || k.starts_with("Lock")
                    || k.starts_with("Memory")
                    || k.starts_with("Device")
                    || k == "NoNewPrivileges"
                    || k == "DynamicUser"
                    || k == "RemoveIPC"
                    || k == "KeyringMode" =>
            {
                "sandboxing and resource control are not translated"
            }
            "Service"
                if k.starts_with("Standard") || k.starts_with("Syslog") || k.starts_with("Log") =>
            {
                "output goes to the service's log/ or to the container's output"
            }
            "Service" if k.starts_with("Timeout") || k.starts_with("StartLimit") => {
                "rsv has no start timeout or start rate limit; its crash-loop backoff applies"
            }
            "Unit" if k.starts_with("StartLimit") => {
                "rsv has no start rate limit; its crash-loop backoff applies"
            }
            "Unit" if k.starts_with("Condition") || k.starts_with("Assert") => {
                "this condition is not checked"
            }
            "Unit"
                if matches!(
                    k.as_str(),
                    "Before"
                        | "PartOf"
                        | "Conflicts"
                        | "OnFailure"
                        | "DefaultDependencies"
                        | "IgnoreOnIsolate"
                        | "RequiresMountsFor"
                        | "WantedBy"
                ) =>
            {
                "no rsv equivalent; dependencies come from After=/Requires=/Wants=/BindsTo= of the dependent unit"
            }
            _ => "no rsv equivalent",
        };
        ctx.note(
            &format!("{sec}.{k}")
                .replace("Service.", "")
                .replace("Unit.", ""),
            v,
            why,
        );
    }

    let ty = ctx.get("Service", "Type").unwrap_or_else(|| {
        if u.get("Service", "BusName").is_some() {
            "dbus".into()
        } else if u.get("Service", "ExecStart").is_none() {
            "oneshot".into()
        } else {
            "simple".into()
        }
    });
    let ty = match ty.as_str() {
        "simple" | "exec" | "idle" | "notify" | "oneshot" | "forking" => ty,
        "notify-reload" => {
            ctx.note(
                "Type",
                &ty,
                "treated as Type=notify; reloads are not signalled",
            );
            "notify".into()
        }
        "dbus" => {
            ctx.note("Type", &ty, "no D-Bus readiness: treated as Type=simple");
            "simple".into()
        }
        other => return Err(format!("Type: unknown type {other}")),
    };
    let starts = parse_cmds(ctx, "ExecStart")?;
    if starts.is_empty() {
        return Err("no ExecStart".into());
    }
    if starts.len() > 1 && ty != "oneshot" {
        return Err("several ExecStart commands are only allowed with Type=oneshot".into());
    }
    let pres = parse_cmds(ctx, "ExecStartPre")?;
    let posts = parse_cmds(ctx, "ExecStartPost")?;
    let stops = parse_cmds(ctx, "ExecStop")?;
    let reloads = parse_cmds(ctx, "ExecReload")?;

    let mut svc = Service {
        name: name.to_string(),
        ..Service::default()
    };

    // User and groups, as rsvexec -u takes them.
    let user = ctx.get("Service", "User");
    let group = ctx.get("Service", "Group");
    let supp: Vec<String> = ctx
        .list("Service", "SupplementaryGroups")
        .iter()
        .flat_map(|v| unit_names(v))
        .collect();
    let user_arg: Option<String> = match (&user, &group) {
        (None, None) => {
            if !supp.is_empty() {
                ctx.note(
                    "SupplementaryGroups",
                    &supp.join(" "),
                    "ignored without User=",
                );
            }
            None
        }
        (u, g) => {
            let u = u.clone().unwrap_or_else(|| "root".into());
            let mut s = sh_text(&u);
            if let Some(g) = g {
                s.push(':');
                s.push_str(&sh_text(g));
                for x in &supp {
                    s.push(':');
                    s.push_str(&sh_text(x));
                }
            } else if !supp.is_empty() {
                ctx.note(
                    "SupplementaryGroups",
                    &supp.join(" "),
                    "only applied together with Group=",
                );
            }
            Some(s)
        }
    };

    // Environment: static values in env/ (the supervisor applies it before run).
    for v in ctx.list("Service", "Environment") {
        let pairs = unit::parse_environment(&v).map_err(|e| format!("Environment: {e}"))?;
        for (k, val) in pairs {
            if val.contains(RT_OPEN) {
                ctx.note(
                    "Environment",
                    &format!("{k}={val}").replace([RT_OPEN, RT_CLOSE], ""),
                    "a template's instance is not known when env/ is written; the variable is set in run instead",
                );
            }
            svc.env.retain(|(n, _)| *n != k);
            svc.env.push((k, val));
        }
    }
    // An instance imported as such has its instance in env/ as a template's gets it.
    if let (Instance::Fixed(i), Some(_)) = (ctx.inst, u.template_parts()) {
        svc.env.push((INSTANCE_VAR.into(), i.to_string()));
    }
    // Values holding the instance are exported by run itself.
    let runtime_env: Vec<(String, String)> = svc
        .env
        .iter()
        .filter(|(_, v)| v.contains(RT_OPEN))
        .cloned()
        .collect();
    svc.env.retain(|(_, v)| !v.contains(RT_OPEN));

    let mut sh = String::new();
    let desc = ctx
        .get("Unit", "Description")
        .unwrap_or_default()
        .replace([RT_OPEN, RT_CLOSE], "");
    sh.push_str(&format!(
        "#!/bin/sh\n# Generated by rsv-import from {} (systemd unit){}; see man rsv-import.\nset -f\n",
        u.name,
        if desc.is_empty() {
            String::new()
        } else {
            format!(": {}", desc.replace('\n', " "))
        }
    ));
    // The environment and directory of run, for the `stop` script (ExecStop=) too.
    let mut stop_pre = String::new();
    if matches!(ctx.inst, Instance::Runtime(_)) {
        sh.push_str(&format!(
            "# A template: the instance comes in ${INSTANCE_VAR} (or as $1).\n: \"${{{INSTANCE_VAR}:=${{1#*@}}}}\"\nexport {INSTANCE_VAR}\n"
        ));
        stop_pre.push_str(&format!(
            "# A template: the instance is the directory's NAME@INSTANCE.\nd=$(basename \"$(pwd)\")\n: \"${{{INSTANCE_VAR}:=${{d#*@}}}}\"\nexport {INSTANCE_VAR}\n"
        ));
    }
    // Conditions: unmet, the service is left down (as systemd skips the unit).
    for (key, test) in CONDITIONS {
        for v in ctx.list("Unit", key) {
            let (neg, path) = match v.strip_prefix('!') {
                Some(p) => (true, p.to_string()),
                None => (false, v.clone()),
            };
            let path = path.strip_prefix('|').unwrap_or(&path).to_string();
            let t = format!(
                "[ {}{test} {} ]",
                if neg { "! " } else { "" },
                sh_text(&path)
            );
            sh.push_str(&format!(
                "if ! {t}; then\n  echo {}: condition not met: {}, leaving it down >&2\n  exec rsvc -d .\nfi\n",
                sh_quote(&u.name),
                sh_quote(&format!("{key}={v}").replace([RT_OPEN, RT_CLOSE], ""))
            ));
        }
    }
    let env_at = sh.len();
    for (k, v) in &runtime_env {
        sh.push_str(&format!("{k}={}\nexport {k}\n", sh_text(v)));
    }
    for v in ctx.list("Service", "EnvironmentFile") {
        let (opt, f) = match v.strip_prefix('-') {
            Some(f) => (true, f.to_string()),
            None => (false, v.clone()),
        };
        let q = sh_text(&f);
        if opt {
            sh.push_str(&format!("if [ -r {q} ]; then set -a; . {q}; set +a; fi\n"));
        } else {
            sh.push_str(&format!("set -a; . {q} || exit 111; set +a\n"));
        }
    }
    for v in ctx.list("Service", "UnsetEnvironment") {
        for w in v.split_whitespace() {
            let n = w.split_once('=').map_or(w, |(a, _)| a);
            if n != w {
                ctx.note(
                    "UnsetEnvironment",
                    w,
                    "the variable is unset whatever its value",
                );
            }
            sh.push_str(&format!("unset {}\n", sh_quote(n)));
        }
    }
    let umask = ctx.get("Service", "UMask").unwrap_or_else(|| "0022".into());
    if umask.is_empty() || !umask.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(format!("UMask: not an octal number: {umask}"));
    }
    sh.push_str(&format!("umask {umask}\n"));
    stop_pre.push_str(&sh[env_at..]);
    for (key, letter, div) in LIMITS {
        let Some(v) = ctx.get("Service", key) else {
            continue;
        };
        let (soft, hard) = match v.split_once(':') {
            Some((s, h)) => (limit_value(s, *div, key)?, limit_value(h, *div, key)?),
            None => {
                let x = limit_value(&v, *div, key)?;
                (x.clone(), x)
            }
        };
        // A container may not raise a hard limit: warn and go on with what there is.
        sh.push_str(&format!(
            "ulimit -H -{letter} {hard} 2>/dev/null; ulimit -S -{letter} {soft} 2>/dev/null || echo {}: unable to set {key}={}, keeping $(ulimit -S -{letter}) >&2\n",
            sh_quote(&u.name),
            sh_quote(&v)
        ));
    }
    // Directories systemd creates for the service.
    for (key, base) in [
        ("RuntimeDirectory", "/run"),
        ("StateDirectory", "/var/lib"),
        ("CacheDirectory", "/var/cache"),
        ("LogsDirectory", "/var/log"),
    ] {
        let mode = ctx
            .get("Service", &format!("{key}Mode"))
            .unwrap_or_else(|| "0755".into());
        for v in ctx.list("Service", key) {
            for d in v.split_whitespace() {
                let p = sh_text(&format!("{base}/{d}"));
                sh.push_str(&format!(
                    "mkdir -p -m {} {p} || exit 111\n",
                    sh_quote(&mode)
                ));
                if let Some(ua) = &user_arg {
                    // user[:group], without the supplementary groups.
                    let owner: Vec<&str> = ua.splitn(3, ':').take(2).collect();
                    sh.push_str(&format!("chown {} {p} || exit 111\n", owner.join(":")));
                }
            }
        }
    }
    let ua = user_arg.as_deref();
    match ctx.get("Service", "WorkingDirectory") {
        Some(d) => {
            let (opt, d) = match d.strip_prefix('-') {
                Some(x) => (true, x.to_string()),
                None => (false, d),
            };
            let target = if d == "~" {
                match &user {
                    Some(u) => format!("~{u}"),
                    None => "/root".into(),
                }
            } else {
                sh_text(&d)
            };
            let line = if opt {
                format!("cd {target} 2>/dev/null || cd /\n")
            } else {
                format!("cd {target} || exit 111\n")
            };
            sh.push_str(&line);
            stop_pre.push_str(&line);
        }
        None => {
            sh.push_str("cd /\n");
            stop_pre.push_str("cd /\n");
        }
    }
    if let Some(r) = ctx.get("Service", "RootDirectory") {
        ctx.note(
            "RootDirectory",
            &r,
            "applied to ExecStart only (rsvexec -/)",
        );
    }
    for c in &pres {
        sh.push_str(&step(c, ua));
    }

    // Readiness and how the service runs.
    let wd = ctx.get("Service", "WatchdogSec");
    let remain = ctx
        .get("Service", "RemainAfterExit")
        .is_some_and(|v| matches!(v.as_str(), "yes" | "true" | "on" | "1"));
    let mut exec_prefix = String::from("exec ");
    let mut main = sh_command(&starts[0], ua);
    if let Some(n) = ctx.get("Service", "Nice") {
        let n: i32 = n.parse().map_err(|_| format!("Nice: not a number: {n}"))?;
        main = format!("rsvexec -n {n} -- {main}");
    }
    if let Some(r) = ctx.get("Service", "RootDirectory") {
        main = format!("rsvexec -/ {} -- {main}", sh_text(&r));
    }
    let posts_sh: String = posts.iter().map(|c| step(c, ua)).collect();
    match ty.as_str() {
        "oneshot" => {
            let dir = outdir.join(name);
            let mut start = sh.clone();
            for c in &starts {
                start.push_str(&step(c, ua));
            }
            start.push_str(&posts_sh);
            start.push_str("exit 0\n");
            svc.execs.push(("start".into(), start));
            svc.files.push(("type".into(), "oneshot".into()));
            svc.files
                .push(("up".into(), dir.join("start").display().to_string()));
            if !stops.is_empty() {
                let mut stop = sh.clone();
                for c in &stops {
                    stop.push_str(&step(c, ua));
                }
                stop.push_str("exit 0\n");
                svc.execs.push(("stop".into(), stop));
                svc.files
                    .push(("down".into(), dir.join("stop").display().to_string()));
            }
            if !remain {
                ctx.notes.push(format!(
                    "[{}] RemainAfterExit=no (a oneshot counts as up once its start script ran, as with RemainAfterExit=yes)",
                    u.name
                ));
            }
            svc.run = String::new();
            add_deps(ctx, &mut svc, known);
            return Ok(svc);
        }
        "notify" => {
            svc.files.push(("notify-socket".into(), String::new()));
            if let Some(w) = &wd {
                match unit::time_span_ms(w, 1000.0)? {
                    Some(ms) if ms > 0 => svc
                        .files
                        .push(("watchdog-usec".into(), (ms * 1000).to_string())),
                    _ => {}
                }
            }
            if !posts.is_empty() {
                ctx.notes.push(format!(
                    "[{}] ExecStartPost= (runs in the background as the service starts, without waiting for READY=1)",
                    u.name
                ));
                sh.push_str(&format!("(\n{posts_sh}) &\n"));
            }
        }
        "forking" => match ctx.get("Service", "PIDFile") {
            Some(pf) => {
                // The supervisor adopts the daemon (subreaper) and follows the pid it is told.
                svc.files.push(("notify-socket".into(), String::new()));
                if let Some(ms) = wd
                    .as_deref()
                    .map(|w| unit::time_span_ms(w, 1000.0))
                    .transpose()?
                    .flatten()
                    .filter(|&ms| ms > 0)
                {
                    svc.files
                        .push(("watchdog-usec".into(), (ms * 1000).to_string()));
                }
                let q = sh_text(&pf);
                let or = if starts[0].ignore_failure {
                    ":"
                } else {
                    "exit $?"
                };
                sh.push_str(&format!("rm -f {q}\n{main} || {or}\n"));
                sh.push_str(&format!(
                    "n=0\nwhile [ ! -s {q} ]; do\n  n=$((n + 1))\n  if [ $n -gt 900 ]; then echo {}: no PID file {q} after 90 s >&2; exit 111; fi\n  sleep 0.1\ndone\n",
                    sh_quote(&u.name)
                ));
                sh.push_str(&posts_sh);
                sh.push_str(&format!(
                    "systemd-notify --pid=\"$(cat {q})\" --ready || exit 111\nexit 0\n"
                ));
                exec_prefix.clear();
                main.clear();
            }
            None => {
                ctx.notes.push(format!(
                    "[{}] Type=forking without PIDFile= (run as Type=simple: the command must stay in the foreground)",
                    u.name
                ));
                if let Some(w) = &wd {
                    ctx.note("WatchdogSec", w, "needs Type=notify or a PIDFile=");
                }
            }
        },
        _ => {
            if let Some(w) = &wd {
                ctx.note("WatchdogSec", w, "needs Type=notify");
            }
            if !posts.is_empty() {
                ctx.notes.push(format!(
                    "[{}] ExecStartPost= (runs in the background as the service starts)",
                    u.name
                ));
                sh.push_str(&format!("(\n{posts_sh}) &\n"));
            }
        }
    }
    if !main.is_empty() {
        sh.push_str(&exec_prefix);
        sh.push_str(&main);
        sh.push('\n');
    }
    svc.run = sh;
    if ctx.get("Service", "RemainAfterExit").is_some() {
        ctx.note(
            "RemainAfterExit",
            u.get("Service", "RemainAfterExit").unwrap_or(""),
            "only meaningful for Type=oneshot",
        );
    }

    if let Some(pf) = ctx.get("Service", "PIDFile").filter(|_| ty != "forking") {
        ctx.note("PIDFile", &pf, "only used with Type=forking");
    }
    if let Some(na) = ctx.get("Service", "NotifyAccess").filter(|v| v != "all") {
        ctx.note(
            "NotifyAccess",
            &na,
            "rsv accepts notifications from every process of the service (as NotifyAccess=all)",
        );
    }
    if let Some(t) = ctx.get("Service", "TimeoutSec") {
        ctx.note(
            "TimeoutSec",
            &t,
            "its stop part only (timeout-kill, unless TimeoutStopSec= is set); rsv has no start timeout",
        );
    }

    // Stop.
    if let Some(sig) = ctx.get("Service", "KillSignal") {
        let s = signal_name(&sig).ok_or(format!("KillSignal: unknown signal {sig}"))?;
        if s != "TERM" {
            svc.files.push(("down-signal".into(), s));
        }
    }
    // KillMode: systemd's default, control-group, stops every process of the service.
    let kill_mode = ctx
        .get("Service", "KillMode")
        .unwrap_or_else(|| "control-group".into());
    match kill_mode.as_str() {
        "control-group" => svc.files.push(("stop-tree".into(), String::new())),
        "mixed" => {
            svc.files.push(("stop-tree".into(), String::new()));
            ctx.note(
                "KillMode",
                "mixed",
                "approximated by stop-tree: the other processes get KillSignal once the main process ended, then SIGKILL after TimeoutStopSec",
            );
        }
        "process" => {}
        "none" => ctx.note(
            "KillMode",
            "none",
            "approximated as KillMode=process: the main process gets KillSignal, the others are left alone",
        ),
        other => return Err(format!("KillMode: unknown mode {other}")),
    }
    let stop_ms = match ctx
        .get("Service", "TimeoutStopSec")
        .or_else(|| ctx.get("Service", "TimeoutSec"))
    {
        Some(v) => unit::time_span_ms(&v, 1000.0).map_err(|e| format!("TimeoutStopSec: {e}"))?,
        None => Some(90_000),
    };
    if let Some(ms) = stop_ms.filter(|&m| m > 0) {
        svc.files.push(("timeout-kill".into(), ms.to_string()));
    }
    if !stops.is_empty() {
        // The supervisor runs `stop` before the down-signal when the service is stopped.
        let mut st = format!(
            "#!/bin/sh\n# Generated by rsv-import from {}: ExecStop=, run by the supervisor with $MAINPID set\n# when the service is stopped; KillSignal= follows for what still runs.\nset -f\n",
            u.name
        );
        st.push_str(&stop_pre);
        for c in &stops {
            st.push_str(&step(c, ua));
        }
        st.push_str("exit 0\n");
        svc.execs.push(("stop".into(), st));
    }
    if !reloads.is_empty() {
        let mut r = String::from(
            "#!/bin/sh\n# Generated by rsv-import: ExecReload=, run by `systemctl reload` with $MAINPID set.\nset -f\n",
        );
        for c in &reloads {
            r.push_str(&step(c, ua));
        }
        r.push_str("exit 0\n");
        svc.execs.push(("reload".into(), r));
    }

    // Restarts.
    restart_policy(ctx, &mut svc)?;
    add_deps(ctx, &mut svc, known);
    Ok(svc)
}

/// Requires/Wants/BindsTo/Requisite/After naming imported services -> dependencies.d.
fn add_deps(ctx: &mut Ctx, svc: &mut Service, known: &BTreeSet<String>) {
    let mut deps = BTreeSet::new();
    let required: BTreeSet<String> = ctx
        .list("Unit", "Requires")
        .iter()
        .flat_map(|v| unit_names(v))
        .collect();
    for key in DEP_KEYS {
        for v in ctx.list("Unit", key) {
            for n in unit_names(&v) {
                let n = n.replace([RT_OPEN, RT_CLOSE], "");
                let sname = service_name(&n);
                if n.ends_with(".service") && known.contains(&sname) {
                    // dependencies.d is one kind of dependency: systemd's weaker ones differ.
                    let why = match *key {
                        "Wants" if !required.contains(&n) => Some(
                            "a hard dependency here, as Requires=: this service waits until it is up",
                        ),
                        "After" if !required.contains(&n) && !wanted(ctx, &n) => Some(
                            "ordering only in systemd; here a dependency, so it is started too",
                        ),
                        "Requisite" => {
                            Some("treated as Requires=: it is started, not only checked")
                        }
                        "BindsTo" => Some(
                            "treated as Requires=: this service is not stopped when it stops on its own",
                        ),
                        _ => None,
                    };
                    if let Some(why) = why {
                        ctx.note(key, &n, why);
                    }
                    deps.insert(sname);
                } else if n.ends_with(".service") {
                    ctx.note(key, &n, "not among the imported services");
                } else {
                    ctx.note(
                        key,
                        &n,
                        "systemd targets, sockets and mounts have no rsv equivalent",
                    );
                }
            }
        }
    }
    deps.remove(&svc.name);
    svc.deps = deps.into_iter().collect();
}

/// Is `n` named by Wants=, BindsTo= or Requisite= (each noted on its own)?
fn wanted(ctx: &mut Ctx, n: &str) -> bool {
    ["Wants", "BindsTo", "Requisite"].iter().any(|k| {
        ctx.list("Unit", k)
            .iter()
            .any(|v| unit_names(v).iter().any(|x| x == n))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str, text: &str) -> Unit {
        let mut u = Unit {
            name: name.into(),
            ..Unit::default()
        };
        unit::parse_into(&mut u, text, name).unwrap();
        u
    }

    fn one(u: Unit, known: &[&str]) -> (Service, Vec<String>) {
        let known: BTreeSet<String> = known.iter().map(|s| s.to_string()).collect();
        let mut o = import(&[u], &known, Path::new("/srv"));
        assert!(o.errors.is_empty(), "{:?}", o.errors);
        (o.services.remove(0), o.notes)
    }

    #[test]
    fn simple_service() {
        let (s, notes) = one(
            unit(
                "web.service",
                "[Unit]\nDescription=Web\nAfter=network.target db.service\nRequires=db.service\n[Service]\nUser=www\nGroup=www\nEnvironment=\"A=1 2\" B=x\nExecStartPre=-/bin/true\nExecStart=/usr/bin/web --opt $OPTS ${B}\nRestart=on-failure\nRestartSec=2\nKillSignal=SIGQUIT\nTimeoutStopSec=5\nLimitNOFILE=1024:4096\nProtectSystem=full\n[Install]\nWantedBy=multi-user.target\n",
            ),
            &["db", "web"],
        );
        assert_eq!(s.name, "web");
        assert!(s.run.contains("set -f\n"));
        assert!(
            s.run.contains("rsvexec -u www:www -- /bin/true || :\n"),
            "{}",
            s.run
        );
        assert!(
            s.run
                .contains("exec rsvexec -u www:www -- /usr/bin/web --opt ${OPTS} \"${B}\"\n"),
            "{}",
            s.run
        );
        assert!(s.run.contains("ulimit -H -n 4096 2>/dev/null; ulimit -S -n 1024 2>/dev/null || echo web.service: unable to set LimitNOFILE=1024:4096, keeping $(ulimit -S -n) >&2\n"), "{}", s.run);
        assert!(s.run.contains("umask 0022\ncd /\n") || s.run.contains("cd /\n"));
        assert_eq!(
            s.env,
            vec![("A".into(), "1 2".into()), ("B".into(), "x".into())]
        );
        assert_eq!(s.deps, vec!["db".to_string()]);
        assert!(s.files.contains(&("down-signal".into(), "QUIT".into())));
        assert!(s.files.contains(&("timeout-kill".into(), "5000".into())));
        let f = s.finish.unwrap();
        assert!(
            f.contains("if [ \"$clean\" = 1 ]; then exit 125; fi\nsleep 2\n"),
            "{f}"
        );
        assert!(notes.iter().any(|n| n.contains("network.target")));
        assert!(
            notes
                .iter()
                .any(|n| n.contains("ProtectSystem=full (sandboxing"))
        );
        assert!(!notes.iter().any(|n| n.contains("WantedBy")));
    }

    #[test]
    fn notify_oneshot_forking_template() {
        let (s, _) = one(
            unit(
                "n.service",
                "[Service]\nType=notify\nWatchdogSec=3\nExecStart=/bin/n\n",
            ),
            &[],
        );
        assert!(s.files.contains(&("notify-socket".into(), String::new())));
        assert!(
            s.files
                .contains(&("watchdog-usec".into(), "3000000".into()))
        );
        let (s, notes) = one(
            unit(
                "o.service",
                "[Service]\nType=oneshot\nExecStart=/bin/a\nExecStart=/bin/b x\nExecStop=/bin/c\n",
            ),
            &[],
        );
        assert!(s.files.contains(&("type".into(), "oneshot".into())));
        assert!(s.files.contains(&("up".into(), "/srv/o/start".into())));
        assert!(s.files.contains(&("down".into(), "/srv/o/stop".into())));
        let start = &s.execs.iter().find(|(n, _)| n == "start").unwrap().1;
        assert!(start.contains("/bin/a || exit $?\n/bin/b x || exit $?\nexit 0\n"));
        assert!(notes.iter().any(|n| n.contains("RemainAfterExit=no")));
        let (s, _) = one(
            unit(
                "f.service",
                "[Service]\nType=forking\nPIDFile=/run/f.pid\nExecStart=/usr/sbin/f -d\n",
            ),
            &[],
        );
        assert!(s.run.contains("/usr/sbin/f -d || exit $?\n"));
        assert!(
            s.run
                .contains("systemd-notify --pid=\"$(cat /run/f.pid)\" --ready")
        );
        let (s, _) = one(
            unit(
                "t@.service",
                "[Service]\nExecStart=/bin/t %i %n\nEnvironment=X=%i\n",
            ),
            &[],
        );
        assert_eq!(s.name, "t@");
        assert!(
            s.run
                .contains("exec /bin/t \"${RSV_INSTANCE}\" t@\"${RSV_INSTANCE}\".service\n"),
            "{}",
            s.run
        );
        assert!(
            s.run.contains("X=\"${RSV_INSTANCE}\"\nexport X\n"),
            "{}",
            s.run
        );
        let (s, _) = one(unit("t@7.service", "[Service]\nExecStart=/bin/t %i\n"), &[]);
        assert_eq!(s.name, "t@7");
        assert!(s.run.contains("exec /bin/t 7\n"));
    }

    #[test]
    fn stop_and_kill_modes() {
        let (s, notes) = one(
            unit(
                "s@.service",
                "[Unit]\nWants=a.service\nAfter=a.service b.service\nRequires=b.service\n[Service]\nUser=u\nEnvironmentFile=-/etc/default/s\nWorkingDirectory=/srv/%i\nExecStart=/bin/s\nExecStop=-/bin/s stop $MAINPID %i\nExecStop=/bin/true\nNotifyAccess=main\nPIDFile=/run/s.pid\n",
            ),
            &["a", "b"],
        );
        assert!(s.files.contains(&("stop-tree".into(), String::new())));
        let stop = &s.execs.iter().find(|(n, _)| n == "stop").unwrap().1;
        assert!(
            stop.contains(
                "d=$(basename \"$(pwd)\")\n: \"${RSV_INSTANCE:=${d#*@}}\"\nexport RSV_INSTANCE\n"
            ),
            "{stop}"
        );
        assert!(
            stop.contains("if [ -r /etc/default/s ]; then set -a; . /etc/default/s; set +a; fi\n"),
            "{stop}"
        );
        assert!(
            stop.contains("cd /srv/\"${RSV_INSTANCE}\" || exit 111\n"),
            "{stop}"
        );
        assert!(
            stop.ends_with("rsvexec -u u -- /bin/s stop ${MAINPID} \"${RSV_INSTANCE}\" || :\nrsvexec -u u -- /bin/true || exit $?\nexit 0\n"),
            "{stop}"
        );
        assert!(!notes.iter().any(|n| n.contains("ExecStop")), "{notes:?}");
        let has = |k: &str| notes.iter().any(|n| n.contains(k));
        assert!(
            has("Wants=a.service (a hard dependency here, as Requires="),
            "{notes:?}"
        );
        assert!(
            !has("After=a.service") && !has("After=b.service"),
            "{notes:?}"
        );
        assert!(
            has("NotifyAccess=main") && has("PIDFile=/run/s.pid"),
            "{notes:?}"
        );
        for (mode, tree, note) in [
            ("process", false, false),
            ("mixed", true, true),
            ("none", false, true),
            ("control-group", true, false),
        ] {
            let (s, notes) = one(
                unit(
                    "k.service",
                    &format!("[Service]\nExecStart=/bin/k\nKillMode={mode}\n"),
                ),
                &[],
            );
            assert_eq!(
                s.files.iter().any(|(n, _)| n == "stop-tree"),
                tree,
                "{mode}"
            );
            assert_eq!(notes.iter().any(|n| n.contains("KillMode")), note, "{mode}");
        }
    }

    #[test]
    fn errors() {
        let o = import(
            &[unit(
                "x.service",
                "[Service]\nType=weird\nExecStart=/bin/x\n",
            )],
            &BTreeSet::new(),
            Path::new("/"),
        );
        assert_eq!(o.errors.len(), 1);
        let o = import(
            &[unit(
                "x.service",
                "[Service]\nExecStart=/bin/a\nExecStart=/bin/b\n",
            )],
            &BTreeSet::new(),
            Path::new("/"),
        );
        assert!(o.errors[0].contains("oneshot"));
    }
}
