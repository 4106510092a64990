//! `rsvstat` and `rsvok`: read a service's state.
//!
//! One service dir: s6-svstat's human line or machine fields (`-uwNrpest`, `-o`), for s6 and
//! runit status files, and after the line what rsv's `supervise/rsv-state` adds (throttling,
//! give-up, restarts, recent exits, health). Several dirs or a scan dir: a table, one service
//! per line. `--json`: the same data as JSON (schema: docs/status-schema.json); `--prom`:
//! Prometheus metrics (module `prom`); `--ready`: a probe (module `probe`). The formats are
//! described in docs/status.md. Started as `s6-svstat` / `s6-svok`, the programs behave
//! exactly as s6's (fcntl lock probe only, 35-byte status only, s6's messages, no rsv-state).

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod graph;
mod probe;
mod prom;
mod usage;

use crate::control::errstr;
use crate::diag::{EXIT_SYS, EXIT_USAGE};
use crate::extstate::{self, ExtState, Health};
use crate::lock;
use crate::status::Ended;
use crate::svview::{self, Format, View, has_down_file, last_death, secs_between};
use crate::tai::{Family, Tai64N};

/// `-o` field names, in the order prefixes are matched.
pub const FIELDS: [&str; 13] = [
    "up",
    "wantedup",
    "normallyup",
    "ready",
    "paused",
    "pid",
    "exitcode",
    "signal",
    "signum",
    "updownsince",
    "readysince",
    "updownfor",
    "readyfor",
];

const S6_USAGE: &str = "s6-svstat [ -uwNrpest | -o up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum,updownsince,readysince,updownfor,readyfor ] [ -n ] servicedir";
const RSV_USAGE: &str = "rsvstat [ -uwNrpest | -o up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum,updownsince,readysince,updownfor,readyfor ] [ -n ] [ --json | --prom | --ready ] servicedir...";

/// Writes all of `s` to standard output and flushes it.
pub(crate) fn write_stdout(s: &str) -> io::Result<()> {
    let mut so = io::stdout().lock();
    so.write_all(s.as_bytes())?;
    so.flush()
}

/// Finds the field a `-o` item names (first table entry it is a prefix of).
pub fn match_field(item: &str) -> Option<usize> {
    FIELDS.iter().position(|f| f.starts_with(item))
}

/// Parsed command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub fields: Vec<usize>,
    pub numeric: bool,
    pub json: bool,
    /// `--prom`: Prometheus text exposition format.
    pub prom: bool,
    /// `--ready`: the readiness probe.
    pub ready: bool,
    pub dirs: Vec<String>,
}

/// Parse errors, with s6-svstat's messages.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgError {
    Usage,
    Fatal(String),
}

/// rsvstat's long options (anywhere on the line); true when `arg` is one.
fn long_opt(a: &mut Args, arg: &str) -> bool {
    match arg {
        "--json" => a.json = true,
        "--prom" => a.prom = true,
        "--ready" => a.ready = true,
        _ => return false,
    }
    true
}

pub fn parse_args(args: &[String], allow_json: bool) -> Result<Args, ArgError> {
    let mut a = Args::default();
    let mut i = 0;
    let push = |a: &mut Args, f: usize| -> Result<(), ArgError> {
        if a.fields.len() >= 16 {
            return Err(ArgError::Fatal("too many option fields".into()));
        }
        a.fields.push(f);
        Ok(())
    };
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        if allow_json && long_opt(&mut a, arg) {
            i += 1;
            continue;
        }
        if !arg.starts_with('-') || arg.len() < 2 {
            break;
        }
        let chars: Vec<char> = arg[1..].chars().collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            let field = match c {
                'u' => Some(0),
                'w' => Some(1),
                'N' => Some(2),
                'r' => Some(3),
                'p' => Some(5),
                'e' => Some(6),
                's' => Some(7),
                't' => Some(11),
                'n' => {
                    a.numeric = true;
                    None
                }
                'o' => {
                    let val: String = if j + 1 < chars.len() {
                        chars[j + 1..].iter().collect()
                    } else {
                        i += 1;
                        args.get(i).cloned().ok_or(ArgError::Usage)?
                    };
                    // s6-svstat ignores one trailing comma ("up," but not "," or "up,,").
                    let val = match val.strip_suffix(',') {
                        Some(v) if !v.is_empty() => v.to_string(),
                        _ => val,
                    };
                    if !val.is_empty() {
                        for item in val.split(',') {
                            if item.is_empty() {
                                return Err(ArgError::Fatal("invalid null option field".into()));
                            }
                            let f = match_field(item).ok_or_else(|| {
                                ArgError::Fatal(format!("invalid option field: {item}"))
                            })?;
                            push(&mut a, f)?;
                        }
                    }
                    j = chars.len();
                    continue;
                }
                _ => return Err(ArgError::Usage),
            };
            if let Some(f) = field {
                push(&mut a, f)?;
            }
            j += 1;
        }
        i += 1;
    }
    a.dirs = args[i..].to_vec();
    if allow_json {
        let mut dirs = std::mem::take(&mut a.dirs);
        dirs.retain(|d| !long_opt(&mut a, d));
        a.dirs = dirs;
    }
    if a.dirs.is_empty() {
        return Err(ArgError::Usage);
    }
    Ok(a)
}

