//! s6-overlay v3 images run with rsv as `/init`: an s6-overlay style root (cont-init.d,
//! s6-rc.d with a `user` bundle and LinuxServer.io's 14-step oneshot chain, two longruns,
//! services.d, user2, CMD, cont-finish.d), run for real as PID 1 of a mount+pid namespace
//! chrooted into the root (the static `rsv` and busybox-static inside), and in a temporary
//! directory through `RSV_OVERLAY_ROOT`. Every step appends a line to one shared log file; the
//! tests check the order of the lines, the environment, the exit code and the stop.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Guard, TempDir, bin, copy_exe, run, script, wait_for};

/// Bound of every wait (the machine may be busy).
const T: Duration = Duration::from_secs(60);

/// Writes the s6-overlay style image under `root`. `p` is how scripts name the root (`""`
/// inside a chroot, the root's path otherwise).
fn image(root: &Path, p: &str) {
    let log = format!("{p}/log");
    let w = |rel: &str, body: &str| {
        let f = root.join(rel);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, body).unwrap();
    };
    let sh = |rel: &str, body: &str| script(&root.join(rel), &format!("#!/bin/sh\n{body}\n"));
    sh(
        "etc/cont-init.d/01-first",
        &format!("echo cont-init 01 >> {log}"),
    );
    sh(
        "etc/cont-init.d/02-second",
        &format!(
            "echo cont-init 02 >> {log}\nprintf %s added > {p}/run/s6/container_environment/ADDED"
        ),
    );
    sh(
        "etc/cont-finish.d/01-bye",
        &format!("echo cont-finish >> {log}"),
    );
    // LinuxServer.io's style: a 14-step oneshot chain, `up` one line naming `run` beside it,
    // `user/` without a `type` file.
    for i in 1..=14 {
        let n = format!("init-{i:02}");
        w(&format!("etc/s6-overlay/s6-rc.d/{n}/type"), "oneshot\n");
        w(
            &format!("etc/s6-overlay/s6-rc.d/{n}/up"),
            &format!("{p}/etc/s6-overlay/s6-rc.d/{n}/run\n"),
        );
        sh(
            &format!("etc/s6-overlay/s6-rc.d/{n}/run"),
            &format!("echo {n} >> {log}"),
        );
        let dep = if i == 1 {
            "base".to_string()
        } else {
            format!("init-{:02}", i - 1)
        };
        w(
            &format!("etc/s6-overlay/s6-rc.d/{n}/dependencies.d/{dep}"),
            "",
        );
        w(&format!("etc/s6-overlay/s6-rc.d/user/contents.d/{n}"), "");
    }
    w(
        "etc/s6-overlay/s6-rc.d/init-14/down",
        &format!("{p}/etc/s6-overlay/s6-rc.d/init-14/stop\n"),
    );
    sh(
        "etc/s6-overlay/s6-rc.d/init-14/stop",
        &format!("echo init-14 down >> {log}"),
    );
    // LinuxServer.io's init-services: an `up` holding only a comment (a no-op).
    w("etc/s6-overlay/s6-rc.d/init-services/type", "oneshot\n");
    w(
        "etc/s6-overlay/s6-rc.d/init-services/up",
        "# This file doesn't do anything, it just signals that services can start\n",
    );
    w(
        "etc/s6-overlay/s6-rc.d/init-services/dependencies.d/init-14",
        "",
    );
    w("etc/s6-overlay/s6-rc.d/user/contents.d/init-services", "");
    // A longrun that becomes ready (notification-fd) 0.3 s after it starts, and a plain one
    // depending on it.
    w("etc/s6-overlay/s6-rc.d/svc-ready/type", "longrun\n");
    w("etc/s6-overlay/s6-rc.d/svc-ready/notification-fd", "3\n");
    w(
        "etc/s6-overlay/s6-rc.d/svc-ready/dependencies.d/init-services",
        "",
    );
    sh(
        "etc/s6-overlay/s6-rc.d/svc-ready/run",
        &format!(
            "echo svc-ready start >> {log}\nsleep 0.3\necho svc-ready ready >> {log}\necho >&3\nexec sleep 1000"
        ),
    );
    // s6-rc's finish need not be executable: the overlay makes it so.
    w(
        "etc/s6-overlay/s6-rc.d/svc-ready/finish",
        &format!("#!/bin/sh\necho svc-ready finish >> {log}\n"),
    );
    w("etc/s6-overlay/s6-rc.d/svc-plain/type", "longrun\n");
    w(
        "etc/s6-overlay/s6-rc.d/svc-plain/dependencies.d/svc-ready",
        "",
    );
    sh(
        "etc/s6-overlay/s6-rc.d/svc-plain/run",
        &format!("echo svc-plain start >> {log}\nexec sleep 1000"),
    );
    sh(
        "etc/s6-overlay/s6-rc.d/svc-plain/finish",
        &format!("echo svc-plain finish >> {log}"),
    );
    for n in ["svc-ready", "svc-plain"] {
        w(&format!("etc/s6-overlay/s6-rc.d/user/contents.d/{n}"), "");
    }
    // user2: after the legacy services.
    w("etc/s6-overlay/s6-rc.d/late/type", "oneshot\n");
    w(
        "etc/s6-overlay/s6-rc.d/late/up",
        &format!("{p}/etc/s6-overlay/s6-rc.d/late/run\n"),
    );
    sh(
        "etc/s6-overlay/s6-rc.d/late/run",
        &format!("echo late >> {log}"),
    );
    w(
        "etc/s6-overlay/s6-rc.d/late/dependencies.d/legacy-services",
        "",
    );
    w("etc/s6-overlay/s6-rc.d/user2/contents.d/late", "");
    // A legacy longrun.
    w("etc/services.d/legacy/notification-fd", "3\n");
    sh(
        "etc/services.d/legacy/run",
        &format!("echo legacy start >> {log}\necho >&3\nexec sleep 1000"),
    );
    sh(
        "etc/services.d/legacy/finish",
        &format!("echo legacy finish >> {log}"),
    );
    fs::create_dir_all(root.join("run")).unwrap();
    fs::write(root.join("log"), "").unwrap();
}

