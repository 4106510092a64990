//! The `s6-rc` client, `rsvc -d` of a service with dependents and rsvstat's graph rows, against
//! a real rsvscan (PID 1 of a pid namespace) running a dependency graph in a temp scan dir.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use scan::*;

const LIMIT: Duration = Duration::from_secs(20);

/// `s6-rc -l SCAN ARGS` through the multi-call binary.
fn s6rc(scan: &Path, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(bin("rsv"));
    c.arg("s6-rc").arg("-l").arg(scan).args(args);
    run(&mut c, LIMIT)
}

fn rsvstat(args: &[&Path]) -> (i32, String, String) {
    run(Command::new(bin("rsvstat")).args(args), LIMIT)
}

fn graph_file(scan: &Path) -> PathBuf {
    scan.join(".s6-svscan/rsv-graph")
}

/// The engine's state of `name` (the STATE field of its `svc` line).
fn graph_state(scan: &Path, name: &str) -> Option<String> {
    let text = fs::read_to_string(graph_file(scan)).ok()?;
    text.lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|f| f.len() >= 9 && f[0] == "svc" && f[1] == name)
        .map(|f| f[3].to_string())
}

fn wait_state(scan: &Path, name: &str, want: &str) {
    wait_for(LIMIT, &format!("{name} {want}"), || {
        (graph_state(scan, name).as_deref() == Some(want)).then_some(())
    });
}

/// Appends lines to `log` as the services come and go.
struct Tree {
    _t: TempDir,
    scan: PathBuf,
    log: PathBuf,
    err: PathBuf,
}

