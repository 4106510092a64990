//! Faults injected into supervisors: garbage in every settings file, random bytes into the
//! control FIFOs of many supervisors at once, a supervisor stopped (SIGSTOP) for 10 s.
//! Outcomes are documented in docs/reliability.md.

mod common;
#[path = "common/scan.rs"]
mod scan;
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

/// Does `sd`'s s6 status say up?
fn is_up(sd: &Path) -> bool {
    matches!(rsv::status::read_status(&sd.join("supervise")), Ok(rsv::status::AnyStatus::S6(s)) if s.is_up())
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
    // (A wait that times out names what the supervisor said.)
    let up_again = |old: i32| {
        let end = Instant::now() + T;
        loop {
            if let Some(p) = pid_of(&sd).filter(|&p| p != old && common::alive(p)) {
                if is_up(&sd) {
                    return p;
                }
            }
            assert!(Instant::now() < end, "not up again: {}", sup.err());
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    for _ in 0..3 {
        common::kill_pid(pid);
        pid = up_again(pid);
        assert_eq!(rsvc(t.path(), &["-d", "a"]).0, 0);
        wait_down(&sd);
        assert_eq!(rsvc(t.path(), &["-u", "a"]).0, 0);
        pid = up_again(pid);
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

/// The supervisors of the service `name` in the namespace (host pids, not zombies).
fn supervisors_of(ns: &scan::Ns, name: &str) -> Vec<i32> {
    let tail = format!(" -- {name}");
    ns.procs()
        .into_iter()
        .filter(|&p| {
            let c = cmdline(p);
            c.contains("rsupervise") && c.ends_with(&tail) && common::alive(p)
        })
        .collect()
}

/// Is a supervisor reading `sd`'s control FIFO?
fn listening(sd: &Path) -> bool {
    fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(sd.join("supervise/control"))
        .is_ok()
}

/// The pid (in the namespace) of `sd`'s service when its status says up, else 0.
fn ns_up_pid(sd: &Path) -> i32 {
    match rsv::status::read_status(&sd.join("supervise")) {
        Ok(rsv::status::AnyStatus::S6(s)) if s.is_up() => s.pid as i32,
        _ => 0,
    }
}

/// 10^6 random bytes (every byte value, `x` included) into the control FIFO of each of 50
/// supervisors at once, under rsvscan (PID 1 of a pid namespace), so that a supervisor told
/// to exit is started again: nothing panics, and afterwards every service has exactly one
/// supervisor and one copy, and obeys -u and -d.
#[test]
fn random_bytes_on_control_fifos() {
    const SUPS: usize = 50;
    const BYTES: usize = 1_000_000;
    if !scan::unshare_ok() {
        return;
    }
    let t = TempDir::new("inj-fifo");
    let dir = t.path().join("scan");
    for i in 0..SUPS {
        script(
            &dir.join(format!("s{i}/run")),
            "#!/bin/sh\nexec sleep 1000\n",
        );
    }
    let mut ns = scan::start_ns(&dir, &[], &t.path().join("err"));
    for i in 0..SUPS {
        let sd = dir.join(format!("s{i}"));
        wait_for(T, "service up", || (ns_up_pid(&sd) != 0).then_some(()));
    }
    let seed0 = 0x2545_f491_4f6c_dd1d_u64 ^ std::process::id() as u64;
    eprintln!("seed {seed0:#x}");
    let start = Instant::now();
    let writers: Vec<_> = (0..SUPS)
        .map(|i| {
            let mut seed = seed0 ^ ((i as u64 + 1) << 32);
            let mut junk = Vec::with_capacity(BYTES + 8);
            while junk.len() < BYTES {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                junk.extend(seed.to_le_bytes());
            }
            junk.truncate(BYTES);
            let fifo = dir.join(format!("s{i}/supervise/control"));
            std::thread::spawn(move || {
                // A supervisor that obeyed an `x` is gone until rsvscan starts the next one:
                // open again (ENXIO meanwhile), go on where the write failed (EPIPE).
                let end = Instant::now() + Duration::from_secs(120);
                let mut f = None;
                let mut off = 0;
                while off < junk.len() {
                    assert!(Instant::now() < end, "s{i}: {off} bytes written in 120 s");
                    let w = match &mut f {
                        Some(w) => w,
                        None => match fs::OpenOptions::new()
                            .write(true)
                            .custom_flags(libc::O_NONBLOCK)
                            .open(&fifo)
                        {
                            Ok(w) => f.insert(w),
                            Err(_) => {
                                std::thread::sleep(Duration::from_millis(2));
                                continue;
                            }
                        },
                    };
                    match w.write(&junk[off..]) {
                        Ok(n) => off += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(e) if e.raw_os_error() == Some(libc::EPIPE) => f = None,
                        Err(e) => panic!("s{i}: write: {e}"),
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    eprintln!(
        "{SUPS} FIFOs x {BYTES} bytes written in {:?}",
        start.elapsed()
    );
    // A supervisor may still hold an `x` from the flood (it exits once its service is
    // down): send every one "dx" and wait for it to be gone, so that the next one (started
    // by rsvscan, fed nothing) is the one checked.
    for i in 0..SUPS {
        let name = format!("s{i}");
        let sd = dir.join(&name);
        let old = wait_for(T, "one supervisor listening", || {
            let v = supervisors_of(&ns, &name);
            (v.len() == 1 && listening(&sd)).then(|| v[0])
        });
        if let Ok(mut f) = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(sd.join("supervise/control"))
        {
            let _ = f.write_all(b"dx");
        }
        wait_for(T, "the flooded supervisor gone", || {
            (!common::alive(old)).then_some(())
        });
    }
    for i in 0..SUPS {
        let name = format!("s{i}");
        let sd = dir.join(&name);
        wait_for(T, "a fresh supervisor listening", || {
            (supervisors_of(&ns, &name).len() == 1 && listening(&sd)).then_some(())
        });
        let mut last = 0;
        for (letter, up) in [("-u", true), ("-d", false), ("-u", true)] {
            assert_eq!(rsvc(&dir, &[letter, &name]).0, 0, "{name} {letter}");
            let pid = wait_for(T, "the state asked for", || {
                let p = ns_up_pid(&sd);
                let copies = copies(&sd).len();
                match up {
                    true => (p != 0 && p != last && copies == 1).then_some(p),
                    false => (p == 0 && copies == 0).then_some(0),
                }
            });
            if up {
                last = pid;
            }
        }
        assert_eq!(supervisors_of(&ns, &name).len(), 1, "{name}");
    }
    let err = ns.stderr();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
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
