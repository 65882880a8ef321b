//! `bench towns`: what one town costs the server it shares, and how many towns one server
//! holds. For each town size, a synthetic town is imported with the real `oshirase
//! import` (the standard layout, as the demo imports it) and its LINE users registered;
//! then, on fresh copies of it, the real binaries are measured: the resident memory of an
//! idle `serve --config` after its first start (which installs and evaluates every
//! program, as after an upgrade or a day's run) and after a restart, and the wall time and peak memory (the child's own `ru_maxrss`)
//! of `oshirase run` for the town's first day, when every notice is new, and for the next
//! day. Then N copies of one town size run side by side as a shared server would run them:
//! N idle `serve` processes, and every town's day run while they are up, a few at a time
//! (staggered), timed from the first start to the last end. LINE is one emulator process.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use oshirase_sdk::Day;
use synthetic_city::{ExportFormat, FileEncoding, Layout, generate};

use super::delivery::EmulatorChild;
use super::{listening_address, median, proc_mib, resident_mib};

pub struct TownsBenchOptions {
    /// The town sizes measured one by one.
    pub sizes: Vec<usize>,
    /// How many towns run side by side, each a fleet of its own.
    pub fleets: Vec<usize>,
    /// The size of every town of a fleet.
    pub fleet_residents: usize,
    /// How many towns' days run at once in a fleet.
    pub concurrent_runs: usize,
    pub repetitions: usize,
    pub seed: u64,
    pub today: Day,
    /// Where the towns go; a town already imported there is reused.
    pub work_directory: PathBuf,
}

/// One `oshirase run` of one day, over the repetitions.
#[derive(Debug, Default, serde::Serialize)]
pub struct DayFigures {
    pub seconds: Vec<f64>,
    pub peak_rss_mib: Vec<f64>,
    /// Messages LINE accepted (the run's own count).
    pub sent: u64,
}

/// One town of a size, alone on the server.
#[derive(Debug, serde::Serialize)]
pub struct TownFigures {
    pub residents: usize,
    pub registered: usize,
    /// The data directory after the import: the database and the compiled plugins.
    pub data_mib: f64,
    /// `serve --config` settled after its first start, which installs the bundled programs
    /// and evaluates each over the town, as it does after an upgrade and keeps after a day's
    /// run (the sandbox keeps the pages its evaluations touched), per repetition.
    pub idle_serve_mib: Vec<f64>,
    /// `serve --config` settled after a restart, before any evaluation.
    pub restarted_serve_mib: Vec<f64>,
    pub first_day: DayFigures,
    pub next_day: DayFigures,
}

/// N towns of one size on the server at once.
#[derive(Debug, serde::Serialize)]
pub struct FleetFigures {
    pub towns: usize,
    pub residents_each: usize,
    pub concurrent_runs: usize,
    /// Every town's idle `serve` after its first start (see `TownFigures::idle_serve_mib`),
    /// summed: resident memory, and proportional memory (`Pss`), which counts a page that
    /// several processes share (the binary, the compiled plugins mapped from the cache,
    /// ) once in all rather than once in each.
    pub idle_serve_mib_total: f64,
    pub idle_serve_proportional_mib_total: f64,
    /// From the first town's day started to the last one's end, the serves all up.
    pub day_seconds: f64,
    /// The longest one town's day took in the fleet, and its median.
    pub longest_town_day_seconds: f64,
    pub median_town_day_seconds: f64,
    pub largest_run_peak_rss_mib: f64,
}

impl FleetFigures {
    /// Towns whose days, run as this fleet's were, fit in an hour.
    pub fn towns_per_hour_by_time(&self) -> f64 {
        3600.0 * self.towns as f64 / self.day_seconds
    }

    /// Towns whose idle serves fit in `memory_mib` by their proportional memory, with room
    /// left for the runs going at once at their largest.
    pub fn towns_by_memory(&self, memory_mib: f64) -> f64 {
        let per_town = self.idle_serve_proportional_mib_total / self.towns as f64;
        (memory_mib - self.concurrent_runs as f64 * self.largest_run_peak_rss_mib) / per_town
    }
}

