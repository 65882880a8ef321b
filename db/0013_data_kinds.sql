-- Data kinds a program asks for by name (contract 1.1): periods in which a resident
-- belongs to something (`enrollments.csv`: 国保, 後期高齢, 要介護 …) and named values
-- about them (`attributes.csv`: 身体障害者手帳の等級 …). The kinds and names are the
-- city's own words, so a new one needs no migration and no release.
--
-- Like every per-snapshot table the key is `snapshot_id * 2^32 + n`, so one snapshot is
-- one key range; `row` is the resident's row in that snapshot. A program reads the rows of
-- the kinds its manifest declares; with `consent_required` 1, only for residents who
-- consented (as for tax data: `registrations.tax_consent_at`).

CREATE TABLE enrollments (
    key              INTEGER PRIMARY KEY,   -- snapshot_id * 2^32 + n
    row              INTEGER NOT NULL,
    kind             TEXT    NOT NULL,
    -- The grade or level as the export writes it (1級, 要介護3); '' when it has none.
    level            TEXT    NOT NULL DEFAULT '',
    start_day        INTEGER NOT NULL,
    -- The last day; 2147483647 while the period has not ended.
    end_day          INTEGER NOT NULL,
    consent_required INTEGER NOT NULL DEFAULT 0 CHECK (consent_required IN (0, 1))
);

CREATE TABLE attributes (
    key              INTEGER PRIMARY KEY,   -- snapshot_id * 2^32 + n
    row              INTEGER NOT NULL,
    name             TEXT    NOT NULL,
    value            TEXT    NOT NULL,
    consent_required INTEGER NOT NULL DEFAULT 0 CHECK (consent_required IN (0, 1))
);
