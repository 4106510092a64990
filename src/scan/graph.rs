//! The dependency engine at run time: the scanner performs what [`crate::deps::plan`] decides.
//!
//! - A longrun of the graph has its supervisor like any service, started *held* (down, as if
//!   it had a `down` file) until its dependencies are up; then it gets `u` on its control FIFO.
//!   It counts as up once it is up and ready (`supervise/rsv-state`); its supervisor reports
//!   every change on a pipe the scanner polls (`RSV_REPORT_FD`), so no time is lost polling.
//! - A oneshot has no supervisor: the scanner runs its `up` and `down` ([`super::oneshot`]).
//! - The state is published in `rsv-graph` ([`crate::deps::state`]) for the clients, which
//!   send requests (`+NONCE NAMES`, `-NONCE NAMES`) on the scanner's control FIFO.
//!
//! A scan directory without any graph file has no engine: everything behaves as before.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::SystemTime;

use super::source::Source;
use super::*;
use crate::deps::graph::{Def, Graph, GraphError, Kind};
use crate::deps::plan::{self, Node, Request, St, Step};
use crate::deps::state::{self, GraphState, Last, ReqRec, SvcRec};

/// How long a control letter for a supervisor that is not listening yet waits before the
/// next try (a supervisor opens its control FIFO within a few ms of its start).
const CTL_RETRY_MS: u64 = 5;

/// Nonce of the start set (requests from clients use their own).
const START_NONCE: u64 = 0;

/// Run-time state of one atom beside its plan state.
#[derive(Clone, Debug)]
pub(super) struct Rt {
    since: SystemTime,
    last: Last,
    /// The running `up` / `down` script of a oneshot.
    script: Option<i32>,
    /// When the current transition times out.
    deadline: Option<Instant>,
    /// A control letter still to be sent to the longrun's supervisor, and when to try again.
    ctl: Option<(u8, Instant)>,
    /// The running script was killed for running out of time.
    timed_out: bool,
}

impl Rt {
    fn new() -> Rt {
        Rt {
            since: SystemTime::now(),
            last: Last::None,
            script: None,
            deadline: None,
            ctl: None,
            timed_out: false,
        }
    }
}

/// The engine of a scan directory that has a graph.
pub(super) struct Engine {
    pub(super) g: Graph,
    pub(super) nodes: Vec<Node>,
    rt: Vec<Rt>,
    srcs: BTreeMap<String, Source>,
    defs: Vec<Def>,
    reqs: Vec<Request>,
    done: VecDeque<ReqRec>,
    /// The start set, tracked until it has settled (the main command waits for it).
    pub(super) start: Option<Request>,
    pub(super) start_failed: Option<Vec<String>>,
    execline: bool,
    dirty: bool,
    /// An essential oneshot failed: (name, code).
    pub(super) essential_failed: Option<(String, i32)>,
}

impl Engine {
    fn new(g: Graph, defs: Vec<Def>, srcs: BTreeMap<String, Source>) -> Engine {
        let n = g.atoms.len();
        Engine {
            g,
            nodes: vec![Node::default(); n],
            rt: vec![Rt::new(); n],
            srcs,
            defs,
            reqs: Vec::new(),
            done: VecDeque::new(),
            start: None,
            start_failed: None,
            execline: super::oneshot::have_execline(),
            dirty: true,
            essential_failed: None,
        }
    }

    fn atom(&self, name: &str) -> Option<usize> {
        self.g.atom(name)
    }

    fn name(&self, i: usize) -> &str {
        &self.g.atoms[i].name
    }

    fn set(&mut self, i: usize, st: St) {
        if self.nodes[i].st != st {
            self.nodes[i].st = st;
            self.rt[i].since = SystemTime::now();
            self.dirty = true;
        }
    }

    /// Is `name` a longrun of the graph (its supervisor is started held and reports to us)?
    pub(super) fn longrun(&self, name: &str) -> bool {
        self.atom(name)
            .is_some_and(|i| self.g.atoms[i].kind == Kind::Longrun)
    }

