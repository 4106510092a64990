//! `rsvc`: the control client. This module holds the s6-svc personality and the choice of
//! personality; the runit `sv` personality is in `svcmd`.
//!
//! s6-svc personality: `rsvc [-wu|-wU|-wd|-wD|-wr|-wR] [-T ms] [-abqhkti12pcyroduDUxOQ] SD...`.
//! The letters are written in one `write()` to every `SD/supervise/control`. Waits are done
//! here (no helper program): subscribe to `SD/event/`, read the initial status, write, then
//! follow the events; runit-format directories (whose supervisor may not broadcast) are
//! also re-read every 100 ms.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::diag::{EXIT_SYS, EXIT_USAGE};
use crate::fifodir::Listener;
use crate::getopt::{GetOpt, Opt};
use crate::lock;
use crate::svview::{Format, View};

/// s6-svc's limit on the number of letters in one call.
pub const MAX_LETTERS: usize = 62;

/// The letters s6-supervise accepts.
pub const S6_LETTERS: &str = "abqhkti12pcyroduDUxOQ";

/// s6-svc's getopt spec: the letters, plus `-T ms` and `-w X`.
const S6SVC_OPTSPEC: &str = "abqhkti12pcyroduDUxOQT:w:";

const S6SVC_USAGE: &str = "s6-svc [ -wu | -wU | -wd | -wD | -wr | -wR ] [ -T timeout ] [ -abqhkti12pcyroduDUxOQ ] servicedir";
const RSVC_USAGE: &str = "rsvc [ -wu | -wU | -wd | -wD | -wr | -wR ] [ -T timeout ] [ -abqhkti12pcyroduDUxOQ ] servicedir...  or  rsvc [-v] [-w sec] command service...";

/// The text of an OS error without Rust's "(os error N)" suffix.
pub fn errstr(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// Which client `rsvc` acts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Personality {
    /// s6-svc, with rsvc's extensions (several service dirs, own messages).
    Rsvc,
    /// Exactly s6-svc (started as `s6-svc`).
    S6Svc,
    /// runit's sv (started as `sv` or as `rsvc` with sv-style arguments).
    Sv,
    /// sv's LSB mode (started under any other name).
    Lsb,
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Decides the personality from the name the program was started as and its arguments.
///
/// Started as `rsvc`, the arguments decide: sv when the first argument is `-v`, `-V`, or
/// `-w` with a number of seconds (`-w5`, `-w 5`), or when it does not start with `-` (a
/// command word); otherwise s6-svc.
pub fn personality(name: &str, args: &[String]) -> Personality {
    match name {
        "s6-svc" => return Personality::S6Svc,
        "sv" => return Personality::Sv,
        "rsvc" => {}
        _ => return Personality::Lsb,
    }
    let Some(first) = args.first() else {
        return Personality::Rsvc;
    };
    if first == "-v" || first == "-V" {
        return Personality::Sv;
    }
    if let Some(rest) = first.strip_prefix("-w") {
        if is_digits(rest) || (rest.is_empty() && args.get(1).is_some_and(|a| is_digits(a))) {
            return Personality::Sv;
        }
    }
    if first.starts_with('-') && first.len() > 1 {
        Personality::Rsvc
    } else if args.len() == 1 {
        // A lone sv command word that is not a directory here: sv without a service, so sv's
        // usage message rather than "unable to control status".
        if SV_WORDS.contains(&first.as_str()) && !std::path::Path::new(first).is_dir() {
            Personality::Sv
        } else {
            Personality::Rsvc
        }
    } else {
        Personality::Sv
    }
}

/// sv's documented command words (a lone one of these is taken as sv missing its service).
const SV_WORDS: &[&str] = &[
    "status",
    "up",
    "down",
    "once",
    "pause",
    "cont",
    "hup",
    "alarm",
    "interrupt",
    "quit",
    "1",
    "2",
    "term",
    "kill",
    "exit",
    "start",
    "stop",
    "reload",
    "restart",
    "shutdown",
    "check",
    "try-restart",
    "force-stop",
    "force-reload",
    "force-restart",
    "force-shutdown",
];

/// Entry point of the `rsvc` binary: returns the exit code.
pub fn main(argv0: &str, args: Vec<OsString>) -> i32 {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match personality(argv0, &args) {
        Personality::Rsvc => s6svc(&args, false),
        Personality::S6Svc => s6svc(&args, true),
        Personality::Sv => crate::svcmd::main(argv0, &args, false),
        Personality::Lsb => crate::svcmd::main(argv0, &args, true),
    }
}

/// What a `-w` option waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitFor {
    Up,
    UpReady,
    Down,
    DownReady,
    Restart,
    RestartReady,
}

