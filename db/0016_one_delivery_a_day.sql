-- One delivery a day: everything due for one recipient goes out together, as cards.
--
-- * `part`: which message of its request a delivery belongs to. A LINE request carries up
--   to 5 message objects and an e-mail every notice, so the deliveries of one request (one
--   `batch_key`) are read back as messages by this number, not by their text: two programs
--   may well word a notice alike.
-- * `queued_on`: the Japan date (days since 1970-01-01) a notice's delivery was queued. A
--   recipient already queued something that day gets the rest the next day, unless it
--   expires first; NULL for broadcasts and e-mail fallbacks, which are not held back.
-- * `card`: a notice's card as JSON (`channel::card::Card`: program, title, deadline,
--   links), drawn as a LINE Flex bubble beside `text`, which stays the plain text of
--   notifications, old clients and e-mail; NULL for broadcasts, sent as plain text.
ALTER TABLE deliveries ADD COLUMN card TEXT;
ALTER TABLE deliveries ADD COLUMN part INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN queued_on INTEGER;
CREATE INDEX deliveries_queued_on ON deliveries (queued_on) WHERE queued_on IS NOT NULL;

-- The links staff gave an occasion's card: 「予約・申請」, the city's online booking or
-- application, and 「詳しく」, the city's page (without it, the manifest's source_url).
CREATE TABLE occasion_links (
    program     TEXT NOT NULL,
    occasion    TEXT NOT NULL,
    booking_url TEXT,
    details_url TEXT,
    updated_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (program, occasion)
);
