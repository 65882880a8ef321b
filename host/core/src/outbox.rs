//! The outbox: due notices of registered residents become deliveries, each with its retry
//! key written before any request goes out; a recipient's messages of the day go out in
//! one request (up to 5 on LINE, all of them in one e-mail), and identical requests are
//! grouped into LINE multicasts of at most 500. They are then sent, several requests at a
//! time, and marked.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Result;
use futures::StreamExt;
use oshirase_sdk::{Day, Field, Population, Relationship};
use rusqlite::Connection;
use tokio_util::sync::CancellationToken;

use crate::channel::card::{Card, flex_message};
use crate::channel::line::{LineClient, MESSAGES_PER_REQUEST, MULTICAST_LIMIT, MonthlyQuota, aggregation_unit};
use crate::channel::{Channels, SendOutcome};
use crate::database::Database;
use crate::link_opens::Button;
use crate::message::{for_several, mail_of, render};
use crate::registry::{Manifest, active_versions};
use crate::retry::{Next, RetryPolicy};
use crate::snapshot::ResidentIds;
use crate::time::now_text;

/// Up to this age a notice about a child goes to a registered parent in the household.
const GUARDIAN_AGE: u32 = 18;

/// The population columns [`reachable_rows`] reads, which a run reads with its programs'.
pub const REACH_FIELDS: [Field; 3] = [Field::BirthDay, Field::Household, Field::Relationship];

/// Which rows of `population` have someone to be told on `today`: a resident with an active
/// registration; a minor (under `GUARDIAN_AGE`) of a household whose head or spouse has
/// one; and every person registered in the chat (the rows from `snapshot_rows` on). These
/// are the only residents `enqueue_due` may address (it then also wants an address, a
/// channel and no mute), so a notice about anyone else could never be sent: a day's run
/// stores only these notices and derives the others again on each run, which loses none of
/// them (a resident who registers is told at the next run) and keeps no eligibility,
/// reasons included, about residents who never asked to be told. Reads the registered ids
/// and, from the population, the [`REACH_FIELDS`] of the snapshot's rows, which must be
/// there.
pub fn reachable_rows(
    connection: &Connection,
    resident_ids: &ResidentIds,
    population: &Population,
    snapshot_rows: u32,
    today: Day,
) -> Result<Vec<bool>> {
    let snapshot_rows = snapshot_rows as usize;
    let (birth_day, household, relationship) = (&population.birth_day, &population.household, &population.relationship);
    anyhow::ensure!(
        [birth_day.len(), household.len(), relationship.len()].iter().all(|length| *length >= snapshot_rows),
        "the population was read without the birth days, households and relationships who can be told needs"
    );
    let mut reachable = vec![false; population.size as usize];
    if let Some(appended) = reachable.get_mut(snapshot_rows..) {
        appended.fill(true);
    }
    let mut statement = connection.prepare_cached("SELECT resident_id FROM registrations WHERE active = 1")?;
    let registered: HashSet<String> = statement.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
    if registered.is_empty() {
        return Ok(reachable);
    }
    let households = household.iter().take(snapshot_rows).max().map_or(0, |most| *most as usize + 1);
    let mut with_registered_parent = vec![false; households];
    let parents = [Relationship::Head.code(), Relationship::Spouse.code()];
    for (row, id) in resident_ids.iter().take(snapshot_rows).enumerate() {
        if registered.contains(id) {
            reachable[row] = true;
            if parents.contains(&relationship[row]) {
                with_registered_parent[household[row] as usize] = true;
            }
        }
    }
    let youngest_adult_birth = latest_birth_day_of_age(GUARDIAN_AGE, today).0;
    for row in 0..snapshot_rows {
        if birth_day[row] > youngest_adult_birth && with_registered_parent[household[row] as usize] {
            reachable[row] = true;
        }
    }
    Ok(reachable)
}

/// Turns every notice due on `today` into a delivery for each registered recipient — the
/// resident, or for a minor without their own registration, the registered heads and
/// spouses of the household; for a due date or birth date registered in the chat
/// (`self:<id>`), the LINE user who registered it while they follow the account — on each
/// channel the recipient chose (LINE, e-mail or both). A recipient who muted the program's
/// category in the chat gets nothing (until they unmute it while the notice is still
/// due). A recipient who would get the same text for several notices (a parent of twins)
/// gets one message that says how many it is about, never who.
///
/// One request a recipient a day: LINE counts a request to one user as one message of the
/// city's monthly quota however many message objects it holds, so a recipient's messages
/// go out together (`bundles_for_today`: on LINE the 5 with the nearest deadlines, by
/// e-mail all of them), and a recipient queued something earlier on `today` gets the rest
/// the next day, unless it expires today. Each message is a delivery per notice, its
/// `part` the message's place in the request; the deliveries of one request are queued
/// together under one key (`batch_key`), and recipients of identical requests are grouped
/// into LINE multicasts of at most 500. Returns how many deliveries were queued.
pub fn enqueue_due(connection: &mut Connection, today: Day) -> Result<usize> {
    let Some(snapshot_id) = crate::snapshot::active(connection)? else {
        return Ok(0);
    };
    let manifests: HashMap<String, Manifest> =
        active_versions(connection)?.into_iter().map(|version| (version.program, version.manifest)).collect();
    let wording = crate::message::wording(connection)?;
    let links = crate::message::links(connection)?;
    let youngest_adult_birth = latest_birth_day_of_age(GUARDIAN_AGE, today);
    let transaction = connection.transaction()?;
    let mut queued = 0;
    {
        // Two kinds of recipient: the resident themselves, and for a minor without their own
        // registration, the registered heads and spouses of the household ("guardians",
        // gathered once so that each notice looks its household up in an index). Only
        // registrations with an address can receive anything, so only they are joined.
        let mut due = transaction.prepare(
            "WITH due AS (
                 SELECT n.id, n.program, n.occasion, n.expires_on, n.resident_id FROM notices n
                 WHERE n.send_on <= ?2 AND n.expires_on >= ?2),
             addressed_registrations AS MATERIALIZED (
                 SELECT resident_id, line_user_id, email, channels FROM registrations
                 WHERE active = 1 AND (line_user_id IS NOT NULL OR email IS NOT NULL)),
             guardians AS MATERIALIZED (
                 SELECT r.household_id, reg.line_user_id, reg.email, reg.channels FROM addressed_registrations reg
                 JOIN residents r ON r.snapshot_id = ?1 AND r.resident_id = reg.resident_id
                 WHERE r.relationship IN (?4, ?5)),
             recipients AS MATERIALIZED (
                 SELECT due.*, reg.line_user_id, reg.email, reg.channels FROM due
                 JOIN addressed_registrations reg ON reg.resident_id = due.resident_id
                 JOIN residents r ON r.snapshot_id = ?1 AND r.resident_id = due.resident_id
                 UNION ALL
                 SELECT due.*, g.line_user_id, g.email, g.channels FROM due
                 JOIN residents r ON r.snapshot_id = ?1 AND r.resident_id = due.resident_id
                 JOIN guardians g ON g.household_id = r.household_id
                 WHERE r.birth_day > ?3
                   AND NOT EXISTS (SELECT 1 FROM registrations own
                       WHERE own.resident_id = due.resident_id AND own.active = 1)
                 UNION ALL
                 SELECT due.*, s.line_user_id, NULL, 'line' FROM due
                 JOIN self_registrations s ON due.resident_id = 'self:' || s.id
                 JOIN line_users u ON u.line_user_id = s.line_user_id AND u.following = 1),
             addressed AS (
                 SELECT id, program, occasion, expires_on, 'line' AS channel, line_user_id AS address, line_user_id
                 FROM recipients
                 WHERE channels IN ('line', 'both') AND line_user_id IS NOT NULL
                 UNION ALL
                 SELECT id, program, occasion, expires_on, 'mail', email, line_user_id FROM recipients
                 WHERE channels IN ('mail', 'both') AND email IS NOT NULL)
             SELECT * FROM addressed
             WHERE NOT EXISTS (SELECT 1 FROM deliveries d
                 WHERE d.notice_id = addressed.id AND d.channel = addressed.channel AND d.address = addressed.address)
             ORDER BY program, occasion, expires_on, channel, address, id",
        )?;
        let rows: Vec<DueRow> = due
            .query_map(
                (snapshot_id, today.0, youngest_adult_birth.0, Relationship::Head.code(), Relationship::Spouse.code()),
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?)),
            )?
            .collect::<Result<_, _>>()?;
        // Muted categories by LINE user: few users mute anything, so this stays small.
        let mut muted: HashMap<String, Vec<String>> = HashMap::new();
        let mut statement = transaction.prepare("SELECT line_user_id, category FROM muted_categories")?;
        let mut mutes = statement.query([])?;
        while let Some(row) = mutes.next()? {
            muted.entry(row.get(0)?).or_default().push(row.get(1)?);
        }
        let mut rows = rows
            .into_iter()
            .filter(|(_, program, _, _, _, _, line_user_id)| {
                manifests.get(program).is_some_and(|manifest| {
                    !line_user_id
                        .as_ref()
                        .and_then(|user| muted.get(user))
                        .is_some_and(|categories| categories.contains(&manifest.category))
                })
            })
            .peekable();
        // Each recipient's messages: a text once per (program, occasion, deadline), however
        // many notices it is about (those rows come one after another).
        let mut by_recipient: BTreeMap<(String, String), Vec<Message>> = BTreeMap::new();
        let mut links_registered = HashSet::new();
        while let Some((notice_id, program, occasion, expires_on, channel, address, _)) = rows.next() {
            let mut notices = vec![notice_id];
            while let Some((other, ..)) = rows.next_if(|next| {
                (&next.1, &next.2, next.3, &next.4, &next.5) == (&program, &occasion, expires_on, &channel, &address)
            }) {
                notices.push(other);
            }
            let manifest = &manifests[&program];
            let Some(occasion) = manifest.occasion(&occasion) else { continue };
            // Wording staff gave the occasion in the console replaces the plugin's default.
            let template = wording.get(&(program.clone(), occasion.key.clone())).unwrap_or(&occasion.template);
            let mut text = render(template, &manifest.name, &manifest.contact, Day(expires_on));
            if notices.len() > 1 {
                text = for_several(&text, notices.len());
            }
            let set = links.get(&(program.clone(), occasion.key.clone())).cloned().unwrap_or_default();
            let card = Card {
                code: program.clone(),
                occasion: occasion.key.clone(),
                program: manifest.name.clone(),
                title: occasion.title.clone(),
                deadline: Day(expires_on).era_format(),
                // A plugin's `source_url` is its division's text: a card links to it only
                // when LINE would take it, lest one bad link fail the recipient's whole day.
                details_url: set
                    .details_url
                    .or_else(|| crate::message::card_link("source_url", Some(&manifest.source_url)).ok().flatten()),
                booking_url: set.booking_url,
                choices: Vec::new(),
            };
            // Where each of the card's links leads, for `/r/{token}` (`link_opens`): once a
            // link, however many recipients carry it.
            for (button, url) in [(Button::Details, &card.details_url), (Button::Booking, &card.booking_url)] {
                if let Some(url) = url
                    && links_registered.insert((occasion.key.clone(), button.as_str(), url.clone()))
                {
                    crate::link_opens::register(&transaction, &program, &occasion.key, button, url)?;
                }
            }
            let content = MessageContent {
                program,
                subject: format!("【{}】{}", manifest.name, occasion.title),
                text,
                card: Some(serde_json::to_string(&card)?),
            };
            by_recipient.entry((channel, address)).or_default().push(Message { content, expires_on, ids: notices });
        }
        let told_today = queued_on(&transaction, today)?;
        let mut groups = Groups::new();
        for ((channel, address), messages) in by_recipient {
            let already = told_today.contains(&(channel.clone(), address.clone()));
            for bundle in bundles_for_today(&channel, messages, already, today) {
                let (contents, ids): (Bundle, Vec<Vec<i64>>) =
                    bundle.into_iter().map(|message| (message.content, message.ids)).unzip();
                groups.entry((channel.clone(), contents)).or_default().push((address.clone(), ids));
            }
        }
        queued += insert_batched(&transaction, Source::Notice, groups, Some(today))?;
    }
    transaction.commit()?;
    Ok(queued)
}

