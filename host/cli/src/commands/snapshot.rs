//! `oshirase snapshot list|activate`: the kept generations of the resident records.

use super::Global;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Lists the kept generations, newest first.
    List,
    /// Makes an earlier generation the active one again.
    Activate { id: i64 },
}

pub async fn run(global: &Global, command: Command) -> anyhow::Result<()> {
    let database = global.database()?;
    match command {
        Command::List => {
            for snapshot in database.read(oshirase_core::snapshot::list).await? {
                let active = if snapshot.active { "active" } else { "" };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    snapshot.id, snapshot.imported_at, snapshot.residents, active, snapshot.source, snapshot.files
                );
            }
        }
        Command::Activate { id } => {
            database.write(move |connection| oshirase_core::snapshot::activate(connection, id, "cli")).await?;
            println!("snapshot {id} is active");
        }
    }
    Ok(())
}
