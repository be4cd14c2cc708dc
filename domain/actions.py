"""Operational Orchestration: the account's action items and when an overdue one is chased
(pure rules, no I/O, no clock: every function takes the day it decides for).

The follow-up of a meaningful interaction reads action items and owners from its notes
(``domain/touchpoints.parse_actions``). Each becomes a durable **action** of the account:
an id (``A-1``, ``A-2``, ... per account), the text, the owner, a due date (read from the
line when it gives one: ``by 2027-01-15``, ``due 2027-01-15``, ``by Friday``, ``within 2
weeks``, ``in 5 days``; else ``default_due_days`` after the interaction) and a status
(``open`` until the ``complete_action`` update marks it ``done``).

An open action past its due date is **chased**: once when it becomes overdue, again at most
every ``chase_every_days``, at most ``max_chases`` times. The chase is an email draft to the
owner when the owner is a known stakeholder with an email (``match_owner``), else a line in
the CSM's digest; never sent by the system.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.draft_facts import common
from domain.handoff import Handoff
from domain.health import plural
from domain.narrative import ActionChaseFacts
from domain.touchpoints import ActionItem

ActionStatus = Literal["open", "done"]
OPEN_KEPT = 200  # open actions a workflow holds (the oldest beyond this are dropped from state)
RECORDS_MAX = 400  # rows per record_actions call (the rest go on the next pass)
DONE_KEPT_DAYS = 30  # a done action stays in the workflow's state (and view) this long
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ActionConfig(BaseModel):
    """How actions are dated and chased (``actions`` in VIM_ENGAGEMENT_CONFIG)."""

    model_config = ConfigDict(extra="forbid")

    default_due_days: int = Field(default=7, ge=1, le=365, description="after the interaction")
    chase_every_days: int = Field(default=3, ge=1, le=90)
    max_chases: int = Field(default=3, ge=0, le=20, description="0: never chase")


class AccountAction(BaseModel):
    action_id: str  # "A-1": unique within its account only
    text: str
    owner: str | None = None
    owner_email: str | None = None  # the stakeholder's, once a chase matched the owner
    due_on: date
    due_from_notes: bool = False  # the notes gave the date (else the configured default)
    status: ActionStatus = "open"
    interaction_id: str
    interaction_kind: str = "meeting"
    agreed_on: date  # the day of the interaction
    chases: int = 0
    last_chased_on: date | None = None
    done_on: date | None = None
    done_by: str | None = None
    done_note: str | None = None
    stored: bool = False  # False: Postgres does not have this version of the row yet

    def days_overdue(self, today: date) -> int:
        """Whole days past the due date of an open action; 0 when not overdue or done."""
        return max((today - self.due_on).days, 0) if self.status == "open" else 0

    def line(self, today: date) -> str:
        """One line for `describe` and the view."""
        who = self.owner or "no owner"
        if self.status == "done":
            return f"{self.action_id} done {self.done_on} by {self.done_by}: {who}: {self.text}"
        late = self.days_overdue(today)
        state = f"{plural(late, 'day')} overdue" if late else "open"
        chased = f", chased {self.chases}x" if self.chases else ""
        return f"{self.action_id} {state} (due {self.due_on}{chased}): {who}: {self.text}"


class ActionsState(BaseModel):
    """What the account workflow holds of its actions (carried by continue-as-new)."""

    actions: list[AccountAction] = Field(default_factory=list)
    next_number: int = 1
    config: ActionConfig | None = None  # the worker's, as last read

    def find(self, action_id: str) -> AccountAction | None:
        return next((a for a in self.actions if a.action_id == action_id), None)


class Contact(BaseModel):
    """A stakeholder of the account as Postgres knows them (for matching an owner)."""

    name: str
    email: str | None = None
    left_on: date | None = None


class ActionRecords(BaseModel):
    """Input of ``record_actions``: rows of one account to upsert."""

    account_id: str
    actions: list[AccountAction] = Field(max_length=RECORDS_MAX)


class ContactsRequest(BaseModel):
    """Input of ``action_contacts``: the account's stakeholders as known at ``as_of``."""

    account_id: str
    as_of: datetime


# ------------------------------------------------------------------ due dates

_ISO = re.compile(r"\b(?:by|due|before|on)\s+(\d{4}-\d{2}-\d{2})\b", re.IGNORECASE)
_WEEKDAY = re.compile(r"\b(?:by|due|before|on)\s+(?:next\s+)?(" + "|".join(WEEKDAYS) + r")\b", re.IGNORECASE)  # fmt: skip
_WITHIN = re.compile(r"\b(?:in|within)\s+(\d{1,3})\s+(day|week)s?\b", re.IGNORECASE)


