//! The personal links to the application form that the chat hands out: a token that
//! names the LINE account it was made for, works once and for a day, and is stored only
//! as its hash.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension};

use crate::hashing::sha256_hex;
use crate::time::{now_text, text_in_days};

/// How long a link to the form works.
const LINK_VALID_DAYS: i64 = 1;

/// A new personal link token for `line_user_id`; only its hash is stored.
pub fn create(connection: &Connection, line_user_id: &str) -> Result<String> {
    let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    connection.execute(
        "INSERT INTO application_links (token_sha256, line_user_id, expires_at) VALUES (?1, ?2, ?3)",
        (sha256_hex(token.as_bytes()), line_user_id, text_in_days(LINK_VALID_DAYS)),
    )?;
    Ok(token)
}

/// The LINE user a link token was made for, while it is unused and unexpired.
pub fn link_owner(connection: &Connection, token: &str) -> Result<Option<String>> {
    Ok(connection
        .query_row(
            "SELECT line_user_id FROM application_links
             WHERE token_sha256 = ?1 AND used_at IS NULL AND expires_at > ?2",
            (sha256_hex(token.as_bytes()), now_text()),
            |row| row.get(0),
        )
        .optional()?)
}

/// Uses up the link `token`, once its application is stored.
pub fn use_up(connection: &Connection, token: &str) -> Result<()> {
    connection.execute(
        "UPDATE application_links SET used_at = ?2 WHERE token_sha256 = ?1",
        (sha256_hex(token.as_bytes()), now_text()),
    )?;
    Ok(())
}
