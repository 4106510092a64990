//! One log directory: `lock`, `current`, rotation into `@<tai64n>.s`, the processor, trimming,
//! crash recovery at start-up, and writing with retry instead of losing lines.
//!
//! Output is queued in memory as a list of operations (data for `current`, rotate). The queue
//! is drained after every input chunk with few large writes; when a write or a rotation step
//! fails, the queue stays as it is and the caller stops reading input until the retry time.

use crate::tai::Family;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::intent::{self, Journal, NO_ROT, Record};
use super::stamp::Now;

/// Which reference the directory follows (file names, modes, recovery, messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Svlogd,
    S6,
}

/// How a processor command is run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Processor {
    Sh(String),
    Execline(String),
}

/// Rotation and retention settings of one directory.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Rotate at this size (0: never by size).
    pub size_max: u64,
    /// Old files kept (svlogd: 0 = all).
    pub keep: u32,
    /// svlogd `N`: on a full disk, delete old files while more than this remain.
    pub keep_min: u32,
    /// svlogd `t`: rotate a non-empty `current` older than this.
    pub age_max: Option<Duration>,
    /// s6-log `S`: maximum total size of the archives (0: unlimited).
    pub total_max: u64,
    /// svlogd: rotate at a line end once size >= size_max - tolerance; s6-log: size + l >= s.
    pub tolerance: u64,
    pub processor: Option<Processor>,
    /// Wait between retries after an error.
    pub retry: Duration,
}

enum Op {
    Data(Vec<u8>, usize),
    Rotate,
}

/// A processor working on a rotated file, in the background.
struct Running {
    child: std::process::Child,
    input: String,
    out_name: String,
    /// svlogd style: the `.s` name decided at rotation; s6 style: chosen at the end.
    final_name: String,
}

/// An open log directory.
pub struct Logdir {
    pub path: PathBuf,
    pub style: Style,
    pub set: Settings,
    prog: String,
    _lock: File,
    cur: Option<File>,
    /// Size of `current` once every queued operation is done.
    size: u64,
    /// When the (logical) current file got its first byte.
    first_at: Option<Instant>,
    ops: VecDeque<Op>,
    spare: Vec<u8>,
    retry_at: Option<Instant>,
    /// s6 style: the rotated file waiting to be archived or processed (`previous`);
    /// svlogd style: the `.u` name waiting for the processor.
    pending: Option<String>,
    warned: bool,
    running: Option<Running>,
    /// Shutting down after a failure: do not wait for a failing processor, keep its input
    /// as an `.u` archive.
    closing: bool,
    /// A rotation came due while the processor of the previous one was still running: it
    /// waits for the processor, and meanwhile lines keep going to `current`.
    postponed: bool,
    /// Bytes written to the open `current` (with the queue empty this equals `size`).
    cur_len: u64,
    /// Bytes of an unfinished line were appended since the last line end.
    mid_line: bool,
    /// Inode of the open `current`.
    cur_ino: u64,
    /// The intent record (exactly-once input, see [`super::intent`]); None when it cannot
    /// be kept.
    journal: Option<Journal>,
    /// An interrupted chunk found at open: its record and its output bytes on disk.
    recovered: Option<(Record, u64)>,
    /// Output bytes still to drop (already on disk from the interrupted chunk being redone).
    skip: u64,
}

/// Why a directory could not be opened.
pub enum OpenError {
    Missing(io::Error),
    Busy,
    Other(String, io::Error),
}

fn family(style: Style) -> Family {
    match style {
        Style::Svlogd => Family::Runit,
        Style::S6 => Family::S6,
    }
}

