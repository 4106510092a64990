//! The README's demo for real: rsvscan on a copy of servicedirs-examples/demo with rsv's own
//! programs (rsupervise, rsvlog for hello's logger), then SIGTERM (what the demo script sends
//! on Ctrl-C) stops everything in order and rsvscan exits 0.

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Guard, TempDir, alive, bin, have_refs, run, wait_for};

const LIMIT: Duration = Duration::from_secs(20);

fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let to = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &to);
        } else {
            fs::copy(&p, &to).unwrap(); // keeps the mode bits
        }
    }
}

/// rsvscan on a fresh copy of the demo scan dir, our binaries first on PATH (hello/log/run
/// runs `rsvlog` by name). Stopped with SIGTERM on drop if the test ends early.
struct Demo {
    g: Guard,
    dir: PathBuf,
    out: PathBuf,
    _t: TempDir,
}

impl Demo {
    fn start(compat: &str, tag: &str) -> Demo {
        let t = TempDir::new(tag);
        let dir = t.path().join("demo");
        copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("servicedirs-examples/demo"),
            &dir,
        );
        let out = t.path().join("out");
        let f = fs::File::create(&out).unwrap();
        let bindir = bin("rsvscan").parent().unwrap().to_path_buf();
        let path = format!(
            "{}:{}",
            bindir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let g = Guard::spawn(
            Command::new(bin("rsvscan"))
                .args(["--compat", compat])
                .arg(&dir)
                .env("PATH", path)
                .stdin(Stdio::null())
                .stdout(f.try_clone().unwrap())
                .stderr(f)
                .process_group(0),
        );
        Demo { g, dir, out, _t: t }
    }

    fn out(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn field(&self, svc: &str, f: &str) -> String {
        let (_, o, _) = run(
            Command::new(bin("rsvstat"))
                .args(["-o", f])
                .arg(self.dir.join(svc)),
            LIMIT,
        );
        o.trim().to_string()
    }

    fn pid(&self, svc: &str) -> i32 {
        self.field(svc, "pid").parse().unwrap_or(-1)
    }

    /// SIGTERM, as the demo script sends on Ctrl-C; returns rsvscan's exit code.
    fn stop(&mut self) -> Option<i32> {
        self.g.signal(libc::SIGTERM);
        self.g.wait_exit(LIMIT).code()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self
            .g
            .0
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
        {
            self.g.signal(libc::SIGTERM);
            let _ = self.g.wait_exit(LIMIT);
        }
    }
}

/// The state every service reaches: hello logs through rsvlog, ready becomes ready (the
/// ready flag exists only in s6's status layout; runit's shows up), crashy runs. Returns the
/// pids of hello, its logger and ready.
fn all_up(d: &Demo, s6: bool) -> (i32, i32, i32) {
    let cur = d.dir.join("hello/log/main/current");
    wait_for(LIMIT, "hello's second line logged by rsvlog", || {
        let c = fs::read_to_string(&cur).ok()?;
        c.contains(" hello: line 2\n").then_some(())
    });
    let c = fs::read_to_string(&cur).unwrap();
    let first = c.lines().next().unwrap();
    // `t` directive: TAI64N stamp, a space, the line.
    assert!(
        first.len() == 26 + "hello: line 1".len()
            && first.starts_with('@')
            && first.ends_with(" hello: line 1"),
        "{c}"
    );
    let want = if s6 { "true true" } else { "true false" };
    wait_for(LIMIT, "ready: up and ready", || {
        (d.field("ready", "up,ready") == want && d.out().contains("ready: up and ready\n"))
            .then_some(())
    });
    wait_for(LIMIT, "crashy up", || {
        (d.field("crashy", "up") == "true").then_some(())
    });
    (d.pid("hello"), d.pid("hello/log"), d.pid("ready"))
}

#[test]
fn demo_runs_and_stops_cleanly_s6() {
    let mut d = Demo::start("s6", "demo-s6");
    let (hello, logger, ready) = all_up(&d, true);
    assert!(hello > 0 && logger > 0 && ready > 0 && hello != logger);
    // crashy fails after 3 s; s6 mode: finish gets "1 0 crashy", then a new run 1 s later.
    let out = wait_for(LIMIT, "crashy restarted", || {
        let o = d.out();
        (o.matches("crashy: started as pid").count() >= 2).then_some(o)
    });
    assert!(
        out.contains("crashy: finish called with 3 arguments: 1 0 crashy\n"),
        "{out}"
    );
    // The logger forwards to stdout (directive `1`): the lines show on rsvscan's output.
    assert!(out.contains("hello: line 1\n"), "{out}");
    if have_refs(&["s6-svstat"]) {
        let (c, o, _) = run(
            Command::new("s6-svstat").arg(d.dir.join("hello/log")),
            LIMIT,
        );
        assert_eq!(c, 0);
        assert!(o.starts_with(&format!("up (pid {logger}) ")), "{o}");
    }
    assert_eq!(d.stop(), Some(0), "{}", d.out());
    let out = d.out();
    assert!(out.contains("hello: run ended (256 15 hello)\n"), "{out}");
    for p in [hello, logger, ready] {
        assert!(!alive(p), "pid {p} left running");
    }
}

#[test]
fn demo_runs_and_stops_cleanly_runit() {
    let mut d = Demo::start("runit", "demo-runit");
    let (hello, logger, ready) = all_up(&d, false);
    // runit layout: runit's own sv reads it, logger included.
    if have_refs(&["sv"]) {
        let (c, o, _) = run(
            Command::new("sv").arg("status").arg(d.dir.join("hello")),
            LIMIT,
        );
        assert_eq!(c, 0, "{o}");
        assert!(
            o.starts_with(&format!(
                "run: {}: (pid {hello}) ",
                d.dir.join("hello").display()
            )) && o.contains(&format!("; run: log: (pid {logger}) ")),
            "{o}"
        );
    }
    assert_eq!(d.stop(), Some(0), "{}", d.out());
    let out = d.out();
    // runit's finish arguments after SIGTERM: -1 15.
    assert!(out.contains("hello: run ended (-1 15)\n"), "{out}");
    for p in [hello, logger, ready] {
        assert!(!alive(p), "pid {p} left running");
    }
}
