//! `oshirase-dev bench eval`: every catalogue program over a whole imported city three ways in
//! one run — (a) the WebAssembly plugin through the host's real path (snapshot read into
//! columns, a fresh instance, the call, the output checks), (b) the same program crate
//! linked natively and called on the same `Population`, (c) the same rule written as SQL
//! over the snapshot tables where we wrote one — and the whole city through every program
//! as `oshirase run` does it (a child process on a copy of the city), with its wall time and
//! peak RSS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};
use oshirase_sdk::{Day, Field, Notice, Population, Program, Settings};
use rusqlite::Connection;

use super::median;
use oshirase_bundled::PROGRAMS as BUNDLED;
use oshirase_core::hashing::sha256_hex;
use oshirase_core::registry::{BundledComponent, catalogue};
use oshirase_core::snapshot::{EventKind, load_population, snapshot_range};
use oshirase_sandbox::{Limits, LoadedProgram, PluginEngine};

pub struct EvalBenchOptions {
    pub residents: usize,
    pub seed: u64,
    pub repetitions: usize,
    /// Where the city and its data directory are written; both are reused by a later run
    /// with the same residents, seed and date.
    pub work_directory: PathBuf,
}

type NativeEvaluate = fn(Day, &Settings, &Population) -> Result<Vec<Notice>, String>;

/// Each catalogue program's `Program::evaluate`, from the very crate its component is built
/// from, linked into the host: the native baseline has no second copy of any rule.
const NATIVE: &[(&str, NativeEvaluate)] = &[
    ("checkup-18m", <checkup_18m::Checkup18Months as Program>::evaluate),
    ("checkup-3y", <checkup_3y::Checkup3Years as Program>::evaluate),
    ("child-allowance", <child_allowance::ChildAllowance as Program>::evaluate),
    ("child-rearing-allowance", <child_rearing_allowance::ChildRearingAllowance as Program>::evaluate),
    ("infant-checkup", <infant_checkup::InfantCheckup as Program>::evaluate),
    ("maternal-dental", <maternal_dental::MaternalDental as Program>::evaluate),
    ("postpartum-care", <postpartum_care::PostpartumCare as Program>::evaluate),
    ("screening-breast", <screening_breast::ScreeningBreast as Program>::evaluate),
    ("screening-cervical", <screening_cervical::ScreeningCervical as Program>::evaluate),
    ("screening-colon", <screening_colon::ScreeningColon as Program>::evaluate),
    ("screening-lung", <screening_lung::ScreeningLung as Program>::evaluate),
    ("screening-stomach", <screening_stomach::ScreeningStomach as Program>::evaluate),
    ("single-parent-medical", <single_parent_medical::SingleParentMedical as Program>::evaluate),
    ("specific-checkup", <specific_checkup::SpecificCheckup as Program>::evaluate),
    ("vaccine-5in1", <vaccine_5in1::Vaccine5In1 as Program>::evaluate),
    ("vaccine-bcg", <vaccine_bcg::VaccineBcg as Program>::evaluate),
    ("vaccine-hepb", <vaccine_hepb::VaccineHepatitisB as Program>::evaluate),
    ("vaccine-hpv", <vaccine_hpv::VaccineHpv as Program>::evaluate),
    ("vaccine-je", <vaccine_je::VaccineJapaneseEncephalitis as Program>::evaluate),
    ("vaccine-mr", <vaccine_mr::VaccineMr as Program>::evaluate),
    ("vaccine-pcv", <vaccine_pcv::VaccinePcv as Program>::evaluate),
    ("vaccine-pneumo-elderly", <vaccine_pneumo_elderly::VaccinePneumococcalElderly as Program>::evaluate),
    ("vaccine-varicella", <vaccine_varicella::VaccineVaricella as Program>::evaluate),
];

/// A date as SQLite's date functions read it, from a column or parameter holding a `Day`
/// (days since 1970-01-01): the Julian day number of 1970-01-01 is 2440587.5.
fn sql_date(day: &str) -> String {
    format!("date({day} + 2440587.5)")
}

/// A date text back into a `Day`.
fn sql_day(date: &str) -> String {
    format!("CAST(julianday({date}) - 2440587.5 AS INTEGER)")
}

/// `Day::months_reached` in SQL: the day before the same date `months` later, or the last
/// day of that month when the date does not exist there (SQLite would roll over into the
/// next month, so the earlier of the two is taken).
fn sql_months_reached(birth_date: &str, months: u32) -> String {
    sql_day(&format!(
        "min(date({birth_date}, '+{months} months', '-1 day'),
             date({birth_date}, 'start of month', '+{} months', '-1 day'))",
        months + 1
    ))
}

