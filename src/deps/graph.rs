//! The dependency graph of a scan directory, built from service definitions (s6-rc's source
//! format, read by [`super::source`]). Pure: no system call, so every rule is unit-tested.
//!
//! Atoms are longruns and oneshots; bundles are names for sets of atoms and resolve away.
//! A dependency on a bundle is a dependency on each atom it contains (nested bundles included).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What a service directory defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Longrun,
    Oneshot,
    Bundle,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Longrun => "longrun",
            Kind::Oneshot => "oneshot",
            Kind::Bundle => "bundle",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "longrun" => Kind::Longrun,
            "oneshot" => Kind::Oneshot,
            "bundle" => Kind::Bundle,
            _ => return None,
        })
    }
}

/// One service definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Def {
    pub name: String,
    pub kind: Kind,
    /// Names this service depends on (atoms or bundles).
    pub deps: Vec<String>,
    /// For a bundle: the names it contains.
    pub contents: Vec<String>,
}

impl Def {
    pub fn new(name: &str, kind: Kind, deps: &[&str], contents: &[&str]) -> Def {
        Def {
            name: name.to_string(),
            kind,
            deps: deps.iter().map(|s| s.to_string()).collect(),
            contents: contents.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A graph that cannot be run; each is reported in one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphError {
    /// `from` depends on `name`, which no service defines.
    UnknownDep { from: String, name: String },
    /// Bundle `bundle` contains `name`, which no service defines.
    UnknownContent { bundle: String, name: String },
    /// A bundle contains itself, directly or through other bundles (every member named).
    BundleCycle { members: Vec<String> },
    /// A dependency cycle (every member named, in cycle order).
    DepCycle { members: Vec<String> },
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::UnknownDep { from, name } => {
                write!(f, "{from} depends on {name}, which does not exist")
            }
            GraphError::UnknownContent { bundle, name } => {
                write!(f, "bundle {bundle} contains {name}, which does not exist")
            }
            GraphError::BundleCycle { members } if members.len() == 1 => {
                write!(f, "bundle {} contains itself", members[0])
            }
            GraphError::BundleCycle { members } => {
                write!(
                    f,
                    "bundles contain each other: {} -> {}",
                    members.join(" -> "),
                    members[0]
                )
            }
            GraphError::DepCycle { members } => write!(
                f,
                "dependency cycle: {} -> {}",
                members.join(" -> "),
                members[0]
            ),
        }
    }
}

/// An atomic service of the graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atom {
    pub name: String,
    /// Longrun or Oneshot.
    pub kind: Kind,
    /// Direct dependencies (atom indices, sorted, bundles resolved).
    pub deps: Vec<usize>,
    /// Direct dependents (atom indices, sorted).
    pub rdeps: Vec<usize>,
}

/// A checked graph: no unknown name, no cycle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Graph {
    pub atoms: Vec<Atom>,
    index: BTreeMap<String, usize>,
    /// Bundle name -> the atoms it stands for.
    pub bundles: BTreeMap<String, Vec<usize>>,
}

/// Expands bundle `name` into atom names; `stack` detects cycles.
fn expand(
    name: &str,
    defs: &BTreeMap<&str, &Def>,
    stack: &mut Vec<String>,
    out: &mut BTreeSet<String>,
    errs: &mut Vec<GraphError>,
) {
    let Some(d) = defs.get(name) else { return };
    if d.kind != Kind::Bundle {
        out.insert(name.to_string());
        return;
    }
    if let Some(at) = stack.iter().position(|s| s == name) {
        let members = stack[at..].to_vec();
        let e = GraphError::BundleCycle { members };
        if !errs.contains(&e) {
            errs.push(e);
        }
        return;
    }
    stack.push(name.to_string());
    for c in &d.contents {
        if !defs.contains_key(c.as_str()) {
            let e = GraphError::UnknownContent {
                bundle: name.to_string(),
                name: c.clone(),
            };
            if !errs.contains(&e) {
                errs.push(e);
            }
            continue;
        }
        expand(c, defs, stack, out, errs);
    }
    stack.pop();
}

