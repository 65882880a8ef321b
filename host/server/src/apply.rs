//! The application form's pages, `/apply/{token}`: a mobile form without script, sent
//! with headers that keep it out of frames, caches and referrers. What an application is
//! and how it is stored is `oshirase_core::apply`.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use oshirase_core::apply::{ApplicationForm, Submission};
use oshirase_core::chat::application_link::link_owner;

use crate::web::{AppError, AppState};

const PAGE_STYLE: &str = "body{font-family:sans-serif;margin:1em;max-width:32em}label{display:block;margin-top:1em}\
input{width:100%;font-size:1.1em;padding:.4em;box-sizing:border-box}\
button{margin-top:1.5em;width:100%;font-size:1.1em;padding:.6em;background:#06c755;color:white;border:0;\
border-radius:8px}.problem{color:#b00}";

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><title>お知らせサービスの申し込み</title>\
         <style>{PAGE_STYLE}</style></head><body>{body}</body></html>"
    ))
}

/// The form posts to the page's own address (no `action`), which holds under a reverse
/// proxy's path too.
fn form_page(form: &ApplicationForm, problems: &[String]) -> Html<String> {
    let escape = |text: &str| html_escape::encode_double_quoted_attribute(text).into_owned();
    let problems: String = problems
        .iter()
        .map(|problem| format!("<p class=\"problem\">{}</p>", html_escape::encode_text(problem)))
        .collect();
    page(&format!(
        "<h1>お知らせサービスの申し込み</h1><p>住民票のとおりに入力してください。\
         市で確認のうえ、登録番号をはがきで住所にお送りします。</p>{problems}\
         <form method=\"post\"><label>お名前<input name=\"name\" value=\"{}\" \
         autocomplete=\"name\" required></label>\
         <label>生年月日<input name=\"birth_date\" type=\"date\" value=\"{}\" required></label>\
         <label>住所<input name=\"address\" value=\"{}\" autocomplete=\"street-address\" required></label>\
         <button>申し込む</button></form>",
        escape(&form.name),
        escape(&form.birth_date),
        escape(&form.address)
    ))
}

fn expired_page() -> (StatusCode, Html<String>) {
    (
        StatusCode::NOT_FOUND,
        page(
            "<h1>このリンクは使えません</h1><p>期限が切れたか、\
             すでに申し込みに使われています。LINEのトークで「申し込み」と送ると、\
             新しいリンクをお送りします。</p>",
        ),
    )
}

/// A page of the form with its protections: no script at all, styles only from the page,
/// posting only to this server, never inside another site's frame, no referrer (the
/// address holds the personal link), never cached.
fn protected((status, html): (StatusCode, Html<String>)) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; \
             base-uri 'none'",
        ),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

/// `GET /apply/{token}`: the form, or a page saying the link no longer works.
pub async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Result<Response, AppError> {
    let lookup = token.clone();
    let owner = state.service.database.read(move |connection| link_owner(connection, &lookup)).await?;
    Ok(protected(match owner {
        Some(_) => (StatusCode::OK, form_page(&ApplicationForm::default(), &[])),
        None => expired_page(),
    }))
}

/// `POST /apply/{token}`: stores the application and uses up the link; a form with a
/// problem is shown again with every problem, and nothing is stored.
pub async fn submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<ApplicationForm>,
) -> Result<Response, AppError> {
    let today = oshirase_core::time::today_in_japan();
    let (lookup, submitted) = (token.clone(), form.clone());
    let submission = state
        .service
        .database
        .write(move |connection| oshirase_core::apply::submit(connection, &lookup, &submitted, today))
        .await?;
    Ok(protected(match submission {
        Submission::LinkUnusable => expired_page(),
        Submission::Stored => (
            StatusCode::OK,
            page(
                "<h1>申し込みを受け付けました</h1><p>市で確認のうえ、\
                 登録番号をはがきでお送りします。届いたら、\
                 LINEのトークに番号を送ってください。</p>",
            ),
        ),
        Submission::Problems(problems) => (StatusCode::UNPROCESSABLE_ENTITY, form_page(&form, &problems)),
    }))
}
