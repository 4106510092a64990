//! The recipes of docs/containers.md, taken from the document itself and run with podman:
//! the FROM scratch Containerfile is built as written, and the Kubernetes pod spec is played
//! with `podman kube play`.

mod common;
mod container;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use container::*;

const SEC: Duration = Duration::from_secs(1);

/// The fenced block that follows `<!-- recipe: NAME` in docs/containers.md.
fn recipe(name: &str) -> String {
    let doc = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/containers.md"))
        .unwrap();
    let at = doc
        .find(&format!("<!-- recipe: {name} "))
        .unwrap_or_else(|| panic!("docs/containers.md has no recipe {name}"));
    let rest = &doc[at..];
    let start = rest.find("```").unwrap();
    let body = &rest[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_string()
}

/// A static test program: prints a line, then sleeps until killed.
fn static_app(dir: &Path) -> PathBuf {
    let src = dir.join("app.rs");
    fs::write(
        &src,
        "fn main() {\n    println!(\"app: up\");\n    loop {\n        \
         std::thread::sleep(std::time::Duration::from_secs(1000));\n    }\n}\n",
    )
    .unwrap();
    let out = dir.join("app");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let (code, _, err) = common::run(
        Command::new(rustc)
            .args(["-O", "-C", "target-feature=+crt-static", "-o"])
            .arg(&out)
            .arg(&src),
        Duration::from_secs(300),
    );
    assert_eq!(code, 0, "rustc: {err}");
    out
}

#[test]
fn from_scratch_recipe() {
    let Some(rt) = podman() else { return };
    let ctx = context("scratch");
    let c = ctx.path();
    let tmp = common::TempDir::new("scratch-app");
    fs::copy(static_app(tmp.path()), c.join("app")).unwrap();
    fs::copy(common::bin("rsv"), c.join("rsv")).unwrap();
    fs::create_dir_all(c.join("services/app")).unwrap();
    std::os::unix::fs::symlink("/bin/app", c.join("services/app/run")).unwrap();
    let file = recipe("from-scratch");
    assert!(file.starts_with("FROM scratch\n"), "{file}");
    let img = build(rt, c, &file);
    let ct = Container::run(rt, &img, &[], &[]);
    ct.wait_logs(30 * SEC, "app up", |o, _| o.contains("app: up"));
    // Nothing but rsv and the app in the image: the tools are rsv's links.
    let (code, st, err) = ct.exec(&["/bin/rsvstat", "/etc/rsv/app"]);
    assert_eq!(code, 0, "{err}");
    assert!(st.starts_with("up (pid "), "{st}");
    let (code, _, _) = ct.exec(&["/bin/sh", "-c", "true"]);
    assert_ne!(code, 0, "a shell in a FROM scratch image");
    let (took, code) = ct.stop(10);
    assert_eq!(code, 0);
    assert!(took < SEC, "podman stop took {took:?}");
}

/// A pod played by `podman kube play`, removed (`podman kube down`) when dropped.
struct Pod {
    yaml: PathBuf,
    conf: PathBuf,
    name: String,
}

impl Pod {
    fn podman(&self, args: &[&str]) -> (i32, String, String) {
        common::run(
            Command::new("podman")
                .env("CONTAINERS_CONF", &self.conf)
                .args(args),
            PODMAN_LIMIT,
        )
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        let y = self.yaml.to_str().unwrap().to_string();
        let _ = self.podman(&["kube", "down", &y]);
        let _ = self.podman(&["pod", "rm", "-f", "-t", "0", &self.name]);
    }
}

#[test]
fn kubernetes_pod_spec_with_podman_kube_play() {
    let Some(rt) = podman() else { return };
    // The pod's infra container: busybox and a process that waits.
    let infra_root = Root::bare("infra");
    infra_root.script("bin/pause", "#!/bin/sh\nexec sleep 2147483647\n");
    let infra = infra_root.import(&[r#"CMD ["/bin/pause"]"#]);
    let root = Root::with_rsv("kube", &[]);
    root.script(
        "etc/rsv/web/run",
        "#!/bin/sh\nexec 2>&1\necho web: up as $(id -u)\nexec httpd -f -p 8080 -h /etc/rsv\n",
    );
    root.script(
        "etc/rsv/web/check",
        "#!/bin/sh\nwget -q -O /dev/null http://127.0.0.1:8080/web/check\n",
    );
    // Kubernetes makes an emptyDir writable by everyone (mode 0777); podman's stands for it
    // with a volume that copies the image directory's owner and mode: give /run those.
    fs::set_permissions(
        root.path("run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let img = root.import(&[r#"ENTRYPOINT ["/bin/rsvscan", "--prefix", "/etc/rsv"]"#]);

    let tmp = common::TempDir::new("kube");
    let name = unique("pod");
    let spec = recipe("pod-spec");
    assert!(spec.contains("terminationGracePeriodSeconds: 15"), "{spec}");
    let spec = spec
        .replace("\n  name: app\n", &format!("\n  name: {name}\n"))
        .replace("registry.example.com/app:1", &img.name);
    let yaml = tmp.path().join("pod.yaml");
    fs::write(&yaml, &spec).unwrap();
    // podman's settings for this pod: the infra image above, runc, limits below ours.
    let ulimits: Vec<String> = rt
        .opts
        .windows(2)
        .filter(|w| w[0] == "--ulimit")
        .map(|w| format!("\"{}\"", w[1]))
        .collect();
    let conf = tmp.path().join("containers.conf");
    fs::write(
        &conf,
        format!(
            "[containers]\ndefault_ulimits = [{}]\n\n[engine]\nruntime = \"runc\"\n\
             infra_image = \"{}\"\ninfra_command = \"/bin/pause\"\n",
            ulimits.join(", "),
            infra.name
        ),
    )
    .unwrap();
    let pod = Pod {
        yaml: yaml.clone(),
        conf,
        name: name.clone(),
    };
    let (code, out, err) =
        pod.podman(&["kube", "play", "--network", "none", yaml.to_str().unwrap()]);
    assert_eq!(code, 0, "podman kube play: {out}{err}");
    let ct = format!("{name}-app");
    // Logs on stdout, as `kubectl logs` reads them; runAsUser applied.
    let end = std::time::Instant::now() + 30 * SEC;
    loop {
        let (_, o, e) = pod.podman(&["logs", &ct]);
        if o.contains("web | web: up as 1000") {
            break;
        }
        if std::time::Instant::now() > end {
            let (_, i, _) = pod.podman(&["ps", "-a", "--pod"]);
            panic!("web not up: logs: {o}{e}\n{i}");
        }
        std::thread::sleep(SEC / 10);
    }
    // The probe's command, as the liveness probe became the container's health check.
    let (_, hc, _) = pod.podman(&["inspect", "--format", "{{.Config.Healthcheck.Test}}", &ct]);
    assert!(hc.contains("rsvstat --ready /etc/rsv"), "{hc}");
    common::wait_for(30 * SEC, "healthy", || {
        (pod.podman(&["healthcheck", "run", &ct]).0 == 0).then_some(())
    });
    // Read-only root, the state in the emptyDir at /run.
    let (code, _, _) = pod.podman(&["exec", &ct, "touch", "/etc/x"]);
    assert_ne!(code, 0, "root file system writable");
    let (code, st, err) = pod.podman(&["exec", &ct, "rsvstat", "/etc/rsv/web"]);
    assert_eq!(code, 0, "{st}{err}");
    assert!(st.starts_with("up (pid "), "{st}");
    // Deleting the pod: SIGTERM, rsv stops in order and exits 0.
    let t0 = now_ns();
    let (code, _, err) = pod.podman(&["pod", "stop", &name]);
    assert_eq!(code, 0, "{err}");
    let (_, fin, _) = pod.podman(&[
        "inspect",
        "--format",
        "{{.State.FinishedAt.UnixNano}} {{.State.ExitCode}}",
        &ct,
    ]);
    let mut it = fin.split_whitespace();
    let end: u128 = it.next().unwrap().parse().unwrap();
    let exit: i32 = it.next().unwrap().parse().unwrap();
    assert_eq!(exit, 0);
    let took = Duration::from_nanos(end.saturating_sub(t0) as u64);
    assert!(took < 2 * SEC, "pod stop took {took:?}");
    drop(pod);
    drop(img);
    drop(infra);
}
