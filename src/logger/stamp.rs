//! Time stamps written in front of log lines: TAI64N labels and the text forms of svlogd
//! (`-tt`, `-ttt`, UTC, 10 µs) and s6-log (`T`, local time, nanoseconds).
//!
//! The clock is read once per input chunk; the text of the seconds part is cached so a
//! line costs a copy, not a conversion.

use crate::tai::{Family, Tai64N};
use std::time::{SystemTime, UNIX_EPOCH};

/// One reading of the clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    pub secs: i64,
    pub nanos: u32,
}

impl Now {
    pub fn read() -> Now {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Now {
                secs: d.as_secs() as i64,
                nanos: d.subsec_nanos(),
            },
            Err(_) => Now::default(),
        }
    }

    /// The TAI64N label of this instant in `family` (runit: µs*1000+500, s6: ns).
    pub fn tai(self, family: Family) -> Tai64N {
        Tai64N::from_unix(self.secs, self.tai_nanos(family), family)
    }

    /// The nanosecond field of the label (runit: microseconds * 1000 + 500).
    pub fn tai_nanos(self, family: Family) -> u32 {
        match family {
            Family::Runit => (self.nanos / 1000) * 1000 + 500,
            Family::S6 => self.nanos,
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn put2(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

#[allow(clippy::too_many_arguments)]
fn put_date_time(out: &mut [u8; 19], y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, sep: u8) {
    let y = y.clamp(0, 9999) as u32;
    put2(&mut out[0..2], y / 100);
    put2(&mut out[2..4], y % 100);
    out[4] = b'-';
    put2(&mut out[5..7], mo);
    out[7] = b'-';
    put2(&mut out[8..10], d);
    out[10] = sep;
    put2(&mut out[11..13], h);
    out[13] = b':';
    put2(&mut out[14..16], mi);
    out[16] = b':';
    put2(&mut out[17..19], s);
}

/// Which stamp goes in front of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `@` + 24 hex + space.
    Tai(Family),
    /// svlogd `-tt` (`_` between date and time) or `-ttt` (`T`): UTC, 5 fraction digits, space.
    Utc(u8),
    /// s6-log `T`: local time, 9 fraction digits, two spaces.
    Local,
}

/// Formats stamps, caching the part that only changes once per second (the date and time, or
/// the `@` and 16 hex digits of a TAI64N label with its leap-second lookup).
#[derive(Default)]
pub struct Stamper {
    cache_secs: Option<(i64, u8)>,
    cache: [u8; 19],
    tai_secs: Option<(i64, Family)>,
    tai_head: [u8; 17],
}

impl Stamper {
    /// Appends the stamp of `now` in form `kind` (including its trailing blank(s)) to `out`.
    pub fn push(&mut self, kind: Kind, now: Now, out: &mut Vec<u8>) {
        match kind {
            Kind::Tai(fam) => {
                let mut b = [0u8; 25];
                if self.tai_secs != Some((now.secs, fam)) {
                    now.tai(fam).write_hex(&mut b);
                    self.tai_head.copy_from_slice(&b[..17]);
                    self.tai_secs = Some((now.secs, fam));
                } else {
                    b[..17].copy_from_slice(&self.tai_head);
                    let n = now.tai_nanos(fam);
                    for (i, d) in b[17..].iter_mut().enumerate() {
                        *d = b"0123456789abcdef"[((n >> (28 - 4 * i)) & 15) as usize];
                    }
                }
                out.extend_from_slice(&b);
                out.push(b' ');
            }
            Kind::Utc(sep) => {
                self.fill(now.secs, sep, false);
                out.extend_from_slice(&self.cache);
                let f = now.nanos / 10_000;
                let mut b = *b".00000 ";
                let mut v = f;
                for i in (1..6).rev() {
                    b[i] = b'0' + (v % 10) as u8;
                    v /= 10;
                }
                out.extend_from_slice(&b);
            }
            Kind::Local => {
                self.fill(now.secs, b' ', true);
                out.extend_from_slice(&self.cache);
                let mut b = *b".000000000  ";
                let mut v = now.nanos;
                for i in (1..10).rev() {
                    b[i] = b'0' + (v % 10) as u8;
                    v /= 10;
                }
                out.extend_from_slice(&b);
            }
        }
    }

    fn fill(&mut self, secs: i64, sep: u8, local: bool) {
        let key = (secs, if local { 0 } else { sep });
        if self.cache_secs == Some(key) {
            return;
        }
        if local {
            let (y, mo, d, h, mi, s) = local_time(secs);
            put_date_time(&mut self.cache, y, mo, d, h, mi, s, sep);
        } else {
            let days = secs.div_euclid(86400);
            let rem = secs.rem_euclid(86400) as u32;
            let (y, mo, d) = civil_from_days(days);
            put_date_time(
                &mut self.cache,
                y,
                mo,
                d,
                rem / 3600,
                rem / 60 % 60,
                rem % 60,
                sep,
            );
        }
        self.cache_secs = Some(key);
    }
}

/// Reads the time zone (TZ, /etc/localtime) once; call before the first local stamp.
pub fn init_local_time() {
    // SAFETY: tzset only reads the environment and the zone files; called from the main
    // thread before any other thread of ours formats local times.
    unsafe { tzset() }
}

// SAFETY: the declaration matches POSIX `void tzset(void)`.
unsafe extern "C" {
    /// POSIX tzset(3) (not exported by the libc crate).
    fn tzset();
}

/// Local broken-down time of a unix time (UTC when the conversion fails).
fn local_time(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value for this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live, properly aligned locals; localtime_r is reentrant.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        let days = secs.div_euclid(86400);
        let rem = secs.rem_euclid(86400) as u32;
        let (y, mo, d) = civil_from_days(days);
        return (y, mo, d, rem / 3600, rem / 60 % 60, rem % 60);
    }
    (
        tm.tm_year as i64 + 1900,
        (tm.tm_mon + 1) as u32,
        tm.tm_mday as u32,
        tm.tm_hour as u32,
        tm.tm_min as u32,
        tm.tm_sec as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_text_matches_svlogd_layout() {
        let mut s = Stamper::default();
        let mut out = Vec::new();
        // 2026-11-26 21:32:22.646920 UTC
        let now = Now {
            secs: 1795743142,
            nanos: 646_920_123,
        };
        s.push(Kind::Utc(b'_'), now, &mut out);
        assert_eq!(out, b"2026-11-27_01:32:22.64692 ");
        out.clear();
        s.push(Kind::Utc(b'T'), now, &mut out);
        assert_eq!(out, b"2026-11-27T01:32:22.64692 ");
        out.clear();
        s.push(Kind::Tai(Family::Runit), now, &mut out);
        assert_eq!(out.len(), 26);
        assert_eq!(out[25], b' ');
    }

    #[test]
    fn cached_tai_labels_equal_fresh_ones() {
        // Around the 2016-12-31 leap second (unix 1483228800), both families, with the
        // cache warm (same second) and cold (new second, other family).
        let mut warm = Stamper::default();
        for secs in [1483228799i64, 1483228800, 1483228801] {
            for nanos in [0u32, 1, 999_999_999, 123_456_789] {
                for fam in [Family::Runit, Family::S6, Family::S6, Family::Runit] {
                    let now = Now { secs, nanos };
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    warm.push(Kind::Tai(fam), now, &mut a);
                    Stamper::default().push(Kind::Tai(fam), now, &mut b);
                    let mut hex = [0u8; 25];
                    now.tai(fam).write_hex(&mut hex);
                    assert_eq!(a, b);
                    assert_eq!(&a[..25], &hex);
                }
            }
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19723), (2024, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
