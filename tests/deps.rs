//! Dependencies, oneshots and bundles (s6-rc's source format read straight from the scan
//! directory): ordered start with readiness gating, parallel branches, reverse stop with
//! `down` scripts, failures and timeouts, bad graphs, nested bundles, `--up`, requests on the
//! control FIFO, the main command, and services dropped in later. Each test runs rsvscan as
//! PID 1 of its own pid namespace, so nothing outlives it.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TempDir, bin, run, script, wait_for};
use scan::{Ns, start_ns, start_ns_prog, unshare_ok};

const LIMIT: Duration = Duration::from_secs(15);

/// A scan directory under construction, with one event log every script appends to.
struct Tree {
    scan: PathBuf,
    log: PathBuf,
}

impl Tree {
    fn new(t: &TempDir) -> Tree {
        let scan = t.path().join("scan");
        fs::create_dir_all(&scan).unwrap();
        Tree {
            scan,
            log: t.path().join("events"),
        }
    }

    /// A shell line appending `WHAT` and the time in ns to the event log.
    fn note(&self, what: &str) -> String {
        format!("echo \"{what} $(date +%s%N)\" >> {}", self.log.display())
    }

    fn deps(&self, name: &str, deps: &[&str]) {
        if deps.is_empty() {
            return;
        }
        let d = self.scan.join(name).join("dependencies.d");
        fs::create_dir_all(&d).unwrap();
        for dep in deps {
            fs::write(d.join(dep), "").unwrap();
        }
    }

    /// A longrun that notes its start and its finish; `extra` runs before it notifies
    /// readiness (notification-fd 3), so that its note is written once it counts as up.
    fn longrun(&self, name: &str, deps: &[&str], extra: &str) {
        let sd = self.scan.join(name);
        script(
            &sd.join("run"),
            &format!(
                "#!/bin/sh\n{}\n{extra}\necho >&3\nexec sleep 1000 3>&-\n",
                self.note(&format!("start {name}"))
            ),
        );
        fs::write(sd.join("notification-fd"), "3\n").unwrap();
        script(
            &sd.join("finish"),
            &format!("#!/bin/sh\n{}\n", self.note(&format!("finish {name}"))),
        );
        self.deps(name, deps);
    }

    /// A oneshot whose `up` (and `down`) is one line naming a script beside the scan dir, as
    /// s6-overlay recommends.
    fn oneshot(&self, name: &str, deps: &[&str], up_body: &str, with_down: bool) {
        let sd = self.scan.join(name);
        fs::create_dir_all(&sd).unwrap();
        fs::write(sd.join("type"), "oneshot\n").unwrap();
        let scripts = self.scan.parent().unwrap().join("scripts");
        let up = scripts.join(format!("{name}-up"));
        script(
            &up,
            &format!(
                "#!/bin/sh\n{}\n{up_body}\n",
                self.note(&format!("up {name}"))
            ),
        );
        fs::write(sd.join("up"), format!("{}\n", up.display())).unwrap();
        if with_down {
            let down = scripts.join(format!("{name}-down"));
            script(
                &down,
                &format!("#!/bin/sh\n{}\n", self.note(&format!("down {name}"))),
            );
            fs::write(sd.join("down"), format!("{}\n", down.display())).unwrap();
        }
        self.deps(name, deps);
    }

    fn bundle(&self, name: &str, contents: &[&str]) {
        let d = self.scan.join(name).join("contents.d");
        fs::create_dir_all(&d).unwrap();
        fs::write(self.scan.join(name).join("type"), "bundle\n").unwrap();
        for c in contents {
            fs::write(d.join(c), "").unwrap();
        }
    }

