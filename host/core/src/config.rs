//! The configuration file of `oshirase serve --config FILE` (TOML): where to listen and
//! keep data, how to reach LINE and the mail server, how to retry, and the send window.
//! Unknown keys are
//! errors, so a typo is caught at start rather than silently ignored. The LINE secrets
//! may come from the environment instead (`OSHIRASE_LINE_TOKEN`, `OSHIRASE_LINE_SECRET`),
//! which wins over the file, so that the file can be world-readable and the secrets kept
//! in a root-only environment file. See `oshirase.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::channel::line::{LineClient, LineConfig};
use crate::channel::mail::{MailClient, MailConfig};
use crate::channel::{Channels, MailChannel};
use crate::retry::RetryPolicy;
use crate::schedule::SendWindow;

/// The environment variable that holds the channel access token.
pub const TOKEN_VARIABLE: &str = "OSHIRASE_LINE_TOKEN";
/// The environment variable that holds the channel secret.
pub const SECRET_VARIABLE: &str = "OSHIRASE_LINE_SECRET";

/// No wait or timeout may be longer than this: LINE keeps a retry key for a day, and a
/// longer wait is a typo.
const LONGEST: Duration = Duration::from_secs(24 * 3600);

/// A whole configuration file, checked. Not `Debug`, so that the secrets it holds cannot
/// reach a log by a stray `{:?}`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerSection,
    #[serde(default)]
    pub line: LineSection,
    #[serde(default)]
    pub retry: RetrySection,
    #[serde(default)]
    pub send_window: SendWindow,
    /// E-mail, for residents who chose it and as LINE's fallback; none when absent.
    pub mail: Option<MailConfig>,
}

/// `[server]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The address the web server listens on; port 0 picks a free one.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The data directory: the database, plugin cache and export uploads.
    pub data: PathBuf,
    /// This server's public address (`https://oshirase.city.example.jp`), for the chat's
    /// link to the application form; without it residents are told to apply at the counter.
    pub public_url: Option<String>,
    /// Where the chat tells residents to ask when the city could not confirm their
    /// application (`千葉市 市民総合窓口課 043-245-5111`); the ward office's window when absent.
    pub contact: Option<String>,
    /// Connections and time: `max_connections`, `header_read_timeout_seconds`,
    /// `request_timeout_seconds`, `forwarded_for`.
    #[serde(flatten)]
    pub limits: ServerLimits,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// `[line]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSection {
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// LINE's host for files (the rich menu's image).
    #[serde(default = "default_data_base_url")]
    pub data_base_url: String,
    /// Required, from here or from `OSHIRASE_LINE_TOKEN`.
    pub channel_access_token: Option<String>,
    /// For the webhook's signature check, from here or from `OSHIRASE_LINE_SECRET`.
    pub channel_secret: Option<String>,
    /// How long one request may take before it counts as a timeout (retried).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: f64,
    /// Requests in flight at once; LINE's published rate limits set the pace regardless.
    #[serde(default = "default_concurrent_requests")]
    pub concurrent_requests: usize,
    /// Whether messages name their program in LINE's statistics (`customAggregationUnits`),
    /// which LINE allows only once the channel's application for it was approved.
    #[serde(default)]
    pub custom_aggregation_units: bool,
}

fn default_concurrent_requests() -> usize {
    32
}

fn default_base_url() -> String {
    "https://api.line.me".into()
}

fn default_data_base_url() -> String {
    crate::channel::line::DATA_BASE_URL.into()
}

fn default_timeout_seconds() -> f64 {
    10.0
}

impl Default for LineSection {
    fn default() -> LineSection {
        LineSection {
            base_url: default_base_url(),
            data_base_url: default_data_base_url(),
            channel_access_token: None,
            channel_secret: None,
            timeout_seconds: default_timeout_seconds(),
            concurrent_requests: default_concurrent_requests(),
            custom_aggregation_units: false,
        }
    }
}

/// `[retry]`: the fields of `RetryPolicy`, durations in milliseconds; each defaults to
/// the library's policy.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySection {
    pub max_attempts: u32,
    pub first_delay_ms: u64,
    pub max_delay_ms: u64,
    pub linger_ms: u64,
}

impl Default for RetrySection {
    fn default() -> RetrySection {
        let policy = RetryPolicy::default();
        RetrySection {
            max_attempts: policy.max_attempts,
            first_delay_ms: policy.first_delay.as_millis() as u64,
            max_delay_ms: policy.max_delay.as_millis() as u64,
            linger_ms: policy.linger.as_millis() as u64,
        }
    }
}

impl RetrySection {
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            first_delay: Duration::from_millis(self.first_delay_ms),
            max_delay: Duration::from_millis(self.max_delay_ms),
            linger: Duration::from_millis(self.linger_ms),
        }
    }
}

