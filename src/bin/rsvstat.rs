//! rsvstat: show a service's state (s6-svstat compatible; see `rsv::svstat`).

pub(crate) fn main() {
    let name = rsv::diag::invoked_as("rsvstat");
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(rsv::svstat::main(&args, name == "s6-svstat"));
}
