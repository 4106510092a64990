//! The s6-log personality: options and the logging script (selection with POSIX EREs,
//! actions `1`, `2`, `=file` and log directories, control directives).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::input::{self, Cutting, Handler};
use super::logdir::{self, Logdir, OpenError, Processor, Settings, Style};
use super::regex::Regex;
use super::stamp::{self, Kind, Now, Stamper};
use crate::getopt::{GetOpt, Opt};
use crate::tai::Family;

/// Command-line options before the script.
#[derive(Debug, Default)]
pub struct Opts {
    pub notif: Option<i32>,
    pub ignore_term: bool,
    pub block: bool,
    pub verbosity: i32,
    pub linelimit: usize,
    pub script: Vec<String>,
}

pub const USAGE: &str =
    "[ -d notif ] [ -q | -v ] [ -b ] [ -p ] [ -l linelimit ] [ -- ] logging_script";

/// Parses the options; Err(()) is a usage error (exit 100).
#[allow(clippy::result_unit_err)]
pub fn parse_opts(args: &[String]) -> Result<Opts, ()> {
    let mut o = Opts {
        verbosity: 1,
        linelimit: 8192,
        ..Opts::default()
    };
    let mut opts = GetOpt::new(args, "qvbpd:l:");
    for opt in opts.by_ref() {
        match opt {
            Opt::Flag('q') => o.verbosity = 0,
            Opt::Flag('v') => o.verbosity = 2,
            Opt::Flag('b') => o.block = true,
            Opt::Flag(_) => o.ignore_term = true,
            Opt::Arg(c, val) => {
                let n: usize = val.parse().map_err(|_| ())?;
                if c == 'd' {
                    o.notif = Some(n.min(i32::MAX as usize) as i32);
                } else {
                    o.linelimit = if n == 0 { 0 } else { n.max(48) };
                }
            }
            Opt::Unknown(_) | Opt::MissingArg(_) => return Err(()),
        }
    }
    o.script = opts.operands().to_vec();
    Ok(o)
}

enum ActKind {
    Stdout,
    Stderr,
    Status {
        path: PathBuf,
        pad: usize,
        last: Option<Vec<u8>>,
    },
    Dir(Box<Logdir>),
}

struct Action {
    kind: ActKind,
    tai: bool,
    local: bool,
    prefix: Vec<u8>,
    alert_max: usize,
}

enum Item {
    Plus(Regex),
    Minus(Regex),
    F,
    Act(Action),
}

/// A script error: message and exit code.
#[derive(Debug)]
pub struct ScriptError(pub String, pub i32);

fn num(d: &str) -> Option<u64> {
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse().ok()
}

/// Does `arg` parse as an s6-log directive that is not a log directory?
pub fn is_directive(arg: &str) -> bool {
    let b = arg.as_bytes();
    match b.first() {
        None => false,
        Some(b'+') | Some(b'-') | Some(b'!') | Some(b'?') => true,
        Some(b'=') => b.len() > 1,
        Some(b't') | Some(b'T') | Some(b'1') | Some(b'2') | Some(b'f') => b.len() == 1,
        Some(b'n') | Some(b's') | Some(b'S') | Some(b'l') | Some(b'r') | Some(b'E')
        | Some(b'^') => num(&arg[1..]).is_some(),
        Some(b'p') => true,
        _ => false,
    }
}

/// Is `arg` an s6-log action (`1`, `2`, `=file`, a log directory)?
pub fn is_action(arg: &str) -> bool {
    matches!(arg, "1" | "2")
        || (arg.starts_with('=') && arg.len() > 1)
        || arg.starts_with('/')
        || arg.starts_with('.')
}

/// Is `arg` acceptable in an s6-log script (a directive or a log directory)?
pub fn is_script_word(arg: &str) -> bool {
    is_directive(arg) || arg.starts_with('/') || arg.starts_with('.')
}

struct Parsed {
    items: Vec<Item>,
}

