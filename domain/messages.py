"""The account workflow's API: one pydantic model per signal and update input.

Shared by the workflow (which validates again on arrival) and by
`starter.py` (which validates before sending, so most bad input never
reaches a workflow). Add fields with defaults only: running workflows must
still decode old payloads.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from domain.forecast import Sentiment
from domain.handoff import check_notice
from domain.lifecycle import MILESTONES
from domain.limits import (
    ID_MAX,
    PG_INT_MAX,
    PG_NUMERIC_12_2_MAX,
    PG_NUMERIC_14_2_MAX,
    QUANTITY_MAX,
    EventType,
    Finite,
    Name,
    OneLine,
    PgInt,
    RecordId,
    ShortText,
    Text,
)
from domain.onboarding import MAX_ANSWERS, MAX_CRITERIA, Answer, SuccessCriterion
from domain.summary import AssessmentSummary


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ signals


class UsageEvent(_Strict):
    user_id: RecordId
    occurred_at: datetime
    event_type: EventType
    quantity: Finite = Field(default=1, ge=0, le=QUANTITY_MAX)


class UsageEventsSignal(_Strict):
    """A batch: one signal carries many events (written to Postgres, not kept in state)."""

    batch_id: RecordId = Field(description="Idempotency: a batch id is written once")
    events: list[UsageEvent] = Field(min_length=1, max_length=5000)


class UsageArrivedSignal(_Strict):
    """Bulk ingestion wrote usage rows straight to Postgres: "N events up to T; rescore".

    Coalesced by the sender (at most one per account per interval); carries no rows."""

    events: PgInt = Field(ge=1)
    up_to: datetime


class SupportTicketSignal(_Strict):
    ticket_id: RecordId
    opened_at: datetime
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    sentiment: Finite | None = Field(default=None, ge=-1, le=1)
    escalated: bool = False
    subject: ShortText | None = None
    body: Text | None = None


class NpsSignal(_Strict):
    response_id: RecordId
    responded_at: datetime
    score: int = Field(ge=0, le=10)
    respondent: ShortText | None = None
    comment: Text | None = None


class InvoiceSignal(_Strict):
    invoice_id: RecordId
    issued_on: date
    due_on: date
    amount: Finite = Field(gt=0, le=PG_NUMERIC_14_2_MAX)
    paid_on: date | None = None

    @model_validator(mode="after")
    def _dates(self) -> InvoiceSignal:
        if self.due_on < self.issued_on:
            raise ValueError(f"due_on {self.due_on} is before issued_on {self.issued_on}")
        return self


class InteractionSignal(_Strict):
    interaction_id: RecordId
    occurred_at: datetime
    kind: Literal["meeting", "call", "email", "qbr", "kickoff", "workshop"] = "meeting"
    meaningful: bool = True
    attendees: PgInt | None = Field(default=None, ge=0)
    notes: Text | None = None


class StakeholderChangeSignal(_Strict):
    stakeholder_id: RecordId
    name: Name
    email: EmailStr | None = None
    title: ShortText | None = None
    role: ShortText = "user"
    is_champion: bool = False
    joined_on: date | None = None
    left_on: date | None = None


class TamEscalationSignal(_Strict):
    measured_at: datetime
    score: int = Field(ge=0, le=100)
    rag: Literal["RED", "AMBER", "GREEN"] | None = None
    escalation: bool = True
    note: Text | None = None


class ContractChangeSignal(_Strict):
    """A new term or an amendment. Moving end_date re-arms every renewal timer."""

    start_date: date
    end_date: date
    arr: Finite = Field(gt=0, le=PG_NUMERIC_14_2_MAX)
    seats_purchased: int = Field(gt=0, le=PG_INT_MAX)
    price_per_seat: Finite = Field(gt=0, le=PG_NUMERIC_12_2_MAX)
    licensed_modules: list[RecordId] = Field(default_factory=lambda: ["core"], max_length=100)
    notice_on: date | None = None  # the day the customer gave notice on this term

    @model_validator(mode="after")
    def _end_after_start(self) -> ContractChangeSignal:
        if self.end_date <= self.start_date:
            raise ValueError(f"end_date {self.end_date} must be after start_date {self.start_date}")
        check_notice(self.notice_on, self.start_date, self.end_date)
        return self


class MilestoneSignal(_Strict):
    milestone: str = Field(max_length=ID_MAX)
    note: ShortText | None = None

    @model_validator(mode="after")
    def _known(self) -> MilestoneSignal:
        if self.milestone not in MILESTONES:
            raise ValueError(
                f"unknown milestone {self.milestone!r}; known: {', '.join(MILESTONES)}"
            )
        return self


class ChurnNoticeSignal(_Strict):
    reason: ShortText = Field(min_length=1)
    effective_date: date | None = None
    # The day the customer gave notice (default: the day the signal arrives). Recorded as
    # notice_on on the contract in force that day, so scores and back-tests know the churn
    # from then on, and not before.
    noticed_on: date | None = None


class PortfolioSummarySignal(_Strict):
    """The scheduled portfolio scan's result for one account (workflows/portfolio.py): the
    account decides from it instead of running its own daily `score_account`.

    `interval_seconds` is the schedule's interval: the account skips its own daily scan
    while a summary this recent has arrived (plus a grace period), and scans itself again
    when the schedule stops."""

    summary: AssessmentSummary
    interval_seconds: int = Field(default=86_400, ge=60, le=PG_INT_MAX)


class FeatureReleasedSignal(_Strict):
    """A feature was released: accounts that license its module get an introduction draft."""

    feature_id: RecordId
    module: RecordId = Field(max_length=100)
    title: ShortText = Field(min_length=1)
    released_on: date
    summary: ShortText | None = None


class MeetingScheduledSignal(_Strict):
    """A meeting with the customer is on the calendar: a prep brief is drafted before it."""

    meeting_id: RecordId
    scheduled_for: datetime
    kind: Literal["meeting", "call", "qbr", "kickoff", "workshop"] = "meeting"
    title: ShortText | None = None
    attendees: list[Name] = Field(default_factory=list, max_length=50)


# Signal name -> model. The workflow and the CLI both use this table.
SIGNALS: dict[str, type[BaseModel]] = {
    "usage": UsageEventsSignal,
    "ticket": SupportTicketSignal,
    "nps": NpsSignal,
    "invoice": InvoiceSignal,
    "interaction": InteractionSignal,
    "stakeholder": StakeholderChangeSignal,
    "tam": TamEscalationSignal,
    "contract": ContractChangeSignal,
    "milestone": MilestoneSignal,
    "churn_notice": ChurnNoticeSignal,
    "usage_arrived": UsageArrivedSignal,
    "portfolio_summary": PortfolioSummarySignal,
    "feature_released": FeatureReleasedSignal,
    "meeting_scheduled": MeetingScheduledSignal,
}

# Telemetry that an activity writes to Postgres; the rest changes workflow state.
TELEMETRY_SIGNALS = {
    "usage",
    "ticket",
    "nps",
    "invoice",
    "interaction",
    "stakeholder",
    "tam",
    "contract",
}
# Signals after which the account is re-scored at once rather than at the next daily scan.
RESCORE_SIGNALS = {
    "ticket",
    "nps",
    "invoice",
    "stakeholder",
    "tam",
    "contract",
    "churn_notice",
    "usage_arrived",
}


# ------------------------------------------------------------------ updates


class CsPlanUpdate(_Strict):
    """Approve (or edit and approve) the CS plan co-created with the customer."""

    approved_by: Name
    objectives: list[ShortText] = Field(min_length=1, max_length=50)
    success_metrics: list[ShortText] = Field(default_factory=list, max_length=50)
    # The measurable targets tracked on every scan (domain/onboarding.py). None: adopt the
    # criteria the CS plan draft proposed; []: track none.
    success_criteria: list[SuccessCriterion] | None = Field(default=None, max_length=MAX_CRITERIA)


class QuestionnaireAnswersUpdate(_Strict):
    """The customer's answers to the alignment questionnaire (ids as the draft lists them)."""

    answered_by: Name
    answers: list[Answer] = Field(min_length=1, max_length=MAX_ANSWERS)


