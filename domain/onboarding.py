"""Phases 1-3 of the lifecycle as rules: what is due, and the numbers behind each draft.

Transition, Discovery & Assessment, and Executive Alignment & CS Plan. The
workflow (``workflows/phases.py``) asks ``next_due`` what to draft after each
scan; everything it drafts is computed here from the handoff, the answers a
person sent back and the scan's telemetry summary:

- the account activation checklist (``activation_checklist``);
- the alignment questionnaire tailored to the account's tier, industry and
  licensed modules (``questionnaire``), and its answers (``Answer``);
- the maturity assessment against the published rubric ``RUBRIC``
  (``assess_maturity``), and use-case discovery against the catalogue in
  ``domain/use_cases.json`` (``discover_use_cases``);
- the stakeholder map with its gaps (``stakeholder_map``), the mutual
  expectations by tier (``MUTUAL_EXPECTATIONS``);
- the CS plan's measurable success criteria (``propose_criteria``) and their
  evaluation on every scan (``evaluate_criteria``: met / on track / behind).

Pure: no I/O (the catalogue is read once at import, like a constant), no
clock: every function that needs today takes ``as_of``.
"""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.handoff import Handoff
from domain.health import fmt_num, fmt_pct, plural, round_half_up
from domain.lifecycle import FIRST_VALUE_UTILIZATION, Phase
from domain.limits import PG_INT_MAX, Finite, RecordId, ShortText

# ------------------------------------------------------------------ what is due

# In the order a CSM needs them.
Deliverable = Literal[
    "commercial_brief",
    "alignment_questionnaire",
    "maturity_assessment",
    "kickoff_brief",
    "cs_plan_draft",
]
DELIVERABLES: tuple[Deliverable, ...] = (
    "commercial_brief",
    "alignment_questionnaire",
    "maturity_assessment",
    "kickoff_brief",
    "cs_plan_draft",
)
# The commercial brief is for a CSM who takes the account over before value activation.
BRIEF_PHASES = (Phase.TRANSITION, Phase.DISCOVERY, Phase.EXECUTIVE_ALIGNMENT)


def next_due(
    phase: Phase, milestones: set[str], delivered: set[str], answers_received: bool
) -> Deliverable | None:
    """The first deliverable of phases 1-3 due now, or None. Pure and idempotent.

    - commercial brief: once, while the account is before Value Activation;
    - alignment questionnaire: once, in Discovery while it is unanswered;
    - maturity assessment: once, when the questionnaire's answers came back;
    - kickoff brief: once, in Executive Alignment;
    - CS plan draft: once, in Executive Alignment before the plan is approved.
    """
    if "commercial_brief" not in delivered and phase in BRIEF_PHASES:
        return "commercial_brief"
    if (
        "alignment_questionnaire" not in delivered
        and phase == Phase.DISCOVERY
        and "questionnaire_answered" not in milestones
    ):
        return "alignment_questionnaire"
    if "maturity_assessment" not in delivered and answers_received:
        return "maturity_assessment"
    if "kickoff_brief" not in delivered and phase == Phase.EXECUTIVE_ALIGNMENT:
        return "kickoff_brief"
    if (
        "cs_plan_draft" not in delivered
        and phase == Phase.EXECUTIVE_ALIGNMENT
        and "cs_plan_approved" not in milestones
    ):
        return "cs_plan_draft"
    return None


# ------------------------------------------------------------ activation checklist


class ChecklistItem(BaseModel):
    item: str
    done: bool
    fix: str  # what closes it when open


