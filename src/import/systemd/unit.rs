//! systemd unit files as text: sections of `Key=Value` lines (with continuation lines and
//! comments), drop-ins merged in order, specifiers (`%i`, `%n`, ...), and the quoting rules
//! of command lines and of `Environment=`. Pure: the caller reads the files.

/// One unit, its files merged: every assignment in file order (main file first, then the
/// drop-ins sorted by name), as (section, key, value).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unit {
    /// Full unit name, e.g. `getty@tty1.service` (or `foo@.service` for a template).
    pub name: String,
    pub entries: Vec<(String, String, String)>,
}

/// Parses the text of one unit file or drop-in, appending its assignments to `unit`.
/// `file` names it in errors.
pub fn parse_into(unit: &mut Unit, text: &str, file: &str) -> Result<(), String> {
    let mut section = String::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, raw) in text.lines().enumerate() {
        let lineno = n + 1;
        let line = raw.trim_end_matches('\r');
        let (start, joined) = match pending.take() {
            Some((s, mut acc)) => {
                // A comment line inside a continuation is skipped.
                let t = line.trim_start();
                if t.starts_with('#') || t.starts_with(';') {
                    pending = Some((s, acc));
                    continue;
                }
                acc.push(' ');
                acc.push_str(line.trim_start());
                (s, acc)
            }
            None => (lineno, line.trim_start().to_string()),
        };
        if let Some(stripped) = joined.strip_suffix('\\') {
            pending = Some((start, stripped.to_string()));
            continue;
        }
        let l = joined.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if l.starts_with('[') {
            if !l.ends_with(']') || l.len() < 3 {
                return Err(format!("{file}:{start}: bad section header: {l}"));
            }
            section = l[1..l.len() - 1].to_string();
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            return Err(format!("{file}:{start}: not an assignment: {l}"));
        };
        if section.is_empty() {
            return Err(format!("{file}:{start}: assignment outside of a section"));
        }
        unit.entries
            .push((section.clone(), k.trim().to_string(), v.trim().to_string()));
    }
    if let Some((s, acc)) = pending {
        // A continuation at the end of the file: the line as it is.
        let l = acc.trim();
        if let Some((k, v)) = l.split_once('=') {
            unit.entries
                .push((section, k.trim().to_string(), v.trim().to_string()));
        } else if !l.is_empty() {
            return Err(format!("{file}:{s}: not an assignment: {l}"));
        }
    }
    Ok(())
}

impl Unit {
    /// The last value of a single-valued setting.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
    }

    /// The values of a list setting: an empty assignment empties the list so far.
    pub fn list(&self, section: &str, key: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for (s, k, v) in &self.entries {
            if s == section && k == key {
                if v.is_empty() {
                    out.clear();
                } else {
                    out.push(v.as_str());
                }
            }
        }
        out
    }

    /// The unit name without its type suffix (`foo@bar`, `nginx`).
    pub fn stem(&self) -> &str {
        self.name.rsplit_once('.').map_or(&self.name, |(a, _)| a)
    }

    /// `(prefix, instance)` for `foo@bar.service`; instance empty for a template.
    pub fn template_parts(&self) -> Option<(&str, &str)> {
        self.stem().split_once('@')
    }
}

