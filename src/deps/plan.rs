//! What may start or stop now, given the graph and every atom's state: the decisions of the
//! dependency engine, kept pure (the scanner performs them, see `scan::graph`).
//!
//! - An atom starts once it is wanted up and every dependency is up (independent branches
//!   therefore start together).
//! - An atom stops once it is wanted down and nothing that depends on it is still running
//!   (the reverse order).
//! - A failed atom stays failed (its dependents wait, blocked) until a new request wants it up.

use std::collections::BTreeSet;

use super::graph::Graph;

/// State of one atom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum St {
    Down,
    Starting,
    Up,
    Failed,
    Stopping,
}

impl St {
    pub fn as_str(self) -> &'static str {
        match self {
            St::Down => "down",
            St::Starting => "starting",
            St::Up => "up",
            St::Failed => "failed",
            St::Stopping => "stopping",
        }
    }

    pub fn parse(s: &str) -> Option<St> {
        Some(match s {
            "down" => St::Down,
            "starting" => St::Starting,
            "up" => St::Up,
            "failed" => St::Failed,
            "stopping" => St::Stopping,
            _ => return None,
        })
    }

    /// Nothing runs for it and nothing is under way.
    fn quiet_down(self) -> bool {
        matches!(self, St::Down | St::Failed)
    }
}

/// An atom's state and what is wanted of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub st: St,
    pub want_up: bool,
}

impl Default for Node {
    fn default() -> Node {
        Node {
            st: St::Down,
            want_up: false,
        }
    }
}

/// A transition to perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Start(usize),
    Stop(usize),
}

/// The transitions that may begin now.
pub fn next(g: &Graph, nodes: &[Node]) -> Vec<Step> {
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let a = &g.atoms[i];
        if n.want_up && n.st == St::Down && a.deps.iter().all(|&d| nodes[d].st == St::Up) {
            out.push(Step::Start(i));
        } else if !n.want_up && n.st == St::Up && a.rdeps.iter().all(|&r| nodes[r].st.quiet_down())
        {
            out.push(Step::Stop(i));
        }
    }
    out
}

/// The dependencies of `i` that are not up, each with whether it failed (or is itself blocked
/// by a failure further down).
pub fn waiting_for(g: &Graph, nodes: &[Node], i: usize) -> Vec<(usize, bool)> {
    g.atoms[i]
        .deps
        .iter()
        .filter(|&&d| nodes[d].st != St::Up)
        .map(|&d| (d, nodes[d].st == St::Failed || blocked(g, nodes, d)))
        .collect()
}

/// Can `i` not come up because something it needs, transitively, has failed?
pub fn blocked(g: &Graph, nodes: &[Node], i: usize) -> bool {
    blocked_in(g, nodes, i, &mut vec![None; nodes.len()])
}

/// [`blocked`] with the answers so far, so that a graph with many shared dependencies is
/// walked once (the graph has no cycle, so the recursion ends).
fn blocked_in(g: &Graph, nodes: &[Node], i: usize, memo: &mut Vec<Option<bool>>) -> bool {
    if let Some(b) = memo[i] {
        return b;
    }
    let b = g.atoms[i].deps.iter().any(|&d| match nodes[d].st {
        St::Up => false,
        St::Failed => true,
        _ => blocked_in(g, nodes, d, memo),
    });
    memo[i] = Some(b);
    b
}

/// Has atom `i` reached what is wanted of it (or can it not, because of a failure)?
pub fn arrived(g: &Graph, nodes: &[Node], i: usize) -> bool {
    let n = nodes[i];
    if n.want_up {
        match n.st {
            St::Up | St::Failed => true,
            St::Down => blocked(g, nodes, i),
            St::Starting | St::Stopping => false,
        }
    } else {
        n.st.quiet_down()
    }
}

/// Every atom has arrived: nothing more will happen without a new request.
pub fn settled(g: &Graph, nodes: &[Node]) -> bool {
    (0..nodes.len()).all(|i| arrived(g, nodes, i))
}

/// Wants `set` and its dependencies up; a failed one is tried again.
pub fn want_up(g: &Graph, nodes: &mut [Node], set: &BTreeSet<usize>) {
    for i in g.closure_up(set) {
        nodes[i].want_up = true;
        if nodes[i].st == St::Failed {
            nodes[i].st = St::Down;
        }
    }
}

