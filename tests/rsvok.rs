//! rsvok against real runsv and s6-supervise, compared with s6-svok.

mod cli_util;
mod common;

use cli_util::*;
use common::{TempDir, bin, have_refs};
use std::fs;

#[test]
fn rsvok_sees_both_supervisors() {
    if !have_refs(&["runsv", "s6-supervise", "s6-svok"]) {
        return;
    }
    let t = TempDir::new("ok");
    let names = Names::new();
    let cwd = t.path();
    let r = Svc::start(cwd, "r", Kind::Runsv, "exec sleep 1000");
    let s = Svc::start(cwd, "s", Kind::S6, "exec sleep 1000");
    fs::create_dir_all(cwd.join("plain")).unwrap();
    let ok = |d: &str| exec(&bin("rsvok"), &[d], cwd, &[]);
    assert_eq!(ok("r"), (0, String::new(), String::new()));
    assert_eq!(ok("s").0, 0);
    assert_eq!(ok("plain").0, 1);
    assert_eq!(
        ok("/nonexistent"),
        (
            111,
            String::new(),
            "rsvok: fatal: unable to check /nonexistent: No such file or directory\n".into()
        )
    );
    assert_eq!(ok("r/run").0, 111);
    assert_eq!(ok("").0, 111);
    let (code, _, err) = exec(&bin("rsvok"), &[], cwd, &[]);
    assert_eq!(
        (code, err.as_str()),
        (100, "rsvok: usage: rsvok servicedir\n")
    );
    // As s6-svok: exactly s6-svok, which does not see runsv's flock.
    for d in ["r", "s", "plain", "/nonexistent"] {
        same("s6-svok", &names.ours("s6-svok"), &[d], cwd, &[]);
    }
    assert_eq!(exec(&names.ours("s6-svok"), &["r"], cwd, &[]).0, 1);
    same("s6-svok", &names.ours("s6-svok"), &[], cwd, &[]);
    // After the supervisor dies: not supervised.
    let mut r = r;
    let _ = r.sup.0.as_mut().map(|c| c.kill());
    r.sup.wait_exit(std::time::Duration::from_secs(5));
    assert_eq!(ok("r").0, 1);
    // Permission denied: 111 with one line naming the path.
    if let Some((code, _, err)) = exec_as_nobody(&bin("rsvok"), &["s"], cwd) {
        assert_eq!(
            (code, err.as_str()),
            (
                111,
                "rsvok: fatal: unable to check s/supervise: Permission denied\n"
            )
        );
        let theirs = exec_as_nobody(std::path::Path::new("/usr/bin/s6-svok"), &["s"], cwd).unwrap();
        let mine = exec_as_nobody(&names.ours("s6-svok"), &["s"], cwd).unwrap();
        assert_eq!(theirs, mine);
    }
    drop(s);
}
