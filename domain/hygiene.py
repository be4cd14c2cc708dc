"""CRM hygiene: what is missing or stale in an account's CRM data, each with its fix (pure).

Checks, as known at ``as_of`` (a stakeholder who joined later is not there
yet, one who left later is still there; engagement comes from the dated
``stakeholder_engagements`` history):

- ``no_champion``: no active stakeholder is marked champion (or has the champion role);
- ``no_sponsor``: no active stakeholder has the executive sponsor role (the stakeholder
  map of the kickoff brief, ``domain/onboarding.py``, re-evaluated on the stakeholders as
  the ``stakeholder`` signals left them);
- ``stakeholder_left``: a stakeholder left within ``left_window_days``;
- ``not_engaged``: an active stakeholder not engaged in ``engaged_days`` (one who never
  was, once ``engaged_days`` have passed since they joined);
- ``missing_renewal``: no contract in force, or one without an end date,
  ARR or seats.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.draft_facts import common
from domain.handoff import Handoff
from domain.narrative import CrmHygieneFacts
from domain.onboarding import canonical_role

HygieneCheck = Literal[
    "no_champion", "no_sponsor", "stakeholder_left", "not_engaged", "missing_renewal"
]


class StakeholderRecord(BaseModel):
    stakeholder_id: str
    name: str
    title: str | None = None
    role: str | None = None
    is_champion: bool = False
    joined_on: date | None = None
    left_on: date | None = None
    last_engaged_at: datetime | None = None  # the latest engagement at or before as_of


class ContractRecord(BaseModel):
    start_date: date
    end_date: date | None = None
    arr: float | None = None
    seats_purchased: int | None = None


class HygieneFinding(BaseModel):
    check: HygieneCheck
    subject: str
    detail: str
    fix: str


def _sponsor(s: StakeholderRecord) -> bool:
    return canonical_role(s.role or "") == "executive_sponsor"


def _who(s: StakeholderRecord) -> str:
    return f"{s.name} ({s.title or s.role or 'no title'})"


def _none_of(present: list[StakeholderRecord], what: str) -> str:
    """'none of the 2 active stakeholders is ...', worded for one and for nobody on record."""
    if not present:
        return f"no active stakeholder on record, so nobody {what}"
    if len(present) == 1:
        return (
            f"the only active stakeholder, {_who(present[0])}, {what.replace('is ', 'is not ', 1)}"
        )
    return f"none of the {len(present)} active stakeholders {what}"


def crm_hygiene(
    stakeholders: list[StakeholderRecord],
    contract: ContractRecord | None,
    as_of: date,
    *,
    engaged_days: int = 90,
    left_window_days: int = 180,
) -> list[HygieneFinding]:
    out: list[HygieneFinding] = []
    present = [
        s
        for s in stakeholders
        if (s.joined_on is None or s.joined_on <= as_of)
        and (s.left_on is None or s.left_on > as_of)
    ]
    if not any(s.is_champion or canonical_role(s.role or "") == "champion" for s in present):
        out.append(
            HygieneFinding(
                check="no_champion",
                subject="account",
                detail=_none_of(present, "is marked champion"),
                fix="Mark the person who drives adoption as champion (stakeholder signal with "
                "is_champion: true), or find one at the next meeting",
            )
        )
    if not any(_sponsor(s) for s in present):
        out.append(
            HygieneFinding(
                check="no_sponsor",
                subject="account",
                detail=_none_of(present, "is the executive sponsor"),
                fix="Ask the account rep to introduce the executive who owns the outcome, and "
                "record them (stakeholder signal with role: executive_sponsor)",
            )
        )
    for s in sorted(stakeholders, key=lambda s: (s.left_on or date.min, s.stakeholder_id)):
        if s.left_on is not None and 0 <= (as_of - s.left_on).days <= left_window_days:
            role = "champion " if s.is_champion else "executive sponsor " if _sponsor(s) else ""
            out.append(
                HygieneFinding(
                    check="stakeholder_left",
                    subject=s.stakeholder_id,
                    detail=f"{role}{_who(s)} left on {s.left_on}",
                    fix="Name the successor and add them as a stakeholder"
                    + (" and champion" if s.is_champion else "")
                    + (" and executive sponsor" if _sponsor(s) else "")
                    + "; take the person who left off meeting invites and digests",
                )
            )
    for s in sorted(present, key=lambda s: s.stakeholder_id):
        last = s.last_engaged_at
        days = (as_of - last.date()).days if last else None
        # Someone who joined within the window has not had the time to go quiet: the clock
        # starts at joining, so a kickoff's new stakeholders are not flagged the next week.
        if last is None and s.joined_on is not None and (as_of - s.joined_on).days <= engaged_days:
            continue
        if days is None or days > engaged_days:
            out.append(
                HygieneFinding(
                    check="not_engaged",
                    subject=s.stakeholder_id,
                    detail=f"{_who(s)} "
                    + (
                        f"last engaged {days} days ago ({last:%Y-%m-%d})"
                        if last
                        else "never engaged on record"
                    ),
                    fix=f"Re-engage {s.name} (a call or the next meeting invite), or record "
                    "that they left (stakeholder signal with left_on)",
                )
            )
    missing = []
    if contract is None:
        missing.append("no contract in force")
    else:
        if contract.end_date is None:
            missing.append("no end date")
        if not contract.arr:
            missing.append("no ARR")
        if not contract.seats_purchased:
            missing.append("no seats")
    if missing:
        out.append(
            HygieneFinding(
                check="missing_renewal",
                subject="contract",
                detail=", ".join(missing),
                fix="Load the contract terms: start and end date, ARR, seats and modules "
                "(`starter.py signal contract ACCOUNT file.json`, or the contracts ETL)",
            )
        )
    return out


# ------------------------------------------------------- the account workflow's view


def finding_key(f: HygieneFinding) -> str:
    """What makes a finding the same one tomorrow (its detail, e.g. days since, moves)."""
    return f"{f.check}:{f.subject}"


class HygieneState(BaseModel):
    """What the account workflow remembers of its hygiene checks (workflows/hygiene.py)."""

    checked_at: datetime | None = None
    stale: bool = False  # a stakeholder or contract signal arrived since the last check
    open: list[str] = Field(default_factory=list)  # finding keys found at the last check
    lines: list[str] = Field(default_factory=list)  # "detail (fix: ...)" of those findings


class HygieneChange(BaseModel):
    new: list[HygieneFinding]
    resolved: list[str]  # keys no longer found


def hygiene_change(before: list[str], found: list[HygieneFinding]) -> HygieneChange:
    """The findings not open at the last check, and the keys that were and are gone."""
    keys = {finding_key(f) for f in found}
    return HygieneChange(
        new=[f for f in found if finding_key(f) not in before],
        resolved=[k for k in before if k not in keys],
    )


class HygieneRequest(BaseModel):
    account_id: str
    as_of: datetime


def hygiene_facts(
    handoff: Handoff, as_of: datetime, change: HygieneChange, open_count: int
) -> CrmHygieneFacts:
    """The draft of the findings new at this check (most important first: the order of
    ``crm_hygiene``)."""
    return CrmHygieneFacts(
        **common(handoff, as_of),
        findings_open=open_count,
        new_findings=len(change.new),
        resolved_findings=len(change.resolved),
        evidence=[f.detail for f in change.new],
        recommended_actions=[f.fix for f in change.new],
    )
