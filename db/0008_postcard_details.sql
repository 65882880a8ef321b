-- What a postcard prints beside the address and the number: the resident's name as the
-- snapshot had it when the number was issued, and when the number expires. Rows queued
-- before this migration take them from the active snapshot and the resident's live number.
ALTER TABLE postcards ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE postcards ADD COLUMN expires_at TEXT NOT NULL DEFAULT '';
UPDATE postcards SET
    name = coalesce((SELECT residents.name FROM residents JOIN snapshots ON snapshots.id = residents.snapshot_id
                     WHERE snapshots.active = 1 AND residents.resident_id = postcards.resident_id), ''),
    expires_at = coalesce((SELECT expires_at FROM registration_numbers
                           WHERE registration_numbers.resident_id = postcards.resident_id AND revoked_at IS NULL
                           ORDER BY id DESC LIMIT 1), '')
WHERE printed_at IS NULL;
