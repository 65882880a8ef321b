//! Publishing program plugins: every version is validated before it can become active and
//! kept with the outcome; activation, rollback and disabling move one program's pointer
//! in one transaction. Each action writes an audit line.

use std::sync::Arc;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::channel::line::TEXT_LIMIT;
use crate::database::{Database, audit};
use crate::hashing::sha256_hex;
use crate::registry::{BundledComponent, Manifest, Plugins, catalogue};
use crate::time::now_text;
use oshirase_sandbox::LoadedProgram;

/// Whether an accepted version becomes the active one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Always,
    /// Only when its program has no active version, so a bundled plugin never replaces
    /// what a division published.
    IfNoneActive,
}

/// A plugin offered for publishing.
pub struct Candidate {
    pub wasm: Vec<u8>,
    /// The plugin's example cases (`cases.yaml`), which must all pass.
    pub cases: Option<String>,
    pub publisher: String,
    /// The program code the publisher means to publish, when it said so (the admin API
    /// does); the plugin must then describe itself with that code.
    pub program: Option<String>,
    pub activation: Activation,
}

/// Why a registry action did not happen; the admin API answers with the matching status.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "version {version}{} rejected: {reason}",
        if program.is_empty() { String::new() } else { format!(" of {program:?}") }
    )]
    Rejected { program: String, version: i64, reason: String },
    #[error("these bytes are already version {version} of {program:?}")]
    AlreadyPublished { program: String, version: i64 },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for PublishError {
    fn from(error: rusqlite::Error) -> PublishError {
        PublishError::Failed(error.into())
    }
}

/// An accepted version.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Published {
    pub program: String,
    pub version: i64,
    pub active: bool,
    /// What validation checked.
    pub validation: String,
}

/// The outcome of validating a candidate: the program when it got as far as describing
/// itself, and what passed or why it was rejected.
struct Validation {
    loaded: Option<Arc<LoadedProgram>>,
    outcome: Result<String, String>,
}

