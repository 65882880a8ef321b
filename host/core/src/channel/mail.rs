//! The e-mail channel: send one notice over SMTP (lettre, rustls) and classify what
//! happened into what the outbox must do next.
//!
//! SMTP has no idempotency key like LINE's `X-Line-Retry-Key`: a server that accepted a
//! message and then lost the connection before we read its answer will receive it again
//! when the delivery is retried. The `Message-ID` is therefore derived from the delivery's
//! retry key, so every attempt of one delivery carries the same id and mail clients that
//! collapse duplicates by `Message-ID` show it once.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use lettre::message::{Mailbox, Message, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;

use super::SendOutcome;

/// The environment variable whose value, when set, is the SMTP password, so the
/// configuration file can be shared without the secret.
pub const PASSWORD_VARIABLE: &str = "OSHIRASE_SMTP_PASSWORD";

/// The `[mail]` table of `oshirase.toml`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// The mail server (relay) to hand messages to.
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, such as `千葉市 おしらせ <oshirase@city.example.jp>`.
    pub from: String,
    /// A PEM root certificate to trust besides the public ones, for a relay whose
    /// certificate comes from the city's own CA.
    pub ca_file: Option<PathBuf>,
    /// How long one message (connection, conversation and answer) may take before it
    /// counts as a timeout and is retried.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// How long LINE may fail to take a delivery (5xx, 429, timeouts) before it goes to a
    /// resident with an address by e-mail instead.
    #[serde(default = "default_fallback_after_minutes")]
    pub fallback_after_minutes: u64,
}

fn default_timeout_seconds() -> u64 {
    30
}

fn default_fallback_after_minutes() -> u64 {
    60
}

/// How the connection to the mail server is protected.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which must succeed (usually port 587).
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption, only for a relay on the same host or a closed network.
    Plain,
}

impl MailConfig {
    /// The password from the environment, looked up through `variable` (normally
    /// `|name| std::env::var(name).ok()`), replaces the one written in the file.
    pub fn with_password_from_environment(mut self, variable: impl Fn(&str) -> Option<String>) -> MailConfig {
        if let Some(password) = variable(PASSWORD_VARIABLE).filter(|password| !password.is_empty()) {
            self.password = Some(password);
        }
        self
    }
}

/// The password is left out, so a configuration can be logged.
impl std::fmt::Debug for MailConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "(set)"))
            .field("from", &self.from)
            .field("ca_file", &self.ca_file)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("fallback_after_minutes", &self.fallback_after_minutes)
            .finish()
    }
}

pub struct MailClient {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for error messages.
    server: String,
    timeout: Duration,
}

impl MailClient {
    /// Checks the configuration (sender, credentials, CA file) without connecting.
    pub fn new(config: MailConfig) -> anyhow::Result<MailClient> {
        let from: Mailbox =
            config.from.parse().with_context(|| format!("mail sender {:?} is not a valid mailbox", config.from))?;
        if config.timeout_seconds == 0 {
            bail!("mail timeout_seconds must be at least 1");
        }
        let timeout = Duration::from_secs(config.timeout_seconds);
        let tls_parameters = || -> anyhow::Result<TlsParameters> {
            let mut builder = TlsParameters::builder(config.host.clone());
            if let Some(ca_file) = &config.ca_file {
                let pem = std::fs::read(ca_file)
                    .with_context(|| format!("mail ca_file {} could not be read", ca_file.display()))?;
                let certificate = Certificate::from_pem(&pem)
                    .with_context(|| format!("mail ca_file {} is not a PEM certificate", ca_file.display()))?;
                builder = builder.add_root_certificate(certificate);
            }
            builder.build_rustls().context("mail TLS settings could not be built")
        };
        let tls = match config.security {
            Security::Starttls => Tls::Required(tls_parameters()?),
            Security::Tls => Tls::Wrapper(tls_parameters()?),
            Security::Plain => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(timeout));
        match (config.username, config.password) {
            (Some(username), Some(password)) => builder = builder.credentials(Credentials::new(username, password)),
            (Some(_), None) => bail!("mail username is set but no password (set password or {PASSWORD_VARIABLE})"),
            (None, Some(_)) => bail!("mail password is set but no username"),
            (None, None) => {}
        }
        Ok(MailClient { transport: builder.build(), from, server: format!("{}:{}", config.host, config.port), timeout })
    }

