//! The admin console in a real browser: Chromium, driven through ChromeDriver (WebDriver),
//! against a real `oshirase serve --config` process and a real LINE emulator process.
//! Staff sign in, upload a plugin, dry-run a program, pause and resume it, reword a
//! message, and reserve a send that the emulator then receives; the administrator
//! broadcasts a message to one category, and asks a survey that a parent answers by
//! tapping its card on the emulator's phone, its tally following in the console. Every
//! page is screenshotted; with `OSHIRASE_SCREENSHOTS=DIR` the screenshots are kept there.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{EmulatorProcess, Scene, ServerProcess, TOKEN, babies_town, config, parent, wait_until};
use fantoccini::{Client, ClientBuilder, Locator};

/// The phrase staff put into the infant checkup's first message.
const PHRASE: &str = "ブラウザから編集した文面です";
/// The booking page staff give the first checkup's card in the browser.
const BOOKING: &str = "https://yoyaku.example.jp/infant-checkup";
const PASSWORD: &str = "correct horse battery staple";
/// The channel secret the emulator signs webhook events with, and the server's public address.
const SECRET: &str = "console-test-secret";
const PUBLIC_URL: &str = "https://oshirase.example.jp";
/// The LINE user who applies from the chat.
const APPLICANT: &str = "U0000000000000000000000000000a001";
/// The survey the administrator broadcasts.
const SURVEY: &str = "子育て支援アンケートにご協力ください https://example.jp/survey";

/// A ChromeDriver process on a free port, killed when dropped.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    /// Starts Debian's chromedriver and returns once it says it listens.
    fn start() -> ChromeDriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Its own process group, so that the browsers it starts are killed with it even
        // when a failed test never closes its session.
        let mut child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "cannot start chromedriver: install the Debian packages chromium and chromium-driver (.ci/run does)",
            );
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = lines.by_ref().map_while(Result::ok).any(|line| line.contains("started successfully"));
        assert!(started, "chromedriver did not start");
        // The rest of its output is drained so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        ChromeDriver { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Headless Chromium with a profile of its own, and without the background connections
/// this machine's closed network refuses.
async fn browser(driver: &ChromeDriver, profile: &Path) -> Client {
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--window-size=1280,1100", format!("--user-data-dir={}", profile.display())]
        }
    });
    let capabilities = capabilities.as_object().unwrap().clone().into_iter().collect();
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("cannot start Chromium through chromedriver")
}

/// Creates a staff account through the command line, with the test's password.
fn create_user(scene: &Scene, login: &str, role: &str, programs: &str) {
    let mut command = scene.command(&[
        "admin",
        "create-user",
        "--login",
        login,
        "--name",
        "試験 職員",
        "--role",
        role,
        "--division",
        "健康支援課",
        "--password-stdin",
    ]);
    if !programs.is_empty() {
        command.args(["--programs", programs]);
    }
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{PASSWORD}\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "create-user failed: {}", String::from_utf8_lossy(&output.stdout));
}

/// A built plugin of the catalogue, from the build's output beside the binary under test.
fn built_plugin(crate_name: &str) -> PathBuf {
    let target = Path::new(env!("CARGO_BIN_EXE_oshirase-under-test")).parent().unwrap().parent().unwrap();
    let path = target.join("plugins/wasm32-wasip2/release").join(format!("{crate_name}.wasm"));
    assert!(path.exists(), "{} is missing: the host's build script builds the plugins", path.display());
    path
}

/// Waits for an element and returns its text. A page redraws itself after an action, so
/// an element found may be gone when its text is read: then it is looked up again.
async fn text_of(client: &Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match element(client, css).await.text().await {
            Ok(text) => return text,
            Err(error) => assert!(Instant::now() < deadline, "cannot read {css}: {error}"),
        }
    }
}

