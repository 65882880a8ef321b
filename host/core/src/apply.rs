//! Applying for registration: the chat sends a resident a personal link to a mobile form
//! (served by the web server at `/apply/{token}`; the token names their LINE account, works once and for a day,
//! and only its hash is stored), where they give their name, birth date and address.
//! Staff then see each pending application beside the snapshot records it matches (same
//! birth date, same name written with or without spaces) and approve it for one resident
//! — which issues a registration number and puts it in the batch of postcards to print —
//! or reject it; either way the applicant hears of it in the chat (`chat::push`, queued in
//! the same transaction). Nothing is linked until the resident types the number from the
//! postcard.

use anyhow::Result;
use oshirase_sdk::Day;
use rusqlite::{Connection, OptionalExtension};

use crate::chat::application_link::{link_owner, use_up};
use crate::database::audit;
use crate::time::now_text;

/// The longest name and address accepted, in characters.
const MAX_NAME: usize = 60;
const MAX_ADDRESS: usize = 200;

/// The form's fields as the browser sends them.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct ApplicationForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub birth_date: String,
    #[serde(default)]
    pub address: String,
}

/// The form's fields checked: the name, the birth date and the address, or every problem.
fn check(form: &ApplicationForm, today: Day) -> Result<(String, Day, String), Vec<String>> {
    let mut problems = Vec::new();
    let name = form.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        problems.push(format!("お名前を{MAX_NAME}文字以内で入力してください"));
    }
    let birth = crate::import::values::date(&form.birth_date)
        .filter(|day| *day <= today && *day > today.add_months_clamped(-12 * 130));
    if birth.is_none() {
        problems.push("生年月日を正しく入力してください(例: 1990-04-01)".to_string());
    }
    let address = form.address.trim().to_string();
    if address.is_empty() || address.chars().count() > MAX_ADDRESS {
        problems.push(format!("住所を{MAX_ADDRESS}文字以内で入力してください"));
    }
    match birth {
        Some(birth) if problems.is_empty() => Ok((name, birth, address)),
        _ => Err(problems),
    }
}

/// What became of a submitted form.
#[derive(Debug, PartialEq, Eq)]
pub enum Submission {
    /// The link is unknown, used or expired: nothing was stored.
    LinkUnusable,
    /// The form has problems, each named: nothing was stored, the link still works.
    Problems(Vec<String>),
    /// The application was stored and the link used up.
    Stored,
}

/// Checks a submitted form and, when the link works and the form is right, stores the
/// application and uses up the link, in one transaction.
pub fn submit(connection: &mut Connection, token: &str, form: &ApplicationForm, today: Day) -> Result<Submission> {
    let transaction = connection.transaction()?;
    let Some(line_user_id) = link_owner(&transaction, token)? else {
        return Ok(Submission::LinkUnusable);
    };
    let (name, birth, address) = match check(form, today) {
        Ok(checked) => checked,
        Err(problems) => return Ok(Submission::Problems(problems)),
    };
    transaction.execute(
        "INSERT INTO applications (line_user_id, name, birth_day, address, submitted_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        (&line_user_id, &name, birth.0, &address, now_text()),
    )?;
    let id = transaction.last_insert_rowid();
    use_up(&transaction, token)?;
    audit(&transaction, "line", "submit-application", &format!("application {id}"), "")?;
    transaction.commit()?;
    Ok(Submission::Stored)
}

/// Why staff cannot act on an application as asked.
#[derive(Debug, thiserror::Error)]
pub enum ApplicationError {
    #[error("there is no application {0}")]
    NotFound(i64),
    #[error("application {id} was already {state}")]
    AlreadyDecided { id: i64, state: String },
    #[error("resident {0:?} is not in the active snapshot")]
    UnknownResident(String),
    /// Something failed on our side, not in the request.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for ApplicationError {
    fn from(error: rusqlite::Error) -> ApplicationError {
        ApplicationError::Failed(error.into())
    }
}

/// A snapshot record an application may be about.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Candidate {
    pub resident_id: String,
    pub name: String,
    pub birth_date: String,
    pub address: String,
    pub ward: String,
}

/// A pending application beside the records it matches.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PendingApplication {
    pub id: i64,
    pub submitted_at: String,
    pub name: String,
    pub birth_date: String,
    pub address: String,
    pub candidates: Vec<Candidate>,
}

/// Names compared as written on different forms: without spaces of either width.
fn name_key(name: &str) -> String {
    name.chars().filter(|character| !character.is_whitespace()).collect()
}

