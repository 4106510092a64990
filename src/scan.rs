//! rsvscan: the scanner. Runs one `rsupervise` per service directory of a scan directory and
//! is fit to be PID 1 of a container (reaps every child, survives stray signals, stops
//! everything in order on SIGTERM/SIGINT within a global bound).
//!
//! Pick-up is event-driven: inotify on the scan directory (and on candidate directories that
//! still lack `run`), so a new or removed entry is acted on at once; `-t` adds a periodic
//! rescan as a safety net. While nothing happens the loop sleeps in poll(2) with no timeout.
//!
//! Log pipelines are owned by each `rsupervise` (runsv style), so the scanner holds no pipes,
//! except with `--prefix`, where it copies the output of services without `log/` ([`logmux`]).
//! The decisions (what to start, stop, forget) are made by the pure functions of [`plan`].

pub mod leftovers;
pub mod logmux;
pub mod main_cmd;
pub mod plan;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use inotify::{Inotify, WatchDescriptor, WatchMask};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::diag::EXIT_SYS;
use crate::lock::{self, LockError};
use crate::machine::Mode;
use crate::status::{self, AnyStatus};
use crate::svdir::errtext;
use crate::tai::{Family, Tai64N};
use plan::{Act, AfterDeath, Id, Known, Seen};

/// Exit status when the shutdown bound (`-T`) expired and what still ran was SIGKILLed.
pub const EXIT_KILLED: i32 = 1;

/// Control directory, lock and FIFO (the same paths as s6-svscan's, in both modes).
pub const CTL_DIR: &str = ".s6-svscan";

/// Options of rsvscan.
#[derive(Clone, Debug)]
pub struct Options {
    /// Program name for messages.
    pub prog: String,
    pub mode: Mode,
    /// The scan directory as given.
    pub dir: String,
    /// The supervisor program (default: `rsupervise` next to our executable, else $PATH).
    pub supervisor: Option<PathBuf>,
    /// Periodic rescan interval, 0 = none.
    pub rescan_ms: u64,
    /// Global shutdown bound.
    pub bound_ms: u64,
    /// Maximum number of services.
    pub capacity: usize,
    /// Start each supervisor in its own session (runsvdir's `-P`).
    pub setsid: bool,
    /// runsvdir's LOG argument (process-title error area).
    pub log: Option<String>,
    /// s6-svscan's `-d`: write a newline there once the control FIFO is ready.
    pub notif_fd: Option<i32>,
    /// `-- CMD [ARGS...]`: the main command (with an empty `dir`: plain init).
    pub main_cmd: Option<Vec<OsString>>,
    /// `--wait-ready MS`: start CMD only once every service is ready, within MS.
    pub wait_ready_ms: Option<u64>,
    /// `--prefix`: copy the output of services without `log/` as `NAME | line`.
    pub prefix: bool,
    /// `--init PROG`: programs run in order before any service starts.
    pub init: Vec<PathBuf>,
}

impl Options {
    pub fn new(prog: &str, mode: Mode, dir: &str) -> Options {
        Options {
            prog: prog.to_string(),
            mode,
            dir: dir.to_string(),
            supervisor: None,
            rescan_ms: 0,
            bound_ms: 8000,
            capacity: 1000,
            setsid: false,
            log: None,
            notif_fd: None,
            main_cmd: None,
            wait_ready_ms: None,
            prefix: false,
            init: Vec::new(),
        }
    }
}

use crate::proctitle::{self, Title};

