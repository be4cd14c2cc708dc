"""Portfolio projections of the CS console (domain/portfolio.py)."""

from __future__ import annotations

from datetime import date

from domain.health import UNSCORED
from domain.portfolio import (
    Filters,
    PortfolioRow,
    apply_filters,
    arr_at_risk,
    arr_by,
    books,
    forecast_category,
    phase_counts,
    renewal_checkpoints,
    riskiest,
    upcoming_renewals,
)

AS_OF = date(2026, 11, 21)


def row(aid: str, **kw: object) -> PortfolioRow:
    base: dict[str, object] = {
        "account_id": aid,
        "name": aid.title(),
        "tier": "tier-2",
        "csm_owner": "Dana",
        "arr": 10_000.0,
        "renewal_date": date(2027, 6, 1),
    }
    base.update(kw)
    return PortfolioRow(**base)  # type: ignore[arg-type]


ROWS = [
    row("a", band="RED", churn_level="CRITICAL", score=30, arr=50_000, tier="tier-1"),
    row("b", band="RED", churn_level="CRITICAL", score=25, arr=20_000, csm_owner="Lee"),
    row("c", band="AMBER", churn_level="HIGH", score=55, renewal_date=date(2026, 12, 25)),
    row("d", band="GREEN", churn_level="LOW", score=88, arr=80_000, phase="4-value-activation"),
    row("e"),  # not scored yet
    row("f", band=UNSCORED, churn_level="LOW", score=52, coverage=0.2),
]


def test_arr_at_risk_counts_high_and_critical_only() -> None:
    assert arr_at_risk(ROWS) == 80_000


def test_heatmap_cells_sum_arr_per_tier_and_band() -> None:
    grid = arr_by(ROWS, "tier", "band")
    assert grid["tier-1"]["RED"].arr == 50_000
    assert grid["tier-2"]["RED"].accounts == 1
    assert grid["tier-2"][UNSCORED].arr == 20_000  # no snapshot (e) or too little data (f)
    assert sum(c.arr for r in grid.values() for c in r.values()) == sum(r.arr for r in ROWS)


def test_riskiest_orders_by_level_then_lowest_score() -> None:
    assert [r.account_id for r in riskiest(ROWS)] == ["b", "a", "c", "f", "d"]


def test_filters_and_phase_counts() -> None:
    assert [r.account_id for r in apply_filters(ROWS, Filters(csm="Lee"), AS_OF)] == ["b"]
    assert [r.account_id for r in apply_filters(ROWS, Filters(renewal_days=60), AS_OF)] == ["c"]
    assert [r.account_id for r in apply_filters(ROWS, Filters(tier="tier-1"), AS_OF)] == ["a"]
    assert phase_counts(ROWS) == [("4-value-activation", 1), ("no workflow", 5)]


def test_renewals_forecast_and_checkpoints() -> None:
    due = upcoming_renewals(ROWS, AS_OF, days=120)
    assert [r.account_id for r in due] == ["c"]
    # domain/forecast.py's rule on the row's data: HIGH churn risk is at risk; GREEN with
    # LOW risk is commit; not scored yet is likely; a later term on file is renewed.
    assert forecast_category(ROWS[2], AS_OF) == "at risk"
    assert forecast_category(ROWS[3], AS_OF) == "commit"
    assert forecast_category(ROWS[4], AS_OF) == "likely"
    assert forecast_category(row("f", renewed=True, band="RED"), AS_OF) == "renewed"
    # What the workflow recorded at its checkpoint (with the CSM's call) wins over the data.
    assert forecast_category(ROWS[3], AS_OF, recorded="at_risk") == "at risk"
    cps = renewal_checkpoints(date(2026, 12, 25), AS_OF)
    assert [(c.days_before, c.passed) for c in cps] == [
        (120, True),
        (90, True),
        (60, True),
        (30, False),
        (0, False),
    ]
    by_arr = upcoming_renewals(ROWS, AS_OF, days=365, sort="arr")
    assert [r.arr for r in by_arr] == sorted((r.arr for r in by_arr), reverse=True)


def test_books_per_csm() -> None:
    bs = books(ROWS, {"Dana": 2}, {"Dana": 8}, weeks=4)
    dana = next(b for b in bs if b.csm == "Dana")
    assert (dana.accounts, dana.arr, dana.arr_at_risk) == (5, 160_000, 60_000)
    assert dana.risk_mix["CRITICAL"] == 1 and dana.risk_mix[UNSCORED] == 1
    assert (dana.open_decisions, dana.drafts_per_week) == (2, 2.0)
    assert [b.csm for b in bs] == ["Dana", "Lee"]