impl Config {
    /// Reads and checks the file at `path`, taking secrets from the process environment.
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        Config::parse(&text, |name| std::env::var(name).ok().filter(|value| !value.is_empty()))
            .with_context(|| format!("config file {} refused", path.display()))
    }

    /// Parses and checks `text`; `environment` looks a variable up, and a secret found
    /// there replaces the file's. The errors name the key and, for TOML errors, the line.
    pub fn parse(text: &str, environment: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let mut config: Config =
            toml::from_str(text).map_err(|error| anyhow::anyhow!("{}", error.to_string().trim_end()))?;
        if let Some(token) = environment(TOKEN_VARIABLE) {
            config.line.channel_access_token = Some(token);
        }
        if let Some(secret) = environment(SECRET_VARIABLE) {
            config.line.channel_secret = Some(secret);
        }
        if config.line.channel_access_token.as_deref().is_none_or(str::is_empty) {
            anyhow::bail!(
                "no LINE channel access token: set [line] channel_access_token or the environment variable \
                 {TOKEN_VARIABLE}"
            );
        }
        if !(config.line.timeout_seconds > 0.0 && config.line.timeout_seconds <= LONGEST.as_secs_f64()) {
            anyhow::bail!(
                "[line] timeout_seconds = {} is not a number of seconds above 0 and at most a day",
                config.line.timeout_seconds
            );
        }
        if config.retry.max_attempts == 0 {
            anyhow::bail!("[retry] max_attempts = 0: at least one attempt is needed");
        }
        for (key, milliseconds) in [
            ("first_delay_ms", config.retry.first_delay_ms),
            ("max_delay_ms", config.retry.max_delay_ms),
            ("linger_ms", config.retry.linger_ms),
        ] {
            if milliseconds > LONGEST.as_millis() as u64 {
                anyhow::bail!("[retry] {key} = {milliseconds} is longer than a day");
            }
        }
        Ok(config)
    }

    /// How to call LINE.
    /// The channels to send through: LINE, and e-mail when `[mail]` is given (its
    /// password from `OSHIRASE_SMTP_PASSWORD` when set).
    pub fn channels(&self) -> Result<Channels> {
        let mail = match &self.mail {
            None => None,
            Some(mail) => {
                let mail = mail.clone().with_password_from_environment(|name| std::env::var(name).ok());
                let fallback_after = Duration::from_secs(mail.fallback_after_minutes.saturating_mul(60));
                Some(MailChannel { client: MailClient::new(mail).context("[mail] is not usable")?, fallback_after })
            }
        };
        Ok(Channels { line: LineClient::new(self.line())?, mail, public_url: self.server.public_url.clone() })
    }

    pub fn line(&self) -> LineConfig {
        LineConfig {
            timeout: Duration::from_secs_f64(self.line.timeout_seconds),
            concurrent_requests: self.line.concurrent_requests,
            custom_aggregation_units: self.line.custom_aggregation_units,
            data_base_url: self.line.data_base_url.clone(),
            ..LineConfig::new(self.line.base_url.clone(), self.line.channel_access_token.clone().unwrap_or_default())
        }
    }
}

/// The web server's limits on connections and time: `[server]` of `oshirase.toml`.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerLimits {
    /// Connections served at once; beyond, new ones wait in the kernel's queue until one
    /// ends. Keep it below the service's `LimitNOFILE`.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long an idle
    /// kept-alive connection stays open: a half-sent request is dropped after this.
    pub header_read_timeout_seconds: u64,
    /// How long a request may take, uploads of exports and plugins apart, which may take
    /// minutes but must keep sending: their bodies may pause no longer than this.
    pub request_timeout_seconds: u64,
    /// Take the client's address from the last `X-Forwarded-For` entry, as the reverse
    /// proxy in front appends it. Only behind such a proxy: otherwise anyone could claim
    /// any address and slip past the per-address limits.
    pub forwarded_for: bool,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            max_connections: 1024,
            header_read_timeout_seconds: 10,
            request_timeout_seconds: 60,
            forwarded_for: false,
        }
    }
}

