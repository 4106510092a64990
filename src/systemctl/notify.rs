//! The `systemd-notify` personality, for images without systemd: sends one sd_notify
//! datagram to `$NOTIFY_SOCKET` and waits until the receiver has read it (a barrier: a
//! descriptor passed along, whose closing the receiver's read causes), so that a short-lived
//! sender is still alive while its credentials are checked.

use std::io::IoSlice;
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};

/// Exit codes: 0 sent, 1 failure (as systemd-notify), 100 usage.
pub fn main(args: &[String]) -> i32 {
    let mut lines: Vec<String> = Vec::new();
    for a in args {
        match a.as_str() {
            "--ready" => lines.push("READY=1".into()),
            "--stopping" => lines.push("STOPPING=1".into()),
            "--reloading" => lines.push("RELOADING=1".into()),
            "--booted" => {
                // Not booted with systemd.
                return 1;
            }
            "--pid" => lines.push(format!("MAINPID={}", nix::unistd::getppid().as_raw())),
            "--no-block" => {}
            s if s.starts_with("--pid=") => lines.push(format!("MAINPID={}", &s[6..])),
            s if s.starts_with("--status=") => lines.push(format!("STATUS={}", &s[9..])),
            s if s.starts_with('-') => {
                eprintln!("systemd-notify: unrecognized option '{s}'");
                return 100;
            }
            s if s.contains('=') => lines.push(s.to_string()),
            s => {
                eprintln!("systemd-notify: not an assignment: {s}");
                return 100;
            }
        }
    }
    if lines.is_empty() {
        eprintln!("systemd-notify: no status data given");
        return 100;
    }
    let Some(addr) = std::env::var_os("NOTIFY_SOCKET").filter(|a| !a.is_empty()) else {
        eprintln!("systemd-notify: NOTIFY_SOCKET is not set");
        return 1;
    };
    match send(&addr.to_string_lossy(), lines.join("\n").as_bytes()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!(
                "systemd-notify: unable to notify {}: {e}",
                addr.to_string_lossy()
            );
            1
        }
    }
}

fn send(addr: &str, data: &[u8]) -> Result<(), String> {
    let to = match addr.strip_prefix('@') {
        Some(n) => UnixAddr::new_abstract(n.as_bytes()),
        None => UnixAddr::new(addr),
    }
    .map_err(|e| e.desc().to_string())?;
    let sock = std::os::unix::net::UnixDatagram::unbound().map_err(|e| e.to_string())?;
    let fd = sock.as_raw_fd();
    sendmsg(fd, &[IoSlice::new(data)], &[], MsgFlags::empty(), Some(&to))
        .map_err(|e| e.desc().to_string())?;
    // The barrier: our end of a pipe goes along; the receiver closes it once it has read.
    let (r, w) = nix::unistd::pipe().map_err(|e| e.desc().to_string())?;
    let fds = [w.as_raw_fd()];
    sendmsg(
        fd,
        &[IoSlice::new(b"BARRIER=1")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        Some(&to),
    )
    .map_err(|e| e.desc().to_string())?;
    drop(w);
    let mut pfd = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&r),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = Duration::from_secs(5).as_millis() as u16;
    match nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms)) {
        Ok(n) if n > 0 => Ok(()),
        _ => Err("the receiver did not read the notification within 5 s".into()),
    }
}
