"""AccountFacts: the per-account aggregates the health engine scores.

This model is the contract between the set-based SQL in
``activities/telemetry.py`` (which computes it for one account or a whole
portfolio in a few queries) and the pure scoring in ``domain/health.py``,
``domain/churn.py``, ``domain/lean.py`` and ``domain/expansion.py``.

Rules every producer must keep:
- Only rows with a timestamp at or before ``as_of`` count (no look-ahead).
- Window lengths come from ``HealthConfig.windows`` and are recorded in
  ``windows`` so a reader knows what "recent" meant.
- A source with no rows at all gives ``None`` (not 0): the scoring leaves
  that signal out and renormalizes. 0 means "there was data and it was zero".
- Rows with impossible values are not counted; each one is listed in
  ``data_issues`` instead.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class ContractFacts(BaseModel):
    start_date: date
    end_date: date
    arr: float
    seats_purchased: int
    price_per_seat: float
    licensed_modules: list[str]
    # The day the customer gave notice (cancellation / non-renewal) on this term; set only
    # when the notice was known at as_of (notice_on <= as_of's date).
    notice_on: date | None = None


class DataIssue(BaseModel):
    """A telemetry row left out of scoring, named so the ETL owner can fix it."""

    table: str
    row: str  # the row's key, e.g. ticket_id, or "user_id@occurred_at" for usage
    problem: str


class Windows(BaseModel):
    """Window lengths in days used to compute the facts."""

    activity_days: int = 30  # active users, logins, usage quantity; and the window before it
    adoption_days: int = 90  # feature adoption and module use
    ticket_days: int = 30  # recent tickets, against a baseline of the prior baseline_days
    ticket_baseline_days: int = 180
    escalation_days: int = 180
    nps_days: int = 365
    stakeholder_days: int = 90  # a stakeholder counts as engaged if seen within this
    champion_left_days: int = 180  # a champion who left within this is a live risk
    weeks_series: int = 12  # weekly active users series for Mura


class AccountFacts(BaseModel):
    account_id: str
    as_of: datetime
    name: str | None = None
    tier: str | None = None
    csm_owner: str | None = None
    windows: Windows = Field(default_factory=Windows)

    contract: ContractFacts | None = None

    # --- usage (usage_events, product_users) -------------------------------
    # None when the account has no usage event at all up to as_of.
    active_users: int | None = None  # distinct users, last activity_days
    active_users_prev: int | None = None  # distinct users, the activity_days before that
    usage_quantity: float | None = None  # sum(quantity), last activity_days
    usage_quantity_prev: float | None = None
    logins: int | None = None  # login events (config events.login), last activity_days
    login_days: int | None = None  # distinct days with a login, last activity_days
    weekly_active_users: list[int] | None = (
        None  # oldest..newest, weeks_series weeks ending at as_of
    )
    max_gap_days: int | None = None  # longest run of days without any event, last adoption_days
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None
    # distinct users per event_type (feature), last adoption_days
    feature_users: dict[str, int] | None = None
    # distinct users with any event, last adoption_days: the denominator of feature
    # adoption rates (same window as feature_users). None: health falls back to
    # max(feature_users.values()).
    adoption_users: int | None = None
    # sum(quantity) per module (event_type prefix), last adoption_days, licensed or not
    module_usage: dict[str, float] | None = None
    # '<module>.limit_hit' events per module, last activity_days
    limit_hits: dict[str, int] | None = None
    provisioned_users: int | None = None  # product_users not deactivated as of as_of

    # --- support (support_tickets) -----------------------------------------
    tickets_recent: int | None = None  # opened in the last ticket_days
    tickets_baseline: float | None = (
        None  # mean per ticket_days over the prior ticket_baseline_days
    )
    ticket_sentiment_recent: float | None = None  # mean sentiment (-1..1), last ticket_days
    urgent_open: int | None = None  # high/urgent tickets open at as_of
    escalations: int | None = None  # escalated tickets, last escalation_days
    any_tickets_ever: bool = False

    # --- relationship (interactions, stakeholders, nps) ---------------------
    last_meaningful_interaction_at: datetime | None = None
    stakeholders_active: int | None = None  # joined and not left as of as_of
    # active and engaged (stakeholder_engagements) within the stakeholder_days before as_of
    stakeholders_engaged: int | None = None
    champion_active: bool | None = None
    champion_left_on: date | None = None  # most recent champion departure within champion_left_days
    exec_sponsor_active: bool | None = None
    nps_latest: int | None = None
    nps_latest_at: datetime | None = None
    nps_mean: float | None = None  # mean score, last nps_days
    nps_responses: int | None = None

    # --- money (invoices) --------------------------------------------------
    invoices_open_overdue: int | None = None  # unpaid and past due at as_of
    overdue_amount: float | None = None
    max_days_overdue: int | None = None
    invoices_total: int | None = None  # issued up to as_of

    # --- technical health (tam_health) -------------------------------------
    tam_score: int | None = None
    tam_rag: str | None = None
    tam_measured_at: datetime | None = None
    tam_escalations: int | None = None  # TAM escalations, last escalation_days

    data_issues: list[DataIssue] = Field(default_factory=list)
