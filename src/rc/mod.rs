//! `s6-rc`: s6-rc's client, for the scripts of s6-overlay images, talking to a running rsvscan.
//!
//! rsvscan plays the part of s6-rc's engine and live directory: it reads the dependency graph
//! straight from its scan directory, publishes it in `rsv-graph`, and performs requests
//! written to its control FIFO. This client only resolves names, sends requests, waits for
//! their outcome and prints s6-rc's messages with s6-rc's exit codes (0 done, 1 some
//! transition failed, 2 timed out, 3 unknown name, 100 usage, 111 system). `-l DIR` names the
//! scan directory; without it `$RSV_SCANDIR`, then `/run/service`.
//!
//! Also used by `rsvc -d` (module [`down`]) to take a service down with its dependents.

pub mod args;
pub mod down;
pub mod live;
pub mod select;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::deps::graph::Kind;
use crate::deps::plan::St;
use crate::deps::state::{GraphState, Last, SvcRec};
use crate::diag::{EXIT_SYS, EXIT_USAGE};
use args::{Args, Usage, What};
use live::{Live, WaitError};

const PROG: &str = "s6-rc";

/// s6-rc's code for "timed out".
pub const EXIT_TIMEOUT: i32 = 2;
/// s6-rc's code for an unknown service name.
pub const EXIT_UNKNOWN: i32 = 3;

fn fatal(code: i32, msg: &str) -> i32 {
    let _ = writeln!(std::io::stderr(), "{PROG}: fatal: {msg}");
    code
}

fn info(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{PROG}: info: {msg}");
}

/// The end of s6-rc's failure message for an atom's last result.
pub fn failure_text(last: Last) -> String {
    match last {
        Last::Exit(n) => format!(": command exited {n}"),
        Last::Signal(n) => format!(": command crashed with signal {n}"),
        // s6-rc's oneshot runner reports a timeout as exit 111.
        Last::Timeout => ": command exited 111".into(),
        Last::None => String::new(),
    }
}

/// Entry point (arguments without argv[0]); returns the exit code.
pub fn main(argv: &[String]) -> i32 {
    let a = match args::parse(argv) {
        Ok(a) => a,
        Err(Usage(None)) => {
            let _ = writeln!(std::io::stderr(), "{PROG}: usage: {}", args::USAGE);
            return EXIT_USAGE;
        }
        Err(Usage(Some(m))) => return fatal(EXIT_USAGE, &m),
    };
    if a.what == What::Help {
        let mut so = std::io::stdout().lock();
        return if so.write_all(args::HELP.as_bytes()).is_ok() {
            0
        } else {
            EXIT_SYS
        };
    }
    let scandir = a
        .live
        .clone()
        .map(PathBuf::from)
        .unwrap_or_else(live::default_scandir);
    let live = Live::at(&scandir);
    let g = match live.read() {
        Ok(Some(g)) => g,
        Ok(None) => {
            if !live.listening() {
                return fatal(
                    EXIT_SYS,
                    &format!(
                        "unable to reach rsvscan on {}: nothing reads {}",
                        scandir.display(),
                        live.ctl.join("control").display()
                    ),
                );
            }
            // A scan directory without dependency graph: no s6-rc service at all.
            GraphState::default()
        }
        Err(e) => {
            return fatal(
                EXIT_SYS,
                &format!(
                    "unable to read {}: {}",
                    live.graph_path().display(),
                    crate::control::errstr(&e)
                ),
            );
        }
    };
    let mut sel = match select::resolve(&g, &a.names) {
        Ok(s) => s,
        Err(select::Unknown(n)) => {
            return fatal(
                EXIT_UNKNOWN,
                &format!(
                    "{n} is not a recognized identifier in {}",
                    live.graph_path().display()
                ),
            );
        }
    };
    match a.what {
        What::List => print_lines(&select::list(&g, &sel, a.add_active, a.down)),
        What::ListAll => {
            if a.add_active {
                sel.extend(select::active(&g));
            }
            let closed = if a.down {
                select::closure_down(&g, &sel)
            } else {
                select::closure_up(&g, &sel)
            };
            print_lines(&select::ordered(&g, &closed))
        }
        What::Diff => diff(&live, &g),
        What::Change => change(&a, &live, &g, sel),
        What::Help => 0,
    }
}

