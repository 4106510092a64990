//! Smoke test of bench/logger --quick: the table has every row, with numbers in it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{TempDir, have_refs, run, script};

/// svlogd, s6-log and execlineb are references (have_refs: skipped, or a failure in CI). hyperfine
/// and /usr/bin/time are installed by bench/logger itself when it runs as root with apt-get.
fn bench_can_run() -> bool {
    if !have_refs(&["svlogd", "s6-log", "execlineb"]) {
        return false;
    }
    let sh = |c: &str| {
        Command::new("sh")
            .args(["-c", c])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if sh("command -v hyperfine >/dev/null && test -x /usr/bin/time")
        || sh("test \"$(id -u)\" = 0 && command -v apt-get >/dev/null")
    {
        return true;
    }
    have_refs(&["hyperfine", "/usr/bin/time"])
}

const VARIANTS: [&str; 3] = ["plain", "filter", "processor"];

fn bench_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/logger")
}

/// Table rows as (variant, program, cells after the program).
fn rows(out: &str) -> Vec<(String, String, Vec<String>)> {
    out.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| variant"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect();
            (cells[0].clone(), cells[1].clone(), cells[2..].to_vec())
        })
        .collect()
}

fn positive(cell: &str, what: &str) -> f64 {
    let v: f64 = cell
        .parse()
        .unwrap_or_else(|_| panic!("{what}: {cell:?} is not a number"));
    assert!(v >= 0.0 && v.is_finite(), "{what}: {v}");
    v
}

/// Runs the quick benchmark with RSVLOG=`rsvlog` and TMPDIR in a fresh dir; checks the rows and
/// that the script removed its temp files. Returns stdout.
fn quick(rsvlog: &Path, expect_rsvlog: bool) -> String {
    let tmp = TempDir::new("bench");
    let (code, out, err) = run(
        Command::new(bench_script())
            .arg("--quick")
            .env("RSVLOG", rsvlog)
            .env("TMPDIR", tmp.path()),
        Duration::from_secs(300),
    );
    assert_eq!(code, 0, "bench/logger --quick failed: {err}\n{out}");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    let rows = rows(&out);
    let has = |variant: &str, prefix: &str| {
        rows.iter()
            .filter(|(v, p, _)| v == variant && p.starts_with(prefix))
            .count()
    };
    assert_eq!(has("plain", "cat > file"), 1, "{out}");
    for v in VARIANTS {
        assert_eq!(has(v, "svlogd -tt"), 1, "svlogd row for {v}: {out}");
        assert_eq!(
            has(v, "s6-log t s1000000 n10"),
            1,
            "s6-log row for {v}: {out}"
        );
        let want = usize::from(expect_rsvlog);
        assert_eq!(has(v, "rsvlog (svlogd syntax)"), want, "{v}: {out}");
        assert_eq!(has(v, "rsvlog (s6-log syntax)"), want, "{v}: {out}");
    }
    assert_eq!(rows.len(), if expect_rsvlog { 13 } else { 7 }, "{out}");
    for (v, p, cells) in &rows {
        let what = format!("{v} {p}");
        let med = positive(&cells[0], &what);
        let lo = positive(&cells[1], &what);
        let hi = positive(&cells[2], &what);
        assert!(
            lo <= med && med <= hi,
            "{what}: min {lo} median {med} max {hi}"
        );
        if p.starts_with("rsvlog") {
            for r in &cells[5..8] {
                assert!(positive(r, &what) > 0.0, "{what}: ratio {r}");
            }
        } else {
            assert_eq!(&cells[5..8], &["-", "-", "-"], "{what}");
        }
    }
    if !expect_rsvlog {
        assert!(out.contains("Note: rsvlog not found"), "{out}");
    }
    out
}

#[test]
fn quick_bench_has_every_row() {
    if !bench_can_run() {
        return;
    }
    // The rsvlog rows are mandatory whenever this crate builds rsvlog.
    match option_env!("CARGO_BIN_EXE_rsvlog") {
        Some(p) => {
            quick(Path::new(p), true);
        }
        None => {
            quick(Path::new("/nonexistent/rsvlog"), false);
        }
    }
}

#[test]
fn quick_bench_computes_ratios_for_a_stand_in_logger() {
    if !bench_can_run() {
        return;
    }
    // A stand-in that is the reference under each name: every rsvlog row and ratio is produced.
    let dir = TempDir::new("bench-fake");
    let fake = dir.path().join("rsvlog");
    let svlogd = Command::new("sh")
        .args(["-c", "command -v svlogd"])
        .output()
        .unwrap();
    let s6log = Command::new("sh")
        .args(["-c", "command -v s6-log"])
        .output()
        .unwrap();
    script(
        &fake,
        &format!(
            "#!/bin/sh\ncase ${{0##*/}} in\nsvlogd) exec {} \"$@\" ;;\ns6-log) exec {} \"$@\" ;;\nesac\nexit 100\n",
            String::from_utf8_lossy(&svlogd.stdout).trim(),
            String::from_utf8_lossy(&s6log.stdout).trim()
        ),
    );
    quick(&fake, true);
}

#[test]
fn a_logger_that_loses_the_last_line_is_reported_not_timed() {
    if !bench_can_run() {
        return;
    }
    // Under the svlogd name, this stand-in drops the last input line (an ERROR line, which the
    // filter variant deselects anyway): its plain and processor rows must fail the check run.
    let dir = TempDir::new("bench-lossy");
    let fake = dir.path().join("rsvlog");
    let svlogd = Command::new("sh")
        .args(["-c", "command -v svlogd"])
        .output()
        .unwrap();
    let s6log = Command::new("sh")
        .args(["-c", "command -v s6-log"])
        .output()
        .unwrap();
    script(
        &fake,
        &format!(
            "#!/bin/sh\ncase ${{0##*/}} in\nsvlogd) head -n -1 | {} \"$@\" ;;\ns6-log) exec {} \"$@\" ;;\nesac\n",
            String::from_utf8_lossy(&svlogd.stdout).trim(),
            String::from_utf8_lossy(&s6log.stdout).trim()
        ),
    );
    let (code, out, err) = run(
        Command::new(bench_script())
            .arg("--quick")
            .env("RSVLOG", &fake)
            .env("TMPDIR", dir.path()),
        Duration::from_secs(300),
    );
    assert_eq!(code, 0, "{err}");
    let rows = rows(&out);
    let svlogd_syntax: Vec<&str> = rows
        .iter()
        .filter(|(_, p, _)| p == "rsvlog (svlogd syntax)")
        .map(|(v, _, _)| v.as_str())
        .collect();
    assert_eq!(svlogd_syntax, ["filter"], "{out}");
    let s6_syntax = rows
        .iter()
        .filter(|(_, p, _)| p == "rsvlog (s6-log syntax)")
        .count();
    assert_eq!(s6_syntax, 3, "{out}");
    assert_eq!(out.matches("failed its check run").count(), 2, "{out}");
}

#[test]
fn bad_usage_exits_100() {
    let (code, _, err) = run(
        Command::new(bench_script()).arg("--bogus"),
        Duration::from_secs(30),
    );
    assert_eq!(code, 100);
    assert!(err.contains("usage: bench/logger"), "{err}");
}
