//! Any JSON text as a pattern: parsing never panics, strict mode accepts a subset of the default mode, and an
//! accepted pattern compiles and agrees with the per-rule evaluator on a fixed set of events.
#![no_main]

use busbar_rules::{Event, MatcherBuilder, Pattern, PatternOptions};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let lenient = Pattern::parse(&value, &PatternOptions::default());
    let strict = Pattern::parse(
        &value,
        &PatternOptions {
            strict_eventbridge: true,
        },
    );
    if let Err(e) = &strict {
        assert!(e.path().starts_with('$'));
    }
    assert!(
        !(strict.is_ok() && lenient.is_err()),
        "strict accepted what the default mode rejects"
    );
    let Ok(pattern) = lenient else { return };
    let mut builder = MatcherBuilder::new();
    builder.add(0, &pattern);
    let matcher = builder.build();
    let events = [
        json!({"source": "a", "detail": {"a": "x", "b": 1, "c": [true, null, "10.0.0.1"], "d": {"e": -2.5}}}),
        json!({"source": ["x", 5], "detail": {"a": {"b": "c"}, "a.b": "y", "n": 300}}),
        json!({}),
        // Arrays of objects, nested: array consistency decides.
        json!({"source": "a", "detail": {"a": [{"b": 1, "c": "x"}, {"b": 2, "d": null}], "e": [[{"f": "x", "g": 1}], [{"f": "y"}]]}}),
        json!({"a": [{"b": "x"}, {"b": "y", "c": true}], "": [{"a": "x", "b": 1}]}),
    ];
    for event in &events {
        let want: Vec<usize> = if pattern.matches(event) {
            vec![0]
        } else {
            vec![]
        };
        assert_eq!(matcher.matches(&Event::Value(event)).unwrap(), want);
        let bytes = serde_json::to_vec(event).unwrap();
        assert_eq!(matcher.matches(&Event::Json(&bytes)).unwrap(), want);
    }
});
