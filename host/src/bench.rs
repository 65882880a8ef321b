//! Benchmarks that compare oshirase with a reference in one run, as ratios of medians:
//! `bench import` times the real `oshirase import` of a synthetic city against the
//! `sqlite3` shell's own `.import` of the same `residents.csv` into a plain table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use oshirase_sdk::Day;

use crate::synth::{FileEncoding, generate};

pub struct ImportBenchOptions {
    pub residents: usize,
    pub seed: u64,
    pub repetitions: usize,
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
        let mut sorted = self.seconds.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }
}

#[derive(Debug, serde::Serialize)]
pub struct ImportBenchReport {
    pub residents: usize,
    pub sqlite3: Timing,
    pub oshirase_residents: Timing,
    pub oshirase_all_files: Timing,
    /// The largest resident set of any `oshirase import` child, in KiB.
    pub peak_rss_kib: i64,
    /// The database file after importing all six files, in bytes (log included).
    pub database_bytes: u64,
}

impl ImportBenchReport {
    /// oshirase's median over sqlite3's, for the same residents.csv.
    pub fn ratio(&self) -> f64 {
        self.oshirase_residents.median() / self.sqlite3.median()
    }
}

impl std::fmt::Display for ImportBenchReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(formatter, "import of {} residents, medians of {} runs", self.residents, self.sqlite3.seconds.len())?;
        for timing in [&self.sqlite3, &self.oshirase_residents, &self.oshirase_all_files] {
            writeln!(formatter, "  {:<44} {:>7.2} s", timing.name, timing.median())?;
        }
        writeln!(formatter, "  ratio oshirase / sqlite3 (residents.csv)     {:>7.2}", self.ratio())?;
        writeln!(formatter, "  peak RSS of oshirase import                  {:>7.0} MiB", self.peak_rss_kib as f64 / 1024.0)?;
        writeln!(formatter, "  database after all six files                 {:>7.0} MiB", self.database_bytes as f64 / (1024.0 * 1024.0))
    }
}

/// Generates (or reuses) the city, then alternates the three imports `repetitions` times.
pub fn import(options: &ImportBenchOptions, today: Day) -> Result<ImportBenchReport> {
    let city = options.work_directory.join(format!("city-{}-{}", options.residents, options.seed));
    if !city.join("checkups.csv").exists() {
        generate(options.residents, options.seed, today, &city, FileEncoding::Utf8)?;
    }
    // The residents file alone, for the like-for-like comparison with sqlite3.
    let residents_only = options.work_directory.join("residents-only");
    std::fs::create_dir_all(&residents_only)?;
    std::fs::copy(city.join("residents.csv"), residents_only.join("residents.csv")).context("cannot copy residents.csv")?;
    let oshirase = std::env::current_exe().context("cannot find the oshirase binary")?;
    let mut sqlite3 = Timing { name: "sqlite3 .import residents.csv".into(), seconds: Vec::new() };
    let mut residents = Timing { name: "oshirase import (residents.csv, validated)".into(), seconds: Vec::new() };
    let mut all_files = Timing { name: "oshirase import (all six files, validated)".into(), seconds: Vec::new() };
    let mut database_bytes = 0;
    for _ in 0..options.repetitions.max(1) {
        let plain = options.work_directory.join("plain.db");
        remove_database(&plain)?;
        sqlite3.seconds.push(timed(Command::new("sqlite3").arg(&plain).arg(".mode csv").arg(format!(".import {} residents", city.join("residents.csv").display())))?);
        for (timing, export) in [(&mut residents, &residents_only), (&mut all_files, &city)] {
            let data = options.work_directory.join("data");
            if data.exists() {
                std::fs::remove_dir_all(&data)?;
            }
            let mut command = Command::new(&oshirase);
            command.arg("--data").arg(&data).arg("import").arg(export).arg("--allow-shrink").env("OSHIRASE_LOG", "warn");
            timing.seconds.push(timed(&mut command)?);
            database_bytes = file_size(&data.join("oshirase.db")) + file_size(&data.join("oshirase.db-wal"));
        }
    }
    Ok(ImportBenchReport { residents: options.residents, sqlite3, oshirase_residents: residents, oshirase_all_files: all_files, peak_rss_kib: children_peak_rss_kib(), database_bytes })
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

/// The largest peak resident set of any child this process has waited for, in KiB.
fn children_peak_rss_kib() -> i64 {
    // SAFETY: getrusage only writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let status = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if status == 0 { usage.ru_maxrss } else { 0 }
}