    /// Should the supervisor of longrun `name`, started now, start it at once?
    pub(super) fn free_start(&self, name: &str) -> bool {
        self.atom(name).is_some_and(|i| {
            matches!(self.nodes[i].st, St::Starting | St::Up)
                && !self.srcs.get(name).is_some_and(|s| s.down)
        })
    }

    /// Nothing runs for the graph any more (used at the end of a stop).
    pub(super) fn idle(&self) -> bool {
        self.rt.iter().all(|r| r.script.is_none())
            && self
                .nodes
                .iter()
                .all(|n| !matches!(n.st, St::Starting | St::Stopping | St::Up))
    }

    fn publish(&self) -> GraphState {
        let svcs = (0..self.g.atoms.len())
            .map(|i| {
                let a = &self.g.atoms[i];
                let n = self.nodes[i];
                let waiting = if n.want_up && n.st == St::Down {
                    plan::waiting_for(&self.g, &self.nodes, i)
                        .into_iter()
                        .map(|(d, f)| (self.name(d).to_string(), f))
                        .collect()
                } else {
                    Vec::new()
                };
                SvcRec {
                    name: a.name.clone(),
                    kind: a.kind,
                    st: n.st,
                    want_up: n.want_up,
                    since_ms: crate::extstate::unix_ms(self.rt[i].since),
                    last: self.rt[i].last,
                    deps: a.deps.iter().map(|d| self.name(*d).to_string()).collect(),
                    waiting,
                }
            })
            .collect();
        let bundles = self
            .g
            .bundles
            .iter()
            .map(|(b, set)| {
                (
                    b.clone(),
                    set.iter().map(|i| self.name(*i).to_string()).collect(),
                )
            })
            .collect();
        GraphState {
            svcs,
            bundles,
            reqs: self.done.iter().cloned().collect(),
        }
    }
}

/// Which directories are atoms of the graph: every one with graph files of its own and every
/// one they name (transitively); with a start set (`--up`), every directory.
fn members(entries: &[(String, Source)], all: bool) -> BTreeSet<String> {
    let by_name: BTreeMap<&str, &Source> = entries.iter().map(|(n, s)| (n.as_str(), s)).collect();
    let mut out = BTreeSet::new();
    let mut todo: Vec<&str> = entries
        .iter()
        .filter(|(_, s)| all || s.member || s.kind != Kind::Longrun)
        .map(|(n, _)| n.as_str())
        .collect();
    while let Some(n) = todo.pop() {
        if !out.insert(n.to_string()) {
            continue;
        }
        if let Some(s) = by_name.get(n) {
            todo.extend(s.deps.iter().chain(&s.contents).map(String::as_str));
        }
    }
    out
}

impl Scanner {
    fn engine_mut(&mut self) -> Option<&mut Engine> {
        self.graph.as_mut()
    }

