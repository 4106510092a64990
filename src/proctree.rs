//! A service's processes as /proc shows them: the tree under its `run` process, the members
//! of its process group, and what they use (memory, CPU time, descriptors). Used by the
//! supervisor's resource guards and by `rsvstat`; nothing here signals anything.

use std::fs;

/// One process, from `/proc/PID/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    /// A zombie (or dead) process: uses nothing, about to go.
    pub zombie: bool,
}

impl Proc {
    /// A live process that has used no CPU time (for tests of the tree logic).
    pub fn idle(pid: i32, ppid: i32, pgid: i32) -> Proc {
        Proc {
            pid,
            ppid,
            pgid,
            ticks: 0,
            zombie: false,
        }
    }
}

/// Parses the text of `/proc/PID/stat`.
pub fn parse_stat(pid: i32, text: &str) -> Option<Proc> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields from 3 (state): ppid 4, pgrp 5, utime 14, stime 15.
    let num = |k: usize| f.get(k - 3)?.parse::<u64>().ok();
    Some(Proc {
        pid,
        ppid: num(4)? as i32,
        pgid: num(5)? as i32,
        ticks: num(14)? + num(15)?,
        zombie: matches!(f.first(), Some(&("Z" | "X" | "x"))),
    })
}

/// One process, if it exists.
pub fn read(pid: i32) -> Option<Proc> {
    parse_stat(pid, &fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process of the system (those that vanish while reading are skipped).
pub fn snapshot() -> Vec<Proc> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read)
        .collect()
}

/// `root` and all its descendants (pure; `procs` is a snapshot). Empty when `root` is not in
/// the snapshot.
pub fn descendants(procs: &[Proc], root: i32) -> Vec<i32> {
    if !procs.iter().any(|p| p.pid == root) {
        return Vec::new();
    }
    let mut out = vec![root];
    let mut k = 0;
    while k < out.len() {
        let parent = out[k];
        for p in procs {
            if p.ppid == parent && !out.contains(&p.pid) {
                out.push(p.pid);
            }
        }
        k += 1;
    }
    out
}

/// Live (non-zombie) members of process group `pgid`.
pub fn group(procs: &[Proc], pgid: i32) -> Vec<i32> {
    procs
        .iter()
        .filter(|p| p.pgid == pgid && !p.zombie)
        .map(|p| p.pid)
        .collect()
}

/// What a set of processes uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Sum of PSS (RSS where smaps_rollup cannot be read), bytes.
    pub memory_bytes: u64,
    /// CPU time (user + system) of the live processes, ms.
    pub cpu_ms: u64,
    /// Open descriptors (those that can be counted).
    pub fds: u64,
    pub processes: u32,
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

fn clock_ticks() -> u64 {
    // SAFETY: as above.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// Memory of one process: `Pss:` of smaps_rollup, else RSS from statm.
pub fn memory(pid: i32) -> Option<u64> {
    if let Ok(t) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
        if let Some(kb) = t
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            return Some(kb * 1024);
        }
    }
    let statm = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let rss: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(rss * page_size())
}

/// Open descriptors of one process.
pub fn fds(pid: i32) -> Option<u64> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// What `pids` use (`procs` gives their CPU ticks). `with_fds` counts descriptors too.
pub fn usage(procs: &[Proc], pids: &[i32], with_fds: bool) -> Usage {
    let hz = clock_ticks();
    let mut u = Usage::default();
    for &pid in pids {
        let Some(p) = procs.iter().find(|p| p.pid == pid) else {
            continue;
        };
        if p.zombie {
            continue;
        }
        u.processes += 1;
        u.cpu_ms += p.ticks * 1000 / hz;
        u.memory_bytes += memory(pid).unwrap_or(0);
        if with_fds {
            u.fds += fds(pid).unwrap_or(0);
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, pgid: i32) -> Proc {
        Proc::idle(pid, ppid, pgid)
    }

    #[test]
    fn stat_lines() {
        let s = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 500 1000 50";
        let x = parse_stat(42, s).unwrap();
        assert_eq!((x.ppid, x.pgid, x.ticks, x.zombie), (1, 42, 10, false));
        assert!(parse_stat(1, "garbage").is_none());
        let z = "7 (z) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        assert!(parse_stat(7, z).unwrap().zombie);
    }

    #[test]
    fn trees_and_groups() {
        let procs = [
            p(1, 0, 1),
            p(10, 1, 10),
            p(11, 10, 10),
            p(12, 11, 12),
            p(13, 1, 10),
            p(20, 1, 20),
        ];
        assert_eq!(descendants(&procs, 10), vec![10, 11, 12]);
        assert_eq!(descendants(&procs, 99), Vec::<i32>::new());
        assert_eq!(group(&procs, 10), vec![10, 11, 13]);
    }

    #[test]
    fn own_usage() {
        let me = std::process::id() as i32;
        let procs = snapshot();
        let u = usage(&procs, &[me], true);
        assert_eq!(u.processes, 1);
        assert!(u.memory_bytes > 0 && u.fds >= 3, "{u:?}");
    }
}
