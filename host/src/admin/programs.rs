//! The admin API's routes for program plugins: list every version, publish a new one
//! (validated before it can become active), activate, roll back, disable.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;

use super::{authorized, caller};
use crate::publish::{Activation, Candidate, PublishError, Published, VersionInfo};
use crate::web::{AppError, AppState};

/// `GET /admin/programs`: every stored version with its state.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Vec<VersionInfo>>, AppError> {
    caller(&state, &headers).await?;
    Ok(Json(state.service.database.call(|connection| crate::publish::list(connection)).await?))
}

#[derive(serde::Deserialize)]
pub struct PublishBody {
    /// The component, base64-encoded.
    pub wasm_base64: String,
    /// The plugin's example cases (`cases.yaml`).
    #[serde(default)]
    pub cases: Option<String>,
}

/// `POST /admin/programs/{code}/versions`: validates and publishes a version of `code`,
/// which becomes active when accepted.
pub async fn publish(State(state): State<AppState>, Path(code): Path<String>, headers: HeaderMap, Json(body): Json<PublishBody>) -> Result<(StatusCode, Json<Published>), AppError> {
    let caller = caller(&state, &headers).await?;
    caller.may_act_on(&code)?;
    let wasm = base64::engine::general_purpose::STANDARD.decode(body.wasm_base64.trim()).map_err(|error| PublishError::Refused(format!("wasm_base64 is not base64: {error}")))?;
    let candidate = Candidate { wasm, cases: body.cases, publisher: caller.actor(), program: Some(code), activation: Activation::Always };
    let published = crate::publish::publish(&state.service.database, &state.service.plugins, candidate).await?;
    Ok((StatusCode::CREATED, Json(published)))
}

#[derive(serde::Deserialize)]
pub struct ActivateBody {
    pub version: i64,
}

