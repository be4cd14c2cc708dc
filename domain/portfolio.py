"""Portfolio projections a CS leader reads: ARR at risk, heatmaps, renewals, books.

Pure: no I/O, no clock (``as_of`` is passed in). The rows come from the latest
explained snapshot of each account (``health_snapshots``), the contract in force and
the live phase from Temporal; nothing here re-scores anything: band and churn level
are the ones the rules wrote.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import BaseModel

from domain.churn import CHURN_LEVELS, churn_level_rank
from domain.forecast import CATEGORIES, CATEGORY_LABELS, ForecastInput, forecast_renewal
from domain.health import UNSCORED  # too little data to call it health (or no snapshot yet)
from domain.lifecycle import RENEWAL_CHECKPOINTS_DAYS

BANDS = ("RED", "AMBER", "GREEN")
TIERS = ("tier-1", "tier-2", "tier-3")
AT_RISK_LEVELS = ("HIGH", "CRITICAL")


@dataclass(slots=True)
class PortfolioRow:
    """One account on the portfolio pages (a plain dataclass: a page builds 10,000 of them)."""

    account_id: str
    name: str
    tier: str
    csm_owner: str | None
    arr: float  # the contract in force at as_of (0: none)
    renewal_date: date | None
    renewed: bool = False  # a later term is on file
    snapshot_at: date | None = None
    score: float | None = None
    band: str | None = None
    churn_level: str | None = None
    coverage: float | None = None
    top_driver: str | None = None
    phase: str | None = None  # AccountPhase slug from Temporal; None: no running workflow

    @property
    def band_key(self) -> str:
        return self.band or UNSCORED


class Filters(BaseModel):
    csm: str | None = None
    tier: str | None = None
    phase: str | None = None
    renewal_days: int | None = None  # renewal within this many days of as_of


def apply_filters(rows: Iterable[PortfolioRow], f: Filters, as_of: date) -> list[PortfolioRow]:
    out = []
    for r in rows:
        if f.csm and r.csm_owner != f.csm:
            continue
        if f.tier and r.tier != f.tier:
            continue
        if f.phase and r.phase != f.phase:
            continue
        if f.renewal_days is not None and (
            r.renewal_date is None
            or not as_of <= r.renewal_date <= as_of + timedelta(days=f.renewal_days)
        ):
            continue
        out.append(r)
    return out


@dataclass(slots=True)
class Cell:
    accounts: int = 0
    arr: float = 0.0


def arr_by(rows: Iterable[PortfolioRow], row_key: str, col_key: str) -> dict[str, dict[str, Cell]]:
    """ARR and account count per (row_key value, col_key value), e.g. tier x band."""
    grid: dict[str, dict[str, Cell]] = defaultdict(lambda: defaultdict(Cell))
    for r in rows:
        cell = grid[str(_attr(r, row_key))][str(_attr(r, col_key))]
        cell.accounts += 1
        cell.arr += r.arr
    return {k: dict(v) for k, v in grid.items()}


def _attr(r: PortfolioRow, key: str) -> str:
    if key == "band":
        return r.band_key
    if key == "churn_level":
        return r.churn_level or UNSCORED
    return getattr(r, key) or "-"


def arr_at_risk(rows: Iterable[PortfolioRow]) -> float:
    """ARR of accounts whose churn risk is HIGH or CRITICAL."""
    return sum(r.arr for r in rows if r.churn_level in AT_RISK_LEVELS)


def riskiest(rows: Iterable[PortfolioRow], n: int = 15) -> list[PortfolioRow]:
    """Highest churn level first, then lowest score, then largest ARR."""
    scored = [r for r in rows if r.churn_level is not None]
    scored.sort(
        key=lambda r: (
            -churn_level_rank(r.churn_level or "LOW"),
            r.score if r.score is not None else 101.0,
            -r.arr,
            r.account_id,
        )
    )
    return scored[:n]


def phase_counts(rows: Iterable[PortfolioRow]) -> list[tuple[str, int]]:
    """(phase slug, accounts), in lifecycle order; accounts without a workflow last."""
    counts = Counter(r.phase or "no workflow" for r in rows)
    return sorted(counts.items(), key=lambda kv: (_phase_order(kv[0]), kv[0]))


def _phase_order(slug: str) -> int:
    head = slug.split("-", 1)[0]
    return int(head) if head.isdigit() else 999


# ------------------------------------------------------------------ renewals

# "renewed" (a later term is on file), then domain/forecast.py's categories, best to worst.
FORECAST_CATEGORIES = ("renewed", *(CATEGORY_LABELS[c] for c in CATEGORIES))


def forecast_category(row: PortfolioRow, as_of: date, recorded: str | None = None) -> str:
    """The renewals page's forecast, by the one rule of domain/forecast.py: "renewed" once a
    later term is on file; else the category the account workflow recorded at its last
    renewal checkpoint (``recorded``: with the calibrated probability and the CSM's call);
    else the same rule on the row's own data (band, churn risk) as of ``as_of``."""
    if row.renewed:
        return "renewed"
    if recorded is None:
        renewal = row.renewal_date or as_of
        recorded = forecast_renewal(
            ForecastInput(
                account_id=row.account_id,
                as_of=as_of,
                renewal_date=renewal,
                days_before_end=max((renewal - as_of).days, 0),
                arr=row.arr,
                band=row.band,
                score=row.score,
                churn_level=row.churn_level,
            )
        ).category
    return CATEGORY_LABELS[recorded]


class CheckpointStatus(BaseModel):
    days_before: int
    on: date
    passed: bool


def renewal_checkpoints(renewal_date: date, as_of: date) -> list[CheckpointStatus]:
    """The renewal checkpoints (T-120 ... T-0) of a term and whether each date has passed."""
    return [
        CheckpointStatus(
            days_before=d,
            on=renewal_date - timedelta(days=d),
            passed=renewal_date - timedelta(days=d) <= as_of,
        )
        for d in RENEWAL_CHECKPOINTS_DAYS
    ]


def upcoming_renewals(
    rows: Iterable[PortfolioRow], as_of: date, days: int = 120, sort: str = "date"
) -> list[PortfolioRow]:
    """Terms ending within ``days`` of ``as_of``, by date (soonest first) or ARR (largest)."""
    due = [
        r
        for r in rows
        if r.renewal_date is not None and as_of <= r.renewal_date <= as_of + timedelta(days=days)
    ]
    if sort == "arr":
        due.sort(key=lambda r: (-r.arr, r.renewal_date or as_of, r.account_id))
    else:
        due.sort(key=lambda r: (r.renewal_date or as_of, -r.arr, r.account_id))
    return due


# --------------------------------------------------------------------- books


class Book(BaseModel):
    csm: str
    accounts: int
    arr: float
    risk_mix: dict[str, int]  # churn level (UNSCORED: no snapshot yet) -> accounts
    arr_at_risk: float
    open_decisions: int
    drafts_per_week: float


def books(
    rows: Sequence[PortfolioRow],
    open_decisions: dict[str, int],
    drafts: dict[str, int],
    weeks: float,
) -> list[Book]:
    """One book per CSM, largest ARR first. ``drafts``: drafts delivered to each CSM's
    accounts over the last ``weeks`` weeks."""
    by_csm: dict[str, list[PortfolioRow]] = defaultdict(list)
    for r in rows:
        by_csm[r.csm_owner or "(unassigned)"].append(r)
    out = []
    for csm, rs in by_csm.items():
        mix = Counter(r.churn_level or UNSCORED for r in rs)
        out.append(
            Book(
                csm=csm,
                accounts=len(rs),
                arr=sum(r.arr for r in rs),
                risk_mix={lvl: mix.get(lvl, 0) for lvl in (*reversed(CHURN_LEVELS), UNSCORED)},
                arr_at_risk=arr_at_risk(rs),
                open_decisions=open_decisions.get(csm, 0),
                drafts_per_week=drafts.get(csm, 0) / weeks if weeks > 0 else 0.0,
            )
        )
    out.sort(key=lambda b: (-b.arr, b.csm))
    return out
