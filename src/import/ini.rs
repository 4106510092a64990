//! The INI dialect of supervisord.conf (Python's configparser as supervisord configures it),
//! supervisord's `%(name)s` expansions, and the two value syntaxes it splits: commands
//! (POSIX shlex) and `environment` (`KEY="value",KEY2=value`).

use std::collections::HashMap;

use super::systemd::unit::{RT_CLOSE, RT_OPEN};

/// One `[section]` with its `key = value` pairs in file order (keys lower-cased; a key given
/// twice keeps the later value in place of the earlier one).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<(String, String)>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Removes an inline comment: `;` or `#` preceded by whitespace starts one.
fn strip_inline(v: &str) -> &str {
    let b = v.as_bytes();
    for i in 1..b.len() {
        if (b[i] == b';' || b[i] == b'#') && b[i - 1].is_ascii_whitespace() {
            return &v[..i];
        }
    }
    v
}

/// Parses the text of an INI file. Rules: `[name]` opens a section; `key = value` or
/// `key: value` (the first `=` or `:`); whole-line comments start with `;` or `#`; an inline
/// comment is `;` or `#` after whitespace; a line starting with whitespace continues the
/// previous value (joined with a newline); blank lines inside a continued value are kept
/// when more continuation follows. Sections given twice are merged. Errors name the line.
pub fn parse(text: &str) -> Result<Vec<Section>, String> {
    let mut out: Vec<Section> = Vec::new();
    // (section index, entry index) of the value being continued.
    let mut cont: Option<(usize, usize)> = None;
    let mut pending_blank = 0usize;
    for (n, raw) in text.lines().enumerate() {
        let lineno = n + 1;
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            if cont.is_some() {
                pending_blank += 1;
            }
            continue;
        }
        if trimmed.starts_with(';') || trimmed.starts_with('#') {
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if indented {
            if let Some((s, e)) = cont {
                let v = &mut out[s].entries[e].1;
                for _ in 0..pending_blank {
                    v.push('\n');
                }
                pending_blank = 0;
                if !v.is_empty() {
                    v.push('\n');
                }
                v.push_str(strip_inline(trimmed).trim_end());
                continue;
            }
        }
        pending_blank = 0;
        if let Some(rest) = trimmed.strip_prefix('[') {
            let Some(end) = rest.find(']') else {
                return Err(format!("line {lineno}: section header without ]"));
            };
            let name = rest[..end].trim().to_string();
            cont = None;
            if !out.iter().any(|s| s.name == name) {
                out.push(Section {
                    name,
                    line: lineno,
                    entries: Vec::new(),
                });
            } else {
                // Merge: move the section to the end so that new keys land in it.
                let i = out.iter().position(|s| s.name == name).unwrap();
                let s = out.remove(i);
                out.push(s);
            }
            continue;
        }
        let Some(si) = out.len().checked_sub(1) else {
            return Err(format!("line {lineno}: setting before any [section]"));
        };
        let pos = trimmed.find(['=', ':']);
        let Some(pos) = pos else {
            return Err(format!("line {lineno}: not a key = value line: {trimmed}"));
        };
        let key = trimmed[..pos].trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(format!("line {lineno}: empty key"));
        }
        let value = strip_inline(trimmed[pos + 1..].trim_start())
            .trim()
            .to_string();
        let sec = &mut out[si];
        let ei = match sec.entries.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                sec.entries[i].1 = value;
                i
            }
            None => {
                sec.entries.push((key, value));
                sec.entries.len() - 1
            }
        };
        cont = Some((si, ei));
    }
    Ok(out)
}

/// The value of a variable known only at run time (supervisord's `process_num` of a
/// template's instance): its expansion is a marked shell variable (see [`rt_expansion`]).
pub const RUNTIME: &str = "\u{1}";

