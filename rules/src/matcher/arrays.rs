//! Array consistency for one AND-branch, as AWS's event-ruler does it: the values that satisfy a branch's
//! fields must not come from different elements of the same array. `{"a": {"b": ["x"], "c": ["y"]}}` matches
//! `{"a": [{"b": "x", "c": "y"}]}` but not `{"a": [{"b": "x"}, {"c": "y"}]}`.
//!
//! Only branches whose fields can share an array (their paths share a first key) and whose values for this event
//! lie inside arrays come here; everything else is decided field by field. The check is one bottom-up pass over
//! the array elements that hold a candidate value, instead of trying every combination of values: per element,
//! the non-dominated outcomes (S, N) of choosing values inside it, S = the fields given a value, N = the
//! `exists: false` fields that still have a value consistent with the choice. An array contributes either one of
//! its elements' outcomes or nothing; an element combines its own values with one outcome per array it holds.

use crate::pattern::Cond;
use crate::scan::{ArrayElement, Found};

/// One bit per field of the branch that needs the array check.
type Mask = u128;
/// Most fields of one branch the check tracks; beyond that (never seen in practice) fields are decided one by
/// one, without array consistency.
pub(crate) const MAX_FIELDS: u32 = Mask::BITS;

/// (fields given a value, `exists: false` fields still present).
type Outcome = (Mask, Mask);

/// Working memory reused between events; stamps replace clearing.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    generation: u32,
    elements: Vec<ElementState>,
    arrays: Vec<ArrayState>,
    involved: Vec<u32>,
    outcomes: Vec<Outcome>,
    tmp: Vec<Outcome>,
}

#[derive(Debug, Default)]
struct ElementState {
    stamp: u32,
    /// Fields with a satisfying value directly in this element (not in a nested array).
    values: Mask,
    /// `exists: false` fields with a value directly in this element.
    present: Mask,
    child_arrays: Vec<u32>,
}

#[derive(Debug, Default)]
struct ArrayState {
    stamp: u32,
    /// Outcomes of the elements that give some field a value.
    outcomes: Vec<Outcome>,
    /// `exists: false` fields with a value anywhere in the array: what stays present if no element is chosen.
    present: Mask,
    closed: bool,
}

/// `a` is at least as good as `b`: more fields given a value, fewer absent-fields still present.
fn dominates(a: &Outcome, b: &Outcome) -> bool {
    a.0 & b.0 == b.0 && a.1 & b.1 == a.1
}

fn insert(set: &mut Vec<Outcome>, x: Outcome) {
    if set.iter().any(|y| dominates(y, &x)) {
        return;
    }
    set.retain(|y| !dominates(&x, y));
    set.push(x);
}

/// Every combination of one outcome of `acc` and one of `other`, non-dominated ones kept.
fn join(acc: &mut Vec<Outcome>, other: &[Outcome], tmp: &mut Vec<Outcome>) {
    tmp.clear();
    for a in acc.iter() {
        for o in other {
            insert(tmp, (a.0 | o.0, a.1 | o.1));
        }
    }
    std::mem::swap(acc, tmp);
}

