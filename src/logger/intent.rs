//! Exactly-once logging across a SIGKILL: the intent record of one log directory and the pure
//! decision of what a new logger must do with it.
//!
//! The input loop takes bytes out of its pipe only once they are on disk: it peeks a chunk
//! (see [`super::peek`]), hands its lines over, writes the output, then consumes exactly the
//! bytes it peeked. Before the first byte of a chunk's output is written, every log directory
//! gets an intent record (the file `intent`): the chunk (length, hash, the clock reading and
//! line state it was processed with) and where its output goes (inode of `current`, offset
//! in it, output length, output already written into earlier files). A rotation in the
//! middle updates the record twice: before renaming `current` (everything written so far is
//! final), and once the new `current` is open. After the consume the record is marked done.
//!
//! A logger that starts finds the record still active when its predecessor died between the
//! first write and the consume. [`assess`] says how much of the chunk's output is on disk;
//! a torn write (a kill stops `write()` at a page boundary) is truncated back to where the
//! chunk started in `current`. The input loop then compares the head of the pipe with the
//! recorded hash: the same bytes mean they were never consumed, so the chunk is processed
//! again with the recorded clock and only the output not yet on disk is written (none when
//! the write had completed); other bytes mean the consume had happened, nothing is redone.
//!
//! The record is written with one `pwrite` of less than a page, which a kill cannot tear,
//! and carries its own checksum anyway. It guards against a killed process, not against a
//! power failure (nothing is fsynced per chunk).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::stamp::Now;

/// The record's file name in a log directory.
pub const FILE: &str = "intent";

/// `rot` when no rotation is under way.
pub const NO_ROT: u64 = u64::MAX;

const MAGIC: &[u8; 8] = b"rsvint01";
const SIZE: usize = 8 + 8 * 13;

/// 64-bit hash of the chunk (not cryptographic: it tells one pipe head from the next).
pub fn hash(data: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ (data.len() as u64).wrapping_mul(K);
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        h = (h.rotate_left(23) ^ v).wrapping_mul(K);
    }
    for &b in words.remainder() {
        h = (h.rotate_left(23) ^ b as u64).wrapping_mul(K);
    }
    h ^= h >> 29;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^ (h >> 32)
}

/// One chunk in flight for one log directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub active: bool,
    /// Input bytes of the chunk and their hash.
    pub in_len: u64,
    pub hash: u64,
    /// The clock reading the chunk was processed with.
    pub now: Now,
    /// The chunk began in the middle of a line.
    pub mid: bool,
    /// Output bytes of the chunk for this directory.
    pub total: u64,
    /// Output bytes of the chunk already in earlier files (before a rotation).
    pub before: u64,
    /// `current` receiving the chunk's output, and where the chunk starts in it.
    pub cur_ino: u64,
    pub cur_off: u64,
    /// A rotation is under way: this many output bytes are final, none follow yet.
    pub rot: u64,
}

impl Record {
    pub fn encode(&self) -> [u8; SIZE] {
        let mut b = [0u8; SIZE];
        b[..8].copy_from_slice(MAGIC);
        let f = [
            self.active as u64,
            self.in_len,
            self.hash,
            self.now.secs as u64,
            self.now.nanos as u64,
            self.mid as u64,
            self.total,
            self.before,
            self.cur_ino,
            self.cur_off,
            self.rot,
            0,
        ];
        for (i, v) in f.iter().enumerate() {
            b[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        let sum = hash(&b[..SIZE - 8]);
        b[SIZE - 8..].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// None for a file that is not a whole, intact record.
    pub fn decode(b: &[u8]) -> Option<Record> {
        if b.len() != SIZE || &b[..8] != MAGIC {
            return None;
        }
        let w = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[8 + 8 * i..16 + 8 * i]);
            u64::from_le_bytes(a)
        };
        if w(12) != hash(&b[..SIZE - 8]) {
            return None;
        }
        Some(Record {
            active: w(0) != 0,
            in_len: w(1),
            hash: w(2),
            now: Now {
                secs: w(3) as i64,
                nanos: w(4) as u32,
            },
            mid: w(5) != 0,
            total: w(6),
            before: w(7),
            cur_ino: w(8),
            cur_off: w(9),
            rot: w(10),
        })
    }
}

/// What the directory holds of an interrupted chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assessment {
    /// Output bytes of the chunk that are on disk and stay (a redo skips them).
    pub written: u64,
    /// Cut `current` back to this length first (a torn or partial write).
    pub truncate: Option<u64>,
}

