//! `bench uptake`: uptake measured for every program between two exports of a whole city —
//! the wall time and peak resident set of `oshirase report uptake` as a child process, and
//! how long the console's 効果 page waits for the stored result (`GET /admin/uptake`
//! through the product's router, with a division token).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use oshirase_sdk::Day;
use tower::ServiceExt;

use super::eval::{EvalBenchOptions, city_directory, import_child, imported_city, run_measured};
use super::median;

/// How many times the page's request is timed.
const PAGE_REQUESTS: usize = 21;

pub struct UptakeBenchOptions {
    pub residents: usize,
    pub seed: u64,
    pub repetitions: usize,
    pub work_directory: PathBuf,
    /// The period measured: the windows opened in the `period_days` up to the city's date.
    pub period_days: i32,
    pub within_days: u32,
}

#[derive(Debug, serde::Serialize)]
pub struct UptakeBenchReport {
    pub residents: usize,
    pub from: String,
    pub to: String,
    pub within_days: u32,
    /// Rows of the table (whole-period and monthly) the measurement gave.
    pub rows: usize,
    pub seconds: Vec<f64>,
    pub peak_rss_kib: Vec<i64>,
    pub page_milliseconds: Vec<f64>,
}

impl std::fmt::Display for UptakeBenchReport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let peak: Vec<f64> = self.peak_rss_kib.iter().map(|kib| *kib as f64 / 1024.0).collect();
        writeln!(
            formatter,
            "uptake of every program, {} residents, two exports, windows opened {} to {}, within {} days ({} rows)",
            self.residents, self.from, self.to, self.within_days, self.rows
        )?;
        writeln!(
            formatter,
            "  oshirase report uptake: wall {:.1} s, peak RSS {:.0} MiB (medians of {}; each {:?} s)",
            median(&self.seconds),
            median(&peak),
            self.seconds.len(),
            self.seconds.iter().map(|seconds| (seconds * 10.0).round() / 10.0).collect::<Vec<_>>()
        )?;
        write!(
            formatter,
            "  GET /admin/uptake (the 効果 page's read): {:.2} ms (median of {})",
            median(&self.page_milliseconds),
            self.page_milliseconds.len()
        )
    }
}

/// The imported city with its export imported a second time, as the later export (the same
/// records: what is measured is the work, which the records found barely change), made once.
fn two_exports(options: &UptakeBenchOptions, today: Day) -> Result<PathBuf> {
    let eval_options = EvalBenchOptions {
        residents: options.residents,
        seed: options.seed,
        repetitions: options.repetitions,
        work_directory: options.work_directory.clone(),
    };
    let data = imported_city(&eval_options, today)?;
    let mut name = data.file_name().context("the city's data directory has no name")?.to_owned();
    name.push("-uptake");
    let directory = data.with_file_name(name);
    let marker = directory.join("imported-twice");
    if !marker.exists() {
        std::fs::create_dir_all(&directory).with_context(|| format!("cannot create {}", directory.display()))?;
        oshirase_core::database::backup(&data.join("oshirase.db"), &directory.join("oshirase.db"), false)?;
        import_child(&directory, &city_directory(&eval_options, today))?;
        std::fs::write(&marker, "").with_context(|| format!("cannot write {}", marker.display()))?;
    }
    Ok(directory)
}

pub async fn uptake(options: &UptakeBenchOptions, today: Day) -> Result<UptakeBenchReport> {
    let directory = {
        let options = UptakeBenchOptions { work_directory: options.work_directory.clone(), ..*options };
        tokio::task::spawn_blocking(move || two_exports(&options, today)).await??
    };
    let (from, to) = (today.add_days(1 - options.period_days).to_string(), today.to_string());
    let within = options.within_days.to_string();
    let arguments = ["report", "uptake", "--from", &from, "--to", &to, "--within", &within, "--format", "csv"];
    // The first run compiles the programs into this directory's cache, untimed.
    let measure = |directory: PathBuf| {
        let arguments = arguments.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            run_measured(&directory, &arguments.each_ref().map(String::as_str), "uptake")
        })
    };
    let warm = measure(directory.clone()).await??;
    let rows = warm.output.lines().count().saturating_sub(1);
    let (mut seconds, mut peak_rss_kib) = (Vec::new(), Vec::new());
    for _ in 0..options.repetitions {
        let measured = measure(directory.clone()).await??;
        seconds.push(measured.seconds);
        peak_rss_kib.push(measured.peak_rss_kib);
    }
    let page_milliseconds = page_reads(&directory).await?;
    Ok(UptakeBenchReport {
        residents: options.residents,
        from,
        to,
        within_days: options.within_days,
        rows,
        seconds,
        peak_rss_kib,
        page_milliseconds,
    })
}

/// The console page's read of the stored measurement, `PAGE_REQUESTS` times, in ms.
async fn page_reads(directory: &Path) -> Result<Vec<f64>> {
    let service = oshirase_core::service::Service::open(directory, oshirase_bundled::PROGRAMS, &[]).await?;
    let token = service
        .database
        .write(|connection| oshirase_core::accounts::create_token(connection, "bench", &[], true, 1, "bench"))
        .await?;
    let app = oshirase_server::web::app(oshirase_server::web::AppState::new(service));
    let mut milliseconds = Vec::with_capacity(PAGE_REQUESTS);
    for _ in 0..PAGE_REQUESTS {
        let request = Request::get("/admin/uptake")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())?;
        let start = Instant::now();
        let response = app.clone().oneshot(request).await?;
        let status = response.status();
        axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        milliseconds.push(start.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(status == StatusCode::OK, "GET /admin/uptake answered {status}");
    }
    Ok(milliseconds)
}
