"""Inputs and results of the child workflows (one pydantic model each)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.delivery import DeliveryResult
from domain.digest import DraftPolicy
from domain.onboarding import CriterionStatus
from domain.qbr import QbrReason
from domain.summary import OpportunityLine


class QbrInput(BaseModel):
    account_id: str
    account_name: str
    quarter_label: str  # "2027-Q1" or "renewal-2027-05-31"
    reason: QbrReason
    as_of: datetime
    csm_owner: str
    csm_email: str
    llm_task_queue: str = "vim-llm"
    activity_timeout_seconds: int = 120
    # How the QBR is announced: a line in the CSM's digest, or a cover-note draft (digest off).
    policy: DraftPolicy | None = None
    # The approved CS plan's criteria at the last scan: the QBR reports them (value proof).
    success_criteria: list[CriterionStatus] = Field(default_factory=list)


class QbrResult(BaseModel):
    account_id: str
    quarter_label: str
    page: DeliveryResult
    cover_note: DeliveryResult | None = None  # None: announced in the CSM's digest
    narratives_from_model: int
    narratives_from_template: int


class ExpansionInput(BaseModel):
    """The Sales dispatch payload of seed 001."""

    account_id: str
    account_name: str
    opportunity_id: str
    opportunity_type: Literal["seats", "module", "integration"]
    evidence: list[str]
    estimated_arr_impact: float
    talk_track: str
    # Every opportunity due for this account, in one talk track (the fields above: the largest).
    opportunities: list[OpportunityLine] = Field(default_factory=list)
    # The rep's talk track goes in their digest (None: drafted at once, as before digests).
    policy: DraftPolicy | None = None
    rep_owner: str | None = None
    rep_email: str
    llm_task_queue: str = "vim-llm"
    activity_timeout_seconds: int = 120


class ExpansionResult(BaseModel):
    opportunity_id: str
    draft: DeliveryResult  # the email draft, or the account page its digest line links to
    in_digest: bool = False


class ChurnSaveInput(BaseModel):
    account_id: str
    account_name: str
    reason: str
    csm_owner: str
    csm_email: str
    score: float | None = None
    band: str | None = None
    churn_level: str | None = None
    drivers: list[str] = Field(default_factory=list)
    renewal_date: date
    arr: float
    llm_task_queue: str = "vim-llm"
    activity_timeout_seconds: int = 120
    approval_sla_days: int = 3  # escalate to the Director of CS when no decision by then
    escalation_sla_days: int = 4  # give up waiting after this many more days


class ChurnSaveResult(BaseModel):
    account_id: str
    outcome: str  # approved | declined | no_decision
    decided_by: str | None = None
    steps_done: list[str] = Field(default_factory=list)
