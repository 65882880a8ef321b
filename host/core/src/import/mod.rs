//! Imports a municipal export (a directory of CSV files) as a new snapshot generation,
//! all or nothing: every file is validated whole inside one transaction, and the snapshot
//! becomes active in that same transaction only when no problem was found.

mod csv_file;
pub mod mapping;
mod residents;
pub mod values;

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::Connection;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use csv_file::{Column, CsvFile, FileSpec, Problems};
pub use csv_file::{MAX_PROBLEMS, Problem};
pub use mapping::{MAPPING_FILE, Mapping};
use residents::{Layout, OWN_LAYOUT, STANDARD_LAYOUT};

use crate::database::audit;
use crate::snapshot::{self, Departure, EventKind, Resident, SnapshotWriter};
use oshirase_sdk::Day;

/// The import was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[error(
    "import refused, nothing changed:\n{}",
    .problems.iter().map(|problem| problem.to_string()).collect::<Vec<_>>().join("\n")
)]
pub struct ImportRefused {
    pub problems: Vec<Problem>,
}

/// Why an import did not happen: the files are wrong (the caller shows the problems), or
/// something else failed (disk, database).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Refused(#[from] ImportRefused),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for ImportError {
    fn from(error: rusqlite::Error) -> ImportError {
        ImportError::Failed(error.into())
    }
}

pub struct ImportOptions {
    /// Who imports, for the audit log.
    pub actor: String,
    /// What is imported, for staff screens (a directory or an upload's name).
    pub source: String,
    /// How many snapshot generations to keep, the new one included.
    pub keep_generations: usize,
    /// Refuse an export with this share fewer living residents than the active snapshot
    /// (a truncated export looks just like that); `None` accepts any size.
    pub max_shrink_percent: Option<u32>,
    /// The town's mapping file; `None` reads the export's own `import.toml` if it has one,
    /// else the standard's defaults.
    pub mapping: Option<PathBuf>,
}

/// What an accepted import did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ImportReport {
    pub snapshot_id: i64,
    pub residents: u32,
    pub departed: u32,
    /// Rows read from each file present.
    pub files: Vec<(String, u64)>,
    /// Columns that were ignored, data kinds that no active program reads, households
    /// without a head for now, and similar things staff should know.
    pub warnings: Vec<String>,
    /// Generations deleted because more than `keep_generations` were kept.
    pub pruned: Vec<i64>,
}

const fn column(english: &'static str, japanese: &'static str, required: bool) -> Column {
    Column { english, japanese, required }
}

static TAX: FileSpec = FileSpec {
    name: "tax.csv",
    columns: &[
        column("resident_id", "宛名番号", true),
        column("fiscal_year", "課税年度", true),
        column("total_income", "合計所得金額", true),
        column("taxable", "課税区分", true),
    ],
    reads_some_columns: false,
};

/// Periods in which a resident belongs to something, of kinds the city names (国保,
/// 後期高齢, 障害者手帳, 要介護, 生活保護 …); programs ask for kinds by these names.
static ENROLLMENTS: FileSpec = FileSpec {
    name: "enrollments.csv",
    columns: &[
        column("resident_id", "宛名番号", true),
        column("kind", "種別", true),
        column("level", "等級", false),
        column("start", "開始日", true),
        column("end", "終了日", false),
        column("consent_required", "要同意", false),
    ],
    reads_some_columns: false,
};

/// Named values about residents (身体障害者手帳の等級 = 2); programs ask for them by name.
static ATTRIBUTES: FileSpec = FileSpec {
    name: "attributes.csv",
    columns: &[
        column("resident_id", "宛名番号", true),
        column("name", "項目", true),
        column("value", "値", true),
        column("consent_required", "要同意", false),
    ],
    reads_some_columns: false,
};

/// What `consent_required` may hold, for problems.
const CONSENT_VALUES: &str = "0 or 1 (1: only with the resident's consent)";