impl Tree {
    fn new(tag: &str) -> Tree {
        let t = TempDir::new(tag);
        let scan = t.path().join("service");
        fs::create_dir(&scan).unwrap();
        let log = t.path().join("log");
        fs::write(&log, "").unwrap();
        fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        let err = t.path().join("scan.err");
        Tree {
            scan,
            log,
            err,
            _t: t,
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        let d = self.scan.join(name);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn deps(&self, name: &str, deps: &[&str]) {
        let d = self.dir(name).join("dependencies.d");
        fs::create_dir_all(&d).unwrap();
        for dep in deps {
            fs::write(d.join(dep), "").unwrap();
        }
    }

    /// A longrun that logs `up-NAME` when it starts, then says it is ready (so the log's
    /// order is the start order), and logs `down-NAME` at SIGTERM.
    fn longrun(&self, name: &str, deps: &[&str]) {
        let d = self.dir(name);
        fs::write(d.join("type"), "longrun\n").unwrap();
        fs::write(d.join("notification-fd"), "3\n").unwrap();
        script(
            &d.join("run"),
            &format!(
                "#!/bin/sh\necho up-{name} >> {log}\necho >&3\nexec 3>&-\ntrap 'echo down-{name} >> {log}; exit 0' TERM\nwhile :; do sleep 0.05; done\n",
                log = self.log.display()
            ),
        );
        self.deps(name, deps);
    }

    /// A oneshot whose `up` (one line naming a script, s6-overlay's form) runs `body`, and
    /// whose `down` logs `down-NAME`.
    fn oneshot(&self, name: &str, deps: &[&str], body: &str) {
        self.oneshot_up(name, deps, body);
        let d = self.dir(name);
        let down = d.join("down.sh");
        script(
            &down,
            &format!("#!/bin/sh\necho down-{name} >> {}\n", self.log.display()),
        );
        fs::write(d.join("down"), format!("{}\n", down.display())).unwrap();
    }

    /// A oneshot with an `up` only.
    fn oneshot_up(&self, name: &str, deps: &[&str], body: &str) {
        let d = self.dir(name);
        fs::write(d.join("type"), "oneshot\n").unwrap();
        let up = d.join("up.sh");
        script(&up, &format!("#!/bin/sh\n{body}\n"));
        fs::write(d.join("up"), format!("{}\n", up.display())).unwrap();
        self.deps(name, deps);
    }

    fn bundle(&self, name: &str, contents: &[&str]) {
        let d = self.dir(name);
        fs::write(d.join("type"), "bundle\n").unwrap();
        let c = d.join("contents.d");
        fs::create_dir_all(&c).unwrap();
        for n in contents {
            fs::write(c.join(n), "").unwrap();
        }
    }

    fn log(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn start(&self) -> Ns {
        start_ns(&self.scan, &[], &self.err)
    }
}

fn pos(log: &[String], what: &str) -> usize {
    log.iter()
        .position(|l| l == what)
        .unwrap_or_else(|| panic!("{what} not in {log:?}"))
}

#[test]
fn usage_help_and_no_scanner() {
    let t = TempDir::new("s6rc-usage");
    let (c, _, err) = s6rc(t.path(), &[]);
    assert_eq!(c, 100, "{err}");
    assert!(err.starts_with("s6-rc: usage: s6-rc "), "{err}");
    let (c, _, err) = s6rc(t.path(), &["frob"]);
    assert_eq!(
        (c, err.as_str()),
        (100, "s6-rc: fatal: unknown command: frob\n")
    );
    let (c, out, _) = s6rc(t.path(), &["help"]);
    assert_eq!(c, 0);
    assert!(out.contains("change [ servicenames... ]"), "{out}");
    // Nothing runs on this directory.
    let (c, _, err) = s6rc(t.path(), &["-a", "list"]);
    assert_eq!(c, 111, "{err}");
    assert!(
        err.starts_with(&format!(
            "s6-rc: fatal: unable to reach rsvscan on {}",
            t.path().display()
        )),
        "{err}"
    );
    // Without -l: $RSV_SCANDIR.
    let (c, _, err) = run(
        Command::new(bin("rsv"))
            .args(["s6-rc", "-a", "list"])
            .env("RSV_SCANDIR", t.path()),
        LIMIT,
    );
    assert_eq!(c, 111, "{err}");
    assert!(err.contains(&t.path().display().to_string()), "{err}");
}

#[test]
fn change_lists_and_order() {
    if !unshare_ok() {
        return;
    }
    let tr = Tree::new("s6rc-change");
    let log = tr.log.display().to_string();
    tr.oneshot("init", &[], &format!("echo up-init >> {log}"));
    tr.longrun("db", &["init"]);
    tr.longrun("app", &["db"]);
    // Not in the default start set; the bundle names it.
    tr.longrun("web", &["app"]);
    fs::write(tr.scan.join("web/down"), "").unwrap();
    tr.bundle("front", &["web"]);
    // A service calls s6-rc without -l: rsvscan's RSV_SCANDIR leads it to the scan dir.
    let listed = tr.scan.join("../listed");
    let lister = tr.dir("lister");
    fs::write(lister.join("type"), "longrun\n").unwrap();
    script(
        &lister.join("run"),
        &format!(
            "#!/bin/sh\n{} s6-rc listall lister > {l}.tmp\necho $? >> {l}.tmp\nmv {l}.tmp {l}\nexec sleep 1000\n",
            bin("rsv").display(),
            l = listed.display()
        ),
    );
    let mut ns = tr.start();
    wait_state(&tr.scan, "app", "up");
    let l = wait_for(LIMIT, "lister's s6-rc", || fs::read_to_string(&listed).ok());
    assert_eq!(l, "lister\n0\n");

    let (c, out, err) = s6rc(&tr.scan, &["-a", "list"]);
    assert_eq!(c, 0, "{err}");
    let mut active: Vec<&str> = out.lines().collect();
    active.sort();
    assert_eq!(active, ["app", "db", "init", "lister"]);
    let (c, out, _) = s6rc(&tr.scan, &["-da", "list"]);
    assert_eq!((c, out.as_str()), (0, "web\n"));
    let (c, out, _) = s6rc(&tr.scan, &["listall", "web"]);
    assert_eq!(c, 0);
    let mut all: Vec<&str> = out.lines().collect();
    all.sort();
    assert_eq!(all, ["app", "db", "init", "web"]);

    // Unknown name: 3, nothing sent.
    let (c, _, err) = s6rc(&tr.scan, &["-u", "change", "nosuch"]);
    assert_eq!(c, 3, "{err}");
    assert!(
        err.starts_with("s6-rc: fatal: nosuch is not a recognized identifier in "),
        "{err}"
    );

    // Up through the bundle, with progress at -v2.
    let (c, _, err) = s6rc(&tr.scan, &["-v2", "-u", "change", "front"]);
    assert_eq!(c, 0, "{err}");
    assert!(
        err.contains("s6-rc: info: service web successfully started"),
        "{err}"
    );
    assert_eq!(graph_state(&tr.scan, "web").as_deref(), Some("up"));

    // Down of db takes app and web down first (reverse order), then db; init stays.
    let (c, _, err) = s6rc(&tr.scan, &["-d", "change", "db"]);
    assert_eq!(c, 0, "{err}");
    let l = tr.log();
    assert!(pos(&l, "down-web") < pos(&l, "down-app"), "{l:?}");
    assert!(pos(&l, "down-app") < pos(&l, "down-db"), "{l:?}");
    let (_, out, _) = s6rc(&tr.scan, &["-a", "list"]);
    assert_eq!(out, "init\nlister\n");

    // Up again: db before app.
    fs::write(&tr.log, "").unwrap();
    let (c, _, err) = s6rc(&tr.scan, &["-u", "change", "app"]);
    assert_eq!(c, 0, "{err}");
    let l = tr.log();
    assert!(pos(&l, "up-db") < pos(&l, "up-app"), "{l:?}");

    // A dry run changes nothing and prints the transitions in order.
    let (c, _, err) = s6rc(&tr.scan, &["-d", "change", "db"]);
    assert_eq!(c, 0, "{err}");
    let (c, out, err) = s6rc(&tr.scan, &["-n", "0", "-u", "change", "front"]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(
        out,
        "dry run: start db\ndry run: start app\ndry run: start web\n"
    );
    assert_eq!(graph_state(&tr.scan, "db").as_deref(), Some("down"));
    // Prune: exactly db and what it needs stay up.
    let (c, _, err) = s6rc(&tr.scan, &["-pu", "change", "db"]);
    assert_eq!(c, 0, "{err}");
    let (_, out, _) = s6rc(&tr.scan, &["-a", "list"]);
    assert_eq!(out, "db\ninit\n");

    // Everything down: the oneshot's down script runs last.
    fs::write(&tr.log, "").unwrap();
    let (c, _, err) = s6rc(&tr.scan, &["-da", "change"]);
    assert_eq!(c, 0, "{err}");
    let l = tr.log();
    assert!(pos(&l, "down-db") < pos(&l, "down-init"), "{l:?}");
    let (_, out, _) = s6rc(&tr.scan, &["-a", "list"]);
    assert_eq!(out, "");
    ns.stop();
}

#[test]
fn failures_timeouts_and_rsvstat() {
    if !unshare_ok() {
        return;
    }
    let tr = Tree::new("s6rc-fail");
    tr.oneshot_up("bad", &[], "exit 1");
    tr.oneshot_up("slow", &[], "sleep 30");
    fs::write(tr.scan.join("slow/timeout-up"), "300\n").unwrap();
    tr.oneshot_up("ok", &[], "exit 0");
    let flag = tr.scan.join("../slow-now");
    tr.oneshot_up(
        "sleeper",
        &[],
        &format!("while [ -e {} ]; do sleep 0.05; done", flag.display()),
    );
    tr.longrun("app", &["bad"]);
    tr.longrun("db", &["ok"]);
    let mut ns = tr.start();
    wait_state(&tr.scan, "bad", "failed");
    wait_state(&tr.scan, "slow", "failed");
    wait_state(&tr.scan, "db", "up");

    // rsvstat: oneshots in the table, the wait on the failed one.
    let (c, out, err) = rsvstat(&[&tr.scan]);
    assert_eq!(c, 0, "{out}{err}");
    let row = |name: &str| -> String {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row in\n{out}"))
            .to_string()
    };
    assert!(out.starts_with("NAME "), "{out}");
    assert!(row("bad").contains(" failed "), "{out}");
    assert!(row("bad").contains("exitcode 1"), "{out}");
    assert!(row("slow").contains(" timed out "), "{out}");
    assert!(row("ok").contains(" done "), "{out}");
    assert!(row("ok").contains("exitcode 0"), "{out}");
    assert!(row("app").ends_with("waiting for: bad (failed)"), "{out}");
    // One line for one oneshot dir.
    let (c, line, _) = rsvstat(&[&tr.scan.join("ok")]);
    assert_eq!(c, 0);
    assert!(line.starts_with("done, exit 0, "), "{line}");
    assert!(line.ends_with(" s ago\n"), "{line}");
    let (_, line, _) = rsvstat(&[&tr.scan.join("bad")]);
    assert!(line.starts_with("failed, exit 1, "), "{line}");
    // JSON gains type, dependencies, waiting_for.
    let (c, js, err) = run(
        Command::new(bin("rsvstat")).arg("--json").arg(&tr.scan),
        LIMIT,
    );
    assert_eq!(c, 0, "{err}");
    assert!(js.contains("\"name\":\"app\""), "{js}");
    assert!(
        js.contains("\"type\":\"longrun\",\"dependencies\":[\"bad\"],\"waiting_for\":[\"bad\"]"),
        "{js}"
    );
    assert!(
        js.contains("\"type\":\"oneshot\",\"dependencies\":[],\"waiting_for\":[],\"graph_state\":\"failed\",\"timed_out\":true"),
        "{js}"
    );
    // The objects follow docs/status-schema.json (checked when python3 has jsonschema).
    let has_jsonschema = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_jsonschema {
        let f = tr.scan.join("../status.json");
        fs::write(&f, &js).unwrap();
        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status-schema.json");
        let (c, _, err) = run(
            Command::new("python3")
                .arg("-c")
                .arg("import json,sys,jsonschema\njsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))")
                .arg(&schema)
                .arg(&f),
            LIMIT,
        );
        assert_eq!(c, 0, "{err}\n{js}");
    }
    // --prom: the engine's view, one sample per graph member.
    let (c, prom, _) = run(
        Command::new(bin("rsvstat")).arg("--prom").arg(&tr.scan),
        LIMIT,
    );
    assert_eq!(c, 0);
    for want in [
        "rsv_service_start_failed{service=\"bad\",type=\"oneshot\"} 1\n",
        "rsv_service_graph_up{service=\"ok\",type=\"oneshot\"} 1\n",
        "rsv_service_waiting_dependencies{service=\"app\",type=\"longrun\"} 1\n",
    ] {
        assert!(prom.contains(want), "{want} in\n{prom}");
    }
    // --ready names what keeps the tree from being ready.
    let (c, out, _) = run(
        Command::new(bin("rsvstat")).arg("--ready").arg(&tr.scan),
        LIMIT,
    );
    assert_eq!(c, 1);
    assert!(out.contains("bad: not ready: failed, exit 1"), "{out}");

    // s6-rc reports the failures as s6-rc does.
    let (c, _, err) = s6rc(&tr.scan, &["-u", "change", "app"]);
    assert_eq!(c, 1, "{err}");
    assert!(
        err.contains("s6-rc: warning: unable to start service bad: command exited 1\n"),
        "{err}"
    );
    let t0 = Instant::now();
    let (c, _, err) = s6rc(&tr.scan, &["-u", "change", "slow"]);
    assert_eq!(c, 1, "{err}");
    assert!(
        err.contains("s6-rc: warning: unable to start service slow: command exited 111\n"),
        "{err}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    // The client's own timeout: 2.
    wait_state(&tr.scan, "sleeper", "up");
    let (c, _, err) = s6rc(&tr.scan, &["-d", "change", "sleeper"]);
    assert_eq!(c, 0, "{err}");
    fs::write(&flag, "").unwrap();
    let (c, _, err) = s6rc(&tr.scan, &["-t", "300", "-u", "change", "sleeper"]);
    assert_eq!((c, err.as_str()), (2, "s6-rc: fatal: timed out\n"));
    // The transition goes on without the client: it ends once the script does.
    fs::remove_file(&flag).unwrap();
    wait_state(&tr.scan, "sleeper", "up");
    ns.stop();
}

#[test]
fn rsvc_down_takes_dependents_along() {
    if !unshare_ok() {
        return;
    }
    let tr = Tree::new("s6rc-rsvc");
    tr.longrun("db", &[]);
    tr.longrun("app", &["db"]);
    tr.longrun("web", &["app"]);
    tr.longrun("solo", &[]);
    let log = tr.log.display().to_string();
    tr.oneshot_up("seed", &[], &format!("echo up-seed >> {log}"));
    let mut ns = tr.start();
    wait_state(&tr.scan, "web", "up");
    wait_state(&tr.scan, "solo", "up");
    // Nothing depends on solo: today's behaviour, nothing said.
    let (c, _, err) = run(
        Command::new(bin("rsvc"))
            .args(["-wd", "-d"])
            .arg(tr.scan.join("solo")),
        LIMIT,
    );
    assert_eq!((c, err.as_str()), (0, ""));
    // The engine still counts solo as up; its supervisor keeps it down: s6-rc diff says so.
    let (c, out, err) = s6rc(&tr.scan, &["diff"]);
    assert_eq!((c, out.as_str()), (1, "-solo\n"), "{err}");
    // db: app and web go first.
    fs::write(&tr.log, "").unwrap();
    let (c, _, err) = run(
        Command::new(bin("rsvc"))
            .args(["-wd", "-d"])
            .arg(tr.scan.join("db")),
        LIMIT,
    );
    assert_eq!(c, 0, "{err}");
    let mut said: Vec<&str> = err
        .strip_prefix("rsvc: also taking down: ")
        .unwrap_or_else(|| panic!("{err}"))
        .trim_end()
        .split(' ')
        .collect();
    said.sort();
    assert_eq!(said, ["app", "web"], "{err}");
    wait_state(&tr.scan, "db", "down");
    let l = tr.log();
    assert!(pos(&l, "down-web") < pos(&l, "down-app"), "{l:?}");
    assert!(pos(&l, "down-app") < pos(&l, "down-db"), "{l:?}");
    // A oneshot has no supervisor: rsvc -d and -u go to the scanner.
    wait_state(&tr.scan, "seed", "up");
    fs::write(&tr.log, "").unwrap();
    for (letter, state) in [("-d", "down"), ("-u", "up")] {
        let (c, _, err) = run(
            Command::new(bin("rsvc"))
                .arg(letter)
                .arg(tr.scan.join("seed")),
            LIMIT,
        );
        assert_eq!((c, err.as_str()), (0, ""));
        wait_state(&tr.scan, "seed", state);
    }
    assert_eq!(tr.log(), ["up-seed"]);
    ns.stop();
}
