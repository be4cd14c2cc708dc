-- Usage rollup that compresses (issue 16), replacing migration 009's usage_daily.
--
-- 009 kept one row per (account, UTC day, user, event type): where users act once per event
-- type and day (the demo) that is one rollup row per raw row, so it doubled the cost of a
-- bulk write without making the scan cheaper. The facts need (activities/telemetry.py):
--   * event counts and quantities per account and event type over 30/60/90-day windows;
--   * distinct users (per account, per event type, per week) over the same windows, which
--     the facts already compute from per-user bit masks of the days with an event.
-- So two tables:
--   usage_type_daily  per (account, UTC day, event type): events, summed quantity. Small:
--                     it has no user in its key.
--   usage_user_month  per (account, UTC month, user, event type): `days`, an int4 bit mask of
--                     the days of the month with an event (bit 31 - day of month, so day 1 is
--                     bit 30 and the last day of a month is bit 0 or above). One row where 009
--                     kept up to 31, and an insert only ORs bits in (idempotent).
-- A day is (00:00, 24:00] UTC, half-open on the left like every window of the facts
-- ((as_of - N days, as_of]): an event at exactly midnight belongs to the day before (and
-- one at 00:00 on the 1st to the month before). Only valid rows are rolled up (the facts
-- leave impossible quantities and empty event types out and report them from usage_events).
--
-- Maintained by statement-level triggers with transition tables, in the writer's transaction:
-- every write path (ingest/store.py for files, the Segment endpoint and the `usage` signal;
-- COPY loads; any ETL) keeps it exact. Deletes and updates subtract from usage_type_daily and
-- recompute the affected usage_user_month rows from usage_events (a bit cannot be
-- subtracted); a TRUNCATE of usage_events empties both.

DROP TRIGGER IF EXISTS usage_daily_insert ON usage_events;
DROP TRIGGER IF EXISTS usage_daily_update ON usage_events;
DROP TRIGGER IF EXISTS usage_daily_delete ON usage_events;
DROP TRIGGER IF EXISTS usage_daily_truncate ON usage_events;
DROP FUNCTION IF EXISTS usage_daily_apply();
DROP FUNCTION IF EXISTS usage_daily_truncate();
DROP TABLE IF EXISTS usage_daily;
DROP FUNCTION IF EXISTS usage_daily_day(timestamptz);

CREATE TABLE IF NOT EXISTS usage_type_daily (
    account_id text NOT NULL,
    day        date NOT NULL,
    event_type text NOT NULL,
    events     bigint NOT NULL,
    quantity   numeric NOT NULL,
    PRIMARY KEY (account_id, day, event_type)
);

CREATE TABLE IF NOT EXISTS usage_user_month (
    account_id text NOT NULL,
    month      date NOT NULL,  -- the 1st of the UTC month
    user_id    text NOT NULL,
    event_type text NOT NULL,
    days       integer NOT NULL,  -- bit (31 - day of month) set: an event that day
    PRIMARY KEY (account_id, month, user_id, event_type)
);

