//! Every program has a man page with NAME, SYNOPSIS, DESCRIPTION and EXIT STATUS that renders
//! with `man -l` without warnings.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn every_program_has_a_clean_man_page_with_exit_codes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut progs: Vec<String> = fs::read_dir(root.join("src/bin"))
        .unwrap()
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            n.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    progs.sort();
    assert!(progs.len() >= 8, "{progs:?}");
    let have_man = Command::new("man").arg("--version").output().is_ok();
    for p in progs {
        let page = root.join("man").join(format!("{p}.8"));
        let text = fs::read_to_string(&page).unwrap_or_else(|_| panic!("no man page for {p}"));
        for sec in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH EXIT STATUS",
        ] {
            assert!(text.contains(sec), "{p}.8 lacks {sec}");
        }
        let exit = &text[text.find(".SH EXIT STATUS").unwrap()..];
        let exit = &exit[..exit[4..].find(".SH ").map_or(exit.len(), |i| i + 4)];
        assert!(
            exit.contains("100") || exit.contains("111"),
            "{p}.8: no exit codes"
        );
        if have_man {
            let (code, out, err) = common::run(
                Command::new("man")
                    .args(["--warnings", "-E", "UTF-8", "-l"])
                    .arg(&page)
                    .env("MANWIDTH", "80")
                    .env("LC_ALL", "C.UTF-8")
                    .env("MANPAGER", "cat")
                    .env("PAGER", "cat"),
                Duration::from_secs(20),
            );
            assert_eq!(code, 0, "{p}.8: {err}");
            assert_eq!(err, "", "{p}.8 renders with warnings");
            assert!(out.contains(&p), "{p}.8 rendered without its name");
        }
    }
}
