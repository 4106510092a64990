//! rsv: a process-supervision suite that runs runit and s6 service directories.
//!
//! One module per concern; the programs in `src/bin/` only parse arguments and call in here.

pub mod cgroup;
pub mod control;
pub mod deps;
pub mod diag;
pub mod envdir;
pub mod exec;
pub mod extstate;
pub mod fifodir;
pub mod getopt;
pub mod health;
pub mod import;
pub mod lock;
pub mod logger;
pub mod machine;
pub mod memtrim;
pub mod monit;
pub mod multicall;
pub mod overlay;
pub mod probe;
pub mod proctitle;
pub mod proctree;
pub mod rc;
pub mod report;
pub mod rundir;
pub mod runwait;
pub mod scan;
pub mod sdnotify;
pub mod selfpipe;
pub mod sig;
pub mod status;
pub mod supervise;
pub mod svcmd;
pub mod svdir;
pub mod svenv;
pub mod svstat;
pub mod svview;
pub mod systemctl;
pub mod tai;
pub mod tai64nlocal;
pub mod template;
