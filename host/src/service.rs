//! The service as the commands see it: a data directory with its database and plugin
//! engine, and the day's work (evaluate, plan, queue, send) built from the modules.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use oshirase_sdk::Day;

use crate::channel::line::{LineClient, LineConfig};
use crate::database::{Database, audit, now_text};
use crate::evaluate::{PlannedNotice, ProgramRun, dry_run, run_day};
use crate::outbox::{SendSummary, enqueue_due, send_queued};
use crate::plugin::{Limits, PluginEngine};
use crate::registry::{Plugins, active_versions};
use crate::retry::RetryPolicy;

/// An open data directory.
#[derive(Clone)]
pub struct Service {
    pub data_directory: PathBuf,
    pub database: Database,
    pub plugins: Arc<Plugins>,
}

/// What one day's work did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DayReport {
    pub runs: Vec<ProgramRun>,
    pub queued: usize,
    pub sent: SendSummary,
}

/// Today's date in Japan (UTC+9).
pub fn today_in_japan() -> Day {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    Day((seconds + 9 * 3600).div_euclid(86_400) as i32)
}

/// Opens (creating if needed) only the data directory's database, for commands that need
/// no plugins (importing, listing snapshots).
pub fn open_database(data_directory: &Path) -> Result<Database> {
    std::fs::create_dir_all(data_directory).with_context(|| format!("cannot create data directory {}", data_directory.display()))?;
    Database::open(&data_directory.join("oshirase.db"))
}

impl Service {
    /// Opens (creating if needed) the data directory, its database and plugin cache, and
    /// installs the plugins bundled in the binary that it does not have yet: those whose
    /// codes `programs` lists, or all of them when it is empty.
    pub async fn open(data_directory: &Path, programs: &[String]) -> Result<Service> {
        let database = open_database(data_directory)?;
        let cache = data_directory.join("cache");
        let engine = tokio::task::spawn_blocking(move || PluginEngine::new(Limits::default(), Some(cache))).await??;
        let plugins = Arc::new(Plugins::new(engine));
        let service = Service { data_directory: data_directory.to_path_buf(), database, plugins };
        let installed = crate::publish::install_bundled(&service.database, &service.plugins, programs).await?;
        if !installed.is_empty() {
            tracing::info!(programs = ?installed, "installed the bundled programs");
        }
        Ok(service)
    }

    /// Links a resident to a LINE user id, replacing any earlier link.
    pub async fn register(&self, resident_id: String, line_user_id: String) -> Result<()> {
        if !crate::channel::line::is_user_id(&line_user_id) {
            anyhow::bail!("LINE user id {line_user_id:?} is not U followed by 32 lower-case hex digits");
        }
        self.database
            .call(move |connection| {
                let transaction = connection.transaction()?;
                transaction.execute(
                    "INSERT INTO registrations (resident_id, line_user_id, registered_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (resident_id) DO UPDATE SET line_user_id = excluded.line_user_id, active = 1",
                    (&resident_id, &line_user_id, now_text()),
                )?;
                audit(&transaction, "cli", "register", &resident_id, "line")?;
                transaction.commit()?;
                Ok(())
            })
            .await
    }

    /// Evaluates every active program for `today`, plans the notices, queues the due ones
    /// for registered residents, and sends the queue through LINE, retrying as `retry` says.
    pub async fn run_day(&self, today: Day, line: &LineConfig, retry: &RetryPolicy) -> Result<DayReport> {
        let plugins = self.plugins.clone();
        let (runs, queued) = self
            .database
            .call(move |connection| {
                let runs = run_day(connection, &plugins, today)?;
                let queued = enqueue_due(connection, today)?;
                Ok((runs, queued))
            })
            .await?;
        let client = LineClient::new(line.clone())?;
        let sent = send_queued(&self.database, &client, today, retry).await?;
        tracing::info!(%today, queued, sent = sent.sent, retryable = sent.retryable, failed = sent.failed, "day's deliveries done");
        Ok(DayReport { runs, queued, sent })
    }

    /// Evaluates one program on the active snapshot and reports its notices, storing and
    /// sending nothing.
    pub async fn dry_run(&self, program: String, today: Day) -> Result<Vec<PlannedNotice>> {
        let plugins = self.plugins.clone();
        self.database
            .call(move |connection| {
                let versions = active_versions(connection)?;
                let known: Vec<&str> = versions.iter().map(|version| version.program.as_str()).collect();
                let version = versions.iter().find(|version| version.program == program).with_context(|| format!("no active program {program:?} (active: {})", known.join(", ")))?;
                dry_run(connection, &plugins, version, today)
            })
            .await
    }
}
