//! The scanner's loop: sleep in poll(2) until a signal, a control command, an inotify event,
//! a line for the process title or a deadline, then act on it.

use super::*;

impl Scanner {
    pub(super) fn main_loop(&mut self) -> i32 {
        let mut buf = vec![0u8; 4096];
        loop {
            self.handle_signals();
            self.read_control();
            self.read_inotify(&mut buf);
            self.read_log(&mut buf);
            self.read_reports(&mut buf);
            self.reap();
            self.pump_mux();
            if self.stop.is_none() {
                if self.need_scan {
                    self.scan();
                }
                self.restarts();
            }
            self.graph_tick();
            self.graph_essential();
            let now = Instant::now();
            self.main_tick(now);
            if let Some(r) = self.next_rescan {
                if now >= r {
                    self.need_scan = true;
                    // (Without -t, a rescan was only due after a scan that failed.)
                    self.next_rescan = (self.opts.rescan_ms > 0)
                        .then(|| now + Duration::from_millis(self.opts.rescan_ms));
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
    pub(super) fn timeout(&self, now: Instant) -> Option<u64> {
        let mut t: Option<Instant> = self.next_rescan;
        let mut nearer = |x: Instant| {
            t = Some(match t {
                Some(y) if y <= x => y,
                _ => x,
            })
        };
        if let Some(g) = self.graph_deadline() {
            nearer(g);
        }
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

    pub(super) fn wait(&mut self, timeout: Option<u64>) {
        let to = match timeout {
            None => PollTimeout::NONE,
            Some(ms) => PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX),
        };
        let r = {
            let mut fds = vec![
                PollFd::new(std::os::fd::AsFd::as_fd(&self.sig_r), PollFlags::POLLIN),
                PollFd::new(std::os::fd::AsFd::as_fd(&self.inotify), PollFlags::POLLIN),
                PollFd::new(std::os::fd::AsFd::as_fd(&self.ctl), PollFlags::POLLIN),
                PollFd::new(std::os::fd::AsFd::as_fd(&self.report_r), PollFlags::POLLIN),
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

    pub(super) fn handle_signals(&mut self) {
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
    pub(super) fn hook(&self, sig: i32) -> bool {
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

    pub(super) fn on_signal(&mut self, sig: i32) {
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

    /// Reads the control FIFO: single letters (s6-svscanctl's), and request lines for the
    /// dependency graph (`+NONCE NAMES\n`, `-NONCE NAMES\n`), each written in one write().
    pub(super) fn read_control(&mut self) {
        let mut b = [0u8; 4096];
        loop {
            let n = match self.ctl.read(&mut b) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            let mut k = 0;
            while k < n {
                let c = b[k];
                if c == b'+' || c == b'-' {
                    let end = b[k..n]
                        .iter()
                        .position(|&x| x == b'\n')
                        .map_or(n, |p| k + p);
                    let line = String::from_utf8_lossy(&b[k..end]).into_owned();
                    self.graph_request(&line);
                    k = end + 1;
                    continue;
                }
                if c != b'\n' {
                    self.letter(c);
                }
                k += 1;
            }
        }
    }

    /// Drains the report pipe: the engine looks at its longruns on its next round.
    pub(super) fn read_reports(&mut self, buf: &mut [u8]) {
        while matches!(self.report_r.read(buf), Ok(n) if n > 0) {}
    }

    /// s6-svscanctl's letters, in both modes.
    pub(super) fn letter(&mut self, c: u8) {
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

    pub(super) fn read_inotify(&mut self, buf: &mut [u8]) {
        // Any event (IN_Q_OVERFLOW included) means: rescan everything.
        while let Ok(ev) = self.inotify.read_events(buf) {
            if ev.count() == 0 {
                break;
            }
            self.need_scan = true;
        }
    }

    pub(super) fn read_log(&mut self, buf: &mut [u8]) {
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
    pub(super) fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(st) => {
                    if let Some(pid) = st.pid() {
                        if self.graph_reaped(pid.as_raw(), &st) {
                            continue;
                        }
                        self.reaped(pid.as_raw(), &st);
                        self.died(pid.as_raw());
                    }
                }
            }
        }
    }
}
