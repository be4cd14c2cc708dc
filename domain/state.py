"""The account workflow's durable state: what continue-as-new carries over.

Kept small on purpose: telemetry lives in Postgres, full assessments in
health_snapshots; the workflow holds the latest summary, its own decisions
and what it has already done (so nothing is done twice).
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from domain.actions import ActionsState
from domain.digest import DraftPolicy
from domain.engagement import EngagementState
from domain.forecast import CsmSentiment, RenewalForecast
from domain.handoff import Handoff, HandoffContract
from domain.hygiene import HygieneState
from domain.lifecycle import Phase
from domain.messages import CsPlanUpdate
from domain.onboarding import CriterionStatus, MaturityResult, OnboardingState
from domain.onboarding_plan import ActivationState
from domain.summary import AssessmentSummary

TIMELINE_LIMIT = 200  # entries kept in state; every decision is also on the event bus
FAILURES_KEPT = 5


class TimelineEntry(BaseModel):
    at: datetime
    kind: str  # phase | scan | decision | signal | rejected | timer | child | delivery | update | failed
    text: str


class PendingTelemetry(BaseModel):
    signal: str
    key: str  # idempotency key of the write
    payload: dict


class AccountState(BaseModel):
    handoff: Handoff
    contract: HandoffContract
    phase: Phase = Phase.TRANSITION
    phase_entered_at: datetime | None = None
    phase_before_churn: Phase | None = None
    milestones: list[str] = Field(default_factory=list)
    nudges_sent: dict[str, int] = Field(default_factory=dict)  # phase value -> count
    done_checkpoints: list[str] = Field(default_factory=list)
    last_scan_at: datetime | None = None
    band: str | None = None
    band_reason: str | None = None  # why the band is UNSCORED
    score: float | None = None
    churn_level: str | None = None
    drivers: list[str] = Field(default_factory=list)
    open_findings: list[dict] = Field(
        default_factory=list
    )  # compact: id, kind, severity, title, dollars
    opportunities: list[dict] = Field(default_factory=list)
    last_decision: str | None = None
    alerts_sent: dict[str, str] = Field(default_factory=dict)  # alert key -> ISO date sent
    dispatched: dict[str, date] = Field(default_factory=dict)  # opportunity key -> dispatch date
    declined: dict[str, date] = Field(default_factory=dict)
    qbrs_started: list[str] = Field(default_factory=list)
    save_workflow_id: str | None = None
    save_decision_due: date | None = None  # the CSM decides on the save plan by then
    save_outcome: str | None = None
    churn_reason: str | None = None
    grace_until: date | None = None  # term ended without renewal: churned after this date
    paused: bool = False
    cs_plan: CsPlanUpdate | None = None
    pending_telemetry: list[PendingTelemetry] = Field(default_factory=list)
    seen_keys: list[str] = Field(
        default_factory=list
    )  # recent telemetry keys, for duplicate signals
    rescore: bool = False
    # The scheduled portfolio scan (workflows/portfolio.py): its latest summary not yet
    # decided on, when the latest one arrived, and until when it stands in for this
    # account's own daily scan.
    scheduled_summary: AssessmentSummary | None = None
    scheduled_until: datetime | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    runs: int = 1
    signals_received: int = 0
    signals_rejected: int = 0
    # Steps the workflow carried on after (a delivery, event or child that failed):
    # the last FAILURES_KEPT, each "YYYY-MM-DD what failed: reason".
    failures: list[str] = Field(default_factory=list)
    failures_total: int = 0
    # The CSM's call (set_sentiment update), until it expires; never replaces the score.
    sentiment: CsmSentiment | None = None
    # The latest renewal forecast, recorded at a renewal checkpoint (domain/forecast.py).
    forecast: RenewalForecast | None = None
    # A Postgres step that spent its retry budget: the account waits until then, then retries.
    db_retry_at: datetime | None = None
    handoff_pending: bool = False  # the handoff row is not in Postgres yet
    owner_pending: bool = False  # a reassigned CSM is not in the accounts row yet
    # Phases 1-3: drafts done, questionnaire answers, maturity, CS plan criteria.
    onboarding: OnboardingState = Field(default_factory=OnboardingState)
    # Later-phase plays: time to first value, advocacy asks (workflows/engagement.py).
    engagement: EngagementState = Field(default_factory=EngagementState)
    # Action items from interaction notes, and their chases (workflows/actions.py).
    actions: ActionsState = Field(default_factory=ActionsState)
    # CRM hygiene findings at the last check (workflows/hygiene.py).
    hygiene: HygieneState = Field(default_factory=HygieneState)
    # Value Activation: the onboarding plan drafted after the CS plan's approval (workflows/activation.py).
    activation: ActivationState = Field(default_factory=ActivationState)

    @property
    def account_id(self) -> str:
        return self.handoff.account_id


class AccountWorkflowInput(BaseModel):
    """Input of AccountLifecycleWorkflow: a handoff, or the state carried over by continue-as-new."""

    handoff: Handoff
    state: AccountState | None = None
    # Days after which a run continues as new even if the server has not suggested it.
    max_days_per_run: int = 30
    # Also continue as new after this many loop passes (None: only days/suggestion).
    # Small values make continue-as-new observable in tests.
    max_passes_per_run: int | None = None
    sales_task_queue: str = "vim-sales"
    llm_task_queue: str = "vim-llm"
    # Start-to-close timeout of the account's database and delivery activities: how long
    # the attempt of a worker that died (kill -9, lost host) holds before Temporal retries it.
    activity_timeout_seconds: int = Field(default=120, ge=1)
    # How mail is paced (digest, immediate cap, onboarding ramp); None: the defaults.
    policy: DraftPolicy | None = None


class AccountView(BaseModel):
    """Answer of the `view` query: what an operator or `starter.py describe` shows."""

    account_id: str
    name: str
    phase: str
    phase_entered_at: datetime | None
    waiting_for: str
    paused: bool
    band: str | None
    score: float | None
    churn_level: str | None
    drivers: list[str]
    open_findings: list[dict]
    opportunities: list[dict]
    renewal_date: date
    arr: float
    csm_owner: str
    milestones: list[str]
    next_checkpoints: list[str]
    save_workflow_id: str | None
    timeline: list[TimelineEntry]
    runs: int
    signals_received: int
    signals_rejected: int
    failures: list[str] = Field(default_factory=list)
    failures_total: int = 0
    band_reason: str | None = None  # why the band is UNSCORED
    # The approved CS plan's success criteria as of the last scan (met / on track / behind).
    success_criteria: list[CriterionStatus] = Field(default_factory=list)
    maturity: MaturityResult | None = None
    # Value Activation and Relationship Capital (workflows/engagement.py:view_fields).
    time_to_first_value_days: int | None = None
    time_to_first_value: str | None = None
    advocacy_asks: list[str] = Field(default_factory=list)  # "2027-03-01 reference call"
    # "drafted 2026-12-01; first value targeted by 2027-01-30 (60-day tier-2 target)"
    onboarding_plan: str | None = None
    advocacy_blocked: list[str] = Field(default_factory=list)  # why no ask now
    sentiment: CsmSentiment | None = None  # the CSM's call in force, beside the score
    forecast: RenewalForecast | None = None  # the latest renewal forecast
    # Action items: open ones (overdue first), then those done lately (workflows/actions.py).
    actions: list[str] = Field(default_factory=list)
    # CRM hygiene findings at the last check, each with its fix (workflows/hygiene.py).
    crm_hygiene: list[str] = Field(default_factory=list)


class AccountOutcome(BaseModel):
    """What the workflow returns when the account's lifecycle ends (churned)."""

    account_id: str
    outcome: str
    churned_on: date | None
    reason: str | None
    post_mortem_delivery: str | None
    timeline_tail: list[TimelineEntry]
