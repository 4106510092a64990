//! rsv-import systemd: unit files (made up ones covering the translated directives, and the
//! real ones Debian packages ship) imported into a scan dir, then run under rsvscan as PID 1
//! of a pid namespace (and a network namespace for daemons that listen).

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use scan::*;

const LIMIT: Duration = Duration::from_secs(20);

fn import(args: &[&Path]) -> (i32, String, String) {
    run(
        Command::new(PathBuf::from(env!("CARGO_BIN_EXE_rsv-import"))).args(args),
        LIMIT,
    )
}

fn start(scan: &Path, err: &Path, net: bool) -> Ns {
    start_ns_with_bins(scan, err, net)
}

fn ext(sd: &Path) -> Option<rsv::extstate::ExtState> {
    rsv::extstate::read(&sd.join("supervise")).ok()
}

/// Waits until `sd` is up and ready; returns its process's pid on the host.
fn wait_ready(ns: &Ns, sd: &Path) -> i32 {
    wait_for(LIMIT, &format!("{} ready", sd.display()), || {
        let st = ext(sd)?;
        let pid = status_pid(sd);
        if !st.ready || pid <= 0 {
            return None;
        }
        ns.host_pid(pid).filter(|p| alive(*p))
    })
}

/// Every stderr line of rsv-import is a "not translated" note or a "wrote" line.
fn only_notes(err: &str) {
    for l in err.lines() {
        assert!(
            l.starts_with("rsv-import: not translated: [") || l.starts_with("rsv-import: wrote "),
            "unexpected line: {l}\n{err}"
        );
    }
}

