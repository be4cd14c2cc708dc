"""Renewal forecast per account at each renewal checkpoint, and the CSM's governed sentiment.

Pure: no I/O, no clock (``as_of`` is passed in). The account workflow asks for a forecast
when a renewal checkpoint fires (120, 90, 60 and 30 days before the term ends:
``domain.lifecycle.RENEWAL_CHECKPOINTS_DAYS`` without the term end itself); the
``record_renewal_forecast`` activity supplies the calibrated churn probability of the
account's band (``domain.calibration.band_churn_rate`` on the config in force) and the
notice on file, and stores the result in ``renewal_forecasts``.

The rule (first match wins, then the CSM's call)
------------------------------------------------
1. **lost**: the customer gave notice on this term (``contracts.notice_on`` on or before
   ``as_of``). Nothing moves an account out of *lost*, not even a positive CSM call.
2. **at risk** (from data): churn risk HIGH or CRITICAL; or a calibrated churn
   probability of the account's band of at least ``AT_RISK_PROBABILITY`` (30%); or, with no
   calibrated probability (no adopted calibration, or the band was not measured), a RED band.
3. **commit** (from data): churn risk LOW, no open high-severity finding, and a calibrated
   probability of at most ``COMMIT_PROBABILITY`` (10%), or, with none, a GREEN band.
4. **likely**: everything else (MEDIUM churn risk, AMBER, an open high-severity finding,
   an UNSCORED or not yet scored account).

Then the CSM's sentiment, when one is in force on ``as_of`` (not expired), moves the
category: ``at_risk`` makes it at least *at risk*; ``concerned`` turns *commit* into
*likely*; ``neutral`` changes nothing; ``positive`` lifts *likely* to *commit* and nothing
else (it never lifts an account out of *at risk* or *lost*). So a CSM can always make the
forecast more cautious, and more optimistic by one step only where the data is not
alarming. Both categories are kept (``data_category`` and ``category``) with the reasons,
so a call that moved the forecast is visible, never silent; the computed health score and
churn level are never changed by a sentiment.

The CSM sentiment
-----------------
One of ``positive``, ``neutral``, ``concerned``, ``at_risk`` (a four-step scale a CSM
uses in a forecast call), with a one-line reason, its author and an expiry date: it is in
force until the day before ``expires_on`` and ignored from that day on (a stale call must
not keep steering a forecast). It is shown beside the computed score, never instead of it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.health import fmt_pct
from domain.lifecycle import RENEWAL_CHECKPOINTS_DAYS

Sentiment = Literal["positive", "neutral", "concerned", "at_risk"]
SENTIMENTS: tuple[str, ...] = ("positive", "neutral", "concerned", "at_risk")
Category = Literal["commit", "likely", "at_risk", "lost"]
CATEGORIES: tuple[str, ...] = ("commit", "likely", "at_risk", "lost")  # best to worst
CATEGORY_LABELS: dict[str, str] = {
    "commit": "commit",
    "likely": "likely",
    "at_risk": "at risk",
    "lost": "lost",
}
# The checkpoints that record a forecast: 120/90/60/30 days before the term ends.
FORECAST_CHECKPOINT_DAYS: tuple[int, ...] = tuple(d for d in RENEWAL_CHECKPOINTS_DAYS if d > 0)
COMMIT_PROBABILITY = 0.10  # calibrated churn probability at or below which data says commit
AT_RISK_PROBABILITY = 0.30  # at or above which data says at risk
SENTIMENT_MAX_DAYS = 366  # the longest a sentiment may stay in force
# How the CSM's call in force moves the data's category (a category not listed stays).
SENTIMENT_MOVES: dict[str, dict[str, Category]] = {
    "at_risk": {"commit": "at_risk", "likely": "at_risk"},
    "concerned": {"commit": "likely"},
    "neutral": {},
    "positive": {"likely": "commit"},
}


class CsmSentiment(BaseModel):
    """The CSM's call on an account, as the account workflow keeps it."""

    value: Sentiment
    reason: str
    author: str
    expires_on: date
    recorded_at: datetime

    def in_force(self, on: date) -> bool:
        """In force until the day before ``expires_on``."""
        return on < self.expires_on

    def line(self) -> str:
        return (
            f"CSM sentiment {self.value} by {self.author} (until {self.expires_on}): {self.reason}"
        )


class ForecastInput(BaseModel):
    account_id: str
    as_of: date
    renewal_date: date
    days_before_end: int  # the checkpoint: 120, 90, 60 or 30
    arr: float
    band: str | None = None
    score: float | None = None
    churn_level: str | None = None
    # The observed churn rate of the account's band in the adopted calibration, and its
    # horizon (``domain.calibration.band_churn_rate``); None without one.
    churn_probability: float | None = Field(default=None, ge=0, le=1)
    probability_horizon_days: int | None = None
    notice_on: date | None = None  # the customer's notice on this term
    open_risks: list[str] = Field(default_factory=list)  # open high-severity findings (titles)
    sentiment: CsmSentiment | None = None


