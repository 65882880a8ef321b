//! A LINE Messaging API emulator for the demo and the tests. It enforces the request
//! rules of LINE's OpenAPI description (`messaging-api.yml` of LINE's line-openapi repository) for push,
//! multicast and reply — bearer token, 1–5 messages, at most 500 recipients, retry keys
//! that answer 409 on a repeat, quick replies of at most 13 buttons, reply tokens that
//! work once and only shortly after the event — records what each user would see, and
//! shows it as phones. Tests ask it for reply tokens (`issue_reply_token`), as LINE puts
//! one in each webhook event it sends.
//! It can be told to misbehave (`faults.rs`); every message a user would see is counted,
//! so a message delivered twice shows twice in `/emulator/inboxes`. Like LINE, it counts
//! the month's messages (`/v2/bot/message/quota/consumption`) and, when given a monthly
//! limit, answers 429 to a request that would go beyond it.

// A refused request is an HTTP answer, built once and returned at once: boxing it buys
// nothing a test double needs.
#![allow(clippy::result_large_err, reason = "a refusal is the response itself")]

mod faults;
mod flex;
mod rich_menu;
mod users;

pub use rich_menu::RichMenu;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
pub use faults::{Faults, Injected};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
pub use users::{UserAction, WebhookTarget};

// The rules below are read from LINE's OpenAPI files, not taken from the client the
// emulator checks, so that a mistake in the client cannot hide itself.

/// The longest text message LINE accepts, in characters (`TextMessage.text`).
const MAX_TEXT_CHARACTERS: usize = 5000;
/// The most quick-reply buttons under one message (`QuickReply.items`, maxItems 13).
const MAX_QUICK_REPLY_ITEMS: usize = 13;
/// The longest label of a quick-reply button (`Action.label`, maxLength 20).
const MAX_QUICK_REPLY_LABEL: usize = 20;
/// The longest postback data (`PostbackAction.data`, maxLength 300).
const MAX_POSTBACK_DATA: usize = 300;

/// Whether `text` is a LINE user id: `^U[0-9a-f]{32}$` (`webhook.yml`, `UserSource.userId`).
pub fn is_user_id(text: &str) -> bool {
    text.len() == 33
        && text.starts_with('U')
        && text[1..].bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// The signature LINE sends with a webhook request (`X-Line-Signature`): base64 of
/// HMAC-SHA256 of the body with the channel secret.
pub fn signature(channel_secret: &[u8], body: &[u8]) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(channel_secret).expect("HMAC takes a key of any length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
/// How long a reply token stays usable. LINE documents only that it must be used soon
/// after the event; the emulator allows a minute.
const REPLY_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);

/// One message as a user would see it in their chat.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub id: String,
    /// A text message's text, or a Flex message's `altText`.
    pub text: String,
    /// A Flex message's container (a bubble or a carousel), as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flex: Option<Value>,
    pub request_id: String,
    pub aggregation_unit: Option<String>,
    /// The quick-reply buttons shown under the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<QuickButton>,
}

/// A quick-reply button as the user sees it: what it says and what tapping it sends.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuickButton {
    pub label: String,
    /// The postback data (postback and date-picker actions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The text a message action sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Whether tapping it opens a date picker.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub date_picker: bool,
}

/// One accepted request, as kept in the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Accepted {
    request_id: String,
    retry_key: Option<String>,
    to: Vec<String>,
    messages: Vec<ReceivedMessage>,
    /// A reply, which LINE does not count against the monthly quota.
    #[serde(default)]
    free: bool,
}

#[derive(Default)]
struct Inbox {
    by_user: BTreeMap<String, Vec<ReceivedMessage>>,
    /// Retry key → the request id that was accepted with it.
    retry_keys: HashMap<String, String>,
    /// Reply token → the user it answers and when it was issued; removed when used.
    reply_tokens: HashMap<String, (String, std::time::Instant)>,
    /// Reply tokens used since the users' side last looked (`users.rs` waits for them).
    answered: std::collections::HashSet<String>,
    /// What each user said through the users' side, with the length of their inbox then,
    /// so the phones show it in its place (kept in memory only).
    said: BTreeMap<String, Vec<(usize, String)>>,
    next_message_id: u64,
    /// Messages delivered as LINE counts its quota: one per recipient of each request,
    /// however many message objects (up to 5) it holds.
    consumed: u64,
    /// The month's limit of messages, when the emulated plan has one.
    monthly_limit: Option<u64>,
    /// Whether the emulated channel's application for custom aggregation units was
    /// approved; LINE refuses a message naming one otherwise.
    aggregation_units_approved: bool,
    journal: Option<std::fs::File>,
}

impl Inbox {
    fn apply(&mut self, accepted: &Accepted) {
        if let Some(key) = &accepted.retry_key {
            self.retry_keys.insert(key.clone(), accepted.request_id.clone());
        }
        for user in &accepted.to {
            self.by_user.entry(user.clone()).or_default().extend(accepted.messages.iter().cloned());
        }
        if !accepted.free {
            self.consumed += accepted.to.len() as u64;
        }
    }
}

