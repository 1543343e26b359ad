//! The `regex` extension: I-Regexp (RFC 9485), the interoperable regular-expression subset. The syntax is
//! checked against the RFC's grammar and translated to the `regex` crate's syntax; the expression always
//! matches the whole value (I-Regexp has no anchors: `^` and `$` are ordinary characters).

use std::fmt::Write as _;

#[derive(Debug, Clone)]
pub struct IRegexp {
    pub(crate) source: String,
    regex: regex::Regex,
}

impl PartialEq for IRegexp {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Compiled-size cap: `a{1000}{1000}`-style expressions are refused instead of eating memory.
const SIZE_LIMIT: usize = 1 << 20;

impl IRegexp {
    pub(crate) fn parse(source: &str) -> Result<IRegexp, String> {
        let mut t = Translator {
            chars: source.chars().collect(),
            pos: 0,
            out: String::from("^(?:"),
        };
        t.regexp(0)
            .map_err(|e| format!("regex {source:?} is not I-Regexp (RFC 9485): {e}"))?;
        if t.pos != t.chars.len() {
            return Err(format!(
                "regex {source:?} is not I-Regexp (RFC 9485): unbalanced ')' at character {}",
                t.pos
            ));
        }
        t.out.push_str(")$");
        let regex = regex::RegexBuilder::new(&t.out)
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| format!("regex {source:?} is too large or unsupported: {e}"))?;
        Ok(IRegexp {
            source: source.to_owned(),
            regex,
        })
    }

    pub(crate) fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

struct Translator {
    chars: Vec<char>,
    pos: usize,
    out: String,
}

const CATEGORIES: &[&str] = &[
    "L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P", "Pc",
    "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Z", "Zs", "Zl", "Zp", "S", "Sm", "Sc", "Sk", "So", "C",
    "Cc", "Cf", "Co", "Cn",
];

impl Translator {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at character {}", self.pos))
    }

    fn regexp(&mut self, depth: usize) -> Result<(), String> {
        if depth > 64 {
            return self.err("groups nested too deeply");
        }
        self.branch(depth)?;
        while self.peek() == Some('|') {
            self.pos += 1;
            self.out.push('|');
            self.branch(depth)?;
        }
        Ok(())
    }

    fn branch(&mut self, depth: usize) -> Result<(), String> {
        while let Some(c) = self.peek() {
            match c {
                '|' | ')' => break,
                '(' => {
                    self.pos += 1;
                    self.out.push_str("(?:");
                    self.regexp(depth + 1)?;
                    if self.peek() != Some(')') {
                        return self.err("missing ')'");
                    }
                    self.pos += 1;
                    self.out.push(')');
                }
                '.' => {
                    self.pos += 1;
                    self.out.push_str("[^\\n\\r]");
                }
                '[' => self.class()?,
                '\\' => self.escape(false)?,
                '*' | '+' | '?' | '{' => return self.err("quantifier without anything to repeat"),
                ']' | '}' => return self.err(&format!("'{c}' must be escaped")),
                c => {
                    self.pos += 1;
                    self.literal(c);
                }
            }
            self.quantifier()?;
        }
        Ok(())
    }

    fn literal(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
    }

