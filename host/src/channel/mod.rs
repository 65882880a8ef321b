//! The channels a notice can go out through.

pub mod line;
pub mod mail;

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
