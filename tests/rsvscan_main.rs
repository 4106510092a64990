//! rsvscan with a main command (`rsvscan DIR -- CMD`), as a plain init (`rsvscan -- CMD`),
//! with `--wait-ready`, and with essential services; each run is PID 1 of its own pid
//! namespace.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use scan::*;

const SEC: Duration = Duration::from_secs(1);

/// `unshare --pid --fork --mount-proc --kill-child rsvscan ARGS` with cwd `cwd`.
fn ns_cmd(cwd: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(bin("rsvscan"))
        .args(args)
        .current_dir(cwd);
    c
}

/// rsvscan started in the background as PID 1 of a new namespace; killed on drop.
struct Bg {
    guard: Guard,
    /// Host pid of rsvscan.
    init: i32,
}

impl Bg {
    fn start(cmd: &mut Command, err: &Path) -> Bg {
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(err.with_extension("out")).unwrap())
            .stderr(fs::File::create(err).unwrap());
        let guard = Guard::spawn(cmd);
        let up = guard.pid();
        let init = wait_for(5 * SEC, "rsvscan as PID 1", || child_of(up));
        Bg { guard, init }
    }
    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on rsvscan, a process this test started.
        unsafe {
            libc::kill(self.init, sig);
        }
    }
    fn wait_code(&mut self, limit: Duration) -> i32 {
        self.guard.wait_exit(limit).code().unwrap_or(-1)
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        kill_pid(self.init);
    }
}

/// A service that leaves `NAME.up` next to the scan dir and sleeps, and whose finish leaves
/// `NAME.finished` there.
fn sleeper_with_finish(scan: &Path, name: &str) {
    let sd = scan.join(name);
    script(
        &sd.join("run"),
        &format!("#!/bin/sh\necho > ../../{name}.up\nexec sleep 1000\n"),
    );
    script(
        &sd.join("finish"),
        &format!("#!/bin/sh\necho \"$@\" > ../../{name}.finished\n"),
    );
}

fn wait_file(p: &Path, limit: Duration) -> String {
    wait_for(limit, &format!("{}", p.display()), || {
        fs::read_to_string(p).ok().filter(|s| s.ends_with('\n'))
    })
}

#[test]
fn exit_code_is_the_main_commands() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("main-codes");
    let svc = t.path().join("svc");
    sleeper_with_finish(&svc, "a");
    for (cmd, want) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("kill -USR1 $$; sleep 5", 128 + libc::SIGUSR1),
        ("kill -KILL $$", 128 + libc::SIGKILL),
    ] {
        for f in ["a.finished", "a.up"] {
            let _ = fs::remove_file(t.path().join(f));
        }
        // CMD waits for the service to be up, so that there is something to stop.
        let full = format!(
            "while [ ! -e a.up ]; do sleep 0.02; done; echo \"$(pwd) $RSV_TEST_VAR\"; {cmd}"
        );
        let (code, out, err) = run(
            ns_cmd(t.path(), &["-T", "3000", "svc", "--", "sh", "-c", &full])
                .env("RSV_TEST_VAR", "inherited"),
            20 * SEC,
        );
        assert_eq!(code, want, "{cmd}: {err}");
        // CMD ran in rsvscan's working directory (not the scan dir) with its environment
        // and stdio.
        assert_eq!(out, format!("{} inherited\n", t.path().display()), "{cmd}");
        // The services were stopped in order (finish ran) before rsvscan exited.
        let fin = fs::read_to_string(t.path().join("a.finished")).unwrap_or_default();
        assert!(
            fin.starts_with("256 15"),
            "{cmd}: finish args {fin:?}; {err}"
        );
    }
    // A command that does not exist: 127, one line naming it.
    let (code, _, err) = run(
        &mut ns_cmd(t.path(), &["svc", "--", "./no-such-program"]),
        20 * SEC,
    );
    assert_eq!(code, 127, "{err}");
    assert!(
        err.contains("rsvscan: fatal: unable to run ./no-such-program: "),
        "{err}"
    );
}