/// Signals caught. Those without a meaning are caught only so that they cannot kill us
/// (as PID 1 or not); a caught signal is reset to its default in the programs we exec.
const CAUGHT: [i32; 20] = [
    libc::SIGCHLD,
    libc::SIGALRM,
    libc::SIGABRT,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPWR,
    libc::SIGWINCH,
    libc::SIGPIPE,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

struct Svc {
    name: String,
    pid: Option<i32>,
    active: bool,
    termed: bool,
    started: Instant,
    /// The running supervisor replaced one that had died.
    restarted: bool,
    restart_at: Option<Instant>,
}

struct Stopping {
    code: i32,
    deadline: Instant,
    abort: bool,
    killed: Option<Instant>,
    /// Leftover processes (orphans of services, reparented to us) were sent SIGTERM.
    orphans_termed: bool,
    /// Leftovers signalled while supervisors were still stopping (see `leftovers`).
    leftovers: leftovers::Leftovers,
}

struct Scanner {
    opts: Options,
    sup_path: PathBuf,
    svcs: BTreeMap<Id, Svc>,
    by_pid: HashMap<i32, Id>,
    /// name -> signature of the last reported problem (reported once until it changes).
    problems: HashMap<String, String>,
    /// Candidate directories (no `run` yet) watched for a `run` to appear.
    watched: HashMap<Id, WatchDescriptor>,
    inotify: Inotify,
    ctl: File,
    _ctl_w: File,
    _lock: File,
    sig_r: UnixStream,
    flags: Vec<(i32, Arc<AtomicBool>)>,
    log_r: Option<File>,
    title: Option<Title>,
    next_rescan: Option<Instant>,
    need_scan: bool,
    /// A scan ran since memory was last trimmed (see `main_loop`).
    trim_due: bool,
    stop: Option<Stopping>,
    /// The main command (`-- CMD`), if any.
    main: Option<main_cmd::MainCmd>,
    /// Exit code decided by the main command or an essential service (first one wins).
    decided: Option<i32>,
    /// `--prefix`: the services' prefix pipes (None without the option: no cost).
    mux: Option<logmux::LogMux>,
}

fn fatal(prog: &str, msg: &str) -> ! {
    crate::diag::fatal(prog, EXIT_SYS, msg)
}

/// The supervisor program: `rsupervise` in our own executable's directory, else our own
/// executable when it is the multi-call binary (started as `rsupervise` through argv[0]),
/// else `rsupervise` looked up through $PATH.
fn default_supervisor() -> PathBuf {
    if let Ok(exe) = fs::read_link("/proc/self/exe") {
        if let Some(d) = exe.parent() {
            let p = d.join("rsupervise");
            if p.is_file() {
                return p;
            }
        }
        if crate::multicall::active() {
            return exe;
        }
    }
    PathBuf::from("rsupervise")
}

/// Runs the scanner; returns the exit code (or never returns when it execs `finish`).
pub fn run(mut opts: Options) -> i32 {
    if opts.main_cmd.is_some() && opts.dir.is_empty() {
        return main_cmd::plain_init(opts);
    }
    // Messages name entries as DIR/NAME: `scan/` given on the command line must not
    // give `scan//NAME`.
    let trimmed = opts.dir.trim_end_matches('/');
    if !trimmed.is_empty() {
        opts.dir = trimmed.to_string();
    }
    let prog = opts.prog.clone();
    let shown = opts.dir.clone();
    let main = opts
        .main_cmd
        .clone()
        .map(|argv| main_cmd::MainCmd::new(argv, std::env::current_dir().ok(), opts.wait_ready_ms));
    if let Err(e) = std::env::set_current_dir(&opts.dir) {
        fatal(
            &prog,
            &format!("unable to chdir to {shown}: {}", errtext(&e)),
        );
    }
    if let Err(e) = fs::read_dir(".") {
        fatal(&prog, &format!("unable to read {shown}: {}", errtext(&e)));
    }
    let (ctl_dir, ctl_shown) = place_ctl_dir(&prog, &shown);
    let lock = match lock::take_both_or_replace(&ctl_dir.join("lock")) {
        Ok(f) => f,
        Err(LockError::Busy) => fatal(
            &prog,
            &format!("unable to lock {ctl_shown}/lock: another scanner holds it"),
        ),
        Err(LockError::Io(e)) => fatal(
            &prog,
            &format!("unable to lock {ctl_shown}/lock: {}", errtext(&e)),
        ),
    };
    crate::rundir::replace_if_denied(&ctl_dir, "control");
    let ctlp = ctl_dir.join("control");
    match fs::symlink_metadata(&ctlp) {
        Ok(m) if m.file_type().is_fifo() => {}
        _ => {
            let _ = fs::remove_file(&ctlp);
            if let Err(e) =
                nix::unistd::mkfifo(&ctlp, nix::sys::stat::Mode::from_bits_truncate(0o600))
            {
                fatal(
                    &prog,
                    &format!("unable to mkfifo {ctl_shown}/control: {}", e.desc()),
                );
            }
        }
    }
    let open_ctl = |write: bool| {
        OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&ctlp)
            .unwrap_or_else(|e| {
                fatal(
                    &prog,
                    &format!("unable to open {ctl_shown}/control: {}", errtext(&e)),
                )
            })
    };
    let ctl = open_ctl(false);
    let ctl_w = open_ctl(true);

    // Orphans of services must come to us even when we are not PID 1.
    if nix::unistd::getpid().as_raw() != 1 {
        // SAFETY: prctl with integer arguments only.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
    }

    let (sig_r, sig_w) = UnixStream::pair()
        .unwrap_or_else(|e| fatal(&prog, &format!("unable to create a socket pair: {e}")));
    let _ = sig_r.set_nonblocking(true);
    let _ = sig_w.set_nonblocking(true);
    let mut flags = Vec::new();
    for sig in CAUGHT {
        let flag = Arc::new(AtomicBool::new(false));
        let w = match sig_w.try_clone() {
            Ok(w) => w,
            Err(e) => fatal(&prog, &format!("unable to set up signals: {e}")),
        };
        if signal_hook::flag::register(sig, flag.clone())
            .and_then(|_| signal_hook::low_level::pipe::register(sig, w))
            .is_err()
        {
            fatal(&prog, &format!("unable to catch signal {sig}"));
        }
        flags.push((sig, flag));
    }

    let inotify =
        Inotify::init().unwrap_or_else(|e| fatal(&prog, &format!("unable to init inotify: {e}")));
    if let Err(e) = inotify.watches().add(
        ".",
        WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::MOVED_FROM
            | WatchMask::MOVED_TO
            | WatchMask::ATTRIB
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF,
    ) {
        fatal(&prog, &format!("unable to watch {shown}: {e}"));
    }

    // runsvdir's LOG: our fd 2 (inherited by every supervisor and service) becomes a pipe
    // we read; what arrives goes to the process title.
    let mut log_r = None;
    let mut title = None;
    if let Some(log) = &opts.log {
        if log.len() < proctitle::MIN_LEN {
            let _ = writeln!(io::stderr(), "{prog}: {}", proctitle::WARN_SHORT);
            let _ = writeln!(io::stderr(), "{prog}: {}", proctitle::WARN_DISABLED);
        } else if let Ok((r, w)) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
        {
            // SAFETY: dup2 onto fd 2 of descriptors we own; fd 2 is then a copy without
            // close-on-exec, which is what the children must inherit.
            unsafe {
                libc::dup2(w.as_raw_fd(), 2);
            }
            drop(w);
            log_r = Some(File::from(r));
            title = Title::init(proctitle::MIN_LEN);
        }
    }

    if let Some(fd) = opts.notif_fd {
        // SAFETY: the user handed us this descriptor (-d) to be written once and closed.
        let mut f = unsafe { File::from_raw_fd(fd) };
        let _ = f.write_all(b"\n");
    }

    export_envdir(&prog, &shown, &ctl_dir);
    run_init_steps(&prog, &opts.init, &sig_r, &flags);

    let sup_path = opts.supervisor.clone().unwrap_or_else(default_supervisor);
    let next_rescan =
        (opts.rescan_ms > 0).then(|| Instant::now() + Duration::from_millis(opts.rescan_ms));
    let mut s = Scanner {
        opts,
        sup_path,
        svcs: BTreeMap::new(),
        by_pid: HashMap::new(),
        problems: HashMap::new(),
        watched: HashMap::new(),
        inotify,
        ctl,
        _ctl_w: ctl_w,
        _lock: lock,
        sig_r,
        flags,
        log_r,
        title,
        next_rescan,
        need_scan: true,
        trim_due: true,
        stop: None,
        main,
        decided: None,
        mux: None,
    };
    if s.opts.prefix {
        s.mux = Some(logmux::LogMux::new());
    }
    s.main_loop()
}

