//! What rsv watches beyond "is the process there" (Monit's row): resource guards, alerts,
//! and stopping a service's whole process tree. This is the supervisor's runtime side; the
//! decisions live in [`guard`] and [`alert`], /proc and cgroup access in
//! [`crate::proctree`] and [`crate::cgroup`].
//!
//! Files of the service directory, read before each start of `run` (a service dir without
//! any of them costs one pointer per service and a few failed `stat`s per start):
//!
//! - `limit-memory` (bytes, `K`/`M`/`G` suffixes), `limit-cpu` (percent of one core),
//!   `limit-fds`: sampled every `check-interval` ms (10 s without it) over the service's
//!   processes (its cgroup, else the tree under `run` and run's process group);
//!   `limit-cycles` (default 3) samples in a row over a limit restart the service, or only
//!   report it when `limit-action` says `report`.
//! - `alert` (or `.rsv/alert` in the scan directory): run on state changes as
//!   `alert EVENT NAME DETAILS` with `RSV_EVENT`, `RSV_SERVICE`, `RSV_DETAILS` (and
//!   `RSV_ALERTS_DROPPED`) in its environment; one at a time, killed after
//!   [`alert::TIMEOUT_MS`], rate-limited ([`alert::Alerts`]).
//! - `stop-tree`: when `run` ends, whatever it left running (members of its cgroup and of its
//!   process group, and processes that double-forked away, which the supervisor adopts as a
//!   child subreaper) gets the down-signal, then SIGKILL after `timeout-kill` (5 s when
//!   unset). `run` is made a process-group leader in both personalities, and is placed in a
//!   cgroup of its own where one can be created ([`crate::cgroup`]).
//!
//! runsv and s6-supervise signal `run`'s pid only and leave its other processes alone; so
//! does rsv for a service dir without `stop-tree`.

pub mod alert;
pub mod guard;

use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::cgroup::Cgroup;
use crate::extstate::{ExtState, Health};
use crate::proctree;
use crate::svdir::{Setting, SvDir};

/// Guard sampling period without `check-interval`.
pub const DEFAULT_SAMPLE_MS: u64 = 10_000;
/// Grace given to leftovers when `timeout-kill` is not set.
pub const LEFTOVER_GRACE_MS: u64 = 5000;

/// Where the scan directory's `.rsv/alert` is, for a supervisor started on `dir` (as given
/// on its command line, before it changes to it): None unless the scan directory has a
/// `.rsv` directory at that moment (then nothing is kept, nor is the working directory
/// read).
pub fn scan_alert(dir: &str) -> Option<PathBuf> {
    let parent = Path::new(dir).parent().unwrap_or(Path::new(""));
    let rsv = parent.join(".rsv");
    if !std::fs::metadata(&rsv).is_ok_and(|m| m.is_dir()) {
        return None;
    }
    let p = rsv.join("alert");
    if p.is_absolute() {
        Some(p)
    } else {
        std::env::current_dir().ok().map(|c| c.join(p))
    }
}

/// The settings read before a start of `run`.
#[derive(Clone, Debug, Default)]
struct Cfg {
    limits: guard::Limits,
    sample_ms: u64,
    stop_tree: bool,
    alert: Option<PathBuf>,
    down_signal: i32,
    grace_ms: u64,
    kill_ms: u64,
}

fn limit(dir: &SvDir, name: &str, bytes: bool) -> Option<u64> {
    let text = std::fs::read_to_string(dir.path(name)).ok()?;
    let v = if bytes {
        guard::parse_bytes(&text)
    } else {
        text.trim().parse().ok()
    };
    if v.is_none() {
        dir.warn(&format!("invalid {}, ignored", dir.show(name)));
    }
    v
}

