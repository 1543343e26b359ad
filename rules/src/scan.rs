//! Reads an event straight from its JSON bytes, extracting only the leaves at paths some pattern names and
//! skipping everything else without building it. The input is still fully validated (UTF-8 first, then the
//! JSON grammar), so a malformed record is an error whether or not a rule looks at the broken part.

use std::borrow::Cow;

use rustc_hash::FxHashMap;

use crate::error::EventError;
use crate::eval::Leaf;
use crate::number::Num;

mod stops;

/// serde_json's default nesting limit (127 nested arrays and objects): deeper input is refused rather than
/// risking the stack, and a record is valid for the matcher exactly when it is valid for serde_json.
pub(crate) const MAX_DEPTH: usize = 127;

/// What the matcher needs at one dotted path.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PathEntry {
    /// Leaves here feed this field.
    pub(crate) field: Option<u32>,
    /// Some needed path continues below this one.
    pub(crate) interior: bool,
}

/// The paths some pattern names, as a tree of event keys: looking up a key costs a hash of the key alone, not
/// of the whole dotted path, and no path string is built. Keys containing dots (and empty keys, which EventBridge
/// joins without a dot at the top level) go through the table of whole dotted paths, so `{"a.b": 1}` and
/// `{"a": {"b": 1}}` still land on the same path.
#[derive(Debug)]
pub(crate) struct PathTable {
    /// Node 0 is the event object itself.
    nodes: Vec<PathNode>,
    by_path: FxHashMap<Box<str>, u32>,
}

#[derive(Debug, Default)]
struct PathNode {
    entry: PathEntry,
    path: Box<str>,
    /// Children by plain key (non-empty, no dot).
    children: Children,
}

/// A node's children: a short list is scanned (cheaper than hashing the key), a long one hashed.
#[derive(Debug, Default)]
struct Children {
    /// The first bytes of the children's keys (a 256-bit set): most event keys are read by no pattern, and
    /// most of those are turned away by this one test.
    firsts: [u64; 4],
    /// The lengths of the children's keys, bit `n` for length `n` (bit 63 for 63 and longer).
    lens: u64,
    few: Vec<Child>,
    many: FxHashMap<Box<[u8]>, u32>,
}

/// A child in the short list: a key is compared by its length and first eight bytes (one word), and only a key
/// longer than that by its remaining bytes.
#[derive(Debug)]
struct Child {
    len: usize,
    head: u64,
    key: Box<[u8]>,
    node: u32,
}

/// Whether an event key holds a dot. Keys are short: a plain loop beats a call to a vector search.
#[inline(always)]
fn has_dot(key: &[u8]) -> bool {
    key.iter().fold(false, |dot, &c| dot | (c == b'.'))
}

/// Whether `c` is in a 256-bit set.
#[inline]
fn in_set(set: &[u64; 4], c: u8) -> bool {
    set[usize::from(c >> 6)] >> (c & 63) & 1 == 1
}

/// The first eight bytes of `key` as a little-endian word, zero past its end.
fn head(key: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let n = key.len().min(8);
    word[..n].copy_from_slice(&key[..n]);
    u64::from_le_bytes(word)
}

/// [`head`] of the key `b[start..end]`, read as one word when the document goes on for eight bytes (it always
/// does but near its end: a key is followed by at least `":`, a value and `}`).
#[inline]
fn head_at(b: &[u8], start: usize, end: usize) -> u64 {
    match b.get(start..start + 8) {
        Some(w) => {
            let word = u64::from_le_bytes(w.try_into().expect("eight bytes"));
            let len = end - start;
            if len >= 8 {
                word
            } else {
                word & ((1u64 << (8 * len)) - 1)
            }
        }
        None => head(&b[start..end]),
    }
}

/// Most children kept in a list.
const FEW_CHILDREN: usize = 8;

impl Children {
    fn insert(&mut self, key: &str, node: u32) {
        let key = key.as_bytes();
        if self.get(key, head(key)).is_some() {
            return;
        }
        self.firsts[usize::from(key[0] >> 6)] |= 1 << (key[0] & 63);
        self.lens |= 1 << key.len().min(63);
        if self.many.is_empty() && self.few.len() < FEW_CHILDREN {
            self.few.push(Child {
                len: key.len(),
                head: head(key),
                key: key.into(),
                node,
            });
        } else {
            self.many
                .extend(self.few.drain(..).map(|c| (c.key, c.node)));
            self.many.insert(key.into(), node);
        }
    }

