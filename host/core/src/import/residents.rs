//! The resident file, in our own layout (`residents.csv`) or in the 住民記録 standard's
//! (`resident_table.csv`, as 標準準拠システム export it): each row is read into one shape,
//! then checked, numbered and sent to the writer the same way whichever the layout.

use std::borrow::Cow;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use super::csv_file::{ColumnId, CsvFile, FileSpec, Problems, Row};
use super::mapping::{Mapping, RelationshipCode, Standing, code_key, describe_gaiji};
use super::{Known, Record, Sink, column, values};
use crate::snapshot::Resident;
use oshirase_sdk::Day;

pub static OWN_LAYOUT: FileSpec = FileSpec {
    name: "residents.csv",
    columns: &[
        column("resident_id", "宛名番号", true),
        column("household_id", "世帯番号", true),
        column("name", "氏名", true),
        column("name_kana", "氏名カナ", false),
        column("birth_date", "生年月日", true),
        column("birth_date_inexact", "生年月日不詳", false),
        column("sex", "性別", true),
        column("relationship", "続柄", true),
        column("address", "住所", false),
        column("postal_code", "郵便番号", false),
        column("ward", "行政区", false),
        column("resident_since", "住民となった日", false),
        column("status", "住民状態", false),
    ],
    reads_some_columns: false,
};

/// The columns of the standard's resident record that oshirase reads, by the standard's
/// names (a town's mapping can rename them). The file has about 120 more.
pub static STANDARD_LAYOUT: FileSpec = FileSpec {
    name: "resident_table.csv",
    columns: &[
        column("resident_id", "宛名番号", true),
        column("latest", "最新フラグ", true),
        column("deleted", "削除フラグ", false),
        column("household_id", "世帯番号", true),
        column("status", "住民状態", true),
        column("name", "氏名", true),
        column("name_kana", "氏名_フリガナ", false),
        column("sex", "性別", true),
        column("birth_date", "生年月日", true),
        column("birth_date_inexact", "生年月日_不詳フラグ", false),
        column("relationship", "続柄コード1", true),
        column("relationship_label", "続柄表記", false),
        column("prefecture", "住所_都道府県", false),
        column("municipality", "住所_市区郡町村名", false),
        column("town", "住所_町字", false),
        column("block", "住所_番地号表記", false),
        column("building", "住所_方書", false),
        column("postal_code", "住所_郵便番号", false),
        column("resident_since", "住民となった年月日", false),
        column("district", "地区管理コード1", false),
        column("national_health_insurance", "国保資格有無", false),
        column("national_health_insurance_since", "国保資格取得年月日", false),
        column("late_elderly_insurance", "後期高齢資格有無", false),
        column("late_elderly_insurance_since", "後期高齢資格取得年月日", false),
        column("long_term_care_insurance", "介護資格有無", false),
        column("long_term_care_insurance_since", "介護資格取得年月日", false),
        column("child_allowance", "児童手当資格区分", false),
        column("child_allowance_since", "児童手当受給開始年月", false),
    ],
    reads_some_columns: true,
};

/// The standard's 資格 columns that become data kinds a 1.1 program can declare: the kind,
/// the column saying whether it is held, and the one saying since when.
const QUALIFICATIONS: [(&str, &str, &str); 3] = [
    ("国保", "national_health_insurance", "national_health_insurance_since"),
    ("後期高齢", "late_elderly_insurance", "late_elderly_insurance_since"),
    ("介護", "long_term_care_insurance", "long_term_care_insurance_since"),
];

/// The kind 児童手当資格区分 becomes; its 区分 is the enrollment's level.
const CHILD_ALLOWANCE: &str = "児童手当";

/// The data kinds a standard-layout export may give, for the warning about kinds no
/// program reads.
pub const STANDARD_KINDS: [&str; 4] = [QUALIFICATIONS[0].0, QUALIFICATIONS[1].0, QUALIFICATIONS[2].0, CHILD_ALLOWANCE];

/// A data kind a resident holds now, from the standard's 資格 columns.
struct Qualification {
    kind: &'static str,
    level: String,
    /// `None` when the export says it is held but not since when.
    since: Option<Day>,
}