fn log_lines(root: &Path) -> Vec<String> {
    fs::read_to_string(root.join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Index of `line` in the log (panics with the whole log when absent).
fn at(lines: &[String], line: &str) -> usize {
    lines
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("{line:?} not in the log:\n{}", lines.join("\n")))
}

/// Checks that each line of `order` comes after the one before it.
fn in_order(lines: &[String], order: &[&str]) {
    for w in order.windows(2) {
        assert!(
            at(lines, w[0]) < at(lines, w[1]),
            "{:?} should come before {:?}:\n{}",
            w[0],
            w[1],
            lines.join("\n")
        );
    }
}

fn start_order(lines: &[String]) {
    let mut order: Vec<String> = vec!["cont-init 01".into(), "cont-init 02".into()];
    order.extend((1..=14).map(|i| format!("init-{i:02}")));
    order.extend(["svc-ready start", "svc-ready ready", "svc-plain start"].map(String::from));
    let o: Vec<&str> = order.iter().map(String::as_str).collect();
    in_order(lines, &o);
    in_order(
        lines,
        &["svc-ready ready", "legacy start", "late", "cmd start"],
    );
}

fn stop_order(lines: &[String]) {
    in_order(
        lines,
        &[
            "legacy finish",
            "svc-plain finish",
            "svc-ready finish",
            "init-14 down",
            "cont-finish",
        ],
    );
}

/// A root with the static `rsv` as `/init`, busybox-static as the shell and tools, and
/// s6-overlay's helpers installed by `rsv install --s6-overlay /usr/bin`.
fn chroot_root(t: &TempDir) -> Option<PathBuf> {
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() || !scan::unshare_ok() {
        eprintln!("SKIPPED: busybox-static or unshare missing");
        return None;
    }
    let root = t.path().join("root");
    copy_exe(&bin("rsv"), &root.join("bin/rsv"));
    copy_exe(busybox, &root.join("bin/busybox"));
    for a in [
        "sh", "sleep", "cat", "echo", "env", "printf", "test", "[", "kill", "true", "ls",
    ] {
        symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    symlink("bin/rsv", root.join("init")).unwrap();
    for d in ["proc", "tmp", "var", "dev", "usr/bin", "usr/local/bin"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    // A container always has /dev/null (the scanner gives it to oneshots as stdin).
    let (code, _, err) = run(
        Command::new("mknod")
            .args(["-m", "666"])
            .arg(root.join("dev/null"))
            .args(["c", "1", "3"]),
        T,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        Command::new("chroot")
            .arg(&root)
            .args(["/bin/rsv", "install", "--s6-overlay", "/usr/bin"]),
        T,
    );
    assert_eq!(code, 0, "{err}");
    image(&root, "");
    // with-contenv as a shebang, as LinuxServer.io's scripts use it.
    script(
        &root.join("usr/local/bin/show-env"),
        "#!/usr/bin/with-contenv sh\necho \"shebang FOO=$FOO ADDED=$ADDED\" >> /log\n",
    );
    Some(root)
}

/// `/init ARGS` as PID 1 of a new mount+pid namespace chrooted into `root`.
fn start_chroot(root: &Path, err: &Path, env: &[(&str, &str)], args: &[&str]) -> (Guard, i32) {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--pid", "--fork", "--kill-child"])
        .arg(format!("--mount-proc={}", root.join("proc").display()))
        .arg("chroot")
        .arg(root)
        .arg("/init")
        .args(args)
        .env("FOO", "bar")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(err).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let g = Guard::spawn(&mut cmd);
    let init = wait_for(Duration::from_secs(10), "PID 1", || scan::child_of(g.pid()));
    (g, init)
}

const CMD: &str = "echo cmd start >> /log
echo \"cmd FOO=$FOO\" >> /log
with-contenv sh -c 'echo \"contenv FOO=$FOO ADDED=$ADDED\"' >> /log
echo \"printcontenv $(printcontenv FOO)\" >> /log
/usr/local/bin/show-env
exit 7";

#[test]
fn an_overlay_image_as_pid_1_in_a_chroot() {
    let t = TempDir::new("ov-chroot");
    let Some(root) = chroot_root(&t) else {
        return;
    };
    let errf = t.path().join("err");
    let err = || fs::read_to_string(&errf).unwrap_or_default();

    // 1. CMD ends with 7: the start order, the environment, the stop order, exit 7.
    let (mut g, _) = start_chroot(&root, &errf, &[], &["/bin/sh", "-c", CMD]);
    let st = g.wait_exit(T);
    let lines = log_lines(&root);
    assert_eq!(st.code(), Some(7), "{}\n{}", err(), lines.join("\n"));
    start_order(&lines);
    stop_order(&lines);
    in_order(&lines, &["cmd start", "legacy finish"]);
    // Services and CMD start with PATH only; with-contenv gives the container environment,
    // with what a cont-init.d script added to it.
    at(&lines, "cmd FOO=");
    at(&lines, "contenv FOO=bar ADDED=added");
    at(&lines, "printcontenv bar");
    at(&lines, "shebang FOO=bar ADDED=added");
    assert_eq!(
        fs::read_to_string(root.join("run/s6/container_environment/FOO")).unwrap(),
        "bar"
    );
    assert!(
        fs::symlink_metadata(root.join("var/run"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // 2. S6_KEEP_ENV=1 and a code written to the exitcode file: that code wins.
    fs::write(root.join("log"), "").unwrap();
    let keep = "echo \"cmd FOO=$FOO\" >> /log
echo 42 > /run/s6-linux-init-container-results/exitcode
exit 7";
    let (mut g, _) = start_chroot(
        &root,
        &errf,
        &[("S6_KEEP_ENV", "1"), ("S6_VERBOSITY", "0")],
        &["/bin/sh", "-c", keep],
    );
    let st = g.wait_exit(T);
    let lines = log_lines(&root);
    assert_eq!(st.code(), Some(42), "{}\n{}", err(), lines.join("\n"));
    at(&lines, "cmd FOO=bar");
    stop_order(&lines);

    // 3. No CMD; SIGTERM to PID 1 (docker stop): reverse order, cont-finish.d, exit 0.
    fs::write(root.join("log"), "").unwrap();
    let (mut g, init) = start_chroot(&root, &errf, &[], &[]);
    wait_for(T, "the start set", || {
        log_lines(&root).iter().any(|l| l == "late").then_some(())
    });
    // SAFETY: kill(2) on PID 1 of the namespace this test started.
    unsafe {
        libc::kill(init, libc::SIGTERM);
    }
    let st = g.wait_exit(T);
    let lines = log_lines(&root);
    assert_eq!(st.code(), Some(0), "{}\n{}", err(), lines.join("\n"));
    stop_order(&lines);
    assert_eq!(lines.iter().filter(|l| *l == "cont-finish").count(), 1);
}

#[test]
fn a_read_only_run_falls_back_to_a_runtime_directory() {
    let t = TempDir::new("ov-rorun");
    let Some(root) = chroot_root(&t) else {
        return;
    };
    let errf = t.path().join("err");
    // /run read-only (bind-mounted so in the namespace), no S6_READ_ONLY_ROOT: s6-overlay
    // would stop here; rsv uses /tmp/rsv-0/s6-overlay and says so.
    let cmd = "echo cmd start >> /log
with-contenv sh -c 'echo \"contenv FOO=$FOO ADDED=$ADDED\"' >> /log
exit 3";
    let mut c = Command::new("unshare");
    c.args(["--mount", "--pid", "--fork", "--kill-child"])
        .arg(format!("--mount-proc={}", root.join("proc").display()))
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "mount --bind -o ro {r}/run {r}/run && exec chroot {r} /init /bin/sh -c \"$0\"",
            r = root.display()
        ))
        .arg(cmd)
        .env("FOO", "bar")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&errf).unwrap());
    let mut g = Guard::spawn(&mut c);
    let st = g.wait_exit(T);
    let err = fs::read_to_string(&errf).unwrap_or_default();
    let lines = log_lines(&root);
    assert_eq!(st.code(), Some(3), "{err}\n{}", lines.join("\n"));
    assert!(
        err.contains("/run is not writable by uid 0: using /tmp/rsv-0/s6-overlay instead"),
        "{err}"
    );
    at(&lines, "contenv FOO=bar ADDED=");
    stop_order(&lines);
}

#[test]
fn s6_read_only_root_mounts_a_tmpfs_on_an_unwritable_run() {
    let t = TempDir::new("ov-rotmpfs");
    let Some(root) = chroot_root(&t) else {
        return;
    };
    let errf = t.path().join("err");
    let cmd = "echo cmd start >> /log
with-contenv sh -c 'echo \"contenv FOO=$FOO ADDED=$ADDED\"' >> /log
exit 3";
    let mut c = Command::new("unshare");
    c.args(["--mount", "--pid", "--fork", "--kill-child"])
        .arg(format!("--mount-proc={}", root.join("proc").display()))
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "mount --bind -o ro {r}/run {r}/run && exec chroot {r} /init /bin/sh -c \"$0\"",
            r = root.display()
        ))
        .arg(cmd)
        .env("FOO", "bar")
        .env("S6_READ_ONLY_ROOT", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&errf).unwrap());
    let mut g = Guard::spawn(&mut c);
    let st = g.wait_exit(T);
    let err = fs::read_to_string(&errf).unwrap_or_default();
    let lines = log_lines(&root);
    assert_eq!(st.code(), Some(3), "{err}\n{}", lines.join("\n"));
    assert!(!err.contains("not writable"), "{err}");
    at(&lines, "contenv FOO=bar ADDED=added");
    start_order(&lines);
    stop_order(&lines);
    // The tmpfs was the namespace's: nothing was written to the (read-only) directory.
    assert!(fs::read_dir(root.join("run")).unwrap().next().is_none());
}

