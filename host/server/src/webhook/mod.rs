//! `POST /webhook/line`: LINE's requests, checked and stored by
//! `oshirase_core::chat::webhook`, answered 200 at once (the worker replies later), 401
//! when the signature does not match and 400 when the body is not LINE's, storing nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use oshirase_core::chat::webhook::WebhookError;

use crate::web::{AppError, AppState};

impl From<WebhookError> for AppError {
    fn from(error: WebhookError) -> AppError {
        match error {
            WebhookError::Unsigned => AppError::Request(StatusCode::UNAUTHORIZED, error.to_string()),
            WebhookError::Malformed(problem) => AppError::Request(StatusCode::BAD_REQUEST, problem),
            WebhookError::Failed(error) => AppError::Internal(error),
        }
    }
}

/// `POST /webhook/line`.
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<StatusCode, AppError> {
    let Some(webhook) = &state.webhook else {
        return Err(AppError::Request(
            StatusCode::NOT_FOUND,
            "the LINE webhook is not configured: start the server with a channel secret".into(),
        ));
    };
    let signature = headers.get("x-line-signature").and_then(|value| value.to_str().ok());
    webhook.receive(&state.service.database, signature, &body).await?;
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests;
