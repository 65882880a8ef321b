//! Did the notice work: of the residents who became eligible in a period, the share who then
//! took it up, told against not told, measured from two municipal exports.
//!
//! Who was eligible is asked again of the programs, over the earlier export: notices are
//! stored only for residents someone can tell, and nothing is kept about the others, so
//! their eligibility is derived as each run derives it. Who took it up is read from the
//! later export: a record of the program's code (the code its doses, visits or receipts are
//! recorded under, `oshirase_sdk::schedule`) dated from the day the window opened to N days
//! after the notice, that the earlier export did not hold. Who was told is a delivery of
//! that notice marked sent. Only counts leave this module, and only `UptakeTable` shows
//! them: groups under ten people as "<10".

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context, Result};
use oshirase_sdk::{Day, Field};
use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::registry::{Plugins, active_versions};
use crate::snapshot::{EventKind, load_snapshot};
use crate::time::{day_in_japan, now_text};

/// Groups with fewer people than this are shown as "<10", and no share is shown that would
/// tell their size.
pub const SMALLEST_GROUP_SHOWN: u32 = 10;

/// The longest follow-up a report may ask for; a day's count is kept for each day up to it.
pub const LONGEST_FOLLOW_UP_DAYS: u32 = 365;

/// How often, in days, the earlier export is asked who is eligible. Every notice of a
/// window still open on one of these days is found; a window that opens and closes between
/// two of them would be missed, and the catalogue's shortest (児童手当's 15 days to apply,
/// 児童手当法 第8条第3項) is twice as long.
const EVALUATION_STRIDE_DAYS: i32 = 7;

/// The normal quantile of a two-sided 95 % interval.
const Z_95: f64 = 1.959_963_984_540_054;

/// The dated records that show a program taken up, by kind of file.
const UPTAKE_KINDS: [(Field, EventKind); 3] = [
    (Field::Immunizations, EventKind::Immunization),
    (Field::Checkups, EventKind::Checkup),
    (Field::Receipts, EventKind::Receipt),
];

/// What to measure: every active program or one, the residents whose window opened from
/// `from` to `to`, and uptake within `within_days` of their notice.
#[derive(Clone, Debug)]
pub struct UptakeQuery {
    pub program: Option<String>,
    pub from: Day,
    pub to: Day,
    pub within_days: u32,
}

impl UptakeQuery {
    fn check(&self) -> Result<(), UptakeError> {
        if self.from > self.to {
            return Err(UptakeError::Invalid(format!(
                "the period begins on {} after it ends on {}",
                self.from, self.to
            )));
        }
        if self.within_days == 0 || self.within_days > LONGEST_FOLLOW_UP_DAYS {
            return Err(UptakeError::Invalid(format!(
                "the follow-up of {} days is not from 1 to {LONGEST_FOLLOW_UP_DAYS}",
                self.within_days
            )));
        }
        Ok(())
    }
}

/// Why uptake was not measured.
#[derive(Debug, thiserror::Error)]
pub enum UptakeError {
    /// The query asks for what cannot be: a period that ends before it begins, an unknown
    /// program, a follow-up out of range.
    #[error("{0}")]
    Invalid(String),
    /// There is no later export to measure with yet.
    #[error("{0}")]
    NotYet(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for UptakeError {
    fn from(error: rusqlite::Error) -> UptakeError {
        UptakeError::Failed(error.into())
    }
}

/// What a measurement compared: when it was made, the export that says who was eligible
/// and the later one that says who took it up, the period and the follow-up. The stored
/// report and the table staff read both begin with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub computed_at: String,
    pub before_snapshot: i64,
    pub after_snapshot: i64,
    pub from: String,
    pub to: String,
    pub within_days: u32,
}

/// One measurement, as stored: raw counts per program, occasion and month, never a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UptakeReport {
    #[serde(flatten)]
    pub measurement: Measurement,
    pub cohorts: Vec<Cohort>,
}

