//! The admin API's sign-in: `POST /admin/session` checks a login and password and sets
//! the session cookie, `GET` says who is signed in (with the CSRF token the pages send
//! back), `DELETE` signs out.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::accounts::{self, SESSION_MILLISECONDS, SignInError};
use super::{Caller, SESSION_COOKIE, session_caller, session_cookie};
use crate::web::{AppError, AppState};

#[derive(serde::Deserialize)]
pub struct SignIn {
    pub login: String,
    pub password: String,
}

/// Who is signed in, and the token their changes must carry.
#[derive(serde::Serialize)]
pub struct SessionInfo {
    pub caller: Caller,
    pub csrf_token: String,
}

/// The cookie attributes: unreadable by scripts, never sent by other sites, and over
/// HTTPS only unless the console is reached on this machine (the demo, the tests).
fn cookie(headers: &HeaderMap, value: &str, max_age_seconds: i64) -> String {
    let host = headers.get("host").and_then(|value| value.to_str().ok()).unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let secure = if ["localhost", "127.0.0.1", "[::1]"].contains(&host) { "" } else { "; Secure" };
    format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}")
}

/// `POST /admin/session` `{"login", "password"}`.
pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap, Json(body): Json<SignIn>) -> Result<Response, AppError> {
    let now = chrono::Utc::now().timestamp_millis();
    let opened = state.service.database.write(move |connection| accounts::sign_in(connection, body.login.trim(), &body.password, now)).await?;
    match opened {
        Ok(session) => {
            let set_cookie = cookie(&headers, &session.cookie, SESSION_MILLISECONDS / 1000);
            Ok(([(SET_COOKIE, set_cookie)], Json(SessionInfo { caller: session.caller, csrf_token: session.csrf_token })).into_response())
        }
        Err(error @ SignInError::WrongLoginOrPassword) => Err(AppError::Request(StatusCode::UNAUTHORIZED, error.to_string())),
        Err(error @ SignInError::Locked { .. }) => Err(AppError::Request(StatusCode::TOO_MANY_REQUESTS, error.to_string())),
    }
}

/// `GET /admin/session`.
pub async fn current(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<SessionInfo>, AppError> {
    let (caller, csrf_token) = session_caller(&state, &headers).await?.ok_or(super::AuthError::Unauthorized)?;
    Ok(Json(SessionInfo { caller, csrf_token }))
}

/// `DELETE /admin/session`: the session ends on the server and the cookie is cleared.
/// Signing out needs the CSRF token too, so another site cannot sign staff out; viewers,
/// who may change nothing else, may sign out.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let (caller, csrf_token) = session_caller(&state, &headers).await?.ok_or(super::AuthError::Unauthorized)?;
    super::check_csrf(&headers, &csrf_token)?;
    if let Some(cookie_value) = session_cookie(&headers) {
        let actor = caller.actor.clone();
        state
            .service
            .database
            .write(move |connection| {
                accounts::sign_out(connection, &cookie_value)?;
                crate::database::audit(connection, &actor, "sign-out", "console", "")
            })
            .await?;
    }
    Ok(([(SET_COOKIE, cookie(&headers, "", 0))], StatusCode::NO_CONTENT).into_response())
}
