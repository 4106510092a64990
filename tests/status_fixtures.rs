//! Status files captured from the real runsv and s6-supervise (tests/fixtures/capture.sh):
//! each decodes to the expected fields and re-encodes to the same bytes.

use rsv::status::{AnyStatus, Death, Ended, RunitState, RunitStatus, S6Status};
use rsv::svview::View;
use rsv::tai::Family;
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn runit(name: &str) -> RunitStatus {
    let b = fixture(&format!("runit-{name}.status"));
    assert_eq!(b.len(), 20, "{name}");
    let st = RunitStatus::decode(&b).unwrap();
    assert_eq!(st.encode().to_vec(), b, "{name} re-encodes");
    assert_eq!(AnyStatus::decode(&b), Some(AnyStatus::Runit(st)));
    // runit stamps: +10 family, nanoseconds = usec * 1000 + 500.
    assert_eq!(st.stamp.nanos % 1000, 500, "{name}");
    let (unix, _) = st.stamp.to_unix(Family::Runit);
    assert!(unix > 1_700_000_000, "{name}: plausible stamp");
    st
}

fn s6(name: &str) -> (S6Status, Vec<Death>) {
    let b = fixture(&format!("s6-{name}.status"));
    assert_eq!(b.len(), 35, "{name}");
    let st = S6Status::decode(&b).unwrap();
    assert_eq!(st.encode().to_vec(), b, "{name} re-encodes");
    assert_eq!(AnyStatus::decode(&b), Some(AnyStatus::S6(st)));
    let (unix, _) = st.stamp.to_unix(Family::S6);
    assert!(unix > 1_700_000_000, "{name}: plausible stamp");
    let dt = fixture(&format!("s6-{name}.death_tally"));
    let deaths = Death::decode_all(&dt);
    let re: Vec<u8> = deaths.iter().flat_map(|d| d.encode()).collect();
    assert_eq!(re, dt, "{name} death_tally re-encodes");
    (st, deaths)
}

#[test]
fn runit_up_and_paused() {
    let up = runit("up");
    assert!(up.pid != 0 && up.want_up && !up.paused && !up.got_term);
    assert_eq!(up.state, RunitState::Run);
    let p = runit("paused");
    assert!(p.paused && p.want_up);
    assert_eq!((p.pid, p.state), (up.pid, RunitState::Run));
    assert_eq!(p.stamp, up.stamp, "pausing does not touch the stamp");
    let v = View::from_status(AnyStatus::Runit(p));
    assert!(v.up && v.paused && !v.ready);
}

#[test]
fn runit_down_finishing_exit_killed() {
    for name in ["down", "exit3", "killed"] {
        let d = runit(name);
        assert_eq!(
            (d.pid, d.state, d.want_up),
            (0, RunitState::Down, false),
            "{name}"
        );
        assert!(!d.got_term && !d.paused, "{name}");
    }
    let f = runit("finishing");
    assert!(f.pid != 0 && !f.want_up);
    assert_eq!(f.state, RunitState::Finish);
    let v = View::from_status(AnyStatus::Runit(f));
    assert!(!v.up && v.finishing);
}

#[test]
fn s6_up_paused_ready() {
    let (up, d) = s6("up");
    assert!(up.pid != 0 && up.wantup && !up.ready && !up.paused && !up.finishing);
    assert!(d.is_empty());
    let (p, _) = s6("paused");
    assert!(p.paused && p.pid == up.pid && p.is_up());
    let (r, _) = s6("ready");
    assert!(r.ready && r.is_up() && r.wantup);
    assert!(r.readystamp >= r.stamp);
}

#[test]
fn s6_down_states() {
    let (d, deaths) = s6("down");
    assert!(!d.is_up() && d.ready && !d.wantup && d.pid == 0);
    assert_eq!(
        Ended::from_wstat(d.wstat as i32),
        Ended::Signaled(libc::SIGTERM)
    );
    assert_eq!(
        (deaths.len(), deaths[0].exit, deaths[0].sig),
        (1, 128 + 15, 15)
    );
    assert_eq!(deaths[0].stamp, d.stamp);

    let (e, deaths) = s6("exit3");
    assert_eq!(Ended::from_wstat(e.wstat as i32), Ended::Exited(3));
    assert!(!e.is_up() && e.ready && !e.wantup);
    assert_eq!((deaths[0].exit, deaths[0].sig), (3, 0));

    let (k, deaths) = s6("killed");
    assert_eq!(
        Ended::from_wstat(k.wstat as i32),
        Ended::Signaled(libc::SIGKILL)
    );
    assert_eq!((deaths[0].exit, deaths[0].sig), (128 + 9, 9));

    let (f, _) = s6("finishing");
    assert!(f.finishing && f.pid != 0 && !f.is_up() && !f.ready);
    assert_eq!(
        Ended::from_wstat(f.wstat as i32),
        Ended::Signaled(libc::SIGTERM)
    );
    let v = View::from_status(AnyStatus::S6(f));
    assert_eq!(v.as_runit().1, 2, "finishing maps to runit's finish state");
}