/// The residents of one program and occasion whose window opened in one month.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cohort {
    pub program: String,
    pub occasion: String,
    /// The program's name and the occasion's title, as staff know them.
    #[serde(default)]
    pub program_name: String,
    #[serde(default)]
    pub occasion_title: String,
    /// `YYYY-MM` of the day the window opened.
    pub month: String,
    pub told: Group,
    pub not_told: Group,
}

/// How many were eligible, and how many took it up how many days after their notice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub eligible: u32,
    /// `days[d]`: how many took it up `d` days after their notice (0 for on or before it).
    pub days: Vec<u32>,
}

impl Group {
    pub fn took_up(&self) -> u32 {
        self.days.iter().sum()
    }

    fn add(&mut self, took_up_after: Option<u32>) {
        self.eligible += 1;
        if let Some(days) = took_up_after {
            let days = days as usize;
            if self.days.len() <= days {
                self.days.resize(days + 1, 0);
            }
            self.days[days] += 1;
        }
    }

    fn merge(&mut self, other: &Group) {
        self.eligible += other.eligible;
        if self.days.len() < other.days.len() {
            self.days.resize(other.days.len(), 0);
        }
        for (mine, theirs) in self.days.iter_mut().zip(&other.days) {
            *mine += theirs;
        }
    }

    /// The median number of days from notice to uptake of those who took it up.
    fn median_days(&self) -> Option<u32> {
        let took_up = self.took_up();
        let middle = took_up.checked_sub(1)? / 2;
        let mut seen = 0;
        self.days.iter().enumerate().find_map(|(days, count)| {
            seen += count;
            (seen > middle).then_some(days as u32)
        })
    }
}

/// Measures uptake between the export before the active one and the active one.
pub fn compute(connection: &Connection, plugins: &Plugins, query: &UptakeQuery) -> Result<UptakeReport, UptakeError> {
    query.check()?;
    let not_yet = || UptakeError::NotYet("uptake compares two exports: import the next export first".into());
    let after_snapshot = crate::snapshot::active(connection)?.ok_or_else(not_yet)?;
    let before_snapshot: i64 = connection
        .query_row("SELECT max(id) FROM snapshots WHERE id < ?1", [after_snapshot], |row| row.get(0))
        .optional()?
        .flatten()
        .ok_or_else(not_yet)?;
    let mut versions = active_versions(connection)?;
    if let Some(program) = &query.program {
        versions.retain(|version| &version.program == program);
        if versions.is_empty() {
            return Err(UptakeError::Invalid(format!("no active program {program}")));
        }
    }
    Ok(measure(connection, plugins, query, versions, before_snapshot, after_snapshot)?)
}

