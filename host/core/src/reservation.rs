//! Sends staff reserve in the console: run one program now or at a chosen time and send
//! what it finds due, or broadcast a message to every registered resident or to those who
//! receive one category (a survey's question is such a broadcast, `survey.rs`). The
//! scheduler carries them out when their time comes (`carry_out_due`); sending itself
//! still waits for the send window.

use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use oshirase_sdk::Day;
use rusqlite::{Connection, OptionalExtension};

use crate::channel::line::TEXT_LIMIT;
use crate::database::{Database, audit};
use crate::registry::{Plugins, active_version};
use crate::time::now_text;

/// How long a broadcast may still be sent after its time, in days: a survey that could
/// not go out for a week is stale.
pub(crate) const BROADCAST_DAYS: i32 = 7;

/// What a reservation sends.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reserved {
    /// Run this program and send what it finds due.
    Program(String),
    /// A message written by staff; `category` limits it to those who receive that category.
    Broadcast { title: String, text: String, category: Option<String> },
}

/// Why a reservation was refused or cannot change.
#[derive(Debug, thiserror::Error)]
pub enum ReservationError {
    #[error("reservation {0} does not exist")]
    NotFound(i64),
    #[error("reservation {id} is already {state}")]
    AlreadySettled { id: i64, state: String },
    #[error("{0}")]
    Invalid(String),
    /// Something failed on our side, not in the request.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for ReservationError {
    fn from(error: rusqlite::Error) -> ReservationError {
        ReservationError::Failed(error.into())
    }
}

/// A reservation as the console lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Reservation {
    pub id: i64,
    pub program: Option<String>,
    pub broadcast_id: Option<i64>,
    pub title: Option<String>,
    pub category: Option<String>,
    /// When it is (or was) due, in Japan time.
    pub send_at: String,
    pub state: String,
    pub outcome: String,
    pub created_by: String,
}

/// Reserves `what` for `send_at` (a time already past means now); returns its id.
pub fn reserve(
    connection: &mut Connection,
    what: &Reserved,
    send_at: DateTime<Utc>,
    actor: &str,
) -> Result<i64, ReservationError> {
    let transaction = connection.transaction()?;
    let id = match what {
        Reserved::Program(program) => {
            if active_version(&transaction, program)?.is_none() {
                return Err(ReservationError::Invalid(format!("program {program:?} has no active version to run")));
            }
            insert_reservation(&transaction, Some(program), None, send_at, actor, program)?
        }
        Reserved::Broadcast { title, text, category } => {
            let broadcast = NewBroadcast {
                title,
                text,
                category: category.as_deref(),
                card: None,
                line_only: false,
                program: None,
                expires_on: crate::time::day_in_japan(send_at).add_days(BROADCAST_DAYS),
            };
            reserve_broadcast(&transaction, &broadcast, send_at, actor)?.0
        }
    };
    transaction.commit()?;
    Ok(id)
}

/// A broadcast to reserve: what staff write (`Reserved::Broadcast`), and what a survey
/// adds to it (`survey::create`).
pub(crate) struct NewBroadcast<'a> {
    pub title: &'a str,
    pub text: &'a str,
    pub category: Option<&'a str>,
    /// A card drawn beside the text (a survey's choices), as JSON.
    pub card: Option<String>,
    /// Sent on LINE only, never by e-mail (`outbox::enqueue_broadcast`).
    pub line_only: bool,
    /// Only to those sent a notice of this program between these Japan days.
    pub program: Option<(&'a str, Day, Day)>,
    /// The last day it may still be sent.
    pub expires_on: Day,
}

/// Stores `broadcast` and reserves it for `send_at` inside the caller's transaction;
/// returns the reservation's and the broadcast's ids.
pub(crate) fn reserve_broadcast(
    transaction: &Connection,
    broadcast: &NewBroadcast,
    send_at: DateTime<Utc>,
    actor: &str,
) -> Result<(i64, i64), ReservationError> {
    check_broadcast(broadcast.title, broadcast.text, broadcast.category)?;
    if let Some((program, from, to)) = broadcast.program {
        let known: bool = transaction.query_row(
            "SELECT EXISTS (SELECT 1 FROM plugin_versions WHERE program = ?1)",
            [program],
            |row| row.get(0),
        )?;
        if !known {
            return Err(ReservationError::Invalid(format!("unknown program {program:?}")));
        }
        if from > to {
            return Err(ReservationError::Invalid(format!(
                "the period of program {program:?}'s notices ends on {} before it starts on {}",
                to, from
            )));
        }
    }
    transaction.execute(
        "INSERT INTO broadcasts (title, text, category, card, line_only, program, sent_from, sent_to, expires_on,
             created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        rusqlite::params![
            broadcast.title.trim(),
            broadcast.text.trim(),
            broadcast.category,
            broadcast.card,
            broadcast.line_only,
            broadcast.program.map(|(program, ..)| program),
            broadcast.program.map(|(_, from, _)| from.0),
            broadcast.program.map(|(.., to)| to.0),
            broadcast.expires_on.0,
            actor,
            now_text(),
        ],
    )?;
    let broadcast_id = transaction.last_insert_rowid();
    let id = insert_reservation(
        transaction,
        None,
        Some(broadcast_id),
        send_at,
        actor,
        &format!("broadcast:{broadcast_id}"),
    )?;
    Ok((id, broadcast_id))
}

