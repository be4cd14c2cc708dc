"""Expansion opportunities for Sales (seed 001): seats, modules, integrations.

``detect_expansion(facts, config)`` is pure; it needs the contract (seats, price,
licensed modules), so an account without one gets no opportunity.
Ids are ``f"expansion:{account_id}:{opportunity_type}:{key}"`` (stable across runs).

| Type (key) | Fires when (defaults) | Estimated ARR impact | Confidence |
|---|---|---|---|
| seats (`seats`) | sustained: active_users >= seat_utilization_min [0.9] * seats in this activity window and, with sustained_windows [2], the one before; or provisioned_users > seats | extra seats * contract price_per_seat, extra = max(active - seats, provisioned - seats, ceil(seat_buffer_share [0.1] * seats), 1) | high: sustained and (active > seats or provisioned > seats); medium: sustained; low: provisioned only |
| module (`<module>`) | an unlicensed catalogue module with a list price: usage >= module_min_usage [1] in adoption_days, or limit hits >= limit_hits_min [3] in activity_days | seats * module list price | high: usage and limit hits; medium: usage; low: limit hits only |
| module (`<module>:limits`) | a licensed module with limit hits >= limit_hits_min [3] | seats * module list price * limit_uplift_share [0.5] | medium |
| integration (`integrations`) | integrations module unlicensed and api module usage >= api_heavy_usage [5,000] in adoption_days | seats * integrations list price | high if integrations is also used or hits its limit, else medium |

When the integration opportunity fires, the ``module`` opportunity for the integrations
module is not emitted as well (same dollars). Talk tracks are deterministic templates;
a model may rewrite them later, numbers included verbatim.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.config import HealthConfig
from domain.facts import AccountFacts
from domain.health import fmt_money, fmt_num, fmt_pct, plural, round_half_up

OpportunityType = Literal["seats", "module", "integration"]
Confidence = Literal["low", "medium", "high"]


class ExpansionOpportunity(BaseModel):
    opportunity_id: str
    account_id: str
    as_of: datetime
    opportunity_type: OpportunityType
    key: str
    title: str
    evidence: list[str] = Field(default_factory=list)
    estimated_arr_impact: float
    talk_track: str  # deterministic template; a model may rewrite it
    confidence: Confidence
    metrics: dict[str, float | int | str] = Field(default_factory=dict)


def opportunity_id(account_id: str, opportunity_type: str, key: str) -> str:
    return f"expansion:{account_id}:{opportunity_type}:{key}"


def _ceil(x: float) -> int:
    # round first so 0.1 * 30 = 3.0000000000000004 is 3, not 4
    return math.ceil(round(x, 9))


def _seats(facts: AccountFacts, config: HealthConfig) -> list[ExpansionOpportunity]:
    e = config.expansion
    c = facts.contract
    if c is None or c.seats_purchased <= 0:
        return []
    seats = c.seats_purchased
    floor = e.seat_utilization_min * seats
    active, prev, prov = facts.active_users, facts.active_users_prev, facts.provisioned_users
    sustained = (
        active is not None
        and active >= floor
        and (e.sustained_windows == 1 or (prev is not None and prev >= floor))
    )
    over_provisioned = prov is not None and prov > seats
    if not (sustained or over_provisioned):
        return []
    extra = max(
        (active or 0) - seats,
        (prov or 0) - seats,
        _ceil(e.seat_buffer_share * seats),
        1,
    )
    arr = round_half_up(extra * c.price_per_seat, 2)
    over = (active is not None and active > seats) or over_provisioned
    confidence: Confidence = "high" if sustained and over else "medium" if sustained else "low"
    days = facts.windows.activity_days
    evidence: list[str] = []
    if active is not None:
        evidence.append(
            f"{active} of {seats} seats active in the last {days} days ({fmt_pct(active / seats)})"
        )
    if prev is not None:
        evidence.append(
            f"{prev} of {seats} active in the {days} days before ({fmt_pct(prev / seats)})"
        )
    if prov is not None:
        evidence.append(f"{prov} users provisioned against {seats} seats")
    evidence.append(
        f"{extra} extra seats x {fmt_money(c.price_per_seat)} per seat = {fmt_money(arr)} ARR"
    )
    talk = (
        f"Your team is using {fmt_num(active or 0)} of {seats} seats"
        + (f" and has {prov} users provisioned" if prov is not None else "")
        + f". Adding {extra} seats ({fmt_money(arr)} a year at your current "
        f"{fmt_money(c.price_per_seat)} per seat) keeps new colleagues from waiting for a "
        "licence and leaves headroom for the next team to onboard."
    )
    return [
        ExpansionOpportunity(
            opportunity_id=opportunity_id(facts.account_id, "seats", "seats"),
            account_id=facts.account_id,
            as_of=facts.as_of,
            opportunity_type="seats",
            key="seats",
            title=f"{extra} more seats ({fmt_money(arr)} ARR)",
            evidence=evidence,
            estimated_arr_impact=arr,
            talk_track=talk,
            confidence=confidence,
            metrics={
                "seats_purchased": seats,
                "active_users": active if active is not None else "n/a",
                "active_users_prev": prev if prev is not None else "n/a",
                "provisioned_users": prov if prov is not None else "n/a",
                "extra_seats": extra,
            },
        )
    ]


def _integration(facts: AccountFacts, config: HealthConfig) -> list[ExpansionOpportunity]:
    e = config.expansion
    c = facts.contract
    if e.api_module is None or e.integrations_module is None:
        return []  # the rule is off in this config
    if c is None or e.integrations_module in c.licensed_modules:
        return []
    api_usage = (facts.module_usage or {}).get(e.api_module, 0.0)
    if api_usage < e.api_heavy_usage:
        return []
    price = config.module_price(e.integrations_module) or 0.0
    arr = round_half_up(c.seats_purchased * price, 2)
    integ_usage = (facts.module_usage or {}).get(e.integrations_module, 0.0)
    integ_hits = (facts.limit_hits or {}).get(e.integrations_module, 0)
    label = config.catalogue[e.integrations_module].label
    days = facts.windows.adoption_days
    evidence = [
        f"{fmt_num(api_usage)} {e.api_module} usage units in the last {days} days "
        f"(heavy at {fmt_num(e.api_heavy_usage)}) without the {e.integrations_module} module",
    ]
    api_users = (facts.feature_users or {}).get(f"{e.api_module}.call")
    if api_users:
        evidence.append(f"{plural(api_users, 'user')} calling the API")
    if integ_usage > 0 or integ_hits > 0:
        evidence.append(
            f"{e.integrations_module} already tried: {fmt_num(integ_usage)} usage units, "
            f"{plural(integ_hits, 'limit hit')}"
        )
    evidence.append(
        f"{c.seats_purchased} seats x {fmt_money(price)} list per seat = {fmt_money(arr)} ARR"
    )
    talk = (
        f"Your team made {fmt_num(api_usage)} API calls in the last {days} days, building "
        f"connections by hand. The {label} module ships maintained connectors for that work "
        f"({fmt_money(arr)} a year for {c.seats_purchased} seats), so engineers stop "
        "maintaining scripts and the data stays in sync."
    )
    return [
        ExpansionOpportunity(
            opportunity_id=opportunity_id(facts.account_id, "integration", e.integrations_module),
            account_id=facts.account_id,
            as_of=facts.as_of,
            opportunity_type="integration",
            key=e.integrations_module,
            title=f"{label} module for heavy API use ({fmt_money(arr)} ARR)",
            evidence=evidence,
            estimated_arr_impact=arr,
            talk_track=talk,
            confidence="high" if integ_usage > 0 or integ_hits > 0 else "medium",
            metrics={
                "api_usage": api_usage,
                "integrations_usage": integ_usage,
                "integrations_limit_hits": integ_hits,
                "seats_purchased": c.seats_purchased,
                "module_price_per_seat": price,
            },
        )
    ]


def _modules(
    facts: AccountFacts, config: HealthConfig, skip: set[str]
) -> list[ExpansionOpportunity]:
    e = config.expansion
    c = facts.contract
    if c is None:
        return []
    usage = facts.module_usage or {}
    hits = facts.limit_hits or {}
    licensed = set(c.licensed_modules)
    seats = c.seats_purchased
    out: list[ExpansionOpportunity] = []
    for module in sorted(config.catalogue):
        spec = config.catalogue[module]
        if module in skip or spec.price_per_seat <= 0:
            continue
        used = usage.get(module, 0.0)
        hit = hits.get(module, 0)
        if module not in licensed:
            uses = used >= e.module_min_usage
            limited = hit >= e.limit_hits_min
            if not (uses or limited):
                continue
            arr = round_half_up(seats * spec.price_per_seat, 2)
            evidence = []
            if used > 0:
                evidence.append(
                    f"{fmt_num(used)} {module} usage units in the last "
                    f"{facts.windows.adoption_days} days while {module} is not licensed"
                )
            if hit > 0:
                evidence.append(
                    f"{plural(hit, 'plan limit hit')} on {module} in the last "
                    f"{facts.windows.activity_days} days"
                )
            evidence.append(
                f"{seats} seats x {fmt_money(spec.price_per_seat)} list per seat = "
                f"{fmt_money(arr)} ARR"
            )
            confidence: Confidence = "high" if uses and limited else "medium" if uses else "low"
            seen = [f"{fmt_num(used)} uses in {facts.windows.adoption_days} days"] if used else []
            seen += [plural(hit, "limit hit")] if hit else []
            talk = (
                f"Your team is already reaching for {spec.label} ({', '.join(seen)}). "
                f"Licensing {spec.label} for all {seats} seats ({fmt_money(arr)} a year) "
                "removes the limits and lets us set it up properly with your admins."
            )
            out.append(
                ExpansionOpportunity(
                    opportunity_id=opportunity_id(facts.account_id, "module", module),
                    account_id=facts.account_id,
                    as_of=facts.as_of,
                    opportunity_type="module",
                    key=module,
                    title=f"{spec.label} module ({fmt_money(arr)} ARR)",
                    evidence=evidence,
                    estimated_arr_impact=arr,
                    talk_track=talk,
                    confidence=confidence,
                    metrics={
                        "module_usage": used,
                        "limit_hits": hit,
                        "seats_purchased": seats,
                        "module_price_per_seat": spec.price_per_seat,
                    },
                )
            )
        elif hit >= e.limit_hits_min:
            arr = round_half_up(seats * spec.price_per_seat * e.limit_uplift_share, 2)
            key = f"{module}:limits"
            out.append(
                ExpansionOpportunity(
                    opportunity_id=opportunity_id(facts.account_id, "module", key),
                    account_id=facts.account_id,
                    as_of=facts.as_of,
                    opportunity_type="module",
                    key=key,
                    title=f"Higher {spec.label} limits ({fmt_money(arr)} ARR)",
                    evidence=[
                        f"{plural(hit, 'plan limit hit')} on licensed {module} in the last "
                        f"{facts.windows.activity_days} days",
                        f"{seats} seats x {fmt_money(spec.price_per_seat)} list per seat x "
                        f"{fmt_pct(e.limit_uplift_share)} uplift = {fmt_money(arr)} ARR",
                    ],
                    estimated_arr_impact=arr,
                    talk_track=(
                        f"Your team hit the {spec.label} plan limit {plural(hit, 'time')} in the "
                        f"last {facts.windows.activity_days} days. Raising the limit "
                        f"({fmt_money(arr)} a year) keeps that work from stalling."
                    ),
                    confidence="medium",
                    metrics={
                        "limit_hits": hit,
                        "seats_purchased": seats,
                        "module_price_per_seat": spec.price_per_seat,
                        "uplift_share": e.limit_uplift_share,
                    },
                )
            )
    return out


def detect_expansion(facts: AccountFacts, config: HealthConfig) -> list[ExpansionOpportunity]:
    """Seat, module and integration opportunities at ``facts.as_of`` (rules above)."""
    integration = _integration(facts, config)
    skip = {config.expansion.integrations_module} if integration else set()
    return [*_seats(facts, config), *_modules(facts, config, skip), *integration]