/// Validates `candidate` and stores it, accepted or rejected; an accepted version becomes
/// active as `candidate.activation` says. Compiling and evaluating run off the database
/// lock, so runs and requests carry on meanwhile.
pub async fn publish(
    database: &Database,
    plugins: &Arc<Plugins>,
    candidate: Candidate,
) -> Result<Published, PublishError> {
    let sha256 = sha256_hex(&candidate.wasm);
    let known = sha256.clone();
    let existing = database
        .read(move |connection| {
            Ok(connection
                .query_row(
                    "SELECT program, id, accepted, validation FROM plugin_versions WHERE sha256 = ?1",
                    [&known],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()?)
        })
        .await?;
    // The same bytes again: an accepted version is a duplicate; a rejected one is refused
    // again with the reason it was given, which is what its publisher needs to read.
    if let Some((program, version, accepted, reason)) = existing {
        return Err(if accepted {
            PublishError::AlreadyPublished { program, version }
        } else {
            PublishError::Rejected { program, version, reason }
        });
    }
    let candidate = Arc::new(candidate);
    let (engine_plugins, checked, key) = (plugins.clone(), candidate.clone(), sha256.clone());
    let mut validation = tokio::task::spawn_blocking(move || validate(&engine_plugins, &checked, &key))
        .await
        .context("validation panicked")?;
    if let (Some(program), Ok(checks)) = (validation.loaded.clone(), &validation.outcome) {
        let read = program.clone();
        // Reading the whole city takes a while: on a read connection, beside the writer.
        // The program's settings, if staff set any for an earlier version, apply to this one.
        let population = database
            .read(move |connection| match crate::snapshot::active(connection)? {
                Some(_) => {
                    let info = &read.info;
                    let settings = crate::settings::values(connection, &info.code, &info.settings)?;
                    let loaded = crate::evaluate::load_population(connection, &info.fields, &info.kinds)?;
                    Ok(Some((loaded.population, settings)))
                }
                None => Ok(None),
            })
            .await?;
        let checks = checks.clone();
        let sample_plugins = plugins.clone();
        validation.outcome = tokio::task::spawn_blocking(move || match population {
            None => Ok(format!("{checks}; no active snapshot to evaluate")),
            Some((population, settings)) => {
                let size = population.size;
                let today = crate::time::today_in_japan();
                match sample_plugins.engine.evaluate(&program, today, &settings, &population) {
                    Ok(evaluation) => Ok(format!(
                        "{checks}; {} notices for the {size} residents of the active snapshot on {today}",
                        evaluation.notices.len()
                    )),
                    Err(error) => Err(format!("on the {size} residents of the active snapshot: {error:#}")),
                }
            }
        })
        .await
        .context("evaluating the active snapshot panicked")?;
    }
    let (loaded, key) = (validation.loaded.clone(), sha256.clone());
    let published =
        database.write(move |connection| Ok(record(connection, &candidate, &sha256, &validation))).await??;
    // The next run finds the accepted program compiled already.
    if let Some(program) = loaded {
        plugins.remember(key, program);
    }
    Ok(published)
}

/// What the sandbox cannot judge in a manifest, since it knows nothing of messages and
/// schedules: every template uses only the known placeholders and, with the longest
/// deadline and the note a message for several people carries, fits in one LINE text;
/// the schedule is a valid cron expression.
pub fn check_manifest(info: &oshirase_sdk::ProgramInfo) -> Result<(), String> {
    for occasion in &info.occasions {
        if let Err(placeholder) = crate::message::check_template(&occasion.template) {
            return Err(format!("occasion {:?}: unknown placeholder {{{placeholder}}}", occasion.key));
        }
        // The longest deadline the era format writes stands in for the real one.
        let longest = crate::message::render(&occasion.template, &info.name, &info.contact, oshirase_sdk::Day(47_481));
        let longest = crate::message::for_several(&longest, 99).chars().count();
        if longest > TEXT_LIMIT {
            return Err(format!(
                "occasion {:?}: the message has {longest} characters, more than LINE's {TEXT_LIMIT}",
                occasion.key
            ));
        }
    }
    crate::schedule::check(&info.schedule).map_err(|problem| format!("schedule {:?}: {problem}", info.schedule))
}

/// The checks that need no database: the bytes are a component of a compatible version,
/// it describes itself with a valid manifest (and the code the publisher named), and its
/// own example cases pass in the sandbox.
fn validate(plugins: &Plugins, candidate: &Candidate, sha256: &str) -> Validation {
    let program = match plugins.engine.load(&candidate.wasm, sha256) {
        Ok(program) => Arc::new(program),
        Err(error) => return Validation { loaded: None, outcome: Err(error.to_string()) },
    };
    let code = program.info.code.clone();
    if let Err(problem) = check_manifest(&program.info) {
        return Validation {
            loaded: None,
            outcome: Err(format!("not a usable program component: manifest of {code:?}: {problem}")),
        };
    }
    let outcome = (|| {
        if let Some(claimed) = &candidate.program
            && *claimed != code
        {
            return Err(format!("the plugin describes itself as program {code:?}, not {claimed:?}"));
        }
        let Some(yaml) = candidate.cases.as_deref().filter(|yaml| !yaml.trim().is_empty()) else {
            return Ok(format!("oshirase:program@{}, manifest valid, no example cases", program.wit_version));
        };
        let cases =
            oshirase_sdk::cases::parse(yaml).map_err(|error| format!("cannot read the example cases: {error:#}"))?;
        let report = crate::cases::check_loaded(&plugins.engine, &program, &cases);
        if !report.passed() {
            return Err(format!("{} of {} example cases failed:\n{report}", report.failures.len(), report.cases));
        }
        Ok(format!("oshirase:program@{}, manifest valid, {} example cases passed", program.wit_version, report.cases))
    })();
    Validation { loaded: Some(program), outcome }
}

/// Stores a validated candidate, and activates it when it was accepted and its activation
/// says so, in one transaction.
fn record(
    connection: &mut Connection,
    candidate: &Candidate,
    sha256: &str,
    validation: &Validation,
) -> Result<Published, PublishError> {
    let info = validation.loaded.as_ref().map(|program| &program.info);
    let program = candidate.program.clone().or_else(|| info.map(|info| info.code.clone())).unwrap_or_default();
    let manifest = match info {
        Some(info) => serde_json::to_string(&Manifest::from_info(info)).context("cannot write the manifest")?,
        None => "null".to_owned(),
    };
    let wit_version = validation.loaded.as_ref().map_or("", |program| program.wit_version.as_str());
    let (accepted, text) = match &validation.outcome {
        Ok(checks) => (true, checks.as_str()),
        Err(reason) => (false, reason.as_str()),
    };
    let transaction = connection.transaction()?;
    transaction.execute(
        "INSERT INTO plugin_versions (program, sha256, wasm, manifest, published_by, published_at, wit_version,
             accepted, validation)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        (&program, sha256, &candidate.wasm, &manifest, &candidate.publisher, now_text(), wit_version, accepted, text),
    )?;
    let version = transaction.last_insert_rowid();
    let outcome = if accepted { "accepted" } else { "rejected" };
    audit(
        &transaction,
        &candidate.publisher,
        "publish",
        &program,
        &format!("version {version} sha256 {sha256} {outcome}: {text}"),
    )?;
    if !accepted {
        transaction.commit()?;
        return Err(PublishError::Rejected { program, version, reason: text.to_owned() });
    }
    let current = active_version(&transaction, &program)?;
    let active = candidate.activation == Activation::Always || current.is_none();
    if active {
        point(&transaction, &program, Some(version), &candidate.publisher, "activate")?;
    }
    transaction.commit()?;
    Ok(Published { program, version, active, validation: text.to_owned() })
}

fn active_version(connection: &Connection, program: &str) -> rusqlite::Result<Option<i64>> {
    Ok(connection
        .query_row("SELECT active_version FROM programs WHERE code = ?1", [program], |row| row.get(0))
        .optional()?
        .flatten())
}

