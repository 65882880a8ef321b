-- The admin console: staff accounts and their sessions, the wording staff give each
-- occasion, sends staff reserve, and messages they broadcast.
--
-- * Passwords are stored as Argon2id PHC strings only. After repeated failures an
--   account is locked until `locked_until` (milliseconds since the epoch).
-- * A session is known by the SHA-256 of its cookie; its CSRF token must come back with
--   every request that changes something.
-- * `deliveries` may now carry a broadcast instead of a notice: exactly one of
--   `notice_id` and `broadcast_id` is set. SQLite cannot change a column's NOT NULL in
--   place, so the table is rebuilt.

CREATE TABLE staff_users (
    id              INTEGER PRIMARY KEY,
    login           TEXT    NOT NULL UNIQUE,
    display_name    TEXT    NOT NULL,
    password_hash   TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('administrator', 'division', 'viewer')),
    -- The division's name, and the program codes division staff may act on (comma-separated).
    division        TEXT    NOT NULL DEFAULT '',
    programs        TEXT    NOT NULL DEFAULT '',
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER,
    created_at      TEXT    NOT NULL
);

CREATE TABLE staff_sessions (
    token_sha256 TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES staff_users (id),
    csrf_token   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);

-- Wording staff gave an occasion; without a row, the plugin's default template is used.
CREATE TABLE message_wording (
    program    TEXT NOT NULL,
    occasion   TEXT NOT NULL,
    template   TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (program, occasion)
);

-- A message staff wrote for every registered resident, or for those who receive a category.
CREATE TABLE broadcasts (
    id         INTEGER PRIMARY KEY,
    title      TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    -- NULL: every registered resident; otherwise one of the chat's categories.
    category   TEXT,
    -- The last day (days since 1970-01-01, Japan) it may still be sent.
    expires_on INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);

-- A send staff asked for: run one program and send what it finds due, or send a
-- broadcast, at `send_at` (milliseconds since the epoch; "now" is a time already past).
CREATE TABLE reserved_sends (
    id           INTEGER PRIMARY KEY,
    program      TEXT,
    broadcast_id INTEGER REFERENCES broadcasts (id),
    send_at      INTEGER NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'done', 'cancelled')),
    outcome      TEXT    NOT NULL DEFAULT '',
    created_by   TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    CHECK ((program IS NULL) <> (broadcast_id IS NULL))
);
CREATE INDEX reserved_sends_waiting ON reserved_sends (send_at) WHERE state = 'waiting';

CREATE TABLE deliveries_new (
    id               INTEGER PRIMARY KEY,
    notice_id        INTEGER REFERENCES notices (id),
    broadcast_id     INTEGER REFERENCES broadcasts (id),
    channel          TEXT    NOT NULL CHECK (channel IN ('line', 'mail')),
    address          TEXT    NOT NULL,
    subject          TEXT    NOT NULL DEFAULT '',
    text             TEXT    NOT NULL,
    retry_key        TEXT    NOT NULL UNIQUE,
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed-retryable', 'failed-permanent', 'expired')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT    NOT NULL DEFAULT '',
    created_at       TEXT    NOT NULL,
    sent_at          TEXT,
    next_attempt_at  INTEGER,
    batch_key        TEXT,
    first_attempt_at INTEGER,
    CHECK ((notice_id IS NULL) <> (broadcast_id IS NULL)),
    UNIQUE (notice_id, channel, address),
    UNIQUE (broadcast_id, channel, address)
);
INSERT INTO deliveries_new (id, notice_id, channel, address, subject, text, retry_key, state, attempts, last_error, created_at, sent_at, next_attempt_at, batch_key, first_attempt_at)
SELECT id, notice_id, channel, address, subject, text, retry_key, state, attempts, last_error, created_at, sent_at, next_attempt_at, batch_key, first_attempt_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_state ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_pending ON deliveries (id) WHERE state IN ('queued', 'sending', 'failed-retryable');