fn read_cfg(dir: &mut SvDir, scan_alert: Option<&Path>) -> Option<Cfg> {
    use crate::machine::Files;
    let mut limits = guard::Limits {
        memory: limit(dir, "limit-memory", true),
        cpu_percent: limit(dir, "limit-cpu", false),
        fds: limit(dir, "limit-fds", false),
        cycles: guard::DEFAULT_CYCLES,
        restart: true,
    };
    let stop_tree = dir.exists("stop-tree");
    let own = dir.path("alert");
    let alert = if std::fs::metadata(&own).is_ok() {
        Some(own)
    } else {
        scan_alert
            .filter(|p| std::fs::metadata(p).is_ok())
            .map(Path::to_path_buf)
    };
    if !limits.any() && !stop_tree && alert.is_none() {
        return None;
    }
    let mut sample_ms = DEFAULT_SAMPLE_MS;
    if limits.any() {
        if let Setting::Value(c) = dir.uint("limit-cycles") {
            limits.cycles = c.clamp(1, u64::from(u32::MAX)) as u32;
        }
        if let Ok(a) = std::fs::read_to_string(dir.path("limit-action")) {
            match a.trim() {
                "restart" => {}
                "report" => limits.restart = false,
                other => dir.warn(&format!(
                    "invalid {} ({other:?}; want restart or report), restarting",
                    dir.show("limit-action")
                )),
            }
        }
        if let Setting::Value(v) = dir.uint("check-interval") {
            sample_ms = v.max(crate::health::MIN_INTERVAL_MS);
        }
    }
    let kill_ms = dir.timeout_kill();
    Some(Cfg {
        limits,
        sample_ms,
        stop_tree,
        alert: alert.map(|p| {
            if p.is_relative() {
                Path::new(".").join(p)
            } else {
                p
            }
        }),
        down_signal: dir.down_signal(),
        grace_ms: if kill_ms == 0 {
            LEFTOVER_GRACE_MS
        } else {
            kill_ms
        },
        kill_ms,
    })
}

/// What the supervisor is asked to do by [`Rt::timer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// Restart `run` (a guard): its down-signal and SIGCONT, as a restart by hand.
    Restart,
    /// `run` outlived `timeout-kill` after a guard restart: SIGKILL it.
    KillRun,
}

struct Inner {
    cfg: Cfg,
    cgroup: Option<Cgroup>,
    cgroup_procs: Option<CString>,
    /// `run` must lead its own session (stop-tree).
    setsid: bool,
    guard: guard::Guard,
    alerts: alert::Alerts,
    /// The current run (0 = none).
    run: i32,
    next_sample: Option<u64>,
    last_cpu: Option<(u64, u64)>,
    run_kill_at: Option<u64>,
    /// Leftovers of the last run being stopped, and when they get SIGKILL.
    leftovers: Vec<i32>,
    leftover_kill_at: Option<u64>,
    /// Last figures and the exceeded limit, for rsv-state.
    memory_bytes: u64,
    cpu_percent: Option<u64>,
    limit: String,
    limit_alerted: bool,
    gave_up: bool,
}

/// The per-service runtime state: nothing at all unless one of the files is present.
#[derive(Default)]
pub struct Rt {
    inner: Option<Box<Inner>>,
    /// Process group of the last `run` that led its own (0 = none), for rsvstat.
    pub pgid: i32,
    /// The scan directory's `.rsv/alert` ([`scan_alert`]).
    pub scan_alert: Option<PathBuf>,
}

