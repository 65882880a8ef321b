//! Continuous backup with Litestream, as `deploy/` runs it beside the server. A server
//! and its Litestream killed with SIGKILL under load, the disk lost and the database
//! restored from the replica, loses only the last moment of committed writes and sends
//! nobody anything twice; so does a restore that lacks a whole day's deliveries.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{EmulatorProcess, Scene, TOKEN, babies_town, config, parent, wait_until};

/// A `litestream replicate` process, killed with SIGKILL when dropped.
struct Litestream(Child);

impl Drop for Litestream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `litestream restore` of the configuration's database into `output`; whether it worked.
fn restore(configuration: &Path, database: &Path, output: &Path) -> bool {
    Command::new("litestream")
        .arg("restore")
        .arg("-config")
        .arg(configuration)
        .arg("-o")
        .arg(output)
        .arg(database)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("cannot run litestream: .ci/run installs it")
        .success()
}

impl Litestream {
    /// Starts `litestream replicate` of the scene's database to a file replica, with the
    /// sync interval given (`deploy/litestream.yml` has 1s), and returns once the replica
    /// can be restored; also the configuration's path.
    fn start(scene: &Scene, sync_interval: &str) -> (Litestream, PathBuf) {
        let database = scene.data().join("oshirase.db");
        let replica = scene.directory.path().join("replica");
        let configuration = scene.directory.path().join("litestream.yml");
        std::fs::write(
            &configuration,
            format!(
                "dbs:\n  - path: {}\n    replica:\n      type: file\n      path: {}\n      sync-interval: {sync_interval}\n",
                database.display(),
                replica.display()
            ),
        )
        .unwrap();
        let litestream = Litestream(
            Command::new("litestream")
                .arg("replicate")
                .arg("-config")
                .arg(&configuration)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot start litestream: .ci/run installs it"),
        );
        let probe = scene.directory.path().join("probe.db");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !restore(&configuration, &database, &probe) {
            assert!(Instant::now() < deadline, "litestream made no replica within a minute");
            std::thread::sleep(Duration::from_millis(200));
        }
        std::fs::remove_file(&probe).unwrap();
        (litestream, configuration)
    }
}

/// The disk is lost: the data directory is deleted, and the database restored from the
/// replica into a fresh one at the same place.
fn lose_the_disk_and_restore(scene: &Scene, configuration: &Path) {
    let database = scene.data().join("oshirase.db");
    std::fs::remove_dir_all(scene.data()).unwrap();
    std::fs::create_dir_all(scene.data()).unwrap();
    assert!(restore(configuration, &database, &database), "the replica cannot be restored");
}

/// The parents told other than exactly once.
fn told_twice_or_never(emulator: &EmulatorProcess, households: usize) -> Vec<String> {
    let inboxes = emulator.inboxes();
    (0..households)
        .map(parent)
        .filter_map(|user| {
            let messages = inboxes.get(&user).map_or(0, Vec::len);
            (messages != 1).then(|| format!("{user}: {messages} messages"))
        })
        .collect()
}

/// How long before the kill the first write the restore lacks was answered: how much the
/// replica lagged. The webhook's `200` comes after its events are committed, and the
/// requests went one after another, so what survives must be the first `survived` of them.
fn replication_lag(acknowledged: &[(String, Instant)], survived: &[String], killed: Instant) -> Duration {
    let kept = survived.len();
    assert_eq!(
        survived,
        acknowledged[..kept].iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        "the restored database is not the state of one moment: it kept events out of order"
    );
    acknowledged.get(kept).map_or(Duration::ZERO, |(_, answered)| killed.saturating_duration_since(*answered))
}

