//! Due dates and children's birth dates that a LINE user registers in the chat, for towns
//! whose resident records are not connected (and for parents who are not linked). At
//! evaluation each becomes a person of the population, so the timing programs treat them
//! exactly like snapshot records: a birth date is a child (`self:<id>`) born that day; a
//! due date is a pregnancy of a person `self:<id>`, handed only to programs that read
//! pregnancies (that person has no age or sex, so no other program may see them). All of
//! one user's entries share a household of their own, so a baby registered after its due
//! date is the baby of that pregnancy. The outbox sends their notices to the LINE user who
//! registered them; they never carry tax data.

use std::collections::HashMap;

use anyhow::Result;
use oshirase_sdk::{Day, Field, Population, Relationship};
use rusqlite::Connection;

use crate::import::PREGNANCY_CODE;
use crate::outbox::{Undelivered, cancel_undelivered};
use crate::snapshot::ResidentIds;
use crate::time::now_text;

/// The prefix of the resident id of a self-registered person.
pub const SELF_PREFIX: &str = "self:";
/// The most entries one LINE user may keep.
const MAX_ENTRIES: i64 = 10;

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    DueDate,
    BirthDate,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::DueDate => "due-date",
            Kind::BirthDate => "birth-date",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::DueDate => "出産予定日",
            Kind::BirthDate => "お子さんの誕生日",
        }
    }

    /// The days an entry of this kind may name, seen from `today`: a due date from two
    /// months ago (a late birth) to 300 days ahead; a birth date in the last 18 years.
    pub fn range(self, today: Day) -> (Day, Day) {
        match self {
            Kind::DueDate => (today.add_days(-60), today.add_days(300)),
            Kind::BirthDate => (today.add_months_clamped(-12 * 18).add_days(1), today),
        }
    }
}

/// One registered entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub kind: Kind,
    pub day: Day,
}

/// Why an entry was refused, in words for the resident.
pub type Refusal = &'static str;

/// Stores an entry for `line_user_id`; refuses a day outside the kind's range or more than
/// ten entries.
pub fn add(
    connection: &Connection,
    line_user_id: &str,
    kind: Kind,
    day: Day,
    today: Day,
) -> Result<Result<i64, Refusal>> {
    let (first, last) = kind.range(today);
    if day < first || day > last {
        return Ok(Err(match kind {
            Kind::DueDate => "出産予定日は、今日から300日以内の日付を送ってください",
            Kind::BirthDate => "誕生日は、今日までの18年以内の日付を送ってください",
        }));
    }
    let count: i64 = connection.query_row(
        "SELECT count(*) FROM self_registrations WHERE line_user_id = ?1",
        [line_user_id],
        |row| row.get(0),
    )?;
    if count >= MAX_ENTRIES {
        return Ok(Err("登録できるのは10件までです。「登録の確認」\
                       から不要なものを削除してください"));
    }
    connection.execute(
        "INSERT INTO self_registrations (line_user_id, kind, day, registered_on, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        (line_user_id, kind.as_str(), day.0, today.0, now_text()),
    )?;
    Ok(Ok(connection.last_insert_rowid()))
}

/// The user's entries, oldest first.
pub fn list(connection: &Connection, line_user_id: &str) -> Result<Vec<Entry>> {
    let mut statement = connection
        .prepare_cached("SELECT id, kind, day FROM self_registrations WHERE line_user_id = ?1 ORDER BY id")?;
    let entries = statement
        .query_map([line_user_id], |row| {
            let kind: String = row.get(1)?;
            Ok(Entry {
                id: row.get(0)?,
                kind: if kind == "due-date" { Kind::DueDate } else { Kind::BirthDate },
                day: Day(row.get(2)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(entries)
}

/// Deletes one of the user's entries and cancels its deliveries not yet sent; returns
/// whether there was such an entry.
pub fn delete(connection: &Connection, line_user_id: &str, id: i64) -> Result<bool> {
    let deleted =
        connection.execute("DELETE FROM self_registrations WHERE id = ?1 AND line_user_id = ?2", (id, line_user_id))?;
    if deleted == 0 {
        return Ok(false);
    }
    let resident_id = format!("{SELF_PREFIX}{id}");
    cancel_undelivered(
        connection,
        Undelivered::About { resident_id: &resident_id, program: None },
        "deleted by the user",
    )?;
    Ok(true)
}

/// Appends every user's entries to a population read from the snapshot, as described in
/// the module's note: a child per birth date for every program, a person with a pregnancy
/// per due date only when `fields` asks for pregnancies. Fills only the declared columns.
/// Birth dates come before due dates, so that the rows a program without pregnancies sees
/// are the first rows of a population read for every program (`LoadedPopulation::rows_for`).
pub fn append_to_population(
    connection: &Connection,
    fields: &[Field],
    resident_ids: &mut ResidentIds,
    population: &mut Population,
) -> Result<()> {
    let wants = |field| fields.contains(&field);
    let mut statement = connection.prepare_cached(
        "SELECT s.id, s.kind, s.day, s.registered_on, s.line_user_id FROM self_registrations s
         JOIN line_users u ON u.line_user_id = s.line_user_id AND u.following = 1
         ORDER BY s.kind = 'due-date', s.line_user_id, s.id",
    )?;
    let rows: Vec<(i64, String, i32, i32, String)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))?
        .collect::<Result<_, _>>()?;
    if rows.is_empty() {
        return Ok(());
    }
    let first_household = population.household.iter().max().map_or(0, |last| last + 1);
    let mut households: HashMap<String, u32> = HashMap::new();
    let ward = population.wards.len() as u16;
    if wants(Field::Ward) {
        population.wards.push(String::new());
    }
    for (id, kind, day, registered_on, line_user_id) in rows {
        let due = kind == "due-date";
        if due && !wants(Field::Pregnancies) {
            continue;
        }
        let person = resident_ids.len() as u32;
        resident_ids.push(format!("{SELF_PREFIX}{id}"));
        let next = first_household + households.len() as u32;
        let household = *households.entry(line_user_id).or_insert(next);
        // A pregnancy's person has no age of their own: a birth day 30 years before the due
        // date only fills the column; the programs that see them read the pregnancy.
        let (birth_day, relationship) = if due {
            (Day(day).add_months_clamped(-360).0, Relationship::Head.code())
        } else {
            (day, Relationship::Child.code())
        };
        if wants(Field::BirthDay) {
            population.birth_day.push(birth_day);
        }
        if wants(Field::Sex) {
            population.sex.push(0);
        }
        if wants(Field::Household) {
            population.household.push(household);
        }
        if wants(Field::Relationship) {
            population.relationship.push(relationship);
        }
        if wants(Field::Ward) {
            population.ward.push(ward);
        }
        if wants(Field::ResidentSince) {
            population.resident_since.push(i32::MIN);
        }
        if wants(Field::Tax) {
            population.taxable.push(0);
            population.income.push(0);
        }
        if due {
            let pregnancies = &mut population.pregnancies;
            let code = match pregnancies.codes.iter().position(|code| code == PREGNANCY_CODE) {
                Some(index) => index as u16,
                None => {
                    pregnancies.codes.push(PREGNANCY_CODE.into());
                    (pregnancies.codes.len() - 1) as u16
                }
            };
            pregnancies.person.push(person);
            pregnancies.code.push(code);
            pregnancies.count.push(1);
            pregnancies.start.push(registered_on.min(day));
            pregnancies.end.push(day);
        }
    }
    population.size = resident_ids.len() as u32;
    Ok(())
}
