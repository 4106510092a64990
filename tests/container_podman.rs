//! rsv as the init of real containers (podman with runc): images made of busybox and rsv's
//! multi-call binary, the runtime sending the signals, owning stdout, setting the user and
//! mounting the root read-only. Each test asserts what the README and rsvscan(8) promise.

mod common;
mod container;

use std::time::Duration;

use container::*;

const SEC: Duration = Duration::from_secs(1);

/// A service that prints a line at start, answers SIGTERM with a last line, and a finish
/// script that says it ran.
fn polite_service(root: &Root, dir: &str, name: &str) {
    root.script(
        &format!("{dir}/{name}/run"),
        &format!(
            "#!/bin/sh\nexec 2>&1\ntrap 'echo {name}: last words; exit 0' TERM\n\
             echo {name}: up\nsleep 1000 &\nwait\n"
        ),
    );
    root.script(
        &format!("{dir}/{name}/finish"),
        &format!("#!/bin/sh\necho \"{name}: finish $1 $2\"\n"),
    );
}

#[test]
fn podman_stop_runs_finish_drains_loggers_and_exits_0_at_once() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("stop", &[]);
    for n in ["alpha", "beta", "gamma"] {
        polite_service(&root, "etc/rsv", n);
        // The logger copies every line to the container's stdout (`1`) and keeps a file.
        root.script(
            &format!("etc/rsv/{n}/log/run"),
            "#!/bin/sh\nexec rsvlog n3 1 ./main\n",
        );
    }
    let img = root.import(&[r#"ENTRYPOINT ["/bin/rsvscan", "/etc/rsv"]"#]);
    let ct = Container::run(rt, &img, &[], &[]);
    ct.wait_logs(30 * SEC, "three services up", |o, _| {
        ["alpha", "beta", "gamma"]
            .iter()
            .all(|n| o.contains(&format!("{n}: up")))
    });
    let (took, code) = ct.stop(10);
    let (out, err) = ct.logs();
    assert_eq!(code, 0, "exit code after podman stop; logs: {out}{err}");
    assert!(took < SEC, "podman stop took {took:?} (logs: {out}{err})");
    for n in ["alpha", "beta", "gamma"] {
        // The service's last line went through its logger, drained before the end.
        assert!(out.contains(&format!("{n}: last words")), "{n}: {out}");
        // finish got run's exit code 0 (the trap exits 0).
        assert!(
            out.contains(&format!("{n}: finish 0 0")),
            "{n} finish: {out}{err}"
        );
    }
}

#[test]
fn term_ignoring_service_ends_at_rsv_bound_before_the_runtime_kill() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("stubborn", &[]);
    polite_service(&root, "etc/rsv", "good");
    root.script(
        "etc/rsv/stubborn/run",
        "#!/bin/sh\ntrap '' TERM\necho stubborn: up\nwhile :; do sleep 1; done\n",
    );
    let img = root.import(&[r#"ENTRYPOINT ["/bin/rsvscan", "-T", "2000", "/etc/rsv"]"#]);
    let ct = Container::run(rt, &img, &[], &[]);
    ct.wait_logs(30 * SEC, "both services up", |o, _| {
        o.contains("stubborn: up") && o.contains("good: up")
    });
    let (took, code) = ct.stop(20);
    let (out, err) = ct.logs();
    // rsvscan(8): 1 when the shutdown bound was exceeded and something was killed; the
    // runtime's own SIGKILL (after 20 s) would have made it 137.
    assert_eq!(code, 1, "logs: {out}{err}");
    assert!(
        took >= Duration::from_millis(1900) && took < 10 * SEC,
        "ended {took:?} after podman stop"
    );
    assert!(err.contains("shutdown bound of 2000 ms exceeded"), "{err}");
    assert!(out.contains("good: finish 0 0"), "{out}");
}

#[test]
fn main_command_exit_code_and_signal_become_the_containers() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("main", &[]);
    polite_service(&root, "etc/rsv", "side");
    let img = root.import(&[
        r#"ENTRYPOINT ["/bin/rsvscan", "--wait-ready", "20000", "/etc/rsv", "--"]"#,
        r#"CMD ["/bin/sh", "-c", "echo main: ran; exit 7"]"#,
    ]);
    let ct = Container::run(rt, &img, &[], &[]);
    assert_eq!(ct.wait(60 * SEC), 7);
    let (out, _) = ct.logs();
    assert!(out.contains("main: ran"), "{out}");
    // When CMD ends, the services are stopped in order.
    assert!(
        out.contains("side: last words") && out.contains("side: finish 0 0"),
        "{out}"
    );

    // Killed by SIGUSR1 (10): 128 + 10.
    let ct = Container::run(rt, &img, &[], &["/bin/sh", "-c", "kill -USR1 $$"]);
    assert_eq!(ct.wait(60 * SEC), 138);

    // podman stop: SIGTERM reaches CMD (not the services first); 128 + 15.
    let ct = Container::run(rt, &img, &[], &["/bin/sleep", "1000"]);
    ct.wait_logs(30 * SEC, "side up", |o, _| o.contains("side: up"));
    ct.wait_sh(30 * SEC, "ps | grep -v grep | grep -q 'sleep 1000'");
    let (_, code) = ct.stop(10);
    assert_eq!(code, 143);
    let (out, _) = ct.logs();
    assert!(out.contains("side: finish 0 0"), "{out}");
}

#[test]
fn essential_service_ends_the_container_with_its_code() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("essential", &[]);
    polite_service(&root, "etc/rsv", "helper");
    root.script(
        "etc/rsv/app/run",
        "#!/bin/sh\nwhile [ ! -e /tmp/go ]; do sleep 0.1; done\necho app: done\nexit 5\n",
    );
    root.file("etc/rsv/app/essential", "");
    let img = root.import(&[r#"ENTRYPOINT ["/bin/rsvscan", "/etc/rsv"]"#]);
    let ct = Container::run(rt, &img, &[], &[]);
    ct.wait_logs(30 * SEC, "helper up", |o, _| o.contains("helper: up"));
    ct.sh("touch /tmp/go");
    assert_eq!(ct.wait(60 * SEC), 5);
    let (out, err) = ct.logs();
    assert!(out.contains("app: done"), "{out}");
    assert!(out.contains("helper: finish 0 0"), "{out}");
    assert!(
        err.contains("essential service /etc/rsv/app stopped for good (exit code 5)"),
        "{err}"
    );
}

#[test]
fn tini_mode_reaps_orphans_and_passes_the_code() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("tini", &[]);
    // A main command whose children leave orphans behind: short-lived ones (zombies unless
    // PID 1 reaps them) and a long-lived one (ended by rsvscan at the stop).
    root.script(
        "bin/orphans",
        "#!/bin/sh\nfor i in 1 2 3 4 5 6 7 8 9 10; do (sh -c 'exit 0' &); (true &); done\n\
         (sleep 1000 &)\ntouch /tmp/spawned\necho orphans: made\n\
         trap 'echo orphans: term; exit 3' TERM\nsleep 1000 &\nwait\n",
    );
    let img = root.import(&[
        r#"ENTRYPOINT ["/bin/rsvscan", "--"]"#,
        r#"CMD ["/bin/orphans"]"#,
    ]);
    let ct = Container::run(rt, &img, &[], &[]);
    ct.wait_sh(30 * SEC, "test -e /tmp/spawned");
    let procs = wait_for_no_zombie(&ct);
    let init = procs.iter().find(|p| p.pid == 1).unwrap();
    assert_eq!(init.cmd, "/bin/rsvscan -- /bin/orphans");
    // The long-lived orphan was reparented to rsvscan, PID 1.
    let orphan = procs.iter().find(|p| p.cmd == "sleep 1000" && p.ppid == 1);
    assert!(orphan.is_some(), "{procs:?}");
    let (took, code) = ct.stop(10);
    assert_eq!(code, 3, "CMD's own exit code");
    assert!(took < 2 * SEC, "{took:?}");
    let (out, _) = ct.logs();
    assert!(out.contains("orphans: term"), "{out}");
}

fn wait_for_no_zombie(ct: &Container) -> Vec<Proc> {
    common::wait_for(10 * SEC, "no zombie in the container", || {
        let p = ct.procs();
        (!p.iter().any(|x| x.state == 'Z')).then_some(p)
    })
}

#[test]
fn podman_logs_prefix_keeps_lines_whole_and_attributed() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("prefix", &[]);
    const N: usize = 400;
    let names = ["s1", "s2", "s3", "s4"];
    for n in names {
        // Two writers per service, each writing N long lines as fast as it can, to stdout
        // and to stderr.
        root.script(
            &format!("etc/rsv/{n}/run"),
            &format!(
                "#!/bin/sh\npad=$(printf '%0300d' 0)\n\
                 w() {{ i=0; while [ $i -lt {N} ]; do echo \"{n}:$1:$i:$pad:end\"; i=$((i+1)); done; }}\n\
                 w a & w b >&2 & wait\necho {n}:done\nexec sleep 1000\n"
            ),
        );
    }
    let img = root.import(&[r#"ENTRYPOINT ["/bin/rsvscan", "--prefix", "/etc/rsv"]"#]);
    let ct = Container::run(rt, &img, &[], &[]);
    ct.wait_logs(60 * SEC, "every writer done", |o, _| {
        names.iter().all(|n| o.contains(&format!("{n} | {n}:done")))
    });
    let (took, code) = ct.stop(10);
    assert_eq!(code, 0);
    assert!(took < SEC, "{took:?}");
    let (out, err) = ct.logs();
    let pad = "0".repeat(300);
    for (stream, text, w) in [("stdout", &out, "a"), ("stderr", &err, "b")] {
        for n in names {
            let mut next = 0;
            for l in text
                .lines()
                .filter(|l| l.starts_with(&format!("{n} | {n}:{w}:")))
            {
                assert_eq!(l, format!("{n} | {n}:{w}:{next}:{pad}:end"), "{stream}");
                next += 1;
            }
            assert_eq!(next, N, "{n} {stream}: every line, in order");
        }
        for l in text.lines() {
            let ok = names.iter().any(|n| {
                l.starts_with(&format!("{n} | {n}:"))
                    && (l.ends_with(":end") || l.ends_with(":done"))
            });
            assert!(
                ok || l.starts_with("rsvscan:"),
                "{stream}: mixed line {l:?}"
            );
        }
    }
}

#[test]
fn healthcheck_run_uses_rsvstat_ready() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("health", &[]);
    polite_service(&root, "etc/rsv", "web");
    // Ready once its check passes: when /tmp/ok exists.
    root.script("etc/rsv/web/check", "#!/bin/sh\ntest -e /tmp/ok\n");
    root.file("etc/rsv/web/check-interval", "200\n");
    let base = root.import(&[]);
    let ctx = context("health");
    let img = base.build(
        rt,
        ctx.path(),
        "FROM @BASE@\n\
         HEALTHCHECK --interval=60s --timeout=3s CMD [\"rsvstat\", \"--ready\", \"/etc/rsv\"]\n\
         ENTRYPOINT [\"/bin/rsvscan\", \"/etc/rsv\"]\n",
    );
    let ct = Container::run(rt, &img, &[], &[]);
    ct.wait_logs(30 * SEC, "web up", |o, _| o.contains("web: up"));
    let hc = || {
        common::run(
            std::process::Command::new("podman").args(["healthcheck", "run", &ct.name]),
            PODMAN_LIMIT,
        )
    };
    let (code, out, err) = hc();
    assert_ne!(code, 0, "not ready yet, yet healthy: {out}{err}");
    ct.sh("touch /tmp/ok");
    common::wait_for(30 * SEC, "healthy", || (hc().0 == 0).then_some(()));
    assert_eq!(ct.inspect("{{.State.Health.Status}}"), "healthy");
    ct.sh("rm /tmp/ok");
    // Three failed checks (200 ms apart): unhealthy, and the probe says so.
    common::wait_for(30 * SEC, "unhealthy", || (hc().0 != 0).then_some(()));
}

#[test]
fn read_only_root_with_tmpfs_run() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("ro", &[]);
    polite_service(&root, "etc/rsv", "svc");
    // runc gives a tmpfs mounted on /run the mode of the image's /run: world-writable, so
    // that any user can make /run/rsv (docs/containers.md, Read-only root).
    std::fs::set_permissions(
        root.path("run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let img = root.import(&[r#"ENTRYPOINT ["/bin/rsvscan", "/etc/rsv"]"#]);
    let ct = Container::run(
        rt,
        &img,
        &["--read-only", "--read-only-tmpfs=false", "--tmpfs", "/run"],
        &[],
    );
    ct.wait_logs(30 * SEC, "svc up", |o, _| o.contains("svc: up"));
    // The state went to the runtime dir, and the tools find it there.
    let st = ct.wait_sh(10 * SEC, "rsvstat /etc/rsv/svc | grep '^up '");
    assert!(st.starts_with("up (pid "), "{st}");
    let runs = ct.sh("find /run/rsv -maxdepth 3");
    assert!(runs.contains("/run/rsv/"), "state under /run/rsv: {runs}");
    ct.sh("rsvc -wd -T 10000 -d /etc/rsv/svc");
    ct.sh("rsvc -wu -T 10000 -u /etc/rsv/svc");
    let (took, code) = ct.stop(10);
    let (out, err) = ct.logs();
    assert_eq!(code, 0, "{out}{err}");
    assert!(took < SEC, "{took:?}");
    assert_eq!(out.matches("svc: finish 0 0").count(), 2, "{out}");

    // As the README has it: read-only, a tmpfs /run, and a user that owns nothing.
    let ct = Container::run(
        rt,
        &img,
        &[
            "--read-only",
            "--read-only-tmpfs=false",
            "--tmpfs",
            "/run",
            "--user",
            "65534",
        ],
        &[],
    );
    ct.wait_logs(30 * SEC, "svc up", |o, _| o.contains("svc: up"));
    let (code, st, err) = ct.exec_as(&["--user", "65534"], &["rsvstat", "/etc/rsv/svc"]);
    assert_eq!(code, 0, "{st}{err}");
    assert!(st.starts_with("up (pid "), "{st}");
    let (took, code) = ct.stop(10);
    assert_eq!(code, 0);
    assert!(took < SEC, "{took:?}");

    // Without a writable place (the image's /run at 0755): one clear line and 111.
    std::fs::set_permissions(
        root.path("run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let img = root.import(&[r#"ENTRYPOINT ["/bin/rsvscan", "/etc/rsv"]"#]);
    let opts = [
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs",
        "/run",
        "--user",
        "65534",
    ];
    let ct = Container::run(rt, &img, &opts, &[]);
    assert_eq!(ct.wait(30 * SEC), 111);
    let (_, err) = ct.logs();
    assert!(
        err.contains("no usable runtime directory (tried /run/rsv, /tmp/rsv-65534)"),
        "{err}"
    );
}

#[test]
fn non_root_user_on_a_root_owned_scan_dir() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("user", &[]);
    root.script(
        "etc/rsv/who/run",
        "#!/bin/sh\necho who: up as $(id -u):$(id -g)\nexec sleep 1000\n",
    );
    root.script("etc/rsv/who/finish", "#!/bin/sh\necho who: finish $1 $2\n");
    let img = root.import(&[r#"ENTRYPOINT ["/bin/rsvscan", "/etc/rsv"]"#]);
    // Root-owned, mode 0755: the user cannot write the scan dir or the service dir.
    let ct = Container::run(rt, &img, &["--user", "1000:1000"], &[]);
    ct.wait_logs(30 * SEC, "who up", |o, _| {
        o.contains("who: up as 1000:1000")
    });
    assert_eq!(ct.sh("stat -c %u /etc/rsv/who").trim(), "0");
    let user = ["--user", "1000:1000"];
    let (code, st, err) = ct.exec_as(&user, &["rsvstat", "/etc/rsv/who"]);
    assert_eq!(code, 0, "{st}{err}");
    assert!(st.starts_with("up (pid "), "{st}");
    let (code, _, err) = ct.exec_as(&user, &["rsvc", "-wr", "-T", "10000", "-t", "/etc/rsv/who"]);
    assert_eq!(code, 0, "{err}");
    ct.wait_logs(30 * SEC, "restarted", |o, _| {
        o.matches("who: up as 1000:1000").count() == 2
    });
    let (took, code) = ct.stop(10);
    assert_eq!(code, 0);
    assert!(took < SEC, "{took:?}");
    let (out, _) = ct.logs();
    assert_eq!(out.matches("who: finish").count(), 2, "{out}");
}

#[test]
fn environment_from_podman_e_env_dirs_and_init_steps() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("env", &[]);
    root.script(
        "etc/rsv/show/run",
        "#!/bin/sh\necho \"show: G=$GREETING F=$FOO D=${DROPME-unset} S=$STEP\"\nexec sleep 1000\n",
    );
    root.file("etc/rsv/show/env/FOO", "from-envdir\n");
    root.file("etc/rsv/show/env/DROPME", "");
    root.script(
        "bin/step",
        "#!/bin/sh\nprintf %s \"step-$GREETING\" > \"$RSV_ENVDIR/STEP\"\n",
    );
    let img = root.import(&[r#"ENTRYPOINT ["/bin/rsvscan", "--init", "/bin/step", "/etc/rsv"]"#]);
    let ct = Container::run(rt, &img, &["-e", "GREETING=hello", "-e", "DROPME=x"], &[]);
    ct.wait_logs(30 * SEC, "show's line", |o, _| o.contains("show: "));
    let (out, _) = ct.logs();
    assert!(
        out.contains("show: G=hello F=from-envdir D=unset S=step-hello"),
        "{out}"
    );
}

#[test]
fn sigkilled_supervisor_is_replaced_without_a_second_copy() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("sigkill", &[]);
    root.script(
        "etc/rsv/one/run",
        "#!/bin/sh\necho one: up\nexec sleep 4242\n",
    );
    let img = root.import(&[r#"ENTRYPOINT ["/bin/rsvscan", "/etc/rsv"]"#]);
    let ct = Container::run(rt, &img, &[], &[]);
    ct.wait_logs(30 * SEC, "one up", |o, _| o.contains("one: up"));
    let sup = |p: &Vec<Proc>| -> Vec<i32> {
        p.iter()
            .filter(|x| x.state != 'Z' && x.cmd.starts_with("rsupervise") && x.cmd.contains(" one"))
            .map(|x| x.pid)
            .collect()
    };
    let copies = |p: &Vec<Proc>| -> Vec<i32> {
        p.iter()
            .filter(|x| x.state != 'Z' && x.cmd == "sleep 4242")
            .map(|x| x.pid)
            .collect()
    };
    let before = ct.procs();
    let old = sup(&before);
    assert_eq!(old.len(), 1, "{before:?}");
    assert_eq!(copies(&before).len(), 1, "{before:?}");
    ct.sh(&format!("kill -KILL {}", old[0]));
    let after = common::wait_for(30 * SEC, "a new supervisor with the service up", || {
        let p = ct.procs();
        let s = sup(&p);
        (s.len() == 1 && s[0] != old[0] && !copies(&p).is_empty()).then_some(p)
    });
    assert_eq!(
        copies(&after).len(),
        1,
        "one copy of the service: {after:?}"
    );
    let st = ct.sh("rsvstat /etc/rsv/one");
    assert!(st.starts_with("up (pid "), "{st}");
    // And it stays one for a while (no late second start).
    std::thread::sleep(Duration::from_millis(1500));
    let later = ct.procs();
    assert_eq!(copies(&later).len(), 1, "{later:?}");
    let (_, code) = ct.stop(10);
    assert_eq!(code, 0);
}

#[test]
fn started_again_after_a_sigkill_of_the_whole_container() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("again", &[]);
    polite_service(&root, "etc/rsv", "svc");
    root.script("etc/rsv/svc/log/run", "#!/bin/sh\nexec rsvlog 1 ./main\n");
    let img = root.import(&[r#"ENTRYPOINT ["/bin/rsvscan", "/etc/rsv"]"#]);
    let ct = Container::run(rt, &img, &[], &[]);
    ct.wait_logs(30 * SEC, "svc up", |o, _| o.contains("svc: up"));
    ct.wait_sh(10 * SEC, "rsvstat /etc/rsv/svc | grep -q '^up '");
    // An unclean end (the runtime's SIGKILL, an OOM kill): locks, FIFOs and status files stay
    // in the container's writable layer, as a restart policy then finds them.
    ct.kill("KILL");
    assert_eq!(ct.wait(30 * SEC), 137);
    ct.start();
    ct.wait_logs(30 * SEC, "svc up again", |o, _| {
        o.matches("svc: up").count() == 2
    });
    ct.wait_sh(
        10 * SEC,
        "rsvstat /etc/rsv/svc | grep -q '^up ' && rsvstat /etc/rsv/svc/log | grep -q '^up '",
    );
    let (took, code) = ct.stop(10);
    assert_eq!(code, 0);
    assert!(took < SEC, "{took:?}");
    let (out, _) = ct.logs();
    assert!(out.contains("svc: finish 0 0"), "{out}");
}
