"""THE KEY TEST: the portfolio query and the per-account path agree exactly.

On the demo portfolio (all 240 accounts), assess_portfolio for everyone at
once must give, field for field, the same assessment (facts, snapshot with
sub-scores and drivers, churn, findings, opportunities, decision) as the
path a single workflow takes for its own account. A day of snapshots is
saved first so the drivers (previous snapshot) are compared too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from activities.health import assess_pipelined, assess_portfolio, assess_with_facts
from activities.snapshots import save_assessments
from demo.load import load_portfolio
from demo.portfolio import generate_portfolio
from domain.config import load_health_config

AS_OF_DAY = date(2026, 11, 21)
T = datetime.combine(AS_OF_DAY, time(), UTC)
CONFIG = load_health_config()


async def test_portfolio_and_per_account_paths_are_identical(db: asyncpg.Connection) -> None:
    portfolio = generate_portfolio(7, AS_OF_DAY, 240)
    await load_portfolio(db, portfolio)

    yesterday = await assess_portfolio(db, T - timedelta(days=7), CONFIG)
    await save_assessments(db, list(yesterday.values()))

    everyone = await assess_with_facts(db, T, CONFIG)
    assert set(everyone) == set(portfolio.account_ids)
    with_drivers = 0
    for account_id, (facts, assessment) in everyone.items():
        one = await assess_with_facts(db, T, CONFIG, [account_id])
        assert set(one) == {account_id}
        one_facts, one_assessment = one[account_id]
        assert one_facts == facts, account_id
        assert one_assessment.model_dump() == assessment.model_dump(), account_id
        with_drivers += bool(assessment.snapshot.drivers)
    assert with_drivers > 0  # the previous snapshots were used on both paths

    # the demo's bad rows are reported on their account and row, on both paths
    for bad in portfolio.bad_rows:
        issues = everyone[bad.account_id][1].snapshot.data_issues
        assert any(i.table == bad.table for i in issues), bad


async def test_scheduled_scan_parts_score_like_one_pass(db: asyncpg.Connection) -> None:
    """The scheduled scan scores a chunk in overlapped parts (facts of the next part while a
    thread scores this one): every account gets the assessment of the one-pass path."""
    portfolio = generate_portfolio(7, AS_OF_DAY, 60)
    await load_portfolio(db, portfolio)
    await save_assessments(
        db, list((await assess_portfolio(db, T - timedelta(days=7), CONFIG)).values())
    )

    everyone = await assess_with_facts(db, T, CONFIG)
    parted = await assess_pipelined(db, T, CONFIG, sorted(everyone), 7)
    assert set(parted) == set(everyone) == set(portfolio.account_ids)
    for account_id, (facts, assessment) in everyone.items():
        assert parted[account_id][0] == facts, account_id
        assert parted[account_id][1].model_dump() == assessment.model_dump(), account_id
    assert any(a.snapshot.drivers for _, a in parted.values())  # previous snapshots used
