//! The HTTP side: one table of routes, built by `app` so that tests can call it without a
//! socket, and `serve_connections`, which serves it on a socket within the limits of
//! `limits.rs`. It serves the admin console and API (`console/`, `admin/`), the LINE
//! webhook (`webhook.rs`), the application form (`apply.rs`) and the metrics. The demo
//! (`oshirase-dev demo`) puts its own pages in front of this router; the product has none.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::admin;
use crate::limits::{RequestLimits, ServerLimits};
use oshirase_core::service::Service;

/// The largest publish request: a base64-encoded component and its example cases.
const PLUGIN_BODY_LIMIT: usize = 32 << 20;

#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    /// The LINE webhook, when the server was given a channel secret.
    pub webhook: Option<oshirase_core::chat::webhook::Webhook>,
    /// Rates per address, failed sign-ins, password hashing.
    pub limits: Arc<RequestLimits>,
    /// Whether the session cookie carries `Secure`: always, unless the server's public
    /// address is plain `http://` (the demo, the tests on this machine). Set from the
    /// configuration, never from a request's `Host`, which a proxy may rewrite.
    pub secure_cookies: bool,
    /// The town this process serves when a server hosts several (`--town`), shown on the
    /// console so that staff know whose records they are looking at.
    pub town: Option<String>,
    /// The path the session cookie is sent for: the public address's path (`/chuo` for a
    /// town a proxy serves at `https://HOST/chuo/`), so that towns under one host name
    /// keep their sessions apart; `/` by default.
    pub cookie_path: String,
}

impl AppState {
    /// A server of `service` with no webhook, secure cookies, the client's address taken
    /// from the connection, and no town's name.
    pub fn new(service: Service) -> AppState {
        AppState {
            service,
            webhook: None,
            limits: RequestLimits::new(false),
            secure_cookies: true,
            town: None,
            cookie_path: "/".into(),
        }
    }
}

/// Whether the session cookie must be `Secure` for a server reached at `public_url`:
/// always, unless that address is plain `http://` (trying the service on one machine).
pub fn cookies_are_secure(public_url: Option<&str>) -> bool {
    !public_url.is_some_and(|url| url.starts_with("http://"))
}

/// The path of the server's public address, without its last `/`: what the session
/// cookie is sent for. `/` when there is no address or it has no path.
pub fn cookie_path(public_url: Option<&str>) -> String {
    let path = public_url
        .and_then(|url| url.split_once("://"))
        .and_then(|(_, rest)| rest.find('/').map(|slash| &rest[slash..]))
        .map(|path| path.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/'))
        .unwrap_or_default();
    if path.is_empty() { "/".into() } else { path.into() }
}

/// `/` and `/console` of the production server: the console's first page. The address is
/// relative, as every one the console gives, so that it holds under a reverse proxy's
/// path (`https://HOST/chuo/` → `https://HOST/chuo/console/dashboard`).
async fn to_the_console() -> Redirect {
    Redirect::to("console/dashboard")
}

/// `/console/`: the console's first page, relative to it.
async fn to_the_first_page() -> Redirect {
    Redirect::to("dashboard")
}

/// `GET /metrics`: counts only, in Prometheus's text format (`oshirase_core::metrics`).
async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let text = state.service.database.read(oshirase_core::metrics::text).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

/// The largest export upload accepted, in bytes: a city of several million residents.
const MAX_UPLOAD_BYTES: usize = 4 << 30;

/// Every route the server answers. Uploads (an export, a plugin) may take minutes as
/// long as their bodies keep coming; every other request must be answered within
/// `request_timeout` (408).
pub fn app(state: AppState) -> Router {
    app_with(state, &ServerLimits::default())
}

/// `app` with the given limits on time.
pub fn app_with(state: AppState, limits: &ServerLimits) -> Router {
    let sign_in_rate = axum::middleware::from_fn_with_state(state.clone(), crate::limits::limit_sign_ins);
    let form_rate = axum::middleware::from_fn_with_state(state.clone(), crate::limits::limit_form);
    let uploads = Router::new()
        .route(
            "/admin/snapshots",
            get(admin::snapshots::list).post(admin::snapshots::import).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
        .route(
            "/admin/programs/{code}/versions",
            post(admin::programs::publish).layer(DefaultBodyLimit::max(PLUGIN_BODY_LIMIT)),
        );
    let router = Router::new()
        .route("/", get(to_the_console))
        .route("/healthz", get(|| async { "ok" }))
        .route("/webhook/line", post(crate::webhook::receive))
        .route("/apply/{token}", get(crate::apply::show).post(crate::apply::submit).layer(form_rate.clone()))
        .route("/r/{token}", get(crate::links::open).layer(form_rate))
        .route("/metrics", get(metrics))
        .route("/console", get(to_the_console))
        .route("/console/", get(to_the_first_page))
        .route("/console/assets/{file}", get(crate::console::asset))
        .route("/console/{page}", get(crate::console::page))
        .route("/admin/openapi.json", get(crate::console::openapi))
        .route(
            "/admin/session",
            get(admin::session::current)
                .post(admin::session::sign_in)
                .delete(admin::session::sign_out)
                .layer(sign_in_rate),
        )
        .route("/admin/dashboard", get(admin::reports::show_dashboard))
        .route("/admin/program-summaries", get(admin::reports::list_programs))
        .route("/admin/deliveries", get(admin::reports::show_deliveries))
        .route("/admin/audit", get(admin::reports::show_audit_log))
        .route("/admin/uptake", get(admin::uptake::show).post(admin::uptake::measure))
        .route("/admin/sends", get(admin::sends::list).post(admin::sends::reserve))
        .route("/admin/sends/{id}/cancel", post(admin::sends::cancel))
        .route("/admin/surveys", get(admin::surveys::list).post(admin::surveys::create))
        .route("/admin/surveys/{id}", get(admin::surveys::tally))
        .route("/admin/surveys/{id}/csv", get(admin::surveys::csv))
        .route("/admin/postcards", get(admin::applications::list_postcards).post(admin::applications::print_postcards))
        .route("/admin/postcards/{file}", get(admin::applications::download_postcards))
        .route("/admin/applications", get(admin::applications::list))
        .route("/admin/applications/{id}/approve", post(admin::applications::approve))
        .route("/admin/applications/{id}/reject", post(admin::applications::reject))
        .route("/admin/snapshots/{id}/activate", post(admin::snapshots::activate))
        .route("/admin/programs", get(admin::programs::list))
        .route("/admin/conditions", get(admin::conditions::form).post(admin::conditions::create))
        .route("/admin/conditions/dry-run", post(admin::conditions::dry_run))
        .route("/admin/programs/{code}/activate", post(admin::programs::activate))
        .route("/admin/programs/{code}/rollback", post(admin::programs::rollback))
        .route("/admin/programs/{code}/disable", post(admin::programs::disable))
        .route("/admin/programs/{code}", get(admin::programs::detail))
        .route("/admin/programs/{code}/dry-run", get(admin::programs::dry_run))
        .route("/admin/programs/{code}/wording/{occasion}", axum::routing::put(admin::programs::set_wording))
        .route("/admin/programs/{code}/links/{occasion}", axum::routing::put(admin::programs::set_links))
        .route("/admin/programs/{code}/settings", get(admin::settings::list).put(admin::settings::save))
        .route("/admin/programs/{code}/settings/preview", post(admin::settings::preview))
        .route("/admin/users", get(admin::users::list))
        .route("/admin/users/{login}/disable", post(admin::users::disable))
        .route("/admin/users/{login}/enable", post(admin::users::enable))
        .route("/admin/users/{login}/password", post(admin::users::reset_password))
        .route("/admin/users/{login}/end-sessions", post(admin::users::end_sessions))
        .route("/admin/tokens", get(admin::users::list_tokens))
        .route("/admin/tokens/{id}/revoke", post(admin::users::revoke_token))
        .route("/admin/tokens/{id}/expiry", post(admin::users::set_token_expiry));
    let timed = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout(),
    ));
    timed
        .merge(uploads)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.request_timeout()))
        .with_state(state)
}

