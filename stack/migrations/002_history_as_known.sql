-- History as it was known: every fact a back-test reads must be dated, so
-- scoring a past date never reads a value that was written later.
--
-- 1. contracts.notice_on: the day the customer said they would leave (a
--    cancellation or non-renewal notice). end_date stays the day service ends;
--    a notice is known from notice_on, not from end_date. NULL: no notice.
--    Existing rows keep NULL (no notice on file).
-- 2. stakeholder_engagements: one row per time a stakeholder was engaged.
--    stakeholders.last_engaged_at is overwritten in place, so it cannot say
--    whether someone was engaged at a past date; this table can. Every write
--    of last_engaged_at (ETL, Sheets import, COPY, UPDATE) is appended here by
--    a trigger, and writers that know the whole history insert it directly.
--    The facts SQL reads engagement from this table only.

ALTER TABLE contracts ADD COLUMN IF NOT EXISTS notice_on date;

CREATE TABLE IF NOT EXISTS stakeholder_engagements (
    account_id      text NOT NULL,
    stakeholder_id  text NOT NULL,
    engaged_at      timestamptz NOT NULL,
    PRIMARY KEY (account_id, stakeholder_id, engaged_at)
);

-- What is on file today is the only history there is for existing rows.
INSERT INTO stakeholder_engagements (account_id, stakeholder_id, engaged_at)
SELECT account_id, stakeholder_id, last_engaged_at
FROM stakeholders WHERE last_engaged_at IS NOT NULL
ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION stakeholders_engagement_history() RETURNS trigger AS $$
BEGIN
    IF NEW.last_engaged_at IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.last_engaged_at IS DISTINCT FROM OLD.last_engaged_at) THEN
        INSERT INTO stakeholder_engagements (account_id, stakeholder_id, engaged_at)
        VALUES (NEW.account_id, NEW.stakeholder_id, NEW.last_engaged_at)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS stakeholders_engagement_history ON stakeholders;
CREATE TRIGGER stakeholders_engagement_history
    AFTER INSERT OR UPDATE OF last_engaged_at ON stakeholders
    FOR EACH ROW EXECUTE FUNCTION stakeholders_engagement_history();
