//! rsvlog keeps every line: signals, crashes, interrupted rotations, full disks, bad
//! configuration and scripts, busy locks.

mod common;

use common::{Guard, TempDir, bin, logdir_content, wait_for};
use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// Starts rsvlog in `cwd` with a pipe on stdin and stderr into `cwd/stderr`.
fn start(cwd: &Path, args: &[&str]) -> (Guard, ChildStdin) {
    start_with(cwd, args, |_| {})
}

fn start_with(cwd: &Path, args: &[&str], f: impl FnOnce(&mut Command)) -> (Guard, ChildStdin) {
    let err = fs::File::create(cwd.join("stderr")).unwrap();
    let mut cmd = Command::new(bin("rsvlog"));
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(err);
    f(&mut cmd);
    let mut g = Guard::spawn(&mut cmd);
    let stdin = g.0.as_mut().unwrap().stdin.take().unwrap();
    (g, stdin)
}

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_default()
}

fn stderr_of(cwd: &Path) -> String {
    String::from_utf8_lossy(&read(&cwd.join("stderr"))).into_owned()
}

fn archives(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('@') && n.len() == 27 && n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn numbered(from: usize, to: usize) -> Vec<u8> {
    (from..to)
        .flat_map(|i| format!("message number {i:06}\n").into_bytes())
        .collect()
}

fn wait_content(p: &Path, want: &[u8]) {
    wait_for(LIMIT, "log content", || {
        (read(p).ends_with(want) || logdir_content(p.parent().unwrap()).ends_with(want))
            .then_some(())
    });
}

#[test]
fn term_finishes_the_current_line_then_exits_cleanly() {
    let t = TempDir::new("log-term");
    for (args, dir) in [(&["-t", "sv"][..], "sv"), (&["t", "./s6"][..], "s6")] {
        let _ = fs::create_dir(t.path().join("sv"));
        let (mut g, mut stdin) = start(t.path(), args);
        stdin.write_all(b"first\nsecond part").unwrap();
        let cur = t.path().join(dir).join("current");
        wait_content(&cur, b" first\n");
        g.signal(libc::SIGTERM);
        // Still waiting for the end of the line.
        std::thread::sleep(Duration::from_millis(100));
        assert!(common::alive(g.pid()));
        stdin.write_all(b" end\nnot read\n").unwrap();
        let st = g.wait_exit(LIMIT);
        assert_eq!(st.code(), Some(0));
        let c = String::from_utf8(read(&cur)).unwrap();
        assert!(c.ends_with(" second part end\n"), "{c}");
        assert!(!c.contains("not read"));
        assert_eq!(mode(&cur) & 0o100, 0o100, "current marked complete");
    }
}

#[test]
fn s6_p_ignores_term_and_hup_exits() {
    let t = TempDir::new("log-s6sig");
    let (mut g, mut stdin) = start(t.path(), &["-p", "./d"]);
    stdin.write_all(b"a\n").unwrap();
    wait_content(&t.path().join("d/current"), b"a\n");
    g.signal(libc::SIGTERM);
    stdin.write_all(b"b\n").unwrap();
    wait_content(&t.path().join("d/current"), b"a\nb\n");
    assert!(common::alive(g.pid()));
    g.signal(libc::SIGHUP);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
}

#[test]
fn alrm_rotates_and_hup_rereads_svlogd_config() {
    let t = TempDir::new("log-alrm");
    let d = t.path().join("sv");
    fs::create_dir(&d).unwrap();
    let (mut g, mut stdin) = start(t.path(), &["-v", "sv"]);
    stdin.write_all(b"one\n").unwrap();
    wait_content(&d.join("current"), b"one\n");
    g.signal(libc::SIGALRM);
    let s = wait_for(LIMIT, "rotation", || archives(&d, ".s").pop());
    assert_eq!(read(&d.join(&s)), b"one\n");
    assert_eq!(mode(&d.join(&s)), 0o744);
    fs::write(d.join("config"), "pNEW \n").unwrap();
    g.signal(libc::SIGHUP);
    wait_for(LIMIT, "config re-read", || {
        (stderr_of(t.path()).matches("info: read: sv/config").count() >= 2).then_some(())
    });
    stdin.write_all(b"two\n").unwrap();
    wait_content(&d.join("current"), b"NEW two\n");
    drop(stdin);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
}

#[test]
fn killed_logger_loses_no_acknowledged_line() {
    let t = TempDir::new("log-kill");
    for (args, dir) in [(&["sv"][..], "sv"), (&["n10", "./s6"][..], "s6")] {
        let _ = fs::create_dir(t.path().join("sv"));
        let d = t.path().join(dir);
        let first = numbered(0, 500);
        let (mut g, mut stdin) = start(t.path(), args);
        stdin.write_all(&first).unwrap();
        wait_content(&d.join("current"), &first);
        g.signal(libc::SIGKILL);
        let _ = g.wait_exit(LIMIT);
        // Restart: the unfinished current becomes an `.u` archive, nothing is lost.
        let second = numbered(500, 600);
        let (mut g, mut stdin) = start(t.path(), args);
        stdin.write_all(&second).unwrap();
        drop(stdin);
        assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
        let u = archives(&d, ".u");
        assert_eq!(u.len(), 1, "{dir}");
        assert_eq!(read(&d.join(&u[0])), first);
        assert_eq!(read(&d.join("current")), second);
        let mut all = first.clone();
        all.extend_from_slice(&second);
        assert_eq!(logdir_content(&d), all);
    }
}

#[test]
fn interrupted_rotation_is_finished_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new("log-recover");
    let d = t.path().join("s6");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("previous"), b"rotated but not archived\n").unwrap();
    fs::write(d.join("current"), b"unfinished\n").unwrap();
    fs::write(d.join("newstate"), b"junk").unwrap();
    let (mut g, mut stdin) = start(t.path(), &["n10", "./s6"]);
    stdin.write_all(b"new\n").unwrap();
    drop(stdin);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
    let u = archives(&d, ".u");
    assert_eq!(u.len(), 2);
    assert_eq!(read(&d.join(&u[0])), b"rotated but not archived\n");
    assert_eq!(read(&d.join(&u[1])), b"unfinished\n");
    assert!(!d.join("previous").exists() && !d.join("newstate").exists());
    assert_eq!(read(&d.join("current")), b"new\n");
    // A processed file that was complete is archived as .s.
    let e = t.path().join("s6b");
    fs::create_dir(&e).unwrap();
    fs::write(e.join("previous"), b"raw\n").unwrap();
    fs::write(e.join("processed"), b"done\n").unwrap();
    fs::set_permissions(e.join("processed"), fs::Permissions::from_mode(0o744)).unwrap();
    let (mut g, stdin) = start(t.path(), &["n10", "./s6b"]);
    drop(stdin);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
    let s = archives(&e, ".s");
    assert_eq!(s.len(), 1);
    assert_eq!(read(&e.join(&s[0])), b"done\n");
    assert!(!e.join("previous").exists());
    // svlogd: a stray processor output is deleted.
    let f = t.path().join("sv");
    fs::create_dir(&f).unwrap();
    fs::write(f.join("@400000006b08f2ca2f8fc9f4.t"), b"partial").unwrap();
    let (mut g, stdin) = start(t.path(), &["sv"]);
    drop(stdin);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
    assert!(!f.join("@400000006b08f2ca2f8fc9f4.t").exists());
}