/// The container-wide envdir rsvscan creates when `$RSV_ENVDIR` is not set: `env` in the
/// scanner's control directory (`.s6-svscan` of the scan directory, relative to it, or its
/// runtime-directory replacement when the scan directory is read-only).
pub fn container_envdir(ctl_dir: &Path) -> PathBuf {
    ctl_dir.join("env")
}

/// Unless `$RSV_ENVDIR` is set already: creates [`container_envdir`] (mode 0755) and exports
/// its absolute path as `$RSV_ENVDIR` to every child. A failure is one warning; services
/// then run without a container-wide envdir.
fn export_envdir(prog: &str, shown: &str, ctl_dir: &Path) {
    if std::env::var_os(crate::svenv::VAR).is_some() {
        return;
    }
    let rel = container_envdir(ctl_dir);
    let made = match fs::DirBuilder::new().mode(0o755).create(&rel) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && rel.is_dir() => Ok(()),
        Err(e) => Err(e),
    };
    let abs = made.and_then(|()| std::env::current_dir().map(|d| d.join(&rel)));
    match abs {
        // SAFETY: rsvscan is single-threaded (signal-hook's flag and pipe handlers start no
        // thread), so nothing reads the environment concurrently.
        Ok(p) => unsafe { std::env::set_var(crate::svenv::VAR, p) },
        Err(e) => crate::diag::warn(
            prog,
            &format!(
                "unable to mkdir {}: {}",
                if rel.is_absolute() {
                    rel.display().to_string()
                } else {
                    format!("{shown}/{}", rel.display())
                },
                errtext(&e)
            ),
        ),
    }
}

