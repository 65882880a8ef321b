//! Message templates: the only placeholders are the program's name and contact and the
//! notice's deadline, so no personal data can reach a message. Staff may reword an
//! occasion in the console; their wording is checked the same way and replaces the
//! plugin's default. Staff also give an occasion's card its links (booking, details).

use oshirase_sdk::Day;
use std::collections::HashMap;

/// The lines under every e-mail notice: the address cannot be answered, and where the
/// resident changes what they receive.
pub const MAIL_FOOTER: &str = "――\nこのメールは送信専用です。返信はできません。\n\
                               配信する内容や方法の変更は、\
                               LINEのメニューまたは市役所の窓口でお手続きください。";

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 3] = ["program", "deadline", "contact"];

/// Checks that every `{...}` in `template` is a known placeholder; returns the first unknown one.
pub fn check_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(after.to_string());
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(name.to_string());
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// A message that answers several notices of one occasion for one recipient (the twins
/// of a household, say), with how many it is about — never who.
pub fn for_several(text: &str, notices: usize) -> String {
    format!("{text}\n\n(このお知らせの対象の方が{notices}人います)")
}

/// One e-mail for a recipient's messages of the day, each given as (subject, text): the
/// subject of the most urgent, with how many others follow, and every text in order,
/// then `MAIL_FOOTER`.
pub fn mail_of(messages: &[(String, String)]) -> (String, String) {
    let subject = match messages {
        [] | [_] => messages.first().map(|(subject, _)| subject.clone()).unwrap_or_default(),
        [(first, _), others @ ..] => format!("{first} ほか{}件", others.len()),
    };
    let texts: Vec<&str> = messages.iter().map(|(_, text)| text.as_str()).collect();
    (subject, format!("{}\n\n{MAIL_FOOTER}", texts.join("\n\n――――――――――\n\n")))
}

/// The wording staff gave occasions in the console, by (program, occasion).
pub fn wording(
    connection: &rusqlite::Connection,
) -> rusqlite::Result<std::collections::HashMap<(String, String), String>> {
    connection
        .prepare_cached("SELECT program, occasion, template FROM message_wording")?
        .query_map([], |row| Ok(((row.get(0)?, row.get(1)?), row.get(2)?)))?
        .collect()
}

/// The manifest of `program`'s active version, which must have `occasion`: what staff
/// word and link is an occasion of a program that runs.
fn active_manifest_with(
    connection: &rusqlite::Connection,
    program: &str,
    occasion: &str,
) -> Result<crate::registry::Manifest, WordingError> {
    let version = crate::registry::active_version(connection, program)?
        .ok_or_else(|| WordingError::Unknown(format!("program {program} has no active version")))?;
    match version.manifest.occasion(occasion) {
        Some(_) => Ok(version.manifest),
        None => Err(WordingError::Unknown(format!("program {program} has no occasion {occasion:?}"))),
    }
}

/// Stores staff's wording for an occasion of an active program after checking it — known
/// placeholders only, and within LINE's limit with the longest deadline — or, when
/// `template` is empty, goes back to the plugin's default. Answers the text as a resident
/// would read it with a sample deadline.
pub fn set_wording(
    connection: &rusqlite::Connection,
    program: &str,
    occasion: &str,
    template: &str,
    actor: &str,
) -> Result<String, WordingError> {
    let manifest = active_manifest_with(connection, program, occasion)?;
    let manifest = &manifest;
    let default = manifest.occasion(occasion).expect("checked by active_manifest_with");
    let effective = if template.is_empty() { default.template.as_str() } else { template };
    check_template(effective).map_err(|placeholder| {
        WordingError::Invalid(format!(
            "unknown placeholder {{{placeholder}}}; use {}",
            PLACEHOLDERS.map(|name| format!("{{{name}}}")).join(" ")
        ))
    })?;
    // 令和10年12月31日 is as long as a deadline gets, and a note of 99 people as long as
    // the note for several gets.
    let longest = for_several(
        &render(effective, &manifest.name, &manifest.contact, Day::parse_iso("2028-12-31").expect("a valid date")),
        99,
    )
    .chars()
    .count();
    if longest > crate::channel::line::TEXT_LIMIT {
        return Err(WordingError::Invalid(format!(
            "the message would have {longest} characters; LINE takes at most {}",
            crate::channel::line::TEXT_LIMIT
        )));
    }
    if template.is_empty() {
        connection.execute("DELETE FROM message_wording WHERE program = ?1 AND occasion = ?2", (program, occasion))?;
    } else {
        connection.execute(
            "INSERT INTO message_wording (program, occasion, template, updated_by, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (program, occasion) DO UPDATE
             SET template = excluded.template, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (program, occasion, template, actor, crate::time::now_text()),
        )?;
    }
    crate::database::audit(
        connection,
        actor,
        if template.is_empty() { "reset-wording" } else { "set-wording" },
        program,
        occasion,
    )?;
    Ok(render(effective, &manifest.name, &manifest.contact, crate::time::today_in_japan().add_days(30)))
}

