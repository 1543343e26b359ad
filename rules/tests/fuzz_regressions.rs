//! Inputs the fuzz targets (`rules/fuzz`) once failed on, run through the same checks as the targets: the
//! scanner accepts exactly the JSON objects serde_json accepts, and the compiled matcher reports exactly what
//! the per-rule evaluator reports.

use busbar_rules::{Event, MatcherBuilder, Pattern, PatternOptions};
use serde_json::{Value, json};

fn check(rules: &[Value], input: &[u8]) {
    let patterns: Vec<Pattern> = rules
        .iter()
        .map(|p| Pattern::parse(p, &PatternOptions::default()).unwrap())
        .collect();
    let mut builder = MatcherBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        builder.add(i, p);
    }
    let matcher = builder.build();
    let ours = matcher.matches(&Event::Json(input));
    match serde_json::from_slice::<Value>(input) {
        Ok(v @ Value::Object(_)) => {
            let want: Vec<usize> = (0..patterns.len())
                .filter(|&i| patterns[i].matches(&v))
                .collect();
            assert_eq!(ours.expect("scanner rejected valid JSON"), want);
            assert_eq!(matcher.matches(&Event::Value(&v)).unwrap(), want);
        }
        _ => assert!(
            ours.is_err(),
            "scanner accepted what serde_json rejects: {}",
            String::from_utf8_lossy(input)
        ),
    }
}

/// match_event: `5e777777` overflows f64; serde_json refuses it, the scanner accepted it (under an empty key,
/// read since empty top-level keys join to the event's own paths, and in skipped values alike).
#[test]
fn number_out_of_f64_range_is_rejected() {
    let rules = [json!({"a": ["x"]}), json!({"": [0]})];
    check(&rules, b"{\"\":0e7777777,\n\"\":5e777777,\n\"\":0e7777}");
    check(&rules, b"{\"skipped\": [1e400]}");
    check(&rules, b"{\"a\": -1e309}");
    let long = format!("{{\"b\": 1{}}}", "0".repeat(400));
    check(&rules, long.as_bytes());
    // In range: accepted.
    check(
        &rules,
        b"{\"a\": \"x\", \"b\": [1e308, -1e-400, 0e99999999999999999999]}",
    );
}

/// match_event: a key repeated in one object. serde_json keeps the last value; the scanner read every one.
#[test]
fn duplicate_keys_keep_the_last_value() {
    let rules = [
        json!({"a": ["x", 1, true, null]}),
        json!({"a": [2], "d": [7077]}),
        json!({"o": {"p": [1], "q": [2]}}),
        json!({"o": {"p": [{"exists": false}]}, "a": [2]}),
    ];
    check(
        &rules,
        b"{\n\"e\":776,\n\"a\":1,\n\"e\":7,\n\"d\":7519,\n\"a\":2,\n\"e\":777,\n\"d\":7077}",
    );
    check(&rules, br#"{"a": 1, "a": [2, 3]}"#);
    check(&rules, br#"{"a": [1, {"x": 1}], "a": 2}"#);
    check(&rules, br#"{"o": {"p": 1, "q": 2, "p": 3}}"#);
    check(&rules, br#"{"o": {"p": 1, "q": 2}, "o": {"q": 2}, "a": 2}"#);
    check(
        &rules,
        br#"{"o": [{"p": 1, "p": 2, "q": 2}, {"p": 1}], "o": [{"p": 1, "q": 2}]}"#,
    );
}