fn parse_script(script: &[String], prog: &str) -> Result<Parsed, ScriptError> {
    let mut set = Settings {
        size_max: 99999,
        keep: 10,
        keep_min: 0,
        age_max: None,
        total_max: 0,
        tolerance: 2000,
        processor: None,
        retry: Duration::from_millis(2000),
    };
    let mut alert_max = 200usize;
    let mut pad = 1001usize;
    let mut prefix: Vec<u8> = Vec::new();
    let (mut tai, mut local) = (false, false);
    let mut items = Vec::new();
    let mut acts = 0;
    let unrec = |d: &str| ScriptError(format!("unrecognized directive: {d}"), 100);
    for d in script {
        let rest = d.get(1..).unwrap_or("");
        let c = d.as_bytes().first().copied().unwrap_or(0);
        let mut action = |kind: ActKind, tai: &mut bool, local: &mut bool| {
            acts += 1;
            let a = Action {
                kind,
                tai: *tai,
                local: *local,
                prefix: prefix.clone(),
                alert_max,
            };
            *tai = false;
            *local = false;
            Item::Act(a)
        };
        match c {
            b'+' | b'-' => {
                let re = Regex::new(rest.as_bytes()).map_err(|e| {
                    ScriptError(
                        format!("unable to compile regular expression {rest}: {e}"),
                        100,
                    )
                })?;
                items.push(if c == b'+' {
                    Item::Plus(re)
                } else {
                    Item::Minus(re)
                });
            }
            b'f' if rest.is_empty() => items.push(Item::F),
            b'n' => set.keep = num(rest).ok_or_else(|| unrec(d))?.min(u32::MAX as u64) as u32,
            b's' => {
                let v = num(rest)
                    .filter(|&v| v <= 268435455)
                    .ok_or_else(|| unrec(d))?;
                set.size_max = v.clamp(4096, 268435455);
                if set.tolerance > set.size_max / 2 {
                    set.tolerance = set.size_max / 2;
                }
            }
            b'S' => set.total_max = num(rest).ok_or_else(|| unrec(d))?,
            b'l' => {
                let v = num(rest).ok_or_else(|| unrec(d))?;
                if v > set.size_max / 2 {
                    return Err(ScriptError(
                        format!("directive {d} conflicts with previous s directive"),
                        100,
                    ));
                }
                set.tolerance = v;
            }
            b'r' => set.retry = Duration::from_millis(num(rest).ok_or_else(|| unrec(d))?),
            b'E' => alert_max = num(rest).ok_or_else(|| unrec(d))? as usize,
            b'^' => pad = num(rest).ok_or_else(|| unrec(d))? as usize,
            b'p' => {
                prefix = if rest.is_empty() {
                    Vec::new()
                } else {
                    let mut p = rest.as_bytes().to_vec();
                    p.push(b' ');
                    p
                }
            }
            b'!' => {
                set.processor = (!rest.is_empty()).then(|| Processor::Execline(rest.to_string()))
            }
            b'?' => set.processor = (!rest.is_empty()).then(|| Processor::Sh(rest.to_string())),
            b't' if rest.is_empty() => tai = true,
            b'T' if rest.is_empty() => local = true,
            b'1' if rest.is_empty() => items.push(action(ActKind::Stdout, &mut tai, &mut local)),
            b'2' if rest.is_empty() => items.push(action(ActKind::Stderr, &mut tai, &mut local)),
            b'=' if !rest.is_empty() => items.push(action(
                ActKind::Status {
                    path: PathBuf::from(rest),
                    pad,
                    last: None,
                },
                &mut tai,
                &mut local,
            )),
            b'/' | b'.' => {
                let path = PathBuf::from(d);
                let ld =
                    Logdir::open(&path, Style::S6, set.clone(), prog).map_err(|e| match e {
                        OpenError::Busy => ScriptError(
                            format!("unable to lock {d}/lock: Device or resource busy"),
                            111,
                        ),
                        OpenError::Missing(e) | OpenError::Other(_, e) => ScriptError(
                            format!(
                                "unable to open logdir {d}: {}",
                                logdir::err_text(Style::S6, &e)
                            ),
                            111,
                        ),
                    })?;
                items.push(action(ActKind::Dir(Box::new(ld)), &mut tai, &mut local));
            }
            _ => return Err(unrec(d)),
        }
    }
    if acts == 0 {
        return Err(ScriptError("no action directive specified".into(), 100));
    }
    Ok(Parsed { items })
}