/// `POST /admin/programs/{code}/activate` with `{"version": N}`.
pub async fn activate(State(state): State<AppState>, Path(code): Path<String>, headers: HeaderMap, Json(body): Json<ActivateBody>) -> Result<StatusCode, AppError> {
    let actor = authorized(&state, &headers, &code).await?;
    state.service.database.call(move |connection| Ok(crate::publish::activate(connection, &code, body.version, &actor))).await??;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/programs/{code}/rollback`: answers the version now active.
pub async fn rollback(State(state): State<AppState>, Path(code): Path<String>, headers: HeaderMap) -> Result<Json<serde_json::Value>, AppError> {
    let actor = authorized(&state, &headers, &code).await?;
    let version = state.service.database.call(move |connection| Ok(crate::publish::rollback(connection, &code, &actor))).await??;
    Ok(Json(serde_json::json!({ "version": version })))
}

/// `POST /admin/programs/{code}/disable`.
pub async fn disable(State(state): State<AppState>, Path(code): Path<String>, headers: HeaderMap) -> Result<StatusCode, AppError> {
    let actor = authorized(&state, &headers, &code).await?;
    state.service.database.call(move |connection| Ok(crate::publish::disable(connection, &code, &actor))).await??;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request};
    use tower::ServiceExt;

    use super::*;
    use crate::admin::create_token;
    use crate::publish::tests::{Fixture, bundled, testing_plugin, variant};

    /// Sends one request to the app and returns its status and body.
    async fn send(state: &AppState, method: Method, path: &str, token: Option<&str>, body: serde_json::Value) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = crate::web::app(state.clone()).oneshot(request.body(Body::from(body.to_string())).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn wasm_body(wasm: &[u8], cases: Option<&str>) -> serde_json::Value {
        serde_json::json!({ "wasm_base64": base64::engine::general_purpose::STANDARD.encode(wasm), "cases": cases })
    }

    /// Requests in order, each with the status and a piece of the body it must answer.
    #[tokio::test]
    async fn a_division_acts_only_on_its_own_programs_and_the_administrator_on_all() {
        let fixture = Fixture::new().await;
        let state = AppState { service: fixture.service(), emulator: None, webhook: None };
        let (health, admin) = fixture
            .database
            .call(|connection| Ok((create_token(connection, "健康支援課", &["vaccine-mr".into()], false, "test")?, create_token(connection, "情報政策課", &[], true, "test")?)))
            .await
            .unwrap();
        let (wasm, cases) = bundled("vaccine-mr");
        let get = Method::GET;
        let post = Method::POST;
        let steps = [
            (get.clone(), "/admin/programs", None, serde_json::Value::Null, StatusCode::UNAUTHORIZED, "missing or unknown admin token"),
            (get.clone(), "/admin/programs", Some("osh_wrong"), serde_json::Value::Null, StatusCode::UNAUTHORIZED, "missing or unknown admin token"),
            (post.clone(), "/admin/programs/vaccine-mr/versions", Some(health.as_str()), wasm_body(&wasm, Some(cases)), StatusCode::CREATED, "\"active\":true"),
            (post.clone(), "/admin/programs/vaccine-mr/versions", Some(health.as_str()), wasm_body(&wasm, None), StatusCode::CONFLICT, "already version 1"),
            (post.clone(), "/admin/programs/hostile/versions", Some(health.as_str()), wasm_body(&testing_plugin("hostile"), None), StatusCode::FORBIDDEN, "division 健康支援課 may not act on program"),
            (post.clone(), "/admin/programs/vaccine-mr/versions", Some(health.as_str()), wasm_body(b"\0asm\x01\0\0\0", None), StatusCode::UNPROCESSABLE_ENTITY, "core WebAssembly module"),
            (post.clone(), "/admin/programs/vaccine-mr/versions", Some(health.as_str()), wasm_body(&variant(&wasm, "v3"), Some(cases)), StatusCode::CREATED, "\"version\":3"),
            (post.clone(), "/admin/programs/vaccine-mr/activate", Some(health.as_str()), serde_json::json!({ "version": 2 }), StatusCode::CONFLICT, "was rejected and cannot be activated"),
            (post.clone(), "/admin/programs/vaccine-mr/activate", Some(health.as_str()), serde_json::json!({ "version": 99 }), StatusCode::NOT_FOUND, "has no version 99"),
            (post.clone(), "/admin/programs/vaccine-mr/rollback", Some(health.as_str()), serde_json::Value::Null, StatusCode::OK, "{\"version\":1}"),
            (post.clone(), "/admin/programs/hostile/versions", Some(admin.as_str()), wasm_body(&testing_plugin("hostile"), None), StatusCode::CREATED, "\"program\":\"hostile\""),
            (post.clone(), "/admin/programs/hostile/disable", Some(health.as_str()), serde_json::Value::Null, StatusCode::FORBIDDEN, "may not act on"),
            (post.clone(), "/admin/programs/hostile/disable", Some(admin.as_str()), serde_json::Value::Null, StatusCode::NO_CONTENT, ""),
            (post.clone(), "/admin/programs/hostile/disable", Some(admin.as_str()), serde_json::Value::Null, StatusCode::NOT_FOUND, "has no active version"),
            (get.clone(), "/admin/programs", Some(health.as_str()), serde_json::Value::Null, StatusCode::OK, "\"state\":\"rejected\""),
        ];
        let mut failures = Vec::new();
        for (method, path, token, body, status, expected) in steps {
            let (got, text) = send(&state, method.clone(), path, token, body).await;
            if got != status || !text.contains(expected) {
                failures.push(format!("{method} {path}: expected {status} with {expected:?}, got {got} {text}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        let audited: i64 = fixture.database.call(|connection| Ok(connection.query_row("SELECT count(*) FROM audit_log WHERE actor LIKE 'division:%' OR actor LIKE 'admin:%'", [], |row| row.get(0))?)).await.unwrap();
        assert_eq!(audited, 9, "every publish, activation, rollback and disable names its caller");
    }
}
