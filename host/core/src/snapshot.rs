//! The resident snapshot: generations of municipal exports in SQLite, one of them active,
//! and the columnar population a plugin is handed.
//!
//! A snapshot is written through a [`SnapshotWriter`] inside the importer's transaction
//! and becomes visible only when [`activate`] runs in that same transaction. Rows of one
//! snapshot share the key range `snapshot_id * 2^32 ..`, so a plugin's population is read
//! by a range scan and the row number is the index the plugin sees.

use anyhow::{Context, Result};
use oshirase_sdk::{Attributes, Day, Enrollments, Events, Field, Population};
use rusqlite::{Connection, OptionalExtension, Statement, Transaction};
// Keys are household ids, ward names, event codes and data kinds from our own database,
// so the hash need not resist flooding; SipHash was a twentieth of reading a city's
// columns.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::database::audit;
use crate::time::now_text;

/// One living resident as the resident-record system exports them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Resident {
    pub resident_id: String,
    pub household_id: String,
    pub name: String,
    pub name_kana: String,
    pub birth_day: Day,
    /// The register marks the birth day as not exact (生年月日_不詳フラグ): no program that
    /// reads birth days gives this resident a notice.
    pub birth_day_inexact: bool,
    /// 1 male, 2 female, 0 not recorded.
    pub sex: u8,
    /// 1 head, 2 spouse, 3 child, 4 parent, 9 other (see `oshirase_sdk::Relationship`).
    pub relationship: u8,
    pub address: String,
    /// Seven digits as `260-0013`, or empty when the export has none.
    pub postal_code: String,
    pub ward: String,
    pub resident_since: Option<Day>,
}

/// Why someone in the export no longer lives here.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Departure {
    MovedOut,
    Deceased,
}

impl Departure {
    pub fn as_str(self) -> &'static str {
        match self {
            Departure::MovedOut => "moved_out",
            Departure::Deceased => "deceased",
        }
    }
}

/// The four kinds of dated records, in the order of their key ranges.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EventKind {
    Pregnancy,
    Immunization,
    Checkup,
    Receipt,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Pregnancy => "pregnancy",
            EventKind::Immunization => "immunization",
            EventKind::Checkup => "checkup",
            EventKind::Receipt => "receipt",
        }
    }

    fn number(self) -> i64 {
        self as i64
    }

    /// The first and last key of this kind's events in one snapshot.
    pub fn key_range(self, snapshot_id: i64) -> (i64, i64) {
        let first = snapshot_key(snapshot_id, 0) + (self.number() << EVENT_KIND_SHIFT);
        (first, first + (1 << EVENT_KIND_SHIFT) - 1)
    }
}

/// Each snapshot owns 2^32 keys in every per-snapshot table.
const SNAPSHOT_SHIFT: u32 = 32;
/// Within a snapshot's events, each kind owns 2^28 keys.
const EVENT_KIND_SHIFT: u32 = 28;

fn snapshot_key(snapshot_id: i64, number: u32) -> i64 {
    (snapshot_id << SNAPSHOT_SHIFT) + i64::from(number)
}

/// The first and last key of one snapshot.
pub fn snapshot_range(snapshot_id: i64) -> (i64, i64) {
    (snapshot_key(snapshot_id, 0), snapshot_key(snapshot_id, u32::MAX))
}

/// Writes one new, not yet active, snapshot generation. Everything it writes is inside the
/// caller's transaction, so dropping the transaction forgets the whole snapshot.
pub struct SnapshotWriter<'t> {
    pub snapshot_id: i64,
    residents: u32,
    departed: u32,
    tax_rows: u32,
    events: [u32; 4],
    enrollments: u32,
    attributes: u32,
    insert_resident: Statement<'t>,
    insert_departed: Statement<'t>,
    insert_tax: Statement<'t>,
    insert_event: Statement<'t>,
    insert_enrollment: Statement<'t>,
    insert_attribute: Statement<'t>,
}

