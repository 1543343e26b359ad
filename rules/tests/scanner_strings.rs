//! The scanner against serde_json: where strings end, and values passed over unread (plain ones by a fast loop
//! that hands anything unusual or invalid to a checking one). Every input runs as given and with a newline
//! after the closing brace (a control byte outside any string, which a string search must tell apart from one
//! inside a string), and must give serde_json's verdict and, when valid, the per-rule evaluator's matches.

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
    for depth in [1, 63, 64, 65, 125, 126, 127, 128, 300] {
        for key in ["skip", "a", "o"] {
            // `inner` under `depth` containers opened by `open` and closed by `close`, at `key`.
            let nested = |open: &str, inner: &str, close: &str, closes: usize| {
                format!(
                    "{{\"{key}\":{}{inner}{}}}",
                    open.repeat(depth),
                    close.repeat(closes)
                )
            };
            check(&r, nested("[", "\"x\\\"y\"", "]", depth).as_bytes());
            check(&r, nested("{\"p\":", "\"p\"", "}", depth).as_bytes());
            // Plain values (no escapes), the innermost container empty: the limit counts it too.
            for inner in ["[]", "{}", "1"] {
                check(&r, nested("[", inner, "]", depth).as_bytes());
                check(&r, nested("{\"q\":", inner, "}", depth).as_bytes());
            }
            // Unbalanced: one closing bracket short.
            let doc = nested("[", "1", "]", depth - 1);
            assert_eq!(check(&r, doc.as_bytes()), None);
        }
    }
}

/// A small random generator (xorshift), so that failures reproduce.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Random JSON, mostly valid: every kind of value, numbers and literals valid and not, whitespace or none
/// between tokens.
fn random_value(r: &mut Rng, depth: usize, out: &mut String) {
    const SPACE: &[&str] = &["", "", "", " ", "\n", "\t ", "\r\n"];
    out.push_str(r.pick(SPACE));
    match r.below(if depth > 4 { 3 } else { 5 }) {
        0 => out.push_str(r.pick(&[
            r#""""#,
            r#""x""#,
            r#""plain words""#,
            r#""a\"b""#,
            r#""\\""#,
            r#""\u00e9""#,
            r#""é""#,
        ])),
        1 => out.push_str(r.pick(&[
            "0", "-1", "12.5", "283.8", "1e5", "-0.0e-3", "1E+2", "3.0e2", "01", "1.", "-", ".5",
            "1e", "+1", "-a", "1.e3", "00", "1e400",
        ])),
        2 => out.push_str(r.pick(&["true", "false", "null", "tru", "nul", "falsy", "True"])),
        3 => {
            out.push('[');
            for k in 0..r.below(4) {
                if k > 0 {
                    out.push(',');
                }
                random_value(r, depth + 1, out);
            }
            out.push_str(r.pick(SPACE));
            out.push(']');
        }
        _ => {
            out.push('{');
            for k in 0..r.below(4) {
                if k > 0 {
                    out.push(',');
                }
                out.push_str(r.pick(SPACE));
                out.push_str(r.pick(&[r#""k""#, r#""a""#, r#""sku""#, r#""\"q""#, r#""""#]));
                out.push_str(r.pick(SPACE));
                out.push(':');
                random_value(r, depth + 1, out);
            }
            out.push_str(r.pick(SPACE));
            out.push('}');
        }
    }
    out.push_str(r.pick(SPACE));
}

/// Random values, some with one byte dropped, changed or added, under a key no rule reads (skipped) and inside
/// an array under a key one does (read), followed by a field a rule reads: the scanner must agree with
/// serde_json on validity and, after skipping, still find the field.
#[test]
fn skipped_values_agree_with_serde_json() {
    let r = [
        json!({"a": ["xy"]}),
        json!({"a": [{"prefix": "x"}], "z": [1]}),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let mut value = String::new();
        random_value(&mut rng, 0, &mut value);
        let mut value = value.into_bytes();
        const EDITS: &[u8] = b",:[]{}\" 0a\\-.e";
        if rng.below(3) == 0 && !value.is_empty() {
            let at = rng.below(value.len());
            match rng.below(3) {
                0 => {
                    value.remove(at);
                }
                1 => value[at] = EDITS[rng.below(EDITS.len())],
                _ => value.insert(at, EDITS[rng.below(EDITS.len())]),
            }
        }
        for (before, after) in [
            (&br#"{"skip":"#[..], &br#","a":"xy","z":1}"#[..]),
            (br#"{"z":1,"skip":[1,"#, br#"],"a":"xy"}"#),
            (br#"{"a":["#, br#"],"z":1}"#),
        ] {
            let mut doc = before.to_vec();
            doc.extend_from_slice(&value);
            doc.extend_from_slice(after);
            check(&r, &doc);
        }
    }
}
