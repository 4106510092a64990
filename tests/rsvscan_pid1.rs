//! rsvscan as PID 1 of a pid namespace: pick-up, log pipelines, reaping, shutdown, faults.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use scan::*;

const SEC: Duration = Duration::from_secs(1);

fn sleeper(sd: &Path) {
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid of a process the test started (inside its namespace).
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Is the pipe on fd 0 of `pid` empty (FIONREAD through /proc/PID/fd/0)?
fn pipe_empty(pid: i32) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/{pid}/fd/0"))
    else {
        return false;
    };
    let mut n: libc::c_int = -1;
    // SAFETY: FIONREAD writes one int through the pointer.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::FIONREAD, &mut n) };
    r == 0 && n == 0
}

#[test]
fn pickup_runit_mode() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("scan-pickup");
    let dir = t.path().join("service");
    let stage = t.path().join("stage");
    fs::create_dir_all(&dir).unwrap();
    fs::create_dir_all(&stage).unwrap();
    let ns = start_ns(&dir, &["--compat", "runit"], &t.path().join("err"));

    // A new service moved in.
    sleeper(&stage.join("a"));
    let t0 = Instant::now();
    fs::rename(stage.join("a"), dir.join("a")).unwrap();
    let (_, apid) = wait_up(&dir.join("a"), 3 * SEC);
    let lat_a = t0.elapsed();
    // A symlinked service.
    sleeper(&stage.join("b"));
    let t0 = Instant::now();
    std::os::unix::fs::symlink(stage.join("b"), dir.join("b")).unwrap();
    wait_up(&stage.join("b"), 3 * SEC);
    let lat_b = t0.elapsed();
    // A dir created empty, `run` added later: its supervisor comes at once (as with
    // runsvdir and s6-svscan) and starts run when it is there.
    fs::create_dir(dir.join("c")).unwrap();
    wait_for(3 * SEC, "a supervisor for c", || {
        dir.join("c/supervise/status").exists().then_some(())
    });
    let t0 = Instant::now();
    sleeper(&dir.join("c"));
    wait_up(&dir.join("c"), 3 * SEC);
    let lat_c = t0.elapsed();
    eprintln!("pick-up latency: moved-in {lat_a:?}, symlink {lat_b:?}, run added {lat_c:?}");
    // No periodic rescan runs (the default -t is 0), so any pick-up came from inotify; the
    // bound only has to rule out a stall, and is generous for a loaded machine.
    for l in [lat_a, lat_b, lat_c] {
        assert!(l < 2 * SEC, "pick-up took {l:?}");
    }

    // Dot-names are not services; a broken symlink is reported once.
    sleeper(&dir.join(".hidden"));
    std::os::unix::fs::symlink("/nonexistent-rsv-target", dir.join("broken")).unwrap();
    for i in 0..3 {
        let (rc, _, _) = run(
            Command::new(bin("rsvscanctl")).args(["-a"]).arg(&dir),
            5 * SEC,
        );
        assert_eq!(rc, 0);
        sleeper(&dir.join(format!("d{i}")));
        wait_up(&dir.join(format!("d{i}")), 3 * SEC);
    }
    assert!(!dir.join(".hidden/supervise").exists());
    let err = ns.stderr();
    assert_eq!(
        err.lines().filter(|l| l.contains("broken")).count(),
        1,
        "stderr: {err}"
    );
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("c/run does not exist: starting it once it does"))
            .count(),
        1,
        "{err}"
    );

    // Removed: its supervisor and service are stopped at once (runit mode).
    let a_host = ns.host_pid(apid).expect("run of a");
    let t0 = Instant::now();
    fs::rename(dir.join("a"), stage.join("a-gone")).unwrap();
    wait_for(3 * SEC, "run of removed service gone", || {
        (!alive(a_host)).then_some(())
    });
    let lat_rm = t0.elapsed();
    eprintln!("removal latency: {lat_rm:?}");
    assert!(lat_rm < 2 * SEC, "{lat_rm:?}");
    // The others are untouched.
    assert!(status_pid(&dir.join("c")) > 0);
}