impl ServerLimits {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_seconds.max(1))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No environment variable is set.
    fn empty(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_example_file_parses() {
        // The example keeps its token in the environment, as it recommends.
        let environment = |name: &str| (name == TOKEN_VARIABLE).then(|| "token".to_string());
        let config = Config::parse(include_str!("../../../oshirase.example.toml"), environment).unwrap();
        assert_eq!(config.server.listen, default_listen());
        assert_eq!(config.server.data, PathBuf::from("/var/lib/oshirase"));
        assert_eq!(config.retry.policy(), RetryPolicy::default());
        assert_eq!(config.send_window, SendWindow::default());
        assert_eq!(config.line().timeout, Duration::from_secs(10));
        assert!(
            !config.line().custom_aggregation_units,
            "LINE refuses aggregation units to a channel not approved for them"
        );
        let mail = config.mail.as_ref().expect("the example shows the [mail] table");
        assert_eq!((mail.port, mail.fallback_after_minutes), (587, 60));
        let channels = config.channels().unwrap();
        assert_eq!(channels.mail.map(|mail| mail.fallback_after), Some(Duration::from_secs(3600)));
    }

    /// Each case: (what, file, the error expected to contain every one of these phrases).
    fn check(cases: &[(&str, &str, &[&str])]) {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(what, text, phrases)| match Config::parse(text, empty) {
                Ok(_) => Some(format!("{what}: accepted")),
                Err(error) => {
                    let message = format!("{error:#}");
                    phrases
                        .iter()
                        .any(|phrase| !message.contains(phrase))
                        .then(|| format!("{what}: expected {phrases:?} in {message:?}"))
                }
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn mistakes_are_refused_with_the_key_and_line() {
        check(&[
            (
                "a typo'd key",
                "[server]\ndata = \"/tmp\"\n\n[line]\nchanel_access_token = \"t\"\n",
                &["line 5", "unknown field `chanel_access_token`"],
            ),
            ("a missing token", "[server]\ndata = \"/tmp\"\n", &["no LINE channel access token", TOKEN_VARIABLE]),
            (
                "an unknown section",
                "[server]\ndata = \"/tmp\"\n[schedules]\nvaccine-mr = \"0 0 9 * * *\"\n",
                &["line 3", "unknown field `schedules`"],
            ),
            (
                "a bad time",
                "[server]\ndata = \"/tmp\"\n[line]\nchannel_access_token = \"t\"\n[send_window]\nstart = \"9:00\"\n\
                 end = \"20:00\"\n",
                &["line 6", "\"9:00\" is not a time of day"],
            ),
            (
                "a window backwards",
                "[server]\ndata = \"/tmp\"\n[line]\nchannel_access_token = \"t\"\n[send_window]\nstart = \"20:00\"\n\
                 end = \"09:00\"\n",
                &["start 20:00 is not before its end 09:00"],
            ),
            (
                "no data directory",
                "[server]\nlisten = \"127.0.0.1:80\"\n[line]\nchannel_access_token = \"t\"\n",
                &["missing field `data`"],
            ),
            (
                "a timeout of no time",
                "[server]\ndata = \"/tmp\"\n[line]\nchannel_access_token = \"t\"\ntimeout_seconds = 0\n",
                &["timeout_seconds = 0 is not a number of seconds above 0"],
            ),
            (
                "a linger of years",
                "[server]\ndata = \"/tmp\"\n[line]\nchannel_access_token = \"t\"\n[retry]\nlinger_ms = 100000000000\n",
                &["linger_ms = 100000000000 is longer than a day"],
            ),
            (
                "no attempts",
                "[server]\ndata = \"/tmp\"\n[line]\nchannel_access_token = \"t\"\n[retry]\nmax_attempts = 0\n",
                &["max_attempts = 0"],
            ),
        ]);
    }

    #[test]
    fn aggregation_units_are_sent_only_when_the_file_says_so() {
        let without =
            Config::parse("[server]\ndata = \"/tmp\"\n[line]\nchannel_access_token = \"t\"\n", empty).unwrap();
        assert!(!without.line().custom_aggregation_units);
        let with = Config::parse(
            "[server]\ndata = \"/tmp\"\n[line]\nchannel_access_token = \"t\"\ncustom_aggregation_units = true\n",
            empty,
        )
        .unwrap();
        assert!(with.line().custom_aggregation_units);
    }

    #[test]
    fn secrets_from_the_environment_win_over_the_file() {
        let text = "[server]\ndata = \"/tmp\"\n[line]\nchannel_access_token = \"from-file\"\n";
        let environment = |name: &str| (name == TOKEN_VARIABLE).then(|| "from-environment".to_string());
        assert_eq!(
            Config::parse(text, environment).unwrap().line.channel_access_token.as_deref(),
            Some("from-environment")
        );
        let only_environment =
            Config::parse("[server]\ndata = \"/tmp\"\n", |name| Some(format!("{name} value"))).unwrap();
        assert_eq!(only_environment.line.channel_access_token.as_deref(), Some("OSHIRASE_LINE_TOKEN value"));
        assert_eq!(only_environment.line.channel_secret.as_deref(), Some("OSHIRASE_LINE_SECRET value"));
    }
}
