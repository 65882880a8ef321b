//! Surveys answered in the chat: staff write a question with 2 to 5 choices or a rating of
//! 1 to 5, an audience and a time; the question goes out then as a broadcast whose card has
//! a postback button per choice (`action=survey&id=N&answer=K`, answered by the chat), on
//! LINE only, since an e-mail cannot carry the tap. Each LINE user answers once and may
//! change the answer until the survey closes; then the answers lose their LINE user ids in
//! one transaction (`close_due`, called by each scheduler pass) and remain as anonymous
//! rows. The tally and the CSV name no one.

use anyhow::Context;
use chrono::{DateTime, Utc};
use oshirase_sdk::Day;
use rusqlite::{Connection, OptionalExtension};

use crate::channel::card::{ALT_TEXT_LIMIT, Card, Choice};
use crate::channel::line::MAX_QUICK_REPLY_LABEL;
use crate::database::audit;
use crate::reservation::{BROADCAST_DAYS, NewBroadcast, ReservationError, reserve_broadcast};
use crate::time::{day_in_japan, format_japan, now_text};

/// The fewest and the most choices of a question.
const CHOICES: std::ops::RangeInclusive<usize> = 2..=5;
/// The labels of a rating's choices, lowest first.
const RATING: [&str; 5] = ["1", "2", "3", "4", "5"];
/// The longest question: with its choices listed and how to answer, the message stays
/// within the `altText` a LINE notification shows whole (`ALT_TEXT_LIMIT`).
const QUESTION_LIMIT: usize = ALT_TEXT_LIMIT - 300;

/// Whether the resident picks one of the choices staff wrote, or rates 1 to 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Choice,
    Rating,
}

/// Who is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Every registered resident and self-registered follower who has not stopped
    /// everything.
    Everyone,
    /// Those who receive one of the chat's categories.
    Category,
    /// Those sent a notice of one program between two Japan days.
    Program,
}

/// A survey as staff write it.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Draft {
    pub question: String,
    pub kind: Kind,
    /// The choices of a `choice` question; none for a rating.
    #[serde(default)]
    pub choices: Vec<String>,
    pub audience: Audience,
    /// The category of a `category` audience (`chat::CATEGORIES`' names).
    #[serde(default)]
    pub category: Option<String>,
    /// The program of a `program` audience, and the first and last Japan day
    /// (`YYYY-MM-DD`) its notices were sent.
    #[serde(default)]
    pub program: Option<String>,
    #[serde(default)]
    pub sent_from: Option<String>,
    #[serde(default)]
    pub sent_to: Option<String>,
}

/// Why a survey was refused or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SurveyError {
    #[error("survey {0} does not exist")]
    NotFound(i64),
    #[error("{0}")]
    Invalid(String),
    /// Something failed on our side, not in the request.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for SurveyError {
    fn from(error: rusqlite::Error) -> SurveyError {
        SurveyError::Failed(error.into())
    }
}

impl From<ReservationError> for SurveyError {
    fn from(error: ReservationError) -> SurveyError {
        match error {
            ReservationError::Invalid(what) => SurveyError::Invalid(what),
            ReservationError::Failed(error) => SurveyError::Failed(error),
            settled @ (ReservationError::NotFound(_) | ReservationError::AlreadySettled { .. }) => {
                SurveyError::Failed(settled.into())
            }
        }
    }
}

/// A draft checked: its trimmed question, the labels of its choices, and its audience as
/// a broadcast names it (category; program with its days).
#[derive(Debug, PartialEq, Eq)]
struct Checked {
    question: String,
    labels: Vec<String>,
    category: Option<String>,
    program: Option<(String, Day, Day)>,
}

fn invalid<T>(what: impl Into<String>) -> Result<T, SurveyError> {
    Err(SurveyError::Invalid(what.into()))
}

