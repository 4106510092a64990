//! The `S6_*` variables that tune s6-overlay v3, read as s6-overlay reads them: a numeric
//! setting counts only when it is all digits (anything else leaves the default), a flag is on
//! when its number is not 0. Pure: [`Config::from_lookup`] takes the variables from a function.

/// What the container does when something of stage 2 fails (`S6_BEHAVIOUR_IF_STAGE2_FAILS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage2Failure {
    /// 0: go on silently.
    Continue,
    /// 1: go on with a warning.
    Warn,
    /// 2 or more: stop the container.
    Stop,
}

/// The settings of one container start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `S6_KEEP_ENV`: services keep the whole environment (`with-contenv` does nothing).
    pub keep_env: bool,
    /// `S6_LOGGING`: 0 (everything to stdout/stderr), 1 or 2 (a catch-all logger).
    pub logging: u64,
    /// `S6_BEHAVIOUR_IF_STAGE2_FAILS`.
    pub on_failure: Stage2Failure,
    /// `S6_CMD_WAIT_FOR_SERVICES`.
    pub wait_for_services: bool,
    /// `S6_CMD_WAIT_FOR_SERVICES_MAXTIME` in ms, 0 = no limit.
    pub wait_maxtime_ms: u64,
    /// `S6_KILL_GRACETIME` in ms: TERM to KILL for what is left at the very end.
    pub kill_gracetime_ms: u64,
    /// `S6_SERVICES_GRACETIME` in ms: how long services get to stop.
    pub services_gracetime_ms: u64,
    /// `S6_KILL_FINISH_MAXTIME` in ms: the bound of each `/etc/cont-finish.d` script, 0 = none.
    pub kill_finish_maxtime_ms: u64,
    /// `S6_VERBOSITY`: 0 errors, 1 warnings, 2 (default) information.
    pub verbosity: u64,
    /// `S6_READ_ONLY_ROOT`.
    pub read_only_root: bool,
    /// `S6_CMD_ARG0`, split into words as a shell splits an unquoted variable.
    pub cmd_arg0: Vec<String>,
    /// `S6_CMD_RECEIVE_SIGNALS`: signals to PID 1 go to CMD while it runs.
    pub cmd_receive_signals: bool,
    /// `S6_STAGE2_HOOK`: a shell excerpt run before the services are read.
    pub stage2_hook: Option<String>,
    /// `S6_RUNTIME_PROFILE`: use `/etc/cont-profile.d/PROFILE` instead of `/etc`.
    pub runtime_profile: Option<String>,
    /// `S6_RUNTIME_BUNDLEDIR`: where the `user` and `user2` bundles are defined.
    pub runtime_bundledir: Option<String>,
    /// `S6_SYNC_DISKS`: sync(2) before exiting.
    pub sync_disks: bool,
    /// `S6_WAIT_FOR_CLOSING_FD`: a descriptor (3 or more) to read until end of file first.
    pub wait_for_closing_fd: Option<i32>,
}

/// The value of a numeric setting: all digits, else `None` (the default applies).
pub fn number(v: Option<&str>) -> Option<u64> {
    let v = v?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits too many for u64 are "very large".
    Some(v.parse().unwrap_or(u64::MAX))
}

/// A flag: on when its value is a number other than 0.
pub fn flag(v: Option<&str>) -> bool {
    number(v).is_some_and(|n| n != 0)
}

