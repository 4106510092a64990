//! rsvscan: runs one supervisor per service directory of a scan directory (s6-svscan /
//! runsvdir compatible); fit to be PID 1 of a container, optionally with a main command
//! (`rsvscan DIR -- CMD`) or as a plain init (`rsvscan -- CMD`).

use std::ffi::OsString;

use rsv::diag;
use rsv::machine::Mode;
use rsv::scan::{Options, run};

const USAGE: &str = "rsvscan --overlay [ -- prog [ args... ] ] | rsvscan [ --systemd ] [ --compat s6|runit ] [ --supervisor path ] [ -c max ] [ -t rescan_ms ] [ -T bound_ms ] [ -d notif ] [ -P ] [ --prefix ] [ --init prog ]... [ --up name ]... [ --wait-ready ms ] [ scandir [ log ] ] [ -- prog [ args... ] ]";

fn num(prog: &str, v: Option<String>) -> u64 {
    v.and_then(|s| s.parse().ok())
        .unwrap_or_else(|| diag::usage(prog, USAGE))
}

/// An argument that rsvscan itself interprets must be UTF-8 (CMD's arguments need not be).
fn utf8(prog: &str, a: OsString) -> String {
    a.into_string().unwrap_or_else(|a| {
        diag::fatal(
            prog,
            diag::EXIT_USAGE,
            &format!("argument is not valid UTF-8: {}", a.to_string_lossy()),
        )
    })
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

pub(crate) fn main() {
    let prog = diag::invoked_as("rsvscan");
    if prog == "runsvdir" {
        let args: Vec<String> = diag::args_utf8(&prog);
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
    // `rsvscan --overlay [-- CMD...]`: s6-overlay's /init (rsv::overlay).
    if std::env::args_os().nth(1).is_some_and(|a| a == "--overlay") {
        let mut cmd: Vec<OsString> = std::env::args_os().skip(2).collect();
        if cmd.first().is_some_and(|a| a == "--") {
            cmd.remove(0);
        } else if !cmd.is_empty() {
            diag::usage(&prog, USAGE);
        }
        std::process::exit(rsv::overlay::run(&prog, cmd));
    }
    let mut o = Options::new(&prog, Mode::S6, ".");
    // Started as systemd (or as /sbin/init): the systemd personality.
    let arg0 = std::env::args_os().next().unwrap_or_default();
    let mut systemd = prog == "systemd" || arg0 == "/sbin/init" || arg0 == "/usr/sbin/init";
    let mut it = std::env::args_os().skip(1);
    let mut rest: Vec<String> = Vec::new();
    let mut cmd: Option<Vec<OsString>> = None;
    let next = |it: &mut std::iter::Skip<std::env::ArgsOs>| it.next().map(|a| utf8(&prog, a));
    while let Some(a) = it.next() {
        if a == "--" {
            cmd = Some(it.by_ref().collect());
            break;
        }
        let a = utf8(&prog, a);
        match a.as_str() {
            "--compat" => match next(&mut it).as_deref() {
                Some("s6") => o.mode = Mode::S6,
                Some("runit") => o.mode = Mode::Runit,
                _ => diag::usage(&prog, USAGE),
            },
            "--compat=s6" => o.mode = Mode::S6,
            "--compat=runit" => o.mode = Mode::Runit,
            "--supervisor" => match next(&mut it) {
                Some(p) if !p.is_empty() => o.supervisor = Some(p.into()),
                _ => diag::usage(&prog, USAGE),
            },
            "--wait-ready" => o.wait_ready_ms = Some(num(&prog, next(&mut it))),
            s if s.starts_with("--wait-ready=") => {
                o.wait_ready_ms = Some(num(&prog, Some(s["--wait-ready=".len()..].into())))
            }
            "-c" => o.capacity = num(&prog, next(&mut it)).clamp(2, 90000) as usize,
            "-t" => o.rescan_ms = num(&prog, next(&mut it)),
            "-T" => o.bound_ms = num(&prog, next(&mut it)),
            "-d" => {
                let fd = num(&prog, next(&mut it));
                if fd < 3 || fd > i32::MAX as u64 {
                    diag::usage(&prog, USAGE);
                }
                o.notif_fd = Some(fd as i32);
            }
            "-P" => o.setsid = true,
            "--systemd" => systemd = true,
            "--prefix" => o.prefix = true,
            "--up" => match next(&mut it) {
                Some(n) if !n.is_empty() && !n.contains('/') => o.up.push(n),
                _ => diag::usage(&prog, USAGE),
            },
            "--init" => match next(&mut it) {
                Some(p) if !p.is_empty() => o.init.push(init_path(&p)),
                _ => diag::usage(&prog, USAGE),
            },
            s if s.starts_with('-') && s.len() > 1 => diag::usage(&prog, USAGE),
            _ => {
                // Operands: scandir [log], then optionally `-- CMD [ARGS...]`.
                rest.push(a);
                while let Some(b) = it.next() {
                    if b == "--" {
                        cmd = Some(it.by_ref().collect());
                        break;
                    }
                    rest.push(utf8(&prog, b));
                }
                break;
            }
        }
    }
    // `scandir --` with nothing after it is the scanner alone (so an image's ENTRYPOINT can
    // end with `--` and leave CMD empty); a bare `--` needs a command.
    if cmd.as_ref().is_some_and(Vec::is_empty) {
        if rest.is_empty() {
            diag::usage(&prog, USAGE);
        }
        cmd = None;
    }
    match rest.len() {
        0 if cmd.is_some() => o.dir = String::new(), // plain init
        0 => {}
        1 => o.dir = rest[0].clone(),
        2 if o.mode == Mode::Runit => {
            o.dir = rest[0].clone();
            o.log = Some(rest[1].clone());
        }
        _ => diag::usage(&prog, USAGE),
    }
    if rest.first().is_some_and(String::is_empty) {
        diag::usage(&prog, USAGE);
    }
    // --wait-ready gates CMD on the services of scandir: it needs both.
    if o.wait_ready_ms.is_some() && (cmd.is_none() || o.dir.is_empty()) {
        diag::usage(&prog, USAGE);
    }
    o.main_cmd = cmd;
    if systemd {
        systemd_boot(&prog, &mut o, rest.is_empty());
    }
    std::process::exit(run(o));
}

/// `--systemd`: the scan dir defaults to systemctl's; the units enabled for boot are imported
/// into it (and their oneshots run) before the scanner starts.
fn systemd_boot(prog: &str, o: &mut Options, no_dir: bool) {
    use rsv::systemctl::{boot, units};
    let env = units::Env::new(None);
    if no_dir {
        o.dir = env.scandir.display().to_string();
    }
    let env = units::Env {
        scandir: std::path::absolute(&o.dir).unwrap_or_else(|_| o.dir.clone().into()),
        ..env
    };
    if let Err(e) = std::fs::create_dir_all(&env.scandir) {
        diag::fatal(
            prog,
            diag::EXIT_SYS,
            &format!("unable to create {}: {e}", env.scandir.display()),
        );
    }
    // SAFETY: still single-threaded (no thread has been started), so nothing reads the
    // environment concurrently; services and systemctl run from them find the scan dir.
    unsafe { std::env::set_var(units::SCANDIR_VAR, &env.scandir) };
    for w in boot::prepare(&env) {
        eprintln!("{prog}: warning: {w}");
    }
}
