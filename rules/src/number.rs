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
        let value = short_decimal(text).unwrap_or_else(|| text.parse::<f64>().unwrap_or(0.0));
        Num::from_f64(value)
    }
}

/// Exact powers of ten as `f64` (every one up to 10^22 is representable).
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The value of a plain decimal (`-123.45`, no exponent) of at most 15 digits, without the general parser:
/// digits and power of ten are both exact as `f64`, so their quotient is the correctly rounded value, the one
/// `str::parse` gives (Clinger's fast path). `None` for anything else.
fn short_decimal(text: &str) -> Option<f64> {
    let (negative, digits) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    };
    if digits.len() > 16 {
        return None;
    }
    let (mut mantissa, mut count, mut point) = (0u64, 0usize, None);
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                count += 1;
            }
            b'.' if point.is_none() => point = Some(i),
            _ => return None,
        }
    }
    // At most 15 digits: below 2^53, exact.
    if count == 0 || count > 15 {
        return None;
    }
    let fraction = point.map_or(0, |p| digits.len() - p - 1);
    let value = mantissa as f64 / POW10[fraction];
    Some(if negative { -value } else { value })
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

    /// The short path gives what the general parser gives, bit for bit.
    #[test]
    fn short_decimals_parse_exactly() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let digits = (state % 10_u64.pow((state >> 40) as u32 % 16)).to_string();
            let point = (state >> 50) as usize % (digits.len() + 1);
            let mut text = format!("{}.{}", &digits[..point], &digits[point..]);
            if text.starts_with('.') {
                text.insert(0, '0');
            }
            if text.ends_with('.') {
                text.pop();
            }
            if state & 1 == 1 {
                text.insert(0, '-');
            }
            let want: f64 = text.parse().unwrap();
            if let Some(got) = short_decimal(&text) {
                assert_eq!(got.to_bits(), want.to_bits(), "{text}");
            }
        }
        for text in [
            "0.1",
            "-0.0",
            "1234.56",
            "999999999999999",
            "0.00000000000001",
            "4999.99",
        ] {
            assert_eq!(
                short_decimal(text).map(f64::to_bits),
                Some(text.parse::<f64>().unwrap().to_bits()),
                "{text}"
            );
        }
        for text in [
            "1e5",
            "1.5E2",
            "1234567890123456",
            "0.1234567890123456",
            ".",
        ] {
            assert_eq!(short_decimal(text), None, "{text}");
        }
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