class DecisionUpdate(_Strict):
    """Approve or decline a save plan or an expansion."""

    decided_by: Name
    approve: bool
    target_id: RecordId | None = Field(default=None, description="opportunity id for expansions")
    note: ShortText | None = None


class MilestoneUpdate(_Strict):
    milestone: str = Field(max_length=ID_MAX)
    marked_by: Name
    note: ShortText | None = None


class PauseUpdate(_Strict):
    paused: bool
    by: Name
    reason: ShortText | None = None


class ReassignUpdate(_Strict):
    csm_owner: Name
    csm_email: EmailStr
    by: Name


class SentimentUpdate(_Strict):
    """The CSM's call on an account (domain/forecast.py): shown beside the computed score and
    fed to the renewal forecast until ``expires_on``; it never replaces the score."""

    value: Sentiment
    reason: OneLine
    author: Name
    expires_on: date


class ActionDoneUpdate(_Strict):
    """Close an open action item of the account (domain/actions.py) by its id ("A-3")."""

    action_id: RecordId
    done_by: Name
    note: ShortText | None = None


UPDATES: dict[str, type[BaseModel]] = {
    "approve_cs_plan": CsPlanUpdate,
    "decide_save": DecisionUpdate,
    "decide_expansion": DecisionUpdate,
    "mark_milestone": MilestoneUpdate,
    "set_paused": PauseUpdate,
    "reassign_csm": ReassignUpdate,
    "submit_questionnaire": QuestionnaireAnswersUpdate,
    "set_sentiment": SentimentUpdate,
    "complete_action": ActionDoneUpdate,
}


class UpdateResult(BaseModel):
    accepted: bool = True
    message: str
