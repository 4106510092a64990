//! Talking to the dependency engine of rsvscan (see rsv-deps(7)): reading `rsv-graph` and
//! sending `+NONCE NAME` / `-NONCE NAME` requests on the scanner's control FIFO, so that a
//! service of the graph starts and stops in order (a oneshot's `up` and `down` are run by the
//! scanner, never twice).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::deps::plan::St;
use crate::deps::state::{self, GraphState};

/// The graph the scanner of `scandir` publishes, if any.
pub fn graph(scandir: &Path) -> Option<GraphState> {
    state::read(&crate::rundir::scan_ctl_dir(scandir)).ok()?
}

/// The engine's state of service `name`, when it is a member of the graph.
pub fn state_of(scandir: &Path, name: &str) -> Option<St> {
    graph(scandir)?.svc(name).map(|r| r.st)
}

fn nonce() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ u64::from(std::process::id()) << 32
}

/// Asks the engine to bring `name` up or down and waits (at most `limit`) for the outcome:
/// `Some(0)` done, `Some(1)` it (or what it needs) failed, `Some(3)` unknown to the engine
/// (after retrying while a new directory is being picked up), `None` no scanner or timeout.
pub fn request(scandir: &Path, up: bool, name: &str, limit: Duration) -> Option<i32> {
    let fifo = crate::rundir::scan_ctl_dir(scandir).join("control");
    let end = std::time::Instant::now() + limit;
    loop {
        let n = nonce();
        let line = state::request_line(up, n, &[name.to_string()]);
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).ok()?;
        f.write_all(line.as_bytes()).ok()?;
        drop(f);
        let mut code = None;
        crate::template::wait_until(
            end.saturating_duration_since(std::time::Instant::now()),
            || {
                code = graph(scandir).and_then(|g| g.req(n).map(|r| r.code));
                code.is_some()
            },
        );
        match code {
            // Not in the graph yet: the scanner has not seen the new directory.
            Some(3) if std::time::Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(100));
            }
            c => return c,
        }
    }
}
