//! The HTTP side: one table of routes, built by `app` so that tests can call it without a
//! socket. It serves the overview of what was sent, the admin API for snapshots and
//! plugins (`admin/`), the LINE webhook (`webhook.rs`) and, in the demo, the LINE emulator under `/line-emulator`.

use axum::extract::{DefaultBodyLimit, State};
use axum::{Json, Router};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::admin;
use crate::emulator::{Emulator, PHONE_STYLE};
use crate::import::ImportRefused;
use crate::service::Service;

/// The largest publish request: a base64-encoded component and its example cases.
const PLUGIN_BODY_LIMIT: usize = 32 << 20;

/// Where the emulator is mounted when the server carries one.
pub const EMULATOR_PATH: &str = "/line-emulator";

#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub emulator: Option<Emulator>,
    /// The LINE webhook, when the server was given a channel secret.
    pub webhook: Option<crate::webhook::Webhook>,
}

/// The largest export upload accepted, in bytes: a city of several million residents.
const MAX_UPLOAD_BYTES: usize = 4 << 30;

/// Every route the server answers.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/", get(overview))
        .route("/healthz", get(|| async { "ok" }))
        .route("/webhook/line", post(crate::webhook::receive))
        .route("/apply/{token}", get(crate::apply::show).post(crate::apply::submit))
        .route("/metrics", get(crate::metrics::render))
        .route("/console", get(|| async { axum::response::Redirect::to("/console/dashboard") }))
        .route("/console/assets/{file}", get(crate::console::asset))
        .route("/console/{page}", get(crate::console::page))
        .route("/admin/openapi.json", get(crate::console::openapi))
        .route("/admin/session", get(admin::session::current).post(admin::session::sign_in).delete(admin::session::sign_out))
        .route("/admin/dashboard", get(admin::reports::show_dashboard))
        .route("/admin/program-summaries", get(admin::reports::list_programs))
        .route("/admin/deliveries", get(admin::reports::show_deliveries))
        .route("/admin/audit", get(admin::reports::show_audit_log))
        .route("/admin/sends", get(admin::sends::list).post(admin::sends::reserve))
        .route("/admin/sends/{id}/cancel", post(admin::sends::cancel))
        .route("/admin/postcards", get(admin::applications::list_postcards).post(admin::applications::print_postcards))
        .route("/admin/postcards/{file}", get(admin::applications::download_postcards))
        .route("/admin/applications", get(admin::applications::list))
        .route("/admin/applications/{id}/approve", post(admin::applications::approve))
        .route("/admin/applications/{id}/reject", post(admin::applications::reject))
        .route("/admin/snapshots", get(admin::snapshots::list).post(admin::snapshots::import).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)))
        .route("/admin/snapshots/{id}/activate", post(admin::snapshots::activate))
        .route("/admin/programs", get(admin::programs::list))
        .route("/admin/programs/{code}/versions", post(admin::programs::publish).layer(DefaultBodyLimit::max(PLUGIN_BODY_LIMIT)))
        .route("/admin/programs/{code}/activate", post(admin::programs::activate))
        .route("/admin/programs/{code}/rollback", post(admin::programs::rollback))
        .route("/admin/programs/{code}/disable", post(admin::programs::disable))
        .route("/admin/programs/{code}", get(admin::programs::detail))
        .route("/admin/programs/{code}/dry-run", get(admin::programs::dry_run))
        .route("/admin/programs/{code}/wording/{occasion}", axum::routing::put(admin::programs::set_wording));
    if let Some(emulator) = &state.emulator {
        router = router.nest_service(EMULATOR_PATH, emulator.router());
    }
    router.with_state(state)
}

