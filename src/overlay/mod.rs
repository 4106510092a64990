//! s6-overlay v3 images run unchanged with rsv as `/init` (or `rsvscan --overlay -- CMD`).
//!
//! What s6-overlay's stages do, rsv does in one process that then becomes the scanner:
//!
//! 1. Settings from the `S6_*` variables ([`config`]); `S6_WAIT_FOR_CLOSING_FD` is honoured.
//! 2. The run directory: `/run` (created if missing); when it cannot be written (a non-root
//!    container with a root-owned `/run`, a read-only root without a tmpfs on `/run`), root
//!    with `S6_READ_ONLY_ROOT` mounts a tmpfs there, anyone else uses rsv's runtime directory
//!    (see [`crate::rundir`]) and exports its path as `RSV_OVERLAY_RUN` (where s6-overlay
//!    refuses to boot).
//! 3. The container environment saved to `RUN/s6/container_environment` ([`env`]); then,
//!    unless `S6_KEEP_ENV`, our environment is cleared to `PATH` (and rsv's own `RSV_*`
//!    variables): services and CMD start with it, `with-contenv` gives them the saved one.
//! 4. With `S6_LOGGING` 1 or 2, the catch-all logger ([`logging`]); then `S6_STAGE2_HOOK`
//!    run with `/bin/sh -c`.
//! 5. The scan directory `RUN/service` built from the image's definitions ([`tree`]).
//! 6. The scanner ([`crate::scan::run`]) brings up the bundle `top` (s6-overlay's: `base`,
//!    `user`, `legacy-services`, `user2`), then starts CMD (`S6_CMD_ARG0` prepended); at
//!    CMD's end, SIGTERM or `/run/s6/basedir/bin/halt`, it stops everything in reverse
//!    dependency order (`legacy-cont-init`'s `down` runs `/etc/cont-finish.d` last).
//! 7. The exit code: what was written to `RUN/s6-linux-init-container-results/exitcode` when
//!    it holds a number, else CMD's (or the scanner's).
//!
//! `RSV_OVERLAY_ROOT` (a test and debugging aid) names another directory to play the part of
//! `/`: every path above (`/etc/...`, `/run`) is taken under it, so that a whole image tree
//! can run in a temporary directory without chroot.

pub mod config;
pub mod env;
pub mod fixattrs;
pub mod layout;
pub mod logging;
pub mod steps;
pub mod tree;

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::diag::{EXIT_SYS, EXIT_USAGE};
use crate::svdir::errtext;
use config::{Config, Stage2Failure};

pub use layout::Layout;
use layout::{make_bin, place_run, prepare_run};
pub use steps::STEP;

/// The scan directory, under the run directory (s6-overlay's `/run/service`).
pub const SCAN: &str = "service";
/// The directory whose `exitcode` file decides the container's exit code.
pub const RESULTS: &str = "s6-linux-init-container-results";
/// Names another directory as the image root (tests, debugging).
pub const ROOT_VAR: &str = "RSV_OVERLAY_ROOT";

/// Started as `init` (argv[0]): `init [CMD [ARGS...]]`.
pub fn init_main(args: &[OsString]) -> i32 {
    let prog = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "init".into());
    run(&prog, args.get(1..).unwrap_or_default().to_vec())
}

fn fatal(prog: &str, code: i32, msg: &str) -> i32 {
    let _ = writeln!(io::stderr(), "{prog}: fatal: {msg}");
    code
}

/// The multi-call binary: ourselves when we are it, else `rsv` beside our executable (for
/// `rsvscan --overlay` started from a separate `rsvscan`).
fn multicall_exe() -> Option<PathBuf> {
    let me = fs::read_link("/proc/self/exe").ok()?;
    if crate::multicall::active() {
        return Some(me);
    }
    let beside = me.parent()?.join(crate::multicall::SELF);
    beside.is_file().then_some(beside)
}

/// Puts `/command`, `/usr/bin` and `/bin` in `PATH` when missing (in front, as s6-overlay).
pub fn fixed_path(path: Option<&str>) -> String {
    let mut parts: Vec<String> = match path {
        Some(p) if !p.is_empty() => p.split(':').map(str::to_string).collect(),
        _ => vec!["/bin".into()],
    };
    for d in ["/bin", "/usr/bin", "/command"] {
        if !parts.iter().any(|p| p == d) {
            parts.insert(0, d.into());
        }
    }
    parts.join(":")
}

/// Reads descriptor `fd` to its end (the container manager's start signal).
fn wait_for_closing(fd: i32) {
    // SAFETY: F_GETFD only asks whether the descriptor is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return;
    }
    // SAFETY: the descriptor is open and handed to us for this use only; the File closes it.
    let mut f = unsafe { fs::File::from_raw_fd(fd) };
    let mut buf = [0u8; 512];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// Clears our environment to what services get (unless `S6_KEEP_ENV`): `PATH`, rsv's own
