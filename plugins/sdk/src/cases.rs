//! Example cases in YAML, as a division clerk writes them, and the check that runs a
//! program over them: OpenFisca-style tests for oshirase plugins.
//!
//! A file holds `cases:`, each with a `name`, the day it is evaluated (`today`), the
//! `people` it involves and the notices it `expect`s (nothing expected means no notice).
//! Only `id` and `birth` are required for a person; the rest default so that short cases
//! stay short: a household of one's own, head of it, no sex recorded, no ward, no tax data
//! (no consent), no history.
//!
//! ```yaml
//! cases:
//!   - name: 1期は生後12月に至る日に始まる
//!     today: 2026-07-30
//!     people:
//!       - id: 子
//!         birth: 2025-07-31
//!         sex: female            # male / female
//!         household: h1
//!         relationship: child    # head / spouse / child / parent / other
//!         ward: 中央区
//!         resident_since: 2025-07-31
//!         tax: { taxable: 非課税, income: 0 }   # 非課税 / 均等割のみ / 課税; only with consent
//!         immunizations: [ { vaccine: vaccine-mr, dose: 1, date: 2026-08-01 } ]
//!         checkups: [ { kind: checkup-18m, date: 2026-01-01 } ]   # visit: 2 for a second visit
//!         receipts: [ { program: child-rearing-allowance, start: 2025-01-01, end: 2030-03-31 } ]
//!         pregnancies: [ { notified_on: 2026-05-01, due_date: 2026-12-01 } ]
//!         enrollments: [ { kind: 国保, start: 2020-04-01 } ]   # level: 要介護3; end: when it ended
//!         attributes: { 手帳等級: "2" }
//!     settings: { season-opens: 06-01 }   # as staff would type them; the rest at their default
//!     expect:
//!       - { person: 子, occasion: phase-1, send_on: 2026-07-30, expires_on: 2027-07-30 }
//!       # a recurring occasion names its instance: { …, occasion: fiscal-year, instance: 2026, … }
//! ```
//!
//! [`Case::population`] fills only the fields a manifest declares, as the host does, so a
//! plugin that forgot to declare a field fails its cases. [`check`] takes the evaluation
//! as a closure, so the host can run the same cases through the WebAssembly sandbox.

use std::collections::HashMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use serde::Deserialize;

use crate::{
    Attributes, Day, Enrollments, Events, Field, Notice, Population, Program, ProgramInfo, Relationship, Settings, Sex,
    Taxable,
};

/// A parsed file of example cases.
#[derive(Clone, Debug)]
pub struct Cases {
    pub cases: Vec<Case>,
}

/// One example: some people, a day, and the notices a program should give on that day.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub today: Day,
    people: Vec<CasePerson>,
    /// Settings as staff would type them, by name; the others keep their defaults.
    settings: Vec<(String, String)>,
    pub expect: Vec<ExpectedNotice>,
}

/// A notice as a case states it; `reason` is for staff and not compared.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct ExpectedNotice {
    pub person: String,
    pub occasion: String,
    pub instance: i32,
    pub send_on: Day,
    pub expires_on: Day,
}

impl fmt::Display for ExpectedNotice {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "person {} occasion {}{} send_on {} expires_on {}",
            self.person,
            self.occasion,
            if self.instance == 0 { String::new() } else { format!(" instance {}", self.instance) },
            self.send_on,
            self.expires_on
        )
    }
}

#[derive(Clone, Debug)]
struct CasePerson {
    id: String,
    birth: Day,
    sex: Sex,
    /// `None` for a household of the person's own.
    household: Option<String>,
    relationship: Relationship,
    ward: String,
    resident_since: Option<Day>,
    taxable: Taxable,
    income: i64,
    immunizations: Vec<EventRow>,
    checkups: Vec<EventRow>,
    receipts: Vec<EventRow>,
    pregnancies: Vec<EventRow>,
    /// Kind, level and period.
    enrollments: Vec<(String, String, Day, Day)>,
    attributes: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
struct EventRow {
    code: String,
    count: u8,
    start: Day,
    end: Day,
}

/// A problem in a cases file, naming the case (by position and name) and the field.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CaseError {
    /// `case 3 「name」`, or empty for a problem with the file as a whole.
    pub case: String,
    /// The path of the field inside the case, such as `people[0].birth`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for CaseError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.case.is_empty(), self.field.is_empty()) {
            (true, _) => write!(formatter, "cases file: {}", self.message),
            (false, true) => write!(formatter, "{}: {}", self.case, self.message),
            (false, false) => write!(formatter, "{}: {}: {}", self.case, self.field, self.message),
        }
    }
}

