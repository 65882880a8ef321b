//! E-mail as a second channel, confirmed in the chat. A linked resident types an address;
//! a six-digit code from the operating system's generator goes to it (the worker sends it
//! after the event's transaction, `CodeMail`), and only a salted SHA-256 of the code is
//! kept, for 30 minutes and five wrong attempts. Only when the right code comes back is
//! the address stored in `registrations.email`; a wrong, expired or used-up code changes
//! nothing. At most three codes per LINE user and hour, so the chat cannot be used to
//! flood someone's mailbox nor to guess a code. Residents then choose LINE, e-mail or both,
//! and can remove the address again.

use anyhow::Result;
use rusqlite::{Connection, OptionalExtension};

use crate::channel::SendOutcome;
use crate::database::audit;
use crate::hashing::sha256_hex;
use crate::message::MAIL_FOOTER;
use crate::outbox::{Undelivered, cancel_undelivered};

/// How many digits a code has.
pub const CODE_DIGITS: usize = 6;
/// How long a code works after it was made.
const CODE_VALID_MILLIS: i64 = 30 * 60 * 1000;
/// Wrong codes a code takes; the last of them uses it up.
pub const WRONG_CODE_LIMIT: i64 = 5;
/// Codes a LINE user may ask for within an hour.
pub const CODES_PER_HOUR: i64 = 3;
const HOUR_MILLIS: i64 = 3_600_000;
/// Rows older than this are forgotten: they no longer count for the hourly limit.
const KEEP_MILLIS: i64 = 24 * HOUR_MILLIS;
/// The longest address accepted (RFC 5321's limit on a path).
const MAX_ADDRESS: usize = 254;

/// A confirmation code to e-mail once the event that asked for it is committed. The
/// address and the code are left out of `Debug`, which may end up in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeMail {
    /// The row in `email_codes`.
    pub id: i64,
    pub to: String,
    pub code: String,
    /// The `Message-ID` of every attempt to send it.
    pub message_id: String,
}

impl std::fmt::Debug for CodeMail {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("CodeMail").field("id", &self.id).finish_non_exhaustive()
    }
}

impl CodeMail {
    pub const SUBJECT: &str = "メールアドレスの確認コード";

    /// Only the code and what to do with it: no name, nothing about the resident.
    pub fn body(&self) -> String {
        format!(
            "確認コード: {}\n\nLINEのトークに、この6桁の数字を送ってください。\
             30分間有効です。\nお心当たりがないときは、このメールを破棄してください。\
             ほかの方に教えないでください。\n\n{MAIL_FOOTER}",
            self.code
        )
    }
}

/// What became of an address typed in the chat.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    /// A code was made; the worker sends it.
    Send(CodeMail),
    /// Already `CODES_PER_HOUR` codes within the hour.
    Limited,
}

/// What became of a code typed in the chat.
#[derive(Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The address is stored; the resident now receives by `channels`.
    Stored {
        channels: String,
    },
    /// No code is waiting for this user.
    NoCode,
    /// The code's half hour has passed; it is used up.
    Expired,
    Wrong {
        left: i64,
    },
    /// That was the last wrong attempt; the code is used up.
    UsedUp,
}

/// An e-mail address as residents type it (full-width `@` and spaces around allowed), or
/// `None` for text that is not one.
pub fn read_address(text: &str) -> Option<String> {
    let text = text.trim().replace('\u{ff20}', "@");
    if !text.contains('@') || text.len() > MAX_ADDRESS || text.chars().any(char::is_whitespace) {
        return None;
    }
    text.parse::<lettre::Address>().ok().map(|address| address.to_string())
}

/// A code as residents type it: six digits, half- or full-width, spaces and hyphens ignored.
pub fn read_code(text: &str) -> Option<String> {
    let mut digits = String::new();
    for character in text.chars().filter(|character| !character.is_whitespace() && *character != '-') {
        let digit = match character {
            '0'..='9' => character,
            '\u{ff10}'..='\u{ff19}' => char::from(b'0' + (u32::from(character) - 0xff10) as u8),
            _ => return None,
        };
        digits.push(digit);
    }
    (digits.len() == CODE_DIGITS).then_some(digits)
}

