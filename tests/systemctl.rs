//! The systemctl personality: enable/disable/is-enabled on systemd's own link layout (under
//! --root), `rsvscan --systemd` importing the enabled units at boot (PID 1 of a pid
//! namespace), then start/stop/reload/status/is-active/show/list-units against it, with
//! systemctl's exit codes.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use scan::*;

const LIMIT: Duration = Duration::from_secs(30);

struct Sys {
    root: PathBuf,
    scan: PathBuf,
}

impl Sys {
    fn cmd(&self, args: &[&str]) -> (i32, String, String) {
        self.cmd_in(None, args)
    }

    /// systemctl, inside the pid namespace of `init` when given (as `docker exec` would run
    /// it: pids and /proc as the services see them).
    fn cmd_in(&self, init: Option<i32>, args: &[&str]) -> (i32, String, String) {
        let bindir = bin("rsvscan").parent().unwrap().to_path_buf();
        let mut c = match init {
            Some(pid) => {
                let mut c = Command::new("nsenter");
                c.args(["-t", &pid.to_string(), "-p", "-m", "--"]);
                c.arg(env!("CARGO_BIN_EXE_systemctl"));
                c
            }
            None => Command::new(PathBuf::from(env!("CARGO_BIN_EXE_systemctl"))),
        };
        run(
            c.args(args)
                .env("RSV_SYSTEMD_ROOT", &self.root)
                .env("RSV_SYSTEMD_SCANDIR", &self.scan)
                .env(
                    "PATH",
                    format!(
                        "{}:{}",
                        bindir.display(),
                        std::env::var("PATH").unwrap_or_default()
                    ),
                ),
            LIMIT,
        )
    }
}

fn unit(root: &Path, name: &str, text: &str) {
    let d = root.join("lib/systemd/system");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join(name), text).unwrap();
}

fn line(p: &Path) -> String {
    whole_line(p, LIMIT)
}

