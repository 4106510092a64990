//! Running a oneshot's `up` or `down` script: in the service directory, in a process group of
//! its own (so a timeout stops everything it started), with the scanner's stdio and
//! environment. How the file is run (execline, or its one command line) is decided by
//! [`crate::deps::script`].

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::deps::script::{self, Plan};
use crate::svdir::errtext;

/// Is `execlineb` on $PATH?
pub fn have_execline() -> bool {
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            fs::metadata(d.join("execlineb")).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    })
}

/// Starts `dir/file` (`up` or `down`); returns its pid (None: the file holds no command and
/// succeeds at once), or the one-line reason it cannot run.
pub fn spawn(dir: &Path, file: &str, shown: &str, execline: bool) -> Result<Option<i32>, String> {
    let path = dir.join(file);
    let text = fs::read_to_string(&path)
        .map_err(|e| format!("unable to read {shown}/{file}: {}", errtext(&e)))?;
    let mut cmd = match script::plan(&text, execline).map_err(|e| format!("{shown}/{file}: {e}"))? {
        Plan::Execline => {
            let mut c = Command::new("execlineb");
            c.args(["-P", file]);
            c
        }
        Plan::Direct(words) => {
            let mut c = Command::new(&words[0]);
            c.args(&words[1..]);
            c
        }
        Plan::Nothing => return Ok(None),
    };
    // No input for a script; a root without /dev/null (a bare chroot) still runs it, with
    // the scanner's stdin.
    let stdin = if Path::new("/dev/null").exists() {
        Stdio::null()
    } else {
        Stdio::inherit()
    };
    cmd.current_dir(dir).stdin(stdin).process_group(0);
    match cmd.spawn() {
        Ok(child) => {
            let pid = child.id() as i32;
            drop(child); // reaped by the scanner's waitpid(-1) loop
            Ok(Some(pid))
        }
        Err(e) => Err(format!("unable to run {shown}/{file}: {}", errtext(&e))),
    }
}

/// Ends a script that ran out of time: SIGKILL to its whole process group.
pub fn kill(pid: i32) {
    signal(pid, libc::SIGKILL);
}

/// Sends `sig` to a script's whole process group.
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on the process group of a child we started with process_group(0),
    // not reaped yet (the scanner reaps it afterwards).
    unsafe {
        libc::kill(-pid, sig);
    }
}
