//! When each program runs and when deliveries go out: cron schedules in Japan time (the
//! manifest's default or a staff override), catch-up after downtime, the city's send
//! window, and what staff set.
//!
//! Every decision is a pure function of an injected `now` (`ProgramSchedule::is_due`,
//! `SendWindow::contains`, `next_wake`); the scheduler loop of the web server
//! (`oshirase_server::scheduler`) only reads the clock and the database and acts on what
//! they decide.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::Connection;
use serde::Deserialize;

use crate::database::audit;
use crate::registry::active_versions;
use crate::time::{japan, second_of_day_in_japan};

/// How long the scheduler sleeps at most, so that programs published, deliveries queued
/// and schedules changed by other processes are picked up within this time.
pub const POLL_INTERVAL: Duration = Duration::from_secs(60);

/// The shortest sleep between two passes, so that something that stays due (a retry the
/// pass could not send) cannot spin the loop. Cron resolves seconds, so no fire time is
/// lost to it: a later pass catches it up.
pub const MIN_PAUSE: Duration = Duration::from_millis(500);

/// The fields of a six-field expression in order, with their allowed range.
const FIELDS: [(&str, u32, u32); 6] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// A checked cron expression as manifests and staff write it: six fields (second, minute,
/// hour, day of month, month, day of week) or the classic five without seconds, each a
/// comma-separated list of `*`, `N` or `N-M` with an optional `/STEP`, and classic
/// day-of-week numbers (0 and 7 are Sunday, 1 is Monday). Fire times are in Japan time.
#[derive(Clone, Debug)]
pub struct Cron {
    written: String,
    /// The same times for the `cron` crate, whose days of the week run 1–7 from Sunday.
    schedule: cron::Schedule,
}

impl Cron {
    /// Checks and translates `expression`; the error names the field and the part that
    /// is wrong.
    pub fn parse(expression: &str) -> Result<Cron, String> {
        let parts: Vec<&str> = expression.split_whitespace().collect();
        if !(5..=6).contains(&parts.len()) {
            return Err(format!(
                "{} fields, expected 5 or 6 (second minute hour day-of-month month day-of-week)",
                parts.len()
            ));
        }
        // A classic five-field expression has no seconds and fires at second 0 (bit 0).
        let skipped = FIELDS.len() - parts.len();
        let mut values = [1u64; 6];
        for (index, part) in parts.iter().enumerate() {
            let (name, low, high) = FIELDS[skipped + index];
            values[skipped + index] =
                field_values(part, low, high).map_err(|problem| format!("{name} field {part:?}: {problem}"))?;
        }
        let [seconds, minutes, hours, days_of_month, months, days_of_week] = values;
        // Classic cron folds 7 into 0 (Sunday); the cron crate counts 1 (Sunday) to 7.
        let sundays_folded = (days_of_week & 0x7f) | (days_of_week >> 7);
        let days_of_week_from_one = sundays_folded << 1;
        if days_of_month != range_bits(1, 31) && sundays_folded != range_bits(0, 6) {
            // Classic cron fires when either matches; the cron crate would need both.
            return Err("day of month and day of week are both restricted: restrict only one of them".into());
        }
        let translated = [
            (seconds, 0, 59),
            (minutes, 0, 59),
            (hours, 0, 23),
            (days_of_month, 1, 31),
            (months, 1, 12),
            (days_of_week_from_one, 1, 7),
        ]
        .map(|(bits, low, high)| list_of(bits, low, high))
        .join(" ");
        let schedule = cron::Schedule::from_str(&translated)
            .map_err(|error| format!("{translated:?} was refused by the cron library: {error}"))?;
        // A date such as 30 February never comes; such a program would never run.
        let reference = japan().with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single().expect("a valid date");
        if schedule.after(&reference).next().is_none() {
            return Err("no date matches this day of month and month: it never fires".into());
        }
        Ok(Cron { written: expression.to_string(), schedule })
    }

    /// The expression as it was written.
    pub fn expression(&self) -> &str {
        &self.written
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&after.with_timezone(&japan())).next().map(|at| at.with_timezone(&Utc))
    }
}