/// Writes fail (RLIMIT_FSIZE: EFBIG, like a full disk) until the limit is raised: the logger
/// warns, stops reading (the writer blocks), and writes everything once it can.
fn full_disk(args: &[&str], dir: &str, warning: &str) {
    let t = TempDir::new("log-full");
    let _ = fs::create_dir(t.path().join("sv"));
    let (mut g, mut stdin) = start_with(t.path(), args, |c| {
        // SAFETY: setrlimit is async-signal-safe; runs in the child before exec.
        unsafe {
            c.pre_exec(|| {
                let r = libc::rlimit {
                    rlim_cur: 300,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let input = numbered(0, 20000); // 440 kB: more than a pipe holds
    let done = Arc::new(AtomicBool::new(false));
    let d2 = Arc::clone(&done);
    let data = input.clone();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
        d2.store(true, Ordering::SeqCst);
        drop(stdin);
    });
    wait_for(LIMIT, "write warning", || {
        stderr_of(t.path()).contains(warning).then_some(())
    });
    let cur = t.path().join(dir).join("current");
    std::thread::sleep(Duration::from_millis(300));
    assert!(read(&cur).len() <= 300);
    assert!(
        !done.load(Ordering::SeqCst),
        "input must pause while output is stuck"
    );
    assert!(common::alive(g.pid()));
    let r = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit on our own child's pid with a valid rlimit struct.
    let rc = unsafe { libc::prlimit(g.pid(), libc::RLIMIT_FSIZE, &r, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
    writer.join().unwrap();
    assert_eq!(logdir_content(&t.path().join(dir)), input);
}

#[test]
fn full_disk_pauses_and_retries_s6() {
    full_disk(
        &["r50", "./s6"],
        "s6",
        "rsvlog: warning: unable to write to ./s6/current: File too large",
    );
}

#[test]
fn full_disk_pauses_and_retries_svlogd() {
    full_disk(
        &["sv"],
        "sv",
        "rsvlog: pausing: unable to write to current: sv: file too big",
    );
}

fn run_quick(cwd: &Path, args: &[&str]) -> (i32, String) {
    let (code, _, err) = common::run(
        Command::new(bin("rsvlog")).args(args).current_dir(cwd),
        LIMIT,
    );
    (code, err)
}

#[test]
fn bad_config_and_scripts_are_one_clear_error() {
    let t = TempDir::new("log-bad");
    let d = t.path().join("sv");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("config"), "s1000\nxyz\n").unwrap();
    let (code, err) = run_quick(t.path(), &["sv"]);
    assert_eq!(code, 111);
    assert_eq!(err, "rsvlog: fatal: sv/config:2: unknown directive: xyz\n");
    fs::write(d.join("config"), "s10q\n").unwrap();
    let (code, err) = run_quick(t.path(), &["sv"]);
    assert_eq!((code, err.lines().count()), (111, 1));
    assert!(err.contains("sv/config:1"), "{err}");
    let (code, err) = run_quick(t.path(), &["+a(", "./x"]);
    assert_eq!(code, 100);
    assert!(
        err.starts_with("rsvlog: fatal: unable to compile regular expression a("),
        "{err}"
    );
    let (code, err) = run_quick(t.path(), &["-tt", "nodir"]);
    assert_eq!(code, 111);
    assert!(
        err.ends_with("rsvlog: fatal: no functional log directories.\n"),
        "{err}"
    );
    let (code, _) = run_quick(t.path(), &["-r", "ab", "sv"]);
    assert_eq!(code, 111);
    let (code, _) = run_quick(t.path(), &["-l", "x", "1"]);
    assert_eq!(code, 100);
}

#[test]
fn busy_lock_is_refused() {
    let t = TempDir::new("log-lock");
    let (mut g, mut stdin) = start(t.path(), &["n5", "./d"]);
    stdin.write_all(b"x\n").unwrap();
    wait_content(&t.path().join("d/current"), b"x\n");
    let (code, err) = run_quick(t.path(), &["n5", "./d"]);
    assert_eq!(code, 111);
    assert_eq!(
        err,
        "rsvlog: fatal: unable to lock ./d/lock: Device or resource busy\n"
    );
    // svlogd personality: warning, directory skipped, none left → fatal.
    let (code, err) = run_quick(t.path(), &["d"]);
    assert_eq!(code, 111);
    assert!(err.contains("unable to lock directory: d"), "{err}");
    drop(stdin);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
}

#[test]
fn locks_exclude_the_real_loggers() {
    if !common::have_refs(&["svlogd", "s6-log"]) {
        return;
    }
    let t = TempDir::new("log-reflock");
    for (prog, args) in [("svlogd", &["d"][..]), ("s6-log", &["./d"][..])] {
        let _ = fs::create_dir(t.path().join("d"));
        let mut child = Command::new(prog)
            .args(args)
            .current_dir(t.path())
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut g = Guard(Some(child));
        stdin.write_all(b"ref\n").unwrap();
        wait_content(&t.path().join("d/current"), b"ref\n");
        let (code, _) = run_quick(t.path(), &["n5", "./d"]);
        assert_eq!(code, 111, "rsvlog must not share a dir with {prog}");
        drop(stdin);
        let _ = g.wait_exit(LIMIT);
        fs::remove_dir_all(t.path().join("d")).unwrap();
    }
}

#[test]
fn svlogd_age_limit_rotates_a_quiet_current() {
    let t = TempDir::new("log-age");
    let d = t.path().join("sv");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("config"), "t1\n").unwrap();
    let (mut g, mut stdin) = start(t.path(), &["sv"]);
    stdin.write_all(b"old line\n").unwrap();
    let s = wait_for(LIMIT, "age rotation", || archives(&d, ".s").pop());
    assert_eq!(read(&d.join(&s)), b"old line\n");
    assert_eq!(read(&d.join("current")), b"");
    // an empty current is not rotated again
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(archives(&d, ".s").len(), 1);
    drop(stdin);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
}

#[test]
fn failing_processor_pauses_input_and_term_keeps_its_input() {
    let t = TempDir::new("log-badproc");
    let d = t.path().join("sv");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("config"), "s100\n!exit 1\n").unwrap();
    let (mut g, mut stdin) = start(t.path(), &["sv"]);
    let input = numbered(0, 10);
    stdin.write_all(&input).unwrap();
    wait_for(LIMIT, "processor warning", || {
        stderr_of(t.path())
            .contains("unable to run processor")
            .then_some(())
    });
    assert!(archives(&d, ".s").is_empty());
    g.signal(libc::SIGTERM);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
    drop(stdin);
    // Nothing lost: the unprocessed input stays as .u, the rest is in current.
    assert_eq!(logdir_content(&d), input);
    assert!(!archives(&d, ".u").is_empty());
}

#[test]
fn s6_readiness_notification_on_fd() {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let t = TempDir::new("log-notif");
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) fills two descriptors that this test then owns.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (r, w) = (fds[0], fds[1]);
    let (mut g, stdin) = start_with(t.path(), &["-d", "3", "n3", "./d"], |c| {
        // SAFETY: dup2 is async-signal-safe; runs in the child before exec.
        unsafe {
            c.pre_exec(move || {
                if libc::dup2(w, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if w != 3 {
                    libc::close(w);
                }
                if r != 3 {
                    libc::close(r);
                }
                Ok(())
            });
        }
    });
    // SAFETY: closing our copy of the write end; the child has its own.
    unsafe { libc::close(w) };
    // SAFETY: r is the read end of the pipe created above, owned from here on.
    let mut rf = unsafe { fs::File::from_raw_fd(r) };
    let mut buf = [0u8; 1];
    rf.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"\n");
    assert!(t.path().join("d/lock").exists());
    drop(stdin);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
}

/// A processor still running when the next rotation is due does not block input: the writer
/// pushes many MB (far more than the pipe and rsvlog's buffer hold) while the processor waits
/// on a gate file that the test creates only afterwards. The rotation is postponed, `current`
/// grows past `s`, and once the processor is done every line is in the archives + `current`
/// in order.
fn slow_processor_does_not_block_input(tag: &str, s6: bool) {
    let t = TempDir::new(tag);
    let d = t.path().join("log");
    let gate = t.path().join("gate");
    // Bounded (about 60 s), so a failing test leaves no processor behind for long.
    let proc_cmd = format!(
        "i=0; while [ ! -e {} ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i+1)); done; cat",
        gate.display()
    );
    let (mut g, mut stdin) = if s6 {
        let dir = d.display().to_string();
        let p = format!("?{proc_cmd}");
        start(t.path(), &["s20000", &p, &dir])
    } else {
        fs::create_dir(&d).unwrap();
        fs::write(d.join("config"), format!("s20000\n!{proc_cmd}\n")).unwrap();
        start(t.path(), &["log"])
    };
    // 10 MB of numbered lines, written by a thread so that a blocked logger fails the test
    // with a message instead of hanging it.
    let input = Arc::new(
        (0..200_000)
            .flat_map(|i| format!("slow processor line {i:08} {}\n", "x".repeat(20)).into_bytes())
            .collect::<Vec<u8>>(),
    );
    assert!(input.len() > 8_000_000);
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (input, done) = (Arc::clone(&input), Arc::clone(&done));
        std::thread::spawn(move || {
            stdin.write_all(&input).unwrap();
            done.store(true, Ordering::SeqCst);
            stdin
        })
    };
    wait_for(
        Duration::from_secs(60),
        "writer not blocked by processor",
        || done.load(Ordering::SeqCst).then_some(()),
    );
    let stdin = writer.join().unwrap();
    // Everything written is logged while the first processor is still waiting on the gate.
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let first_input = || {
        if s6 {
            d.join("previous")
        } else {
            archives(&d, ".u")
                .first()
                .map(|n| d.join(n))
                .unwrap_or_default()
        }
    };
    wait_for(
        LIMIT,
        "all input in the processor's input + current",
        || (size(&first_input()) + size(&d.join("current")) == input.len() as u64).then_some(()),
    );
    assert!(!gate.exists());
    assert!(size(&first_input()) < 30_000, "first rotation at about s");
    assert!(size(&d.join("current")) > 8_000_000, "current grew past s");
    assert!(archives(&d, ".s").is_empty());
    fs::write(&gate, "").unwrap();
    // The postponed rotation happens once the processor is collected (its exit wakes the
    // logger), and the next processor gets the big `current`.
    wait_for(LIMIT, "postponed rotation", || {
        (archives(&d, ".s").len() == 2).then_some(())
    });
    drop(stdin);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
    assert_eq!(logdir_content(&d).len(), input.len());
    assert!(logdir_content(&d) == *input, "lines lost or reordered");
    assert!(archives(&d, ".u").is_empty());
    assert!(!d.join("previous").exists() && !d.join("processed").exists());
}

#[test]
fn slow_processor_does_not_block_input_svlogd() {
    slow_processor_does_not_block_input("log-slowproc-sv", false);
}

#[test]
fn slow_processor_does_not_block_input_s6() {
    slow_processor_does_not_block_input("log-slowproc-s6", true);
}

/// The brief's plain case: `sleep 1; cat` as processor and small rotations; the whole input
/// goes through in far less than one second per rotation, and nothing is lost or reordered.
#[test]
fn sleeping_processor_keeps_lines_in_order() {
    let t = TempDir::new("log-sleepproc");
    let d = t.path().join("sv");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("config"), "s5000\n!sleep 1; cat\n").unwrap();
    let (mut g, mut stdin) = start(t.path(), &["sv"]);
    let input = numbered(0, 100_000);
    let t0 = std::time::Instant::now();
    stdin.write_all(&input[..input.len() / 2]).unwrap();
    // Let the first processor finish and the postponed rotation happen while input is idle.
    wait_for(LIMIT, "postponed rotation while idle", || {
        (archives(&d, ".s").len() >= 2).then_some(())
    });
    stdin.write_all(&input[input.len() / 2..]).unwrap();
    drop(stdin);
    assert_eq!(g.wait_exit(LIMIT).code(), Some(0));
    // With svlogd's blocking rule this would take ~1 s per 5000 bytes (hundreds of seconds).
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert!(logdir_content(&d) == input, "lines lost or reordered");
    assert!(archives(&d, ".u").is_empty());
}
