//! `bench delivery`: queues a notice for each of many registered residents and sends them
//! through the outbox to a LINE emulator process on loopback, and compares the outbox with
//! the bare LINE client sending the same requests without it, in one run.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};
use futures::StreamExt;
use oshirase_sdk::Day;
use rusqlite::Connection;
use synthetic_city::seed_due_notices;
use tokio_util::sync::CancellationToken;

use super::{listening_address, median};
use oshirase_core::channel::Channels;
use oshirase_core::channel::card::{Card, flex_message};
use oshirase_core::channel::line::{LineClient, LineConfig, aggregation_unit};
use oshirase_core::database::Database;
use oshirase_core::outbox::{enqueue_due, send_queued};
use oshirase_core::retry::RetryPolicy;

pub struct DeliveryBenchOptions {
    pub recipients: usize,
    pub repetitions: usize,
    /// Where the benchmark's database is written (replaced on every run).
    pub work_directory: PathBuf,
}

/// One way of sending the same day's deliveries, measured over the repetitions.
#[derive(Debug, Default, serde::Serialize)]
pub struct Scenario {
    pub name: String,
    pub requests: usize,
    pub messages: usize,
    pub seconds: Vec<f64>,
    /// From queued to marked sent, per delivery, in milliseconds: each run's median and
    /// 99th percentile (none for the bare client, which has no queue).
    pub p50_milliseconds: Vec<f64>,
    pub p99_milliseconds: Vec<f64>,
}

impl Scenario {
    fn requests_per_second(&self) -> f64 {
        self.requests as f64 / median(&self.seconds)
    }
}

#[derive(Debug, serde::Serialize)]
pub struct DeliveryBenchReport {
    pub recipients: usize,
    pub scenarios: Vec<Scenario>,
}

impl std::fmt::Display for DeliveryBenchReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let runs = self.scenarios.first().map_or(0, |scenario| scenario.seconds.len());
        writeln!(
            formatter,
            "delivery to {} registered residents through a LINE emulator process on loopback, medians of {runs} runs",
            self.recipients
        )?;
        writeln!(
            formatter,
            "  {:<44} {:>8} {:>8} {:>8} {:>10} {:>11} {:>9} {:>9}",
            "", "requests", "messages", "seconds", "requests/s", "messages/s", "p50 ms", "p99 ms"
        )?;
        for scenario in &self.scenarios {
            let seconds = median(&scenario.seconds);
            let latency =
                |values: &[f64]| if values.is_empty() { "-".to_string() } else { format!("{:.0}", median(values)) };
            writeln!(
                formatter,
                "  {:<44} {:>8} {:>8} {:>8.2} {:>10.0} {:>11.0} {:>9} {:>9}",
                scenario.name,
                scenario.requests,
                scenario.messages,
                seconds,
                scenario.requests_per_second(),
                scenario.messages as f64 / seconds,
                latency(&scenario.p50_milliseconds),
                latency(&scenario.p99_milliseconds)
            )?;
        }
        if let [bare, unlimited, ..] = &self.scenarios[..] {
            writeln!(
                formatter,
                "  ratio outbox / bare client (requests/s, no rate limit) {:>6.2}",
                unlimited.requests_per_second() / bare.requests_per_second()
            )?;
        }
        Ok(())
    }
}

/// The programs the benchmark queues for: each resident has a notice of both, with a
/// text of its own (pushes) or one text for all (multicasts).
pub(super) const PUSH_PROGRAM: &str = "bench-push";
const MULTICAST_PROGRAM: &str = "bench-multicast";

