//! The `rsv-graph` file: the dependency engine's state as rsvscan publishes it, in the
//! scanner's control directory, for clients (`rsvstat`, `s6-rc`, `rsvc`). Rewritten atomically
//! on every change; absent when the scan directory has no dependency graph.
//!
//! Text, one record a line, fields separated by a TAB (shown as `|` here), lists
//! comma-separated, `-` for none:
//!
//! ```text
//! rsv-graph|1
//! svc|NAME|TYPE|STATE|WANT|SINCE_MS|LAST|DEPS|WAITING
//! bundle|NAME|CONTENTS
//! req|NONCE|CODE|FAILED
//! ```
//!
//! The last line is `end`: the file is rewritten in place of a spare copy (no inode created
//! per change, which costs milliseconds on a busy ext4), so a reader that overlaps a rewrite
//! can see a cut file; [`read`] then reads again.
//!
//! `LAST` is the last result of a oneshot's `up`/`down` (or a longrun's start): `exit:N`,
//! `signal:N`, `timeout`, `-`. `WAITING` lists the dependencies not up yet, a failed (or
//! blocked) one with a trailing `!`. `req` lines give the outcome of the last requests.

use std::io;
use std::path::Path;

use super::graph::Kind;
use super::plan::St;

/// File name in the scanner's control directory.
pub const FILE: &str = "rsv-graph";
/// How many request outcomes are kept.
pub const MAX_REQS: usize = 32;

/// The last result of a oneshot script or a longrun start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Last {
    #[default]
    None,
    Exit(i32),
    Signal(i32),
    Timeout,
}

impl Last {
    pub fn encode(self) -> String {
        match self {
            Last::None => "-".into(),
            Last::Exit(n) => format!("exit:{n}"),
            Last::Signal(n) => format!("signal:{n}"),
            Last::Timeout => "timeout".into(),
        }
    }

    pub fn parse(s: &str) -> Option<Last> {
        if s == "-" {
            return Some(Last::None);
        }
        if s == "timeout" {
            return Some(Last::Timeout);
        }
        let (k, v) = s.split_once(':')?;
        let n = v.parse().ok()?;
        match k {
            "exit" => Some(Last::Exit(n)),
            "signal" => Some(Last::Signal(n)),
            _ => None,
        }
    }

    /// The code a failure stands for (s6-rc reports a timeout as 111; a signal as 128+N).
    pub fn code(self) -> i32 {
        match self {
            Last::None => 0,
            Last::Exit(n) => n,
            Last::Signal(n) => 128 + n,
            Last::Timeout => 111,
        }
    }
}

/// One atom as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SvcRec {
    pub name: String,
    pub kind: Kind,
    pub st: St,
    pub want_up: bool,
    pub since_ms: u64,
    pub last: Last,
    pub deps: Vec<String>,
    /// Dependencies not up yet, with whether each failed (or is blocked by a failure).
    pub waiting: Vec<(String, bool)>,
}

