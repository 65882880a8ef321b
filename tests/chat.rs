//! The residents' chat with the real binary: staff issue a registration number with the
//! CLI, `oshirase serve` answers the LINE webhook, and a real emulator process plays LINE
//! and the resident's phone (its users' side signs each event as LINE does and waits for
//! the bot's reply); the day's run then pushes the notice the resident registered for, as
//! a card whose 「配信の設定」 and one more tap stop its category and whose 「詳しく」 is
//! counted through the server's `/r/{token}`, and the rich menu
//! `oshirase line rich-menu` installs answers its taps.
//! With `serve --config` and a real SMTP server, a resident confirms an e-mail address
//! with the code it receives, and an applicant staff reject is told in the chat.

use crate::harness::{EmulatorProcess, Scene, SmtpProcess, TOKEN, wait_until};
use serde_json::{Value, json};

const SECRET: &str = "end-to-end-channel-secret";
const MOTHER: &str = "U00000000000000000000000000000001";
const APPLICANT: &str = "U00000000000000000000000000000002";

/// A mother (0101) whose baby (0102) is four months old today.
fn town() -> Scene {
    let today = oshirase_core::time::today_in_japan();
    let scene = Scene::with_programs(&["infant-checkup"]);
    let residents = format!(
        "宛名番号,世帯番号,氏名,生年月日,性別,続柄\n0101,H01,千葉 花子,1994-05-01,女,世帯主\n\
         0102,H01,千葉 陽葵,{},女,子\n",
        today.add_months_clamped(-4)
    );
    let folder = scene.write("export", "residents.csv", &residents);
    scene.ok(&["import", folder.to_str().unwrap()]);
    scene
}

/// The mother does something in the chat; returns the bot's replies (texts).
fn act(emulator: &EmulatorProcess, action: Value) -> Vec<String> {
    act_as(emulator, MOTHER, action)
}

/// `user` does something in the chat; returns the bot's replies (texts), printed.
fn act_as(emulator: &EmulatorProcess, user: &str, action: Value) -> Vec<String> {
    let answer: Value = reqwest::blocking::Client::new()
        .post(format!("{}/emulator/users/{user}/events", emulator.base_url))
        .json(&action)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(answer["webhook_status"], 200, "{answer}");
    let replies: Vec<String> =
        answer["replies"].as_array().unwrap().iter().map(|reply| reply["text"].as_str().unwrap().to_string()).collect();
    println!("{user}: {action}\n  bot: {}", replies.join("\n  bot: ").replace('\n', "\n       "));
    replies
}

