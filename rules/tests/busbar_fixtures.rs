//! busbar's own table-driven fixtures (`tests/fixtures/busbar/`): the extensions, and EventBridge behaviours
//! the conformance sample does not cover. Each case also runs through the compiled matcher.

use busbar_rules::{Event, MatcherBuilder, Pattern, PatternOptions};
use serde_json::{Value, json};

fn load(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/tests/fixtures/busbar/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn pattern_cases() {
    let mut failures = Vec::new();
    for case in load("pattern_cases.json") {
        let id = case["id"].as_str().unwrap();
        let event =
            json!({"version": "0", "source": "test", "detail-type": "t", "detail": case["detail"]});
        let expected = case["match"].as_bool().unwrap();
        let extension = case["extension"].as_bool().unwrap();
        let pattern = Pattern::parse(&case["pattern"], &PatternOptions::default())
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(
            pattern.uses_extensions(),
            extension,
            "{id}: uses_extensions"
        );
        let strict = Pattern::parse(
            &case["pattern"],
            &PatternOptions {
                strict_eventbridge: true,
            },
        );
        assert_eq!(
            strict.is_err(),
            extension,
            "{id}: strict mode must reject exactly the extensions"
        );
        if pattern.matches(&event) != expected {
            failures.push(format!("{id} (evaluator): {}", case["note"]));
        }
        let mut b = MatcherBuilder::new();
        b.add(1, &pattern);
        let m = b.build();
        let bytes = serde_json::to_vec(&event).unwrap();
        if m.matches(&Event::Json(&bytes)).unwrap().is_empty() == expected {
            failures.push(format!("{id} (matcher): {}", case["note"]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_patterns_name_the_path() {
    for case in load("invalid_patterns.json") {
        let id = case["id"].as_str().unwrap();
        let strict_only = case["strict_only"].as_bool().unwrap();
        let lenient = Pattern::parse(&case["pattern"], &PatternOptions::default());
        assert_eq!(
            lenient.is_ok(),
            strict_only,
            "{id}: default mode: {lenient:?}"
        );
        let strict = Pattern::parse(
            &case["pattern"],
            &PatternOptions {
                strict_eventbridge: true,
            },
        );
        // The path is checked on the mode that rejects for the case's own reason.
        let err = if strict_only {
            strict.unwrap_err()
        } else {
            lenient.unwrap_err()
        };
        assert_eq!(err.path(), case["path"].as_str().unwrap(), "{id}: {err}");
        assert!(
            err.to_string().contains(err.path()),
            "{id}: Display names the path: {err}"
        );
    }
}

#[test]
fn invalid_events_are_errors() {
    let pattern = Pattern::parse(&json!({"source": ["x"]}), &PatternOptions::default()).unwrap();
    let mut b = MatcherBuilder::new();
    b.add(0, &pattern);
    let m = b.build();
    for bad in [
        &b"{"[..],
        b"[]",
        b"{\"a\":}",
        b"{\"a\":1,}",
        b"{\"a\":\"\xff\"}",
        b"{\"a\":01}",
        b"{} x",
        b"{\"a\":\"\\x\"}",
    ] {
        assert!(
            m.matches(&Event::Json(bad)).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
    assert!(
        m.matches(&Event::Json(deep.as_bytes())).is_err(),
        "nesting limit"
    );
}

#[test]
fn many_rules_one_matcher() {
    // 2,000 rules over a few fields; each event must report exactly the rules the evaluator accepts.
    let mut patterns = Vec::new();
    for i in 0..2000 {
        let p = match i % 5 {
            0 => json!({"detail": {"id": [i]}}),
            1 => json!({"detail": {"name": [{"prefix": format!("n{}", i % 50)}]}}),
            2 => json!({"detail": {"amount": [{"numeric": [">", i % 100, "<=", i % 100 + 10]}]}}),
            3 => {
                json!({"detail": {"name": [{"anything-but": format!("n{}", i % 7)}], "id": [{"exists": true}]}})
            }
            _ => {
                json!({"$or": [{"detail": {"tag": [format!("t{}", i % 30)]}}, {"source": [{"wildcard": format!("s{}*", i % 9)}]}]})
            }
        };
        patterns.push(Pattern::parse(&p, &PatternOptions::default()).unwrap());
    }
    let mut b = MatcherBuilder::new();
    patterns.iter().enumerate().for_each(|(i, p)| {
        b.add(i, p);
    });
    let m = b.build();
    for k in 0..60 {
        let event = json!({"source": format!("s{}x", k % 11), "detail": {"id": k * 7, "name": format!("n{}", k % 60), "amount": k % 120, "tag": [format!("t{}", k % 40), "other"]}});
        let want: Vec<usize> = patterns
            .iter()
            .enumerate()
            .filter(|(_, p)| p.matches(&event))
            .map(|(i, _)| i)
            .collect();
        assert!(!want.is_empty());
        assert_eq!(
            m.matches(&Event::Value(&event)).unwrap(),
            want,
            "event {event}"
        );
    }
}

#[test]
fn nesting_limit_is_serde_json_s() {
    let pattern = Pattern::parse(
        &json!({"a": [{"exists": true}]}),
        &PatternOptions::default(),
    )
    .unwrap();
    let mut b = MatcherBuilder::new();
    b.add(0, &pattern);
    let m = b.build();
    for depth in 120..135 {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            let text = if open == "[" {
                format!("{{\"a\":{text}}}")
            } else {
                text
            };
            let serde_ok = serde_json::from_str::<Value>(&text).is_ok();
            assert_eq!(
                m.matches(&Event::Json(text.as_bytes())).is_ok(),
                serde_ok,
                "depth {depth} {open}"
            );
        }
    }
}

#[test]
fn numeric_ranges_at_the_edges_of_f64() {
    let pattern = Pattern::parse(
        &json!({"n": [{"numeric": [">=", -1e300, "<", 1e300]}, {"numeric": [">", 1e300]}]}),
        &PatternOptions::default(),
    )
    .unwrap();
    let mut b = MatcherBuilder::new();
    b.add(0, &pattern);
    let m = b.build();
    for (n, want) in [
        (0.0, true),
        (-1e300, true),
        (1e300, false),
        (1.5e300, true),
        (-1.5e300, false),
    ] {
        let event = json!({"n": n});
        assert_eq!(pattern.matches(&event), want, "{n}");
        assert_eq!(
            !m.matches(&Event::Value(&event)).unwrap().is_empty(),
            want,
            "{n}"
        );
    }
}

/// Array consistency (as AWS's event-ruler): fields of one pattern that sit in the same array of the event must
/// be satisfied by one element. Each case runs through the evaluator and, alone and together with every other
/// case, through the compiled matcher (bytes and parsed value).
#[test]
fn array_consistency_cases() {
    let cases = load("array_consistency.json");
    let mut failures = Vec::new();
    let mut all = MatcherBuilder::new();
    let patterns: Vec<Pattern> = cases
        .iter()
        .map(|case| {
            Pattern::parse(&case["pattern"], &PatternOptions::default())
                .unwrap_or_else(|e| panic!("{}: {e}", case["id"]))
        })
        .collect();
    for (i, p) in patterns.iter().enumerate() {
        all.add(i, p);
    }
    let all = all.build();
    for (i, case) in cases.iter().enumerate() {
        let id = case["id"].as_str().unwrap();
        let event = &case["event"];
        let expected = case["match"].as_bool().unwrap();
        let note = &case["note"];
        if patterns[i].matches(event) != expected {
            failures.push(format!("{id} (evaluator): {note}"));
        }
        let mut one = MatcherBuilder::new();
        one.add(i, &patterns[i]);
        let one = one.build();
        let bytes = serde_json::to_vec(event).unwrap();
        for (how, m) in [("matcher", &one), ("shared matcher", &all)] {
            for (form, ev) in [
                ("bytes", Event::Json(&bytes)),
                ("value", Event::Value(event)),
            ] {
                if m.matches(&ev).unwrap().contains(&i) != expected {
                    failures.push(format!("{id} ({how}, {form}): {note}"));
                }
            }
        }
        // Every other case's pattern too: the shared matcher agrees with the evaluator rule by rule.
        let want: Vec<usize> = (0..patterns.len())
            .filter(|&j| patterns[j].matches(event))
            .collect();
        if all.matches(&Event::Json(&bytes)).unwrap() != want {
            failures.push(format!(
                "{id}: shared matcher disagrees with the evaluator on other rules"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
