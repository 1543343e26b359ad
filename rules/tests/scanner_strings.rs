//! Where the scanner's strings end: every input runs as given and with a newline after the closing brace (a
//! control byte outside any string, which a string search must tell apart from one inside a string), and must
//! give serde_json's verdict and, when valid, the per-rule evaluator's matches.

use busbar_rules::{Event, Matcher, MatcherBuilder, Pattern, PatternOptions};
use serde_json::{Value, json};

fn matcher(rules: &[Value]) -> (Matcher, Vec<Pattern>) {
    let patterns: Vec<Pattern> = rules
        .iter()
        .map(|p| Pattern::parse(p, &PatternOptions::default()).unwrap())
        .collect();
    let mut builder = MatcherBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        builder.add(i, p);
    }
    (builder.build(), patterns)
}

/// Checks `input` as given and followed by a newline; returns the matches when valid.
fn check(rules: &[Value], input: &[u8]) -> Option<Vec<usize>> {
    let (matcher, patterns) = matcher(rules);
    let mut with_newline = input.to_vec();
    with_newline.push(b'\n');
    let mut verdicts = Vec::new();
    for bytes in [input, &with_newline[..]] {
        let ours = matcher.matches(&Event::Json(bytes));
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v @ Value::Object(_)) => {
                let want: Vec<usize> = (0..patterns.len())
                    .filter(|&i| patterns[i].matches(&v))
                    .collect();
                let got = ours.unwrap_or_else(|e| {
                    panic!(
                        "scanner rejected valid JSON ({e}): {}",
                        String::from_utf8_lossy(bytes)
                    )
                });
                assert_eq!(got, want, "{}", String::from_utf8_lossy(bytes));
                verdicts.push(Some(got));
            }
            _ => {
                assert!(
                    ours.is_err(),
                    "scanner accepted what serde_json rejects: {}",
                    String::from_utf8_lossy(bytes)
                );
                verdicts.push(None);
            }
        }
    }
    verdicts.pop().unwrap()
}

fn rules() -> Vec<Value> {
    vec![
        json!({"a": ["x\"y"]}),
        json!({"a": ["back\\slash"]}),
        json!({"a": ["é"], "n": [{"numeric": ["=", 300]}]}),
        json!({"k.j": [1]}),
        json!({"o": {"p": [{"prefix": "ab"}]}}),
        json!({"": [true]}),
    ]
}