impl WaitFor {
    fn from_char(c: char) -> Option<WaitFor> {
        Some(match c {
            'u' => WaitFor::Up,
            'U' => WaitFor::UpReady,
            'd' => WaitFor::Down,
            'D' => WaitFor::DownReady,
            'r' => WaitFor::Restart,
            'R' => WaitFor::RestartReady,
            _ => return None,
        })
    }
    fn wants_readiness(self) -> bool {
        matches!(self, WaitFor::UpReady | WaitFor::RestartReady)
    }
    fn downgrade(self) -> WaitFor {
        match self {
            WaitFor::UpReady => WaitFor::Up,
            WaitFor::RestartReady => WaitFor::Restart,
            w => w,
        }
    }
}

/// Parsed s6-svc command line.
#[derive(Debug, PartialEq, Eq)]
pub struct S6SvcArgs {
    pub letters: String,
    pub wait: Option<WaitFor>,
    pub timeout_ms: u64,
    pub dirs: Vec<String>,
}

/// A command line that does not parse.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError;

/// Parses s6-svc options (getopt style: clustered letters, `-T ms`/`-Tms`, `-wX`, `--`).
/// `Err(())` is a usage error.
pub fn parse_s6svc(args: &[String]) -> Result<S6SvcArgs, UsageError> {
    let mut letters = String::new();
    let mut wait = None;
    let mut timeout_ms = 0u64;
    let mut opts = GetOpt::new(args, S6SVC_OPTSPEC);
    for o in opts.by_ref() {
        match o {
            Opt::Arg('T', val) => {
                if !is_digits(&val) {
                    return Err(UsageError);
                }
                timeout_ms = val.parse().map_err(|_| UsageError)?;
            }
            Opt::Arg(_, val) => {
                let mut it = val.chars();
                let w = it.next().and_then(WaitFor::from_char).ok_or(UsageError)?;
                if it.next().is_some() {
                    return Err(UsageError);
                }
                wait = Some(w);
            }
            Opt::Flag(c) => letters.push(c),
            Opt::Unknown(_) | Opt::MissingArg(_) => return Err(UsageError),
        }
    }
    let dirs: Vec<String> = opts.operands().to_vec();
    if dirs.is_empty() {
        return Err(UsageError);
    }
    Ok(S6SvcArgs {
        letters,
        wait,
        timeout_ms,
        dirs,
    })
}

/// Why a control write failed.
#[derive(Debug)]
pub enum CtlError {
    /// The control FIFO has no reader: no supervisor.
    NotListening,
    /// `supervise/` exists but `control` cannot be opened.
    BadSuperviseDir(io::Error),
    Io(io::Error),
}

