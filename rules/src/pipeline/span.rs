//! Where each value of a JSON text is: a small scan of the source that maps every [`JsonPath`] to the line and
//! column of its key and value, and notes duplicate object keys (which `serde_json` silently collapses).
//!
//! It runs only on text that `serde_json` has already accepted, so it can stay simple: it never has to report a
//! syntax error of its own, and it stops quietly if the text ends early.

use std::collections::HashMap;

use super::path::JsonPath;

/// A 1-based line and column; the column counts characters, as editors do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number in characters, starting at 1.
    pub column: usize,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: Option<Position>,
    value: Position,
}

/// A key written twice in the same object.
#[derive(Clone, Debug)]
pub struct DuplicateKey {
    /// The path of the key (the later occurrence wins in the parsed value, and in this index).
    pub path: JsonPath,
    /// Where the key was first written.
    pub first: Position,
}

/// Positions of every value of one JSON text, by path.
#[derive(Debug, Default)]
pub struct SpanIndex {
    entries: HashMap<JsonPath, Entry>,
    duplicates: Vec<DuplicateKey>,
}

impl SpanIndex {
    /// Scans `text`, which must be JSON that `serde_json` accepted.
    pub fn build(text: &str) -> Self {
        let mut scanner = Scanner {
            chars: text.chars().peekable(),
            line: 1,
            column: 1,
            index: SpanIndex::default(),
        };
        scanner.skip_ws();
        scanner.value(JsonPath::root(), None);
        scanner.index
    }

    /// Where the value at `path` starts, or where its nearest written ancestor starts.
    pub fn value(&self, path: &JsonPath) -> Position {
        self.nearest(path).value
    }

    /// Where the key of the value at `path` is written (the value itself for array elements and the root).
    pub fn key(&self, path: &JsonPath) -> Position {
        let entry = self.nearest(path);
        entry.key.unwrap_or(entry.value)
    }

    /// Keys written twice in one object, in the order they appear.
    pub fn duplicates(&self) -> &[DuplicateKey] {
        &self.duplicates
    }

    fn nearest(&self, path: &JsonPath) -> Entry {
        let mut path = path.clone();
        loop {
            if let Some(entry) = self.entries.get(&path) {
                return *entry;
            }
            match path.parent() {
                Some(parent) => path = parent,
                None => {
                    return Entry {
                        key: None,
                        value: Position { line: 1, column: 1 },
                    };
                }
            }
        }
    }
}

struct Scanner<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
    index: SpanIndex,
}