    /// The event log: (what, name, ns).
    fn events(&self) -> Vec<(String, String, u128)> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((
                    w.next()?.to_string(),
                    w.next()?.to_string(),
                    w.next()?.parse().ok()?,
                ))
            })
            .collect()
    }

    fn at(&self, what: &str, name: &str) -> Option<u128> {
        self.events()
            .into_iter()
            .find(|(w, n, _)| w == what && n == name)
            .map(|(_, _, t)| t)
    }

    fn wait_event(&self, what: &str, name: &str) -> u128 {
        wait_for(LIMIT, &format!("{what} {name}"), || self.at(what, name))
    }

    /// The order in which `what` events happened, by name.
    fn order(&self, what: &str) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|(w, _, _)| w == what)
            .map(|(_, n, _)| n)
            .collect()
    }

    /// The stop events (`finish NAME`, `down NAME`) in order, services outside `skip`.
    fn stops(&self, skip: &[&str]) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|(w, n, _)| (w == "finish" || w == "down") && !skip.contains(&n.as_str()))
            .map(|(w, n, _)| format!("{w} {n}"))
            .collect()
    }

    /// The whole rsv-graph file (read again while a rewrite has cut it).
    fn graph(&self) -> String {
        wait_for(LIMIT, "a whole rsv-graph", || {
            match fs::read_to_string(self.scan.join(".s6-svscan/rsv-graph")) {
                Ok(t) if !t.ends_with("\nend\n") => None,
                Ok(t) => Some(t),
                Err(_) => Some(String::new()),
            }
        })
    }

    /// The rsv-graph record of `name`: its fields after `svc NAME`.
    fn rec(&self, name: &str) -> Option<Vec<String>> {
        self.graph().lines().find_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 9 && f[0] == "svc" && f[1] == name)
                .then(|| f[2..].iter().map(|s| s.to_string()).collect())
        })
    }

    fn wait_state(&self, name: &str, st: &str) -> Vec<String> {
        wait_for(LIMIT, &format!("{name} {st}"), || {
            self.rec(name).filter(|r| r[1] == st)
        })
    }

    fn start(&self, args: &[&str], t: &TempDir) -> Ns {
        start_ns(&self.scan, args, &t.path().join("err"))
    }

    /// Writes a request line to the scanner's control FIFO and waits for its outcome.
    fn request(&self, line: &str, nonce: u64) -> String {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(self.scan.join(".s6-svscan/control"))
            .unwrap();
        use std::io::Write;
        f.write_all(line.as_bytes()).unwrap();
        wait_for(LIMIT, &format!("outcome of request {nonce}"), || {
            self.graph().lines().find_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0] == "req" && f[1] == nonce.to_string()).then(|| l.to_string())
            })
        })
    }
}

/// Waits for rsvscan (PID 1 of `ns`) to exit on its own.
fn exited(ns: &mut Ns) -> std::process::ExitStatus {
    wait_for(LIMIT, "rsvscan's exit", || {
        ns.guard.0.as_mut().unwrap().try_wait().ok().flatten()
    })
}

fn ms(a: u128, b: u128) -> i128 {
    (b as i128 - a as i128) / 1_000_000
}

#[test]
fn readiness_gates_dependents_for_as_long_as_it_takes_and_no_longer() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-ready");
    let tr = Tree::new(&t);
    // db becomes ready 0.5 s after its start (notification-fd).
    tr.longrun("db", &[], &format!("sleep 0.5\n{}", tr.note("ready db")));
    tr.oneshot("mig", &["db"], "", true);
    tr.longrun("app", &["mig"], "");
    let mut ns = tr.start(&[], &t);
    let app = tr.wait_event("start", "app");
    let db = tr.at("start", "db").unwrap();
    let ready = tr.at("ready", "db").unwrap();
    let mig = tr.at("up", "mig").unwrap();
    assert!(
        ms(db, ready) >= 500,
        "db notified after {} ms",
        ms(db, ready)
    );
    assert!(mig > ready, "mig ran before db was ready");
    assert!(app > mig, "app started before mig was done");
    // Held back until readiness, not a polling interval later (generous for a busy machine:
    // the chain after readiness is one oneshot and one service start).
    assert!(
        ms(ready, app) < 800,
        "app started {} ms after db became ready",
        ms(ready, app)
    );
    tr.wait_state("app", "up");
    assert_eq!(tr.rec("mig").unwrap()[4], "exit:0");
    assert_eq!(ns.stop(), Some(0));
}