/// A numbered stream from run through the log pipe into a file, with the logger and the
/// service SIGKILLed in turn: every line written arrives once, in order.
#[test]
fn log_pipeline_survives_kills() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("scan-log");
    let dir = t.path().join("service");
    let sd = dir.join("n");
    let side = t.path().join("side");
    fs::create_dir_all(&side).unwrap();
    script(
        &sd.join("run"),
        &format!(
            "#!/bin/sh\ni=0\nwhile :; do echo \"$$ $i\"; echo $i > {}/$$; i=$((i+1)); sleep 0.005; done\n",
            side.display()
        ),
    );
    let out = t.path().join("out.txt");
    script(
        &sd.join("log/run"),
        &format!(
            "#!/bin/sh\nwhile IFS= read -r l; do printf '%s\\n' \"$l\" >> {}; done\n",
            out.display()
        ),
    );
    let ns = start_ns(&dir, &[], &t.path().join("err"));
    wait_up(&sd, 3 * SEC);
    wait_up(&sd.join("log"), 3 * SEC);
    let lines = || fs::read_to_string(&out).unwrap_or_default().lines().count();
    wait_for(5 * SEC, "first lines logged", || {
        (lines() > 20).then_some(())
    });
    for round in 0..3 {
        // Kill the logger while it is idle in read(2) (service paused), so no line can be
        // lost inside the logger itself; the pipe keeps what the service writes meanwhile.
        let svc = ns.host_pid(status_pid(&sd)).expect("service pid");
        let lg = ns
            .host_pid(status_pid(&sd.join("log")))
            .expect("logger pid");
        kill(svc, libc::SIGSTOP);
        wait_for(3 * SEC, "service stopped", || {
            (state(svc) == Some('T')).then_some(())
        });
        wait_for(3 * SEC, "logger idle in read", || {
            let idle = || {
                pipe_empty(lg)
                    && state(lg) == Some('S')
                    && fs::read_to_string(format!("/proc/{lg}/syscall"))
                        .map(|s| s.starts_with("0 0x0 "))
                        .unwrap_or(false)
            };
            if idle() {
                std::thread::sleep(Duration::from_millis(30));
                if idle() {
                    return Some(());
                }
            }
            None
        });
        kill(lg, libc::SIGKILL);
        // kill(2) returns before the target is dead: a logger woken by new data at that
        // moment could still take a byte. Resume the service only once it is gone.
        wait_for(3 * SEC, "logger dead", || (!alive(lg)).then_some(()));
        kill(svc, libc::SIGCONT);
        let n0 = lines();
        wait_for(5 * SEC, "logger restarted and writing", || {
            let p = status_pid(&sd.join("log"));
            (p > 0 && ns.host_pid(p).is_some_and(|h| h != lg) && lines() > n0 + 20).then_some(())
        });
        // Kill the service.
        kill(svc, libc::SIGKILL);
        let n1 = lines();
        wait_for(5 * SEC, "service restarted and logging", || {
            let p = status_pid(&sd);
            (p > 0 && ns.host_pid(p).is_some_and(|h| h != svc) && lines() > n1 + 20).then_some(())
        });
        eprintln!("round {round}: {} lines", lines());
    }
    drop(ns);
    // Check: per writer pid, numbers 0..=k contiguous, k >= what the writer recorded.
    let text = fs::read_to_string(&out).unwrap();
    let mut per: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for l in text.lines() {
        let mut it = l.split(' ');
        let (Some(p), Some(n)) = (it.next(), it.next()) else {
            panic!("bad line {l:?}")
        };
        per.entry(p.to_string())
            .or_default()
            .push(n.parse().unwrap());
    }
    assert!(
        per.len() >= 4,
        "expected >= 4 service runs, got {}",
        per.len()
    );
    for (p, nums) in &per {
        for (i, n) in nums.iter().enumerate() {
            assert_eq!(*n, i as u64, "writer {p}: line {i} is {n}");
        }
        let recorded: u64 = fs::read_to_string(side.join(p))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        // The last writer may still have been running when the namespace was killed.
        assert!(
            nums.len() as u64 >= recorded,
            "writer {p}: recorded {recorded}, logged {}",
            nums.len()
        );
    }
}

