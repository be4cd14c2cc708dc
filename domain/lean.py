"""Lean waste in the customer journey (seed 000): Muda, Mura, Muri.

``detect_waste(facts, config)`` returns zero or more ``Finding``s; pure and deterministic.
Finding ids are ``f"{kind}:{account_id}:{as_of:%Y-%m-%d}"``, plus ``":shelfware"`` for the
second Muda finding, so re-running the same day finds the same row. An account whose
health band is UNSCORED (too little data) gets no Lean play: ``domain.assess`` does not
call ``detect_waste`` for it.

| Kind | Fires when (defaults) | Severity | Dollars | Play |
|---|---|---|---|---|
| muda (seats) | utilization u = active_users (activity_days) / seats_purchased < utilization_below [0.6] | high if u < high_below [0.3], medium if u < medium_below [0.45], else low | unused seats (seats - active) * contract price_per_seat, per year | renewal >= redeploy_min_days [120] away: "Re-deployment strategy" (move the seats to new teams and use cases); nearer: "License Optimization plan" |
| muda (shelfware) | a licensed module (not in shelfware_exempt [core]) with no use in adoption_days [90] | medium if 2+ modules, else low | module list price * seats in use (seats minus the unused seats already counted above, so no dollar is counted twice); None when no module has a list price | same framing as above |
| mura | coefficient of variation (population std dev / mean) of weekly_active_users, leading zero weeks dropped, at least min_weeks [4] weeks and mean > 0, >= cv_threshold [0.35]; or max_gap_days >= max_gap_days [14] | the worse of: CV >= cv_high [0.7] / gap >= gap_high [30] high, CV >= cv_medium [0.5] / gap >= gap_medium [21] medium, else low | None | "Targeted adoption & training plan" |
| muri | tickets_recent >= min_tickets [3] and ratio r = tickets_recent / max(tickets_baseline, baseline_floor [1]) >= spike_ratio [2.0] | renewal-weighted ratio r * (1 + (W - d) / W) for 0 <= d <= W = renewal_window_days [90] (else r): >= high_at [4.0] high, >= medium_at [3.0] medium, else low | None | "Escalate to Director of CS + QBR & support alignment" |

Reference case (tested): 100 seats at $600/seat/year, 25 active users, renewal 182 days
away -> Muda, high, 75 unused seats, dollar_impact 45,000, "Re-deployment strategy".
"""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.config import HealthConfig
from domain.facts import AccountFacts
from domain.health import days_to_renewal, fmt_money, fmt_num, fmt_pct, plural, round_half_up

Severity = Literal["low", "medium", "high"]
SEVERITIES: tuple[str, ...] = ("low", "medium", "high")

PLAY_REDEPLOY = "Re-deployment strategy"
PLAY_LICENSE = "License Optimization plan"
PLAY_ADOPTION = "Targeted adoption & training plan"
PLAY_ESCALATE = "Escalate to Director of CS + QBR & support alignment"


class Finding(BaseModel):
    """A finding row (table ``findings``); also used for churn and expansion persistence."""

    finding_id: str
    account_id: str
    as_of: datetime
    kind: Literal["muda", "mura", "muri", "churn", "expansion"]
    severity: Severity
    title: str
    evidence: list[str] = Field(default_factory=list)
    dollar_impact: float | None = None
    play: str
    metrics: dict[str, float | int | str] = Field(default_factory=dict)


def finding_id(kind: str, account_id: str, as_of: datetime, suffix: str | None = None) -> str:
    base = f"{kind}:{account_id}:{as_of:%Y-%m-%d}"
    return f"{base}:{suffix}" if suffix else base


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def _renewal_framing(facts: AccountFacts, config: HealthConfig) -> tuple[str, str, str]:
    """(play, framing key, sentence) for seat/shelfware waste, by distance to renewal."""
    d = days_to_renewal(facts)
    limit = config.lean.muda.redeploy_min_days
    end = facts.contract.end_date.isoformat() if facts.contract else "n/a"
    if d is not None and d >= limit:
        return (
            PLAY_REDEPLOY,
            "redeployment",
            f"renewal on {end} is {plural(d, 'day')} away (>= {limit}): time to re-deploy the "
            "capacity to new teams and use cases before it becomes a downsell",
        )
    when = (
        f"renewal on {end} is {plural(d, 'day')} away (< {limit})"
        if d is not None and d >= 0
        else f"contract ended on {end}"
    )
    return (
        PLAY_LICENSE,
        "license_optimization",
        f"{when}: right-size the licence in a License Optimization plan before the renewal",
    )