/// `compute` once the query is known to be answerable.
fn measure(
    connection: &Connection,
    plugins: &Plugins,
    query: &UptakeQuery,
    versions: Vec<crate::registry::ActiveVersion>,
    before_snapshot: i64,
    after_snapshot: i64,
) -> Result<UptakeReport> {
    let mut programs = Vec::with_capacity(versions.len());
    for version in &versions {
        let program = plugins.get(connection, version)?;
        let settings = crate::settings::values(connection, &version.program, &program.info.settings)?;
        programs.push((program, settings));
    }
    let mut fields: Vec<Field> = programs.iter().flat_map(|(program, _)| program.info.fields.clone()).collect();
    fields.extend(UPTAKE_KINDS.map(|(field, _)| field));
    fields.sort_by_key(|field| *field as u8);
    fields.dedup();
    let mut kinds: Vec<String> = programs.iter().flat_map(|(program, _)| program.info.kinds.clone()).collect();
    kinds.sort();
    kinds.dedup();
    let before = load_snapshot(connection, before_snapshot, &fields, &kinds)?;

    // Who became eligible: each notice's earliest opening in the period, by program.
    let mut eligible = Vec::with_capacity(programs.len());
    for (program, settings) in &programs {
        let mut opened: HashMap<(u32, u16, i32), Day> = HashMap::new();
        let mut day = query.from;
        loop {
            crate::evaluate::eligible_on(plugins, program, &before, day, settings, |notice| {
                if (query.from..=query.to).contains(&notice.send_on) {
                    let key = (notice.person, notice.occasion_index, notice.instance);
                    let earliest = opened.entry(key).or_insert(notice.send_on);
                    *earliest = (*earliest).min(notice.send_on);
                }
            })?;
            if day == query.to {
                break;
            }
            day = day.add_days(EVALUATION_STRIDE_DAYS).min(query.to);
        }
        eligible.push(opened);
    }

    let cohort_ids: HashSet<&str> = eligible
        .iter()
        .flat_map(|opened| opened.keys())
        .filter_map(|(person, ..)| before.resident_ids.get(*person))
        .collect();
    let codes: Vec<&str> = programs.iter().map(|(program, _)| program.info.code.as_str()).collect();
    let later = later_records(connection, after_snapshot, &codes, &cohort_ids)?;

    let mut cohorts: BTreeMap<(String, String, String), (Group, Group)> = BTreeMap::new();
    let mut titles: HashMap<(String, String), (String, String)> = HashMap::new();
    for ((program, _), opened) in programs.iter().zip(&eligible) {
        let code = program.info.code.as_str();
        let told = told_days(connection, code)?;
        let earlier = earlier_records(&before.population, code);
        for (&(person, occasion_index, instance), &opens) in opened {
            let Some(resident_id) = before.resident_ids.get(person) else { continue };
            // Residents gone by the later export cannot show whether they took it up.
            let Some(records) = later.get(resident_id) else { continue };
            let occasion = &program.info.occasions[occasion_index as usize];
            titles
                .entry((code.to_owned(), occasion.key.clone()))
                .or_insert_with(|| (program.info.name.clone(), occasion.title.clone()));
            let occasion = &occasion.key;
            let told_on = told.get(&(resident_id.to_owned(), occasion.clone(), instance)).copied();
            let notice_day = told_on.unwrap_or(opens);
            let last_day = notice_day.add_days(query.within_days as i32);
            let took_up_on = records
                .iter()
                .filter(|(record_code, day)| {
                    *record_code == code && opens <= *day && *day <= last_day && !earlier.contains(&(person, *day))
                })
                .map(|(_, day)| *day)
                .min();
            let took_up_after = took_up_on.map(|day| (day.0 - notice_day.0).max(0) as u32);
            let month = opens.to_string()[..7].to_owned();
            let (told_group, not_told_group) = cohorts.entry((code.to_owned(), occasion.clone(), month)).or_default();
            match told_on {
                Some(_) => told_group.add(took_up_after),
                None => not_told_group.add(took_up_after),
            }
        }
    }
    Ok(UptakeReport {
        measurement: Measurement {
            computed_at: now_text(),
            before_snapshot,
            after_snapshot,
            from: query.from.to_string(),
            to: query.to.to_string(),
            within_days: query.within_days,
        },
        cohorts: cohorts
            .into_iter()
            .map(|((program, occasion, month), (told, not_told))| {
                let (program_name, occasion_title) =
                    titles.get(&(program.clone(), occasion.clone())).cloned().unwrap_or_default();
                Cohort { program, occasion, program_name, occasion_title, month, told, not_told }
            })
            .collect(),
    })
}