    /// Whether some child's key may be `len` bytes long.
    #[inline(always)]
    fn may_have_len(&self, len: usize) -> bool {
        self.lens >> len.min(63) & 1 == 1
    }

    /// The child at `key`, whose [`head`] is `head`.
    #[inline]
    fn get(&self, key: &[u8], head: u64) -> Option<u32> {
        if self.many.is_empty() {
            self.few
                .iter()
                .find(|c| {
                    c.len == key.len() && c.head == head && (c.len <= 8 || c.key[8..] == key[8..])
                })
                .map(|c| c.node)
        } else {
            self.many.get(key).copied()
        }
    }
}

impl Default for PathTable {
    fn default() -> Self {
        // The event object is also the path "" (an empty key at the top level joins to the empty path, so its
        // contents are read like the event's own), hence interior.
        let root = PathNode {
            entry: PathEntry {
                field: None,
                interior: true,
            },
            ..PathNode::default()
        };
        PathTable {
            nodes: vec![root],
            by_path: FxHashMap::default(),
        }
    }
}

pub(crate) const ROOT: u32 = 0;

impl PathTable {
    /// Register a dotted path read by `field`.
    pub(crate) fn register(&mut self, path: &str, field: u32) {
        let node = self.node(path);
        self.nodes[node as usize].entry.field = Some(field);
        // Every prefix ending before a '.' is interior: event keys that contain dots land on the same paths.
        for (i, _) in path.match_indices('.') {
            let node = self.node(&path[..i]);
            self.nodes[node as usize].entry.interior = true;
        }
    }

    fn node(&mut self, path: &str) -> u32 {
        if path.is_empty() {
            return ROOT;
        }
        if let Some(&n) = self.by_path.get(path) {
            return n;
        }
        let n = self.nodes.len() as u32;
        self.nodes.push(PathNode {
            path: path.into(),
            ..PathNode::default()
        });
        self.by_path.insert(path.into(), n);
        let (parent, key) = match path.rfind('.') {
            Some(i) => (Some(&path[..i]), &path[i + 1..]),
            None => (None, path),
        };
        if !key.is_empty() {
            let parent = match parent {
                Some(p) => self.node(p),
                None => ROOT,
            };
            self.nodes[parent as usize].children.insert(key, n);
        }
        n
    }

    /// The node reached from `node` by an event key, if some pattern path goes through it.
    pub(crate) fn child(&self, node: u32, key: &str) -> Option<u32> {
        self.child_of(node, key.as_bytes(), head(key.as_bytes()))
    }

    /// [`Self::child`] for the key `b[start..end]` (without escapes) of a document. Most keys of an event lead
    /// to no child, and most of those are told here, inline, by their first byte and length.
    #[inline(always)]
    pub(crate) fn child_at(&self, node: u32, b: &[u8], start: usize, end: usize) -> Option<u32> {
        let key = &b[start..end];
        let children = &self.nodes[node as usize].children;
        // As in `child_of`; a key of a length no child has can still reach a path if it holds a dot.
        match key.first() {
            Some(&c) if c != b'.' && !in_set(&children.firsts, c) => return None,
            Some(_) if !children.may_have_len(key.len()) && !has_dot(key) => return None,
            _ => {}
        }
        let head = head_at(b, start, end);
        if !children.many.is_empty() {
            return self.child_of(node, key, head);
        }
        // The short list, inline: a hit needs no check of the key (children are plain keys).
        for c in &children.few {
            if c.len == key.len() && c.head == head && (c.len <= 8 || c.key[8..] == key[8..]) {
                return Some(c.node);
            }
        }
        if !key.is_empty() && !has_dot(key) {
            return None;
        }
        self.dotted_child(node, key)
    }

