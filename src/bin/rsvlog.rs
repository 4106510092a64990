//! rsvlog: svlogd- and s6-log-compatible logger (see `man rsvlog`).

pub(crate) fn main() {
    let argv0 = rsv::diag::invoked_as("rsvlog");
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(rsv::logger::main(&argv0, &args));
}
