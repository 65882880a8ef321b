//! The links of cards and e-mails counted without tracking anyone: a link goes out as
//! `{public_url}/r/{token}`, where the token is named by the program, occasion, button and
//! address — the same for everyone told — and opening it adds one to that token's count of
//! the Japan day. Nothing about who opened it is kept.

use std::collections::HashMap;

use anyhow::Result;
use oshirase_sdk::Day;
use rusqlite::{Connection, OptionalExtension};

/// A card's button whose address goes through the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Button {
    /// 「予約・申請」.
    Booking,
    /// 「詳しく」.
    Details,
}

impl Button {
    pub fn as_str(self) -> &'static str {
        match self {
            Button::Booking => "booking",
            Button::Details => "details",
        }
    }
}

/// The token of a link: 32 hex digits named by what the link is, never by whom it is for.
pub fn token(program: &str, occasion: &str, button: Button, url: &str) -> String {
    crate::hashing::name_based_uuid(&["link", program, occasion, button.as_str(), url]).replace('-', "")
}

/// Remembers where `token` leads, before any message carries it; once is enough.
pub fn register(connection: &Connection, program: &str, occasion: &str, button: Button, url: &str) -> Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO link_targets (token, program, occasion, button, url) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT DO NOTHING",
        )?
        .execute((token(program, occasion, button, url), program, occasion, button.as_str(), url))?;
    Ok(())
}

/// Counts one opening of `token` on `day` and answers where it leads; `None` for a token
/// no message ever carried, which counts nothing.
pub fn open(connection: &Connection, token: &str, day: Day) -> Result<Option<String>> {
    let url: Option<String> = connection
        .prepare_cached("SELECT url FROM link_targets WHERE token = ?1")?
        .query_row([token], |row| row.get(0))
        .optional()?;
    if url.is_some() {
        connection
            .prepare_cached(
                "INSERT INTO link_opens (token, day, opened) VALUES (?1, ?2, 1)
                 ON CONFLICT (token, day) DO UPDATE SET opened = opened + 1",
            )?
            .execute((token, day.0))?;
    }
    Ok(url)
}

/// How many times each program's occasion's links were opened from `from` to `to`.
pub fn opened_between(connection: &Connection, from: Day, to: Day) -> Result<HashMap<(String, String), u32>> {
    let mut statement = connection.prepare(
        "SELECT t.program, t.occasion, sum(o.opened) FROM link_opens o JOIN link_targets t ON t.token = o.token
         WHERE o.day BETWEEN ?1 AND ?2 GROUP BY t.program, t.occasion",
    )?;
    let rows = statement.query_map((from.0, to.0), |row| Ok(((row.get(0)?, row.get(1)?), row.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link is counted per day and per occasion; the token is the same for everyone, so
    /// the count cannot say who opened it; an unknown token leads nowhere and counts nothing.
    #[test]
    fn opening_a_link_counts_the_day_and_leads_to_its_address() {
        let connection = crate::testing::database();
        let url = "https://www.city.chiba.jp/mr.html";
        register(&connection, "vaccine-mr", "phase-1", Button::Details, url).unwrap();
        register(&connection, "vaccine-mr", "phase-1", Button::Details, url).unwrap();
        let token = token("vaccine-mr", "phase-1", Button::Details, url);
        assert_eq!(token.len(), 32);
        assert_ne!(token, super::token("vaccine-mr", "phase-2", Button::Details, url));
        let (first, second) = (Day::parse_iso("2026-12-01").unwrap(), Day::parse_iso("2026-12-02").unwrap());
        for day in [first, first, second] {
            assert_eq!(open(&connection, &token, day).unwrap().as_deref(), Some(url));
        }
        assert_eq!(open(&connection, "0".repeat(32).as_str(), first).unwrap(), None);
        let pair = ("vaccine-mr".to_owned(), "phase-1".to_owned());
        assert_eq!(opened_between(&connection, first, first).unwrap(), HashMap::from([(pair.clone(), 2)]));
        assert_eq!(opened_between(&connection, first, second).unwrap(), HashMap::from([(pair, 3)]));
        let kept: i64 = connection.query_row("SELECT count(*) FROM link_opens", [], |row| row.get(0)).unwrap();
        assert_eq!(kept, 2, "one row a token and day, nothing per opening");
    }
}
