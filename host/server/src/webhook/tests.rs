//! The residents' side (`oshirase_core::chat`) through the real routes: webhook requests built as `webhook.yml`
//! describes and signed as LINE signs them go through `app(state)`; the worker's step
//! (`process_pending`) applies them and replies to a LINE emulator on port 0, whose inbox
//! is the transcript; the day's run then delivers the notices to the same emulator.
//! Every flow's transcript is printed (`--nocapture` shows it).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use oshirase_sdk::Day;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::web::AppState;
use line_emulator::{Emulator, Faults, signature};
use oshirase_core::channel::line::{LineClient, LineConfig};
use oshirase_core::channel::mail::MailClient;
use oshirase_core::channel::mail::Security;
use oshirase_core::channel::{Channels, MailChannel};
use oshirase_core::chat::webhook::{Webhook, process_pending};
use oshirase_core::database::Database;
use oshirase_core::registry::Plugins;
use oshirase_core::retry::RetryPolicy;
use oshirase_core::service::Service;
use oshirase_core::testing::smtp::SmtpServer;
use oshirase_core::time::today_in_japan;
use oshirase_sandbox::{Limits, PluginEngine};

const SECRET: &str = "test-channel-secret";
const TOKEN: &str = "test-channel-token";
const MOTHER: &str = "U00000000000000000000000000000a01";
const STRANGER: &str = "U00000000000000000000000000000b02";
const PARENT: &str = "U00000000000000000000000000000c03";

/// How the transcript names each user.
fn name_of(user: &str) -> &'static str {
    match user {
        MOTHER => "mother",
        STRANGER => "stranger",
        _ => "parent",
    }
}

/// A town of two households: a mother (0101) with a baby four months old (0102), and a
/// single father (0201) with no taxable income and a son of ten (0202).
fn residents(today: Day) -> String {
    let baby = today.add_months_clamped(-4);
    format!(
        "宛名番号,世帯番号,氏名,生年月日,性別,続柄\n0101,H01,千葉 花子,1994-05-01,女,世帯主\n\
         0102,H01,千葉 陽葵,{baby},女,子\n0201,H02,佐藤 誠,1985-07-07,男,世帯主\n\
         0202,H02,佐藤 蓮,{},男,子\n",
        today.add_months_clamped(-120)
    )
}

/// Where the application form's links point.
const PUBLIC_URL: &str = "https://oshirase.example.jp";
/// Where applicants the city could not confirm are told to ask.
const CONTACT: &str = "千葉市 市民総合窓口課 043-245-5111";

fn settings() -> oshirase_core::chat::ChatSettings {
    oshirase_core::chat::ChatSettings { public_url: Some(PUBLIC_URL.into()), contact: Some(CONTACT.into()) }
}

const TAX: &str = "宛名番号,課税年度,合計所得金額,課税区分\n0201,2026,0,非課税\n";

struct Town {
    directory: tempfile::TempDir,
    service: Service,
    app: Router,
    emulator: Emulator,
    line: LineConfig,
    today: Day,
    next_event: u64,
    /// How many messages of each user's inbox the transcript has shown.
    shown: std::collections::HashMap<String, usize>,
    transcript: Vec<String>,
    /// The town's mail server, when it offers e-mail.
    smtp: Option<SmtpServer>,
}

impl Town {
    /// The town with these bundled programs, an emulator on port 0 and the webhook.
    async fn new(programs: &[&str]) -> Town {
        Town::build(programs, None).await
    }

    /// The same town with a real SMTP server (`tests/smtp_server.py`), so e-mail is offered.
    async fn with_mail(programs: &[&str]) -> Town {
        Town::build(programs, Some(SmtpServer::start(Security::Plain, None))).await
    }

    async fn build(programs: &[&str], smtp: Option<SmtpServer>) -> Town {
        let directory = tempfile::tempdir().unwrap();
        let today = today_in_japan();
        let export = directory.path().join("export");
        std::fs::create_dir_all(&export).unwrap();
        std::fs::write(export.join("residents.csv"), residents(today)).unwrap();
        std::fs::write(export.join("tax.csv"), TAX).unwrap();
        let database = Database::open(&directory.path().join("oshirase.db")).unwrap();
        database.write(move |connection| oshirase_core::testing::import(connection, &export)).await.unwrap();
        let plugins =
            Arc::new(Plugins::new(PluginEngine::new(Limits::default(), None).unwrap(), oshirase_bundled::PROGRAMS));
        let programs: Vec<String> = programs.iter().map(|program| program.to_string()).collect();
        if !programs.is_empty() {
            oshirase_core::publish::install_bundled(&database, &plugins, &programs).await.unwrap();
        }
        let service = Service {
            data_directory: directory.path().to_path_buf(),
            database,
            plugins,
            wake_scheduler: Default::default(),
        };
        let emulator = Emulator::new(TOKEN);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let line = LineConfig::new(format!("http://{}", listener.local_addr().unwrap()), TOKEN);
        let router = emulator.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let state =
            AppState { webhook: Some(Webhook::new(SECRET, settings()).unwrap()), ..AppState::new(service.clone()) };
        Town {
            directory,
            service,
            app: crate::web::app(state),
            emulator,
            line,
            today,
            next_event: 0,
            shown: Default::default(),
            transcript: Vec::new(),
            smtp,
        }
    }

    /// One event object of `webhook.yml` from `user`, with a reply token from the emulator.
    fn event(&mut self, user: &str, kind: &str, content: Value) -> Value {
        self.next_event += 1;
        let mut event = json!({
            "type": kind,
            "mode": "active",
            "timestamp": 1_790_000_000_000u64 + self.next_event,
            "source": { "type": "user", "userId": user },
            "webhookEventId": format!("01JD{:022}", self.next_event),
            "deliveryContext": { "isRedelivery": false },
        });
        if kind != "unfollow" {
            event["replyToken"] = json!(self.emulator.issue_reply_token(user));
        }
        for (key, value) in content.as_object().unwrap() {
            event[key] = value.clone();
        }
        event
    }

    /// Posts a body with the given `X-Line-Signature` (none when `None`).
    async fn post(&self, body: &[u8], signature: Option<&str>) -> StatusCode {
        let mut request = Request::post("/webhook/line").header("content-type", "application/json");
        if let Some(signature) = signature {
            request = request.header("x-line-signature", signature);
        }
        self.app.clone().oneshot(request.body(Body::from(body.to_vec())).unwrap()).await.unwrap().status()
    }

