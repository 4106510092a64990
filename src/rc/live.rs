//! The running scanner as the dependency clients see it: its published graph (`rsv-graph` in
//! the scan directory's control directory) and its control FIFO, to which a request line
//! (`+NONCE NAME...` up, `-NONCE NAME...` down) is written in one `write()`. The scanner
//! appends `req NONCE CODE FAILED` to the graph file once the request's transitions ended;
//! [`Live::wait`] polls for it.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::deps::state::{self, GraphState, ReqRec};

/// The scan directory a client talks to by default: `$RSV_SCANDIR` (rsvscan exports it to
/// its children), then s6-overlay's `/run/service`.
pub fn default_scandir() -> PathBuf {
    match std::env::var_os("RSV_SCANDIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/run/service"),
    }
}

/// A scan directory and its (possibly relocated) control directory.
pub struct Live {
    pub scandir: PathBuf,
    pub ctl: PathBuf,
}

/// Why waiting for a request's outcome stopped.
#[derive(Debug)]
pub enum WaitError {
    /// The deadline passed.
    Timeout,
    /// The scanner stopped listening on its control FIFO.
    Gone,
    /// The graph file became unreadable or disappeared.
    Io(io::Error),
}

impl Live {
    pub fn at(scandir: &Path) -> Live {
        Live {
            scandir: scandir.to_path_buf(),
            ctl: crate::rundir::scan_ctl_dir(scandir),
        }
    }

    /// The graph file's path (for messages).
    pub fn graph_path(&self) -> PathBuf {
        self.ctl.join(state::FILE)
    }

    /// Whether a scanner reads the control FIFO.
    pub fn listening(&self) -> bool {
        crate::lock::ok_fifo_alive(&self.ctl.join("control")).unwrap_or(false)
    }

    /// The published graph; None when the scan directory has none.
    pub fn read(&self) -> io::Result<Option<GraphState>> {
        state::read(&self.ctl)
    }

    /// Writes a request for `names` (`*` = every service) and returns its nonce.
    pub fn send(&self, up: bool, names: &[String]) -> io::Result<u64> {
        let nonce = new_nonce();
        let line = state::request_line(up, nonce, names);
        let path = self.ctl.join("control");
        let mut f = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)?;
        // Blocking from here: a full FIFO waits rather than splitting the line.
        let fl = nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let mut oflags = nix::fcntl::OFlag::from_bits_truncate(fl);
        oflags.remove(nix::fcntl::OFlag::O_NONBLOCK);
        nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_SETFL(oflags)).map_err(io::Error::from)?;
        match f.write(line.as_bytes()) {
            Ok(n) if n == line.len() => Ok(nonce),
            Ok(_) => Err(io::Error::from_raw_os_error(libc::EPIPE)),
            Err(e) => Err(e),
        }
    }

    /// Polls the graph file every 10 ms until request `nonce` has its outcome. `seen` is
    /// called with every new version of the file (for progress messages).
    pub fn wait(
        &self,
        nonce: u64,
        deadline: Option<Instant>,
        mut seen: impl FnMut(&GraphState),
    ) -> Result<(GraphState, ReqRec), WaitError> {
        let mut last_text = String::new();
        let mut last_check = Instant::now();
        loop {
            match std::fs::read_to_string(self.graph_path()) {
                Ok(t) if t != last_text => {
                    if let Ok(g) = GraphState::parse(&t) {
                        seen(&g);
                        if let Some(r) = g.req(nonce).cloned() {
                            return Ok((g, r));
                        }
                    }
                    last_text = t;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(WaitError::Io(e)),
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(WaitError::Timeout);
            }
            if now.duration_since(last_check) >= Duration::from_millis(500) {
                last_check = now;
                if !self.listening() {
                    return Err(WaitError::Gone);
                }
            }
            let mut step = Duration::from_millis(10);
            if let Some(d) = deadline {
                step = step.min(d.saturating_duration_since(now));
            }
            std::thread::sleep(step);
        }
    }
}

/// A request number unlikely to collide between clients: the pid in the high bits, the
/// wall clock's microseconds below.
fn new_nonce() -> u64 {
    let pid = u64::from(std::process::id());
    let us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    (pid << 40) ^ (us & ((1 << 40) - 1))
}
