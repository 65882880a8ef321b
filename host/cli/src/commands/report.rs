//! `oshirase report uptake`: did the notices work — uptake of the residents told against
//! those not told, measured between the two latest exports, stored for the console and
//! printed as JSON or CSV.

use anyhow::Context;
use oshirase_core::Day;
use oshirase_core::uptake::{UptakeQuery, UptakeTable, compute, store};

use super::{Global, parse_day};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Of the residents whose window opened from --from to --to (the previous month when
    /// not given), the share who took it up within --within days of their notice, told
    /// against not told: the export before the active one says who was eligible, the
    /// active one who took it up. Groups under ten show as "<10".
    Uptake {
        /// Only this program.
        #[arg(long)]
        program: Option<String>,
        #[arg(long, value_parser = parse_day, requires = "to")]
        from: Option<Day>,
        #[arg(long, value_parser = parse_day, requires = "from")]
        to: Option<Day>,
        /// Days after the notice in which a record counts as taken up.
        #[arg(long, default_value_t = 60)]
        within: u32,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Json,
    Csv,
}

pub async fn run(global: &Global, command: Command) -> anyhow::Result<()> {
    let Command::Uptake { program, from, to, within, format } = command;
    let (from, to) = match (from, to) {
        (Some(from), Some(to)) => (from, to),
        _ => previous_month(oshirase_core::time::today_in_japan()),
    };
    let service = global.service().await?;
    let plugins = service.plugins.clone();
    let query = UptakeQuery { program: program.clone(), from, to, within_days: within };
    let report = service
        .database
        .read(move |connection| Ok(compute(connection, &plugins, &query)?))
        .await
        .context("cannot measure uptake")?;
    let table = service
        .database
        .write(move |connection| {
            store(connection, &report, "cli")?;
            Ok(UptakeTable::of(&report, program.as_deref(), &report.link_opens(connection)?))
        })
        .await?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&table)?),
        Format::Csv => print!("{}", table.to_csv()?),
    }
    Ok(())
}

/// The first and last day of the month before `today`'s.
fn previous_month(today: Day) -> (Day, Day) {
    let (year, month, _) = today.ymd();
    let first_of_this_month = Day::from_ymd(year, month, 1).expect("the first of a month is a date");
    let last = first_of_this_month.add_days(-1);
    let (year, month, _) = last.ymd();
    (Day::from_ymd(year, month, 1).expect("the first of a month is a date"), last)
}