#[derive(Debug, serde::Serialize)]
pub struct TownsBenchReport {
    pub date: String,
    pub memory_total_mib: f64,
    pub cores: usize,
    pub sizes: Vec<TownFigures>,
    pub fleets: Vec<FleetFigures>,
}

impl std::fmt::Display for TownsBenchReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let runs = self.sizes.first().map_or(0, |size| size.idle_serve_mib.len());
        writeln!(
            formatter,
            "bench towns: {} cores, {:.0} MiB; the day {}; medians of {runs} runs",
            self.cores, self.memory_total_mib, self.date
        )?;
        writeln!(
            formatter,
            "  {:>9} {:>10} {:>8} {:>10} {:>9} {:>12} {:>9} {:>8} {:>11} {:>9} {:>8}",
            "residents",
            "registered",
            "data MiB",
            "idle serve",
            "restarted",
            "first day s",
            "peak MiB",
            "sent",
            "next day s",
            "peak MiB",
            "sent"
        )?;
        for size in &self.sizes {
            writeln!(
                formatter,
                "  {:>9} {:>10} {:>8.1} {:>10.1} {:>9.1} {:>12.2} {:>9.1} {:>8} {:>11.2} {:>9.1} {:>8}",
                size.residents,
                size.registered,
                size.data_mib,
                median(&size.idle_serve_mib),
                median(&size.restarted_serve_mib),
                median(&size.first_day.seconds),
                median(&size.first_day.peak_rss_mib),
                size.first_day.sent,
                median(&size.next_day.seconds),
                median(&size.next_day.peak_rss_mib),
                size.next_day.sent
            )?;
        }
        for fleet in &self.fleets {
            writeln!(
                formatter,
                "  {} towns of {} residents side by side: idle serves {:.0} MiB resident, {:.0} MiB proportional \
                 in all; every first day, {} at a time, {:.1} s (one town: median {:.2} s, longest {:.2} s, peak \
                 {:.0} MiB)",
                fleet.towns,
                fleet.residents_each,
                fleet.idle_serve_mib_total,
                fleet.idle_serve_proportional_mib_total,
                fleet.concurrent_runs,
                fleet.day_seconds,
                fleet.median_town_day_seconds,
                fleet.longest_town_day_seconds,
                fleet.largest_run_peak_rss_mib
            )?;
            writeln!(
                formatter,
                "    so one server holds {:.0} such towns by time (days within an hour) and {:.0} by memory",
                fleet.towns_per_hour_by_time(),
                fleet.towns_by_memory(self.memory_total_mib)
            )?;
        }
        Ok(())
    }
}

pub fn towns(options: &TownsBenchOptions) -> Result<TownsBenchReport> {
    let oshirase = crate::product_binary()?;
    let emulator = EmulatorChild::start()?;
    let mut sizes = Vec::new();
    for &residents in options.sizes.iter().filter(|&&residents| residents > 0) {
        let (template, registered) = prepare_town(&oshirase, options, residents)?;
        let mut figures = TownFigures {
            residents,
            registered,
            data_mib: directory_bytes(&template)? as f64 / 1_048_576.0,
            idle_serve_mib: Vec::new(),
            restarted_serve_mib: Vec::new(),
            first_day: DayFigures::default(),
            next_day: DayFigures::default(),
        };
        for _ in 0..options.repetitions.max(1) {
            let town = options.work_directory.join(format!("town-{residents}-run"));
            copy_directory(&template, &town)?;
            for idle in [&mut figures.idle_serve_mib, &mut figures.restarted_serve_mib] {
                let serve = Serve::start(&oshirase, &town, &emulator.base_url)?;
                idle.push(serve.idle_mib()?);
            }
            for (day, figures) in
                [(options.today, &mut figures.first_day), (options.today.add_days(1), &mut figures.next_day)]
            {
                let run = run_day(&oshirase, &town, day, &emulator.base_url)?;
                figures.seconds.push(run.seconds);
                figures.peak_rss_mib.push(run.peak_rss_mib);
                figures.sent = run.sent;
            }
        }
        sizes.push(figures);
    }
    let mut fleets = Vec::new();
    for &towns in options.fleets.iter().filter(|&&towns| towns > 0) {
        fleets.push(fleet(&oshirase, options, towns, &emulator.base_url)?);
    }
    Ok(TownsBenchReport {
        date: options.today.to_string(),
        memory_total_mib: memory_total_mib()?,
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        sizes,
        fleets,
    })
}

