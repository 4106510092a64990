//! What rsvstat adds for scan directories with a dependency graph (the `rsv-graph` file the
//! scanner publishes): oneshots as rows of their own (`done`, `failed`, `timed out`), longruns
//! that wait for their dependencies (`waiting for: db`), and the JSON fields `type`,
//! `dependencies`, `waiting_for`, `graph_state`, `timed_out`. Bundles are names for sets of
//! services, not services: they get no row. A scan directory without a graph shows exactly
//! what it always did.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Info, json_str};
use crate::deps::graph::Kind;
use crate::deps::plan::St;
use crate::deps::state::{GraphState, Last, SvcRec};
use crate::rc::live::Live;
use crate::status::Ended;

/// The graphs published for the scan directories the operands name (an operand that is a
/// scan directory, or the scan directory a service directory operand is in).
#[derive(Default)]
pub struct Graphs(Vec<(PathBuf, GraphState)>);

impl Graphs {
    pub fn load(dirs: &[String]) -> Graphs {
        let mut v: Vec<(PathBuf, GraphState)> = Vec::new();
        for d in dirs {
            let p = PathBuf::from(d);
            let parent = p.parent().map(|q| {
                if q.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    q.to_path_buf()
                }
            });
            // A service dir's graph is its scan dir's; a scan dir's is its own.
            let service = ["run", "up", "type"].iter().any(|f| p.join(f).exists());
            let Some(cand) = (if service { parent } else { Some(p.clone()) }) else {
                continue;
            };
            if v.iter().any(|(s, _)| *s == cand) || !cand.is_dir() {
                continue;
            }
            if let Ok(Some(g)) = Live::at(&cand).read() {
                v.push((cand, g));
            }
        }
        Graphs(v)
    }

    /// Whether any operand's scan directory has a graph.
    pub fn any(&self) -> bool {
        !self.0.is_empty()
    }

    fn graph_of(&self, scandir: &Path) -> Option<&GraphState> {
        self.0.iter().find(|(s, _)| s == scandir).map(|(_, g)| g)
    }

    /// The graph's record for the service directory `path`, when it is an atom.
    pub fn member(&self, path: &Path) -> Option<&SvcRec> {
        let name = path.file_name()?.to_str()?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        self.graph_of(parent)?.svc(name)
    }

    /// Whether `dir` is a scan directory with a graph (possibly holding no longrun at all).
    pub fn is_scan_dir(&self, dir: &Path) -> bool {
        self.graph_of(dir).is_some()
    }
}

/// rsvstat's list of services: `super::expand`, plus, in each scan directory with a graph,
/// the oneshots without a `run` (which `expand` does not see), in name order; bundles are
/// left out.
pub fn expand(graphs: &Graphs, dirs: &[String]) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for d in dirs {
        let p = PathBuf::from(d);
        let mut list = super::expand(std::slice::from_ref(d));
        if let Some(g) = graphs.graph_of(&p) {
            list.retain(|(n, _)| !g.bundles.iter().any(|(b, _)| b == n));
            for s in g.svcs.iter().filter(|s| s.kind == Kind::Oneshot) {
                if !list.iter().any(|(n, _)| *n == s.name) {
                    list.push((s.name.clone(), p.join(&s.name)));
                }
            }
            // Service name order, each logger right after its service.
            list.sort_by(|(a, _), (b, _)| {
                let key = |n: &str| {
                    let base = n.strip_suffix("/log").unwrap_or(n).to_string();
                    (base, n.ends_with("/log"))
                };
                key(a).cmp(&key(b))
            });
        }
        out.extend(list);
    }
    out
}

/// The engine's word for an atom's state, as the table and the line show it.
pub fn state_word(s: &SvcRec) -> &'static str {
    match (s.kind, s.st) {
        (Kind::Oneshot, St::Up) => "done",
        (_, St::Failed) if s.last == Last::Timeout => "timed out",
        (_, St::Failed) => "failed",
        (_, st) => st.as_str(),
    }
}

fn last_words(l: Last) -> Option<String> {
    match l {
        Last::Exit(n) => Some(format!("exit {n}")),
        Last::Signal(n) => Some(format!("signal {}", crate::sig::long_name(n))),
        Last::Timeout | Last::None => None,
    }
}

