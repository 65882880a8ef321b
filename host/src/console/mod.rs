//! The admin console's pages: one HTML shell per page, served only to signed-in staff
//! (anyone else is sent to the sign-in page), and one script (`app.js`) that draws each
//! page from the JSON admin API, so every page does exactly what the API allows the
//! caller. Also serves the OpenAPI document of that API (`openapi.json`).

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::admin::session_caller;
use crate::web::{AppError, AppState};

/// Every page: its path under `/console/` and its title in the navigation.
pub const PAGES: [(&str, &str); 8] = [
    ("dashboard", "ダッシュボード"),
    ("programs", "制度とプラグイン"),
    ("messages", "文面"),
    ("sending", "送信"),
    ("registrations", "登録申請"),
    ("deliveries", "配信状況"),
    ("audit", "監査ログ"),
    ("accounts", "アカウント"),
];

const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("style.css");
/// The OpenAPI document of the admin API; a test checks it names every `/admin` route.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Scripts and styles come from this server only; no page may be framed.
fn security_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `GET /console/{page}`.
pub async fn page(State(state): State<AppState>, Path(page): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    let mut response = if page == "login" {
        Html(shell("login", "サインイン", "null")).into_response()
    } else {
        let Some((_, title)) = PAGES.iter().find(|(slug, _)| *slug == page) else {
            return Err(AppError::Request(StatusCode::NOT_FOUND, format!("no console page {page:?}")));
        };
        match session_caller(&state, &headers).await? {
            None => Redirect::to(&format!("/console/login?next=/console/{page}")).into_response(),
            Some((caller, csrf_token)) => {
                let session = serde_json::json!({ "caller": caller, "csrf_token": csrf_token, "pages": PAGES });
                Html(shell(&page, title, &session.to_string())).into_response()
            }
        }
    };
    security_headers(&mut response);
    Ok(response)
}

/// A page's HTML: the session as data (the script reads it; `<` is escaped so no text in
/// it can end the element), and the script that draws the page.
fn shell(page: &str, title: &str, session: &str) -> String {
    let session = session.replace('<', "\\u003c");
    format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — oshirase 管理</title><link rel=\"stylesheet\" href=\"/console/assets/style.css\"></head>\
         <body data-page=\"{page}\"><script id=\"session\" type=\"application/json\">{session}</script>\
         <header id=\"top\"></header><main id=\"main\"><h1>{title}</h1><div id=\"content\">読み込み中…</div></main>\
         <script src=\"/console/assets/app.js\"></script></body></html>"
    )
}

/// `GET /console/assets/{file}`: the script and the style sheet.
pub async fn asset(Path(file): Path<String>) -> Result<Response, AppError> {
    let (body, content_type) = match file.as_str() {
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return Err(AppError::Request(StatusCode::NOT_FOUND, format!("no console asset {file:?}"))),
    };
    let mut response = ([(CONTENT_TYPE, content_type)], body).into_response();
    security_headers(&mut response);
    Ok(response)
}