/// One row of the resident file, whichever the layout. A cell that was wrong is `None`
/// (the row has recorded the problem).
struct ResidentRow<'a> {
    resident_id: &'a str,
    /// The standard layout keeps a row for each past state of a resident (個人履歴番号);
    /// only the one marked 最新 is read further.
    current: bool,
    household_id: Option<&'a str>,
    name: Option<String>,
    name_kana: String,
    birth_day: Option<Day>,
    birth_day_inexact: bool,
    sex: Option<u8>,
    relationship: Option<RelationshipCode>,
    address: String,
    postal_code: String,
    ward: String,
    resident_since: Option<Day>,
    standing: Option<Standing>,
    qualifications: Vec<Qualification>,
}

/// Which layout the resident file is in, with its columns resolved.
pub enum Layout<'m> {
    Own(OwnColumns),
    Standard(StandardColumns, &'m Mapping),
}

pub struct OwnColumns {
    resident_id: ColumnId,
    household_id: ColumnId,
    name: ColumnId,
    name_kana: ColumnId,
    birth_date: ColumnId,
    birth_date_inexact: ColumnId,
    sex: ColumnId,
    relationship: ColumnId,
    address: ColumnId,
    postal_code: ColumnId,
    ward: ColumnId,
    resident_since: ColumnId,
    status: ColumnId,
}