/// The records of the later export that show one of `codes` taken up, by resident, for the
/// residents of `cohort` who still live here (each with an empty list at least).
fn later_records<'a>(
    connection: &Connection,
    snapshot_id: i64,
    codes: &[&'a str],
    cohort: &HashSet<&str>,
) -> Result<HashMap<String, Vec<(&'a str, Day)>>> {
    let (first, last) = crate::snapshot::snapshot_range(snapshot_id);
    let mut residents = connection.prepare("SELECT resident_id FROM residents WHERE key BETWEEN ?1 AND ?2")?;
    let mut rows = residents.query((first, last))?;
    let mut records: HashMap<String, Vec<(&str, Day)>> = HashMap::new();
    while let Some(row) = rows.next()? {
        let resident_id: String = row.get(0)?;
        if cohort.contains(resident_id.as_str()) {
            records.insert(resident_id, Vec::new());
        }
    }
    let mut events = connection.prepare(
        "SELECT r.resident_id, e.code, e.start_day FROM events e JOIN residents r ON r.key = ?3 + e.row
         WHERE e.key BETWEEN ?1 AND ?2",
    )?;
    for (_, kind) in UPTAKE_KINDS {
        let (first_event, last_event) = kind.key_range(snapshot_id);
        let mut rows = events.query((first_event, last_event, first))?;
        while let Some(row) = rows.next()? {
            let code: String = row.get(1)?;
            let Some(code) = codes.iter().find(|known| **known == code) else { continue };
            let resident_id: String = row.get(0)?;
            if let Some(list) = records.get_mut(&resident_id) {
                list.push((code, Day(row.get(2)?)));
            }
        }
    }
    Ok(records)
}

/// The records of `code` the earlier export already held, as (row, day): one of them dated
/// after a window opened is not an uptake the later export shows.
fn earlier_records(population: &oshirase_sdk::Population, code: &str) -> HashSet<(u32, Day)> {
    [&population.immunizations, &population.checkups, &population.receipts]
        .into_iter()
        .flat_map(|events| {
            let code_index = events.codes.iter().position(|known| known == code);
            (0..events.person.len())
                .filter(move |&index| code_index.is_some_and(|code_index| events.code[index] as usize == code_index))
                .map(|index| (events.person[index], Day(events.start[index])))
        })
        .collect()
}

/// The Japan day each notice of `program` was first delivered, by resident, occasion and
/// instance.
fn told_days(connection: &Connection, program: &str) -> Result<HashMap<(String, String, i32), Day>> {
    let mut statement = connection.prepare(
        "SELECT n.resident_id, n.occasion, n.instance, min(d.sent_at) FROM notices n
         JOIN deliveries d ON d.notice_id = n.id
         WHERE n.program = ?1 AND d.state = 'sent' AND d.sent_at IS NOT NULL GROUP BY n.id",
    )?;
    let mut rows = statement.query([program])?;
    let mut told = HashMap::new();
    while let Some(row) = rows.next()? {
        let sent_at: String = row.get(3)?;
        let sent_at = chrono::DateTime::parse_from_rfc3339(&sent_at)
            .with_context(|| format!("a delivery of {program} has the sending time {sent_at:?}"))?;
        told.insert((row.get(0)?, row.get(1)?, row.get(2)?), day_in_japan(sent_at.to_utc()));
    }
    Ok(told)
}

/// Keeps `report` as the latest measurement, with the 20 before it.
pub fn store(connection: &Connection, report: &UptakeReport, actor: &str) -> Result<i64> {
    connection.execute(
        "INSERT INTO uptake_reports (computed_at, computed_by, report) VALUES (?1, ?2, ?3)",
        (&report.measurement.computed_at, actor, serde_json::to_string(report)?),
    )?;
    let id = connection.last_insert_rowid();
    connection.execute("DELETE FROM uptake_reports WHERE id <= ?1 - 21", [id])?;
    Ok(id)
}

/// The latest stored measurement, if any.
pub fn latest(connection: &Connection) -> Result<Option<UptakeReport>> {
    let report: Option<String> = connection
        .query_row("SELECT report FROM uptake_reports ORDER BY id DESC LIMIT 1", [], |row| row.get(0))
        .optional()?;
    report.map(|report| serde_json::from_str(&report).context("a stored uptake report does not read")).transpose()
}

impl UptakeReport {
    /// The openings of links that go with this report: from the period's first day to the
    /// end of its follow-up.
    pub fn link_opens(&self, connection: &Connection) -> Result<HashMap<(String, String), u32>> {
        let Measurement { from, to, within_days, .. } = &self.measurement;
        let from = Day::parse_iso(from).context("a stored uptake report has no first day")?;
        let to = Day::parse_iso(to).context("a stored uptake report has no last day")?;
        crate::link_opens::opened_between(connection, from, to.add_days(*within_days as i32))
    }
}

