//! `rsvlog`: a logger that reads lines on stdin and writes them to log directories, with
//! svlogd's interface or s6-log's scripts.
//!
//! Which interface applies:
//! - started as `svlogd` → svlogd; started as `s6-log` → s6-log;
//! - otherwise options decide first: `-t`, `-r`, `-R` or `-b N` (with a number) mean svlogd;
//!   `-p`, `-d`, `-q` or `-b` without a number mean s6-log;
//! - otherwise the arguments decide: when every argument is valid in an s6-log script
//!   (log directories start with `/` or `.`), at least one is a directive that is not a
//!   directory (`t`, `n20`, `1`, `+regex`, ...) and at least one is an action (`1`, `2`,
//!   `=file`, `/dir`, `./dir`), it is an s6-log script; else the arguments are svlogd
//!   directories. So `rsvlog ./main` and `rsvlog pdir` are svlogd, `rsvlog n5 ./main` is s6-log.

pub mod glob;
pub mod input;
pub mod intent;
pub mod logdir;
pub mod peek;
pub mod regex;
pub mod s6log;
pub mod stamp;
pub mod svlogd;

/// The two interfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Personality {
    Svlogd,
    S6Log,
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Chooses the interface for `args` (without argv[0]) when started as `rsvlog`.
pub fn detect(args: &[String]) -> Personality {
    let mut i = 0;
    let mut strong: Option<Personality> = None;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if a.len() < 2 || !a.starts_with('-') {
            break;
        }
        let b = a.as_bytes();
        let mut j = 1;
        while j < b.len() {
            let c = b[j];
            j += 1;
            let rest = &a[j..];
            match c {
                b't' => strong = strong.or(Some(Personality::Svlogd)),
                b'p' | b'q' => strong = strong.or(Some(Personality::S6Log)),
                b'r' | b'R' | b'l' | b'd' => {
                    match c {
                        b'r' | b'R' => strong = strong.or(Some(Personality::Svlogd)),
                        b'd' => strong = strong.or(Some(Personality::S6Log)),
                        _ => {}
                    }
                    if rest.is_empty() {
                        i += 1;
                    }
                    break;
                }
                b'b' => {
                    if digits(rest) {
                        strong = strong.or(Some(Personality::Svlogd));
                        break;
                    }
                    if rest.is_empty() && args.get(i + 1).is_some_and(|n| digits(n)) {
                        strong = strong.or(Some(Personality::Svlogd));
                        i += 1;
                        break;
                    }
                    strong = strong.or(Some(Personality::S6Log));
                }
                _ => {}
            }
        }
        i += 1;
    }
    if let Some(p) = strong {
        return p;
    }
    let pos = &args[i.min(args.len())..];
    if !pos.is_empty()
        && pos.iter().all(|a| s6log::is_script_word(a))
        && pos.iter().any(|a| s6log::is_directive(a))
        && pos.iter().any(|a| s6log::is_action(a))
    {
        Personality::S6Log
    } else {
        Personality::Svlogd
    }
}

/// Runs the logger; `argv0` is the name it was started as. Returns the exit code.
pub fn main(argv0: &str, args: &[String]) -> i32 {
    let pers = match argv0 {
        "svlogd" => Personality::Svlogd,
        "s6-log" => Personality::S6Log,
        _ => detect(args),
    };
    match pers {
        Personality::Svlogd => svlogd::main(argv0, args),
        Personality::S6Log => s6log::main(argv0, args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(a: &[&str]) -> Personality {
        detect(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn detection() {
        assert_eq!(d(&["./main"]), Personality::Svlogd);
        assert_eq!(d(&["main", "other"]), Personality::Svlogd);
        assert_eq!(d(&["-tt", "./main"]), Personality::Svlogd);
        assert_eq!(
            d(&["-b", "4096", "-l", "100", "./main"]),
            Personality::Svlogd
        );
        assert_eq!(d(&["n5", "./main"]), Personality::S6Log);
        assert_eq!(d(&["t", "1"]), Personality::S6Log);
        assert_eq!(d(&["-b", "t", "./x"]), Personality::S6Log);
        assert_eq!(d(&["-p", "./x"]), Personality::S6Log);
        assert_eq!(d(&["-l", "100", "T", "/var/log/x"]), Personality::S6Log);
        assert_eq!(d(&["t", "main"]), Personality::Svlogd);
        assert_eq!(d(&["pz2"]), Personality::Svlogd);
        assert_eq!(d(&["pz2", "t"]), Personality::Svlogd);
        assert_eq!(d(&["-v", "s100", "/x"]), Personality::S6Log);
    }
}
