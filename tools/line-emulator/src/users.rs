//! The users' side of the LINE emulator: what LINE does when someone befriends, blocks,
//! types or taps in the chat. `PUT /emulator/webhook` names the bot's webhook and channel
//! secret; `POST /emulator/users/{user}/events` builds the event as `webhook.yml`
//! describes it (with a reply token the emulator issued), signs the body as LINE does,
//! posts it, and waits until the bot used the reply token (at most `REPLY_WAIT`), so a
//! test or the demo's phones get the bot's answer in the same call.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Emulator, error, is_user_id, signature};

/// How long the emulator waits for the bot to reply to an event.
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// Where the bot's webhook is and the secret that signs its requests.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    pub url: String,
    pub channel_secret: String,
}

/// What the user does, as the body of `POST /emulator/users/{user}/events`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum UserAction {
    Follow,
    Unfollow,
    Text {
        text: String,
    },
    /// A tapped button: its data, the date a date picker chose, and its label (LINE
    /// shows a postback's `displayText` as what the user said).
    Postback {
        data: String,
        date: Option<String>,
        label: Option<String>,
    },
}

pub(super) async fn put_webhook(State(emulator): State<Emulator>, body: Bytes) -> Response {
    match serde_json::from_slice::<WebhookTarget>(&body) {
        Ok(target) if target.url.starts_with("http") && !target.channel_secret.is_empty() => {
            *emulator.webhook.lock().unwrap() = Some(target);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => error(StatusCode::BAD_REQUEST, "the webhook needs an http(s) url and a channel secret", None),
        Err(problem) => error(StatusCode::BAD_REQUEST, &format!("the webhook could not be read: {problem}"), None),
    }
}

pub(super) async fn user_event(State(emulator): State<Emulator>, Path(user): Path<String>, body: Bytes) -> Response {
    if !is_user_id(&user) {
        return error(StatusCode::BAD_REQUEST, "the user id is not U and 32 lower-case hex digits", None);
    }
    let action: UserAction = match serde_json::from_slice(&body) {
        Ok(action) => action,
        Err(problem) => {
            return error(StatusCode::BAD_REQUEST, &format!("the user action could not be read: {problem}"), None);
        }
    };
    let Some(target) = emulator.webhook.lock().unwrap().clone() else {
        return error(StatusCode::CONFLICT, "no webhook is set: PUT /emulator/webhook first", None);
    };
    let reply_token = (!matches!(action, UserAction::Unfollow)).then(|| emulator.issue_reply_token(&user));
    let event = event(&user, &action, reply_token.as_deref());
    let body = json!({ "destination": "U0000000000000000000000000000ffff", "events": [event] }).to_string();
    let seen_before = emulator.inboxes().get(&user).map_or(0, Vec::len);
    let shown = match &action {
        UserAction::Follow => "(友だち追加)".to_string(),
        UserAction::Unfollow => "(ブロック)".to_string(),
        UserAction::Text { text } => text.clone(),
        UserAction::Postback { date: Some(date), .. } => date.clone(),
        UserAction::Postback { label: Some(label), .. } => label.clone(),
        UserAction::Postback { data, .. } => format!("({data})"),
    };
    emulator.inbox.lock().unwrap().said.entry(user.clone()).or_default().push((seen_before, shown));
    let replied = emulator.replied.notified();
    tokio::pin!(replied);
    let sent = reqwest::Client::new()
        .post(&target.url)
        .header("content-type", "application/json")
        .header("x-line-signature", signature(target.channel_secret.as_bytes(), body.as_bytes()))
        .body(body)
        .timeout(REPLY_WAIT)
        .send()
        .await;
    let status = match sent {
        Ok(response) => response.status().as_u16(),
        Err(problem) => {
            return error(StatusCode::BAD_GATEWAY, &format!("the webhook could not be reached: {problem}"), None);
        }
    };
    if let Some(token) = &reply_token
        && status == 200
    {
        let deadline = tokio::time::Instant::now() + REPLY_WAIT;
        // Waits until the bot has used this event's token (or the wait is over).
        while !emulator.inbox.lock().unwrap().answered.remove(token) {
            if tokio::time::timeout_at(deadline, replied.as_mut()).await.is_err() {
                break;
            }
            replied.set(emulator.replied.notified());
        }
    }
    let replies =
        emulator.inboxes().get(&user).map(|inbox| inbox[seen_before.min(inbox.len())..].to_vec()).unwrap_or_default();
    axum::Json(json!({ "webhook_status": status, "replies": replies })).into_response()
}

/// The event object of `webhook.yml` for what the user did.
fn event(user: &str, action: &UserAction, reply_token: Option<&str>) -> Value {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    let id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let mut event = json!({
        "mode": "active",
        "timestamp": now,
        "source": { "type": "user", "userId": user },
        "webhookEventId": &id[..26],
        "deliveryContext": { "isRedelivery": false },
    });
    if let Some(token) = reply_token {
        event["replyToken"] = json!(token);
    }
    let (kind, content) = match action {
        UserAction::Follow => ("follow", json!({ "follow": { "isUnblocked": false } })),
        UserAction::Unfollow => ("unfollow", json!({})),
        UserAction::Text { text } => (
            "message",
            json!({
                "message": { "type": "text", "id": now.to_string(), "text": text, "quoteToken": format!("q{now}") }
            }),
        ),
        UserAction::Postback { data, date, .. } => {
            let mut postback = json!({ "data": data });
            if let Some(date) = date {
                postback["params"] = json!({ "date": date });
            }
            ("postback", json!({ "postback": postback }))
        }
    };
    event["type"] = json!(kind);
    for (key, value) in content.as_object().into_iter().flatten() {
        event[key] = value.clone();
    }
    event
}

/// What a phone offers under its messages: the last message's quick-reply buttons (a date
/// field beside a date picker's) and a text field, sent through the users' side.
/// The attributes that make a button on a phone send `action` (a postback or a text) as
/// `user`'s tap: the page's script reads them (`NEW_PHONE`).
pub(super) fn tap_attributes(user: &str, action: &Value) -> String {
    let attribute = |text: &str| html_escape::encode_double_quoted_attribute(text).into_owned();
    format!("data-user=\"{}\" data-action=\"{}\"", attribute(user), attribute(&action.to_string()))
}

/// The tap of a postback action object (a card's button, a rich menu's area).
pub(super) fn postback_tap(action: &Value) -> Value {
    json!({ "type": "postback", "data": action["data"], "label": action["label"] })
}

pub(super) fn controls(user: &str, last: Option<&super::ReceivedMessage>) -> String {
    let mut buttons = String::new();
    for button in last.map(|message| message.buttons.as_slice()).unwrap_or_default() {
        let action = match (&button.data, &button.text) {
            (Some(data), _) => json!({ "type": "postback", "data": data, "label": button.label }),
            (None, Some(text)) => json!({ "type": "text", "text": text }),
            (None, None) => continue,
        };
        let date = if button.date_picker { "<input type=\"date\">" } else { "" };
        buttons.push_str(&format!(
            "<span>{date}<button {}>{}</button></span>",
            tap_attributes(user, &action),
            html_escape::encode_text(&button.label)
        ));
    }
    format!(
        "<div class=\"quick\">{buttons}</div><form class=\"say\" data-user=\"{user}\"><input name=\"text\" \
         placeholder=\"メッセージを入力\"><button>送信</button></form>"
    )
}

/// The form that starts a new phone (a new user befriends the account), and the script
/// every phone's controls use.
pub(super) const NEW_PHONE: &str = "<p><button id=\"new-phone\">新しい利用者で友だち追加する</button></p>\
<script>\
async function act(user, action) {\
  const response = await fetch('emulator/users/' + user + '/events', { method: 'POST', headers: { 'content-type': \
  'application/json' }, body: JSON.stringify(action) });\
  if (!response.ok) { alert(await response.text()); }\
  location.hash = user; location.reload();\
}\
document.addEventListener('click', (event) => {\
  const target = event.target;\
  if (target.id === 'new-phone') {\
    const hex = Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, \
    '0')).join('');\
    act('U' + hex, { type: 'follow' });\
  } else if (target.dataset.action) {\
    const action = JSON.parse(target.dataset.action);\
    const date = target.previousElementSibling;\
    if (date && date.type === 'date') { if (!date.value) { date.focus(); return; } action.date = date.value; }\
    act(target.dataset.user, action);\
  }\
});\
document.addEventListener('submit', (event) => {\
  event.preventDefault();\
  const text = event.target.elements.text.value.trim();\
  if (text) { act(event.target.dataset.user, { type: 'text', text }); }\
});\
</script>";
