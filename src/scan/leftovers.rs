//! Processes that services leave behind while an orderly stop is under way.
//!
//! A run script such as `trap 'exit 0' TERM; prog & wait` exits on SIGTERM and leaves `prog`
//! running, reparented to the scanner (PID 1, or child subreaper). Such a leftover still
//! holds the service's end of its logger's pipe, so the logger never sees end of file, its
//! supervisor never exits, and the stop would last until the shutdown bound. So, during the
//! stop, every child of the scanner that is neither a supervisor nor the main command gets
//! SIGTERM and SIGCONT as soon as it is seen (once), instead of only after every supervisor
//! has exited.

use std::collections::HashSet;

/// How often the scanner looks for new leftovers while supervisors are still stopping.
pub const SWEEP_MS: u64 = 100;

/// The leftovers already signalled during this stop.
#[derive(Debug, Default)]
pub struct Leftovers {
    termed: HashSet<i32>,
}

impl Leftovers {
    /// The children to signal now: not kept (supervisors, the main command) and not signalled
    /// before. They are recorded as signalled.
    pub fn pick(&mut self, children: &[i32], keep: &HashSet<i32>) -> Vec<i32> {
        let mut v = Vec::new();
        for &p in children {
            if p > 0 && !keep.contains(&p) && self.termed.insert(p) {
                v.push(p);
            }
        }
        v
    }

    /// Sends SIGTERM and SIGCONT to the children `pick` chooses.
    pub fn sweep(&mut self, children: &[i32], keep: &HashSet<i32>) {
        for p in self.pick(children, keep) {
            // SAFETY: kill(2) on a child of ours (a reparented leftover), not reaped yet.
            unsafe {
                libc::kill(p, libc::SIGTERM);
                libc::kill(p, libc::SIGCONT);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_each_leftover_once_and_never_a_kept_pid() {
        let mut l = Leftovers::default();
        let keep: HashSet<i32> = [10, 11].into_iter().collect();
        assert_eq!(l.pick(&[10, 11, 20], &keep), vec![20]);
        assert_eq!(l.pick(&[10, 11, 20, 21], &keep), vec![21]);
        assert!(l.pick(&[10, 20, 21], &keep).is_empty());
        assert!(l.pick(&[0, -1], &HashSet::new()).is_empty());
    }
}