def _muda(facts: AccountFacts, config: HealthConfig) -> list[Finding]:
    m = config.lean.muda
    contract = facts.contract
    if contract is None or contract.seats_purchased <= 0:
        return []
    seats = contract.seats_purchased
    price = contract.price_per_seat
    play, framing, renewal_line = _renewal_framing(facts, config)
    d = days_to_renewal(facts)
    days = facts.windows.activity_days
    out: list[Finding] = []

    unused_counted = 0
    if facts.active_users is not None:
        active = facts.active_users
        util = active / seats
        if util < m.utilization_below:
            unused = seats - active
            unused_counted = unused
            dollars = round_half_up(unused * price, 2)
            severity: Severity = (
                "high" if util < m.high_below else "medium" if util < m.medium_below else "low"
            )
            evidence = [
                f"{active} of {seats} seats active in the last {days} days "
                f"({fmt_pct(util)} utilization; waste below {fmt_pct(m.utilization_below)})",
                f"{unused} unused seats x {fmt_money(price)} per seat per year = "
                f"{fmt_money(dollars)} a year",
            ]
            if facts.provisioned_users is not None:
                evidence.append(f"{facts.provisioned_users} users provisioned, {active} active")
            evidence.append(renewal_line)
            out.append(
                Finding(
                    finding_id=finding_id("muda", facts.account_id, facts.as_of),
                    account_id=facts.account_id,
                    as_of=facts.as_of,
                    kind="muda",
                    severity=severity,
                    title=(
                        f"{fmt_pct(unused / seats)} of seats unused: {fmt_money(dollars)} a year"
                    ),
                    evidence=evidence,
                    dollar_impact=dollars,
                    play=play,
                    metrics={
                        "seats_purchased": seats,
                        "active_users": active,
                        "unused_seats": unused,
                        "utilization": round_half_up(util, 4),
                        "price_per_seat": price,
                        "annual_waste": dollars,
                        "days_to_renewal": d if d is not None else "n/a",
                        "framing": framing,
                    },
                )
            )

    if facts.module_usage is not None:
        exempt = set(m.shelfware_exempt)
        idle = sorted(
            mod
            for mod in set(contract.licensed_modules)
            if mod not in exempt and facts.module_usage.get(mod, 0) <= 0
        )
        if idle:
            seats_in_use = seats - unused_counted
            priced = [(mod, config.module_price(mod)) for mod in idle]
            known = [(mod, p) for mod, p in priced if p is not None]
            dollars_or_none = (
                round_half_up(sum(p * seats_in_use for _, p in known), 2) if known else None
            )
            adoption_days = facts.windows.adoption_days
            evidence = [
                f"licensed module {mod} had no use in the last {adoption_days} days"
                + (
                    f" (list {fmt_money(p)} per seat x {seats_in_use} seats = "
                    f"{fmt_money(p * seats_in_use)} a year)"
                    if p is not None
                    else ""
                )
                for mod, p in priced
            ]
            if unused_counted:
                evidence.append(
                    f"the {unused_counted} unused seats are counted in the seat finding, "
                    "not again here"
                )
            evidence.append(renewal_line)
            out.append(
                Finding(
                    finding_id=finding_id("muda", facts.account_id, facts.as_of, "shelfware"),
                    account_id=facts.account_id,
                    as_of=facts.as_of,
                    kind="muda",
                    severity="medium" if len(idle) >= 2 else "low",
                    title=f"Shelfware: {', '.join(idle)} licensed but unused",
                    evidence=evidence,
                    dollar_impact=dollars_or_none,
                    play=play,
                    metrics={
                        "idle_modules": ",".join(idle),
                        "idle_module_count": len(idle),
                        "seats_in_use": seats_in_use,
                        "annual_waste": dollars_or_none if dollars_or_none is not None else "n/a",
                        "framing": framing,
                    },
                )
            )
    return out


def weekly_cv(series: list[int] | None, min_weeks: int) -> tuple[list[int], float | None]:
    """(series without leading zero weeks, coefficient of variation or None)."""
    if not series:
        return [], None
    start = next((i for i, v in enumerate(series) if v > 0), len(series))
    trimmed = list(series[start:])  # a new account ramping up is not erratic
    if len(trimmed) < min_weeks:
        return trimmed, None
    mean = statistics.fmean(trimmed)
    if mean <= 0:
        return trimmed, None
    return trimmed, statistics.pstdev(trimmed) / mean