    /// Builds or updates the graph from the scan directory's entries (name, graph files).
    /// At the first scan a bad graph ends rsvscan (exit 100, one line per problem); later, the
    /// problems are reported once and the graph in force stays.
    pub(super) fn graph_update(
        &mut self,
        entries: &[(String, Source)],
        fresh: &mut HashMap<String, String>,
    ) {
        let names = members(entries, !self.opts.up.is_empty());
        if names.is_empty() {
            if self.graph.take().is_some() {
                let _ = fs::remove_file(self.ctl_dir.join(state::FILE));
            }
            return;
        }
        let by_name: BTreeMap<&str, &Source> =
            entries.iter().map(|(n, s)| (n.as_str(), s)).collect();
        let defs: Vec<Def> = names
            .iter()
            .filter_map(|n| by_name.get(n.as_str()).map(|s| s.def(n)))
            .collect();
        if self.graph.as_ref().is_some_and(|e| e.defs == defs) {
            return;
        }
        // Names that are named but do not exist become "unknown" errors in the build.
        let g = match Graph::build(&defs) {
            Ok(g) => g,
            Err(errs) => {
                let old = self.graph.as_ref();
                let msgs: Vec<String> = errs
                    .iter()
                    .map(|e| match e {
                        GraphError::UnknownDep { from, name }
                            if old.is_some_and(|o| o.g.knows(name)) =>
                        {
                            format!(
                                "{}/{name} was removed, but {}/{from} depends on it",
                                self.opts.dir, self.opts.dir
                            )
                        }
                        e => format!("{}: {e}", self.opts.dir),
                    })
                    .collect();
                if self.graph.is_none() {
                    for m in &msgs {
                        eprintln!("{}: fatal: {m}", self.opts.prog);
                    }
                    std::process::exit(crate::diag::EXIT_USAGE);
                }
                for m in msgs {
                    self.report(fresh, &format!("graph:{m}"), m.clone(), &m);
                }
                return;
            }
        };
        let srcs: BTreeMap<String, Source> = names
            .iter()
            .filter_map(|n| by_name.get(n.as_str()).map(|s| (n.clone(), (*s).clone())))
            .collect();
        let mut e = Engine::new(g, defs, srcs);
        match self.graph.take() {
            Some(old) => {
                // Carry states over by name; a new atom is wanted as at start-up.
                let mut fresh_atoms = BTreeSet::new();
                for i in 0..e.g.atoms.len() {
                    match old.atom(e.name(i)) {
                        Some(j) => {
                            e.nodes[i] = old.nodes[j];
                            e.rt[i] = old.rt[j].clone();
                        }
                        None => {
                            fresh_atoms.insert(i);
                        }
                    }
                }
                e.reqs = old.reqs;
                e.done = old.done;
                e.start = None;
                e.start_failed = old.start_failed;
                e.essential_failed = old.essential_failed;
                let wanted = self.default_wanted(&e, &fresh_atoms);
                plan::want_up(&e.g, &mut e.nodes, &wanted);
            }
            None => {
                let all: BTreeSet<usize> = (0..e.g.atoms.len()).collect();
                let wanted = if self.opts.up.is_empty() {
                    self.default_wanted(&e, &all)
                } else {
                    match e.g.resolve(&self.opts.up) {
                        Ok(s) => s,
                        Err(n) => crate::diag::fatal(
                            &self.opts.prog,
                            crate::diag::EXIT_USAGE,
                            &format!("--up {n}: no such service in {}", self.opts.dir),
                        ),
                    }
                };
                plan::want_up(&e.g, &mut e.nodes, &wanted);
                e.start = Some(Request {
                    nonce: START_NONCE,
                    atoms: e.g.closure_up(&wanted),
                    up: true,
                });
            }
        }
        self.graph = Some(e);
    }

    /// Of `among`, the atoms wanted up by default: those without a `down` file (outside a
    /// `--up` start set, which takes nothing new).
    fn default_wanted(&self, e: &Engine, among: &BTreeSet<usize>) -> BTreeSet<usize> {
        if !self.opts.up.is_empty() {
            return BTreeSet::new();
        }
        among
            .iter()
            .copied()
            .filter(|&i| !e.srcs.get(e.name(i)).is_some_and(|s| s.down))
            .collect()
    }

    /// A request line from the control FIFO (`+NONCE NAMES` / `-NONCE NAMES`).
    pub(super) fn graph_request(&mut self, line: &str) {
        let Some((up, nonce, names)) = state::parse_request(line) else {
            self.warn(&format!("received a malformed request: {line}"));
            return;
        };
        let stopping = self.stop.is_some();
        let Some(e) = self.engine_mut() else {
            self.warn(&format!(
                "received a request but {} has no dependency graph",
                self.opts.dir
            ));
            return;
        };
        let set = if names.iter().any(|n| n == "*") {
            (0..e.g.atoms.len())
                .filter(|&i| !up || !e.srcs.get(e.name(i)).is_some_and(|s| s.down))
                .collect()
        } else {
            match e.g.resolve(&names) {
                Ok(s) => s,
                Err(n) => {
                    e.finish_req(ReqRec {
                        nonce,
                        code: 3,
                        failed: vec![n],
                    });
                    return;
                }
            }
        };
        if up && stopping {
            // Nothing starts during a stop.
            e.finish_req(ReqRec {
                nonce,
                code: 1,
                failed: set.iter().map(|&i| e.name(i).to_string()).collect(),
            });
            return;
        }
        let atoms = if up {
            plan::want_up(&e.g, &mut e.nodes, &set);
            e.g.closure_up(&set)
        } else {
            plan::want_down(&e.g, &mut e.nodes, &set);
            e.g.closure_down(&set)
        };
        e.dirty = true;
        e.reqs.push(Request { nonce, atoms, up });
    }

