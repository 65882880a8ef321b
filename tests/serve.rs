//! `oshirase serve --config` as a city runs it: the one long-running process evaluates
//! programs on their schedules, queues what is due, sends only inside the send window, and
//! stops on SIGTERM without losing or leaving half-done anything.

use std::time::{Duration, Instant};

use crate::harness::{
    EmulatorProcess, Scene, ServerProcess, SmtpProcess, TOKEN, babies_town, config, parent, wait_until,
};
use chrono::Timelike;
use oshirase_core::time::japan;
use serde_json::json;

/// The phrase of the first infant checkup's message.
const PHRASE: &str = "1回目の乳児健康診査";

/// The babies' town of the harness; the program runs every second, set the way staff
/// set it.
fn town(households: usize) -> Scene {
    let scene = babies_town(households);
    scene.ok(&["schedule", "set", "infant-checkup", "* * * * * *"]);
    scene
}

/// Sends SIGTERM, as systemd does to stop the service, and checks it exits with status 0;
/// returns how long it took to stop.
fn terminate(mut server: ServerProcess) -> Duration {
    let asked = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "serve ended with {status} after SIGTERM");
    asked.elapsed()
}

/// How many deliveries are in each state, and how many due notices have no delivery.
fn outbox(scene: &Scene) -> (serde_json::Value, i64) {
    let database = rusqlite::Connection::open_with_flags(
        scene.data().join("oshirase.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut statement = database.prepare("SELECT state, count(*) FROM deliveries GROUP BY state").unwrap();
    let states: serde_json::Map<String, serde_json::Value> = statement
        .query_map([], |row| Ok((row.get::<_, String>(0)?, json!(row.get::<_, i64>(1)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let undelivered = database
        .query_row(
            "SELECT count(*) FROM notices n WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notice_id = n.id)",
            [],
            |row| row.get(0),
        )
        .unwrap();
    (serde_json::Value::Object(states), undelivered)
}

/// How many runs of the program succeeded.
fn runs(scene: &Scene) -> i64 {
    let database = rusqlite::Connection::open_with_flags(
        scene.data().join("oshirase.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    database.query_row("SELECT count(*) FROM runs WHERE outcome = 'succeeded'", [], |row| row.get(0)).unwrap()
}

#[test]
fn serve_runs_the_schedule_sends_and_stops_on_sigterm_with_nothing_half_done() {
    const HOUSEHOLDS: usize = 20;
    let scene = town(HOUSEHOLDS);
    let journal = scene.directory.path().join("line.jsonl");
    // Every answer takes 300 ms, so the SIGTERM lands while deliveries are being sent.
    let emulator = EmulatorProcess::start_with(&journal, &["--fault-slow", "1", "--fault-slow-ms", "300"]);
    let config = config(&scene, &emulator, ("00:00", "24:00"));

    let server = scene.serve_config(&config);
    wait_until("the first messages", || emulator.inboxes().len() >= 3);
    let stopping = terminate(server);

    let (states, undelivered) = outbox(&scene);
    let (sent, queued) = (states["sent"].as_i64().unwrap_or(0), states["queued"].as_i64().unwrap_or(0));
    assert_eq!(undelivered, 0, "a due notice has no delivery: {states}");
    assert_eq!(sent + queued, HOUSEHOLDS as i64, "every delivery is sent or still queued, none sending: {states}");
    assert!(queued > 0, "the SIGTERM came after everything was sent: {states}");
    let inboxes = emulator.inboxes();
    assert_eq!(inboxes.len() as i64, sent, "LINE saw exactly what is recorded as sent: {inboxes:?} {states}");
    eprintln!("serve stopped {stopping:?} after SIGTERM with {sent} sent and {queued} queued");

    // Started again, it sends what stayed queued, and nobody sees anything twice.
    emulator.set_faults(json!({}));
    let server = scene.serve_config(&config);
    wait_until("every message", || emulator.inboxes().len() == HOUSEHOLDS);
    terminate(server);
    let inboxes = emulator.inboxes();
    let failures: Vec<String> = (0..HOUSEHOLDS)
        .map(parent)
        .filter_map(|user| {
            let messages = inboxes.get(&user).cloned().unwrap_or_default();
            (messages.len() != 1 || !messages[0].contains(PHRASE)).then(|| format!("{user}: {messages:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // LINE accepted one message per parent: the journal counts requests, and a request may
    // be a multicast, so its recipients are what is counted.
    let recipients: usize = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["to"].as_array().unwrap().len())
        .sum();
    assert_eq!(recipients, HOUSEHOLDS);
    assert_eq!(outbox(&scene).0, json!({ "sent": HOUSEHOLDS }));

    let listing = scene.ok(&["schedule", "list"]);
    let columns: Vec<&str> = listing.trim().split('\t').collect();
    assert_eq!(&columns[..3], ["infant-checkup", "* * * * * *", "override"], "{listing}");
    assert!(columns[3].ends_with(" JST") && columns[4].ends_with(" JST"), "{listing}");
}

#[test]
fn programs_due_at_the_same_moment_run_together_on_one_read() {
    let scene = Scene::with_programs(&["infant-checkup", "checkup-18m"]);
    let folder = scene.write(
        "export",
        "residents.csv",
        "宛名番号,世帯番号,氏名,生年月日,性別,続柄,行政区\n0101,H01,市民 親,1990-01-01,女,世帯主,中央区\n",
    );
    scene.ok(&["import", folder.to_str().unwrap()]);
    // The data directory is given its programs when a command first opens them.
    scene.ok(&["plugin", "list"]);
    for program in ["infant-checkup", "checkup-18m"] {
        scene.ok(&["schedule", "set", program, "* * * * * *"]);
    }
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    let server = scene.serve_config(&config(&scene, &emulator, ("00:00", "24:00")));
    wait_until("a run of each program", || runs(&scene) >= 2);
    terminate(server);
    // The first pass recorded both runs before evaluating either: one read served both. One
    // program after the other, the second would start only once the first had finished.
    let database = rusqlite::Connection::open(scene.data().join("oshirase.db")).unwrap();
    let (programs, second_started, first_finished): (String, String, String) = database
        .query_row(
            "SELECT group_concat(program, ' '), max(started_at), min(finished_at)
             FROM (SELECT program, started_at, finished_at FROM runs ORDER BY id LIMIT 2)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert!(programs.contains("infant-checkup") && programs.contains("checkup-18m"), "{programs}");
    assert!(second_started < first_finished, "started {second_started}, yet one finished at {first_finished}");
}

#[test]
fn outside_the_send_window_deliveries_are_queued_and_nothing_is_sent() {
    const HOUSEHOLDS: usize = 3;
    let scene = town(HOUSEHOLDS);
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    // A window that is closed now and stays closed for the next hours.
    let hour = chrono::Utc::now().with_timezone(&japan()).hour();
    let window = if hour < 10 { ("12:00", "23:00") } else { ("00:00", "09:00") };
    let config = config(&scene, &emulator, window);
    // With the channel secret in the file, the same process answers LINE's webhook, and
    // refuses a request LINE did not sign.
    let with_secret = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[retry]", "channel_secret = \"the-channel-secret\"\n\n[retry]");
    let config = scene.write("etc", "with-secret.toml", &with_secret).join("with-secret.toml");

    let server = scene.serve_config(&config);
    let address = server.base_url.clone();
    let unsigned = reqwest::blocking::Client::new()
        .post(format!("{address}/webhook/line"))
        .body(r#"{"destination":"U0","events":[]}"#)
        .send()
        .unwrap();
    assert_eq!(unsigned.status(), reqwest::StatusCode::UNAUTHORIZED);
    // Two runs: the pass that queued the deliveries has decided about sending them.
    wait_until("two runs", || runs(&scene) >= 2);
    terminate(server);
    assert_eq!(outbox(&scene), (json!({ "queued": HOUSEHOLDS }), 0));
    assert!(emulator.inboxes().is_empty(), "{:?}", emulator.inboxes());
}

#[test]
fn with_a_mail_server_residents_who_chose_e_mail_get_it_and_line_refusals_fall_back_to_it() {
    const HOUSEHOLDS: usize = 3;
    let scene = town(HOUSEHOLDS);
    // Parent 0 chose LINE; parent 1 e-mail; parent 2 LINE, with an address for when LINE
    // cannot deliver — and LINE refuses the channel's token, for good.
    scene.ok(&["register", "0101", "--email", "mail-only@example.jp"]);
    scene.ok(&["register", "0201", &parent(2), "--email", "fallback@example.jp", "--channels", "line"]);
    let refused = scene.run(&["register", "0301", "--channels", "mail"]);
    assert!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr)
                .contains("needs the LINE user id or e-mail address it would send to")
    );
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    let smtp = SmtpProcess::start();
    let mut text = std::fs::read_to_string(config(&scene, &emulator, ("00:00", "24:00"))).unwrap();
    text =
        text.replace(&format!("channel_access_token = {TOKEN:?}"), "channel_access_token = \"a-token-line-refuses\"");
    text.push_str(&format!(
        "\n[mail]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\n\
         from = \"千葉市 おしらせ <oshirase@city.example.jp>\"\n",
        smtp.port
    ));
    let config = scene.write("etc", "mail.toml", &text).join("mail.toml");

    let server = scene.serve_config(&config);
    wait_until("two e-mails", || smtp.messages().len() >= 2);
    terminate(server);
    let messages = smtp.messages();
    let mut recipients: Vec<&str> = messages.iter().map(|(to, _)| to.as_str()).collect();
    recipients.sort();
    assert_eq!(recipients, ["fallback@example.jp", "mail-only@example.jp"]);
    assert!(messages.iter().all(|(_, text)| text.contains("Content-Type: text/plain; charset=utf-8")), "{messages:?}");
    assert!(emulator.inboxes().is_empty(), "LINE refused the token, so nothing reached it");
    let (states, _) = outbox(&scene);
    // Parent 0 has LINE only: refused for good, with nothing to fall back to.
    assert_eq!(states, json!({ "sent": 2, "failed-permanent": 2 }), "{states}");
}

/// Every route of the server's table (`host/server/src/web.rs`), with its path parameters filled
/// with plausible values.
fn routed_paths() -> Vec<String> {
    // Each `.route(` is followed, on its line or the next, by the path in quotes.
    include_str!("../host/server/src/web.rs")
        .split(".route(")
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
        .map(|path| {
            path.replace("{code}", "infant-checkup")
                .replace("{occasion}", "first")
                .replace("{id}", "1")
                .replace("{file}", "postcards-1.pdf")
                .replace("{login}", "admin")
                .replace("{token}", "0123456789abcdef")
                .replace("{page}", "deliveries")
        })
        .collect()
}

#[test]
fn serve_answers_nothing_personal_to_anyone_without_a_session() {
    const HOUSEHOLDS: usize = 3;
    let scene = town(HOUSEHOLDS);
    scene.ok(&["admin", "create-user", "--login", "admin", "--name", "管理者", "--role", "administrator"]);
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    let text = std::fs::read_to_string(config(&scene, &emulator, ("00:00", "24:00")))
        .unwrap()
        .replace("[line]", "public_url = \"https://oshirase.example.jp\"\n\n[line]")
        .replace("[retry]", "channel_secret = \"the-channel-secret\"\n\n[retry]");
    let config = scene.write("etc", "public.toml", &text).join("public.toml");
    let server = scene.serve_config(&config);
    let address = server.base_url.clone();
    wait_until("every message", || emulator.inboxes().len() == HOUSEHOLDS);

    // What must never reach anyone without a session: names, LINE ids, reasons, texts.
    let database = rusqlite::Connection::open_with_flags(
        scene.data().join("oshirase.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let column = |query: &str| -> Vec<String> {
        database.prepare(query).unwrap().query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
    };
    let mut personal = column("SELECT name FROM residents");
    personal.extend(column("SELECT line_user_id FROM registrations"));
    personal.extend(column("SELECT text FROM notice_reasons WHERE text <> ''"));
    personal.extend(column("SELECT text FROM deliveries"));
    assert!(personal.len() >= 4 * HOUSEHOLDS, "{personal:?}");

    let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut answered = Vec::new();
    for path in routed_paths() {
        for method in [reqwest::Method::GET, reqwest::Method::POST, reqwest::Method::PUT, reqwest::Method::DELETE] {
            let response = client
                .request(method.clone(), format!("{address}{path}"))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .unwrap();
            let status = response.status();
            let body = response.text().unwrap();
            let leaked: Vec<&String> = personal.iter().filter(|value| body.contains(value.as_str())).collect();
            assert!(leaked.is_empty(), "{method} {path} answered {status} with {leaked:?}");
            answered.push(format!("{method} {path} {status}"));
        }
    }
    // `/` is the console's, not the demo's overview.
    let home = client.get(format!("{address}/")).send().unwrap();
    let location = home.headers()["location"].to_str().unwrap();
    let console = reqwest::Url::parse(&format!("{address}/")).unwrap().join(location).unwrap();
    assert_eq!(console.path(), "/console/dashboard", "{answered:?}");
    terminate(server);
}

#[test]
fn serve_drops_half_sent_requests_and_serves_a_capped_number_of_connections() {
    use std::io::{Read, Write};
    let scene = Scene::with_programs(&["infant-checkup"]);
    let emulator = EmulatorProcess::start(&scene.directory.path().join("line.jsonl"));
    let text = std::fs::read_to_string(config(&scene, &emulator, ("00:00", "24:00")))
        .unwrap()
        .replace("[line]", "header_read_timeout_seconds = 2\nmax_connections = 4\n\n[line]");
    let config = scene.write("etc", "limits.toml", &text).join("limits.toml");
    let server = scene.serve_config(&config);
    let address = server.base_url.clone();
    let socket_address = address.strip_prefix("http://").unwrap().to_owned();

    // Four clients start a request and never finish its headers: they hold every place.
    let mut half_sent: Vec<std::net::TcpStream> = (0..4)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&socket_address).unwrap();
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: oshirase\r\n").unwrap();
            stream
        })
        .collect();
    // A fifth, whole request waits for a place, which the timeout frees.
    let whole = std::thread::spawn({
        let socket_address = socket_address.clone();
        move || {
            let mut stream = std::net::TcpStream::connect(&socket_address).unwrap();
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: oshirase\r\nConnection: close\r\n\r\n").unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        }
    });
    // When the fifth is answered, a half-sent connection was closed first: the server
    // closes one before it takes another.
    let answer = whole.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("ok"), "{answer}");
    let closed_before = half_sent
        .iter()
        .filter(|stream| {
            let mut stream: &std::net::TcpStream = stream;
            stream.set_nonblocking(true).unwrap();
            let mut byte = [0u8; 512];
            let closed = loop {
                match stream.read(&mut byte) {
                    Ok(0) => break true,
                    Ok(_) => continue,
                    Err(error) => break error.kind() != std::io::ErrorKind::WouldBlock,
                }
            };
            stream.set_nonblocking(false).unwrap();
            closed
        })
        .count();
    assert!(closed_before >= 1, "the fifth connection was served while four held every place");
    // And every half-sent request is dropped; none waits forever, none is answered 200.
    for stream in &mut half_sent {
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest);
        assert!(read.is_ok() || read.as_ref().unwrap_err().kind() == std::io::ErrorKind::ConnectionReset, "{read:?}");
        assert!(!String::from_utf8_lossy(&rest).contains("200 OK"), "a half-sent request was answered");
    }
    terminate(server);
}