/// A code of `CODE_DIGITS` uniform digits from the operating system's generator.
fn generate_code() -> Result<String> {
    // 4,294,000,000 is the largest multiple of a million below 2^32: drawing below it and
    // taking the remainder keeps every code equally likely.
    const BOUND: u32 = 4_294_000_000;
    loop {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes)
            .map_err(|error| anyhow::anyhow!("the operating system's random generator failed: {error}"))?;
        let draw = u32::from_le_bytes(bytes);
        if draw < BOUND {
            return Ok(format!("{:06}", draw % 1_000_000));
        }
    }
}

fn salt() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|error| anyhow::anyhow!("the operating system's random generator failed: {error}"))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

fn code_hash(salt: &str, code: &str) -> String {
    sha256_hex(format!("{salt}:{code}").as_bytes())
}

/// Makes a code for `address` typed by `user`, unless they asked for too many within the
/// hour. Their earlier codes stop working.
pub fn start(connection: &Connection, user: &str, address: &str, now_millis: i64) -> Result<Started> {
    connection.execute("DELETE FROM email_codes WHERE created_millis < ?1", [now_millis - KEEP_MILLIS])?;
    let recent: i64 = connection.query_row(
        "SELECT count(*) FROM email_codes WHERE line_user_id = ?1 AND created_millis > ?2",
        (user, now_millis - HOUR_MILLIS),
        |row| row.get(0),
    )?;
    if recent >= CODES_PER_HOUR {
        return Ok(Started::Limited);
    }
    void_pending(connection, user)?;
    let (code, salt) = (generate_code()?, salt()?);
    let message_id = uuid::Uuid::new_v4().to_string();
    connection.execute(
        "INSERT INTO email_codes (line_user_id, address, code_salt, code_sha256, message_id, created_millis,
             expires_millis) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        (user, address, &salt, code_hash(&salt, &code), &message_id, now_millis, now_millis + CODE_VALID_MILLIS),
    )?;
    Ok(Started::Send(CodeMail { id: connection.last_insert_rowid(), to: address.to_string(), code, message_id }))
}

/// A code that could not be sent is used up, so the next code typed is not taken for it.
pub fn not_sent(connection: &Connection, id: i64) -> Result<()> {
    connection.execute("UPDATE email_codes SET state = 'void', address = NULL WHERE id = ?1", [id])?;
    Ok(())
}

fn void_pending(connection: &Connection, user: &str) -> Result<()> {
    connection.execute(
        "UPDATE email_codes SET state = 'void', address = NULL WHERE line_user_id = ?1 AND state = 'pending'",
        [user],
    )?;
    Ok(())
}

/// Checks `typed` against `user`'s waiting code; the right one stores its address for
/// `resident_id` (LINE alone becomes LINE and e-mail; an earlier choice of e-mail stays).
pub fn confirm(
    connection: &Connection,
    user: &str,
    resident_id: &str,
    typed: &str,
    now_millis: i64,
) -> Result<Confirmed> {
    let waiting: Option<(i64, String, String, String, i64, i64)> = connection
        .query_row(
            "SELECT id, address, code_salt, code_sha256, expires_millis, wrong_attempts FROM email_codes
             WHERE line_user_id = ?1 AND state = 'pending' ORDER BY id DESC LIMIT 1",
            [user],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?)),
        )
        .optional()?;
    let Some((id, address, salt, hash, expires_millis, wrong_attempts)) = waiting else {
        return Ok(Confirmed::NoCode);
    };
    if now_millis >= expires_millis {
        not_sent(connection, id)?;
        return Ok(Confirmed::Expired);
    }
    if code_hash(&salt, typed) != hash {
        let wrong = wrong_attempts + 1;
        if wrong >= WRONG_CODE_LIMIT {
            not_sent(connection, id)?;
            return Ok(Confirmed::UsedUp);
        }
        connection.execute("UPDATE email_codes SET wrong_attempts = ?2 WHERE id = ?1", (id, wrong))?;
        return Ok(Confirmed::Wrong { left: WRONG_CODE_LIMIT - wrong });
    }
    let channels: String = connection.query_row(
        "UPDATE registrations SET email = ?2, channels = CASE channels WHEN 'line' THEN 'both' ELSE channels END
         WHERE resident_id = ?1 RETURNING channels",
        (resident_id, &address),
        |row| row.get(0),
    )?;
    connection.execute("UPDATE email_codes SET state = 'confirmed', address = NULL WHERE id = ?1", [id])?;
    audit(connection, "line", "confirm-email", resident_id, "")?;
    Ok(Confirmed::Stored { channels })
}

