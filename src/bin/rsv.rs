//! rsv: every rsv program in one executable, selected by argv[0] (see `rsv::multicall`).

#[path = "rsupervise.rs"]
mod rsupervise;
#[path = "rsv-import.rs"]
mod rsv_import;
#[path = "rsvc.rs"]
mod rsvc;
#[path = "rsvexec.rs"]
mod rsvexec;
#[path = "rsvlog.rs"]
mod rsvlog;
#[path = "rsvok.rs"]
mod rsvok;
#[path = "rsvscan.rs"]
mod rsvscan;
#[path = "rsvscanctl.rs"]
mod rsvscanctl;
#[path = "rsvstat.rs"]
mod rsvstat;
#[path = "rsvtai64nlocal.rs"]
mod rsvtai64nlocal;
#[path = "systemctl.rs"]
mod systemctl;

use rsv::multicall::{self, Applet};

fn main() {
    multicall::set_active();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let name = multicall::base_name(args.first().map(|a| a.as_os_str()).unwrap_or_default());
    match multicall::lookup(&name) {
        Some(Applet::Rsupervise) => rsupervise::main(),
        Some(Applet::Rsvc) => rsvc::main(),
        Some(Applet::Rsvstat) => rsvstat::main(),
        Some(Applet::Rsvok) => rsvok::main(),
        Some(Applet::Rsvscan) => rsvscan::main(),
        Some(Applet::Rsvscanctl) => rsvscanctl::main(),
        Some(Applet::Rsvlog) => rsvlog::main(),
        Some(Applet::Rsvtai64nlocal) => rsvtai64nlocal::main(),
        Some(Applet::Rsvexec) => rsvexec::main(),
        Some(Applet::RsvImport) => rsv_import::main(),
        Some(Applet::S6Rc) => std::process::exit(rsv::rc::main(&rsv::diag::args_utf8("s6-rc"))),
        // `/sbin/init` is a systemd image's init (rsvscan --systemd); `/init` and any other
        // `init` is s6-overlay's.
        Some(Applet::OverlayInit) if args[0] == "/sbin/init" || args[0] == "/usr/sbin/init" => {
            rsvscan::main()
        }
        Some(Applet::OverlayInit) => std::process::exit(rsv::overlay::init_main(&args)),
        Some(Applet::WithContenv) => {
            std::process::exit(rsv::overlay::env::with_contenv_main(&args))
        }
        Some(Applet::Printcontenv) => {
            std::process::exit(rsv::overlay::env::printcontenv_main(&args))
        }
        Some(Applet::OverlayStep) => std::process::exit(rsv::overlay::steps::main(&args)),
        Some(Applet::Systemctl) => systemctl::main(),
        None => std::process::exit(multicall::dispatch_self(&args)),
    }
}