/// Moves a program's active pointer to `version` (none: disabled), remembering the version
/// it replaces for rollback, and audits the move.
fn point(
    transaction: &Transaction,
    program: &str,
    version: Option<i64>,
    actor: &str,
    action: &str,
) -> Result<(), PublishError> {
    transaction.execute(
        "INSERT INTO programs (code, active_version) VALUES (?1, ?2)
         ON CONFLICT (code) DO UPDATE SET previous_version = coalesce(active_version, previous_version),
         active_version = excluded.active_version",
        (program, version),
    )?;
    let mut detail = version.map_or_else(|| "no active version".to_owned(), |version| format!("version {version}"));
    if let Some(version) = version {
        let manifest: String =
            transaction.query_row("SELECT manifest FROM plugin_versions WHERE id = ?1", [version], |row| row.get(0))?;
        let manifest: Manifest = serde_json::from_str(&manifest).context("a stored manifest is unreadable")?;
        let keys: Vec<&str> = manifest.occasions.iter().map(|occasion| occasion.key.as_str()).collect();
        let rekeyed = rekey_fiscal_years(transaction, program, &keys)?;
        if rekeyed > 0 {
            detail.push_str(&format!(", {rekeyed} stored notices re-keyed to its occasions"));
        }
    }
    audit(transaction, actor, action, program, &detail)?;
    Ok(())
}

/// Keeps a program's stored notices under the keys its newly active version uses, so that
/// no notice is planned (and sent) a second time because a version changed the shape of a
/// recurring occasion. A 1.0 plugin declared one occasion per 年度 (`fy2026`, or
/// `pregnancy-fy2026`, the shape the 1.0 SDK gave them); 1.1 declares it once (`fiscal-year`,
/// `pregnancy`) with the 年度 as the notice's instance. Activating either shape re-keys the
/// stored notices of the other; returns how many were re-keyed.
fn rekey_fiscal_years(transaction: &Transaction, program: &str, keys: &[&str]) -> Result<usize, PublishError> {
    /// The 1.0 prefix of a 1.1 recurring occasion's key.
    fn prefix_of(key: &str) -> String {
        if key == oshirase_sdk::FISCAL_YEAR { "fy".to_owned() } else { format!("{key}-fy") }
    }
    /// A 1.0 per-year key split into its 1.1 key and its year.
    fn split(key: &str) -> Option<(String, i32)> {
        let (head, year) = key.split_at(key.len().checked_sub(4)?);
        let year: i32 = year.parse().ok().filter(|_| year.bytes().all(|byte| byte.is_ascii_digit()))?;
        match head.strip_suffix("fy")? {
            "" => Some((oshirase_sdk::FISCAL_YEAR.to_owned(), year)),
            prefix => Some((prefix.strip_suffix('-')?.to_owned(), year)),
        }
    }
    let mut rekeyed = 0;
    for key in keys {
        rekeyed += match split(key) {
            // A 1.0 shape active again (a rollback): the year's notices take its key.
            Some((recurring, year)) => transaction.execute(
                "UPDATE OR IGNORE notices SET occasion = ?2, instance = 0
                 WHERE program = ?1 AND occasion = ?3 AND instance = ?4",
                (program, key, &recurring, year),
            )?,
            None => transaction.execute(
                "UPDATE OR IGNORE notices SET occasion = ?2, instance = CAST(substr(occasion, ?4) AS INTEGER)
                 WHERE program = ?1 AND instance = 0 AND occasion GLOB ?3 || '[0-9][0-9][0-9][0-9]'",
                (program, key, prefix_of(key), prefix_of(key).len() as i64 + 1),
            )?,
        };
    }
    Ok(rekeyed)
}

/// Makes an accepted version of `program` the active one for the next run.
pub fn activate(connection: &mut Connection, program: &str, version: i64, actor: &str) -> Result<(), PublishError> {
    let transaction = connection.transaction()?;
    let found: Option<(String, bool, String)> = transaction
        .query_row("SELECT program, accepted, validation FROM plugin_versions WHERE id = ?1", [version], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    match found {
        Some((owner, true, _)) if owner == program => {}
        Some((owner, false, reason)) if owner == program => {
            return Err(PublishError::Refused(format!(
                "version {version} of {program:?} was rejected and cannot be activated: {reason}"
            )));
        }
        _ => return Err(PublishError::NotFound(format!("program {program:?} has no version {version}"))),
    }
    point(&transaction, program, Some(version), actor, "activate")?;
    transaction.commit()?;
    Ok(())
}

/// Makes the version that was active before the current one active again; returns it.
/// Rolling back twice returns to where it started.
pub fn rollback(connection: &mut Connection, program: &str, actor: &str) -> Result<i64, PublishError> {
    let transaction = connection.transaction()?;
    let previous: Option<Option<i64>> = transaction
        .query_row("SELECT previous_version FROM programs WHERE code = ?1", [program], |row| row.get(0))
        .optional()?;
    let previous = match previous {
        None => return Err(PublishError::NotFound(format!("no program {program:?} has ever been active"))),
        Some(None) => {
            return Err(PublishError::Refused(format!("program {program:?} has no earlier version to roll back to")));
        }
        Some(Some(previous)) => previous,
    };
    point(&transaction, program, Some(previous), actor, "rollback")?;
    transaction.commit()?;
    Ok(previous)
}

/// Leaves `program` with no active version, so runs skip it until a version is activated.
pub fn disable(connection: &mut Connection, program: &str, actor: &str) -> Result<(), PublishError> {
    let transaction = connection.transaction()?;
    if active_version(&transaction, program)?.is_none() {
        return Err(PublishError::NotFound(format!("program {program:?} has no active version")));
    }
    point(&transaction, program, None, actor, "disable")?;
    transaction.commit()?;
    Ok(())
}

/// One stored version, as `plugin list` and the admin API show it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VersionInfo {
    pub version: i64,
    pub program: String,
    /// `active`, `inactive` or `rejected`.
    pub state: String,
    pub name: String,
    pub division: String,
    pub sha256: String,
    pub wit_version: String,
    pub published_by: String,
    pub published_at: String,
    pub validation: String,
}

