//! Every case of the EventBridge conformance files runs here: patterns through the per-rule evaluator and the
//! compiled matcher (from a parsed `Value` and from raw bytes), invalid patterns in both modes, transforms.

use busbar_rules::{
    Event, InputTransformer, MatcherBuilder, Pattern, PatternOptions, TransformContext,
};
use serde_json::Value;

fn load(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/tests/fixtures/eventbridge/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn pattern_cases_match_as_eventbridge() {
    let cases = load("pattern_cases.json");
    assert!(cases.len() >= 100, "fixture file shrank: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let expected = case["match"].as_bool().unwrap();
        for strict in [false, true] {
            let opts = PatternOptions {
                strict_eventbridge: strict,
            };
            let pattern = match Pattern::parse(&case["pattern"], &opts) {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!("{id}: rejected valid pattern: {e}"));
                    continue;
                }
            };
            if pattern.matches(&case["event"]) != expected {
                failures.push(format!(
                    "{id} (evaluator): expected match={expected}: {}",
                    case["note"]
                ));
            }
            let mut builder = MatcherBuilder::new();
            builder.add(7, &pattern);
            let matcher = builder.build();
            let want: Vec<usize> = if expected { vec![7] } else { vec![] };
            let from_value = matcher.matches(&Event::Value(&case["event"])).unwrap();
            if from_value != want {
                failures.push(format!(
                    "{id} (matcher, Value): got {from_value:?}: {}",
                    case["note"]
                ));
            }
            let bytes = serde_json::to_vec_pretty(&case["event"]).unwrap();
            let from_bytes = matcher.matches(&Event::Json(&bytes)).unwrap();
            if from_bytes != want {
                failures.push(format!(
                    "{id} (matcher, bytes): got {from_bytes:?}: {}",
                    case["note"]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn all_pattern_cases_compile_into_one_matcher() {
    // The whole file as one rule set: each event must yield exactly the ids of the cases whose pattern it
    // should match, computed case by case with the evaluator.
    let cases = load("pattern_cases.json");
    let patterns: Vec<Pattern> = cases
        .iter()
        .map(|c| Pattern::parse(&c["pattern"], &PatternOptions::default()).unwrap())
        .collect();
    let mut builder = MatcherBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        builder.add(i, p);
    }
    let matcher = builder.build();
    for case in &cases {
        let event = &case["event"];
        let want: Vec<usize> = patterns
            .iter()
            .enumerate()
            .filter(|(_, p)| p.matches(event))
            .map(|(i, _)| i)
            .collect();
        let bytes = serde_json::to_vec(event).unwrap();
        assert_eq!(
            matcher.matches(&Event::Json(&bytes)).unwrap(),
            want,
            "event of {}",
            case["id"]
        );
    }
}

#[test]
fn invalid_patterns_are_rejected_in_both_modes() {
    let cases = load("invalid_patterns.json");
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for case in &cases {
        for strict in [false, true] {
            match Pattern::parse(
                &case["pattern"],
                &PatternOptions {
                    strict_eventbridge: strict,
                },
            ) {
                Ok(_) => failures.push(format!(
                    "{} (strict={strict}) accepted: {}",
                    case["id"], case["note"]
                )),
                Err(e) => assert!(
                    e.path().starts_with('$'),
                    "{}: error path {:?}",
                    case["id"],
                    e.path()
                ),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn transform_cases_produce_eventbridge_output() {
    let cases = load("transform_cases.json");
    assert!(cases.len() >= 15);
    let mut failures = Vec::new();
    for case in &cases {
        let id = case["id"].as_str().unwrap();
        let map = case["input_paths_map"].as_object().unwrap();
        let template = case["input_template"].as_str().unwrap();
        let ctx_json = case.get("context").cloned().unwrap_or(Value::Null);
        let ctx = TransformContext {
            rule_name: ctx_json["rule_name"].as_str().unwrap_or("test-rule"),
            rule_arn: ctx_json["rule_arn"]
                .as_str()
                .unwrap_or("arn:aws:events:us-east-1:123456789012:rule/test-rule"),
            ingestion_time: ctx_json["ingestion_time"]
                .as_str()
                .unwrap_or("2015-11-11T21:29:54Z"),
        };
        let built = InputTransformer::new(map, template);
        let result = built
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|t| t.transform(&case["event"], &ctx));
        match case["output_type"].as_str().unwrap() {
            "error" => {
                let stage = case["error_stage"].as_str().unwrap();
                match (&built, &result) {
                    (Err(_), _) if stage == "put_targets" => {}
                    (Ok(_), Err(e)) if stage == "delivery" && !e.is_load_time() => {}
                    _ => failures.push(format!(
                        "{id}: expected an error at {stage}, got built={} result={result:?}",
                        built.is_ok()
                    )),
                }
            }
            kind => {
                let Ok(out) = result else {
                    failures.push(format!("{id}: {result:?}"));
                    continue;
                };
                let expected = &case["expected_output"];
                let ok = if kind == "json" {
                    serde_json::from_str::<Value>(&out).ok().as_ref() == Some(expected)
                } else {
                    Some(out.as_str()) == expected.as_str()
                };
                if !ok {
                    failures.push(format!("{id}: got {out} expected {expected}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