/// Error text as each reference writes it (runit has its own short strings).
pub fn err_text(style: Style, e: &io::Error) -> String {
    let code = e.raw_os_error().unwrap_or(0);
    if style == Style::Svlogd {
        let s = match code {
            libc::ENOENT => Some("file does not exist"),
            libc::EACCES => Some("access denied"),
            libc::ENOSPC => Some("out of disk space"),
            libc::EFBIG => Some("file too big"),
            libc::EAGAIN => Some("temporary failure"),
            libc::EIO => Some("input/output error"),
            libc::EROFS => Some("read-only file system"),
            libc::ENOTDIR => Some("not a directory"),
            _ => None,
        };
        if let Some(s) = s {
            return s.to_string();
        }
    }
    if code != 0 {
        // SAFETY: strerror returns a pointer to a static (or thread-local) NUL-terminated
        // string that stays valid until the next call on this thread; it is copied at once.
        let p = unsafe { libc::strerror(code) };
        if !p.is_null() {
            // SAFETY: non-null, NUL-terminated, see above.
            let s = unsafe { std::ffi::CStr::from_ptr(p) };
            return s.to_string_lossy().into_owned();
        }
    }
    e.to_string()
}

/// Takes both an exclusive flock and an fcntl write lock on `path` (created with `mode`).
fn take_locks(path: &Path, mode: u32) -> Result<File, OpenError> {
    let f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| OpenError::Other("unable to open".into(), e))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            OpenError::Busy
        } else {
            OpenError::Other("unable to lock".into(), e)
        });
    }
    // SAFETY: an all-zero flock struct is valid; the fields are then set.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl F_SETLK with a pointer to a live flock struct.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) } != 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EACCES) => OpenError::Busy,
            _ => OpenError::Other("unable to lock".into(), e),
        });
    }
    Ok(f)
}

fn is_archive(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 27
        && b[0] == b'@'
        && b[1..25].iter().all(|c| c.is_ascii_hexdigit())
        && (name.ends_with(".s") || name.ends_with(".u"))
}

fn fsync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn mode_of(f: &File) -> u32 {
    f.metadata().map(|m| m.permissions().mode()).unwrap_or(0)
}

fn umask() -> u32 {
    // SAFETY: umask only sets the process mask; it is restored at once (single-threaded use).
    unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m as u32
    }
}