/// Every stored version of every program, by program and then newest first.
pub fn list(connection: &Connection) -> anyhow::Result<Vec<VersionInfo>> {
    let mut statement = connection.prepare(
        "SELECT v.id, v.program, CASE WHEN v.accepted = 0 THEN 'rejected' WHEN p.active_version = v.id THEN 'active'
         ELSE 'inactive' END,
                coalesce(json_extract(v.manifest, '$.name'), ''), coalesce(json_extract(v.manifest, '$.division'), ''),
                v.sha256, v.wit_version, v.published_by, v.published_at, v.validation
         FROM plugin_versions v LEFT JOIN programs p ON p.code = v.program ORDER BY v.program, v.id DESC",
    )?;
    let versions = statement
        .query_map([], |row| {
            Ok(VersionInfo {
                version: row.get(0)?,
                program: row.get(1)?,
                state: row.get(2)?,
                name: row.get(3)?,
                division: row.get(4)?,
                sha256: row.get(5)?,
                wit_version: row.get(6)?,
                published_by: row.get(7)?,
                published_at: row.get(8)?,
                validation: row.get(9)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(versions)
}

/// Publishes the plugins bundled in this binary into a new data directory, one whose
/// database has stored no plugin version yet (those `programs` names, or all when it is
/// empty), through the same validation as any other; each becomes active. A data
/// directory that has programs gets none: its city chose them, and any other bundled
/// program (one it did not choose, or one a later release bundles) waits, listed by
/// `available_bundled`, until staff activate it (`activate_bundled`). Returns the codes
/// stored.
pub async fn install_bundled(
    database: &Database,
    plugins: &Arc<Plugins>,
    programs: &[String],
) -> anyhow::Result<Vec<String>> {
    let bundled_names: Vec<&str> = catalogue(plugins.bundled).map(|(name, ..)| *name).collect();
    if let Some(unknown) = programs.iter().find(|program| !bundled_names.contains(&program.as_str())) {
        anyhow::bail!("there is no bundled program {unknown:?}; the bundled programs are {}", bundled_names.join(", "));
    }
    let new = database
        .write(|connection| {
            Ok(connection
                .query_row("SELECT NOT EXISTS (SELECT 1 FROM plugin_versions)", [], |row| row.get::<_, bool>(0))?)
        })
        .await?;
    if !new {
        return Ok(Vec::new());
    }
    let mut installed = Vec::new();
    for (name, wasm, cases) in catalogue(plugins.bundled)
        .filter(|(name, ..)| programs.is_empty() || programs.iter().any(|program| program == name))
    {
        let candidate = Candidate {
            wasm: wasm.to_vec(),
            cases: Some(cases.to_string()),
            publisher: "bundled".into(),
            program: None,
            activation: Activation::IfNoneActive,
        };
        match publish(database, plugins, candidate).await {
            Ok(published) => installed.push(published.program),
            Err(PublishError::AlreadyPublished { .. }) => {}
            Err(PublishError::Rejected { reason, .. }) => {
                tracing::warn!(plugin = name, %reason, "a bundled plugin was rejected")
            }
            Err(error) => {
                return Err(anyhow::Error::from(error).context(format!("cannot install the bundled plugin {name}")));
            }
        }
    }
    Ok(installed)
}

/// The bundled programs whose version in this binary the database does not have: offered
/// to staff, never activated on their own.
pub fn available_bundled(connection: &Connection, bundled: &[BundledComponent]) -> anyhow::Result<Vec<&'static str>> {
    let mut stored = connection.prepare("SELECT 1 FROM plugin_versions WHERE sha256 = ?1")?;
    let mut available = Vec::new();
    for (name, wasm, _) in catalogue(bundled) {
        if !stored.exists([sha256_hex(wasm)])? {
            available.push(*name);
        }
    }
    Ok(available)
}

/// Makes this binary's bundled version of `program` its active one, publishing it first
/// (validated as any other) when the database does not have it: how staff take up an
/// available bundled program.
pub async fn activate_bundled(
    database: &Database,
    plugins: &Arc<Plugins>,
    program: &str,
    actor: &str,
) -> Result<Published, PublishError> {
    let Some((_, wasm, cases)) = catalogue(plugins.bundled).find(|(name, ..)| *name == program) else {
        return Err(PublishError::NotFound(format!("there is no bundled program {program:?}")));
    };
    let candidate = Candidate {
        wasm: wasm.to_vec(),
        cases: Some(cases.to_string()),
        publisher: actor.to_owned(),
        program: Some(program.to_owned()),
        activation: Activation::Always,
    };
    match publish(database, plugins, candidate).await {
        Err(PublishError::AlreadyPublished { program, version }) => {
            let actor = actor.to_owned();
            let program = database
                .write(move |connection| Ok(activate(connection, &program, version, &actor).map(|()| program)))
                .await??;
            Ok(Published { program, version, active: true, validation: format!("version {version}, stored earlier") })
        }
        published => published,
    }
}

#[cfg(test)]
mod tests {
    //! Publishing against a real database, the bundled plugins and the sandbox.

    use oshirase_bundled::PROGRAMS;
    use oshirase_bundled::testing::PLUGINS;
    use oshirase_sdk::Day;

    use super::*;
    use crate::registry::active_versions;
    use crate::testing::{Fixture, component, variant};

    /// A city that chose one program keeps exactly that one whatever command comes next;
    /// the other bundled programs are offered, and become active only when staff say so.
    /// A 1.0 version's occasion per 年度 and a 1.1 version's recurring occasion name the
    /// same notices: activating one over the other re-keys what is stored, so a division
    /// that publishes the 1.1 screening over the 1.0 one sends nobody the year's notice
    /// twice, and a rollback re-keys it back.
    #[tokio::test]
    async fn a_1_1_version_replacing_a_1_0_version_plans_nothing_twice() {
        let fixture = Fixture::new().await;
        let today = Day::parse_iso("2026-06-01").unwrap();
        let (database, plugins) = (fixture.database.clone(), fixture.plugins.clone());
        let stored = || {
            database.read(|connection| {
                let mut statement = connection.prepare("SELECT occasion, instance FROM notices ORDER BY id")?;
                let keys = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i32>(1)?)))?;
                Ok(keys.collect::<Result<Vec<_>, _>>()?)
            })
        };
        let run = || crate::evaluate::run_day(&database, plugins.clone(), today);
        let (_, version_1_0, _) = oshirase_bundled::testing::CONTRACT_1_0[0];
        fixture.publish(version_1_0.to_vec(), None).await.unwrap();
        // Resident 003, born in 1969, can be told: only such notices are stored.
        database
            .write(|connection| {
                Ok(connection
                    .execute("INSERT INTO registrations (resident_id, registered_at) VALUES ('003', 'now')", [])?)
            })
            .await
            .unwrap();
        let first = run().await.unwrap();
        assert_eq!((first[0].notices, first[0].new_notices), (1, 1), "the resident born in 1969 is told");
        assert_eq!(stored().await.unwrap(), vec![("fy2026".to_string(), 0)]);

        let (_, version_1_1, _) = PROGRAMS.iter().find(|(name, ..)| *name == "screening-colon").unwrap();
        fixture.publish(version_1_1.to_vec(), None).await.unwrap();
        assert_eq!(stored().await.unwrap(), vec![(oshirase_sdk::FISCAL_YEAR.to_string(), 2026)]);
        let second = run().await.unwrap();
        assert_eq!((second[0].notices, second[0].new_notices), (1, 0), "the 1.1 version plans nothing new");
        let dry_run_plugins = plugins.clone();
        let dry_run = database
            .read(move |connection| {
                let version = crate::registry::active_version(connection, "screening-colon")?.unwrap();
                crate::evaluate::dry_run(connection, &dry_run_plugins, &version, today)
            })
            .await
            .unwrap();
        assert_eq!((dry_run[0].resident_id.as_str(), dry_run[0].instance), ("003", 2026));

        fixture.database.write(|connection| Ok(rollback(connection, "screening-colon", "test")?)).await.unwrap();
        assert_eq!(stored().await.unwrap(), vec![("fy2026".to_string(), 0)]);
        let third = run().await.unwrap();
        assert_eq!((third[0].notices, third[0].new_notices), (1, 0), "nor does the 1.0 version rolled back to");
    }

    #[tokio::test]
    async fn bundled_programs_install_only_into_a_new_data_directory_and_wait_for_staff_after() {
        let fixture = Fixture::with_bundled(PROGRAMS).await;
        let chosen = install_bundled(&fixture.database, &fixture.plugins, &["vaccine-mr".to_owned()]).await.unwrap();
        assert_eq!(chosen, ["vaccine-mr"]);
        // The next command names no programs: nothing more is installed.
        assert!(install_bundled(&fixture.database, &fixture.plugins, &[]).await.unwrap().is_empty());
        assert_eq!(fixture.versions().await, [("vaccine-mr".to_owned(), 1, "active".to_owned())]);
        let available = fixture.database.write(|connection| available_bundled(connection, PROGRAMS)).await.unwrap();
        // Every bundled program but the one installed and the conditions template, which is
        // never a program of its own.
        assert_eq!(available.len(), PROGRAMS.len() - 2);
        assert!(available.contains(&"infant-checkup") && !available.contains(&"vaccine-mr"), "{available:?}");
        assert!(!available.contains(&crate::conditions::TEMPLATE), "{available:?}");
        // A program staff disabled stays disabled.
        fixture.database.write(|connection| Ok(disable(connection, "vaccine-mr", "test")?)).await.unwrap();
        install_bundled(&fixture.database, &fixture.plugins, &[]).await.unwrap();
        assert_eq!(fixture.versions().await, [("vaccine-mr".to_owned(), 1, "inactive".to_owned())]);
        // Staff take up an available program, and bring the disabled one back.
        let taken = activate_bundled(&fixture.database, &fixture.plugins, "infant-checkup", "staff").await.unwrap();
        assert!(taken.active && taken.program == "infant-checkup", "{taken:?}");
        let again = activate_bundled(&fixture.database, &fixture.plugins, "vaccine-mr", "staff").await.unwrap();
        assert_eq!((again.version, again.active), (1, true));
        let active: Vec<String> = fixture
            .database
            .write(|connection| active_versions(connection))
            .await
            .unwrap()
            .into_iter()
            .map(|version| version.program)
            .collect();
        assert_eq!(active, ["infant-checkup", "vaccine-mr"]);
        let available = fixture.database.write(|connection| available_bundled(connection, PROGRAMS)).await.unwrap();
        assert_eq!(available.len(), PROGRAMS.len() - 3);
        for unknown in ["vaccine-xyz", crate::conditions::TEMPLATE] {
            assert!(matches!(
                activate_bundled(&fixture.database, &fixture.plugins, unknown, "staff").await,
                Err(PublishError::NotFound(_))
            ));
        }
    }

    #[tokio::test]
    async fn versions_are_kept_and_the_pointer_moves_by_activate_rollback_and_disable() {
        let fixture = Fixture::new().await;
        let (wasm, cases) = component(PROGRAMS, "vaccine-mr");
        let first = fixture.publish(wasm.clone(), Some(cases)).await.unwrap();
        assert!(
            first.active
                && first.validation.contains("example cases passed")
                && first.validation.contains("3 residents of the active snapshot"),
            "{first:?}"
        );
        let second = fixture.publish(variant(&wasm, "v2"), Some(cases)).await.unwrap();
        let (one, two) = (first.version, second.version);
        let program = || "vaccine-mr".to_owned();
        assert_eq!(fixture.versions().await, [(program(), two, "active".into()), (program(), one, "inactive".into())]);
        match fixture.publish(variant(&wasm, "v2"), None).await {
            Err(PublishError::AlreadyPublished { version, .. }) => assert_eq!(version, two),
            other => panic!("the same bytes twice must be refused: {other:?}"),
        }

        let active = |fixture: &Fixture| {
            let database = fixture.database.clone();
            async move {
                database
                    .write(|connection| {
                        Ok(active_versions(connection)?.iter().map(|version| version.version_id).collect::<Vec<_>>())
                    })
                    .await
                    .unwrap()
            }
        };
        let rolled_back =
            fixture.database.write(|connection| Ok(rollback(connection, "vaccine-mr", "test")?)).await.unwrap();
        assert_eq!((rolled_back, active(&fixture).await), (one, vec![one]));
        fixture.database.write(|connection| Ok(rollback(connection, "vaccine-mr", "test")?)).await.unwrap();
        assert_eq!(active(&fixture).await, [two]);
        fixture.database.write(|connection| Ok(disable(connection, "vaccine-mr", "test")?)).await.unwrap();
        assert_eq!(active(&fixture).await, Vec::<i64>::new(), "a disabled program is not run");
        fixture.database.write(|connection| Ok(rollback(connection, "vaccine-mr", "test")?)).await.unwrap();
        assert_eq!(active(&fixture).await, [two], "rollback after disable brings the disabled version back");
        fixture.database.write(move |connection| Ok(activate(connection, "vaccine-mr", one, "test")?)).await.unwrap();
        assert_eq!(active(&fixture).await, [one]);
        let missing =
            fixture.database.write(|connection| Ok(activate(connection, "vaccine-mr", 999, "test"))).await.unwrap();
        assert_eq!(missing.unwrap_err().to_string(), "program \"vaccine-mr\" has no version 999");

        let actions: Vec<String> = fixture
            .database
            .write(|connection| {
                Ok(connection
                    .prepare("SELECT action FROM audit_log WHERE subject = 'vaccine-mr' ORDER BY id")?
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(
            actions,
            ["publish", "activate", "publish", "activate", "rollback", "rollback", "disable", "rollback", "activate"]
        );
    }

    /// Publishes each candidate and checks it is stored as rejected with a reason that
    /// contains the expected words, while the active version stays as it was.
    #[tokio::test]
    async fn a_plugin_failing_any_check_is_stored_as_rejected_with_the_reason() {
        let fixture = Fixture::new().await;
        let (wasm, cases) = component(PROGRAMS, "vaccine-mr");
        let active = fixture.publish(wasm.clone(), Some(cases)).await.unwrap().version;
        let wrong_case = "cases:\n  - name: 1期の期限を一日違えた\n    today: 2026-07-30\n    people:\n      \
                          - { id: 子, birth: 2025-07-31 }\n    expect:\n      - { person: 子, occasion: phase-1, \
                          send_on: 2026-07-30, expires_on: 2027-07-29 }\n";
        // Bytes that look random but are the same on every run.
        let random: Vec<u8> = (0..256u32).map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        // (what, bytes, example cases, the program the publisher names, the reason expected)
        type Case<'a> = (&'a str, Vec<u8>, Option<&'a str>, Option<&'a str>, &'a str);
        let candidates: [Case; 7] = [
            ("random bytes", random, None, None, "256 bytes that are not WebAssembly (no \\0asm header)"),
            (
                "a core module",
                b"\0asm\x01\0\0\0".to_vec(),
                None,
                None,
                "this is a core WebAssembly module, not a component: build the plugin with --target wasm32-wasip2",
            ),
            (
                "another world version",
                component(PLUGINS, "future-world").0,
                None,
                None,
                "built for oshirase:program@2.0.0, but this host implements oshirase:program@1.1.0",
            ),
            ("a broken component", b"\0asm\x0d\0\x01\0\xff".to_vec(), None, None, "not a valid component"),
            (
                "an import the host does not provide",
                component(PLUGINS, "stranger-import").0,
                None,
                None,
                "component imports instance `oshirase:stranger/backdoor`",
            ),
            ("a failing example case", variant(&wasm, "wrong"), Some(wrong_case), None, "1 of 1 example cases failed"),
            (
                "someone else's program",
                component(PLUGINS, "hostile").0,
                None,
                Some("vaccine-mr"),
                "the plugin describes itself as program \"hostile\", not \"vaccine-mr\"",
            ),
        ];
        let mut failures = Vec::new();
        for (what, wasm, cases, program, expected) in candidates {
            let candidate = Candidate {
                wasm,
                cases: cases.map(str::to_owned),
                publisher: "test".into(),
                program: program.map(str::to_owned),
                activation: Activation::Always,
            };
            match publish(&fixture.database, &fixture.plugins, candidate).await {
                Err(PublishError::Rejected { reason, .. }) if reason.contains(expected) => {}
                other => failures.push(format!("{what}: expected a rejection containing {expected:?}, got {other:?}")),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        // The same rejected bytes again are refused with the reason they were given, and
        // stored once (the count below).
        let again = Candidate {
            wasm: variant(&wasm, "wrong"),
            cases: Some(wrong_case.to_owned()),
            publisher: "test".into(),
            program: None,
            activation: Activation::Always,
        };
        match publish(&fixture.database, &fixture.plugins, again).await {
            Err(PublishError::Rejected { reason, .. }) if reason.contains("1 of 1 example cases failed") => {}
            other => panic!("the same rejected bytes again: {other:?}"),
        }
        let versions = fixture.versions().await;
        assert_eq!(versions.iter().filter(|(.., state)| state == "rejected").count(), 7, "{versions:?}");
        assert_eq!(
            versions.iter().filter(|(.., state)| state == "active").map(|(_, version, _)| *version).collect::<Vec<_>>(),
            [active]
        );
        let rejected =
            versions.iter().find(|(program, _, state)| program == "vaccine-mr" && state == "rejected").unwrap().1;
        let refused = fixture
            .database
            .write(move |connection| Ok(activate(connection, "vaccine-mr", rejected, "test")))
            .await
            .unwrap();
        assert!(
            matches!(refused, Err(PublishError::Refused(ref message))
                if message.contains("was rejected and cannot be activated")),
            "{refused:?}"
        );
    }

    /// Two runs of the same day with a swap between them: the second run uses the new
    /// version without any restart, and the unique key keeps every notice exactly once.
    #[tokio::test]
    async fn a_swap_between_two_runs_of_a_day_neither_doubles_nor_loses_a_notice() {
        let fixture = Fixture::new().await;
        let (wasm, cases) = component(PROGRAMS, "vaccine-mr");
        let first = fixture.publish(wasm.clone(), Some(cases)).await.unwrap().version;
        let today = Day::parse_iso("2026-07-30").unwrap();
        // The child's parent is registered, so the child's notice is stored.
        fixture
            .database
            .write(|connection| {
                Ok(connection
                    .execute("INSERT INTO registrations (resident_id, registered_at) VALUES ('001', 'now')", [])?)
            })
            .await
            .unwrap();
        let run = || crate::evaluate::run_day(&fixture.database, fixture.plugins.clone(), today);
        let notices = |connection: &mut Connection| -> anyhow::Result<Vec<(String, String, i64)>> {
            Ok(connection
                .prepare("SELECT resident_id, occasion, run_id FROM notices ORDER BY resident_id, occasion")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<Result<_, _>>()?)
        };

        let morning = run().await.unwrap();
        assert_eq!((morning[0].notices, morning[0].new_notices), (1, 1), "{morning:?}");
        let before = fixture.database.write(notices).await.unwrap();
        let second = fixture.publish(variant(&wasm, "v2"), Some(cases)).await.unwrap().version;

        // A run resolves every program's version once, at its start: one resolved before
        // the swap keeps the first version even when it evaluates after it.
        let resolved = fixture.database.write(|connection| active_versions(connection)).await.unwrap();
        assert_eq!(resolved.iter().map(|version| version.version_id).collect::<Vec<_>>(), [second]);
        let evening = run().await.unwrap();
        assert_eq!((evening[0].notices, evening[0].new_notices, &evening[0].error), (1, 0, &None), "{evening:?}");
        let after = fixture.database.write(notices).await.unwrap();
        assert_eq!(after, before, "the second run neither adds nor replaces a notice");
        let versions_run: Vec<i64> = fixture
            .database
            .write(|connection| {
                Ok(connection
                    .prepare("SELECT version_id FROM runs ORDER BY id")?
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(versions_run, [first, second], "the swap took effect for the next run, without a restart");
    }

    /// Each misbehaviour of the hostile plugin fails its own run with a clear reason in the
    /// run log, while the measles-rubella programme in the same run plans its notice.
    #[tokio::test]
    async fn a_hostile_plugin_fails_only_its_own_run() {
        let fixture = Fixture::new().await;
        let (wasm, cases) = component(PROGRAMS, "vaccine-mr");
        fixture.publish(wasm, Some(cases)).await.unwrap();
        fixture.publish(component(PLUGINS, "hostile").0, None).await.unwrap();
        let misbehaviours = [
            (0, "interrupt"),
            (1, "memory"),
            (2, "notice for person 8 in a population of 3"),
            (9, "out of bounds memory access"),
            (11, "notices for 3 people (at most 1024)"),
            (12, "unreachable"),
            (13, "the rules are broken"),
        ];
        let mut failures = Vec::new();
        for (day, expected) in misbehaviours {
            let runs = crate::evaluate::run_day(&fixture.database, fixture.plugins.clone(), Day(day)).await.unwrap();
            let message: Option<String> = fixture
                .database
                .write(|connection| {
                    Ok(connection.query_row(
                        "SELECT message FROM runs WHERE program = 'hostile' ORDER BY id DESC LIMIT 1",
                        [],
                        |row| row.get(0),
                    )?)
                })
                .await
                .unwrap();
            let hostile = runs.iter().find(|run| run.program == "hostile").unwrap();
            let measles = runs.iter().find(|run| run.program == "vaccine-mr").unwrap();
            if !(hostile.error.as_deref().is_some_and(|error| error.contains(expected))
                && message.as_deref().is_some_and(|message| message.contains(expected)))
            {
                failures.push(format!("day {day}: expected {expected:?}, got {:?}", hostile.error));
            }
            if measles.error.is_some() || measles.notices != 1 {
                failures.push(format!("day {day}: vaccine-mr was disturbed: {measles:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// What the sandbox leaves to publishing: the texts and the schedule. Each fault is
    /// refused with what is wrong.
    #[test]
    fn a_manifest_whose_texts_or_schedule_are_wrong_is_refused() {
        let valid = || oshirase_sdk::ProgramInfo {
            code: "vaccine-mr".into(),
            name: "麻しん風しん".into(),
            division: "健康支援課".into(),
            contact: "043-000-0000".into(),
            category: oshirase_sdk::Category::Vaccination,
            schedule: "0 0 9 * * *".into(),
            source_url: String::new(),
            fields: vec![oshirase_sdk::Field::BirthDay],
            kinds: Vec::new(),
            settings: Vec::new(),
            occasions: vec![oshirase_sdk::Occasion {
                key: "phase-1".into(),
                title: "1期".into(),
                template: "【{program}】{deadline}まで。{contact}".into(),
            }],
        };
        assert_eq!(check_manifest(&valid()), Ok(()));
        let occasion =
            |key: &str, template: String| oshirase_sdk::Occasion { key: key.into(), title: String::new(), template };
        type Spoil = Box<dyn Fn(&mut oshirase_sdk::ProgramInfo)>;
        let table: [(&str, Spoil); 3] = [
            (
                "occasion \"phase-2\": unknown placeholder {name}",
                Box::new(move |info| info.occasions.push(occasion("phase-2", "{name}さん".into()))),
            ),
            // 4,979 characters and the 22 of the note a message for 99 people carries.
            (
                "occasion \"long\": the message has 5001 characters, more than LINE's 5000",
                Box::new(move |info| info.occasions.push(occasion("long", "あ".repeat(4979)))),
            ),
            (
                "schedule \"daily\": 1 fields, expected 5 or 6 (second minute hour day-of-month month day-of-week)",
                Box::new(|info| info.schedule = "daily".into()),
            ),
        ];
        for (expected, spoil) in table {
            let mut info = valid();
            spoil(&mut info);
            assert_eq!(check_manifest(&info), Err(expected.to_owned()));
        }
    }
}
