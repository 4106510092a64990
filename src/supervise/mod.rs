//! rsupervise's event loop: sets up `supervise/` (and `event/`) in the layout of the chosen
//! personality, then polls the control FIFO(s), a signal self-pipe and the readiness pipe(s)
//! with one timeout (the nearest deadline of the state machines), feeding [`Machine`]s and
//! carrying out their actions. With nothing pending it sleeps in poll(2) without timeout.
//!
//! Children are started with `fork` + `execv`: everything the child needs (paths, argv,
//! descriptors) is prepared before the fork, and the child only calls async-signal-safe
//! functions. A close-on-exec pipe reports exec failure back to the supervisor (s6's
//! handshake). std's `Command` is not used: it allocates per spawn and pulls in machinery the
//! supervisor does not need, and it cannot express "this fd on fd N, that one on 0/1".
//!
//! Files: `setup` (supervise/, event/, FIFOs), `leftover` (a service left by a dead
//! supervisor), `actions` (the machine's actions; status and rsv-state writes), `spawn`
//! (children), `stop_hook` (a service's `stop`, run before a requested stop), and the
//! supervisor's side of each extension: `health_rt`, `monit_rt`, `sd`.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use crate::diag::EXIT_SYS;
use crate::extstate::ExtState;
use crate::health::{self, Checker};
use crate::lock::{self, LockError};
use crate::machine::{Action, Child, Event, Machine, Mode, Now, State, SupSignal, Want};
use crate::sdnotify::rt::Rt as SdRt;
use crate::svdir::{SvDir, errtext};

mod actions;
mod burst;
mod health_rt;
mod leftover;
mod monit_rt;
mod sd;
mod setup;
mod spawn;
mod stop_hook;

use leftover::stop_leftover;
use setup::{clean_stale, ensure_fifo, open_fifo, place_state};

/// Exit status of a supervisor whose essential service stopped for good (`final_exit` is in
/// `supervise/rsv-state`).
pub const EXIT_ESSENTIAL: i32 = 99;

/// Command-line options of rsupervise.
#[derive(Clone, Debug)]
pub struct Options {
    /// Program name for messages.
    pub prog: String,
    pub mode: Mode,
    /// Do not supervise `SD/log`.
    pub no_log: bool,
    /// The service directory as given.
    pub dir: String,
    /// `--held`: keep the service down at start, as if it had a `down` file (rsvscan holds
    /// a longrun of its dependency graph so until its dependencies are up).
    pub held: bool,
}

const SIGNALS: [(i32, Option<SupSignal>); 5] = [
    (libc::SIGCHLD, None),
    (libc::SIGTERM, Some(SupSignal::Term)),
    (libc::SIGHUP, Some(SupSignal::Hup)),
    (libc::SIGINT, Some(SupSignal::Int)),
    (libc::SIGQUIT, Some(SupSignal::Quit)),
];

fn fatal(prog: &str, msg: &str) -> ! {
    let _ = writeln!(io::stderr(), "{prog}: fatal: {msg}");
    std::process::exit(EXIT_SYS)
}

/// Writes a whole buffer to a raw fd, ignoring errors (async-signal-safe).
fn raw_write(fd: RawFd, b: &[u8]) {
    // SAFETY: writing from a valid buffer to a descriptor; errors ignored.
    unsafe {
        libc::write(fd, b.as_ptr().cast(), b.len());
    }
}

/// Per-service runtime state around a [`Machine`].
struct Svc {
    m: Machine,
    dir: SvDir,
    ctl: File,
    _ok: Option<File>,
    _lock: File,
    notify: Option<OwnedFd>,
    /// Last pid written to runit's `pid` file (it is rewritten only on change).
    pid_written: Option<i32>,
    /// Prepared NAME argument for s6 argv.
    name: CString,
    done: bool,
    /// What `supervise/rsv-state` last said (it is rewritten only on change).
    ext_written: Option<ExtState>,
    /// What rsv-state derives from service-dir files, read when the supervisor starts and
    /// at each start of `run` (not at every event).
    run_files: RunFiles,
    /// Health checks (`check`): idle, without timers or descriptors, when unused.
    health: HealthRt,
    /// sd_notify (`notify-socket`): `None`, one pointer, when unused.
    sd: Option<Box<SdRt>>,
    /// Guards, alerts, stop-tree ([`crate::monit`]): one empty pointer when unused.
    mon: crate::monit::Rt,
}

