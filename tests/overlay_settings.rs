//! The `S6_*` settings of s6-overlay v3 under rsv as `/init`: stage 2 failures, the settle
//! bound, the hook, CMD's arg0 and signals, the grace times (bounds, not sleeps), verbosity,
//! and a non-root start with a root-owned `/run`. Each run is a small image in a temporary
//! directory (`RSV_OVERLAY_ROOT`), as PID 1 of its own pid namespace.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Guard, TempDir, bin, run, script, wait_for};

const T: Duration = Duration::from_secs(60);

/// cont-init.d, one longrun `app` in the user bundle (after `base`), cont-finish.d.
fn small_image(root: &Path) -> String {
    let p = root.display().to_string();
    let log = format!("{p}/log");
    script(
        &root.join("etc/cont-init.d/01-init"),
        &format!("#!/bin/sh\necho cont-init >> {log}\n"),
    );
    script(
        &root.join("etc/cont-finish.d/01-bye"),
        &format!("#!/bin/sh\necho cont-finish >> {log}\n"),
    );
    let app = root.join("etc/s6-overlay/s6-rc.d/app");
    fs::create_dir_all(app.join("dependencies.d")).unwrap();
    fs::write(app.join("type"), "longrun\n").unwrap();
    fs::write(app.join("dependencies.d/base"), "").unwrap();
    script(
        &app.join("run"),
        &format!("#!/bin/sh\necho app start >> {log}\nexec sleep 1000\n"),
    );
    script(
        &app.join("finish"),
        &format!("#!/bin/sh\necho app finish >> {log}\n"),
    );
    let user = root.join("etc/s6-overlay/s6-rc.d/user/contents.d");
    fs::create_dir_all(&user).unwrap();
    fs::write(user.join("app"), "").unwrap();
    fs::create_dir_all(root.join("run")).unwrap();
    fs::write(&log, "").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
    log
}

fn lines(log: &str) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn has(log: &str, line: &str) -> bool {
    lines(log).iter().any(|l| l == line)
}

