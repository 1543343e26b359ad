//! `wildcard` values: `*` matches any run of characters (also none), `\*` is a literal star and `\\` a literal
//! backslash (Event Ruler's escape rules); every other character, `?` and regex metacharacters included, is
//! literal. Two `*` in a row are rejected, as EventBridge does.

/// A compiled wildcard: literal pieces between the stars.
#[derive(Debug, Clone, PartialEq)]
pub struct Wildcard {
    pub(crate) source: String,
    /// Literal pieces; a `*` sits between each two consecutive pieces.
    pieces: Vec<String>,
}

/// Most `*` one wildcard value may hold. EventBridge refuses wildcard rules that are "too complex"
/// (`*:*:*:*:*:event-bus/*` is its documented-by-example refusal); busbar draws the line at five stars.
pub const MAX_STARS: usize = 5;

impl Wildcard {
    pub(crate) fn parse(source: &str) -> Result<Wildcard, String> {
        let mut pieces = vec![String::new()];
        let mut chars = source.chars().peekable();
        let mut prev_star = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e @ ('*' | '\\')) => {
                        pieces.last_mut().expect("never empty").push(e);
                        prev_star = false;
                    }
                    Some(other) => {
                        return Err(format!(
                            "wildcard {source:?} has an invalid escape \\{other}; only \\* and \\\\ are escapes"
                        ));
                    }
                    None => {
                        return Err(format!(
                            "wildcard {source:?} ends with a lone backslash; write \\\\"
                        ));
                    }
                },
                '*' => {
                    if prev_star {
                        return Err(format!(
                            "wildcard {source:?} has consecutive '*' characters; use one '*'"
                        ));
                    }
                    pieces.push(String::new());
                    prev_star = true;
                }
                c => {
                    pieces.last_mut().expect("never empty").push(c);
                    prev_star = false;
                }
            }
        }
        if pieces.len() - 1 > MAX_STARS {
            return Err(format!(
                "wildcard {source:?} is too complex: {} '*' characters, at most {MAX_STARS} are allowed",
                pieces.len() - 1
            ));
        }
        Ok(Wildcard {
            source: source.to_owned(),
            pieces,
        })
    }

    pub(crate) fn is_match(&self, value: &str) -> bool {
        let first = &self.pieces[0];
        if self.pieces.len() == 1 {
            return value == first;
        }
        let last = self.pieces.last().expect("two or more pieces");
        if value.len() < first.len() + last.len()
            || !value.starts_with(first.as_str())
            || !value.ends_with(last.as_str())
        {
            return false;
        }
        // Greedy leftmost search for the middle pieces is exact for `*`-only globs.
        let mut rest = &value[first.len()..value.len() - last.len()];
        for piece in &self.pieces[1..self.pieces.len() - 1] {
            match rest.find(piece.as_str()) {
                Some(i) => rest = &rest[i + piece.len()..],
                None => return false,
            }
        }
        true
    }

    /// The literal text before the first `*` (the whole value when there is no star).
    pub(crate) fn literal_prefix(&self) -> &str {
        &self.pieces[0]
    }

    /// The literal text after the last `*` (the whole value when there is no star).
    pub(crate) fn literal_suffix(&self) -> &str {
        self.pieces.last().expect("never empty")
    }

    /// True when the value has no `*` at all: then it is an exact match.
    pub(crate) fn is_exact(&self) -> bool {
        self.pieces.len() == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "abc", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("*.png", "x.png", true),
            ("*.png", "x.png.gz", false),
            ("a?c", "abc", false),
            ("a?c", "a?c", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "aXb", false),
            ("a\\\\b", "a\\b", true),
            ("*\\**", "rate2", false),
            ("*\\**", "a*b", true),
            ("ab*ba", "aba", false),
            ("ab*ba", "abba", true),
        ];
        for (pattern, value, expected) in cases {
            let w = Wildcard::parse(pattern).unwrap();
            assert_eq!(w.is_match(value), *expected, "{pattern} vs {value}");
        }
    }

    #[test]
    fn rejects() {
        for bad in ["a**b", "a\\b", "x\\", "*:*:*:*:*:event-bus/*"] {
            assert!(Wildcard::parse(bad).is_err(), "{bad}");
        }
    }
}
