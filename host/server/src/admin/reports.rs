//! The admin API's read-only reports behind the console's pages (`oshirase_core::reports`):
//! the dashboard, the programs, the deliveries and the audit log. They count; they name no
//! resident and no LINE user.

use axum::Json;
use axum::extract::{Query, State};
use oshirase_core::accounts::Caller;
use oshirase_core::reports::{
    AuditEntry, Dashboard, DeliveryQuery, DeliveryReport, ProgramSummary, audit_log, dashboard, deliveries, programs,
};

use crate::web::{AppError, AppState};

/// `GET /admin/dashboard`.
pub async fn show_dashboard(State(state): State<AppState>, _caller: Caller) -> Result<Json<Dashboard>, AppError> {
    Ok(Json(state.service.database.read(dashboard).await?))
}

/// `GET /admin/program-summaries`.
pub async fn list_programs(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ProgramSummary>>, AppError> {
    Ok(Json(state.service.database.read(move |connection| programs(connection, &caller)).await?))
}

/// `GET /admin/deliveries?program=&day=`.
pub async fn show_deliveries(
    State(state): State<AppState>,
    _caller: Caller,
    Query(query): Query<DeliveryQuery>,
) -> Result<Json<DeliveryReport>, AppError> {
    Ok(Json(state.service.database.read(move |connection| deliveries(connection, &query)).await?))
}

/// `GET /admin/audit`.
pub async fn show_audit_log(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<AuditEntry>>, AppError> {
    Ok(Json(state.service.database.read(move |connection| audit_log(connection, &caller)).await?))
}
