-- Staff access that can be taken back.
--
-- * An account can be disabled (`disabled_at`): it cannot sign in and its sessions stop
--   working at once; enabling it again clears the column.
-- * Admin tokens expire (`expires_at`, RFC 3339 UTC like every text timestamp; tokens
--   made before this migration get a year from now) and can be revoked (`revoked_at`).
-- * Failed sign-ins are no longer counted per account: a count per account let anyone
--   lock staff out. They are limited per login and address in the server's memory.

ALTER TABLE staff_users ADD COLUMN disabled_at TEXT;
ALTER TABLE staff_users DROP COLUMN failed_attempts;
ALTER TABLE staff_users DROP COLUMN locked_until;

ALTER TABLE admin_tokens ADD COLUMN expires_at TEXT NOT NULL DEFAULT '';
ALTER TABLE admin_tokens ADD COLUMN revoked_at TEXT;
UPDATE admin_tokens SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+365 days');

CREATE INDEX staff_sessions_user ON staff_sessions (user_id);