#[test]
fn reaps_orphaned_grandchildren() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("scan-zombie");
    let dir = t.path().join("service");
    script(
        &dir.join("z/run"),
        "#!/bin/sh\nfor i in 1 2 3 4 5; do ( sleep 0.2 & ) ; done\nexec sleep 1000\n",
    );
    let ns = start_ns(&dir, &[], &t.path().join("err"));
    wait_up(&dir.join("z"), 3 * SEC);
    // The double-forked sleeps become children of PID 1 and exit 0.2 s later.
    wait_for(5 * SEC, "orphans gone and no zombie", || {
        let procs = ns.procs();
        let zombies = procs.iter().filter(|&&p| state(p) == Some('Z')).count();
        let orphans = procs
            .iter()
            .filter(|&&p| cmdline(p).starts_with("sleep 0.2"))
            .count();
        (zombies == 0 && orphans == 0).then_some(())
    });
    // Signals without a meaning do not kill PID 1 (the kernel delivers them because they
    // are caught); services keep running.
    let run_pid = ns.host_pid(status_pid(&dir.join("z"))).unwrap();
    for sig in [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGPWR,
        libc::SIGVTALRM,
    ] {
        kill(ns.init, sig);
    }
    // Then a rescan request: answered only by a live scanner (its effect: a new service).
    sleeper(&dir.join("after"));
    let (rc, _, _) = run(Command::new(bin("rsvscanctl")).arg("-a").arg(&dir), 5 * SEC);
    assert_eq!(rc, 0);
    wait_up(&dir.join("after"), 3 * SEC);
    assert!(alive(ns.init) && alive(run_pid));
    // Stable: still no zombie a little later.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        ns.procs()
            .iter()
            .filter(|&&p| state(p) == Some('Z'))
            .count(),
        0
    );
}

#[test]
fn orderly_shutdown_and_bound() {
    if !unshare_ok() {
        return;
    }
    // Clean: finish scripts run, loggers drain, exit 0.
    let t = TempDir::new("scan-stop");
    let dir = t.path().join("service");
    let marks = t.path().join("marks");
    fs::create_dir_all(&marks).unwrap();
    for name in ["a", "b"] {
        sleeper(&dir.join(name));
        script(
            &dir.join(name).join("finish"),
            &format!("#!/bin/sh\necho $@ > {}/{name}\n", marks.display()),
        );
    }
    script(&dir.join("a/log/run"), "#!/bin/sh\nexec cat > /dev/null\n");
    let mut ns = start_ns(&dir, &[], &t.path().join("err"));
    wait_up(&dir.join("a"), 3 * SEC);
    wait_up(&dir.join("b"), 3 * SEC);
    wait_up(&dir.join("a/log"), 3 * SEC);
    kill(ns.init, libc::SIGTERM);
    let st = ns.guard.wait_exit(10 * SEC);
    assert_eq!(st.code(), Some(0), "stderr: {}", ns.stderr());
    for name in ["a", "b"] {
        assert!(marks.join(name).exists(), "finish of {name} did not run");
    }
    assert!(ns.procs().is_empty());

    // A service ignoring TERM, no timeout-kill: the bound ends it with KILL, exit 1.
    let t2 = TempDir::new("scan-bound");
    let dir2 = t2.path().join("service");
    script(
        &dir2.join("stubborn/run"),
        "#!/bin/sh\ntrap '' TERM\necho > trapped\nwhile :; do sleep 0.1; done\n",
    );
    let mut ns2 = start_ns(&dir2, &["-T", "1000"], &t2.path().join("err"));
    wait_up(&dir2.join("stubborn"), 3 * SEC);
    // Up is not enough: a TERM that comes before the trap is set ends it at once.
    wait_for(3 * SEC, "TERM ignored by stubborn", || {
        dir2.join("stubborn/trapped").exists().then_some(())
    });
    let t0 = Instant::now();
    kill(ns2.init, libc::SIGTERM);
    let st = ns2.guard.wait_exit(10 * SEC);
    let took = t0.elapsed();
    eprintln!("bounded shutdown took {took:?}");
    assert_eq!(st.code(), Some(rsv::scan::EXIT_KILLED), "{}", ns2.stderr());
    assert!(
        took >= Duration::from_millis(900) && took < 3 * SEC,
        "{took:?}"
    );
    assert!(ns2.stderr().contains("shutdown bound of 1000 ms exceeded"));
    assert!(ns2.procs().is_empty());
}

