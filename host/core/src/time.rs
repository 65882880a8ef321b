//! Time as the product reads and writes it, in one place: Japan time (UTC+9, no daylight
//! saving) for days, schedules and what staff read, and UTC text with milliseconds for
//! every timestamp column.

use chrono::{DateTime, FixedOffset, Utc};
use oshirase_sdk::Day;

/// Japan's offset from UTC in seconds: nine hours, with no daylight saving time.
const OFFSET_SECONDS: i64 = 9 * 3600;

/// SQLite's date modifier from a UTC timestamp column to Japan time, for the reports that
/// count by Japan's days: `date(created_at, {SQL_TO_JAPAN})`.
pub const SQL_TO_JAPAN: &str = "'+9 hours'";

/// Japan's offset from UTC.
pub fn japan() -> FixedOffset {
    FixedOffset::east_opt(OFFSET_SECONDS as i32).expect("nine hours is a valid offset")
}

/// The date in Japan at the instant `at`.
pub fn day_in_japan(at: DateTime<Utc>) -> Day {
    Day((at.timestamp() + OFFSET_SECONDS).div_euclid(86_400) as i32)
}

/// Seconds since midnight in Japan at the instant `at`; sub-second parts are dropped.
pub fn second_of_day_in_japan(at: DateTime<Utc>) -> i64 {
    (at.timestamp() + OFFSET_SECONDS).rem_euclid(86_400)
}

/// `at` written in Japan time, as staff read it: `2026-11-22 09:00:00 JST`.
pub fn format_japan(at: DateTime<Utc>) -> String {
    at.with_timezone(&japan()).format("%Y-%m-%d %H:%M:%S JST").to_string()
}

/// Today's date in Japan (UTC+9).
pub fn today_in_japan() -> Day {
    day_in_japan(chrono::Utc::now())
}

/// The current time as RFC 3339 text in UTC with milliseconds, the form every timestamp
/// column uses (SQLite's date functions read it, fractions included).
pub fn now_text() -> String {
    time_text(std::time::SystemTime::now())
}

/// The time `days` from now (ago when negative) as `now_text` writes it, so that the two
/// compare as text.
pub fn text_in_days(days: i64) -> String {
    let now = std::time::SystemTime::now();
    let shift = std::time::Duration::from_secs(days.unsigned_abs() * 86_400);
    time_text(if days >= 0 { now + shift } else { now - shift })
}

/// Midnight at the start of `day` in Japan as `now_text` writes it, so that a timestamp
/// column compares against a Japan day's bounds as text.
pub fn japan_midnight_text(day: Day) -> String {
    let seconds = i64::from(day.0) * 86_400 - OFFSET_SECONDS;
    time_text(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64))
}

fn time_text(time: std::time::SystemTime) -> String {
    let since_epoch = time.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs() as i64;
    let day = oshirase_sdk::Day(seconds.div_euclid(86_400) as i32);
    let second_of_day = seconds.rem_euclid(86_400);
    let millisecond = since_epoch.subsec_millis();
    format!(
        "{day}T{:02}:{:02}:{:02}.{millisecond:03}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}