/// The emulator's shared state: the channel access token it accepts and every inbox.
#[derive(Clone)]
pub struct Emulator {
    token: Arc<str>,
    inbox: Arc<Mutex<Inbox>>,
    faults: faults::SharedFaults,
    /// The bot's webhook, for the users' side (`users.rs`).
    webhook: Arc<Mutex<Option<WebhookTarget>>>,
    /// Woken whenever a reply token is used.
    replied: Arc<tokio::sync::Notify>,
    rich_menus: Arc<Mutex<rich_menu::RichMenus>>,
}

impl Emulator {
    /// An emulator that forgets everything when it stops.
    pub fn new(channel_access_token: &str) -> Emulator {
        Emulator {
            token: channel_access_token.into(),
            inbox: Arc::new(Mutex::new(Inbox::default())),
            faults: Arc::new(Mutex::new(faults::FaultState::new(Faults::default()))),
            webhook: Arc::new(Mutex::new(None)),
            replied: Arc::new(tokio::sync::Notify::new()),
            rich_menus: Arc::new(Mutex::new(rich_menu::RichMenus::default())),
        }
    }

    /// The channel's rich menus, in the order created.
    pub fn rich_menus(&self) -> Vec<RichMenu> {
        self.rich_menus.lock().unwrap().menus.clone()
    }

    /// Every user's default rich menu, if one is set.
    pub fn default_rich_menu(&self) -> Option<String> {
        self.rich_menus.lock().unwrap().default.clone()
    }

    /// Sends the users' events to this webhook from now on.
    pub fn set_webhook(&self, target: WebhookTarget) {
        *self.webhook.lock().unwrap() = Some(target);
    }

    /// Puts `faults` in force from now on, with a fresh generator from their seed and
    /// fresh counts; refuses shares that do not make sense.
    pub fn set_faults(&self, faults: Faults) -> Result<(), String> {
        faults.check()?;
        *self.faults.lock().unwrap() = faults::FaultState::new(faults);
        Ok(())
    }

    /// An emulator that keeps accepted requests in a journal file (JSON lines) and reads
    /// it back at start, so inboxes and retry keys survive a restart as LINE's do.
    pub fn with_journal(channel_access_token: &str, journal: PathBuf) -> anyhow::Result<Emulator> {
        let emulator = Emulator::new(channel_access_token);
        {
            let mut inbox = emulator.inbox.lock().unwrap();
            if let Ok(text) = std::fs::read_to_string(&journal) {
                for line in text.lines().filter(|line| !line.trim().is_empty()) {
                    // A line cut short by a crash is the only kind that fails; it was never answered.
                    if let Ok(accepted) = serde_json::from_str::<Accepted>(line) {
                        inbox.next_message_id += accepted.messages.len() as u64 * accepted.to.len() as u64;
                        inbox.apply(&accepted);
                    }
                }
            }
            inbox.journal = Some(std::fs::OpenOptions::new().create(true).append(true).open(&journal)?);
        }
        Ok(emulator)
    }

    /// Gives the emulated plan a monthly limit of `messages` (None: no limit).
    pub fn set_monthly_limit(&self, messages: Option<u64>) {
        self.inbox.lock().unwrap().monthly_limit = messages;
    }

    /// Lets pushes and multicasts name a custom aggregation unit, as LINE does for a
    /// channel whose application for them was approved.
    pub fn approve_aggregation_units(&self, approved: bool) {
        self.inbox.lock().unwrap().aggregation_units_approved = approved;
    }