#[test]
fn supervisor_killed_is_restarted_at_once() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("scan-supkill");
    let dir = t.path().join("service");
    sleeper(&dir.join("a"));
    let ns = start_ns(&dir, &[], &t.path().join("err"));
    wait_up(&dir.join("a"), 3 * SEC);
    let sup = |ns: &Ns| {
        ns.procs()
            .into_iter()
            .find(|&p| cmdline(p).contains("rsupervise") && ppid(p) == Some(ns.init))
    };
    let old = sup(&ns).expect("supervisor");
    let t0 = Instant::now();
    kill(old, libc::SIGKILL);
    let new = wait_for(3 * SEC, "new supervisor", || sup(&ns).filter(|&p| p != old));
    let lat = t0.elapsed();
    eprintln!("supervisor restart latency: {lat:?}");
    // At once: well under the 1 s that a restart of a restarted supervisor waits.
    assert!(lat < Duration::from_millis(900), "{lat:?}");
    // Killed again right away: restarted, but not before 1 s after its start (no storm).
    kill(new, libc::SIGKILL);
    let t1 = Instant::now();
    // The killed supervisor may have been between fork and exec of run: that child, handed
    // to PID 1, still shows as `rsupervise` for a moment, then calls setsid and execs run.
    // The third supervisor is a non-session-leader that stays one for 100 ms; its time is
    // when it was first seen.
    let mut seen: std::collections::HashMap<i32, Instant> = Default::default();
    let first = wait_for(5 * SEC, "third supervisor", || {
        let now = Instant::now();
        let found = ns.procs().into_iter().find(|&p| {
            let is_sup = p != old
                && p != new
                && cmdline(p).contains("rsupervise")
                && ppid(p) == Some(ns.init)
                && !session_leader(p);
            if !is_sup {
                seen.remove(&p);
                return false;
            }
            now - *seen.entry(p).or_insert(now) >= Duration::from_millis(100)
        });
        found.map(|p| seen[&p])
    });
    let lat = first - t1;
    assert!(lat >= Duration::from_millis(700), "{lat:?}");
}

/// `pid` leads its own session (the run children of a supervisor do; supervisors do not).
fn session_leader(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(3))
                .and_then(|x| x.parse::<i32>().ok())
        })
        .is_some_and(|sid| sid == pid)
}

/// The new supervisor stops the `run` left by its SIGKILLed predecessor before starting.
#[test]
fn supervisor_killed_service_not_doubled() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("scan-double");
    let dir = t.path().join("service");
    sleeper(&dir.join("a"));
    let ns = start_ns(&dir, &[], &t.path().join("err"));
    wait_up(&dir.join("a"), 3 * SEC);
    let sd = fs::canonicalize(dir.join("a")).unwrap();
    let runs = |ns: &Ns| {
        ns.procs()
            .into_iter()
            .filter(|&p| cmdline(p).starts_with("sleep 1000") && cwd(p).as_deref() == Some(&sd))
            .count()
    };
    // Up from the fork on: wait until the run has exec'd its program.
    wait_for(5 * SEC, "the run's program", || {
        (runs(&ns) == 1).then_some(())
    });
    let old_run = ns.host_pid(status_pid(&dir.join("a"))).unwrap();
    let sup = ns
        .procs()
        .into_iter()
        .find(|&p| p != ns.init && cmdline(p).contains("rsupervise"))
        .unwrap();
    kill(sup, libc::SIGKILL);
    // The new supervisor stops the leftover run, then starts its own: once the status
    // names a new run and that run has exec'd its program (the status names it from the
    // fork on, while it is still the shell running `run`), exactly one run exists.
    let new_run = wait_for(5 * SEC, "new run", || {
        let p = status_pid(&dir.join("a"));
        (p > 0)
            .then(|| ns.host_pid(p))
            .flatten()
            .filter(|&h| h != old_run)
    });
    wait_for(5 * SEC, "the new run to exec sleep", || {
        cmdline(new_run).starts_with("sleep 1000").then_some(())
    });
    assert!(!alive(old_run), "the old run survived");
    assert_eq!(runs(&ns), 1);
}

