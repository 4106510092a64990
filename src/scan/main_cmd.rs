//! Main-command mode (`rsvscan [DIR] -- CMD [ARGS...]`), plain init (`rsvscan -- CMD`),
//! `--wait-ready` and essential services: the parts of the scanner that decide how the
//! container ends.
//!
//! - CMD inherits rsvscan's stdio, environment and working directory, runs in its own process
//!   group, and gets the terminal's foreground when standard input is a terminal (so Ctrl-C
//!   reaches it, as under tini). While it runs, the signals rsvscan receives are forwarded
//!   to it instead of triggering the scanner's own reactions.
//! - When CMD exits, every service is stopped in order and rsvscan exits with CMD's code
//!   (128 + N when CMD died of signal N), even when the stop had to SIGKILL something.
//! - A supervisor exiting [`EXIT_ESSENTIAL`] has stopped an essential service for good: its
//!   `supervise/rsv-state` `final_exit` becomes the exit code and everything is stopped.
//! - Whichever of the two comes first decides the exit code.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{CAUGHT, Options, Scanner, children_of};
use crate::diag::EXIT_SYS;
use crate::extstate;
use crate::status::{self, AnyStatus, RunitState};
use crate::svdir::errtext;

/// Exit status of a supervisor whose essential service stopped for good.
pub use crate::supervise::EXIT_ESSENTIAL;

/// Exit code when CMD cannot be found (as a shell's).
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit code when CMD exists but cannot be executed (as a shell's).
pub const EXIT_CANNOT_EXEC: i32 = 126;

/// How often readiness is looked at while `--wait-ready` waits.
const READY_POLL_MS: u64 = 20;

/// Slack for file modification times: the kernel stamps files with a coarse clock that can
/// lag the precise one by a scheduler tick.
const MTIME_SLACK: Duration = Duration::from_millis(50);

/// Where the main command is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not started yet (services starting, or `--wait-ready` waiting).
    Pending,
    /// Running with this pid.
    Running(i32),
    /// Exited, or never to be started.
    Done,
}

/// The main command of the scanner.
#[derive(Debug)]
pub struct MainCmd {
    argv: Vec<OsString>,
    /// rsvscan's working directory before it changed to the scan directory.
    cwd: Option<PathBuf>,
    pub phase: Phase,
    /// `--wait-ready` deadline, set when the services are first started.
    ready_by: Option<Instant>,
    wait_ms: Option<u64>,
    /// When the scanner started (state files older than this are stale).
    since: SystemTime,
    /// We made CMD's process group the terminal's foreground group.
    took_tty: bool,
    /// SIGTERM was sent to CMD because the services are being stopped.
    termed: bool,
    /// When the start set of the dependency graph must have settled (`up_timeout_ms`).
    up_by: Option<Instant>,
}

impl MainCmd {
    pub fn new(argv: Vec<OsString>, cwd: Option<PathBuf>, wait_ms: Option<u64>) -> MainCmd {
        MainCmd {
            argv,
            cwd,
            phase: Phase::Pending,
            ready_by: None,
            wait_ms,
            since: SystemTime::now(),
            took_tty: false,
            termed: false,
            up_by: None,
        }
    }
}

