//! The plugin registry: every published version in SQLite, the active one per program,
//! the plugins bundled in the binary (handed in by it), and the compiled programs kept in
//! memory. Publishing
//! and activation live in `publish.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use oshirase_sdk::{Day, ProgramInfo, Setting, SettingType};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use oshirase_sandbox::{LoadedProgram, PluginEngine};

/// A component bundled with a binary: (crate name, component bytes, the text of its
/// example cases). The binary hands its list to `Plugins::new`, so that this crate is not
/// rebuilt when a division changes a rule.
pub type BundledComponent = (&'static str, &'static [u8], &'static str);

/// The bundled programs of the catalogue: every bundled component but the conditions
/// template (`conditions::TEMPLATE`), which programs are made from and is never one itself.
pub fn catalogue(bundled: &[BundledComponent]) -> impl Iterator<Item = &BundledComponent> {
    bundled.iter().filter(|(name, ..)| *name != crate::conditions::TEMPLATE)
}

/// A program's manifest as stored beside its bytes, readable without running the plugin.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub code: String,
    pub name: String,
    pub division: String,
    pub contact: String,
    pub category: String,
    pub schedule: String,
    pub source_url: String,
    pub fields: Vec<String>,
    /// The data kinds read by name (1.1; empty for 1.0 plugins and older rows).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// What staff may set (1.1).
    #[serde(default)]
    pub settings: Vec<ManifestSetting>,
    pub occasions: Vec<ManifestOccasion>,
}

/// A setting as the manifest declares it, stored as plain JSON for the console and the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSetting {
    pub name: String,
    pub label: String,
    pub help: String,
    /// `integer`, `yen`, `date`, `month-day`, `text` or `choice`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The bounds of a number (a date's as `YYYY-MM-DD`), the longest text, the choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// The default, as text its type reads.
    pub default: String,
}

impl ManifestSetting {
    pub fn from_setting(setting: &Setting) -> ManifestSetting {
        let (minimum, maximum, choices) = match &setting.kind {
            SettingType::Integer { minimum, maximum } | SettingType::Yen { minimum, maximum } => {
                (Some(minimum.to_string()), Some(maximum.to_string()), Vec::new())
            }
            SettingType::Date { earliest, latest } => {
                (Some(earliest.to_string()), Some(latest.to_string()), Vec::new())
            }
            SettingType::MonthDay => (None, None, Vec::new()),
            SettingType::Text { max_chars } => (None, Some(max_chars.to_string()), Vec::new()),
            SettingType::Choice(choices) => (None, None, choices.clone()),
        };
        ManifestSetting {
            name: setting.name.clone(),
            label: setting.label.clone(),
            help: setting.help.clone(),
            type_name: setting.kind.name().to_owned(),
            minimum,
            maximum,
            choices,
            default: setting.default.to_string(),
        }
    }

    /// The setting's type, read back from the stored JSON.
    pub fn setting_type(&self) -> Result<SettingType> {
        let number = |text: &Option<String>, what: &str| -> Result<i64> {
            text.as_deref()
                .with_context(|| format!("setting {} has no {what}", self.name))?
                .parse()
                .with_context(|| format!("setting {}: its {what} is not a number", self.name))
        };
        let day = |text: &Option<String>, what: &str| -> Result<Day> {
            text.as_deref()
                .and_then(Day::parse_iso)
                .with_context(|| format!("setting {}: its {what} is not a date", self.name))
        };
        Ok(match self.type_name.as_str() {
            "integer" => SettingType::Integer {
                minimum: number(&self.minimum, "minimum")?,
                maximum: number(&self.maximum, "maximum")?,
            },
            "yen" => SettingType::Yen {
                minimum: number(&self.minimum, "minimum")?,
                maximum: number(&self.maximum, "maximum")?,
            },
            "date" => {
                SettingType::Date { earliest: day(&self.minimum, "earliest")?, latest: day(&self.maximum, "latest")? }
            }
            "month-day" => SettingType::MonthDay,
            "text" => {
                SettingType::Text { max_chars: number(&self.maximum, "length")?.clamp(0, i64::from(u32::MAX)) as u32 }
            }
            "choice" => SettingType::Choice(self.choices.clone()),
            other => anyhow::bail!("setting {} has the unknown type {other:?}", self.name),
        })
    }

