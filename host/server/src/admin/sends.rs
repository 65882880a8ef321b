//! The admin API's reserved sends (`reservation.rs`): run a program and send what it
//! finds due, now or at a chosen time in Japan; broadcast a message to every registered
//! resident or to one category (administrator only); list and cancel.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use crate::web::{AppError, AppState};
use oshirase_core::accounts::Caller;
use oshirase_core::reservation::{Reservation, ReservationError, Reserved};

impl From<ReservationError> for AppError {
    fn from(error: ReservationError) -> AppError {
        let status = match error {
            ReservationError::NotFound(_) => StatusCode::NOT_FOUND,
            ReservationError::AlreadySettled { .. } => StatusCode::CONFLICT,
            ReservationError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ReservationError::Failed(error) => return AppError::Internal(error),
        };
        AppError::Request(status, error.to_string())
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct ReserveBody {
    #[serde(flatten)]
    pub what: Reserved,
    /// When, in Japan time (`YYYY-MM-DDTHH:MM` as a browser's date-time field gives it,
    /// seconds optional); now when absent.
    #[serde(default)]
    pub send_at: Option<String>,
}

/// A Japan-time date and time as the console's form sends it.
pub(crate) fn parse_japan_time(text: &str) -> Result<DateTime<Utc>, AppError> {
    let naive = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text.trim(), format).ok())
        .ok_or_else(|| {
            AppError::Request(
                StatusCode::BAD_REQUEST,
                format!("send_at {text:?} is not a date and time as YYYY-MM-DDTHH:MM (Japan time)"),
            )
        })?;
    Ok(oshirase_core::time::japan()
        .from_local_datetime(&naive)
        .single()
        .expect("Japan time has no gaps")
        .with_timezone(&Utc))
}

/// `POST /admin/sends` `{"program": CODE}` or `{"broadcast": {"title", "text", "category"}}`,
/// with an optional `send_at`; answers the reservation's id.
pub async fn reserve(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<ReserveBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    match &body.what {
        Reserved::Program(program) => caller.may_act_on(program)?,
        Reserved::Broadcast { .. } => caller.must_be_administrator()?,
    }
    let send_at = body.send_at.as_deref().map(parse_japan_time).transpose()?.unwrap_or_else(Utc::now);
    let actor = caller.actor;
    let id = state
        .service
        .database
        .write(move |connection| Ok(oshirase_core::reservation::reserve(connection, &body.what, send_at, &actor)))
        .await??;
    state.service.wake_scheduler.notify_one();
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": id, "send_at": oshirase_core::time::format_japan(send_at) })),
    ))
}

/// `GET /admin/sends`.
pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Json<Vec<Reservation>>, AppError> {
    Ok(Json(state.service.database.read(oshirase_core::reservation::list).await?))
}

/// `POST /admin/sends/{id}/cancel`: a program's reservation by those who may act on the
/// program, a broadcast by the administrator.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    state
        .service
        .database
        .write(move |connection| {
            Ok((|| -> Result<(), AppError> {
                match oshirase_core::reservation::program_of(connection, id)? {
                    Some(program) => caller.may_act_on(&program)?,
                    None => caller.must_be_administrator()?,
                }
                Ok(oshirase_core::reservation::cancel(connection, id, &caller.actor)?)
            })())
        })
        .await??;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_japan() {
        let check = |text: &str, expected: Option<&str>| {
            let got = parse_japan_time(text).ok().map(|at| at.to_rfc3339());
            assert_eq!(got.as_deref(), expected, "{text:?}");
        };
        check("2026-11-21T09:30", Some("2026-11-21T00:30:00+00:00"));
        check("2026-11-21 00:00:05", Some("2026-11-20T15:00:05+00:00"));
        check("tomorrow", None);
        check("2026-11-31T09:00", None);
    }
}
