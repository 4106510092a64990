//! rsvscan's output for `docker logs`: services without `log/` write to rsvscan's stdout and
//! stderr; with `--prefix` every line arrives whole as `NAME | line`, even under load.
//! Every rsvscan runs as PID 1 of its own pid namespace.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use scan::*;

const SEC: Duration = Duration::from_secs(1);

/// rsvscan ARGS DIR as PID 1 of a new pid namespace, stdout to `out`, stderr to `err`.
fn start(dir: &Path, args: &[&str], out: &Path, err: &Path) -> Ns {
    let mut cmd = ns_rsvscan(dir, args);
    cmd.stdout(fs::File::create(out).unwrap());
    spawn_ns(cmd, dir, err)
}

fn text(p: &Path) -> String {
    String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned()
}

/// Waits until `p` contains `what`; returns the whole text.
fn wait_text(p: &Path, what: &str, limit: Duration) -> String {
    wait_for(limit, &format!("{what:?} in {}", p.display()), || {
        let t = text(p);
        t.contains(what).then_some(t)
    })
}

/// Stops rsvscan with SIGTERM and waits (bounded) for its exit code.
const LINES: usize = 200;
const SVCS: usize = 20;

/// A chatty service: LINES numbered lines on stdout and stderr, and every 40th line a long
/// one (6000 bytes) written in three write(2) calls, so that the pipe sees partial lines.
fn chatty(sd: &Path, name: &str) {
    script(
        &sd.join("run"),
        &format!(
            "#!/bin/sh\nlong=$(head -c 6000 /dev/zero | tr '\\0' x)\nn=0\n\
             while [ $n -lt {LINES} ]; do\n\
               echo \"{name} out $n\"\n\
               echo \"{name} err $n\" >&2\n\
               if [ $((n % 40)) = 0 ]; then\n\
                 printf '%s' \"{name} long $n \"; printf '%s' \"$long\"; printf ' end\\n'\n\
               fi\n\
               n=$((n+1))\n\
             done\necho \"{name} done\"\nexec sleep 1000\n"
        ),
    );
}

/// Checks that every line of `t` is `NAME | <a line NAME wrote>` and that NAME's `kind`
/// lines all arrived, in order. Returns the number of lines per service.
fn check_lines(t: &str, kind: &str, long: bool) -> BTreeMap<String, usize> {
    let x6000 = "x".repeat(6000);
    let mut next: BTreeMap<String, usize> = BTreeMap::new();
    let mut longs: BTreeMap<String, usize> = BTreeMap::new();
    for line in t.lines() {
        let (name, rest) = line
            .split_once(" | ")
            .unwrap_or_else(|| panic!("line without prefix: {line:.200}"));
        let words: Vec<&str> = rest.splitn(3, ' ').collect();
        assert_eq!(words[0], name, "line of another service: {line:.200}");
        match words.get(1).copied() {
            Some(k) if k == kind => {
                let n: usize = words[2].parse().expect("line number");
                let e = next.entry(name.to_string()).or_default();
                assert_eq!(n, *e, "lost or reordered line in {name}: {line:.200}");
                *e += 1;
            }
            Some("long") => {
                assert!(long, "long line on the wrong stream: {line:.100}");
                let (n, body) = words[2].split_once(' ').unwrap();
                let n: usize = n.parse().unwrap();
                assert_eq!(n % 40, 0);
                assert!(
                    body == format!("{x6000} end"),
                    "long line of {name} damaged: {} bytes",
                    body.len()
                );
                *longs.entry(name.to_string()).or_default() += 1;
            }
            Some("done") if kind == "out" => {}
            _ => panic!("unexpected line: {line:.200}"),
        }
    }
    if long {
        for (name, n) in &longs {
            assert_eq!(*n, LINES / 40, "long lines of {name}");
        }
        assert_eq!(longs.len(), SVCS);
    }
    next
}

#[test]
fn prefix_twenty_services_at_once() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("logs-load");
    let dir = t.path().join("service");
    // All the services are in place before rsvscan starts: they all start at once.
    for i in 0..SVCS {
        let name = format!("svc{i:02}");
        chatty(&dir.join(&name), &name);
    }
    let (out, err) = (t.path().join("out"), t.path().join("err"));
    let mut ns = start(&dir, &["--prefix"], &out, &err);
    wait_for(30 * SEC, "every service done", || {
        let o = text(&out);
        (o.matches(" done\n").count() == SVCS).then_some(())
    });
    // stderr is written by the services as they go; every err line is there once the last
    // one is.
    wait_for(10 * SEC, "every err line", || {
        let e = text(&err);
        (0..SVCS)
            .all(|i| e.contains(&format!("svc{i:02} | svc{i:02} err {}\n", LINES - 1)))
            .then_some(())
    });
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());

    let o = text(&out);
    let counts = check_lines(&o, "out", true);
    assert_eq!(counts.len(), SVCS);
    assert!(counts.values().all(|&n| n == LINES), "{counts:?}");
    let e = text(&err);
    let counts = check_lines(&e, "err", false);
    assert_eq!(counts.len(), SVCS);
    assert!(counts.values().all(|&n| n == LINES), "{counts:?}");
}

