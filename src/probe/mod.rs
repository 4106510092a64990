//! Built-in probes: declarative health checks that need no shell or client program in the
//! image. They take the place of (or run before) runit's `check` script, on the same schedule
//! and with the same meaning ([`crate::health`]): files of the service directory, read at each
//! start of `run`.
//!
//! - `check-tcp`: `HOST:PORT` (an IP address or `localhost`: no name is looked up); passes
//!   when a TCP connection succeeds.
//! - `check-http`: line 1 a URL `http://HOST[:PORT][/PATH]`, line 2 (optional) the accepted
//!   status (`200` or `200-399`, the default), line 3 (optional) a substring the first 64 KiB
//!   of the body must contain. HTTP/1.1 over plain TCP (no TLS).
//! - `check-unix`: the path of a unix stream socket; passes when a connection succeeds.
//! - `check-file`: line 1 a path, line 2 (optional, default 60) seconds: passes when the
//!   file was modified less than that long ago (a heartbeat file).
//!
//! Every probe present must pass; a `check` script, if there is one too, runs after them.
//! The probes run in a child of the supervisor forked for the check (as a script would be),
//! so a slow server never blocks the supervisor's loop and the supervisor keeps nothing but
//! the parsed files; the child writes its result in words (`http 503 after 12 ms`,
//! `tcp 127.0.0.1:5432: connection refused`) where a script's output would go.

pub mod http;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::svdir::{SvDir, errtext};

/// The probe files, in the order they run.
pub const FILES: [&str; 4] = ["check-tcp", "check-http", "check-unix", "check-file"];
/// `check-file`'s age limit when its second line is missing.
pub const DEFAULT_FILE_AGE_S: u64 = 60;
/// Connect/read bound when `check-timeout` is 0 (none).
pub const FALLBACK_TIMEOUT_MS: u64 = 30_000;

/// One probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Tcp(String),
    Http(http::Spec),
    Unix(PathBuf),
    File {
        path: PathBuf,
        max_age_s: u64,
    },
    /// A probe file that could not be read or parsed: fails with this text.
    Invalid(String),
}

/// The probes of one start of `run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    pub probes: Vec<Probe>,
    /// There is a `check` script too: exec it once the probes passed.
    pub then_check: bool,
    /// Bound on each connection and read (ms).
    pub timeout_ms: u64,
}

/// Does the service dir have any probe file?
pub fn any(dir: &SvDir) -> bool {
    FILES.iter().any(|f| dir.exists(f))
}

/// Parses the text of probe file `name`.
pub fn parse(name: &str, text: &str) -> Result<Probe, String> {
    let first = text.lines().next().unwrap_or("").trim();
    let second = text.lines().nth(1).map(str::trim).filter(|l| !l.is_empty());
    match name {
        "check-tcp" => {
            addrs(first)?;
            Ok(Probe::Tcp(first.to_string()))
        }
        "check-http" => {
            let spec = http::parse(text)?;
            addrs(&spec.addr())?;
            Ok(Probe::Http(spec))
        }
        "check-unix" if !first.is_empty() => Ok(Probe::Unix(PathBuf::from(first))),
        "check-file" if !first.is_empty() => {
            let max_age_s = match second {
                None => DEFAULT_FILE_AGE_S,
                Some(s) => s
                    .parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(|| format!("bad age {s:?} (seconds)"))?,
            };
            Ok(Probe::File {
                path: PathBuf::from(first),
                max_age_s,
            })
        }
        _ => Err("empty file".to_string()),
    }
}

/// Reads the probe files of `dir`; `None` when there are none. A file that cannot be parsed
/// gives one warning and becomes a probe that always fails with that text.
pub fn read(dir: &SvDir, then_check: bool, timeout_ms: u64) -> Option<Set> {
    let mut probes = Vec::new();
    for name in FILES {
        let text = match std::fs::read(dir.path(name)) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                let msg = format!("unable to read {}: {}", dir.show(name), errtext(&e));
                dir.warn(&msg);
                probes.push(Probe::Invalid(msg));
                continue;
            }
        };
        match parse(name, &text) {
            Ok(p) => probes.push(p),
            Err(e) => {
                let msg = format!("invalid {}: {e}", dir.show(name));
                dir.warn(&msg);
                probes.push(Probe::Invalid(format!("invalid {name}: {e}")));
            }
        }
    }
    (!probes.is_empty()).then_some(Set {
        probes,
        then_check,
        timeout_ms: if timeout_ms == 0 {
            FALLBACK_TIMEOUT_MS
        } else {
            timeout_ms
        },
    })
}

/// An error in words: lower-case, without Rust's "(os error N)".
fn words(e: &std::io::Error) -> String {
    let t = match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "timed out".to_string(),
        _ => errtext(e),
    };
    let mut c = t.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => t,
    }
}

fn ms_since(t: Instant) -> u128 {
    t.elapsed().as_millis()
}

/// The addresses of `HOST:PORT` where HOST is an IP address (`[...]` for IPv6) or
/// `localhost` (127.0.0.1, then ::1). No name is looked up: the supervisor reads no
/// resolver configuration and links no resolver.
pub fn addrs(hostport: &str) -> Result<Vec<SocketAddr>, String> {
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| format!("want HOST:PORT, got {hostport:?}"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| format!("bad port in {hostport:?}"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]);
    }
    let ip: IpAddr = host.parse().map_err(|_| {
        format!("{host:?} is not an IP address or localhost (names are not looked up)")
    })?;
    Ok(vec![SocketAddr::new(ip, port)])
}

