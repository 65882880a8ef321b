-- Program schedules: a staff override of a program's cron schedule (NULL: the manifest's
-- applies), and what the scheduler remembers so that a missed run is caught up once
-- after downtime. Instants are milliseconds since the epoch (UTC), as
-- deliveries.next_attempt_at, because the scheduler compares them.

CREATE TABLE program_schedules (
    program       TEXT PRIMARY KEY,
    -- Staff's cron expression (classic day-of-week numbers), or NULL for the manifest's.
    expression    TEXT,
    set_by        TEXT,
    set_at        TEXT,
    -- Every fire time up to this instant has been acted on: when the program last ran, or
    -- when the scheduler first saw it. NULL: never seen by the scheduler.
    fired_through INTEGER,
    last_run_at   INTEGER
);