/// Writes `letters` to `SD/supervise/control` in one `write()`, as s6-svc does: open
/// non-blocking (no reader = not listening), then write in blocking mode. With no letters the
/// FIFO is only opened, which still tells whether a supervisor listens.
pub fn write_control(sd: &Path, letters: &[u8]) -> Result<(), CtlError> {
    let path = crate::rundir::supervise_dir(sd).join("control");
    let f = match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return Err(CtlError::NotListening),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if crate::rundir::supervise_dir(sd).is_dir() {
                return Err(CtlError::BadSuperviseDir(e));
            }
            // As s6-svc: an existing service dir that was never supervised (no supervise/)
            // means nobody listens (100); a missing service dir is a system error (111).
            if sd.is_dir() {
                return Err(CtlError::NotListening);
            }
            return Err(CtlError::Io(e));
        }
        Err(e) => return Err(CtlError::Io(e)),
    };
    if letters.is_empty() {
        return Ok(());
    }
    // Back to blocking mode so that a full pipe waits instead of failing.
    let fl =
        nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_GETFL).map_err(|e| CtlError::Io(e.into()))?;
    let mut oflags = nix::fcntl::OFlag::from_bits_truncate(fl);
    oflags.remove(nix::fcntl::OFlag::O_NONBLOCK);
    nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_SETFL(oflags))
        .map_err(|e| CtlError::Io(e.into()))?;
    let mut f = f;
    match f.write(letters) {
        Ok(n) if n == letters.len() => Ok(()),
        Ok(_) => Err(CtlError::Io(io::Error::from_raw_os_error(libc::EPIPE))),
        Err(e) => Err(CtlError::Io(e)),
    }
}

fn s6svc(args: &[String], strict: bool) -> i32 {
    let prog = if strict { "s6-svc" } else { "rsvc" };
    let usage = if strict { S6SVC_USAGE } else { RSVC_USAGE };
    let Ok(mut a) = parse_s6svc(args) else {
        eprintln!("{prog}: usage: {usage}");
        return EXIT_USAGE;
    };
    if a.letters.len() > MAX_LETTERS {
        eprintln!("{prog}: fatal: too many commands");
        return EXIT_USAGE;
    }
    if a.dirs.iter().any(|d| d.is_empty()) {
        eprintln!("{prog}: usage: {usage}");
        return EXIT_USAGE;
    }
    if strict && a.dirs.len() > 1 {
        eprintln!("s6-svc: warning: ignoring extra arguments");
        a.dirs.truncate(1);
    }
    if !strict {
        if let Some(code) = instances(prog, &mut a) {
            return code;
        }
    }
    let Some(wait) = a.wait else {
        let mut rc = 0;
        for d in &a.dirs {
            let r = control_one(prog, d, a.letters.as_bytes(), strict);
            if r > rc {
                rc = r;
            }
        }
        return rc;
    };
    wait_and_control(prog, &a, wait, strict)
}

/// rsvc's templates ([`crate::template`]): `-u` on a missing `NAME@INST` whose template
/// `NAME@` exists creates the instance and waits (`-T`, else 10 s) for the scanner's
/// supervisor to listen; `-x` on an instance stops and removes it. Returns an exit code when
/// there is nothing left to do (or a failure), `None` to go on with the remaining dirs.
fn instances(prog: &str, a: &mut S6SvcArgs) -> Option<i32> {
    let limit = std::time::Duration::from_millis(if a.timeout_ms > 0 {
        a.timeout_ms
    } else {
        10_000
    });
    let up = a.letters.contains('u') || matches!(a.wait, Some(WaitFor::Up | WaitFor::UpReady));
    let mut removed = Vec::new();
    for d in &a.dirs {
        let sd = Path::new(d);
        if a.letters.contains('x') && crate::template::is_instance(sd) {
            if let Err(e) = crate::template::remove(sd, limit) {
                eprintln!("{prog}: fatal: {e}");
                return Some(EXIT_SYS);
            }
            removed.push(d.clone());
            continue;
        }
        if !up || fs_exists(sd) {
            continue;
        }
        let Some((template, inst)) = crate::template::template_of(sd) else {
            continue;
        };
        if let Err(e) = crate::template::create(sd, &template, &inst) {
            eprintln!(
                "{prog}: fatal: unable to create {d} from {}: {}",
                template.display(),
                crate::svdir::errtext(&e)
            );
            return Some(EXIT_SYS);
        }
        // Listening, and its first status written (a -w wait reads it at once).
        let listening = || write_control(sd, b"").is_ok() && crate::svview::View::read(sd).is_ok();
        if !crate::template::wait_until(limit, listening) {
            eprintln!(
                "{prog}: fatal: created {d} from {}, but no supervisor took it within {} ms (is a scanner running on its directory?)",
                template.display(),
                limit.as_millis()
            );
            return Some(EXIT_SYS);
        }
    }
    a.dirs.retain(|d| !removed.contains(d));
    a.dirs.is_empty().then_some(0)
}

