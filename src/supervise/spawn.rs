//! Starting children: `run`, `finish`, `check`, `stop`, runit's `control/<letter>`, by `fork` +
//! `execv` with everything prepared before the fork.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{Sup, What, raw_write};
use crate::machine::Mode;

impl Sup {
    /// Runs `control/<letter>` synchronously (runit); returns its exit code.
    pub(super) fn run_control(&mut self, i: usize, letter: u8) -> Option<i32> {
        let pid = self.spawn(i, What::Control(letter)).ok()?;
        loop {
            match waitpid(Pid::from_raw(pid), None) {
                Ok(WaitStatus::Exited(_, c)) => return Some(c),
                Ok(WaitStatus::Signaled(..)) => return Some(-1),
                Err(Errno::EINTR) => continue,
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Forks and execs run, finish or a control script for service `i`.
    /// Returns the pid once exec succeeded; on exec failure the child is reaped and the
    /// errno returned.
    pub(super) fn spawn(&mut self, i: usize, what: What) -> Result<i32, Errno> {
        // The child may look at the status: what a burst held back is written first.
        self.burst_flush();
        let mode = self.opts.mode;
        let s = &self.svcs[i];
        let is_log = s.m.is_log;
        let cstr = |x: &str| CString::new(x).map_err(|_| Errno::EINVAL);
        let (path, argv): (CString, Vec<CString>) = match &what {
            What::Run => match mode {
                Mode::Runit => (cstr("./run")?, vec![cstr("./run")?]),
                Mode::S6 => (cstr("./run")?, vec![cstr("run")?, s.name.clone()]),
            },
            What::Finish(a1, a2) => match mode {
                Mode::Runit => (
                    cstr("./finish")?,
                    vec![cstr("./finish")?, cstr(a1)?, cstr(a2)?],
                ),
                Mode::S6 => (
                    cstr("./finish")?,
                    vec![cstr("finish")?, cstr(a1)?, cstr(a2)?, s.name.clone()],
                ),
            },
            What::Control(c) => {
                let p = format!("control/{}", *c as char);
                (cstr(&p)?, vec![cstr(&p)?])
            }
            What::Check(..) => (cstr("./check")?, vec![cstr("./check")?]),
            What::Stop(_) => (cstr("./stop")?, vec![cstr("./stop")?]),
        };
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let chdir_log = if is_log { Some(cstr("log")?) } else { None };
        // run, finish and check get $RSV_ENVDIR and env/ applied (read fresh, before the fork).
        let mut envp: Option<Vec<CString>> = match &what {
            What::Control(_) => None,
            _ => crate::svenv::for_start(&s.dir).map_err(|e| {
                s.dir.warn(&e.msg);
                Errno::from_raw(e.errno)
            })?,
        };
        if let What::Stop(main) = what {
            envp = Some(crate::sdnotify::rt::with_vars(
                envp,
                &[("MAINPID".into(), main.to_string())],
            ));
        }
        if let (What::Run, Some(r)) = (&what, &s.sd) {
            let vars = r.env(crate::sdnotify::rt::watchdog_usec(&s.dir));
            envp = Some(crate::sdnotify::rt::with_vars(envp, &vars));
        }
        let envp_ptrs: Option<Vec<*const libc::c_char>> = envp.as_ref().map(|v| {
            let mut p: Vec<*const libc::c_char> = v.iter().map(|c| c.as_ptr()).collect();
            p.push(std::ptr::null());
            p
        });

        // Descriptor plan: fd 0 (logger: pipe read end), fd 1 (service: pipe write end),
        // fd N (run: readiness pipe write end).
        let (mut stdin_fd, mut stdout_fd, mut stderr_fd) = match &self.pipe {
            Some((r, w)) => {
                if is_log {
                    (Some(r.as_raw_fd()), None, None)
                } else {
                    (None, Some(w.as_raw_fd()), None)
                }
            }
            None => (None, None, None),
        };
        if let What::Check(null, out) = what {
            (stdin_fd, stdout_fd, stderr_fd) = (Some(null), Some(out), Some(out));
        }
        let mut notify: Option<(OwnedFd, OwnedFd, i32)> = None;
        if matches!(what, What::Run) {
            if let Some(n) = s.dir.notification_fd() {
                let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
                notify = Some((r, w, n));
            }
        }
        let notify_w = notify.as_ref().map(|(_, w, n)| (w.as_raw_fd(), *n));
        // Built-in probes run in the check child itself (cloned before the fork).
        let probes = match what {
            What::Check(..) => self.svcs[i].health.c.probes().cloned(),
            _ => None,
        };
        // stop-tree: run leads its own group and joins the service's cgroup.
        let (cgroup_procs, run_setsid) = match what {
            What::Run => self.svcs[i].mon.run_extras(),
            _ => (None, false),
        };
        // A check leads its own process group, so that a timeout kills all of it.
        let setsid = matches!(what, What::Check(..) | What::Stop(_))
            || run_setsid
            || (mode == Mode::S6 && !self.nosetsid && !matches!(what, What::Control(_)));
        let (hs_r, hs_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;

        // Block every signal across the fork: a signal that reaches the child before exec
        // must not run our handlers there; the child resets the dispositions, then unblocks.
        // SAFETY: sigprocmask with valid, initialised sets.
        let mut old_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::sigprocmask(libc::SIG_BLOCK, &all, &mut old_mask);
        }
        let restore = |old: &libc::sigset_t| {
            // SAFETY: restoring the mask saved above.
            unsafe { libc::sigprocmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
        };
        // SAFETY: the process is single-threaded (signal-hook's handlers run in the signal
        // context, no helper thread), and the child only makes async-signal-safe calls on
        // data prepared above before it execs or _exits.
        let forked = unsafe { nix::unistd::fork() };
        if forked.is_err() {
            restore(&old_mask);
        }
        match forked? {
            nix::unistd::ForkResult::Child => {
                // SAFETY: async-signal-safe libc calls only; every pointer is valid.
                unsafe {
                    for sig in [
                        libc::SIGPIPE,
                        libc::SIGCHLD,
                        libc::SIGTERM,
                        libc::SIGHUP,
                        libc::SIGINT,
                        libc::SIGQUIT,
                    ] {
                        libc::signal(sig, libc::SIG_DFL);
                    }
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                    if setsid {
                        libc::setsid();
                    }
                    if let Some(p) = &cgroup_procs {
                        let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                        if fd >= 0 {
                            raw_write(fd, b"0");
                            libc::close(fd);
                        }
                    }
                    let hs = hs_w.as_raw_fd();
                    let fail = |hs: RawFd| -> ! {
                        let e = *libc::__errno_location();
                        raw_write(hs, &e.to_ne_bytes());
                        libc::_exit(127)
                    };
                    if let Some(d) = &chdir_log {
                        if libc::chdir(d.as_ptr()) == -1 {
                            fail(hs);
                        }
                    }
                    if let Some(fd) = stdin_fd {
                        if libc::dup2(fd, 0) == -1 {
                            fail(hs);
                        }
                    }
                    if let Some(fd) = stdout_fd {
                        if libc::dup2(fd, 1) == -1 {
                            fail(hs);
                        }
                    }
                    if let Some(fd) = stderr_fd {
                        if libc::dup2(fd, 2) == -1 {
                            fail(hs);
                        }
                    }
                    if let Some((w, n)) = notify_w {
                        if w == n {
                            libc::fcntl(w, libc::F_SETFD, 0);
                        } else if libc::dup2(w, n) == -1 {
                            fail(hs);
                        }
                    }
                    if let Some(p) = &probes {
                        // Not exec'ing at once: release the supervisor from the handshake.
                        libc::close(hs);
                        crate::probe::child(p);
                    }
                    match &envp_ptrs {
                        Some(e) => libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), e.as_ptr()),
                        None => libc::execv(path.as_ptr(), argv_ptrs.as_ptr()),
                    };
                    fail(hs)
                }
            }
            nix::unistd::ForkResult::Parent { child } => {
                restore(&old_mask);
                drop(hs_w);
                let mut b = [0u8; 4];
                let mut f = File::from(hs_r);
                let got = loop {
                    match f.read(&mut b) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Ok(n) => break n,
                        Err(_) => break 0,
                    }
                };
                if got == 4 {
                    let e = Errno::from_raw(i32::from_ne_bytes(b));
                    if !matches!(what, What::Finish(..)) {
                        // Reap it now so that the loop never sees this pid.
                        let _ = waitpid(child, None);
                        return Err(e);
                    }
                    // A finish that cannot exec exits 127, as s6's does; it is reaped as
                    // usual.
                }
                if let Some((r, _w, _)) = notify {
                    let _ = nix::fcntl::fcntl(
                        &r,
                        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                    );
                    self.svcs[i].notify = Some(r);
                }
                Ok(child.as_raw())
            }
        }
    }
}

/// Appends `data` to the existing file `path` in one write.
pub(super) fn append(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().append(true).open(path)?;
    f.write_all(data)
}
