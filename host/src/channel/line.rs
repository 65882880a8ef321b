//! The LINE Messaging API client: push one text message with a retry key, and classify
//! the answer into what the outbox must do next.

use std::time::Duration;

use serde_json::json;

/// Where and as whom to call the Messaging API.
#[derive(Clone, Debug)]
pub struct LineConfig {
    /// `https://api.line.me` in production; the emulator's address in the demo and tests.
    pub base_url: String,
    pub channel_access_token: String,
}

/// What the outbox should do after a push.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PushOutcome {
    /// LINE accepted the message.
    Accepted,
    /// LINE had already accepted a request with this retry key (409): it was delivered.
    AlreadyAccepted,
    /// Worth trying again later with the same retry key (5xx, 429, timeouts, no connection).
    Retryable(String),
    /// Will not succeed as it is (400, 401, 403 …).
    Permanent(String),
}

pub struct LineClient {
    http: reqwest::Client,
    config: LineConfig,
}

impl LineClient {
    pub fn new(config: LineConfig) -> anyhow::Result<LineClient> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).connect_timeout(Duration::from_secs(5)).build()?;
        Ok(LineClient { http, config })
    }

    /// Sends `text` to one user. `aggregation_unit` names the program in LINE's statistics.
    pub async fn push(&self, to: &str, text: &str, retry_key: &str, aggregation_unit: &str) -> PushOutcome {
        let url = format!("{}/v2/bot/message/push", self.config.base_url.trim_end_matches('/'));
        let body = json!({
            "to": to,
            "messages": [{ "type": "text", "text": text }],
            "customAggregationUnits": [aggregation_unit],
        });
        let response = self.http.post(&url).bearer_auth(&self.config.channel_access_token).header("X-Line-Retry-Key", retry_key).json(&body).send().await;
        let response = match response {
            Ok(response) => response,
            Err(error) => return PushOutcome::Retryable(format!("LINE push request failed: {error}")),
        };
        let status = response.status();
        let detail = response.text().await.unwrap_or_default();
        match status.as_u16() {
            200 => PushOutcome::Accepted,
            409 => PushOutcome::AlreadyAccepted,
            429 | 500..=599 => PushOutcome::Retryable(format!("LINE answered {status}: {detail}")),
            _ => PushOutcome::Permanent(format!("LINE answered {status}: {detail}")),
        }
    }
}

/// LINE's aggregation unit names allow only letters, digits and underscores, up to 30.
pub fn aggregation_unit(program: &str) -> String {
    program.chars().map(|character| if character.is_ascii_alphanumeric() { character } else { '_' }).take(30).collect()
}