/// The town of `residents` imported and registered, once: its data directory, and how
/// many of its residents linked LINE.
fn prepare_town(oshirase: &Path, options: &TownsBenchOptions, residents: usize) -> Result<(PathBuf, usize)> {
    let town = options.work_directory.join(format!("town-{residents}-{}", options.seed));
    let data = town.join("data");
    let database = data.join("oshirase.db");
    if !database.exists() {
        let export = town.join("export");
        let format = ExportFormat { encoding: FileEncoding::Utf8, layout: Layout::Standard };
        let city = generate(residents, options.seed, options.today, &export, format)?;
        let output = Command::new(oshirase)
            .arg("--data")
            .arg(&data)
            .arg("import")
            .arg(&export)
            .env("OSHIRASE_LOG", "warn")
            .output()
            .context("cannot run oshirase import")?;
        anyhow::ensure!(output.status.success(), "oshirase import failed: {}", String::from_utf8_lossy(&output.stderr));
        let mut connection = rusqlite::Connection::open(&database)?;
        synthetic_city::insert_registrations(&mut connection, &city.registrations, &oshirase_core::time::now_text())?;
        connection.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    }
    let connection = rusqlite::Connection::open(&database)?;
    let registered: i64 = connection.query_row("SELECT count(*) FROM registrations", [], |row| row.get(0))?;
    Ok((data, registered as usize))
}

/// A town's `oshirase run` of one day.
struct DayRun {
    seconds: f64,
    peak_rss_mib: f64,
    sent: u64,
}

/// Runs `oshirase run --date day` over `data` with LINE at `line_url`, and measures it.
fn run_day(oshirase: &Path, data: &Path, day: Day, line_url: &str) -> Result<DayRun> {
    let start = Instant::now();
    let child = Command::new(oshirase)
        .arg("--data")
        .arg(data)
        .args(["run", "--date", &day.to_string(), "--line-base-url", line_url, "--line-token", EmulatorChild::TOKEN])
        .env("OSHIRASE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run oshirase run")?;
    let (output, peak_rss_kib) = wait_with_peak_rss(child)?;
    let seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        output.status.success(),
        "oshirase run over {} failed: {}",
        data.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).context("oshirase run printed no report")?;
    let sent = report["sent"]["sent"].as_u64().context("the run's report has no sent count")?;
    Ok(DayRun { seconds, peak_rss_mib: peak_rss_kib as f64 / 1024.0, sent })
}

/// Waits for `child`, reading its output, and returns the output and the child's own peak
/// resident set in KiB (`wait4`'s `ru_maxrss`, which `getrusage` gives only as the largest
/// of all children).
fn wait_with_peak_rss(mut child: Child) -> Result<(std::process::Output, i64)> {
    let mut stdout = child.stdout.take().context("stdout is not piped")?;
    let mut stderr = child.stderr.take().context("stderr is not piped")?;
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut text).map(|_| text)
    });
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut out)?;
    let err = reader.join().expect("the stderr reader panicked")?;
    let mut status = 0;
    // SAFETY: wait4 writes only into the status and the zeroed rusage it is given, for the
    // child this function owns and has not reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    anyhow::ensure!(pid > 0, "wait4 failed: {}", std::io::Error::last_os_error());
    let status = std::os::unix::process::ExitStatusExt::from_raw(status);
    Ok((std::process::Output { status, stdout: out, stderr: err }, usage.ru_maxrss))
}

/// A town's `serve --config` child, killed when dropped.
struct Serve {
    child: Child,
    /// Kept open so that the server's later output has somewhere to go.
    _stdout: std::io::BufReader<ChildStdout>,
}