    /// Signs and posts the events as LINE does, then lets the worker process them.
    async fn deliver(&self, events: &[Value]) -> StatusCode {
        let body = json!({ "destination": "U0000000000000000000000000000ffff", "events": events }).to_string();
        let status = self.post(body.as_bytes(), Some(&signature(SECRET.as_bytes(), body.as_bytes()))).await;
        process_pending(&self.service.database, &self.channels(), &Arc::new(settings())).await.unwrap();
        status
    }

    /// What `user` received since the transcript last looked, added to the transcript.
    fn new_messages(&mut self, user: &str) -> Vec<line_emulator::ReceivedMessage> {
        let inbox = self.emulator.inboxes().get(user).cloned().unwrap_or_default();
        let shown = self.shown.entry(user.to_string()).or_insert(0);
        let new = inbox[*shown..].to_vec();
        *shown = inbox.len();
        for message in &new {
            let buttons: String = message.buttons.iter().map(|button| format!(" [{}]", button.label)).collect();
            self.transcript.push(format!(
                "  bot → {}: {}{buttons}",
                name_of(user),
                message.text.replace('\n', "\n      ")
            ));
        }
        new
    }

    /// The user types `text`; returns the replies' texts.
    async fn say(&mut self, user: &str, text: &str) -> String {
        let id = self.next_event;
        let event = self.event(
            user,
            "message",
            json!({
                "message": {
                    "type": "text", "id": format!("{}", 480_000 + id), "text": text, "quoteToken": format!("q{id}")
                }
            }),
        );
        self.act(user, text.to_string(), event).await
    }

    /// The user taps the button `label` of the last reply; `date` is what a date picker
    /// chose. The button must carry `data`.
    async fn tap(&mut self, user: &str, label: &str, data: &str, date: Option<Day>) -> String {
        let last = self.emulator.inboxes()[user].last().cloned().unwrap();
        let button = last
            .buttons
            .iter()
            .find(|button| button.label == label)
            .unwrap_or_else(|| panic!("no button {label:?} under {last:?}"));
        assert_eq!(button.data.as_deref(), Some(data));
        assert_eq!(button.date_picker, date.is_some());
        let mut postback = json!({ "data": data });
        if let Some(date) = date {
            postback["params"] = json!({ "date": date.to_string() });
        }
        let event = self.event(user, "postback", json!({ "postback": postback }));
        let shown = date.map_or(String::new(), |date| format!(" → {date}"));
        self.act(user, format!("[{label}]{shown}"), event).await
    }

    async fn follow(&mut self, user: &str) -> String {
        let event = self.event(user, "follow", json!({ "follow": { "isUnblocked": false } }));
        self.act(user, "(友だち追加)".into(), event).await
    }

    async fn act(&mut self, user: &str, shown: String, event: Value) -> String {
        self.transcript.push(format!("{}: {shown}", name_of(user)));
        assert_eq!(self.deliver(&[event]).await, StatusCode::OK);
        self.new_messages(user).iter().map(|message| message.text.as_str()).collect::<Vec<_>>().join("\n")
    }