/// A schedule of age periods (`oshirase_sdk::schedule`) in SQL: the people born in the
/// last `closed_by_months`, each period's window, and the dose that closes it. The person
/// and the dose are tested as one number because SQLite runs `(a, b) NOT IN (SELECT …)`
/// as a scan of the subquery per row (minutes on a city), but builds an index for one value.
fn schedule_sql(code: &str, recorded: &str, closed_by_months: u32, periods: &[(&str, u8, String, String)]) -> String {
    let windows: Vec<String> = periods
        .iter()
        .map(|(occasion, dose, opens, closes)| {
            format!(
                "SELECT person, resident_id, '{occasion}' AS occasion, {dose} AS dose, {opens} AS opens,
                 {closes} AS closes FROM children"
            )
        })
        .collect();
    format!(
        "WITH children AS (
             SELECT key - :first AS person, resident_id, {birth} AS birth FROM residents
             WHERE key BETWEEN :first AND :last AND birth_day BETWEEN {born_too_early} AND :today),
         windows AS ({windows})
         SELECT resident_id, occasion, opens, closes, printf('%sから%sまでの期間、記録なし', {opens_date},
             {closes_date}) FROM windows
         WHERE :today BETWEEN opens AND closes
           AND person * 256 + dose NOT IN (SELECT row * 256 + count FROM events
               WHERE key BETWEEN :{recorded}_first AND :{recorded}_last AND code = '{code}')",
        opens_date = sql_date("opens"),
        closes_date = sql_date("closes"),
        birth = sql_date("birth_day"),
        born_too_early = sql_day(&format!("{}, '-{} months'", sql_date(":today"), closed_by_months + 1)),
        windows = windows.join(" UNION ALL "),
    )
}

/// A recurring screening (`oshirase_sdk::screening`) in SQL: residents old enough on 年度末,
/// perhaps of one sex, with no screening recorded in the last `every_fiscal_years` 年度,
/// during the season.
fn screening_sql(
    code: &str,
    minimum_age: u32,
    ends_on_birthday: Option<u32>,
    female_only: bool,
    every_fiscal_years: u32,
    members_of: Option<&str>,
) -> String {
    let mut closes = match ends_on_birthday {
        Some(age) => format!("min(:season_closes, {})", sql_months_reached(&sql_date("birth_day"), age * 12)),
        None => ":season_closes".to_owned(),
    };
    // A member is told until the membership that covers today ends: the memberships of
    // the day, one row per resident, joined once (a correlated subquery per resident would
    // scan the snapshot's enrollments a million times).
    let membership = match members_of {
        Some(kind) => {
            closes = format!("min({closes}, member.member_until)");
            format!(
                "JOIN (SELECT row, max(end_day) AS member_until FROM enrollments
                     WHERE key BETWEEN :first AND :last AND kind = '{kind}' AND start_day <= :today
                       AND end_day >= :today GROUP BY row) member ON member.row = residents.key - :first"
            )
        }
        None => String::new(),
    };
    // Reached on the day before the birthday, so whoever was born on April 1 or before
    // has had this year's birthday by March 31 (年齢計算ニ関スル法律).
    let age_at_fiscal_year_end = format!(
        "(:fiscal_year + 1 - CAST(strftime('%Y', {birth}) AS INTEGER) - (strftime('%m-%d', {birth}) > '04-01'))",
        birth = sql_date("birth_day")
    );
    let counted_since_date = format!("printf('%04d-04-01', :fiscal_year + 1 - {every_fiscal_years})");
    let counted_since = sql_day(&counted_since_date);
    format!(
        "SELECT resident_id, 'fiscal-year' AS occasion, :season_opens AS send_on, {closes} AS expires_on,
                printf('%d年度末に%d歳。%s以降の受診記録なし', :fiscal_year, {age_at_fiscal_year_end},
                    {counted_since_date}) AS reason
         FROM residents {membership}
         WHERE key BETWEEN :first AND :last AND :today BETWEEN :season_opens AND :season_closes
           AND birth_day <= {latest_birth} {sex}
           AND key - :first NOT IN (SELECT row FROM events
               WHERE key BETWEEN :checkups_first AND :checkups_last AND code = '{code}'
               AND start_day >= {counted_since})
           AND {closes} >= :today",
        latest_birth = sql_day(&format!("printf('%04d-04-01', :fiscal_year + 1 - {minimum_age})")),
        sex = if female_only { "AND sex = 2" } else { "" },
    )
}

/// The programs we wrote as SQL, one of each shape of the catalogue that SQL expresses
/// plainly: a vaccination schedule, a child checkup, screenings (with a sex, every other
/// year, an end at a birthday) and an allowance. The single-parent programs (household
/// analysis over relationships, tax, receipts) and the maternity programs (pregnancies
/// matched to births) have none. Each returns what a notice to store needs, as the plugin's
/// notices carry it: the resident's id, the occasion, the window and the same reason text.
fn sql_rules() -> Vec<(&'static str, String)> {
    let birth = "birth";
    let mr_school_entry = "date(birth, '+72 months')";
    let mr_school_year = format!(
        "(CAST(strftime('%Y', {mr_school_entry}) AS INTEGER) + (strftime('%m-%d', {mr_school_entry}) > '04-01'))"
    );
    vec![
        (
            "vaccine-mr",
            schedule_sql(
                "vaccine-mr",
                "immunizations",
                7 * 12,
                &[
                    ("phase-1", 1, sql_months_reached(birth, 12), sql_months_reached(birth, 24)),
                    (
                        "phase-2",
                        2,
                        sql_day(&format!("printf('%04d-04-01', {mr_school_year} - 1)")),
                        sql_day(&format!("printf('%04d-03-31', {mr_school_year})")),
                    ),
                ],
            ),
        ),
        (
            "infant-checkup",
            schedule_sql(
                "infant-checkup",
                "checkups",
                12,
                &[
                    ("first", 1, sql_months_reached(birth, 3), format!("{} - 1", sql_months_reached(birth, 7))),
                    ("second", 2, sql_months_reached(birth, 9), sql_months_reached(birth, 12)),
                ],
            ),
        ),
        ("screening-colon", screening_sql("screening-colon", 40, None, false, 1, None)),
        ("screening-breast", screening_sql("screening-breast", 40, None, true, 2, None)),
        ("specific-checkup", screening_sql("specific-checkup", 40, Some(75), false, 1, Some("国保"))),
        (
            "child-allowance",
            format!(
                "SELECT resident_id, 'birth' AS occasion, birth_day AS send_on, birth_day + 15 AS expires_on,
                 printf('出生 %s、申請期限 %s', {born}, {due}) AS reason
                 FROM residents WHERE key BETWEEN :first AND :last AND birth_day BETWEEN :today - 15 AND :today",
                born = sql_date("birth_day"),
                due = sql_date("birth_day + 15"),
            ),
        ),
    ]
}

