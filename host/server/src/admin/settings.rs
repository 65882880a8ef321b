//! The admin API's routes for a program's settings (plugin contract 1.1): the settings its
//! manifest declares with their values, the effect of a change on the live snapshot before
//! it is saved (counts only), and the change saved all or nothing with its audit line.

use std::collections::{BTreeMap, HashSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use oshirase_core::accounts::Caller;
use oshirase_core::evaluate::PlannedNotice;
use oshirase_core::settings::{SettingState, SettingsError};
use oshirase_sdk::Day;

use crate::web::{AppError, AppState};

impl From<SettingsError> for AppError {
    fn from(error: SettingsError) -> AppError {
        let status = match error {
            SettingsError::UnknownProgram(_) | SettingsError::UnknownSetting { .. } => StatusCode::NOT_FOUND,
            SettingsError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            SettingsError::Failed(error) => return AppError::Internal(error),
        };
        AppError::Request(status, error.to_string())
    }
}

/// The program's own refusal of proposed values (a season that closes before it opens),
/// with its reason, for staff to correct.
fn cannot_run_with(code: &str, reason: impl std::fmt::Display) -> AppError {
    AppError::Request(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("program {code} cannot run with these settings: {reason}"),
    )
}

/// The (name, text) pairs of a request, trimmed as the wording is: a value pasted with a
/// space around it means the same value.
fn trimmed(changes: BTreeMap<String, String>) -> Vec<(String, String)> {
    changes.into_iter().map(|(name, text)| (name, text.trim().to_owned())).collect()
}

/// `GET /admin/programs/{code}/settings`: every setting the active version declares, with
/// its value, default and last change. Anyone signed in may read them, as the wording.
pub async fn list(
    State(state): State<AppState>,
    Path(code): Path<String>,
    _caller: Caller,
) -> Result<Json<Vec<SettingState>>, AppError> {
    let states = state
        .service
        .database
        .read(move |connection| {
            let Some(version) = oshirase_core::registry::active_version(connection, &code)? else {
                return Ok(Err(SettingsError::UnknownProgram(code)));
            };
            let declared = oshirase_core::settings::declared(&version)?;
            Ok(Ok(oshirase_core::settings::list(connection, &code, &declared)?))
        })
        .await??;
    Ok(Json(states))
}

#[derive(serde::Deserialize)]
pub struct PreviewBody {
    /// The new values by setting name, as staff type them.
    #[serde(default)]
    pub changes: BTreeMap<String, String>,
    /// The date to evaluate for, `YYYY-MM-DD`; today in Japan when absent.
    #[serde(default)]
    pub date: Option<String>,
}

/// How many notices a dry run found, and for how many residents.
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reach {
    pub notices: usize,
    pub residents: usize,
}

impl Reach {
    fn of(notices: &[PlannedNotice]) -> Reach {
        let residents: HashSet<&str> = notices.iter().map(|notice| notice.resident_id.as_str()).collect();
        Reach { notices: notices.len(), residents: residents.len() }
    }
}

/// What a change of settings would do on one day: counts only, since staff of a division
/// preview changes and need no names for that.
#[derive(Debug, serde::Serialize)]
pub struct SettingsPreview {
    /// The day evaluated, `YYYY-MM-DD`.
    pub date: String,
    pub current: Reach,
    pub proposed: Reach,
    /// Notices, by (resident, occasion, instance), the change would add and remove.
    pub added: usize,
    pub removed: usize,
}

impl SettingsPreview {
    fn compare(date: Day, current: &[PlannedNotice], proposed: &[PlannedNotice]) -> SettingsPreview {
        let keys = |notices: &[PlannedNotice]| -> HashSet<(String, String, i32)> {
            notices
                .iter()
                .map(|notice| (notice.resident_id.clone(), notice.occasion.clone(), notice.instance))
                .collect()
        };
        let (before, after) = (keys(current), keys(proposed));
        SettingsPreview {
            date: date.to_string(),
            current: Reach::of(current),
            proposed: Reach::of(proposed),
            added: after.difference(&before).count(),
            removed: before.difference(&after).count(),
        }
    }
}

/// `POST /admin/programs/{code}/settings/preview` with `{"changes": {NAME: VALUE}, "date"}`:
/// the program evaluated on the live snapshot with its settings as they are and as they
/// would be, storing nothing. Only the administrator and the program's own division may
/// run it: it evaluates the whole city, twice.
pub async fn preview(
    State(state): State<AppState>,
    Path(code): Path<String>,
    caller: Caller,
    Json(body): Json<PreviewBody>,
) -> Result<Json<SettingsPreview>, AppError> {
    caller.may_act_on(&code)?;
    let today = super::day_or_today(body.date.as_deref())?;
    let changes = trimmed(body.changes);
    let plugins = state.service.plugins.clone();
    // On a read connection, as the dry run: evaluating a city takes seconds and nothing
    // else need wait for it.
    let preview = state
        .service
        .database
        .read(move |connection| {
            let (version, proposed) = match oshirase_core::settings::proposed_for_active(connection, &code, &changes) {
                Ok(found) => found,
                Err(error) => return Ok(Err(error.into())),
            };
            let before = oshirase_core::evaluate::dry_run(connection, &plugins, &version, today)?;
            // The same program ran on the same population a moment ago: if it fails now,
            // the proposed values are why (a season that closes before it opens), and
            // staff must hear the program's reason rather than an internal error.
            let after =
                match oshirase_core::evaluate::dry_run_with(connection, &plugins, &version, today, Some(&proposed)) {
                    Ok(after) => after,
                    Err(error) => return Ok(Err(cannot_run_with(&code, error.root_cause()))),
                };
            Ok(Ok(SettingsPreview::compare(today, &before, &after)))
        })
        .await??;
    Ok(Json(preview))
}

#[derive(serde::Deserialize)]
pub struct SaveBody {
    /// The new values by setting name, as staff type them.
    pub changes: BTreeMap<String, String>,
}

/// `PUT /admin/programs/{code}/settings` with `{"changes": {NAME: VALUE}}`: every value
/// checked against its type, then all stored or none, with one audit line naming the
/// caller; answers the settings as the next run will use them.
pub async fn save(
    State(state): State<AppState>,
    Path(code): Path<String>,
    caller: Caller,
    Json(body): Json<SaveBody>,
) -> Result<Json<Vec<SettingState>>, AppError> {
    caller.may_act_on(&code)?;
    if body.changes.is_empty() {
        return Err(AppError::Request(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no changes: name at least one setting and its new value".to_owned(),
        ));
    }
    let changes = trimmed(body.changes);
    let actor = caller.actor;
    // The program itself is asked first whether it can run with the values, on no
    // residents (an instantiation, milliseconds): a combination it refuses, such as a
    // season that closes before it opens, is answered now with its reason rather than
    // found by the next run.
    let (probed_code, probed_changes, plugins) = (code.clone(), changes.clone(), state.service.plugins.clone());
    state
        .service
        .database
        .read(move |connection| {
            let (version, proposed) =
                match oshirase_core::settings::proposed_for_active(connection, &probed_code, &probed_changes) {
                    Ok(found) => found,
                    Err(error) => return Ok(Err(AppError::from(error))),
                };
            let program = plugins.get(connection, &version)?;
            let today = oshirase_core::time::today_in_japan();
            match plugins.engine.evaluate(&program, today, &proposed, &oshirase_sdk::Population::default()) {
                Ok(_) => Ok(Ok(())),
                Err(error) => Ok(Err(cannot_run_with(&probed_code, error))),
            }
        })
        .await??;
    // The writer only for the short check and store: the active version is read in the
    // same hold, so the settings checked are those of the version that will run them.
    let states = state
        .service
        .database
        .write(move |connection| {
            let Some(version) = oshirase_core::registry::active_version(connection, &code)? else {
                return Ok(Err(SettingsError::UnknownProgram(code)));
            };
            let declared = oshirase_core::settings::declared(&version)?;
            if let Err(error) = oshirase_core::settings::set(connection, &code, &declared, &changes, &actor) {
                return Ok(Err(error));
            }
            Ok(Ok(oshirase_core::settings::list(connection, &code, &declared)?))
        })
        .await??;
    Ok(Json(states))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request};
    use tower::ServiceExt;

    use super::*;
    use oshirase_bundled::PROGRAMS;
    use oshirase_core::accounts::{NewUser, Role, create_token, create_user, hash_password};
    use oshirase_core::testing::{Fixture, component};

    const PASSWORD: &str = "correct horse battery staple";

    /// How a request proves who sends it.
    #[derive(Clone, Copy)]
    enum Credentials<'a> {
        None,
        /// A session cookie and the CSRF token sent with it (empty: none sent).
        Session(&'a str, &'a str),
        Bearer(&'a str),
    }

    /// Sends one request to the app and returns its status and body as JSON.
    async fn send(
        state: &AppState,
        method: Method,
        path: &str,
        credentials: Credentials<'_>,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let peer = axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 40000)));
        let mut request =
            Request::builder().method(method).uri(path).header("content-type", "application/json").extension(peer);
        match credentials {
            Credentials::None => {}
            Credentials::Session(cookie, csrf) => {
                request = request.header("cookie", format!("{}={cookie}", crate::admin::SESSION_COOKIE));
                if !csrf.is_empty() {
                    request = request.header("x-csrf-token", csrf);
                }
            }
            Credentials::Bearer(token) => request = request.header("authorization", format!("Bearer {token}")),
        }
        let body = if body.is_null() { Body::empty() } else { Body::from(body.to_string()) };
        let response = crate::web::app(state.clone()).oneshot(request.body(body).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let json = if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        (status, json)
    }

    /// The fixture's city with the bundled colon cancer screening live, the health
    /// division's clerk `kenko` (who owns it), and the tokens of another division and of
    /// the administrator.
    async fn screening() -> (Fixture, AppState, (String, String)) {
        let fixture = Fixture::new().await;
        let (wasm, cases) = component(PROGRAMS, "screening-colon");
        fixture.publish(wasm, Some(cases)).await.unwrap();
        let hash = hash_password(PASSWORD).unwrap();
        let tokens = fixture
            .database
            .write(move |connection| {
                let user = NewUser {
                    login: "kenko".into(),
                    display_name: "健康 太郎".into(),
                    role: Role::Division,
                    division: "健康支援課".into(),
                    programs: vec!["screening-colon".into()],
                };
                create_user(connection, &user, &hash, "test")?;
                Ok((
                    create_token(connection, "こども家庭課", &["infant-checkup".into()], false, 30, "test")?,
                    create_token(connection, "情報政策課", &[], true, 30, "test")?,
                ))
            })
            .await
            .unwrap();
        let state = AppState::new(fixture.service());
        (fixture, state, tokens)
    }

    /// Signs `kenko` in; returns the session cookie and its CSRF token.
    async fn sign_in(state: &AppState) -> (String, String) {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/admin/session")
            .header("content-type", "application/json")
            .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 40000))))
            .body(Body::from(serde_json::json!({ "login": "kenko", "password": PASSWORD }).to_string()))
            .unwrap();
        let response = crate::web::app(state.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        let cookie = set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        (cookie, answer["csrf_token"].as_str().unwrap().to_owned())
    }

    /// The audit log's settings lines: (actor, subject, detail).
    async fn audited(fixture: &Fixture) -> Vec<(String, String, String)> {
        fixture
            .database
            .read(|connection| {
                Ok(connection
                    .prepare("SELECT actor, subject, detail FROM audit_log WHERE action = 'set-settings' ORDER BY id")?
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect::<Result<_, _>>()?)
            })
            .await
            .unwrap()
    }

    /// (name, value, changed_by) of each setting in a listing.
    fn values(listing: &serde_json::Value) -> Vec<(String, String, Option<String>)> {
        listing
            .as_array()
            .unwrap_or_else(|| panic!("not a listing: {listing}"))
            .iter()
            .map(|state| {
                (
                    state["name"].as_str().unwrap().to_owned(),
                    state["value"].as_str().unwrap().to_owned(),
                    state["changed_by"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }

    const SETTINGS: &str = "/admin/programs/screening-colon/settings";
    const PREVIEW: &str = "/admin/programs/screening-colon/settings/preview";

    /// The whole way of a change: listed, previewed on a day of the season (the one
    /// resident of 40 or more is due; opening on June 1st instead removes that notice),
    /// refused when invalid with nothing stored, saved by the signed-in clerk with the
    /// audit line, and then used by the program's dry run.
    #[tokio::test]
    async fn a_clerk_previews_then_saves_a_season_and_the_program_runs_with_it() {
        let (fixture, state, (other_division, administrator)) = screening().await;
        let (cookie, csrf) = sign_in(&state).await;
        let kenko = Credentials::Session(&cookie, &csrf);
        let defaults = vec![
            ("season-closes".to_owned(), "02-29".to_owned(), None),
            ("season-opens".to_owned(), "05-16".to_owned(), None),
        ];

        let (status, listing) = send(&state, Method::GET, SETTINGS, kenko, serde_json::Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{listing}");
        let mut listed = values(&listing);
        listed.sort();
        assert_eq!(listed, defaults);
        let opens = listing.as_array().unwrap().iter().find(|state| state["name"] == "season-opens").unwrap();
        assert_eq!((opens["type"].as_str(), opens["default"].as_str()), (Some("month-day"), Some("05-16")));
        assert!(!opens["label"].as_str().unwrap().is_empty());

        // Nobody unknown gets anything, and the preview is the program's division's.
        for (method, path) in [(Method::GET, SETTINGS), (Method::POST, PREVIEW), (Method::PUT, SETTINGS)] {
            let body = serde_json::json!({ "changes": { "season-opens": "06-01" } });
            let (status, answer) = send(&state, method.clone(), path, Credentials::None, body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {answer}");
        }
        let later = serde_json::json!({ "changes": { "season-opens": "06-01" }, "date": "2026-05-20" });
        let (status, answer) =
            send(&state, Method::POST, PREVIEW, Credentials::Bearer(&other_division), later.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        let (status, answer) =
            send(&state, Method::PUT, SETTINGS, Credentials::Session(&cookie, ""), later.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a change without the CSRF token: {answer}");

        // The preview: counts only, nothing stored.
        let (status, preview) = send(&state, Method::POST, PREVIEW, kenko, later.clone()).await;
        assert_eq!(status, StatusCode::OK, "{preview}");
        assert_eq!(
            preview,
            serde_json::json!({
                "date": "2026-05-20",
                "current": { "notices": 1, "residents": 1 },
                "proposed": { "notices": 0, "residents": 0 },
                "added": 0,
                "removed": 1,
            })
        );
        let (_, unchanged) =
            send(&state, Method::POST, PREVIEW, kenko, serde_json::json!({ "date": "2026-05-20" })).await;
        assert_eq!(
            (&unchanged["current"], unchanged["added"].as_u64(), unchanged["removed"].as_u64()),
            (&preview["current"], Some(0), Some(0))
        );
        let earlier = serde_json::json!({ "changes": { "season-opens": "04-01" }, "date": "2026-05-01" });
        let (_, earlier) = send(&state, Method::POST, PREVIEW, kenko, earlier).await;
        assert_eq!(
            (earlier["current"]["notices"].as_u64(), earlier["added"].as_u64()),
            (Some(0), Some(1)),
            "{earlier}"
        );

        // Refusals, each naming what is wrong.
        let administrator = Credentials::Bearer(&administrator);
        let (put, post) = (Method::PUT, Method::POST);
        let change = |name: &str, value: &str| serde_json::json!({ "changes": { name: value } });
        let refusals = [
            (
                kenko,
                post.clone(),
                PREVIEW,
                change("season-opens", "13-40"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "setting season-opens",
            ),
            (
                kenko,
                put.clone(),
                SETTINGS,
                serde_json::json!({ "changes": { "season-opens": "06-01", "season-closes": "13-40" } }),
                StatusCode::UNPROCESSABLE_ENTITY,
                "setting season-closes",
            ),
            (kenko, put.clone(), SETTINGS, change("fee", "500"), StatusCode::NOT_FOUND, "has no setting fee"),
            (
                kenko,
                put.clone(),
                SETTINGS,
                serde_json::json!({ "changes": {} }),
                StatusCode::UNPROCESSABLE_ENTITY,
                "no changes",
            ),
            (
                kenko,
                post.clone(),
                PREVIEW,
                serde_json::json!({ "date": "20.5.2026" }),
                StatusCode::BAD_REQUEST,
                "is not YYYY-MM-DD",
            ),
            // Valid values the program cannot run with: its own reason, before anything is saved.
            (
                kenko,
                post.clone(),
                PREVIEW,
                serde_json::json!({ "changes": { "season-closes": "05-01" }, "date": "2026-05-20" }),
                StatusCode::UNPROCESSABLE_ENTITY,
                "closes on 2026-05-01, before it opens on 2026-05-16",
            ),
            // … and the same combination is not saved either.
            (
                kenko,
                put.clone(),
                SETTINGS,
                change("season-closes", "05-01"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "program screening-colon cannot run with these settings",
            ),
            (
                kenko,
                put.clone(),
                "/admin/programs/no-such-program/settings",
                change("season-opens", "06-01"),
                StatusCode::FORBIDDEN,
                "may not act on",
            ),
            (
                administrator,
                put.clone(),
                "/admin/programs/no-such-program/settings",
                change("season-opens", "06-01"),
                StatusCode::NOT_FOUND,
                "has no active version",
            ),
            (
                administrator,
                post.clone(),
                "/admin/programs/no-such-program/settings/preview",
                serde_json::json!({}),
                StatusCode::NOT_FOUND,
                "has no active version",
            ),
            (
                administrator,
                Method::GET,
                "/admin/programs/no-such-program/settings",
                serde_json::Value::Null,
                StatusCode::NOT_FOUND,
                "has no active version",
            ),
        ];
        for (credentials, method, path, body, expected, fragment) in refusals {
            let (status, answer) = send(&state, method.clone(), path, credentials, body.clone()).await;
            let error = answer["error"].as_str().unwrap_or_default();
            assert!(
                status == expected && error.contains(fragment),
                "{method} {path} {body}: expected {expected} with {fragment:?}, got {status} {answer}"
            );
        }
        let (_, listing) = send(&state, Method::GET, SETTINGS, kenko, serde_json::Value::Null).await;
        let mut listed = values(&listing);
        listed.sort();
        assert_eq!(listed, defaults, "a refused change stores nothing, not even its valid part");
        assert!(audited(&fixture).await.is_empty());

        // Saved: the answer is the new listing, the audit line names the clerk.
        let (status, saved) = send(&state, Method::PUT, SETTINGS, kenko, later.clone()).await;
        assert_eq!(status, StatusCode::OK, "{saved}");
        let opens = saved.as_array().unwrap().iter().find(|state| state["name"] == "season-opens").unwrap();
        assert_eq!(
            (opens["value"].as_str(), opens["default"].as_str(), opens["changed_by"].as_str()),
            (Some("06-01"), Some("05-16"), Some("user:kenko"))
        );
        assert!(opens["changed_at"].is_string(), "{opens}");
        assert_eq!(
            audited(&fixture).await,
            vec![("user:kenko".to_owned(), "screening-colon".to_owned(), "season-opens: 05-16 → 06-01".to_owned())]
        );

        // The program's own dry run now uses the saved value; a preview starts from it.
        let (status, dry_run) = send(
            &state,
            Method::GET,
            "/admin/programs/screening-colon/dry-run?date=2026-05-20",
            kenko,
            serde_json::Value::Null,
        )
        .await;
        assert_eq!((status, dry_run["notices"].as_u64()), (StatusCode::OK, Some(0)), "{dry_run}");
        let back = serde_json::json!({ "changes": { "season-opens": "05-16" }, "date": "2026-05-20" });
        let (_, back) = send(&state, Method::POST, PREVIEW, kenko, back).await;
        assert_eq!((back["current"]["notices"].as_u64(), back["added"].as_u64()), (Some(0), Some(1)), "{back}");
    }
}
