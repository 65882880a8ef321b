-- The national 住民記録 standard's exports (`resident_table.csv`): the postal code beside
-- the address, and birth dates the register itself marks as not exact (生年月日_不詳フラグ).
-- A program that reads birth days gives no notice on an inexact one, and its run counts
-- the notices it withheld so that staff see them. The import's warnings (households
-- without a head for now, 同居人 and 縁故者, columns not read) are kept with the snapshot.

ALTER TABLE residents ADD COLUMN postal_code TEXT NOT NULL DEFAULT '';
ALTER TABLE residents ADD COLUMN birth_day_inexact INTEGER NOT NULL DEFAULT 0 CHECK (birth_day_inexact IN (0, 1));
-- Only the few inexact rows are in this index, so an import writes almost nothing to it
-- and a run finds them without reading the table.
CREATE INDEX residents_inexact_birth_day ON residents (key) WHERE birth_day_inexact = 1;

ALTER TABLE snapshots ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';

ALTER TABLE runs ADD COLUMN withheld_inexact_birth_day INTEGER NOT NULL DEFAULT 0;
