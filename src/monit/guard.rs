//! Resource guards as pure decisions: given the limits of a service and one sample of what
//! its processes use, is a limit exceeded, and has it been for `limit-cycles` samples in a
//! row (Monit's "if totalmem > 200 MB for 3 cycles then restart")?

/// Default `limit-cycles`.
pub const DEFAULT_CYCLES: u32 = 3;

/// The limits of one start of `run` (`None` = no such limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `limit-memory`, bytes.
    pub memory: Option<u64>,
    /// `limit-cpu`, percent of one core.
    pub cpu_percent: Option<u64>,
    /// `limit-fds`.
    pub fds: Option<u64>,
    /// `limit-cycles` (at least 1).
    pub cycles: u32,
    /// `limit-action` is `restart` (the default) rather than `report`.
    pub restart: bool,
}

impl Limits {
    pub fn any(&self) -> bool {
        self.memory.is_some() || self.cpu_percent.is_some() || self.fds.is_some()
    }
}

/// Parses a byte count: digits with an optional `K`, `M` or `G` (powers of 1024, an optional
/// trailing `B` or `iB`).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let unit = s[digits..].trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let mul: u64 = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// Bytes in words: `1.5 MiB`.
pub fn show_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut k = 0;
    while v >= 1024.0 && k + 1 < UNITS.len() {
        v /= 1024.0;
        k += 1;
    }
    if k == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[k])
    }
}

/// One sample of the service's processes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub memory_bytes: u64,
    /// Percent of one core since the previous sample (None for the first sample).
    pub cpu_percent: Option<u64>,
    pub fds: u64,
}

/// What a sample means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within every limit.
    Fine,
    /// Over a limit, fewer than `limit-cycles` samples in a row.
    Over(String),
    /// Over a limit for `limit-cycles` samples in a row: restart (or report) now.
    Act(String),
}

/// The guard of one service: how many samples in a row were over a limit.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    pub over: u32,
}

impl Guard {
    /// Judges one sample; the text names what is over, as `memory 210.0 MiB > 200.0 MiB`.
    pub fn judge(&mut self, l: &Limits, s: &Sample) -> Verdict {
        let mut what = Vec::new();
        if let Some(m) = l.memory.filter(|&m| s.memory_bytes > m) {
            what.push(format!(
                "memory {} > {}",
                show_bytes(s.memory_bytes),
                show_bytes(m)
            ));
        }
        if let (Some(c), Some(now)) = (l.cpu_percent, s.cpu_percent) {
            if now > c {
                what.push(format!("cpu {now}% > {c}%"));
            }
        }
        if let Some(f) = l.fds.filter(|&f| s.fds > f) {
            what.push(format!("fds {} > {f}", s.fds));
        }
        if what.is_empty() {
            self.over = 0;
            return Verdict::Fine;
        }
        self.over += 1;
        let cycles = l.cycles.max(1);
        let text = format!(
            "{} for {} of {} cycles",
            what.join(", "),
            self.over.min(cycles),
            cycles
        );
        if self.over >= cycles {
            if l.restart {
                self.over = 0;
            }
            Verdict::Act(text)
        } else {
            Verdict::Over(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("200M\n"), Some(200 << 20));
        assert_eq!(parse_bytes("2 GiB"), Some(2 << 30));
        assert_eq!(parse_bytes("64kb"), Some(64 << 10));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes("5T"), None);
        assert_eq!(show_bytes(512), "512 B");
        assert_eq!(show_bytes(3 << 20), "3.0 MiB");
    }

    #[test]
    fn cycles_then_act() {
        let l = Limits {
            memory: Some(100),
            cycles: 3,
            restart: true,
            ..Default::default()
        };
        let mut g = Guard::default();
        let big = Sample {
            memory_bytes: 200,
            ..Default::default()
        };
        let small = Sample {
            memory_bytes: 50,
            ..Default::default()
        };
        assert!(matches!(g.judge(&l, &big), Verdict::Over(_)));
        assert_eq!(
            g.judge(&l, &small),
            Verdict::Fine,
            "a good sample resets the count"
        );
        assert!(matches!(g.judge(&l, &big), Verdict::Over(_)));
        assert!(matches!(g.judge(&l, &big), Verdict::Over(_)));
        assert_eq!(
            g.judge(&l, &big),
            Verdict::Act("memory 200 B > 100 B for 3 of 3 cycles".into())
        );
        assert_eq!(g.over, 0, "restarting starts a new count");
    }

    #[test]
    fn report_keeps_acting_and_cpu_needs_two_samples() {
        let l = Limits {
            cpu_percent: Some(50),
            fds: Some(10),
            cycles: 1,
            restart: false,
            ..Default::default()
        };
        let mut g = Guard::default();
        let first = Sample {
            cpu_percent: None,
            fds: 3,
            ..Default::default()
        };
        assert_eq!(g.judge(&l, &first), Verdict::Fine);
        let hot = Sample {
            cpu_percent: Some(95),
            fds: 11,
            ..Default::default()
        };
        assert_eq!(
            g.judge(&l, &hot),
            Verdict::Act("cpu 95% > 50%, fds 11 > 10 for 1 of 1 cycles".into())
        );
        assert!(matches!(g.judge(&l, &hot), Verdict::Act(_)));
    }
}