#[test]
fn prefix_long_line_is_cut_and_partial_line_flushed_at_stop() {
    if !unshare_ok() {
        return;
    }
    for compat in ["s6", "runit"] {
        let t = TempDir::new("logs-cut");
        let dir = t.path().join("service");
        script(
            &dir.join("big/run"),
            "#!/bin/sh\nhead -c 40000 /dev/zero | tr '\\0' y\necho\nprintf 'no newline at the end'\n\
             echo ready >&2\nexec sleep 1000\n",
        );
        let (out, err) = (t.path().join("out"), t.path().join("err"));
        let mut ns = start(&dir, &["--prefix", "--compat", compat], &out, &err);
        wait_text(&err, "big | ready\n", 10 * SEC);
        assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
        let o = text(&out);
        let y = |n: usize| format!("big | {}\n", "y".repeat(n));
        let want =
            [y(16384), y(16384), y(40000 - 2 * 16384)].concat() + "big | no newline at the end\n";
        let lens: Vec<usize> = o.split_inclusive('\n').map(str::len).collect();
        assert!(o == want, "{compat}: line lengths {lens:?}");
    }
}

#[test]
fn prefix_pipe_survives_service_and_supervisor_restarts() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("logs-restart");
    let dir = t.path().join("service");
    let sd = dir.join("svc");
    // First run: a line and half a line. Later runs: the rest of it.
    script(
        &sd.join("run"),
        "#!/bin/sh\nif [ -e once ]; then echo \"tail $(wc -l < once)\"; echo x >> once; exec sleep 1000; fi\n\
         echo x > once; printf 'first\\nhalf-'; exec sleep 1000\n",
    );
    let (out, err) = (t.path().join("out"), t.path().join("err"));
    let mut ns = start(&dir, &["--prefix"], &out, &err);
    wait_up(&sd, 10 * SEC);
    wait_text(&out, "svc | first\n", 10 * SEC);

    // The service restarts (its supervisor stays).
    let st = Command::new(bin("rsvc"))
        .arg("-k")
        .arg(&sd)
        .status()
        .unwrap();
    assert!(st.success());
    wait_text(&out, "svc | half-tail 1\n", 10 * SEC);

    // The supervisor is killed, then its service: rsvscan starts a new supervisor with the
    // same pipes.
    let sup = child_of(ns.init).expect("supervisor");
    let run = ns.host_pid(status_pid(&sd)).expect("run pid");
    kill_pid(sup);
    kill_pid(run);
    wait_for(10 * SEC, "tail 2", || {
        let o = text(&out);
        o.contains("svc | tail 2\n").then_some(())
    });
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
    assert_eq!(text(&out), "svc | first\nsvc | half-tail 1\nsvc | tail 2\n");
}

#[test]
fn without_prefix_output_goes_straight_through() {
    if !unshare_ok() {
        return;
    }
    for compat in ["s6", "runit"] {
        let t = TempDir::new("logs-plain");
        let dir = t.path().join("service");
        script(
            &dir.join("svc/run"),
            "#!/bin/sh\necho plain out\necho plain err >&2\nexec sleep 1000\n",
        );
        let (out, err) = (t.path().join("out"), t.path().join("err"));
        let mut ns = start(&dir, &["--compat", compat], &out, &err);
        wait_text(&err, "plain err\n", 10 * SEC);
        wait_text(&out, "plain out\n", 10 * SEC);
        assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
        assert_eq!(text(&out), "plain out\n", "{compat}");
        assert!(!text(&err).contains(" | "), "{compat}");
    }
}

