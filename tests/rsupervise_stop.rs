//! rsupervise's `stop` file (systemd's ExecStop=): run with $MAINPID before the down-signal
//! when the service is stopped on request, in both personalities; bounded by timeout-kill;
//! not run when the service ends on its own.

mod common;
mod supervisor;

use std::fs;
use std::path::Path;

use common::{TempDir, alive, bin, script, wait_for};
use supervisor::*;

/// A service whose `stop` appends "MAINPID alive|gone" to `stops`.
fn service(sd: &Path, stop_body: &str) {
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    script(&sd.join("stop"), stop_body);
}

const RECORD: &str = "#!/bin/sh\nif kill -0 \"$MAINPID\"; then a=alive; else a=gone; fi\necho \"$MAINPID $a $PWD\" >> stops\n";

fn stops(sd: &Path) -> Vec<String> {
    fs::read_to_string(sd.join("stops"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn rsvc(sd: &Path, args: &[&str]) {
    let mut a: Vec<&str> = args.to_vec();
    let s = sd.display().to_string();
    a.push(&s);
    let (c, _, e) = cmd(sd, bin("rsvc").to_str().unwrap(), &a);
    assert_eq!(c, 0, "{e}");
}

#[test]
fn stop_runs_before_the_down_signal_in_both_personalities() {
    for mode in ["s6", "runit"] {
        let t = TempDir::new(&format!("stop-{mode}"));
        let sd = t.path().join("svc");
        service(&sd, RECORD);
        let sup = Sup::start(mode, t.path(), "svc");
        let pid = wait_up(&sd, None);
        rsvc(&sd, &["-d"]);
        wait_down(&sd);
        let canon = fs::canonicalize(&sd).unwrap();
        assert_eq!(
            stops(&sd),
            [format!("{pid} alive {}", canon.display())],
            "{mode}"
        );
        assert!(!alive(pid));
        // A service that ends on its own does not run it.
        rsvc(&sd, &["-u"]);
        let pid2 = wait_up(&sd, Some(pid));
        common::kill_pid(pid2);
        let pid3 = wait_up(&sd, Some(pid2));
        assert_eq!(stops(&sd).len(), 1, "{mode}");
        // The supervisor's SIGTERM (how rsvscan stops services) runs it too.
        assert_eq!(sup.stop(), 0, "{mode}");
        assert_eq!(stops(&sd).len(), 2, "{mode}");
        assert!(
            stops(&sd)[1].starts_with(&format!("{pid3} alive")),
            "{mode}"
        );
    }
}

#[test]
fn a_stop_that_hangs_is_killed_after_timeout_kill() {
    let t = TempDir::new("stop-hang");
    let sd = t.path().join("svc");
    service(&sd, "#!/bin/sh\necho $$ >> stops\nexec sleep 1000\n");
    fs::write(sd.join("timeout-kill"), "300\n").unwrap();
    let sup = Sup::start("s6", t.path(), "svc");
    let pid = wait_up(&sd, None);
    rsvc(&sd, &["-d"]);
    wait_down(&sd);
    assert!(!alive(pid));
    let hung: i32 = stops(&sd)[0].parse().unwrap();
    let err = wait_for(T, "the warning", || {
        let e = sup.err();
        e.contains("still ran after 300 ms: killed").then_some(e)
    });
    assert_eq!(err.lines().count(), 1, "{err}");
    // Its process group got SIGKILL and was reaped.
    assert!(!alive(hung));
    assert_eq!(sup.stop(), 0);
}
