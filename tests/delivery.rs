//! Delivery under faults, with the real binary against a real emulator process: whatever
//! LINE answers, every due notice is seen exactly once by its resident.

use crate::harness::{EmulatorProcess, Scene, TOKEN};
use serde_json::{Value, json};

const TODAY: &str = "2026-11-21";
/// Households in the town: in even ones a baby has reached 生後3月 (first infant checkup),
/// in odd ones a child 生後12月 (MR 1期). Only parents register. In the first half, each
/// child was born on a day of its own, so each message has a deadline of its own and is
/// pushed alone; in the second half, the children of each program share a birthday, so
/// their parents' identical messages go out together in one multicast per program.
const HOUSEHOLDS: usize = 24;
/// 30 % of requests fail: 10 % 500, 10 % 429, 5 % delivered but answered too late, 5 % slow.
const FAULTS: [&str; 12] = [
    "--fault-500",
    "0.1",
    "--fault-429",
    "0.1",
    "--fault-timeout",
    "0.05",
    "--fault-slow",
    "0.05",
    "--fault-timeout-ms",
    "1000",
    "--fault-slow-ms",
    "50",
];
/// A client that waits 300 ms, and retries that start after 10–20 ms.
const RUN_OPTIONS: [&str; 6] = ["--line-timeout-ms", "300", "--retry-first-delay-ms", "20", "--retry-attempts", "20"];

fn parent(household: usize) -> String {
    format!("U{:032x}", household + 1)
}

/// The town, registered, and the phrase each parent's message must contain.
fn town() -> (Scene, Vec<(String, &'static str)>) {
    let scene = Scene::with_programs(&["infant-checkup", "vaccine-mr"]);
    let mut residents = String::from("宛名番号,世帯番号,氏名,生年月日,性別,続柄,行政区\n");
    let mut expected = Vec::new();
    for household in 0..HOUSEHOLDS {
        // A child born 2025-11-21 turned one on the 20th: MR's 1期 is open, and the second
        // infant checkup closed that day (「満1歳に達しない」 up to and including the day
        // before the birthday), so each parent is due exactly one message.
        let (birth, phrase) = if household % 2 == 0 {
            ("2026-08-22", "1回目の乳児健康診査")
        } else {
            ("2025-11-21", "麻しん風しん(MR)ワクチン1期")
        };
        let days_earlier = if household < HOUSEHOLDS / 2 { household as i32 / 2 + 1 } else { 0 };
        let birth = oshirase_core::Day::parse_iso(birth).unwrap().add_days(-days_earlier);
        residents.push_str(&format!(
            "{household:02}01,H{household:02},市民 \
             親{household},1990-01-01,女,世帯主,中央区\n"
        ));
        residents.push_str(&format!(
            "{household:02}02,H{household:02},市民 \
             子{household},{birth},女,子,中央区\n"
        ));
        expected.push((parent(household), phrase));
    }
    let folder = scene.write("export", "residents.csv", &residents);
    scene.ok(&["import", folder.to_str().unwrap()]);
    for household in 0..HOUSEHOLDS {
        scene.ok(&["register", &format!("{household:02}01"), &parent(household)]);
    }
    (scene, expected)
}

/// The requests one run makes when nothing fails: a push per child born on a day of its
/// own, and one multicast per program for the rest.
const REQUESTS: usize = HOUSEHOLDS / 2 + 2;

/// Every parent saw exactly one message, with the right words, and the emulator accepted
/// exactly one request per push or multicast: retries that found their message already
/// delivered were answered 409 and recorded nothing.
fn check_seen_exactly_once(emulator: &EmulatorProcess, expected: &[(String, &str)], journal: &std::path::Path) {
    let inboxes = emulator.inboxes();
    let mut failures = Vec::new();
    for (user, phrase) in expected {
        let messages = inboxes.get(user).cloned().unwrap_or_default();
        if messages.len() != 1 || !messages[0].contains(phrase) {
            failures.push(format!("{user}: expected one message with {phrase:?}, got {messages:?}"));
        }
    }
    assert_eq!(inboxes.len(), expected.len(), "{inboxes:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let mut recipients: Vec<usize> = emulator.recipients_per_request().into_values().collect();
    recipients.sort();
    let mut expected_recipients = vec![1; HOUSEHOLDS / 2];
    expected_recipients.extend([HOUSEHOLDS / 4, HOUSEHOLDS / 4]);
    assert_eq!(recipients, expected_recipients);
    assert_eq!(std::fs::read_to_string(journal).unwrap().lines().count(), REQUESTS);
}

/// The arguments of one `oshirase run` that waits up to `linger_ms` for its retries.
fn run_arguments<'a>(emulator: &'a EmulatorProcess, linger_ms: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--date",
        TODAY,
        "--line-base-url",
        &emulator.base_url,
        "--line-token",
        TOKEN,
        "--retry-linger-ms",
        linger_ms,
    ];
    args.extend(RUN_OPTIONS);
    args
}

