-- usage_events partitioned by month (issue 16): native range partitioning on occurred_at, one
-- partition per UTC calendar month [1st 00:00, next 1st 00:00) named usage_events_pYYYYMM,
-- plus a DEFAULT partition so no row is ever refused (a month with no partition yet lands
-- there; usage_events_ensure_months moves it out when it creates the month). Old months are
-- detached (`starter.py usage archive --before YYYY-MM`) and archived as plain tables.
--
-- Message-id deduplication: a unique index on a partitioned table must include the partition
-- key, so (account_id, message_id) is now the primary key of usage_message_ids. The ingest
-- write path (ingest/store.py) claims ids there with ON CONFLICT DO NOTHING and writes only
-- the rows whose id it claimed (a concurrent writer of the same id waits, then skips); any
-- other write (COPY, plain INSERT) registers its ids from the insert trigger, where a repeated
-- id is a unique violation, as the unique index of migration 008 made it.

CREATE TABLE IF NOT EXISTS usage_message_ids (
    account_id text NOT NULL,
    message_id text NOT NULL,
    PRIMARY KEY (account_id, message_id)
);

ALTER TABLE usage_events RENAME TO usage_events_unpartitioned;
DROP TRIGGER usage_rollup_insert ON usage_events_unpartitioned;
DROP TRIGGER usage_rollup_update ON usage_events_unpartitioned;
DROP TRIGGER usage_rollup_delete ON usage_events_unpartitioned;
DROP TRIGGER usage_rollup_truncate ON usage_events_unpartitioned;
ALTER INDEX usage_events_account_time RENAME TO usage_events_unpartitioned_account_time;
ALTER INDEX usage_events_bad RENAME TO usage_events_unpartitioned_bad;

CREATE TABLE usage_events (
    account_id  text NOT NULL,
    user_id     text NOT NULL,
    occurred_at timestamptz NOT NULL,
    event_type  text NOT NULL,
    quantity    numeric NOT NULL DEFAULT 1,
    message_id  text
) PARTITION BY RANGE (occurred_at);
CREATE TABLE usage_events_default PARTITION OF usage_events DEFAULT;
CREATE INDEX usage_events_account_time ON usage_events (account_id, occurred_at);
-- the facts' impossible rows (migration 009's partial index, same predicate)
CREATE INDEX usage_events_bad ON usage_events (account_id, occurred_at)
    WHERE (coalesce(quantity < 0, false)
           OR coalesce(quantity >= 'Infinity'::numeric, false)
           OR coalesce(btrim(event_type) = '', false));

-- Create the monthly partitions of these months (any day of the month will do) that do not
-- exist yet, moving the rows the DEFAULT partition holds for them; months more than one
-- month ahead of now are left to DEFAULT (a bad clock must not create years of partitions).
-- Returns the partitions created. A month that exists costs a catalog lookup; creating one
-- is serialized by an advisory lock (concurrent writers).
CREATE OR REPLACE FUNCTION usage_events_ensure_months(months date[]) RETURNS text[]
    LANGUAGE plpgsql AS $$
DECLARE
    m date;
    part text;
    lo timestamptz;
    hi timestamptz;
    made text[] := '{}';
BEGIN
    FOR m IN
        SELECT DISTINCT date_trunc('month', x::timestamp)::date FROM unnest(months) x
        WHERE x IS NOT NULL
          AND x < date_trunc('month', (now() AT TIME ZONE 'UTC')) + interval '2 months'
        ORDER BY 1
    LOOP
        part := 'usage_events_p' || to_char(m, 'YYYYMM');
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        PERFORM pg_advisory_xact_lock(hashtext('usage_events_ensure_months'));
        CONTINUE WHEN to_regclass(part) IS NOT NULL;  -- made while this one waited
        lo := m::timestamp AT TIME ZONE 'UTC';
        hi := (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE %I (LIKE usage_events INCLUDING DEFAULTS)', part);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK '
                       '(occurred_at >= %L AND occurred_at < %L)', part, part || '_range', lo, hi);
        -- the DEFAULT partition's rows of that month move (no statement trigger fires on a
        -- partition: the rows and the rollup stay as they are)
        EXECUTE format('WITH moved AS (DELETE FROM usage_events_default '
                       'WHERE occurred_at >= $1 AND occurred_at < $2 RETURNING *) '
                       'INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
        EXECUTE format('ALTER TABLE usage_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       part, lo, hi);
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_range');
        made := made || part;
    END LOOP;
    RETURN made;
END
$$;

-- The rows already there, into their months (no trigger yet: the rollup already holds them).
SELECT usage_events_ensure_months(ARRAY(
    SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date
    FROM usage_events_unpartitioned
    UNION SELECT (now() AT TIME ZONE 'UTC')::date
    UNION SELECT ((now() AT TIME ZONE 'UTC') + interval '1 month')::date));
INSERT INTO usage_events (account_id, user_id, occurred_at, event_type, quantity, message_id)
SELECT account_id, user_id, occurred_at, event_type, quantity, message_id
FROM usage_events_unpartitioned;
INSERT INTO usage_message_ids (account_id, message_id)
SELECT account_id, message_id FROM usage_events_unpartitioned WHERE message_id IS NOT NULL;
DROP TABLE usage_events_unpartitioned;

CREATE OR REPLACE FUNCTION usage_message_ids_register() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- ingest/store.py has claimed its rows' ids already (it sets this for its statement)
    IF coalesce(current_setting('vim.usage_ids_claimed', true), '') <> 'on' THEN
        INSERT INTO usage_message_ids (account_id, message_id)
        SELECT account_id, message_id FROM new_rows WHERE message_id IS NOT NULL;
    END IF;
    RETURN NULL;
END
$$;

-- Migration 010's rollup triggers, now on the partitioned table (they see every partition's
-- rows in their transition tables), and the id registration.
CREATE TRIGGER usage_rollup_insert AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_apply();
CREATE TRIGGER usage_rollup_update AFTER UPDATE ON usage_events
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_apply();
CREATE TRIGGER usage_rollup_delete AFTER DELETE ON usage_events
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_apply();
CREATE TRIGGER usage_rollup_truncate AFTER TRUNCATE ON usage_events
    FOR EACH STATEMENT EXECUTE FUNCTION usage_rollup_truncate();
CREATE TRIGGER usage_message_ids_insert AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_message_ids_register();

-- A deleted row's id is forgotten, and a TRUNCATE forgets them all (as when the unique index
-- of migration 008 held them): the same message sent again is written again. A detached
-- (archived) month keeps its ids, so a late re-send of an archived event is still dropped.
CREATE OR REPLACE FUNCTION usage_message_ids_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF EXISTS (SELECT 1 FROM usage_message_ids) THEN
            TRUNCATE usage_message_ids;
        END IF;
    ELSE
        DELETE FROM usage_message_ids m
        USING (SELECT DISTINCT account_id, message_id FROM old_rows
               WHERE message_id IS NOT NULL) o
        WHERE (m.account_id, m.message_id) = (o.account_id, o.message_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER usage_message_ids_delete AFTER DELETE ON usage_events
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION usage_message_ids_forget();
CREATE TRIGGER usage_message_ids_truncate AFTER TRUNCATE ON usage_events
    FOR EACH STATEMENT EXECUTE FUNCTION usage_message_ids_forget();