pub struct StandardColumns {
    resident_id: ColumnId,
    latest: ColumnId,
    deleted: ColumnId,
    household_id: ColumnId,
    status: ColumnId,
    name: ColumnId,
    name_kana: ColumnId,
    sex: ColumnId,
    birth_date: ColumnId,
    birth_date_inexact: ColumnId,
    relationship: ColumnId,
    relationship_label: ColumnId,
    address: [ColumnId; 5],
    postal_code: ColumnId,
    resident_since: ColumnId,
    district: ColumnId,
    qualifications: [(&'static str, ColumnId, ColumnId); 3],
    child_allowance: (ColumnId, ColumnId),
}

/// What staff are told about the resident file once it is read.
#[derive(Default)]
struct Notes {
    /// 地区管理コード that the mapping does not name.
    unnamed_districts: HashSet<String>,
    /// Lines of 同居人 and 縁故者.
    lodgers: Vec<u64>,
    /// Lines of 資格 held with no date.
    undated_qualifications: Vec<(u64, &'static str)>,
    /// Lines of residents whose birth day is not exact.
    inexact_birth_days: Vec<u64>,
}

/// What reading the resident file found.
pub struct ResidentsRead {
    pub known: HashMap<Box<str>, Known>,
    pub departed: u32,
    pub rows: u64,
    /// The data kinds of the standard's 資格 columns that some resident holds.
    pub kinds: Vec<&'static str>,
}

impl<'m> Layout<'m> {
    pub fn own(spec: &FileSpec) -> Layout<'m> {
        let column = |name| spec.column(name);
        Layout::Own(OwnColumns {
            resident_id: column("resident_id"),
            household_id: column("household_id"),
            name: column("name"),
            name_kana: column("name_kana"),
            birth_date: column("birth_date"),
            birth_date_inexact: column("birth_date_inexact"),
            sex: column("sex"),
            relationship: column("relationship"),
            address: column("address"),
            postal_code: column("postal_code"),
            ward: column("ward"),
            resident_since: column("resident_since"),
            status: column("status"),
        })
    }

    pub fn standard(spec: &FileSpec, mapping: &'m Mapping) -> Layout<'m> {
        let column = |name| spec.column(name);
        Layout::Standard(
            StandardColumns {
                resident_id: column("resident_id"),
                latest: column("latest"),
                deleted: column("deleted"),
                household_id: column("household_id"),
                status: column("status"),
                name: column("name"),
                name_kana: column("name_kana"),
                sex: column("sex"),
                birth_date: column("birth_date"),
                birth_date_inexact: column("birth_date_inexact"),
                relationship: column("relationship"),
                relationship_label: column("relationship_label"),
                address: ["prefecture", "municipality", "town", "block", "building"].map(column),
                postal_code: column("postal_code"),
                resident_since: column("resident_since"),
                district: column("district"),
                qualifications: QUALIFICATIONS.map(|(kind, held, since)| (kind, column(held), column(since))),
                child_allowance: (column("child_allowance"), column("child_allowance_since")),
            },
            mapping,
        )
    }

    fn resident_id_column(&self) -> ColumnId {
        match self {
            Layout::Own(columns) => columns.resident_id,
            Layout::Standard(columns, _) => columns.resident_id,
        }
    }

    fn read<'a>(&self, row: &mut Row<'a>, gaiji: &Mapping, notes: &mut Notes) -> Option<ResidentRow<'a>> {
        let resident = match self {
            Layout::Own(columns) => own_row(row, columns, gaiji),
            Layout::Standard(columns, mapping) => standard_row(row, columns, mapping, notes),
        }?;
        note_row(row.line, &resident, notes);
        Some(resident)
    }
}

/// A text cell with its 外字 replaced by the mapping's characters; a 外字 without one is a
/// problem that names it, since the text would otherwise be stored garbled.
fn text_with_gaiji(row: &mut Row<'_>, column: ColumnId, mapping: &Mapping, required: bool) -> Option<String> {
    let text = if required { row.required(column)? } else { row.text(column).unwrap_or("") };
    match mapping.resolve_gaiji(text) {
        Ok(Cow::Borrowed(text)) => Some(text.to_owned()),
        Ok(Cow::Owned(text)) => Some(text),
        Err(unmapped) => {
            let named: Vec<String> = unmapped.into_iter().map(describe_gaiji).collect();
            row.problem(
                Some(column),
                format!(
                    "{} has no character in the mapping's [gaiji] table; add it so that nothing is stored garbled",
                    named.join(", ")
                ),
            );
            None
        }
    }
}

fn own_row<'a>(row: &mut Row<'a>, columns: &OwnColumns, mapping: &Mapping) -> Option<ResidentRow<'a>> {
    let resident_id = row.required(columns.resident_id);
    let household_id = row.required(columns.household_id);
    let name = text_with_gaiji(row, columns.name, mapping, true);
    let name_kana = text_with_gaiji(row, columns.name_kana, mapping, false).unwrap_or_default();
    let birth_day = row.value(columns.birth_date, values::date, "a date");
    let birth_day_inexact = row
        .optional(columns.birth_date_inexact, values::flag, "0 or 1 (1: the birth date is not exact)")
        .unwrap_or(false);
    let sex = row.value(columns.sex, values::sex, "one of 1, 2, 男, 女, male, female");
    let relationship =
        row.value(columns.relationship, values::relationship, "a 続柄 (世帯主, 妻, 夫, 子, 父, 母, 同居人, その他 …)");
    let address = text_with_gaiji(row, columns.address, mapping, false).unwrap_or_default();
    let postal_code =
        row.optional(columns.postal_code, values::postal_code, "a postal code of 7 digits").unwrap_or_default();
    let ward = row.text(columns.ward).unwrap_or("").to_owned();
    let resident_since = row.optional(columns.resident_since, values::date, "a date");
    // An empty or absent status is a resident; a wrong one has made the row a problem.
    let standing = row
        .optional(columns.status, values::status, "one of 住民, 転出, 死亡, resident, moved_out, deceased")
        .or(Some(Standing::Resident));
    Some(ResidentRow {
        resident_id: resident_id?,
        current: true,
        household_id,
        name,
        name_kana,
        birth_day,
        birth_day_inexact,
        sex,
        relationship,
        address,
        postal_code,
        ward,
        resident_since,
        standing,
        qualifications: Vec::new(),
    })
}

