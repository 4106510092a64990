//! Existing images whose init is swapped for rsv, built and run with podman: a Debian image
//! with runit and cron (runsvdir and sv replaced by rsv's links), and a supervisord image
//! converted with `rsv-import` in a build step.

mod common;
mod container;

use std::fs;
use std::time::Duration;

use container::*;

const SEC: Duration = Duration::from_secs(1);

/// `sv status NAME` in the container: the pid when it says `run: ...`.
fn sv_run_pid(ct: &Container, name: &str) -> Option<i32> {
    let (code, out, _) = ct.exec(&["sv", "status", name]);
    if code != 0 || !out.starts_with(&format!("run: {name}: (pid ")) {
        return None;
    }
    out.split("(pid ").nth(1)?.split(')').next()?.parse().ok()
}

#[test]
fn debian_runit_image_with_runsvdir_and_sv_replaced_by_rsv() {
    let Some(rt) = podman() else { return };
    let Some(tar) = debian_root_tar("runit,cron") else {
        return;
    };
    let base = import_tar(&tar, &[]);
    let ctx = context("debian");
    let c = ctx.path();
    fs::copy(common::bin("rsv"), c.join("rsv")).unwrap();
    // Debian-style service dirs in /etc/sv, enabled by a link in /etc/service, with
    // supervise/ kept under /run: cron as Debian lays it out today
    // (/run/runit/supervise/NAME), hello as older Debian releases did (supervise.NAME).
    common::script(
        &c.join("sv/cron/run"),
        "#!/bin/sh\nexec 2>&1\nexec /usr/sbin/cron -f\n",
    );
    common::script(
        &c.join("sv/hello/run"),
        "#!/bin/sh\necho hello: up\nexec sleep 1000\n",
    );
    common::script(
        &c.join("sv/hello/finish"),
        "#!/bin/sh\necho hello: finish $1 $2\n",
    );
    // A Debian-style logger: svlogd (rsv's link now) into /var/log/hello.
    common::script(
        &c.join("sv/hello/log/run"),
        "#!/bin/sh\nmkdir -p /var/log/hello\nexec svlogd -tt /var/log/hello\n",
    );
    // A job of the real cron daemon, every minute.
    write(
        &c.join("cron.d/rsv-test"),
        "* * * * * root date +\\%s >> /tmp/cron-ticks\n",
    );
    let img = base.build(
        rt,
        c,
        "FROM @BASE@\n\
         COPY rsv /usr/bin/rsv\n\
         RUN [\"/usr/bin/rsv\", \"install\", \"-f\", \"--runit\", \"/usr/bin\"]\n\
         COPY sv/ /etc/sv/\n\
         COPY cron.d/rsv-test /etc/cron.d/rsv-test\n\
         RUN ln -s /run/runit/supervise/cron /etc/sv/cron/supervise && \\\n\
             ln -s /run/runit/supervise.hello /etc/sv/hello/supervise && \\\n\
             ln -s /etc/sv/cron /etc/service/cron && ln -s /etc/sv/hello /etc/service/hello\n\
         ENTRYPOINT [\"/usr/bin/runsvdir\", \"-P\", \"/etc/service\"]\n",
    );
    let ct = Container::run(rt, &img, &[], &[]);
    // runit's own program names are rsv now.
    let links = ct.sh("readlink /usr/bin/runsvdir /usr/bin/sv /usr/bin/runsv");
    assert_eq!(links, "rsv\nrsv\nrsv\n");
    let cron = common::wait_for(30 * SEC, "sv status cron: run", || sv_run_pid(&ct, "cron"));
    assert_eq!(ct.sh(&format!("cat /proc/{cron}/comm")).trim(), "cron");
    let hello = common::wait_for(30 * SEC, "sv status hello: run", || {
        sv_run_pid(&ct, "hello")
    });
    assert!(hello > 0);
    // State in /run, through the symlinks, as runsv keeps it.
    ct.sh(
        "test -p /run/runit/supervise/cron/control && test -p /run/runit/supervise.hello/control",
    );
    // hello's line went through svlogd, stamped.
    let logged = ct.wait_sh(30 * SEC, "grep 'hello: up' /var/log/hello/current");
    assert!(
        logged.starts_with("20") && logged.ends_with(" hello: up\n"),
        "{logged}"
    );
    // The Debian service shipped by the runit package runs too.
    common::wait_for(30 * SEC, "default-syslog", || {
        sv_run_pid(&ct, "default-syslog")
    });

    // sv restart: a new cron, and hello's finish ran once.
    let (code, out, err) = ct.exec(&["sv", "restart", "cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: run: cron: (pid "), "{out}");
    let cron2 = common::wait_for(30 * SEC, "cron restarted", || {
        sv_run_pid(&ct, "cron").filter(|&p| p != cron)
    });
    assert_eq!(ct.sh(&format!("cat /proc/{cron2}/comm")).trim(), "cron");
    let (code, out, _) = ct.exec(&["sv", "restart", "hello"]);
    assert_eq!(code, 0, "{out}");

    // The real cron daemon, supervised by rsv, runs its job (at the next minute).
    ct.wait_sh(75 * SEC, "test -s /tmp/cron-ticks");

    let (took, code) = ct.stop(10);
    let (out, err) = ct.logs();
    assert_eq!(code, 0, "{out}{err}");
    assert!(took < 2 * SEC, "podman stop took {took:?}");
    // hello's output, finish's included, went to svlogd and not to the container's log:
    // finish ran once for the restart and once for the stop, and svlogd wrote its last line.
    assert!(!out.contains("hello: "), "{out}");
    let logged = ct.read_file("/var/log/hello/current");
    assert_eq!(logged.matches("hello: finish").count(), 2, "{logged}");
    // runit's arguments: -1 (killed by a signal) and the signal, SIGTERM.
    assert!(logged.ends_with(" hello: finish -1 15\n"), "{logged}");
}