#[test]
fn escapes_in_read_and_skipped_strings() {
    let r = rules();
    assert_eq!(check(&r, br#"{"a":"x\"y"}"#), Some(vec![0]));
    assert_eq!(check(&r, br#"{"a":"back\\slash"}"#), Some(vec![1]));
    assert_eq!(check(&r, br#"{"a":"\u00e9","n":3.0e2}"#), Some(vec![2]));
    assert_eq!(check(&r, br#"{"a":"\u00E9","n":300}"#), Some(vec![2]));
    // An escaped key names the same path as the plain one.
    assert_eq!(check(&r, br#"{"\u0061":"x\"y"}"#), Some(vec![0]));
    // Escapes, a backslash right before the closing quote, and quotes inside skipped values.
    assert_eq!(
        check(
            &r,
            br#"{"s":"\\","t":["\"",{"u":"\\\"\\"}],"v":"\ud83d\ude00","a":"x\"y"}"#
        ),
        Some(vec![0])
    );
    assert_eq!(
        check(&r, br#"{"o":{"skip":"a\"}","p":"abc"}}"#),
        Some(vec![4])
    );
    // A string that ends in an escaped backslash is over at the next quote.
    assert_eq!(
        check(&r, br#"{"s":"x\\","a":"back\\slash"}"#),
        Some(vec![1])
    );
}

#[test]
fn bad_strings_are_rejected_wherever_they_are() {
    let r = rules();
    for bad in [
        &br#"{"a":"x\qy"}"#[..],
        br#"{"skip":"x\qy"}"#,
        br#"{"skip":["\u12"]}"#,
        br#"{"skip":{"k":"\ud800"},"a":"x"}"#,
        br#"{"a":"\udc00"}"#,
        b"{\"skip\":\"a\x01b\"}",
        b"{\"a\":\"a\x1fb\"}",
        b"{\"skip\":\"line\nbreak\"}",
        b"{\"skip\":\"tab\tinside\"}",
        br#"{"skip":"unterminated}"#,
        br#"{"skip":"ends in a backslash\"#,
        br#"{"a":"#,
        b"{\"skip\":\"\xff\"}",
        b"{\"skip\":[\"ok\",\"\xc3\x28\"]}",
        b"{\"a\":\"\xe2\x82\"}",
    ] {
        assert_eq!(check(&r, bad), None, "{}", String::from_utf8_lossy(bad));
    }
    // Valid multi-byte UTF-8 is fine in read and skipped strings.
    assert_eq!(
        check(
            &r,
            "{\"skip\":\"ünïcödé ✓ 😀\",\"a\":\"é\",\"n\":300}".as_bytes()
        ),
        Some(vec![2])
    );
}

/// Every position of a quote, escape or control byte in strings of every length around the word and block
/// widths, in a read and in a skipped value, and at the very end of the document.
#[test]
fn string_ends_at_every_offset() {
    let r = [json!({"a": [{"prefix": "x"}]}), json!({"z": [1]})];
    for len in 0..70 {
        for at in 0..=len {
            for special in [&b"\\\""[..], b"\\\\", b"\\n", b"\x05", b"\"", b"\\u0041"] {
                let mut content = vec![b'x'; len];
                content.splice(at..at, special.iter().copied());
                for key in ["a", "skip"] {
                    let mut doc = format!("{{\"{key}\":\"").into_bytes();
                    doc.extend_from_slice(&content);
                    doc.extend_from_slice(b"\",\"z\":1}");
                    check(&r, &doc);
                    let mut doc = b"{\"z\":1,\"".to_vec();
                    doc.extend_from_slice(key.as_bytes());
                    doc.extend_from_slice(b"\":\"");
                    doc.extend_from_slice(&content);
                    doc.extend_from_slice(b"\"}");
                    check(&r, &doc);
                }
            }
        }
    }
}

/// Strings starting at every offset of the scanner's 64-byte blocks, past the first block, with a quote, escape
/// or control byte at every position, so that block edges fall inside, before and after each of them.
#[test]
fn strings_across_block_edges() {
    let r = [json!({"a": [{"prefix": "x"}]}), json!({"z": [1]})];
    for pad in 60..130 {
        for at in 0..=16 {
            for special in [&b"\\\""[..], b"\\\\", b"\\u0041", b"\x05", b"\"", b"\\"] {
                let mut content = vec![b'x'; 16];
                content.splice(at..at, special.iter().copied());
                for key in ["a", "skip"] {
                    let mut doc =
                        format!("{{\"pad\":\"{}\",\"{key}\":\"", "p".repeat(pad)).into_bytes();
                    doc.extend_from_slice(&content);
                    doc.extend_from_slice(b"\",\"z\":1}");
                    check(&r, &doc);
                }
            }
        }
    }
}

#[test]
fn dotted_and_empty_keys_still_reach_their_paths() {
    let r = rules();
    assert_eq!(check(&r, br#"{"k.j":1}"#), Some(vec![3]));
    assert_eq!(check(&r, br#"{"k":{"j":1}}"#), Some(vec![3]));
    assert_eq!(check(&r, br#"{"o.p":"abz"}"#), Some(vec![4]));
    assert_eq!(check(&r, br#"{"":true}"#), Some(vec![5]));
    assert_eq!(
        check(&r, br#"{"k":{"j.":1},"o":{"q.p":"ab"}}"#),
        Some(vec![])
    );
}

#[test]
fn deep_nesting_in_skipped_and_read_values() {
    let r = rules();
    for depth in [1, 64, 125, 126, 127, 128, 300] {
        for key in ["skip", "a", "o"] {
            let doc = format!(
                "{{\"{key}\":{}\"x\\\"y\"{}}}",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            check(&r, doc.as_bytes());
            let doc = format!(
                "{{\"{key}\":{}\"p\"{}}}",
                "{\"p\":".repeat(depth),
                "}".repeat(depth)
            );
            check(&r, doc.as_bytes());
            // Unbalanced: one closing bracket short.
            let doc = format!(
                "{{\"{key}\":{}1{}}}",
                "[".repeat(depth),
                "]".repeat(depth - 1)
            );
            assert_eq!(check(&r, doc.as_bytes()), None);
        }
    }
}
