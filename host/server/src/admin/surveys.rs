//! The admin API's surveys (`survey.rs`): the administrator creates one (a question with
//! choices or a rating, an audience, when it opens and closes), as a broadcast reaches
//! residents; every staff member reads the tallies and downloads one as CSV. Tallies and
//! CSV are counts and anonymous rows: no answer names its LINE user.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;

use crate::admin::sends::parse_japan_time;
use crate::web::{AppError, AppState};
use oshirase_core::accounts::Caller;
use oshirase_core::survey::{Draft, SurveyError, Tally};

impl From<SurveyError> for AppError {
    fn from(error: SurveyError) -> AppError {
        let status = match error {
            SurveyError::NotFound(_) => StatusCode::NOT_FOUND,
            SurveyError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            SurveyError::Failed(error) => return AppError::Internal(error),
        };
        AppError::Request(status, error.to_string())
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct CreateBody {
    #[serde(flatten)]
    pub draft: Draft,
    /// When the question goes out and answers open, in Japan time as `sends.rs` reads it;
    /// now when absent.
    #[serde(default)]
    pub opens_at: Option<String>,
    /// When answers close and lose their LINE user ids, in Japan time.
    pub closes_at: String,
}

/// `POST /admin/surveys`: the administrator's, since a survey reaches residents as a
/// broadcast does; answers the survey's id.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    caller.must_be_administrator()?;
    let opens_at = body.opens_at.as_deref().map(parse_japan_time).transpose()?.unwrap_or_else(Utc::now);
    let closes_at = parse_japan_time(&body.closes_at)?;
    let actor = caller.actor;
    let id = state
        .service
        .database
        .write(move |connection| {
            Ok(oshirase_core::survey::create(connection, &body.draft, opens_at, closes_at, &actor))
        })
        .await??;
    // Its question is a reserved send, which the scheduler carries out.
    state.service.wake_scheduler.notify_one();
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

/// `GET /admin/surveys`: every survey's tally, newest first.
pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Json<Vec<Tally>>, AppError> {
    let now = Utc::now();
    Ok(Json(
        state
            .service
            .database
            .read(move |connection| Ok(oshirase_core::survey::tallies(connection, None, now)))
            .await??,
    ))
}

/// `GET /admin/surveys/{id}`: one survey's tally, as the console polls it.
pub async fn tally(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Tally>, AppError> {
    let now = Utc::now();
    let mut tallies = state
        .service
        .database
        .read(move |connection| Ok(oshirase_core::survey::tallies(connection, Some(id), now)))
        .await??;
    Ok(Json(tallies.remove(0)))
}

/// `GET /admin/surveys/{id}/csv`: the counts and the anonymous answers, for a spreadsheet.
pub async fn csv(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::response::Response, AppError> {
    let now = Utc::now();
    let csv =
        state.service.database.read(move |connection| Ok(oshirase_core::survey::csv(connection, id, now))).await??;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"survey-{id}.csv\"")),
        ],
        // A BOM, so that a spreadsheet opens the Japanese as UTF-8.
        format!("\u{feff}{csv}"),
    )
        .into_response())
}
