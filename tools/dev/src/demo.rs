//! `oshirase-dev demo`: a synthetic city, the bundled programs, today's run delivered to
//! the embedded LINE emulator, and a page that shows who received what and why, in front
//! of the product's own router. The emulator's phones also talk to the server's LINE
//! webhook, so the chat can be tried from them.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use oshirase_sdk::Day;

use rusqlite::OptionalExtension;

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use line_emulator::{Emulator, PHONE_STYLE, WebhookTarget};
use oshirase_core::channel::line::{LineClient, LineConfig};
use oshirase_core::chat::ChatSettings;
use oshirase_core::chat::webhook::Webhook;
use oshirase_core::import::{ImportOptions, import_directory};
use oshirase_core::schedule::SendWindow;
use oshirase_core::service::Service;
use oshirase_server::Scheduler;
use oshirase_server::web::{AppError, AppState};

/// Where the demo mounts its LINE emulator.
const EMULATOR_PATH: &str = "/line-emulator";

/// The token the demo's own emulator accepts; it guards nothing real.
const DEMO_TOKEN: &str = "oshirase-demo-token";
/// The channel secret between the demo's emulator and its webhook; it guards nothing real.
const DEMO_SECRET: &str = "oshirase-demo-channel-secret";

pub struct DemoOptions {
    pub data_directory: PathBuf,
    /// The bundled programs to install, all when empty.
    pub programs: Vec<String>,
    pub residents: usize,
    pub seed: u64,
    pub today: Day,
    pub address: SocketAddr,
    pub exit_after_run: bool,
}

/// The demo's one-line summary.
#[derive(Debug, serde::Serialize)]
pub struct DemoSummary {
    pub residents: usize,
    pub programs: usize,
    pub notices: usize,
    pub delivered: usize,
    /// LINE requests the day's sending took, the users they reached, and the messages LINE
    /// counts against the monthly quota for them (one per user a request reaches).
    pub line_requests: usize,
    pub line_recipients: usize,
    pub line_messages_counted: u64,
    /// The next export's draw (`synthetic_city::write_later_export`): residents found
    /// eligible this fiscal year, told or not, and how many of each took it up by then.
    pub later_told: usize,
    pub later_told_took_up: usize,
    pub later_not_told: usize,
    pub later_not_told_took_up: usize,
}