impl std::error::Error for CaseError {}

// The file as written. Dates are read as text and converted afterwards, so that an error
// can name the case and the field.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSource {
    cases: Vec<serde_yaml_ng::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseSource {
    name: String,
    today: String,
    #[serde(default)]
    people: Vec<PersonSource>,
    #[serde(default)]
    settings: std::collections::BTreeMap<String, serde_yaml_ng::Value>,
    #[serde(default)]
    expect: Vec<ExpectSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonSource {
    id: String,
    birth: String,
    sex: Option<SexSource>,
    household: Option<String>,
    relationship: Option<RelationshipSource>,
    ward: Option<String>,
    resident_since: Option<String>,
    tax: Option<TaxSource>,
    #[serde(default)]
    immunizations: Vec<ImmunizationSource>,
    #[serde(default)]
    checkups: Vec<CheckupSource>,
    #[serde(default)]
    receipts: Vec<ReceiptSource>,
    #[serde(default)]
    pregnancies: Vec<PregnancySource>,
    #[serde(default)]
    enrollments: Vec<EnrollmentSource>,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollmentSource {
    kind: String,
    #[serde(default)]
    level: String,
    start: String,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum SexSource {
    Male,
    Female,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum RelationshipSource {
    Head,
    Spouse,
    Child,
    Parent,
    Other,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaxSource {
    taxable: TaxableSource,
    #[serde(default)]
    income: i64,
}

#[derive(Deserialize)]
enum TaxableSource {
    #[serde(rename = "非課税", alias = "not-taxed")]
    NotTaxed,
    #[serde(rename = "均等割のみ", alias = "per-capita-only")]
    PerCapitaOnly,
    #[serde(rename = "課税", alias = "taxed")]
    Taxed,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImmunizationSource {
    vaccine: String,
    dose: u8,
    date: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckupSource {
    kind: String,
    date: String,
    /// Which visit of a program with several (乳児健診 1回目・2回目); 0 when not said.
    #[serde(default)]
    visit: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptSource {
    program: String,
    start: String,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PregnancySource {
    notified_on: String,
    due_date: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectSource {
    person: String,
    occasion: String,
    #[serde(default)]
    instance: i32,
    send_on: String,
    expires_on: String,
}

/// Reads a cases file.
pub fn parse(yaml: &str) -> Result<Cases, CaseError> {
    let file: FileSource = serde_yaml_ng::from_str(yaml).map_err(|error| CaseError {
        case: String::new(),
        field: String::new(),
        message: error.to_string(),
    })?;
    if file.cases.is_empty() {
        return Err(CaseError { case: String::new(), field: "cases".into(), message: "the file has no cases".into() });
    }
    let cases = file
        .cases
        .into_iter()
        .enumerate()
        .map(|(position, value)| read_case(position + 1, value))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Cases { cases })
}

fn read_case(number: usize, value: serde_yaml_ng::Value) -> Result<Case, CaseError> {
    let name = value.get("name").and_then(|name| name.as_str()).unwrap_or("").to_owned();
    let label = format!("case {number} 「{name}」");
    let error = |field: String, message: String| CaseError { case: label.clone(), field, message };
    let source: CaseSource =
        serde_yaml_ng::from_value(value).map_err(|problem| error(String::new(), problem.to_string()))?;
    let date = |field: String, text: &str| {
        Day::parse_iso(text).ok_or_else(|| error(field, format!("{text:?} is not a date (YYYY-MM-DD)")))
    };
    let today = date("today".into(), &source.today)?;
    let mut people: Vec<CasePerson> = Vec::with_capacity(source.people.len());
    for (index, person) in source.people.into_iter().enumerate() {
        let at = |field: &str| format!("people[{index}].{field}");
        if people.iter().any(|earlier| earlier.id == person.id) {
            return Err(error(at("id"), format!("the id {:?} is used twice", person.id)));
        }
        let (taxable, income) = match person.tax {
            None => (Taxable::Unknown, 0),
            Some(TaxSource { taxable: TaxableSource::NotTaxed, income }) => (Taxable::NotTaxed, income),
            Some(TaxSource { taxable: TaxableSource::PerCapitaOnly, income }) => (Taxable::PerCapitaOnly, income),
            Some(TaxSource { taxable: TaxableSource::Taxed, income }) => (Taxable::Taxed, income),
        };
        let one_day = |field: String, code: String, count: u8, text: &str| {
            date(field, text).map(|start| EventRow { code, count, start, end: start })
        };
        people.push(CasePerson {
            birth: date(at("birth"), &person.birth)?,
            sex: match person.sex {
                None => Sex::Unknown,
                Some(SexSource::Male) => Sex::Male,
                Some(SexSource::Female) => Sex::Female,
            },
            household: person.household,
            relationship: match person.relationship {
                None | Some(RelationshipSource::Head) => Relationship::Head,
                Some(RelationshipSource::Spouse) => Relationship::Spouse,
                Some(RelationshipSource::Child) => Relationship::Child,
                Some(RelationshipSource::Parent) => Relationship::Parent,
                Some(RelationshipSource::Other) => Relationship::Other,
            },
            ward: person.ward.unwrap_or_default(),
            resident_since: person.resident_since.map(|text| date(at("resident_since"), &text)).transpose()?,
            taxable,
            income,
            immunizations: person
                .immunizations
                .into_iter()
                .enumerate()
                .map(|(row, dose)| {
                    one_day(at(&format!("immunizations[{row}].date")), dose.vaccine, dose.dose, &dose.date)
                })
                .collect::<Result<_, _>>()?,
            checkups: person
                .checkups
                .into_iter()
                .enumerate()
                .map(|(row, checkup)| {
                    one_day(at(&format!("checkups[{row}].date")), checkup.kind, checkup.visit, &checkup.date)
                })
                .collect::<Result<_, _>>()?,
            receipts: person
                .receipts
                .into_iter()
                .enumerate()
                .map(|(row, receipt)| {
                    let start = date(at(&format!("receipts[{row}].start")), &receipt.start)?;
                    let end = receipt
                        .end
                        .map(|text| date(at(&format!("receipts[{row}].end")), &text))
                        .transpose()?
                        .unwrap_or(Day(i32::MAX));
                    Ok(EventRow { code: receipt.program, count: 0, start, end })
                })
                .collect::<Result<_, _>>()?,
            pregnancies: person
                .pregnancies
                .into_iter()
                .enumerate()
                .map(|(row, pregnancy)| {
                    let start = date(at(&format!("pregnancies[{row}].notified_on")), &pregnancy.notified_on)?;
                    let end = date(at(&format!("pregnancies[{row}].due_date")), &pregnancy.due_date)?;
                    Ok(EventRow { code: String::new(), count: 0, start, end })
                })
                .collect::<Result<_, _>>()?,
            enrollments: person
                .enrollments
                .into_iter()
                .enumerate()
                .map(|(row, enrollment)| {
                    let start = date(at(&format!("enrollments[{row}].start")), &enrollment.start)?;
                    let end = enrollment
                        .end
                        .map(|text| date(at(&format!("enrollments[{row}].end")), &text))
                        .transpose()?
                        .unwrap_or(Day(i32::MAX));
                    Ok((enrollment.kind, enrollment.level, start, end))
                })
                .collect::<Result<_, _>>()?,
            attributes: person.attributes.into_iter().collect(),
            id: person.id,
        });
    }
    let mut expect = Vec::with_capacity(source.expect.len());
    for (index, notice) in source.expect.into_iter().enumerate() {
        let at = |field: &str| format!("expect[{index}].{field}");
        if !people.iter().any(|person| person.id == notice.person) {
            return Err(error(at("person"), format!("no person has the id {:?}", notice.person)));
        }
        expect.push(ExpectedNotice {
            send_on: date(at("send_on"), &notice.send_on)?,
            expires_on: date(at("expires_on"), &notice.expires_on)?,
            person: notice.person,
            occasion: notice.occasion,
            instance: notice.instance,
        });
    }
    let mut settings = Vec::with_capacity(source.settings.len());
    for (name, value) in source.settings {
        let text = match value {
            serde_yaml_ng::Value::String(text) => text,
            serde_yaml_ng::Value::Number(number) => number.to_string(),
            _ => return Err(error(format!("settings.{name}"), "a setting's value is a number or a text".into())),
        };
        settings.push((name, text));
    }
    Ok(Case { name: source.name, today, people, settings, expect })
}

impl Case {
    /// The population this case describes, with only the columns of `fields` filled, as
    /// the host fills them: people in the order written, households and wards numbered in
    /// order of first appearance.
    pub fn population(&self, fields: &[Field], kinds: &[String]) -> Population {
        let wants = |field| fields.contains(&field);
        let mut population = Population { size: self.people.len() as u32, ..Population::default() };
        let mut households: HashMap<&str, u32> = HashMap::new();
        let mut household_count = 0u32;
        for person in &self.people {
            if wants(Field::BirthDay) {
                population.birth_day.push(person.birth.0);
            }
            if wants(Field::Sex) {
                population.sex.push(person.sex.code());
            }
            if wants(Field::Household) {
                let number = match &person.household {
                    Some(name) => *households.entry(name).or_insert_with(|| {
                        household_count += 1;
                        household_count - 1
                    }),
                    None => {
                        household_count += 1;
                        household_count - 1
                    }
                };
                population.household.push(number);
            }
            if wants(Field::Relationship) {
                population.relationship.push(person.relationship.code());
            }
            if wants(Field::Ward) {
                let ward = match population.wards.iter().position(|ward| *ward == person.ward) {
                    Some(position) => position,
                    None => {
                        population.wards.push(person.ward.clone());
                        population.wards.len() - 1
                    }
                };
                population.ward.push(ward as u16);
            }
            if wants(Field::ResidentSince) {
                population.resident_since.push(person.resident_since.map_or(i32::MIN, |day| day.0));
            }
            if wants(Field::Tax) {
                population.taxable.push(person.taxable.code());
                population.income.push(person.income);
            }
        }
        if wants(Field::Immunizations) {
            population.immunizations = self.events(|person| &person.immunizations);
        }
        if wants(Field::Checkups) {
            population.checkups = self.events(|person| &person.checkups);
        }
        if wants(Field::Receipts) {
            population.receipts = self.events(|person| &person.receipts);
        }
        if wants(Field::Pregnancies) {
            population.pregnancies = self.events(|person| &person.pregnancies);
            population.pregnancies.codes.clear();
        }
        self.fill_kinds(kinds, &mut population);
        population
    }

    /// The enrollments and attributes of the kinds asked for, numbered in order of first
    /// appearance, as the host fills them.
    fn fill_kinds(&self, kinds: &[String], population: &mut Population) {
        fn number(texts: &mut Vec<String>, text: &str) -> usize {
            texts.iter().position(|found| found == text).unwrap_or_else(|| {
                texts.push(text.to_owned());
                texts.len() - 1
            })
        }
        let mut enrollments = Enrollments { levels: vec![String::new()], ..Enrollments::default() };
        let mut attributes = Attributes::default();
        for (index, person) in self.people.iter().enumerate() {
            for (kind, level, start, end) in person.enrollments.iter().filter(|row| kinds.contains(&row.0)) {
                enrollments.person.push(index as u32);
                enrollments.kind.push(number(&mut enrollments.kinds, kind) as u16);
                enrollments.level.push(number(&mut enrollments.levels, level) as u16);
                enrollments.start.push(start.0);
                enrollments.end.push(end.0);
            }
            for (name, value) in person.attributes.iter().filter(|(name, _)| kinds.contains(name)) {
                attributes.person.push(index as u32);
                attributes.name.push(number(&mut attributes.names, name) as u16);
                attributes.value.push(number(&mut attributes.values, value) as u32);
            }
        }
        population.enrollments = enrollments;
        population.attributes = attributes;
    }

    /// The case's settings over the manifest's defaults; an undeclared name or a value its
    /// type refuses is an error naming the setting.
    pub fn settings(&self, info: &ProgramInfo) -> Result<Settings, String> {
        let mut settings = Settings::defaults(&info.settings);
        for (name, text) in &self.settings {
            let declared = info
                .settings
                .iter()
                .find(|setting| setting.name == *name)
                .ok_or_else(|| format!("the case sets {name}, which the manifest does not declare"))?;
            let value = declared.kind.parse(text).map_err(|problem| format!("setting {name}: {problem}"))?;
            settings = settings.with(name, value);
        }
        Ok(settings)
    }

    /// One kind of event rows as columns, with codes numbered in order of first appearance.
    fn events(&self, rows_of: impl Fn(&CasePerson) -> &Vec<EventRow>) -> Events {
        let mut events = Events::default();
        for (index, person) in self.people.iter().enumerate() {
            for row in rows_of(person) {
                let code = match events.codes.iter().position(|code| *code == row.code) {
                    Some(position) => position,
                    None => {
                        events.codes.push(row.code.clone());
                        events.codes.len() - 1
                    }
                };
                events.person.push(index as u32);
                events.code.push(code as u16);
                events.count.push(row.count);
                events.start.push(row.start.0);
                events.end.push(row.end.0);
            }
        }
        events
    }

    /// The case's notice for a plugin's notice: the person's id instead of a row number.
    fn as_expected(&self, notice: &Notice) -> ExpectedNotice {
        let person = self
            .people
            .get(notice.person as usize)
            .map_or_else(|| format!("#{} (not in the case)", notice.person), |person| person.id.clone());
        ExpectedNotice {
            person,
            occasion: notice.occasion.to_string(),
            instance: notice.instance,
            send_on: notice.send_on,
            expires_on: notice.expires_on,
        }
    }
}

/// The outcome of running a program over its cases.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Report {
    /// How many cases ran.
    pub cases: usize,
    pub failures: Vec<Failure>,
}

/// A case whose notices differ from what it expects, or whose evaluation failed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Failure {
    pub case: String,
    pub today: Day,
    /// Why the evaluation itself failed, if it did.
    pub error: Option<String>,
    pub missing: Vec<ExpectedNotice>,
    pub unexpected: Vec<ExpectedNotice>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "{} cases, {} passed, {} failed",
            self.cases,
            self.cases - self.failures.len(),
            self.failures.len()
        )?;
        for failure in &self.failures {
            writeln!(formatter, "case 「{}」 on {} failed:", failure.case, failure.today)?;
            if let Some(error) = &failure.error {
                writeln!(formatter, "  evaluation failed: {error}")?;
            }
            for notice in &failure.missing {
                writeln!(formatter, "  - missing    {notice}")?;
            }
            for notice in &failure.unexpected {
                writeln!(formatter, "  + unexpected {notice}")?;
            }
        }
        Ok(())
    }
}

/// Runs `evaluate` on each case's population (filled with the manifest's fields and kinds
/// only) and settings, and compares the notices with the expected ones, ignoring order and
/// `reason`. A panic inside `evaluate` (reading an undeclared column panics) counts as a
/// failed evaluation of that case.
pub fn check(
    cases: &Cases,
    info: &ProgramInfo,
    mut evaluate: impl FnMut(Day, &Settings, &Population) -> Result<Vec<Notice>, String>,
) -> Report {
    let mut failures = Vec::new();
    for case in &cases.cases {
        let population = case.population(&info.fields, &info.kinds);
        let settings = case.settings(info);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| evaluate(case.today, &settings?, &population)))
            .unwrap_or_else(|payload| {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|text| text.to_string()));
                Err(format!("the program panicked: {}", message.unwrap_or_else(|| "no message".into())))
            });
        let mut missing = case.expect.clone();
        missing.sort();
        let (error, mut unexpected) = match outcome {
            Err(error) => (Some(error), Vec::new()),
            Ok(notices) => {
                let mut unexpected = Vec::new();
                for notice in notices.iter().map(|notice| case.as_expected(notice)) {
                    match missing.iter().position(|expected| *expected == notice) {
                        Some(position) => {
                            missing.remove(position);
                        }
                        None => unexpected.push(notice),
                    }
                }
                (None, unexpected)
            }
        };
        unexpected.sort();
        if error.is_some() || !missing.is_empty() || !unexpected.is_empty() {
            failures.push(Failure { case: case.name.clone(), today: case.today, error, missing, unexpected });
        }
    }
    Report { cases: cases.cases.len(), failures }
}

/// Runs a native [`Program`] over a cases file, with the fields its manifest declares, and
/// fails a case whose notices name an occasion the manifest does not declare.
pub fn check_program<P: Program>(yaml: &str) -> Result<Report, CaseError> {
    let cases = parse(yaml)?;
    let info = P::describe();
    Ok(check(&cases, &info, |today, settings, population| {
        let notices = P::evaluate(today, settings, population)?;
        match notices.iter().find(|notice| !info.occasions.iter().any(|occasion| occasion.key == *notice.occasion)) {
            Some(notice) => Err(format!("occasion {:?} is not in the manifest", notice.occasion)),
            None => Ok(notices),
        }
    }))
}

/// Panics with the report unless every case of the file passes; for a plugin's own tests.
pub fn assert_program_passes<P: Program>(yaml: &str) {
    match check_program::<P>(yaml) {
        Err(error) => panic!("{error}"),
        Ok(report) => assert!(report.passed(), "{report}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Category, Occasion, Setting, SettingType, SettingValue};

    /// Tells everyone in their first 366 days of life, unless they had dose 1 of `vaccine-x`.
    struct Example;

    impl Program for Example {
        fn describe() -> ProgramInfo {
            ProgramInfo {
                code: "example".into(),
                name: "例".into(),
                division: "試験".into(),
                contact: "なし".into(),
                category: Category::Health,
                schedule: "0 0 9 * * *".into(),
                source_url: String::new(),
                fields: vec![Field::BirthDay, Field::Immunizations],
                kinds: vec!["国保".into()],
                settings: vec![Setting::new(
                    "days",
                    "日数",
                    "生まれてから何日まで知らせるか",
                    SettingType::Integer { minimum: 1, maximum: 1000 },
                    SettingValue::Integer(365),
                )],
                occasions: vec![Occasion::new("born", "誕生", "【{program}】")],
            }
        }

        fn evaluate(today: Day, settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
            let days = settings.integer("days") as i32;
            let history = population.immunizations.by_person(population.size)?;
            let vaccine = population.immunizations.code("vaccine-x");
            Ok(population
                .people()
                .filter(|person| !history.has_dose(person.index(), vaccine, 1))
                .filter_map(|person| {
                    Notice::for_open_window(
                        &person,
                        "born",
                        person.birth_day(),
                        person.birth_day().add_days(days),
                        today,
                        String::new,
                    )
                })
                .collect())
        }
    }

    /// The same rule, forgetting to declare the immunizations it reads.
    struct Forgetful;

    impl Program for Forgetful {
        fn describe() -> ProgramInfo {
            ProgramInfo { fields: vec![Field::BirthDay], ..Example::describe() }
        }

        fn evaluate(today: Day, settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
            Example::evaluate(today, settings, population)
        }
    }

    const CASES: &str = "
cases:
  - name: 生まれた人に知らせる
    today: 2026-04-01
    people:
      - { id: 太郎, birth: 2026-04-01 }
      - { id: 花子, birth: 2026-04-02 }
    expect:
      - { person: 太郎, occasion: born, send_on: 2026-04-01, expires_on: 2027-04-01 }
";

    #[test]
    fn cases_that_hold_pass() {
        assert_program_passes::<Example>(CASES);
    }

    #[test]
    fn a_case_lists_the_missing_and_the_unexpected_notices() {
        let yaml = "
cases:
  - name: 接種済みの人には知らせない
    today: 2026-04-01
    people:
      - { id: 太郎, birth: 2026-03-01, immunizations: [ { vaccine: vaccine-x, dose: 1, date: 2026-03-20 } ] }
      - { id: 花子, birth: 2026-03-01 }
  - name: 期待が間違っている
    today: 2026-04-01
    people:
      - { id: 次郎, birth: 2026-03-01 }
    expect:
      - { person: 次郎, occasion: born, send_on: 2026-03-02, expires_on: 2026-04-01 }
";
        let report = check_program::<Example>(yaml).unwrap();
        let failures: Vec<(String, Vec<String>, Vec<String>)> = report
            .failures
            .iter()
            .map(|failure| {
                (
                    failure.case.clone(),
                    failure.missing.iter().map(ToString::to_string).collect(),
                    failure.unexpected.iter().map(|notice| format!("{} {}", notice.person, notice.send_on)).collect(),
                )
            })
            .collect();
        assert_eq!(
            failures,
            vec![
                ("接種済みの人には知らせない".to_string(), vec![], vec!["花子 2026-03-01".to_string()]),
                (
                    "期待が間違っている".to_string(),
                    vec!["person 次郎 occasion born send_on 2026-03-02 expires_on 2026-04-01".to_string()],
                    vec!["次郎 2026-03-01".to_string()]
                ),
            ]
        );
        let text = report.to_string();
        assert!(text.starts_with("2 cases, 0 passed, 2 failed\n"), "{text}");
        assert!(text.contains("  + unexpected person 花子 occasion born send_on 2026-03-01"), "{text}");
    }

    #[test]
    fn only_declared_fields_are_filled() {
        let yaml = "
cases:
  - name: 全部
    today: 2026-04-01
    people:
      - id: 親
        birth: 1990-01-01
        sex: female
        household: h1
        ward: 美浜区
        tax: { taxable: 課税, income: 3000000 }
        receipts: [ { program: child-rearing-allowance, start: 2025-01-01 } ]
        pregnancies: [ { notified_on: 2026-05-01, due_date: 2026-12-01 } ]
      - { id: 子, birth: 2020-01-01, household: h1, relationship: child, ward: 美浜区 }
      - { id: 他人, birth: 1980-01-01 }
";
        let case = &parse(yaml).unwrap().cases[0];
        let some = case.population(&[Field::Household, Field::Tax, Field::Receipts], &[]);
        assert_eq!(some.size, 3);
        assert_eq!(some.household, vec![0, 0, 1], "a person without a household has one of their own");
        assert_eq!((some.taxable.clone(), some.income.clone()), (vec![3, 0, 0], vec![3_000_000, 0, 0]));
        assert_eq!(
            (some.receipts.person.clone(), some.receipts.codes.clone(), some.receipts.end.clone()),
            (vec![0], vec!["child-rearing-allowance".to_string()], vec![i32::MAX])
        );
        assert!(
            some.birth_day.is_empty()
                && some.sex.is_empty()
                && some.relationship.is_empty()
                && some.ward.is_empty()
                && some.pregnancies.is_empty()
        );
        let rest = case.population(&[Field::Sex, Field::Relationship, Field::Ward, Field::Pregnancies], &[]);
        assert_eq!(
            (rest.sex, rest.relationship, rest.ward, rest.wards),
            (vec![2, 0, 0], vec![1, 3, 1], vec![0, 0, 1], vec!["美浜区".to_string(), String::new()])
        );
        assert_eq!(rest.pregnancies.end, vec![Day::parse_iso("2026-12-01").unwrap().0]);
    }

    /// A case sets a setting as staff would type it; the others keep their defaults, and
    /// a setting the manifest does not declare, or a value its type refuses, fails the case.
    #[test]
    fn a_case_sets_settings_over_the_defaults() {
        let yaml = |settings: &str| {
            format!(
                "
cases:
  - name: 30日まで
    today: 2026-03-15
    settings: {settings}
    people:
      - {{ id: 太郎, birth: 2026-03-01 }}
    expect:
      - {{ person: 太郎, occasion: born, send_on: 2026-03-01, expires_on: 2026-03-31 }}
"
            )
        };
        assert!(check_program::<Example>(&yaml("{ days: 30 }")).unwrap().passed());
        let errors: Vec<Option<String>> = ["{}", "{ days: 0 }", "{ weeks: 4 }"]
            .iter()
            .map(|settings| check_program::<Example>(&yaml(settings)).unwrap().failures[0].error.clone())
            .collect();
        assert_eq!(
            errors,
            vec![
                None,
                Some("setting days: 0 is outside 1..1000".to_string()),
                Some("the case sets weeks, which the manifest does not declare".to_string())
            ]
        );
    }

    /// Enrollments and attributes reach a program only for the kinds its manifest names.
    #[test]
    fn only_declared_kinds_are_filled() {
        let yaml = "
cases:
  - name: 国保
    today: 2026-04-01
    people:
      - id: 加入者
        birth: 1970-01-01
        enrollments: [ { kind: 国保, start: 2020-04-01 }, { kind: 要介護, level: 要介護2, start: 2024-01-01 } ]
        attributes: { 国保: 一般, 手帳等級: '2' }
";
        let case = &parse(yaml).unwrap().cases[0];
        let population = case.population(&[], &["国保".to_string()]);
        let enrollments = &population.enrollments;
        assert_eq!(
            (
                enrollments.person.clone(),
                enrollments.kinds.clone(),
                enrollments.levels.clone(),
                enrollments.end.clone()
            ),
            (vec![0], vec!["国保".to_string()], vec![String::new()], vec![i32::MAX])
        );
        assert_eq!(
            (population.attributes.names.clone(), population.attributes.values.clone()),
            (vec!["国保".to_string()], vec!["一般".to_string()])
        );
        assert!(case.population(&[], &[]).enrollments.person.is_empty());
    }

    #[test]
    fn a_program_that_forgot_a_field_fails_its_cases() {
        let yaml = "
cases:
  - name: 接種済み
    today: 2026-04-01
    people:
      - { id: 太郎, birth: 2026-03-01, immunizations: [ { vaccine: vaccine-x, dose: 1, date: 2026-03-20 } ] }
";
        assert!(check_program::<Example>(yaml).unwrap().passed());
        let report = check_program::<Forgetful>(yaml).unwrap();
        assert_eq!(report.failures.len(), 1, "{report}");
        let nothing_declared = ProgramInfo { fields: Vec::new(), ..Example::describe() };
        let failure = check(&parse(yaml).unwrap(), &nothing_declared, Example::evaluate);
        assert_eq!(
            failure.failures[0].error.as_deref(),
            Some(
                "the program panicked: column birth-day is empty: declare the field birth-day in the program's manifest"
            )
        );
    }

    #[test]
    fn errors_name_the_case_and_the_field() {
        let check_error = |yaml: &str, expected: &str| {
            let error = parse(yaml).unwrap_err().to_string();
            assert!(error.starts_with(expected), "expected {expected:?}, got {error:?}");
        };
        check_error(
            "cases:\n  - { name: 誤り, today: 2026-13-01 }",
            "case 1 「誤り」: today: \"2026-13-01\" is not a date (YYYY-MM-DD)",
        );
        check_error(
            "cases:\n  - { name: 一, today: 2026-01-01 }\n  - { name: 二, today: 2026-01-01, people: [ { id: a, \
             birth: 2026-02-30 } ] }",
            "case 2 「二」: people[0].birth: \"2026-02-30\" is not a date",
        );
        check_error(
            "cases:\n  - { name: 綴り, today: 2026-01-01, people: [ { id: a, brith: 2026-01-01 } ] }",
            "case 1 「綴り」: unknown field `brith`",
        );
        check_error(
            "cases:\n  - { name: 誰, today: 2026-01-01, expect: [ { person: x, occasion: a, send_on: 2026-01-01, \
             expires_on: 2026-01-01 } ] }",
            "case 1 「誰」: expect[0].person: no person has the id \"x\"",
        );
        check_error(
            "cases:\n  - { name: 重複, today: 2026-01-01, people: [ { id: a, birth: 2026-01-01 }, { id: a, birth: \
             2026-01-01 } ] }",
            "case 1 「重複」: people[1].id: the id \"a\" is used twice",
        );
        check_error("cases: []", "cases file: the file has no cases");
        check_error("case: []", "cases file: unknown field `case`");
    }

    #[test]
    fn undeclared_occasions_fail_the_case() {
        struct Stray;
        impl Program for Stray {
            fn describe() -> ProgramInfo {
                Example::describe()
            }
            fn evaluate(today: Day, _settings: &Settings, population: &Population) -> Result<Vec<Notice>, String> {
                Ok(population
                    .people()
                    .filter_map(|person| Notice::for_open_window(&person, "stray", today, today, today, String::new))
                    .collect())
            }
        }
        let report = check_program::<Stray>(CASES).unwrap();
        assert_eq!(report.failures[0].error.as_deref(), Some("occasion \"stray\" is not in the manifest"));
    }
}
