//! Benchmarks, printed as medians of repeated runs: `bench import` times the real
//! `oshirase import` of a synthetic city against the `sqlite3` shell's own `.import` of
//! the same `residents.csv` into a plain table, as a ratio in one run; `bench plugins`
//! times publishing each bundled plugin, instantiating it, and evaluating a whole city;
//! `bench delivery` (in `delivery.rs`) sends through the outbox to a LINE emulator process;
//! `bench webhook` times signed webhook requests over loopback and the worker's
//! processing of their events, replies to an emulator included;
//! `bench eval` (in `eval.rs`) runs every program as a plugin, natively and as SQL;
//! `bench python` (in `python.rs`) measures a component built in Python beside the Rust one;
//! `bench abuse` (in `abuse.rs`) floods a real server with sign-ins and measures the rest;
//! `bench towns` (in `towns.rs`) measures what a town costs a shared server and how many
//! it holds; `bench replication` (in `replication.rs`) how far Litestream's replica lags;
//! `bench uptake` (in `uptake.rs`) measures uptake between two exports of a whole city.

pub mod abuse;
pub mod delivery;
pub mod eval;
pub mod python;
pub mod replication;
pub mod towns;
pub mod uptake;

use std::path::{Path, PathBuf};

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use oshirase_sdk::Day;

use oshirase_core::time::today_in_japan;
use synthetic_city::{ExportFormat, FileEncoding, Layout, generate};