/// Checks that `expression` is a cron expression this host can schedule; the error names
/// the field and the part that is wrong. Publishing calls it on every manifest.
pub fn check(expression: &str) -> Result<(), String> {
    Cron::parse(expression).map(|_| ())
}

/// The bits `low..=high` set.
fn range_bits(low: u32, high: u32) -> u64 {
    (u64::MAX >> (63 - high)) & !((1u64 << low) - 1)
}

/// The values of one field as bits: a comma-separated list of `*`, `N` or `N-M`, each
/// optionally with `/STEP` (`N/STEP` runs from N to the highest value).
fn field_values(field: &str, low: u32, high: u32) -> Result<u64, String> {
    let mut values = 0;
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => match step.parse::<u32>() {
                Ok(step @ 1..) => (range, Some(step)),
                _ => return Err(format!("step {step:?} is not a positive number")),
            },
            None => (item, None),
        };
        let number = |text: &str| match text.parse::<u32>() {
            Ok(value) if (low..=high).contains(&value) => Ok(value),
            _ => Err(format!("{text:?} is not a number from {low} to {high}")),
        };
        let (first, last) = match range.split_once('-') {
            _ if range == "*" => (low, high),
            Some((first, last)) => {
                let (first, last) = (number(first)?, number(last)?);
                if first > last {
                    return Err(format!("range {range:?} runs backwards"));
                }
                (first, last)
            }
            None => {
                let first = number(range)?;
                (first, if step.is_some() { high } else { first })
            }
        };
        for value in (first..=last).step_by(step.unwrap_or(1) as usize) {
            values |= 1 << value;
        }
    }
    Ok(values)
}

/// The field the cron crate reads for these bits: `*` when every value is set, else a list.
fn list_of(bits: u64, low: u32, high: u32) -> String {
    if bits == range_bits(low, high) {
        return "*".into();
    }
    (low..=high).filter(|value| bits & (1 << value) != 0).map(|value| value.to_string()).collect::<Vec<_>>().join(",")
}

/// A time of day in Japan, `HH:MM` from 00:00 to 24:00, as minutes since midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct ClockTime(u32);

impl TryFrom<String> for ClockTime {
    type Error = String;

    fn try_from(text: String) -> Result<ClockTime, String> {
        text.parse()
    }
}

impl FromStr for ClockTime {
    type Err = String;

    fn from_str(text: &str) -> Result<ClockTime, String> {
        let wrong = || format!("{text:?} is not a time of day as HH:MM from 00:00 to 24:00");
        let (hours, minutes) = text.split_once(':').ok_or_else(wrong)?;
        if hours.len() != 2 || minutes.len() != 2 {
            return Err(wrong());
        }
        let (hours, minutes): (u32, u32) = (hours.parse().map_err(|_| wrong())?, minutes.parse().map_err(|_| wrong())?);
        let minute_of_day = hours * 60 + minutes;
        if minutes > 59 || minute_of_day > 24 * 60 {
            return Err(wrong());
        }
        Ok(ClockTime(minute_of_day))
    }
}

impl std::fmt::Display for ClockTime {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// The hours of the day, in Japan time, when notices may be sent: from `start` up to but
/// not including `end`, within one day (`end` may be 24:00; a window over midnight is
/// not supported, residents are not to be woken).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SendWindowFields")]
pub struct SendWindow {
    pub start: ClockTime,
    pub end: ClockTime,
}

/// `[send_window]` as written, checked into a `SendWindow`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendWindowFields {
    start: ClockTime,
    end: ClockTime,
}

impl TryFrom<SendWindowFields> for SendWindow {
    type Error = String;

    fn try_from(fields: SendWindowFields) -> Result<SendWindow, String> {
        SendWindow::new(fields.start, fields.end)
    }
}

impl Default for SendWindow {
    /// 09:00 to 20:00, the hours a city calls residents.
    fn default() -> SendWindow {
        SendWindow { start: ClockTime(9 * 60), end: ClockTime(20 * 60) }
    }
}

