//! Odd command lines for every program: empty strings, non-UTF-8 bytes, missing operands,
//! huge numbers. Each gets a one-line error naming the program and a documented exit code;
//! none panics.

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TempDir, bin};

const LIMIT: Duration = Duration::from_secs(10);

/// Runs `prog` with `args` in `cwd`, stdin empty; returns (exit code, stdout, stderr).
fn exec(prog: &str, args: &[&OsStr], cwd: &std::path::Path) -> (i32, String, String) {
    let mut c = Command::new(bin(prog));
    c.args(args).current_dir(cwd).stdin(Stdio::null());
    common::run(&mut c, LIMIT)
}

fn os(s: &str) -> OsString {
    OsString::from(s)
}

fn non_utf8() -> OsString {
    OsStr::from_bytes(b"sv\xff\xfe").to_os_string()
}

/// No panic, an allowed exit code, and (for failures) a message naming the program (or, in
/// sv's format on stdout, a `fail:`/`warning:` line naming the service). Returns stderr.
fn check(prog: &str, args: &[OsString], cwd: &std::path::Path, codes: &[i32]) -> String {
    let a: Vec<&OsStr> = args.iter().map(|s| s.as_os_str()).collect();
    let (code, out, err) = exec(prog, &a, cwd);
    assert!(
        !err.contains("panicked") && code != 101,
        "{prog} {args:?} panicked: {err}"
    );
    assert!(
        codes.contains(&code),
        "{prog} {args:?}: exit {code}, wanted one of {codes:?}; stderr: {err}"
    );
    // rsvok is silent on "not supervised" (exit 1), as s6-svok is.
    if code != 0 && !(prog == "rsvok" && code == 1) {
        let first = err.lines().next().unwrap_or("");
        let sv_line = out.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&format!("{prog}: "))
                || first.starts_with(&format!("usage: {prog} "))
                || (first.is_empty()
                    && (sv_line.starts_with("fail: ") || sv_line.starts_with("warning: "))),
            "{prog} {args:?}: message does not name the program: {err:?} {out:?}"
        );
    }
    err
}

#[test]
fn non_utf8_arguments_get_a_clear_error() {
    let t = TempDir::new("badargs-utf8");
    let bad = non_utf8();
    // Service-dir programs: a path that cannot exist (or a usage error), never a panic.
    let e = check("rsupervise", std::slice::from_ref(&bad), t.path(), &[100]);
    assert_eq!(
        e,
        "rsupervise: fatal: argument is not valid UTF-8: sv\u{fffd}\u{fffd}\n"
    );
    check(
        "rsupervise",
        &[os("--compat"), bad.clone()],
        t.path(),
        &[100],
    );
    check("rsvscan", std::slice::from_ref(&bad), t.path(), &[100]);
    check(
        "rsvscan",
        &[os("-t"), bad.clone(), os(".")],
        t.path(),
        &[100],
    );
    check("rsvscanctl", &[os("-a"), bad.clone()], t.path(), &[100]);
    check("rsvc", &[os("-d"), bad.clone()], t.path(), &[111]);
    check("rsvc", &[os("status"), bad.clone()], t.path(), &[1]);
    check("rsvstat", std::slice::from_ref(&bad), t.path(), &[1]);
    check("rsvok", std::slice::from_ref(&bad), t.path(), &[111]);
    check("rsvlog", std::slice::from_ref(&bad), t.path(), &[111]);
    check("rsvlog", &[os("t"), bad.clone()], t.path(), &[100, 111]);
    check("rsvtai64nlocal", &[bad], t.path(), &[0]);
}