fn fs_exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Writes to one service dir and reports a failure the way s6-svc does. Returns an exit code.
fn control_one(prog: &str, d: &str, letters: &[u8], strict: bool) -> i32 {
    // rsvc -d of a service others depend on: the scanner takes them down first; a oneshot
    // (no supervisor) goes to the scanner for -d and -u.
    if !strict && (letters == b"d" || letters == b"u") {
        let sd = Path::new(d);
        let via_scanner = if letters == b"d" {
            crate::rc::down::rsvc_down(prog, sd)
        } else {
            crate::rc::down::rsvc_up(prog, sd)
        };
        if let Some(rc) = via_scanner {
            return rc;
        }
    }
    match write_control(Path::new(d), letters) {
        Ok(()) => 0,
        Err(CtlError::NotListening) => {
            if strict {
                eprintln!("s6-svc: fatal: : unable to control {d}: supervisor not listening");
            } else {
                eprintln!(
                    "{prog}: fatal: unable to control {d}: supervisor not listening (no reader on {d}/supervise/control)"
                );
            }
            EXIT_USAGE
        }
        Err(CtlError::BadSuperviseDir(e)) => {
            eprintln!(
                "{prog}: fatal: something is wrong with the {d}/supervise directory: {}",
                errstr(&e)
            );
            EXIT_USAGE
        }
        Err(CtlError::Io(e)) => {
            eprintln!("{prog}: fatal: unable to control {d}: {}", errstr(&e));
            EXIT_SYS
        }
    }
}

/// One watched service during a `-w` wait.
struct Watch {
    sd: PathBuf,
    name: String,
    listener: Listener,
    format: Format,
    goal: WaitFor,
    /// For restarts: the down phase is over.
    phase2: bool,
    up: bool,
    ready: bool,
    init_pid: u64,
    init_stamp: crate::tai::Tai64N,
    done: Option<bool>,
}

impl Watch {
    fn target(&self) -> (bool, bool) {
        match self.goal {
            WaitFor::Up => (true, false),
            WaitFor::UpReady => (true, true),
            WaitFor::Down => (false, false),
            WaitFor::DownReady => (false, true),
            WaitFor::Restart if self.phase2 => (true, false),
            WaitFor::RestartReady if self.phase2 => (true, true),
            WaitFor::Restart | WaitFor::RestartReady => (false, true),
        }
    }

    fn satisfied(&self) -> bool {
        let (up, ready) = self.target();
        self.up == up && (!ready || self.ready)
    }

    /// Re-evaluates after a state change; moves restarts to their second phase.
    fn settle(&mut self) {
        if self.done.is_some() {
            return;
        }
        if self.satisfied() {
            if matches!(self.goal, WaitFor::Restart | WaitFor::RestartReady) && !self.phase2 {
                self.phase2 = true;
                if self.satisfied() {
                    self.done = Some(true);
                }
            } else {
                self.done = Some(true);
            }
        }
    }

    fn event(&mut self, c: u8) {
        if self.done.is_some() {
            return;
        }
        match c {
            b'x' => {
                if !self.satisfied() {
                    self.done = Some(false);
                }
            }
            b'O' => {
                if self.target().0 {
                    self.done = Some(false);
                } else {
                    self.up = false;
                }
            }
            b'u' | b'U' | b'd' | b'D' => {
                self.up = c == b'u' || c == b'U';
                self.ready = c == b'U' || c == b'D';
            }
            _ => return,
        }
        self.settle();
    }

