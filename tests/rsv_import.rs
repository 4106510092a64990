//! rsv-import: a realistic supervisord.conf and a Procfile imported into a scan dir, then run
//! under rsvscan (PID 1 of a pid namespace): users, environment, working directories,
//! one-shots, log files, and the list of settings not translated.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use scan::*;

const LIMIT: Duration = Duration::from_secs(20);

fn import_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rsv-import"))
}

fn import(args: &[&Path]) -> (i32, String, String) {
    let mut c = Command::new(import_bin());
    c.args(args);
    run(&mut c, LIMIT)
}

/// rsvscan on `scan` as PID 1 of a new pid namespace, with our binaries first on PATH.
fn start(scan: &Path, err: &Path) -> Ns {
    let bindir = bin("rsvscan").parent().unwrap().to_path_buf();
    let path = format!(
        "PATH={}:{}",
        bindir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let args: Vec<OsString> = vec![
        path.into(),
        bin("rsvscan").into(),
        "--supervisor".into(),
        bin("rsupervise").into(),
        scan.into(),
    ];
    start_ns_prog(Path::new("/usr/bin/env"), &args, scan, err)
}

fn read(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().filter(|s| !s.is_empty())
}

const CONF: &str = r#"; supervisord.conf as an image ships it
[supervisord]
nodaemon=true
logfile=/dev/null
logfile_maxbytes=0

[unix_http_server]
file=/run/supervisor.sock

[program:web]
; an nginx-like front end that stays in the foreground
command=/bin/sh -c "pwd > %(here)s/out/web.cwd; echo web started; exec sleep 1000"
directory=%(here)s/www
priority=10
stopsignal=QUIT
stopwaitsecs=3
redirect_stderr=true
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
autorestart=true

[program:worker]
command=/bin/sh -c 'echo "uid=$(id -u) gid=$(id -g) queue=$QUEUE db=$DB_URL cwd=$(pwd) name=$SUPERVISOR_PROCESS_NAME" > %(here)s/out/worker.txt; exec sleep 1000'
user=nobody
environment=QUEUE="jobs,high",
    DB_URL=postgres://db/%(program_name)s
startsecs=2
startretries=5

[program:migrate]
command=/bin/sh -c "echo migrated >> %(here)s/out/migrate.txt"   ; a one-shot
autorestart=false
startsecs=0

[program:app]
command=/bin/sh -c 'i=0; while :; do i=$((i+1)); echo "app line $i"; echo "app err $i" >&2; sleep 0.2; done'
stdout_logfile=%(here)s/logs/app.log
stdout_logfile_maxbytes=1MB
stdout_logfile_backups=3
stderr_logfile=%(here)s/logs/app.log
stopasgroup=true

[group:backend]
programs=worker,migrate

[eventlistener:memmon]
command=memmon -a 200MB
events=TICK_60
"#;

#[test]
fn supervisord_conf_imports_and_runs() {
    let t = TempDir::new("import-sup");
    let conf = t.path().join("supervisord.conf");
    fs::write(&conf, CONF).unwrap();
    fs::create_dir(t.path().join("www")).unwrap();
    let out = t.path().join("out");
    fs::create_dir(&out).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    let scan = t.path().join("service");

    let (rc, _, err) = import(&[Path::new("supervisord"), &conf, &scan]);
    assert_eq!(rc, 0, "{err}");
    for want in [
        "not translated: [supervisord]",
        "not translated: [unix_http_server]",
        "not translated: [program:app] stopasgroup=true (",
        "not translated: [group:backend] programs=worker,migrate",
        "not translated: [eventlistener:memmon] command=memmon -a 200MB",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let file = |p: &str| fs::read_to_string(scan.join(p)).unwrap();
    assert_eq!(file("web/down-signal"), "QUIT\n");
    assert_eq!(file("web/timeout-kill"), "3000\n");
    assert_eq!(file("worker/give-up"), "6 35\n");
    assert_eq!(file("worker/backoff-reset"), "2000\n");
    assert_eq!(file("worker/env/QUEUE"), "jobs,high\n");
    assert!(file("migrate/finish").contains("exit 125"));
    assert!(file("app/log/run").contains("rsvlog n3 s1048576 "));
    assert!(!scan.join("web/log").exists());
    // priority=10 is below the default 999: the others wait for web.
    for p in ["worker", "migrate", "app"] {
        assert!(scan.join(p).join("dependencies.d/web").is_file(), "{p}");
    }
    assert!(!scan.join("web/dependencies.d").exists());
    assert!(!err.contains("priority"), "{err}");

    // A second import refuses to overwrite; -f overwrites.
    let (rc, _, err) = import(&[Path::new("supervisord"), &conf, &scan]);
    assert_eq!(rc, 111, "{err}");
    assert!(err.contains("exists"), "{err}");
    let (rc, _, err) = import(&[Path::new("-f"), Path::new("supervisord"), &conf, &scan]);
    assert_eq!(rc, 0, "{err}");

    if !unshare_ok() {
        return;
    }
    let ns = start(&scan, &t.path().join("scan.err"));
    let www = t.path().join("www");
    wait_for(LIMIT, "web in its directory", || {
        read(&out.join("web.cwd")).filter(|s| s.trim() == www.to_str().unwrap())
    });
    let worker = wait_for(LIMIT, "worker output", || read(&out.join("worker.txt")));
    assert_eq!(
        worker.trim(),
        format!(
            "uid=65534 gid=65534 queue=jobs,high db=postgres://db/worker cwd={} name=worker",
            scan.join("worker").display()
        )
    );
    wait_for(LIMIT, "migrate ran", || read(&out.join("migrate.txt")));
    let app_log = t.path().join("logs/app");
    wait_for(LIMIT, "app log lines", || {
        let s = String::from_utf8_lossy(&logdir_content(&app_log)).into_owned();
        (s.contains("app line 2\n") && s.contains("app err 2\n")).then_some(())
    });
    // The one-shot stays down: a restart would come after 1 s.
    let end = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < end {
        assert_eq!(read(&out.join("migrate.txt")).unwrap(), "migrated\n");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, st, _) = run(
        Command::new(bin("rsvstat")).arg(scan.join("migrate")),
        LIMIT,
    );
    assert!(st.starts_with("down"), "{st}");
    drop(ns);
}

/// priority= as start and stop order, run by rsvscan's dependency engine: each group starts
/// once the group below it is up and ready, and stops before it.
#[test]
fn supervisord_priority_orders_start_and_stop() {
    let t = TempDir::new("import-prio");
    let order = t.path().join("order");
    fs::write(&order, "").unwrap();
    fs::set_permissions(&order, fs::Permissions::from_mode(0o666)).unwrap();
    let prog = t.path().join("prog");
    // Logs its start, tells readiness on fd 3, logs SIGTERM.
    script(
        &prog,
        &format!(
            "#!/bin/sh\necho \"up $1\" >> {o}\necho >&3\nexec 3>&-\ntrap 'echo \"down $1\" >> {o}; exit 0' TERM\nwhile :; do sleep 0.05; done\n",
            o = order.display()
        ),
    );
    let conf = t.path().join("supervisord.conf");
    fs::write(
        &conf,
        format!(
            "[program:web]\ncommand={p} web\n\n[program:db]\ncommand={p} db\npriority=1\n\n[program:app]\ncommand={p} app\npriority=50\n\n[program:cache]\ncommand={p} cache\npriority=50\n\n[program:tool]\ncommand={p} tool\npriority=20\nautostart=false\n",
            p = prog.display()
        ),
    )
    .unwrap();
    let scan = t.path().join("service");
    let (rc, _, err) = import(&[Path::new("supervisord"), &conf, &scan]);
    assert_eq!(rc, 0, "{err}");
    let deps = |n: &str| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(scan.join(n).join("dependencies.d"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    assert!(deps("db").is_empty());
    assert_eq!(deps("tool"), ["db"]);
    assert_eq!(deps("app"), ["db"]);
    assert_eq!(deps("cache"), ["db"]);
    assert_eq!(deps("web"), ["app", "cache"]);
    if !unshare_ok() {
        return;
    }
    // Readiness makes the order exact (the programs tell it on fd 3).
    for n in ["web", "db", "app", "cache", "tool"] {
        fs::write(scan.join(n).join("notification-fd"), "3\n").unwrap();
    }
    let mut ns = start(&scan, &t.path().join("scan.err"));
    let lines = || -> Vec<String> {
        fs::read_to_string(&order)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    wait_for(LIMIT, "web up", || {
        lines().contains(&"up web".to_string()).then_some(())
    });
    let at = |l: &[String], w: &str| l.iter().position(|x| x == w).unwrap_or(usize::MAX);
    let l = lines();
    assert!(at(&l, "up db") < at(&l, "up app"), "{l:?}");
    assert!(at(&l, "up db") < at(&l, "up cache"), "{l:?}");
    assert!(at(&l, "up app") < at(&l, "up web"), "{l:?}");
    assert!(at(&l, "up cache") < at(&l, "up web"), "{l:?}");
    assert!(!l.contains(&"up tool".to_string()), "{l:?}");
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
    let l = lines();
    assert!(at(&l, "down web") < at(&l, "down app"), "{l:?}");
    assert!(at(&l, "down app") < at(&l, "down db"), "{l:?}");
    assert!(at(&l, "down cache") < at(&l, "down db"), "{l:?}");
}

/// numprocs: a template `q@` and its instances `q@1`..`q@3` (numprocs_start=1), which
/// rsvscan starts at boot; each computes its %(process_num) expansions (widths included)
/// from its instance. `rsvc -x` removes an instance and `rsvc -u` makes a new one.
#[test]
fn supervisord_numprocs_imports_to_a_template_and_instances() {
    let t = TempDir::new("import-numprocs");
    let out = t.path().join("out");
    fs::create_dir(&out).unwrap();
    let conf = t.path().join("supervisord.conf");
    fs::write(
        &conf,
        "[program:q]\ncommand=/bin/sh -c 'echo \"%(process_num)d $SUPERVISOR_PROCESS_NAME $SLOT $RSV_INSTANCE\" > %(here)s/out/q-%(process_num)02d.tmp && mv %(here)s/out/q-%(process_num)02d.tmp %(here)s/out/q-%(process_num)02d; exec sleep 1000'\nprocess_name=%(program_name)s_%(process_num)02d\nnumprocs=3\nnumprocs_start=1\nenvironment=SLOT=\"slot%(process_num)d\"\nautorestart=true\n",
    )
    .unwrap();
    let scan = t.path().join("service");
    let (rc, _, err) = import(&[Path::new("supervisord"), &conf, &scan]);
    assert_eq!(rc, 0, "{err}");
    assert!(!err.contains("not translated"), "{err}");
    let mut names: Vec<String> = fs::read_dir(&scan)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["q@", "q@1", "q@2", "q@3"]);
    assert_eq!(
        fs::read_to_string(scan.join("q@2/.rsv-instance")).unwrap(),
        "q@\n"
    );
    assert_eq!(
        fs::read(scan.join("q@2/run.template")).unwrap(),
        fs::read(scan.join("q@/run")).unwrap()
    );
    // -f rewrites the instances too.
    let (rc, _, err) = import(&[Path::new("-f"), Path::new("supervisord"), &conf, &scan]);
    assert_eq!(rc, 0, "{err}");
    if !unshare_ok() {
        return;
    }
    let mut ns = start(&scan, &t.path().join("scan.err"));
    let line = |n: &str| whole_line(&out.join(format!("q-{n}")), LIMIT);
    for n in 1..=3 {
        assert_eq!(line(&format!("0{n}")), format!("{n} q_0{n} slot{n} {n}\n"));
    }
    assert!(!scan.join("q@/supervise").exists());
    // (The status may be written just after run wrote its line.)
    let pid2 = wait_for(LIMIT, "q@2's pid", || {
        let p = status_pid(&scan.join("q@2"));
        ns.host_pid(p).filter(|_| p > 0)
    });
    let rsvc = |args: &[&str], sd: &Path| run(Command::new(bin("rsvc")).args(args).arg(sd), LIMIT);
    let (c, _, e) = rsvc(&["-x"], &scan.join("q@2"));
    assert_eq!(c, 0, "{e}");
    assert!(!scan.join("q@2").exists());
    wait_for(LIMIT, "q@2's process gone", || (!alive(pid2)).then_some(()));
    let (c, _, e) = rsvc(&["-wu", "-T", "10000", "-u"], &scan.join("q@12"));
    assert_eq!(c, 0, "{e}");
    assert_eq!(line("12"), "12 q_12 slot12 12\n");
    // The others ran on untouched.
    for n in [1, 3] {
        let p = ns.host_pid(status_pid(&scan.join(format!("q@{n}"))));
        assert!(p.is_some_and(alive), "q@{n}");
    }
    assert_eq!(ns.stop(), Some(0), "{}", ns.stderr());
    assert!(ns.procs().is_empty());
}

#[test]
fn procfile_imports_and_runs() {
    let t = TempDir::new("import-proc");
    let out = t.path().join("out");
    fs::create_dir(&out).unwrap();
    let procfile = t.path().join("Procfile");
    fs::write(
        &procfile,
        format!(
            "# processes\nweb: echo \"web port=$PORT\" > {o}/web.txt; exec sleep 1000\nworker: exec sh -c 'echo worker port=$PORT > {o}/worker.txt; exec sleep 1000'\n\nnot a process line\n",
            o = out.display()
        ),
    )
    .unwrap();
    let scan = t.path().join("service");
    let (rc, _, err) = import(&[Path::new("procfile"), &procfile, &scan]);
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("not imported: line 5"), "{err}");
    assert_eq!(
        fs::read_to_string(scan.join("worker/env/PORT")).unwrap(),
        "5100\n"
    );
    let (rc, _, err) = import(&[
        Path::new("-f"),
        Path::new("-p"),
        Path::new("8000"),
        Path::new("procfile"),
        &procfile,
        &scan,
    ]);
    assert_eq!(rc, 1, "{err}");
    if !unshare_ok() {
        return;
    }
    let ns = start(&scan, &t.path().join("scan.err"));
    let web = wait_for(LIMIT, "web", || read(&out.join("web.txt")));
    assert_eq!(web, "web port=8000\n");
    let worker = wait_for(LIMIT, "worker", || read(&out.join("worker.txt")));
    assert_eq!(worker, "worker port=8100\n");
    drop(ns);
}

#[test]
fn usage_and_unreadable_input() {
    let t = TempDir::new("import-usage");
    let (rc, _, err) = import(&[Path::new("supervisord")]);
    assert_eq!(rc, 100);
    assert!(err.starts_with("rsv-import: usage:"), "{err}");
    let (rc, _, err) = import(&[Path::new("nginx"), Path::new("a"), Path::new("b")]);
    assert_eq!(rc, 100, "{err}");
    let missing = t.path().join("missing.conf");
    let (rc, _, err) = import(&[Path::new("supervisord"), &missing, t.path()]);
    assert_eq!(rc, 111);
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    let bad = t.path().join("bad.conf");
    fs::write(&bad, "[program:x]\njunk line\n").unwrap();
    let (rc, _, err) = import(&[Path::new("supervisord"), &bad, &t.path().join("o")]);
    assert_eq!(rc, 111);
    assert!(err.contains("line 2"), "{err}");
    assert!(!t.path().join("o").exists());
}

/// Every file below `dir` with its mode and content, sorted by path.
fn tree(dir: &Path) -> Vec<(String, u32, Vec<u8>)> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<(String, u32, Vec<u8>)>) {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                out.push((rel, mode, fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn example_output_is_current() {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("servicedirs-examples/import");
    let t = TempDir::new("import-example");
    for (kind, input, outdir) in [
        ("supervisord", "supervisord.conf", "supervisord"),
        ("procfile", "Procfile", "procfile"),
    ] {
        let dest = t.path().join(outdir);
        let (rc, _, err) = run(
            Command::new(import_bin())
                .args([kind, input])
                .arg(&dest)
                .current_dir(&ex),
            LIMIT,
        );
        assert_eq!(rc, 0, "{err}");
        let notes = fs::read_to_string(ex.join(format!("{outdir}.notes"))).unwrap();
        let err = err.replace(&dest.display().to_string(), outdir);
        assert_eq!(err, notes, "{outdir}.notes is out of date");
        let (want, got) = (tree(&ex.join(outdir)), tree(&dest));
        assert_eq!(
            got, want,
            "servicedirs-examples/import/{outdir} is out of date"
        );
        assert!(
            want.iter()
                .any(|(p, m, _)| p.ends_with("run") && *m == 0o755)
        );
    }
}
