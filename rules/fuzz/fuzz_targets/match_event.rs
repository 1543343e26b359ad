//! Any bytes as an event against a fixed rule set: the selective scanner accepts exactly the JSON objects
//! serde_json accepts, and reports exactly the rules the per-rule evaluator reports (array consistency and
//! pair anchors included).
#![no_main]

use std::sync::OnceLock;

use busbar_rules::{Event, Matcher, MatcherBuilder, Pattern, PatternOptions};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn rules() -> &'static (Vec<Pattern>, Matcher) {
    static RULES: OnceLock<(Vec<Pattern>, Matcher)> = OnceLock::new();
    RULES.get_or_init(|| {
        let patterns: Vec<Pattern> = [
            json!({"a": ["x", 1, true, null]}),
            json!({"a": [{"prefix": "x"}], "b": {"c": [{"exists": true}]}}),
            json!({"b": {"c": [{"numeric": [">", 0, "<=", 10]}]}}),
            json!({"a": [{"anything-but": {"suffix": "z"}}]}),
            json!({"$or": [{"a": [{"wildcard": "*y*"}]}, {"d": [{"exists": false}]}]}),
            json!({"a": [{"cidr": "10.0.0.0/8"}, {"equals-ignore-case": "ÄB"}]}),
            json!({"b.c": [{"regex": "[0-9]+"}]}),
            // Array consistency: fields under one key, judged per array element.
            json!({"a": {"b": ["x"], "c": [{"numeric": [">", 0]}]}}),
            json!({"a": {"b": [{"prefix": "x"}], "d": [{"exists": false}]}, "e": [true]}),
            json!({"a": {"$or": [{"b": ["y"], "c": [1]}, {"d": {"e": [null], "f": [{"anything-but": "z"}]}}]}}),
            // Exact values on two fields: a pair anchor.
            json!({"a": ["x", "y"], "e": [1, "1"]}),
        ]
        .iter()
        .map(|p| Pattern::parse(p, &PatternOptions::default()).unwrap())
        .collect();
        let mut builder = MatcherBuilder::new();
        for (i, p) in patterns.iter().enumerate() {
            builder.add(i, p);
        }
        let matcher = builder.build();
        (patterns, matcher)
    })
}

fuzz_target!(|data: &[u8]| {
    let (patterns, matcher) = rules();
    let ours = matcher.matches(&Event::Json(data));
    match serde_json::from_slice::<Value>(data) {
        Ok(v @ Value::Object(_)) => {
            let want: Vec<usize> = patterns
                .iter()
                .enumerate()
                .filter(|(_, p)| p.matches(&v))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(ours.expect("scanner rejected valid JSON"), want);
        }
        // serde_json's nesting limit is the scanner's too; anything else invalid must be rejected.
        _ => assert!(ours.is_err(), "scanner accepted what serde_json rejects"),
    }
});