    /// Everything down, in reverse order (the stop of the scanner). A oneshot whose `up` is
    /// still running gets SIGTERM (its process group), as services do: the stop does not wait
    /// for it to finish first.
    pub(super) fn graph_stop_all(&mut self) {
        if let Some(e) = self.engine_mut() {
            let all: BTreeSet<usize> = (0..e.g.atoms.len()).collect();
            plan::want_down(&e.g, &mut e.nodes, &all);
            e.dirty = true;
            for i in 0..e.nodes.len() {
                if let (St::Starting, Some(pid)) = (e.nodes[i].st, e.rt[i].script) {
                    super::oneshot::signal(pid, libc::SIGTERM);
                }
            }
        }
    }

    /// The pids of the oneshot scripts running now.
    pub(super) fn graph_scripts(&self) -> Vec<i32> {
        self.graph
            .as_ref()
            .map(|e| e.rt.iter().filter_map(|r| r.script).collect())
            .unwrap_or_default()
    }

    /// Does the graph still need the supervisor of `name` running (the stop must wait)?
    pub(super) fn graph_holds(&self, name: &str) -> bool {
        self.graph.as_ref().is_some_and(|e| {
            e.atom(name)
                .is_some_and(|i| matches!(e.nodes[i].st, St::Up | St::Stopping))
        })
    }

    /// Is `name` wanted up (true for every service outside the graph)?
    pub(super) fn graph_wants(&self, name: &str) -> bool {
        self.graph
            .as_ref()
            .and_then(|e| e.atom(name).map(|i| e.nodes[i].want_up))
            .unwrap_or(true)
    }

    /// A child was reaped: if it was a oneshot's script, its transition ends.
    pub(super) fn graph_reaped(&mut self, pid: i32, st: &WaitStatus) -> bool {
        let stopping_all = self.stop.is_some();
        let Some(e) = self.engine_mut() else {
            return false;
        };
        let Some(i) = e.rt.iter().position(|r| r.script == Some(pid)) else {
            return false;
        };
        let timed_out = std::mem::take(&mut e.rt[i].timed_out);
        e.rt[i].script = None;
        e.rt[i].deadline = None;
        let last = if timed_out {
            Last::Timeout
        } else {
            match st {
                WaitStatus::Exited(_, c) => Last::Exit(*c),
                WaitStatus::Signaled(_, s, _) => Last::Signal(*s as i32),
                _ => Last::Exit(crate::diag::EXIT_SYS),
            }
        };
        e.rt[i].last = last;
        e.dirty = true;
        let ok = last == Last::Exit(0);
        let name = e.name(i).to_string();
        let starting = e.nodes[i].st == St::Starting;
        if starting {
            e.set(i, if ok { St::Up } else { St::Failed });
        } else {
            // A down script: the atom is down whatever it returned (reported if it failed).
            e.set(i, St::Down);
        }
        let ended_by_stop = starting && stopping_all;
        if !ok && !ended_by_stop {
            let what = if starting { "start" } else { "stop" };
            let how = match last {
                Last::Timeout => "timed out".to_string(),
                Last::Signal(s) => format!("killed by signal {s}"),
                l => format!("command exited {}", l.code()),
            };
            self.warn(&format!("unable to {what} service {name}: {how}"));
            let essential = self
                .graph
                .as_ref()
                .is_some_and(|e| e.srcs.get(&name).is_some_and(|s| s.essential));
            if starting && essential {
                if let Some(e) = self.engine_mut() {
                    e.essential_failed = Some((name, last.code()));
                }
            }
        }
        true
    }

