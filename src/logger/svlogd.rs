//! The svlogd personality: options, per-directory `config`, glob selection, stderr and UDP
//! copies, HUP (reopen and re-read `config`).

use std::fs;
use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::glob;
use super::input::{self, Cutting, Handler};
use super::logdir::{self, Logdir, OpenError, Processor, Settings, Style};
use super::stamp::{Kind, Now, Stamper};
use crate::getopt::{GetOpt, Opt};
use crate::tai::Family;

/// Command-line options.
#[derive(Clone, Debug)]
pub struct Opts {
    pub stamp: Option<Kind>,
    pub repl: Option<u8>,
    pub extra: Vec<u8>,
    pub len: usize,
    pub buflen: usize,
    pub verbose: bool,
    pub dirs: Vec<PathBuf>,
}

/// Parses svlogd's options; Err(message) is a usage error (the caller prints usage, exit 111).
pub fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        stamp: None,
        repl: None,
        extra: Vec::new(),
        len: 1000,
        buflen: 1024,
        verbose: false,
        dirs: Vec::new(),
    };
    let mut tcount = 0;
    let mut opts = GetOpt::new(args, "tvr:R:l:b:");
    for opt in opts.by_ref() {
        match opt {
            Opt::Flag('t') => tcount += 1,
            Opt::Flag(_) => o.verbose = true,
            Opt::Arg('r', val) => {
                if val.len() != 1 {
                    return Err(String::new());
                }
                o.repl = Some(val.as_bytes()[0]);
            }
            Opt::Arg('R', val) => {
                o.extra = val.into_bytes();
                if o.repl.is_none() {
                    o.repl = Some(b'_');
                }
            }
            Opt::Arg('l', val) => {
                o.len = val.parse().map_err(|_| String::new())?;
                if o.len == 0 {
                    o.len = 1000;
                }
            }
            Opt::Arg(_, val) => o.buflen = val.parse().map_err(|_| String::new())?,
            Opt::MissingArg(c) => return Err(format!("option requires an argument -- {c}")),
            Opt::Unknown(c) => return Err(format!("illegal option -- {c}")),
        }
    }
    o.stamp = match tcount {
        0 => None,
        1 => Some(Kind::Tai(Family::Runit)),
        2 => Some(Kind::Utc(b'_')),
        _ => Some(Kind::Utc(b'T')),
    };
    if o.buflen <= o.len {
        return Err(String::new());
    }
    o.dirs = opts.operands().iter().map(PathBuf::from).collect();
    if o.dirs.is_empty() {
        return Err(String::new());
    }
    Ok(o)
}

/// One directory's `config`.
#[derive(Clone, Debug)]
pub struct DirConfig {
    pub set: Settings,
    pub prefix: Vec<u8>,
    /// (`+`, `-`, `e` or `E`, pattern)
    pub pats: Vec<(u8, Vec<u8>)>,
    pub udp: Option<(SocketAddr, bool)>,
}

fn defaults(len: usize) -> DirConfig {
    DirConfig {
        set: Settings {
            size_max: 1_000_000,
            keep: 10,
            keep_min: 10,
            age_max: None,
            total_max: 0,
            tolerance: len as u64,
            processor: None,
            retry: Duration::from_secs(3),
        },
        prefix: Vec::new(),
        pats: Vec::new(),
        udp: None,
    }
}

fn num_suffix(s: &str, units: &[(char, u64)]) -> Option<u64> {
    let digits = s.bytes().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let n: u64 = s[..digits].parse().ok()?;
    let rest = &s[digits..];
    if rest.is_empty() {
        return Some(n);
    }
    let mut it = rest.chars();
    let c = it.next()?;
    if it.next().is_some() {
        return None;
    }
    units
        .iter()
        .find(|(u, _)| *u == c)
        .and_then(|(_, m)| n.checked_mul(*m))
}