/// Every way a request can fail; the one place an error becomes an HTTP answer.
pub enum AppError {
    /// The caller must change the request: the status and what is wrong.
    Request(StatusCode, String),
    /// An import was refused: 422 with every problem found, as JSON.
    ImportRefused(ImportRefused),
    /// Something failed on our side: 500 with the message, never a stack of internals.
    Internal(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    /// Errors whose kind the caller can act on (a wrong token, a rejected plugin) keep
    /// their status; anything else is ours.
    fn from(error: E) -> AppError {
        let error = error.into();
        match admin::status_of(&error) {
            Some(status) => AppError::Request(status, format!("{error:#}")),
            None => AppError::Internal(error),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Request(status, message) => (status, Json(serde_json::json!({ "error": message }))).into_response(),
            AppError::ImportRefused(refused) => {
                (StatusCode::UNPROCESSABLE_ENTITY, Json(serde_json::json!({ "error": "import refused, nothing changed", "problems": refused.problems }))).into_response()
            }
            AppError::Internal(error) => {
                tracing::warn!(error = %format!("{error:#}"), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, Json(serde_json::json!({ "error": format!("{error:#}") }))).into_response()
            }
        }
    }
}

struct Row {
    resident: String,
    ward: String,
    age: String,
    program: String,
    occasion: String,
    reason: String,
    address: String,
    state: String,
    text: String,
}

/// Months for small children, years for everyone else.
fn age_text(birth: oshirase_sdk::Day, today: oshirase_sdk::Day) -> String {
    match birth.months_on(today) {
        months @ 0..24 => format!("{months}か月"),
        _ => format!("{}歳", birth.age_on(today)),
    }
}

/// Which residents received which notices and why, newest first.
async fn overview(State(state): State<AppState>) -> Result<Html<String>, AppError> {
    let (rows, counts) = state
        .service
        .database
        .write(|connection| {
            let snapshot = crate::snapshot::active(connection)?.unwrap_or(0);
            let today = crate::service::today_in_japan();
            let mut statement = connection.prepare(
                "SELECT r.name, r.ward, r.birth_day, v.manifest, n.occasion, n.reason, d.address, d.state, d.text
                 FROM deliveries d JOIN notices n ON n.id = d.notice_id
                 LEFT JOIN residents r ON r.snapshot_id = ?1 AND r.resident_id = n.resident_id
                 LEFT JOIN programs p ON p.code = n.program LEFT JOIN plugin_versions v ON v.id = p.active_version
                 ORDER BY d.id DESC LIMIT 1000",
            )?;
            let rows = statement
                .query_map([snapshot], |row| {
                    let manifest: Option<String> = row.get(3)?;
                    let manifest: Option<crate::registry::Manifest> = manifest.and_then(|text| serde_json::from_str(&text).ok());
                    let occasion: String = row.get(4)?;
                    let birth: Option<i32> = row.get(2)?;
                    Ok(Row {
                        resident: row.get::<_, Option<String>>(0)?.unwrap_or_default(),
                        ward: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        age: birth.map(|birth| age_text(oshirase_sdk::Day(birth), today)).unwrap_or_default(),
                        program: manifest.as_ref().map(|manifest| manifest.name.clone()).unwrap_or_default(),
                        occasion: manifest.as_ref().and_then(|manifest| manifest.occasion(&occasion)).map_or(occasion.clone(), |found| found.title.clone()),
                        reason: row.get(5)?,
                        address: row.get(6)?,
                        state: row.get(7)?,
                        text: row.get(8)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let counts: (i64, i64, i64) = connection.query_row(
                "SELECT (SELECT resident_count FROM snapshots WHERE id = ?1), (SELECT count(*) FROM registrations WHERE active = 1), (SELECT count(*) FROM notices)",
                [snapshot],
                |row| Ok((row.get::<_, Option<i64>>(0)?.unwrap_or(0), row.get(1)?, row.get(2)?)),
            )?;
            Ok((rows, counts))
        })
        .await?;
    let phones = if state.emulator.is_some() { format!("<a href=\"{EMULATOR_PATH}/\">LINE エミュレーターの画面(利用者ごとのスマートフォン)</a>") } else { String::new() };
    let mut table = String::new();
    for row in &rows {
        let escape = |text: &str| html_escape::encode_text(text).into_owned();
        table.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}<br><small>{}</small></td><td>{}</td><td><a href=\"{EMULATOR_PATH}/#{}\">{}</a></td><td>{}</td><td class=\"bubble\">{}</td></tr>",
            escape(&row.resident),
            escape(&row.ward),
            escape(&row.age),
            escape(&row.program),
            escape(&row.occasion),
            escape(&row.reason),
            escape(&row.address),
            escape(&row.address[..9.min(row.address.len())]),
            escape(&row.state),
            escape(&row.text),
        ));
    }
    Ok(Html(format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>oshirase</title>\
         <style>{PHONE_STYLE} table{{border-collapse:collapse;background:white}} td,th{{border:1px solid #ccc;padding:.3em .5em;font-size:.85em;vertical-align:top}} td.bubble{{max-width:28em}}</style></head>\
         <body><h1>oshirase — あなたが使える制度のお知らせ</h1>\
         <p>住民 {} 人(うち LINE 登録 {} 人)、お知らせ {} 件、送信 {} 件。{phones}</p>\
         <table><tr><th>住民(お知らせの対象)</th><th>区</th><th>年齢</th><th>制度 / 時期</th><th>理由(送信されません)</th><th>送り先 LINE</th><th>状態</th><th>送ったメッセージ</th></tr>{table}</table></body></html>",
        counts.0,
        counts.1,
        counts.2,
        rows.len()
    )))
}
