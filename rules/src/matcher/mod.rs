//! Many patterns compiled into one matcher. Each pattern is expanded into AND-branches (its `$or`s multiplied
//! out); each branch is a set of conditions, one per (path, value list). Per branch, one anchor condition (the
//! most selective one that a value can prove: exact values on a field where rules ask for many distinct values
//! beat ranges, affixes and scans) is put in the per-field indexes (`index.rs`), which turn every event value
//! into the anchors it satisfies without looking at the others. Only branches whose anchor hits verify their
//! other conditions, `anything-but` and `exists: false` included (those accept a value by its absence and
//! cannot drive anything). So the work per event follows the event's size and the number of rules that nearly
//! match, not the number of rules.
//!
//! - `index.rs`: per-field indexes (exact, affixes, numeric intervals, CIDR, wildcards by literal prefix or
//!   suffix); a weak anchor gets a second one and candidates are the intersection.
//! - `pairs.rs`: branches with exact values on two fields are found by one lookup of the value pair.
//! - `arrays.rs`: array consistency for candidate branches whose fields have values inside arrays.

mod arrays;
mod index;
mod pairs;

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::error::EventError;
use crate::eval::Leaf;
use crate::pattern::{Cond, Pattern, Scalar, test_field};
use crate::scan::{Elements, Found, PathTable, ROOT, scan};
use index::{FieldIndex, Hit, Indexed};
use pairs::PairIndex;

/// The caller's identifier for a rule (its position in the caller's rule list, say).
pub type RuleId = usize;

/// An event to match: raw JSON bytes (parsed once, only the fields some pattern names are read) or an already
/// parsed value.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    Json(&'a [u8]),
    Value(&'a Value),
}

/// Collects patterns, then compiles them with [`MatcherBuilder::build`].
#[derive(Debug, Default)]
pub struct MatcherBuilder {
    rules: Vec<(RuleId, Pattern)>,
}