def activation_checklist(handoff: Handoff, active_users: int | None) -> list[ChecklistItem]:
    """What account activation needs, from the handoff and the first scan."""
    c = handoff.contract
    people = handoff.stakeholders
    roles = {canonical_role(p.role) for p in people} | (
        {"champion"} if any(p.is_champion for p in people) else set()
    )
    with_email = sum(1 for p in people if p.email)
    rep = handoff.rep_owner or "the account rep"
    return [
        ChecklistItem(
            item=f"Contract on file: {c.seats_purchased} seats, {', '.join(c.licensed_modules)}, "
            f"{c.start_date} to {c.end_date}",
            done=True,
            fix="",
        ),
        ChecklistItem(item=f"CSM assigned: {handoff.csm_owner}", done=True, fix=""),
        ChecklistItem(
            item="Account rep named for the renewal",
            done=handoff.rep_owner is not None,
            fix="Name the account rep who owns the renewal",
        ),
        ChecklistItem(
            item="Executive sponsor named by Sales",
            done="executive_sponsor" in roles,
            fix=f"Ask {rep} who signed off the purchase and record them as executive sponsor",
        ),
        ChecklistItem(
            item="Champion named by Sales",
            done="champion" in roles,
            fix=f"Ask {rep} who pushed for the purchase and record them as champion",
        ),
        ChecklistItem(
            item="Every named stakeholder has an email on file",
            done=bool(people) and with_email == len(people),
            fix="Complete the stakeholders' emails so invitations reach them",
        ),
        ChecklistItem(
            item="Success goals from the sale recorded",
            done=bool(handoff.goals),
            fix=f"Ask {rep} for the goals the customer bought against",
        ),
        ChecklistItem(
            item="First product use seen in telemetry",
            done=bool(active_users),
            fix="Check that users are provisioned and the product events reach the system",
        ),
    ]


# ---------------------------------------------------------------- questionnaire

Dimension = Literal["goals", "sponsorship", "process", "adoption", "depth"]


class Question(BaseModel):
    question_id: str
    text: str
    dimension: Dimension | None = None  # None: an open question, not scored


_Row = tuple[str, Dimension | None, str]
_BASE: list[_Row] = [
    ("goals-outcome", "goals", "What business outcome must {name} see in the first 90 days for this purchase to be a success?"),
    ("goals-measure", "goals", "How is that outcome measured today, and who owns the number?"),
    ("sponsor-engaged", "sponsorship", "Who is the executive sponsor, and how often will they review progress with us?"),
    ("process-current", "process", "Which current process or tool does this replace, and is that process written down?"),
    ("process-rollout", "process", "Which teams roll out first, and who leads the rollout in each team?"),
]  # fmt: skip
_BY_TIER: dict[str, list[_Row]] = {
    "tier-1": [("sponsor-governance", "sponsorship", "Which steering group or leadership meeting should our quarterly business reviews report into?")],
    "tier-2": [("process-training", "process", "How many of the {seats} seats need training in the first month, and in which format?")],
    "tier-3": [("process-admin", "process", "Who administers the workspace day to day, and do they prefer self-serve training?")],
}  # fmt: skip
_BY_MODULE: dict[str, list[_Row]] = {
    "reports": [("reports-audience", "process", "Which reports does {name} produce today, for whom and how often?")],
    "dashboards": [("dashboards-decisions", "goals", "Which decisions should a dashboard support, and who makes them?")],
    "automation": [("automation-candidates", "process", "Which recurring manual workflow would you automate first?")],
    "api": [("api-systems", "process", "Which in-house systems will call the API, and who owns them?")],
    "integrations": [("integrations-systems", "process", "Which systems must stay in sync, and which one is the system of record?")],
}  # fmt: skip
_INDUSTRY: _Row = (
    "industry-constraints",
    None,
    "Which {industry} regulations, audits or seasonal peaks should the rollout plan around?",
)


def questionnaire(handoff: Handoff) -> list[Question]:
    """The alignment questionnaire for this account: the base questions, then its tier's,
    its licensed modules', and one on its industry (when Sales recorded it)."""
    rows = list(_BASE) + _BY_TIER.get(handoff.tier, [])
    for module in handoff.contract.licensed_modules:
        rows += _BY_MODULE.get(module, [])
    if handoff.industry:
        rows.append(_INDUSTRY)
    fill = {
        "name": handoff.name,
        "seats": handoff.contract.seats_purchased,
        "industry": handoff.industry or "",
    }
    seen: dict[str, Question] = {}
    for qid, dim, text in rows:
        seen.setdefault(qid, Question(question_id=qid, text=text.format(**fill), dimension=dim))
    return list(seen.values())


