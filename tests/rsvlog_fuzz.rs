//! Random input bytes and random config/script lines (deterministic PRNG, bounded number of
//! runs): rsvlog never panics, exits with a documented code, and loses no line.

mod common;

use common::{TempDir, bin, logdir_content};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}

fn random_input(r: &mut Rng) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..r.below(300) {
        let len = match r.below(10) {
            0 => r.below(20000),
            1 => 0,
            _ => r.below(200),
        };
        for _ in 0..len {
            let b = match r.below(4) {
                0 => r.below(256) as u8,
                _ => b'a' + r.below(26) as u8,
            };
            v.push(if b == b'\n' { b'.' } else { b });
        }
        v.push(b'\n');
    }
    if r.below(3) == 0 {
        v.extend_from_slice(b"partial last line");
    }
    v
}

fn run(cwd: &Path, args: &[String], input: &[u8]) -> (i32, String) {
    let mut child = Command::new(bin("rsvlog"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            common::kill_pid(pid);
            panic!("rsvlog {args:?} hung");
        }
    };
    let _ = w.join();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn no_newlines(b: &[u8]) -> Vec<u8> {
    b.iter().copied().filter(|&c| c != b'\n').collect()
}

#[test]
fn random_configs_and_input_never_panic_nor_lose_lines() {
    let mut r = Rng(0x5eed_1234_abcd_ef01);
    let sv_lines = [
        "s100",
        "s5000",
        "s0",
        "n0",
        "n3",
        "N1",
        "t1",
        "pPFX:",
        "+*",
        "-x*",
        "e*",
        "Eab*",
        "#c",
        "",
        "s12abc",
        "zzz",
        "u127.0.0.1:9",
        "!",
        "+a+b*",
        "-",
        "t",
        "p",
    ];
    let s6_words = [
        "n3", "n0", "s4096", "s99999", "S20000", "l100", "r10", "E10", "^0", "^20", "pX", "p", "t",
        "T", "+a", "-b", "f", "+[", "2", "=st", "nope", "s1", "l9999999", "+", "-",
    ];
    for iter in 0..40 {
        let t = TempDir::new("log-fuzz");
        let input = random_input(&mut r);
        let mut expect = input.clone();
        if !expect.is_empty() && !expect.ends_with(b"\n") {
            expect.push(b'\n');
        }
        if iter % 2 == 0 {
            // svlogd personality
            let d = t.path().join("d");
            fs::create_dir(&d).unwrap();
            let mut cfg: Vec<&str> = (0..r.below(6)).map(|_| r.pick(&sv_lines)).collect();
            let bytes: Vec<u8> = (0..r.below(8)).map(|_| r.below(256) as u8).collect();
            let mut text = cfg.join("\n").into_bytes();
            if r.below(4) == 0 {
                text.push(b'\n');
                text.extend_from_slice(&bytes);
            }
            fs::write(d.join("config"), &text).unwrap();
            let args: Vec<String> = vec!["d".into()];
            let (code, err) = run(t.path(), &args, &input);
            assert!(!err.contains("panicked"), "{err}");
            assert!(code == 0 || code == 111, "code {code}: {err}");
            // A lossless variant: keep everything, select everything, no UDP-only.
            cfg.retain(|l| !l.starts_with(['u', 'U', '!', '-', 'n', 't', 'p']) && !l.is_empty());
            cfg.retain(|l| l.starts_with(['s', '+', 'e', 'E', '#']));
            cfg.retain(|l| *l != "s12abc");
            cfg.push("n0");
            cfg.push("+*");
            let e = t.path().join("e");
            fs::create_dir(&e).unwrap();
            fs::write(e.join("config"), cfg.join("\n")).unwrap();
            let (code, err) = run(t.path(), &["e".to_string()], &input);
            assert_eq!(code, 0, "{cfg:?}: {err}");
            assert!(!err.contains("panicked"));
            assert_eq!(logdir_content(&e), expect, "svlogd config {cfg:?}");
        } else {
            let mut script: Vec<String> = (0..r.below(6))
                .map(|_| r.pick(&s6_words).to_string())
                .collect();
            script.push("./d".into());
            let (code, err) = run(t.path(), &script, &input);
            assert!(!err.contains("panicked"), "{err}");
            assert!([0, 100, 111].contains(&code), "code {code}: {err}");
            // Lossless: no count limit, everything selected before the directory.
            let mut s2: Vec<String> = script
                .iter()
                .filter(|w| w.starts_with(['s', 'l', 'r', 'E', '^', 'T']) && w.len() > 1)
                .filter(|w| !["s1", "l9999999", "l100"].contains(&w.as_str()))
                .cloned()
                .collect();
            s2.push("n0".into());
            let split = if r.below(2) == 0 { "0" } else { "100" };
            let mut args = vec!["-l".to_string(), split.to_string()];
            args.extend(s2.iter().cloned());
            args.push("S0".into());
            args.push("n1000".into());
            args.push("./e".into());
            let (code, err) = run(t.path(), &args, &input);
            assert_eq!(code, 0, "{args:?}: {err}");
            let got = logdir_content(&t.path().join("e"));
            assert_eq!(
                no_newlines(&got),
                no_newlines(&expect),
                "s6 script {args:?}"
            );
            if split == "0" {
                assert_eq!(got, expect);
            }
        }
    }
}
