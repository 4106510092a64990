//! Smoke test of bench/run --quick: every workload row is in the table, with numbers in it, the
//! chart is written and no temp file is left behind.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Bound on `bench/run --quick`: about 40 s on an idle 2-core machine, over 90 s with both
/// cores busy (every workload starts hundreds of processes), so the bound is generous.
const QUICK_LIMIT: Duration = Duration::from_secs(300);

use common::{TempDir, bin, have_refs, run};

/// The rows bench/run prints in --quick mode (label prefixes, in order).
const ROWS: [(&str, &str); 19] = [
    ("1", "startup of 10 services"),
    ("1", "startup of 30 services"),
    ("2", "PSS per supervisor"),
    ("2", "RSS per supervisor"),
    ("2", "PSS of scanner + supervisors per service"),
    ("3", "restart latency after SIGKILL, rsv s6 mode"),
    ("3", "restart latency after SIGKILL, rsv runit mode"),
    ("4", "control round trip down + up, rsv s6 mode"),
    ("4", "control round trip down + up, rsv runit mode"),
    ("5", "pick-up latency, s6: s6-svscanctl -a"),
    ("5", "pick-up latency, s6: -t 1000, no command"),
    ("6", "idle wake-ups/s"),
    ("6", "idle CPU in 2 s"),
    ("7", "shutdown of 10 services"),
    ("7", "finish scripts run at shutdown"),
    ("8", "logger, rsvlog in svlogd syntax"),
    ("8", "logger, rsvlog in s6-log syntax"),
    ("9", "installed size, stripped, C library not counted"),
    ("9", "installed size with the C library"),
];

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// "12.3 (10.1-15.0)" -> (median, min, max)
fn cell(c: &str, what: &str) -> (f64, f64, f64) {
    let num = |s: &str| -> f64 {
        s.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{what}: {s:?} in {c:?} is not a number"))
    };
    let (med, rest) = c
        .split_once(" (")
        .unwrap_or_else(|| panic!("{what}: {c:?}"));
    let (lo, hi) = rest
        .trim_end_matches(')')
        .split_once('-')
        .unwrap_or_else(|| panic!("{what}: {c:?}"));
    (num(med), num(lo), num(hi))
}

#[test]
fn quick_run_has_every_workload_row() {
    let refs = [
        "unshare",
        "runsvdir",
        "runsv",
        "sv",
        "svlogd",
        "s6-svscan",
        "s6-supervise",
        "s6-svc",
        "s6-svscanctl",
        "s6-log",
        "execlineb",
        "hyperfine",
        "strip",
    ];
    if !have_refs(&refs) {
        return;
    }
    if !is_root() {
        eprintln!("SKIPPED: bench/run needs root (pid namespaces)");
        return;
    }
    let tmp = TempDir::new("bench-run");
    let work = tmp.path().join("tmp");
    std::fs::create_dir(&work).unwrap();
    let svg = tmp.path().join("ratios.svg");
    let rsv_bin = bin("rsvscan").parent().unwrap().to_path_buf();
    let started = Instant::now();
    let (code, out, err) = run(
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/run"))
            .arg("--quick")
            .arg("--svg")
            .arg(&svg)
            .env("RSV_BIN", &rsv_bin)
            .env("TMPDIR", &work),
        QUICK_LIMIT,
    );
    assert_eq!(code, 0, "bench/run --quick failed: {err}\n{out}");
    assert!(started.elapsed() < QUICK_LIMIT);

    let leftovers: Vec<_> = std::fs::read_dir(&work).unwrap().collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");

    // The main table: from its header to the first line that is not a table row (the floor's
    // table and other notes follow it).
    let rows: Vec<Vec<String>> = out
        .lines()
        .skip_while(|l| !l.starts_with("| # |"))
        .skip(2)
        .take_while(|l| l.starts_with("| "))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), ROWS.len(), "{out}");
    for (row, (w, label)) in rows.iter().zip(ROWS) {
        assert_eq!(row.len(), 7, "{row:?}");
        assert_eq!(row[0], w, "{row:?}");
        assert!(row[1].starts_with(label), "{row:?} should be {label}");
        for c in &row[2..5] {
            let (med, lo, hi) = cell(c, &row[1]);
            assert!(med >= 0.0 && lo <= med && med <= hi, "{row:?}");
        }
        for r in &row[5..7] {
            assert!(
                r == "-" || r == "inf" || r.parse::<f64>().is_ok_and(|v| v >= 0.0),
                "{row:?}: ratio {r}"
            );
        }
    }
    // Values that cannot be anything else: every service came up and rsv ran every finish.
    let finishes = rows
        .iter()
        .find(|r| r[1].starts_with("finish scripts"))
        .unwrap();
    assert_eq!(cell(&finishes[2], "finishes").0, 10.0, "{finishes:?}");
    assert_eq!(cell(&finishes[4], "finishes").0, 10.0, "{finishes:?}");

    let chart = std::fs::read_to_string(&svg).expect("the chart");
    assert!(chart.starts_with("<svg ") && chart.trim_end().ends_with("</svg>"));
    assert!(chart.matches("<rect ").count() >= 4, "{chart}");
}

#[test]
fn json_and_usage() {
    if !have_refs(&["unshare", "strip"]) || !is_root() {
        return;
    }
    let tmp = TempDir::new("bench-run-json");
    let rsv_bin = bin("rsvscan").parent().unwrap().to_path_buf();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/run");
    // workload 9 only: fast, no reference needs to run
    let (code, out, err) = run(
        Command::new(&script)
            .args(["--quick", "--json", "--only", "9", "--svg"])
            .arg(tmp.path().join("c.svg"))
            .env("RSV_BIN", &rsv_bin)
            .env("TMPDIR", tmp.path()),
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("{\"rounds\":1,\"quick\":true,"), "{out}");
    assert!(out.contains("\"metric\":\"size\""), "{out}");
    assert!(out.contains("\"metric\":\"size_libc\""), "{out}");
    assert_eq!(out.matches("\"metric\"").count(), 2, "{out}");
    let (code, _, err) = run(
        Command::new(&script).args(["--only", "11"]),
        Duration::from_secs(10),
    );
    assert_eq!(code, 100, "{err}");
    assert!(err.starts_with("usage: bench/run"), "{err}");
}
