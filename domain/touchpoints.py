"""Operational Orchestration: touchpoint cadence, meeting prep and follow-ups (pure, no I/O, no clock).

- A **cadence per tier** (``TouchpointConfig.cadence_days``): when an account
  has had no meaningful interaction for longer than its tier's cadence, a
  touchpoint is due.
- A **meeting-prep brief** is due ``prep_lead_hours`` before each scheduled
  meeting (the ``meeting_scheduled`` signal), and no later than its start:
  what changed since the last brief or meaningful interaction
  (``changes_since``), the open risks and the asks.
- A **follow-up** is due after a meaningful interaction with notes: the action
  items and their owners are read from the notes by ``parse_actions`` (lines
  such as ``ACTION: Dana to send the export guide``, ``TODO: book the QBR``,
  ``- [ ] Sam: share the roadmap``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field


class TouchpointConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cadence_days: dict[str, int] = Field(
        default_factory=lambda: {"tier-1": 14, "tier-2": 30, "tier-3": 60}
    )
    default_cadence_days: int = Field(default=45, ge=1)
    prep_lead_hours: int = Field(default=24, ge=1, le=24 * 14)

    def cadence_for(self, tier: str) -> int:
        return self.cadence_days.get(tier, self.default_cadence_days)


class ScheduledMeeting(BaseModel):
    meeting_id: str
    scheduled_for: datetime
    kind: str = "meeting"
    title: str | None = None
    attendees: list[str] = Field(default_factory=list)
    prepped: bool = False


class Baseline(BaseModel):
    """What the account looked like at the last brief or meaningful interaction."""

    at: datetime
    score: float | None = None
    band: str | None = None
    churn_level: str | None = None
    milestones: list[str] = Field(default_factory=list)
    findings: list[str] = Field(default_factory=list)  # titles of open findings


class ActionItem(BaseModel):
    owner: str | None = None
    action: str


def prep_due(
    meetings: list[ScheduledMeeting], now: datetime, lead_hours: int
) -> list[ScheduledMeeting]:
    """Meetings whose brief is due now: not prepped, within the lead time, not started yet."""
    lead = timedelta(hours=lead_hours)
    return sorted(
        (m for m in meetings if not m.prepped and m.scheduled_for - lead <= now < m.scheduled_for),
        key=lambda m: (m.scheduled_for, m.meeting_id),
    )


def missed(meetings: list[ScheduledMeeting], now: datetime) -> list[ScheduledMeeting]:
    """Meetings that started before any pass could brief them (signalled too late)."""
    return [m for m in meetings if not m.prepped and m.scheduled_for <= now]


def touchpoint_overdue(last_touch: datetime | None, now: datetime, cadence_days: int) -> int | None:
    """Days since the last meaningful touchpoint when that exceeds the cadence, else None."""
    if last_touch is None:
        return None
    days = (now - last_touch).days
    return days if days > cadence_days else None


def changes_since(before: Baseline | None, now: Baseline) -> list[str]:
    """Plain lines: what moved between the last brief (or interaction) and now."""
    if before is None:
        return ["first brief for this account: no earlier baseline"]
    out: list[str] = []
    if (
        before.score is not None
        and now.score is not None
        and round(before.score) != round(now.score)
    ):
        out.append(
            f"health {before.score:.0f} -> {now.score:.0f}/100"
            + (f" ({before.band} -> {now.band})" if before.band != now.band else f" ({now.band})")
        )
    elif before.band != now.band and now.band is not None:
        out.append(f"health band {before.band or 'not scored'} -> {now.band}")
    if before.churn_level != now.churn_level and now.churn_level is not None:
        out.append(f"churn risk {before.churn_level or 'not assessed'} -> {now.churn_level}")
    for m in now.milestones:
        if m not in before.milestones:
            out.append(f"milestone reached: {m}")
    for f in now.findings:
        if f not in before.findings:
            out.append(f"new finding: {f}")
    for f in before.findings:
        if f not in now.findings:
            out.append(f"no longer found: {f}")
    return out or [f"no change in health, risk or milestones since {before.at:%Y-%m-%d}"]


_MARKER = re.compile(r"^\s*(?:[-*]\s*)?(?:\[\s?\]\s*|(?:action(?: item)?|todo|next step)\s*[:\-]\s*)", re.IGNORECASE)  # fmt: skip
_OWNER_TO = re.compile(
    r"^(?P<owner>[A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,2}) (?:to|will) (?P<what>.+)$"
)
_OWNER_COLON = re.compile(r"^(?P<owner>[A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,2})\s*:\s*(?P<what>.+)$")


def parse_actions(notes: str | None, limit: int = 10) -> list[ActionItem]:
    """Action items from meeting notes: marked lines, with the owner when the line names one."""
    out: list[ActionItem] = []
    for line in (notes or "").splitlines():
        m = _MARKER.match(line)
        if not m:
            continue
        rest = " ".join(line[m.end() :].split()).rstrip(".")
        if not rest:
            continue
        named = _OWNER_TO.match(rest) or _OWNER_COLON.match(rest)
        if named:
            out.append(ActionItem(owner=named.group("owner"), action=named.group("what")))
        else:
            out.append(ActionItem(action=rest))
        if len(out) >= limit:
            break
    return out
