"""The Customer Success lifecycle of seed 000 as a pure state machine.

Linear phases 1 -> 2 -> 3 -> 4 -> 8 -> 10, each left when its exit gate holds
("gating progress based on data readiness"); the continuous loop 5/6/7
(orchestration, observability, risk control) runs from phase 3 on; phase 11
(churn handling) is the exception path, entered when risk is confirmed or the
customer gives notice, and left either back to where the account was (saved)
or to CHURNED (post-mortem done).

Every function here is pure: the workflow passes `as_of` (its own
`workflow.now()`), never the wall clock.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import IntEnum

from pydantic import BaseModel, Field


class Phase(IntEnum):
    TRANSITION = 1
    DISCOVERY = 2
    EXECUTIVE_ALIGNMENT = 3
    VALUE_ACTIVATION = 4
    VALUE_PROOF = 8
    RELATIONSHIP_CAPITAL = 10
    CHURN_HANDLING = 11
    CHURNED = 12  # terminal: post-mortem written, workflow completes

    @property
    def label(self) -> str:
        return PHASE_LABELS[self]

    @property
    def slug(self) -> str:
        """What operators filter on: `AccountPhase = '4-value-activation'`."""
        return f"{self.value}-{self.name.lower().replace('_', '-')}"


PHASE_LABELS: dict[Phase, str] = {
    Phase.TRANSITION: "1 Transition",
    Phase.DISCOVERY: "2 Discovery & Assessment",
    Phase.EXECUTIVE_ALIGNMENT: "3 Executive Alignment & CS Plan",
    Phase.VALUE_ACTIVATION: "4 Value Activation",
    Phase.VALUE_PROOF: "8 Value Proof",
    Phase.RELATIONSHIP_CAPITAL: "10 Relationship Capital",
    Phase.CHURN_HANDLING: "11 Churn Handling",
    Phase.CHURNED: "Churned (post-mortem done)",
}

LINEAR: list[Phase] = [
    Phase.TRANSITION,
    Phase.DISCOVERY,
    Phase.EXECUTIVE_ALIGNMENT,
    Phase.VALUE_ACTIVATION,
    Phase.VALUE_PROOF,
    Phase.RELATIONSHIP_CAPITAL,
]

# Milestones a person (or an integration) reports with the `milestone` signal
# or the `mark_milestone` update. Some are also reached from data (see
# `data_milestones`).
MILESTONES: dict[str, str] = {
    "handoff_complete": "Sales handoff recorded and account activated",
    "questionnaire_answered": "Alignment questionnaire answered",
    "maturity_assessed": "Maturity assessment done",
    "kickoff_held": "Kickoff held",
    "stakeholders_mapped": "Stakeholders mapped",
    "cs_plan_approved": "CS plan approved by the customer",
    "onboarding_complete": "Onboarding complete",
    "first_value": "First value milestone reached",
    "first_qbr_delivered": "First QBR delivered",
    "reference_given": "Customer gave a reference or case study",
}


class Gate(BaseModel):
    phase: Phase
    requires: list[str]
    sla_days: int  # after this many days in the phase, the owner is nudged
    owner: str = "csm"

    def missing(self, done: set[str]) -> list[str]:
        return [m for m in self.requires if m not in done]


GATES: dict[Phase, Gate] = {
    Phase.TRANSITION: Gate(phase=Phase.TRANSITION, requires=["handoff_complete"], sla_days=3),
    Phase.DISCOVERY: Gate(
        phase=Phase.DISCOVERY, requires=["questionnaire_answered", "maturity_assessed"], sla_days=21
    ),
    Phase.EXECUTIVE_ALIGNMENT: Gate(
        phase=Phase.EXECUTIVE_ALIGNMENT,
        requires=["kickoff_held", "stakeholders_mapped", "cs_plan_approved"],
        sla_days=30,
    ),
    Phase.VALUE_ACTIVATION: Gate(
        phase=Phase.VALUE_ACTIVATION, requires=["onboarding_complete", "first_value"], sla_days=60
    ),
    Phase.VALUE_PROOF: Gate(
        phase=Phase.VALUE_PROOF, requires=["first_qbr_delivered"], sla_days=120
    ),
}

# Thresholds for milestones reached from telemetry rather than reported.
FIRST_VALUE_UTILIZATION = 0.4  # 40% of purchased seats active in the activity window
ONBOARDING_ACTIVE_USERS = 5


def data_milestones(seat_utilization: float | None, active_users: int | None) -> set[str]:
    """Milestones the telemetry proves on its own (data readiness)."""
    reached: set[str] = set()
    if active_users is not None and active_users >= ONBOARDING_ACTIVE_USERS:
        reached.add("onboarding_complete")
    if seat_utilization is not None and seat_utilization >= FIRST_VALUE_UTILIZATION:
        reached.add("first_value")
    return reached


ONBOARDING_PHASES = (
    Phase.TRANSITION,
    Phase.DISCOVERY,
    Phase.EXECUTIVE_ALIGNMENT,
    Phase.VALUE_ACTIVATION,
)


def in_onboarding_ramp(phase: Phase, contract_start: date, today: date, ramp_days: int) -> bool:
    """Still ramping up: before Value Proof and within ``ramp_days`` of the contract start.

    Seats a new customer has not handed out yet are no license waste: the
    Muda play waits until the ramp is over (or the account reached Value Proof).
    """
    return phase in ONBOARDING_PHASES and (today - contract_start).days < ramp_days


def loop_active(phase: Phase) -> bool:
    """The 5/6/7 loop (orchestration, observability, risk control) runs from phase 3 on.

    Observability runs from day one regardless (bands must show at handoff);
    what starts at phase 3 is acting on risk with playbooks.
    """
    return phase >= Phase.EXECUTIVE_ALIGNMENT and phase != Phase.CHURNED


# Below this share of health weight with data, a RED band is not enough to
# confirm churn risk: a brand-new account with no telemetry is unknown, not lost.
MIN_COVERAGE_TO_CONFIRM = 0.5


def risk_confirmed(churn_level: str | None, band: str | None, coverage: float) -> bool:
    """Risk control's exit to churn handling (seed 000: "risk detected? yes")."""
    return churn_level == "CRITICAL" and band == "RED" and coverage >= MIN_COVERAGE_TO_CONFIRM