/// Service-dir files behind rsv-state's `ready` and `essential`.
#[derive(Clone, Copy, Default)]
struct RunFiles {
    /// Neither a usable `notification-fd` nor `check`: up is ready.
    plain: bool,
    essential: bool,
}

impl RunFiles {
    fn read(dir: &SvDir, is_log: bool) -> RunFiles {
        RunFiles {
            plain: !health::notifies(dir) && !health::has_checks(dir),
            essential: !is_log && dir.exists("essential"),
        }
    }
}

/// The runtime side of a service's health checks around a [`Checker`].
#[derive(Default)]
struct HealthRt {
    c: Checker,
    /// Read end of the running check's stdout+stderr pipe (non-blocking).
    out: Option<OwnedFd>,
    /// What the running check wrote so far (at most [`health::MAX_CAPTURE`] bytes).
    buf: Vec<u8>,
}

struct Sup {
    opts: Options,
    svcs: Vec<Svc>, // [main] or [main, log]
    /// The log pipe: (read end, write end), held for the supervisor's life.
    pipe: Option<(OwnedFd, OwnedFd)>,
    origin: Instant,
    nosetsid: bool,
    /// Starts deferred until `run` is usable (see [`crate::runwait`]).
    runwait: crate::runwait::RunWait,
    /// rsvscan's report pipe (a longrun of its dependency graph), else nothing.
    report: crate::report::Reporter,
    /// Outputs held back while a burst of control bytes is carried out (see [`burst`]).
    held: burst::Held,
}

/// What to start.
enum What {
    Run,
    Finish(String, String),
    Control(u8),
    /// `./stop` with `$MAINPID` set to this pid ([`stop_hook`]).
    Stop(i32),
    /// `./check`, with stdin on the first descriptor and stdout+stderr on the second.
    Check(RawFd, RawFd),
}

