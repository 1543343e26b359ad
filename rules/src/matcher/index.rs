//! The per-field value index: given one event value at one path, find every condition it satisfies without
//! looking at conditions it cannot satisfy. Hash maps serve exact values, prefixes and suffixes (one lookup per
//! distinct affix length), numeric ranges are cut into elementary intervals found by binary search, CIDR blocks
//! are looked up per distinct prefix length. Only wildcards without a literal prefix and regexes are scanned
//! one by one, each after a cheap pre-check where possible.

use std::borrow::Cow;
use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::cidr::{Cidr, mask32, mask128};
use crate::number::NumKey;
use crate::pattern::{Cond, Literal, Range, Scalar, lower};

/// A condition reached through the index; `check` (an index into the matcher's check list) must also hold for
/// the value when the index key alone does not prove the match (wildcards, regexes, `$and`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit {
    pub(crate) cond: u32,
    pub(crate) check: Option<u32>,
}

/// Strings keyed by affix, with the distinct affix lengths to try.
#[derive(Debug, Default)]
struct AffixMap {
    by_text: FxHashMap<Box<str>, Vec<Hit>>,
    lengths: Vec<usize>,
}

impl AffixMap {
    fn add(&mut self, text: &str, hit: Hit) {
        self.by_text.entry(text.into()).or_default().push(hit);
        if !self.lengths.contains(&text.len()) {
            self.lengths.push(text.len());
            self.lengths.sort_unstable();
        }
    }

    fn prefixes(&self, s: &str, f: &mut impl FnMut(Hit)) {
        for &len in &self.lengths {
            if len > s.len() {
                break;
            }
            if s.is_char_boundary(len)
                && let Some(hits) = self.by_text.get(&s[..len])
            {
                hits.iter().copied().for_each(&mut *f);
            }
        }
    }

    fn suffixes(&self, s: &str, f: &mut impl FnMut(Hit)) {
        for &len in &self.lengths {
            if len > s.len() {
                break;
            }
            let at = s.len() - len;
            if s.is_char_boundary(at)
                && let Some(hits) = self.by_text.get(&s[at..])
            {
                hits.iter().copied().for_each(&mut *f);
            }
        }
    }
}

/// Numeric ranges. Built as a list, then (in `finish`) cut at every bound into elementary intervals, each with
/// the conditions containing it. Above a size budget (many wide, overlapping ranges) it stays a list.
#[derive(Debug, Default)]
struct Numeric {
    ranges: Vec<(Range, Hit)>,
    /// Sorted distinct bounds b0 < b1 < ...; region 2k+1 is (b_k, b_k+1), region 2k is the point b_k, region
    /// with index 2*len is above the last bound... see `region`.
    bounds: Vec<f64>,
    regions: Vec<Vec<Hit>>,
    compiled: bool,
}

/// Most hit entries the interval table may hold before numeric matching falls back to a scan.
const NUMERIC_BUDGET: usize = 4_000_000;

impl Numeric {
    fn finish(&mut self) {
        let mut bounds: Vec<f64> = self
            .ranges
            .iter()
            .flat_map(|(r, _)| [r.low, r.high])
            .flatten()
            .map(|(v, _)| v)
            .collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        // Regions: 0 = below b0, then for each k: 2k+1 = point b_k, 2k+2 = between b_k and b_k+1 (or above).
        let n_regions = 2 * bounds.len() + 1;
        let sample = |region: usize| -> f64 {
            if bounds.is_empty() {
                return 0.0;
            }
            if region == 0 {
                return bounds[0] - 1.0f64.max(bounds[0].abs());
            }
            let k = (region - 1) / 2;
            if region % 2 == 1 {
                bounds[k]
            } else if k + 1 < bounds.len() {
                bounds[k] / 2.0 + bounds[k + 1] / 2.0
            } else {
                bounds[k] + 1.0f64.max(bounds[k].abs())
            }
        };
        let mut total = 0usize;
        let mut regions = Vec::with_capacity(n_regions);
        for region in 0..n_regions {
            let x = sample(region);
            let hits: Vec<Hit> = self
                .ranges
                .iter()
                .filter(|(r, _)| r.contains(x))
                .map(|(_, h)| *h)
                .collect();
            total += hits.len();
            if total > NUMERIC_BUDGET {
                return;
            }
            regions.push(hits);
        }
        self.bounds = bounds;
        self.regions = regions;
        self.compiled = true;
    }