    /// For runit-format dirs: derive the state from a fresh read of the status file.
    fn poll_status(&mut self) {
        if self.done.is_some() {
            return;
        }
        if let Ok(false) = lock::supervised(&crate::rundir::supervise_dir(&self.sd)) {
            // The supervisor is gone: take its last status into account, then act as
            // on s6's `x` event.
            if let Ok(v) = View::read(&self.sd) {
                self.up = v.up;
                self.ready = !v.up && !v.finishing;
                self.settle();
            }
            self.event(b'x');
            if self.done.is_none() {
                self.done = Some(false);
            }
            return;
        }
        let Ok(v) = View::read(&self.sd) else { return };
        let (_, _, _, _, _, stamp) = v.as_runit();
        if !self.phase2
            && matches!(self.goal, WaitFor::Restart | WaitFor::RestartReady)
            && (v.pid != self.init_pid || stamp != self.init_stamp)
        {
            // The service went down and came back between two reads.
            self.phase2 = true;
        }
        if v.up != self.up {
            self.up = v.up;
            self.ready = !v.up && !v.finishing;
        } else if !v.up {
            self.ready = !v.finishing;
        }
        if v.up && !self.ready {
            // The runit layout has no ready flag: rsv's supervisor keeps one in rsv-state.
            self.ready = rsv_ready(&self.sd);
        }
        self.settle();
    }
}

/// rsv's supervisor says, in `supervise/rsv-state`, that the service is up and ready.
fn rsv_ready(sd: &Path) -> bool {
    crate::extstate::read(&crate::rundir::supervise_dir(sd)).is_ok_and(|st| st.ready)
}

