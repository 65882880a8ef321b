//! Registration numbers: what staff issue for a resident (printed on a postcard) and the
//! resident types into the chat to link their LINE account. Ten characters drawn from the
//! operating system's generator over a 32-character alphabet without the look-alikes
//! 0/O/1/I (50 bits), then a Luhn mod 32 check character that catches every single wrong
//! character and most swapped neighbours, so a typo is told apart from a guess. Only a
//! SHA-256 hash of a number is stored; a number works once, until it expires, and wrong
//! numbers are limited per LINE user and hour, counted in SQLite so a restart resets nothing.

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension};

use crate::database::audit;
use crate::time::{now_text, text_in_days};

/// The symbols of a number: digits and capitals without 0, O, 1 and I.
const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Random characters per number: 10 × 5 bits = 50 bits.
const RANDOM_CHARACTERS: usize = 10;
/// Characters of a whole number, the check character included.
const NUMBER_CHARACTERS: usize = RANDOM_CHARACTERS + 1;
/// Wrong numbers a LINE user may send within `GUESS_WINDOW_MILLIS` before every number,
/// the right one included, is refused until the hour has passed.
pub const GUESS_LIMIT: i64 = 5;
const GUESS_WINDOW_MILLIS: i64 = 3_600_000;
/// How long a number issued without `--valid-days` stays usable.
pub const DEFAULT_VALID_DAYS: u32 = 90;

/// What a text sent in the chat is, as a registration number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Well formed, check character right: `XXXXXXXXXXX` normalized (no hyphens, capitals).
    Number(String),
    /// Looks like a number but has a typo: what is wrong, for the resident.
    Typo(&'static str),
    /// Not a number at all (a command, a greeting).
    NotANumber,
}

/// The value of a symbol in the alphabet.
fn value_of(symbol: u8) -> Option<u32> {
    ALPHABET.iter().position(|candidate| *candidate == symbol).map(|position| position as u32)
}

/// Luhn mod N over the values, right to left, doubling every second one starting with the
/// last; `with_check` says whether the last value is the check character itself.
fn luhn_sum(values: &[u32], with_check: bool) -> u32 {
    let base = ALPHABET.len() as u32;
    let mut double = !with_check;
    let mut sum = 0;
    for value in values.iter().rev() {
        let mut addend = if double { value * 2 } else { *value };
        addend = addend / base + addend % base;
        sum += addend;
        double = !double;
    }
    sum % base
}

fn check_symbol(values: &[u32]) -> u8 {
    let base = ALPHABET.len() as u32;
    ALPHABET[((base - luhn_sum(values, false)) % base) as usize]
}

/// A new number from the operating system's generator, normalized (no hyphens).
pub fn generate() -> Result<String> {
    let mut bytes = [0u8; RANDOM_CHARACTERS];
    getrandom::fill(&mut bytes)
        .map_err(|error| anyhow::anyhow!("the operating system's random generator failed: {error}"))?;
    // 256 is a multiple of 32, so the low five bits of a byte are uniform.
    let values: Vec<u32> = bytes.iter().map(|byte| u32::from(byte & 31)).collect();
    let mut number: String = values.iter().map(|value| ALPHABET[*value as usize] as char).collect();
    number.push(check_symbol(&values) as char);
    Ok(number)
}

/// A number as printed: `ABCD-EFGH-JKL`.
pub fn display(number: &str) -> String {
    format!("{}-{}-{}", &number[..4], &number[4..8], &number[8..])
}

/// Reads a number as residents type it: full-width or half-width, any case, with or
/// without hyphens and spaces.
pub fn parse(text: &str) -> Parsed {
    let mut normalized = String::new();
    let mut hyphenated = false;
    for character in text.trim().chars() {
        let character = match character {
            // Full-width ASCII (Ａ, ０ …) as typed with a Japanese keyboard.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(character as u32 - 0xFEE0).unwrap_or(character),
            other => other,
        };
        match character {
            '-' | 'ー' | '−' | '‐' => hyphenated = true,
            ' ' | '\u{3000}' => {}
            other => normalized.push(other.to_ascii_uppercase()),
        }
    }
    // A word is not a number: an attempt has the right length, or digits or hyphens in
    // it, and nothing but letters and digits.
    let attempt = normalized.len() == NUMBER_CHARACTERS
        || ((6..=16).contains(&normalized.len())
            && (hyphenated || normalized.bytes().any(|byte| byte.is_ascii_digit())));
    if !attempt || !normalized.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
        return Parsed::NotANumber;
    }
    if normalized.len() != NUMBER_CHARACTERS {
        return Parsed::Typo("文字数が合いません。登録番号は 11 文字です");
    }
    let Some(values) = normalized.bytes().map(value_of).collect::<Option<Vec<u32>>>() else {
        return Parsed::Typo("登録番号には 0・O・1・I は使われていません");
    };
    if luhn_sum(&values, true) != 0 {
        return Parsed::Typo("打ち間違いがあるようです");
    }
    Parsed::Number(normalized)
}