MAX_ANSWERS = 30


class Answer(BaseModel):
    """One answer: the rubric level the answer shows (1-5, see RUBRIC) and what was said."""

    model_config = ConfigDict(extra="forbid")

    question_id: RecordId
    level: int | None = Field(default=None, ge=1, le=5)
    note: ShortText | None = None


# ---------------------------------------------------------------------- rubric


class RubricDimension(BaseModel):
    dimension: Dimension
    label: str
    source: Literal["answers", "telemetry"]
    levels: dict[int, str]  # 1..5 -> what the level looks like


# The published maturity rubric (README "Maturity rubric"). Answer dimensions are
# scored from the questionnaire (each answer's level, averaged per dimension);
# telemetry dimensions from the scan: adoption from seat utilization in the
# activity window, depth from the share of the licensed modules' use cases
# the telemetry shows.
RUBRIC: dict[Dimension, RubricDimension] = {
    "goals": RubricDimension(
        dimension="goals",
        label="Goals and success measures",
        source="answers",
        levels={
            1: "no outcome defined",
            2: "outcome named, not measured",
            3: "outcome measured, no owner",
            4: "outcome measured and owned",
            5: "measured, owned and reviewed on a cadence",
        },
    ),
    "sponsorship": RubricDimension(
        dimension="sponsorship",
        label="Executive sponsorship",
        source="answers",
        levels={
            1: "no sponsor",
            2: "sponsor named, not engaged",
            3: "sponsor engaged at kickoff",
            4: "sponsor reviews progress each quarter",
            5: "sponsor sets adoption goals across teams",
        },
    ),
    "process": RubricDimension(
        dimension="process",
        label="Process and rollout",
        source="answers",
        levels={
            1: "current process not written down",
            2: "process written down for one team",
            3: "rollout plan for the first teams",
            4: "a rollout lead in every team",
            5: "part of the standard operating procedures",
        },
    ),
    "adoption": RubricDimension(
        dimension="adoption",
        label="Adoption breadth (seat utilization)",
        source="telemetry",
        levels={
            1: "under 10% of seats active",
            2: "10% to 25% of seats active",
            3: "25% to 40% of seats active",
            4: "40% to 60% of seats active",
            5: "60% of seats or more active",
        },
    ),
    "depth": RubricDimension(
        dimension="depth",
        label="Usage depth (use cases in use)",
        source="telemetry",
        levels={
            1: "no licensed use case in use",
            2: "under a third of the use cases in use",
            3: "a third to two thirds in use",
            4: "more than two thirds in use",
            5: "every licensed use case in use",
        },
    ),
}
# Lower bounds of levels 2..5: seat utilization, and the share of use cases seen.
ADOPTION_BOUNDS = (0.10, 0.25, FIRST_VALUE_UTILIZATION, 0.60)
DEPTH_BOUNDS = (1e-9, 1 / 3, 2 / 3, 1.0)
STAGES = {1: "Initial", 2: "Developing", 3: "Defined", 4: "Managed", 5: "Optimizing"}


def level_from(value: float, bounds: tuple[float, float, float, float]) -> int:
    """1 + the number of lower bounds ``value`` reaches (a share; 1.0 is 100%)."""
    return 1 + sum(1 for b in bounds if value >= b - 1e-12)


class DimensionScore(BaseModel):
    dimension: Dimension
    label: str
    level: float | None  # 1.0-5.0; None when nothing scored it
    basis: str  # where the level comes from, with the numbers


class MaturityResult(BaseModel):
    overall: float | None  # mean of the scored dimensions, 1 decimal
    stage: str | None
    dimensions: list[DimensionScore]
    answers_scored: int

    @property
    def weakest(self) -> DimensionScore | None:
        scored = [d for d in self.dimensions if d.level is not None]
        return min(scored, key=lambda d: d.level or 0) if scored else None


