//! The on-disk status formats of `supervise/`: runit's 20-byte `status` (plus its `stat` and
//! `pid` text files) and s6 2.11's 35-byte `status`, and s6's `death_tally` records.
//!
//! Readers tell the formats apart by the file's size (20 = runit, 35 = s6 2.11).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::tai::{Family, Tai64N};

/// Size of runit 2.1.2's `supervise/status`.
pub const RUNIT_LEN: usize = 20;
/// Size of s6 2.11's `supervise/status`.
pub const S6_LEN: usize = 35;

/// runit's state byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunitState {
    Down = 0,
    Run = 1,
    Finish = 2,
}

/// runit's 20-byte status (compat.md 3.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunitStatus {
    /// Last state change, +10 family.
    pub stamp: Tai64N,
    /// Pid of run (or finish while finishing), 0 if none.
    pub pid: u32,
    pub paused: bool,
    /// true: want up (`u`); false: want down or exit (`d`).
    pub want_up: bool,
    pub got_term: bool,
    pub state: RunitState,
}

impl RunitStatus {
    pub fn encode(&self) -> [u8; RUNIT_LEN] {
        let mut b = [0u8; RUNIT_LEN];
        b[..12].copy_from_slice(&self.stamp.to_bytes());
        b[12..16].copy_from_slice(&self.pid.to_le_bytes());
        b[16] = self.paused as u8;
        b[17] = if self.want_up { b'u' } else { b'd' };
        b[18] = self.got_term as u8;
        b[19] = self.state as u8;
        b
    }

    /// Decodes the first 20 bytes; `None` if shorter.
    pub fn decode(b: &[u8]) -> Option<RunitStatus> {
        if b.len() < RUNIT_LEN {
            return None;
        }
        let mut pid = [0u8; 4];
        pid.copy_from_slice(&b[12..16]);
        Some(RunitStatus {
            stamp: Tai64N::from_bytes(&b[..12]),
            pid: u32::from_le_bytes(pid),
            paused: b[16] != 0,
            want_up: b[17] == b'u',
            got_term: b[18] != 0,
            state: match b[19] {
                1 => RunitState::Run,
                2 => RunitState::Finish,
                _ => RunitState::Down,
            },
        })
    }

    /// The text of `supervise/stat` (compat.md 3.1.3). `want_exit` distinguishes
    /// "want exit" from "want down", which the binary status cannot.
    pub fn stat_text(&self, want_exit: bool) -> String {
        let mut s = String::from(match self.state {
            RunitState::Down => "down",
            RunitState::Run => "run",
            RunitState::Finish => "finish",
        });
        if self.paused {
            s.push_str(", paused");
        }
        if self.got_term {
            s.push_str(", got TERM");
        }
        if self.state != RunitState::Down {
            if want_exit {
                s.push_str(", want exit");
            } else if !self.want_up {
                s.push_str(", want down");
            }
        }
        s.push('\n');
        s
    }

    /// The text of `supervise/pid`: `<pid>\n`, or empty when there is no process.
    pub fn pid_text(&self) -> String {
        if self.pid == 0 {
            String::new()
        } else {
            format!("{}\n", self.pid)
        }
    }
}

/// s6 2.11's 35-byte status (compat.md 3.2.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct S6Status {
    /// Last up/down transition, s6 family.
    pub stamp: Tai64N,
    /// Last readiness change, s6 family.
    pub readystamp: Tai64N,
    /// Pid of run, or of finish while finishing; 0 if none.
    pub pid: u64,
    /// Last wait status of run, truncated to 16 bits.
    pub wstat: u16,
    pub paused: bool,
    pub finishing: bool,
    pub wantup: bool,
    pub ready: bool,
}

impl S6Status {
    pub fn encode(&self) -> [u8; S6_LEN] {
        let mut b = [0u8; S6_LEN];
        b[..12].copy_from_slice(&self.stamp.to_bytes());
        b[12..24].copy_from_slice(&self.readystamp.to_bytes());
        b[24..32].copy_from_slice(&self.pid.to_be_bytes());
        b[32..34].copy_from_slice(&self.wstat.to_be_bytes());
        b[34] = (self.paused as u8)
            | (self.finishing as u8) << 1
            | (self.wantup as u8) << 2
            | (self.ready as u8) << 3;
        b
    }

    /// Decodes the first 35 bytes; `None` if shorter.
    pub fn decode(b: &[u8]) -> Option<S6Status> {
        if b.len() < S6_LEN {
            return None;
        }
        let mut pid = [0u8; 8];
        pid.copy_from_slice(&b[24..32]);
        let flags = b[34];
        Some(S6Status {
            stamp: Tai64N::from_bytes(&b[..12]),
            readystamp: Tai64N::from_bytes(&b[12..24]),
            pid: u64::from_be_bytes(pid),
            wstat: u16::from_be_bytes([b[32], b[33]]),
            paused: flags & 1 != 0,
            finishing: flags & 2 != 0,
            wantup: flags & 4 != 0,
            ready: flags & 8 != 0,
        })
    }