#[test]
fn made_up_units_import_and_run() {
    if !unshare_ok() || !have_refs(&["systemd-notify"]) {
        return;
    }
    let t = TempDir::new("sdimp");
    let units = t.path().join("units");
    let work = t.path().join("work");
    fs::create_dir_all(units.join("simple.service.d")).unwrap();
    fs::create_dir_all(&work).unwrap();
    let w = work.display().to_string();
    let unit = |name: &str, text: &str| fs::write(units.join(name), text).unwrap();
    unit(
        "simple.service",
        &format!(
            "[Unit]\nDescription=A simple one\nAfter=network.target\n[Service]\nWorkingDirectory={w}\nEnvironment=GREETING=hello \"TWO=a b\"\nUnsetEnvironment=UNWANTED\nUMask=0077\nExecStartPre=-/bin/false\nExecStartPre=/bin/sh -c 'echo pre > pre'\nExecStart=/bin/sh -c 'echo \"$GREETING|$TWO|${{UNWANTED-unset}}|%n|$(umask)\" > simple.out; exec sleep 1000'\nRestart=always\nProtectSystem=full\n"
        ),
    );
    unit(
        "simple.service.d/10-greeting.conf",
        "[Service]\nEnvironment=GREETING=dropin\n",
    );
    unit(
        "notify.service",
        "[Service]\nType=notify\nExecStart=/bin/sh -c 'sleep 0.2; systemd-notify --ready --status=\"all set\"; exec sleep 1000'\n",
    );
    unit(
        "forking.service",
        &format!(
            "[Service]\nType=forking\nPIDFile={w}/fork.pid\nExecStart=/bin/sh -c 'sleep 1000 & echo $! > {w}/fork.pid'\nKillSignal=SIGHUP\n"
        ),
    );
    unit(
        "once.service",
        &format!(
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'echo once >> {w}/once'\n"
        ),
    );
    unit(
        "tpl@.service",
        &format!(
            "[Unit]\nRequires=simple.service once.service\n[Service]\nExecStart=/bin/sh -c 'echo %i:$RSV_INSTANCE > {w}/inst-%i; exec sleep 1000'\n"
        ),
    );
    let scan_dir = t.path().join("scan");
    let names: Vec<PathBuf> = ["simple", "notify", "forking", "once", "tpl@7"]
        .iter()
        .map(|n| units.join(format!("{n}.service")))
        .collect();
    let mut args: Vec<&Path> = vec![Path::new("systemd")];
    args.extend(names.iter().map(PathBuf::as_path));
    args.push(&scan_dir);
    let (c, _, err) = import(&args);
    assert_eq!(c, 0, "{err}");
    only_notes(&err);
    assert!(
        err.contains("[simple.service] ProtectSystem=full (sandboxing"),
        "{err}"
    );
    assert!(
        err.contains("[simple.service] After=network.target"),
        "{err}"
    );
    // The oneshot is in s6-rc's source format; the template instance depends on two.
    let once = scan_dir.join("once");
    assert_eq!(fs::read_to_string(once.join("type")).unwrap(), "oneshot\n");
    let up = fs::read_to_string(once.join("up")).unwrap();
    assert_eq!(up.trim(), once.join("start").display().to_string());
    let mut deps: Vec<String> = fs::read_dir(scan_dir.join("tpl@7/dependencies.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    deps.sort();
    assert_eq!(deps, ["once", "simple"]);

    // rsvscan's dependency engine runs the oneshot (once), then the instance that needs it.
    let mut ns = start(&scan_dir, &t.path().join("err"), false);
    let out = whole_line(&work.join("simple.out"), LIMIT);
    assert_eq!(out, "dropin|a b|unset|simple.service|0077\n");
    assert_eq!(fs::read_to_string(work.join("pre")).unwrap(), "pre\n");
    // Type=notify: ready through the real systemd-notify.
    wait_ready(&ns, &scan_dir.join("notify"));
    assert_eq!(ext(&scan_dir.join("notify")).unwrap().sd_status, "all set");
    // Type=forking: the daemon named in the PID file is the service.
    let sd = scan_dir.join("forking");
    let daemon = wait_for(LIMIT, "the forked daemon in the status", || {
        let p: i32 = fs::read_to_string(work.join("fork.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        (status_pid(&sd) == p && ext(&sd)?.ready).then(|| ns.host_pid(p))?
    });
    // Its parent is the service's supervisor (a subreaper), not the scanner.
    assert!(cmdline(ppid(daemon).unwrap()).contains("rsupervise"));
    // The template instance knows its instance both ways.
    let inst = whole_line(&work.join("inst-7"), LIMIT);
    assert_eq!(inst, "7:7\n");
    assert_eq!(fs::read_to_string(work.join("once")).unwrap(), "once\n");
    // Stopping the forking service stops the daemon (KillSignal=SIGHUP), which stays down.
    let (c, _, e) = run(
        Command::new(bin("rsvc"))
            .args(["-wD", "-T", "15000", "-d"])
            .arg(&sd),
        LIMIT,
    );
    assert_eq!(c, 0, "{e}");
    assert!(!alive(daemon));
    assert_eq!(ns.stop(), Some(0));
    assert!(ns.procs().is_empty());
}

/// ExecStop= runs (with $MAINPID, `-` honoured) before the stop's signal, on `rsvc -d` and
/// at the scanner's shutdown; KillMode's default (control-group) leaves no process of the
/// service behind, KillMode=process leaves the forked child alone.
#[test]
fn exec_stop_and_kill_mode() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("sdstop");
    let units = t.path().join("units");
    let work = t.path().join("work");
    fs::create_dir_all(&units).unwrap();
    fs::create_dir_all(&work).unwrap();
    let w = work.display().to_string();
    // Each forks a background child (its pid in a file), then execs its main process.
    let exec_start = |n: &str| {
        format!("ExecStart=/bin/sh -c 'sleep 1000 & echo $! > {w}/{n}.child; exec sleep 1001'\n")
    };
    // The stop command records $MAINPID and whether it still ran then.
    let stop = |n: &str| {
        format!(
            "ExecStop=-/bin/false\nExecStop=/bin/sh -c 'if kill -0 $MAINPID; then a=alive; else a=gone; fi; echo \"$MAINPID $a\" > {w}/{n}.stop.tmp; mv {w}/{n}.stop.tmp {w}/{n}.stop'\n"
        )
    };
    for (n, extra) in [
        ("tree", stop("tree")),
        ("proc", "KillMode=process\n".to_string()),
        ("last", stop("last")),
    ] {
        fs::write(
            units.join(format!("{n}.service")),
            format!("[Service]\n{}{extra}Restart=always\n", exec_start(n)),
        )
        .unwrap();
    }
    let scan_dir = t.path().join("scan");
    let mut args: Vec<PathBuf> = vec!["systemd".into()];
    args.extend(["tree", "proc", "last"].map(|n| units.join(format!("{n}.service"))));
    args.push(scan_dir.clone());
    let args: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
    let (c, _, err) = import(&args);
    assert_eq!(c, 0, "{err}");
    assert!(!err.contains("not translated"), "{err}");
    assert!(scan_dir.join("tree/stop-tree").exists());
    assert!(!scan_dir.join("proc/stop-tree").exists());
    let mut ns = start(&scan_dir, &t.path().join("err"), false);
    // The child of each, as a host pid, once its service is up.
    let child = |ns: &Ns, n: &str| -> i32 {
        wait_for(LIMIT, &format!("{n}'s child"), || {
            let p: i32 = whole_line(&work.join(format!("{n}.child")), LIMIT)
                .trim()
                .parse()
                .ok()?;
            ns.host_pid(p)
        })
    };
    let down = |n: &str| {
        let (c, _, e) = run(
            Command::new(bin("rsvc"))
                .args(["-wD", "-T", "15000", "-d"])
                .arg(scan_dir.join(n)),
            LIMIT,
        );
        assert_eq!(c, 0, "{n}: {e}");
    };
    // Default KillMode: ExecStop ran first (the main process still alive), then nothing of
    // the service is left.
    // The status may be written just after run wrote its child's pid.
    let main = |ns: &Ns, n: &str| -> (i32, i32) {
        wait_for(LIMIT, &format!("{n}'s main process"), || {
            let p = status_pid(&scan_dir.join(n));
            Some((p, ns.host_pid(p).filter(|_| p > 0)?))
        })
    };
    let tree_child = child(&ns, "tree");
    let (tree_main, tree_main_host) = main(&ns, "tree");
    down("tree");
    assert_eq!(
        fs::read_to_string(work.join("tree.stop")).unwrap(),
        format!("{tree_main} alive\n")
    );
    assert!(!alive(tree_main_host));
    wait_for(LIMIT, "tree's child gone", || {
        (!alive(tree_child)).then_some(())
    });
    // KillMode=process: the child lives on; the test ends it.
    let proc_child = child(&ns, "proc");
    down("proc");
    assert!(alive(proc_child));
    kill_pid(proc_child);
    // The scanner's shutdown runs the ExecStop of what still runs.
    let last_child = child(&ns, "last");
    let (last_main, _) = main(&ns, "last");
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
    assert_eq!(
        fs::read_to_string(work.join("last.stop")).unwrap(),
        format!("{last_main} alive\n")
    );
    assert!(!alive(last_child));
    assert!(ns.procs().is_empty());
}

/// Debian's own unit files, for the packages .ci/run installs.
const DEBIAN: &[&str] = &["cron", "ssh", "nginx", "redis-server", "haproxy"];

fn debian_units() -> Option<Vec<PathBuf>> {
    let found: Vec<PathBuf> = DEBIAN
        .iter()
        .map(|n| PathBuf::from(format!("/lib/systemd/system/{n}.service")))
        .filter(|p| p.exists())
        .collect();
    if found.len() < DEBIAN.len() {
        let msg = format!(
            "Debian unit files missing; install them with: apt-get install -y cron openssh-server nginx-light redis-server haproxy (found {found:?})"
        );
        if std::env::var_os("RSV_REQUIRE_REFERENCES").is_some() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return None;
    }
    Some(found)
}

#[test]
fn debian_units_import_and_their_daemons_start_and_stop() {
    if !unshare_ok() {
        return;
    }
    let Some(units) = debian_units() else { return };
    let t = TempDir::new("sddeb");
    let scan_dir = t.path().join("scan");
    let mut args: Vec<&Path> = vec![Path::new("systemd")];
    args.extend(units.iter().map(PathBuf::as_path));
    args.push(&scan_dir);
    let (c, _, err) = import(&args);
    assert_eq!(c, 0, "{err}");
    only_notes(&err);
    for n in DEBIAN {
        assert!(err.contains(&format!("rsv-import: wrote {}", scan_dir.join(n).display())));
    }
    // Each in its own network namespace with the others: ports do not clash with the host.
    let mut ns = start(&scan_dir, &t.path().join("err"), true);
    // cron (simple), sshd, redis and haproxy (notify), nginx (forking, PIDFile).
    let cron = wait_for(LIMIT, "cron up", || {
        let p = ns.host_pid(status_pid(&scan_dir.join("cron")))?;
        cmdline(p).contains("cron").then_some(p)
    });
    let mut daemons = vec![cron];
    for n in ["ssh", "redis-server", "haproxy"] {
        daemons.push(wait_ready(&ns, &scan_dir.join(n)));
    }
    let nginx = wait_for(LIMIT, "nginx's master in the status", || {
        let p: i32 = fs::read_to_string("/run/nginx.pid")
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let sd = scan_dir.join("nginx");
        (status_pid(&sd) == p && ext(&sd)?.ready).then(|| ns.host_pid(p))?
    });
    daemons.push(nginx);
    for p in &daemons {
        assert!(alive(*p), "{}", ns.stderr());
    }
    // Stopped one by one, each daemon goes away and is not restarted.
    for n in DEBIAN {
        let (c, _, e) = run(
            Command::new(bin("rsvc"))
                .args(["-wD", "-T", "15000", "-d"])
                .arg(scan_dir.join(n)),
            LIMIT,
        );
        assert_eq!(c, 0, "{n}: {e}\n{}", ns.stderr());
    }
    for p in &daemons {
        wait_for(LIMIT, "daemon gone", || (!alive(*p)).then_some(()));
    }
    assert_eq!(ns.stop(), Some(0));
    assert!(ns.procs().is_empty());
}

#[test]
fn example_output_is_current() {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("servicedirs-examples");
    let t = TempDir::new("sdimp-example");
    let dest = t.path().join("scan");
    let (c, _, err) = run(
        Command::new(PathBuf::from(env!("CARGO_BIN_EXE_rsv-import")))
            .args([
                "systemd",
                "systemd/units/web.service",
                "systemd/units/ready.service",
                "systemd/units/worker@.service",
            ])
            .arg(&dest)
            .current_dir(&ex),
        LIMIT,
    );
    assert_eq!(c, 0, "{err}");
    let notes = fs::read_to_string(ex.join("systemd/scan.notes")).unwrap();
    assert_eq!(
        err.replace(&dest.display().to_string(), "systemd/scan"),
        notes,
        "servicedirs-examples/systemd/scan.notes is out of date"
    );
    let (c, out, _) = run(
        Command::new("diff")
            .arg("-r")
            .arg(ex.join("systemd/scan"))
            .arg(&dest),
        LIMIT,
    );
    assert_eq!(
        c, 0,
        "servicedirs-examples/systemd/scan is out of date:\n{out}"
    );
    // diff -r does not compare modes: the scripts are executable.
    for s in [
        "web/run",
        "web/finish",
        "web/reload",
        "web/stop",
        "ready/run",
        "worker@/run",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let m = fs::metadata(ex.join("systemd/scan").join(s))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o111, 0o111, "{s}");
    }
}
