//! Wall-clock jumps (an hour back, an hour forward) while a service crash-loops, through the
//! state machine's injected clock (a test never changes the machine's clock): restart
//! spacing, the backoff and kill timeouts follow the monotonic clock only; status stamps and
//! the announced next start follow the wall clock of the moment, so they stay sane.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rsv::machine::{Action, Event, Files, Machine, Mode, Now};

const HOUR_MS: i64 = 3_600_000;

struct F {
    tk: u64,
}
impl Files for F {
    fn backoff_max(&mut self) -> u64 {
        8000
    }
    fn timeout_kill(&mut self) -> u64 {
        self.tk
    }
    fn timeout_finish(&mut self) -> u64 {
        0
    }
    fn down_signal(&mut self) -> i32 {
        libc::SIGTERM
    }
}

/// Monotonic `ms`, with the wall clock off by `skew_ms`.
fn at(ms: u64, skew_ms: i64) -> Now {
    let base = UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(ms);
    Now {
        mono_ms: ms,
        wall: if skew_ms >= 0 {
            base + Duration::from_millis(skew_ms as u64)
        } else {
            base - Duration::from_millis((-skew_ms) as u64)
        },
    }
}

/// Runs 6 immediate deaths; the wall clock skew at each step comes from `skew(k)`.
/// Returns the monotonic start times and the announced next starts (wall) with their `now`.
fn crash_loop(mode: Mode, skew: impl Fn(usize) -> i64) -> (Vec<u64>, Vec<(SystemTime, Now)>) {
    let f = &mut F { tk: 0 };
    let mut m = Machine::new(mode, false, false, at(0, skew(0)));
    m.step(Event::Start, at(0, skew(0)), f);
    let mut t = 0;
    let mut starts = vec![];
    let mut announced = vec![];
    for k in 0..6 {
        starts.push(t);
        let s = skew(k);
        m.step(Event::RunStarted(100 + k as i32), at(t, s), f);
        m.step(Event::RunDied(0x100), at(t + 10, s), f);
        let now = at(t + 10, s);
        m.step(Event::NoFinish, now, f);
        let next = m.next_deadline().expect("a restart is pending");
        announced.push((m.pending_start().unwrap().0, now));
        // Nothing before the deadline, whatever the wall clock says meanwhile.
        let early = m.step(Event::Timer, at(next - 1, skew(k + 1)), f);
        assert!(early.is_empty(), "{mode:?}: started early: {early:?}");
        let acts = m.step(Event::Timer, at(next, skew(k + 1)), f);
        assert!(
            acts.iter().any(|a| matches!(a, Action::SpawnRun)),
            "{mode:?}: {acts:?}"
        );
        t = next;
    }
    (starts, announced)
}

#[test]
fn restart_spacing_ignores_wall_clock_jumps() {
    for mode in [Mode::S6, Mode::Runit] {
        let (steady, _) = crash_loop(mode, |_| 0);
        // An hour back at one death, an hour forward at the next, back again...
        let (jumpy, announced) = crash_loop(mode, |k| match k % 3 {
            0 => 0,
            1 => -HOUR_MS,
            _ => HOUR_MS,
        });
        assert_eq!(
            steady, jumpy,
            "{mode:?}: spacing changed with the wall clock"
        );
        let gaps: Vec<u64> = jumpy.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps, [1010, 2000, 4000, 8000, 8000], "{mode:?}");
        // The announced next start is "now (wall) + the remaining delay": never an hour off.
        for (wall, now) in announced {
            let ahead = wall
                .duration_since(now.wall)
                .expect("next start in the future");
            assert!(ahead <= Duration::from_secs(8), "{mode:?}: {ahead:?}");
        }
    }
}

#[test]
fn kill_timeout_ignores_wall_clock_jumps() {
    let f = &mut F { tk: 3000 };
    let mut m = Machine::new(Mode::S6, false, false, at(0, 0));
    m.step(Event::Start, at(0, 0), f);
    m.step(Event::RunStarted(100), at(0, 0), f);
    m.step(Event::Control(b'd'), at(1000, 0), f);
    assert_eq!(m.next_deadline(), Some(4000));
    // The wall clock jumps an hour forward: no SIGKILL before 3 s of monotonic time.
    let acts = m.step(Event::Timer, at(3999, HOUR_MS), f);
    assert!(acts.is_empty(), "{acts:?}");
    let acts = m.step(Event::Timer, at(4000, -HOUR_MS), f);
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Kill { sig, .. } if *sig == libc::SIGKILL)),
        "{acts:?}"
    );
}

#[test]
fn status_stamps_follow_the_wall_clock_of_the_event() {
    let f = &mut F { tk: 0 };
    let mut m = Machine::new(Mode::S6, false, false, at(0, 0));
    m.step(Event::Start, at(0, 0), f);
    // Started, then the clock goes back an hour: the start stamp is the start's wall time,
    // the death stamp the death's: clients show "up N s" from the stamp they read.
    m.step(Event::RunStarted(100), at(0, 0), f);
    let up = m.s6_status();
    m.step(Event::RunDied(0x100), at(500, -HOUR_MS), f);
    m.step(Event::NoFinish, at(500, -HOUR_MS), f);
    let down = m.s6_status();
    assert_eq!(
        up.stamp,
        rsv::tai::Tai64N::from_system(at(0, 0).wall, rsv::tai::Family::S6)
    );
    assert_eq!(
        down.stamp,
        rsv::tai::Tai64N::from_system(at(500, -HOUR_MS).wall, rsv::tai::Family::S6)
    );
}