    /// Up as s6 means it: a pid and not finishing.
    pub fn is_up(&self) -> bool {
        self.pid != 0 && !self.finishing
    }
}

/// How a process ended, from a wait status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

impl Ended {
    /// Interprets a raw `waitpid` status (also a 16-bit truncated one).
    pub fn from_wstat(wstat: i32) -> Ended {
        if libc::WIFSIGNALED(wstat) {
            Ended::Signaled(libc::WTERMSIG(wstat))
        } else {
            Ended::Exited(libc::WEXITSTATUS(wstat))
        }
    }
}

/// Either status format, as read from a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnyStatus {
    Runit(RunitStatus),
    S6(S6Status),
}

impl AnyStatus {
    /// Decodes by length: exactly 20 bytes is runit, 35 or more is s6 2.11.
    pub fn decode(b: &[u8]) -> Option<AnyStatus> {
        match b.len() {
            RUNIT_LEN => RunitStatus::decode(b).map(AnyStatus::Runit),
            n if n >= S6_LEN => S6Status::decode(b).map(AnyStatus::S6),
            _ => None,
        }
    }

    pub fn family(&self) -> Family {
        match self {
            AnyStatus::Runit(_) => Family::Runit,
            AnyStatus::S6(_) => Family::S6,
        }
    }
}

/// Reads `status` from a `supervise/` directory and decodes it by its size.
/// An unknown size gives an `InvalidData` error.
pub fn read_status(supervise_dir: &Path) -> io::Result<AnyStatus> {
    let mut f = fs::File::open(supervise_dir.join("status"))?;
    let mut buf = [0u8; 64];
    let mut n = 0;
    loop {
        let r = f.read(&mut buf[n..])?;
        if r == 0 || n + r == buf.len() {
            n += r;
            break;
        }
        n += r;
    }
    AnyStatus::decode(&buf[..n]).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("status file has {n} bytes, neither 20 (runit) nor 35 (s6)"),
        )
    })
}

/// Replaces `dir/name` atomically for readers: `dir/name.new` is filled, then the two names
/// are swapped with `renameat2(RENAME_EXCHANGE)`, so the previous inode stays behind as
/// `name.new` and is rewritten by the next call. A reader that opens `name` always gets a
/// complete file, as with write + rename, but no inode is created or deleted per write:
/// creating one is the dearest part of a state change on ext4 without a journal, where a new
/// inode is searched for past every inode deleted in the last seconds (docs/benchmarks.md).
/// Where the exchange is not possible (`name` missing, a file system without it) the new
/// file is renamed over `name` instead, and the next call creates a fresh `name.new`.
/// A new file gets `mode` (minus umask).
pub fn write_atomic(dir: &Path, name: &str, data: &[u8], mode: u32) -> io::Result<()> {
    use nix::errno::Errno;
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    use std::os::unix::fs::FileExt;

    let tmp = dir.join(format!("{name}.new"));
    let target = dir.join(name);
    let f = match open_spare(&tmp)? {
        Some((f, len)) => {
            f.write_all_at(data, 0)?;
            if len > data.len() as u64 {
                f.set_len(data.len() as u64)?;
            }
            f
        }
        None => create_with(&tmp, data, mode)?,
    };
    drop(f);
    match renameat2(
        AT_FDCWD,
        &tmp,
        AT_FDCWD,
        &target,
        RenameFlags::RENAME_EXCHANGE,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::ENOENT | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
            fs::rename(&tmp, &target)
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Replaces `dir/name` the classic way, leaving nothing behind: a fresh `dir/name.new`
/// renamed over it. For files written now and then in a directory that is not ours to
/// clutter (the scan directory), where [`write_atomic`]'s spare would stay visible.
pub fn replace_file(dir: &Path, name: &str, data: &[u8], mode: u32) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.new"));
    drop(create_with(&tmp, data, mode)?);
    fs::rename(&tmp, dir.join(name))
}

/// Creates (or truncates) `path` with `mode` (minus umask) and writes `data` into it.
fn create_with(path: &Path, data: &[u8], mode: u32) -> io::Result<fs::File> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    f.write_all(data)?;
    Ok(f)
}

