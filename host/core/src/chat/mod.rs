//! The conversation with residents in the LINE chat: what a webhook event asks for (a
//! follow, an unfollow, a text command or a tapped button), the change it makes in the
//! database, and the short Japanese replies with quick-reply buttons. `handle` runs inside
//! the transaction that marks the event processed, so an event's effect happens once.
//!
//! Commands: a registration number (links the LINE user to a resident), 同意 / 同意を取り消す
//! (tax data), 設定 (categories on and off), 停止 / 再開 (everything), 予定日 DATE /
//! 誕生日 DATE / 登録の確認 (self-registered timing), メール (e-mail: an address, then the
//! six-digit code sent to it; メールをやめる), ヘルプ. Anything else gets the help with
//! buttons, never silence. Buttons send postbacks `action=…&…` that mean the same; a
//! survey's card sends `action=survey&id=N&answer=K` (`survey.rs`), an answer given or
//! changed while the survey is open.
//! Replies never repeat a date or an address the user typed: what reaches LINE carries
//! no personal data.

pub mod application_link;
pub mod email;
pub mod number;
pub mod push;
pub mod timing;
pub mod webhook;

use std::collections::HashSet;

use anyhow::Result;
use oshirase_sdk::Day;
use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;

use crate::channel::line::{Button, ReplyMessage, is_user_id};
use crate::database::audit;
use crate::outbox::{Undelivered, cancel_undelivered};
use crate::survey::Answered;
use crate::time::now_text;
use number::{Parsed, Redeemed};
use timing::Kind;

/// The categories residents choose from: the manifest's category name and its label.
pub const CATEGORIES: [(&str, &str); 5] = [
    ("ChildRearing", "子育て"),
    ("Health", "健康・検診"),
    ("Vaccination", "予防接種"),
    ("Allowance", "手当・助成"),
    ("Living", "暮らし"),
];

/// What the conversation knows about the server it runs on.
#[derive(Clone, Debug, Default)]
pub struct ChatSettings {
    /// The server's public address (`https://oshirase.example.jp`), for the link to the
    /// application form; without it residents are told to apply at the counter.
    pub public_url: Option<String>,
    /// Where residents are told to ask when the city could not confirm their application
    /// (`市民課 043-245-5111`); the ward office's window when not given.
    pub contact: Option<String>,
}

/// What the worker does once the event's transaction is committed.
#[derive(Debug)]
pub enum Answer {
    /// Reply with these messages (none for an unfollow).
    Replies(Vec<ReplyMessage>),
    /// E-mail this confirmation code, then reply with `email::after_sending`.
    SendCode(email::CodeMail),
}

/// One webhook event from a user, as far as the conversation cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub user: String,
    pub reply_token: Option<String>,
    pub what: What,
    /// The event came while the channel was in standby (`mode: standby`): another module
    /// channel has the chat, and this one must not send.
    pub standby: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    Follow,
    Unfollow,
    Text(String),
    /// A tapped button: its data, and the date a date picker chose.
    Postback {
        data: String,
        date: Option<String>,
    },
    /// A sticker, an image …: answered with the help.
    OtherMessage,
}

/// Reads an event object of `webhook.yml`; `None` for events the chat does not answer
/// (from groups and rooms, or of other types).
pub fn read_event(event: &Value) -> Option<Incoming> {
    let source = event.get("source")?;
    if source.get("type")?.as_str()? != "user" {
        return None;
    }
    let user = source.get("userId")?.as_str()?;
    if !is_user_id(user) {
        return None;
    }
    let what = match event.get("type")?.as_str()? {
        "follow" => What::Follow,
        "unfollow" => What::Unfollow,
        "message" => match event.pointer("/message/type")?.as_str()? {
            "text" => What::Text(event.pointer("/message/text")?.as_str()?.to_string()),
            _ => What::OtherMessage,
        },
        "postback" => What::Postback {
            data: event.pointer("/postback/data")?.as_str()?.to_string(),
            date: event.pointer("/postback/params/date").and_then(Value::as_str).map(str::to_string),
        },
        _ => return None,
    };
    let standby = event.get("mode").and_then(Value::as_str) == Some("standby");
    // LINE sends a channel in standby no reply token; should one come, it is not used.
    let reply_token = event.get("replyToken").and_then(Value::as_str).filter(|_| !standby).map(str::to_string);
    Some(Incoming { user: user.to_string(), reply_token, what, standby })
}