/// What one message says: its program (or `broadcast-N`), e-mail subject, plain text and,
/// for a notice, its card as JSON.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct MessageContent {
    program: String,
    subject: String,
    text: String,
    card: Option<String>,
}

/// One message due for one recipient and the notices it tells of.
struct Message {
    content: MessageContent,
    expires_on: i32,
    ids: Vec<i64>,
}

/// The recipients (channel, address) queued a notice on `today` already.
fn queued_on(connection: &Connection, today: Day) -> Result<HashSet<(String, String)>> {
    let mut statement = connection.prepare_cached(
        "SELECT DISTINCT channel, address FROM deliveries WHERE queued_on = ?1 AND notice_id IS NOT NULL",
    )?;
    let told = statement.query_map([today.0], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?;
    Ok(told)
}

/// What one recipient gets today of the `messages` due, each list one request: the most
/// urgent first (the nearest deadline), up to `MESSAGES_PER_REQUEST` on LINE and all of
/// them by e-mail, unless the recipient was `already_told_today`. What does not fit waits
/// for the next day, when it is still due (nothing here is stored about it), except what
/// expires today: that goes out today after all, in a request of its own, rather than be
/// lost.
fn bundles_for_today(
    channel: &str,
    mut messages: Vec<Message>,
    already_told_today: bool,
    today: Day,
) -> Vec<Vec<Message>> {
    let limit = if channel == "line" { MESSAGES_PER_REQUEST } else { usize::MAX };
    messages.sort_by(|a, b| (a.expires_on, &a.content).cmp(&(b.expires_on, &b.content)));
    let first = if already_told_today { 0 } else { limit.min(messages.len()) };
    let rest = messages.split_off(first);
    let mut bundles = Vec::new();
    if !messages.is_empty() {
        bundles.push(messages);
    }
    let mut last_day: Vec<Message> = rest.into_iter().filter(|message| message.expires_on <= today.0).collect();
    while !last_day.is_empty() {
        let tail = last_day.split_off(limit.min(last_day.len()));
        bundles.push(std::mem::replace(&mut last_day, tail));
    }
    bundles
}

/// What one request says, message by message.
type Bundle = Vec<MessageContent>;

/// A recipient of a bundle: (address, the notice or broadcast ids each message tells of).
type Recipient = (String, Vec<Vec<i64>>);

/// Deliveries to queue, grouped by channel and bundle, with their recipients.
type Groups = BTreeMap<(String, Bundle), Vec<Recipient>>;

/// A due notice for one address: (notice id, program, occasion, expires on, channel,
/// address, the recipient's LINE user id, whose muted categories apply).
type DueRow = (i64, String, String, i32, String, String, Option<String>);

/// What a delivery carries: a program's notice, or a message staff broadcast.
#[derive(Clone, Copy)]
enum Source {
    Notice,
    Broadcast,
}

/// Queues deliveries grouped by channel and bundle, each group's recipients given with
/// the notice or broadcast ids of each message. LINE takes up to 500 recipients per
/// request, so a LINE group becomes multicasts of at most 500, each under a key named by
/// its members' (`batch_key`); an e-mail goes to one. A request's deliveries are queued
/// with consecutive ids, recipient by recipient, message (`part`) by message, so the
/// sender reads them back as one request. `queued_on` marks notices' deliveries with the
/// day they were queued (None for broadcasts). Returns how many were queued.
///
/// Each delivery's retry key is named by what it delivers (`delivery_key`), so a delivery
/// whose record a restore lost is queued again under the key LINE already answered: it
/// is not delivered twice. A delivery whose key is already stored is the same delivery,
/// and is not queued again.
fn insert_batched(transaction: &Connection, source: Source, groups: Groups, queued_on: Option<Day>) -> Result<usize> {
    let mut insert = transaction.prepare_cached(match source {
        Source::Notice => {
            "INSERT OR IGNORE INTO deliveries (notice_id, channel, address, subject, text, card, retry_key, batch_key,
                 part, queued_on, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'queued', ?11)"
        }
        Source::Broadcast => {
            "INSERT OR IGNORE INTO deliveries (broadcast_id, channel, address, subject, text, card, retry_key,
                 batch_key, part, queued_on, state, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'queued', ?11)"
        }
    })?;
    let mut notice_of =
        transaction.prepare_cached("SELECT program, resident_id, occasion, instance FROM notices WHERE id = ?1")?;
    let queued_at = now_text();
    let queued_on = queued_on.map(|day| day.0);
    let mut queued = 0;
    for ((channel, bundle), recipients) in groups {
        let addresses_per_request = if channel == "line" { MULTICAST_LIMIT } else { 1 };
        for request in chunks_of_recipients(&recipients, addresses_per_request) {
            // (address, part, source id, retry key) of each delivery, in the order queued.
            let mut deliveries = Vec::new();
            for (address, parts) in request {
                for (part, ids) in parts.iter().enumerate() {
                    for source_id in ids {
                        let key = match source {
                            // A notice is (program, resident, occasion, instance) for good; its row
                            // id is not, since a restored database may give the id to another.
                            Source::Notice => {
                                let (program, resident, occasion, instance): (String, String, String, i32) = notice_of
                                    .query_row([source_id], |row| {
                                        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                                    })?;
                                let instance = instance.to_string();
                                delivery_key(&["notice", &program, &resident, &occasion, &instance, &channel, address])
                            }
                            // A broadcast's id with its text: another broadcast given the same id
                            // after a restore says something else.
                            Source::Broadcast => delivery_key(&[
                                "broadcast",
                                &source_id.to_string(),
                                &bundle[part].text,
                                &channel,
                                address,
                            ]),
                        };
                        deliveries.push((address, part, *source_id, key));
                    }
                }
            }
            let keys: Vec<String> = deliveries.iter().map(|(.., key)| key.clone()).collect();
            let batch_key = batch_key(&keys);
            for (address, part, source_id, key) in &deliveries {
                let content = &bundle[*part];
                queued += insert.execute((
                    source_id,
                    &channel,
                    address,
                    &content.subject,
                    &content.text,
                    &content.card,
                    key,
                    &batch_key,
                    *part as i64,
                    queued_on,
                    &queued_at,
                ))?;
            }
        }
    }
    Ok(queued)
}

/// The retry key of a delivery, named by what it delivers to whom.
fn delivery_key(parts: &[&str]) -> String {
    crate::hashing::name_based_uuid(parts)
}

/// The key of the one request that carries `keys`' deliveries, when there are several:
/// named by all of them, so the same deliveries sent together have the same key again.
fn batch_key(keys: &[String]) -> Option<String> {
    (keys.len() > 1).then(|| {
        let mut parts = vec!["batch"];
        parts.extend(keys.iter().map(String::as_str));
        delivery_key(&parts)
    })
}

/// The most deliveries one request is queued with, so that a whole request always fits
/// in one step's read (`ROWS_PER_STEP`).
const DELIVERIES_PER_REQUEST: usize = ROWS_PER_STEP / 2;

/// Cuts `recipients` into requests of at most `addresses` recipients and
/// `DELIVERIES_PER_REQUEST` deliveries each, never parting one recipient's.
fn chunks_of_recipients(recipients: &[Recipient], addresses: usize) -> Vec<&[Recipient]> {
    let mut chunks = Vec::new();
    let (mut start, mut deliveries) = (0, 0);
    for (index, (_, parts)) in recipients.iter().enumerate() {
        let own: usize = parts.iter().map(Vec::len).sum();
        if index > start && (index - start == addresses || deliveries + own > DELIVERIES_PER_REQUEST) {
            chunks.push(&recipients[start..index]);
            (start, deliveries) = (index, 0);
        }
        deliveries += own;
    }
    if start < recipients.len() {
        chunks.push(&recipients[start..]);
    }
    chunks
}