pub async fn demo(options: DemoOptions) -> Result<DemoSummary> {
    let service = Service::open(&options.data_directory, oshirase_bundled::PROGRAMS, &options.programs).await?;
    let (residents, programs) = prepare_city(&service, &options).await?;

    let emulator = Emulator::with_journal(DEMO_TOKEN, options.data_directory.join("line-emulator.jsonl"))?;
    let listener = tokio::net::TcpListener::bind(options.address)
        .await
        .with_context(|| format!("cannot listen on {} (choose another with --port)", options.address))?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let emulator_url = format!("http://{address}{EMULATOR_PATH}");
    let line = LineConfig { data_base_url: emulator_url.clone(), ..LineConfig::new(emulator_url, DEMO_TOKEN) };
    // The demo has no mail server: its chat says e-mail is not offered.
    let chat_channels =
        oshirase_core::channel::Channels { line: LineClient::new(line.clone())?, mail: None, public_url: None };
    let settings = ChatSettings {
        public_url: Some(format!("http://{address}")),
        contact: Some("千葉市 市民総合窓口課 043-245-5111".into()),
    };
    let webhook = Webhook::with_worker(DEMO_SECRET, settings, service.database.clone(), chat_channels)?;
    emulator.set_webhook(WebhookTarget {
        url: format!("http://{address}/webhook/line"),
        channel_secret: DEMO_SECRET.into(),
    });
    // The demo is reached over plain HTTP on this machine: its cookie cannot be `Secure`.
    let state = AppState { webhook: Some(webhook), secure_cookies: false, ..AppState::new(service.clone()) };
    let limits = oshirase_server::limits::ServerLimits::default();
    // The demo's own pages come first; everything else is the product's router.
    let router = Router::new()
        .route("/", get(overview))
        .with_state(service.clone())
        .nest_service(EMULATOR_PATH, emulator.router())
        .fallback_service(oshirase_server::web::app_with(state, &limits));
    // Cards link through the demo's own `/r/{token}`, so the console counts their openings.
    let channels = oshirase_core::channel::Channels {
        line: LineClient::new(line.clone())?,
        mail: None,
        public_url: Some(format!("http://{address}")),
    };
    let server = tokio::spawn(oshirase_server::run(router, None, listener, limits, async {
        let _ = stopped.await;
    }));

    // The chat's rich menu under every phone, as `oshirase line rich-menu` installs it.
    match std::fs::read(oshirase_core::postcards::DEFAULT_FONT) {
        Ok(font) => {
            let image = oshirase_core::channel::rich_menu::draw_image(&font)?;
            oshirase_core::channel::rich_menu::install(&channels.line, image).await?;
        }
        Err(error) => eprintln!(
            "no rich menu on the phones: its labels need IPAexGothic at {} ({error}; apt install \
             fonts-ipaexfont-gothic)",
            oshirase_core::postcards::DEFAULT_FONT
        ),
    }
    let report = service.run_day(options.today, &channels, &oshirase_core::retry::RetryPolicy::default()).await?;
    let drawn = later_export(&service, &options).await?;
    let summary = DemoSummary {
        residents,
        programs,
        notices: report.runs.iter().map(|run| run.notices).sum(),
        delivered: report.sent.sent,
        line_requests: report.sent.requests,
        line_recipients: emulator.inboxes().len(),
        line_messages_counted: channels.line.monthly_quota().await?.used,
        later_told: drawn.told,
        later_told_took_up: drawn.told_took_up,
        later_not_told: drawn.not_told,
        later_not_told_took_up: drawn.not_told_took_up,
    };
    if options.exit_after_run {
        let _ = stop.send(());
        server.await??;
        return Ok(summary);
    }
    println!(
        "oshirase demo: {} residents, {} programs, {} notices for {}, {} delivered to {} LINE users, {} messages \
         counted against LINE's quota",
        summary.residents,
        summary.programs,
        summary.notices,
        options.today,
        summary.delivered,
        summary.line_recipients,
        summary.line_messages_counted
    );
    println!("who received what, and why:  http://{address}/");
    println!("the residents' phones:       http://{address}{EMULATOR_PATH}/");
    let password = demo_administrator(&service).await?;
    println!("the admin console:           http://{address}/console/  (sign in as admin, password {password})");
    if let Some((resident, number)) = try_number(&service).await? {
        println!(
            "to try the chat: on the phones page, befriend the account as a new user and send {number} \
             (resident {resident})"
        );
    }
    println!("press Ctrl-C to stop");
    // From now on the scheduler carries out what staff reserve in the console (after the
    // day's run, so that only one sender works the outbox); the demo sends at any hour.
    let all_day = SendWindow::new("00:00".parse().expect("a time of day"), "24:00".parse().expect("a time of day"))
        .expect("a valid window");
    let scheduler =
        Scheduler::with_channels(service.clone(), channels, oshirase_core::retry::RetryPolicy::default(), all_day);
    let stop_scheduler = tokio_util::sync::CancellationToken::new();
    let scheduling = tokio::spawn({
        let stop_scheduler = stop_scheduler.clone();
        async move { scheduler.run(stop_scheduler).await }
    });
    tokio::signal::ctrl_c().await?;
    stop_scheduler.cancel();
    scheduling.await?;
    let _ = stop.send(());
    server.await??;
    Ok(summary)
}

/// How many days after the first export the demo's second one is made.
const LATER_EXPORT_DAYS: i32 = 30;
/// The follow-up the demo measures uptake over: from the notice to the second export for a
/// window opened at the start of the fiscal year is longer than a month.
const DEMO_FOLLOW_UP_DAYS: u32 = 365;

