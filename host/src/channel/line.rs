//! The LINE Messaging API client: push one text message with a retry key, and classify
//! the answer into what the outbox must do next.

use std::time::Duration;

use serde_json::json;

use super::SendOutcome;

/// Where and as whom to call the Messaging API.
#[derive(Clone, Debug)]
pub struct LineConfig {
    /// `https://api.line.me` in production; the emulator's address in the demo and tests.
    pub base_url: String,
    pub channel_access_token: String,
    /// How long a request may take before it counts as a timeout (retried, same key).
    pub timeout: Duration,
}

impl LineConfig {
    /// LINE at `base_url` with the default timeout of 10 seconds.
    pub fn new(base_url: impl Into<String>, channel_access_token: impl Into<String>) -> LineConfig {
        LineConfig { base_url: base_url.into(), channel_access_token: channel_access_token.into(), timeout: Duration::from_secs(10) }
    }
}

pub struct LineClient {
    http: reqwest::Client,
    config: LineConfig,
}

impl LineClient {
    pub fn new(config: LineConfig) -> anyhow::Result<LineClient> {
        let http = reqwest::Client::builder().timeout(config.timeout).connect_timeout(config.timeout.min(Duration::from_secs(5))).build()?;
        Ok(LineClient { http, config })
    }

    /// Sends `text` to one user. `aggregation_unit` names the program in LINE's statistics.
    pub async fn push(&self, to: &str, text: &str, retry_key: &str, aggregation_unit: &str) -> SendOutcome {
        let url = format!("{}/v2/bot/message/push", self.config.base_url.trim_end_matches('/'));
        let body = json!({
            "to": to,
            "messages": [{ "type": "text", "text": text }],
            "customAggregationUnits": [aggregation_unit],
        });
        let response = self.http.post(&url).bearer_auth(&self.config.channel_access_token).header("X-Line-Retry-Key", retry_key).json(&body).send().await;
        let response = match response {
            Ok(response) => response,
            Err(error) => return SendOutcome::Retryable(format!("LINE push request failed: {error}")),
        };
        let status = response.status().as_u16();
        match response.text().await {
            Ok(detail) => classify(status, &detail),
            // The answer was cut short (a timeout while reading it): whether LINE accepted
            // the message is unknown, so it is retried under the same key.
            Err(error) => SendOutcome::Retryable(format!("LINE answer {status} could not be read: {error}")),
        }
    }
}

/// What an answer of LINE with `status` means for the delivery: 409 is a retry of a
/// request LINE already accepted, 429 and 5xx are worth retrying, anything else will fail
/// again as it is.
fn classify(status: u16, detail: &str) -> SendOutcome {
    match status {
        200 => SendOutcome::Accepted,
        409 => SendOutcome::AlreadyAccepted,
        429 | 500..=599 => SendOutcome::Retryable(format!("LINE answered {status}: {detail}")),
        _ => SendOutcome::Permanent(format!("LINE answered {status}: {detail}")),
    }
}

/// LINE's aggregation unit names allow only letters, digits and underscores, up to 30.
pub fn aggregation_unit(program: &str) -> String {
    program.chars().map(|character| if character.is_ascii_alphanumeric() { character } else { '_' }).take(30).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
