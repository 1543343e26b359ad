//! Server-side assignors of the KIP-848 consumer protocol.
//!
//! - `uniform` (the default, like Kafka's): spreads all subscribed partitions as evenly as subscriptions allow
//!   and keeps every partition where it was when that stays balanced, so a rebalance moves as few as possible.
//! - `range`: per topic, members sorted by id take consecutive ranges, which co-partitions topics that share a
//!   partition count (the same layout as the classic client-side range assignor).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use super::types::Assignment;

/// Names clients may ask for in `group.remote.assignor`; the first is the default.
pub const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// One member's input to an assignor.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    pub member_id: String,
    pub topics: BTreeSet<Uuid>,
}

/// Computes the target assignment. `topics` holds the partition count of every subscribed topic; `previous`
/// is the current target (for stickiness).
pub fn assign(
    assignor: &str,
    members: &[MemberSpec],
    topics: &BTreeMap<Uuid, i32>,
    previous: &HashMap<String, Assignment>,
) -> HashMap<String, Assignment> {
    match assignor {
        "range" => range(members, topics),
        _ => uniform(members, topics, previous),
    }
}

fn range(members: &[MemberSpec], topics: &BTreeMap<Uuid, i32>) -> HashMap<String, Assignment> {
    let mut out: HashMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    for (topic, &count) in topics {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.member_id.as_str())
            .collect();
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        subscribers.sort_unstable();
        let n = subscribers.len() as i32;
        let (per, extra) = (count / n, count % n);
        for (i, member) in subscribers.iter().enumerate() {
            let i = i as i32;
            let start = i * per + i.min(extra);
            let len = per + i32::from(i < extra);
            if len > 0
                && let Some(a) = out.get_mut(*member)
            {
                a.entry(*topic).or_default().extend(start..start + len);
            }
        }
    }
    out
}

