//! The admin console's pages: one HTML shell per page, served only to signed-in staff
//! (anyone else is sent to the sign-in page), and one script (`app.js`) that draws each
//! page from the JSON admin API, so every page does exactly what the API allows the
//! caller. Also serves the OpenAPI document of that API (`openapi.json`).

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::admin::session_caller;
use crate::web::{AppError, AppState};

/// Every page: its path under `/console/` and its title in the navigation.
pub const PAGES: [(&str, &str); 7] = [
    ("dashboard", "ダッシュボード"),
    ("programs", "制度とプラグイン"),
    ("messages", "文面"),
    ("sending", "送信"),
    ("registrations", "登録申請"),
    ("deliveries", "配信状況"),
    ("audit", "監査ログ"),
];

const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("style.css");
/// The OpenAPI document of the admin API; a test checks it names every `/admin` route.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Scripts and styles come from this server only; no page may be framed.
fn security_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `GET /console/{page}`.
pub async fn page(State(state): State<AppState>, Path(page): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    let mut response = if page == "login" {
        Html(shell("login", "サインイン", "null")).into_response()
    } else {
        let Some((_, title)) = PAGES.iter().find(|(slug, _)| *slug == page) else {
            return Err(AppError::Request(StatusCode::NOT_FOUND, format!("no console page {page:?}")));
        };
        match session_caller(&state, &headers).await? {
            None => Redirect::to(&format!("/console/login?next=/console/{page}")).into_response(),
            Some((caller, csrf_token)) => {
                let session = serde_json::json!({ "caller": caller, "csrf_token": csrf_token, "pages": PAGES });
                Html(shell(&page, title, &session.to_string())).into_response()
            }
        }
    };
    security_headers(&mut response);
    Ok(response)
}

/// A page's HTML: the session as data (the script reads it; `<` is escaped so no text in
/// it can end the element), and the script that draws the page.
fn shell(page: &str, title: &str, session: &str) -> String {
    let session = session.replace('<', "\\u003c");
    format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — oshirase 管理</title><link rel=\"stylesheet\" href=\"/console/assets/style.css\"></head>\
         <body data-page=\"{page}\"><script id=\"session\" type=\"application/json\">{session}</script>\
         <header id=\"top\"></header><main id=\"main\"><h1>{title}</h1><div id=\"content\">読み込み中…</div></main>\
         <script src=\"/console/assets/app.js\"></script></body></html>"
    )
}

/// `GET /console/assets/{file}`: the script and the style sheet.
pub async fn asset(Path(file): Path<String>) -> Result<Response, AppError> {
    let (body, content_type) = match file.as_str() {
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return Err(AppError::Request(StatusCode::NOT_FOUND, format!("no console asset {file:?}"))),
    };
    let mut response = ([(CONTENT_TYPE, content_type)], body).into_response();
    security_headers(&mut response);
    Ok(response)
}

/// `GET /admin/openapi.json`: public, like any API's description.
pub async fn openapi() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], OPENAPI)
}