-- The UTC day an event counts for: (00:00, 24:00], so midnight belongs to the day before;
-- its month, and its bit in a month's mask. Plain SQL bodies with no nested calls, so the
-- planner inlines them (a call per row would cost more than the rollup itself).
CREATE OR REPLACE FUNCTION usage_day(ts timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ((ts AT TIME ZONE 'UTC') - interval '1 microsecond')::date $$;

CREATE OR REPLACE FUNCTION usage_month(ts timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT date_trunc('month', (ts AT TIME ZONE 'UTC') - interval '1 microsecond')::date $$;

CREATE OR REPLACE FUNCTION usage_day_bit(ts timestamptz) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 1 << (31 - extract(day FROM (ts AT TIME ZONE 'UTC') - interval '1 microsecond')::int) $$;

-- The facts SQL's validity rule (activities/telemetry.py _VALID_OVERRIDE["usage_events"]).
CREATE OR REPLACE FUNCTION usage_valid(quantity numeric, event_type text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT quantity >= 0 AND quantity < 'Infinity'::numeric AND btrim(event_type) <> '' $$;

CREATE OR REPLACE FUNCTION usage_rollup_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        WITH gone AS (
            SELECT account_id, usage_day(occurred_at) AS day, event_type,
                   count(*) AS events, sum(quantity) AS quantity
            FROM old_rows WHERE usage_valid(quantity, event_type)
            GROUP BY 1, 2, 3
        )
        UPDATE usage_type_daily d
        SET events = d.events - gone.events, quantity = d.quantity - gone.quantity
        FROM gone
        WHERE (d.account_id, d.day, d.event_type) = (gone.account_id, gone.day, gone.event_type);
        DELETE FROM usage_type_daily d
        USING (SELECT DISTINCT account_id, usage_day(occurred_at) AS day, event_type
               FROM old_rows) o
        WHERE (d.account_id, d.day, d.event_type) = (o.account_id, o.day, o.event_type)
          AND d.events <= 0;
        -- a day's bit stays only if a valid row of that user and type is still on file
        -- (for an UPDATE, the new rows are already there; they are ORed in again below)
        UPDATE usage_user_month m
        SET days = coalesce((
            SELECT bit_or(usage_day_bit(e.occurred_at))
            FROM usage_events e
            WHERE e.account_id = m.account_id
              AND e.occurred_at > m.month::timestamp AT TIME ZONE 'UTC'
              AND e.occurred_at <= (m.month + interval '1 month')::timestamp AT TIME ZONE 'UTC'
              AND e.user_id = m.user_id AND e.event_type = m.event_type
              AND usage_valid(e.quantity, e.event_type)), 0)
        FROM (SELECT DISTINCT account_id, usage_month(occurred_at) AS month, user_id, event_type
              FROM old_rows WHERE usage_valid(quantity, event_type)) o
        WHERE (m.account_id, m.month, m.user_id, m.event_type)
            = (o.account_id, o.month, o.user_id, o.event_type);
        DELETE FROM usage_user_month m
        USING (SELECT DISTINCT account_id, usage_month(occurred_at) AS month, user_id, event_type
               FROM old_rows) o
        WHERE (m.account_id, m.month, m.user_id, m.event_type)
            = (o.account_id, o.month, o.user_id, o.event_type)
          AND m.days = 0;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO usage_type_daily AS d (account_id, day, event_type, events, quantity)
        SELECT account_id, usage_day(occurred_at), event_type, count(*), sum(quantity)
        FROM new_rows WHERE usage_valid(quantity, event_type)
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3  -- one lock order for concurrent writers
        ON CONFLICT (account_id, day, event_type) DO UPDATE
        SET events = d.events + excluded.events, quantity = d.quantity + excluded.quantity;
        INSERT INTO usage_user_month AS m (account_id, month, user_id, event_type, days)
        SELECT account_id, usage_month(occurred_at), user_id, event_type,
               bit_or(usage_day_bit(occurred_at))
        FROM new_rows WHERE usage_valid(quantity, event_type)
        GROUP BY 1, 2, 3, 4
        ORDER BY 1, 2, 3, 4
        ON CONFLICT (account_id, month, user_id, event_type) DO UPDATE
        SET days = m.days | excluded.days
        WHERE m.days | excluded.days <> m.days;  -- most re-sent days change nothing: no write
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER usage_rollup_insert AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_apply();
CREATE TRIGGER usage_rollup_update AFTER UPDATE ON usage_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_apply();
CREATE TRIGGER usage_rollup_delete AFTER DELETE ON usage_events
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_apply();

CREATE OR REPLACE FUNCTION usage_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- the rollup tables may be in the same TRUNCATE statement (then they are already empty,
    -- and truncating them again here would fail as "in use")
    IF EXISTS (SELECT 1 FROM usage_type_daily) THEN
        TRUNCATE usage_type_daily;
    END IF;
    IF EXISTS (SELECT 1 FROM usage_user_month) THEN
        TRUNCATE usage_user_month;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER usage_rollup_truncate AFTER TRUNCATE ON usage_events
    FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_truncate();

-- Backfill from the rows already there (in the migration's transaction: no write is lost
-- or counted twice).
INSERT INTO usage_type_daily (account_id, day, event_type, events, quantity)
SELECT account_id, usage_day(occurred_at), event_type, count(*), sum(quantity)
FROM usage_events WHERE usage_valid(quantity, event_type)
GROUP BY 1, 2, 3;
INSERT INTO usage_user_month (account_id, month, user_id, event_type, days)
SELECT account_id, usage_month(occurred_at), user_id, event_type,
       bit_or(usage_day_bit(occurred_at))
FROM usage_events WHERE usage_valid(quantity, event_type)
GROUP BY 1, 2, 3, 4;
