"""Value Activation: the onboarding plan, from the handoff to first value (pure, no I/O, no clock).

Drafted once, after the CS plan is approved (``workflows/activation.py``). The
rules here decide its whole content from typed facts; Claude (or the template)
only writes the cover:

- **milestones**, each with its due date counted from the handoff (day 0):
  ``onboarding_complete`` at ``onboarding_share`` of the tier's time-to-first-
  value target, ``first_value`` at the target, and every approved success
  criterion on its own day, each reached / open / overdue (a criterion: met /
  on track / behind, as evaluated on the scan);
- a **training plan**, one line per licensed module: addressed to the people
  who used the module in the adoption window (training in depth), else to
  every product user (nobody uses it yet), with their roles, in the tier's
  training format, due by the onboarding milestone;
- **workflow embedding** steps: each use case of the licensed modules
  (``domain/use_cases.json``) telemetry does not show yet, with the team to
  embed it with (the module's users, else every product user), due by the
  first-value target.

The time-to-first-value target by tier is configured in one place:
``OnboardingPlanConfig`` (``onboarding_plan`` in ``VIM_ENGAGEMENT_CONFIG``).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.delivery import DeliverySection, DeliveryTable
from domain.draft_facts import common
from domain.handoff import Handoff
from domain.health import fmt_pct, plural
from domain.lifecycle import FIRST_VALUE_UTILIZATION, ONBOARDING_ACTIVE_USERS
from domain.narrative import OnboardingPlanFacts
from domain.onboarding import USE_CASES, CriterionStatus, UseCase, discover_use_cases


class OnboardingPlanConfig(BaseModel):
    """Time-to-first-value targets: whole days from the handoff to ``first_value``, by tier."""

    model_config = ConfigDict(extra="forbid")

    ttfv_target_days: dict[str, int] = Field(
        default_factory=lambda: {"tier-1": 90, "tier-2": 60, "tier-3": 30}
    )
    default_ttfv_target_days: int = Field(default=60, ge=1, le=730)
    # onboarding_complete is due at this share of the first-value target (rounded up).
    onboarding_share: float = Field(default=0.5, gt=0, le=1)

    def target_days(self, tier: str | None) -> int:
        return self.ttfv_target_days.get(tier or "", self.default_ttfv_target_days)


# How each tier is trained (the vendor's side of the mutual expectations).
TRAINING_FORMATS: dict[str, str] = {
    "tier-1": "live session per team, with a recording",
    "tier-2": "live session, with a recording",
    "tier-3": "self-serve course and a pooled onboarding session",
}
DEFAULT_TRAINING_FORMAT = "live session, with a recording"
# A plan drafted after a due date has passed gives the step this long from the draft instead.
TRAINING_MIN_LEAD_DAYS = 14
EMBEDDING_MIN_LEAD_DAYS = 30
SAMPLE = 8  # people listed by name per line


# ------------------------------------------------------------------ inputs


class AudienceRequest(BaseModel):
    account_id: str
    as_of: datetime


class People(BaseModel):
    """A group of users: how many, a few of them by email (or user id), and their roles."""

    users: int = 0
    sample: list[str] = Field(default_factory=list)
    roles: dict[str, int] = Field(default_factory=dict)  # role -> users

    def describe(self) -> str:
        """'5 users (analyst 3, admin 2): a@x.example, b@x.example and 3 more'."""
        roles = ", ".join(f"{r} {n}" for r, n in self.roles.items())
        more = self.users - len(self.sample)
        who = ", ".join(self.sample) + (f" and {more} more" if more > 0 and self.sample else "")
        return (
            plural(self.users, "user")
            + (f" ({roles})" if roles else "")
            + (f": {who}" if who else "")
        )


class PlanAudience(BaseModel):
    """Result of ``onboarding_audience``: who works in which module (the adoption window),
    every product user of the account, and the worker's plan configuration."""

    window_days: int
    modules: dict[str, People] = Field(default_factory=dict)  # module -> its users in the window
    everyone: People = Field(default_factory=People)  # product users, else the window's users
    config: OnboardingPlanConfig = Field(default_factory=OnboardingPlanConfig)


# ------------------------------------------------------------------ the plan

MilestoneStatus = Literal["reached", "open", "overdue", "met", "on track", "behind"]


class PlanMilestone(BaseModel):
    milestone: str  # onboarding_complete | first_value | a criterion's label
    label: str
    by_day: int
    due_on: date
    status: MilestoneStatus


class TrainingLine(BaseModel):
    module: str
    uses_module: bool  # False: nobody used the module in the window, so everyone is invited
    audience: People
    format: str
    due_on: date
    focus: list[str]  # the module's use cases, those not seen in telemetry first

    @property
    def who(self) -> str:
        return (
            f"the {self.module} users"
            if self.uses_module
            else "every product user (no one uses it yet)"
        )


class EmbedStep(BaseModel):
    module: str
    use_case_id: str
    label: str
    event_types: list[str]
    users_now: int  # the fewest distinct users among its event types
    min_users: int
    team: str  # "the reports users" | "every product user"
    with_people: People
    due_on: date


