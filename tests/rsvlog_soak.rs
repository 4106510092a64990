//! Exactly-once logging under SIGKILL: a producer writes numbered 100-byte lines into a pipe
//! while the logger reading it is SIGKILLed at random instants and started again on the same
//! pipe (as a supervisor does); in the end every line is in the log directory once, in
//! order, unbroken, and the producer never waited long on the pipe.

mod common;

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Guard, TempDir, bin, logdir_content};

/// SIGKILLs of the logger per run.
const KILLS: usize = 200;
/// A kill comes at a uniformly random instant within this many ms of the logger's start.
const KILL_WINDOW_MS: u64 = 60;
/// Lines per write (4000 bytes: below PIPE_BUF, so the pipe never splits a write).
const BURST: u64 = 40;
/// Pause between bursts: about 10 MB/s, 100,000 lines/s.
const BURST_GAP: Duration = Duration::from_micros(400);
const LINE: usize = 100;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn line(n: u64) -> Vec<u8> {
    let mut l = format!("{n:010} ").into_bytes();
    l.resize(LINE - 1, b'x');
    l.push(b'\n');
    l
}

/// Writes bursts until `stop`; returns (lines written, longest single write in ms).
fn produce(w: OwnedFd, stop: Arc<AtomicBool>) -> (u64, u64) {
    let mut f = File::from(w);
    let mut n = 0u64;
    let mut stall = Duration::ZERO;
    let mut buf = Vec::with_capacity(LINE * BURST as usize);
    while !stop.load(Ordering::SeqCst) {
        buf.clear();
        for i in 0..BURST {
            buf.extend_from_slice(&line(n + i));
        }
        let t = Instant::now();
        f.write_all(&buf).expect("producer write");
        stall = stall.max(t.elapsed());
        n += BURST;
        std::thread::sleep(BURST_GAP);
    }
    (n, stall.as_millis() as u64)
}

fn logger(args: &[&str], dir: &Path, r: &OwnedFd, err: &File) -> Guard {
    let mut c = Command::new(bin("rsvlog"));
    c.args(args)
        .arg(dir)
        .stdin(Stdio::from(r.try_clone().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::from(err.try_clone().unwrap()));
    Guard::spawn(&mut c)
}

/// Checks the log: `strip` bytes of stamp before each line, then lines 0..n in order.
fn verify(content: &[u8], strip: usize, n: u64) {
    let mut want = 0u64;
    let mut broken = Vec::new();
    let mut dups = 0u64;
    let mut gaps = Vec::new();
    for l in content.split(|&b| b == b'\n') {
        if l.is_empty() {
            continue;
        }
        let body = l.get(strip..).unwrap_or(b"");
        let num = std::str::from_utf8(&body[..body.len().min(10)])
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        match num {
            Some(v) if body.len() == LINE - 1 && body == &line(v)[..LINE - 1] => {
                if v < want {
                    dups += 1;
                } else {
                    if v > want {
                        gaps.push((want, v - want));
                    }
                    want = v + 1;
                }
            }
            _ => broken.push(String::from_utf8_lossy(l).into_owned()),
        }
    }
    assert!(
        broken.is_empty() && dups == 0 && gaps.is_empty() && want == n,
        "{} broken lines {:?}, {dups} repeated, missing (from, count) {gaps:?}, last {want} of {n}",
        broken.len(),
        &broken[..broken.len().min(3)]
    );
}

fn soak(tag: &str, args: &[&str], config: Option<&str>, strip: usize) {
    let t = TempDir::new(tag);
    let dir = t.path().join("log");
    fs::create_dir(&dir).unwrap();
    if let Some(c) = config {
        fs::write(dir.join("config"), c).unwrap();
    }
    let err = File::create(t.path().join("stderr")).unwrap();
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let stop = stop.clone();
        std::thread::spawn(move || produce(w, stop))
    };
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let start = Instant::now();
    let mut hit = 0;
    for _ in 0..KILLS {
        let mut g = logger(args, &dir, &r, &err);
        std::thread::sleep(Duration::from_micros(rng.next() % (KILL_WINDOW_MS * 1000)));
        g.signal(libc::SIGKILL);
        let st = g.wait_exit(Duration::from_secs(10));
        if std::os::unix::process::ExitStatusExt::signal(&st) == Some(libc::SIGKILL) {
            hit += 1;
        }
    }
    stop.store(true, Ordering::SeqCst);
    // The last logger drains the pipe; the producer may be blocked on it meanwhile.
    let mut last = logger(args, &dir, &r, &err);
    let (n, stall_ms) = producer.join().unwrap();
    drop(r);
    let st = last.wait_exit(Duration::from_secs(60));
    let took = start.elapsed();
    let errors = fs::read_to_string(t.path().join("stderr")).unwrap_or_default();
    assert!(st.success(), "last logger: {st:?}\n{errors}");
    let content = logdir_content(&dir);
    eprintln!(
        "{tag}: seed {seed}, {hit} of {KILLS} SIGKILLs hit a running logger, {n} lines \
         ({} MB), longest producer stall {stall_ms} ms, {:.1} s",
        n * LINE as u64 / 1_000_000,
        took.as_secs_f64()
    );
    verify(&content, strip, n);
    assert!(stall_ms < 2000, "producer stalled {stall_ms} ms");
}

/// svlogd syntax, TAI64N stamps (`@` + 24 hex digits + space), rotation every 1,000,000
/// bytes, every archive kept.
#[test]
fn svlogd_every_line_once_under_sigkill() {
    soak("soak-svlogd", &["-t"], Some("s1000000\nn0\n"), 26);
}

/// s6-log syntax, TAI64N stamps, rotation every 1,000,000 bytes, (nearly) every archive kept.
#[test]
fn s6log_every_line_once_under_sigkill() {
    soak("soak-s6log", &["t", "n100000", "s1000000"], None, 26);
}

/// A writer that stops in the middle of a line: the logger takes that line in (it cannot stay
/// in the pipe without the logger polling for its end) and then sleeps without waking up,
/// and the line is logged whole once it ends.
#[test]
fn partial_line_waits_without_waking_up() {
    let t = TempDir::new("soak-partial");
    let dir = t.path().join("log");
    fs::create_dir(&dir).unwrap();
    let err = File::create(t.path().join("stderr")).unwrap();
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let mut w = File::from(w);
    let mut g = logger(&[], &dir, &r, &err);
    drop(r);
    w.write_all(b"first\npartial").unwrap();
    let cur = dir.join("current");
    common::wait_for(Duration::from_secs(10), "first line", || {
        fs::read(&cur).ok().filter(|c| c == b"first\n")
    });
    let switches = || -> u64 {
        fs::read_to_string(format!("/proc/{}/status", g.pid()))
            .unwrap()
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    };
    // Let the short look-again phase (about 20 ms) pass, then count over one second.
    std::thread::sleep(Duration::from_millis(300));
    let a = switches();
    std::thread::sleep(Duration::from_secs(1));
    let woke = switches() - a;
    assert!(woke <= 2, "the logger woke up {woke} times in 1 s");
    w.write_all(b" end\n").unwrap();
    drop(w);
    assert!(g.wait_exit(Duration::from_secs(10)).success());
    assert_eq!(fs::read(&cur).unwrap(), b"first\npartial end\n");
}
