//! The admin API and who may call it. A caller is known by a division token (sent as
//! `Authorization: Bearer`, stored as a SHA-256 hash), made for scripts, or by a staff
//! session cookie from the console's sign-in (`accounts.rs`), which must send its CSRF
//! token in `X-CSRF-Token` with every request that changes something. Roles: the
//! administrator may do everything; division staff only act on their own programs;
//! viewers only read. Routes: program plugins (`programs.rs`), resident snapshots
//! (`snapshots.rs`), applications for registration (`applications.rs`), sign-in
//! (`session.rs`), the console's read-only reports (`reports.rs`) and reserved sends and
//! broadcasts (`sends.rs`), staff accounts and tokens taken back (`users.rs`).

pub mod accounts;
pub mod applications;
pub mod programs;
pub mod reports;
pub mod sends;
pub mod session;
pub mod snapshots;
pub mod throttle;
pub mod users;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use rusqlite::{Connection, OptionalExtension};

use crate::database::{audit, now_text};
use crate::publish::PublishError;
use crate::registry::sha256_hex;
use crate::web::{AppError, AppState};

/// What a caller may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including snapshots, applications, broadcasts and accounts.
    Administrator,
    /// Only the programs named for them.
    Division,
    /// Reads everything a division may read; changes nothing.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Division => "division",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Administrator, Role::Division, Role::Viewer].into_iter().find(|role| role.as_str() == text)
    }
}

/// Who called, as their token or session says.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Caller {
    /// The actor the audit log names: `user:LOGIN`, `division:NAME` or `admin:NAME`.
    pub actor: String,
    pub name: String,
    pub division: String,
    pub programs: Vec<String>,
    pub role: Role,
}

impl Caller {
    /// Only the administrator may act on what belongs to no division, such as snapshots.
    pub fn must_be_administrator(&self) -> Result<(), AuthError> {
        if self.role == Role::Administrator { Ok(()) } else { Err(AuthError::AdministratorOnly { actor: self.actor.clone() }) }
    }

    pub fn may_act_on(&self, program: &str) -> Result<(), AuthError> {
        match self.role {
            Role::Administrator => Ok(()),
            Role::Division if self.programs.iter().any(|owned| owned == program) => Ok(()),
            _ => Err(AuthError::Forbidden { actor: self.actor.clone(), program: program.to_owned() }),
        }
    }

    /// Whether the caller may see who a program would reach, by name.
    pub fn may_see_names(&self) -> bool {
        self.role == Role::Administrator
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing or unknown admin token (send Authorization: Bearer TOKEN) or session (sign in)")]
    Unauthorized,
    #[error("{actor} may not act on program {program:?}")]
    Forbidden { actor: String, program: String },
    #[error("{actor} may not do this: it is for the administrator")]
    AdministratorOnly { actor: String },
    #[error("{actor} is a viewer and may only read")]
    ReadOnly { actor: String },
    #[error("missing or wrong CSRF token (send the X-CSRF-Token header of your session)")]
    Csrf,
}

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
        let caller = if let Some(token) = parts.headers.get("authorization").and_then(|value| value.to_str().ok()).and_then(|value| value.strip_prefix("Bearer ")) {
            let token = token.trim().to_owned();
            state.service.database.read(move |connection| authenticate(connection, &token, &now_text())).await?.ok_or(AuthError::Unauthorized)?
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

/// A change made in a session must carry the session's CSRF token in `X-CSRF-Token`.
pub fn check_csrf(headers: &HeaderMap, csrf_token: &str) -> Result<(), AuthError> {
    let sent = headers.get("x-csrf-token").and_then(|value| value.to_str().ok()).unwrap_or_default();
    if constant_time_equal(sent.as_bytes(), csrf_token.as_bytes()) { Ok(()) } else { Err(AuthError::Csrf) }
}

/// Compares two secrets without stopping at the first difference.
pub fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && left.iter().zip(right).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
}

/// The program codes of a stored comma-separated list (`staff_users.programs`,
/// `admin_tokens.programs`).
pub fn program_codes(stored: &str) -> Vec<String> {
    stored.split(',').filter(|code| !code.is_empty()).map(str::to_owned).collect()
}

/// How long a token works when made without saying: a year.
pub const TOKEN_VALID_DAYS: i64 = 365;

/// Creates a token for `division` (owning `programs`, or everything when `admin`) that
/// works for `valid_days`, and returns it; only its hash is stored, so it is shown this
/// once.
pub fn create_token(connection: &Connection, division: &str, programs: &[String], admin: bool, valid_days: i64, actor: &str) -> anyhow::Result<String> {
    anyhow::ensure!(!division.trim().is_empty(), "the division name is empty");
    anyhow::ensure!(admin || !programs.is_empty(), "a division token must name the programs it may publish (or be --admin)");
    anyhow::ensure!((1..=3650).contains(&valid_days), "a token must work for 1 to 3650 days, not {valid_days}");
    let token = format!("osh_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    connection.execute(
        "INSERT INTO admin_tokens (token_sha256, division, programs, admin, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        (sha256_hex(token.as_bytes()), division, programs.join(","), admin, now_text(), crate::database::text_in_days(valid_days)),
    )?;
    let scope = if admin { "all programs".to_owned() } else { programs.join(",") };
    audit(connection, actor, "create-token", &format!("token:{}", connection.last_insert_rowid()), &format!("{division}: {scope}, {valid_days} days"))?;
    Ok(token)
}

/// The caller a token belongs to at `now` (`now_text`), if it is known, not revoked and
/// not expired.
pub fn authenticate(connection: &Connection, token: &str, now: &str) -> anyhow::Result<Option<Caller>> {
    let caller = connection
        .query_row(
            "SELECT division, programs, admin FROM admin_tokens WHERE token_sha256 = ?1 AND revoked_at IS NULL AND expires_at > ?2",
            (sha256_hex(token.as_bytes()), now),
            |row| {
                let programs: String = row.get(1)?;
                let (division, admin): (String, bool) = (row.get(0)?, row.get(2)?);
                Ok(Caller {
                    actor: if admin { format!("admin:{division}") } else { format!("division:{division}") },
                    name: division.clone(),
                    division,
                    programs: program_codes(&programs),
                    role: if admin { Role::Administrator } else { Role::Division },
                })
            },
        )
        .optional()?;
    Ok(caller)
}

/// A token as the administrator sees it: never the token or its hash.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TokenListing {
    pub id: i64,
    pub division: String,
    pub programs: Vec<String>,
    pub admin: bool,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    /// Neither revoked nor expired.
    pub works: bool,
}