/// Serves `router` on `listener` until `stop` is cancelled, within `limits`: at most
/// `max_connections` at once (beyond, new connections wait in the kernel's queue), a
/// header-read timeout that also closes idle kept-alive connections, and each request
/// tagged with its peer's address (`ConnectInfo`). Once stopped, it accepts nothing new,
/// lets the requests under way finish and closes idle connections.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: &ServerLimits,
    stop: CancellationToken,
) {
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(limits.header_read_timeout());
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the connection semaphore is never closed"),
            () = stop.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, or a connection reset before it was taken: wait a
                    // moment rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(move |mut request: axum::extract::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
        let connection = builder.serve_connection(
            hyper_util::rt::TokioIo::new(stream),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Every way a request can fail, and how it is answered. The errors a caller can act on
/// become `Request` through a `From` beside the handlers that meet them (`admin/*.rs`,
/// `webhook`); every other error is `Internal`.
pub enum AppError {
    /// The caller must change the request: the status and what is wrong.
    Request(StatusCode, String),
    /// The same with more than a message: the status and the whole JSON answer, which has
    /// an `error` (as an import refused with every problem found).
    RequestWithDetail(StatusCode, serde_json::Value),
    /// Something failed on our side: 500 with the message, never a stack of internals.
    Internal(anyhow::Error),
}

/// Anything that is not one of the typed errors the handlers map to their status (each
/// `From` beside its handlers) is ours: 500.
impl From<anyhow::Error> for AppError {
    fn from(error: anyhow::Error) -> AppError {
        AppError::Internal(error)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Request(status, message) => {
                (status, Json(serde_json::json!({ "error": message }))).into_response()
            }
            AppError::RequestWithDetail(status, answer) => (status, Json(answer)).into_response(),
            AppError::Internal(error) => {
                // The detail goes to the log only: it may name tables, files or values,
                // which are no business of whoever sent the request.
                let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
                tracing::warn!(error = %format!("{error:#}"), %reference, "request failed");
                let message = format!("internal error; the server's log has its details under {reference}");
                (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": message }))).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_internal_error_answers_a_reference_and_keeps_its_detail_for_the_log() {
        let error = anyhow::anyhow!("cannot read table residents of /var/lib/oshirase/oshirase.db: 山田 太郎");
        let response = AppError::Internal(error).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = String::from_utf8(axum::body::to_bytes(response.into_body(), 4096).await.unwrap().to_vec()).unwrap();
        assert!(body.contains("internal error; the server's log has its details under "), "{body}");
        assert!(!body.contains("residents") && !body.contains("/var/lib") && !body.contains("山田"), "{body}");
    }
}
