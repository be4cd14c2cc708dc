-- Daily usage rollup (issue 16): the facts SQL reads this instead of raw usage_events when
-- it scores as of 00:00 UTC (the scheduled portfolio scan, back-tests, calibration), so the
-- daily cost grows with accounts and users, not with raw event volume.
--
-- One row per account, UTC day, user and event type: events and summed quantity. Per user,
-- because the facts count distinct users over 30/60/90-day windows and weeks, which daily
-- distinct counts cannot be summed into. A day is (00:00, 24:00] UTC, half-open on the left
-- like every window of the facts ((as_of - N days, as_of]): an event at exactly midnight
-- belongs to the day before. Only valid rows are rolled up (the facts leave impossible
-- quantities and empty event types out and report them from usage_events).
--
-- Maintained incrementally by statement-level triggers with transition tables: every write
-- path (ingest/store.py for files, the Segment endpoint and the `usage` signal; COPY loads;
-- any ETL) updates it in the same transaction; deletes and updates are subtracted, and a
-- TRUNCATE of usage_events empties it.
CREATE TABLE IF NOT EXISTS usage_daily (
    account_id text NOT NULL,
    day        date NOT NULL,
    user_id    text NOT NULL,
    event_type text NOT NULL,
    events     bigint NOT NULL,
    quantity   numeric NOT NULL,
    PRIMARY KEY (account_id, day, user_id, event_type)
);

CREATE OR REPLACE FUNCTION usage_daily_day(ts timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ((ts - interval '1 microsecond') AT TIME ZONE 'UTC')::date;

CREATE OR REPLACE FUNCTION usage_daily_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        WITH gone AS (
            SELECT account_id, usage_daily_day(occurred_at) AS day, user_id, event_type,
                   count(*) AS events, sum(quantity) AS quantity
            FROM old_rows
            WHERE quantity >= 0 AND quantity < 'Infinity'::numeric AND btrim(event_type) <> ''
            GROUP BY 1, 2, 3, 4
        )
        UPDATE usage_daily d
        SET events = d.events - gone.events, quantity = d.quantity - gone.quantity
        FROM gone
        WHERE (d.account_id, d.day, d.user_id, d.event_type)
            = (gone.account_id, gone.day, gone.user_id, gone.event_type);
        DELETE FROM usage_daily d
        USING (SELECT DISTINCT account_id, usage_daily_day(occurred_at) AS day, user_id,
                      event_type FROM old_rows) o
        WHERE (d.account_id, d.day, d.user_id, d.event_type)
            = (o.account_id, o.day, o.user_id, o.event_type)
          AND d.events <= 0;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO usage_daily AS d (account_id, day, user_id, event_type, events, quantity)
        SELECT account_id, usage_daily_day(occurred_at), user_id, event_type,
               count(*), sum(quantity)
        FROM new_rows
        WHERE quantity >= 0 AND quantity < 'Infinity'::numeric AND btrim(event_type) <> ''
        GROUP BY 1, 2, 3, 4
        ORDER BY 1, 2, 3, 4  -- one lock order for concurrent writers
        ON CONFLICT (account_id, day, user_id, event_type) DO UPDATE
        SET events = d.events + excluded.events, quantity = d.quantity + excluded.quantity;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS usage_daily_insert ON usage_events;
CREATE TRIGGER usage_daily_insert AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_daily_apply();
DROP TRIGGER IF EXISTS usage_daily_update ON usage_events;
CREATE TRIGGER usage_daily_update AFTER UPDATE ON usage_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_daily_apply();
DROP TRIGGER IF EXISTS usage_daily_delete ON usage_events;
CREATE TRIGGER usage_daily_delete AFTER DELETE ON usage_events
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_daily_apply();

CREATE OR REPLACE FUNCTION usage_daily_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- usage_daily may be in the same TRUNCATE statement (then it is already empty, and
    -- truncating it again here would fail as "in use")
    IF EXISTS (SELECT 1 FROM usage_daily) THEN
        TRUNCATE usage_daily;
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS usage_daily_truncate ON usage_events;
CREATE TRIGGER usage_daily_truncate AFTER TRUNCATE ON usage_events
    FOR EACH STATEMENT EXECUTE FUNCTION usage_daily_truncate();

-- Backfill from the rows already there (in the migration's transaction: no write is lost
-- or counted twice).
INSERT INTO usage_daily (account_id, day, user_id, event_type, events, quantity)
SELECT account_id, usage_daily_day(occurred_at), user_id, event_type, count(*), sum(quantity)
FROM usage_events
WHERE quantity >= 0 AND quantity < 'Infinity'::numeric AND btrim(event_type) <> ''
GROUP BY 1, 2, 3, 4
ON CONFLICT (account_id, day, user_id, event_type) DO NOTHING;

-- The facts still report impossible usage rows by row, from usage_events: a partial index
-- holds just those, so the report does not read the usage window (the predicate is the
-- facts SQL's, activities/telemetry.py _bad("usage_events"), so the planner can use it).
CREATE INDEX IF NOT EXISTS usage_events_bad ON usage_events (account_id, occurred_at)
    WHERE (coalesce(quantity < 0, false)
           OR coalesce(quantity >= 'Infinity'::numeric, false)
           OR coalesce(btrim(event_type) = '', false));
