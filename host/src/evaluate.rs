//! Runs the active programs against the active snapshot for one date and plans the notices
//! they return. Planning is idempotent: the key (program, resident, occasion) is unique.

use anyhow::{Context, Result};
use oshirase_sdk::{Day, Field, Notice};
use rusqlite::Connection;

use crate::database::now_text;
use crate::registry::{ActiveVersion, Plugins, active_versions};
use crate::snapshot::load_population;

/// A notice with the resident it is about, as a dry run reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PlannedNotice {
    pub resident_id: String,
    pub occasion: String,
    pub send_on: String,
    pub expires_on: String,
    pub reason: String,
}

/// What one program's run did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProgramRun {
    pub program: String,
    pub notices: usize,
    pub new_notices: usize,
    /// Why the run failed; `None` when it succeeded.
    pub error: Option<String>,
}

/// Evaluates one program and names the residents its notices are about. Sends nothing,
/// stores nothing.
pub fn dry_run(connection: &Connection, plugins: &Plugins, version: &ActiveVersion, today: Day) -> Result<Vec<PlannedNotice>> {
    let (resident_ids, notices, _log) = evaluate(connection, plugins, version, today)?;
    Ok(notices
        .into_iter()
        .map(|notice| PlannedNotice {
            resident_id: resident_ids[notice.person as usize].clone(),
            occasion: notice.occasion,
            send_on: notice.send_on.to_string(),
            expires_on: notice.expires_on.to_string(),
            reason: notice.reason,
        })
        .collect())
}

fn evaluate(connection: &Connection, plugins: &Plugins, version: &ActiveVersion, today: Day) -> Result<(Vec<String>, Vec<Notice>, String)> {
    let program = plugins.get(connection, version)?;
    let fields: Vec<Field> = program.info.fields.clone();
    let loaded = load_population(connection, &fields)?;
    let evaluation = plugins.engine.evaluate(&program, today, loaded.population).with_context(|| format!("program {} failed", version.program))?;
    Ok((loaded.resident_ids, evaluation.notices, evaluation.log))
}

/// Runs every active program for `today` and stores their notices. A failing program is
/// recorded as failed and the others carry on.
pub fn run_day(connection: &mut Connection, plugins: &Plugins, today: Day) -> Result<Vec<ProgramRun>> {
    active_versions(connection)?.iter().map(|version| run_program(connection, plugins, version, today)).collect()
}

/// Runs one program's `version` for `today`, records the run and stores its notices. A
/// failure of the plugin is recorded in the run and reported in the result, not as an
/// error; an error means the database failed.
pub fn run_program(connection: &mut Connection, plugins: &Plugins, version: &ActiveVersion, today: Day) -> Result<ProgramRun> {
    let snapshot_id = crate::snapshot::active(connection)?.context("no active snapshot: import resident records first")?;
    connection.execute(
        "INSERT INTO runs (program, version_id, snapshot_id, run_on, started_at, outcome) VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
        (&version.program, version.version_id, snapshot_id, today.0, now_text()),
    )?;
    let run_id = connection.last_insert_rowid();
    Ok(match evaluate(connection, plugins, version, today) {
        Ok((resident_ids, notices, log)) => {
            let new_notices = plan(connection, run_id, &version.program, &resident_ids, &notices, &log)?;
            tracing::info!(program = %version.program, notices = notices.len(), new_notices, "program evaluated");
            ProgramRun { program: version.program.clone(), notices: notices.len(), new_notices, error: None }
        }
        Err(error) => {
            let message = format!("{error:#}");
            tracing::warn!(program = %version.program, %message, "program failed");
            connection.execute("UPDATE runs SET outcome = 'failed', finished_at = ?2, message = ?3 WHERE id = ?1", (run_id, now_text(), &message))?;
            ProgramRun { program: version.program.clone(), notices: 0, new_notices: 0, error: Some(message) }
        }
    })
}

/// Stores the notices of one successful run in one transaction; returns how many were new.
fn plan(connection: &mut Connection, run_id: i64, program: &str, resident_ids: &[String], notices: &[Notice], log: &str) -> Result<usize> {
    let transaction = connection.transaction()?;
    let mut new_notices = 0;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO notices (program, resident_id, occasion, send_on, expires_on, reason, run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (program, resident_id, occasion) DO NOTHING",
        )?;
        for notice in notices {
            new_notices += insert.execute((program, &resident_ids[notice.person as usize], &notice.occasion, notice.send_on.0, notice.expires_on.0, &notice.reason, run_id))?;
        }
    }
    transaction.execute(
        "UPDATE runs SET outcome = 'succeeded', finished_at = ?2, notices = ?3, new_notices = ?4, message = ?5 WHERE id = ?1",
        (run_id, now_text(), notices.len() as i64, new_notices as i64, log),
    )?;
    transaction.commit()?;
    Ok(new_notices)
}