#[test]
fn independent_branches_run_in_parallel() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-parallel");
    let tr = Tree::new(&t);
    tr.oneshot("a", &[], "sleep 1", false);
    tr.oneshot("b", &[], "sleep 1", false);
    tr.longrun("c", &["a", "b"], "");
    let mut ns = tr.start(&[], &t);
    let c = tr.wait_event("start", "c");
    let a = tr.at("up", "a").unwrap();
    let b = tr.at("up", "b").unwrap();
    let first = a.min(b);
    let took = ms(first, c);
    assert!(took >= 1000, "c started {took} ms after the oneshots began");
    // One after the other they would take 2 s at least.
    assert!(
        took < 1950,
        "two 1-s oneshots took {took} ms: they did not run together"
    );
    assert_eq!(ns.stop(), Some(0));
}

#[test]
fn sigterm_stops_in_reverse_order_with_down_scripts() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-stop");
    let tr = Tree::new(&t);
    tr.longrun("db", &[], "");
    tr.oneshot("mig", &["db"], "", true);
    tr.longrun("app", &["mig"], "");
    tr.longrun("web", &["app"], "");
    tr.longrun("plain", &[], ""); // outside the graph: stopped at once, as before
    let mut ns = tr.start(&[], &t);
    tr.wait_state("web", "up");
    tr.wait_event("start", "plain");
    assert_eq!(ns.stop(), Some(0));
    assert_eq!(
        tr.stops(&["plain"]),
        ["finish web", "finish app", "down mig", "finish db"]
    );
    assert!(tr.at("finish", "plain").is_some());
}

#[test]
fn a_failing_oneshot_blocks_its_dependents_only() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-fail");
    let tr = Tree::new(&t);
    tr.oneshot("bad", &[], "exit 3", false);
    tr.longrun("app", &["bad"], "");
    tr.longrun("other", &[], "");
    let quick = t.path().join("quick");
    tr.oneshot(
        "slow",
        &[],
        &format!("[ -e {} ] || sleep 30", quick.display()),
        false,
    );
    fs::write(tr.scan.join("slow/timeout-up"), "300\n").unwrap();
    tr.longrun("after-slow", &["slow"], "");
    let mut ns = tr.start(&[], &t);
    tr.wait_event("start", "other");
    let bad = tr.wait_state("bad", "failed");
    assert_eq!(bad[4], "exit:3");
    let slow = tr.wait_state("slow", "failed");
    assert_eq!(slow[4], "timeout");
    let since = slow[3].parse::<u128>().unwrap();
    // The script notes its start in its first line; on a busy machine the 300-ms timeout
    // may kill it before that line ran (no note: killed that early, nothing to measure).
    if let Some(began) = tr.at("up", "slow") {
        let after = since as i128 - (began / 1_000_000) as i128;
        assert!(
            after < 3000,
            "timed out {after} ms after start (timeout-up 300)"
        );
    }
    let app = tr.rec("app").unwrap();
    assert_eq!((app[1].as_str(), app[6].as_str()), ("down", "bad!"));
    assert_eq!(tr.rec("after-slow").unwrap()[6], "slow!");
    assert!(tr.at("start", "app").is_none());
    assert!(tr.at("start", "after-slow").is_none());
    let err = ns.stderr();
    assert!(
        err.contains("unable to start service bad: command exited 3"),
        "{err}"
    );
    assert!(
        err.contains("unable to start service slow: timed out"),
        "{err}"
    );
    // Tried again by a request, quick this time: up, its dependent starts, and the earlier
    // timeout is not taken for this run's result.
    fs::write(&quick, "").unwrap();
    assert_eq!(tr.request("+21 after-slow\n", 21), "req\t21\t0\t-");
    assert_eq!(tr.rec("slow").unwrap()[4], "exit:0");
    tr.wait_state("after-slow", "up");
    assert_eq!(ns.stop(), Some(0));
}

#[test]
fn an_essential_oneshot_failure_stops_everything_with_its_code() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-essential");
    let tr = Tree::new(&t);
    tr.longrun("db", &[], "");
    tr.oneshot("check", &["db"], "exit 7", false);
    fs::write(tr.scan.join("check/essential"), "").unwrap();
    let mut ns = tr.start(&[], &t);
    let code = exited(&mut ns);
    assert_eq!(code.code(), Some(7), "{}", ns.stderr());
    assert!(tr.at("finish", "db").is_some());
}

