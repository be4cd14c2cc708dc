"""Relationship Capital: when an advocacy ask is due, and why not (pure rules, no I/O, no clock).

An advocacy ask (a reference, a case study, a review) is drafted for the CSM
only when the account is healthy (a healthy band), a promoter (latest NPS at
or above ``min_nps``), past its ``first_value`` milestone, and not in a risk
window (no open churn risk or notice, not within ``renewal_quiet_days`` of
renewal, no open escalated ticket), and at most once per ``interval_days``.
``advocacy_eligibility`` returns the decision with one plain reason for every
condition that failed, so a CSM (and a test) can see why an account was not
asked. The configuration (``EngagementConfig``) also holds the product
feedback themes (``domain/feedback.py``) and the product owner's address;
the worker reads it from ``VIM_ENGAGEMENT_CONFIG`` (a JSON file over these
defaults, see ``load_engagement_config``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.actions import ActionConfig
from domain.activation import FeatureGap
from domain.format import validation_errors
from domain.health import plural
from domain.onboarding_plan import OnboardingPlanConfig
from domain.touchpoints import Baseline, ScheduledMeeting, TouchpointConfig

AskKind = Literal["reference", "case_study", "review"]
Band = Literal["GREEN", "AMBER", "RED"]
ChurnLevel = Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
ASK_LABELS: dict[str, str] = {
    "reference": "reference call",
    "case_study": "case study",
    "review": "public review",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AdvocacyConfig(_Strict):
    min_nps: int = Field(default=9, ge=0, le=10, description="promoters score at least this")
    healthy_bands: list[Band] = Field(default_factory=lambda: list[Band](["GREEN"]))
    # Churn levels that count as an open churn risk.
    risk_levels: list[ChurnLevel] = Field(
        default_factory=lambda: list[ChurnLevel](["HIGH", "CRITICAL"])
    )
    renewal_quiet_days: int = Field(default=60, ge=0, le=730)
    interval_days: int = Field(default=365, ge=1, le=3650)
    # The asks in the order they are made: the first ask is kinds[0], the next kinds[1], ...
    kinds: list[AskKind] = Field(
        default_factory=lambda: list[AskKind](["reference", "case_study", "review"]), min_length=1
    )


class FeedbackTheme(_Strict):
    name: str = Field(min_length=1, max_length=80)
    keywords: list[str] = Field(min_length=1, max_length=100)


DEFAULT_THEMES: dict[str, list[str]] = {
    "Performance": ["slow", "timeout", "latency", "performance", "lag"],
    "Reporting & exports": ["report", "export", "dashboard", "csv", "chart"],
    "Integrations": ["integration", "api", "sync", "webhook", "connector", "salesforce"],
    "Access & login": ["login", "sso", "password", "permission", "access", "seat"],
    "Billing": ["invoice", "billing", "price", "pricing", "charge"],
    "Usability": ["confusing", "hard to", "ui", "usability", "navigation", "training"],
    "Reliability": ["error", "bug", "crash", "outage", "down", "broken", "fail"],
}


def _default_themes() -> list[FeedbackTheme]:
    return [FeedbackTheme(name=k, keywords=v) for k, v in DEFAULT_THEMES.items()]


class FeedbackConfig(_Strict):
    # Checked in this order: an item belongs to the first theme one of whose keywords it contains.
    themes: list[FeedbackTheme] = Field(default_factory=_default_themes, min_length=1)
    other_theme: str = "Other"
    examples_per_theme: int = Field(default=3, ge=0, le=10)


class EngagementConfig(_Strict):
    advocacy: AdvocacyConfig = Field(default_factory=AdvocacyConfig)
    touchpoints: TouchpointConfig = Field(default_factory=TouchpointConfig)
    actions: ActionConfig = Field(default_factory=ActionConfig)  # dating and chasing actions
    feedback: FeedbackConfig = Field(default_factory=FeedbackConfig)
    # Time-to-first-value targets by tier, for the onboarding plan (domain/onboarding_plan.py).
    onboarding_plan: OnboardingPlanConfig = Field(default_factory=OnboardingPlanConfig)
    # Who gets the quarterly product feedback digest; None: `--to` must name someone.
    product_owner_email: str | None = None
    product_owner_name: str | None = None


def load_engagement_config(raw: str | Mapping[str, Any] | None) -> EngagementConfig:
    """The configuration from JSON text or a mapping over the defaults; None: the defaults.

    Top-level sections are replaced field by field (``{"advocacy": {"min_nps": 10}}``
    keeps the other advocacy defaults). A bad file raises ValueError naming each field.
    """
    if raw is None:
        return EngagementConfig()
    data = json.loads(raw) if isinstance(raw, str) else dict(raw)
    if not isinstance(data, dict):
        raise ValueError("the engagement configuration must be a JSON object")
    try:
        return EngagementConfig.model_validate(data)
    except Exception as err:  # pydantic.ValidationError, named field by field
        from pydantic import ValidationError

        if isinstance(err, ValidationError):
            raise ValueError(f"engagement configuration: {validation_errors(err)}") from None
        raise


# ------------------------------------------------------------------ advocacy


class AdvocacyInputs(BaseModel):
    """What the rule decides on: the workflow's state plus two facts read from Postgres."""

    as_of: date
    band: str | None = None
    churn_level: str | None = None
    in_churn_handling: bool = False
    notice_given: bool = False
    first_value_reached: bool = False
    nps_latest: int | None = None
    nps_latest_on: date | None = None
    open_escalated_tickets: int = 0
    days_to_renewal: int | None = None
    last_ask_on: date | None = None
    asks_made: int = 0


