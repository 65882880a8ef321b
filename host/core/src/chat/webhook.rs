//! The LINE webhook's events, whatever serves `POST /webhook/line`: checks `X-Line-Signature` (base64 HMAC-SHA256
//! of the raw body with the channel secret, compared in constant time) and answers 401,
//! storing nothing, when it does not match; otherwise stores every event under its unique
//! `webhookEventId` (a redelivery of an event already stored is ignored), answers 200 at
//! once, and wakes a worker that processes the stored events in order (`chat::handle`)
//! and replies. An event is marked processed in the transaction that applies it, so a
//! crash leaves it pending for the next start, and it never takes effect twice. The
//! worker also e-mails the chat's confirmation codes (through the mail channel, when the
//! server has one) and sends the chat's own pushes (`chat::push`).

use std::sync::Arc;

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use crate::channel::line::ReplyMessage;
use crate::channel::mail::MailClient;
use crate::channel::{Channels, SendOutcome};
use crate::chat::email::CodeMail;
use crate::chat::{Answer, ChatSettings};
use crate::database::Database;
use crate::retry::{Next, RetryPolicy};
use crate::time::{now_text, text_in_days};

/// The webhook's configuration: the channel secret, and how to wake its worker.
#[derive(Clone)]
pub struct Webhook {
    secret: Arc<[u8]>,
    wake: Arc<tokio::sync::Notify>,
    settings: Arc<ChatSettings>,
}

impl Webhook {
    pub fn new(channel_secret: &str, settings: ChatSettings) -> Result<Webhook> {
        anyhow::ensure!(!channel_secret.trim().is_empty(), "the LINE channel secret is empty");
        Ok(Webhook {
            secret: channel_secret.trim().as_bytes().into(),
            wake: Arc::new(tokio::sync::Notify::new()),
            settings: Arc::new(settings),
        })
    }

    /// Whether `header` is the signature of `body`; the comparison takes the same time
    /// whatever the bytes (`verify_slice`).
    fn verify(&self, body: &[u8], header: &str) -> bool {
        crate::hashing::line_signature_matches(&self.secret, body, header)
    }

    /// The webhook of `serve` and the demo: checked with `channel_secret`, its events
    /// processed by a worker that replies through `channels.line` and e-mails confirmation
    /// codes through `channels.mail` (without one, the chat says e-mail is not offered).
    pub fn with_worker(
        channel_secret: &str,
        settings: ChatSettings,
        database: Database,
        channels: Channels,
    ) -> Result<Webhook> {
        let webhook = Webhook::new(channel_secret, settings)?;
        webhook.start_worker(database, channels);
        Ok(webhook)
    }

    /// Starts the worker: it processes what is pending (events left by a crash included)
    /// and sends the chat's due pushes, then waits to be woken by the next request or
    /// decision, or until a push's retry falls due.
    pub fn start_worker(&self, database: Database, channels: Channels) -> tokio::task::JoinHandle<()> {
        let (wake, settings) = (self.wake.clone(), self.settings.clone());
        tokio::spawn(async move {
            loop {
                if let Err(error) = process_pending(&database, &channels, &settings).await {
                    tracing::warn!(error = %format!("{error:#}"), "webhook events could not be processed");
                }
                let retry =
                    match crate::chat::push::send_due(&database, &channels.line, &settings, &RetryPolicy::default())
                        .await
                    {
                        Ok(retry) => retry,
                        Err(error) => {
                            tracing::warn!(error = %format!("{error:#}"), "chat pushes could not be sent");
                            Some(PUSH_FAILURE_PAUSE)
                        }
                    };
                match retry {
                    None => wake.notified().await,
                    Some(delay) => {
                        tokio::select! {
                            () = wake.notified() => {}
                            () = tokio::time::sleep(delay) => {}
                        }
                    }
                }
            }
        })
    }