class TelemetryReading(BaseModel):
    """What the scan measured that phases 1-3 use (from ``AssessmentSummary``)."""

    active_users: int | None = None  # distinct users in the activity window
    activity_window_days: int | None = None
    weekly_active_users: int | None = None  # the latest of the weekly series
    seat_utilization: float | None = None  # active users / seats purchased
    feature_users: dict[str, int] = Field(default_factory=dict)  # event type -> distinct users
    adoption_window_days: int | None = None


def assess_maturity(
    questions: list[Question],
    answers: list[Answer],
    reading: TelemetryReading,
    seats: int,
    licensed_modules: list[str],
) -> MaturityResult:
    """Score each rubric dimension and the overall level (the mean of those scored)."""
    dims = {q.question_id: q.dimension for q in questions}
    scores: list[DimensionScore] = []
    scored_answers = 0
    for dim, spec in RUBRIC.items():
        if spec.source == "answers":
            levels = [
                a.level for a in answers if a.level is not None and dims.get(a.question_id) == dim
            ]
            scored_answers += len(levels)
            if levels:
                lvl = round_half_up(sum(levels) / len(levels), 1)
                basis = f"{plural(len(levels), 'answer')}, mean level {fmt_num(lvl)}"
            else:
                lvl, basis = None, "not answered"
        elif dim == "adoption":
            util = reading.seat_utilization or 0.0
            lvl = float(level_from(util, ADOPTION_BOUNDS))
            window = (
                f" in the last {reading.activity_window_days} days"
                if reading.activity_window_days
                else ""
            )
            basis = f"{reading.active_users or 0} of {seats} seats active{window}, {fmt_pct(util)}"
        else:  # depth
            found = discover_use_cases(licensed_modules, reading.feature_users)
            share = found.seen / found.supported if found.supported else 0.0
            lvl = float(level_from(share, DEPTH_BOUNDS))
            basis = f"{found.seen} of {found.supported} use cases seen in telemetry"
        scores.append(DimensionScore(dimension=dim, label=spec.label, level=lvl, basis=basis))
    scored = [s.level for s in scores if s.level is not None]
    overall = round_half_up(sum(scored) / len(scored), 1) if scored else None
    stage = STAGES[int(round_half_up(overall, 0))] if overall is not None else None
    return MaturityResult(
        overall=overall, stage=stage, dimensions=scores, answers_scored=scored_answers
    )


# ------------------------------------------------------------ use-case discovery


class UseCase(BaseModel):
    use_case_id: str
    label: str
    event_types: list[str] = Field(min_length=1)
    min_users: int = Field(default=1, ge=1)


USE_CASES_FILE = Path(__file__).with_name("use_cases.json")


def load_use_cases(path: Path = USE_CASES_FILE) -> dict[str, list[UseCase]]:
    raw = json.loads(path.read_text())
    return {
        module: [UseCase.model_validate(u) for u in items]
        for module, items in raw.items()
        if not module.startswith("_")
    }


USE_CASES: dict[str, list[UseCase]] = load_use_cases()


class UseCaseLine(BaseModel):
    module: str
    use_case_id: str
    label: str
    seen: bool
    users: int  # the fewest distinct users among its event types


class UseCaseDiscovery(BaseModel):
    lines: list[UseCaseLine]

    @property
    def supported(self) -> int:
        return len(self.lines)

    @property
    def seen(self) -> int:
        return sum(1 for u in self.lines if u.seen)


def discover_use_cases(
    licensed: list[str],
    feature_users: dict[str, int],
    catalogue: dict[str, list[UseCase]] | None = None,
) -> UseCaseDiscovery:
    """The use cases the licensed modules support (the catalogue) and whether telemetry
    shows each: every event type of the use case used by at least its ``min_users``."""
    cat = USE_CASES if catalogue is None else catalogue
    lines = []
    for module in licensed:
        for uc in cat.get(module, []):
            users = min(feature_users.get(e, 0) for e in uc.event_types)
            lines.append(
                UseCaseLine(
                    module=module,
                    use_case_id=uc.use_case_id,
                    label=uc.label,
                    seen=users >= uc.min_users,
                    users=users,
                )
            )
    return UseCaseDiscovery(lines=lines)


