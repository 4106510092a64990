//! Giving memory back after bursts of work: a supervisor lives as long as its service, once
//! per service, and the scanner as long as the container, both mostly asleep, so what only
//! start-up (or a scan) needed should not stay resident. Supervisors call [`give_back`] once
//! after start-up, the scanner each time it goes to sleep after a scan.
//!
//! - The heap: glibc keeps freed pages; `malloc_trim` returns them.
//! - The program file: start-up code, tables and messages are mapped into the process as
//!   they are touched, 64 KiB around each fault. Dropping the page-table entries of the
//!   program's read-only mappings once start-up is over leaves mapped only what the poll
//!   loop touches afterwards. The pages stay in the page cache: this costs a few minor
//!   faults, never a read from disk.

use std::fs;

/// Trims the heap and the program's read-only file mappings (see the module text). Best
/// effort: errors are ignored; nothing changes for the program but its resident size.
pub fn give_back() {
    // Read the mappings first: the text read here is itself heap, given back just below.
    let ranges = fs::read_to_string("/proc/self/smaps")
        .map(|t| clean_file_ranges(&t))
        .unwrap_or_default();
    for &(start, end) in &ranges {
        // SAFETY: [start, end) is a whole mapping of this process, read from
        // /proc/self/smaps: private, not writable, backed by a file, and without a single
        // anonymous (copied-on-write) page. Dropping its page-table entries loses nothing:
        // the next access maps the same page-cache page again.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
    drop(ranges);
    // SAFETY: malloc_trim only walks glibc's own heap; no Rust reference points into freed
    // memory, and nothing else allocates concurrently (the callers are single-threaded).
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The private, read-only (`r--p`, `r-xp`), file-backed mappings of a /proc/PID/smaps text
/// that hold no anonymous page.
fn clean_file_ranges(smaps: &str) -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    let mut cur: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        if let Some(n) = line.strip_prefix("Anonymous:") {
            let anon = n.trim().trim_end_matches("kB").trim();
            if let Some(r) = cur.take() {
                if anon == "0" {
                    v.push(r);
                }
            }
            continue;
        }
        let mut w = line.split_whitespace();
        let (Some(range), Some(perms)) = (w.next(), w.next()) else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // A mapping header: range perms offset device inode [path].
        let inode = w.nth(2).unwrap_or("0");
        let path = w.next().unwrap_or("");
        let wanted = matches!(perms, "r--p" | "r-xp") && inode != "0" && path.starts_with('/');
        cur = (wanted && a < b).then_some((a, b));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_private_read_only_file_mappings() {
        let smaps = "\
00200000-00267000 r--p 00000000 fe:00 123 /usr/bin/rsv
Size:                412 kB
Rss:                 320 kB
Anonymous:             0 kB
00268000-00417000 r-xp 00067000 fe:00 123 /usr/bin/rsv
Rss:                 768 kB
Anonymous:             0 kB
00417000-0041c000 r--p 00215000 fe:00 123 /usr/bin/rsv
Rss:                  20 kB
Anonymous:             8 kB
0041c000-00420000 rw-p 00219000 fe:00 123 /usr/bin/rsv
Anonymous:            16 kB
7ffefb377000-7ffefb398000 rw-p 00000000 00:00 0                          [stack]
Anonymous:            16 kB
7f6eeeff6000-7f6eeeff8000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
7f0000000000-7f0000001000 r--s 00000000 fe:00 77 /dev/shm/x
Anonymous:             0 kB
";
        assert_eq!(
            clean_file_ranges(smaps),
            vec![(0x200000, 0x267000), (0x268000, 0x417000)]
        );
    }

    #[test]
    fn trimming_keeps_the_program_running() {
        give_back();
        // Code and tables whose entries were dropped work as before.
        let s: String = (0..1000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        assert_eq!(format!("{}", s.len()), "1000");
    }
}
