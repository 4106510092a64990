//! systemd's unit states (ActiveState/SubState) derived from what rsv knows of a service:
//! pure, from the status view, rsv-state and the service dir's shape.

use crate::extstate::ExtState;
use crate::status::Ended;

/// What the deciding function looks at.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The service dir exists in the scan dir.
    pub present: bool,
    /// It is an s6-rc oneshot (`type` oneshot).
    pub oneshot: bool,
    /// The oneshot's start script ran successfully (systemctl's marker).
    pub oneshot_done: bool,
    /// The status could be read.
    pub supervised: bool,
    pub up: bool,
    pub finishing: bool,
    pub want_up: bool,
    /// The service speaks sd_notify and has not said READY=1 yet.
    pub awaiting_ready: bool,
    pub ext: Option<ExtState>,
    pub last: Option<Ended>,
}

/// (ActiveState, SubState) as systemd names them.
pub fn active_state(f: &Facts) -> (&'static str, &'static str) {
    if !f.present {
        return ("inactive", "dead");
    }
    if f.oneshot {
        return if f.oneshot_done {
            ("active", "exited")
        } else {
            ("inactive", "dead")
        };
    }
    if !f.supervised {
        return ("inactive", "dead");
    }
    if f.up {
        if !f.want_up {
            return ("deactivating", "stop-sigterm");
        }
        if f.awaiting_ready {
            return ("activating", "start");
        }
        let reloading = f.ext.as_ref().is_some_and(|e| e.sd_phase == "reloading");
        return if reloading {
            ("reloading", "reload")
        } else {
            ("active", "running")
        };
    }
    if f.finishing {
        return ("deactivating", "stop-post");
    }
    let gave_up = f.ext.as_ref().is_some_and(|e| e.gave_up);
    if f.want_up && !gave_up {
        return ("activating", "auto-restart");
    }
    let failed = matches!(f.last, Some(Ended::Exited(c)) if c != 0)
        || matches!(f.last, Some(Ended::Signaled(s)) if ![libc::SIGHUP, libc::SIGINT, libc::SIGTERM, libc::SIGPIPE].contains(&s));
    if failed {
        return ("failed", "failed");
    }
    ("inactive", "dead")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            present: true,
            supervised: true,
            want_up: true,
            ..Facts::default()
        }
    }

    #[test]
    fn states() {
        assert_eq!(active_state(&Facts::default()), ("inactive", "dead"));
        let up = Facts {
            up: true,
            ..facts()
        };
        assert_eq!(active_state(&up), ("active", "running"));
        let starting = Facts {
            awaiting_ready: true,
            ..up.clone()
        };
        assert_eq!(active_state(&starting), ("activating", "start"));
        let restarting = facts();
        assert_eq!(active_state(&restarting), ("activating", "auto-restart"));
        let stopped = Facts {
            want_up: false,
            last: Some(Ended::Signaled(libc::SIGTERM)),
            ..facts()
        };
        assert_eq!(active_state(&stopped), ("inactive", "dead"));
        let crashed = Facts {
            want_up: false,
            last: Some(Ended::Exited(3)),
            ext: Some(ExtState {
                exits: vec![Ended::Exited(3)],
                ..ExtState::default()
            }),
            ..facts()
        };
        assert_eq!(active_state(&crashed), ("failed", "failed"));
        let once = Facts {
            oneshot: true,
            oneshot_done: true,
            ..facts()
        };
        assert_eq!(active_state(&once), ("active", "exited"));
    }
}