/// Decides from an active record and `current`'s (inode, length) — None when absent.
pub fn assess(r: &Record, current: Option<(u64, u64)>) -> Assessment {
    if r.rot != NO_ROT {
        // Everything up to the rotation was written, nothing after it.
        return Assessment {
            written: r.rot.min(r.total),
            truncate: None,
        };
    }
    match current {
        Some((ino, len)) if ino == r.cur_ino => {
            let here = len.saturating_sub(r.cur_off);
            if r.before.saturating_add(here) >= r.total {
                Assessment {
                    written: r.total,
                    truncate: None,
                }
            } else {
                Assessment {
                    written: r.before,
                    truncate: (len > r.cur_off).then_some(r.cur_off),
                }
            }
        }
        // `current` was replaced without a rotation mark: only by a start-up recovery that
        // had already cut it back to the chunk's start.
        _ => Assessment {
            written: r.before,
            truncate: None,
        },
    }
}

/// The open record file of one directory.
pub struct Journal {
    file: File,
    pub rec: Record,
}

impl Journal {
    /// Opens (creates) `dir/intent` and reads the record left there, if intact.
    pub fn open(dir: &Path) -> io::Result<(Journal, Option<Record>)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(dir.join(FILE))?;
        let mut b = [0u8; SIZE + 1];
        let mut n = 0;
        while n < b.len() {
            match file.read_at(&mut b[n..], n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let old = Record::decode(&b[..n]);
        let rec = Record {
            active: false,
            in_len: 0,
            hash: 0,
            now: Now::default(),
            mid: false,
            total: 0,
            before: 0,
            cur_ino: 0,
            cur_off: 0,
            rot: NO_ROT,
        };
        Ok((Journal { file, rec }, old))
    }

    /// Writes the record in place.
    pub fn save(&self) -> io::Result<()> {
        self.file.write_all_at(&self.rec.encode(), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        Record {
            active: true,
            in_len: 6500,
            hash: hash(b"abc"),
            now: Now {
                secs: 1_700_000_000,
                nanos: 5,
            },
            mid: false,
            total: 8000,
            before: 0,
            cur_ino: 42,
            cur_off: 1000,
            rot: NO_ROT,
        }
    }

    #[test]
    fn round_trip_and_damage() {
        let r = rec();
        let b = r.encode();
        assert_eq!(Record::decode(&b), Some(r));
        for i in [0, 9, 50, SIZE - 1] {
            let mut c = b;
            c[i] ^= 1;
            assert_eq!(Record::decode(&c), None, "byte {i}");
        }
        assert_eq!(Record::decode(&b[..SIZE - 1]), None);
        assert_eq!(Record::decode(b""), None);
    }

    #[test]
    fn hash_tells_chunks_apart() {
        assert_ne!(hash(b"line 1\n"), hash(b"line 2\n"));
        assert_ne!(hash(b""), hash(b"\0"));
        assert_ne!(hash(&[0u8; 16]), hash(&[0u8; 17]));
        assert_eq!(hash(b"same"), hash(b"same"));
    }

    #[test]
    fn decisions() {
        let r = rec();
        // Nothing written yet.
        assert_eq!(
            assess(&r, Some((42, 1000))),
            Assessment {
                written: 0,
                truncate: None
            }
        );
        // Complete: consume without writing.
        assert_eq!(assess(&r, Some((42, 9000))).written, 8000);
        // Torn at a page boundary: cut back to the chunk's start, write it all again.
        assert_eq!(
            assess(&r, Some((42, 4096))),
            Assessment {
                written: 0,
                truncate: Some(1000)
            }
        );
        // A rotation was under way after 3000 bytes: those stay, whatever `current` is.
        let rot = Record { rot: 3000, ..r };
        for cur in [None, Some((42, 4000)), Some((43, 0))] {
            assert_eq!(
                assess(&rot, cur),
                Assessment {
                    written: 3000,
                    truncate: None
                }
            );
        }
        // After a rotation: 3000 bytes in earlier files, the rest going to inode 43.
        let after = Record {
            before: 3000,
            cur_ino: 43,
            cur_off: 0,
            ..r
        };
        assert_eq!(assess(&after, Some((43, 5000))).written, 8000);
        assert_eq!(
            assess(&after, Some((43, 100))),
            Assessment {
                written: 3000,
                truncate: Some(0)
            }
        );
        // `current` replaced by a start-up recovery after the cut.
        assert_eq!(assess(&after, Some((44, 0))).written, 3000);
    }
}