impl Logdir {
    /// Opens (s6 style: creates) the directory, takes the locks, recovers from a crash, and
    /// opens `current` for appending.
    pub fn open(path: &Path, style: Style, set: Settings, prog: &str) -> Result<Logdir, OpenError> {
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(OpenError::Other(
                    "unable to change directory".into(),
                    io::Error::from_raw_os_error(libc::ENOTDIR),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && style == Style::S6 => {
                use std::os::unix::fs::DirBuilderExt;
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(path)
                    .map_err(|e| OpenError::Other("unable to mkdir".into(), e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(OpenError::Missing(e)),
            Err(e) => return Err(OpenError::Other("unable to open log directory".into(), e)),
        }
        let lock_mode = if style == Style::Svlogd { 0o600 } else { 0o666 };
        let lock = take_locks(&path.join("lock"), lock_mode)?;
        let mut ld = Logdir {
            path: path.to_path_buf(),
            style,
            set,
            prog: prog.to_string(),
            _lock: lock,
            cur: None,
            size: 0,
            first_at: None,
            ops: VecDeque::new(),
            spare: Vec::with_capacity(1 << 16),
            retry_at: None,
            pending: None,
            warned: false,
            closing: false,
            running: None,
            postponed: false,
            cur_len: 0,
            mid_line: false,
            cur_ino: 0,
            journal: None,
            recovered: None,
            skip: 0,
        };
        ld.repair_intent()
            .map_err(|e| OpenError::Other("unable to recover".into(), e))?;
        ld.recover()
            .map_err(|e| OpenError::Other("unable to recover".into(), e))?;
        Ok(ld)
    }

    fn p(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// A fresh archive name `@<tai64n><suffix>` that does not exist yet.
    fn new_name(&self, suffix: &str) -> String {
        loop {
            let name = format!("{}{}", Now::read().tai(family(self.style)).to_hex(), suffix);
            if fs::symlink_metadata(self.p(&name)).is_err() {
                return name;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    fn current_mode(&self) -> u32 {
        match self.style {
            Style::Svlogd => 0o644,
            Style::S6 => 0o666 & !umask(),
        }
    }

    /// Start-up: finish an interrupted rotation, keep an unfinished `current` as `.u`, open
    /// `current` for appending.
    fn recover(&mut self) -> io::Result<()> {
        let cur = self.p("current");
        let existing = fs::metadata(&cur).ok();
        // Stray processor output.
        if let Ok(rd) = fs::read_dir(&self.path) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if self.style == Style::Svlogd
                    && n.len() == 27
                    && n.starts_with('@')
                    && n.ends_with(".t")
                {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let clean = existing
            .as_ref()
            .map(|m| m.permissions().mode() & 0o100 != 0)
            // No `current`: a crash may have happened between renaming it and creating a
            // new one, so look for `previous` and `processed`.
            .unwrap_or(false);
        match self.style {
            Style::Svlogd => {
                if let Some(m) = &existing {
                    if !clean && m.len() > 0 {
                        let u = self.new_name(".u");
                        fs::rename(&cur, self.p(&u))?;
                        fsync_dir(&self.path);
                    }
                }
            }
            Style::S6 => {
                if !clean {
                    let _ = fs::remove_file(self.p("newstate"));
                    let processed = fs::metadata(self.p("processed")).ok();
                    if processed.map(|m| m.permissions().mode() & 0o100 != 0) == Some(true) {
                        let s = self.new_name(".s");
                        fs::rename(self.p("processed"), self.p(&s))?;
                        let _ = fs::remove_file(self.p("previous"));
                    } else if fs::metadata(self.p("previous")).is_ok() {
                        let u = self.new_name(".u");
                        fs::rename(self.p("previous"), self.p(&u))?;
                    }
                    if existing.as_ref().map(|m| m.len() > 0) == Some(true) {
                        let u = self.new_name(".u");
                        fs::rename(&cur, self.p(&u))?;
                    }
                    let _ = fs::remove_file(self.p("processed"));
                    fsync_dir(&self.path);
                }
                // s6-log keeps a `state` file in every directory.
                let st = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(!clean)
                    .mode(0o666)
                    .open(self.p("state"))?;
                drop(st);
            }
        }
        let f = self.open_current()?;
        let m = f.metadata()?;
        self.cur_ino = std::os::unix::fs::MetadataExt::ino(&m);
        self.size = m.len();
        self.cur_len = self.size;
        if self.size > 0 {
            self.first_at = Some(Instant::now());
        }
        self.cur = Some(f);
        Ok(())
    }

    fn open_current(&self) -> io::Result<File> {
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o666)
            .custom_flags(libc::O_CLOEXEC)
            .open(self.p("current"))?;
        let want = self.current_mode();
        if mode_of(&f) & 0o7777 != want {
            f.set_permissions(fs::Permissions::from_mode(want))?;
        }
        Ok(f)
    }

    /// At open, before the crash recovery renames anything: reads the intent record; when a
    /// chunk was interrupted, cuts a torn write back and remembers what is on disk. The
    /// record is rewritten at once as "this much is final" so that a kill during the rest
    /// of the start-up leads to the same decision.
    fn repair_intent(&mut self) -> io::Result<()> {
        let (mut j, old) = match Journal::open(&self.path) {
            Ok(x) => x,
            Err(e) => {
                let _ = writeln!(
                    io::stderr(),
                    "{}: warning: unable to open {}/{}: {}",
                    self.prog,
                    self.path.display(),
                    intent::FILE,
                    err_text(self.style, &e)
                );
                return Ok(());
            }
        };
        if let Some(r) = old.filter(|r| r.active) {
            let cur = fs::metadata(self.p("current"))
                .ok()
                .map(|m| (std::os::unix::fs::MetadataExt::ino(&m), m.len()));
            let a = intent::assess(&r, cur);
            if let Some(len) = a.truncate {
                OpenOptions::new()
                    .write(true)
                    .open(self.p("current"))?
                    .set_len(len)?;
            }
            j.rec = Record {
                rot: a.written,
                ..r
            };
            j.save()?;
            self.recovered = Some((r, a.written));
        }
        self.journal = Some(j);
        Ok(())
    }

    /// The chunk interrupted in a previous run: its record and its output bytes on disk.
    pub fn recovered(&self) -> Option<(Record, u64)> {
        self.recovered
    }

    /// Drops the first `n` output bytes of the next chunk (redo of an interrupted chunk).
    pub fn set_skip(&mut self, n: u64) {
        self.skip = n;
    }

    fn save_intent(&mut self) {
        if let Some(j) = &self.journal {
            if let Err(e) = j.save() {
                let _ = writeln!(
                    io::stderr(),
                    "{}: warning: unable to write {}/{}: {}",
                    self.prog,
                    self.path.display(),
                    intent::FILE,
                    err_text(self.style, &e)
                );
                self.journal = None;
            }
        }
    }

    /// Records the chunk whose output is queued, before any of it is written.
    pub fn begin_chunk(&mut self, in_len: u64, hash: u64, now: Now, mid: bool) {
        self.recovered = None;
        self.skip = 0;
        let total: u64 = self
            .ops
            .iter()
            .map(|o| match o {
                Op::Data(v, off) => (v.len() - off) as u64,
                Op::Rotate => 0,
            })
            .sum();
        let open = self.cur.is_some();
        let (cur_ino, cur_len) = (self.cur_ino, self.cur_len);
        let Some(j) = self.journal.as_mut() else {
            return;
        };
        j.rec = Record {
            active: true,
            in_len,
            hash,
            now,
            mid,
            total,
            before: 0,
            cur_ino: if open { cur_ino } else { 0 },
            cur_off: cur_len,
            rot: if open { NO_ROT } else { 0 },
        };
        self.save_intent();
    }

    /// The chunk's input is consumed: the record no longer applies.
    pub fn end_chunk(&mut self) {
        self.recovered = None;
        self.skip = 0;
        let Some(j) = self.journal.as_mut() else {
            return;
        };
        if j.rec.active {
            j.rec.active = false;
            self.save_intent();
        }
    }

    /// A rotation starts: what the chunk wrote so far is final.
    fn intent_rotating(&mut self) {
        let cur_len = self.cur_len;
        if let Some(j) = self.journal.as_mut() {
            if j.rec.active && j.rec.rot == NO_ROT {
                j.rec.rot = j.rec.before + cur_len.saturating_sub(j.rec.cur_off);
                self.save_intent();
            }
        }
    }

    /// The new `current` is open: the rest of the chunk goes there.
    fn intent_new_current(&mut self) {
        let (ino, len) = (self.cur_ino, self.cur_len);
        if let Some(j) = self.journal.as_mut() {
            if j.rec.active && j.rec.rot != NO_ROT {
                j.rec.before = j.rec.rot;
                j.rec.cur_ino = ino;
                j.rec.cur_off = len;
                j.rec.rot = NO_ROT;
                self.save_intent();
            }
        }
    }

    /// Bytes in `current` once the queue is written.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn push_data(&mut self, mut d: &[u8]) {
        if self.skip > 0 {
            let n = (self.skip as usize).min(d.len());
            self.skip -= n as u64;
            d = &d[n..];
        }
        if d.is_empty() {
            return;
        }
        self.mid_line = true;
        if self.size == 0 && self.first_at.is_none() {
            self.first_at = Some(Instant::now());
        }
        self.size += d.len() as u64;
        if let Some(Op::Data(v, _)) = self.ops.back_mut() {
            v.extend_from_slice(d);
            return;
        }
        let mut v = std::mem::take(&mut self.spare);
        v.clear();
        v.extend_from_slice(d);
        self.ops.push_back(Op::Data(v, 0));
    }

    /// Queues a rotation (nothing when `current` is empty, nor while a postponed rotation
    /// still waits for the processor: that one covers it).
    pub fn rotate(&mut self) {
        if self.size == 0 {
            return;
        }
        if self.postponed {
            if self.running.is_some() {
                return;
            }
            self.postponed = false;
        }
        self.ops.push_back(Op::Rotate);
        self.size = 0;
        self.first_at = None;
    }

    /// Queues bytes for `current`; svlogd style cuts them at exactly the size limit.
    pub fn append(&mut self, mut d: &[u8]) {
        let max = self.set.size_max;
        if self.style == Style::S6 || max == 0 {
            self.push_data(d);
            return;
        }
        while !d.is_empty() {
            if self.size >= max {
                self.rotate();
                if self.size >= max {
                    // Rotation postponed until the processor ends: `current` grows past s.
                    self.push_data(d);
                    return;
                }
            }
            let room = (max - self.size).min(d.len() as u64) as usize;
            self.push_data(&d[..room]);
            d = &d[room..];
        }
    }

    /// Call after a line's newline was appended: rotation at line ends.
    pub fn line_end(&mut self) {
        self.mid_line = false;
        if self.postponed {
            // Due already; happens at the first line end after the processor is collected.
            if self.running.is_none() {
                self.rotate();
            }
            return;
        }
        let (max, tol) = (self.set.size_max, self.set.tolerance);
        if max == 0 {
            return;
        }
        let due = match self.style {
            Style::Svlogd => max > tol && self.size >= max - tol,
            Style::S6 => self.size + tol >= max,
        };
        if due || self.size >= max {
            self.rotate();
        }
    }

    /// When the age limit of `current` is reached (svlogd `t`).
    pub fn age_deadline(&self) -> Option<Instant> {
        if self.postponed {
            return None;
        }
        Some(self.first_at? + self.set.age_max?)
    }

    /// Queues a rotation if `current` is older than the age limit.
    pub fn check_age(&mut self, now: Instant) {
        if let Some(d) = self.age_deadline() {
            if now >= d {
                self.rotate();
            }
        }
    }

    /// When the next retry is due, if the queue is stuck on an error.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Is there queued output?
    pub fn pending(&self) -> bool {
        !self.ops.is_empty()
            || self.pending.is_some()
            || self.cur.is_none()
            || self.running.is_some()
    }

    /// While a processor runs, the loop must come back to collect it. Its exit wakes the
    /// loop at once (SIGCHLD on the signal pipe); this slow deadline is only a safety net.
    pub fn proc_deadline(&self) -> Option<Instant> {
        self.running
            .as_ref()
            .map(|_| Instant::now() + Duration::from_secs(1))
    }

    fn warn_write(&mut self, what: &str, e: &io::Error) {
        let d = self.path.display();
        let msg = match self.style {
            Style::Svlogd => format!(
                "{}: pausing: unable to {what}: {d}: {}",
                self.prog,
                err_text(self.style, e)
            ),
            Style::S6 => {
                let what = match what {
                    "write to current" => format!("write to {d}/current"),
                    w => format!("{w} in {d}"),
                };
                format!(
                    "{}: warning: unable to {what}: {}",
                    self.prog,
                    err_text(self.style, e)
                )
            }
        };
        let _ = writeln!(io::stderr(), "{msg}");
        self.warned = true;
    }

    /// Writes out the queue. On an error, warns, sets the retry time and returns false; the
    /// queue keeps every byte not yet written.
    pub fn drain(&mut self, now: Instant) -> bool {
        if let Some(t) = self.retry_at {
            if now < t {
                return false;
            }
        }
        match self.drain_inner() {
            Ok(()) => {
                if self.warned {
                    self.warned = false;
                }
                self.retry_at = None;
                true
            }
            Err((what, e)) => {
                if e.raw_os_error() == Some(libc::ENOSPC) && self.free_space_svlogd() {
                    // Something was deleted: try again at once next time round.
                    self.retry_at = Some(Instant::now());
                    return false;
                }
                self.warn_write(what, &e);
                self.retry_at = Some(Instant::now() + self.set.retry);
                false
            }
        }
    }

    fn drain_inner(&mut self) -> Result<(), (&'static str, io::Error)> {
        self.reap(false)?;
        if self.cur.is_none() || self.pending.is_some() {
            self.finish_rotation()?;
        }
        if self.postponed && self.running.is_none() && !self.mid_line {
            // The processor is done and the queue ends at a line end: rotate after it.
            self.rotate();
        }
        while let Some(op) = self.ops.front_mut() {
            match op {
                Op::Data(v, off) => {
                    let f = self.cur.as_mut().ok_or((
                        "write to current",
                        io::Error::from_raw_os_error(libc::EBADF),
                    ))?;
                    while *off < v.len() {
                        match f.write(&v[*off..]) {
                            Ok(0) => {
                                return Err((
                                    "write to current",
                                    io::Error::from(io::ErrorKind::WriteZero),
                                ));
                            }
                            Ok(n) => {
                                *off += n;
                                self.cur_len += n as u64;
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(("write to current", e)),
                        }
                    }
                    if let Some(Op::Data(v, _)) = self.ops.pop_front() {
                        if v.capacity() <= (4 << 20) {
                            self.spare = v;
                        }
                    }
                }
                Op::Rotate => {
                    // Only one processor per directory. svlogd blocks input until it ends;
                    // here the rotation is postponed instead and the following lines go on
                    // into `current` (on disk, so memory stays bounded). It happens at the
                    // first line end after the processor is collected.
                    if self.running.is_some() {
                        self.ops.pop_front();
                        self.postponed = true;
                        continue;
                    }
                    self.start_rotation()?;
                    self.ops.pop_front();
                    self.finish_rotation()?;
                }
            }
        }
        if self.postponed {
            // `rotate` counted from zero; the postponed rotation did not empty `current`.
            self.size = self.cur_len;
        }
        Ok(())
    }

    /// fsync + mark + rename `current`; `cur` becomes None.
    fn start_rotation(&mut self) -> Result<(), (&'static str, io::Error)> {
        if self.cur.is_none() {
            return Ok(());
        }
        self.intent_rotating();
        let Some(f) = self.cur.as_ref() else {
            return Ok(());
        };
        f.sync_all().map_err(|e| ("fsync current", e))?;
        let m = mode_of(f);
        f.set_permissions(fs::Permissions::from_mode(match self.style {
            Style::Svlogd => 0o744,
            Style::S6 => (m & 0o7777) | 0o100,
        }))
        .map_err(|e| ("set mode of current", e))?;
        match self.style {
            Style::Svlogd => {
                let suffix = if self.set.processor.is_some() {
                    ".u"
                } else {
                    ".s"
                };
                let name = self.new_name(suffix);
                fs::rename(self.p("current"), self.p(&name)).map_err(|e| ("rename current", e))?;
                if self.set.processor.is_some() {
                    self.pending = Some(name);
                }
            }
            Style::S6 => {
                fs::rename(self.p("current"), self.p("previous"))
                    .map_err(|e| ("rename current to previous", e))?;
                self.pending = Some("previous".into());
            }
        }
        self.cur = None;
        self.cur_len = 0;
        // The directory is synced once, when the rotation is complete (finish_rotation);
        // a crash before that is repaired by `recover` at the next start.
        Ok(())
    }

    /// New `current`, processor or archive, trim.
    fn finish_rotation(&mut self) -> Result<(), (&'static str, io::Error)> {
        if self.cur.is_none() {
            let f = self.open_current().map_err(|e| ("open current", e))?;
            self.cur_ino = f
                .metadata()
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
                .unwrap_or(0);
            self.cur = Some(f);
            self.intent_new_current();
        }
        if let Some(input) = self.pending.clone() {
            match &self.set.processor {
                Some(_) if self.closing => {
                    if self.style == Style::S6 {
                        let u = self.new_name(".u");
                        fs::rename(self.p(&input), self.p(&u))
                            .map_err(|e| ("rename previous", e))?;
                    }
                    // svlogd style: the input is already an `.u` archive.
                }
                Some(p) => {
                    if self.running.is_none() {
                        let p = p.clone();
                        let r = self.spawn_processor(&p, &input)?;
                        self.running = Some(r);
                    }
                    self.pending = None;
                    fsync_dir(&self.path);
                    return Ok(());
                }
                None => {
                    // s6 style without processor: archive `previous`.
                    let s = self.new_name(".s");
                    fs::rename(self.p(&input), self.p(&s)).map_err(|e| ("rename previous", e))?;
                }
            }
            self.pending = None;
            fsync_dir(&self.path);
            self.trim();
        } else if self.style == Style::Svlogd {
            fsync_dir(&self.path);
            self.trim();
        }
        Ok(())
    }

    /// Runs the processor on `input` and waits for it: stdin `input`, stdout the output file,
    /// fd 4 `state`, fd 5 `newstate`, cwd the directory.
    fn spawn_processor(
        &mut self,
        p: &Processor,
        input: &str,
    ) -> Result<Running, (&'static str, io::Error)> {
        let (out_name, final_name) = match self.style {
            Style::Svlogd => {
                let stem = &input[..input.len() - 2];
                (format!("{stem}.t"), format!("{stem}.s"))
            }
            Style::S6 => ("processed".to_string(), String::new()),
        };
        let err = |e| ("run processor", e);
        let stdin = File::open(self.p(input)).map_err(err)?;
        let stdout = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(self.p(&out_name))
            .map_err(err)?;
        let state = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(self.p("state"))
            .map_err(err)?;
        let newstate = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(self.p("newstate"))
            .map_err(err)?;
        let high = |f: &File| -> io::Result<OwnedFd> {
            // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new descriptor (>= 10)
            // that we take ownership of.
            let fd = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fd is a fresh descriptor owned by nobody else.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        let s4 = high(&state).map_err(err)?;
        let s5 = high(&newstate).map_err(err)?;
        let (r4, r5) = (s4.as_raw_fd(), s5.as_raw_fd());
        let mut cmd = match p {
            Processor::Sh(c) => {
                let mut k = Command::new("/bin/sh");
                k.arg("-c").arg(c);
                k
            }
            Processor::Execline(c) => {
                let eb = [
                    "/usr/lib/execline/bin/execlineb",
                    "/bin/execlineb",
                    "/usr/bin/execlineb",
                ]
                .iter()
                .find(|p| Path::new(p).exists())
                .copied()
                .unwrap_or("execlineb");
                let mut k = Command::new(eb);
                k.arg("-Pc").arg(c);
                k
            }
        };
        cmd.current_dir(&self.path)
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout));
        // SAFETY: only async-signal-safe calls (dup2, signal) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(r4, 4) < 0 || libc::dup2(r5, 5) < 0 {
                    return Err(io::Error::last_os_error());
                }
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(err)?;
        drop((s4, s5, state, newstate));
        Ok(Running {
            child,
            input: input.to_string(),
            out_name,
            final_name,
        })
    }

    /// Collects a finished processor (waiting for it when `block`): on success its output
    /// becomes an archive; on failure its input is queued to be processed again.
    fn reap(&mut self, block: bool) -> Result<(), (&'static str, io::Error)> {
        let Some(r) = self.running.as_mut() else {
            return Ok(());
        };
        let status = if block {
            loop {
                match r.child.wait() {
                    Ok(s) => break s,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(("wait for processor", e)),
                }
            }
        } else {
            match r.child.try_wait() {
                Ok(Some(s)) => s,
                Ok(None) => return Ok(()),
                Err(e) => return Err(("wait for processor", e)),
            }
        };
        let Some(r) = self.running.take() else {
            return Ok(());
        };
        let res = self.finish_processor(status, &r);
        if res.is_err() {
            let _ = fs::remove_file(self.p(&r.out_name));
            self.pending = Some(r.input);
        } else {
            fsync_dir(&self.path);
            self.trim();
        }
        res
    }

    fn finish_processor(
        &mut self,
        status: std::process::ExitStatus,
        r: &Running,
    ) -> Result<(), (&'static str, io::Error)> {
        let err = |e| ("run processor", e);
        let (out_name, input) = (&r.out_name, &r.input);
        if !status.success() {
            return Err((
                "run processor",
                io::Error::other(format!("processor failed: {status}")),
            ));
        }
        let out = File::open(self.p(out_name)).map_err(err)?;
        out.sync_all().map_err(err)?;
        out.set_permissions(fs::Permissions::from_mode(0o744))
            .map_err(err)?;
        if let Ok(ns) = File::open(self.p("newstate")) {
            let _ = ns.sync_all();
        }
        let final_name = if r.final_name.is_empty() {
            self.new_name(".s")
        } else {
            r.final_name.clone()
        };
        fs::rename(self.p(out_name), self.p(&final_name)).map_err(err)?;
        fs::remove_file(self.p(input)).map_err(err)?;
        fs::rename(self.p("newstate"), self.p("state")).map_err(err)?;
        Ok(())
    }

    fn archives(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = match fs::read_dir(&self.path) {
            Ok(rd) => rd
                .flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if is_archive(&n) {
                        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                        Some((n, len))
                    } else {
                        None
                    }
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }

    /// Deletes old archives: svlogd at most one when more than n exist; s6-log until at most
    /// n remain and their total is within S.
    fn trim(&mut self) {
        if self.style == Style::Svlogd && self.set.keep == 0 {
            // svlogd `n0` keeps every file: no need to list (and stat) a directory that only
            // grows, at every rotation.
            return;
        }
        let list = self.archives();
        match self.style {
            Style::Svlogd => {
                let n = self.set.keep as usize;
                if n > 0 && list.len() > n {
                    let _ = fs::remove_file(self.p(&list[0].0));
                }
            }
            Style::S6 => {
                let n = self.set.keep as usize;
                let mut total: u64 = list.iter().map(|x| x.1).sum();
                let mut count = list.len();
                for (name, len) in &list {
                    let over = count > n || (self.set.total_max > 0 && total > self.set.total_max);
                    if !over {
                        break;
                    }
                    let _ = fs::remove_file(self.p(name));
                    count -= 1;
                    total -= len;
                }
            }
        }
    }

    /// svlogd `N`: on a full disk delete the oldest old file if more than N remain.
    fn free_space_svlogd(&mut self) -> bool {
        if self.style != Style::Svlogd || self.set.keep_min >= self.set.keep {
            return false;
        }
        let list = self.archives();
        if list.len() > self.set.keep_min as usize {
            let _ = writeln!(
                io::stderr(),
                "{}: warning: out of disk space, delete: {}/{}",
                self.prog,
                self.path.display(),
                list[0].0
            );
            return fs::remove_file(self.p(&list[0].0)).is_ok();
        }
        false
    }

    /// Clean close: everything written, `current` fsynced and marked complete (u+x).
    /// Returns false (after warning) when the queue could not be written yet.
    /// A rotation postponed for the processor is done here, after that processor ended, and
    /// its own processor is waited for: at a clean exit every due rotation is processed.
    pub fn close(&mut self) -> bool {
        loop {
            if !self.drain(Instant::now()) {
                self.closing = true;
                return false;
            }
            if self.running.is_some() {
                if let Err((what, e)) = self.reap(true) {
                    self.warn_write(what, &e);
                    self.retry_at = Some(Instant::now() + self.set.retry);
                    self.closing = true;
                    return false;
                }
            }
            if self.postponed && !self.closing {
                self.rotate();
                self.postponed = false;
                continue;
            }
            break;
        }
        if let Some(f) = self.cur.as_ref() {
            let _ = f.sync_all();
            let m = mode_of(f) & 0o7777;
            let _ = f.set_permissions(fs::Permissions::from_mode(match self.style {
                Style::Svlogd => 0o744,
                Style::S6 => m | 0o100,
            }));
        }
        // A clean end leaves the directory as svlogd and s6-log would: no intent record.
        if let Some(j) = self.journal.take() {
            if !j.rec.active {
                let _ = fs::remove_file(self.p(intent::FILE));
            } else {
                self.journal = Some(j);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::is_archive;

    #[test]
    fn archive_names() {
        assert!(is_archive("@400000006b08ef8718144c8c.s"));
        assert!(is_archive("@400000006b08ef8718144c8c.u"));
        assert!(!is_archive("@400000006b08ef8718144c8c.t"));
        assert!(!is_archive("current"));
    }
}