/// Whether the branch's fields (`(field, value list)`, `leaves` sorted by field) can all be satisfied by
/// array-consistent values. `None` when the branch has more fields needing the check than [`MAX_FIELDS`].
pub(crate) fn consistent_match<'c>(
    fields: impl Iterator<Item = (u32, &'c [Cond])> + Clone,
    leaves: &[Found<'_>],
    elements: &[ArrayElement],
    arrays: u32,
    s: &mut Scratch,
) -> Option<bool> {
    if s.generation == u32::MAX {
        s.generation = 0;
        s.elements.iter_mut().for_each(|e| e.stamp = 0);
        s.arrays.iter_mut().for_each(|a| a.stamp = 0);
    }
    s.generation += 1;
    let generation = s.generation;
    if s.elements.len() < elements.len() {
        s.elements.resize_with(elements.len(), Default::default);
    }
    if s.arrays.len() < arrays as usize {
        s.arrays.resize_with(arrays as usize, Default::default);
    }
    s.involved.clear();
    let root = &mut s.elements[0];
    root.stamp = generation;
    root.values = 0;
    root.present = 0;
    root.child_arrays.clear();
    // With an `exists: false` field, a field satisfied outside every array may still better take a value
    // inside one: choosing an element can make the other field absent.
    let negatives = fields
        .clone()
        .any(|(_, conds)| conds.iter().any(|c| matches!(c, Cond::Exists(false))));

    let mut required: Mask = 0;
    let mut may_be_absent: Mask = 0;
    let mut next_bit = 0u32;
    for (field, conds) in fields {
        let start = leaves.partition_point(|f| f.field < field);
        let run = &leaves[start..];
        let run = &run[..run.partition_point(|f| f.field == field)];
        let satisfies = |f: &Found<'_>| {
            let v = f.leaf.scalar();
            conds.iter().any(|c| match c {
                Cond::Exists(want) => *want,
                c => c.test(v),
            })
        };
        // A satisfying value outside every array is consistent with any choice; a value outside every array
        // keeps an `exists: false` field present whatever is chosen.
        let at_root = run.iter().any(|f| f.element == 0 && satisfies(f));
        if at_root && !negatives {
            continue;
        }
        let can_be_absent = conds.iter().any(|c| matches!(c, Cond::Exists(false)))
            && run.iter().all(|f| f.element != 0);
        if run.is_empty() && can_be_absent {
            continue;
        }
        if next_bit == MAX_FIELDS {
            return None;
        }
        let bit: Mask = 1 << next_bit;
        next_bit += 1;
        if at_root {
            s.elements[0].values |= bit;
        }
        let mut any = at_root;
        for f in run.iter().filter(|f| f.element != 0) {
            let sat = satisfies(f);
            any |= sat;
            if sat || can_be_absent {
                touch(s, elements, f.element, generation);
                let e = &mut s.elements[f.element as usize];
                if sat {
                    e.values |= bit;
                }
                if can_be_absent {
                    e.present |= bit;
                }
            }
        }
        if !any && !can_be_absent {
            return Some(false);
        }
        required |= bit;
        if can_be_absent {
            may_be_absent |= bit;
        }
    }
    if required == 0 {
        return Some(true);
    }

    // Bottom-up: an element's number is larger than its enclosing element's.
    s.involved.sort_unstable_by(|a, b| b.cmp(a));
    let Scratch {
        elements: states,
        arrays: array_states,
        involved,
        outcomes,
        tmp,
        ..
    } = s;
    for &e in involved.iter() {
        let ArrayElement { parent, array } = elements[e as usize];
        let children = std::mem::take(&mut states[e as usize].child_arrays);
        let st = &states[e as usize];
        outcomes.clear();
        outcomes.push((st.values, st.present));
        let mut present = st.present;
        for &a in &children {
            let arr = close(&mut array_states[a as usize]);
            present |= arr.present;
            join(outcomes, &arr.outcomes, tmp);
        }
        states[e as usize].child_arrays = children;
        let arr = &mut array_states[array as usize];
        if arr.stamp != generation {
            arr.stamp = generation;
            arr.outcomes.clear();
            arr.present = 0;
            arr.closed = false;
            states[parent as usize].child_arrays.push(array);
        }
        arr.present |= present;
        // Choosing nothing in an element is choosing no element of the array: that option is added on close.
        for &o in outcomes.iter().filter(|o| o.0 != 0) {
            insert(&mut arr.outcomes, o);
        }
    }
    outcomes.clear();
    outcomes.push((states[0].values, states[0].present));
    for &a in &states[0].child_arrays {
        let arr = close(&mut array_states[a as usize]);
        join(outcomes, &arr.outcomes, tmp);
    }
    Some(outcomes.iter().any(|(given, present)| {
        let absent = may_be_absent & !present;
        required & !given & !absent == 0
    }))
}

/// Add the "no element chosen" outcome once all elements are in.
fn close(arr: &mut ArrayState) -> &ArrayState {
    if !arr.closed {
        arr.closed = true;
        let none = (0, arr.present);
        insert(&mut arr.outcomes, none);
    }
    arr
}

/// Make an element (and the elements enclosing it) part of this check.
fn touch(s: &mut Scratch, elements: &[ArrayElement], mut e: u32, generation: u32) {
    while e != 0 {
        let st = &mut s.elements[e as usize];
        if st.stamp == generation {
            return;
        }
        st.stamp = generation;
        st.values = 0;
        st.present = 0;
        st.child_arrays.clear();
        s.involved.push(e);
        e = elements[e as usize].parent;
    }
}