/// rsvscan on a scan dir whose graph is bad: exit 100, each problem in one line.
fn refused(tr: &Tree) -> (i32, String) {
    let (code, _, err) = run(
        Command::new(bin("rsvscan"))
            .arg("--supervisor")
            .arg(bin("rsupervise"))
            .arg(&tr.scan)
            .stdin(Stdio::null()),
        LIMIT,
    );
    (code, err)
}

#[test]
fn bad_graphs_are_refused_at_start_with_one_message_each() {
    let t = TempDir::new("deps-bad");
    let tr = Tree::new(&t);
    tr.longrun("a", &["b"], "");
    tr.longrun("b", &["c"], "");
    tr.oneshot("c", &["a"], "", false);
    tr.longrun("d", &["nosuch"], "");
    let (code, err) = refused(&tr);
    assert_eq!(code, 100, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(err.contains("dependency cycle: a -> b -> c -> a"), "{err}");
    assert!(
        err.contains("d depends on nosuch, which does not exist"),
        "{err}"
    );
    assert!(lines.iter().all(|l| l.starts_with("rsvscan: fatal: ")));
    assert!(!tr.scan.join("a/supervise").exists(), "nothing was started");

    let t = TempDir::new("deps-bad-bundle");
    let tr = Tree::new(&t);
    tr.bundle("all", &["all", "x"]);
    tr.longrun("x", &[], "");
    let (code, err) = refused(&tr);
    assert_eq!(code, 100);
    assert_eq!(
        err.trim_end(),
        format!(
            "rsvscan: fatal: {}: bundle all contains itself",
            tr.scan.display()
        )
    );

    let t = TempDir::new("deps-bad-type");
    let tr = Tree::new(&t);
    tr.longrun("x", &[], "");
    fs::write(tr.scan.join("x/type"), "daemon\n").unwrap();
    let (code, err) = refused(&tr);
    assert_eq!(code, 100);
    assert_eq!(
        err.trim_end(),
        format!(
            "rsvscan: fatal: {}/x/type: unknown type \"daemon\" (must be longrun, oneshot or bundle)",
            tr.scan.display()
        )
    );
}

#[test]
fn nested_bundles_and_the_up_start_set() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-up");
    let tr = Tree::new(&t);
    tr.longrun("db", &[], "");
    tr.oneshot("init", &[], "", false);
    tr.longrun("app", &["base"], "");
    tr.bundle("base", &["init", "db"]);
    tr.bundle("inner", &["app"]);
    tr.bundle("outer", &["inner"]);
    tr.longrun("extra", &[], "");
    tr.longrun("plain", &[], "");
    let mut ns = tr.start(&["--up", "outer"], &t);
    tr.wait_state("app", "up");
    assert!(tr.at("up", "init").unwrap() < tr.at("start", "app").unwrap());
    assert!(tr.at("start", "db").unwrap() < tr.at("start", "app").unwrap());
    // Outside the start set: supervised, held down.
    let extra = tr.rec("extra").unwrap();
    assert_eq!((extra[1].as_str(), extra[2].as_str()), ("down", "down"));
    assert!(tr.rec("plain").is_some());
    assert!(tr.scan.join("plain/supervise/control").exists());
    let (code, out, _) = run(
        Command::new(bin("rsvstat")).arg(tr.scan.join("plain")),
        LIMIT,
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("down"), "{out}");
    assert!(tr.at("start", "extra").is_none() && tr.at("start", "plain").is_none());
    // The bundle is published with the atoms it stands for.
    assert!(
        tr.graph().contains("bundle\touter\tapp\n"),
        "{}",
        tr.graph()
    );
    assert_eq!(ns.stop(), Some(0));
}