/// Queues broadcast `broadcast_id` for every active registration — or, when the broadcast
/// names a category, those who have not muted it; without a category, those who have not
/// stopped everything — and the self-registered LINE users who follow the account, on the
/// channels each chose (on LINE only for a `line_only` broadcast, a survey answered with
/// a tap). A broadcast naming a program goes only to those of them who were sent a notice
/// of it on a Japan day from `sent_from` to `sent_to`. Its card, if any, goes with it.
/// Queueing twice queues nothing new. Returns how many were queued.
pub fn enqueue_broadcast(connection: &mut Connection, broadcast_id: i64) -> Result<usize> {
    let transaction = connection.transaction()?;
    type Broadcast = (String, String, Option<String>, Option<String>, bool, Option<String>, Option<i32>, Option<i32>);
    let (title, text, category, card, line_only, program, sent_from, sent_to): Broadcast = transaction.query_row(
        "SELECT title, text, category, card, line_only, program, sent_from, sent_to FROM broadcasts WHERE id = ?1",
        [broadcast_id],
        |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?, row.get(7)?))
        },
    )?;
    // The program's recipients: addresses its notices were sent to between the two days,
    // compared as the UTC text of each Japan midnight, as `sent_at` is stored.
    let midnight = |day: Option<i32>| day.map(|day| crate::time::japan_midnight_text(Day(day)));
    let (sent_since, sent_before) = (midnight(sent_from), midnight(sent_to.map(|day| day + 1)));
    let rows: Vec<(String, String)> = transaction
        .prepare(
            "WITH recipients AS (
                 SELECT line_user_id, email, channels FROM registrations WHERE active = 1
                 UNION
                 SELECT s.line_user_id, NULL, 'line' FROM self_registrations s
                 JOIN line_users u ON u.line_user_id = s.line_user_id AND u.following = 1),
             unmuted AS (
                 SELECT * FROM recipients r WHERE r.line_user_id IS NULL OR (
                     CASE WHEN ?2 IS NULL THEN (SELECT count(*) FROM muted_categories m
                         WHERE m.line_user_id = r.line_user_id) < 5
                          ELSE NOT EXISTS (SELECT 1 FROM muted_categories m
                              WHERE m.line_user_id = r.line_user_id AND m.category = ?2) END)),
             told AS (
                 SELECT * FROM unmuted r WHERE ?4 IS NULL OR EXISTS (SELECT 1 FROM deliveries d
                     JOIN notices n ON n.id = d.notice_id
                     WHERE n.program = ?4 AND d.state = 'sent' AND d.address IN (r.line_user_id, r.email)
                         AND d.sent_at >= ?5 AND d.sent_at < ?6)),
             addressed AS (
                 SELECT DISTINCT 'line' AS channel, line_user_id AS address FROM told
                 WHERE channels IN ('line', 'both') AND line_user_id IS NOT NULL
                 UNION
                 SELECT 'mail', email FROM told
                 WHERE channels IN ('mail', 'both') AND email IS NOT NULL AND NOT ?3)
             SELECT channel, address FROM addressed
             WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.broadcast_id = ?1 AND d.channel = addressed.channel
                 AND d.address = addressed.address)
             ORDER BY channel, address",
        )?
        .query_map((broadcast_id, &category, line_only, &program, &sent_since, &sent_before), |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut groups = Groups::new();
    let bundle = vec![MessageContent {
        program: format!("broadcast-{broadcast_id}"),
        subject: format!("【お知らせ】{title}"),
        text,
        card,
    }];
    for (channel, address) in rows {
        groups.entry((channel, bundle.clone())).or_default().push((address, vec![vec![broadcast_id]]));
    }
    let queued = insert_batched(&transaction, Source::Broadcast, groups, None)?;
    transaction.commit()?;
    Ok(queued)
}

/// The latest birth day of someone who has reached `years` by law on `today`; anyone born
/// after it is younger.
fn latest_birth_day_of_age(years: u32, today: Day) -> Day {
    let mut birth = today.add_months_clamped(-12 * years as i32);
    while birth.age_on(today) < years {
        birth = birth.add_days(-1);
    }
    while birth.add_days(1).age_on(today) >= years {
        birth = birth.add_days(1);
    }
    birth
}

/// How many requests one step of a pass marks `sending` together before sending them: the
/// most a crash can leave to be sent again (each again under its own retry key).
const REQUESTS_PER_STEP: usize = 256;
/// The most deliveries one step reads.
const ROWS_PER_STEP: usize = 4_096;
/// LINE remembers a retry key for 24 hours. A delivery first tried longer ago than this
/// (an hour short of it, for clocks and slow passes) is not tried again: if its first
/// attempt did arrive, LINE would no longer answer 409, and the resident would see it twice.
const RETRY_KEY_LIFETIME_MILLIS: i64 = 23 * 3600 * 1000;

/// One request to a channel: one delivery, or the members of a batch — a multicast, a
/// recipient's messages of the day, a message that answers several notices, or all three.
struct Request {
    /// The deliveries it carries, and the addresses they go to, each once.
    ids: Vec<i64>,
    addresses: Vec<String>,
    /// `line` or `mail`.
    channel: String,
    /// The program of the first message, whose aggregation unit LINE counts it under.
    program: String,
    /// Its messages, in order.
    messages: Vec<OutgoingMessage>,
    /// The retry key of a lone delivery, or the batch key of a multicast.
    retry_key: String,
}

/// One message of a request as it goes out.
pub struct OutgoingMessage {
    pub subject: String,
    pub text: String,
    pub card: Option<Card>,
}

/// A request's messages as LINE message objects: its cards in one Flex message (a bubble,
/// or a carousel of several), each message without a card as a text.
fn line_messages(messages: &[OutgoingMessage], public_url: Option<&str>) -> Vec<serde_json::Value> {
    let cards: Vec<(Card, &str)> = messages
        .iter()
        .filter_map(|message| Some((message.card.as_ref()?.linked_through(public_url), message.text.as_str())))
        .collect();
    let cards: Vec<(&Card, &str)> = cards.iter().map(|(card, text)| (card, *text)).collect();
    let mut objects: Vec<serde_json::Value> = messages
        .iter()
        .filter(|message| message.card.is_none())
        .map(|message| serde_json::json!({ "type": "text", "text": message.text }))
        .collect();
    if !cards.is_empty() {
        objects.insert(0, flex_message(&cards));
    }
    objects
}

/// What one pass over the outbox did: how each delivery it tried ended, and how many
/// requests that took.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SendSummary {
    pub sent: usize,
    /// Still to be retried by a later pass.
    pub retryable: usize,
    pub failed: usize,
    pub requests: usize,
    /// Deliveries left to a later pass at its end (retries not yet due included).
    pub waiting: usize,
    /// LINE's monthly quota as read at the start of the pass, when it could be read.
    pub quota: Option<MonthlyQuota>,
    /// LINE deliveries that failed for good or waited too long, queued again by e-mail.
    pub fell_back_to_mail: usize,
}

/// Milliseconds since the epoch, the unit of `deliveries.next_attempt_at`.
fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

/// When the earliest delivery waiting to be tried again falls due, if any.
pub fn next_retry(connection: &Connection) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    let at: Option<i64> = connection.query_row(
        "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'failed-retryable'",
        [],
        |row| row.get(0),
    )?;
    Ok(at.and_then(chrono::DateTime::from_timestamp_millis))
}

/// Which deliveries not yet sent a resident's choice stops (`cancel_undelivered`).
pub enum Undelivered<'a> {
    /// Every delivery to this LINE user or address.
    To(&'a str),
    /// Every e-mail to this address, unless a registration still uses it.
    MailToUnregistered(&'a str),
    /// Every delivery of a notice about this resident, of one program when given.
    About { resident_id: &'a str, program: Option<&'a str> },
}

/// Makes the deliveries `which` names that are not yet sent fail for good, with `reason`
/// as their last error, so that none goes out after the resident said no. The outbox is
/// the only writer of delivery states: the chat calls this.
pub fn cancel_undelivered(connection: &Connection, which: Undelivered, reason: &str) -> Result<usize> {
    const UPDATE: &str = "UPDATE deliveries SET state = 'failed-permanent', last_error = ?1, next_attempt_at = NULL
                          WHERE state IN ('queued', 'sending', 'failed-retryable')";
    let cancelled = match which {
        Undelivered::To(address) => connection.execute(&format!("{UPDATE} AND address = ?2"), (reason, address))?,
        Undelivered::MailToUnregistered(address) => connection.execute(
            &format!(
                "{UPDATE} AND channel = 'mail' AND address = ?2 AND NOT EXISTS (SELECT 1 FROM registrations
                     WHERE email = ?2)"
            ),
            (reason, address),
        )?,
        Undelivered::About { resident_id, program } => connection.execute(
            &format!(
                "{UPDATE} AND notice_id IN (SELECT id FROM notices
                     WHERE resident_id = ?2 AND (?3 IS NULL OR program = ?3))"
            ),
            (reason, resident_id, program),
        )?,
    };
    Ok(cancelled)
}

