//! Dependencies between services: s6-rc's model (longruns, oneshots, bundles) as rsvscan runs
//! it straight from the scan directory. Everything here is pure: the graph and its checks
//! ([`graph`]), what may start or stop now ([`plan`]), how a oneshot's script is run
//! ([`script`]) and the state file clients read ([`state`]). The scanner does the I/O
//! (`scan::graph`).

pub mod graph;
pub mod plan;
pub mod script;
pub mod state;