    fn quantifier(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(q @ ('*' | '+' | '?')) => {
                self.pos += 1;
                self.out.push(q);
            }
            Some('{') => {
                self.pos += 1;
                let min = self.digits()?;
                let mut max = Some(min);
                if self.peek() == Some(',') {
                    self.pos += 1;
                    max = if self.peek() == Some('}') {
                        None
                    } else {
                        Some(self.digits()?)
                    };
                }
                if self.peek() != Some('}') {
                    return self.err("expected '}' closing the quantifier");
                }
                self.pos += 1;
                match max {
                    Some(m) if m < min => return self.err("quantifier maximum below minimum"),
                    Some(m) if m == min => write!(self.out, "{{{min}}}").expect("string write"),
                    Some(m) => write!(self.out, "{{{min},{m}}}").expect("string write"),
                    None => write!(self.out, "{{{min},}}").expect("string write"),
                }
            }
            _ => return Ok(()),
        }
        if matches!(self.peek(), Some('*' | '+' | '?' | '{')) {
            return self.err(
                "a quantifier cannot follow a quantifier (no lazy or possessive forms in I-Regexp)",
            );
        }
        Ok(())
    }

    fn digits(&mut self) -> Result<u32, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        text.parse::<u32>()
            .ok()
            .filter(|n| *n <= 1000)
            .map_or_else(|| self.err("expected a count 0..=1000"), Ok)
    }

    /// `\` escapes; inside a class (`in_class`) only single-character and category escapes exist too.
    fn escape(&mut self, in_class: bool) -> Result<(), String> {
        self.pos += 1;
        let Some(c) = self.peek() else {
            return self.err("trailing backslash");
        };
        self.pos += 1;
        match c {
            '(' | ')' | '*' | '+' | '-' | '.' | '?' | '[' | '\\' | ']' | '^' | '{' | '|' | '}' => {
                self.literal(c)
            }
            'n' => self.out.push_str("\\n"),
            'r' => self.out.push_str("\\r"),
            't' => self.out.push_str("\\t"),
            'p' | 'P' => {
                if self.peek() != Some('{') {
                    return self.err("expected '{' after \\p");
                }
                self.pos += 1;
                let start = self.pos;
                while self.peek().is_some_and(|c| c != '}') {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                if self.peek() != Some('}') || !CATEGORIES.contains(&name.as_str()) {
                    return self
                        .err("\\p{..} takes a Unicode general category such as L, Lu or Nd");
                }
                self.pos += 1;
                write!(self.out, "\\{c}{{{name}}}").expect("string write");
            }
            other => {
                let _ = in_class;
                return self.err(&format!(
                    "\\{other} is not an I-Regexp escape (no \\d, \\w, \\s, \\b or back-references)"
                ));
            }
        }
        Ok(())
    }

    fn class(&mut self) -> Result<(), String> {
        self.pos += 1;
        self.out.push('[');
        if self.peek() == Some('^') {
            self.pos += 1;
            self.out.push('^');
        }
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return self.err("missing ']'");
            };
            match c {
                ']' if !first => {
                    self.pos += 1;
                    self.out.push(']');
                    return Ok(());
                }
                '-' if first || self.chars.get(self.pos + 1) == Some(&']') => {
                    self.pos += 1;
                    self.out.push_str("\\-");
                }
                '\\' if matches!(self.chars.get(self.pos + 1), Some('p' | 'P')) => {
                    self.escape(true)?
                }
                _ => {
                    self.class_char()?;
                    if self.peek() == Some('-')
                        && self.chars.get(self.pos + 1).is_some_and(|n| *n != ']')
                    {
                        self.pos += 1;
                        self.out.push('-');
                        self.class_char()?;
                    }
                }
            }
            first = false;
        }
    }

    fn class_char(&mut self) -> Result<(), String> {
        match self.peek() {
            Some('\\') if !matches!(self.chars.get(self.pos + 1), Some('p' | 'P')) => {
                self.escape(true)
            }
            Some(c @ ('[' | ']' | '-' | '\\')) => {
                self.err(&format!("'{c}' must be escaped inside a character class"))
            }
            Some(c) => {
                self.pos += 1;
                self.literal(c);
                Ok(())
            }
            None => self.err("missing ']'"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, &str, bool)] = &[
            ("[a-z]+", "abc", true),
            ("[a-z]+", "abc1", false),
            ("a.c", "abc", true),
            ("a.c", "a\nc", false),
            ("^x$", "^x$", true),
            ("colou?r", "color", true),
            ("(ab|cd){2}", "abcd", true),
            ("(ab|cd){2}", "abcdab", false),
            ("\\p{Lu}\\p{Ll}*", "Hello", true),
            ("[^0-9]*", "abc", true),
            ("[^0-9]*", "a1", false),
            ("a\\.b", "a.b", true),
            ("a\\.b", "axb", false),
            ("[-a]+", "-a-", true),
            ("x{2,}", "xxx", true),
            ("", "", true),
        ];
        for (re, s, expected) in cases {
            let r = IRegexp::parse(re).unwrap_or_else(|e| panic!("{re}: {e}"));
            assert_eq!(r.is_match(s), *expected, "{re} vs {s:?}");
        }
    }

    #[test]
    fn rejects_non_iregexp() {
        for bad in [
            "\\d+",
            "a*?",
            "(?i)a",
            "a{2",
            "(a",
            "a)",
            "[a",
            "\\w",
            "\\p{Greek}",
            "*a",
            "a{3,1}",
            "\\1",
        ] {
            assert!(IRegexp::parse(bad).is_err(), "{bad}");
        }
    }
}
