//! JSON paths (`$.rules[0].targets[1].connector`) that name a place in a pipeline file.

use std::fmt;

/// One step of a [`JsonPath`]: an object key or an array index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A key of a JSON object.
    Key(String),
    /// An index into a JSON array.
    Index(usize),
}

/// A path from the root of a JSON document to one of its values, displayed in JSONPath notation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JsonPath(Vec<Segment>);

impl JsonPath {
    /// The document's root, `$`.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by an object key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.into()));
        Self(segments)
    }

    /// This path extended by an array index.
    pub fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// This path followed by `other`.
    pub fn join(&self, other: &JsonPath) -> Self {
        let mut segments = self.0.clone();
        segments.extend(other.0.iter().cloned());
        Self(segments)
    }

    /// The path one step up, or `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }

    /// The steps of this path, root first.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The last object key of this path, if its last step is a key.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// Reads a path printed in this notation (`$.a["b-c"][2]`), as the pattern parser reports them.
    pub fn parse(text: &str) -> Option<Self> {
        let mut rest = text.strip_prefix('$')?;
        let mut segments = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                segments.push(Segment::Key(after[..end].to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix("[\"") {
                // A JSON string: find its closing quote, skipping escaped characters.
                let mut end = None;
                let mut escaped = false;
                for (i, c) in after.char_indices() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end?;
                let key: String = serde_json::from_str(&rest[1..end + 3]).ok()?;
                segments.push(Segment::Key(key));
                rest = after[end + 1..].strip_prefix(']')?;
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']')?;
                segments.push(Segment::Index(after[..end].parse().ok()?));
                rest = &after[end + 1..];
            } else {
                return None;
            }
        }
        Some(Self(segments))
    }

    /// Converts a path reported by `serde_path_to_error` (relative to the value that was deserialized).
    pub(crate) fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        let segments = path
            .iter()
            .filter_map(|segment| match segment {
                S::Seq { index } => Some(Segment::Index(*index)),
                S::Map { key } => Some(Segment::Key(key.clone())),
                S::Enum { variant } => Some(Segment::Key(variant.clone())),
                S::Unknown => None,
            })
            .collect();
        Self(segments)
    }
}

impl From<Vec<Segment>> for JsonPath {
    fn from(segments: Vec<Segment>) -> Self {
        Self(segments)
    }
}

/// A key is written `.key` when it is a plain identifier, and `["key"]` (JSON-quoted) otherwise, as the pattern
/// parser prints its paths (so that a path inside a pattern reads the same in both).
fn is_plain_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for segment in &self.0 {
            match segment {
                Segment::Key(key) if is_plain_key(key) => write!(f, ".{key}")?,
                Segment::Key(key) => {
                    let quoted = serde_json::to_string(key).map_err(|_| fmt::Error)?;
                    write!(f, "[{quoted}]")?
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_in_jsonpath_notation() {
        let path = JsonPath::root()
            .key("rules")
            .index(0)
            .key("detail-type")
            .key("a b")
            .key("$schema");
        assert_eq!(
            path.to_string(),
            r#"$.rules[0]["detail-type"]["a b"].$schema"#
        );
        assert_eq!(JsonPath::parse(&path.to_string()), Some(path.clone()));
        let odd = JsonPath::root().key("q\"]x").index(12).key("$or");
        assert_eq!(JsonPath::parse(&odd.to_string()), Some(odd));
        assert_eq!(JsonPath::parse("detail"), None);
        assert_eq!(JsonPath::root().to_string(), "$");
        assert_eq!(path.parent().unwrap().last_key(), Some("a b"));
    }
}
