//! runsvdir's LOG argument: a rolling error area kept in the process title, so that `ps`
//! shows the last characters the services wrote to the scanner's standard error.
//!
//! Behaviour (compat.md 8.1): the area is the text of the last command-line argument, as the
//! kernel laid it out in the process's initial stack. Its first 5 bytes stay as they are;
//! every non-NUL byte received is appended at the end after the bytes from offset 5 on are
//! shifted left by one (newlines included). The area keeps its length, and the NUL that ends
//! it is never touched, so `ps` and `/proc/PID/cmdline` show the new text at once.
//!
//! Design: the shifting is a pure function on a byte slice ([`roll`]), unit-tested on plain
//! buffers; [`Title`] only finds the argument memory and applies [`roll`] to it. The memory
//! access is tested by re-running the test binary itself as a child with a long last argument
//! and reading the child's `/proc/PID/cmdline` from the parent (see the tests below).
//!
//! Caveat: Rust's `std::env::args()` reads the saved argv pointers afresh on every call, so
//! once the title has been changed, it returns the changed text for the last argument. Take
//! the arguments before calling [`Title::init`].

use std::fs;

/// How many leading bytes of the area never change.
pub const KEEP: usize = 5;

/// runsvdir's minimum length of the LOG argument.
pub const MIN_LEN: usize = 7;

/// First warning runsvdir prints when LOG is shorter than [`MIN_LEN`]:
/// `warning: log must have at least seven characters.`
pub const WARN_SHORT: &str = "warning: log must have at least seven characters.";

/// Second warning runsvdir prints in that case: `warning: log service disabled.`
pub const WARN_DISABLED: &str = "warning: log service disabled.";

/// Appends `bytes` to the rolling area `area`: NUL bytes are skipped; for every other byte,
/// `area[KEEP..]` is shifted left by one and the byte stored last. Areas of `KEEP` bytes or
/// fewer do not change.
pub fn roll(area: &mut [u8], bytes: &[u8]) {
    if area.len() <= KEEP {
        return;
    }
    let tail = &mut area[KEEP..];
    let n = tail.len();
    let new: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
    if new.len() >= n {
        tail.copy_from_slice(&new[new.len() - n..]);
    } else {
        let k = new.len();
        tail.copy_within(k.., 0);
        tail[n - k..].copy_from_slice(&new);
    }
}

/// The process title's rolling area: the bytes of the last command-line argument, in the
/// process's own argument memory.
pub struct Title {
    /// Start of the last argument's text (not including its terminating NUL).
    ptr: *mut u8,
    len: usize,
}

/// Fields 48 and 49 of `/proc/self/stat` (arg_start, arg_end), Linux 3.5 and later.
fn arg_bounds() -> Option<(usize, usize)> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces and parentheses: count from its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts with field 3.
    let start = fields.get(48 - 3)?.parse().ok()?;
    let end = fields.get(49 - 3)?.parse().ok()?;
    Some((start, end))
}

impl Title {
    /// Finds the last argument's text in the process's argument memory. Returns `None` when
    /// it cannot be found or verified, or when it is shorter than `min_len` bytes (runsvdir
    /// uses [`MIN_LEN`] and then prints [`WARN_SHORT`] and [`WARN_DISABLED`]).
    ///
    /// At most one `Title` exists per process: calls after the first return `None`. While
    /// the title is being changed, no other thread may call `std::env::args` (it reads the
    /// same memory); a `Title` is neither `Send` nor `Sync`.
    pub fn init(min_len: usize) -> Option<Title> {
        static TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        if args.len() < 2 {
            return None;
        }
        let (start, end) = arg_bounds()?;
        let expected: Vec<u8> = {
            use std::os::unix::ffi::OsStrExt;
            let mut v = Vec::new();
            for a in &args {
                v.extend_from_slice(a.as_bytes());
                v.push(0);
            }
            v
        };
        if start == 0 || end <= start || end - start != expected.len() {
            return None;
        }
        // SAFETY: [arg_start, arg_end) is the argument block the kernel copied into this
        // process's initial stack at exec; it stays mapped, readable and writable for the
        // life of the process (the stack's top is never unmapped). We checked above that its
        // length matches the arguments std reports; reading it through a shared slice is
        // sound because nothing writes it meanwhile (only a `Title` does, and none exists
        // yet: the `TAKEN` flag lets only the first call get this far).
        let mem = unsafe { std::slice::from_raw_parts(start as *const u8, end - start) };
        if mem != expected.as_slice() {
            // The block was moved or rewritten (e.g. by prctl(PR_SET_MM)): do not touch it.
            return None;
        }
        let last = args.last().map(|a| a.len()).unwrap_or(0);
        if last < min_len {
            return None;
        }
        Some(Title {
            ptr: (end - 1 - last) as *mut u8,
            len: last,
        })
    }

    /// The area's current bytes.
    pub fn get(&self) -> Vec<u8> {
        // SAFETY: `ptr..ptr+len` lies inside the verified argument block (see `init`); Rust
        // code holds no reference into it: std keeps only the raw argv pointers and copies
        // the strings when `args()` is called.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }.to_vec()
    }