impl Graph {
    /// Checks and builds the graph. Every problem is returned, not only the first.
    pub fn build(defs: &[Def]) -> Result<Graph, Vec<GraphError>> {
        let by_name: BTreeMap<&str, &Def> = defs.iter().map(|d| (d.name.as_str(), d)).collect();
        let mut errs = Vec::new();
        let mut bundles = BTreeMap::new();
        for d in by_name.values().filter(|d| d.kind == Kind::Bundle) {
            let mut out = BTreeSet::new();
            expand(&d.name, &by_name, &mut Vec::new(), &mut out, &mut errs);
            bundles.insert(d.name.clone(), out);
        }
        let names: Vec<&str> = by_name
            .values()
            .filter(|d| d.kind != Kind::Bundle)
            .map(|d| d.name.as_str())
            .collect();
        let index: BTreeMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i))
            .collect();
        let mut atoms: Vec<Atom> = names
            .iter()
            .map(|n| Atom {
                name: n.to_string(),
                kind: by_name[n].kind,
                deps: Vec::new(),
                rdeps: Vec::new(),
            })
            .collect();
        for (i, n) in names.iter().enumerate() {
            let mut deps = BTreeSet::new();
            for dep in &by_name[n].deps {
                if let Some(&j) = index.get(dep) {
                    deps.insert(j);
                } else if let Some(set) = bundles.get(dep) {
                    deps.extend(set.iter().filter_map(|a| index.get(a)).copied());
                } else {
                    errs.push(GraphError::UnknownDep {
                        from: n.to_string(),
                        name: dep.clone(),
                    });
                }
            }
            deps.remove(&i);
            if by_name[n].deps.iter().any(|d| d == n) {
                errs.push(GraphError::DepCycle {
                    members: vec![n.to_string()],
                });
            }
            atoms[i].deps = deps.into_iter().collect();
        }
        for i in 0..atoms.len() {
            for j in atoms[i].deps.clone() {
                atoms[j].rdeps.push(i);
            }
        }
        errs.extend(cycles(&atoms));
        if !errs.is_empty() {
            return Err(errs);
        }
        let bundles = bundles
            .into_iter()
            .map(|(b, set)| {
                (
                    b,
                    set.iter().filter_map(|a| index.get(a)).copied().collect(),
                )
            })
            .collect();
        Ok(Graph {
            atoms,
            index,
            bundles,
        })
    }

    /// The atom named `name`.
    pub fn atom(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Is `name` an atom or a bundle of this graph?
    pub fn knows(&self, name: &str) -> bool {
        self.index.contains_key(name) || self.bundles.contains_key(name)
    }

    /// The atoms that `names` (atoms or bundles) stand for; Err with the first unknown name.
    pub fn resolve<S: AsRef<str>>(&self, names: &[S]) -> Result<BTreeSet<usize>, String> {
        let mut out = BTreeSet::new();
        for n in names {
            let n = n.as_ref();
            if let Some(i) = self.atom(n) {
                out.insert(i);
            } else if let Some(set) = self.bundles.get(n) {
                out.extend(set.iter().copied());
            } else {
                return Err(n.to_string());
            }
        }
        Ok(out)
    }

    /// `set` and everything it depends on, transitively.
    pub fn closure_up(&self, set: &BTreeSet<usize>) -> BTreeSet<usize> {
        self.closure(set, |a| &a.deps)
    }

    /// `set` and everything that depends on it, transitively.
    pub fn closure_down(&self, set: &BTreeSet<usize>) -> BTreeSet<usize> {
        self.closure(set, |a| &a.rdeps)
    }

    fn closure(
        &self,
        set: &BTreeSet<usize>,
        next: impl Fn(&Atom) -> &Vec<usize>,
    ) -> BTreeSet<usize> {
        let mut out = set.clone();
        let mut todo: Vec<usize> = set.iter().copied().collect();
        while let Some(i) = todo.pop() {
            for &j in next(&self.atoms[i]) {
                if out.insert(j) {
                    todo.push(j);
                }
            }
        }
        out
    }
}

