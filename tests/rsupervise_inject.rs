//! Faults injected into supervisors: garbage in every settings file, random bytes into the
//! control FIFOs of many supervisors at once, a supervisor stopped (SIGSTOP) for 10 s.
//! Outcomes are documented in docs/reliability.md.

mod common;
mod supervisor;

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{TempDir, bin, script, wait_for};
use supervisor::*;

fn rsvc(dir: &Path, args: &[&str]) -> (i32, String, String) {
    cmd(dir, bin("rsvc").to_str().unwrap(), args)
}

/// The host pids of processes running `sleep 1000` in `sd` (the service's copies).
fn copies(sd: &Path) -> Vec<i32> {
    let sd = fs::canonicalize(sd).unwrap();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| {
            cmdline(p) == "sleep 1000"
                && fs::read_link(format!("/proc/{p}/cwd")).ok().as_deref() == Some(&sd)
        })
        .collect()
}

/// Garbage (binary, text, huge numbers) in every settings file a supervisor reads, while the
/// service is restarted several times: no panic, the service runs with the defaults, and
/// each bad file is reported once, not at every read.
#[test]
fn garbage_settings_reported_once_each() {
    let t = TempDir::new("inj-settings");
    let sd = t.path().join("a");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    script(&sd.join("check"), "#!/bin/sh\nexit 0\n");
    let files = [
        ("notification-fd", &b"\xff\xfe3\n"[..]),
        ("down-signal", b"SIGNOPE\n"),
        ("timeout-kill", b"-5"),
        ("max-death-tally", b"99999999999999999999999"),
        ("backoff-max", b"1e3\n"),
        ("backoff-reset", b"\0\0\0"),
        ("give-up", b"3\n"),
        ("check-interval", b"fast\n"),
    ];
    for (n, d) in files {
        fs::write(sd.join(n), d).unwrap();
    }
    let sup = Sup::start("s6", t.path(), "a");
    let mut pid = wait_up(&sd, None);
    // Each round reads every file again: a death on its own (backoff, give-up), a stop
    // (down-signal, timeout-kill), starts (notification-fd, check settings).
    for _ in 0..3 {
        common::kill_pid(pid);
        pid = wait_up(&sd, Some(pid));
        assert_eq!(rsvc(t.path(), &["-d", "a"]).0, 0);
        wait_down(&sd);
        assert_eq!(rsvc(t.path(), &["-u", "a"]).0, 0);
        pid = wait_up(&sd, Some(pid));
    }
    let err = sup.err();
    assert!(!err.contains("panicked"), "{err}");
    for (n, _) in files {
        let times = err
            .lines()
            .filter(|l| l.contains(&format!("a/{n}")))
            .count();
        assert_eq!(times, 1, "{n} reported {times} times\n{err}");
    }
    // A fixed file that breaks again is reported again.
    for content in ["0\n", "x\n"] {
        fs::write(sd.join("timeout-kill"), content).unwrap();
        assert_eq!(rsvc(t.path(), &["-d", "a"]).0, 0);
        wait_down(&sd);
        assert_eq!(rsvc(t.path(), &["-u", "a"]).0, 0);
        pid = wait_up(&sd, Some(pid));
    }
    let err = sup.err();
    assert_eq!(
        err.lines().filter(|l| l.contains("a/timeout-kill")).count(),
        2,
        "{err}"
    );
    sup.stop();
}