/// A count as staff may see it: the number, or "<10".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    Count(u32),
    Fewer,
}

impl Shown {
    fn of(count: u32) -> Shown {
        if count < SMALLEST_GROUP_SHOWN { Shown::Fewer } else { Shown::Count(count) }
    }
}

impl std::fmt::Display for Shown {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shown::Count(count) => write!(formatter, "{count}"),
            Shown::Fewer => write!(formatter, "<{SMALLEST_GROUP_SHOWN}"),
        }
    }
}

impl Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Shown::Count(count) => serializer.serialize_u32(*count),
            Shown::Fewer => serializer.collect_str(self),
        }
    }
}

/// One group of a table row as staff see it. A share is shown only when both those who
/// took it up and those who did not are at least ten, since either count follows from it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShownGroup {
    pub eligible: Shown,
    pub took_up: Shown,
    pub rate: Option<f64>,
    pub median_days: Option<u32>,
}

/// The difference of the told group's share over the not told group's, in percentage
/// points, with its 95 % interval (Newcombe's hybrid score interval, from each share's
/// Wilson interval, which stays inside 0–100 % for small or extreme groups).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    pub points: f64,
    pub low: f64,
    pub high: f64,
}

/// One row of the table: a program and occasion over the whole period (`month` empty) or
/// over one month.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UptakeRow {
    pub program: String,
    pub occasion: String,
    pub program_name: String,
    pub occasion_title: String,
    pub month: String,
    pub told: ShownGroup,
    pub not_told: ShownGroup,
    pub difference: Option<Difference>,
    /// How many times the occasion's card links were opened from the period's first day
    /// to the end of its follow-up (on the whole-period row only): opens, not people.
    pub link_opens: Option<Shown>,
}

/// What staff read: per program and occasion the whole period, then each month.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UptakeTable {
    #[serde(flatten)]
    pub measurement: Measurement,
    pub rows: Vec<UptakeRow>,
}

impl UptakeTable {
    /// The table of `report`, of one program's rows when `program` is given, with the
    /// openings of each occasion's links (`link_opens::opened_between`).
    pub fn of(
        report: &UptakeReport,
        program: Option<&str>,
        link_opens: &HashMap<(String, String), u32>,
    ) -> UptakeTable {
        let mut totals: BTreeMap<(&str, &str), (&Cohort, Group, Group)> = BTreeMap::new();
        let mut rows = Vec::new();
        for cohort in report.cohorts.iter().filter(|cohort| program.is_none_or(|program| cohort.program == program)) {
            let (_, told, not_told) = totals
                .entry((&cohort.program, &cohort.occasion))
                .or_insert_with(|| (cohort, Group::default(), Group::default()));
            told.merge(&cohort.told);
            not_told.merge(&cohort.not_told);
            rows.push(row(cohort, &cohort.month, &cohort.told, &cohort.not_told));
        }
        let mut table: Vec<UptakeRow> = totals
            .iter()
            .map(|((program, occasion), (cohort, told, not_told))| {
                let opened = link_opens.get(&(program.to_string(), occasion.to_string())).copied().unwrap_or(0);
                UptakeRow { link_opens: Some(Shown::of(opened)), ..row(cohort, "", told, not_told) }
            })
            .collect();
        // Each whole-period row comes first, then its months in order.
        table.extend(rows);
        table.sort_by(|a, b| (&a.program, &a.occasion, &a.month).cmp(&(&b.program, &b.occasion, &b.month)));
        UptakeTable { measurement: report.measurement.clone(), rows: table }
    }

