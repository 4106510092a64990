//! rsvtai64nlocal against the real s6-tai64nlocal, byte for byte, and its daemontools style.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TempDir, bin, have_refs, kill_pid};

/// Runs `prog args` with `input` on stdin and `TZ=tz`, bounded; returns (exit code, stdout).
fn filter_through(prog: &std::path::Path, args: &[&str], tz: &str, input: &[u8]) -> (i32, Vec<u8>) {
    let mut child = Command::new(prog)
        .args(args)
        .env("TZ", tz)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(r) => r.expect("wait"),
        Err(_) => {
            kill_pid(pid);
            panic!("{prog:?} did not finish");
        }
    };
    writer.join().unwrap();
    (out.status.code().unwrap_or(-1), out.stdout)
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const LEAPS: [u64; 4] = [78796800, 94694400, 1435708800, 1483228800];

/// Lines with many kinds of labels: real ones, around leap seconds, out of range, upper case,
/// short, followed by nothing, binary garbage, empty lines.
fn handmade_input(seed: u64, lines: usize) -> Vec<u8> {
    let mut r = Rng(seed);
    let mut out = Vec::new();
    for _ in 0..lines {
        let secs: u64 = match r.below(8) {
            0 => (1 << 62) + 37 + 1_600_000_000 + r.below(400_000_000),
            1 => {
                // Around a leap second, in the s6 family (j leaps before it).
                let j = r.below(LEAPS.len() as u64) as usize;
                let before = [0u64, 1, 25, 26][j];
                (1 << 62) + 10 + LEAPS[j] + before - 3 + r.below(6)
            }
            2 => (1 << 62) + r.below(20),
            3 => r.next(),
            4 => (1 << 62) + r.below(1 << 40),
            5 => (1 << 62) + 10 + r.below(5_000_000_000),
            _ => (1 << 62) + 37 + 1_795_727_000 + r.below(100_000),
        };
        let nanos: u64 = match r.below(6) {
            0 => 0xffff_ffff,
            1 => 999_999_999 + r.below(3),
            _ => r.below(1_000_000_000),
        };
        let mut label = format!("@{secs:016x}{nanos:08x}");
        if r.below(6) == 0 {
            label = label.to_uppercase();
        }
        if r.below(10) == 0 {
            // A non-hex digit somewhere in the label.
            let pos = 1 + r.below(24) as usize;
            label.replace_range(pos..pos + 1, "g");
        }
        match r.below(12) {
            0 => label.truncate(1 + r.below(25) as usize),
            1 => label.clear(),
            _ => {}
        }
        out.extend_from_slice(label.as_bytes());
        match r.below(6) {
            0 => {}
            1 => out.extend_from_slice(b"\0\x01\xff\xfe binary \x1b[0m"),
            2 => out.extend_from_slice(b"x"),
            _ => out.extend_from_slice(b" a log line with some text in it"),
        }
        out.push(b'\n');
    }
    out
}

fn compare(tz: &str, input: &[u8], what: &str) -> Vec<u8> {
    let (rc_ref, want) = filter_through(std::path::Path::new("s6-tai64nlocal"), &[], tz, input);
    let (rc, got) = filter_through(&bin("rsvtai64nlocal"), &[], tz, input);
    assert_eq!(rc_ref, 0);
    assert_eq!(rc, 0);
    if got != want {
        let gl: Vec<&[u8]> = got.split(|&b| b == b'\n').collect();
        let wl: Vec<&[u8]> = want.split(|&b| b == b'\n').collect();
        let il: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        for (i, (g, w)) in gl.iter().zip(wl.iter()).enumerate() {
            assert_eq!(
                String::from_utf8_lossy(g),
                String::from_utf8_lossy(w),
                "{what}, TZ={tz}, line {i}: input {:?}",
                String::from_utf8_lossy(il.get(i).copied().unwrap_or(b""))
            );
        }
        assert_eq!(got.len(), want.len(), "{what}, TZ={tz}: lengths differ");
    }
    got
}

#[test]
fn matches_s6_tai64nlocal_on_handmade_labels() {
    if !have_refs(&["s6-tai64nlocal"]) {
        return;
    }
    let mut zones = vec!["UTC", "Europe/Berlin", "America/New_York"];
    // A zone whose time_t counts leap seconds, when tzdata provides it.
    if std::path::Path::new("/usr/share/zoneinfo/right/UTC").exists() {
        zones.push("right/UTC");
    }
    let input = handmade_input(0x9e37_79b9_7f4a_7c15, 3000);
    let mut outputs = Vec::new();
    for tz in zones {
        let out = compare(tz, &input, "handmade");
        let converted = out
            .split(|&b| b == b'\n')
            .filter(|l| l.first().is_some_and(u8::is_ascii_digit))
            .count();
        assert!(
            converted > 1000,
            "only {converted} lines converted with TZ={tz}"
        );
        outputs.push(out);
    }
    assert_ne!(outputs[0], outputs[1], "TZ is not honoured");
}