fn standard_row<'a>(
    row: &mut Row<'a>,
    columns: &StandardColumns,
    mapping: &Mapping,
    notes: &mut Notes,
) -> Option<ResidentRow<'a>> {
    let resident_id = row.required(columns.resident_id)?;
    let latest = row.value(columns.latest, values::flag, "0 or 1 (1: the current row)");
    let deleted = row.optional(columns.deleted, values::flag, "0 or 1 (1: deleted)").unwrap_or(false);
    if latest != Some(true) || deleted {
        // A past state of the resident, or a row the system deleted: what it says is not
        // true any more, and its codes may be of another era of the system.
        return Some(ResidentRow { current: false, ..ResidentRow::unread(resident_id) });
    }
    let household_id = row.required(columns.household_id);
    let standing = coded(row, columns.status, None, &mapping.status, "住民状態", "status");
    let name = text_with_gaiji(row, columns.name, mapping, true);
    let name_kana = text_with_gaiji(row, columns.name_kana, mapping, false).unwrap_or_default();
    let sex = row.value(columns.sex, values::sex, "1 (男) or 2 (女)");
    let birth_day = row.value(columns.birth_date, values::date, "a date");
    let birth_day_inexact = row
        .optional(columns.birth_date_inexact, values::flag, "0 or 1 (1: the birth date is not exact)")
        .unwrap_or(false);
    let relationship = coded(
        row,
        columns.relationship,
        Some(columns.relationship_label),
        &mapping.relationship,
        "続柄",
        "relationship",
    );
    let mut address = String::new();
    for (index, column) in columns.address.into_iter().enumerate() {
        let part = text_with_gaiji(row, column, mapping, false).unwrap_or_default();
        // The 方書 (building and room) is set apart, as on a postcard.
        if index == 4 && !part.is_empty() && !address.is_empty() {
            address.push('\u{3000}');
        }
        address.push_str(&part);
    }
    let postal_code =
        row.optional(columns.postal_code, values::postal_code, "a postal code of 7 digits").unwrap_or_default();
    let resident_since = row.optional(columns.resident_since, values::date, "a date");
    let district = row.text(columns.district).unwrap_or("");
    let ward = match mapping.wards.get(district) {
        Some(name) => name.clone(),
        None => {
            if !district.is_empty() {
                notes.unnamed_districts.insert(district.to_owned());
            }
            district.to_owned()
        }
    };
    let mut qualifications = Vec::new();
    for (kind, held, since) in columns.qualifications {
        if row.optional(held, values::flag, "0 or 1").unwrap_or(false) {
            let since = row.optional(since, values::date, "a date");
            qualifications.push(Qualification { kind, level: String::new(), since });
        }
    }
    let (allowance, allowance_since) = columns.child_allowance;
    let allowance = row.text(allowance).unwrap_or("");
    if !allowance.is_empty() && code_key(allowance) != "0" {
        let since = row.optional(allowance_since, values::month, "a year and month (2016-01)");
        qualifications.push(Qualification { kind: CHILD_ALLOWANCE, level: allowance.to_owned(), since });
    }
    Some(ResidentRow {
        resident_id,
        current: true,
        household_id,
        name,
        name_kana,
        birth_day,
        birth_day_inexact,
        sex,
        relationship,
        address,
        postal_code,
        ward,
        resident_since,
        standing,
        qualifications,
    })
}

/// A code read through its table; a code not in it is a problem that says how to name it
/// (with the row's own label for it, when the file has one).
fn coded<T: Copy>(
    row: &mut Row<'_>,
    column: ColumnId,
    label: Option<ColumnId>,
    table: &HashMap<String, T>,
    what: &str,
    section: &str,
) -> Option<T> {
    let code = row.required(column)?;
    if let Some(meaning) = table.get(code_key(code)) {
        return Some(*meaning);
    }
    let label = label.and_then(|label| row.text(label)).filter(|label| !label.is_empty());
    let label = label.map(|label| format!(" ({label})")).unwrap_or_default();
    let mut known: Vec<&str> = table.keys().map(String::as_str).collect();
    known.sort_by_key(|code| (code.len(), *code));
    row.problem(
        Some(column),
        format!(
            "{what} code {code:?}{label} is not in the {what} table ({}); name it in the mapping's [codes.{section}]",
            known.join(", ")
        ),
    );
    None
}