/// The values the SQL rules may name, for the active snapshot and `today`.
fn sql_parameters(connection: &Connection, today: Day) -> Result<Vec<(&'static str, i64)>> {
    let snapshot_id =
        oshirase_core::snapshot::active(connection)?.context("no active snapshot: import resident records first")?;
    let (first, last) = snapshot_range(snapshot_id);
    let (immunizations_first, immunizations_last) = EventKind::Immunization.key_range(snapshot_id);
    let (checkups_first, checkups_last) = EventKind::Checkup.key_range(snapshot_id);
    let screening_defaults = Settings::defaults(&<screening_colon::ScreeningColon as Program>::describe().settings);
    let (season_opens, season_closes) =
        oshirase_sdk::screening::Screening::season(today.fiscal_year(), &screening_defaults)
            .map_err(|message| anyhow::anyhow!(message))?;
    Ok(vec![
        ("first", first),
        ("last", last),
        ("immunizations_first", immunizations_first),
        ("immunizations_last", immunizations_last),
        ("checkups_first", checkups_first),
        ("checkups_last", checkups_last),
        ("today", today.0.into()),
        ("fiscal_year", today.fiscal_year().into()),
        ("season_opens", season_opens.0.into()),
        ("season_closes", season_closes.0.into()),
    ])
}

/// One notice as an SQL rule gives it: what the plugin's notice carries, the resident named
/// by id rather than by row.
type SqlNotice = (String, String, i32, i32, String);

/// Runs one SQL rule and returns its notices.
fn run_sql(connection: &Connection, sql: &str, parameters: &[(&str, i64)]) -> Result<Vec<SqlNotice>> {
    let mut statement = connection.prepare_cached(sql)?;
    // Each rule names only some of the parameters; SQLite refuses a name it does not have.
    for index in 1..=statement.parameter_count() {
        let name = statement
            .parameter_name(index)
            .context("an SQL rule has an unnamed parameter")?
            .trim_start_matches(':')
            .to_owned();
        let value = parameters
            .iter()
            .find(|(known, _)| *known == name)
            .with_context(|| format!("an SQL rule names the unknown parameter {name}"))?
            .1;
        statement.raw_bind_parameter(index, value)?;
    }
    let mut rows = statement.raw_query();
    let mut notices = Vec::new();
    while let Some(row) = rows.next()? {
        notices.push((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?));
    }
    Ok(notices)
}

/// One program's figures, medians over the repetitions.
#[derive(Debug, serde::Serialize)]
pub struct ProgramFigures {
    pub program: String,
    /// Reading the columns the manifest declares from the active snapshot.
    pub load_seconds: f64,
    /// An evaluation of an empty population: a fresh instance, the call, the checks.
    pub instantiate_seconds: f64,
    /// The plugin on the loaded columns: instance, copying the columns in, the rules, the
    /// notices out, the output checks.
    pub wasm_call_seconds: f64,
    /// The same crate's `Program::evaluate`, native, on the same columns.
    pub native_call_seconds: f64,
    /// (a) the host path of one program (`run_program_beside_writes`, the scheduler's): its own read of
    /// its columns + the plugin call.
    pub wasm_seconds: f64,
    /// (a) the host path of a day (`run_day`): an equal share of one read of every
    /// program's columns + the plugin call.
    pub wasm_in_day_seconds: f64,
    /// (b) load + the native call.
    pub native_seconds: f64,
    /// (c) the rule as one SQL query over the snapshot, when there is one.
    pub sql_seconds: Option<f64>,
    pub wasm_notices: usize,
    pub native_notices: usize,
    pub sql_notices: Option<usize>,
}

/// Where the time of one program's (a) goes, step by step (medians, seconds).
#[derive(Debug, serde::Serialize)]
pub struct Profile {
    pub program: String,
    pub steps: Vec<(String, f64)>,
}

