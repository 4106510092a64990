//! `rsvtai64nlocal`: replaces a TAI64N label at the start of each line by local time.
//!
//! Two styles, matching the two reference programs byte for byte on well-formed input:
//!
//! - [`Style::S6`] (`s6-tai64nlocal`): a label is `@` followed by exactly 24 hex digits (either
//!   case) and must be followed by at least one more byte of the same line (the newline counts).
//!   The label is read in the s6 family: the leap-second table is subtracted and an instant inside
//!   an inserted leap second is shown as `:60`. Labels before 1970 or that the C library cannot
//!   convert are left untouched. The nanosecond field is printed with 9 digits (a value of 10^9 or
//!   more is cut to its first 9 digits, as the reference does). A final line without a newline is
//!   converted like any other.
//! - [`Style::Daemontools`] (`tai64nlocal`): `@` followed by any run of lowercase hex digits; the
//!   last 8 digits are the nanoseconds, the 16 before them the seconds label, read with the
//!   constant +10 offset (no leap table). The label ends at the first other byte, which is kept.
//!   When input ends inside the hex digits, that partial line is dropped (as the reference does).
//!   Where the reference would crash (a time the C library cannot convert), the line is left
//!   untouched.
//!
//! Local time comes from `localtime_r(3)` and so honours `TZ`. For the s6 style, a "right/" time
//! zone (one whose `time_t` counts leap seconds) is detected at start and then fed the TAI count
//! directly, which is what s6-tai64nlocal does too.
//!
//! The filter streams: input is read in large blocks and written through one output buffer; only
//! the first 26 bytes of a line that starts with `@` are ever copied.

use std::io::{self, Read, Write};

use crate::tai::{TAI64_BASE, Tai64N, leap_table};

/// Which reference program to behave like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `s6-tai64nlocal` (s6 family, leap table subtracted).
    S6,
    /// daemontools' `tai64nlocal` (runit family: constant +10 offset).
    Daemontools,
}

/// Options of the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub style: Style,
    /// Print UTC instead of local time (`s6-tai64nlocal -g`).
    pub utc: bool,
}

/// Where a failure happened: reading the input or writing the output.
#[derive(Debug)]
pub enum FilterError {
    Read(io::Error),
    Write(io::Error),
}

/// 2^62 + 10: the label of 1970-01-01 00:00:00 UTC in the runit family.
const RUNIT_EPOCH: u64 = TAI64_BASE + 10;

/// Length of a text label: `@` + 24 hex digits.
const LABEL: usize = 25;

// SAFETY: tzset(3) is a plain POSIX function without arguments; declared here because the libc
// crate does not export it on every unix target.
unsafe extern "C" {
    fn tzset();
}

/// Broken-down time for a unix time, local or UTC; `None` when the C library cannot represent it.
fn broken_down(t: i64, utc: bool) -> Option<libc::tm> {
    // time_t is 64 bits on every target rsv supports.
    let tt: libc::time_t = t;
    // SAFETY: an all-zero `struct tm` is a valid value (integers and a null tm_zone pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live, properly aligned locals; the *_r variants write only
    // into `tm` and keep no reference to it.
    let r = unsafe {
        if utc {
            libc::gmtime_r(&tt, &mut tm)
        } else {
            libc::localtime_r(&tt, &mut tm)
        }
    };
    if r.is_null() { None } else { Some(tm) }
}

/// Appends `v` in decimal, zero-padded to `width` digits.
fn push_num(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut n = v;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for _ in (digits.len() - i)..width {
        out.push(b'0');
    }
    out.extend_from_slice(&digits[i..]);
}

/// Turns labels into text, remembering the last second it formatted (log files have many lines
/// per second, so most lines cost no call into the C library).
pub struct Converter {
    opts: Options,
    /// The local zone counts leap seconds in `time_t` (a "right/" zone).
    right_zone: bool,
    /// Key of the cached prefix: unix time and whether it is a leap second.
    cached: Option<(i64, bool)>,
    /// `YYYY-MM-DD HH:MM:SS.` of `cached`.
    prefix: Vec<u8>,
    /// The text of the last conversion.
    text: Vec<u8>,
}

