//! supervisord's start order (`priority=`) as dependencies.
//!
//! supervisord starts programs in ascending priority (default 999) and stops them in the
//! reverse order; programs of equal priority start together. As a dependency graph: every
//! program depends on the programs of the next-lower priority present, so each priority
//! group starts once the group before it is up, and stops before it. Programs that do not
//! start on their own (`autostart=false`) are never depended on (depending on them would start
//! them), but they still depend on the group below their priority.

/// supervisord's default priority.
pub const DEFAULT: i64 = 999;

/// One imported service: its name, priority, and whether it starts on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub priority: i64,
    pub autostart: bool,
}

/// Parses a `priority=` value (an integer, as supervisord's `integer` type).
pub fn parse(v: &str) -> Option<i64> {
    v.trim().parse().ok()
}

/// The dependencies of each entry, in the order given: the autostarted entries of the
/// highest priority below its own (none for the lowest group).
pub fn dependencies(entries: &[Entry]) -> Vec<Vec<String>> {
    entries
        .iter()
        .map(|e| {
            let below = entries
                .iter()
                .filter(|o| o.autostart && o.priority < e.priority)
                .map(|o| o.priority)
                .max();
            match below {
                None => Vec::new(),
                Some(p) => entries
                    .iter()
                    .filter(|o| o.autostart && o.priority == p)
                    .map(|o| o.name.clone())
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, priority: i64, autostart: bool) -> Entry {
        Entry {
            name: name.into(),
            priority,
            autostart,
        }
    }

    #[test]
    fn next_lower_group() {
        let v = [
            e("web", 999, true),
            e("db", 10, true),
            e("cache", 10, true),
            e("app", 100, true),
            e("worker", 100, true),
        ];
        let d = dependencies(&v);
        assert_eq!(d[0], ["app", "worker"]);
        assert!(d[1].is_empty() && d[2].is_empty());
        assert_eq!(d[3], ["db", "cache"]);
        assert_eq!(d[4], ["db", "cache"]);
    }

    #[test]
    fn equal_priorities_have_no_order() {
        let v = [e("a", DEFAULT, true), e("b", DEFAULT, true)];
        assert!(dependencies(&v).iter().all(Vec::is_empty));
    }

    #[test]
    fn programs_not_autostarted_are_skipped() {
        let v = [
            e("db", 1, true),
            e("tool", 5, false),
            e("app", 10, true),
            e("late", 20, false),
        ];
        let d = dependencies(&v);
        assert_eq!(d[1], ["db"]);
        assert_eq!(d[2], ["db"]);
        assert_eq!(d[3], ["app"]);
    }

    #[test]
    fn negative_and_bad_values() {
        assert_eq!(parse("-5"), Some(-5));
        assert_eq!(parse(" 7 "), Some(7));
        assert_eq!(parse("x"), None);
        let d = dependencies(&[e("a", -5, true), e("b", 0, true)]);
        assert_eq!(d[1], ["a"]);
    }
}