#[derive(Debug, serde::Serialize)]
pub struct EvalBenchReport {
    pub residents: u32,
    pub date: String,
    pub repetitions: usize,
    pub programs: Vec<ProgramFigures>,
    /// Sums of the program medians over the whole catalogue.
    pub total_load_seconds: f64,
    pub total_wasm_call_seconds: f64,
    pub total_native_call_seconds: f64,
    pub total_wasm_seconds: f64,
    pub total_native_seconds: f64,
    /// (a), (a) in a day and (c) summed over the programs that have an SQL rule only.
    pub total_wasm_seconds_with_sql: f64,
    pub total_wasm_in_day_seconds_with_sql: f64,
    pub total_sql_seconds: f64,
    /// One read of the snapshot with the columns of every program, as `run_day` does.
    pub shared_load_seconds: f64,
    /// The slowest program's (a), step by step.
    pub profile: Profile,
    /// `oshirase run` for the whole city (a child process): every notice new.
    pub whole_city_seconds: f64,
    /// The same again, every notice already stored (a day like most).
    pub whole_city_again_seconds: f64,
    pub whole_city_notices: usize,
    /// Of which stored on the first day (a fifth of the residents registered).
    pub whole_city_stored_notices: usize,
    /// The largest resident set of those `oshirase run` processes, every notice new, in KiB.
    pub whole_city_peak_rss_kib: i64,
    /// The same, every notice already stored.
    pub whole_city_again_peak_rss_kib: i64,
    pub threads: usize,
    /// The largest resident set of this process, evaluating one program at a time on its
    /// own read, in KiB (the city is generated and imported by child processes).
    pub peak_rss_one_at_a_time_kib: i64,
}

impl EvalBenchReport {
    /// (a)/(b) for the catalogue: the host path over the native one.
    pub fn wasm_over_native(&self) -> f64 {
        self.total_wasm_seconds / self.total_native_seconds
    }

    /// The plugin calls alone over the native calls alone: the sandbox's own cost.
    pub fn wasm_call_over_native_call(&self) -> f64 {
        self.total_wasm_call_seconds / self.total_native_call_seconds
    }

    /// (a)/(c) over the programs written in SQL, each program on its own read.
    pub fn wasm_over_sql(&self) -> f64 {
        self.total_wasm_seconds_with_sql / self.total_sql_seconds
    }

    /// (a)/(c) over the programs written in SQL, the read shared as in a day.
    pub fn wasm_in_day_over_sql(&self) -> f64 {
        self.total_wasm_in_day_seconds_with_sql / self.total_sql_seconds
    }
}

impl std::fmt::Display for EvalBenchReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let milliseconds = |seconds: f64| format!("{:.1}", seconds * 1e3);
        let ratio = |over: Option<f64>, under: Option<f64>| match (over, under) {
            (Some(over), Some(under)) => format!("{:.2}", over / under),
            _ => "-".to_owned(),
        };
        writeln!(
            formatter,
            "every catalogue program on a city of {} residents for {}, medians of {} runs (ms)",
            self.residents, self.date, self.repetitions
        )?;
        writeln!(
            formatter,
            "  {:<24} {:>7} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>5} {:>5} {:>6} {:>8}",
            "program",
            "read",
            "inst",
            "wasm",
            "native",
            "(a)",
            "(a)day",
            "(b)",
            "(c)sql",
            "a/b",
            "a/c",
            "aday/c",
            "notices"
        )?;
        for program in &self.programs {
            writeln!(
                formatter,
                "  {:<24} {:>7} {:>6.2} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>5.2} {:>5} {:>6} {:>8}",
                program.program,
                milliseconds(program.load_seconds),
                program.instantiate_seconds * 1e3,
                milliseconds(program.wasm_call_seconds),
                milliseconds(program.native_call_seconds),
                milliseconds(program.wasm_seconds),
                milliseconds(program.wasm_in_day_seconds),
                milliseconds(program.native_seconds),
                program.sql_seconds.map_or("-".to_owned(), milliseconds),
                program.wasm_seconds / program.native_seconds,
                ratio(Some(program.wasm_seconds), program.sql_seconds),
                ratio(Some(program.wasm_in_day_seconds), program.sql_seconds),
                program.wasm_notices
            )?;
        }
        writeln!(
            formatter,
            "  {:<24} {:>7} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>5.2}",
            "catalogue total",
            milliseconds(self.total_load_seconds),
            "",
            milliseconds(self.total_wasm_call_seconds),
            milliseconds(self.total_native_call_seconds),
            milliseconds(self.total_wasm_seconds),
            "",
            milliseconds(self.total_native_seconds),
            "",
            self.wasm_over_native()
        )?;
        let in_sql = self.programs.iter().filter(|program| program.sql_seconds.is_some()).count();
        writeln!(
            formatter,
            "  (a)/(b), the catalogue: host path over native                  {:>8.2}   (goal ≤ 1.5)",
            self.wasm_over_native()
        )?;
        writeln!(
            formatter,
            "  plugin calls over native calls, without the read                {:>8.2}   (goal ≤ 2.0)",
            self.wasm_call_over_native_call()
        )?;
        writeln!(
            formatter,
            "  (a)/(c), the {in_sql} programs in SQL, each on its own read: {} / {} ms {:>8.2}   (goal < 1.0)",
            milliseconds(self.total_wasm_seconds_with_sql),
            milliseconds(self.total_sql_seconds),
            self.wasm_over_sql()
        )?;
        writeln!(
            formatter,
            "  (a)/(c), the same with the read shared as in a day: {} / {} ms {:>8.2}",
            milliseconds(self.total_wasm_in_day_seconds_with_sql),
            milliseconds(self.total_sql_seconds),
            self.wasm_in_day_over_sql()
        )?;
        writeln!(
            formatter,
            "  one read of every program's columns                             {:>8} ms",
            milliseconds(self.shared_load_seconds)
        )?;
        let read = self.shared_load_seconds;
        writeln!(
            formatter,
            "  whole city, `oshirase run`, {} threads, first day: {} planned, {} stored (a fifth registered)",
            self.threads, self.whole_city_notices, self.whole_city_stored_notices
        )?;
        writeln!(
            formatter,
            "    first day, every notice new                    {:>8.2} s = {:>5.1}× one read   (goal ≤ 3 s and ≤ 5×)",
            self.whole_city_seconds,
            self.whole_city_seconds / read
        )?;
        writeln!(
            formatter,
            "    an ordinary day, every notice already stored   {:>8.2} s = {:>5.1}× one read   (goal ≤ 3×)",
            self.whole_city_again_seconds,
            self.whole_city_again_seconds / read
        )?;
        writeln!(
            formatter,
            "  peak RSS of `oshirase run`: first day / ordinary day          {:>4.0} / {:.0} MiB (goal ≤ 256 MiB)",
            self.whole_city_peak_rss_kib as f64 / 1024.0,
            self.whole_city_again_peak_rss_kib as f64 / 1024.0
        )?;
        writeln!(
            formatter,
            "  peak RSS of this process, one program at a time                 {:>8.0} MiB",
            self.peak_rss_one_at_a_time_kib as f64 / 1024.0
        )?;
        writeln!(formatter, "  where the time of the slowest program, {}, goes (ms):", self.profile.program)?;
        for (step, seconds) in &self.profile.steps {
            writeln!(formatter, "    {step:<58} {:>8}", milliseconds(*seconds))?;
        }
        Ok(())
    }
}

