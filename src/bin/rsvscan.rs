//! rsvscan: runs one supervisor per service directory of a scan directory (s6-svscan /
//! runsvdir compatible); fit to be PID 1 of a container.

use rsv::diag;
use rsv::machine::Mode;
use rsv::scan::{Options, run};

const USAGE: &str = "rsvscan [ --compat s6|runit ] [ --supervisor path ] [ -c max ] [ -t rescan_ms ] [ -T bound_ms ] [ -d notif ] [ -P ] [ --prefix ] [ --init prog ]... [ scandir [ log ] ]";

fn num(prog: &str, v: Option<String>) -> u64 {
    v.and_then(|s| s.parse().ok())
        .unwrap_or_else(|| diag::usage(prog, USAGE))
}

/// An `--init` program named by a relative path with a slash is found from where rsvscan was
/// started (rsvscan changes to the scan directory before running it); a bare name is looked
/// up through $PATH.
fn init_path(p: &str) -> std::path::PathBuf {
    let path = std::path::Path::new(p);
    if p.contains('/') && path.is_relative() {
        if let Ok(cwd) = std::env::current_dir() {
            return cwd.join(path);
        }
    }
    path.to_path_buf()
}

fn main() {
    let prog = diag::invoked_as("rsvscan");
    let args: Vec<String> = diag::args_utf8(&prog);
    if prog == "runsvdir" {
        // runsvdir [-P] dir [log]: only argv[1] is looked at for an option.
        let mut i = 0;
        let mut o = Options::new(&prog, Mode::Runit, "");
        match args.first().map(String::as_str) {
            Some("-P") => {
                o.setsid = true;
                i = 1;
            }
            Some("--") => i = 1,
            _ => {}
        }
        let Some(dir) = args.get(i) else {
            eprint!("usage: runsvdir [-P] dir\n\n"); // runsvdir's bytes, blank line included
            std::process::exit(1);
        };
        o.dir = dir.clone();
        o.log = args.get(i + 1).cloned();
        std::process::exit(run(o));
    }
    let mut o = Options::new(&prog, Mode::S6, ".");
    let mut it = args.into_iter();
    let mut rest = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--compat" => match it.next().as_deref() {
                Some("s6") => o.mode = Mode::S6,
                Some("runit") => o.mode = Mode::Runit,
                _ => diag::usage(&prog, USAGE),
            },
            "--compat=s6" => o.mode = Mode::S6,
            "--compat=runit" => o.mode = Mode::Runit,
            "--supervisor" => match it.next() {
                Some(p) if !p.is_empty() => o.supervisor = Some(p.into()),
                _ => diag::usage(&prog, USAGE),
            },
            "-c" => o.capacity = num(&prog, it.next()).clamp(2, 90000) as usize,
            "-t" => o.rescan_ms = num(&prog, it.next()),
            "-T" => o.bound_ms = num(&prog, it.next()),
            "-d" => {
                let fd = num(&prog, it.next());
                if fd < 3 || fd > i32::MAX as u64 {
                    diag::usage(&prog, USAGE);
                }
                o.notif_fd = Some(fd as i32);
            }
            "-P" => o.setsid = true,
            "--prefix" => o.prefix = true,
            "--init" => match it.next() {
                Some(p) if !p.is_empty() => o.init.push(init_path(&p)),
                _ => diag::usage(&prog, USAGE),
            },
            "--" => {
                rest.extend(it.by_ref());
                break;
            }
            s if s.starts_with('-') && s.len() > 1 => diag::usage(&prog, USAGE),
            _ => {
                rest.push(a);
                rest.extend(it.by_ref());
                break;
            }
        }
    }
    match rest.len() {
        0 => {}
        1 => o.dir = rest[0].clone(),
        2 if o.mode == Mode::Runit => {
            o.dir = rest[0].clone();
            o.log = Some(rest[1].clone());
        }
        _ => diag::usage(&prog, USAGE),
    }
    if o.dir.is_empty() {
        diag::usage(&prog, USAGE);
    }
    std::process::exit(run(o));
}