/// A file of dated records and which of its columns feed an event's code, count, start
/// and end.
struct EventFile {
    spec: FileSpec,
    kind: EventKind,
    code: Option<&'static str>,
    /// The count column and whether it is required; 0 when absent.
    count: Option<(&'static str, bool)>,
    start: &'static str,
    end: Option<(&'static str, bool)>,
    /// The 期 column, when the file may count doses within a 期 instead.
    stage: Option<&'static str>,
}

static EVENT_FILES: [EventFile; 4] = [
    EventFile {
        spec: FileSpec {
            name: "receipts.csv",
            columns: &[
                column("resident_id", "宛名番号", true),
                column("program_code", "制度コード", true),
                column("start_date", "開始日", true),
                column("end_date", "終了日", false),
            ],
            reads_some_columns: false,
        },
        kind: EventKind::Receipt,
        code: Some("program_code"),
        count: None,
        start: "start_date",
        end: Some(("end_date", false)),
        stage: None,
    },
    EventFile {
        spec: FileSpec {
            name: "pregnancies.csv",
            columns: &[
                column("resident_id", "宛名番号", true),
                column("notified_on", "交付日", true),
                column("due_date", "出産予定日", true),
            ],
            reads_some_columns: false,
        },
        kind: EventKind::Pregnancy,
        code: None,
        count: None,
        start: "notified_on",
        end: Some(("due_date", true)),
        stage: None,
    },
    EventFile {
        spec: FileSpec {
            name: "immunizations.csv",
            columns: &[
                column("resident_id", "宛名番号", true),
                column("vaccine", "ワクチン", true),
                column("dose", "回数", true),
                column("date", "接種日", true),
                // 1期初回, 1期追加, 2期 …: 回数 is then the dose within the 期.
                column("stage", "期", false),
            ],
            reads_some_columns: false,
        },
        kind: EventKind::Immunization,
        code: Some("vaccine"),
        count: Some(("dose", true)),
        start: "date",
        end: None,
        stage: Some("stage"),
    },
    EventFile {
        spec: FileSpec {
            name: "checkups.csv",
            columns: &[
                column("resident_id", "宛名番号", true),
                column("kind", "種別", true),
                column("date", "受診日", true),
                column("count", "回数", false),
            ],
            reads_some_columns: false,
        },
        kind: EventKind::Checkup,
        code: Some("kind"),
        // Which of several visits (the 1回目 or 2回目 infant checkup), when it matters.
        count: Some(("count", false)),
        start: "date",
        end: None,
        stage: None,
    },
];

/// Every file an export may hold: the resident file in our layout or the standard's is
/// required, the mapping file is read when no other is named.
pub const EXPORT_FILES: [&str; 10] = [
    "residents.csv",
    "resident_table.csv",
    MAPPING_FILE,
    "tax.csv",
    "receipts.csv",
    "pregnancies.csv",
    "immunizations.csv",
    "checkups.csv",
    "enrollments.csv",
    "attributes.csv",
];

/// By default an export with this share fewer living residents than the active snapshot
/// is refused as probably truncated.
pub const DEFAULT_MAX_SHRINK_PERCENT: u32 = 10;

/// The code a pregnancy record carries, since its file has no code column.
pub(crate) const PREGNANCY_CODE: &str = "pregnancy";

/// Where a resident id of the resident file leads: the row of a living resident, or
/// nothing for one who moved out, died or never lived here; and the line it was first
/// seen on.
struct Known {
    row: Option<u32>,
    line: u64,
}

/// The resident file's ids, which every other file's rows must name.
struct KnownResidents {
    file: &'static str,
    ids: HashMap<Box<str>, Known>,
}

/// Reads every file in `directory` and, if all are valid, stores them as the new active
/// snapshot. On any problem nothing changes and every problem found (up to
/// [`MAX_PROBLEMS`]) is returned.
///
/// Two threads share the work: one reads and validates the files, the other (the caller's)
/// writes the rows into SQLite as they come, inside one transaction that is committed
/// only when the reader found nothing wrong.
pub fn import_directory(
    connection: &mut Connection,
    directory: &Path,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    if !directory.is_dir() {
        return Err(anyhow::anyhow!("{} is not a directory", directory.display()).into());
    }
    let active_before = snapshot::active_resident_count(connection)?;
    // A larger page cache while the snapshot is written keeps the indexes' pages from
    // being spilled to the log and written again.
    let cache_pages: i64 = connection.query_row("PRAGMA cache_size", [], |row| row.get(0))?;
    connection.pragma_update(None, "cache_size", IMPORT_CACHE_KIB)?;
    let result = import_in_transaction(connection, directory, options, active_before);
    connection.pragma_update(None, "cache_size", cache_pages)?;
    let report = result?;
    for warning in &report.warnings {
        tracing::warn!(%warning, "import");
    }
    let pruned = snapshot::prune(connection, options.keep_generations.max(1))?;
    Ok(ImportReport { pruned, ..report })
}

/// The page cache during an import, as SQLite's negative size in KiB.
const IMPORT_CACHE_KIB: i64 = -64 * 1024;
/// Records per message from the reading thread to the writing thread.
const BATCH: usize = 4096;

fn import_in_transaction(
    connection: &mut Connection,
    directory: &Path,
    options: &ImportOptions,
    active_before: u32,
) -> Result<ImportReport, ImportError> {
    let transaction = connection.transaction()?;
    let mut writer = SnapshotWriter::new(&transaction, &options.source)?;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<Record>>(8);
    let (read, written) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let sink = Sink { sender, batch: Vec::with_capacity(BATCH), residents: 0, open: true };
            read_export(directory, options.mapping.as_deref(), sink)
        });
        // The receiver is dropped when writing stops, so a failed write stops the reader.
        let written = receiver.into_iter().flatten().try_for_each(|record| record.write(&mut writer));
        (reader.join(), written)
    });
    let mut read = read.map_err(|_| anyhow::anyhow!("the thread reading the export panicked"))??;
    written?;
    let residents = writer.resident_count();
    if residents == 0 && read.problems.is_empty() {
        let file = read.residents_file;
        read.problems.push(file, 0, 0, format!("there are no living residents in {file}"));
    }
    if let Some(percent) = options.max_shrink_percent {
        let floor = (u64::from(active_before) * u64::from(100 - percent.min(100))).div_ceil(100);
        if read.problems.is_empty() && u64::from(residents) < floor {
            let message = format!(
                "{residents} living residents, more than {percent} % fewer than the active snapshot's {active_before}; \
                 if the export is complete, import it allowing the shrink"
            );
            read.problems.push(read.residents_file, 0, 0, message);
        }
    }
    if !read.problems.is_empty() {
        // Dropping the transaction rolls back everything written.
        return Err(ImportRefused { problems: read.problems.list }.into());
    }
    read.warnings.extend(unread_kinds(&transaction, &read.kinds)?);
    let summary = read.files.iter().map(|(name, rows)| format!("{name} {rows}")).collect::<Vec<_>>().join(", ");
    let snapshot_id = writer.finish(&transaction, &summary, &read.warnings)?;
    snapshot::activate(&transaction, snapshot_id, &options.actor)?;
    audit(
        &transaction,
        &options.actor,
        "import",
        &format!("snapshot {snapshot_id}"),
        &format!("{summary} from {}", options.source),
    )?;
    transaction.commit().context("cannot commit the import")?;
    Ok(ImportReport {
        snapshot_id,
        residents,
        departed: read.departed,
        files: read.files,
        warnings: read.warnings,
        pruned: Vec::new(),
    })
}