#[test]
fn a_server_killed_under_load_and_restored_loses_only_the_last_second_and_sends_nothing_twice() {
    const HOUSEHOLDS: usize = 60;
    const SECRET: &str = "backup-channel-secret";
    let scene = babies_town(HOUSEHOLDS);
    scene.ok(&["schedule", "set", "infant-checkup", "* * * * * *"]);
    // Every answer of LINE takes 100 ms, so the kill lands while deliveries go out.
    let emulator = EmulatorProcess::start_with(
        &scene.directory.path().join("line.jsonl"),
        &["--fault-slow", "1", "--fault-slow-ms", "100"],
    );
    let server_configuration = config(&scene, &emulator, ("00:00", "24:00"));
    let text = std::fs::read_to_string(&server_configuration).unwrap();
    std::fs::write(&server_configuration, text.replace("[line]\n", &format!("[line]\nchannel_secret = {SECRET:?}\n")))
        .unwrap();
    let (litestream, configuration) = Litestream::start(&scene, "1s");
    let server = scene.serve_config(&server_configuration);

    // The load: signed webhook requests one after another, each answered once its event
    // is committed, while the scheduler sends the day.
    let webhook = format!("{}/webhook/line", server.base_url);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load_started = Instant::now();
    let load = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let client = reqwest::blocking::Client::new();
            let mut acknowledged = Vec::new();
            for sequence in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let id = format!("01LOAD{sequence:020}");
                let body = json!({ "destination": "Ubot", "events": [{
                    "type": "unfollow", "mode": "active", "timestamp": 1_700_000_000_000u64 + sequence,
                    "source": { "type": "user", "userId": format!("U{:032x}", 0x10_0000 + sequence) },
                    "webhookEventId": id, "deliveryContext": { "isRedelivery": false }
                }]})
                .to_string();
                let signature = line_emulator::signature(SECRET.as_bytes(), body.as_bytes());
                match client.post(&webhook).header("x-line-signature", signature).body(body).send() {
                    Ok(answer) if answer.status().is_success() => acknowledged.push((id, Instant::now())),
                    Ok(answer) => panic!("the webhook answered {}", answer.status()),
                    Err(_) => break,
                }
            }
            acknowledged
        }
    });
    wait_until("a third of the day's messages", || emulator.inboxes().len() >= HOUSEHOLDS / 3);
    // Writes older than the bound below must be there to be lost.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(load_started.elapsed()));
    // The machine dies: Litestream and the server, SIGKILL, in the same moment.
    let killed = Instant::now();
    drop(litestream);
    drop(server);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acknowledged = load.join().unwrap();
    let told_before = emulator.inboxes().len();
    assert!(told_before < HOUSEHOLDS, "the day was sent before the kill");

    lose_the_disk_and_restore(&scene, &configuration);
    let restored = rusqlite::Connection::open(scene.data().join("oshirase.db")).unwrap();
    let survived: Vec<String> = restored
        .prepare("SELECT webhook_event_id FROM webhook_events WHERE webhook_event_id LIKE '01LOAD%' ORDER BY webhook_event_id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!survived.is_empty(), "the replica kept none of {} writes", acknowledged.len());
    let marked_sent: i64 =
        restored.query_row("SELECT count(*) FROM deliveries WHERE state = 'sent'", [], |row| row.get(0)).unwrap();
    drop(restored);
    let lag = replication_lag(&acknowledged, &survived, killed);
    eprintln!(
        "killed after {} acknowledged writes; the restore kept {} (lag {} ms); LINE had told {told_before}, \
         the restore knew {marked_sent} as sent",
        acknowledged.len(),
        survived.len(),
        lag.as_millis()
    );
    assert!(
        survived.len() > acknowledged.len() / 2,
        "the replica kept too little: {} of {}",
        survived.len(),
        acknowledged.len()
    );
    // One sync interval of 1 s, and the copy's own time on a busy machine.
    assert!(lag <= Duration::from_millis(2000), "writes committed {} ms before the kill were lost", lag.as_millis());

    // Started again on the restored database: it says so, sends what is left, and the
    // deliveries the replica never saw as sent go out under the keys LINE already has.
    emulator.set_faults(json!({}));
    let server = scene.serve_config(&server_configuration);
    wait_until("every parent told", || emulator.inboxes().len() == HOUSEHOLDS);
    wait_until("every delivery marked sent", || {
        let database = rusqlite::Connection::open(scene.data().join("oshirase.db")).unwrap();
        database
            .query_row("SELECT count(*) FROM deliveries WHERE state = 'sent'", [], |row| row.get::<_, i64>(0))
            .unwrap()
            == HOUSEHOLDS as i64
    });
    drop(server);
    let database = rusqlite::Connection::open(scene.data().join("oshirase.db")).unwrap();
    let restores: i64 = database
        .query_row("SELECT count(*) FROM audit_log WHERE action = 'database-restored'", [], |row| row.get(0))
        .unwrap();
    assert_eq!(restores, 1, "the restore went unnoticed");
    let failures = told_twice_or_never(&emulator, HOUSEHOLDS);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_database_restored_without_a_day_of_deliveries_sends_nothing_twice() {
    const HOUSEHOLDS: usize = 30;
    let scene = babies_town(HOUSEHOLDS);
    let (litestream, configuration) = Litestream::start(&scene, "100ms");

    let emulator = EmulatorProcess::start(&scene.directory.path().join("line-emulator.jsonl"));
    let today = oshirase_core::time::today_in_japan().to_string();
    let run = ["run", "--date", &today, "--line-base-url", &emulator.base_url, "--line-token", TOKEN];
    // Litestream dies (SIGKILL) just before the day's deliveries go out, so the replica
    // lacks every one of them: the most any lag could lose. Then the disk is lost.
    drop(litestream);
    scene.ok(&run);
    assert_eq!(emulator.inboxes().len(), HOUSEHOLDS, "every parent was told once the first time");
    lose_the_disk_and_restore(&scene, &configuration);

    let output = scene.command(&run).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("restored from a copy"), "the restore went unnoticed: {log}");
    let failures = told_twice_or_never(&emulator, HOUSEHOLDS);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
