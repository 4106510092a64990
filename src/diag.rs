//! Messages and exit codes shared by every program (s6's convention).

use std::io::Write;

/// Bad usage: wrong options or arguments.
pub const EXIT_USAGE: i32 = 100;
/// System failure: a system call failed, a file is missing or unreadable, a lock is held.
pub const EXIT_SYS: i32 = 111;

/// Prints `PROG: warning: MSG` on stderr.
pub fn warn(prog: &str, msg: &str) {
    let _ = writeln!(std::io::stderr(), "{prog}: warning: {msg}");
}

/// Prints `PROG: fatal: MSG` on stderr and exits with `code`.
pub fn fatal(prog: &str, code: i32, msg: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "{prog}: fatal: {msg}");
    std::process::exit(code)
}

/// Prints `PROG: usage: USAGE` on stderr and exits 100.
pub fn usage(prog: &str, usage: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "{prog}: usage: {usage}");
    std::process::exit(EXIT_USAGE)
}

/// The base name of argv[0] (what the program was started as), or `default`.
pub fn invoked_as(default: &str) -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| default.to_string())
}

/// The arguments after argv[0] as strings. An argument that is not valid UTF-8 is a usage
/// error: `PROG: fatal: argument is not valid UTF-8: ARG` (shown lossily), exit 100.
pub fn args_utf8(prog: &str) -> Vec<String> {
    std::env::args_os()
        .skip(1)
        .map(|a| {
            a.into_string().unwrap_or_else(|a| {
                fatal(
                    prog,
                    EXIT_USAGE,
                    &format!("argument is not valid UTF-8: {}", a.to_string_lossy()),
                )
            })
        })
        .collect()
}
