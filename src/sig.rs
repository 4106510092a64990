//! Signal names as skalibs prints and parses them (`SIGTERM`, `TERM`, `sigterm`, `15`).

/// (number, name without the `SIG` prefix), in the order the table is searched.
const TABLE: &[(i32, &str)] = &[
    (libc::SIGABRT, "ABRT"),
    (libc::SIGALRM, "ALRM"),
    (libc::SIGBUS, "BUS"),
    (libc::SIGCHLD, "CHLD"),
    (libc::SIGCONT, "CONT"),
    (libc::SIGFPE, "FPE"),
    (libc::SIGHUP, "HUP"),
    (libc::SIGILL, "ILL"),
    (libc::SIGINT, "INT"),
    (libc::SIGKILL, "KILL"),
    (libc::SIGPIPE, "PIPE"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGSEGV, "SEGV"),
    (libc::SIGSTOP, "STOP"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGTSTP, "TSTP"),
    (libc::SIGTTIN, "TTIN"),
    (libc::SIGTTOU, "TTOU"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGPOLL, "POLL"),
    (libc::SIGPROF, "PROF"),
    (libc::SIGSYS, "SYS"),
    (libc::SIGTRAP, "TRAP"),
    (libc::SIGURG, "URG"),
    (libc::SIGVTALRM, "VTALRM"),
    (libc::SIGXCPU, "XCPU"),
    (libc::SIGXFSZ, "XFSZ"),
    (libc::SIGSTKFLT, "STKFLT"),
    (libc::SIGWINCH, "WINCH"),
    (libc::SIGPWR, "PWR"),
];

/// The name without `SIG` (`TERM`), or `None` for a number not in the table.
pub fn short_name(num: i32) -> Option<&'static str> {
    TABLE.iter().find(|(n, _)| *n == num).map(|(_, s)| *s)
}

/// `SIGTERM`, or `SIG???` for an unknown number (s6-svstat's rendering).
pub fn long_name(num: i32) -> String {
    match short_name(num) {
        Some(s) => format!("SIG{s}"),
        None => "SIG???".to_string(),
    }
}

/// Parses a signal as s6 accepts it: a decimal number, or a name in any case with or
/// without the `SIG` prefix. Returns `None` when it is none of these.
pub fn parse(s: &str) -> Option<i32> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i32 = s.parse().ok()?;
        return (1..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let bare = up.strip_prefix("SIG").unwrap_or(&up);
    if bare == "IO" {
        return Some(libc::SIGIO);
    }
    TABLE
        .iter()
        .find(|(_, name)| *name == bare)
        .map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("TERM"), Some(15));
        assert_eq!(parse("sigterm"), Some(15));
        assert_eq!(parse("SIGHUP"), Some(1));
        assert_eq!(parse("9"), Some(9));
        assert_eq!(parse("SIGNOPE"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("0"), None);
        assert_eq!(long_name(29), "SIGPOLL");
        assert_eq!(long_name(15), "SIGTERM");
        assert_eq!(long_name(200), "SIG???");
    }

    #[test]
    fn every_name_parses_back_to_its_number() {
        for (n, name) in TABLE {
            assert_eq!(parse(name), Some(*n));
            assert_eq!(parse(&format!("sig{}", name.to_lowercase())), Some(*n));
        }
    }
}