def parse_due(text: str, agreed_on: date) -> date | None:
    """The due date an action line gives, counted from the day it was agreed; None if none.

    ``by 2027-01-15`` (also due/before/on), ``by Friday`` (the first Friday after the
    interaction), ``in 5 days``, ``within 2 weeks``. A date before the interaction is
    ignored (a typo, or the date of something else)."""
    m = _ISO.search(text)
    if m:
        try:
            when = date.fromisoformat(m.group(1))
        except ValueError:
            return None
        return when if when >= agreed_on else None
    m = _WEEKDAY.search(text)
    if m:
        ahead = (WEEKDAYS.index(m.group(1).lower()) - agreed_on.weekday()) % 7 or 7
        return agreed_on + timedelta(days=ahead)
    m = _WITHIN.search(text)
    if m:
        n = int(m.group(1)) * (7 if m.group(2).lower() == "week" else 1)
        return agreed_on + timedelta(days=max(n, 1))
    return None


def new_actions(
    items: list[ActionItem],
    *,
    interaction_id: str,
    interaction_kind: str,
    agreed_on: date,
    first_number: int,
    cfg: ActionConfig,
) -> list[AccountAction]:
    """The durable actions of one interaction's action items, numbered from ``first_number``."""
    out = []
    for i, it in enumerate(items):
        due = parse_due(it.action, agreed_on)
        out.append(
            AccountAction(
                action_id=f"A-{first_number + i}",
                text=it.action,
                owner=it.owner,
                due_on=due or agreed_on + timedelta(days=cfg.default_due_days),
                due_from_notes=due is not None,
                interaction_id=interaction_id,
                interaction_kind=interaction_kind,
                agreed_on=agreed_on,
            )
        )
    return out


# ------------------------------------------------------------------ chasing


def chase_due(a: AccountAction, today: date, cfg: ActionConfig) -> bool:
    """An open action past its due date, chased fewer than ``max_chases`` times, and not
    chased in the last ``chase_every_days``."""
    if a.status != "open" or today <= a.due_on or a.chases >= cfg.max_chases:
        return False
    return a.last_chased_on is None or (today - a.last_chased_on).days >= cfg.chase_every_days


def match_owner(owner: str | None, contacts: list[Contact], today: date) -> Contact | None:
    """The stakeholder with an email an owner names: the same full name (any case), else the
    only current stakeholder with an email whose first name it is. None: chase via the CSM."""
    if not owner:
        return None
    current = [c for c in contacts if c.email and (c.left_on is None or c.left_on > today)]
    key = " ".join(owner.split()).casefold()
    exact = [c for c in current if " ".join(c.name.split()).casefold() == key]
    if exact:
        return exact[0]
    if " " in key:
        return None
    first = [c for c in current if c.name.split()[0].casefold() == key]
    return first[0] if len(first) == 1 else None


def completion_refusal(state: ActionsState, action_id: str) -> str | None:
    """Why ``action_id`` cannot be marked done (unknown, already done); None: it can."""
    a = state.find(action_id)
    if a is None:
        open_ids = [x.action_id for x in state.actions if x.status == "open"]
        return f"no action {action_id!r} on this account; open: {', '.join(open_ids) or 'none'}"
    if a.status == "done":
        return f"action {action_id} was already done on {a.done_on} by {a.done_by}"
    return None


def prune(state: ActionsState, today: date) -> None:
    """Keep the state small: done actions for DONE_KEPT_DAYS (Postgres keeps every row), and
    at most OPEN_KEPT open ones. Only rows already stored are dropped."""
    keep_done = today - timedelta(days=DONE_KEPT_DAYS)
    kept = [
        a
        for a in state.actions
        if not a.stored or a.status == "open" or (a.done_on is not None and a.done_on > keep_done)
    ]
    open_ = [a for a in kept if a.status == "open" and a.stored]
    drop = {a.action_id for a in open_[: max(len(open_) - OPEN_KEPT, 0)]}
    state.actions = [a for a in kept if a.action_id not in drop]


def chase_facts(
    handoff: Handoff,
    as_of: datetime,
    a: AccountAction,
    cfg: ActionConfig,
    *,
    to: Contact | None,
) -> ActionChaseFacts:
    """The reminder for ``a`` (already counted: ``a.chases`` is this chase's number)."""
    base = common(handoff, as_of)
    if to is not None:
        base["stakeholders"] = [to.name, *[s for s in base["stakeholders"] if s != to.name]][:6]
    return ActionChaseFacts(
        **base,
        action_id=a.action_id,
        owner_name=to.name if to is not None else a.owner,
        to_owner=to is not None,
        interaction_kind=a.interaction_kind,
        agreed_on=a.agreed_on,
        due_on=a.due_on,
        days_overdue=a.days_overdue(as_of.date()),
        chase_number=a.chases,
        max_chases=cfg.max_chases,
        evidence=[
            f"Agreed at the {a.interaction_kind} on {a.agreed_on}, due {a.due_on}"
            + (" (date from the notes)" if a.due_from_notes else " (default due date)"),
            f"Open {plural(a.days_overdue(as_of.date()), 'day')} past due; "
            f"reminder {a.chases} of at most {cfg.max_chases}",
        ],
        customer_quotes=[f"{a.owner or 'no owner yet'}: {a.text}"],
    )
