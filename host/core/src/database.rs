//! Opens the SQLite file, applies the numbered migrations in `db/`, and runs blocking
//! database work off the async runtime: writes through one connection, reads from a pool.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension};

use crate::time::now_text;

/// The migrations, in order; `PRAGMA user_version` records how many have been applied.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_initial.sql", include_str!("../../../db/0001_initial.sql")),
    ("0002_full_snapshots.sql", include_str!("../../../db/0002_full_snapshots.sql")),
    ("0003_publishing.sql", include_str!("../../../db/0003_publishing.sql")),
    ("0004_delivery_states.sql", include_str!("../../../db/0004_delivery_states.sql")),
    ("0005_requests.sql", include_str!("../../../db/0005_requests.sql")),
    ("0006_schedules.sql", include_str!("../../../db/0006_schedules.sql")),
    ("0007_residents_chat.sql", include_str!("../../../db/0007_residents_chat.sql")),
    ("0008_postcard_details.sql", include_str!("../../../db/0008_postcard_details.sql")),
    ("0009_chat_email.sql", include_str!("../../../db/0009_chat_email.sql")),
    ("0010_console.sql", include_str!("../../../db/0010_console.sql")),
    ("0011_revocation.sql", include_str!("../../../db/0011_revocation.sql")),
    ("0012_contract_1_1.sql", include_str!("../../../db/0012_contract_1_1.sql")),
    ("0013_data_kinds.sql", include_str!("../../../db/0013_data_kinds.sql")),
    ("0014_standard_layout.sql", include_str!("../../../db/0014_standard_layout.sql")),
    ("0015_database_identity.sql", include_str!("../../../db/0015_database_identity.sql")),
    ("0016_one_delivery_a_day.sql", include_str!("../../../db/0016_one_delivery_a_day.sql")),
    ("0017_uptake.sql", include_str!("../../../db/0017_uptake.sql")),
    ("0018_surveys.sql", include_str!("../../../db/0018_surveys.sql")),
];

/// Opens (creating if needed) the database at `path`, in WAL mode, fully migrated.
pub fn open(path: &Path) -> Result<Connection> {
    let mut connection = Connection::open(path).with_context(|| format!("cannot open database {}", path.display()))?;
    // 8 KiB pages make a snapshot's B-trees shallower and its import faster; the pragma
    // only has an effect on a new, empty database.
    connection.pragma_update(None, "page_size", 8192).context("cannot set the page size")?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys =
             ON; PRAGMA busy_timeout = 10000;",
        )
        .context("cannot configure database")?;
    migrate(&mut connection)?;
    Ok(connection)
}

/// Applies the migrations not yet applied, each in a transaction of its own. Foreign keys
/// are off while they run, as SQLite's procedure for rebuilding a table asks (a referenced
/// table cannot otherwise be dropped and replaced), and each migration checks them before
/// it commits, so none can leave a dangling reference.
pub(crate) fn migrate(connection: &mut Connection) -> Result<()> {
    let applied = connection.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))? as usize;
    if applied > MIGRATIONS.len() {
        anyhow::bail!("database schema version {applied} is newer than this oshirase ({})", MIGRATIONS.len());
    }
    if applied == MIGRATIONS.len() {
        return Ok(());
    }
    connection.pragma_update(None, "foreign_keys", false)?;
    for (number, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql).with_context(|| format!("migration {name} failed"))?;
        let dangling: Option<String> = transaction
            .query_row("SELECT \"table\" || ' row ' || rowid FROM pragma_foreign_key_check LIMIT 1", [], |row| {
                row.get(0)
            })
            .optional()?;
        if let Some(row) = dangling {
            anyhow::bail!("migration {name} would leave a dangling reference: {row}");
        }
        transaction.pragma_update(None, "user_version", (number + 1) as i64)?;
        transaction.commit()?;
    }
    connection.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// The database for async code: one writer connection, taken by one task at a time, and
/// a pool of read-only connections. In WAL mode readers never wait for the writer nor it
/// for them, so a page of the console or a sign-in's lookup goes on while the scheduler
/// stores a day's notices. Work runs on tokio's blocking pool and takes its connection
/// there, so no connection or lock is ever held across an `.await`; slow work that needs
/// no database (hashing a password, an HTTP request) is done before or after, never
/// inside.
#[derive(Clone)]
pub struct Database {
    writer: Arc<Mutex<Connection>>,
    readers: r2d2::Pool<ReadConnections>,
}

/// How many read connections the pool keeps at most: more than the machine's cores, so a
/// slow report does not hold up a sign-in, and few enough that their page caches stay
/// small.
const READ_CONNECTIONS: u32 = 8;

impl Database {
    pub fn open(path: &Path) -> Result<Database> {
        // The writer opens (and migrates) the file first, so readers find its schema.
        let writer = open(path)?;
        let readers = r2d2::Pool::builder()
            .max_size(READ_CONNECTIONS)
            .min_idle(Some(1))
            .connection_timeout(std::time::Duration::from_secs(30))
            .build(ReadConnections { path: path.to_owned() })
            .with_context(|| format!("cannot open read connections to {}", path.display()))?;
        Ok(Database { writer: Arc::new(Mutex::new(writer)), readers })
    }