/// Opens the spare `path` left by the last [`write_atomic`] for rewriting: Some((file, its
/// length)) if it is a regular file we can write; None (after removing anything else found
/// there, such as a stale FIFO or another user's file) when a new one must be created.
fn open_spare(path: &Path) -> io::Result<Option<(fs::File, u64)>> {
    // O_NONBLOCK: a FIFO left under that name must not block the open.
    let r = fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    match r {
        Ok(f) => {
            let m = f.metadata()?;
            if m.is_file() {
                return Ok(Some((f, m.len())));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(_) => {}
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// One record of s6's `supervise/death_tally` (compat.md 3.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Death {
    pub stamp: Tai64N,
    /// Exit code, or 128 + signal when killed.
    pub exit: u8,
    /// Signal number, 0 if it exited.
    pub sig: u8,
}

/// Size of one death_tally record.
pub const DEATH_LEN: usize = 14;

impl Death {
    pub fn from_ended(stamp: Tai64N, e: Ended) -> Death {
        match e {
            Ended::Exited(c) => Death {
                stamp,
                exit: c as u8,
                sig: 0,
            },
            Ended::Signaled(s) => Death {
                stamp,
                exit: (128 + s) as u8,
                sig: s as u8,
            },
        }
    }

    pub fn encode(&self) -> [u8; DEATH_LEN] {
        let mut b = [0u8; DEATH_LEN];
        b[..12].copy_from_slice(&self.stamp.to_bytes());
        b[12] = self.exit;
        b[13] = self.sig;
        b
    }

    /// Decodes a whole death_tally file; a size that is not a multiple of 14 gives no records.
    pub fn decode_all(b: &[u8]) -> Vec<Death> {
        if b.len() % DEATH_LEN != 0 {
            return Vec::new();
        }
        b.chunks(DEATH_LEN)
            .map(|c| Death {
                stamp: Tai64N::from_bytes(&c[..12]),
                exit: c[12],
                sig: c[13],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("rsv-status-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn ino(p: &Path) -> u64 {
        fs::symlink_metadata(p).unwrap().ino()
    }

    #[test]
    fn write_atomic_swaps_two_inodes_and_keeps_content_exact() {
        let d = scratch("swap");
        write_atomic(&d, "f", b"first, long content", 0o644).unwrap();
        write_atomic(&d, "f", b"second", 0o644).unwrap();
        let (a, b) = (ino(&d.join("f")), ino(&d.join("f.new")));
        assert_ne!(a, b);
        assert_eq!(fs::read(d.join("f")).unwrap(), b"second");
        // From now on the same two inodes take turns; a shorter content is cut to size.
        for (k, text) in ["third content", "4", "fifth, and longer than the others"]
            .iter()
            .enumerate()
        {
            write_atomic(&d, "f", text.as_bytes(), 0o644).unwrap();
            assert_eq!(fs::read(d.join("f")).unwrap(), text.as_bytes());
            let now = (ino(&d.join("f")), ino(&d.join("f.new")));
            assert_eq!(now, if k % 2 == 0 { (b, a) } else { (a, b) }, "write {k}");
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn replace_file_leaves_no_spare() {
        let d = scratch("replace");
        for text in ["one", "two"] {
            replace_file(&d, "f", text.as_bytes(), 0o644).unwrap();
            assert_eq!(fs::read(d.join("f")).unwrap(), text.as_bytes());
            assert!(!d.join("f.new").exists());
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn write_atomic_replaces_a_fifo_or_symlink_left_as_spare() {
        let d = scratch("stale");
        write_atomic(&d, "f", b"one", 0o644).unwrap();
        // A FIFO nobody reads must not block the write.
        nix::unistd::mkfifo(
            &d.join("f.new"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        write_atomic(&d, "f", b"two", 0o644).unwrap();
        assert_eq!(fs::read(d.join("f")).unwrap(), b"two");
        assert!(fs::metadata(d.join("f.new")).unwrap().is_file());
        // A symlink is not followed: its target stays as it was.
        fs::write(d.join("victim"), b"keep").unwrap();
        fs::remove_file(d.join("f.new")).unwrap();
        std::os::unix::fs::symlink(d.join("victim"), d.join("f.new")).unwrap();
        write_atomic(&d, "f", b"three", 0o644).unwrap();
        assert_eq!(fs::read(d.join("f")).unwrap(), b"three");
        assert_eq!(fs::read(d.join("victim")).unwrap(), b"keep");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn write_atomic_readers_see_only_whole_contents() {
        let d = scratch("readers");
        let (x, y) = ([b'x'; 35], [b'y'; 35]);
        write_atomic(&d, "status", &x, 0o644).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (p, stop) = (d.join("status"), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let got = fs::read(&p).unwrap();
                    assert!(got == x || got == y, "torn or short read: {got:?}");
                    n += 1;
                }
                n
            })
        };
        for k in 0..20_000 {
            write_atomic(&d, "status", if k % 2 == 0 { &y } else { &x }, 0o644).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        fs::remove_dir_all(&d).unwrap();
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn runit_observed_dumps_round_trip() {
        // compat.md 3.1.2, bytes written by runsv.
        let cases = [
            (
                "4000 0000 6b08 9f1d 0588 fff4 1171 0000 0075 0001",
                28945,
                false,
                true,
                false,
                RunitState::Run,
            ),
            (
                "4000 0000 6b08 9f30 0cfe 58ec 0000 0000 0064 0000",
                0,
                false,
                false,
                false,
                RunitState::Down,
            ),
            (
                "4000 0000 6b08 9f39 29c7 4e0c 6272 0000 0175 0001",
                0x7262,
                true,
                true,
                false,
                RunitState::Run,
            ),
            (
                "4000 0000 6b08 9f39 29c7 4e0c 6272 0000 0064 0101",
                0x7262,
                false,
                false,
                true,
                RunitState::Run,
            ),
            (
                "4000 0000 6b08 9f39 29c7 4e0c be72 0000 0064 0002",
                0x72be,
                false,
                false,
                false,
                RunitState::Finish,
            ),
        ];
        for (dump, pid, paused, want_up, got_term, state) in cases {
            let bytes = hex(dump);
            let st = RunitStatus::decode(&bytes).unwrap();
            assert_eq!(
                (st.pid, st.paused, st.want_up, st.got_term, st.state),
                (pid, paused, want_up, got_term, state)
            );
            assert_eq!(st.encode().to_vec(), bytes);
            assert_eq!(AnyStatus::decode(&bytes), Some(AnyStatus::Runit(st)));
        }
    }

    #[test]
    fn s6_observed_dumps_round_trip() {
        // compat.md 3.2.2, bytes written by s6-supervise.
        let up = hex(
            "4000 0000 6b08 a007 39b2 ae39 4000 0000 6b08 a007 3994 a726 0000 0000 0000 167a 0000 04",
        );
        let st = S6Status::decode(&up).unwrap();
        assert_eq!(st.pid, 0x167a);
        assert!(st.wantup && !st.ready && !st.finishing && !st.paused && st.is_up());
        assert_eq!(st.encode().to_vec(), up);

        let down = hex(
            "4000 0000 6b08 a01a 395e 089d 4000 0000 6b08 a01a 3ac8 46b3 0000 0000 0000 0000 000f 08",
        );
        let st = S6Status::decode(&down).unwrap();
        assert_eq!(Ended::from_wstat(st.wstat as i32), Ended::Signaled(15));
        assert!(st.ready && !st.wantup && !st.is_up());
        assert_eq!(st.encode().to_vec(), down);
        assert_eq!(AnyStatus::decode(&down), Some(AnyStatus::S6(st)));
        assert_eq!(Ended::from_wstat(0x0300), Ended::Exited(3));
    }

    #[test]
    fn stat_text_matches_runsv() {
        let mut st = RunitStatus {
            stamp: Tai64N::default(),
            pid: 5,
            paused: false,
            want_up: true,
            got_term: false,
            state: RunitState::Run,
        };
        assert_eq!(st.stat_text(false), "run\n");
        st.paused = true;
        assert_eq!(st.stat_text(false), "run, paused\n");
        st.paused = false;
        st.got_term = true;
        st.want_up = false;
        assert_eq!(st.stat_text(false), "run, got TERM, want down\n");
        st.got_term = false;
        st.state = RunitState::Finish;
        assert_eq!(st.stat_text(false), "finish, want down\n");
        assert_eq!(st.stat_text(true), "finish, want exit\n");
        st.state = RunitState::Down;
        assert_eq!(st.stat_text(false), "down\n");
        assert_eq!(st.pid_text(), "5\n");
        st.pid = 0;
        assert_eq!(st.pid_text(), "");
    }

    #[test]
    fn other_sizes_are_rejected() {
        assert_eq!(AnyStatus::decode(&[0u8; 19]), None);
        assert_eq!(AnyStatus::decode(&[0u8; 21]), None);
        assert_eq!(AnyStatus::decode(&[0u8; 34]), None);
    }

    #[test]
    fn death_tally_records() {
        let b = hex("4000 0000 6b08 a01a 395e 089d 8f0f");
        let d = Death::decode_all(&b);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].exit, d[0].sig), (0x8f, 15));
        assert_eq!(Death::from_ended(d[0].stamp, Ended::Signaled(15)), d[0]);
        assert_eq!(d[0].encode().to_vec(), b);
        assert!(Death::decode_all(&b[..13]).is_empty());
    }
}