/// The longest link a card's button takes (LINE's `uri` action: "Max character limit: 1000").
const LINK_LIMIT: usize = 1000;

/// The links staff gave occasions' cards, by (program, occasion): (booking, details).
pub fn links(connection: &rusqlite::Connection) -> rusqlite::Result<HashMap<(String, String), OccasionLinks>> {
    connection
        .prepare_cached("SELECT program, occasion, booking_url, details_url FROM occasion_links")?
        .query_map([], |row| {
            Ok(((row.get(0)?, row.get(1)?), OccasionLinks { booking_url: row.get(2)?, details_url: row.get(3)? }))
        })?
        .collect()
}

/// What a card links to beyond the program's source, when staff set it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct OccasionLinks {
    /// 「予約・申請」: the city's online booking or application for this occasion.
    pub booking_url: Option<String>,
    /// 「詳しく」: the city's page about it, instead of the manifest's `source_url`.
    pub details_url: Option<String>,
}

/// A link a card's button may open, trimmed: an `https` address with a host, without
/// spaces, within LINE's `LINK_LIMIT`; None when empty. `name` says which in the refusal.
pub fn card_link(name: &str, link: Option<&str>) -> Result<Option<String>, WordingError> {
    let Some(link) = link.map(str::trim).filter(|link| !link.is_empty()) else { return Ok(None) };
    let host = link.strip_prefix("https://").map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
    if host.is_none_or(str::is_empty)
        || link.chars().any(|character| character.is_whitespace() || character.is_control())
    {
        return Err(WordingError::Invalid(format!("{name} must be an https:// address without spaces: {link:?}")));
    }
    if link.chars().count() > LINK_LIMIT {
        return Err(WordingError::Invalid(format!(
            "{name} has {} characters; LINE takes at most {LINK_LIMIT}",
            link.chars().count()
        )));
    }
    Ok(Some(link.to_string()))
}

/// Stores the links of an occasion's card of an active program, each an `https` address
/// of at most `LINK_LIMIT` characters; empty or absent ones are cleared, and with none
/// left the card goes back to the manifest's `source_url` alone. Audited.
pub fn set_links(
    connection: &rusqlite::Connection,
    program: &str,
    occasion: &str,
    links: &OccasionLinks,
    actor: &str,
) -> Result<OccasionLinks, WordingError> {
    active_manifest_with(connection, program, occasion)?;
    let stored = OccasionLinks {
        booking_url: card_link("booking_url", links.booking_url.as_deref())?,
        details_url: card_link("details_url", links.details_url.as_deref())?,
    };
    if stored == OccasionLinks::default() {
        connection.execute("DELETE FROM occasion_links WHERE program = ?1 AND occasion = ?2", (program, occasion))?;
    } else {
        connection.execute(
            "INSERT INTO occasion_links (program, occasion, booking_url, details_url, updated_by, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (program, occasion) DO UPDATE SET booking_url = excluded.booking_url,
                 details_url = excluded.details_url, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (program, occasion, &stored.booking_url, &stored.details_url, actor, crate::time::now_text()),
        )?;
    }
    crate::database::audit(connection, actor, "set-links", program, occasion)?;
    Ok(stored)
}