#[test]
fn signals_are_forwarded_to_the_main_command() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("main-signals");
    let svc = t.path().join("svc");
    sleeper_with_finish(&svc, "a");
    sleeper_with_finish(&svc, "b");
    let rec = t.path().join("rec");
    let body = format!(
        "trap 'echo USR1 >> {r}' USR1\ntrap 'echo HUP >> {r}' HUP\n\
         trap 'echo TERM >> {r}; exit 42' TERM\necho started >> {r}\n\
         while :; do sleep 0.05; done\n",
        r = rec.display()
    );
    script(&t.path().join("cmd"), &format!("#!/bin/sh\n{body}"));
    let mut bg = Bg::start(
        &mut ns_cmd(t.path(), &["svc", "--", "./cmd"]),
        &t.path().join("err"),
    );
    wait_file(&rec, 10 * SEC);
    wait_up(&svc.join("a"), 10 * SEC);
    wait_up(&svc.join("b"), 10 * SEC);
    bg.signal(libc::SIGUSR1);
    wait_for(5 * SEC, "USR1 recorded", || {
        fs::read_to_string(&rec).ok().filter(|s| s.contains("USR1"))
    });
    // HUP would make the scanner rescan; it goes to CMD instead.
    bg.signal(libc::SIGHUP);
    wait_for(5 * SEC, "HUP recorded", || {
        fs::read_to_string(&rec).ok().filter(|s| s.contains("HUP"))
    });
    // The services are still up: the signals did not stop anything.
    assert!(!t.path().join("a.finished").exists());
    bg.signal(libc::SIGTERM);
    let code = bg.wait_code(15 * SEC);
    let err = fs::read_to_string(t.path().join("err")).unwrap_or_default();
    assert_eq!(code, 42, "{err}");
    assert_eq!(
        fs::read_to_string(&rec).unwrap(),
        "started\nUSR1\nHUP\nTERM\n"
    );
    for s in ["a", "b"] {
        assert!(
            t.path().join(format!("{s}.finished")).exists(),
            "finish of {s} did not run; {err}"
        );
    }
}

/// Ctrl-C on the terminal reaches CMD (its process group is the foreground group), not
/// rsvscan.
#[test]
fn ctrl_c_on_the_terminal_reaches_the_main_command() {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("main-tty");
    let svc = t.path().join("svc");
    sleeper_with_finish(&svc, "a");
    let rec = t.path().join("rec");
    script(
        &t.path().join("cmd"),
        &format!(
            "#!/bin/sh\ntrap 'echo INT >> {r}; exit 9' INT\necho started >> {r}\n\
             while :; do sleep 0.05; done\n",
            r = rec.display()
        ),
    );
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut cmd = ns_cmd(t.path(), &["svc", "--", "./cmd"]);
    cmd.stdin(fs::File::from(pty.slave.try_clone().unwrap()))
        .stdout(fs::File::from(pty.slave.try_clone().unwrap()))
        .stderr(fs::File::create(t.path().join("err")).unwrap());
    // SAFETY: setsid and ioctl(TIOCSCTTY) between fork and exec, both async-signal-safe:
    // the pty becomes the controlling terminal of a new session, as in a container with -t.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let guard = Guard::spawn(&mut cmd);
    drop(pty.slave);
    let init = wait_for(5 * SEC, "rsvscan as PID 1", || child_of(guard.pid()));
    let mut bg = Bg { guard, init };
    wait_file(&rec, 10 * SEC);
    wait_up(&svc.join("a"), 10 * SEC);
    // Keep the master drained so that nothing blocks on terminal output.
    let mut master = fs::File::from(pty.master);
    let mut reader = master.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 512];
        while matches!(std::io::Read::read(&mut reader, &mut b), Ok(n) if n > 0) {}
    });
    master.write_all(b"\x03").unwrap();
    let code = bg.wait_code(15 * SEC);
    let err = fs::read_to_string(t.path().join("err")).unwrap_or_default();
    assert_eq!(code, 9, "{err}");
    assert_eq!(fs::read_to_string(&rec).unwrap(), "started\nINT\n");
    assert!(t.path().join("a.finished").exists(), "{err}");
}