impl MatcherBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a rule. Several patterns may share one id; the id is reported once when any of them matches.
    pub fn add(&mut self, rule: RuleId, pattern: &Pattern) -> &mut Self {
        self.rules.push((rule, pattern.clone()));
        self
    }

    pub fn build(self) -> Matcher {
        let mut m = Matcher {
            paths: PathTable::default(),
            fields: Vec::new(),
            conds: Vec::new(),
            lists: Vec::new(),
            verify: Vec::new(),
            checks: Vec::new(),
            branches: Vec::new(),
            always: Vec::new(),
            rule_ids: Vec::new(),
            fields_with_exists: Vec::new(),
            pairs: Vec::new(),
        };
        let mut pair_of: FxHashMap<(u32, u32), usize> = FxHashMap::default();
        // Pass 1: expand every pattern into AND-branches and learn, per field, how many distinct exact values
        // rules ask for: that is how well a condition on the field splits the rule set.
        let mut field_of: FxHashMap<String, u32> = FxHashMap::default();
        let mut dense: FxHashMap<RuleId, u32> = FxHashMap::default();
        let mut expanded: Vec<(u32, Conjunction)> = Vec::new();
        for (rule, pattern) in &self.rules {
            let next = m.rule_ids.len() as u32;
            let rule_idx = *dense.entry(*rule).or_insert(next);
            if rule_idx == next {
                m.rule_ids.push(*rule);
            }
            for conjunction in pattern.dnf() {
                let conds = conjunction
                    .into_iter()
                    .map(|(path, conds)| {
                        let field = *field_of.entry(path.clone()).or_insert_with(|| {
                            m.fields.push(FieldIndex::default());
                            m.register_path(&path, m.fields.len() as u32 - 1);
                            m.fields.len() as u32 - 1
                        });
                        (field, conds.to_vec())
                    })
                    .collect();
                expanded.push((rule_idx, conds));
            }
        }
        let mut field_names = vec![String::new(); m.fields.len()];
        for (path, &field) in &field_of {
            field_names[field as usize] = path.clone();
        }
        let mut distinct: Vec<rustc_hash::FxHashSet<String>> =
            vec![Default::default(); m.fields.len()];
        let mut affixes: Vec<[rustc_hash::FxHashSet<&str>; 2]> =
            (0..m.fields.len()).map(|_| Default::default()).collect();
        for (_, conj) in &expanded {
            for (field, conds) in conj {
                for c in conds {
                    match c {
                        Cond::Exact(lit) => {
                            distinct[*field as usize].insert(format!("{lit:?}"));
                        }
                        Cond::Wildcard(w) => {
                            let [p, s] = &mut affixes[*field as usize];
                            p.insert(w.literal_prefix());
                            s.insert(w.literal_suffix());
                        }
                        _ => {}
                    }
                }
            }
        }
        for (f, [p, s]) in affixes.iter().enumerate() {
            m.fields[f].wildcard_affixes = (p.len(), s.len());
        }
        drop(affixes);
        // Pass 2: each branch is driven by one anchor condition, the one expected to let the fewest events
        // through; the others are verified only when the anchor hits. The work per event then follows the rules
        // that nearly match, not the size of the rule set.
        for (rule_idx, conj) in expanded {
            let branch = m.branches.len() as u32;
            let mut ranked: Vec<(usize, f64)> = conj
                .iter()
                .enumerate()
                .filter(|(_, (_, conds))| indexable(conds))
                .map(|(i, (field, conds))| (i, selectivity(conds, distinct[*field as usize].len())))
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            // A weak best anchor (a field with few distinct values) lets many branches through; a second anchor
            // then makes candidates the intersection, counted cheaply instead of verified one by one.
            let pair = pair_anchor(&conj, &distinct, ranked.first().map_or(0.0, |r| r.1));
            let anchors: Vec<usize> = match ranked.as_slice() {
                _ if pair.is_some() => vec![],
                [] => vec![],
                [(first, s), (second, s2), ..] if *s < WEAK_ANCHOR && *s2 >= 2.0 => {
                    vec![*first, *second]
                }
                [(first, _), ..] => vec![*first],
            };
            let mut verify = Vec::new();
            let first_cond = m.conds.len() as u32;
            let conj_fields: Vec<u32> = conj.iter().map(|(f, _)| *f).collect();
            let conj_conds: Vec<Vec<Cond>> = conj.iter().map(|(_, c)| c.clone()).collect();
            let arrays = may_share_array(&conj, &field_names);
            for (i, (field, conds)) in conj.into_iter().enumerate() {
                let cond = m.conds.len() as u32;
                if let Some((a, b)) = pair {
                    if i == a {
                        let (fa, fb) = (field, conj_fields[b]);
                        let key = (fa.min(fb), fa.max(fb));
                        let idx = *pair_of.entry(key).or_insert_with(|| {
                            m.pairs.push(PairIndex::new(key.0, key.1));
                            m.pairs.len() - 1
                        });
                        let la = pairs::exact_literals(&conds).expect("chosen as exact");
                        let lb = pairs::exact_literals(&conj_conds[b]).expect("chosen as exact");
                        if fa < fb {
                            m.pairs[idx].add(&la, &lb, cond);
                        } else {
                            m.pairs[idx].add(&lb, &la, cond);
                        }
                    } else if i != b {
                        verify.push(cond);
                    }
                } else if anchors.contains(&i) {
                    if m.index_condition(cond, field, &conds) == Indexed::Verify {
                        verify.push(cond);
                    }
                } else {
                    verify.push(cond);
                }
                let start = m.lists.len() as u32;
                m.lists.extend(conds);
                m.conds.push(Condition {
                    branch,
                    field,
                    list: start..m.lists.len() as u32,
                });
            }
            let need = anchors.len() as u32 + u32::from(pair.is_some());
            let start = m.verify.len() as u32;
            m.verify.extend(verify);
            m.branches.push(Branch {
                rule: rule_idx,
                need,
                verify: start..m.verify.len() as u32,
                conds: first_cond..m.conds.len() as u32,
                arrays,
            });
            if need == 0 {
                m.always.push(branch);
            }
        }
        for (i, f) in m.fields.iter_mut().enumerate() {
            f.finish();
            if !f.exists.is_empty() {
                m.fields_with_exists.push(i as u32);
            }
        }
        m
    }
}

