"""Churn risk: deterministic rules set the level; a model may only write the words around it.

Three triggers (seed 001, plus the notice):

0. **Notice** (``notice_given``): the customer gave notice (cancellation or
   non-renewal) on the contract in force, on or before ``as_of``: the
   strongest fact a CS team holds. Always CRITICAL, with the evidence
   "customer gave notice on D; contract ends E". A notice dated after
   ``as_of`` is not known yet and is ignored.

1. **Contract proximity** (``renewal_proximity``): the health band is AMBER or RED
   and the renewal is within ``churn.renewal_days`` [60] days (0 <= days <= 60).
   A contract whose end date is already before ``as_of`` raises
   ``contract_ended`` instead ("contract ended on ..., N days ago, no renewal on record").
2. **Behavioral** decline, whatever the renewal date. Each flag carries points
   (``churn.flag_weights``):

| Code | Fires when (defaults) | Points |
|---|---|---|
| usage_drop | usage fell >= 30% vs the previous activity window (previous > 0) | 2 |
| active_user_drop | active users fell >= 25% vs the previous window, previous >= 5 users | 2 |
| champion_left | a champion left within champion_left_days [180] | 2 |
| escalations | support + TAM escalations in escalation_days [180] >= 2 | 2 |
| nps_detractor | latest NPS (within nps_days) <= 6; without a latest response, the mean <= 6 | 1 |
| invoice_overdue | an invoice is >= 30 days past due | 1 |

Level (first rule that holds; P = behavioral points, band from the health snapshot):

| Level | Rule |
|---|---|
| CRITICAL | a notice is on file, or band RED and renewal within 60 days, or P >= critical_points [5] |
| HIGH | band AMBER and renewal within 60 days, or the contract has ended, or P >= high_points [3], or band RED and P >= 1 |
| MEDIUM | P >= 1, or band RED |
| LOW | otherwise |

With no health band (coverage 0) or an ``UNSCORED`` band (coverage below
``bands.min_coverage``) the proximity trigger cannot fire and "band RED" never
holds: too little data is not a risk. Behavioral flags and a notice still apply
(each is a fact on its own).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.config import HealthConfig
from domain.facts import AccountFacts
from domain.health import (
    UNSCORED,
    Band,
    HealthSnapshot,
    as_of_date,
    days_to_renewal,
    fmt_num,
    fmt_pct,
    plural,
    whole_days_between,
)

ChurnLevel = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
CHURN_LEVELS: tuple[str, ...] = ("LOW", "MEDIUM", "HIGH", "CRITICAL")

FlagCode = Literal[
    "notice_given",
    "renewal_proximity",
    "contract_ended",
    "usage_drop",
    "active_user_drop",
    "champion_left",
    "nps_detractor",
    "invoice_overdue",
    "escalations",
]


def churn_level_rank(level: str) -> int:
    """LOW 0, MEDIUM 1, HIGH 2, CRITICAL 3; ValueError for anything else."""
    try:
        return CHURN_LEVELS.index(level)
    except ValueError:
        raise ValueError(f"unknown churn level {level!r}; expected one of {CHURN_LEVELS}") from None


class ChurnFlag(BaseModel):
    trigger: Literal["notice", "contract_proximity", "behavioral"]
    code: FlagCode
    evidence: str  # plain words with the numbers
    weight: int = Field(ge=0)  # behavioral points; 0 for contract-proximity flags


class ChurnRisk(BaseModel):
    account_id: str
    as_of: datetime
    level: ChurnLevel
    flags: list[ChurnFlag] = Field(default_factory=list)
    behavioral_points: int = 0
    days_to_renewal: int | None = None
    renewal_date: date | None = None
    contract_ended: bool = False
    band: Band | None = None
    score: float | None = None
    summary: str  # one deterministic line: level and the evidence behind it

    @property
    def rank(self) -> int:
        return churn_level_rank(self.level)


def _behavioral_flags(facts: AccountFacts, config: HealthConfig) -> list[ChurnFlag]:
    c = config.churn
    w = c.flag_weights
    days = facts.windows.activity_days
    flags: list[ChurnFlag] = []

    def add(code: FlagCode, evidence: str) -> None:
        flags.append(ChurnFlag(trigger="behavioral", code=code, evidence=evidence, weight=w[code]))

    now_q, prev_q = facts.usage_quantity, facts.usage_quantity_prev
    if now_q is not None and prev_q is not None and prev_q > 0:
        drop = (prev_q - now_q) / prev_q
        if drop >= c.usage_drop_pct:
            add(
                "usage_drop",
                f"usage fell {fmt_pct(drop)} in the last {days} days: "
                f"{fmt_num(now_q)} units vs {fmt_num(prev_q)} in the {days} days before",
            )

    now_u, prev_u = facts.active_users, facts.active_users_prev
    if now_u is not None and prev_u is not None and prev_u >= c.min_prev_users:
        drop = (prev_u - now_u) / prev_u
        if drop >= c.active_user_drop_pct:
            add(
                "active_user_drop",
                f"active users fell from {prev_u} to {now_u} ({fmt_pct(drop)} fewer) "
                f"in {days} days",
            )

    left = facts.champion_left_on
    if left is not None:
        age = (as_of_date(facts) - left).days
        if 0 <= age <= facts.windows.champion_left_days:
            add(
                "champion_left",
                f"champion left on {left.isoformat()} ({plural(age, 'day')} ago)"
                + ("" if facts.champion_active else "; no active champion since"),
            )

    detractor = _nps_detractor_evidence(facts, config)
    if detractor is not None:
        add("nps_detractor", detractor)

    overdue_days = facts.max_days_overdue or 0
    if (facts.invoices_open_overdue or 0) > 0 and overdue_days >= c.overdue_days:
        amount = (
            f" (${fmt_num(facts.overdue_amount, 0)} overdue)"
            if facts.overdue_amount is not None
            else ""
        )
        add(
            "invoice_overdue",
            f"{plural(facts.invoices_open_overdue or 0, 'invoice')} overdue, the oldest "
            f"{overdue_days} days past due{amount}",
        )

    support, tam = facts.escalations, facts.tam_escalations
    total = (support or 0) + (tam or 0)
    if (support is not None or tam is not None) and total >= c.escalation_count:
        add(
            "escalations",
            f"{plural(total, 'escalation')} in the last {facts.windows.escalation_days} days "
            f"({support or 0} support, {tam or 0} TAM)",
        )
    return flags


def _notice_flag(facts: AccountFacts) -> ChurnFlag | None:
    """The customer's notice on the contract in force, when it was known at as_of."""
    c = facts.contract
    if c is None or c.notice_on is None or c.notice_on > as_of_date(facts):
        return None
    return ChurnFlag(
        trigger="notice",
        code="notice_given",
        evidence=f"customer gave notice on {c.notice_on.isoformat()}; contract ends {c.end_date}",
        weight=0,
    )


