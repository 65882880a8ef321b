//! The admin API's routes for applications for registration: list the pending ones beside
//! the snapshot records they match, approve one for a resident (a registration number is
//! issued and added to the postcards to print), or reject it; the webhook's worker is
//! woken to tell the applicant in the chat. Only the administrator may call them, since
//! they show residents' records.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use super::administrator;
use crate::apply::PendingApplication;
use crate::web::{AppError, AppState};

/// `GET /admin/applications`.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Vec<PendingApplication>>, AppError> {
    administrator(&state, &headers).await?;
    Ok(Json(state.service.database.call(|connection| crate::apply::pending(connection)).await?))
}

#[derive(serde::Deserialize)]
pub struct Approval {
    resident_id: String,
}

/// `POST /admin/applications/{id}/approve` `{"resident_id": …}`: answers the number that
/// will be printed on the postcard.
pub async fn approve(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>, Json(approval): Json<Approval>) -> Result<Json<serde_json::Value>, AppError> {
    let actor = administrator(&state, &headers).await?;
    let number = state.service.database.call(move |connection| crate::apply::approve(connection, id, &approval.resident_id, &actor)).await?;
    wake_chat(&state);
    Ok(Json(serde_json::json!({ "application": id, "registration_number": number })))
}

#[derive(serde::Deserialize)]
pub struct Rejection {
    reason: String,
}

/// `POST /admin/applications/{id}/reject` `{"reason": …}`.
pub async fn reject(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<i64>, Json(rejection): Json<Rejection>) -> Result<Json<serde_json::Value>, AppError> {
    let actor = administrator(&state, &headers).await?;
    state.service.database.call(move |connection| crate::apply::reject(connection, id, &rejection.reason, &actor)).await?;
    wake_chat(&state);
    Ok(Json(serde_json::json!({ "application": id, "state": "rejected" })))
}

/// Lets the webhook's worker send the push the decision queued; without a webhook it
/// waits in `chat_pushes` for a server that has one.
fn wake_chat(state: &AppState) {
    if let Some(webhook) = &state.webhook {
        webhook.wake();
    }
}
