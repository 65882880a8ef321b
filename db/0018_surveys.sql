-- Surveys answered in the chat: a question with 2 to 5 choices or a rating of 1 to 5,
-- sent as a broadcast whose card has a postback button per choice, answered with a tap,
-- once per LINE user and changeable until it closes.
--
-- * A broadcast may carry a card (`channel::card::Card` as JSON, as `deliveries.card`),
--   go out on LINE only (`line_only`: a survey is answered with a tap, which an e-mail
--   cannot carry, so it is neither sent by e-mail nor falls back to it), and be limited
--   to the recipients of one program's notices sent between two Japan days
--   (`program`, `sent_from`, `sent_to`, days since 1970-01-01), beside `category`.
ALTER TABLE broadcasts ADD COLUMN card TEXT;
ALTER TABLE broadcasts ADD COLUMN line_only INTEGER NOT NULL DEFAULT 0 CHECK (line_only IN (0, 1));
ALTER TABLE broadcasts ADD COLUMN program TEXT;
ALTER TABLE broadcasts ADD COLUMN sent_from INTEGER;
ALTER TABLE broadcasts ADD COLUMN sent_to INTEGER;

-- A survey: its question and choices (a JSON array of labels; a rating's are 1 to 5), the
-- broadcast that carries it (its audience and reservation), and when answers are taken
-- (`opens_at` to `closes_at`, milliseconds since the epoch). `closed_at` is set when the
-- answers lose their LINE user ids, at or after `closes_at`.
CREATE TABLE surveys (
    id           INTEGER PRIMARY KEY,
    broadcast_id INTEGER NOT NULL UNIQUE REFERENCES broadcasts (id),
    question     TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('choice', 'rating')),
    choices      TEXT    NOT NULL,
    opens_at     INTEGER NOT NULL,
    closes_at    INTEGER NOT NULL CHECK (closes_at > opens_at),
    closed_at    TEXT,
    created_by   TEXT    NOT NULL,
    created_at   TEXT    NOT NULL
);
CREATE INDEX surveys_open ON surveys (closes_at) WHERE closed_at IS NULL;

-- One answer per LINE user and survey (a change updates it), the choice's index and the
-- Japan day it was given. `line_user_id` becomes NULL when the survey closes: the rows
-- stay as anonymous answers (SQLite's UNIQUE lets NULLs repeat).
CREATE TABLE survey_answers (
    id           INTEGER PRIMARY KEY,
    survey_id    INTEGER NOT NULL REFERENCES surveys (id),
    line_user_id TEXT CHECK (line_user_id IS NULL OR line_user_id GLOB 'U[0-9a-f]*'),
    answer       INTEGER NOT NULL CHECK (answer >= 0),
    answered_on  INTEGER NOT NULL,
    UNIQUE (survey_id, line_user_id)
);
