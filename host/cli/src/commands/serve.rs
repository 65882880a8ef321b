//! `oshirase serve`: the web server, and with `--config` the scheduler and the LINE
//! webhook as the configuration says, until SIGTERM or Ctrl-C.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::Context;
use oshirase_core::channel::Channels;
use oshirase_core::channel::line::{LineClient, LineConfig};
use oshirase_core::chat::ChatSettings;
use oshirase_core::chat::webhook::Webhook;
use oshirase_core::config::ServerLimits;
use oshirase_server::{AppState, shutdown_signal};

use super::Global;

#[derive(clap::Args)]
pub struct Arguments {
    /// The configuration file (see oshirase.example.toml); it names the data directory
    /// and address. Without it only the web server runs, on --port, with --data.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, default_value_t = 8080, conflicts_with = "config")]
    port: u16,
    #[command(flatten)]
    webhook: WebhookArguments,
}

/// The LINE channel the webhook answers for; without a secret there is no webhook.
#[derive(clap::Args)]
struct WebhookArguments {
    /// The channel secret that signs webhook requests (`X-Line-Signature`).
    #[arg(long, env = "OSHIRASE_LINE_SECRET", hide_env_values = true)]
    line_secret: Option<String>,
    /// Where replies go: LINE, or an emulator.
    #[arg(long, env = "OSHIRASE_LINE_BASE_URL", default_value = "https://api.line.me")]
    line_base_url: String,
    /// The channel access token replies are sent with; needed with a secret.
    #[arg(long, env = "OSHIRASE_LINE_TOKEN", hide_env_values = true)]
    line_token: Option<String>,
    /// This server's public address, for the chat's link to the application form
    /// (`/apply/…`); without it residents are told to apply at the counter.
    #[arg(long, env = "OSHIRASE_PUBLIC_URL")]
    public_url: Option<String>,
}

pub async fn run(global: &Global, Arguments { config, port, webhook }: Arguments) -> anyhow::Result<()> {
    if let Some(path) = config {
        let config = oshirase_core::Config::load(&path)?;
        let town = global.town.clone();
        return oshirase_server::serve(config, oshirase_bundled::PROGRAMS, &global.programs, town, shutdown_signal()?)
            .await;
    }
    let shutdown = shutdown_signal()?;
    let service = global.service().await?;
    let public_url = webhook.public_url.clone();
    let webhook = match webhook.line_secret {
        None => None,
        Some(secret) => {
            let token =
                webhook.line_token.context("the LINE webhook needs --line-token (OSHIRASE_LINE_TOKEN) to reply")?;
            let settings = ChatSettings { public_url: webhook.public_url, contact: None };
            let channels = Channels {
                line: LineClient::new(LineConfig::new(webhook.line_base_url, token))?,
                mail: None,
                public_url: None,
            };
            Some(Webhook::with_worker(&secret, settings, service.database.clone(), channels)?)
        }
    };
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .with_context(|| format!("cannot listen on port {port}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    let state = AppState {
        webhook,
        secure_cookies: oshirase_server::web::cookies_are_secure(public_url.as_deref()),
        town: global.town.clone(),
        cookie_path: oshirase_server::web::cookie_path(public_url.as_deref()),
        ..AppState::new(service)
    };
    let limits = ServerLimits::default();
    oshirase_server::run(oshirase_server::web::app_with(state, &limits), None, listener, limits, shutdown).await
}