/// Runs `binary` (this one for `gen`, the product's for `import`) as a child, for a step
/// whose memory must not count as the evaluation's (generating and importing the city).
fn run_child(binary: &Path, arguments: &[&std::ffi::OsStr]) -> Result<()> {
    let output = Command::new(binary)
        .args(arguments)
        .env("OSHIRASE_LOG", "warn")
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "{} {:?} failed: {}",
        binary.display(),
        arguments,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// Where the city's export is written, kept for a later run with the same residents, seed
/// and date.
pub(super) fn city_directory(options: &EvalBenchOptions, today: Day) -> PathBuf {
    options.work_directory.join(format!("eval-city-{}-{}-{today}", options.residents, options.seed))
}

/// The data directory holding the imported city, made by child processes unless a
/// previous run left it complete.
pub(super) fn imported_city(options: &EvalBenchOptions, today: Day) -> Result<PathBuf> {
    let city = city_directory(options, today);
    let data = options.work_directory.join(format!("eval-data-{}-{}-{today}", options.residents, options.seed));
    let imported = data.join("imported");
    if imported.exists() {
        // A city imported by an earlier version of oshirase is brought to this one's
        // schema, as opening it for any command would.
        oshirase_core::database::open(&data.join("oshirase.db"))?;
        return Ok(data);
    }
    if !city.join("checkups.csv").exists() {
        let residents = options.residents.to_string();
        let seed = options.seed.to_string();
        let date = today.to_string();
        // `gen` is this binary's own command.
        run_child(
            &std::env::current_exe()?,
            &["gen", "--residents", &residents, "--seed", &seed, "--date", &date, "--out"]
                .map(std::ffi::OsStr::new)
                .into_iter()
                .chain([city.as_os_str()])
                .collect::<Vec<_>>(),
        )?;
    }
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("cannot remove {}", data.display()))?;
    }
    import_child(&data, &city)?;
    std::fs::write(&imported, "").with_context(|| format!("cannot write {}", imported.display()))?;
    Ok(data)
}

/// Imports the export in `city` into the data directory `data` with the product's own
/// `oshirase import`, as a child.
pub(super) fn import_child(data: &Path, city: &Path) -> Result<()> {
    run_child(
        &crate::product_binary()?,
        &[
            std::ffi::OsStr::new("--data"),
            data.as_os_str(),
            std::ffi::OsStr::new("import"),
            city.as_os_str(),
            std::ffi::OsStr::new("--allow-shrink"),
        ],
    )
}

pub(super) fn open_read_only(data: &Path) -> Result<Connection> {
    let path = data.join("oshirase.db");
    // Without NO_MUTEX (which `Connection::open` sets, so the host has it) SQLite locks a
    // mutex around every column read: a third of a load's time.
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
        | rusqlite::OpenFlags::SQLITE_OPEN_URI;
    Connection::open_with_flags(&path, flags).with_context(|| format!("cannot open database {}", path.display()))
}

