//! rsupervise and sd_notify (`notify-socket`): readiness from Debian's real `systemd-notify`
//! seen by rsvc -wU and s6-svwait -U, STATUS/STOPPING/RELOADING/MAINPID in rsvstat, the
//! watchdog, refused senders, malformed datagrams, and nothing at all without the file.

mod common;
mod supervisor;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{TempDir, alive, bin, have_refs, run, script, wait_for};
use rsv::extstate::ExtState;
use supervisor::*;

fn state(sd: &Path) -> Option<ExtState> {
    rsv::extstate::read(&sd.join("supervise")).ok()
}

fn wait_state(sd: &Path, what: &str, f: impl Fn(&ExtState) -> bool) -> ExtState {
    wait_for(T, what, || state(sd).filter(|s| f(s)))
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sdnotify_svc.py")
}

/// A service dir running the python fixture, with `notify-socket` (content `setting`).
fn py_service(sd: &Path, setting: &str) {
    script(
        &sd.join("run"),
        &format!("#!/bin/sh\nexec python3 {}\n", fixture().display()),
    );
    fs::write(sd.join("notify-socket"), setting).unwrap();
}

/// Gives the fixture commands and waits until it has carried them out.
fn command(sd: &Path, lines: &str) {
    fs::write(sd.join("cmd.tmp"), lines).unwrap();
    fs::rename(sd.join("cmd.tmp"), sd.join("cmd")).unwrap();
    wait_for(T, "the service to take its command", || {
        (!sd.join("cmd").exists()).then_some(())
    });
}

fn rsvstat_line(sd: &Path) -> String {
    let (c, out, err) = run(Command::new(bin("rsvstat")).arg(sd), T);
    assert_eq!(c, 0, "{err}");
    out
}