/// Every dependency cycle, one error per strongly connected component (Tarjan), its members
/// in an order that follows the edges.
fn cycles(atoms: &[Atom]) -> Vec<GraphError> {
    struct T<'a> {
        atoms: &'a [Atom],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for &w in &t.atoms[v].deps {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let n = atoms.len();
    let mut t = T {
        atoms,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
        .into_iter()
        .map(|comp| {
            // Walk the cycle from its smallest name along edges inside the component.
            let inside: BTreeSet<usize> = comp.iter().copied().collect();
            let start = *comp
                .iter()
                .min_by(|a, b| atoms[**a].name.cmp(&atoms[**b].name))
                .unwrap_or(&comp[0]);
            let mut order = vec![start];
            let mut seen = BTreeSet::from([start]);
            let mut cur = start;
            while let Some(&nx) = atoms[cur]
                .deps
                .iter()
                .find(|d| inside.contains(d) && !seen.contains(d))
            {
                order.push(nx);
                seen.insert(nx);
                cur = nx;
            }
            // Members the walk did not reach (a component with several cycles) follow by name.
            let mut rest: Vec<usize> = inside.difference(&seen).copied().collect();
            rest.sort_by(|a, b| atoms[*a].name.cmp(&atoms[*b].name));
            order.extend(rest);
            GraphError::DepCycle {
                members: order.iter().map(|i| atoms[*i].name.clone()).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Kind::*;

    fn names(g: &Graph, set: &BTreeSet<usize>) -> Vec<String> {
        set.iter().map(|i| g.atoms[*i].name.clone()).collect()
    }

    #[test]
    fn deps_through_nested_bundles_resolve_to_atoms() {
        let g = Graph::build(&[
            Def::new("db", Longrun, &[], &[]),
            Def::new("cache", Longrun, &[], &[]),
            Def::new("mig", Oneshot, &["db"], &[]),
            Def::new("inner", Bundle, &[], &["db", "cache"]),
            Def::new("outer", Bundle, &[], &["inner", "mig"]),
            Def::new("app", Longrun, &["outer"], &[]),
        ])
        .unwrap();
        let app = g.atom("app").unwrap();
        let deps: Vec<&str> = g.atoms[app]
            .deps
            .iter()
            .map(|i| g.atoms[*i].name.as_str())
            .collect();
        assert_eq!(deps, ["cache", "db", "mig"]);
        assert_eq!(
            names(&g, &g.resolve(&["outer"]).unwrap()),
            ["cache", "db", "mig"]
        );
        let db = g.atom("db").unwrap();
        assert_eq!(
            names(&g, &g.closure_down(&BTreeSet::from([db]))),
            ["app", "db", "mig"]
        );
        assert_eq!(
            names(&g, &g.closure_up(&BTreeSet::from([app]))),
            ["app", "cache", "db", "mig"]
        );
        assert_eq!(g.resolve(&["nosuch"]), Err("nosuch".to_string()));
        assert!(g.knows("outer") && g.knows("db") && !g.knows("x"));
    }

    #[test]
    fn unknown_dependency_and_content_are_reported_each() {
        let e = Graph::build(&[
            Def::new("a", Longrun, &["nosuch"], &[]),
            Def::new("b", Bundle, &[], &["missing", "a"]),
        ])
        .unwrap_err();
        assert_eq!(
            e,
            [
                GraphError::UnknownContent {
                    bundle: "b".into(),
                    name: "missing".into()
                },
                GraphError::UnknownDep {
                    from: "a".into(),
                    name: "nosuch".into()
                },
            ]
        );
        assert_eq!(
            e[1].to_string(),
            "a depends on nosuch, which does not exist"
        );
    }

    #[test]
    fn cycles_name_every_member() {
        let e = Graph::build(&[
            Def::new("c", Longrun, &["a"], &[]),
            Def::new("a", Longrun, &["b"], &[]),
            Def::new("b", Oneshot, &["c"], &[]),
            Def::new("x", Longrun, &["x"], &[]),
            Def::new("ok", Longrun, &["a"], &[]),
        ])
        .unwrap_err();
        let msgs: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs.contains(&"dependency cycle: a -> b -> c -> a".to_string()),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"dependency cycle: x -> x".to_string()),
            "{msgs:?}"
        );
        assert_eq!(msgs.len(), 2);
    }

    #[test]
    fn bundle_cycles() {
        let e = Graph::build(&[Def::new("b", Bundle, &[], &["b"])]).unwrap_err();
        assert_eq!(e[0].to_string(), "bundle b contains itself");
        let e = Graph::build(&[
            Def::new("p", Bundle, &[], &["q"]),
            Def::new("q", Bundle, &[], &["p"]),
        ])
        .unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(e[0].to_string().starts_with("bundles contain each other: "));
    }

    #[test]
    fn cycle_through_a_bundle_is_found() {
        let e = Graph::build(&[
            Def::new("a", Longrun, &["grp"], &[]),
            Def::new("grp", Bundle, &[], &["b"]),
            Def::new("b", Longrun, &["a"], &[]),
        ])
        .unwrap_err();
        assert_eq!(e[0].to_string(), "dependency cycle: a -> b -> a");
    }

    #[test]
    fn kind_names() {
        for k in [Longrun, Oneshot, Bundle] {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("daemon"), None);
    }
}
