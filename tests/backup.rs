//! Continuous backup with Litestream, as `deploy/` runs it beside the server. A server
//! and its Litestream killed with SIGKILL under load, the disk lost and the database
//! restored from the replica, loses only the last moment of committed writes and sends
//! nobody anything twice; so does a restore that lacks a whole day's deliveries.

use std::path::Path;
use std::time::{Duration, Instant};

use oshirase_dev::litestream::{Replication, restore};
use serde_json::json;

use crate::harness::{EmulatorProcess, Scene, TOKEN, babies_town, config, parent, wait_until};

/// Litestream replicating the scene's database to a file replica, with the sync interval
/// given, once the replica can be restored.
fn replicate(scene: &Scene, sync_interval: &str) -> Replication {
    Replication::start(&scene.data().join("oshirase.db"), &scene.directory.path().join("replica"), sync_interval)
        .unwrap()
}

/// The disk is lost: the data directory is deleted, and the database restored from the
/// replica into a fresh one at the same place.
fn lose_the_disk_and_restore(scene: &Scene, configuration: &Path) {
    let database = scene.data().join("oshirase.db");
    std::fs::remove_dir_all(scene.data()).unwrap();
    std::fs::create_dir_all(scene.data()).unwrap();
    assert!(restore(configuration, &database, &database).unwrap(), "the replica cannot be restored");
}

/// The scene's database, read-only, as the end-to-end tests read it.
fn read_only(scene: &Scene) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(scene.data().join("oshirase.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
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
    let litestream = replicate(&scene, "1s");
    let configuration = litestream.configuration.clone();
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
    let restored = read_only(&scene);
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
        read_only(&scene)
            .query_row("SELECT count(*) FROM deliveries WHERE state = 'sent'", [], |row| row.get::<_, i64>(0))
            .unwrap()
            == HOUSEHOLDS as i64
    });
    drop(server);
    let restores: i64 = read_only(&scene)
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
    let litestream = replicate(&scene, "100ms");
    let configuration = litestream.configuration.clone();

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

/// The replication benchmark kills a real Litestream with nothing else writing and while
/// the outbox sends, and finds what the restore kept.
#[test]
fn the_replication_benchmark_kills_litestream_and_restores_its_replica() {
    let scene = Scene::new();
    let work = scene.directory.path().join("bench");
    let output = scene.ok(&[
        "bench",
        "replication",
        "--recipients",
        "300",
        "--repetitions",
        "1",
        "--seconds",
        "1",
        "--sync-interval",
        "100ms",
        "--json",
        "--work",
        work.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_str(output.trim()).unwrap();
    let conditions = report["conditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 2, "{report}");
    for condition in conditions {
        assert!(condition["probes"][0].as_u64().unwrap() > 0, "{report}");
        assert_eq!(condition["lag_milliseconds"].as_array().unwrap().len(), 1, "{report}");
    }
    assert_eq!(conditions[0]["deliveries_sent"][0], 0, "{report}");
    assert_eq!(conditions[1]["deliveries_sent"][0], 300, "the outbox sent its pushes: {report}");
}
