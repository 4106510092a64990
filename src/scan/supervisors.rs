//! Starting, restarting and signalling the supervisors (one `rsupervise` per service).

use super::fds;
use super::*;
use crate::report::VAR as REPORT_VAR;

impl Scanner {
    pub(super) fn died(&mut self, pid: i32) {
        let Some(id) = self.by_pid.remove(&pid) else {
            return;
        };
        if let Some(name) = self.svcs.get(&id).map(|s| s.name.clone()) {
            self.graph_supervisor_gone(&name);
        }
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

    pub(super) fn restarts(&mut self) {
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

    pub(super) fn start(&mut self, id: Id) {
        let Some(s) = self.svcs.get(&id) else { return };
        // A new service starts only with descriptors to spare for those already running.
        if !s.restarted {
            let pipes = self.mux.is_some() && !Path::new(&s.name).join("log").is_dir();
            if !fds::room(std::os::fd::AsFd::as_fd(&self.ctl), fds::needed(pipes)) {
                self.refuse(id);
                return;
            }
        }
        let mode = match self.opts.mode {
            Mode::S6 => "s6",
            Mode::Runit => "runit",
        };
        let mut cmd = Command::new(&self.sup_path);
        if self.opts.supervisor.is_none() {
            // The multi-call binary picks the program from argv[0].
            cmd.arg0("rsupervise");
        }
        cmd.args(["--compat", mode]);
        let member = self.graph.as_ref().is_some_and(|e| e.longrun(&s.name));
        if member {
            // A longrun of the graph: held down until its dependencies are up, and reporting
            // each change of its state on our pipe.
            if !self.graph.as_ref().is_some_and(|e| e.free_start(&s.name)) {
                cmd.arg("--held");
            }
            let fd = self.report_w.as_raw_fd();
            cmd.env(REPORT_VAR, fd.to_string());
            // SAFETY: fcntl is async-signal-safe; called in the child between fork and exec
            // on a descriptor this process owns, so that exec keeps it.
            unsafe {
                cmd.pre_exec(move || {
                    libc::fcntl(fd, libc::F_SETFD, 0);
                    Ok(())
                });
            }
        } else {
            cmd.env_remove(REPORT_VAR);
        }
        cmd.args(["--", &s.name]);
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
        let new = !s.restarted;
        let r = self
            .prefix_stdio(id, &name, &mut cmd)
            .and_then(|()| cmd.spawn());
        if new && r.as_ref().is_err_and(fds::exhausted) {
            self.refuse(id);
            return;
        }
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
                s.refused = false;
                self.by_pid.insert(pid, id);
                self.graph_spawned(&name);
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

    /// A new service whose supervisor cannot have its descriptors: one warning, then a
    /// quiet retry every second (see [`fds`]).
    fn refuse(&mut self, id: Id) {
        let dir = self.opts.dir.clone();
        let Some(s) = self.svcs.get_mut(&id) else {
            return;
        };
        s.restart_at = Some(Instant::now() + Duration::from_secs(1));
        if std::mem::replace(&mut s.refused, true) {
            return;
        }
        let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft.to_string())
            .unwrap_or_else(|_| "?".into());
        let msg = format!(
            "unable to start supervisor for {dir}/{}: too few file descriptors left \
             (limit {limit}): retrying every second",
            s.name
        );
        self.warn(&msg);
    }

    /// `--prefix`: a service without `log/` gets its prefix pipes as fd 1 and 2. Without
    /// descriptors left the start fails (it is retried); another error is warned and the
    /// service runs with rsvscan's own output.
    pub(super) fn prefix_stdio(&mut self, id: Id, name: &str, cmd: &mut Command) -> io::Result<()> {
        let Some(m) = &mut self.mux else {
            return Ok(());
        };
        if Path::new(name).join("log").is_dir() {
            return Ok(());
        }
        match m.writers(id, name) {
            Ok((o, e)) => {
                cmd.stdout(o).stderr(e);
            }
            Err(e) if fds::exhausted(&e) => return Err(e),
            Err(e) => {
                let msg = format!(
                    "unable to create the output pipes of {}/{name}: {}",
                    self.opts.dir,
                    errtext(&e)
                );
                crate::diag::warn(&self.opts.prog, &msg);
            }
        }
        Ok(())
    }

    /// `--prefix`: follows the services, copies what their pipes have.
    pub(super) fn pump_mux(&mut self) {
        let Some(m) = &mut self.mux else { return };
        let svcs = &self.svcs;
        m.sync(|id| svcs.get(id).map(|s| s.name.as_str()));
        m.pump();
    }

    pub(super) fn term(&mut self, id: Id, sig: i32) {
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
    pub(super) fn prune(&mut self, _all: bool) {
        for id in plan::prune(&self.known_view()) {
            self.term(id, libc::SIGTERM);
        }
    }
}
