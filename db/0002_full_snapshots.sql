-- Snapshots become whole municipal exports: residents keyed by a dense row number (the
-- index a plugin sees), the residents who moved out or died, and the tax, receipt,
-- pregnancy, immunization and checkup files. Residents also record consent to the use
-- of their tax data.
--
-- Every per-snapshot table has an integer key `snapshot_id * 2^32 + n`, so that reading
-- or deleting one snapshot is a range scan of the table itself, with no extra index.

ALTER TABLE snapshots ADD COLUMN files TEXT NOT NULL DEFAULT '';

CREATE TABLE snapshot_residents (
    key            INTEGER PRIMARY KEY,   -- snapshot_id * 2^32 + row
    snapshot_id    INTEGER NOT NULL,
    resident_id    TEXT    NOT NULL,
    household_id   TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    name_kana      TEXT    NOT NULL,
    birth_day      INTEGER NOT NULL,
    sex            INTEGER NOT NULL,
    relationship   INTEGER NOT NULL,
    address        TEXT    NOT NULL,
    ward           TEXT    NOT NULL,
    resident_since INTEGER
);
INSERT INTO snapshot_residents
SELECT snapshot_id * 4294967296 + row_number() OVER (PARTITION BY snapshot_id ORDER BY resident_id) - 1,
       snapshot_id, resident_id, household_id, name, name_kana, birth_day, sex, relationship, address, ward, resident_since
FROM residents;
DROP TABLE residents;
ALTER TABLE snapshot_residents RENAME TO residents;
CREATE UNIQUE INDEX residents_by_id ON residents (snapshot_id, resident_id);
-- No household index: the outbox finds a minor's guardians through the (few) registered
-- residents instead, and the import writes one B-tree fewer.

-- Residents in the export who no longer live here; records about them are not kept.
CREATE TABLE departed_residents (
    key         INTEGER PRIMARY KEY,
    snapshot_id INTEGER NOT NULL,
    resident_id TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('moved_out', 'deceased'))
);

-- 住民税: one row per resident and fiscal year; plugins see the latest year.
-- taxable: 1 not taxed (非課税), 2 per-capita levy only (均等割のみ), 3 taxed (課税).
CREATE TABLE tax (
    key          INTEGER PRIMARY KEY,
    row          INTEGER NOT NULL,
    fiscal_year  INTEGER NOT NULL,
    total_income INTEGER NOT NULL,
    taxable      INTEGER NOT NULL CHECK (taxable IN (1, 2, 3))
);

-- Dated records about residents, the `events` of the plugin contract: `kind` says which
-- file they came from, `code` is a vaccine, checkup kind or program code. The key is
-- `snapshot_id * 2^32 + kind number * 2^28 + n`, so each kind of one snapshot is one range.
CREATE TABLE events (
    key       INTEGER PRIMARY KEY,
    row       INTEGER NOT NULL,
    kind      TEXT    NOT NULL CHECK (kind IN ('pregnancy', 'immunization', 'checkup', 'receipt')),
    code      TEXT    NOT NULL,
    count     INTEGER NOT NULL,
    start_day INTEGER NOT NULL,
    end_day   INTEGER NOT NULL
);

ALTER TABLE registrations ADD COLUMN tax_consent_at TEXT;
