//! The `oshirase` command: parses arguments and calls the library.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use oshirase::channel::Channels;
use oshirase::channel::line::{LineClient, LineConfig};
use oshirase::import::{ImportError, ImportOptions, import_directory};
use oshirase::plugin::{Limits, PluginEngine};
use oshirase::publish::{Activation, Candidate};
use oshirase::retry::RetryPolicy;
use oshirase::synth::FileEncoding;
use oshirase::schedule;
use oshirase::service::{Service, open_database, today_in_japan};
use oshirase::Day;

#[derive(Parser)]
#[command(name = "oshirase", version, about = "Tells residents about the programs they can use, through LINE")]
struct Arguments {
    /// Where the database, plugins and caches live.
    #[arg(long, global = true, env = "OSHIRASE_DATA", default_value = "./oshirase-data")]
    data: PathBuf,
    /// Which bundled programs a new data directory is given, by code (comma-separated);
    /// all of them when not set. A data directory that has programs gets no more: `plugin
    /// list` shows the others as available, and `plugin activate PROGRAM` takes one up.
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
        faults: oshirase::emulator::Faults,
    },
    /// Imports a municipal export (DIR/residents.csv and, when present, tax.csv,
    /// receipts.csv, pregnancies.csv, immunizations.csv, checkups.csv) as the new active
    /// snapshot. Any error in any file changes nothing and lists every problem found.
    Import {
        directory: PathBuf,
        /// How many snapshot generations to keep, the new one included.
        #[arg(long, env = "OSHIRASE_KEEP_SNAPSHOTS", default_value_t = 3)]
        keep: usize,
        /// Accept an export with 10 % or more fewer residents than the active snapshot.
        #[arg(long)]
        allow_shrink: bool,
    },
    /// Writes a synthetic city as the CSV files of a municipal export.
    #[command(alias = "generate")]
    Gen {
        #[arg(long, default_value_t = 5000)]
        residents: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// The date the city is as of (YYYY-MM-DD); today in Japan by default.
        #[arg(long, value_parser = parse_day)]
        date: Option<Day>,
        #[arg(long, value_enum, default_value_t = TextEncoding::Utf8)]
        encoding: TextEncoding,
    },
    /// Measures oshirase against a reference in one run.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Lists or re-activates snapshot generations.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Links a resident to a LINE user id.
    Register {
        resident_id: String,
        line_user_id: Option<String>,
        /// An e-mail address, confirmed by the resident.
        #[arg(long)]
        email: Option<String>,
        /// Where notices go: line, mail or both; every one given by default. An address
        /// not chosen is the fallback when LINE cannot deliver.
        #[arg(long)]
        channels: Option<String>,
    },
    /// Evaluates every active program for a date, plans the notices and sends the due ones.
    Run {
        #[arg(long, value_parser = parse_day)]
        date: Option<Day>,
        #[arg(long, env = "OSHIRASE_LINE_BASE_URL", default_value = "https://api.line.me")]
        line_base_url: String,
        #[arg(long, env = "OSHIRASE_LINE_TOKEN")]
        line_token: String,
        #[command(flatten)]
        delivery: DeliveryArguments,
    },
    /// Works with program plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Manages access to the admin API.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Serves the overview page and the admin API and, with --config, runs the programs on
    /// their schedules and sends inside the send window, and answers the LINE webhook when
    /// the channel secret is set, until SIGTERM or Ctrl-C.
    Serve {
        /// The configuration file (see oshirase.example.toml); it names the data directory
        /// and address. Without it only the web server runs, on --port, with --data.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 8080, conflicts_with = "config")]
        port: u16,
        #[command(flatten)]
        webhook: WebhookArguments,
    },
    /// Registration numbers that residents type into the LINE chat.
    #[command(subcommand)]
    Registration(RegistrationCommand),
    /// Writes every unprinted postcard (a registration number to a resident's address)
    /// into one new PDF, then marks them printed and forgets their numbers.
    Postcards {
        /// The PDF to write; it must not exist yet.
        #[arg(long)]
        out: PathBuf,
        /// A TrueType font with Japanese glyphs.
        #[arg(long, default_value = oshirase::postcards::DEFAULT_FONT)]
        font: PathBuf,
    },
    /// Shows or changes when programs run.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Copies the live database to FILE with SQLite's online backup API, safe while serve
    /// runs and writes.
    Backup {
        file: PathBuf,
        /// Overwrite FILE when it exists.
        #[arg(long)]
        force: bool,
    },
}