fn print_lines(v: &[String]) -> i32 {
    let mut out = String::new();
    for n in v {
        out.push_str(n);
        out.push('\n');
    }
    let mut so = std::io::stdout().lock();
    if so
        .write_all(out.as_bytes())
        .and_then(|_| so.flush())
        .is_ok()
    {
        0
    } else {
        fatal(EXIT_SYS, "unable to write to stdout")
    }
}

/// `s6-rc diff`: a longrun the graph says is up whose supervisor keeps it down (`-NAME`), or
/// the reverse (`+NAME`).
fn diff(live: &Live, g: &GraphState) -> i32 {
    let mut lines = Vec::new();
    for s in g.svcs.iter().filter(|s| s.kind == Kind::Longrun) {
        let Ok(v) = crate::svview::View::read(&live.scandir.join(&s.name)) else {
            continue;
        };
        let sup_up = v.up || v.wantup;
        if s.st == St::Up && !sup_up {
            lines.push(format!("-{}", s.name));
        } else if select::is_down(s) && v.up {
            lines.push(format!("+{}", s.name));
        }
    }
    match print_lines(&lines) {
        0 if lines.is_empty() => 0,
        0 => 1,
        c => c,
    }
}

/// The steps of a change: (up, selection), in order.
fn steps(a: &Args, g: &GraphState, sel: BTreeSet<String>) -> Vec<(bool, BTreeSet<String>)> {
    let all: BTreeSet<String> = select::all(g).into_iter().collect();
    if !a.prune {
        return vec![(!a.down, sel)];
    }
    if a.down {
        // -pd: down the selection and what needs it, everything else up.
        let drop = select::closure_down(g, &sel);
        vec![
            (false, sel),
            (true, all.difference(&drop).cloned().collect()),
        ]
    } else {
        // -pu: up the selection and what it needs, everything else down.
        let keep = select::closure_up(g, &sel);
        vec![
            (false, all.difference(&keep).cloned().collect()),
            (true, sel),
        ]
    }
}

fn change(a: &Args, live: &Live, g: &GraphState, mut sel: BTreeSet<String>) -> i32 {
    let everything_down = a.down && a.add_active && a.names.is_empty() && !a.prune;
    if a.add_active {
        sel.extend(select::active(g));
    }
    let deadline = (a.timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(a.timeout_ms));
    let mut rc = 0;
    for (up, sel) in steps(a, g, sel) {
        if sel.is_empty() && !everything_down {
            continue;
        }
        let closed = if up {
            select::closure_up(g, &sel)
        } else {
            select::closure_down(g, &sel)
        };
        if a.verbosity >= 3 {
            info(&format!(
                "bringing selected services {}",
                if up { "up" } else { "down" }
            ));
            for s in g.svcs.iter().filter(|s| closed.contains(&s.name)) {
                if (up && s.st == St::Up) || (!up && select::is_down(s)) {
                    info(&format!(
                        "service {}: already {}",
                        s.name,
                        if up { "up" } else { "down" }
                    ));
                }
            }
        }
        if a.dry_run.is_some() {
            let moving: BTreeSet<String> = select::to_move(g, &closed, up).into_iter().collect();
            let mut out = Vec::new();
            for n in select::order(g, &moving, up) {
                out.push(format!(
                    "dry run: {} {n}",
                    if up { "start" } else { "stop" }
                ));
            }
            let r = print_lines(&out);
            if r != 0 {
                return r;
            }
            continue;
        }
        let names: Vec<String> = if everything_down && !up {
            vec!["*".into()]
        } else {
            select::ordered(g, &sel)
        };
        let r = run_request(live, up, &names, &closed, a.verbosity, deadline);
        if r != 0 && r != 1 {
            return r;
        }
        rc = rc.max(r);
    }
    rc
}