    /// The supervisor of `name` has exited.
    pub(super) fn graph_supervisor_gone(&mut self, name: &str) {
        let stopping = self.stop.is_some();
        if let Some(e) = self.engine_mut() {
            if let Some(i) = e.atom(name) {
                if stopping || e.nodes[i].st == St::Stopping {
                    e.set(i, St::Down);
                }
            }
        }
    }

    /// A supervisor was started for `name`: a longrun that should be up but has a `down` file
    /// (which holds it) gets `u`.
    pub(super) fn graph_spawned(&mut self, name: &str) {
        let Some(e) = self.engine_mut() else { return };
        let Some(i) = e.atom(name) else { return };
        let down_file = e.srcs.get(name).is_some_and(|s| s.down);
        if down_file && matches!(e.nodes[i].st, St::Starting | St::Up) {
            e.rt[i].ctl = Some((b'u', Instant::now()));
        }
    }

    /// Reads what the supervisor of longrun `name` wrote since it was started: (up and
    /// ready, down and finished, gave up). Files from an earlier run say nothing.
    fn observe(&self, name: &str) -> (bool, bool, bool) {
        let Some(started) = self
            .svcs
            .values()
            .find(|s| s.name == name)
            .map(|s| s.started)
        else {
            return (false, true, false);
        };
        let since = SystemTime::now() - started.elapsed();
        let sup = crate::rundir::supervise_dir(Path::new(name));
        if !main_cmd::fresh(&sup.join(crate::extstate::FILE), since) {
            return (false, false, false);
        }
        let ext = crate::extstate::read(&sup).ok();
        let gave_up = ext.as_ref().is_some_and(|x| x.gave_up);
        let (up, down) = match status::read_status(&sup) {
            Ok(AnyStatus::S6(s)) => (s.is_up(), s.pid == 0),
            Ok(AnyStatus::Runit(r)) => (
                r.pid != 0 && r.state == status::RunitState::Run,
                r.pid == 0 && r.state == status::RunitState::Down,
            ),
            Err(_) => (false, false),
        };
        (up && ext.is_some_and(|x| x.ready), down, gave_up)
    }

    fn pid_of(&self, name: &str) -> Option<(Id, i32)> {
        self.svcs
            .iter()
            .find(|(_, s)| s.name == name)
            .and_then(|(id, s)| s.pid.map(|p| (*id, p)))
    }

    /// Sends pending control letters (a supervisor not listening yet is tried again soon).
    fn send_controls(&mut self, now: Instant) {
        let Some(e) = &self.graph else { return };
        let due: Vec<(usize, u8)> = (0..e.rt.len())
            .filter_map(|i| match e.rt[i].ctl {
                Some((c, at)) if at <= now => Some((i, c)),
                _ => None,
            })
            .collect();
        for (i, c) in due {
            let name = self.graph.as_ref().map(|e| e.name(i).to_string());
            let Some(name) = name else { return };
            // No supervisor: nothing to tell (one started later is told at its start).
            let alive = self.pid_of(&name).is_some();
            let sent = alive && send_letter(Path::new(&name), c);
            if let Some(e) = self.engine_mut() {
                e.rt[i].ctl = if sent || !alive {
                    None
                } else {
                    Some((c, now + Duration::from_millis(CTL_RETRY_MS)))
                };
            }
        }
    }

    /// One round of the engine: observe, time out, start and stop what may, publish.
    pub(super) fn graph_tick(&mut self) {
        if self.graph.is_none() {
            return;
        }
        let now = Instant::now();
        self.graph_observe(now);
        loop {
            let steps = match &self.graph {
                Some(e) => plan::next(&e.g, &e.nodes),
                None => return,
            };
            if steps.is_empty() {
                break;
            }
            for s in steps {
                match s {
                    Step::Start(i) => self.graph_start(i, now),
                    Step::Stop(i) => self.graph_stop(i, now),
                }
            }
        }
        self.send_controls(now);
        self.graph_settle();
        self.graph_publish();
    }