fn hash(number: &str) -> String {
    crate::hashing::sha256_hex(number.as_bytes())
}

/// Issues a number for a resident of the active snapshot, valid for `valid_days`, queues
/// the postcard that carries it to the snapshot's address, and revokes the resident's
/// earlier numbers that were not used (a reissued postcard replaces the lost one). Returns
/// the number as printed.
pub fn issue(connection: &mut Connection, resident_id: &str, valid_days: u32, actor: &str) -> Result<String> {
    let transaction = connection.transaction()?;
    let number = issue_within(&transaction, resident_id, valid_days, actor)?;
    transaction.commit()?;
    Ok(number)
}

/// `issue` inside the caller's transaction.
pub fn issue_within(connection: &Connection, resident_id: &str, valid_days: u32, actor: &str) -> Result<String> {
    anyhow::ensure!((1..=366).contains(&valid_days), "validity of {valid_days} days is not within 1–366");
    let snapshot_id =
        crate::snapshot::active(connection)?.context("no active snapshot: import resident records first")?;
    let (name, address): (String, String) = connection
        .query_row(
            // The postal code heads the address block on a line of its own, as on any
            // postcard, when the export has one (the standard layout's 住所_郵便番号).
            "SELECT name, CASE postal_code WHEN '' THEN address ELSE '〒' || postal_code || char(10) || address END
             FROM residents WHERE snapshot_id = ?1 AND resident_id = ?2",
            (snapshot_id, resident_id),
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?
        .with_context(|| format!("resident {resident_id:?} is not in the active snapshot"))?;
    let number = generate()?;
    let now = now_text();
    let expires_at = text_in_days(i64::from(valid_days));
    connection.execute(
        "UPDATE registration_numbers SET revoked_at = ?2
         WHERE resident_id = ?1 AND used_at IS NULL AND revoked_at IS NULL",
        (resident_id, &now),
    )?;
    connection.execute(
        "INSERT INTO registration_numbers (resident_id, number_hash, issued_at, issued_by, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (resident_id, hash(&number), &now, actor, &expires_at),
    )?;
    audit(connection, actor, "issue-registration-number", resident_id, &format!("expires {expires_at}"))?;
    let printed = display(&number);
    crate::postcards::queue(connection, resident_id, &name, &address, &printed, &expires_at)?;
    Ok(printed)
}

/// What sending a well-formed number did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redeemed {
    /// The LINE user is now linked to this resident.
    Linked { resident_id: String },
    /// This user already used this very number.
    AlreadyLinked,
    /// The LINE user is linked to another resident; nothing changed.
    LinkedToAnother,
    /// The number was right but its time is over.
    Expired,
    /// No such number: counted; `left` more wrong numbers are allowed this hour.
    Wrong { left: i64 },
    /// Too many wrong numbers within the hour: refused without looking.
    Limited,
}

/// A stored number, as `redeem` finds it.
struct Issued {
    id: i64,
    resident_id: String,
    used_by: Option<String>,
    revoked: bool,
    expires_at: String,
}