    async fn sql<T: rusqlite::types::FromSql + Send + 'static>(
        &self,
        query: &'static str,
        parameters: Vec<String>,
    ) -> T {
        self.service
            .database
            .write(move |connection| {
                Ok(connection.query_row(query, rusqlite::params_from_iter(parameters), |row| row.get(0))?)
            })
            .await
            .unwrap()
    }

    /// Evaluates the programs and queues what is due for `day`, without sending.
    async fn plan(&self, day: Day) {
        oshirase_core::evaluate::run_day(&self.service.database, self.service.plugins.clone(), day).await.unwrap();
        self.service
            .database
            .write(move |connection| oshirase_core::outbox::enqueue_due(connection, day))
            .await
            .unwrap();
    }

    /// The channels the town sends through: its emulator's LINE, and its mail server if any.
    fn channels(&self) -> Channels {
        let mail = self.smtp.as_ref().map(|smtp| MailChannel {
            client: MailClient::new(smtp.config(Security::Plain)).unwrap(),
            fallback_after: std::time::Duration::from_secs(3600),
        });
        Channels { line: LineClient::new(self.line.clone()).unwrap(), mail, public_url: None }
    }

    /// The e-mails the mail server received since the transcript last looked, decoded as
    /// (to, subject, body) and added to the transcript.
    fn new_mails(&mut self, user: &str) -> Vec<(String, String, String)> {
        let stored = self.smtp.as_ref().unwrap().messages();
        let shown = self.shown.entry("(mail)".to_string()).or_insert(0);
        let new: Vec<(String, String, String)> = stored[*shown..]
            .iter()
            .map(|raw| {
                let mail = mailparse::parse_mail(raw).unwrap();
                let header = |name: &str| {
                    mail.headers
                        .iter()
                        .find(|header| header.get_key().eq_ignore_ascii_case(name))
                        .map(|header| header.get_value())
                        .unwrap_or_default()
                };
                (header("To"), header("Subject"), mail.get_body().unwrap().replace("\r\n", "\n"))
            })
            .collect();
        *shown = stored.len();
        for (_, subject, body) in &new {
            self.transcript.push(format!(
                "  e-mail → {}: 件名 {subject}\n      {}",
                name_of(user),
                body.trim_end().replace('\n', "\n      ")
            ));
        }
        new
    }

    /// The resident's e-mail address and channels.
    async fn mail_settings(&self, resident_id: &str) -> (Option<String>, String) {
        let resident_id = resident_id.to_string();
        self.service
            .database
            .write(move |connection| {
                Ok(connection.query_row(
                    "SELECT email, channels FROM registrations WHERE resident_id = ?1",
                    [resident_id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?)
            })
            .await
            .unwrap()
    }

    /// The code of the last e-mail received, which must be a code e-mail to `to`.
    fn code_sent_to(&mut self, user: &str, to: &str) -> String {
        let mails = self.new_mails(user);
        let (address, subject, body) = mails.last().unwrap_or_else(|| panic!("no e-mail arrived"));
        assert_eq!((address.as_str(), subject.as_str()), (to, oshirase_core::chat::email::CodeMail::SUBJECT));
        body.lines()
            .find_map(|line| line.strip_prefix("確認コード: "))
            .unwrap_or_else(|| panic!("no code in {body}"))
            .to_string()
    }

    /// Sends the chat's due pushes to the emulator; returns when a retry falls due.
    async fn push(&self) -> Option<std::time::Duration> {
        oshirase_core::chat::push::send_due(
            &self.service.database,
            &LineClient::new(self.line.clone()).unwrap(),
            &settings(),
            &RetryPolicy::default(),
        )
        .await
        .unwrap()
    }

    async fn send(&self) {
        let stop = tokio_util::sync::CancellationToken::new();
        oshirase_core::outbox::send_queued(
            &self.service.database,
            &self.channels(),
            self.today,
            &RetryPolicy::default(),
            &stop,
        )
        .await
        .unwrap();
    }

    /// Staff issue a number for the resident; the user befriends the account and sends it.
    async fn link(&mut self, user: &str, resident_id: &str) {
        let number = self.issue(resident_id).await;
        self.follow(user).await;
        assert!(self.say(user, &number).await.contains("登録が完了しました"));
    }

    async fn issue(&self, resident_id: &str) -> String {
        let resident_id = resident_id.to_string();
        self.service
            .database
            .write(move |connection| oshirase_core::chat::number::issue(connection, &resident_id, 90, "test"))
            .await
            .unwrap()
    }

    /// The states of deliveries to `user`, with their program and error, in order.
    async fn deliveries(&self, user: &str) -> Vec<(String, String, String)> {
        let user = user.to_string();
        self.service
            .database
            .write(move |connection| {
                let mut statement = connection.prepare(
                    "SELECT n.program, d.state, d.last_error FROM deliveries d JOIN notices n ON n.id = d.notice_id
                     WHERE d.address = ?1 ORDER BY d.id",
                )?;
                let rows = statement
                    .query_map([user], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await
            .unwrap()
    }

    /// What happens beside the chat, for the transcript.
    fn note(&mut self, what: &str) {
        self.transcript.push(format!("  ({what})"));
    }

    fn print_transcript(&self, flow: &str) {
        println!("\n=== {flow}\n{}\n", self.transcript.join("\n"));
    }
}

/// Each case: (what, the body, the signature header) — every one answered 401, with
/// nothing stored.
async fn check_refused(town: &Town, cases: &[(&str, Vec<u8>, Option<String>)]) {
    let mut failures = Vec::new();
    for (what, body, header) in cases {
        let status = town.post(body, header.as_deref()).await;
        if status != StatusCode::UNAUTHORIZED {
            failures.push(format!("{what}: expected 401, got {status}"));
        }
    }
    let stored: i64 = town.sql("SELECT count(*) FROM webhook_events", vec![]).await;
    assert!(failures.is_empty() && stored == 0, "{}\n{stored} events stored", failures.join("\n"));
}

#[tokio::test]
async fn forged_and_missing_signatures_are_refused_and_store_nothing() {
    let mut town = Town::new(&[]).await;
    let event = town.event(MOTHER, "follow", json!({ "follow": { "isUnblocked": false } }));
    let body =
        json!({ "destination": "U0000000000000000000000000000ffff", "events": [event] }).to_string().into_bytes();
    let right = signature(SECRET.as_bytes(), &body);
    let mut altered = body.clone();
    altered.extend_from_slice(b" ");
    check_refused(
        &town,
        &[
            ("no signature", body.clone(), None),
            ("an empty signature", body.clone(), Some(String::new())),
            ("signed with another secret", body.clone(), Some(signature(b"another-secret", &body))),
            ("the signature of another body", altered.clone(), Some(right.clone())),
            ("not base64", body.clone(), Some("not base64!".into())),
            ("a truncated signature", body.clone(), Some(right[..20].to_string())),
            ("hex instead of base64", body.clone(), Some(right.bytes().map(|byte| format!("{byte:02x}")).collect())),
        ],
    )
    .await;
    assert_eq!(town.post(&body, Some(&right)).await, StatusCode::OK);
    let stored: i64 = town.sql("SELECT count(*) FROM webhook_events", vec![]).await;
    assert_eq!(stored, 1);
    // A signed body that is not a webhook request is refused whole.
    let broken = br#"{"destination":"U0000000000000000000000000000ffff","events":[{"type":"follow"}]}"#;
    assert_eq!(town.post(broken, Some(&signature(SECRET.as_bytes(), broken))).await, StatusCode::BAD_REQUEST);
    // Without a channel secret there is no webhook at all.
    let state = AppState::new(town.service.clone());
    let request = Request::post("/webhook/line").header("x-line-signature", right).body(Body::from(body)).unwrap();
    assert_eq!(crate::web::app(state).oneshot(request).await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_redelivered_event_is_processed_once() {
    let mut town = Town::new(&[]).await;
    let event = town.event(
        MOTHER,
        "message",
        json!({ "message": { "type": "text", "id": "1", "text": "停止", "quoteToken": "q" } }),
    );
    assert_eq!(town.deliver(std::slice::from_ref(&event)).await, StatusCode::OK);
    // LINE redelivers the same event (same webhookEventId) with the flag set, alone and
    // in a batch with a new one.
    let mut again = event.clone();
    again["deliveryContext"]["isRedelivery"] = json!(true);
    let fresh = town.event(
        MOTHER,
        "message",
        json!({ "message": { "type": "text", "id": "2", "text": "再開", "quoteToken": "q" } }),
    );
    assert_eq!(town.deliver(std::slice::from_ref(&again)).await, StatusCode::OK);
    assert_eq!(town.deliver(&[again, fresh]).await, StatusCode::OK);
    let stored: i64 = town.sql("SELECT count(*) FROM webhook_events WHERE state = 'done'", vec![]).await;
    assert_eq!(stored, 2);
    let replies: Vec<String> = town.new_messages(MOTHER).into_iter().map(|message| message.text).collect();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(
        replies[0].starts_with("すべてのお知らせを止めました")
            && replies[1].starts_with("すべてのお知らせを再開しました"),
        "{replies:?}"
    );
    // Processed events are forgotten after 30 days.
    town.service
        .database
        .write(|connection| {
            Ok(connection.execute("UPDATE webhook_events SET received_at = '2000-01-01T00:00:00Z'", [])?)
        })
        .await
        .unwrap();
    let later = town.event(
        MOTHER,
        "message",
        json!({ "message": { "type": "text", "id": "3", "text": "設定", "quoteToken": "q" } }),
    );
    town.deliver(&[later]).await;
    let kept: i64 = town.sql("SELECT count(*) FROM webhook_events", vec![]).await;
    assert_eq!(kept, 1);
}

#[tokio::test]
async fn events_stored_before_a_crash_are_processed_after_it() {
    let mut town = Town::new(&[]).await;
    let event = town.event(MOTHER, "follow", json!({ "follow": { "isUnblocked": false } }));
    let body = json!({ "destination": "U0000000000000000000000000000ffff", "events": [event] }).to_string();
    // Answered and stored, but the process dies before the worker gets to it.
    assert_eq!(town.post(body.as_bytes(), Some(&signature(SECRET.as_bytes(), body.as_bytes()))).await, StatusCode::OK);
    // After the restart: another connection to the same file finds it pending.
    let reopened = Database::open(&town.directory.path().join("oshirase.db")).unwrap();
    let processed = process_pending(&reopened, &town.channels(), &Arc::new(settings())).await.unwrap();
    assert_eq!(processed, 1);
    assert!(town.new_messages(MOTHER)[0].text.starts_with("友だち追加ありがとうございます"));
}

/// A channel in standby (`mode: standby` of `webhook.yml`: another module channel has the
/// chat) must not send. Its events are stored and get no reply, even when one carries a
/// reply token, and what the user typed or tapped is not acted on; whether the user
/// follows the account is still kept.
#[tokio::test]
async fn events_of_a_channel_in_standby_get_no_reply_and_act_on_nothing_typed() {
    let mut town = Town::new(&[]).await;
    let number = town.issue("0201").await;
    let standby = |mut event: Value| {
        event["mode"] = json!("standby");
        event
    };
    let events = [
        standby(town.event(STRANGER, "follow", json!({ "follow": { "isUnblocked": false } }))),
        standby(town.event(
            STRANGER,
            "message",
            json!({ "message": { "type": "text", "id": "1", "text": number, "quoteToken": "q1" } }),
        )),
        standby(town.event(
            STRANGER,
            "message",
            json!({ "message": { "type": "text", "id": "2", "text": "ZZZZ-ZZZZ-ZZZ", "quoteToken": "q2" } }),
        )),
        standby(town.event(
            STRANGER,
            "message",
            json!({ "message": { "type": "text", "id": "3", "text": "ヘルプ", "quoteToken": "q3" } }),
        )),
        standby(town.event(STRANGER, "postback", json!({ "postback": { "data": "action=apply" } }))),
    ];
    assert_eq!(town.deliver(&events).await, StatusCode::OK);
    assert!(town.new_messages(STRANGER).is_empty(), "a channel in standby replied");
    let outcomes: Vec<String> = town
        .service
        .database
        .write(|connection| {
            Ok(connection
                .prepare("SELECT outcome FROM webhook_events ORDER BY id")?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(outcomes, ["standby"; 5]);
    let linked: i64 = town.sql("SELECT count(*) FROM registrations", vec![]).await;
    let guesses: i64 = town.sql("SELECT count(*) FROM registration_guesses", vec![]).await;
    let links: i64 = town.sql("SELECT count(*) FROM application_links", vec![]).await;
    assert_eq!((linked, guesses, links), (0, 0, 0), "registrations, wrong numbers counted, application links");
    // Blocking and unblocking in standby still decide whether notices may go to the user.
    town.link(MOTHER, "0101").await;
    let unfollow = standby(town.event(MOTHER, "unfollow", json!({})));
    town.deliver(&[unfollow]).await;
    let active: i64 = town.sql("SELECT active FROM registrations WHERE resident_id = '0101'", vec![]).await;
    assert_eq!(active, 0);
    let follow = standby(town.event(MOTHER, "follow", json!({ "follow": { "isUnblocked": true } })));
    town.deliver(&[follow]).await;
    let active: i64 = town.sql("SELECT active FROM registrations WHERE resident_id = '0101'", vec![]).await;
    assert_eq!(active, 1);
    assert!(town.new_messages(MOTHER).is_empty(), "a channel in standby replied");
    // Once the channel is active again, the number on the postcard works.
    assert!(town.say(STRANGER, &number).await.contains("登録が完了しました"));
}

#[tokio::test]
async fn registration_numbers_resist_guessing_and_work_once() {
    let mut town = Town::new(&[]).await;
    let number = town.issue("0101").await;
    town.follow(MOTHER).await;
    // A typo is caught by the check character and not counted.
    let mut typo = number.clone().into_bytes();
    typo.swap(0, 1);
    if typo == number.as_bytes() {
        typo[0] = if typo[0] == b'X' { b'Y' } else { b'X' };
    }
    let answer = town.say(MOTHER, &String::from_utf8(typo).unwrap()).await;
    assert!(answer.contains("打ち間違い") || answer.contains("使われていません"), "{answer}");
    // Five well-formed wrong numbers use up the hour.
    let mut answers = Vec::new();
    for _ in 0..oshirase_core::chat::number::GUESS_LIMIT {
        let wrong = oshirase_core::chat::number::display(&oshirase_core::chat::number::generate().unwrap());
        answers.push(town.say(MOTHER, &wrong).await);
    }
    assert!(answers[0].contains("あと4回"), "{answers:?}");
    assert!(answers[4].contains("受け付けていません"), "{answers:?}");
    let guesses: i64 = town.sql("SELECT count(*) FROM registration_guesses", vec![]).await;
    assert_eq!(guesses, oshirase_core::chat::number::GUESS_LIMIT);
    // Within the hour even the right number is refused, and links nothing, also after a
    // restart (the worker on a new connection to the same file).
    town.service.database = Database::open(&town.directory.path().join("oshirase.db")).unwrap();
    let answer = town.say(MOTHER, &number).await;
    assert!(answer.contains("受け付けていません"), "{answer}");
    let linked: i64 = town.sql("SELECT count(*) FROM registrations", vec![]).await;
    assert_eq!(linked, 0);
    // Another LINE user is not limited by the first one's guesses.
    town.follow(STRANGER).await;
    let answer = town
        .say(STRANGER, &oshirase_core::chat::number::display(&oshirase_core::chat::number::generate().unwrap()))
        .await;
    assert!(answer.contains("あと4回"), "{answer}");
    // An hour later (the guesses moved back an hour) the right number links the resident.
    town.service
        .database
        .write(|connection| {
            Ok(connection.execute("UPDATE registration_guesses SET at_millis = at_millis - 3600001", [])?)
        })
        .await
        .unwrap();
    let answer = town.say(MOTHER, &number.to_lowercase().replace('-', " ")).await;
    assert!(answer.contains("登録が完了しました"), "{answer}");
    let resident: String =
        town.sql("SELECT resident_id FROM registrations WHERE line_user_id = ?1", vec![MOTHER.into()]).await;
    assert_eq!(resident, "0101");
    // The number works once: the same user hears it is done, anyone else that it is wrong.
    assert!(town.say(MOTHER, &number).await.contains("すでに登録が済んでいます"));
    assert!(town.say(STRANGER, &number).await.contains("見つかりませんでした"));
    let audited: i64 = town
        .sql(
            "SELECT count(*) FROM audit_log WHERE action IN ('issue-registration-number', 'link-registration')
             AND subject = '0101'",
            vec![],
        )
        .await;
    assert_eq!(audited, 2);
    town.print_transcript("registration number: a typo, five wrong numbers, the limit, the right number an hour later");
}

#[tokio::test]
async fn linking_consent_and_categories_in_a_few_taps() {
    let mut town = Town::new(&[]).await;
    let number = town.issue("0201").await;
    assert!(town.follow(MOTHER).await.contains("友だち追加ありがとうございます"));
    assert!(town.say(MOTHER, "こんにちは").await.contains("よくわかりませんでした"));
    town.tap(MOTHER, "登録番号を入力", "action=number", None).await;
    assert!(town.say(MOTHER, &number).await.contains("税の情報"));
    assert!(town.tap(MOTHER, "同意する", "action=consent&value=yes", None).await.contains("同意ありがとうございます"));
    let consent: Option<String> =
        town.sql("SELECT tax_consent_at FROM registrations WHERE resident_id = '0201'", vec![]).await;
    assert!(consent.is_some());
    // Settings: one category off, then everything off in two taps, then back on.
    town.tap(MOTHER, "配信の設定", "action=settings", None).await;
    assert!(
        town.tap(MOTHER, "予防接種を止める", "action=mute&category=Vaccination", None)
            .await
            .contains("予防接種: 止めています")
    );
    assert!(town.tap(MOTHER, "すべて止める", "action=stop-all", None).await.contains(
        "すべてのお知らせを\
         止めました"
    ));
    let muted: i64 =
        town.sql("SELECT count(*) FROM muted_categories WHERE line_user_id = ?1", vec![MOTHER.into()]).await;
    assert_eq!(muted, 5);
    town.tap(MOTHER, "すべて再開", "action=resume-all", None).await;
    let muted: i64 =
        town.sql("SELECT count(*) FROM muted_categories WHERE line_user_id = ?1", vec![MOTHER.into()]).await;
    assert_eq!(muted, 0);
    // A sticker gets the help, not silence.
    let event = town.event(
        MOTHER,
        "message",
        json!({
            "message": {
                "type": "sticker", "id": "9", "packageId": "1", "stickerId": "1", "stickerResourceType": "STATIC",
                "quoteToken": "q"
            }
        }),
    );
    assert!(town.act(MOTHER, "(スタンプ)".into(), event).await.contains(
        "ご用件を下のボタンから\
         選んでください"
    ));
    town.print_transcript("follow, help, registration number, consent, categories, stop everything, resume");
}

#[tokio::test]
async fn unfollowing_stops_deliveries_at_once() {
    let mut town = Town::new(&["infant-checkup"]).await;
    town.link(MOTHER, "0101").await;
    town.plan(town.today).await;
    assert_eq!(town.deliveries(MOTHER).await, [("infant-checkup".to_string(), "queued".to_string(), String::new())]);
    let event = town.event(MOTHER, "unfollow", json!({}));
    town.act(MOTHER, "(ブロック)".into(), event).await;
    assert_eq!(
        town.deliveries(MOTHER).await,
        [("infant-checkup".to_string(), "failed-permanent".to_string(), "unfollowed".to_string())]
    );
    town.send().await;
    assert!(town.new_messages(MOTHER).is_empty(), "nothing reaches a user who blocked the account");
    let active: i64 = town.sql("SELECT active FROM registrations WHERE resident_id = '0101'", vec![]).await;
    assert_eq!(active, 0);
    // Unblocking welcomes them back, and notices are delivered to them again from then on.
    assert!(town.follow(MOTHER).await.contains("おかえりなさい"));
    let active: i64 = town.sql("SELECT active FROM registrations WHERE resident_id = '0101'", vec![]).await;
    assert_eq!(active, 1);
    town.print_transcript("unfollow and follow again");
}

#[tokio::test]
async fn withdrawing_consent_stops_tax_based_notices() {
    let mut town = Town::new(&["child-rearing-allowance"]).await;
    town.link(PARENT, "0201").await;
    // Without consent no tax data reaches the plugin, so nothing is planned.
    town.plan(town.today).await;
    assert!(town.deliveries(PARENT).await.is_empty());
    town.tap(PARENT, "同意する", "action=consent&value=yes", None).await;
    town.plan(town.today).await;
    assert_eq!(
        town.deliveries(PARENT).await,
        [("child-rearing-allowance".to_string(), "queued".to_string(), String::new())]
    );
    let answer = town.say(PARENT, "同意を取り消す").await;
    assert!(answer.contains("同意を取り消しました"), "{answer}");
    assert_eq!(
        town.deliveries(PARENT).await,
        [("child-rearing-allowance".to_string(), "failed-permanent".to_string(), "tax consent withdrawn".to_string())]
    );
    town.send().await;
    assert!(town.new_messages(PARENT).is_empty());
    // The next evaluation sees no tax data and plans nothing for him.
    let runs = town.service.dry_run("child-rearing-allowance".into(), town.today).await.unwrap();
    assert!(runs.is_empty(), "{runs:?}");
    town.print_transcript("consent given, then withdrawn");
}

#[tokio::test]
async fn a_parents_self_registered_child_receives_the_timed_notices() {
    let mut town = Town::new(&["infant-checkup", "vaccine-5in1", "maternal-dental"]).await;
    let born = town.today.add_months_clamped(-4);
    let due = town.today.add_days(100);
    town.follow(PARENT).await;
    town.tap(PARENT, "予定日・誕生日", "action=timing", None).await;
    assert!(town.tap(PARENT, "誕生日を登録", "action=birth-date", Some(born)).await.contains("を登録しました"));
    town.say(PARENT, "確認").await;
    assert!(town.say(PARENT, &format!("予定日 {}", due.era_format())).await.contains("出産予定日"));
    assert!(town.say(PARENT, "誕生日 2001-01-01").await.contains("18年以内"));
    let list = town.say(PARENT, "登録の確認").await;
    assert!(list.contains("1. お子さんの誕生日") && list.contains("2. 出産予定日"), "{list}");
    // No reply repeats a date the parent typed: a birth date is personal data.
    let replies: Vec<String> = town.emulator.inboxes()[PARENT].iter().map(|message| message.text.clone()).collect();
    for day in [born, due] {
        let written = [day.to_string(), day.era_format(), day.to_string().replace('-', "/")];
        assert!(
            replies.iter().all(|reply| written.iter().all(|date| !reply.contains(date.as_str()))),
            "{day} repeated in {replies:?}"
        );
    }
    // A second parent registers the same birth date but hears nothing about 子育て.
    town.follow(STRANGER).await;
    town.say(STRANGER, &format!("誕生日 {born}")).await;
    town.say(STRANGER, "設定").await;
    town.tap(STRANGER, "子育てを止める", "action=mute&category=ChildRearing", None).await;

    let report = town.service.run_day(town.today, &town.channels(), &RetryPolicy::default()).await.unwrap();
    assert!(report.runs.iter().all(|run| run.error.is_none()), "{report:?}");
    let delivered: Vec<(String, String, String)> = town.deliveries(PARENT).await;
    let programs: Vec<&str> = delivered.iter().map(|(program, ..)| program.as_str()).collect();
    assert_eq!(programs, ["infant-checkup", "maternal-dental", "vaccine-5in1"], "{delivered:?}");
    assert!(delivered.iter().all(|(_, state, _)| state == "sent"), "{delivered:?}");
    let stranger: Vec<String> = town.deliveries(STRANGER).await.into_iter().map(|(program, ..)| program).collect();
    assert_eq!(stranger, ["vaccine-5in1"], "the muted category is skipped");
    let pushed: Vec<String> = town.new_messages(PARENT).into_iter().map(|message| message.text).collect();
    assert!(pushed.iter().any(|text| text.contains("乳児健康診査")), "{pushed:?}");
    // The registered child is no one in the snapshot and its notices name no date.
    assert!(
        pushed.iter().all(|text| !text.contains(&born.to_string()) && !text.contains(&born.era_format())),
        "{pushed:?}"
    );

    // Deleting the birth date stops its notices not yet sent.
    let entries =
        town.service.database.write(|connection| oshirase_core::chat::timing::list(connection, PARENT)).await.unwrap();
    town.say(PARENT, "登録の確認").await;
    let answer = town.tap(PARENT, "1を削除", &format!("action=timing-delete&id={}", entries[0].id), None).await;
    assert!(answer.contains("削除しました"), "{answer}");
    let left =
        town.service.database.write(|connection| oshirase_core::chat::timing::list(connection, PARENT)).await.unwrap();
    assert_eq!(left.len(), 1);
    town.print_transcript("self-registered birth date and due date, list, delete");
}

/// Sends a request to the app and returns the status and the body as text.
async fn request(town: &Town, request: Request<Body>) -> (StatusCode, String) {
    let response = town.app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn form(token: &str, fields: &str) -> Request<Body> {
    Request::post(format!("/apply/{token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(fields.to_string()))
        .unwrap()
}

fn admin(method: &str, path: &str, token: &str, body: Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn a_resident_applies_from_the_chat_and_staff_approve_the_matching_record() {
    let mut town = Town::new(&[]).await;
    town.follow(MOTHER).await;
    let answer = town.tap(MOTHER, "利用の申し込み", "action=apply", None).await;
    let link = answer
        .split_whitespace()
        .find(|word| word.starts_with(PUBLIC_URL))
        .unwrap_or_else(|| panic!("no link in {answer}"))
        .to_string();
    let token = link.rsplit('/').next().unwrap().to_string();
    let (status, page) = request(&town, Request::get(format!("/apply/{token}")).body(Body::empty()).unwrap()).await;
    assert!(status == StatusCode::OK && page.contains("生年月日"), "{status} {page}");
    // A form with problems is shown again with each of them, and nothing is stored.
    let (status, page) = request(&town, form(&token, "name=&birth_date=1994-02-30&address=")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("お名前を")
            && page.contains(
                "生年月日を\
                 正しく"
            )
            && page.contains("住所を"),
        "{page}"
    );
    let stored: i64 = town.sql("SELECT count(*) FROM applications", vec![]).await;
    assert_eq!(stored, 0);
    // The name written with a full-width space still matches the record.
    let (status, page) = request(
        &town,
        form(
            &token,
            "name=%E5%8D%83%E8%91%89%E3%80%80%E8%8A%B1%E5%AD%90&birth_date=1994-05-01&\
             address=%E5%8D%83%E8%91%89%E5%B8%82%E4%B8%AD%E5%A4%AE%E5%8C%BA1-1",
        ),
    )
    .await;
    assert!(status == StatusCode::OK && page.contains("受け付けました"), "{status} {page}");
    // The link works once.
    assert_eq!(request(&town, form(&token, "name=a&birth_date=1994-05-01&address=b")).await.0, StatusCode::NOT_FOUND);

    let administrator = town
        .service
        .database
        .write(|connection| oshirase_core::accounts::create_token(connection, "市民課", &[], true, 30, "test"))
        .await
        .unwrap();
    let division = town
        .service
        .database
        .write(|connection| {
            oshirase_core::accounts::create_token(
                connection,
                "健康支援課",
                &["infant-checkup".into()],
                false,
                30,
                "test",
            )
        })
        .await
        .unwrap();
    assert_eq!(
        request(&town, admin("GET", "/admin/applications", &division, Value::Null)).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, listed) = request(&town, admin("GET", "/admin/applications", &administrator, Value::Null)).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["name"], "千葉\u{3000}花子");
    let candidates: Vec<&str> = listed[0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|candidate| candidate["resident_id"].as_str().unwrap())
        .collect();
    assert_eq!(candidates, ["0101"]);
    let id = listed[0]["id"].as_i64().unwrap();
    assert_eq!(
        request(
            &town,
            admin(
                "POST",
                &format!("/admin/applications/{id}/approve"),
                &administrator,
                json!({ "resident_id": "9999" })
            )
        )
        .await
        .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, approved) = request(
        &town,
        admin("POST", &format!("/admin/applications/{id}/approve"), &administrator, json!({ "resident_id": "0101" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    let number = serde_json::from_str::<Value>(&approved).unwrap()["registration_number"].as_str().unwrap().to_string();
    let postcard: String = town.sql("SELECT number FROM postcards WHERE resident_id = '0101'", vec![]).await;
    assert_eq!(postcard, number);
    assert_eq!(
        request(
            &town,
            admin(
                "POST",
                &format!("/admin/applications/{id}/approve"),
                &administrator,
                json!({ "resident_id": "0101" })
            )
        )
        .await
        .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        request(&town, admin("POST", "/admin/applications/999/reject", &administrator, json!({ "reason": "x" })))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // The applicant hears in the chat that a postcard is on its way.
    town.note("staff approve the application");
    assert_eq!(town.push().await, None);
    let pushed = town.new_messages(MOTHER);
    assert!(pushed.len() == 1 && pushed[0].text.contains("はがき"), "{pushed:?}");
    // The postcard arrives; the resident sends its number.
    assert!(town.say(MOTHER, &number).await.contains("登録が完了しました"));
    town.print_transcript("application from the chat, then the number from the postcard");
}

/// A resident applies through the form `token` as `name`, born `birth_date`; returns the
/// application's id.
async fn apply(town: &mut Town, user: &str, name: &str, birth_date: &str) -> i64 {
    let answer = town.tap(user, "利用の申し込み", "action=apply", None).await;
    let link = answer
        .split_whitespace()
        .find(|word| word.starts_with(PUBLIC_URL))
        .unwrap_or_else(|| panic!("no link in {answer}"))
        .to_string();
    let token = link.rsplit('/').next().unwrap().to_string();
    let fields = format!("name={}&birth_date={birth_date}&address=%E5%8D%83%E8%91%89%E5%B8%821-1", urlencoding(name));
    let (status, page) = request(town, form(&token, &fields)).await;
    assert!(status == StatusCode::OK && page.contains("受け付けました"), "{status} {page}");
    town.sql("SELECT max(id) FROM applications", vec![]).await
}

/// `text` percent-encoded for a form.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|byte| if byte.is_ascii_alphanumeric() { (byte as char).to_string() } else { format!("%{byte:02X}") })
        .collect()
}

#[tokio::test]
async fn a_rejected_applicant_is_told_in_the_chat_even_when_line_was_down() {
    let mut town = Town::new(&[]).await;
    town.follow(STRANGER).await;
    let id = apply(&mut town, STRANGER, "山田 太郎", "1970-01-01").await;
    let administrator = town
        .service
        .database
        .write(|connection| oshirase_core::accounts::create_token(connection, "市民課", &[], true, 30, "test"))
        .await
        .unwrap();
    // LINE is down when staff reject the application: the push waits for a retry.
    town.emulator.set_faults(Faults { down_ms: 600_000, ..Faults::default() }).unwrap();
    town.note("LINE is down; staff reject the application");
    let (status, body) = request(
        &town,
        admin(
            "POST",
            &format!("/admin/applications/{id}/reject"),
            &administrator,
            json!({ "reason": "住民記録に該当なし" }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let retry = town.push().await;
    assert!(retry.is_some_and(|delay| delay <= std::time::Duration::from_secs(1)), "{retry:?}");
    assert!(town.new_messages(STRANGER).is_empty());
    let (state, attempts, error): (String, i64, String) = town
        .service
        .database
        .write(|connection| {
            Ok(connection.query_row("SELECT state, attempts, last_error FROM chat_pushes", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?)
        })
        .await
        .unwrap();
    assert_eq!((state.as_str(), attempts), ("queued", 1), "{error}");
    // LINE is back and the retry's time has come: the push goes out once, under its key.
    town.emulator.set_faults(Faults::default()).unwrap();
    town.note(&format!("the push was refused ({error}); LINE is back and the retry is due"));
    town.service
        .database
        .write(|connection| Ok(connection.execute("UPDATE chat_pushes SET next_attempt_millis = 0", [])?))
        .await
        .unwrap();
    assert_eq!(town.push().await, None);
    assert_eq!(town.push().await, None);
    let pushed = town.new_messages(STRANGER);
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    let text = &pushed[0].text;
    assert!(text.contains("確認することができませんでした") && text.contains(CONTACT), "{text}");
    assert!(
        !text.contains("山田") && !text.contains("住民記録") && !text.contains("1970"),
        "the push names the applicant or the reason: {text}"
    );
    let state: String = town.sql("SELECT state FROM chat_pushes", vec![]).await;
    assert_eq!(state, "sent");
    town.print_transcript("application rejected while LINE was down, told once LINE is back");
}

#[tokio::test]
async fn e_mail_is_added_with_a_code_from_the_chat_chosen_as_a_channel_and_removed() {
    let mut town = Town::with_mail(&["infant-checkup"]).await;
    town.link(MOTHER, "0101").await;
    town.tap(MOTHER, "同意しない", "action=consent&value=no", None).await;
    town.say(MOTHER, "設定").await;
    assert!(
        town.tap(MOTHER, "メールの設定", "action=mail", None)
            .await
            .contains("メールアドレスを、このトークに送ってください")
    );
    let address = "hanako.chiba@example.jp";
    let answer = town.say(MOTHER, address).await;
    assert!(
        answer.contains(
            "確認コードを\
             メールでお送りしました"
        ) && !answer.contains(address),
        "{answer}"
    );
    let code = town.code_sent_to(MOTHER, address);
    let body = &town.smtp.as_ref().unwrap().messages();
    let raw = String::from_utf8_lossy(body.last().unwrap()).into_owned();
    let decoded = mailparse::parse_mail(body.last().unwrap()).unwrap().get_body().unwrap();
    assert!(
        !decoded.contains("花子") && !decoded.contains("千葉 ") && !raw.contains("0101"),
        "the code e-mail names the resident: {decoded}"
    );
    // Until the code comes back nothing is stored.
    assert_eq!(town.mail_settings("0101").await.0, None);
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    assert!(town.say(MOTHER, &wrong).await.contains("あと4回"));
    assert_eq!(town.mail_settings("0101").await.0, None);
    let full_width: String =
        code.chars().map(|digit| char::from_u32(u32::from(digit) - u32::from('0') + 0xff10).unwrap()).collect();
    let answer = town.say(MOTHER, &full_width).await;
    assert!(
        answer.contains("確認しました") && answer.contains("LINEとメール") && !answer.contains(address),
        "{answer}"
    );
    let (stored, channels) = town.mail_settings("0101").await;
    assert_eq!((stored.as_deref(), channels.as_str()), (Some(address), "both"));
    // E-mail only: the day's notice goes to the address and not to LINE.
    assert!(town.tap(MOTHER, "メールだけ", "action=channels&value=mail", None).await.contains(
        "「メールだけ」\
         にしました"
    ));
    town.note("the day's run");
    town.plan(town.today).await;
    town.send().await;
    let mails = town.new_mails(MOTHER);
    assert!(mails.len() == 1 && mails[0].0 == address && mails[0].2.contains("乳児健康診査"), "{mails:?}");
    assert!(town.new_messages(MOTHER).is_empty(), "the notice went to LINE too");
    // E-mail off: the address is forgotten and LINE alone is back.
    town.say(MOTHER, "メール").await;
    assert!(town.tap(MOTHER, "メールをやめる", "action=mail-off", None).await.contains(
        "メールアドレスを\
         削除しました"
    ));
    let (stored, channels) = town.mail_settings("0101").await;
    assert_eq!((stored, channels.as_str()), (None, "line"));
    let audited: i64 = town
        .sql(
            "SELECT count(*) FROM audit_log WHERE action IN ('confirm-email', 'set-channels', 'remove-email')
             AND subject = '0101' AND detail NOT LIKE '%@%'",
            vec![],
        )
        .await;
    assert_eq!(audited, 3);
    town.print_transcript(
        "e-mail: address, code e-mailed, a wrong code, the right code, e-mail only, a notice by e-mail, e-mail off",
    );
}

#[tokio::test]
async fn wrong_expired_and_too_many_codes_change_nothing() {
    let mut town = Town::with_mail(&[]).await;
    town.link(MOTHER, "0101").await;
    let address = "hanako.chiba@example.jp";
    assert!(town.say(MOTHER, "123456").await.contains("いま確認を待っているコードはありません"));
    // Five wrong codes use the code up; then even the right one is not taken.
    town.say(MOTHER, address).await;
    let code = town.code_sent_to(MOTHER, address);
    let mut answers = Vec::new();
    for offset in 1..=oshirase_core::chat::email::WRONG_CODE_LIMIT as u32 {
        answers.push(town.say(MOTHER, &format!("{:06}", (code.parse::<u32>().unwrap() + offset) % 1_000_000)).await);
    }
    assert!(answers[0].contains("あと4回") && answers[4].contains("使えなくなりました"), "{answers:?}");
    assert!(town.say(MOTHER, &code).await.contains("いま確認を待っているコードはありません"));
    assert_eq!(town.mail_settings("0101").await.0, None);
    // A code typed after its half hour is refused.
    town.say(MOTHER, address).await;
    let code = town.code_sent_to(MOTHER, address);
    town.service
        .database
        .write(|connection| {
            Ok(connection.execute(
                "UPDATE email_codes SET expires_millis = expires_millis - 1800001 WHERE state = 'pending'",
                [],
            )?)
        })
        .await
        .unwrap();
    town.note("half an hour passes");
    assert!(town.say(MOTHER, &code).await.contains("有効期限"));
    assert_eq!(town.mail_settings("0101").await.0, None);
    // A third code within the hour is sent, a fourth refused without an e-mail.
    town.say(MOTHER, address).await;
    town.code_sent_to(MOTHER, address);
    assert!(town.say(MOTHER, address).await.contains("1時間に3回まで"));
    assert!(town.new_mails(MOTHER).is_empty());
    // An address the mail server refuses for good: the resident is told, and no code waits.
    town.link(PARENT, "0201").await;
    let answer = town.say(PARENT, "reject550.sato@example.jp").await;
    assert!(answer.contains("送れませんでした"), "{answer}");
    assert!(town.say(PARENT, "000000").await.contains("いま確認を待っているコードはありません"));
    // Someone not linked has no registration to add an address to.
    town.follow(STRANGER).await;
    assert!(town.say(STRANGER, "someone@example.jp").await.contains("はがきの登録番号で登録した方"));
    let codes: i64 = town.sql("SELECT count(*) FROM email_codes WHERE line_user_id = ?1", vec![STRANGER.into()]).await;
    assert_eq!(codes, 0);
    // Only salted hashes of codes are kept, and no address once a code is used up.
    let kept: i64 = town
        .sql(
            "SELECT count(*) FROM email_codes WHERE code_sha256 = ?1 OR (state != 'pending' AND address IS NOT NULL)",
            vec![code.clone()],
        )
        .await;
    assert_eq!(kept, 0);
    town.print_transcript(
        "e-mail codes: none waiting, five wrong, expired, the hourly limit, a refused address, not linked",
    );
}

#[tokio::test]
async fn without_a_mail_server_the_chat_says_e_mail_is_not_offered() {
    let mut town = Town::new(&[]).await;
    town.link(MOTHER, "0101").await;
    assert!(town.say(MOTHER, "メール").await.contains("メールでのお知らせは行っていません"));
    assert!(town.say(MOTHER, "hanako.chiba@example.jp").await.contains(
        "メールでのお知らせは\
         行っていません"
    ));
    let codes: i64 = town.sql("SELECT count(*) FROM email_codes", vec![]).await;
    assert_eq!(codes, 0);
    town.print_transcript("e-mail asked for in a town without a mail server");
}
