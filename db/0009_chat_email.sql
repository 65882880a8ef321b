-- The chat's e-mail confirmation codes, and the messages the chat pushes on its own
-- (an application's decision), which are neither replies nor notices.

-- A confirmation code sent to an address a linked LINE user typed in the chat. Only a
-- salted SHA-256 of the code is kept. The address waits here and reaches
-- `registrations.email` only when the right code comes back before `expires_millis`;
-- it is cleared once the code is used up (`state` confirmed or void). A code takes a few
-- wrong attempts, and the rows of the last hour limit how many codes a user may ask for.
-- Times are milliseconds since the epoch, UTC.
CREATE TABLE email_codes (
    id             INTEGER PRIMARY KEY,
    line_user_id   TEXT    NOT NULL,
    address        TEXT,
    code_salt      TEXT    NOT NULL,
    code_sha256    TEXT    NOT NULL,
    message_id     TEXT    NOT NULL,
    created_millis INTEGER NOT NULL,
    expires_millis INTEGER NOT NULL,
    wrong_attempts INTEGER NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'confirmed', 'void'))
);
CREATE INDEX email_codes_user ON email_codes (line_user_id, created_millis);

-- Pushes the chat sends to a LINE user on its own: what staff decided about their
-- application. Queued in the transaction of the decision and sent by the webhook's worker
-- under `retry_key` (LINE's X-Line-Retry-Key), retried while LINE cannot take them. The
-- text is made when it is sent, from `kind`; no personal data is stored or sent.
CREATE TABLE chat_pushes (
    id                   INTEGER PRIMARY KEY,
    line_user_id         TEXT    NOT NULL,
    kind                 TEXT    NOT NULL CHECK (kind IN ('application-approved', 'application-rejected')),
    retry_key            TEXT    NOT NULL UNIQUE,
    state                TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    attempts             INTEGER NOT NULL DEFAULT 0,
    first_attempt_millis INTEGER,
    next_attempt_millis  INTEGER,
    last_error           TEXT    NOT NULL DEFAULT '',
    created_at           TEXT    NOT NULL,
    sent_at              TEXT
);
CREATE INDEX chat_pushes_queued ON chat_pushes (id) WHERE state = 'queued';