/// What the benchmarks over a synthetic city share: which city, how often, where, for
/// which day, and how to print.
#[derive(clap::Args)]
pub struct CityBenchArguments {
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    /// Where the city and its data directories go; the city is reused when already there.
    #[arg(long, default_value = "./oshirase-bench")]
    work: PathBuf,
    /// The date to evaluate for (YYYY-MM-DD); today in Japan by default.
    #[arg(long, value_parser = crate::parse_day)]
    date: Option<Day>,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
pub enum Benchmark {
    /// Publishes every bundled plugin into a fresh data directory holding a synthetic
    /// city, and times publish → active, instantiation and whole-city evaluation.
    Plugins {
        #[arg(long, default_value_t = 100_000)]
        residents: usize,
        #[command(flatten)]
        city: CityBenchArguments,
    },
    /// Runs every catalogue program over a whole city three ways in one run: the plugin
    /// through the host path, the same crate linked natively, the rule as SQL where written.
    Eval {
        #[arg(long, default_value_t = 1_000_000)]
        residents: usize,
        #[command(flatten)]
        city: CityBenchArguments,
    },
    /// Measures a component built another way (Python, by componentize-py) beside the
    /// bundled Rust program of the same code on one city, in one run: size, compile time,
    /// the call in the sandbox and its linear memory, and `oshirase plugin dry-run --wasm`
    /// as a child (wall time, peak RSS), Python's over Rust's.
    Python {
        /// The component to measure.
        #[arg(long)]
        wasm: PathBuf,
        /// The bundled program to compare with; the component's own code by default.
        #[arg(long)]
        program: Option<String>,
        /// An imported data directory to measure on instead of the generated city (only
        /// read: the dry runs run on a copy in the work directory).
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long, default_value_t = 1_000_000)]
        residents: usize,
        #[command(flatten)]
        city: CityBenchArguments,
    },
    /// Measures uptake for every program between two exports of a whole city (`oshirase
    /// report uptake` as a child: wall time and peak RSS), and times the console's read of
    /// the stored result.
    Uptake {
        #[arg(long, default_value_t = 1_000_000)]
        residents: usize,
        /// The windows opened in this many days up to the city's date are measured.
        #[arg(long, default_value_t = 30)]
        period_days: i32,
        #[arg(long, default_value_t = 60)]
        within_days: u32,
        #[command(flatten)]
        city: CityBenchArguments,
    },
    /// Queues a notice for each of many registered residents and sends them through the
    /// outbox to a LINE emulator process, beside the bare LINE client sending the same.
    Delivery {
        #[arg(long, default_value_t = 100_000)]
        recipients: usize,
        #[arg(long, default_value_t = 3)]
        repetitions: usize,
        #[arg(long, default_value = "./oshirase-bench")]
        work: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Sends signed LINE webhook requests to the real routes over loopback and times
    /// receiving them (signature, storage) and processing them (replies included).
    Webhook {
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        #[arg(long, default_value_t = 1)]
        events_per_request: usize,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 3)]
        repetitions: usize,
        #[arg(long, default_value = "./oshirase-bench")]
        work: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Floods a real `serve --config` with sign-ins of unknown logins from N loops (after a
    /// phase with none) and measures, one request at a time, signed webhook requests and an
    /// authenticated admin GET (p50, p99), and the server's peak memory.
    Abuse {
        /// The server binaries to measure in this run (this one when not given), e.g. an
        /// earlier release beside this one.
        #[arg(long = "server")]
        servers: Vec<PathBuf>,
        /// The flooding loops of each phase after the unflooded one.
        #[arg(long, value_delimiter = ',', default_value = "8,32,64")]
        loops: Vec<usize>,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value = "./oshirase-bench")]
        work: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Kills Litestream while a probe commits rows, with nothing else writing and while
    /// the outbox sends, restores its replica, and prints how long before the kill the
    /// first lost commit was made (the replica's lag), medians of repeated runs.
    Replication {
        /// The queued pushes the outbox sends under load: enough that it is still sending
        /// when Litestream is killed.
        #[arg(long, default_value_t = 60_000)]
        recipients: usize,
        #[arg(long, default_value_t = 7)]
        repetitions: usize,
        /// Litestream's monitor-interval and sync-interval.
        #[arg(long, default_value = "1s")]
        sync_interval: String,
        /// How long the probe writes before the kill, in seconds.
        #[arg(long, default_value_t = 2.5)]
        seconds: f64,
        #[arg(long, default_value = "./oshirase-bench")]
        work: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Measures towns as a shared server runs them: per town size, the idle memory of
    /// `serve --config` and the wall time and peak memory of a day's `oshirase run`; then
    /// N towns side by side, their idle serves and every town's day run a few at a time.
    Towns {
        /// The town sizes measured one by one, in residents.
        #[arg(long, value_delimiter = ',', default_value = "5000,20000,100000")]
        sizes: Vec<usize>,
        /// How many towns run side by side, one measurement per number.
        #[arg(long, value_delimiter = ',', default_value = "10,50")]
        towns: Vec<usize>,
        /// The size of each town run side by side.
        #[arg(long, default_value_t = 20_000)]
        town_residents: usize,
        /// How many towns' days run at once when side by side (their schedules staggered).
        #[arg(long, default_value_t = 2)]
        concurrent_runs: usize,
        #[command(flatten)]
        city: CityBenchArguments,
    },
    /// Imports a synthetic city with `oshirase import` and with the `sqlite3` shell's
    /// `.import`, alternating, and prints the medians and their ratio.
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        residents: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 5)]
        repetitions: usize,
        /// The resident file's layout: our own residents.csv, or the national standard's
        /// resident_table.csv, which sqlite3 then imports as it is.
        #[arg(long, value_enum, default_value_t = crate::ResidentLayout::Own)]
        layout: crate::ResidentLayout,
        /// Where the city and the databases go; the city is reused when already there.
        #[arg(long, default_value = "./oshirase-bench")]
        work: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Posts one signed body to a LINE webhook, as LINE does; an answer other than 2xx fails.
async fn post_to_webhook(client: &reqwest::Client, url: &str, signature: String, body: String) -> Result<()> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-line-signature", signature)
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "the webhook answered {}", response.status());
    Ok(())
}