/// Why wording or links were refused.
#[derive(Debug, thiserror::Error)]
pub enum WordingError {
    #[error("{0}")]
    Unknown(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for WordingError {
    fn from(error: rusqlite::Error) -> WordingError {
        WordingError::Failed(error.into())
    }
}

/// Fills a checked template. The deadline is written as in official letters (令和8年3月31日).
pub fn render(template: &str, program: &str, contact: &str, deadline: Day) -> String {
    template.replace("{program}", program).replace("{contact}", contact).replace("{deadline}", &deadline.era_format())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_placeholders_are_filled_and_unknown_ones_refused() {
        let template = "【{program}】{deadline}まで。{contact}";
        assert_eq!(check_template(template), Ok(()));
        assert_eq!(
            render(template, "MR", "健康課", Day::parse_iso("2027-03-31").unwrap()),
            "【MR】令和9年3月31日まで。健康課"
        );
        assert_eq!(check_template("{name}さん"), Err("name".to_string()));
        assert_eq!(check_template("閉じない{program"), Err("program".to_string()));
    }

    /// A case of links: what it is, the booking and details asked for, and what is stored
    /// or the refusal's words.
    type LinksCase<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Result<OccasionLinks, &'a str>);

    /// Sets each case's links on occasion `first` of an active program and checks what
    /// was stored, or the refusal's words (nothing stored then).
    fn check(cases: &[LinksCase]) {
        let mut failures = Vec::new();
        for (what, booking, details, expected) in cases {
            let mut connection = rusqlite::Connection::open_in_memory().unwrap();
            crate::database::migrate(&mut connection).unwrap();
            synthetic_city::seed_due_notices(&mut connection, 1, &[("p1", 0)]).unwrap();
            let asked =
                OccasionLinks { booking_url: booking.map(str::to_string), details_url: details.map(str::to_string) };
            let got = set_links(&connection, "p1", "first", &asked, "kenko").map_err(|error| error.to_string());
            let stored = links(&connection).unwrap().remove(&("p1".to_string(), "first".to_string()));
            let ok = match (expected, &got) {
                (Ok(links), Ok(answered)) => {
                    answered == links && stored == (*links != OccasionLinks::default()).then(|| links.clone())
                }
                (Err(words), Err(refusal)) => refusal.contains(words) && stored.is_none(),
                _ => false,
            };
            if !ok {
                failures.push(format!("{what}: expected {expected:?}, got {got:?} with {stored:?} stored"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn an_occasions_links_are_https_addresses_within_lines_limit() {
        let links = |booking: Option<&str>, details: Option<&str>| OccasionLinks {
            booking_url: booking.map(str::to_string),
            details_url: details.map(str::to_string),
        };
        let long = format!("https://example.jp/{}", "a".repeat(1000));
        check(&[
            (
                "both set",
                Some("https://yoyaku.example.jp/mr?from=line"),
                Some(" https://city.example.jp/mr "),
                Ok(links(Some("https://yoyaku.example.jp/mr?from=line"), Some("https://city.example.jp/mr"))),
            ),
            (
                "booking only",
                Some("https://yoyaku.example.jp/"),
                None,
                Ok(links(Some("https://yoyaku.example.jp/"), None)),
            ),
            ("both empty: back to the source", Some(""), Some("  "), Ok(OccasionLinks::default())),
            ("plain http", Some("http://yoyaku.example.jp/"), None, Err("must be an https:// address")),
            ("no host", Some("https:///mr"), None, Err("booking_url must be an https:// address")),
            ("a script", None, Some("javascript:alert(1)"), Err("details_url must be an https:// address")),
            ("a space inside", Some("https://yoyaku.example.jp/m r"), None, Err("without spaces")),
            ("longer than LINE takes", Some(long.as_str()), None, Err("LINE takes at most 1000")),
        ]);
        let mut connection = rusqlite::Connection::open_in_memory().unwrap();
        crate::database::migrate(&mut connection).unwrap();
        synthetic_city::seed_due_notices(&mut connection, 1, &[("p1", 0)]).unwrap();
        let refused = set_links(&connection, "p1", "second", &OccasionLinks::default(), "kenko").unwrap_err();
        assert_eq!(refused.to_string(), "program p1 has no occasion \"second\"");
    }
}
