//! The admin API's uptake routes (`oshirase_core::uptake`): the latest measurement as a
//! table or CSV, and a new measurement between the two latest exports. Counts only, groups
//! under ten as "<10": nothing here names a resident.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use oshirase_core::accounts::Caller;
use oshirase_core::uptake::{UptakeError, UptakeQuery, UptakeTable, compute, latest, store};
use oshirase_sdk::Day;

use crate::web::{AppError, AppState};

impl From<UptakeError> for AppError {
    fn from(error: UptakeError) -> AppError {
        let status = match error {
            UptakeError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            UptakeError::NotYet(_) => StatusCode::CONFLICT,
            UptakeError::Failed(error) => return AppError::Internal(error),
        };
        AppError::Request(status, error.to_string())
    }
}

#[derive(serde::Deserialize)]
pub struct ShowQuery {
    /// Only this program's rows.
    pub program: Option<String>,
    /// `csv` for a file staff open in a spreadsheet; JSON otherwise.
    pub format: Option<String>,
}

/// `GET /admin/uptake?program=&format=csv`: the latest measurement.
pub async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<ShowQuery>,
) -> Result<Response, AppError> {
    let program = query.program.clone();
    let table = state
        .service
        .database
        .read(move |connection| {
            let Some(report) = latest(connection)? else { return Ok(None) };
            Ok(Some(UptakeTable::of(&report, program.as_deref(), &report.link_opens(connection)?)))
        })
        .await?
        .ok_or_else(|| {
            AppError::Request(
                StatusCode::NOT_FOUND,
                "uptake has not been measured yet: measure it once two exports are imported".into(),
            )
        })?;
    Ok(match query.format.as_deref() {
        Some("csv") => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"uptake.csv\""),
            ],
            table.to_csv()?,
        )
            .into_response(),
        Some("json") | None => Json(table).into_response(),
        Some(other) => {
            return Err(AppError::Request(StatusCode::BAD_REQUEST, format!("format {other:?} is not csv or json")));
        }
    })
}

#[derive(serde::Deserialize)]
pub struct MeasureBody {
    /// The first and last day, `YYYY-MM-DD`, of the windows opened that are measured.
    pub from: String,
    pub to: String,
    /// Days after the notice in which a record counts as taken up.
    pub within_days: u32,
    #[serde(default)]
    pub program: Option<String>,
}

/// `POST /admin/uptake`: measures again between the two latest exports, keeps the result as
/// the latest and answers its table. Evaluating the earlier export takes a few seconds on
/// a large city, on the read pool; the writer is taken only to store the result.
pub async fn measure(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<MeasureBody>,
) -> Result<Json<UptakeTable>, AppError> {
    let day = |name: &str, text: &str| {
        Day::parse_iso(text.trim())
            .ok_or_else(|| AppError::Request(StatusCode::BAD_REQUEST, format!("{name} {text:?} is not YYYY-MM-DD")))
    };
    let query = UptakeQuery {
        program: body.program,
        from: day("from", &body.from)?,
        to: day("to", &body.to)?,
        within_days: body.within_days,
    };
    let plugins = state.service.plugins.clone();
    let program = query.program.clone();
    let report = state.service.database.read(move |connection| Ok(compute(connection, &plugins, &query))).await??;
    let stored = report.clone();
    state.service.database.write(move |connection| store(connection, &stored, &caller.actor)).await?;
    let table = state
        .service
        .database
        .read(move |connection| Ok(UptakeTable::of(&report, program.as_deref(), &report.link_opens(connection)?)))
        .await?;
    Ok(Json(table))
}