/// Prints a benchmark's report as its table, or as one line of JSON.
fn print_report(report: &(impl serde::Serialize + std::fmt::Display), json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

/// Runs one benchmark and prints its report.
pub async fn run(benchmark: Benchmark) -> Result<()> {
    match benchmark {
        Benchmark::Plugins { residents, city } => {
            let options = PluginBenchOptions {
                residents,
                seed: city.seed,
                repetitions: city.repetitions,
                work_directory: city.work,
            };
            print_report(&plugins(&options, city.date.unwrap_or_else(today_in_japan)).await?, city.json)
        }
        Benchmark::Eval { residents, city } => {
            let options = eval::EvalBenchOptions {
                residents,
                seed: city.seed,
                repetitions: city.repetitions,
                work_directory: city.work,
            };
            let today = city.date.unwrap_or_else(today_in_japan);
            print_report(&tokio::task::spawn_blocking(move || eval::eval(&options, today)).await??, city.json)
        }
        Benchmark::Python { wasm, program, data, residents, city } => {
            let options = python::PythonBenchOptions {
                wasm,
                program,
                data,
                residents,
                seed: city.seed,
                repetitions: city.repetitions,
                work_directory: city.work,
            };
            let today = city.date.unwrap_or_else(today_in_japan);
            print_report(&tokio::task::spawn_blocking(move || python::python(&options, today)).await??, city.json)
        }
        Benchmark::Uptake { residents, period_days, within_days, city } => {
            let options = uptake::UptakeBenchOptions {
                residents,
                seed: city.seed,
                repetitions: city.repetitions,
                work_directory: city.work,
                period_days,
                within_days,
            };
            print_report(&uptake::uptake(&options, city.date.unwrap_or_else(today_in_japan)).await?, city.json)
        }
        Benchmark::Delivery { recipients, repetitions, work, json } => {
            let options = delivery::DeliveryBenchOptions { recipients, repetitions, work_directory: work };
            print_report(&delivery::delivery(&options).await?, json)
        }
        Benchmark::Webhook { events, events_per_request, connections, repetitions, work, json } => {
            let options =
                WebhookBenchOptions { events, events_per_request, connections, repetitions, work_directory: work };
            print_report(&webhook(&options).await?, json)
        }
        Benchmark::Abuse { mut servers, loops, seconds, work, json } => {
            if servers.is_empty() {
                servers.push(crate::product_binary()?);
            }
            let options = abuse::AbuseBenchOptions { servers, loops, seconds, work_directory: work };
            print_report(&abuse::abuse(&options).await?, json)
        }
        Benchmark::Replication { recipients, repetitions, sync_interval, seconds, work, json } => {
            let options = replication::ReplicationBenchOptions {
                recipients,
                repetitions,
                sync_interval,
                seconds,
                work_directory: work,
            };
            print_report(&replication::replication(&options).await?, json)
        }
        Benchmark::Towns { sizes, towns, town_residents, concurrent_runs, city } => {
            let options = towns::TownsBenchOptions {
                sizes,
                fleets: towns,
                fleet_residents: town_residents,
                concurrent_runs,
                repetitions: city.repetitions,
                seed: city.seed,
                today: city.date.unwrap_or_else(today_in_japan),
                work_directory: city.work,
            };
            print_report(&tokio::task::spawn_blocking(move || towns::towns(&options)).await??, city.json)
        }
        Benchmark::Import { residents, seed, repetitions, layout, work, json } => {
            let options =
                ImportBenchOptions { residents, seed, repetitions, layout: layout.layout(), work_directory: work };
            print_report(&tokio::task::spawn_blocking(move || import(&options, today_in_japan())).await??, json)
        }
    }
}

pub struct ImportBenchOptions {
    pub residents: usize,
    pub seed: u64,
    pub repetitions: usize,
    pub layout: Layout,
    /// Where the city and the databases are written; kept so a second run reuses the city.
    pub work_directory: PathBuf,
}

/// One measured command: the wall time of each repetition.
#[derive(Debug, serde::Serialize)]
pub struct Timing {
    pub name: String,
    pub seconds: Vec<f64>,
}

impl Timing {
    pub fn median(&self) -> f64 {
        median(&self.seconds)
    }
}

/// The middle value (the upper of the two middle ones for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

#[derive(Debug, serde::Serialize)]
pub struct ImportBenchReport {
    pub residents: usize,
    /// The resident file both imports read.
    pub resident_file: &'static str,
    pub sqlite3: Timing,
    pub oshirase_residents: Timing,
    pub oshirase_all_files: Timing,
    /// The largest resident set of any `oshirase import` child, in KiB.
    pub peak_rss_kib: i64,
    /// The database file after importing every file of the export, in bytes (log included).
    pub database_bytes: u64,
}

impl ImportBenchReport {
    /// oshirase's median over sqlite3's, for the same resident file.
    pub fn ratio(&self) -> f64 {
        self.oshirase_residents.median() / self.sqlite3.median()
    }
}

impl std::fmt::Display for ImportBenchReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(formatter, "import of {} residents, medians of {} runs", self.residents, self.sqlite3.seconds.len())?;
        for timing in [&self.sqlite3, &self.oshirase_residents, &self.oshirase_all_files] {
            writeln!(formatter, "  {:<48} {:>7.2} s", timing.name, timing.median())?;
        }
        writeln!(
            formatter,
            "  {:<44} {:>7.2}",
            format!("ratio oshirase / sqlite3 ({})", self.resident_file),
            self.ratio()
        )?;
        writeln!(
            formatter,
            "  peak RSS of oshirase import                      {:>7.0} MiB",
            self.peak_rss_kib as f64 / 1024.0
        )?;
        writeln!(
            formatter,
            "  database after every file                        {:>7.0} MiB",
            self.database_bytes as f64 / (1024.0 * 1024.0)
        )
    }
}

