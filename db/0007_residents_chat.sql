-- The residents' side: the LINE webhook's events, the LINE users who follow the account,
-- registration numbers, wrong guesses of them, muted categories, and due dates and birth
-- dates that parents register in the chat themselves.

-- Every webhook event as received, stored before the webhook answers 200 and processed
-- afterwards by a worker, in id order. `webhook_event_id` is unique, so a redelivery of an
-- event already stored is ignored; a crash leaves `pending` rows the worker takes up again.
CREATE TABLE webhook_events (
    id               INTEGER PRIMARY KEY,
    webhook_event_id TEXT    NOT NULL UNIQUE,
    event            TEXT    NOT NULL,   -- the event object as JSON
    received_at      TEXT    NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    processed_at     TEXT,
    outcome          TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX webhook_events_pending ON webhook_events (id) WHERE state = 'pending';
-- Processed events are forgotten after 30 days, oldest first.
CREATE INDEX webhook_events_done ON webhook_events (received_at) WHERE state = 'done';

-- A LINE user who befriended the account, linked to a resident or not. `following` is 0
-- after they blocked it; nothing is delivered to them then.
CREATE TABLE line_users (
    line_user_id  TEXT PRIMARY KEY CHECK (line_user_id GLOB 'U[0-9a-f]*' AND length(line_user_id) = 33),
    following     INTEGER NOT NULL DEFAULT 1 CHECK (following IN (0, 1)),
    first_seen_at TEXT    NOT NULL,
    changed_at    TEXT    NOT NULL
) WITHOUT ROWID;

-- The categories (registry::Manifest.category: ChildRearing, Health, Vaccination,
-- Allowance, Living) a LINE user does not want to hear about. "Stop everything" mutes all.
CREATE TABLE muted_categories (
    line_user_id TEXT NOT NULL,
    category     TEXT NOT NULL CHECK (category IN ('ChildRearing', 'Health', 'Vaccination', 'Allowance', 'Living')),
    muted_at     TEXT NOT NULL,
    PRIMARY KEY (line_user_id, category)
) WITHOUT ROWID;

-- Registration numbers issued by staff for a resident, kept only as SHA-256 hashes of
-- their normalized text. A number works once (`used_at`) and until `expires_at`.
CREATE TABLE registration_numbers (
    id           INTEGER PRIMARY KEY,
    resident_id  TEXT    NOT NULL,
    number_hash  TEXT    NOT NULL UNIQUE,
    issued_at    TEXT    NOT NULL,
    issued_by    TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    used_at      TEXT,
    used_by      TEXT,
    revoked_at   TEXT
);
CREATE INDEX registration_numbers_resident ON registration_numbers (resident_id);

-- Wrong registration numbers, by LINE user and time (milliseconds since the epoch, UTC),
-- so the hourly limit holds across restarts.
CREATE TABLE registration_guesses (
    line_user_id TEXT    NOT NULL,
    at_millis    INTEGER NOT NULL
);
CREATE INDEX registration_guesses_user ON registration_guesses (line_user_id, at_millis);

-- Due dates and children's birth dates a LINE user registered in the chat. Evaluation
-- treats each as a person `self:<id>` (a pregnancy, or a child), and the outbox sends
-- their notices to the LINE user who registered them.
CREATE TABLE self_registrations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    line_user_id  TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('due-date', 'birth-date')),
    day           INTEGER NOT NULL,
    registered_on INTEGER NOT NULL,
    created_at    TEXT    NOT NULL
);
CREATE INDEX self_registrations_user ON self_registrations (line_user_id);

-- Personal links from the chat to the application form: only the token's hash is kept;
-- a link works once (`used_at`) and until `expires_at`.
CREATE TABLE application_links (
    token_sha256 TEXT PRIMARY KEY,
    line_user_id TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    used_at      TEXT
) WITHOUT ROWID;

-- Applications for registration as residents typed them, and what staff decided.
CREATE TABLE applications (
    id           INTEGER PRIMARY KEY,
    line_user_id TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    birth_day    INTEGER NOT NULL,
    address      TEXT    NOT NULL,
    submitted_at TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),
    resident_id  TEXT,
    reason       TEXT    NOT NULL DEFAULT '',
    decided_by   TEXT,
    decided_at   TEXT
);
CREATE INDEX applications_pending ON applications (id) WHERE state = 'pending';

-- The batch of postcards to print: the registration number in clear, the one place it is
-- kept, until the postcard is printed (`printed_at`; the printing clears `number`).
CREATE TABLE postcards (
    id          INTEGER PRIMARY KEY,
    resident_id TEXT NOT NULL,
    address     TEXT NOT NULL,
    number      TEXT,
    created_at  TEXT NOT NULL,
    printed_at  TEXT
);
