//! `oshirase plugin …`: start a new program's project (`scaffold.rs`), test, publish,
//! list, activate, roll back, disable and dry-run the programs' plugins.

use std::path::{Path, PathBuf};

use anyhow::Context;
use oshirase_core::Day;
use oshirase_core::publish::{Activation, Candidate};
use oshirase_core::time::today_in_japan;
use oshirase_sandbox::{Limits, PluginEngine};

use super::scaffold::{Language, new_project};
use super::{Global, parse_day};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Writes a new program's project, outside any repository: the rule, its example
    /// cases, a README, the SDK and the contract. In Rust it builds with `cargo build
    /// --release --target wasm32-wasip2`; in Python with componentize-py (its README says how).
    New {
        /// The program's code: 1–40 lower-case letters, digits or dashes.
        code: String,
        #[arg(long, value_enum, default_value_t = Language::Rust)]
        lang: Language,
        /// Where to write it; `./CODE` by default. It must not exist or must be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
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
    /// Shows whom a program would notify on a date, sending and storing nothing: an active
    /// program by its code, or a component not yet published with `--wasm FILE` (with its
    /// settings at their defaults).
    DryRun {
        #[arg(required_unless_present = "wasm", conflicts_with = "wasm")]
        program: Option<String>,
        #[arg(long)]
        wasm: Option<PathBuf>,
        #[arg(long, value_parser = parse_day)]
        date: Option<Day>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub async fn run(global: &Global, command: Command) -> anyhow::Result<()> {
    match command {
        Command::New { code, lang, dir } => {
            let directory = new_project(&code, lang, dir)?;
            let build = match lang {
                Language::Rust => "cargo build --release --target wasm32-wasip2".to_owned(),
                Language::Python => {
                    format!("componentize-py -d wit/program.wit -w program componentize app -p . -p sdk -o {code}.wasm")
                }
            };
            println!("wrote {}; build it there with: {build}", directory.display());
        }
        Command::Test { plugin, cases } => {
            let wasm = read(&plugin)?;
            let yaml = std::fs::read_to_string(&cases).with_context(|| format!("cannot read {}", cases.display()))?;
            // With a data directory, its cache keeps the compiled component, so a dry run or
            // a publish after the test does not compile it again (a Python component takes
            // seconds); without one, nothing is written.
            let cache = global.data.is_dir().then(|| global.data.join("cache"));
            let engine = PluginEngine::new(Limits::default(), cache)?;
            let report = oshirase_core::cases::test_plugin(&engine, &wasm, &yaml)?;
            print!("{report}");
            if !report.passed() {
                anyhow::bail!("{} of {} example cases failed", report.failures.len(), report.cases);
            }
        }
        Command::List => {
            let service = global.service().await?;
            for version in service.database.read(oshirase_core::publish::list).await? {
                let program = if version.program.is_empty() { "(unknown)" } else { &version.program };
                let first_line = version.validation.lines().next().unwrap_or_default();
                println!(
                    "{program}\t{}\t{}\t{}\t{}\t{}\t{}\t{first_line}",
                    version.version,
                    version.state,
                    version.name,
                    version.published_by,
                    version.published_at,
                    &version.sha256[..12]
                );
            }
            let bundled = service.plugins.bundled;
            for program in service
                .database
                .read(move |connection| oshirase_core::publish::available_bundled(connection, bundled))
                .await?
            {
                println!(
                    "{program}\t-\tavailable\t\tbundled\t\t\tbundled with this release; oshirase plugin activate \
                     {program} to use it"
                );
            }
        }
        Command::Publish { file, cases } => {
            let wasm = read(&file)?;
            let cases = cases
                .map(|path| std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display())))
                .transpose()?;
            let service = global.service().await?;
            let candidate =
                Candidate { wasm, cases, publisher: "cli".into(), program: None, activation: Activation::Always };
            let published = oshirase_core::publish::publish(&service.database, &service.plugins, candidate).await?;
            println!("{}", serde_json::to_string(&published)?);
        }
        Command::Activate { program, version: Some(version) } => {
            let service = global.service().await?;
            service
                .database
                .write(move |connection| Ok(oshirase_core::publish::activate(connection, &program, version, "cli")?))
                .await?;
        }
        Command::Activate { program, version: None } => {
            let service = global.service().await?;
            let published =
                oshirase_core::publish::activate_bundled(&service.database, &service.plugins, &program, "cli").await?;
            println!("{}", serde_json::to_string(&published)?);
        }
        Command::Rollback { program } => {
            let service = global.service().await?;
            let version = service
                .database
                .write(move |connection| Ok(oshirase_core::publish::rollback(connection, &program, "cli")?))
                .await?;
            println!("version {version} is active");
        }
        Command::Disable { program } => {
            let service = global.service().await?;
            service
                .database
                .write(move |connection| Ok(oshirase_core::publish::disable(connection, &program, "cli")?))
                .await?;
        }
        Command::DryRun { program, wasm, date, format } => {
            let service = global.service().await?;
            let today = date.unwrap_or_else(today_in_japan);
            let notices = match (program, wasm) {
                (_, Some(wasm)) => service.dry_run_unpublished(read(&wasm)?, today).await?,
                (Some(program), None) => service.dry_run(program, today).await?,
                (None, None) => anyhow::bail!("name an active program, or a component with --wasm FILE"),
            };
            for notice in notices {
                match format {
                    Format::Json => println!("{}", serde_json::to_string(&notice)?),
                    Format::Table => println!(
                        "{}\t{}\t{}\t{}\t{}",
                        notice.resident_id, notice.occasion, notice.send_on, notice.expires_on, notice.reason
                    ),
                }
            }
        }
    }
    Ok(())
}
