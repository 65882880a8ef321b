//! `bench replication`: how much a lost disk costs with Litestream beside the server, with
//! nothing else writing and under the delivery benchmark's write load, in one run. In
//! each repetition a real `litestream replicate` copies the benchmark's database to a file
//! replica while a probe commits a numbered row through the database's one writer every
//! few milliseconds (and, under load, while the outbox sends every queued push to a LINE
//! emulator process with no rate limit, as `bench delivery` does); then Litestream is
//! killed with SIGKILL, the replica is restored, and the lag is how long before the kill
//! the first probe row the restore lacks was committed: what a machine dying at that
//! moment would have lost.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use oshirase_core::channel::Channels;
use oshirase_core::channel::line::{LineClient, LineConfig};
use oshirase_core::database::Database;
use oshirase_core::outbox::send_queued;
use oshirase_core::retry::RetryPolicy;
use oshirase_sdk::Day;
use tokio_util::sync::CancellationToken;

use super::delivery::{EmulatorChild, PUSH_PROGRAM, queue_only, seed_pushes};
use super::{median, remove_database};
use crate::litestream::{Replication, restore};

pub struct ReplicationBenchOptions {
    pub recipients: usize,
    pub repetitions: usize,
    /// Litestream's `sync-interval`, as `deploy/litestream.yml` sets it.
    pub sync_interval: String,
    /// How long the probe writes before the first repetition's kill; each later one kills
    /// a fraction of a second later.
    pub seconds: f64,
    pub work_directory: PathBuf,
}

/// One condition over the repetitions.
#[derive(Debug, Default, serde::Serialize)]
pub struct Condition {
    pub name: String,
    /// How long before the kill the first lost commit was made, per repetition.
    pub lag_milliseconds: Vec<f64>,
    /// Probe rows committed before the kill, per repetition.
    pub probes: Vec<usize>,
    /// Deliveries marked sent before the kill, per repetition (none with no load).
    pub deliveries_sent: Vec<usize>,
}

#[derive(Debug, serde::Serialize)]
pub struct ReplicationBenchReport {
    pub recipients: usize,
    pub sync_interval: String,
    pub seconds: f64,
    pub conditions: Vec<Condition>,
}

impl std::fmt::Display for ReplicationBenchReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let runs = self.conditions.first().map_or(0, |condition| condition.lag_milliseconds.len());
        writeln!(
            formatter,
            "bench replication: Litestream to a file replica, intervals {}, killed {}–{} s after the start; {runs} runs",
            self.sync_interval,
            self.seconds,
            self.seconds + 1.0
        )?;
        writeln!(
            formatter,
            "  {:<48} {:>14} {:>14} {:>8} {:>16}",
            "", "median lag ms", "largest lag ms", "probes", "deliveries sent"
        )?;
        for condition in &self.conditions {
            let probes: Vec<f64> = condition.probes.iter().map(|&probes| probes as f64).collect();
            let sent: Vec<f64> = condition.deliveries_sent.iter().map(|&sent| sent as f64).collect();
            writeln!(
                formatter,
                "  {:<48} {:>14.0} {:>14.0} {:>8.0} {:>16.0}",
                condition.name,
                median(&condition.lag_milliseconds),
                condition.lag_milliseconds.iter().copied().fold(0.0, f64::max),
                median(&probes),
                median(&sent)
            )?;
        }
        if let [idle, loaded] = &self.conditions[..] {
            writeln!(
                formatter,
                "  ratio of the median lags, under load / nothing else writing {:>6.2}",
                median(&loaded.lag_milliseconds) / median(&idle.lag_milliseconds).max(1.0)
            )?;
        }
        Ok(())
    }
}

/// How often the probe commits a row.
const PROBE_INTERVAL: Duration = Duration::from_millis(5);

