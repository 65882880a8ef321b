//! The admin API: who is calling (division tokens, stored as SHA-256 hashes) and the
//! routes for program plugins (`programs.rs`), resident snapshots (`snapshots.rs`) and
//! applications for registration (`applications.rs`). A division may act only on the
//! program codes its token names; an administrator's token may act on all, and only it may
//! import or switch snapshots and decide applications.

pub mod applications;
pub mod programs;
pub mod snapshots;

use axum::http::{HeaderMap, StatusCode};
use rusqlite::{Connection, OptionalExtension};

use crate::database::{audit, now_text};
use crate::publish::PublishError;
use crate::registry::sha256_hex;
use crate::web::{AppError, AppState};

/// Who called, as their token says.
#[derive(Clone, Debug)]
pub struct Caller {
    pub division: String,
    pub programs: Vec<String>,
    pub admin: bool,
}

impl Caller {
    /// The actor the audit log names.
    fn actor(&self) -> String {
        if self.admin { format!("admin:{}", self.division) } else { format!("division:{}", self.division) }
    }

    /// Only the administrator may act on what belongs to no division, such as snapshots.
    fn must_be_administrator(&self) -> Result<(), AuthError> {
        if self.admin { Ok(()) } else { Err(AuthError::AdministratorOnly { division: self.division.clone() }) }
    }

    fn may_act_on(&self, program: &str) -> Result<(), AuthError> {
        if self.admin || self.programs.iter().any(|owned| owned == program) {
            Ok(())
        } else {
            Err(AuthError::Forbidden { division: self.division.clone(), program: program.to_owned() })
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing or unknown admin token (send Authorization: Bearer TOKEN)")]
    Unauthorized,
    #[error("division {division} may not act on program {program:?}")]
    Forbidden { division: String, program: String },
    #[error("division {division} may not do this: it is for the administrator")]
    AdministratorOnly { division: String },
}

/// Creates a token for `division` (owning `programs`, or everything when `admin`) and
/// returns it; only its hash is stored, so it is shown this once.
pub fn create_token(connection: &Connection, division: &str, programs: &[String], admin: bool, actor: &str) -> anyhow::Result<String> {
    anyhow::ensure!(!division.trim().is_empty(), "the division name is empty");
    anyhow::ensure!(admin || !programs.is_empty(), "a division token must name the programs it may publish (or be --admin)");
    let token = format!("osh_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    connection.execute(
        "INSERT INTO admin_tokens (token_sha256, division, programs, admin, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        (sha256_hex(token.as_bytes()), division, programs.join(","), admin, now_text()),
    )?;
    let scope = if admin { "all programs".to_owned() } else { programs.join(",") };
    audit(connection, actor, "create-token", division, &scope)?;
    Ok(token)
}

/// The caller a token belongs to, if it is known.
pub fn authenticate(connection: &Connection, token: &str) -> anyhow::Result<Option<Caller>> {
    let caller = connection
        .query_row("SELECT division, programs, admin FROM admin_tokens WHERE token_sha256 = ?1", [sha256_hex(token.as_bytes())], |row| {
            let programs: String = row.get(1)?;
            Ok(Caller { division: row.get(0)?, programs: programs.split(',').filter(|code| !code.is_empty()).map(str::to_owned).collect(), admin: row.get(2)? })
        })
        .optional()?;
    Ok(caller)
}

/// The HTTP status for the errors whose kind the caller can act on; others are 500.
pub fn status_of(error: &anyhow::Error) -> Option<StatusCode> {
    if let Some(error) = error.downcast_ref::<crate::apply::ApplicationError>() {
        return Some(match error {
            crate::apply::ApplicationError::NotFound(_) => StatusCode::NOT_FOUND,
            crate::apply::ApplicationError::AlreadyDecided { .. } => StatusCode::CONFLICT,
            crate::apply::ApplicationError::UnknownResident(_) => StatusCode::UNPROCESSABLE_ENTITY,
        });
    }
    if let Some(error) = error.downcast_ref::<AuthError>() {
        return Some(match error {
            AuthError::Unauthorized => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden { .. } | AuthError::AdministratorOnly { .. } => StatusCode::FORBIDDEN,
        });
    }
    match error.downcast_ref::<PublishError>()? {
        PublishError::Rejected { .. } => Some(StatusCode::UNPROCESSABLE_ENTITY),
        PublishError::AlreadyPublished { .. } | PublishError::Refused(_) => Some(StatusCode::CONFLICT),
        PublishError::NotFound(_) => Some(StatusCode::NOT_FOUND),
        PublishError::Failed(_) => None,
    }
}

/// The audit actor of a caller who must be the administrator.
async fn administrator(state: &AppState, headers: &HeaderMap) -> Result<String, AppError> {
    let caller = caller(state, headers).await?;
    caller.must_be_administrator()?;
    Ok(caller.actor())
}

/// The caller a request's bearer token names; 401 when there is none or it is unknown.
async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, AppError> {
    let token = headers.get("authorization").and_then(|value| value.to_str().ok()).and_then(|value| value.strip_prefix("Bearer ")).ok_or(AuthError::Unauthorized)?.trim().to_owned();
    let found = state.service.database.call(move |connection| authenticate(connection, &token)).await?;
    Ok(found.ok_or(AuthError::Unauthorized)?)
}

/// The audit actor of a caller allowed to act on `program`.
async fn authorized(state: &AppState, headers: &HeaderMap, program: &str) -> Result<String, AppError> {
    let caller = caller(state, headers).await?;
    caller.may_act_on(program)?;
    Ok(caller.actor())
}
