//! rsvexec: run a program with a changed process state, compatible with runit 2.1.2's chpst.
//!
//! Invoked as `chpst` it is chpst: same options, messages and exit codes (100 usage, 111 a
//! state change failed; otherwise the program's own, because the program replaces us: no
//! fork). Invoked under any other name it is `rsvexec`, which differs only in its name and
//! in listing `-r` in its usage line.
//!
//! The state changes happen in chpst's order: environment directory (read before the root
//! change, relative to the starting directory), root change, nice, `$UID`/`$GID`, user and
//! groups (looked up after the root change, in the new root's files), lock (taken as the new
//! user), closing of standard descriptors, resource limits, exec. The program is looked up in
//! the starting `PATH` (changes made by `-e` apply to the program, not to the lookup).

use std::ffi::{CString, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::envdir::{self, Flavor};
use crate::svcmd::runit_errstr;

/// chpst's version line (what `chpst -V` prints).
const CHPST_VERSION: &str = "$Id: f279d44141c981dd7535a12260efcf1ef7beed26 $";
const OPTS_USAGE: &str = "[-vVP012] [-u user[:group]] [-U user[:group]] [-b argv0] [-e dir] [-/ root] [-n nice] [-l|-L lock] [-m n] [-d n] [-o n] [-p n] [-f n] [-c n] [-t n] prog";
const OPTS_USAGE_RSV: &str = "[-vVP012] [-u user[:group]] [-U user[:group]] [-b argv0] [-e dir] [-/ root] [-n nice] [-l|-L lock] [-m n] [-d n] [-o n] [-p n] [-f n] [-c n] [-r n] [-t n] prog";
/// Option letters; those followed by `:` take an argument.
const SPEC: &[u8] = b"u:U:b:e:m:d:o:p:f:c:r:t:/:n:l:L:vVP012";
/// Most group ids `-u`/`-U` accept.
const MAX_GIDS: usize = 60;

/// Exit code for bad usage.
pub const EXIT_USAGE: i32 = 100;
/// Exit code when a state change fails.
pub const EXIT_FAIL: i32 = 111;

/// Text for an errno value, as runit prints it.
pub fn errstr(errno: i32) -> String {
    match errno {
        libc::ENOEXEC => "exec format error".into(),
        libc::E2BIG => "argument list too long".into(),
        libc::EMSGSIZE => "message too long".into(),
        libc::EDEADLK => "operation would cause deadlock".into(),
        libc::ENOLCK => "no locks available".into(),
        _ => runit_errstr(errno),
    }
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// What went wrong: exit code and message (without the `PROG: ` prefix).
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Bad usage; the optional line comes before the usage text.
    Usage(Option<String>),
    /// `-V`: version line, then the usage text.
    Version,
    /// A state change failed: `fatal: MSG`, exit 111.
    Fatal(String),
}

/// A resource limit request: `-1` means "as high as the hard limit", below that means unset
/// (chpst reads the number as an unsigned long into a signed one, so huge values wrap).
type Limit = Option<i64>;

/// The parsed command line.
#[derive(Debug, Default)]
pub struct Opts {
    pub set_user: Option<Vec<u8>>,
    pub env_user: Option<Vec<u8>>,
    pub argv0: Option<Vec<u8>>,
    pub env_dir: Option<Vec<u8>>,
    pub root: Option<Vec<u8>>,
    pub nice: i64,
    pub lock: Option<(Vec<u8>, bool)>,
    pub verbose: bool,
    pub pgrp: bool,
    pub close: [bool; 3],
    pub data: Limit,
    pub stack: Limit,
    pub memlock: Limit,
    pub addr_space: Limit,
    pub nofile: Limit,
    pub nproc: Limit,
    pub fsize: Limit,
    pub core: Limit,
    pub rss: Limit,
    pub cpu: Limit,
    pub prog: Vec<Vec<u8>>,
}

/// djb's scan_ulong: leading decimal digits, wrapping on overflow; returns (value, length).
fn scan_ulong(s: &[u8]) -> (u64, usize) {
    let mut v: u64 = 0;
    let mut n = 0;
    while n < s.len() && s[n].is_ascii_digit() {
        v = v.wrapping_mul(10).wrapping_add(u64::from(s[n] - b'0'));
        n += 1;
    }
    (v, n)
}

/// A whole unsigned number (the empty string is 0, as in chpst), or None.
fn whole_ulong(s: &[u8]) -> Option<u64> {
    let (v, n) = scan_ulong(s);
    (n == s.len()).then_some(v)
}

/// A whole signed number: optional `+`/`-`, then digits (possibly none).
fn whole_long(s: &[u8]) -> Option<i64> {
    let (neg, rest) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = whole_ulong(rest)?;
    let v = u as i64;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Parses the arguments (argv without argv[0]).
pub fn parse(args: &[OsString]) -> Result<Opts, Failure> {
    let mut o = Opts::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        if a == b"--" {
            i += 1;
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            break;
        }
        let mut j = 1;
        while j < a.len() {
            let c = a[j];
            j += 1;
            let pos = SPEC.iter().position(|&s| s == c && c != b':');
            let Some(pos) = pos else {
                return Err(Failure::Usage(Some(format!(
                    "illegal option -- {}",
                    c as char
                ))));
            };
            let takes = SPEC.get(pos + 1) == Some(&b':');
            let val: Vec<u8> = if takes {
                if j < a.len() {
                    let v = a[j..].to_vec();
                    j = a.len();
                    v
                } else {
                    i += 1;
                    match args.get(i) {
                        Some(v) => v.as_bytes().to_vec(),
                        None => {
                            return Err(Failure::Usage(Some(format!(
                                "option requires an argument -- {}",
                                c as char
                            ))));
                        }
                    }
                }
            } else {
                Vec::new()
            };
            let limit = |v: &[u8]| -> Result<Limit, Failure> {
                whole_ulong(v)
                    .map(|u| Some(u as i64))
                    .ok_or(Failure::Usage(None))
            };
            match c {
                b'u' => o.set_user = Some(val),
                b'U' => o.env_user = Some(val),
                b'b' => o.argv0 = Some(val),
                b'e' => o.env_dir = Some(val),
                b'/' => o.root = Some(val),
                b'n' => o.nice = whole_long(&val).ok_or(Failure::Usage(None))?,
                b'l' => o.lock = Some((val, true)),
                b'L' => o.lock = Some((val, false)),
                b'm' => {
                    let l = limit(&val)?;
                    o.data = l;
                    o.stack = l;
                    o.memlock = l;
                    o.addr_space = l;
                }
                b'd' => o.data = limit(&val)?,
                b'o' => o.nofile = limit(&val)?,
                b'p' => o.nproc = limit(&val)?,
                b'f' => o.fsize = limit(&val)?,
                b'c' => o.core = limit(&val)?,
                b'r' => o.rss = limit(&val)?,
                b't' => o.cpu = limit(&val)?,
                b'v' => o.verbose = true,
                b'V' => return Err(Failure::Version),
                b'P' => o.pgrp = true,
                b'0' => o.close[0] = true,
                b'1' => o.close[1] = true,
                b'2' => o.close[2] = true,
                _ => return Err(Failure::Usage(None)),
            }
        }
        i += 1;
    }
    o.prog = args[i.min(args.len())..]
        .iter()
        .map(|a| a.as_bytes().to_vec())
        .collect();
    if o.prog.is_empty() {
        return Err(Failure::Usage(None));
    }
    Ok(o)
}

/// A user specification resolved to ids.
#[derive(Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Resolves `[:]user[:group[:group...]]` as chpst does: names looked up in the password and
/// group files (at most 60 groups; more are ignored), or after a leading colon, numbers
/// `uid:gid[:gid...]` (more than 60 gids is invalid).
pub fn resolve(spec: &[u8]) -> Result<Ids, Failure> {
    let show = |s: &[u8]| String::from_utf8_lossy(s).into_owned();
    if let Some(num) = spec.strip_prefix(b":") {
        let invalid = || Failure::Fatal(format!("invalid uid/gids: {}", show(num)));
        let (uid, n) = scan_ulong(num);
        if num.get(n) != Some(&b':') {
            return Err(invalid());
        }
        let mut rest = &num[n + 1..];
        let mut groups = Vec::new();
        loop {
            let (g, n) = scan_ulong(rest);
            groups.push(g as u32);
            if groups.len() > MAX_GIDS {
                return Err(invalid());
            }
            match rest.get(n) {
                None => break,
                Some(b':') => rest = &rest[n + 1..],
                Some(_) => return Err(invalid()),
            }
        }
        return Ok(Ids {
            uid: uid as u32,
            gid: groups[0],
            groups,
        });
    }
    let unknown = || Failure::Fatal(format!("unknown user/group: {}", show(spec)));
    let mut parts = spec.split(|&b| b == b':');
    let user = parts.next().unwrap_or(&[]);
    let pw = lookup_user(user).ok_or_else(unknown)?;
    let mut groups = Vec::new();
    for g in parts {
        let gid = lookup_group(g).ok_or_else(unknown)?;
        if groups.len() < MAX_GIDS {
            groups.push(gid);
        }
    }
    if groups.is_empty() {
        groups.push(pw.1);
    }
    Ok(Ids {
        uid: pw.0,
        gid: groups[0],
        groups,
    })
}

/// Looks `name` up in the colon-separated database `file` (as `/etc/passwd` and `/etc/group`
/// are): the fields of the first line whose first field is `name`. Read directly, not through
/// the C library's name service (a static binary cannot load its modules safely).
fn db_lookup(file: &str, name: &[u8]) -> Option<Vec<Vec<u8>>> {
    if name.is_empty() {
        return None;
    }
    let data = std::fs::read(file).ok()?;
    data.split(|&b| b == b'\n')
        .map(|l| {
            l.split(|&b| b == b':')
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        })
        .find(|f| f.len() >= 4 && f[0] == name)
}

fn num_field(f: &[u8]) -> Option<u32> {
    std::str::from_utf8(f).ok()?.parse().ok()
}

/// A user's uid and primary gid from `/etc/passwd`.
pub fn lookup_user(name: &[u8]) -> Option<(u32, u32)> {
    let f = db_lookup("/etc/passwd", name)?;
    Some((num_field(&f[2])?, num_field(&f[3])?))
}

/// A group's gid from `/etc/group`.
pub fn lookup_group(name: &[u8]) -> Option<u32> {
    let f = db_lookup("/etc/group", name)?;
    num_field(&f[2])
}

fn cstr(b: &[u8]) -> CString {
    // Arguments and environment strings from the command line cannot contain NUL bytes.
    CString::new(b.to_vec()).unwrap_or_default()
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The environment being built, kept as `NAME=value` strings in the order chpst keeps them.
pub struct Env(pub Vec<Vec<u8>>);

impl Env {
    pub fn current() -> Env {
        Env(envdir::to_pairs(&envdir::current()))
    }

    /// Adds `NAME=value`, or removes `NAME` when `entry` has no `=`: an existing `NAME` is
    /// removed first (its slot taken by the last entry), then the entry is appended.
    pub fn push(&mut self, entry: Vec<u8>) {
        let split = entry.iter().position(|&b| b == b'=').unwrap_or(entry.len());
        let key = &entry[..split];
        if let Some(j) = self
            .0
            .iter()
            .position(|e| e.len() > split && &e[..split] == key && e[split] == b'=')
        {
            self.0.swap_remove(j);
        }
        if split < entry.len() {
            self.0.push(entry);
        }
    }
}

/// What reading an environment directory met (so `-e` and a strict reader can differ).
struct DirReader<'a> {
    dir: &'a [u8],
    /// Subdirectories are skipped (with a warning when verbose) instead of failing.
    skip_dirs: bool,
    verbose: bool,
    prog: &'a str,
}

impl DirReader<'_> {
    /// Reads the directory the way chpst does (chdir into it, read each entry, come back)
    /// and returns the entries to push, in directory order.
    fn read(&self) -> Result<Vec<Vec<u8>>, Failure> {
        let dir = show(self.dir);
        // SAFETY: open(2) with a NUL-terminated path; the fd is closed below.
        let start = unsafe {
            libc::open(
                c".".as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if start < 0 {
            return Err(Failure::Fatal(format!(
                "unable to open current working directory: {}",
                errstr(errno())
            )));
        }
        let close_start = || {
            // SAFETY: closing the descriptor opened above, once.
            unsafe { libc::close(start) };
        };
        let cdir = cstr(self.dir);
        // SAFETY: chdir(2) with a NUL-terminated path.
        if unsafe { libc::chdir(cdir.as_ptr()) } < 0 {
            let e = errno();
            close_start();
            return Err(Failure::Fatal(format!(
                "unable to switch to directory: {dir}: {}",
                errstr(e)
            )));
        }
        let out = self.entries(&dir);
        // SAFETY: fchdir(2) back to the directory we started in.
        let back = unsafe { libc::fchdir(start) };
        let e = errno();
        close_start();
        let out = out?;
        if back < 0 {
            return Err(Failure::Fatal(format!(
                "unable to switch to starting directory: {}",
                errstr(e)
            )));
        }
        Ok(out)
    }

    fn entries(&self, dir: &str) -> Result<Vec<Vec<u8>>, Failure> {
        let rd = std::fs::read_dir(".").map_err(|e| {
            Failure::Fatal(format!(
                "unable to open directory: {dir}: {}",
                errstr(e.raw_os_error().unwrap_or(libc::EIO))
            ))
        })?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| {
                Failure::Fatal(format!(
                    "unable to read directory: {dir}: {}",
                    errstr(e.raw_os_error().unwrap_or(libc::EIO))
                ))
            })?;
            let name = ent.file_name();
            let nb = name.as_bytes();
            if nb.first() == Some(&b'.') {
                continue;
            }
            let content = match read_nonblock(nb) {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    let msg = format!("unable to read {dir}/{}: {}", show(nb), errstr(e));
                    if e == libc::EISDIR && self.skip_dirs {
                        if self.verbose {
                            let _ = writeln!(io::stderr(), "{}: warning: {msg}", self.prog);
                        }
                        continue;
                    }
                    return Err(Failure::Fatal(msg));
                }
            };
            let mut entry = nb.to_vec();
            if let Some(v) = envdir::value_of(&content, Flavor::Runit) {
                entry.push(b'=');
                entry.extend_from_slice(v.as_bytes());
            }
            out.push(entry);
        }
        Ok(out)
    }
}

