//! Continuous backup with Litestream, as `deploy/` runs it beside the server: the data
//! directory is lost after a day's deliveries that the replica never received (Litestream
//! was killed with SIGKILL before they went out); the database restored from the replica
//! into a fresh directory runs the day again, says it was restored, and nobody gets a
//! message twice.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{EmulatorProcess, TOKEN, babies_town};

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

#[test]
fn a_database_restored_from_its_litestream_replica_sends_nothing_twice() {
    const HOUSEHOLDS: usize = 30;
    let scene = babies_town(HOUSEHOLDS);
    let database = scene.data().join("oshirase.db");
    let replica = scene.directory.path().join("replica");
    let configuration = scene.directory.path().join("litestream.yml");
    // The configuration `deploy/litestream.yml` documents, with a file replica and a short
    // sync interval so that the test's copy is taken often.
    std::fs::write(
        &configuration,
        format!(
            "dbs:\n  - path: {}\n    replica:\n      type: file\n      path: {}\n      sync-interval: 100ms\n",
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
    // The replica holds the town before the day begins.
    let probe = scene.directory.path().join("probe.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !restore(&configuration, &database, &probe) {
        assert!(Instant::now() < deadline, "litestream made no replica within a minute");
        std::thread::sleep(Duration::from_millis(200));
    }

    let emulator = EmulatorProcess::start(&scene.directory.path().join("line-emulator.jsonl"));
    let today = oshirase_core::time::today_in_japan().to_string();
    let run = ["run", "--date", &today, "--line-base-url", &emulator.base_url, "--line-token", TOKEN];
    // Litestream dies (SIGKILL) just before the day's deliveries go out, so the replica
    // lacks every one of them: the most any lag could lose. Then the disk is lost.
    drop(litestream);
    scene.ok(&run);
    assert_eq!(emulator.inboxes().len(), HOUSEHOLDS, "every parent was told once the first time");
    std::fs::remove_dir_all(scene.data()).unwrap();
    std::fs::create_dir_all(scene.data()).unwrap();
    assert!(restore(&configuration, &database, &database), "the replica cannot be restored");

    let output = scene.command(&run).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("restored from a copy"), "the restore went unnoticed: {log}");
    let inboxes = emulator.inboxes();
    assert_eq!(inboxes.len(), HOUSEHOLDS, "every parent was told");
    let twice: Vec<&String> = inboxes.iter().filter(|(_, messages)| messages.len() > 1).map(|(user, _)| user).collect();
    assert!(twice.is_empty(), "told twice: {twice:?}");
}
