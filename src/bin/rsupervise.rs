//! rsupervise: supervises one service directory (runsv / s6-supervise compatible).

use rsv::diag;
use rsv::machine::Mode;
use rsv::supervise::{Options, run};

const USAGE: &str = "rsupervise [ --compat s6|runit ] [ --no-log ] [ --held ] servicedir";

pub(crate) fn main() {
    let invoked = diag::invoked_as("rsupervise");
    let (mut mode, mut no_log) = match invoked.as_str() {
        "runsv" => (Mode::Runit, false),
        "s6-supervise" => (Mode::S6, true),
        _ => (Mode::S6, false),
    };
    let prog = invoked.clone();
    let mut args = diag::args_utf8(&prog).into_iter();
    let mut dir = None;
    let mut held = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--compat" => match args.next().as_deref() {
                Some("s6") => mode = Mode::S6,
                Some("runit") => mode = Mode::Runit,
                _ => diag::usage(&prog, USAGE),
            },
            "--compat=s6" => mode = Mode::S6,
            "--compat=runit" => mode = Mode::Runit,
            "--no-log" => no_log = true,
            "--held" => held = true,
            "--" => {
                dir = args.next();
                break;
            }
            s if s.starts_with('-') && s.len() > 1 => diag::usage(&prog, USAGE),
            _ => {
                dir = Some(a);
                break;
            }
        }
    }
    let Some(dir) = dir.filter(|d| !d.is_empty()) else {
        diag::usage(&prog, USAGE)
    };
    if args.next().is_some() {
        diag::usage(&prog, USAGE);
    }
    std::process::exit(run(Options {
        prog,
        mode,
        no_log,
        dir,
        held,
    }));
}
