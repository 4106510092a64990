//! rsvc: control client with an s6-svc and a runit sv personality (see `rsv::control`).

pub(crate) fn main() {
    let name = rsv::diag::invoked_as("rsvc");
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(rsv::control::main(&name, args));
}
