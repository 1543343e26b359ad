//! Event patterns: the parsed tree ([`Pattern`]), the leaf conditions and how one condition tests one event
//! value. Parsing and validation live in `parse.rs`.

mod parse;

use std::net::IpAddr;

use crate::cidr::Cidr;
use crate::error::PatternError;
use crate::iregexp::IRegexp;
use crate::number::Num;
use crate::wildcard::Wildcard;

/// How strictly patterns are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PatternOptions {
    /// Reject busbar's extensions (`$and`, lists of operator objects, `regex`, numbers beyond EventBridge's
    /// ±5.0e9 range), so that a pattern accepted here is also accepted by Amazon EventBridge.
    pub strict_eventbridge: bool,
}

/// A validated event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub(crate) root: Node,
}

impl Pattern {
    /// Parse and validate a pattern. The error names the JSON path inside the pattern and the problem.
    pub fn parse(
        pattern: &serde_json::Value,
        options: &PatternOptions,
    ) -> Result<Pattern, PatternError> {
        parse::parse(pattern, options)
    }

    /// Parse a pattern given as JSON text.
    pub fn parse_str(text: &str, options: &PatternOptions) -> Result<Pattern, PatternError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            PatternError::new(
                &Default::default(),
                format!("pattern is not valid JSON: {e}"),
            )
        })?;
        Pattern::parse(&value, options)
    }

    /// True when the pattern uses a busbar extension (so Amazon EventBridge would reject it).
    pub fn uses_extensions(&self) -> bool {
        self.root.uses_extensions()
    }

    /// The pattern as a disjunction of conjunctions (`$or` expanded): each inner list is (flattened field path,
    /// OR-list of conditions), all of which must hold.
    pub(crate) fn dnf(&self) -> Vec<Vec<(String, &[Cond])>> {
        let mut out = vec![Vec::new()];
        self.root.expand("", &mut out);
        out
    }
}

/// One object level of a pattern: named fields (AND) and `$or` groups (each an OR of sub-objects).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) fields: Vec<(String, Child)>,
    pub(crate) ors: Vec<Vec<Node>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Child {
    Node(Node),
    /// The value list: the field matches when any condition holds.
    Leaf(Vec<Cond>),
}

/// Most AND-branches one pattern may expand to once its `$or`s are multiplied out. EventBridge also refuses
/// patterns whose `$or` combinations explode; this keeps the compiled matcher's size bounded.
pub const MAX_OR_EXPANSION: usize = 1000;

impl Node {
    fn expand<'a>(&'a self, prefix: &str, out: &mut Vec<Vec<(String, &'a [Cond])>>) {
        for (key, child) in &self.fields {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match child {
                Child::Leaf(conds) => out
                    .iter_mut()
                    .for_each(|conj| conj.push((path.clone(), conds.as_slice()))),
                Child::Node(node) => node.expand(&path, out),
            }
        }
        for group in &self.ors {
            let mut next = Vec::new();
            for branch in group {
                let mut partial = out.clone();
                branch.expand(prefix, &mut partial);
                next.extend(partial);
            }
            *out = next;
        }
    }

    pub(crate) fn expansion_size(&self) -> usize {
        let mut n = 1usize;
        for (_, child) in &self.fields {
            if let Child::Node(node) = child {
                n = n.saturating_mul(node.expansion_size());
            }
        }
        for group in &self.ors {
            let sum = group
                .iter()
                .map(Node::expansion_size)
                .fold(0usize, usize::saturating_add);
            n = n.saturating_mul(sum);
        }
        n
    }

    fn uses_extensions(&self) -> bool {
        self.fields.iter().any(|(_, c)| match c {
            Child::Node(n) => n.uses_extensions(),
            Child::Leaf(conds) => conds.iter().any(Cond::is_extension),
        }) || self.ors.iter().flatten().any(Node::uses_extensions)
    }
}

/// A literal value in a pattern's value list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Num(Num),
    Bool(bool),
    Null,
}

/// A numeric range; `=` is the range [v, v].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Range {
    pub(crate) low: Option<(f64, bool)>,
    pub(crate) high: Option<(f64, bool)>,
}

