//! rsvscan not as PID 1 (an ordinary child, as under a shell): SIGINT (Ctrl-C) stops every
//! service with its own down-signal, the logger writes the last line its service wrote before
//! it exits, and orphans of services come to rsvscan (child subreaper) and are reaped.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Guard, TempDir, alive, bin, script, wait_for};

const LIMIT: Duration = Duration::from_secs(10);

/// rsvscan under test. If a test fails before stopping it, dropping it still stops it in
/// order (SIGTERM), so its supervisors and services do not outlive the test.
struct Scan(Guard);

impl std::ops::Deref for Scan {
    type Target = Guard;
    fn deref(&self) -> &Guard {
        &self.0
    }
}

impl std::ops::DerefMut for Scan {
    fn deref_mut(&mut self) -> &mut Guard {
        &mut self.0
    }
}

impl Drop for Scan {
    fn drop(&mut self) {
        let Some(c) = self.0.0.as_mut() else { return };
        if c.try_wait().ok().flatten().is_some() {
            return;
        }
        // SAFETY: kill(2) on the pid of our child, not yet reaped.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let end = std::time::Instant::now() + LIMIT;
        while std::time::Instant::now() < end && c.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn start(dir: &Path, args: &[&str], err: &Path) -> Scan {
    Scan(Guard::spawn(
        Command::new(bin("rsvscan"))
            .arg("--supervisor")
            .arg(bin("rsupervise"))
            .args(args)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(err).unwrap()),
    ))
}

fn status_pid(sd: &Path) -> Option<i32> {
    let v = rsv::svview::View::read(sd).ok()?;
    (v.up && v.pid > 0).then_some(v.pid as i32)
}

fn ppid(pid: i32) -> Option<i32> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn sigint_stops_with_down_signal_and_the_logger_drains() {
    for compat in ["s6", "runit"] {
        let t = TempDir::new(&format!("scanint-{compat}"));
        let dir = t.path().join("service");
        let out = t.path().join("logged");
        // The service stops on HUP only (its down-signal), writing a last line as it goes.
        script(
            &dir.join("a/run"),
            "#!/bin/sh\ntrap 'echo got-hup; exit 0' HUP\ntrap '' TERM\necho started\nwhile :; do sleep 0.05; done\n",
        );
        fs::write(dir.join("a/down-signal"), "SIGHUP\n").unwrap();
        // The logger appends what it reads, and exits only at the end of its input.
        script(
            &dir.join("a/log/run"),
            &format!("#!/bin/sh\nexec cat >> {}\n", out.display()),
        );
        let mut g = start(&dir, &["--compat", compat], &t.path().join("err"));
        let run_pid = wait_for(LIMIT, "a up", || status_pid(&dir.join("a")));
        let log_pid = wait_for(LIMIT, "a/log up", || status_pid(&dir.join("a/log")));
        wait_for(LIMIT, "first line logged", || {
            (fs::read_to_string(&out).ok()? == "started\n").then_some(())
        });
        g.signal(libc::SIGINT);
        let st = g.wait_exit(LIMIT);
        let err = fs::read_to_string(t.path().join("err")).unwrap_or_default();
        assert_eq!(st.code(), Some(0), "{compat}: {err}");
        // TERM is ignored by run: only the down-signal can have stopped it, and the line it
        // wrote on the way out went through the pipe into the logger's file.
        assert_eq!(
            fs::read_to_string(&out).unwrap(),
            "started\ngot-hup\n",
            "{compat}: {err}"
        );
        assert!(!alive(run_pid) && !alive(log_pid), "{compat}");
    }
}

#[test]
fn orphans_of_services_are_reaped_when_not_pid1() {
    let t = TempDir::new("scan-subreaper");
    let dir = t.path().join("service");
    let mark = t.path().join("orphan");
    // run leaves a grandchild behind: its parent (a subshell) exits at once.
    script(
        &dir.join("a/run"),
        &format!(
            "#!/bin/sh\n( sleep 0.5 & echo $! > {} )\nexec sleep 1000\n",
            mark.display()
        ),
    );
    let mut g = start(&dir, &[], &t.path().join("err"));
    let orphan: i32 = wait_for(LIMIT, "orphan pid", || {
        fs::read_to_string(&mark).ok()?.trim().parse().ok()
    });
    // Reparented to the nearest subreaper: rsvscan (or rsupervise if it is one too).
    let scan = g.pid();
    // (The subshell that wrote the pid may not have exited yet: wait for it to go.)
    let parent = wait_for(LIMIT, "orphan reparented", || {
        ppid(orphan).filter(|&p| {
            p != 1 && Some(p) != status_pid(&dir.join("a")) && ppid(p) != status_pid(&dir.join("a"))
        })
    });
    assert!(
        parent == scan || ppid(parent) == Some(scan),
        "orphan {orphan} went to {parent}, not under rsvscan {scan}"
    );
    // When it ends, it is reaped: its /proc entry goes (a zombie would keep it).
    wait_for(LIMIT, "orphan reaped", || {
        fs::metadata(format!("/proc/{orphan}"))
            .is_err()
            .then_some(())
    });
    g.signal(libc::SIGTERM);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
}

/// `-t MSECS`: the periodic rescan is the safety net for what inotify cannot see, such as the
/// target of a broken symlink coming into existence outside the scan dir. Without `-t`, it is
/// not seen (no periodic scan by default).
#[test]
fn periodic_rescan_picks_up_what_inotify_cannot_see() {
    let t = TempDir::new("scan-rescan");
    let stage = t.path().join("stage");
    fs::create_dir_all(&stage).unwrap();
    let mut scans = Vec::new();
    for (name, args) in [("with-t", &["-t", "200"][..]), ("without-t", &[][..])] {
        let dir = t.path().join(name);
        fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(stage.join(name), dir.join("d")).unwrap();
        let err = t.path().join(format!("err-{name}"));
        let g = start(&dir, args, &err);
        // The broken symlink is reported (once) before its target appears.
        wait_for(LIMIT, "broken symlink reported", || {
            fs::read_to_string(&err)
                .ok()?
                .contains("unable to stat")
                .then_some(())
        });
        scans.push((g, dir, err));
    }
    for name in ["with-t", "without-t"] {
        script(
            &stage.join(name).join("run"),
            "#!/bin/sh\nexec sleep 1000\n",
        );
    }
    let up = wait_for(LIMIT, "picked up by the periodic rescan", || {
        status_pid(&stage.join("with-t"))
    });
    assert!(alive(up));
    // The one without -t had the same time (and more): nothing started there.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!stage.join("without-t/supervise").exists());
    for (mut g, _, err) in scans {
        let text = fs::read_to_string(&err).unwrap();
        assert_eq!(text.matches("unable to stat").count(), 1, "{text}");
        g.signal(libc::SIGTERM);
        assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
    }
    assert!(!alive(up));
}

/// runsvdir drop-in in an existing runit image: runit's own svlogd as `log/run` keeps working
/// (its lines arrive, stamped), and runit's sv sees the service and its logger.
#[test]
fn runit_image_with_real_svlogd() {
    if !common::have_refs(&["svlogd", "sv"]) {
        return;
    }
    let t = TempDir::new("scan-svlogd");
    let dir = t.path().join("service");
    script(
        &dir.join("a/run"),
        "#!/bin/sh\nfor i in 1 2 3; do echo line $i; done\nexec sleep 1000\n",
    );
    script(
        &dir.join("a/log/run"),
        "#!/bin/sh\nexec svlogd -tt ./main\n",
    );
    fs::create_dir_all(dir.join("a/log/main")).unwrap();
    let link = t.path().join("runsvdir");
    std::os::unix::fs::symlink(bin("rsvscan"), &link).unwrap();
    let mut g = Scan(Guard::spawn(
        Command::new(&link)
            .arg(&dir)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin("rsupervise").parent().unwrap().display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    ));
    let cur = dir.join("a/log/main/current");
    let text = wait_for(LIMIT, "svlogd wrote the three lines", || {
        let c = fs::read_to_string(&cur).ok()?;
        (c.lines().count() == 3).then_some(c)
    });
    for (i, l) in text.lines().enumerate() {
        // -tt: "YYYY-MM-DD_HH:MM:SS.xxxxx line N"
        assert!(
            l.len() == 25 + " line 1".len() && l.ends_with(&format!(" line {}", i + 1)),
            "{text}"
        );
    }
    let (c, o, _) = common::run(Command::new("sv").arg("status").arg(dir.join("a")), LIMIT);
    assert_eq!(c, 0, "{o}");
    assert!(
        o.starts_with(&format!("run: {}: (pid ", dir.join("a").display()))
            && o.contains("; run: log: (pid "),
        "{o}"
    );
    g.signal(libc::SIGTERM);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
}

/// A new service whose `run` is created before it is made executable (what writing a file
/// then chmod-ing it does): rsvscan waits for the executable bit instead of starting a
/// supervisor that would fail to exec it (and, in s6 mode, wait 10 s before trying again).
#[test]
fn run_not_yet_executable_is_started_once_it_is() {
    let t = TempDir::new("scan-noexec");
    let dir = t.path().join("service");
    fs::create_dir_all(&dir).unwrap();
    let err = t.path().join("err");
    let mut g = start(&dir, &[], &err);
    let sd = dir.join("d");
    fs::create_dir(&sd).unwrap();
    fs::write(sd.join("run"), "#!/bin/sh\nexec sleep 1000\n").unwrap();
    wait_for(LIMIT, "warning about run", || {
        fs::read_to_string(&err)
            .ok()?
            .contains("/d/run is not executable: waiting until it is\n")
            .then_some(())
    });
    assert!(!sd.join("supervise").exists());
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(sd.join("run"), fs::Permissions::from_mode(0o755)).unwrap();
    let pid = wait_for(Duration::from_secs(5), "d up", || status_pid(&sd));
    assert!(alive(pid));
    let text = fs::read_to_string(&err).unwrap();
    assert!(!text.contains("unable to start run"), "{text}");
    g.signal(libc::SIGTERM);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
}

/// A run script that traps SIGTERM and exits leaves its background child behind, holding the
/// service's end of the logger's pipe: the child gets SIGTERM during the stop (not only after
/// every supervisor has exited), so the logger sees end of file, drains, and the stop ends in
/// order (exit 0) long before the bound.
#[test]
fn leftover_holding_the_log_pipe_does_not_hold_up_the_stop() {
    for compat in ["s6", "runit"] {
        let t = TempDir::new(&format!("scan-leftover-{compat}"));
        let dir = t.path().join("service");
        let out = t.path().join("logged");
        script(
            &dir.join("a/run"),
            "#!/bin/sh\ntrap 'echo last words; exit 0' TERM\necho started\nsleep 1000 &\nwait\n",
        );
        script(
            &dir.join("a/log/run"),
            &format!("#!/bin/sh\nexec cat >> {}\n", out.display()),
        );
        let mut g = start(
            &dir,
            &["--compat", compat, "-T", "5000"],
            &t.path().join("err"),
        );
        wait_for(LIMIT, "first line logged", || {
            (fs::read_to_string(&out).ok()? == "started\n").then_some(())
        });
        let t0 = std::time::Instant::now();
        g.signal(libc::SIGTERM);
        let st = g.wait_exit(LIMIT);
        let took = t0.elapsed();
        let err = fs::read_to_string(t.path().join("err")).unwrap_or_default();
        assert_eq!(st.code(), Some(0), "{compat}: {err}");
        assert!(
            took < Duration::from_secs(3),
            "{compat}: stop took {took:?}"
        );
        assert_eq!(
            fs::read_to_string(&out).unwrap(),
            "started\nlast words\n",
            "{compat}"
        );
    }
}
