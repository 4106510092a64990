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

mod ctl;
mod dirscan;
mod events;
mod fds;
mod graph;
pub mod leftovers;
pub mod logmux;
pub mod main_cmd;
mod oneshot;
pub mod plan;
mod setup;
mod source;
mod stop;
mod supervisors;

pub use ctl::control;
pub use setup::container_envdir;
use setup::{export_envdir, place_ctl_dir, run_init_steps};
use stop::children_of;

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

/// The environment variable that tells services (and clients they run) the absolute path of
/// the scan directory.
pub const SCANDIR_VAR: &str = "RSV_SCANDIR";

/// Control directory, lock and FIFO (the same paths as s6-svscan's, in both modes).
pub use crate::rundir::SCAN_CTL_DIR as CTL_DIR;

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
    /// `--up NAME`: the start set (with their dependencies); empty: every service not
    /// marked `down`.
    pub up: Vec<String>,
    /// How long the main command waits for the start set to settle (None: as long as it
    /// takes); past it, the start counts as failed.
    pub up_timeout_ms: Option<u64>,
    /// What a failure in the start set does to the main command.
    pub on_up_failure: UpFailure,
    /// While the main command runs, signals to the scanner go to it (true, the default);
    /// false: SIGTERM/SIGINT/SIGQUIT start the orderly stop (CMD gets SIGTERM then).
    pub cmd_signals: bool,
}

/// What a failure of the start set (a oneshot failed, a longrun timed out, the settle bound
/// passed) does before the main command starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpFailure {
    /// Start the main command anyway (the failure was reported as a warning).
    Continue,
    /// The same, with one more warning naming what failed.
    Warn,
    /// Stop everything and exit with this code.
    Stop(i32),
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
            up: Vec::new(),
            up_timeout_ms: None,
            on_up_failure: UpFailure::Continue,
            cmd_signals: true,
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
    /// A new service refused for want of descriptors (warned once; retried every second).
    refused: bool,
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
    /// The scanner's control directory (`.s6-svscan`, or its runtime replacement).
    ctl_dir: PathBuf,
    /// The dependency engine, when the scan directory has a graph.
    graph: Option<graph::Engine>,
    /// Graph files read per service directory (by identity), kept while it exists.
    sources: HashMap<Id, source::Source>,
    /// The first scan is done (a bad graph after it is reported, not fatal).
    scanned: bool,
    /// Graph longruns' supervisors write a byte here on every change of their state.
    report_r: File,
    report_w: std::os::fd::OwnedFd,
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
    let abs_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from(&shown));
    // SAFETY: rsvscan is single-threaded (signal-hook's handlers start no thread): nothing
    // reads the environment concurrently.
    unsafe { std::env::set_var(SCANDIR_VAR, &abs_dir) };
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

    let crate::selfpipe::Caught { r: sig_r, flags } = crate::selfpipe::catch(&CAUGHT)
        .unwrap_or_else(|e| fatal(&prog, &format!("unable to set up signals: {}", errtext(&e))));

    let inotify = Inotify::init()
        .unwrap_or_else(|e| fatal(&prog, &format!("unable to init inotify: {}", errtext(&e))));
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
        fatal(&prog, &format!("unable to watch {shown}: {}", errtext(&e)));
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
    let (report_r, report_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .unwrap_or_else(|e| fatal(&prog, &format!("unable to create a pipe: {}", e.desc())));
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
        ctl_dir: ctl_dir.clone(),
        graph: None,
        sources: HashMap::new(),
        scanned: false,
        report_r: File::from(report_r),
        report_w,
    };
    if s.opts.prefix {
        s.mux = Some(logmux::LogMux::new());
    }
    s.main_loop()
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
}
