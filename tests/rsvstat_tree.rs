//! rsvstat on whole trees: what `supervise/rsv-state` adds to the human line and the table,
//! `--json` checked against docs/status-schema.json, `--prom` parsed by the exposition rules,
//! `--ready` exit codes, and unchanged output when there is no rsv-state.
//!
//! Statuses come from real supervisors (rsupervise, and runsv/s6-supervise for the "no
//! rsv-state" case). Throttled, unhealthy and gave-up states are simulated by writing
//! rsv-state by hand once the supervisor has reached the status wanted and has been stopped
//! with SIGSTOP (it keeps its lock, so the service still counts as supervised, and it cannot
//! rewrite the files under the test).

mod cli_util;
mod common;
#[path = "common/json.rs"]
mod json;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Guard, TempDir, bin, have_refs, kill_pid, run, script, wait_for};
use json::{J, parse_json};
use rsv::status::Ended;
use rsv::svview::View;

const T: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Supervisors

/// rsupervise on one service dir; killed (with its service and logger, by pid) on drop.
struct Sup {
    dir: PathBuf,
    g: Guard,
    pids: Vec<i32>,
}

impl Sup {
    fn start(dir: &Path, runit: bool) -> Sup {
        let mut c = Command::new(bin("rsupervise"));
        if runit {
            c.args(["--compat", "runit"]);
        }
        let g = Guard::spawn(
            c.arg(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_for(T, "supervisor", || {
            let locked = rsv::lock::supervised(&dir.join("supervise")).unwrap_or(false);
            (locked && View::read(dir).is_ok()).then_some(())
        });
        Sup {
            dir: dir.to_path_buf(),
            g,
            pids: Vec::new(),
        }
    }

    /// Waits until `f` holds for the status, then stops the supervisor (SIGSTOP) and checks
    /// that it still holds; retries when the supervisor moved on in between.
    fn freeze_when(&mut self, what: &str, f: impl Fn(&View) -> bool) -> View {
        for _ in 0..20 {
            wait_for(T, what, || View::read(&self.dir).ok().filter(|v| f(v)));
            self.g.signal(libc::SIGSTOP);
            // Let a stopped supervisor's last rename land before reading again.
            std::thread::sleep(Duration::from_millis(20));
            let v = View::read(&self.dir).unwrap();
            if f(&v) {
                if v.pid != 0 {
                    self.pids.push(v.pid as i32);
                }
                if let Ok(l) = View::read(&self.dir.join("log"))
                    && l.pid != 0
                {
                    self.pids.push(l.pid as i32);
                }
                return v;
            }
            self.g.signal(libc::SIGCONT);
        }
        panic!("{}: never stayed in state {what}", self.dir.display());
    }
}

impl Drop for Sup {
    fn drop(&mut self) {
        self.g.signal(libc::SIGCONT);
        if let Some(mut c) = self.g.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for p in &self.pids {
            kill_pid(*p);
        }
    }
}

fn up(v: &View) -> bool {
    v.up
}

/// How far ahead crashy's pending start is written.
const NEXT_TRY_AHEAD_MS: u64 = 600_000;

fn ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn write_state(sd: &Path, text: &str) {
    fs::write(sd.join("supervise/rsv-state"), text).unwrap();
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

fn rsvstat(args: &[&str]) -> (i32, String, String) {
    run(Command::new(bin("rsvstat")).args(args), T)
}

/// A scan dir with one service in each interesting state:
/// - `crashy` (s6 mode): exits 1, frozen while down and wanted up; rsv-state: throttled.
/// - `done` (s6 mode): ran once, exited 3, wanted down; rsv-state: gave up (give-up 5 60).
/// - `sick` (s6 mode): up; rsv-state: unhealthy, 2 failures.
/// - `web` (runit mode, with log/): up; rsv-state: ready, healthy.
/// - `note` (s6 mode, notification-fd): up and ready; rsv-state: ready, healthy, 1 restart.
/// - `plain` (s6 mode): up; no rsv-state.
struct Tree {
    t: TempDir,
    _sups: Vec<Sup>,
    pids: BTreeMap<&'static str, u64>,
}

impl Tree {
    fn scan(&self) -> PathBuf {
        self.t.path().join("scan")
    }
    fn sd(&self, name: &str) -> PathBuf {
        self.scan().join(name)
    }
}

fn tree(tag: &str) -> Tree {
    let t = TempDir::new(tag);
    let scan = t.path().join("scan");
    let sleep = "#!/bin/sh\nexec sleep 1000\n";
    script(&scan.join("crashy/run"), "#!/bin/sh\nexit 1\n");
    script(&scan.join("done/run"), "#!/bin/sh\nexit 3\n");
    fs::write(scan.join("done/down"), "").unwrap();
    fs::write(scan.join("done/give-up"), "5 60\n").unwrap();
    script(&scan.join("sick/run"), sleep);
    script(&scan.join("web/run"), sleep);
    script(
        &scan.join("web/log/run"),
        "#!/bin/sh\nexec cat >/dev/null\n",
    );
    script(
        &scan.join("note/run"),
        "#!/bin/sh\necho >&3\nexec sleep 1000\n",
    );
    fs::write(scan.join("note/notification-fd"), "3\n").unwrap();
    script(&scan.join("plain/run"), sleep);

    let mut sups = Vec::new();
    let mut pids = BTreeMap::new();
    let now = ms_now();

    let mut s = Sup::start(&scan.join("crashy"), false);
    s.freeze_when("crashy down, want up, exitcode 1", |v| {
        !v.up && !v.finishing && v.wantup && v.ended() == Some(Ended::Exited(1))
    });
    write_state(
        &s.dir,
        &format!(
            "restarts 3\nready 0\nexits exit:1 exit:1 exit:1\nbackoff_ms 4000\nnext_try_ms {}\ngave_up 0\nessential 0\nhealth none\n",
            // Far enough ahead to be still pending when the tree is read on a busy machine
            // (building the tree alone can take seconds), counted from now, not from the
            // start of the build.
            ms_now() + NEXT_TRY_AHEAD_MS
        ),
    );
    sups.push(s);

    let mut s = Sup::start(&scan.join("done"), false);
    let (c, _, e) = run(
        Command::new(bin("rsvc")).args(["-o", p(&scan.join("done"))]),
        T,
    );
    assert_eq!(c, 0, "{e}");
    s.freeze_when("done exited 3", |v| {
        !v.up && !v.finishing && !v.wantup && v.ended() == Some(Ended::Exited(3))
    });
    fs::remove_file(scan.join("done/down")).unwrap();
    write_state(
        &s.dir,
        "restarts 4\nready 0\nexits exit:3 exit:3 exit:3 exit:3 exit:3\nbackoff_ms 0\nnext_try_ms 0\ngave_up 1\nessential 1\nfinal_exit 3\nhealth none\n",
    );
    sups.push(s);

    let mut s = Sup::start(&scan.join("sick"), false);
    pids.insert("sick", s.freeze_when("sick up", up).pid);
    write_state(
        &s.dir,
        &format!(
            "restarts 0\nready 1\nexits \nbackoff_ms 0\nnext_try_ms 0\ngave_up 0\nessential 0\nhealth unhealthy\nhealth_failures 2\nhealth_at_ms {now}\nhealth_output connection \"refused\" \\ port 80\n"
        ),
    );
    sups.push(s);

    let mut s = Sup::start(&scan.join("web"), true);
    wait_for(T, "web/log up", || {
        View::read(&scan.join("web/log")).ok().filter(up)
    });
    pids.insert("web", s.freeze_when("web up", up).pid);
    pids.insert("web/log", View::read(&scan.join("web/log")).unwrap().pid);
    // The logger has no rsv-state in this tree, whatever the supervisor writes.
    let _ = fs::remove_file(scan.join("web/log/supervise/rsv-state"));
    write_state(
        &s.dir,
        &format!(
            "restarts 0\nready 1\nexits \nhealth healthy\nhealth_at_ms {now}\nhealth_output ok\n"
        ),
    );
    sups.push(s);

    let mut s = Sup::start(&scan.join("note"), false);
    pids.insert("note", s.freeze_when("note ready", |v| v.up && v.ready).pid);
    write_state(
        &s.dir,
        "restarts 1\nready 1\nexits signal:9\nhealth healthy\nhealth_failures 0\n",
    );
    sups.push(s);

    let mut s = Sup::start(&scan.join("plain"), false);
    pids.insert("plain", s.freeze_when("plain up", up).pid);
    // An rsupervise that writes rsv-state itself must not spoil the "none" case.
    let _ = fs::remove_file(scan.join("plain/supervise/rsv-state"));
    sups.push(s);

    Tree {
        t,
        _sups: sups,
        pids,
    }
}

// ---------------------------------------------------------------------------------------
// Human line and table

fn line_of(sd: &Path) -> String {
    let (c, out, err) = rsvstat(&[p(sd)]);
    assert_eq!(c, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "one line: {out:?}");
    out.trim_end().to_string()
}

/// Replaces every run of digits with `N`, except in the words given.
fn shape(s: &str) -> String {
    let mut o = String::new();
    let mut in_num = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_num {
                o.push('N');
            }
            in_num = true;
        } else {
            in_num = false;
            o.push(c);
        }
    }
    o
}

#[test]
fn human_line_and_table_say_what_rsv_state_says() {
    let tr = tree("tree-human");
    let l = line_of(&tr.sd("crashy"));
    assert!(
        shape(&l).starts_with(
            "down (exitcode N) N seconds, normally up, want up, ready N seconds, throttled, next try in Ns, N restarts, last exits: N N N"
        ) && l.ends_with("s, 3 restarts, last exits: 1 1 1"),
        "{l}"
    );
    let secs: u64 = l
        .split("next try in ")
        .nth(1)
        .unwrap()
        .split('s')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=NEXT_TRY_AHEAD_MS / 1000).contains(&secs), "{l}");

    let l = line_of(&tr.sd("done"));
    assert_eq!(
        shape(&l),
        "down (exitcode N) N seconds, normally up, ready N seconds, essential, final exit N, gave up after N deaths in N seconds, N restarts, last exits: N N N N N"
    );
    assert!(
        l.contains("final exit 3, gave up after 5 deaths in 60 seconds, 4 restarts"),
        "{l}"
    );

    let l = line_of(&tr.sd("sick"));
    assert_eq!(
        l,
        format!(
            "up (pid {}) {} seconds, unhealthy (2 failures): connection \"refused\" \\ port 80",
            tr.pids["sick"],
            l.split(' ').nth(3).unwrap()
        )
    );
    // runit status: rsv-state's readiness is said, the status cannot say it.
    let l = line_of(&tr.sd("web"));
    assert_eq!(shape(&l), "up (pid N) N seconds, ready, healthy", "{l}");
    let l = line_of(&tr.sd("note"));
    assert_eq!(
        shape(&l),
        "up (pid N) N seconds, ready N seconds, N restart, healthy",
        "{l}"
    );
    // No rsv-state: today's line, nothing appended.
    let l = line_of(&tr.sd("plain"));
    assert_eq!(shape(&l), "up (pid N) N seconds", "{l}");
    // The field options are untouched by rsv-state.
    let (_, out, _) = rsvstat(&["-o", "up,wantedup,exitcode", p(&tr.sd("crashy"))]);
    assert_eq!(out, "false true 1\n");

    // The table: the wide layout, since some services have an rsv-state.
    let (c, out, err) = rsvstat(&[p(&tr.scan())]);
    assert_eq!(c, 0, "{err}\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "NAME                     STATE             PID    UPTIME READY WANT LAST-EXIT      RESTARTS HEALTH           MEM    CPU NOTES"
    );
    let row = |n: &str| -> Vec<String> {
        let l = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(n))
            .unwrap_or_else(|| panic!("no row {n} in\n{out}"));
        // NAME STATE PID UPTIME READY WANT LAST-EXIT(2 words or -) RESTARTS HEALTH MEM CPU
        // NOTES... (MEM and CPU are left out here)
        let w: Vec<String> = l.split_whitespace().map(str::to_string).collect();
        let k = if w[6] == "-" { 7 } else { 8 };
        let mut v = w[..6].to_vec();
        v.push(w[6..k].join(" "));
        v.push(w[k].clone());
        v.push(w[k + 1].clone());
        v.push(w[k + 4..].join(" "));
        v
    };
    let r = row("crashy");
    assert_eq!(
        (r[1].as_str(), r[6].as_str(), r[7].as_str()),
        ("down", "exitcode 1", "3")
    );
    assert!(r[9].starts_with("throttled, next try in "), "{r:?}");
    let r = row("done");
    assert_eq!(
        r[9],
        "essential, final exit 3, gave up after 5 deaths in 60 seconds"
    );
    let r = row("sick");
    assert_eq!(
        (r[2].clone(), r[4].as_str(), r[8].as_str(), r[9].as_str()),
        (tr.pids["sick"].to_string(), "yes", "unhealthy(2)", "-")
    );
    let r = row("web");
    assert_eq!(
        (r[4].as_str(), r[7].as_str(), r[8].as_str()),
        ("yes", "0", "healthy")
    );
    let r = row("web/log");
    assert_eq!(
        (r[1].as_str(), r[7].as_str(), r[8].as_str(), r[9].as_str()),
        ("up", "-", "-", "-")
    );
    let r = row("note");
    assert_eq!((r[6].as_str(), r[7].as_str()), ("signal SIGKILL", "1"));
    let r = row("plain");
    assert_eq!(
        (r[1].as_str(), r[4].as_str(), r[7].as_str(), r[9].as_str()),
        ("up", "no", "-", "-")
    );
    assert_eq!(lines.len(), 8, "{out}");
}