/// Reads a whole file opened without blocking (a FIFO reads as empty). `Ok(None)`: it does
/// not exist (e.g. a dangling symbolic link), which chpst skips. Errors are errno values.
fn read_nonblock(name: &[u8]) -> Result<Option<Vec<u8>>, i32> {
    let c = cstr(name);
    // SAFETY: open(2) with a NUL-terminated name; the descriptor is closed below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = errno();
        return if e == libc::ENOENT { Ok(None) } else { Err(e) };
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    let res = loop {
        // SAFETY: read(2) into a buffer we own, of the size given.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            if e == libc::EAGAIN {
                break Ok(Some(out));
            }
            break Err(e);
        }
        if n == 0 {
            break Ok(Some(out));
        }
        out.extend_from_slice(&buf[..n as usize]);
    };
    // SAFETY: closing the descriptor opened above, once.
    unsafe { libc::close(fd) };
    res
}

fn set_limit(resource: libc::__rlimit_resource_t, want: Limit) -> Result<(), Failure> {
    let Some(v) = want else { return Ok(()) };
    if v < -1 {
        return Ok(());
    }
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) into a struct we own.
    if unsafe { libc::getrlimit(resource, &mut r) } < 0 {
        return Err(Failure::Fatal(format!(
            "unable to getrlimit(): {}",
            errstr(errno())
        )));
    }
    r.rlim_cur = if v == -1 || (r.rlim_max != libc::RLIM_INFINITY && v as u64 > r.rlim_max) {
        r.rlim_max
    } else {
        v as u64
    };
    // SAFETY: setrlimit(2) from a struct we own.
    if unsafe { libc::setrlimit(resource, &r) } < 0 {
        return Err(Failure::Fatal(format!(
            "unable to setrlimit(): {}",
            errstr(errno())
        )));
    }
    Ok(())
}