    /// Connects, greets, authenticates when configured, sends NOOP and quits, so `serve`
    /// can say at startup that the mail settings do not work rather than at the first
    /// notice.
    pub async fn check_connection(&self) -> anyhow::Result<()> {
        let answered = tokio::time::timeout(self.timeout, self.transport.test_connection())
            .await
            .map_err(|_| {
                anyhow::anyhow!("mail server {} did not answer within {} s", self.server, self.timeout.as_secs())
            })?
            // lettre's text already carries its causes, which a context would repeat.
            .map_err(|error| anyhow::anyhow!("mail server {} could not be used: {error}", self.server))?;
        if !answered {
            bail!("mail server {} did not answer NOOP", self.server);
        }
        Ok(())
    }

    /// Sends one plain-text message to `to`. `message_id` is the delivery's retry key, so
    /// a resend after a crash or a timeout carries the same `Message-ID`.
    ///
    /// No outcome names the address: it is personal data, and these texts end up in the
    /// database and the logs.
    pub async fn send(&self, to: &str, subject: &str, body: &str, message_id: &str) -> SendOutcome {
        let address: Address = match to.parse() {
            Ok(address) => address,
            Err(error) => return SendOutcome::Permanent(format!("recipient e-mail address is not valid: {error}")),
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, address.clone()))
            .subject(subject)
            .message_id(Some(format!("<{}@{}>", message_id_local_part(message_id), self.from.email.domain())))
            .date_now()
            .singlepart(SinglePart::plain(body.to_string()));
        let message = match message {
            Ok(message) => message,
            Err(error) => return SendOutcome::Permanent(format!("mail could not be built: {error}")),
        };
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => SendOutcome::Accepted,
            Ok(Err(error)) => classify(&error, &address, &self.server),
            // The server may have accepted the message before the time ran out; the retry
            // carries the same Message-ID.
            Err(_) => SendOutcome::Retryable(format!(
                "mail server {} did not finish within {} s",
                self.server,
                self.timeout.as_secs()
            )),
        }
    }
}

/// `retry_key` as the part of a Message-ID before the `@`: characters a Message-ID may
/// not hold become `-` (the keys are UUIDs, which need no change).
fn message_id_local_part(retry_key: &str) -> String {
    retry_key
        .chars()
        .map(|character| if character.is_ascii_alphanumeric() || "-._".contains(character) { character } else { '-' })
        .collect()
}

/// 5xx answers will fail again as they are (550 unknown mailbox, 535 wrong password …);
/// 4xx answers, lost or refused connections, TLS failures and timeouts are worth retrying.
/// A TLS failure (an untrusted certificate) is a setting to fix rather than a fault of
/// this one delivery, so it is retried like an unreachable server while staff fix it,
/// and `check_connection` reports it at startup.
fn classify(error: &lettre::transport::smtp::Error, address: &Address, server: &str) -> SendOutcome {
    // lettre's text already carries its causes ("invalid peer certificate: UnknownIssuer").
    // Servers quote the recipient in their refusals ("550 5.1.1 <taro@…>: User unknown").
    let detail = without_address(&error.to_string(), address);
    if error.is_permanent() {
        SendOutcome::Permanent(format!("mail server {server} refused the message: {detail}"))
    } else {
        SendOutcome::Retryable(format!("mail to {server} failed: {detail}"))
    }
}

/// `text` with the address, and its local part when it is long enough to identify anyone,
/// replaced by `recipient` (a local part of one or two letters would only garble the
/// text). Letters are compared ignoring ASCII case, as servers may change it.
fn without_address(text: &str, address: &Address) -> String {
    const SHORTEST_LOCAL_PART_REMOVED: usize = 3;
    let text = replace_ignoring_ascii_case(text, address.as_ref(), "recipient");
    if address.user().len() < SHORTEST_LOCAL_PART_REMOVED {
        return text;
    }
    replace_ignoring_ascii_case(&text, address.user(), "recipient")
}

