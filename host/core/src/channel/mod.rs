//! The channels a notice can go out through, and what their answers mean to the outbox.

pub mod card;
pub mod line;
pub mod mail;
pub mod rich_menu;

use std::time::Duration;

/// The channels the outbox sends through: always LINE, and e-mail when a mail server is
/// configured.
pub struct Channels {
    pub line: line::LineClient,
    pub mail: Option<MailChannel>,
    /// This server's public address (`[server] public_url`): a card's links go out through
    /// its `/r/{token}`, where each opening is counted (`link_opens`); direct without it.
    pub public_url: Option<String>,
}

/// E-mail: for residents who chose it, and instead of LINE for a delivery LINE refused
/// for good or could not take for `fallback_after`.
pub struct MailChannel {
    pub client: mail::MailClient,
    pub fallback_after: Duration,
}

/// What the outbox should do after a request to a channel, whichever channel it was.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SendOutcome {
    /// The channel accepted the message.
    Accepted,
    /// The channel had already accepted a request with this retry key (LINE's 409): it was
    /// delivered.
    AlreadyAccepted,
    /// Worth trying again later with the same retry key (LINE's 5xx and 429, SMTP's 4xx,
    /// timeouts, no connection).
    Retryable(String),
    /// Will not succeed as it is (LINE's 400, 401, 403, SMTP's 5xx …).
    Permanent(String),
}