impl Range {
    pub(crate) fn contains(&self, x: f64) -> bool {
        self.low
            .is_none_or(|(l, incl)| if incl { x >= l } else { x > l })
            && self
                .high
                .is_none_or(|(h, incl)| if incl { x <= h } else { x < h })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AnythingBut {
    /// Excluded strings and numbers.
    Values {
        strs: Vec<String>,
        nums: Vec<Num>,
    },
    Prefix(Vec<String>),
    Suffix(Vec<String>),
    /// Lower-cased.
    IgnoreCase(Vec<String>),
    Wildcard(Vec<Wildcard>),
}

/// One entry of a value list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    Exact(Literal),
    /// `ignore_case` strings are stored lower-cased.
    Prefix {
        text: String,
        ignore_case: bool,
    },
    Suffix {
        text: String,
        ignore_case: bool,
    },
    /// Lower-cased.
    EqualsIgnoreCase(String),
    AnythingBut(AnythingBut),
    Numeric(Range),
    Exists(bool),
    Cidr(Cidr),
    Wildcard(Wildcard),
    /// Extension: I-Regexp (RFC 9485), matched against the whole string.
    Regex(IRegexp),
    /// Extension: all conditions must hold for one value.
    All(Vec<Cond>),
}

/// One leaf value of an event, as conditions see it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scalar<'a> {
    Str(&'a str),
    Num(&'a Num),
    Bool(bool),
    Null,
}

impl Cond {
    fn is_extension(&self) -> bool {
        match self {
            Cond::Regex(_) | Cond::All(_) => true,
            Cond::Numeric(r) => [r.low, r.high]
                .iter()
                .flatten()
                .any(|(v, _)| v.abs() > parse::EVENTBRIDGE_NUMERIC_LIMIT),
            _ => false,
        }
    }

    /// Whether this condition holds for one event value. `exists` is decided per field, not per value, and
    /// answers `false` here.
    pub(crate) fn test(&self, v: Scalar<'_>) -> bool {
        match self {
            Cond::Exact(lit) => match (lit, v) {
                (Literal::Str(a), Scalar::Str(b)) => a == b,
                (Literal::Num(a), Scalar::Num(b)) => a.key == b.key,
                (Literal::Bool(a), Scalar::Bool(b)) => *a == b,
                (Literal::Null, Scalar::Null) => true,
                _ => false,
            },
            Cond::Prefix { text, ignore_case } => match v {
                Scalar::Str(s) if *ignore_case => lower(s).starts_with(text.as_str()),
                Scalar::Str(s) => s.starts_with(text.as_str()),
                _ => false,
            },
            Cond::Suffix { text, ignore_case } => match v {
                Scalar::Str(s) if *ignore_case => lower(s).ends_with(text.as_str()),
                Scalar::Str(s) => s.ends_with(text.as_str()),
                _ => false,
            },
            Cond::EqualsIgnoreCase(text) => matches!(v, Scalar::Str(s) if lower(s) == *text),
            Cond::AnythingBut(ab) => !ab.excludes(v),
            Cond::Numeric(range) => matches!(v, Scalar::Num(n) if range.contains(n.value)),
            Cond::Exists(_) => false,
            Cond::Cidr(c) => {
                matches!(v, Scalar::Str(s) if s.parse::<IpAddr>().is_ok_and(|ip| c.contains(ip)))
            }
            Cond::Wildcard(w) => matches!(v, Scalar::Str(s) if w.is_match(s)),
            Cond::Regex(r) => matches!(v, Scalar::Str(s) if r.is_match(s)),
            Cond::All(all) => all.iter().all(|c| c.test(v)),
        }
    }
}

impl AnythingBut {
    fn excludes(&self, v: Scalar<'_>) -> bool {
        match (self, v) {
            (AnythingBut::Values { strs, .. }, Scalar::Str(s)) => strs.iter().any(|x| x == s),
            (AnythingBut::Values { nums, .. }, Scalar::Num(n)) => {
                nums.iter().any(|x| x.key == n.key)
            }
            (AnythingBut::Prefix(ps), Scalar::Str(s)) => {
                ps.iter().any(|p| s.starts_with(p.as_str()))
            }
            (AnythingBut::Suffix(ps), Scalar::Str(s)) => ps.iter().any(|p| s.ends_with(p.as_str())),
            (AnythingBut::IgnoreCase(ps), Scalar::Str(s)) => {
                let l = lower(s);
                ps.iter().any(|p| *p == l)
            }
            (AnythingBut::Wildcard(ws), Scalar::Str(s)) => ws.iter().any(|w| w.is_match(s)),
            _ => false,
        }
    }
}

/// Test a whole value list against all values an event has at one path. `exists` is about the path; every
/// other condition holds when some value satisfies it.
pub(crate) fn test_field<'v, I>(conds: &[Cond], values: I) -> bool
where
    I: Iterator<Item = Scalar<'v>> + Clone,
{
    conds.iter().any(|c| match c {
        Cond::Exists(want) => values.clone().next().is_none() != *want,
        c => values.clone().any(|v| c.test(v)),
    })
}

/// Case folding used by `equals-ignore-case`: Unicode lower case, allocation-free for ASCII lower case.
pub(crate) fn lower(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.to_lowercase())
    }
}