class Transition(BaseModel):
    from_phase: Phase
    to_phase: Phase
    reason: str


def advance(phase: Phase, done: set[str]) -> list[Transition]:
    """Walk the linear phases as far as the gates allow. Pure and idempotent."""
    moves: list[Transition] = []
    current = phase
    while current in GATES and not GATES[current].missing(done):
        nxt = LINEAR[LINEAR.index(current) + 1]
        gate = GATES[current]
        moves.append(
            Transition(
                from_phase=current,
                to_phase=nxt,
                reason="gate met: " + ", ".join(MILESTONES[m] for m in gate.requires),
            )
        )
        current = nxt
    return moves


def enter_churn_handling(phase: Phase, reason: str) -> Transition | None:
    if phase in (Phase.CHURN_HANDLING, Phase.CHURNED):
        return None
    return Transition(from_phase=phase, to_phase=Phase.CHURN_HANDLING, reason=reason)


class NudgeDue(BaseModel):
    phase: Phase
    missing: list[str]
    days_in_phase: int
    due_at: datetime


def next_nudge(
    phase: Phase, entered_at: datetime, nudges_sent: int, done: set[str]
) -> NudgeDue | None:
    """When the owner of a stalled gate is nudged next: after the SLA, then every SLA again."""
    gate = GATES.get(phase)
    if gate is None or not gate.missing(done):
        return None
    due = entered_at + timedelta(days=gate.sla_days * (nudges_sent + 1))
    return NudgeDue(
        phase=phase,
        missing=gate.missing(done),
        days_in_phase=gate.sla_days * (nudges_sent + 1),
        due_at=due,
    )


# --------------------------------------------------------------- calendar

RENEWAL_CHECKPOINTS_DAYS = (120, 90, 60, 30, 0)
PRE_RENEWAL_QBR_DAYS = 90