/// Generates (or reuses) the city, then alternates the three imports `repetitions` times.
pub fn import(options: &ImportBenchOptions, today: Day) -> Result<ImportBenchReport> {
    let (layout_name, resident_file) = match options.layout {
        Layout::Own => ("own", "residents.csv"),
        Layout::Standard => ("standard", "resident_table.csv"),
    };
    let city = options.work_directory.join(format!("city-{}-{}-{layout_name}", options.residents, options.seed));
    if !city.join("checkups.csv").exists() {
        generate(
            options.residents,
            options.seed,
            today,
            &city,
            ExportFormat { encoding: FileEncoding::Utf8, layout: options.layout },
        )?;
    }
    // The resident file alone (with the town's mapping), for the like-for-like comparison
    // with sqlite3.
    let residents_only = options.work_directory.join(format!("residents-only-{layout_name}"));
    std::fs::create_dir_all(&residents_only)?;
    for file in [resident_file, oshirase_core::import::MAPPING_FILE] {
        if city.join(file).exists() {
            std::fs::copy(city.join(file), residents_only.join(file)).with_context(|| format!("cannot copy {file}"))?;
        }
    }
    let oshirase = crate::product_binary()?;
    let mut sqlite3 = Timing { name: format!("sqlite3 .import {resident_file}"), seconds: Vec::new() };
    let mut residents = Timing { name: format!("oshirase import ({resident_file}, validated)"), seconds: Vec::new() };
    let mut all_files = Timing { name: "oshirase import (every file, validated)".into(), seconds: Vec::new() };
    let mut database_bytes = 0;
    for _ in 0..options.repetitions.max(1) {
        let plain = options.work_directory.join("plain.db");
        remove_database(&plain)?;
        sqlite3.seconds.push(timed(
            Command::new("sqlite3")
                .arg(&plain)
                .arg(".mode csv")
                .arg(format!(".import {} residents", city.join(resident_file).display())),
        )?);
        for (timing, export) in [(&mut residents, &residents_only), (&mut all_files, &city)] {
            let data = options.work_directory.join("data");
            if data.exists() {
                std::fs::remove_dir_all(&data)?;
            }
            let mut command = Command::new(&oshirase);
            command
                .arg("--data")
                .arg(&data)
                .arg("import")
                .arg(export)
                .arg("--allow-shrink")
                .env("OSHIRASE_LOG", "warn");
            timing.seconds.push(timed(&mut command)?);
            database_bytes = file_size(&data.join("oshirase.db")) + file_size(&data.join("oshirase.db-wal"));
        }
    }
    Ok(ImportBenchReport {
        residents: options.residents,
        resident_file,
        sqlite3,
        oshirase_residents: residents,
        oshirase_all_files: all_files,
        peak_rss_kib: children_peak_rss_kib(),
        database_bytes,
    })
}

fn remove_database(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            std::fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
        }
    }
    Ok(())
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |metadata| metadata.len())
}

/// Runs a command to completion and returns its wall time in seconds; fails unless it
/// succeeds.
fn timed(command: &mut Command) -> Result<f64> {
    let program = command.get_program().to_string_lossy().into_owned();
    let start = Instant::now();
    let output = command.output().with_context(|| format!("cannot run {program} (is it installed?)"))?;
    let elapsed: Duration = start.elapsed();
    anyhow::ensure!(output.status.success(), "{program} failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(elapsed.as_secs_f64())
}

/// Reads the first line a child server prints, `listening on ADDRESS`: the address (none
/// when it printed something else, or nothing), and its output, to keep open or to drop.
fn listening_address(
    child: &mut std::process::Child,
) -> Result<(Option<String>, std::io::BufReader<std::process::ChildStdout>)> {
    let mut stdout = std::io::BufReader::new(child.stdout.take().context("the child's stdout is not piped")?);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line)?;
    Ok((line.trim().strip_prefix("listening on ").map(str::to_owned), stdout))
}