impl SendWindow {
    pub fn new(start: ClockTime, end: ClockTime) -> Result<SendWindow, String> {
        if start >= end {
            return Err(format!("the send window's start {start} is not before its end {end}"));
        }
        Ok(SendWindow { start, end })
    }

    /// Whether notices may be sent at `now`.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        let second = second_of_day_in_japan(now);
        (self.start.0 as i64 * 60..self.end.0 as i64 * 60).contains(&second)
    }

    /// When the window next opens: `now` when it is open.
    pub fn next_opening(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        if self.contains(now) {
            return now;
        }
        let midnight = now - chrono::Duration::seconds(second_of_day_in_japan(now));
        let opening = midnight + chrono::Duration::minutes(self.start.0 as i64);
        if opening > now { opening } else { opening + chrono::Duration::days(1) }
    }

    /// When the window that is open at `now` closes.
    pub fn closing(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::seconds(second_of_day_in_japan(now)) + chrono::Duration::minutes(self.end.0 as i64)
    }
}

/// Where a program's effective schedule comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Manifest,
    Override,
}

impl std::fmt::Display for Source {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Source::Manifest => "manifest",
            Source::Override => "override",
        })
    }
}

/// One active program as the scheduler sees it.
#[derive(Clone, Debug)]
pub struct ProgramSchedule {
    pub program: String,
    /// The effective expression, and whether it could be read (a manifest published
    /// before a rule of the checker existed might not be).
    pub cron: Result<Cron, String>,
    pub expression: String,
    pub source: Source,
    /// Every fire time up to this instant has been acted on: when the program last ran, or
    /// when the scheduler first saw it. `None` for a program never seen.
    pub fired_through: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
}

impl ProgramSchedule {
    /// When the program runs next: the first fire time after the last one acted on (in the
    /// past when fire times were missed), or after `now` for a program never seen.
    pub fn next_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.as_ref().ok()?.next_after(self.fired_through.unwrap_or(now))
    }

    /// Whether the program must run at `now`: one or more fire times since the last one
    /// acted on have come, and one run stands for all of them. A program never seen
    /// before is not due: it fires at its next time rather than at once on publish or on
    /// the scheduler's first start.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.fired_through.is_some() && self.next_run(now).is_some_and(|at| at <= now)
    }
}

/// When the scheduler must look again after a pass at `now`: the earliest of a program's
/// next run, the send window's opening when it is closed, the next retry falling due when
/// it is open, and the poll interval; never sooner than a short pause.
pub fn next_wake(
    now: DateTime<Utc>,
    programs: &[ProgramSchedule],
    window: &SendWindow,
    next_retry: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let sending = if window.contains(now) { next_retry } else { Some(window.next_opening(now)) };
    let wake = programs
        .iter()
        .filter_map(|program| program.next_run(now))
        .chain(sending)
        .fold(now + POLL_INTERVAL, DateTime::min);
    wake.max(now + MIN_PAUSE)
}

/// Milliseconds since the epoch as an instant; the unit of the schedule columns.
fn from_millis(milliseconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(milliseconds)
}

/// Every active program with its effective schedule and when it last fired, by code.
pub fn load(connection: &Connection) -> Result<Vec<ProgramSchedule>> {
    let mut statement =
        connection.prepare_cached("SELECT program, expression, fired_through, last_run_at FROM program_schedules")?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            (row.get::<_, Option<String>>(1)?, row.get::<_, Option<i64>>(2)?, row.get::<_, Option<i64>>(3)?),
        ))
    })?;
    let mut stored: HashMap<String, _> = rows.collect::<Result<_, _>>()?;
    Ok(active_versions(connection)?
        .into_iter()
        .map(|version| {
            let (expression, fired_through, last_run_at) = stored.remove(&version.program).unwrap_or_default();
            let (expression, source) = match expression {
                Some(expression) => (expression, Source::Override),
                None => (version.manifest.schedule, Source::Manifest),
            };
            ProgramSchedule {
                program: version.program,
                cron: Cron::parse(&expression),
                expression,
                source,
                fired_through: fired_through.and_then(from_millis),
                last_run_at: last_run_at.and_then(from_millis),
            }
        })
        .collect())
}