/// The city's next export, `LATER_EXPORT_DAYS` after the day's run, in which some of the
/// residents the programs found eligible this fiscal year — more of those told that day —
/// got their vaccination or screening or began a benefit; imported through the real
/// importer, and uptake measured with it, so the console's 効果 page has numbers. Done
/// once: a data directory that already has two exports is left as it is.
async fn later_export(service: &Service, options: &DemoOptions) -> Result<synthetic_city::Drawn> {
    let (today, seed) = (options.today, options.seed);
    let fiscal_year_start = Day::fiscal_year_start(today.fiscal_year());
    let plugins = service.plugins.clone();
    let candidates = service
        .database
        .read(move |connection| {
            let exports: i64 = connection.query_row("SELECT count(*) FROM snapshots", [], |row| row.get(0))?;
            if exports > 1 {
                return Ok(None);
            }
            let told: std::collections::HashSet<(String, String)> = connection
                .prepare(
                    "SELECT DISTINCT n.program, n.resident_id FROM notices n JOIN deliveries d ON d.notice_id = n.id
                     WHERE d.state = 'sent'",
                )?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut candidates = Vec::new();
            for version in oshirase_core::registry::active_versions(connection)? {
                let fields = &version.manifest.fields;
                let record = if fields.iter().any(|field| field == "Immunizations") {
                    synthetic_city::RecordFile::Immunizations
                } else if fields.iter().any(|field| field == "Checkups") {
                    synthetic_city::RecordFile::Checkups
                } else if fields.iter().any(|field| field == "Receipts") {
                    synthetic_city::RecordFile::Receipts
                } else {
                    continue;
                };
                let mut seen = std::collections::HashSet::new();
                for notice in oshirase_core::evaluate::dry_run(connection, &plugins, &version, today)? {
                    let opened = Day::parse_iso(&notice.send_on).is_some_and(|day| fiscal_year_start <= day);
                    if !opened || notice.resident_id.starts_with("self:") || !seen.insert(notice.resident_id.clone()) {
                        continue;
                    }
                    let told = told.contains(&(version.program.clone(), notice.resident_id.clone()));
                    candidates.push(synthetic_city::Candidate {
                        resident_id: notice.resident_id,
                        program: version.program.clone(),
                        record,
                        told,
                    });
                }
            }
            Ok(Some(candidates))
        })
        .await?;
    let Some(candidates) = candidates else { return Ok(synthetic_city::Drawn::default()) };
    let (earlier, later) = (service.data_directory.join("city"), service.data_directory.join("city-later"));
    let later_day = today.add_days(LATER_EXPORT_DAYS);
    let drawn = synthetic_city::write_later_export(&earlier, &later, today, later_day, &candidates, seed)?;
    service
        .database
        .write(move |connection| {
            let options = ImportOptions {
                actor: "demo".into(),
                source: "synthetic city, a month later".into(),
                keep_generations: 3,
                max_shrink_percent: None,
                mapping: None,
            };
            import_directory(connection, &later, &options)?;
            Ok(())
        })
        .await?;
    let plugins = service.plugins.clone();
    let query = oshirase_core::uptake::UptakeQuery {
        program: None,
        from: fiscal_year_start,
        to: today,
        within_days: DEMO_FOLLOW_UP_DAYS,
    };
    let report = service
        .database
        .read(move |connection| Ok(oshirase_core::uptake::compute(connection, &plugins, &query)?))
        .await?;
    service.database.write(move |connection| oshirase_core::uptake::store(connection, &report, "demo")).await?;
    Ok(drawn)
}