    /// A reply token for an event from `user`, as LINE puts in a webhook event: it works
    /// once, within `REPLY_TOKEN_LIFETIME`.
    pub fn issue_reply_token(&self, user: &str) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.inbox.lock().unwrap().reply_tokens.insert(token.clone(), (user.to_string(), std::time::Instant::now()));
        token
    }

    /// Every message each user has received, by user id.
    pub fn inboxes(&self) -> BTreeMap<String, Vec<ReceivedMessage>> {
        self.inbox.lock().unwrap().by_user.clone()
    }

    /// The routes of the Messaging API it emulates, plus its phones page and a JSON view.
    pub fn router(&self) -> Router {
        let sending = Router::new()
            .route("/v2/bot/message/push", post(push))
            .route("/v2/bot/message/multicast", post(multicast))
            .route_layer(axum::middleware::from_fn_with_state(self.clone(), faults::inject));
        Router::new()
            .merge(sending)
            .route("/v2/bot/message/reply", post(reply))
            .route("/v2/bot/message/quota", get(quota))
            .route("/v2/bot/message/quota/consumption", get(quota_consumption))
            .route("/v2/bot/richmenu", post(rich_menu::create))
            .route("/v2/bot/richmenu/list", get(rich_menu::list))
            .route("/v2/bot/richmenu/{id}", axum::routing::delete(rich_menu::delete))
            // On LINE, the data host (`api-data.line.me`); the emulator is both.
            .route("/v2/bot/richmenu/{id}/content", post(rich_menu::upload))
            .route("/v2/bot/user/all/richmenu", get(rich_menu::get_default))
            .route("/v2/bot/user/all/richmenu/{id}", post(rich_menu::set_default))
            .route("/emulator/rich-menu", get(rich_menu::default_image))
            .route("/emulator/inboxes", get(inboxes_json))
            .route("/emulator/faults", get(faults_json).put(put_faults))
            .route("/emulator/webhook", axum::routing::put(users::put_webhook))
            .route("/emulator/users/{user}/events", post(users::user_event))
            .route("/", get(phones_page))
            .with_state(self.clone())
    }

    /// Serves the emulator alone on `listener` until `shutdown` completes.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        axum::serve(listener, self.router()).with_graceful_shutdown(shutdown).await?;
        Ok(())
    }

    /// Delivers `messages` to `to` unless the retry key was seen (409) or, for a message
    /// that is not `free` (a push or multicast; replies are free), the monthly limit would
    /// be passed (429).
    fn accept(
        &self,
        retry_key: Option<String>,
        to: Vec<String>,
        messages: &[Value],
        aggregation_unit: Option<String>,
        free: bool,
    ) -> Result<Accepted, Response> {
        let mut inbox = self.inbox.lock().unwrap();
        if let Some(key) = &retry_key
            && let Some(request_id) = inbox.retry_keys.get(key)
        {
            let mut response = error(StatusCode::CONFLICT, "The retry key is already accepted", None);
            if let Ok(value) = HeaderValue::from_str(request_id) {
                response.headers_mut().insert("x-line-accepted-request-id", value);
            }
            return Err(response);
        }
        let messages_sent = to.len() as u64;
        if !free && inbox.monthly_limit.is_some_and(|limit| inbox.consumed + messages_sent > limit) {
            return Err(error(StatusCode::TOO_MANY_REQUESTS, "You have reached your monthly limit.", None));
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut received = Vec::new();
        for message in messages {
            inbox.next_message_id += 1;
            received.push(ReceivedMessage {
                id: format!("{:018}", 500_000_000_000_000_000u64 + inbox.next_message_id),
                text: message["text"].as_str().or(message["altText"].as_str()).unwrap_or_default().to_string(),
                flex: (message["type"] == "flex").then(|| message["contents"].clone()),
                request_id: request_id.clone(),
                aggregation_unit: aggregation_unit.clone(),
                buttons: message
                    .pointer("/quickReply/items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|item| quick_button(item.get("action")?))
                    .collect(),
            });
        }
        let accepted = Accepted { request_id, retry_key, to, messages: received, free };
        if let Some(journal) = inbox.journal.as_mut() {
            let line = serde_json::to_string(&accepted).expect("journal entries serialize");
            // The request is answered only after its journal line is written.
            if writeln!(journal, "{line}").and_then(|()| journal.flush()).is_err() {
                return Err(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The emulator could not record the request",
                    None,
                ));
            }
        }
        inbox.apply(&accepted);
        Ok(accepted)
    }
}

/// A LINE-shaped error body: `{"message": …, "details": [{"message": …, "property": …}]}`.
fn error(status: StatusCode, message: &str, detail: Option<(&str, &str)>) -> Response {
    let mut body = json!({ "message": message });
    if let Some((detail, property)) = detail {
        body["details"] = json!([{ "message": detail, "property": property }]);
    }
    (status, axum::Json(body)).into_response()
}

fn invalid(detail: &str, property: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "The request body has 1 error(s)", Some((detail, property)))
}

/// Checks the bearer token, as every endpoint does.
fn check_token(emulator: &Emulator, headers: &HeaderMap) -> Result<(), Response> {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| !token.is_empty() && token == &*emulator.token);
    if !authorized {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Authentication failed. Confirm that the access token in the authorization header is valid.",
            None,
        ));
    }
    Ok(())
}

/// Checks what every send endpoint shares: the token, JSON, the retry key and the messages.
fn common_checks(emulator: &Emulator, headers: &HeaderMap, body: &Bytes) -> Result<(Option<String>, Value), Response> {
    check_token(emulator, headers)?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !is_json {
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "The content type must be application/json", None));
    }
    let retry_key = match headers.get("x-line-retry-key") {
        None => None,
        Some(value) => match value.to_str().ok().and_then(|text| uuid::Uuid::try_parse(text).ok()) {
            Some(key) => Some(key.hyphenated().to_string()),
            None => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "The value of the X-Line-Retry-Key header is invalid",
                    None,
                ));
            }
        },
    };
    let body: Value = serde_json::from_slice(body)
        .map_err(|_| error(StatusCode::BAD_REQUEST, "The request body could not be parsed as JSON", None))?;
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Err(invalid("must be specified", "messages"));
    };
    if messages.is_empty() || messages.len() > 5 {
        return Err(invalid("Size must be between 1 and 5", "messages"));
    }
    for (index, message) in messages.iter().enumerate() {
        let property = format!("messages[{index}]");
        match message.get("type").and_then(Value::as_str) {
            Some("text") => match message.get("text").and_then(Value::as_str) {
                None => return Err(invalid("must be specified", &format!("{property}.text"))),
                Some("") => return Err(invalid("May not be empty", &format!("{property}.text"))),
                Some(text) if text.chars().count() > MAX_TEXT_CHARACTERS => {
                    return Err(invalid(
                        &format!("Length must be between 0 and {MAX_TEXT_CHARACTERS}"),
                        &format!("{property}.text"),
                    ));
                }
                Some(_) => {}
            },
            Some("flex") => {
                flex::check_message(message, &property).map_err(|(detail, property)| invalid(&detail, &property))?
            }
            Some(_) => {
                return Err(invalid("the emulator accepts only text and flex messages", &format!("{property}.type")));
            }
            None => return Err(invalid("must be specified", &format!("{property}.type"))),
        }
        if let Some(quick_reply) = message.get("quickReply") {
            check_quick_reply(quick_reply, &format!("{property}.quickReply"))?;
        }
    }
    Ok((retry_key, body))
}