/// The resident's address, if they have one.
pub fn address_of(connection: &Connection, resident_id: &str) -> Result<Option<String>> {
    Ok(connection
        .query_row("SELECT email FROM registrations WHERE resident_id = ?1", [resident_id], |row| row.get(0))?)
}

/// Sets how the resident receives notices; `false` (and nothing changed) without a
/// confirmed address, since without one there is nothing to choose.
pub fn set_channels(connection: &Connection, resident_id: &str, channels: &str) -> Result<bool> {
    if address_of(connection, resident_id)?.is_none() {
        return Ok(false);
    }
    connection.execute("UPDATE registrations SET channels = ?2 WHERE resident_id = ?1", (resident_id, channels))?;
    audit(connection, "line", "set-channels", resident_id, channels)?;
    Ok(true)
}

/// Removes the resident's address and goes back to LINE alone; `false` when there was
/// none. E-mails to that address not yet sent fail at once, unless another registration
/// still uses the address.
pub fn remove(connection: &Connection, user: &str, resident_id: &str) -> Result<bool> {
    void_pending(connection, user)?;
    let Some(address) = address_of(connection, resident_id)? else {
        return Ok(false);
    };
    connection
        .execute("UPDATE registrations SET email = NULL, channels = 'line' WHERE resident_id = ?1", [resident_id])?;
    cancel_undelivered(connection, Undelivered::MailToUnregistered(&address), "e-mail removed by the resident")?;
    audit(connection, "line", "remove-email", resident_id, "")?;
    Ok(true)
}

/// How a choice of channels reads in the chat.
pub fn channels_label(channels: &str) -> &'static str {
    match channels {
        "mail" => "メールだけ",
        "both" => "LINEとメール",
        _ => "LINE(届かないときはメール)",
    }
}

/// What the chat says once the code e-mail went out, or why it did not.
pub fn after_sending(outcome: &SendOutcome) -> &'static str {
    match outcome {
        SendOutcome::Accepted | SendOutcome::AlreadyAccepted => {
            "確認コードをメールでお送りしました。届いた6桁の数字を、\
             30分以内にこのトークに送ってください。\n\
             届かないときは、アドレスを確かめて、もう一度送ってください。"
        }
        SendOutcome::Permanent(_) => {
            "このアドレスには確認コードのメールを送れませんでした。\
             アドレスを確かめて、もう一度送ってください。"
        }
        SendOutcome::Retryable(_) => {
            "いま確認コードのメールを送れませんでした。しばらくたってから、\
             もう一度メールアドレスを送ってください。"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case: (what residents type, the address or code read from it, or `None`).
    fn check(reader: fn(&str) -> Option<String>, cases: &[(&str, Option<&str>)]) {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(typed, expected)| {
                let read = reader(typed);
                (read.as_deref() != *expected).then(|| format!("{typed:?}: expected {expected:?}, got {read:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn addresses_are_read_as_typed_and_anything_else_is_not_one() {
        check(
            read_address,
            &[
                ("hanako.chiba@example.jp", Some("hanako.chiba@example.jp")),
                ("  hanako.chiba\u{ff20}example.jp\n", Some("hanako.chiba@example.jp")),
                ("hanako chiba@example.jp", None),
                ("hanako.chiba", None),
                ("@example.jp", None),
                ("hanako@@example.jp", None),
                ("メール", None),
            ],
        );
    }

    #[test]
    fn codes_are_six_digits_of_either_width() {
        check(
            read_code,
            &[
                ("123456", Some("123456")),
                ("１２３ ４５６", Some("123456")),
                ("123-456", Some("123456")),
                ("12345", None),
                ("1234567", None),
                ("12345a", None),
            ],
        );
    }

    #[test]
    fn generated_codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..50).map(|_| generate_code().unwrap()).collect();
        assert!(
            codes.iter().all(|code| code.len() == CODE_DIGITS && code.bytes().all(|byte| byte.is_ascii_digit())),
            "{codes:?}"
        );
        assert!(codes.len() > 40, "50 draws from a million gave {} codes", codes.len());
    }
}