/// Checks what staff wrote: a question within `QUESTION_LIMIT`, 2 to 5 distinct choices
/// of at most `MAX_QUICK_REPLY_LABEL` characters each (LINE's label of a button) or a
/// rating, the audience's own fields and no other, and a close after the opening.
fn check(draft: &Draft, opens_at: DateTime<Utc>, closes_at: DateTime<Utc>) -> Result<Checked, SurveyError> {
    let question = draft.question.trim();
    if question.is_empty() {
        return invalid("a survey needs a question");
    }
    let characters = question.chars().count();
    if characters > QUESTION_LIMIT {
        return invalid(format!("the question has {characters} characters; at most {QUESTION_LIMIT} fit a message"));
    }
    let labels: Vec<String> = match draft.kind {
        Kind::Rating if !draft.choices.is_empty() => {
            return invalid("a rating has no choices of its own: it is 1 to 5");
        }
        Kind::Rating => RATING.iter().map(|label| label.to_string()).collect(),
        Kind::Choice => draft.choices.iter().map(|choice| choice.trim().to_owned()).collect(),
    };
    if !CHOICES.contains(&labels.len()) {
        return invalid(format!("a question needs 2 to 5 choices, not {}", labels.len()));
    }
    for (index, label) in labels.iter().enumerate() {
        let characters = label.chars().count();
        if characters == 0 {
            return invalid(format!("choice {} is empty", index + 1));
        }
        if characters > MAX_QUICK_REPLY_LABEL {
            return invalid(format!(
                "choice {} has {characters} characters; a LINE button label takes at most {MAX_QUICK_REPLY_LABEL}",
                index + 1
            ));
        }
        if labels[..index].contains(label) {
            return invalid(format!("choice {} repeats {label:?}", index + 1));
        }
    }
    let day = |name: &str, text: &Option<String>| match text.as_deref().map(Day::parse_iso) {
        Some(Some(day)) => Ok(day),
        Some(None) => invalid(format!("{name} {:?} is not a date as YYYY-MM-DD", text.as_deref().unwrap_or_default())),
        None => invalid(format!("a program audience needs {name}")),
    };
    let stray = |what: &str, present: bool| {
        if present { invalid(format!("{what} belongs to another audience")) } else { Ok(()) }
    };
    let (category, program) = match draft.audience {
        Audience::Everyone => {
            stray("a category", draft.category.is_some())?;
            stray("a program", draft.program.is_some() || draft.sent_from.is_some() || draft.sent_to.is_some())?;
            (None, None)
        }
        Audience::Category => {
            stray("a program", draft.program.is_some() || draft.sent_from.is_some() || draft.sent_to.is_some())?;
            match &draft.category {
                Some(category) => (Some(category.clone()), None),
                None => return invalid("a category audience needs a category"),
            }
        }
        Audience::Program => {
            stray("a category", draft.category.is_some())?;
            let Some(program) = draft.program.as_deref().map(str::trim).filter(|program| !program.is_empty()) else {
                return invalid("a program audience needs a program");
            };
            (None, Some((program.to_owned(), day("sent_from", &draft.sent_from)?, day("sent_to", &draft.sent_to)?)))
        }
    };
    if closes_at <= opens_at {
        return invalid(format!(
            "the survey closes at {} before it opens at {}",
            format_japan(closes_at),
            format_japan(opens_at)
        ));
    }
    Ok(Checked { question: question.to_owned(), labels, category, program })
}

/// The postback of choice `answer` of survey `id`, as the chat reads it.
pub fn postback(id: i64, answer: usize) -> String {
    format!("action=survey&id={id}&answer={answer}")
}

/// The message a survey goes out as: its question, its choices, how to answer and until
/// when. It is also the notification's text (the card's `altText`).
fn message_text(checked: &Checked, kind: Kind, closes_at: DateTime<Utc>) -> String {
    let how = match kind {
        Kind::Choice => checked
            .labels
            .iter()
            .enumerate()
            .map(|(index, label)| format!("{}. {label}", index + 1))
            .collect::<Vec<_>>()
            .join("\n"),
        Kind::Rating => "1(低い)から5(高い)の5段階でお答えください。".to_owned(),
    };
    format!(
        "{}\n\n{how}\n\n下のボタンを押してお答えください。{}まで、何度でも選び直せます。",
        checked.question,
        until(closes_at)
    )
}

/// A survey's closing time as residents read it: 令和8年6月30日 17:00.
fn until(closes_at: DateTime<Utc>) -> String {
    let japan = closes_at.with_timezone(&crate::time::japan());
    format!("{} {}", day_in_japan(closes_at).era_format(), japan.format("%H:%M"))
}

