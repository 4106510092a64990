//! rsvscanctl: sends s6-svscanctl's letters to a running rsvscan (or s6-svscan).

use rsv::diag;
use rsv::getopt::{GetOpt, Opt};

const USAGE: &str = "rsvscanctl [ -zabhitqnN ] scandir";

pub(crate) fn main() {
    let prog = diag::invoked_as("rsvscanctl");
    let args: Vec<String> = diag::args_utf8(&prog);
    let mut letters = Vec::new();
    let mut opts = GetOpt::new(&args, "zabhitqnN");
    for o in opts.by_ref() {
        match o {
            Opt::Flag(c) => letters.push(c as u8),
            _ => diag::usage(&prog, USAGE),
        }
    }
    let [dir] = opts.operands() else {
        diag::usage(&prog, USAGE)
    };
    if dir.is_empty() {
        diag::usage(&prog, USAGE);
    }
    std::process::exit(rsv::scan::control(&prog, dir, &letters));
}