/// Gives the demo's console an administrator, `admin`, with a new password each start.
async fn demo_administrator(service: &Service) -> Result<String> {
    let password = oshirase_core::accounts::generate_password();
    let user = oshirase_core::accounts::NewUser {
        login: "admin".into(),
        display_name: "デモ管理者".into(),
        role: oshirase_core::accounts::Role::Administrator,
        division: "情報政策課".into(),
        programs: Vec::new(),
    };
    let hash = oshirase_core::accounts::hash_password(&password)?;
    service
        .database
        .write(move |connection| {
            connection.execute(
                "DELETE FROM staff_sessions WHERE user_id IN (SELECT id FROM staff_users WHERE login = 'admin')",
                [],
            )?;
            connection.execute("DELETE FROM staff_users WHERE login = 'admin'", [])?;
            Ok(oshirase_core::accounts::create_user(connection, &user, &hash, "demo")?)
        })
        .await?;
    Ok(password)
}

/// Issues a registration number for the first resident of the snapshot who is not
/// registered, so that linking can be tried from a new phone.
async fn try_number(service: &Service) -> Result<Option<(String, String)>> {
    service
        .database
        .write(|connection| {
            let resident: Option<String> = connection
                .query_row(
                    "SELECT r.resident_id FROM residents r JOIN snapshots s ON s.id = r.snapshot_id AND s.active = 1
                     WHERE NOT EXISTS (SELECT 1 FROM registrations g WHERE g.resident_id = r.resident_id) ORDER BY r.key
                     LIMIT 1",
                    [],
                    |row| row.get(0),
                )
                .optional()?;
            resident
                .map(|resident| {
                    Ok((resident.clone(), oshirase_core::chat::number::issue(connection, &resident, 1, "demo")?))
                })
                .transpose()
        })
        .await
}

/// Generates the synthetic city's export files and imports them through the real
/// importer the first time; returns (residents, programs).
async fn prepare_city(service: &Service, options: &DemoOptions) -> Result<(usize, usize)> {
    let (size, seed, today) = (options.residents, options.seed, options.today);
    let export = service.data_directory.join("city");
    service
        .database
        .write(move |connection| {
            if oshirase_core::snapshot::active(connection)?.is_none() {
                // The layout towns' standard systems export, with the mapping file naming
                // its wards beside it, so that the demo imports what a town would.
                let format = synthetic_city::ExportFormat::standard(synthetic_city::FileEncoding::Utf8);
                let city = synthetic_city::generate(size, seed, today, &export, format)?;
                let options = ImportOptions {
                    actor: "demo".into(),
                    source: "synthetic city".into(),
                    keep_generations: 3,
                    max_shrink_percent: None,
                    mapping: None,
                };
                import_directory(connection, &export, &options)?;
                synthetic_city::insert_registrations(
                    connection,
                    &city.registrations,
                    &oshirase_core::time::now_text(),
                )?;
            }
            let residents = oshirase_core::snapshot::active_resident_count(connection)? as usize;
            let programs = oshirase_core::registry::active_versions(connection)?.len();
            Ok((residents, programs))
        })
        .await
}

struct Row {
    resident: String,
    ward: String,
    age: String,
    program: String,
    occasion: String,
    reason: String,
    address: String,
    state: String,
    text: String,
}

/// The first 9 characters of a LINE id or an e-mail address, as the overview shows it:
/// characters, not bytes, since an address may be written in any script.
fn short_address(address: &str) -> String {
    address.chars().take(9).collect()
}

/// Months for small children, years for everyone else.
fn age_text(birth: oshirase_sdk::Day, today: oshirase_sdk::Day) -> String {
    match birth.months_on(today) {
        months @ 0..24 => format!("{months}か月"),
        _ => format!("{}歳", birth.age_on(today)),
    }
}

