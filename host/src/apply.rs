//! Applying for registration: the chat sends a resident a personal link to a mobile form
//! (`GET /apply/{token}`; the token names their LINE account, works once and for a day,
//! and only its hash is stored), where they give their name, birth date and address.
//! Staff then see each pending application beside the snapshot records it matches (same
//! birth date, same name written with or without spaces) and approve it for one resident
//! — which issues a registration number and puts it in the batch of postcards to print —
//! or reject it; either way the applicant hears of it in the chat (`chat::push`, queued in
//! the same transaction). Nothing is linked until the resident types the number from the
//! postcard.

use anyhow::Result;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use oshirase_sdk::Day;
use rusqlite::{Connection, OptionalExtension};

use crate::database::{audit, now_text};
use crate::registry::sha256_hex;
use crate::web::{AppError, AppState};

/// How long a link to the form works.
const LINK_VALID_DAYS: i64 = 1;
/// The longest name and address accepted, in characters.
const MAX_NAME: usize = 60;
const MAX_ADDRESS: usize = 200;

/// A new personal link token for `line_user_id`; only its hash is stored.
pub fn create_link(connection: &Connection, line_user_id: &str) -> Result<String> {
    let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    connection.execute(
        "INSERT INTO application_links (token_sha256, line_user_id, expires_at) VALUES (?1, ?2, ?3)",
        (sha256_hex(token.as_bytes()), line_user_id, crate::database::text_in_days(LINK_VALID_DAYS)),
    )?;
    Ok(token)
}

/// The LINE user a link token was made for, while it is unused and unexpired.
fn link_owner(connection: &Connection, token: &str) -> Result<Option<String>> {
    Ok(connection
        .query_row(
            "SELECT line_user_id FROM application_links WHERE token_sha256 = ?1 AND used_at IS NULL AND expires_at > ?2",
            (sha256_hex(token.as_bytes()), now_text()),
            |row| row.get(0),
        )
        .optional()?)
}

/// The form's fields as the browser sends them.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct ApplicationForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub birth_date: String,
    #[serde(default)]
    pub address: String,
}

/// The form's fields checked: the name, the birth date and the address, or every problem.
fn check(form: &ApplicationForm, today: Day) -> Result<(String, Day, String), Vec<String>> {
    let mut problems = Vec::new();
    let name = form.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        problems.push(format!("お名前を{MAX_NAME}文字以内で入力してください"));
    }
    let birth = crate::import::values::date(&form.birth_date).filter(|day| *day <= today && *day > today.add_months_clamped(-12 * 130));
    if birth.is_none() {
        problems.push("生年月日を正しく入力してください(例: 1990-04-01)".to_string());
    }
    let address = form.address.trim().to_string();
    if address.is_empty() || address.chars().count() > MAX_ADDRESS {
        problems.push(format!("住所を{MAX_ADDRESS}文字以内で入力してください"));
    }
    match birth {
        Some(birth) if problems.is_empty() => Ok((name, birth, address)),
        _ => Err(problems),
    }
}

const PAGE_STYLE: &str = "body{font-family:sans-serif;margin:1em;max-width:32em}label{display:block;margin-top:1em}input{width:100%;font-size:1.1em;padding:.4em;box-sizing:border-box}\
button{margin-top:1.5em;width:100%;font-size:1.1em;padding:.6em;background:#06c755;color:white;border:0;border-radius:8px}.problem{color:#b00}";

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>お知らせサービスの申し込み</title><style>{PAGE_STYLE}</style></head><body>{body}</body></html>"
    ))
}

fn form_page(token: &str, form: &ApplicationForm, problems: &[String]) -> Html<String> {
    let escape = |text: &str| html_escape::encode_double_quoted_attribute(text).into_owned();
    let problems: String = problems.iter().map(|problem| format!("<p class=\"problem\">{}</p>", html_escape::encode_text(problem))).collect();
    page(&format!(
        "<h1>お知らせサービスの申し込み</h1><p>住民票のとおりに入力してください。市で確認のうえ、登録番号をはがきで住所にお送りします。</p>{problems}\
         <form method=\"post\" action=\"/apply/{}\"><label>お名前<input name=\"name\" value=\"{}\" autocomplete=\"name\" required></label>\
         <label>生年月日<input name=\"birth_date\" type=\"date\" value=\"{}\" required></label>\
         <label>住所<input name=\"address\" value=\"{}\" autocomplete=\"street-address\" required></label><button>申し込む</button></form>",
        escape(token),
        escape(&form.name),
        escape(&form.birth_date),
        escape(&form.address)
    ))
}

