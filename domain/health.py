"""Composite account health: eleven signals, each scored 0-100, weighted into one score.

``score_health(facts, config, previous)`` is pure: it reads only ``facts`` (computed up
to ``facts.as_of``) and ``config``; it never reads the clock.

How the score is built
----------------------
1. Each signal gets a sub-score 0-100 (table below), rounded half-up to 0.1, or
   ``None`` when its facts are missing (a source with no rows). Missing is never
   treated as zero.
2. Signals with data and weight > 0 are renormalized:
   ``effective_weight = weight / sum(weights of signals with data)``;
   ``coverage = sum(weights of signals with data) / sum(all weights)``.
3. ``score = sum(effective_weight * sub_score)``, rounded half-up to 0.1.
   Coverage 0 gives ``score = None`` and ``band = None``.
4. TAM technical health caps the score (see ``domain/config.py``): TAM RED caps
   at ``amber_min - 1`` (44), TAM AMBER at ``green_min - 1`` (69), unless the
   TAM measurement is older than ``tam.stale_days`` (120).
5. Band from the final, rounded score: ``score >= green_min`` (70) GREEN,
   ``score >= amber_min`` (45) AMBER, else RED. A score of exactly 70.0 is GREEN,
   69.9 AMBER, 45.0 AMBER, 44.9 RED. But when ``coverage`` is below
   ``bands.min_coverage`` (0.3) the band is ``UNSCORED``, with the reason in
   ``band_reason``: a score computed from a sliver of the weight (a brand-new
   account with only a contract scores 100 on 4% coverage) is not health. The
   score is still computed and kept for analysts; UNSCORED fires no churn
   proximity trigger and no Lean play (domain/churn.py, domain/assess.py).
6. Drivers: per signal, contribution = effective_weight * sub_score (0 without
   data); the 2-3 signals whose contribution changed most since the previous
   snapshot (|delta| >= ``drivers.min_points``, ties by signal order) are
   described with the raw figures of both snapshots.

Signal formulas (defaults in brackets; every number is in ``health_config.json``)
------------------------------------------------------------------------------

``lerp(x, x0->y0, x1->y1)`` is linear interpolation clamped to the end values.

| Signal | Window | Data needed (else left out) | Sub-score 0-100 |
|---|---|---|---|
| feature_adoption | adoption_days [90] | `feature_users` and at least one catalogue feature in a licensed module | For each catalogue feature f of a licensed module: rate_f = users_f / N where N = `adoption_users` (distinct users in the window; fallback: the largest `feature_users` count); attainment_f = min(1, rate_f / benchmark_f). Sub-score = 100 * mean(attainment_f). Licensed modules = contract modules; without a contract, `core` plus every catalogue module with a used feature. |
| support_tickets | ticket_days [30] vs the prior ticket_baseline_days [180] | `tickets_recent` | ratio r = tickets_recent / max(tickets_baseline, baseline_floor [1]); volume = lerp(r, 1->100, zero_at_ratio [3]->0); with sentiment s (-1..1): mix = (1 - share) * volume + share [0.4] * 50 * (s + 1), else mix = volume; sub-score = max(0, mix - urgent_open_penalty [10] * urgent_open). |
| last_interaction | up to as_of | `last_meaningful_interaction_at` (<= as_of) | d = whole days since; lerp(d, full_days [30]->100, zero_days [120]->0). |
| login_frequency | activity_days [30] | `login_days` | 100 * min(1, login_days / (full_share [0.6] * activity_days)), i.e. 18 login days of 30 score 100. |
| usage_trend | activity_days [30] vs the activity_days before | `usage_quantity` + `usage_quantity_prev`, and/or `active_users` + `active_users_prev` | change c = (now - before) / before, clamped to -1..1 (before = 0: +1 if now > 0, else -1); t = mean of the available changes (volume, users); t <= zero_at_change [-0.5] -> 0; lerp(t, -0.5->0, 0->flat_score [75]) for declines; lerp(t, 0->75, full_at_change [+0.25]->100) for growth. |
| invoice_status | up to as_of | `invoices_total` (any invoice on record) | 0 overdue -> 100; n >= 1 overdue, oldest d days past due -> max(0, lerp(d, 0->first_overdue_score [80], zero_days [90]->0) - extra_invoice_penalty [10] * (n - 1)). |
| stakeholder_engagement | stakeholder_days [90]; champion departures within champion_left_days [180] | `stakeholders_active` | engaged_points [70] * engaged/active + champion_points [15] if a champion is active + sponsor_points [15] if an executive sponsor is active - champion_left_penalty [30] if a champion left within the window; clamped 0..100. |
| nps | nps_days [365] | `nps_mean`, else `nps_latest` answered within the window | piecewise-linear curve over the 0-10 score [(0,0) (6,40) (7,60) (8,75) (9,90) (10,100)]. |
| renewal_proximity | contract end | `contract` | d = days from as_of to end_date; d <= 0 -> 0; else 100 * min(1, d / full_days [180]). |
| seat_utilization | activity_days [30] | `contract` (seats > 0) and `active_users` | 100 * min(1, (active_users / seats) / full_utilization [0.8]). Over-use is an expansion signal, not a health penalty. |
| escalations | escalation_days [180] | `escalations` or `tam_escalations` | n = support escalations + TAM escalations; max(0, 100 - penalty_each [25] * n). |

Default weights (sum 100): feature_adoption 12, support_tickets 10, last_interaction 8,
login_frequency 10, usage_trend 12, invoice_status 8, stakeholder_engagement 10, nps 8,
renewal_proximity 4, seat_utilization 12, escalations 6.

Timestamps after ``as_of`` (a producer bug) are not used: the signal is left out and the
row is listed in ``data_issues``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, Field

from domain.config import SIGNAL_LABELS, SIGNALS, HealthConfig
from domain.facts import AccountFacts, DataIssue
from domain.format import as_utc

Band = Literal["GREEN", "AMBER", "RED", "UNSCORED"]
BANDS: tuple[str, ...] = ("RED", "AMBER", "GREEN")  # the bands a score earns (also TAM RAGs)
UNSCORED: Band = "UNSCORED"  # too little of the signal weight had data to call it health


# ------------------------------------------------------------ shared pure helpers


def round_half_up(x: float, ndigits: int = 1) -> float:
    """Round half away from zero on the decimal repr, so 44.95 -> 45.0 on every platform."""
    q = Decimal(1).scaleb(-ndigits)
    return float(Decimal(repr(x)).quantize(q, rounding=ROUND_HALF_UP))


def one_in_n(p: float) -> int:
    """A probability above 0 as the N of "1 in N" (half up, at least 1): 0.4 -> 3, 0.125 -> 8.
    The one definition for every draft that states churn odds."""
    return max(1, int(round_half_up(1 / p, 0)))


def lerp(x: float, x0: float, y0: float, x1: float, y1: float) -> float:
    """Linear interpolation from (x0, y0) to (x1, y1), clamped to the end values."""
    if x <= x0:
        return y0
    if x >= x1:
        return y1
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def fmt_num(x: float | int | None, digits: int = 1) -> str:
    """1234 -> '1,234'; 12.345 -> '12.3'; integral floats lose the '.0'."""
    if x is None:
        return "n/a"
    r = round_half_up(float(x), digits)
    if r == int(r):
        return f"{int(r):,}"
    return f"{r:,.{digits}f}"


def fmt_money(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"${round_half_up(x, 0):,.0f}"


def fmt_pct(share: float, digits: int = 0) -> str:
    """0.253 -> '25%'."""
    return f"{fmt_num(share * 100, digits)}%"


def a_or_an(figure: str) -> str:
    """The article a figure is read with: 'an 80%', 'an 11%', 'an 8-hour', 'a 50%'."""
    digits = re.match(r"[\d,]+", figure.lstrip("$"))
    if figure.startswith("$") or not digits:
        return "a"
    whole = digits.group(0).replace(",", "")
    # eight..., eleven, eighteen (and eleven/eighteen thousand, million ...)
    spoken_vowel = whole.startswith("8") or (whole[:2] in ("11", "18") and len(whole) % 3 == 2)
    return "an" if spoken_vowel else "a"


_utc = as_utc  # one definition: domain/format.py


def whole_days_between(later: datetime, earlier: datetime) -> int:
    """Whole days from ``earlier`` to ``later`` (floor); negative when ``earlier`` is later."""
    return math.floor((_utc(later) - _utc(earlier)).total_seconds() / 86400)


def as_of_date(facts: AccountFacts) -> date:
    return facts.as_of.date()


def days_to_renewal(facts: AccountFacts) -> int | None:
    """Days from as_of to the contract end date; negative when the contract has ended."""
    if facts.contract is None:
        return None
    return (facts.contract.end_date - as_of_date(facts)).days


def licensed_modules(facts: AccountFacts, config: HealthConfig) -> set[str]:
    """Contract modules; without a contract, core plus every catalogue module seen in use."""
    if facts.contract is not None:
        return set(facts.contract.licensed_modules)
    used = {"core"}
    for module, feature in config.features():
        if (facts.feature_users or {}).get(feature.event_type, 0) > 0:
            used.add(module)
    return used


def plural(n: float | int, word: str, plural_word: str | None = None) -> str:
    return f"{fmt_num(n)} {word if n == 1 else (plural_word or word + 's')}"


# ------------------------------------------------------------------------- models


class SignalScore(BaseModel):
    name: str
    label: str
    sub_score: float | None = Field(default=None, ge=0, le=100)  # None: no data
    weight: float
    effective_weight: float  # weight / weights with data; 0 without data
    value: float | None = None  # the raw figure a person would quote
    value_label: str | None = None  # what ``value`` counts, e.g. "active users"
    detail: str  # plain words with numbers
    window_days: int | None = None


class Driver(BaseModel):
    signal: str
    label: str
    delta: float  # points this signal's contribution to the score moved
    previous_sub_score: float | None
    current_sub_score: float | None
    previous_value: float | None
    current_value: float | None
    text: str


class HealthSnapshot(BaseModel):
    account_id: str
    as_of: datetime
    config_version: str
    score: float | None  # rounded to 0.1; None only when coverage is 0
    score_before_tam: float | None = None
    band: Band | None
    band_reason: str | None = None  # why the band is UNSCORED
    coverage: float = Field(ge=0, le=1)  # share of the total weight that had data
    signals: list[SignalScore]
    drivers: list[Driver] = Field(default_factory=list)
    tam_adjustment: str | None = None
    data_issues: list[DataIssue] = Field(default_factory=list)

    def signal(self, name: str) -> SignalScore | None:
        return next((s for s in self.signals if s.name == name), None)


class FeatureAdoption(BaseModel):
    """One catalogue feature for the QBR scorecard (adoption vs benchmark)."""

    module: str
    event_type: str
    label: str
    licensed: bool
    users: int
    rate: float  # users / adoption-window users
    benchmark: float
    attainment: float  # min(1, rate / benchmark)
    status: Literal["at_or_above", "below", "unused"]


# ------------------------------------------------------------- signal computations


@dataclass(frozen=True)
class _Result:
    sub: float | None
    detail: str
    value: float | None = None
    value_label: str | None = None
    window_days: int | None = None


def _adoption_base(facts: AccountFacts) -> int:
    if facts.adoption_users is not None:
        return facts.adoption_users
    return max((facts.feature_users or {}).values(), default=0)


def feature_adoption_scorecard(facts: AccountFacts, config: HealthConfig) -> list[FeatureAdoption]:
    """Every catalogue feature with users, rate and attainment vs its benchmark."""
    users_by_feature = facts.feature_users or {}
    base = _adoption_base(facts)
    licensed = licensed_modules(facts, config)
    out: list[FeatureAdoption] = []
    for module, f in config.features():
        users = users_by_feature.get(f.event_type, 0)
        rate = users / base if base > 0 else 0.0
        attainment = min(1.0, rate / f.benchmark)
        status: Literal["at_or_above", "below", "unused"] = (
            "unused" if users == 0 else ("at_or_above" if rate >= f.benchmark else "below")
        )
        out.append(
            FeatureAdoption(
                module=module,
                event_type=f.event_type,
                label=f.label,
                licensed=module in licensed,
                users=users,
                rate=round_half_up(rate, 4),
                benchmark=f.benchmark,
                attainment=round_half_up(attainment, 4),
                status=status,
            )
        )
    return out


def _feature_adoption(facts: AccountFacts, config: HealthConfig) -> _Result:
    days = facts.windows.adoption_days
    if facts.feature_users is None:
        return _Result(None, "no usage events on record", window_days=days)
    card = [f for f in feature_adoption_scorecard(facts, config) if f.licensed]
    if not card:
        return _Result(None, "no catalogue features in the licensed modules", window_days=days)
    base = _adoption_base(facts)
    licensed = licensed_modules(facts, config)
    # Attainment recomputed unrounded: the sub-score must not depend on display rounding.
    attainments = [
        min(
            1.0,
            (facts.feature_users.get(f.event_type, 0) / base if base > 0 else 0.0) / f.benchmark,
        )
        for module, f in config.features()
        if module in licensed
    ]
    sub = 100 * math.fsum(attainments) / len(attainments)
    used = sum(1 for f in card if f.users > 0)
    at_bench = sum(1 for f in card if f.status == "at_or_above")
    detail = (
        f"{used} of {len(card)} licensed features used in the last {days} days "
        f"by {plural(base, 'user')}; {at_bench} at or above benchmark adoption"
    )
    laggards = sorted((f for f in card if f.status != "at_or_above"), key=lambda f: f.attainment)
    if laggards:
        worst = laggards[0]
        detail += (
            f"; lowest: {worst.event_type} {fmt_pct(worst.rate)} vs {fmt_pct(worst.benchmark)}"
        )
    return _Result(sub, detail, used, "licensed features in use", days)


def _support_tickets(facts: AccountFacts, config: HealthConfig) -> _Result:
    p = config.signals.support_tickets
    days = facts.windows.ticket_days
    if facts.tickets_recent is None:
        return _Result(None, "no support tickets on record", window_days=days)
    recent = facts.tickets_recent
    baseline = max(facts.tickets_baseline or 0.0, p.baseline_floor)
    ratio = recent / baseline
    volume = lerp(ratio, 1.0, 100.0, p.zero_at_ratio, 0.0)
    s = facts.ticket_sentiment_recent
    if s is not None:
        s = min(1.0, max(-1.0, s))
        mix = (1 - p.sentiment_share) * volume + p.sentiment_share * 50 * (s + 1)
    else:
        mix = volume
    urgent = facts.urgent_open or 0
    sub = max(0.0, mix - p.urgent_open_penalty * urgent)
    detail = (
        f"{plural(recent, 'ticket')} in the last {days} days vs a baseline of "
        f"{fmt_num(facts.tickets_baseline or 0.0)} per {days} days ({fmt_num(ratio, 2)}x)"
    )
    if s is not None:
        detail += f"; mean sentiment {s:+.2f}"
    if urgent:
        detail += f"; {urgent} urgent open"
    return _Result(sub, detail, recent, f"tickets in the last {days} days", days)


def _last_interaction(facts: AccountFacts, config: HealthConfig) -> _Result:
    p = config.signals.last_interaction
    at = facts.last_meaningful_interaction_at
    if at is None:
        return _Result(None, "no meaningful interaction on record")
    days = whole_days_between(facts.as_of, at)
    if days < 0:
        return _Result(None, "last interaction is dated after as_of; left out")
    sub = lerp(days, p.full_days, 100.0, p.zero_days, 0.0)
    detail = f"last meaningful interaction {plural(days, 'day')} ago ({at.date().isoformat()})"
    return _Result(sub, detail, days, "days since last meaningful interaction")


def _login_frequency(facts: AccountFacts, config: HealthConfig) -> _Result:
    p = config.signals.login_frequency
    days = facts.windows.activity_days
    if facts.login_days is None:
        return _Result(None, "no login data", window_days=days)
    target = p.full_share * days
    sub = 100 * min(1.0, facts.login_days / target)
    detail = f"{facts.login_days} of the last {days} days had a login"
    if facts.logins is not None:
        detail += f" ({plural(facts.logins, 'login')})"
    detail += f"; {fmt_num(target)} days scores 100"
    return _Result(
        sub, detail, facts.login_days, f"days with a login in the last {days} days", days
    )


def _relative_change(now: float, before: float) -> float:
    if before > 0:
        return max(-1.0, min(1.0, (now - before) / before))
    return 1.0 if now > 0 else -1.0


def _usage_trend(facts: AccountFacts, config: HealthConfig) -> _Result:
    p = config.signals.usage_trend
    days = facts.windows.activity_days
    changes: list[float] = []
    parts: list[str] = []
    if facts.usage_quantity is not None and facts.usage_quantity_prev is not None:
        c = _relative_change(facts.usage_quantity, facts.usage_quantity_prev)
        changes.append(c)
        parts.append(
            f"usage {fmt_num(facts.usage_quantity)} vs {fmt_num(facts.usage_quantity_prev)} "
            f"in the prior {days} days ({c:+.0%})"
        )
    if facts.active_users is not None and facts.active_users_prev is not None:
        c = _relative_change(facts.active_users, facts.active_users_prev)
        changes.append(c)
        parts.append(f"active users {facts.active_users} vs {facts.active_users_prev} ({c:+.0%})")
    if not changes:
        return _Result(None, "no usage in two consecutive windows to compare", window_days=days)
    t = math.fsum(changes) / len(changes)
    if t <= 0:
        sub = lerp(t, p.zero_at_change, 0.0, 0.0, p.flat_score)
    else:
        sub = lerp(t, 0.0, p.flat_score, p.full_at_change, 100.0)
    value: float | None
    if facts.usage_quantity is not None and facts.usage_quantity_prev is not None:
        value, label = facts.usage_quantity, f"usage units in the last {days} days"
    else:
        value, label = facts.active_users, f"active users in the last {days} days"
    return _Result(sub, "; ".join(parts), value, label, days)


def _invoice_status(facts: AccountFacts, config: HealthConfig) -> _Result:
    p = config.signals.invoice_status
    if facts.invoices_total is None:
        return _Result(None, "no invoices on record")
    n = facts.invoices_open_overdue or 0
    if n == 0:
        detail = f"no overdue invoices ({plural(facts.invoices_total, 'invoice')} issued)"
        return _Result(100.0, detail, 0, "overdue invoices")
    age = max(0, facts.max_days_overdue or 0)
    sub = max(
        0.0,
        lerp(age, 0, p.first_overdue_score, p.zero_days, 0.0) - p.extra_invoice_penalty * (n - 1),
    )
    detail = f"{plural(n, 'invoice')} overdue"
    if facts.overdue_amount is not None:
        detail += f" ({fmt_money(facts.overdue_amount)})"
    detail += f", oldest {plural(age, 'day')} past due"
    return _Result(sub, detail, n, "overdue invoices")


def _champion_left_on(facts: AccountFacts) -> date | None:
    """A champion departure within champion_left_days and not after as_of."""
    left = facts.champion_left_on
    if left is None:
        return None
    age = (as_of_date(facts) - left).days
    if age < 0 or age > facts.windows.champion_left_days:
        return None
    return left


def _stakeholder_engagement(facts: AccountFacts, config: HealthConfig) -> _Result:
    p = config.signals.stakeholder_engagement
    days = facts.windows.stakeholder_days
    if facts.stakeholders_active is None:
        return _Result(None, "no stakeholders on record", window_days=days)
    active = facts.stakeholders_active
    engaged = min(facts.stakeholders_engaged or 0, active)
    share = engaged / active if active > 0 else 0.0
    # Stakeholder rows exist, so an unknown champion/sponsor means none on record.
    champion = bool(facts.champion_active)
    sponsor = bool(facts.exec_sponsor_active)
    left = _champion_left_on(facts)
    raw = (
        p.engaged_points * share
        + (p.champion_points if champion else 0.0)
        + (p.sponsor_points if sponsor else 0.0)
        - (p.champion_left_penalty if left is not None else 0.0)
    )
    sub = min(100.0, max(0.0, raw))
    detail = (
        f"{engaged} of {plural(active, 'active stakeholder')} engaged in the last {days} days; "
        f"champion: {'active' if champion else 'none'}; "
        f"executive sponsor: {'active' if sponsor else 'none'}"
    )
    if left is not None:
        detail += f"; champion left on {left.isoformat()}"
    return _Result(sub, detail, engaged, "engaged stakeholders", days)


def _nps_curve(x: float, curve: Sequence[tuple[float, float]]) -> float:
    x = min(10.0, max(0.0, x))
    for (x0, y0), (x1, y1) in pairwise(curve):
        if x <= x1:
            return lerp(x, x0, y0, x1, y1)
    return curve[-1][1]


def _nps(facts: AccountFacts, config: HealthConfig) -> _Result:
    days = facts.windows.nps_days
    curve = config.signals.nps.curve
    if facts.nps_mean is not None:
        n = facts.nps_responses
        basis = f"mean NPS {fmt_num(facts.nps_mean)}" + (
            f" from {plural(n, 'response')}" if n is not None else ""
        )
        detail = f"{basis} in the last {days} days"
        return _Result(
            _nps_curve(facts.nps_mean, curve), detail, facts.nps_mean, "mean NPS score", days
        )
    if facts.nps_latest is not None:
        at = facts.nps_latest_at
        if at is not None:
            age = whole_days_between(facts.as_of, at)
            if age < 0:
                return _Result(None, "latest NPS is dated after as_of; left out", window_days=days)
            if age > days:
                return _Result(
                    None,
                    f"latest NPS ({facts.nps_latest}) is {age} days old, beyond the {days}-day window",
                    window_days=days,
                )
        when = f" on {at.date().isoformat()}" if at is not None else ""
        return _Result(
            _nps_curve(facts.nps_latest, curve),
            f"latest NPS {facts.nps_latest}{when}",
            facts.nps_latest,
            "latest NPS score",
            days,
        )
    return _Result(None, "no NPS responses on record", window_days=days)


def _renewal_proximity(facts: AccountFacts, config: HealthConfig) -> _Result:
    p = config.signals.renewal_proximity
    d = days_to_renewal(facts)
    if d is None or facts.contract is None:
        return _Result(None, "no contract on record")
    end = facts.contract.end_date.isoformat()
    if d < 0:
        return _Result(
            0.0, f"contract ended on {end}, {plural(-d, 'day')} ago", d, "days to renewal"
        )
    sub = 0.0 if d == 0 else 100 * min(1.0, d / p.full_days)
    return _Result(sub, f"renewal on {end}, in {plural(d, 'day')}", d, "days to renewal")


def _seat_utilization(facts: AccountFacts, config: HealthConfig) -> _Result:
    p = config.signals.seat_utilization
    days = facts.windows.activity_days
    if facts.contract is None or facts.contract.seats_purchased <= 0:
        return _Result(None, "no contract with seats on record", window_days=days)
    if facts.active_users is None:
        return _Result(None, "no usage events on record", window_days=days)
    seats = facts.contract.seats_purchased
    util = facts.active_users / seats
    sub = 100 * min(1.0, util / p.full_utilization)
    detail = (
        f"{facts.active_users} of {plural(seats, 'seat')} active in the last {days} days "
        f"({fmt_pct(util)})"
    )
    if facts.provisioned_users is not None:
        detail += f"; {facts.provisioned_users} users provisioned"
    return _Result(sub, detail, facts.active_users, "active users", days)


def _escalations(facts: AccountFacts, config: HealthConfig) -> _Result:
    p = config.signals.escalations
    days = facts.windows.escalation_days
    if facts.escalations is None and facts.tam_escalations is None:
        return _Result(None, "no support or TAM escalation data", window_days=days)
    support = facts.escalations or 0
    tam = facts.tam_escalations or 0
    n = support + tam
    sub = max(0.0, 100 - p.penalty_each * n)
    detail = (
        f"{plural(support, 'support escalation')} and {plural(tam, 'TAM escalation')} "
        f"in the last {days} days"
    )
    return _Result(sub, detail, n, f"escalations in the last {days} days", days)


_SIGNAL_FUNCS = {
    "feature_adoption": _feature_adoption,
    "support_tickets": _support_tickets,
    "last_interaction": _last_interaction,
    "login_frequency": _login_frequency,
    "usage_trend": _usage_trend,
    "invoice_status": _invoice_status,
    "stakeholder_engagement": _stakeholder_engagement,
    "nps": _nps,
    "renewal_proximity": _renewal_proximity,
    "seat_utilization": _seat_utilization,
    "escalations": _escalations,
}
assert tuple(_SIGNAL_FUNCS) == SIGNALS


# ------------------------------------------------------------------ look-ahead guard


def _future_issues(facts: AccountFacts) -> list[DataIssue]:
    """Timestamps after as_of: a producer bug; the signals ignore them, the snapshot lists them."""
    checks: list[tuple[str, str, datetime | None]] = [
        ("interactions", "last_meaningful_interaction_at", facts.last_meaningful_interaction_at),
        ("nps_responses", "nps_latest_at", facts.nps_latest_at),
        ("tam_health", "tam_measured_at", facts.tam_measured_at),
    ]
    issues = [
        DataIssue(table=table, row=f"{field}={ts.isoformat()}", problem="after as_of; not used")
        for table, field, ts in checks
        if ts is not None and _utc(ts) > _utc(facts.as_of)
    ]
    if facts.champion_left_on is not None and facts.champion_left_on > as_of_date(facts):
        issues.append(
            DataIssue(
                table="stakeholders",
                row=f"champion_left_on={facts.champion_left_on.isoformat()}",
                problem="after as_of; not used",
            )
        )
    return issues


# ------------------------------------------------------------------------- TAM


def tam_rag(facts: AccountFacts, config: HealthConfig) -> str | None:
    """RED/AMBER/GREEN from tam_rag, else from tam_score; None without TAM data."""
    if facts.tam_rag is not None and facts.tam_rag.strip().upper() in BANDS:
        return facts.tam_rag.strip().upper()
    if facts.tam_score is None:
        return None
    if facts.tam_score < config.tam.red_below:
        return "RED"
    if facts.tam_score < config.tam.amber_below:
        return "AMBER"
    return "GREEN"


def _apply_tam(score: float, facts: AccountFacts, config: HealthConfig) -> tuple[float, str | None]:
    if not config.tam.enabled:
        return score, None
    rag = tam_rag(facts, config)
    if rag is None or rag == "GREEN":
        return score, None
    at = facts.tam_measured_at
    src = f"TAM {rag}" + (f" (score {facts.tam_score})" if facts.tam_score is not None else "")
    if at is not None:
        age = whole_days_between(facts.as_of, at)
        if age < 0:
            return score, f"{src} is dated after as_of; not applied"
        if age > config.tam.stale_days:
            return score, (
                f"{src} measured {at.date().isoformat()} is older than "
                f"{config.tam.stale_days} days; not applied"
            )
        src += f" measured {at.date().isoformat()}"
    if rag == "RED":
        cap = config.bands.amber_min - config.tam.red_cap_offset
    else:
        cap = config.bands.green_min - config.tam.amber_cap_offset
    cap = round_half_up(max(0.0, cap), 1)
    if score > cap:
        return cap, f"{src}: score capped at {fmt_num(cap)} (was {fmt_num(score)})"
    return score, f"{src}: cap {fmt_num(cap)} not binding"


def band_for(
    score: float | None, config: HealthConfig, coverage: float | None = None
) -> Band | None:
    """The one place bands are decided: None without a score, UNSCORED when ``coverage``
    (given) is below ``bands.min_coverage``, else GREEN/AMBER/RED by the thresholds."""
    if score is None:
        return None
    if coverage is not None and coverage < config.bands.min_coverage:
        return UNSCORED
    if score >= config.bands.green_min:
        return "GREEN"
    if score >= config.bands.amber_min:
        return "AMBER"
    return "RED"


def unscored_reason(score: float | None, coverage: float, config: HealthConfig) -> str | None:
    """Why ``band_for`` said UNSCORED, in words; None when it did not."""
    if band_for(score, config, coverage) != UNSCORED:
        return None
    return (
        f"signals with data cover {fmt_pct(coverage)} of the weight, below the "
        f"{fmt_pct(config.bands.min_coverage)} minimum (bands.min_coverage): "
        f"score {fmt_num(score)} is not used for a band"
    )


# ---------------------------------------------------------------------- drivers


def _contribution(s: SignalScore | None) -> float:
    if s is None or s.sub_score is None:
        return 0.0
    return s.effective_weight * s.sub_score


def _driver_text(name: str, prev: SignalScore | None, cur: SignalScore, delta: float) -> str:
    label = SIGNAL_LABELS[name]
    pts = f"{delta:+.1f} points"
    if prev is None or prev.sub_score is None:
        return f"{label} now has data: {cur.detail} ({pts})"
    if cur.sub_score is None:
        return f"{label} has no data this time (was {fmt_num(prev.sub_score)}/100) ({pts})"
    if (
        prev.value is not None
        and cur.value is not None
        and prev.value != cur.value
        and prev.value_label == cur.value_label
        and cur.value_label
    ):
        verb = "rose" if cur.value > prev.value else "fell"
        return (
            f"{cur.value_label} {verb} from {fmt_num(prev.value)} to {fmt_num(cur.value)} "
            f"({label.lower()} {fmt_num(prev.sub_score)} -> {fmt_num(cur.sub_score)}/100, {pts})"
        )
    if prev.sub_score == cur.sub_score:
        return (
            f"{label} unchanged at {fmt_num(cur.sub_score)}/100; its share of the score moved "
            f"as other signals gained or lost data ({pts})"
        )
    return (
        f"{label} {fmt_num(prev.sub_score)} -> {fmt_num(cur.sub_score)}/100: {cur.detail} ({pts})"
    )


def explain_drivers(
    previous: HealthSnapshot, signals: Sequence[SignalScore], config: HealthConfig
) -> list[Driver]:
    """The signals whose contribution to the score moved most since ``previous``."""
    prev_by_name = {s.name: s for s in previous.signals}
    candidates: list[tuple[float, int, Driver]] = []
    for idx, cur in enumerate(signals):
        prev = prev_by_name.get(cur.name)
        if (prev is None or prev.sub_score is None) and cur.sub_score is None:
            continue
        delta = round_half_up(_contribution(cur) - _contribution(prev), 1)
        if abs(delta) < config.drivers.min_points or delta == 0:
            continue
        driver = Driver(
            signal=cur.name,
            label=cur.label,
            delta=delta,
            previous_sub_score=prev.sub_score if prev else None,
            current_sub_score=cur.sub_score,
            previous_value=prev.value if prev else None,
            current_value=cur.value,
            text=_driver_text(cur.name, prev, cur, delta),
        )
        candidates.append((-abs(delta), idx, driver))
    candidates.sort(key=lambda c: (c[0], c[1]))
    return [d for _, _, d in candidates[: config.drivers.max_drivers]]


# ---------------------------------------------------------------------- scoring


def composite_score(
    sub_scores: Mapping[str, float | None], weights: Mapping[str, float]
) -> tuple[float | None, float]:
    """(score before the TAM cap, coverage): the weighted mean of the signals with data.

    The one definition of steps 2-3 of the module docstring. ``domain/calibration.py``
    evaluates the same formula vectorized while it searches weights; a unit test holds
    the two equal.
    """
    with_data = [n for n in SIGNALS if sub_scores.get(n) is not None and weights[n] > 0]
    data_weight = math.fsum(weights[n] for n in with_data)
    if data_weight <= 0:
        return None, 0.0
    total_weight = math.fsum(weights[n] for n in SIGNALS)
    raw = math.fsum(weights[n] * sub_scores[n] for n in with_data) / data_weight  # type: ignore[operator]
    # coverage: 3 decimals (numeric(4,3) in health_snapshots); never rounds a scored account to 0
    coverage = max(0.001, round_half_up(data_weight / total_weight, 3))
    return round_half_up(min(100.0, max(0.0, raw)), 1), coverage


def score_health(
    facts: AccountFacts, config: HealthConfig, previous: HealthSnapshot | None = None
) -> HealthSnapshot:
    """The explained health snapshot of one account at ``facts.as_of``. Pure and deterministic."""
    results = {name: _SIGNAL_FUNCS[name](facts, config) for name in SIGNALS}
    for name, r in results.items():
        if r.sub is not None:
            results[name] = _Result(
                round_half_up(r.sub, 1), r.detail, r.value, r.value_label, r.window_days
            )

    weights = config.weights
    with_data = [n for n in SIGNALS if results[n].sub is not None and weights[n] > 0]
    data_weight = math.fsum(weights[n] for n in with_data)

    signals: list[SignalScore] = []
    for name in SIGNALS:
        r = results[name]
        eff = weights[name] / data_weight if name in with_data else 0.0
        signals.append(
            SignalScore(
                name=name,
                label=SIGNAL_LABELS[name],
                sub_score=r.sub,
                weight=weights[name],
                effective_weight=round_half_up(eff, 4),
                value=r.value,
                value_label=r.value_label,
                detail=r.detail,
                window_days=r.window_days,
            )
        )

    before_tam, coverage = composite_score({n: results[n].sub for n in SIGNALS}, weights)
    score: float | None = None
    tam_note: str | None = None
    if before_tam is not None:
        score, tam_note = _apply_tam(before_tam, facts, config)

    drivers = explain_drivers(previous, signals, config) if previous is not None else []
    return HealthSnapshot(
        account_id=facts.account_id,
        as_of=facts.as_of,
        config_version=config.version,
        score=score,
        score_before_tam=before_tam,
        band=band_for(score, config, coverage),
        band_reason=unscored_reason(score, coverage, config),
        coverage=coverage,
        signals=signals,
        drivers=drivers,
        tam_adjustment=tam_note,
        data_issues=[*facts.data_issues, *_future_issues(facts)],
    )
