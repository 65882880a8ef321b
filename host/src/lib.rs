//! oshirase tells residents about the benefits, checkups and vaccinations they can use, at
//! the moment they can use them, through LINE. Each program's rules are a sandboxed
//! WebAssembly plugin evaluated against the city's resident snapshot. See ARCHITECTURE.md.

pub mod admin;
pub mod apply;
pub mod bench;
pub mod cases;
pub mod channel;
pub mod chat;
pub mod cron;
pub mod database;
pub mod demo;
pub mod emulator;
pub mod evaluate;
pub mod import;
pub mod message;
pub mod outbox;
pub mod plugin;
pub mod publish;
pub mod registry;
pub mod retry;
pub mod service;
pub mod snapshot;
pub mod synth;
pub mod web;
pub mod webhook;

use std::future::Future;

pub use oshirase_sdk::Day;
pub use web::{AppState, app};

/// Logs to stderr at the level in `OSHIRASE_LOG` (info by default). Nothing at info level
/// names a resident.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("OSHIRASE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
}

/// Serves `app(state)` on `listener` until `shutdown` completes.
pub async fn run(state: AppState, listener: tokio::net::TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