/// Sends every delivery that is due — queued, retryable and due again, or left `sending`
/// by a crash — reusing each request's retry key, and retries what LINE did not accept as
/// `policy` says, waiting up to `policy.linger` for retries to fall due. Each step marks
/// its deliveries `sending` before their requests go out, sends them at most
/// `concurrent_requests` at a time, and records every outcome before the next step. Deliveries whose notice expired
/// before `today` are marked expired instead (a late notice is worse than none), and those first tried longer ago
/// than LINE keeps retry keys fail rather than risk a duplicate. When LINE's monthly
/// quota would be exceeded, what does not fit waits for a later pass, with a warning.
/// With e-mail configured, a LINE delivery that fails for good, or that LINE could not
/// take for `fallback_after`, is queued again by e-mail to a recipient who has an address;
/// without it, e-mail deliveries wait. Once `stop` is cancelled no new step starts: the
/// requests in flight finish and their outcomes are recorded, and the rest stay as they
/// are for a later pass; those of the step not yet begun go back to the queue.
pub async fn send_queued(
    database: &Database,
    channels: &Channels,
    today: Day,
    policy: &RetryPolicy,
    stop: &CancellationToken,
) -> Result<SendSummary> {
    let line = &channels.line;
    let mail_configured = channels.mail.is_some();
    let fallback_after = channels.mail.as_ref().map(|mail| mail.fallback_after.as_millis() as i64);
    let (waiting_on_line, mut fell_back) =
        database.write(move |connection| retire_late(connection, today, now_millis(), fallback_after)).await?;
    let quota = if waiting_on_line > 0 { read_quota(line, waiting_on_line).await } else { None };
    let mut budget = quota.and_then(|quota| quota.remaining());
    let deadline = std::time::Instant::now() + policy.linger;
    let mut outcomes: HashMap<i64, Next> = HashMap::new();
    let mut requests = 0;
    let mut cursor = 0;
    while !stop.is_cancelled() {
        let now = now_millis();
        let (mut due, next_due_at) =
            database.write(move |connection| due_requests(connection, now, cursor, mail_configured)).await?;
        let Some(furthest) = due.iter().flat_map(|request| request.ids.iter().copied()).max() else {
            if cursor > 0 {
                // The end of the outbox: look again from its start for retries now due.
                cursor = 0;
                continue;
            }
            // Nothing due now: wait for the earliest retry if it falls due within the pass.
            let Some(at) = next_due_at else { break };
            let wait = std::time::Duration::from_millis((at - now).max(0) as u64);
            if std::time::Instant::now() + wait > deadline {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => {}
            }
            continue;
        };
        cursor = furthest;
        let quota_reached = budget.as_mut().is_some_and(|remaining| keep_within_budget(&mut due, remaining));
        let members: Vec<Vec<i64>> = due.iter().map(|request| request.ids.clone()).collect();
        let attempts = database.write(move |connection| mark_sending(connection, &members, now_millis())).await?;
        let answered: Vec<(Request, u32, Option<SendOutcome>)> = futures::stream::iter(due.into_iter().zip(attempts))
            .map(|(request, attempts)| async move {
                // Once told to stop, a request not yet begun is not sent at all.
                if stop.is_cancelled() {
                    return (request, attempts, None);
                }
                let outcome = match &channels.mail {
                    Some(mail) if request.channel == "mail" => {
                        let texts: Vec<(String, String)> = request
                            .messages
                            .iter()
                            .map(|message| {
                                let links = message
                                    .card
                                    .as_ref()
                                    .map(|card| card.linked_through(channels.public_url.as_deref()).mail_links())
                                    .unwrap_or_default();
                                (message.subject.clone(), format!("{}{links}", message.text))
                            })
                            .collect();
                        let (subject, body) = mail_of(&texts);
                        mail.client.send(&request.addresses[0], &subject, &body, &request.retry_key).await
                    }
                    _ => {
                        let messages = line_messages(&request.messages, channels.public_url.as_deref());
                        line.send(
                            &request.addresses,
                            &messages,
                            &request.retry_key,
                            &aggregation_unit(&request.program),
                        )
                        .await
                    }
                };
                (request, attempts, Some(outcome))
            })
            .buffer_unordered(line.concurrent_requests())
            .collect()
            .await;
        let mut decided = Vec::with_capacity(answered.len());
        for (request, attempts, outcome) in answered {
            let Some(outcome) = outcome else {
                decided.push(Decided { ids: request.ids, next: None, error: String::new(), fall_back: false });
                continue;
            };
            requests += 1;
            let next = policy.next(&outcome, attempts, rand::random::<f64>());
            let error = match outcome {
                SendOutcome::Retryable(error) | SendOutcome::Permanent(error) => {
                    tracing::warn!(
                        channel = %request.channel,
                        program = %request.program,
                        recipients = request.ids.len(),
                        attempts,
                        %error,
                        "request not accepted"
                    );
                    if next == Next::GiveUp { format!("gave up after attempt {attempts}: {error}") } else { error }
                }
                SendOutcome::Accepted | SendOutcome::AlreadyAccepted => String::new(),
            };
            for id in &request.ids {
                outcomes.insert(*id, next.clone());
            }
            let fall_back = mail_configured && request.channel == "line" && next == Next::GiveUp;
            decided.push(Decided { ids: request.ids, next: Some(next), error, fall_back });
        }
        fell_back += database.write(move |connection| record_outcomes(connection, &decided)).await?;
        if quota_reached {
            tracing::warn!("LINE's monthly message quota is used up: the rest waits for a later pass");
            break;
        }
    }
    let waiting: i64 = database
        .read(|connection| {
            Ok(connection.query_row(
                "SELECT count(*) FROM deliveries WHERE state IN ('queued', 'sending', 'failed-retryable')",
                [],
                |row| row.get(0),
            )?)
        })
        .await?;
    let mut summary = SendSummary {
        requests,
        waiting: waiting as usize,
        quota,
        fell_back_to_mail: fell_back,
        ..SendSummary::default()
    };
    for next in outcomes.values() {
        match next {
            Next::Delivered => summary.sent += 1,
            Next::RetryAfter(_) => summary.retryable += 1,
            Next::GiveUp => summary.failed += 1,
        }
    }
    Ok(summary)
}

/// Marks expired the deliveries whose notice expired before `today`; fails the LINE
/// deliveries first tried longer ago than LINE keeps retry keys, and, when e-mail is
/// configured (`fallback_after` in milliseconds), those LINE could not take for that long
/// whose recipient has an address, queueing them again by e-mail. Returns how many LINE
/// deliveries wait, and how many fell back to e-mail.
fn retire_late(
    connection: &mut Connection,
    today: Day,
    now: i64,
    fallback_after: Option<i64>,
) -> Result<(usize, usize)> {
    let transaction = connection.transaction()?;
    transaction.execute(
        "UPDATE deliveries SET state = 'expired' WHERE state IN ('queued', 'sending', 'failed-retryable')
         AND (notice_id IN (SELECT id FROM notices WHERE expires_on < ?1) OR broadcast_id IN (SELECT id FROM broadcasts
             WHERE expires_on < ?1))",
        [today.0],
    )?;
    let retire = |query: &str, since: i64, reason: &str| -> Result<Vec<i64>> {
        let ids: Vec<i64> =
            transaction.prepare(query)?.query_map([since], |row| row.get(0))?.collect::<Result<_, _>>()?;
        let mut fail = transaction
            .prepare_cached("UPDATE deliveries SET state = 'failed-permanent', last_error = ?2 WHERE id = ?1")?;
        for id in &ids {
            fail.execute((id, reason))?;
        }
        Ok(ids)
    };
    let stale = retire(
        "SELECT id FROM deliveries WHERE state IN ('sending', 'failed-retryable') AND channel = 'line'
         AND first_attempt_at < ?1 ORDER BY id",
        now - RETRY_KEY_LIFETIME_MILLIS,
        "first tried more than 23 hours ago: LINE no longer knows its retry key, so sending again could \
         deliver it twice",
    )?;
    if !stale.is_empty() {
        tracing::warn!(
            deliveries = stale.len(),
            "LINE deliveries first tried more than 23 hours ago were not sent again"
        );
    }
    let mut fell_back = 0;
    if let Some(after) = fallback_after {
        let unreachable = retire(
            "SELECT d.id FROM deliveries d JOIN registrations reg ON reg.line_user_id = d.address AND reg.active = 1
             AND reg.email IS NOT NULL
             WHERE d.state IN ('sending', 'failed-retryable') AND d.channel = 'line' AND d.first_attempt_at < ?1
             ORDER BY d.id",
            now - after,
            "LINE could not take it in time: sent by e-mail instead",
        )?;
        fell_back = fall_back_to_mail(&transaction, stale.iter().chain(&unreachable))?;
        if fell_back > 0 {
            tracing::warn!(deliveries = fell_back, "LINE deliveries fell back to e-mail");
        }
    }
    let waiting_on_line = transaction.query_row(
        "SELECT count(*) FROM deliveries WHERE state IN ('queued', 'sending', 'failed-retryable') AND channel = 'line'",
        [],
        |row| row.get::<_, i64>(0),
    )?;
    transaction.commit()?;
    Ok((waiting_on_line as usize, fell_back))
}

/// Queues an e-mail delivery of the same notice, subject and text for each of the given
/// LINE deliveries whose recipient has a registered address (none twice); the deliveries
/// one LINE request carried to one recipient become one e-mail, its messages in the same
/// order, queued together under one key. Returns how many were queued.
fn fall_back_to_mail<'a>(connection: &Connection, line_deliveries: impl Iterator<Item = &'a i64>) -> Result<usize> {
    let mut message_of = connection
        .prepare_cached("SELECT coalesce(batch_key, retry_key), address, retry_key FROM deliveries WHERE id = ?1")?;
    // Each LINE message to one recipient, with its deliveries as (id, the LINE delivery's key).
    let mut messages: BTreeMap<(String, String), Vec<(i64, String)>> = BTreeMap::new();
    for id in line_deliveries {
        let (message, address, key): (String, String, String) =
            message_of.query_row([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        messages.entry((message, address)).or_default().push((*id, key));
    }
    let mut insert = connection.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (notice_id, broadcast_id, channel, address, subject, text, card, retry_key,
             batch_key, part, state, created_at)
         SELECT d.notice_id, d.broadcast_id, 'mail', reg.email, d.subject, d.text, d.card, ?2, ?3, d.part, 'queued', ?4
         FROM deliveries d
         JOIN registrations reg ON reg.line_user_id = d.address AND reg.active = 1 AND reg.email IS NOT NULL
         WHERE d.id = ?1 AND d.channel = 'line'
             AND NOT EXISTS (SELECT 1 FROM broadcasts b WHERE b.id = d.broadcast_id AND b.line_only = 1)",
    )?;
    let now = now_text();
    let mut queued = 0;
    for deliveries in messages.values() {
        // The e-mail standing in for a LINE delivery is named by it.
        let keys: Vec<String> = deliveries.iter().map(|(_, line_key)| delivery_key(&["fallback", line_key])).collect();
        let batch_key = batch_key(&keys);
        for ((id, _), key) in deliveries.iter().zip(&keys) {
            queued += insert.execute((id, key, &batch_key, &now))?;
        }
    }
    Ok(queued)
}

/// Reads LINE's monthly quota and warns when what waits, or a tenth of the limit, is more
/// than what is left; a quota that cannot be read does not stop sending.
async fn read_quota(line: &LineClient, waiting: usize) -> Option<MonthlyQuota> {
    match line.monthly_quota().await {
        Ok(quota) => {
            crate::metrics::record_line_quota_remaining(quota.remaining());
            if let (Some(limit), Some(remaining)) = (quota.limit, quota.remaining())
                && (remaining < waiting as u64 || remaining < limit / 10)
            {
                tracing::warn!(
                    limit,
                    used = quota.used,
                    remaining,
                    waiting,
                    "LINE's monthly message quota is running out"
                );
            }
            Some(quota)
        }
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "LINE's monthly quota could not be read; sending without it");
            None
        }
    }
}

/// Keeps the requests, in order, as long as their LINE messages fit within `remaining`,
/// which it lowers by what it keeps (e-mails cost nothing); returns whether any had to
/// be left out.
fn keep_within_budget(due: &mut Vec<Request>, remaining: &mut u64) -> bool {
    let fitting = due
        .iter()
        .take_while(|request| {
            let messages = if request.channel == "line" { request.addresses.len() as u64 } else { 0 };
            let fits = messages <= *remaining;
            if fits {
                *remaining -= messages;
            }
            fits
        })
        .count();
    let left_out = fitting < due.len();
    due.truncate(fitting);
    left_out
}