/// Creates a survey and reserves its question for `opens_at`, in one transaction,
/// audited; returns its id.
pub fn create(
    connection: &mut Connection,
    draft: &Draft,
    opens_at: DateTime<Utc>,
    closes_at: DateTime<Utc>,
    actor: &str,
) -> Result<i64, SurveyError> {
    let checked = check(draft, opens_at, closes_at)?;
    let transaction = connection.transaction()?;
    // The card's buttons name the survey, so its id is chosen before the broadcast that
    // carries them is stored; the writer is alone in its transaction.
    let id: i64 = transaction.query_row("SELECT coalesce(max(id), 0) + 1 FROM surveys", [], |row| row.get(0))?;
    let card = Card {
        // A survey's card has no links to count.
        code: String::new(),
        occasion: String::new(),
        program: "アンケート".into(),
        title: "ご意見をお聞かせください".into(),
        deadline: format!("{}まで", until(closes_at)),
        details_url: None,
        booking_url: None,
        choices: checked
            .labels
            .iter()
            .enumerate()
            .map(|(index, label)| Choice { label: label.clone(), data: postback(id, index) })
            .collect(),
    };
    let title: String = checked.question.chars().take(30).collect();
    let broadcast = NewBroadcast {
        title: &format!("アンケート: {title}"),
        text: &message_text(&checked, draft.kind, closes_at),
        category: checked.category.as_deref(),
        card: Some(serde_json::to_string(&card).context("cannot write the survey's card")?),
        line_only: true,
        program: checked.program.as_ref().map(|(program, from, to)| (program.as_str(), *from, *to)),
        // Sent late as any broadcast may be, but never once the survey has closed.
        expires_on: day_in_japan(opens_at).add_days(BROADCAST_DAYS).min(day_in_japan(closes_at)),
    };
    let (_, broadcast_id) = reserve_broadcast(&transaction, &broadcast, opens_at, actor)?;
    transaction.execute(
        "INSERT INTO surveys (id, broadcast_id, question, kind, choices, opens_at, closes_at, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            id,
            broadcast_id,
            checked.question,
            kind_name(draft.kind),
            serde_json::to_string(&checked.labels).context("cannot write the survey's choices")?,
            opens_at.timestamp_millis(),
            closes_at.timestamp_millis(),
            actor,
            now_text(),
        ],
    )?;
    audit(
        &transaction,
        actor,
        "create-survey",
        &format!("survey:{id}"),
        &format!("closes {}", format_japan(closes_at)),
    )?;
    transaction.commit()?;
    Ok(id)
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Choice => "choice",
        Kind::Rating => "rating",
    }
}

/// What became of a resident's tap on a choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answered {
    /// The answer is stored: a first one, or one that replaced `before`.
    Recorded { label: String, before: Option<String> },
    /// The survey's question has not gone out yet.
    NotOpen,
    /// The survey closed; nothing changed.
    Closed,
    /// No such survey.
    Unknown,
    /// The survey has no such choice.
    NoSuchChoice,
}