    /// Wakes the worker, for a push queued outside the webhook (a decision of staff).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// How long the worker waits before trying the pushes again when the database failed.
const PUSH_FAILURE_PAUSE: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a webhook request was refused; nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the X-Line-Signature header is missing or does not match the body")]
    Unsigned,
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl Webhook {
    /// Takes a webhook request: checks its `signature` (the `X-Line-Signature` header),
    /// stores its events not seen before and wakes the worker. Returns how many were new.
    pub async fn receive(
        &self,
        database: &Database,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<usize, WebhookError> {
        if !signature.is_some_and(|header| self.verify(body, header)) {
            return Err(WebhookError::Unsigned);
        }
        let events = read_events(body).map_err(WebhookError::Malformed)?;
        let new = database.write(move |connection| store(connection, &events)).await?;
        self.wake();
        Ok(new)
    }
}

/// The events of a request body (`CallbackRequest` of `webhook.yml`) as (webhookEventId,
/// the event as JSON text); a body that is not one says where.
fn read_events(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let request: Value =
        serde_json::from_slice(body).map_err(|error| format!("the webhook body is not JSON: {error}"))?;
    let events = request.get("events").and_then(Value::as_array).ok_or("the webhook body has no events array")?;
    events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let id = event
                .get("webhookEventId")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .ok_or(format!("events[{index}].webhookEventId is missing"))?;
            event.get("type").and_then(Value::as_str).ok_or(format!("events[{index}].type is missing"))?;
            Ok((id.to_string(), event.to_string()))
        })
        .collect()
}

/// How long processed events are kept, so that a late redelivery is still recognized.
const KEEP_EVENTS_DAYS: i64 = 30;

/// Stores the events not seen before, in one transaction; returns how many were new.
fn store(connection: &mut Connection, events: &[(String, String)]) -> Result<usize> {
    let transaction = connection.transaction()?;
    let mut new = 0;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO webhook_events (webhook_event_id, event, received_at)
             VALUES (?1, ?2, ?3) ON CONFLICT (webhook_event_id) DO NOTHING",
        )?;
        let now = now_text();
        for (id, event) in events {
            new += insert.execute((id, event, &now))?;
        }
    }
    transaction.commit()?;
    Ok(new)
}

/// A processed event's answer, to be sent after its transaction committed.
struct Processed {
    reply_token: Option<String>,
    answer: Answer,
}

/// Processes every pending event in the order received and sends their replies; returns
/// how many it processed. Processed events older than `KEEP_EVENTS_DAYS` are forgotten
/// first.
pub async fn process_pending(database: &Database, channels: &Channels, settings: &Arc<ChatSettings>) -> Result<usize> {
    database
        .write(|connection| {
            Ok(connection.execute(
                "DELETE FROM webhook_events WHERE state = 'done' AND received_at < ?1",
                [text_in_days(-KEEP_EVENTS_DAYS)],
            )?)
        })
        .await?;
    let mut processed = 0;
    loop {
        let now_millis =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
        let today = crate::time::today_in_japan();
        let settings = settings.clone();
        let mail_available = channels.mail.is_some();
        let Some(next) = database
            .write(move |connection| process_next(connection, &settings, now_millis, today, mail_available))
            .await?
        else {
            return Ok(processed);
        };
        processed += 1;
        let replies = match next.answer {
            Answer::Replies(replies) => replies,
            Answer::SendCode(code) => {
                send_code(database, channels.mail.as_ref().map(|mail| &mail.client), code).await?
            }
        };
        // LINE's webhook check sends a reply token of zeros that cannot be replied to.
        if let Some(token) = next.reply_token.filter(|token| token.bytes().any(|byte| byte != b'0'))
            && !replies.is_empty()
        {
            match channels.line.reply(&token, &replies).await {
                SendOutcome::Accepted | SendOutcome::AlreadyAccepted => {}
                SendOutcome::Retryable(error) | SendOutcome::Permanent(error) => {
                    tracing::warn!(%error, "a chat reply was not accepted")
                }
            }
        }
    }
}

