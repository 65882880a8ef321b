//! `oshirase registration issue RESIDENT_ID`: a registration number for the chat, printed
//! and queued on a postcard to the resident's address.

use super::Global;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Issues a registration number for a resident of the active snapshot, prints it and
    /// queues its postcard; it works once, until it expires, and replaces the resident's
    /// unused earlier numbers.
    Issue {
        resident_id: String,
        #[arg(long, default_value_t = oshirase_core::chat::number::DEFAULT_VALID_DAYS)]
        valid_days: u32,
    },
}

pub async fn run(global: &Global, command: Command) -> anyhow::Result<()> {
    let Command::Issue { resident_id, valid_days } = command;
    let number = global
        .database()?
        .write(move |connection| oshirase_core::chat::number::issue(connection, &resident_id, valid_days, "cli"))
        .await?;
    println!("{number}");
    Ok(())
}