/// The number of sockets `pid` holds.
fn sockets(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.filter_map(|e| fs::read_link(e.ok()?.path()).ok())
                .filter(|l| l.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn systemd_notify_makes_the_service_ready() {
    if !have_refs(&["systemd-notify", "s6-svwait"]) {
        return;
    }
    let t = TempDir::new("sdn-ready");
    let sd = t.path().join("svc");
    fs::create_dir(&sd).unwrap();
    fs::write(sd.join("notify-socket"), "").unwrap();
    // Waits for ./go, then notifies; records systemd-notify's exit code and duration.
    script(
        &sd.join("run"),
        "#!/bin/sh\nwhile [ ! -e go ]; do sleep 0.02; done\n\
         a=$(date +%s%N)\nsystemd-notify --ready --status='serving 3 clients'\necho $? $(( ($(date +%s%N) - a) / 1000000 )) > rc.tmp\nmv rc.tmp rc\n\
         exec sleep 1000\n",
    );
    let sup = Sup::start("s6", t.path(), "svc");
    wait_up(&sd, None);
    let st = wait_state(&sd, "rsv-state", |_| true);
    assert!(!st.ready, "ready before READY=1");
    // Both clients wait for the same readiness event.
    let waiter = std::thread::spawn({
        let sd = sd.clone();
        move || {
            run(
                Command::new("s6-svwait")
                    .args(["-U", "-t", "10000"])
                    .arg(&sd),
                T,
            )
        }
    });
    let rsvc = std::thread::spawn({
        let sd = sd.clone();
        move || {
            run(
                Command::new(bin("rsvc"))
                    .args(["-wU", "-T", "10000", "-u"])
                    .arg(&sd),
                T,
            )
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    fs::write(sd.join("go"), "").unwrap();
    let (c, _, err) = waiter.join().unwrap();
    assert_eq!(c, 0, "s6-svwait -U: {err}");
    let (c, _, err) = rsvc.join().unwrap();
    assert_eq!(c, 0, "rsvc -wU: {err}");
    let rc = wait_for(T, "systemd-notify's exit code", || {
        fs::read_to_string(sd.join("rc")).ok()
    });
    let mut rc = rc.split_whitespace();
    assert_eq!(rc.next(), Some("0"), "systemd-notify failed: {}", sup.err());
    let ms: u64 = rc.next().unwrap().parse().unwrap();
    assert!(ms < 4000, "systemd-notify waited {ms} ms for its barrier");
    let st = wait_state(&sd, "status text", |s| s.ready && !s.sd_status.is_empty());
    assert_eq!(st.sd_status, "serving 3 clients");
    let line = rsvstat_line(&sd);
    assert!(
        line.contains("ready") && line.contains("status: serving 3 clients"),
        "{line}"
    );
    let (c, out, _) = run(Command::new(bin("rsvstat")).arg("--json").arg(&sd), T);
    assert_eq!(c, 0);
    assert!(
        out.contains(
            "\"sd_notify\":{\"status\":\"serving 3 clients\",\"phase\":\"\",\"main_pid\":null}"
        ),
        "{out}"
    );
    assert!(!sup.err().contains("warning"), "{}", sup.err());
    sup.stop();
}

#[test]
fn runit_layout_readiness_for_rsvc() {
    if !have_refs(&["systemd-notify", "sv"]) {
        return;
    }
    let t = TempDir::new("sdn-runit");
    let sd = t.path().join("svc");
    fs::create_dir(&sd).unwrap();
    fs::write(sd.join("notify-socket"), "").unwrap();
    script(
        &sd.join("run"),
        "#!/bin/sh\nsleep 0.3\nsystemd-notify --ready\nexec sleep 1000\n",
    );
    let sup = Sup::start("runit", t.path(), "svc");
    let (c, _, err) = run(
        Command::new(bin("rsvc"))
            .args(["-wU", "-T", "10000", "-u"])
            .arg(&sd),
        T,
    );
    assert_eq!(c, 0, "{err}");
    wait_state(&sd, "ready", |s| s.ready);
    let (c, out, _) = run(Command::new("sv").arg("status").arg(&sd), T);
    assert_eq!(c, 0);
    assert!(out.starts_with("run: "), "{out}");
    sup.stop();
}

#[test]
fn status_phases_main_pid_and_bad_datagrams() {
    let t = TempDir::new("sdn-msgs");
    let sd = t.path().join("svc");
    fs::create_dir(&sd).unwrap();
    py_service(&sd, "");
    let sup = Sup::start("s6", t.path(), "svc");
    let pid = wait_up(&sd, None);
    wait_for(T, "env", || fs::read_to_string(sd.join("environ")).ok());
    let env = fs::read_to_string(sd.join("environ")).unwrap();
    assert!(env.contains("NOTIFY_SOCKET=@rsv/notify/"), "{env}");
    assert!(env.contains("WATCHDOG_USEC=\n"), "{env}");

    command(&sd, "send READY=1\\nSTATUS=loading\n");
    wait_state(&sd, "ready", |s| s.ready && s.sd_status == "loading");
    command(&sd, "send RELOADING=1\\nSTATUS=reloading config\n");
    wait_state(&sd, "reloading", |s| s.sd_phase == "reloading");
    assert!(rsvstat_line(&sd).contains(", reloading, status: reloading config"));
    command(&sd, "send READY=1\n");
    wait_state(&sd, "reloaded", |s| s.sd_phase.is_empty());
    command(&sd, "send STOPPING=1\n");
    wait_state(&sd, "stopping", |s| s.sd_phase == "stopping");

    // MAINPID= naming a child of the service is honoured.
    command(&sd, "child\n");
    let child: i32 = fs::read_to_string(sd.join("child"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let st = wait_state(&sd, "main pid", |s| s.main_pid != 0);
    assert_eq!(st.main_pid, child);
    assert!(rsvstat_line(&sd).contains(&format!("main pid {child}")));
    // ... one naming a process outside it is not.
    command(
        &sd,
        &format!(
            "send MAINPID={}\\nSTATUS=after bad pid\n",
            std::process::id()
        ),
    );
    let st = wait_state(&sd, "status", |s| s.sd_status == "after bad pid");
    assert_eq!(st.main_pid, child);
    assert!(sup.err().contains("ignoring MAINPID="), "{}", sup.err());

    // Oversized and malformed datagrams: ignored whole, one warning for each kind.
    command(
        &sd,
        "big 5000\nraw 5354415455533d780a00\nsend garbage\nbig 9000\nsend no equals sign\nsend STATUS=still fine\n",
    );
    wait_state(&sd, "status", |s| s.sd_status == "still fine");
    let err = sup.err();
    assert_eq!(err.matches("longer than 4096 bytes").count(), 1, "{err}");
    assert_eq!(err.matches("not text").count(), 1, "{err}");
    assert_eq!(err.matches("malformed line").count(), 1, "{err}");

    // A datagram from a process outside the service is refused, with one warning.
    let addr = fs::read_to_string(sd.join("environ")).unwrap();
    let addr = addr
        .lines()
        .next()
        .unwrap()
        .strip_prefix("NOTIFY_SOCKET=@")
        .unwrap()
        .to_string();
    let foreign = |text: &[u8]| {
        use std::os::linux::net::SocketAddrExt;
        let to = std::os::unix::net::SocketAddr::from_abstract_name(addr.as_bytes()).unwrap();
        let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
        s.send_to_addr(text, &to).unwrap();
    };
    foreign(b"STATUS=hijacked");
    foreign(b"STATUS=hijacked again");
    command(&sd, "send STATUS=mine\n");
    wait_state(&sd, "status", |s| s.sd_status == "mine");
    let err = sup.err();
    assert_eq!(
        err.matches(&format!("notification from pid {}", std::process::id()))
            .count(),
        1,
        "{err}"
    );
    assert_eq!(wait_up(&sd, None), pid, "the service was restarted");

    // A stop reaches the main process too; a new run starts with a clean slate.
    let (c, _, e) = run(
        Command::new(bin("rsvc"))
            .args(["-wd", "-T", "10000", "-d"])
            .arg(&sd),
        T,
    );
    assert_eq!(c, 0, "{e}");
    wait_for(T, "the main pid to get the signal", || {
        (!alive(child)).then_some(())
    });
    let before = state(&sd).expect("rsv-state").restarts;
    let (c, _, e) = run(
        Command::new(bin("rsvc"))
            .args(["-wu", "-T", "10000", "-u"])
            .arg(&sd),
        T,
    );
    assert_eq!(c, 0, "{e}");
    // The new run's state (the down state before it is not ready either).
    let st = wait_state(&sd, "fresh state", |s| s.restarts > before && !s.ready);
    assert!(
        st.sd_status.is_empty() && st.sd_phase.is_empty() && st.main_pid == 0,
        "{st:?}"
    );
    sup.stop();
}

#[test]
fn forking_daemon_is_followed_through_mainpid() {
    let t = TempDir::new("sdn-fork");
    let sd = t.path().join("svc");
    fs::create_dir(&sd).unwrap();
    py_service(&sd, "notify.sock");
    script(
        &sd.join("finish"),
        "#!/bin/sh\necho \"$1 $2\" >> finished\n",
    );
    let sup = Sup::start("s6", t.path(), "svc");
    let run_pid = wait_up(&sd, None);
    wait_for(T, "env", || fs::read_to_string(sd.join("environ")).ok());
    let env = fs::read_to_string(sd.join("environ")).unwrap();
    assert!(
        env.contains(&format!(
            "NOTIFY_SOCKET={}",
            sd.join("notify.sock").display()
        )),
        "{env}"
    );
    command(&sd, "daemonize\n");
    let daemon: i32 = wait_for(T, "daemon pid", || {
        fs::read_to_string(sd.join("child"))
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    // run exits; the daemon it named is the service now: same up, no restart, no finish.
    let now_pid = wait_for(T, "the status to show the daemon", || {
        let p = pid_of(&sd)?;
        (p == daemon).then_some(p)
    });
    assert!(!alive(run_pid));
    let st = state(&sd).unwrap();
    assert!(st.ready && st.restarts == 0, "{st:?}");
    assert!(!sd.join("finished").exists());
    let (c, out, _) = run(
        Command::new("ps").args(["-o", "ppid=", "-p", &now_pid.to_string()]),
        T,
    );
    assert_eq!((c, out.trim()), (0, sup.g.pid().to_string().as_str()));
    // Stopping it stops the daemon; its death is the service's.
    let (c, _, e) = run(
        Command::new(bin("rsvc"))
            .args(["-wD", "-T", "10000", "-d"])
            .arg(&sd),
        T,
    );
    assert_eq!(c, 0, "{e}");
    assert!(!alive(daemon));
    assert_eq!(finish_line(&sd, 1), "256 15");
    sup.stop();
}

#[test]
fn watchdog_restarts_a_silent_service() {
    let t = TempDir::new("sdn-wd");
    let sd = t.path().join("svc");
    fs::create_dir(&sd).unwrap();
    py_service(&sd, "");
    fs::write(sd.join("watchdog-usec"), "1000000\n").unwrap();
    let sup = Sup::start("s6", t.path(), "svc");
    let pid = wait_up(&sd, None);
    wait_for(T, "env", || fs::read_to_string(sd.join("environ")).ok());
    assert!(
        fs::read_to_string(sd.join("environ"))
            .unwrap()
            .contains("WATCHDOG_USEC=1000000\n")
    );
    command(&sd, "send READY=1\nping on\n");
    // Pinging every 100 ms: still the same process 2.5 s later.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        pid_of(&sd),
        Some(pid),
        "restarted while pinging: {}",
        sup.err()
    );
    let _ = fs::remove_file(sd.join("environ"));
    command(&sd, "ping off\n");
    let stopped = Instant::now();
    let new = wait_up(&sd, Some(pid));
    assert!(
        stopped.elapsed() >= Duration::from_millis(900),
        "{:?}",
        stopped.elapsed()
    );
    assert!(sup.err().contains("watchdog timeout"), "{}", sup.err());
    assert!(!alive(pid));
    // WATCHDOG=trigger restarts at once: so soon that the service may be killed before it
    // removes its command file (the next run would then read it again), so wait for the
    // restart, not for the file, and take the file away.
    wait_for(T, "env", || fs::read_to_string(sd.join("environ")).ok());
    fs::write(sd.join("cmd.tmp"), "send WATCHDOG=trigger\n").unwrap();
    fs::rename(sd.join("cmd.tmp"), sd.join("cmd")).unwrap();
    wait_up(&sd, Some(new));
    let _ = fs::remove_file(sd.join("cmd"));
    sup.stop();
}

#[test]
fn nothing_without_notify_socket() {
    let t = TempDir::new("sdn-none");
    let plain = t.path().join("plain");
    let with = t.path().join("with");
    for sd in [&plain, &with] {
        fs::create_dir(sd).unwrap();
        script(
            &sd.join("run"),
            "#!/bin/sh\nenv > environ.tmp\nmv environ.tmp environ\nexec sleep 1000\n",
        );
    }
    fs::write(with.join("notify-socket"), "").unwrap();
    let a = Sup::start("s6", t.path(), "plain");
    let b = Sup::start("s6", t.path(), "with");
    for sd in [&plain, &with] {
        wait_up(sd, None);
        wait_for(T, "env", || fs::read_to_string(sd.join("environ")).ok());
    }
    assert!(
        !fs::read_to_string(plain.join("environ"))
            .unwrap()
            .contains("NOTIFY_SOCKET")
    );
    assert!(
        fs::read_to_string(with.join("environ"))
            .unwrap()
            .contains("NOTIFY_SOCKET=@")
    );
    assert_eq!(sockets(b.g.pid()), sockets(a.g.pid()) + 1);
    // The plain one is ready as soon as it is up (no readiness protocol).
    assert!(wait_state(&plain, "state", |_| true).ready);
    assert!(!wait_state(&with, "state", |_| true).ready);
    a.stop();
    b.stop();
}

#[test]
fn our_systemd_notify_for_images_without_systemd() {
    let t = TempDir::new("sdn-ours");
    let bindir = t.path().join("bin");
    fs::create_dir(&bindir).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_systemctl"),
        bindir.join("systemd-notify"),
    )
    .unwrap();
    let sd = t.path().join("svc");
    fs::create_dir(&sd).unwrap();
    fs::write(sd.join("notify-socket"), "").unwrap();
    // Called as a child of run (as a script does), then exec'd as run itself.
    script(
        &sd.join("run"),
        &format!(
            "#!/bin/sh\n{0}/systemd-notify --status=starting; echo $? > rc1\nsleep 0.2 &\n{0}/systemd-notify --ready --pid=$! STATUS=ready; echo $? > rc2\nexec sleep 1000\n",
            bindir.display()
        ),
    );
    let sup = Sup::start("s6", t.path(), "svc");
    let st = wait_state(&sd, "ready", |s| s.ready && s.sd_status == "ready");
    // The exit codes are written once each notifier has returned, maybe after the state.
    for f in ["rc1", "rc2"] {
        let rc = wait_for(T, f, || {
            fs::read_to_string(sd.join(f))
                .ok()
                .filter(|s| s.ends_with('\n'))
        });
        assert_eq!(rc, "0\n", "{f}");
    }
    // MAINPID named the background sleep, a child of run.
    assert!(st.main_pid > 0, "{st:?}");
    assert!(!sup.err().contains("warning"), "{}", sup.err());
    let (c, _, e) = run(
        Command::new(bindir.join("systemd-notify")).arg("--ready"),
        T,
    );
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("NOTIFY_SOCKET is not set"), "{e}");
    sup.stop();
}
