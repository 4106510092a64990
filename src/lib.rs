//! rsv: a process-supervision suite that runs runit and s6 service directories.
//!
//! One module per concern; the programs in `src/bin/` only parse arguments and call in here.

pub mod diag;
pub mod fifodir;
pub mod lock;
pub mod logger;
pub mod sig;
pub mod status;
pub mod tai;
