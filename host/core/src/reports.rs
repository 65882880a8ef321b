//! The read-only reports behind the console's pages: the dashboard's KPIs (what grant
//! reports ask for) with deliveries per day, every program with its state and last run,
//! deliveries by program, day and state with the reasons for failures, the audit log as
//! the caller may read it, and a dry run counted by occasion, ward and age band. They
//! count; only a dry run for the administrator names residents.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension};

use crate::accounts::{Caller, Role};

/// The Japan date of an RFC 3339 UTC timestamp column (or `'now'`), in SQL.
fn japan_day(column: &str) -> String {
    format!("date({column}, {})", crate::time::SQL_TO_JAPAN)
}

#[derive(Debug, serde::Serialize)]
pub struct Dashboard {
    /// Residents with an active registration (linked to LINE or with an e-mail address).
    pub registered_residents: i64,
    /// LINE users who follow the account, linked or not.
    pub line_followers: i64,
    /// Deliveries sent this month (in Japan) and in all.
    pub sent_this_month: i64,
    pub sent_total: i64,
    /// Residents who received at least one notice.
    pub residents_reached: i64,
    pub programs_live: i64,
    /// Deliveries that failed for good or expired in the last 7 days, and failed runs.
    pub failed_deliveries_7_days: i64,
    pub failed_runs_7_days: i64,
    /// Deliveries per day (Japan) over the last 30 days: sent, failed.
    pub per_day: Vec<DayCount>,
}

#[derive(Debug, serde::Serialize)]
pub struct DayCount {
    pub day: String,
    pub sent: i64,
    pub failed: i64,
}

fn count(connection: &Connection, query: &str) -> rusqlite::Result<i64> {
    connection.query_row(query, [], |row| row.get(0))
}

/// The dashboard's figures, counted now.
pub fn dashboard(connection: &Connection) -> anyhow::Result<Dashboard> {
    let sent_day = japan_day("sent_at");
    let created_day = japan_day("created_at");
    let today = japan_day("'now'");
    let this_month = format!("strftime('%Y-%m', {today})");
    // One pass over the deliveries for the 30 days, each day counted by group, rather
    // than a pass per day.
    let mut per_day = connection.prepare(&format!(
        "WITH RECURSIVE days(day) AS (SELECT date({today}, '-29 days') UNION ALL SELECT date(day, '+1 day') FROM days
             WHERE day < {today}),
         counted AS (
             SELECT CASE WHEN state = 'sent' THEN {sent_day} ELSE {created_day} END AS day, state = 'sent' AS sent,
             count(*) AS deliveries
             FROM deliveries WHERE state IN ('sent', 'failed-permanent', 'expired') GROUP BY 1, 2)
         SELECT days.day, coalesce(sum(CASE WHEN counted.sent THEN counted.deliveries END), 0),
         coalesce(sum(CASE WHEN NOT counted.sent THEN counted.deliveries END), 0)
         FROM days LEFT JOIN counted ON counted.day = days.day GROUP BY days.day ORDER BY days.day"
    ))?;
    let per_day = per_day
        .query_map([], |row| Ok(DayCount { day: row.get(0)?, sent: row.get(1)?, failed: row.get(2)? }))?
        .collect::<Result<_, _>>()?;
    Ok(Dashboard {
        registered_residents: count(
            connection,
            "SELECT count(DISTINCT resident_id) FROM registrations WHERE active = 1",
        )?,
        line_followers: count(connection, "SELECT count(*) FROM line_users WHERE following = 1")?,
        sent_this_month: count(
            connection,
            &format!(
                "SELECT count(*) FROM deliveries WHERE state = 'sent' AND strftime('%Y-%m', {sent_day}) = {this_month}"
            ),
        )?,
        sent_total: count(connection, "SELECT count(*) FROM deliveries WHERE state = 'sent'")?,
        residents_reached: count(
            connection,
            "SELECT count(DISTINCT n.resident_id) FROM deliveries d JOIN notices n ON n.id = d.notice_id
             WHERE d.state = 'sent'",
        )?,
        programs_live: count(connection, "SELECT count(*) FROM programs WHERE active_version IS NOT NULL")?,
        failed_deliveries_7_days: count(
            connection,
            &format!(
                "SELECT count(*) FROM deliveries
                 WHERE state IN ('failed-permanent', 'expired') AND {created_day} >= date({today}, '-6 days')"
            ),
        )?,
        failed_runs_7_days: count(
            connection,
            "SELECT count(*) FROM runs WHERE outcome = 'failed' AND started_at >= datetime('now', '-7 days')",
        )?,
        per_day,
    })
}

