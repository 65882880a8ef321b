-- One delivery a day: everything due for one recipient goes out together.
--
-- * `part`: which message of its request a delivery belongs to. A LINE request carries up
--   to 5 message objects and an e-mail every notice, so the deliveries of one request (one
--   `batch_key`) are read back as messages by this number, not by their text: two programs
--   may well word a notice alike.
-- * `queued_on`: the Japan date (days since 1970-01-01) a notice's delivery was queued. A
--   recipient already queued something that day gets the rest the next day, unless it
--   expires first; NULL for broadcasts and e-mail fallbacks, which are not held back.
ALTER TABLE deliveries ADD COLUMN part INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN queued_on INTEGER;
CREATE INDEX deliveries_queued_on ON deliveries (queued_on) WHERE queued_on IS NOT NULL;