/// One `oshirase run`, which waits up to `linger_ms` for its retries to fall due.
fn run(scene: &Scene, emulator: &EmulatorProcess, linger_ms: &str) -> Value {
    serde_json::from_str(scene.ok(&run_arguments(emulator, linger_ms)).trim()).expect("run prints one JSON report")
}

#[test]
fn with_30_percent_faults_and_an_outage_every_due_notice_is_seen_exactly_once() {
    let (scene, expected) = town();
    let journal = scene.directory.path().join("line.jsonl");
    let mut args = FAULTS.to_vec();
    args.extend(["--fault-seed", "1"]);
    let emulator = EmulatorProcess::start_with(&journal, &args);

    // LINE is down when the day's run starts: nothing is accepted, nothing is lost.
    let faults = emulator.faults()["faults"].clone();
    emulator.set_faults(json!({ "down_ms": 600_000 }));
    let down = run(&scene, &emulator, "0");
    assert_eq!(down["queued"], HOUSEHOLDS, "{down}");
    assert!(down["sent"]["requests"].as_u64().unwrap() >= REQUESTS as u64, "{down}");
    assert_eq!(
        (&down["sent"]["sent"], &down["sent"]["failed"], &down["sent"]["waiting"]),
        (&json!(0), &json!(0), &json!(HOUSEHOLDS)),
        "{down}"
    );

    // LINE comes back with 30 % of faults; runs go on until nothing is left.
    emulator.set_faults(faults);
    let mut reports = vec![down];
    while reports.len() < 6 && reports.last().unwrap()["sent"]["waiting"] != 0 {
        reports.push(run(&scene, &emulator, "3000"));
    }
    assert_eq!(
        reports.last().unwrap()["sent"]["waiting"],
        0,
        "still waiting after {} runs: {reports:?}",
        reports.len()
    );
    assert!(reports.iter().all(|report| report["sent"]["failed"] == 0), "{reports:?}");

    let injected = emulator.faults()["injected"].clone();
    for kind in ["error_500", "error_429", "timeout", "slow"] {
        assert!(injected[kind].as_u64().unwrap() > 0, "no {kind} was injected: {injected}");
    }

    check_seen_exactly_once(&emulator, &expected, &journal);
    let requests: u64 = reports.iter().map(|report| report["sent"]["requests"].as_u64().unwrap()).sum();
    eprintln!(
        "fault test: {} runs, {requests} requests for {HOUSEHOLDS} messages, faults injected after the \
         outage {injected}",
        reports.len()
    );
}

/// How many times the sender is killed.
const CRASHES: u64 = 16;

#[test]
fn a_sender_killed_at_any_moment_still_delivers_every_notice_exactly_once() {
    let (scene, expected) = town();
    let journal = scene.directory.path().join("line.jsonl");
    // Every request is held 150 ms before the emulator handles it. Each run is killed
    // 0–180 ms after its first request reached the emulator: before LINE accepted
    // anything, or after it accepted but before the sender recorded the answer (the
    // dangerous moment), or between. A run that finds nothing to send is not killed.
    let emulator = EmulatorProcess::start_with(&journal, &["--fault-slow", "1", "--fault-slow-ms", "150"]);
    let requests_seen = || emulator.faults()["injected"]["slow"].as_u64().unwrap();
    let mut killed_while_running = 0;
    for crash in 0..CRASHES {
        let seen_before = requests_seen();
        let mut sender = scene
            .command(&run_arguments(&emulator, "0"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("cannot start oshirase run");
        while sender.try_wait().unwrap().is_none() {
            if requests_seen() > seen_before {
                std::thread::sleep(std::time::Duration::from_millis(crash * 12));
                sender.kill().unwrap(); // SIGKILL: no chance to clean up.
                killed_while_running += 1;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        sender.wait().unwrap();
    }
    // Once everything is out, runs end before the kill; until then every kill hits.
    assert!(killed_while_running >= 6, "only {killed_while_running} of {CRASHES} kills hit a running sender");

    // The survivors' work is finished by ordinary runs.
    let mut reports = Vec::new();
    while reports.len() < 4 && reports.last().is_none_or(|report: &Value| report["sent"]["waiting"] != 0) {
        reports.push(run(&scene, &emulator, "3000"));
    }
    assert!(reports.iter().all(|report| report["sent"]["failed"] == 0), "{reports:?}");
    check_seen_exactly_once(&emulator, &expected, &journal);
    eprintln!(
        "crash test: {killed_while_running} of {CRASHES} kills hit a running sender, then {} ordinary runs",
        reports.len()
    );
}