/// A program as the console lists it.
#[derive(Debug, serde::Serialize)]
pub struct ProgramSummary {
    pub code: String,
    pub name: String,
    pub division: String,
    pub category: String,
    /// The active version; `None` while the program is paused.
    pub active_version: Option<i64>,
    /// The version a rollback (or resuming a paused program) brings back.
    pub previous_version: Option<i64>,
    pub last_run_on: Option<String>,
    pub last_run_outcome: Option<String>,
    pub last_run_notices: Option<i64>,
    /// Notices the last run withheld because a birth day is not exact (生年月日_不詳).
    pub last_run_withheld_inexact_birth_day: Option<i64>,
    /// Whether the caller may change it.
    pub may_act: bool,
}

/// Every program, its latest version's name, its state and its last run.
pub fn programs(connection: &Connection, caller: &Caller) -> anyhow::Result<Vec<ProgramSummary>> {
    let mut statement = connection.prepare(
        "SELECT p.code, v.manifest, p.active_version, p.previous_version, r.run_on, r.outcome, r.notices,
             r.withheld_inexact_birth_day
         FROM programs p
         JOIN plugin_versions v ON v.id = coalesce(p.active_version, p.previous_version, (SELECT max(id)
             FROM plugin_versions WHERE program = p.code AND accepted = 1))
         LEFT JOIN runs r ON r.id = (SELECT max(id) FROM runs WHERE program = p.code)
         ORDER BY p.code",
    )?;
    let rows = statement.query_map([], |row| {
        let code: String = row.get(0)?;
        let manifest: crate::registry::Manifest = serde_json::from_str(&row.get::<_, String>(1)?).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(error))
        })?;
        Ok(ProgramSummary {
            may_act: caller.may_act_on(&code).is_ok() && caller.role != Role::Viewer,
            code,
            name: manifest.name,
            division: manifest.division,
            category: manifest.category,
            active_version: row.get(2)?,
            previous_version: row.get(3)?,
            last_run_on: row.get::<_, Option<i32>>(4)?.map(|day| oshirase_sdk::Day(day).to_string()),
            last_run_outcome: row.get(5)?,
            last_run_notices: row.get(6)?,
            last_run_withheld_inexact_birth_day: row.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Debug, serde::Deserialize)]