/// Times `work` and returns its result with the seconds it took.
fn timed<T>(work: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let start = Instant::now();
    let result = work()?;
    Ok((result, start.elapsed().as_secs_f64()))
}

/// The peak resident set of this process, in KiB.
fn peak_rss_kib() -> i64 {
    // SAFETY: getrusage only writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if status == 0 { usage.ru_maxrss } else { 0 }
}

/// A copy of the imported city in which `oshirase run` may store notices, made once for
/// each build of the bundled programs: the copy is given the programs bundled when it is
/// made, so a copy made by an earlier build would time that build's programs.
fn run_directory(data: &Path) -> Result<PathBuf> {
    let mut name = data.file_name().context("the city's data directory has no name")?.to_owned();
    name.push("-run");
    let run = data.with_file_name(name);
    let database = run.join("oshirase.db");
    let built = run.join("bundled-programs.sha256");
    let hashes: String = catalogue(BUNDLED).map(|(_, wasm, _)| sha256_hex(wasm)).collect();
    let bundled = sha256_hex(hashes.as_bytes());
    if database.exists() && std::fs::read_to_string(&built).ok().as_deref() != Some(bundled.as_str()) {
        std::fs::remove_dir_all(&run).with_context(|| format!("cannot remove {}", run.display()))?;
    }
    if !database.exists() {
        std::fs::create_dir_all(&run).with_context(|| format!("cannot create {}", run.display()))?;
        oshirase_core::database::backup(&data.join("oshirase.db"), &database, false)?;
        // A day's run stores the notices of residents who can be told (registered, or a
        // minor of a registered parent) and derives the others again each day. A fifth of
        // the residents registered, a generous share, so that the first day stores what a
        // city with that uptake would; registered without an address, so that `oshirase
        // run` queues and sends nothing and the figures are the evaluation's and the store's.
        oshirase_core::database::open(&database)?.execute(
            "INSERT INTO registrations (resident_id, registered_at, channels)
             SELECT resident_id, 'bench', 'line' FROM residents
             WHERE snapshot_id = (SELECT id FROM snapshots WHERE active = 1) AND key % 5 = 0",
            [],
        )?;
        std::fs::write(&built, &bundled).with_context(|| format!("cannot write {}", built.display()))?;
    }
    Ok(run)
}

/// `VmHWM` of a running process, in KiB; `None` once it has exited.
fn high_water_mark_kib(pid: libc::pid_t) -> Option<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What one `oshirase run` child did.
struct ChildRun {
    seconds: f64,
    peak_rss_kib: i64,
    /// Planned by every program.
    notices: usize,
    /// Of which newly stored (those that can reach someone, not stored before).
    new_notices: usize,
}

/// Runs `oshirase run` for `today` on the data directory `run` as a child process, which
/// reaches no LINE server (its registrations have no address, so nothing is queued), and
/// measures its wall time and its own peak resident set.
fn run_day_child(run: &Path, today: Day) -> Result<ChildRun> {
    let date = today.to_string();
    let arguments = ["run", "--date", date.as_str(), "--line-token", "bench", "--line-base-url", "http://127.0.0.1:9"];
    let measured = run_measured(run, &arguments, "run")?;
    let report: serde_json::Value = serde_json::from_str(&measured.output).context("oshirase run printed no report")?;
    let runs = report["runs"].as_array().context("oshirase run reported no runs")?;
    let sum = |field: &str| runs.iter().filter_map(|run| run[field].as_u64()).sum::<u64>() as usize;
    Ok(ChildRun {
        seconds: measured.seconds,
        peak_rss_kib: measured.peak_rss_kib,
        notices: sum("notices"),
        new_notices: sum("new_notices"),
    })
}

/// What one measured child process printed, how long it took and its peak resident set.
pub(super) struct Measured {
    pub output: String,
    pub seconds: f64,
    pub peak_rss_kib: i64,
}