def _nps_detractor_evidence(facts: AccountFacts, config: HealthConfig) -> str | None:
    limit = config.churn.nps_detractor_max
    window = facts.windows.nps_days
    if facts.nps_latest is not None:
        at = facts.nps_latest_at
        if at is not None:
            age = whole_days_between(facts.as_of, at)
            if age < 0 or age > window:
                return None
        if facts.nps_latest <= limit:
            when = f" on {at.date().isoformat()}" if at is not None else ""
            return f"latest NPS response {facts.nps_latest}/10{when} (detractor: {limit} or lower)"
        return None
    if facts.nps_mean is not None and facts.nps_mean <= limit:
        return (
            f"mean NPS {fmt_num(facts.nps_mean)}/10 over the last {window} days "
            f"(detractor: {limit} or lower)"
        )
    return None


def assess_churn(facts: AccountFacts, snapshot: HealthSnapshot, config: HealthConfig) -> ChurnRisk:
    """Churn level and flags for one account at ``facts.as_of`` (rules in the module docstring)."""
    c = config.churn
    band = snapshot.band
    d = days_to_renewal(facts)
    renewal = facts.contract.end_date if facts.contract is not None else None
    ended = d is not None and d < 0

    proximity: list[ChurnFlag] = []
    notice = _notice_flag(facts)
    if notice is not None:
        proximity.append(notice)
    near = d is not None and 0 <= d <= c.renewal_days
    if near and band in ("AMBER", "RED"):
        proximity.append(
            ChurnFlag(
                trigger="contract_proximity",
                code="renewal_proximity",
                evidence=(
                    f"health {band} ({fmt_num(snapshot.score)}) with renewal in "
                    f"{plural(d or 0, 'day')} ({renewal}); window {c.renewal_days} days"
                ),
                weight=0,
            )
        )
    if ended:
        proximity.append(
            ChurnFlag(
                trigger="contract_proximity",
                code="contract_ended",
                evidence=(
                    f"contract ended on {renewal}, {plural(-(d or 0), 'day')} before as_of, "
                    "with no renewal on record"
                ),
                weight=0,
            )
        )

    behavioral = _behavioral_flags(facts, config)
    points = sum(f.weight for f in behavioral)
    in_window = near and band in ("AMBER", "RED")

    level: ChurnLevel
    if notice is not None or (in_window and band == "RED") or points >= c.critical_points:
        level = "CRITICAL"
    elif in_window or ended or points >= c.high_points or (band == "RED" and points >= 1):
        level = "HIGH"
    elif points >= 1 or band == "RED":
        level = "MEDIUM"
    else:
        level = "LOW"

    flags = [*proximity, *behavioral]
    return ChurnRisk(
        account_id=facts.account_id,
        as_of=facts.as_of,
        level=level,
        flags=flags,
        behavioral_points=points,
        days_to_renewal=d,
        renewal_date=renewal,
        contract_ended=ended,
        band=band,
        score=snapshot.score,
        summary=_summary(level, snapshot, flags),
    )


def _summary(level: str, snapshot: HealthSnapshot, flags: list[ChurnFlag]) -> str:
    band, score = snapshot.band, snapshot.score
    if band == UNSCORED:
        health = f"health UNSCORED ({fmt_pct(snapshot.coverage)} coverage)"
    elif band is not None:
        health = f"health {band} ({fmt_num(score)})"
    else:
        health = "no health score"
    if not flags:
        return f"{level}: {health}; no churn trigger fired"
    return f"{level}: {health}; " + "; ".join(f.evidence for f in flags)
