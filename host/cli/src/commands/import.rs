//! `oshirase import DIR`: a municipal export becomes the active snapshot, or is refused
//! with every problem and changes nothing.

use std::path::PathBuf;

use oshirase_core::import::{DEFAULT_MAX_SHRINK_PERCENT, ImportError, ImportOptions, MAX_PROBLEMS, import_directory};

use super::Global;

#[derive(clap::Args)]
pub struct Arguments {
    directory: PathBuf,
    /// How many snapshot generations to keep, the new one included.
    #[arg(long, env = "OSHIRASE_KEEP_SNAPSHOTS", default_value_t = 3)]
    keep: usize,
    /// Accept an export with 10 % or more fewer residents than the active snapshot.
    #[arg(long)]
    allow_shrink: bool,
    /// The town's mapping file for the standard layout (renamed columns, code tables,
    /// ward names, 外字); by default the export's own import.toml, if it has one.
    #[arg(long, env = "OSHIRASE_IMPORT_MAPPING")]
    mapping: Option<PathBuf>,
}

pub async fn run(
    global: &Global,
    Arguments { directory, keep, allow_shrink, mapping }: Arguments,
) -> anyhow::Result<()> {
    let database = global.database()?;
    let options = ImportOptions {
        actor: "cli".into(),
        source: directory.display().to_string(),
        keep_generations: keep,
        max_shrink_percent: (!allow_shrink).then_some(DEFAULT_MAX_SHRINK_PERCENT),
        mapping,
    };
    match database.write(move |connection| Ok(import_directory(connection, &directory, &options))).await? {
        Ok(report) => {
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Err(ImportError::Refused(refused)) => {
            for problem in &refused.problems {
                eprintln!("{problem}");
            }
            if refused.problems.len() >= MAX_PROBLEMS {
                eprintln!("(stopped after {MAX_PROBLEMS} problems)");
            }
            anyhow::bail!("import refused, nothing changed: {} problems", refused.problems.len());
        }
        Err(ImportError::Failed(error)) => Err(error.context("import failed, nothing changed")),
    }
}
