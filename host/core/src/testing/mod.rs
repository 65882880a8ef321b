//! Fixtures shared by the tests of this crate and of the crates above it: a data
//! directory with a small active snapshot, snapshots written row by row, an export
//! imported, components picked from a binary's list, and the real SMTP server (`smtp`).
//! Compiled for this crate's tests and with the `testing` feature, which only
//! dev-dependencies enable. (A synthetic city, and due notices seeded straight into a
//! database, are `synthetic_city`'s.)

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use oshirase_sandbox::{Limits, PluginEngine};
use oshirase_sdk::Day;
use rusqlite::Connection;

use crate::database::Database;
use crate::publish::{Activation, Candidate, PublishError, Published, list, publish};
use crate::registry::{BundledComponent, Plugins};
use crate::snapshot::Resident;

/// A test data directory with a database, a plugin engine under short limits and an
/// active snapshot of three residents: an adult with a child born 2025-07-31 and a
/// resident born 1969-01-01, whom the measles-rubella programme's first phase concerns.
pub struct Fixture {
    /// Removed with the fixture; tests may put more exports in it.
    pub directory: PathBuf,
    pub database: Database,
    pub plugins: Arc<Plugins>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

impl Fixture {
    /// The fixture with no bundled components.
    pub async fn new() -> Fixture {
        Fixture::with_bundled(&[]).await
    }

    /// The fixture whose plugin registry offers `bundled`, as a binary's would.
    pub async fn with_bundled(bundled: &'static [BundledComponent]) -> Fixture {
        let directory = std::env::temp_dir().join(format!("oshirase-test-{}", uuid::Uuid::new_v4()));
        let export = directory.join("export");
        std::fs::create_dir_all(&export).unwrap();
        std::fs::write(
            export.join("residents.csv"),
            "resident_id,household_id,name,birth_date,sex,relationship\n001,H1,千葉 花子,1990-04-01,2,head\n\
             002,H1,千葉 一郎,2025-07-31,1,child\n003,H2,千葉 次郎,1969-01-01,1,head\n",
        )
        .unwrap();
        let database = Database::open(&directory.join("oshirase.db")).unwrap();
        database.write(move |connection| import(connection, &export)).await.unwrap();
        let limits =
            Limits { memory_bytes: 64 << 20, wall_time: std::time::Duration::from_millis(300), ..Limits::default() };
        let plugins = Arc::new(Plugins::new(PluginEngine::new(limits, None).unwrap(), bundled));
        Fixture { directory, database, plugins }
    }

    pub async fn publish(&self, wasm: Vec<u8>, cases: Option<&str>) -> Result<Published, PublishError> {
        let candidate = Candidate {
            wasm,
            cases: cases.map(str::to_owned),
            publisher: "test".into(),
            program: None,
            activation: Activation::Always,
        };
        publish(&self.database, &self.plugins, candidate).await
    }

    pub fn service(&self) -> crate::service::Service {
        crate::service::Service {
            data_directory: self.directory.clone(),
            database: self.database.clone(),
            plugins: self.plugins.clone(),
            wake_scheduler: Default::default(),
        }
    }

    pub async fn versions(&self) -> Vec<(String, i64, String)> {
        let versions = self.database.write(|connection| list(connection)).await.unwrap();
        versions.into_iter().map(|version| (version.program, version.version, version.state)).collect()
    }
}

/// The same component with a custom section appended: another version, with other
/// bytes and hash, that behaves exactly alike.
pub fn variant(wasm: &[u8], tag: &str) -> Vec<u8> {
    let mut payload = vec![tag.len() as u8];
    payload.extend_from_slice(tag.as_bytes());
    let mut bytes = wasm.to_vec();
    bytes.push(0);
    bytes.push(payload.len() as u8);
    bytes.extend(payload);
    bytes
}

/// The bytes and example cases of the component built from the crate `name`, from a
/// binary's list (`oshirase_bundled::PROGRAMS`, or its `testing::PLUGINS`).
pub fn component(bundled: &[BundledComponent], name: &str) -> (Vec<u8>, &'static str) {
    let (_, wasm, cases) =
        bundled.iter().find(|(found, ..)| *found == name).unwrap_or_else(|| panic!("no component {name} is bundled"));
    (wasm.to_vec(), cases)
}

/// A resident of the snapshot tests: born `birth`, of `household` in `relationship`.
pub fn resident(id: &str, household: &str, birth: &str, relationship: u8) -> Resident {
    Resident {
        resident_id: id.into(),
        household_id: household.into(),
        name: format!("住民{id}"),
        name_kana: String::new(),
        birth_day: Day::parse_iso(birth).unwrap(),
        birth_day_inexact: false,
        sex: 2,
        relationship,
        address: String::new(),
        postal_code: String::new(),
        ward: if id.ends_with('1') { "中央区".into() } else { "美浜区".into() },
        resident_since: None,
    }
}

/// A migrated database in memory.
pub fn database() -> Connection {
    let mut connection = Connection::open_in_memory().unwrap();
    crate::database::migrate(&mut connection).unwrap();
    connection
}

/// Stores `residents` as a new active snapshot and returns its id.
pub fn store(connection: &mut Connection, residents: &[Resident]) -> i64 {
    let transaction = connection.transaction().unwrap();
    let mut writer = crate::snapshot::SnapshotWriter::new(&transaction, "test").unwrap();
    for resident in residents {
        writer.add_resident(resident).unwrap();
    }
    let snapshot_id = writer.finish(&transaction, "", &[]).unwrap();
    crate::snapshot::activate(&transaction, snapshot_id, "test").unwrap();
    transaction.commit().unwrap();
    snapshot_id
}

pub mod smtp;

/// Imports the export in `directory` as the new active snapshot, keeping three
/// generations; a refused export is an error with every problem.
pub fn import(connection: &mut Connection, directory: &std::path::Path) -> Result<()> {
    let options = crate::import::ImportOptions {
        actor: "test".into(),
        source: "test".into(),
        keep_generations: 3,
        max_shrink_percent: None,
        mapping: None,
    };
    match crate::import::import_directory(connection, directory, &options) {
        Ok(_) => Ok(()),
        Err(error) => anyhow::bail!("the test's export in {} was refused: {error:?}", directory.display()),
    }
}