impl Scanner<'_> {
    fn position(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while matches!(self.chars.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.bump();
        }
    }

    /// Scans one value starting at the current character (whitespace already skipped).
    fn value(&mut self, path: JsonPath, key: Option<Position>) {
        let start = self.position();
        self.index
            .entries
            .insert(path.clone(), Entry { key, value: start });
        match self.chars.peek() {
            Some('{') => self.object(path),
            Some('[') => self.array(path),
            Some('"') => {
                self.string();
            }
            Some(_) => {
                // A number, `true`, `false` or `null`: runs until a delimiter.
                while matches!(self.chars.peek(), Some(c) if !matches!(c, ',' | '}' | ']' | ' ' | '\t' | '\n' | '\r'))
                {
                    self.bump();
                }
            }
            None => {}
        }
    }

    fn object(&mut self, path: JsonPath) {
        self.bump(); // '{'
        let mut seen: HashMap<String, Position> = HashMap::new();
        loop {
            self.skip_ws();
            match self.chars.peek() {
                Some('"') => {}
                Some(_) => {
                    self.bump(); // '}' (or ',' handled below)
                    return;
                }
                None => return,
            }
            let key_at = self.position();
            let key = self.string();
            self.skip_ws();
            self.bump(); // ':'
            self.skip_ws();
            let child = path.key(key.clone());
            if let Some(first) = seen.insert(key, key_at) {
                self.index.duplicates.push(DuplicateKey {
                    path: child.clone(),
                    first,
                });
            }
            self.value(child, Some(key_at));
            self.skip_ws();
            if self.chars.peek() == Some(&',') {
                self.bump();
            }
        }
    }

    fn array(&mut self, path: JsonPath) {
        self.bump(); // '['
        let mut index = 0;
        loop {
            self.skip_ws();
            match self.chars.peek() {
                Some(']') | None => {
                    self.bump();
                    return;
                }
                Some(_) => {}
            }
            self.value(path.index(index), None);
            index += 1;
            self.skip_ws();
            if self.chars.peek() == Some(&',') {
                self.bump();
            }
        }
    }

    /// Scans a string literal and returns its decoded text.
    fn string(&mut self) -> String {
        self.bump(); // opening quote
        let mut out = String::new();
        while let Some(c) = self.bump() {
            match c {
                '"' => break,
                '\\' => match self.bump() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('b') => out.push('\u{8}'),
                    Some('f') => out.push('\u{c}'),
                    Some('u') => {
                        let high = self.hex4();
                        let code = if (0xD800..0xDC00).contains(&high)
                            && self.chars.peek() == Some(&'\\')
                        {
                            self.bump();
                            self.bump(); // 'u'
                            let low = self.hex4();
                            0x10000 + ((high - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF)
                        } else {
                            high
                        };
                        out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                    }
                    Some(other) => out.push(other),
                    None => break,
                },
                other => out.push(other),
            }
        }
        out
    }

    fn hex4(&mut self) -> u32 {
        let mut value = 0;
        for _ in 0..4 {
            let digit = self.bump().and_then(|c| c.to_digit(16)).unwrap_or(0);
            value = value * 16 + digit;
        }
        value
    }
}

/// Converts `serde_json`'s line and byte column into a character column.
pub fn char_column(text: &str, line: usize, byte_column: usize) -> usize {
    let Some(line_text) = text.split('\n').nth(line.saturating_sub(1)) else {
        return byte_column;
    };
    let end = byte_column.min(line_text.len());
    // serde_json's column points at the offending character itself, or one past the end of the line for EOF.
    let mut boundary = end;
    while boundary > 0 && !line_text.is_char_boundary(boundary) {
        boundary -= 1;
    }
    line_text[..boundary].chars().count() + (byte_column - boundary).min(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn finds_keys_and_values_by_path() {
        let text = "{\n  \"a\": [1, {\"b\\u00e9\": \"x\"}],\n  \"c\": {\"d\": null}\n}";
        let index = SpanIndex::build(text);
        let root = JsonPath::root();
        assert_eq!(index.value(&root), pos(1, 1));
        assert_eq!(index.key(&root.key("a")), pos(2, 3));
        assert_eq!(index.value(&root.key("a")), pos(2, 8));
        assert_eq!(index.value(&root.key("a").index(1)), pos(2, 12));
        assert_eq!(index.value(&root.key("a").index(1).key("bé")), pos(2, 24));
        assert_eq!(index.value(&root.key("c").key("d")), pos(3, 14));
        // An unknown path falls back to its nearest ancestor.
        assert_eq!(index.value(&root.key("c").key("zz").index(3)), pos(3, 8));
        assert!(index.duplicates().is_empty());
    }

    #[test]
    fn reports_duplicate_keys() {
        let text = "{\"s\": {\"x\": 1,\n \"x\": 2}}";
        let index = SpanIndex::build(text);
        let dup = &index.duplicates()[0];
        assert_eq!(dup.path, JsonPath::root().key("s").key("x"));
        assert_eq!((index.key(&dup.path), dup.first), (pos(2, 2), pos(1, 8)));
        // The later value wins, as in serde_json.
        assert_eq!(index.value(&dup.path), pos(2, 7));
    }

    #[test]
    fn converts_byte_columns_to_characters() {
        assert_eq!(char_column("{\"é\": x}", 1, 8), 7);
        assert_eq!(char_column("{\"é\": x}", 1, 3), 3);
        assert_eq!(char_column("ab", 1, 2), 2);
    }
}
