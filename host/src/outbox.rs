//! The outbox: due notices of registered residents become deliveries, each with its retry
//! key written before any request goes out, and are then sent and marked.

use std::collections::HashMap;

use anyhow::Result;
use oshirase_sdk::{Day, Relationship};
use rusqlite::Connection;

use crate::channel::SendOutcome;
use crate::channel::line::{LineClient, aggregation_unit};
use crate::database::{Database, now_text};
use crate::message::render;
use crate::registry::{Manifest, active_versions};
use crate::retry::{Next, RetryPolicy};

/// Up to this age a notice about a child goes to a registered parent in the household.
const GUARDIAN_AGE: u32 = 18;

/// Turns every notice due on `today` into a LINE delivery for each registered recipient:
/// the resident, or for a minor without their own registration, the registered heads and
/// spouses of the household; for a due date or birth date registered in the chat
/// (`self:<id>`), the LINE user who registered it while they follow the account. A
/// recipient who muted the program's category gets nothing (until they unmute it while
/// the notice is still due). Returns how many deliveries were queued.
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
                   AND NOT EXISTS (SELECT 1 FROM registrations own WHERE own.resident_id = due.resident_id AND own.active = 1)
                 UNION ALL
                 SELECT due.*, s.line_user_id FROM due
                 JOIN self_registrations s ON due.resident_id = 'self:' || s.id
                 JOIN line_users u ON u.line_user_id = s.line_user_id AND u.following = 1)
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
        // Muted categories by LINE user: few users mute anything, so this stays small.
        let mut muted: HashMap<String, Vec<String>> = HashMap::new();
        let mut statement = transaction.prepare("SELECT line_user_id, category FROM muted_categories")?;
        let mut mutes = statement.query([])?;
        while let Some(row) = mutes.next()? {
            muted.entry(row.get(0)?).or_default().push(row.get(1)?);
        }
        let mut insert = transaction.prepare(
            "INSERT INTO deliveries (notice_id, channel, address, text, retry_key, state, created_at) VALUES (?1, 'line', ?2, ?3, ?4, 'queued', ?5)",
        )?;
        for (notice_id, program, occasion, expires_on, line_user_id) in rows {
            let Some(manifest) = manifests.get(&program) else { continue };
            if muted.get(&line_user_id).is_some_and(|categories| categories.contains(&manifest.category)) {
                continue;
            }
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

/// What one pass over the outbox did: how each delivery it tried ended, and how many
/// requests that took.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SendSummary {
    pub sent: usize,
    /// Still to be retried by a later pass.
    pub retryable: usize,
    pub failed: usize,
    pub requests: usize,
    /// Deliveries left to a later pass at its end (retries not yet due included).
    pub waiting: usize,
}

/// Milliseconds since the epoch, the unit of `deliveries.next_attempt_at`.
fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

/// Sends every delivery that is due — queued, retryable and due again, or left `sending`
/// by a crash — reusing each delivery's retry key, and retries what LINE did not accept as
/// `policy` says, waiting up to `policy.linger` for retries to fall due. Each delivery is
/// marked `sending` before its request and its outcome recorded before the next request.
/// Deliveries whose notice expired before `today` are marked expired instead: a late
/// notice is worse than none.
pub async fn send_queued(database: &Database, line: &LineClient, today: Day, policy: &RetryPolicy) -> Result<SendSummary> {
    database
        .call(move |connection| {
            connection.execute(
                "UPDATE deliveries SET state = 'expired' WHERE state IN ('queued', 'sending', 'failed-retryable')
                 AND notice_id IN (SELECT id FROM notices WHERE expires_on < ?1)",
                [today.0],
            )?;
            Ok(())
        })
        .await?;
    let deadline = std::time::Instant::now() + policy.linger;
    let mut outcomes: HashMap<i64, Next> = HashMap::new();
    let mut requests = 0;
    loop {
        let now = now_millis();
        let (due, next_due_at) = database.call(move |connection| due_deliveries(connection, now)).await?;
        if due.is_empty() {
            // Nothing due now: wait for the earliest retry if it falls due within the pass.
            let Some(at) = next_due_at else { break };
            let wait = std::time::Duration::from_millis((at - now).max(0) as u64);
            if std::time::Instant::now() + wait > deadline {
                break;
            }
            tokio::time::sleep(wait).await;
            continue;
        }
        for delivery in due {
            let id = delivery.id;
            let attempts = database.call(move |connection| mark_sending(connection, id)).await?;
            requests += 1;
            let outcome = line.push(&delivery.address, &delivery.text, &delivery.retry_key, &aggregation_unit(&delivery.program)).await;
            let next = policy.next(&outcome, attempts, rand::random::<f64>());
            let error = match outcome {
                SendOutcome::Retryable(error) | SendOutcome::Permanent(error) => {
                    tracing::warn!(delivery = id, program = %delivery.program, attempts, %error, "delivery not accepted");
                    if next == Next::GiveUp { format!("gave up after attempt {attempts}: {error}") } else { error }
                }
                SendOutcome::Accepted | SendOutcome::AlreadyAccepted => String::new(),
            };
            let recorded = next.clone();
            database.call(move |connection| record_outcome(connection, id, &recorded, &error)).await?;
            outcomes.insert(id, next);
        }
    }
    let waiting: i64 = database
        .call(|connection| Ok(connection.query_row("SELECT count(*) FROM deliveries WHERE state IN ('queued', 'sending', 'failed-retryable')", [], |row| row.get(0))?))
        .await?;
    let mut summary = SendSummary { requests, waiting: waiting as usize, ..SendSummary::default() };
    for next in outcomes.values() {
        match next {
            Next::Delivered => summary.sent += 1,
            Next::RetryAfter(_) => summary.retryable += 1,
            Next::GiveUp => summary.failed += 1,
        }
    }
    Ok(summary)
}