impl Converter {
    pub fn new(opts: Options) -> Converter {
        // SAFETY: tzset only (re)reads TZ into the C library's own state; we are about to call
        // localtime_r, which depends on that state, from this thread only.
        unsafe { tzset() };
        // In a right/ zone, time_t 78796800 is the first inserted leap second, shown as :60.
        let right_zone = opts.style == Style::S6
            && !opts.utc
            && broken_down(leap_table()[0], false).is_some_and(|tm| tm.tm_sec == 60);
        Converter {
            opts,
            right_zone,
            cached: None,
            prefix: Vec::with_capacity(48),
            text: Vec::with_capacity(64),
        }
    }

    /// Unix time and leap flag of an s6-family seconds label; `None` before 1970.
    fn s6_unix(&self, secs: u64) -> Option<(i64, bool)> {
        let tai = i64::try_from(secs.checked_sub(RUNIT_EPOCH)?).ok()?;
        if self.right_zone {
            return Some((tai, false));
        }
        let mut passed = 0;
        for (j, &l) in leap_table().iter().enumerate() {
            // The j-th inserted second (0-based) has TAI count l + j.
            let leap = l + j as i64;
            if tai == leap {
                return Some((l - 1, true));
            }
            if tai < leap {
                break;
            }
            passed += 1;
        }
        Some((tai - passed, false))
    }

    /// Fills `self.prefix` for (t, leap); false when the time cannot be converted.
    fn fill_prefix(&mut self, t: i64, leap: bool) -> bool {
        if self.cached == Some((t, leap)) {
            return true;
        }
        let Some(tm) = broken_down(t, self.opts.utc) else {
            self.cached = None;
            return false;
        };
        let p = &mut self.prefix;
        p.clear();
        // Both references print the year as an unsigned long of the int 1900 + tm_year.
        push_num(p, tm.tm_year.wrapping_add(1900) as i64 as u64, 0);
        p.push(b'-');
        push_num(p, (tm.tm_mon + 1) as u64, 2);
        p.push(b'-');
        push_num(p, tm.tm_mday as u64, 2);
        p.push(b' ');
        push_num(p, tm.tm_hour as u64, 2);
        p.push(b':');
        push_num(p, tm.tm_min as u64, 2);
        p.push(b':');
        push_num(p, if leap { 60 } else { tm.tm_sec as u64 }, 2);
        p.push(b'.');
        self.cached = Some((t, leap));
        true
    }

    /// Text for a 25-byte s6 label (`@` + 24 hex digits), or `None` to leave the line alone.
    pub fn s6_text(&mut self, label: &[u8]) -> Option<&[u8]> {
        let stamp = Tai64N::parse_hex(label)?;
        let (t, leap) = self.s6_unix(stamp.secs)?;
        if !self.fill_prefix(t, leap) {
            return None;
        }
        self.text.clear();
        self.text.extend_from_slice(&self.prefix);
        // Nine digits, zero-padded; a field of 10^9 or more keeps its first nine digits.
        let mut ten = [b'0'; 10];
        let mut v = stamp.nanos;
        for d in ten.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        let digits = if stamp.nanos >= 1_000_000_000 {
            &ten[..9]
        } else {
            &ten[1..]
        };
        self.text.extend_from_slice(digits);
        Some(&self.text)
    }

    /// Text for daemontools' accumulated seconds and nanoseconds, or `None` when the C library
    /// cannot convert the time.
    pub fn daemontools_text(&mut self, secs: u64, nanos: u64) -> Option<&[u8]> {
        let t = secs.wrapping_sub(RUNIT_EPOCH) as i64;
        if !self.fill_prefix(t, false) {
            return None;
        }
        self.text.clear();
        self.text.extend_from_slice(&self.prefix);
        push_num(&mut self.text, nanos, 9);
        Some(&self.text)
    }
}

/// Position of the first newline in `b`.
fn find_newline(b: &[u8]) -> Option<usize> {
    // SAFETY: memchr reads at most b.len() bytes from b's start, all inside the slice; the
    // returned pointer, when not null, points into the same slice.
    let p = unsafe { libc::memchr(b.as_ptr().cast(), b'\n' as i32, b.len()) };
    if p.is_null() {
        None
    } else {
        Some(p as usize - b.as_ptr() as usize)
    }
}

