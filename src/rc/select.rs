//! Selections over a published graph (the `rsv-graph` file): names resolved to atoms, the
//! closures s6-rc computes (everything a selection needs, everything that needs it), and the
//! s6-rc `list` views. Pure: the clients read the file and print; every rule is tested here.

use std::collections::BTreeSet;

use crate::deps::plan::St;
use crate::deps::state::{GraphState, SvcRec};

/// A name on the command line that is neither an atom nor a bundle.
#[derive(Debug, PartialEq, Eq)]
pub struct Unknown(pub String);

/// The atoms `name` stands for: itself, or a bundle's contents (already flattened by the
/// scanner). None when the graph does not know it.
pub fn atoms_of(g: &GraphState, name: &str) -> Option<Vec<String>> {
    if g.svc(name).is_some() {
        return Some(vec![name.to_string()]);
    }
    g.bundles
        .iter()
        .find(|(b, _)| b == name)
        .map(|(_, c)| c.clone())
}

/// Resolves names (atoms or bundles) to a set of atoms; the first unknown name is an error.
pub fn resolve<S: AsRef<str>>(g: &GraphState, names: &[S]) -> Result<BTreeSet<String>, Unknown> {
    let mut set = BTreeSet::new();
    for n in names {
        let n = n.as_ref();
        set.extend(atoms_of(g, n).ok_or_else(|| Unknown(n.to_string()))?);
    }
    Ok(set)
}

/// The atoms that are up (s6-rc's "active" services).
pub fn active(g: &GraphState) -> BTreeSet<String> {
    g.svcs
        .iter()
        .filter(|s| s.st == St::Up)
        .map(|s| s.name.clone())
        .collect()
}

/// Every atom, in the file's order.
pub fn all(g: &GraphState) -> Vec<String> {
    g.svcs.iter().map(|s| s.name.clone()).collect()
}