/// Records LINE user `user`'s answer `answer` to survey `id` at `now`, or changes the one
/// they gave: one row per user and survey, while it is open.
pub fn answer(
    connection: &Connection,
    user: &str,
    id: i64,
    answer: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<Answered> {
    let survey: Option<(String, i64, i64, Option<String>)> = connection
        .query_row("SELECT choices, opens_at, closes_at, closed_at FROM surveys WHERE id = ?1", [id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    let Some((choices, opens_at, closes_at, closed_at)) = survey else {
        return Ok(Answered::Unknown);
    };
    let now_millis = now.timestamp_millis();
    if closed_at.is_some() || now_millis >= closes_at {
        return Ok(Answered::Closed);
    }
    if now_millis < opens_at {
        return Ok(Answered::NotOpen);
    }
    let labels: Vec<String> =
        serde_json::from_str(&choices).with_context(|| format!("survey {id}'s choices are not a JSON list"))?;
    let Some(label) = labels.get(answer as usize) else {
        return Ok(Answered::NoSuchChoice);
    };
    let before: Option<u32> = connection
        .query_row("SELECT answer FROM survey_answers WHERE survey_id = ?1 AND line_user_id = ?2", (id, user), |row| {
            row.get(0)
        })
        .optional()?;
    connection.execute(
        "INSERT INTO survey_answers (survey_id, line_user_id, answer, answered_on) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (survey_id, line_user_id) DO UPDATE SET answer = excluded.answer,
             answered_on = excluded.answered_on",
        (id, user, answer, day_in_japan(now).0),
    )?;
    Ok(Answered::Recorded {
        label: label.clone(),
        before: before.filter(|before| *before != answer).and_then(|before| labels.get(before as usize).cloned()),
    })
}

/// Closes every survey whose time is up at `now`: in one transaction each, its answers
/// lose their LINE user ids, the chat's stored events that carried its taps are
/// forgotten, and the close is audited. Returns how many closed.
pub fn close_due(connection: &mut Connection, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let due: Vec<(i64, i64)> = connection
        .prepare("SELECT id, broadcast_id FROM surveys WHERE closed_at IS NULL AND closes_at <= ?1 ORDER BY id")?
        .query_map([now.timestamp_millis()], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, broadcast_id) in &due {
        let transaction = connection.transaction()?;
        let answers = transaction
            .execute("UPDATE survey_answers SET line_user_id = NULL WHERE survey_id = ?1", [id])
            .with_context(|| format!("cannot anonymize survey {id}'s answers"))?;
        // A stored postback event names its user beside the answer; it would otherwise
        // be kept for the webhook's 30 days.
        transaction.execute(
            "DELETE FROM webhook_events WHERE state = 'done'
                 AND json_extract(event, '$.postback.data') LIKE 'action=survey&id=' || ?1 || '&%'",
            [id],
        )?;
        // A question nobody can answer any more is not sent: its deliveries still waiting
        // (the outbox expires a broadcast only by the day) and its reservation, if it has
        // not fired (a server down from its opening to its closing), are given up.
        let unsent = transaction.execute(
            "UPDATE deliveries SET state = 'expired'
             WHERE state IN ('queued', 'failed-retryable') AND broadcast_id = ?1",
            [broadcast_id],
        )?;
        transaction.execute(
            "UPDATE reserved_sends SET state = 'cancelled' WHERE state = 'waiting' AND broadcast_id = ?1",
            [broadcast_id],
        )?;
        transaction.execute("UPDATE surveys SET closed_at = ?2 WHERE id = ?1", (id, now_text()))?;
        let detail = format!("{answers} answers, {unsent} deliveries not sent");
        audit(&transaction, "scheduler", "close-survey", &format!("survey:{id}"), &detail)?;
        transaction.commit()?;
    }
    Ok(due.len())
}

/// When the next open survey closes.
pub fn next_closing(connection: &Connection) -> anyhow::Result<Option<DateTime<Utc>>> {
    let at: Option<i64> =
        connection.query_row("SELECT min(closes_at) FROM surveys WHERE closed_at IS NULL", [], |row| row.get(0))?;
    Ok(at.and_then(DateTime::from_timestamp_millis))
}

/// A survey as the console shows it: counts only, never who answered.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Tally {
    pub id: i64,
    pub question: String,
    pub kind: Kind,
    pub audience: Audience,
    pub category: Option<String>,
    pub program: Option<String>,
    /// Japan time.
    pub opens_at: String,
    pub closes_at: String,
    /// `waiting` (not sent yet), `open` or `closed`.
    pub state: &'static str,
    /// How many LINE users the question was delivered to.
    pub delivered: i64,
    pub choices: Vec<Count>,
    pub total: i64,
    pub created_by: String,
}

/// One choice and how many chose it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Count {
    pub label: String,
    pub count: i64,
}

/// The tallies of every survey, newest first, or of survey `id` alone, at `now`.
pub fn tallies(connection: &Connection, id: Option<i64>, now: DateTime<Utc>) -> Result<Vec<Tally>, SurveyError> {
    let mut statement = connection.prepare(
        "SELECT s.id, s.question, s.kind, s.choices, s.opens_at, s.closes_at, s.closed_at, s.created_by,
             b.category, b.program,
             (SELECT count(*) FROM deliveries d WHERE d.broadcast_id = s.broadcast_id AND d.state = 'sent')
         FROM surveys s JOIN broadcasts b ON b.id = s.broadcast_id
         WHERE ?1 IS NULL OR s.id = ?1 ORDER BY s.id DESC LIMIT 200",
    )?;
    let mut count =
        connection.prepare("SELECT answer, count(*) FROM survey_answers WHERE survey_id = ?1 GROUP BY answer")?;
    let rows = statement.query_map([id], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, i64>(4)?,
            row.get::<_, i64>(5)?,
            row.get::<_, Option<String>>(6)?,
            row.get::<_, String>(7)?,
            row.get::<_, Option<String>>(8)?,
            row.get::<_, Option<String>>(9)?,
            row.get::<_, i64>(10)?,
        ))
    })?;
    let mut tallies = Vec::new();
    for row in rows {
        let (id, question, kind, choices, opens_at, closes_at, closed_at, created_by, category, program, delivered) =
            row?;
        let labels: Vec<String> =
            serde_json::from_str(&choices).with_context(|| format!("survey {id}'s choices are not a JSON list"))?;
        let mut choices: Vec<Count> = labels.into_iter().map(|label| Count { label, count: 0 }).collect();
        for counted in count.query_map([id], |row| Ok((row.get::<_, u32>(0)?, row.get::<_, i64>(1)?)))? {
            let (answer, answers) = counted?;
            if let Some(choice) = choices.get_mut(answer as usize) {
                choice.count = answers;
            }
        }
        let at = |millis: i64| DateTime::from_timestamp_millis(millis).unwrap_or_default();
        let now_millis = now.timestamp_millis();
        tallies.push(Tally {
            id,
            question,
            kind: if kind == "rating" { Kind::Rating } else { Kind::Choice },
            audience: match (&category, &program) {
                (Some(_), _) => Audience::Category,
                (None, Some(_)) => Audience::Program,
                (None, None) => Audience::Everyone,
            },
            category,
            program,
            opens_at: format_japan(at(opens_at)),
            closes_at: format_japan(at(closes_at)),
            state: match () {
                () if closed_at.is_some() || now_millis >= closes_at => "closed",
                () if now_millis < opens_at => "waiting",
                () => "open",
            },
            delivered,
            total: choices.iter().map(|choice| choice.count).sum(),
            choices,
            created_by,
        });
    }
    if let Some(id) = id
        && tallies.is_empty()
    {
        return Err(SurveyError::NotFound(id));
    }
    Ok(tallies)
}