/// Tries `number` (normalized) for `line_user_id` at `now_millis`, inside the caller's
/// transaction.
pub fn redeem(connection: &Connection, line_user_id: &str, number: &str, now_millis: i64) -> Result<Redeemed> {
    let guesses: i64 = connection.query_row(
        "SELECT count(*) FROM registration_guesses WHERE line_user_id = ?1 AND at_millis > ?2",
        (line_user_id, now_millis - GUESS_WINDOW_MILLIS),
        |row| row.get(0),
    )?;
    if guesses >= GUESS_LIMIT {
        return Ok(Redeemed::Limited);
    }
    let now = now_text();
    let found = connection
        .query_row(
            "SELECT id, resident_id, used_by, revoked_at, expires_at FROM registration_numbers WHERE number_hash = ?1",
            [hash(number)],
            |row| {
                Ok(Issued {
                    id: row.get(0)?,
                    resident_id: row.get(1)?,
                    used_by: row.get(2)?,
                    revoked: row.get::<_, Option<String>>(3)?.is_some(),
                    expires_at: row.get(4)?,
                })
            },
        )
        .optional()?;
    let (id, resident_id) = match found {
        Some(Issued { used_by: Some(used_by), .. }) if used_by == line_user_id => return Ok(Redeemed::AlreadyLinked),
        Some(Issued { id, resident_id, used_by: None, revoked: false, expires_at }) => {
            if expires_at <= now {
                return Ok(Redeemed::Expired);
            }
            (id, resident_id)
        }
        // Unknown, used by someone else, or revoked: all count as a wrong number. Guesses
        // older than the window no longer matter and are forgotten.
        _ => {
            connection.execute(
                "DELETE FROM registration_guesses WHERE at_millis <= ?1",
                [now_millis - GUESS_WINDOW_MILLIS],
            )?;
            connection.execute(
                "INSERT INTO registration_guesses (line_user_id, at_millis) VALUES (?1, ?2)",
                (line_user_id, now_millis),
            )?;
            return Ok(Redeemed::Wrong { left: GUESS_LIMIT - guesses - 1 });
        }
    };
    let other: Option<String> = connection
        .query_row(
            "SELECT resident_id FROM registrations WHERE line_user_id = ?1 AND resident_id <> ?2",
            (line_user_id, &resident_id),
            |row| row.get(0),
        )
        .optional()?;
    if other.is_some() {
        return Ok(Redeemed::LinkedToAnother);
    }
    connection.execute(
        "UPDATE registration_numbers SET used_at = ?2, used_by = ?3 WHERE id = ?1",
        (id, &now, line_user_id),
    )?;
    connection.execute(
        "INSERT INTO registrations (resident_id, line_user_id, registered_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (resident_id) DO UPDATE SET line_user_id = excluded.line_user_id, active = 1",
        (&resident_id, line_user_id, &now),
    )?;
    audit(connection, "line", "link-registration", &resident_id, "registration number")?;
    Ok(Redeemed::Linked { resident_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case: (what the resident typed, what it is).
    fn check(cases: &[(&str, Parsed)]) {
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(text, expected)| {
                let parsed = parse(text);
                (parsed != *expected).then(|| format!("{text:?}: expected {expected:?}, got {parsed:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn numbers_are_read_as_typed_and_typos_are_told_apart() {
        let number = "23456789AB".to_string();
        let values: Vec<u32> = number.bytes().map(|byte| value_of(byte).unwrap()).collect();
        let whole = format!("{number}{}", check_symbol(&values) as char);
        let printed = display(&whole);
        let full_width: String = printed
            .chars()
            .map(|character| if character == '-' { 'ー' } else { char::from_u32(character as u32 + 0xFEE0).unwrap() })
            .collect();
        let mut swapped = whole.clone().into_bytes();
        swapped.swap(3, 4);
        let mut changed = whole.clone().into_bytes();
        changed[5] = if changed[5] == b'X' { b'Y' } else { b'X' };
        check(&[
            (&printed, Parsed::Number(whole.clone())),
            (&printed.to_lowercase(), Parsed::Number(whole.clone())),
            (&full_width, Parsed::Number(whole.clone())),
            (&format!(" {} ", whole), Parsed::Number(whole.clone())),
            (&String::from_utf8(swapped).unwrap(), Parsed::Typo("打ち間違いがあるようです")),
            (&String::from_utf8(changed).unwrap(), Parsed::Typo("打ち間違いがあるようです")),
            (&whole[..10], Parsed::Typo("文字数が合いません。登録番号は 11 文字です")),
            (
                &format!("{}0", &whole[..10]),
                Parsed::Typo(
                    "登録番号には 0・O・1・I \
                     は使われていません",
                ),
            ),
            ("設定", Parsed::NotANumber),
            ("hello", Parsed::NotANumber),
            ("thank you", Parsed::NotANumber),
            ("予定日 2027-03-01", Parsed::NotANumber),
        ]);
    }

    #[test]
    fn generated_numbers_pass_their_own_check_and_differ() {
        let numbers: Vec<String> = (0..1000).map(|_| generate().unwrap()).collect();
        for number in &numbers {
            assert_eq!(parse(&display(number)), Parsed::Number(number.clone()));
            assert!(!number.contains(['0', 'O', '1', 'I']), "{number}");
        }
        let distinct: std::collections::HashSet<&String> = numbers.iter().collect();
        assert_eq!(distinct.len(), numbers.len());
    }

    #[test]
    fn every_single_character_error_is_caught() {
        let number = generate().unwrap();
        for position in 0..NUMBER_CHARACTERS {
            for symbol in ALPHABET {
                let mut typo = number.clone().into_bytes();
                if typo[position] == *symbol {
                    continue;
                }
                typo[position] = *symbol;
                assert!(
                    matches!(parse(&String::from_utf8(typo.clone()).unwrap()), Parsed::Typo(_)),
                    "{}",
                    String::from_utf8(typo).unwrap()
                );
            }
        }
    }
}