class Checkpoint(BaseModel):
    kind: str  # renewal_window | qbr | renewal_outcome
    key: str  # unique per occurrence: what the workflow remembers as done
    at: datetime
    days_before_end: int | None = None
    label: str = ""


def quarter_label(d: date) -> str:
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


QBR_GRACE = timedelta(
    days=7
)  # a quarterly QBR whose timer fired late (or a run restarted) still runs


def quarter_start(at: datetime) -> datetime:
    """Midnight on the first day of `at`'s quarter (same tz)."""
    q_month = ((at.month - 1) // 3) * 3 + 1
    return at.replace(month=q_month, day=1, hour=0, minute=0, second=0, microsecond=0)


def next_quarter_start(after: datetime) -> datetime:
    """The first day of the next quarter strictly after `after` (midnight, same tz)."""
    q_month = ((after.month - 1) // 3) * 3 + 1
    start = after.replace(month=q_month, day=1, hour=0, minute=0, second=0, microsecond=0)
    if start <= after:
        month = q_month + 3
        year = start.year + (month - 1) // 12
        month = (month - 1) % 12 + 1
        start = start.replace(year=year, month=month)
    return start


def _at_midnight(d: date, like: datetime) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=like.tzinfo)


def calendar(as_of: datetime, contract_end: date, done: set[str]) -> list[Checkpoint]:
    """Every dated checkpoint not yet done, soonest first.

    Keys include the contract end date, so moving the date creates new
    checkpoints (and the old ones are simply no longer listed): that is how
    a contract-change signal re-arms the timers.
    """
    out: list[Checkpoint] = []
    end_key = contract_end.isoformat()
    for days in RENEWAL_CHECKPOINTS_DAYS:
        at = _at_midnight(contract_end - timedelta(days=days), as_of)
        kind = "renewal_outcome" if days == 0 else "renewal_window"
        key = f"{kind}:{end_key}:{days}"
        if key not in done:
            out.append(
                Checkpoint(
                    kind=kind,
                    key=key,
                    at=at,
                    days_before_end=days,
                    label=f"renewal {'term end' if days == 0 else f'T-{days}d'} ({end_key})",
                )
            )
    pre = contract_end - timedelta(days=PRE_RENEWAL_QBR_DAYS)
    pre_key = f"qbr:renewal-{end_key}"
    if pre_key not in done:
        out.append(
            Checkpoint(
                kind="qbr",
                key=pre_key,
                at=_at_midnight(pre, as_of),
                days_before_end=PRE_RENEWAL_QBR_DAYS,
                label=f"pre-renewal QBR {quarter_label(pre)} (90 days before {end_key})",
            )
        )
    # The quarter that just began (its timer fires a moment after midnight,
    # when "next quarter" already means the one after) and the next one.
    for start in (quarter_start(as_of), next_quarter_start(as_of)):
        q_key = f"qbr:{quarter_label(start.date())}"
        if q_key in done or (start <= as_of and as_of - start > QBR_GRACE):
            continue
        label = f"quarterly QBR {quarter_label(start.date())}"
        out.append(Checkpoint(kind="qbr", key=q_key, at=start, label=label))
    return sorted(out, key=lambda c: (c.at, c.key))


def stale_checkpoints(as_of: datetime, contract_end: date, done: set[str]) -> set[str]:
    """Checkpoints already in the past when a term starts being watched.

    An account handed off 45 days before renewal should get one T-60 alert
    now, not T-120, T-90 and T-60 at once: every past renewal window but the
    latest is skipped. A past pre-renewal QBR is kept (it still helps).
    """
    past = [
        c
        for c in calendar(as_of, contract_end, done)
        if c.at <= as_of and c.kind == "renewal_window"
    ]
    return {c.key for c in past[:-1]}


class AccountStatus(BaseModel):
    """What `starter.py list` and the `status` query show."""

    account_id: str
    name: str
    phase: str
    band: str | None = None
    score: float | None = None
    churn_risk: str | None = None
    renewal_date: date | None = None
    arr: float | None = None
    csm_owner: str | None = None
    waiting_for: str = ""
    open_findings: int = 0
    milestones: list[str] = Field(default_factory=list)
