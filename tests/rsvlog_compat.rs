//! rsvlog against the real svlogd and s6-log: same files, same bytes modulo time stamps,
//! stamps readable by s6-tai64nlocal, both personalities and their detection.

mod common;

use common::{TempDir, bin, have_refs, logdir_content};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `prog args` with `input` on stdin, bounded; returns (code, stdout, stderr).
fn feed(prog: &Path, args: &[&str], input: &[u8], cwd: &Path) -> (i32, Vec<u8>, String) {
    let mut child = Command::new(prog)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(o) => o.expect("wait"),
        Err(_) => {
            common::kill_pid(pid);
            panic!("{prog:?} {args:?} did not finish");
        }
    };
    let _ = w.join();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rsvlog() -> PathBuf {
    bin("rsvlog")
}

/// A link to rsvlog named `name` (to start it as svlogd or s6-log).
fn as_named(t: &TempDir, name: &str) -> PathBuf {
    let d = t.path().join("bin");
    fs::create_dir_all(&d).unwrap();
    let p = d.join(name);
    if !p.exists() {
        std::os::unix::fs::symlink(rsvlog(), &p).unwrap();
    }
    p
}

/// (name, size, mode) of the files in `dir`, archive names replaced by `@X.s`/`@X.u`, sorted.
fn listing(dir: &Path) -> Vec<(String, u64, u32)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let m = e.metadata().unwrap();
            let n = if n.starts_with('@') && n.len() == 27 {
                format!("@X{}", &n[25..])
            } else {
                n
            };
            (n, m.len(), m.permissions().mode() & 0o7777)
        })
        .collect();
    v.sort();
    v
}

fn lines(n: usize, width: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..n {
        let s = format!("line {i:06} ");
        v.extend_from_slice(s.as_bytes());
        for k in 0..width.saturating_sub(s.len()) {
            v.push(b'a' + (k % 26) as u8);
        }
        v.push(b'\n');
    }
    v
}

