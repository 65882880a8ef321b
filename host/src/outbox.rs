//! The outbox: due notices of registered residents become deliveries, each with its retry
//! key written before any request goes out, and are then sent and marked.

use std::collections::HashMap;

use anyhow::Result;
use oshirase_sdk::{Day, Relationship};
use rusqlite::Connection;

use crate::channel::line::{LineClient, PushOutcome, aggregation_unit};
use crate::database::{Database, now_text};
use crate::message::render;
use crate::registry::{Manifest, active_versions};

/// Up to this age a notice about a child goes to a registered parent in the household.
const GUARDIAN_AGE: u32 = 18;

/// Turns every notice due on `today` into a LINE delivery for each registered recipient:
/// the resident, or for a minor without their own registration, the registered heads and
/// spouses of the household. Returns how many deliveries were queued.
pub fn enqueue_due(connection: &mut Connection, today: Day) -> Result<usize> {
    let Some(snapshot_id) = crate::snapshot::active(connection)? else {
        return Ok(0);
    };
    let manifests: HashMap<String, Manifest> = active_versions(connection)?.into_iter().map(|version| (version.program, version.manifest)).collect();
    let youngest_adult_birth = latest_birth_day_of_age(GUARDIAN_AGE, today);
    let transaction = connection.transaction()?;
    let mut queued = 0;
    {
        // Two kinds of recipient: the resident themselves, and for a minor without their own
        // registration, the registered heads and spouses of the household ("guardians",
        // gathered once so that each notice looks its household up in an index).
        let mut due = transaction.prepare(
            "WITH due AS (
                 SELECT n.id, n.program, n.occasion, n.expires_on, n.resident_id FROM notices n
                 WHERE n.send_on <= ?2 AND n.expires_on >= ?2),
             guardians AS MATERIALIZED (
                 SELECT r.household_id, reg.line_user_id FROM registrations reg
                 JOIN residents r ON r.snapshot_id = ?1 AND r.resident_id = reg.resident_id
                 WHERE reg.active = 1 AND reg.line_user_id IS NOT NULL AND r.relationship IN (?4, ?5)),
             recipients AS (
                 SELECT due.*, reg.line_user_id FROM due
                 JOIN residents r ON r.snapshot_id = ?1 AND r.resident_id = due.resident_id
                 JOIN registrations reg ON reg.resident_id = due.resident_id AND reg.active = 1 AND reg.line_user_id IS NOT NULL
                 UNION ALL
                 SELECT due.*, g.line_user_id FROM due
                 JOIN residents r ON r.snapshot_id = ?1 AND r.resident_id = due.resident_id
                 JOIN guardians g ON g.household_id = r.household_id
                 WHERE r.birth_day > ?3
                   AND NOT EXISTS (SELECT 1 FROM registrations own WHERE own.resident_id = due.resident_id AND own.active = 1))
             SELECT id, program, occasion, expires_on, line_user_id FROM recipients
             WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notice_id = recipients.id AND d.channel = 'line' AND d.address = recipients.line_user_id)
             ORDER BY id, line_user_id",
        )?;
        let rows: Vec<(i64, String, String, i32, String)> = due
            .query_map(
                (snapshot_id, today.0, youngest_adult_birth.0, Relationship::Head.code(), Relationship::Spouse.code()),
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
            )?
            .collect::<Result<_, _>>()?;
        let mut insert = transaction.prepare(
            "INSERT INTO deliveries (notice_id, channel, address, text, retry_key, state, created_at) VALUES (?1, 'line', ?2, ?3, ?4, 'queued', ?5)",
        )?;
        for (notice_id, program, occasion, expires_on, line_user_id) in rows {
            let Some(manifest) = manifests.get(&program) else { continue };
            let Some(template) = manifest.occasion(&occasion) else { continue };
            let text = render(&template.template, &manifest.name, &manifest.contact, Day(expires_on));
            queued += insert.execute((notice_id, line_user_id, text, uuid::Uuid::new_v4().to_string(), now_text()))?;
        }
    }
    transaction.commit()?;
    Ok(queued)
}

/// The latest birth day of someone who has reached `years` by law on `today`; anyone born
/// after it is younger.
fn latest_birth_day_of_age(years: u32, today: Day) -> Day {
    let mut birth = today.add_months_clamped(-12 * years as i32);
    while birth.age_on(today) < years {
        birth = birth.add_days(-1);
    }
    while birth.add_days(1).age_on(today) >= years {
        birth = birth.add_days(1);
    }
    birth
}

/// A delivery waiting to be sent.
struct Pending {
    id: i64,
    program: String,
    address: String,
    text: String,
    retry_key: String,
}

/// What one pass over the outbox did.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SendSummary {
    pub sent: usize,
    pub retryable: usize,
    pub failed: usize,
}

/// Sends every queued or retryable delivery once, reusing each delivery's retry key, and
/// records the outcome of each before the next is sent. Deliveries whose notice expired
/// before `today` are marked expired instead: a late notice is worse than none.
pub async fn send_queued(database: &Database, line: &LineClient, today: Day) -> Result<SendSummary> {
    let pending = database
        .call(move |connection| {
            connection.execute(
                "UPDATE deliveries SET state = 'expired' WHERE state IN ('queued', 'failed-retryable')
                 AND notice_id IN (SELECT id FROM notices WHERE expires_on < ?1)",
                [today.0],
            )?;
            let mut statement = connection.prepare(
                "SELECT d.id, n.program, d.address, d.text, d.retry_key FROM deliveries d JOIN notices n ON n.id = d.notice_id
                 WHERE d.state IN ('queued', 'failed-retryable') ORDER BY d.id",
            )?;
            let rows = statement.query_map([], |row| Ok(Pending { id: row.get(0)?, program: row.get(1)?, address: row.get(2)?, text: row.get(3)?, retry_key: row.get(4)? }))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let mut summary = SendSummary::default();
    for delivery in pending {
        let outcome = line.push(&delivery.address, &delivery.text, &delivery.retry_key, &aggregation_unit(&delivery.program)).await;
        let (state, error) = match &outcome {
            PushOutcome::Accepted | PushOutcome::AlreadyAccepted => {
                summary.sent += 1;
                ("sent", String::new())
            }
            PushOutcome::Retryable(error) => {
                summary.retryable += 1;
                ("failed-retryable", error.clone())
            }
            PushOutcome::Permanent(error) => {
                summary.failed += 1;
                ("failed-permanent", error.clone())
            }
        };
        if !error.is_empty() {
            tracing::warn!(delivery = delivery.id, program = %delivery.program, %error, "delivery not accepted");
        }
        database
            .call(move |connection| {
                connection.execute(
                    "UPDATE deliveries SET state = ?2, attempts = attempts + 1, last_error = ?3, sent_at = CASE WHEN ?2 = 'sent' THEN ?4 ELSE sent_at END WHERE id = ?1",
                    (delivery.id, state, error, now_text()),
                )?;
                Ok(())
            })
            .await?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_adult_birth_day_follows_the_age_law() {
        let today = Day::parse_iso("2026-04-01").unwrap();
        // Born 2008-04-02: reaches 18 on 2026-04-01, so is an adult on that day.
        assert_eq!(latest_birth_day_of_age(18, today), Day::parse_iso("2008-04-02").unwrap());
    }
}