    /// Longruns under way: are they up (down) yet? Transitions past their deadline fail.
    fn graph_observe(&mut self, now: Instant) {
        let Some(e) = &self.graph else { return };
        let moving: Vec<(usize, St, String, Option<Instant>, Kind)> = (0..e.nodes.len())
            .filter(|&i| matches!(e.nodes[i].st, St::Starting | St::Stopping))
            .map(|i| {
                (
                    i,
                    e.nodes[i].st,
                    e.name(i).to_string(),
                    e.rt[i].deadline,
                    e.g.atoms[i].kind,
                )
            })
            .collect();
        let stopping = self.stop.is_some();
        for (i, st, name, deadline, kind) in moving {
            let late = deadline.is_some_and(|d| now >= d);
            if kind == Kind::Oneshot {
                if late {
                    if let Some(e) = self.engine_mut() {
                        if let Some(pid) = e.rt[i].script {
                            super::oneshot::kill(pid);
                            e.rt[i].timed_out = true;
                            e.rt[i].deadline = None;
                        }
                    }
                }
                continue;
            }
            let (ready, down, gave_up) = if self.pid_of(&name).is_some() {
                self.observe(&name)
            } else {
                (false, true, false)
            };
            let Some(e) = self.engine_mut() else { return };
            match st {
                St::Starting if ready => {
                    e.rt[i].deadline = None;
                    e.rt[i].last = Last::Exit(0);
                    e.set(i, St::Up);
                }
                St::Starting if late || gave_up => {
                    e.rt[i].deadline = None;
                    e.rt[i].last = if gave_up {
                        Last::Exit(1)
                    } else {
                        Last::Timeout
                    };
                    e.rt[i].ctl = Some((b'd', now));
                    e.set(i, St::Failed);
                    let how = if gave_up { "it gave up" } else { "timed out" };
                    self.warn(&format!("unable to start service {name}: {how}"));
                }
                // At a stop the supervisor's exit is what counts (graph_supervisor_gone).
                St::Stopping if down && !stopping => {
                    e.rt[i].deadline = None;
                    e.set(i, St::Down);
                }
                _ => {}
            }
        }
    }

    fn graph_start(&mut self, i: usize, now: Instant) {
        let Some(e) = self.engine_mut() else { return };
        let name = e.name(i).to_string();
        let src = e.srcs.get(&name).cloned();
        let timeout = src.as_ref().map_or(0, |s| s.timeout_up);
        e.rt[i].deadline = (timeout > 0).then(|| now + Duration::from_millis(timeout));
        e.set(i, St::Starting);
        if e.g.atoms[i].kind == Kind::Oneshot {
            self.run_script(i, &name, "up");
            return;
        }
        let spawned = self.pid_of(&name).is_some();
        let down_file = src.is_some_and(|s| s.down);
        if let Some(e) = self.engine_mut() {
            if spawned || down_file {
                e.rt[i].ctl = Some((b'u', now));
            }
        }
    }

    fn graph_stop(&mut self, i: usize, now: Instant) {
        let stopping = self.stop.is_some();
        let Some(e) = self.engine_mut() else { return };
        let name = e.name(i).to_string();
        let src = e.srcs.get(&name).cloned();
        e.set(i, St::Stopping);
        if e.g.atoms[i].kind == Kind::Oneshot {
            let timeout = src.as_ref().map_or(0, |s| s.timeout_down);
            e.rt[i].deadline = (timeout > 0).then(|| now + Duration::from_millis(timeout));
            if src.is_some_and(|s| s.has_down) {
                self.run_script(i, &name, "down");
            } else if let Some(e) = self.engine_mut() {
                e.set(i, St::Down);
            }
            return;
        }
        match self.pid_of(&name) {
            None => {
                if let Some(e) = self.engine_mut() {
                    e.set(i, St::Down);
                }
            }
            Some((id, _)) if stopping => self.term(id, libc::SIGTERM),
            Some(_) => {
                if let Some(e) = self.engine_mut() {
                    e.rt[i].ctl = Some((b'd', now));
                }
            }
        }
    }

