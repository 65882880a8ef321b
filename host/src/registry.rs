//! The plugin registry: every published version in SQLite, the active one per program,
//! the plugins bundled in the binary, and the compiled programs kept in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use oshirase_sdk::ProgramInfo;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::database::{audit, now_text};
use crate::plugin::{LoadedProgram, PluginEngine};

pub(crate) mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));
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
    pub occasions: Vec<ManifestOccasion>,
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
            occasions: info.occasions.iter().map(|occasion| ManifestOccasion { key: occasion.key.clone(), title: occasion.title.clone(), template: occasion.template.clone() }).collect(),
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

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Every program with an active version, by code.
pub fn active_versions(connection: &Connection) -> Result<Vec<ActiveVersion>> {
    let mut statement = connection.prepare_cached(
        "SELECT v.id, v.program, v.sha256, v.manifest FROM programs p JOIN plugin_versions v ON v.id = p.active_version ORDER BY p.code",
    )?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get::<_, String>(3)?)))?;
    rows.map(|row| {
        let (version_id, program, sha256, manifest) = row?;
        let manifest = serde_json::from_str(&manifest).with_context(|| format!("stored manifest of {program} is unreadable"))?;
        Ok(ActiveVersion { version_id, program, sha256, manifest })
    })
    .collect()
}

/// The plugin engine and the programs it has compiled, by content hash.
pub struct Plugins {
    pub engine: PluginEngine,
    loaded: Mutex<HashMap<String, Arc<LoadedProgram>>>,
}

impl Plugins {
    pub fn new(engine: PluginEngine) -> Plugins {
        Plugins { engine, loaded: Mutex::new(HashMap::new()) }
    }

    /// The compiled program for a stored version, compiling it on first use.
    pub fn get(&self, connection: &Connection, version: &ActiveVersion) -> Result<Arc<LoadedProgram>> {
        if let Some(program) = self.loaded.lock().unwrap().get(&version.sha256) {
            return Ok(program.clone());
        }
        let wasm: Vec<u8> = connection.query_row("SELECT wasm FROM plugin_versions WHERE id = ?1", [version.version_id], |row| row.get(0))?;
        let program = Arc::new(self.engine.load(&wasm, &version.sha256).with_context(|| format!("cannot load plugin {}", version.program))?);
        self.loaded.lock().unwrap().insert(version.sha256.clone(), program.clone());
        Ok(program)
    }

    /// Stores the plugins bundled in this binary that the database does not have yet (of
    /// those `programs` names, or all when it is empty), and activates each for a program
    /// that has no active version. Returns the codes installed.
    pub fn install_bundled(&self, connection: &mut Connection, programs: &[String]) -> Result<Vec<String>> {
        let bundled_names: Vec<&str> = bundled::BUNDLED.iter().map(|(name, ..)| *name).collect();
        if let Some(unknown) = programs.iter().find(|program| !bundled_names.contains(&program.as_str())) {
            anyhow::bail!("there is no bundled program {unknown:?}; the bundled programs are {}", bundled_names.join(", "));
        }
        let mut installed = Vec::new();
        for (crate_name, wasm, _) in bundled::BUNDLED.iter().filter(|(name, ..)| programs.is_empty() || programs.iter().any(|program| program == name)) {
            let sha256 = sha256_hex(wasm);
            let known: bool = connection.query_row("SELECT EXISTS (SELECT 1 FROM plugin_versions WHERE sha256 = ?1)", [&sha256], |row| row.get(0))?;
            if known {
                continue;
            }
            let program = self.engine.load(wasm, &sha256).with_context(|| format!("the bundled plugin {crate_name} does not load"))?;
            let manifest = Manifest::from_info(&program.info);
            let transaction = connection.transaction()?;
            transaction.execute(
                "INSERT INTO plugin_versions (program, sha256, wasm, manifest, published_by, published_at) VALUES (?1, ?2, ?3, ?4, 'bundled', ?5)",
                (&manifest.code, &sha256, wasm, serde_json::to_string(&manifest)?, now_text()),
            )?;
            let version_id = transaction.last_insert_rowid();
            transaction.execute("INSERT INTO programs (code, active_version) VALUES (?1, ?2) ON CONFLICT (code) DO UPDATE SET active_version = coalesce(active_version, excluded.active_version)", (&manifest.code, version_id))?;
            audit(&transaction, "bundled", "publish", &manifest.code, &format!("sha256 {sha256}"))?;
            transaction.commit()?;
            self.loaded.lock().unwrap().insert(sha256, Arc::new(program));
            installed.push(manifest.code);
        }
        Ok(installed)
    }
}