/// A field of a `/proc` file given in kB (`VmRSS:` of a process's `status`, `MemTotal:` of
/// `meminfo`), in MiB.
fn proc_mib(file: &str, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(file).ok()?;
    let kib: f64 =
        text.lines().find_map(|line| line.strip_prefix(field))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

/// The resident memory of process `pid` in MiB.
fn resident_mib(pid: u32) -> Option<f64> {
    proc_mib(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// The largest peak resident set of any child this process has waited for, in KiB.
fn children_peak_rss_kib() -> i64 {
    // SAFETY: getrusage only writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let status = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if status == 0 { usage.ru_maxrss } else { 0 }
}

pub struct PluginBenchOptions {
    pub residents: usize,
    pub seed: u64,
    pub repetitions: usize,
    pub work_directory: PathBuf,
}

/// One bundled plugin's figures, medians over the repetitions.
#[derive(Debug, serde::Serialize)]
pub struct PluginFigures {
    pub program: String,
    /// From the publish call to the version being active: compile, manifest, example
    /// cases, an evaluation of the live snapshot, the registry's transaction.
    pub publish_to_active_seconds: f64,
    /// One evaluation of an empty population: a fresh instance from the pre-linked
    /// component, the call, the output checks.
    pub instantiate_seconds: f64,
    /// One evaluation of the whole snapshot, the columns it declares already loaded.
    pub evaluation_seconds: f64,
    /// (evaluation − instantiate) / residents.
    pub nanoseconds_per_person: f64,
    pub notices: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct PluginBenchReport {
    pub residents: u32,
    pub plugins: Vec<PluginFigures>,
}

impl std::fmt::Display for PluginBenchReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(formatter, "bundled plugins on a city of {} residents, medians", self.residents)?;
        writeln!(
            formatter,
            "  {:<24} {:>12} {:>12} {:>12} {:>10} {:>9}",
            "program", "publish ms", "instance µs", "evaluate ms", "ns/person", "notices"
        )?;
        for plugin in &self.plugins {
            writeln!(
                formatter,
                "  {:<24} {:>12.1} {:>12.0} {:>12.2} {:>10.1} {:>9}",
                plugin.program,
                plugin.publish_to_active_seconds * 1e3,
                plugin.instantiate_seconds * 1e6,
                plugin.evaluation_seconds * 1e3,
                plugin.nanoseconds_per_person,
                plugin.notices
            )?;
        }
        let median = |pick: fn(&PluginFigures) -> f64| median(&self.plugins.iter().map(pick).collect::<Vec<_>>());
        writeln!(
            formatter,
            "  {:<24} {:>12.1} {:>12.0} {:>12.2} {:>10.1}",
            "median of the plugins",
            median(|plugin| plugin.publish_to_active_seconds) * 1e3,
            median(|plugin| plugin.instantiate_seconds) * 1e6,
            median(|plugin| plugin.evaluation_seconds) * 1e3,
            median(|plugin| plugin.nanoseconds_per_person)
        )
    }
}

/// Imports a synthetic city into a fresh data directory, publishes every bundled plugin
/// into it (timing publish → active), then times instantiation and whole-city evaluation.
/// Each repetition uses a fresh data directory and compile cache, so publishing is cold.
pub async fn plugins(options: &PluginBenchOptions, today: Day) -> Result<PluginBenchReport> {
    use oshirase_core::publish::{Activation, Candidate, publish};
    let bundled: Vec<&oshirase_core::registry::BundledComponent> =
        oshirase_core::registry::catalogue(oshirase_bundled::PROGRAMS).collect();

    let city = options.work_directory.join(format!("city-{}-{}", options.residents, options.seed));
    if !city.join("checkups.csv").exists() {
        generate(options.residents, options.seed, today, &city, ExportFormat::own(FileEncoding::Utf8))?;
    }
    let mut samples: Vec<Vec<[f64; 3]>> = vec![Vec::new(); bundled.len()];
    let mut notices = vec![0; bundled.len()];
    let mut residents = 0;
    for _ in 0..options.repetitions.max(1) {
        let data = options.work_directory.join("plugins-data");
        if data.exists() {
            std::fs::remove_dir_all(&data)?;
        }
        // One bundled program is needed to open a data directory; it is published again
        // below under another hash, so every plugin is timed alike.
        let service =
            oshirase_core::service::Service::open(&data, oshirase_bundled::PROGRAMS, &[bundled[0].0.to_owned()])
                .await?;
        let export = city.clone();
        let import = oshirase_core::import::ImportOptions {
            actor: "bench".into(),
            source: "bench".into(),
            keep_generations: 1,
            max_shrink_percent: None,
            mapping: None,
        };
        service
            .database
            .write(move |connection| Ok(oshirase_core::import::import_directory(connection, &export, &import)?))
            .await?;
        for (index, (name, wasm, cases)) in bundled.iter().enumerate() {
            // A trailing custom section gives the component new bytes (and a new hash and
            // a cold compile) without changing what it does.
            let mut bytes = wasm.to_vec();
            bytes.extend_from_slice(&[0, 6, 5, b'b', b'e', b'n', b'c', b'h']);
            let candidate = Candidate {
                wasm: bytes,
                cases: Some((*cases).to_owned()),
                publisher: "bench".into(),
                program: None,
                activation: Activation::Always,
            };
            let start = Instant::now();
            publish(&service.database, &service.plugins, candidate)
                .await
                .with_context(|| format!("cannot publish {name}"))?;
            let publish_seconds = start.elapsed().as_secs_f64();

            let plugins = service.plugins.clone();
            let program = (*name).to_owned();
            let (instantiate, evaluation, count, size) = service
                .database
                .write(move |connection| {
                    let versions = oshirase_core::registry::active_versions(connection)?;
                    let version = versions
                        .iter()
                        .find(|version| version.program == program)
                        .context("the published plugin is not active")?;
                    let loaded = plugins.get(connection, version)?;
                    let info = &loaded.info;
                    let population =
                        oshirase_core::snapshot::load_population(connection, &info.fields, &info.kinds)?.population;
                    let settings = oshirase_sdk::Settings::defaults(&info.settings);
                    let size = population.size;
                    let start = Instant::now();
                    plugins.engine.evaluate(&loaded, today, &settings, &oshirase_sdk::Population::default())?;
                    let instantiate = start.elapsed().as_secs_f64();
                    let start = Instant::now();
                    let evaluation = plugins.engine.evaluate(&loaded, today, &settings, &population)?;
                    Ok((instantiate, start.elapsed().as_secs_f64(), evaluation.notices.len(), size))
                })
                .await?;
            samples[index].push([publish_seconds, instantiate, evaluation]);
            notices[index] = count;
            residents = size;
        }
    }
    let plugins = bundled
        .iter()
        .zip(samples)
        .zip(notices)
        .map(|(((name, ..), runs), notices)| {
            let [publish, instantiate, evaluation] =
                [0, 1, 2].map(|field| median(&runs.iter().map(|run| run[field]).collect::<Vec<_>>()));
            PluginFigures {
                program: (*name).to_owned(),
                publish_to_active_seconds: publish,
                instantiate_seconds: instantiate,
                evaluation_seconds: evaluation,
                nanoseconds_per_person: (evaluation - instantiate).max(0.0) * 1e9 / f64::from(residents.max(1)),
                notices,
            }
        })
        .collect();
    Ok(PluginBenchReport { residents, plugins })
}

pub struct WebhookBenchOptions {
    pub events: usize,
    /// Events in one request (LINE batches events that happen together).
    pub events_per_request: usize,
    /// Requests in flight at once.
    pub connections: usize,
    pub repetitions: usize,
    pub work_directory: PathBuf,
}

#[derive(Debug, serde::Serialize)]
pub struct WebhookBenchReport {
    pub events: usize,
    pub events_per_request: usize,
    pub connections: usize,
    /// From the first request to the last 200: signature checked, events stored.
    pub received: Timing,
    /// The worker applying every stored event and sending its reply to the emulator.
    pub processed: Timing,
}

impl std::fmt::Display for WebhookBenchReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = |timing: &Timing| self.events as f64 / timing.median();
        writeln!(
            formatter,
            "{} webhook events, {} per request, {} connections, over loopback, medians",
            self.events, self.events_per_request, self.connections
        )?;
        writeln!(
            formatter,
            "  received (signature checked, stored, 200): {:>10.0} events/s ({:.3} s)",
            rate(&self.received),
            self.received.median()
        )?;
        writeln!(
            formatter,
            "  processed (applied, replied):               {:>10.0} events/s ({:.3} s)",
            rate(&self.processed),
            self.processed.median()
        )
    }
}