#[test]
fn rsvscan_overlay_in_a_temporary_root() {
    // No chroot: RSV_OVERLAY_ROOT plays the part of /, scripts name the temp root.
    let t = TempDir::new("ov-root");
    let root = t.path().join("root");
    let p = root.display().to_string();
    image(&root, &p);
    fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    script(
        &root.join("usr/local/bin/show-env"),
        &format!("#!/bin/sh\necho shebang FOO=bar ADDED=added >> {p}/log\n"),
    );
    let cmd = format!(
        "echo cmd start >> {p}/log
with-contenv sh -c 'echo \"contenv FOO=$FOO ADDED=$ADDED\"' >> {p}/log
echo 5 > \"$RSV_OVERLAY_RUN\"/s6-linux-init-container-results/exitcode
exit 9"
    );
    let mut c = Command::new(bin("rsvscan"));
    c.args(["--overlay", "--", "/bin/sh", "-c", &cmd])
        .env("RSV_OVERLAY_ROOT", &root)
        .env("FOO", "bar")
        .env("S6_KILL_GRACETIME", "30000");
    let (code, _, err) = run(&mut c, T);
    let lines = log_lines(&root);
    assert_eq!(code, 5, "{err}\n{}", lines.join("\n"));
    start_order(&lines);
    stop_order(&lines);
    at(&lines, "contenv FOO=bar ADDED=added");
}

