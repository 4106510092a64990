//! rsvexec: runs a program with a changed process state; chpst when invoked as `chpst`
//! (see `rsv::exec` and `man rsvexec`).

pub(crate) fn main() {
    let name = rsv::diag::invoked_as("rsvexec");
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(rsv::exec::main(&name, args));
}