/// `--init PROG`: runs each step in order (in the scan directory, stdio inherited, with
/// `$RSV_ENVDIR` set) before any service starts. A step that fails ends rsvscan with its exit
/// code (128+N when killed by signal N; 111 when it cannot be run), before any service starts.
/// SIGTERM, SIGINT or SIGQUIT received meanwhile is passed on to the running step (and, left
/// pending, stops rsvscan afterwards).
fn run_init_steps(
    prog: &str,
    steps: &[PathBuf],
    sig_r: &UnixStream,
    flags: &[(i32, Arc<AtomicBool>)],
) {
    for step in steps {
        let status = Command::new(step).spawn().and_then(|mut child| {
            let mut passed_on = false;
            loop {
                if let Some(st) = child.try_wait()? {
                    return Ok(st);
                }
                let stop = flags.iter().any(|(sig, f)| {
                    matches!(*sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
                        && f.load(Ordering::SeqCst)
                });
                if stop && !passed_on {
                    passed_on = true;
                    // SAFETY: kill(2) on our own child, not yet reaped.
                    unsafe {
                        libc::kill(child.id() as i32, libc::SIGTERM);
                    }
                }
                // SIGCHLD (like every caught signal) wakes us through the self-pipe.
                let mut fds = [PollFd::new(
                    std::os::fd::AsFd::as_fd(sig_r),
                    PollFlags::POLLIN,
                )];
                let _ = poll(&mut fds, PollTimeout::from(1000u16));
                let mut b = [0u8; 64];
                while matches!((&*sig_r).read(&mut b), Ok(n) if n > 0) {}
            }
        });
        let code = match status {
            Ok(st) if st.success() => continue,
            Ok(st) => {
                use std::os::unix::process::ExitStatusExt;
                st.code()
                    .or_else(|| st.signal().map(|n| 128 + n))
                    .unwrap_or(EXIT_SYS)
            }
            Err(e) => fatal(
                prog,
                &format!(
                    "unable to run init step {}: {}",
                    step.display(),
                    errtext(&e)
                ),
            ),
        };
        crate::diag::fatal(
            prog,
            code,
            &format!(
                "init step {} failed (exit code {code}): no service started",
                step.display()
            ),
        );
    }
}

/// Where the scanner's lock and control FIFO live: `DIR/.s6-svscan`, or a runtime directory
/// when the scan directory cannot hold them (see [`crate::rundir`]). Hook scripts
/// (`finish`, `crash`, `SIG*`) are always read from `DIR/.s6-svscan`. Returns the directory
/// and how messages name it.
fn place_ctl_dir(prog: &str, shown: &str) -> (PathBuf, String) {
    let usual = format!("{}/{CTL_DIR}", shown.trim_end_matches('/'));
    let placed = crate::rundir::place(
        Path::new("."),
        CTL_DIR,
        crate::rundir::Kind::Scan,
        &usual,
        |p| {
            match fs::DirBuilder::new().mode(0o700).create(p) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => {}
                r => r?,
            }
            crate::rundir::lock_probeable(p)
        },
    );
    match placed {
        Ok(pl) => {
            if let Some(w) = &pl.warning {
                crate::diag::warn(prog, w);
            }
            if pl.relocated {
                let s = pl.path.display().to_string();
                (pl.path, s)
            } else {
                (PathBuf::from(CTL_DIR), usual)
            }
        }
        Err(e) => fatal(prog, &format!("unable to mkdir {usual}: {}", errtext(&e))),
    }
}

fn ms_until(now: Instant, t: Instant) -> u64 {
    let d = t.saturating_duration_since(now);
    (d.as_micros().div_ceil(1000)) as u64
}

impl Scanner {
    fn prog(&self) -> &str {
        &self.opts.prog
    }

    fn warn(&self, msg: &str) {
        crate::diag::warn(&self.opts.prog, msg);
    }

    /// A fatal internal error: exec `.s6-svscan/crash` (s6 mode) or exit 111.
    fn crash(&self, msg: &str) -> ! {
        let _ = writeln!(io::stderr(), "{}: fatal: {msg}", self.prog());
        if self.opts.mode == Mode::S6 {
            let _ = Command::new(format!("{CTL_DIR}/crash")).exec();
        }
        std::process::exit(EXIT_SYS)
    }

    fn main_loop(&mut self) -> i32 {
        let mut buf = vec![0u8; 4096];
        loop {
            self.handle_signals();
            self.read_control();
            self.read_inotify(&mut buf);
            self.read_log(&mut buf);
            self.reap();
            self.pump_mux();
            if self.stop.is_none() {
                if self.need_scan {
                    self.scan();
                }
                self.restarts();
            }
            let now = Instant::now();
            self.main_tick(now);
            if let Some(r) = self.next_rescan {
                if now >= r {
                    self.need_scan = true;
                    self.next_rescan = Some(now + Duration::from_millis(self.opts.rescan_ms));
                    continue;
                }
            }
            if let Some(code) = self.check_stop(now) {
                return match self.decided {
                    Some(c) => self.finish_decided(c),
                    None => self.finish(code),
                };
            }
            if self.need_scan && self.stop.is_none() {
                continue;
            }
            let timeout = self.main_timeout(self.timeout(now));
            if timeout.is_none() && self.trim_due {
                // About to sleep until the next event, which may be hours away, after a scan
                // (start-up, a change in the directory, a supervisor's death): give back what
                // that work brought in (see memtrim). Log lines passing through (--prefix)
                // do not count, and this never sets a timer of its own.
                self.trim_due = false;
                crate::memtrim::give_back();
            }
            self.wait(timeout);
        }
    }

    /// Milliseconds until the nearest deadline, or None (sleep until an event).
    fn timeout(&self, now: Instant) -> Option<u64> {
        let mut t: Option<Instant> = self.next_rescan;
        let mut nearer = |x: Instant| {
            t = Some(match t {
                Some(y) if y <= x => y,
                _ => x,
            })
        };
        match &self.stop {
            Some(st) => {
                nearer(st.killed.unwrap_or(st.deadline));
                if st.killed.is_none() && !st.abort {
                    // Look for new leftovers of services (see `leftovers`).
                    nearer(now + Duration::from_millis(leftovers::SWEEP_MS));
                }
            }
            None => {
                for s in self.svcs.values() {
                    if let Some(r) = s.restart_at {
                        nearer(r);
                    }
                }
            }
        }
        t.map(|t| ms_until(now, t))
    }