# -------------------------------------------------------------- stakeholder map

Role = Literal["executive_sponsor", "champion", "economic_buyer", "admin", "user"]
REQUIRED_ROLES: tuple[Role, ...] = ("executive_sponsor", "champion", "admin")
ROLE_LABELS: dict[str, str] = {
    "executive_sponsor": "executive sponsor",
    "champion": "champion",
    "economic_buyer": "economic buyer",
    "admin": "admin",
    "user": "user",
}
_ROLE_SYNONYMS: dict[str, Role] = {
    "executive_sponsor": "executive_sponsor",
    "exec_sponsor": "executive_sponsor",
    "sponsor": "executive_sponsor",
    "executive": "executive_sponsor",
    "champion": "champion",
    "economic_buyer": "economic_buyer",
    "buyer": "economic_buyer",
    "admin": "admin",
    "administrator": "admin",
}
MIN_THREADS = 2  # fewer named people than this: single-threaded


def canonical_role(role: str) -> Role:
    key = "_".join(role.lower().replace("-", " ").split())
    return _ROLE_SYNONYMS.get(key, "user")


class StakeholderGap(BaseModel):
    gap: Literal["no_executive_sponsor", "no_champion", "no_admin", "single_threaded"]
    text: str
    fix: str


class StakeholderMap(BaseModel):
    named: int
    covered: list[str]  # role labels with at least one person
    missing: list[str]  # required role labels with nobody
    single_threaded: bool
    people: list[str]  # "Name (title, role labels)"
    by_role: dict[str, list[str]] = Field(default_factory=dict)  # role label -> names
    gaps: list[StakeholderGap]


def stakeholder_map(handoff: Handoff) -> StakeholderMap:
    """Roles covered and missing among the people Sales named, and the gaps to close."""
    rep = handoff.rep_owner or "the account rep"
    by_role: dict[str, list[str]] = {}
    people = []
    for p in handoff.stakeholders:
        roles = [canonical_role(p.role)]
        if p.is_champion and "champion" not in roles:
            roles.append("champion")
        for r in roles:
            by_role.setdefault(r, []).append(p.name)
        labels = ", ".join(ROLE_LABELS[r] for r in roles)
        people.append(f"{p.name} ({p.title}, {labels})" if p.title else f"{p.name} ({labels})")
    named = len({p.name for p in handoff.stakeholders})
    covered = [ROLE_LABELS[r] for r in ROLE_LABELS if r in by_role]
    missing = [ROLE_LABELS[r] for r in REQUIRED_ROLES if r not in by_role]
    fixes = {
        "executive_sponsor": f"Ask {rep} to introduce the executive who signed off the purchase before the kickoff",
        "champion": "Name a champion in the first rollout team at the kickoff",
        "admin": "Ask who will administer the workspace and invite them to the kickoff",
    }
    gaps = [
        StakeholderGap(gap=f"no_{r}", text=f"No {ROLE_LABELS[r]} named", fix=fixes[r])  # type: ignore[arg-type]
        for r in REQUIRED_ROLES
        if r not in by_role
    ]
    single = named < MIN_THREADS
    if single:
        gaps.append(
            StakeholderGap(
                gap="single_threaded",
                text=f"Single-threaded: {named} named contact{'s' if named != 1 else ''}",
                fix="Add at least one more contact (a team lead or admin) so the account does not hang on one person",
            )
        )
    return StakeholderMap(
        named=named,
        covered=covered,
        missing=missing,
        single_threaded=single,
        people=people,
        by_role={ROLE_LABELS[r]: names for r, names in by_role.items()},
        gaps=gaps,
    )