/// A warning for each data kind of the export that no active program's manifest declares:
/// the import goes ahead, but staff should know that a kind is misspelt or that the
/// program reading it is not active.
fn unread_kinds(connection: &Connection, kinds: &[(&'static str, String)]) -> anyhow::Result<Vec<String>> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    /// The part of a stored manifest this needs; a manifest of contract 1.0 has no kinds.
    #[derive(serde::Deserialize)]
    struct DeclaredKinds {
        #[serde(default)]
        kinds: Vec<String>,
    }
    let mut declared: HashSet<String> = HashSet::default();
    let mut statement = connection
        .prepare("SELECT p.code, v.manifest FROM programs p JOIN plugin_versions v ON v.id = p.active_version")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let (program, manifest): (String, String) = (row.get(0)?, row.get(1)?);
        let manifest: DeclaredKinds =
            serde_json::from_str(&manifest).with_context(|| format!("stored manifest of {program} is unreadable"))?;
        declared.extend(manifest.kinds);
    }
    Ok(kinds
        .iter()
        .filter(|(_, kind)| !declared.contains(kind))
        .map(|(file, kind)| {
            let what = if *file == ATTRIBUTES.name { "name" } else { "kind" };
            format!("{file}: {what} {kind} is read by no active program")
        })
        .collect())
}

/// What the reading thread hands the writing thread, in file order.
enum Record {
    /// A living resident and the row the reader numbered them with.
    Resident(u32, Resident),
    Departed(String, Departure),
    Tax {
        row: u32,
        fiscal_year: i32,
        income: i64,
        taxable: u8,
    },
    Event {
        kind: EventKind,
        row: u32,
        code: String,
        count: u8,
        start: Day,
        end: Option<Day>,
    },
    Enrollment {
        row: u32,
        kind: String,
        level: String,
        start: Day,
        end: Option<Day>,
        consent_required: bool,
    },
    Attribute {
        row: u32,
        name: String,
        value: String,
        consent_required: bool,
    },
}

impl Record {
    fn write(self, writer: &mut SnapshotWriter<'_>) -> anyhow::Result<()> {
        match self {
            Record::Resident(row, resident) => {
                let stored = writer.add_resident(&resident)?;
                anyhow::ensure!(
                    stored == row,
                    "resident {} was numbered {row} but stored as {stored}",
                    resident.resident_id
                );
            }
            Record::Departed(resident_id, departure) => writer.add_departed(&resident_id, departure)?,
            Record::Tax { row, fiscal_year, income, taxable } => writer.add_tax(row, fiscal_year, income, taxable)?,
            Record::Event { kind, row, code, count, start, end } => {
                writer.add_event(kind, row, &code, count, start, end)?
            }
            Record::Enrollment { row, kind, level, start, end, consent_required } => {
                writer.add_enrollment(row, &kind, &level, start, end, consent_required)?
            }
            Record::Attribute { row, name, value, consent_required } => {
                writer.add_attribute(row, &name, &value, consent_required)?
            }
        }
        Ok(())
    }
}

/// The reading thread's end of the channel: batches records and numbers living residents
/// in the order the writer will store them.
struct Sink {
    sender: std::sync::mpsc::SyncSender<Vec<Record>>,
    batch: Vec<Record>,
    residents: u32,
    /// False once the writer has stopped; nothing more is sent.
    open: bool,
}

impl Sink {
    /// Queues a living resident and returns their row.
    fn resident(&mut self, resident: Resident) -> u32 {
        let row = self.residents;
        self.residents += 1;
        self.push(Record::Resident(row, resident));
        row
    }

    fn push(&mut self, record: Record) {
        self.batch.push(record);
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.open && !self.batch.is_empty() {
            self.open = self.sender.send(std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH))).is_ok();
        }
        self.batch.clear();
    }
}