fn expired_page() -> (StatusCode, Html<String>) {
    (StatusCode::NOT_FOUND, page("<h1>このリンクは使えません</h1><p>期限が切れたか、すでに申し込みに使われています。LINEのトークで「申し込み」と送ると、新しいリンクをお送りします。</p>"))
}

/// A page of the form with its protections: no script at all, styles only from the page,
/// posting only to this server, never inside another site's frame, no referrer (the
/// address holds the personal link), never cached.
fn protected((status, html): (StatusCode, Html<String>)) -> Response {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"));
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
        Some(_) => (StatusCode::OK, form_page(&token, &ApplicationForm::default(), &[])),
        None => expired_page(),
    }))
}

/// `POST /apply/{token}`: stores the application and uses up the link; a form with a
/// problem is shown again with every problem, and nothing is stored.
pub async fn submit(State(state): State<AppState>, Path(token): Path<String>, Form(form): Form<ApplicationForm>) -> Result<Response, AppError> {
    let today = crate::service::today_in_japan();
    let checked = check(&form, today);
    let to_store = checked.clone();
    let lookup = token.clone();
    let stored = state
        .service
        .database
        .write(move |connection| {
            let transaction = connection.transaction()?;
            let Some(line_user_id) = link_owner(&transaction, &lookup)? else {
                return Ok(None);
            };
            let Ok((name, birth, address)) = to_store else {
                return Ok(Some(false));
            };
            transaction.execute(
                "INSERT INTO applications (line_user_id, name, birth_day, address, submitted_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                (&line_user_id, &name, birth.0, &address, now_text()),
            )?;
            let id = transaction.last_insert_rowid();
            transaction.execute("UPDATE application_links SET used_at = ?2 WHERE token_sha256 = ?1", (sha256_hex(lookup.as_bytes()), now_text()))?;
            audit(&transaction, "line", "submit-application", &format!("application {id}"), "")?;
            transaction.commit()?;
            Ok(Some(true))
        })
        .await?;
    Ok(protected(match stored {
        None => expired_page(),
        Some(true) => (StatusCode::OK, page("<h1>申し込みを受け付けました</h1><p>市で確認のうえ、登録番号をはがきでお送りします。届いたら、LINEのトークに番号を送ってください。</p>")),
        Some(false) => (StatusCode::UNPROCESSABLE_ENTITY, form_page(&token, &form, &checked.err().unwrap_or_default())),
    }))
}

/// Why staff cannot act on an application as asked.
#[derive(Debug, thiserror::Error)]
pub enum ApplicationError {
    #[error("there is no application {0}")]
    NotFound(i64),
    #[error("application {id} was already {state}")]
    AlreadyDecided { id: i64, state: String },
    #[error("resident {0:?} is not in the active snapshot")]
    UnknownResident(String),
}

/// A snapshot record an application may be about.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Candidate {
    pub resident_id: String,
    pub name: String,
    pub birth_date: String,
    pub address: String,
    pub ward: String,
}

/// A pending application beside the records it matches.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PendingApplication {
    pub id: i64,
    pub submitted_at: String,
    pub name: String,
    pub birth_date: String,
    pub address: String,
    pub candidates: Vec<Candidate>,
}

/// Names compared as written on different forms: without spaces of either width.
fn name_key(name: &str) -> String {
    name.chars().filter(|character| !character.is_whitespace()).collect()
}

