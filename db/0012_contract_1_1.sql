-- Plugin contract 1.1: a notice's key gains its instance (the 年度 of a screening), so a
-- recurring occasion is declared once; a notice's reason is stored once per distinct text
-- (a screening's half a million notices share a few dozen); and staff set the settings a
-- manifest declares, which each run records.
--
-- SQLite cannot change a UNIQUE constraint in place, so the table is rebuilt (the
-- migration runs with foreign keys off and checks them before it commits); ids are kept,
-- so every delivery still points at its notice.

CREATE TABLE notice_reasons (
    id   INTEGER PRIMARY KEY,
    text TEXT    NOT NULL UNIQUE
);

INSERT INTO notice_reasons (text) SELECT DISTINCT reason FROM notices;

CREATE TABLE notices_1_1 (
    id          INTEGER PRIMARY KEY,
    program     TEXT    NOT NULL,
    resident_id TEXT    NOT NULL,
    occasion    TEXT    NOT NULL,
    instance    INTEGER NOT NULL DEFAULT 0,
    send_on     INTEGER NOT NULL,
    expires_on  INTEGER NOT NULL,
    reason_id   INTEGER REFERENCES notice_reasons (id),
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    UNIQUE (program, resident_id, occasion, instance)
);

INSERT INTO notices_1_1 (id, program, resident_id, occasion, instance, send_on, expires_on, reason_id, run_id)
SELECT n.id, n.program, n.resident_id, n.occasion, 0, n.send_on, n.expires_on, r.id, n.run_id
FROM notices n JOIN notice_reasons r ON r.text = n.reason;

DROP TABLE notices;
ALTER TABLE notices_1_1 RENAME TO notices;
CREATE INDEX notices_due ON notices (send_on, expires_on);

-- The value staff gave a setting, as text its type reads (`05-16`, `3000`); a setting
-- without a row runs at the manifest's default.
CREATE TABLE program_settings (
    program    TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    changed_by TEXT NOT NULL,
    PRIMARY KEY (program, name)
);

-- The settings a run evaluated with, as JSON, so that a run can be replayed exactly.
ALTER TABLE runs ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