    /// Runs `work` with the one writer connection on a blocking thread. Keep its
    /// transactions short: every other write waits for it.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let database = self.clone();
        tokio::task::spawn_blocking(move || database.write_blocking(work)).await.context("database task panicked")?
    }

    /// `write` for work already on a blocking thread (a day's run storing each program's
    /// notices while the others evaluate): takes the writer for `work` alone.
    pub fn write_blocking<T>(&self, work: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut connection = self.writer.lock().map_err(|_| anyhow::anyhow!("database writer lock poisoned"))?;
        work(&mut connection)
    }

    /// Runs `work` with a read-only connection of the pool on a blocking thread; it sees
    /// the last committed state and cannot change anything (`query_only`).
    pub async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let database = self.clone();
        tokio::task::spawn_blocking(move || database.read_blocking(work)).await.context("database task panicked")?
    }

    /// `read` for work already on a blocking thread.
    pub fn read_blocking<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let connection = self.readers.get().context("no database read connection came free")?;
        work(&connection)
    }
}

/// Opens the pool's read-only connections (`r2d2`'s manager for our SQLite file).
#[derive(Debug)]
struct ReadConnections {
    path: std::path::PathBuf,
}

impl r2d2::ManageConnection for ReadConnections {
    type Connection = Connection;
    type Error = rusqlite::Error;

    fn connect(&self) -> Result<Connection, rusqlite::Error> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_URI;
        // Opened read-write so it can read the WAL's index, but `query_only` refuses any
        // change made through it.
        let connection = Connection::open_with_flags(&self.path, flags)?;
        connection.execute_batch("PRAGMA query_only = ON; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;")?;
        Ok(connection)
    }

    fn is_valid(&self, connection: &mut Connection) -> Result<(), rusqlite::Error> {
        connection.execute_batch("")
    }

    fn has_broken(&self, _connection: &mut Connection) -> bool {
        false
    }
}

/// What `backup` copied.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct BackupReport {
    pub pages: i64,
    pub page_size: i64,
}

/// Copies the database at `source` into a new file `destination` with SQLite's online
/// backup API: a consistent copy as of one moment, taken while other connections go on
/// reading and writing (in WAL mode a reader does not block the writer). The copy is
/// written beside `destination` and renamed into place, so a failed backup leaves no half
/// file; an existing `destination` is refused unless `overwrite`.
pub fn backup(source: &Path, destination: &Path, overwrite: bool) -> Result<BackupReport> {
    if !overwrite && destination.exists() {
        anyhow::bail!("{} already exists; pass --force to overwrite it", destination.display());
    }
    if !source.exists() {
        anyhow::bail!("no database at {}", source.display());
    }
    let from = Connection::open_with_flags(source, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open database {}", source.display()))?;
    from.busy_timeout(std::time::Duration::from_secs(10))?;
    let mut partial = destination.as_os_str().to_owned();
    partial.push(format!(".partial-{}", std::process::id()));
    let partial = std::path::PathBuf::from(partial);
    let copied = (|| {
        let mut to = Connection::open(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
        let pages = {
            let backup = rusqlite::backup::Backup::new(&from, &mut to)?;
            // All pages in one step, under one read transaction: a step of a few pages at
            // a time would start over after every write by another connection, and might
            // never finish while serve is busy.
            loop {
                match backup.step(-1)? {
                    rusqlite::backup::StepResult::Done => break,
                    _ => std::thread::sleep(std::time::Duration::from_millis(50)),
                }
            }
            backup.progress().pagecount as i64
        };
        let page_size: i64 = to.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        drop(to);
        std::fs::rename(&partial, destination)
            .with_context(|| format!("cannot move the copy to {}", destination.display()))?;
        Ok(BackupReport { pages, page_size })
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    copied
}

/// Appends one line to the audit log.
pub fn audit(connection: &Connection, actor: &str, action: &str, subject: &str, detail: &str) -> Result<()> {
    connection
        .execute(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            (now_text(), actor, action, subject, detail),
        )
        .context("cannot write audit log")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_is_migrated_and_reopening_it_changes_nothing() {
        let directory = std::env::temp_dir().join(format!("oshirase-db-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("oshirase.db");
        let connection = open(&path).unwrap();
        let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
        let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
        assert_eq!(mode, "wal");
        drop(connection);
        open(&path).unwrap();
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[test]
    fn a_backup_taken_while_another_connection_writes_holds_what_was_committed_before() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("oshirase.db");
        let copy = directory.path().join("copy.db");
        let mut writer = open(&path).unwrap();
        let transaction = writer.transaction().unwrap();
        for line in 0..2000 {
            audit(&transaction, "test", "before", &line.to_string(), "").unwrap();
        }
        transaction.commit().unwrap();
        let committed_before: i64 = writer.query_row("SELECT max(id) FROM audit_log", [], |row| row.get(0)).unwrap();
        // Another connection keeps committing while the copy is taken.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writing = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut written = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let transaction = writer.transaction().unwrap();
                    audit(&transaction, "test", "during", &written.to_string(), "").unwrap();
                    transaction.commit().unwrap();
                    written += 1;
                }
                written
            }
        });
        let report = backup(&path, &copy, false).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written_during = writing.join().unwrap();
        assert!(report.pages > 1, "{report:?}");

        let copied = Connection::open(&copy).unwrap();
        let integrity: String = copied.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
        assert_eq!(integrity, "ok");
        let held: i64 = copied
            .query_row("SELECT count(*) FROM audit_log WHERE id <= ?1", [committed_before], |row| row.get(0))
            .unwrap();
        assert_eq!(held, committed_before);
        eprintln!("backup: {} pages while {written_during} transactions were committed", report.pages);

        // An existing file is kept unless forced.
        let refused = backup(&path, &copy, false).unwrap_err();
        assert!(format!("{refused:#}").contains("already exists; pass --force"), "{refused:#}");
        backup(&path, &copy, true).unwrap();
    }
}