/// Runs the product binary with `--data data` and `arguments` as a child process, its
/// output in `data/NAME.out` and its log in `data/NAME.log`, and measures its wall time and
/// its own peak resident set.
pub(super) fn run_measured(data: &Path, arguments: &[&str], name: &str) -> Result<Measured> {
    let oshirase = crate::product_binary()?;
    let output = data.join(format!("{name}.out"));
    let log = data.join(format!("{name}.log"));
    let create = |path: &Path| std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()));
    let start = Instant::now();
    let child = Command::new(&oshirase)
        .arg("--data")
        .arg(data)
        .args(arguments)
        .env("OSHIRASE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(create(&output)?)
        .stderr(create(&log)?)
        .spawn()
        .with_context(|| format!("cannot run {}", oshirase.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // The child's own high-water mark, read from /proc while it runs: wait4's `ru_maxrss`
    // would count this process's memory too, since Linux carries the resident set of the
    // process a child was spawned from across its exec.
    let exited = std::sync::atomic::AtomicBool::new(false);
    let (waited, peak_rss_kib) = std::thread::scope(|scope| {
        let poller = scope.spawn(|| {
            let mut peak = 0;
            while !exited.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(high_water_mark_kib(pid).unwrap_or(0));
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            peak
        });
        // SAFETY: waitpid writes only into the status it is given; the child is ours and
        // is reaped here, not by `Child::wait`.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        exited.store(true, std::sync::atomic::Ordering::Relaxed);
        (waited, poller.join().unwrap_or(0))
    });
    let seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(waited == pid, "cannot wait for oshirase {name}: {}", std::io::Error::last_os_error());
    let succeeded = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    anyhow::ensure!(succeeded, "oshirase {name} failed: {}", std::fs::read_to_string(&log).unwrap_or_default());
    let output = std::fs::read_to_string(&output).with_context(|| format!("cannot read {}", output.display()))?;
    Ok(Measured { output, seconds, peak_rss_kib })
}

/// The whole city as `oshirase run` does it, `repetitions` times: each time with the
/// notices of earlier runs deleted (every notice new) and once more (every notice known).
/// A first run installs the bundled programs into the copy and compiles them, untimed.
fn whole_city(data: &Path, today: Day, repetitions: usize) -> Result<(Vec<ChildRun>, Vec<ChildRun>)> {
    let run = run_directory(data)?;
    run_day_child(&run, today)?;
    let (mut first, mut again) = (Vec::new(), Vec::new());
    for _ in 0..repetitions {
        oshirase_core::database::open(&run.join("oshirase.db"))?
            .execute_batch("DELETE FROM notices; PRAGMA wal_checkpoint(TRUNCATE);")?;
        first.push(run_day_child(&run, today)?);
        again.push(run_day_child(&run, today)?);
    }
    Ok((first, again))
}

/// The slowest program's (a), step by step: the read of its residents' columns and of each
/// kind of record it declares, the instance, and the call.
fn profile(connection: &Connection, program: &ProgramFigures, fields: &[Field], repetitions: usize) -> Result<Profile> {
    let median_of = |read: &dyn Fn() -> Result<()>| -> Result<f64> {
        let seconds = (0..repetitions).map(|_| timed(read).map(|((), seconds)| seconds)).collect::<Result<Vec<_>>>()?;
        Ok(median(&seconds))
    };
    let read = |fields: &[Field]| median_of(&|| load_population(connection, fields, &[]).map(drop));
    let records = [Field::Tax, Field::Pregnancies, Field::Immunizations, Field::Checkups, Field::Receipts];
    let resident_fields: Vec<Field> = fields.iter().copied().filter(|field| !records.contains(field)).collect();
    let ids_only = read(&[])?;
    let mut steps = vec![(format!("read residents: ids and {resident_fields:?}"), read(&resident_fields)?)];
    for field in fields.iter().filter(|field| records.contains(field)) {
        steps.push((format!("read {field:?} (less the ids)"), read(&[*field])? - ids_only));
    }
    steps.push(("instance, call and checks on no one".to_owned(), program.instantiate_seconds));
    steps.push((
        "copying the columns in, the rules, the notices out".to_owned(),
        program.wasm_call_seconds - program.instantiate_seconds,
    ));
    steps.push(("of which the same rules natively".to_owned(), program.native_call_seconds));
    Ok(Profile { program: program.program.clone(), steps })
}

/// Generates and imports the city (or reuses it), compiles every bundled plugin, then
/// repeats each program three ways and one read of every program's columns; then the whole
/// city through `oshirase run`.
pub fn eval(options: &EvalBenchOptions, today: Day) -> Result<EvalBenchReport> {
    std::fs::create_dir_all(&options.work_directory)
        .with_context(|| format!("cannot create {}", options.work_directory.display()))?;
    let data = imported_city(options, today)?;
    let connection = open_read_only(&data)?;
    let engine = PluginEngine::new(Limits::default(), Some(data.join("cache")))?;
    let bundled: Vec<&BundledComponent> = catalogue(BUNDLED).collect();
    let programs: Vec<LoadedProgram> = bundled
        .iter()
        .map(|(name, wasm, _)| {
            engine.load(wasm, &sha256_hex(wasm)).with_context(|| format!("cannot load plugin {name}"))
        })
        .collect::<Result<_>>()?;
    let sql_rules = sql_rules();
    let parameters = sql_parameters(&connection, today)?;
    let repetitions = options.repetitions.max(1);

    // samples[program] = one [load, instantiate, wasm call, native call, sql] per repetition.
    let mut samples: Vec<Vec<[f64; 5]>> = vec![Vec::new(); programs.len()];
    let mut counts = vec![(0, 0, None); programs.len()];
    let mut shared_load_seconds = Vec::new();
    let mut every_field: Vec<Field> = programs.iter().flat_map(|program| program.info.fields.iter().copied()).collect();
    every_field.sort_by_key(|field| *field as u8);
    every_field.dedup();
    let mut every_kind: Vec<String> = programs.iter().flat_map(|program| program.info.kinds.iter().cloned()).collect();
    every_kind.sort();
    every_kind.dedup();
    let mut residents = 0;
    for _ in 0..repetitions {
        for (index, ((name, ..), program)) in bundled.iter().zip(&programs).enumerate() {
            let native = NATIVE
                .iter()
                .find(|(native, _)| native == name)
                .with_context(|| format!("{name} is bundled but not linked natively"))?
                .1;
            let info = &program.info;
            let settings = Settings::defaults(&info.settings);
            let (population, load) = timed(|| Ok(load_population(&connection, &info.fields, &info.kinds)?.population))?;
            residents = population.size;
            let (_, instantiate) = timed(|| Ok(engine.evaluate(program, today, &settings, &Population::default())?))?;
            let (evaluation, wasm_call) = timed(|| {
                engine
                    .evaluate(program, today, &settings, &population)
                    .with_context(|| format!("program {name} failed"))
            })?;
            let (native_notices, native_call) = timed(|| {
                native(today, &settings, &population)
                    .map_err(|message| anyhow::anyhow!("native {name} failed: {message}"))
            })?;
            drop(population);
            let sql = match sql_rules.iter().find(|(program, _)| program == name) {
                Some((_, sql)) => {
                    let (notices, seconds) = timed(|| {
                        run_sql(&connection, sql, &parameters).with_context(|| format!("the SQL rule of {name} failed"))
                    })?;
                    Some((notices.len(), seconds))
                }
                None => None,
            };
            samples[index].push([
                load,
                instantiate,
                wasm_call,
                native_call,
                sql.map_or(f64::NAN, |(_, seconds)| seconds),
            ]);
            counts[index] = (evaluation.notices.len(), native_notices.len(), sql.map(|(count, _)| count));
        }
        let ((), seconds) = timed(|| load_population(&connection, &every_field, &every_kind).map(drop))?;
        shared_load_seconds.push(seconds);
    }
    let peak_rss_one_at_a_time_kib = peak_rss_kib();
    let shared_load_seconds = median(&shared_load_seconds);

    let figures: Vec<ProgramFigures> = bundled
        .iter()
        .zip(samples)
        .zip(counts)
        .map(|(((name, ..), runs), (wasm_notices, native_notices, sql_notices))| {
            let [load, instantiate, wasm_call, native_call, sql] =
                [0, 1, 2, 3, 4].map(|field| median(&runs.iter().map(|run| run[field]).collect::<Vec<_>>()));
            ProgramFigures {
                program: (*name).to_owned(),
                load_seconds: load,
                instantiate_seconds: instantiate,
                wasm_call_seconds: wasm_call,
                native_call_seconds: native_call,
                wasm_seconds: load + wasm_call,
                wasm_in_day_seconds: shared_load_seconds / programs.len() as f64 + wasm_call,
                native_seconds: load + native_call,
                sql_seconds: sql_notices.map(|_| sql),
                wasm_notices,
                native_notices,
                sql_notices,
            }
        })
        .collect();
    let slowest = (0..figures.len())
        .max_by(|left, right| figures[*left].wasm_seconds.total_cmp(&figures[*right].wasm_seconds))
        .context("no bundled programs")?;
    let profile = profile(&connection, &figures[slowest], &programs[slowest].info.fields, repetitions)?;
    drop(programs);
    drop(engine);

    let (first, again) = whole_city(&data, today, repetitions)?;
    let seconds = |runs: &[ChildRun]| median(&runs.iter().map(|run| run.seconds).collect::<Vec<_>>());
    let total = |pick: fn(&ProgramFigures) -> f64| figures.iter().map(pick).sum::<f64>();
    let with_sql = |pick: fn(&ProgramFigures) -> f64| {
        figures.iter().filter(|program| program.sql_seconds.is_some()).map(pick).sum::<f64>()
    };
    Ok(EvalBenchReport {
        residents,
        date: today.to_string(),
        repetitions,
        total_load_seconds: total(|program| program.load_seconds),
        total_wasm_call_seconds: total(|program| program.wasm_call_seconds),
        total_native_call_seconds: total(|program| program.native_call_seconds),
        total_wasm_seconds: total(|program| program.wasm_seconds),
        total_native_seconds: total(|program| program.native_seconds),
        total_wasm_seconds_with_sql: with_sql(|program| program.wasm_seconds),
        total_wasm_in_day_seconds_with_sql: with_sql(|program| program.wasm_in_day_seconds),
        total_sql_seconds: figures.iter().filter_map(|program| program.sql_seconds).sum(),
        programs: figures,
        shared_load_seconds,
        profile,
        whole_city_seconds: seconds(&first),
        whole_city_again_seconds: seconds(&again),
        whole_city_notices: first.first().map_or(0, |run| run.notices),
        whole_city_stored_notices: first.first().map_or(0, |run| run.new_notices),
        whole_city_peak_rss_kib: first.iter().map(|run| run.peak_rss_kib).max().unwrap_or_default(),
        whole_city_again_peak_rss_kib: again.iter().map(|run| run.peak_rss_kib).max().unwrap_or_default(),
        threads: oshirase_core::evaluate::EVALUATION_THREADS,
        peak_rss_one_at_a_time_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program added to the catalogue must be linked natively too, or the benchmark
    /// would silently compare fewer programs than it runs.
    #[test]
    fn every_bundled_program_is_linked_natively() {
        let bundled: Vec<&str> = catalogue(BUNDLED).map(|(name, ..)| *name).collect();
        let native: Vec<&str> = NATIVE.iter().map(|(name, _)| *name).collect();
        assert_eq!(bundled, native);
    }
}
