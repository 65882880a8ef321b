//! The resident snapshot: generations of resident records in SQLite, one of them active,
//! and the columnar population a plugin is handed.

use std::collections::HashMap;

use anyhow::{Context, Result};
use oshirase_sdk::{Day, Field, Population};
use rusqlite::{Connection, OptionalExtension};

use crate::database::{audit, now_text};

/// One resident record as the resident-record system exports it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Resident {
    pub resident_id: String,
    pub household_id: String,
    pub name: String,
    pub name_kana: String,
    pub birth_day: Day,
    /// 1 male, 2 female, 0 not recorded.
    pub sex: u8,
    /// 1 head, 2 spouse, 3 child, 4 parent, 9 other (see `oshirase_sdk::Relationship`).
    pub relationship: u8,
    pub address: String,
    pub ward: String,
    pub resident_since: Option<Day>,
}

/// Stores `residents` as a new snapshot generation and makes it the active one, in one
/// transaction: either the whole snapshot becomes active or nothing changes.
pub fn import(connection: &mut Connection, residents: &[Resident], source: &str, actor: &str) -> Result<i64> {
    let transaction = connection.transaction()?;
    transaction.execute(
        "INSERT INTO snapshots (imported_at, source, resident_count, active) VALUES (?1, ?2, ?3, 0)",
        (now_text(), source, residents.len() as i64),
    )?;
    let snapshot_id = transaction.last_insert_rowid();
    {
        let mut insert = transaction.prepare(
            "INSERT INTO residents (snapshot_id, resident_id, household_id, name, name_kana, birth_day, sex, relationship, address, ward, resident_since)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for resident in residents {
            insert
                .execute(rusqlite::params![
                    snapshot_id,
                    resident.resident_id,
                    resident.household_id,
                    resident.name,
                    resident.name_kana,
                    resident.birth_day.0,
                    resident.sex,
                    resident.relationship,
                    resident.address,
                    resident.ward,
                    resident.resident_since.map(|day| day.0),
                ])
                .with_context(|| format!("cannot store resident {}", resident.resident_id))?;
        }
    }
    transaction.execute("UPDATE snapshots SET active = 0 WHERE active = 1", [])?;
    transaction.execute("UPDATE snapshots SET active = 1 WHERE id = ?1", [snapshot_id])?;
    audit(&transaction, actor, "import", &format!("snapshot {snapshot_id}"), &format!("{} residents from {source}", residents.len()))?;
    transaction.commit()?;
    Ok(snapshot_id)
}

/// The active snapshot's id, if any import has succeeded.
pub fn active(connection: &Connection) -> Result<Option<i64>> {
    Ok(connection.query_row("SELECT id FROM snapshots WHERE active = 1", [], |row| row.get(0)).optional()?)
}

/// A population ready for a plugin, with the resident id of every row so that the host
/// can turn a notice's row number back into a resident.
pub struct LoadedPopulation {
    pub snapshot_id: i64,
    pub resident_ids: Vec<String>,
    pub population: Population,
}

/// Reads the active snapshot as columns, filling only the columns `fields` names.
pub fn load_population(connection: &Connection, fields: &[Field]) -> Result<LoadedPopulation> {
    let snapshot_id = active(connection)?.context("no active snapshot: import resident records first")?;
    let wants = |field| fields.contains(&field);
    let mut population = Population::default();
    let mut resident_ids = Vec::new();
    let mut households: HashMap<String, u32> = HashMap::new();
    let mut wards: HashMap<String, u16> = HashMap::new();
    let mut statement = connection.prepare_cached(
        "SELECT resident_id, household_id, birth_day, sex, relationship, ward, resident_since
         FROM residents WHERE snapshot_id = ?1 ORDER BY resident_id",
    )?;
    let mut rows = statement.query([snapshot_id])?;
    while let Some(row) = rows.next()? {
        resident_ids.push(row.get::<_, String>(0)?);
        if wants(Field::BirthDay) {
            population.birth_day.push(row.get(2)?);
        }
        if wants(Field::Sex) {
            population.sex.push(row.get(3)?);
        }
        if wants(Field::Household) {
            let next = households.len() as u32;
            population.household.push(*households.entry(row.get(1)?).or_insert(next));
        }
        if wants(Field::Relationship) {
            population.relationship.push(row.get(4)?);
        }
        if wants(Field::Ward) {
            let ward: String = row.get(5)?;
            let next = wards.len() as u16;
            let index = *wards.entry(ward.clone()).or_insert_with(|| {
                population.wards.push(ward);
                next
            });
            population.ward.push(index);
        }
        if wants(Field::ResidentSince) {
            population.resident_since.push(row.get::<_, Option<i32>>(6)?.unwrap_or(i32::MIN));
        }
    }
    population.size = resident_ids.len() as u32;
    Ok(LoadedPopulation { snapshot_id, resident_ids, population })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn resident(id: &str, household: &str, birth: &str, relationship: u8) -> Resident {
        Resident {
            resident_id: id.into(),
            household_id: household.into(),
            name: format!("住民{id}"),
            name_kana: String::new(),
            birth_day: Day::parse_iso(birth).unwrap(),
            sex: 2,
            relationship,
            address: String::new(),
            ward: if id.ends_with('1') { "中央区".into() } else { "美浜区".into() },
            resident_since: None,
        }
    }

    #[test]
    fn a_plugin_gets_only_the_columns_it_declares() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(include_str!("../../db/0001_initial.sql")).unwrap();
        let residents = [resident("001", "h1", "1990-01-01", 1), resident("002", "h1", "2026-01-01", 3), resident("003", "h2", "1950-05-05", 1)];
        import(&mut connection, &residents, "test", "test").unwrap();

        let loaded = load_population(&connection, &[Field::BirthDay, Field::Ward]).unwrap();
        assert_eq!(loaded.resident_ids, ["001", "002", "003"]);
        assert_eq!(loaded.population.size, 3);
        assert_eq!(loaded.population.birth_day[1], Day::parse_iso("2026-01-01").unwrap().0);
        assert_eq!(loaded.population.ward, [0, 1, 1]);
        assert_eq!(loaded.population.wards, ["中央区", "美浜区"]);
        assert!(loaded.population.sex.is_empty() && loaded.population.household.is_empty());

        let households = load_population(&connection, &[Field::Household]).unwrap();
        assert_eq!(households.population.household, [0, 0, 1]);
        assert!(households.population.birth_day.is_empty());
    }

    #[test]
    fn a_new_import_becomes_active_and_the_old_one_is_kept() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(include_str!("../../db/0001_initial.sql")).unwrap();
        let first = import(&mut connection, &[resident("001", "h1", "1990-01-01", 1)], "first", "test").unwrap();
        let second = import(&mut connection, &[resident("002", "h2", "1990-01-01", 1)], "second", "test").unwrap();
        assert_eq!(active(&connection).unwrap(), Some(second));
        let kept: i64 = connection.query_row("SELECT count(*) FROM residents WHERE snapshot_id = ?1", [first], |row| row.get(0)).unwrap();
        assert_eq!(kept, 1);
    }
}
