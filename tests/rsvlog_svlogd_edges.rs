//! svlogd's rotation at its edge: with `s` equal to the line length limit (`-l`, default
//! 1000) svlogd rotates after every line (size >= s - len holds at once); one byte more or
//! less and it does not. Compared with the real svlogd file by file when it is installed.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{TempDir, bin, have_refs};

fn input() -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..120 {
        v.extend_from_slice("x".repeat(i % 50).as_bytes());
        v.extend_from_slice(format!("{i}\n").as_bytes());
    }
    v
}

/// Sizes of the rotated files in name order, then of `current`.
fn sizes(dir: &Path) -> Vec<u64> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with('@'))
        .collect();
    names.sort();
    names.push("current".into());
    names
        .iter()
        .map(|n| fs::metadata(dir.join(n)).unwrap().len())
        .collect()
}

fn log(prog: &Path, opts: &[&str], dir: &Path, config: &str) -> Vec<u64> {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("config"), config).unwrap();
    let mut c = Command::new(prog)
        .args(opts)
        .arg(dir)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(&input()).unwrap();
    assert!(c.wait().unwrap().success());
    sizes(dir)
}

#[test]
fn size_equal_to_line_length_rotates_after_every_line() {
    let t = TempDir::new("log-svedge");
    let ours = t.path().join("svlogd");
    std::os::unix::fs::symlink(bin("rsvlog"), &ours).unwrap();
    let real = have_refs(&["svlogd"]);
    for (i, (opts, config)) in [
        (&[][..], "s1000\nn200\n"),
        (&["-l", "100"][..], "s100\nn200\n"),
        (&[][..], "s999\nn200\n"),
        (&[][..], "s1001\nn200\n"),
    ]
    .into_iter()
    .enumerate()
    {
        let got = log(&ours, opts, &t.path().join(format!("o{i}")), config);
        if i < 2 {
            // one file per line: 120 archives, and current empty after the last rotation
            assert_eq!(got.len(), 121, "{opts:?} {config:?}: {got:?}");
            assert_eq!(got[0], 2, "{got:?}"); // "0\n"
            assert_eq!(*got.last().unwrap(), 0, "{got:?}");
        }
        if real {
            let want = log(
                Path::new("svlogd"),
                opts,
                &t.path().join(format!("r{i}")),
                config,
            );
            assert_eq!(got, want, "{opts:?} {config:?}");
        }
    }
}