/// A view with the stamps clamped to `now` (s6-svstat shows no future).
fn clamp(mut v: View, now: Tai64N) -> View {
    if v.stamp > now {
        v.stamp = now;
    }
    if v.readystamp > now {
        v.readystamp = now;
    }
    v
}

/// s6-svstat's human line (without newline). runit statuses: `up (pid P) S seconds`,
/// `down S seconds`, `finish (pid P) S seconds`, and `, got TERM` at the end.
pub fn human_line(v: &View, normallyup: bool, numeric: bool, now: Tai64N) -> String {
    let v = clamp(*v, now);
    let mut s = String::new();
    if v.up {
        let _ = write!(s, "up (pid {})", v.pid);
    } else if v.format == Format::Runit {
        if v.finishing {
            let _ = write!(s, "finish (pid {})", v.pid);
        } else {
            s.push_str("down");
        }
    } else {
        match v.ended() {
            Some(Ended::Signaled(n)) if numeric => {
                let _ = write!(s, "down (signal {n})");
            }
            Some(Ended::Signaled(n)) => {
                let _ = write!(s, "down (signal {})", crate::sig::long_name(n));
            }
            Some(Ended::Exited(c)) => {
                let _ = write!(s, "down (exitcode {c})");
            }
            None => s.push_str("down (exitcode 0)"),
        }
    }
    let _ = write!(s, " {} seconds", secs_between(v.stamp, now));
    if v.up && !normallyup {
        s.push_str(", normally down");
    }
    if !v.up && normallyup {
        s.push_str(", normally up");
    }
    if v.up && v.paused {
        s.push_str(", paused");
    }
    if !v.up && v.wantup {
        s.push_str(", want up");
    }
    if v.up && !v.wantup {
        s.push_str(", want down");
    }
    if v.ready {
        let _ = write!(s, ", ready {} seconds", secs_between(v.readystamp, now));
    }
    if v.got_term {
        s.push_str(", got TERM");
    }
    s
}

/// The machine-readable line: the values of `fields`, separated by spaces.
pub fn fields_line(v: &View, normallyup: bool, fields: &[usize], now: Tai64N) -> String {
    let v = clamp(*v, now);
    let ended = v.ended();
    let vals: Vec<String> = fields
        .iter()
        .map(|&f| match f {
            0 => v.up.to_string(),
            1 => v.wantup.to_string(),
            2 => normallyup.to_string(),
            3 => (v.pid != 0 && v.ready).to_string(),
            4 => v.paused.to_string(),
            5 => {
                if v.up {
                    v.pid.to_string()
                } else {
                    "-1".into()
                }
            }
            6 => match ended {
                Some(Ended::Exited(c)) => c.to_string(),
                _ => "-1".into(),
            },
            7 => match ended {
                Some(Ended::Signaled(n)) => crate::sig::long_name(n),
                _ => "NA".into(),
            },
            8 => match ended {
                Some(Ended::Signaled(n)) => n.to_string(),
                _ => "-1".into(),
            },
            9 => v.stamp.to_hex(),
            10 => v.readystamp.to_hex(),
            11 => secs_between(v.stamp, now).to_string(),
            _ => secs_between(v.readystamp, now).to_string(),
        })
        .collect();
    vals.join(" ")
}

/// Appends `s` as a JSON string literal.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Everything known about one service, for the table, JSON, Prometheus and probe outputs.
pub struct Info {
    pub name: String,
    pub path: PathBuf,
    /// `NAME/log`: the logger of a service.
    pub logger: bool,
    pub supervised: bool,
    pub view: Result<View, String>,
    pub normallyup: bool,
    pub last_exit: Option<Ended>,
    /// `supervise/rsv-state`, when the supervisor is rsv (None: runsv, s6-supervise, old rsv).
    pub ext: Option<ExtState>,
    /// The service dir's `give-up` rule (COUNT, SECONDS), when it has a valid one.
    pub give_up: Option<(u64, u64)>,
    /// The service dir has a `notification-fd` file.
    pub notifies: bool,
    /// What its processes use, and its leftovers (module `usage`).
    pub res: usage::Resources,
}