/// The deliveries due at `now` (milliseconds), and when the earliest of the others that
/// wait for a retry falls due.
fn due_deliveries(connection: &mut Connection, now: i64) -> Result<(Vec<Pending>, Option<i64>)> {
    let mut statement = connection.prepare(
        "SELECT d.id, n.program, d.address, d.text, d.retry_key FROM deliveries d JOIN notices n ON n.id = d.notice_id
         WHERE d.state IN ('queued', 'sending', 'failed-retryable') AND coalesce(d.next_attempt_at, 0) <= ?1 ORDER BY d.id",
    )?;
    let rows = statement.query_map([now], |row| Ok(Pending { id: row.get(0)?, program: row.get(1)?, address: row.get(2)?, text: row.get(3)?, retry_key: row.get(4)? }))?;
    let due = rows.collect::<Result<Vec<_>, _>>()?;
    let next_due_at = connection.query_row("SELECT min(next_attempt_at) FROM deliveries WHERE state = 'failed-retryable'", [], |row| row.get(0))?;
    Ok((due, next_due_at))
}

/// Marks a delivery `sending` and counts the attempt, before its request goes out; returns
/// the attempts so far, this one included.
fn mark_sending(connection: &mut Connection, id: i64) -> Result<u32> {
    Ok(connection.query_row(
        "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, next_attempt_at = NULL WHERE id = ?1 RETURNING attempts",
        [id],
        |row| row.get(0),
    )?)
}