#[test]
fn service_with_log_keeps_its_logger_and_rsvlog_copies_to_stdout() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("logs-tee");
    let dir = t.path().join("service");
    let sd = dir.join("app");
    script(
        &sd.join("run"),
        "#!/bin/sh\nn=0\nwhile [ $n -lt 300 ]; do echo \"app line $n\"; n=$((n+1)); done\n\
         exec sleep 1000\n",
    );
    // The logger copies every line to its stdout (rsvscan's, for docker logs) and keeps
    // rotated files (4096-byte files, at most 3).
    script(
        &sd.join("log/run"),
        &format!(
            "#!/bin/sh\nexec {} n3 s4096 1 ./main\n",
            bin("rsvlog").display()
        ),
    );
    let (out, err) = (t.path().join("out"), t.path().join("err"));
    let mut ns = start(&dir, &["--prefix"], &out, &err);
    wait_text(&out, "app line 299\n", 10 * SEC);
    let main = sd.join("log/main");
    let rotated = wait_for(10 * SEC, "rotated files", || {
        let n = fs::read_dir(&main)
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('@'))
            .count();
        (n >= 1).then_some(n)
    });
    assert!(rotated <= 3, "{rotated} rotated files kept");
    // The logger copies a chunk to stdout before it writes it to the directory: wait for
    // the directory too. The last line ends what the directory holds, in the rotated files
    // (in order) then `current`: a rotation right after it leaves `current` empty.
    wait_for(10 * SEC, "the last line in the log directory", || {
        let mut names: Vec<String> = fs::read_dir(&main)
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('@'))
            .collect();
        names.sort();
        names.push("current".into());
        let mut all = String::new();
        for n in names {
            all.push_str(&fs::read_to_string(main.join(n)).unwrap_or_default());
        }
        all.ends_with("app line 299\n").then_some(())
    });
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
    // The logger's stdout is rsvscan's own: not prefixed (the service has a log/).
    let o = text(&out);
    let want: String = (0..300).map(|n| format!("app line {n}\n")).collect();
    assert_eq!(o, want);
}

#[test]
fn example_logs_runs_as_documented() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("logs-example");
    copy_example("logs", &t.path().join("logs"));
    let dir = t.path().join("logs/services");
    // The audit logger runs `rsvlog` from PATH.
    let path = format!(
        "{}:{}",
        bin("rsvlog").parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (out, err) = (t.path().join("out"), t.path().join("err"));
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(bin("rsvscan"))
        .arg("--prefix")
        .arg(&dir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap());
    let guard = Guard::spawn(&mut cmd);
    let init = wait_for(5 * SEC, "rsvscan as PID 1", || child_of(guard.pid()));
    let link = fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    let mut ns = Ns {
        guard,
        init,
        link: link.display().to_string(),
        err: err.clone(),
    };
    for want in [
        "web | GET /item/2 200",
        "worker | job 2: processing... done\n",
        "clock | tick 1 at ",
        "audit: event 2\n",
    ] {
        wait_text(&out, want, 10 * SEC);
    }
    wait_for(10 * SEC, "audit's log file", || {
        let c = fs::read_to_string(dir.join("audit/log/main/current")).ok()?;
        c.contains("audit: event 1\n").then_some(())
    });
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
    for line in text(&out).lines() {
        assert!(
            [
                "web | GET ",
                "worker | job ",
                "clock | tick ",
                "audit: event "
            ]
            .iter()
            .any(|p| line.starts_with(p)),
            "{line}"
        );
    }
    for line in text(&err).lines() {
        assert!(
            line.starts_with("web | slow request ") || line.starts_with("worker | job "),
            "{line}"
        );
    }
}

/// Resident set size of `pid` in KiB.
fn rss_kib(pid: i32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn prefix_blocked_stdout_pauses_reading_but_not_supervision() {
    if !unshare_ok() {
        return;
    }
    use std::io::{BufRead, BufReader};
    let t = TempDir::new("logs-blocked");
    let dir = t.path().join("service");
    // 4000 lines of 1000 bytes: 4 MB, far more than the pipes and queues hold.
    script(
        &dir.join("flood/run"),
        "#!/bin/sh\npad=$(head -c 990 /dev/zero | tr '\\0' p)\nn=0\n\
         while [ $n -lt 4000 ]; do echo \"$n $pad\"; n=$((n+1)); done\nexec sleep 1000\n",
    );
    let err = t.path().join("err");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(bin("rsvscan"))
        .arg("--supervisor")
        .arg(bin("rsupervise"))
        .arg("--prefix")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&err).unwrap());
    let mut guard = Guard::spawn(&mut cmd);
    let stdout = guard.0.as_mut().unwrap().stdout.take().unwrap();
    let init = wait_for(5 * SEC, "rsvscan as PID 1", || child_of(guard.pid()));
    let link = fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    let mut ns = Ns {
        guard,
        init,
        link: link.display().to_string(),
        err,
    };
    wait_listening(&dir);
    // Nobody reads rsvscan's stdout: the flood blocks, rsvscan still picks up and
    // supervises a new service, and its memory stays small.
    std::thread::sleep(Duration::from_millis(300));
    script(&dir.join("late/run"), "#!/bin/sh\nexec sleep 1000\n");
    wait_up(&dir.join("late"), 10 * SEC);
    let rss = rss_kib(ns.init);
    assert!(rss < 30 * 1024, "rsvscan uses {rss} KiB while blocked");

    // Reading resumes: every line arrives, whole and in order.
    let mut r = BufReader::new(stdout);
    let pad = "p".repeat(990);
    for n in 0..4000 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(
            line == format!("flood | {n} {pad}\n"),
            "line {n}: {:.60}",
            line
        );
    }
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
}
