-- Which copy of the database this is. The same id is kept in a file beside it in the data
-- directory (`oshirase.db.identity`), which no backup or replica carries: a database that
-- comes back without it, or with another, was restored from a copy, and startup says so.
CREATE TABLE database_identity (
    id TEXT NOT NULL PRIMARY KEY
);