/// Executes `file` with `argv` and `envp`, looking it up in `path` (colon-separated; an
/// empty entry is the current directory) when it has no slash. Returns only on failure,
/// with the errno that describes it best (as djb's pathexec does).
pub fn exec_path(file: &[u8], argv: &[Vec<u8>], envp: &[Vec<u8>], path: Option<&[u8]>) -> i32 {
    let argv_c: Vec<CString> = argv.iter().map(|a| cstr(a)).collect();
    let mut argv_p: Vec<*const libc::c_char> = argv_c.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let env_c: Vec<CString> = envp.iter().map(|a| cstr(a)).collect();
    let mut env_p: Vec<*const libc::c_char> = env_c.iter().map(|a| a.as_ptr()).collect();
    env_p.push(std::ptr::null());
    let try_exec = |p: &[u8]| -> i32 {
        let pc = cstr(p);
        // SAFETY: execve(2) with NUL-terminated strings and NULL-terminated arrays that
        // live until the call returns (it only returns on failure).
        unsafe { libc::execve(pc.as_ptr(), argv_p.as_ptr(), env_p.as_ptr()) };
        errno()
    };
    if file.contains(&b'/') {
        return try_exec(file);
    }
    let path = path.unwrap_or(b"/bin:/usr/bin");
    let mut saved = 0;
    for dir in path.split(|&b| b == b':') {
        let mut full = dir.to_vec();
        if !full.is_empty() {
            full.push(b'/');
        }
        full.extend_from_slice(file);
        let e = try_exec(&full);
        if e != libc::ENOENT {
            saved = e;
            if e != libc::EACCES && e != libc::EPERM && e != libc::EISDIR {
                return e;
            }
        }
    }
    if saved != 0 { saved } else { libc::ENOENT }
}

