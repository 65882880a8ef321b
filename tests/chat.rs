//! The residents' chat with the real binary: staff issue a registration number with the
//! CLI, `oshirase serve` answers the LINE webhook, and a real emulator process plays LINE
//! and the resident's phone (its users' side signs each event as LINE does and waits for
//! the bot's reply); the day's run then pushes the notice the resident registered for.

#[path = "harness.rs"]
mod harness;

use harness::{EmulatorProcess, Scene, TOKEN};
use serde_json::{Value, json};

const SECRET: &str = "end-to-end-channel-secret";
const MOTHER: &str = "U00000000000000000000000000000001";

/// A mother (0101) whose baby (0102) is four months old today.
fn town() -> Scene {
    let today = oshirase::service::today_in_japan();
    let scene = Scene::with_programs(&["infant-checkup"]);
    let residents = format!("宛名番号,世帯番号,氏名,生年月日,性別,続柄\n0101,H01,千葉 花子,1994-05-01,女,世帯主\n0102,H01,千葉 陽葵,{},女,子\n", today.add_months_clamped(-4));
    let folder = scene.write("export", "residents.csv", &residents);
    scene.ok(&["import", folder.to_str().unwrap()]);
    scene
}

/// The resident does something in the chat; returns the bot's replies (texts).
fn act(emulator: &EmulatorProcess, action: Value) -> Vec<String> {
    let answer: Value = reqwest::blocking::Client::new().post(format!("{}/emulator/users/{MOTHER}/events", emulator.base_url)).json(&action).send().unwrap().json().unwrap();
    assert_eq!(answer["webhook_status"], 200, "{answer}");
    answer["replies"].as_array().unwrap().iter().map(|reply| reply["text"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_resident_links_by_number_in_the_chat_and_receives_the_notice() {
    let scene = town();
    let number = scene.ok(&["registration", "issue", "0101"]).trim().to_string();
    assert_eq!(number.len(), 13, "{number}");
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    let server = scene.serve(&["--line-secret", SECRET, "--line-token", TOKEN, "--line-base-url", &emulator.base_url]);
    let webhook = format!("{}/webhook/line", server.base_url);
    let set = reqwest::blocking::Client::new().put(format!("{}/emulator/webhook", emulator.base_url)).json(&json!({ "url": webhook, "channel_secret": SECRET })).send().unwrap();
    assert!(set.status().is_success());

    assert!(act(&emulator, json!({ "type": "follow" }))[0].contains("友だち追加ありがとうございます"));
    assert!(act(&emulator, json!({ "type": "text", "text": number }))[0].contains("登録が完了しました"));
    assert!(act(&emulator, json!({ "type": "postback", "data": "action=consent&value=no" }))[0].contains("税情報は使いません"));

    // A request not signed with the channel secret is refused.
    let body = json!({ "destination": MOTHER, "events": [] }).to_string();
    let forged = reqwest::blocking::Client::new().post(&webhook).header("x-line-signature", oshirase::webhook::signature(b"not-the-secret", body.as_bytes())).body(body).send().unwrap();
    assert_eq!(forged.status(), 401);

    let today = oshirase::service::today_in_japan().to_string();
    let report: Value = serde_json::from_str(scene.ok(&["run", "--date", &today, "--line-base-url", &emulator.base_url, "--line-token", TOKEN]).trim()).unwrap();
    assert_eq!(report["sent"]["sent"], 1, "{report}");
    let inbox = &emulator.inboxes()[MOTHER];
    assert!(inbox.last().unwrap().contains("1回目の乳児健康診査"), "{inbox:?}");
    assert_eq!(inbox.len(), 4, "three replies and one notice: {inbox:?}");
}

#[test]
fn the_webhook_benchmark_receives_and_processes_every_event() {
    let scene = Scene::new();
    let work = scene.directory.path().join("bench");
    let output = scene.ok(&["bench", "webhook", "--events", "60", "--events-per-request", "4", "--repetitions", "1", "--json", "--work", work.to_str().unwrap()]);
    let report: Value = serde_json::from_str(output.trim()).unwrap();
    assert_eq!(report["events"], 60, "{report}");
    for timing in ["received", "processed"] {
        let seconds = report[timing]["seconds"].as_array().unwrap();
        assert!(seconds.len() == 1 && seconds[0].as_f64().unwrap() > 0.0, "{report}");
    }
}