#[test]
fn bad_definitions_are_refused_at_start() {
    let t = TempDir::new("ov-bad");
    let root = t.path();
    fs::create_dir_all(root.join("etc/s6-overlay/s6-rc.d/base")).unwrap();
    fs::create_dir_all(root.join("etc/s6-overlay/s6-rc.d/app")).unwrap();
    fs::create_dir_all(root.join("etc/services.d/app")).unwrap();
    let (code, _, err) = run(
        Command::new(bin("rsv"))
            .args(["init", "true"])
            .env("RSV_OVERLAY_ROOT", root),
        T,
    );
    assert_eq!(code, 100, "{err}");
    assert!(
        err.contains("s6-rc.d/base: the name base is s6-overlay's own"),
        "{err}"
    );
    assert!(
        err.contains("services.d/app: app is also defined in s6-rc.d"),
        "{err}"
    );
    let (code, _, err) = run(
        Command::new(bin("rsv"))
            .args(["init", "true"])
            .env("RSV_OVERLAY_ROOT", "relative"),
        T,
    );
    assert_eq!(code, 100, "{err}");
    assert!(
        err.contains("init: fatal: RSV_OVERLAY_ROOT=relative"),
        "{err}"
    );
}

#[test]
fn helpers_behave_as_s6_overlays() {
    let t = TempDir::new("ov-helpers");
    let run_dir = t.path();
    let ce = run_dir.join("s6/container_environment");
    fs::create_dir_all(&ce).unwrap();
    fs::write(ce.join("A"), "one").unwrap();
    fs::write(ce.join("B"), "two\n").unwrap();
    fs::write(ce.join("GONE"), "").unwrap();
    let names = t.path().join("bin");
    fs::create_dir_all(&names).unwrap();
    for n in ["with-contenv", "printcontenv"] {
        symlink(bin("rsv"), names.join(n)).unwrap();
    }
    let wc = names.join("with-contenv");
    let pc = names.join("printcontenv");
    let (code, out, err) = run(
        Command::new(&wc)
            .args(["sh", "-c", "echo \"$A|$B|${GONE-unset}|${X-unset}\""])
            .env("RSV_OVERLAY_RUN", run_dir)
            .env("X", "x")
            .env("GONE", "g"),
        T,
    );
    assert_eq!((code, out.as_str()), (0, "one|two|unset|unset\n"), "{err}");
    // S6_KEEP_ENV: with-contenv changes nothing.
    let (_, out, _) = run(
        Command::new(&wc)
            .args(["sh", "-c", "echo \"${A-unset}|$X\""])
            .env("RSV_OVERLAY_RUN", run_dir)
            .env("S6_KEEP_ENV", "1")
            .env("X", "x"),
        T,
    );
    assert_eq!(out, "unset|x\n");
    let pce = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(&pc);
        c.args(args).env("RSV_OVERLAY_RUN", run_dir);
        for (k, v) in env {
            c.env(k, v);
        }
        run(&mut c, T)
    };
    assert_eq!(pce(&["A"], &[]), (0, "one\n".into(), String::new()));
    assert_eq!(pce(&["B"], &[]), (0, "two\n\n".into(), String::new()));
    assert_eq!(pce(&["NOPE"], &[]).0, 1);
    assert_eq!(pce(&[], &[]).0, 100);
    assert_eq!(
        pce(&["X"], &[("S6_KEEP_ENV", "1"), ("X", "y")]),
        (0, "y\n".into(), String::new())
    );
    assert_eq!(pce(&["X"], &[("S6_KEEP_ENV", "1"), ("X", "")]).0, 1);
    let (code, _, err) = run(&mut Command::new(&wc), T);
    assert_eq!(code, 100, "{err}");
}

#[test]
fn the_s6_overlay_example_runs_as_its_readme_says() {
    if !Path::new("/bin/busybox").is_file() || !scan::unshare_ok() {
        eprintln!("SKIPPED: busybox-static or unshare missing");
        return;
    }
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("servicedirs-examples/s6-overlay");
    let (code, out, err) = run(
        Command::new("sh")
            .arg(ex.join("try.sh"))
            .args(["/bin/sh", "-c", "echo CMD: the app is up; sleep 1"])
            .env("RSV", bin("rsv")),
        T,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let readme = fs::read_to_string(ex.join("README.md")).unwrap();
    let expected: Vec<&str> = readme
        .split("```\n")
        .nth(3)
        .expect("the expected output block")
        .lines()
        .collect();
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), expected.len(), "{out}\n{err}");
    in_order(&lines, &expected);
}