/// Applies every state change of `o` and executes the program. Returns only on failure.
pub fn run(o: &Opts, prog: &str) -> Failure {
    match apply(o, prog) {
        Ok(f) | Err(f) => f,
    }
}

fn apply(o: &Opts, prog: &str) -> Result<Failure, Failure> {
    let fatal = |what: &str| Failure::Fatal(format!("{what}: {}", errstr(errno())));
    let path = std::env::var_os("PATH").map(OsString::into_vec);
    let mut env = Env::current();
    if let Some(d) = &o.env_dir {
        let r = DirReader {
            dir: d,
            skip_dirs: true,
            verbose: o.verbose,
            prog,
        };
        for e in r.read()? {
            env.push(e);
        }
    }
    if let Some(root) = &o.root {
        let c = cstr(root);
        // SAFETY: chdir(2) and chroot(2) with NUL-terminated paths.
        if unsafe { libc::chdir(c.as_ptr()) } < 0 {
            return Err(Failure::Fatal(format!(
                "unable to change directory: {}: {}",
                show(root),
                errstr(errno())
            )));
        }
        // SAFETY: as above.
        if unsafe { libc::chroot(c".".as_ptr()) } < 0 {
            return Err(fatal("unable to change root directory"));
        }
    }
    if o.nice != 0 {
        // SAFETY: setting errno then calling nice(2), whose -1 result is ambiguous.
        let r = unsafe {
            *libc::__errno_location() = 0;
            libc::nice(o.nice as libc::c_int)
        };
        if r == -1 && errno() != 0 {
            return Err(fatal("unable to set nice level"));
        }
    }
    if let Some(u) = &o.env_user {
        let ids = resolve(u)?;
        env.push(format!("UID={}", ids.uid).into_bytes());
        env.push(format!("GID={}", ids.gid).into_bytes());
    }
    if let Some(u) = &o.set_user {
        let ids = resolve(u)?;
        // SAFETY: setgroups/setgid/setuid with values we own; failures are reported.
        unsafe {
            if libc::setgroups(ids.groups.len(), ids.groups.as_ptr()) < 0 {
                return Err(fatal("unable to setgroups"));
            }
            if libc::setgid(ids.gid) < 0 {
                return Err(fatal("unable to setgid"));
            }
            if libc::setuid(ids.uid) < 0 {
                return Err(fatal("unable to setuid"));
            }
        }
    }
    if let Some((file, wait)) = &o.lock {
        lock(file, *wait)?;
    }
    if o.pgrp {
        // SAFETY: setsid(2) has no memory effects; failing (already a leader) is harmless.
        unsafe { libc::setsid() };
    }
    for (fd, name) in ["stdin", "stdout", "stderr"].iter().enumerate() {
        // SAFETY: closing a standard descriptor on request; it is not used afterwards
        // except for error messages, which then fail silently.
        if o.close[fd] && unsafe { libc::close(fd as i32) } < 0 {
            return Err(fatal(&format!("unable to close {name}")));
        }
    }
    set_limit(libc::RLIMIT_DATA, o.data)?;
    set_limit(libc::RLIMIT_STACK, o.stack)?;
    set_limit(libc::RLIMIT_MEMLOCK, o.memlock)?;
    set_limit(libc::RLIMIT_AS, o.addr_space)?;
    set_limit(libc::RLIMIT_NOFILE, o.nofile)?;
    set_limit(libc::RLIMIT_NPROC, o.nproc)?;
    set_limit(libc::RLIMIT_FSIZE, o.fsize)?;
    set_limit(libc::RLIMIT_CORE, o.core)?;
    set_limit(libc::RLIMIT_RSS, o.rss)?;
    set_limit(libc::RLIMIT_CPU, o.cpu)?;
    let file = o.prog[0].clone();
    let mut argv = o.prog.clone();
    if let Some(a) = &o.argv0 {
        argv[0] = a.clone();
    }
    let e = exec_path(&file, &argv, &env.0, path.as_deref());
    Ok(Failure::Fatal(format!(
        "unable to run: {}: {}",
        show(&argv[0]),
        errstr(e)
    )))
}

