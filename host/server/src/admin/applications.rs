//! The admin API's routes for applications for registration: list the pending ones beside
//! the snapshot records they match, approve one for a resident (a registration number is
//! issued and added to the postcards to print), or reject it — the webhook's worker is
//! woken to tell the applicant in the chat; print the waiting postcards into a PDF and
//! download it. Only the administrator may call them, since they show residents' records.

use anyhow::Context;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::web::{AppError, AppState};
use oshirase_core::accounts::Caller;
use oshirase_core::apply::{ApplicationError, PendingApplication};

impl From<ApplicationError> for AppError {
    fn from(error: ApplicationError) -> AppError {
        let status = match error {
            ApplicationError::NotFound(_) => StatusCode::NOT_FOUND,
            ApplicationError::AlreadyDecided { .. } => StatusCode::CONFLICT,
            ApplicationError::UnknownResident(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApplicationError::Failed(error) => return AppError::Internal(error),
        };
        AppError::Request(status, error.to_string())
    }
}

/// `GET /admin/applications`.
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<PendingApplication>>, AppError> {
    caller.must_be_administrator()?;
    Ok(Json(state.service.database.read(oshirase_core::apply::pending).await?))
}

#[derive(serde::Deserialize)]
pub struct Approval {
    resident_id: String,
}

/// `POST /admin/applications/{id}/approve` `{"resident_id": …}`: answers the number that
/// will be printed on the postcard.
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(approval): Json<Approval>,
) -> Result<Json<serde_json::Value>, AppError> {
    caller.must_be_administrator()?;
    let actor = caller.actor;
    let number = state
        .service
        .database
        .write(move |connection| Ok(oshirase_core::apply::approve(connection, id, &approval.resident_id, &actor)))
        .await??;
    wake_chat(&state);
    Ok(Json(serde_json::json!({ "application": id, "registration_number": number })))
}

#[derive(serde::Deserialize)]
pub struct Rejection {
    reason: String,
}

/// `POST /admin/applications/{id}/reject` `{"reason": …}`.
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(rejection): Json<Rejection>,
) -> Result<Json<serde_json::Value>, AppError> {
    caller.must_be_administrator()?;
    let actor = caller.actor;
    state
        .service
        .database
        .write(move |connection| Ok(oshirase_core::apply::reject(connection, id, &rejection.reason, &actor)))
        .await??;
    wake_chat(&state);
    Ok(Json(serde_json::json!({ "application": id, "state": "rejected" })))
}

/// Where the console's postcard batches are written, inside the data directory.
fn postcards_directory(state: &AppState) -> std::path::PathBuf {
    state.service.data_directory.join("postcards")
}

#[derive(serde::Serialize)]
pub struct PostcardBatches {
    /// Postcards waiting to be printed.
    pub unprinted: usize,
    /// The PDF files printed so far, newest first.
    pub files: Vec<String>,
}

/// `GET /admin/postcards`.
pub async fn list_postcards(State(state): State<AppState>, caller: Caller) -> Result<Json<PostcardBatches>, AppError> {
    caller.must_be_administrator()?;
    let unprinted =
        state.service.database.read(|connection| Ok(oshirase_core::postcards::unprinted(connection)?.len())).await?;
    let mut files: Vec<String> = match std::fs::read_dir(postcards_directory(&state)) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".pdf"))
            .collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(anyhow::Error::from(error).context("cannot list the postcard batches").into()),
    };
    files.sort_unstable_by(|a, b| b.cmp(a));
    Ok(Json(PostcardBatches { unprinted, files }))
}

/// `POST /admin/postcards`: prints every unprinted postcard into a new PDF in the data
/// directory (see `postcards::print`), which the console then downloads.
pub async fn print_postcards(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, AppError> {
    caller.must_be_administrator()?;
    let directory = postcards_directory(&state);
    std::fs::create_dir_all(&directory).with_context(|| format!("cannot create {}", directory.display()))?;
    let file = format!(
        "postcards-{}.pdf",
        chrono::Utc::now().with_timezone(&oshirase_core::time::japan()).format("%Y%m%d-%H%M%S")
    );
    let out = directory.join(&file);
    let actor = caller.actor;
    let printed = state
        .service
        .database
        .write(move |connection| {
            let font =
                oshirase_core::postcards::load_font(std::path::Path::new(oshirase_core::postcards::DEFAULT_FONT))?;
            oshirase_core::postcards::print(connection, &out, &font, &actor)
        })
        .await?;
    Ok(Json(serde_json::json!({
        "postcards": printed.postcards,
        "expired": printed.expired,
        "file": (printed.postcards > 0).then_some(file)
    })))
}

/// `GET /admin/postcards/{file}`: one printed batch, as the PDF it is.
pub async fn download_postcards(
    State(state): State<AppState>,
    caller: Caller,
    Path(file): Path<String>,
) -> Result<axum::response::Response, AppError> {
    caller.must_be_administrator()?;
    // Only names `print_postcards` makes: nothing outside the directory can be read.
    if !(file.starts_with("postcards-")
        && file.ends_with(".pdf")
        && file.chars().all(|character| character.is_ascii_alphanumeric() || "-.".contains(character)))
    {
        return Err(AppError::Request(StatusCode::NOT_FOUND, format!("no postcard batch {file:?}")));
    }
    let bytes = match std::fs::read(postcards_directory(&state).join(&file)) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(AppError::Request(StatusCode::NOT_FOUND, format!("no postcard batch {file:?}")));
        }
        Err(error) => {
            return Err(anyhow::Error::from(error).context(format!("cannot read postcard batch {file}")).into());
        }
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/pdf".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        bytes,
    )
        .into_response())
}

/// Lets the webhook's worker send the push the decision queued; without a webhook it
/// waits in `chat_pushes` for a server that has one.
fn wake_chat(state: &AppState) {
    if let Some(webhook) = &state.webhook {
        webhook.wake();
    }
}