#[test]
fn matches_s6_tai64nlocal_on_s6_tai64n_output() {
    if !have_refs(&["s6-tai64n", "s6-tai64nlocal"]) {
        return;
    }
    let mut lines = Vec::new();
    for i in 0..2000 {
        lines.extend_from_slice(format!("line {i} of the log\n").as_bytes());
    }
    lines.extend_from_slice(b"\n\nlast line without newline");
    let (rc, stamped) = filter_through(std::path::Path::new("s6-tai64n"), &[], "UTC", &lines);
    assert_eq!(rc, 0);
    assert!(stamped.starts_with(b"@4000"));
    for tz in ["UTC", "Europe/Berlin"] {
        compare(tz, &stamped, "s6-tai64n output");
    }
    // -g (UTC) on the same stamps.
    let (_, want) = filter_through(
        std::path::Path::new("s6-tai64nlocal"),
        &["-g"],
        "Europe/Berlin",
        &stamped,
    );
    let (_, got) = filter_through(&bin("rsvtai64nlocal"), &["-g"], "Europe/Berlin", &stamped);
    assert!(got == want, "-g output differs");
}

#[test]
fn edge_cases_match_s6_tai64nlocal() {
    if !have_refs(&["s6-tai64nlocal"]) {
        return;
    }
    let cases: &[&[u8]] = &[
        b"",
        b"\n",
        b"\n\n\n",
        b"no newline at all",
        b"@400000006b089ea52902bae6",
        b"@400000006b089ea52902bae6\n",
        b"@400000006b089ea52902bae6x",
        b"@400000006B089EA52902BAE6 upper\n",
        b"@400000006b089ea52902bae hex short\n",
        b"@400000006b089ea52902bae6ff longer\n",
        b"@\n@4\n@40000000\n",
        b" @400000006b089ea52902bae6 not at start\n",
        b"@400000006b089ea52902bae6\0\xff\xfe\n",
        b"\xff\xfe\0\x01\n@400000006b089ea52902bae6 \x80\n",
        b"@400000000000000900000000 before 1970\n@400000000000000a00000000 epoch\n",
        b"@7fffffffffffffff00000000 far\n@ffffffffffffffffffffffff max\n",
        b"@400000006b089ea5ffffffff big nanos\n@400000006b089ea53b9aca00 1e9\n",
        b"@40000000586846a400000000 leap\n@40000000586846a300000000\n",
    ];
    for tz in ["UTC", "Europe/Berlin"] {
        for c in cases {
            compare(tz, c, "edge case");
        }
    }
    // A long line split over many reads, and many short lines.
    let mut long = b"@400000006b089ea52902bae6 ".to_vec();
    long.extend(std::iter::repeat_n(b'z', 300_000));
    long.extend_from_slice(b"\n@400000006b089ea52902bae6 after\n");
    compare("UTC", &long, "long line");
}

#[test]
fn gmt_option_matches_reference() {
    if !have_refs(&["s6-tai64nlocal"]) {
        return;
    }
    let input = handmade_input(77, 500);
    let (_, want) = filter_through(
        std::path::Path::new("s6-tai64nlocal"),
        &["-g"],
        "Europe/Berlin",
        &input,
    );
    let (_, got) = filter_through(&bin("rsvtai64nlocal"), &["-g"], "Europe/Berlin", &input);
    assert!(got == want, "-g output differs");
}

#[test]
fn daemontools_style_uses_the_runit_offset() {
    let ex = b"@400000006b089ea52902bae6 x\n";
    let (rc, got) = filter_through(&bin("rsvtai64nlocal"), &["-r"], "UTC", ex);
    assert_eq!(rc, 0);
    assert_eq!(got, b"2026-11-26 21:03:23.688044774 x\n");
    let (_, got) = filter_through(&bin("rsvtai64nlocal"), &[], "UTC", ex);
    assert_eq!(got, b"2026-11-26 21:02:56.688044774 x\n");
    let (_, got) = filter_through(&bin("rsvtai64nlocal"), &["-r"], "Europe/Berlin", ex);
    assert_eq!(got, b"2026-11-26 22:03:23.688044774 x\n");

    // Started as tai64nlocal, it is the daemontools style without options.
    let dir = TempDir::new("tai64nlocal");
    let link = dir.path().join("tai64nlocal");
    std::os::unix::fs::symlink(bin("rsvtai64nlocal"), &link).unwrap();
    let (_, got) = filter_through(&link, &[], "UTC", ex);
    assert_eq!(got, b"2026-11-26 21:03:23.688044774 x\n");
    // ...and -s brings back the s6 style.
    let (_, got) = filter_through(&link, &["-s"], "UTC", ex);
    assert_eq!(got, b"2026-11-26 21:02:56.688044774 x\n");

    // daemontools: no leap table, 10-digit nanoseconds kept, a label cut by end of input dropped,
    // an unterminated converted line kept.
    let (_, got) = filter_through(
        &link,
        &[],
        "UTC",
        b"@40000000586846a4ffffffff a\nplain\n@40000000586846a400000001 tail\n@4000",
    );
    assert_eq!(
        got,
        b"2017-01-01 00:00:26.4294967295 a\nplain\n2017-01-01 00:00:26.000000001 tail\n"
    );
}