#[test]
fn systemctl_for_containers() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("sysctl");
    let root = t.path().join("root");
    let out = t.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let o = out.display();
    let s = Sys {
        root: root.clone(),
        scan: t.path().join("scan"),
    };
    unit(
        &root,
        "web.service",
        &format!(
            "[Unit]\nDescription=Web server\nRequires=prep.service\nAfter=prep.service\n[Service]\nExecStart=/bin/sh -c 'trap \"echo reloaded >> {o}/reloads\" HUP; echo $$$$ > {o}/web.pid; while :; do sleep 0.1; done'\nExecReload=/bin/kill -HUP $MAINPID\n[Install]\nWantedBy=multi-user.target\nAlias=www.service\n"
        ),
    );
    unit(
        &root,
        "prep.service",
        &format!(
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'echo prepared >> {o}/prep'\n"
        ),
    );
    unit(
        &root,
        "note.service",
        "[Unit]\nDescription=Notifier\n[Service]\nType=notify\nExecStart=/bin/sh -c 'sleep 0.2; systemd-notify --ready --status=\"Serving\"; exec sleep 1000'\n[Install]\nWantedBy=multi-user.target\n",
    );
    unit(
        &root,
        "greet@.service",
        &format!("[Service]\nExecStart=/bin/sh -c 'echo %i > {o}/greet-%i; exec sleep 1000'\n"),
    );

    // In the image: enable writes systemd's links; nothing needs to run.
    let (c, _, e) = s.cmd(&["enable", "web"]);
    assert_eq!(c, 0, "{e}");
    assert!(e.contains("Created symlink"), "{e}");
    let link = root.join("etc/systemd/system/multi-user.target.wants/web.service");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("/lib/systemd/system/web.service")
    );
    assert_eq!(s.cmd(&["is-enabled", "web"]).1, "enabled\n");
    assert_eq!(s.cmd(&["is-enabled", "www"]).1, "alias\n");
    let (c, o1, _) = s.cmd(&["is-enabled", "note"]);
    assert_eq!((c, o1.as_str()), (1, "disabled\n"));
    let (c, o1, _) = s.cmd(&["is-enabled", "prep"]);
    assert_eq!((c, o1.as_str()), (0, "static\n"));
    assert_eq!(s.cmd(&["is-enabled", "nosuch"]).0, 1);
    // Without a running rsvscan, start fails with one line.
    let (c, _, e) = s.cmd(&["start", "note"]);
    assert_eq!(c, 1, "{e}");
    assert!(e.contains("no rsvscan runs on"), "{e}");
    assert_eq!(s.cmd(&["start", "nosuch"]).0, 5);
    assert_eq!(s.cmd(&["frobnicate"]).0, 1);

    // Boot: rsvscan --systemd imports web (enabled) and prep (required by it), runs prep.
    let bindir = bin("rsvscan").parent().unwrap().to_path_buf();
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "/usr/bin/env",
    ])
    .arg(format!(
        "PATH={}:{}",
        bindir.display(),
        std::env::var("PATH").unwrap_or_default()
    ))
    .arg(format!("RSV_SYSTEMD_ROOT={}", root.display()))
    .arg(bin("rsvscan"))
    .arg("--systemd")
    .arg("--supervisor")
    .arg(bin("rsupervise"))
    .arg(&s.scan)
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    let mut ns = spawn_ns(cmd, &s.scan, &t.path().join("err"));
    assert_eq!(line(&out.join("prep")), "prepared\n");
    let webpid: i32 = line(&out.join("web.pid")).trim().parse().unwrap();
    // web.pid is written as run starts, maybe before the supervisor's status says so.
    wait_for(LIMIT, "web active", || {
        (s.cmd(&["is-active", "web"]).1 == "active\n").then_some(())
    });
    assert_eq!(s.cmd(&["is-active", "prep"]).1, "active\n");
    let (c, o1, _) = s.cmd(&["is-active", "note"]);
    assert_eq!((c, o1.as_str()), (3, "inactive\n"));
    assert!(
        fs::read_dir(s.scan.join("web/dependencies.d"))
            .unwrap()
            .count()
            == 1
    );

    // start waits for READY=1; status in systemd's layout.
    let (c, _, e) = s.cmd(&["start", "note"]);
    assert_eq!(c, 0, "{e}");
    let (c, st, _) = s.cmd_in(Some(ns.init), &["status", "note"]);
    assert_eq!(c, 0, "{st}");
    let lines: Vec<&str> = st.lines().collect();
    assert_eq!(lines[0], "● note.service - Notifier");
    assert_eq!(
        lines[1],
        "     Loaded: loaded (/lib/systemd/system/note.service; disabled; preset: enabled)"
    );
    assert!(
        lines[2].starts_with("     Active: active (running) since "),
        "{st}"
    );
    assert!(
        // READY=1 comes before the shell execs sleep: either name is the service's process.
        lines[3].starts_with("   Main PID: ")
            && (lines[3].ends_with("(sleep)") || lines[3].ends_with("(sh)")),
        "{st}"
    );
    assert_eq!(lines[4], "     Status: \"Serving\"");
    let (c, v, _) = s.cmd(&["show", "-p", "ActiveState,SubState", "--value", "note"]);
    assert_eq!((c, v.as_str()), (0, "active\nrunning\n"));
    let (_, lu, _) = s.cmd(&["list-units", "--no-legend"]);
    assert!(
        lu.contains("note.service") && lu.contains("web.service"),
        "{lu}"
    );

    // reload runs ExecReload with $MAINPID.
    let (c, _, e) = s.cmd_in(Some(ns.init), &["reload", "web"]);
    assert_eq!(c, 0, "{e}");
    assert_eq!(line(&out.join("reloads")), "reloaded\n");
    assert_eq!(ns.host_pid(webpid).map(alive), Some(true));

    // stop; then inactive (3) for is-active and status.
    let (c, _, e) = s.cmd(&["stop", "web"]);
    assert_eq!(c, 0, "{e}");
    let (c, o1, _) = s.cmd(&["is-active", "web"]);
    assert_eq!((c, o1.as_str()), (3, "inactive\n"));
    assert_eq!(s.cmd(&["status", "web"]).0, 3);
    assert_eq!(s.cmd(&["status", "nosuch"]).0, 4);
    let (c, _, e) = s.cmd(&["restart", "web"]);
    assert_eq!(c, 0, "{e}");
    assert_eq!(
        s.cmd(&["is-active", "web"]).1,
        "active\n",
        "restart waits until active"
    );

    // Templates: an instance from greet@.service.
    let (c, _, e) = s.cmd(&["start", "greet@one"]);
    assert_eq!(c, 0, "{e}");
    assert_eq!(line(&out.join("greet-one")), "one\n");

    // disable --now removes the links and stops it.
    let (c, _, e) = s.cmd(&["disable", "--now", "web"]);
    assert_eq!(c, 0, "{e}");
    assert!(e.contains("Removed"), "{e}");
    assert!(fs::symlink_metadata(&link).is_err());
    assert_eq!(s.cmd(&["is-active", "web"]).0, 3);
    assert_eq!(ns.stop(), Some(0));
    assert!(ns.procs().is_empty());
}