#[test]
fn empty_and_missing_operands_are_usage_errors() {
    let t = TempDir::new("badargs-empty");
    for prog in ["rsupervise", "rsvscanctl", "rsvc", "rsvstat", "rsvok"] {
        check(prog, &[], t.path(), &[100]);
    }
    check("rsvlog", &[], t.path(), &[111]); // svlogd's usage exit code
    for prog in ["rsupervise", "rsvscan", "rsvscanctl"] {
        check(prog, &[os("")], t.path(), &[100]);
    }
    // Options missing their argument.
    check("rsvc", &[os("-T")], t.path(), &[100]);
    check("rsvc", &[os("-w")], t.path(), &[100]);
    check("rsvscan", &[os("-T")], t.path(), &[100]);
    check("rsvstat", &[os("-o")], t.path(), &[100]);
    check("rsvlog", &[os("-l")], t.path(), &[111]);
    // sv without a service: sv's usage, not "unable to control status".
    let e = check("rsvc", &[os("status")], t.path(), &[100]);
    assert!(e.starts_with("usage: rsvc "), "{e}");
    // Empty service names: one line naming the path.
    check("rsvc", &[os("-d"), os("")], t.path(), &[100, 111]);
    check("rsvc", &[os("up"), os("")], t.path(), &[1]);
    check("rsvstat", &[os("")], t.path(), &[1]);
    check("rsvok", &[os("")], t.path(), &[111]);
}

#[test]
fn huge_and_malformed_numbers() {
    let t = TempDir::new("badargs-num");
    std::fs::create_dir(t.path().join("svc")).unwrap();
    let huge = "99999999999999999999999";
    for args in [
        vec!["-T", huge, "-d", "svc"],
        vec!["-T", "-5", "-d", "svc"],
        vec!["-T", "abc", "-d", "svc"],
        vec!["-wX", "-d", "svc"],
    ] {
        check(
            "rsvc",
            &args.iter().map(|s| os(s)).collect::<Vec<_>>(),
            t.path(),
            &[100],
        );
    }
    for opt in ["-t", "-T", "-c", "-d"] {
        check("rsvscan", &[os(opt), os(huge), os("svc")], t.path(), &[100]);
        check("rsvscan", &[os(opt), os("x"), os("svc")], t.path(), &[100]);
    }
    check(
        "rsvstat",
        &[os("-o"), os("bogus"), os("svc")],
        t.path(),
        &[100],
    );
    check("rsvlog", &[os("-l"), os(huge), os("svc")], t.path(), &[111]);
    check(
        "rsvlog",
        &[os("t"), os("s18446744073709551615"), os("./svc")],
        t.path(),
        &[100],
    );
}

/// Settings files with values at the edge of u64: no overflow, the supervisor keeps working
/// (a down with timeout-kill and timeout-finish armed, then exit).
#[test]
fn huge_setting_values_are_harmless() {
    let t = TempDir::new("badargs-settings");
    let sd = t.path().join("a");
    common::script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    common::script(&sd.join("finish"), "#!/bin/sh\nexit 0\n");
    for (f, v) in [
        ("timeout-kill", "18446744073709551615"),
        ("timeout-finish", "18446744073709551615"),
        ("max-death-tally", "18446744073709551615"),
        ("notification-fd", "2147483647"),
    ] {
        std::fs::write(sd.join(f), format!("{v}\n")).unwrap();
    }
    for compat in ["s6", "runit"] {
        let err = t.path().join(format!("err-{compat}"));
        let mut g = common::Guard::spawn(
            Command::new(bin("rsupervise"))
                .args(["--compat", compat])
                .arg(&sd)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&err).unwrap()),
        );
        let sdp = sd.to_str().unwrap();
        common::wait_for(LIMIT, "up", || {
            let v = rsv::svview::View::read(&sd).ok()?;
            (v.up && v.pid > 0).then_some(())
        });
        let (c, _, e) = common::run(
            Command::new(bin("rsvc")).args(["-wD", "-T", "5000", "-d", sdp]),
            LIMIT,
        );
        assert_eq!(c, 0, "{compat}: {e}");
        let (c, _, e) = common::run(Command::new(bin("rsvc")).args(["-x", sdp]), LIMIT);
        assert_eq!(c, 0, "{compat}: {e}");
        assert_eq!(g.wait_exit(LIMIT).code(), Some(0), "{compat}");
        let text = std::fs::read_to_string(&err).unwrap();
        assert!(!text.contains("panicked"), "{compat}: {text}");
    }
}