/// `RSV_*` variables, and `RSV_OVERLAY_RUN` when the run directory is not `/run`.
fn service_environment(l: &Layout, cfg: &Config) {
    let keep = |k: &OsString| k == "PATH" || k.as_bytes().starts_with(b"RSV_");
    let drop: Vec<OsString> = if cfg.keep_env {
        Vec::new()
    } else {
        std::env::vars_os()
            .map(|(k, _)| k)
            .filter(|k| !keep(k))
            .collect()
    };
    // SAFETY: called before the scanner starts, while this process has a single thread.
    unsafe {
        for k in drop {
            std::env::remove_var(k);
        }
        if l.run != Path::new("/run") {
            std::env::set_var(env::RUN_VAR, &l.run);
        }
    }
}

/// `S6_STAGE2_HOOK`: Some(exit code) when the container must stop.
fn stage2_hook(prog: &str, cfg: &Config) -> Option<i32> {
    let hook = cfg.stage2_hook.as_ref()?;
    let r = match std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(hook)
        .status()
    {
        Ok(st) => st.code().unwrap_or(128),
        Err(e) => {
            crate::diag::warn(prog, &format!("unable to run /bin/sh: {}", errtext(&e)));
            127
        }
    };
    if r == 0 {
        return None;
    }
    if cfg.on_failure == Stage2Failure::Stop {
        let _ = writeln!(
            io::stderr(),
            "{prog}: fatal: S6_STAGE2_HOOK exited {r}: stopping the container"
        );
        return Some(r);
    }
    if cfg.shows(1) {
        crate::diag::warn(prog, &format!("S6_STAGE2_HOOK exited {r}"));
    }
    None
}