/// Supervisors flooded at once, each fed random bytes (a million in total) on its control
/// FIFO: every supervisor survives (no panic), stays in control of exactly one copy of its
/// service, and obeys the next command. The byte `x` (exit, a valid command) is left out so
/// that each supervisor is still there to be checked.
#[test]
fn random_bytes_on_control_fifos() {
    const SUPS: usize = 50;
    const BYTES: usize = 1_000_000 / SUPS;
    let t = TempDir::new("inj-fifo");
    let mut sups = Vec::new();
    for i in 0..SUPS {
        let sd = t.path().join(format!("s{i}"));
        script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
        sups.push(Sup::start("s6", t.path(), &format!("s{i}")));
    }
    for s in &sups {
        wait_up(&s.sd(), None);
    }
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ std::process::id() as u64;
    let start = Instant::now();
    let writers: Vec<_> = sups
        .iter()
        .map(|s| {
            let mut junk = Vec::with_capacity(BYTES);
            while junk.len() < BYTES {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                junk.extend(seed.to_le_bytes().into_iter().filter(|&b| b != b'x'));
            }
            junk.truncate(BYTES);
            let fifo = s.sd().join("supervise/control");
            std::thread::spawn(move || {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(fifo)
                    .unwrap();
                let mut off = 0;
                while off < junk.len() {
                    match f.write(&junk[off..]) {
                        Ok(n) => off += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(e) => panic!("write: {e}"),
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    eprintln!("{SUPS} FIFOs flooded in {:?}", start.elapsed());
    // Every supervisor is alive and obeys: continue, up; exactly one copy of each service.
    for s in &sups {
        assert!(common::alive(s.g.pid()), "{} died: {}", s.name, s.err());
        assert_eq!(rsvc(&s.parent, &["-cu", &s.name]).0, 0);
    }
    for s in &sups {
        let sd = s.sd();
        let pid = wait_up(&sd, None);
        wait_for(T, "one copy running sleep", || {
            (copies(&sd) == vec![pid]).then_some(())
        });
        assert!(!s.err().contains("panicked"), "{}", s.err());
    }
    for s in sups {
        s.stop();
    }
}

/// A supervisor stopped for 10 s: clients that wait time out cleanly (bounded, non-zero exit),
/// a command sent meanwhile is carried out once it continues, and the service is never
/// doubled.
#[test]
fn stopped_supervisor_then_continued() {
    let t = TempDir::new("inj-stop");
    let sd = t.path().join("a");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    let sup = Sup::start("s6", t.path(), "a");
    let old = wait_up(&sd, None);
    sup.g.signal(libc::SIGSTOP);
    // A waiting client gives up after its timeout.
    let t0 = Instant::now();
    let (c, _, _) = rsvc(t.path(), &["-T", "1000", "-wd", "-d", "a"]);
    let took = t0.elapsed();
    assert_ne!(c, 0, "a wait on a stopped supervisor cannot succeed");
    assert!(took < Duration::from_secs(5), "client took {took:?}");
    // A plain command is queued in the FIFO.
    assert_eq!(rsvc(t.path(), &["-u", "a"]).0, 0);
    // The rest of the 10 s: the service keeps running untouched.
    let rest = Duration::from_secs(10).saturating_sub(t0.elapsed());
    std::thread::sleep(rest);
    assert_eq!(copies(&sd), vec![old]);
    sup.g.signal(libc::SIGCONT);
    // The queued "d" then "u": a new run replaces the old one; never two.
    let new = wait_up(&sd, Some(old));
    wait_for(T, "one copy running sleep", || {
        (copies(&sd) == vec![new]).then_some(())
    });
    assert!(!common::alive(old));
    assert_eq!(rsvc(t.path(), &["-T", "3000", "-wd", "-d", "a"]).0, 0);
    sup.stop();
}

/// A pids cgroup (v1 or v2) we may create, or None.
fn pids_cgroup(tag: &str) -> Option<std::path::PathBuf> {
    for base in ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"] {
        let b = Path::new(base);
        if !b.join("cgroup.procs").exists() {
            continue;
        }
        let d = b.join(format!("rsv-test-{tag}-{}", std::process::id()));
        if fs::create_dir(&d).is_ok() && d.join("pids.max").exists() {
            return Some(d);
        }
        let _ = fs::remove_dir(&d);
    }
    None
}

/// fork fails (the supervisor's pids cgroup is full): rsupervise says why, keeps answering,
/// retries on its own schedule (runit mode: every second, as runsv) and starts the service
/// once the limit is lifted.
#[test]
fn fork_failure_then_recovery() {
    let Some(cg) = pids_cgroup("fork") else {
        eprintln!("SKIPPED: no writable pids cgroup");
        return;
    };
    let t = TempDir::new("inj-fork");
    let sd = t.path().join("a");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    fs::write(sd.join("down"), "").unwrap();
    let sup = Sup::start("runit", t.path(), "a");
    let pid = sup.g.pid();
    fs::write(cg.join("cgroup.procs"), pid.to_string()).unwrap();
    fs::write(cg.join("pids.max"), "1").unwrap();
    assert_eq!(rsvc(t.path(), &["-u", "a"]).0, 0);
    wait_for(T, "the fork failure reported", || {
        sup.err()
            .contains("unable to start run: Try again \u{2014} retrying in 1 s")
            .then_some(())
    });
    // Still answering while forks fail.
    let (c, out, _) = cmd(t.path(), "sv", &["status", "./a"]);
    let lifted = Instant::now();
    fs::write(cg.join("pids.max"), "max").unwrap();
    let up = wait_up(&sd, None);
    eprintln!(
        "up {} ms after the limit was lifted (sv status meanwhile: {c} {out:?})",
        lifted.elapsed().as_millis()
    );
    assert!(lifted.elapsed() < Duration::from_secs(4));
    assert!(common::alive(up));
    assert!(!sup.err().contains("panicked"));
    // Out of the cgroup again, then remove it.
    let parent = cg.parent().unwrap().join("cgroup.procs");
    let _ = fs::write(&parent, pid.to_string());
    let _ = fs::write(&parent, up.to_string());
    sup.stop();
    wait_for(T, "cgroup empty", || {
        fs::read_to_string(cg.join("cgroup.procs"))
            .ok()
            .filter(|s| s.trim().is_empty())
    });
    fs::remove_dir(&cg).unwrap();
}