#[test]
fn plain_init_reaps_forwards_and_ends_leftovers() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("plain-init");
    let d = t.path();
    // CMD double-forks a short-lived process (which becomes rsvscan's child and must be
    // reaped, or it stays a zombie and the loop never ends), leaves behind a process that
    // records the SIGTERM it gets, waits for USR1 and exits 5.
    script(
        &d.join("cmd"),
        "#!/bin/sh\n\
         got=\ntrap 'got=1' USR1\n\
         (sleep 0.2 & echo $! > zpid)\n\
         (trap 'echo TERM > leftover.term; exit 0' TERM; echo > leftover.up; \
          while :; do sleep 0.05; done) &\n\
         while [ ! -e leftover.up ]; do sleep 0.02; done\n\
         z=$(cat zpid)\n\
         while [ -e /proc/$z ]; do sleep 0.02; done\n\
         echo reaped > state\n\
         while [ -z \"$got\" ]; do sleep 0.02; done\n\
         exit 5\n",
    );
    let mut bg = Bg::start(
        &mut ns_cmd(d, &["-T", "3000", "--", "./cmd"]),
        &d.join("err"),
    );
    wait_for(10 * SEC, "double-forked zombie reaped", || {
        fs::read_to_string(d.join("state")).ok()
    });
    // No scan dir, no control dir.
    assert!(!d.join(".s6-svscan").exists());
    bg.signal(libc::SIGUSR1);
    let code = bg.wait_code(15 * SEC);
    let err = fs::read_to_string(d.join("err")).unwrap_or_default();
    assert_eq!(code, 5, "{err}");
    assert_eq!(
        fs::read_to_string(d.join("leftover.term")).unwrap_or_default(),
        "TERM\n",
        "the leftover process did not get SIGTERM; {err}"
    );
}

#[test]
fn plain_init_kills_leftovers_after_the_bound() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("plain-init-bound");
    let d = t.path();
    // A leftover that ignores SIGTERM: SIGKILL after -T; the exit code stays CMD's.
    script(
        &d.join("cmd"),
        "#!/bin/sh\n(trap '' TERM; echo > up; exec sleep 1000) &\n\
         while [ ! -e up ]; do sleep 0.02; done\nkill -TERM $$\n",
    );
    let t0 = std::time::Instant::now();
    let (code, _, err) = run(&mut ns_cmd(d, &["-T", "500", "--", "./cmd"]), 20 * SEC);
    assert_eq!(code, 128 + libc::SIGTERM, "{err}");
    assert!(err.contains("shutdown bound of 500 ms exceeded"), "{err}");
    assert!(t0.elapsed() < 10 * SEC);
}

/// A service with a notification fd that becomes ready 300 ms after its start, leaving a
/// marker just before it notifies.
fn slow_ready(scan: &Path, name: &str, marker: &Path, delay: &str) {
    let sd = scan.join(name);
    fs::create_dir_all(&sd).unwrap();
    fs::write(sd.join("notification-fd"), "3\n").unwrap();
    script(
        &sd.join("run"),
        &format!(
            "#!/bin/sh\nsleep {delay}\necho > {m}\necho >&3\nexec sleep 1000 3>&-\n",
            m = marker.display()
        ),
    );
    script(
        &sd.join("finish"),
        &format!("#!/bin/sh\necho \"$@\" > ../../{name}.finished\n"),
    );
}

#[test]
fn wait_ready_starts_the_command_once_services_are_ready() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("wait-ready");
    let svc = t.path().join("svc");
    let marker = t.path().join("ready-marker");
    slow_ready(&svc, "r", &marker, "0.3");
    sleeper_with_finish(&svc, "plain");
    // A service that is down by default is not waited for.
    sleeper_with_finish(&svc, "off");
    fs::write(svc.join("off/down"), "").unwrap();
    let check = format!("test -e {}", marker.display());
    // Without --wait-ready, CMD starts at once and does not see the marker: the check can
    // fail.
    let (code, _, err) = run(
        &mut ns_cmd(t.path(), &["svc", "--", "sh", "-c", &check]),
        20 * SEC,
    );
    assert_eq!(code, 1, "{err}");
    let _ = fs::remove_file(&marker);
    for mode in ["s6", "runit"] {
        let _ = fs::remove_file(&marker);
        let (code, _, err) = run(
            &mut ns_cmd(
                t.path(),
                &[
                    "--compat",
                    mode,
                    "--wait-ready",
                    "10000",
                    "svc",
                    "--",
                    "sh",
                    "-c",
                    &check,
                ],
            ),
            30 * SEC,
        );
        // In runit mode there is no readiness flag: up counts as ready, so only the s6
        // run is meaningful for the marker; both must start CMD and exit with its code.
        if mode == "s6" {
            assert_eq!(code, 0, "{mode}: {err}");
        } else {
            assert!(code == 0 || code == 1, "{mode}: {code} {err}");
        }
    }
}