fn connect_tcp(addr: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    let mut last = None;
    let list = addrs(addr).map_err(std::io::Error::other)?;
    for a in list {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no address")))
}

/// Runs one probe; `Ok` or `Err` with the result in words.
pub fn run_one(p: &Probe, timeout: Duration) -> Result<String, String> {
    let start = Instant::now();
    match p {
        Probe::Tcp(addr) => match connect_tcp(addr, timeout) {
            Ok(_) => Ok(format!("tcp {addr} connected after {} ms", ms_since(start))),
            Err(e) => Err(format!("tcp {addr}: {}", words(&e))),
        },
        Probe::Http(spec) => {
            let mut s = connect_tcp(&spec.addr(), timeout)
                .map_err(|e| format!("http {}: {}", spec.addr(), words(&e)))?;
            let _ = s.set_read_timeout(Some(timeout));
            let _ = s.set_write_timeout(Some(timeout));
            let r = http::get(&mut s, spec)
                .map_err(|e| format!("http {}: {}", spec.addr(), words(&e)))?;
            let ms = ms_since(start);
            let (lo, hi) = spec.status;
            if r.status < lo || r.status > hi {
                let want = if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                };
                return Err(format!("http {} after {ms} ms (expected {want})", r.status));
            }
            match &spec.body {
                Some(b) if !http::body_has(&r.body, b) => {
                    Err(format!("http {} after {ms} ms, body lacks {b:?}", r.status))
                }
                _ => Ok(format!("http {} after {ms} ms", r.status)),
            }
        }
        Probe::Unix(path) => match UnixStream::connect(path) {
            Ok(_) => Ok(format!(
                "unix {} connected after {} ms",
                path.display(),
                ms_since(start)
            )),
            Err(e) => Err(format!("unix {}: {}", path.display(), words(&e))),
        },
        Probe::File { path, max_age_s } => {
            let m = std::fs::metadata(path)
                .map_err(|e| format!("file {}: {}", path.display(), words(&e)))?;
            let age = m
                .modified()
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .map_or(0, |d| d.as_secs());
            if age < *max_age_s {
                Ok(format!("file {} {age} s old", path.display()))
            } else {
                Err(format!(
                    "file {} {age} s old (limit {max_age_s} s)",
                    path.display()
                ))
            }
        }
        Probe::Invalid(text) => Err(text.clone()),
    }
}

/// Runs every probe of `set` (stops at the first failure) and writes the result in words on
/// `out`. Returns true when all passed.
pub fn run_all(set: &Set, out: &mut impl Write) -> bool {
    let timeout = Duration::from_millis(set.timeout_ms.max(1));
    let mut passed = Vec::new();
    for p in &set.probes {
        match run_one(p, timeout) {
            Ok(t) => passed.push(t),
            Err(t) => {
                let _ = writeln!(out, "{t}");
                return false;
            }
        }
    }
    if !set.then_check {
        let _ = writeln!(out, "{}", passed.join("; "));
    }
    true
}

/// In the forked check child (single-threaded, standard descriptors in place): runs the
/// probes, writing the result on stdout. Returns only when they passed and a `check` script
/// is to be exec'd next; otherwise exits (0 passed, 1 failed).
pub fn child(set: &Set) {
    let mut out = std::io::stdout().lock();
    let ok = run_all(set, &mut out);
    let _ = out.flush();
    if !ok {
        std::process::exit(1);
    }
    if !set.then_check {
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files() {
        assert_eq!(
            parse("check-tcp", "127.0.0.1:80\n"),
            Ok(Probe::Tcp("127.0.0.1:80".into()))
        );
        assert!(parse("check-tcp", "127.0.0.1").is_err());
        assert!(parse("check-tcp", ":80").is_err());
        assert!(parse("check-tcp", "127.0.0.1:0").is_err());
        assert!(parse("check-tcp", "db.example:5432").is_err(), "no DNS");
        assert_eq!(addrs("localhost:80").unwrap().len(), 2);
        assert_eq!(addrs("[::1]:80").unwrap()[0].to_string(), "[::1]:80");
        assert!(parse("check-http", "http://example.org/").is_err());
        assert!(parse("check-http", "http://localhost:8080/h").is_ok());
        assert_eq!(
            parse("check-file", "beat\n30\n"),
            Ok(Probe::File {
                path: "beat".into(),
                max_age_s: 30
            })
        );
        assert_eq!(
            parse("check-file", "beat"),
            Ok(Probe::File {
                path: "beat".into(),
                max_age_s: DEFAULT_FILE_AGE_S
            })
        );
        assert!(parse("check-file", "beat\nsoon").is_err());
        assert!(parse("check-unix", "\n").is_err());
        assert_eq!(
            parse("check-unix", "s.sock"),
            Ok(Probe::Unix("s.sock".into()))
        );
    }

    #[test]
    fn results_in_words() {
        let t = Duration::from_millis(500);
        let e = run_one(&Probe::Unix("/nonexistent/sock".into()), t).unwrap_err();
        assert_eq!(e, "unix /nonexistent/sock: no such file or directory");
        let e = run_one(
            &Probe::File {
                path: "/nonexistent".into(),
                max_age_s: 5,
            },
            t,
        )
        .unwrap_err();
        assert_eq!(e, "file /nonexistent: no such file or directory");
        // A listener that is closed at once: nothing listens on its port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = run_one(&Probe::Tcp(format!("127.0.0.1:{port}")), t).unwrap_err();
        assert_eq!(e, format!("tcp 127.0.0.1:{port}: connection refused"));
        let set = Set {
            probes: vec![Probe::Invalid("invalid check-tcp: x".into())],
            then_check: false,
            timeout_ms: 100,
        };
        let mut out = Vec::new();
        assert!(!run_all(&set, &mut out));
        assert_eq!(out, b"invalid check-tcp: x\n");
    }
}