/// One AND-branch: (field, value list) pairs.
type Conjunction = Vec<(u32, Vec<Cond>)>;

/// Whether two fields of a branch can lie in the same array of an event, so that array consistency has to be
/// checked: the event is an object, so the leaves of one array all share the array's first key (except under
/// an empty top-level key, which joins to the empty path; the scanner reports such arrays).
fn may_share_array(conj: &Conjunction, names: &[String]) -> bool {
    let first = |f: u32| names[f as usize].split('.').next().unwrap_or("");
    conj.iter().enumerate().any(|(i, (a, _))| {
        conj[i + 1..]
            .iter()
            .any(|(b, _)| a == b || first(*a) == first(*b))
    })
}

/// Below this selectivity a branch gets a second anchor.
const WEAK_ANCHOR: f64 = 32.0;

/// Two value lists of exact values on different fields that split the rules better together than the best
/// single anchor (`best`) does alone: the branch is then found by the pair of values, in one lookup, and
/// neither list needs verifying (with many rules, verifying candidates is mostly cache misses).
fn pair_anchor(
    conj: &Conjunction,
    distinct: &[rustc_hash::FxHashSet<String>],
    best: f64,
) -> Option<(usize, usize)> {
    let mut exact: Vec<(usize, f64, usize)> = conj
        .iter()
        .enumerate()
        .filter_map(|(i, (field, conds))| {
            let n = pairs::exact_literals(conds)?.len();
            let split = distinct[*field as usize].len().max(2) as f64 / n as f64;
            Some((i, split, n))
        })
        .collect();
    exact.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let (first, rest) = exact.split_first()?;
    let second = rest
        .iter()
        .find(|s| conj[s.0].0 != conj[first.0].0 && first.2 * s.2 <= pairs::MAX_COMBINATIONS)?;
    (first.1 * second.1 > best).then_some((first.0, second.0))
}

/// A value list can drive matching through the index unless it accepts values by their absence
/// (`anything-but`, `exists: false`).
fn indexable(conds: &[Cond]) -> bool {
    !conds.iter().any(|c| {
        matches!(c, Cond::AnythingBut(_) | Cond::Exists(false))
            || matches!(c, Cond::All(all) if all.iter().all(|x| matches!(x, Cond::AnythingBut(_))))
    })
}

/// Rough inverse of the share of events a value list lets through: exact values on a field where rules ask for
/// many distinct values split best; ranges, affixes and scans less; `exists` hardly at all.
fn selectivity(conds: &[Cond], distinct_exact: usize) -> f64 {
    let per = |c: &Cond| -> f64 {
        match c {
            Cond::Exact(_) | Cond::EqualsIgnoreCase(_) => distinct_exact.max(2) as f64,
            Cond::Cidr(_) => 8.0,
            Cond::Prefix { .. } | Cond::Suffix { .. } => 4.0,
            Cond::Numeric(_) => 3.0,
            // Indexed by its literal prefix, or else tried on every value (a scan: the worst anchor).
            Cond::Wildcard(w)
                if !(w.literal_prefix().is_empty() && w.literal_suffix().is_empty()) =>
            {
                4.0
            }
            Cond::Wildcard(_) | Cond::Regex(_) => 0.5,
            Cond::All(_) => 2.0,
            Cond::Exists(_) | Cond::AnythingBut(_) => 1.0,
        }
    };
    // A list lets through the union of its entries.
    1.0 / conds.iter().map(|c| 1.0 / per(c)).sum::<f64>()
}