/// Reads a service dir's `give-up` file: one line `COUNT SECONDS`.
pub fn give_up_rule(sd: &Path) -> Option<(u64, u64)> {
    let text = fs::read_to_string(sd.join("give-up")).ok()?;
    let mut w = text.split_whitespace();
    let count = w.next()?.parse().ok()?;
    let secs = w.next()?.parse().ok()?;
    w.next().is_none().then_some((count, secs))
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    extstate::unix_ms(std::time::SystemTime::now())
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// An end of `run` as one word of the human line: the exit code, or the signal name.
fn ended_word(e: Ended) -> String {
    match e {
        Ended::Exited(c) => c.to_string(),
        Ended::Signaled(n) => crate::sig::long_name(n),
    }
}

fn ended_json(out: &mut String, e: Option<Ended>) {
    match e {
        Some(Ended::Exited(c)) => {
            let _ = write!(out, "{{\"code\":{c}}}");
        }
        Some(Ended::Signaled(n)) => {
            let _ = write!(
                out,
                "{{\"signal\":\"{}\",\"signum\":{n}}}",
                crate::sig::long_name(n)
            );
        }
        None => out.push_str("null"),
    }
}

/// Milliseconds until the next automatic start of a service that is being held back by the
/// crash-loop backoff; None when it is not throttled (up, not wanted up, gave up, no start
/// pending, or no live supervisor to start it).
pub fn throttle_left(v: &View, ext: &ExtState, supervised: bool, now_ms: u64) -> Option<u64> {
    let waiting = supervised && !v.up && v.wantup && !ext.gave_up && ext.next_try_ms > now_ms;
    waiting.then(|| ext.next_try_ms - now_ms)
}

/// The health words: `healthy`, `health starting`, `unhealthy (N failures)[: OUTPUT]`; None
/// when the service has no periodic checks (or is down and merely starting).
fn health_words(v: &View, ext: &ExtState) -> Option<String> {
    match ext.health {
        Health::None => None,
        Health::Starting => v.up.then(|| "health starting".to_string()),
        Health::Healthy => Some("healthy".into()),
        Health::Unhealthy => {
            let mut s = format!(
                "unhealthy ({})",
                plural(u64::from(ext.health_failures), "failure", "failures")
            );
            let out = extstate::one_line(ext.health_output.as_bytes());
            if !out.is_empty() {
                let _ = write!(s, ": {out}");
            }
            Some(s)
        }
    }
}

/// What rsv-state adds to the human line, as the items that follow today's line (each is
/// appended as `, ITEM`). `table` leaves out what the table has columns for (readiness,
/// restarts, exits, health).
pub fn ext_items(
    v: &View,
    ext: &ExtState,
    give_up: Option<(u64, u64)>,
    supervised: bool,
    now_ms: u64,
    table: bool,
) -> Vec<String> {
    let mut items = Vec::new();
    if !table && v.format == Format::Runit && v.up && ext.ready {
        // runit's status has no readiness; s6's line already says "ready N seconds".
        items.push("ready".to_string());
    }
    if ext.essential {
        items.push("essential".into());
    }
    if let Some(c) = ext.final_exit {
        items.push(format!("final exit {c}"));
    }
    if ext.gave_up && !v.up {
        items.push(match give_up {
            Some((count, secs)) => format!(
                "gave up after {} in {}",
                plural(count, "death", "deaths"),
                plural(secs, "second", "seconds")
            ),
            None => "gave up".into(),
        });
    }
    if let Some(left) = throttle_left(v, ext, supervised, now_ms) {
        items.push(format!("throttled, next try in {}s", left.div_ceil(1000)));
    }
    // sd_notify: what the service says about itself while up (the status text last, as it
    // may hold commas).
    if v.up {
        if !ext.sd_phase.is_empty() {
            items.push(ext.sd_phase.clone());
        }
        if ext.main_pid != 0 {
            items.push(format!("main pid {}", ext.main_pid));
        }
        if !ext.sd_status.is_empty() {
            items.push(format!("status: {}", ext.sd_status));
        }
    }
    if table {
        return items;
    }
    if ext.restarts > 0 {
        items.push(plural(ext.restarts, "restart", "restarts"));
    }
    if !v.up && !ext.exits.is_empty() {
        let words: Vec<String> = ext.exits.iter().map(|e| ended_word(*e)).collect();
        items.push(format!("last exits: {}", words.join(" ")));
    }
    if let Some(h) = health_words(v, ext) {
        items.push(h);
    }
    items
}

/// The `sd_notify` member of the JSON object: null unless the service sent a status, a
/// phase or a main pid.
fn sd_json(o: &mut String, e: &ExtState) {
    if e.sd_status.is_empty() && e.sd_phase.is_empty() && e.main_pid == 0 {
        o.push_str(",\"sd_notify\":null");
        return;
    }
    o.push_str(",\"sd_notify\":{\"status\":");
    json_str(o, &e.sd_status);
    o.push_str(",\"phase\":");
    json_str(o, &e.sd_phase);
    o.push_str(",\"main_pid\":");
    if e.main_pid != 0 {
        o.push_str(&e.main_pid.to_string());
    } else {
        o.push_str("null");
    }
    o.push('}');
}

/// rsvstat's human line: s6-svstat's line, then what rsv-state adds.
pub fn rsv_line(
    v: &View,
    normallyup: bool,
    numeric: bool,
    ext: Option<&ExtState>,
    give_up: Option<(u64, u64)>,
    now: Tai64N,
    now_ms: u64,
) -> String {
    let mut s = human_line(v, normallyup, numeric, now);
    if let Some(ext) = ext {
        for item in ext_items(&clamp(*v, now), ext, give_up, true, now_ms, false) {
            s.push_str(", ");
            s.push_str(&item);
        }
    }
    s
}

impl Info {
    pub fn gather(name: &str, path: &Path) -> Info {
        let sup = crate::rundir::supervise_dir(path);
        let supervised = lock::supervised(&sup).unwrap_or(false);
        let view = View::read(path)
            .map_err(|e| format!("{}/supervise/status: {}", path.display(), errstr(&e)));
        let ext = extstate::read(&sup).ok();
        let newest = ext.as_ref().and_then(|e| e.exits.first().copied());
        let last_exit = match (newest, last_death(path)) {
            (Some(e), _) => Some(e),
            (None, Some(d)) if d.sig != 0 => Some(Ended::Signaled(d.sig as i32)),
            (None, Some(d)) => Some(Ended::Exited(d.exit as i32)),
            (None, None) => view.as_ref().ok().and_then(|v| v.ended()),
        };
        let live = view
            .as_ref()
            .ok()
            .filter(|v| v.up && v.pid != 0 && supervised)
            .map(|v| v.pid as i32);
        let res = usage::gather(live, ext.as_ref());
        Info {
            res,
            name: name.to_string(),
            path: path.to_path_buf(),
            logger: name.ends_with("/log") || name == "log",
            supervised,
            view,
            normallyup: !has_down_file(path),
            last_exit,
            ext,
            give_up: give_up_rule(path),
            notifies: fs::symlink_metadata(path.join("notification-fd")).is_ok(),
        }
    }

    fn state(&self) -> &'static str {
        match &self.view {
            Ok(v) if v.up => "up",
            Ok(v) if v.finishing => "finish",
            Ok(_) => "down",
            Err(_) => "unknown",
        }
    }

    /// Up and ready, as the status says: rsv-state's flag when there is one, else the s6
    /// ready flag (runit statuses have none).
    pub fn ready(&self) -> bool {
        match (&self.view, &self.ext) {
            (Ok(v), Some(e)) => v.up && e.ready,
            (Ok(v), None) => v.up && v.ready,
            (Err(_), _) => false,
        }
    }

    /// The probe's notion of ready: rsv-state's flag when there is one; else the s6 ready
    /// flag when the service dir asks for notification, else simply up.
    pub fn probe_ready(&self) -> bool {
        match (&self.view, &self.ext) {
            (Ok(v), Some(e)) => v.up && e.ready,
            (Ok(v), None) if v.format == Format::S6 && self.notifies => v.up && v.ready,
            (Ok(v), None) => v.up,
            (Err(_), _) => false,
        }
    }

    pub fn unhealthy(&self) -> bool {
        self.ext
            .as_ref()
            .is_some_and(|e| e.health == Health::Unhealthy)
    }

    pub fn json(&self, now: Tai64N, now_ms: u64) -> String {
        let mut o = String::from("{\"name\":");
        json_str(&mut o, &self.name);
        o.push_str(",\"path\":");
        json_str(&mut o, &self.path.to_string_lossy());
        let (unix_now, _) = now.to_unix(Family::S6);
        match &self.view {
            Ok(v) => {
                let v = clamp(*v, now);
                let _ = write!(
                    o,
                    ",\"format\":\"{}\",\"supervised\":{},\"state\":\"{}\",\"pid\":",
                    v.format.name(),
                    self.supervised,
                    self.state()
                );
                if v.pid != 0 {
                    let _ = write!(o, "{}", v.pid);
                } else {
                    o.push_str("null");
                }
                let _ = write!(
                    o,
                    ",\"since\":{},\"uptime\":{},\"ready\":{},\"ready_since\":",
                    v.since.min(unix_now),
                    secs_between(v.stamp, now),
                    self.ready()
                );
                if v.format == Format::S6 {
                    let _ = write!(o, "{}", v.ready_since.min(unix_now));
                } else {
                    o.push_str("null");
                }
                let _ = write!(
                    o,
                    ",\"want\":\"{}\",\"paused\":{},\"normally_up\":{},\"last_exit\":",
                    if v.wantup { "up" } else { "down" },
                    v.paused,
                    self.normallyup
                );
            }
            Err(e) => {
                let _ = write!(
                    o,
                    ",\"format\":null,\"supervised\":{},\"state\":null,\"pid\":null,\"since\":null,\"uptime\":null,\"ready\":false,\"ready_since\":null,\"want\":null,\"paused\":false,\"normally_up\":{},\"error\":",
                    self.supervised, self.normallyup
                );
                json_str(&mut o, e);
                o.push_str(",\"last_exit\":");
            }
        }
        ended_json(&mut o, self.last_exit);
        let _ = write!(o, ",\"logger\":{}", self.logger);
        match &self.ext {
            None => o.push_str(
                ",\"rsv_state\":false,\"restarts\":null,\"exits\":null,\"throttling\":null,\"gave_up\":null,\"essential\":null,\"final_exit\":null,\"health\":null,\"sd_notify\":null",
            ),
            Some(e) => {
                let _ = write!(o, ",\"rsv_state\":true,\"restarts\":{},\"exits\":[", e.restarts);
                for (i, x) in e.exits.iter().enumerate() {
                    if i > 0 {
                        o.push(',');
                    }
                    ended_json(&mut o, Some(*x));
                }
                let left = self
                    .view
                    .as_ref()
                    .ok()
                    .and_then(|v| throttle_left(v, e, self.supervised, now_ms));
                let _ = write!(
                    o,
                    "],\"throttling\":{{\"throttled\":{},\"next_try_in_ms\":",
                    left.is_some()
                );
                match left {
                    Some(ms) => {
                        let _ = write!(o, "{ms}");
                    }
                    None => o.push_str("null"),
                }
                let _ = write!(
                    o,
                    ",\"backoff_ms\":{}}},\"gave_up\":{},\"essential\":{},\"final_exit\":",
                    e.backoff_ms, e.gave_up, e.essential
                );
                match e.final_exit {
                    Some(c) => {
                        let _ = write!(o, "{c}");
                    }
                    None => o.push_str("null"),
                }
                let _ = write!(
                    o,
                    ",\"health\":{{\"status\":\"{}\",\"failures\":{},\"last_check\":",
                    e.health.as_str(),
                    e.health_failures
                );
                if e.health_at_ms != 0 {
                    let _ = write!(
                        o,
                        "{}.{:03}",
                        e.health_at_ms / 1000,
                        e.health_at_ms % 1000
                    );
                } else {
                    o.push_str("null");
                }
                o.push_str(",\"output\":");
                let out = extstate::one_line(e.health_output.as_bytes());
                if e.health_at_ms != 0 || !out.is_empty() {
                    json_str(&mut o, &out);
                } else {
                    o.push_str("null");
                }
                o.push('}');
                sd_json(&mut o, e);
            }
        }
        self.res.json(&mut o);
        o.push('}');
        o
    }

    /// One row of the table; `wide` adds the RESTARTS, HEALTH and NOTES columns (only when
    /// some service of the table has an rsv-state, so older trees show today's table).
    pub fn table_row(&self, now: Tai64N, now_ms: u64, wide: bool) -> String {
        let last = match self.last_exit {
            Some(Ended::Exited(c)) => format!("exitcode {c}"),
            Some(Ended::Signaled(n)) => format!("signal {}", crate::sig::long_name(n)),
            None => "-".into(),
        };
        let state = if self.supervised {
            self.state()
        } else {
            "unsupervised"
        };
        let mut row = match &self.view {
            Ok(v) => {
                let v = clamp(*v, now);
                // A stale status left by a dead supervisor names no live process.
                let pid = if v.pid != 0 && self.supervised {
                    v.pid.to_string()
                } else {
                    "-".into()
                };
                format!(
                    "{:<24} {:<12} {:>8} {:>9} {:<5} {:<4} {}",
                    self.name,
                    state,
                    pid,
                    format!("{}s", secs_between(v.stamp, now)),
                    // Without rsv-state: the raw s6 flag, as the table always showed it.
                    if self.ext.is_some() && self.ready() || self.ext.is_none() && v.ready {
                        "yes"
                    } else {
                        "no"
                    },
                    if v.wantup { "up" } else { "down" },
                    last
                )
            }
            Err(_) => format!(
                "{:<24} {:<12} {:>8} {:>9} {:<5} {:<4} {}",
                self.name, state, "-", "-", "-", "-", last
            ),
        };
        if !wide {
            return row;
        }
        let pad = 14usize.saturating_sub(last.len());
        row.extend(std::iter::repeat_n(' ', pad));
        let (restarts, health, notes) = match (&self.ext, &self.view) {
            (Some(e), Ok(v)) => {
                let v = clamp(*v, now);
                let health = match e.health {
                    Health::None => "-".to_string(),
                    Health::Unhealthy => format!("unhealthy({})", e.health_failures),
                    h => h.as_str().to_string(),
                };
                let notes = ext_items(&v, e, self.give_up, self.supervised, now_ms, true);
                (e.restarts.to_string(), health, notes.join(", "))
            }
            _ => ("-".into(), "-".into(), String::new()),
        };
        let mut notes = notes;
        for item in self.res.items() {
            if !notes.is_empty() {
                notes.push_str(", ");
            }
            notes.push_str(&item);
        }
        let notes = if notes.is_empty() { "-".into() } else { notes };
        let (mem, cpu) = if self.res.processes > 0 {
            (
                usage::short_bytes(self.res.memory_bytes),
                usage::short_cpu(self.res.cpu_ms),
            )
        } else {
            ("-".into(), "-".into())
        };
        let _ = write!(row, " {restarts:>8} {health:<12} {mem:>7} {cpu:>6} {notes}");
        row
    }
}