/// Removes `@<24hex> ` and svlogd/s6 text stamps at line starts.
fn strip_stamps(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    s.lines()
        .map(|l| {
            let l = if l.starts_with('@') && l.len() >= 26 {
                &l[26..]
            } else {
                l
            };
            let is_text = l.len() >= 26
                && l.as_bytes()[4] == b'-'
                && l.as_bytes()[13] == b':'
                && l.as_bytes()[19] == b'.';
            if is_text {
                if l.as_bytes()[10] == b' ' {
                    l[31..].to_string()
                } else {
                    l[26..].to_string()
                }
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn svlogd_size_rotation_cuts_like_svlogd() {
    if !have_refs(&["svlogd"]) {
        return;
    }
    let t = TempDir::new("log-svrot");
    let input = lines(300, 40);
    for (name, prog) in [("ref", PathBuf::from("svlogd")), ("ours", rsvlog())] {
        let d = t.path().join(name);
        fs::create_dir(&d).unwrap();
        fs::write(d.join("config"), "s1000\nn5\n").unwrap();
        let (code, _, err) = feed(&prog, &["-l", "100", name], &input, t.path());
        assert_eq!(code, 0, "{name}: {err}");
    }
    let (r, o) = (t.path().join("ref"), t.path().join("ours"));
    assert_eq!(listing(&r), listing(&o));
    assert_eq!(logdir_content(&r), logdir_content(&o));
    // Cut at exactly s bytes with the default len (1000 >= s).
    let input = lines(30, 11);
    for (name, prog) in [("ref2", PathBuf::from("svlogd")), ("ours2", rsvlog())] {
        let d = t.path().join(name);
        fs::create_dir(&d).unwrap();
        fs::write(d.join("config"), "s100\n").unwrap();
        assert_eq!(feed(&prog, &[name], &input, t.path()).0, 0);
    }
    let (r, o) = (t.path().join("ref2"), t.path().join("ours2"));
    assert_eq!(listing(&r), listing(&o));
    assert_eq!(logdir_content(&o), input);
}

#[test]
fn svlogd_stamps_patterns_prefix_and_replacement() {
    if !have_refs(&["svlogd"]) {
        return;
    }
    let t = TempDir::new("log-svpat");
    let input = b"keep me\nDEBUG drop me\nERROR abcdefghijklmnopqrstuvwxyz\ntab\there\x01\n";
    let cfg = "-DEBUG*\ne*ERROR*\npPRE:\n";
    let mut outs = Vec::new();
    for (name, prog) in [("ref", PathBuf::from("svlogd")), ("ours", rsvlog())] {
        let d = t.path().join(name);
        fs::create_dir(&d).unwrap();
        fs::write(d.join("config"), cfg).unwrap();
        let (code, _, err) = feed(
            &prog,
            &["-tt", "-l", "10", "-b", "20", "-r", ".", "-R", "e", name],
            input,
            t.path(),
        );
        assert_eq!(code, 0);
        outs.push((
            strip_stamps(&fs::read(d.join("current")).unwrap()),
            strip_stamps(err.as_bytes()),
        ));
    }
    assert_eq!(outs[0], outs[1]);
    assert!(outs[1].0.contains("PRE:k..p m."), "{:?}", outs[1]);
    assert!(outs[1].1.contains("PRE:ERROR abcd..."), "{:?}", outs[1]);
    // -tt / -ttt layouts; -t readable by s6-tai64nlocal.
    let d = t.path().join("st");
    fs::create_dir(&d).unwrap();
    feed(&rsvlog(), &["-ttt", "st"], b"x\n", t.path());
    let c = fs::read_to_string(d.join("current")).unwrap();
    let b = c.as_bytes();
    assert_eq!((b[4], b[10], b[19], b[25]), (b'-', b'T', b'.', b' '), "{c}");
    assert_eq!(&c[26..], "x\n");
}

#[test]
fn tai_stamps_use_each_family_and_parse_with_s6_tai64nlocal() {
    if !have_refs(&["s6-tai64nlocal"]) {
        return;
    }
    let t = TempDir::new("log-tai");
    fs::create_dir(t.path().join("sv")).unwrap();
    let (code, _, _) = feed(&rsvlog(), &["-t", "sv"], b"hello\n", t.path());
    assert_eq!(code, 0);
    let (code, out, _) = feed(&rsvlog(), &["t", "1"], b"hello\n", t.path());
    assert_eq!(code, 0);
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sv = fs::read(t.path().join("sv/current")).unwrap();
    for (text, offset) in [(&sv, 10i64), (&out, 37)] {
        assert_eq!(text.len(), 32);
        assert_eq!(&text[25..], b" hello\n");
        let secs = i64::from_str_radix(std::str::from_utf8(&text[1..17]).unwrap(), 16).unwrap();
        let u = secs - (1i64 << 62) - offset;
        assert!((unix - u).abs() < 5, "stamp {u} vs now {unix}");
        let (_, conv, _) = feed(Path::new("s6-tai64nlocal"), &[], text, t.path());
        let conv = String::from_utf8_lossy(&conv);
        assert!(
            conv.ends_with(" hello\n") && conv.as_bytes()[4] == b'-',
            "{conv}"
        );
    }
    let nanos = u32::from_str_radix(std::str::from_utf8(&sv[17..25]).unwrap(), 16).unwrap();
    assert_eq!(nanos % 1000, 500, "runit nanoseconds end in 500");
}

#[test]
fn s6_script_matches_s6_log() {
    if !have_refs(&["s6-log"]) {
        return;
    }
    let t = TempDir::new("log-s6script");
    let input = b"line one\nERROR two\nthree ERROR\nfour\n";
    let mut res = Vec::new();
    for (name, prog) in [
        ("ref", PathBuf::from("s6-log")),
        ("ours", as_named(&t, "s6-log")),
    ] {
        let st = format!("=st-{name}");
        let dir = format!("./d-{name}");
        let args = [
            "t", "1", "T", "1", "pPFX", "1", "p", "-", "+ERROR", "2", &st, "-^three", "f", &dir,
        ];
        let (code, out, err) = feed(&prog, &args, input, t.path());
        assert_eq!(code, 0, "{name}: {err}");
        let status = fs::read(t.path().join(format!("st-{name}"))).unwrap();
        let d = t.path().join(format!("d-{name}"));
        res.push((
            strip_stamps(&out),
            err,
            status,
            fs::read(d.join("current")).unwrap(),
            listing(&d),
        ));
    }
    assert_eq!(res[0].0, res[1].0);
    assert_eq!(res[0].1, res[1].1);
    assert_eq!(res[0].2, res[1].2);
    assert_eq!(res[1].2.len(), 1001);
    assert_eq!(res[0].3, res[1].3);
    assert_eq!(res[0].4, res[1].4);
}

#[test]
fn s6_line_limit_splits_like_s6_log() {
    if !have_refs(&["s6-log"]) {
        return;
    }
    let t = TempDir::new("log-s6split");
    let mut input = vec![b'x'; 2500];
    input.push(b'\n');
    input.extend_from_slice(&[b'y'; 100]);
    input.extend_from_slice(b"\nshort\n");
    let (c1, o1, _) = feed(Path::new("s6-log"), &["-l", "100", "1"], &input, t.path());
    let (c2, o2, _) = feed(&rsvlog(), &["-l", "100", "1"], &input, t.path());
    assert_eq!((c1, c2), (0, 0));
    assert_eq!(o1, o2);
    // -l 0: never split, even beyond a megabyte
    let mut big = vec![b'z'; 3 << 20];
    big.push(b'\n');
    let (c4, o4, _) = feed(&rsvlog(), &["-l", "0", "1"], &big, t.path());
    assert_eq!((c4, o4 == big), (0, true));
    // a partial last line: s6-log drops it; rsvlog keeps it, newline-terminated.
    let (_, o3, _) = feed(&rsvlog(), &["1"], b"a\nb", t.path());
    assert_eq!(o3, b"a\nb\n");
}

#[test]
fn s6_rotation_and_trim_by_count_and_total_size() {
    let t = TempDir::new("log-s6rot");
    let input = lines(3000, 40);
    let (code, _, err) = feed(&rsvlog(), &["n3", "s4096", "./d"], &input, t.path());
    assert_eq!(code, 0, "{err}");
    let d = t.path().join("d");
    let l = listing(&d);
    let arch: Vec<_> = l.iter().filter(|x| x.0.starts_with('@')).collect();
    assert_eq!(arch.len(), 3, "{l:?}");
    for a in &arch {
        assert_eq!(a.2, 0o744);
        assert!(a.1 >= 4096 - 2048 && a.1 <= 4096, "{a:?}");
    }
    // every archive and current end with a whole line
    let all = logdir_content(&d);
    assert!(input.ends_with(&all));
    assert!(all.starts_with(b"line "));
    // S: total size cap
    let (code, _, _) = feed(
        &rsvlog(),
        &["n100", "s4096", "S10000", "./e"],
        &input,
        t.path(),
    );
    assert_eq!(code, 0);
    let total: u64 = listing(&t.path().join("e"))
        .iter()
        .filter(|x| x.0.starts_with('@'))
        .map(|x| x.1)
        .sum();
    assert!(total <= 10000 && total > 5000, "{total}");
}

#[test]
fn processors_transform_rotated_files() {
    let t = TempDir::new("log-proc");
    let d = t.path().join("sv");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("config"), "s100\n!tr a-z A-Z\n").unwrap();
    let input = lines(30, 11);
    assert_eq!(feed(&rsvlog(), &["sv"], &input, t.path()).0, 0);
    let l = listing(&d);
    // The first rotation cuts at exactly s, as svlogd does. A rotation due while the processor
    // still runs is postponed instead of blocking input (rsvlog.8), so later archives may be
    // larger than s; at exit the postponed rotation is processed too.
    let s_files: Vec<_> = l.iter().filter(|x| x.0 == "@X.s").collect();
    assert!(s_files.len() >= 2, "{l:?}");
    assert_eq!(s_files[0].1, 100, "{l:?}");
    assert!(!l.iter().any(|x| x.0.ends_with(".u") || x.0.ends_with(".t")));
    let all = String::from_utf8(logdir_content(&d)).unwrap();
    assert!(all.starts_with("LINE 000000 \nLINE 000001 \n"), "{all}");
    let cur = fs::read(d.join("current")).unwrap();
    let upper = String::from_utf8(input.clone()).unwrap().to_uppercase();
    assert_eq!(all.len(), input.len());
    assert_eq!(
        &all.as_bytes()[..all.len() - cur.len()],
        &upper.as_bytes()[..all.len() - cur.len()]
    );
    // s6 style: `?` runs sh; state/newstate handled.
    let (code, _, err) = feed(
        &rsvlog(),
        &["s4096", "?tr a-z A-Z; echo done >&5", "./p6"],
        &lines(500, 40),
        t.path(),
    );
    assert_eq!(code, 0, "{err}");
    let p6 = t.path().join("p6");
    let l = listing(&p6);
    assert!(l.iter().any(|x| x.0 == "@X.s"), "{l:?}");
    assert!(!l.iter().any(|x| x.0 == "previous" || x.0 == "processed"));
    assert_eq!(fs::read_to_string(p6.join("state")).unwrap(), "done\n");
}

#[test]
fn started_as_reference_names_uses_their_interface_and_codes() {
    if !have_refs(&["svlogd", "s6-log"]) {
        return;
    }
    let t = TempDir::new("log-names");
    let sv = as_named(&t, "svlogd");
    let s6 = as_named(&t, "s6-log");
    // usage errors: svlogd exits 111, s6-log 100.
    let (c1, _, e1) = feed(&sv, &["-x", "d"], b"", t.path());
    let (c2, _, e2) = feed(Path::new("svlogd"), &["-x", "d"], b"", t.path());
    assert_eq!((c1, c2), (111, 111));
    assert_eq!(e1.replace("svlogd:", ""), e2.replace("svlogd:", ""));
    for script in [
        &["bogus"][..],
        &["t"][..],
        &["nabc", "1"][..],
        &[][..],
        &["-x", "1"][..],
        &["-d", "1", "1"][..],
        &["l60000", "1"][..],
        &["s99999999999", "1"][..],
    ] {
        let (a, _, ea) = feed(&s6, script, b"", t.path());
        let (b, _, eb) = feed(Path::new("s6-log"), script, b"", t.path());
        assert_eq!((a, &ea), (b, &eb), "{script:?}");
    }
    // a missing svlogd directory
    let (a, _, ea) = feed(&sv, &["nodir"], b"x\n", t.path());
    let (b, _, eb) = feed(Path::new("svlogd"), &["nodir"], b"x\n", t.path());
    assert_eq!((a, &ea), (b, &eb));
    // rsvlog picks the interface from its arguments
    fs::create_dir(t.path().join("plain")).unwrap();
    assert_eq!(feed(&rsvlog(), &["plain"], b"x\n", t.path()).0, 0);
    assert_eq!(fs::read(t.path().join("plain/current")).unwrap(), b"x\n");
    assert_eq!(
        listing(&t.path().join("plain"))
            .iter()
            .find(|x| x.0 == "lock")
            .unwrap()
            .2,
        0o600
    );
    let (c, out, _) = feed(&rsvlog(), &["n5", "./created", "1"], b"y\n", t.path());
    assert_eq!((c, out), (0, b"y\n".to_vec()));
    assert_eq!(fs::read(t.path().join("created/current")).unwrap(), b"y\n");
}

#[test]
fn forward_to_stdout_keeps_a_rotated_copy() {
    let t = TempDir::new("log-fwd");
    let input = lines(2000, 60);
    let (code, out, _) = feed(&rsvlog(), &["1", "n2", "s4096", "./keep"], &input, t.path());
    assert_eq!(code, 0);
    assert_eq!(out, input);
    let all = logdir_content(&t.path().join("keep"));
    assert!(!all.is_empty() && input.ends_with(&all));
}

#[test]
fn svlogd_udp_copies_match_svlogd() {
    if !have_refs(&["svlogd"]) {
        return;
    }
    let t = TempDir::new("log-udp");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut got = Vec::new();
    for (name, prog) in [("ref", PathBuf::from("svlogd")), ("ours", rsvlog())] {
        let d = t.path().join(name);
        fs::create_dir(&d).unwrap();
        fs::write(d.join("config"), format!("U127.0.0.1:{port}\npPRE:\n")).unwrap();
        let args = ["-t", "-l", "10", "-b", "20", name];
        let (code, _, _) = feed(&prog, &args, b"hello\nabcdefghijklmnopq\n", t.path());
        assert_eq!(code, 0);
        let mut pk = Vec::new();
        for _ in 0..2 {
            let mut buf = [0u8; 200];
            let n = sock.recv(&mut buf).unwrap();
            pk.push(strip_stamps(&buf[..n]));
        }
        // U: only sent, not written
        pk.push(String::from_utf8(fs::read(d.join("current")).unwrap()).unwrap());
        got.push(pk);
    }
    assert_eq!(got[0], got[1]);
    assert_eq!(got[1][1], "PRE:abcdefghij...");
}

#[test]
fn svlogd_writes_huge_lines_whole() {
    let t = TempDir::new("log-huge");
    let d = t.path().join("sv");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("config"), "s0\ne*\n").unwrap();
    let mut big = b"start ".to_vec();
    big.extend(std::iter::repeat_n(b'q', 3 << 20));
    big.extend_from_slice(b"\nafter\n");
    let (code, _, err) = feed(&rsvlog(), &["-l", "20", "-b", "100", "sv"], &big, t.path());
    assert_eq!(code, 0);
    assert_eq!(fs::read(d.join("current")).unwrap(), big);
    assert_eq!(err, "start qqqqqqqqqqqqqq...\nafter\n");
}

#[test]
fn s6_execline_processor() {
    if !have_refs(&["execlineb"]) {
        return;
    }
    let t = TempDir::new("log-exproc");
    let input = lines(500, 40);
    let (code, _, err) = feed(
        &rsvlog(),
        &["s4096", "!tr a-z A-Z", "./ex"],
        &input,
        t.path(),
    );
    assert_eq!(code, 0, "{err}");
    let d = t.path().join("ex");
    let l = listing(&d);
    // Rotations due while the processor runs are postponed, so fewer, larger archives.
    assert!(l.iter().filter(|x| x.0 == "@X.s").count() >= 1, "{l:?}");
    let all = logdir_content(&d);
    assert_eq!(all.len(), input.len());
    let upper = String::from_utf8(input.clone()).unwrap().to_uppercase();
    let cur = fs::read(d.join("current")).unwrap();
    assert_eq!(
        &all[..all.len() - cur.len()],
        &upper.as_bytes()[..all.len() - cur.len()]
    );
}