/// A checked quick-reply action as the user's phone shows it.
fn quick_button(action: &Value) -> Option<QuickButton> {
    let text = |key: &str| action.get(key).and_then(Value::as_str).map(str::to_string);
    Some(QuickButton {
        label: text("label")?,
        data: text("data"),
        text: text("text"),
        date_picker: action.get("type").and_then(Value::as_str) == Some("datetimepicker"),
    })
}

/// A quick reply: 1–13 items of type `action`, each a postback, date picker or message
/// action with a label of 1–20 characters and data of at most 300.
fn check_quick_reply(quick_reply: &Value, property: &str) -> Result<(), Response> {
    let Some(items) = quick_reply.get("items").and_then(Value::as_array) else {
        return Err(invalid("must be specified", &format!("{property}.items")));
    };
    if items.is_empty() || items.len() > MAX_QUICK_REPLY_ITEMS {
        return Err(invalid("Size must be between 1 and 13", &format!("{property}.items")));
    }
    for (index, item) in items.iter().enumerate() {
        let property = format!("{property}.items[{index}]");
        if item.get("type").and_then(Value::as_str) != Some("action") {
            return Err(invalid("must be action", &format!("{property}.type")));
        }
        let action = item.get("action").ok_or_else(|| invalid("must be specified", &format!("{property}.action")))?;
        let label = action.get("label").and_then(Value::as_str).unwrap_or_default();
        if label.is_empty() || label.chars().count() > MAX_QUICK_REPLY_LABEL {
            return Err(invalid("Length must be between 1 and 20", &format!("{property}.action.label")));
        }
        let data = action.get("data").and_then(Value::as_str);
        match action.get("type").and_then(Value::as_str) {
            Some("postback") => {
                if data.is_none() {
                    return Err(invalid("must be specified", &format!("{property}.action.data")));
                }
            }
            Some("datetimepicker") => {
                if !matches!(action.get("mode").and_then(Value::as_str), Some("date" | "time" | "datetime")) {
                    return Err(invalid("must be one of date, time, datetime", &format!("{property}.action.mode")));
                }
            }
            Some("message") => {
                if action.get("text").and_then(Value::as_str).is_none_or(str::is_empty) {
                    return Err(invalid("must be specified", &format!("{property}.action.text")));
                }
            }
            _ => {
                return Err(invalid(
                    "the emulator accepts postback, datetimepicker and message actions",
                    &format!("{property}.action.type"),
                ));
            }
        }
        if data.is_some_and(|data| data.chars().count() > MAX_POSTBACK_DATA) {
            return Err(invalid("Length must be between 0 and 300", &format!("{property}.action.data")));
        }
    }
    Ok(())
}

/// Reads `customAggregationUnits`: at most one name of 1–30 letters, digits or underscores,
/// and only from a channel approved for them (403 otherwise, as LINE answers a feature the
/// channel may not use).
fn aggregation_unit(emulator: &Emulator, body: &Value) -> Result<Option<String>, Response> {
    let Some(units) = body.get("customAggregationUnits") else {
        return Ok(None);
    };
    if !emulator.inbox.lock().unwrap().aggregation_units_approved {
        return Err(error(StatusCode::FORBIDDEN, "Access to this API is not available for your account", None));
    }
    let units = units.as_array().ok_or_else(|| invalid("must be an array", "customAggregationUnits"))?;
    if units.len() > 1 {
        return Err(invalid("Size must be between 0 and 1", "customAggregationUnits"));
    }
    match units.first() {
        None => Ok(None),
        Some(unit) => match unit.as_str() {
            Some(name)
                if (1..=30).contains(&name.len())
                    && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_') =>
            {
                Ok(Some(name.to_string()))
            }
            _ => Err(invalid("must match \"^[a-zA-Z0-9_]{1,30}$\"", "customAggregationUnits[0]")),
        },
    }
}

fn accepted_response(accepted: &Accepted, body: Value) -> Response {
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&accepted.request_id) {
        response.headers_mut().insert("x-line-request-id", value);
    }
    response
}

/// The answer of push and reply: the id and quote token of every message sent.
fn sent_messages_response(accepted: &Accepted) -> Response {
    let sent: Vec<Value> = accepted
        .messages
        .iter()
        .map(|message| json!({ "id": message.id, "quoteToken": format!("q{}", message.id) }))
        .collect();
    accepted_response(accepted, json!({ "sentMessages": sent }))
}

