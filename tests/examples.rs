//! The example service directories: well-formed scripts, and they really behave as the README
//! says under the reference supervisors (runsv, s6-supervise).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Guard, TempDir, have_refs, kill_pid, run, wait_for};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("servicedirs-examples")
}

const DEMOS: [&str; 3] = ["hello", "crashy", "ready"];

/// Every file named `run` or `finish` below `dir`, at any depth (log/run included).
fn scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            scripts(&p, out);
        } else if matches!(
            p.file_name().and_then(|n| n.to_str()),
            Some("run" | "finish")
        ) {
            out.push(p);
        }
    }
}

#[test]
fn example_scripts_are_executable_sh_scripts() {
    let demo = examples().join("demo");
    let readme = fs::read_to_string(examples().join("README.md")).unwrap();
    for name in DEMOS {
        let dir = demo.join(name);
        assert!(dir.join("run").is_file(), "{name}/run missing");
        assert!(
            readme.contains(&format!("demo/{name}")),
            "README lacks {name}"
        );
    }
    assert!(demo.join("crashy/finish").is_file());
    assert!(demo.join("hello/finish").is_file());
    assert_eq!(
        fs::read_to_string(demo.join("ready/notification-fd")).unwrap(),
        "3\n"
    );

    let mut all = Vec::new();
    scripts(&demo, &mut all);
    assert!(all.len() >= 5, "{all:?}");
    for p in all {
        let mode = fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o111,
            0o111,
            "{p:?} is not executable (mode {mode:o})"
        );
        let text = fs::read_to_string(&p).unwrap();
        let top_level = p.parent().and_then(|d| d.parent()) == Some(demo.as_path());
        if top_level {
            assert!(
                text.starts_with("#!/bin/sh\n"),
                "{p:?}: not a /bin/sh script"
            );
        }
        if text.starts_with("#!/bin/sh") {
            let (code, _, err) = run(
                Command::new("sh").arg("-n").arg(&p),
                Duration::from_secs(10),
            );
            assert_eq!(code, 0, "sh -n {p:?}: {err}");
        }
    }
}

/// A copy of the example's top-level files (run, finish, notification-fd; not log/) in a temp dir.
fn copy_example(name: &str, tmp: &TempDir) -> PathBuf {
    let src = examples().join("demo").join(name);
    let dst = tmp.path().join(name);
    fs::create_dir_all(&dst).unwrap();
    for e in fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    }
    dst
}

/// Starts a supervisor in its own process group (so the whole group can be cleaned up).
fn supervise(prog: &str, dir: &Path, out: &Path) -> Guard {
    let f = fs::File::create(out).unwrap();
    Guard::spawn(
        Command::new(prog)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .process_group(0),
    )
}

/// SIGKILLs every process of the group led by `pgid` (a supervisor we started with its own group).
fn kill_group(pgid: i32) {
    // SAFETY: kill(2) on the negative pid of a process group this test created.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn s6_field(dir: &Path, field: &str) -> String {
    let (_, out, _) = run(
        Command::new("s6-svstat").args(["-o", field]).arg(dir),
        Duration::from_secs(5),
    );
    out.trim().to_string()
}

#[test]
fn ready_example_notifies_readiness_under_s6_supervise() {
    if !have_refs(&["s6-supervise", "s6-svstat", "s6-svc"]) {
        return;
    }
    let tmp = TempDir::new("ex-ready");
    let dir = copy_example("ready", &tmp);
    let start = Instant::now();
    let mut sup = supervise("s6-supervise", &dir, &tmp.path().join("out"));
    let pid: i32 = wait_for(Duration::from_secs(5), "ready: up", || {
        (s6_field(&dir, "up") == "true")
            .then(|| s6_field(&dir, "pid").parse().ok())
            .flatten()
    });
    wait_for(Duration::from_secs(5), "ready: ready flag", || {
        (s6_field(&dir, "ready") == "true").then_some(())
    });
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "ready after only {took:?}"
    );
    // The supervised pid is the final `sleep`, still the same process.
    assert_eq!(s6_field(&dir, "pid"), pid.to_string());
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(cmdline.starts_with(b"sleep\0"), "{cmdline:?}");

    run(
        Command::new("s6-svc").arg("-dx").arg(&dir),
        Duration::from_secs(5),
    );
    sup.wait_exit(Duration::from_secs(10));
    kill_pid(pid);
    let out = fs::read_to_string(tmp.path().join("out")).unwrap();
    assert!(
        out.contains("ready: starting\n") && out.contains("ready: up and ready\n"),
        "{out}"
    );
}

#[test]
fn crashy_example_is_restarted_and_finish_gets_runit_arguments() {
    if !have_refs(&["runsv"]) {
        return;
    }
    let tmp = TempDir::new("ex-crashy");
    let dir = copy_example("crashy", &tmp);
    let out_path = tmp.path().join("out");
    let sup = supervise("runsv", &dir, &out_path);
    let pgid = sup.pid();
    let out = wait_for(Duration::from_secs(10), "crashy: second start", || {
        let s = fs::read_to_string(&out_path).unwrap_or_default();
        (s.matches("crashy: started as pid").count() >= 2).then_some(s)
    });
    kill_group(pgid);
    drop(sup);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], "crashy: failing with exit code 1", "{out}");
    assert_eq!(
        lines[2], "crashy: finish called with 2 arguments: 1 0",
        "{out}"
    );
    assert!(lines[3].starts_with("crashy: started as pid"), "{out}");
    assert_ne!(lines[0], lines[3], "same pid twice: {out}");
}

#[test]
fn hello_example_prints_numbered_lines_under_runsv() {
    if !have_refs(&["runsv"]) {
        return;
    }
    let tmp = TempDir::new("ex-hello");
    let dir = copy_example("hello", &tmp);
    let out_path = tmp.path().join("out");
    let sup = supervise("runsv", &dir, &out_path);
    let pgid = sup.pid();
    let out = wait_for(Duration::from_secs(5), "hello: two lines", || {
        let s = fs::read_to_string(&out_path).unwrap_or_default();
        s.contains("hello: line 2\n").then_some(s)
    });
    kill_group(pgid);
    drop(sup);
    assert!(out.starts_with("hello: line 1\nhello: line 2\n"), "{out}");
}