#[test]
fn wait_ready_bound_fails_the_start() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("wait-ready-bound");
    let svc = t.path().join("svc");
    let marker = t.path().join("never");
    slow_ready(&svc, "slow", &marker, "1000");
    sleeper_with_finish(&svc, "fine");
    let ran = t.path().join("cmd-ran");
    let body = format!("echo > {}", ran.display());
    let t0 = std::time::Instant::now();
    let (code, _, err) = run(
        &mut ns_cmd(
            t.path(),
            &["--wait-ready", "500", "svc", "--", "sh", "-c", &body],
        ),
        20 * SEC,
    );
    assert_eq!(code, 111, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("not ready")).collect();
    assert_eq!(
        lines,
        vec!["rsvscan: fatal: not ready after 500 ms: svc/slow"],
        "{err}"
    );
    assert!(!ran.exists(), "CMD must not start");
    assert!(
        t.path().join("slow.finished").exists(),
        "services stopped: {err}"
    );
    assert!(
        t.path().join("fine.finished").exists(),
        "services stopped: {err}"
    );
    assert!(t0.elapsed() < 10 * SEC);
}

/// A stub supervisor for service `ess` that behaves like rsupervise after an essential
/// service's final stop: writes `final_exit 7` to rsv-state and exits 99. Other services get
/// the real rsupervise.
fn stub_supervisor(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("stub-supervisor");
    script(
        &p,
        &format!(
            "#!/bin/sh\n\
             for a; do name=$a; done\n\
             if [ \"$name\" = ess ]; then\n\
               echo started >> ../ess-starts\n\
               mkdir -p ess/supervise\n\
               printf 'restarts 0\\nessential 1\\nfinal_exit 7\\n' > ess/supervise/rsv-state\n\
               while [ ! -e ../go ]; do sleep 0.02; done\n\
               exit 99\n\
             fi\n\
             exec {} \"$@\"\n",
            bin("rsupervise").display()
        ),
    );
    p
}

#[test]
fn essential_service_takes_everything_down_with_its_code() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("essential");
    let svc = t.path().join("svc");
    script(&svc.join("ess/run"), "#!/bin/sh\nexit 7\n");
    fs::write(svc.join("ess/essential"), "").unwrap();
    sleeper_with_finish(&svc, "other");
    let stub = stub_supervisor(t.path());
    let stub = stub.to_str().unwrap();
    let cases: [(&str, Vec<&str>); 3] = [
        ("s6+cmd", vec!["svc", "--", "sleep", "1000"]),
        ("s6", vec!["svc"]),
        ("runit", vec!["--compat", "runit", "svc"]),
    ];
    for (what, extra) in cases {
        for f in ["go", "ess-starts", "other.finished"] {
            let _ = fs::remove_file(t.path().join(f));
        }
        let mut args: Vec<&str> = vec!["--supervisor", stub];
        args.extend(extra);
        let mut bg = Bg::start(&mut ns_cmd(t.path(), &args), &t.path().join("err"));
        wait_up(&svc.join("other"), 10 * SEC);
        fs::write(t.path().join("go"), "").unwrap();
        let code = bg.wait_code(15 * SEC);
        let err = fs::read_to_string(t.path().join("err")).unwrap_or_default();
        assert_eq!(code, 7, "{what}: {err}");
        assert!(
            err.contains("essential service svc/ess stopped for good (exit code 7)"),
            "{what}: {err}"
        );
        assert!(
            t.path().join("other.finished").exists(),
            "{what}: other not stopped in order; {err}"
        );
        // Not restarted.
        assert_eq!(
            fs::read_to_string(t.path().join("ess-starts")).unwrap(),
            "started\n",
            "{what}"
        );
    }
}