class RenewalForecast(BaseModel):
    account_id: str
    as_of: date
    renewal_date: date
    days_before_end: int
    arr: float
    category: Category  # after the CSM's call
    data_category: Category  # from the data alone
    reasons: list[str]
    band: str | None = None
    score: float | None = None
    churn_level: str | None = None
    churn_probability: float | None = None
    probability_horizon_days: int | None = None
    open_risks: int = 0
    sentiment: Sentiment | None = None  # the call in force that fed it (None: none in force)
    sentiment_author: str | None = None
    sentiment_expires_on: date | None = None

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self.category]

    def line(self) -> str:
        """One line for the timeline: category, checkpoint and why."""
        moved = (
            f" (data: {CATEGORY_LABELS[self.data_category]})"
            if self.data_category != self.category
            else ""
        )
        return (
            f"renewal forecast T-{self.days_before_end}d ({self.renewal_date}): "
            f"{self.label}{moved}; " + "; ".join(self.reasons)
        )


def _data_category(inp: ForecastInput) -> tuple[Category, list[str]]:
    p = inp.churn_probability
    odds = (
        f"calibrated churn probability {fmt_pct(p)} for {inp.band} within "
        f"{inp.probability_horizon_days} days"
        if p is not None
        else None
    )
    if inp.notice_on is not None and inp.notice_on <= inp.as_of:
        return "lost", [f"customer gave notice on {inp.notice_on}"]
    risk: list[str] = []
    if inp.churn_level in ("HIGH", "CRITICAL"):
        risk.append(f"churn risk {inp.churn_level}")
    if p is not None and p >= AT_RISK_PROBABILITY:
        risk.append(f"{odds} (>= {fmt_pct(AT_RISK_PROBABILITY)})")
    if p is None and inp.band == "RED":
        risk.append("health band RED (no calibrated probability)")
    if risk:
        return "at_risk", risk
    healthy = (p <= COMMIT_PROBABILITY) if p is not None else inp.band == "GREEN"
    if inp.churn_level == "LOW" and not inp.open_risks and healthy:
        why = (
            f"{odds} (<= {fmt_pct(COMMIT_PROBABILITY)})"
            if p is not None
            else "health band GREEN (no calibrated probability)"
        )
        return "commit", ["churn risk LOW", why]
    likely: list[str] = []
    if inp.churn_level not in ("LOW",):
        likely.append(f"churn risk {inp.churn_level or 'not assessed'}")
    if inp.open_risks:
        likely.append(f"{len(inp.open_risks)} open high-severity finding(s): {inp.open_risks[0]}")
    if p is not None and p > COMMIT_PROBABILITY:
        likely.append(odds or "")
    elif p is None and inp.band != "GREEN":
        likely.append(f"health band {inp.band or 'not scored'}")
    return "likely", likely or ["no commit signal"]


def forecast_renewal(inp: ForecastInput) -> RenewalForecast:
    """The forecast category of one account at one renewal checkpoint (rule: module doc)."""
    data, reasons = _data_category(inp)
    category: Category = data
    s = inp.sentiment if inp.sentiment is not None and inp.sentiment.in_force(inp.as_of) else None
    if s is not None:
        category = SENTIMENT_MOVES[s.value].get(data, data)
        effect = "moved it" if category != data else "left it"
        reasons.append(f"CSM call {s.value} by {s.author} {effect} {CATEGORY_LABELS[category]}")
    return RenewalForecast(
        account_id=inp.account_id,
        as_of=inp.as_of,
        renewal_date=inp.renewal_date,
        days_before_end=inp.days_before_end,
        arr=inp.arr,
        category=category,
        data_category=data,
        reasons=reasons,
        band=inp.band,
        score=inp.score,
        churn_level=inp.churn_level,
        churn_probability=inp.churn_probability,
        probability_horizon_days=inp.probability_horizon_days,
        open_risks=len(inp.open_risks),
        sentiment=s.value if s is not None else None,
        sentiment_author=s.author if s is not None else None,
        sentiment_expires_on=s.expires_on if s is not None else None,
    )


# ------------------------------------------------------------- portfolio table


class ForecastCell(BaseModel):
    accounts: int = 0
    arr: float = 0.0


def forecast_table(
    rows: list[RenewalForecast], owner_of: dict[str, str] | None = None
) -> dict[str, dict[str, ForecastCell]]:
    """Accounts and ARR per category, overall (key ``"all"``) and per CSM (``owner_of``:
    account id -> CSM). One forecast per account: the caller passes the latest of each."""
    out: dict[str, dict[str, ForecastCell]] = {}
    for r in rows:
        groups = ["all"]
        if owner_of is not None:
            groups.append(owner_of.get(r.account_id) or "(unassigned)")
        for g in groups:
            cell = out.setdefault(g, {c: ForecastCell() for c in CATEGORIES})[r.category]
            cell.accounts += 1
            cell.arr += r.arr
    return out
