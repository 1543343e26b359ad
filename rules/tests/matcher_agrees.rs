//! Property: the compiled matcher (from a parsed `Value` and from raw bytes) reports exactly the rules that
//! the per-rule evaluator says match, on random patterns and events drawn from a small vocabulary so that
//! matches, near-misses, arrays (arrays of objects, nested arrays: array consistency), nesting, dotted keys and
//! every operator actually occur.

use busbar_rules::{Event, MatchScratch, MatcherBuilder, Pattern, PatternOptions};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KEYS: &[&str] = &["a", "b", "c", "b.c", "", "a."];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "x",
            "xy",
            "Xy",
            "yx",
            "x*y",
            "10.0.0.7",
            "10.1.0.1",
            "2001:db8::1",
            "ÄBC",
            "äbc"
        ])
        .prop_map(|s| json!(s)),
        prop::sample::select(vec![
            json!(0),
            json!(1),
            json!(2.5),
            json!(-3),
            json!(300),
            json!(3e2),
            json!(1e10)
        ]),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
}

fn object_of(
    inner: impl Strategy<Value = Value>,
    size: std::ops::Range<usize>,
) -> impl Strategy<Value = Value> {
    prop::collection::btree_map(prop::sample::select(KEYS), inner, size)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

fn event_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            1 => prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            1 => object_of(inner.clone(), 0..4),
            // Arrays of objects (and of arrays of objects), where array consistency decides: several fields
            // of one pattern find values in different elements.
            2 => prop::collection::vec(object_of(inner, 1..4), 1..4).prop_map(Value::Array),
        ]
    })
}

fn event() -> impl Strategy<Value = Value> {
    object_of(event_value(), 0..4)
}

fn text() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "x", "y", "X", "xy", "Ä", "ä"])
}

fn operator() -> impl Strategy<Value = Value> {
    prop_oneof![
        scalar(),
        text().prop_map(|t| json!({"prefix": t})),
        text().prop_map(|t| json!({"suffix": t})),
        text().prop_map(|t| json!({"prefix": {"equals-ignore-case": t}})),
        text().prop_map(|t| json!({"suffix": {"equals-ignore-case": t}})),
        text().prop_map(|t| json!({"equals-ignore-case": t})),
        scalar().prop_map(|v| json!({"anything-but": v})),
        text().prop_map(|t| json!({"anything-but": {"prefix": t}})),
        text().prop_map(|t| json!({"anything-but": {"suffix": t}})),
        text().prop_map(|t| json!({"anything-but": {"equals-ignore-case": [t, "xy"]}})),
        prop::sample::select(vec!["x*", "*y", "*", "x*y", "\\*"])
            .prop_map(|t| json!({"anything-but": {"wildcard": t}})),
        prop::sample::select(vec!["x*", "*y", "*", "x*y", "x\\*y", "*.*"])
            .prop_map(|t| json!({"wildcard": t})),
        (
            prop::sample::select(vec![">", ">=", "<", "<=", "="]),
            prop::sample::select(vec![-3.0, 0.0, 1.0, 2.5, 300.0])
        )
            .prop_map(|(op, v)| json!({"numeric": [op, v]})),
        (
            prop::sample::select(vec![-5.0, 0.0, 1.0]),
            prop::sample::select(vec![2.5, 300.0, 1e10])
        )
            .prop_map(|(lo, hi)| json!({"numeric": [">=", lo, "<", hi]})),
        any::<bool>().prop_map(|b| json!({"exists": b})),
        prop::sample::select(vec![
            "10.0.0.0/24",
            "10.0.0.0/8",
            "2001:db8::/32",
            "10.0.0.7"
        ])
        .prop_map(|c| json!({"cidr": c})),
        prop::sample::select(vec!["x.*", "[a-z]*", "\\p{Lu}.*", "(x|y)+"])
            .prop_map(|r| json!({"regex": r})),
        (text(), text()).prop_map(|(a, b)| json!({"$and": [{"prefix": a}, {"suffix": b}]})),
        (text(), prop::sample::select(vec!["x", "xy"]))
            .prop_map(|(a, b)| json!([{"prefix": a}, {"anything-but": b}])),
    ]
}

fn pattern_node(depth: u32) -> BoxedStrategy<Value> {
    let leaf = prop::collection::vec(operator(), 1..3).prop_map(Value::Array);
    let child = if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![3 => leaf, 1 => pattern_node(depth - 1)].boxed()
    };
    let fields = prop::collection::btree_map(prop::sample::select(KEYS), child, 1..3);
    let or = if depth == 0 {
        Just(None).boxed()
    } else {
        prop::option::weighted(0.3, prop::collection::vec(pattern_node(depth - 1), 2..3)).boxed()
    };
    (fields, or)
        .prop_map(|(fields, or)| {
            let mut m: Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if let Some(branches) = or {
                m.insert("$or".to_owned(), Value::Array(branches));
            }
            Value::Object(m)
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn compiled_matcher_agrees_with_evaluator(
        patterns in prop::collection::vec(pattern_node(2), 1..8),
        events in prop::collection::vec(event(), 1..6),
    ) {
        let parsed: Vec<Pattern> = patterns
            .iter()
            .filter_map(|p| Pattern::parse(p, &PatternOptions::default()).ok())
            .collect();
        let mut builder = MatcherBuilder::new();
        for (i, p) in parsed.iter().enumerate() {
            builder.add(i, p);
        }
        let matcher = builder.build();
        let mut scratch = MatchScratch::new();
        let mut got = Vec::new();
        for event in &events {
            let want: Vec<usize> = parsed.iter().enumerate().filter(|(_, p)| p.matches(event)).map(|(i, _)| i).collect();
            matcher.matches_into(&Event::Value(event), &mut scratch, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "Value path; event {}", event);
            let bytes = serde_json::to_vec(event).unwrap();
            matcher.matches_into(&Event::Json(&bytes), &mut scratch, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "bytes path; event {}", event);
        }
    }

    #[test]
    fn scanner_accepts_exactly_what_serde_json_accepts(bytes in prop::collection::vec(prop::sample::select(b"{}[]\":,0123456789.eE+-tfnrulsa \\\n".to_vec()), 0..40)) {
        let pattern = Pattern::parse(&json!({"a": [{"exists": true}]}), &PatternOptions::default()).unwrap();
        let mut builder = MatcherBuilder::new();
        builder.add(0, &pattern);
        let matcher = builder.build();
        let ours = matcher.matches(&Event::Json(&bytes)).is_ok();
        let theirs = matches!(serde_json::from_slice::<Value>(&bytes), Ok(Value::Object(_)));
        prop_assert_eq!(ours, theirs, "input {:?}", String::from_utf8_lossy(&bytes));
    }
}