    /// The table as CSV, one line per row, counts under ten as "<10".
    pub fn to_csv(&self) -> Result<String> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record([
            "program",
            "occasion",
            "program_name",
            "occasion_title",
            "month",
            "told_eligible",
            "told_took_up",
            "told_rate_percent",
            "told_median_days",
            "not_told_eligible",
            "not_told_took_up",
            "not_told_rate_percent",
            "not_told_median_days",
            "difference_points",
            "difference_low",
            "difference_high",
            "link_opens",
        ])?;
        let number = |value: Option<f64>| value.map(|value| format!("{value:.1}")).unwrap_or_default();
        let days = |value: Option<u32>| value.map(|value| value.to_string()).unwrap_or_default();
        for row in &self.rows {
            let difference = row.difference.as_ref();
            writer.write_record([
                row.program.clone(),
                row.occasion.clone(),
                row.program_name.clone(),
                row.occasion_title.clone(),
                row.month.clone(),
                row.told.eligible.to_string(),
                row.told.took_up.to_string(),
                number(row.told.rate),
                days(row.told.median_days),
                row.not_told.eligible.to_string(),
                row.not_told.took_up.to_string(),
                number(row.not_told.rate),
                days(row.not_told.median_days),
                number(difference.map(|difference| difference.points)),
                number(difference.map(|difference| difference.low)),
                number(difference.map(|difference| difference.high)),
                row.link_opens.map(|opened| opened.to_string()).unwrap_or_default(),
            ])?;
        }
        Ok(String::from_utf8(writer.into_inner()?)?)
    }
}

/// The row of `cohort`'s program and occasion for `month` ("" for the whole period).
fn row(cohort: &Cohort, month: &str, told: &Group, not_told: &Group) -> UptakeRow {
    let shown = |group: &Group| {
        let took_up = group.took_up();
        let rate_shown = took_up >= SMALLEST_GROUP_SHOWN && group.eligible - took_up >= SMALLEST_GROUP_SHOWN;
        ShownGroup {
            eligible: Shown::of(group.eligible),
            took_up: Shown::of(took_up),
            rate: rate_shown.then(|| 100.0 * took_up as f64 / group.eligible as f64),
            median_days: if took_up >= SMALLEST_GROUP_SHOWN { group.median_days() } else { None },
        }
    };
    let (told_shown, not_told_shown) = (shown(told), shown(not_told));
    let difference = (told_shown.rate.is_some() && not_told_shown.rate.is_some())
        .then(|| difference(told.took_up(), told.eligible, not_told.took_up(), not_told.eligible));
    UptakeRow {
        program: cohort.program.clone(),
        occasion: cohort.occasion.clone(),
        program_name: cohort.program_name.clone(),
        occasion_title: cohort.occasion_title.clone(),
        month: month.to_owned(),
        told: told_shown,
        not_told: not_told_shown,
        difference,
        link_opens: None,
    }
}

/// Wilson's score interval of `successes` out of `trials`, as shares.
fn wilson(successes: u32, trials: u32) -> (f64, f64) {
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z_95 * Z_95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z_95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    (centre - half, centre + half)
}