/// How long the worker keeps trying to e-mail a code, all attempts together, so that the
/// reply still goes out within the minute a reply token works.
const CODE_MAIL_BUDGET: std::time::Duration = std::time::Duration::from_secs(40);

/// E-mails a confirmation code, retrying what is worth retrying (the mail channel's 4xx,
/// timeouts, refused connections) with backoff under the same `Message-ID` within
/// `CODE_MAIL_BUDGET`; a code that could not be sent is used up. Returns the reply that
/// says which.
async fn send_code(database: &Database, mail: Option<&MailClient>, code: CodeMail) -> Result<Vec<ReplyMessage>> {
    let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
    let deadline = tokio::time::Instant::now() + CODE_MAIL_BUDGET;
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        let outcome = match mail {
            None => SendOutcome::Permanent("no mail server is configured".into()),
            Some(mail) => tokio::time::timeout_at(
                deadline,
                mail.send(&code.to, CodeMail::SUBJECT, &code.body(), &code.message_id),
            )
            .await
            .unwrap_or_else(|_| {
                SendOutcome::Retryable(format!(
                    "the code e-mail did not go out within {} s",
                    CODE_MAIL_BUDGET.as_secs()
                ))
            }),
        };
        match policy.next(&outcome, attempts, rand::random::<f64>()) {
            Next::RetryAfter(delay) if tokio::time::Instant::now() + delay < deadline => {
                tokio::time::sleep(delay).await
            }
            _ => break outcome,
        }
    };
    if let SendOutcome::Retryable(error) | SendOutcome::Permanent(error) = &outcome {
        tracing::warn!(attempts, %error, "a confirmation code could not be e-mailed");
        let id = code.id;
        database.write(move |connection| crate::chat::email::not_sent(connection, id)).await?;
    }
    Ok(vec![ReplyMessage::text(crate::chat::email::after_sending(&outcome))])
}

/// Applies the oldest pending event and marks it processed in one transaction. An event
/// that cannot be applied is marked with the reason, so it does not block the others.
fn process_next(
    connection: &mut Connection,
    settings: &ChatSettings,
    now_millis: i64,
    today: oshirase_sdk::Day,
    mail_available: bool,
) -> Result<Option<Processed>> {
    let Some((id, event)): Option<(i64, String)> = connection
        .query_row("SELECT id, event FROM webhook_events WHERE state = 'pending' ORDER BY id LIMIT 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let incoming = serde_json::from_str::<Value>(&event).ok().as_ref().and_then(crate::chat::read_event);
    let Some(incoming) = incoming else {
        mark(connection, id, "ignored")?;
        return Ok(Some(Processed { reply_token: None, answer: Answer::Replies(Vec::new()) }));
    };
    let transaction = connection.transaction()?;
    let applied = crate::chat::handle(&transaction, settings, &incoming, now_millis, today, mail_available);
    match applied {
        Ok(answer) => {
            mark(&transaction, id, if incoming.standby { "standby" } else { "handled" })?;
            transaction.commit()?;
            Ok(Some(Processed { reply_token: incoming.reply_token, answer }))
        }
        Err(error) => {
            drop(transaction);
            let reason = format!("failed: {error:#}");
            tracing::warn!(event = id, %reason, "a webhook event could not be applied");
            mark(connection, id, &reason).context("cannot mark a failed webhook event")?;
            Ok(Some(Processed { reply_token: None, answer: Answer::Replies(Vec::new()) }))
        }
    }
}

fn mark(connection: &Connection, id: i64, outcome: &str) -> Result<()> {
    connection.execute(
        "UPDATE webhook_events SET state = 'done', processed_at = ?2, outcome = ?3 WHERE id = ?1",
        (id, now_text(), outcome),
    )?;
    Ok(())
}