/// What the instance stands for when specifiers are expanded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instance<'a> {
    /// Not a template, or a template instantiated at import time.
    Fixed(&'a str),
    /// A template: the instance is known only at run time, in the variable of this name.
    Runtime(&'a str),
}

/// systemd's unescaping of an instance or prefix (`\x2d` to `-`, `-` to `/`) for `%I`, `%P`.
pub fn unescape_name(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            if let Ok(v) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(if b[i] == b'-' { b'/' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Marks the start and end of a run-time expression in expanded text (turned into shell
/// by the caller; cannot appear in unit files).
pub const RT_OPEN: char = '\u{1}';
pub const RT_CLOSE: char = '\u{2}';

/// Expands the specifiers of `v`. A run-time instance comes out as
/// `RT_OPEN expr RT_CLOSE`. Returns the text and the specifiers that were not known.
pub fn expand_specifiers(v: &str, unit: &Unit, inst: Instance) -> (String, Vec<char>) {
    let mut out = String::new();
    let mut unknown = Vec::new();
    let mut it = v.chars();
    let (prefix, _) = unit.template_parts().unwrap_or((unit.stem(), ""));
    let ty = unit.name.rsplit_once('.').map_or("service", |(_, t)| t);
    let rt = |out: &mut String, expr: &str| {
        out.push(RT_OPEN);
        out.push_str(expr);
        out.push(RT_CLOSE);
    };
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(s) = it.next() else {
            out.push('%');
            break;
        };
        match s {
            '%' => out.push('%'),
            'n' | 'N' => {
                let base = match inst {
                    Instance::Fixed(i) if unit.template_parts().is_some() => {
                        format!("{prefix}@{i}")
                    }
                    Instance::Runtime(e) => {
                        out.push_str(&format!("{prefix}@"));
                        rt(&mut out, e);
                        if s == 'n' {
                            out.push_str(&format!(".{ty}"));
                        }
                        continue;
                    }
                    _ => unit.stem().to_string(),
                };
                out.push_str(&base);
                if s == 'n' {
                    out.push_str(&format!(".{ty}"));
                }
            }
            'p' => out.push_str(prefix),
            'P' => out.push_str(&unescape_name(prefix)),
            'i' | 'I' => match inst {
                Instance::Fixed(i) => out.push_str(&if s == 'I' {
                    unescape_name(i)
                } else {
                    i.to_string()
                }),
                Instance::Runtime(e) => rt(&mut out, e),
            },
            'j' => out.push_str(prefix.rsplit('-').next().unwrap_or(prefix)),
            't' => out.push_str("/run"),
            'S' => out.push_str("/var/lib"),
            'C' => out.push_str("/var/cache"),
            'L' => out.push_str("/var/log"),
            'E' => out.push_str("/etc"),
            'T' => out.push_str("/tmp"),
            'V' => out.push_str("/var/tmp"),
            'h' => out.push_str("/root"),
            'u' => out.push_str("root"),
            'U' => out.push('0'),
            other => {
                unknown.push(other);
                out.push('%');
                out.push(other);
            }
        }
    }
    (out, unknown)
}

/// One word of a command line, as pieces: literal text, or a variable reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    /// `${NAME}` inside a word: its value, as one word.
    Var(String),
    /// `$NAME` as a whole word: its value split at whitespace into words.
    SplitVar(String),
}

/// One command of an `Exec*=` line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// `-`: a failure is ignored.
    pub ignore_failure: bool,
    /// `@`: the second word is argv[0].
    pub argv0: bool,
    /// `+`, `!` or `!!`: run with full privileges (User=/Group= not applied).
    pub privileged: bool,
    /// `:`: no variable expansion.
    pub no_expand: bool,
    pub words: Vec<Vec<Piece>>,
}

fn c_escape(it: &mut std::iter::Peekable<std::str::Chars>) -> Result<String, String> {
    let Some(c) = it.next() else {
        return Err("a backslash at the end".into());
    };
    Ok(match c {
        'n' => "\n".into(),
        't' => "\t".into(),
        'r' => "\r".into(),
        'a' => "\u{7}".into(),
        'b' => "\u{8}".into(),
        'f' => "\u{c}".into(),
        'v' => "\u{b}".into(),
        's' => " ".into(),
        'x' => {
            let h: String = [it.next(), it.next()].into_iter().flatten().collect();
            let v = u8::from_str_radix(&h, 16).map_err(|_| format!("bad escape \\x{h}"))?;
            (v as char).to_string()
        }
        other => other.to_string(),
    })
}

/// Splits an `Exec*=` value into commands (separated by a lone `;` word), with systemd's
/// prefixes, quoting and escapes. `$NAME`/`${NAME}` become [`Piece::Var`]s unless the
/// command has the `:` prefix; `$$` is a literal `$`.
pub fn parse_exec(v: &str) -> Result<Vec<Command>, String> {
    let mut cmds = Vec::new();
    let mut cur = Command::default();
    let mut at_start = true;
    let mut it = v.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        let Some(&first) = it.peek() else { break };
        if at_start {
            // Prefixes come first, glued to the path.
            let mut any = false;
            while let Some(&c) = it.peek() {
                match c {
                    '-' => cur.ignore_failure = true,
                    '@' => cur.argv0 = true,
                    '+' | '!' => cur.privileged = true,
                    ':' => cur.no_expand = true,
                    '|' => {}
                    _ => break,
                }
                any = true;
                it.next();
            }
            let _ = any;
            at_start = false;
            if it.peek().is_none_or(|c| c.is_whitespace()) {
                return Err("a prefix without a command".into());
            }
            continue;
        }
        let _ = first;
        // One word.
        let mut pieces: Vec<Piece> = Vec::new();
        let mut lit = String::new();
        let mut quote: Option<char> = None;
        let mut whole_var: Option<String> = None;
        let mut word_len = 0usize;
        while let Some(&c) = it.peek() {
            if quote.is_none() && c.is_whitespace() {
                break;
            }
            it.next();
            word_len += 1;
            match (quote, c) {
                (None, '"') | (None, '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => lit.push_str(&c_escape(&mut it)?),
                (_, '$') if !cur.no_expand => match it.peek() {
                    Some('$') => {
                        it.next();
                        lit.push('$');
                    }
                    Some('{') => {
                        it.next();
                        let mut name = String::new();
                        loop {
                            match it.next() {
                                Some('}') => break,
                                Some(ch) => name.push(ch),
                                None => return Err("unterminated ${".into()),
                            }
                        }
                        if !lit.is_empty() {
                            pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                        }
                        pieces.push(Piece::Var(name));
                    }
                    Some(ch) if ch.is_ascii_alphabetic() || *ch == '_' => {
                        let mut name = String::new();
                        while let Some(&ch) = it.peek() {
                            if ch.is_ascii_alphanumeric() || ch == '_' {
                                name.push(ch);
                                it.next();
                            } else {
                                break;
                            }
                        }
                        if word_len == 1
                            && quote.is_none()
                            && it.peek().is_none_or(|c| c.is_whitespace())
                        {
                            whole_var = Some(name);
                        } else {
                            // Inside a word systemd expands ${NAME} only: $NAME stays as is.
                            lit.push('$');
                            lit.push_str(&name);
                        }
                    }
                    _ => lit.push('$'),
                },
                (_, c) => lit.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        if let Some(n) = whole_var {
            pieces = vec![Piece::SplitVar(n)];
        } else if !lit.is_empty() || pieces.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        if pieces == [Piece::Lit(";".into())] {
            if cur.words.is_empty() {
                return Err("an empty command before ;".into());
            }
            cmds.push(std::mem::take(&mut cur));
            at_start = true;
            continue;
        }
        cur.words.push(pieces);
    }
    if !cur.words.is_empty() {
        cmds.push(cur);
    } else if !cmds.is_empty() {
        return Err("an empty command after ;".into());
    }
    Ok(cmds)
}

/// Splits an `Environment=` value into `NAME=value` assignments (quotes group, escapes as
/// in command lines, no variable expansion).
pub fn parse_environment(v: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = v.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.peek().is_none() {
            break;
        }
        let mut w = String::new();
        let mut quote = None;
        while let Some(&c) = it.peek() {
            if quote.is_none() && c.is_whitespace() {
                break;
            }
            it.next();
            match (quote, c) {
                (None, '"') | (None, '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, '\\') => w.push_str(&c_escape(&mut it)?),
                (_, c) => w.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        let Some((k, val)) = w.split_once('=') else {
            return Err(format!("not an assignment: {w}"));
        };
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("not a variable name: {k}"));
        }
        out.push((k.to_string(), val.to_string()));
    }
    Ok(out)
}

/// A systemd time span in milliseconds (`90`, `5s`, `1min 30s`, `500ms`, `infinity` =
/// `None`). A bare number is seconds (or `bare_unit_ms` per unit, for `*USec=` keys).
pub fn time_span_ms(v: &str, bare_unit_ms: f64) -> Result<Option<u64>, String> {
    let v = v.trim();
    if v == "infinity" {
        return Ok(None);
    }
    let mut total = 0f64;
    let mut rest = v;
    if rest.is_empty() {
        return Err("empty time span".into());
    }
    while !rest.is_empty() {
        rest = rest.trim_start();
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n_end]
            .parse()
            .map_err(|_| format!("bad time span: {v}"))?;
        rest = rest[n_end..].trim_start();
        let u_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..u_end];
        rest = &rest[u_end..];
        let ms = match unit {
            "" => bare_unit_ms,
            "us" | "usec" => 0.001,
            "ms" | "msec" => 1.0,
            "s" | "sec" | "second" | "seconds" => 1000.0,
            "m" | "min" | "minute" | "minutes" => 60_000.0,
            "h" | "hr" | "hour" | "hours" => 3_600_000.0,
            "d" | "day" | "days" => 86_400_000.0,
            _ => return Err(format!("bad time unit in {v}")),
        };
        total += num * ms;
    }
    Ok(Some(total.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(text: &str) -> Unit {
        let mut u = Unit {
            name: "foo@bar-baz.service".into(),
            ..Unit::default()
        };
        parse_into(&mut u, text, "t").unwrap();
        u
    }

    #[test]
    fn sections_continuations_lists() {
        let u = unit(
            "# c\n[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/a \\\n  b\\\n# note\n c\nExecStartPre=/x\nExecStartPre=\nExecStartPre=/y\n",
        );
        assert_eq!(u.get("Unit", "Description"), Some("x"));
        assert_eq!(u.get("Service", "ExecStart"), Some("/bin/a  b c"));
        assert_eq!(u.list("Service", "ExecStartPre"), vec!["/y"]);
        let mut bad = Unit::default();
        assert!(
            parse_into(&mut bad, "Foo=1\n", "f")
                .unwrap_err()
                .contains("f:1")
        );
        assert!(parse_into(&mut bad, "[Service]\nnonsense\n", "f").is_err());
    }

    #[test]
    fn specifiers() {
        let u = unit("");
        let (s, unk) =
            expand_specifiers("%n %N %p %i %I %% %t/%p %Z", &u, Instance::Fixed("bar-baz"));
        assert_eq!(
            s,
            "foo@bar-baz.service foo@bar-baz foo bar-baz bar/baz % /run/foo %Z"
        );
        assert_eq!(unk, vec!['Z']);
        let (s, _) = expand_specifiers("x%iy", &u, Instance::Runtime("V"));
        assert_eq!(s, format!("x{RT_OPEN}V{RT_CLOSE}y"));
    }

    #[test]
    fn exec_lines() {
        let c = parse_exec("-/usr/sbin/sshd -D $SSHD_OPTS").unwrap();
        assert_eq!(c.len(), 1);
        assert!(c[0].ignore_failure && !c[0].argv0);
        assert_eq!(c[0].words[2], vec![Piece::SplitVar("SSHD_OPTS".into())]);
        let c = parse_exec("@/bin/sh  sh -c \"echo 'a b' $$HOME\" x${Y}z").unwrap();
        assert!(c[0].argv0);
        assert_eq!(c[0].words[3], vec![Piece::Lit("echo 'a b' $HOME".into())]);
        assert_eq!(
            c[0].words[4],
            vec![
                Piece::Lit("x".into()),
                Piece::Var("Y".into()),
                Piece::Lit("z".into())
            ]
        );
        let c = parse_exec("/bin/a x$Y ${Y}z").unwrap();
        assert_eq!(c[0].words[1], vec![Piece::Lit("x$Y".into())]);
        assert_eq!(
            c[0].words[2],
            vec![Piece::Var("Y".into()), Piece::Lit("z".into())]
        );
        let c = parse_exec("+/bin/a ; :/bin/b $X\\ty").unwrap();
        assert_eq!(c.len(), 2);
        assert!(c[0].privileged && c[1].no_expand);
        assert_eq!(c[1].words[1], vec![Piece::Lit("$X\ty".into())]);
        assert!(parse_exec("/bin/a \"b").is_err());
        assert!(parse_exec("-").is_err());
        assert_eq!(parse_exec("").unwrap(), vec![]);
    }

    #[test]
    fn environment_and_times() {
        assert_eq!(
            parse_environment("A=1 \"B=2 3\" C='x y'").unwrap(),
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "2 3".into()),
                ("C".into(), "x y".into())
            ]
        );
        assert!(parse_environment("novalue").is_err());
        assert_eq!(time_span_ms("90", 1000.0), Ok(Some(90_000)));
        assert_eq!(time_span_ms("1min 30s", 1000.0), Ok(Some(90_000)));
        assert_eq!(time_span_ms("500ms", 1000.0), Ok(Some(500)));
        assert_eq!(time_span_ms("infinity", 1000.0), Ok(None));
        assert!(time_span_ms("5 parsecs", 1000.0).is_err());
        assert_eq!(unescape_name("a\\x2db-c"), "a-b/c");
    }
}