/// `GET /admin/openapi.json`: public, like any API's description.
pub async fn openapi() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], OPENAPI)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request};
    use tower::ServiceExt;

    use super::*;
    use crate::admin::Role;
    use crate::admin::accounts::{NewUser, create_user, hash_password};
    use crate::publish::tests::{Fixture, bundled};

    const PASSWORD: &str = "correct horse battery staple";

    /// A request as a browser sends it: with the session cookie and, when given, a CSRF token.
    async fn send(state: &AppState, method: Method, path: &str, cookie: Option<&str>, csrf: Option<&str>, body: serde_json::Value) -> (StatusCode, HeaderMap, String) {
        let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json").header("host", "127.0.0.1");
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("other=1; {}={cookie}", crate::admin::SESSION_COOKIE));
        }
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        let body = if body.is_null() { Body::empty() } else { Body::from(body.to_string()) };
        let response = crate::web::app(state.clone()).oneshot(request.body(body).unwrap()).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, headers, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Signs in through the API; returns the cookie and the CSRF token.
    async fn sign_in(state: &AppState, login: &str) -> (String, String) {
        let (status, headers, body) = send(state, Method::POST, "/admin/session", None, None, serde_json::json!({ "login": login, "password": PASSWORD })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let set_cookie = headers.get("set-cookie").unwrap().to_str().unwrap().to_owned();
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
        let csrf = serde_json::from_str::<serde_json::Value>(&body).unwrap()["csrf_token"].as_str().unwrap().to_owned();
        (cookie, csrf)
    }

    /// A server with vaccine-mr live and three staff: an administrator, the health
    /// division (which owns vaccine-mr only) and a viewer.
    async fn staffed() -> (Fixture, AppState) {
        let fixture = Fixture::new().await;
        let (wasm, cases) = bundled("vaccine-mr");
        fixture.publish(wasm, Some(cases)).await.unwrap();
        let (wasm, cases) = bundled("infant-checkup");
        fixture.publish(wasm, Some(cases)).await.unwrap();
        let hash = hash_password(PASSWORD).unwrap();
        fixture
            .database
            .write(move |connection| {
                for (login, role, programs) in [("admin", Role::Administrator, vec![]), ("kenko", Role::Division, vec!["vaccine-mr".to_owned()]), ("viewer", Role::Viewer, vec![])] {
                    let user = NewUser { login: login.into(), display_name: login.into(), role, division: "健康支援課".into(), programs };
                    create_user(connection, &user, &hash, "test")?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let state = AppState::new(fixture.service());
        (fixture, state)
    }

    /// Every `/admin` path of the route table, in the form the OpenAPI document writes it.
    fn routed_admin_paths() -> Vec<String> {
        let source = include_str!("../web.rs");
        source.split(".route(\"").skip(1).filter_map(|rest| rest.split('"').next()).filter(|path| path.starts_with("/admin")).map(str::to_owned).collect()
    }

    #[test]
    fn the_openapi_document_describes_every_admin_route_and_no_other() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let documented: std::collections::BTreeSet<String> = document["paths"].as_object().unwrap().keys().cloned().collect();
        let routed: std::collections::BTreeSet<String> = routed_admin_paths().into_iter().filter(|path| path != "/admin/openapi.json").collect();
        assert_eq!(documented, routed, "the OpenAPI document and the route table name the same /admin paths");
    }

    #[tokio::test]
    async fn no_page_and_no_admin_route_works_signed_out() {
        let (_fixture, state) = staffed().await;
        for (page, _) in PAGES {
            let (status, headers, _) = send(&state, Method::GET, &format!("/console/{page}"), None, None, serde_json::Value::Null).await;
            assert_eq!(status, StatusCode::SEE_OTHER, "/console/{page} signed out");
            assert_eq!(headers.get("location").unwrap(), &format!("/console/login?next=/console/{page}"));
        }
        let document: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        for (path, operations) in document["paths"].as_object().unwrap() {
            let path = path.replace("{code}", "vaccine-mr").replace("{occasion}", "phase-1").replace("{id}", "1").replace("{file}", "postcards-1.pdf");
            for method in operations.as_object().unwrap().keys() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                if path == "/admin/session" && method == Method::POST {
                    continue;
                }
                let (status, _, body) = send(&state, method.clone(), &path, Some("forged-session"), None, serde_json::json!({})).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with an unknown session: {body}");
            }
        }
    }

    /// One request of a signed-in staff member and what it must answer.
    async fn check(state: &AppState, who: (&str, &str), method: Method, path: &str, body: serde_json::Value, expected: StatusCode, fragment: &str) {
        let (status, _, text) = send(state, method.clone(), path, Some(who.0), Some(who.1), body).await;
        assert!(status == expected && text.contains(fragment), "{method} {path}: expected {expected} with {fragment:?}, got {status} {text}");
    }

    #[tokio::test]
    async fn roles_divisions_and_csrf_tokens_are_enforced() {
        let (fixture, state) = staffed().await;
        let (admin_cookie, admin_csrf) = sign_in(&state, "admin").await;
        let (kenko_cookie, kenko_csrf) = sign_in(&state, "kenko").await;
        let (viewer_cookie, viewer_csrf) = sign_in(&state, "viewer").await;
        let (admin, kenko, viewer) = ((admin_cookie.as_str(), admin_csrf.as_str()), (kenko_cookie.as_str(), kenko_csrf.as_str()), (viewer_cookie.as_str(), viewer_csrf.as_str()));
        let forged = (kenko_cookie.as_str(), admin_csrf.as_str());
        let wording = |template: &str| serde_json::json!({ "template": template });
        let (put, post, get) = (Method::PUT, Method::POST, Method::GET);
        // A forged or missing CSRF token changes nothing, whoever's session it rides on.
        check(&state, forged, put.clone(), "/admin/programs/vaccine-mr/wording/phase-1", wording("【{program}】偽造"), StatusCode::FORBIDDEN, "CSRF").await;
        check(&state, (kenko.0, ""), post.clone(), "/admin/programs/vaccine-mr/disable", serde_json::Value::Null, StatusCode::FORBIDDEN, "CSRF").await;
        // Division staff act on their own programs only.
        check(&state, kenko, put.clone(), "/admin/programs/vaccine-mr/wording/phase-1", wording("【{program}】{deadline}まで"), StatusCode::OK, "まで").await;
        check(&state, kenko, put.clone(), "/admin/programs/vaccine-mr/wording/phase-1", wording("{name}さん"), StatusCode::UNPROCESSABLE_ENTITY, "unknown placeholder {name}").await;
        check(&state, kenko, put.clone(), "/admin/programs/infant-checkup/wording/first", wording("【{program}】"), StatusCode::FORBIDDEN, r#"may not act on program \"infant-checkup\""#).await;
        check(&state, kenko, post.clone(), "/admin/programs/infant-checkup/disable", serde_json::Value::Null, StatusCode::FORBIDDEN, "may not act on").await;
        check(&state, kenko, post.clone(), "/admin/sends", serde_json::json!({ "program": "infant-checkup" }), StatusCode::FORBIDDEN, "may not act on").await;
        check(&state, kenko, post.clone(), "/admin/sends", serde_json::json!({ "broadcast": { "title": "t", "text": "x" } }), StatusCode::FORBIDDEN, "for the administrator").await;
        check(&state, kenko, get.clone(), "/admin/applications", serde_json::Value::Null, StatusCode::FORBIDDEN, "for the administrator").await;
        check(&state, kenko, get.clone(), "/admin/programs/vaccine-mr/dry-run?date=2026-11-21", serde_json::Value::Null, StatusCode::OK, "\"residents\":null").await;
        // Viewers read and change nothing.
        check(&state, viewer, get.clone(), "/admin/dashboard", serde_json::Value::Null, StatusCode::OK, "programs_live").await;
        check(&state, viewer, post.clone(), "/admin/programs/vaccine-mr/disable", serde_json::Value::Null, StatusCode::FORBIDDEN, "may only read").await;
        // The administrator does everything, and sees names in a dry run.
        check(&state, admin, get.clone(), "/admin/programs/vaccine-mr/dry-run?date=2026-11-21", serde_json::Value::Null, StatusCode::OK, "\"residents\":[").await;
        check(&state, admin, post.clone(), "/admin/sends", serde_json::json!({ "broadcast": { "title": "調査", "text": "ご協力を", "category": "Health" }, "send_at": "2030-01-01T09:00" }), StatusCode::CREATED, "2030-01-01 09:00:00 JST").await;
        check(&state, admin, post.clone(), "/admin/sends", serde_json::json!({ "broadcast": { "title": "調査", "text": "x", "category": "Sports" } }), StatusCode::UNPROCESSABLE_ENTITY, "unknown category").await;
        check(&state, admin, post.clone(), "/admin/sends/1/cancel", serde_json::Value::Null, StatusCode::NO_CONTENT, "").await;
        check(&state, admin, post.clone(), "/admin/sends/1/cancel", serde_json::Value::Null, StatusCode::CONFLICT, "already cancelled").await;
        // Signing out ends the session.
        check(&state, admin, Method::DELETE, "/admin/session", serde_json::Value::Null, StatusCode::NO_CONTENT, "").await;
        check(&state, admin, get.clone(), "/admin/dashboard", serde_json::Value::Null, StatusCode::UNAUTHORIZED, "sign in").await;
        let stored: Vec<String> = fixture.database.write(|connection| Ok(connection.prepare("SELECT template FROM message_wording")?.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?)).await.unwrap();
        assert_eq!(stored, ["【{program}】{deadline}まで"], "only the accepted wording was stored");
    }
}
