//! Option parsing as POSIX getopt(3) does it, which the reference programs use: clustered
//! letters (`-abc`), an option's argument attached or in the next word (`-T100`, `-T 100`),
//! `--` ends the options, and so does the first operand.

/// One option found on the command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Opt {
    /// An option without argument.
    Flag(char),
    /// An option with its argument.
    Arg(char, String),
    /// A letter not in the spec.
    Unknown(char),
    /// An option that takes an argument, at the end of the command line.
    MissingArg(char),
}

/// Walks the options of `args` (argv without argv[0]) according to `spec`, in getopt's
/// notation: each letter is an option, a letter followed by `:` takes an argument.
pub struct GetOpt<'a> {
    args: &'a [String],
    spec: &'a str,
    /// Index of the word being read.
    i: usize,
    /// Byte offset inside that word (0: not started).
    j: usize,
    done: bool,
}

impl<'a> GetOpt<'a> {
    pub fn new(args: &'a [String], spec: &'a str) -> GetOpt<'a> {
        GetOpt {
            args,
            spec,
            i: 0,
            j: 0,
            done: false,
        }
    }

    /// The operands: what follows the options (valid once the iterator returned `None`).
    pub fn operands(&self) -> &'a [String] {
        &self.args[self.i.min(self.args.len())..]
    }

    fn takes_arg(&self, c: char) -> Option<bool> {
        let mut it = self.spec.chars().peekable();
        while let Some(s) = it.next() {
            let has_arg = it.peek() == Some(&':');
            if has_arg {
                it.next();
            }
            if s == c && s != ':' {
                return Some(has_arg);
            }
        }
        None
    }
}

impl Iterator for GetOpt<'_> {
    type Item = Opt;

    fn next(&mut self) -> Option<Opt> {
        if self.done {
            return None;
        }
        if self.j == 0 {
            let Some(a) = self.args.get(self.i) else {
                self.done = true;
                return None;
            };
            if a == "--" {
                self.i += 1;
                self.done = true;
                return None;
            }
            if !a.starts_with('-') || a.len() < 2 {
                self.done = true;
                return None;
            }
            self.j = 1;
        }
        let word = &self.args[self.i];
        let c = word[self.j..].chars().next()?;
        self.j += c.len_utf8();
        let at_end = self.j >= word.len();
        let opt = match self.takes_arg(c) {
            None => Opt::Unknown(c),
            Some(false) => Opt::Flag(c),
            Some(true) => {
                let attached = (!at_end).then(|| word[self.j..].to_string());
                self.i += 1;
                self.j = 0;
                return Some(
                    match attached.or_else(|| {
                        let v = self.args.get(self.i).cloned();
                        if v.is_some() {
                            self.i += 1;
                        }
                        v
                    }) {
                        Some(v) => Opt::Arg(c, v),
                        None => Opt::MissingArg(c),
                    },
                );
            }
        };
        if at_end {
            self.i += 1;
            self.j = 0;
        }
        Some(opt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn all(args: &[String], spec: &str) -> (Vec<Opt>, Vec<String>) {
        let mut g = GetOpt::new(args, spec);
        let opts: Vec<Opt> = g.by_ref().collect();
        (opts, g.operands().to_vec())
    }

    #[test]
    fn clusters_arguments_and_operands() {
        let a = v(&["-ud", "-T100", "-w", "U", "x", "-k"]);
        let (o, rest) = all(&a, "udT:w:");
        assert_eq!(
            o,
            vec![
                Opt::Flag('u'),
                Opt::Flag('d'),
                Opt::Arg('T', "100".into()),
                Opt::Arg('w', "U".into())
            ]
        );
        assert_eq!(rest, v(&["x", "-k"]));
    }

    #[test]
    fn double_dash_unknown_and_missing() {
        let (o, rest) = all(&v(&["-a", "--", "-b"]), "a");
        assert_eq!(o, vec![Opt::Flag('a')]);
        assert_eq!(rest, v(&["-b"]));
        let (o, _) = all(&v(&["-z"]), "a");
        assert_eq!(o, vec![Opt::Unknown('z')]);
        let (o, rest) = all(&v(&["-aw"]), "aw:");
        assert_eq!(o, vec![Opt::Flag('a'), Opt::MissingArg('w')]);
        assert!(rest.is_empty());
        let (o, rest) = all(&v(&["-", "x"]), "a");
        assert!(o.is_empty());
        assert_eq!(rest, v(&["-", "x"]));
        let (o, rest) = all(&v(&["-wu", "sd"]), "w:");
        assert_eq!(o, vec![Opt::Arg('w', "u".into())]);
        assert_eq!(rest, v(&["sd"]));
    }
}
