"""The CSM sentiment update and the renewal forecast at checkpoints, on the time-skipping
server with the real worker and a real database."""

from __future__ import annotations

import argparse
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from bench.drafts import audit, load_sources, read_drafts
from cli.accounts import start_account
from cli.forecast import add_forecast_parsers
from domain.messages import SentimentUpdate
from tests.workflows.helpers import (
    ALL_BUT_QBR,
    make_handoff,
    running_worker,
    settings_for_test,
    skip,
    view,
)

pytestmark = pytest.mark.slow


async def test_a_csm_call_is_validated_shown_beside_the_score_feeds_the_forecast_and_expires(
    time_skipping_env: WorkflowEnvironment,
    db_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    today = (await env.get_current_time()).date()
    account = f"fcst-{uuid.uuid4().hex[:6]}"
    # T-120 fires in 5 days, T-90 in 35.
    h = make_handoff(account, today, days_to_end=125, milestones=ALL_BUT_QBR)
    end = h.contract.end_date
    async with running_worker(env.client, db_dsn, settings) as pool:
        await start_account(env.client, h, settings)
        handle = env.client.get_workflow_handle(h.workflow_id)
        await env.sleep(timedelta(hours=1))
        before = await view(handle)

        # Refused with a reason, state untouched: an expiry in the past, and a value off the scale.
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(
                "set_sentiment",
                SentimentUpdate(value="at_risk", reason="x", author="Dana Reyes", expires_on=today),
            )
        assert "must be after today" in str(err.value.cause)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(
                "set_sentiment",
                {"value": "great", "reason": "x", "author": "Dana", "expires_on": str(end)},
            )
        after = await view(handle)
        assert after.sentiment is None
        assert [t.text for t in after.timeline] == [t.text for t in before.timeline]

        expires = today + timedelta(days=20)  # in force at T-120, expired by T-90
        await handle.execute_update(
            "set_sentiment",
            SentimentUpdate(
                value="at_risk",
                reason="champion is leaving in January",
                author="Dana Reyes",
                expires_on=expires,
            ),
        )
        v = await view(handle)
        assert v.sentiment is not None and v.sentiment.value == "at_risk"
        assert v.sentiment.reason == "champion is leaving in January"
        # shown beside the computed score, which the call does not touch
        assert (v.score, v.band, v.churn_level) == (before.score, before.band, before.churn_level)

        await skip(env, timedelta(days=6))  # past T-120
        v = await view(handle)
        f120 = v.forecast
        assert f120 is not None and f120.days_before_end == 120
        assert f120.category == "at_risk" and f120.sentiment == "at_risk"
        assert f120.sentiment_author == "Dana Reyes"
        assert f120.data_category != "at_risk"  # a scored-from-little account: likely, not at risk
        assert any("renewal forecast T-120d" in t.text and "at risk" in t.text for t in v.timeline)

        await skip(env, timedelta(days=30))  # past the expiry and T-90
        v = await view(handle)
        assert v.sentiment is None
        assert any(
            f"CSM sentiment at_risk by Dana Reyes expired on {expires}" in t.text
            for t in v.timeline
        )
        f90 = v.forecast
        assert f90 is not None and f90.days_before_end == 90
        assert f90.sentiment is None and f90.category == f90.data_category == f120.data_category

        rows = await pool.fetch(
            "SELECT days_before_end, category, data_category, sentiment, csm_owner, arr "
            "FROM renewal_forecasts WHERE account_id = $1 ORDER BY days_before_end DESC",
            account,
        )
        assert [(r["days_before_end"], r["category"], r["sentiment"]) for r in rows] == [
            (120, "at_risk", "at_risk"),
            (90, f90.category, None),
        ]
        assert rows[0]["csm_owner"] == "Dana Reyes" and float(rows[0]["arr"]) == h.contract.arr
        events = await pool.fetch(
            "SELECT payload FROM events WHERE account_id = $1 AND event_type = 'renewal.forecast'",
            account,
        )
        assert len(events) == 2

        # Each checkpoint's brief quotes its forecast (an account page and a digest line);
        # at T-90 it replaces the plain renewal-window line.
        briefs = sorted(
            (
                d
                for d in await read_drafts(db_dsn, settings.outbox_dir)
                if d.purpose == "renewal_brief" and d.account_id == account
            ),
            key=lambda d: d.key,
        )
        assert len(briefs) == 2, [d.key for d in briefs]
        t120 = next(d for d in briefs if "T-120d" in d.text)
        assert "forecast is at risk (from the data alone: likely)" in t120.text
        assert "at_risk by Dana Reyes (until " in t120.text
        assert "champion is leaving in January" in t120.text
        t90 = next(d for d in briefs if "T-90d" in d.text)
        assert "No CSM call is in force" in t90.text and "from the data alone" not in t90.text
        lines = await pool.fetch(
            "SELECT headline FROM digest_items WHERE account_id = $1 AND category = 'renewal'",
            account,
        )
        assert len(lines) == 2 and all("forecast" in r["headline"] for r in lines), lines
        problems = audit(briefs, await load_sources(db_dsn, [account]), today, 40)
        assert not problems, [(p.check, p.detail) for p in problems]

        # The portfolio table reads what was stored: the T-90 forecast is the account's latest.
        monkeypatch.setenv("DATABASE_URL", db_dsn)
        parser = argparse.ArgumentParser()
        add_forecast_parsers(parser.add_subparsers(dest="command"))
        as_of = (await env.get_current_time()).date()
        args = parser.parse_args(["forecast", "--as-of", as_of.isoformat(), "--accounts"])
        capsys.readouterr()
        assert await args.run(args) == 0
        out = capsys.readouterr().out
        assert "1 open renewal(s)" in out
        line = next(x for x in out.splitlines() if x.startswith(account))
        assert "T-90d" in line and "Dana Reyes" in line
        await handle.terminate("test done")