    fn lookup(&self, x: f64, f: &mut impl FnMut(Hit)) {
        if !self.compiled {
            self.ranges
                .iter()
                .filter(|(r, _)| r.contains(x))
                .for_each(|(_, h)| f(*h));
            return;
        }
        if x.is_nan() {
            return;
        }
        let region = match self.bounds.binary_search_by(|b| b.total_cmp(&x)) {
            Ok(k) => 2 * k + 1,
            Err(k) => 2 * k,
        };
        self.regions[region].iter().copied().for_each(f);
    }
}

/// How a condition went into the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Indexed {
    /// It cannot drive matching (`anything-but`, `exists: false`).
    No,
    /// A hit proves the condition.
    Proven,
    /// A hit is necessary, not sufficient: the branch verifies the condition (a wildcard keyed by its literal
    /// prefix or suffix, checked only for branches whose other anchors hit too).
    Verify,
}

#[derive(Debug, Default)]
pub(crate) struct FieldIndex {
    strs: FxHashMap<Box<str>, Vec<Hit>>,
    nums: FxHashMap<NumKey, Vec<Hit>>,
    trues: Vec<Hit>,
    falses: Vec<Hit>,
    nulls: Vec<Hit>,
    ignore_case: FxHashMap<Box<str>, Vec<Hit>>,
    prefix: AffixMap,
    prefix_ic: AffixMap,
    suffix: AffixMap,
    suffix_ic: AffixMap,
    numeric: Numeric,
    cidr_v4: FxHashMap<(u8, u32), Vec<Hit>>,
    cidr_v4_lens: Vec<u8>,
    cidr_v6: FxHashMap<(u8, u128), Vec<Hit>>,
    cidr_v6_lens: Vec<u8>,
    /// Checked one by one against every string value (wildcards starting with `*`, regexes).
    scan_strings: Vec<Hit>,
    /// Conditions satisfied as soon as the field has any value.
    pub(crate) exists: Vec<Hit>,
    /// Distinct literal prefixes and suffixes of this field's wildcards: a wildcard is keyed by the end that
    /// splits the rules better.
    pub(crate) wildcard_affixes: (usize, usize),
}

impl FieldIndex {
    /// Index one positive condition. Returns false when it cannot be indexed (`anything-but`,
    /// `exists: false`): the caller then verifies the whole value list directly.
    pub(crate) fn add(
        &mut self,
        cond: &Cond,
        hit: Hit,
        add_check: &mut dyn FnMut(&Cond) -> u32,
    ) -> Indexed {
        match cond {
            Cond::Exact(Literal::Str(s)) => {
                self.strs.entry(s.as_str().into()).or_default().push(hit)
            }
            Cond::Exact(Literal::Num(n)) => self.nums.entry(n.key).or_default().push(hit),
            Cond::Exact(Literal::Bool(true)) => self.trues.push(hit),
            Cond::Exact(Literal::Bool(false)) => self.falses.push(hit),
            Cond::Exact(Literal::Null) => self.nulls.push(hit),
            Cond::EqualsIgnoreCase(s) => self
                .ignore_case
                .entry(s.as_str().into())
                .or_default()
                .push(hit),
            Cond::Prefix {
                text,
                ignore_case: false,
            } => self.prefix.add(text, hit),
            Cond::Prefix {
                text,
                ignore_case: true,
            } => self.prefix_ic.add(text, hit),
            Cond::Suffix {
                text,
                ignore_case: false,
            } => self.suffix.add(text, hit),
            Cond::Suffix {
                text,
                ignore_case: true,
            } => self.suffix_ic.add(text, hit),
            Cond::Numeric(r) => self.numeric.ranges.push((*r, hit)),
            Cond::Exists(true) => self.exists.push(hit),
            Cond::Exists(false) | Cond::AnythingBut(_) => return Indexed::No,
            Cond::Cidr(Cidr::V4 { net, len }) => {
                self.cidr_v4.entry((*len, *net)).or_default().push(hit);
                if !self.cidr_v4_lens.contains(len) {
                    self.cidr_v4_lens.push(*len);
                }
            }
            Cond::Cidr(Cidr::V6 { net, len }) => {
                self.cidr_v6.entry((*len, *net)).or_default().push(hit);
                if !self.cidr_v6_lens.contains(len) {
                    self.cidr_v6_lens.push(*len);
                }
            }
            Cond::Wildcard(w) if w.is_exact() => self
                .strs
                .entry(w.literal_prefix().into())
                .or_default()
                .push(hit),
            Cond::Wildcard(w)
                if hit.check.is_none()
                    && !(w.literal_prefix().is_empty() && w.literal_suffix().is_empty()) =>
            {
                let (prefix, suffix) = (w.literal_prefix(), w.literal_suffix());
                let (prefixes, suffixes) = self.wildcard_affixes;
                let by_suffix = prefix.is_empty()
                    || (!suffix.is_empty() && (suffixes, suffix.len()) > (prefixes, prefix.len()));
                if by_suffix {
                    self.suffix.add(suffix, hit);
                } else {
                    self.prefix.add(prefix, hit);
                }
                return Indexed::Verify;
            }
            Cond::Wildcard(w) => {
                let checked = Hit {
                    cond: hit.cond,
                    check: Some(add_check(cond)),
                };
                if w.literal_prefix().is_empty() {
                    self.scan_strings.push(checked);
                } else {
                    self.prefix.add(w.literal_prefix(), checked);
                }
            }
            Cond::Regex(_) => self.scan_strings.push(Hit {
                cond: hit.cond,
                check: Some(add_check(cond)),
            }),
            Cond::All(all) => {
                // Index through one component that has a key; the whole conjunction is the check.
                let Some(guard) = all.iter().find(|c| !matches!(c, Cond::AnythingBut(_))) else {
                    return Indexed::No;
                };
                let check = add_check(cond);
                let guarded = Hit {
                    cond: hit.cond,
                    check: Some(check),
                };
                let mut no_more_checks = |_: &Cond| check;
                return match self.add(guard, guarded, &mut no_more_checks) {
                    Indexed::No => Indexed::No,
                    // The check is the whole conjunction, so a hit that passes it proves the condition.
                    Indexed::Proven | Indexed::Verify => Indexed::Proven,
                };
            }
        }
        Indexed::Proven
    }

