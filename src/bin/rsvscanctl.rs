//! rsvscanctl: sends s6-svscanctl's letters to a running rsvscan (or s6-svscan).

use rsv::diag;

const USAGE: &str = "rsvscanctl [ -zabhitqnN ] scandir";

fn main() {
    let prog = diag::invoked_as("rsvscanctl");
    let mut letters = Vec::new();
    let mut dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--" {
            dir = args.next();
            break;
        }
        if let Some(opts) = a.strip_prefix('-').filter(|o| !o.is_empty()) {
            for c in opts.bytes() {
                if !b"zabhitqnN".contains(&c) {
                    diag::usage(&prog, USAGE);
                }
                letters.push(c);
            }
        } else {
            dir = Some(a);
            break;
        }
    }
    let Some(dir) = dir.filter(|d| !d.is_empty()) else {
        diag::usage(&prog, USAGE)
    };
    if args.next().is_some() {
        diag::usage(&prog, USAGE);
    }
    std::process::exit(rsv::scan::control(&prog, &dir, &letters));
}