/// One row of `reserved_sends`, audited under `subject`.
fn insert_reservation(
    transaction: &Connection,
    program: Option<&str>,
    broadcast_id: Option<i64>,
    send_at: DateTime<Utc>,
    actor: &str,
    subject: &str,
) -> Result<i64, ReservationError> {
    transaction.execute(
        "INSERT INTO reserved_sends (program, broadcast_id, send_at, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (program, broadcast_id, send_at.timestamp_millis(), actor, now_text()),
    )?;
    let id = transaction.last_insert_rowid();
    audit(transaction, actor, "reserve-send", subject, &crate::time::format_japan(send_at))?;
    Ok(id)
}

/// A broadcast must have a title and a text LINE accepts, and name a known category if any.
fn check_broadcast(title: &str, text: &str, category: Option<&str>) -> Result<(), ReservationError> {
    if title.trim().is_empty() || text.trim().is_empty() {
        return Err(ReservationError::Invalid("a broadcast needs a title and a text".into()));
    }
    let characters = text.trim().chars().count();
    if characters > TEXT_LIMIT {
        return Err(ReservationError::Invalid(format!(
            "the text has {characters} characters; LINE takes at most {TEXT_LIMIT}"
        )));
    }
    if let Some(category) = category
        && !crate::chat::CATEGORIES.iter().any(|(code, _)| *code == category)
    {
        return Err(ReservationError::Invalid(format!("unknown category {category:?}")));
    }
    Ok(())
}

/// Every reservation, newest first.
pub fn list(connection: &Connection) -> Result<Vec<Reservation>> {
    let mut statement = connection.prepare(
        "SELECT r.id, r.program, r.broadcast_id, b.title, b.category, r.send_at, r.state, r.outcome, r.created_by
         FROM reserved_sends r LEFT JOIN broadcasts b ON b.id = r.broadcast_id ORDER BY r.id DESC LIMIT 500",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(Reservation {
            id: row.get(0)?,
            program: row.get(1)?,
            broadcast_id: row.get(2)?,
            title: row.get(3)?,
            category: row.get(4)?,
            send_at: crate::time::format_japan(DateTime::from_timestamp_millis(row.get(5)?).unwrap_or_default()),
            state: row.get(6)?,
            outcome: row.get(7)?,
            created_by: row.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The program a reservation runs (`None` for a broadcast), for checking who may change it.
pub fn program_of(connection: &Connection, id: i64) -> Result<Option<String>, ReservationError> {
    connection
        .query_row("SELECT program FROM reserved_sends WHERE id = ?1", [id], |row| row.get(0))
        .optional()?
        .ok_or(ReservationError::NotFound(id))
}

/// Cancels a reservation still waiting.
pub fn cancel(connection: &Connection, id: i64, actor: &str) -> Result<(), ReservationError> {
    let state: String = connection
        .query_row("SELECT state FROM reserved_sends WHERE id = ?1", [id], |row| row.get(0))
        .optional()?
        .ok_or(ReservationError::NotFound(id))?;
    if state != "waiting" {
        return Err(ReservationError::AlreadySettled { id, state });
    }
    connection.execute("UPDATE reserved_sends SET state = 'cancelled' WHERE id = ?1", [id])?;
    audit(connection, actor, "cancel-send", &format!("reservation:{id}"), "")?;
    Ok(())
}

/// When the earliest waiting reservation falls due.
pub fn next_due(connection: &Connection) -> Result<Option<DateTime<Utc>>> {
    let at: Option<i64> =
        connection
            .query_row("SELECT min(send_at) FROM reserved_sends WHERE state = 'waiting'", [], |row| row.get(0))?;
    Ok(at.and_then(DateTime::from_timestamp_millis))
}

/// Carries out every reservation due at `now`: runs the program for `today` (evaluated
/// on a read connection, as the scheduler runs programs), or queues the broadcast, and
/// records the outcome. Returns how many were carried out.
pub async fn carry_out_due(
    database: &Database,
    plugins: Arc<Plugins>,
    now: DateTime<Utc>,
    today: Day,
) -> Result<usize> {
    let due: Vec<(i64, Option<String>, Option<i64>)> = database
        .read(move |connection| {
            Ok(connection
                .prepare(
                    "SELECT id, program, broadcast_id FROM reserved_sends WHERE state = 'waiting' AND send_at <= ?1
                     ORDER BY send_at, id",
                )?
                .query_map([now.timestamp_millis()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<Result<_, _>>()?)
        })
        .await?;
    for (id, program, broadcast_id) in due.iter().cloned() {
        let outcome = match (program, broadcast_id) {
            (Some(program), _) => match database.read(move |connection| active_version(connection, &program)).await? {
                Some(version) => {
                    let run =
                        crate::evaluate::run_program_beside_writes(database, plugins.clone(), version, today).await?;
                    match run.error {
                        Some(error) => format!("the program failed: {error}"),
                        None => format!("{} notices, {} new", run.notices, run.new_notices),
                    }
                }
                None => "the program has no active version any more".to_owned(),
            },
            // The table's CHECK makes a reservation without a program name a broadcast.
            (None, broadcast_id) => {
                let broadcast_id = broadcast_id
                    .with_context(|| format!("reservation {id} names neither a program nor a broadcast"))?;
                let queued = database
                    .write(move |connection| crate::outbox::enqueue_broadcast(connection, broadcast_id))
                    .await?;
                format!("{queued} deliveries queued")
            }
        };
        let recorded = outcome.clone();
        database
            .write(move |connection| {
                Ok(connection
                    .execute("UPDATE reserved_sends SET state = 'done', outcome = ?2 WHERE id = ?1", (id, &recorded))?)
            })
            .await
            .with_context(|| format!("cannot record reservation {id}"))?;
        tracing::info!(reservation = id, %outcome, "reserved send carried out");
    }
    Ok(due.len())
}