enum State {
    /// At the start of a line.
    Start,
    /// Copying the rest of a line unchanged, up to and including its newline.
    Pass,
    /// s6 style: collecting the first bytes of a line that starts with `@`.
    Head,
    /// daemontools style: reading the hex digits after `@`.
    Digits,
}

/// Copies `input` to `output`, converting labels. Returns at end of input after flushing.
pub fn filter<R: Read, W: Write>(
    input: &mut R,
    output: &mut W,
    opts: Options,
) -> Result<(), FilterError> {
    let mut conv = Converter::new(opts);
    let mut out = io::BufWriter::with_capacity(1 << 16, output);
    let mut buf = vec![0u8; 1 << 16];
    let mut state = State::Start;
    // s6 style: the first LABEL + 1 bytes of the current line.
    let mut head = [0u8; LABEL + 1];
    let mut head_len = 0;
    // daemontools style: the digits read so far, and their value.
    let mut digits: Vec<u8> = Vec::with_capacity(32);
    let (mut secs, mut nanos) = (0u64, 0u64);

    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = out.flush();
                return Err(FilterError::Read(e));
            }
        };
        let chunk = &buf[..n];
        let mut i = 0;
        while i < n {
            match state {
                State::Pass => match find_newline(&chunk[i..]) {
                    Some(k) => {
                        out.write_all(&chunk[i..=i + k])
                            .map_err(FilterError::Write)?;
                        i += k + 1;
                        state = State::Start;
                    }
                    None => {
                        out.write_all(&chunk[i..]).map_err(FilterError::Write)?;
                        i = n;
                    }
                },
                State::Start => {
                    if chunk[i] != b'@' {
                        state = State::Pass;
                    } else if opts.style == Style::S6 {
                        head_len = 0;
                        state = State::Head;
                    } else {
                        digits.clear();
                        secs = 0;
                        nanos = 0;
                        i += 1;
                        state = State::Digits;
                    }
                }
                State::Head if head_len == 0 && n - i > LABEL => {
                    // Fast path: the whole head is in this chunk.
                    let w = &chunk[i..=i + LABEL];
                    if let Some(k) = find_newline(&w[..LABEL]) {
                        out.write_all(&w[..=k]).map_err(FilterError::Write)?;
                        i += k + 1;
                        state = State::Start;
                        continue;
                    }
                    match conv.s6_text(&w[..LABEL]) {
                        Some(text) => {
                            out.write_all(text).map_err(FilterError::Write)?;
                            out.write_all(&w[LABEL..]).map_err(FilterError::Write)?;
                        }
                        None => out.write_all(w).map_err(FilterError::Write)?,
                    }
                    i += LABEL + 1;
                    state = if w[LABEL] == b'\n' {
                        State::Start
                    } else {
                        State::Pass
                    };
                }
                State::Head => {
                    let b = chunk[i];
                    head[head_len] = b;
                    head_len += 1;
                    i += 1;
                    if head_len == LABEL + 1 {
                        match conv.s6_text(&head[..LABEL]) {
                            Some(text) => {
                                out.write_all(text).map_err(FilterError::Write)?;
                                out.write_all(&head[LABEL..]).map_err(FilterError::Write)?;
                            }
                            None => out.write_all(&head).map_err(FilterError::Write)?,
                        }
                        state = if b == b'\n' {
                            State::Start
                        } else {
                            State::Pass
                        };
                    } else if b == b'\n' {
                        out.write_all(&head[..head_len])
                            .map_err(FilterError::Write)?;
                        state = State::Start;
                    }
                }
                State::Digits => {
                    let b = chunk[i];
                    let v = match b {
                        b'0'..=b'9' => b - b'0',
                        b'a'..=b'f' => b - b'a' + 10,
                        _ => {
                            // The label ends here; this byte belongs to the rest of the line.
                            match conv.daemontools_text(secs, nanos) {
                                Some(text) => out.write_all(text),
                                None => out.write_all(b"@").and_then(|()| out.write_all(&digits)),
                            }
                            .map_err(FilterError::Write)?;
                            state = State::Pass;
                            continue;
                        }
                    };
                    // 96-bit shift register: seconds take what falls off the 32-bit nanoseconds.
                    secs = (secs << 4).wrapping_add(nanos >> 28);
                    nanos = ((nanos & 0x0fff_ffff) << 4) + v as u64;
                    digits.push(b);
                    i += 1;
                }
            }
        }
    }
    // End of input: an s6 line shorter than a label plus one byte goes out unchanged; a
    // daemontools line cut inside its digits is dropped.
    if let State::Head = state {
        out.write_all(&head[..head_len])
            .map_err(FilterError::Write)?;
    }
    out.flush().map_err(FilterError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(input: &[u8], style: Style) -> Vec<u8> {
        let mut out = Vec::new();
        filter(&mut &input[..], &mut out, Options { style, utc: true }).unwrap();
        out
    }

    #[test]
    fn s6_example_from_compat() {
        assert_eq!(
            conv(b"@400000006b089ea52902bae6 x\n", Style::S6),
            b"2026-11-26 21:02:56.688044774 x\n"
        );
        assert_eq!(
            conv(b"@400000006b089ea52902bae6 x\n", Style::Daemontools),
            b"2026-11-26 21:03:23.688044774 x\n"
        );
    }

    #[test]
    fn s6_label_rules() {
        let s6 = |i: &[u8]| conv(i, Style::S6);
        assert_eq!(
            s6(b"@400000006B089EA52902BAE6x"),
            b"2026-11-26 21:02:56.688044774x"
        );
        assert_eq!(
            s6(b"@400000006b089ea52902bae6"),
            b"@400000006b089ea52902bae6"
        );
        assert_eq!(
            s6(b"@400000006b089ea52902bae6\n"),
            b"2026-11-26 21:02:56.688044774\n"
        );
        assert_eq!(
            s6(b"@400000000000000900000000 x\n"),
            b"@400000000000000900000000 x\n"
        );
        assert_eq!(
            s6(b"@400000000000000a3b9aca00 x\n"),
            b"1970-01-01 00:00:00.100000000 x\n"
        );
        assert_eq!(
            s6(b"@40000000586846a400000000\n"),
            b"2016-12-31 23:59:60.000000000\n"
        );
        assert_eq!(
            s6(b"@40000000586846a500000000\n"),
            b"2017-01-01 00:00:00.000000000\n"
        );
        assert_eq!(s6(b"x\n\n@\n@4000"), b"x\n\n@\n@4000");
    }

    /// Hands out its data a few bytes at a time, so labels straddle reads.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = self.1 % 7 + 1;
            let n = self.1.min(self.0.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn split_reads_give_the_same_output() {
        let mut input = Vec::new();
        for i in 0..200u64 {
            let label = format!(
                "@{:016x}{:08x}",
                (1u64 << 62) + 37 + 1_700_000_000 + i * 977,
                i
            );
            input.extend_from_slice(label.as_bytes());
            match i % 5 {
                0 => input.extend_from_slice(b"\n"),
                1 => input.extend_from_slice(b" text\n\n"),
                2 => input.extend_from_slice(&label.as_bytes()[..(i % 25) as usize]),
                3 => input.extend_from_slice(b"\xff\0\n"),
                _ => input.extend_from_slice(b"x\n@400\n"),
            }
        }
        input.extend_from_slice(b"@400000006b089ea52902bae6 end");
        for style in [Style::S6, Style::Daemontools] {
            let opts = Options { style, utc: true };
            let whole = conv(&input, style);
            let mut split = Vec::new();
            filter(&mut Trickle(&input, 0), &mut split, opts).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&split),
                String::from_utf8_lossy(&whole)
            );
            assert!(whole.windows(5).filter(|w| w == b"2023-").count() > 100);
        }
    }

    #[test]
    fn daemontools_label_rules() {
        let dt = |i: &[u8]| conv(i, Style::Daemontools);
        // Uppercase is not hex for daemontools: the label ends at 'B'.
        assert_eq!(dt(b"@ffffffff\n"), b"@ffffffff\n");
        assert_eq!(
            dt(b"@400000006b089ea5ffffffff y"),
            b"2026-11-26 21:03:23.4294967295 y"
        );
        assert_eq!(dt(b"a\n@400000006b089ea5"), b"a\n");
        assert_eq!(
            dt(b"@400000006b089ea500000001\n"),
            b"2026-11-26 21:03:23.000000001\n"
        );
    }
}
