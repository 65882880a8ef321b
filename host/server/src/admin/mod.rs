//! The admin API and who may call it. A caller is known by a division token (sent as
//! `Authorization: Bearer`, stored as a SHA-256 hash), made for scripts, or by a staff
//! session cookie from the console's sign-in (`accounts.rs`), which must send its CSRF
//! token in `X-CSRF-Token` with every request that changes something. Roles: the
//! administrator may do everything; division staff only act on their own programs;
//! viewers only read. Routes: program plugins (`programs.rs`), the settings staff give
//! them (`settings.rs`) and programs made from conditions (`conditions.rs`), resident
//! snapshots (`snapshots.rs`), applications for registration (`applications.rs`), sign-in
//! (`session.rs`), the console's read-only reports (`reports.rs`), uptake measured between
//! two exports (`uptake.rs`), reserved sends and broadcasts (`sends.rs`), surveys and their
//! tallies (`surveys.rs`), staff accounts and tokens taken back (`users.rs`).
pub mod applications;
pub mod conditions;
pub mod programs;
pub mod reports;
pub mod sends;
pub mod session;
pub mod settings;
pub mod snapshots;
pub mod surveys;
pub mod throttle;
pub mod uptake;
pub mod users;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};

use oshirase_core::time::now_text;

use crate::web::{AppError, AppState};
use oshirase_core::accounts::{self, AuthError, Caller, Role};

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "oshirase_session";

/// The value of the session cookie in `headers`, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('=').map(str::to_owned))
        .filter(|value| !value.is_empty())
}

/// The signed-in staff member a request's session cookie names, with the session's CSRF
/// token; `None` when there is no valid session.
pub async fn session_caller(state: &AppState, headers: &HeaderMap) -> Result<Option<(Caller, String)>, AppError> {
    let Some(cookie) = session_cookie(headers) else { return Ok(None) };
    let now = chrono::Utc::now().timestamp_millis();
    Ok(state.service.database.read(move |connection| accounts::session(connection, &cookie, now)).await?)
}

/// Every admin route takes its caller through this extractor: a bearer token, or a
/// session whose changes carry the CSRF token. Viewers are refused anything but reading.
impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, AppError> {
        let reads_only = parts.method == Method::GET || parts.method == Method::HEAD;
        let caller = if let Some(token) = parts
            .headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
        {
            let token = token.trim().to_owned();
            state
                .service
                .database
                .read(move |connection| accounts::authenticate(connection, &token, &now_text()))
                .await?
                .ok_or(AuthError::Unauthorized)?
        } else {
            let (caller, csrf_token) = session_caller(state, &parts.headers).await?.ok_or(AuthError::Unauthorized)?;
            if !reads_only {
                check_csrf(&parts.headers, &csrf_token)?;
            }
            caller
        };
        if caller.role == Role::Viewer && !reads_only {
            return Err(AuthError::ReadOnly { actor: caller.actor }.into());
        }
        Ok(caller)
    }
}

/// The day a request names as `date`, `YYYY-MM-DD` (400 otherwise), or today in Japan
/// when it names none: the day a dry run or a preview evaluates.
pub fn day_or_today(date: Option<&str>) -> Result<oshirase_sdk::Day, AppError> {
    match date {
        Some(text) => oshirase_sdk::Day::parse_iso(text.trim())
            .ok_or_else(|| AppError::Request(StatusCode::BAD_REQUEST, format!("date {text:?} is not YYYY-MM-DD"))),
        None => Ok(oshirase_core::time::today_in_japan()),
    }
}

/// A change made in a session must carry the session's CSRF token in `X-CSRF-Token`.
pub fn check_csrf(headers: &HeaderMap, csrf_token: &str) -> Result<(), AuthError> {
    let sent = headers.get("x-csrf-token").and_then(|value| value.to_str().ok()).unwrap_or_default();
    if constant_time_equal(sent.as_bytes(), csrf_token.as_bytes()) { Ok(()) } else { Err(AuthError::Csrf) }
}

/// Compares two secrets without stopping at the first difference.
pub fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && left.iter().zip(right).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
}

impl From<AuthError> for AppError {
    fn from(error: AuthError) -> AppError {
        let status = match error {
            AuthError::Unauthorized => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden { .. }
            | AuthError::AdministratorOnly { .. }
            | AuthError::ReadOnly { .. }
            | AuthError::Csrf => StatusCode::FORBIDDEN,
        };
        AppError::Request(status, error.to_string())
    }
}