/// The selection plus everything it depends on, recursively.
pub fn closure_up(g: &GraphState, sel: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = sel.clone();
    let mut todo: Vec<String> = sel.iter().cloned().collect();
    while let Some(n) = todo.pop() {
        if let Some(s) = g.svc(&n) {
            for d in &s.deps {
                if out.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
    }
    out
}

/// The selection plus everything that depends on it, recursively.
pub fn closure_down(g: &GraphState, sel: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = sel.clone();
    loop {
        let more: Vec<String> = g
            .svcs
            .iter()
            .filter(|s| !out.contains(&s.name) && s.deps.iter().any(|d| out.contains(d)))
            .map(|s| s.name.clone())
            .collect();
        if more.is_empty() {
            return out;
        }
        out.extend(more);
    }
}

/// What depends on `name` (recursively), without `name` itself, in the file's order.
pub fn dependents(g: &GraphState, name: &str) -> Vec<String> {
    let sel = BTreeSet::from([name.to_string()]);
    let down = closure_down(g, &sel);
    g.svcs
        .iter()
        .filter(|s| s.name != name && down.contains(&s.name))
        .map(|s| s.name.clone())
        .collect()
}

/// Names of a set in the file's order (s6-rc prints in its database's order).
pub fn ordered(g: &GraphState, set: &BTreeSet<String>) -> Vec<String> {
    g.svcs
        .iter()
        .filter(|s| set.contains(&s.name))
        .map(|s| s.name.clone())
        .collect()
}

/// The atoms of a set that are not in `st` already (what a change will actually move).
pub fn to_move(g: &GraphState, set: &BTreeSet<String>, up: bool) -> Vec<String> {
    g.svcs
        .iter()
        .filter(|s| set.contains(&s.name))
        .filter(|s| if up { s.st != St::Up } else { !is_down(s) })
        .map(|s| s.name.clone())
        .collect()
}

/// Down for s6-rc's purposes: nothing runs for it (a failed start leaves it down).
pub fn is_down(s: &SvcRec) -> bool {
    matches!(s.st, St::Down | St::Failed)
}

/// `s6-rc list`: the selection (with `-a`, plus the active atoms); with `-d`, every atom
/// not in it.
pub fn list(g: &GraphState, sel: &BTreeSet<String>, add_active: bool, invert: bool) -> Vec<String> {
    let mut set = sel.clone();
    if add_active {
        set.extend(active(g));
    }
    if invert {
        let all: BTreeSet<String> = all(g).into_iter().collect();
        set = all.difference(&set).cloned().collect();
    }
    ordered(g, &set)
}

/// The atoms of `set` in an order in which they can change state: dependencies first when
/// going up, dependents first when going down (ties in the file's order).
pub fn order(g: &GraphState, set: &BTreeSet<String>, up: bool) -> Vec<String> {
    let mut left = ordered(g, set);
    let mut out: Vec<String> = Vec::new();
    while !left.is_empty() {
        let ready = |n: &String| -> bool {
            if up {
                g.svc(n)
                    .is_none_or(|s| s.deps.iter().all(|d| !set.contains(d) || out.contains(d)))
            } else {
                g.svcs
                    .iter()
                    .all(|s| !s.deps.contains(n) || !set.contains(&s.name) || out.contains(&s.name))
            }
        };
        let Some(i) = left.iter().position(ready) else {
            // A cycle cannot be published; keep the rest in file order all the same.
            out.append(&mut left);
            break;
        };
        out.push(left.remove(i));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deps::graph::Kind;
    use crate::deps::state::Last;

    fn svc(name: &str, st: St, deps: &[&str]) -> SvcRec {
        SvcRec {
            name: name.into(),
            kind: Kind::Longrun,
            st,
            want_up: true,
            since_ms: 0,
            last: Last::None,
            deps: deps.iter().map(|s| s.to_string()).collect(),
            waiting: vec![],
        }
    }

    /// a <- b <- c, d alone, bundle user = {b, d}.
    fn g() -> GraphState {
        GraphState {
            svcs: vec![
                svc("a", St::Up, &[]),
                svc("b", St::Up, &["a"]),
                svc("c", St::Down, &["b"]),
                svc("d", St::Failed, &[]),
            ],
            bundles: vec![("user".into(), vec!["b".into(), "d".into()])],
            reqs: vec![],
        }
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resolve_names_and_bundles() {
        let g = g();
        assert_eq!(resolve(&g, &["user", "a"]).unwrap(), set(&["a", "b", "d"]));
        assert_eq!(resolve(&g, &["a", "nope"]), Err(Unknown("nope".into())));
        assert_eq!(resolve::<&str>(&g, &[]).unwrap(), set(&[]));
    }

    #[test]
    fn closures() {
        let g = g();
        assert_eq!(closure_up(&g, &set(&["c"])), set(&["a", "b", "c"]));
        assert_eq!(closure_down(&g, &set(&["a"])), set(&["a", "b", "c"]));
        assert_eq!(closure_down(&g, &set(&["d"])), set(&["d"]));
        assert_eq!(dependents(&g, "a"), ["b", "c"]);
        assert!(dependents(&g, "c").is_empty());
    }

    #[test]
    fn lists() {
        let g = g();
        assert_eq!(list(&g, &set(&[]), true, false), ["a", "b"]);
        assert_eq!(list(&g, &set(&[]), true, true), ["c", "d"]);
        assert_eq!(list(&g, &set(&["d", "a"]), false, false), ["a", "d"]);
        assert_eq!(to_move(&g, &set(&["a", "b", "c"]), true), ["c"]);
        assert_eq!(to_move(&g, &set(&["a", "c", "d"]), false), ["a"]);
    }

    #[test]
    fn transition_order() {
        let mut g = g();
        g.svcs.reverse();
        let all = set(&["a", "b", "c", "d"]);
        assert_eq!(order(&g, &all, true), ["d", "a", "b", "c"]);
        assert_eq!(order(&g, &all, false), ["d", "c", "b", "a"]);
    }
}