/// Every pending application, oldest first, with the active snapshot's residents born
/// the same day whose name matches.
pub fn pending(connection: &Connection) -> Result<Vec<PendingApplication>> {
    let snapshot_id = crate::snapshot::active(connection)?.unwrap_or(0);
    let mut statement = connection.prepare(
        "SELECT id, submitted_at, name, birth_day, address FROM applications WHERE state = 'pending' ORDER BY id",
    )?;
    let applications: Vec<(i64, String, String, i32, String)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))?
        .collect::<Result<_, _>>()?;
    let mut same_birth = connection
        .prepare("SELECT resident_id, name, address, ward FROM residents WHERE snapshot_id = ?1 AND birth_day = ?2")?;
    let mut pending = Vec::new();
    for (id, submitted_at, name, birth, address) in applications {
        let candidates = same_birth
            .query_map((snapshot_id, birth), |row| {
                Ok(Candidate {
                    resident_id: row.get(0)?,
                    name: row.get(1)?,
                    birth_date: Day(birth).to_string(),
                    address: row.get(2)?,
                    ward: row.get(3)?,
                })
            })?
            .filter(|candidate| !matches!(candidate, Ok(candidate) if name_key(&candidate.name) != name_key(&name)))
            .collect::<Result<_, _>>()?;
        pending.push(PendingApplication {
            id,
            submitted_at,
            name,
            birth_date: Day(birth).to_string(),
            address,
            candidates,
        });
    }
    Ok(pending)
}

/// The LINE user who sent application `id`.
fn applicant(connection: &Connection, id: i64) -> Result<String, ApplicationError> {
    Ok(connection.query_row("SELECT line_user_id FROM applications WHERE id = ?1", [id], |row| row.get(0))?)
}

/// Fails unless application `id` exists and is pending.
fn must_be_pending(connection: &Connection, id: i64) -> Result<(), ApplicationError> {
    let state: Option<String> =
        connection.query_row("SELECT state FROM applications WHERE id = ?1", [id], |row| row.get(0)).optional()?;
    match state {
        None => Err(ApplicationError::NotFound(id)),
        Some(state) if state != "pending" => Err(ApplicationError::AlreadyDecided { id, state }),
        Some(_) => Ok(()),
    }
}

/// Approves an application for `resident_id`: issues a registration number, which adds
/// it, with the resident's name and address from the snapshot, to the batch of postcards
/// to print (`chat::number::issue_within`), and tells the applicant in the chat that a
/// postcard is on its way.
/// Returns the number as printed.
pub fn approve(
    connection: &mut Connection,
    id: i64,
    resident_id: &str,
    actor: &str,
) -> Result<String, ApplicationError> {
    let transaction = connection.transaction()?;
    must_be_pending(&transaction, id)?;
    let snapshot_id = crate::snapshot::active(&transaction)?.unwrap_or(0);
    let known: bool = transaction.query_row(
        "SELECT count(*) FROM residents WHERE snapshot_id = ?1 AND resident_id = ?2",
        (snapshot_id, resident_id),
        |row| row.get(0),
    )?;
    if !known {
        return Err(ApplicationError::UnknownResident(resident_id.to_string()));
    }
    let number =
        crate::chat::number::issue_within(&transaction, resident_id, crate::chat::number::DEFAULT_VALID_DAYS, actor)?;
    transaction.execute(
        "UPDATE applications SET state = 'approved', resident_id = ?2, decided_by = ?3, decided_at = ?4 WHERE id = ?1",
        (id, resident_id, actor, now_text()),
    )?;
    crate::chat::push::queue(
        &transaction,
        &applicant(&transaction, id)?,
        crate::chat::push::Kind::ApplicationApproved,
    )?;
    audit(&transaction, actor, "approve-application", &format!("application {id}"), resident_id)?;
    transaction.commit()?;
    Ok(number)
}

/// Rejects an application with a reason for staff; the applicant is told in the chat,
/// without the reason, to ask at the window.
pub fn reject(connection: &mut Connection, id: i64, reason: &str, actor: &str) -> Result<(), ApplicationError> {
    let transaction = connection.transaction()?;
    must_be_pending(&transaction, id)?;
    transaction.execute(
        "UPDATE applications SET state = 'rejected', reason = ?2, decided_by = ?3, decided_at = ?4 WHERE id = ?1",
        (id, reason, actor, now_text()),
    )?;
    crate::chat::push::queue(
        &transaction,
        &applicant(&transaction, id)?,
        crate::chat::push::Kind::ApplicationRejected,
    )?;
    audit(&transaction, actor, "reject-application", &format!("application {id}"), reason)?;
    transaction.commit()?;
    Ok(())
}