// ---------------------------------------------------------------------------------------
// A small JSON reader and a JSON-Schema subset validator (type, enum, required, properties,
// additionalProperties, items, maxItems, minimum, maximum, oneOf, anyOf, $ref to $defs).

fn schema() -> J {
    parse_json(
        &fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status-schema.json"))
            .unwrap(),
    )
}

fn type_ok(v: &J, t: &str) -> bool {
    match (t, v) {
        ("null", J::Null) | ("boolean", J::Bool(_)) | ("string", J::Str(_)) => true,
        ("array", J::Arr(_)) | ("object", J::Obj(_)) | ("number", J::Num(_)) => true,
        ("integer", J::Num(n)) => n.fract() == 0.0,
        _ => false,
    }
}

/// Errors of `v` against schema `s` (empty = valid); `root` resolves `$ref`s.
fn validate(v: &J, s: &J, root: &J, at: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if let J::Str(r) = s.get("$ref") {
        let name = r.strip_prefix("#/$defs/").expect("only #/$defs refs");
        let def = root.get("$defs").get(name);
        assert!(def != &J::Null, "unknown $ref {r}");
        errs.extend(validate(v, def, root, at));
    }
    match s.get("type") {
        J::Str(t) if !type_ok(v, t) => errs.push(format!("{at}: not {t}: {v:?}")),
        J::Arr(ts) if !ts.iter().any(|t| matches!(t, J::Str(t) if type_ok(v, t))) => {
            errs.push(format!("{at}: none of {ts:?}: {v:?}"))
        }
        _ => {}
    }
    if let J::Arr(e) = s.get("enum")
        && !e.contains(v)
    {
        errs.push(format!("{at}: {v:?} not in enum"));
    }
    if let (J::Num(m), J::Num(n)) = (s.get("minimum"), v)
        && n < m
    {
        errs.push(format!("{at}: {n} < {m}"));
    }
    if let (J::Num(m), J::Num(n)) = (s.get("maximum"), v)
        && n > m
    {
        errs.push(format!("{at}: {n} > {m}"));
    }
    if let J::Obj(fields) = v {
        if let J::Arr(req) = s.get("required") {
            for r in req {
                let J::Str(r) = r else { panic!() };
                if !v.has(r) {
                    errs.push(format!("{at}: missing {r}"));
                }
            }
        }
        let props = s.get("properties");
        for (k, x) in fields {
            if props.has(k) {
                errs.extend(validate(x, props.get(k), root, &format!("{at}.{k}")));
            } else if s.get("additionalProperties") == &J::Bool(false) {
                errs.push(format!("{at}: unexpected property {k}"));
            }
        }
    }
    if let J::Arr(items) = v {
        if let J::Num(m) = s.get("maxItems")
            && items.len() as f64 > *m
        {
            errs.push(format!("{at}: more than {m} items"));
        }
        if s.has("items") {
            for (i, x) in items.iter().enumerate() {
                errs.extend(validate(x, s.get("items"), root, &format!("{at}[{i}]")));
            }
        }
    }
    if let J::Arr(alts) = s.get("oneOf") {
        let n = alts
            .iter()
            .filter(|a| validate(v, a, root, at).is_empty())
            .count();
        if n != 1 {
            errs.push(format!("{at}: matches {n} of oneOf: {v:?}"));
        }
    }
    if let J::Arr(alts) = s.get("anyOf")
        && !alts.iter().any(|a| validate(v, a, root, at).is_empty())
    {
        errs.push(format!("{at}: matches none of anyOf"));
    }
    errs
}