/// `waiting for: db, mig (failed)`, or None when nothing is waited for.
pub fn waiting_words(s: &SvcRec) -> Option<String> {
    if s.waiting.is_empty() {
        return None;
    }
    let names: Vec<String> = s
        .waiting
        .iter()
        .map(|(n, failed)| {
            if *failed {
                format!("{n} (failed)")
            } else {
                n.clone()
            }
        })
        .collect();
    Some(format!("waiting for: {}", names.join(", ")))
}

fn secs_since(s: &SvcRec, now_ms: u64) -> u64 {
    now_ms.saturating_sub(s.since_ms) / 1000
}

/// The human line of an atom without a supervisor (a oneshot, or a longrun whose supervisor
/// has not been started): `done, exit 0, 2 s ago`, `failed, exit 1, 5 s ago`, `timed out,
/// 3 s ago`, `down, waiting for: db`.
pub fn line(s: &SvcRec, now_ms: u64) -> String {
    let mut items = vec![state_word(s).to_string()];
    if s.kind == Kind::Oneshot || s.st == St::Failed {
        items.extend(last_words(s.last));
    }
    if s.since_ms != 0 {
        items.push(format!("{} s ago", secs_since(s, now_ms)));
    }
    items.extend(waiting_words(s));
    items.join(", ")
}

/// What a longrun's human line gains: `, waiting for: db` (and a failed start).
pub fn longrun_suffix(s: &SvcRec) -> String {
    let mut out = String::new();
    if s.st == St::Failed {
        let _ = write!(out, ", start {}", state_word(s));
    }
    if let Some(w) = waiting_words(s) {
        let _ = write!(out, ", {w}");
    }
    out
}

fn last_exit_column(l: Last, fallback: Option<Ended>) -> String {
    match l {
        Last::Exit(n) => format!("exitcode {n}"),
        Last::Signal(n) => format!("signal {}", crate::sig::long_name(n)),
        Last::Timeout => "timeout".into(),
        Last::None => match fallback {
            Some(Ended::Exited(c)) => format!("exitcode {c}"),
            Some(Ended::Signaled(n)) => format!("signal {}", crate::sig::long_name(n)),
            None => "-".into(),
        },
    }
}

/// One table row (wide layout: graphs always show the NOTES column).
pub fn table_row(info: &Info, s: &SvcRec, now: crate::tai::Tai64N, now_ms: u64) -> String {
    let supervised = info.supervised && info.view.is_ok();
    if s.kind == Kind::Longrun && supervised {
        // The supervisor's row, with what the graph adds in NOTES.
        let mut row = info.table_row(now, now_ms, true);
        let extra = longrun_suffix(s);
        if let Some(extra) = extra.strip_prefix(", ") {
            if row.ends_with(" -") {
                row.pop();
                row.push_str(extra);
            } else {
                row.push_str(", ");
                row.push_str(extra);
            }
        }
        return row;
    }
    let last = if s.kind == Kind::Oneshot {
        last_exit_column(s.last, None)
    } else {
        last_exit_column(Last::None, info.last_exit)
    };
    let mut row = format!(
        "{:<24} {:<12} {:>8} {:>9} {:<5} {:<4} {}",
        info.name,
        state_word(s),
        "-",
        format!("{}s", secs_since(s, now_ms)),
        if s.st == St::Up { "yes" } else { "no" },
        if s.want_up { "up" } else { "down" },
        last
    );
    row.extend(std::iter::repeat_n(' ', 14usize.saturating_sub(last.len())));
    let mut notes = vec![s.kind.as_str().to_string()];
    notes.extend(waiting_words(s));
    let _ = write!(
        row,
        " {:>8} {:<12} {:>7} {:>6} {}",
        "-",
        "-",
        "-",
        "-",
        notes.join(", ")
    );
    row
}

fn list_json(out: &mut String, v: &[String]) {
    out.push('[');
    for (i, n) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, n);
    }
    out.push(']');
}

