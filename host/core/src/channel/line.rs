//! The LINE Messaging API client: send one text message to one user (push) or to up to
//! 500 (multicast) under a retry key, at no more than LINE's published rates, classify
//! the answer into what the outbox must do next, and read the monthly quota; reply to a
//! webhook event with up to five text messages carrying quick-reply buttons.

use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::Context;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::{Value, json};

use super::SendOutcome;

/// The most message objects LINE takes in one request (`PushMessageRequest.messages`,
/// maxItems 5).
pub const MESSAGES_PER_REQUEST: usize = 5;

/// The most recipients one multicast request may name.
pub const MULTICAST_LIMIT: usize = 500;
/// The longest text LINE accepts in one text message, in characters (`TextMessage.text`).
pub const TEXT_LIMIT: usize = 5000;

/// Where and as whom to call the Messaging API, and how fast.
#[derive(Clone, Debug)]
pub struct LineConfig {
    /// `https://api.line.me` in production; the emulator's address in the demo and tests.
    pub base_url: String,
    /// Where LINE takes and gives files (a rich menu's image): `https://api-data.line.me`.
    pub data_base_url: String,
    pub channel_access_token: String,
    /// How long a request may take before it counts as a timeout (retried, same key).
    pub timeout: Duration,
    /// Push requests per second at most; LINE allows 2,000.
    pub push_per_second: NonZeroU32,
    /// Multicast requests per second at most; LINE allows 200.
    pub multicast_per_second: NonZeroU32,
    /// Requests in flight at once (e-mails included); LINE's rate limits, not this, set
    /// the pace, but a stop waits for this many at most.
    pub concurrent_requests: usize,
    /// Whether pushes and multicasts name their program in `customAggregationUnits`. LINE
    /// takes the field only from channels whose application for it was approved and
    /// refuses every message carrying it otherwise, so it is off unless the city says so.
    pub custom_aggregation_units: bool,
}

impl LineConfig {
    /// LINE at `base_url` with the default timeout of 10 seconds and LINE's published
    /// rate limits.
    pub fn new(base_url: impl Into<String>, channel_access_token: impl Into<String>) -> LineConfig {
        LineConfig {
            base_url: base_url.into(),
            data_base_url: DATA_BASE_URL.into(),
            channel_access_token: channel_access_token.into(),
            timeout: Duration::from_secs(10),
            push_per_second: NonZeroU32::new(2_000).unwrap(),
            multicast_per_second: NonZeroU32::new(200).unwrap(),
            concurrent_requests: 32,
            custom_aggregation_units: false,
        }
    }
}

/// LINE's host for files, beside `https://api.line.me` (`servers` of the blob operations).
pub const DATA_BASE_URL: &str = "https://api-data.line.me";

/// Which of LINE's hosts a call goes to.
#[derive(Clone, Copy, Debug)]
pub enum Host {
    Api,
    /// Files: `LineConfig::data_base_url`.
    Data,
}

/// The month's message quota as LINE reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MonthlyQuota {
    /// The month's limit of messages, or None when the plan sets none.
    pub limit: Option<u64>,
    /// Messages sent this month; a multicast counts one per recipient.
    pub used: u64,
}

impl MonthlyQuota {
    /// Messages that may still be sent this month, or None when unlimited.
    pub fn remaining(&self) -> Option<u64> {
        self.limit.map(|limit| limit.saturating_sub(self.used))
    }
}

pub struct LineClient {
    http: reqwest::Client,
    config: LineConfig,
    push_rate: DefaultDirectRateLimiter,
    multicast_rate: DefaultDirectRateLimiter,
}

