//! The settings staff give a program (a season's dates, an age band, a fee): stored as text
//! in `program_settings`, checked against the manifest's types with the SDK's own check,
//! read by each run (a change applies from the next run, as a version change does), and
//! recorded in the audit log.

use anyhow::Result;
use oshirase_sdk::{Setting, Settings};
use rusqlite::Connection;

use crate::database::audit;
use crate::registry::{ActiveVersion, ManifestSetting};
use crate::time::now_text;

/// Why settings could not be changed; each names the setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("program {0} has no active version")]
    UnknownProgram(String),
    #[error("program {program} has no setting {name}")]
    UnknownSetting { program: String, name: String },
    #[error("setting {name}: {problem}")]
    Invalid { name: String, problem: String },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<rusqlite::Error> for SettingsError {
    fn from(error: rusqlite::Error) -> SettingsError {
        SettingsError::Failed(error.into())
    }
}

/// A setting with its current value, for the console and the API.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SettingState {
    pub name: String,
    pub label: String,
    pub help: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub value: String,
    pub default: String,
    /// When and by whom it was last set; `None` while it is at its default.
    pub changed_at: Option<String>,
    pub changed_by: Option<String>,
}

/// The stored texts of `program`'s settings, by name.
fn stored(connection: &Connection, program: &str) -> Result<Vec<(String, String, String, String)>> {
    let mut statement = connection.prepare_cached(
        "SELECT name, value, changed_at, changed_by FROM program_settings WHERE program = ?1 ORDER BY name",
    )?;
    let rows = statement.query_map([program], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The values `program` runs with: what staff set, else the default. A stored value the
/// declared type no longer accepts (a new version narrowed a bound) runs at the default,
/// with a warning, until staff set it again.
pub fn values(connection: &Connection, program: &str, declared: &[Setting]) -> Result<Settings> {
    let mut settings = Settings::defaults(declared);
    for (name, text, ..) in stored(connection, program)? {
        let Some(setting) = declared.iter().find(|setting| setting.name == name) else { continue };
        match setting.kind.parse(&text) {
            Ok(value) => settings = settings.with(&name, value),
            Err(problem) => {
                tracing::warn!(%program, setting = %name, %problem, "a stored setting no longer fits its type; using the default")
            }
        }
    }
    Ok(settings)
}

/// The settings as JSON text (`{"season-opens":"05-16"}`), as a run records them.
pub fn to_json(settings: &Settings) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        settings.values().map(|(name, value)| (name.to_owned(), value.to_string().into())).collect();
    serde_json::Value::Object(map).to_string()
}

/// Every declared setting of `program` with its current value.
pub fn list(connection: &Connection, program: &str, declared: &[Setting]) -> Result<Vec<SettingState>> {
    let stored = stored(connection, program)?;
    let current = values(connection, program, declared)?;
    Ok(declared
        .iter()
        .map(|setting| {
            let change = stored.iter().find(|(name, ..)| *name == setting.name);
            SettingState {
                name: setting.name.clone(),
                label: setting.label.clone(),
                help: setting.help.clone(),
                type_name: setting.kind.name().to_owned(),
                value: current.get(&setting.name).map_or_else(|| setting.default.to_string(), ToString::to_string),
                default: setting.default.to_string(),
                changed_at: change.map(|(_, _, at, _)| at.clone()),
                changed_by: change.map(|(_, _, _, by)| by.clone()),
            }
        })
        .collect())
}

/// The settings `version`'s manifest declares, as the SDK reads them. A manifest the
/// registry stored but cannot read back is our fault, hence `anyhow`.
pub fn declared(version: &ActiveVersion) -> Result<Vec<Setting>> {
    version.manifest.settings.iter().map(ManifestSetting::to_setting).collect()
}

/// The active version of `program` and the settings it would run with after `changes`,
/// each checked against its type and nothing stored: what a preview evaluates and what a
/// save first asks the program about.
pub fn proposed_for_active(
    connection: &Connection,
    program: &str,
    changes: &[(String, String)],
) -> Result<(ActiveVersion, Settings), SettingsError> {
    let version = crate::registry::active_version(connection, program)?
        .ok_or_else(|| SettingsError::UnknownProgram(program.to_owned()))?;
    let declared = declared(&version)?;
    let current = values(connection, program, &declared)?;
    let settings = proposed(program, &declared, current, changes)?;
    Ok((version, settings))
}

/// Reads `changes` (name, text as staff typed it) against the declared types: all are
/// checked before any is used, and the first that fails names itself.
pub fn proposed(
    program: &str,
    declared: &[Setting],
    current: Settings,
    changes: &[(String, String)],
) -> Result<Settings, SettingsError> {
    let mut settings = current;
    for (name, text) in changes {
        let setting = declared
            .iter()
            .find(|setting| setting.name == *name)
            .ok_or_else(|| SettingsError::UnknownSetting { program: program.to_owned(), name: name.clone() })?;
        let value =
            setting.kind.parse(text).map_err(|problem| SettingsError::Invalid { name: name.clone(), problem })?;
        settings = settings.with(name, value);
    }
    Ok(settings)
}

/// Stores `changes` for `program` in one transaction, all or none, with one audit line
/// naming each change; returns the settings the next run will use.
pub fn set(
    connection: &mut Connection,
    program: &str,
    declared: &[Setting],
    changes: &[(String, String)],
    actor: &str,
) -> Result<Settings, SettingsError> {
    let current = values(connection, program, declared)?;
    let settings = proposed(program, declared, current.clone(), changes)?;
    let transaction = connection.transaction()?;
    let mut described = Vec::new();
    for (name, _) in changes {
        let value = settings.get(name).map(ToString::to_string).unwrap_or_default();
        let before = current.get(name).map(ToString::to_string).unwrap_or_default();
        transaction.execute(
            "INSERT INTO program_settings (program, name, value, changed_at, changed_by) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (program, name) DO UPDATE SET value = excluded.value, changed_at = excluded.changed_at,
                 changed_by = excluded.changed_by",
            (program, name, &value, now_text(), actor),
        )?;
        described.push(format!("{name}: {before} → {value}"));
    }
    audit(&transaction, actor, "set-settings", program, &described.join(", "))?;
    transaction.commit()?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oshirase_sdk::{MonthDay, SettingType, SettingValue};

    fn declared() -> Vec<Setting> {
        vec![
            Setting::new(
                "season-opens",
                "初日",
                "",
                SettingType::MonthDay,
                SettingValue::MonthDay(MonthDay { month: 5, day: 16 }),
            ),
            Setting::new("fee", "自己負担", "", SettingType::Yen { minimum: 0, maximum: 5000 }, SettingValue::Yen(500)),
        ]
    }

    /// A change is checked whole before anything is stored; a good one is stored with an
    /// audit line and read back by the next run; a bad one changes nothing.
    #[test]
    fn settings_are_checked_stored_audited_and_read_back() {
        let mut connection = crate::testing::database();
        let declared = declared();
        let change = |name: &str, value: &str| vec![(name.to_owned(), value.to_owned())];
        let refused = set(
            &mut connection,
            "screening-colon",
            &declared,
            &[change("fee", "800"), change("fee", "9000")].concat(),
            "clerk",
        )
        .unwrap_err();
        assert_eq!(refused.to_string(), "setting fee: 9000円 is outside 0円..5000円");
        let unknown = set(&mut connection, "screening-colon", &declared, &change("age", "40"), "clerk").unwrap_err();
        assert_eq!(unknown.to_string(), "program screening-colon has no setting age");
        assert_eq!(values(&connection, "screening-colon", &declared).unwrap(), Settings::defaults(&declared));

        set(&mut connection, "screening-colon", &declared, &change("season-opens", "6-1"), "clerk").unwrap();
        let now = values(&connection, "screening-colon", &declared).unwrap();
        assert_eq!(now.month_day("season-opens"), MonthDay { month: 6, day: 1 });
        assert_eq!(now.yen("fee"), 500);
        assert_eq!(to_json(&now), r#"{"fee":"500","season-opens":"06-01"}"#);
        let audit: String = connection
            .query_row("SELECT detail FROM audit_log WHERE action = 'set-settings'", [], |row| row.get(0))
            .unwrap();
        assert_eq!(audit, "season-opens: 05-16 → 06-01");
        let states = list(&connection, "screening-colon", &declared).unwrap();
        assert_eq!(
            states.iter().map(|state| (state.value.as_str(), state.changed_by.as_deref())).collect::<Vec<_>>(),
            vec![("06-01", Some("clerk")), ("500", None)]
        );
    }
}