/// A request's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReqRec {
    pub nonce: u64,
    pub code: i32,
    pub failed: Vec<String>,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GraphState {
    pub svcs: Vec<SvcRec>,
    /// Bundle name -> atom names.
    pub bundles: Vec<(String, Vec<String>)>,
    pub reqs: Vec<ReqRec>,
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

fn unlist(s: &str) -> Vec<String> {
    if s == "-" || s.is_empty() {
        Vec::new()
    } else {
        s.split(',').map(str::to_string).collect()
    }
}

impl GraphState {
    pub fn encode(&self) -> String {
        let mut out = String::from("rsv-graph\t1\n");
        for s in &self.svcs {
            let waiting: Vec<String> = s
                .waiting
                .iter()
                .map(|(n, f)| if *f { format!("{n}!") } else { n.clone() })
                .collect();
            out.push_str(&format!(
                "svc\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                s.name,
                s.kind.as_str(),
                s.st.as_str(),
                if s.want_up { "up" } else { "down" },
                s.since_ms,
                s.last.encode(),
                list(&s.deps),
                list(&waiting)
            ));
        }
        for (b, c) in &self.bundles {
            out.push_str(&format!("bundle\t{b}\t{}\n", list(c)));
        }
        for r in &self.reqs {
            out.push_str(&format!(
                "req\t{}\t{}\t{}\n",
                r.nonce,
                r.code,
                list(&r.failed)
            ));
        }
        out.push_str("end\n");
        out
    }

    /// Parses the file; lines of unknown kinds are skipped (the format may grow).
    pub fn parse(text: &str) -> Result<GraphState, String> {
        let mut lines = text.lines();
        match lines.next() {
            Some(l) if l.starts_with("rsv-graph\t") => {}
            _ => return Err("not an rsv-graph file".into()),
        }
        let mut st = GraphState::default();
        for (n, l) in lines.enumerate() {
            let f: Vec<&str> = l.split('\t').collect();
            let bad = || format!("line {}: malformed: {l}", n + 2);
            match f[0] {
                "svc" if f.len() >= 9 => st.svcs.push(SvcRec {
                    name: f[1].to_string(),
                    kind: Kind::parse(f[2]).ok_or_else(bad)?,
                    st: St::parse(f[3]).ok_or_else(bad)?,
                    want_up: f[4] == "up",
                    since_ms: f[5].parse().map_err(|_| bad())?,
                    last: Last::parse(f[6]).ok_or_else(bad)?,
                    deps: unlist(f[7]),
                    waiting: unlist(f[8])
                        .into_iter()
                        .map(|w| match w.strip_suffix('!') {
                            Some(n) => (n.to_string(), true),
                            None => (w, false),
                        })
                        .collect(),
                }),
                "bundle" if f.len() >= 3 => st.bundles.push((f[1].to_string(), unlist(f[2]))),
                "req" if f.len() >= 4 => st.reqs.push(ReqRec {
                    nonce: f[1].parse().map_err(|_| bad())?,
                    code: f[2].parse().map_err(|_| bad())?,
                    failed: unlist(f[3]),
                }),
                "svc" | "bundle" | "req" => return Err(bad()),
                _ => {}
            }
        }
        Ok(st)
    }

    pub fn svc(&self, name: &str) -> Option<&SvcRec> {
        self.svcs.iter().find(|s| s.name == name)
    }

    pub fn req(&self, nonce: u64) -> Option<&ReqRec> {
        self.reqs.iter().find(|r| r.nonce == nonce)
    }
}

/// Reads `ctl_dir/rsv-graph`. `Ok(None)` when there is none (no graph in that scan dir).
/// A copy cut by a concurrent rewrite (no `end` line) is read again.
pub fn read(ctl_dir: &Path) -> io::Result<Option<GraphState>> {
    let path = ctl_dir.join(FILE);
    let mut tries = 0;
    loop {
        match std::fs::read_to_string(&path) {
            Ok(t) if !t.ends_with("\nend\n") && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(t) => {
                return GraphState::parse(&t)
                    .map(Some)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
    }
}

/// A request line for the scanner's control FIFO (`+` up, `-` down; `*` = every service).
pub fn request_line(up: bool, nonce: u64, names: &[String]) -> String {
    format!(
        "{}{nonce} {}\n",
        if up { '+' } else { '-' },
        names.join(" ")
    )
}

/// Parses a request line (without its newline): (up, nonce, names).
pub fn parse_request(line: &str) -> Option<(bool, u64, Vec<String>)> {
    let up = match line.as_bytes().first()? {
        b'+' => true,
        b'-' => false,
        _ => return None,
    };
    let mut words = line[1..].split_ascii_whitespace();
    let nonce = words.next()?.parse().ok()?;
    Some((up, nonce, words.map(str::to_string).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let g = GraphState {
            svcs: vec![
                SvcRec {
                    name: "mig".into(),
                    kind: Kind::Oneshot,
                    st: St::Failed,
                    want_up: true,
                    since_ms: 1_795_000_000_123,
                    last: Last::Exit(3),
                    deps: vec!["db".into()],
                    waiting: vec![],
                },
                SvcRec {
                    name: "app".into(),
                    kind: Kind::Longrun,
                    st: St::Down,
                    want_up: true,
                    since_ms: 5,
                    last: Last::None,
                    deps: vec!["db".into(), "mig".into()],
                    waiting: vec![("mig".into(), true)],
                },
            ],
            bundles: vec![("user".into(), vec!["app".into(), "mig".into()])],
            reqs: vec![ReqRec {
                nonce: 42,
                code: 1,
                failed: vec!["app".into()],
            }],
        };
        let text = g.encode();
        assert!(text.ends_with("\nend\n"));
        assert!(text.contains("svc\tapp\tlongrun\tdown\tup\t5\t-\tdb,mig\tmig!\n"));
        assert_eq!(GraphState::parse(&text).unwrap(), g);
        assert_eq!(g.req(42).unwrap().code, 1);
        assert_eq!(g.svc("mig").unwrap().last.code(), 3);
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        assert!(GraphState::parse("").is_err());
        assert!(GraphState::parse("rsv-graph\t1\nsvc\tx\n").is_err());
        assert!(GraphState::parse("rsv-graph\t1\nsvc\tx\tdaemon\tup\tup\t0\t-\t-\t-\n").is_err());
        assert!(GraphState::parse("rsv-graph\t1\nfuture\tthing\n").is_ok());
    }

    #[test]
    fn last_and_requests() {
        for l in [Last::None, Last::Exit(0), Last::Signal(9), Last::Timeout] {
            assert_eq!(Last::parse(&l.encode()), Some(l));
        }
        assert_eq!(Last::Timeout.code(), 111);
        let line = request_line(false, 99, &["a".into(), "b".into()]);
        assert_eq!(line, "-99 a b\n");
        assert_eq!(
            parse_request(line.trim_end()),
            Some((false, 99, vec!["a".into(), "b".into()]))
        );
        assert_eq!(parse_request("+x a"), None);
        assert_eq!(parse_request("a"), None);
    }
}
