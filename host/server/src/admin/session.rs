//! The admin API's sign-in: `POST /admin/session` checks a login and password and sets
//! the session cookie, `GET` says who is signed in (with the CSRF token the pages send
//! back), `DELETE` signs out.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use std::time::Instant;

use super::{SESSION_COOKIE, session_caller, session_cookie};
use crate::limits::ClientAddress;
use crate::web::{AppError, AppState};
use oshirase_core::accounts::{self, Caller, HashersBusy, SESSION_MILLISECONDS};
use oshirase_core::database::audit;

impl From<HashersBusy> for AppError {
    fn from(error: HashersBusy) -> AppError {
        AppError::Request(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
    }
}

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
/// HTTPS only unless the server was configured as reached over plain HTTP (the demo).
fn cookie(state: &AppState, value: &str, max_age_seconds: i64) -> String {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let path = &state.cookie_path;
    format!("{SESSION_COOKIE}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}")
}

/// The one answer to a wrong password, an unknown login and a disabled account alike.
const WRONG_LOGIN_OR_PASSWORD: &str = "wrong login or password";

/// `POST /admin/session` `{"login", "password"}`. The login and address pair must not be
/// waiting after failures (429), and a place on the hashing threads must be free (503);
/// the account is looked up on a read connection and the
/// password checked on the hashing threads with no database connection held; only a
/// right password writes (the session), and failures are audited in aggregate. An
/// unknown login, a disabled account and a wrong password take the same path and get the
/// same answer.
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    Json(body): Json<SignIn>,
) -> Result<Response, AppError> {
    let login = body.login.trim().to_owned();
    state
        .limits
        .failed_sign_ins
        .check(&login, address, Instant::now())
        .map_err(|wait| AppError::Request(StatusCode::TOO_MANY_REQUESTS, wait.to_string()))?;
    let place = state.limits.password_hashers.reserve()?;
    let looked_up = login.clone();
    let account =
        state.service.database.read(move |connection| accounts::find_for_sign_in(connection, &looked_up)).await?;
    let (user_id, stored) = account.map_or((None, None), |(id, hash)| (Some(id), Some(hash)));
    let matched = place.verify(body.password, stored).await?;
    match user_id.filter(|_| matched) {
        Some(user_id) => {
            state.limits.failed_sign_ins.succeeded(&login, address);
            let now = chrono::Utc::now().timestamp_millis();
            let session = state
                .service
                .database
                .write(move |connection| accounts::open_session(connection, user_id, now))
                .await?;
            let set_cookie = cookie(&state, &session.cookie, SESSION_MILLISECONDS / 1000);
            Ok((
                [(SET_COOKIE, set_cookie)],
                Json(SessionInfo { caller: session.caller, csrf_token: session.csrf_token }),
            )
                .into_response())
        }
        None => {
            let subject = if user_id.is_some() { format!("user:{login}") } else { "unknown login".to_owned() };
            if let Some(due) = state.limits.failed_sign_ins.failed(&login, address, &subject, Instant::now()) {
                let detail = format!("{} failed sign-ins within the hour", due.failures);
                state
                    .service
                    .database
                    .write(move |connection| audit(connection, "anonymous", "sign-in-failed", &due.subject, &detail))
                    .await?;
            }
            Err(AppError::Request(StatusCode::UNAUTHORIZED, WRONG_LOGIN_OR_PASSWORD.to_owned()))
        }
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
                oshirase_core::database::audit(connection, &actor, "sign-out", "console", "")
            })
            .await?;
    }
    Ok(([(SET_COOKIE, cookie(&state, "", 0))], StatusCode::NO_CONTENT).into_response())
}