/// The same with the real supervisor: `run` ends by itself (exit code or signal), the
/// supervisor exits 99, rsvscan stops the rest in order and exits with the service's code.
#[test]
fn essential_service_end_to_end_with_rsupervise() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("essential-e2e");
    let svc = t.path().join("svc");
    sleeper_with_finish(&svc, "other");
    fs::create_dir_all(svc.join("ess")).unwrap();
    fs::write(svc.join("ess/essential"), "").unwrap();
    let sup = bin("rsupervise");
    let sup = sup.to_str().unwrap();
    let cases: [(&str, &str, i32, Vec<&str>); 3] = [
        ("s6 exit 5", "exit 5", 5, vec!["svc"]),
        (
            "runit exit 5",
            "exit 5",
            5,
            vec!["--compat", "runit", "svc"],
        ),
        (
            "s6 killed by SIGTERM, with CMD",
            "kill -TERM $$",
            143,
            vec!["svc", "--", "sleep", "1000"],
        ),
    ];
    for (what, end, code_want, extra) in cases {
        for f in ["go", "other.finished", "other.up"] {
            let _ = fs::remove_file(t.path().join(f));
        }
        let _ = fs::remove_dir_all(svc.join("ess/supervise"));
        let _ = fs::remove_dir_all(svc.join("other/supervise"));
        script(
            &svc.join("ess/run"),
            &format!("#!/bin/sh\nwhile [ ! -e ../../go ]; do sleep 0.02; done\n{end}\n"),
        );
        let mut args: Vec<&str> = vec!["--supervisor", sup];
        args.extend(extra);
        let mut bg = Bg::start(&mut ns_cmd(t.path(), &args), &t.path().join("err"));
        wait_up(&svc.join("other"), 10 * SEC);
        wait_up(&svc.join("ess"), 10 * SEC);
        fs::write(t.path().join("go"), "").unwrap();
        let code = bg.wait_code(15 * SEC);
        let err = fs::read_to_string(t.path().join("err")).unwrap_or_default();
        assert_eq!(code, code_want, "{what}: {err}");
        let st = rsv::extstate::read(&svc.join("ess/supervise")).unwrap();
        assert_eq!(st.final_exit, Some(code_want), "{what}");
        assert!(st.essential, "{what}");
        assert!(
            t.path().join("other.finished").exists(),
            "{what}: other not stopped in order; {err}"
        );
    }
}

#[test]
fn usage_errors() {
    let t = TempDir::new("main-usage");
    for args in [
        vec!["--"],
        vec!["--wait-ready", "100", "--", "true"],
        vec!["--wait-ready", "100", "svc"],
        vec!["--wait-ready", "x", "svc", "--", "true"],
        vec!["--wait-ready"],
    ] {
        let (code, _, err) = run(
            Command::new(bin("rsvscan"))
                .args(&args)
                .current_dir(t.path()),
            10 * SEC,
        );
        assert_eq!(code, 100, "{args:?}: {err}");
        assert!(err.starts_with("rsvscan: usage: "), "{err}");
    }
    // CMD's arguments need not be UTF-8.
    use std::os::unix::ffi::OsStringExt;
    let bad = OsString::from_vec(b"x\xff".to_vec());
    if !unshare_ok() {
        return;
    }
    let (code, _, err) = run(
        ns_cmd(t.path(), &["--", "sh", "-c", "exit 4"]).arg(bad),
        10 * SEC,
    );
    assert_eq!(code, 4, "{err}");
}

