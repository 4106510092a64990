//! The orderly stop: SIGTERM to every supervisor, the `-T` bound, SIGKILL to what remains,
//! and the end (`.s6-svscan/finish`).

use super::*;

impl Scanner {
    pub(super) fn begin_stop(&mut self, code: i32, abort: bool) {
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
            // Services of the dependency graph that are up stop in reverse order (the engine
            // signals each supervisor once its dependents are down); all others at once.
            let ids: Vec<Id> = self
                .svcs
                .iter()
                .filter(|(_, s)| !self.graph_holds(&s.name))
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                self.term(id, libc::SIGTERM);
            }
            self.graph_stop_all();
        }
        self.svcs.retain(|_, s| s.pid.is_some());
        // Begin the graph's stop now: this may be called after the loop's round of the engine.
        self.graph_tick();
    }

    /// Returns the exit code once the stop is complete.
    pub(super) fn check_stop(&mut self, now: Instant) -> Option<i32> {
        let (code, abort, deadline, killed) = match &self.stop {
            Some(st) => (st.code, st.abort, st.deadline, st.killed),
            None => return None,
        };
        let killed_code = if code == 0 { EXIT_KILLED } else { code };
        let done = if killed.is_some() { killed_code } else { code };
        if abort {
            return Some(done);
        }
        let graph_idle = self.graph.as_ref().is_none_or(|e| e.idle());
        if graph_idle && self.svcs.values().all(|s| s.pid.is_none()) {
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
            // pipes open until the bound; it gets SIGTERM now (see `leftovers`). Our own
            // children stay: supervisors, the main command, the graph's oneshot scripts.
            let mut keep: std::collections::HashSet<i32> =
                self.svcs.values().filter_map(|s| s.pid).collect();
            if let Some(main_cmd::Phase::Running(p)) = self.main.as_ref().map(|m| m.phase) {
                keep.insert(p);
            }
            keep.extend(self.graph_scripts());
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
    pub(super) fn kill_all(&mut self) {
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
    pub(super) fn finish(&mut self, code: i32) -> i32 {
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
pub(super) fn children_of(me: i32) -> Vec<i32> {
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
