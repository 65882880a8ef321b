//! `oshirase register RESIDENT_ID [LINE_USER_ID] [--email ADDRESS]`: links a resident to
//! where their notices go, until the chat does it.

use super::Global;

#[derive(clap::Args)]
pub struct Arguments {
    resident_id: String,
    line_user_id: Option<String>,
    /// An e-mail address, confirmed by the resident.
    #[arg(long)]
    email: Option<String>,
    /// Where notices go: line, mail or both; every one given by default. An address
    /// not chosen is the fallback when LINE cannot deliver.
    #[arg(long)]
    channels: Option<String>,
}

pub async fn run(
    global: &Global,
    Arguments { resident_id, line_user_id, email, channels }: Arguments,
) -> anyhow::Result<()> {
    global.service().await?.register(resident_id, line_user_id, email, channels).await
}
