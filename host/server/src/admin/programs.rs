//! The admin API's routes for program plugins: list every version, publish a new one
//! (validated before it can become active), activate, roll back, pause (disable); a
//! program's occasions with their wording, which staff may change; and a dry run on the
//! live snapshot counted by occasion, ward and age band.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine;

use crate::web::{AppError, AppState};
use oshirase_core::accounts::Caller;
use oshirase_core::message::WordingError;
use oshirase_core::publish::{Activation, Candidate, PublishError, Published, VersionInfo};

impl From<PublishError> for AppError {
    fn from(error: PublishError) -> AppError {
        let status = match error {
            PublishError::Rejected { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            PublishError::AlreadyPublished { .. } | PublishError::Refused(_) => StatusCode::CONFLICT,
            PublishError::NotFound(_) => StatusCode::NOT_FOUND,
            PublishError::Failed(error) => return AppError::Internal(error),
        };
        AppError::Request(status, error.to_string())
    }
}

impl From<WordingError> for AppError {
    fn from(error: WordingError) -> AppError {
        let status = match error {
            WordingError::Unknown(_) => StatusCode::NOT_FOUND,
            WordingError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WordingError::Failed(error) => return AppError::Internal(error),
        };
        AppError::Request(status, error.to_string())
    }
}

/// `GET /admin/programs`: every stored version with its state.
pub async fn list(State(state): State<AppState>, _caller: Caller) -> Result<Json<Vec<VersionInfo>>, AppError> {
    Ok(Json(state.service.database.read(oshirase_core::publish::list).await?))
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
pub async fn publish(
    State(state): State<AppState>,
    Path(code): Path<String>,
    caller: Caller,
    Json(body): Json<PublishBody>,
) -> Result<(StatusCode, Json<Published>), AppError> {
    caller.may_act_on(&code)?;
    let wasm = base64::engine::general_purpose::STANDARD
        .decode(body.wasm_base64.trim())
        .map_err(|error| PublishError::Refused(format!("wasm_base64 is not base64: {error}")))?;
    let candidate = Candidate {
        wasm,
        cases: body.cases,
        publisher: caller.actor.clone(),
        program: Some(code),
        activation: Activation::Always,
    };
    let published = oshirase_core::publish::publish(&state.service.database, &state.service.plugins, candidate).await?;
    Ok((StatusCode::CREATED, Json(published)))
}

#[derive(serde::Deserialize)]
pub struct ActivateBody {
    pub version: i64,
}

/// `POST /admin/programs/{code}/activate` with `{"version": N}`.
pub async fn activate(
    State(state): State<AppState>,
    Path(code): Path<String>,
    caller: Caller,
    Json(body): Json<ActivateBody>,
) -> Result<StatusCode, AppError> {
    caller.may_act_on(&code)?;
    let actor = caller.actor;
    state
        .service
        .database
        .write(move |connection| Ok(oshirase_core::publish::activate(connection, &code, body.version, &actor)))
        .await??;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/programs/{code}/rollback`: answers the version now active.
pub async fn rollback(
    State(state): State<AppState>,
    Path(code): Path<String>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, AppError> {
    caller.may_act_on(&code)?;
    let actor = caller.actor;
    let version = state
        .service
        .database
        .write(move |connection| Ok(oshirase_core::publish::rollback(connection, &code, &actor)))
        .await??;
    Ok(Json(serde_json::json!({ "version": version })))
}

/// `POST /admin/programs/{code}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    Path(code): Path<String>,
    caller: Caller,
) -> Result<StatusCode, AppError> {
    caller.may_act_on(&code)?;
    let actor = caller.actor;
    state
        .service
        .database
        .write(move |connection| Ok(oshirase_core::publish::disable(connection, &code, &actor)))
        .await??;
    Ok(StatusCode::NO_CONTENT)
}

/// An occasion with the wording the plugin gives it and the wording staff gave it.
#[derive(Debug, serde::Serialize)]
pub struct OccasionWording {
    pub key: String,
    pub title: String,
    pub default_template: String,
    /// Staff's wording, when they gave one.
    pub template: Option<String>,
    /// The links staff gave its card.
    pub links: oshirase_core::message::OccasionLinks,
}

#[derive(Debug, serde::Serialize)]
pub struct ProgramDetail {
    pub code: String,
    pub name: String,
    pub contact: String,
    /// Where a card's 「詳しく」 leads when staff gave the occasion no page of the city's.
    pub source_url: String,
    pub occasions: Vec<OccasionWording>,
    pub placeholders: Vec<&'static str>,
    pub line_text_limit: usize,
}

/// `GET /admin/programs/{code}`: the active version's occasions, their wording and links.
pub async fn detail(
    State(state): State<AppState>,
    Path(code): Path<String>,
    _caller: Caller,
) -> Result<Json<ProgramDetail>, AppError> {
    let detail = state
        .service
        .database
        .read(move |connection| {
            let version = oshirase_core::registry::active_version(connection, &code)?
                .ok_or_else(|| PublishError::NotFound(format!("program {code} has no active version")))?;
            let wording = oshirase_core::message::wording(connection)?;
            let links = oshirase_core::message::links(connection)?;
            let manifest = version.manifest;
            Ok(ProgramDetail {
                occasions: manifest
                    .occasions
                    .iter()
                    .map(|occasion| OccasionWording {
                        key: occasion.key.clone(),
                        title: occasion.title.clone(),
                        default_template: occasion.template.clone(),
                        template: wording.get(&(code.clone(), occasion.key.clone())).cloned(),
                        links: links.get(&(code.clone(), occasion.key.clone())).cloned().unwrap_or_default(),
                    })
                    .collect(),
                code,
                name: manifest.name,
                contact: manifest.contact,
                source_url: manifest.source_url,
                placeholders: oshirase_core::message::PLACEHOLDERS.to_vec(),
                line_text_limit: oshirase_core::channel::line::TEXT_LIMIT,
            })
        })
        .await?;
    Ok(Json(detail))
}

#[derive(serde::Deserialize)]
pub struct WordingBody {
    /// The new wording; empty to go back to the plugin's default.
    pub template: String,
}

/// `PUT /admin/programs/{code}/wording/{occasion}`: checks the placeholders and the
/// length LINE allows (with the longest deadline) before storing; answers the preview.
pub async fn set_wording(
    State(state): State<AppState>,
    Path((code, occasion)): Path<(String, String)>,
    caller: Caller,
    Json(body): Json<WordingBody>,
) -> Result<Json<serde_json::Value>, AppError> {
    caller.may_act_on(&code)?;
    let actor = caller.actor;
    let preview = state
        .service
        .database
        .write(move |connection| {
            Ok(oshirase_core::message::set_wording(connection, &code, &occasion, body.template.trim(), &actor))
        })
        .await??;
    Ok(Json(serde_json::json!({ "preview": preview })))
}

/// `PUT /admin/programs/{code}/links/{occasion}`: the links of the occasion's card, each
/// an https address within LINE's length or empty to clear it; answers what was stored.
pub async fn set_links(
    State(state): State<AppState>,
    Path((code, occasion)): Path<(String, String)>,
    caller: Caller,
    Json(body): Json<oshirase_core::message::OccasionLinks>,
) -> Result<Json<oshirase_core::message::OccasionLinks>, AppError> {
    caller.may_act_on(&code)?;
    let actor = caller.actor;
    let stored = state
        .service
        .database
        .write(move |connection| Ok(oshirase_core::message::set_links(connection, &code, &occasion, &body, &actor)))
        .await??;
    Ok(Json(stored))
}

#[derive(serde::Deserialize)]
pub struct DryRunQuery {
    /// The date to evaluate for, `YYYY-MM-DD`; today in Japan when absent.
    pub date: Option<String>,
}

/// `GET /admin/programs/{code}/dry-run?date=`: who the program would reach, counted by
/// occasion, ward and age band; with names for the administrator only. Only the
/// administrator and the program's own division may run it: it evaluates the whole city.
pub async fn dry_run(
    State(state): State<AppState>,
    Path(code): Path<String>,
    caller: Caller,
    Query(query): Query<DryRunQuery>,
) -> Result<Json<oshirase_core::reports::DryRunSummary>, AppError> {
    caller.may_act_on(&code)?;
    let today = super::day_or_today(query.date.as_deref())?;
    let with_names = caller.may_see_names();
    let notices = state.service.dry_run(code.clone(), today).await?;
    Ok(Json(
        state
            .service
            .database
            .read(move |connection| oshirase_core::reports::dry_run(connection, &code, notices, today, with_names))
            .await?,
    ))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request};
    use tower::ServiceExt;

    use super::*;
    use oshirase_bundled::PROGRAMS;
    use oshirase_bundled::testing::PLUGINS;
    use oshirase_core::accounts::create_token;
    use oshirase_core::testing::{Fixture, component, variant};

    /// Sends one request to the app and returns its status and body.
    async fn send(
        state: &AppState,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response =
            crate::web::app(state.clone()).oneshot(request.body(Body::from(body.to_string())).unwrap()).await.unwrap();
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
        let state = AppState::new(fixture.service());
        let (health, admin) = fixture
            .database
            .write(|connection| {
                Ok((
                    create_token(connection, "健康支援課", &["vaccine-mr".into()], false, 30, "test")?,
                    create_token(connection, "情報政策課", &[], true, 30, "test")?,
                ))
            })
            .await
            .unwrap();
        let (wasm, cases) = component(PROGRAMS, "vaccine-mr");
        let get = Method::GET;
        let post = Method::POST;
        let steps = [
            (
                get.clone(),
                "/admin/programs",
                None,
                serde_json::Value::Null,
                StatusCode::UNAUTHORIZED,
                "missing or unknown admin token",
            ),
            (
                get.clone(),
                "/admin/programs",
                Some("osh_wrong"),
                serde_json::Value::Null,
                StatusCode::UNAUTHORIZED,
                "missing or unknown admin token",
            ),
            (
                post.clone(),
                "/admin/programs/vaccine-mr/versions",
                Some(health.as_str()),
                wasm_body(&wasm, Some(cases)),
                StatusCode::CREATED,
                "\"active\":true",
            ),
            (
                post.clone(),
                "/admin/programs/vaccine-mr/versions",
                Some(health.as_str()),
                wasm_body(&wasm, None),
                StatusCode::CONFLICT,
                "already version 1",
            ),
            (
                post.clone(),
                "/admin/programs/hostile/versions",
                Some(health.as_str()),
                wasm_body(&component(PLUGINS, "hostile").0, None),
                StatusCode::FORBIDDEN,
                "division:健康支援課 may not act on program",
            ),
            (
                post.clone(),
                "/admin/programs/vaccine-mr/versions",
                Some(health.as_str()),
                wasm_body(b"\0asm\x01\0\0\0", None),
                StatusCode::UNPROCESSABLE_ENTITY,
                "core WebAssembly module",
            ),
            (
                post.clone(),
                "/admin/programs/vaccine-mr/versions",
                Some(health.as_str()),
                wasm_body(&variant(&wasm, "v3"), Some(cases)),
                StatusCode::CREATED,
                "\"version\":3",
            ),
            (
                post.clone(),
                "/admin/programs/vaccine-mr/activate",
                Some(health.as_str()),
                serde_json::json!({ "version": 2 }),
                StatusCode::CONFLICT,
                "was rejected and cannot be activated",
            ),
            (
                post.clone(),
                "/admin/programs/vaccine-mr/activate",
                Some(health.as_str()),
                serde_json::json!({ "version": 99 }),
                StatusCode::NOT_FOUND,
                "has no version 99",
            ),
            (
                post.clone(),
                "/admin/programs/vaccine-mr/rollback",
                Some(health.as_str()),
                serde_json::Value::Null,
                StatusCode::OK,
                "{\"version\":1}",
            ),
            (
                post.clone(),
                "/admin/programs/hostile/versions",
                Some(admin.as_str()),
                wasm_body(&component(PLUGINS, "hostile").0, None),
                StatusCode::CREATED,
                "\"program\":\"hostile\"",
            ),
            (
                post.clone(),
                "/admin/programs/hostile/disable",
                Some(health.as_str()),
                serde_json::Value::Null,
                StatusCode::FORBIDDEN,
                "may not act on",
            ),
            (
                post.clone(),
                "/admin/programs/hostile/disable",
                Some(admin.as_str()),
                serde_json::Value::Null,
                StatusCode::NO_CONTENT,
                "",
            ),
            (
                post.clone(),
                "/admin/programs/hostile/disable",
                Some(admin.as_str()),
                serde_json::Value::Null,
                StatusCode::NOT_FOUND,
                "has no active version",
            ),
            (
                get.clone(),
                "/admin/programs",
                Some(health.as_str()),
                serde_json::Value::Null,
                StatusCode::OK,
                "\"state\":\"rejected\"",
            ),
        ];
        let mut failures = Vec::new();
        for (method, path, token, body, status, expected) in steps {
            let (got, text) = send(&state, method.clone(), path, token, body).await;
            if got != status || !text.contains(expected) {
                failures.push(format!("{method} {path}: expected {status} with {expected:?}, got {got} {text}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        let audited: i64 = fixture
            .database
            .write(|connection| {
                Ok(connection.query_row(
                    "SELECT count(*) FROM audit_log WHERE actor LIKE 'division:%' OR actor LIKE 'admin:%'",
                    [],
                    |row| row.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(audited, 9, "every publish, activation, rollback and disable names its caller");
    }

    /// Programs made from conditions go through the same roles: any staff member but a
    /// viewer reads the form and dry-runs conditions (counts only), a division makes only
    /// the codes it was given (the same program twice is the same version), and conditions
    /// the template does not know are refused.
    #[tokio::test]
    async fn programs_are_made_from_conditions_under_the_same_roles() {
        let fixture = Fixture::with_bundled(PROGRAMS).await;
        let state = AppState::new(fixture.service());
        let health = fixture
            .database
            .write(|connection| create_token(connection, "健康支援課", &["checkup-new".into()], false, 30, "test"))
            .await
            .unwrap();
        let program = |code: &str| {
            serde_json::json!({
                "code": code, "name": "新しい健診", "division": "健康支援課", "contact": "043-238-9930",
                "category": "Health", "source_url": "https://www.city.chiba.jp/", "title": "お知らせ",
                "template": "【{program}】{deadline}まで。お問い合わせ: {contact}",
                "conditions": { "age-counted": "満年齢", "age-from": "0", "repeat": "一度だけ" }
            })
        };
        let (get, post) = (Method::GET, Method::POST);
        let steps = [
            (get, "/admin/conditions", serde_json::Value::Null, StatusCode::OK, "\"name\":\"age-counted\""),
            (
                post.clone(),
                "/admin/conditions/dry-run",
                serde_json::json!({ "conditions": { "age-counted": "満年齢", "age-from": "0", "repeat": "一度だけ" } }),
                StatusCode::OK,
                "\"notices\":3,",
            ),
            (
                post.clone(),
                "/admin/conditions/dry-run",
                serde_json::json!({ "conditions": { "sex": "その他" } }),
                StatusCode::CONFLICT,
                "condition sex",
            ),
            (post.clone(), "/admin/conditions", program("other-code"), StatusCode::FORBIDDEN, "may not act on"),
            (post.clone(), "/admin/conditions", program("checkup-new"), StatusCode::CREATED, "\"active\":true"),
            (post.clone(), "/admin/conditions", program("checkup-new"), StatusCode::CONFLICT, "already version"),
        ];
        for (method, path, body, status, expected) in steps {
            let (got, text) = send(&state, method.clone(), path, Some(&health), body).await;
            assert!(got == status && text.contains(expected), "{method} {path}: {got} {text}");
            assert!(!text.contains("千葉 "), "no resident is named: {text}");
        }
    }
}