/// The marked shell variable (`RT_OPEN name RT_CLOSE`, as the systemd importer marks
/// run-time text) that holds `%(name)<flags><conv>` at run time: `process_num_02d` for
/// `%(process_num)02d`. Its printf format is given back by [`rt_format`].
fn rt_expansion(name: &str, flags: &str, conv: char) -> Result<String, String> {
    let conv = match conv {
        'd' | 'i' => 'd',
        's' | 'r' => 's',
        _ => return Err(format!("unsupported conversion %({name}){conv}")),
    };
    if !flags.chars().all(|c| c.is_ascii_digit() || c == '-') {
        return Err(format!(
            "unsupported format %({name}){flags}{conv} for a value known at run time"
        ));
    }
    let flags = flags.replace('-', "L");
    Ok(format!("{RT_OPEN}{name}_{flags}{conv}{RT_CLOSE}"))
}

/// For a shell variable made by [`rt_expansion`]: the variable expanded and its printf
/// format (`process_num_02d` -> `("process_num", "%02d")`).
pub fn rt_format(var: &str) -> Option<(&str, String)> {
    let (name, spec) = var.rsplit_once('_')?;
    let conv = spec.chars().last().filter(|c| matches!(c, 'd' | 's'))?;
    let flags = &spec[..spec.len() - 1];
    flags
        .chars()
        .all(|c| c.is_ascii_digit() || c == 'L')
        .then(|| (name, format!("%{}{conv}", flags.replace('L', "-"))))
}

/// Expands Python %-formatting with named values as supervisord does: `%(name)s`,
/// `%(name)d`, with optional flags and width (`%(process_num)02d`), and `%%`.
pub fn expand(v: &str, vars: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut it = v.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.peek() {
            Some((_, '%')) => {
                it.next();
                out.push('%');
                continue;
            }
            Some((_, '(')) => {}
            _ => return Err(format!("a lone % in {v:?} (write %% for a percent sign)")),
        }
        let rest = &v[i + 2..];
        let Some(close) = rest.find(')') else {
            return Err(format!("unterminated %( in {v:?}"));
        };
        let name = &rest[..close];
        let after = &rest[close + 1..];
        let spec_len = after
            .find(|c: char| c.is_ascii_alphabetic())
            .ok_or_else(|| format!("bad format after %({name}) in {v:?}"))?;
        let flags = &after[..spec_len];
        let conv = after[spec_len..].chars().next().unwrap_or('s');
        let val = vars
            .get(name)
            .ok_or_else(|| format!("unknown expansion %({name}){conv}"))?;
        if val == RUNTIME {
            out.push_str(&rt_expansion(name, flags, conv)?);
            let target = i + 2 + close + 1 + spec_len + 1;
            while it.peek().is_some_and(|&(j, _)| j < target) {
                it.next();
            }
            continue;
        }
        let zero = flags.starts_with('0');
        let width: usize = flags.trim_start_matches(['0', '-']).parse().unwrap_or(0);
        let text = match conv {
            's' | 'r' => val.clone(),
            'd' | 'i' => {
                let n: i64 = val
                    .parse()
                    .map_err(|_| format!("%({name})d needs a number, got {val:?}"))?;
                n.to_string()
            }
            _ => return Err(format!("unsupported conversion %({name}){conv}")),
        };
        let padded = if text.len() >= width {
            text
        } else if flags.starts_with('-') {
            format!("{text:<width$}")
        } else if zero {
            format!("{text:0>width$}")
        } else {
            format!("{text:>width$}")
        };
        out.push_str(&padded);
        // Skip the consumed characters.
        let consumed = 2 + close + 1 + spec_len + 1;
        let target = i + consumed;
        while let Some(&(j, _)) = it.peek() {
            if j >= target {
                break;
            }
            it.next();
        }
    }
    Ok(out)
}

/// Splits a command line as Python's `shlex.split` (POSIX mode) does: whitespace separates
/// words; `'...'` is literal; in `"..."` a backslash escapes only `"` and `\`; outside
/// quotes a backslash escapes any character.
pub fn shlex_split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("no closing quotation".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("no closing quotation".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match it.next() {
                    Some(c) => cur.push(c),
                    None => return Err("no escaped character".into()),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parses supervisord's `environment` value: `KEY=value` pairs separated by commas, values
/// optionally quoted (a quoted value may hold commas).
pub fn env_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match (quote, c) {
            (None, ',') => parts.push(std::mem::take(&mut cur)),
            (None, '"' | '\'') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            _ => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err("no closing quotation".into());
    }
    parts.push(cur);
    let mut out = Vec::new();
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let Some((k, v)) = p.split_once('=') else {
            return Err(format!("not KEY=value: {p}"));
        };
        let k = k.trim();
        if k.is_empty() || k.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(format!("bad variable name: {k:?}"));
        }
        let words = shlex_split(v.trim())?;
        if words.len() > 1 {
            return Err(format!("value of {k} has unquoted spaces"));
        }
        out.push((k.to_string(), words.into_iter().next().unwrap_or_default()));
    }
    Ok(out)
}

