//! `GET /r/{token}`: a card's or e-mail's link, counted for its program's occasion and day
//! (`oshirase_core::link_opens`) and sent on to the city's page. It sets no cookie and
//! keeps nothing about who opened it.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::web::{AppError, AppState};

/// `GET /r/{token}`: 303 to the page the token stands for, or 404 for a token no message
/// carried.
pub async fn open(State(state): State<AppState>, Path(token): Path<String>) -> Result<Response, AppError> {
    let not_found = || AppError::Request(StatusCode::NOT_FOUND, "this link is not one the city sent".into());
    // Tokens are 32 hex digits; anything else is not looked up at all.
    if token.len() != 32 || !token.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let today = oshirase_core::time::today_in_japan();
    let url = state
        .service
        .database
        .write(move |connection| oshirase_core::link_opens::open(connection, &token, today))
        .await?
        .ok_or_else(not_found)?;
    // No referrer for the city's page: the token is nobody's, but the page need not know it.
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, url.as_str()), (header::REFERRER_POLICY, "no-referrer")])
        .into_response())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use oshirase_core::link_opens::{Button, opened_between, register, token};
    use tower::ServiceExt;

    use super::*;

    /// A known token is counted and sent on with 303, with no cookie; an unknown or
    /// malformed one is 404 and counts nothing.
    #[tokio::test]
    async fn a_link_is_counted_and_sent_on_and_an_unknown_one_is_not() {
        let fixture = oshirase_core::testing::Fixture::new().await;
        let url = "https://www.city.chiba.jp/kenko/mr.html";
        fixture
            .database
            .write(move |connection| register(connection, "vaccine-mr", "phase-1", Button::Details, url))
            .await
            .unwrap();
        let state = AppState::new(fixture.service());
        let get = |path: String| {
            let state = state.clone();
            async move {
                let request = Request::get(path).body(Body::empty()).unwrap();
                crate::web::app(state).oneshot(request).await.unwrap()
            }
        };
        let known = token("vaccine-mr", "phase-1", Button::Details, url);
        for _ in 0..2 {
            let response = get(format!("/r/{known}")).await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            assert_eq!(response.headers()[header::LOCATION], url);
            assert!(!response.headers().contains_key(header::SET_COOKIE));
        }
        for unknown in ["0".repeat(32), "not-a-token".into(), format!("{known}0")] {
            assert_eq!(get(format!("/r/{unknown}")).await.status(), StatusCode::NOT_FOUND, "{unknown}");
        }
        let today = oshirase_core::time::today_in_japan();
        let opened = fixture.database.read(move |connection| opened_between(connection, today, today)).await.unwrap();
        assert_eq!(opened.into_values().collect::<Vec<_>>(), [2]);
    }
}