class OnboardingPlan(BaseModel):
    handed_off_on: date
    as_of: date
    tier: str | None = None
    ttfv_target_days: int
    onboarding_target_on: date
    first_value_target_on: date
    first_value_on: date | None = None
    milestones: list[PlanMilestone]
    training: list[TrainingLine]
    embedding: list[EmbedStep]
    use_cases_supported: int
    use_cases_seen: int

    @property
    def first_value_days(self) -> int | None:
        if self.first_value_on is None:
            return None
        return max((self.first_value_on - self.handed_off_on).days, 0)


def _day(start: date, n: int) -> date:
    return start + timedelta(days=n)


def _status(reached: bool, due: date, as_of: date) -> MilestoneStatus:
    if reached:
        return "reached"
    return "overdue" if as_of > due else "open"


def plan_onboarding(
    *,
    tier: str | None,
    licensed_modules: list[str],
    handed_off_on: date,
    as_of: date,
    milestones_reached: set[str],
    first_value_on: date | None,
    criteria: list[CriterionStatus],
    feature_users: dict[str, int],
    audience: PlanAudience,
    catalogue: dict[str, list[UseCase]] | None = None,
) -> OnboardingPlan:
    """The dated plan from the handoff to first value (see the module docstring for the rules)."""
    cfg = audience.config
    cat = USE_CASES if catalogue is None else catalogue
    target = cfg.target_days(tier)
    onboarding_day = max(1, math.ceil(target * cfg.onboarding_share))
    onboarding_on, first_value_due = (
        _day(handed_off_on, onboarding_day),
        _day(handed_off_on, target),
    )
    milestones = [
        PlanMilestone(
            milestone="onboarding_complete",
            label=f"Onboarding complete ({ONBOARDING_ACTIVE_USERS} or more active users)",
            by_day=onboarding_day,
            due_on=onboarding_on,
            status=_status("onboarding_complete" in milestones_reached, onboarding_on, as_of),
        ),
        PlanMilestone(
            milestone="first_value",
            label=f"First value (seat utilization of {fmt_pct(FIRST_VALUE_UTILIZATION)} or more)",
            by_day=target,
            due_on=first_value_due,
            status=_status("first_value" in milestones_reached, first_value_due, as_of),
        ),
    ]
    milestones += [
        PlanMilestone(
            milestone=c.label,
            label=f"Success criterion: {c.label}",
            by_day=(c.due_on - handed_off_on).days,
            due_on=c.due_on,
            status=c.status,
        )
        for c in criteria
    ]
    # By date; on one day the lifecycle's own milestones before the criteria.
    own = ("onboarding_complete", "first_value")
    milestones.sort(key=lambda m: (m.due_on, m.milestone not in own))

    found = discover_use_cases(licensed_modules, feature_users, cat)
    training_due = max(onboarding_on, as_of + timedelta(days=TRAINING_MIN_LEAD_DAYS))
    embed_due = max(first_value_due, as_of + timedelta(days=EMBEDDING_MIN_LEAD_DAYS))
    fmt = TRAINING_FORMATS.get(tier or "", DEFAULT_TRAINING_FORMAT)
    training: list[TrainingLine] = []
    embedding: list[EmbedStep] = []
    for module in licensed_modules:
        users = audience.modules.get(module)
        uses = users is not None and users.users > 0
        people = users if uses and users is not None else audience.everyone
        lines = [u for u in found.lines if u.module == module]
        training.append(
            TrainingLine(
                module=module,
                uses_module=uses,
                audience=people,
                format=fmt,
                due_on=training_due,
                focus=[u.label for u in sorted(lines, key=lambda u: u.seen)],
            )
        )
        specs = {u.use_case_id: u for u in cat.get(module, [])}
        for u in lines:
            if u.seen:
                continue
            spec = specs[u.use_case_id]
            embedding.append(
                EmbedStep(
                    module=module,
                    use_case_id=u.use_case_id,
                    label=u.label,
                    event_types=list(spec.event_types),
                    users_now=u.users,
                    min_users=spec.min_users,
                    team=f"the {module} users" if uses else "every product user",
                    with_people=people,
                    due_on=embed_due,
                )
            )
    return OnboardingPlan(
        handed_off_on=handed_off_on,
        as_of=as_of,
        tier=tier,
        ttfv_target_days=target,
        onboarding_target_on=onboarding_on,
        first_value_target_on=first_value_due,
        first_value_on=first_value_on,
        milestones=milestones,
        training=training,
        embedding=embedding,
        use_cases_supported=found.supported,
        use_cases_seen=found.seen,
    )


def module_of(event_type: str) -> str | None:
    """'reports.export' -> 'reports'; 'login' belongs to no module."""
    head, dot, _ = event_type.partition(".")
    return head if dot else None