#[derive(Debug)]
struct Condition {
    branch: u32,
    field: u32,
    /// Its value list in `Matcher::lists`. The lists, conditions and verify lists of one branch are stored
    /// next to each other, so verifying a candidate touches few cache lines (with 10,000 rules, cache misses
    /// on scattered allocations were the largest cost).
    list: std::ops::Range<u32>,
}

#[derive(Debug)]
struct Branch {
    rule: u32,
    /// Indexed conditions that must be hit.
    need: u32,
    /// Conditions verified directly once the branch is a candidate (a range of `Matcher::verify`).
    verify: std::ops::Range<u32>,
    /// All its conditions (anchors included), for the array-consistency check.
    conds: std::ops::Range<u32>,
    /// Two of its fields can lie in the same array of an event.
    arrays: bool,
}

/// All rules of a bus compiled into one structure. Immutable and `Sync`: share it between threads, give each
/// thread its own [`MatchScratch`].
#[derive(Debug)]
pub struct Matcher {
    paths: PathTable,
    fields: Vec<FieldIndex>,
    conds: Vec<Condition>,
    /// Every condition's value list, in condition order.
    lists: Vec<Cond>,
    /// Every branch's verify list, in branch order.
    verify: Vec<u32>,
    checks: Vec<Cond>,
    branches: Vec<Branch>,
    always: Vec<u32>,
    rule_ids: Vec<RuleId>,
    fields_with_exists: Vec<u32>,
    pairs: Vec<PairIndex>,
}

/// Reusable per-thread working memory, so that matching allocates nothing in the steady state. Stamps
/// (generation numbers) replace clearing per-event arrays.
#[derive(Debug, Default)]
pub struct MatchScratch {
    generation: u32,
    cond_stamp: Vec<u32>,
    branch_stamp: Vec<u32>,
    branch_hits: Vec<u32>,
    rule_stamp: Vec<u32>,
    field_stamp: Vec<u32>,
    /// Fields with a value inside some array of this event.
    array_stamp: Vec<u32>,
    candidates: Vec<u32>,
    leaves: Vec<Found<'static>>,
    elements: Elements,
    arrays: arrays::Scratch,
    pair_key: Vec<u8>,
}

impl MatchScratch {
    pub fn new() -> Self {
        Self::default()
    }

    fn prepare(&mut self, m: &Matcher) {
        if self.cond_stamp.len() != m.conds.len()
            || self.branch_stamp.len() != m.branches.len()
            || self.rule_stamp.len() != m.rule_ids.len()
            || self.field_stamp.len() != m.fields.len()
            || self.generation == u32::MAX
        {
            self.generation = 0;
            self.cond_stamp = vec![0; m.conds.len()];
            self.branch_stamp = vec![0; m.branches.len()];
            self.branch_hits = vec![0; m.branches.len()];
            self.rule_stamp = vec![0; m.rule_ids.len()];
            self.field_stamp = vec![0; m.fields.len()];
            self.array_stamp = vec![0; m.fields.len()];
        }
        self.generation += 1;
        self.candidates.clear();
    }
}

/// Reuse a vector's allocation for a shorter lifetime (the in-place `collect` keeps the buffer because the
/// element layout is the same).
fn reuse<'a>(mut v: Vec<Found<'static>>) -> Vec<Found<'a>> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("vector was cleared"))
        .collect()
}

fn recycle(mut v: Vec<Found<'_>>) -> Vec<Found<'static>> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("vector was cleared"))
        .collect()
}

/// Where the extraction from a parsed `Value` is.
struct Extraction<'a, 's> {
    elements: &'s mut Elements,
    element: u32,
    out: &'s mut Vec<Found<'a>>,
}

impl Matcher {
    fn register_path(&mut self, path: &str, field: u32) {
        self.paths.register(path, field);
    }

