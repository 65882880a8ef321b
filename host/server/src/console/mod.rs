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
pub const PAGES: [(&str, &str); 11] = [
    ("dashboard", "ダッシュボード"),
    ("programs", "制度とプラグイン"),
    ("conditions", "条件から作る"),
    ("messages", "文面と設定"),
    ("sending", "送信"),
    ("surveys", "アンケート"),
    ("registrations", "登録申請"),
    ("deliveries", "配信状況"),
    ("uptake", "効果"),
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
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// `GET /console/{page}`.
pub async fn page(
    State(state): State<AppState>,
    Path(page): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let mut response = if page == "login" {
        Html(shell("login", "サインイン", "null")).into_response()
    } else {
        let Some((_, title)) = PAGES.iter().find(|(slug, _)| *slug == page) else {
            return Err(AppError::Request(StatusCode::NOT_FOUND, format!("no console page {page:?}")));
        };
        match session_caller(&state, &headers).await? {
            // Relative, like every URL of the console, so that it works under a proxy's path.
            None => Redirect::to(&format!("login?next={page}")).into_response(),
            Some((caller, csrf_token)) => {
                let session = serde_json::json!({
                    "caller": caller, "csrf_token": csrf_token, "pages": PAGES, "town": state.town,
                });
                let title = match &state.town {
                    Some(town) => format!("{title}({})", html_escape::encode_text(town)),
                    None => (*title).to_owned(),
                };
                Html(shell(&page, &title, &session.to_string())).into_response()
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
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\">\
         <title>{title} — oshirase 管理</title><link rel=\"stylesheet\" href=\"assets/style.css\"></head>\
         <body data-page=\"{page}\"><script id=\"session\" type=\"application/json\">{session}</script>\
         <header id=\"top\"></header><main id=\"main\"><h1>{title}</h1><div id=\"content\">読み込み中…</div>\
         </main>\
         <script src=\"assets/app.js\"></script></body></html>"
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
    use oshirase_bundled::PROGRAMS;
    use oshirase_core::accounts::Role;
    use oshirase_core::accounts::{NewUser, create_user, hash_password};
    use oshirase_core::testing::{Fixture, component};

    const PASSWORD: &str = "correct horse battery staple";

    /// A request as a browser sends it: with the session cookie and, when given, a CSRF token.
    async fn send(
        state: &AppState,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        csrf: Option<&str>,
        body: serde_json::Value,
    ) -> (StatusCode, HeaderMap, String) {
        send_from(state, [127, 0, 0, 1], method, path, cookie, csrf, body).await
    }

    /// `send` from a client at `address`, as the server tags a request with its peer.
    async fn send_from(
        state: &AppState,
        address: [u8; 4],
        method: Method,
        path: &str,
        cookie: Option<&str>,
        csrf: Option<&str>,
        body: serde_json::Value,
    ) -> (StatusCode, HeaderMap, String) {
        let peer = axum::extract::ConnectInfo(std::net::SocketAddr::from((address, 40000)));
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header("host", "127.0.0.1")
            .extension(peer);
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
        let (status, headers, body) = send(
            state,
            Method::POST,
            "/admin/session",
            None,
            None,
            serde_json::json!({ "login": login, "password": PASSWORD }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let set_cookie = headers.get("set-cookie").unwrap().to_str().unwrap().to_owned();
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
        // Secure as the configuration says, though the request came to 127.0.0.1: a proxy
        // may forward any Host.
        assert!(set_cookie.ends_with("; Secure"), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
        let csrf = serde_json::from_str::<serde_json::Value>(&body).unwrap()["csrf_token"].as_str().unwrap().to_owned();
        (cookie, csrf)
    }

    /// A server with vaccine-mr live and three staff: an administrator, the health
    /// division (which owns vaccine-mr only) and a viewer.
    async fn staffed() -> (Fixture, AppState) {
        let fixture = Fixture::new().await;
        let (wasm, cases) = component(PROGRAMS, "vaccine-mr");
        fixture.publish(wasm, Some(cases)).await.unwrap();
        let (wasm, cases) = component(PROGRAMS, "infant-checkup");
        fixture.publish(wasm, Some(cases)).await.unwrap();
        let hash = hash_password(PASSWORD).unwrap();
        fixture
            .database
            .write(move |connection| {
                for (login, role, programs) in [
                    ("admin", Role::Administrator, vec![]),
                    ("kenko", Role::Division, vec!["vaccine-mr".to_owned()]),
                    ("viewer", Role::Viewer, vec![]),
                ] {
                    let user = NewUser {
                        login: login.into(),
                        display_name: login.into(),
                        role,
                        division: "健康支援課".into(),
                        programs,
                    };
                    create_user(connection, &user, &hash, "test")?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let state = AppState::new(fixture.service());
        (fixture, state)
    }

    /// A town a proxy serves under a path keeps its session cookie to that path, so that
    /// towns under one host name keep their sessions apart.
    #[tokio::test]
    async fn a_town_served_under_a_path_keeps_its_cookie_to_it() {
        for (public_url, path) in [
            (None, "/"),
            (Some("https://oshirase.example.jp"), "/"),
            (Some("https://oshirase.example.jp/"), "/"),
            (Some("https://towns.example.jp/chuo/"), "/chuo"),
            (Some("https://towns.example.jp/chuo"), "/chuo"),
            (Some("http://127.0.0.1:8080/a/b/?x=1"), "/a/b"),
        ] {
            assert_eq!(crate::web::cookie_path(public_url), path, "{public_url:?}");
        }
        let (_fixture, state) = staffed().await;
        let state = AppState { cookie_path: "/chuo".into(), ..state };
        let (status, headers, body) = send(
            &state,
            Method::POST,
            "/admin/session",
            None,
            None,
            serde_json::json!({ "login": "viewer", "password": PASSWORD }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let set_cookie = headers.get("set-cookie").unwrap().to_str().unwrap();
        assert!(set_cookie.contains("; Path=/chuo; "), "{set_cookie}");
    }

    /// A server hosting several towns names the one this process serves on every page of
    /// the console, in its title and in the session the script reads.
    #[tokio::test]
    async fn the_town_a_process_serves_is_named_on_its_pages() {
        let (_fixture, state) = staffed().await;
        let state = AppState { town: Some("中央町<b>".into()), ..state };
        let (cookie, _) = sign_in(&state, "viewer").await;
        let (status, _, page) =
            send(&state, Method::GET, "/console/dashboard", Some(&cookie), None, serde_json::Value::Null).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("<title>ダッシュボード(中央町&lt;b&gt;) — oshirase 管理</title>"), "{page}");
        assert!(page.contains(r#""town":"中央町\u003cb>""#), "{page}");
    }

    /// Every `/admin` path of the route table, in the form the OpenAPI document writes it.
    fn routed_admin_paths() -> Vec<String> {
        let source = include_str!("../web.rs");
        // Each `.route(` is followed, on its line or the next, by the path in quotes.
        source
            .split(".route(")
            .skip(1)
            .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
            .filter(|path| path.starts_with("/admin"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_script_encodes_every_value_it_puts_into_an_admin_address() {
        // A program's code or an occasion's key comes from a plugin's manifest: unencoded,
        // `../` or `?` in it would send the request elsewhere.
        let mut unencoded = Vec::new();
        for template in SCRIPT.split('`').skip(1).step_by(2).filter(|template| template.starts_with("/admin")) {
            for value in template.split("${").skip(1) {
                if !value.starts_with("encodeURIComponent(") {
                    unencoded.push(template.to_owned());
                }
            }
        }
        assert!(unencoded.is_empty(), "{unencoded:?}");
        assert!(SCRIPT.contains(
            "`/admin/programs/${encodeURIComponent(choose.value)}/wording/${encodeURIComponent(occasion.key)}`"
        ));
    }

    #[test]
    fn the_openapi_document_describes_every_admin_route_and_no_other() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        let documented: std::collections::BTreeSet<String> =
            document["paths"].as_object().unwrap().keys().cloned().collect();
        let routed: std::collections::BTreeSet<String> =
            routed_admin_paths().into_iter().filter(|path| path != "/admin/openapi.json").collect();
        assert_eq!(documented, routed, "the OpenAPI document and the route table name the same /admin paths");
    }

    #[tokio::test]
    async fn no_page_and_no_admin_route_works_signed_out() {
        let (_fixture, state) = staffed().await;
        for (page, _) in PAGES {
            let (status, headers, _) =
                send(&state, Method::GET, &format!("/console/{page}"), None, None, serde_json::Value::Null).await;
            assert_eq!(status, StatusCode::SEE_OTHER, "/console/{page} signed out");
            assert_eq!(headers.get("location").unwrap(), &format!("login?next={page}"));
        }
        let document: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        for (path, operations) in document["paths"].as_object().unwrap() {
            let path = path
                .replace("{code}", "vaccine-mr")
                .replace("{occasion}", "phase-1")
                .replace("{id}", "1")
                .replace("{file}", "postcards-1.pdf");
            for method in operations.as_object().unwrap().keys() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                if path == "/admin/session" && method == Method::POST {
                    continue;
                }
                let (status, _, body) =
                    send(&state, method.clone(), &path, Some("forged-session"), None, serde_json::json!({})).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with an unknown session: {body}");
            }
        }
    }

    /// One request of a signed-in staff member and what it must answer.
    async fn check(
        state: &AppState,
        who: (&str, &str),
        method: Method,
        path: &str,
        body: serde_json::Value,
        expected: StatusCode,
        fragment: &str,
    ) {
        let (status, _, text) = send(state, method.clone(), path, Some(who.0), Some(who.1), body).await;
        assert!(
            status == expected && text.contains(fragment),
            "{method} {path}: expected {expected} with {fragment:?}, got {status} {text}"
        );
    }

    #[tokio::test]
    async fn roles_divisions_and_csrf_tokens_are_enforced() {
        let (fixture, state) = staffed().await;
        let (admin_cookie, admin_csrf) = sign_in(&state, "admin").await;
        let (kenko_cookie, kenko_csrf) = sign_in(&state, "kenko").await;
        let (viewer_cookie, viewer_csrf) = sign_in(&state, "viewer").await;
        let (admin, kenko, viewer) = (
            (admin_cookie.as_str(), admin_csrf.as_str()),
            (kenko_cookie.as_str(), kenko_csrf.as_str()),
            (viewer_cookie.as_str(), viewer_csrf.as_str()),
        );
        let forged = (kenko_cookie.as_str(), admin_csrf.as_str());
        let wording = |template: &str| serde_json::json!({ "template": template });
        let (put, post, get) = (Method::PUT, Method::POST, Method::GET);
        // A forged or missing CSRF token changes nothing, whoever's session it rides on.
        check(
            &state,
            forged,
            put.clone(),
            "/admin/programs/vaccine-mr/wording/phase-1",
            wording("【{program}】偽造"),
            StatusCode::FORBIDDEN,
            "CSRF",
        )
        .await;
        check(
            &state,
            (kenko.0, ""),
            post.clone(),
            "/admin/programs/vaccine-mr/disable",
            serde_json::Value::Null,
            StatusCode::FORBIDDEN,
            "CSRF",
        )
        .await;
        // Division staff act on their own programs only.
        check(
            &state,
            kenko,
            put.clone(),
            "/admin/programs/vaccine-mr/wording/phase-1",
            wording("【{program}】{deadline}まで"),
            StatusCode::OK,
            "まで",
        )
        .await;
        check(
            &state,
            kenko,
            put.clone(),
            "/admin/programs/vaccine-mr/wording/phase-1",
            wording("{name}さん"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown placeholder {name}",
        )
        .await;
        check(
            &state,
            kenko,
            put.clone(),
            "/admin/programs/infant-checkup/wording/first",
            wording("【{program}】"),
            StatusCode::FORBIDDEN,
            r#"may not act on program \"infant-checkup\""#,
        )
        .await;
        // The links of a card: https addresses, on the division's own programs.
        let booking = |url: &str| serde_json::json!({ "booking_url": url });
        check(
            &state,
            kenko,
            put.clone(),
            "/admin/programs/vaccine-mr/links/phase-1",
            booking("https://yoyaku.example.jp/mr"),
            StatusCode::OK,
            r#""booking_url":"https://yoyaku.example.jp/mr""#,
        )
        .await;
        check(
            &state,
            kenko,
            put.clone(),
            "/admin/programs/vaccine-mr/links/phase-1",
            booking("javascript:alert(1)"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "must be an https:// address",
        )
        .await;
        check(
            &state,
            kenko,
            put.clone(),
            "/admin/programs/infant-checkup/links/first",
            booking("https://yoyaku.example.jp/"),
            StatusCode::FORBIDDEN,
            r#"may not act on program \"infant-checkup\""#,
        )
        .await;
        check(
            &state,
            kenko,
            post.clone(),
            "/admin/programs/infant-checkup/disable",
            serde_json::Value::Null,
            StatusCode::FORBIDDEN,
            "may not act on",
        )
        .await;
        check(
            &state,
            kenko,
            post.clone(),
            "/admin/sends",
            serde_json::json!({ "program": "infant-checkup" }),
            StatusCode::FORBIDDEN,
            "may not act on",
        )
        .await;
        check(
            &state,
            kenko,
            post.clone(),
            "/admin/sends",
            serde_json::json!({ "broadcast": { "title": "t", "text": "x" } }),
            StatusCode::FORBIDDEN,
            "for the administrator",
        )
        .await;
        check(
            &state,
            kenko,
            get.clone(),
            "/admin/applications",
            serde_json::Value::Null,
            StatusCode::FORBIDDEN,
            "for the administrator",
        )
        .await;
        check(
            &state,
            kenko,
            get.clone(),
            "/admin/programs/vaccine-mr/dry-run?date=2026-11-21",
            serde_json::Value::Null,
            StatusCode::OK,
            "\"residents\":null",
        )
        .await;
        check(
            &state,
            kenko,
            get.clone(),
            "/admin/programs/infant-checkup/dry-run?date=2026-11-21",
            serde_json::Value::Null,
            StatusCode::FORBIDDEN,
            "may not act on",
        )
        .await;
        check(
            &state,
            kenko,
            get.clone(),
            "/admin/users",
            serde_json::Value::Null,
            StatusCode::FORBIDDEN,
            "for the administrator",
        )
        .await;
        // Viewers read and change nothing.
        check(
            &state,
            viewer,
            get.clone(),
            "/admin/dashboard",
            serde_json::Value::Null,
            StatusCode::OK,
            "programs_live",
        )
        .await;
        check(
            &state,
            viewer,
            post.clone(),
            "/admin/programs/vaccine-mr/disable",
            serde_json::Value::Null,
            StatusCode::FORBIDDEN,
            "may only read",
        )
        .await;
        check(
            &state,
            viewer,
            get.clone(),
            "/admin/programs/vaccine-mr/dry-run?date=2026-11-21",
            serde_json::Value::Null,
            StatusCode::FORBIDDEN,
            "may not act on",
        )
        .await;
        check(
            &state,
            viewer,
            get.clone(),
            "/admin/tokens",
            serde_json::Value::Null,
            StatusCode::FORBIDDEN,
            "for the administrator",
        )
        .await;
        // The audit log names residents and staff: viewers see the entries about programs.
        check(
            &state,
            admin,
            get.clone(),
            "/admin/audit",
            serde_json::Value::Null,
            StatusCode::OK,
            "\"action\":\"create-user\"",
        )
        .await;
        let (_, _, viewed) =
            send(&state, get.clone(), "/admin/audit", Some(viewer.0), None, serde_json::Value::Null).await;
        let viewed: Vec<serde_json::Value> = serde_json::from_str(&viewed).unwrap();
        assert!(
            !viewed.is_empty()
                && viewed
                    .iter()
                    .all(|entry| ["vaccine-mr", "infant-checkup"].contains(&entry["subject"].as_str().unwrap())),
            "{viewed:?}"
        );
        // The administrator does everything, and sees names in a dry run.
        check(
            &state,
            admin,
            get.clone(),
            "/admin/programs/vaccine-mr/dry-run?date=2026-11-21",
            serde_json::Value::Null,
            StatusCode::OK,
            "\"residents\":[",
        )
        .await;
        check(
            &state,
            admin,
            post.clone(),
            "/admin/sends",
            serde_json::json!({
                "broadcast": { "title": "調査", "text": "ご協力を", "category": "Health" },
                "send_at": "2030-01-01T09:00"
            }),
            StatusCode::CREATED,
            "2030-01-01 09:00:00 JST",
        )
        .await;
        check(
            &state,
            admin,
            post.clone(),
            "/admin/sends",
            serde_json::json!({ "broadcast": { "title": "調査", "text": "x", "category": "Sports" } }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown category",
        )
        .await;
        check(
            &state,
            admin,
            post.clone(),
            "/admin/sends/1/cancel",
            serde_json::Value::Null,
            StatusCode::NO_CONTENT,
            "",
        )
        .await;
        check(
            &state,
            admin,
            post.clone(),
            "/admin/sends/1/cancel",
            serde_json::Value::Null,
            StatusCode::CONFLICT,
            "already cancelled",
        )
        .await;
        // Signing out ends the session.
        check(&state, admin, Method::DELETE, "/admin/session", serde_json::Value::Null, StatusCode::NO_CONTENT, "")
            .await;
        check(
            &state,
            admin,
            get.clone(),
            "/admin/dashboard",
            serde_json::Value::Null,
            StatusCode::UNAUTHORIZED,
            "sign in",
        )
        .await;
        let stored: Vec<String> = fixture
            .database
            .write(|connection| {
                Ok(connection
                    .prepare("SELECT template FROM message_wording")?
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(stored, ["【{program}】{deadline}まで"], "only the accepted wording was stored");
    }

    #[tokio::test]
    async fn the_administrator_takes_staff_access_back_and_it_is_gone_at_once() {
        let (fixture, state) = staffed().await;
        let (admin_cookie, admin_csrf) = sign_in(&state, "admin").await;
        let admin = (admin_cookie.as_str(), admin_csrf.as_str());
        let (kenko_cookie, kenko_csrf) = sign_in(&state, "kenko").await;
        let kenko = (kenko_cookie.as_str(), kenko_csrf.as_str());
        let (get, post, none) = (Method::GET, Method::POST, serde_json::Value::Null);
        check(&state, admin, get.clone(), "/admin/users", none.clone(), StatusCode::OK, "\"login\":\"kenko\"").await;
        check(
            &state,
            admin,
            post.clone(),
            "/admin/users/admin/disable",
            none.clone(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "your own account",
        )
        .await;
        check(
            &state,
            admin,
            post.clone(),
            "/admin/users/nobody/disable",
            none.clone(),
            StatusCode::NOT_FOUND,
            "no staff account",
        )
        .await;
        // Disabled: the open session stops working, and signing in answers as for a stranger.
        check(&state, admin, post.clone(), "/admin/users/kenko/disable", none.clone(), StatusCode::NO_CONTENT, "")
            .await;
        check(&state, kenko, get.clone(), "/admin/dashboard", none.clone(), StatusCode::UNAUTHORIZED, "sign in").await;
        let refused = send(
            &state,
            post.clone(),
            "/admin/session",
            None,
            None,
            serde_json::json!({ "login": "kenko", "password": PASSWORD }),
        )
        .await;
        let stranger = send(
            &state,
            post.clone(),
            "/admin/session",
            None,
            None,
            serde_json::json!({ "login": "stranger", "password": PASSWORD }),
        )
        .await;
        assert_eq!((refused.0, &refused.2), (StatusCode::UNAUTHORIZED, &stranger.2));
        check(&state, admin, post.clone(), "/admin/users/kenko/enable", none.clone(), StatusCode::NO_CONTENT, "").await;
        let (kenko_cookie, kenko_csrf) = sign_in(&state, "kenko").await;
        // A new password ends the sessions; only the new password signs in.
        let (status, _, answer) =
            send(&state, post.clone(), "/admin/users/kenko/password", Some(admin.0), Some(admin.1), none.clone()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let password =
            serde_json::from_str::<serde_json::Value>(&answer).unwrap()["password"].as_str().unwrap().to_owned();
        check(
            &state,
            (&kenko_cookie, &kenko_csrf),
            get.clone(),
            "/admin/dashboard",
            none.clone(),
            StatusCode::UNAUTHORIZED,
            "sign in",
        )
        .await;
        let old = send(
            &state,
            post.clone(),
            "/admin/session",
            None,
            None,
            serde_json::json!({ "login": "kenko", "password": PASSWORD }),
        )
        .await;
        assert_eq!(old.0, StatusCode::UNAUTHORIZED);
        let new = send(
            &state,
            post.clone(),
            "/admin/session",
            None,
            None,
            serde_json::json!({ "login": "kenko", "password": password }),
        )
        .await;
        assert_eq!(new.0, StatusCode::OK, "{}", new.2);
        check(
            &state,
            admin,
            post.clone(),
            "/admin/users/kenko/end-sessions",
            none.clone(),
            StatusCode::OK,
            "\"sessions\":1",
        )
        .await;
        // Tokens: listed without the token, revoked or expired at once.
        let (revoked, expired) = fixture
            .database
            .write(|connection| {
                Ok((
                    oshirase_core::accounts::create_token(
                        connection,
                        "健康支援課",
                        &["vaccine-mr".into()],
                        false,
                        30,
                        "test",
                    )?,
                    oshirase_core::accounts::create_token(connection, "情報政策課", &[], true, 30, "test")?,
                ))
            })
            .await
            .unwrap();
        let bearer = |token: &str| {
            let request = Request::builder()
                .uri("/admin/programs")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let app = crate::web::app(state.clone());
            async move { app.oneshot(request).await.unwrap().status() }
        };
        assert_eq!((bearer(&revoked).await, bearer(&expired).await), (StatusCode::OK, StatusCode::OK));
        let (_, _, listed) = send(&state, get.clone(), "/admin/tokens", Some(admin.0), None, none.clone()).await;
        assert!(
            !listed.contains(&revoked) && !listed.contains(&expired) && listed.contains("\"works\":true"),
            "{listed}"
        );
        check(&state, admin, post.clone(), "/admin/tokens/1/revoke", none.clone(), StatusCode::NO_CONTENT, "").await;
        check(
            &state,
            admin,
            post.clone(),
            "/admin/tokens/2/expiry",
            serde_json::json!({ "days": 0 }),
            StatusCode::NO_CONTENT,
            "",
        )
        .await;
        check(
            &state,
            admin,
            post.clone(),
            "/admin/tokens/2/expiry",
            serde_json::json!({ "days": -1 }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "0 to 3650 days",
        )
        .await;
        check(
            &state,
            admin,
            post.clone(),
            "/admin/tokens/99/revoke",
            none.clone(),
            StatusCode::NOT_FOUND,
            "no admin token",
        )
        .await;
        assert_eq!(
            (bearer(&revoked).await, bearer(&expired).await),
            (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
        );
        let actions: Vec<String> = fixture
            .database
            .read(|connection| {
                Ok(connection
                    .prepare("SELECT action FROM audit_log WHERE actor = 'user:admin'")?
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(
            actions,
            [
                "sign-in",
                "disable-user",
                "enable-user",
                "reset-password",
                "end-sessions",
                "revoke-token",
                "expire-token"
            ]
        );
    }

    #[tokio::test]
    async fn failed_sign_ins_make_that_address_wait_for_that_login_and_no_one_else() {
        let (fixture, state) = staffed().await;
        let (attacker, staff) = ([203, 0, 113, 9], [10, 0, 0, 7]);
        let attempt = |address: [u8; 4], login: &'static str, password: &'static str| {
            let state = state.clone();
            async move {
                send_from(
                    &state,
                    address,
                    Method::POST,
                    "/admin/session",
                    None,
                    None,
                    serde_json::json!({ "login": login, "password": password }),
                )
                .await
            }
        };
        // Each login's attempts follow one another, so the first wait (one second from the
        // fifth failure) is still running at the sixth however slowly a loaded machine
        // hashes the other login's passwords; each from an address of its own, so that
        // neither meets the address's own limit on requests.
        let mut answers = Vec::new();
        for (login, from) in [("kenko", attacker), ("no-such-login", [203, 0, 113, 10])] {
            let mut statuses = Vec::new();
            for _ in 0..crate::admin::throttle::FREE_FAILURES + 1 {
                let (status, _, body) = attempt(from, login, "wrong password!").await;
                statuses.push((status, body));
            }
            if login == "kenko" {
                // Even the right password waits at that address; at the staff member's own it works.
                assert_eq!(attempt(attacker, "kenko", PASSWORD).await.0, StatusCode::TOO_MANY_REQUESTS);
                assert_eq!(attempt(staff, "kenko", PASSWORD).await.0, StatusCode::OK);
            }
            answers.push(statuses);
        }
        let (known, unknown) = (&answers[0], &answers[1]);
        assert_eq!(known, unknown, "an unknown login answers exactly like a known one");
        assert_eq!(known[0].0, StatusCode::UNAUTHORIZED);
        assert_eq!(known.last().unwrap().0, StatusCode::TOO_MANY_REQUESTS, "{:?}", known.last());
        // Beyond its burst, one address is refused whatever the login.
        let mut statuses = Vec::new();
        for _ in 0..12 {
            statuses.push(attempt([198, 51, 100, 1], "viewer", "wrong password!").await.0);
        }
        assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
        // The failures are in the audit log in aggregate: the first of each subject.
        let failures: Vec<(String, String)> = fixture
            .database
            .read(|connection| {
                Ok(connection
                    .prepare("SELECT subject, detail FROM audit_log WHERE action = 'sign-in-failed' ORDER BY id")?
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(
            failures.iter().map(|(subject, _)| subject.as_str()).collect::<Vec<_>>(),
            ["user:kenko", "unknown login", "user:viewer"],
            "{failures:?}"
        );
    }

    #[tokio::test]
    async fn public_addresses_show_nothing_personal_and_the_form_is_protected() {
        let (_fixture, state) = staffed().await;
        // Relative addresses, each of which leads from its path to /console/dashboard (and,
        // under a proxy's path, from /chuo/ to /chuo/console/dashboard).
        for (path, location) in
            [("/", "console/dashboard"), ("/console", "console/dashboard"), ("/console/", "dashboard")]
        {
            let (status, headers, _) = send(&state, Method::GET, path, None, None, serde_json::Value::Null).await;
            assert_eq!(
                (status, headers.get("location").map(|value| value.to_str().unwrap())),
                (StatusCode::SEE_OTHER, Some(location)),
                "{path}"
            );
        }
        let (status, headers, body) =
            send(&state, Method::GET, "/apply/no-such-link", None, None, serde_json::Value::Null).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(
            headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'")
                && headers["x-frame-options"] == "DENY",
            "{headers:?}"
        );
    }
}
