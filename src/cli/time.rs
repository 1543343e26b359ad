//! Times and durations on the command line: RFC 3339 timestamps (`2026-11-21T10:00:00Z`, offsets, fractions,
//! a bare date), epoch milliseconds, and durations like `500ms`, `5s`, `15m`, `2h`, `7d`. Kafka timestamps are
//! milliseconds since the Unix epoch, UTC; a datetime without an offset is read as UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses `<number><unit>` with unit `ms`, `s`, `m`, `h` or `d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a duration like 500ms, 5s, 15m, 2h or 7d, got {s:?}"))?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        "" => {
            return Err(format!(
                "duration {s:?} needs a unit: ms, s, m, h or d (e.g. {n}s)"
            ));
        }
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}; use ms, s, m, h or d"
            ));
        }
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration {s:?} is too large"))
}

pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1_000) {
        format!("{ms}ms")
    } else {
        format!("{}s", ms / 1_000)
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Parses a point in time: RFC 3339 (`2026-11-21T10:00:00Z`, `…T10:00:00.250+02:00`, a space instead of `T`,
/// no offset meaning UTC, a bare date meaning midnight UTC) or epoch milliseconds (all digits).
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    let bad = |why: &str| {
        format!(
            "{s:?} is not a time ({why}); expected RFC 3339 like 2026-11-21T10:00:00Z or \
             2026-11-21T10:00:00.000+02:00, a date like 2026-11-21, or epoch milliseconds"
        )
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| bad("number too large"));
    }
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(range).ok_or_else(|| bad("too short"))?;
        if part.bytes().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            Ok(part.parse().unwrap_or(0))
        } else {
            Err(bad(&format!("{part:?} is not a number")))
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad("the date must be YYYY-MM-DD"));
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    let mut millis = days_from_civil(year, month, day) * 86_400_000;
    let rest = &s[10..];
    if rest.is_empty() {
        return Ok(millis);
    }
    if !(rest.starts_with('T') || rest.starts_with('t') || rest.starts_with(' ')) || rest.len() < 9
    {
        return Err(bad("the time must be THH:MM:SS"));
    }
    let r = rest.as_bytes();
    if r[3] != b':' || r[6] != b':' {
        return Err(bad("the time must be THH:MM:SS"));
    }
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad("hour, minute or second out of range"));
    }
    millis += ((hour * 60 + minute) * 60 + second) * 1_000;
    let mut tail = &s[19..];
    if let Some(fraction) = tail.strip_prefix('.') {
        let digits = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if digits == 0 {
            return Err(bad("empty fraction of a second"));
        }
        let ms: String = fraction[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis += ms.parse::<i64>().unwrap_or(0);
        tail = &fraction[digits..];
    }
    match tail {
        "" | "Z" | "z" => Ok(millis),
        _ if (tail.starts_with('+') || tail.starts_with('-'))
            && tail.len() == 6
            && &tail[3..4] == ":" =>
        {
            let sign = if tail.starts_with('-') { -1 } else { 1 };
            let (oh, om) = (num(20..22)?, num(23..25)?);
            if oh > 23 || om > 59 {
                return Err(bad("offset out of range"));
            }
            Ok(millis - sign * (oh * 60 + om) * 60_000)
        }
        _ => Err(bad(&format!(
            "unexpected {tail:?} after the time; use Z or +HH:MM"
        ))),
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC with milliseconds.
pub fn format_timestamp(millis: i64) -> String {
    let days = millis.div_euclid(86_400_000);
    let of_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, ms) = (
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1_000 % 60,
        of_day % 1_000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_in_every_accepted_form() {
        let base = 1_795_255_200_000; // 2026-11-21T10:00:00Z
        for (text, expected) in [
            ("2026-11-21T10:00:00Z", base),
            ("2026-11-21t10:00:00z", base),
            ("2026-11-21 10:00:00", base),
            ("2026-11-21T10:00:00.25Z", base + 250),
            ("2026-11-21T10:00:00.123456Z", base + 123),
            ("2026-11-21T12:30:00+02:30", base),
            ("2026-11-21T08:00:00-02:00", base),
            ("2026-11-21", base - 10 * 3_600_000),
            ("1795255200000", base),
            ("1970-01-01T00:00:00Z", 0),
            ("2024-02-29T00:00:00Z", 1_709_164_800_000),
        ] {
            assert_eq!(parse_timestamp(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_timestamps_say_what_is_expected() {
        for text in [
            "",
            "yesterday",
            "2026-13-01",
            "2025-02-29",
            "2026-11-21T25:00:00Z",
            "2026-11-21T10:00Z",
            "2026-11-21T10:00:00+2",
            "2026-11-21T10:00:00.Z",
        ] {
            let err = parse_timestamp(text).unwrap_err();
            assert!(err.contains("RFC 3339"), "{text}: {err}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for millis in [0, 1_795_255_200_123, 951_782_400_000, -86_400_000] {
            assert_eq!(
                parse_timestamp(&format_timestamp(millis)),
                Ok(millis),
                "{millis}"
            );
        }
        assert_eq!(
            format_timestamp(1_795_255_200_123),
            "2026-11-21T10:00:00.123Z"
        );
    }

    #[test]
    fn durations_need_a_known_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("5").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("5w").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s").is_err());
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1500ms");
    }
}
