//! POSIX extended regular expressions through the C library, so that s6-log scripts select
//! exactly the lines s6-log selects.

use std::ffi::CString;

/// A compiled ERE (REG_EXTENDED | REG_NOSUB | REG_NEWLINE), searched unanchored.
pub struct Regex {
    re: Box<libc::regex_t>,
}

impl Regex {
    /// Compiles `pat`; the error text comes from regerror.
    pub fn new(pat: &[u8]) -> Result<Regex, String> {
        let c = CString::new(pat).map_err(|_| "NUL byte in regular expression".to_string())?;
        // SAFETY: regex_t is a plain C struct; all-zero is a valid starting value for regcomp.
        let mut re: Box<libc::regex_t> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `re` points to writable memory for one regex_t, `c` is NUL-terminated.
        let rc = unsafe {
            libc::regcomp(
                &mut *re,
                c.as_ptr(),
                libc::REG_EXTENDED | libc::REG_NOSUB | libc::REG_NEWLINE,
            )
        };
        if rc != 0 {
            let mut buf = [0u8; 256];
            // SAFETY: `re` was passed to regcomp; buf is writable for its length.
            let n = unsafe {
                libc::regerror(rc, &*re, buf.as_mut_ptr() as *mut libc::c_char, buf.len())
            };
            let n = n.min(buf.len()).saturating_sub(1);
            // regcomp failed: nothing to free (glibc frees on failure itself).
            return Err(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        Ok(Regex { re })
    }

    /// Searches `cstr`, which must end with a NUL byte (the match stops at the first NUL, as
    /// in s6-log).
    pub fn is_match_c(&self, cstr: &[u8]) -> bool {
        debug_assert_eq!(cstr.last(), Some(&0));
        if cstr.last() != Some(&0) {
            return false;
        }
        // SAFETY: the regex was compiled successfully; `cstr` is NUL-terminated and lives for
        // the call; with REG_NOSUB no match array is written.
        unsafe {
            libc::regexec(
                &*self.re,
                cstr.as_ptr() as *const libc::c_char,
                0,
                std::ptr::null_mut(),
                0,
            ) == 0
        }
    }
}

impl Drop for Regex {
    fn drop(&mut self) {
        // SAFETY: compiled successfully in `new`, freed exactly once here.
        unsafe { libc::regfree(&mut *self.re) }
    }
}

#[cfg(test)]
mod tests {
    use super::Regex;

    #[test]
    fn ere_search() {
        let r = Regex::new(b"ERR(OR)?[0-9]+").unwrap();
        assert!(r.is_match_c(b"an ERROR42 here\0"));
        assert!(r.is_match_c(b"ERR7\0"));
        assert!(!r.is_match_c(b"error 42\0"));
        assert!(Regex::new(b"a(").is_err());
        assert!(Regex::new(b"").unwrap().is_match_c(b"any\0"));
        let a = Regex::new(b"^x").unwrap();
        assert!(a.is_match_c(b"xy\0"));
        assert!(!a.is_match_c(b"yx\0"));
    }
}
