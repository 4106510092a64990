//! rsvstat against real s6-supervise and runsv, compared with s6-svstat.

mod cli_util;
mod common;

use cli_util::*;
use common::{TempDir, bin, have_refs, script, wait_for};
use rsv::svview::View;
use std::fs;
use std::path::Path;
use std::time::Duration;

fn refs() -> bool {
    have_refs(&["runsv", "s6-supervise", "s6-svc", "s6-svstat"])
}

const ALL: &str = "up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum,updownsince,readysince,updownfor,readyfor";

/// Compares s6-svstat with ours started as s6-svstat and as rsvstat.
fn same3(names: &Names, args: &[&str], cwd: &Path) -> String {
    let (code, out, err) = same("s6-svstat", &names.ours("s6-svstat"), args, cwd, &[]);
    if code == 0 {
        // rsvstat gives the same on an s6 dir (retry across a second tick).
        let mut ok = false;
        for _ in 0..4 {
            let r = exec(Path::new("/usr/bin/s6-svstat"), args, cwd, &[]);
            let o = exec(&bin("rsvstat"), args, cwd, &[]);
            if r == o {
                ok = true;
                break;
            }
        }
        assert!(ok, "rsvstat {args:?} differs from s6-svstat");
    }
    let _ = err;
    out
}

#[test]
fn s6_states_match_s6_svstat() {
    if !refs() {
        return;
    }
    let t = TempDir::new("stat-s6");
    let names = Names::new();
    let cwd = t.path();
    fs::create_dir_all(cwd.join("r")).unwrap();
    fs::write(cwd.join("r/notification-fd"), "3\n").unwrap();
    let r = Svc::start(cwd, "r", Kind::S6, "echo >&3; exec sleep 1000");
    let a = Svc::start(cwd, "a", Kind::S6, "exec sleep 1000");
    fs::create_dir_all(cwd.join("e")).unwrap();
    fs::write(cwd.join("e/down"), "").unwrap();
    let e = Svc::start(cwd, "e", Kind::S6, "exit 3");
    a.wait_up();
    wait_for(Duration::from_secs(5), "ready", || {
        View::read(&r.dir)
            .ok()
            .filter(|v| v.ready && v.up)
            .map(|_| ())
    });
    for d in ["a", "r", "e"] {
        let out = same3(&names, &[d], cwd);
        assert!(
            out.ends_with(" seconds\n") || out.contains("ready"),
            "{out}"
        );
        same3(&names, &["-o", ALL, d], cwd);
        same3(&names, &["-upesn", d], cwd);
        same3(&names, &["-o", "updown,p,u", d], cwd);
    }
    // exit code 3 (run once), paused, killed by a signal, down with want down.
    let (code, _, _) = exec(
        &bin("rsvc"),
        &["-wD", "-T", "5000", "-o", e.path()],
        cwd,
        &[],
    );
    assert_eq!(code, 0);
    wait_for(Duration::from_secs(5), "exit 3 recorded", || {
        View::read(&e.dir)
            .ok()
            .filter(|v| !v.up && v.ready && v.wstat == Some(0x300))
            .map(|_| ())
    });
    let out = same3(&names, &["e"], cwd);
    assert!(out.starts_with("down (exitcode 3) "), "{out}");
    same3(&names, &["-o", ALL, "e"], cwd);
    exec(&bin("rsvc"), &["-p", a.path()], cwd, &[]);
    wait_for(Duration::from_secs(5), "paused", || {
        View::read(&a.dir).ok().filter(|v| v.paused).map(|_| ())
    });
    let out = same3(&names, &["a"], cwd);
    assert!(out.contains(", paused"), "{out}");
    exec(
        &bin("rsvc"),
        &["-c", "-wD", "-T", "5000", "-O", "-k", a.path()],
        cwd,
        &[],
    );
    let out = same3(&names, &["a"], cwd);
    assert!(out.starts_with("down (signal SIGKILL) "), "{out}");
    let out = same3(&names, &["-n", "a"], cwd);
    assert!(out.starts_with("down (signal 9) "), "{out}");
    same3(&names, &["-o", ALL, "a"], cwd);
    drop(r);
}

#[test]
fn runit_status_is_read() {
    if !refs() {
        return;
    }
    let t = TempDir::new("stat-runit");
    let a = Svc::start(t.path(), "a", Kind::Runsv, "exec sleep 1000");
    let pid = a.wait_up();
    let (code, out, err) = exec(&bin("rsvstat"), &[a.path()], t.path(), &[]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        out.starts_with(&format!("up (pid {pid}) ")) && out.ends_with(" seconds\n"),
        "{out}"
    );
    let (_, out, _) = exec(
        &bin("rsvstat"),
        &["-o", "up,pid,ready,exitcode,signal,normallyup", a.path()],
        t.path(),
        &[],
    );
    assert_eq!(out, format!("true {pid} false -1 NA true\n"));
    // updownsince is an s6-family label: +37 from the runit stamp's +10.
    let (_, out, _) = exec(
        &bin("rsvstat"),
        &["-o", "updownsince", a.path()],
        t.path(),
        &[],
    );
    let raw = fs::read(a.dir.join("supervise/status")).unwrap();
    let runit = rsv::tai::Tai64N::from_bytes(&raw[..12]);
    let s6 = rsv::tai::Tai64N::parse_hex(out.trim().as_bytes()).unwrap();
    assert_eq!(s6.secs, runit.secs + 27);
    let (_, out, _) = exec(&bin("rsvstat"), &["--json", a.path()], t.path(), &[]);
    assert!(out.starts_with(&format!(
        "{{\"name\":\"{1}\",\"path\":\"{0}\",\"format\":\"runit\",\"supervised\":true,\"state\":\"up\",\"pid\":{pid},",
        a.path(),
        std::path::Path::new(a.path()).file_name().unwrap().to_str().unwrap()
    )), "{out}");
    assert!(
        out.contains(
            "\"want\":\"up\",\"paused\":false,\"normally_up\":true,\"last_exit\":null,\"logger\":false,\"rsv_state\":false,\"restarts\":null,\"exits\":null,\"throttling\":null,\"gave_up\":null,\"essential\":null,\"final_exit\":null,\"health\":null,\"sd_notify\":null,\"resources\":{\"processes\":1,"
        ) && out.ends_with(
            "\"leftovers\":[]},\"type\":\"longrun\",\"dependencies\":[],\"waiting_for\":[],\"graph_state\":null,\"timed_out\":false}\n"
        ),
        "{out}"
    );
    // down via sv's d
    exec(
        &bin("rsvc"),
        &["-wd", "-T", "5000", "-d", a.path()],
        t.path(),
        &[],
    );
    let (_, out, _) = exec(&bin("rsvstat"), &[a.path()], t.path(), &[]);
    assert!(
        out.starts_with("down ") && out.ends_with(" seconds, normally up\n"),
        "{out}"
    );
}