    #[inline]
    fn child_of(&self, node: u32, key: &[u8], head: u64) -> Option<u32> {
        let n = &self.nodes[node as usize];
        // Children are plain keys, so a hit needs no check of the key. A miss is final unless the key is empty
        // or holds a dot. A dotted key `a.b` can only reach a path whose first segment `a` is a child here
        // (registering a path registers its prefixes), so a key whose first byte starts no child is done with
        // unless it is empty or starts with a dot (paths with empty segments).
        match key.first() {
            Some(&c) if c != b'.' && !in_set(&n.children.firsts, c) => return None,
            _ => {}
        }
        if let Some(child) = n.children.get(key, head) {
            return Some(child);
        }
        if !key.is_empty() && !has_dot(key) {
            return None;
        }
        self.dotted_child(node, key)
    }

    /// A key that is empty or holds a dot: looked up by its whole dotted path.
    #[inline(never)]
    fn dotted_child(&self, node: u32, key: &[u8]) -> Option<u32> {
        // Keys come from valid UTF-8 split at quotes.
        let key = std::str::from_utf8(key).ok()?;
        // Joined as EventBridge flattens: after the empty path a key is not preceded by a dot, so an empty
        // top-level key leads back to the empty path.
        if node == ROOT {
            return if key.is_empty() {
                Some(ROOT)
            } else {
                self.by_path.get(key).copied()
            };
        }
        self.by_path
            .get(format!("{}.{key}", self.nodes[node as usize].path).as_str())
            .copied()
    }

    pub(crate) fn entry(&self, node: u32) -> PathEntry {
        self.nodes[node as usize].entry
    }

    /// Dotted paths some pattern reads.
    pub(crate) fn field_paths(&self) -> impl Iterator<Item = &str> {
        self.nodes
            .iter()
            .filter(|n| n.entry.field.is_some())
            .map(|n| n.path.as_ref())
    }
}

/// One extracted leaf: the field it feeds, the array element it sits in (see [`ArrayElement`]) and its value.
#[derive(Debug, Clone)]
pub(crate) struct Found<'a> {
    pub(crate) field: u32,
    pub(crate) element: u32,
    pub(crate) leaf: Leaf<'a>,
}

/// One element of an array of the event, for array consistency: leaves in different elements of the same array
/// cannot satisfy one rule together. Element 0 stands for "outside every array" (the event object itself);
/// every other element names the array it belongs to and the element enclosing that array. Elements are
/// numbered in document order, so an element's number is larger than its enclosing element's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArrayElement {
    pub(crate) parent: u32,
    pub(crate) array: u32,
}

/// The array elements of one event, reused between events.
#[derive(Debug, Default)]
pub(crate) struct Elements {
    pub(crate) list: Vec<ArrayElement>,
    pub(crate) arrays: u32,
    /// An array sits at the empty path (an empty top-level key): fields with different first keys can then
    /// share it.
    pub(crate) at_root: bool,
    /// Per open object, the keys read so far: (path node, range of the leaves its value produced).
    keys: Vec<(u32, u32, u32)>,
    /// Where strings can end (`stops.rs`).
    stops: Vec<u64>,
}

impl Elements {
    pub(crate) fn reset(&mut self) {
        self.list.clear();
        self.list.push(ArrayElement {
            parent: u32::MAX,
            array: u32::MAX,
        });
        self.arrays = 0;
        self.at_root = false;
        self.keys.clear();
    }

    pub(crate) fn new_array(&mut self) -> u32 {
        self.arrays += 1;
        self.arrays - 1
    }

    pub(crate) fn new_element(&mut self, parent: u32, array: u32) -> u32 {
        self.list.push(ArrayElement { parent, array });
        self.list.len() as u32 - 1
    }
}

pub(crate) fn scan<'a>(
    bytes: &'a [u8],
    table: &PathTable,
    elements: &mut Elements,
    out: &mut Vec<Found<'a>>,
) -> Result<(), EventError> {
    // A SIMD validator (AVX2 or SSE4.2, chosen at run time); std's, slower on these documents, runs only on
    // invalid input, to say where the first invalid byte is.
    let text = simdutf8::basic::from_utf8(bytes).map_err(|_| EventError::Utf8 {
        offset: std::str::from_utf8(bytes)
            .err()
            .map_or(0, |e| e.valid_up_to()),
    })?;
    elements.reset();
    let mut stops = std::mem::take(&mut elements.stops);
    stops::string_stops(bytes, &mut stops);
    let mut s = Scanner {
        text,
        b: bytes,
        stops: &stops,
        i: 0,
        table,
        out,
        elements,
        element: 0,
    };
    let result = s.document();
    elements.stops = stops;
    result
}

