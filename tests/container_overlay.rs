//! An s6-overlay v3 style image whose `/init` is rsv, run with podman: cont-init.d, the
//! s6-rc.d `user` bundle (a longrun, a oneshot, a longrun depending on both) and services.d
//! start in order before CMD; `podman stop` (or CMD's end) takes them down in reverse order,
//! cont-finish.d last; CMD's exit code is the container's.

mod common;
mod container;

use std::time::Duration;

use container::*;

const SEC: Duration = Duration::from_secs(1);

/// The image tree: s6-overlay's directories, with `/init`, `with-contenv` and `printcontenv`
/// being rsv (`rsv install --s6-overlay /command`, s6-overlay's own place for them).
fn overlay_root() -> Root {
    let root = Root::with_rsv("overlay", &[]);
    root.install_rsv("command", &["--s6-overlay"]);
    std::os::unix::fs::symlink("/command/init", root.path("init")).unwrap();
    root.script(
        "etc/cont-init.d/01-setup",
        "#!/command/with-contenv sh\necho \"cont-init: 01-setup GREETING=$GREETING\"\n",
    );
    root.script(
        "etc/cont-finish.d/01-bye",
        "#!/command/with-contenv sh\necho cont-finish: 01-bye\n",
    );
    let rc = "etc/s6-overlay/s6-rc.d";
    root.file(&format!("{rc}/user/type"), "bundle\n");
    for n in ["db", "migrate", "app"] {
        root.file(&format!("{rc}/user/contents.d/{n}"), "");
    }
    root.file(&format!("{rc}/db/type"), "longrun\n");
    // Longruns say when they are ready (after their line), so that what depends on them,
    // and CMD, start after the line is written.
    root.file(&format!("{rc}/db/notification-fd"), "3\n");
    root.file(&format!("{rc}/app/notification-fd"), "3\n");
    // As s6-overlay asks of user services: after `base` (fix-attrs, cont-init.d), so before
    // cont-finish.d at the stop.
    root.file(&format!("{rc}/db/dependencies.d/base"), "");
    root.script(
        &format!("{rc}/db/run"),
        "#!/command/with-contenv sh\necho db: up\necho >&3\nexec sleep 1000 3>&-\n",
    );
    root.script(&format!("{rc}/db/finish"), "#!/bin/sh\necho db: down\n");
    root.file(&format!("{rc}/migrate/type"), "oneshot\n");
    root.file(&format!("{rc}/migrate/dependencies.d/db"), "");
    root.file(
        &format!("{rc}/migrate/up"),
        "/etc/s6-overlay/scripts/migrate-up\n",
    );
    root.file(
        &format!("{rc}/migrate/down"),
        "/etc/s6-overlay/scripts/migrate-down\n",
    );
    root.script(
        "etc/s6-overlay/scripts/migrate-up",
        "#!/bin/sh\necho migrate: up\n",
    );
    root.script(
        "etc/s6-overlay/scripts/migrate-down",
        "#!/bin/sh\necho migrate: down\n",
    );
    root.file(&format!("{rc}/app/type"), "longrun\n");
    root.file(&format!("{rc}/app/dependencies.d/migrate"), "");
    root.script(
        &format!("{rc}/app/run"),
        "#!/command/with-contenv sh\necho app: up\necho >&3\nexec sleep 1000 3>&-\n",
    );
    root.script(&format!("{rc}/app/finish"), "#!/bin/sh\necho app: down\n");
    root.script(
        "etc/services.d/legacy/run",
        "#!/command/with-contenv sh\necho legacy: up\necho >&3\nexec sleep 1000 3>&-\n",
    );
    root.file("etc/services.d/legacy/notification-fd", "3\n");
    root.script(
        "etc/services.d/legacy/finish",
        "#!/bin/sh\necho legacy: down\n",
    );
    root
}

/// Position of the first line of `out` that is `line` (panics when absent).
fn at(out: &str, line: &str) -> usize {
    out.lines()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no line {line:?} in:\n{out}"))
}

fn in_order(out: &str, lines: &[&str]) {
    let pos: Vec<usize> = lines.iter().map(|l| at(out, l)).collect();
    assert!(
        pos.windows(2).all(|w| w[0] < w[1]),
        "not in the order {lines:?}:\n{out}"
    );
}

const START: &[&str] = &[
    "cont-init: 01-setup GREETING=hello",
    "db: up",
    "migrate: up",
    "app: up",
    "legacy: up",
    "cmd: running",
];

const STOP: &[&str] = &[
    "legacy: down",
    "app: down",
    "migrate: down",
    "db: down",
    "cont-finish: 01-bye",
];

#[test]
fn s6_overlay_image_with_rsv_as_init_podman_stop() {
    let Some(rt) = podman() else { return };
    let root = overlay_root();
    let img = root.import(&[
        r#"ENTRYPOINT ["/init"]"#,
        r#"CMD ["/bin/sh", "-c", "echo cmd: running; exec sleep 1000"]"#,
    ]);
    let ct = Container::run(rt, &img, &["-e", "GREETING=hello"], &[]);
    ct.wait_logs(30 * SEC, "CMD started", |o, _| o.contains("cmd: running"));
    let (out, err) = ct.logs();
    in_order(&out, START);
    assert!(!out.contains("down"), "{out}{err}");
    // `/init` is rsv: the service tree is rsv's scan directory under /run.
    let st = ct.sh("rsvstat /run/service/app");
    assert!(st.starts_with("up (pid "), "{st}");
    let (took, code) = ct.stop(10);
    let (out, err) = ct.logs();
    // CMD (sleep) was killed by podman's SIGTERM: 128 + 15.
    assert_eq!(code, 143, "{out}{err}");
    assert!(took < 2 * SEC, "podman stop took {took:?}");
    in_order(&out, STOP);
    assert!(at(&out, "cmd: running") < at(&out, "legacy: down"), "{out}");
}

#[test]
fn s6_overlay_image_cmd_exit_code_is_the_containers() {
    let Some(rt) = podman() else { return };
    let root = overlay_root();
    let img = root.import(&[
        r#"ENTRYPOINT ["/init"]"#,
        r#"CMD ["/bin/sh", "-c", "echo cmd: running; exit 3"]"#,
    ]);
    let ct = Container::run(rt, &img, &["-e", "GREETING=hello"], &[]);
    assert_eq!(ct.wait(60 * SEC), 3);
    let (out, _) = ct.logs();
    in_order(&out, START);
    in_order(&out, STOP);
}
