//! Helpers for the rsupervise integration tests: start a supervisor on a service directory,
//! read its status, run the reference clients, and clean up by pid.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{Guard, alive, bin, kill_pid, run, wait_for};
use rsv::status::{AnyStatus, read_status};

pub const T: Duration = Duration::from_secs(10);

/// A running rsupervise (or reference supervisor) on `parent/name`.
pub struct Sup {
    pub g: Guard,
    pub parent: PathBuf,
    pub name: String,
    pub stderr: PathBuf,
}

impl Sup {
    /// Starts `prog args... name` with cwd = parent; waits until it holds `supervise/`.
    pub fn start_prog(prog: &Path, args: &[&str], parent: &Path, name: &str) -> Sup {
        let stderr = parent.join(format!("{}.stderr", name.replace('/', "_")));
        let g = Guard::spawn(
            Command::new(prog)
                .args(args)
                .arg(name)
                .current_dir(parent)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&stderr).unwrap()),
        );
        let s = Sup {
            g,
            parent: parent.to_path_buf(),
            name: name.to_string(),
            stderr,
        };
        let sd = s.sd();
        wait_for(T, "supervise/status", || {
            fs::metadata(sd.join("supervise/status")).ok().map(|_| ())
        });
        s
    }

    pub fn start(mode: &str, parent: &Path, name: &str) -> Sup {
        Sup::start_prog(&bin("rsupervise"), &["--compat", mode], parent, name)
    }

    pub fn sd(&self) -> PathBuf {
        self.parent.join(&self.name)
    }

    pub fn err(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, bounded wait, then kill any service process left over.
    pub fn stop(mut self) -> i32 {
        let pids = [pid_of(&self.sd()), pid_of(&self.sd().join("log"))];
        self.g.signal(libc::SIGTERM);
        let st = self.g.wait_exit(T);
        for p in pids.into_iter().flatten() {
            kill_pid(p);
        }
        st.code().unwrap_or(-1)
    }
}

impl Drop for Sup {
    /// A failing test must not leave services behind: they run in their own sessions, so
    /// killing the supervisor (the Guard does) is not enough.
    fn drop(&mut self) {
        if self.g.0.is_some() {
            for sd in [self.sd(), self.sd().join("log")] {
                if let Some(p) = pid_of(&sd) {
                    kill_pid(p);
                }
            }
        }
    }
}

/// The pid in SD/supervise/status (either format), if any.
pub fn pid_of(sd: &Path) -> Option<i32> {
    match read_status(&sd.join("supervise")).ok()? {
        AnyStatus::Runit(r) => (r.pid != 0).then_some(r.pid as i32),
        AnyStatus::S6(s) => (s.pid != 0).then_some(s.pid as i32),
    }
}

/// Waits until the status shows an up service with a live pid that differs from `not`.
pub fn wait_up(sd: &Path, not: Option<i32>) -> i32 {
    wait_for(T, "service up", || {
        match read_status(&sd.join("supervise")).ok()? {
            AnyStatus::Runit(r) if r.pid != 0 && r.state == rsv::status::RunitState::Run => {
                Some(r.pid as i32)
            }
            AnyStatus::S6(s) if s.is_up() => Some(s.pid as i32),
            _ => None,
        }
        .filter(|p| Some(*p) != not && alive(*p))
    })
}

pub fn wait_down(sd: &Path) {
    wait_for(T, "service down", || {
        match read_status(&sd.join("supervise")).ok()? {
            AnyStatus::Runit(r) => (r.pid == 0).then_some(()),
            AnyStatus::S6(s) => (s.pid == 0).then_some(()),
        }
    })
}

/// Runs a command with cwd `dir` (bounded), returning (code, stdout, stderr).
pub fn cmd(dir: &Path, prog: &str, args: &[&str]) -> (i32, String, String) {
    run(Command::new(prog).args(args).current_dir(dir), T)
}

/// A service directory whose run records its argv and pgid, then sleeps.
pub fn sleeper(sd: &Path) {
    crate::common::script(
        &sd.join("run"),
        "#!/bin/sh\necho \"$0|$#|$*\" > argv\ncut -d\" \" -f5 /proc/$$/stat > pgid\nexec sleep 1000\n",
    );
    crate::common::script(
        &sd.join("finish"),
        "#!/bin/sh\necho \"$#|$*\" >> finished\n",
    );
}

/// The last line of SD/finished once it has `n` lines.
pub fn finish_line(sd: &Path, n: usize) -> String {
    wait_for(T, "finish output", || {
        let s = fs::read_to_string(sd.join("finished")).ok()?;
        let lines: Vec<&str> = s.lines().collect();
        (lines.len() >= n).then(|| lines[n - 1].to_string())
    })
}

/// /proc/PID/cmdline as a space-joined string.
pub fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string()
}
