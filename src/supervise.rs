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

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode as FileMode;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::diag::EXIT_SYS;
use crate::extstate::{self, ExtState};
use crate::health::{self, Checker};
use crate::lock::{self, LockError};
use crate::machine::{Action, Child, Event, Files, Machine, Mode, Now, State, SupSignal, Want};
use crate::sdnotify::rt::Rt as SdRt;
use crate::status::{self, DEATH_LEN};
use crate::svdir::{SvDir, errtext};

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

/// Creates `path` as a directory with `mode`, following a (possibly dangling) symlink and
/// creating its target (relative to the link's directory) when missing.
fn ensure_dir_follow(path: &Path, mode: u32, fifodir: bool) -> io::Result<()> {
    let target = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            if fs::metadata(path).is_ok() {
                return Ok(());
            }
            let t = fs::read_link(path)?;
            let t = match path.parent() {
                Some(p) if t.is_relative() => p.join(t),
                _ => t,
            };
            // Unlike runsv (one level), the target's parents are created too, so that a
            // `supervise -> /run/...` link shipped in an image works on an empty tmpfs.
            if let Some(p) = t.parent() {
                let _ = fs::DirBuilder::new().recursive(true).mode(0o755).create(p);
            }
            t
        }
        _ => path.to_path_buf(),
    };
    if fifodir {
        return crate::fifodir::ensure_dir(&target);
    }
    match fs::DirBuilder::new().mode(mode).create(&target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && target.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Decides where `event/` and `supervise/` of this service live (in the service directory,
/// or in a runtime directory when it cannot hold them, see [`crate::rundir`]) and creates them.
fn place_state(prog: &str, dir: &mut SvDir, is_log: bool) {
    use crate::rundir::{Kind, lock_probeable, place, place_elsewhere};
    let base = Path::new(if is_log { "log" } else { "." });
    let mut moved = false;
    for (entry, mode, fifodir) in [("supervise", 0o700, false), ("event", 0o3730, true)] {
        let shown = dir.show(entry);
        let create = |p: &Path| {
            ensure_dir_follow(p, mode, fifodir)?;
            lock_probeable(p)
        };
        // event/ follows supervise/ into the runtime directory.
        let placed = if moved {
            place_elsewhere(base, entry, Kind::Sv, &shown, "kept with supervise", create)
        } else {
            place(base, entry, Kind::Sv, &shown, create)
        };
        match placed {
            Ok(pl) => {
                if let Some(w) = &pl.warning {
                    dir.warn(w);
                }
                if pl.relocated {
                    moved = true;
                    dir.relocate(entry, pl.path);
                }
            }
            Err(e) => fatal(prog, &format!("unable to create {shown}: {}", errtext(&e))),
        }
    }
}

/// With the lock held: removes what an unclean stop left that would get in the way
/// (`*.new` temporary files; FIFOs of another uid that we cannot open).
fn clean_stale(dir: &SvDir) {
    let sup = dir.path("supervise");
    crate::rundir::sweep_temp(&sup);
    for f in ["control", "ok"] {
        crate::rundir::replace_if_denied(&sup, f);
    }
}

/// mkfifo if missing; an existing non-FIFO is an error naming the path.
fn ensure_fifo(path: &Path, shown: &str, prog: &str) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_fifo() => {}
        Ok(_) => fatal(prog, &format!("{shown} exists but is not a fifo")),
        Err(_) => {
            if let Err(e) = nix::unistd::mkfifo(path, FileMode::from_bits_truncate(0o600)) {
                if e != Errno::EEXIST {
                    fatal(prog, &format!("unable to mkfifo {shown}: {}", e.desc()));
                }
            }
        }
    }
}

fn open_fifo(path: &Path, shown: &str, prog: &str, write: bool) -> File {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .unwrap_or_else(|e| fatal(prog, &format!("unable to open {shown}: {}", errtext(&e))))
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
}

