//! One file per command of `oshirase`, and what they share: the data directory, the
//! bundled programs a new one gets, and reading a date.

pub mod admin;
pub mod backup;
pub mod import;
pub mod line;
pub mod plugin;
pub mod postcards;
pub mod register;
pub mod registration;
pub mod report;
pub mod run;
pub mod scaffold;
pub mod schedule;
pub mod serve;
pub mod snapshot;

use std::path::PathBuf;

use oshirase_core::Day;
use oshirase_core::database::Database;
use oshirase_core::service::Service;

/// The arguments every command takes.
#[derive(clap::Args)]
pub struct Global {
    /// Where the database, plugins and caches live.
    #[arg(long, global = true, env = "OSHIRASE_DATA", default_value = "./oshirase-data")]
    pub data: PathBuf,
    /// Which bundled programs a new data directory is given, by code (comma-separated);
    /// all of them when not set. A data directory that has programs gets no more: `plugin
    /// list` shows the others as available, and `plugin activate PROGRAM` takes one up.
    #[arg(long, global = true, env = "OSHIRASE_PROGRAMS", value_delimiter = ',')]
    pub programs: Vec<String>,
    /// The town this process serves, when one server hosts several (`deploy/oshirase@.service`
    /// sets it to the instance's name): it leads every log line and is shown on the console.
    #[arg(long, global = true, env = "OSHIRASE_TOWN")]
    pub town: Option<String>,
}

impl Global {
    /// The data directory with its plugins, a new one given the bundled programs.
    pub async fn service(&self) -> anyhow::Result<Service> {
        Service::open(&self.data, oshirase_bundled::PROGRAMS, &self.programs).await
    }

    /// Only the data directory's database, for commands that need no plugins.
    pub fn database(&self) -> anyhow::Result<Database> {
        oshirase_core::service::open_database(&self.data)
    }
}

/// A date as `YYYY-MM-DD`.
pub fn parse_day(text: &str) -> Result<Day, String> {
    Day::parse_iso(text).ok_or_else(|| format!("{text:?} is not a date as YYYY-MM-DD"))
}