/// What the reading thread found.
struct ReadExport {
    /// The resident file's name, for problems about the export as a whole.
    residents_file: &'static str,
    problems: Problems,
    warnings: Vec<String>,
    files: Vec<(String, u64)>,
    departed: u32,
    /// The data kinds of `enrollments.csv` and names of `attributes.csv`, each with its
    /// file, in order of first appearance.
    kinds: Vec<(&'static str, String)>,
}

/// Reads and validates every file of the export, sending the rows to store into `sink`
/// while no problem has been found. `mapping` names the town's mapping file, if not the
/// export's own.
fn read_export(directory: &Path, mapping: Option<&Path>, mut sink: Sink) -> anyhow::Result<ReadExport> {
    let mut problems = Problems::default();
    let mut warnings = Vec::new();
    let mut files = Vec::new();
    let (own, standard) = (directory.join(OWN_LAYOUT.name).exists(), directory.join(STANDARD_LAYOUT.name).exists());
    let spec = if standard && !own { &STANDARD_LAYOUT } else { &OWN_LAYOUT };
    let refused = |problems: Problems, warnings| ReadExport {
        residents_file: spec.name,
        problems,
        warnings,
        files: Vec::new(),
        departed: 0,
        kinds: Vec::new(),
    };
    if own && standard {
        let message = format!(
            "the export holds both {} and the standard layout's {}; keep the one the town exports",
            OWN_LAYOUT.name, STANDARD_LAYOUT.name
        );
        problems.push(STANDARD_LAYOUT.name, 0, 0, message);
        return Ok(refused(problems, warnings));
    }
    let mapping_path = mapping.map(Path::to_path_buf).or_else(|| {
        let own_mapping = directory.join(MAPPING_FILE);
        own_mapping.exists().then_some(own_mapping)
    });
    let mapping = match mapping_path {
        Some(path) => match Mapping::read(&path)? {
            Ok(mapping) => mapping,
            Err(problem) => {
                let file = path.file_name().map_or(MAPPING_FILE.into(), |name| name.to_string_lossy());
                problems.push(&file, problem.line, problem.column, problem.message);
                return Ok(refused(problems, warnings));
            }
        },
        None => Mapping::default(),
    };
    let renamed = &mapping.renamed_columns;
    let Some(mut residents_file) = CsvFile::open(directory, spec, renamed, &mut problems, &mut warnings)? else {
        if problems.is_empty() {
            let message = format!(
                "{} (or the standard layout's {}) is missing from the export; it is required",
                OWN_LAYOUT.name, STANDARD_LAYOUT.name
            );
            problems.push(OWN_LAYOUT.name, 0, 0, message);
        }
        return Ok(refused(problems, warnings));
    };
    let layout = if standard { Layout::standard(spec, &mapping) } else { Layout::own(spec) };
    let read =
        residents::read_residents(&mut residents_file, &layout, &mapping, &mut sink, &mut problems, &mut warnings);
    files.push((spec.name.to_owned(), read.rows));
    let mut kinds: Vec<(&'static str, String)> =
        read.kinds.iter().map(|kind| (spec.name, (*kind).to_owned())).collect();
    let known = KnownResidents { file: spec.name, ids: read.known };
    if let Some(mut file) = CsvFile::open(directory, &TAX, renamed, &mut problems, &mut warnings)? {
        files.push((TAX.name.to_owned(), read_tax(&mut file, &known, &mut sink, &mut problems, &mut warnings)));
    }
    for events in &EVENT_FILES {
        if let Some(mut file) = CsvFile::open(directory, &events.spec, renamed, &mut problems, &mut warnings)? {
            let rows = read_events(&mut file, events, &known, &mapping, &mut sink, &mut problems);
            files.push((events.spec.name.to_owned(), rows));
        }
    }
    if let Some(mut file) = CsvFile::open(directory, &ENROLLMENTS, renamed, &mut problems, &mut warnings)? {
        let rows = read_enrollments(&mut file, &known, &mut kinds, &mut sink, &mut problems);
        files.push((ENROLLMENTS.name.to_owned(), rows));
    }
    if let Some(mut file) = CsvFile::open(directory, &ATTRIBUTES, renamed, &mut problems, &mut warnings)? {
        let rows = read_attributes(&mut file, &known, &mut kinds, &mut sink, &mut problems);
        files.push((ATTRIBUTES.name.to_owned(), rows));
    }
    sink.flush();
    Ok(ReadExport { residents_file: spec.name, problems, warnings, files, departed: read.departed, kinds })
}

/// The row of the living resident a record refers to: `Ok(None)` for a resident who moved
/// out or died (their records are not kept), a problem for an id not in `residents.csv`.
fn resident_row(
    row: &mut csv_file::Row<'_>,
    column: csv_file::ColumnId,
    known: &KnownResidents,
) -> Option<Option<u32>> {
    let resident_id = row.required(column)?;
    match known.ids.get(resident_id) {
        Some(entry) => Some(entry.row),
        None => {
            row.problem(Some(column), format!("resident_id {resident_id} is not in {}", known.file));
            None
        }
    }
}

/// Reads `tax.csv`. A row of 未申告 is not stored: with no tax record a program treats the
/// resident as one whose tax it does not know, never as not taxed; staff are told.
fn read_tax(
    file: &mut CsvFile,
    known: &KnownResidents,
    sink: &mut Sink,
    problems: &mut Problems,
    warnings: &mut Vec<String>,
) -> u64 {
    let [id_column, year_column, income_column, taxable_column] =
        ["resident_id", "fiscal_year", "total_income", "taxable"].map(|name| file.spec.column(name));
    let mut undeclared = Vec::new();
    let mut rows = 0;
    while let Some(mut row) = file.next_row(problems) {
        rows += 1;
        let resident = resident_row(&mut row, id_column, known);
        let fiscal_year = row.value(year_column, values::fiscal_year, "a fiscal year (2024, 令和6年度, R6)");
        let taxable = row.value(taxable_column, values::taxable, "one of 課税, 非課税, 均等割のみ, 未申告");
        if taxable == Some(values::UNDECLARED) {
            undeclared.push(row.line);
            continue;
        }
        let income = row.value(income_column, values::yen, "an amount of yen");
        if let (Some(Some(resident)), Some(fiscal_year), Some(income), Some(taxable), true) =
            (resident, fiscal_year, income, taxable, row.storable())
        {
            sink.push(Record::Tax { row: resident, fiscal_year, income, taxable });
        }
    }
    if !undeclared.is_empty() {
        warnings.push(format!(
            "{}: {} rows are 未申告 (lines {}); their tax is unknown, so no program treats them as taxed or as not taxed",
            file.spec.name,
            undeclared.len(),
            residents::lines(&undeclared)
        ));
    }
    rows
}

fn read_events(
    file: &mut CsvFile,
    events: &EventFile,
    known: &KnownResidents,
    mapping: &Mapping,
    sink: &mut Sink,
    problems: &mut Problems,
) -> u64 {
    let spec = file.spec;
    let id_column = spec.column("resident_id");
    let code_column = events.code.map(|name| spec.column(name));
    let count_column = events.count.map(|(name, required)| (spec.column(name), required));
    let start_column = spec.column(events.start);
    let end_column = events.end.map(|(name, required)| (spec.column(name), required));
    let stage_column = events.stage.map(|name| spec.column(name));
    let mut rows = 0;
    while let Some(mut row) = file.next_row(problems) {
        rows += 1;
        let resident = resident_row(&mut row, id_column, known);
        let code = match code_column {
            Some(column) => row.required(column),
            None => Some(PREGNANCY_CODE),
        };
        let stage = stage_column.and_then(|column| row.text(column)).filter(|stage| !stage.is_empty());
        let count = match (count_column, stage) {
            (Some((column, _)), Some(stage)) => {
                let within = row.optional(column, values::dose, "a number from 1 to 99").unwrap_or(1);
                code.and_then(|code| dose_of_stage(&mut row, stage_column, mapping, code, stage, within))
            }
            (count_column, _) => match count_column {
                Some((column, true)) => row.value(column, values::dose, "a number from 1 to 99"),
                Some((column, false)) => Some(row.optional(column, values::dose, "a number from 1 to 99").unwrap_or(0)),
                None => Some(0),
            },
        };
        let start = row.value(start_column, values::date, "a date");
        let end = match end_column {
            Some((column, true)) => row.value(column, values::date, "a date").map(Some),
            Some((column, false)) => Some(row.optional(column, values::date, "a date")),
            None => Some(start),
        };
        if let (Some(start), Some(Some(end)), Some((column, _)), Some((end_name, _))) =
            (start, end, end_column, events.end)
            && end < start
        {
            row.problem(Some(column), format!("{end_name} {end} is before {} {start}", events.start));
        }
        if let (Some(Some(resident)), Some(code), Some(count), Some(start), Some(end), true) =
            (resident, code, count, start, end, row.storable())
        {
            sink.push(Record::Event { kind: events.kind, row: resident, code: code.to_owned(), count, start, end });
        }
    }
    rows
}

/// The dose a record counted by 期 is: the 期's first dose (`Mapping::immunization_stages`)
/// plus the doses before it within the 期; a 期 the table does not have is a problem.
fn dose_of_stage(
    row: &mut csv_file::Row<'_>,
    stage_column: Option<csv_file::ColumnId>,
    mapping: &Mapping,
    vaccine: &str,
    stage: &str,
    within: u8,
) -> Option<u8> {
    let normalized = values::ascii_forms(stage);
    match mapping.immunization_stages.get(&(vaccine.to_owned(), normalized.into_owned())) {
        Some(first) => first.checked_add(within - 1).filter(|dose| *dose < 100),
        None => {
            let mut known: Vec<&str> = mapping
                .immunization_stages
                .keys()
                .filter(|(code, _)| code == vaccine)
                .map(|(_, stage)| stage.as_str())
                .collect();
            known.sort_unstable();
            let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
            row.problem(
                stage_column,
                format!(
                    "期 {stage:?} of {vaccine} is not in the 期 table ({known}); name the dose it begins at in the \
                     mapping's [immunization_stages.{vaccine:?}]"
                ),
            );
            None
        }
    }
}

/// Adds `kind` of `file` to `kinds` unless it is in `seen` already.
fn saw_kind(file: &'static str, kind: &str, seen: &mut HashSet<Box<str>>, kinds: &mut Vec<(&'static str, String)>) {
    if !seen.contains(kind) {
        seen.insert(kind.into());
        kinds.push((file, kind.to_owned()));
    }
}

/// A consent cell, which may be empty or absent: `false` then, and for a bad value (which
/// the row records as a problem).
fn consent_required(row: &mut csv_file::Row<'_>, column: csv_file::ColumnId) -> bool {
    row.optional(column, values::flag, CONSENT_VALUES).unwrap_or(false)
}

fn read_enrollments(
    file: &mut CsvFile,
    known: &KnownResidents,
    kinds: &mut Vec<(&'static str, String)>,
    sink: &mut Sink,
    problems: &mut Problems,
) -> u64 {
    let [id_column, kind_column, level_column, start_column, end_column, consent_column] =
        ["resident_id", "kind", "level", "start", "end", "consent_required"].map(|name| file.spec.column(name));
    let mut seen = HashSet::default();
    let mut rows = 0;
    while let Some(mut row) = file.next_row(problems) {
        rows += 1;
        let resident = resident_row(&mut row, id_column, known);
        let kind = row.required(kind_column);
        let level = row.text(level_column).unwrap_or("");
        let start = row.value(start_column, values::date, "a date");
        let end = row.optional(end_column, values::date, "a date");
        let consent_required = consent_required(&mut row, consent_column);
        if let (Some(start), Some(end)) = (start, end)
            && end < start
        {
            row.problem(Some(end_column), format!("end {end} is before start {start}"));
        }
        if let Some(kind) = kind {
            saw_kind(ENROLLMENTS.name, kind, &mut seen, kinds);
        }
        if let (Some(Some(resident)), Some(kind), Some(start), true) = (resident, kind, start, row.storable()) {
            sink.push(Record::Enrollment {
                row: resident,
                kind: kind.to_owned(),
                level: level.to_owned(),
                start,
                end,
                consent_required,
            });
        }
    }
    rows
}

fn read_attributes(
    file: &mut CsvFile,
    known: &KnownResidents,
    kinds: &mut Vec<(&'static str, String)>,
    sink: &mut Sink,
    problems: &mut Problems,
) -> u64 {
    let [id_column, name_column, value_column, consent_column] =
        ["resident_id", "name", "value", "consent_required"].map(|name| file.spec.column(name));
    let mut seen = HashSet::default();
    let mut rows = 0;
    while let Some(mut row) = file.next_row(problems) {
        rows += 1;
        let resident = resident_row(&mut row, id_column, known);
        let name = row.required(name_column);
        let value = row.required(value_column);
        let consent_required = consent_required(&mut row, consent_column);
        if let Some(name) = name {
            saw_kind(ATTRIBUTES.name, name, &mut seen, kinds);
        }
        if let (Some(Some(resident)), Some(name), Some(value), true) = (resident, name, value, row.storable()) {
            sink.push(Record::Attribute {
                row: resident,
                name: name.to_owned(),
                value: value.to_owned(),
                consent_required,
            });
        }
    }
    rows
}

#[cfg(test)]
mod standard_tests;
#[cfg(test)]
mod tests;
