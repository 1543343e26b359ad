//! The straightforward evaluator: flatten the whole event (every leaf with its array membership), expand one
//! pattern into AND-branches and search each for an array-consistent choice of values. It is the reference the
//! compiled [`crate::Matcher`] is tested against, and the simplest way to test a single rule.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::number::Num;
use crate::pattern::{Cond, Pattern, Scalar};

/// A leaf value of an event, owned where the source does not hold it in the right form.
#[derive(Debug, Clone)]
pub(crate) enum Leaf<'a> {
    Str(Cow<'a, str>),
    Num(Num),
    Bool(bool),
    Null,
}

impl Leaf<'_> {
    pub(crate) fn scalar(&self) -> Scalar<'_> {
        match self {
            Leaf::Str(s) => Scalar::Str(s),
            Leaf::Num(n) => Scalar::Num(n),
            Leaf::Bool(b) => Scalar::Bool(*b),
            Leaf::Null => Scalar::Null,
        }
    }
}

/// Where a leaf sits in the event's arrays: (array, element index) for every enclosing array, outermost first.
/// Arrays are numbered in document order.
pub(crate) type Membership = Vec<(u32, u32)>;

/// The values of one field with their memberships, and the field's value list.
type FieldValues<'f, 'e> = (&'f [(Leaf<'e>, Membership)], &'f [Cond]);

/// Every leaf of an event keyed by its dotted path, with its array membership. Array elements share their
/// array's path; empty arrays and objects contribute nothing. Keys are joined with `.`, so an event key `"a.b"`
/// and a nested `a` → `b` land on the same path, as in EventBridge.
pub(crate) fn flatten(event: &Value) -> HashMap<String, Vec<(Leaf<'_>, Membership)>> {
    let mut out = HashMap::new();
    let mut arrays = 0;
    walk(
        event,
        &mut String::new(),
        &mut Vec::new(),
        &mut arrays,
        &mut out,
    );
    out
}

fn walk<'a>(
    v: &'a Value,
    path: &mut String,
    membership: &mut Membership,
    arrays: &mut u32,
    out: &mut HashMap<String, Vec<(Leaf<'a>, Membership)>>,
) {
    let leaf = match v {
        Value::Object(map) => {
            for (k, child) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(child, path, membership, arrays, out);
                path.truncate(len);
            }
            return;
        }
        Value::Array(items) => {
            let array = *arrays;
            *arrays += 1;
            for (i, item) in items.iter().enumerate() {
                membership.push((array, i as u32));
                walk(item, path, membership, arrays, out);
                membership.pop();
            }
            return;
        }
        Value::String(s) => Leaf::Str(Cow::Borrowed(s)),
        Value::Number(n) => Leaf::Num(Num::from_json(n)),
        Value::Bool(b) => Leaf::Bool(*b),
        Value::Null => Leaf::Null,
    };
    out.entry(path.clone())
        .or_default()
        .push((leaf, membership.clone()));
}

impl Pattern {
    /// Whether this one pattern matches an event, evaluated directly (no compilation). For many rules use a
    /// [`crate::Matcher`].
    ///
    /// Array consistency (as AWS's event-ruler): the pattern's `$or`s are multiplied out into AND-branches; a
    /// branch matches when each of its fields can be given one event value satisfying the field's value list
    /// such that no two chosen values lie in different elements of the same array. An `exists: false` field is
    /// absent when every value at its path lies in a different element of some array than a chosen value.
    pub fn matches(&self, event: &Value) -> bool {
        let flat = flatten(event);
        self.dnf().iter().any(|conj| {
            let fields: Vec<FieldValues<'_, '_>> = conj
                .iter()
                .map(|(path, conds)| (flat.get(path).map_or(&[][..], Vec::as_slice), *conds))
                .collect();
            choose(&fields, &mut BTreeMap::new(), &mut Vec::new())
        })
    }
}

/// Whether two memberships agree on every array they share.
fn consistent(so_far: &BTreeMap<u32, u32>, m: &Membership) -> bool {
    m.iter()
        .all(|(array, i)| so_far.get(array).is_none_or(|j| j == i))
}

/// Exhaustive search for a consistent choice: one value per field (or "absent" for a field whose list has
/// `exists: false`), checked against every array membership chosen so far. Exponential in the worst case;
/// this is the reference, the compiled matcher does the same in one bottom-up pass over the arrays.
fn choose<'f, 'e>(
    fields: &[FieldValues<'f, 'e>],
    so_far: &mut BTreeMap<u32, u32>,
    absent: &mut Vec<&'f [(Leaf<'e>, Membership)]>,
) -> bool {
    let Some(((values, conds), rest)) = fields.split_first() else {
        // All fields chosen: a field taken as absent must have no value consistent with the choice.
        return absent
            .iter()
            .all(|values| values.iter().all(|(_, m)| !consistent(so_far, m)));
    };
    for (leaf, m) in *values {
        let v = leaf.scalar();
        let holds = conds.iter().any(|c| match c {
            Cond::Exists(want) => *want,
            c => c.test(v),
        });
        if !holds || !consistent(so_far, m) {
            continue;
        }
        let added: Vec<u32> = m
            .iter()
            .filter(|(array, _)| !so_far.contains_key(array))
            .map(|(array, _)| *array)
            .collect();
        so_far.extend(m.iter().copied());
        let found = choose(rest, so_far, absent);
        added.iter().for_each(|a| {
            so_far.remove(a);
        });
        if found {
            return true;
        }
    }
    if conds.iter().any(|c| matches!(c, Cond::Exists(false))) {
        absent.push(values);
        let found = choose(rest, so_far, absent);
        absent.pop();
        return found;
    }
    false
}
