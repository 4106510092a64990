//! A service directory without a usable `run` has its supervisor anyway (as with runsv and
//! s6-supervise): clients get an answer ("down", "want up"), and `run` is started the moment
//! it exists, is executable and written — no retry loop, one warning.

mod common;
mod supervisor;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{TempDir, bin, have_refs, wait_for};
use supervisor::*;

/// From the last change to `run` to the service up: an inotify event, not a retry (runsv
/// retries every 1 s, s6-supervise every 10 s).
const PROMPT: Duration = Duration::from_millis(900);

fn up_within(sd: &std::path::Path, from: Instant) -> Duration {
    wait_up(sd, None);
    from.elapsed()
}

fn deferred(mode: &str) {
    let t = TempDir::new(&format!("runwait-{mode}"));
    let sd = t.path().join("svc");
    fs::create_dir(&sd).unwrap();
    let sup = Sup::start(mode, t.path(), "svc");
    // The supervisor answers for the service: down, wanted up.
    let (c, out, err) = cmd(t.path(), bin("rsvc").to_str().unwrap(), &["-u", "svc"]);
    assert_eq!(c, 0, "{out}{err}");
    if mode == "s6" && have_refs(&["s6-svstat", "s6-svc"]) {
        let (c, out, err) = cmd(t.path(), "s6-svstat", &["svc"]);
        assert_eq!(c, 0, "{err}");
        assert!(out.starts_with("down ") && out.contains("want up"), "{out}");
        assert_eq!(cmd(t.path(), "s6-svc", &["-u", "svc"]).0, 0);
    }
    if mode == "runit" && have_refs(&["sv"]) {
        let (c, out, err) = cmd(t.path(), "sv", &["status", "./svc"]);
        assert_eq!(c, 0, "{out}{err}");
        assert!(
            out.starts_with("down: ./svc: ") && out.ends_with("s, normally up, want up\n"),
            "{out}"
        );
        assert_eq!(cmd(t.path(), "sv", &["up", "./svc"]).0, 0);
    }
    // run appears, not executable: still down, nothing tried.
    let run = sd.join("run");
    fs::write(&run, "#!/bin/sh\nexec sleep 1000\n").unwrap();
    assert_eq!(pid_of(&sd), None);
    let t0 = Instant::now();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
    let took = up_within(&sd, t0);
    eprintln!("{mode}: up {} ms after chmod +x", took.as_millis());
    assert!(took < PROMPT, "took {took:?}");
    // One warning for the whole wait, whatever the clients sent; never an exec failure.
    let text = sup.err();
    assert_eq!(
        text.matches("svc/run does not exist: starting it once it does")
            .count(),
        1,
        "{text}"
    );
    assert!(!text.contains("unable to start"), "{text}");
    sup.stop();
}

#[test]
fn missing_run_is_started_once_it_is_there_s6() {
    deferred("s6");
}

#[test]
fn missing_run_is_started_once_it_is_there_runit() {
    deferred("runit");
}

/// run created executable but empty (a copy in progress), then written: started when the
/// writer closes it. Removed while down and wanted down: not started when it comes back.
#[test]
fn empty_run_waits_for_its_content_and_want_down_is_kept() {
    let t = TempDir::new("runwait-empty");
    let sd = t.path().join("svc");
    fs::create_dir(&sd).unwrap();
    let run = sd.join("run");
    fs::write(&run, "").unwrap();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
    let sup = Sup::start("s6", t.path(), "svc");
    wait_for(T, "the warning", || {
        sup.err()
            .contains("svc/run is empty: starting it once it is written")
            .then_some(())
    });
    let t0 = Instant::now();
    fs::write(&run, "#!/bin/sh\nexec sleep 1000\n").unwrap();
    let took = up_within(&sd, t0);
    assert!(took < PROMPT, "took {took:?}");
    // Down, run removed, then back: want down holds.
    let rsvc = bin("rsvc");
    assert_eq!(cmd(t.path(), rsvc.to_str().unwrap(), &["-d", "svc"]).0, 0);
    wait_down(&sd);
    fs::remove_file(&run).unwrap();
    assert_eq!(cmd(t.path(), rsvc.to_str().unwrap(), &["-u", "svc"]).0, 0);
    wait_for(T, "the second warning", || {
        (sup.err().matches("svc/run does not exist").count() == 1).then_some(())
    });
    assert_eq!(cmd(t.path(), rsvc.to_str().unwrap(), &["-d", "svc"]).0, 0);
    fs::write(&run, "#!/bin/sh\nexec sleep 1000\n").unwrap();
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
    // A later `u` starts it at once.
    assert_eq!(pid_of(&sd), None, "started while wanted down");
    assert_eq!(cmd(t.path(), rsvc.to_str().unwrap(), &["-u", "svc"]).0, 0);
    wait_up(&sd, None);
    sup.stop();
}