def _mura(facts: AccountFacts, config: HealthConfig) -> list[Finding]:
    m = config.lean.mura
    weeks, cv = weekly_cv(facts.weekly_active_users, m.min_weeks)
    gap = facts.max_gap_days
    cv_hit = cv is not None and cv >= m.cv_threshold
    gap_hit = gap is not None and gap >= m.max_gap_days
    if not (cv_hit or gap_hit):
        return []

    def level(x: float | None, low: float, medium: float, high: float) -> int:
        if x is None or x < low:
            return -1
        return 2 if x >= high else 1 if x >= medium else 0

    rank = max(
        level(cv, m.cv_threshold, m.cv_medium, m.cv_high),
        level(gap, m.max_gap_days, m.gap_medium, m.gap_high),
    )
    evidence: list[str] = []
    metrics: dict[str, float | int | str] = {}
    if cv is not None:
        mean = statistics.fmean(weeks)
        evidence.append(
            f"weekly active users over the last {len(weeks)} weeks: "
            + ", ".join(str(v) for v in weeks)
        )
        evidence.append(
            f"mean {fmt_num(mean)}, standard deviation {fmt_num(statistics.pstdev(weeks))}: "
            f"coefficient of variation {cv:.2f} (erratic at {m.cv_threshold:.2f} or more)"
        )
        zero_weeks = sum(1 for v in weeks if v == 0)
        if zero_weeks:
            evidence.append(f"{zero_weeks} of {len(weeks)} weeks had no active user")
        metrics.update({"weekly_cv": round_half_up(cv, 3), "weekly_mean": round_half_up(mean, 2)})
        metrics["weeks"] = len(weeks)
    if gap is not None:
        evidence.append(
            f"longest stretch without any activity: {gap} days in the last "
            f"{facts.windows.adoption_days} days (inconsistent at {m.max_gap_days} or more)"
        )
        metrics["max_gap_days"] = gap
    parts = []
    if cv_hit:
        parts.append(f"spiky weekly usage (CV {cv:.2f})")
    if gap_hit:
        parts.append(f"a {gap}-day usage gap")
    return [
        Finding(
            finding_id=finding_id("mura", facts.account_id, facts.as_of),
            account_id=facts.account_id,
            as_of=facts.as_of,
            kind="mura",
            severity=SEVERITIES[rank],  # type: ignore[arg-type]
            title="Inconsistent adoption: " + " and ".join(parts),
            evidence=evidence,
            dollar_impact=None,
            play=PLAY_ADOPTION,
            metrics=metrics,
        )
    ]


def muri_weighted_ratio(ratio: float, days_to_renewal: int | None, window: int) -> float:
    """Ticket spike ratio weighted up to 2x as the renewal gets closer (0 <= d <= window)."""
    if days_to_renewal is None or not 0 <= days_to_renewal <= window:
        return ratio
    return ratio * (1 + (window - days_to_renewal) / window)


def _muri(facts: AccountFacts, config: HealthConfig) -> list[Finding]:
    m = config.lean.muri
    recent = facts.tickets_recent
    if recent is None or recent < m.min_tickets:
        return []
    baseline = max(facts.tickets_baseline or 0.0, m.baseline_floor)
    ratio = recent / baseline
    if ratio < m.spike_ratio:
        return []
    d = days_to_renewal(facts)
    weighted = muri_weighted_ratio(ratio, d, m.renewal_window_days)
    severity: Severity = (
        "high" if weighted >= m.high_at else "medium" if weighted >= m.medium_at else "low"
    )
    days = facts.windows.ticket_days
    evidence = [
        f"{plural(recent, 'ticket')} in the last {days} days vs a baseline of "
        f"{fmt_num(facts.tickets_baseline or 0.0)} per {days} days: {fmt_num(ratio, 2)}x "
        f"(spike at {fmt_num(m.spike_ratio, 2)}x)",
    ]
    if d is not None and 0 <= d <= m.renewal_window_days:
        evidence.append(
            f"renewal in {plural(d, 'day')}: spike weighted x"
            f"{fmt_num(weighted / ratio, 2)} to {fmt_num(weighted, 2)}"
        )
    elif d is not None:
        evidence.append(
            f"renewal in {plural(d, 'day')}" if d >= 0 else f"contract ended {-d} days ago"
        )
    if facts.ticket_sentiment_recent is not None:
        evidence.append(f"mean ticket sentiment {facts.ticket_sentiment_recent:+.2f} (-1..1)")
    if facts.urgent_open:
        evidence.append(f"{plural(facts.urgent_open, 'high/urgent ticket')} open")
    if facts.escalations:
        evidence.append(
            f"{plural(facts.escalations, 'escalation')} in the last "
            f"{facts.windows.escalation_days} days"
        )
    return [
        Finding(
            finding_id=finding_id("muri", facts.account_id, facts.as_of),
            account_id=facts.account_id,
            as_of=facts.as_of,
            kind="muri",
            severity=severity,
            title=f"Support overburden: tickets at {fmt_num(ratio, 1)}x baseline",
            evidence=evidence,
            dollar_impact=None,
            play=PLAY_ESCALATE,
            metrics={
                "tickets_recent": recent,
                "tickets_baseline": facts.tickets_baseline or 0.0,
                "spike_ratio": round_half_up(ratio, 3),
                "renewal_weighted_ratio": round_half_up(weighted, 3),
                "days_to_renewal": d if d is not None else "n/a",
            },
        )
    ]


def detect_waste(facts: AccountFacts, config: HealthConfig) -> list[Finding]:
    """Muda, Mura and Muri findings for one account at ``facts.as_of`` (rules above)."""
    return [*_muda(facts, config), *_mura(facts, config), *_muri(facts, config)]