/// The s6-log handler.
pub struct S6Log {
    prog: String,
    items: Vec<Item>,
    stamper: Stamper,
    head: Vec<u8>,
    cline: Vec<u8>,
    out: Vec<u8>,
    out_ok: bool,
    err: Vec<u8>,
    has_regex: bool,
}

impl S6Log {
    fn dirs(&mut self) -> impl Iterator<Item = &mut Logdir> {
        self.items.iter_mut().filter_map(|i| match i {
            Item::Act(Action {
                kind: ActKind::Dir(ld),
                ..
            }) => Some(&mut **ld),
            _ => None,
        })
    }

    fn write_status(&mut self) {
        for it in &mut self.items {
            if let Item::Act(Action {
                kind: ActKind::Status { path, pad, last },
                ..
            }) = it
            {
                let Some(mut data) = last.take() else {
                    continue;
                };
                if *pad > 0 {
                    data.resize(*pad, b'\n');
                }
                let mut tmp = path.clone().into_os_string();
                tmp.push(".new");
                let r = fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o644)
                    .open(&tmp)
                    .and_then(|mut f| f.write_all(&data))
                    .and_then(|_| fs::rename(&tmp, &*path));
                if let Err(e) = r {
                    let _ = writeln!(
                        io::stderr(),
                        "{}: warning: unable to write status file {}: {}",
                        self.prog,
                        path.display(),
                        logdir::err_text(Style::S6, &e)
                    );
                }
            }
        }
    }
}

impl Handler for S6Log {
    fn line(&mut self, data: &[u8], _start: bool, _end: bool, now: Now) {
        if self.has_regex {
            self.cline.clear();
            self.cline.extend_from_slice(data);
            self.cline.push(0);
        }
        let mut sel = true;
        let mut acted = false;
        for it in &mut self.items {
            match it {
                Item::Plus(re) => {
                    if !sel && re.is_match_c(&self.cline) {
                        sel = true;
                    }
                }
                Item::Minus(re) => {
                    if sel && re.is_match_c(&self.cline) {
                        sel = false;
                    }
                }
                Item::F => sel = !acted,
                Item::Act(a) => {
                    if !sel {
                        continue;
                    }
                    acted = true;
                    self.head.clear();
                    if a.tai {
                        self.stamper
                            .push(Kind::Tai(Family::S6), now, &mut self.head);
                    }
                    if a.local {
                        self.stamper.push(Kind::Local, now, &mut self.head);
                    }
                    self.head.extend_from_slice(&a.prefix);
                    match &mut a.kind {
                        ActKind::Dir(ld) => {
                            ld.append(&self.head);
                            ld.append(data);
                            ld.append(b"\n");
                            ld.line_end();
                        }
                        ActKind::Stdout => {
                            if self.out_ok {
                                self.out.extend_from_slice(&self.head);
                                self.out.extend_from_slice(data);
                                self.out.push(b'\n');
                            }
                        }
                        ActKind::Stderr => {
                            self.err.extend_from_slice(self.prog.as_bytes());
                            self.err.extend_from_slice(b": alert: ");
                            self.err.extend_from_slice(&self.head);
                            // s6-log cuts only when the "..." makes the line shorter.
                            if a.alert_max > 0 && data.len() > a.alert_max + 3 {
                                self.err.extend_from_slice(&data[..a.alert_max]);
                                self.err.extend_from_slice(b"...");
                            } else {
                                self.err.extend_from_slice(data);
                            }
                            self.err.push(b'\n');
                        }
                        ActKind::Status { last, .. } => {
                            let mut v = self.head.clone();
                            v.extend_from_slice(data);
                            v.push(b'\n');
                            *last = Some(v);
                        }
                    }
                }
            }
        }
    }

    fn flush(&mut self) -> bool {
        if !self.out.is_empty() {
            if self.out_ok && io::stdout().lock().write_all(&self.out).is_err() {
                let _ = writeln!(
                    io::stderr(),
                    "{}: warning: unable to write to stdout, disabling the 1 action",
                    self.prog
                );
                self.out_ok = false;
            }
            self.out.clear();
        }
        if !self.err.is_empty() {
            let _ = io::stderr().write_all(&self.err);
            self.err.clear();
        }
        self.write_status();
        let now = Instant::now();
        let mut ok = true;
        for ld in self.dirs() {
            if ld.pending() && !ld.drain(now) {
                ok = false;
            }
        }
        ok
    }

