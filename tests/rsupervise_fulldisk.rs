//! The disk holding `supervise/` is full (a 64 KiB tmpfs in a private mount namespace, filled
//! up): the service keeps running, stays controllable (down, up, down), the status stays
//! right, and rsupervise says which writes failed. When space returns, the next change is
//! recorded in full again (rsv-state included).

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::{TempDir, bin, run, script};

#[test]
fn full_disk_under_supervise() {
    let ok = Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: unshare --mount is not permitted here");
        return;
    }
    let t = TempDir::new("fulldisk");
    let sd = t.path().join("svc");
    script(&sd.join("run"), "#!/bin/sh\nexec sleep 1000\n");
    let mnt = t.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    std::os::unix::fs::symlink(&mnt, sd.join("supervise")).unwrap();
    // Every wait in the script is bounded (rsvc -T, loops of at most 100 x 50 ms).
    let body = format!(
        r#"set -e
cd {dir}
mount -t tmpfs -o size=64k tmpfs {mnt}
{sup} svc </dev/null >/dev/null 2>err &
sup=$!
# On any failure: SIGTERM stops the service, then the supervisor exits.
trap 'kill -TERM $sup 2>/dev/null' EXIT
i=0; while [ ! -e svc/supervise/status ]; do i=$((i+1)); [ $i -lt 100 ]; sleep 0.05; done
{rsvc} -T 5000 -wu svc
dd if=/dev/zero of={mnt}/filler bs=4k 2>/dev/null || true
echo full: $(df -k {mnt} | tail -1)
{rsvc} -T 5000 -wd -d svc
echo down ok
{rsvc} -T 5000 -wu -u svc
echo up ok
rm {mnt}/filler
{rsvc} -T 5000 -wd -d svc
echo down again ok
# (the down event may come before rsv-state is rewritten: poll, bounded)
i=0; until grep -q "^exits signal:15 signal:15" svc/supervise/rsv-state; do i=$((i+1)); [ $i -lt 100 ]; sleep 0.05; done
echo rsv-state ok
kill -TERM $sup
i=0; while kill -0 $sup 2>/dev/null; do i=$((i+1)); [ $i -lt 100 ]; sleep 0.05; done
trap - EXIT
umount {mnt}
"#,
        dir = t.path().display(),
        mnt = mnt.display(),
        sup = bin("rsupervise").display(),
        rsvc = bin("rsvc").display(),
    );
    script(&t.path().join("t.sh"), &format!("#!/bin/sh\n{body}"));
    let (code, out, err) = run(
        Command::new("unshare")
            .args(["--mount", "sh"])
            .arg(t.path().join("t.sh")),
        Duration::from_secs(60),
    );
    let warnings = fs::read_to_string(t.path().join("err")).unwrap_or_default();
    eprintln!("{out}{err}{warnings}");
    assert_eq!(code, 0, "script failed:\n{out}\n{err}\n{warnings}");
    assert!(out.contains("rsv-state ok"), "{out}");
    assert!(
        warnings.contains("No space left on device"),
        "the failed writes were not reported: {warnings}"
    );
    assert!(!warnings.contains("panicked"), "{warnings}");
}