/// `GET /` of the demo only: which residents received which notices and why, newest
/// first — names, reasons and LINE ids, which the product never shows without a session
/// (`serve` answers `/` with the console).
async fn overview(State(service): State<Service>) -> Result<Html<String>, AppError> {
    let (rows, counts) = service
        .database
        .read(|connection| {
            let snapshot = oshirase_core::snapshot::active(connection)?.unwrap_or(0);
            let today = oshirase_core::time::today_in_japan();
            let mut statement = connection.prepare(
                "SELECT r.name, r.ward, r.birth_day, v.manifest, n.occasion, nr.text, d.address, d.state, d.text
                 FROM deliveries d JOIN notices n ON n.id = d.notice_id
                 LEFT JOIN notice_reasons nr ON nr.id = n.reason_id
                 LEFT JOIN residents r ON r.snapshot_id = ?1 AND r.resident_id = n.resident_id
                 LEFT JOIN programs p ON p.code = n.program LEFT JOIN plugin_versions v ON v.id = p.active_version
                 ORDER BY d.id DESC LIMIT 1000",
            )?;
            let rows = statement
                .query_map([snapshot], |row| {
                    let manifest: Option<String> = row.get(3)?;
                    let manifest: Option<oshirase_core::registry::Manifest> =
                        manifest.and_then(|text| serde_json::from_str(&text).ok());
                    let occasion: String = row.get(4)?;
                    let birth: Option<i32> = row.get(2)?;
                    Ok(Row {
                        resident: row.get::<_, Option<String>>(0)?.unwrap_or_default(),
                        ward: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        age: birth.map(|birth| age_text(oshirase_sdk::Day(birth), today)).unwrap_or_default(),
                        program: manifest.as_ref().map(|manifest| manifest.name.clone()).unwrap_or_default(),
                        occasion: manifest
                            .as_ref()
                            .and_then(|manifest| manifest.occasion(&occasion))
                            .map_or(occasion.clone(), |found| found.title.clone()),
                        reason: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                        address: row.get(6)?,
                        state: row.get(7)?,
                        text: row.get(8)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let counts: (i64, i64, i64) = connection.query_row(
                "SELECT (SELECT resident_count FROM snapshots WHERE id = ?1), (SELECT count(*) FROM registrations
                     WHERE active = 1), (SELECT count(*) FROM notices)",
                [snapshot],
                |row| Ok((row.get::<_, Option<i64>>(0)?.unwrap_or(0), row.get(1)?, row.get(2)?)),
            )?;
            Ok((rows, counts))
        })
        .await?;
    let phones = format!(
        "<a href=\"{EMULATOR_PATH}/\">LINE \
         エミュレーターの画面(利用者ごとのスマートフォン)</a>"
    );
    let mut table = String::new();
    for row in &rows {
        let escape = |text: &str| html_escape::encode_text(text).into_owned();
        table.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}<br><small>{}</small></td><td>{}</td><td>\
             <a href=\"{EMULATOR_PATH}/#{}\">{}</a></td><td>{}</td><td class=\"bubble\">{}</td></tr>",
            escape(&row.resident),
            escape(&row.ward),
            escape(&row.age),
            escape(&row.program),
            escape(&row.occasion),
            escape(&row.reason),
            escape(&row.address),
            escape(&short_address(&row.address)),
            escape(&row.state),
            escape(&row.text),
        ));
    }
    Ok(Html(format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>oshirase</title>\
         <style>{PHONE_STYLE} table{{border-collapse:collapse;background:white}} td,th{{border:1px solid \
         #ccc;padding:.3em .5em;font-size:.85em;vertical-align:top}} td.bubble{{max-width:28em}}</style></head>\
         <body><h1>oshirase — あなたが使える制度のお知らせ</h1>\
         <p>住民 {} 人(うち LINE 登録 {} 人)、登録者あてのお知らせ {} 件、送信 {} 件。{phones}</p>\
         <table><tr><th>住民(お知らせの対象)</th><th>区</th><th>年齢</th><th>制度 / 時期</th>\
         <th>理由(送信されません)</th><th>送り先 LINE</th><th>状態</th><th>送ったメッセージ</th>\
         </tr>{table}</table></body></html>",
        counts.0,
        counts.1,
        counts.2,
        rows.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_shortened_by_characters_whatever_its_script() {
        assert_eq!(short_address("U0123456789abcdef0123456789abcdef"), "U01234567");
        assert_eq!(short_address("やまだ.たろう@例え.jp"), "やまだ.たろう@例");
        assert_eq!(short_address("a@b.jp"), "a@b.jp");
    }
}