/// Single-quotes a word for /bin/sh.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> HashMap<String, String> {
        [
            ("program_name", "web"),
            ("process_num", "3"),
            ("here", "/etc/sv"),
            ("ENV_HOME", "/root"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
    }

    #[test]
    fn sections_comments_and_continuations() {
        let text = "; top comment\n[program:a]\ncommand = run --x ; inline\nKey: v;not-comment\n# c\nenvironment=A=1,\n  B=2\n\n  C=3\n\n[program:b]\ncommand=x#y # c\n[program:a]\nuser=u\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        let a = s.iter().find(|s| s.name == "program:a").unwrap();
        assert_eq!(a.get("command"), Some("run --x"));
        assert_eq!(a.get("key"), Some("v;not-comment"));
        assert_eq!(a.get("environment"), Some("A=1,\nB=2\n\nC=3"));
        assert_eq!(a.get("user"), Some("u"));
        let b = s.iter().find(|s| s.name == "program:b").unwrap();
        assert_eq!(b.get("command"), Some("x#y"));
    }

    #[test]
    fn parse_errors_name_the_line() {
        assert!(parse("x=1\n").unwrap_err().contains("line 1"));
        assert!(parse("[a\n").unwrap_err().contains("line 1"));
        assert!(parse("[a]\njunk\n").unwrap_err().contains("line 2"));
        assert_eq!(parse("[a]\nk=\n").unwrap()[0].get("k"), Some(""));
    }

    #[test]
    fn expansions() {
        let v = vars();
        assert_eq!(
            expand("%(here)s/%(program_name)s_%(process_num)02d 100%%", &v).unwrap(),
            "/etc/sv/web_03 100%"
        );
        assert_eq!(expand("%(ENV_HOME)s", &v).unwrap(), "/root");
        assert!(expand("%(nope)s", &v).unwrap_err().contains("nope"));
        assert!(expand("50%", &v).is_err());
        assert_eq!(expand("%(process_num)3d|", &v).unwrap(), "  3|");
        let mut rt = v.clone();
        rt.insert("process_num".into(), RUNTIME.into());
        assert_eq!(
            expand("w_%(process_num)02d-%(process_num)d%(process_num)-3s", &rt).unwrap(),
            "w_\u{1}process_num_02d\u{2}-\u{1}process_num_d\u{2}\u{1}process_num_L3s\u{2}"
        );
        assert!(expand("%(process_num)+d", &rt).is_err());
        assert_eq!(
            rt_format("process_num_02d"),
            Some(("process_num", "%02d".into()))
        );
        assert_eq!(
            rt_format("process_num_L3s"),
            Some(("process_num", "%-3s".into()))
        );
        assert_eq!(
            rt_format("process_num_d"),
            Some(("process_num", "%d".into()))
        );
        assert_eq!(rt_format("nope"), None);
    }

    #[test]
    fn shlex() {
        assert_eq!(
            shlex_split(r#"a "b c" 'd e' f\ g "h\"i\n""#).unwrap(),
            vec!["a", "b c", "d e", "f g", "h\"i\\n"]
        );
        assert_eq!(shlex_split("''").unwrap(), vec![""]);
        assert!(shlex_split("'open").is_err());
    }

    #[test]
    fn environment_values() {
        assert_eq!(
            env_pairs(r#"A="x,y", B=plain ,C='q r',D="""#).unwrap(),
            vec![
                ("A".into(), "x,y".into()),
                ("B".into(), "plain".into()),
                ("C".into(), "q r".into()),
                ("D".into(), "".into())
            ]
        );
        assert!(env_pairs("A=b c").is_err());
        assert!(env_pairs("novalue").is_err());
        assert!(env_pairs("A=\"open").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("plain/x"), "plain/x");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}