impl LineClient {
    pub fn new(config: LineConfig) -> anyhow::Result<LineClient> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(64)
            .build()?;
        // Bursts are kept to a tenth of a second's worth, so the rate holds over any second.
        let limiter = |per_second: NonZeroU32| {
            let burst = NonZeroU32::new((per_second.get() / 10).max(1)).unwrap();
            RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst))
        };
        Ok(LineClient {
            http,
            push_rate: limiter(config.push_per_second),
            multicast_rate: limiter(config.multicast_per_second),
            config,
        })
    }

    /// How many requests the outbox may have in flight at once.
    pub fn concurrent_requests(&self) -> usize {
        self.config.concurrent_requests.max(1)
    }

    /// Answers a webhook event with up to five messages (LINE refuses more). A reply
    /// token works once, so a failed reply is not retried.
    pub async fn reply(&self, reply_token: &str, messages: &[ReplyMessage]) -> SendOutcome {
        let url = self.url("/v2/bot/message/reply");
        let body = json!({
            "replyToken": reply_token,
            "messages": messages.iter().map(ReplyMessage::to_json).collect::<Vec<_>>()
        });
        let response =
            match self.http.post(&url).bearer_auth(&self.config.channel_access_token).json(&body).send().await {
                Ok(response) => response,
                Err(error) => return SendOutcome::Retryable(format!("LINE reply request failed: {error}")),
            };
        let status = response.status().as_u16();
        let detail = response.text().await.unwrap_or_default();
        classify(status, &detail)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    /// Sends `messages` (1 to 5 message objects: texts, Flex cards) to `to`: a push for
    /// one user, a multicast for 2 to 500. LINE counts it as one message per recipient,
    /// however many objects it holds. The request waits for its turn under the rate limit
    /// first. `aggregation_unit` names the program in LINE's statistics when the channel
    /// may use them.
    pub async fn send(
        &self,
        to: &[String],
        messages: &[Value],
        retry_key: &str,
        aggregation_unit: &str,
    ) -> SendOutcome {
        if messages.is_empty() || messages.len() > MESSAGES_PER_REQUEST {
            return SendOutcome::Permanent(format!("a LINE request with {} messages (1 to 5)", messages.len()));
        }
        let (url, recipients, kind) = match to {
            [] => return SendOutcome::Permanent("a LINE request with no recipient".into()),
            [one] => {
                self.push_rate.until_ready().await;
                (self.url("/v2/bot/message/push"), json!(one), "push")
            }
            many if many.len() > MULTICAST_LIMIT => {
                return SendOutcome::Permanent(format!(
                    "a LINE multicast to {} recipients, more than {MULTICAST_LIMIT}",
                    many.len()
                ));
            }
            many => {
                self.multicast_rate.until_ready().await;
                (self.url("/v2/bot/message/multicast"), json!(many), "multicast")
            }
        };
        let mut body = json!({
            "to": recipients,
            "messages": messages,
        });
        if self.config.custom_aggregation_units {
            body["customAggregationUnits"] = json!([aggregation_unit]);
        }
        let response = self
            .http
            .post(&url)
            .bearer_auth(&self.config.channel_access_token)
            .header("X-Line-Retry-Key", retry_key)
            .json(&body)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => return SendOutcome::Retryable(format!("LINE {kind} request failed: {error}")),
        };
        let status = response.status().as_u16();
        match response.text().await {
            Ok(detail) => classify(status, &detail),
            // The answer was cut short (a timeout while reading it): whether LINE accepted
            // the message is unknown, so it is retried under the same key.
            Err(error) => SendOutcome::Retryable(format!("LINE answer {status} could not be read: {error}")),
        }
    }

    /// Reads this month's limit and consumption (`/v2/bot/message/quota` and
    /// `/v2/bot/message/quota/consumption`).
    pub async fn monthly_quota(&self) -> anyhow::Result<MonthlyQuota> {
        #[derive(serde::Deserialize)]
        struct Limit {
            r#type: String,
            value: Option<u64>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Consumption {
            total_usage: u64,
        }
        let limit: Limit = self.get_json("/v2/bot/message/quota").await?;
        let consumption: Consumption = self.get_json("/v2/bot/message/quota/consumption").await?;
        let limit = match (limit.r#type.as_str(), limit.value) {
            ("none", _) => None,
            ("limited", Some(value)) => Some(value),
            (kind, _) => anyhow::bail!("LINE quota of type {kind:?} without a value"),
        };
        Ok(MonthlyQuota { limit, used: consumption.total_usage })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let answer = self.call(reqwest::Method::GET, Host::Api, path, None).await?;
        serde_json::from_value(answer).with_context(|| format!("LINE answer to {path} is not the documented JSON"))
    }

    /// A management call (the quota, rich menus): `method` on `path` of `host`, with a
    /// body of the given content type; LINE's JSON answer (`null` when empty), or an error
    /// that names the call and carries LINE's words.
    pub async fn call(
        &self,
        method: reqwest::Method,
        host: Host,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> anyhow::Result<Value> {
        let base = match host {
            Host::Api => &self.config.base_url,
            Host::Data => &self.config.data_base_url,
        };
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", base.trim_end_matches('/')))
            .bearer_auth(&self.config.channel_access_token);
        if let Some((content_type, bytes)) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(bytes);
        }
        let response = request.send().await.with_context(|| format!("LINE request {method} {path} failed"))?;
        let status = response.status();
        let text = response.text().await.with_context(|| format!("LINE answer to {path} could not be read"))?;
        anyhow::ensure!(status.is_success(), "LINE answered {path} with {status}: {text}");
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("LINE answer to {path} is not JSON"))
    }
}