/// What the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Greet,
    Leave,
    Help,
    Unknown,
    Apply,
    AskNumber,
    /// A well-formed registration number, normalized.
    Number(String),
    /// Something typed like a number, with a typo: what is wrong.
    Typo(&'static str),
    ConsentMenu,
    Consent(bool),
    Settings,
    Mute(&'static str, bool),
    StopAll,
    ResumeAll,
    TimingMenu,
    AddTiming(Kind, Option<Day>),
    ListTiming,
    DeleteTiming(i64),
    /// A date without saying whether it is a due date or a birth date.
    BareDate,
    Mail(Mail),
    /// A tap on choice `answer` of survey `id`.
    Survey {
        id: i64,
        answer: u32,
    },
}

/// What the user asked for about e-mail.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mail {
    Menu,
    /// Asks for a new address to replace the confirmed one.
    Change,
    /// An e-mail address, read.
    Address(String),
    /// Six digits: a confirmation code.
    Code(String),
    Channels(&'static str),
    Off,
}

fn category(code: &str) -> Option<&'static str> {
    CATEGORIES.iter().find(|(name, _)| *name == code).map(|(name, _)| *name)
}

fn label_of(category: &str) -> &'static str {
    CATEGORIES.iter().find(|(name, _)| *name == category).map_or("", |(_, label)| *label)
}

/// Whether the chat answers a postback with this data (the cards' and rich menu's buttons
/// are checked against it).
pub fn understands_postback(data: &str) -> bool {
    !matches!(postback_action(data, None), Action::Unknown)
}