/// Opens `file` for writing (created 0600) and takes an exclusive flock on it, waiting for
/// it when `wait`. The descriptor stays open across exec (the program holds the lock).
pub fn lock(file: &[u8], wait: bool) -> Result<i32, Failure> {
    let c = cstr(file);
    // SAFETY: open(2) with a NUL-terminated path; the descriptor is meant to be inherited.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_WRONLY | libc::O_NONBLOCK | libc::O_APPEND | libc::O_CREAT,
            0o600,
        )
    };
    if fd < 0 {
        return Err(Failure::Fatal(format!(
            "unable to open lock: {}: {}",
            show(file),
            errstr(errno())
        )));
    }
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    loop {
        // SAFETY: flock(2) on the descriptor opened above.
        if unsafe { libc::flock(fd, op) } == 0 {
            return Ok(fd);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(Failure::Fatal(format!(
                "unable to lock: {}: {}",
                show(file),
                errstr(e)
            )));
        }
    }
}

/// The program's entry point: `name` is the name it was invoked as (`chpst` selects the
/// chpst personality), `args` the arguments after argv[0]. Returns only on failure.
pub fn main(name: &str, args: Vec<OsString>) -> i32 {
    let chpst = name == "chpst";
    let prog = if chpst { "chpst" } else { "rsvexec" };
    let usage_text = format!(
        "usage: {prog} {}\n\n",
        if chpst { OPTS_USAGE } else { OPTS_USAGE_RSV }
    );
    let failure = match parse(&args) {
        Ok(o) => run(&o, prog),
        Err(f) => f,
    };
    let mut err = io::stderr().lock();
    match failure {
        Failure::Usage(line) => {
            if let Some(l) = line {
                let _ = writeln!(err, "{prog}: {l}");
            }
            let _ = err.write_all(usage_text.as_bytes());
            EXIT_USAGE
        }
        Failure::Version => {
            let v = if chpst {
                CHPST_VERSION.to_string()
            } else {
                format!("rsvexec {}", env!("CARGO_PKG_VERSION"))
            };
            let _ = writeln!(err, "{v}");
            let _ = err.write_all(usage_text.as_bytes());
            EXIT_USAGE
        }
        Failure::Fatal(msg) => {
            let _ = writeln!(err, "{prog}: fatal: {msg}");
            EXIT_FAIL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn numbers_wrap_like_chpst() {
        assert_eq!(whole_ulong(b""), Some(0));
        assert_eq!(whole_ulong(b"12x"), None);
        assert_eq!(whole_ulong(b"18446744073709551616"), Some(0));
        assert_eq!(
            whole_ulong(b"18446744073709551615").map(|u| u as i64),
            Some(-1)
        );
        assert_eq!(whole_long(b"-"), Some(0));
        assert_eq!(whole_long(b"+3"), Some(3));
        assert_eq!(whole_long(b"-+3"), None);
        assert_eq!(whole_long(b"-20"), Some(-20));
    }

    #[test]
    fn options_and_operands() {
        let o = parse(&args(&[
            "-vP0", "-m100", "-d", "5", "-u", "x", "--", "prog", "-a",
        ]))
        .unwrap();
        assert!(o.verbose && o.pgrp && o.close[0] && !o.close[1]);
        assert_eq!(o.data, Some(5));
        assert_eq!(o.stack, Some(100));
        assert_eq!(o.set_user.as_deref(), Some(&b"x"[..]));
        assert_eq!(o.prog, vec![b"prog".to_vec(), b"-a".to_vec()]);
        assert_eq!(
            parse(&args(&["-x", "p"])).unwrap_err(),
            Failure::Usage(Some("illegal option -- x".into()))
        );
        assert_eq!(
            parse(&args(&["-u"])).unwrap_err(),
            Failure::Usage(Some("option requires an argument -- u".into()))
        );
        assert_eq!(
            parse(&args(&["-m", "-5", "p"])).unwrap_err(),
            Failure::Usage(None)
        );
        assert_eq!(parse(&args(&["-v"])).unwrap_err(), Failure::Usage(None));
        assert_eq!(parse(&args(&["-V", "p"])).unwrap_err(), Failure::Version);
    }

    #[test]
    fn numeric_ids() {
        assert_eq!(
            resolve(b":1:2::3").unwrap(),
            Ids {
                uid: 1,
                gid: 2,
                groups: vec![2, 0, 3]
            }
        );
        assert_eq!(
            resolve(b":77:").unwrap(),
            Ids {
                uid: 77,
                gid: 0,
                groups: vec![0]
            }
        );
        assert_eq!(
            resolve(b":77").unwrap_err(),
            Failure::Fatal("invalid uid/gids: 77".into())
        );
        assert_eq!(
            resolve(b":1:2x").unwrap_err(),
            Failure::Fatal("invalid uid/gids: 1:2x".into())
        );
        let many: String = (0..61).map(|i| format!(":{i}")).collect();
        assert!(resolve(format!(":1{many}").as_bytes()).is_err());
        let sixty: String = (0..60).map(|i| format!(":{i}")).collect();
        assert!(resolve(format!(":1{sixty}").as_bytes()).is_ok());
    }

    #[test]
    fn env_push_replaces_and_removes() {
        let mut e = Env(vec![b"A=1".to_vec(), b"B=2".to_vec(), b"C=3".to_vec()]);
        e.push(b"A".to_vec());
        assert_eq!(e.0, vec![b"C=3".to_vec(), b"B=2".to_vec()]);
        e.push(b"B=x".to_vec());
        assert_eq!(e.0, vec![b"C=3".to_vec(), b"B=x".to_vec()]);
        e.push(b"X=Y=eq".to_vec());
        assert_eq!(e.0.last().unwrap(), b"X=Y=eq");
    }
}
