//! `oshirase line rich-menu`: the LINE account's own setup, done through the Messaging API.

use std::path::PathBuf;

use oshirase_core::channel::line::{DATA_BASE_URL, LineClient, LineConfig};
use oshirase_core::channel::rich_menu;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Draws the chat's rich menu (受け取る設定, 申し込み・登録, 登録内容の確認, ヘルプ) and
    /// makes it every user's default; running it again replaces the menu.
    RichMenu(RichMenuArguments),
}

#[derive(clap::Args)]
pub struct RichMenuArguments {
    #[arg(long, env = "OSHIRASE_LINE_BASE_URL", default_value = "https://api.line.me")]
    line_base_url: String,
    /// LINE's host for files, where the menu's image goes.
    #[arg(long, env = "OSHIRASE_LINE_DATA_BASE_URL", default_value = DATA_BASE_URL)]
    line_data_base_url: String,
    #[arg(long, env = "OSHIRASE_LINE_TOKEN")]
    line_token: String,
    /// A TrueType font with Japanese glyphs, for the menu's labels.
    #[arg(long, default_value = oshirase_core::postcards::DEFAULT_FONT)]
    font: PathBuf,
    /// Also write the menu's image to this PNG file.
    #[arg(long)]
    save_image: Option<PathBuf>,
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    let Command::RichMenu(arguments) = command;
    let font = std::fs::read(&arguments.font).map_err(|error| {
        anyhow::anyhow!(
            "cannot read font file {}: {error}; install the Debian package fonts-ipaexfont-gothic or give --font PATH",
            arguments.font.display()
        )
    })?;
    let image = rich_menu::draw_image(&font)?;
    if let Some(path) = &arguments.save_image {
        std::fs::write(path, &image).map_err(|error| anyhow::anyhow!("cannot write {}: {error}", path.display()))?;
    }
    let line = LineClient::new(LineConfig {
        data_base_url: arguments.line_data_base_url,
        ..LineConfig::new(arguments.line_base_url, arguments.line_token)
    })?;
    let installed = rich_menu::install(&line, image).await?;
    println!("rich menu {} is every user's default", installed.rich_menu_id);
    if !installed.replaced.is_empty() {
        println!("replaced and deleted: {}", installed.replaced.join(", "));
    }
    Ok(())
}