#[test]
fn second_scanner_refused_and_missing_dir() {
    let t = TempDir::new("scan-twice");
    let dir = t.path().join("service");
    fs::create_dir_all(&dir).unwrap();
    let mut first = Guard::spawn(
        Command::new(bin("rsvscan"))
            .arg("--supervisor")
            .arg(bin("rsupervise"))
            .arg(&dir),
    );
    wait_listening(&dir);
    let (rc, _, err) = run(Command::new(bin("rsvscan")).arg(&dir), 5 * SEC);
    assert_eq!(rc, 111);
    assert_eq!(
        err,
        format!(
            "rsvscan: fatal: unable to lock {}/.s6-svscan/lock: another scanner holds it\n",
            dir.display()
        )
    );
    first.signal(libc::SIGTERM);
    assert_eq!(first.wait_exit(5 * SEC).code(), Some(0));
    let missing = t.path().join("nope");
    let (rc, _, err) = run(Command::new(bin("rsvscan")).arg(&missing), 5 * SEC);
    assert_eq!(rc, 111);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert_eq!(err.lines().count(), 1);
    // rsvscanctl on a dir nobody scans.
    let (rc, _, err) = run(Command::new(bin("rsvscanctl")).arg("-a").arg(&dir), 5 * SEC);
    assert_eq!(rc, 100);
    assert_eq!(
        err,
        format!(
            "rsvscanctl: fatal: unable to control {}: supervisor not listening\n",
            dir.display()
        )
    );
}

/// 500 services created and removed in batches: fd and child counts come back.
#[test]
fn no_fd_or_pid_leak() {
    let t = TempDir::new("scan-leak");
    let dir = t.path().join("service");
    let trash = t.path().join("trash");
    fs::create_dir_all(&dir).unwrap();
    fs::create_dir_all(&trash).unwrap();
    let g = Guard::spawn(
        Command::new(bin("rsvscan"))
            .args(["--compat", "runit", "--supervisor"])
            .arg(bin("rsupervise"))
            .arg(&dir)
            .stderr(std::process::Stdio::null()),
    );
    let pid = g.pid();
    wait_listening(&dir);
    let fds = || fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let kids = || {
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .count()
    };
    // The baseline once start-up is over: wait_listening returns as soon as the control
    // FIFO has a reader, before rsvscan has opened the rest of its descriptors.
    let fd0 = wait_for(5 * SEC, "stable fd count", || {
        let a = fds();
        std::thread::sleep(Duration::from_millis(300));
        (fds() == a).then_some(a)
    });
    let kid0 = kids();
    const BATCH: usize = 50;
    for b in 0..10 {
        for i in 0..BATCH {
            sleeper(&dir.join(format!("s{b}-{i}")));
        }
        wait_for(20 * SEC, "batch up", || {
            (0..BATCH)
                .all(|i| status_pid(&dir.join(format!("s{b}-{i}"))) > 0)
                .then_some(())
        });
        for i in 0..BATCH {
            let n = format!("s{b}-{i}");
            fs::rename(dir.join(&n), trash.join(&n)).unwrap();
        }
        wait_for(20 * SEC, "batch removed", || (kids() == kid0).then_some(()));
    }
    wait_for(5 * SEC, "fd count back", || (fds() == fd0).then_some(()));
    assert_eq!(kids(), kid0);
}

