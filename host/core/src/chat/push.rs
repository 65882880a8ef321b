//! Messages the chat pushes to a LINE user on its own, outside any reply: what staff
//! decided about their application (approved: a postcard is on its way; rejected: please
//! contact the window). They are not notices (a delivery belongs to a notice of a
//! program about a resident, and an applicant is nobody's resident yet), so they wait in
//! `chat_pushes`, queued in the decision's transaction, and the webhook's worker sends
//! them under their stored retry key, retrying while LINE cannot take them, like the
//! outbox: nothing is lost when LINE is briefly down, nothing arrives twice. The text is
//! made when sent and names no one.

use std::time::Duration;

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension};

use super::ChatSettings;
use crate::channel::line::LineClient;
use crate::database::Database;
use crate::retry::{Next, RetryPolicy};
use crate::time::now_text;

/// A push whose first attempt is older than this is not sent again: LINE keeps retry keys
/// for 24 hours, so a resend could arrive twice.
const RETRY_KEY_MILLIS: i64 = 23 * 3_600_000;
/// The customAggregationUnits name of these pushes in LINE's statistics.
const AGGREGATION_UNIT: &str = "chat";
/// Who residents are told to ask when the server was given no contact.
const DEFAULT_CONTACT: &str = "お住まいの区役所の窓口";

/// What a push says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ApplicationApproved,
    ApplicationRejected,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::ApplicationApproved => "application-approved",
            Kind::ApplicationRejected => "application-rejected",
        }
    }

    /// The text, in short friendly Japanese, without personal data or reasons.
    pub fn text(self, settings: &ChatSettings) -> String {
        match self {
            Kind::ApplicationApproved => "お申し込みを確認しました。\
                                          登録番号を書いたはがきを、\
                                          住民票の住所へお送りします。届いたら、\
                                          その番号をこのトークに送ってください。"
                .to_string(),
            Kind::ApplicationRejected => format!(
                "利用のお申し込みについて、\
                 市の記録と照らし合わせて確認することができませんでした。\
                 お手数ですが、{}にお問い合わせください。",
                settings.contact.as_deref().unwrap_or(DEFAULT_CONTACT)
            ),
        }
    }
}

/// Queues a push to `line_user_id` within the caller's transaction.
pub fn queue(connection: &Connection, line_user_id: &str, kind: Kind) -> Result<()> {
    connection.execute(
        "INSERT INTO chat_pushes (line_user_id, kind, retry_key, created_at) VALUES (?1, ?2, ?3, ?4)",
        (line_user_id, kind.as_str(), uuid::Uuid::new_v4().to_string(), now_text()),
    )?;
    Ok(())
}

/// A push due now, its attempt already counted.
struct Due {
    id: i64,
    user: String,
    kind: Kind,
    retry_key: String,
    attempts: u32,
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

/// The oldest queued push whose time has come, with its attempt counted before it is sent
/// (so a crash in flight resends it under the same key); pushes to users who blocked the
/// account, or first tried too long ago, fail on the way.
fn next_due(connection: &mut Connection, now_millis: i64) -> Result<Option<Due>> {
    let transaction = connection.transaction()?;
    loop {
        // (id, user, kind, retry key, attempts, first attempt, whether the user follows)
        type QueuedPush = (i64, String, String, String, u32, Option<i64>, Option<i64>);
        let row: Option<QueuedPush> = transaction
            .query_row(
                "SELECT p.id, p.line_user_id, p.kind, p.retry_key, p.attempts, p.first_attempt_millis, u.following
                 FROM chat_pushes p
                 LEFT JOIN line_users u ON u.line_user_id = p.line_user_id
                 WHERE p.state = 'queued' AND coalesce(p.next_attempt_millis, 0) <= ?1 ORDER BY p.id LIMIT 1",
                [now_millis],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?)),
            )
            .optional()?;
        let Some((id, user, kind, retry_key, attempts, first_attempt, following)) = row else {
            transaction.commit()?;
            return Ok(None);
        };
        let failure = match (following, first_attempt) {
            (Some(0), _) => Some("unfollowed"),
            (_, Some(first)) if now_millis - first > RETRY_KEY_MILLIS => {
                Some("first tried more than 23 h ago; LINE may have forgotten its retry key")
            }
            _ => None,
        };
        if let Some(reason) = failure {
            transaction.execute(
                "UPDATE chat_pushes SET state = 'failed', last_error = ?2, next_attempt_millis = NULL WHERE id = ?1",
                (id, reason),
            )?;
            continue;
        }
        transaction.execute(
            "UPDATE chat_pushes SET attempts = attempts + 1, first_attempt_millis = coalesce(first_attempt_millis, ?2)
             WHERE id = ?1",
            (id, now_millis),
        )?;
        transaction.commit()?;
        let kind = if kind == Kind::ApplicationApproved.as_str() {
            Kind::ApplicationApproved
        } else {
            Kind::ApplicationRejected
        };
        return Ok(Some(Due { id, user, kind, retry_key, attempts: attempts + 1 }));
    }
}

/// Sends every push that is due, one at a time; returns how long until the next retry
/// falls due, if one waits.
pub async fn send_due(
    database: &Database,
    line: &LineClient,
    settings: &ChatSettings,
    policy: &RetryPolicy,
) -> Result<Option<Duration>> {
    loop {
        let Some(due) = database.write(|connection| next_due(connection, now_millis())).await? else {
            break;
        };
        let outcome = line
            .send(
                std::slice::from_ref(&due.user),
                &[serde_json::json!({ "type": "text", "text": due.kind.text(settings) })],
                &due.retry_key,
                AGGREGATION_UNIT,
            )
            .await;
        let next = policy.next(&outcome, due.attempts, rand::random::<f64>());
        let error = match &outcome {
            crate::channel::SendOutcome::Retryable(error) | crate::channel::SendOutcome::Permanent(error) => {
                error.clone()
            }
            _ => String::new(),
        };
        if !error.is_empty() {
            tracing::warn!(push = due.id, %error, "a chat push was not accepted");
        }
        database
            .write(move |connection| {
                match next {
                    Next::Delivered => connection.execute(
                        "UPDATE chat_pushes
                         SET state = 'sent', sent_at = ?2, last_error = '', next_attempt_millis = NULL WHERE id = ?1",
                        (due.id, now_text()),
                    )?,
                    Next::RetryAfter(delay) => connection.execute(
                        "UPDATE chat_pushes SET last_error = ?2, next_attempt_millis = ?3 WHERE id = ?1",
                        (due.id, &error, now_millis() + delay.as_millis() as i64),
                    )?,
                    Next::GiveUp => connection.execute(
                        "UPDATE chat_pushes SET state = 'failed', last_error = ?2, next_attempt_millis = NULL
                         WHERE id = ?1",
                        (due.id, &error),
                    )?,
                };
                Ok(())
            })
            .await?;
    }
    let next: Option<i64> = database
        .write(|connection| {
            Ok(connection.query_row(
                "SELECT min(next_attempt_millis) FROM chat_pushes WHERE state = 'queued'",
                [],
                |row| row.get(0),
            )?)
        })
        .await?;
    Ok(next.map(|at| Duration::from_millis((at - now_millis()).max(0) as u64)))
}