# What each side commits to at the kickoff, by tier: the check-in cadence is the vendor's.
MUTUAL_EXPECTATIONS: dict[str, dict[str, list[str]]] = {
    "tier-1": {
        "we": ["A weekly check-in until first value, then every two weeks", "A QBR each quarter with the executive sponsor", "Enablement sessions for every rollout team"],
        "you": ["An executive sponsor who attends each QBR", "A champion and an admin named at the kickoff", "The outcome metric shared at the start and each quarter"],
    },
    "tier-2": {
        "we": ["A check-in every two weeks until first value, then monthly", "A QBR each quarter", "Enablement sessions for the first rollout teams"],
        "you": ["A champion and an admin named at the kickoff", "The sponsor at the kickoff and the QBRs", "The outcome metric shared at the start"],
    },
    "tier-3": {
        "we": ["A monthly check-in until first value", "A QBR each quarter", "Self-serve training and pooled onboarding sessions"],
        "you": ["An admin who runs the rollout day to day", "A champion named at the kickoff", "The outcome metric shared at the start"],
    },
}  # fmt: skip


# ------------------------------------------------------------ success criteria

Metric = Literal["weekly_active_users", "active_users", "seat_utilization", "feature_users"]
SEAT_UTILIZATION_TARGET = 0.6  # below this the Lean rules call seats waste
FEATURE_SHARE_TARGET = 0.1  # of seats using a licensed module's key feature
WAU_BY_DAY = 60
DEFAULT_BY_DAY = 90
MAX_CRITERIA = 20


class SuccessCriterion(BaseModel):
    """A measurable target of the CS plan, evaluated against telemetry on every scan.

    ``by_day`` counts days from the handoff (day 0). ``target`` is a count of
    users, or a share (0-1) for seat utilization. ``feature``: the event type
    (e.g. ``reports.export``) for ``feature_users``.
    """

    model_config = ConfigDict(extra="forbid")

    metric: Metric
    target: Finite = Field(gt=0, le=PG_INT_MAX)
    by_day: int = Field(ge=1, le=1095)
    feature: RecordId | None = None

    @model_validator(mode="after")
    def _shape(self) -> SuccessCriterion:
        if (self.metric == "feature_users") != (self.feature is not None):
            raise ValueError("feature is required for feature_users, and only for it")
        if self.metric == "seat_utilization" and self.target > 1:
            raise ValueError("a seat_utilization target is a share between 0 and 1 (0.6 is 60%)")
        return self

    @property
    def label(self) -> str:
        if self.metric == "seat_utilization":
            return f"{fmt_pct(self.target)} of seats active by day {self.by_day}"
        n = fmt_num(self.target)
        if self.metric == "feature_users":
            return f"{self.feature} used by {n} users by day {self.by_day}"
        what = "weekly active users" if self.metric == "weekly_active_users" else "active users"
        return f"{n} {what} by day {self.by_day}"


def propose_criteria(handoff: Handoff) -> list[SuccessCriterion]:
    """The CS plan draft's criteria: weekly active users at the first-value share of the
    seats by day 60, the seat utilization target by day 90, and each licensed module's
    first use case used by a tenth of the seats (at least its own minimum) by day 90."""
    seats = handoff.contract.seats_purchased
    out = [
        SuccessCriterion(
            metric="weekly_active_users",
            target=max(1, math.ceil(seats * FIRST_VALUE_UTILIZATION)),
            by_day=WAU_BY_DAY,
        ),
        SuccessCriterion(
            metric="seat_utilization", target=SEAT_UTILIZATION_TARGET, by_day=DEFAULT_BY_DAY
        ),
    ]
    for module in handoff.contract.licensed_modules:
        if module == "core" or not USE_CASES.get(module):
            continue
        uc = USE_CASES[module][0]
        out.append(
            SuccessCriterion(
                metric="feature_users",
                feature=uc.event_types[-1],
                target=max(uc.min_users, math.ceil(seats * FEATURE_SHARE_TARGET)),
                by_day=DEFAULT_BY_DAY,
            )
        )
    return out[:6]


Status = Literal["met", "on track", "behind"]