/// Every token, newest first.
pub fn list_tokens(connection: &Connection) -> anyhow::Result<Vec<TokenListing>> {
    let mut statement = connection.prepare(
        "SELECT id, division, programs, admin, created_at, expires_at, revoked_at, revoked_at IS NULL AND expires_at > ?1 FROM admin_tokens ORDER BY id DESC",
    )?;
    let tokens = statement
        .query_map([now_text()], |row| {
            let programs: String = row.get(2)?;
            Ok(TokenListing {
                id: row.get(0)?,
                division: row.get(1)?,
                programs: program_codes(&programs),
                admin: row.get(3)?,
                created_at: row.get(4)?,
                expires_at: row.get(5)?,
                revoked_at: row.get(6)?,
                works: row.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(tokens)
}

fn token_exists(connection: &Connection, id: i64) -> anyhow::Result<()> {
    let exists: bool = connection.query_row("SELECT EXISTS (SELECT 1 FROM admin_tokens WHERE id = ?1)", [id], |row| row.get(0))?;
    if exists { Ok(()) } else { Err(accounts::AccountError::UnknownToken(id).into()) }
}

/// Revokes token `id` at once; revoking it again changes nothing. Audited.
pub fn revoke_token(connection: &Connection, id: i64, actor: &str) -> anyhow::Result<()> {
    token_exists(connection, id)?;
    connection.execute("UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1", (id, now_text()))?;
    audit(connection, actor, "revoke-token", &format!("token:{id}"), "")?;
    Ok(())
}

/// Makes token `id` expire `days` from now (0: now). Audited.
pub fn set_token_expiry(connection: &Connection, id: i64, days: i64, actor: &str) -> anyhow::Result<()> {
    if !(0..=3650).contains(&days) {
        return Err(accounts::AccountError::Invalid(format!("a token's expiry must be 0 to 3650 days from now, not {days}")).into());
    }
    token_exists(connection, id)?;
    let expires_at = crate::database::text_in_days(days);
    connection.execute("UPDATE admin_tokens SET expires_at = ?2 WHERE id = ?1", (id, &expires_at))?;
    audit(connection, actor, "expire-token", &format!("token:{id}"), &expires_at)?;
    Ok(())
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
    if let Some(error) = error.downcast_ref::<crate::reservation::ReservationError>() {
        return Some(match error {
            crate::reservation::ReservationError::NotFound(_) => StatusCode::NOT_FOUND,
            crate::reservation::ReservationError::AlreadySettled { .. } => StatusCode::CONFLICT,
            crate::reservation::ReservationError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        });
    }
    if let Some(error) = error.downcast_ref::<crate::message::WordingError>() {
        return match error {
            crate::message::WordingError::Unknown(_) => Some(StatusCode::NOT_FOUND),
            crate::message::WordingError::Invalid(_) => Some(StatusCode::UNPROCESSABLE_ENTITY),
            crate::message::WordingError::Failed(_) => None,
        };
    }
    if let Some(error) = error.downcast_ref::<accounts::AccountError>() {
        return Some(match error {
            accounts::AccountError::UnknownLogin(_) | accounts::AccountError::UnknownToken(_) => StatusCode::NOT_FOUND,
            accounts::AccountError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        });
    }
    if error.is::<accounts::HashersBusy>() {
        return Some(StatusCode::SERVICE_UNAVAILABLE);
    }
    if let Some(error) = error.downcast_ref::<AuthError>() {
        return Some(match error {
            AuthError::Unauthorized => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden { .. } | AuthError::AdministratorOnly { .. } | AuthError::ReadOnly { .. } | AuthError::Csrf => StatusCode::FORBIDDEN,
        });
    }
    match error.downcast_ref::<PublishError>()? {
        PublishError::Rejected { .. } => Some(StatusCode::UNPROCESSABLE_ENTITY),
        PublishError::AlreadyPublished { .. } | PublishError::Refused(_) => Some(StatusCode::CONFLICT),
        PublishError::NotFound(_) => Some(StatusCode::NOT_FOUND),
        PublishError::Failed(_) => None,
    }
}
