//! `oshirase backup FILE`: a consistent copy of the live database, safe while `serve`
//! writes.

use std::path::PathBuf;

use super::Global;

#[derive(clap::Args)]
pub struct Arguments {
    file: PathBuf,
    /// Overwrite FILE when it exists.
    #[arg(long)]
    force: bool,
}

pub async fn run(global: &Global, Arguments { file, force }: Arguments) -> anyhow::Result<()> {
    let (source, destination) = (global.data.join("oshirase.db"), file.clone());
    let report =
        tokio::task::spawn_blocking(move || oshirase_core::database::backup(&source, &destination, force)).await??;
    println!(
        "copied {} pages of {} bytes ({} bytes) to {}",
        report.pages,
        report.page_size,
        report.pages * report.page_size,
        file.display()
    );
    Ok(())
}
