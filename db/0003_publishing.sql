-- Publishing: every version keeps the outcome of its validation and the WIT version it was
-- built for; a rejected version is stored with its reason and can never become active.
-- A program remembers the version that was active before the current one, for rollback.
-- Division tokens for the admin API are stored as SHA-256 hashes only.

ALTER TABLE plugin_versions ADD COLUMN wit_version TEXT NOT NULL DEFAULT '1.0.0';
-- 1 when every validation step passed, 0 when the version was rejected.
ALTER TABLE plugin_versions ADD COLUMN accepted INTEGER NOT NULL DEFAULT 1 CHECK (accepted IN (0, 1));
-- Why it was rejected, or what validation checked when it was accepted.
ALTER TABLE plugin_versions ADD COLUMN validation TEXT NOT NULL DEFAULT '';

ALTER TABLE programs ADD COLUMN previous_version INTEGER REFERENCES plugin_versions (id);

CREATE TABLE admin_tokens (
    id           INTEGER PRIMARY KEY,
    token_sha256 TEXT    NOT NULL UNIQUE,
    division     TEXT    NOT NULL,
    -- The program codes this token may publish, comma-separated; ignored for administrators.
    programs     TEXT    NOT NULL DEFAULT '',
    admin        INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    created_at   TEXT    NOT NULL
);
