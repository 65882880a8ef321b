//! `oshirase-dev`: the tools beside the product — the demo, a synthetic city, the
//! benchmarks and the LINE emulator. It parses the arguments and calls `demo.rs`,
//! `bench/` and the tool crates; nothing here is part of the `oshirase` binary. `main.rs`
//! only calls `main` here, so that the end-to-end tests can build the same binary.

mod bench;
mod demo;
/// Litestream as a child process, for the backup tests and `bench replication`.
pub mod litestream;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use oshirase_core::Day;
use oshirase_core::time::today_in_japan;
use synthetic_city::{ExportFormat, FileEncoding, Layout};

#[derive(Parser)]
#[command(name = "oshirase-dev", version, about = "oshirase's demo, synthetic city, benchmarks and LINE emulator")]
struct Arguments {
    /// Where the demo's database, plugins and caches live.
    #[arg(long, global = true, env = "OSHIRASE_DATA", default_value = "./oshirase-data")]
    data: PathBuf,
    /// Which bundled programs the demo's new data directory is given, by code
    /// (comma-separated); all of them when not set.
    #[arg(long, global = true, env = "OSHIRASE_PROGRAMS", value_delimiter = ',')]
    programs: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generates a synthetic city, runs today's programs, delivers to the embedded LINE
    /// emulator and serves a page showing who received what and why.
    Demo {
        /// Run once, print one JSON line and exit instead of serving the page.
        #[arg(long)]
        exit_after_run: bool,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The date to run for (YYYY-MM-DD); today in Japan by default.
        #[arg(long, value_parser = parse_day)]
        date: Option<Day>,
        #[arg(long, default_value_t = 5000)]
        residents: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Runs the LINE Messaging API emulator on its own.
    LineEmulator {
        /// 0 picks a free port; the address is printed on the first line.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The channel access token it accepts.
        #[arg(long, env = "OSHIRASE_LINE_TOKEN")]
        token: String,
        /// Keep accepted requests in this file, so a restart forgets nothing.
        #[arg(long)]
        journal: Option<PathBuf>,
        /// The month's message limit of the emulated plan; none when not given.
        #[arg(long)]
        monthly_limit: Option<u64>,
        /// Accept `customAggregationUnits`, as LINE does only for a channel whose
        /// application for them was approved; refused with 403 otherwise.
        #[arg(long)]
        aggregation_units_approved: bool,
        #[command(flatten)]
        faults: line_emulator::Faults,
    },
    /// Writes a synthetic city as a municipal export.
    Gen {
        #[arg(long, default_value_t = 5000)]
        residents: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// The date the city is generated for (YYYY-MM-DD); today in Japan by default.
        #[arg(long, value_parser = parse_day)]
        date: Option<Day>,
        #[arg(long, value_enum, default_value_t = TextEncoding::Utf8)]
        encoding: TextEncoding,
        /// The resident file's layout: our own residents.csv, or the national standard's
        /// resident_table.csv (with import.toml naming its wards).
        #[arg(long, value_enum, default_value_t = ResidentLayout::Own)]
        layout: ResidentLayout,
    },
    /// Measures the product; each prints medians, as a table or as JSON.
    #[command(subcommand)]
    Bench(bench::Benchmark),
}

#[derive(Clone, Copy, ValueEnum)]
enum TextEncoding {
    Utf8,
    ShiftJis,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ResidentLayout {
    Own,
    Standard,
}

impl ResidentLayout {
    pub(crate) fn layout(self) -> Layout {
        match self {
            ResidentLayout::Own => Layout::Own,
            ResidentLayout::Standard => Layout::Standard,
        }
    }
}

pub fn parse_day(text: &str) -> Result<Day, String> {
    Day::parse_iso(text).ok_or_else(|| format!("{text:?} is not a date as YYYY-MM-DD"))
}

/// The `oshirase` binary the benchmarks run: `OSHIRASE_BINARY`, or the one built beside
/// this binary (`cargo build --release` builds it).
pub fn product_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("OSHIRASE_BINARY") {
        return Ok(PathBuf::from(path));
    }
    let here = std::env::current_exe().context("cannot find this binary")?;
    let beside = here.parent().unwrap_or(Path::new(".")).join("oshirase");
    anyhow::ensure!(
        beside.exists(),
        "there is no oshirase binary at {}: build it with `cargo build --release`, or name it in OSHIRASE_BINARY",
        beside.display()
    );
    Ok(beside)
}

/// Runs the command the process's arguments name.
pub async fn main() -> anyhow::Result<()> {
    oshirase_server::init_logging(None);
    let Arguments { data, programs, command } = Arguments::parse();
    match command {
        Command::Demo { exit_after_run, port, date, residents, seed } => {
            let port = if exit_after_run { 0 } else { port };
            let options = demo::DemoOptions {
                data_directory: data,
                programs,
                residents,
                seed,
                today: date.unwrap_or_else(today_in_japan),
                address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                exit_after_run,
            };
            let summary = demo::demo(options).await?;
            if exit_after_run {
                println!("{}", serde_json::to_string(&summary)?);
            }
        }
        Command::LineEmulator { port, token, journal, monthly_limit, aggregation_units_approved, faults } => {
            let emulator = match journal {
                Some(path) => line_emulator::Emulator::with_journal(&token, path)?,
                None => line_emulator::Emulator::new(&token),
            };
            emulator.set_faults(faults).map_err(anyhow::Error::msg)?;
            emulator.set_monthly_limit(monthly_limit);
            emulator.approve_aggregation_units(aggregation_units_approved);
            let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .await
                .with_context(|| format!("cannot listen on port {port}"))?;
            println!("listening on http://{}", listener.local_addr()?);
            emulator.serve(listener, async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
        }
        Command::Gen { residents, seed, out, date, encoding, layout } => {
            let format = ExportFormat {
                encoding: match encoding {
                    TextEncoding::Utf8 => FileEncoding::Utf8,
                    TextEncoding::ShiftJis => FileEncoding::ShiftJis,
                },
                layout: layout.layout(),
            };
            let city = synthetic_city::generate(residents, seed, date.unwrap_or_else(today_in_japan), &out, format)?;
            println!(
                "wrote {} residents in {} households ({} departed) to {}",
                city.residents,
                city.households,
                city.departed,
                out.display()
            );
        }
        Command::Bench(command) => bench::run(command).await?,
    }
    Ok(())
}