#[test]
fn errors() {
    if !refs() {
        return;
    }
    let t = TempDir::new("stat-err");
    let names = Names::new();
    let cwd = t.path();
    let a = Svc::start(cwd, "a", Kind::S6, "exec sleep 1000");
    a.wait_up();
    fs::create_dir_all(cwd.join("plain")).unwrap();
    for args in [
        vec![],
        vec!["-d", "a"],
        vec!["-o", "foo", "a"],
        vec!["-o", "up,,pid", "a"],
        vec!["/nonexistent"],
        vec!["plain"],
    ] {
        same("s6-svstat", &names.ours("s6-svstat"), &args, cwd, &[]);
    }
    let r = |args: &[&str]| exec(&bin("rsvstat"), args, cwd, &[]);
    assert_eq!(r(&[]).0, 100);
    assert_eq!(
        r(&["-o", "foo", "a"]),
        (
            100,
            String::new(),
            "rsvstat: fatal: invalid option field: foo\n".into()
        )
    );
    let (code, _, err) = r(&["plain"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "rsvstat: fatal: unable to read status for plain: supervisor not running (no lock held on plain/supervise/lock)\n"
    );
    let (code, _, err) = r(&["/nonexistent"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "rsvstat: fatal: unable to read status for /nonexistent: no such service directory\n"
        )
    );
    // Garbage status of the wrong size while supervised.
    fs::write(a.dir.join("supervise/status"), b"1234567").unwrap();
    let (code, _, err) = r(&["a"]);
    assert_eq!(code, 111);
    assert!(
        err.starts_with("rsvstat: fatal: unable to read status for a: ") && err.contains("7 bytes"),
        "{err}"
    );
    same("s6-svstat", &names.ours("s6-svstat"), &["a"], cwd, &[]);
    // Permission denied (supervise/ is 0700): as nobody.
    let b = Svc::start(cwd, "b", Kind::S6, "exec sleep 1000");
    b.wait_up();
    fs::set_permissions(
        b.dir.join("supervise"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    if let Some((code, _, err)) = exec_as_nobody(&bin("rsvstat"), &["b"], cwd) {
        assert_eq!(code, 111, "{err}");
        assert_eq!(
            err,
            "rsvstat: fatal: unable to check b/supervise: Permission denied\n"
        );
    }
}

#[test]
fn scan_dir_table_and_json_array() {
    if !refs() {
        return;
    }
    let t = TempDir::new("stat-scan");
    let scan = t.path().join("scan");
    script(
        &scan.join("web/log/run"),
        "#!/bin/sh\nexec cat >/dev/null\n",
    );
    let web = Svc::start(&scan, "web", Kind::Runsv, "exec sleep 1000");
    let db = Svc::start(&scan, "db", Kind::S6, "exec sleep 1000");
    fs::create_dir_all(scan.join("idle")).unwrap();
    script(&scan.join("idle/run"), "#!/bin/sh\nexec sleep 1000\n");
    let wpid = web.wait_up();
    let dpid = db.wait_up();
    wait_for(Duration::from_secs(5), "log up", || {
        (pid_of(&web.dir.join("log")) != 0).then_some(())
    });
    let s = scan.to_str().unwrap();
    let (code, out, _) = exec(&bin("rsvstat"), &[s], t.path(), &[]);
    assert_eq!(code, 1, "one service is not supervised: {out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[0].starts_with("NAME "));
    let row = |n: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(n))
            .copied()
            .unwrap_or_else(|| panic!("{n} in {out}"))
    };
    let w: Vec<&str> = row("web").split_whitespace().collect();
    assert_eq!((w[1], w[2], w[5]), ("up", wpid.to_string().as_str(), "up"));
    assert_eq!(row("web/log").split_whitespace().nth(1), Some("up"));
    let d: Vec<&str> = row("db").split_whitespace().collect();
    assert_eq!((d[1], d[2]), ("up", dpid.to_string().as_str()));
    assert_eq!(row("idle").split_whitespace().nth(1), Some("unsupervised"));
    let (_, out, _) = exec(&bin("rsvstat"), &["--json", s], t.path(), &[]);
    assert!(
        out.starts_with("[{\"name\":\"db\"") && out.ends_with("}]\n"),
        "{out}"
    );
    assert_eq!(out.matches("\"name\":").count(), 4);
    assert!(out.contains("\"name\":\"web/log\""));
    assert!(out.contains("\"format\":\"s6\""));
    // Several dirs given explicitly.
    let (code, out, _) = exec(&bin("rsvstat"), &[web.path(), db.path()], t.path(), &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 4);
}