#[test]
fn supervisord_image_converted_by_rsv_import_at_build_time() {
    let Some(rt) = podman() else { return };
    let root = Root::with_rsv("supervisord", &[]);
    root.file(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    );
    root.file("etc/group", "root:x:0:\nnogroup:x:65534:\n");
    let base = root.import(&[]);
    let ctx = context("supervisord");
    let c = ctx.path();
    write(
        &c.join("supervisord.conf"),
        "[supervisord]\nnodaemon=true\n\n\
         [program:web]\n\
         command=/bin/httpd -f -p 8080 -h /srv\n\
         user=nobody\n\
         autorestart=true\n\n\
         [program:worker]\n\
         command=/bin/sh -c \"echo worker: $GREETING as $(id -u); exec sleep 1000\"\n\
         environment=GREETING=\"from supervisord\"\n\
         stopsignal=INT\n\
         redirect_stderr=true\n\n\
         [program:applog]\n\
         command=/bin/sh -c \"echo to-the-file; exec sleep 1000\"\n\
         stdout_logfile=/var/log/applog.log\n\
         stdout_logfile_backups=3\n",
    );
    write(&c.join("index.html"), "served\n");
    // The recipe of docs/containers.md: the conversion is a build step.
    let img = base.build(
        rt,
        c,
        "FROM @BASE@\n\
         COPY supervisord.conf /etc/supervisor/supervisord.conf\n\
         COPY index.html /srv/index.html\n\
         RUN [\"rsv-import\", \"supervisord\", \"/etc/supervisor/supervisord.conf\", \"/etc/rsv\"]\n\
         ENTRYPOINT [\"rsvscan\", \"/etc/rsv\"]\n",
    );
    let ct = Container::run(rt, &img, &[], &[]);
    ct.wait_logs(30 * SEC, "worker's line", |o, _| {
        o.contains("worker: from supervisord as 0")
    });
    // web runs as nobody and serves.
    let page = ct.wait_sh(30 * SEC, "wget -q -O - http://127.0.0.1:8080/index.html");
    assert_eq!(page, "served\n");
    let web = ct
        .procs()
        .into_iter()
        .find(|p| p.cmd.starts_with("/bin/httpd"))
        .expect("httpd runs");
    assert_eq!(
        ct.sh(&format!("stat -c %u /proc/{}", web.pid)).trim(),
        "65534"
    );
    // The log file supervisord would have written, rotated by rsvlog.
    ct.wait_sh(30 * SEC, "grep -q to-the-file /var/log/applog/current");
    let st = ct.sh("rsvstat /etc/rsv");
    for n in ["web", "worker", "applog"] {
        assert!(
            st.lines().any(|l| l.starts_with(n) && l.contains(" up ")),
            "{st}"
        );
    }
    let (took, code) = ct.stop(10);
    assert_eq!(code, 0);
    assert!(took < 2 * SEC, "{took:?}");
}