const TABLE_HEADER: &str =
    "NAME                     STATE             PID    UPTIME READY WANT LAST-EXIT";
const WIDE_HEADER: &str = "NAME                     STATE             PID    UPTIME READY WANT LAST-EXIT      RESTARTS HEALTH           MEM    CPU NOTES";

/// The services a list of operands names: scan dirs are expanded; `NAME/log` is added when it
/// has a `supervise` directory.
pub fn expand(dirs: &[String]) -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    let mut add = |name: String, p: PathBuf| {
        let log = p.join("log");
        let has_log = crate::rundir::supervise_dir(&log).is_dir();
        v.push((name.clone(), p));
        if has_log {
            v.push((format!("{name}/log"), log));
        }
    };
    for d in dirs {
        let p = PathBuf::from(d);
        if svview::is_scan_dir(&p) {
            for s in svview::scan_services(&p) {
                let name = s
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                add(name, s);
            }
        } else {
            add(service_name(&p), p);
        }
    }
    v
}

/// The name a service is known by: the last component of its path, or `PARENT/log` for a
/// logger (as the scanners name them). Falls back to the path as given.
pub fn service_name(p: &Path) -> String {
    let base = |q: &Path| q.file_name().map(|n| n.to_string_lossy().into_owned());
    match base(p) {
        Some(b) if b == "log" => match p.parent().and_then(base) {
            Some(parent) => format!("{parent}/log"),
            None => b,
        },
        Some(b) => b,
        None => p.to_string_lossy().into_owned(),
    }
}

