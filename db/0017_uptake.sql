-- Did the notice work: uptake measured from two exports, and the links of cards counted.
--
-- * `uptake_reports`: each measurement as JSON (`uptake::UptakeReport`): counts per
--   program, occasion and month of the told and the not told, and per day of the
--   follow-up how many took it up. Never a resident; the latest 21 are kept.
-- * `link_targets`: the address behind each `/r/{token}` a card or e-mail links to. The
--   token is named by the program, occasion, button and address, the same for everyone
--   told, so an opened link says which notice's link it was and never who opened it.
-- * `link_opens`: how many times each was opened on each Japan day; nothing per person.
CREATE TABLE uptake_reports (
    id          INTEGER PRIMARY KEY,
    computed_at TEXT NOT NULL,
    computed_by TEXT NOT NULL,
    report      TEXT NOT NULL
);

CREATE TABLE link_targets (
    token    TEXT PRIMARY KEY,
    program  TEXT NOT NULL,
    occasion TEXT NOT NULL,
    button   TEXT NOT NULL CHECK (button IN ('booking', 'details')),
    url      TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE link_opens (
    token  TEXT    NOT NULL REFERENCES link_targets (token),
    day    INTEGER NOT NULL,
    opened INTEGER NOT NULL,
    PRIMARY KEY (token, day)
) WITHOUT ROWID;