    /// Index a value list (all its entries lead to the same condition). `Verify` when some entry's hit does
    /// not prove it, so the branch verifies the list.
    fn index_condition(&mut self, cond: u32, field: u32, conds: &[Cond]) -> Indexed {
        let checks = &mut self.checks;
        let mut add_check = |c: &Cond| {
            checks.push(c.clone());
            checks.len() as u32 - 1
        };
        let index = &mut self.fields[field as usize];
        let mut how = Indexed::Proven;
        for c in conds {
            match index.add(c, Hit { cond, check: None }, &mut add_check) {
                Indexed::No => debug_assert!(false, "indexability decided by the caller"),
                Indexed::Verify => how = Indexed::Verify,
                Indexed::Proven => {}
            }
        }
        how
    }

    fn list(&self, c: &Condition) -> &[Cond] {
        &self.lists[c.list.start as usize..c.list.end as usize]
    }

    /// A condition on its own: some value of its field (`leaves` sorted by field) satisfies its value list.
    fn holds(&self, cond: &Condition, leaves: &[Found<'_>]) -> bool {
        let start = leaves.partition_point(|f| f.field < cond.field);
        let run = leaves[start..].iter().take_while(|f| f.field == cond.field);
        test_field(self.list(cond), run.map(|f| f.leaf.scalar()))
    }

    /// Number of distinct rule ids.
    pub fn rule_count(&self) -> usize {
        self.rule_ids.len()
    }

    /// Field paths some pattern reads (dotted), for diagnostics.
    pub fn field_paths(&self) -> impl Iterator<Item = &str> {
        self.paths.field_paths()
    }

    /// The ids of the rules matching `event`, ascending. Allocates; the router uses [`Matcher::matches_into`].
    pub fn matches(&self, event: &Event<'_>) -> Result<Vec<RuleId>, EventError> {
        let mut out = Vec::new();
        self.matches_into(event, &mut MatchScratch::new(), &mut out)?;
        Ok(out)
    }

    /// Fill `out` (cleared first) with the ids of the matching rules, ascending, reusing `scratch`.
    pub fn matches_into(
        &self,
        event: &Event<'_>,
        scratch: &mut MatchScratch,
        out: &mut Vec<RuleId>,
    ) -> Result<(), EventError> {
        out.clear();
        scratch.prepare(self);
        let mut leaves = reuse(std::mem::take(&mut scratch.leaves));
        let result = match event {
            Event::Json(bytes) => scan(bytes, &self.paths, &mut scratch.elements, &mut leaves),
            Event::Value(v) => {
                if !v.is_object() {
                    Err(EventError::NotAnObject {
                        found: "a non-object JSON value",
                    })
                } else {
                    scratch.elements.reset();
                    let mut at = Extraction {
                        elements: &mut scratch.elements,
                        element: 0,
                        out: &mut leaves,
                    };
                    self.extract_value(v, ROOT, &mut at);
                    Ok(())
                }
            }
        };
        if result.is_ok() {
            // Grouped by field, so a condition's values are one contiguous run.
            leaves.sort_by_key(|f| f.field);
            self.run(&leaves, scratch, out);
        }
        scratch.leaves = recycle(leaves);
        result
    }

    fn extract_value<'a>(&self, v: &'a Value, node: u32, at: &mut Extraction<'a, '_>) {
        if let Value::Object(map) = v {
            for (k, child) in map {
                if let Some(next) = self.paths.child(node, k) {
                    self.extract_at(child, next, at);
                }
            }
        }
    }