def group_audience(
    events_by_user: dict[str, set[str]],
    people: dict[str, tuple[str, str]],
    *,
    window_days: int,
    config: OnboardingPlanConfig,
) -> PlanAudience:
    """Who works in which module, from the window's (user, event type) pairs; ``people``:
    the account's product users (user id -> (email or id, role)). Everyone is the product
    users when the account has any on file, else the window's users."""

    def group(user_ids: list[str]) -> People:
        roles: dict[str, int] = {}
        for u in user_ids:
            role = people.get(u, (u, "user"))[1]
            roles[role] = roles.get(role, 0) + 1
        return People(
            users=len(user_ids),
            sample=[people.get(u, (u, ""))[0] for u in user_ids[:SAMPLE]],
            roles=dict(sorted(roles.items())),
        )

    by_module: dict[str, list[str]] = {}
    for user in sorted(events_by_user):
        for module in sorted({m for e in events_by_user[user] if (m := module_of(e))}):
            by_module.setdefault(module, []).append(user)
    everyone = sorted(people) if people else sorted(events_by_user)
    return PlanAudience(
        window_days=window_days,
        modules={m: group(us) for m, us in sorted(by_module.items())},
        everyone=group(everyone),
        config=config,
    )


# ------------------------------------------------------------------ the draft


def training_line(t: TrainingLine) -> str:
    return f"Train {t.who} on {t.module}: {t.audience.describe()}; {t.format}, by {t.due_on}"


def embed_line(e: EmbedStep) -> str:
    return (
        f"Embed '{e.label}' ({e.module}) with {e.team}: {plural(e.users_now, 'user')} so far, "
        f"{e.min_users} needed; by {e.due_on}"
    )


def plan_draft(
    handoff: Handoff, as_of: datetime, plan: OnboardingPlan
) -> tuple[OnboardingPlanFacts, list[DeliverySection]]:
    """The narrative's facts and the plan's tables (milestones, training, embedding)."""
    in_use = sum(1 for t in plan.training if t.uses_module)
    actions = [
        f"Book the {t.module} training ({t.format}) with {plural(t.audience.users, 'user')} "
        f"by {t.due_on}"
        for t in plan.training
        if t.audience.users
    ][:4]
    if plan.embedding:
        actions.append(
            f"Agree an owner for each of the {plural(len(plan.embedding), 'use case')} to embed "
            f"by {plan.embedding[0].due_on}"
        )
    facts = OnboardingPlanFacts(
        **common(handoff, as_of),
        tier=plan.tier,
        handed_off_on=plan.handed_off_on,
        ttfv_target_days=plan.ttfv_target_days,
        onboarding_target_on=plan.onboarding_target_on,
        first_value_target_on=plan.first_value_target_on,
        first_value_on=plan.first_value_on,
        first_value_days=plan.first_value_days,
        milestones_planned=len(plan.milestones),
        criteria_count=sum(1 for m in plan.milestones if m.label.startswith("Success criterion")),
        modules_to_train=len(plan.training),
        modules_in_use=in_use,
        use_cases_supported=plan.use_cases_supported,
        use_cases_seen=plan.use_cases_seen,
        use_cases_to_embed=len(plan.embedding),
        evidence=[
            *(training_line(t) for t in plan.training),
            *(embed_line(e) for e in plan.embedding),
        ],
        recommended_actions=actions,
    )
    embedding = DeliverySection(
        heading="Workflow embedding",
        table=DeliveryTable(
            columns=["Module", "Use case", "Event types", "Users now / needed", "Embed with", "By"],
            rows=[
                [
                    e.module,
                    e.label,
                    ", ".join(e.event_types),
                    f"{e.users_now} / {e.min_users}",
                    f"{e.team}: {e.with_people.describe()}",
                    str(e.due_on),
                ]
                for e in plan.embedding
            ],
        )
        if plan.embedding
        else None,
        paragraphs=[]
        if plan.embedding
        else ["Every use case of the licensed modules already shows in telemetry."],
    )
    sections = [
        DeliverySection(
            heading="Milestones from the handoff",
            table=DeliveryTable(
                columns=["Milestone", "Day", "Due", "Status"],
                rows=[[m.label, str(m.by_day), str(m.due_on), m.status] for m in plan.milestones],
            ),
            paragraphs=[
                f"Day 0 is the handoff, {plan.handed_off_on}; the {plan.tier or 'default'} "
                f"time-to-first-value target is {plural(plan.ttfv_target_days, 'day')}."
            ],
        ),
        DeliverySection(
            heading="Training plan",
            table=DeliveryTable(
                columns=["Module", "For", "Who", "Format", "Focus", "By"],
                rows=[
                    [
                        t.module,
                        t.who,
                        t.audience.describe(),
                        t.format,
                        "; ".join(t.focus) or "the module's basics",
                        str(t.due_on),
                    ]
                    for t in plan.training
                ],
            ),
        ),
        embedding,
    ]
    return facts, sections


# ------------------------------------------------------------------ durable state


class ActivationState(BaseModel):
    """What the onboarding plan remembers across continue-as-new (part of ``AccountState``)."""

    plan_requested: bool = False  # the CS plan was approved: the plan is due (once)
    plan_attempts: int = 0  # reads of the audience that failed
    plan_drafted_on: date | None = None
    ttfv_target_days: int | None = None
    first_value_target_on: date | None = None
