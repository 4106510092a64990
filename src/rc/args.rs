//! The `s6-rc` command line (s6-rc 0.5's options and subcommands), parsed without I/O.

use crate::getopt::{GetOpt, Opt};

/// s6-rc's getopt letters.
const OPTSPEC: &str = "v:n:t:l:uDdpaEeb";

pub const USAGE: &str = "s6-rc [ -v verbosity ] [ -n dryrunthrottle ] [ -t timeout ] [ -l live ] [ -b ] [ -E | -e ] [ -u | -d | -D ] [ -p ] [ -a ] help|list|listall|diff|start|stop|change [ servicenames... ]";

pub const HELP: &str = "s6-rc help
s6-rc [ -l scandir ] [ -a ] [ -d ] list [ servicenames... ]
s6-rc [ -l scandir ] [ -a ] [ -u | -d ] listall [ servicenames... ]
s6-rc [ -l scandir ] diff
s6-rc [ -l scandir ] [ -a ] [ -u | -d | -D ] [ -p ] [ -v verbosity ] [ -t timeout ] [ -n dryrunthrottle ] change [ servicenames... ]
";

/// The subcommand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Help,
    List,
    ListAll,
    Diff,
    Change,
}

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub what: What,
    /// `-d`/`-D` (for change and listall: down, reverse graph; for list: invert).
    pub down: bool,
    /// `-a`: add the active services to the selection.
    pub add_active: bool,
    /// `-p`: prune.
    pub prune: bool,
    pub verbosity: u32,
    /// `-t` in milliseconds; 0 = none.
    pub timeout_ms: u64,
    /// `-n`: dry run, with the simulated duration of each transition in ms.
    pub dry_run: Option<u64>,
    /// `-l`: the scan directory.
    pub live: Option<String>,
    pub names: Vec<String>,
}

/// A usage error: the message after `s6-rc: ` (None: print the usage line).
#[derive(Debug, PartialEq, Eq)]
pub struct Usage(pub Option<String>);

fn uint(v: &str) -> Option<u64> {
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().ok())
        .flatten()
}

pub fn parse(args: &[String]) -> Result<Args, Usage> {
    let mut a = Args {
        what: What::Help,
        down: false,
        add_active: false,
        prune: false,
        verbosity: 1,
        timeout_ms: 0,
        dry_run: None,
        live: None,
        names: Vec::new(),
    };
    let mut opts = GetOpt::new(args, OPTSPEC);
    for o in opts.by_ref() {
        match o {
            Opt::Arg('v', v) => {
                a.verbosity = uint(&v)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| Usage(Some("verbosity must be an unsigned integer".into())))?
            }
            Opt::Arg('n', v) => {
                a.dry_run = Some(
                    uint(&v)
                        .ok_or_else(|| Usage(Some("dry-run must be an unsigned integer".into())))?,
                )
            }
            Opt::Arg('t', v) => {
                a.timeout_ms = uint(&v)
                    .ok_or_else(|| Usage(Some("timeout must be an unsigned integer".into())))?
            }
            Opt::Arg(_, v) => a.live = Some(v),
            Opt::Flag('u') => a.down = false,
            Opt::Flag('d') | Opt::Flag('D') => a.down = true,
            Opt::Flag('p') => a.prune = true,
            Opt::Flag('a') => a.add_active = true,
            // -b (blocking lock), -e/-E (essentials): accepted; see the man page.
            Opt::Flag(_) => {}
            Opt::Unknown(_) | Opt::MissingArg(_) => return Err(Usage(None)),
        }
    }
    let rest = opts.operands();
    let Some(cmd) = rest.first() else {
        return Err(Usage(None));
    };
    a.what = match cmd.as_str() {
        "help" => What::Help,
        "list" => What::List,
        "listall" => What::ListAll,
        "diff" => What::Diff,
        "change" => What::Change,
        "start" => {
            a.down = false;
            a.prune = false;
            What::Change
        }
        "stop" => {
            a.down = true;
            a.prune = false;
            What::Change
        }
        other => return Err(Usage(Some(format!("unknown command: {other}")))),
    };
    a.names = rest[1..].to_vec();
    if a.live.as_deref() == Some("") {
        return Err(Usage(None));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn change_lines() {
        let a = parse(&v(&["-u", "change", "app", "db"])).unwrap();
        assert_eq!((a.what, a.down, a.names.len()), (What::Change, false, 2));
        let a = parse(&v(&["-da", "change"])).unwrap();
        assert!(a.down && a.add_active && a.names.is_empty());
        let a = parse(&v(&["-v2", "-t", "500", "-l", "/s", "-d", "change", "x"])).unwrap();
        assert_eq!(
            (a.verbosity, a.timeout_ms, a.live.as_deref()),
            (2, 500, Some("/s"))
        );
        let a = parse(&v(&["stop", "x"])).unwrap();
        assert!(a.down && a.what == What::Change);
        assert!(!parse(&v(&["-d", "start", "x"])).unwrap().down);
    }

    #[test]
    fn lists_and_errors() {
        let a = parse(&v(&["-da", "list"])).unwrap();
        assert_eq!((a.what, a.down, a.add_active), (What::List, true, true));
        assert_eq!(parse(&v(&[])), Err(Usage(None)));
        assert_eq!(parse(&v(&["-Z", "list"])), Err(Usage(None)));
        assert_eq!(parse(&v(&["-t"])), Err(Usage(None)));
        assert_eq!(
            parse(&v(&["frob"])),
            Err(Usage(Some("unknown command: frob".into())))
        );
        assert_eq!(
            parse(&v(&["-v", "x", "list"])),
            Err(Usage(Some("verbosity must be an unsigned integer".into())))
        );
        assert_eq!(parse(&v(&["-l", "", "list"])), Err(Usage(None)));
    }
}
