//! Timestamps the way the original writes them (Python's `isoformat`) and a sortable form of them.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Timelike};

/// Parses ISO 8601 (with or without offset, `Z`, fractions, or a date alone) and writes it as
/// Python's `isoformat` does: `2025-03-04T10:15:00+00:00`, microseconds only when non-zero.
pub fn normalise_timestamp(text: &str) -> Option<String> {
    match parse(text)? {
        Parsed::Aware(time) => Some(format_aware(&time)),
        Parsed::Naive(time) => Some(format_naive(&time)),
    }
}

/// Milliseconds since the epoch (naive timestamps read as UTC), for ordering by `last_update`.
pub fn sort_millis(text: &str) -> Option<i64> {
    match parse(text)? {
        Parsed::Aware(time) => Some(time.timestamp_millis()),
        Parsed::Naive(time) => Some(time.and_utc().timestamp_millis()),
    }
}

/// Whether PostgreSQL's `date` and `timestamp with time zone` take the (already validated)
/// date or timestamp: a year from 1 to 9999 and an offset under 16 hours.
pub(crate) fn storable(text: &str) -> bool {
    let year_ok = |year: i32| (1..=9999).contains(&year);
    match parse(text) {
        Some(Parsed::Aware(time)) => {
            year_ok(time.naive_utc().year())
                && year_ok(time.naive_local().year())
                && time.offset().local_minus_utc().abs() < 16 * 3600
        }
        Some(Parsed::Naive(time)) => year_ok(time.year()),
        None => false,
    }
}

/// The original's default for missing dates: naive local now.
pub fn local_now() -> String {
    format_naive(&chrono::Local::now().naive_local())
}

enum Parsed {
    Aware(DateTime<FixedOffset>),
    Naive(NaiveDateTime),
}

fn parse(text: &str) -> Option<Parsed> {
    let text = text.trim();
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(Parsed::Aware(time));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(time) = DateTime::parse_from_str(text, format) {
            return Some(Parsed::Aware(time));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(Parsed::Naive(time));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(Parsed::Naive)
}

fn format_naive(time: &NaiveDateTime) -> String {
    if time.nanosecond() / 1000 == 0 {
        time.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        time.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }
}

fn format_aware(time: &DateTime<FixedOffset>) -> String {
    let naive = format_naive(&time.naive_local());
    format!("{naive}{}", time.format("%:z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_isoformat() {
        assert_eq!(
            normalise_timestamp("2025-03-04T10:15:00+00:00").as_deref(),
            Some("2025-03-04T10:15:00+00:00")
        );
        assert_eq!(
            normalise_timestamp("2025-03-04T10:15:00Z").as_deref(),
            Some("2025-03-04T10:15:00+00:00")
        );
        assert_eq!(
            normalise_timestamp("2025-03-04T10:15:00.5").as_deref(),
            Some("2025-03-04T10:15:00.500000")
        );
        assert_eq!(
            normalise_timestamp("2025-03-04").as_deref(),
            Some("2025-03-04T00:00:00")
        );
        assert_eq!(normalise_timestamp("yesterday"), None);
        assert!(
            sort_millis("2025-03-04T10:00:00+02:00").unwrap()
                < sort_millis("2025-03-04T09:00:00+00:00").unwrap()
        );
    }
}