/// The LINE channel the webhook answers for; without a secret there is no webhook.
#[derive(clap::Args)]
struct WebhookArguments {
    /// The channel secret that signs webhook requests (`X-Line-Signature`).
    #[arg(long, env = "OSHIRASE_LINE_SECRET", hide_env_values = true)]
    line_secret: Option<String>,
    /// Where replies go: LINE, or an emulator.
    #[arg(long, env = "OSHIRASE_LINE_BASE_URL", default_value = "https://api.line.me")]
    line_base_url: String,
    /// The channel access token replies are sent with; needed with a secret.
    #[arg(long, env = "OSHIRASE_LINE_TOKEN", hide_env_values = true)]
    line_token: Option<String>,
    /// This server's public address, for the chat's link to the application form
    /// (`/apply/…`); without it residents are told to apply at the counter.
    #[arg(long, env = "OSHIRASE_PUBLIC_URL")]
    public_url: Option<String>,
}

#[derive(Subcommand)]
enum RegistrationCommand {
    /// Issues a registration number for a resident of the active snapshot, prints it and
    /// queues its postcard; it works once, until it expires, and replaces the resident's
    /// unused earlier numbers.
    Issue {
        resident_id: String,
        #[arg(long, default_value_t = oshirase::chat::number::DEFAULT_VALID_DAYS)]
        valid_days: u32,
    },
}

#[derive(Subcommand)]
enum ScheduleCommand {
    /// Every active program: its schedule, whether it is the manifest's or an override,
    /// and its last and next run in Japan time.
    List,
    /// Runs PROGRAM on CRON (6 fields with seconds, or classic 5; days of the week 0–7,
    /// 0 and 7 Sunday; Japan time) instead of its manifest's schedule.
    Set { program: String, cron: String },
    /// Runs PROGRAM on its manifest's schedule again.
    Reset { program: String },
}

/// How `run` waits for LINE and retries; each defaults to the library's policy.
#[derive(clap::Args)]
struct DeliveryArguments {
    /// How long one LINE request may take, in milliseconds, before it counts as a timeout.
    #[arg(long)]
    line_timeout_ms: Option<u64>,
    /// Attempts per delivery, the first included.
    #[arg(long)]
    retry_attempts: Option<u32>,
    /// The delay after a first failed attempt, in milliseconds; it doubles per attempt.
    #[arg(long)]
    retry_first_delay_ms: Option<u64>,
    /// How long a run waits for retries to fall due, in milliseconds.
    #[arg(long)]
    retry_linger_ms: Option<u64>,
    /// Name each message's program in LINE's statistics (`customAggregationUnits`); LINE
    /// refuses every message carrying one unless the channel's application was approved.
    #[arg(long)]
    line_custom_aggregation_units: bool,
}