/// Runs the supervisor; returns the exit code.
pub fn run(opts: Options) -> i32 {
    let report = crate::report::Reporter::from_env();
    let prog = opts.prog.clone();
    let shown = opts.dir.clone();
    let sd = shown.trim_end_matches('/');
    let sd = if sd.is_empty() { "/" } else { sd };

    // Closed standard descriptors would be reused by our own files: reopen them on /dev/null.
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            if let Ok(f) = OpenOptions::new().read(true).write(true).open("/dev/null") {
                let raw = f.as_raw_fd();
                if raw != fd {
                    // SAFETY: dup2 onto a closed standard descriptor.
                    unsafe { libc::dup2(raw, fd) };
                } else {
                    std::mem::forget(f);
                }
            }
        }
    }

    let scan_alert = crate::monit::scan_alert(&shown);
    if let Err(e) = std::env::set_current_dir(&shown) {
        fatal(
            &prog,
            &format!("unable to change to directory {shown}: {}", errtext(&e)),
        );
    }
    let has_log = !opts.no_log && fs::metadata("log").map(|m| m.is_dir()).unwrap_or(false);

    // SAFETY: umask only changes this process's creation mask.
    let old_umask = unsafe { libc::umask(0) };
    let mut svcs = Vec::new();
    for is_log in [false, true] {
        if is_log && !has_log {
            break;
        }
        let mut dir = SvDir::new(&prog, sd, is_log, opts.mode);
        place_state(&prog, &mut dir, is_log);
        let lock_file = match lock::take_both_or_replace(&dir.path("supervise/lock")) {
            Ok(f) => f,
            Err(LockError::Busy) => fatal(
                &prog,
                &format!(
                    "unable to lock {}: another supervisor holds it",
                    dir.show("supervise/lock")
                ),
            ),
            Err(LockError::Io(e)) => fatal(
                &prog,
                &format!(
                    "unable to lock {}: {}",
                    dir.show("supervise/lock"),
                    errtext(&e)
                ),
            ),
        };
        clean_stale(&dir);
        ensure_fifo(
            &dir.path("supervise/control"),
            &dir.show("supervise/control"),
            &prog,
        );
        let ctl = open_fifo(
            &dir.path("supervise/control"),
            &dir.show("supervise/control"),
            &prog,
            true,
        );
        let ok = if opts.mode == Mode::Runit {
            ensure_fifo(&dir.path("supervise/ok"), &dir.show("supervise/ok"), &prog);
            Some(open_fifo(
                &dir.path("supervise/ok"),
                &dir.show("supervise/ok"),
                &prog,
                false,
            ))
        } else {
            None
        };
        let now = Now {
            mono_ms: 0,
            wall: SystemTime::now(),
        };
        let down = dir.exists("down") || (opts.held && !is_log);
        let name = CString::new(if is_log {
            format!("{shown}/log")
        } else {
            shown.clone()
        })
        .unwrap_or_else(|_| fatal(&prog, "service directory name contains a NUL byte"));
        let run_files = RunFiles::read(&dir, is_log);
        svcs.push(Svc {
            m: Machine::new(opts.mode, is_log, down, now),
            dir,
            ctl,
            _ok: ok,
            _lock: lock_file,
            notify: None,
            pid_written: None,
            name,
            done: false,
            ext_written: None,
            run_files,
            health: HealthRt::default(),
            sd: None,
            mon: crate::monit::Rt::new(scan_alert.clone()),
        });
    }
    // SAFETY: restores the creation mask.
    unsafe { libc::umask(old_umask) };

    let pipe = if has_log {
        match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(p) => Some(p),
            Err(e) => fatal(
                &prog,
                &format!("unable to create the log pipe: {}", e.desc()),
            ),
        }
    } else {
        None
    };

    if opts.mode == Mode::S6 {
        for s in &svcs {
            // Emptied in place, as s6-supervise does (a reader sees the old tally or none).
            let r = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(s.dir.path("supervise").join("death_tally"));
            if let Err(e) = r {
                s.dir.warn(&format!(
                    "unable to truncate {}: {}",
                    s.dir.show("supervise/death_tally"),
                    errtext(&e)
                ));
            }
        }
    }

    // Signals: SIGPIPE ignored (children get the default back); the others set a flag and
    // wake poll through a self-pipe.
    // SAFETY: setting SIGPIPE's disposition to ignore, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let (mut sig_r, sig_w) = match UnixStream::pair() {
        Ok(p) => p,
        Err(e) => fatal(
            &prog,
            &format!("unable to create the signal pipe: {}", errtext(&e)),
        ),
    };
    let _ = sig_r.set_nonblocking(true);
    let mut flags = Vec::new();
    for (sig, _) in SIGNALS {
        let flag = Arc::new(AtomicBool::new(false));
        let w = sig_w
            .try_clone()
            .unwrap_or_else(|e| fatal(&prog, &format!("unable to dup: {}", errtext(&e))));
        if signal_hook::flag::register(sig, flag.clone())
            .and_then(|_| signal_hook::low_level::pipe::register(sig, w))
            .is_err()
        {
            fatal(&prog, "unable to install signal handlers");
        }
        flags.push(flag);
    }
    drop(sig_w);

    let mut sup = Sup {
        nosetsid: fs::symlink_metadata("nosetsid").is_ok(),
        opts,
        svcs,
        pipe,
        origin: Instant::now(),
        runwait: Default::default(),
        report,
        held: Default::default(),
    };

    // A previous supervisor killed with SIGKILL may have left run (or finish) running:
    // stop it before anything is started, the service first, then its logger.
    for s in &mut sup.svcs {
        stop_leftover(s);
    }

    // Logger first, then the service.
    for i in (0..sup.svcs.len()).rev() {
        sup.feed(i, Event::Start);
    }
    // Start-up (placing the state, reading settings, the first spawn) leaves freed heap pages
    // and most of the program text mapped; this process lives as long as its service, once
    // per service, so give that back now rather than keep it resident for its whole life.
    crate::memtrim::give_back();

    loop {
        let now = sup.now().mono_ms;
        let deadline = sup
            .svcs
            .iter()
            .filter(|s| !s.done)
            .flat_map(|s| {
                let sd = s.sd.as_ref().and_then(|r| r.n.next_deadline());
                [
                    s.m.next_deadline(),
                    s.health.c.next_deadline(),
                    s.mon.next_deadline(),
                    sd,
                ]
            })
            .flatten()
            .min();
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) if d <= now => PollTimeout::ZERO,
            Some(d) => PollTimeout::try_from(d - now).unwrap_or(PollTimeout::MAX),
        };
        let n = sup.svcs.len();
        let (mut ctl_ready, mut notify_ready, mut check_ready, mut sd_ready) =
            ([false; 2], [false; 2], [false; 2], [false; 2]);
        let runwait_ready;
        {
            let mut fds = Vec::with_capacity(5);
            fds.push(PollFd::new(sig_r.as_fd(), PollFlags::POLLIN));
            for s in &sup.svcs {
                fds.push(PollFd::new(s.ctl.as_fd(), PollFlags::POLLIN));
            }
            let mut notify_idx = [None; 2];
            for (i, s) in sup.svcs.iter().enumerate() {
                if let Some(fd) = &s.notify {
                    notify_idx[i] = Some(fds.len());
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                }
            }
            let runwait_idx = sup.runwait.fd().map(|fd| {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
                fds.len() - 1
            });
            let mut check_idx = [None; 2];
            for (i, s) in sup.svcs.iter().enumerate() {
                if let Some(fd) = &s.health.out {
                    check_idx[i] = Some(fds.len());
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                }
            }
            let mut sd_idx = [None; 2];
            for (i, s) in sup.svcs.iter().enumerate() {
                if let Some(r) = &s.sd {
                    sd_idx[i] = Some(fds.len());
                    fds.push(PollFd::new(r.sock.fd.as_fd(), PollFlags::POLLIN));
                }
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => {}
                Err(e) => fatal(&sup.opts.prog, &format!("unable to poll: {}", e.desc())),
            }
            let hit = |f: &PollFd| f.revents().map(|r| !r.is_empty()).unwrap_or(false);
            runwait_ready = runwait_idx.is_some_and(|k| hit(&fds[k]));
            for i in 0..n {
                ctl_ready[i] = hit(&fds[1 + i]);
                if let Some(k) = notify_idx[i] {
                    notify_ready[i] = hit(&fds[k]);
                }
                if let Some(k) = check_idx[i] {
                    check_ready[i] = hit(&fds[k]);
                }
                if let Some(k) = sd_idx[i] {
                    sd_ready[i] = hit(&fds[k]);
                }
            }
        }
        let mut drain = [0u8; 64];
        while matches!(sig_r.read(&mut drain), Ok(k) if k > 0) {}

        // sd_notify datagrams before children: a MAINPID= sent just before `run` exited
        // must be known when its death is reaped.
        for (i, ready) in sd_ready.iter().enumerate().take(n) {
            if *ready {
                sup.read_sd(i);
            }
        }
        // Children first, so that a control letter sees the current state.
        if flags[0].swap(false, Ordering::SeqCst) {
            sup.reap();
        }
        for (k, (_, s)) in SIGNALS.iter().enumerate().skip(1) {
            if let Some(s) = s {
                if flags[k].swap(false, Ordering::SeqCst) {
                    sup.feed(0, Event::Signal(*s));
                    if matches!(s, SupSignal::Quit | SupSignal::Int) && sup.svcs[0].done {
                        // "Exit now": do not wait for the logger, which only sees EOF once
                        // the (untouched) service closes the pipe.
                        if sup.svcs.len() > 1 {
                            crate::fifodir::broadcast(&sup.svcs[1].dir.path("event"), b"x");
                        }
                        std::process::exit(0);
                    }
                }
            }
        }
        for i in 0..n {
            if ctl_ready[i] && !sup.svcs[i].done {
                sup.control_burst(i);
            }
            if notify_ready[i] {
                sup.read_notify(i);
            }
            if check_ready[i] {
                sup.read_check_output(i);
            }
        }
        if runwait_ready {
            // `run` is usable now: start it if it is still wanted (down, want up).
            for i in sup.runwait.ready() {
                let m = &sup.svcs[i].m;
                if !sup.svcs[i].done
                    && m.want == Want::Up
                    && m.state == State::Down
                    && m.child == Child::None
                {
                    sup.act(i, Action::SpawnRun);
                }
            }
        }
        let now = sup.now().mono_ms;
        for i in 0..n {
            if !sup.svcs[i].done && sup.svcs[i].m.next_deadline().is_some_and(|d| d <= now) {
                sup.feed(i, Event::Timer);
            }
            if sup.svcs[i]
                .health
                .c
                .next_deadline()
                .is_some_and(|d| d <= now)
            {
                sup.health_feed(i, health::Input::Timer);
            }
            let sd_due = sup.svcs[i].sd.as_ref().and_then(|r| r.n.next_deadline());
            if sd_due.is_some_and(|d| d <= now) {
                sup.sd_timer(i);
            }
            if sup.svcs[i].mon.next_deadline().is_some_and(|d| d <= now) {
                sup.monit_timer(i);
            }
        }
    }
}