/// Parses the text of a `config` file. Err((line number, message)).
pub fn parse_config(text: &[u8], len: usize) -> Result<DirConfig, (usize, String)> {
    let mut c = defaults(len);
    for (no, raw) in text.split(|&b| b == b'\n').enumerate() {
        let no = no + 1;
        let line = String::from_utf8_lossy(raw);
        let line = line.as_ref();
        let Some(first) = line.chars().next() else {
            continue;
        };
        let rest = &line[first.len_utf8()..];
        let bad = |what: &str| (no, format!("{what}: {line}"));
        match first {
            '#' => {}
            's' => {
                c.set.size_max = num_suffix(rest, &[('k', 1024), ('m', 1024 * 1024)])
                    .ok_or_else(|| bad("bad size"))?
            }
            'n' => c.set.keep = rest.parse().map_err(|_| bad("bad number"))?,
            'N' => c.set.keep_min = rest.parse().map_err(|_| bad("bad number"))?,
            't' => {
                let secs = num_suffix(rest, &[('s', 1), ('m', 60), ('h', 3600)])
                    .ok_or_else(|| bad("bad time"))?;
                c.set.age_max = if secs == 0 {
                    None
                } else {
                    Some(Duration::from_secs(secs))
                };
            }
            '!' => {
                c.set.processor = if rest.is_empty() {
                    None
                } else {
                    Some(Processor::Sh(rest.to_string()))
                }
            }
            'u' | 'U' => {
                let addr = if rest.contains(':') {
                    rest.to_string()
                } else {
                    format!("{rest}:514")
                };
                let a: SocketAddr = addr.parse().map_err(|_| bad("bad udp address"))?;
                c.udp = Some((a, first == 'U'));
            }
            'p' => c.prefix = rest.as_bytes().to_vec(),
            '+' | '-' | 'e' | 'E' => c.pats.push((first as u8, rest.as_bytes().to_vec())),
            _ => return Err(bad("unknown directive")),
        }
    }
    Ok(c)
}

