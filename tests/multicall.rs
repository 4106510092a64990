//! The multi-call binary `rsv`: names chosen by argv[0], `rsv install`, and a run in a
//! chroot that holds nothing but the binary, a static service program and the scan dir.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);

#[test]
fn install_creates_every_name_and_is_idempotent() {
    let t = TempDir::new("mc-install");
    let rsv = t.path().join("bin/rsv");
    copy_exe(&bin("rsv"), &rsv);
    let (code, out, err) = run(Command::new(&rsv).arg("--list"), T);
    assert_eq!(code, 0, "{err}");
    let names: Vec<&str> = out.lines().collect();
    for n in [
        "rsvscan",
        "rsupervise",
        "rsvc",
        "runsvdir",
        "runsv",
        "sv",
        "svlogd",
        "s6-svc",
        "s6-log",
    ] {
        assert!(names.contains(&n), "{n} not listed: {out}");
    }

    // Default set: rsv's own names only.
    let (code, _, err) = run(
        Command::new(&rsv).args(["install", t.path().join("bin").to_str().unwrap()]),
        T,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        fs::read_link(t.path().join("bin/rsvscan")).unwrap(),
        Path::new("rsv")
    );
    assert!(!t.path().join("bin/sv").exists());
    assert!(!t.path().join("bin/systemctl").exists());

    // With the drop-in names, twice (the second run changes nothing).
    for _ in 0..2 {
        let (code, _, err) = run(
            Command::new(&rsv).args([
                "install",
                "--runit",
                "--s6",
                "--s6-overlay",
                "--systemd",
                t.path().join("bin").to_str().unwrap(),
            ]),
            T,
        );
        assert_eq!(code, 0, "{err}");
    }
    for n in &names {
        let l = t.path().join("bin").join(n);
        assert_eq!(fs::read_link(&l).unwrap(), Path::new("rsv"), "{n}");
    }

    // Another directory: absolute links; an existing file is refused, then replaced with -f.
    let other = t.path().join("usr/bin");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("sv"), "not ours\n").unwrap();
    let (code, _, err) = run(
        Command::new(&rsv).args(["install", "--runit", other.to_str().unwrap()]),
        T,
    );
    assert_eq!(code, 111);
    assert!(
        err.starts_with("rsv: fatal: ") && err.contains("usr/bin/sv exists"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, _, err) = run(
        Command::new(&rsv).args(["install", "-f", "--runit", other.to_str().unwrap()]),
        T,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        fs::canonicalize(other.join("sv")).unwrap(),
        fs::canonicalize(&rsv).unwrap()
    );
}

#[test]
fn names_select_the_program() {
    let t = TempDir::new("mc-names");
    let rsv = t.path().join("rsv");
    copy_exe(&bin("rsv"), &rsv);
    let (code, _, _) = run(
        Command::new(&rsv).args(["install", "--runit", "--s6", t.path().to_str().unwrap()]),
        T,
    );
    assert_eq!(code, 0);
    // Each name behaves like the separate binary started under that name.
    let sep_dir = t.path().join("separate");
    fs::create_dir_all(&sep_dir).unwrap();
    for (name, sep) in [
        ("s6-svc", "rsvc"),
        ("sv", "rsvc"),
        ("rsvstat", "rsvstat"),
        ("s6-svscanctl", "rsvscanctl"),
        ("svlogd", "rsvlog"),
        ("runsv", "rsupervise"),
        ("chpst", "rsvexec"),
        ("rsv-import", "rsv-import"),
    ] {
        // The separate binary reached through a link of the same name in another directory.
        let sep_link = sep_dir.join(name);
        let sep_bin = match sep {
            "rsvexec" => PathBuf::from(env!("CARGO_BIN_EXE_rsvexec")),
            "rsv-import" => PathBuf::from(env!("CARGO_BIN_EXE_rsv-import")),
            _ => bin(sep),
        };
        std::os::unix::fs::symlink(sep_bin, &sep_link).unwrap();
        let dir = t.path().join(format!("d-{name}"));
        fs::create_dir_all(&dir).unwrap();
        let (c1, o1, e1) = run(Command::new(t.path().join(name)).arg("-X").arg(&dir), T);
        let (c2, o2, e2) = run(Command::new(&sep_link).arg("-X").arg(&dir), T);
        assert_eq!((c1, &o1, &e1), (c2, &o2, &e2), "{name}");
        assert!(e1.starts_with(name), "{name}: {e1}");
    }
    // `rsv PROGRAM ARGS` without a link.
    let (code, _, err) = run(
        Command::new(&rsv).args(["s6-svok", t.path().to_str().unwrap()]),
        T,
    );
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = run(Command::new(&rsv).arg("bogus"), T);
    assert_eq!(code, 100);
    assert!(err.contains("unknown program: bogus"), "{err}");
    let (code, _, err) = run(&mut Command::new(&rsv), T);
    assert_eq!(code, 100);
    assert!(err.starts_with("rsv: usage: "), "{err}");
}

