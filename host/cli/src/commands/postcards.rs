//! `oshirase postcards --out FILE.pdf`: every unprinted postcard into one new PDF.

use std::path::PathBuf;

use super::Global;

#[derive(clap::Args)]
pub struct Arguments {
    /// The PDF to write; it must not exist yet.
    #[arg(long)]
    out: PathBuf,
    /// A TrueType font with Japanese glyphs.
    #[arg(long, default_value = oshirase_core::postcards::DEFAULT_FONT)]
    font: PathBuf,
}

pub async fn run(global: &Global, Arguments { out, font }: Arguments) -> anyhow::Result<()> {
    let font = oshirase_core::postcards::load_font(&font)?;
    let file = out.clone();
    let printed = global
        .database()?
        .write(move |connection| oshirase_core::postcards::print(connection, &file, &font, "cli"))
        .await?;
    match printed.postcards {
        0 => println!("no postcards to print; {} was not written", out.display()),
        count => println!("wrote {count} postcards ({} bytes) to {}", printed.bytes, out.display()),
    }
    if printed.expired > 0 {
        println!("dropped {} postcards whose number had expired; issue those residents new numbers", printed.expired);
    }
    Ok(())
}