/// What to start.
enum What {
    Run,
    Finish(String, String),
    Control(u8),
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
                let mut buf = [0u8; 64];
                let got: usize = (&sup.svcs[i].ctl).read(&mut buf).unwrap_or_default();
                for &c in &buf[..got] {
                    sup.feed(i, Event::Control(c));
                }
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

/// How long to wait after SIGKILL for a leftover process to disappear.
const LEFTOVER_KILL_WAIT_MS: u64 = 2000;
/// Bound on the wait after the down-signal when `timeout-kill` is not set.
const LEFTOVER_DEFAULT_WAIT_MS: u64 = 5000;
/// Allowed difference between a leftover's start time (whole ticks since boot, boot time in
/// whole seconds) and the status stamp.
const LEFTOVER_CLOCK_SLACK_S: f64 = 2.0;

/// Fields of `/proc/PID/stat` after the command name, starting with field 3 (state).
fn proc_stat(pid: i32) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Is `pid` gone (no such process, or a zombie waiting for its parent)?
fn proc_gone(pid: i32) -> bool {
    match proc_stat(pid) {
        None => true,
        Some(f) => matches!(f.first().map(String::as_str), Some("Z" | "X" | "x")),
    }
}

/// Start time of `pid` in seconds since the epoch, from its start in ticks after boot.
fn proc_start_unix(pid: i32) -> Option<f64> {
    let ticks: f64 = proc_stat(pid)?.get(22 - 3)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz <= 0 {
        return None;
    }
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let btime: f64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(btime + ticks / hz as f64)
}

/// The pid a previous supervisor recorded in `supervise/` (either status format, or runit's
/// `pid` file), with the status stamp in seconds since the epoch when known.
fn recorded_pid(dir: &SvDir) -> Option<(i32, Option<f64>)> {
    let sup_dir = dir.path("supervise");
    let (pid, stamp) = match status::read_status(&sup_dir) {
        Ok(st) => {
            let family = st.family();
            let (pid, stamp) = match st {
                status::AnyStatus::Runit(r) => (u64::from(r.pid), r.stamp),
                status::AnyStatus::S6(r) => (r.pid, r.stamp),
            };
            let (secs, nanos) = stamp.to_unix(family);
            (pid, Some(secs as f64 + f64::from(nanos) / 1e9))
        }
        Err(_) => {
            let text = fs::read(sup_dir.join("pid")).ok()?;
            (crate::svdir::parse_uint(&text)?, None)
        }
    };
    let pid = i32::try_from(pid).ok().filter(|&p| p > 1)?;
    Some((pid, stamp))
}

/// Stops a `run` or `finish` left running by a previous supervisor of this directory that
/// was killed without cleaning up (SIGKILL), so that the service never runs twice.
///
/// The recorded pid is acted on only if that process is alive, its working directory is
/// this service directory (a guard against pid reuse), and it did not start after the
/// recorded status stamp. It gets the down-signal (and SIGCONT), to its process group when
/// it leads one of its own, then `timeout-kill` ms (5 s when unset) to disappear, then
/// SIGKILL. It is not our child: its disappearance is watched in /proc (a zombie counts as
/// gone; its new parent, the scanner or init, reaps it).
fn stop_leftover(s: &mut Svc) {
    let Some((pid, stamp)) = recorded_pid(&s.dir) else {
        return;
    };
    if pid == std::process::id() as i32 || proc_gone(pid) {
        return;
    }
    let here = if s.m.is_log { "log" } else { "." };
    let (Ok(mine), Ok(theirs)) = (
        fs::canonicalize(here),
        fs::read_link(format!("/proc/{pid}/cwd")),
    ) else {
        return;
    };
    if mine != theirs {
        return;
    }
    if let (Some(stamp), Some(start)) = (stamp, proc_start_unix(pid)) {
        if start > stamp + LEFTOVER_CLOCK_SLACK_S {
            return;
        }
    }
    // SAFETY: getpgid/getpgrp only query process groups.
    let (pgid, ours) = unsafe { (libc::getpgid(pid), libc::getpgrp()) };
    let group = pgid == pid && pgid != ours;
    let send = |sig: i32| {
        // SAFETY: signalling the verified leftover process (or the group it leads).
        unsafe {
            if group {
                libc::killpg(pid, sig);
            } else {
                libc::kill(pid, sig);
            }
        }
    };
    let sig = s.dir.down_signal();
    s.dir.warn(&format!(
        "pid {pid} is still running from a previous supervisor: sending {} and waiting for it to exit",
        crate::sig::long_name(sig)
    ));
    send(sig);
    send(libc::SIGCONT);
    let bound = match s.dir.timeout_kill() {
        0 => LEFTOVER_DEFAULT_WAIT_MS,
        ms => ms,
    };
    if wait_gone(pid, bound) {
        return;
    }
    send(libc::SIGKILL);
    if !wait_gone(pid, LEFTOVER_KILL_WAIT_MS) {
        s.dir.warn(&format!("pid {pid} survived SIGKILL"));
    }
}

/// Polls /proc until `pid` is gone or `ms` milliseconds have passed.
fn wait_gone(pid: i32, ms: u64) -> bool {
    let end = Instant::now() + std::time::Duration::from_millis(ms);
    loop {
        if proc_gone(pid) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
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
        let actions = {
            let s = &mut self.svcs[i];
            s.m.step(ev, now, &mut s.dir)
        };
        for a in actions {
            self.act(i, a);
        }
        self.monit_after(i, ev);
        self.write_ext(i);
        if i == 0 {
            self.report.tell();
        }
    }

    /// The extended state of service `i` (`supervise/rsv-state`), composed from its machine
    /// and its service directory.
    fn ext_state(&self, i: usize) -> ExtState {
        let s = &self.svcs[i];
        let m = &s.m;
        let up = m.state == crate::machine::State::Up && !m.forced_down;
        let (next_try_ms, backoff_ms) = match m.pending_start() {
            Some((wall, backoff)) => (extstate::unix_ms(wall), backoff),
            None => (0, 0),
        };
        let mut st = ExtState {
            restarts: m.starts.saturating_sub(1),
            ready: up && (m.ready || s.run_files.plain),
            exits: m.exits.clone(),
            backoff_ms,
            next_try_ms,
            gave_up: m.gave_up,
            essential: s.run_files.essential,
            final_exit: m.final_exit,
            ..Default::default()
        };
        self.health_into(i, &mut st);
        if let Some(r) = &s.sd {
            st.sd_status = r.n.status.clone();
            st.sd_phase = r.n.phase.as_str().to_string();
            st.main_pid = r.n.main_pid.filter(|_| up).unwrap_or(0);
        }
        s.mon.ext_into(&mut st);
        st
    }

    /// Rewrites `supervise/rsv-state` of service `i` if its content changed. Not once the
    /// supervisor has been told to exit (SIGTERM, `x`): the file then keeps the service's
    /// state from before the stop (the status file has the last exit). That spares every
    /// supervisor a file creation during a shutdown, where they all run at once.
    fn write_ext(&mut self, i: usize) {
        let s = &self.svcs[i];
        if s.m.exiting() && s.ext_written.is_some() {
            return;
        }
        let st = self.ext_state(i);
        let s = &mut self.svcs[i];
        if s.ext_written.as_ref() == Some(&st) {
            return;
        }
        if let Err(e) = extstate::write(&s.dir.path("supervise"), &st) {
            s.dir.warn(&format!(
                "unable to write {}: {}",
                s.dir.show("supervise/rsv-state"),
                errtext(&e)
            ));
        }
        s.ext_written = Some(st);
    }

    fn act(&mut self, i: usize, a: Action) {
        match a {
            Action::SpawnRun => {
                // A missing, not executable or empty run: start it once it is there.
                let run = self.svcs[i].dir.path("run");
                if let Err(why) = self.runwait.gate(i, &run) {
                    if let Some(why) = why {
                        let shown = self.svcs[i].dir.show("run");
                        self.svcs[i].dir.warn(&crate::runwait::message(&shown, why));
                    }
                    return;
                }
                if self.opts.mode == Mode::Runit && self.svcs[i].dir.override_eligible(b'u') {
                    let _ = self.run_control(i, b'u');
                }
                self.sd_refresh(i);
                let now = self.now().mono_ms;
                let s = &mut self.svcs[i];
                s.mon.prepare(&mut s.dir, now);
                match self.spawn(i, What::Run) {
                    Ok(pid) => {
                        let s = &mut self.svcs[i];
                        s.run_files = RunFiles::read(&s.dir, s.m.is_log);
                        // monit first: its pgid then goes into the rsv-state write that
                        // follows RunStarted (one write per start, no spare at start-up).
                        self.monit_run_started(i, pid);
                        self.feed(i, Event::RunStarted(pid));
                        self.health_run_started(i);
                        self.sd_run_started(i);
                    }
                    Err(e) => {
                        let secs = match self.opts.mode {
                            Mode::S6 => 10,
                            Mode::Runit => 1,
                        };
                        self.svcs[i].dir.warn(&format!(
                            "unable to start run: {} \u{2014} retrying in {secs} s",
                            e.desc()
                        ));
                        self.feed(i, Event::RunFailed);
                    }
                }
            }
            Action::SpawnFinish(a1, a2) => {
                let d = &self.svcs[i].dir;
                let present = match self.opts.mode {
                    Mode::Runit => d.finish_readable(),
                    Mode::S6 => d.exists("finish"),
                };
                if !present {
                    self.feed(i, Event::NoFinish);
                    return;
                }
                match self.spawn(i, What::Finish(a1, a2)) {
                    Ok(pid) => self.feed(i, Event::FinishStarted(pid)),
                    Err(e) => {
                        self.svcs[i]
                            .dir
                            .warn(&format!("unable to spawn finish: {}", e.desc()));
                        self.feed(i, Event::FinishFailed)
                    }
                }
            }
            Action::Kill { pid, sig, group } => {
                self.sd_signal_main(i, pid, sig);
                let r = if group {
                    // SAFETY: signalling the process group led by our child.
                    unsafe { libc::killpg(pid, sig) }
                } else {
                    // SAFETY: signalling our own (not yet reaped) child.
                    unsafe { libc::kill(pid, sig) }
                };
                let _ = r;
            }
            Action::Signal { pid, letter, sig } => {
                let handled = self.svcs[i].dir.override_eligible(letter)
                    && self.run_control(i, letter) == Some(0);
                if handled {
                    if letter == b't' {
                        self.feed(i, Event::TermOverridden);
                    }
                } else {
                    self.sd_signal_main(i, pid, sig);
                    // SAFETY: signalling our own (not yet reaped) child.
                    unsafe { libc::kill(pid, sig) };
                }
            }
            Action::Custom(letter) => {
                if self.svcs[i].dir.override_eligible(letter) {
                    let _ = self.run_control(i, letter);
                }
            }
            Action::WriteStatus => self.write_status(i),
            Action::DeathTally(d) => {
                let s = &self.svcs[i];
                let max = s.dir.max_death_tally();
                let sup_dir = s.dir.path("supervise");
                let path = sup_dir.join("death_tally");
                let len = fs::metadata(&path).map(|m| m.len() as usize);
                let room = matches!(len, Ok(n) if n % DEATH_LEN == 0 && n < max * DEATH_LEN);
                let r = if room {
                    // Append the record in place. A reader sees the old or the new length
                    // (the size grows once the bytes are in), never half a record.
                    append(&path, &d.encode())
                } else {
                    let mut data = fs::read(&path).unwrap_or_default();
                    if data.len() % DEATH_LEN != 0 {
                        data.clear();
                    }
                    data.extend_from_slice(&d.encode());
                    let start = data.len().saturating_sub(max * DEATH_LEN);
                    status::write_atomic(&sup_dir, "death_tally", &data[start..], 0o644)
                };
                if let Err(e) = r {
                    s.dir.warn(&format!(
                        "unable to write {}: {}",
                        s.dir.show("supervise/death_tally"),
                        errtext(&e)
                    ));
                }
            }
            Action::Broadcast(letters) => {
                crate::fifodir::broadcast(&self.svcs[i].dir.path("event"), letters)
            }
            Action::CreateDown => {
                let d = &self.svcs[i].dir;
                if let Err(e) = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(d.path("down"))
                {
                    d.warn(&format!(
                        "unable to create {}: {}",
                        d.show("down"),
                        errtext(&e)
                    ));
                }
            }
            Action::RemoveDown => {
                let d = &self.svcs[i].dir;
                if let Err(e) = fs::remove_file(d.path("down")) {
                    if e.kind() != io::ErrorKind::NotFound {
                        d.warn(&format!(
                            "unable to remove {}: {}",
                            d.show("down"),
                            errtext(&e)
                        ));
                    }
                }
            }
            Action::CloseStdio => {
                if let Ok(f) = OpenOptions::new().read(true).write(true).open("/dev/null") {
                    // SAFETY: replacing our stdin/stdout by /dev/null.
                    unsafe {
                        libc::dup2(f.as_raw_fd(), 0);
                        libc::dup2(f.as_raw_fd(), 1);
                    }
                }
            }
            Action::CloseNotify => self.svcs[i].notify = None,
            Action::Warn(msg) => self.svcs[i].dir.warn(&msg),
            Action::Exit => {
                self.svcs[i].done = true;
                if i == 0 && self.svcs.len() > 1 && !self.svcs[1].done {
                    // The service is gone: close our pipe ends so the logger sees EOF once
                    // the service's leftovers have closed theirs, then wait for it.
                    self.pipe = None;
                    self.feed(1, Event::Shutdown);
                }
                if self.svcs.iter().all(|s| s.done) {
                    for k in 0..self.svcs.len() {
                        self.write_ext(k);
                    }
                    let now = self.now().mono_ms;
                    for s in &mut self.svcs {
                        s.mon.on_exit(now);
                    }
                    std::process::exit(if self.svcs[0].m.final_exit.is_some() {
                        EXIT_ESSENTIAL
                    } else {
                        0
                    });
                }
            }
        }
    }

    fn write_status(&mut self, i: usize) {
        let s = &mut self.svcs[i];
        let dir: PathBuf = s.dir.path("supervise");
        let r = match self.opts.mode {
            Mode::S6 => status::write_atomic(&dir, "status", &s.m.s6_status().encode(), 0o666),
            Mode::Runit => {
                // As runsv: pid, then stat, then status, so that a client that saw the new
                // status also finds the new text files.
                let st = s.m.runit_status();
                let mut r = Ok(());
                if s.pid_written != Some(st.pid as i32) {
                    r = status::write_atomic(&dir, "pid", st.pid_text().as_bytes(), 0o644);
                    s.pid_written = Some(st.pid as i32);
                }
                if r.is_ok() {
                    r = status::write_atomic(
                        &dir,
                        "stat",
                        st.stat_text(s.m.want_exit()).as_bytes(),
                        0o644,
                    );
                }
                if r.is_ok() {
                    r = status::write_atomic(&dir, "status", &st.encode(), 0o644);
                }
                r
            }
        };
        if let Err(e) = r {
            s.dir.warn(&format!(
                "unable to write {}: {}",
                s.dir.show("supervise/status"),
                errtext(&e)
            ));
        }
    }

    /// Fills the health fields of `supervise/rsv-state` for service `i`.
    fn health_into(&self, i: usize, st: &mut ExtState) {
        let c = &self.svcs[i].health.c;
        st.health = c.health;
        st.health_failures = c.failures;
        st.health_at_ms = c.at_ms;
        st.health_output = c.output.clone();
    }

    /// After a start of `run`: read the check settings (only `check` is looked at when
    /// there is none) and arm the first check.
    fn health_run_started(&mut self, i: usize) {
        let cfg = {
            let d = &mut self.svcs[i].dir;
            if health::has_checks(d) {
                let kill_ms = crate::machine::Files::timeout_kill(d);
                health::read_config(d, kill_ms)
            } else {
                None
            }
        };
        self.health_feed(i, health::Input::RunStarted(cfg));
    }

    /// Steps the checker of service `i` and carries out its outputs.
    fn health_feed(&mut self, i: usize, input: health::Input) {
        let now = self.now();
        let ctx = {
            let m = &self.svcs[i].m;
            health::Ctx {
                mono_ms: now.mono_ms,
                wall_ms: extstate::unix_ms(now.wall),
                active: m.state == crate::machine::State::Up && !m.forced_down && !m.paused,
                want_up: m.want == crate::machine::Want::Up,
            }
        };
        let before = self.svcs[i].health.c.health;
        let outputs = self.svcs[i].health.c.step(input, ctx);
        let s = &mut self.svcs[i];
        if s.health.c.health != before {
            let c = &s.health.c;
            s.mon
                .health_changed(before, c.health, &c.output, now.mono_ms, &s.dir);
        }
        for o in outputs {
            match o {
                health::Output::SpawnCheck => self.spawn_check(i),
                health::Output::KillCheck(pid) => {
                    // SAFETY: signalling the process group our check child leads (setsid).
                    unsafe { libc::killpg(pid, libc::SIGKILL) };
                }
                health::Output::Ready => self.feed(i, Event::Ready),
                health::Output::Restart | health::Output::KillRun => {
                    if let Child::Run(pid) = self.svcs[i].m.child {
                        let sig = if o == health::Output::Restart {
                            crate::machine::Files::down_signal(&mut self.svcs[i].dir)
                        } else {
                            libc::SIGKILL
                        };
                        // SAFETY: signalling our own (not yet reaped) run child.
                        unsafe {
                            libc::kill(pid, sig);
                            libc::kill(pid, libc::SIGCONT);
                        }
                    }
                }
                health::Output::Changed => {
                    self.write_ext(i);
                    if i == 0 {
                        self.report.tell();
                    }
                }
                health::Output::Warn(msg) => self.svcs[i].dir.warn(&msg),
            }
        }
    }

    /// Starts `./check` for service `i` with stdin on /dev/null and stdout+stderr on a pipe.
    fn spawn_check(&mut self, i: usize) {
        let pipe = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from);
        let null = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/null");
        let (r, w, null) = match (pipe, null) {
            (Ok((r, w)), Ok(null)) => (r, w, null),
            (Err(e), _) | (_, Err(e)) => {
                let msg = format!("unable to start check: {}", errtext(&e));
                return self.health_feed(i, health::Input::CheckNotStarted(msg));
            }
        };
        match self.spawn(i, What::Check(null.as_raw_fd(), w.as_raw_fd())) {
            Ok(pid) => {
                let _ = nix::fcntl::fcntl(
                    &r,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                let h = &mut self.svcs[i].health;
                h.out = Some(r);
                h.buf.clear();
                self.health_feed(i, health::Input::CheckStarted(pid));
            }
            Err(e) => {
                let msg = format!("unable to start check: {}", e.desc());
                self.health_feed(i, health::Input::CheckNotStarted(msg));
            }
        }
    }

    /// Reads what the running check wrote (keeping at most [`health::MAX_CAPTURE`] bytes);
    /// closes the pipe at end of file.
    fn read_check_output(&mut self, i: usize) {
        let h = &mut self.svcs[i].health;
        let Some(fd) = &h.out else { return };
        let mut buf = [0u8; 1024];
        loop {
            // SAFETY: reading into a stack buffer from a descriptor we own.
            let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r > 0 {
                let room = health::MAX_CAPTURE.saturating_sub(h.buf.len());
                h.buf.extend_from_slice(&buf[..(r as usize).min(room)]);
            } else if r < 0 && Errno::last() == Errno::EINTR {
                continue;
            } else {
                if r == 0 || Errno::last() != Errno::EAGAIN {
                    h.out = None;
                }
                return;
            }
        }
    }

    /// The check of service `i` was reaped: collect what is left of its output and feed the
    /// result.
    fn check_reaped(&mut self, i: usize, wstat: i32) {
        self.read_check_output(i);
        let h = &mut self.svcs[i].health;
        h.out = None;
        let output = std::mem::take(&mut h.buf);
        let ended = status::Ended::from_wstat(wstat);
        self.health_feed(i, health::Input::CheckEnded { ended, output });
    }

    /// [`crate::monit`]: `run` of service `i` started as `pid`. Called just before the machine
    /// hears of it, whose event writes rsv-state (with monit's fields) once.
    fn monit_run_started(&mut self, i: usize, pid: i32) {
        let now = self.now().mono_ms;
        let leader =
            (self.opts.mode == Mode::S6 && !self.nosetsid) || self.svcs[i].mon.run_extras().1;
        let s = &mut self.svcs[i];
        s.mon.run_started(pid, leader, now, &s.dir);
    }

    /// [`crate::monit`]: `run` of service `i` was reaped (before the machine hears of it).
    fn monit_run_died(&mut self, i: usize, wstat: i32) {
        let now = self.now().mono_ms;
        let mut known: Vec<i32> = Vec::new();
        for s in &self.svcs {
            if let Child::Run(p) | Child::Finish(p) = s.m.child {
                known.push(p);
            }
            known.extend(s.health.c.check);
            known.extend(s.mon.alert_pid());
        }
        let s = &mut self.svcs[i];
        s.mon.run_died(wstat, now, &s.dir, &known);
    }

    /// [`crate::monit`]: after the machine took event `ev`.
    fn monit_after(&mut self, i: usize, ev: Event) {
        if let Event::RunDied(_) = ev {
            let now = self.now().mono_ms;
            let s = &mut self.svcs[i];
            let backoff = s.m.pending_start().map(|(_, b)| b);
            s.mon.after_death(backoff, s.m.gave_up, now, &s.dir);
        }
    }

    /// [`crate::monit`]: one of its deadlines passed.
    fn monit_timer(&mut self, i: usize) {
        let now = self.now().mono_ms;
        let s = &mut self.svcs[i];
        let m = &s.m;
        let active = m.state == crate::machine::State::Up
            && !m.forced_down
            && !m.paused
            && m.want == crate::machine::Want::Up;
        let (changed, ask) = s.mon.timer(now, active, &s.dir);
        if let (Some(ask), Child::Run(pid)) = (ask, s.m.child) {
            let sig = match ask {
                crate::monit::Ask::Restart => crate::machine::Files::down_signal(&mut s.dir),
                crate::monit::Ask::KillRun => libc::SIGKILL,
            };
            // SAFETY: signalling our own (not yet reaped) run child.
            unsafe {
                libc::kill(pid, sig);
                libc::kill(pid, libc::SIGCONT);
            }
        }
        if changed {
            self.write_ext(i);
        }
    }

    /// Runs `control/<letter>` synchronously (runit); returns its exit code.
    fn run_control(&mut self, i: usize, letter: u8) -> Option<i32> {
        let pid = self.spawn(i, What::Control(letter)).ok()?;
        loop {
            match waitpid(Pid::from_raw(pid), None) {
                Ok(WaitStatus::Exited(_, c)) => return Some(c),
                Ok(WaitStatus::Signaled(..)) => return Some(-1),
                Err(Errno::EINTR) => continue,
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Forks and execs run, finish or a control script for service `i`.
    /// Returns the pid once exec succeeded; on exec failure the child is reaped and the
    /// errno returned.
    fn spawn(&mut self, i: usize, what: What) -> Result<i32, Errno> {
        let mode = self.opts.mode;
        let s = &self.svcs[i];
        let is_log = s.m.is_log;
        let cstr = |x: &str| CString::new(x).map_err(|_| Errno::EINVAL);
        let (path, argv): (CString, Vec<CString>) = match &what {
            What::Run => match mode {
                Mode::Runit => (cstr("./run")?, vec![cstr("./run")?]),
                Mode::S6 => (cstr("./run")?, vec![cstr("run")?, s.name.clone()]),
            },
            What::Finish(a1, a2) => match mode {
                Mode::Runit => (
                    cstr("./finish")?,
                    vec![cstr("./finish")?, cstr(a1)?, cstr(a2)?],
                ),
                Mode::S6 => (
                    cstr("./finish")?,
                    vec![cstr("finish")?, cstr(a1)?, cstr(a2)?, s.name.clone()],
                ),
            },
            What::Control(c) => {
                let p = format!("control/{}", *c as char);
                (cstr(&p)?, vec![cstr(&p)?])
            }
            What::Check(..) => (cstr("./check")?, vec![cstr("./check")?]),
        };
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let chdir_log = if is_log { Some(cstr("log")?) } else { None };
        // run, finish and check get $RSV_ENVDIR and env/ applied (read fresh, before the fork).
        let mut envp: Option<Vec<CString>> = match &what {
            What::Control(_) => None,
            _ => crate::svenv::for_start(&s.dir).map_err(|e| {
                s.dir.warn(&e.msg);
                Errno::from_raw(e.errno)
            })?,
        };
        if let (What::Run, Some(r)) = (&what, &s.sd) {
            let vars = r.env(crate::sdnotify::rt::watchdog_usec(&s.dir));
            envp = Some(crate::sdnotify::rt::with_vars(envp, &vars));
        }
        let envp_ptrs: Option<Vec<*const libc::c_char>> = envp.as_ref().map(|v| {
            let mut p: Vec<*const libc::c_char> = v.iter().map(|c| c.as_ptr()).collect();
            p.push(std::ptr::null());
            p
        });

        // Descriptor plan: fd 0 (logger: pipe read end), fd 1 (service: pipe write end),
        // fd N (run: readiness pipe write end).
        let (mut stdin_fd, mut stdout_fd, mut stderr_fd) = match &self.pipe {
            Some((r, w)) => {
                if is_log {
                    (Some(r.as_raw_fd()), None, None)
                } else {
                    (None, Some(w.as_raw_fd()), None)
                }
            }
            None => (None, None, None),
        };
        if let What::Check(null, out) = what {
            (stdin_fd, stdout_fd, stderr_fd) = (Some(null), Some(out), Some(out));
        }
        let mut notify: Option<(OwnedFd, OwnedFd, i32)> = None;
        if matches!(what, What::Run) {
            if let Some(n) = s.dir.notification_fd() {
                let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
                notify = Some((r, w, n));
            }
        }
        let notify_w = notify.as_ref().map(|(_, w, n)| (w.as_raw_fd(), *n));
        // Built-in probes run in the check child itself (cloned before the fork).
        let probes = match what {
            What::Check(..) => self.svcs[i].health.c.probes().cloned(),
            _ => None,
        };
        // stop-tree: run leads its own group and joins the service's cgroup.
        let (cgroup_procs, run_setsid) = match what {
            What::Run => self.svcs[i].mon.run_extras(),
            _ => (None, false),
        };
        // A check leads its own process group, so that a timeout kills all of it.
        let setsid = matches!(what, What::Check(..))
            || run_setsid
            || (mode == Mode::S6 && !self.nosetsid && !matches!(what, What::Control(_)));
        let (hs_r, hs_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;

        // Block every signal across the fork: a signal that reaches the child before exec
        // must not run our handlers there; the child resets the dispositions, then unblocks.
        // SAFETY: sigprocmask with valid, initialised sets.
        let mut old_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::sigprocmask(libc::SIG_BLOCK, &all, &mut old_mask);
        }
        let restore = |old: &libc::sigset_t| {
            // SAFETY: restoring the mask saved above.
            unsafe { libc::sigprocmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
        };
        // SAFETY: the process is single-threaded (signal-hook's handlers run in the signal
        // context, no helper thread), and the child only makes async-signal-safe calls on
        // data prepared above before it execs or _exits.
        let forked = unsafe { nix::unistd::fork() };
        if forked.is_err() {
            restore(&old_mask);
        }
        match forked? {
            nix::unistd::ForkResult::Child => {
                // SAFETY: async-signal-safe libc calls only; every pointer is valid.
                unsafe {
                    for sig in [
                        libc::SIGPIPE,
                        libc::SIGCHLD,
                        libc::SIGTERM,
                        libc::SIGHUP,
                        libc::SIGINT,
                        libc::SIGQUIT,
                    ] {
                        libc::signal(sig, libc::SIG_DFL);
                    }
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                    if setsid {
                        libc::setsid();
                    }
                    if let Some(p) = &cgroup_procs {
                        let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                        if fd >= 0 {
                            raw_write(fd, b"0");
                            libc::close(fd);
                        }
                    }
                    let hs = hs_w.as_raw_fd();
                    let fail = |hs: RawFd| -> ! {
                        let e = *libc::__errno_location();
                        raw_write(hs, &e.to_ne_bytes());
                        libc::_exit(127)
                    };
                    if let Some(d) = &chdir_log {
                        if libc::chdir(d.as_ptr()) == -1 {
                            fail(hs);
                        }
                    }
                    if let Some(fd) = stdin_fd {
                        if libc::dup2(fd, 0) == -1 {
                            fail(hs);
                        }
                    }
                    if let Some(fd) = stdout_fd {
                        if libc::dup2(fd, 1) == -1 {
                            fail(hs);
                        }
                    }
                    if let Some(fd) = stderr_fd {
                        if libc::dup2(fd, 2) == -1 {
                            fail(hs);
                        }
                    }
                    if let Some((w, n)) = notify_w {
                        if w == n {
                            libc::fcntl(w, libc::F_SETFD, 0);
                        } else if libc::dup2(w, n) == -1 {
                            fail(hs);
                        }
                    }
                    if let Some(p) = &probes {
                        // Not exec'ing at once: release the supervisor from the handshake.
                        libc::close(hs);
                        crate::probe::child(p);
                    }
                    match &envp_ptrs {
                        Some(e) => libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), e.as_ptr()),
                        None => libc::execv(path.as_ptr(), argv_ptrs.as_ptr()),
                    };
                    fail(hs)
                }
            }
            nix::unistd::ForkResult::Parent { child } => {
                restore(&old_mask);
                drop(hs_w);
                let mut b = [0u8; 4];
                let mut f = File::from(hs_r);
                let got = loop {
                    match f.read(&mut b) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Ok(n) => break n,
                        Err(_) => break 0,
                    }
                };
                if got == 4 {
                    let e = Errno::from_raw(i32::from_ne_bytes(b));
                    if !matches!(what, What::Finish(..)) {
                        // Reap it now so that the loop never sees this pid.
                        let _ = waitpid(child, None);
                        return Err(e);
                    }
                    // A finish that cannot exec exits 127, as s6's does; it is reaped as
                    // usual.
                }
                if let Some((r, _w, _)) = notify {
                    let _ = nix::fcntl::fcntl(
                        &r,
                        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                    );
                    self.svcs[i].notify = Some(r);
                }
                Ok(child.as_raw())
            }
        }
    }
}

/// Appends `data` to the existing file `path` in one write.
fn append(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().append(true).open(path)?;
    f.write_all(data)
}

/// sd_notify (`notify-socket`, see [`crate::sdnotify`]): the supervisor's side.
impl Sup {
    /// At a start of `run`: bind, rebind or drop the socket as `notify-socket` now says.
    fn sd_refresh(&mut self, i: usize) {
        let s = &mut self.svcs[i];
        let tag = if s.m.is_log { "log" } else { "main" };
        SdRt::refresh(&mut s.sd, &s.dir, tag);
    }

    /// The supervisor's children other than service `i`'s run.
    fn sd_others(&self, i: usize) -> Vec<i32> {
        let mut v = Vec::new();
        for (k, s) in self.svcs.iter().enumerate() {
            if k != i && s.m.pid() != 0 {
                v.push(s.m.pid());
            }
            v.extend(s.health.c.check);
        }
        v
    }

    fn sd_run_started(&mut self, i: usize) {
        let now = self.now().mono_ms;
        let s = &mut self.svcs[i];
        let Some(r) = &mut s.sd else { return };
        let usec = crate::sdnotify::rt::watchdog_usec(&s.dir);
        let out = r.run_started(usec, now);
        self.sd_outputs(i, out);
    }

    fn read_sd(&mut self, i: usize) {
        let run = match self.svcs[i].m.child {
            Child::Run(p) => Some(p),
            _ => None,
        };
        let others = self.sd_others(i);
        let now = self.now().mono_ms;
        let Some(r) = &mut self.svcs[i].sd else {
            return;
        };
        let out = r.read(run, &others, now);
        self.sd_outputs(i, out);
    }

    fn sd_timer(&mut self, i: usize) {
        let now = self.now().mono_ms;
        let Some(r) = &mut self.svcs[i].sd else {
            return;
        };
        let out = r.n.step(crate::sdnotify::Input::Timer, now);
        self.sd_outputs(i, out);
    }

    fn sd_outputs(&mut self, i: usize, out: Vec<crate::sdnotify::Output>) {
        use crate::sdnotify::Output;
        for o in out {
            match o {
                Output::Ready => {
                    self.feed(i, Event::Ready);
                    self.health_feed(i, health::Input::Ready);
                }
                Output::WatchdogRestart(msg) => {
                    self.svcs[i].dir.warn(&msg);
                    if let Child::Run(pid) = self.svcs[i].m.child {
                        let sig = crate::machine::Files::down_signal(&mut self.svcs[i].dir);
                        self.sd_signal_main(i, pid, sig);
                        // SAFETY: signalling our own (not yet reaped) run child.
                        unsafe {
                            libc::kill(pid, sig);
                            libc::kill(pid, libc::SIGCONT);
                        }
                    }
                }
                Output::Changed => self.write_ext(i),
                Output::Warn(msg) => self.svcs[i].dir.warn(&msg),
            }
        }
    }

    /// `run` (pid) of service `i` was reaped. Returns true when its `MAINPID=` lives on as
    /// our child and has become the service's process (the death is then not the service's).
    fn sd_run_died(&mut self, i: usize, pid: i32) -> bool {
        if self.svcs[i].sd.is_none() {
            return false;
        }
        self.read_sd(i);
        let now = self.now().mono_ms;
        let me = std::process::id() as i32;
        let main = self.svcs[i].sd.as_ref().and_then(|r| r.n.main_pid);
        if let Some(main) = main.filter(|&m| m != pid) {
            if crate::sdnotify::socket::parent_of(main) == Some(me) {
                let actions = self.svcs[i].m.follow_main(main);
                for a in actions {
                    self.act(i, a);
                }
                self.write_ext(i);
                return true;
            }
        }
        let Some(r) = &mut self.svcs[i].sd else {
            return false;
        };
        let out = r.n.step(crate::sdnotify::Input::RunStopped, now);
        self.sd_outputs(i, out);
        false
    }

    /// A signal for `run` (pid) also goes to the main process it named, when that differs.
    fn sd_signal_main(&self, i: usize, pid: i32, sig: i32) {
        let Some(r) = &self.svcs[i].sd else { return };
        if let Some(main) = r.n.main_pid.filter(|&m| m != pid) {
            // SAFETY: signalling a process checked to be of this service when it was named.
            unsafe { libc::kill(main, sig) };
        }
    }
}