/// Entry point of `rsvstat` (and of `s6-svstat` when `strict`). Returns the exit code.
pub fn main(args: &[String], strict: bool) -> i32 {
    let prog = if strict { "s6-svstat" } else { "rsvstat" };
    let usage = if strict { S6_USAGE } else { RSV_USAGE };
    let a = match parse_args(args, !strict) {
        Ok(a) => a,
        Err(ArgError::Usage) => {
            eprintln!("{prog}: usage: {usage}");
            return EXIT_USAGE;
        }
        Err(ArgError::Fatal(m)) => {
            eprintln!("{prog}: fatal: {m}");
            return EXIT_USAGE;
        }
    };
    let now = Tai64N::now(Family::S6);
    if strict {
        return single_s6(&a, &a.dirs[0], now);
    }
    let modes = [(a.json, "--json"), (a.prom, "--prom"), (a.ready, "--ready")];
    let chosen: Vec<&str> = modes.iter().filter(|m| m.0).map(|m| m.1).collect();
    if chosen.len() > 1 {
        eprintln!(
            "rsvstat: fatal: {} cannot be combined",
            chosen.join(" and ")
        );
        return EXIT_USAGE;
    }
    if let Some(m) = chosen.first()
        && !a.fields.is_empty()
    {
        eprintln!("rsvstat: fatal: field options and {m} cannot be combined");
        return EXIT_USAGE;
    }
    // Scan dirs with a dependency graph: oneshots, waits, more JSON (module graph).
    let graphs = graph::Graphs::load(&a.dirs);
    let many = a.dirs.len() > 1
        || svview::is_scan_dir(Path::new(&a.dirs[0]))
        || graphs.is_scan_dir(Path::new(&a.dirs[0]));
    if !many && chosen.is_empty() {
        return single_rsv(&a, &a.dirs[0], now);
    }
    if many && !a.fields.is_empty() {
        eprintln!("rsvstat: fatal: field options need exactly one service directory");
        return EXIT_USAGE;
    }
    let now_ms = now_ms();
    let list = graph::expand(&graphs, &a.dirs);
    let infos: Vec<Info> = list.iter().map(|(n, p)| Info::gather(n, p)).collect();
    let mut missing = false;
    for (i, info) in infos.iter().enumerate() {
        if let Err(e) = &info.view {
            if !info.path.is_dir() {
                missing = true;
                eprintln!(
                    "rsvstat: warning: {}: not a directory or does not exist",
                    info.path.display()
                );
            } else if info.supervised || i < a.dirs.len() && !many {
                eprintln!(
                    "rsvstat: warning: unable to read status for {}: {e}",
                    info.path.display()
                );
            }
        }
    }
    if a.ready {
        if graphs.any() {
            return graph::probe_main(&graphs, &infos, now, now_ms, missing);
        }
        return probe::main(&infos, now, now_ms, missing);
    }
    let json = |info: &Info| {
        let member = graphs.member(&info.path);
        graph::json(info, member, info.json(now, now_ms), now_ms)
    };
    let mut out = String::new();
    if a.prom {
        prom::write(&mut out, &infos, now, now_ms);
        if graphs.any() {
            graph::prom(&mut out, &graphs, &infos);
        }
    } else if a.json {
        if many {
            out.push('[');
            for (i, info) in infos.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json(info));
            }
            out.push_str("]\n");
        } else if let Some(info) = infos.first() {
            out.push_str(&json(info));
            out.push('\n');
        }
    } else {
        let wide = infos.iter().any(|i| i.ext.is_some()) || graphs.any();
        out.push_str(if wide { WIDE_HEADER } else { TABLE_HEADER });
        out.push('\n');
        for info in &infos {
            out.push_str(&match graphs.member(&info.path) {
                Some(s) => graph::table_row(info, s, now, now_ms),
                None => info.table_row(now, now_ms, wide),
            });
            out.push('\n');
        }
    }
    if write_stdout(&out).is_err() {
        return EXIT_SYS;
    }
    if a.prom {
        // The metrics say which services are unsupervised; only a missing operand is an error.
        return if missing { EXIT_SYS } else { 0 };
    }
    // An atom of a graph may have no supervisor (a oneshot, a longrun not started yet).
    if infos
        .iter()
        .all(|i| i.supervised || graphs.member(&i.path).is_some())
    {
        0
    } else {
        1
    }
}