/// Runs the scenarios `repetitions` times, alternating, against one emulator process.
pub async fn delivery(options: &DeliveryBenchOptions) -> Result<DeliveryBenchReport> {
    std::fs::create_dir_all(&options.work_directory)?;
    let path = options.work_directory.join("delivery.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let database = Database::open(&path)?;
    let recipients = options.recipients;
    database.write(move |connection| seed_pushes(connection, recipients)).await?;
    // Each run of a scenario gets a LINE of its own: the retry keys are named by what
    // they deliver, so a LINE that had seen them would answer every request with 409.
    let unlimited = NonZeroU32::new(u32::MAX).unwrap();
    let line_rates = |emulator: &EmulatorChild| LineConfig::new(&emulator.base_url, EmulatorChild::TOKEN);
    let no_limit = |emulator: &EmulatorChild| LineConfig {
        push_per_second: unlimited,
        multicast_per_second: unlimited,
        ..line_rates(emulator)
    };
    let mut scenarios: Vec<Scenario> = [
        "LINE client alone, push, no rate limit",
        "outbox, push, no rate limit",
        "outbox, push, at LINE's rates",
        "outbox, multicast, at LINE's rates",
    ]
    .into_iter()
    .map(|name| Scenario { name: name.into(), ..Scenario::default() })
    .collect();
    for _ in 0..options.repetitions.max(1) {
        // The bare client sends the very requests the outbox would: the queued pushes.
        queue_only(&database, PUSH_PROGRAM).await?;
        let pushes: Vec<(String, serde_json::Value, String)> = database
            .write(|connection| {
                let mut statement =
                    connection.prepare("SELECT address, text, card, retry_key FROM deliveries ORDER BY id")?;
                let rows = statement.query_map([], |row| {
                    let (text, card): (String, Option<String>) = (row.get(1)?, row.get(2)?);
                    Ok((row.get(0)?, text, card, row.get(3)?))
                })?;
                // Each push as the outbox words it: the notice's card, its text as altText.
                rows.map(|row| {
                    let (address, text, card, key) = row?;
                    let card: Card = serde_json::from_str(&card.context("a notice's delivery has a card")?)?;
                    Ok((address, flex_message(&[(&card, &text)]), key))
                })
                .collect::<Result<_>>()
            })
            .await?;
        let emulator = EmulatorChild::start()?;
        let client = LineClient::new(no_limit(&emulator))?;
        let unit = aggregation_unit(PUSH_PROGRAM);
        let start = Instant::now();
        let accepted = futures::stream::iter(&pushes)
            .map(|(address, message, key)| {
                let (client, unit) = (&client, &unit);
                async move { client.send(std::slice::from_ref(address), std::slice::from_ref(message), key, unit).await }
            })
            .buffer_unordered(client.concurrent_requests())
            .filter(|outcome| std::future::ready(*outcome == oshirase_core::channel::SendOutcome::Accepted))
            .count()
            .await;
        anyhow::ensure!(
            accepted == pushes.len(),
            "the emulator accepted {accepted} of {} pushes from the bare client",
            pushes.len()
        );
        let bare = &mut scenarios[0];
        bare.seconds.push(start.elapsed().as_secs_f64());
        (bare.requests, bare.messages) = (pushes.len(), pushes.len());

        for (index, program, limited) in
            [(1, PUSH_PROGRAM, false), (2, PUSH_PROGRAM, true), (3, MULTICAST_PROGRAM, true)]
        {
            queue_only(&database, program).await?;
            let emulator = EmulatorChild::start()?;
            let config = if limited { line_rates(&emulator) } else { no_limit(&emulator) };
            let channels = Channels { line: LineClient::new(config)?, mail: None, public_url: None };
            let start = Instant::now();
            let summary =
                send_queued(&database, &channels, Day(0), &RetryPolicy::default(), &CancellationToken::new()).await?;
            let seconds = start.elapsed().as_secs_f64();
            anyhow::ensure!(
                summary.sent == recipients && summary.waiting == 0,
                "the outbox did not send everything: {summary:?}"
            );
            let (p50, p99) = database.write(latency_percentiles).await?;
            let scenario = &mut scenarios[index];
            scenario.seconds.push(seconds);
            scenario.p50_milliseconds.push(p50);
            scenario.p99_milliseconds.push(p99);
            (scenario.requests, scenario.messages) = (summary.requests, summary.sent);
        }
    }
    Ok(DeliveryBenchReport { recipients, scenarios })
}

/// Seeds `recipients` registered residents, each with a notice of each program, due today.
pub(super) fn seed_pushes(connection: &mut Connection, recipients: usize) -> Result<()> {
    seed_due_notices(connection, recipients, &[(PUSH_PROGRAM, recipients), (MULTICAST_PROGRAM, 0)])
}

/// Empties the outbox and queues the notices of `program` alone (the other program is
/// left without an active version, which `enqueue_due` skips).
pub(super) async fn queue_only(database: &Database, program: &'static str) -> Result<()> {
    database
        .write(move |connection| {
            connection.execute_batch("DELETE FROM deliveries; UPDATE programs SET active_version = NULL;")?;
            connection.execute(
                "UPDATE programs SET active_version = (SELECT id FROM plugin_versions WHERE program = ?1)
                 WHERE code = ?1",
                [program],
            )?;
            enqueue_due(connection, Day(0))?;
            Ok(())
        })
        .await
}

/// The median and 99th percentile of queued → sent over the sent deliveries, in ms.
fn latency_percentiles(connection: &mut Connection) -> Result<(f64, f64)> {
    let mut statement = connection.prepare(
        "SELECT (julianday(sent_at) - julianday(created_at)) * 86400000.0 FROM deliveries WHERE state = 'sent'
         ORDER BY 1",
    )?;
    let latencies: Vec<f64> = statement.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
    anyhow::ensure!(!latencies.is_empty(), "nothing was sent");
    let at = |share: f64| latencies[((latencies.len() - 1) as f64 * share).round() as usize];
    Ok((at(0.5), at(0.99)))
}

/// `oshirase-dev line-emulator` as a child process on a free port, killed when dropped.
pub(super) struct EmulatorChild {
    child: Child,
    pub(super) base_url: String,
}

impl EmulatorChild {
    pub(super) const TOKEN: &str = "bench-token";

    pub(super) fn start() -> Result<EmulatorChild> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["line-emulator", "--port", "0", "--token", EmulatorChild::TOKEN])
            .env("OSHIRASE_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the LINE emulator")?;
        let (base_url, _) = listening_address(&mut child)?;
        let base_url = base_url.context("the LINE emulator did not say where it listens")?;
        Ok(EmulatorChild { child, base_url })
    }
}

impl Drop for EmulatorChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
