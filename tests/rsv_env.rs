//! The environment services get: rsvscan's own (inherited through rsupervise), the
//! container-wide envdir `$RSV_ENVDIR` (filled by `--init` steps), and the service's `env/`
//! (s6-envdir format), applied at each start of run and finish. rsvscan runs as PID 1 of its
//! own pid namespace.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use scan::*;

const SEC: Duration = Duration::from_secs(1);

/// rsvscan ARGS DIR as PID 1 of a new pid namespace with extra environment `env`.
fn start(dir: &Path, args: &[&str], env: &[(&str, &str)], err: &Path) -> Ns {
    let mut cmd = ns_rsvscan(dir, args);
    cmd.env_remove("RSV_ENVDIR")
        .envs(env.iter().copied())
        .stdout(Stdio::null());
    spawn_ns(cmd, dir, err)
}

/// A service whose run and finish each dump their environment (`env -0` style: one
/// variable a line) into `run.env` / `finish.env`, numbered by start.
fn dumper(sd: &Path) {
    script(
        &sd.join("run"),
        "#!/bin/sh\nn=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count\n\
         env > run.env.tmp; mv run.env.tmp run.env.$n\nexec sleep 1000\n",
    );
    script(
        &sd.join("finish"),
        "#!/bin/sh\nenv > finish.env.tmp; mv finish.env.tmp finish.env.$(cat count)\n",
    );
}

/// The variables of a dump file, waiting for it to appear.
fn dump(p: &Path) -> Vec<(String, String)> {
    let t = wait_for(10 * SEC, &format!("{}", p.display()), || {
        fs::read_to_string(p).ok()
    });
    t.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn get<'a>(env: &'a [(String, String)], k: &str) -> Option<&'a str> {
    env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn rsvc(args: &[&str], sd: &Path) {
    let st = Command::new(bin("rsvc"))
        .args(args)
        .arg(sd)
        .status()
        .unwrap();
    assert!(st.success(), "rsvc {args:?}");
}

#[test]
fn inherited_environment_and_env_dir() {
    if !unshare_ok() {
        return;
    }
    for compat in ["s6", "runit"] {
        let t = TempDir::new("env-dir");
        let dir = t.path().join("service");
        let sd = dir.join("svc");
        dumper(&sd);
        fs::create_dir_all(sd.join("env")).unwrap();
        fs::write(sd.join("env/ADDED"), "added value  \nsecond line ignored\n").unwrap();
        fs::write(sd.join("env/OVERRIDDEN"), "new\n").unwrap();
        fs::write(sd.join("env/REMOVED"), "").unwrap();
        let mut ns = start(
            &dir,
            &["--compat", compat],
            &[
                ("RSV_TEST_INHERITED", "from the container"),
                ("OVERRIDDEN", "old"),
                ("REMOVED", "should go"),
            ],
            &t.path().join("err"),
        );
        let run1 = dump(&sd.join("run.env.1"));
        assert_eq!(get(&run1, "RSV_TEST_INHERITED"), Some("from the container"));
        assert_eq!(get(&run1, "ADDED"), Some("added value"), "{compat}");
        assert_eq!(get(&run1, "OVERRIDDEN"), Some("new"));
        assert_eq!(get(&run1, "REMOVED"), None);
        let envdir = dir.join(".s6-svscan/env");
        assert_eq!(get(&run1, "RSV_ENVDIR"), envdir.to_str());
        assert!(envdir.is_dir());

        // env/ is read again at each start; finish gets it too.
        fs::write(sd.join("env/ADDED"), "changed\n").unwrap();
        fs::remove_file(sd.join("env/REMOVED")).unwrap();
        rsvc(&["-k"], &sd);
        let fin1 = dump(&sd.join("finish.env.1"));
        assert_eq!(get(&fin1, "RSV_TEST_INHERITED"), Some("from the container"));
        assert_eq!(get(&fin1, "ADDED"), Some("changed"));
        assert_eq!(get(&fin1, "REMOVED"), Some("should go"));
        let run2 = dump(&sd.join("run.env.2"));
        assert_eq!(get(&run2, "ADDED"), Some("changed"));
        assert_eq!(get(&run2, "OVERRIDDEN"), Some("new"));
        assert_eq!(get(&run2, "REMOVED"), Some("should go"));
        assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
    }
}