/// A bad line in `config` is an error; a `config` that cannot be read is not (svlogd warns and
/// uses the defaults; a directory that cannot be entered at all is reported when it is opened).
fn read_config(dir: &Path, len: usize, prog: &str) -> Result<DirConfig, String> {
    let p = dir.join("config");
    match fs::read(&p) {
        Ok(t) => parse_config(&t, len).map_err(|(no, m)| format!("{}:{no}: {m}", p.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(defaults(len)),
        Err(e) => {
            if fs::metadata(dir.join(".")).is_ok() {
                let _ = writeln!(
                    io::stderr(),
                    "{prog}: warning: unable to read config: {}: {}",
                    dir.display(),
                    logdir::err_text(Style::Svlogd, &e)
                );
            }
            Ok(defaults(len))
        }
    }
}

struct Dir {
    path: PathBuf,
    cfg: DirConfig,
    ld: Option<Logdir>,
    file: bool,
    err: bool,
}

/// The svlogd handler.
pub struct Svlogd {
    prog: String,
    o: Opts,
    dirs: Vec<Dir>,
    stamper: Stamper,
    head: Vec<u8>,
    scratch: Vec<u8>,
    errbuf: Vec<u8>,
    udp: Option<UdpSocket>,
    table: [u8; 256],
}

impl Svlogd {
    fn info(&self, msg: &str) {
        if self.o.verbose {
            let _ = writeln!(io::stderr(), "{}: info: {msg}", self.prog);
        }
    }

    /// Opens every directory; a bad `config` is fatal when `strict` (start-up), otherwise a
    /// warning and the previous configuration stays.
    fn open_all(&mut self, strict: bool) -> Result<usize, String> {
        let mut ok = 0;
        for i in 0..self.dirs.len() {
            let path = self.dirs[i].path.clone();
            match read_config(&path, self.o.len, &self.prog) {
                Ok(c) => {
                    self.info(&format!("read: {}/config", path.display()));
                    self.dirs[i].cfg = c;
                }
                Err(m) if strict => return Err(m),
                Err(m) => {
                    let _ = writeln!(io::stderr(), "{}: warning: {m}", self.prog);
                }
            }
            let mut set = self.dirs[i].cfg.set.clone();
            // svlogd rotates at a line end once size >= s - len; with s == len that is after
            // every line (tolerance s - 1 gives the same, as every line adds its newline).
            if set.size_max > 0 && set.size_max == set.tolerance {
                set.tolerance = set.size_max - 1;
            }
            match Logdir::open(&path, Style::Svlogd, set, &self.prog) {
                Ok(ld) => {
                    self.dirs[i].ld = Some(ld);
                    ok += 1;
                }
                Err(e) => {
                    let d = path.display();
                    let msg = match e {
                        OpenError::Missing(e) => format!(
                            "unable to open log directory: {d}: {}",
                            logdir::err_text(Style::Svlogd, &e)
                        ),
                        OpenError::Busy => {
                            format!("unable to lock directory: {d}: temporary failure")
                        }
                        // A directory that cannot be entered: svlogd's words for it.
                        OpenError::Other(_, e) if fs::metadata(path.join(".")).is_err() => {
                            format!(
                                "unable to open log directory: {d}: {}",
                                logdir::err_text(Style::Svlogd, &e)
                            )
                        }
                        OpenError::Other(what, e) => {
                            format!("{what}: {d}: {}", logdir::err_text(Style::Svlogd, &e))
                        }
                    };
                    let _ = writeln!(io::stderr(), "{}: warning: {msg}", self.prog);
                }
            }
        }
        Ok(ok)
    }

    fn close_all(&mut self) {
        for d in &mut self.dirs {
            if let Some(ld) = d.ld.as_mut() {
                while !ld.close() {
                    let wait = ld
                        .retry_at()
                        .map(|t| t.saturating_duration_since(Instant::now()))
                        .unwrap_or(Duration::from_millis(100));
                    std::thread::sleep(wait.max(Duration::from_millis(10)));
                }
            }
            d.ld = None;
        }
    }
}

impl Handler for Svlogd {
    fn line(&mut self, data: &[u8], start: bool, end: bool, now: Now) {
        // Like svlogd, only the first `len` bytes of a line are subject to replacement.
        let data: &[u8] = if self.o.repl.is_some() && start {
            self.scratch.clear();
            let n = data.len().min(self.o.len);
            self.scratch
                .extend(data[..n].iter().map(|&b| self.table[b as usize]));
            self.scratch.extend_from_slice(&data[n..]);
            &self.scratch
        } else {
            data
        };
        let len = self.o.len;
        if start {
            self.head.clear();
            if let Some(k) = self.o.stamp {
                self.stamper.push(k, now, &mut self.head);
            }
        }
        let m = &data[..data.len().min(len)];
        for d in &mut self.dirs {
            let Some(ld) = d.ld.as_mut() else { continue };
            if start {
                d.file = true;
                d.err = false;
                for (c, p) in &d.cfg.pats {
                    if glob::matches(p, m) {
                        match c {
                            b'+' => d.file = true,
                            b'-' => d.file = false,
                            b'e' => d.err = true,
                            _ => d.err = false,
                        }
                    }
                }
                if d.err {
                    self.errbuf.extend_from_slice(&self.head);
                    self.errbuf.extend_from_slice(&d.cfg.prefix);
                    self.errbuf.extend_from_slice(m);
                    if data.len() > len || !end {
                        self.errbuf.extend_from_slice(b"...");
                    }
                    self.errbuf.push(b'\n');
                }
                if let (true, Some((addr, _))) = (d.file, d.cfg.udp) {
                    if self.udp.is_none() {
                        self.udp = UdpSocket::bind("0.0.0.0:0").ok();
                    }
                    if let Some(s) = &self.udp {
                        let mut pkt = self.head.clone();
                        pkt.extend_from_slice(&d.cfg.prefix);
                        pkt.extend_from_slice(m);
                        if data.len() > len || !end {
                            pkt.extend_from_slice(b"...");
                        }
                        pkt.push(b'\n');
                        let _ = s.send_to(&pkt, addr);
                    }
                }
                if d.file && !matches!(d.cfg.udp, Some((_, true))) {
                    ld.append(&self.head);
                    ld.append(&d.cfg.prefix);
                }
            }
            if d.file && !matches!(d.cfg.udp, Some((_, true))) {
                ld.append(data);
                if end {
                    ld.append(b"\n");
                    ld.line_end();
                }
            }
        }
    }

    fn flush(&mut self) -> bool {
        if !self.errbuf.is_empty() {
            let _ = io::stderr().write_all(&self.errbuf);
            self.errbuf.clear();
        }
        let now = Instant::now();
        let mut ok = true;
        for d in &mut self.dirs {
            if let Some(ld) = d.ld.as_mut() {
                if ld.pending() && !ld.drain(now) {
                    ok = false;
                }
            }
        }
        ok
    }

    fn deadline(&self) -> Option<Instant> {
        self.dirs
            .iter()
            .filter_map(|d| d.ld.as_ref())
            .flat_map(|l| [l.retry_at(), l.age_deadline(), l.proc_deadline()])
            .flatten()
            .min()
    }

    fn tick(&mut self, now: Instant) {
        for d in &mut self.dirs {
            if let Some(ld) = d.ld.as_mut() {
                ld.check_age(now);
            }
        }
    }

    fn alarm(&mut self) {
        for d in &mut self.dirs {
            if let Some(ld) = d.ld.as_mut() {
                ld.rotate();
            }
        }
    }

    fn hup(&mut self) -> bool {
        self.close_all();
        match self.open_all(false) {
            Ok(0) | Err(_) => {
                let _ = writeln!(
                    io::stderr(),
                    "{}: fatal: no functional log directories.",
                    self.prog
                );
                std::process::exit(111);
            }
            Ok(_) => false,
        }
    }

    fn finish(&mut self) {
        let _ = self.flush();
        self.close_all();
    }

    fn logdirs(&mut self) -> Vec<&mut Logdir> {
        self.dirs.iter_mut().filter_map(|d| d.ld.as_mut()).collect()
    }
}

/// Entry point of the svlogd personality.
pub fn main(prog: &str, args: &[String]) -> i32 {
    let o = match parse_opts(args) {
        Ok(o) => o,
        Err(m) => {
            if !m.is_empty() {
                let _ = writeln!(io::stderr(), "{prog}: {m}");
            }
            let _ = writeln!(
                io::stderr(),
                "usage: {prog} [-ttv] [-r c] [-R abc] [-l len] [-b buflen] dir ...\n"
            );
            return 111;
        }
    };
    let mut table = [0u8; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let b = i as u8;
        *t = match o.repl {
            Some(r) if !(32..=126).contains(&b) || o.extra.contains(&b) => r,
            _ => b,
        };
    }
    let dirs = o
        .dirs
        .iter()
        .map(|p| Dir {
            path: p.clone(),
            cfg: defaults(o.len),
            ld: None,
            file: true,
            err: false,
        })
        .collect();
    let piece = o.len.max(1 << 20);
    let mut h = Svlogd {
        prog: prog.to_string(),
        o,
        dirs,
        stamper: Stamper::default(),
        head: Vec::with_capacity(64),
        scratch: Vec::new(),
        errbuf: Vec::new(),
        udp: None,
        table,
    };
    match h.open_all(true) {
        Ok(0) => {
            let _ = writeln!(
                io::stderr(),
                "{prog}: fatal: no functional log directories."
            );
            return 111;
        }
        Ok(_) => {}
        Err(m) => {
            let _ = writeln!(io::stderr(), "{prog}: fatal: {m}");
            return 111;
        }
    }
    let cut = Cutting {
        split: 0,
        piece,
        ignore_term: false,
    };
    input::run(&mut h, cut, prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lines() {
        let c = parse_config(b"# c\n\ns2k\nn5\nN2\nt1m\n!gzip\npX \n+a*\n-b*\ne*\n", 1000).unwrap();
        assert_eq!(c.set.size_max, 2048);
        assert_eq!(c.set.keep, 5);
        assert_eq!(c.set.keep_min, 2);
        assert_eq!(c.set.age_max, Some(Duration::from_secs(60)));
        assert_eq!(c.set.processor, Some(Processor::Sh("gzip".into())));
        assert_eq!(c.prefix, b"X ");
        assert_eq!(c.pats.len(), 3);
        assert_eq!(parse_config(b"s1\nxyz\n", 10).unwrap_err().0, 2);
        assert!(parse_config(b"s12abc\n", 10).is_err());
        assert!(parse_config(b"u1.2.3.4\n", 10).unwrap().udp.is_some());
    }

    #[test]
    fn options() {
        let a = |v: &[&str]| parse_opts(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let o = a(&["-tt", "-r", "x", "d"]).unwrap();
        assert_eq!(o.stamp, Some(Kind::Utc(b'_')));
        assert_eq!(o.repl, Some(b'x'));
        assert!(a(&["-r", "xy", "d"]).is_err());
        assert!(a(&["-l", "2000", "d"]).is_err());
        assert!(a(&["-l", "2000", "-b", "4096", "d"]).is_ok());
        assert!(a(&["-t"]).is_err());
        assert!(a(&["-x", "d"]).is_err());
    }
}