/// Waits until the element's text contains `expected`.
async fn wait_for_text(client: &Client, css: &str, expected: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = text_of(client, css).await;
        if text.contains(expected) {
            return text;
        }
        if Instant::now() > deadline {
            let page = text_of(client, "body").await;
            panic!("{css} never said {expected:?}; it says {text:?}; the page says:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for an element to be drawn: pages draw themselves after they load. A search made
/// while the page navigates (signing in leads to the page asked for) is aborted rather than
/// waiting for the next page, so it is made again until the element is there.
async fn element(client: &Client, css: &str) -> fantoccini::elements::Element {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.wait().at_most(Duration::from_secs(5)).for_element(Locator::Css(css)).await {
            Ok(element) => return element,
            Err(error) if Instant::now() > deadline => panic!("no element {css}: {error}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn click(client: &Client, css: &str) {
    element(client, css).await.click().await.unwrap();
}

/// Saves a screenshot of the page as `name.png` in `directory`.
async fn screenshot(client: &Client, directory: &Path, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
    std::fs::write(directory.join(format!("{name}.png")), png).unwrap();
}

/// What a browser test runs against: the emulator, the town's server answering its
/// webhook (so that residents act in the chat, and apply through `PUBLIC_URL`'s form),
/// Chromium, and where the screenshots go.
struct Stage {
    emulator: EmulatorProcess,
    server: ServerProcess,
    client: Client,
    shots: PathBuf,
    /// Kept to the end of the test: dropping it kills the browsers it started.
    _driver: ChromeDriver,
}

async fn stage(scene: &Scene) -> Stage {
    let emulator = EmulatorProcess::start(&scene.data().join("journal.jsonl"));
    let config = config(scene, &emulator, ("00:00", "24:00"));
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace("[server]\n", &format!("[server]\npublic_url = {PUBLIC_URL:?}\n"))
        .replace("[line]\n", &format!("[line]\nchannel_secret = {SECRET:?}\n"));
    std::fs::write(&config, text).unwrap();
    let server = scene.serve_config(&config);
    let webhook = serde_json::json!({ "url": format!("{}/webhook/line", server.base_url), "channel_secret": SECRET });
    let set = tokio::task::block_in_place(|| {
        reqwest::blocking::Client::new()
            .put(format!("{}/emulator/webhook", emulator.base_url))
            .json(&webhook)
            .send()
            .unwrap()
    });
    assert!(set.status().is_success());
    let shots =
        std::env::var_os("OSHIRASE_SCREENSHOTS").map(PathBuf::from).unwrap_or_else(|| scene.data().join("screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    let driver = ChromeDriver::start();
    let client = browser(&driver, &scene.data().join("chromium-profile")).await;
    Stage { emulator, server, client, shots, _driver: driver }
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_publish_dry_run_pause_reword_and_reserve_a_send_in_a_real_browser() {
    const HOUSEHOLDS: usize = 3;
    let scene = babies_town(HOUSEHOLDS);
    create_user(&scene, "kenko", "division", "infant-checkup,vaccine-mr");
    create_user(&scene, "kanri", "administrator", "");
    let Stage { emulator, server, client, shots, _driver } = stage(&scene).await;
    let base = server.base_url.clone();

    // Signed out, a page sends staff to sign in; a wrong password is refused.
    client.goto(&format!("{base}/console/programs")).await.unwrap();
    assert!(client.current_url().await.unwrap().as_str().contains("/console/login?next=programs"));
    element(&client, "#login").await.send_keys("kenko").await.unwrap();
    element(&client, "#password").await.send_keys("wrong password!").await.unwrap();
    click(&client, "#sign-in button").await;
    wait_for_text(&client, "#sign-in .notice", "wrong login or password").await;
    screenshot(&client, &shots, "login").await;
    element(&client, "#password").await.clear().await.unwrap();
    element(&client, "#password").await.send_keys(PASSWORD).await.unwrap();
    click(&client, "#sign-in button").await;
    wait_for_text(&client, "tr[data-program=infant-checkup] .state", "版 1 で配信中").await;

    // Upload a plugin with its cases: validated, accepted and active.
    element(&client, "#upload-code").await.send_keys("vaccine-mr").await.unwrap();
    element(&client, "#upload-wasm").await.send_keys(built_plugin("vaccine_mr").to_str().unwrap()).await.unwrap();
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/vaccine-mr/cases.yaml").canonicalize().unwrap();
    element(&client, "#upload-cases").await.send_keys(cases.to_str().unwrap()).await.unwrap();
    click(&client, "#upload button").await;
    wait_for_text(&client, "#status", "を受け付けました(有効)").await;
    wait_for_text(&client, "tr[data-program=vaccine-mr] .state", "で配信中").await;

    // Dry-run: counts by occasion, ward and age band, and no names for division staff.
    click(&client, "button[data-dry-run=infant-checkup]").await;
    let total = wait_for_text(&client, "#dry-run-total", "お知らせ").await;
    assert!(total.contains(&format!("お知らせ {HOUSEHOLDS} 件")), "{total}");
    let dry_run = text_of(&client, "#dry-run").await;
    assert!(
        dry_run.contains("中央区") && dry_run.contains("0歳") && !dry_run.contains("市民 子"),
        "counts without names: {dry_run}"
    );
    screenshot(&client, &shots, "programs").await;

    // Pause, then resume: the program's state follows.
    click(&client, "button[data-pause=infant-checkup]").await;
    wait_for_text(&client, "tr[data-program=infant-checkup] .state", "一時停止中").await;
    click(&client, "button[data-rollback=infant-checkup]").await;
    wait_for_text(&client, "tr[data-program=infant-checkup] .state", "版 1 で配信中").await;

    // Reword the first checkup's message: an unknown placeholder is flagged in the preview
    // and refused by the server; a good wording is previewed as the card LINE draws and
    // saved, and so is the booking page the card's 「予約・申請」 opens.
    client.goto(&format!("{base}/console/messages")).await.unwrap();
    let first_occasion = "textarea[data-occasion]";
    element(&client, first_occasion).await;
    // The first program in the list is drawn at once; another is chosen only if needed,
    // so that no redraw replaces the editor found below.
    let chosen = client.execute("return document.getElementById('message-program').value;", vec![]).await.unwrap();
    assert_eq!(chosen, serde_json::json!("infant-checkup"), "the programs are listed by code");
    wait_for_text(&client, "#message-editor", "1回目").await;
    let editor = element(&client, first_occasion).await;
    editor.clear().await.unwrap();
    editor.send_keys("【{program}】{name}さんへ").await.unwrap();
    wait_for_text(&client, "section.occasion .count", "使えない差し込み: name").await;
    click(&client, "section.occasion button[data-save]").await;
    wait_for_text(&client, "section.occasion .notice", "unknown placeholder {name}").await;
    editor.clear().await.unwrap();
    editor
        .send_keys(&format!(
            "【{{program}}】{PHRASE}。\
             {{deadline}}までにどうぞ。{{contact}}"
        ))
        .await
        .unwrap();
    let card = wait_for_text(&client, "section.occasion .card", PHRASE).await;
    assert!(
        card.contains("令和9年3月31日") && !card.contains("{deadline}") && card.contains("配信の設定"),
        "the preview fills the placeholders on a card: {card}"
    );
    click(&client, "section.occasion button[data-save]").await;
    wait_for_text(&client, "section.occasion .notice", "保存しました").await;
    let booking = element(&client, "section.occasion input[data-booking]").await;
    booking.send_keys(BOOKING).await.unwrap();
    wait_for_text(&client, "section.occasion .card .card-button.primary", "予約・申請").await;
    click(&client, "section.occasion button[data-save-links]").await;
    wait_for_text(&client, "section.occasion .notice", "リンクを保存しました").await;
    screenshot(&client, &shots, "messages").await;

    // Reserve a send a few seconds ahead (Japan time): the scheduler runs the program then
    // and the emulator receives the reworded message for every parent.
    client.goto(&format!("{base}/console/sending")).await.unwrap();
    element(&client, "#send-form").await;
    let at = (chrono::Utc::now() + chrono::Duration::seconds(4))
        .with_timezone(&oshirase_core::time::japan())
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    client
        .execute(
            &format!(
                "document.getElementById('send-program').value = 'infant-checkup'; \
                 document.getElementById('send-at').value = '{at}';"
            ),
            vec![],
        )
        .await
        .unwrap();
    click(&client, "#send-form button").await;
    wait_for_text(&client, "#status", "に送ります").await;
    // The row is there whether the scheduler has carried it out yet or not: a slow
    // browser may take longer than the few seconds ahead it was reserved.
    element(&client, "tr[data-reservation] .state").await;
    screenshot(&client, &shots, "sending").await;
    // The emulator's inboxes are read with a blocking client, outside the browser's runtime.
    tokio::task::block_in_place(|| {
        wait_until("every parent's reworded message", || {
            emulator.inboxes().values().filter(|messages| messages.iter().any(|text| text.contains(PHRASE))).count()
                == HOUSEHOLDS
        })
    });
    // Each parent's card opens the booking page staff gave it, through the server's
    // `/r/{token}`, which counts the opening.
    let booking = format!(
        "{PUBLIC_URL}/r/{}",
        oshirase_core::link_opens::token(
            "infant-checkup",
            "first",
            oshirase_core::link_opens::Button::Booking,
            BOOKING
        )
    );
    let inboxes = tokio::task::block_in_place(|| emulator.inboxes_json());
    let booking_buttons = inboxes
        .as_object()
        .unwrap()
        .values()
        .filter(|messages| {
            messages.as_array().unwrap().iter().any(|message| {
                message["flex"]["footer"]["contents"][0]["action"]
                    == serde_json::json!({
                        "type": "uri", "label": "予約・申請", "uri": booking
                    })
            })
        })
        .count();
    assert_eq!(booking_buttons, HOUSEHOLDS, "{inboxes}");
    // The phones draw the card with its buttons, and under it the rich menu.
    let base_url = emulator.base_url.clone();
    tokio::task::block_in_place(|| {
        scene.ok(&[
            "line",
            "rich-menu",
            "--line-base-url",
            &base_url,
            "--line-data-base-url",
            &base_url,
            "--line-token",
            TOKEN,
        ])
    });
    client.goto(&format!("{}/", emulator.base_url)).await.unwrap();
    wait_for_text(&client, ".phone .flex-bubble .flex-button.primary", "予約・申請").await;
    element(&client, ".phone .rich-menu img").await;
    screenshot(&client, &shots, "phone-card").await;
    // A day of several notices is one carousel, as the outbox builds it.
    let cards: Vec<oshirase_core::channel::card::Card> = ["1回目(生後2か月)", "1回目(生後5〜8か月)"]
        .iter()
        .map(|title| oshirase_core::channel::card::Card {
            code: "vaccine-5in1".into(),
            occasion: title.to_string(),
            program: "予防接種".into(),
            title: title.to_string(),
            deadline: "令和9年3月31日".into(),
            details_url: Some("https://www.city.chiba.jp/".into()),
            booking_url: None,
            choices: Vec::new(),
        })
        .collect();
    let texts = ["五種混合の1回目を受けられます。", "BCGを受けられます。"];
    let carousel = oshirase_core::channel::card::flex_message(&[(&cards[0], texts[0]), (&cards[1], texts[1])]);
    let pushed = tokio::task::block_in_place(|| {
        reqwest::blocking::Client::new()
            .post(format!("{}/v2/bot/message/push", emulator.base_url))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "to": "U00000000000000000000000000000c0c", "messages": [carousel] }))
            .send()
            .unwrap()
            .status()
    });
    assert!(pushed.is_success(), "{pushed}");
    client.refresh().await.unwrap();
    wait_for_text(&client, ".phone .carousel .flex-bubble:nth-child(2)", "BCG").await;
    screenshot(&client, &shots, "phone-carousel").await;
    client.goto(&format!("{base}/console/sending")).await.unwrap();
    wait_for_text(&client, "tr[data-reservation] .state", "実行済み").await;

    // The dashboard, deliveries and audit log show what happened.
    client.goto(&format!("{base}/console/dashboard")).await.unwrap();
    let sent = wait_for_text(&client, "#kpi-sent-total", "3").await;
    assert!(sent.ends_with(&HOUSEHOLDS.to_string()), "{sent}");
    element(&client, "#deliveries-chart rect.sent").await;
    screenshot(&client, &shots, "dashboard").await;
    client.goto(&format!("{base}/console/deliveries")).await.unwrap();
    wait_for_text(&client, "#content table", "infant-checkup").await;
    screenshot(&client, &shots, "deliveries").await;
    // The next export (the same residents, no new checkup yet) lets staff measure uptake:
    // the parents told today are the told group, and no group is large enough to show.
    let export = scene.directory.path().join("export");
    scene.ok(&["import", export.to_str().unwrap()]);
    client.goto(&format!("{base}/console/uptake")).await.unwrap();
    wait_for_text(&client, "#status", "まだ").await;
    let today = oshirase_core::time::today_in_japan();
    for (name, value) in [("from", today.add_months_clamped(-6).to_string()), ("to", today.to_string())] {
        let field = element(&client, &format!("#measure-uptake input[name={name}]")).await;
        // A date field takes what is typed in the locale's order; its value is set instead.
        client
            .execute("arguments[0].value = arguments[1]", vec![serde_json::to_value(&field).unwrap(), value.into()])
            .await
            .unwrap();
    }
    click(&client, "#measure-uptake button").await;
    let measured = wait_for_text(&client, "#content table", "乳児一般健康診査").await;
    assert!(measured.contains("期間全体") && measured.contains("<10"), "small groups are not shown: {measured}");
    wait_for_text(&client, "#status", "測定しました").await;
    element(&client, "a#uptake-csv").await;
    element(&client, "svg.uptake-chart").await;
    screenshot(&client, &shots, "uptake").await;
    client.goto(&format!("{base}/console/audit")).await.unwrap();
    let audit = wait_for_text(&client, "#content table", "set-wording").await;
    assert!(audit.contains("user:kenko") && audit.contains("reserve-send") && audit.contains("disable"), "{audit}");
    screenshot(&client, &shots, "audit").await;
    client.goto(&format!("{base}/console/registrations")).await.unwrap();
    wait_for_text(&client, "#content", "管理者だけが扱えます").await;

    // Signing out ends the session: the pages send to sign-in again.
    click(&client, "#sign-out").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.current_url().await.unwrap().as_str().contains("/console/login") {
        assert!(Instant::now() < deadline, "signing out did not lead to the sign-in page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.goto(&format!("{base}/console/dashboard")).await.unwrap();
    assert!(client.current_url().await.unwrap().as_str().contains("/console/login"));

    // The administrator sees the registrations and broadcasts a survey to those who
    // receive health notices: every parent gets it.
    element(&client, "#login").await.send_keys("kanri").await.unwrap();
    element(&client, "#password").await.send_keys(PASSWORD).await.unwrap();
    click(&client, "#sign-in button").await;
    wait_for_text(&client, "#kpi-sent-total", &HOUSEHOLDS.to_string()).await;
    // The administrator's dashboard also shows the records in use and what their import
    // warned of.
    wait_for_text(&client, "#content", &format!("{} 人)", HOUSEHOLDS * 2)).await;
    wait_for_text(&client, "#content", "取り込み時の注意はありません").await;
    // A resident asks for the form in the chat and applies in the browser; the
    // administrator approves it beside the matching record and prints the postcard; the
    // applicant is told in the chat that a postcard is on its way.
    let link = tokio::task::block_in_place(|| {
        let client = reqwest::blocking::Client::new();
        let act = |event: serde_json::Value| -> serde_json::Value {
            client
                .post(format!("{}/emulator/users/{APPLICANT}/events", emulator.base_url))
                .json(&event)
                .send()
                .unwrap()
                .json()
                .unwrap()
        };
        act(serde_json::json!({ "type": "follow" }));
        act(serde_json::json!({ "type": "text", "text": "申し込み" }))["replies"][0]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    let token = link
        .split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{PUBLIC_URL}/apply/")))
        .unwrap_or_else(|| panic!("no form link in {link}"))
        .to_owned();
    client.goto(&format!("{base}/apply/{token}")).await.unwrap();
    element(&client, "input[name=name]").await.send_keys("市民 親1").await.unwrap();
    client.execute("document.querySelector('input[name=birth_date]').value = '1990-01-01';", vec![]).await.unwrap();
    element(&client, "input[name=address]").await.send_keys("千葉市中央区千葉港1-1").await.unwrap();
    screenshot(&client, &shots, "apply").await;
    click(&client, "form button").await;
    wait_for_text(&client, "body", "受け付けました").await;
    client.goto(&format!("{base}/console/registrations")).await.unwrap();
    let row = wait_for_text(&client, "tr[data-application]", "市民 親1").await;
    assert!(row.contains("0101"), "the application is shown beside the matching record: {row}");
    screenshot(&client, &shots, "registrations").await;
    click(&client, "tr[data-application] button").await;
    wait_for_text(&client, "#status", "を承認し、はがきを印刷待ちにしました").await;
    wait_for_text(&client, "#content", "印刷待ち 1 枚").await;
    click(&client, "#print-postcards").await;
    let printed = wait_for_text(&client, "#status", "1 枚を postcards-").await;
    let file =
        printed.split_whitespace().find(|word| word.starts_with("postcards-")).unwrap().trim_end_matches("にしました");
    wait_for_text(&client, "#postcard-files", file).await;
    assert!(
        std::fs::read(scene.data().join("postcards").join(file)).unwrap().starts_with(b"%PDF"),
        "the batch is a PDF in the data directory"
    );
    tokio::task::block_in_place(|| {
        wait_until("the approval's push", || {
            emulator.inboxes().get(APPLICANT).is_some_and(|inbox| inbox.iter().any(|text| text.contains("はがき")))
        })
    });
    client.goto(&format!("{base}/console/sending")).await.unwrap();
    element(&client, "#broadcast-title").await.send_keys("健康アンケート").await.unwrap();
    element(&client, "#broadcast-text").await.send_keys(SURVEY).await.unwrap();
    client.execute("document.getElementById('broadcast-category').value = 'Health';", vec![]).await.unwrap();
    click(&client, "#broadcast-form button").await;
    wait_for_text(&client, "#status", "に送ります").await;
    tokio::task::block_in_place(|| {
        wait_until("every parent's survey", || {
            emulator.inboxes().values().filter(|messages| messages.iter().any(|text| text == SURVEY)).count()
                == HOUSEHOLDS
        })
    });

    // The administrator takes a division's access back: the account is disabled, and its
    // sessions end with it.
    client.goto(&format!("{base}/console/accounts")).await.unwrap();
    wait_for_text(&client, "tr[data-login=kenko]", "有効").await;
    click(&client, "button[data-disable=kenko]").await;
    wait_for_text(&client, "#status", "kenko を停止し").await;
    wait_for_text(&client, "tr[data-login=kenko]", "停止中").await;
    screenshot(&client, &shots, "accounts").await;
    let refused = tokio::task::block_in_place(|| {
        reqwest::blocking::Client::new()
            .post(format!("{base}/admin/session"))
            .json(&serde_json::json!({ "login": "kenko", "password": PASSWORD }))
            .send()
            .unwrap()
    });
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    client.close().await.unwrap();
}

/// The question the administrator asks in the console, and its two choices.
const QUESTION: &str = "乳児健診の予約はしやすかったですか。";
const CHOICES: [&str; 2] = ["はい", "いいえ"];

#[tokio::test(flavor = "multi_thread")]
async fn a_survey_written_in_the_console_is_answered_on_the_phone_and_tallied_live() {
    const HOUSEHOLDS: usize = 2;
    let scene = babies_town(HOUSEHOLDS);
    create_user(&scene, "kanri", "administrator", "");
    // The server answers the webhook: a tap on the survey's card is a postback to it.
    let Stage { emulator, server, client, shots, _driver } = stage(&scene).await;
    let base = server.base_url.clone();

    // The administrator writes the question, its choices and its close, to everyone, now.
    client.goto(&format!("{base}/console/surveys")).await.unwrap();
    element(&client, "#login").await.send_keys("kanri").await.unwrap();
    element(&client, "#password").await.send_keys(PASSWORD).await.unwrap();
    click(&client, "#sign-in button").await;
    element(&client, "#survey-question").await.send_keys(QUESTION).await.unwrap();
    for (index, choice) in CHOICES.iter().enumerate() {
        element(&client, &format!("input[data-choice='{index}']")).await.send_keys(choice).await.unwrap();
    }
    let closes = (chrono::Utc::now() + chrono::Duration::days(1))
        .with_timezone(&oshirase_core::time::japan())
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    client.execute(&format!("document.getElementById('survey-closes').value = '{closes}';"), vec![]).await.unwrap();
    click(&client, "#survey-form button").await;
    wait_for_text(&client, "#status", "を作りました").await;
    wait_for_text(&client, "#survey-total", "回答 0 件").await;
    tokio::task::block_in_place(|| {
        wait_until("every parent's survey", || {
            emulator.inboxes().values().filter(|messages| messages.iter().any(|text| text.contains(QUESTION))).count()
                == HOUSEHOLDS
        })
    });

    // The first parent taps 「はい」 on the card on their phone, and is thanked for it.
    let parent = parent(0);
    client.goto(&format!("{}/", emulator.base_url)).await.unwrap();
    let yes =
        format!("button.flex-button[data-user='{parent}'][data-action*='action=survey'][data-action*='answer=0']");
    click(&client, &yes).await;
    wait_for_text(&client, "body", "「はい」で受け付けました").await;
    screenshot(&client, &shots, "phone-survey").await;

    // The console's tally shows the answer, and follows a change while it is open.
    client.goto(&format!("{base}/console/surveys")).await.unwrap();
    click(&client, "tr[data-survey] button[data-show-survey]").await;
    wait_for_text(&client, "#survey-total", "回答 1 件").await;
    wait_for_text(&client, "tr[data-choice-count='0']", "はい 1").await;
    let inbox = tokio::task::block_in_place(|| emulator.inboxes_json());
    let data = inbox[&parent]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|message| {
            let buttons = message["flex"]["footer"]["contents"].as_array()?;
            buttons.iter().find(|button| button["action"]["label"] == CHOICES[1])?["action"]["data"].as_str()
        })
        .unwrap_or_else(|| panic!("no 「いいえ」 button on {parent}'s card: {inbox}"))
        .to_owned();
    let reply = tokio::task::block_in_place(|| {
        reqwest::blocking::Client::new()
            .post(format!("{}/emulator/users/{parent}/events", emulator.base_url))
            .json(&serde_json::json!({ "type": "postback", "data": data, "label": CHOICES[1] }))
            .send()
            .unwrap()
            .json::<serde_json::Value>()
            .unwrap()
    });
    assert!(reply["replies"][0]["text"].as_str().unwrap().contains("「はい」から「いいえ」に変えました"), "{reply}");
    wait_for_text(&client, "tr[data-choice-count='1']", "いいえ 1").await;
    wait_for_text(&client, "tr[data-choice-count='0']", "はい 0").await;
    wait_for_text(&client, "#survey-total", "回答 1 件").await;
    screenshot(&client, &shots, "surveys").await;

    // The CSV is counts and anonymous rows: no LINE user id.
    let csv = client
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             fetch(document.getElementById('survey-csv').href).then((response) => response.text()).then(done);",
            vec![],
        )
        .await
        .unwrap();
    let csv = csv.as_str().unwrap();
    assert!(csv.contains("2,\"いいえ\",1") && csv.contains("選択肢番号,選択肢,回答日"), "{csv}");
    assert!(!csv.contains(&parent), "{csv}");
    client.close().await.unwrap();
}

/// A division makes a program without code: in the console it names it, sets conditions
/// (mothers in their thirties, every 年度), sees the dry run counted by age and ward change
/// with the conditions, writes the wording beside its card, and publishes. The program is
/// then one of the programs page's own, active, and its dry run there counts
/// the same residents.
#[tokio::test(flavor = "multi_thread")]
async fn a_program_made_from_conditions_in_the_console_is_dry_run_and_published() {
    const HOUSEHOLDS: usize = 3;
    const CODE: &str = "checkup-mothers";
    let scene = babies_town(HOUSEHOLDS);
    create_user(&scene, "kanri", "administrator", "");
    let Stage { server, client, shots, _driver, .. } = stage(&scene).await;
    let base = server.base_url.clone();

    client.goto(&format!("{base}/console/conditions")).await.unwrap();
    element(&client, "#login").await.send_keys("kanri").await.unwrap();
    element(&client, "#password").await.send_keys(PASSWORD).await.unwrap();
    click(&client, "#sign-in button").await;
    for (field, value) in [
        ("#new-code", CODE),
        ("#new-name", "母親の健康診査"),
        ("#new-contact", "千葉市 健康支援課 043-238-9930"),
        ("#new-source-url", "https://www.city.chiba.jp/"),
    ] {
        element(&client, field).await.send_keys(value).await.unwrap();
    }
    let set_conditions = |conditions: &[(&str, &str)]| {
        conditions
            .iter()
            .map(|(name, value)| format!("document.querySelector(\"[data-condition='{name}']\").value = '{value}';"))
            .collect::<String>()
    };
    // Every 年度, all year round, so that the test holds whatever today is.
    let mothers = set_conditions(&[
        ("age-counted", "満年齢"),
        ("age-from", "30"),
        ("age-to", "39"),
        ("sex", "女性"),
        ("season-opens", "04-01"),
        ("season-closes", "03-31"),
    ]);
    client.execute(&mothers, vec![]).await.unwrap();
    click(&client, "#conditions-try").await;
    wait_for_text(&client, "#dry-run-total", &format!("お知らせ {HOUSEHOLDS} 件")).await;
    let counted = text_of(&client, "#conditions-dry-run").await;
    assert!(counted.contains("中央区") && counted.contains("18〜39歳"), "{counted}");

    // The same ages among men: the town's fathers are not in the register, its sons are babies.
    client.execute(&set_conditions(&[("sex", "男性")]), vec![]).await.unwrap();
    click(&client, "#conditions-try").await;
    wait_for_text(&client, "#dry-run-total", "お知らせ 0 件").await;
    client.execute(&set_conditions(&[("sex", "女性")]), vec![]).await.unwrap();
    click(&client, "#conditions-try").await;
    wait_for_text(&client, "#dry-run-total", &format!("お知らせ {HOUSEHOLDS} 件")).await;

    let wording = element(&client, "#new-template").await;
    wording.clear().await.unwrap();
    wording.send_keys("【{program}】今年度の健康診査を無料で受けられます。{deadline}までに受診してください。お問い合わせ: {contact}").await.unwrap();
    wait_for_text(&client, "#conditions-form .card-text", "母親の健康診査】今年度の健康診査").await;
    screenshot(&client, &shots, "conditions").await;
    click(&client, "#conditions-publish").await;
    let published = wait_for_text(&client, "#status", "として公開しました(有効)").await;
    assert!(
        published.contains(&format!("{HOUSEHOLDS} notices for the")),
        "validated on the live snapshot: {published}"
    );

    client.goto(&format!("{base}/console/programs")).await.unwrap();
    wait_for_text(&client, &format!("tr[data-program='{CODE}'] td.state"), "で配信中").await;
    click(&client, &format!("button[data-dry-run={CODE}]")).await;
    wait_for_text(&client, "#dry-run-total", &format!("お知らせ {HOUSEHOLDS} 件")).await;
    wait_for_text(&client, "#dry-run", "市民 親0").await;
    client.close().await.unwrap();
}