/// Under `root`, the path an image-absolute path names.
fn in_root(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

/// The exit code `RESULTS/exitcode` holds, if any (a number, blanks around allowed).
pub fn written_code(content: &str) -> Option<i32> {
    let n: i64 = content.trim().parse().ok()?;
    Some((n & 0xff) as i32)
}

/// The whole start: returns the container's exit code.
pub fn run(prog: &str, cmd: Vec<OsString>) -> i32 {
    let cfg = Config::from_env();
    if let Some(fd) = cfg.wait_for_closing_fd {
        wait_for_closing(fd);
    }
    let root = match std::env::var_os(ROOT_VAR) {
        Some(r) if Path::new(&r).is_absolute() && Path::new(&r).is_dir() => PathBuf::from(r),
        Some(r) => {
            return fatal(
                prog,
                EXIT_USAGE,
                &format!(
                    "{ROOT_VAR}={} is not an absolute path to a directory",
                    r.to_string_lossy()
                ),
            );
        }
        None => PathBuf::from("/"),
    };
    let path = fixed_path(std::env::var("PATH").ok().as_deref());
    // SAFETY: single-threaded at this point (nothing else reads the environment).
    unsafe { std::env::set_var("PATH", &path) };
    let l = match place_run(prog, &root, &cfg) {
        Ok(l) => l,
        Err(e) => return fatal(prog, EXIT_SYS, &e),
    };
    if let Err(e) = prepare_run(&l) {
        return fatal(
            prog,
            EXIT_SYS,
            &format!("unable to prepare {}: {}", l.run.display(), errtext(&e)),
        );
    }
    // The helpers by name (RUN/s6/rsv-bin), after everything the image has: in the saved
    // PATH too, as s6-overlay's holds /command.
    // SAFETY: single-threaded at this point (nothing else reads the environment).
    unsafe { std::env::set_var("PATH", format!("{path}:{}", l.bin().display())) };
    let contenv = l.run.join(env::CONTENV);
    let vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    if let Err(e) = env::save(&contenv, &vars) {
        return fatal(
            prog,
            EXIT_SYS,
            &format!("unable to save {}: {}", contenv.display(), errtext(&e)),
        );
    }
    let Some(exe) = multicall_exe() else {
        return fatal(
            prog,
            EXIT_SYS,
            "the overlay needs the multi-call binary rsv (beside rsvscan, or started as init)",
        );
    };
    if let Err(e) = make_bin(&l, &exe) {
        return fatal(
            prog,
            EXIT_SYS,
            &format!("unable to create {}: {}", l.bin().display(), errtext(&e)),
        );
    }
    for p in [&l.run, &l.root, &l.bin()] {
        if p.as_os_str().as_bytes().iter().any(u8::is_ascii_whitespace) {
            return fatal(
                prog,
                EXIT_USAGE,
                &format!("{} contains white space: not supported", p.display()),
            );
        }
    }
    let script = std::env::var("S6_LOGGING_SCRIPT").ok();
    service_environment(&l, &cfg);
    let saved = if cfg.logging > 0 {
        match logging::start(&l, &exe, script.as_deref()) {
            Ok(s) => Some(s),
            Err(e) => return fatal(prog, EXIT_SYS, &e),
        }
    } else {
        None
    };
    if let Some(code) = stage2_hook(prog, &cfg) {
        return code;
    }

    let etc = steps::etc_dir(&root, &cfg);
    let profile = match &cfg.runtime_profile {
        Some(_) => etc.join("s6-overlay"),
        None => root.join("etc/s6-overlay"),
    };
    let bundledir = match &cfg.runtime_bundledir {
        Some(b) => in_root(&root, b),
        None => profile.join("user-bundles.d"),
    };
    let src = match tree::read_sources(&profile, &bundledir, &etc) {
        Ok(s) => s,
        Err(e) => return fatal(prog, EXIT_SYS, &e),
    };
    let step = |what: &str| {
        format!(
            "{} {what} {} {}",
            l.bin().join(STEP).display(),
            l.run.display(),
            root.display()
        )
    };
    let lines = tree::Lines {
        fix_attrs: step("fix-attrs"),
        cont_init: step("cont-init"),
        cont_finish: step("cont-finish"),
        legacy_up: step("legacy-services"),
    };
    let entries = match tree::plan(&src, &lines) {
        Ok(e) => e,
        Err(errs) => {
            for e in &errs {
                let _ = writeln!(io::stderr(), "{prog}: fatal: {e}");
            }
            return EXIT_USAGE;
        }
    };
    if let Err(e) = tree::build(&l.scan(), &entries) {
        return fatal(prog, EXIT_SYS, &e);
    }

    let mut argv: Vec<OsString> = cfg.cmd_arg0.iter().map(OsString::from).collect();
    argv.extend(cmd);
    if let (Some(s), 1, false) = (&saved, cfg.logging, argv.is_empty()) {
        argv = logging::cmd_argv(&l.bin().join(STEP), s, argv);
    }
    let finish = steps::scripts(&etc.join("cont-finish.d")).len();
    let opts = scan_options(prog, &l, &cfg, (!argv.is_empty()).then_some(argv), finish);
    let code = crate::scan::run(opts);
    if let Some(s) = saved {
        // Our own last words go where the container's output goes.
        // SAFETY: dup2 onto our standard descriptors from descriptors we own.
        unsafe {
            libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&s.out), 1);
            libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&s.err), 2);
        }
    }
    let code = fs::read_to_string(l.exitcode())
        .ok()
        .and_then(|s| written_code(&s))
        .unwrap_or(code);
    if cfg.sync_disks {
        nix::unistd::sync();
    }
    code
}

/// The scanner's options for the overlay.
fn scan_options(
    prog: &str,
    l: &Layout,
    cfg: &Config,
    main_cmd: Option<Vec<OsString>>,
    finish_scripts: usize,
) -> crate::scan::Options {
    let mut o =
        crate::scan::Options::new(prog, crate::machine::Mode::S6, &l.scan().to_string_lossy());
    o.main_cmd = main_cmd;
    o.bound_ms = cfg.stop_bound_ms(finish_scripts);
    o.up = vec![tree::TOP.to_string()];
    o.up_timeout_ms = (cfg.wait_maxtime_ms > 0).then_some(cfg.wait_maxtime_ms);
    o.on_up_failure = match cfg.on_failure {
        Stage2Failure::Continue => crate::scan::UpFailure::Continue,
        Stage2Failure::Warn => crate::scan::UpFailure::Warn,
        Stage2Failure::Stop => crate::scan::UpFailure::Stop(1),
    };
    o.cmd_signals = cfg.cmd_receive_signals;
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_gets_the_overlay_directories() {
        assert_eq!(fixed_path(None), "/command:/usr/bin:/bin");
        assert_eq!(
            fixed_path(Some("/usr/local/bin:/bin")),
            "/command:/usr/bin:/usr/local/bin:/bin"
        );
        assert_eq!(
            fixed_path(Some("/command:/usr/bin:/bin")),
            "/command:/usr/bin:/bin"
        );
    }

    #[test]
    fn exit_code_file() {
        assert_eq!(written_code("3\n"), Some(3));
        assert_eq!(written_code(" 0 "), Some(0));
        assert_eq!(written_code("256"), Some(0));
        assert_eq!(written_code(""), None);
        assert_eq!(written_code("x"), None);
    }
}