async fn push(State(emulator): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    let (retry_key, body) = match common_checks(&emulator, &headers, &body) {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let to = match body.get("to").and_then(Value::as_str) {
        Some(to) if is_user_id(to) => to.to_string(),
        Some(_) => return invalid("The user ID is invalid", "to"),
        None => return invalid("must be specified", "to"),
    };
    let unit = match aggregation_unit(&emulator, &body) {
        Ok(unit) => unit,
        Err(response) => return response,
    };
    match emulator.accept(retry_key, vec![to], body["messages"].as_array().unwrap(), unit, false) {
        Ok(accepted) => sent_messages_response(&accepted),
        Err(response) => response,
    }
}

/// `POST /v2/bot/message/reply`: the token must be one issued for an event and unused, and
/// is used up even when the request is refused later, as LINE's is.
async fn reply(State(emulator): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    let (_, body) = match common_checks(&emulator, &headers, &body) {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let Some(token) = body.get("replyToken").and_then(Value::as_str) else {
        return invalid("must be specified", "replyToken");
    };
    let issued = emulator.inbox.lock().unwrap().reply_tokens.remove(token);
    let user = match issued {
        Some((user, issued_at)) if issued_at.elapsed() <= REPLY_TOKEN_LIFETIME => user,
        _ => return error(StatusCode::BAD_REQUEST, "Invalid reply token", None),
    };
    let answer = match emulator.accept(None, vec![user], body["messages"].as_array().unwrap(), None, true) {
        Ok(accepted) => sent_messages_response(&accepted),
        Err(response) => response,
    };
    emulator.inbox.lock().unwrap().answered.insert(token.to_string());
    emulator.replied.notify_waiters();
    answer
}

async fn multicast(State(emulator): State<Emulator>, headers: HeaderMap, body: Bytes) -> Response {
    let (retry_key, body) = match common_checks(&emulator, &headers, &body) {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let Some(to) = body.get("to").and_then(Value::as_array) else {
        return invalid("must be specified", "to");
    };
    if to.is_empty() || to.len() > 500 {
        return invalid("Size must be between 1 and 500", "to");
    }
    let mut users = Vec::new();
    for (index, user) in to.iter().enumerate() {
        match user.as_str() {
            Some(user) if is_user_id(user) => users.push(user.to_string()),
            _ => return invalid("The user ID is invalid", &format!("to[{index}]")),
        }
    }
    let unit = match aggregation_unit(&emulator, &body) {
        Ok(unit) => unit,
        Err(response) => return response,
    };
    match emulator.accept(retry_key, users, body["messages"].as_array().unwrap(), unit, false) {
        Ok(accepted) => accepted_response(&accepted, json!({})),
        Err(response) => response,
    }
}

/// `GET /v2/bot/message/quota`: the emulated plan's monthly limit.
async fn quota(State(emulator): State<Emulator>, headers: HeaderMap) -> Response {
    if let Err(response) = check_token(&emulator, &headers) {
        return response;
    }
    match emulator.inbox.lock().unwrap().monthly_limit {
        Some(limit) => axum::Json(json!({ "type": "limited", "value": limit })).into_response(),
        None => axum::Json(json!({ "type": "none" })).into_response(),
    }
}

/// `GET /v2/bot/message/quota/consumption`: messages sent so far.
async fn quota_consumption(State(emulator): State<Emulator>, headers: HeaderMap) -> Response {
    if let Err(response) = check_token(&emulator, &headers) {
        return response;
    }
    axum::Json(json!({ "totalUsage": emulator.inbox.lock().unwrap().consumed })).into_response()
}

async fn inboxes_json(State(emulator): State<Emulator>) -> axum::Json<BTreeMap<String, Vec<ReceivedMessage>>> {
    axum::Json(emulator.inboxes())
}

/// The faults in force and how many requests got each.
async fn faults_json(State(emulator): State<Emulator>) -> axum::Json<Value> {
    let (faults, injected) = emulator.faults.lock().unwrap().report();
    axum::Json(json!({ "faults": faults, "injected": injected }))
}

async fn put_faults(State(emulator): State<Emulator>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(problem) => {
            return error(StatusCode::BAD_REQUEST, &format!("the faults could not be read: {problem}"), None);
        }
    };
    match emulator.set_faults(faults) {
        Ok(()) => faults_json(State(emulator)).await.into_response(),
        Err(problem) => error(StatusCode::BAD_REQUEST, &problem, None),
    }
}

async fn phones_page(State(emulator): State<Emulator>) -> Html<String> {
    let inboxes = emulator.inboxes();
    let said = emulator.inbox.lock().unwrap().said.clone();
    let chatting = emulator.webhook.lock().unwrap().is_some();
    let mut phones = String::new();
    for (user, messages) in &inboxes {
        let spoken = said.get(user).map(Vec::as_slice).unwrap_or_default();
        let user_bubbles = |position: usize| -> String {
            spoken
                .iter()
                .filter(|(at, _)| *at == position)
                .map(|(_, text)| format!("<div class=\"bubble mine\">{}</div>", html_escape::encode_text(text)))
                .collect()
        };
        let mut bubbles = String::new();
        for (position, message) in messages.iter().enumerate() {
            bubbles.push_str(&user_bubbles(position));
            match &message.flex {
                Some(container) => bubbles.push_str(&flex::draw(container, user)),
                None => bubbles
                    .push_str(&format!("<div class=\"bubble\">{}</div>", html_escape::encode_text(&message.text))),
            }
        }
        bubbles.push_str(&user_bubbles(messages.len()));
        let controls = if chatting { users::controls(user, messages.last()) } else { String::new() };
        let menu = rich_menu::draw(&emulator, user);
        phones.push_str(&format!(
            "<section class=\"phone\" id=\"{user}\"><header>oshirase 市公式</header>\
             <div class=\"user\">{user}</div>{bubbles}{controls}{menu}</section>"
        ));
    }
    if inboxes.is_empty() {
        phones.push_str("<p>まだメッセージはありません。</p>");
    }
    let new_phone = if chatting { users::NEW_PHONE } else { "" };
    Html(format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>LINE エミュレーター</title>\
         <style>{}{}{}</style></head>\
         <body><h1>LINE エミュレーター</h1><p>{} 人の利用者が {} 件のメッセージを受け\
         取りました。</p>{new_phone}<div class=\"phones\">{phones}</div></body></html>",
        PHONE_STYLE,
        flex::FLEX_STYLE,
        rich_menu::RICH_MENU_STYLE,
        inboxes.len(),
        inboxes.values().map(Vec::len).sum::<usize>()
    ))
}

pub const PHONE_STYLE: &str = "body{font-family:sans-serif;background:#f4f4f4;margin:1.5em}\
.phones{display:flex;flex-wrap:wrap;gap:1em}\
.phone{width:300px;border-radius:24px;background:#8cabd9;border:10px solid #222;padding-bottom:1em;overflow:hidden}\
.phone header{background:#06c755;color:white;padding:.6em;font-weight:bold}\
.phone .user{font-size:.7em;color:#234;padding:.3em .6em}\
.bubble{background:white;border-radius:14px;margin:.5em .6em;padding:.6em;font-size:.85em;line-height:1.4;\
white-space:pre-wrap}\
.bubble.mine{background:#9de693;margin-left:3em}\
.quick{display:flex;flex-wrap:wrap;gap:.3em;margin:.3em .6em}.quick button{border-radius:1em;border:1px solid #06c755;\
background:white;padding:.3em .6em}\
.say{display:flex;margin:.5em .6em}.say input{flex:1}";

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    const TOKEN: &str = "test-token";
    const USER: &str = "U0123456789abcdef0123456789abcdef";

    async fn send(
        emulator: &Emulator,
        path: &str,
        token: Option<&str>,
        retry_key: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut request = Request::post(path).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(key) = retry_key {
            request = request.header("x-line-retry-key", key);
        }
        let response = emulator.router().oneshot(request.body(Body::from(body.to_string())).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn text(count: usize) -> Value {
        json!((0..count).map(|index| json!({ "type": "text", "text": format!("m{index}") })).collect::<Vec<_>>())
    }

    /// A reply token placeholder that `check` replaces with one the emulator issued.
    const ISSUED: &str = "issued";

    /// One case: (what, path, token, body, expected status, expected error property).
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Value, StatusCode, Option<&'a str>);

    async fn check(cases: Vec<Case<'_>>) {
        let mut failures = Vec::new();
        for (what, path, token, mut body, status, property) in cases {
            let emulator = Emulator::new(TOKEN);
            if body["replyToken"] == ISSUED {
                body["replyToken"] = json!(emulator.issue_reply_token(USER));
            }
            let (actual, answer) = send(&emulator, path, token, None, body).await;
            let actual_property = answer["details"][0]["property"].as_str();
            if actual != status || actual_property != property {
                failures.push(format!("{what}: expected {status} {property:?}, got {actual} {answer}"));
            }
            if status != StatusCode::OK && !emulator.inboxes().is_empty() {
                failures.push(format!("{what}: a refused request was recorded"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[tokio::test]
    async fn requests_are_checked_as_line_checks_them() {
        let push = "/v2/bot/message/push";
        let multicast = "/v2/bot/message/multicast";
        let reply = "/v2/bot/message/reply";
        let many: Vec<String> = (0..501).map(|index| format!("U{index:032x}")).collect();
        check(vec![
            ("a valid push", push, Some(TOKEN), json!({ "to": USER, "messages": text(1) }), StatusCode::OK, None),
            ("no token", push, None, json!({ "to": USER, "messages": text(1) }), StatusCode::UNAUTHORIZED, None),
            (
                "a wrong token",
                push,
                Some("other"),
                json!({ "to": USER, "messages": text(1) }),
                StatusCode::UNAUTHORIZED,
                None,
            ),
            (
                "no messages",
                push,
                Some(TOKEN),
                json!({ "to": USER, "messages": [] }),
                StatusCode::BAD_REQUEST,
                Some("messages"),
            ),
            (
                "six messages",
                push,
                Some(TOKEN),
                json!({ "to": USER, "messages": text(6) }),
                StatusCode::BAD_REQUEST,
                Some("messages"),
            ),
            ("five messages", push, Some(TOKEN), json!({ "to": USER, "messages": text(5) }), StatusCode::OK, None),
            (
                "a bad user id",
                push,
                Some(TOKEN),
                json!({ "to": "U123", "messages": text(1) }),
                StatusCode::BAD_REQUEST,
                Some("to"),
            ),
            (
                "a text too long",
                push,
                Some(TOKEN),
                json!({ "to": USER, "messages": [{ "type": "text", "text": "あ".repeat(5001) }] }),
                StatusCode::BAD_REQUEST,
                Some("messages[0].text"),
            ),
            (
                "an aggregation unit from a channel not approved for them",
                push,
                Some(TOKEN),
                json!({ "to": USER, "messages": text(1), "customAggregationUnits": ["vaccine_mr"] }),
                StatusCode::FORBIDDEN,
                None,
            ),
            (
                "an aggregation unit in a multicast not approved for them",
                multicast,
                Some(TOKEN),
                json!({ "to": [USER], "messages": text(1), "customAggregationUnits": ["vaccine_mr"] }),
                StatusCode::FORBIDDEN,
                None,
            ),
            (
                "a valid multicast",
                multicast,
                Some(TOKEN),
                json!({ "to": [USER], "messages": text(1) }),
                StatusCode::OK,
                None,
            ),
            (
                "501 recipients",
                multicast,
                Some(TOKEN),
                json!({ "to": many, "messages": text(1) }),
                StatusCode::BAD_REQUEST,
                Some("to"),
            ),
            (
                "a group id in a multicast",
                multicast,
                Some(TOKEN),
                json!({ "to": ["C0123456789abcdef0123456789abcdef"], "messages": text(1) }),
                StatusCode::BAD_REQUEST,
                Some("to[0]"),
            ),
            (
                "a valid reply with 13 buttons",
                reply,
                Some(TOKEN),
                json!({ "replyToken": ISSUED, "messages": with_buttons(13, "ボタン", "a=b") }),
                StatusCode::OK,
                None,
            ),
            (
                "a reply with a date picker",
                reply,
                Some(TOKEN),
                json!({ "replyToken": ISSUED, "messages": [{ "type": "text", "text": "t", "quickReply": { "items": [{
                    "type": "action",
                    "action": { "type": "datetimepicker", "label": "日付", "data": "d", "mode": "date" }
                }] } }] }),
                StatusCode::OK,
                None,
            ),
            (
                "a reply of six messages",
                reply,
                Some(TOKEN),
                json!({ "replyToken": ISSUED, "messages": text(6) }),
                StatusCode::BAD_REQUEST,
                Some("messages"),
            ),
            (
                "a reply with a wrong token",
                reply,
                Some("other"),
                json!({ "replyToken": ISSUED, "messages": text(1) }),
                StatusCode::UNAUTHORIZED,
                None,
            ),
            (
                "a reply without a reply token",
                reply,
                Some(TOKEN),
                json!({ "messages": text(1) }),
                StatusCode::BAD_REQUEST,
                Some("replyToken"),
            ),
            (
                "a reply token never issued",
                reply,
                Some(TOKEN),
                json!({ "replyToken": "0f8e2c", "messages": text(1) }),
                StatusCode::BAD_REQUEST,
                None,
            ),
            (
                "14 buttons",
                reply,
                Some(TOKEN),
                json!({ "replyToken": ISSUED, "messages": with_buttons(14, "ボタン", "a=b") }),
                StatusCode::BAD_REQUEST,
                Some("messages[0].quickReply.items"),
            ),
            (
                "a label of 21 characters",
                reply,
                Some(TOKEN),
                json!({ "replyToken": ISSUED, "messages": with_buttons(1, &"あ".repeat(21), "a=b") }),
                StatusCode::BAD_REQUEST,
                Some("messages[0].quickReply.items[0].action.label"),
            ),
            (
                "postback data of 301 characters",
                reply,
                Some(TOKEN),
                json!({ "replyToken": ISSUED, "messages": with_buttons(1, "ボタン", &"a".repeat(301)) }),
                StatusCode::BAD_REQUEST,
                Some("messages[0].quickReply.items[0].action.data"),
            ),
            (
                "a uri action",
                reply,
                Some(TOKEN),
                json!({ "replyToken": ISSUED, "messages": [{ "type": "text", "text": "t", "quickReply": { "items": [{
                    "type": "action",
                    "action": { "type": "uri", "label": "l", "uri": "https://example.com" }
                }] } }] }),
                StatusCode::BAD_REQUEST,
                Some("messages[0].quickReply.items[0].action.type"),
            ),
        ])
        .await;
    }

    #[tokio::test]
    async fn a_channel_approved_for_aggregation_units_may_name_one_valid_unit() {
        let emulator = Emulator::new(TOKEN);
        emulator.approve_aggregation_units(true);
        let push = "/v2/bot/message/push";
        let with_unit = |unit: Value| json!({ "to": USER, "messages": text(1), "customAggregationUnits": unit });
        assert_eq!(send(&emulator, push, Some(TOKEN), None, with_unit(json!(["vaccine_mr"]))).await.0, StatusCode::OK);
        let (status, answer) = send(&emulator, push, Some(TOKEN), None, with_unit(json!(["vaccine-mr"]))).await;
        assert_eq!(
            (status, answer["details"][0]["property"].as_str()),
            (StatusCode::BAD_REQUEST, Some("customAggregationUnits[0]"))
        );
        let (status, answer) = send(&emulator, push, Some(TOKEN), None, with_unit(json!(["a", "b"]))).await;
        assert_eq!(
            (status, answer["details"][0]["property"].as_str()),
            (StatusCode::BAD_REQUEST, Some("customAggregationUnits"))
        );
        let inbox = &emulator.inboxes()[USER];
        assert_eq!(
            inbox.iter().map(|message| message.aggregation_unit.as_deref()).collect::<Vec<_>>(),
            [Some("vaccine_mr")]
        );
    }

    /// One text message with `count` postback buttons.
    fn with_buttons(count: usize, label: &str, data: &str) -> Value {
        let items: Vec<Value> = (0..count)
            .map(|_| json!({ "type": "action", "action": { "type": "postback", "label": label, "data": data } }))
            .collect();
        json!([{ "type": "text", "text": "t", "quickReply": { "items": items } }])
    }

    #[tokio::test]
    async fn the_phones_offer_the_last_buttons_and_a_text_field_once_a_webhook_is_set() {
        let emulator = Emulator::new(TOKEN);
        let token = emulator.issue_reply_token(USER);
        send(
            &emulator,
            "/v2/bot/message/reply",
            Some(TOKEN),
            None,
            json!({ "replyToken": token, "messages": with_buttons(1, "配信の設定", "action=settings") }),
        )
        .await;
        let page = |emulator: &Emulator| {
            let emulator = emulator.clone();
            async move { phones_page(State(emulator)).await.0 }
        };
        assert!(!page(&emulator).await.contains("data-action"), "without a webhook the phones only show");
        emulator.set_webhook(WebhookTarget {
            url: "http://127.0.0.1:9/webhook/line".into(),
            channel_secret: "secret".into(),
        });
        let shown = page(&emulator).await;
        assert!(shown.contains("new-phone") && shown.contains("class=\"say\""), "{shown}");
        assert!(shown.contains("action=settings") && shown.contains(">配信の設定</button>"), "{shown}");
    }

    #[tokio::test]
    async fn a_reply_token_works_once_and_the_reply_shows_its_buttons() {
        let emulator = Emulator::new(TOKEN);
        let token = emulator.issue_reply_token(USER);
        let body = json!({ "replyToken": token, "messages": with_buttons(2, "設定", "action=settings") });
        assert_eq!(send(&emulator, "/v2/bot/message/reply", Some(TOKEN), None, body.clone()).await.0, StatusCode::OK);
        assert_eq!(send(&emulator, "/v2/bot/message/reply", Some(TOKEN), None, body).await.0, StatusCode::BAD_REQUEST);
        let inbox = &emulator.inboxes()[USER];
        assert_eq!(inbox.len(), 1);
        let labels: Vec<&str> = inbox[0].buttons.iter().map(|button| button.label.as_str()).collect();
        assert_eq!(labels, ["設定", "設定"]);
        assert_eq!(inbox[0].buttons[0].data.as_deref(), Some("action=settings"));
    }

    #[tokio::test]
    async fn a_repeated_retry_key_gets_409_and_is_not_delivered_twice() {
        let emulator = Emulator::new(TOKEN);
        let key = "123e4567-e89b-12d3-a456-426614174000";
        let body = json!({ "to": USER, "messages": text(1) });
        assert_eq!(
            send(&emulator, "/v2/bot/message/push", Some(TOKEN), Some(key), body.clone()).await.0,
            StatusCode::OK
        );
        assert_eq!(
            send(&emulator, "/v2/bot/message/push", Some(TOKEN), Some(key), body.clone()).await.0,
            StatusCode::CONFLICT
        );
        assert_eq!(emulator.inboxes()[USER].len(), 1);
        assert_eq!(
            send(&emulator, "/v2/bot/message/push", Some(TOKEN), Some("not-a-uuid"), body).await.0,
            StatusCode::BAD_REQUEST
        );
    }

    #[tokio::test]
    async fn faults_set_through_the_control_endpoint_shape_the_answers() {
        // Each case: (faults, expected status of a push, whether the user sees the message).
        let cases = [
            (json!({}), StatusCode::OK, true),
            (json!({ "error_500": 1.0 }), StatusCode::INTERNAL_SERVER_ERROR, false),
            (json!({ "error_429": 1.0 }), StatusCode::TOO_MANY_REQUESTS, false),
            (json!({ "timeout": 1.0, "timeout_ms": 20 }), StatusCode::OK, true),
            (json!({ "slow": 1.0, "slow_ms": 20 }), StatusCode::OK, true),
            (json!({ "down_ms": 60_000 }), StatusCode::SERVICE_UNAVAILABLE, false),
        ];
        let mut failures = Vec::new();
        for (faults, status, delivered) in cases {
            let emulator = Emulator::new(TOKEN);
            let request = Request::put("/emulator/faults").body(Body::from(faults.to_string())).unwrap();
            let set = emulator.router().oneshot(request).await.unwrap().status();
            let (actual, _) =
                send(&emulator, "/v2/bot/message/push", Some(TOKEN), None, json!({ "to": USER, "messages": text(1) }))
                    .await;
            let seen = emulator.inboxes().contains_key(USER);
            if set != StatusCode::OK || actual != status || seen != delivered {
                failures.push(format!(
                    "{faults}: expected {status} delivered {delivered}, got {set} then {actual} delivered {seen}"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        let refused = Request::put("/emulator/faults")
            .body(Body::from(json!({ "error_500": 0.7, "timeout": 0.7 }).to_string()))
            .unwrap();
        assert_eq!(Emulator::new(TOKEN).router().oneshot(refused).await.unwrap().status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn the_journal_keeps_inboxes_and_retry_keys_across_a_restart() {
        let journal = std::env::temp_dir().join(format!("oshirase-emulator-{}.jsonl", uuid::Uuid::new_v4()));
        let key = "123e4567-e89b-12d3-a456-426614174001";
        let body = json!({ "to": USER, "messages": text(2) });
        let first = Emulator::with_journal(TOKEN, journal.clone()).unwrap();
        assert_eq!(send(&first, "/v2/bot/message/push", Some(TOKEN), Some(key), body.clone()).await.0, StatusCode::OK);
        drop(first);
        let second = Emulator::with_journal(TOKEN, journal.clone()).unwrap();
        assert_eq!(second.inboxes()[USER].len(), 2);
        assert_eq!(send(&second, "/v2/bot/message/push", Some(TOKEN), Some(key), body).await.0, StatusCode::CONFLICT);
        std::fs::remove_file(journal).unwrap();
    }
}