    /// Appends `bytes` to the area as runsvdir does (see [`roll`]).
    pub fn append(&mut self, bytes: &[u8]) {
        // SAFETY: the memory is this process's own initial stack (the argument block the
        // kernel wrote at exec), mapped writable for the process's whole life. No Rust
        // reference points into it: std saved only the raw argv pointers and copies the
        // strings out on each `args()` call, and the `&mut self` receiver ensures this is the
        // only live slice over the area. The terminating NUL at `ptr+len` is outside the slice
        // and stays, so C-string readers of argv stay within bounds.
        let area = unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) };
        roll(area, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    fn rolled(area: &str, input: &[u8]) -> String {
        let mut a = area.as_bytes().to_vec();
        roll(&mut a, input);
        String::from_utf8(a).unwrap()
    }

    #[test]
    fn roll_keeps_five_and_shifts() {
        assert_eq!(rolled("log: ......", b"a"), "log: .....a");
        assert_eq!(rolled("log: ......", b"ab"), "log: ....ab");
        assert_eq!(rolled("log: ......", b"a\0b"), "log: ....ab");
        assert_eq!(rolled("log: ......", b"x\n"), "log: ....x\n");
        assert_eq!(rolled("log: ......", b""), "log: ......");
        // More input than room: only the last bytes remain.
        assert_eq!(rolled("log: ......", b"0123456789"), "log: 456789");
        assert_eq!(rolled("log: ......", b"012345"), "log: 012345");
        // Exactly seven characters: two rolling bytes.
        assert_eq!(rolled("abcdefg", b"XYZ"), "abcdeYZ");
        // Too short to roll.
        assert_eq!(rolled("abcde", b"XYZ"), "abcde");
        assert_eq!(rolled("abc", b"XYZ"), "abc");
    }

    #[test]
    fn roll_byte_by_byte_equals_batch() {
        let input = b"one\ntwo\0three\nfour five six seven eight";
        let mut a = b"log: ....................".to_vec();
        for &c in input {
            roll(&mut a, &[c]);
        }
        let mut b = b"log: ....................".to_vec();
        roll(&mut b, input);
        assert_eq!(a, b);
        assert_eq!(&b[..5], b"log: ");
    }

    #[test]
    fn messages() {
        assert_eq!(
            WARN_SHORT,
            "warning: log must have at least seven characters."
        );
        assert_eq!(WARN_DISABLED, "warning: log service disabled.");
    }

    const CHILD_ENV: &str = "RSV_PROCTITLE_CHILD";
    const CHILD_TEST: &str = "proctitle::tests::child_probe";

    /// Runs only as the child of `title_in_own_argv`: changes its own title, reports, then
    /// waits for the parent to close its stdin.
    #[test]
    fn child_probe() {
        let Ok(mode) = std::env::var(CHILD_ENV) else {
            return;
        };
        let min = if mode == "short" { 64 } else { MIN_LEN };
        match Title::init(min) {
            None => println!("\nPROCTITLE-NONE"),
            Some(mut t) => {
                t.append(b"hello\0\n");
                t.append(b"world");
                assert!(Title::init(1).is_none(), "a second Title");
                println!(
                    "\nPROCTITLE-READY {}",
                    String::from_utf8_lossy(&t.get()).replace('\n', "\\n")
                );
            }
        }
        let mut s = String::new();
        let _ = std::io::stdin().read_line(&mut s);
    }

    /// Starts this test binary again with `last` as its last argument; returns the child's
    /// report line and its /proc/PID/cmdline read while it waits.
    fn probe(mode: &str, last: &str) -> (String, Vec<u8>) {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                CHILD_TEST,
                "--exact",
                "--nocapture",
                "--test-threads=1",
                last,
            ])
            .env(CHILD_ENV, mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        // The child blocks on stdin, so a kill bounds this wait if it never reports. The
        // killer stops as soon as the child is reaped, so it never signals a reused pid.
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let killer = std::thread::spawn(move || {
            let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                if std::time::Instant::now() >= end {
                    // SAFETY: kill(2) on our child, not yet reaped (`done` is unset).
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut report = String::new();
        let mut line = String::new();
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            if line.starts_with("PROCTITLE-") {
                report = line.trim_end().to_string();
                break;
            }
            line.clear();
        }
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        drop(child.stdin.take());
        let _ = child.wait();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = killer.join();
        (report, cmdline)
    }

    #[test]
    fn title_in_own_argv() {
        let last = "log: ..............................";
        let (report, cmdline) = probe("normal", last);
        let expect = "log: ...................hello\nworld";
        assert_eq!(expect.len(), last.len());
        assert_eq!(
            report,
            format!("PROCTITLE-READY {}", expect.replace('\n', "\\n"))
        );
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        // The last argument is rewritten in place; the ones before it are untouched.
        assert!(
            cmdline.ends_with(format!("{expect}\0").as_bytes()),
            "{cmdline:?}"
        );
        assert!(args.contains(&CHILD_TEST.as_bytes()), "{cmdline:?}");
        assert!(!cmdline.windows(last.len()).any(|w| w == last.as_bytes()));
    }

    #[test]
    fn title_too_short() {
        let (report, cmdline) = probe("short", "log: .......");
        assert_eq!(report, "PROCTITLE-NONE");
        assert!(cmdline.ends_with(b"log: .......\0"), "{cmdline:?}");
    }
}
