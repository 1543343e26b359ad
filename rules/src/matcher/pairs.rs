//! Pair anchors: a branch whose best single condition lets many events through (a field with few distinct
//! values, like `detail-type`), but which asks for exact values on two fields, is looked up by the pair of
//! values at once. `detail-type` × `status` with 10 × 8 distinct values finds the few branches asking for this
//! event's combination in one hash lookup, instead of marking every branch that names this `detail-type` and
//! every branch that names this `status` and intersecting the two.

use rustc_hash::FxHashMap;

use crate::number::NumKey;
use crate::pattern::{Cond, Literal, Scalar};
use crate::scan::Found;

/// Most value combinations one branch may put in a pair index (value lists are multiplied out).
pub(crate) const MAX_COMBINATIONS: usize = 16;

/// The branches anchored on one pair of fields: first value → second value → conditions (one per branch).
#[derive(Debug, Default)]
pub(crate) struct PairIndex {
    pub(crate) first: u32,
    pub(crate) second: u32,
    map: FxHashMap<Box<[u8]>, BySecond>,
}

/// Second value → the conditions anchored on (first value, second value).
type BySecond = FxHashMap<Box<[u8]>, Vec<u32>>;

/// The exact literals of a value list made only of exact values, else `None`.
pub(crate) fn exact_literals(conds: &[Cond]) -> Option<Vec<&Literal>> {
    conds
        .iter()
        .map(|c| match c {
            Cond::Exact(lit) => Some(lit),
            _ => None,
        })
        .collect()
}

/// An injective byte encoding of a value, the same for a pattern literal and an event value that it equals.
fn encode(v: Scalar<'_>, out: &mut Vec<u8>) {
    out.clear();
    match v {
        Scalar::Str(s) => {
            out.push(b's');
            out.extend_from_slice(s.as_bytes());
        }
        Scalar::Num(n) => match n.key {
            NumKey::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(&i.to_le_bytes());
            }
            NumKey::Float(bits) => {
                out.push(b'f');
                out.extend_from_slice(&bits.to_le_bytes());
            }
        },
        Scalar::Bool(true) => out.push(b'T'),
        Scalar::Bool(false) => out.push(b'F'),
        Scalar::Null => out.push(b'N'),
    }
}

fn literal_scalar(lit: &Literal) -> Scalar<'_> {
    match lit {
        Literal::Str(s) => Scalar::Str(s),
        Literal::Num(n) => Scalar::Num(n),
        Literal::Bool(b) => Scalar::Bool(*b),
        Literal::Null => Scalar::Null,
    }
}

impl PairIndex {
    pub(crate) fn new(first: u32, second: u32) -> Self {
        PairIndex {
            first,
            second,
            map: FxHashMap::default(),
        }
    }

    /// Index a branch's anchor condition `cond` under every combination of the two value lists.
    pub(crate) fn add(&mut self, first: &[&Literal], second: &[&Literal], cond: u32) {
        let mut buf = Vec::new();
        for a in first {
            encode(literal_scalar(a), &mut buf);
            let inner = self.map.entry(buf.as_slice().into()).or_default();
            for b in second {
                encode(literal_scalar(b), &mut buf);
                let conds = inner.entry(buf.as_slice().into()).or_default();
                if !conds.contains(&cond) {
                    conds.push(cond);
                }
            }
        }
    }

    /// Every condition whose pair of values the event holds. `leaves` is sorted by field.
    pub(crate) fn lookup(&self, leaves: &[Found<'_>], buf: &mut Vec<u8>, f: &mut impl FnMut(u32)) {
        let run = |field: u32| {
            let start = leaves.partition_point(|l| l.field < field);
            let rest = &leaves[start..];
            &rest[..rest.partition_point(|l| l.field == field)]
        };
        let (firsts, seconds) = (run(self.first), run(self.second));
        if firsts.is_empty() || seconds.is_empty() {
            return;
        }
        for a in firsts {
            encode(a.leaf.scalar(), buf);
            let Some(inner) = self.map.get(buf.as_slice()) else {
                continue;
            };
            for b in seconds {
                encode(b.leaf.scalar(), buf);
                if let Some(conds) = inner.get(buf.as_slice()) {
                    conds.iter().copied().for_each(&mut *f);
                }
            }
        }
    }
}