fn wait_and_control(prog: &str, a: &S6SvcArgs, wait: WaitFor, strict: bool) -> i32 {
    let wprog = if !strict {
        "rsvc"
    } else if a.letters.is_empty() {
        "s6-svwait"
    } else {
        "s6-svlisten1"
    };
    let deadline = (a.timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(a.timeout_ms));
    let mut watches = Vec::new();
    for d in &a.dirs {
        let sd = PathBuf::from(d);
        let mut goal = wait;
        // rsvc also accepts readiness decided by the supervisor running `check` (s6-svc
        // knows only notification-fd).
        if wait.wants_readiness()
            && !sd.join("notification-fd").exists()
            && (strict || !sd.join("check").exists())
        {
            eprintln!(
                "{prog}: warning: {d}/notification-fd not present - ignoring request for readiness notification"
            );
            goal = wait.downgrade();
        }
        let listener = match Listener::subscribe(&crate::rundir::event_dir(&sd)) {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "{wprog}: fatal: unable to subscribe to events for {d}: {}",
                    errstr(&e)
                );
                return EXIT_SYS;
            }
        };
        let v = match View::read(&sd) {
            // s6's readers need the 35-byte layout.
            Ok(v) if strict && v.format == Format::Runit => {
                eprintln!("{wprog}: fatal: unable to s6_svstatus_read: Broken pipe");
                return EXIT_SYS;
            }
            Ok(v) => v,
            Err(e) if strict && e.kind() == io::ErrorKind::InvalidData => {
                eprintln!("{wprog}: fatal: unable to s6_svstatus_read: Broken pipe");
                return EXIT_SYS;
            }
            Err(e) => {
                if strict {
                    eprintln!("{wprog}: fatal: unable to s6_svstatus_read: {}", errstr(&e));
                } else {
                    eprintln!(
                        "{wprog}: fatal: unable to read status for {d}: {d}/supervise/status: {}",
                        errstr(&e)
                    );
                }
                return EXIT_SYS;
            }
        };
        let (_, _, _, _, _, stamp) = v.as_runit();
        let ready =
            v.ready || (v.format == Format::Runit && (!v.up && !v.finishing || rsv_ready(&sd)));
        let mut w = Watch {
            sd,
            name: d.clone(),
            listener,
            format: v.format,
            goal,
            phase2: false,
            up: v.up,
            ready,
            init_pid: v.pid,
            init_stamp: stamp,
            done: None,
        };
        w.settle();
        watches.push(w);
    }
    if !a.letters.is_empty() || !strict {
        for w in &watches {
            let rc = control_one(prog, &w.name, a.letters.as_bytes(), strict);
            // s6-svlisten1 ignores its s6-svc child's failure; rsvc stops.
            if rc != 0 && !strict {
                return rc;
            }
        }
    }
    loop {
        if watches.iter().all(|w| w.done.is_some()) {
            break;
        }
        let mut step = Duration::from_millis(100);
        if let Some(dl) = deadline {
            let now = Instant::now();
            if now >= dl {
                eprintln!("{wprog}: fatal: timed out");
                return 99;
            }
            step = step.min(dl - now);
        }
        let mut fds: Vec<PollFd> = watches
            .iter()
            .map(|w| PollFd::new(w.listener.reader().as_fd(), PollFlags::POLLIN))
            .collect();
        let ms = step.as_millis().max(1) as u16;
        let _ = poll(&mut fds, PollTimeout::from(ms));
        drop(fds);
        for w in watches.iter_mut() {
            if let Ok(ev) = w.listener.read_events() {
                for c in ev {
                    w.event(c);
                }
            }
            if w.format == Format::Runit {
                w.poll_status();
            } else if !strict && w.done.is_none() {
                // A supervisor killed by SIGKILL sends no `x`: notice the lock going away.
                if let Ok(false) = lock::supervised(&crate::rundir::supervise_dir(&w.sd)) {
                    w.event(b'x');
                    w.done.get_or_insert(false);
                }
            }
        }
    }
    let failed: Vec<&Watch> = watches.iter().filter(|w| w.done == Some(false)).collect();
    if failed.is_empty() {
        return 0;
    }
    if wprog == "s6-svwait" {
        eprintln!(
            "s6-svwait: fatal: some services reported permanent failure or their supervisor died"
        );
        return failed.len() as i32;
    }
    for w in &failed {
        eprintln!(
            "{wprog}: fatal: {} failed permanently or its supervisor died",
            w.name
        );
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn personality_rules() {
        assert_eq!(
            personality("s6-svc", &v(&["status", "x"])),
            Personality::S6Svc
        );
        assert_eq!(personality("sv", &v(&["-d", "x"])), Personality::Sv);
        assert_eq!(personality("foo", &v(&["status"])), Personality::Lsb);
        assert_eq!(personality("rsvc", &v(&["-d", "x"])), Personality::Rsvc);
        assert_eq!(
            personality("rsvc", &v(&["-wu", "-u", "x"])),
            Personality::Rsvc
        );
        assert_eq!(
            personality("rsvc", &v(&["-w", "u", "x"])),
            Personality::Rsvc
        );
        assert_eq!(
            personality("rsvc", &v(&["-w", "5", "up", "x"])),
            Personality::Sv
        );
        assert_eq!(
            personality("rsvc", &v(&["-w5", "up", "x"])),
            Personality::Sv
        );
        assert_eq!(personality("rsvc", &v(&["-v", "up", "x"])), Personality::Sv);
        assert_eq!(personality("rsvc", &v(&["status", "x"])), Personality::Sv);
        assert_eq!(personality("rsvc", &v(&[])), Personality::Rsvc);
        assert_eq!(personality("rsvc", &v(&["/srv/a"])), Personality::Rsvc);
        // a lone command word (no such directory here): sv, which prints its usage
        assert_eq!(personality("rsvc", &v(&["status"])), Personality::Sv);
        assert_eq!(personality("rsvc", &v(&["force-stop"])), Personality::Sv);
        assert_eq!(personality("rsvc", &v(&["svc-a"])), Personality::Rsvc);
    }

    #[test]
    fn s6svc_options() {
        let a = parse_s6svc(&v(&["-wU", "-T", "500", "-du", "-x", "a", "b"])).unwrap();
        assert_eq!(a.letters, "dux");
        assert_eq!(a.wait, Some(WaitFor::UpReady));
        assert_eq!(a.timeout_ms, 500);
        assert_eq!(a.dirs, v(&["a", "b"]));
        let a = parse_s6svc(&v(&["-T100", "-w", "r", "--", "-a"])).unwrap();
        assert_eq!(
            (a.timeout_ms, a.wait, a.dirs),
            (100, Some(WaitFor::Restart), v(&["-a"]))
        );
        assert!(parse_s6svc(&v(&["-Z", "a"])).is_err());
        assert!(parse_s6svc(&v(&["-wz", "a"])).is_err());
        assert!(parse_s6svc(&v(&["-T", "x", "a"])).is_err());
        assert!(parse_s6svc(&v(&["-u"])).is_err());
    }
}