#[test]
fn unreadable_env_dir_fails_the_start_with_one_warning() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("env-bad");
    let dir = t.path().join("service");
    let sd = dir.join("svc");
    dumper(&sd);
    // A file where the directory should be: it cannot be read as an envdir.
    fs::write(sd.join("env"), "not a directory\n").unwrap();
    let mut ns = start(&dir, &["--compat", "runit"], &[], &t.path().join("err"));
    let want = "rsupervise svc: warning: unable to read envdir svc/env: Not a directory";
    wait_for(10 * SEC, "warning", || {
        ns.stderr().contains(want).then_some(())
    });
    assert!(!sd.join("count").exists(), "run started without its env/");
    // Once env/ is fixed, the next try starts run (runit mode retries each second).
    fs::remove_file(sd.join("env")).unwrap();
    fs::create_dir(sd.join("env")).unwrap();
    fs::write(sd.join("env/FIXED"), "yes").unwrap();
    let run1 = dump(&sd.join("run.env.1"));
    assert_eq!(get(&run1, "FIXED"), Some("yes"));
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
}

#[test]
fn logger_gets_its_own_env_dir() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("env-log");
    let dir = t.path().join("service");
    let sd = dir.join("svc");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    fs::create_dir_all(sd.join("env")).unwrap();
    fs::write(sd.join("env/WHO"), "service").unwrap();
    script(
        &sd.join("log/run"),
        "#!/bin/sh\nenv > env.tmp; mv env.tmp logger.env\nexec cat > /dev/null\n",
    );
    fs::create_dir_all(sd.join("log/env")).unwrap();
    fs::write(sd.join("log/env/WHO"), "logger").unwrap();
    let mut ns = start(&dir, &[], &[], &t.path().join("err"));
    let env = dump(&sd.join("log/logger.env"));
    assert_eq!(get(&env, "WHO"), Some("logger"));
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
}

#[test]
fn init_steps_export_variables_through_rsv_envdir() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("env-init");
    let dir = t.path().join("service");
    let sd = dir.join("svc");
    dumper(&sd);
    fs::create_dir_all(sd.join("env")).unwrap();
    // The service's own env/ is applied after $RSV_ENVDIR: it wins.
    fs::write(sd.join("env/BOTH"), "from env/").unwrap();
    let step1 = t.path().join("step1");
    script(
        &step1,
        "#!/bin/sh\n[ -n \"$RSV_ENVDIR\" ] || exit 3\n\
         printf %s \"value with spaces\" > \"$RSV_ENVDIR/FOO\"\n\
         printf %s first > \"$RSV_ENVDIR/BOTH\"\n\
         : > \"$RSV_ENVDIR/RSV_TEST_DROP\"\necho step1 ran\n",
    );
    let step2 = t.path().join("step2");
    script(
        &step2,
        "#!/bin/sh\n[ -e \"$RSV_ENVDIR/FOO\" ] || exit 4\nprintf %s two > \"$RSV_ENVDIR/BAR\"\n",
    );
    let mut ns = start(
        &dir,
        &[
            "--init",
            step1.to_str().unwrap(),
            "--init",
            step2.to_str().unwrap(),
        ],
        &[("RSV_TEST_DROP", "inherited")],
        &t.path().join("err"),
    );
    let run1 = dump(&sd.join("run.env.1"));
    assert_eq!(get(&run1, "FOO"), Some("value with spaces"));
    assert_eq!(get(&run1, "BAR"), Some("two"));
    assert_eq!(get(&run1, "BOTH"), Some("from env/"));
    assert_eq!(get(&run1, "RSV_TEST_DROP"), None);
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());

    // A preset RSV_ENVDIR is used as is (nothing created under the scan dir).
    let t = TempDir::new("env-preset");
    let dir = t.path().join("service");
    let sd = dir.join("svc");
    dumper(&sd);
    let preset = t.path().join("preset");
    fs::create_dir_all(&preset).unwrap();
    fs::write(preset.join("PRESET"), "yes\n").unwrap();
    let mut ns = start(
        &dir,
        &[],
        &[("RSV_ENVDIR", preset.to_str().unwrap())],
        &t.path().join("err"),
    );
    let run1 = dump(&sd.join("run.env.1"));
    assert_eq!(get(&run1, "PRESET"), Some("yes"));
    assert!(!dir.join(".s6-svscan/env").exists());
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
}