/// The fields every JSON object gains (before its closing brace).
pub fn json_fields(s: Option<&SvcRec>) -> String {
    let mut o = String::new();
    match s {
        None => o.push_str(
            ",\"type\":\"longrun\",\"dependencies\":[],\"waiting_for\":[],\"graph_state\":null,\"timed_out\":false",
        ),
        Some(s) => {
            let _ = write!(o, ",\"type\":\"{}\",\"dependencies\":", s.kind.as_str());
            list_json(&mut o, &s.deps);
            o.push_str(",\"waiting_for\":");
            let w: Vec<String> = s.waiting.iter().map(|(n, _)| n.clone()).collect();
            list_json(&mut o, &w);
            let _ = write!(
                o,
                ",\"graph_state\":\"{}\",\"timed_out\":{}",
                s.st.as_str(),
                s.st == St::Failed && s.last == Last::Timeout
            );
        }
    }
    o
}

/// The JSON object of a service: `base` (Info::json) with the graph's fields, or, for an
/// atom without a supervisor, an object made from the graph alone.
pub fn json(info: &Info, s: Option<&SvcRec>, base: String, now_ms: u64) -> String {
    let Some(s) = s.filter(|s| s.kind == Kind::Oneshot || !info.supervised) else {
        let mut o = base;
        o.pop();
        o.push_str(&json_fields(s));
        o.push('}');
        return o;
    };
    let mut o = String::from("{\"name\":");
    json_str(&mut o, &info.name);
    o.push_str(",\"path\":");
    json_str(&mut o, &info.path.to_string_lossy());
    let up = s.st == St::Up;
    let _ = write!(
        o,
        ",\"format\":null,\"supervised\":false,\"state\":\"{}\",\"pid\":null,\"since\":{},\"uptime\":{},\"ready\":{up},\"ready_since\":null,\"want\":\"{}\",\"paused\":false,\"normally_up\":{},\"last_exit\":",
        if up { "up" } else { "down" },
        s.since_ms / 1000,
        secs_since(s, now_ms),
        if s.want_up { "up" } else { "down" },
        info.normallyup
    );
    match s.last {
        Last::Exit(n) if s.kind == Kind::Oneshot => {
            let _ = write!(o, "{{\"code\":{n}}}");
        }
        Last::Signal(n) if s.kind == Kind::Oneshot => {
            let _ = write!(
                o,
                "{{\"signal\":\"{}\",\"signum\":{n}}}",
                crate::sig::long_name(n)
            );
        }
        _ => o.push_str("null"),
    }
    o.push_str(",\"logger\":false,\"rsv_state\":false,\"restarts\":null,\"exits\":null,\"throttling\":null,\"gave_up\":null,\"essential\":null,\"final_exit\":null,\"health\":null,\"sd_notify\":null");
    info.res.json(&mut o);
    let _ = write!(o, "{}}}", json_fields(Some(s)));
    o
}

/// `rsvstat --ready` for an atom without a supervisor: why it fails, None when it passes or
/// is not counted (wanted down).
pub fn probe_failure(s: &SvcRec, now_ms: u64) -> Option<String> {
    (s.want_up && s.st != St::Up).then(|| line(s, now_ms))
}

/// `rsvstat --ready` over a list with atoms: those without a supervisor are judged by the
/// graph, the others as always (`probe`). Exit codes as `probe::main`.
pub fn probe_main(
    graphs: &Graphs,
    infos: &[Info],
    now: crate::tai::Tai64N,
    now_ms: u64,
    missing: bool,
) -> i32 {
    let mut out = String::new();
    let mut failed = false;
    for info in infos {
        let why = match graphs.member(&info.path) {
            Some(s) if s.kind == Kind::Oneshot || !info.supervised => probe_failure(s, now_ms),
            Some(s) => super::probe::failure(info, now, now_ms)
                .or_else(|| waiting_words(s).filter(|_| s.want_up)),
            None => super::probe::failure(info, now, now_ms),
        };
        if let Some(why) = why {
            failed = true;
            let _ = writeln!(out, "{}: not ready: {why}", info.name);
        }
    }
    if super::write_stdout(&out).is_err() {
        return crate::diag::EXIT_SYS;
    }
    if missing {
        crate::diag::EXIT_SYS
    } else {
        i32::from(failed)
    }
}

