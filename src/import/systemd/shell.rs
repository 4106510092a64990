//! Shell text of the generated scripts: quoting of expanded unit text (a template's instance
//! becomes a variable), command words, and one step of a script.

use super::super::ini::sh_quote;
use super::unit::{Command, Piece, RT_CLOSE, RT_OPEN};

/// Shell text for expanded literal text: run-time parts (a template's instance, marked
/// with the name of the variable that holds it) are double-quoted variables, the rest
/// single-quoted.
pub fn sh_text(s: &str) -> String {
    if !s.contains(RT_OPEN) {
        return sh_quote(s);
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(RT_OPEN) {
        if i > 0 {
            out.push_str(&sh_quote(&rest[..i]));
        }
        let after = &rest[i + RT_OPEN.len_utf8()..];
        let j = after.find(RT_CLOSE).unwrap_or(after.len());
        out.push_str("\"${");
        out.push_str(&after[..j]);
        out.push_str("}\"");
        rest = after.get(j + RT_CLOSE.len_utf8()..).unwrap_or("");
    }
    if !rest.is_empty() {
        out.push_str(&sh_quote(rest));
    }
    out
}

pub fn sh_word(pieces: &[Piece]) -> String {
    let mut w = String::new();
    for p in pieces {
        match p {
            Piece::Lit(s) => w.push_str(&sh_text(s)),
            Piece::Var(n) => w.push_str(&format!("\"${{{n}}}\"")),
            Piece::SplitVar(n) => w.push_str(&format!("${{{n}}}")),
        }
    }
    if w.is_empty() { "''".into() } else { w }
}

/// A command as shell words, through `rsvexec` when it changes user or argv[0].
pub fn sh_command(c: &Command, user: Option<&str>) -> String {
    let mut words: Vec<String> = c.words.iter().map(|w| sh_word(w)).collect();
    let mut pre = Vec::new();
    if let Some(u) = user.filter(|_| !c.privileged) {
        pre.push(format!("-u {u}"));
    }
    if c.argv0 && words.len() >= 2 {
        let argv0 = words.remove(1);
        pre.push(format!("-b {argv0}"));
    }
    if pre.is_empty() {
        words.join(" ")
    } else {
        format!("rsvexec {} -- {}", pre.join(" "), words.join(" "))
    }
}

/// One step of a script: runs the command; a failure ends the script (unless `-`).
pub fn step(c: &Command, user: Option<&str>) -> String {
    let cmd = sh_command(c, user);
    if c.ignore_failure {
        format!("{cmd} || :\n")
    } else {
        format!("{cmd} || exit $?\n")
    }
}
