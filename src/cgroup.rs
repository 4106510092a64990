//! One cgroup per service, where the supervisor can create one: a child of its own cgroup in
//! the cgroup v2 hierarchy when that is mounted and writable, else in the v1 `pids`
//! hierarchy. The cgroup only groups processes (no controller is enabled, no limit set):
//! every process `run` starts stays in it, even one that double-forks out of its process
//! group, so the supervisor can find and stop all of them and sum what they use.
//!
//! Where none can be created (no cgroup file system, read-only as in an unprivileged
//! container, another user's hierarchy) [`Cgroup::create`] returns `None` and the callers
//! fall back to the process group.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A cgroup the supervisor created for a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    pub path: PathBuf,
    /// In the unified (v2) hierarchy.
    pub v2: bool,
}

/// The mount point of a hierarchy and the mount's root inside it, from /proc/self/mountinfo:
/// cgroup2 when `controller` is None, else the v1 hierarchy holding `controller`.
fn mount_of(mountinfo: &str, controller: Option<&str>) -> Option<(String, String)> {
    for line in mountinfo.lines() {
        let (pre, post) = line.split_once(" - ")?;
        let pre: Vec<&str> = pre.split_whitespace().collect();
        let post: Vec<&str> = post.split_whitespace().collect();
        let (Some(root), Some(mnt), Some(fstype)) = (pre.get(3), pre.get(4), post.first()) else {
            continue;
        };
        let ok = match controller {
            None => *fstype == "cgroup2",
            Some(c) => {
                *fstype == "cgroup"
                    && post
                        .get(2)
                        .is_some_and(|opts| opts.split(',').any(|o| o == c))
            }
        };
        if ok {
            return Some((root.to_string(), mnt.to_string()));
        }
    }
    None
}

/// Our own cgroup path in a hierarchy, from /proc/self/cgroup (`0::/x` for v2,
/// `N:a,b:/x` for v1).
fn own_path(cgroup: &str, controller: Option<&str>) -> Option<String> {
    cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
        let ok = match controller {
            None => ctl.is_empty(),
            Some(c) => ctl.split(',').any(|x| x == c),
        };
        ok.then(|| path.to_string())
    })
}

/// Joins the mount point, and our path relative to the mount's root.
fn dir_of(root: &str, mnt: &str, own: &str) -> PathBuf {
    let rel = own
        .strip_prefix(root)
        .unwrap_or(own)
        .trim_start_matches('/');
    Path::new(mnt).join(rel)
}

/// The cgroup name for a service directory (its absolute path, made one file name).
pub fn name_for(service: &Path) -> String {
    let s: String = service
        .to_string_lossy()
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    let s = format!("rsv{s}");
    // Keep the end (the service name) within the 255-byte limit.
    let mut start = s.len().saturating_sub(200);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

impl Cgroup {
    /// Creates (or reuses) cgroup `name` under the supervisor's own cgroup.
    pub fn create(name: &str) -> Option<Cgroup> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        for (controller, v2) in [(None, true), (Some("pids"), false)] {
            let (Some((root, mnt)), Some(path)) =
                (mount_of(&mountinfo, controller), own_path(&own, controller))
            else {
                continue;
            };
            let dir = dir_of(&root, &mnt, &path).join(name);
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(_) => continue,
            }
            let procs = dir.join("cgroup.procs");
            if fs::OpenOptions::new().write(true).open(&procs).is_ok() {
                return Some(Cgroup { path: dir, v2 });
            }
            let _ = fs::remove_dir(&dir);
        }
        None
    }

    /// The file a process writes `0` to in order to join.
    pub fn procs_file(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    /// Its processes now.
    pub fn members(&self) -> Vec<i32> {
        fs::read_to_string(self.procs_file())
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// Sends `sig` to every member (v2 SIGKILL: `cgroup.kill`, which also catches processes
    /// forked meanwhile).
    pub fn signal(&self, sig: i32) {
        if sig == libc::SIGKILL && self.v2 && fs::write(self.path.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for pid in self.members() {
            // SAFETY: signalling a member of the service's own cgroup.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// Memory charged to it (v2 `memory.current`, when the memory controller is enabled).
    pub fn memory(&self) -> Option<u64> {
        fs::read_to_string(self.path.join("memory.current"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// CPU time of all processes that ever ran in it (v2 `cpu.stat`), ms.
    pub fn cpu_ms(&self) -> Option<u64> {
        let t = fs::read_to_string(self.path.join("cpu.stat")).ok()?;
        let usec: u64 = t
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))?
            .trim()
            .parse()
            .ok()?;
        Some(usec / 1000)
    }

    /// Removes it (only possible once empty).
    pub fn remove(&self) -> bool {
        fs::remove_dir(&self.path).is_ok()
    }

    /// Removes it, retrying for up to `ms` while the kernel still counts a process that
    /// has just been reaped (rmdir fails with EBUSY for a moment).
    pub fn remove_wait(&self, ms: u64) -> bool {
        let end = std::time::Instant::now() + std::time::Duration::from_millis(ms);
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => return true,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(_) => return false,
            }
            if std::time::Instant::now() >= end {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
32 30 0:28 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
33 30 0:29 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";

    #[test]
    fn hierarchies() {
        assert_eq!(
            mount_of(MOUNTINFO, None),
            Some(("/".into(), "/sys/fs/cgroup/unified".into()))
        );
        assert_eq!(
            mount_of(MOUNTINFO, Some("pids")),
            Some(("/".into(), "/sys/fs/cgroup/pids".into()))
        );
        assert_eq!(mount_of(MOUNTINFO, Some("cpu")), None);
        let own = "8:pids:/a/b\n4:memory:/docker/abc/x\n0::/svc\n";
        assert_eq!(own_path(own, None).as_deref(), Some("/svc"));
        assert_eq!(own_path(own, Some("pids")).as_deref(), Some("/a/b"));
        let (root, mnt) = mount_of(MOUNTINFO, Some("memory")).unwrap();
        let own_mem = own_path(own, Some("memory")).unwrap();
        assert_eq!(
            dir_of(&root, &mnt, &own_mem),
            PathBuf::from("/sys/fs/cgroup/memory/x")
        );
        assert_eq!(
            dir_of("/", "/sys/fs/cgroup/unified", "/"),
            PathBuf::from("/sys/fs/cgroup/unified/")
        );
    }

    #[test]
    fn names() {
        assert_eq!(name_for(Path::new("/srv/scan/web")), "rsv_srv_scan_web");
        let long = format!("/{}/web", "x".repeat(400));
        let n = name_for(Path::new(&long));
        assert!(n.len() <= 200 && n.ends_with("_web"));
    }
}
