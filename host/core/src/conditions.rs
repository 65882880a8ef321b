//! Programs staff make from conditions, without code: the bundled template component
//! `conditions` (`plugins/conditions`, the shapes of `oshirase_sdk::conditions`) with a
//! definition naming the new program — its code, name, division, wording and conditions as
//! the settings' defaults. The result is published like any component, so it has its own
//! version history, audit, settings page, dry run and rollback; the template itself is never
//! installed as a program.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use oshirase_sandbox::{
    DefinedOccasion, DefinedProgram, Definition, LoadedProgram, category_named, definition_of, with_definition,
};
use oshirase_sdk::{Day, Settings};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use crate::database::Database;
use crate::publish::{Activation, Candidate, PublishError, Published};
use crate::registry::{ManifestSetting, Plugins};
use crate::reports::DryRunSummary;

/// The bundled crate that is the template.
pub const TEMPLATE: &str = "conditions";

/// A program staff make from conditions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewProgram {
    /// Its code, name, division, contact, category and the city's page about it.
    #[serde(flatten)]
    pub program: DefinedProgram,
    /// The notice's title, as staff see it, and its wording, as residents read it.
    pub title: String,
    pub template: String,
    /// The conditions, by setting name, as staff type them; the others keep the template's
    /// defaults.
    #[serde(default)]
    pub conditions: BTreeMap<String, String>,
}

/// What the console's form is made of: the template's conditions (settings) with their
/// types, bounds and defaults, and its default wording.
#[derive(Clone, Debug, Serialize)]
pub struct Form {
    pub conditions: Vec<ManifestSetting>,
    pub occasion_key: String,
    pub template: String,
}

/// The template's bytes, bundled with the running binary.
fn template_component(plugins: &Plugins) -> Result<&'static [u8], PublishError> {
    plugins
        .bundled
        .iter()
        .find(|(name, ..)| *name == TEMPLATE)
        .map(|(_, wasm, _)| *wasm)
        .ok_or_else(|| PublishError::NotFound("this binary bundles no conditions template".into()))
}

/// The template, compiled (once, then from the engine's cache).
async fn template(plugins: &Arc<Plugins>) -> Result<Arc<LoadedProgram>, PublishError> {
    let wasm = template_component(plugins)?;
    let plugins = plugins.clone();
    let loaded = tokio::task::spawn_blocking(move || plugins.load_bytes(wasm))
        .await
        .context("compiling the conditions template panicked")?
        .context("cannot load the conditions template")?;
    Ok(loaded)
}

/// The form's parts.
pub async fn form(plugins: &Arc<Plugins>) -> Result<Form, PublishError> {
    let template = template(plugins).await?;
    let occasion = &template.info.occasions[0];
    Ok(Form {
        conditions: template.info.settings.iter().map(ManifestSetting::from_setting).collect(),
        occasion_key: occasion.key.clone(),
        template: occasion.template.clone(),
    })
}

/// `conditions` over the template's defaults; a name it does not declare or a value its
/// type refuses is refused, named.
fn settings_of(template: &LoadedProgram, conditions: &BTreeMap<String, String>) -> Result<Settings, PublishError> {
    let declared = &template.info.settings;
    let mut settings = Settings::defaults(declared);
    for (name, text) in conditions {
        let setting = declared
            .iter()
            .find(|setting| setting.name == *name)
            .ok_or_else(|| PublishError::Refused(format!("there is no condition {name:?}")))?;
        let value = setting
            .kind
            .parse(text)
            .map_err(|problem| PublishError::Refused(format!("condition {name}: {problem}")))?;
        settings = settings.with(name, value);
    }
    Ok(settings)
}

/// Who a program of these conditions would tell on `today`, counted by ward and age band
/// on the active snapshot; never by name. Stores nothing.
pub async fn dry_run(
    database: &Database,
    plugins: &Arc<Plugins>,
    conditions: BTreeMap<String, String>,
    today: Day,
) -> Result<DryRunSummary, PublishError> {
    let template = template(plugins).await?;
    let settings = settings_of(&template, &conditions)?;
    let plugins = plugins.clone();
    let summary = database
        .read(move |connection| {
            let notices = crate::evaluate::dry_run_unpublished(connection, &plugins, &template, today, &settings)?;
            crate::reports::dry_run(connection, TEMPLATE, notices, today, false)
        })
        .await?;
    Ok(summary)
}

