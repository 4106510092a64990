//! What a service's processes use, as rsvstat shows it for every service (whether or not it
//! has resource guards): the processes of its cgroup (when the supervisor placed it in one),
//! of the tree under its `run` and of run's process group; and its leftovers: processes of
//! the last run's process group outside the current run's tree, and the members of its
//! cgroup while it is down.
//!
//! One /proc snapshot serves every service of a table.

use std::cell::OnceCell;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::cgroup::Cgroup;
use crate::extstate::ExtState;
use crate::proctree::{self, Proc};

thread_local! {
    static SNAPSHOT: OnceCell<Vec<Proc>> = const { OnceCell::new() };
}

/// A service's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub processes: u32,
    pub memory_bytes: u64,
    pub cpu_ms: u64,
    /// The supervisor's last guard sample, when it has guards.
    pub cpu_percent: Option<u64>,
    pub limit: Option<String>,
    pub cgroup: Option<String>,
    pub leftovers: Vec<i32>,
}

/// Gathers the figures of a service whose live `run` is `pid` (None when down or
/// unsupervised).
pub fn gather(pid: Option<i32>, ext: Option<&ExtState>) -> Resources {
    SNAPSHOT.with(|s| {
        let procs = s.get_or_init(proctree::snapshot);
        compute(procs, pid, ext)
    })
}

fn compute(procs: &[Proc], pid: Option<i32>, ext: Option<&ExtState>) -> Resources {
    let cg = ext.filter(|e| !e.cgroup.is_empty()).map(|e| Cgroup {
        path: PathBuf::from(&e.cgroup),
        v2: true,
    });
    let mut tree = Vec::new();
    if let Some(p) = pid {
        tree = proctree::descendants(procs, p);
        tree.extend(proctree::group(procs, p));
    }
    let cg_members = cg.as_ref().map(|c| c.members()).unwrap_or_default();
    // While run is up its cgroup's members are the service (a daemon it started counts);
    // once it is down, whatever is still in there was left behind.
    let mut left: Vec<i32> = if pid.is_none() {
        cg_members.clone()
    } else {
        Vec::new()
    };
    if let Some(e) = ext.filter(|e| e.pgid > 0 && Some(e.pgid) != pid) {
        left.extend(
            proctree::group(procs, e.pgid)
                .into_iter()
                .filter(|m| !tree.contains(m)),
        );
    }
    let mut all = tree;
    all.extend(&cg_members);
    all.sort_unstable();
    all.dedup();
    left.sort_unstable();
    left.dedup();
    left.retain(|p| procs.iter().any(|x| x.pid == *p && !x.zombie));
    let u = proctree::usage(procs, &all, false);
    Resources {
        processes: u.processes,
        memory_bytes: u.memory_bytes,
        cpu_ms: u.cpu_ms,
        cpu_percent: ext.and_then(|e| e.cpu_percent),
        limit: ext.map(|e| e.limit.clone()).filter(|l| !l.is_empty()),
        cgroup: ext.map(|e| e.cgroup.clone()).filter(|c| !c.is_empty()),
        leftovers: left,
    }
}

/// Memory for the table: `12.3M`.
pub fn short_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    let mut v = b as f64 / 1024.0;
    let mut k = 0;
    while v >= 1024.0 && k + 1 < UNITS.len() {
        v /= 1024.0;
        k += 1;
    }
    if v >= 100.0 {
        format!("{v:.0}{}", UNITS[k])
    } else {
        format!("{v:.1}{}", UNITS[k])
    }
}

/// CPU time for the table: `0.4s`, `75s`, `3h`.
pub fn short_cpu(ms: u64) -> String {
    match ms {
        0..10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        10_000..360_000 => format!("{}s", ms / 1000),
        _ => format!("{}h", ms / 3_600_000),
    }
}

impl Resources {
    /// `,"resources":{...}` for `rsvstat --json`.
    pub fn json(&self, o: &mut String) {
        let _ = write!(
            o,
            ",\"resources\":{{\"processes\":{},\"memory_bytes\":{},\"cpu_seconds\":{}.{:03},\"cpu_percent\":",
            self.processes,
            self.memory_bytes,
            self.cpu_ms / 1000,
            self.cpu_ms % 1000
        );
        match self.cpu_percent {
            Some(c) => {
                let _ = write!(o, "{c}");
            }
            None => o.push_str("null"),
        }
        for (key, v) in [("limit", &self.limit), ("cgroup", &self.cgroup)] {
            let _ = write!(o, ",\"{key}\":");
            match v {
                Some(s) => super::json_str(o, s),
                None => o.push_str("null"),
            }
        }
        let pids: Vec<String> = self.leftovers.iter().map(|p| p.to_string()).collect();
        let _ = write!(o, ",\"leftovers\":[{}]}}", pids.join(","));
    }

    /// Items for the human line (only what is unusual: an exceeded limit, leftovers).
    pub fn items(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(l) = &self.limit {
            v.push(format!("limit: {l}"));
        }
        if !self.leftovers.is_empty() {
            let pids: Vec<String> = self.leftovers.iter().map(|p| p.to_string()).collect();
            v.push(format!("leftovers: {}", pids.join(" ")));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, pgid: i32) -> Proc {
        Proc::idle(pid, ppid, pgid)
    }

    #[test]
    fn leftovers_are_the_old_group_outside_the_current_tree() {
        let procs = [p(1, 0, 1), p(50, 1, 40), p(60, 1, 60), p(61, 60, 60)];
        let ext = ExtState {
            pgid: 40,
            ..Default::default()
        };
        let r = compute(&procs, Some(60), Some(&ext));
        assert_eq!(r.leftovers, vec![50]);
        assert_eq!(r.processes, 2);
        let cur = ExtState {
            pgid: 60,
            ..Default::default()
        };
        assert!(compute(&procs, Some(60), Some(&cur)).leftovers.is_empty());
        assert_eq!(compute(&procs, None, Some(&cur)).leftovers, vec![60, 61]);
    }

    #[test]
    fn short_figures() {
        assert_eq!(short_bytes(12 << 20), "12.0M");
        assert_eq!(short_bytes(300 << 10), "300K");
        assert_eq!(short_cpu(420), "0.4s");
        assert_eq!(short_cpu(75_000), "75s");
        assert_eq!(short_cpu(7_200_000), "2h");
    }
}