fn assert_valid(out: &str) -> J {
    let j = parse_json(out);
    let s = schema();
    let errs = validate(&j, &s, &s, "$");
    assert!(errs.is_empty(), "{errs:#?}\n{out}");
    // The validator must be able to fail.
    let mut bad = j.clone();
    if let J::Arr(v) = &mut bad {
        v.push(J::Obj(vec![("name".into(), J::Num(1.0))]));
    } else {
        bad = J::Arr(vec![J::Str("x".into())]);
    }
    assert!(!validate(&bad, &s, &s, "$").is_empty());
    // When python3 has the jsonschema module, it must agree (it is not needed).
    let py = "import json,sys,jsonschema\ns=json.load(open(sys.argv[1]))\njsonschema.Draft202012Validator(s).validate(json.load(sys.stdin))";
    let has = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has {
        let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status-schema.json");
        let mut child = Command::new("python3")
            .args(["-c", py, p(&schema_path)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(out.as_bytes())
            .unwrap();
        let r = child.wait_with_output().unwrap();
        assert!(
            r.status.success(),
            "python jsonschema: {}",
            String::from_utf8_lossy(&r.stderr)
        );
    }
    j
}

#[test]
fn json_of_a_tree_follows_the_schema() {
    let tr = tree("tree-json");
    let (c, out, err) = rsvstat(&["--json", p(&tr.scan())]);
    assert_eq!(c, 0, "{err}");
    let j = assert_valid(&out);
    let J::Arr(items) = &j else { panic!("{out}") };
    let names: Vec<&J> = items.iter().map(|o| o.get("name")).collect();
    let want: Vec<J> = ["crashy", "done", "note", "plain", "sick", "web", "web/log"]
        .iter()
        .map(|n| J::Str(n.to_string()))
        .collect();
    assert_eq!(names, want.iter().collect::<Vec<_>>());
    let by = |n: &str| -> &J {
        items
            .iter()
            .find(|o| o.get("name") == &J::Str(n.into()))
            .unwrap()
    };
    let c = by("crashy");
    assert_eq!(c.get("state"), &J::Str("down".into()));
    assert_eq!(c.get("throttling").get("throttled"), &J::Bool(true));
    let left = c.get("throttling").get("next_try_in_ms").num();
    assert!(left > 0.0 && left <= NEXT_TRY_AHEAD_MS as f64, "{left}");
    assert_eq!(c.get("throttling").get("backoff_ms"), &J::Num(4000.0));
    assert_eq!(c.get("restarts"), &J::Num(3.0));
    assert_eq!(
        c.get("exits"),
        &J::Arr(vec![J::Obj(vec![("code".into(), J::Num(1.0))]); 3])
    );
    assert_eq!(c.get("last_exit").get("code"), &J::Num(1.0));
    let d = by("done");
    assert_eq!(
        (
            d.get("gave_up"),
            d.get("essential"),
            d.get("final_exit"),
            d.get("want")
        ),
        (
            &J::Bool(true),
            &J::Bool(true),
            &J::Num(3.0),
            &J::Str("down".into())
        )
    );
    assert_eq!(d.get("throttling").get("throttled"), &J::Bool(false));
    let s = by("sick");
    assert_eq!(s.get("pid"), &J::Num(tr.pids["sick"] as f64));
    assert_eq!(s.get("health").get("status"), &J::Str("unhealthy".into()));
    assert_eq!(s.get("health").get("failures"), &J::Num(2.0));
    assert_eq!(
        s.get("health").get("output"),
        &J::Str("connection \"refused\" \\ port 80".into())
    );
    let at = s.get("health").get("last_check").num();
    assert!((at - ms_now() as f64 / 1000.0).abs() < 60.0, "{at}");
    let n = by("note");
    assert_eq!(n.get("ready"), &J::Bool(true));
    assert_eq!(
        n.get("last_exit"),
        &J::Obj(vec![
            ("signal".into(), J::Str("SIGKILL".into())),
            ("signum".into(), J::Num(9.0))
        ])
    );
    let w = by("web");
    assert_eq!(
        (w.get("format"), w.get("ready")),
        (&J::Str("runit".into()), &J::Bool(true))
    );
    let l = by("web/log");
    assert_eq!(
        (l.get("logger"), l.get("rsv_state")),
        (&J::Bool(true), &J::Bool(false))
    );
    assert_eq!(l.get("pid"), &J::Num(tr.pids["web/log"] as f64));
    // Without rsv-state: every rsv-state field is null.
    let pl = by("plain");
    assert_eq!(pl.get("rsv_state"), &J::Bool(false));
    for k in [
        "restarts",
        "exits",
        "throttling",
        "gave_up",
        "essential",
        "final_exit",
        "health",
        "sd_notify",
    ] {
        assert_eq!(pl.get(k), &J::Null, "{k}");
    }
    // One service dir: one object, same schema.
    let (c, out, err) = rsvstat(&["--json", p(&tr.sd("sick"))]);
    assert_eq!(c, 0, "{err}");
    let j = assert_valid(&out);
    assert_eq!(j.get("name"), &J::Str("sick".into()));
    // A directory whose status cannot be read still follows the schema (with "error").
    let (c, out, _) = rsvstat(&["--json", p(&tr.t.path().join("nothing"))]);
    assert_eq!(c, 1);
    let j = assert_valid(&out);
    assert!(matches!(j.get("error"), J::Str(_)), "{out}");
}

// ---------------------------------------------------------------------------------------
// Prometheus text format

fn is_metric_name(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

/// One sample: name, labels (unescaped), value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parses the exposition, asserting its rules: HELP/TYPE lines well-formed, one TYPE per
/// family and before its samples, all samples of a family together, valid names, label syntax
/// with escapes, float values, no duplicate series.
fn parse_prom(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'));
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps = BTreeSet::new();
    let mut done_families = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut series = BTreeSet::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut w = rest.splitn(3, ' ');
            let (kw, name, arg) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap_or(""));
            assert!(is_metric_name(name), "{line}");
            match kw {
                "HELP" => {
                    assert!(helps.insert(name.to_string()), "second HELP: {line}");
                    assert!(!arg.is_empty());
                }
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg),
                        "{line}"
                    );
                    assert!(
                        types.insert(name.into(), arg.into()).is_none(),
                        "second TYPE: {line}"
                    );
                }
                _ => panic!("unknown comment {line}"),
            }
            if current.as_deref() != Some(name) {
                if let Some(c) = current.take() {
                    done_families.insert(c);
                }
                assert!(!done_families.contains(name), "family {name} split: {line}");
                current = Some(name.to_string());
            }
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "{line:?}");
        let name_end = line.find(['{', ' ']).unwrap();
        let name = &line[..name_end];
        assert!(is_metric_name(name), "{line}");
        assert_eq!(
            current.as_deref(),
            Some(name),
            "sample outside its family: {line}"
        );
        assert!(types.contains_key(name), "sample before TYPE: {line}");
        let mut labels = Vec::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let b = r.as_bytes();
            let mut i = 0;
            loop {
                if b[i] == b'}' {
                    i += 1;
                    break;
                }
                let eq = r[i..].find('=').unwrap() + i;
                let lname = &r[i..eq];
                assert!(is_label_name(lname), "label {lname:?} in {line}");
                assert_eq!(b[eq + 1], b'"', "{line}");
                let mut j = eq + 2;
                let mut val = String::new();
                loop {
                    match b[j] {
                        b'"' => break,
                        b'\\' => {
                            val.push(match b[j + 1] {
                                b'\\' => '\\',
                                b'"' => '"',
                                b'n' => '\n',
                                c => panic!("bad escape \\{} in {line}", c as char),
                            });
                            j += 2;
                        }
                        _ => {
                            let ch = r[j..].chars().next().unwrap();
                            val.push(ch);
                            j += ch.len_utf8();
                        }
                    }
                }
                assert!(!labels.iter().any(|(n, _): &(String, String)| n == lname));
                labels.push((lname.to_string(), val));
                i = j + 1;
                match b[i] {
                    b',' => i += 1,
                    b'}' => {}
                    c => panic!("unexpected {} in {line}", c as char),
                }
            }
            rest = &r[i..];
        }
        let val = rest.strip_prefix(' ').expect("one space before the value");
        let v: f64 = val
            .parse()
            .unwrap_or_else(|_| panic!("value {val:?} in {line}"));
        assert!(
            series.insert(format!("{name}{labels:?}")),
            "duplicate {line}"
        );
        out.push((name.to_string(), labels, v));
    }
    for t in types.keys() {
        assert!(helps.contains(t), "TYPE without HELP: {t}");
    }
    out
}

