//! The sprint calendar (`/delivery/sprint-infos`): sprints listed in the configuration, or
//! generated from a name pattern every two weeks (the original's two forms), each with its end
//! date and the dates the metadata's offsets derive from it.
//!
//! A generated calendar depends on today (it reaches `future_threshold_days` ahead), so it is
//! computed per request rather than once at start-up: a pod running for months keeps answering
//! with current sprints. It is a few dozen dates; computing them costs microseconds.

use chrono::format::{Item, StrftimeItems};
use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

/// The name of the date every sprint has; the default due date of findings.
pub const END_DATE: &str = "end_date";

/// `sprints:` in the file: a list (`sprints`) or a generated calendar (`sprint_name_pattern`),
/// in the original's field names.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SprintsConfig {
    /// Dates derived from each sprint's end date.
    #[serde(default)]
    pub meta: SprintMetadata,
    /// The sprints, as listed (`{name, end_date}`); not together with `sprint_name_pattern`.
    #[serde(default)]
    pub sprints: Option<Vec<ListedSprint>>,
    /// Generates the calendar: strftime codes, plus `%S` (the sprint's number in the year, two
    /// digits) and `%C` (its cycle, `a`, `b`, ...).
    #[serde(default)]
    pub sprint_name_pattern: Option<String>,
    /// The end date the generated sprints are counted from [default: 2025-01-08, the original's].
    #[serde(default, deserialize_with = "optional_date")]
    pub start_date: Option<NaiveDate>,
    /// How far ahead sprints are generated [default: 365 days].
    #[serde(default)]
    pub future_threshold_days: Option<i64>,
    /// [default: 14]
    #[serde(default)]
    pub days_per_sprint: Option<i64>,
    /// Sub-cycles per sprint number (0 or 1: none) [default: 2].
    #[serde(default)]
    pub cycles: Option<i64>,
    /// Names a sprint after the end date `offset` sprints away [default: -2].
    #[serde(default)]
    pub offset: Option<i64>,
}

/// The original's `SprintMetadata`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SprintMetadata {
    #[serde(default)]
    pub offsets: Vec<SprintOffset>,
    /// Which date findings are due on [default: `end_date`].
    #[serde(default)]
    pub finding_due_date_offset_name: Option<String>,
}

/// A date `offset_days` from a sprint's end date.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SprintOffset {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub offset_days: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListedSprint {
    pub name: String,
    #[serde(deserialize_with = "date")]
    pub end_date: NaiveDate,
}

/// One sprint, in the original's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sprint {
    pub name: String,
    pub dates: Vec<SprintDate>,
    pub finding_due_date_offset_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SprintDate {
    pub name: String,
    pub display_name: Option<String>,
    #[serde(serialize_with = "iso_date")]
    pub value: NaiveDate,
}

/// An ISO 8601 date (`2025-01-08`), as the original reads and writes them.
fn date<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.trim()
        .parse()
        .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a date (YYYY-MM-DD)")))
}

fn optional_date<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<NaiveDate>, D::Error> {
    date(deserializer).map(Some)
}

