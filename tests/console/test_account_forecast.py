"""The account page shows the CSM's call and the renewal forecast beside the computed score
(the workflow's `view`; here a stand-in for the query, over the real scored portfolio)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import pytest

from demo.portfolio import REFERENCE_ACCOUNT_ID
from domain.forecast import CsmSentiment, RenewalForecast
from domain.state import AccountView
from tests.console.conftest import AS_OF, console_settings, http, make_console


def _view(sentiment: CsmSentiment | None, forecast: RenewalForecast | None) -> AccountView:
    return AccountView(
        account_id=REFERENCE_ACCOUNT_ID,
        name="Northwind",
        phase="8 Value Proof",
        phase_entered_at=None,
        waiting_for="",
        paused=False,
        band="AMBER",
        score=61.0,
        churn_level="MEDIUM",
        drivers=[],
        open_findings=[],
        opportunities=[],
        renewal_date=date(2027, 5, 1),
        arr=60_000,
        csm_owner="Dana Reyes",
        milestones=[],
        next_checkpoints=[],
        save_workflow_id=None,
        timeline=[],
        runs=1,
        signals_received=0,
        signals_rejected=0,
        sentiment=sentiment,
        forecast=forecast,
    )


async def test_the_csm_call_and_forecast_are_shown_beside_the_score(
    pool: asyncpg.Pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = CsmSentiment(
        value="at_risk",
        reason="<b>champion</b> leaving",
        author="Dana Reyes",
        expires_on=date(2027, 1, 15),
        recorded_at=datetime(2026, 11, 20, tzinfo=UTC),
    )
    forecast = RenewalForecast(
        account_id=REFERENCE_ACCOUNT_ID,
        as_of=AS_OF,
        renewal_date=date(2027, 5, 1),
        days_before_end=120,
        arr=60_000,
        category="at_risk",
        data_category="likely",
        reasons=["churn risk MEDIUM"],
    )
    console = make_console(console_settings(tmp_path), pool)

    async def fake_view(account_id: str) -> tuple[AccountView | None, str]:
        return _view(call, forecast), "running"

    monkeypatch.setattr(console, "view", fake_view)
    async with http(console) as c:
        page = (await c.get(f"/accounts/{REFERENCE_ACCOUNT_ID}")).text
    card = page.split('id="csm-call"')[1].split("<h2>")[0]
    assert "<b>at_risk</b> by Dana Reyes until 2027-01-15" in card
    assert "&lt;b&gt;champion&lt;/b&gt; leaving" in card  # customer-facing text is escaped
    assert "renewal forecast T-120d" in card and "<b>at risk</b>" in card
    assert "(data alone: likely)" in card
    # the computed score is still the snapshot's, shown on its own card
    assert 'id="score"' in page.split('id="csm-call"')[0]