fn print_result(a: &Args, v: &View, normallyup: bool, now: Tai64N) -> i32 {
    let line = if a.fields.is_empty() {
        human_line(v, normallyup, a.numeric, now)
    } else {
        fields_line(v, normallyup, &a.fields, now)
    };
    let mut so = io::stdout().lock();
    if writeln!(so, "{line}").and_then(|_| so.flush()).is_err() {
        return EXIT_SYS;
    }
    0
}

fn single_s6(a: &Args, d: &str, now: Tai64N) -> i32 {
    let sd = Path::new(d);
    match lock::fcntl_lock_held(&crate::rundir::supervise_dir(sd).join("lock")) {
        Ok(true) => {}
        Ok(false) => {
            eprintln!(
                "s6-svstat: fatal: : unable to read status for {d}: s6-supervise not running"
            );
            return 1;
        }
        Err(e) => {
            eprintln!(
                "s6-svstat: fatal: unable to read status for {d}: {}",
                errstr(&e)
            );
            return EXIT_SYS;
        }
    }
    let v = match std::fs::read(crate::rundir::supervise_dir(sd).join("status")) {
        Ok(b) if b.len() >= crate::status::S6_LEN => match crate::status::S6Status::decode(&b) {
            Some(s) => View::from_status(crate::status::AnyStatus::S6(s)),
            None => return EXIT_SYS,
        },
        Ok(_) => {
            eprintln!("s6-svstat: fatal: unable to read status for {d}: Broken pipe");
            return EXIT_SYS;
        }
        Err(e) => {
            eprintln!(
                "s6-svstat: fatal: unable to read status for {d}: {}",
                errstr(&e)
            );
            return EXIT_SYS;
        }
    };
    print_result(a, &v, !has_down_file(sd), now)
}