/// Newcombe's hybrid score interval (his method 10) of the first share minus the second.
fn difference(first_successes: u32, first_trials: u32, second_successes: u32, second_trials: u32) -> Difference {
    let first = first_successes as f64 / first_trials as f64;
    let second = second_successes as f64 / second_trials as f64;
    let (first_low, first_high) = wilson(first_successes, first_trials);
    let (second_low, second_high) = wilson(second_successes, second_trials);
    let points = first - second;
    let low = points - ((first - first_low).powi(2) + (second_high - second).powi(2)).sqrt();
    let high = points + ((first_high - first).powi(2) + (second - second_low).powi(2)).sqrt();
    Difference { points: 100.0 * points, low: 100.0 * low, high: 100.0 * high }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Resident, SnapshotWriter};

    /// A child of household `number`, born on 2025-08-10, after its parent.
    fn household(number: u32) -> [Resident; 2] {
        let parent = crate::testing::resident(&format!("P{number:03}"), &format!("H{number}"), "1990-04-01", 1);
        let child = crate::testing::resident(&format!("C{number:03}"), &format!("H{number}"), "2025-08-10", 3);
        [parent, child]
    }

    /// Stores the households `numbers` as the new active snapshot, with `records` (child's
    /// household, code, day) as immunizations.
    fn export(connection: &mut Connection, numbers: &[u32], records: &[(u32, &str, Day)]) -> Result<()> {
        let transaction = connection.transaction().unwrap();
        let mut writer = SnapshotWriter::new(&transaction, "test").unwrap();
        let mut child_rows = HashMap::new();
        for number in numbers {
            let [parent, child] = household(*number);
            writer.add_resident(&parent).unwrap();
            child_rows.insert(*number, writer.add_resident(&child).unwrap());
        }
        for (number, code, day) in records {
            writer.add_event(EventKind::Immunization, child_rows[number], code, 1, *day, None).unwrap();
        }
        let snapshot_id = writer.finish(&transaction, "", &[]).unwrap();
        crate::snapshot::activate(&transaction, snapshot_id, "test").unwrap();
        Ok(transaction.commit()?)
    }

    /// A hand-made pair of exports whose uptake is known exactly. Seventy children turn one
    /// on 2026-08-10, when 麻しん風しん 1期 opens. The parents of 1–30 are registered and told
    /// that day; of their children, 1–15 are vaccinated 1 to 15 days later, 16 only after 40
    /// days, past the 30 days measured. Of the 40 not told, 31–40 are vaccinated 20 days
    /// later, 41 only against BCG, and 71, eligible too, moved away before the later export.
    #[tokio::test]
    async fn uptake_of_a_hand_made_pair_of_exports_is_known_exactly() {
        let fixture = crate::testing::Fixture::with_bundled(oshirase_bundled::PROGRAMS).await;
        crate::publish::install_bundled(&fixture.database, &fixture.plugins, &["vaccine-mr".to_owned()]).await.unwrap();
        let opens = Day::parse_iso("2025-08-10").unwrap().months_reached(12);
        assert_eq!(opens.to_string()[..7], *"2026-08");
        fixture.database.write(|connection| export(connection, &(1..=71).collect::<Vec<_>>(), &[])).await.unwrap();
        fixture
            .database
            .write(|connection| {
                for number in 1..=30 {
                    connection.execute(
                        "INSERT INTO registrations (resident_id, line_user_id, registered_at) VALUES (?1, ?2, 'now')",
                        (format!("P{number:03}"), format!("U{number:032x}")),
                    )?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let end = Day::parse_iso("2026-08-31").unwrap();
        crate::evaluate::run_day(&fixture.database, fixture.plugins.clone(), end).await.unwrap();
        let sent_at = format!("{opens}T01:00:00Z");
        let told = fixture
            .database
            .write(move |connection| {
                crate::outbox::enqueue_due(connection, end)?;
                Ok(connection.execute("UPDATE deliveries SET state = 'sent', sent_at = ?1", [&sent_at])?)
            })
            .await
            .unwrap();
        assert_eq!(told, 30, "one delivery to each registered parent");

        let mut records: Vec<(u32, &str, Day)> =
            (1..=15).map(|number| (number, "vaccine-mr", opens.add_days(number as i32))).collect();
        records.push((16, "vaccine-mr", opens.add_days(40)));
        records.extend((31..=40).map(|number| (number, "vaccine-mr", opens.add_days(20))));
        records.push((41, "vaccine-bcg", opens.add_days(3)));
        fixture
            .database
            .write(move |connection| export(connection, &(1..=70).collect::<Vec<_>>(), &records))
            .await
            .unwrap();

        let query =
            UptakeQuery { program: None, from: Day::parse_iso("2026-08-01").unwrap(), to: end, within_days: 30 };
        let plugins = fixture.plugins.clone();
        let report = fixture.database.read(move |connection| Ok(compute(connection, &plugins, &query)?)).await.unwrap();
        let [cohort] = &report.cohorts[..] else { panic!("one cohort expected: {:?}", report.cohorts) };
        assert_eq!((&*cohort.program, &*cohort.occasion, &*cohort.month), ("vaccine-mr", "phase-1", "2026-08"));
        assert_eq!((&*cohort.program_name, &*cohort.occasion_title), ("麻しん風しん(MR)予防接種", "1期(1歳)"));
        assert_eq!((cohort.told.eligible, cohort.told.took_up()), (30, 15));
        assert_eq!((cohort.not_told.eligible, cohort.not_told.took_up()), (40, 10));

        let table = UptakeTable::of(&report, Some("vaccine-mr"), &HashMap::new());
        let rows: Vec<_> = table.rows.iter().map(|row| (&*row.month, row.told.rate, row.told.median_days)).collect();
        assert_eq!(rows, [("", Some(50.0), Some(8)), ("2026-08", Some(50.0), Some(8))], "the period, then its month");
        let whole = &table.rows[0];
        assert_eq!((whole.not_told.rate, whole.not_told.median_days), (Some(25.0), Some(20)));
        let difference = whole.difference.as_ref().unwrap();
        assert!((difference.points - 25.0).abs() < 1e-9 && difference.low < 25.0 && 25.0 < difference.high);
        assert!(UptakeTable::of(&report, Some("vaccine-bcg"), &HashMap::new()).rows.is_empty());

        let csv = table.to_csv().unwrap();
        assert_eq!(
            csv.lines().nth(1),
            Some("vaccine-mr,phase-1,麻しん風しん(MR)予防接種,1期(1歳),,30,15,50.0,8,40,10,25.0,20,25.0,2.3,45.0,<10")
        );
        let text = serde_json::to_string(&report).unwrap();
        assert!(!text.contains("C0") && !text.contains("P0"), "a report names nobody: {text}");
    }

    /// Groups under ten show as "<10", and no share or median that would tell their size.
    #[test]
    fn small_groups_are_suppressed() {
        let group = |eligible, took_up| Group { eligible, days: vec![took_up] };
        let cohort = |told, not_told| Cohort {
            program: "p".into(),
            occasion: "o".into(),
            program_name: "検診".into(),
            occasion_title: "2026年度".into(),
            month: "2026-08".into(),
            told,
            not_told,
        };
        let report = |cohorts| UptakeReport {
            measurement: Measurement {
                computed_at: String::new(),
                before_snapshot: 1,
                after_snapshot: 2,
                from: String::new(),
                to: String::new(),
                within_days: 30,
            },
            cohorts,
        };
        let table = UptakeTable::of(&report(vec![cohort(group(9, 3), group(100, 95))]), None, &HashMap::new());
        let row = &table.rows[0];
        assert_eq!((row.told.eligible, row.told.took_up, row.told.rate), (Shown::Fewer, Shown::Fewer, None));
        assert_eq!((row.not_told.eligible, row.not_told.took_up), (Shown::Count(100), Shown::Count(95)));
        assert_eq!(row.not_told.rate, None, "5 who did not take it up follow from a share of 95 %");
        assert_eq!(row.difference, None);
        assert_eq!(serde_json::to_value(row.told.eligible).unwrap(), "<10");
        assert!(table.to_csv().unwrap().lines().nth(1).unwrap().starts_with("p,o,検診,2026年度,,<10,<10,,,100,95,,"));
    }

    /// Newcombe's own example (Statistics in Medicine 17, 873–890, 1998, table II): 56/70
    /// against 48/80 differ by 0.2000, and method 10 gives 0.0524 to 0.3339.
    #[test]
    fn the_interval_of_a_difference_is_newcombes() {
        let difference = difference(56, 70, 48, 80);
        let rounded = |value: f64| (value * 100.0).round() / 10_000.0;
        assert_eq!(
            (rounded(difference.points), rounded(difference.low), rounded(difference.high)),
            (0.2, 0.0524, 0.3339)
        );
    }
}