fn replace_ignoring_ascii_case(text: &str, needle: &str, replacement: &str) -> String {
    // ASCII lower-casing keeps every byte where it was, so positions found in the
    // lower-cased copy are character boundaries of `text`.
    let lower_text = text.to_ascii_lowercase();
    let lower_needle = needle.to_ascii_lowercase();
    let mut result = String::with_capacity(text.len());
    let mut start = 0;
    while let Some(found) = lower_text[start..].find(&lower_needle) {
        result.push_str(&text[start..start + found]);
        result.push_str(replacement);
        start += found + needle.len();
    }
    result.push_str(&text[start..]);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::smtp::SmtpServer;

    const SUBJECT: &str = "【千葉市】乳幼児健康診査のお知らせ";
    const BODY: &str = "1歳6か月児健康診査の受診期限は令和7年3月31日です。\n\
                        問い合わせ：健康支援課 043-238-9925";

    /// What one case expects from sending to its recipient.
    enum Expected {
        /// Accepted and stored with the Japanese subject, body and the Message-ID.
        Delivered,
        Retryable,
        Permanent,
    }

    /// `check_connection` succeeds.
    const CONNECTS: Option<&str> = None;

    /// Each case: (what it is, client settings, what `check_connection` says — `CONNECTS`
    /// or a word its error must contain —, recipient, expected outcome of sending). A
    /// delivered message is read back from the server's maildir and decoded; no outcome
    /// text may contain the recipient's address or local part.
    async fn check(server: Option<&SmtpServer>, cases: Vec<(&str, MailConfig, Option<&str>, &str, Expected)>) {
        let mut failures = Vec::new();
        for (name, config, connection, to, expected) in cases {
            let stored_before = server.map_or(0, |server| server.messages().len());
            let client = MailClient::new(config).unwrap();
            match (client.check_connection().await, connection) {
                (Ok(()), None) => {}
                (Err(error), Some(word)) if format!("{error:#}").contains(word) => {}
                (result, _) => failures.push(format!(
                    "{name}: check_connection gave {result:?}, expected {}",
                    connection.unwrap_or("success")
                )),
            }
            let outcome = client.send(to, SUBJECT, BODY, "123e4567-e89b-12d3-a456-426614174000").await;
            let text = match &outcome {
                SendOutcome::Retryable(text) | SendOutcome::Permanent(text) => text.clone(),
                SendOutcome::Accepted | SendOutcome::AlreadyAccepted => String::new(),
            };
            let local_part = to.split('@').next().unwrap();
            if text.contains(to) || (local_part.len() >= 3 && text.contains(local_part)) {
                failures.push(format!("{name}: the outcome names the recipient: {text}"));
            }
            match (expected, &outcome) {
                (Expected::Delivered, SendOutcome::Accepted) => {
                    let messages = server.unwrap().messages();
                    match messages.get(stored_before) {
                        Some(stored) => failures
                            .extend(check_stored(stored, to).into_iter().map(|problem| format!("{name}: {problem}"))),
                        None => failures.push(format!("{name}: accepted but not stored")),
                    }
                }
                (Expected::Retryable, SendOutcome::Retryable(_)) | (Expected::Permanent, SendOutcome::Permanent(_)) => {
                }
                (_, outcome) => failures.push(format!("{name}: unexpected {outcome:?}")),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// What is wrong with a stored message, decoded as a mail client would.
    fn check_stored(stored: &[u8], to: &str) -> Vec<String> {
        let mail = mailparse::parse_mail(stored).unwrap();
        let header = |name: &str| {
            mail.headers
                .iter()
                .find(|header| header.get_key().eq_ignore_ascii_case(name))
                .map(|header| header.get_value())
        };
        let mut problems = Vec::new();
        let expectations = [
            ("Subject", Some(SUBJECT.to_string())),
            ("To", Some(to.to_string())),
            ("From", Some("千葉市 おしらせ <oshirase@city.example.jp>".to_string())),
            ("Message-ID", Some("<123e4567-e89b-12d3-a456-426614174000@city.example.jp>".to_string())),
        ];
        for (name, expected) in expectations {
            let found = header(name);
            if found != expected {
                problems.push(format!("{name} is {found:?}, expected {expected:?}"));
            }
        }
        if header("MIME-Version").as_deref() != Some("1.0") {
            problems.push("no MIME-Version 1.0, without which Content-Type means nothing".to_string());
        }
        if header("Date").is_none() {
            problems.push("no Date".to_string());
        }
        if !stored.is_ascii() {
            problems.push("the raw message is not ASCII: subject or body was sent unencoded".to_string());
        }
        if mail.ctype.mimetype != "text/plain" || mail.ctype.charset != "utf-8" {
            problems.push(format!("content type is {} charset {}", mail.ctype.mimetype, mail.ctype.charset));
        }
        let body = mail.get_body().unwrap();
        if body.replace("\r\n", "\n").trim_end() != BODY {
            problems.push(format!("body is {body:?}"));
        }
        problems
    }

    #[tokio::test]
    async fn plain_smtp_delivers_japanese_and_classifies_refusals() {
        let server = SmtpServer::start(Security::Plain, None);
        let config = server.config(Security::Plain);
        check(
            Some(&server),
            vec![
                ("delivered", config.clone(), CONNECTS, "hanako.chiba@example.jp", Expected::Delivered),
                ("unknown mailbox", config.clone(), CONNECTS, "reject550.taro@example.jp", Expected::Permanent),
                ("deferred", config.clone(), CONNECTS, "defer451.jiro@example.jp", Expected::Retryable),
                ("not an address", config.clone(), CONNECTS, "山田 hanako.chiba@@example.jp", Expected::Permanent),
                ("no domain", config, CONNECTS, "hanako.chiba", Expected::Permanent),
            ],
        )
        .await;
        assert_eq!(server.messages().len(), 1, "only the accepted recipient is stored");
    }

    #[tokio::test]
    async fn starttls_and_implicit_tls_deliver_with_a_private_ca() {
        let starttls = SmtpServer::start(Security::Starttls, None);
        check(
            Some(&starttls),
            vec![(
                "starttls",
                starttls.config(Security::Starttls),
                CONNECTS,
                "hanako.chiba@example.jp",
                Expected::Delivered,
            )],
        )
        .await;
        let implicit = SmtpServer::start(Security::Tls, None);
        check(
            Some(&implicit),
            vec![(
                "implicit tls",
                implicit.config(Security::Tls),
                CONNECTS,
                "hanako.chiba@example.jp",
                Expected::Delivered,
            )],
        )
        .await;
    }

    #[tokio::test]
    async fn starttls_with_login_delivers_and_a_refused_login_is_permanent() {
        let server = SmtpServer::start(Security::Starttls, Some("oshirase:correct horse"));
        let with_password = |password: &str| MailConfig {
            username: Some("oshirase".to_string()),
            password: Some(password.to_string()),
            ..server.config(Security::Starttls)
        };
        check(
            Some(&server),
            vec![
                (
                    "right password",
                    with_password("correct horse"),
                    CONNECTS,
                    "hanako.chiba@example.jp",
                    Expected::Delivered,
                ),
                (
                    "wrong password",
                    with_password("battery staple"),
                    Some("535"),
                    "hanako.chiba@example.jp",
                    Expected::Permanent,
                ),
                // NOOP needs no login, so only sending shows that one is required.
                (
                    "no login",
                    server.config(Security::Starttls),
                    CONNECTS,
                    "hanako.chiba@example.jp",
                    Expected::Permanent,
                ),
            ],
        )
        .await;
    }

    #[tokio::test]
    async fn unreachable_silent_and_untrusted_servers_are_retried() {
        // A port that was free a moment ago and is closed now: the connection is refused.
        let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let starttls = SmtpServer::start(Security::Starttls, None);
        let implicit = SmtpServer::start(Security::Tls, None);
        let plain = SmtpServer::start(Security::Plain, None);
        // Bound and listening, so the kernel completes the connection, but never accepting,
        // so no greeting ever comes.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let to = "hanako.chiba@example.jp";
        check(
            None,
            vec![
                (
                    "connection refused",
                    MailConfig { port: closed_port, ..plain.config(Security::Plain) },
                    Some("refused"),
                    to,
                    Expected::Retryable,
                ),
                (
                    "no greeting",
                    MailConfig { port: silent_port, timeout_seconds: 1, ..plain.config(Security::Plain) },
                    Some("did not answer within 1 s"),
                    to,
                    Expected::Retryable,
                ),
                (
                    "starttls, certificate of an unknown CA",
                    MailConfig { ca_file: None, ..starttls.config(Security::Starttls) },
                    Some("certificate"),
                    to,
                    Expected::Retryable,
                ),
                (
                    "tls, certificate of an unknown CA",
                    MailConfig { ca_file: None, ..implicit.config(Security::Tls) },
                    Some("certificate"),
                    to,
                    Expected::Retryable,
                ),
                (
                    "starttls asked of a server without it",
                    plain.config(Security::Starttls),
                    Some("STARTTLS"),
                    to,
                    Expected::Retryable,
                ),
            ],
        )
        .await;
        for server in [&starttls, &implicit, &plain] {
            assert!(server.messages().is_empty(), "nothing may be stored when the connection is not as configured");
        }
    }

    #[test]
    fn the_mail_table_is_read_with_defaults_and_unknown_keys_refused() {
        let table = serde_json::json!({
            "host": "smtp.city.example.jp", "port": 587, "security": "starttls",
            "from": "千葉市 おしらせ <oshirase@city.example.jp>"
        });
        let config: MailConfig = serde_json::from_value(table.clone()).unwrap();
        assert_eq!(
            (config.security, config.timeout_seconds, config.ca_file.as_deref()),
            (Security::Starttls, 30, None)
        );
        let config = config.with_password_from_environment(|name| {
            (name == PASSWORD_VARIABLE).then(|| "from the environment".to_string())
        });
        assert_eq!(config.password.as_deref(), Some("from the environment"));
        assert!(!format!("{config:?}").contains("from the environment"), "Debug shows the password");
        let mut misspelt = table;
        misspelt["passwrod"] = "secret".into();
        let error = serde_json::from_value::<MailConfig>(misspelt).err().unwrap().to_string();
        assert!(error.contains("unknown field `passwrod`"), "{error}");
    }
}
