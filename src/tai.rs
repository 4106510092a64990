//! TAI64 and TAI64N time stamps, in the two families that runit and s6 write.
//!
//! A TAI64 label is 2^62 plus TAI seconds since 1970-01-01 00:00:00 TAI. runit and svlogd
//! (daemontools' convention) assume a constant 10 s between TAI and UTC; s6 and skalibs add the
//! leap seconds as well, which is 37 s for every instant after 2016-12-31.

use std::time::{SystemTime, UNIX_EPOCH};

/// 2^62: the label of 1970-01-01 00:00:00 TAI.
pub const TAI64_BASE: u64 = 1 << 62;

/// Which program family a stamp is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// runit, svlogd, daemontools: label = 2^62 + 10 + unix seconds.
    Runit,
    /// s6, skalibs, s6-log: label = 2^62 + 10 + leap seconds + unix seconds.
    S6,
}

/// Unix times (start of the day after each inserted leap second) of the 27 leap seconds.
const LEAPS: [i64; 27] = [
    78796800, 94694400, 126230400, 157766400, 189302400, 220924800, 252460800, 283996800,
    315532800, 362793600, 394329600, 425865600, 489024000, 567993600, 631152000, 662688000,
    709948800, 741484800, 773020800, 820454400, 867715200, 915148800, 1136073600, 1230768000,
    1341100800, 1435708800, 1483228800,
];

/// Leap seconds that had been inserted by unix time `t` (0 to 27).
fn leaps_at_unix(t: i64) -> u64 {
    LEAPS.iter().take_while(|&&l| l <= t).count() as u64
}

/// The unix times of the 27 leap seconds counted by skalibs (each the start of the day that
/// follows an inserted second), oldest first.
pub fn leap_table() -> &'static [i64] {
    &LEAPS
}

/// A TAI64N label: seconds label (with the 2^62 base) and nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tai64N {
    pub secs: u64,
    pub nanos: u32,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Tai64N {
    /// The label for a unix time in the given family.
    pub fn from_unix(secs: i64, nanos: u32, family: Family) -> Tai64N {
        let extra = match family {
            Family::Runit => 10,
            Family::S6 => 10 + leaps_at_unix(secs),
        };
        Tai64N {
            secs: (TAI64_BASE as i64 + secs) as u64 + extra,
            nanos,
        }
    }

    /// The label of a `SystemTime`, with the nanosecond convention of the family
    /// (runit: microseconds * 1000 + 500; s6: nanoseconds).
    pub fn from_system(t: SystemTime, family: Family) -> Tai64N {
        let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => {
                let d = e.duration();
                let mut s = -(d.as_secs() as i64);
                let mut n = d.subsec_nanos();
                if n > 0 {
                    s -= 1;
                    n = 1_000_000_000 - n;
                }
                (s, n)
            }
        };
        let nanos = match family {
            Family::Runit => (nanos / 1000) * 1000 + 500,
            Family::S6 => nanos,
        };
        Tai64N::from_unix(secs, nanos, family)
    }

    /// Now, in the given family.
    pub fn now(family: Family) -> Tai64N {
        Tai64N::from_system(SystemTime::now(), family)
    }

    /// Unix seconds and nanoseconds of this label, read in the given family.
    pub fn to_unix(self, family: Family) -> (i64, u32) {
        let tai = self.secs as i64 - TAI64_BASE as i64 - 10;
        let unix = match family {
            Family::Runit => tai,
            Family::S6 => {
                // Find the unix time u with u + leaps(u) == tai.
                let mut u = tai;
                for _ in 0..3 {
                    u = tai - leaps_at_unix(u) as i64;
                }
                u
            }
        };
        (unix, self.nanos)
    }

    /// Seconds (whole) from this stamp to `now`, 0 when `now` is earlier.
    pub fn secs_until(self, now: Tai64N) -> u64 {
        now.secs.saturating_sub(self.secs)
    }

    /// The 12 big-endian bytes.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&self.secs.to_be_bytes());
        b[8..].copy_from_slice(&self.nanos.to_be_bytes());
        b
    }

    /// Reads 12 big-endian bytes (the slice must hold at least 12).
    pub fn from_bytes(b: &[u8]) -> Tai64N {
        let mut s = [0u8; 8];
        s.copy_from_slice(&b[..8]);
        let mut n = [0u8; 4];
        n.copy_from_slice(&b[8..12]);
        Tai64N {
            secs: u64::from_be_bytes(s),
            nanos: u32::from_be_bytes(n),
        }
    }

    /// Writes the 25-byte text form `@` + 24 lowercase hex digits.
    pub fn write_hex(self, out: &mut [u8; 25]) {
        out[0] = b'@';
        for (i, byte) in self.to_bytes().iter().enumerate() {
            out[1 + 2 * i] = HEX[(byte >> 4) as usize];
            out[2 + 2 * i] = HEX[(byte & 15) as usize];
        }
    }

    /// The 25-character text form.
    pub fn to_hex(self) -> String {
        let mut b = [0u8; 25];
        self.write_hex(&mut b);
        String::from_utf8_lossy(&b).into_owned()
    }

    /// Parses `@` + 24 hex digits (upper or lower case) at the start of `s`.
    pub fn parse_hex(s: &[u8]) -> Option<Tai64N> {
        if s.len() < 25 || s[0] != b'@' {
            return None;
        }
        let mut bytes = [0u8; 12];
        for (i, b) in bytes.iter_mut().enumerate() {
            let hi = (s[1 + 2 * i] as char).to_digit(16)?;
            let lo = (s[2 + 2 * i] as char).to_digit(16)?;
            *b = (hi * 16 + lo) as u8;
        }
        Some(Tai64N::from_bytes(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runit_label_matches_observed_runsv_stamp() {
        // compat.md 1.1: at unix 1795727123 runsv wrote 4000 0000 6b08 9f1d.
        let t = Tai64N::from_unix(1795727123, 0, Family::Runit);
        assert_eq!(t.secs, 0x4000_0000_6b08_9f1d);
        let s = Tai64N::from_unix(1795727123, 0, Family::S6);
        assert_eq!(s.secs - t.secs, 27);
    }

    #[test]
    fn s6_round_trip_across_leap_seconds() {
        for &u in &[0i64, 78796799, 78796800, 1483228799, 1483228800, 1795727123] {
            let l = Tai64N::from_unix(u, 7, Family::S6);
            assert_eq!(l.to_unix(Family::S6), (u, 7), "unix {u}");
            let r = Tai64N::from_unix(u, 7, Family::Runit);
            assert_eq!(r.to_unix(Family::Runit), (u, 7));
        }
    }

    #[test]
    fn hex_round_trip() {
        let t = Tai64N {
            secs: 0x4000_0000_6b08_9ea5,
            nanos: 0x2902_bae6,
        };
        assert_eq!(t.to_hex(), "@400000006b089ea52902bae6");
        assert_eq!(Tai64N::parse_hex(b"@400000006B089EA52902BAE6 x"), Some(t));
        assert_eq!(Tai64N::parse_hex(b"@400000006b089ea52902bae"), None);
        assert_eq!(Tai64N::parse_hex(b"#400000006b089ea52902bae6"), None);
        assert_eq!(Tai64N::from_bytes(&t.to_bytes()), t);
    }

    #[test]
    fn runit_nanos_end_in_500() {
        let t = Tai64N::now(Family::Runit);
        assert_eq!(t.nanos % 1000, 500);
    }
}