fn single_rsv(a: &Args, d: &str, now: Tai64N) -> i32 {
    let sd = Path::new(d);
    if let Some(line) = a
        .fields
        .is_empty()
        .then(|| graph::single(d, now_ms()))
        .flatten()
    {
        return match write_stdout(&format!("{line}\n")) {
            Ok(()) => 0,
            Err(_) => EXIT_SYS,
        };
    }
    match lock::supervised(&crate::rundir::supervise_dir(sd)) {
        Ok(true) => {}
        Ok(false) => {
            if !sd.is_dir() {
                eprintln!(
                    "rsvstat: fatal: unable to read status for {d}: no such service directory"
                );
            } else {
                eprintln!(
                    "rsvstat: fatal: unable to read status for {d}: supervisor not running (no lock held on {d}/supervise/lock)"
                );
            }
            return 1;
        }
        Err(e) => {
            eprintln!(
                "rsvstat: fatal: unable to check {d}/supervise: {}",
                errstr(&e)
            );
            return EXIT_SYS;
        }
    }
    let v = match View::read(sd) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "rsvstat: fatal: unable to read status for {d}: {d}/supervise/status: {}",
                errstr(&e)
            );
            return EXIT_SYS;
        }
    };
    if !a.fields.is_empty() {
        return print_result(a, &v, !has_down_file(sd), now);
    }
    let ext = extstate::read(&crate::rundir::supervise_dir(sd)).ok();
    let live = (v.up && v.pid != 0).then_some(v.pid as i32);
    let res = usage::gather(live, ext.as_ref());
    let mut line = rsv_line(
        &v,
        !has_down_file(sd),
        a.numeric,
        ext.as_ref(),
        give_up_rule(sd),
        now,
        now_ms(),
    );
    for item in res.items() {
        line.push_str(", ");
        line.push_str(&item);
    }
    line.push_str(&graph::single_suffix(d));
    let mut so = io::stdout().lock();
    if writeln!(so, "{line}").and_then(|_| so.flush()).is_err() {
        return EXIT_SYS;
    }
    0
}