#[test]
fn requests_bring_services_and_their_dependents_down_and_up() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-req");
    let tr = Tree::new(&t);
    tr.longrun("db", &[], "");
    tr.oneshot("mig", &["db"], "", true);
    tr.longrun("app", &["mig"], "");
    tr.longrun("side", &[], "");
    let mut ns = tr.start(&[], &t);
    tr.wait_state("app", "up");
    // Down db: app and mig go first (reverse order), side stays.
    let r = tr.request("-11 db\n", 11);
    assert_eq!(r, "req\t11\t0\t-");
    for n in ["db", "mig", "app"] {
        assert_eq!(tr.rec(n).unwrap()[1], "down", "{n}");
    }
    // side is outside the graph (no graph file, named by none): untouched.
    assert!(tr.rec("side").is_none());
    assert!(tr.at("finish", "side").is_none());
    assert_eq!(tr.stops(&[]), ["finish app", "down mig", "finish db"]);
    // Up app: its dependencies come back first.
    let r = tr.request("+12 app\n", 12);
    assert_eq!(r, "req\t12\t0\t-");
    let starts = tr.order("start");
    assert_eq!(starts[starts.len() - 2..], ["db", "app"], "{starts:?}");
    assert_eq!(tr.order("up"), ["mig", "mig"]);
    // An unknown name: code 3.
    assert_eq!(tr.request("+13 nosuch\n", 13), "req\t13\t3\tnosuch");
    assert_eq!(ns.stop(), Some(0));
}

#[test]
fn the_main_command_waits_for_the_start_set_and_its_end_stops_in_order() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-cmd");
    let tr = Tree::new(&t);
    tr.oneshot("init", &[], "sleep 0.3", true);
    tr.longrun("app", &["init"], "");
    let cmd = format!("{}; exit 5", tr.note("cmd main"));
    let args: Vec<std::ffi::OsString> = vec![
        "--supervisor".into(),
        bin("rsupervise").into(),
        tr.scan.clone().into(),
        "--".into(),
        "/bin/sh".into(),
        "-c".into(),
        cmd.into(),
    ];
    let mut ns = start_ns_prog(&bin("rsvscan"), &args, &tr.scan, &t.path().join("err"));
    let status = exited(&mut ns);
    assert_eq!(status.code(), Some(5), "{}", ns.stderr());
    let ev: Vec<String> = tr
        .events()
        .into_iter()
        .map(|(w, n, _)| format!("{w} {n}"))
        .collect();
    assert_eq!(
        ev,
        [
            "up init",
            "start app",
            "cmd main",
            "finish app",
            "down init"
        ]
    );
}

#[test]
fn a_service_dropped_in_later_joins_the_graph_and_a_removed_dependency_is_reported() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-late");
    let tr = Tree::new(&t);
    tr.longrun("db", &[], "");
    tr.oneshot("mig", &["db"], "", false);
    let mut ns = tr.start(&[], &t);
    tr.wait_state("mig", "up");
    // Built aside, then moved in whole.
    let aside = Tree {
        scan: t.path().join("aside"),
        log: tr.log.clone(),
    };
    fs::create_dir_all(&aside.scan).unwrap();
    aside.longrun("late", &["mig"], "");
    fs::rename(aside.scan.join("late"), tr.scan.join("late")).unwrap();
    tr.wait_state("late", "up");
    assert!(tr.at("start", "late").unwrap() > tr.at("up", "mig").unwrap());
    // mig goes away while late depends on it: reported, the graph in force stays.
    fs::remove_dir_all(tr.scan.join("mig")).unwrap();
    wait_for(LIMIT, "the removal reported", || {
        ns.stderr().contains("/mig was removed, but ").then_some(())
    });
    assert!(
        ns.stderr().contains("/late depends on it"),
        "{}",
        ns.stderr()
    );
    assert_eq!(ns.stop(), Some(0));
}

#[test]
fn without_execline_a_one_line_up_runs_and_anything_else_is_refused() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-noexecline");
    let tr = Tree::new(&t);
    tr.oneshot("simple", &[], "", false);
    tr.oneshot("block", &[], "", false);
    fs::write(
        tr.scan.join("block/up"),
        "foreground { echo hi }\necho there\n",
    )
    .unwrap();
    // A PATH with a shell and the tools the scripts use, but no execlineb.
    let tools = t.path().join("tools");
    fs::create_dir_all(&tools).unwrap();
    for tool in ["sh", "date", "sleep", "unshare"] {
        let real = ["/bin", "/usr/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap();
        std::os::unix::fs::symlink(real, tools.join(tool)).unwrap();
    }
    let mut cmd = scan::ns_rsvscan(&tr.scan, &[]);
    cmd.env("PATH", &tools).stdout(Stdio::null());
    let mut ns = scan::spawn_ns(cmd, &tr.scan, &t.path().join("err"));
    tr.wait_state("simple", "up");
    tr.wait_state("block", "failed");
    let err = ns.stderr();
    assert!(
        err.contains("/block/up: it has more than one command line: it needs execlineb, which is not installed"),
        "{err}"
    );
    assert_eq!(ns.stop(), Some(0));
}