/// The most messages one reply may carry.
pub const MAX_REPLY_MESSAGES: usize = 5;
/// The most quick-reply buttons under one message.
pub const MAX_QUICK_REPLY_ITEMS: usize = 13;
/// The longest label of a quick-reply button, in characters.
pub const MAX_QUICK_REPLY_LABEL: usize = 20;
/// The longest postback data, in characters.
pub const MAX_POSTBACK_DATA: usize = 300;

/// One text message of a reply, with the quick-reply buttons shown under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyMessage {
    pub text: String,
    pub buttons: Vec<Button>,
}

/// A quick-reply button. Tapping it sends a postback event carrying `data` (and, for a
/// date picker, the chosen date in `params.date`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Button {
    pub label: String,
    pub data: String,
    /// `Some((min, max))` opens LINE's date picker limited to those days (YYYY-MM-DD).
    pub date_between: Option<(String, String)>,
}

impl ReplyMessage {
    pub fn text(text: impl Into<String>) -> ReplyMessage {
        ReplyMessage { text: text.into(), buttons: Vec::new() }
    }

    pub fn with_buttons(text: impl Into<String>, buttons: Vec<Button>) -> ReplyMessage {
        ReplyMessage { text: text.into(), buttons }
    }

    /// The message object of the Messaging API: a text message with a `quickReply` of
    /// postback or date-picker actions.
    fn to_json(&self) -> serde_json::Value {
        let mut message = json!({ "type": "text", "text": self.text });
        if !self.buttons.is_empty() {
            let items: Vec<serde_json::Value> = self
                .buttons
                .iter()
                .map(|button| {
                    let action = match &button.date_between {
                        None => json!({
                            "type": "postback", "label": button.label, "data": button.data, "displayText": button.label
                        }),
                        Some((min, max)) => json!({
                            "type": "datetimepicker", "label": button.label, "data": button.data,
                            "mode": "date", "min": min, "max": max
                        }),
                    };
                    json!({ "type": "action", "action": action })
                })
                .collect();
            message["quickReply"] = json!({ "items": items });
        }
        message
    }
}

impl Button {
    pub fn postback(label: impl Into<String>, data: impl Into<String>) -> Button {
        Button { label: label.into(), data: data.into(), date_between: None }
    }

    pub fn date_picker(
        label: impl Into<String>,
        data: impl Into<String>,
        min: oshirase_sdk::Day,
        max: oshirase_sdk::Day,
    ) -> Button {
        Button { label: label.into(), data: data.into(), date_between: Some((min.to_string(), max.to_string())) }
    }
}

