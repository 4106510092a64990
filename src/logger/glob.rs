//! svlogd's line patterns: `*` skips to the first occurrence of the next pattern character
//! (no backtracking), a trailing `*` matches the rest, `+c` matches one or more `c`, every
//! other character matches itself. The whole line must be consumed.

/// Does `pat` match all of `line`?
pub fn matches(pat: &[u8], line: &[u8]) -> bool {
    let (mut p, mut s) = (0usize, 0usize);
    loop {
        let Some(&c) = pat.get(p) else {
            return s == line.len();
        };
        p += 1;
        match c {
            b'*' => {
                let Some(&next) = pat.get(p) else {
                    return true;
                };
                match line[s..].iter().position(|&b| b == next) {
                    Some(i) => s += i,
                    None => return false,
                }
            }
            b'+' => {
                let Some(&next) = pat.get(p) else {
                    // A trailing `+` matches only the empty rest.
                    return s == line.len();
                };
                p += 1;
                if line.get(s) != Some(&next) {
                    return false;
                }
                while line.get(s) == Some(&next) {
                    s += 1;
                }
                if s == line.len() {
                    return true;
                }
            }
            _ => {
                if line.get(s) != Some(&c) {
                    return false;
                }
                s += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn svlogd_pattern_semantics() {
        assert!(matches(b"*", b"anything"));
        assert!(matches(b"*", b""));
        assert!(matches(b"foo*", b"foo bar"));
        assert!(!matches(b"foo", b"foo bar"));
        assert!(matches(b"*bar", b"foo bar"));
        assert!(!matches(b"*bar", b"foo barx"));
        // no backtracking: `*` stops at the first `b`
        assert!(!matches(b"*bar", b"ab bar"));
        assert!(!matches(b"a+b", b"aaab"));
        assert!(matches(b"+ab", b"aaab"));
        assert!(matches(b"x+a", b"xaaa"));
        assert!(!matches(b"x+a", b"x"));
        assert!(matches(b"", b""));
        assert!(!matches(b"", b"a"));
    }
}