pub async fn replication(options: &ReplicationBenchOptions) -> Result<ReplicationBenchReport> {
    std::fs::create_dir_all(&options.work_directory)?;
    let emulator = EmulatorChild::start()?;
    let unlimited = std::num::NonZeroU32::new(u32::MAX).expect("not zero");
    let line = LineConfig {
        push_per_second: unlimited,
        multicast_per_second: unlimited,
        ..LineConfig::new(&emulator.base_url, EmulatorChild::TOKEN)
    };
    let mut conditions = vec![
        Condition { name: "nothing else writing".into(), ..Condition::default() },
        Condition { name: "the outbox sending pushes, no rate limit".into(), ..Condition::default() },
    ];
    let repetitions = options.repetitions.max(1);
    for repetition in 0..repetitions {
        // Each repetition kills a little later than the one before, across one second, so
        // that the kills fall at every point of Litestream's cycle, not at one.
        let seconds = options.seconds + repetition as f64 / repetitions as f64;
        for (load, condition) in [false, true].into_iter().zip(conditions.iter_mut()) {
            let channels = load.then(|| LineClient::new(line.clone())).transpose()?;
            let (lag, probes, sent) = kill_and_restore(options, seconds, channels).await?;
            condition.lag_milliseconds.push(lag.as_secs_f64() * 1000.0);
            condition.probes.push(probes);
            condition.deliveries_sent.push(sent);
        }
    }
    Ok(ReplicationBenchReport {
        recipients: options.recipients,
        sync_interval: options.sync_interval.clone(),
        seconds: options.seconds,
        conditions,
    })
}

/// One repetition: a fresh database of queued pushes replicated, the probe (and, given a
/// LINE client, the outbox) writing for `seconds`, Litestream killed, the replica
/// restored. Returns the lag, the probe rows committed and the deliveries sent before the kill.
async fn kill_and_restore(
    options: &ReplicationBenchOptions,
    seconds: f64,
    line: Option<LineClient>,
) -> Result<(Duration, usize, usize)> {
    let work = &options.work_directory;
    let path = work.join("replication.db");
    remove_database(&path)?;
    // Litestream's own state of the last repetition's database, which a new database at
    // the same path must not inherit.
    let state = work.join(".replication.db-litestream");
    if state.exists() {
        std::fs::remove_dir_all(&state)?;
    }
    let database = Database::open(&path)?;
    let recipients = options.recipients;
    database.write(move |connection| seed_pushes(connection, recipients)).await?;
    queue_only(&database, PUSH_PROGRAM).await?;
    database
        .write(|connection| {
            Ok(connection.execute_batch("CREATE TABLE replication_probe (sequence INTEGER PRIMARY KEY)")?)
        })
        .await?;
    let replica = work.join("replica");
    if replica.exists() {
        std::fs::remove_dir_all(&replica)?;
    }
    let interval = options.sync_interval.clone();
    let replication = tokio::task::spawn_blocking(move || Replication::start(&path, &replica, &interval)).await??;

    let stop_sending = CancellationToken::new();
    let sending = line.map(|line| {
        let (database, stop) = (database.clone(), stop_sending.clone());
        tokio::spawn(async move {
            let channels = Channels { line, mail: None, public_url: None };
            send_queued(&database, &channels, Day(0), &RetryPolicy::default(), &stop).await
        })
    });
    let mut committed: Vec<Instant> = Vec::new();
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < until {
        let sequence = committed.len() as i64;
        database
            .write(move |connection| {
                Ok(connection.execute("INSERT INTO replication_probe (sequence) VALUES (?1)", [sequence])?)
            })
            .await?;
        committed.push(Instant::now());
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
    let killed = Instant::now();
    let configuration = replication.configuration.clone();
    drop(replication);
    stop_sending.cancel();
    if let Some(sending) = sending {
        sending.await.context("the outbox task panicked")??;
    }
    let sent: i64 = database
        .write(|connection| {
            Ok(connection.query_row("SELECT count(*) FROM deliveries WHERE state = 'sent'", [], |row| row.get(0))?)
        })
        .await?;

    let restored = work.join("restored.db");
    remove_database(&restored)?;
    anyhow::ensure!(
        restore(&configuration, &work.join("replication.db"), &restored)?,
        "the replica cannot be restored"
    );
    let kept: i64 =
        rusqlite::Connection::open(&restored)?
            .query_row("SELECT count(*) FROM replication_probe", [], |row| row.get(0))?;
    // Rows are committed one after another, so the restore holds the first `kept`.
    let lag = committed.get(kept as usize).map_or(Duration::ZERO, |first_lost| killed.duration_since(*first_lost));
    Ok((lag, committed.len(), sent as usize))
}
