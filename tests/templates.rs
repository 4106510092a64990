//! Templated services: `NAME@/` in a scan dir, `rsvc -u NAME@INST` creates the instance (the
//! scanner picks it up), `rsvc -x NAME@INST` removes it; a systemd `foo@.service` imported as
//! a template works the same way. rsvscan runs as PID 1 of a pid namespace.

mod common;
#[path = "common/scan.rs"]
mod scan;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use scan::*;

const LIMIT: Duration = Duration::from_secs(20);

fn rsvc(args: &[&str], sd: &Path) -> (i32, String, String) {
    run(Command::new(bin("rsvc")).args(args).arg(sd), LIMIT)
}

fn start(scan_dir: &Path, err: &Path) -> Ns {
    start_ns_with_bins(scan_dir, err, false)
}

fn line(p: &Path) -> String {
    whole_line(p, LIMIT)
}

#[test]
fn instances_are_created_and_removed_by_rsvc() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("tpl");
    let scan_dir = t.path().join("scan");
    let out = t.path().join("out");
    fs::create_dir_all(&out).unwrap();
    script(
        &scan_dir.join("w@/run"),
        &format!(
            "#!/bin/sh\necho \"$1 $RSV_INSTANCE\" > {}/$1.tmp && mv {0}/$1.tmp {0}/$1\nexec sleep 1000\n",
            out.display()
        ),
    );
    script(&scan_dir.join("plain/run"), "#!/bin/sh\nexec sleep 1000\n");
    let mut ns = start(&scan_dir, &t.path().join("err"));
    let sd = scan_dir.join("w@4");
    let (c, _, e) = rsvc(&["-wu", "-T", "10000", "-u"], &sd);
    assert_eq!(c, 0, "{e}");
    assert_eq!(line(&out.join("4")), "4 4\n");
    let pid = ns.host_pid(status_pid(&sd)).unwrap();
    assert!(alive(pid));
    // A second instance, and the first is untouched by it.
    let (c, _, e) = rsvc(&["-wu", "-T", "10000", "-u"], &scan_dir.join("w@web-2"));
    assert_eq!(c, 0, "{e}");
    assert_eq!(line(&out.join("web-2")), "web-2 web-2\n");
    // -x stops the instance and removes its directory.
    let (c, _, e) = rsvc(&["-x"], &sd);
    assert_eq!(c, 0, "{e}");
    assert!(!sd.exists());
    wait_for(LIMIT, "the instance's process gone", || {
        (!alive(pid)).then_some(())
    });
    let left: Vec<String> = fs::read_dir(&scan_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!left.iter().any(|n| n.starts_with(".w@4")), "{left:?}");
    // A name without a template is not created.
    let (c, _, _) = rsvc(&["-u"], &scan_dir.join("none@1"));
    assert_ne!(c, 0);
    assert!(!scan_dir.join("none@1").exists());
    assert_eq!(ns.stop(), Some(0));
    assert!(ns.procs().is_empty());
}

#[test]
fn systemd_template_units_run_as_instances() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("tplsd");
    let units = t.path().join("units");
    let out = t.path().join("out");
    fs::create_dir_all(&units).unwrap();
    fs::create_dir_all(&out).unwrap();
    fs::write(
        units.join("greet@.service"),
        format!(
            "[Unit]\nDescription=Greeter %i\n[Service]\nEnvironment=WHO=%i\nExecStart=/bin/sh -c 'echo \"%n $WHO\" > {}/%i; exec sleep 1000'\nRestart=always\n",
            out.display()
        ),
    )
    .unwrap();
    let scan_dir = t.path().join("scan");
    let (c, _, err) = run(
        Command::new(PathBuf::from(env!("CARGO_BIN_EXE_rsv-import")))
            .arg("systemd")
            .arg(units.join("greet@.service"))
            .arg(&scan_dir),
        LIMIT,
    );
    assert_eq!(c, 0, "{err}");
    assert!(scan_dir.join("greet@/run").exists());
    let mut ns = start(&scan_dir, &t.path().join("err"));
    let (c, _, e) = rsvc(&["-wu", "-T", "10000", "-u"], &scan_dir.join("greet@world"));
    assert_eq!(c, 0, "{e}");
    assert_eq!(line(&out.join("world")), "greet@world.service world\n");
    let (c, _, e) = rsvc(&["-x"], &scan_dir.join("greet@world"));
    assert_eq!(c, 0, "{e}");
    assert!(!scan_dir.join("greet@world").exists());
    assert_eq!(ns.stop(), Some(0));
}

/// The scanner must not supervise a template itself. Needs src/scan.rs to skip names
/// ending in `@` (as it skips names starting with `.`).
#[test]
fn the_scanner_leaves_templates_alone() {
    if !unshare_ok() {
        return;
    }
    let t = TempDir::new("tplskip");
    let scan_dir = t.path().join("scan");
    script(&scan_dir.join("w@/run"), "#!/bin/sh\nexec sleep 1000\n");
    script(&scan_dir.join("plain/run"), "#!/bin/sh\nexec sleep 1000\n");
    let mut ns = start(&scan_dir, &t.path().join("err"));
    // Both are found by the same scan: once plain is up, w@ would have been started too.
    wait_up(&scan_dir.join("plain"), LIMIT);
    assert!(!scan_dir.join("w@/supervise").exists());
    assert_eq!(ns.stop(), Some(0));
}
