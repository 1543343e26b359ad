//! Durations written as text (`"500ms"`, `"30s"`, `"7d"`, `"1h30m"`) and bus retention (a duration or
//! `"forever"`).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration as StdDuration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];
const PATTERN: &str = "^([0-9]+(ms|s|m|h|d))+$";
const EXPECTED: &str = "a duration: whole numbers with units ms, s, m, h or d, such as \"500ms\", \"30s\", \"7d\" \
                        or \"1h30m\"";

/// A span of time in a pipeline file, with millisecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(StdDuration);

impl Duration {
    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(StdDuration::from_millis(ms))
    }

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(StdDuration::from_secs(secs))
    }

    /// The standard-library duration.
    pub fn get(self) -> StdDuration {
        self.0
    }

    /// Parses `"500ms"`, `"30s"`, `"7d"`, `"1h30m"`…; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("invalid duration {text:?}: expected {EXPECTED}");
        if text.is_empty() {
            return Err(invalid());
        }
        let mut rest = text;
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(invalid());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
            rest = &rest[digits..];
            // "ms" must be tried before "m".
            let (unit, factor) = UNITS
                .iter()
                .find(|(unit, _)| rest.starts_with(unit))
                .ok_or_else(invalid)?;
            rest = &rest[unit.len()..];
            let millis = number
                .checked_mul(*factor)
                .ok_or_else(|| format!("duration {text:?} is too long"))?;
            total = total
                .checked_add(millis)
                .ok_or_else(|| format!("duration {text:?} is too long"))?;
        }
        Ok(Self(StdDuration::from_millis(total)))
    }
}

impl fmt::Display for Duration {
    /// Prints the largest units first (`1h30m`, `500ms`, `0s`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut millis = self.0.as_millis() as u64;
        if millis == 0 {
            return f.write_str("0s");
        }
        for (unit, factor) in UNITS.iter().rev() {
            if millis >= *factor {
                write!(f, "{}{unit}", millis / factor)?;
                millis %= factor;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": PATTERN,
            "description": "Whole numbers with units ms, s, m, h or d, such as \"500ms\", \"30s\", \"7d\" or \"1h30m\".",
            "examples": ["500ms", "30s", "7d"]
        })
    }
}

/// How long the bus keeps records: a [`Duration`], or `"forever"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Records older than this are deleted, a whole segment at a time.
    For(Duration),
    /// Records are never deleted for their age.
    Forever,
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::For(duration) => duration.fmt(f),
            Self::Forever => f.write_str("forever"),
        }
    }
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == "forever" {
            return Ok(Self::Forever);
        }
        Duration::parse(&text).map(Self::For).map_err(|_| {
            serde::de::Error::custom(format!(
                "invalid retention {text:?}: expected \"forever\" or {EXPECTED}"
            ))
        })
    }
}

impl Serialize for Retention {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Retention {
    fn schema_name() -> Cow<'static, str> {
        "Retention".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^(forever|([0-9]+(ms|s|m|h|d))+)$",
            "description": "A duration such as \"7d\" or \"12h\", or \"forever\".",
            "examples": ["7d", "forever"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_durations() {
        for (text, millis, printed) in [
            ("500ms", 500, "500ms"),
            ("1s", 1_000, "1s"),
            ("90s", 90_000, "1m30s"),
            ("1h30m", 5_400_000, "1h30m"),
            ("7d", 604_800_000, "7d"),
            ("0s", 0, "0s"),
        ] {
            let duration = Duration::parse(text).unwrap();
            assert_eq!(duration.get().as_millis(), millis, "{text}");
            assert_eq!(duration.to_string(), printed);
        }
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in [
            "",
            "5",
            "s",
            "1.5s",
            "1 s",
            "10y",
            "-1s",
            "1sec",
            "99999999999999999999ms",
        ] {
            let err = Duration::parse(text).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid duration {text:?}")),
                "{text}: {err}"
            );
        }
        assert!(
            Duration::parse("300000000000000d")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn retention_is_a_duration_or_forever() {
        let forever: Retention = serde_json::from_str("\"forever\"").unwrap();
        assert_eq!(forever, Retention::Forever);
        let week: Retention = serde_json::from_str("\"7d\"").unwrap();
        assert_eq!(week, Retention::For(Duration::from_secs(7 * 86_400)));
        assert!(serde_json::from_str::<Retention>("\"always\"").is_err());
    }
}
