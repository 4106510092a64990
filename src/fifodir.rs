//! s6's event fifodir (`SD/event/`): supervisors broadcast event letters to every listener
//! FIFO in it; clients (`s6-svwait`, `rsvc -w…`) subscribe by creating a FIFO there.
//!
//! Listener FIFOs are named `ftrig1:@<24 hex TAI64N>:<6 chars>` (39 bytes).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::tai::{Family, Tai64N};

const PREFIX: &str = "ftrig1:@";
const NAME_LEN: usize = 39;

/// Creates the fifodir if missing: mode 03730, group = our egid (compat.md 3.3).
/// An existing directory is left untouched.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {
            let gid = nix::unistd::getegid();
            let _ = nix::unistd::chown(dir, None, Some(gid));
            fs::set_permissions(dir, fs::Permissions::from_mode(0o3730))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `letters` to every listener FIFO in `dir`, removing FIFOs nobody reads any more.
/// Errors on single listeners are not reported: a dead listener must not disturb the broadcast.
pub fn broadcast(dir: &Path, letters: &[u8]) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for ent in rd.flatten() {
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() != NAME_LEN || !name.starts_with(PREFIX) {
            continue;
        }
        let path = ent.path();
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(mut f) => {
                if let Err(e) = f.write_all(letters) {
                    if e.raw_os_error() == Some(libc::EPIPE) {
                        let _ = fs::remove_file(&path);
                    }
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                let _ = fs::remove_file(&path);
            }
            Err(_) => {}
        }
    }
}

/// A subscription: a FIFO in the fifodir that receives event letters until dropped.
pub struct Listener {
    path: PathBuf,
    reader: File,
    // Held so that the read side never sees EOF between broadcasts.
    _writer: File,
}

impl Listener {
    /// Subscribes to `dir` (created first if missing, as s6-svwait does).
    pub fn subscribe(dir: &Path) -> io::Result<Listener> {
        ensure_dir(dir)?;
        let stamp = Tai64N::now(Family::S6).to_hex();
        let mut seed = std::process::id() as u64 ^ (stamp.len() as u64) << 32;
        seed ^= std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut suffix = String::new();
        for _ in 0..6 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            suffix.push(alphabet[(seed >> 33) as usize % alphabet.len()] as char);
        }
        let name = format!("{PREFIX}{}:{suffix}", &stamp[1..]);
        debug_assert_eq!(name.len(), NAME_LEN);
        let hidden = dir.join(format!(".{name}"));
        let path = dir.join(&name);
        nix::unistd::mkfifo(&hidden, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(io::Error::from)?;
        // Mode 0622 (s6 2.11 makes 0600): a supervisor running under another uid (an
        // unprivileged tree watched by root) must be able to open it for writing. Who else
        // may write is limited by the fifodir itself (03730: no access for others).
        if let Err(e) = fs::set_permissions(&hidden, fs::Permissions::from_mode(0o622)) {
            let _ = fs::remove_file(&hidden);
            return Err(e);
        }
        let open = || -> io::Result<(File, File)> {
            let reader = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&hidden)?;
            let writer = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&hidden)?;
            fs::rename(&hidden, &path)?;
            Ok((reader, writer))
        };
        match open() {
            Ok((reader, writer)) => Ok(Listener {
                path,
                reader,
                _writer: writer,
            }),
            Err(e) => {
                let _ = fs::remove_file(&hidden);
                Err(e)
            }
        }
    }

    /// The descriptor to poll for readability.
    pub fn reader(&self) -> &File {
        &self.reader
    }

    /// Reads whatever letters have arrived (non-blocking; empty if none).
    pub fn read_events(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_reaches_listener_and_drops_dead_fifos() {
        let dir = std::env::temp_dir().join(format!("rsv-fifodir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        ensure_dir(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o3730);
        let mut l = Listener::subscribe(&dir).unwrap();
        // A FIFO with no reader: removed at the first broadcast.
        let dead = dir.join("ftrig1:@400000006b089ea52902bae6:abcdef");
        nix::unistd::mkfifo(&dead, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        broadcast(&dir, b"ud");
        assert_eq!(l.read_events().unwrap(), b"ud");
        assert!(!dead.exists());
        drop(l);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