    fn extract_at<'a>(&self, v: &'a Value, node: u32, at: &mut Extraction<'a, '_>) {
        let entry = self.paths.entry(node);
        let leaf = match v {
            Value::Object(_) if entry.interior => return self.extract_value(v, node, at),
            Value::Object(_) => return,
            Value::Array(items) => {
                if items.is_empty() {
                    return;
                }
                let array = at.elements.new_array();
                at.elements.at_root |= node == ROOT;
                let outer = at.element;
                for item in items {
                    at.element = at.elements.new_element(outer, array);
                    self.extract_at(item, node, at);
                }
                at.element = outer;
                return;
            }
            Value::String(s) => Leaf::Str(std::borrow::Cow::Borrowed(s)),
            Value::Number(n) => Leaf::Num(crate::number::Num::from_json(n)),
            Value::Bool(b) => Leaf::Bool(*b),
            Value::Null => Leaf::Null,
        };
        if let Some(field) = entry.field {
            at.out.push(Found {
                field,
                element: at.element,
                leaf,
            });
        }
    }

    fn run(&self, leaves: &[Found<'_>], s: &mut MatchScratch, out: &mut Vec<RuleId>) {
        let generation = s.generation;
        let MatchScratch {
            cond_stamp,
            branch_stamp,
            branch_hits,
            field_stamp,
            array_stamp,
            candidates,
            pair_key,
            ..
        } = s;
        let mut mark = |hit: Hit, value: Option<Scalar<'_>>| {
            let c = hit.cond as usize;
            if cond_stamp[c] == generation {
                return;
            }
            if let (Some(check), Some(v)) = (hit.check, value)
                && !self.checks[check as usize].test(v)
            {
                return;
            }
            cond_stamp[c] = generation;
            let b = self.conds[c].branch as usize;
            if branch_stamp[b] != generation {
                branch_stamp[b] = generation;
                branch_hits[b] = 0;
            }
            branch_hits[b] += 1;
            if branch_hits[b] == self.branches[b].need {
                candidates.push(b as u32);
            }
        };
        let mut in_arrays = false;
        for found in leaves {
            let field = found.field as usize;
            field_stamp[field] = generation;
            if found.element != 0 {
                array_stamp[field] = generation;
                in_arrays = true;
            }
            let v = found.leaf.scalar();
            self.fields[field].lookup(v, &mut |hit| mark(hit, Some(v)));
        }
        for &f in &self.fields_with_exists {
            if field_stamp[f as usize] == generation {
                self.fields[f as usize]
                    .exists
                    .iter()
                    .for_each(|h| mark(*h, None));
            }
        }
        for p in &self.pairs {
            p.lookup(leaves, pair_key, &mut |cond| {
                mark(Hit { cond, check: None }, None)
            });
        }
        for &b in s.candidates.iter().chain(&self.always) {
            let branch = &self.branches[b as usize];
            let rule = branch.rule as usize;
            if s.rule_stamp[rule] == generation {
                continue;
            }
            let conds = &self.conds[branch.conds.start as usize..branch.conds.end as usize];
            // Two of the branch's fields have values inside arrays: they must hold together, within one element
            // of every array they share.
            let arrays = in_arrays
                && (branch.arrays || s.elements.at_root)
                && conds
                    .iter()
                    .any(|c| s.array_stamp[c.field as usize] == generation);
            let mut ok = self.verify[branch.verify.start as usize..branch.verify.end as usize]
                .iter()
                .map(|&c| &self.conds[c as usize])
                .all(|cond| {
                    // With arrays, absence is judged against the chosen array elements, below.
                    (arrays
                        && self
                            .list(cond)
                            .iter()
                            .any(|c| matches!(c, Cond::Exists(false))))
                        || self.holds(cond, leaves)
                });
            if ok && arrays {
                ok = match arrays::consistent_match(
                    conds.iter().map(|c| (c.field, self.list(c))),
                    leaves,
                    &s.elements.list,
                    s.elements.arrays,
                    &mut s.arrays,
                ) {
                    Some(ok) => ok,
                    // Too many fields to track: decided field by field.
                    None => conds.iter().all(|cond| self.holds(cond, leaves)),
                };
            }
            if ok {
                s.rule_stamp[rule] = generation;
                out.push(self.rule_ids[rule]);
            }
        }
        out.sort_unstable();
    }
}
