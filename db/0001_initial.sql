-- The first schema: snapshots of resident records, registrations, program plugins,
-- evaluation runs, notices, the delivery outbox and the audit log.
-- Dates that plugins see are stored as day numbers (days since 1970-01-01, Japan time);
-- timestamps are RFC 3339 text in UTC.

CREATE TABLE snapshots (
    id             INTEGER PRIMARY KEY,
    imported_at    TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    resident_count INTEGER NOT NULL,
    active         INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1))
);
-- At most one snapshot is active at a time.
CREATE UNIQUE INDEX snapshots_one_active ON snapshots (active) WHERE active = 1;

CREATE TABLE residents (
    snapshot_id    INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    resident_id    TEXT    NOT NULL,
    household_id   TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    name_kana      TEXT    NOT NULL DEFAULT '',
    birth_day      INTEGER NOT NULL,
    sex            INTEGER NOT NULL CHECK (sex IN (0, 1, 2)),
    relationship   INTEGER NOT NULL,
    address        TEXT    NOT NULL DEFAULT '',
    ward           TEXT    NOT NULL DEFAULT '',
    resident_since INTEGER,
    PRIMARY KEY (snapshot_id, resident_id)
) WITHOUT ROWID;
CREATE INDEX residents_household ON residents (snapshot_id, household_id);

-- A resident who linked a LINE account (or, later, an e-mail address) to their records.
CREATE TABLE registrations (
    resident_id   TEXT PRIMARY KEY,
    line_user_id  TEXT UNIQUE CHECK (line_user_id IS NULL OR line_user_id GLOB 'U[0-9a-f]*'),
    registered_at TEXT    NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
);

-- Every plugin version ever published, bytes included; one active version per program.
CREATE TABLE plugin_versions (
    id           INTEGER PRIMARY KEY,
    program      TEXT    NOT NULL,
    sha256       TEXT    NOT NULL,
    wasm         BLOB    NOT NULL,
    manifest     TEXT    NOT NULL,
    published_by TEXT    NOT NULL,
    published_at TEXT    NOT NULL,
    UNIQUE (program, sha256)
);

CREATE TABLE programs (
    code           TEXT PRIMARY KEY,
    active_version INTEGER REFERENCES plugin_versions (id)
);

-- One evaluation of one program for one date.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    program     TEXT    NOT NULL,
    version_id  INTEGER NOT NULL REFERENCES plugin_versions (id),
    snapshot_id INTEGER NOT NULL,
    run_on      INTEGER NOT NULL,
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('running', 'succeeded', 'failed')),
    notices     INTEGER NOT NULL DEFAULT 0,
    new_notices INTEGER NOT NULL DEFAULT 0,
    message     TEXT    NOT NULL DEFAULT ''
);

-- The key (program, resident, occasion) makes planning idempotent: a second run of the
-- same day, or a run after a crash, never creates a second notice.
CREATE TABLE notices (
    id          INTEGER PRIMARY KEY,
    program     TEXT    NOT NULL,
    resident_id TEXT    NOT NULL,
    occasion    TEXT    NOT NULL,
    send_on     INTEGER NOT NULL,
    expires_on  INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    UNIQUE (program, resident_id, occasion)
);
CREATE INDEX notices_due ON notices (send_on, expires_on);

-- The outbox: a delivery and its retry key are written before any request goes out.
CREATE TABLE deliveries (
    id          INTEGER PRIMARY KEY,
    notice_id   INTEGER NOT NULL REFERENCES notices (id),
    channel     TEXT    NOT NULL CHECK (channel IN ('line')),
    address     TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    retry_key   TEXT    NOT NULL UNIQUE,
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'sent', 'failed-retryable', 'failed-permanent', 'expired')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT    NOT NULL DEFAULT '',
    created_at  TEXT    NOT NULL,
    sent_at     TEXT,
    UNIQUE (notice_id, channel, address)
);
CREATE INDEX deliveries_state ON deliveries (state);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