impl<'t> SnapshotWriter<'t> {
    pub fn new(transaction: &'t Transaction<'_>, source: &str) -> Result<SnapshotWriter<'t>> {
        transaction.execute(
            "INSERT INTO snapshots (imported_at, source, resident_count, active) VALUES (?1, ?2, 0, 0)",
            (now_text(), source),
        )?;
        Ok(SnapshotWriter {
            snapshot_id: transaction.last_insert_rowid(),
            residents: 0,
            departed: 0,
            tax_rows: 0,
            events: [0; 4],
            enrollments: 0,
            attributes: 0,
            insert_resident: transaction.prepare(
                "INSERT INTO residents (key, snapshot_id, resident_id, household_id, name, name_kana, birth_day, sex,
                     relationship, address, ward, resident_since, postal_code, birth_day_inexact)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?,
            insert_departed: transaction.prepare(
                "INSERT INTO departed_residents (key, snapshot_id, resident_id, status) VALUES (?1, ?2, ?3, ?4)",
            )?,
            insert_tax: transaction.prepare(
                "INSERT INTO tax (key, row, fiscal_year, total_income, taxable) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?,
            insert_event: transaction.prepare(
                "INSERT INTO events (key, row, kind, code, count, start_day, end_day)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
            insert_enrollment: transaction.prepare(
                "INSERT INTO enrollments (key, row, kind, level, start_day, end_day, consent_required)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
            insert_attribute: transaction.prepare(
                "INSERT INTO attributes (key, row, name, value, consent_required) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?,
        })
    }

    /// Adds a living resident and returns their row, the index plugins will see.
    pub fn add_resident(&mut self, resident: &Resident) -> Result<u32> {
        let row = self.residents;
        self.insert_resident
            .execute(rusqlite::params![
                snapshot_key(self.snapshot_id, row),
                self.snapshot_id,
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
                resident.postal_code,
                resident.birth_day_inexact,
            ])
            .with_context(|| format!("cannot store resident {}", resident.resident_id))?;
        self.residents += 1;
        Ok(row)
    }

    pub fn add_departed(&mut self, resident_id: &str, departure: Departure) -> Result<()> {
        self.insert_departed.execute((
            snapshot_key(self.snapshot_id, self.departed),
            self.snapshot_id,
            resident_id,
            departure.as_str(),
        ))?;
        self.departed += 1;
        Ok(())
    }

    /// Adds one fiscal year of a resident's tax record; `taxable` is 1, 2 or 3 as in the
    /// plugin contract.
    pub fn add_tax(&mut self, row: u32, fiscal_year: i32, total_income: i64, taxable: u8) -> Result<()> {
        self.insert_tax.execute((
            snapshot_key(self.snapshot_id, self.tax_rows),
            row,
            fiscal_year,
            total_income,
            taxable,
        ))?;
        self.tax_rows += 1;
        Ok(())
    }

    /// Adds a dated record; `end` is `None` when the record has no end (an ongoing receipt).
    pub fn add_event(
        &mut self,
        kind: EventKind,
        row: u32,
        code: &str,
        count: u8,
        start: Day,
        end: Option<Day>,
    ) -> Result<()> {
        let number = &mut self.events[kind as usize];
        anyhow::ensure!(*number < (1 << EVENT_KIND_SHIFT), "too many {} records in one snapshot", kind.as_str());
        let key = kind.key_range(self.snapshot_id).0 + i64::from(*number);
        self.insert_event.execute((
            key,
            row,
            kind.as_str(),
            code,
            count,
            start.0,
            end.map_or(i32::MAX, |day| day.0),
        ))?;
        *number += 1;
        Ok(())
    }

    /// Adds a period of a data kind (`国保`, `要介護` with the level `要介護3`); `level` is
    /// empty when the row has none, `end` is `None` while the period goes on. A row with
    /// `consent_required` reaches programs only for a resident who consented.
    pub fn add_enrollment(
        &mut self,
        row: u32,
        kind: &str,
        level: &str,
        start: Day,
        end: Option<Day>,
        consent_required: bool,
    ) -> Result<()> {
        self.insert_enrollment.execute((
            snapshot_key(self.snapshot_id, self.enrollments),
            row,
            kind,
            level,
            start.0,
            end.map_or(i32::MAX, |day| day.0),
            consent_required,
        ))?;
        self.enrollments += 1;
        Ok(())
    }

    /// Adds a named value (`身体障害者手帳の等級` = `2`); with `consent_required` it reaches
    /// programs only for a resident who consented.
    pub fn add_attribute(&mut self, row: u32, name: &str, value: &str, consent_required: bool) -> Result<()> {
        self.insert_attribute.execute((
            snapshot_key(self.snapshot_id, self.attributes),
            row,
            name,
            value,
            consent_required,
        ))?;
        self.attributes += 1;
        Ok(())
    }

    pub fn resident_count(&self) -> u32 {
        self.residents
    }

    /// Records the counts on the snapshot; `files` says what was read and `warnings` what
    /// staff should know of it, for staff screens.
    pub fn finish(self, transaction: &Transaction<'_>, files: &str, warnings: &[String]) -> Result<i64> {
        transaction.execute(
            "UPDATE snapshots SET resident_count = ?1, files = ?2, warnings = ?3 WHERE id = ?4",
            (self.residents, files, serde_json::to_string(warnings)?, self.snapshot_id),
        )?;
        Ok(self.snapshot_id)
    }
}

/// Makes `snapshot_id` the active snapshot, in one step. Inside the importer's
/// transaction the switch is atomic with the import.
pub fn activate(connection: &Connection, snapshot_id: i64, actor: &str) -> Result<()> {
    let exists: bool =
        connection.query_row("SELECT count(*) FROM snapshots WHERE id = ?1", [snapshot_id], |row| row.get(0))?;
    anyhow::ensure!(exists, "there is no snapshot {snapshot_id}");
    // A savepoint makes the two updates one step whether or not a transaction is open.
    connection.execute_batch("SAVEPOINT activate")?;
    let switched = connection
        .execute("UPDATE snapshots SET active = 0 WHERE active = 1 AND id <> ?1", [snapshot_id])
        .and_then(|_| connection.execute("UPDATE snapshots SET active = 1 WHERE id = ?1", [snapshot_id]));
    match switched {
        Ok(_) => connection.execute_batch("RELEASE activate")?,
        Err(error) => {
            connection.execute_batch("ROLLBACK TO activate; RELEASE activate")?;
            return Err(error).context("cannot switch the active snapshot");
        }
    }
    audit(connection, actor, "activate-snapshot", &format!("snapshot {snapshot_id}"), "")?;
    Ok(())
}

/// The active snapshot's id, if any import has succeeded.
pub fn active(connection: &Connection) -> Result<Option<i64>> {
    Ok(connection.query_row("SELECT id FROM snapshots WHERE active = 1", [], |row| row.get(0)).optional()?)
}

/// The active snapshot's number of living residents, 0 when there is none.
pub fn active_resident_count(connection: &Connection) -> Result<u32> {
    Ok(connection
        .query_row("SELECT resident_count FROM snapshots WHERE active = 1", [], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// One generation, as `oshirase snapshot list` and the admin API show it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SnapshotInfo {
    pub id: i64,
    pub imported_at: String,
    pub source: String,
    pub residents: u32,
    pub files: String,
    /// What the import warned of (households without a head for now, 同居人 …).
    pub warnings: Vec<String>,
    pub active: bool,
}

/// Every kept generation, newest first.
pub fn list(connection: &Connection) -> Result<Vec<SnapshotInfo>> {
    let mut statement = connection.prepare(
        "SELECT id, imported_at, source, resident_count, files, active, warnings FROM snapshots ORDER BY id DESC",
    )?;
    let snapshots = statement
        .query_map([], |row| {
            let warnings: String = row.get(6)?;
            Ok(SnapshotInfo {
                id: row.get(0)?,
                imported_at: row.get(1)?,
                source: row.get(2)?,
                residents: row.get(3)?,
                files: row.get(4)?,
                warnings: serde_json::from_str(&warnings).unwrap_or_else(|_| vec![warnings]),
                active: row.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(snapshots)
}

/// Deletes the oldest generations so that at most `keep` remain; the active one is always
/// kept. Returns the ids deleted.
pub fn prune(connection: &mut Connection, keep: usize) -> Result<Vec<i64>> {
    let transaction = connection.transaction()?;
    let doomed: Vec<i64> = transaction
        .prepare("SELECT id FROM snapshots WHERE active = 0 ORDER BY id DESC LIMIT -1 OFFSET ?1")?
        .query_map([keep.saturating_sub(1) as i64], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for snapshot_id in &doomed {
        let (first, last) = snapshot_range(*snapshot_id);
        for table in ["residents", "departed_residents", "tax", "events", "enrollments", "attributes"] {
            transaction.execute(&format!("DELETE FROM {table} WHERE key BETWEEN ?1 AND ?2"), (first, last))?;
        }
        transaction.execute("DELETE FROM snapshots WHERE id = ?1", [snapshot_id])?;
        audit(&transaction, "system", "prune-snapshot", &format!("snapshot {snapshot_id}"), "")?;
    }
    transaction.commit()?;
    Ok(doomed)
}

/// The resident id of every row, as one text and where each id ends in it: a `String` per
/// resident would cost a city of a million some 50 MB and a million allocations.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ResidentIds {
    text: String,
    ends: Vec<usize>,
}

impl ResidentIds {
    fn with_capacity(ids: usize) -> ResidentIds {
        ResidentIds { text: String::with_capacity(ids * 12), ends: Vec::with_capacity(ids) }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Adds the id of the next row.
    pub fn push(&mut self, id: impl AsRef<str>) {
        self.text.push_str(id.as_ref());
        self.ends.push(self.text.len());
    }

    /// The id of `row`, if there is such a row.
    pub fn get(&self, row: u32) -> Option<&str> {
        let row = row as usize;
        let end = *self.ends.get(row)?;
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        Some(&self.text[start..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len() as u32).filter_map(|row| self.get(row))
    }
}

impl std::fmt::Debug for ResidentIds {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_list().entries(self.iter()).finish()
    }
}

impl<const N: usize> PartialEq<[&str; N]> for ResidentIds {
    fn eq(&self, ids: &[&str; N]) -> bool {
        self.len() == N && self.iter().zip(ids).all(|(id, other)| id == *other)
    }
}

/// A population ready for plugins, with the resident id of every row so that the host can
/// turn a notice's row number back into a resident.
pub struct LoadedPopulation {
    pub snapshot_id: i64,
    pub resident_ids: ResidentIds,
    pub population: Population,
    /// The rows before the first due date registered in the chat, which come last: all that
    /// a program which does not read pregnancies may see.
    pub(crate) rows_without_due_dates: u32,
    /// The rows of the snapshot's residents; the rows after them are people registered in
    /// the chat.
    pub snapshot_rows: u32,
    /// The rows whose birth day is not exact, in order; read only with the birth days.
    pub inexact_birth_days: Vec<u32>,
}

impl LoadedPopulation {
    /// How many rows, from the first, a program reading `fields` is given: a population read
    /// once for every program of a day serves each exactly as `load_population(fields)`
    /// would have (`chat::timing` orders the due dates after the birth dates for this).
    pub fn rows_for(&self, fields: &[Field]) -> u32 {
        if fields.contains(&Field::Pregnancies) { self.population.size } else { self.rows_without_due_dates }
    }

    /// Whether the register marks `person`'s birth day as not exact.
    pub fn birth_day_inexact(&self, person: u32) -> bool {
        self.inexact_birth_days.binary_search(&person).is_ok()
    }
}

/// Reads the active snapshot as columns, filling only the columns `fields` names, and the
/// enrollments and attributes of the data kinds `kinds` names (none when it is empty).
/// Tax columns, and the rows of data kinds marked as requiring consent, are filled only
/// for residents who consented to the use of their tax data. The people registered in the
/// chat are appended by the evaluation (`evaluate::load_population`), not here.
///
/// When the database is a file, the dated records and the data kinds are read on a second,
/// read-only connection on another thread while this one reads the residents, so the read
/// takes two cores. Both read the rows of the one snapshot chosen first, which no import
/// changes.
pub fn load_population(connection: &Connection, fields: &[Field], kinds: &[String]) -> Result<LoadedPopulation> {
    let snapshot_id = active(connection)?.context("no active snapshot: import resident records first")?;
    load_snapshot(connection, snapshot_id, fields, kinds)
}

/// `load_population` of the snapshot `snapshot_id`, active or kept: an earlier export
/// tells who was eligible before the later one shows who took it up (`uptake`).
pub fn load_snapshot(
    connection: &Connection,
    snapshot_id: i64,
    fields: &[Field],
    kinds: &[String],
) -> Result<LoadedPopulation> {
    let resident_count: u32 = connection
        .query_row("SELECT resident_count FROM snapshots WHERE id = ?1", [snapshot_id], |row| row.get(0))
        .optional()?
        .with_context(|| format!("no snapshot {snapshot_id}"))?;
    let reader = match connection.path() {
        Some(path) if !path.is_empty() => Some(open_reader(path)?),
        _ => None,
    };
    let (resident_ids, mut population, records) = std::thread::scope(|scope| -> Result<_> {
        let records = reader.map(|reader| scope.spawn(move || load_records(&reader, snapshot_id, fields, kinds)));
        let (resident_ids, population) = load_residents(connection, snapshot_id, resident_count, fields)?;
        let records = match records {
            Some(thread) => thread.join().map_err(|_| anyhow::anyhow!("the thread reading the records panicked"))??,
            None => load_records(connection, snapshot_id, fields, kinds)?,
        };
        Ok((resident_ids, population, records))
    })?;
    [population.pregnancies, population.immunizations, population.checkups, population.receipts] = records.events;
    (population.enrollments, population.attributes) = (records.enrollments, records.attributes);
    let rows_without_due_dates = population.size;
    let snapshot_rows = population.size;
    let inexact_birth_days =
        if fields.contains(&Field::BirthDay) { inexact_birth_days(connection, snapshot_id)? } else { Vec::new() };
    Ok(LoadedPopulation {
        snapshot_id,
        resident_ids,
        population,
        rows_without_due_dates,
        snapshot_rows,
        inexact_birth_days,
    })
}

/// The rows, in order, whose birth day the register marks as not exact; a partial index
/// holds only them.
fn inexact_birth_days(connection: &Connection, snapshot_id: i64) -> Result<Vec<u32>> {
    let (first, last) = snapshot_range(snapshot_id);
    let mut statement = connection.prepare_cached(
        "SELECT key FROM residents INDEXED BY residents_inexact_birth_day
         WHERE birth_day_inexact = 1 AND key BETWEEN ?1 AND ?2 ORDER BY key",
    )?;
    let rows = statement.query_map((first, last), |row| row.get::<_, i64>(0))?;
    rows.map(|key| Ok((key? - first) as u32)).collect()
}

/// A second connection to the database file at `path`, for reading only.
fn open_reader(path: &str) -> Result<Connection> {
    // NO_MUTEX as `Connection::open` sets: the connection is used by one thread at a time.
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags).with_context(|| format!("cannot open database {path} for reading"))
}

/// What the second connection reads: the dated records and the data kinds.
struct Records {
    /// In the order of `RECORD_FIELDS`.
    events: [Events; 4],
    enrollments: Enrollments,
    attributes: Attributes,
}

/// The pregnancies, immunizations, checkups and receipts of a snapshot, each only if
/// `fields` names it, and the enrollments and attributes of `kinds`.
fn load_records(connection: &Connection, snapshot_id: i64, fields: &[Field], kinds: &[String]) -> Result<Records> {
    let mut events: [Events; 4] = Default::default();
    for (events, (field, kind)) in events.iter_mut().zip(RECORD_FIELDS) {
        if fields.contains(&field) {
            *events = load_events(connection, snapshot_id, kind)?;
        }
    }
    let (enrollments, attributes) =
        if kinds.is_empty() { Default::default() } else { load_kinds(connection, snapshot_id, kinds)? };
    Ok(Records { events, enrollments, attributes })
}

/// The fields of dated records, in the order of `load_records`.
const RECORD_FIELDS: [(Field, EventKind); 4] = [
    (Field::Pregnancies, EventKind::Pregnancy),
    (Field::Immunizations, EventKind::Immunization),
    (Field::Checkups, EventKind::Checkup),
    (Field::Receipts, EventKind::Receipt),
];

/// The residents' columns that `fields` names and the tax columns, with every row's id.
fn load_residents(
    connection: &Connection,
    snapshot_id: i64,
    resident_count: u32,
    fields: &[Field],
) -> Result<(ResidentIds, Population)> {
    let wants = |field| fields.contains(&field);
    let (first, last) = snapshot_range(snapshot_id);
    let rows = resident_count as usize;
    // Reserved at their size, so that a column is never copied to grow nor left with unused
    // capacity.
    fn reserved<T>(wanted: bool, rows: usize) -> Vec<T> {
        if wanted { Vec::with_capacity(rows) } else { Vec::new() }
    }
    let mut population = Population {
        birth_day: reserved(wants(Field::BirthDay), rows),
        sex: reserved(wants(Field::Sex), rows),
        household: reserved(wants(Field::Household), rows),
        relationship: reserved(wants(Field::Relationship), rows),
        ward: reserved(wants(Field::Ward), rows),
        resident_since: reserved(wants(Field::ResidentSince), rows),
        ..Population::default()
    };
    let mut resident_ids = ResidentIds::with_capacity(rows);
    // Sized for households of two, so that it seldom grows.
    let mut households: Numbering<u32> =
        Numbering::new("households", if wants(Field::Household) { rows / 2 } else { 0 });
    let mut wards: Numbering<u16> = Numbering::new("wards", 0);
    // Only the columns wanted are selected, in this order, each read at the next index.
    let selected: Vec<&str> =
        RESIDENT_COLUMNS.iter().filter(|(field, _)| field.is_none_or(&wants)).map(|(_, name)| *name).collect();
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {} FROM residents WHERE key BETWEEN ?1 AND ?2 ORDER BY key",
        selected.join(", ")
    ))?;
    let mut rows = statement.query((first, last))?;
    while let Some(row) = rows.next()? {
        resident_ids.push(row.get_ref(0)?.as_str()?);
        let mut column = 1;
        let mut next = || {
            column += 1;
            column - 1
        };
        if wants(Field::BirthDay) {
            population.birth_day.push(row.get(next())?);
        }
        if wants(Field::Sex) {
            population.sex.push(row.get(next())?);
        }
        if wants(Field::Household) {
            population.household.push(households.number(row.get_ref(next())?.as_bytes()?)?.0);
        }
        if wants(Field::Relationship) {
            population.relationship.push(row.get(next())?);
        }
        if wants(Field::Ward) {
            let (ward, new) = wards.number(row.get_ref(next())?.as_bytes()?)?;
            population.wards.extend(new.map(str::to_owned));
            population.ward.push(ward);
        }
        if wants(Field::ResidentSince) {
            population.resident_since.push(row.get::<_, Option<i32>>(next())?.unwrap_or(i32::MIN));
        }
    }
    drop(households);
    population.size = resident_ids.len() as u32;
    if wants(Field::Tax) {
        load_tax(connection, snapshot_id, &mut population)?;
    }
    Ok((resident_ids, population))
}

/// The columns of `residents` a population may be read from, with the field each fills;
/// the resident id is always read.
const RESIDENT_COLUMNS: [(Option<Field>, &str); 7] = [
    (None, "resident_id"),
    (Some(Field::BirthDay), "birth_day"),
    (Some(Field::Sex), "sex"),
    (Some(Field::Household), "household_id"),
    (Some(Field::Relationship), "relationship"),
    (Some(Field::Ward), "ward"),
    (Some(Field::ResidentSince), "resident_since"),
];

/// Numbers the distinct texts of a column (households, wards, event codes) in the order
/// they first appear. Rows that repeat the previous row's text (a household's members are
/// listed together, a person's doses of one vaccine too) need no lookup, and texts are
/// compared as bytes: only a new one is checked to be UTF-8 and allocated.
struct Numbering<N> {
    what: &'static str,
    numbers: HashMap<Box<[u8]>, N>,
    previous_text: Vec<u8>,
    previous_number: Option<N>,
}

impl<N: Copy + TryFrom<usize>> Numbering<N> {
    fn new(what: &'static str, capacity: usize) -> Numbering<N> {
        Numbering {
            what,
            numbers: HashMap::with_capacity_and_hasher(capacity, Default::default()),
            previous_text: Vec::new(),
            previous_number: None,
        }
    }

    /// The number of `text`, and the text when it was not seen before.
    fn number<'t>(&mut self, text: &'t [u8]) -> Result<(N, Option<&'t str>)> {
        if let Some(number) = self.previous_number
            && self.previous_text == text
        {
            return Ok((number, None));
        }
        let (number, new) = match self.numbers.get(text) {
            Some(number) => (*number, None),
            None => {
                let checked = std::str::from_utf8(text)
                    .with_context(|| format!("one of the snapshot's {} is not UTF-8 text", self.what))?;
                let number = N::try_from(self.numbers.len())
                    .map_err(|_| anyhow::anyhow!("more than {} distinct {}", self.numbers.len(), self.what))?;
                self.numbers.insert(text.into(), number);
                (number, Some(checked))
            }
        };
        self.previous_text.clear();
        self.previous_text.extend_from_slice(text);
        self.previous_number = Some(number);
        Ok((number, new))
    }
}

/// The rows of the residents who consented to the use of their tax data: the consent that
/// opens their tax columns and the rows of data kinds marked as requiring it.
fn consenting_rows(connection: &Connection, snapshot_id: i64) -> Result<HashSet<u32>> {
    Ok(connection
        .prepare_cached(
            "SELECT r.key - ?2 FROM registrations g
             JOIN residents r ON r.snapshot_id = ?1 AND r.resident_id = g.resident_id
             WHERE g.active = 1 AND g.tax_consent_at IS NOT NULL",
        )?
        .query_map((snapshot_id, snapshot_key(snapshot_id, 0)), |row| row.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Fills `taxable` and `income` from each consenting resident's latest fiscal year.
fn load_tax(connection: &Connection, snapshot_id: i64, population: &mut Population) -> Result<()> {
    let size = population.size as usize;
    population.taxable = vec![0; size];
    population.income = vec![0; size];
    let consenting = consenting_rows(connection, snapshot_id)?;
    if consenting.is_empty() {
        return Ok(());
    }
    let mut latest_year = vec![i32::MIN; size];
    let (first, last) = snapshot_range(snapshot_id);
    let mut statement = connection
        .prepare_cached("SELECT row, fiscal_year, total_income, taxable FROM tax WHERE key BETWEEN ?1 AND ?2")?;
    let mut rows = statement.query((first, last))?;
    while let Some(row) = rows.next()? {
        let person: u32 = row.get(0)?;
        let fiscal_year: i32 = row.get(1)?;
        let index = person as usize;
        if consenting.contains(&person) && index < size && fiscal_year > latest_year[index] {
            latest_year[index] = fiscal_year;
            population.income[index] = row.get(2)?;
            population.taxable[index] = row.get(3)?;
        }
    }
    Ok(())
}

fn load_events(connection: &Connection, snapshot_id: i64, kind: EventKind) -> Result<Events> {
    let (first, last) = kind.key_range(snapshot_id);
    // Keys of one kind are numbered from its first without gaps, so the last key gives the
    // count, and the columns are reserved at their size (a lookup, not a scan).
    let count = connection
        .prepare_cached("SELECT max(key) FROM events WHERE key BETWEEN ?1 AND ?2")?
        .query_row((first, last), |row| row.get::<_, Option<i64>>(0))?
        .map_or(0, |last_key| (last_key - first + 1) as usize);
    let mut events = Events {
        person: Vec::with_capacity(count),
        code: Vec::with_capacity(count),
        count: Vec::with_capacity(count),
        start: Vec::with_capacity(count),
        end: Vec::with_capacity(count),
        ..Events::default()
    };
    let mut codes: Numbering<u16> = Numbering::new("event codes", 0);
    let mut statement = connection
        .prepare_cached("SELECT row, code, count, start_day, end_day FROM events WHERE key BETWEEN ?1 AND ?2")?;
    let mut rows = statement.query((first, last))?;
    while let Some(row) = rows.next()? {
        let (index, new) = codes.number(row.get_ref(1)?.as_bytes()?)?;
        events.codes.extend(new.map(str::to_owned));
        events.person.push(row.get(0)?);
        events.code.push(index);
        events.count.push(row.get(2)?);
        events.start.push(row.get(3)?);
        events.end.push(row.get(4)?);
    }
    Ok(events)
}

/// The enrollments whose kind, and the attributes whose name, is one of `kinds`, in the
/// export's order, with each table of texts numbered in order of first appearance
/// (`levels[0]` the empty text). A row that requires consent is kept only for a resident
/// who consented.
fn load_kinds(connection: &Connection, snapshot_id: i64, kinds: &[String]) -> Result<(Enrollments, Attributes)> {
    // The kinds are the city's free text, so they have no key ranges of their own: the
    // snapshot's rows are scanned and those of other kinds skipped, compared as bytes.
    let wanted: HashSet<&[u8]> = kinds.iter().map(|kind| kind.as_bytes()).collect();
    let consenting = consenting_rows(connection, snapshot_id)?;
    let (first, last) = snapshot_range(snapshot_id);

    let mut enrollments = Enrollments { levels: vec![String::new()], ..Enrollments::default() };
    let mut kind_numbers: Numbering<u16> = Numbering::new("enrollment kinds", 0);
    let mut level_numbers: Numbering<u16> = Numbering::new("enrollment levels", 0);
    level_numbers.number(b"")?;
    let mut statement = connection.prepare_cached(
        "SELECT row, kind, level, start_day, end_day, consent_required FROM enrollments WHERE key BETWEEN ?1 AND ?2",
    )?;
    let mut rows = statement.query((first, last))?;
    while let Some(row) = rows.next()? {
        let kind = row.get_ref(1)?.as_bytes()?;
        let person: u32 = row.get(0)?;
        if !wanted.contains(kind) || (row.get(5)? && !consenting.contains(&person)) {
            continue;
        }
        let (kind, new) = kind_numbers.number(kind)?;
        enrollments.kinds.extend(new.map(str::to_owned));
        let (level, new) = level_numbers.number(row.get_ref(2)?.as_bytes()?)?;
        enrollments.levels.extend(new.map(str::to_owned));
        enrollments.person.push(person);
        enrollments.kind.push(kind);
        enrollments.level.push(level);
        enrollments.start.push(row.get(3)?);
        enrollments.end.push(row.get(4)?);
    }

    let mut attributes = Attributes::default();
    let mut name_numbers: Numbering<u16> = Numbering::new("attribute names", 0);
    let mut value_numbers: Numbering<u32> = Numbering::new("attribute values", 0);
    let mut statement = connection
        .prepare_cached("SELECT row, name, value, consent_required FROM attributes WHERE key BETWEEN ?1 AND ?2")?;
    let mut rows = statement.query((first, last))?;
    while let Some(row) = rows.next()? {
        let name = row.get_ref(1)?.as_bytes()?;
        let person: u32 = row.get(0)?;
        if !wanted.contains(name) || (row.get(3)? && !consenting.contains(&person)) {
            continue;
        }
        let (name, new) = name_numbers.number(name)?;
        attributes.names.extend(new.map(str::to_owned));
        let (value, new) = value_numbers.number(row.get_ref(2)?.as_bytes()?)?;
        attributes.values.extend(new.map(str::to_owned));
        attributes.person.push(person);
        attributes.name.push(name);
        attributes.value.push(value);
    }
    Ok((enrollments, attributes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{database, resident, store};

    #[test]
    fn a_plugin_gets_only_the_columns_it_declares() {
        let mut connection = database();
        // The last resident's household is listed apart from the rest of it.
        store(
            &mut connection,
            &[
                resident("001", "h1", "1990-01-01", 1),
                resident("002", "h1", "2026-01-01", 3),
                resident("003", "h2", "1950-05-05", 1),
                resident("004", "h1", "1992-02-02", 2),
            ],
        );

        let loaded = load_population(&connection, &[Field::BirthDay, Field::Ward], &[]).unwrap();
        assert_eq!(loaded.resident_ids, ["001", "002", "003", "004"]);
        assert_eq!(loaded.population.size, 4);
        assert_eq!(loaded.population.birth_day[1], Day::parse_iso("2026-01-01").unwrap().0);
        assert_eq!(loaded.population.ward, [0, 1, 1, 1]);
        assert_eq!(loaded.population.wards, ["中央区", "美浜区"]);
        assert!(loaded.population.sex.is_empty() && loaded.population.household.is_empty());

        let households = load_population(&connection, &[Field::Household], &[]).unwrap();
        assert_eq!(households.population.household, [0, 0, 1, 0]);
        assert!(households.population.birth_day.is_empty());
    }

    #[test]
    fn tax_data_reaches_a_plugin_only_for_residents_who_consented() {
        let mut connection = database();
        let transaction = connection.transaction().unwrap();
        let mut writer = SnapshotWriter::new(&transaction, "test").unwrap();
        let first = writer.add_resident(&resident("001", "h1", "1990-01-01", 1)).unwrap();
        let second = writer.add_resident(&resident("002", "h2", "1980-01-01", 1)).unwrap();
        writer.add_tax(first, 2025, 1_000_000, 3).unwrap();
        writer.add_tax(first, 2026, 2_000_000, 3).unwrap();
        writer.add_tax(second, 2026, 500_000, 1).unwrap();
        writer
            .add_event(EventKind::Immunization, second, "vaccine-mr", 1, Day::parse_iso("1981-01-01").unwrap(), None)
            .unwrap();
        let snapshot_id = writer.finish(&transaction, "", &[]).unwrap();
        activate(&transaction, snapshot_id, "test").unwrap();
        transaction.commit().unwrap();
        connection
            .execute_batch(
                "INSERT INTO registrations (resident_id, registered_at, tax_consent_at) VALUES ('001', 'now', 'now'),
                 ('002', 'now', NULL)",
            )
            .unwrap();

        let loaded = load_population(&connection, &[Field::Tax, Field::Immunizations], &[]).unwrap();
        assert_eq!(loaded.population.income, [2_000_000, 0]);
        assert_eq!(loaded.population.taxable, [3, 0]);
        assert_eq!(loaded.population.immunizations.person, [1]);
        assert_eq!(loaded.population.immunizations.codes, ["vaccine-mr"]);
        assert_eq!(loaded.population.immunizations.end, [i32::MAX]);
        assert!(
            load_population(&connection, &[Field::BirthDay], &[]).unwrap().population.immunizations.person.is_empty()
        );
    }

    /// A snapshot of three residents with periods of 国保, 後期高齢 and 要介護 and two
    /// named values; the 要介護 period and one value may be read only with consent.
    fn snapshot_with_kinds(connection: &mut Connection) -> i64 {
        let day = |text| Day::parse_iso(text).unwrap();
        let transaction = connection.transaction().unwrap();
        let mut writer = SnapshotWriter::new(&transaction, "test").unwrap();
        let first = writer.add_resident(&resident("001", "h1", "1950-01-01", 1)).unwrap();
        let second = writer.add_resident(&resident("002", "h2", "1960-01-01", 1)).unwrap();
        let third = writer.add_resident(&resident("003", "h3", "1945-01-01", 1)).unwrap();
        writer.add_enrollment(second, "国保", "", day("2020-04-01"), None, false).unwrap();
        writer.add_enrollment(first, "要介護", "要介護3", day("2025-01-01"), Some(day("2026-12-31")), true).unwrap();
        writer.add_enrollment(third, "後期高齢", "", day("2020-01-01"), None, false).unwrap();
        writer.add_enrollment(first, "国保", "", day("2015-01-01"), None, false).unwrap();
        writer.add_attribute(first, "身体障害者手帳の等級", "2", true).unwrap();
        writer.add_attribute(second, "身体障害者手帳の等級", "4", false).unwrap();
        writer.add_attribute(third, "障害種別", "肢体", false).unwrap();
        let snapshot_id = writer.finish(&transaction, "", &[]).unwrap();
        activate(&transaction, snapshot_id, "test").unwrap();
        transaction.commit().unwrap();
        snapshot_id
    }

    #[test]
    fn a_data_kind_reaches_the_population_only_when_asked() {
        let mut connection = database();
        snapshot_with_kinds(&mut connection);
        let kinds = |asked: &[&str]| {
            let asked: Vec<String> = asked.iter().map(|kind| kind.to_string()).collect();
            load_population(&connection, &[], &asked).unwrap().population
        };

        let nothing = kinds(&[]);
        assert_eq!((nothing.enrollments, nothing.attributes), Default::default());

        let national = kinds(&["国保"]);
        assert_eq!(
            national.enrollments,
            Enrollments {
                person: vec![1, 0],
                kinds: vec!["国保".into()],
                kind: vec![0, 0],
                levels: vec![String::new()],
                level: vec![0, 0],
                start: vec![Day::parse_iso("2020-04-01").unwrap().0, Day::parse_iso("2015-01-01").unwrap().0],
                end: vec![i32::MAX, i32::MAX],
            }
        );
        assert_eq!(national.attributes, Attributes::default());

        let both = kinds(&["障害種別", "後期高齢", "国保", "介護保険"]);
        assert_eq!(both.enrollments.person, [1, 2, 0]);
        assert_eq!(both.enrollments.kinds, ["国保", "後期高齢"]);
        assert_eq!(both.enrollments.kind, [0, 1, 0]);
        assert_eq!(
            both.attributes,
            Attributes {
                person: vec![2],
                names: vec!["障害種別".into()],
                name: vec![0],
                values: vec!["肢体".into()],
                value: vec![0]
            }
        );
    }

    #[test]
    fn a_row_that_requires_consent_reaches_the_population_only_with_the_residents_consent() {
        let mut connection = database();
        snapshot_with_kinds(&mut connection);
        let asked = ["要介護".to_string(), "身体障害者手帳の等級".to_string()];

        let without = load_population(&connection, &[], &asked).unwrap().population;
        assert!(without.enrollments.person.is_empty());
        assert_eq!(without.enrollments.levels, [""]);
        assert_eq!(without.attributes.person, [1]);
        assert_eq!(without.attributes.values, ["4"]);

        connection
            .execute_batch(
                "INSERT INTO registrations (resident_id, registered_at, tax_consent_at) VALUES ('001', 'now', NULL)",
            )
            .unwrap();
        let registered = load_population(&connection, &[], &asked).unwrap().population;
        assert!(registered.enrollments.person.is_empty(), "registered without consent");

        connection.execute_batch("UPDATE registrations SET tax_consent_at = 'now' WHERE resident_id = '001'").unwrap();
        let consented = load_population(&connection, &[], &asked).unwrap().population;
        assert_eq!(consented.enrollments.person, [0]);
        assert_eq!(consented.enrollments.levels, ["", "要介護3"]);
        assert_eq!(consented.enrollments.level, [1]);
        assert_eq!(consented.enrollments.end, [Day::parse_iso("2026-12-31").unwrap().0]);
        assert_eq!(consented.attributes.person, [0, 1]);
        assert_eq!(consented.attributes.values, ["2", "4"]);
        assert_eq!(consented.attributes.value, [0, 1]);
    }

    #[test]
    fn old_generations_are_pruned_but_the_active_one_stays() {
        let mut connection = database();
        let first = store(&mut connection, &[resident("001", "h1", "1990-01-01", 1)]);
        let second = snapshot_with_kinds(&mut connection);
        let third = store(&mut connection, &[resident("003", "h3", "1990-01-01", 1)]);
        activate(&connection, first, "test").unwrap();
        assert_eq!(prune(&mut connection, 2).unwrap(), [second]);
        let kept: Vec<i64> = list(&connection).unwrap().iter().map(|snapshot| snapshot.id).collect();
        assert_eq!(kept, [third, first]);
        assert_eq!(load_population(&connection, &[], &[]).unwrap().resident_ids, ["001"]);
        let orphans: i64 = connection
            .query_row(
                "SELECT (SELECT count(*) FROM residents WHERE snapshot_id = ?1) + (SELECT count(*) FROM enrollments)
                     + (SELECT count(*) FROM attributes)",
                [second],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
    }
}
