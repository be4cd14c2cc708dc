-- 011: renewal forecasts. One row per account, term and renewal checkpoint (120/90/60/30
-- days before the term ends), written by the account workflow's record_renewal_forecast
-- activity when the checkpoint fires (domain/forecast.py holds the rule). The latest row
-- of each account is its forecast (`starter.py forecast`); earlier rows are the history of
-- how the call moved toward the renewal. A retried write replaces its own row.
CREATE TABLE IF NOT EXISTS renewal_forecasts (
    account_id               text NOT NULL,
    renewal_date             date NOT NULL,
    days_before_end          integer NOT NULL,
    as_of                    date NOT NULL,
    category                 text NOT NULL CHECK (category IN ('commit', 'likely', 'at_risk', 'lost')),
    data_category            text NOT NULL CHECK (data_category IN ('commit', 'likely', 'at_risk', 'lost')),
    arr                      numeric(14, 2) NOT NULL,
    csm_owner                text,
    tier                     text,
    band                     text,
    score                    numeric(5, 1),
    churn_level              text,
    churn_probability        double precision,
    probability_horizon_days integer,
    open_risks               integer NOT NULL DEFAULT 0,
    sentiment                text,
    sentiment_author         text,
    sentiment_expires_on     date,
    reasons                  jsonb NOT NULL DEFAULT '[]',
    recorded_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, renewal_date, days_before_end)
);
CREATE INDEX IF NOT EXISTS renewal_forecasts_latest
    ON renewal_forecasts (account_id, as_of DESC, days_before_end);
