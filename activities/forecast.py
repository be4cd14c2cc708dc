"""Renewal forecasts in Postgres: the write the account workflow's checkpoint makes, and the
portfolio read of ``starter.py forecast`` (table ``renewal_forecasts``, migration 011).

The rule itself is pure (``domain/forecast.py``); what is added here is what only the
database knows at the checkpoint: the calibrated churn probability of the account's band
in the config in force (``domain.calibration.band_churn_rate``) and the customer's notice
on the contract in force.
"""

from __future__ import annotations

import json
from datetime import date

import asyncpg

from domain.calibration import band_churn_rate
from domain.config import HealthConfig
from domain.forecast import RenewalForecast, forecast_renewal
from workflows.activity_models import RenewalForecastRequest


async def compute_and_store(
    conn: asyncpg.Connection, config: HealthConfig, req: RenewalForecastRequest
) -> RenewalForecast:
    """Fill in the probability and the notice, apply the rule, upsert the row."""
    inp = req.inputs
    found = band_churn_rate(config, inp.band)
    probability, horizon = (
        (found[1].rate, found[0])
        if found is not None and found[1].rate is not None
        else (None, None)
    )
    notice_on = await conn.fetchval(
        """SELECT notice_on FROM contracts WHERE account_id = $1 AND start_date <= $2
           ORDER BY start_date DESC LIMIT 1""",
        inp.account_id,
        inp.as_of,
    )
    f = forecast_renewal(
        inp.model_copy(
            update={
                "churn_probability": probability,
                "probability_horizon_days": horizon,
                "notice_on": notice_on,
            }
        )
    )
    await conn.execute(
        """INSERT INTO renewal_forecasts (account_id, renewal_date, days_before_end, as_of,
               category, data_category, arr, csm_owner, tier, band, score, churn_level,
               churn_probability, probability_horizon_days, open_risks, sentiment,
               sentiment_author, sentiment_expires_on, reasons, recorded_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                   $17, $18, $19::jsonb, now())
           ON CONFLICT (account_id, renewal_date, days_before_end) DO UPDATE SET
               as_of = EXCLUDED.as_of, category = EXCLUDED.category,
               data_category = EXCLUDED.data_category, arr = EXCLUDED.arr,
               csm_owner = EXCLUDED.csm_owner, tier = EXCLUDED.tier, band = EXCLUDED.band,
               score = EXCLUDED.score, churn_level = EXCLUDED.churn_level,
               churn_probability = EXCLUDED.churn_probability,
               probability_horizon_days = EXCLUDED.probability_horizon_days,
               open_risks = EXCLUDED.open_risks, sentiment = EXCLUDED.sentiment,
               sentiment_author = EXCLUDED.sentiment_author,
               sentiment_expires_on = EXCLUDED.sentiment_expires_on,
               reasons = EXCLUDED.reasons, recorded_at = now()""",
        f.account_id,
        f.renewal_date,
        f.days_before_end,
        f.as_of,
        f.category,
        f.data_category,
        f.arr,
        req.csm_owner,
        req.tier,
        f.band,
        f.score,
        f.churn_level,
        f.churn_probability,
        f.probability_horizon_days,
        f.open_risks,
        f.sentiment,
        f.sentiment_author,
        f.sentiment_expires_on,
        json.dumps(f.reasons),
    )
    return f


class StoredForecast(RenewalForecast):
    csm_owner: str | None = None
    tier: str | None = None


async def latest_forecasts(conn: asyncpg.Connection, as_of: date) -> list[StoredForecast]:
    """The latest forecast of each account recorded on or before ``as_of`` for a term that
    has not ended by then (a renewed or churned term drops out of the open pipeline)."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (account_id) *
           FROM renewal_forecasts
           WHERE as_of <= $1 AND renewal_date >= $1
           ORDER BY account_id, as_of DESC, days_before_end ASC""",
        as_of,
    )
    out = []
    for r in rows:
        d = dict(r)
        d["arr"] = float(d["arr"])
        d["score"] = float(d["score"]) if d["score"] is not None else None
        d["reasons"] = json.loads(d["reasons"])
        d.pop("recorded_at", None)
        out.append(StoredForecast.model_validate(d))
    return out
