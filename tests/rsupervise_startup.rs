//! What rsupervise creates when it starts a service: each file is an inode to allocate, the
//! dearest part of start-up on a busy ext4 disk (docs/benchmarks.md, issue 17). s6 mode: the
//! layout of s6-supervise plus `rsv-state`, written once per start of `run` (no spare yet):
//! 8 inodes with `supervise/` and `event/`.

mod common;
mod supervisor;

use std::collections::BTreeSet;
use std::fs;

use common::{TempDir, wait_for};
use supervisor::*;

#[test]
fn start_creates_the_s6_layout_and_one_rsv_state() {
    let t = TempDir::new("startfiles");
    let sd = t.path().join("a");
    sleeper(&sd);
    let sup = Sup::start("s6", t.path(), "a");
    wait_up(&sd, None);
    // rsv-state is complete once it names run's process group (written with the start of run).
    wait_for(T, "rsv-state with pgid", || {
        fs::read_to_string(sd.join("supervise/rsv-state"))
            .ok()
            .filter(|s| s.contains("\npgid "))
            .map(|_| ())
    });
    let names: BTreeSet<String> = fs::read_dir(sd.join("supervise"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // status is written twice (down, then up), so its spare exists already: a later stop
    // creates no file (rsupervise_s6::shutdown_creates_no_file_in_supervise).
    let want: BTreeSet<String> = [
        "control",
        "death_tally",
        "lock",
        "rsv-state",
        "status",
        "status.new",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(names, want, "{}", sup.err());
    assert!(sd.join("event").is_dir());
    assert_eq!(sup.stop(), 0);
}