/// What an answer of LINE with `status` means for the delivery: 409 is a retry of a
/// request LINE already accepted, 429 and 5xx are worth retrying, anything else will fail
/// again as it is.
fn classify(status: u16, detail: &str) -> SendOutcome {
    // Every answer to a push, multicast or reply passes here: `/metrics` counts them.
    crate::metrics::record_line_status(status);
    match status {
        200 => SendOutcome::Accepted,
        409 => SendOutcome::AlreadyAccepted,
        429 | 500..=599 => SendOutcome::Retryable(format!("LINE answered {status}: {detail}")),
        _ => SendOutcome::Permanent(format!("LINE answered {status}: {detail}")),
    }
}

/// Whether `text` is a LINE user id: `U` and 32 lower-case hex digits.
pub fn is_user_id(text: &str) -> bool {
    text.len() == 33
        && text.starts_with('U')
        && text[1..].bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// LINE's aggregation unit names allow only letters, digits and underscores, up to 30.
pub fn aggregation_unit(program: &str) -> String {
    program.chars().map(|character| if character.is_ascii_alphanumeric() { character } else { '_' }).take(30).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use line_emulator::Emulator;

    const USERS: [&str; 2] = ["U0123456789abcdef0123456789abcde1", "U0123456789abcdef0123456789abcde2"];

    /// Sends one push and one multicast to an emulator approved for aggregation units or
    /// not, with the setting on or off; their outcomes and the units the users' messages
    /// carry.
    async fn send_both(approved: bool, custom_aggregation_units: bool) -> (Vec<String>, Vec<Option<String>>) {
        let emulator = Emulator::new("token");
        emulator.approve_aggregation_units(approved);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = LineConfig {
            custom_aggregation_units,
            ..LineConfig::new(format!("http://{}", listener.local_addr().unwrap()), "token")
        };
        let router = emulator.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let client = LineClient::new(config).unwrap();
        let mut outcomes = Vec::new();
        for to in [&USERS[..1], &USERS[..]] {
            let outcome = client
                .send(
                    &to.iter().map(|user| user.to_string()).collect::<Vec<_>>(),
                    &[json!({ "type": "text", "text": "お知らせ" })],
                    &uuid::Uuid::new_v4().to_string(),
                    "vaccine_mr",
                )
                .await;
            outcomes.push(match outcome {
                SendOutcome::Accepted => "accepted".to_string(),
                other => format!("{other:?}"),
            });
        }
        let units = emulator.inboxes().values().flatten().map(|message| message.aggregation_unit.clone()).collect();
        (outcomes, units)
    }

    #[tokio::test]
    async fn aggregation_units_are_named_only_by_a_channel_set_to_use_them() {
        let accepted = vec!["accepted".to_string(); 2];
        assert_eq!(
            send_both(false, false).await,
            (accepted.clone(), vec![None; 3]),
            "a channel without approval, as by default"
        );
        assert_eq!(
            send_both(true, true).await,
            (accepted, vec![Some("vaccine_mr".to_string()); 3]),
            "a channel approved and set to use them"
        );
        let (refused, units) = send_both(false, true).await;
        assert!(
            units.is_empty() && refused.iter().all(|outcome| outcome.starts_with("Permanent")),
            "set to use them without approval: {refused:?}"
        );
    }

    /// Each case: (status, what the outbox should make of it).
    fn check(cases: &[(u16, &str)]) {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(status, expected)| {
                let kind = match classify(*status, "detail") {
                    SendOutcome::Accepted => "accepted",
                    SendOutcome::AlreadyAccepted => "already accepted",
                    SendOutcome::Retryable(_) => "retryable",
                    SendOutcome::Permanent(_) => "permanent",
                };
                (kind != *expected).then(|| format!("{status}: expected {expected}, got {kind}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn answers_are_classified_as_line_documents_them() {
        check(&[
            (200, "accepted"),
            (409, "already accepted"),
            (429, "retryable"),
            (500, "retryable"),
            (503, "retryable"),
            (400, "permanent"),
            (401, "permanent"),
            (403, "permanent"),
            (404, "permanent"),
        ]);
    }
}
