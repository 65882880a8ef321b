//! The admin API's routes for taking staff access back, for the administrator only:
//! list the accounts and tokens, disable and re-enable an account, give it a new
//! password, end its sessions, revoke a token or change when it expires. Every change is
//! audited (in `accounts.rs` and `mod.rs`, the same functions `oshirase admin` calls).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::web::{AppError, AppState};
use oshirase_core::accounts::{self, AccountError, Caller, StaffAccount, TokenListing};

impl From<AccountError> for AppError {
    fn from(error: AccountError) -> AppError {
        let status = match error {
            AccountError::UnknownLogin(_) | AccountError::UnknownToken(_) => StatusCode::NOT_FOUND,
            AccountError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AccountError::Failed(error) => return AppError::Internal(error),
        };
        AppError::Request(status, error.to_string())
    }
}

/// `GET /admin/users`.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<StaffAccount>>, AppError> {
    caller.must_be_administrator()?;
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Json(state.service.database.read(move |connection| accounts::list_accounts(connection, now)).await?))
}

/// `POST /admin/users/{login}/disable`: it cannot sign in and its sessions end at once.
pub async fn disable(state: State<AppState>, caller: Caller, login: Path<String>) -> Result<StatusCode, AppError> {
    set_disabled(state, caller, login, true).await
}

/// `POST /admin/users/{login}/enable`.
pub async fn enable(state: State<AppState>, caller: Caller, login: Path<String>) -> Result<StatusCode, AppError> {
    set_disabled(state, caller, login, false).await
}

async fn set_disabled(
    State(state): State<AppState>,
    caller: Caller,
    Path(login): Path<String>,
    disabled: bool,
) -> Result<StatusCode, AppError> {
    caller.must_be_administrator()?;
    state
        .service
        .database
        .write(move |connection| Ok(accounts::set_disabled(connection, &login, disabled, &caller.actor)))
        .await??;
    Ok(StatusCode::NO_CONTENT)
}

/// What a password reset answers: the new password, shown this once.
#[derive(serde::Serialize)]
pub struct NewPassword {
    pub login: String,
    pub password: String,
}

/// `POST /admin/users/{login}/password`: a new generated password, which ends the
/// account's sessions. It is hashed before the database is touched.
pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(login): Path<String>,
) -> Result<Json<NewPassword>, AppError> {
    caller.must_be_administrator()?;
    let password = accounts::generate_password();
    let hash = state.limits.password_hashers.hash(password.clone()).await??;
    let changed = login.clone();
    state
        .service
        .database
        .write(move |connection| Ok(accounts::set_password(connection, &changed, &hash, &caller.actor)))
        .await??;
    Ok(Json(NewPassword { login, password }))
}

/// What ending sessions answers.
#[derive(serde::Serialize)]
pub struct Ended {
    pub sessions: usize,
}

/// `POST /admin/users/{login}/end-sessions`.
pub async fn end_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Path(login): Path<String>,
) -> Result<Json<Ended>, AppError> {
    caller.must_be_administrator()?;
    let sessions = state
        .service
        .database
        .write(move |connection| Ok(accounts::end_sessions(connection, &login, &caller.actor)))
        .await??;
    Ok(Json(Ended { sessions }))
}

/// `GET /admin/tokens`: never a token itself, which only its maker ever saw.
pub async fn list_tokens(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<TokenListing>>, AppError> {
    caller.must_be_administrator()?;
    Ok(Json(state.service.database.read(accounts::list_tokens).await?))
}

/// `POST /admin/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    caller.must_be_administrator()?;
    state.service.database.write(move |connection| Ok(accounts::revoke_token(connection, id, &caller.actor))).await??;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize)]
pub struct Expiry {
    /// Days from now; 0 ends it now.
    pub days: i64,
}

/// `POST /admin/tokens/{id}/expiry` `{"days": N}`.
pub async fn set_token_expiry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(expiry): Json<Expiry>,
) -> Result<StatusCode, AppError> {
    caller.must_be_administrator()?;
    state
        .service
        .database
        .write(move |connection| Ok(accounts::set_token_expiry(connection, id, expiry.days, &caller.actor)))
        .await??;
    Ok(StatusCode::NO_CONTENT)
}