impl DeliveryArguments {
    fn apply(&self, line: &mut LineConfig) -> RetryPolicy {
        let default = RetryPolicy::default();
        if let Some(milliseconds) = self.line_timeout_ms {
            line.timeout = Duration::from_millis(milliseconds);
        }
        line.custom_aggregation_units = self.line_custom_aggregation_units;
        RetryPolicy {
            max_attempts: self.retry_attempts.unwrap_or(default.max_attempts),
            first_delay: self.retry_first_delay_ms.map_or(default.first_delay, Duration::from_millis),
            linger: self.retry_linger_ms.map_or(default.linger, Duration::from_millis),
            ..default
        }
    }
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Creates a staff account for the admin console and prints its password, generated
    /// unless --password-stdin gives one. Division staff act on the programs given with
    /// --programs. The first administrator is made this way.
    CreateUser {
        #[arg(long)]
        login: String,
        /// The name the console shows, e.g. 健康支援課 山田.
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: oshirase::admin::Role,
        #[arg(long, default_value = "")]
        division: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists the staff accounts: role, division, disabled or not, open sessions.
    Users,
    /// Disables an account: it cannot sign in and its sessions end at once.
    DisableUser { login: String },
    /// Enables a disabled account again.
    EnableUser { login: String },
    /// Gives an account a new password (generated unless --password-stdin) and ends its
    /// sessions.
    ResetPassword {
        login: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Ends every session of an account; it must sign in again.
    EndSessions { login: String },
    /// Prints a new admin API token for a division, which may act on the programs given
    /// with --programs (or on all with --admin). Only its hash is stored.
    CreateToken {
        #[arg(long)]
        division: String,
        #[arg(long)]
        admin: bool,
        /// How many days it works.
        #[arg(long, default_value_t = oshirase::admin::TOKEN_VALID_DAYS)]
        valid_days: i64,
    },
    /// Lists the admin API tokens (never the tokens themselves): id, division, scope,
    /// expiry, revoked or not.
    Tokens,
    /// Revokes a token at once.
    RevokeToken { id: i64 },
    /// Makes a token expire a number of days from now (0: now).
    ExpireToken {
        id: i64,
        #[arg(long, default_value_t = 0)]
        in_days: i64,
    },
}

/// A password from the first line of standard input, or a generated one (then `true`).
fn password_from(stdin: bool) -> Result<(String, bool)> {
    if !stdin {
        return Ok((oshirase::admin::accounts::generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    oshirase::admin::accounts::check_password(&password)?;
    Ok((password, false))
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Runs a plugin's example cases through the sandbox and shows every difference.
    Test { plugin: PathBuf, cases: PathBuf },
    /// Validates a plugin and, when every check passes, makes it its program's active
    /// version; a rejected plugin is kept with the reason and changes nothing.
    Publish {
        file: PathBuf,
        /// The plugin's example cases, which must all pass.
        #[arg(long)]
        cases: Option<PathBuf>,
    },
    /// Lists every program's versions with their state (active, inactive, rejected), then
    /// the bundled programs this data directory does not have (available).
    List,
    /// Makes an accepted version of a program the active one for the next run; without
    /// VERSION, the version bundled with this release, published first if need be.
    Activate { program: String, version: Option<i64> },
    /// Makes the previously active version of a program active again.
    Rollback { program: String },
    /// Leaves a program with no active version, so runs skip it.
    Disable { program: String },
    /// Shows whom a program would notify on a date, sending and storing nothing.
    DryRun {
        program: String,
        #[arg(long, value_parser = parse_day)]
        date: Option<Day>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// What the benchmarks over a synthetic city share: which city, how often, where, for
/// which day, and how to print.
#[derive(clap::Args)]
struct CityBenchArguments {
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    /// Where the city and its data directories go; the city is reused when already there.
    #[arg(long, default_value = "./oshirase-bench")]
    work: PathBuf,
    /// The date to evaluate for (YYYY-MM-DD); today in Japan by default.
    #[arg(long, value_parser = parse_day)]
    date: Option<Day>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum BenchCommand {
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
    /// Imports a synthetic city with `oshirase import` and with the `sqlite3` shell's
    /// `.import`, alternating, and prints the medians and their ratio.
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        residents: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 5)]
        repetitions: usize,
        /// Where the city and the databases go; the city is reused when already there.
        #[arg(long, default_value = "./oshirase-bench")]
        work: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Lists the kept generations, newest first.
    List,
    /// Makes an earlier generation the active one again.
    Activate { id: i64 },
}

#[derive(Clone, Copy, ValueEnum)]
enum TextEncoding {
    Utf8,
    ShiftJis,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
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

fn parse_day(text: &str) -> Result<Day, String> {
    Day::parse_iso(text).ok_or_else(|| format!("{text:?} is not a date as YYYY-MM-DD"))
}

#[tokio::main]
async fn main() -> Result<()> {
    oshirase::init_logging();
    let arguments = Arguments::parse();
    let data = arguments.data;
    let programs = arguments.programs;
    match arguments.command {
        Command::Demo { exit_after_run, port, date, residents, seed } => {
            let port = if exit_after_run { 0 } else { port };
            let options = oshirase::demo::DemoOptions {
                data_directory: data,
                programs,
                residents,
                seed,
                today: date.unwrap_or_else(today_in_japan),
                address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                exit_after_run,
            };
            let summary = oshirase::demo::demo(options).await?;
            if exit_after_run {
                println!("{}", serde_json::to_string(&summary)?);
            }
        }
        Command::LineEmulator { port, token, journal, monthly_limit, aggregation_units_approved, faults } => {
            let emulator = match journal {
                Some(path) => oshirase::emulator::Emulator::with_journal(&token, path)?,
                None => oshirase::emulator::Emulator::new(&token),
            };
            emulator.set_faults(faults).map_err(anyhow::Error::msg)?;
            emulator.set_monthly_limit(monthly_limit);
            emulator.approve_aggregation_units(aggregation_units_approved);
            let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await.with_context(|| format!("cannot listen on port {port}"))?;
            println!("listening on http://{}", listener.local_addr()?);
            emulator.serve(listener, async { tokio::signal::ctrl_c().await.unwrap_or(()) }).await?;
        }
        Command::Import { directory, keep, allow_shrink } => {
            let database = open_database(&data)?;
            let options = ImportOptions {
                actor: "cli".into(),
                source: directory.display().to_string(),
                keep_generations: keep,
                max_shrink_percent: (!allow_shrink).then_some(oshirase::import::DEFAULT_MAX_SHRINK_PERCENT),
            };
            let report = database.write(move |connection| Ok(import_directory(connection, &directory, &options))).await?;
            match report {
                Ok(report) => {
                    for warning in &report.warnings {
                        eprintln!("warning: {warning}");
                    }
                    println!("{}", serde_json::to_string(&report)?);
                }
                Err(ImportError::Refused(refused)) => {
                    for problem in &refused.problems {
                        eprintln!("{problem}");
                    }
                    if refused.problems.len() >= oshirase::import::MAX_PROBLEMS {
                        eprintln!("(stopped after {} problems)", oshirase::import::MAX_PROBLEMS);
                    }
                    anyhow::bail!("import refused, nothing changed: {} problems", refused.problems.len());
                }
                Err(ImportError::Failed(error)) => return Err(error.context("import failed, nothing changed")),
            }
        }
        Command::Gen { residents, seed, out, date, encoding } => {
            let encoding = match encoding {
                TextEncoding::Utf8 => FileEncoding::Utf8,
                TextEncoding::ShiftJis => FileEncoding::ShiftJis,
            };
            let city = oshirase::synth::generate(residents, seed, date.unwrap_or_else(today_in_japan), &out, encoding)?;
            println!("wrote {} residents in {} households ({} departed) to {}", city.residents, city.households, city.departed, out.display());
        }
        Command::Bench(BenchCommand::Plugins { residents, city }) => {
            let options = oshirase::bench::PluginBenchOptions { residents, seed: city.seed, repetitions: city.repetitions, work_directory: city.work };
            let report = oshirase::bench::plugins(&options, city.date.unwrap_or_else(today_in_japan)).await?;
            print_report(&report, city.json)?;
        }
        Command::Bench(BenchCommand::Eval { residents, city }) => {
            let options = oshirase::bench::eval::EvalBenchOptions { residents, seed: city.seed, repetitions: city.repetitions, work_directory: city.work };
            let today = city.date.unwrap_or_else(today_in_japan);
            let report = tokio::task::spawn_blocking(move || oshirase::bench::eval::eval(&options, today)).await??;
            print_report(&report, city.json)?;
        }
        Command::Bench(BenchCommand::Delivery { recipients, repetitions, work, json }) => {
            let options = oshirase::bench::delivery::DeliveryBenchOptions { recipients, repetitions, work_directory: work };
            let report = oshirase::bench::delivery::delivery(&options).await?;
            print_report(&report, json)?;
        }
        Command::Bench(BenchCommand::Webhook { events, events_per_request, connections, repetitions, work, json }) => {
            let options = oshirase::bench::WebhookBenchOptions { events, events_per_request, connections, repetitions, work_directory: work };
            let report = oshirase::bench::webhook(&options).await?;
            print_report(&report, json)?;
        }
        Command::Bench(BenchCommand::Abuse { mut servers, loops, seconds, work, json }) => {
            if servers.is_empty() {
                servers.push(std::env::current_exe().context("cannot find this oshirase binary")?);
            }
            let options = oshirase::bench::abuse::AbuseBenchOptions { servers, loops, seconds, work_directory: work };
            let report = oshirase::bench::abuse::abuse(&options).await?;
            print_report(&report, json)?;
        }
        Command::Bench(BenchCommand::Import { residents, seed, repetitions, work, json }) => {
            let options = oshirase::bench::ImportBenchOptions { residents, seed, repetitions, work_directory: work };
            let report = tokio::task::spawn_blocking(move || oshirase::bench::import(&options, today_in_japan())).await??;
            print_report(&report, json)?;
        }
        Command::Snapshot(SnapshotCommand::List) => {
            for snapshot in open_database(&data)?.read(oshirase::snapshot::list).await? {
                let active = if snapshot.active { "active" } else { "" };
                println!("{}\t{}\t{}\t{}\t{}\t{}", snapshot.id, snapshot.imported_at, snapshot.residents, active, snapshot.source, snapshot.files);
            }
        }
        Command::Snapshot(SnapshotCommand::Activate { id }) => {
            open_database(&data)?.write(move |connection| oshirase::snapshot::activate(connection, id, "cli")).await?;
            println!("snapshot {id} is active");
        }
        Command::Register { resident_id, line_user_id, email, channels } => {
            Service::open(&data, &programs).await?.register(resident_id, line_user_id, email, channels).await?;
        }
        Command::Run { date, line_base_url, line_token, delivery } => {
            let service = Service::open(&data, &programs).await?;
            let mut line = LineConfig::new(line_base_url, line_token);
            let retry = delivery.apply(&mut line);
            let channels = Channels { line: LineClient::new(line)?, mail: None };
            let report = service.run_day(date.unwrap_or_else(today_in_japan), &channels, &retry).await?;
            println!("{}", serde_json::to_string(&report)?);
            if report.runs.iter().any(|run| run.error.is_some()) {
                anyhow::bail!("some programs failed; see the runs above");
            }
        }
        Command::Plugin(PluginCommand::Test { plugin, cases }) => {
            let wasm = std::fs::read(&plugin).with_context(|| format!("cannot read {}", plugin.display()))?;
            let yaml = std::fs::read_to_string(&cases).with_context(|| format!("cannot read {}", cases.display()))?;
            let engine = PluginEngine::new(Limits::default(), None)?;
            let report = oshirase::cases::test_plugin(&engine, &wasm, &yaml)?;
            print!("{report}");
            if !report.passed() {
                anyhow::bail!("{} of {} example cases failed", report.failures.len(), report.cases);
            }
        }
        Command::Plugin(PluginCommand::List) => {
            let service = Service::open(&data, &programs).await?;
            for version in service.database.read(oshirase::publish::list).await? {
                let program = if version.program.is_empty() { "(unknown)" } else { &version.program };
                let first_line = version.validation.lines().next().unwrap_or_default();
                println!("{program}\t{}\t{}\t{}\t{}\t{}\t{}\t{first_line}", version.version, version.state, version.name, version.published_by, version.published_at, &version.sha256[..12]);
            }
            for program in service.database.read(oshirase::publish::available_bundled).await? {
                println!("{program}\t-\tavailable\t\tbundled\t\t\tbundled with this release; oshirase plugin activate {program} to use it");
            }
        }
        Command::Plugin(PluginCommand::Publish { file, cases }) => {
            let wasm = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let cases = cases.map(|path| std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))).transpose()?;
            let service = Service::open(&data, &programs).await?;
            let candidate = Candidate { wasm, cases, publisher: "cli".into(), program: None, activation: Activation::Always };
            let published = oshirase::publish::publish(&service.database, &service.plugins, candidate).await?;
            println!("{}", serde_json::to_string(&published)?);
        }
        Command::Plugin(PluginCommand::Activate { program, version: Some(version) }) => {
            let service = Service::open(&data, &programs).await?;
            service.database.write(move |connection| Ok(oshirase::publish::activate(connection, &program, version, "cli")?)).await?;
        }
        Command::Plugin(PluginCommand::Activate { program, version: None }) => {
            let service = Service::open(&data, &programs).await?;
            let published = oshirase::publish::activate_bundled(&service.database, &service.plugins, &program, "cli").await?;
            println!("{}", serde_json::to_string(&published)?);
        }
        Command::Plugin(PluginCommand::Rollback { program }) => {
            let service = Service::open(&data, &programs).await?;
            let version = service.database.write(move |connection| Ok(oshirase::publish::rollback(connection, &program, "cli")?)).await?;
            println!("version {version} is active");
        }
        Command::Plugin(PluginCommand::Disable { program }) => {
            let service = Service::open(&data, &programs).await?;
            service.database.write(move |connection| Ok(oshirase::publish::disable(connection, &program, "cli")?)).await?;
        }
        Command::Admin(command) => {
            use oshirase::admin::accounts;
            std::fs::create_dir_all(&data).with_context(|| format!("cannot create data directory {}", data.display()))?;
            let database = oshirase::database::Database::open(&data.join("oshirase.db"))?;
            let now = chrono::Utc::now().timestamp_millis();
            match command {
                AdminCommand::CreateUser { login, name, role, division, password_stdin } => {
                    let (password, generated) = password_from(password_stdin)?;
                    let hash = accounts::hash_password(&password)?;
                    let user = accounts::NewUser { login: login.clone(), display_name: name, role, division, programs };
                    database.write(move |connection| accounts::create_user(connection, &user, &hash, "cli")).await?;
                    if generated { println!("created {login}; password: {password}") } else { println!("created {login}") }
                }
                AdminCommand::Users => {
                    for account in database.read(move |connection| accounts::list_accounts(connection, now)).await? {
                        let state = if account.disabled { "disabled" } else { "enabled" };
                        println!("{}\t{}\t{}\t{}\t{state}\t{} sessions\t{}", account.login, account.role, account.division, account.programs.join(","), account.sessions, account.display_name);
                    }
                }
                AdminCommand::DisableUser { login } => database.write(move |connection| accounts::set_disabled(connection, &login, true, "cli")).await?,
                AdminCommand::EnableUser { login } => database.write(move |connection| accounts::set_disabled(connection, &login, false, "cli")).await?,
                AdminCommand::ResetPassword { login, password_stdin } => {
                    let (password, generated) = password_from(password_stdin)?;
                    let hash = accounts::hash_password(&password)?;
                    let changed = login.clone();
                    database.write(move |connection| accounts::set_password(connection, &changed, &hash, "cli")).await?;
                    if generated { println!("{login}: new password {password}") } else { println!("{login}: password changed") }
                }
                AdminCommand::EndSessions { login } => {
                    let ended = database.write(move |connection| accounts::end_sessions(connection, &login, "cli")).await?;
                    println!("{ended} sessions ended");
                }
                AdminCommand::CreateToken { division, admin, valid_days } => {
                    let token = database.write(move |connection| oshirase::admin::create_token(connection, &division, &programs, admin, valid_days, "cli")).await?;
                    println!("{token}");
                }
                AdminCommand::Tokens => {
                    for token in database.read(oshirase::admin::list_tokens).await? {
                        let scope = if token.admin { "all programs".to_owned() } else { token.programs.join(",") };
                        let state = match (&token.revoked_at, token.works) {
                            (Some(at), _) => format!("revoked {at}"),
                            (None, true) => format!("works until {}", token.expires_at),
                            (None, false) => format!("expired {}", token.expires_at),
                        };
                        println!("{}\t{}\t{scope}\t{state}", token.id, token.division);
                    }
                }
                AdminCommand::RevokeToken { id } => database.write(move |connection| oshirase::admin::revoke_token(connection, id, "cli")).await?,
                AdminCommand::ExpireToken { id, in_days } => database.write(move |connection| oshirase::admin::set_token_expiry(connection, id, in_days, "cli")).await?,
            }
        }
        Command::Serve { config: Some(path), .. } => {
            let config = oshirase::Config::load(&path)?;
            oshirase::serve(config, &programs, oshirase::shutdown_signal()?).await?;
        }
        Command::Serve { config: None, port, webhook } => {
            let shutdown = oshirase::shutdown_signal()?;
            let service = Service::open(&data, &programs).await?;
            let public_url = webhook.public_url.clone();
            let webhook = match webhook.line_secret {
                None => None,
                Some(secret) => {
                    let token = webhook.line_token.context("the LINE webhook needs --line-token (OSHIRASE_LINE_TOKEN) to reply")?;
                    let settings = oshirase::chat::ChatSettings { public_url: webhook.public_url, contact: None };
                    let channels = Channels { line: LineClient::new(LineConfig::new(webhook.line_base_url, token))?, mail: None };
                    Some(oshirase::webhook::Webhook::with_worker(&secret, settings, service.database.clone(), channels)?)
                }
            };
            let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await.with_context(|| format!("cannot listen on port {port}"))?;
            println!("listening on http://{}", listener.local_addr()?);
            let state = oshirase::AppState { webhook, secure_cookies: oshirase::web::cookies_are_secure(public_url.as_deref()), ..oshirase::AppState::new(service) };
            oshirase::run(state, None, listener, oshirase::limits::ServerLimits::default(), shutdown).await?;
        }
        Command::Schedule(ScheduleCommand::List) => {
            let now = chrono::Utc::now();
            for program in open_database(&data)?.read(schedule::load).await? {
                let last_run = program.last_run_at.map_or_else(|| "never".to_string(), schedule::format_japan);
                let next_run = match (&program.cron, program.next_run(now)) {
                    (Err(problem), _) => format!("never: {problem}"),
                    (Ok(_), None) => "never".to_string(),
                    (Ok(_), Some(at)) if at <= now => format!("now, catching up {}", schedule::format_japan(at)),
                    (Ok(_), Some(at)) => schedule::format_japan(at),
                };
                println!("{}\t{}\t{}\t{last_run}\t{next_run}", program.program, program.expression, program.source);
            }
        }
        Command::Schedule(ScheduleCommand::Set { program, cron }) => {
            let message = format!("{program} runs on {cron:?}, Japan time");
            open_database(&data)?.write(move |connection| schedule::set(connection, &program, &cron, "cli")).await?;
            println!("{message}");
        }
        Command::Schedule(ScheduleCommand::Reset { program }) => {
            let message = format!("{program} runs on its manifest's schedule");
            let changed = open_database(&data)?.write(move |connection| schedule::reset(connection, &program, "cli")).await?;
            println!("{message}{}", if changed { "" } else { " (it had no override)" });
        }
        Command::Backup { file, force } => {
            let source = data.join("oshirase.db");
            let destination = file.clone();
            let report = tokio::task::spawn_blocking(move || oshirase::database::backup(&source, &destination, force)).await??;
            println!("copied {} pages of {} bytes ({} bytes) to {}", report.pages, report.page_size, report.pages * report.page_size, file.display());
        }
        Command::Registration(RegistrationCommand::Issue { resident_id, valid_days }) => {
            let database = open_database(&data)?;
            let number = database.write(move |connection| oshirase::chat::number::issue(connection, &resident_id, valid_days, "cli")).await?;
            println!("{number}");
        }
        Command::Postcards { out, font } => {
            let font = oshirase::postcards::load_font(&font)?;
            let file = out.clone();
            let printed = open_database(&data)?.write(move |connection| oshirase::postcards::print(connection, &file, &font, "cli")).await?;
            match printed.postcards {
                0 => println!("no postcards to print; {} was not written", out.display()),
                count => println!("wrote {count} postcards ({} bytes) to {}", printed.bytes, out.display()),
            }
            if printed.expired > 0 {
                println!("dropped {} postcards whose number had expired; issue those residents new numbers", printed.expired);
            }
        }
        Command::Plugin(PluginCommand::DryRun { program, date, format }) => {
            let service = Service::open(&data, &programs).await?;
            let notices = service.dry_run(program, date.unwrap_or_else(today_in_japan)).await?;
            for notice in notices {
                match format {
                    Format::Json => println!("{}", serde_json::to_string(&notice)?),
                    Format::Table => println!("{}\t{}\t{}\t{}\t{}", notice.resident_id, notice.occasion, notice.send_on, notice.expires_on, notice.reason),
                }
            }
        }
    }
    Ok(())
}