/// A static program that stays up until killed: built with the C compiler, as a FROM scratch
/// image would hold a static service binary.
fn static_sleeper(out: &Path) -> bool {
    let src = out.with_extension("c");
    fs::write(
        &src,
        "#include <unistd.h>\nint main(void){for(;;)pause();}\n",
    )
    .unwrap();
    let ok = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(out)
        .arg(&src)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let msg = "cc -static is not available: cannot build the static service for the chroot";
        if std::env::var_os("RSV_REQUIRE_REFERENCES").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
    }
    ok
}

#[test]
fn runs_alone_in_an_empty_root() {
    if !scan::unshare_ok() {
        return;
    }
    let t = TempDir::new("mc-chroot");
    let root = t.path().join("root");
    copy_exe(&bin("rsv"), &root.join("bin/rsv"));
    fs::create_dir_all(root.join("proc")).unwrap();
    fs::create_dir_all(root.join("scan/app")).unwrap();
    if !static_sleeper(&root.join("scan/app/run")) {
        return;
    }
    fs::remove_file(root.join("scan/app/run.c")).unwrap();

    // No links yet: `rsv rsvscan` re-executes itself and runs its supervisors from the same
    // file. The root holds only bin/rsv, proc/ and scan/app/run.
    let errf = t.path().join("err");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--kill-child"])
        .arg(format!("--mount-proc={}", root.join("proc").display()))
        .arg("chroot")
        .arg(&root)
        .args(["/bin/rsv", "rsvscan", "/scan"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&errf).unwrap());
    let mut g = Guard::spawn(&mut cmd);
    let init = wait_for(Duration::from_secs(5), "PID 1", || scan::child_of(g.pid()));
    let sd = root.join("scan/app");
    scan::wait_up(&sd, Duration::from_secs(10));
    let (code, out, _) = run(Command::new(bin("rsvstat")).arg(&sd), T);
    assert_eq!(code, 0);
    assert!(out.starts_with("up (pid "), "{out}");
    // The supervisor is the same file, started as rsupervise.
    let sup = wait_for(Duration::from_secs(5), "supervisor", || {
        scan::child_of(init)
    });
    assert_eq!(
        fs::read(format!("/proc/{sup}/cmdline"))
            .unwrap()
            .split(|&b| b == 0)
            .next()
            .unwrap(),
        b"rsupervise"
    );

    // Drop-in names inside the root, and runit's sv personality from there.
    let (code, _, err) = run(
        Command::new("chroot")
            .arg(&root)
            .args(["/bin/rsv", "install", "--runit", "/bin"]),
        T,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        Command::new("chroot")
            .arg(&root)
            .args(["/bin/sv", "down", "/scan/app"]),
        T,
    );
    assert_eq!(code, 0, "{err}");
    wait_for(Duration::from_secs(5), "down", || {
        (scan::status_pid(&sd) == 0).then_some(())
    });
    let (code, out, _) = run(
        Command::new("chroot")
            .arg(&root)
            .args(["/bin/sv", "status", "/scan/app"]),
        T,
    );
    assert!(out.starts_with("down: /scan/app: "), "{code} {out}");

    // SIGTERM to PID 1: orderly stop, exit 0.
    // SAFETY: kill(2) on the pid of the namespace's PID 1, a child of our own unshare.
    unsafe {
        libc::kill(init, libc::SIGTERM);
    }
    let st = g.wait_exit(Duration::from_secs(10));
    assert_eq!(
        st.code(),
        Some(0),
        "{}",
        fs::read_to_string(&errf).unwrap_or_default()
    );
}

#[test]
fn init_is_s6_overlays_except_as_sbin_init() {
    use std::os::unix::process::CommandExt;
    // Started as /sbin/init: rsvscan (the systemd personality), so a bad option is rsvscan's
    // usage error; as /init: s6-overlay's init, which takes its arguments as CMD.
    let (code, _, err) = run(
        Command::new(bin("rsv")).arg0("/sbin/init").arg("--bogus"),
        Duration::from_secs(10),
    );
    assert_eq!(code, 100, "{err}");
    assert!(err.starts_with("init: usage: rsvscan "), "{err}");
    let root = TempDir::new("init-overlay");
    let (code, _, err) = run(
        Command::new(bin("rsv"))
            .arg0("/init")
            .arg("--bogus")
            .env("RSV_OVERLAY_ROOT", root.path()),
        Duration::from_secs(20),
    );
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("unable to run --bogus"), "{err}");
}