/// `rsvok SD` / `s6-svok SD`: 0 supervised, 1 not, 100 usage, 111 error.
pub fn svok_main(args: &[String], strict: bool) -> i32 {
    let prog = if strict { "s6-svok" } else { "rsvok" };
    let mut ops = args;
    if ops.first().is_some_and(|a| a == "--") {
        ops = &ops[1..];
    }
    if ops
        .first()
        .is_some_and(|a| a.starts_with('-') && a.len() > 1)
    {
        eprintln!("{prog}: usage: {prog} servicedir");
        return EXIT_USAGE;
    }
    let Some(d) = ops.first() else {
        eprintln!("{prog}: usage: {prog} servicedir");
        return EXIT_USAGE;
    };
    // rsvok: a service directory that is not there is a mistake in the path, not a service
    // without supervisor: say so (s6-svok just answers 1).
    if !strict && !Path::new(d).is_dir() {
        let why = match fs::metadata(d) {
            Ok(_) => "not a directory".to_string(),
            Err(e) => errstr(&e),
        };
        eprintln!("rsvok: fatal: unable to check {d}: {why}");
        return EXIT_SYS;
    }
    let sup = crate::rundir::supervise_dir(Path::new(d));
    let r = if strict {
        lock::fcntl_lock_held(&sup.join("lock"))
    } else {
        lock::supervised(&sup)
    };
    match r {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            if strict {
                eprintln!("s6-svok: fatal: unable to check {d}: {}", errstr(&e));
            } else {
                eprintln!(
                    "rsvok: fatal: unable to check {d}/supervise: {}",
                    errstr(&e)
                );
            }
            EXIT_SYS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn field_prefixes() {
        assert_eq!(match_field("updown"), Some(9));
        assert_eq!(match_field("p"), Some(4));
        assert_eq!(match_field("u"), Some(0));
        assert_eq!(match_field("x"), None);
    }

    #[test]
    fn options() {
        let a = parse_args(&v(&["-upe", "sd"]), false).unwrap();
        assert_eq!(a.fields, vec![0, 5, 6]);
        assert_eq!(parse_args(&v(&["-d", "sd"]), false), Err(ArgError::Usage));
        assert_eq!(
            parse_args(&v(&["-o", "up,pid,", "sd"]), false)
                .unwrap()
                .fields,
            vec![0, 5]
        );
        for bad in [",", "up,,", ",up", ",,"] {
            assert_eq!(
                parse_args(&v(&["-o", bad, "sd"]), false),
                Err(ArgError::Fatal("invalid null option field".into())),
                "{bad}"
            );
        }
        assert_eq!(
            parse_args(&v(&["-o", "up,,pid", "sd"]), false),
            Err(ArgError::Fatal("invalid null option field".into()))
        );
        assert!(
            parse_args(&v(&["-o", "", "sd"]), false)
                .unwrap()
                .fields
                .is_empty()
        );
        let a = parse_args(&v(&["--json", "a", "b"]), true).unwrap();
        assert!(a.json);
        assert_eq!(a.dirs, v(&["a", "b"]));
    }

    #[test]
    fn service_names() {
        assert_eq!(service_name(Path::new("/srv/web")), "web");
        assert_eq!(service_name(Path::new("/srv/web/")), "web");
        assert_eq!(service_name(Path::new("/srv/web/log")), "web/log");
        assert_eq!(service_name(Path::new("log")), "log");
        assert_eq!(service_name(Path::new("/")), "/");
    }

    fn view(up: bool, wantup: bool, wstat: u16) -> View {
        let stamp = Tai64N::from_unix(1_800_000_000, 0, Family::S6);
        View::from_status(crate::status::AnyStatus::S6(crate::status::S6Status {
            stamp,
            readystamp: stamp,
            pid: if up { 42 } else { 0 },
            wstat,
            paused: false,
            finishing: false,
            wantup,
            ready: false,
        }))
    }

    #[test]
    fn long_options() {
        let a = parse_args(&v(&["--prom", "a"]), true).unwrap();
        assert!(a.prom && !a.json && !a.ready);
        let a = parse_args(&v(&["a", "--ready"]), true).unwrap();
        assert!(a.ready && a.dirs == v(&["a"]));
        // s6-svstat knows none of them.
        assert_eq!(
            parse_args(&v(&["--prom", "a"]), false),
            Err(ArgError::Usage)
        );
    }

    #[test]
    fn rsv_state_items() {
        let now_ms = 1_800_000_000_000;
        let mut e = ExtState {
            restarts: 3,
            exits: vec![Ended::Exited(1), Ended::Signaled(9)],
            backoff_ms: 4000,
            next_try_ms: now_ms + 3001,
            ..Default::default()
        };
        let down = view(false, true, 0x100);
        assert_eq!(
            ext_items(&down, &e, None, true, now_ms, false),
            [
                "throttled, next try in 4s",
                "3 restarts",
                "last exits: 1 SIGKILL"
            ]
        );
        // No live supervisor, or the time has passed: not throttled.
        assert_eq!(
            ext_items(&down, &e, None, false, now_ms, true),
            Vec::<String>::new()
        );
        assert!(throttle_left(&down, &e, true, now_ms + 3001).is_none());
        e.gave_up = true;
        e.restarts = 1;
        let given_up = view(false, false, 0x100);
        assert_eq!(
            ext_items(&given_up, &e, Some((1, 1)), true, now_ms, false),
            [
                "gave up after 1 death in 1 second",
                "1 restart",
                "last exits: 1 SIGKILL"
            ]
        );
        assert_eq!(
            ext_items(&given_up, &e, None, true, now_ms, true),
            ["gave up"]
        );
        let e = ExtState {
            health: Health::Unhealthy,
            health_failures: 1,
            health_output: "bad\tthing".into(),
            ..Default::default()
        };
        let up = view(true, true, 0);
        assert_eq!(
            ext_items(&up, &e, None, true, now_ms, false),
            ["unhealthy (1 failure): bad thing"]
        );
        let e = ExtState {
            health: Health::Starting,
            ..Default::default()
        };
        assert_eq!(
            ext_items(&up, &e, None, true, now_ms, false),
            ["health starting"]
        );
        assert!(ext_items(&down, &e, None, true, now_ms, false).is_empty());
    }

    #[test]
    fn give_up_files() {
        let d = std::env::temp_dir().join(format!("rsv-unit-giveup-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        for (text, want) in [
            ("5 60\n", Some((5, 60))),
            ("5\n", None),
            ("5 60 7\n", None),
            ("x 60\n", None),
        ] {
            fs::write(d.join("give-up"), text).unwrap();
            assert_eq!(give_up_rule(&d), want, "{text:?}");
        }
        fs::remove_dir_all(&d).unwrap();
        assert_eq!(give_up_rule(&d), None);
    }

    #[test]
    fn json_escapes() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\nd\u{1}");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