/// The action of a postback's data `action=…&key=value`.
fn postback_action(data: &str, date: Option<&str>) -> Action {
    let field =
        |key: &str| data.split('&').find_map(|pair| pair.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')));
    let picked = date.and_then(Day::parse_iso);
    match field("action").unwrap_or_default() {
        "help" => Action::Help,
        "apply" => Action::Apply,
        "number" => Action::AskNumber,
        "consent-menu" => Action::ConsentMenu,
        "consent" => Action::Consent(field("value") == Some("yes")),
        "settings" => Action::Settings,
        "mute" | "unmute" => match field("category").and_then(category) {
            Some(found) => Action::Mute(found, field("action") == Some("mute")),
            None => Action::Unknown,
        },
        "stop-all" => Action::StopAll,
        "resume-all" => Action::ResumeAll,
        "timing" => Action::TimingMenu,
        "due-date" => Action::AddTiming(Kind::DueDate, picked),
        "birth-date" => Action::AddTiming(Kind::BirthDate, picked),
        "timing-list" => Action::ListTiming,
        "timing-delete" => field("id").and_then(|id| id.parse().ok()).map_or(Action::Unknown, Action::DeleteTiming),
        "mail" => Action::Mail(Mail::Menu),
        "mail-change" => Action::Mail(Mail::Change),
        "mail-off" => Action::Mail(Mail::Off),
        "channels" => match field("value") {
            Some("line") => Action::Mail(Mail::Channels("line")),
            Some("mail") => Action::Mail(Mail::Channels("mail")),
            Some("both") => Action::Mail(Mail::Channels("both")),
            _ => Action::Unknown,
        },
        "survey" => match (field("id").and_then(|id| id.parse().ok()), field("answer").and_then(|k| k.parse().ok())) {
            (Some(id), Some(answer)) => Action::Survey { id, answer },
            _ => Action::Unknown,
        },
        _ => Action::Unknown,
    }
}

/// The action of a text typed in the chat.
fn text_action(text: &str) -> Action {
    let text = text.trim();
    let compact: String = text.chars().filter(|character| !character.is_whitespace()).collect();
    match compact.as_str() {
        "ヘルプ" | "使い方" | "メニュー" | "help" | "Help" | "?" | "\u{ff1f}" => return Action::Help,
        "登録" | "登録番号" | "登録番号を入力" => return Action::AskNumber,
        "申し込み" | "申込" | "申込み" | "利用の申し込み" => return Action::Apply,
        "同意" | "税情報" | "税情報の利用" => return Action::ConsentMenu,
        "同意する" => return Action::Consent(true),
        "同意しない" | "同意を取り消す" | "同意の取り消し" | "同意取り消し" | "同意撤回" =>
        {
            return Action::Consent(false);
        }
        "設定" | "配信設定" | "配信の設定" => return Action::Settings,
        "停止" | "すべて停止" | "配信停止" | "すべて止める" | "ストップ" => {
            return Action::StopAll;
        }
        "再開" | "すべて再開" | "配信再開" => return Action::ResumeAll,
        "予定日" | "出産予定日" | "誕生日" | "予定日・誕生日" => return Action::TimingMenu,
        "登録の確認" | "確認" => return Action::ListTiming,
        "メール" | "メール設定" | "メールの設定" | "メールアドレス" | "メールで受け取る" =>
        {
            return Action::Mail(Mail::Menu);
        }
        "メールをやめる" | "メール停止" | "メールの停止" | "メール解除" | "メールアドレスの削除" =>
        {
            return Action::Mail(Mail::Off);
        }
        _ => {}
    }
    if let Some(code) = email::read_code(text) {
        return Action::Mail(Mail::Code(code));
    }
    if let Some(address) = email::read_address(text) {
        return Action::Mail(Mail::Address(address));
    }
    for (prefix, kind) in [("出産予定日", Kind::DueDate), ("予定日", Kind::DueDate), ("誕生日", Kind::BirthDate)]
    {
        if let Some(rest) = text.strip_prefix(prefix) {
            return Action::AddTiming(
                kind,
                crate::import::values::date(rest.trim_start_matches([':', ':', ' ', '\u{3000}'])),
            );
        }
    }
    if crate::import::values::date(text).is_some() {
        return Action::BareDate;
    }
    match number::parse(text) {
        Parsed::NotANumber => Action::Unknown,
        Parsed::Typo(what) => Action::Typo(what),
        Parsed::Number(number) => Action::Number(number),
    }
}

/// One reply message with its quick-reply buttons.
fn reply(text: &str, buttons: Vec<Button>) -> Result<Answer> {
    Ok(Answer::Replies(vec![ReplyMessage::with_buttons(text, buttons)]))
}

/// The buttons offered with the greeting and the help.
fn menu() -> Vec<Button> {
    vec![
        Button::postback("利用の申し込み", "action=apply"),
        Button::postback("登録番号を入力", "action=number"),
        Button::postback("予定日・誕生日", "action=timing"),
        Button::postback("配信の設定", "action=settings"),
        Button::postback("税情報の利用", "action=consent-menu"),
        Button::postback("使い方", "action=help"),
    ]
}

fn timing_buttons(today: Day) -> Vec<Button> {
    let (due_first, due_last) = Kind::DueDate.range(today);
    let (birth_first, birth_last) = Kind::BirthDate.range(today);
    vec![
        Button::date_picker("予定日を登録", "action=due-date", due_first, due_last),
        Button::date_picker("誕生日を登録", "action=birth-date", birth_first, birth_last),
        Button::postback("登録の確認", "action=timing-list"),
    ]
}

fn consent_buttons() -> Vec<Button> {
    vec![
        Button::postback("同意する", "action=consent&value=yes"),
        Button::postback("同意しない", "action=consent&value=no"),
    ]
}

const HELP: &str = "ご用件を下のボタンから選んでください。\n\
・利用の申し込み: 市で確認して、登録番号をはがきでお送りします\n\
・はがきの登録番号を送ると、登録できます\n\
・予定日・誕生日を登録すると、健診や予防接種を時期に合わせてお知らせします\n\
・配信の設定で、受け取るお知らせの種類を選べます。メールでも受け取れます\n\
・「停止」と送ると、すべてのお知らせを止めます";

/// Applies one event inside the caller's transaction and says what to answer. `now_millis`
/// and `today` are the clock of the moment it is processed; `mail_available` whether the
/// worker has a mail server to send codes through.
pub fn handle(
    connection: &Connection,
    settings: &ChatSettings,
    incoming: &Incoming,
    now_millis: i64,
    today: Day,
    mail_available: bool,
) -> Result<Answer> {
    let user = incoming.user.as_str();
    if incoming.standby {
        in_standby(connection, user, &incoming.what)?;
        return Ok(Answer::Replies(Vec::new()));
    }
    let action = match &incoming.what {
        What::Follow => Action::Greet,
        What::Unfollow => Action::Leave,
        What::Text(text) => text_action(text),
        What::Postback { data, date } => postback_action(data, date.as_deref()),
        What::OtherMessage => Action::Help,
    };
    let now = now_text();
    record_following(connection, user, action != Action::Leave, &now)?;
    let linked: Option<(String, Option<String>)> = connection
        .query_row("SELECT resident_id, tax_consent_at FROM registrations WHERE line_user_id = ?1", [user], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    match action {
        Action::Greet => {
            let returning = reactivate(connection, user)?;
            if returning || linked.is_some() {
                return reply(
                    "おかえりなさい。また、\
                     あなたが使える制度や健診のお知らせをお届けします。",
                    menu(),
                );
            }
            reply(
                "友だち追加ありがとうございます。\n\
                 あなたが使える制度・健診・予防接種を、\
                 使える時期にお知らせします。\n\n\
                 市から届いたはがきの登録番号(例: ABCD-EFGH-JKL)をこのトークに送ると、\
                 登録できます。出産予定日やお子さんの誕生日だけを\
                 登録することもできます。",
                menu(),
            )
        }
        Action::Leave => {
            unfollow(connection, user)?;
            Ok(Answer::Replies(Vec::new()))
        }
        Action::Help => reply(HELP, menu()),
        Action::Unknown => reply(&format!("すみません、よくわかりませんでした。\n{HELP}"), menu()),
        Action::Apply => match (&settings.public_url, &linked) {
            (_, Some(_)) => reply("すでに登録が済んでいます。", menu()),
            (None, None) => reply(
                "利用の申し込みは、お住まいの区の窓口で受け付けています。\
                 市で確認のうえ、登録番号をはがきでお送りします。",
                menu(),
            ),
            (Some(public_url), None) => {
                let token = application_link::create(connection, user)?;
                reply(
                    &format!(
                        "下のページで、お名前・生年月日・住所を入力してください\
                         (このリンクはあなた専用で、1日有効です)。\n{}/apply/{token}\n\n\
                         市で確認のうえ、登録番号をはがきでお送りします。",
                        public_url.trim_end_matches('/')
                    ),
                    Vec::new(),
                )
            }
        },
        Action::AskNumber => reply(
            "はがきに書かれた登録番号(11文字、例: ABCD-EFGH-JKL)を、\
             このトークに送ってください。",
            Vec::new(),
        ),
        Action::Typo(what) => reply(
            &format!(
                "{what}。はがきの番号をもう一度ご確認ください(まちがいの回数には\
                 数えません)。"
            ),
            Vec::new(),
        ),
        Action::Number(typed) => match number::redeem(connection, user, &typed, now_millis)? {
            Redeemed::Linked { .. } => reply(
                "登録が完了しました。これから、\
                 あなたに合ったお知らせをお届けします。\n\n\
                 所得に応じた手当などをご案内するため、\
                 市が持つ税の情報(課税の状況と所得)を使ってもよいですか。\
                 同意はいつでも取り消せます。",
                consent_buttons(),
            ),
            Redeemed::AlreadyLinked => reply(
                "この登録番号では、\
                 すでに登録が済んでいます。",
                menu(),
            ),
            Redeemed::LinkedToAnother => reply(
                "このLINEアカウントは、すでに別の方の登録に使われています。\
                 お手数ですが、市の窓口にお問い合わせください。",
                Vec::new(),
            ),
            Redeemed::Expired => reply(
                "この登録番号は有効期限が切れています。お手数ですが、\
                 市に再発行をお申し込みください。",
                Vec::new(),
            ),
            Redeemed::Wrong { left } if left > 0 => reply(
                &format!(
                    "登録番号が見つかりませんでした。はがきの番号をご確認ください\
                     (あと{left}回まちがえると、1時間お試しいただけなくなります)。"
                ),
                Vec::new(),
            ),
            Redeemed::Wrong { .. } | Redeemed::Limited => reply(
                "まちがった番号が続いたため、いまは登録番号を受け付けていません。\
                 1時間ほどたってから、もう一度お送りください。",
                Vec::new(),
            ),
        },
        Action::ConsentMenu => match linked {
            None => reply(
                "税情報の利用への同意は、\
                 はがきの登録番号で登録した方が選べます。",
                menu(),
            ),
            Some((_, Some(_))) => reply(
                "いまは税情報の利用に同意いただいています。取り消しますか。",
                vec![Button::postback("同意を取り消す", "action=consent&value=no")],
            ),
            Some((_, None)) => reply(
                "いまは税情報を使っていません。所得に応じた手当などをご案内するため、\
                 市が持つ税の情報を使ってもよいですか。",
                consent_buttons(),
            ),
        },
        Action::Consent(give) => {
            let Some((resident_id, consent)) = linked else {
                return reply(
                    "税情報の利用への同意は、\
                     はがきの登録番号で登録した方が選べます。",
                    menu(),
                );
            };
            if give {
                if consent.is_none() {
                    connection.execute(
                        "UPDATE registrations SET tax_consent_at = ?2 WHERE resident_id = ?1",
                        (&resident_id, &now),
                    )?;
                    audit(connection, "line", "give-tax-consent", &resident_id, "")?;
                }
                return reply(
                    "同意ありがとうございます。所得に応じた制度もご案内します。\
                     取り消すときは「同意を取り消す」と送ってください。",
                    menu(),
                );
            }
            if consent.is_some() {
                withdraw_consent(connection, &resident_id)?;
                return reply(
                    "税情報の利用への同意を取り消しました。\
                     所得に応じた制度のお知らせは、今後お送りしません。",
                    menu(),
                );
            }
            reply(
                "わかりました。税情報は使いません。ほかのお知らせはお届けします。\
                 あとから同意するときは「同意」と送ってください。",
                menu(),
            )
        }
        Action::Settings => reply(&settings_text(connection, user)?, settings_buttons(connection, user)?),
        Action::Mute(category, mute) => {
            set_muted(connection, user, &[category], mute, &now)?;
            let done = if mute { "止めました" } else { "再開しました" };
            reply(
                &format!(
                    "「{}」のお知らせを{done}。\n\n\
                     {}",
                    label_of(category),
                    settings_text(connection, user)?
                ),
                settings_buttons(connection, user)?,
            )
        }
        Action::StopAll => {
            let all: Vec<&str> = CATEGORIES.iter().map(|(name, _)| *name).collect();
            set_muted(connection, user, &all, true, &now)?;
            reply(
                "すべてのお知らせを止めました。再開するときは「再開」と送るか、\
                 下のボタンを押してください。",
                vec![
                    Button::postback("すべて再開", "action=resume-all"),
                    Button::postback("配信の設定", "action=settings"),
                ],
            )
        }
        Action::ResumeAll => {
            let all: Vec<&str> = CATEGORIES.iter().map(|(name, _)| *name).collect();
            set_muted(connection, user, &all, false, &now)?;
            reply("すべてのお知らせを再開しました。", menu())
        }
        Action::TimingMenu => reply(
            "出産予定日やお子さんの誕生日を登録すると、\
             健診や予防接種などを時期に合わせてお知らせします。\
             下のボタンで日付を選ぶか、「予定日 2027-03-01」「誕生日 2026-08-22」\
             のように送ってください。",
            timing_buttons(today),
        ),
        Action::AddTiming(kind, None) => reply(
            &format!(
                "{}の日付が読み取れませんでした。「予定日 2027-03-01」「誕生日 2026-08-22」\
                 のように送ってください。",
                kind.label()
            ),
            timing_buttons(today),
        ),
        Action::AddTiming(kind, Some(day)) => match timing::add(connection, user, kind, day, today)? {
            Ok(_) => reply(
                &format!("{}を登録しました。時期が来たらお知らせします。", kind.label()),
                vec![
                    Button::postback("登録の確認", "action=timing-list"),
                    Button::postback("配信の設定", "action=settings"),
                ],
            ),
            Err(refusal) => reply(refusal, timing_buttons(today)),
        },
        Action::ListTiming => {
            let entries = timing::list(connection, user)?;
            if entries.is_empty() {
                return reply("登録はまだありません。", timing_buttons(today));
            }
            let mut text = String::from(
                "登録している日付です。\
                 削除するときは下のボタンを押してください。",
            );
            let mut buttons = Vec::new();
            for (position, entry) in entries.iter().enumerate() {
                text.push_str(&format!("\n{}. {}", position + 1, entry.kind.label()));
                buttons.push(Button::postback(
                    format!("{}を削除", position + 1),
                    format!("action=timing-delete&id={}", entry.id),
                ));
            }
            buttons.extend(timing_buttons(today).into_iter().take(2));
            reply(&text, buttons)
        }
        Action::DeleteTiming(id) => match timing::delete(connection, user, id)? {
            true => reply(
                "削除しました。この日付のお知らせは、今後お送りしません。",
                vec![Button::postback("登録の確認", "action=timing-list")],
            ),
            false => reply(
                "その登録は見つかりませんでした。\
                 すでに削除されているかもしれません。",
                vec![Button::postback("登録の確認", "action=timing-list")],
            ),
        },
        Action::BareDate => reply(
            "日付は「予定日 2027-03-01」\
             「誕生日 2026-08-22」のように送ってください。",
            timing_buttons(today),
        ),
        Action::Mail(asked) => {
            let Some((resident_id, _)) = linked.filter(|_| mail_available) else {
                let why = if mail_available {
                    MAIL_NEEDS_LINK
                } else {
                    "この市では、メールでのお知らせは行っていません。\
                     お知らせはLINEでお届けします。"
                };
                return reply(why, menu());
            };
            mail(connection, user, &resident_id, asked, now_millis)
        }
        Action::Survey { id, answer } => {
            let now = chrono::DateTime::from_timestamp_millis(now_millis).unwrap_or_default();
            let text = match crate::survey::answer(connection, user, id, answer, now)? {
                Answered::Recorded { label, before: None } => format!(
                    "「{label}」で受け付けました。ご協力ありがとうございます。\
                     締め切りまでは、ボタンを押し直すと選び直せます。"
                ),
                Answered::Recorded { label, before: Some(before) } => {
                    format!("回答を「{before}」から「{label}」に変えました。ご協力ありがとうございます。")
                }
                Answered::NotOpen => "このアンケートは、まだ受け付けを始めていません。".to_owned(),
                Answered::Closed => "このアンケートは締め切りました。回答は変わっていません。\
                                     ご協力ありがとうございました。"
                    .to_owned(),
                Answered::Unknown => "このアンケートは見つかりませんでした。".to_owned(),
                Answered::NoSuchChoice => "その選択肢は、このアンケートにはありません。\
                                           お手数ですが、アンケートのボタンから選んでください。"
                    .to_owned(),
            };
            reply(&text, Vec::new())
        }
    }
}

const MAIL_NEEDS_LINK: &str = "メールでのお知らせは、\
                               はがきの登録番号で登録した方が使えます。";
const ASK_ADDRESS: &str = "メールアドレスを、このトークに送ってください。\
                           確認コードをそのアドレスにお送りします。";

/// The e-mail flow of a linked resident: the menu, an address (a code is e-mailed), the
/// code (the address is stored), the choice of channels, and removing the address.
fn mail(connection: &Connection, user: &str, resident_id: &str, asked: Mail, now_millis: i64) -> Result<Answer> {
    let current = |connection: &Connection| -> Result<String> {
        let channels: String = connection.query_row(
            "SELECT channels FROM registrations WHERE resident_id = ?1",
            [resident_id],
            |row| row.get(0),
        )?;
        Ok(format!("いまの受け取り方: {}", email::channels_label(&channels)))
    };
    match asked {
        Mail::Menu => match email::address_of(connection, resident_id)? {
            None => reply(
                &format!("お知らせをメールでも受け取れます。{ASK_ADDRESS}"),
                vec![Button::postback("配信の設定", "action=settings")],
            ),
            Some(_) => reply(
                &format!(
                    "メールアドレスを登録しています。\n{}\n\
                     変えるときは下のボタンを押してください。",
                    current(connection)?
                ),
                mail_buttons(),
            ),
        },
        Mail::Change => reply(
            &format!(
                "新しい{ASK_ADDRESS}確認できるまでは、\
                 いまのアドレスにお送りします。"
            ),
            Vec::new(),
        ),
        Mail::Address(address) => match email::start(connection, user, &address, now_millis)? {
            email::Started::Send(mail) => Ok(Answer::SendCode(mail)),
            email::Started::Limited => reply(
                &format!(
                    "確認コードのお送りは、1時間に{}回までです。しばらくたってから、\
                     もう一度お試しください。",
                    email::CODES_PER_HOUR
                ),
                Vec::new(),
            ),
        },
        Mail::Code(code) => match email::confirm(connection, user, resident_id, &code, now_millis)? {
            email::Confirmed::Stored { channels } => reply(
                &format!(
                    "メールアドレスを確認しました。\nいまの受け取り方: {}\n\
                     変えるときは下のボタンを押してください。",
                    email::channels_label(&channels)
                ),
                mail_buttons(),
            ),
            email::Confirmed::NoCode => reply(
                &format!(
                    "いま確認を待っているコードはありません。メールで受け取るときは、\
                     まず{ASK_ADDRESS}"
                ),
                Vec::new(),
            ),
            email::Confirmed::Expired => reply(
                "確認コードの有効期限(30分)が切れています。お手数ですが、\
                 もう一度メールアドレスを送ってください。",
                Vec::new(),
            ),
            email::Confirmed::Wrong { left } => reply(
                &format!(
                    "確認コードがちがいます。メールの6桁の数字をご確認ください\
                     (あと{left}回まちがえると、このコードは使えなくなります)。"
                ),
                Vec::new(),
            ),
            email::Confirmed::UsedUp => reply(
                "確認コードのまちがいが続いたため、このコードは使えなくなりました。\
                 もう一度メールアドレスを送ってください。",
                Vec::new(),
            ),
        },
        Mail::Channels(channels) => match email::set_channels(connection, resident_id, channels)? {
            true => reply(
                &format!(
                    "受け取り方を「{}」\
                     にしました。",
                    email::channels_label(channels)
                ),
                mail_buttons(),
            ),
            false => reply(
                &format!(
                    "メールで受け取るには、先にメールアドレスの確認が必要です。\
                     {ASK_ADDRESS}"
                ),
                Vec::new(),
            ),
        },
        Mail::Off => match email::remove(connection, user, resident_id)? {
            true => reply(
                "メールアドレスを削除しました。お知らせは、\
                 これからはLINEでお届けします。",
                menu(),
            ),
            false => reply(
                "メールアドレスは登録されていません。\
                 お知らせはLINEでお届けしています。",
                menu(),
            ),
        },
    }
}

fn mail_buttons() -> Vec<Button> {
    vec![
        Button::postback("LINEとメール", "action=channels&value=both"),
        Button::postback("メールだけ", "action=channels&value=mail"),
        Button::postback("LINEだけ", "action=channels&value=line"),
        Button::postback("アドレスを変更", "action=mail-change"),
        Button::postback("メールをやめる", "action=mail-off"),
    ]
}

/// What an event that came while the channel was in standby changes. Another module
/// channel answers the chat then, and acting on what the user typed or tapped would call
/// for a reply this channel must not send, so nothing of it is done. Whether the user
/// follows the account is still kept, since it decides whether notices may go to them.
fn in_standby(connection: &Connection, user: &str, what: &What) -> Result<()> {
    match what {
        What::Follow => {
            record_following(connection, user, true, &now_text())?;
            reactivate(connection, user)?;
        }
        What::Unfollow => {
            record_following(connection, user, false, &now_text())?;
            unfollow(connection, user)?;
        }
        What::Text(_) | What::Postback { .. } | What::OtherMessage => {}
    }
    Ok(())
}

/// Records that the LINE user follows the account, or blocked it; any other event comes
/// from a follower.
fn record_following(connection: &Connection, user: &str, following: bool, now: &str) -> Result<()> {
    connection.execute(
        "INSERT INTO line_users (line_user_id, following, first_seen_at, changed_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (line_user_id) DO UPDATE SET following = excluded.following,
             changed_at = CASE WHEN following = excluded.following THEN changed_at ELSE excluded.changed_at END",
        (user, i32::from(following), now),
    )?;
    Ok(())
}

/// Makes the registrations of a user who follows the account again active; whether there
/// were any.
fn reactivate(connection: &Connection, user: &str) -> Result<bool> {
    Ok(connection.execute("UPDATE registrations SET active = 1 WHERE line_user_id = ?1 AND active = 0", [user])? > 0)
}

/// The user blocked the account: nothing more is delivered to them. Their registrations
/// become inactive and every delivery to them not yet sent fails for good, at once.
fn unfollow(connection: &Connection, user: &str) -> Result<()> {
    connection.execute("UPDATE registrations SET active = 0 WHERE line_user_id = ?1", [user])?;
    cancel_undelivered(connection, Undelivered::To(user), "unfollowed")?;
    Ok(())
}

/// Forgets a resident's consent and stops, at once, what the tax data would have brought:
/// deliveries of programs that read tax fields not yet sent fail for good, and their
/// notices about this resident that were planned but not queued are dropped (evaluation
/// no longer sees the tax data, so it plans them no more).
fn withdraw_consent(connection: &Connection, resident_id: &str) -> Result<()> {
    connection.execute("UPDATE registrations SET tax_consent_at = NULL WHERE resident_id = ?1", [resident_id])?;
    let tax_programs: Vec<String> = crate::registry::active_versions(connection)?
        .into_iter()
        .filter(|version| version.manifest.fields.iter().any(|field| field == "Tax"))
        .map(|version| version.program)
        .collect();
    for program in &tax_programs {
        cancel_undelivered(
            connection,
            Undelivered::About { resident_id, program: Some(program) },
            "tax consent withdrawn",
        )?;
        connection.execute(
            "DELETE FROM notices WHERE program = ?1 AND resident_id = ?2 AND NOT EXISTS (SELECT 1 FROM deliveries d
                 WHERE d.notice_id = notices.id)",
            (program, resident_id),
        )?;
    }
    audit(connection, "line", "withdraw-tax-consent", resident_id, &tax_programs.join(","))?;
    Ok(())
}

fn muted(connection: &Connection, user: &str) -> Result<HashSet<String>> {
    let mut statement = connection.prepare_cached("SELECT category FROM muted_categories WHERE line_user_id = ?1")?;
    let muted = statement.query_map([user], |row| row.get(0))?.collect::<Result<_, _>>()?;
    Ok(muted)
}

fn set_muted(connection: &Connection, user: &str, categories: &[&str], mute: bool, now: &str) -> Result<()> {
    for category in categories {
        if mute {
            connection.execute(
                "INSERT OR IGNORE INTO muted_categories (line_user_id, category, muted_at) VALUES (?1, ?2, ?3)",
                (user, category, now),
            )?;
        } else {
            connection
                .execute("DELETE FROM muted_categories WHERE line_user_id = ?1 AND category = ?2", (user, category))?;
        }
    }
    Ok(())
}

fn settings_text(connection: &Connection, user: &str) -> Result<String> {
    let muted = muted(connection, user)?;
    let mut text = String::from("受け取るお知らせの種類です。");
    for (name, label) in CATEGORIES {
        text.push_str(&format!("\n{label}: {}", if muted.contains(name) { "止めています" } else { "受け取る" }));
    }
    Ok(text)
}

fn settings_buttons(connection: &Connection, user: &str) -> Result<Vec<Button>> {
    let muted = muted(connection, user)?;
    let mut buttons: Vec<Button> = CATEGORIES
        .iter()
        .map(|(name, label)| match muted.contains(*name) {
            true => Button::postback(format!("{label}を再開"), format!("action=unmute&category={name}")),
            false => Button::postback(format!("{label}を止める"), format!("action=mute&category={name}")),
        })
        .collect();
    buttons.push(Button::postback("すべて止める", "action=stop-all"));
    buttons.push(Button::postback("すべて再開", "action=resume-all"));
    buttons.push(Button::postback("メールの設定", "action=mail"));
    Ok(buttons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::survey::{Audience, Draft, Kind};

    const USER: &str = "U0000000000000000000000000000b001";

    /// What the chat replies to `user`'s tap with `data` at `now`.
    fn tap(connection: &Connection, data: &str, now: chrono::DateTime<chrono::Utc>) -> String {
        let incoming = Incoming {
            user: USER.into(),
            reply_token: Some("token".into()),
            what: What::Postback { data: data.into(), date: None },
            standby: false,
        };
        let answer = handle(
            connection,
            &ChatSettings::default(),
            &incoming,
            now.timestamp_millis(),
            crate::time::day_in_japan(now),
            false,
        )
        .unwrap();
        let Answer::Replies(replies) = answer else { panic!("a tap is answered with a reply") };
        replies.iter().map(|reply| reply.text.clone()).collect()
    }

    #[test]
    fn a_survey_tap_is_answered_changed_refused_when_closed_and_told_apart_when_unknown() {
        let mut connection = crate::testing::database();
        let now = chrono::Utc::now();
        let draft = Draft {
            question: "健診の予約はしやすかったですか。".into(),
            kind: Kind::Choice,
            choices: vec!["はい".into(), "いいえ".into()],
            audience: Audience::Everyone,
            category: None,
            program: None,
            sent_from: None,
            sent_to: None,
        };
        let id =
            crate::survey::create(&mut connection, &draft, now, now + chrono::Duration::days(1), "user:admin").unwrap();
        let answer = |data: &str, at| tap(&connection, data, at);
        let stored = |connection: &Connection| -> Vec<(Option<String>, u32)> {
            connection
                .prepare("SELECT line_user_id, answer FROM survey_answers")
                .unwrap()
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let first = answer(&crate::survey::postback(id, 0), now);
        assert!(first.contains("「はい」で受け付けました"), "{first}");
        let changed = answer(&crate::survey::postback(id, 1), now);
        assert!(changed.contains("「はい」から「いいえ」に変えました"), "{changed}");
        assert_eq!(stored(&connection), [(Some(USER.to_owned()), 1)], "changed, not duplicated");
        let out_of_range = answer(&crate::survey::postback(id, 2), now);
        assert!(out_of_range.contains("その選択肢は、このアンケートにはありません"), "{out_of_range}");
        let unknown = answer(&crate::survey::postback(id + 1, 0), now);
        assert!(unknown.contains("見つかりませんでした"), "{unknown}");
        let early = answer(&crate::survey::postback(id, 0), now - chrono::Duration::hours(1));
        assert!(early.contains("まだ受け付けを始めていません"), "{early}");
        let closed = answer(&crate::survey::postback(id, 0), now + chrono::Duration::days(2));
        assert!(closed.contains("締め切りました"), "{closed}");
        assert_eq!(stored(&connection), [(Some(USER.to_owned()), 1)], "a refused tap changes nothing");
        assert!(understands_postback(&crate::survey::postback(7, 4)));
        assert!(!understands_postback("action=survey&id=seven&answer=0"));
    }
}