impl Sup {
    fn now(&self) -> Now {
        Now {
            mono_ms: self.origin.elapsed().as_millis() as u64,
            wall: SystemTime::now(),
        }
    }

    fn read_notify(&mut self, i: usize) {
        let Some(fd) = &self.svcs[i].notify else {
            return;
        };
        let mut buf = [0u8; 256];
        // SAFETY: reading into a stack buffer from a descriptor we own.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r > 0 {
            if buf[..r as usize].contains(&b'\n') {
                self.feed(i, Event::Ready);
                self.health_feed(i, health::Input::Ready);
            }
        } else if r == 0 || Errno::last() != Errno::EAGAIN {
            self.svcs[i].notify = None;
        }
    }

    fn reap(&mut self) {
        loop {
            let (pid, wstat) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) => (p.as_raw(), (c & 0xff) << 8),
                Ok(WaitStatus::Signaled(p, s, core)) => {
                    (p.as_raw(), s as i32 | if core { 0x80 } else { 0 })
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            for i in 0..self.svcs.len() {
                match self.svcs[i].m.child {
                    Child::Run(p) if p == pid => {
                        if self.sd_run_died(i, pid) {
                            continue;
                        }
                        self.health_feed(i, health::Input::RunStopped);
                        self.feed(i, Event::RunDied(wstat));
                    }
                    Child::Finish(p) if p == pid => self.feed(i, Event::FinishDied(wstat)),
                    _ => {}
                }
                if self.svcs[i].health.c.check == Some(pid) {
                    self.check_reaped(i, wstat);
                }
                let now = self.now().mono_ms;
                let s = &mut self.svcs[i];
                s.mon.reaped(pid, now, &s.dir);
            }
        }
    }

    /// Steps machine `i` and carries out its actions (which may feed follow-up events).
    fn feed(&mut self, i: usize, ev: Event) {
        if self.svcs[i].done {
            return;
        }
        let now = self.now();
        if let Event::RunDied(w) = ev {
            self.monit_run_died(i, w);
        }
        // A stop on request runs the service's `stop` first (see stop_hook).
        let mut stopping = match self.svcs[i].m.child {
            Child::Run(p) if stop_hook::is_stop_request(ev, self.opts.mode) => Some(p),
            _ => None,
        };
        let actions = {
            let s = &mut self.svcs[i];
            s.m.step(ev, now, &mut s.dir)
        };
        for a in actions {
            if let Some(run) = stopping.filter(|&r| stop_hook::is_stop_signal(&a, r)) {
                stopping = None;
                let main = self.svcs[i].sd.as_ref().and_then(|r| r.n.main_pid);
                self.stop_hook(i, main.unwrap_or(run));
            }
            self.act(i, a);
        }
        self.monit_after(i, ev);
        self.stepped(i);
    }
}