fn value(s: &[Sample], name: &str, service: &str) -> Option<f64> {
    s.iter()
        .find(|(n, l, _)| n == name && l.iter().any(|(k, v)| k == "service" && v == service))
        .map(|x| x.2)
}

#[test]
fn prom_output_parses_and_carries_the_state() {
    let tr = tree("tree-prom");
    // An odd name, unsupervised, to check label escaping.
    let odd = tr.scan().join("q\"x\\y");
    script(&odd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    let (c, out, err) = rsvstat(&["--prom", p(&tr.scan())]);
    assert_eq!(c, 0, "{err}");
    let s = parse_prom(&out);
    // Stable: a second run gives the same series in the same order.
    let (_, out2, _) = rsvstat(&["--prom", p(&tr.scan())]);
    let s2 = parse_prom(&out2);
    let keys = |s: &[Sample]| -> Vec<(String, Vec<(String, String)>)> {
        s.iter().map(|(n, l, _)| (n.clone(), l.clone())).collect()
    };
    assert_eq!(keys(&s), keys(&s2));
    assert!(out.contains("# TYPE rsv_service_restarts_total counter\n"));
    for (metric, svc, want) in [
        ("rsv_service_up", "crashy", Some(0.0)),
        ("rsv_service_throttled", "crashy", Some(1.0)),
        ("rsv_service_backoff_seconds", "crashy", Some(4.0)),
        ("rsv_service_restarts_total", "crashy", Some(3.0)),
        ("rsv_service_last_exit_code", "crashy", Some(1.0)),
        ("rsv_service_gave_up", "done", Some(1.0)),
        ("rsv_service_final_exit_code", "done", Some(3.0)),
        ("rsv_service_essential", "done", Some(1.0)),
        ("rsv_service_want_up", "done", Some(0.0)),
        ("rsv_service_up", "sick", Some(1.0)),
        ("rsv_service_healthy", "sick", Some(0.0)),
        ("rsv_service_health_failures", "sick", Some(2.0)),
        ("rsv_service_healthy", "web", Some(1.0)),
        ("rsv_service_ready", "web", Some(1.0)),
        ("rsv_service_up", "web/log", Some(1.0)),
        ("rsv_service_last_exit_code", "note", Some(137.0)),
        ("rsv_service_last_exit_signal", "note", Some(9.0)),
        ("rsv_service_ready", "note", Some(1.0)),
        ("rsv_service_up", "plain", Some(1.0)),
        // No rsv-state: no sample rather than a made-up 0.
        ("rsv_service_restarts_total", "plain", None),
        ("rsv_service_healthy", "plain", None),
        ("rsv_service_supervised", "q\"x\\y", Some(0.0)),
        ("rsv_service_up", "q\"x\\y", Some(0.0)),
    ] {
        assert_eq!(value(&s, metric, svc), want, "{metric}{{service={svc:?}}}");
    }
    let left = value(&s, "rsv_service_next_try_seconds", "crashy").unwrap();
    assert!(
        left > 0.0 && left <= (NEXT_TRY_AHEAD_MS / 1000) as f64,
        "{left}"
    );
    let info = s
        .iter()
        .find(|(n, l, _)| n == "rsv_service_info" && l[0].1 == "q\"x\\y")
        .unwrap();
    assert_eq!(
        info.1[1],
        ("path".to_string(), p(&odd).to_string()),
        "{out}"
    );
    assert!(out.contains("service=\"q\\\"x\\\\y\""), "{out}");
    let log_info = s
        .iter()
        .find(|(n, l, _)| n == "rsv_service_info" && l[0].1 == "web/log")
        .unwrap();
    assert!(log_info.1.contains(&("logger".into(), "1".into())));
    // The parser must be able to fail.
    for bad in [
        "rsv_x 1\n",
        "# TYPE rsv_x gauge\nrsv_x{a=\"b} 1\n",
        "# HELP rsv_x h\n# TYPE rsv_x gauge\nrsv_x one\n",
        "# HELP rsv_x h\n# TYPE rsv_x gauge\n# TYPE rsv_x gauge\n",
    ] {
        let b = bad.to_string();
        assert!(
            std::panic::catch_unwind(move || parse_prom(&b)).is_err(),
            "{bad:?} accepted"
        );
    }
    // A missing operand is an error (the textfile must not be replaced by a wrong one).
    let (c, _, err) = rsvstat(&["--prom", p(&tr.t.path().join("nothing"))]);
    assert_eq!(c, 111, "{err}");
    assert!(err.contains("nothing"), "{err}");
}

// ---------------------------------------------------------------------------------------
// --ready

#[test]
fn ready_probe_exit_codes() {
    let t = TempDir::new("tree-ready");
    let scan = t.path().join("scan");
    script(&scan.join("web/run"), "#!/bin/sh\nexec sleep 1000\n");
    script(
        &scan.join("web/log/run"),
        "#!/bin/sh\nexec cat >/dev/null\n",
    );
    script(
        &scan.join("api/run"),
        "#!/bin/sh\necho >&3\nexec sleep 1000\n",
    );
    fs::write(scan.join("api/notification-fd"), "3\n").unwrap();
    script(&scan.join("idle/run"), "#!/bin/sh\nexec sleep 1000\n");
    fs::write(scan.join("idle/down"), "").unwrap();
    let mut web = Sup::start(&scan.join("web"), true);
    wait_for(T, "web/log up", || {
        View::read(&scan.join("web/log")).ok().filter(up)
    });
    web.freeze_when("web up", up);
    let mut api = Sup::start(&scan.join("api"), false);
    api.freeze_when("api ready", |v| v.up && v.ready);
    let mut idle = Sup::start(&scan.join("idle"), false);
    idle.freeze_when("idle down", |v| !v.up && !v.wantup);
    for sd in ["web", "web/log", "api", "idle"] {
        let _ = fs::remove_file(scan.join(sd).join("supervise/rsv-state"));
    }
    let probe = |args: &[&str]| {
        let mut a = vec!["--ready"];
        a.extend_from_slice(args);
        rsvstat(&a)
    };
    let s = p(&scan);
    // All up and ready (web: runit, up; api: notified); idle is down on purpose.
    assert_eq!(probe(&[s]), (0, String::new(), String::new()));
    // Unhealthy: 1, one line naming the service and saying why.
    write_state(
        &scan.join("api"),
        "ready 1\nhealth unhealthy\nhealth_failures 3\nhealth_output timeout\n",
    );
    let (c, out, _) = probe(&[s]);
    assert_eq!(c, 1);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("api: not ready: up (pid ")
            && out.ends_with(", unhealthy (3 failures): timeout\n"),
        "{out}"
    );
    // Healthy but rsv-state says not ready (e.g. check not passed yet).
    write_state(&scan.join("api"), "ready 0\nhealth starting\n");
    let (c, out, _) = probe(&[s]);
    assert_eq!(c, 1);
    assert!(
        out.starts_with("api: not ready: up ") && out.ends_with(", health starting\n"),
        "{out}"
    );
    write_state(&scan.join("api"), "ready 1\nhealth healthy\n");
    assert_eq!(probe(&[s]).0, 0);
    // A service that gave up counts although it is wanted down.
    write_state(&scan.join("idle"), "gave_up 1\nexits exit:2\n");
    let (c, out, _) = probe(&[s]);
    assert_eq!(c, 1);
    assert!(
        out.starts_with("idle: not ready: down ") && out.contains(", gave up"),
        "{out}"
    );
    fs::remove_file(scan.join("idle/supervise/rsv-state")).unwrap();
    assert_eq!(probe(&[s]).0, 0);
    // One service dir.
    assert_eq!(probe(&[p(&scan.join("api"))]).0, 0);
    assert_eq!(probe(&[p(&scan.join("web"))]).0, 0);
    // A service without supervisor fails the probe.
    script(&scan.join("new/run"), "#!/bin/sh\nexec sleep 1000\n");
    let (c, out, _) = probe(&[s]);
    assert_eq!((c, out.as_str()), (1, "new: not ready: not supervised\n"));
    fs::remove_dir_all(scan.join("new")).unwrap();
    // A missing operand: 111 and a line naming it.
    let (c, _, err) = probe(&[p(&t.path().join("nothing"))]);
    assert_eq!(c, 111);
    assert!(
        err.starts_with("rsvstat: ") && err.contains("nothing"),
        "{err}"
    );
    // Options that exclude each other.
    let (c, _, err) = rsvstat(&["--ready", "--json", s]);
    assert_eq!(c, 100);
    assert!(err.contains("cannot be combined"), "{err}");
    let (c, _, _) = rsvstat(&["--ready", "-u", s]);
    assert_eq!(c, 100);
    // An s6 service that asks for notification and never gives it is up but not ready.
    script(&scan.join("mute/run"), "#!/bin/sh\nexec sleep 1000\n");
    fs::write(scan.join("mute/notification-fd"), "3\n").unwrap();
    let mut mute = Sup::start(&scan.join("mute"), false);
    mute.freeze_when("mute up", up);
    let _ = fs::remove_file(scan.join("mute/supervise/rsv-state"));
    let (c, out, _) = probe(&[s]);
    assert_eq!(c, 1);
    assert!(out.starts_with("mute: not ready: up (pid "), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

// ---------------------------------------------------------------------------------------
// Without rsv-state (real runsv and s6-supervise): output exactly as before.

#[test]
fn reference_supervisors_give_todays_output() {
    if !have_refs(&["runsv", "s6-supervise", "s6-svstat"]) {
        return;
    }
    use cli_util::{Kind, Svc};
    let t = TempDir::new("tree-refs");
    let scan = t.path().join("scan");
    script(&scan.join("r/log/run"), "#!/bin/sh\nexec cat >/dev/null\n");
    let r = Svc::start(&scan, "r", Kind::Runsv, "exec sleep 1000");
    let s = Svc::start(&scan, "s", Kind::S6, "exec sleep 1000");
    let rp = r.wait_up();
    let sp = s.wait_up();
    wait_for(T, "r/log up", || {
        View::read(&scan.join("r/log")).ok().filter(up)
    });
    // s6: rsvstat prints what s6-svstat prints (retry across a second tick).
    let same = wait_for(T, "same line as s6-svstat", || {
        let a = run(Command::new("s6-svstat").arg(s.path()), T);
        let b = rsvstat(&[s.path()]);
        (a == b).then_some(b.1)
    });
    assert_eq!(shape(&same), "up (pid N) N seconds\n");
    assert!(same.starts_with(&format!("up (pid {sp}) ")));
    let l = line_of(&r.dir);
    assert_eq!(shape(&l), "up (pid N) N seconds");
    assert!(l.starts_with(&format!("up (pid {rp}) ")));
    // The table keeps today's columns.
    let (c, out, _) = rsvstat(&[p(&scan)]);
    assert_eq!(c, 0);
    assert_eq!(
        out.lines().next().unwrap(),
        "NAME                     STATE             PID    UPTIME READY WANT LAST-EXIT"
    );
    assert_eq!(out.lines().count(), 4, "{out}");
    for l in out.lines().skip(1) {
        let w: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(w.len(), 7, "{l}");
        assert_eq!((w[1], w[4], w[5], w[6]), ("up", "no", "up", "-"), "{l}");
    }
    // JSON: valid, rsv-state fields null.
    let (c, out, _) = rsvstat(&["--json", p(&scan)]);
    assert_eq!(c, 0);
    let j = assert_valid(&out);
    let J::Arr(items) = j else { panic!() };
    assert_eq!(items.len(), 3);
    for o in &items {
        assert_eq!(o.get("rsv_state"), &J::Bool(false));
        assert_eq!(o.get("health"), &J::Null);
        assert_eq!(o.get("throttling"), &J::Null);
    }
    // Prometheus: no rsv-state families' samples.
    let (_, out, _) = rsvstat(&["--prom", p(&scan)]);
    let samples = parse_prom(&out);
    assert_eq!(value(&samples, "rsv_service_up", "r"), Some(1.0));
    assert_eq!(value(&samples, "rsv_service_up", "r/log"), Some(1.0));
    assert_eq!(value(&samples, "rsv_service_restarts_total", "s"), None);
    // The probe: runit up = ready; s6 without notification-fd: up = ready.
    assert_eq!(rsvstat(&["--ready", p(&scan)]).0, 0);
}

// ---------------------------------------------------------------------------------------
// The example scan dir, under rsvscan in a pid namespace.

#[path = "common/scan.rs"]
mod scan;

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}

#[test]
fn the_status_example_runs_and_probes() {
    if !scan::unshare_ok() {
        return;
    }
    let t = TempDir::new("tree-example");
    let dir = t.path().join("status");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("servicedirs-examples/status"),
        &dir,
    );
    let bindir = bin("rsvlog").parent().unwrap().to_path_buf();
    let path = format!(
        "PATH={}:{}",
        bindir.display(),
        std::env::var("PATH").unwrap()
    );
    let args: Vec<std::ffi::OsString> = vec![
        path.into(),
        bin("rsvscan").into(),
        "--supervisor".into(),
        bin("rsupervise").into(),
        dir.clone().into(),
    ];
    let _ns = scan::start_ns_prog(
        Path::new("/usr/bin/env"),
        &args,
        &dir,
        &t.path().join("err"),
    );
    let d = p(&dir);
    // api notifies after a second; worker and its logger come up; flaky stays down.
    let (c, out, err) = wait_for(T, "the tree ready", || {
        let r = rsvstat(&["--ready", d]);
        (r.0 == 0).then_some(r)
    });
    assert_eq!((c, out.as_str(), err.as_str()), (0, "", ""));
    let (_, out, _) = rsvstat(&["--json", d]);
    let j = assert_valid(&out);
    let J::Arr(items) = j else { panic!("{out}") };
    let names: Vec<&J> = items.iter().map(|o| o.get("name")).collect();
    assert_eq!(
        names,
        ["api", "flaky", "worker", "worker/log"]
            .iter()
            .map(|n| J::Str(n.to_string()))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>()
    );
    parse_prom(&rsvstat(&["--prom", d]).1);
    // flaky asked up: it crash-loops, and the probe says so.
    let (c, _, e) = run(
        Command::new(bin("rsvc")).args(["-u", p(&dir.join("flaky"))]),
        T,
    );
    assert_eq!(c, 0, "{e}");
    let out = wait_for(T, "flaky not ready", || {
        let r = rsvstat(&["--ready", d]);
        (r.0 == 1).then_some(r.1)
    });
    assert!(out.starts_with("flaky: not ready: "), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
}
