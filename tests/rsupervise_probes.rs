//! rsupervise's built-in probes (`check-tcp`, `check-http`, `check-unix`, `check-file`)
//! against real servers started by the test (Python on 127.0.0.1 or a unix socket): they make
//! a service ready, restart it after `check-retries` failures, and leave their result in
//! words in rsv-state and rsvstat.

mod common;
mod supervisor;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Guard, TempDir, bin, run, script, wait_for};
use rsv::extstate::{ExtState, Health};
use supervisor::*;

/// A Python server: `http PORTFILE CODEFILE` answers GET with the status in CODEFILE (body
/// `status: ok` for 200, else `status: down`); `tcp PORTFILE` accepts and closes;
/// `unix PATH` does the same on a unix socket. The port is written to PORTFILE once
/// listening.
const SERVER: &str = r#"
import http.server, socketserver, sys, os
kind = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = int(open(sys.argv[3]).read().strip() or "200")
        body = b"status: ok" if code == 200 else b"status: down"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class T(socketserver.BaseRequestHandler):
    def handle(self):
        pass
if kind == "http":
    s = socketserver.TCPServer(("127.0.0.1", 0), H)
elif kind == "tcp":
    s = socketserver.TCPServer(("127.0.0.1", 0), T)
else:
    s = socketserver.UnixStreamServer(sys.argv[2], T)
if kind != "unix":
    open(sys.argv[2] + ".tmp", "w").write(str(s.server_address[1]))
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
s.serve_forever()
"#;

fn python() -> Option<PathBuf> {
    let ok = Command::new("python3")
        .arg("-c")
        .arg("import http.server")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: python3 is needed for the probe servers");
    }
    ok.then(|| PathBuf::from("python3"))
}