/// `rsvstat --prom` families for a tree with a graph, after the usual ones: each with its
/// HELP and TYPE lines, one sample per graph member.
pub fn prom(out: &mut String, graphs: &Graphs, infos: &[Info]) {
    type Val = fn(&SvcRec) -> u64;
    let families: [(&str, &str, Val); 3] = [
        (
            "rsv_service_graph_up",
            "1 when the dependency engine counts the service as up (a oneshot: its up script exited 0).",
            |s| u64::from(s.st == St::Up),
        ),
        (
            "rsv_service_start_failed",
            "1 when the service's last start failed (up script failed or timed out, longrun died before ready).",
            |s| u64::from(s.st == St::Failed),
        ),
        (
            "rsv_service_waiting_dependencies",
            "Dependencies not up yet while the service waits to start.",
            |s| s.waiting.len() as u64,
        ),
    ];
    for (name, help, val) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for info in infos {
            if let Some(s) = graphs.member(&info.path) {
                let _ = writeln!(
                    out,
                    "{name}{{service=\"{}\",type=\"{}\"}} {}",
                    super::prom::label_value(&info.name),
                    s.kind.as_str(),
                    val(s)
                );
            }
        }
    }
}

/// `rsvstat DIR` of one service dir that is an atom without a supervisor: its line, or None
/// when DIR is not such an atom.
pub fn single(dir: &str, now_ms: u64) -> Option<String> {
    let graphs = Graphs::load(&[dir.to_string()]);
    let p = Path::new(dir);
    let s = graphs.member(p)?;
    let supervised = crate::lock::supervised(&crate::rundir::supervise_dir(p)).unwrap_or(false);
    (s.kind == Kind::Oneshot || !supervised).then(|| line(s, now_ms))
}

/// What `rsvstat DIR` appends to a supervised longrun's line.
pub fn single_suffix(dir: &str) -> String {
    let graphs = Graphs::load(&[dir.to_string()]);
    graphs
        .member(Path::new(dir))
        .map(longrun_suffix)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: Kind, st: St, last: Last, waiting: &[(&str, bool)]) -> SvcRec {
        SvcRec {
            name: "x".into(),
            kind,
            st,
            want_up: true,
            since_ms: 10_000,
            last,
            deps: vec!["db".into()],
            waiting: waiting.iter().map(|(n, f)| (n.to_string(), *f)).collect(),
        }
    }

    #[test]
    fn oneshot_lines() {
        let s = rec(Kind::Oneshot, St::Up, Last::Exit(0), &[]);
        assert_eq!(line(&s, 12_500), "done, exit 0, 2 s ago");
        let s = rec(Kind::Oneshot, St::Failed, Last::Exit(1), &[]);
        assert_eq!(line(&s, 15_000), "failed, exit 1, 5 s ago");
        let s = rec(Kind::Oneshot, St::Failed, Last::Timeout, &[]);
        assert_eq!(line(&s, 13_000), "timed out, 3 s ago");
        let s = rec(Kind::Oneshot, St::Down, Last::None, &[("db", false)]);
        assert_eq!(line(&s, 10_000), "down, 0 s ago, waiting for: db");
        let s = rec(Kind::Longrun, St::Down, Last::None, &[("mig", true)]);
        assert_eq!(longrun_suffix(&s), ", waiting for: mig (failed)");
        assert!(probe_failure(&s, 10_000).is_some());
    }

    #[test]
    fn json_fields_for_members_and_others() {
        assert_eq!(
            json_fields(None),
            ",\"type\":\"longrun\",\"dependencies\":[],\"waiting_for\":[],\"graph_state\":null,\"timed_out\":false"
        );
        let s = rec(Kind::Oneshot, St::Failed, Last::Timeout, &[("db", false)]);
        assert_eq!(
            json_fields(Some(&s)),
            ",\"type\":\"oneshot\",\"dependencies\":[\"db\"],\"waiting_for\":[\"db\"],\"graph_state\":\"failed\",\"timed_out\":true"
        );
    }
}