    fn run_script(&mut self, i: usize, name: &str, file: &str) {
        let shown = format!("{}/{name}", self.opts.dir);
        let execline = self.graph.as_ref().is_some_and(|e| e.execline);
        let r = super::oneshot::spawn(Path::new(name), file, &shown, execline);
        let Some(e) = self.engine_mut() else { return };
        e.rt[i].timed_out = false;
        match r {
            Ok(Some(pid)) => e.rt[i].script = Some(pid),
            Ok(None) => {
                e.rt[i].last = Last::Exit(0);
                e.rt[i].deadline = None;
                let starting = e.nodes[i].st == St::Starting;
                e.set(i, if starting { St::Up } else { St::Down });
            }
            Err(msg) => {
                e.rt[i].last = Last::Exit(EXIT_SYS);
                e.rt[i].deadline = None;
                let starting = e.nodes[i].st == St::Starting;
                e.set(i, if starting { St::Failed } else { St::Down });
                self.warn(&msg);
            }
        }
    }

    /// Requests whose transitions all ended get their outcome published.
    fn graph_settle(&mut self) {
        let Some(e) = self.engine_mut() else { return };
        let mut k = 0;
        while k < e.reqs.len() {
            match e.reqs[k].outcome(&e.g, &e.nodes) {
                Some(failed) => {
                    let r = e.reqs.remove(k);
                    let rec = ReqRec {
                        nonce: r.nonce,
                        code: if failed.is_empty() { 0 } else { 1 },
                        failed: failed.iter().map(|&i| e.name(i).to_string()).collect(),
                    };
                    e.finish_req(rec);
                }
                None => k += 1,
            }
        }
        if let Some(r) = &e.start {
            if let Some(failed) = r.outcome(&e.g, &e.nodes) {
                e.start = None;
                e.start_failed = Some(failed.iter().map(|&i| e.name(i).to_string()).collect());
            }
        }
    }

    fn graph_publish(&mut self) {
        let Some(e) = &self.graph else { return };
        if !e.dirty {
            return;
        }
        let text = e.publish().encode();
        if let Err(err) = status::write_atomic(&self.ctl_dir, state::FILE, text.as_bytes(), 0o644) {
            self.warn(&format!(
                "unable to write {}/{}: {}",
                self.ctl_dir.display(),
                state::FILE,
                errtext(&err)
            ));
        }
        if let Some(e) = self.engine_mut() {
            e.dirty = false;
        }
    }

    /// An essential oneshot failed: everything stops, with its code.
    pub(super) fn graph_essential(&mut self) {
        let Some((name, code)) = self.engine_mut().and_then(|e| e.essential_failed.take()) else {
            return;
        };
        self.warn(&format!(
            "essential service {}/{name} failed (exit code {code}): stopping everything",
            self.opts.dir
        ));
        self.decide(code);
        self.begin_stop(code, false);
    }

    /// The nearest deadline of the engine (script timeouts, control retries).
    pub(super) fn graph_deadline(&self) -> Option<Instant> {
        let e = self.graph.as_ref()?;
        e.rt.iter()
            .flat_map(|r| [r.deadline, r.ctl.map(|(_, at)| at)])
            .flatten()
            .min()
    }
}

impl Engine {
    fn finish_req(&mut self, rec: ReqRec) {
        self.done.push_back(rec);
        while self.done.len() > state::MAX_REQS {
            self.done.pop_front();
        }
        self.dirty = true;
    }
}

/// Writes one control letter to the supervisor of `sd`, without ever blocking; false when no
/// supervisor listens yet.
fn send_letter(sd: &Path, c: u8) -> bool {
    let path = crate::rundir::supervise_dir(sd).join("control");
    match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(mut f) => matches!(f.write(&[c]), Ok(1)),
        Err(_) => false,
    }
}