/// Records what became of an attempt.
fn record_outcome(connection: &mut Connection, id: i64, next: &Next, error: &str) -> Result<()> {
    let (state, next_attempt_at, error) = match next {
        Next::Delivered => ("sent", None, String::new()),
        Next::RetryAfter(delay) => ("failed-retryable", Some(now_millis() + delay.as_millis() as i64), error.to_string()),
        Next::GiveUp => ("failed-permanent", None, error.to_string()),
    };
    connection.execute(
        "UPDATE deliveries SET state = ?2, next_attempt_at = ?3, last_error = ?4, sent_at = CASE WHEN ?2 = 'sent' THEN ?5 ELSE sent_at END WHERE id = ?1",
        (id, state, next_attempt_at, error, now_text()),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::channel::line::LineConfig;

    /// How the scripted LINE answers one request.
    #[derive(Clone, Copy, Debug)]
    enum Answer {
        Status(u16),
        /// No answer within the client's timeout.
        Silence,
    }
    use Answer::{Silence, Status};

    /// The client's timeout; a silent answer waits four times as long.
    const TIMEOUT: Duration = Duration::from_millis(250);

    /// A LINE stand-in on port 0 that answers from a script and records each retry key.
    #[derive(Clone, Default)]
    struct Scripted {
        answers: Arc<Mutex<VecDeque<Answer>>>,
        retry_keys: Arc<Mutex<Vec<String>>>,
    }

    async fn scripted_push(axum::extract::State(line): axum::extract::State<Scripted>, headers: axum::http::HeaderMap) -> axum::http::StatusCode {
        line.retry_keys.lock().unwrap().push(headers["x-line-retry-key"].to_str().unwrap().to_string());
        let answer = line.answers.lock().unwrap().pop_front().expect("a request beyond the script");
        match answer {
            Status(status) => axum::http::StatusCode::from_u16(status).unwrap(),
            Silence => {
                tokio::time::sleep(TIMEOUT * 4).await;
                axum::http::StatusCode::OK
            }
        }
    }

    struct Case {
        what: &'static str,
        /// The state the delivery is in before the pass (`sending` after a crash).
        state: &'static str,
        answers: Vec<Answer>,
        /// The delay before a first retry, and how long the pass waits for retries.
        first_delay: Duration,
        linger: Duration,
        expected_state: &'static str,
    }

    fn case(what: &'static str, answers: &[Answer], expected_state: &'static str) -> Case {
        Case { what, state: "queued", answers: answers.to_vec(), first_delay: Duration::from_millis(2), linger: Duration::from_secs(2), expected_state }
    }

    /// Runs one pass per case over a single delivery against its script, and checks the
    /// delivery's final state, that every scripted answer was asked for, and that every
    /// request carried the delivery's own retry key.
    async fn check(cases: Vec<Case>) {
        let mut failures = Vec::new();
        for case in cases {
            let directory = tempfile::tempdir().unwrap();
            let database = Database::open(&directory.path().join("oshirase.db")).unwrap();
            let state = case.state;
            database
                .call(move |connection| {
                    connection.execute_batch(
                        "INSERT INTO plugin_versions (id, program, sha256, wasm, manifest, published_by, published_at) VALUES (1, 'vaccine-mr', '', x'', '{}', 'test', '');
                         INSERT INTO runs (id, program, version_id, snapshot_id, run_on, started_at, outcome) VALUES (1, 'vaccine-mr', 1, 1, 0, '', 'succeeded');
                         INSERT INTO notices (id, program, resident_id, occasion, send_on, expires_on, reason, run_id) VALUES (1, 'vaccine-mr', '0101', 'first', 0, 100000, '', 1);",
                    )?;
                    connection.execute(
                        "INSERT INTO deliveries (notice_id, channel, address, text, retry_key, state, created_at) VALUES (1, 'line', 'U00000000000000000000000000000001', 'お知らせ', '123e4567-e89b-12d3-a456-426614174000', ?1, '')",
                        [state],
                    )?;
                    Ok(())
                })
                .await
                .unwrap();
            let line = Scripted { answers: Arc::new(Mutex::new(case.answers.iter().copied().collect())), ..Scripted::default() };
            let router = axum::Router::new().route("/v2/bot/message/push", axum::routing::post(scripted_push)).with_state(line.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let server = tokio::spawn(async move { axum::serve(listener, router).await });
            let client = LineClient::new(LineConfig { timeout: TIMEOUT, ..LineConfig::new(format!("http://{address}"), "token") }).unwrap();
            let policy = RetryPolicy { max_attempts: 3, first_delay: case.first_delay, max_delay: Duration::from_secs(60), linger: case.linger };
            let summary = send_queued(&database, &client, Day(0), &policy).await.unwrap();
            server.abort();
            let (state, attempts): (String, i64) = database.call(|connection| Ok(connection.query_row("SELECT state, attempts FROM deliveries", [], |row| Ok((row.get(0)?, row.get(1)?)))?)).await.unwrap();
            let keys = line.retry_keys.lock().unwrap().clone();
            let left = line.answers.lock().unwrap().len();
            if state != case.expected_state || left != 0 || attempts as usize != keys.len() || summary.requests != keys.len() {
                failures.push(format!("{}: expected {} with the whole script used, got {state} after {attempts} attempts, {left} answers left, {summary:?}", case.what, case.expected_state));
            }
            if keys.iter().any(|key| key != "123e4567-e89b-12d3-a456-426614174000") {
                failures.push(format!("{}: a request carried another retry key: {keys:?}", case.what));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[tokio::test]
    async fn deliveries_are_retried_with_the_same_key_only_when_it_can_help() {
        check(vec![
            case("accepted at once", &[Status(200)], "sent"),
            case("500 and 429, then accepted", &[Status(500), Status(429), Status(200)], "sent"),
            case("a timeout, then 409: the first was delivered", &[Silence, Status(409)], "sent"),
            case("400 is not retried", &[Status(400)], "failed-permanent"),
            case("401 is not retried", &[Status(401)], "failed-permanent"),
            case("403 is not retried", &[Status(403)], "failed-permanent"),
            case("503 on every attempt gives up after three", &[Status(503), Status(503), Status(503)], "failed-permanent"),
            Case { first_delay: Duration::from_secs(60), linger: Duration::from_secs(1), ..case("a retry not due within the pass waits for the next", &[Status(500)], "failed-retryable") },
            Case { state: "sending", ..case("left sending by a crash: sent again, LINE had it", &[Status(409)], "sent") },
            Case { state: "failed-retryable", ..case("a retry left by an earlier pass", &[Status(200)], "sent") },
        ])
        .await;
    }

    #[test]
    fn the_latest_adult_birth_day_follows_the_age_law() {
        let today = Day::parse_iso("2026-04-01").unwrap();
        // Born 2008-04-02: reaches 18 on 2026-04-01, so is an adult on that day.
        assert_eq!(latest_birth_day_of_age(18, today), Day::parse_iso("2008-04-02").unwrap());
    }
}
