//! rsvok: exit 0 when a supervisor holds the service directory (see `rsv::svstat::svok_main`).

pub(crate) fn main() {
    let name = rsv::diag::invoked_as("rsvok");
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(rsv::svstat::svok_main(&args, name == "s6-svok"));
}