    fn deadline(&self) -> Option<Instant> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Act(Action {
                    kind: ActKind::Dir(ld),
                    ..
                }) => [ld.retry_at(), ld.proc_deadline()]
                    .into_iter()
                    .flatten()
                    .min(),
                _ => None,
            })
            .min()
    }

    fn tick(&mut self, _now: Instant) {}

    fn alarm(&mut self) {
        for ld in self.dirs() {
            ld.rotate();
        }
    }

    fn hup(&mut self) -> bool {
        true
    }

    fn logdirs(&mut self) -> Vec<&mut Logdir> {
        self.dirs().collect()
    }

    fn finish(&mut self) {
        let _ = self.flush();
        for ld in self.dirs() {
            while !ld.close() {
                let wait = ld
                    .retry_at()
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .unwrap_or(Duration::from_millis(100));
                std::thread::sleep(wait.max(Duration::from_millis(10)));
            }
        }
    }
}

/// Entry point of the s6-log personality.
pub fn main(prog: &str, args: &[String]) -> i32 {
    let o = match parse_opts(args) {
        Ok(o) if !o.script.is_empty() => o,
        _ => {
            let _ = writeln!(io::stderr(), "{prog}: usage: {prog} {USAGE}");
            return 100;
        }
    };
    if o.notif.is_some_and(|fd| fd < 3) {
        let _ = writeln!(
            io::stderr(),
            "{prog}: fatal: notification fd must be 3 or more"
        );
        return 100;
    }
    stamp::init_local_time();
    let parsed = match parse_script(&o.script, prog) {
        Ok(p) => p,
        Err(ScriptError(m, code)) => {
            let _ = writeln!(io::stderr(), "{prog}: fatal: {m}");
            return code;
        }
    };
    let has_regex = parsed
        .items
        .iter()
        .any(|i| matches!(i, Item::Plus(_) | Item::Minus(_)));
    let mut h = S6Log {
        prog: prog.to_string(),
        items: parsed.items,
        stamper: Stamper::default(),
        head: Vec::with_capacity(128),
        cline: vec![0],
        out: Vec::new(),
        out_ok: true,
        err: Vec::new(),
        has_regex,
    };
    if let Some(fd) = o.notif {
        // SAFETY: writes one byte to and closes a descriptor the caller handed us with -d.
        unsafe {
            let _ = libc::write(fd, b"\n".as_ptr() as *const libc::c_void, 1);
            libc::close(fd);
        }
    }
    let cut = Cutting {
        split: o.linelimit,
        // With -l 0 a line is never split: it is gathered whole, like s6-log does.
        piece: usize::MAX / 2,
        ignore_term: o.ignore_term,
    };
    input::run(&mut h, cut, prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn script_errors() {
        let e = |a: &[&str]| parse_script(&v(a), "s6-log").err().map(|e| (e.0, e.1));
        assert_eq!(
            e(&["bogus"]).unwrap(),
            ("unrecognized directive: bogus".into(), 100)
        );
        assert_eq!(
            e(&["t"]).unwrap(),
            ("no action directive specified".into(), 100)
        );
        assert_eq!(e(&["nabc", "1"]).unwrap().1, 100);
        assert_eq!(e(&["l60000", "1"]).unwrap().1, 100);
        assert_eq!(e(&["+a(", "1"]).unwrap().1, 100);
        assert!(
            e(&[
                "t", "n3", "s100", "+x", "-y", "f", "pP", "p", "E5", "^0", "1", "2"
            ])
            .is_none()
        );
    }

    #[test]
    fn directives() {
        assert!(is_directive("t"));
        assert!(is_directive("n20"));
        assert!(!is_directive("n"));
        assert!(!is_directive("main"));
        assert!(!is_directive("./main"));
        assert!(is_script_word("./main"));
        assert!(is_directive("+ERROR"));
    }

    #[test]
    fn options() {
        let o = parse_opts(&v(&["-bp", "-l", "10", "t", "1"])).unwrap();
        assert!(o.block && o.ignore_term);
        assert_eq!(o.linelimit, 48);
        assert_eq!(o.script, v(&["t", "1"]));
        assert!(parse_opts(&v(&["-x"])).is_err());
    }
}