/// Wants `set` and everything depending on it down.
pub fn want_down(g: &Graph, nodes: &mut [Node], set: &BTreeSet<usize>) {
    for i in g.closure_down(set) {
        nodes[i].want_up = false;
    }
}

/// A change asked for by a client (or the start set), tracked until every atom of it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub nonce: u64,
    pub atoms: BTreeSet<usize>,
    pub up: bool,
}

impl Request {
    /// Ok(failed atoms) once done (an empty list means success), None while under way.
    pub fn outcome(&self, g: &Graph, nodes: &[Node]) -> Option<Vec<usize>> {
        let mut failed = Vec::new();
        for &i in &self.atoms {
            let n = nodes[i];
            if self.up {
                match n.st {
                    St::Up => {}
                    St::Failed => failed.push(i),
                    St::Down if !n.want_up => failed.push(i), // taken down meanwhile
                    St::Down if blocked(g, nodes, i) => failed.push(i),
                    _ => return None,
                }
            } else {
                match n.st {
                    St::Down | St::Failed => {}
                    St::Up if n.want_up => failed.push(i), // wanted up again meanwhile
                    _ => return None,
                }
            }
        }
        Some(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::graph::{Def, Kind::*};

    /// a <- b <- d, c <- d (d depends on b and c; b on a).
    fn diamond() -> Graph {
        Graph::build(&[
            Def::new("a", Oneshot, &[], &[]),
            Def::new("b", Oneshot, &["a"], &[]),
            Def::new("c", Longrun, &[], &[]),
            Def::new("d", Longrun, &["b", "c"], &[]),
        ])
        .unwrap()
    }

    fn id(g: &Graph, n: &str) -> usize {
        g.atom(n).unwrap()
    }

    fn starts(g: &Graph, nodes: &[Node]) -> Vec<String> {
        next(g, nodes)
            .into_iter()
            .map(|s| match s {
                Step::Start(i) => format!("+{}", g.atoms[i].name),
                Step::Stop(i) => format!("-{}", g.atoms[i].name),
            })
            .collect()
    }

    #[test]
    fn start_in_order_independent_branches_together() {
        let g = diamond();
        let mut n = vec![Node::default(); 4];
        assert!(settled(&g, &n));
        want_up(&g, &mut n, &BTreeSet::from([id(&g, "d")]));
        assert_eq!(starts(&g, &n), ["+a", "+c"]);
        n[id(&g, "a")].st = St::Starting;
        n[id(&g, "c")].st = St::Starting;
        assert!(starts(&g, &n).is_empty());
        assert!(!settled(&g, &n));
        n[id(&g, "a")].st = St::Up;
        assert_eq!(starts(&g, &n), ["+b"]);
        n[id(&g, "b")].st = St::Up;
        assert!(starts(&g, &n).is_empty(), "d waits for c");
        let w = waiting_for(&g, &n, id(&g, "d"));
        assert_eq!(w, [(id(&g, "c"), false)]);
        n[id(&g, "c")].st = St::Up;
        assert_eq!(starts(&g, &n), ["+d"]);
        n[id(&g, "d")].st = St::Up;
        assert!(settled(&g, &n));
    }

    #[test]
    fn stop_in_reverse_order() {
        let g = diamond();
        let mut n = vec![
            Node {
                st: St::Up,
                want_up: true
            };
            4
        ];
        want_down(&g, &mut n, &BTreeSet::from([id(&g, "a")]));
        // a and everything depending on it (b, d) are wanted down; c stays.
        assert!(n[id(&g, "c")].want_up);
        assert_eq!(starts(&g, &n), ["-d"]);
        n[id(&g, "d")].st = St::Stopping;
        assert!(starts(&g, &n).is_empty());
        n[id(&g, "d")].st = St::Down;
        assert_eq!(starts(&g, &n), ["-b"]);
        n[id(&g, "b")].st = St::Down;
        assert_eq!(starts(&g, &n), ["-a"]);
        n[id(&g, "a")].st = St::Down;
        assert!(settled(&g, &n));
    }

    #[test]
    fn a_failure_blocks_dependents_only_and_a_new_request_retries() {
        let g = diamond();
        let mut n = vec![Node::default(); 4];
        want_up(&g, &mut n, &BTreeSet::from([id(&g, "d")]));
        let req = Request {
            nonce: 7,
            atoms: BTreeSet::from([id(&g, "d")]),
            up: true,
        };
        n[id(&g, "a")].st = St::Failed;
        n[id(&g, "c")].st = St::Up;
        assert!(starts(&g, &n).is_empty(), "b and d never start");
        assert!(blocked(&g, &n, id(&g, "d")));
        assert_eq!(
            waiting_for(&g, &n, id(&g, "d")),
            [(id(&g, "b"), true)],
            "d waits for b, blocked by a's failure"
        );
        assert!(settled(&g, &n));
        assert_eq!(req.outcome(&g, &n), Some(vec![id(&g, "d")]));
        want_up(&g, &mut n, &BTreeSet::from([id(&g, "b")]));
        assert_eq!(n[id(&g, "a")].st, St::Down);
        assert_eq!(starts(&g, &n), ["+a"]);
        assert_eq!(req.outcome(&g, &n), None);
    }

    #[test]
    fn down_request_outcome() {
        let g = diamond();
        let mut n = vec![
            Node {
                st: St::Up,
                want_up: true
            };
            4
        ];
        let set = BTreeSet::from([id(&g, "c")]);
        want_down(&g, &mut n, &set);
        let req = Request {
            nonce: 1,
            atoms: g.closure_down(&set),
            up: false,
        };
        assert_eq!(req.outcome(&g, &n), None);
        n[id(&g, "d")].st = St::Down;
        n[id(&g, "c")].st = St::Down;
        assert_eq!(req.outcome(&g, &n), Some(vec![]));
    }

    #[test]
    fn exhaustive_small_states_never_start_before_deps_or_stop_before_dependents() {
        let g = diamond();
        let sts = [St::Down, St::Starting, St::Up, St::Failed, St::Stopping];
        let total = (sts.len() * 2).pow(4);
        for code in 0..total {
            let mut c = code;
            let nodes: Vec<Node> = (0..4)
                .map(|_| {
                    let k = c % 10;
                    c /= 10;
                    Node {
                        st: sts[k / 2],
                        want_up: k % 2 == 1,
                    }
                })
                .collect();
            for s in next(&g, &nodes) {
                match s {
                    Step::Start(i) => {
                        assert!(nodes[i].want_up && nodes[i].st == St::Down);
                        assert!(g.atoms[i].deps.iter().all(|&d| nodes[d].st == St::Up));
                    }
                    Step::Stop(i) => {
                        assert!(!nodes[i].want_up && nodes[i].st == St::Up);
                        assert!(g.atoms[i].rdeps.iter().all(|&r| nodes[r].st.quiet_down()));
                    }
                }
            }
            if settled(&g, &nodes) {
                // Nothing left to start or stop, except a stop that waits on nothing.
                assert!(
                    next(&g, &nodes).is_empty(),
                    "settled but steps remain: {nodes:?}"
                );
            }
        }
    }

    #[test]
    fn a_wide_layered_graph_is_decided_quickly() {
        // 30 layers of 4 services, each depending on every service of the layer below: the
        // walk for "blocked" must not follow every path (4^30 of them).
        let mut defs = Vec::new();
        for l in 0..30 {
            for k in 0..4 {
                let deps: Vec<String> = if l == 0 {
                    Vec::new()
                } else {
                    (0..4).map(|j| format!("s{}_{j}", l - 1)).collect()
                };
                let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
                defs.push(Def::new(&format!("s{l}_{k}"), Oneshot, &deps, &[]));
            }
        }
        let g = Graph::build(&defs).unwrap();
        let mut n = vec![Node::default(); g.atoms.len()];
        let all: BTreeSet<usize> = (0..n.len()).collect();
        want_up(&g, &mut n, &all);
        n[g.atom("s0_0").unwrap()].st = St::Failed;
        for k in 1..4 {
            n[g.atom(&format!("s0_{k}")).unwrap()].st = St::Up;
        }
        let t = std::time::Instant::now();
        assert!(settled(&g, &n));
        assert!(blocked(&g, &n, g.atom("s29_3").unwrap()));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn state_names() {
        for s in [St::Down, St::Starting, St::Up, St::Failed, St::Stopping] {
            assert_eq!(St::parse(s.as_str()), Some(s));
        }
    }
}
