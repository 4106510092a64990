//! The supervisor's side of `$NOTIFY_SOCKET`: binding the datagram socket, receiving
//! datagrams with their sender's credentials, and telling whether a pid belongs to the
//! service's process tree.

use std::io;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr, bind, recvmsg,
    setsockopt, socket, sockopt,
};

use super::MAX_DATAGRAM;

/// Deepest ancestry walked when looking for the service's process.
const MAX_DEPTH: usize = 64;

/// A bound notification socket.
pub struct Socket {
    pub fd: OwnedFd,
    /// The value of `$NOTIFY_SOCKET` (`@name` for an abstract socket).
    pub addr: String,
    /// A socket file to remove when the supervisor drops the socket.
    path: Option<PathBuf>,
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// One received datagram.
pub struct Datagram {
    /// The sender's pid from SCM_CREDENTIALS (`None` if the kernel sent none).
    pub pid: Option<i32>,
    pub data: Vec<u8>,
    /// The datagram was longer than [`MAX_DATAGRAM`].
    pub oversized: bool,
    /// Descriptors passed along (systemd-notify's barrier): closed when the datagram is
    /// dropped, which releases the sender. Held until then, so that the sender is still
    /// alive (and its ancestry readable) while its credentials are checked.
    pub _fds: Vec<OwnedFd>,
}

fn sock_err(what: &str, e: nix::Error) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what}: {}", e.desc()))
}

/// Binds the socket `notify-socket` asks for: `setting` is the file's first line (empty: an
/// abstract socket named after this process; otherwise a path, relative to the current
/// directory, replaced if it exists). `tag` tells apart the service and its logger.
pub fn bind_socket(setting: &str, tag: &str) -> io::Result<Socket> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| sock_err("socket", e))?;
    setsockopt(&fd, sockopt::PassCred, &true).map_err(|e| sock_err("SO_PASSCRED", e))?;
    if setting.is_empty() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("rsv/notify/{}/{nanos}/{tag}", std::process::id());
        let addr = UnixAddr::new_abstract(name.as_bytes()).map_err(|e| sock_err("address", e))?;
        bind(fd.as_raw_fd(), &addr).map_err(|e| sock_err("bind", e))?;
        return Ok(Socket {
            fd,
            addr: format!("@{name}"),
            path: None,
        });
    }
    let mut path = std::env::current_dir()?;
    path.push(setting);
    let addr = UnixAddr::new(&path).map_err(|e| sock_err(&path.display().to_string(), e))?;
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    bind(fd.as_raw_fd(), &addr).map_err(|e| sock_err(&path.display().to_string(), e))?;
    // Anyone may connect (a service that changed user must reach it); the credentials of
    // each datagram decide whether it is heard.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
    Ok(Socket {
        fd,
        addr: path.to_string_lossy().into_owned(),
        path: Some(path),
    })
}

impl Socket {
    /// Receives one datagram without waiting; `Ok(None)` when there is none.
    pub fn recv(&self) -> io::Result<Option<Datagram>> {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        let mut cmsg = nix::cmsg_space!(libc::ucred, [std::os::fd::RawFd; 16]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let r = recvmsg::<UnixAddr>(
            self.fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
        );
        let msg = match r {
            Ok(m) => m,
            Err(nix::errno::Errno::EAGAIN) => return Ok(None),
            Err(nix::errno::Errno::EINTR) => return Ok(None),
            Err(e) => return Err(io::Error::from(e)),
        };
        let mut pid = None;
        let mut fds = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::ScmCredentials(cr) => pid = Some(cr.pid()),
                    ControlMessageOwned::ScmRights(raw) => {
                        for fd in raw {
                            // SAFETY: the kernel just installed this descriptor for us; nothing
                            // else refers to it, so it is ours to own and close.
                            fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                        }
                    }
                    _ => {}
                }
            }
        }
        let len = msg.bytes;
        let oversized = msg.flags.contains(MsgFlags::MSG_TRUNC) || len > MAX_DATAGRAM;
        buf.truncate(len.min(MAX_DATAGRAM));
        Ok(Some(Datagram {
            pid,
            data: buf,
            oversized,
            _fds: fds,
        }))
    }
}

/// The parent pid of `pid` (from `/proc/PID/stat`; a zombie still has it).
pub fn parent_of(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Is `pid` the process `root` or one of its descendants? With `adopted`, a process whose
/// parent is this supervisor (an orphan of the service it adopted as a subreaper) counts too,
/// unless it is one of `others` (the supervisor's other children).
pub fn in_tree(pid: i32, root: i32, adopted: bool, others: &[i32]) -> bool {
    let me = std::process::id() as i32;
    let mut p = pid;
    for _ in 0..MAX_DEPTH {
        if p == root {
            return true;
        }
        if p <= 1 {
            return false;
        }
        match parent_of(p) {
            Some(pp) if pp == me => return adopted && !others.contains(&p),
            Some(pp) => p = pp,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_of_this_process() {
        let me = std::process::id() as i32;
        assert!(in_tree(me, me, false, &[]));
        let parent = parent_of(me).unwrap();
        assert!(in_tree(me, parent, false, &[]));
        assert!(!in_tree(parent, me, false, &[]));
        assert!(!in_tree(i32::MAX, me, false, &[]));
    }

    #[test]
    fn abstract_socket_receives_with_credentials() {
        let s = bind_socket("", "t").unwrap();
        assert!(s.addr.starts_with("@rsv/notify/"));
        assert!(s.recv().unwrap().is_none());
        let tx = std::os::unix::net::UnixDatagram::unbound().unwrap();
        use std::os::linux::net::SocketAddrExt;
        let to =
            std::os::unix::net::SocketAddr::from_abstract_name(&s.addr.as_bytes()[1..]).unwrap();
        tx.send_to_addr(b"READY=1", &to).unwrap();
        let d = s.recv().unwrap().unwrap();
        assert_eq!(d.data, b"READY=1");
        assert_eq!(d.pid, Some(std::process::id() as i32));
        assert!(!d.oversized);
        tx.send_to_addr(&vec![b'x'; MAX_DATAGRAM + 10], &to)
            .unwrap();
        let d = s.recv().unwrap().unwrap();
        assert!(d.oversized);
    }
}