/// Serves the real routes with a webhook on port 0 and an emulator for the replies, sends
/// `events` text messages (settings requests, which read and answer) from 100 users as
/// signed requests, then lets the worker's step process them. Each repetition starts
/// with a fresh database.
pub async fn webhook(options: &WebhookBenchOptions) -> Result<WebhookBenchReport> {
    const SECRET: &str = "bench-channel-secret";
    const TOKEN: &str = "bench-channel-token";
    let per_request = options.events_per_request.clamp(1, 100);
    let mut received = Vec::new();
    let mut processed = Vec::new();
    for _ in 0..options.repetitions.max(1) {
        let data = options.work_directory.join("webhook-data");
        if data.exists() {
            std::fs::remove_dir_all(&data)?;
        }
        let database = oshirase_core::service::open_database(&data)?;
        let engine = oshirase_sandbox::PluginEngine::new(oshirase_sandbox::Limits::default(), None)?;
        let service = oshirase_core::service::Service {
            data_directory: data.clone(),
            database: database.clone(),
            plugins: std::sync::Arc::new(oshirase_core::registry::Plugins::new(engine, &[])),
            wake_scheduler: Default::default(),
        };
        let emulator = line_emulator::Emulator::new(TOKEN);
        let emulator_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let line =
            oshirase_core::channel::line::LineConfig::new(format!("http://{}", emulator_listener.local_addr()?), TOKEN);
        let emulator_router = emulator.router();
        let emulator_server = tokio::spawn(async move { axum::serve(emulator_listener, emulator_router).await });
        let state = oshirase_server::web::AppState {
            webhook: Some(oshirase_core::chat::webhook::Webhook::new(
                SECRET,
                oshirase_core::chat::ChatSettings::default(),
            )?),
            ..oshirase_server::web::AppState::new(service)
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/webhook/line", listener.local_addr()?);
        let server = tokio::spawn(async move { axum::serve(listener, oshirase_server::app(state)).await });

        let bodies: Vec<(String, String)> = (0..options.events.div_ceil(per_request))
            .map(|request| {
                let events: Vec<serde_json::Value> = (request * per_request
                    ..((request + 1) * per_request).min(options.events))
                    .map(|number| {
                        let user = format!("U{:032x}", number % 100);
                        serde_json::json!({
                            "type": "message", "mode": "active", "timestamp": 1_790_000_000_000u64 + number as u64,
                            "source": { "type": "user", "userId": user },
                            "webhookEventId": format!("01BENCH{number:019}"),
                            "deliveryContext": { "isRedelivery": false },
                            "replyToken": emulator.issue_reply_token(&user),
                            "message": {
                                "type": "text", "id": number.to_string(), "text": "設定", "quoteToken": "q"
                            },
                        })
                    })
                    .collect();
                let body = serde_json::json!({ "destination": "U0000000000000000000000000000ffff", "events": events })
                    .to_string();
                (line_emulator::signature(SECRET.as_bytes(), body.as_bytes()), body)
            })
            .collect();
        let client = reqwest::Client::new();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(bodies));
        let start = Instant::now();
        let senders: Vec<_> = (0..options.connections.max(1))
            .map(|_| {
                let (client, queue, url) = (client.clone(), queue.clone(), url.clone());
                tokio::spawn(async move {
                    loop {
                        let Some((signature, body)) = queue.lock().unwrap().pop() else {
                            return Ok::<(), anyhow::Error>(());
                        };
                        post_to_webhook(&client, &url, signature, body).await?;
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.await??;
        }
        received.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let settings = std::sync::Arc::new(oshirase_core::chat::ChatSettings::default());
        let channels = oshirase_core::channel::Channels {
            line: oshirase_core::channel::line::LineClient::new(line)?,
            mail: None,
            public_url: None,
        };
        let count = oshirase_core::chat::webhook::process_pending(&database, &channels, &settings).await?;
        processed.push(start.elapsed().as_secs_f64());
        anyhow::ensure!(count == options.events, "the worker processed {count} of {} events", options.events);
        let replies: usize = emulator.inboxes().values().map(Vec::len).sum();
        anyhow::ensure!(
            replies == options.events,
            "the emulator received {replies} replies for {} events",
            options.events
        );
        server.abort();
        emulator_server.abort();
    }
    Ok(WebhookBenchReport {
        events: options.events,
        events_per_request: per_request,
        connections: options.connections.max(1),
        received: Timing { name: "received".into(), seconds: received },
        processed: Timing { name: "processed".into(), seconds: processed },
    })
}
