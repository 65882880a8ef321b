//! The admin API's programs made from conditions (`oshirase_core::conditions`): the form
//! (the template's conditions and default wording), a dry run of conditions counted by ward
//! and age band, and the creation of a program, published and active at once. Its errors
//! are the publishing ones (`PublishError`, mapped in `programs.rs`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use oshirase_core::accounts::Caller;
use oshirase_core::conditions::{Form, NewProgram};
use oshirase_core::publish::Published;
use oshirase_core::reports::DryRunSummary;
use std::collections::BTreeMap;

use crate::web::{AppError, AppState};

/// `GET /admin/conditions`: what a program made from conditions may set.
pub async fn form(State(state): State<AppState>, _caller: Caller) -> Result<Json<Form>, AppError> {
    Ok(Json(oshirase_core::conditions::form(&state.service.plugins).await?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunBody {
    #[serde(default)]
    pub conditions: BTreeMap<String, String>,
    /// The day to evaluate, `YYYY-MM-DD`; today in Japan when absent.
    #[serde(default)]
    pub date: Option<String>,
}

/// `POST /admin/conditions/dry-run`: whom these conditions would tell, counted, never named.
/// Any staff member but a viewer may ask: nothing is stored.
pub async fn dry_run(
    State(state): State<AppState>,
    _caller: Caller,
    Json(body): Json<DryRunBody>,
) -> Result<Json<DryRunSummary>, AppError> {
    let today = super::day_or_today(body.date.as_deref())?;
    let summary =
        oshirase_core::conditions::dry_run(&state.service.database, &state.service.plugins, body.conditions, today)
            .await?;
    Ok(Json(summary))
}

/// `POST /admin/conditions`: makes the program and publishes it, active at once. The
/// administrator may make any code; division staff the codes they were given.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(program): Json<NewProgram>,
) -> Result<(StatusCode, Json<Published>), AppError> {
    caller.may_act_on(&program.program.code)?;
    let published =
        oshirase_core::conditions::create(&state.service.database, &state.service.plugins, program, &caller.actor)
            .await?;
    Ok((StatusCode::CREATED, Json(published)))
}
