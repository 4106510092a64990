//! rsv-import: turns a supervisord.conf or a Procfile into service directories (see
//! `rsv::import` and `man rsv-import`).

pub(crate) fn main() {
    let prog = rsv::diag::invoked_as("rsv-import");
    let args = rsv::diag::args_utf8(&prog);
    std::process::exit(rsv::import::main(&prog, &args));
}