    fn wait(&mut self, timeout: Option<u64>) {
        let to = match timeout {
            None => PollTimeout::NONE,
            Some(ms) => PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX),
        };
        let r = {
            let mut fds = vec![
                PollFd::new(std::os::fd::AsFd::as_fd(&self.sig_r), PollFlags::POLLIN),
                PollFd::new(std::os::fd::AsFd::as_fd(&self.inotify), PollFlags::POLLIN),
                PollFd::new(std::os::fd::AsFd::as_fd(&self.ctl), PollFlags::POLLIN),
            ];
            if let Some(l) = &self.log_r {
                fds.push(PollFd::new(std::os::fd::AsFd::as_fd(l), PollFlags::POLLIN));
            }
            if let Some(m) = &self.mux {
                m.poll_fds(&mut fds);
            }
            poll(&mut fds, to)
        };
        match r {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => self.crash(&format!("unable to poll: {}", e.desc())),
        }
    }

    fn handle_signals(&mut self) {
        let mut b = [0u8; 64];
        while matches!(self.sig_r.read(&mut b), Ok(n) if n > 0) {}
        let got: Vec<i32> = self
            .flags
            .iter()
            .filter(|(_, f)| f.swap(false, Ordering::SeqCst))
            .map(|(s, _)| *s)
            .collect();
        for sig in got {
            self.on_signal(sig);
        }
    }

    /// Spawns `.s6-svscan/SIG<NAME>` asynchronously (s6 mode); true if it was started.
    fn hook(&self, sig: i32) -> bool {
        if self.opts.mode != Mode::S6 {
            return false;
        }
        let Some(name) = crate::sig::short_name(sig) else {
            return false;
        };
        let path = format!("{CTL_DIR}/SIG{name}");
        if fs::metadata(&path).is_err() {
            return false;
        }
        Command::new(&path).spawn().is_ok()
    }

    fn on_signal(&mut self, sig: i32) {
        if self.main_signal(sig) {
            return;
        }
        match sig {
            libc::SIGCHLD => {}
            libc::SIGALRM => {
                self.need_scan = true;
                if self.opts.mode == Mode::Runit {
                    let mut label = [0u8; 25];
                    Tai64N::now(Family::Runit).write_hex(&mut label);
                    if let Err(e) =
                        status::replace_file(Path::new("."), ".forced-rescan", &label, 0o644)
                    {
                        self.warn(&format!(
                            "unable to write {}/.forced-rescan: {}",
                            self.opts.dir,
                            errtext(&e)
                        ));
                    }
                }
            }
            libc::SIGABRT => self.begin_stop(0, true),
            _ if self.hook(sig) => {}
            libc::SIGHUP => match self.opts.mode {
                Mode::S6 => {
                    self.scan();
                    self.prune(false);
                }
                Mode::Runit => self.begin_stop(EXIT_SYS, false),
            },
            libc::SIGINT | libc::SIGTERM | libc::SIGQUIT => self.begin_stop(0, false),
            _ => {}
        }
    }

    fn read_control(&mut self) {
        let mut b = [0u8; 256];
        loop {
            let n = match self.ctl.read(&mut b) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            for &c in &b[..n] {
                self.letter(c);
            }
        }
    }

    /// s6-svscanctl's letters, in both modes.
    fn letter(&mut self, c: u8) {
        match c {
            b'z' => self.reap(),
            b'a' => self.need_scan = true,
            b'b' => self.begin_stop(0, true),
            b'h' => {
                self.scan();
                self.prune(false);
            }
            b'i' | b't' | b'q' => self.begin_stop(0, false),
            b'n' => self.prune(false),
            b'N' => self.prune(true),
            _ => self.warn(&format!(
                "received unknown control command: {}",
                String::from_utf8_lossy(&[c])
            )),
        }
    }

    fn read_inotify(&mut self, buf: &mut [u8]) {
        // Any event (IN_Q_OVERFLOW included) means: rescan everything.
        while let Ok(ev) = self.inotify.read_events(buf) {
            if ev.count() == 0 {
                break;
            }
            self.need_scan = true;
        }
    }

    fn read_log(&mut self, buf: &mut [u8]) {
        let Some(l) = &mut self.log_r else { return };
        while let Ok(n) = l.read(buf) {
            if n == 0 {
                break;
            }
            if let Some(t) = &mut self.title {
                t.append(&buf[..n]);
            }
        }
    }

    /// Reaps every child (supervisors, hooks, orphans of services).
    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(st) => {
                    if let Some(pid) = st.pid() {
                        self.reaped(pid.as_raw(), &st);
                        self.died(pid.as_raw());
                    }
                }
            }
        }
    }

    fn died(&mut self, pid: i32) {
        let Some(id) = self.by_pid.remove(&pid) else {
            return;
        };
        let stopping = self.stop.is_some();
        let Some(s) = self.svcs.get_mut(&id) else {
            return;
        };
        s.pid = None;
        let was_restart = s.restarted;
        let lived = s.started.elapsed().as_millis() as u64;
        // Is the directory still there? Decide on a fresh scan.
        self.need_scan = true;
        s.restarted = true;
        match plan::after_death(s.active, stopping, was_restart, lived) {
            AfterDeath::Forget => {
                self.svcs.remove(&id);
            }
            AfterDeath::RestartNow => s.restart_at = Some(Instant::now()),
            AfterDeath::RestartIn(ms) => {
                s.restart_at = Some(Instant::now() + Duration::from_millis(ms))
            }
        }
    }

    fn restarts(&mut self) {
        let now = Instant::now();
        let due: Vec<Id> = self
            .svcs
            .iter()
            .filter(|(_, s)| s.pid.is_none() && s.active && s.restart_at.is_some_and(|r| r <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.start(id);
        }
        // Inactive dead ones are forgotten.
        self.svcs.retain(|_, s| s.pid.is_some() || s.active);
    }

    fn start(&mut self, id: Id) {
        let Some(s) = self.svcs.get(&id) else { return };
        let mode = match self.opts.mode {
            Mode::S6 => "s6",
            Mode::Runit => "runit",
        };
        let mut cmd = Command::new(&self.sup_path);
        if self.opts.supervisor.is_none() {
            // The multi-call binary picks the program from argv[0].
            cmd.arg0("rsupervise");
        }
        cmd.args(["--compat", mode, "--", &s.name]);
        if self.opts.setsid {
            // SAFETY: setsid is async-signal-safe; called in the child between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::setsid();
                    Ok(())
                });
            }
        }
        let name = s.name.clone();
        self.prefix_stdio(id, &name, &mut cmd);
        let r = cmd.spawn();
        let now = Instant::now();
        let Some(s) = self.svcs.get_mut(&id) else {
            return;
        };
        s.started = now;
        s.termed = false;
        match r {
            Ok(child) => {
                let pid = child.id() as i32;
                drop(child); // reaped by the waitpid(-1) loop
                s.pid = Some(pid);
                s.restart_at = None;
                self.by_pid.insert(pid, id);
            }
            Err(e) => {
                s.restart_at = Some(now + Duration::from_secs(1));
                let msg = format!(
                    "unable to start supervisor for {name}: {}: {}",
                    self.sup_path.display(),
                    errtext(&e)
                );
                self.warn(&msg);
            }
        }
    }

    /// `--prefix`: a service without `log/` gets its prefix pipes as fd 1 and 2.
    fn prefix_stdio(&mut self, id: Id, name: &str, cmd: &mut Command) {
        let Some(m) = &mut self.mux else { return };
        if Path::new(name).join("log").is_dir() {
            return;
        }
        match m.writers(id, name) {
            Ok((o, e)) => {
                cmd.stdout(o).stderr(e);
            }
            Err(e) => {
                let msg = format!("unable to create the output pipes of {name}: {e}");
                crate::diag::warn(&self.opts.prog, &msg);
            }
        }
    }

    /// `--prefix`: follows the services, copies what their pipes have.
    fn pump_mux(&mut self) {
        let Some(m) = &mut self.mux else { return };
        let svcs = &self.svcs;
        m.sync(|id| svcs.get(id).map(|s| s.name.as_str()));
        m.pump();
    }

    fn known_view(&self) -> BTreeMap<Id, Known> {
        self.svcs
            .iter()
            .map(|(id, s)| {
                (
                    *id,
                    Known {
                        name: s.name.clone(),
                        active: s.active,
                        alive: s.pid.is_some(),
                        termed: s.termed,
                    },
                )
            })
            .collect()
    }

    fn report(&mut self, fresh: &mut HashMap<String, String>, name: &str, sig: String, msg: &str) {
        if self.problems.get(name) != Some(&sig) {
            self.warn(msg);
        }
        fresh.insert(name.to_string(), sig);
    }

    fn scan(&mut self) {
        self.trim_due = true;
        self.need_scan = false;
        if self.stop.is_some() {
            return;
        }
        let rd = match fs::read_dir(".") {
            Ok(rd) => rd,
            Err(e) => {
                let msg = format!("unable to read {}: {}", self.opts.dir, errtext(&e));
                if self.problems.get(".") != Some(&msg) {
                    self.warn(&msg);
                    self.problems.insert(".".into(), msg);
                }
                return;
            }
        };
        let mut names: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        let mut fresh = HashMap::new();
        let mut seen = Vec::new();
        let mut candidates = Vec::new();
        for name in names {
            let l = match fs::symlink_metadata(&name) {
                Ok(l) => l,
                Err(_) => continue, // gone meanwhile
            };
            let sig = format!("{}:{}", l.dev(), l.ino());
            let m = match fs::metadata(&name) {
                Ok(m) => m,
                Err(e) => {
                    let target = fs::read_link(&name)
                        .map(|t| t.display().to_string())
                        .unwrap_or_default();
                    let msg = format!("unable to stat {}/{name}: {}", self.opts.dir, errtext(&e));
                    self.report(&mut fresh, &name, format!("stat:{sig}:{target}"), &msg);
                    continue;
                }
            };
            if !m.is_dir() {
                let msg = format!("{}/{name} is not a directory: ignored", self.opts.dir);
                self.report(&mut fresh, &name, format!("file:{sig}"), &msg);
                continue;
            }
            let id = (m.dev(), m.ino());
            if !self.svcs.contains_key(&id) {
                // A new service starts once its run is there and executable: inotify reports
                // the file being created before it is written and made executable, and a
                // supervisor started then would fail to exec it (and, in s6 mode, wait 10 s).
                match fs::metadata(Path::new(&name).join("run")) {
                    Err(_) => {
                        let msg =
                            format!("{}/{name} has no run file: waiting for one", self.opts.dir);
                        self.report(&mut fresh, &name, format!("norun:{sig}"), &msg);
                        candidates.push((id, name));
                        continue;
                    }
                    Ok(r) if r.mode() & 0o111 == 0 => {
                        let msg = format!(
                            "{}/{name}/run is not executable: waiting until it is",
                            self.opts.dir
                        );
                        self.report(&mut fresh, &name, format!("noexec:{sig}"), &msg);
                        candidates.push((id, name));
                        continue;
                    }
                    Ok(_) => {}
                }
            }
            seen.push(Seen { id, name });
        }
        self.update_watches(&candidates);
        let acts = plan::diff(
            self.opts.mode,
            &seen,
            &self.known_view(),
            self.opts.capacity,
        );
        for a in acts {
            match a {
                Act::Start(id, name) => {
                    self.svcs.insert(
                        id,
                        Svc {
                            name,
                            pid: None,
                            active: true,
                            termed: false,
                            started: Instant::now(),
                            restarted: false,
                            restart_at: None,
                        },
                    );
                    self.start(id);
                }
                Act::Rename(id, name) => {
                    if let Some(s) = self.svcs.get_mut(&id) {
                        s.name = name;
                    }
                }
                Act::Activate(id) => {
                    if let Some(s) = self.svcs.get_mut(&id) {
                        s.active = true;
                        if s.pid.is_none() && s.restart_at.is_none() {
                            s.restart_at = Some(Instant::now());
                        }
                    }
                }
                Act::Deactivate(id) => {
                    if let Some(s) = self.svcs.get_mut(&id) {
                        s.active = false;
                    }
                }
                Act::Term(id) => self.term(id, libc::SIGTERM),
                Act::OverCapacity(name) => {
                    let msg = format!("unable to start supervisor for {name}: too many services");
                    self.report(&mut fresh, &name, "capacity".into(), &msg);
                }
            }
        }
        self.problems = fresh;
        self.svcs.retain(|_, s| s.pid.is_some() || s.active);
    }

    /// Keeps an inotify watch on each directory that lacks an executable `run`, so that it is
    /// picked up as soon as `run` appears or is made executable; drops watches of directories that are no longer candidates.
    fn update_watches(&mut self, candidates: &[(Id, String)]) {
        let keep: std::collections::HashSet<Id> = candidates.iter().map(|(id, _)| *id).collect();
        let gone: Vec<Id> = self
            .watched
            .keys()
            .filter(|id| !keep.contains(id))
            .copied()
            .collect();
        for id in gone {
            if let Some(wd) = self.watched.remove(&id) {
                let _ = self.inotify.watches().remove(wd);
            }
        }
        for (id, name) in candidates {
            if self.watched.contains_key(id) {
                continue;
            }
            if let Ok(wd) = self.inotify.watches().add(
                name,
                WatchMask::CREATE | WatchMask::MOVED_TO | WatchMask::ATTRIB | WatchMask::ONLYDIR,
            ) {
                self.watched.insert(*id, wd);
                // run may have become ready between the scan and the watch: look again.
                let run = fs::metadata(Path::new(name).join("run"));
                if run.is_ok_and(|r| r.mode() & 0o111 != 0) {
                    self.need_scan = true;
                }
            }
        }
    }

    fn term(&mut self, id: Id, sig: i32) {
        if let Some(s) = self.svcs.get_mut(&id) {
            if let Some(pid) = s.pid {
                // SAFETY: kill(2) on our own child, not yet reaped.
                unsafe {
                    libc::kill(pid, sig);
                }
                s.termed = true;
            }
        }
    }

    /// Stops the supervisors of removed services (`all`: loggers too; ours own their
    /// loggers, so both are the same here).
    fn prune(&mut self, _all: bool) {
        for id in plan::prune(&self.known_view()) {
            self.term(id, libc::SIGTERM);
        }
    }

    fn begin_stop(&mut self, code: i32, abort: bool) {
        if self.stop.is_some() {
            return;
        }
        let deadline = Instant::now() + Duration::from_millis(self.opts.bound_ms);
        self.stop = Some(Stopping {
            code,
            deadline,
            abort,
            killed: None,
            orphans_termed: false,
            leftovers: leftovers::Leftovers::default(),
        });
        if !abort {
            let ids: Vec<Id> = self.svcs.keys().copied().collect();
            for id in ids {
                self.term(id, libc::SIGTERM);
            }
        }
        self.svcs.retain(|_, s| s.pid.is_some());
    }

    /// Returns the exit code once the stop is complete.
    fn check_stop(&mut self, now: Instant) -> Option<i32> {
        let (code, abort, deadline, killed) = match &self.stop {
            Some(st) => (st.code, st.abort, st.deadline, st.killed),
            None => return None,
        };
        let killed_code = if code == 0 { EXIT_KILLED } else { code };
        let done = if killed.is_some() { killed_code } else { code };
        if abort {
            return Some(done);
        }
        if self.svcs.values().all(|s| s.pid.is_none()) {
            // Every supervisor is gone. What still runs are orphans of services (daemons that
            // double-forked), reparented to us as PID 1 or subreaper: they get SIGTERM too,
            // as an init gives them, and the same bound.
            let me = nix::unistd::getpid().as_raw();
            let rest = children_of(me);
            if rest.is_empty() || killed.is_some() {
                return Some(done);
            }
            if let Some(st) = self.stop.as_mut().filter(|st| !st.orphans_termed) {
                st.orphans_termed = true;
                for p in rest {
                    // SAFETY: kill(2) on our own children (reparented orphans), not reaped yet.
                    unsafe {
                        libc::kill(p, libc::SIGTERM);
                        libc::kill(p, libc::SIGCONT);
                    }
                }
            }
        } else if killed.is_none() {
            // Supervisors still stopping: what services left behind would hold their loggers'
            // pipes open until the bound; it gets SIGTERM now (see `leftovers`).
            let mut keep: std::collections::HashSet<i32> =
                self.svcs.values().filter_map(|s| s.pid).collect();
            if let Some(main_cmd::Phase::Running(p)) = self.main.as_ref().map(|m| m.phase) {
                keep.insert(p);
            }
            let rest = children_of(nix::unistd::getpid().as_raw());
            if let Some(st) = self.stop.as_mut() {
                st.leftovers.sweep(&rest, &keep);
            }
        }
        match killed {
            None if now >= deadline => {
                self.warn(&format!(
                    "shutdown bound of {} ms exceeded: killing what still runs",
                    self.opts.bound_ms
                ));
                self.kill_all();
                if let Some(st) = &mut self.stop {
                    st.killed = Some(now + Duration::from_secs(3));
                }
                None
            }
            Some(k) if now >= k => Some(killed_code),
            _ => None,
        }
    }

    /// SIGKILL to everything still running: as PID 1, every process of the namespace;
    /// otherwise the supervisors, the pids (and process groups) in their status files, and
    /// every remaining child of ours (orphans come to us as subreaper).
    fn kill_all(&mut self) {
        let me = nix::unistd::getpid().as_raw();
        if me == 1 {
            // SAFETY: kill(2) with pid -1 signals every process we may signal but ourselves.
            unsafe {
                libc::kill(-1, libc::SIGKILL);
            }
            return;
        }
        let mut pids = Vec::new();
        for s in self.svcs.values() {
            let sd = Path::new(&s.name);
            for d in [sd.to_path_buf(), sd.join("log")] {
                let p = crate::rundir::supervise_dir(&d);
                let pid = match status::read_status(&p) {
                    Ok(AnyStatus::Runit(r)) => r.pid as i32,
                    Ok(AnyStatus::S6(x)) => x.pid as i32,
                    Err(_) => 0,
                };
                if pid > 1 {
                    pids.push(-pid);
                    pids.push(pid);
                }
            }
            if let Some(p) = s.pid {
                pids.push(p);
            }
        }
        pids.extend(children_of(me));
        for p in pids {
            // SAFETY: kill(2) on pids/groups of processes we started (read from our own
            // supervisors' status files or found as our children).
            unsafe {
                libc::kill(p, libc::SIGKILL);
            }
        }
    }

    /// End of life: exec `.s6-svscan/finish` in s6 mode when present, else return `code`.
    fn finish(&mut self, code: i32) -> i32 {
        self.reap();
        if let Some(m) = &mut self.mux {
            m.drain();
        }
        if self.opts.mode == Mode::S6 {
            let path = format!("{CTL_DIR}/finish");
            if fs::metadata(&path).is_ok() {
                let e = Command::new(&path).exec();
                self.warn(&format!("unable to exec {}/{path}: {}", self.opts.dir, e));
            }
        }
        code
    }
}