fn ctx_switches(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("ctxt_switches"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Idle means asleep: no periodic wake-up (no context switch in 1.5 s), and a capacity
/// overflow is reported once.
#[test]
fn idle_without_wakeups_and_capacity_warned_once() {
    let t = TempDir::new("scan-idle");
    let dir = t.path().join("service");
    for n in ["a", "b", "c"] {
        sleeper(&dir.join(n));
    }
    let err = t.path().join("err");
    let g = Guard::spawn(
        Command::new(bin("rsvscan"))
            .args(["-c", "2", "--supervisor"])
            .arg(bin("rsupervise"))
            .arg(&dir)
            .stderr(fs::File::create(&err).unwrap()),
    );
    wait_up(&dir.join("a"), 3 * SEC);
    wait_up(&dir.join("b"), 3 * SEC);
    std::thread::sleep(Duration::from_millis(300));
    let before = ctx_switches(g.pid());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(ctx_switches(g.pid()), before, "rsvscan woke up while idle");
    for _ in 0..3 {
        let (rc, _, _) = run(Command::new(bin("rsvscanctl")).arg("-a").arg(&dir), 5 * SEC);
        assert_eq!(rc, 0);
    }
    // Let the rescans happen, then check the warning appeared exactly once.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!dir.join("c/supervise").exists());
    let text = fs::read_to_string(&err).unwrap();
    assert_eq!(
        text.matches("rsvscan: warning: unable to start supervisor for c: too many services")
            .count(),
        1,
        "{text}"
    );
    // Clean stop (not PID 1): every service is stopped before rsvscan exits.
    let pids: Vec<i32> = ["a", "b"]
        .iter()
        .map(|n| status_pid(&dir.join(n)))
        .collect();
    g.signal(libc::SIGTERM);
    let mut g = g;
    assert_eq!(g.wait_exit(10 * SEC).code(), Some(0));
    for p in pids {
        assert!(!alive(p));
    }
}

/// runsvdir's LOG: what services write to stderr shows at the end of the process title.
#[test]
fn runsvdir_log_in_process_title() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("scan-title");
    let dir = t.path().join("service");
    script(
        &dir.join("e/run"),
        "#!/bin/sh\necho to-stderr-from-run >&2\nexec sleep 1000\n",
    );
    let link = t.path().join("runsvdir");
    std::os::unix::fs::symlink(bin("rsvscan"), &link).unwrap();
    let log = "log: ".to_string() + &".".repeat(40);
    let args: Vec<std::ffi::OsString> = vec![dir.clone().into(), log.clone().into()];
    let ns = start_ns_prog(&link, &args, &dir, &t.path().join("err"));
    wait_up(&dir.join("e"), 3 * SEC);
    wait_for(3 * SEC, "title shows the service's stderr", || {
        cmdline(ns.init)
            .trim_end()
            .ends_with("to-stderr-from-run")
            .then_some(())
    });
    let title = cmdline(ns.init);
    assert!(title.contains(" log: ."), "{title}");
}

#[test]
fn shutdown_terms_orphans_of_services() {
    if !unshare_ok() {
        return;
    }
    // A service that leaves a daemon behind (double fork): at shutdown the daemon gets
    // SIGTERM from rsvscan (its reaper) and can clean up, instead of dying of the
    // namespace's SIGKILL when PID 1 exits.
    let t = TempDir::new("scan-orphan");
    let dir = t.path().join("service");
    let mark = t.path().join("daemon-termed");
    let trapped = t.path().join("daemon-trapped");
    script(
        &dir.join("d/run"),
        &format!(
            "#!/bin/sh\n( setsid sh -c 'trap \"echo termed > {}; exit 0\" TERM; touch {}; while :; do sleep 0.1; done' & )\nexec sleep 1000\n",
            mark.display(),
            trapped.display()
        ),
    );
    let mut ns = start_ns(&dir, &["-T", "5000"], &t.path().join("err"));
    wait_up(&dir.join("d"), 3 * SEC);
    // Wait until the daemon runs as an orphan, reparented to rsvscan (PID 1), with its trap
    // set (the stop signals leftovers as soon as it sees them).
    common::wait_for(3 * SEC, "orphaned daemon", || {
        (ns.procs().len() >= 4 && trapped.exists()).then_some(())
    });
    let t0 = Instant::now();
    kill(ns.init, libc::SIGTERM);
    let st = ns.guard.wait_exit(10 * SEC);
    assert_eq!(st.code(), Some(0), "stderr: {}", ns.stderr());
    assert!(t0.elapsed() < 3 * SEC, "{:?}", t0.elapsed());
    assert_eq!(fs::read_to_string(&mark).unwrap_or_default(), "termed\n");
}
