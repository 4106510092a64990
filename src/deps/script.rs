//! How a oneshot's `up` or `down` file is run. s6-rc runs them as execline scripts
//! (`execlineb -P FILE`). The form s6-overlay's documentation recommends, one command line
//! (a program's path and its arguments), is run directly: with execline installed when its
//! words are plain (execline would run them just so), and without execline in any case.
//! Anything else needs execline; without it, it is refused with a message.

/// What to run for a script file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// `execlineb -P FILE` (execline is installed).
    Execline,
    /// The one command line, split into words.
    Direct(Vec<String>),
    /// No command at all (empty, or comments only): succeeds at once, as `execlineb -P`
    /// does with such a file.
    Nothing,
}

/// Splits one execline-style command line into words: blanks separate words, double quotes
/// group (with `\"` and `\\` inside). None when the line uses anything only execline can
/// run: braces (blocks), or several non-comment lines.
pub fn one_line(text: &str) -> Result<Vec<String>, String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let line = match lines.as_slice() {
        [] => return Err("it is empty".into()),
        [l] => *l,
        _ => return Err("it has more than one command line".into()),
    };
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err("a quote is not closed".into()),
                        },
                        Some(o) => cur.push(o),
                        None => return Err("a quote is not closed".into()),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
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
    if words.iter().any(|w| w == "{" || w == "}" || w == "\"\"") {
        return Err("it uses execline blocks".into());
    }
    Ok(words)
}

/// A command line that execline would run exactly as its words say: plain words of
/// characters that no execline rule touches (no quote, backslash, brace, `$`, `;`), so it can
/// be executed directly, sparing one exec.
fn plain(text: &str) -> bool {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = match (lines.next(), lines.next()) {
        (None, _) => return true, // no command at all
        (Some(line), None) => line,
        _ => return false,
    };
    line.chars()
        .all(|c| c.is_ascii_alphanumeric() || " \t/._-:=+,@%".contains(c))
}

/// Decides how to run a script whose content is `text`.
pub fn plan(text: &str, have_execline: bool) -> Result<Plan, String> {
    if have_execline && !plain(text) {
        return Ok(Plan::Execline);
    }
    if text
        .lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#'))
    {
        return Ok(Plan::Nothing);
    }
    one_line(text)
        .map(Plan::Direct)
        .map_err(|why| format!("{why}: it needs execlineb, which is not installed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_forms() {
        assert_eq!(
            one_line("/etc/s6-overlay/s6-rc.d/init-foo/run\n").unwrap(),
            ["/etc/s6-overlay/s6-rc.d/init-foo/run"]
        );
        assert_eq!(
            one_line("# comment\n\n  ./run  a \"b c\" \"q\\\"x\"\n").unwrap(),
            ["./run", "a", "b c", "q\"x"]
        );
        assert!(one_line("").is_err());
        assert!(one_line("a\nb\n").is_err());
        assert!(one_line("foreground { echo hi }").is_err());
        assert!(one_line("echo \"open").is_err());
    }

    #[test]
    fn plan_prefers_execline() {
        assert_eq!(plan("a\nb", true), Ok(Plan::Execline));
        assert_eq!(plan("echo \"a b\"", true), Ok(Plan::Execline));
        assert_eq!(plan("echo ${x}", true), Ok(Plan::Execline));
        assert_eq!(
            plan("# comment\n/bin/sleep 0.02\n", true),
            Ok(Plan::Direct(vec!["/bin/sleep".into(), "0.02".into()]))
        );
        assert_eq!(plan("# nothing\n", true), Ok(Plan::Nothing));
        assert_eq!(
            plan("x y", false),
            Ok(Plan::Direct(vec!["x".into(), "y".into()]))
        );
        assert_eq!(
            plan("# This file does nothing, it only orders\n\n", false),
            Ok(Plan::Nothing)
        );
        let e = plan("if { true } echo", false).unwrap_err();
        assert!(e.contains("needs execlineb"), "{e}");
    }
}