/// Pids whose parent is `me` (from /proc).
fn children_of(me: i32) -> Vec<i32> {
    let mut v = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(me) {
            v.push(pid);
        }
    }
    v
}

/// rsvscanctl: writes `letters` to `DIR/.s6-svscan/control` in one write().
/// Returns the exit code (0 sent, 100 not listening, 111 other errors).
pub fn control(prog: &str, dir: &str, letters: &[u8]) -> i32 {
    let p = crate::rundir::scan_ctl_dir(Path::new(dir)).join("control");
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&p);
    // s6-svscanctl 2.11.3.2 prints an empty field before "unable" (compat.md 8.3).
    let colon = if prog == "s6-svscanctl" { ": " } else { "" };
    let not_listening = || {
        let _ = writeln!(
            io::stderr(),
            "{prog}: fatal: {colon}unable to control {dir}: supervisor not listening"
        );
        crate::diag::EXIT_USAGE
    };
    let mut f = match f {
        Ok(f) => f,
        // As s6-svscanctl: an existing scan dir without a listening scanner is "not
        // listening" (100); a scan dir that does not exist is a system error (111).
        Err(e)
            if e.raw_os_error() == Some(libc::ENXIO)
                || (e.raw_os_error() == Some(libc::ENOENT) && Path::new(dir).is_dir()) =>
        {
            return not_listening();
        }
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "{prog}: fatal: unable to control {dir}: {}",
                errtext(&e)
            );
            return EXIT_SYS;
        }
    };
    if letters.is_empty() {
        return 0;
    }
    match f.write(letters) {
        Ok(n) if n == letters.len() => 0,
        Ok(_) => {
            let _ = writeln!(
                io::stderr(),
                "{prog}: fatal: unable to control {dir}: short write"
            );
            EXIT_SYS
        }
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "{prog}: fatal: unable to control {dir}: {}",
                errtext(&e)
            );
            EXIT_SYS
        }
    }
}
