-- Deliveries become requests to a channel that may carry several of them.
--
-- * `channel` may be 'mail' as well as 'line'; `subject` is the e-mail subject, kept for
--   every delivery so that one LINE could not deliver can go out by e-mail instead.
-- * Registrations gain a confirmed e-mail address and the channels the resident chose.
-- * `batch_key`: deliveries with the same text for one program are sent together in one
--   LINE multicast of at most 500 recipients. Before that request goes out, each member's
--   `batch_key` is set to the retry key of the request (the key of its first member), in
--   the same transaction that marks them `sending`; a retry, even after a crash, sends the
--   same members under the same key. NULL for a delivery sent alone (push, e-mail).
-- * `first_attempt_at` (milliseconds since the epoch): LINE remembers a retry key for 24
--   hours only, so a delivery whose first attempt is older than that may not be sent
--   again without risking a duplicate.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt.

CREATE TABLE deliveries_new (
    id               INTEGER PRIMARY KEY,
    notice_id        INTEGER NOT NULL REFERENCES notices (id),
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
    UNIQUE (notice_id, channel, address)
);
INSERT INTO deliveries_new (id, notice_id, channel, address, text, retry_key, state, attempts, last_error, created_at, sent_at, next_attempt_at)
SELECT id, notice_id, channel, address, text, retry_key, state, attempts, last_error, created_at, sent_at, next_attempt_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_state ON deliveries (state, next_attempt_at);
-- The deliveries still to send, in id order: the sender reads them a step at a time
-- without touching the (far more numerous) deliveries already done.
CREATE INDEX deliveries_pending ON deliveries (id) WHERE state IN ('queued', 'sending', 'failed-retryable');

ALTER TABLE registrations ADD COLUMN email TEXT;
ALTER TABLE registrations ADD COLUMN channels TEXT NOT NULL DEFAULT 'line' CHECK (channels IN ('line', 'mail', 'both'));