/// `rsv init ARGS` with `RSV_OVERLAY_ROOT=root` and `env`, as PID 1 of a new pid namespace
/// (as user nobody when `nobody`).
fn init_cmd(root: &Path, env: &[(&str, &str)], args: &[&str], nobody: bool) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", "--kill-child", "--mount-proc"]);
    if nobody {
        c.args([
            "/usr/bin/setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]);
    }
    c.arg(bin("rsv"))
        .arg("init")
        .args(args)
        .env("RSV_OVERLAY_ROOT", root)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("RSV_RUNDIR")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn run_init(root: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, Duration) {
    let t0 = Instant::now();
    let (code, _, err) = run(&mut init_cmd(root, env, args, false), T);
    (code, err, t0.elapsed())
}

#[test]
fn a_failing_cont_init_script_stops_the_container_only_with_behaviour_2() {
    if !scan::unshare_ok() {
        return;
    }
    let t = TempDir::new("ovs-fail");
    let root = t.path();
    let log = small_image(root);
    script(&root.join("etc/cont-init.d/02-fail"), "#!/bin/sh\nexit 3\n");
    let cmd = format!("echo cmd >> {log}; exit 5");
    let (code, err, _) = run_init(
        root,
        &[("S6_BEHAVIOUR_IF_STAGE2_FAILS", "2")],
        &["/bin/sh", "-c", &cmd],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cont-init: warning: a script of cont-init.d failed"),
        "{err}"
    );
    assert!(!has(&log, "cmd") && !has(&log, "app start"), "{err}");
    // legacy-cont-init never came up, so its down (cont-finish.d) does not run: as s6-rc.
    assert!(!has(&log, "cont-finish"), "{err}");

    // 0 (the default): the failure is not one; everything starts, CMD's code.
    fs::write(&log, "").unwrap();
    let (code, err, _) = run_init(root, &[], &["/bin/sh", "-c", &cmd]);
    assert_eq!(code, 5, "{err}");
    assert!(has(&log, "cmd") && has(&log, "app start"), "{err}");
    assert!(err.contains("01-init exited 0") && err.contains("02-fail exited 3"));

    // S6_VERBOSITY=0: no information lines.
    let (_, err, _) = run_init(root, &[("S6_VERBOSITY", "0")], &["true"]);
    assert!(!err.contains("exited"), "{err}");
}

#[test]
fn the_settle_bound_is_a_stage_2_failure() {
    if !scan::unshare_ok() {
        return;
    }
    let t = TempDir::new("ovs-maxtime");
    let root = t.path();
    let log = small_image(root);
    // A longrun announcing readiness that never comes.
    let slow = root.join("etc/s6-overlay/s6-rc.d/slow");
    fs::create_dir_all(&slow).unwrap();
    fs::write(slow.join("type"), "longrun\n").unwrap();
    fs::write(slow.join("notification-fd"), "3\n").unwrap();
    script(&slow.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    fs::write(root.join("etc/s6-overlay/s6-rc.d/user/contents.d/slow"), "").unwrap();
    let cmd = format!("echo cmd >> {log}");
    let (code, err, took) = run_init(
        root,
        &[
            ("S6_CMD_WAIT_FOR_SERVICES_MAXTIME", "500"),
            ("S6_BEHAVIOUR_IF_STAGE2_FAILS", "2"),
        ],
        &["/bin/sh", "-c", &cmd],
    );
    assert_eq!(code, 1, "{err}");
    assert!(!has(&log, "cmd"), "{err}");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");

    // 1: CMD starts once the bound has passed, with a warning.
    let (code, err, took) = run_init(
        root,
        &[
            ("S6_CMD_WAIT_FOR_SERVICES_MAXTIME", "500"),
            ("S6_BEHAVIOUR_IF_STAGE2_FAILS", "1"),
        ],
        &["/bin/sh", "-c", &cmd],
    );
    assert_eq!(code, 0, "{err}");
    assert!(has(&log, "cmd"), "{err}");
    assert!(took >= Duration::from_millis(500), "{took:?}");
}

#[test]
fn the_stage2_hook_runs_first_and_its_failure_can_stop_everything() {
    if !scan::unshare_ok() {
        return;
    }
    let t = TempDir::new("ovs-hook");
    let root = t.path();
    let log = small_image(root);
    let p = root.display();
    // The hook adds a service to the definitions before they are read.
    let hook = format!(
        "d={p}/etc/s6-overlay/s6-rc.d; mkdir -p $d/hooked && echo oneshot > $d/hooked/type && echo '{p}/hooked-up' > $d/hooked/up && touch $d/user/contents.d/hooked"
    );
    script(
        &root.join("hooked-up"),
        &format!("#!/bin/sh\necho hooked >> {log}\n"),
    );
    let (code, err, _) = run_init(root, &[("S6_STAGE2_HOOK", &hook)], &["true"]);
    assert_eq!(code, 0, "{err}");
    assert!(has(&log, "hooked"), "{err}");

    fs::write(&log, "").unwrap();
    let (code, err, _) = run_init(
        root,
        &[
            ("S6_STAGE2_HOOK", "exit 6"),
            ("S6_BEHAVIOUR_IF_STAGE2_FAILS", "2"),
        ],
        &["true"],
    );
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("S6_STAGE2_HOOK exited 6"), "{err}");
    assert!(lines(&log).is_empty(), "{err}");
}

#[test]
fn cmd_arg0_and_signals_to_cmd() {
    if !scan::unshare_ok() {
        return;
    }
    let t = TempDir::new("ovs-sig");
    let root = t.path();
    let log = small_image(root);
    let cmd = format!(
        "trap 'echo cmd TERM >> {log}; exit 4' TERM; echo cmd start >> {log}; while :; do sleep 0.05; done"
    );
    let errf = root.join("err");
    let mut c = init_cmd(
        root,
        &[
            ("S6_CMD_ARG0", "/bin/sh -c"),
            ("S6_CMD_RECEIVE_SIGNALS", "1"),
        ],
        &[&cmd],
        false,
    );
    c.stdout(Stdio::null())
        .stderr(fs::File::create(&errf).unwrap());
    let mut g = Guard::spawn(&mut c);
    let init = wait_for(Duration::from_secs(10), "PID 1", || scan::child_of(g.pid()));
    wait_for(T, "CMD", || has(&log, "cmd start").then_some(()));
    // SAFETY: kill(2) on PID 1 of the namespace this test started.
    unsafe {
        libc::kill(init, libc::SIGTERM);
    }
    let st = g.wait_exit(T);
    let err = fs::read_to_string(&errf).unwrap_or_default();
    assert_eq!(st.code(), Some(4), "{err}");
    let l = lines(&log);
    let at = |s: &str| {
        l.iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s}: {l:?}"))
    };
    assert!(at("cmd TERM") < at("app finish") && at("app finish") < at("cont-finish"));
}

#[test]
fn grace_times_bound_the_stop_and_are_not_slept() {
    if !scan::unshare_ok() {
        return;
    }
    let t = TempDir::new("ovs-grace");
    let root = t.path();
    let log = small_image(root);
    let (code, err, took) = run_init(
        root,
        &[
            ("S6_KILL_GRACETIME", "20000"),
            ("S6_SERVICES_GRACETIME", "20000"),
        ],
        &["true"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(has(&log, "app finish") && has(&log, "cont-finish"), "{err}");
    // s6-overlay sleeps S6_KILL_GRACETIME in full; everything here is down long before.
    assert!(took < Duration::from_secs(15), "{took:?}");

    // A service that ignores SIGTERM is killed once the bound has passed.
    let stubborn = root.join("etc/s6-overlay/s6-rc.d/stubborn");
    fs::create_dir_all(&stubborn).unwrap();
    fs::write(stubborn.join("type"), "longrun\n").unwrap();
    script(
        &stubborn.join("run"),
        "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.05; done\n",
    );
    fs::write(
        root.join("etc/s6-overlay/s6-rc.d/user/contents.d/stubborn"),
        "",
    )
    .unwrap();
    let (_, err, took) = run_init(
        root,
        &[
            ("S6_KILL_GRACETIME", "300"),
            ("S6_SERVICES_GRACETIME", "300"),
            ("S6_KILL_FINISH_MAXTIME", "300"),
        ],
        &["sleep", "0.2"],
    );
    assert!(took < Duration::from_secs(15), "{took:?} {err}");
}

#[test]
fn non_root_with_a_root_owned_run_works() {
    if !scan::unshare_ok()
        || !nix::unistd::geteuid().is_root()
        || !Path::new("/usr/bin/setpriv").exists()
    {
        eprintln!("SKIPPED: needs root, unshare and setpriv");
        return;
    }
    let t = TempDir::new("ovs-nobody");
    let root = t.path();
    let log = small_image(root);
    fs::set_permissions(root.join("run"), fs::Permissions::from_mode(0o755)).unwrap();
    let cmd = format!(
        "echo cmd $(id -u) >> {log}; with-contenv sh -c 'echo contenv FOO=$FOO' >> {log}; exit 3"
    );
    // The runtime directory is named (RSV_RUNDIR) so that parallel runs of this test do not
    // share /tmp/rsv-65534.
    let rt = root.join("rt");
    fs::create_dir(&rt).unwrap();
    std::os::unix::fs::chown(&rt, Some(65534), Some(65534)).unwrap();
    let rts = rt.display().to_string();
    let mut c = init_cmd(root, &[("FOO", "bar")], &["/bin/sh", "-c", &cmd], true);
    c.env("RSV_RUNDIR", &rt);
    let (code, _, err) = run(&mut c, T);
    assert_eq!(code, 3, "{err}\n{:?}", lines(&log));
    assert!(
        err.contains(&format!(
            "is not writable by uid 65534: using {rts}/s6-overlay instead"
        )),
        "{err}"
    );
    assert!(
        has(&log, "cmd 65534") && has(&log, "contenv FOO=bar"),
        "{err}"
    );
    assert!(has(&log, "app start") && has(&log, "cont-finish"), "{err}");
}

#[test]
fn a_service_halts_the_container_with_its_exit_code() {
    if !scan::unshare_ok() {
        return;
    }
    // s6-overlay's pattern: a supervised service writes the container's exit code and runs
    // /run/s6/basedir/bin/halt; no CMD.
    let t = TempDir::new("ovs-halt");
    let root = t.path();
    let log = small_image(root);
    script(
        &root.join("etc/services.d/quitter/run"),
        "#!/bin/sh\necho 9 > \"$RSV_OVERLAY_RUN\"/s6-linux-init-container-results/exitcode\nexec \"$RSV_OVERLAY_RUN\"/s6/basedir/bin/halt\n",
    );
    let (code, err, _) = run_init(root, &[], &[]);
    assert_eq!(code, 9, "{err}");
    assert!(has(&log, "app finish") && has(&log, "cont-finish"), "{err}");
}

#[test]
fn an_s6_rc_pipeline_of_two_is_a_logged_service() {
    if !scan::unshare_ok() {
        return;
    }
    let t = TempDir::new("ovs-pipe");
    let root = t.path();
    let log = small_image(root);
    let rc = root.join("etc/s6-overlay/s6-rc.d");
    let talker = rc.join("talker");
    fs::create_dir_all(talker.join("dependencies.d")).unwrap();
    fs::write(talker.join("type"), "longrun\n").unwrap();
    fs::write(talker.join("producer-for"), "talker-log\n").unwrap();
    script(
        &talker.join("run"),
        "#!/bin/sh\necho hello\nexec sleep 1000\n",
    );
    let tl = rc.join("talker-log");
    fs::create_dir_all(tl.join("dependencies.d")).unwrap();
    fs::write(tl.join("type"), "longrun\n").unwrap();
    fs::write(tl.join("consumer-for"), "talker\n").unwrap();
    fs::write(tl.join("pipeline-name"), "talker-pipeline\n").unwrap();
    fs::write(tl.join("dependencies.d/base"), "").unwrap();
    script(
        &tl.join("run"),
        &format!("#!/bin/sh\nwhile read l; do echo \"logged: $l\" >> {log}; done\n"),
    );
    fs::write(rc.join("user/contents.d/talker-pipeline"), "").unwrap();
    let (code, err, _) = run_init(
        root,
        &[],
        &[
            "/bin/sh",
            "-c",
            &format!("while ! grep -q logged {log}; do sleep 0.05; done"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(has(&log, "logged: hello"), "{err}");
}

#[test]
fn fix_attrs_sets_owners_and_modes() {
    if !scan::unshare_ok() || !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: needs root and unshare");
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let t = TempDir::new("ovs-fixattrs");
    let root = t.path();
    small_image(root);
    let d = root.join("var/lib/fixed");
    fs::create_dir_all(d.join("sub")).unwrap();
    fs::write(d.join("sub/file"), "x").unwrap();
    fs::write(d.join(".hidden"), "x").unwrap();
    let fa = root.join("etc/fix-attrs.d");
    fs::create_dir_all(&fa).unwrap();
    fs::write(
        fa.join("01-data"),
        "# data dir\n/var/lib/fixed true nosuchuser:nosuchgroup,1234:5678 0600 0750\n",
    )
    .unwrap();
    let (code, err, _) = run_init(root, &[], &["true"]);
    assert_eq!(code, 0, "{err}");
    for (p, mode) in [
        (d.clone(), 0o750),
        (d.join("sub"), 0o750),
        (d.join("sub/file"), 0o600),
    ] {
        let m = fs::metadata(&p).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (1234, 5678, mode),
            "{p:?}"
        );
    }
    // Dot entries are left alone without S6_FIX_ATTRS_HIDDEN.
    assert_eq!(fs::metadata(d.join(".hidden")).unwrap().uid(), 0);
    assert!(err.contains("fix-attrs.d is deprecated"), "{err}");
}

#[test]
fn s6_logging_catches_everything_but_cmd_with_1_and_everything_with_2() {
    if !scan::unshare_ok() {
        return;
    }
    let t = TempDir::new("ovs-logging");
    let root = t.path();
    small_image(root);
    script(
        &root.join("etc/cont-init.d/02-talk"),
        "#!/bin/sh\necho cont-init speaking\necho cont-init on stderr >&2\n",
    );
    let current = root.join("run/uncaught-logs/current");
    for (level, cmd_logged) in [("1", false), ("2", true)] {
        let (code, out, err) = run(
            &mut init_cmd(
                root,
                &[("S6_LOGGING", level)],
                &[
                    "/bin/sh",
                    "-c",
                    "echo cmd speaking; echo cmd on stderr >&2; exit 4",
                ],
                false,
            ),
            T,
        );
        assert_eq!(code, 4, "{out}\n{err}");
        let logged = fs::read_to_string(&current).unwrap_or_default();
        assert!(
            logged.contains("  cont-init speaking") && logged.contains("  cont-init on stderr"),
            "S6_LOGGING={level}: {logged}"
        );
        assert!(!out.contains("cont-init") && !err.contains("cont-init speaking"));
        assert_eq!(logged.contains("cmd speaking"), cmd_logged, "{logged}");
        assert_eq!(out.contains("cmd speaking"), !cmd_logged, "{out}");
        assert_eq!(err.contains("cmd on stderr"), !cmd_logged, "{err}");
    }
}