/// Makes and publishes the program `new` describes, active at once, as `actor`. A code
/// that is free makes a new program; the code of a program made from conditions makes its
/// next version (a new name, wording or conditions, kept in its history and rolled back like
/// any); the code of any other program is refused.
pub async fn create(
    database: &Database,
    plugins: &Arc<Plugins>,
    new: NewProgram,
    actor: &str,
) -> Result<Published, PublishError> {
    if category_named(&new.program.category).is_none() {
        return Err(PublishError::Refused(format!("there is no category {:?}", new.program.category)));
    }
    let template = template(plugins).await?;
    settings_of(&template, &new.conditions)?;
    let code = new.program.code.clone();
    let asked = code.clone();
    // The bytes of the program's active version, or of its latest if it is paused.
    let current: Option<Vec<u8>> = database
        .read(move |connection| {
            Ok(connection
                .query_row(
                    "SELECT v.wasm FROM programs p JOIN plugin_versions v
                       ON v.id = COALESCE(p.active_version, (SELECT MAX(id) FROM plugin_versions WHERE program = p.code))
                     WHERE p.code = ?1",
                    [&asked],
                    |row| row.get(0),
                )
                .optional()?)
        })
        .await?;
    if let Some(wasm) = current
        && definition_of(&wasm).map_err(|error| PublishError::Failed(error.into()))?.is_none()
    {
        return Err(PublishError::Refused(format!(
            "program {code:?} was not made from conditions; publish its next version as a component"
        )));
    }
    let definition = Definition {
        program: new.program,
        occasions: vec![DefinedOccasion {
            key: template.info.occasions[0].key.clone(),
            title: new.title,
            template: new.template,
        }],
        settings: new.conditions,
    };
    let wasm = with_definition(template_component(plugins)?, &definition)
        .map_err(|error| PublishError::Refused(format!("{error:#}")))?;
    let candidate = Candidate {
        wasm,
        cases: None,
        publisher: actor.to_owned(),
        program: Some(code),
        activation: Activation::Always,
    };
    crate::publish::publish(database, plugins, candidate).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use oshirase_sandbox::{Limits, PluginEngine};

    fn health_program(code: &str, name: &str) -> DefinedProgram {
        DefinedProgram {
            code: code.into(),
            name: name.into(),
            division: "健康支援課".into(),
            contact: "043-238-9930".into(),
            category: "Health".into(),
            source_url: "https://www.city.chiba.jp/".into(),
        }
    }

    /// Catalogue programs written as conditions, as staff would set them in the console.
    fn as_conditions() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
        vec![
            ("screening-colon", vec![("record-code", "screening-colon")]),
            ("screening-breast", vec![("sex", "女性"), ("record-code", "screening-breast"), ("record-within", "2")]),
            (
                "screening-cervical",
                vec![
                    ("sex", "女性"),
                    ("age-from", "20"),
                    ("record-code", "screening-cervical"),
                    ("record-within", "2"),
                ],
            ),
            (
                "vaccine-pneumo-elderly",
                vec![
                    ("age-counted", "満年齢"),
                    ("age-from", "65"),
                    ("age-to", "65"),
                    ("repeat", "一度だけ"),
                    ("record-code", "vaccine-pneumo-elderly"),
                    ("record-in", "予防接種"),
                    ("record-within", "0"),
                ],
            ),
        ]
    }

    /// Four catalogue programs made again from conditions, through the console's path
    /// (a definition, published), plan the very notices their Rust crates plan on a
    /// generated city — the same residents, 年度, first days and deadlines — on the first
    /// day of the screening season, an ordinary day and its last day.
    #[tokio::test]
    async fn catalogue_programs_made_from_conditions_plan_what_their_crates_plan() {
        let directory = tempfile::tempdir().unwrap();
        let export = directory.path().join("export");
        let generated_on = Day::parse_iso("2026-11-21").unwrap();
        let format = synthetic_city::ExportFormat::own(synthetic_city::FileEncoding::Utf8);
        synthetic_city::generate(4_000, 5, generated_on, &export, format).unwrap();
        let database = Database::open(&directory.path().join("oshirase.db")).unwrap();
        database.write(move |connection| crate::testing::import(connection, &export)).await.unwrap();
        let engine = PluginEngine::new(Limits::default(), None).unwrap();
        let plugins = Arc::new(Plugins::new(engine, oshirase_bundled::PROGRAMS));

        for (catalogue, conditions) in as_conditions() {
            let code = format!("{catalogue}-from-conditions");
            let new = NewProgram {
                program: health_program(&code, &format!("{catalogue} (条件)")),
                title: "お知らせ".into(),
                template: "【{program}】{deadline}までに受診してください。お問い合わせ: {contact}".into(),
                conditions: conditions.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect(),
            };
            let published = create(&database, &plugins, new, "tester").await.unwrap();
            assert!(published.active, "{published:?}");
            let (wasm, _) = crate::testing::component(oshirase_bundled::PROGRAMS, catalogue);
            let crate_program = plugins.load_bytes(&wasm).unwrap();
            for day in ["2026-05-16", "2026-11-21", "2027-02-28"] {
                let today = Day::parse_iso(day).unwrap();
                let (plugins, crate_program, code) = (plugins.clone(), crate_program.clone(), code.clone());
                let (from_crate, from_conditions) = database
                    .read(move |connection| {
                        let defaults = Settings::defaults(&crate_program.info.settings);
                        let planned = |notices: Vec<crate::evaluate::PlannedNotice>| {
                            let mut keys: Vec<_> = notices
                                .into_iter()
                                .map(|notice| (notice.resident_id, notice.instance, notice.send_on, notice.expires_on))
                                .collect();
                            keys.sort();
                            keys
                        };
                        let from_crate = crate::evaluate::dry_run_unpublished(
                            connection,
                            &plugins,
                            &crate_program,
                            today,
                            &defaults,
                        )?;
                        let version = crate::registry::active_version(connection, &code)?.expect("published");
                        let from_conditions = crate::evaluate::dry_run(connection, &plugins, &version, today)?;
                        Ok((planned(from_crate), planned(from_conditions)))
                    })
                    .await
                    .unwrap();
                assert!(from_crate.len() >= 5, "{catalogue} on {day}: only {} notices", from_crate.len());
                assert!(
                    from_crate == from_conditions,
                    "{catalogue} on {day}: {from_crate:?}\nagainst\n{from_conditions:?}"
                );
            }
        }
    }

    /// The code of a program made from conditions makes its next version, with the new
    /// conditions as its defaults; rolling back brings the first conditions back.
    #[tokio::test]
    async fn a_program_made_from_conditions_again_is_its_next_version_and_rolls_back() {
        let fixture = crate::testing::Fixture::with_bundled(oshirase_bundled::PROGRAMS).await;
        let version_with = |age_from: &str| NewProgram {
            program: health_program("screening-new", "検診"),
            title: "お知らせ".into(),
            template: "【{program}】{deadline}まで".into(),
            conditions: [("age-from".to_owned(), age_from.to_owned())].into(),
        };
        let first = create(&fixture.database, &fixture.plugins, version_with("40"), "tester").await.unwrap();
        let second = create(&fixture.database, &fixture.plugins, version_with("50"), "tester").await.unwrap();
        assert!(second.active && second.version > first.version, "{first:?} then {second:?}");
        let age_from = || {
            fixture.database.read(|connection| {
                let version = crate::registry::active_version(connection, "screening-new")?.expect("active");
                let setting = version.manifest.settings.iter().find(|setting| setting.name == "age-from").cloned();
                Ok((version.version_id, setting.expect("declared").default))
            })
        };
        assert_eq!(age_from().await.unwrap(), (second.version, "50".to_owned()));
        let back = fixture
            .database
            .write(|connection| Ok(crate::publish::rollback(connection, "screening-new", "tester")?))
            .await
            .unwrap();
        assert_eq!(back, first.version);
        assert_eq!(age_from().await.unwrap(), (first.version, "40".to_owned()));
    }

    /// Conditions that do not fit the template, and the code of a program not made from
    /// conditions, are refused before anything is published.
    #[tokio::test]
    async fn conditions_the_template_does_not_know_are_refused() {
        let fixture = crate::testing::Fixture::with_bundled(oshirase_bundled::PROGRAMS).await;
        crate::publish::install_bundled(&fixture.database, &fixture.plugins, &["screening-colon".to_owned()])
            .await
            .unwrap();
        let new = |code: &str, condition: (&str, &str)| NewProgram {
            program: health_program(code, "検診"),
            title: "お知らせ".into(),
            template: "【{program}】{deadline}まで".into(),
            conditions: [(condition.0.to_owned(), condition.1.to_owned())].into(),
        };
        let table = [
            (new("screening-new", ("income-limit", "3")), "there is no condition \"income-limit\""),
            (new("screening-new", ("sex", "その他")), "condition sex: \"その他\" is not one of 指定なし, 男性, 女性"),
            (new("screening-colon", ("age-from", "50")), "program \"screening-colon\" was not made from conditions"),
        ];
        for (program, expected) in table {
            let error = create(&fixture.database, &fixture.plugins, program, "tester").await.unwrap_err();
            assert!(error.to_string().contains(expected), "{expected}: {error}");
        }
        assert_eq!(fixture.versions().await.len(), 1, "nothing was published: {:?}", fixture.versions().await);
    }
}