/// Makes `expression` the schedule of `program` instead of its manifest's, from its next
/// fire time after the last run. An invalid expression or an unknown program changes
/// nothing; the change is audited.
pub fn set(connection: &mut Connection, program: &str, expression: &str, actor: &str) -> Result<()> {
    Cron::parse(expression).map_err(|problem| {
        anyhow::anyhow!("schedule {expression:?} for {program} refused, nothing changed: {problem}")
    })?;
    let transaction = connection.transaction()?;
    known_program(&transaction, program)?;
    transaction.execute(
        "INSERT INTO program_schedules (program, expression, set_by, set_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (program) DO UPDATE
         SET expression = excluded.expression, set_by = excluded.set_by, set_at = excluded.set_at",
        (program, expression, actor, crate::time::now_text()),
    )?;
    audit(&transaction, actor, "schedule-set", program, expression)?;
    transaction.commit()?;
    Ok(())
}

/// Drops the override of `program`, so that its manifest's schedule applies again;
/// returns whether there was one. Audited when something changed.
pub fn reset(connection: &mut Connection, program: &str, actor: &str) -> Result<bool> {
    let transaction = connection.transaction()?;
    known_program(&transaction, program)?;
    let changed = transaction.execute(
        "UPDATE program_schedules SET expression = NULL, set_by = ?2, set_at = ?3
         WHERE program = ?1 AND expression IS NOT NULL",
        (program, actor, crate::time::now_text()),
    )? > 0;
    if changed {
        audit(&transaction, actor, "schedule-reset", program, "")?;
    }
    transaction.commit()?;
    Ok(changed)
}

fn known_program(connection: &Connection, program: &str) -> Result<()> {
    let known: Vec<String> = connection
        .prepare("SELECT code FROM programs ORDER BY code")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if !known.iter().any(|code| code == program) {
        anyhow::bail!("no program {program:?} (known: {})", known.join(", "));
    }
    Ok(())
}