/// Every pending application, oldest first, with the active snapshot's residents born
/// the same day whose name matches.
pub fn pending(connection: &Connection) -> Result<Vec<PendingApplication>> {
    let snapshot_id = crate::snapshot::active(connection)?.unwrap_or(0);
    let mut statement = connection.prepare("SELECT id, submitted_at, name, birth_day, address FROM applications WHERE state = 'pending' ORDER BY id")?;
    let applications: Vec<(i64, String, String, i32, String)> =
        statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))?.collect::<Result<_, _>>()?;
    let mut same_birth = connection.prepare("SELECT resident_id, name, address, ward FROM residents WHERE snapshot_id = ?1 AND birth_day = ?2")?;
    let mut pending = Vec::new();
    for (id, submitted_at, name, birth, address) in applications {
        let candidates = same_birth
            .query_map((snapshot_id, birth), |row| {
                Ok(Candidate { resident_id: row.get(0)?, name: row.get(1)?, birth_date: Day(birth).to_string(), address: row.get(2)?, ward: row.get(3)? })
            })?
            .filter(|candidate| !matches!(candidate, Ok(candidate) if name_key(&candidate.name) != name_key(&name)))
            .collect::<Result<_, _>>()?;
        pending.push(PendingApplication { id, submitted_at, name, birth_date: Day(birth).to_string(), address, candidates });
    }
    Ok(pending)
}

/// The LINE user who sent application `id`.
fn applicant(connection: &Connection, id: i64) -> Result<String> {
    Ok(connection.query_row("SELECT line_user_id FROM applications WHERE id = ?1", [id], |row| row.get(0))?)
}

/// Fails unless application `id` exists and is pending.
fn must_be_pending(connection: &Connection, id: i64) -> Result<()> {
    let state: Option<String> = connection.query_row("SELECT state FROM applications WHERE id = ?1", [id], |row| row.get(0)).optional()?;
    match state {
        None => Err(ApplicationError::NotFound(id).into()),
        Some(state) if state != "pending" => Err(ApplicationError::AlreadyDecided { id, state }.into()),
        Some(_) => Ok(()),
    }
}

/// Approves an application for `resident_id`: issues a registration number, which adds
/// it, with the resident's name and address from the snapshot, to the batch of postcards
/// to print (`chat::number::issue_within`), and tells the applicant in the chat that a
/// postcard is on its way.
/// Returns the number as printed.
pub fn approve(connection: &mut Connection, id: i64, resident_id: &str, actor: &str) -> Result<String> {
    let transaction = connection.transaction()?;
    must_be_pending(&transaction, id)?;
    let snapshot_id = crate::snapshot::active(&transaction)?.unwrap_or(0);
    let known: bool = transaction.query_row("SELECT count(*) FROM residents WHERE snapshot_id = ?1 AND resident_id = ?2", (snapshot_id, resident_id), |row| row.get(0))?;
    if !known {
        return Err(ApplicationError::UnknownResident(resident_id.to_string()).into());
    }
    let number = crate::chat::number::issue_within(&transaction, resident_id, crate::chat::number::DEFAULT_VALID_DAYS, actor)?;
    transaction.execute("UPDATE applications SET state = 'approved', resident_id = ?2, decided_by = ?3, decided_at = ?4 WHERE id = ?1", (id, resident_id, actor, now_text()))?;
    crate::chat::push::queue(&transaction, &applicant(&transaction, id)?, crate::chat::push::Kind::ApplicationApproved)?;
    audit(&transaction, actor, "approve-application", &format!("application {id}"), resident_id)?;
    transaction.commit()?;
    Ok(number)
}

/// Rejects an application with a reason for staff; the applicant is told in the chat,
/// without the reason, to ask at the window.
pub fn reject(connection: &mut Connection, id: i64, reason: &str, actor: &str) -> Result<()> {
    let transaction = connection.transaction()?;
    must_be_pending(&transaction, id)?;
    transaction.execute("UPDATE applications SET state = 'rejected', reason = ?2, decided_by = ?3, decided_at = ?4 WHERE id = ?1", (id, reason, actor, now_text()))?;
    crate::chat::push::queue(&transaction, &applicant(&transaction, id)?, crate::chat::push::Kind::ApplicationRejected)?;
    audit(&transaction, actor, "reject-application", &format!("application {id}"), reason)?;
    transaction.commit()?;
    Ok(())
}