/// Sends one request and waits for its outcome; prints progress (verbosity 2) and failures
/// (verbosity 1). Returns the exit code.
pub fn run_request(
    live: &Live,
    up: bool,
    names: &[String],
    closed: &BTreeSet<String>,
    verbosity: u32,
    deadline: Option<Instant>,
) -> i32 {
    let nonce = match live.send(up, names) {
        Ok(n) => n,
        Err(e) => {
            let why = if e.raw_os_error() == Some(libc::ENXIO) {
                "rsvscan is not running there".to_string()
            } else {
                crate::control::errstr(&e)
            };
            return fatal(
                EXIT_SYS,
                &format!(
                    "unable to send a request to {}: {why}",
                    live.ctl.join("control").display()
                ),
            );
        }
    };
    let mut prev: BTreeMap<String, St> = BTreeMap::new();
    let progress = |g: &GraphState, prev: &mut BTreeMap<String, St>| {
        for s in g.svcs.iter().filter(|s| closed.contains(&s.name)) {
            let before = prev.insert(s.name.clone(), s.st);
            if verbosity < 2 || before.is_none() || before == Some(s.st) {
                continue;
            }
            match s.st {
                St::Starting => info(&format!("service {}: starting", s.name)),
                St::Stopping => info(&format!("service {}: stopping", s.name)),
                St::Up => info(&format!("service {} successfully started", s.name)),
                St::Down => info(&format!("service {} successfully stopped", s.name)),
                St::Failed => {}
            }
        }
    };
    if let Ok(Some(g)) = live.read() {
        progress(&g, &mut prev);
    }
    let (g, req) = match live.wait(nonce, deadline, |g| progress(g, &mut prev)) {
        Ok(x) => x,
        Err(WaitError::Timeout) => return fatal(EXIT_TIMEOUT, "timed out"),
        Err(WaitError::Gone) => {
            return fatal(
                EXIT_SYS,
                &format!(
                    "rsvscan on {} stopped before the change ended",
                    live.scandir.display()
                ),
            );
        }
        Err(WaitError::Io(e)) => {
            return fatal(
                EXIT_SYS,
                &format!(
                    "unable to read {}: {}",
                    live.graph_path().display(),
                    crate::control::errstr(&e)
                ),
            );
        }
    };
    if verbosity >= 1 {
        for n in &req.failed {
            let last = g.svc(n).map(|s: &SvcRec| s.last).unwrap_or_default();
            let _ = writeln!(
                std::io::stderr(),
                "{PROG}: warning: unable to {} service {n}{}",
                if up { "start" } else { "stop" },
                failure_text(last)
            );
        }
    }
    match req.code {
        0 => 0,
        EXIT_UNKNOWN => fatal(
            EXIT_UNKNOWN,
            &format!(
                "rsvscan on {} does not know some of: {}",
                live.scandir.display(),
                names.join(" ")
            ),
        ),
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_texts() {
        assert_eq!(failure_text(Last::Exit(1)), ": command exited 1");
        assert_eq!(failure_text(Last::Timeout), ": command exited 111");
        assert_eq!(
            failure_text(Last::Signal(9)),
            ": command crashed with signal 9"
        );
        assert_eq!(failure_text(Last::None), "");
    }

    #[test]
    fn prune_steps() {
        use crate::deps::state::SvcRec;
        let rec = |n: &str, deps: &[&str]| SvcRec {
            name: n.into(),
            kind: Kind::Longrun,
            st: St::Up,
            want_up: true,
            since_ms: 0,
            last: Last::None,
            deps: deps.iter().map(|s| s.to_string()).collect(),
            waiting: vec![],
        };
        let g = GraphState {
            svcs: vec![rec("a", &[]), rec("b", &["a"]), rec("c", &[])],
            ..GraphState::default()
        };
        let mut a = args::parse(&["-pu".into(), "change".into(), "b".into()]).unwrap();
        let sel: BTreeSet<String> = ["b".to_string()].into();
        let s = steps(&a, &g, sel.clone());
        assert_eq!(s[0], (false, ["c".to_string()].into()));
        assert_eq!(s[1], (true, sel.clone()));
        a.down = true;
        let sel: BTreeSet<String> = ["a".to_string()].into();
        let s = steps(&a, &g, sel);
        assert_eq!(s[1], (true, ["c".to_string()].into()));
    }
}