/// Survey `id` as CSV for a spreadsheet: the count of each choice, then, after an empty
/// line, every answer as an anonymous row (the choice and the Japan day it was given),
/// ordered by choice and day so that the order tells nothing of who answered when.
pub fn csv(connection: &Connection, id: i64, now: DateTime<Utc>) -> Result<String, SurveyError> {
    let tally = tallies(connection, Some(id), now)?.remove(0);
    let field = |text: &str| format!("\"{}\"", text.replace('"', "\"\""));
    let mut csv = String::from("選択肢番号,選択肢,件数\r\n");
    for (index, choice) in tally.choices.iter().enumerate() {
        csv.push_str(&format!("{},{},{}\r\n", index + 1, field(&choice.label), choice.count));
    }
    csv.push_str("\r\n選択肢番号,選択肢,回答日\r\n");
    let mut statement = connection
        .prepare("SELECT answer, answered_on FROM survey_answers WHERE survey_id = ?1 ORDER BY answer, answered_on")?;
    for row in statement.query_map([id], |row| Ok((row.get::<_, u32>(0)?, row.get::<_, i32>(1)?)))? {
        let (answer, day) = row?;
        let label = tally.choices.get(answer as usize).map_or("", |choice| choice.label.as_str());
        csv.push_str(&format!("{},{},{}\r\n", answer + 1, field(label), Day(day)));
    }
    Ok(csv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn draft(kind: Kind, choices: &[&str], audience: Audience) -> Draft {
        Draft {
            question: "子育て支援センターを利用したことがありますか。".into(),
            kind,
            choices: choices.iter().map(|choice| choice.to_string()).collect(),
            audience,
            category: None,
            program: None,
            sent_from: None,
            sent_to: None,
        }
    }

    /// Each case: (what it shows, the draft, the refusal expected or None).
    fn check_drafts(cases: Vec<(&str, Draft, Option<&str>)>) {
        let opens = Utc::now();
        let closes = opens + Duration::days(7);
        let failures: Vec<String> = cases
            .into_iter()
            .filter_map(|(what, draft, expected)| {
                let got = check(&draft, opens, closes).err().map(|error| error.to_string());
                let matches = match (&got, expected) {
                    (None, None) => true,
                    (Some(got), Some(expected)) => got.contains(expected),
                    _ => false,
                };
                (!matches).then(|| format!("{what}: expected {expected:?}, got {got:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn a_draft_is_checked_before_anything_is_stored() {
        let long_label = "あ".repeat(MAX_QUICK_REPLY_LABEL + 1);
        let fits_label = "あ".repeat(MAX_QUICK_REPLY_LABEL);
        let everyone = Audience::Everyone;
        check_drafts(vec![
            ("two choices", draft(Kind::Choice, &["はい", "いいえ"], everyone), None),
            ("five choices", draft(Kind::Choice, &["1", "2", "3", "4", "5"], everyone), None),
            ("a rating", draft(Kind::Rating, &[], everyone), None),
            ("a label at LINE's limit", draft(Kind::Choice, &[&fits_label, "いいえ"], everyone), None),
            ("one choice", draft(Kind::Choice, &["はい"], everyone), Some("2 to 5 choices, not 1")),
            ("six choices", draft(Kind::Choice, &["1", "2", "3", "4", "5", "6"], everyone), Some("not 6")),
            ("an empty choice", draft(Kind::Choice, &["はい", " "], everyone), Some("choice 2 is empty")),
            ("a long label", draft(Kind::Choice, &["はい", &long_label], everyone), Some("at most 20")),
            ("a repeated choice", draft(Kind::Choice, &["はい", "はい"], everyone), Some("repeats")),
            ("a rating with choices", draft(Kind::Rating, &["a", "b"], everyone), Some("a rating has no choices")),
            (
                "no question",
                Draft { question: "  ".into(), ..draft(Kind::Rating, &[], everyone) },
                Some("needs a question"),
            ),
            (
                "a question too long",
                Draft { question: "あ".repeat(QUESTION_LIMIT + 1), ..draft(Kind::Rating, &[], everyone) },
                Some("at most 1200"),
            ),
            (
                "a category",
                Draft { category: Some("Health".into()), ..draft(Kind::Rating, &[], Audience::Category) },
                None,
            ),
            ("a category missing", draft(Kind::Rating, &[], Audience::Category), Some("needs a category")),
            (
                "a category for everyone",
                Draft { category: Some("Health".into()), ..draft(Kind::Rating, &[], everyone) },
                Some("a category belongs to another audience"),
            ),
            (
                "a program's recipients",
                Draft {
                    program: Some("infant-checkup".into()),
                    sent_from: Some("2026-04-01".into()),
                    sent_to: Some("2026-04-30".into()),
                    ..draft(Kind::Rating, &[], Audience::Program)
                },
                None,
            ),
            (
                "a program without days",
                Draft { program: Some("infant-checkup".into()), ..draft(Kind::Rating, &[], Audience::Program) },
                Some("needs sent_from"),
            ),
            (
                "a program with a bad day",
                Draft {
                    program: Some("infant-checkup".into()),
                    sent_from: Some("2026-02-30".into()),
                    sent_to: Some("2026-04-30".into()),
                    ..draft(Kind::Rating, &[], Audience::Program)
                },
                Some("\"2026-02-30\" is not a date"),
            ),
        ]);
        let at = Utc::now();
        let refused = check(&draft(Kind::Rating, &[], Audience::Everyone), at, at).unwrap_err();
        assert!(refused.to_string().contains("closes at"), "{refused}");
    }

    /// A database with a survey of three choices open from an hour ago for a day,
    /// reserved by the administrator; its id.
    fn open_survey(connection: &mut Connection) -> i64 {
        let opens = Utc::now() - Duration::hours(1);
        create(
            connection,
            &draft(Kind::Choice, &["はい", "いいえ", "わからない"], Audience::Everyone),
            opens,
            opens + Duration::days(1),
            "user:admin",
        )
        .unwrap()
    }

    const USER: &str = "U0000000000000000000000000000a001";
    const OTHER: &str = "U0000000000000000000000000000a002";

    #[test]
    fn a_survey_is_reserved_as_a_line_only_broadcast_whose_card_the_chat_answers() {
        let mut connection = crate::testing::database();
        let id = open_survey(&mut connection);
        let (card, line_only, text): (String, bool, String) = connection
            .query_row(
                "SELECT b.card, b.line_only, b.text FROM surveys s JOIN broadcasts b ON b.id = s.broadcast_id
                 WHERE s.id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        let card: Card = serde_json::from_str(&card).unwrap();
        assert!(line_only);
        assert!(text.starts_with("子育て支援センター") && text.contains("2. いいえ"), "{text}");
        let data: Vec<&str> = card.choices.iter().map(|choice| choice.data.as_str()).collect();
        assert_eq!(data, [postback(id, 0), postback(id, 1), postback(id, 2)]);
        assert!(data.iter().all(|data| crate::chat::understands_postback(data)), "{data:?}");
        let waiting: i64 = connection
            .query_row(
                "SELECT count(*) FROM reserved_sends WHERE state = 'waiting' AND broadcast_id IS NOT NULL",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(waiting, 1);
        let audited: i64 = connection
            .query_row("SELECT count(*) FROM audit_log WHERE action = 'create-survey'", [], |row| row.get(0))
            .unwrap();
        assert_eq!(audited, 1);
    }

    #[test]
    fn an_answer_is_changed_not_duplicated_and_counted_once() {
        let mut connection = crate::testing::database();
        let id = open_survey(&mut connection);
        let now = Utc::now();
        assert_eq!(
            answer(&connection, USER, id, 0, now).unwrap(),
            Answered::Recorded { label: "はい".into(), before: None }
        );
        assert_eq!(
            answer(&connection, USER, id, 2, now).unwrap(),
            Answered::Recorded { label: "わからない".into(), before: Some("はい".into()) }
        );
        answer(&connection, OTHER, id, 2, now).unwrap();
        assert_eq!(answer(&connection, OTHER, id, 3, now).unwrap(), Answered::NoSuchChoice);
        assert_eq!(answer(&connection, OTHER, id + 1, 0, now).unwrap(), Answered::Unknown);
        let tally = tallies(&connection, Some(id), now).unwrap().remove(0);
        let counts: Vec<i64> = tally.choices.iter().map(|choice| choice.count).collect();
        assert_eq!((counts, tally.total, tally.state), (vec![0, 0, 2], 2, "open"));
    }

    #[test]
    fn a_survey_not_yet_open_or_closed_refuses_answers() {
        let mut connection = crate::testing::database();
        let id = open_survey(&mut connection);
        let now = Utc::now();
        answer(&connection, USER, id, 1, now).unwrap();
        assert_eq!(answer(&connection, USER, id, 0, now - Duration::hours(2)).unwrap(), Answered::NotOpen);
        assert_eq!(answer(&connection, USER, id, 0, now + Duration::days(2)).unwrap(), Answered::Closed);
        let stored: u32 = connection
            .query_row("SELECT answer FROM survey_answers WHERE survey_id = ?1", [id], |row| row.get(0))
            .unwrap();
        assert_eq!(stored, 1, "a refused tap changes nothing");
    }

    /// Closing expires the deliveries of the question still waiting, whether queued or to be
    /// retried, and cancels its reservation; what was sent stays sent, and another survey's
    /// deliveries and reservation are untouched.
    #[test]
    fn closing_stops_the_question_still_waiting_to_be_sent() {
        let mut connection = crate::testing::database();
        let id = open_survey(&mut connection);
        let other = open_survey(&mut connection);
        let broadcast_of = |connection: &Connection, survey: i64| -> i64 {
            connection.query_row("SELECT broadcast_id FROM surveys WHERE id = ?1", [survey], |row| row.get(0)).unwrap()
        };
        let (closing, staying) = (broadcast_of(&connection, id), broadcast_of(&connection, other));
        for (broadcast, address, state) in [
            (closing, USER, "queued"),
            (closing, OTHER, "failed-retryable"),
            (closing, "U0000000000000000000000000000a003", "sent"),
            (staying, USER, "queued"),
        ] {
            connection
                .execute(
                    "INSERT INTO deliveries (broadcast_id, channel, address, text, retry_key, state, created_at)
                     VALUES (?1, 'line', ?2, 'question', ?1 || ?2, ?3, 'now')",
                    (broadcast, address, state),
                )
                .unwrap();
        }
        let now = Utc::now();
        connection.execute("UPDATE surveys SET closes_at = ?2 WHERE id = ?1", (id, now.timestamp_millis())).unwrap();
        assert_eq!(close_due(&mut connection, now).unwrap(), 1);
        let states = |broadcast: i64| -> Vec<String> {
            connection
                .prepare("SELECT state FROM deliveries WHERE broadcast_id = ?1 ORDER BY address")
                .unwrap()
                .query_map([broadcast], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(states(closing), ["expired", "expired", "sent"]);
        assert_eq!(states(staying), ["queued"]);
        let reservation = |broadcast: i64| -> String {
            connection
                .query_row("SELECT state FROM reserved_sends WHERE broadcast_id = ?1", [broadcast], |row| row.get(0))
                .unwrap()
        };
        assert_eq!((reservation(closing), reservation(staying)), ("cancelled".to_owned(), "waiting".to_owned()));
        let detail: String = connection
            .query_row("SELECT detail FROM audit_log WHERE action = 'close-survey'", [], |row| row.get(0))
            .unwrap();
        assert_eq!(detail, "0 answers, 2 deliveries not sent");
    }

    #[test]
    fn closing_removes_every_line_id_and_keeps_the_counts_and_the_csv() {
        let mut connection = crate::testing::database();
        let id = open_survey(&mut connection);
        let later = open_survey(&mut connection);
        let now = Utc::now();
        for (user, choice) in [(USER, 0), (OTHER, 1)] {
            answer(&connection, user, id, choice, now).unwrap();
            answer(&connection, user, later, choice, now).unwrap();
        }
        let event = serde_json::json!({ "type": "postback", "source": { "userId": USER },
            "postback": { "data": postback(id, 0) } });
        connection
            .execute(
                "INSERT INTO webhook_events (webhook_event_id, event, received_at, state) VALUES ('e1', ?1, 'now', 'done')",
                [event.to_string()],
            )
            .unwrap();
        assert_eq!(next_closing(&connection).unwrap().map(|at| at > now), Some(true));
        // Only the first survey's time is up: it is pushed back an hour for the test.
        connection.execute("UPDATE surveys SET closes_at = ?2 WHERE id = ?1", (id, now.timestamp_millis())).unwrap();
        assert_eq!(close_due(&mut connection, now).unwrap(), 1);
        assert_eq!(close_due(&mut connection, now).unwrap(), 0, "a closed survey closes once");
        let named: i64 = connection
            .query_row(
                "SELECT count(*) FROM survey_answers WHERE survey_id = ?1 AND line_user_id IS NOT NULL",
                [id],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(named, 0, "no answer of the closed survey names its user");
        let events: i64 = connection.query_row("SELECT count(*) FROM webhook_events", [], |row| row.get(0)).unwrap();
        assert_eq!(events, 0, "the stored tap is forgotten");
        let still_open: i64 = connection
            .query_row(
                "SELECT count(*) FROM survey_answers WHERE survey_id = ?1 AND line_user_id IS NOT NULL",
                [later],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(still_open, 2, "the open survey keeps whose answer is whose, so it can be changed");
        assert_eq!(answer(&connection, USER, id, 1, now).unwrap(), Answered::Closed);
        let tally = tallies(&connection, Some(id), now).unwrap().remove(0);
        assert_eq!((tally.total, tally.state), (2, "closed"));
        let csv = csv(&connection, id, now).unwrap();
        let today = day_in_japan(now);
        assert_eq!(
            csv,
            format!(
                "選択肢番号,選択肢,件数\r\n1,\"はい\",1\r\n2,\"いいえ\",1\r\n3,\"わからない\",0\r\n\r\n\
                 選択肢番号,選択肢,回答日\r\n1,\"はい\",{today}\r\n2,\"いいえ\",{today}\r\n"
            )
        );
        assert!(!csv.contains('U'), "{csv}");
        let audited: i64 = connection
            .query_row("SELECT count(*) FROM audit_log WHERE action = 'close-survey'", [], |row| row.get(0))
            .unwrap();
        assert_eq!(audited, 1);
    }

    #[test]
    fn a_program_audience_is_those_sent_its_notices_in_the_period_on_line_only() {
        let mut connection = crate::testing::database();
        let today = crate::time::today_in_japan();
        connection
            .execute_batch(&format!(
                "INSERT INTO plugin_versions (id, program, sha256, wasm, manifest, published_by, published_at)
                     VALUES (1, 'infant-checkup', '', x'', '{{}}', 'test', 'now');
                 INSERT INTO runs (id, program, version_id, snapshot_id, run_on, started_at, outcome)
                     VALUES (1, 'infant-checkup', 1, 1, 0, 'now', 'succeeded');
                 INSERT INTO registrations (resident_id, line_user_id, registered_at, email, channels)
                     VALUES ('001', '{USER}', 'now', 'a@example.jp', 'both'), ('002', '{OTHER}', 'now', NULL, 'line');
                 INSERT INTO notices (id, program, resident_id, occasion, send_on, expires_on, run_id)
                     VALUES (1, 'infant-checkup', '001', 'first', 0, 0, 1);
                 INSERT INTO deliveries (notice_id, channel, address, text, retry_key, state, created_at, sent_at)
                     VALUES (1, 'line', '{USER}', 't', 'k1', 'sent', 'now', '{}');",
                crate::time::now_text()
            ))
            .unwrap();
        let recipients = |connection: &mut Connection, from: Day, to: Day| {
            let opens = Utc::now() - Duration::hours(1);
            let program = Draft {
                program: Some("infant-checkup".into()),
                sent_from: Some(from.to_string()),
                sent_to: Some(to.to_string()),
                ..draft(Kind::Rating, &[], Audience::Program)
            };
            let id = create(connection, &program, opens, opens + Duration::days(1), "user:admin").unwrap();
            let broadcast: i64 =
                connection.query_row("SELECT broadcast_id FROM surveys WHERE id = ?1", [id], |row| row.get(0)).unwrap();
            crate::outbox::enqueue_broadcast(connection, broadcast).unwrap();
            let addressed: Vec<(String, String)> = connection
                .prepare("SELECT channel, address FROM deliveries WHERE broadcast_id = ?1")
                .unwrap()
                .query_map([broadcast], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            addressed
        };
        assert_eq!(
            recipients(&mut connection, today, today),
            [("line".to_owned(), USER.to_owned())],
            "no e-mail, no stranger"
        );
        assert_eq!(
            recipients(&mut connection, today.add_days(1), today.add_days(2)),
            [],
            "nobody was sent one in that period"
        );
    }
}
