-- Value in Motion schema, version 1.
--
-- Two kinds of tables:
--   * telemetry: filled by the customer's ETL (or the demo generator, or the
--     Google Sheets import). No CHECK constraints on value ranges on purpose:
--     a bad row must land so that scoring can report it by account and row and
--     leave it out, rather than make a whole bulk load fail.
--   * system-owned: written only by this system (snapshots, findings,
--     deliveries, the event bus, model usage).

-- ---------------------------------------------------------------- telemetry

CREATE TABLE IF NOT EXISTS accounts (
    account_id   text PRIMARY KEY,
    name         text NOT NULL,
    tier         text NOT NULL DEFAULT 'tier-3',        -- tier-1 | tier-2 | tier-3
    industry     text,
    csm_owner    text,
    csm_email    text,
    rep_owner    text,
    rep_email    text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per contract term or amendment. The row in force at a date is the
-- latest one with start_date <= that date. A term that ends with no later row
-- is a churn; a later row with more seats or modules is an expansion.
CREATE TABLE IF NOT EXISTS contracts (
    contract_id      bigserial PRIMARY KEY,
    account_id       text NOT NULL REFERENCES accounts(account_id),
    start_date       date NOT NULL,
    end_date         date NOT NULL,
    arr              numeric(14, 2) NOT NULL,
    seats_purchased  integer NOT NULL,
    price_per_seat   numeric(12, 2) NOT NULL,
    licensed_modules text[] NOT NULL DEFAULT '{}',
    UNIQUE (account_id, start_date)
);

CREATE TABLE IF NOT EXISTS product_users (
    account_id     text NOT NULL REFERENCES accounts(account_id),
    user_id        text NOT NULL,
    email          text,
    role           text,
    created_at     timestamptz NOT NULL,
    deactivated_at timestamptz,
    PRIMARY KEY (account_id, user_id)
);

-- The big one: loaded with COPY. event_type is 'login' or '<module>.<feature>'
-- (e.g. 'reports.export'); '<module>.limit_hit' records a plan limit reached.
CREATE TABLE IF NOT EXISTS usage_events (
    account_id  text NOT NULL,
    user_id     text NOT NULL,
    occurred_at timestamptz NOT NULL,
    event_type  text NOT NULL,
    quantity    numeric NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS usage_events_account_time ON usage_events (account_id, occurred_at);

CREATE TABLE IF NOT EXISTS support_tickets (
    ticket_id   text PRIMARY KEY,
    account_id  text NOT NULL,
    opened_at   timestamptz NOT NULL,
    closed_at   timestamptz,
    priority    text NOT NULL DEFAULT 'normal',           -- low | normal | high | urgent
    sentiment   real,                                     -- -1 (angry) .. 1 (happy)
    escalated   boolean NOT NULL DEFAULT false,
    subject     text,
    body        text
);
CREATE INDEX IF NOT EXISTS support_tickets_account_time ON support_tickets (account_id, opened_at);

CREATE TABLE IF NOT EXISTS invoices (
    invoice_id  text PRIMARY KEY,
    account_id  text NOT NULL,
    issued_on   date NOT NULL,
    due_on      date NOT NULL,
    paid_on     date,
    amount      numeric(14, 2) NOT NULL
);
CREATE INDEX IF NOT EXISTS invoices_account ON invoices (account_id, due_on);

CREATE TABLE IF NOT EXISTS nps_responses (
    response_id  text PRIMARY KEY,
    account_id   text NOT NULL,
    respondent   text,
    responded_at timestamptz NOT NULL,
    score        integer NOT NULL,                        -- 0..10
    comment      text
);
CREATE INDEX IF NOT EXISTS nps_account_time ON nps_responses (account_id, responded_at);

CREATE TABLE IF NOT EXISTS interactions (
    interaction_id text PRIMARY KEY,
    account_id     text NOT NULL,
    occurred_at    timestamptz NOT NULL,
    kind           text NOT NULL,                         -- meeting | call | email | qbr | kickoff | workshop
    meaningful     boolean NOT NULL DEFAULT true,
    attendees      integer,
    notes          text
);
CREATE INDEX IF NOT EXISTS interactions_account_time ON interactions (account_id, occurred_at);

CREATE TABLE IF NOT EXISTS stakeholders (
    stakeholder_id  text PRIMARY KEY,
    account_id      text NOT NULL,
    name            text NOT NULL,
    email           text,
    title           text,
    role            text,                                 -- executive_sponsor | champion | admin | user
    is_champion     boolean NOT NULL DEFAULT false,
    joined_on       date,
    left_on         date,
    last_engaged_at timestamptz
);
CREATE INDEX IF NOT EXISTS stakeholders_account ON stakeholders (account_id);

-- Technical health from the TAM side: an input to the commercial score.
CREATE TABLE IF NOT EXISTS tam_health (
    account_id  text NOT NULL,
    measured_at timestamptz NOT NULL,
    score       integer NOT NULL,                         -- 0..100
    rag         text,                                     -- RED | AMBER | GREEN
    escalation  boolean NOT NULL DEFAULT false,
    note        text,
    PRIMARY KEY (account_id, measured_at)
);

-- ------------------------------------------------------------ system-owned

CREATE TABLE IF NOT EXISTS health_snapshots (
    account_id     text NOT NULL,
    as_of          timestamptz NOT NULL,
    config_version text NOT NULL,
    score          numeric(5, 1),
    band           text,
    coverage       numeric(4, 3) NOT NULL,
    churn_risk     text,
    payload        jsonb NOT NULL,                        -- the whole explained snapshot
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, as_of)
);

CREATE TABLE IF NOT EXISTS findings (
    finding_id    text PRIMARY KEY,                       -- deterministic: kind + account + as_of
    account_id    text NOT NULL,
    as_of         timestamptz NOT NULL,
    kind          text NOT NULL,                          -- muda | mura | muri | churn | expansion
    severity      text NOT NULL,
    dollar_impact numeric(14, 2),
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS findings_account_time ON findings (account_id, as_of);

-- Every draft, page and message. idempotency_key is derived from the workflow
-- and the purpose, so a retried activity finds its earlier row and makes
-- nothing new.
CREATE TABLE IF NOT EXISTS deliveries (
    idempotency_key text PRIMARY KEY,
    account_id      text NOT NULL,
    channel         text NOT NULL,                        -- notion | gmail | slack | outbox ...
    purpose         text NOT NULL,
    status          text NOT NULL,                        -- pending | delivered | failed
    external_id     text,
    target          text,
    payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
    error           text,
    attempts        integer NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS deliveries_account ON deliveries (account_id, created_at);

-- The event bus: an outbox table plus NOTIFY on insert.
CREATE TABLE IF NOT EXISTS events (
    event_id    bigserial PRIMARY KEY,
    event_key   text NOT NULL UNIQUE,                     -- idempotency
    account_id  text,
    event_type  text NOT NULL,
    payload     jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION events_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('vim_events', NEW.event_id::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS events_notify ON events;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_notify();

CREATE TABLE IF NOT EXISTS llm_usage (
    id             bigserial PRIMARY KEY,
    account_id     text,
    purpose        text NOT NULL,
    model          text,
    input_tokens   integer NOT NULL DEFAULT 0,
    output_tokens  integer NOT NULL DEFAULT 0,
    cache_read_tokens  integer NOT NULL DEFAULT 0,
    cache_write_tokens integer NOT NULL DEFAULT 0,
    fallback       boolean NOT NULL DEFAULT false,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