/// Is `sig`, received while CMD runs, passed on to it? Everything but SIGCHLD (ours), SIGPIPE
/// (raised by our own writes) and SIGTTIN/SIGTTOU (job control of our own terminal use).
pub fn forwarded(sig: i32) -> bool {
    !matches!(
        sig,
        libc::SIGCHLD | libc::SIGPIPE | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// The code a container exits with for a process that ended with this wait status.
pub fn code_of(st: &WaitStatus) -> Option<i32> {
    match st {
        WaitStatus::Exited(_, c) => Some(*c),
        WaitStatus::Signaled(_, s, _) => Some(128 + *s as i32),
        _ => None,
    }
}

/// The exit code for a CMD that could not be started.
pub fn spawn_error_code(e: &io::Error) -> i32 {
    if e.kind() == io::ErrorKind::NotFound {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_EXEC
    }
}

/// Runs `f` with SIGTTOU blocked in the calling thread: a process that is not in the
/// terminal's foreground group may then change that group (tcsetpgrp) instead of being
/// sent SIGTTOU. Async-signal-safe (used between fork and exec).
fn with_ttou_blocked(f: impl FnOnce()) {
    // SAFETY: sigset manipulation on a local set and pthread_sigmask on our own thread;
    // all async-signal-safe.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

/// Starts CMD in its own process group; when standard input is a terminal, that group
/// becomes its foreground group. Returns the pid and whether the terminal was handed over.
pub fn spawn(argv: &[OsString], cwd: Option<&Path>) -> io::Result<(i32, bool)> {
    let Some((prog, args)) = argv.split_first() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command"));
    };
    // SAFETY: isatty on fd 0, no memory involved.
    let tty = unsafe { libc::isatty(0) } == 1;
    let mut cmd = Command::new(prog);
    cmd.args(args).process_group(0);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    if tty {
        // SAFETY: runs in the child between fork and exec and calls only async-signal-safe
        // functions (pthread_sigmask, tcsetpgrp, getpgrp). Failure (not our controlling
        // terminal) is ignored: CMD then simply runs without the foreground.
        unsafe {
            cmd.pre_exec(|| {
                with_ttou_blocked(|| {
                    libc::tcsetpgrp(0, libc::getpgrp());
                });
                Ok(())
            });
        }
    }
    let child = cmd.spawn()?;
    let pid = child.id() as i32;
    drop(child); // reaped by our waitpid(-1) loops
    // SAFETY: tcgetpgrp on fd 0 only reads.
    let took = tty && unsafe { libc::tcgetpgrp(0) } == pid;
    Ok((pid, took))
}

/// Gives the terminal's foreground back to our own process group (after CMD ended).
pub fn reclaim_terminal() {
    with_ttou_blocked(|| {
        // SAFETY: tcsetpgrp on fd 0 with our own process group.
        unsafe {
            libc::tcsetpgrp(0, libc::getpgrp());
        }
    });
}

fn signal(pid: i32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill(2) on a child of ours that has not been reaped yet.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// The `supervise/` directory of service `name` (relative to the scan directory), also when
/// it was relocated to a runtime directory (see [`crate::rundir`]).
pub fn supervise_dir(name: &str) -> PathBuf {
    crate::rundir::supervise_dir(Path::new(name))
}

pub(super) fn fresh(p: &Path, since: SystemTime) -> bool {
    fs::metadata(p)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t + MTIME_SLACK >= since)
}

/// Is the service in `sd` up and ready, as far as the files its supervisor wrote since
/// `since` tell? (Older files are left over from an earlier run and say nothing.)
///
/// `supervise/rsv-state` `ready` decides when present. Otherwise the status file: s6 layout,
/// up and (with `notification-fd`) the ready flag; runit layout, state `run`.
pub fn service_ready(sd: &Path, since: SystemTime) -> bool {
    let sup = crate::rundir::supervise_dir(sd);
    if fresh(&sup.join(extstate::FILE), since) {
        if let Ok(st) = extstate::read(&sup) {
            return st.ready;
        }
    }
    if !fresh(&sup.join("status"), since) {
        return false;
    }
    match status::read_status(&sup) {
        Ok(AnyStatus::S6(s)) => s.is_up() && (s.ready || !sd.join("notification-fd").exists()),
        Ok(AnyStatus::Runit(r)) => r.pid != 0 && r.state == RunitState::Run,
        Err(_) => false,
    }
}

/// The `final_exit` an essential service's supervisor left in `supervise/rsv-state`.
pub fn final_exit(sup: &Path) -> Result<i32, String> {
    match extstate::read(sup) {
        Ok(st) => st
            .final_exit
            .ok_or_else(|| "no final_exit in it".to_string()),
        Err(e) => Err(errtext(&e)),
    }
}

fn show(argv: &[OsString]) -> String {
    argv.first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Scanner {
    /// Sets the exit code, unless CMD or an essential service already decided it.
    pub(super) fn decide(&mut self, code: i32) {
        if self.decided.is_none() {
            self.decided = Some(code);
        }
    }

    /// Called with every reaped child before the scanner's own bookkeeping.
    pub(super) fn reaped(&mut self, pid: i32, st: &WaitStatus) {
        if let Some(m) = &mut self.main {
            if m.phase == Phase::Running(pid) {
                m.phase = Phase::Done;
                if m.took_tty {
                    reclaim_terminal();
                }
                let code = code_of(st).unwrap_or(EXIT_SYS);
                self.decide(code);
                self.begin_stop(code, false);
                return;
            }
        }
        if !matches!(st, WaitStatus::Exited(_, EXIT_ESSENTIAL)) {
            return;
        }
        let Some(name) = self
            .by_pid
            .get(&pid)
            .and_then(|id| self.svcs.get(id))
            .map(|s| s.name.clone())
        else {
            return;
        };
        let sup = supervise_dir(&name);
        let code = match final_exit(&sup) {
            Ok(c) => c,
            Err(e) => {
                self.warn(&format!(
                    "unable to read {}/{}/{}: {e}",
                    self.opts.dir,
                    sup.display(),
                    extstate::FILE
                ));
                EXIT_SYS
            }
        };
        self.warn(&format!(
            "essential service {}/{name} stopped for good (exit code {code}): stopping everything",
            self.opts.dir
        ));
        self.decide(code);
        self.begin_stop(code, false);
    }

    /// Forwards `sig` to CMD while it runs; true if the signal was dealt with here.
    pub(super) fn main_signal(&mut self, sig: i32) -> bool {
        let Some(m) = &self.main else { return false };
        let own =
            !self.opts.cmd_signals && matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT);
        match m.phase {
            Phase::Running(pid) if forwarded(sig) && !own => {
                signal(pid, sig);
                true
            }
            Phase::Pending
                if self.stop.is_none()
                    && matches!(
                        sig,
                        libc::SIGTERM | libc::SIGINT | libc::SIGQUIT | libc::SIGHUP
                    ) =>
            {
                // Stopped before CMD could start: as if CMD had been killed by it.
                self.decide(128 + sig);
                self.begin_stop(128 + sig, false);
                true
            }
            _ => false,
        }
    }

    /// Services that are wanted up but not ready yet, by name.
    fn not_ready(&self, since: SystemTime) -> Vec<String> {
        self.svcs
            .values()
            .filter(|s| s.active && !Path::new(&s.name).join("down").exists())
            .filter(|s| self.graph_wants(&s.name))
            .filter(|s| s.pid.is_none() || !service_ready(Path::new(&s.name), since))
            .map(|s| s.name.clone())
            .collect()
    }

    /// Once per loop: starts CMD when its time has come, fails `--wait-ready`, and sends
    /// CMD SIGTERM when the services are being stopped for another reason.
    pub(super) fn main_tick(&mut self, now: Instant) {
        let Some(m) = &self.main else { return };
        let (phase, wait_ms, since) = (m.phase, m.wait_ms, m.since);
        if self.stop.is_some() {
            if let Some(m) = &mut self.main {
                match phase {
                    Phase::Pending => m.phase = Phase::Done,
                    Phase::Running(pid) if !m.termed => {
                        m.termed = true;
                        signal(pid, libc::SIGTERM);
                        signal(pid, libc::SIGCONT);
                    }
                    _ => {}
                }
            }
            return;
        }
        // The first scan ran before this (the loop scans first), so the services are started.
        if phase != Phase::Pending {
            return;
        }
        if !self.start_set_ready(now) {
            return;
        }
        if let Some(ms) = wait_ms {
            let by = match self.main.as_mut() {
                Some(m) => *m.ready_by.get_or_insert(now + Duration::from_millis(ms)),
                None => return,
            };
            let missing = self.not_ready(since);
            if !missing.is_empty() {
                if now >= by {
                    let list: Vec<String> = missing
                        .iter()
                        .map(|n| format!("{}/{n}", self.opts.dir))
                        .collect();
                    eprintln!(
                        "{}: fatal: not ready after {ms} ms: {}",
                        self.opts.prog,
                        list.join(" ")
                    );
                    self.decide(EXIT_SYS);
                    self.begin_stop(EXIT_SYS, false);
                }
                return;
            }
        }
        let Some(m) = &mut self.main else { return };
        match spawn(&m.argv, m.cwd.as_deref()) {
            Ok((pid, took)) => {
                m.phase = Phase::Running(pid);
                m.took_tty = took;
            }
            Err(e) => {
                m.phase = Phase::Done;
                let code = spawn_error_code(&e);
                let msg = format!(
                    "{}: fatal: unable to run {}: {}",
                    self.opts.prog,
                    show(&m.argv),
                    errtext(&e)
                );
                eprintln!("{msg}");
                self.decide(code);
                self.begin_stop(code, false);
            }
        }
    }

    /// Has the dependency graph's start set settled (CMD may start)? Applies
    /// `on_up_failure` once, and the `up_timeout_ms` bound.
    fn start_set_ready(&mut self, now: Instant) -> bool {
        let Some(e) = &self.graph else { return true };
        let failed = if e.start.is_some() {
            let Some(ms) = self.opts.up_timeout_ms.filter(|&ms| ms > 0) else {
                return false;
            };
            let Some(m) = self.main.as_mut() else {
                return false;
            };
            let by = *m.up_by.get_or_insert(now + Duration::from_millis(ms));
            if now < by {
                return false;
            }
            let e = self.graph.as_mut().map(|e| {
                e.start = None;
                e.start_failed.take()
            });
            let mut names: Vec<String> = e.flatten().unwrap_or_default();
            names.push(format!("(not settled after {ms} ms)"));
            names
        } else {
            match self.graph.as_mut().and_then(|e| e.start_failed.take()) {
                Some(f) if !f.is_empty() => f,
                _ => return true,
            }
        };
        match self.opts.on_up_failure {
            super::UpFailure::Continue => true,
            super::UpFailure::Warn => {
                self.warn(&format!(
                    "some services of {} did not start: {}",
                    self.opts.dir,
                    failed.join(" ")
                ));
                true
            }
            super::UpFailure::Stop(code) => {
                self.warn(&format!(
                    "some services of {} did not start: {}: stopping everything",
                    self.opts.dir,
                    failed.join(" ")
                ));
                self.decide(code);
                self.begin_stop(code, false);
                false
            }
        }
    }

    /// The loop's sleep, shortened while `--wait-ready` polls readiness.
    pub(super) fn main_timeout(&self, t: Option<u64>) -> Option<u64> {
        let t = match self.main.as_ref().and_then(|m| m.up_by) {
            Some(by)
                if self.stop.is_none()
                    && self.graph.as_ref().is_some_and(|e| e.start.is_some()) =>
            {
                let ms = super::ms_until(Instant::now(), by);
                Some(t.map_or(ms, |t| t.min(ms)))
            }
            _ => t,
        };
        match &self.main {
            Some(m) if m.phase == Phase::Pending && m.wait_ms.is_some() && self.stop.is_none() => {
                Some(t.map_or(READY_POLL_MS, |t| t.min(READY_POLL_MS)))
            }
            _ => t,
        }
    }

    /// End of life once CMD or an essential service decided the code: `.s6-svscan/finish`
    /// (s6 mode) runs as a child, and the decided code is kept.
    pub(super) fn finish_decided(&mut self, code: i32) -> i32 {
        if self.opts.mode == crate::machine::Mode::S6 {
            let path = format!("{}/finish", super::CTL_DIR);
            if fs::metadata(&path).is_ok() {
                if let Err(e) = Command::new(&path).status() {
                    self.warn(&format!("unable to run {}/{path}: {}", self.opts.dir, e));
                }
            }
        }
        self.reap();
        code
    }
}

/// Plain init (`rsvscan -- CMD` without a scan directory): runs CMD, forwards signals to it,
/// reaps every child, and when CMD exits sends its other children SIGTERM (SIGKILL after
/// the `-T` bound), then exits with CMD's code.
pub fn plain_init(opts: Options) -> i32 {
    let prog = opts.prog.clone();
    let argv = opts.main_cmd.clone().unwrap_or_default();
    let fatal = |msg: &str| -> ! { crate::diag::fatal(&prog, EXIT_SYS, msg) };
    let me = nix::unistd::getpid().as_raw();
    if me != 1 {
        // SAFETY: prctl with integer arguments only.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
    }
    let crate::selfpipe::Caught {
        r: mut sig_r,
        flags,
    } = crate::selfpipe::catch(&CAUGHT).unwrap_or_else(|e| {
        fatal(&format!(
            "unable to set up signals: {}",
            crate::svdir::errtext(&e)
        ))
    });

    let (cmd_pid, took_tty) = match spawn(&argv, None) {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "{prog}: fatal: unable to run {}: {}",
                show(&argv),
                errtext(&e)
            );
            return spawn_error_code(&e);
        }
    };
    let mut code: Option<i32> = None;
    let mut deadline: Option<Instant> = None;
    let mut kill_by: Option<Instant> = None;
    let mut termed: Vec<i32> = Vec::new();
    let mut b = [0u8; 64];
    loop {
        while matches!(sig_r.read(&mut b), Ok(n) if n > 0) {}
        for (sig, f) in &flags {
            if f.swap(false, Ordering::SeqCst) && code.is_none() && forwarded(*sig) {
                signal(cmd_pid, *sig);
            }
        }
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(st) => {
                    if st.pid().map(Pid::as_raw) == Some(cmd_pid) {
                        code = Some(code_of(&st).unwrap_or(EXIT_SYS));
                        if took_tty {
                            reclaim_terminal();
                        }
                    }
                }
            }
        }
        let now = Instant::now();
        let mut timeout = None;
        if let Some(c) = code {
            let rest = children_of(me);
            if rest.is_empty() {
                return c;
            }
            let dl = *deadline.get_or_insert(now + Duration::from_millis(opts.bound_ms));
            if let Some(k) = kill_by {
                if now >= k {
                    return c;
                }
                timeout = Some(k);
            } else if now >= dl {
                crate::diag::warn(
                    &prog,
                    &format!(
                        "shutdown bound of {} ms exceeded: killing what still runs",
                        opts.bound_ms
                    ),
                );
                if me == 1 {
                    // SAFETY: as process 1, kill(2) with pid -1 signals every other
                    // process of the namespace.
                    unsafe {
                        libc::kill(-1, libc::SIGKILL);
                    }
                }
                for p in &rest {
                    signal(*p, libc::SIGKILL);
                }
                let k = now + Duration::from_secs(3);
                kill_by = Some(k);
                timeout = Some(k);
            } else {
                // Leftovers (CMD's own children, orphans reparented to us) get SIGTERM once
                // each, including those that come to us later.
                for p in rest {
                    if !termed.contains(&p) {
                        termed.push(p);
                        signal(p, libc::SIGTERM);
                        signal(p, libc::SIGCONT);
                    }
                }
                timeout = Some(dl);
            }
        }
        let to = match timeout {
            None => PollTimeout::NONE,
            Some(t) => {
                let ms = t.saturating_duration_since(now).as_millis().min(60_000) as i32;
                PollTimeout::try_from(ms.max(1)).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&sig_r),
            PollFlags::POLLIN,
        )];
        let _ = poll(&mut fds, to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{RunitStatus, S6Status};
    use crate::tai::Tai64N;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    fn tmp(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("rsv-unit-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(p.join("supervise")).unwrap();
        Tmp(p)
    }

    #[test]
    fn which_signals_are_forwarded() {
        for s in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
            libc::SIGALRM,
            libc::SIGABRT,
        ] {
            assert!(forwarded(s), "{s}");
        }
        for s in [libc::SIGCHLD, libc::SIGPIPE, libc::SIGTTIN, libc::SIGTTOU] {
            assert!(!forwarded(s), "{s}");
        }
    }

    #[test]
    fn exit_codes() {
        let p = Pid::from_raw(5);
        assert_eq!(code_of(&WaitStatus::Exited(p, 3)), Some(3));
        assert_eq!(
            code_of(&WaitStatus::Signaled(p, nix::sys::signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(code_of(&WaitStatus::StillAlive), None);
        let nf = io::Error::from_raw_os_error(libc::ENOENT);
        let acc = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(spawn_error_code(&nf), 127);
        assert_eq!(spawn_error_code(&acc), 126);
    }

    #[test]
    fn readiness_from_state_files() {
        let t = tmp("ready");
        let sd = t.0.as_path();
        let sup = sd.join("supervise");
        let since = SystemTime::now();
        assert!(!service_ready(sd, since), "no files");

        // s6 status: up without notification-fd is ready; with it, the flag decides.
        let mut s6 = S6Status {
            pid: 42,
            wantup: true,
            ..Default::default()
        };
        status::write_atomic(&sup, "status", &s6.encode(), 0o644).unwrap();
        assert!(service_ready(sd, since));
        fs::write(sd.join("notification-fd"), "3\n").unwrap();
        assert!(!service_ready(sd, since));
        s6.ready = true;
        status::write_atomic(&sup, "status", &s6.encode(), 0o644).unwrap();
        assert!(service_ready(sd, since));
        s6.finishing = true;
        status::write_atomic(&sup, "status", &s6.encode(), 0o644).unwrap();
        assert!(!service_ready(sd, since), "finishing is not up");

        // runit status: state run.
        let r = RunitStatus {
            stamp: Tai64N::default(),
            pid: 42,
            paused: false,
            want_up: true,
            got_term: false,
            state: RunitState::Run,
        };
        status::write_atomic(&sup, "status", &r.encode(), 0o644).unwrap();
        assert!(service_ready(sd, since));

        // rsv-state decides when present.
        let st = extstate::ExtState {
            ready: false,
            ..Default::default()
        };
        extstate::write(&sup, &st).unwrap();
        assert!(!service_ready(sd, since));
        let st = extstate::ExtState {
            ready: true,
            ..Default::default()
        };
        extstate::write(&sup, &st).unwrap();
        assert!(service_ready(sd, since));

        // Files older than `since` are left over from an earlier run.
        let old = since - Duration::from_secs(60);
        for f in ["status", extstate::FILE] {
            fs::File::options()
                .write(true)
                .open(sup.join(f))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        assert!(!service_ready(sd, since), "stale files");
    }

    #[test]
    fn final_exit_is_read_from_rsv_state() {
        let t = tmp("final");
        let sup = t.0.join("supervise");
        assert!(final_exit(&sup).is_err());
        fs::write(sup.join(extstate::FILE), "essential 1\n").unwrap();
        assert_eq!(final_exit(&sup), Err("no final_exit in it".to_string()));
        fs::write(sup.join(extstate::FILE), "essential 1\nfinal_exit 7\n").unwrap();
        assert_eq!(final_exit(&sup), Ok(7));
    }
}