impl Scanner<'_, '_> {
    /// The whole document: one object, whitespace around it.
    fn document(&mut self) -> Result<(), EventError> {
        self.ws();
        if self.peek() != Some(b'{') {
            let found = match self.peek() {
                None => "nothing",
                Some(b'[') => "an array",
                Some(b'"') => "a string",
                Some(b't' | b'f') => "a boolean",
                Some(b'n') => "null",
                Some(_) => "a number or invalid JSON",
            };
            return Err(EventError::NotAnObject { found });
        }
        self.object(0, ROOT)?;
        self.ws();
        if self.i != self.b.len() {
            return Err(self.err("trailing characters after the event object"));
        }
        Ok(())
    }
}

/// The value of four hex digits at `at`, if there are four.
fn hex4(b: &[u8], at: usize) -> Option<u16> {
    let digits = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
    if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

/// Past the whitespace at `i`.
#[inline(always)]
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// Past `word` (`true`, `false` or `null`), if it is at `i`.
#[inline(always)]
fn word_end(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    b[i..].starts_with(word).then_some(i + word.len())
}

/// Past the digits at `i`.
#[inline(always)]
fn digits_end(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// Past the number at `i`, if it is valid and plain: no exponent and at most 300 characters, so certainly
/// within `f64`'s range (others are left to `Scanner::number`).
#[inline(always)]
fn plain_number_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + usize::from(b[start] == b'-');
    match *b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits_end(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        if !b.get(i + 1)?.is_ascii_digit() {
            return None;
        }
        i = digits_end(b, i + 2);
    }
    match b.get(i) {
        Some(b'e' | b'E') => None,
        _ if i - start > 300 => None,
        _ => Some(i),
    }
}

struct Scanner<'a, 't> {
    text: &'a str,
    b: &'a [u8],
    stops: &'t [u64],
    i: usize,
    table: &'t PathTable,
    out: &'t mut Vec<Found<'a>>,
    elements: &'t mut Elements,
    /// The array element the scanner is in (0: none).
    element: u32,
}

impl<'a> Scanner<'a, '_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn err(&self, message: &'static str) -> EventError {
        EventError::Syntax {
            offset: self.i,
            message,
        }
    }

    fn ws(&mut self) {
        self.i = ws(self.b, self.i);
    }

    fn expect(&mut self, c: u8, message: &'static str) -> Result<(), EventError> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(message))
        }
    }

    /// An object at the path node `node`, below which some needed path lies, so its keys are looked up.
    /// (Other objects are skipped by [`Self::skip`].)
    fn object(&mut self, depth: usize, node: u32) -> Result<(), EventError> {
        if depth >= MAX_DEPTH {
            return Err(EventError::TooDeep {
                offset: self.i,
                limit: MAX_DEPTH,
            });
        }
        self.i += 1; // '{'
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        let base = self.elements.keys.len();
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let at = self.i;
            let (start, end, escaped) = self.string_end()?;
            let child = if escaped {
                self.table.child(node, &self.decode(at, start, end)?)
            } else {
                self.table.child_at(node, self.b, start, end)
            };
            self.expect(b':', "expected ':' after a key")?;
            match child {
                Some(child) => {
                    self.forget_earlier(base, child);
                    let start = self.out.len() as u32;
                    self.value(depth + 1, child)?;
                    let end = self.out.len() as u32;
                    // A value without leaves leaves nothing to forget if the key comes again.
                    if end > start {
                        self.elements.keys.push((child, start, end));
                    }
                }
                None => self.skip(depth + 1)?,
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.elements.keys.truncate(base);
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}' in an object")),
            }
        }
    }

    /// A key repeated in one object: serde_json keeps the last value, so the leaves of the earlier one go.
    fn forget_earlier(&mut self, base: usize, node: u32) {
        let keys = &mut self.elements.keys;
        let Some(k) = keys[base..].iter().position(|e| e.0 == node) else {
            return;
        };
        let (_, start, end) = keys.remove(base + k);
        self.out.drain(start as usize..end as usize);
        for e in &mut keys[base..] {
            if e.1 >= end {
                e.1 -= end - start;
                e.2 -= end - start;
            }
        }
    }

    /// A value at a path the matcher needs.
    fn value(&mut self, depth: usize, node: u32) -> Result<(), EventError> {
        let entry = self.table.entry(node);
        self.ws();
        let leaf = match self.peek() {
            Some(b'{') => {
                return if entry.interior {
                    self.object(depth, node)
                } else {
                    self.skip(depth)
                };
            }
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(EventError::TooDeep {
                        offset: self.i,
                        limit: MAX_DEPTH,
                    });
                }
                self.i += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(());
                }
                let array = self.elements.new_array();
                self.elements.at_root |= node == ROOT;
                let outer = self.element;
                loop {
                    self.element = self.elements.new_element(outer, array);
                    let r = self.value(depth + 1, node);
                    self.element = outer;
                    r?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.err("expected ',' or ']' in an array")),
                    }
                }
            }
            Some(b'"') => {
                if entry.field.is_none() {
                    return self.skip_string();
                }
                Leaf::Str(self.string()?)
            }
            Some(b't') => self.literal(b"true", Leaf::Bool(true))?,
            Some(b'f') => self.literal(b"false", Leaf::Bool(false))?,
            Some(b'n') => self.literal(b"null", Leaf::Null)?,
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                self.number()?;
                Leaf::Num(Num::from_text(&self.text[start..self.i]))
            }
            _ => return Err(self.err("expected a JSON value")),
        };
        if let Some(field) = entry.field {
            self.out.push(Found {
                field,
                element: self.element,
                leaf,
            });
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8], leaf: Leaf<'a>) -> Result<Leaf<'a>, EventError> {
        match word_end(self.b, self.i, word) {
            Some(end) => {
                self.i = end;
                Ok(leaf)
            }
            None => Err(self.err("invalid literal (expected true, false or null)")),
        }
    }

    /// Skip any value, checking its grammar. Skipped values are most of a typical event, so plain ones (no
    /// escapes, exponents or very deep nesting) are passed over by [`Self::value_end`], with the position in a
    /// register and no error to build; anything else, invalid input included, goes to [`Self::skip_checked`],
    /// which handles every case and says exactly where the input is wrong.
    #[inline(always)]
    fn skip(&mut self, depth: usize) -> Result<(), EventError> {
        match self.value_end(self.i, depth) {
            Some(end) => {
                self.i = end;
                Ok(())
            }
            None => self.skip_checked(depth),
        }
    }

    /// Past the value at `i` (after any whitespace) at nesting depth `depth`, if it is valid and plain. Kept out
    /// of the object loop: inlined there, it left the loop short of registers, and it cost more than the call.
    #[inline(never)]
    fn value_end(&self, i: usize, depth: usize) -> Option<usize> {
        let b = self.b;
        let i = ws(b, i);
        match *b.get(i)? {
            b'"' => self.string_after(i),
            b'{' | b'[' => self.container_end(i, depth),
            b'-' | b'0'..=b'9' => plain_number_end(b, i),
            b't' => word_end(b, i, b"true"),
            b'f' => word_end(b, i, b"false"),
            b'n' => word_end(b, i, b"null"),
            _ => None,
        }
    }

    /// [`Self::skip`] for every input.
    #[inline(never)]
    fn skip_checked(&mut self, depth: usize) -> Result<(), EventError> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.skip_string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'{' | b'[') => self.skip_container_checked(depth),
            Some(b't') => self.literal(b"true", Leaf::Null).map(drop),
            Some(b'f') => self.literal(b"false", Leaf::Null).map(drop),
            Some(b'n') => self.literal(b"null", Leaf::Null).map(drop),
            _ => Err(self.err("expected a JSON value")),
        }
    }

    /// Past the object or array at `i`, if it is valid and plain (see [`Self::skip`]): one loop over its
    /// tokens with the open containers kept as bits, rather than a call per value.
    #[inline(never)]
    fn container_end(&self, i: usize, depth: usize) -> Option<usize> {
        let b = self.b;
        let mut i = i;
        // The containers open inside the skipped one (it included), innermost in bit 0: set for an object.
        let mut level = 0;
        let mut objects = 0u64;
        let max_level = MAX_DEPTH.saturating_sub(depth).min(64);
        loop {
            // A value starts at `i`.
            match *b.get(i)? {
                b'"' => i = self.string_after(i)?,
                open @ (b'{' | b'[') => {
                    if level == max_level {
                        return None;
                    }
                    i = ws(b, i + 1);
                    // '}' and ']' are two past '{' and '['.
                    if *b.get(i)? == open + 2 {
                        i += 1;
                    } else {
                        level += 1;
                        objects = objects << 1 | u64::from(open == b'{');
                        if open == b'{' {
                            i = self.key(i)?;
                        }
                        continue;
                    }
                }
                b'-' | b'0'..=b'9' => i = plain_number_end(b, i)?,
                b't' => i = word_end(b, i, b"true")?,
                b'f' => i = word_end(b, i, b"false")?,
                b'n' => i = word_end(b, i, b"null")?,
                _ => return None,
            }
            // After a value: close containers until a comma leads to the next value.
            loop {
                if level == 0 {
                    return Some(i);
                }
                i = ws(b, i);
                let c = *b.get(i)?;
                if objects & 1 == 1 {
                    if c == b',' {
                        i = self.key(i + 1)?;
                        break;
                    }
                    if c != b'}' {
                        return None;
                    }
                } else {
                    if c == b',' {
                        i = ws(b, i + 1);
                        break;
                    }
                    if c != b']' {
                        return None;
                    }
                }
                i += 1;
                level -= 1;
                objects >>= 1;
            }
        }
    }

    /// A key and its colon, from `i` (before any whitespace); returns where its value starts.
    #[inline(always)]
    fn key(&self, i: usize) -> Option<usize> {
        let i = ws(self.b, i);
        if *self.b.get(i)? != b'"' {
            return None;
        }
        let i = ws(self.b, self.string_after(i)?);
        if *self.b.get(i)? != b':' {
            return None;
        }
        Some(ws(self.b, i + 1))
    }

    /// Just past the string whose opening quote is at `i`, if it holds no escape or control character.
    #[inline(always)]
    fn string_after(&self, i: usize) -> Option<usize> {
        let j = stops::next_stop(self.stops, i + 1)?;
        (self.b[j] == b'"').then_some(j + 1)
    }

    /// Skip the object or array at `self.i`, checking its grammar: [`Self::skip_checked`] for containers.
    fn skip_container_checked(&mut self, depth: usize) -> Result<(), EventError> {
        if depth >= MAX_DEPTH {
            return Err(EventError::TooDeep {
                offset: self.i,
                limit: MAX_DEPTH,
            });
        }
        let (close, message) = if self.b[self.i] == b'{' {
            (b'}', "expected ',' or '}' in an object")
        } else {
            (b']', "expected ',' or ']' in an array")
        };
        self.i += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(());
        }
        loop {
            if close == b'}' {
                self.ws();
                if self.peek() != Some(b'"') {
                    return Err(self.err("expected a string key"));
                }
                self.skip_string()?;
                self.expect(b':', "expected ':' after a key")?;
            }
            self.skip(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err(message)),
            }
        }
    }

    fn number(&mut self) -> Result<(), EventError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.err("invalid number: digit expected after '.'"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.err("invalid number: digit expected in exponent"));
            }
            self.digits();
            return self.in_range(start);
        }
        if self.i - start > 300 {
            return self.in_range(start);
        }
        Ok(())
    }

    /// serde_json refuses numbers beyond `f64`'s range (`1e400`), so the scanner does too. Only an exponent or
    /// hundreds of digits can get there.
    fn in_range(&mut self, start: usize) -> Result<(), EventError> {
        if self.text[start..self.i]
            .parse::<f64>()
            .is_ok_and(f64::is_finite)
        {
            Ok(())
        } else {
            self.i = start;
            Err(self.err("number out of range"))
        }
    }

    fn digits(&mut self) {
        self.i = digits_end(self.b, self.i);
    }

    /// Find the closing quote of the string starting at `self.i` (a `"`); returns whether escapes occur.
    #[inline]
    fn string_end(&mut self) -> Result<(usize, usize, bool), EventError> {
        let start = self.i + 1;
        // Most strings end at their first stop, a quote.
        if let Some(j) = stops::next_stop(self.stops, start)
            && self.b[j] == b'"'
        {
            self.i = j + 1;
            return Ok((start, j, false));
        }
        self.string_end_checked(start)
    }

    /// [`Self::string_end`] for strings with escapes, control characters or no end.
    #[inline(never)]
    fn string_end_checked(&mut self, start: usize) -> Result<(usize, usize, bool), EventError> {
        let mut i = start;
        let mut escaped = false;
        loop {
            let Some(j) = stops::next_stop(self.stops, i) else {
                self.i = self.b.len();
                return Err(self.err("unterminated string"));
            };
            if self.b[j] < 0x20 {
                self.i = j;
                return Err(self.err("control character inside a string"));
            }
            if self.b[j] == b'"' {
                self.i = j + 1;
                return Ok((start, j, escaped));
            }
            escaped = true;
            match self.b.get(j + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i = j + 2,
                Some(b'u') => match (hex4(self.b, j + 2), hex4(self.b, j + 8)) {
                    // A surrogate pair, which must come whole (serde_json refuses a lone half even in values
                    // it is not asked to keep).
                    (Some(0xD800..=0xDBFF), Some(0xDC00..=0xDFFF))
                        if self.b[j + 6..j + 8] == *b"\\u" =>
                    {
                        i = j + 12
                    }
                    (Some(0xD800..=0xDFFF), _) => {
                        self.i = j;
                        return Err(self.err("invalid \\u escape (unpaired surrogate)"));
                    }
                    (Some(_), _) => i = j + 6,
                    (None, _) => {
                        self.i = j;
                        return Err(self.err("invalid escape in a string"));
                    }
                },
                _ => {
                    self.i = j;
                    return Err(self.err("invalid escape in a string"));
                }
            }
        }
    }

    fn skip_string(&mut self) -> Result<(), EventError> {
        self.string_end().map(drop)
    }

    fn string(&mut self) -> Result<Cow<'a, str>, EventError> {
        let at = self.i;
        let (start, end, escaped) = self.string_end()?;
        if !escaped {
            return Ok(Cow::Borrowed(&self.text[start..end]));
        }
        self.decode(at, start, end)
    }

    /// The contents of the string with escapes at `at` (its quote), found by [`Self::string_end`].
    #[inline(never)]
    fn decode(&self, at: usize, start: usize, end: usize) -> Result<Cow<'a, str>, EventError> {
        // Rare path: let serde_json decode escapes (surrogate pairs included).
        serde_json::from_str::<String>(&self.text[start - 1..=end])
            .map(Cow::Owned)
            .map_err(|_| EventError::Syntax {
                offset: at,
                message: "invalid \\u escape (unpaired surrogate)",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inline turn-away in `child_at` (first byte, length) agrees with the full lookup, dotted and empty
    /// keys included.
    #[test]
    fn child_at_agrees_with_child() {
        let mut table = PathTable::default();
        // `m` has more children than the short list holds.
        let many: Vec<String> = (0..12).map(|k| format!("m.key{k}")).collect();
        let paths = [
            "ab",
            "ab.cd",
            "x.y.z",
            "a.b",
            "long.key.here",
            "q",
            "q..r",
            ".s",
        ];
        for (field, path) in paths
            .into_iter()
            .chain(many.iter().map(String::as_str))
            .enumerate()
        {
            table.register(path, field as u32);
        }
        let keys = [
            "",
            "a",
            "ab",
            "abc",
            "ab.cd",
            "ab.c",
            "x",
            "x.y",
            "x.y.z",
            "y.z",
            "a.b",
            "b",
            "long",
            "long.key",
            "long.key.here",
            "key.here",
            "q",
            "q.",
            "q..r",
            ".r",
            ".s",
            "s",
            ".",
            "..",
            "m",
            "key3",
            "key11",
            "key12",
            "m.key3",
            "kex3",
        ];
        let nodes: Vec<u32> = ["", "ab", "x", "x.y", "long", "long.key", "q", "q.", "m"]
            .iter()
            .map(|p| {
                if p.is_empty() {
                    ROOT
                } else {
                    table.by_path[*p]
                }
            })
            .collect();
        for &node in &nodes {
            for key in keys {
                let doc = format!("\"{key}\"");
                assert_eq!(
                    table.child_at(node, doc.as_bytes(), 1, 1 + key.len()),
                    table.child(node, key),
                    "{key:?} under {}",
                    table.nodes[node as usize].path
                );
            }
        }
    }
}
