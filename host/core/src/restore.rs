//! Telling a database restored from a copy (a Litestream replica, an `oshirase backup`)
//! from the one that was running in this data directory, at startup: the database and a
//! file beside it hold the same random id, and a copy comes back without the file.
//!
//! Nothing has to be repaired after a restore: a delivery's retry key is named by what it
//! delivers, so the deliveries the copy lost are queued again under the keys LINE already
//! answered, and those it holds as queued or sending go out as after a crash, under their
//! own keys (an e-mail with its own `Message-ID`). Staff are told, in the log and the audit.

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension};

use crate::database::audit;

/// The file beside the database that holds its id.
pub const IDENTITY_FILE: &str = "oshirase.db.identity";

/// What startup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Identity {
    /// A new database: it and the file are given an id.
    New,
    /// The database that was running here.
    Same,
    /// A copy: `pending` deliveries (queued, sending or to be retried) will be sent under
    /// the keys they had.
    Restored { pending: i64 },
}

/// Checks the database of `data_directory` against its identity file, and gives a new or
/// restored database a new id in both.
pub fn check(data_directory: &Path, connection: &Connection) -> Result<Identity> {
    let file = data_directory.join(IDENTITY_FILE);
    let in_file = match std::fs::read_to_string(&file) {
        Ok(text) => Some(text.trim().to_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", file.display())),
    };
    let in_database: Option<String> =
        connection.query_row("SELECT id FROM database_identity", [], |row| row.get(0)).optional()?;
    let identity = match (&in_database, &in_file) {
        (None, None) => Identity::New,
        (Some(database), Some(file)) if database == file => return Ok(Identity::Same),
        _ => {
            let pending: i64 = connection.query_row(
                "SELECT count(*) FROM deliveries WHERE state IN ('queued', 'sending', 'failed-retryable')",
                [],
                |row| row.get(0),
            )?;
            Identity::Restored { pending }
        }
    };
    let id = uuid::Uuid::new_v4().to_string();
    connection.execute_batch("SAVEPOINT identity")?;
    let stored = connection
        .execute("DELETE FROM database_identity", [])
        .and_then(|_| connection.execute("INSERT INTO database_identity (id) VALUES (?1)", [&id]));
    if let Identity::Restored { pending } = identity {
        tracing::warn!(
            pending,
            "the database was restored from a copy: deliveries it lost are queued again under the keys LINE \
             already answered, and those it holds go out under their own"
        );
        audit(connection, "system", "database-restored", "", &format!("{pending} deliveries pending"))?;
    }
    match stored {
        Ok(_) => connection.execute_batch("RELEASE identity")?,
        Err(error) => {
            connection.execute_batch("ROLLBACK TO identity; RELEASE identity")?;
            return Err(error).context("cannot store the database's identity");
        }
    }
    // The file is written after the database: a crash between the two is taken for a
    // restore at the next start, which only says so.
    std::fs::write(&file, &id).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_that_comes_back_without_its_identity_file_is_a_restore() {
        let directory = tempfile::tempdir().unwrap();
        let connection = crate::testing::database();
        assert_eq!(check(directory.path(), &connection).unwrap(), Identity::New);
        assert_eq!(check(directory.path(), &connection).unwrap(), Identity::Same);
        // The data directory is lost; the database comes back from a copy.
        std::fs::remove_file(directory.path().join(IDENTITY_FILE)).unwrap();
        assert_eq!(check(directory.path(), &connection).unwrap(), Identity::Restored { pending: 0 });
        assert_eq!(check(directory.path(), &connection).unwrap(), Identity::Same, "told once");
        // Another database's file: a copy put in this directory.
        std::fs::write(directory.path().join(IDENTITY_FILE), "another").unwrap();
        assert_eq!(check(directory.path(), &connection).unwrap(), Identity::Restored { pending: 0 });
        let audited: i64 = connection
            .query_row("SELECT count(*) FROM audit_log WHERE action = 'database-restored'", [], |row| row.get(0))
            .unwrap();
        assert_eq!(audited, 2);
    }
}