class AdvocacyDecision(BaseModel):
    eligible: bool
    kind: AskKind | None = None  # the ask to make when eligible
    reasons: list[str] = Field(default_factory=list)  # one per failed condition


def advocacy_eligibility(inp: AdvocacyInputs, cfg: AdvocacyConfig) -> AdvocacyDecision:
    """Whether an advocacy ask is due now, and every reason it is not."""
    no: list[str] = []
    if inp.band is None or inp.band == "UNSCORED":
        no.append("health is not scored yet")
    elif inp.band not in cfg.healthy_bands:
        no.append(f"health band is {inp.band}, not {' or '.join(cfg.healthy_bands)}")
    if inp.nps_latest is None:
        no.append("no NPS response on file")
    elif inp.nps_latest < cfg.min_nps:
        no.append(f"latest NPS is {inp.nps_latest}; promoters score {cfg.min_nps} or more")
    if not inp.first_value_reached:
        no.append("first value not reached yet")
    if inp.in_churn_handling:
        no.append("the account is in churn handling")
    if inp.notice_given:
        no.append("the customer gave notice")
    if inp.churn_level in cfg.risk_levels:
        no.append(f"open churn risk ({inp.churn_level})")
    if inp.days_to_renewal is not None and inp.days_to_renewal <= cfg.renewal_quiet_days:
        no.append(
            f"renewal in {plural(inp.days_to_renewal, 'day')}, inside the "
            f"{cfg.renewal_quiet_days}-day window before renewal"
        )
    if inp.open_escalated_tickets > 0:
        no.append(f"{plural(inp.open_escalated_tickets, 'escalated ticket')} open")
    if inp.last_ask_on is not None:
        since = (inp.as_of - inp.last_ask_on).days
        if since < cfg.interval_days:
            no.append(
                f"last ask on {inp.last_ask_on} ({plural(since, 'day')} ago); "
                f"at most one every {cfg.interval_days} days"
            )
    if no:
        return AdvocacyDecision(eligible=False, reasons=no)
    return AdvocacyDecision(eligible=True, kind=cfg.kinds[inp.asks_made % len(cfg.kinds)])


def state_precheck(inp: AdvocacyInputs, cfg: AdvocacyConfig) -> AdvocacyDecision:
    """The rule on what the workflow holds alone (no NPS, no tickets): if this already says
    no, the account is not asked and nothing needs reading from Postgres."""
    assumed = inp.model_copy(update={"nps_latest": 10, "open_escalated_tickets": 0})
    return advocacy_eligibility(assumed, cfg.model_copy(update={"min_nps": 0}))


# ------------------------------------------------------- workflow state and I/O


class AdvocacyAsk(BaseModel):
    on: date
    kind: AskKind


class EngagementState(BaseModel):
    """What the account workflow remembers of its engagement plays (carried by continue-as-new)."""

    handed_off_at: datetime | None = None  # None: a workflow started before this was recorded
    first_value_at: datetime | None = None
    first_value_before_handoff: bool = False  # imported with first_value already reached
    first_value_published: bool = False
    advocacy_checked_at: datetime | None = None  # last time Postgres was read for the rule
    advocacy_asks: list[AdvocacyAsk] = Field(default_factory=list)
    advocacy_blocked: list[str] = Field(default_factory=list)  # the latest reasons for no
    advocacy_config: AdvocacyConfig | None = None  # the worker's, as last read
    campaign_checked_at: datetime | None = None
    campaigns: dict[str, date] = Field(default_factory=dict)  # feature event type -> last campaign
    pending_releases: list[dict] = Field(default_factory=list)  # feature_released payloads
    releases_seen: list[str] = Field(default_factory=list)  # feature ids already handled
    settings_run: int | None = None  # the run whose settings are below (read once per run)
    touchpoints: TouchpointConfig | None = None
    meetings: list[ScheduledMeeting] = Field(default_factory=list)
    baseline: Baseline | None = None  # at the last meeting-prep brief
    pending_followups: list[dict] = Field(default_factory=list)  # meaningful interactions
    last_touch_at: datetime | None = None  # the latest meaningful interaction
    touch_reminded_at: datetime | None = None

    @property
    def last_ask_on(self) -> date | None:
        return self.advocacy_asks[-1].on if self.advocacy_asks else None


class AdoptionTargets(BaseModel):
    """Result of ``adoption_targets``: the licensed features under benchmark, with audiences."""

    window_days: int
    active_users: int = 0
    gaps: list[FeatureGap] = Field(default_factory=list)


class EngagementSettings(BaseModel):
    """Result of ``engagement_settings``: the worker's configuration the workflows decide with."""

    advocacy: AdvocacyConfig = Field(default_factory=AdvocacyConfig)
    touchpoints: TouchpointConfig = Field(default_factory=TouchpointConfig)
    actions: ActionConfig = Field(default_factory=ActionConfig)


class AdvocacyDataRequest(BaseModel):
    account_id: str
    as_of: datetime


class AdvocacyData(BaseModel):
    """What the advocacy rule needs from Postgres, as known at ``as_of``, and the worker's config."""

    nps_latest: int | None = None
    nps_latest_on: date | None = None
    respondent: str | None = None
    open_escalated_tickets: int = 0
    config: AdvocacyConfig = Field(default_factory=AdvocacyConfig)