impl<'a> ResidentRow<'a> {
    /// A row of which only the id was read.
    fn unread(resident_id: &'a str) -> ResidentRow<'a> {
        ResidentRow {
            resident_id,
            current: true,
            household_id: None,
            name: None,
            name_kana: String::new(),
            birth_day: None,
            birth_day_inexact: false,
            sex: None,
            relationship: None,
            address: String::new(),
            postal_code: String::new(),
            ward: String::new(),
            resident_since: None,
            standing: None,
            qualifications: Vec::new(),
        }
    }
}

/// Notes what staff are told about a living resident's row.
fn note_row(line: u64, resident: &ResidentRow<'_>, notes: &mut Notes) {
    if resident.standing != Some(Standing::Resident) {
        return;
    }
    if resident.relationship == Some(RelationshipCode::Lodger) {
        notes.lodgers.push(line);
    }
    if resident.birth_day_inexact {
        notes.inexact_birth_days.push(line);
    }
    for qualification in &resident.qualifications {
        if qualification.since.is_none() {
            notes.undated_qualifications.push((line, qualification.kind));
        }
    }
}

/// Reads the resident file, sending living residents (and the data kinds of their 資格)
/// while no problem has been found, and checking ids and households. Problems go to
/// `problems`, what staff should know to `warnings`.
pub fn read_residents(
    file: &mut CsvFile,
    layout: &Layout<'_>,
    mapping: &Mapping,
    sink: &mut Sink,
    problems: &mut Problems,
    warnings: &mut Vec<String>,
) -> ResidentsRead {
    let name = file.spec.name;
    let mut known: HashMap<Box<str>, Known> = HashMap::default();
    // Ids seen only on past rows so far, with the first line.
    let mut past_only: HashMap<Box<str>, u64> = HashMap::default();
    // For each household of living residents: the line it first appears on, and whether
    // it has a head.
    let mut households: HashMap<Box<str>, (u64, bool)> = HashMap::default();
    let mut kinds: HashSet<&'static str> = HashSet::default();
    let mut notes = Notes::default();
    let (mut departed, mut rows) = (0, 0);
    while let Some(mut row) = file.next_row(problems) {
        rows += 1;
        let line = row.line;
        let Some(resident) = layout.read(&mut row, mapping, &mut notes) else { continue };
        if !resident.current {
            if !known.contains_key(resident.resident_id) {
                past_only.entry(resident.resident_id.into()).or_insert(line);
            }
            continue;
        }
        if let Some(first) = known.get(resident.resident_id) {
            let message = match layout {
                Layout::Own(_) => {
                    format!("resident_id {} appears twice (first on line {})", resident.resident_id, first.line)
                }
                Layout::Standard(..) => format!(
                    "resident_id {} has two current rows (最新フラグ 1; the first on line {})",
                    resident.resident_id, first.line
                ),
            };
            row.problem(Some(layout.resident_id_column()), message);
            continue;
        }
        if !past_only.is_empty() {
            past_only.remove(resident.resident_id);
        }
        known.insert(resident.resident_id.into(), Known { row: None, line });
        if let (Some(household_id), Some(Standing::Resident)) = (resident.household_id, resident.standing) {
            let household = households.entry(household_id.into()).or_insert((line, false));
            household.1 |= resident.relationship == Some(RelationshipCode::Head);
        }
        if !row.storable() {
            continue;
        }
        let ResidentRow {
            resident_id,
            household_id: Some(household_id),
            name: Some(name),
            birth_day: Some(birth_day),
            sex: Some(sex),
            relationship: Some(relationship),
            standing: Some(standing),
            ..
        } = resident
        else {
            continue;
        };
        if standing != Standing::Resident {
            if let Some(departure) = standing.departure() {
                sink.push(Record::Departed(resident_id.to_owned(), departure));
                departed += 1;
            }
            continue;
        }
        let stored = sink.resident(Resident {
            resident_id: resident_id.to_owned(),
            household_id: household_id.to_owned(),
            name,
            name_kana: resident.name_kana,
            birth_day,
            birth_day_inexact: resident.birth_day_inexact,
            sex,
            relationship: relationship.relationship().code(),
            address: resident.address,
            postal_code: resident.postal_code,
            ward: resident.ward,
            resident_since: resident.resident_since,
        });
        if let Some(entry) = known.get_mut(resident_id) {
            entry.row = Some(stored);
        }
        for Qualification { kind, level, since } in resident.qualifications {
            kinds.insert(kind);
            sink.push(Record::Enrollment {
                row: stored,
                kind: kind.to_owned(),
                level,
                // Held, but the export does not say since when: held as long as the
                // resident has lived, which is all the export does say.
                start: since.unwrap_or(birth_day),
                end: None,
                consent_required: false,
            });
        }
    }
    let mut past_only: Vec<(u64, Box<str>)> = past_only.into_iter().map(|(id, line)| (line, id)).collect();
    past_only.sort_unstable();
    for (line, resident_id) in past_only {
        problems.push(
            name,
            line,
            0,
            format!(
                "resident_id {resident_id} has past rows but no current one (最新フラグ 1); is the export cut short?"
            ),
        );
    }
    warnings.extend(household_warnings(name, &households));
    warnings.extend(notes.warnings(name));
    let mut kinds: Vec<&'static str> = kinds.into_iter().collect();
    kinds.sort_by_key(|kind| STANDARD_KINDS.iter().position(|standard| standard == kind));
    ResidentsRead { known, departed, rows, kinds }
}

/// A warning for each household of living residents without a head (世帯主): a real state
/// for the weeks between a head's death or departure and the new head's registration.
fn household_warnings(file: &str, households: &HashMap<Box<str>, (u64, bool)>) -> Vec<String> {
    let mut headless: Vec<(u64, &str)> = households
        .iter()
        .filter(|(_, (_, has_head))| !has_head)
        .map(|(household, (line, _))| (*line, household.as_ref()))
        .collect();
    headless.sort_unstable();
    headless
        .into_iter()
        .map(|(line, household)| {
            format!(
                "{file}:{line}: household {household} has no head (世帯主) among its living residents for now; \
                 its members are imported, and programs that look for a head skip it"
            )
        })
        .collect()
}

/// Lines as a short list: the first few, then how many more.
pub fn lines(lines: &[u64]) -> String {
    const SHOWN: usize = 10;
    let shown: Vec<String> = lines.iter().take(SHOWN).map(u64::to_string).collect();
    let more = lines.len().saturating_sub(SHOWN);
    if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
}

impl Notes {
    fn warnings(self, file: &str) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.lodgers.is_empty() {
            warnings.push(format!(
                "{file}: {} residents are 同居人 or 縁故者 of their household's head (lines {}); programs see them \
                 as other members of the household",
                self.lodgers.len(),
                lines(&self.lodgers)
            ));
        }
        if !self.inexact_birth_days.is_empty() {
            warnings.push(format!(
                "{file}: {} residents' birth dates are not exact (生年月日_不詳; lines {}); programs that read birth \
                 days give them no notice, and each run counts the notices withheld",
                self.inexact_birth_days.len(),
                lines(&self.inexact_birth_days)
            ));
        }
        if !self.undated_qualifications.is_empty() {
            let mut kinds: Vec<&str> = self.undated_qualifications.iter().map(|(_, kind)| *kind).collect();
            kinds.sort_by_key(|kind| STANDARD_KINDS.iter().position(|standard| standard == kind));
            kinds.dedup();
            let line_numbers: Vec<u64> = self.undated_qualifications.iter().map(|(line, _)| *line).collect();
            warnings.push(format!(
                "{file}: {} 資格 ({}) are held with no date of acquisition (lines {}); they are taken as held since \
                 birth",
                line_numbers.len(),
                kinds.join(", "),
                lines(&line_numbers)
            ));
        }
        let mut codes: Vec<String> = self.unnamed_districts.into_iter().collect();
        codes.sort_unstable_by(|first, second| (first.len(), first).cmp(&(second.len(), second)));
        if !codes.is_empty() {
            warnings.push(format!(
                "{file}: 地区管理コード {} have no name in the mapping's [wards]; the code is used as the ward",
                codes.join(", ")
            ));
        }
        warnings
    }
}
