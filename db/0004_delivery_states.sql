-- Deliveries gain the `sending` state and `next_attempt_at`. A delivery is marked
-- `sending` (its retry key already stored) just before its request goes out, so a crash
-- in the middle of a request leaves a row that the next pass sends again with the same
-- key, which LINE answers with 409 if it had accepted the first. A retryable failure
-- waits until `next_attempt_at`, in milliseconds since the epoch (UTC) because backoff
-- delays are shorter than the second that RFC 3339 text columns resolve.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt.

CREATE TABLE deliveries_new (
    id              INTEGER PRIMARY KEY,
    notice_id       INTEGER NOT NULL REFERENCES notices (id),
    channel         TEXT    NOT NULL CHECK (channel IN ('line')),
    address         TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    retry_key       TEXT    NOT NULL UNIQUE,
    state           TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed-retryable', 'failed-permanent', 'expired')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      TEXT    NOT NULL,
    sent_at         TEXT,
    next_attempt_at INTEGER,
    UNIQUE (notice_id, channel, address)
);
INSERT INTO deliveries_new (id, notice_id, channel, address, text, retry_key, state, attempts, last_error, created_at, sent_at)
SELECT id, notice_id, channel, address, text, retry_key, state, attempts, last_error, created_at, sent_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_state ON deliveries (state, next_attempt_at);