/// The service name as alerts give it.
fn alert_env(a: &alert::Alert, name: &str) -> [(&'static str, String); 4] {
    [
        ("RSV_EVENT", a.event.as_str().to_string()),
        ("RSV_SERVICE", name.to_string()),
        ("RSV_DETAILS", a.details.clone()),
        ("RSV_ALERTS_DROPPED", a.dropped.to_string()),
    ]
}

/// How a process ended, in words.
pub fn died_words(wstat: i32) -> String {
    match crate::status::Ended::from_wstat(wstat) {
        crate::status::Ended::Exited(c) => format!("exit {c}"),
        crate::status::Ended::Signaled(s) => format!("signal {s} ({})", crate::sig::long_name(s)),
    }
}

impl Rt {
    /// `scan_alert`: from [`scan_alert`].
    pub fn new(scan_alert: Option<PathBuf>) -> Rt {
        Rt {
            inner: None,
            pgid: 0,
            scan_alert,
        }
    }

    /// Before `run` is started: reads the files, creates the cgroup when wanted.
    pub fn prepare(&mut self, dir: &mut SvDir, now_ms: u64) {
        let cfg = read_cfg(dir, self.scan_alert.as_deref());
        let Some(cfg) = cfg else {
            if self
                .inner
                .as_ref()
                .is_some_and(|i| i.alerts.idle() && i.leftovers.is_empty())
            {
                if let Some(cg) = self.inner.as_ref().and_then(|i| i.cgroup.clone()) {
                    cg.remove();
                }
                self.inner = None;
            }
            if let Some(i) = self.inner.as_mut() {
                i.cfg = Cfg::default();
                i.setsid = false;
            }
            return;
        };
        let inner = self.inner.get_or_insert_with(|| {
            Box::new(Inner {
                cfg: Cfg::default(),
                cgroup: None,
                cgroup_procs: None,
                setsid: false,
                guard: guard::Guard::default(),
                alerts: alert::Alerts::new(now_ms),
                run: 0,
                next_sample: None,
                last_cpu: None,
                run_kill_at: None,
                leftovers: Vec::new(),
                leftover_kill_at: None,
                memory_bytes: 0,
                cpu_percent: None,
                limit: String::new(),
                limit_alerted: false,
                gave_up: false,
            })
        });
        if (cfg.stop_tree || cfg.limits.any()) && inner.cgroup.is_none() {
            let here = if dir.path("x") == Path::new("log/x") {
                "log"
            } else {
                "."
            };
            if let Ok(abs) = std::fs::canonicalize(here) {
                inner.cgroup = Cgroup::create(&crate::cgroup::name_for(&abs));
                inner.cgroup_procs = inner.cgroup.as_ref().and_then(|c| {
                    CString::new(c.procs_file().into_os_string().into_encoded_bytes()).ok()
                });
            }
        }
        if cfg.stop_tree {
            // Processes that double-fork away from run are re-parented to us, not to init.
            // SAFETY: prctl with an integer argument.
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        }
        inner.setsid = cfg.stop_tree;
        inner.cfg = cfg;
    }

    /// For the next `run`: the `cgroup.procs` file it joins, and whether it must lead its own
    /// session.
    pub fn run_extras(&self) -> (Option<CString>, bool) {
        match &self.inner {
            Some(i) if i.cfg.stop_tree || i.cfg.limits.any() => (i.cgroup_procs.clone(), i.setsid),
            _ => (None, false),
        }
    }

    /// `run` started as `pid` (a group leader when `leader`).
    pub fn run_started(&mut self, pid: i32, leader: bool, now_ms: u64, dir: &SvDir) {
        if leader {
            self.pgid = pid;
        }
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        inner.run = pid;
        inner.guard = guard::Guard::default();
        inner.last_cpu = None;
        inner.limit.clear();
        inner.run_kill_at = None;
        inner.next_sample = inner.cfg.limits.any().then_some(now_ms);
        inner
            .alerts
            .push(alert::Event::Started, format!("pid {pid}"), now_ms);
        start_alert(inner, dir, now_ms);
    }

    /// `run` was reaped: alert, and stop what it left behind (with `stop-tree`). `known` are
    /// the supervisor's own children that are not leftovers.
    pub fn run_died(&mut self, wstat: i32, now_ms: u64, dir: &SvDir, known: &[i32]) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        let run = std::mem::take(&mut inner.run);
        inner.next_sample = None;
        inner.run_kill_at = None;
        inner
            .alerts
            .push(alert::Event::Died, died_words(wstat), now_ms);
        start_alert(inner, dir, now_ms);
        if !inner.cfg.stop_tree {
            return;
        }
        let mut left = leftovers(inner.cgroup.as_ref(), self.pgid, known);
        left.retain(|&p| p != run);
        if left.is_empty() {
            return;
        }
        for &p in &left {
            // SAFETY: signalling processes the service left (its cgroup, its process group,
            // or children adopted as subreaper).
            unsafe {
                libc::kill(p, inner.cfg.down_signal);
                libc::kill(p, libc::SIGCONT);
            }
        }
        inner.leftovers = left;
        inner.leftover_kill_at = Some(now_ms + inner.cfg.grace_ms);
    }

    /// After a death was fed to the machine: backoff and give-up alerts.
    pub fn after_death(
        &mut self,
        backoff_ms: Option<u64>,
        gave_up: bool,
        now_ms: u64,
        dir: &SvDir,
    ) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        if let Some(b) = backoff_ms.filter(|&b| b > 0) {
            inner
                .alerts
                .push(alert::Event::Backoff, format!("next try in {b} ms"), now_ms);
        }
        if gave_up && !inner.gave_up {
            inner
                .alerts
                .push(alert::Event::GaveUp, "give-up rule reached".into(), now_ms);
        }
        inner.gave_up = gave_up;
        start_alert(inner, dir, now_ms);
    }

    /// The health of the service changed.
    pub fn health_changed(
        &mut self,
        before: Health,
        after: Health,
        output: &str,
        now_ms: u64,
        dir: &SvDir,
    ) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        let ev = match (before, after) {
            (b, Health::Unhealthy) if b != Health::Unhealthy => alert::Event::Unhealthy,
            (Health::Unhealthy, Health::Healthy) => alert::Event::Healthy,
            _ => return,
        };
        inner.alerts.push(ev, output.to_string(), now_ms);
        start_alert(inner, dir, now_ms);
    }

    #[inline]
    pub fn next_deadline(&self) -> Option<u64> {
        self.inner.as_ref().and_then(|i| i.next_deadline())
    }

    /// A deadline may have passed. `active`: run is up and wanted up (a guard may restart).
    /// Returns whether rsv-state changed and what the supervisor must do.
    pub fn timer(&mut self, now_ms: u64, active: bool, dir: &SvDir) -> (bool, Option<Ask>) {
        let Some(inner) = self.inner.as_mut() else {
            return (false, None);
        };
        let mut ask = None;
        let mut changed = false;
        if let Some((pid, t)) = inner.alerts.running {
            if t <= now_ms {
                // SAFETY: the alert leads its own process group.
                unsafe { libc::killpg(pid, libc::SIGKILL) };
                inner.alerts.running = Some((pid, now_ms + crate::machine::KILL_REPEAT_MS));
            }
        }
        if inner.leftover_kill_at.is_some_and(|t| t <= now_ms) {
            inner.leftover_kill_at = None;
            for p in std::mem::take(&mut inner.leftovers) {
                if proctree::read(p).is_some_and(|x| !x.zombie) {
                    // SAFETY: a leftover that outlived its grace period.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
        }
        if inner.run_kill_at.is_some_and(|t| t <= now_ms) {
            inner.run_kill_at = Some(now_ms + crate::machine::KILL_REPEAT_MS);
            ask = Some(Ask::KillRun);
        }
        if inner.next_sample.is_some_and(|t| t <= now_ms) {
            inner.next_sample = Some(now_ms + inner.cfg.sample_ms);
            if active && inner.run != 0 {
                let s = sample(inner, now_ms);
                changed = true;
                match inner.guard.judge(&inner.cfg.limits, &s) {
                    guard::Verdict::Fine => {
                        inner.limit.clear();
                        inner.limit_alerted = false;
                    }
                    guard::Verdict::Over(t) => inner.limit = t,
                    guard::Verdict::Act(t) => {
                        // Reported once per episode; each restart is an episode.
                        let first = !std::mem::replace(&mut inner.limit_alerted, true)
                            || inner.cfg.limits.restart;
                        inner.limit = t.clone();
                        if inner.cfg.limits.restart {
                            dir.warn(&format!("limit exceeded ({t}), restarting the service"));
                            ask = Some(Ask::Restart);
                            let k = inner.cfg.kill_ms;
                            inner.run_kill_at = (k > 0).then(|| now_ms.saturating_add(k));
                            inner.next_sample = None;
                        }
                        if first {
                            inner.alerts.push(alert::Event::Limit, t, now_ms);
                        }
                    }
                }
            }
        }
        start_alert(inner, dir, now_ms);
        (changed, ask)
    }

    /// A child was reaped: true when it was our alert.
    #[inline]
    pub fn reaped(&mut self, pid: i32, now_ms: u64, dir: &SvDir) -> bool {
        match &mut self.inner {
            None => false,
            Some(inner) => inner.reaped(pid, now_ms, dir),
        }
    }

    /// The running alert's pid.
    pub fn alert_pid(&self) -> Option<i32> {
        self.inner.as_ref()?.alerts.running.map(|(p, _)| p)
    }

    /// Fills rsv-state's fields.
    pub fn ext_into(&self, st: &mut ExtState) {
        st.pgid = self.pgid;
        if let Some(i) = &self.inner {
            st.cgroup = i
                .cgroup
                .as_ref()
                .map(|c| c.path.to_string_lossy().into_owned())
                .unwrap_or_default();
            if i.cfg.limits.any() {
                st.memory_bytes = i.memory_bytes;
                st.cpu_percent = i.cpu_percent;
                st.limit = i.limit.clone();
            }
        }
    }

    /// The supervisor exits: stop the leftovers still in their grace period (bounded), and
    /// remove the cgroup.
    pub fn on_exit(&mut self, now_ms: u64) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        if let Some(t) = inner.leftover_kill_at.take() {
            let left = std::mem::take(&mut inner.leftovers);
            let gone = || {
                left.iter()
                    .all(|&p| proctree::read(p).is_none_or(|x| x.zombie))
            };
            let end = std::time::Instant::now()
                + std::time::Duration::from_millis(t.saturating_sub(now_ms));
            while !gone() && std::time::Instant::now() < end {
                reap_adopted();
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            for &p in &left {
                if proctree::read(p).is_some_and(|x| !x.zombie) {
                    // SAFETY: a leftover that outlived its grace period.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
            }
            if let Some(cg) = &inner.cgroup {
                cg.signal(libc::SIGKILL);
            }
            let end = std::time::Instant::now() + std::time::Duration::from_millis(1000);
            while !gone() && std::time::Instant::now() < end {
                reap_adopted();
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        reap_adopted();
        if let Some(cg) = &inner.cgroup {
            if cg.members().is_empty() {
                cg.remove_wait(1000);
            }
        }
    }
}

impl Inner {
    fn next_deadline(&self) -> Option<u64> {
        [
            self.next_sample,
            self.run_kill_at,
            self.leftover_kill_at,
            self.alerts.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn reaped(&mut self, pid: i32, now_ms: u64, dir: &SvDir) -> bool {
        if self.alerts.running.is_some_and(|(p, _)| p == pid) {
            self.alerts.running = None;
            start_alert(self, dir, now_ms);
            return true;
        }
        false
    }
}

/// Reaps adopted children that ended (the loop no longer runs at exit).
fn reap_adopted() {
    // SAFETY: waitpid with WNOHANG on any child; statuses of leftovers are not needed.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// What the last run left: its cgroup's members, its process group's, and the supervisor's
/// children that are not its own (adopted as subreaper).
fn leftovers(cg: Option<&Cgroup>, pgid: i32, known: &[i32]) -> Vec<i32> {
    let me = std::process::id() as i32;
    let procs = proctree::snapshot();
    let mut out: Vec<i32> = cg.map(|c| c.members()).unwrap_or_default();
    if pgid > 0 {
        out.extend(proctree::group(&procs, pgid));
    }
    out.extend(
        procs
            .iter()
            .filter(|p| p.ppid == me && !p.zombie && !known.contains(&p.pid))
            .map(|p| p.pid),
    );
    out.sort_unstable();
    out.dedup();
    out.retain(|&p| p != me && p > 1);
    out
}

/// The service's processes now, with their /proc entries: its cgroup's members (only they
/// are read), else run's tree and process group (from a snapshot of every process).
fn members(inner: &Inner) -> (Vec<proctree::Proc>, Vec<i32>) {
    if let Some(cg) = &inner.cgroup {
        let pids = cg.members();
        let procs = pids.iter().filter_map(|&p| proctree::read(p)).collect();
        return (procs, pids);
    }
    let procs = proctree::snapshot();
    let mut v = proctree::descendants(&procs, inner.run);
    v.extend(proctree::group(&procs, inner.run));
    v.sort_unstable();
    v.dedup();
    (procs, v)
}

fn sample(inner: &mut Inner, now_ms: u64) -> guard::Sample {
    let (procs, pids) = members(inner);
    let u = proctree::usage(&procs, &pids, inner.cfg.limits.fds.is_some());
    drop(procs);
    // The snapshot's heap is freed: give it back rather than keep it resident in every
    // supervisor with guards.
    // SAFETY: malloc_trim only walks glibc's own heap; the supervisor is single-threaded.
    unsafe { libc::malloc_trim(0) };
    let mem = inner
        .cgroup
        .as_ref()
        .and_then(|c| c.memory())
        .unwrap_or(u.memory_bytes);
    let cpu = inner
        .cgroup
        .as_ref()
        .and_then(|c| c.cpu_ms())
        .unwrap_or(u.cpu_ms);
    let pct = inner.last_cpu.and_then(|(t, c)| {
        let dt = now_ms.checked_sub(t).filter(|&d| d > 0)?;
        Some(cpu.saturating_sub(c) * 100 / dt)
    });
    inner.last_cpu = Some((now_ms, cpu));
    inner.memory_bytes = mem;
    inner.cpu_percent = pct;
    guard::Sample {
        memory_bytes: mem,
        cpu_percent: pct,
        fds: u.fds,
    }
}

/// Starts the next queued alert if none runs.
fn start_alert(inner: &mut Inner, dir: &SvDir, now_ms: u64) {
    let Some(prog) = inner.cfg.alert.clone() else {
        return;
    };
    let name = dir.shown.as_str();
    while let Some(a) = inner.alerts.take_next() {
        use std::os::unix::process::CommandExt;
        let r = std::process::Command::new(&prog)
            .args([a.event.as_str(), name, &a.details])
            .envs(alert_env(&a, name))
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .spawn();
        match r {
            Ok(child) => {
                let pid = child.id() as i32;
                drop(child); // reaped by the supervisor's loop
                inner.alerts.running = Some((pid, now_ms + alert::TIMEOUT_MS));
                return;
            }
            Err(e) => dir.warn(&format!(
                "unable to run {}: {}",
                prog.display(),
                crate::svdir::errtext(&e)
            )),
        }
    }
}
