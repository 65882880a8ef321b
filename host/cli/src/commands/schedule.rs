//! `oshirase schedule list|set|reset`: when each program runs, in Japan time.

use oshirase_core::schedule;
use oshirase_core::time::format_japan;

use super::Global;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Every active program: its schedule, whether it is the manifest's or an override,
    /// and its last and next run in Japan time.
    List,
    /// Runs PROGRAM on CRON (6 fields with seconds, or classic 5; days of the week 0–7,
    /// 0 and 7 Sunday; Japan time) instead of its manifest's schedule.
    Set { program: String, cron: String },
    /// Runs PROGRAM on its manifest's schedule again.
    Reset { program: String },
}

pub async fn run(global: &Global, command: Command) -> anyhow::Result<()> {
    let database = global.database()?;
    match command {
        Command::List => {
            let now = chrono::Utc::now();
            for program in database.read(schedule::load).await? {
                let last_run = program.last_run_at.map_or_else(|| "never".to_string(), format_japan);
                let next_run = match (&program.cron, program.next_run(now)) {
                    (Err(problem), _) => format!("never: {problem}"),
                    (Ok(_), None) => "never".to_string(),
                    (Ok(_), Some(at)) if at <= now => format!("now, catching up {}", format_japan(at)),
                    (Ok(_), Some(at)) => format_japan(at),
                };
                println!("{}\t{}\t{}\t{last_run}\t{next_run}", program.program, program.expression, program.source);
            }
        }
        Command::Set { program, cron } => {
            let message = format!("{program} runs on {cron:?}, Japan time");
            database.write(move |connection| schedule::set(connection, &program, &cron, "cli")).await?;
            println!("{message}");
        }
        Command::Reset { program } => {
            let message = format!("{program} runs on its manifest's schedule");
            let changed = database.write(move |connection| schedule::reset(connection, &program, "cli")).await?;
            println!("{message}{}", if changed { "" } else { " (it had no override)" });
        }
    }
    Ok(())
}
