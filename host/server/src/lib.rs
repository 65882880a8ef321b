//! The web server of oshirase: one table of routes (`web::app`) for the admin API and
//! console, the LINE webhook, the application form and the metrics, served on a socket
//! within limits, with the scheduler loop beside it (`serve`). The only crate that serves
//! HTTP. See ARCHITECTURE.md.

pub mod admin;
pub mod apply;
pub mod console;
pub mod limits;
pub mod links;
pub mod scheduler;
pub mod web;
pub mod webhook;

use std::future::Future;

use anyhow::Context;
use oshirase_core::Config;
use oshirase_core::chat::ChatSettings;
use oshirase_core::chat::webhook::Webhook;
use oshirase_core::registry::BundledComponent;
use oshirase_core::service::Service;
use tokio_util::sync::CancellationToken;

pub use scheduler::Scheduler;
pub use web::{AppState, app};

/// Logs to stderr at the level in `OSHIRASE_LOG` (info by default), every line led by
/// `town=NAME` when the process serves a town of several on one server. Nothing at info
/// level names a resident.
pub fn init_logging(town: Option<&str>) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("OSHIRASE_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr);
    match town {
        Some(town) => {
            builder.event_format(WithTown { town: town.to_owned(), inner: tracing_subscriber::fmt::format() }).init()
        }
        None => builder.init(),
    }
}

/// A log line's format led by the town's name, so that the lines of several towns' processes
/// in one journal can be told apart and filtered.
struct WithTown<F> {
    town: String,
    inner: F,
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for WithTown<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "town={} ", self.town)?;
        self.inner.format_event(context, writer, event)
    }
}

/// Serves `router` (`web::app_with`, or the demo's pages in front of it) on `listener`
/// within `limits` and, when given, runs the `scheduler` beside it, until `shutdown` completes. Then the web server
/// lets the requests under way finish and the scheduler the LINE request in flight (its outcome
/// recorded), and both start nothing new: queued deliveries stay queued for the next
/// start.
pub async fn run(
    router: axum::Router,
    scheduler: Option<Scheduler>,
    listener: tokio::net::TcpListener,
    limits: limits::ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let serving = web::serve_connections(listener, router, &limits, stop.clone());
    let scheduling = async {
        if let Some(scheduler) = &scheduler {
            scheduler.run(stop.clone()).await;
        }
    };
    let watching = async {
        tokio::select! {
            () = shutdown => stop.cancel(),
            () = stop.cancelled() => {}
        }
    };
    tokio::join!(serving, scheduling, watching);
    Ok(())
}

/// `oshirase serve --config`: opens the data directory that `config` names (a new one
/// gets the `bundled` components `programs` names), shows `town`'s name on the console when
/// given, listens where it says, prints `listening on
/// http://ADDRESS` once the socket is bound, and runs the web server and the scheduler
/// until `shutdown` completes.
pub async fn serve(
    config: Config,
    bundled: &'static [BundledComponent],
    programs: &[String],
    town: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
        }
    });
    // Opening a new data directory compiles the bundled plugins, which takes a while: a
    // stop asked for meanwhile is honoured at once.
    let service = tokio::select! {
        service = Service::open(&config.server.data, bundled, programs) => service?,
        () = stop.cancelled() => return Ok(()),
    };
    let scheduler = Scheduler::new(service.clone(), &config)?;
    // The LINE webhook answers when the channel secret that signs its requests is set.
    let webhook = match &config.line.channel_secret {
        None => None,
        Some(secret) => {
            let settings =
                ChatSettings { public_url: config.server.public_url.clone(), contact: config.server.contact.clone() };
            Some(Webhook::with_worker(secret, settings, service.database.clone(), config.channels()?)?)
        }
    };
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    println!("listening on http://{}", listener.local_addr()?);
    let state = AppState {
        service,
        webhook,
        limits: limits::RequestLimits::new(config.server.limits.forwarded_for),
        secure_cookies: web::cookies_are_secure(config.server.public_url.as_deref()),
        town,
        cookie_path: web::cookie_path(config.server.public_url.as_deref()),
    };
    let limits = config.server.limits.clone();
    run(web::app_with(state, &limits), Some(scheduler), listener, limits, stop.cancelled_owned()).await
}

/// A future that completes on SIGTERM (how systemd stops a service) or SIGINT (Ctrl-C).
/// The handlers are installed when this is called, so a signal that comes before the
/// future is polled is not lost.
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
            _ = interrupt.recv() => tracing::info!("SIGINT: stopping"),
        }
    })
}