    pub(crate) fn finish(&mut self) {
        self.numeric.finish();
    }

    /// Every hit for one event value.
    pub(crate) fn lookup(&self, v: Scalar<'_>, f: &mut impl FnMut(Hit)) {
        match v {
            Scalar::Str(s) => {
                if let Some(h) = self.strs.get(s) {
                    h.iter().copied().for_each(&mut *f);
                }
                self.prefix.prefixes(s, f);
                self.suffix.suffixes(s, f);
                let has_ic = !self.ignore_case.is_empty()
                    || !self.prefix_ic.lengths.is_empty()
                    || !self.suffix_ic.lengths.is_empty();
                if has_ic {
                    let l: Cow<'_, str> = lower(s);
                    if let Some(h) = self.ignore_case.get(l.as_ref()) {
                        h.iter().copied().for_each(&mut *f);
                    }
                    self.prefix_ic.prefixes(&l, f);
                    self.suffix_ic.suffixes(&l, f);
                }
                if !self.cidr_v4.is_empty() || !self.cidr_v6.is_empty() {
                    match s.parse::<IpAddr>() {
                        Ok(IpAddr::V4(a)) => {
                            for &len in &self.cidr_v4_lens {
                                if let Some(h) = self.cidr_v4.get(&(len, mask32(u32::from(a), len)))
                                {
                                    h.iter().copied().for_each(&mut *f);
                                }
                            }
                        }
                        Ok(IpAddr::V6(a)) => {
                            for &len in &self.cidr_v6_lens {
                                if let Some(h) =
                                    self.cidr_v6.get(&(len, mask128(u128::from(a), len)))
                                {
                                    h.iter().copied().for_each(&mut *f);
                                }
                            }
                        }
                        Err(_) => {}
                    }
                }
                self.scan_strings.iter().copied().for_each(&mut *f);
            }
            Scalar::Num(n) => {
                if let Some(h) = self.nums.get(&n.key) {
                    h.iter().copied().for_each(&mut *f);
                }
                self.numeric.lookup(n.value, f);
            }
            Scalar::Bool(true) => self.trues.iter().copied().for_each(f),
            Scalar::Bool(false) => self.falses.iter().copied().for_each(f),
            Scalar::Null => self.nulls.iter().copied().for_each(f),
        }
    }
}