#[test]
fn usage_and_write_errors() {
    let (rc, _) = filter_through(&bin("rsvtai64nlocal"), &["-x"], "UTC", b"");
    assert_eq!(rc, 100);
    let out = Command::new(bin("rsvtai64nlocal"))
        .stdin(Stdio::null())
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .stderr(Stdio::piped())
        .output();
    // Empty input writes nothing, so nothing fails.
    assert_eq!(out.unwrap().status.code(), Some(0));
    let mut child = Command::new(bin("rsvtai64nlocal"))
        .stdin(Stdio::piped())
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a line\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(111));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err,
        "rsvtai64nlocal: fatal: unable to write to stdout: No space left on device\n"
    );
}

/// Is `prog` on PATH? (daemontools is optional: without it this comparison is skipped even
/// where the runit and s6 references are required.)
fn on_path(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Input the real daemontools tai64nlocal converts without crashing: every label has exactly 24
/// lowercase hex digits and a time the C library can convert (shorter labels make it crash).
fn daemontools_input(seed: u64, lines: usize) -> Vec<u8> {
    let mut r = Rng(seed);
    let mut out = Vec::new();
    for i in 0..lines {
        match r.below(10) {
            0 => out.extend_from_slice(b"a plain line\n"),
            1 => out.extend_from_slice(b"\n"),
            2 => out.extend_from_slice(b"\xff\x00binary @400000006b089ea52902bae6\n"),
            _ => {
                let secs = match r.below(4) {
                    0 => (1 << 62) - 1_000_000_000 + r.below(2_000_000_000),
                    1 => (1 << 62) + 10 + 1_483_228_800 - 5 + r.below(40),
                    _ => (1 << 62) + 10 + 1_600_000_000 + r.below(400_000_000),
                };
                let nanos = match r.below(4) {
                    0 => 0xffff_ffff - r.below(4),
                    1 => 999_999_990 + r.below(20),
                    _ => r.below(1_000_000_000),
                };
                out.extend_from_slice(format!("@{secs:016x}{nanos:08x}").as_bytes());
                let tail: &[u8] = match r.below(6) {
                    0 => b"\n",
                    1 => b"x\n",
                    2 => b"G not hex\n",
                    3 => b"\x01\xfe\n",
                    _ => b" some text of the line\n",
                };
                out.extend_from_slice(tail);
            }
        }
        if i == lines - 1 {
            // The last line without its newline.
            out.pop();
        }
    }
    out
}

#[test]
fn daemontools_style_matches_real_tai64nlocal_when_installed() {
    if !on_path("tai64nlocal") {
        eprintln!("SKIPPED: daemontools' tai64nlocal not installed (apt-get install daemontools)");
        return;
    }
    let dir = TempDir::new("tai64nlocal-dt");
    let link = dir.path().join("tai64nlocal");
    std::os::unix::fs::symlink(bin("rsvtai64nlocal"), &link).unwrap();
    for (seed, tz) in [
        (11u64, "UTC"),
        (12, "Europe/Berlin"),
        (13, "America/New_York"),
    ] {
        let input = daemontools_input(seed, 3000);
        let (rc_ref, want) = filter_through(std::path::Path::new("tai64nlocal"), &[], tz, &input);
        assert_eq!(
            rc_ref, 0,
            "the reference crashed: the generator made a bad label"
        );
        let (rc, got) = filter_through(&link, &[], tz, &input);
        assert_eq!(rc, 0);
        let (_, got_r) = filter_through(&bin("rsvtai64nlocal"), &["-r"], tz, &input);
        assert!(got == got_r, "-r and the tai64nlocal name differ");
        if got != want {
            let gl: Vec<&[u8]> = got.split(|&b| b == b'\n').collect();
            let wl: Vec<&[u8]> = want.split(|&b| b == b'\n').collect();
            for (i, (g, w)) in gl.iter().zip(wl.iter()).enumerate() {
                assert_eq!(
                    String::from_utf8_lossy(g),
                    String::from_utf8_lossy(w),
                    "TZ={tz}, line {i}"
                );
            }
            panic!("TZ={tz}: outputs differ in length");
        }
        let converted = got
            .split(|&b| b == b'\n')
            .filter(|l| l.first().is_some_and(u8::is_ascii_digit))
            .count();
        assert!(converted > 1500, "only {converted} lines converted");
    }
    // End of input inside a label: both drop that partial line.
    let cut = b"@400000006b089ea52902bae6 x\n@400000006b089ea5";
    let (_, want) = filter_through(std::path::Path::new("tai64nlocal"), &[], "UTC", cut);
    let (_, got) = filter_through(&link, &[], "UTC", cut);
    assert_eq!(got, want);
}