fn iso_date<S: serde::Serializer>(value: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

impl Sprint {
    /// The date findings are due (checked to exist when the calendar is made).
    pub fn due_date(&self) -> Option<NaiveDate> {
        self.dates
            .iter()
            .find(|date| date.name == self.finding_due_date_offset_name)
            .map(|date| date.value)
    }
}

/// Where the sprints come from.
#[derive(Debug, Clone)]
enum Source {
    Listed(Vec<ListedSprint>),
    Generated(Generator),
}

#[derive(Debug, Clone)]
struct Generator {
    pattern: String,
    start_date: NaiveDate,
    future_threshold_days: i64,
    days_per_sprint: i64,
    cycles: i64,
    offset: i64,
}

/// A validated sprint configuration.
#[derive(Debug, Clone)]
pub struct SprintCalendar {
    source: Source,
    offsets: Vec<SprintOffset>,
    due_date_name: String,
}

/// Generated sprints at most (a guard against a configuration that would generate millions).
const MAX_GENERATED_SPRINTS: i64 = 10_000;

impl SprintCalendar {
    /// Checks the configuration as the original's model does: date names unique, the due date
    /// among them, the pattern valid, the numbers in range.
    pub fn new(config: SprintsConfig) -> Result<SprintCalendar, String> {
        let due_date_name = config
            .meta
            .finding_due_date_offset_name
            .clone()
            .unwrap_or_else(|| END_DATE.to_string());
        let mut names = vec![END_DATE.to_string()];
        for offset in &config.meta.offsets {
            if names.contains(&offset.name) {
                return Err(format!(
                    "sprints.meta.offsets: the date name {:?} is used twice",
                    offset.name
                ));
            }
            if offset.offset_days.abs() > 3_650 {
                return Err(format!(
                    "sprints.meta.offsets: {:?} is more than ten years from the end date",
                    offset.name
                ));
            }
            names.push(offset.name.clone());
        }
        if !names.contains(&due_date_name) {
            return Err(format!(
                "sprints.meta.finding_due_date_offset_name: {due_date_name:?} is not a date of the sprints ({})",
                names.join(", ")
            ));
        }
        let source =
            match (config.sprints, config.sprint_name_pattern) {
                (Some(_), Some(_)) => return Err(
                    "sprints: give either `sprints` (a list) or `sprint_name_pattern`, not both"
                        .into(),
                ),
                (Some(listed), None) => Source::Listed(listed),
                (None, Some(pattern)) => {
                    if StrftimeItems::new(&pattern.replace("%S", "00").replace("%C", "a"))
                        .any(|item| matches!(item, Item::Error))
                    {
                        return Err(format!(
                        "sprints.sprint_name_pattern: {pattern:?} is not a valid strftime pattern"
                    ));
                    }
                    let generator = Generator {
                        pattern,
                        start_date: config
                            .start_date
                            .unwrap_or(NaiveDate::from_ymd_opt(2025, 1, 8).unwrap_or_default()),
                        future_threshold_days: config.future_threshold_days.unwrap_or(365),
                        days_per_sprint: config.days_per_sprint.unwrap_or(14),
                        cycles: config.cycles.unwrap_or(2),
                        offset: config.offset.unwrap_or(-2),
                    };
                    if !(1..=366).contains(&generator.days_per_sprint) {
                        return Err("sprints.days_per_sprint must be 1 to 366".into());
                    }
                    if !(0..=3_650).contains(&generator.future_threshold_days) {
                        return Err("sprints.future_threshold_days must be 0 to 3650".into());
                    }
                    if !(0..=26).contains(&generator.cycles) {
                        return Err("sprints.cycles must be 0 to 26".into());
                    }
                    if generator.offset.abs() > 1_000 {
                        return Err("sprints.offset must be -1000 to 1000".into());
                    }
                    Source::Generated(generator)
                }
                (None, None) => {
                    return Err("sprints: give `sprints` (a list) or `sprint_name_pattern`".into())
                }
            };
        Ok(SprintCalendar {
            source,
            offsets: config.meta.offsets,
            due_date_name,
        })
    }

    /// The sprints as the original lists them: a configured list in its order, a generated
    /// calendar newest first.
    pub fn sprints(&self, today: NaiveDate) -> Vec<Sprint> {
        let listed: Vec<(String, NaiveDate)> = match &self.source {
            Source::Listed(sprints) => sprints
                .iter()
                .map(|sprint| (sprint.name.clone(), sprint.end_date))
                .collect(),
            Source::Generated(generator) => {
                let mut generated = generator.generate(today);
                generated.reverse();
                generated
            }
        };
        listed
            .into_iter()
            .map(|(name, end_date)| self.sprint(name, end_date))
            .collect()
    }

    fn sprint(&self, name: String, end_date: NaiveDate) -> Sprint {
        let mut dates = vec![SprintDate {
            name: END_DATE.into(),
            display_name: Some("End Date".into()),
            value: end_date,
        }];
        dates.extend(self.offsets.iter().map(|offset| {
            SprintDate {
                name: offset.name.clone(),
                display_name: offset.display_name.clone(),
                value: end_date
                    .checked_add_signed(Duration::days(offset.offset_days))
                    .unwrap_or(end_date),
            }
        }));
        Sprint {
            name,
            dates,
            finding_due_date_offset_name: self.due_date_name.clone(),
        }
    }

    /// The original's "current" sprint: the first (by due date) due on or after `reference`,
    /// moved by `offset` sprints and clamped to the calendar; the last when all are past.
    pub fn current(&self, today: NaiveDate, reference: NaiveDate, offset: i64) -> Option<Sprint> {
        let mut sprints = self.sprints(today);
        if sprints.is_empty() {
            return None;
        }
        // stable, as Python's sort
        sprints.sort_by_key(Sprint::due_date);
        let last = sprints.len() - 1;
        let index = match sprints
            .iter()
            .position(|sprint| sprint.due_date().is_some_and(|due| due >= reference))
        {
            Some(first) => (first as i64).saturating_add(offset).clamp(0, last as i64) as usize,
            None => last,
        };
        sprints.into_iter().nth(index)
    }
}

impl Generator {
    /// `(name, end date)` oldest first, as the original's `iter_sprints`.
    fn generate(&self, today: NaiveDate) -> Vec<(String, NaiveDate)> {
        let days = |date: NaiveDate, days: i64| date.checked_add_signed(Duration::days(days));
        let (Some(end), Some(start)) = (
            days(today, self.future_threshold_days),
            days(self.start_date, self.days_per_sprint * self.offset),
        ) else {
            return Vec::new();
        };
        // every sprint end from `start` up to and including the first one at or after `end`
        let mut dates = Vec::new();
        let mut current = start;
        let mut step = 0;
        while current < end && step < MAX_GENERATED_SPRINTS {
            let Some(next) = days(start, self.days_per_sprint * step) else {
                break;
            };
            current = next;
            step += 1;
            dates.push(current);
        }
        let cycles = self.cycles.max(1);
        let mut last_number = None;
        let mut cycle = 0;
        let mut sprints = Vec::with_capacity(dates.len());
        for (index, sprint_date) in dates.iter().enumerate() {
            let effective = index as i64 + self.offset;
            if effective < 0 || effective >= dates.len() as i64 {
                continue;
            }
            let named_after = dates[effective as usize];
            let period = cycles * self.days_per_sprint;
            let number = (i64::from(named_after.ordinal()) + period - 1) / period;
            if last_number == Some(number) {
                cycle += 1;
            } else {
                cycle = 0;
                last_number = Some(number);
            }
            sprints.push((self.name(named_after, number, cycle), *sprint_date));
        }
        sprints
    }

    fn name(&self, date: NaiveDate, number: i64, cycle: usize) -> String {
        const CYCLES: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
        let pattern = self
            .pattern
            .replace("%S", &format!("{number:02}"))
            .replace("%C", &char::from(CYCLES[cycle % 26]).to_string());
        let mut name = String::new();
        // the pattern was checked at start-up; writing reports (never panics on) what is left
        use std::fmt::Write;
        if write!(
            name,
            "{}",
            date.format_with_items(StrftimeItems::new(&pattern))
        )
        .is_err()
        {
            return date.to_string();
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn generated(pattern: &str) -> SprintCalendar {
        SprintCalendar::new(SprintsConfig {
            sprint_name_pattern: Some(pattern.into()),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn generated_sprints_follow_the_originals_rules() {
        // the original's defaults: from 2025-01-08, two weeks, two cycles, named two sprints back
        let calendar = generated("%Y-%S%C");
        let sprints = calendar.sprints(date("2025-02-01"));
        let oldest = sprints.last().unwrap();
        assert_eq!(oldest.due_date(), Some(date("2025-01-08")));
        // named after 2024-12-11 (day 346 -> ceil(346 / 28) = 13), the first of its number
        assert_eq!(oldest.name, "2024-13a");
        let second = &sprints[sprints.len() - 2];
        assert_eq!(second.due_date(), Some(date("2025-01-22")));
        // named after 2024-12-25 (day 360 -> 13 again): the second cycle
        assert_eq!(second.name, "2024-13b");
        // newest first, reaching a year ahead (the first end date at or after it included)
        assert!(sprints[0].due_date().unwrap() >= date("2026-02-01"));
        assert!(sprints[1].due_date().unwrap() < date("2026-02-01"));
    }

    #[test]
    fn the_current_sprint_is_the_first_due_on_or_after_the_reference() {
        let calendar = generated("%S%C");
        let today = date("2025-03-01");
        let current = calendar.current(today, date("2025-01-22"), 0).unwrap();
        assert_eq!(current.due_date(), Some(date("2025-01-22")));
        let next = calendar.current(today, date("2025-01-23"), 0).unwrap();
        assert_eq!(next.due_date(), Some(date("2025-02-05")));
        let previous = calendar.current(today, date("2025-01-23"), -1).unwrap();
        assert_eq!(previous.due_date(), Some(date("2025-01-22")));
        // clamped to the first and last
        let first = calendar.current(today, date("2000-01-01"), -5).unwrap();
        assert_eq!(first.due_date(), Some(date("2025-01-08")));
        let last = calendar.current(today, date("2099-01-01"), 0).unwrap();
        assert_eq!(last.due_date(), calendar.sprints(today)[0].due_date());
    }

    #[test]
    fn listed_sprints_carry_their_offsets() {
        let calendar = SprintCalendar::new(SprintsConfig {
            meta: SprintMetadata {
                offsets: vec![SprintOffset {
                    name: "release_decision".into(),
                    display_name: Some("Release Decision".into()),
                    offset_days: -3,
                }],
                finding_due_date_offset_name: Some("release_decision".into()),
            },
            sprints: Some(vec![ListedSprint {
                name: "2501".into(),
                end_date: date("2025-01-10"),
            }]),
            ..Default::default()
        })
        .unwrap();
        let sprints = calendar.sprints(date("2025-01-01"));
        assert_eq!(sprints[0].due_date(), Some(date("2025-01-07")));
        assert_eq!(
            serde_json::to_value(&sprints[0]).unwrap(),
            serde_json::json!({
                "name": "2501",
                "dates": [
                    {"name": "end_date", "display_name": "End Date", "value": "2025-01-10"},
                    {"name": "release_decision", "display_name": "Release Decision", "value": "2025-01-07"},
                ],
                "finding_due_date_offset_name": "release_decision",
            })
        );
    }

    #[test]
    fn bad_configurations_are_refused() {
        let due_elsewhere = SprintsConfig {
            meta: SprintMetadata {
                offsets: vec![],
                finding_due_date_offset_name: Some("nowhere".into()),
            },
            sprints: Some(vec![]),
            ..Default::default()
        };
        assert!(SprintCalendar::new(due_elsewhere).is_err());
        assert!(SprintCalendar::new(SprintsConfig::default()).is_err());
        let bad_pattern = SprintsConfig {
            sprint_name_pattern: Some("%Q".into()),
            ..Default::default()
        };
        assert!(SprintCalendar::new(bad_pattern).is_err());
        let zero_days = SprintsConfig {
            sprint_name_pattern: Some("%S".into()),
            days_per_sprint: Some(0),
            ..Default::default()
        };
        assert!(SprintCalendar::new(zero_days).is_err());
    }
}