#[test]
fn a_resident_links_by_number_in_the_chat_and_receives_the_notice() {
    let scene = town();
    let number = scene.ok(&["registration", "issue", "0101"]).trim().to_string();
    assert_eq!(number.len(), 13, "{number}");
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    let server = scene.serve(&["--line-secret", SECRET, "--line-token", TOKEN, "--line-base-url", &emulator.base_url]);
    let webhook = format!("{}/webhook/line", server.base_url);
    let set = reqwest::blocking::Client::new()
        .put(format!("{}/emulator/webhook", emulator.base_url))
        .json(&json!({ "url": webhook, "channel_secret": SECRET }))
        .send()
        .unwrap();
    assert!(set.status().is_success());

    assert!(act(&emulator, json!({ "type": "follow" }))[0].contains("友だち追加ありがとうございます"));
    assert!(act(&emulator, json!({ "type": "text", "text": number }))[0].contains("登録が完了しました"));
    assert!(
        act(&emulator, json!({ "type": "postback", "data": "action=consent&value=no" }))[0]
            .contains("税情報は使いません")
    );

    // A request not signed with the channel secret is refused.
    let body = json!({ "destination": MOTHER, "events": [] }).to_string();
    let forged = reqwest::blocking::Client::new()
        .post(&webhook)
        .header("x-line-signature", line_emulator::signature(b"not-the-secret", body.as_bytes()))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(forged.status(), 401);

    let today = oshirase_core::time::today_in_japan().to_string();
    let report: Value = serde_json::from_str(
        scene
            .ok(&[
                "run",
                "--date",
                &today,
                "--line-base-url",
                &emulator.base_url,
                "--line-token",
                TOKEN,
                "--public-url",
                &server.base_url,
            ])
            .trim(),
    )
    .unwrap();
    assert_eq!(report["sent"]["sent"], 1, "{report}");
    let inbox = &emulator.inboxes()[MOTHER];
    assert!(inbox.last().unwrap().contains("1回目の乳児健康診査"), "{inbox:?}");
    assert_eq!(inbox.len(), 4, "three replies and one notice: {inbox:?}");

    // The notice is a card; its 「配信の設定」 and one more tap stop the category.
    let card = emulator.inboxes_json()[MOTHER].as_array().unwrap().last().unwrap()["flex"].clone();
    let buttons = card["footer"]["contents"].as_array().unwrap();
    let settings = buttons.iter().find(|button| button["action"]["label"] == "配信の設定").expect("a settings button");
    let replies = act(&emulator, json!({ "type": "postback", "data": settings["action"]["data"] }));
    assert!(replies[0].contains("子育て"), "{replies:?}");
    let replies = act(&emulator, json!({ "type": "postback", "data": "action=mute&category=ChildRearing" }));
    assert!(replies[0].contains("「子育て」のお知らせを止めました"), "{replies:?}");

    // Its 「詳しく」 goes through the server, which counts the opening for the occasion and
    // the day, and nothing about who opened it, and sends the phone on to the page.
    let details = buttons.iter().find(|button| button["action"]["label"] == "詳しく").expect("a details button");
    let link = details["action"]["uri"].as_str().unwrap();
    assert!(link.starts_with(&format!("{}/r/", server.base_url)), "{link}");
    let no_redirects =
        reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let opened = no_redirects.get(link).send().unwrap();
    assert_eq!(opened.status(), 303);
    assert!(opened.headers()["location"].to_str().unwrap().starts_with("https://"), "{:?}", opened.headers());
    assert!(opened.headers().get("set-cookie").is_none());
    let database = rusqlite::Connection::open(scene.data().join("oshirase.db")).unwrap();
    let counted: (String, String, i64) = database
        .query_row(
            "SELECT t.program, t.occasion, o.opened FROM link_opens o JOIN link_targets t ON t.token = o.token",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert_eq!(counted, ("infant-checkup".to_owned(), "first".to_owned(), 1));

    // The rich menu: installed through the Messaging API, once however often it is run;
    // each area a postback the chat answers.
    let image = scene.directory.path().join("rich-menu.png");
    for _ in 0..2 {
        scene.ok(&[
            "line",
            "rich-menu",
            "--line-base-url",
            &emulator.base_url,
            "--line-data-base-url",
            &emulator.base_url,
            "--line-token",
            TOKEN,
            "--save-image",
            image.to_str().unwrap(),
        ]);
    }
    assert!(std::fs::read(&image).unwrap().starts_with(b"\x89PNG"));
    let line = |path: &str| -> Value {
        reqwest::blocking::Client::new()
            .get(format!("{}{path}", emulator.base_url))
            .bearer_auth(TOKEN)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let menus = line("/v2/bot/richmenu/list")["richmenus"].as_array().unwrap().clone();
    assert_eq!(menus.len(), 1, "running it again replaced the menu: {menus:?}");
    assert_eq!(line("/v2/bot/user/all/richmenu")["richMenuId"], menus[0]["richMenuId"]);
    let labels: Vec<&str> =
        menus[0]["areas"].as_array().unwrap().iter().map(|area| area["action"]["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["受け取る設定", "申し込み・登録", "登録内容の確認", "ヘルプ"]);
    let help = &menus[0]["areas"][3]["action"]["data"];
    assert!(act(&emulator, json!({ "type": "postback", "data": help }))[0].contains("ご用件を"));
    let phones = reqwest::blocking::get(format!("{}/", emulator.base_url)).unwrap().text().unwrap();
    assert!(phones.contains("class=\"rich-menu\"") && phones.contains("action=settings"), "the phone shows the menu");
    let shown = reqwest::blocking::get(format!("{}/emulator/rich-menu", emulator.base_url)).unwrap().bytes().unwrap();
    assert_eq!(shown.as_ref(), std::fs::read(&image).unwrap().as_slice(), "the phones show the image drawn");
}

#[test]
fn the_webhook_benchmark_receives_and_processes_every_event() {
    let scene = Scene::new();
    let work = scene.directory.path().join("bench");
    let output = scene.ok(&[
        "bench",
        "webhook",
        "--events",
        "60",
        "--events-per-request",
        "4",
        "--repetitions",
        "1",
        "--json",
        "--work",
        work.to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_str(output.trim()).unwrap();
    assert_eq!(report["events"], 60, "{report}");
    for timing in ["received", "processed"] {
        let seconds = report[timing]["seconds"].as_array().unwrap();
        assert!(seconds.len() == 1 && seconds[0].as_f64().unwrap() > 0.0, "{report}");
    }
}

#[test]
fn with_serve_config_a_resident_confirms_an_e_mail_address_and_a_rejected_applicant_is_told() {
    let scene = town();
    let number = scene.ok(&["registration", "issue", "0101"]).trim().to_string();
    let administrator = scene.ok(&["admin", "create-token", "--division", "市民課", "--admin"]).trim().to_string();
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    let smtp = SmtpProcess::start();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata = {data:?}\npublic_url = \"https://oshirase.example.jp\"\n\
         contact = \"市民総合窓口課 043-245-5111\"\n\n\
         [line]\nbase_url = {url:?}\nchannel_access_token = {TOKEN:?}\nchannel_secret = {SECRET:?}\n\n\
         [mail]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"plain\"\n\
         from = \"千葉市 おしらせ <oshirase@city.example.jp>\"\n",
        data = scene.data(),
        url = emulator.base_url,
        port = smtp.port,
    );
    let config = scene.write("etc", "oshirase.toml", &config).join("oshirase.toml");
    let server = scene.serve_config(&config);
    let base_url = server.base_url.clone();
    let client = reqwest::blocking::Client::new();
    let set = client
        .put(format!("{}/emulator/webhook", emulator.base_url))
        .json(&json!({ "url": format!("{base_url}/webhook/line"), "channel_secret": SECRET }))
        .send()
        .unwrap();
    assert!(set.status().is_success());

    act(&emulator, json!({ "type": "follow" }));
    assert!(act(&emulator, json!({ "type": "text", "text": number }))[0].contains("登録が完了しました"));
    let address = "hanako.chiba@example.jp";
    let sent = act(&emulator, json!({ "type": "text", "text": address }));
    assert!(sent[0].contains("確認コードをメールでお送りしました"), "{sent:?}");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let mail = mailparse::parse_mail(messages[0].1.as_bytes()).unwrap();
    let body = mail.get_body().unwrap();
    println!("e-mail to {}:\n{body}", messages[0].0);
    assert_eq!(messages[0].0, address);
    let code = body.lines().find_map(|line| line.strip_prefix("確認コード: ")).unwrap().trim().to_string();
    let confirmed = act(&emulator, json!({ "type": "text", "text": code }));
    assert!(confirmed[0].contains("メールアドレスを確認しました"), "{confirmed:?}");

    // An application staff reject: the applicant is pushed a short note with the contact.
    act_as(&emulator, APPLICANT, json!({ "type": "follow" }));
    let link = act_as(&emulator, APPLICANT, json!({ "type": "postback", "data": "action=apply" }))[0].clone();
    let token = link
        .split_whitespace()
        .find_map(|word| word.strip_prefix("https://oshirase.example.jp/apply/"))
        .unwrap()
        .to_string();
    let submitted = client
        .post(format!("{base_url}/apply/{token}"))
        .form(&[("name", "山田 太郎"), ("birth_date", "1970-01-01"), ("address", "千葉市中央区1-1")])
        .send()
        .unwrap();
    assert!(submitted.status().is_success());
    let pending: Value = client
        .get(format!("{base_url}/admin/applications"))
        .bearer_auth(&administrator)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = pending[0]["id"].as_i64().unwrap();
    let rejected = client
        .post(format!("{base_url}/admin/applications/{id}/reject"))
        .bearer_auth(&administrator)
        .json(&json!({ "reason": "該当する住民記録なし" }))
        .send()
        .unwrap();
    assert!(rejected.status().is_success());
    wait_until("the rejection's push", || emulator.inboxes().get(APPLICANT).is_some_and(|inbox| inbox.len() == 3));
    let inbox = &emulator.inboxes()[APPLICANT];
    println!("pushed to the applicant: {}", inbox[2]);
    assert!(
        inbox[2].contains("市民総合窓口課 043-245-5111")
            && !inbox[2].contains("山田")
            && !inbox[2].contains("住民記録"),
        "{inbox:?}"
    );
}
