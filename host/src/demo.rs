//! `oshirase demo`: a synthetic city, the bundled programs, today's run delivered to the
//! embedded LINE emulator, and a page that shows who received what and why. The emulator's
//! phones also talk to the server's LINE webhook, so the chat can be tried from them.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use oshirase_sdk::Day;

use rusqlite::OptionalExtension;

use crate::channel::line::{LineClient, LineConfig};
use crate::chat::ChatSettings;
use crate::schedule::{Scheduler, SendWindow};
use crate::emulator::{Emulator, WebhookTarget};
use crate::webhook::Webhook;
use crate::import::{ImportOptions, import_directory};
use crate::service::Service;
use crate::web::{AppState, EMULATOR_PATH};

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
}

pub async fn demo(options: DemoOptions) -> Result<DemoSummary> {
    let service = Service::open(&options.data_directory, &options.programs).await?;
    let (residents, programs) = prepare_city(&service, &options).await?;

    let emulator = Emulator::with_journal(DEMO_TOKEN, options.data_directory.join("line-emulator.jsonl"))?;
    let listener = tokio::net::TcpListener::bind(options.address).await.with_context(|| format!("cannot listen on {} (choose another with --port)", options.address))?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let line = LineConfig::new(format!("http://{address}{EMULATOR_PATH}"), DEMO_TOKEN);
    // The demo has no mail server: its chat says e-mail is not offered.
    let chat_channels = crate::channel::Channels { line: LineClient::new(line.clone())?, mail: None };
    let settings = ChatSettings { public_url: Some(format!("http://{address}")), contact: Some("千葉市 市民総合窓口課 043-245-5111".into()) };
    let webhook = Webhook::with_worker(DEMO_SECRET, settings, service.database.clone(), chat_channels)?;
    emulator.set_webhook(WebhookTarget { url: format!("http://{address}/webhook/line"), channel_secret: DEMO_SECRET.into() });
    let state = AppState { service: service.clone(), emulator: Some(emulator), webhook: Some(webhook) };
    let channels = crate::channel::Channels { line: LineClient::new(line.clone())?, mail: None };
    let server = tokio::spawn(crate::run(state, None, listener, async {
        let _ = stopped.await;
    }));

    let report = service.run_day(options.today, &channels, &crate::retry::RetryPolicy::default()).await?;
    let summary = DemoSummary { residents, programs, notices: report.runs.iter().map(|run| run.notices).sum(), delivered: report.sent.sent };
    if options.exit_after_run {
        let _ = stop.send(());
        server.await??;
        return Ok(summary);
    }
    println!("oshirase demo: {} residents, {} programs, {} notices for {}, {} delivered", summary.residents, summary.programs, summary.notices, options.today, summary.delivered);
    println!("who received what, and why:  http://{address}/");
    println!("the residents' phones:       http://{address}{EMULATOR_PATH}/");
    let password = demo_administrator(&service).await?;
    println!("the admin console:           http://{address}/console/  (sign in as admin, password {password})");
    if let Some((resident, number)) = try_number(&service).await? {
        println!("to try the chat: on the phones page, befriend the account as a new user and send {number} (resident {resident})");
    }
    println!("press Ctrl-C to stop");
    // From now on the scheduler carries out what staff reserve in the console (after the
    // day's run, so that only one sender works the outbox); the demo sends at any hour.
    let all_day = SendWindow::new("00:00".parse().expect("a time of day"), "24:00".parse().expect("a time of day")).expect("a valid window");
    let scheduler = Scheduler::with_channels(service.clone(), channels, crate::retry::RetryPolicy::default(), all_day);
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

/// Gives the demo's console an administrator, `admin`, with a new password each start.
async fn demo_administrator(service: &Service) -> Result<String> {
    let password = crate::admin::accounts::generate_password();
    let user = crate::admin::accounts::NewUser {
        login: "admin".into(),
        display_name: "デモ管理者".into(),
        password: password.clone(),
        role: crate::admin::Role::Administrator,
        division: "情報政策課".into(),
        programs: Vec::new(),
    };
    service
        .database
        .write(move |connection| {
            connection.execute("DELETE FROM staff_sessions WHERE user_id IN (SELECT id FROM staff_users WHERE login = 'admin')", [])?;
            connection.execute("DELETE FROM staff_users WHERE login = 'admin'", [])?;
            crate::admin::accounts::create_user(connection, &user, "demo")
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
                     WHERE NOT EXISTS (SELECT 1 FROM registrations g WHERE g.resident_id = r.resident_id) ORDER BY r.key LIMIT 1",
                    [],
                    |row| row.get(0),
                )
                .optional()?;
            resident.map(|resident| Ok((resident.clone(), crate::chat::number::issue(connection, &resident, 1, "demo")?))).transpose()
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
            if crate::snapshot::active(connection)?.is_none() {
                let city = crate::synth::generate(size, seed, today, &export, crate::synth::FileEncoding::Utf8)?;
                let options = ImportOptions { actor: "demo".into(), source: "synthetic city".into(), keep_generations: 3, max_shrink_percent: None };
                import_directory(connection, &export, &options)?;
                let transaction = connection.transaction()?;
                for registration in &city.registrations {
                    let now = crate::database::now_text();
                    let consent = registration.tax_consent.then_some(now.as_str());
                    transaction.execute(
                        "INSERT OR IGNORE INTO registrations (resident_id, line_user_id, registered_at, tax_consent_at) VALUES (?1, ?2, ?3, ?4)",
                        (&registration.resident_id, &registration.line_user_id, &now, consent),
                    )?;
                }
                transaction.commit()?;
            }
            let residents = crate::snapshot::active_resident_count(connection)? as usize;
            let programs = crate::registry::active_versions(connection)?.len();
            Ok((residents, programs))
        })
        .await
}