/// Starts the server; returns its guard and (for tcp/http) the port.
fn server(dir: &Path, args: &[&str]) -> (Guard, Option<u16>) {
    let py = dir.join("server.py");
    fs::write(&py, SERVER).unwrap();
    let g = Guard::spawn(
        Command::new("python3")
            .arg(&py)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    if args[0] == "unix" {
        wait_for(T, "unix server", || fs::metadata(args[1]).ok());
        return (g, None);
    }
    let port = wait_for(T, "server port", || {
        fs::read_to_string(args[1]).ok()?.trim().parse().ok()
    });
    (g, Some(port))
}

fn state(sd: &Path) -> Option<ExtState> {
    rsv::extstate::read(&sd.join("supervise")).ok()
}

fn wait_state(sd: &Path, what: &str, f: impl Fn(&ExtState) -> bool) -> ExtState {
    wait_for(T, what, || state(sd).filter(|s| f(s)))
}

fn service(sd: &Path) {
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
}

fn rsvstat_line(sd: &Path) -> String {
    let (_, out, _) = run(Command::new(bin("rsvstat")).arg(sd), T);
    out
}

#[test]
fn http_probe_readiness_health_and_restart() {
    let Some(_) = python() else { return };
    let t = TempDir::new("probe-http");
    let code = t.path().join("code");
    fs::write(&code, "503").unwrap();
    let portf = t.path().join("port");
    let (_srv, port) = server(
        t.path(),
        &["http", portf.to_str().unwrap(), code.to_str().unwrap()],
    );
    let port = port.unwrap();
    let sd = t.path().join("web");
    service(&sd);
    fs::write(
        sd.join("check-http"),
        format!("http://127.0.0.1:{port}/health\n200\nstatus: ok\n"),
    )
    .unwrap();
    fs::write(sd.join("check-interval"), "200").unwrap();
    fs::write(sd.join("check-retries"), "2").unwrap();
    let sup = Sup::start("s6", t.path(), "web");
    // 503: not ready, and the probe says why in words.
    let st = wait_state(&sd, "a failed probe", |s| {
        s.health_output.starts_with("http 503")
    });
    assert!(!st.ready, "{st:?}");
    assert!(
        st.health_output.contains("(expected 200)"),
        "{}",
        st.health_output
    );
    fs::write(&code, "200").unwrap();
    let st = wait_state(&sd, "ready and healthy", |s| {
        s.ready && s.health == Health::Healthy
    });
    assert!(st.health_output.starts_with("http 200 after "), "{st:?}");
    let (_, json, _) = run(Command::new(bin("rsvstat")).arg("--json").arg(&sd), T);
    assert!(json.contains("\"output\":\"http 200 after "), "{json}");
    // Failing twice in a row restarts the service.
    let pid = wait_up(&sd, None);
    fs::write(&code, "503").unwrap();
    let st = wait_state(&sd, "unhealthy", |s| s.health == Health::Unhealthy);
    assert!(st.health_output.starts_with("http 503"), "{st:?}");
    wait_up(&sd, Some(pid));
    let line = rsvstat_line(&sd);
    assert!(
        line.contains("unhealthy") && line.contains("http 503"),
        "{line}"
    );
    assert!(
        sup.err().contains("restarting the service: http 503"),
        "{}",
        sup.err()
    );
    sup.stop();
}

#[test]
fn tcp_and_unix_probes() {
    let Some(_) = python() else { return };
    let t = TempDir::new("probe-tcp");
    let portf = t.path().join("port");
    let (_srv, port) = server(t.path(), &["tcp", portf.to_str().unwrap()]);
    let sock = t.path().join("s.sock");
    let (_usrv, _) = server(t.path(), &["unix", sock.to_str().unwrap()]);
    let sd = t.path().join("db");
    service(&sd);
    fs::write(
        sd.join("check-tcp"),
        format!("127.0.0.1:{}\n", port.unwrap()),
    )
    .unwrap();
    fs::write(sd.join("check-unix"), format!("{}\n", sock.display())).unwrap();
    let sup = Sup::start("s6", t.path(), "db");
    let st = wait_state(&sd, "ready", |s| s.ready);
    assert!(
        st.health_output.starts_with("tcp 127.0.0.1:") && st.health_output.contains("; unix "),
        "{st:?}"
    );
    // Readiness only (no check-interval): health stays none.
    assert_eq!(st.health, Health::None);
    sup.stop();

    // Nothing listens: the probe never passes and says why.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sd2 = t.path().join("nolisten");
    service(&sd2);
    fs::write(sd2.join("check-tcp"), format!("127.0.0.1:{closed}\n")).unwrap();
    let sup = Sup::start("s6", t.path(), "nolisten");
    let st = wait_state(&sd2, "a refused probe", |s| !s.health_output.is_empty());
    assert_eq!(
        st.health_output,
        format!("tcp 127.0.0.1:{closed}: connection refused")
    );
    assert!(!st.ready);
    sup.stop();
}

#[test]
fn file_probe_heartbeat() {
    let t = TempDir::new("probe-file");
    let sd = t.path().join("beat");
    // The service touches its heartbeat once, then stops beating.
    script(
        &sd.join("run"),
        "#!/bin/sh\ntouch heartbeat\nexec sleep 1000\n",
    );
    fs::write(sd.join("check-file"), "heartbeat\n1\n").unwrap();
    fs::write(sd.join("check-interval"), "300").unwrap();
    fs::write(sd.join("check-retries"), "1").unwrap();
    let sup = Sup::start("runit", t.path(), "beat");
    let st = wait_state(&sd, "ready", |s| s.ready);
    assert!(
        st.health_output.starts_with("file heartbeat 0 s old"),
        "{st:?}"
    );
    let st = wait_state(&sd, "a stale heartbeat", |s| s.health == Health::Unhealthy);
    assert!(
        st.health_output.contains("s old (limit 1 s)"),
        "{}",
        st.health_output
    );
    wait_state(&sd, "a restart", |s| s.restarts >= 1);
    sup.stop();
}

#[test]
fn invalid_probe_file_is_a_failing_check() {
    let t = TempDir::new("probe-bad");
    let sd = t.path().join("bad");
    service(&sd);
    fs::write(sd.join("check-http"), "https://example.org/\n").unwrap();
    let sup = Sup::start("s6", t.path(), "bad");
    let st = wait_state(&sd, "a failed probe", |s| !s.health_output.is_empty());
    assert!(
        st.health_output
            .starts_with("invalid check-http: not an http:// URL"),
        "{st:?}"
    );
    assert!(!st.ready);
    wait_for(T, "the warning", || {
        sup.err().contains("invalid bad/check-http").then_some(())
    });
    sup.stop();
}

#[test]
fn probes_example_parses_and_its_worker_runs() {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("servicedirs-examples/probes");
    for (svc, file) in [("web", "check-http"), ("worker", "check-file")] {
        let text = fs::read_to_string(ex.join(svc).join(file)).unwrap();
        rsv::probe::parse(file, &text).unwrap_or_else(|e| panic!("{svc}/{file}: {e}"));
    }
    for f in ["web/run", "web/alert", "worker/run", ".rsv/alert"] {
        let (code, _, err) = run(Command::new("sh").arg("-n").arg(ex.join(f)), T);
        assert_eq!(code, 0, "sh -n {f}: {err}");
    }
    // The worker (a heartbeat file, no network): ready and healthy through check-file, and
    // the scan dir's alert reports its start on stderr.
    let t = TempDir::new("probe-example");
    let scan = common::copy_example("probes", &t.path().join("probes"));
    let sd = scan.join("worker");
    let sup = Sup::start("s6", &scan, "worker");
    let st = wait_state(&sd, "a healthy worker", |s| {
        s.ready && s.health == Health::Healthy
    });
    assert!(st.health_output.starts_with("file heartbeat "), "{st:?}");
    wait_for(T, "the alert line", || {
        sup.err()
            .contains("ALERT worker: started (pid ")
            .then_some(())
    });
    sup.stop();
}