#[test]
fn failing_init_step_exits_with_its_code_and_starts_nothing() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("env-initfail");
    let dir = t.path().join("service");
    let sd = dir.join("svc");
    dumper(&sd);
    let ok = t.path().join("ok");
    script(&ok, "#!/bin/sh\ntouch \"$RSV_ENVDIR/../../ok-ran\"\n");
    let bad = t.path().join("bad");
    script(&bad, "#!/bin/sh\nexit 7\n");
    let never = t.path().join("never");
    script(&never, "#!/bin/sh\ntouch \"$RSV_ENVDIR/../../never-ran\"\n");
    let err = t.path().join("err");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(bin("rsvscan"))
        .arg("--supervisor")
        .arg(bin("rsupervise"))
        .args(["--init", ok.to_str().unwrap()])
        .args(["--init", bad.to_str().unwrap()])
        .args(["--init", never.to_str().unwrap()])
        .arg(&dir)
        .env_remove("RSV_ENVDIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err).unwrap());
    let mut g = Guard::spawn(&mut cmd);
    let st = g.wait_exit(10 * SEC);
    let msg = fs::read_to_string(&err).unwrap();
    assert_eq!(st.code(), Some(7), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(msg.contains(bad.to_str().unwrap()), "{msg}");
    assert!(dir.join("ok-ran").exists());
    assert!(!dir.join("never-ran").exists());
    assert!(!sd.join("supervise").exists(), "a supervisor was started");
    assert!(!sd.join("count").exists());

    // An init step that cannot be run: 111, one line naming it.
    let missing = t.path().join("missing");
    let mut cmd = Command::new(bin("rsvscan"));
    cmd.args(["--init", missing.to_str().unwrap()])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err).unwrap());
    let mut g = Guard::spawn(&mut cmd);
    let st = g.wait_exit(10 * SEC);
    let msg = fs::read_to_string(&err).unwrap();
    assert_eq!(st.code(), Some(111), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(msg.contains(missing.to_str().unwrap()), "{msg}");
    assert!(!sd.join("supervise").exists());
}

#[test]
fn example_env_runs_as_documented() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("env-example");
    copy_example("env", &t.path().join("env"));
    let base = t.path().join("env");
    let out = t.path().join("out");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(bin("rsvscan"))
        .args(["--prefix", "--init", "./init/export-vars", "services"])
        .current_dir(&base)
        .env_remove("RSV_ENVDIR")
        .env("GREETING", "hello")
        .env("DEBUG", "1")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(t.path().join("err")).unwrap());
    let guard = Guard::spawn(&mut cmd);
    let init = wait_for(5 * SEC, "rsvscan as PID 1", || child_of(guard.pid()));
    let link = fs::read_link(format!("/proc/{init}/ns/pid")).unwrap();
    let mut ns = Ns {
        guard,
        init,
        link: link.display().to_string(),
        err: t.path().join("err"),
    };
    let text = wait_for(10 * SEC, "both services' lines", || {
        let t = fs::read_to_string(&out).ok()?;
        (t.contains("reporter | ") && t.contains("app | app: started")).then_some(t)
    });
    let envdir = base.join("services/.s6-svscan/env");
    assert!(
        text.starts_with(&format!(
            "export-vars: wrote CONTAINER_STARTED_AT and CONTAINER_HOST to {}\n",
            envdir.display()
        )),
        "{text}"
    );
    assert!(text.contains("app | app: APP_MODE=production DEBUG=<unset> GREETING=hello\n"));
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host = host.trim_end();
    assert!(text.contains(&format!(
        "reporter | reporter: DEBUG=1 GREETING=hello host={host}\n"
    )));
    assert!(text.contains(&format!(" on {host}\n")), "{text}");
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
}

#[test]
fn sigterm_during_an_init_step_is_passed_on() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("env-initterm");
    let dir = t.path().join("service");
    dumper(&dir.join("svc"));
    let slow = t.path().join("slow");
    script(
        &slow,
        "#!/bin/sh\necho started > \"$RSV_ENVDIR/STEP\"\nexec sleep 100\n",
    );
    let err = t.path().join("err");
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(bin("rsvscan"))
        .arg("--supervisor")
        .arg(bin("rsupervise"))
        .args(["--init", slow.to_str().unwrap()])
        .arg(&dir)
        .env_remove("RSV_ENVDIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err).unwrap());
    let mut g = Guard::spawn(&mut cmd);
    let init = wait_for(5 * SEC, "rsvscan as PID 1", || child_of(g.pid()));
    wait_for(5 * SEC, "init step running", || {
        dir.join(".s6-svscan/env/STEP").exists().then_some(())
    });
    // SAFETY: kill(2) on rsvscan (PID 1 of the test's namespace), started by this test.
    unsafe {
        libc::kill(init, libc::SIGTERM);
    }
    let st = g.wait_exit(5 * SEC);
    let msg = fs::read_to_string(&err).unwrap();
    assert_eq!(st.code(), Some(128 + libc::SIGTERM), "{msg}");
    assert!(msg.contains("exit code 143"), "{msg}");
    assert!(!dir.join("svc/supervise").exists());
}