class CriterionStatus(BaseModel):
    label: str
    metric: Metric
    feature: str | None = None
    status: Status
    value: float  # measured at as_of
    target: float
    expected_now: float  # where a straight line from 0 at day 0 to the target is today
    due_on: date
    days_left: int  # negative once past due
    as_of: date

    def _show(self, value: float) -> str:
        return fmt_pct(value) if self.metric == "seat_utilization" else fmt_num(value)

    @property
    def cells(self) -> list[str]:
        """One table row: criterion, status, now, target, due (the QBR's CS plan table)."""
        return [
            self.label,
            self.status,
            self._show(self.value),
            self._show(self.target),
            f"{self.due_on}" + ("" if self.days_left >= 0 else " (past)"),
        ]

    @property
    def line(self) -> str:
        """'40 weekly active users by day 60: on track (22 now, 18.7 expected by today; due 2027-01-30)'."""
        show = self._show
        when = f"due {self.due_on}" if self.days_left >= 0 else f"was due {self.due_on}"
        exp = (
            f", {show(self.expected_now)} expected by today"
            if self.status != "met" and self.days_left > 0
            else ""
        )
        return f"{self.label}: {self.status} ({show(self.value)} now{exp}; {when})"


def metric_value(c: SuccessCriterion, reading: TelemetryReading) -> float:
    """The measured value; no usage at all reads as zero users."""
    if c.metric == "weekly_active_users":
        return float(reading.weekly_active_users or 0)
    if c.metric == "active_users":
        return float(reading.active_users or 0)
    if c.metric == "seat_utilization":
        return float(reading.seat_utilization or 0.0)
    return float(reading.feature_users.get(c.feature or "", 0))


def evaluate_criteria(
    criteria: list[SuccessCriterion], reading: TelemetryReading, start: date, as_of: date
) -> list[CriterionStatus]:
    """Each criterion met (value at or above target), on track (not yet, but at or above the
    straight line from 0 on day 0 to the target on its day), or behind (below that line, or
    past its day without meeting it)."""
    out = []
    elapsed = (as_of - start).days
    for c in criteria:
        value = metric_value(c, reading)
        due = date.fromordinal(start.toordinal() + c.by_day)
        expected = c.target * min(max(elapsed, 0), c.by_day) / c.by_day
        if value >= c.target:
            status: Status = "met"
        elif elapsed >= c.by_day or value < expected:
            status = "behind"
        else:
            status = "on track"
        out.append(
            CriterionStatus(
                label=c.label,
                metric=c.metric,
                feature=c.feature,
                status=status,
                value=round_half_up(value, 4),
                target=c.target,
                expected_now=round_half_up(expected, 4 if c.metric == "seat_utilization" else 1),
                due_on=due,
                days_left=(due - as_of).days,
                as_of=as_of,
            )
        )
    return out


# ---------------------------------------------------------------- durable state


class OnboardingState(BaseModel):
    """What phases 1-3 remember across continue-as-new (part of ``AccountState``)."""

    handed_off_on: date | None = None  # day 0 of the success criteria
    delivered: list[str] = Field(default_factory=list)  # Deliverable names drafted
    questions: list[str] = Field(default_factory=list)  # question ids the questionnaire asked
    answers: list[Answer] = Field(default_factory=list)
    answered_by: str | None = None
    answered_on: date | None = None
    maturity: MaturityResult | None = None
    proposed_criteria: list[SuccessCriterion] = Field(default_factory=list)
    criteria: list[SuccessCriterion] = Field(default_factory=list)  # approved: the targets
    criteria_status: list[CriterionStatus] = Field(default_factory=list)


def check_answers(ob: OnboardingState, phase: Phase, answers: list[Answer]) -> None:
    """Why answers cannot be recorded (ValueError), or nothing when they can."""
    if phase in (Phase.CHURN_HANDLING, Phase.CHURNED):
        raise ValueError(f"the account is in {phase.label}")
    if not ob.questions:
        raise ValueError("no alignment questionnaire was sent to this account")
    if ob.answers:
        raise ValueError(f"the questionnaire was already answered on {ob.answered_on}")
    unknown = sorted({a.question_id for a in answers} - set(ob.questions))
    if unknown:
        raise ValueError(f"unknown question ids {unknown}; asked: {', '.join(ob.questions)}")
    ids = [a.question_id for a in answers]
    if len(ids) != len(set(ids)):
        raise ValueError("a question is answered twice")