/// Records that every fire time of `program` up to `at` has been acted on; when `ran`,
/// also that it ran then.
pub fn record_fired(connection: &Connection, program: &str, at: DateTime<Utc>, ran: bool) -> Result<()> {
    let milliseconds = at.timestamp_millis();
    connection.execute(
        "INSERT INTO program_schedules (program, fired_through, last_run_at) VALUES (?1, ?2, CASE WHEN ?3 THEN ?2 END)
         ON CONFLICT (program) DO UPDATE
         SET fired_through = excluded.fired_through, last_run_at = coalesce(excluded.last_run_at, last_run_at)",
        (program, milliseconds, ran),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{day_in_japan, format_japan};
    use oshirase_sdk::Day;

    /// An instant written in Japan time, `YYYY-MM-DD HH:MM:SS`.
    fn jst(text: &str) -> DateTime<Utc> {
        japan()
            .from_local_datetime(&chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap())
            .unwrap()
            .with_timezone(&Utc)
    }

    /// An instant in Japan time as the cases write it.
    fn written(at: DateTime<Utc>) -> String {
        format_japan(at).trim_end_matches(" JST").to_string()
    }

    /// A program on the manifest's 9:00 every day that fired through `fired_through`.
    fn daily_at_nine(fired_through: Option<DateTime<Utc>>) -> ProgramSchedule {
        ProgramSchedule {
            program: "infant-checkup".into(),
            cron: Cron::parse("0 0 9 * * *"),
            expression: "0 0 9 * * *".into(),
            source: Source::Manifest,
            fired_through,
            last_run_at: None,
        }
    }

    /// One decision to check; instants are written in Japan time.
    enum Decision {
        /// Checking an expression: "ok" or the error.
        Checked(&'static str),
        /// The next fire time of an expression after an instant.
        FiresAfter(&'static str, &'static str),
        /// Whether the 9:00 daily program that fired through the first instant (never seen
        /// when `None`) is due at the second: "due" or "not due".
        Due(Option<&'static str>, &'static str),
        /// Whether a window (start, end) is open at an instant, and its next opening:
        /// "open" or "closed until …".
        Window((&'static str, &'static str), &'static str),
        /// When the scheduler wakes after a pass at an instant, with a window and the next
        /// retry, the 9:00 daily program having run at 9:00 on 2026-11-22.
        Wake(&'static str, (&'static str, &'static str), Option<&'static str>),
    }
    use Decision::{Checked, Due, FiresAfter, Wake, Window};

    fn window(start: &str, end: &str) -> SendWindow {
        SendWindow::new(start.parse().unwrap(), end.parse().unwrap()).unwrap()
    }

    /// What the code decides, written as the cases expect it.
    fn decide(decision: &Decision) -> String {
        match decision {
            Checked(expression) => super::check(expression).err().unwrap_or_else(|| "ok".into()),
            FiresAfter(expression, after) => {
                Cron::parse(expression).unwrap().next_after(jst(after)).map_or_else(|| "never".into(), written)
            }
            Due(fired_through, now) => {
                if daily_at_nine(fired_through.map(jst)).is_due(jst(now)) { "due" } else { "not due" }.into()
            }
            Window((start, end), now) => {
                let window = window(start, end);
                if window.contains(jst(now)) {
                    "open".into()
                } else {
                    format!("closed until {}", written(window.next_opening(jst(now))))
                }
            }
            Wake(now, (start, end), retry) => {
                let program = daily_at_nine(Some(jst("2026-11-22 09:00:00")));
                written(next_wake(jst(now), std::slice::from_ref(&program), &window(start, end), retry.map(jst)))
            }
        }
    }

    /// Each case: (what, the decision, the expected answer).
    fn check(cases: &[(&str, Decision, &str)]) {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(what, decision, expected)| {
                let actual = decide(decision);
                if actual == *expected { None } else { Some(format!("{what}: expected {expected:?}, got {actual:?}")) }
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn schedules_are_checked_field_by_field() {
        check(&[
            ("six fields", Checked("0 0 9 * * *"), "ok"),
            ("classic five", Checked("30 9 * * 1-5"), "ok"),
            ("steps, ranges and lists", Checked("0 */15 8-18 1,15 4 *"), "ok"),
            ("classic five, every day", Checked("0 0 9 * *"), "ok"),
            ("7 is Sunday", Checked("0 0 9 * * 7"), "ok"),
            (
                "words",
                Checked("every day"),
                "2 fields, expected 5 or 6 (second minute hour day-of-month month day-of-week)",
            ),
            ("hour 25", Checked("0 0 25 * * *"), "hour field \"25\": \"25\" is not a number from 0 to 23"),
            ("day 0", Checked("0 0 9 0 * *"), "day of month field \"0\": \"0\" is not a number from 1 to 31"),
            ("a range backwards", Checked("0 0 9 * 12-1 *"), "month field \"12-1\": range \"12-1\" runs backwards"),
            ("step 0", Checked("0 */0 9 * * *"), "minute field \"*/0\": step \"0\" is not a positive number"),
            ("names", Checked("0 0 9 * * MON"), "day of week field \"MON\": \"MON\" is not a number from 0 to 7"),
            (
                "both days",
                Checked("0 0 9 1 * 1"),
                "day of month and day of week are both restricted: restrict only one of them",
            ),
            ("30 February", Checked("0 0 9 30 2 *"), "no date matches this day of month and month: it never fires"),
        ]);
    }

    #[test]
    fn fire_times_are_in_japan_time_with_classic_days_of_the_week() {
        // 2026-11-22 is a Sunday.
        check(&[
            ("before 9:00", FiresAfter("0 0 9 * * *", "2026-11-22 08:59:59"), "2026-11-22 09:00:00"),
            ("at 9:00: the next day", FiresAfter("0 0 9 * * *", "2026-11-22 09:00:00"), "2026-11-23 09:00:00"),
            ("Mondays, from a Sunday", FiresAfter("0 9 * * 1", "2026-11-22 12:00:00"), "2026-11-23 09:00:00"),
            ("Mondays, from a Monday's run", FiresAfter("0 9 * * 1", "2026-11-23 09:00:00"), "2026-11-30 09:00:00"),
            ("Sundays as 0", FiresAfter("0 0 9 * * 0", "2026-11-23 00:00:00"), "2026-11-29 09:00:00"),
            ("Sundays as 7", FiresAfter("0 0 9 * * 7", "2026-11-23 00:00:00"), "2026-11-29 09:00:00"),
            ("Friday to Sunday", FiresAfter("0 0 9 * * 5-7", "2026-11-23 00:00:00"), "2026-11-27 09:00:00"),
            (
                "weekdays, from a Friday evening",
                FiresAfter("30 9 * * 1-5", "2026-11-27 10:00:00"),
                "2026-11-30 09:30:00",
            ),
            ("the start of the fiscal year", FiresAfter("0 0 0 1 4 *", "2026-11-22 00:00:00"), "2027-04-01 00:00:00"),
            ("every second, over midnight", FiresAfter("* * * * * *", "2026-11-22 23:59:59"), "2026-11-23 00:00:00"),
        ]);
        let monday = Cron::parse("0 9 * * 1").unwrap().next_after(jst("2026-11-24 00:00:00")).unwrap();
        assert_eq!(monday.with_timezone(&japan()).format("%A").to_string(), "Monday");
    }

    #[test]
    fn a_missed_run_is_caught_up_once_and_a_new_program_waits_for_its_time() {
        check(&[
            ("ran at 9:00, now 12:00", Due(Some("2026-11-22 09:00:00"), "2026-11-22 12:00:00"), "not due"),
            ("ran yesterday, now 9:00", Due(Some("2026-11-21 09:00:00"), "2026-11-22 09:00:00"), "due"),
            ("ran yesterday, now 8:59", Due(Some("2026-11-21 09:00:00"), "2026-11-22 08:59:59"), "not due"),
            ("down for three days", Due(Some("2026-11-19 09:00:00"), "2026-11-22 07:00:00"), "due"),
            ("caught up at 7:00, a second later", Due(Some("2026-11-22 07:00:00"), "2026-11-22 07:00:01"), "not due"),
            ("caught up at 7:00, then 9:00", Due(Some("2026-11-22 07:00:00"), "2026-11-22 09:00:00"), "due"),
            ("never seen, at 9:00", Due(None, "2026-11-22 09:00:00"), "not due"),
            ("first seen at 8:00, now 9:00", Due(Some("2026-11-22 08:00:00"), "2026-11-22 09:00:00"), "due"),
        ]);
    }

    #[test]
    fn the_send_window_opens_and_closes_in_japan_time() {
        check(&[
            ("before it opens", Window(("09:00", "20:00"), "2026-11-22 08:59:59"), "closed until 2026-11-22 09:00:00"),
            ("as it opens", Window(("09:00", "20:00"), "2026-11-22 09:00:00"), "open"),
            ("the last second", Window(("09:00", "20:00"), "2026-11-22 19:59:59"), "open"),
            ("as it closes", Window(("09:00", "20:00"), "2026-11-22 20:00:00"), "closed until 2026-11-23 09:00:00"),
            ("at midnight", Window(("09:00", "20:00"), "2026-11-23 00:00:00"), "closed until 2026-11-23 09:00:00"),
            ("all day", Window(("00:00", "24:00"), "2026-11-22 23:59:59"), "open"),
        ]);
        assert_eq!(SendWindow::default().closing(jst("2026-11-22 10:00:00")), jst("2026-11-22 20:00:00"));
        // 15:00 UTC is midnight in Japan: the date used for expiry is Japan's.
        assert_eq!(day_in_japan(jst("2026-11-23 00:00:00")), Day::parse_iso("2026-11-23").unwrap());
        assert_eq!(day_in_japan(jst("2026-11-22 23:59:59")), Day::parse_iso("2026-11-22").unwrap());
        assert_eq!(
            SendWindow::new("20:00".parse().unwrap(), "09:00".parse().unwrap()),
            Err("the send window's start 20:00 is not before its end 09:00".into())
        );
        for wrong in ["9:00", "24:01", "12:60", "noon", "12-00"] {
            assert!(wrong.parse::<ClockTime>().is_err(), "{wrong}");
        }
    }

    #[test]
    fn the_scheduler_wakes_for_the_earliest_thing_it_must_do() {
        check(&[
            (
                "nothing soon: the poll interval",
                Wake("2026-11-22 12:00:00", ("09:00", "20:00"), None),
                "2026-11-22 12:01:00",
            ),
            (
                "a retry due within the window",
                Wake("2026-11-22 12:00:00", ("09:00", "20:00"), Some("2026-11-22 12:00:10")),
                "2026-11-22 12:00:10",
            ),
            (
                "a retry while the window is closed waits",
                Wake("2026-11-22 20:30:00", ("09:00", "20:00"), Some("2026-11-22 20:30:10")),
                "2026-11-22 20:31:00",
            ),
            ("the window opens first", Wake("2026-11-23 08:59:30", ("09:00", "20:00"), None), "2026-11-23 09:00:00"),
            ("the program's fire time", Wake("2026-11-23 08:59:30", ("10:00", "20:00"), None), "2026-11-23 09:00:00"),
            (
                "a retry already due: a short pause",
                Wake("2026-11-22 12:00:00", ("09:00", "20:00"), Some("2026-11-22 11:00:00")),
                "2026-11-22 12:00:00",
            ),
        ]);
    }

    #[test]
    fn staff_override_a_schedule_and_reset_it_and_a_bad_one_changes_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let mut connection = crate::database::open(&directory.path().join("oshirase.db")).unwrap();
        let manifest = crate::registry::Manifest {
            code: "vaccine-mr".into(),
            name: "麻しん風しん".into(),
            division: "健康支援課".into(),
            contact: "".into(),
            category: "Vaccination".into(),
            schedule: "0 0 9 * * *".into(),
            source_url: "".into(),
            fields: Vec::new(),
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: Vec::new(),
        };
        connection
            .execute(
                "INSERT INTO plugin_versions (id, program, sha256, wasm, manifest, published_by, published_at)
                 VALUES (1, 'vaccine-mr', '', x'', ?1, 'test', '')",
                [serde_json::to_string(&manifest).unwrap()],
            )
            .unwrap();
        connection.execute("INSERT INTO programs (code, active_version) VALUES ('vaccine-mr', 1)", []).unwrap();
        let effective = |connection: &Connection| {
            load(connection)
                .unwrap()
                .into_iter()
                .map(|program| (program.expression, program.source))
                .collect::<Vec<_>>()
        };
        let audited = |connection: &Connection| -> i64 {
            connection
                .query_row("SELECT count(*) FROM audit_log WHERE action LIKE 'schedule-%'", [], |row| row.get(0))
                .unwrap()
        };

        let refused = set(&mut connection, "vaccine-mr", "0 61 9 * * *", "staff").unwrap_err();
        assert_eq!(
            format!("{refused:#}"),
            "schedule \"0 61 9 * * *\" for vaccine-mr refused, nothing changed: minute field \"61\": \"61\" is not a \
             number from 0 to 59"
        );
        assert!(set(&mut connection, "vaccine-xx", "0 9 * * 1", "staff").is_err());
        assert_eq!(
            (effective(&connection), audited(&connection)),
            (vec![("0 0 9 * * *".to_string(), Source::Manifest)], 0)
        );

        set(&mut connection, "vaccine-mr", "0 9 * * 1", "staff").unwrap();
        assert_eq!(
            (effective(&connection), audited(&connection)),
            (vec![("0 9 * * 1".to_string(), Source::Override)], 1)
        );
        assert!(reset(&mut connection, "vaccine-mr", "staff").unwrap());
        assert!(!reset(&mut connection, "vaccine-mr", "staff").unwrap());
        assert_eq!(
            (effective(&connection), audited(&connection)),
            (vec![("0 0 9 * * *".to_string(), Source::Manifest)], 2)
        );
    }
}