fn uniform(
    members: &[MemberSpec],
    topics: &BTreeMap<Uuid, i32>,
    previous: &HashMap<String, Assignment>,
) -> HashMap<String, Assignment> {
    let subscribed = |member: &str, topic: &Uuid| {
        members
            .iter()
            .any(|m| m.member_id == member && m.topics.contains(topic))
    };
    let mut owner: BTreeMap<(Uuid, i32), String> = BTreeMap::new();
    let mut load: BTreeMap<String, usize> =
        members.iter().map(|m| (m.member_id.clone(), 0)).collect();
    // 1. Stickiness: a partition stays with its previous owner while that owner still subscribes to it.
    let mut prev_members: Vec<&String> = previous.keys().collect();
    prev_members.sort();
    for member in prev_members {
        if !load.contains_key(member) {
            continue;
        }
        for (topic, parts) in &previous[member] {
            let Some(&count) = topics.get(topic) else {
                continue;
            };
            for &p in parts {
                if p < count && subscribed(member, topic) && !owner.contains_key(&(*topic, p)) {
                    owner.insert((*topic, p), member.clone());
                    *load.get_mut(member).expect("member has a load entry") += 1;
                }
            }
        }
    }
    // 2. Every other partition goes to its least-loaded subscriber.
    for (topic, &count) in topics {
        let candidates: Vec<&MemberSpec> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .collect();
        for p in 0..count.max(0) {
            if owner.contains_key(&(*topic, p)) {
                continue;
            }
            if let Some(best) = candidates
                .iter()
                .min_by_key(|m| (load[&m.member_id], m.member_id.as_str()))
            {
                owner.insert((*topic, p), best.member_id.clone());
                *load
                    .get_mut(&best.member_id)
                    .expect("member has a load entry") += 1;
            }
        }
    }
    // 3. Balance: move partitions from the most to the least loaded subscriber until no move helps.
    let bound = owner.len() * owner.len().max(1);
    for _ in 0..bound {
        let mut moved = false;
        let mut by_load: Vec<(String, usize)> = load.iter().map(|(m, l)| (m.clone(), *l)).collect();
        by_load.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        'outer: for (from, from_load) in &by_load {
            let owned: Vec<(Uuid, i32)> = owner
                .iter()
                .filter(|(_, o)| *o == from)
                .map(|(tp, _)| *tp)
                .rev()
                .collect();
            for tp in owned {
                let target = members
                    .iter()
                    .filter(|m| m.topics.contains(&tp.0) && &m.member_id != from)
                    .min_by_key(|m| (load[&m.member_id], m.member_id.as_str()));
                if let Some(to) = target
                    && load[&to.member_id] + 1 < *from_load
                {
                    owner.insert(tp, to.member_id.clone());
                    *load.get_mut(from).expect("load entry") -= 1;
                    *load.get_mut(&to.member_id).expect("load entry") += 1;
                    moved = true;
                    break 'outer;
                }
            }
        }
        if !moved {
            break;
        }
    }
    let mut out: HashMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    for ((topic, p), member) in owner {
        if let Some(a) = out.get_mut(&member) {
            a.entry(topic).or_default().insert(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn members(ids: &[&str], topics: &[Uuid]) -> Vec<MemberSpec> {
        ids.iter()
            .map(|id| MemberSpec {
                member_id: id.to_string(),
                topics: topics.iter().copied().collect(),
            })
            .collect()
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(|s| s.len()).sum()
    }

    /// Every partition of every topic is assigned exactly once.
    fn assert_exact_cover(out: &HashMap<String, Assignment>, topics: &BTreeMap<Uuid, i32>) {
        let mut seen = BTreeSet::new();
        for a in out.values() {
            for (t, parts) in a {
                for p in parts {
                    assert!(seen.insert((*t, *p)), "partition {t}/{p} assigned twice");
                }
            }
        }
        let total: i32 = topics.values().sum();
        assert_eq!(seen.len(), total as usize, "every partition assigned");
    }

    #[test]
    fn range_splits_each_topic_in_ranges() {
        let topics = BTreeMap::from([(topic(1), 7), (topic(2), 3)]);
        let out = assign(
            "range",
            &members(&["a", "b", "c"], &[topic(1), topic(2)]),
            &topics,
            &HashMap::new(),
        );
        assert_exact_cover(&out, &topics);
        assert_eq!(out["a"][&topic(1)], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&topic(1)], BTreeSet::from([3, 4]));
        assert_eq!(out["c"][&topic(1)], BTreeSet::from([5, 6]));
        assert_eq!(out["a"][&topic(2)], BTreeSet::from([0]));
    }

    #[test]
    fn uniform_is_balanced_and_sticky() {
        let topics = BTreeMap::from([(topic(1), 6)]);
        let three = assign(
            "uniform",
            &members(&["a", "b", "c"], &[topic(1)]),
            &topics,
            &HashMap::new(),
        );
        assert_exact_cover(&three, &topics);
        assert!(three.values().all(|a| count(a) == 2));
        // c leaves: a and b keep what they had and share c's partitions.
        let two = assign(
            "uniform",
            &members(&["a", "b"], &[topic(1)]),
            &topics,
            &three,
        );
        assert_exact_cover(&two, &topics);
        assert!(two.values().all(|a| count(a) == 3));
        for m in ["a", "b"] {
            assert!(
                three[m][&topic(1)].is_subset(&two[m][&topic(1)]),
                "{m} kept its partitions"
            );
        }
        // d joins: it takes partitions, nobody else gains any.
        let again = assign(
            "uniform",
            &members(&["a", "b", "d"], &[topic(1)]),
            &topics,
            &two,
        );
        assert_exact_cover(&again, &topics);
        assert!(again.values().all(|a| count(a) == 2));
        for m in ["a", "b"] {
            assert!(again[m][&topic(1)].is_subset(&two[m][&topic(1)]));
        }
    }

    #[test]
    fn uniform_respects_heterogeneous_subscriptions() {
        let topics = BTreeMap::from([(topic(1), 4), (topic(2), 4)]);
        let specs = vec![
            MemberSpec {
                member_id: "a".into(),
                topics: BTreeSet::from([topic(1)]),
            },
            MemberSpec {
                member_id: "b".into(),
                topics: BTreeSet::from([topic(1), topic(2)]),
            },
            MemberSpec {
                member_id: "c".into(),
                topics: BTreeSet::from([topic(2)]),
            },
        ];
        let out = assign("uniform", &specs, &topics, &HashMap::new());
        assert_exact_cover(&out, &topics);
        assert!(!out["a"].contains_key(&topic(2)));
        assert!(!out["c"].contains_key(&topic(1)));
        let loads: Vec<usize> = ["a", "b", "c"].iter().map(|m| count(&out[*m])).collect();
        assert!(
            loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1,
            "{loads:?}"
        );
    }

    #[test]
    fn more_members_than_partitions_leaves_some_idle() {
        let topics = BTreeMap::from([(topic(1), 2)]);
        for name in ASSIGNORS {
            let out = assign(
                name,
                &members(&["a", "b", "c"], &[topic(1)]),
                &topics,
                &HashMap::new(),
            );
            assert_exact_cover(&out, &topics);
            assert_eq!(out.values().filter(|a| count(a) == 0).count(), 1, "{name}");
        }
    }
}
