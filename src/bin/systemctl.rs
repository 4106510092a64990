//! systemctl: systemctl's commands for containers, on rsv (see `rsv::systemctl` and
//! `man systemctl.8`). Started as `systemd-notify` (a link to the multi-call binary), it sends
//! sd_notify messages instead.

pub(crate) fn main() {
    let prog = rsv::diag::invoked_as("systemctl");
    let args = rsv::diag::args_utf8(&prog);
    if prog == "systemd-notify" {
        std::process::exit(rsv::systemctl::notify::main(&args));
    }
    std::process::exit(rsv::systemctl::main(&args));
}