pub struct DeliveryQuery {
    pub program: Option<String>,
    /// A Japan date, `YYYY-MM-DD`.
    pub day: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct DeliveryReport {
    /// Deliveries by day queued (Japan), program (or `broadcast`) and state.
    pub counts: Vec<DeliveryCount>,
    /// The latest failures, with the reason; no address.
    pub failures: Vec<DeliveryFailure>,
}

#[derive(Debug, serde::Serialize)]
pub struct DeliveryCount {
    pub day: String,
    pub program: String,
    pub state: String,
    pub channel: String,
    pub deliveries: i64,
}

#[derive(Debug, serde::Serialize)]
pub struct DeliveryFailure {
    pub id: i64,
    pub day: String,
    pub program: String,
    pub channel: String,
    pub state: String,
    pub attempts: i64,
    pub reason: String,
}

/// Deliveries of the last 60 days by day, program and state, and the latest 100
/// failures, narrowed to one program or day when asked.
pub fn deliveries(connection: &Connection, query: &DeliveryQuery) -> anyhow::Result<DeliveryReport> {
    let created_day = japan_day("d.created_at");
    let today = japan_day("'now'");
    let filter = format!(
        "FROM deliveries d LEFT JOIN notices n ON n.id = d.notice_id
         WHERE {created_day} >= date({today}, '-59 days') AND (?1 IS NULL OR coalesce(n.program, 'broadcast') = ?1)
         AND (?2 IS NULL OR {created_day} = ?2)"
    );
    let counts = connection
        .prepare(&format!(
            "SELECT {created_day}, coalesce(n.program, 'broadcast'), d.state, d.channel, count(*) {filter}
             GROUP BY 1, 2, 3, 4 ORDER BY 1 DESC, 2, 3, 4"
        ))?
        .query_map((&query.program, &query.day), |row| {
            Ok(DeliveryCount {
                day: row.get(0)?,
                program: row.get(1)?,
                state: row.get(2)?,
                channel: row.get(3)?,
                deliveries: row.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let failures = connection
        .prepare(&format!(
            "SELECT d.id, {created_day}, coalesce(n.program, 'broadcast'),
             d.channel, d.state, d.attempts, d.last_error {filter}
             AND d.state IN ('failed-permanent', 'failed-retryable', 'expired') ORDER BY d.id DESC LIMIT 100"
        ))?
        .query_map((&query.program, &query.day), |row| {
            Ok(DeliveryFailure {
                id: row.get(0)?,
                day: row.get(1)?,
                program: row.get(2)?,
                channel: row.get(3)?,
                state: row.get(4)?,
                attempts: row.get(5)?,
                reason: row.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(DeliveryReport { counts, failures })
}

#[derive(Debug, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: String,
}

/// The latest 500 audit entries. The log names residents (applications decided,
/// registrations) and staff accounts, so only the administrator sees all of it; division
/// staff see the entries about their own programs, viewers those about any program.
pub fn audit_log(connection: &Connection, caller: &Caller) -> anyhow::Result<Vec<AuditEntry>> {
    let programs = caller.programs.join(",");
    let everything = caller.role == Role::Administrator;
    let any_program = caller.role == Role::Viewer;
    let entries = connection
        .prepare(
            "SELECT id, at, actor, action, subject, detail FROM audit_log
             WHERE ?1 OR instr(',' || ?2 || ',', ',' || subject || ',') > 0 OR (?3 AND subject IN (SELECT code
                 FROM programs))
             ORDER BY id DESC LIMIT 500",
        )?
        .query_map((everything, programs, any_program), |row| {
            Ok(AuditEntry {
                id: row.get(0)?,
                at: row.get(1)?,
                actor: row.get(2)?,
                action: row.get(3)?,
                subject: row.get(4)?,
                detail: row.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(entries)
}

/// Who a dry run would reach, counted, and at most 200 of them by name. Counts are
/// (label, count) pairs: occasions and wards in name order, age bands youngest first.
#[derive(Debug, Default, serde::Serialize)]
pub struct DryRunSummary {
    pub notices: usize,
    pub by_occasion: Vec<(String, usize)>,
    pub by_ward: Vec<(String, usize)>,
    pub by_age_band: Vec<(String, usize)>,
    /// Only for callers who may see names.
    pub residents: Option<Vec<DryRunResident>>,
}

#[derive(Debug, serde::Serialize)]
pub struct DryRunResident {
    pub resident_id: String,
    pub name: String,
    pub ward: String,
    pub age: u32,
    pub occasion: String,
    pub send_on: String,
    pub reason: String,
}

/// Age bands as the divisions report them: each holds the ages below its bound.
const AGE_BANDS: [(u32, &str); 8] = [
    (1, "0歳"),
    (3, "1〜2歳"),
    (6, "3〜5歳"),
    (18, "6〜17歳"),
    (40, "18〜39歳"),
    (65, "40〜64歳"),
    (75, "65〜74歳"),
    (u32::MAX, "75歳以上"),
];

/// The index in `AGE_BANDS` of the band `age` falls in.
fn age_band(age: u32) -> usize {
    AGE_BANDS.iter().position(|(below, _)| age < *below).unwrap_or(AGE_BANDS.len() - 1)
}

/// A dry run's planned notices counted by occasion (by its title), ward and age band,
/// from the active snapshot's records, with the first 200 by name when `with_names`; a
/// person registered in the chat (`self:`) counts under 「チャット登録」.
pub fn dry_run(
    connection: &rusqlite::Connection,
    program: &str,
    notices: Vec<crate::evaluate::PlannedNotice>,
    today: oshirase_sdk::Day,
    with_names: bool,
) -> anyhow::Result<DryRunSummary> {
    let snapshot = crate::snapshot::active(connection)?.unwrap_or(0);
    let manifest = crate::registry::active_version(connection, program)?.map(|version| version.manifest);
    let title = |occasion: &str| {
        manifest
            .as_ref()
            .and_then(|manifest| manifest.occasion(occasion))
            .map_or(occasion.to_owned(), |found| found.title.clone())
    };
    let mut lookup = connection
        .prepare_cached("SELECT name, ward, birth_day FROM residents WHERE snapshot_id = ?1 AND resident_id = ?2")?;
    let (mut by_occasion, mut by_ward, mut by_age_band) =
        (BTreeMap::<String, usize>::new(), BTreeMap::<String, usize>::new(), BTreeMap::<usize, usize>::new());
    let mut summary =
        DryRunSummary { notices: notices.len(), residents: with_names.then(Vec::new), ..DryRunSummary::default() };
    for notice in notices {
        let record: Option<(String, String, i32)> = lookup
            .query_row((snapshot, &notice.resident_id), |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()?;
        let (name, ward, age) = match &record {
            Some((name, ward, birth)) => (name.clone(), ward.clone(), oshirase_sdk::Day(*birth).age_on(today)),
            None => (String::new(), "チャット登録".to_owned(), 0),
        };
        *by_occasion.entry(title(&notice.occasion)).or_default() += 1;
        *by_ward.entry(ward.clone()).or_default() += 1;
        *by_age_band.entry(age_band(age)).or_default() += 1;
        if let Some(residents) = summary.residents.as_mut().filter(|residents| residents.len() < 200) {
            residents.push(DryRunResident {
                resident_id: notice.resident_id,
                name,
                ward,
                age,
                occasion: notice.occasion,
                send_on: notice.send_on,
                reason: notice.reason,
            });
        }
    }
    summary.by_occasion = by_occasion.into_iter().collect();
    summary.by_ward = by_ward.into_iter().collect();
    summary.by_age_band = by_age_band.into_iter().map(|(band, count)| (AGE_BANDS[band].1.to_owned(), count)).collect();
    Ok(summary)
}
