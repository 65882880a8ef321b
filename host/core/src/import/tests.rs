//! Imports of real-shaped exports, and a table of broken ones that must each be refused
//! with a precise problem while the active snapshot stays as it was.

use super::*;
use crate::testing::database;
use oshirase_sdk::{Day, Field, Relationship};

pub(super) const HEADER: &str = "resident_id,household_id,name,birth_date,sex,relationship\n";
pub(super) const GOOD_ROWS: &str = "001,H1,千葉 花子,1990-04-01,2,head\n002,H1,千葉 一郎,2025-01-01,1,child\n";

fn options() -> ImportOptions {
    ImportOptions {
        actor: "test".into(),
        source: "test".into(),
        keep_generations: 3,
        max_shrink_percent: Some(DEFAULT_MAX_SHRINK_PERCENT),
        mapping: None,
    }
}

/// A temporary export directory holding `files`.
struct Export(std::path::PathBuf);

impl Export {
    fn new(files: &[(&str, &[u8])]) -> Export {
        let directory = std::env::temp_dir().join(format!("oshirase-import-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&directory).unwrap();
        for (name, bytes) in files {
            std::fs::write(directory.join(name), bytes).unwrap();
        }
        Export(directory)
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn import(connection: &mut Connection, files: &[(&str, &[u8])]) -> Result<ImportReport, ImportError> {
    let export = Export::new(files);
    import_directory(connection, &export.0, &options())
}

/// The problems of a refused import, or what happened instead.
pub(super) fn refused(result: Result<ImportReport, ImportError>) -> Vec<String> {
    match result {
        Err(ImportError::Refused(refused)) => refused.problems.iter().map(Problem::to_string).collect(),
        Err(ImportError::Failed(error)) => vec![format!("not refused, failed: {error:#}")],
        Ok(report) => vec![format!("not refused, imported as snapshot {}", report.snapshot_id)],
    }
}

pub(super) fn shift_jis(text: &str) -> Vec<u8> {
    encoding_rs::SHIFT_JIS.encode(text).0.into_owned()
}

#[test]
fn a_shift_jis_export_with_japanese_headers_and_era_dates_is_read_whole() {
    let mut connection = database();
    let residents = "宛名番号,氏名,世帯番号,生年月日,性別,続柄,行政区,住民状態,備考\r\n\
                     001,千葉 花子,H1,平成2年4月1日,女,世帯主,中央区,住民,\r\n\
                     002,千葉 一郎,H1,R07.01.01,男,子,中央区,住民,\r\n\
                     003,千葉 茂,H1,昭和10年1月1日,男,父,中央区,死亡,\r\n";
    let tax = "宛名番号,課税年度,合計所得金額,課税区分\n001,令和7年度,\"1,800,000\",課税\n\
               003,2025,0,非課税\n";
    let immunizations = "宛名番号,ワクチン,回数,接種日\n002,vaccine-bcg,1,2025-07-01\n";
    let receipts = "resident_id,program_code,start_date\n001,child-allowance,2025-01-10\n";
    let pregnancies = "resident_id,notified_on,due_date\n001,2024-06-01,2025-01-05\n";
    let checkups = "宛名番号,種別,受診日,回数\n002,infant-checkup,20250415,1\n002,checkup-18m,20260801,\n";
    let report = import(
        &mut connection,
        &[
            ("residents.csv", &shift_jis(residents)),
            ("tax.csv", &shift_jis(tax)),
            ("immunizations.csv", immunizations.as_bytes()),
            ("receipts.csv", receipts.as_bytes()),
            ("pregnancies.csv", pregnancies.as_bytes()),
            ("checkups.csv", checkups.as_bytes()),
        ],
    )
    .unwrap();
    assert_eq!((report.residents, report.departed), (2, 1));
    assert_eq!(report.warnings, ["residents.csv:1:9: column \"備考\" is not used and was ignored"]);
    assert_eq!(report.files.len(), 6);
    connection
        .execute(
            "INSERT INTO registrations (resident_id, registered_at, tax_consent_at) VALUES ('001', 'now', 'now')",
            [],
        )
        .unwrap();

    let all = [Field::BirthDay, Field::Tax, Field::Immunizations, Field::Receipts, Field::Pregnancies, Field::Checkups];
    let loaded = crate::snapshot::load_population(&connection, &all, &[]).unwrap();
    let population = loaded.population;
    assert_eq!(loaded.resident_ids, ["001", "002"]);
    assert_eq!(
        population.birth_day,
        [Day::parse_iso("1990-04-01").unwrap().0, Day::parse_iso("2025-01-01").unwrap().0]
    );
    assert_eq!(
        (population.income.as_slice(), population.taxable.as_slice()),
        ([1_800_000, 0].as_slice(), [3, 0].as_slice())
    );
    assert_eq!(
        (population.immunizations.person.as_slice(), population.immunizations.codes.as_slice()),
        ([1].as_slice(), ["vaccine-bcg".to_string()].as_slice())
    );
    assert_eq!(population.receipts.end, [i32::MAX]);
    assert_eq!(population.pregnancies.end, [Day::parse_iso("2025-01-05").unwrap().0]);
    assert_eq!(
        population.checkups.start,
        [Day::parse_iso("2025-04-15").unwrap().0, Day::parse_iso("2026-08-01").unwrap().0]
    );
    assert_eq!(population.checkups.count, [1, 0]);
}

/// Imports a good snapshot, then each broken export in turn: every one must be refused
/// with exactly the problems given, and the good snapshot must stay active and whole.
/// One case: (what, the files as (name, bytes), the problems expected).
pub(super) type Case<'a> = (&'a str, Vec<(&'a str, Vec<u8>)>, Vec<&'a str>);

pub(super) fn check(cases: &[Case]) {
    let mut connection = database();
    let good =
        import(&mut connection, &[("residents.csv", format!("{HEADER}{GOOD_ROWS}").as_bytes())]).unwrap().snapshot_id;
    let mut failures = Vec::new();
    for (name, files, expected) in cases {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(file, bytes)| (*file, bytes.as_slice())).collect();
        let problems = refused(import(&mut connection, &files));
        if problems != *expected {
            failures.push(format!("{name}:\n  expected {expected:#?}\n  got {problems:#?}"));
        }
        if let Some(good) = crate::snapshot::active(&connection).unwrap().filter(|active| *active != good) {
            crate::snapshot::activate(&connection, good, "test").unwrap();
        }
        let snapshots: i64 = connection.query_row("SELECT count(*) FROM snapshots", [], |row| row.get(0)).unwrap();
        let residents: i64 = connection.query_row("SELECT count(*) FROM residents", [], |row| row.get(0)).unwrap();
        if (crate::snapshot::active(&connection).unwrap(), snapshots, residents) != (Some(good), 1, 2) {
            failures.push(format!(
                "{name}: the refused import changed the database ({snapshots} snapshots, {residents} residents)"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A UTF-16 `residents.csv` whose one name is half of a surrogate pair.
fn utf16_with_a_lone_surrogate_in_a_name() -> Vec<u8> {
    let mut units: Vec<u16> = format!("{HEADER}001,H1,?,1990-04-01,2,head\n").encode_utf16().collect();
    let name = units.iter().position(|unit| *unit == u16::from(b'?')).unwrap();
    units[name] = 0xD800;
    [vec![0xFF, 0xFE], units.into_iter().flat_map(u16::to_le_bytes).collect()].concat()
}

fn residents(text: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![("residents.csv", text.as_bytes().to_vec())]
}

#[test]
fn broken_exports_are_refused_with_their_place_and_change_nothing() {
    let long_name = "長".repeat(400_000);
    check(&[
        (
            "invalid utf-16",
            vec![("residents.csv", utf16_with_a_lone_surrogate_in_a_name())],
            vec!["residents.csv:2:3: the cell is not UTF-16 text"],
        ),
        (
            "invalid shift_jis",
            vec![("residents.csv", [shift_jis(HEADER), b"001,H1,\x81\x20,1990-01-01,1,head\n".to_vec()].concat())],
            vec!["residents.csv:2:3: the cell is not Shift_JIS text"],
        ),
        (
            "shift_jis rows under a utf-8 start",
            residents(&format!("{HEADER}{GOOD_ROWS}"))
                .into_iter()
                .map(|(file, bytes)| (file, [bytes, shift_jis("003,H1,千葉 次郎,2000-01-01,1,子\n")].concat()))
                .collect(),
            vec![
                "residents.csv:4:0: the file mixes UTF-8 and Shift_JIS text: this line is not UTF-8 while the lines \
                 before it are",
            ],
        ),
        (
            "missing column",
            residents("resident_id,name,birth_date,sex,relationship\n001,A,1990-01-01,1,head\n"),
            vec![
                "residents.csv:1:0: missing column household_id (世帯番号); the header, read as UTF-8, has: \
                 resident_id, name, birth_date, sex, relationship",
            ],
        ),
        (
            "a bad date in each accepted form",
            residents(&format!(
                "{HEADER}001,H1,A,2023-02-29,1,head\n002,H2,B,2024/13/1,1,head\n003,H3,C,20240230,1,head\n\
                 004,H4,D,令和6年2月30日,1,head\n005,H5,E,R06.02.30,1,head\n006,H6,F,平成31年5月1日,1,head\n\
                 007,H7,G,昭和64年1月8日,1,head\n"
            )),
            vec![
                "residents.csv:2:4: birth_date \"2023-02-29\" is not a date",
                "residents.csv:3:4: birth_date \"2024/13/1\" is not a date",
                "residents.csv:4:4: birth_date \"20240230\" is not a date",
                "residents.csv:5:4: birth_date \"令和6年2月30日\" is not a date",
                "residents.csv:6:4: birth_date \"R06.02.30\" is not a date",
                "residents.csv:7:4: birth_date \"平成31年5月1日\" is not a date",
                "residents.csv:8:4: birth_date \"昭和64年1月8日\" is not a date",
            ],
        ),
        (
            "bad codes and an empty name",
            residents(&format!("{HEADER}001,H1,,1990-01-01,x,head\n002,H1,B,2000-01-01,1,ペット\n")),
            vec![
                "residents.csv:2:3: name is empty",
                "residents.csv:2:5: sex \"x\" is not one of 1, 2, 男, 女, male, female",
                "residents.csv:3:6: relationship \"ペット\" is not a 続柄 (世帯主, 妻, 夫, 子, 父, 母, \
                 同居人, その他 …)",
            ],
        ),
        (
            "duplicate id",
            residents(&format!("{HEADER}{GOOD_ROWS}001,H1,C,2000-01-01,1,child\n")),
            vec!["residents.csv:4:1: resident_id 001 appears twice (first on line 2)"],
        ),
        (
            "records about an unknown resident",
            vec![
                ("residents.csv", format!("{HEADER}{GOOD_ROWS}").into_bytes()),
                (
                    "tax.csv",
                    "resident_id,fiscal_year,total_income,taxable\n001,2025,100,課税\n999,2025,100,課税\n"
                        .as_bytes()
                        .to_vec(),
                ),
                (
                    "immunizations.csv",
                    b"resident_id,vaccine,dose,date\n998,vaccine-mr,1,2025-01-01\n002,vaccine-mr,0,2025-01-01\n"
                        .to_vec(),
                ),
                (
                    "receipts.csv",
                    b"resident_id,program_code,start_date,end_date\n001,child-allowance,2025-04-01,2025-03-31\n"
                        .to_vec(),
                ),
            ],
            vec![
                "tax.csv:3:1: resident_id 999 is not in residents.csv",
                "receipts.csv:2:4: end_date 2025-03-31 is before start_date 2025-04-01",
                "immunizations.csv:2:1: resident_id 998 is not in residents.csv",
                "immunizations.csv:3:3: dose \"0\" is not a number from 1 to 99",
            ],
        ),
        (
            "a broken attributes.csv",
            vec![
                ("residents.csv", format!("{HEADER}{GOOD_ROWS}").into_bytes()),
                (
                    "attributes.csv",
                    "宛名番号,項目,値,要同意\n001,身体障害者手帳の等級,,1\n999,身体障害者手帳の等級,2,\n\
                     002,,3,はい\n"
                        .as_bytes()
                        .to_vec(),
                ),
            ],
            vec![
                "attributes.csv:2:3: value is empty",
                "attributes.csv:3:1: resident_id 999 is not in residents.csv",
                "attributes.csv:4:2: name is empty",
                "attributes.csv:4:4: consent_required \"はい\" is not 0 or 1 (1: only with the resident's consent)",
            ],
        ),
        (
            "truncated file",
            residents(&format!("{HEADER}{GOOD_ROWS}003,H1,C")),
            vec!["residents.csv:4:0: the row has 3 fields but the header has 6; is the file cut short?"],
        ),
        ("empty file", residents(""), vec!["residents.csv:1:0: residents.csv is empty: it has no header row"]),
        ("header only", residents(HEADER), vec!["residents.csv:0:0: there are no living residents in residents.csv"]),
        (
            "byte order mark in the middle",
            residents(&format!("{HEADER}{GOOD_ROWS}\u{feff}{HEADER}")),
            vec!["residents.csv:4:0: a byte order mark in the middle of the file; were two files joined?"],
        ),
        (
            "a 1 MB line",
            residents(&format!("{HEADER}{GOOD_ROWS}003,H1,{long_name},2000-01-01,1,child\n")),
            vec!["residents.csv:4:0: the row is 1200021 bytes long, more than 65536; is a quote left open?"],
        ),
        (
            "an unclosed quote",
            residents(&format!("{HEADER}001,H1,\"A,1990-01-01,1,head\n002,H1,B,2000-01-01,1,child\n")),
            vec!["residents.csv:2:0: a field runs across lines; is a quote left open?"],
        ),
        (
            "no residents file",
            vec![("tax.csv", b"resident_id\n".to_vec())],
            vec![
                "residents.csv:0:0: residents.csv (or the standard layout's resident_table.csv) is missing from the export; it is required",
            ],
        ),
        (
            "a truncated export that ends on a row boundary",
            residents(&format!("{HEADER}001,H1,A,1990-01-01,1,head\n")),
            vec![
                "residents.csv:0:0: 1 living residents, more than 10 % fewer than the active snapshot's 2; if the \
                 export is complete, import it allowing the shrink",
            ],
        ),
    ]);
}

/// A Windows-made export ends its lines with CRLF: problems are on the same lines as in
/// the LF file, blank lines and the header included.
#[test]
fn a_crlf_export_reports_each_problem_on_its_own_line() {
    let lines = [
        HEADER.trim_end(),
        "001,H1,A,1990-01-01,2,head",
        "002,H1,B,2023-02-29,1,child",
        "",
        "003,H1,C,2000-01-01,x,child",
    ];
    let expected = vec![
        "residents.csv:3:4: birth_date \"2023-02-29\" is not a date",
        "residents.csv:5:5: sex \"x\" is not one of 1, 2, 男, 女, male, female",
    ];
    check(&[
        ("lf", residents(&format!("{}\n", lines.join("\n"))), expected.clone()),
        ("crlf", residents(&format!("{}\r\n", lines.join("\r\n"))), expected.clone()),
        (
            "crlf in shift_jis",
            vec![("residents.csv", shift_jis(&format!("{}\r\n", lines.join("\r\n"))))],
            expected.clone(),
        ),
        ("cr", residents(&format!("{}\r", lines.join("\r"))), expected),
    ]);
}

/// Makes `program` active with a manifest declaring `kinds`, as publishing stores it.
fn activate_program_reading(connection: &Connection, program: &str, kinds: &[&str]) {
    let manifest = serde_json::json!({ "code": program, "kinds": kinds }).to_string();
    connection
        .execute(
            "INSERT INTO plugin_versions (program, sha256, wasm, manifest, published_by, published_at)
             VALUES (?1, ?1, x'', ?2, 'test', '')",
            (program, manifest),
        )
        .unwrap();
    connection
        .execute(
            "INSERT INTO programs (code, active_version) VALUES (?1, ?2)",
            (program, connection.last_insert_rowid()),
        )
        .unwrap();
}

const ENROLLMENTS_HEADER: &str = "宛名番号,種別,等級,開始日,終了日,要同意\r\n";

/// A Shift_JIS `enrollments.csv` and `attributes.csv` with Japanese headers are read whole;
/// a broken `enrollments.csv` after them is refused with each problem's line and column,
/// and the snapshot they made stays active with every row.
#[test]
fn enrollments_and_attributes_are_read_and_a_broken_file_loses_nothing() {
    let mut connection = database();
    activate_program_reading(&connection, "care-support", &["要介護", "身体障害者手帳の等級"]);
    let enrollments = format!(
        "{ENROLLMENTS_HEADER}001,国保,,平成27年4月1日,,\r\n002,国保,,2025-01-01,,0\r\n\
         001,要介護,要介護3,R07.04.01,2026/3/31,1\r\n"
    );
    let attributes = "宛名番号,項目,値\n001,身体障害者手帳の等級,2\n";
    let good = import(
        &mut connection,
        &[
            ("residents.csv", format!("{HEADER}{GOOD_ROWS}").as_bytes()),
            ("enrollments.csv", &shift_jis(&enrollments)),
            ("attributes.csv", &shift_jis(attributes)),
        ],
    )
    .unwrap();
    assert_eq!(good.warnings, ["enrollments.csv: kind 国保 is read by no active program"]);
    assert_eq!(&good.files[1..], [("enrollments.csv".to_string(), 3), ("attributes.csv".to_string(), 1)]);

    let broken = format!(
        "{ENROLLMENTS_HEADER}001,国保,,2025-04-01,2025-03-31,\r\n999,国保,,2025-04-01,,\r\n\
         002,,,2025-04-01,,\r\n002,要介護,要支援1,2025-02-30,,\r\n002,要介護,要支援1,2025-04-01,,2\r\n"
    );
    let problems = refused(import(
        &mut connection,
        &[("residents.csv", format!("{HEADER}{GOOD_ROWS}").as_bytes()), ("enrollments.csv", broken.as_bytes())],
    ));
    assert_eq!(
        problems,
        [
            "enrollments.csv:2:5: end 2025-03-31 is before start 2025-04-01",
            "enrollments.csv:3:1: resident_id 999 is not in residents.csv",
            "enrollments.csv:4:2: kind is empty",
            "enrollments.csv:5:4: start \"2025-02-30\" is not a date",
            "enrollments.csv:6:6: consent_required \"2\" is not 0 or 1 (1: only with the resident's consent)",
        ]
    );

    assert_eq!(crate::snapshot::active(&connection).unwrap(), Some(good.snapshot_id));
    let kinds = ["国保".to_string(), "要介護".to_string(), "身体障害者手帳の等級".to_string()];
    let population = crate::snapshot::load_population(&connection, &[], &kinds).unwrap().population;
    let day = |text| Day::parse_iso(text).unwrap().0;
    // The 要介護 period needs consent, which nobody gave; the rest is there as imported.
    assert_eq!(population.enrollments.person, [0, 1]);
    assert_eq!(population.enrollments.kinds, ["国保"]);
    assert_eq!(population.enrollments.start, [day("2015-04-01"), day("2025-01-01")]);
    assert_eq!(population.enrollments.end, [i32::MAX, i32::MAX]);
    assert_eq!(population.attributes.person, [0]);
    assert_eq!(population.attributes.values, ["2"]);
    connection
        .execute(
            "INSERT INTO registrations (resident_id, registered_at, tax_consent_at) VALUES ('001', 'now', 'now')",
            [],
        )
        .unwrap();
    let population = crate::snapshot::load_population(&connection, &[], &kinds).unwrap().population;
    assert_eq!(population.enrollments.levels, ["", "要介護3"]);
    assert_eq!(population.enrollments.end[2], day("2026-03-31"));
}

#[test]
fn a_data_kind_no_active_program_reads_is_imported_with_a_warning() {
    let mut connection = database();
    activate_program_reading(&connection, "elderly-care", &["後期高齢"]);
    activate_program_reading(&connection, "screening-lung", &[]);
    let enrollments = "resident_id,kind,start\n001,後期高齢,2020-01-01\n001,生活保護,2024-06-01\n\
                       002,生活保護,2024-06-01\n";
    let attributes = "resident_id,name,value,consent_required\n001,障害者手帳,1級,1\n";
    let report = import(
        &mut connection,
        &[
            ("residents.csv", format!("{HEADER}{GOOD_ROWS}").as_bytes()),
            ("enrollments.csv", enrollments.as_bytes()),
            ("attributes.csv", attributes.as_bytes()),
        ],
    )
    .unwrap();
    assert_eq!(
        report.warnings,
        [
            "enrollments.csv: kind 生活保護 is read by no active program",
            "attributes.csv: name 障害者手帳 is read by no active program",
        ]
    );
    let stored: i64 = connection
        .query_row("SELECT (SELECT count(*) FROM enrollments) + (SELECT count(*) FROM attributes)", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(stored, 4);
}

#[test]
fn moved_out_and_deceased_residents_are_kept_apart_and_their_records_dropped() {
    let mut connection = database();
    let rows = "resident_id,household_id,name,birth_date,sex,relationship,status\n001,H1,A,1990-01-01,1,head,resident\n\
                002,H2,B,1930-01-01,1,head,deceased\n";
    let tax = "resident_id,fiscal_year,total_income,taxable\n002,2025,100,課税\n";
    let report = import(&mut connection, &[("residents.csv", rows.as_bytes()), ("tax.csv", tax.as_bytes())]).unwrap();
    assert_eq!((report.residents, report.departed), (1, 1));
    let tax_rows: i64 = connection.query_row("SELECT count(*) FROM tax", [], |row| row.get(0)).unwrap();
    assert_eq!(tax_rows, 0);
}

#[test]
fn a_refused_generation_can_be_followed_by_a_good_one_and_old_ones_reactivated() {
    let mut connection = database();
    let first =
        import(&mut connection, &[("residents.csv", format!("{HEADER}{GOOD_ROWS}").as_bytes())]).unwrap().snapshot_id;
    let second = import(
        &mut connection,
        &[("residents.csv", format!("{HEADER}{GOOD_ROWS}003,H3,C,1970-01-01,2,head\n").as_bytes())],
    )
    .unwrap()
    .snapshot_id;
    assert_eq!(crate::snapshot::active(&connection).unwrap(), Some(second));
    crate::snapshot::activate(&connection, first, "test").unwrap();
    assert_eq!(crate::snapshot::load_population(&connection, &[], &[]).unwrap().resident_ids, ["001", "002"]);
}

/// Generates a city, imports it through the real importer, and checks its shape
/// against Japan's.
#[test]
fn a_generated_city_imports_whole_and_has_japans_shape() {
    let today = Day::parse_iso("2026-11-21").unwrap();
    let directory = std::env::temp_dir().join(format!("oshirase-city-{}", uuid::Uuid::new_v4()));
    let city = synthetic_city::generate(
        40_000,
        3,
        today,
        &directory,
        synthetic_city::ExportFormat::own(synthetic_city::FileEncoding::ShiftJis),
    )
    .unwrap();
    let mut connection = database();
    let options = ImportOptions {
        actor: "test".into(),
        source: "synthetic".into(),
        keep_generations: 2,
        max_shrink_percent: None,
        mapping: None,
    };
    let report = import_directory(&mut connection, &directory, &options).unwrap();
    std::fs::remove_dir_all(&directory).unwrap();
    assert_eq!((report.residents as usize, report.departed as usize), (city.residents, city.departed));
    // No program is active, so none reads the city's data kinds.
    assert_eq!(
        report.warnings,
        [
            "enrollments.csv: kind 後期高齢 is read by no active program",
            "enrollments.csv: kind 要介護 is read by no active program",
            "enrollments.csv: kind 国保 is read by no active program",
            "attributes.csv: name 身体障害者手帳の等級 is read by no active program",
        ]
    );

    let everything = [
        Field::BirthDay,
        Field::Sex,
        Field::Household,
        Field::Relationship,
        Field::Pregnancies,
        Field::Immunizations,
        Field::Checkups,
        Field::Receipts,
    ];
    let kinds = ["国保", "後期高齢", "要介護"].map(String::from);
    let population = crate::snapshot::load_population(&connection, &everything, &kinds).unwrap().population;
    let size = f64::from(population.size);
    let share = |predicate: &dyn Fn(u32) -> bool| {
        population.birth_day.iter().filter(|birth| predicate(Day(**birth).age_on(today))).count() as f64 / size
    };
    // Every census band within a fifth of its share of Japan's population.
    let total: u32 = synthetic_city::CENSUS_2020.iter().sum();
    for (band, thousands) in synthetic_city::CENSUS_2020.iter().enumerate() {
        let expected = f64::from(*thousands) / f64::from(total);
        let actual = share(&|age| synthetic_city::band_of(age) == band);
        assert!(
            (actual - expected).abs() < expected / 5.0,
            "ages {}–{}: {actual:.4} of residents, census {expected:.4}",
            band * 5,
            band * 5 + 4
        );
    }
    // Births about 6 a year per 1,000 residents, and infants born in every month.
    let infants = share(&|age| age == 0);
    assert!((0.004..0.010).contains(&infants), "infants {infants:.4}");
    let mut infant_months: Vec<u32> = population
        .birth_day
        .iter()
        .filter(|birth| Day(**birth).age_on(today) == 0)
        .map(|birth| Day(*birth).ymd().1)
        .collect();
    infant_months.sort_unstable();
    infant_months.dedup();
    assert_eq!(infant_months.len(), 12);
    // About 2.2 persons per household.
    let households = population.household.iter().max().map_or(0, |last| last + 1);
    let per_household = size / f64::from(households);
    assert!((2.0..2.4).contains(&per_household), "{per_household:.2} persons per household");
    // About 6.5 % of households with children under 18 have one parent.
    let mut spouse_in: std::collections::HashMap<u32, bool> = std::collections::HashMap::new();
    for person in population.people() {
        let has_spouse = spouse_in.entry(person.household()).or_insert(false);
        *has_spouse |= person.relationship() == Relationship::Spouse;
    }
    let minors_in: std::collections::HashSet<u32> = population
        .people()
        .filter(|person| person.relationship() == Relationship::Child && person.age_on(today) < 18)
        .map(|person| person.household())
        .collect();
    let single_parents =
        minors_in.iter().filter(|household| !spouse_in[household]).count() as f64 / minors_in.len() as f64;
    assert!((0.04..0.10).contains(&single_parents), "{single_parents:.3} of households with children have one parent");
    // Records exist for every kind, and only about people in the snapshot.
    for events in [&population.pregnancies, &population.immunizations, &population.checkups, &population.receipts] {
        assert!(!events.person.is_empty() && events.person.iter().all(|person| *person < population.size));
    }
    // 国保 for about a fifth of residents, 後期高齢 for everyone from their 75th birthday
    // and for nobody in 国保, 要介護 for about 15 % of them.
    let enrollments = &population.enrollments;
    let kind_of = |row: usize| enrollments.kinds[usize::from(enrollments.kind[row])].as_str();
    let people_in = |kind: &str| -> std::collections::HashSet<u32> {
        (0..enrollments.person.len()).filter(|row| kind_of(*row) == kind).map(|row| enrollments.person[row]).collect()
    };
    let (national, elderly, care) = (people_in("国保"), people_in("後期高齢"), people_in("要介護"));
    let national_share = national.len() as f64 / size;
    assert!((0.17..0.25).contains(&national_share), "国保 for {national_share:.3} of residents");
    let reached_75: std::collections::HashSet<u32> = (0..population.size)
        .filter(|person| Day(population.birth_day[*person as usize]).add_months_clamped(75 * 12) <= today)
        .collect();
    assert_eq!(elderly, reached_75);
    assert!(national.is_disjoint(&elderly));
    let care_share = care.len() as f64 / elderly.len() as f64;
    assert!(care.is_subset(&elderly) && (0.10..0.20).contains(&care_share), "要介護 for {care_share:.3} of 75+");
    for row in 0..enrollments.person.len() {
        let birth = Day(population.birth_day[enrollments.person[row] as usize]);
        let (start, end) = (Day(enrollments.start[row]), Day(enrollments.end[row]));
        assert!(start <= today && today <= end, "row {row} of {} does not cover today", kind_of(row));
        assert!(kind_of(row) != "後期高齢" || start == birth.add_months_clamped(75 * 12));
    }
    assert!(
        city.registrations
            .iter()
            .all(|registration| registration.line_user_id.len() == 33 && registration.line_user_id.starts_with('U'))
    );
}
