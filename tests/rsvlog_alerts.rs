//! s6-log's `2` action (alerts on stderr) with its `E` truncation, byte for byte against the
//! real s6-log: a line is cut at E bytes plus `...` only when that makes it shorter.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{TempDir, bin, have_refs};

fn alerts(prog: &std::path::Path, script: &[&str], input: &[u8]) -> (i32, Vec<u8>) {
    let mut c = Command::new(prog)
        .args(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input).unwrap();
    let o = c.wait_with_output().unwrap();
    (o.status.code().unwrap_or(-1), o.stderr)
}

#[test]
fn alert_truncation_matches_s6_log() {
    let t = TempDir::new("log-alerts");
    let ours = t.path().join("s6-log");
    std::os::unix::fs::symlink(bin("rsvlog"), &ours).unwrap();
    let mut input = Vec::new();
    for n in 8..=16 {
        input.extend_from_slice(&b"abcdefghijklmnopqrstuvwxyz"[..n]);
        input.push(b'\n');
    }
    let (code, err) = alerts(&ours, &["E10", "2"], &input);
    assert_eq!(code, 0);
    let text = String::from_utf8(err).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9, "{text}");
    // 8..=13 bytes: whole (13 = 10 + "..." would not be shorter); 14..=16: cut.
    assert_eq!(lines[5], "s6-log: alert: abcdefghijklm");
    assert_eq!(lines[6], "s6-log: alert: abcdefghij...");
    if have_refs(&["s6-log"]) {
        for script in [
            &["E10", "2"][..],
            &["E5", "2"],
            &["E0", "2"],
            &["E3", "p>", "2"],
        ] {
            assert_eq!(
                alerts(std::path::Path::new("s6-log"), script, &input),
                alerts(&ours, script, &input),
                "{script:?}"
            );
        }
    }
}