#[test]
fn bound_exceeded_keeps_the_main_commands_code() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("main-bound");
    let svc = t.path().join("svc");
    // A service that ignores SIGTERM: the stop needs the -T bound and SIGKILL.
    script(
        &svc.join("stubborn/run"),
        "#!/bin/sh\ntrap '' TERM\necho > ../../stubborn.up\nwhile :; do sleep 0.05; done\n",
    );
    let t0 = std::time::Instant::now();
    let (code, _, err) = run(
        &mut ns_cmd(
            t.path(),
            &[
                "-T",
                "500",
                "svc",
                "--",
                "sh",
                "-c",
                "while [ ! -e stubborn.up ]; do sleep 0.02; done; exit 3",
            ],
        ),
        20 * SEC,
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("shutdown bound of 500 ms exceeded"), "{err}");
    assert!(t0.elapsed() < 10 * SEC);
}

/// rsvscanctl still works in main-command mode: a stop asked for that way sends CMD
/// SIGTERM with the services, and CMD's own code is the exit code.
#[test]
fn stop_by_control_command_ends_the_main_command() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("main-ctl");
    let svc = t.path().join("svc");
    sleeper_with_finish(&svc, "a");
    script(
        &t.path().join("cmd"),
        "#!/bin/sh\ntrap 'exit 21' TERM\nwhile :; do sleep 0.05; done\n",
    );
    let mut bg = Bg::start(
        &mut ns_cmd(t.path(), &["svc", "--", "./cmd"]),
        &t.path().join("err"),
    );
    wait_listening(&svc);
    wait_up(&svc.join("a"), 10 * SEC);
    let (rc, _, e) = run(
        Command::new(bin("rsvscanctl")).args(["-t"]).arg(&svc),
        5 * SEC,
    );
    assert_eq!(rc, 0, "{e}");
    let code = bg.wait_code(15 * SEC);
    let err = fs::read_to_string(t.path().join("err")).unwrap_or_default();
    assert_eq!(code, 21, "{err}");
    assert!(t.path().join("a.finished").exists(), "{err}");
}

/// servicedirs-examples/main-command behaves as its README says.
#[test]
fn main_command_example_runs() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("main-example");
    let d = copy_example("main-command", &t.path().join("mc"));
    for s in [
        "app",
        "services/db/run",
        "services/db/finish",
        "services/worker/run",
    ] {
        let (rc, _, e) = run(Command::new("sh").arg("-n").arg(d.join(s)), 10 * SEC);
        assert_eq!(rc, 0, "{s}: {e}");
    }
    let path = format!(
        "{}:{}",
        bin("rsvscan").parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (code, out, err) = run(
        ns_cmd(&d, &["--wait-ready", "10000", "services", "--", "./app"])
            .env("PATH", &path)
            .env("DB_DIR", "services/db")
            .env("APP_SECONDS", "1")
            .env("APP_EXIT", "4"),
        30 * SEC,
    );
    assert_eq!(code, 4, "{out}{err}");
    let serving = out.find("app: the db is ready, serving").expect(&out);
    let stopped = out.find("db: stopped (256 15 db)").expect(&out);
    assert!(serving < stopped, "{out}");
    assert!(out.contains("worker: stopped"), "{out}");
    // Without --wait-ready the app starts before the db is ready.
    let (code, out, err) = run(
        ns_cmd(&d, &["services", "--", "./app"])
            .env("PATH", &path)
            .env("DB_DIR", "services/db"),
        30 * SEC,
    );
    assert_eq!(code, 3, "{out}{err}");
}

/// In s6 mode `.s6-svscan/finish` still runs at the end, but the main command's code is
/// kept (finish runs as a child instead of replacing rsvscan).
#[test]
fn s6_finish_runs_and_the_code_is_kept() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("main-finish");
    let svc = t.path().join("svc");
    sleeper_with_finish(&svc, "a");
    script(
        &svc.join(".s6-svscan/finish"),
        "#!/bin/sh\necho finish > ../scanner.finished\nexit 0\n",
    );
    let (code, _, err) = run(
        &mut ns_cmd(
            t.path(),
            &[
                "svc",
                "--",
                "sh",
                "-c",
                "while [ ! -e a.up ]; do sleep 0.02; done; exit 6",
            ],
        ),
        20 * SEC,
    );
    assert_eq!(code, 6, "{err}");
    assert_eq!(
        fs::read_to_string(t.path().join("scanner.finished")).unwrap_or_default(),
        "finish\n",
        "{err}"
    );
    assert!(t.path().join("a.finished").exists());
}
