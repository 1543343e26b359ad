//! Numbers as EventBridge compares them: `300`, `300.0` and `3.0e2` are equal, `9007199254740993` is not
//! `9007199254740992`. Integers that fit 64 bits are kept exactly, other numbers go through `f64` — what
//! `serde_json::Value` does too, so a parsed `Value` and the raw bytes of the same event agree. The key is
//! `Copy` and hashable so exact-number lookups need no allocation.

/// Key for exact numeric equality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NumKey {
    /// Every integral value (written `3`, `3.0` or `3e0`) that fits in `i128`.
    Int(i128),
    /// Any other value: the bits of its `f64`.
    Float(u64),
}

/// A JSON number: exact key plus its `f64` value for `numeric` ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num {
    pub(crate) key: NumKey,
    pub(crate) value: f64,
}

impl Num {
    pub(crate) fn from_json(n: &serde_json::Number) -> Num {
        if let Some(i) = n.as_i64() {
            Num {
                key: NumKey::Int(i128::from(i)),
                value: i as f64,
            }
        } else if let Some(u) = n.as_u64() {
            Num {
                key: NumKey::Int(i128::from(u)),
                value: u as f64,
            }
        } else {
            Num::from_f64(n.as_f64().unwrap_or(0.0))
        }
    }

    pub(crate) fn from_f64(f: f64) -> Num {
        let key = if f.fract() == 0.0 && f.abs() < 1.0e38 {
            NumKey::Int(f as i128)
        } else {
            NumKey::Float(f.to_bits())
        };
        Num { key, value: f }
    }

    /// From the text of a JSON number (already checked against the JSON grammar).
    pub(crate) fn from_text(text: &str) -> Num {
        if !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            if let Ok(i) = text.parse::<i64>() {
                return Num {
                    key: NumKey::Int(i128::from(i)),
                    value: i as f64,
                };
            }
            if let Ok(u) = text.parse::<u64>() {
                return Num {
                    key: NumKey::Int(i128::from(u)),
                    value: u as f64,
                };
            }
        }
        Num::from_f64(text.parse::<f64>().unwrap_or(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_spellings_share_a_key() {
        for (a, b) in [
            ("300", "3.0e2"),
            ("3", "3.0"),
            ("0", "-0.0"),
            ("0.1", "1e-1"),
            ("-12.5", "-1.25E1"),
        ] {
            assert_eq!(Num::from_text(a).key, Num::from_text(b).key, "{a} vs {b}");
        }
        assert_ne!(
            Num::from_text("9007199254740993").key,
            Num::from_text("9007199254740992").key
        );
        assert_ne!(Num::from_text("0.1").key, Num::from_text("0.10000001").key);
    }

    #[test]
    fn value_and_text_agree() {
        for text in [
            "9007199254740993",
            "18446744073709551615",
            "-5",
            "0.25",
            "1e300",
            "999999999.999999",
            "1e19",
        ] {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let serde_json::Value::Number(n) = v else {
                panic!()
            };
            assert_eq!(Num::from_json(&n), Num::from_text(text), "{text}");
        }
    }
}
