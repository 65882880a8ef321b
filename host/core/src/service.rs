//! The service as the commands see it: a data directory with its database and plugin
//! engine, and the day's work (evaluate, plan, queue, send) built from the modules.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use oshirase_sdk::Day;
use tokio_util::sync::CancellationToken;

use crate::channel::Channels;
use crate::database::{Database, audit};
use crate::evaluate::{PlannedNotice, ProgramRun, dry_run, run_day};
use crate::outbox::{SendSummary, enqueue_due, send_queued};
use crate::registry::{BundledComponent, Plugins, active_versions};
use crate::retry::RetryPolicy;
use crate::time::now_text;
use oshirase_sandbox::{Limits, PluginEngine};

/// An open data directory.
#[derive(Clone)]
pub struct Service {
    pub data_directory: PathBuf,
    pub database: Database,
    pub plugins: Arc<Plugins>,
    /// Wakes the scheduler before its next planned pass: a send was reserved.
    pub wake_scheduler: Arc<tokio::sync::Notify>,
}

/// What one day's work did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DayReport {
    pub runs: Vec<ProgramRun>,
    pub queued: usize,
    pub sent: SendSummary,
}

/// Opens (creating if needed) only the data directory's database, for commands that need
/// no plugins (importing, listing snapshots).
pub fn open_database(data_directory: &Path) -> Result<Database> {
    std::fs::create_dir_all(data_directory)
        .with_context(|| format!("cannot create data directory {}", data_directory.display()))?;
    let database = Database::open(&data_directory.join("oshirase.db"))?;
    // A database restored from a copy is told apart, and staff are told (`restore`).
    database.write_blocking(|connection| crate::restore::check(data_directory, connection))?;
    Ok(database)
}

impl Service {
    /// Opens (creating if needed) the data directory, its database and plugin cache; a new
    /// one gets the components `bundled` with the binary, those whose codes `programs`
    /// lists or all of them when it is empty (`publish::install_bundled`).
    pub async fn open(
        data_directory: &Path,
        bundled: &'static [BundledComponent],
        programs: &[String],
    ) -> Result<Service> {
        let database = open_database(data_directory)?;
        let cache = data_directory.join("cache");
        let engine = tokio::task::spawn_blocking(move || PluginEngine::new(Limits::default(), Some(cache))).await??;
        let plugins = Arc::new(Plugins::new(engine, bundled));
        let service = Service {
            data_directory: data_directory.to_path_buf(),
            database,
            plugins,
            wake_scheduler: Default::default(),
        };
        let installed = crate::publish::install_bundled(&service.database, &service.plugins, programs).await?;
        if !installed.is_empty() {
            tracing::info!(programs = ?installed, "installed the bundled programs");
        }
        Ok(service)
    }

    /// Links a resident to a LINE user id and/or an e-mail address, replacing any earlier
    /// link, and records which of them notices go to: `channels` is `line`, `mail` or
    /// `both`, by default every one given. An address given but not chosen is the
    /// fallback when LINE cannot deliver.
    pub async fn register(
        &self,
        resident_id: String,
        line_user_id: Option<String>,
        email: Option<String>,
        channels: Option<String>,
    ) -> Result<()> {
        if let Some(line_user_id) = &line_user_id
            && !crate::channel::line::is_user_id(line_user_id)
        {
            anyhow::bail!("LINE user id {line_user_id:?} is not U followed by 32 lower-case hex digits");
        }
        if let Some(email) = &email {
            email
                .parse::<lettre::Address>()
                .map_err(|problem| anyhow::anyhow!("e-mail address is not valid: {problem}"))?;
        }
        let channels = match (channels.as_deref(), &line_user_id, &email) {
            (None, Some(_), Some(_)) => "both",
            (None | Some("line"), Some(_), _) => "line",
            (None | Some("mail"), _, Some(_)) => "mail",
            (Some("both"), Some(_), Some(_)) => "both",
            (None, None, None) => anyhow::bail!("a registration needs a LINE user id or an e-mail address"),
            (Some(chosen @ ("line" | "mail" | "both")), ..) => {
                anyhow::bail!("channels {chosen:?} needs the LINE user id or e-mail address it would send to")
            }
            (Some(other), ..) => anyhow::bail!("channels {other:?} is not line, mail or both"),
        };
        self.database
            .write(move |connection| {
                let transaction = connection.transaction()?;
                transaction.execute(
                    "INSERT INTO registrations (resident_id, line_user_id, email, channels, registered_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (resident_id) DO UPDATE
                     SET line_user_id = excluded.line_user_id, email = excluded.email, channels = excluded.channels,
                     active = 1",
                    (&resident_id, &line_user_id, &email, channels, now_text()),
                )?;
                audit(&transaction, "cli", "register", &resident_id, channels)?;
                transaction.commit()?;
                Ok(())
            })
            .await
    }

    /// Evaluates every active program for `today`, plans the notices, queues the due ones
    /// for registered residents, and sends the queue through `channels`, retrying as
    /// `retry` says.
    pub async fn run_day(&self, today: Day, channels: &Channels, retry: &RetryPolicy) -> Result<DayReport> {
        let runs = run_day(&self.database, self.plugins.clone(), today).await?;
        let queued = self.database.write(move |connection| enqueue_due(connection, today)).await?;
        let sent = self.deliver(channels, today, retry, &CancellationToken::new()).await?;
        tracing::info!(
            %today,
            queued,
            sent = sent.sent,
            retryable = sent.retryable,
            failed = sent.failed,
            "day's deliveries done"
        );
        Ok(DayReport { runs, queued, sent })
    }

    /// Sends the due deliveries of the outbox for `today` (the date in Japan, which decides
    /// what has expired), until done or `stop` is cancelled: the one place that sends, for
    /// `run` and for the scheduler alike.
    pub async fn deliver(
        &self,
        channels: &Channels,
        today: Day,
        retry: &RetryPolicy,
        stop: &CancellationToken,
    ) -> Result<SendSummary> {
        send_queued(&self.database, channels, today, retry, stop).await
    }

    /// Evaluates one program on the active snapshot and reports its notices, storing and
    /// sending nothing.
    pub async fn dry_run(&self, program: String, today: Day) -> Result<Vec<PlannedNotice>> {
        let plugins = self.plugins.clone();
        // On a read connection: a dry run of a whole city takes seconds, and nothing else
        // waits for it.
        self.database
            .read(move |connection| {
                let versions = active_versions(connection)?;
                let known: Vec<&str> = versions.iter().map(|version| version.program.as_str()).collect();
                let version = versions
                    .iter()
                    .find(|version| version.program == program)
                    .with_context(|| format!("no active program {program:?} (active: {})", known.join(", ")))?;
                dry_run(connection, &plugins, version, today)
            })
            .await
    }

    /// Whom a component not yet published would notify on `today`, with its default
    /// settings, on the live snapshot: what `plugin dry-run --wasm` shows a division.
    pub async fn dry_run_unpublished(&self, wasm: Vec<u8>, today: Day) -> Result<Vec<PlannedNotice>> {
        let plugins = self.plugins.clone();
        // Compiling takes seconds; it happens on the blocking pool, before any connection.
        let program = tokio::task::spawn_blocking({
            let plugins = plugins.clone();
            move || plugins.engine.load(&wasm, &crate::hashing::sha256_hex(&wasm))
        })
        .await?
        .context("cannot load the plugin")?;
        self.database
            .read(move |connection| {
                let defaults = oshirase_sdk::Settings::defaults(&program.info.settings);
                crate::evaluate::dry_run_unpublished(connection, &plugins, &program, today, &defaults)
            })
            .await
    }
}