impl Serve {
    /// Starts `serve --config` over `data`, with LINE at `line_url`, on a port of its own;
    /// returns once it listens.
    fn start(oshirase: &Path, data: &Path, line_url: &str) -> Result<Serve> {
        let config = data.with_extension("toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\ndata = {data:?}\n\n[line]\nbase_url = {line_url:?}\n\
                 channel_access_token = {:?}\n",
                EmulatorChild::TOKEN
            ),
        )?;
        let mut child = Command::new(oshirase)
            .args(["serve", "--config"])
            .arg(&config)
            .env("OSHIRASE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start oshirase serve")?;
        let (address, stdout) = listening_address(&mut child)?;
        anyhow::ensure!(address.is_some(), "serve over {} did not start", data.display());
        Ok(Serve { child, _stdout: stdout })
    }

    /// Its resident memory once it has settled: it listens, and its scheduler has looked
    /// at the database.
    fn idle_mib(&self) -> Result<f64> {
        std::thread::sleep(Duration::from_secs(3));
        resident_mib(self.child.id()).context("the server is gone")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `towns` copies of the fleet's town, each with its idle `serve`, and every town's first
/// day run `concurrent_runs` at a time while the serves are up.
fn fleet(oshirase: &Path, options: &TownsBenchOptions, towns: usize, line_url: &str) -> Result<FleetFigures> {
    let (template, _) = prepare_town(oshirase, options, options.fleet_residents)?;
    let directory = options.work_directory.join("fleet");
    if directory.exists() {
        std::fs::remove_dir_all(&directory)?;
    }
    std::fs::create_dir_all(&directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let datas: Vec<PathBuf> = (0..towns).map(|town| directory.join(format!("town-{town:04}"))).collect();
    for data in &datas {
        copy_directory(&template, data)?;
    }
    let serves = datas.iter().map(|data| Serve::start(oshirase, data, line_url)).collect::<Result<Vec<_>>>()?;
    std::thread::sleep(Duration::from_secs(3));
    let (mut idle_serve_mib_total, mut idle_serve_proportional_mib_total) = (0.0, 0.0);
    for serve in &serves {
        let pid = serve.child.id();
        idle_serve_mib_total += resident_mib(pid).context("a server is gone")?;
        idle_serve_proportional_mib_total +=
            proc_mib(&format!("/proc/{pid}/smaps_rollup"), "Pss:").context("a server is gone")?;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    let runs: Vec<DayRun> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..options.concurrent_runs.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut runs = Vec::new();
                    loop {
                        let town = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(data) = datas.get(town) else { return Ok::<_, anyhow::Error>(runs) };
                        runs.push(run_day(oshirase, data, options.today, line_url)?);
                    }
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().expect("a run worker panicked")).collect::<Result<Vec<_>>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    let day_seconds = start.elapsed().as_secs_f64();
    drop(serves);
    std::fs::remove_dir_all(&directory)?;
    let seconds: Vec<f64> = runs.iter().map(|run| run.seconds).collect();
    Ok(FleetFigures {
        towns,
        residents_each: options.fleet_residents,
        concurrent_runs: options.concurrent_runs.max(1),
        idle_serve_mib_total,
        idle_serve_proportional_mib_total,
        day_seconds,
        longest_town_day_seconds: seconds.iter().copied().fold(0.0, f64::max),
        median_town_day_seconds: median(&seconds),
        largest_run_peak_rss_mib: runs.iter().map(|run| run.peak_rss_mib).fold(0.0, f64::max),
    })
}

/// Replaces `to` with a copy of the directory `from` (files and folders).
fn copy_directory(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("cannot remove {}", to.display()))?;
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_directory(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The bytes of the files under `directory`.
fn directory_bytes(directory: &Path) -> Result<u64> {
    let mut bytes = 0;
    for entry in std::fs::read_dir(directory)? {
        let entry = entry?;
        bytes += if entry.file_type()?.is_dir() { directory_bytes(&entry.path())? } else { entry.metadata()?.len() };
    }
    Ok(bytes)
}

/// The machine's memory.
fn memory_total_mib() -> Result<f64> {
    proc_mib("/proc/meminfo", "MemTotal:").context("/proc/meminfo has no MemTotal")
}