    /// The setting as the SDK describes it.
    pub fn to_setting(&self) -> Result<Setting> {
        let kind = self.setting_type()?;
        let default = kind
            .parse(&self.default)
            .map_err(|problem| anyhow::anyhow!("setting {}: its default: {problem}", self.name))?;
        Ok(Setting { name: self.name.clone(), label: self.label.clone(), help: self.help.clone(), kind, default })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ManifestOccasion {
    pub key: String,
    pub title: String,
    pub template: String,
}

impl Manifest {
    pub fn from_info(info: &ProgramInfo) -> Manifest {
        Manifest {
            code: info.code.clone(),
            name: info.name.clone(),
            division: info.division.clone(),
            contact: info.contact.clone(),
            category: format!("{:?}", info.category),
            schedule: info.schedule.clone(),
            source_url: info.source_url.clone(),
            fields: info.fields.iter().map(|field| format!("{field:?}")).collect(),
            kinds: info.kinds.clone(),
            settings: info.settings.iter().map(ManifestSetting::from_setting).collect(),
            occasions: info
                .occasions
                .iter()
                .map(|occasion| ManifestOccasion {
                    key: occasion.key.clone(),
                    title: occasion.title.clone(),
                    template: occasion.template.clone(),
                })
                .collect(),
        }
    }

    pub fn occasion(&self, key: &str) -> Option<&ManifestOccasion> {
        self.occasions.iter().find(|occasion| occasion.key == key)
    }
}

/// The active version of one program, as stored.
#[derive(Clone, Debug)]
pub struct ActiveVersion {
    pub version_id: i64,
    pub program: String,
    pub sha256: String,
    pub manifest: Manifest,
}

/// Every program with an active version, by code.
pub fn active_versions(connection: &Connection) -> Result<Vec<ActiveVersion>> {
    read_active(connection, None)
}

/// The active version of `program`; `None` when it has none (unknown or paused).
pub fn active_version(connection: &Connection, program: &str) -> Result<Option<ActiveVersion>> {
    Ok(read_active(connection, Some(program))?.pop())
}

/// The active versions of every program, or of one.
fn read_active(connection: &Connection, program: Option<&str>) -> Result<Vec<ActiveVersion>> {
    let mut statement = connection.prepare_cached(
        "SELECT v.id, v.program, v.sha256, v.manifest FROM programs p JOIN plugin_versions v ON v.id = p.active_version
         WHERE ?1 IS NULL OR p.code = ?1 ORDER BY p.code",
    )?;
    let rows =
        statement.query_map([program], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get::<_, String>(3)?)))?;
    rows.map(|row| {
        let (version_id, program, sha256, manifest) = row?;
        let manifest =
            serde_json::from_str(&manifest).with_context(|| format!("stored manifest of {program} is unreadable"))?;
        Ok(ActiveVersion { version_id, program, sha256, manifest })
    })
    .collect()
}

/// The plugin engine and the programs it has compiled, by content hash.
pub struct Plugins {
    pub engine: PluginEngine,
    /// The components bundled with the running binary, offered to a new data directory
    /// and to staff (`publish::install_bundled`, `available_bundled`).
    pub bundled: &'static [BundledComponent],
    loaded: Mutex<HashMap<String, Arc<LoadedProgram>>>,
}

impl Plugins {
    pub fn new(engine: PluginEngine, bundled: &'static [BundledComponent]) -> Plugins {
        Plugins { engine, bundled, loaded: Mutex::new(HashMap::new()) }
    }

    /// The compiled program for a stored version, compiling it on first use.
    pub fn get(&self, connection: &Connection, version: &ActiveVersion) -> Result<Arc<LoadedProgram>> {
        if let Some(program) = self.loaded.lock().unwrap().get(&version.sha256) {
            return Ok(program.clone());
        }
        let wasm: Vec<u8> =
            connection
                .query_row("SELECT wasm FROM plugin_versions WHERE id = ?1", [version.version_id], |row| row.get(0))?;
        let program = Arc::new(
            self.engine
                .load(&wasm, &version.sha256)
                .with_context(|| format!("cannot load plugin {}", version.program))?,
        );
        self.loaded.lock().unwrap().insert(version.sha256.clone(), program.clone());
        Ok(program)
    }

    /// The program in `wasm`, which no stored version need hold (the conditions template),
    /// compiling it on first use.
    pub fn load_bytes(&self, wasm: &[u8]) -> Result<Arc<LoadedProgram>> {
        let sha256 = crate::hashing::sha256_hex(wasm);
        if let Some(program) = self.loaded.lock().unwrap().get(&sha256) {
            return Ok(program.clone());
        }
        let program = Arc::new(self.engine.load(wasm, &sha256)?);
        self.remember(sha256, program.clone());
        Ok(program)
    }

    /// Keeps a program compiled during publishing, so the next run need not compile it.
    pub fn remember(&self, sha256: String, program: Arc<LoadedProgram>) {
        self.loaded.lock().unwrap().insert(sha256, program);
    }
}