/// The requests due at `now` (milliseconds) among the deliveries after `cursor`, in id
/// order, and when the earliest of the others that wait for a retry falls due. The
/// members of a batch were queued with consecutive ids and change state together, so
/// they are read as one run of rows.
fn due_requests(
    connection: &mut Connection,
    now: i64,
    cursor: i64,
    mail_configured: bool,
) -> Result<(Vec<Request>, Option<i64>)> {
    let mut statement = connection.prepare_cached(
        "SELECT d.id, coalesce(n.program, 'broadcast'),
         d.address, d.text, d.retry_key, d.batch_key, d.channel, d.subject, d.part, d.card
         FROM deliveries d INDEXED BY deliveries_pending LEFT JOIN notices n ON n.id = d.notice_id
         WHERE d.state IN ('queued', 'sending', 'failed-retryable') AND coalesce(d.next_attempt_at, 0) <= ?1
         AND d.id > ?2
           AND (d.channel = 'line' OR ?4)
         ORDER BY d.id LIMIT ?3",
    )?;
    let rows: Vec<PendingRow> = statement
        .query_map((now, cursor, ROWS_PER_STEP as i64, mail_configured), |row| {
            Ok(PendingRow {
                id: row.get(0)?,
                program: row.get(1)?,
                address: row.get(2)?,
                text: row.get(3)?,
                retry_key: row.get(4)?,
                batch_key: row.get(5)?,
                channel: row.get(6)?,
                subject: row.get(7)?,
                part: row.get(8)?,
                card: row.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut batches: Vec<&[PendingRow]> =
        rows.chunk_by(|row, next| row.batch_key.is_some() && row.batch_key == next.batch_key).collect();
    // A batch cut by the row limit is left whole to the next step (a batch is queued with
    // at most half as many deliveries, so the step always holds one whole).
    if rows.len() == ROWS_PER_STEP
        && batches.len() > 1
        && batches.last().is_some_and(|batch| batch[0].batch_key.is_some())
    {
        batches.pop();
    }
    let mut requests: Vec<Request> = Vec::new();
    for batch in batches {
        let of_batch = requests_of_batch(batch);
        if !requests.is_empty() && requests.len() + of_batch.len() > REQUESTS_PER_STEP {
            break;
        }
        requests.extend(of_batch);
    }
    let next_due_at = connection.query_row(
        "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'failed-retryable'",
        [],
        |row| row.get(0),
    )?;
    Ok((requests, next_due_at))
}

/// A delivery still to send, as `due_requests` reads it.
struct PendingRow {
    id: i64,
    program: String,
    address: String,
    text: String,
    retry_key: String,
    batch_key: Option<String>,
    channel: String,
    subject: String,
    part: i64,
    card: Option<String>,
}

/// One message of a pending request: (part, subject, text, card).
type PendingMessage<'a> = (i64, &'a str, &'a str, Option<&'a str>);

/// The requests that carry one batch's pending deliveries (or one lone delivery): its
/// recipients, each with their messages (the deliveries of one `part` are one message).
/// The recipients of a batch were queued with the same messages; a resident's choice may
/// since have cancelled some of one recipient's, and then the recipients whose messages
/// differ from the first's are sent apart, each such set under a key named by the batch's
/// and its first recipient, which the same pending deliveries give again on a retry.
fn requests_of_batch(rows: &[PendingRow]) -> Vec<Request> {
    let first = &rows[0];
    // Each recipient's address, first program, deliveries and messages.
    let mut recipients: Vec<(&str, &str, Vec<i64>, Vec<PendingMessage>)> = Vec::new();
    for row in rows {
        if recipients.last().is_none_or(|(address, ..)| *address != row.address) {
            recipients.push((&row.address, &row.program, Vec::new(), Vec::new()));
        }
        let (_, _, ids, messages) = recipients.last_mut().expect("pushed above");
        ids.push(row.id);
        if messages.last().is_none_or(|(part, ..)| *part != row.part) {
            messages.push((row.part, &row.subject, &row.text, row.card.as_deref()));
        }
    }
    let mut requests: Vec<Request> = Vec::new();
    let mut contents: Vec<Vec<PendingMessage>> = Vec::new();
    for (address, program, ids, messages) in recipients {
        if let Some(index) = contents.iter().position(|known| *known == messages) {
            requests[index].ids.extend(ids);
            requests[index].addresses.push(address.to_string());
            continue;
        }
        let retry_key = match (&first.batch_key, requests.is_empty()) {
            (Some(key), true) => key.clone(),
            (Some(key), false) => delivery_key(&["part of", key, address]),
            (None, _) => first.retry_key.clone(),
        };
        requests.push(Request {
            ids,
            addresses: vec![address.to_string()],
            channel: first.channel.clone(),
            program: program.to_string(),
            messages: messages
                .iter()
                .map(|(_, subject, text, card)| OutgoingMessage {
                    subject: subject.to_string(),
                    text: text.to_string(),
                    // The card is this module's own JSON; one it cannot read goes as its text.
                    card: card.and_then(|card| serde_json::from_str(card).ok()),
                })
                .collect(),
            retry_key,
        });
        contents.push(messages);
    }
    requests
}

/// Marks the members of each request `sending` and counts the attempt, in one
/// transaction, before the requests go out; returns each request's attempts so far,
/// this one included.
fn mark_sending(connection: &mut Connection, requests: &[Vec<i64>], now: i64) -> Result<Vec<u32>> {
    let transaction = connection.transaction()?;
    let mut attempts = Vec::with_capacity(requests.len());
    {
        let mut mark = transaction.prepare_cached(
            "UPDATE deliveries
             SET state = 'sending', attempts = attempts + 1, next_attempt_at = NULL,
             first_attempt_at = coalesce(first_attempt_at, ?2)
             WHERE id = ?1 RETURNING attempts",
        )?;
        for members in requests {
            let mut most = 0;
            for id in members {
                most = most.max(mark.query_row((id, now), |row| row.get::<_, u32>(0))?);
            }
            attempts.push(most);
        }
    }
    transaction.commit()?;
    Ok(attempts)
}

/// What became of one request's attempt.
struct Decided {
    ids: Vec<i64>,
    /// None when the request was not sent after all (the pass was told to stop).
    next: Option<Next>,
    error: String,
    /// A LINE request given up on, whose recipients with an address get it by e-mail.
    fall_back: bool,
}

/// Records what became of each request's attempt, for every member, and queues the
/// e-mail fallbacks, in one transaction; returns how many fell back.
fn record_outcomes(connection: &mut Connection, decided: &[Decided]) -> Result<usize> {
    let transaction = connection.transaction()?;
    let mut fell_back = 0;
    {
        let mut record = transaction.prepare_cached(
            "UPDATE deliveries SET state = ?2, next_attempt_at = ?3, last_error = ?4, sent_at =
             CASE WHEN ?2 = 'sent' THEN ?5 ELSE sent_at END WHERE id = ?1",
        )?;
        // A request that was marked but never sent goes back to the queue, its attempt
        // uncounted.
        let mut unmark = transaction.prepare_cached(
            "UPDATE deliveries SET state = 'queued', attempts = attempts - 1, first_attempt_at =
             CASE WHEN attempts = 1 THEN NULL ELSE first_attempt_at END WHERE id = ?1",
        )?;
        let now = now_text();
        for request in decided {
            let (state, next_attempt_at) = match request.next {
                Some(Next::Delivered) => ("sent", None),
                Some(Next::RetryAfter(delay)) => ("failed-retryable", Some(now_millis() + delay.as_millis() as i64)),
                Some(Next::GiveUp) => ("failed-permanent", None),
                None => {
                    for id in &request.ids {
                        unmark.execute([id])?;
                    }
                    continue;
                }
            };
            for id in &request.ids {
                record.execute((id, state, next_attempt_at, &request.error, &now))?;
            }
            if request.fall_back {
                fell_back += fall_back_to_mail(&transaction, request.ids.iter())?;
            }
        }
    }
    transaction.commit()?;
    Ok(fell_back)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::channel::line::LineConfig;

    /// How the scripted LINE answers one request.
    #[derive(Clone, Copy, Debug)]
    enum Answer {
        Status(u16),
        /// No answer within the client's timeout.
        Silence,
    }
    use Answer::{Silence, Status};

    /// The client's timeout; a silent answer waits four times as long.
    const TIMEOUT: Duration = Duration::from_millis(250);

    /// A LINE stand-in on port 0 that answers from a script and records each retry key.
    #[derive(Clone, Default)]
    struct Scripted {
        answers: Arc<Mutex<VecDeque<Answer>>>,
        retry_keys: Arc<Mutex<Vec<String>>>,
    }

    async fn scripted_push(
        axum::extract::State(line): axum::extract::State<Scripted>,
        headers: axum::http::HeaderMap,
    ) -> axum::http::StatusCode {
        line.retry_keys.lock().unwrap().push(headers["x-line-retry-key"].to_str().unwrap().to_string());
        let answer = line.answers.lock().unwrap().pop_front().expect("a request beyond the script");
        match answer {
            Status(status) => axum::http::StatusCode::from_u16(status).unwrap(),
            Silence => {
                tokio::time::sleep(TIMEOUT * 4).await;
                axum::http::StatusCode::OK
            }
        }
    }

    struct Case {
        what: &'static str,
        /// The state the delivery is in before the pass (`sending` after a crash).
        state: &'static str,
        /// How long ago its first attempt was, if it had one.
        first_attempt_hours_ago: Option<i64>,
        answers: Vec<Answer>,
        /// The delay before a first retry, and how long the pass waits for retries.
        first_delay: Duration,
        linger: Duration,
        /// Whether the pass is told to stop before it starts (a shutdown).
        stopped: bool,
        expected_state: &'static str,
    }

    fn case(what: &'static str, answers: &[Answer], expected_state: &'static str) -> Case {
        Case {
            what,
            state: "queued",
            first_attempt_hours_ago: None,
            answers: answers.to_vec(),
            first_delay: Duration::from_millis(2),
            linger: Duration::from_secs(2),
            stopped: false,
            expected_state,
        }
    }

    /// Runs one pass per case over a single delivery against its script, and checks the
    /// delivery's final state, that every scripted answer was asked for, and that every
    /// request carried the delivery's own retry key.
    async fn check(cases: Vec<Case>) {
        let mut failures = Vec::new();
        for case in cases {
            let directory = tempfile::tempdir().unwrap();
            let database = Database::open(&directory.path().join("oshirase.db")).unwrap();
            let state = case.state;
            let first_attempt_at = case.first_attempt_hours_ago.map(|hours| now_millis() - hours * 3_600_000);
            database
                .write(move |connection| {
                    connection.execute_batch(
                        "INSERT INTO plugin_versions (id, program, sha256, wasm, manifest, published_by, published_at)
                         VALUES (1, 'vaccine-mr', '', x'', '{}', 'test', '');
                         INSERT INTO runs (id, program, version_id, snapshot_id, run_on, started_at, outcome)
                         VALUES (1, 'vaccine-mr', 1, 1, 0, '', 'succeeded');
                         INSERT INTO notices (id, program, resident_id, occasion, send_on, expires_on, run_id)
                         VALUES (1, 'vaccine-mr', '0101', 'first', 0, 100000, 1);",
                    )?;
                    connection.execute(
                        "INSERT INTO deliveries (notice_id, channel, address, text, retry_key, state, created_at,
                             first_attempt_at)
                         VALUES (1, 'line', 'U00000000000000000000000000000001', 'お知らせ',
                             '123e4567-e89b-12d3-a456-426614174000', ?1, '', ?2)",
                        (state, first_attempt_at),
                    )?;
                    Ok(())
                })
                .await
                .unwrap();
            let line = Scripted {
                answers: Arc::new(Mutex::new(case.answers.iter().copied().collect())),
                ..Scripted::default()
            };
            let router = axum::Router::new()
                .route("/v2/bot/message/push", axum::routing::post(scripted_push))
                .with_state(line.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let server = tokio::spawn(async move { axum::serve(listener, router).await });
            let client = LineClient::new(LineConfig {
                timeout: TIMEOUT,
                ..LineConfig::new(format!("http://{address}"), "token")
            })
            .unwrap();
            let policy = RetryPolicy {
                max_attempts: 3,
                first_delay: case.first_delay,
                max_delay: Duration::from_secs(60),
                linger: case.linger,
            };
            let stop = CancellationToken::new();
            if case.stopped {
                stop.cancel();
            }
            let summary = send_queued(
                &database,
                &Channels { line: client, mail: None, public_url: None },
                Day(0),
                &policy,
                &stop,
            )
            .await
            .unwrap();
            server.abort();
            let (state, attempts): (String, i64) = database
                .write(|connection| {
                    Ok(connection.query_row("SELECT state, attempts FROM deliveries", [], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })?)
                })
                .await
                .unwrap();
            let keys = line.retry_keys.lock().unwrap().clone();
            let left = line.answers.lock().unwrap().len();
            if state != case.expected_state
                || left != 0
                || attempts as usize != keys.len()
                || summary.requests != keys.len()
            {
                failures.push(format!(
                    "{}: expected {} with the whole script used, got {state} after {attempts} attempts, {left} answers \
                     left, {summary:?}",
                    case.what, case.expected_state
                ));
            }
            if keys.iter().any(|key| key != "123e4567-e89b-12d3-a456-426614174000") {
                failures.push(format!("{}: a request carried another retry key: {keys:?}", case.what));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[tokio::test]
    async fn deliveries_are_retried_with_the_same_key_only_when_it_can_help() {
        check(vec![
            case("accepted at once", &[Status(200)], "sent"),
            case("500 and 429, then accepted", &[Status(500), Status(429), Status(200)], "sent"),
            case("a timeout, then 409: the first was delivered", &[Silence, Status(409)], "sent"),
            case("400 is not retried", &[Status(400)], "failed-permanent"),
            case("401 is not retried", &[Status(401)], "failed-permanent"),
            case("403 is not retried", &[Status(403)], "failed-permanent"),
            case(
                "503 on every attempt gives up after three",
                &[Status(503), Status(503), Status(503)],
                "failed-permanent",
            ),
            Case {
                first_delay: Duration::from_secs(60),
                linger: Duration::from_secs(1),
                ..case("a retry not due within the pass waits for the next", &[Status(500)], "failed-retryable")
            },
            Case {
                state: "sending",
                ..case("left sending by a crash: sent again, LINE had it", &[Status(409)], "sent")
            },
            Case { state: "failed-retryable", ..case("a retry left by an earlier pass", &[Status(200)], "sent") },
            Case {
                state: "sending",
                first_attempt_hours_ago: Some(22),
                ..case("left sending 22 hours ago: LINE still knows the key", &[Status(409)], "sent")
            },
            Case {
                state: "sending",
                first_attempt_hours_ago: Some(24),
                ..case("left sending 24 hours ago: not sent again", &[], "failed-permanent")
            },
            Case {
                stopped: true,
                ..case("a pass told to stop sends nothing and leaves the queue as it is", &[], "queued")
            },
        ])
        .await;
    }

    #[tokio::test]
    async fn identical_texts_go_out_as_multicasts_of_at_most_500_within_the_monthly_quota() {
        let directory = tempfile::tempdir().unwrap();
        let database = Database::open(&directory.path().join("oshirase.db")).unwrap();
        database
            .write(|connection| synthetic_city::seed_due_notices(connection, 1_203, &[("vaccine-mr", 3)]))
            .await
            .unwrap();
        let queued = database.write(|connection| enqueue_due(connection, Day(10))).await.unwrap();
        assert_eq!(queued, 1_203);

        let (emulator, base_url, server) = serve_emulator().await;
        emulator.set_monthly_limit(Some(1_100));
        let channels = Channels {
            line: LineClient::new(LineConfig::new(base_url, "token")).unwrap(),
            mail: None,
            public_url: None,
        };
        let policy = RetryPolicy { linger: Duration::ZERO, ..RetryPolicy::default() };

        // Within the quota: what fits is sent, the rest waits, nobody gets anything twice.
        let first = send_queued(&database, &channels, Day(10), &policy, &CancellationToken::new()).await.unwrap();
        assert_eq!(first.quota, Some(MonthlyQuota { limit: Some(1_100), used: 0 }));
        assert!(first.sent > 0 && first.sent <= 1_100 && first.waiting == 1_203 - first.sent, "{first:?}");
        let seen: usize = emulator.inboxes().values().map(Vec::len).sum();
        assert_eq!(seen, first.sent);

        // Once the quota allows, the rest goes out.
        emulator.set_monthly_limit(None);
        let second = send_queued(&database, &channels, Day(10), &policy, &CancellationToken::new()).await.unwrap();
        server.abort();
        assert_eq!((first.sent + second.sent, second.waiting), (1_203, 0), "{second:?}");
        let inboxes = emulator.inboxes();
        assert_eq!(inboxes.len(), 1_203);
        assert!(inboxes.values().all(|messages| messages.len() == 1), "someone got a message twice");
        let mut recipients_per_request: HashMap<String, usize> = HashMap::new();
        for message in inboxes.values().flatten() {
            *recipients_per_request.entry(message.request_id.clone()).or_default() += 1;
        }
        let mut sizes: Vec<usize> = recipients_per_request.into_values().collect();
        sizes.sort();
        // Three texts of their own as pushes; 1,200 identical ones as 500 + 500 + 200.
        assert_eq!(sizes, vec![1, 1, 1, 200, 500, 500]);
        assert_eq!(first.requests + second.requests, 6);
    }

    /// The disk is lost after a day's deliveries went out, and the database comes back from
    /// a copy taken before they were queued: queued again, every delivery carries the key
    /// LINE already answered, LINE refuses to deliver it twice (409), and it is marked sent.
    #[tokio::test]
    async fn deliveries_a_restore_lost_are_queued_again_under_their_keys_and_delivered_once() {
        let directory = tempfile::tempdir().unwrap();
        let (live, copy) = (directory.path().join("oshirase.db"), directory.path().join("copy.db"));
        let database = Database::open(&live).unwrap();
        database
            .write(|connection| synthetic_city::seed_due_notices(connection, 600, &[("vaccine-mr", 3)]))
            .await
            .unwrap();
        crate::database::backup(&live, &copy, false).unwrap();
        let (emulator, base_url, server) = serve_emulator().await;
        let channels = Channels {
            line: LineClient::new(LineConfig::new(base_url, "token")).unwrap(),
            mail: None,
            public_url: None,
        };
        let policy = RetryPolicy { linger: Duration::ZERO, ..RetryPolicy::default() };
        let day = |database: Database| {
            let (channels, policy) = (&channels, &policy);
            async move {
                let queued = database.write(|connection| enqueue_due(connection, Day(10))).await.unwrap();
                let summary =
                    send_queued(&database, channels, Day(10), policy, &CancellationToken::new()).await.unwrap();
                let keys: Vec<String> = database
                    .read(|connection| {
                        let mut statement =
                            connection.prepare("SELECT coalesce(batch_key, retry_key) FROM deliveries ORDER BY 1")?;
                        let keys = statement.query_map([], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
                        Ok(keys)
                    })
                    .await
                    .unwrap();
                (queued, summary.sent, keys)
            }
        };
        let (queued, sent, keys_before) = day(database).await;
        assert_eq!((queued, sent), (600, 600));
        let restored = Database::open(&copy).unwrap();
        let (queued_again, marked_sent, keys_after) = day(restored).await;
        server.abort();
        let inboxes = emulator.inboxes();
        assert_eq!(inboxes.len(), 600);
        let twice = inboxes.values().filter(|messages| messages.len() > 1).count();
        assert_eq!(twice, 0, "residents got the day's message twice");
        assert_eq!((queued_again, marked_sent), (600, 600), "queued again, and taken as sent when LINE refuses");
        assert!(keys_after == keys_before, "the same deliveries are queued under other keys");
    }

    /// Sets how resident `R000000{row}` is reached, as the registration would say.
    fn reach(
        connection: &Connection,
        row: usize,
        line_user_id: Option<&str>,
        email: Option<&str>,
        channels: &str,
        active: bool,
    ) {
        connection
            .execute(
                "UPDATE registrations SET line_user_id = ?2, email = ?3, channels = ?4, active = ?5
                 WHERE resident_id = ?1",
                (format!("R{row:07}"), line_user_id, email, channels, active),
            )
            .unwrap();
    }

    #[tokio::test]
    async fn residents_get_e_mail_when_they_chose_it_or_when_line_cannot_deliver() {
        use crate::channel::MailChannel;
        use crate::channel::mail::{MailClient, Security};
        use crate::testing::smtp::SmtpServer;

        let directory = tempfile::tempdir().unwrap();
        let database = Database::open(&directory.path().join("oshirase.db")).unwrap();
        database
            .write(|connection| {
                synthetic_city::seed_due_notices(connection, 5, &[("vaccine-mr", 5)])?;
                reach(connection, 1, None, Some("mail-only@example.jp"), "mail", true);
                reach(connection, 2, Some(&format!("U{:032x}", 2)), Some("both@example.jp"), "both", true);
                // A user id LINE refuses (400): the notice goes by e-mail instead.
                reach(connection, 3, Some("U3"), Some("refused-by-line@example.jp"), "line", true);
                reach(connection, 4, Some(&format!("U{:032x}", 4)), Some("line-down@example.jp"), "line", false);
                enqueue_due(connection, Day(10))
            })
            .await
            .unwrap();
        let (emulator, base_url, server) = serve_emulator().await;
        let line = || LineClient::new(LineConfig::new(base_url.clone(), "token")).unwrap();
        let smtp = SmtpServer::start(Security::Plain, None);
        let mail = |fallback_after| {
            Some(MailChannel { client: MailClient::new(smtp.config(Security::Plain)).unwrap(), fallback_after })
        };
        let policy = RetryPolicy {
            linger: Duration::ZERO,
            max_attempts: 3,
            first_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let recipients_by_mail = || -> Vec<String> {
            let mut to: Vec<String> = smtp
                .messages()
                .iter()
                .map(|message| {
                    String::from_utf8_lossy(message)
                        .lines()
                        .find_map(|line| line.strip_prefix("To: ").map(str::to_string))
                        .unwrap()
                })
                .collect();
            to.sort();
            to
        };

        // Without a mail server, e-mail deliveries wait and nothing falls back.
        let without_mail = send_queued(
            &database,
            &Channels { line: line(), mail: None, public_url: None },
            Day(10),
            &policy,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            (without_mail.sent, without_mail.failed, without_mail.fell_back_to_mail, without_mail.waiting),
            (2, 1, 0, 2),
            "{without_mail:?}"
        );
        assert!(smtp.messages().is_empty());

        // With it, they go out, and LINE's refusal of resident 3 falls back to e-mail.
        database
            .write(|connection| {
                Ok(connection.execute(
                    "UPDATE deliveries SET state = 'queued', attempts = 0
                     WHERE channel = 'line' AND state = 'failed-permanent'",
                    [],
                )?)
            })
            .await
            .unwrap();
        let with_mail = send_queued(
            &database,
            &Channels { line: line(), mail: mail(Duration::from_secs(3600)), public_url: None },
            Day(10),
            &policy,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!((with_mail.fell_back_to_mail, with_mail.waiting), (1, 0), "{with_mail:?}");
        assert_eq!(recipients_by_mail(), ["both@example.jp", "mail-only@example.jp", "refused-by-line@example.jp"]);
        let line_users: Vec<String> = emulator.inboxes().into_keys().collect();
        assert_eq!(line_users, [format!("U{:032x}", 0), format!("U{:032x}", 2)]);

        // LINE is down: once it has failed for longer than `fallback_after`, e-mail instead.
        emulator.set_faults(line_emulator::Faults { down_ms: 600_000, ..Default::default() }).unwrap();
        database
            .write(|connection| {
                reach(connection, 4, Some(&format!("U{:032x}", 4)), Some("line-down@example.jp"), "line", true);
                enqueue_due(connection, Day(10))
            })
            .await
            .unwrap();
        // The retry is not due within the first pass, whatever the machine's speed.
        let channels = Channels { line: line(), mail: mail(Duration::ZERO), public_url: None };
        let waiting = RetryPolicy { first_delay: Duration::from_secs(60), ..policy.clone() };
        let line_down = send_queued(&database, &channels, Day(10), &waiting, &CancellationToken::new()).await.unwrap();
        assert_eq!((line_down.retryable, line_down.fell_back_to_mail), (1, 0), "{line_down:?}");
        let after_the_wait =
            send_queued(&database, &channels, Day(10), &waiting, &CancellationToken::new()).await.unwrap();
        server.abort();
        assert_eq!(
            (after_the_wait.fell_back_to_mail, after_the_wait.sent, after_the_wait.waiting),
            (1, 1, 0),
            "{after_the_wait:?}"
        );
        assert_eq!(
            recipients_by_mail(),
            ["both@example.jp", "line-down@example.jp", "mail-only@example.jp", "refused-by-line@example.jp"]
        );
        let body = String::from_utf8_lossy(&smtp.messages()[0]).to_string();
        assert!(body.contains("Subject: =?utf-8?"), "the Japanese subject is encoded: {body}");
    }

    /// Resident 0 is the registered parent of two unregistered children (twins) whose
    /// notices of one occasion have the same text; residents 1 and 2 get that text for
    /// themselves. Resident 3, whose LINE id LINE refuses, is the parent of two more, who
    /// are reached by e-mail instead.
    fn parents_of_twins(connection: &mut Connection) -> Result<()> {
        synthetic_city::seed_due_notices(connection, 4, &[("vaccine-mr", 0)])?;
        connection.execute("DELETE FROM notices WHERE resident_id IN ('R0000000', 'R0000003')", [])?;
        // The second pair's deadline is a day later, so its message is not in the first's multicast.
        for (row, household, expires_on) in
            [(100, "R0000000", 20_000), (101, "R0000000", 20_000), (102, "R0000003", 20_001), (103, "R0000003", 20_001)]
        {
            let resident_id = format!("C{row}");
            connection.execute(
                "INSERT INTO residents (key, snapshot_id, resident_id, household_id, name, name_kana, birth_day, sex,
                     relationship, address, ward)
                 VALUES (?1, 1, ?2, ?3, '双子', '', 5, 1, ?4, '', '')",
                ((1i64 << 32) + row, &resident_id, household, Relationship::Child.code()),
            )?;
            connection.execute(
                "INSERT INTO notices (program, resident_id, occasion, send_on, expires_on, run_id)
                 VALUES ('vaccine-mr', ?1, 'first', 0, ?2, 1)",
                (&resident_id, expires_on),
            )?;
        }
        reach(connection, 3, Some("U3"), Some("twins@example.jp"), "line", true);
        Ok(())
    }

    #[tokio::test]
    async fn a_parent_of_twins_gets_one_message_saying_there_are_two_and_each_notice_is_sent() {
        use crate::channel::MailChannel;
        use crate::channel::mail::{MailClient, Security};
        use crate::testing::smtp::SmtpServer;

        let directory = tempfile::tempdir().unwrap();
        let database = Database::open(&directory.path().join("oshirase.db")).unwrap();
        let queued = database
            .write(|connection| {
                parents_of_twins(connection)?;
                enqueue_due(connection, Day(10))
            })
            .await
            .unwrap();
        assert_eq!(queued, 6, "a delivery for each notice and recipient");
        let (emulator, base_url, server) = serve_emulator().await;
        let smtp = SmtpServer::start(Security::Plain, None);
        let mail = MailChannel {
            client: MailClient::new(smtp.config(Security::Plain)).unwrap(),
            fallback_after: Duration::from_secs(3600),
        };
        let channels = Channels {
            line: LineClient::new(LineConfig::new(base_url, "token")).unwrap(),
            mail: Some(mail),
            public_url: None,
        };
        let policy = RetryPolicy { linger: Duration::ZERO, ..RetryPolicy::default() };
        let summary = send_queued(&database, &channels, Day(10), &policy, &CancellationToken::new()).await.unwrap();
        server.abort();
        assert_eq!(
            (summary.sent, summary.failed, summary.fell_back_to_mail, summary.waiting),
            (6, 2, 2, 0),
            "{summary:?}"
        );

        let inboxes = emulator.inboxes();
        let texts = |row: usize| -> Vec<String> {
            inboxes.get(&format!("U{row:032x}")).into_iter().flatten().map(|message| message.text.clone()).collect()
        };
        let parent = texts(0);
        assert_eq!(parent.len(), 1, "the parent of twins got {parent:?}");
        assert!(parent[0].contains("対象の方が2人います") && !parent[0].contains("双子"), "{}", parent[0]);
        for row in [1, 2] {
            assert!(texts(row).len() == 1 && !texts(row)[0].contains("人います"), "{:?}", texts(row));
        }
        // Requests: the parent's message alone (a push), and one multicast to residents 1 and 2.
        let requests: std::collections::HashSet<&str> =
            inboxes.values().flatten().map(|message| message.request_id.as_str()).collect();
        assert_eq!(requests.len(), 2);
        let mails = smtp.messages();
        assert_eq!(mails.len(), 1, "the other parent's e-mail came {} times", mails.len());
        let mail = mailparse::parse_mail(&mails[0]).unwrap().get_body().unwrap();
        assert!(mail.contains("対象の方が2人います"), "{mail}");
        // Staff see every notice's own delivery, all sent.
        let states: Vec<(String, String, String)> = database
            .write(|connection| {
                Ok(connection
                    .prepare(
                        "SELECT n.resident_id, d.channel, d.state FROM deliveries d JOIN notices n ON n.id = d.notice_id
                         WHERE n.resident_id LIKE 'C%' ORDER BY n.resident_id, d.channel",
                    )?
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        let expected = [
            ("C100", "line", "sent"),
            ("C101", "line", "sent"),
            ("C102", "line", "failed-permanent"),
            ("C102", "mail", "sent"),
            ("C103", "line", "failed-permanent"),
            ("C103", "mail", "sent"),
        ];
        assert_eq!(
            states,
            expected.map(|(resident, channel, state)| (resident.to_string(), channel.to_string(), state.to_string()))
        );
    }

    /// A LINE emulator on port 0, its base URL and the task serving it.
    async fn serve_emulator() -> (line_emulator::Emulator, String, tokio::task::JoinHandle<std::io::Result<()>>) {
        let emulator = line_emulator::Emulator::new("token");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(axum::serve(listener, emulator.router()).into_future());
        (emulator, base_url, server)
    }

    /// The texts of the cards in `messages`, bubble by bubble (a text message counts as one).
    fn card_texts(messages: &[line_emulator::ReceivedMessage]) -> Vec<String> {
        let mut texts = Vec::new();
        for message in messages {
            let Some(flex) = &message.flex else {
                texts.push(message.text.clone());
                continue;
            };
            let bubbles = match flex["type"].as_str() {
                Some("carousel") => flex["contents"].as_array().unwrap().clone(),
                _ => vec![flex.clone()],
            };
            texts.extend(
                bubbles.iter().map(|bubble| bubble["body"]["contents"][0]["text"].as_str().unwrap().to_string()),
            );
        }
        texts
    }

    /// The deliveries to `address`, as (program, part, state, text), in the order queued.
    fn deliveries_to(connection: &Connection, address: &str) -> Vec<(String, i64, String, String)> {
        connection
            .prepare(
                "SELECT n.program, d.part, d.state, d.text FROM deliveries d JOIN notices n ON n.id = d.notice_id
                 WHERE d.address = ?1 ORDER BY d.id",
            )
            .unwrap()
            .query_map([address], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[tokio::test]
    async fn a_recipient_gets_one_push_a_day_the_most_urgent_first_and_the_rest_the_next_day() {
        use crate::channel::MailChannel;
        use crate::channel::mail::{MailClient, Security};
        use crate::testing::smtp::SmtpServer;

        let directory = tempfile::tempdir().unwrap();
        let database = Database::open(&directory.path().join("oshirase.db")).unwrap();
        // Seven programs due to three residents; program p1's deadline is the latest, p7's
        // the nearest. Every program words its notice alike ("予防接種は…までです"), so
        // the messages are told apart by their part, not their text.
        database
            .write(move |connection| {
                let seeded = ["p1", "p2", "p3", "p4", "p5", "p6", "p7"].map(|program| (program, 0));
                synthetic_city::seed_due_notices(connection, 3, &seeded)?;
                connection
                    .execute("UPDATE notices SET expires_on = 20000 - CAST(substr(program, 2) AS INTEGER)", [])?;
                // Resident 2's notice of p1 expires today: the most urgent of theirs.
                connection.execute(
                    "UPDATE notices SET expires_on = 10 WHERE resident_id = 'R0000002' AND program = 'p1'",
                    [],
                )?;
                reach(connection, 1, Some(&format!("U{:032x}", 1)), Some("both@example.jp"), "both", true);
                // p5's manifest cites its law by an address, p6's by words a link cannot open.
                connection.execute_batch(
                    "UPDATE plugin_versions SET manifest = json_set(manifest, '$.source_url',
                         'https://laws.e-gov.go.jp/law/p5') WHERE program = 'p5';
                     UPDATE plugin_versions SET manifest = json_set(manifest, '$.source_url', '健康増進法 第19条の2')
                     WHERE program = 'p6';",
                )?;
                // Staff gave p7's card the city's booking page.
                let booking = crate::message::OccasionLinks {
                    booking_url: Some("https://yoyaku.example.jp/p7".into()),
                    details_url: None,
                };
                crate::message::set_links(connection, "p7", "first", &booking, "kenko")?;
                Ok(())
            })
            .await
            .unwrap();
        let (emulator, base_url, server) = serve_emulator().await;
        let smtp = SmtpServer::start(Security::Plain, None);
        let channels = Channels {
            line: LineClient::new(LineConfig::new(base_url, "token")).unwrap(),
            mail: Some(MailChannel {
                client: MailClient::new(smtp.config(Security::Plain)).unwrap(),
                fallback_after: Duration::from_secs(3600),
            }),
            public_url: None,
        };
        let policy = RetryPolicy { linger: Duration::ZERO, ..RetryPolicy::default() };
        let user = |row: usize| format!("U{row:032x}");
        let day = |today: i32| {
            let (database, channels, policy) = (&database, &channels, &policy);
            async move {
                let queued = database.write(move |connection| enqueue_due(connection, Day(today))).await.unwrap();
                let summary =
                    send_queued(database, channels, Day(today), policy, &CancellationToken::new()).await.unwrap();
                (queued, summary)
            }
        };

        // Day 10: five messages each on LINE, the nearest deadlines; residents 0 and 1 have
        // the same five (one multicast), resident 2 others (a push); e-mail has all seven.
        let (queued, summary) = day(10).await;
        assert_eq!((queued, summary.requests, summary.sent), (5 * 3 + 7, 3, 22), "{summary:?}");
        let inboxes = emulator.inboxes();
        for row in 0..3 {
            let messages = &inboxes[&user(row)];
            let rows = database.read(move |connection| Ok(deliveries_to(connection, &user(row)))).await.unwrap();
            let programs: Vec<&str> = rows.iter().map(|(program, ..)| program.as_str()).collect();
            let expected = if row == 2 { ["p1", "p7", "p6", "p5", "p4"] } else { ["p7", "p6", "p5", "p4", "p3"] };
            assert_eq!(programs, expected, "resident {row}'s messages, the nearest deadline first");
            assert_eq!((rows.iter().map(|row| row.1).collect::<Vec<_>>()), [0, 1, 2, 3, 4]);
            let queued: Vec<String> = rows.iter().map(|(.., text)| text.clone()).collect();
            assert_eq!(messages.len(), 1, "resident {row} got one carousel");
            assert_eq!(card_texts(messages), queued, "resident {row} got the cards in the order queued");
            assert_eq!(messages[0].text, queued.join("\n\n"), "the alternative text is every text");
        }
        assert_eq!(inboxes[&user(0)][0].request_id, inboxes[&user(1)][0].request_id, "one multicast");
        let p7 = &inboxes[&user(0)][0].flex.as_ref().unwrap()["contents"][0];
        assert_eq!(p7["footer"]["contents"][0]["action"]["uri"], "https://yoyaku.example.jp/p7", "{p7}");
        assert_eq!(p7["footer"]["contents"][1]["action"]["data"], "action=settings", "{p7}");
        let labels = |bubble: &serde_json::Value| -> Vec<String> {
            bubble["footer"]["contents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|button| button["action"]["label"].to_string())
                .collect()
        };
        let (p6, p5) = (
            &inboxes[&user(0)][0].flex.as_ref().unwrap()["contents"][1],
            &inboxes[&user(0)][0].flex.as_ref().unwrap()["contents"][2],
        );
        assert_eq!(labels(p6), ["\"配信の設定\""], "no link from words that are no address: {p6}");
        assert_eq!(p5["footer"]["contents"][0]["action"]["uri"], "https://laws.e-gov.go.jp/law/p5", "{p5}");
        let quota = channels.line.monthly_quota().await.unwrap();
        assert_eq!(quota.used, 3, "LINE counts one message per recipient of a request");
        let mails = smtp.messages();
        assert_eq!(mails.len(), 1);
        let mail = mailparse::parse_mail(&mails[0]).unwrap();
        assert_eq!(
            mail.headers.iter().find(|header| header.get_key() == "Subject").unwrap().get_value(),
            "【予防接種】1回目 ほか6件"
        );
        let body = mail.get_body().unwrap();
        assert_eq!(body.matches("までです").count(), 7, "every notice in the one e-mail");
        assert!(body.contains("予約・申請: https://yoyaku.example.jp/p7"), "{body}");

        // Later on day 10, two more notices for resident 0: the one that expires today goes
        // today, in a push of its own; the other waits for tomorrow.
        database
            .write(|connection| {
                connection.execute_batch(
                    "INSERT INTO notices (program, resident_id, occasion, send_on, expires_on, run_id)
                     VALUES ('p2', 'R0000000', 'second', 0, 10, 2), ('p3', 'R0000000', 'second', 0, 30, 3);",
                )?;
                let manifest = |program: &str| {
                    format!(
                        "UPDATE plugin_versions SET manifest = json_insert(manifest, '$.occasions[#]',
                             json_object('key', 'second', 'title', '2回目', 'template', '{{program}}の2回目')) WHERE program = '{program}'"
                    )
                };
                connection.execute_batch(&format!("{}; {};", manifest("p2"), manifest("p3")))?;
                Ok(())
            })
            .await
            .unwrap();
        let (queued, summary) = day(10).await;
        assert_eq!((queued, summary.requests), (1, 1), "only what expires today: {summary:?}");

        // Day 11: what waited, once more in one request a recipient, and nothing twice.
        let (queued, summary) = day(11).await;
        assert_eq!((queued, summary.requests, summary.sent), (3 + 2 + 2, 3, 7), "{summary:?}");
        let (emulator_inboxes, rows) = (
            emulator.inboxes(),
            database
                .read(|connection| {
                    Ok((0..3).map(|row| deliveries_to(connection, &format!("U{row:032x}"))).collect::<Vec<_>>())
                })
                .await
                .unwrap(),
        );
        server.abort();
        for (row, rows) in rows.iter().enumerate() {
            let notices = if row == 0 { 9 } else { 7 };
            assert_eq!(rows.len(), notices, "resident {row}: every notice once");
            assert!(rows.iter().all(|(_, _, state, _)| state == "sent"), "{rows:?}");
            assert_eq!(card_texts(&emulator_inboxes[&user(row)]).len(), notices);
        }
    }

    /// A pass that marked a day's request `sending` and sent it, then died before it wrote
    /// the outcome: the next pass sends the same messages under the same key, LINE answers
    /// that it has them, and the recipient has them once.
    #[tokio::test]
    async fn a_days_request_cut_short_by_a_crash_is_sent_again_under_its_key_and_delivered_once() {
        let directory = tempfile::tempdir().unwrap();
        let database = Database::open(&directory.path().join("oshirase.db")).unwrap();
        database
            .write(|connection| {
                synthetic_city::seed_due_notices(connection, 2, &[("p1", 2), ("p2", 2), ("p3", 2)])?;
                enqueue_due(connection, Day(10))
            })
            .await
            .unwrap();
        let (emulator, base_url, server) = serve_emulator().await;
        let channels = Channels {
            line: LineClient::new(LineConfig::new(base_url, "token")).unwrap(),
            mail: None,
            public_url: None,
        };
        // The pass up to the crash: read, marked and sent, no outcome recorded.
        let due = database.write(|connection| due_requests(connection, now_millis(), 0, false)).await.unwrap().0;
        assert_eq!(due.len(), 2, "a request to each resident");
        let members: Vec<Vec<i64>> = due.iter().map(|request| request.ids.clone()).collect();
        database.write(move |connection| mark_sending(connection, &members, now_millis())).await.unwrap();
        let outcome = channels
            .line
            .send(&due[0].addresses, &line_messages(&due[0].messages, None), &due[0].retry_key, "p1")
            .await;
        assert_eq!(outcome, SendOutcome::Accepted);

        let policy = RetryPolicy { linger: Duration::ZERO, ..RetryPolicy::default() };
        let summary = send_queued(&database, &channels, Day(10), &policy, &CancellationToken::new()).await.unwrap();
        server.abort();
        assert_eq!((summary.requests, summary.sent), (2, 6), "{summary:?}");
        let inboxes = emulator.inboxes();
        assert_eq!(inboxes.len(), 2);
        for (user, messages) in inboxes {
            assert_eq!(card_texts(&messages).len(), 3, "{user} got each of the day's three cards once");
        }
    }

    #[test]
    fn the_latest_adult_birth_day_follows_the_age_law() {
        let today = Day::parse_iso("2026-04-01").unwrap();
        // Born 2008-04-02: reaches 18 on 2026-04-01, so is an adult on that day.
        assert_eq!(latest_birth_day_of_age(18, today), Day::parse_iso("2008-04-02").unwrap());
    }
}