#[test]
fn the_deps_example_runs_in_the_order_its_readme_shows() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-example");
    let scan = common::copy_example("deps", t.path()).join("deps");
    let out = t.path().join("out");
    let mut cmd = scan::ns_rsvscan(&scan, &[]);
    cmd.stdout(fs::File::create(&out).unwrap());
    let mut ns = scan::spawn_ns(cmd, &scan, &t.path().join("err"));
    let lines = || {
        fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    wait_for(LIMIT, "the app started", || {
        lines()
            .iter()
            .any(|l| l == "app: started after the migration")
            .then_some(())
    });
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
    let readme = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("servicedirs-examples/deps/README.md"),
    )
    .unwrap();
    let shown: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "prints, in this order:")
        .skip(3)
        .take_while(|l| *l != "```")
        .filter(|l| *l != "^C")
        .collect();
    assert_eq!(lines(), shown);
}

#[test]
fn runit_mode_rsvscanctl_stop_and_a_killed_supervisor_keep_the_graph() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-runit");
    let tr = Tree::new(&t);
    tr.longrun("db", &[], "");
    tr.oneshot("mig", &["db"], "", true);
    tr.longrun("app", &["mig"], "");
    let mut ns = tr.start(&["--compat", "runit"], &t);
    tr.wait_state("app", "up");
    assert!(tr.scan.join("app/supervise/stat").exists(), "runit layout");
    // A supervisor killed while its service is up is replaced without holding the service
    // down: the graph still counts it as up, and nothing else restarts.
    let sup = wait_for(LIMIT, "app's supervisor", || {
        ns.procs().into_iter().find(|&p| {
            scan::cmdline(p).contains("rsupervise") && scan::cmdline(p).trim_end().ends_with(" app")
        })
    });
    common::kill_pid(sup);
    wait_for(LIMIT, "app restarted", || {
        (tr.order("start").iter().filter(|n| *n == "app").count() == 2).then_some(())
    });
    assert_eq!(tr.rec("app").unwrap()[1], "up");
    assert_eq!(tr.order("up"), ["mig"], "mig ran once");
    // rsvscanctl -t: the same reverse order as SIGTERM.
    let (code, _, err) = run(
        Command::new(bin("rsvscanctl")).arg("-t").arg(&tr.scan),
        LIMIT,
    );
    assert_eq!(code, 0, "{err}");
    let status = exited(&mut ns);
    assert_eq!(status.code(), Some(0), "{}", ns.stderr());
    let stops: Vec<String> = tr
        .events()
        .into_iter()
        .filter(|(w, _, _)| w == "finish" || w == "down")
        .map(|(w, n, _)| format!("{w} {n}"))
        .collect();
    assert_eq!(
        stops.last().map(String::as_str),
        Some("finish db"),
        "{stops:?}"
    );
    let n = stops.len();
    assert_eq!(
        stops[n - 3..],
        ["finish app", "down mig", "finish db"],
        "{stops:?}"
    );
}

#[test]
fn a_oneshot_with_a_down_script_starts_and_a_running_up_does_not_hold_the_stop() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("deps-oneshot-down");
    let tr = Tree::new(&t);
    // Nothing depends on it: its `down` script is no "down" mark, it starts at boot.
    tr.oneshot("alone", &[], "", true);
    tr.oneshot("long", &[], "exec sleep 300", false);
    let mut ns = tr.start(&[], &t);
    tr.wait_state("alone", "up");
    tr.wait_state("long", "starting");
    tr.wait_event("up", "long");
    let t0 = std::time::Instant::now();
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
    // The running `up` got SIGTERM at the stop, not SIGKILL at the 8-s bound.
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(!ns.stderr().contains("bound"), "{}", ns.stderr());
    assert_eq!(tr.stops(&[]), ["down alone"]);
}