impl Config {
    /// Reads the settings through `get` (normally the process environment).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
        let num = |k: &str, d: u64| number(get(k).as_deref()).unwrap_or(d);
        let fl = |k: &str| flag(get(k).as_deref());
        let nonempty = |k: &str| get(k).filter(|v| !v.is_empty());
        let on_failure = match num("S6_BEHAVIOUR_IF_STAGE2_FAILS", 0) {
            0 => Stage2Failure::Continue,
            1 => Stage2Failure::Warn,
            _ => Stage2Failure::Stop,
        };
        Config {
            keep_env: fl("S6_KEEP_ENV"),
            logging: num("S6_LOGGING", 0),
            on_failure,
            wait_for_services: fl("S6_CMD_WAIT_FOR_SERVICES"),
            wait_maxtime_ms: num("S6_CMD_WAIT_FOR_SERVICES_MAXTIME", 0),
            kill_gracetime_ms: num("S6_KILL_GRACETIME", 3000),
            services_gracetime_ms: num("S6_SERVICES_GRACETIME", 3000),
            kill_finish_maxtime_ms: num("S6_KILL_FINISH_MAXTIME", 5000),
            verbosity: num("S6_VERBOSITY", 2),
            read_only_root: fl("S6_READ_ONLY_ROOT"),
            cmd_arg0: get("S6_CMD_ARG0")
                .map(|v| v.split_ascii_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
            cmd_receive_signals: fl("S6_CMD_RECEIVE_SIGNALS"),
            stage2_hook: nonempty("S6_STAGE2_HOOK"),
            runtime_profile: nonempty("S6_RUNTIME_PROFILE"),
            runtime_bundledir: nonempty("S6_RUNTIME_BUNDLEDIR"),
            sync_disks: fl("S6_SYNC_DISKS"),
            wait_for_closing_fd: number(get("S6_WAIT_FOR_CLOSING_FD").as_deref())
                .filter(|&n| (3..=i32::MAX as u64).contains(&n))
                .map(|n| n as i32),
        }
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Config {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// The global bound of the stop (rsvscan's `-T`): the services' grace time, each
    /// `cont-finish.d` script's bound, then the final TERM-to-KILL grace time. The stop ends
    /// as soon as everything is down: nobody waits out a grace time for nothing.
    pub fn stop_bound_ms(&self, finish_scripts: usize) -> u64 {
        self.services_gracetime_ms
            .saturating_add(
                self.kill_finish_maxtime_ms
                    .saturating_mul(finish_scripts as u64),
            )
            .saturating_add(self.kill_gracetime_ms)
            .max(1)
    }

    /// Whether messages at this level are printed (0 error, 1 warning, 2 information).
    pub fn shows(&self, level: u64) -> bool {
        self.verbosity >= level
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_are_s6_overlays() {
        let c = cfg(&[]);
        assert!(!c.keep_env);
        assert_eq!(c.logging, 0);
        assert_eq!(c.on_failure, Stage2Failure::Continue);
        assert_eq!(c.wait_maxtime_ms, 0);
        assert_eq!(c.kill_gracetime_ms, 3000);
        assert_eq!(c.services_gracetime_ms, 3000);
        assert_eq!(c.kill_finish_maxtime_ms, 5000);
        assert_eq!(c.verbosity, 2);
        assert!(c.cmd_arg0.is_empty());
        assert!(!c.cmd_receive_signals);
        assert_eq!(c.stage2_hook, None);
        assert_eq!(c.wait_for_closing_fd, None);
    }

    #[test]
    fn numbers_must_be_digits() {
        assert_eq!(number(Some("12")), Some(12));
        assert_eq!(number(Some("")), None);
        assert_eq!(number(Some("-1")), None);
        assert_eq!(number(Some("1s")), None);
        assert_eq!(number(Some("99999999999999999999999")), Some(u64::MAX));
        assert!(flag(Some("1")) && flag(Some("007")));
        assert!(!flag(Some("0")) && !flag(Some("yes")) && !flag(None));
        let c = cfg(&[("S6_KILL_GRACETIME", "abc"), ("S6_VERBOSITY", "0")]);
        assert_eq!(c.kill_gracetime_ms, 3000);
        assert_eq!(c.verbosity, 0);
        assert!(!c.shows(1) && c.shows(0));
    }

    #[test]
    fn behaviour_and_words() {
        assert_eq!(
            cfg(&[("S6_BEHAVIOUR_IF_STAGE2_FAILS", "1")]).on_failure,
            Stage2Failure::Warn
        );
        assert_eq!(
            cfg(&[("S6_BEHAVIOUR_IF_STAGE2_FAILS", "7")]).on_failure,
            Stage2Failure::Stop
        );
        let c = cfg(&[
            ("S6_CMD_ARG0", " /bin/tini  -- "),
            ("S6_KEEP_ENV", "1"),
            ("S6_STAGE2_HOOK", ""),
            ("S6_WAIT_FOR_CLOSING_FD", "2"),
        ]);
        assert_eq!(c.cmd_arg0, vec!["/bin/tini", "--"]);
        assert!(c.keep_env);
        assert_eq!(c.stage2_hook, None);
        assert_eq!(c.wait_for_closing_fd, None);
        assert_eq!(
            cfg(&[("S6_WAIT_FOR_CLOSING_FD", "4")]).wait_for_closing_fd,
            Some(4)
        );
    }

    #[test]
    fn stop_bound_adds_up() {
        let c = cfg(&[
            ("S6_SERVICES_GRACETIME", "100"),
            ("S6_KILL_FINISH_MAXTIME", "10"),
            ("S6_KILL_GRACETIME", "1"),
        ]);
        assert_eq!(c.stop_bound_ms(3), 131);
        let z = cfg(&[
            ("S6_SERVICES_GRACETIME", "0"),
            ("S6_KILL_FINISH_MAXTIME", "0"),
            ("S6_KILL_GRACETIME", "0"),
        ]);
        assert_eq!(z.stop_bound_ms(0), 1);
    }
}
