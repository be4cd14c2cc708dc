"""CRM hygiene: what is missing or stale in an account's CRM data, each with its fix (pure).

Checks, as known at ``as_of`` (a stakeholder who joined later is not there
yet, one who left later is still there; engagement comes from the dated
``stakeholder_engagements`` history):

- ``no_champion``: no active stakeholder is marked champion;
- ``stakeholder_left``: a stakeholder left within ``left_window_days``;
- ``not_engaged``: an active stakeholder not engaged in ``engaged_days``;
- ``missing_renewal``: no contract in force, or one without an end date,
  ARR or seats.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

HygieneCheck = Literal["no_champion", "stakeholder_left", "not_engaged", "missing_renewal"]


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


def _who(s: StakeholderRecord) -> str:
    return f"{s.name} ({s.title or s.role or 'no title'})"


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
    if not any(s.is_champion for s in present):
        out.append(
            HygieneFinding(
                check="no_champion",
                subject="account",
                detail=f"none of the {len(present)} active stakeholders is marked champion",
                fix="Mark the person who drives adoption as champion (stakeholder signal with "
                "is_champion: true), or find one at the next meeting",
            )
        )
    for s in sorted(stakeholders, key=lambda s: (s.left_on or date.min, s.stakeholder_id)):
        if s.left_on is not None and 0 <= (as_of - s.left_on).days <= left_window_days:
            role = "champion " if s.is_champion else ""
            out.append(
                HygieneFinding(
                    check="stakeholder_left",
                    subject=s.stakeholder_id,
                    detail=f"{role}{_who(s)} left on {s.left_on}",
                    fix="Name the successor and add them as a stakeholder"
                    + (" and champion" if s.is_champion else "")
                    + "; take the person who left off meeting invites and digests",
                )
            )
    for s in sorted(present, key=lambda s: s.stakeholder_id):
        last = s.last_engaged_at
        days = (as_of - last.date()).days if last else None
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
