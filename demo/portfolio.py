"""Deterministic synthetic demo portfolio: accounts plus 12 months of telemetry.

``generate_portfolio(seed, as_of, n_accounts)`` is pure: the same arguments give
the same rows. Its only source of variety is ``random.Random`` seeded from
``seed``; it never reads the clock. Telemetry covers the 365 days before
``as_of`` in UTC, ``[as_of - 365 days, as_of)``: no row is timestamped at or
after midnight of ``as_of``, whichever way a reader turns ``as_of`` into an
instant.

Each account follows an archetype (see ``ARCHETYPES``) that shapes all of its
tables coherently from two per-day curves: ``health`` (0..1; drives NPS, TAM
score, ticket volume and sentiment, meaningful interactions, stakeholder
engagement) and ``intensity`` (a multiplier on product usage). Two archetypes
are historical outcomes so back-tests have real answers: ``churned`` (the last
contract ended inside the window with no later row) and ``expanded`` (a later
contract row with more seats, and sometimes a module, preceded by high
utilization and limit hits).

Usage is aggregated the way an ETL would deliver it: one row per user, day and
event type, several same-day actions summed into ``quantity``.
"""

from __future__ import annotations

import gc
import itertools
import math
import operator
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from domain.handoff import Handoff, HandoffContract, HandoffStakeholder

HISTORY_DAYS = 365
DEFAULT_AS_OF = date(2026, 11, 21)  # the date the docs and tests use
REFERENCE_ACCOUNT_ID = "northwind-tier1"

# healthy is the remainder; every other archetype gets at least one account.
ARCHETYPE_SHARES: dict[str, float] = {
    "declining": 0.08,  # usage, active users, NPS fall over the last 2-3 months
    "spiky": 0.07,  # Mura: bursts of use, then silent weeks
    "overloaded": 0.06,  # Muri: ticket spike in the last 30 days, renewal near
    "renewing": 0.07,  # renewal within 60 days; about half of them at risk
    "expanding": 0.07,  # >= 90% seats used, limit hits, unlicensed module, heavy API
    "shelfware": 0.06,  # low seat utilization, licensed modules unused
    "overdue": 0.05,  # invoices unpaid past due at as_of
    "onboarding": 0.04,  # first contract started 40-150 days ago
    "churned": 0.10,  # history: contract ended 30-300 days ago, no later row
    "expanded": 0.10,  # history: later contract row with more seats/modules
}
ARCHETYPES: tuple[str, ...] = ("healthy", *ARCHETYPE_SHARES)

MODULES = ("core", "reports", "dashboards", "automation", "api", "integrations")
# feature -> (weight in a user's daily mix, min, max quantity per user-day)
FEATURES: dict[str, tuple[float, int, int]] = {
    "core.search": (6.0, 1, 12),
    "core.comment": (4.0, 1, 6),
    "core.upload": (2.0, 1, 4),
    "reports.create": (1.2, 1, 2),
    "reports.export": (2.0, 1, 5),
    "reports.schedule": (0.4, 1, 1),
    "dashboards.view": (5.0, 1, 10),
    "dashboards.share": (0.8, 1, 2),
    "automation.create": (0.4, 1, 1),
    "automation.run": (2.0, 5, 60),
    "api.call": (2.0, 20, 400),
    "integrations.configure": (0.2, 1, 1),
    "integrations.sync": (1.5, 1, 24),
}
_PERSONA_FEATURES: dict[str, frozenset[str]] = {
    "power": frozenset(FEATURES),
    "regular": frozenset(
        {
            "core.search",
            "core.comment",
            "core.upload",
            "reports.create",
            "reports.export",
            "dashboards.view",
            "dashboards.share",
            "automation.run",
            "integrations.sync",
        }
    ),
    "light": frozenset({"core.search", "dashboards.view", "reports.export"}),
}
_PERSONAS = ("power", "regular", "light")
_PERSONA_ROLE = {"power": "member", "regular": "member", "light": "viewer"}

CSMS: tuple[tuple[str, str], ...] = (
    ("Maya Patel", "maya.patel@example.com"),
    ("Jonas Weber", "jonas.weber@example.com"),
    ("Aisha Bello", "aisha.bello@example.com"),
    ("Tomas Rivera", "tomas.rivera@example.com"),
    ("Grace Kim", "grace.kim@example.com"),
    ("Liam O'Connor", "liam.oconnor@example.com"),
    ("Sofia Rossi", "sofia.rossi@example.com"),
)
REPS: tuple[tuple[str, str], ...] = (
    ("Ethan Brooks", "ethan.brooks@example.com"),
    ("Priya Nair", "priya.nair@example.com"),
    ("Marcus Lee", "marcus.lee@example.com"),
    ("Hannah Fischer", "hannah.fischer@example.com"),
    ("Diego Alvarez", "diego.alvarez@example.com"),
)

_INDUSTRY_NOUNS: dict[str, tuple[str, ...]] = {
    "Software": ("Systems", "Labs", "Software"),
    "Financial Services": ("Capital", "Financial", "Bank"),
    "Healthcare": ("Health", "Medical", "Care"),
    "Retail": ("Retail", "Goods", "Market"),
    "Manufacturing": ("Industries", "Manufacturing", "Components"),
    "Logistics": ("Logistics", "Freight", "Shipping"),
    "Education": ("Learning", "Academy", "Education"),
    "Media": ("Media", "Studios", "Publishing"),
    "Insurance": ("Insurance", "Mutual", "Assurance"),
    "Energy": ("Energy", "Power", "Utilities"),
    "Hospitality": ("Hotels", "Hospitality", "Resorts"),
    "Public Sector": ("Council", "Authority", "Agency"),
}
_NAME_HEADS = (
    "Acme", "Atlas", "Beacon", "Blue", "Bright", "Cedar", "Clear", "Cobalt", "Copper",
    "Crest", "Delta", "Ember", "Evergreen", "Falcon", "Fern", "Golden", "Granite",
    "Harbor", "Horizon", "Iron", "Juniper", "Keystone", "Lumen", "Maple", "Meridian",
    "Nimbus", "Oak", "Orion", "Pine", "Quartz", "Red", "River", "Sage", "Silver",
    "Stone", "Summit", "Tidal", "Vertex", "Willow", "Zenith",
)  # fmt: skip
_NAME_TAILS = (
    "", "", "", "field", "gate", "line", "works", "point", "bridge", "view", "wave",
    "peak", "path", "forge", "light",
)  # fmt: skip
_FIRST_NAMES = (
    "Ava", "Ben", "Chloe", "Daniel", "Elena", "Felix", "Gabriela", "Hiro", "Isla", "Jamal",
    "Kara", "Leo", "Mina", "Noah", "Olivia", "Pablo", "Quinn", "Rosa", "Samir", "Tara",
    "Umar", "Vera", "Wen", "Ximena", "Yusuf", "Zoe", "Anders", "Bianca", "Carlos", "Dana",
    "Emeka", "Freya", "Gustav", "Hana", "Ivan", "Julia", "Kenji", "Lina", "Mateo", "Nadia",
)  # fmt: skip
_LAST_NAMES = (
    "Adams", "Berg", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Park", "Quinn",
    "Reyes", "Schmidt", "Tanaka", "Usman", "Varga", "Walsh", "Xu", "Young", "Zimmer",
    "Almeida", "Brennan", "Chen", "Diaz", "Eriksen", "Fontaine", "Gupta", "Haddad",
)  # fmt: skip
_TITLES = {
    "executive_sponsor": ("VP Operations", "Chief Operating Officer", "CFO", "VP Customer Experience", "Chief Digital Officer"),
    "champion": ("Operations Manager", "Head of Analytics", "Director of Business Systems", "Program Manager"),
    "admin": ("IT Administrator", "Systems Analyst", "Platform Owner"),
    "user": ("Analyst", "Team Lead", "Finance Manager", "Regional Manager"),
}  # fmt: skip
_GOALS = (
    "Cut month-end reporting time by 30%",
    "Give every regional manager a live KPI dashboard",
    "Automate the weekly operations review",
    "Retire the legacy spreadsheets by the end of Q2",
    "Connect CRM and ERP data in one view",
    "Onboard every licensed user within 90 days",
    "Reduce time to resolve customer escalations by 25%",
    "Self-serve reporting for the finance team",
    "One source of truth for board reporting",
)

_TICKET_TOPICS: tuple[tuple[str | None, str, str], ...] = (
    ("core", "Search results missing recent items", "Items created since {when} do not show up in search for {n} of our users."),
    ("core", "SSO login loop for some users", "{n} users get sent back to the login page after SSO since {when}."),
    ("core", "Permission error when commenting", "Members without admin rights get 'forbidden' when they comment on shared items."),
    ("core", "Slow page loads for the EU team", "Pages take 8-10 seconds to load for {n} people in our EU office since {when}."),
    ("reports", "Report export times out", "Exporting the monthly revenue report to CSV times out after 60 seconds."),
    ("reports", "Scheduled report not delivered", "The weekly scheduled report did not arrive on {when}."),
    ("dashboards", "Dashboard tiles show stale data", "Dashboard tiles have not refreshed since {when}."),
    ("dashboards", "Cannot share a dashboard externally", "Sharing a dashboard with a partner fails with an error."),
    ("automation", "Automation stopped running", "The nightly automation stopped on {when} with no alert."),
    ("api", "API rate limit errors (429)", "Our integration receives HTTP 429 responses during the nightly sync."),
    ("integrations", "CRM sync duplicates records", "The CRM sync has created duplicate contacts since {when}."),
    (None, "Question about our invoice", "Can you explain the line items on our latest invoice?"),
    (None, "How do we add more users?", "We want to add {n} colleagues. What are our options?"),
)  # fmt: skip
_TONE = (
    (-0.5, "This is blocking our team and we need an update today."),
    (0.0, "Please advise on a workaround."),
    (0.5, "Not urgent, thanks for looking."),
    (2.0, "Thanks, your team has been great as always."),
)
_NPS_COMMENTS = {
    "detractor": (
        "Too many open issues and slow answers from support.",
        "Adoption stalled; the team went back to spreadsheets.",
        "We pay for more than we use.",
        "Reliability problems hurt us at month end.",
    ),
    "passive": (
        "Does the job, but reporting could be faster.",
        "Good product, onboarding new teams is still hard.",
        "Fine for core work; we have not explored the rest.",
    ),
    "promoter": (
        "Dashboards changed how we run the weekly review.",
        "Great support and the automation saves us hours.",
        "Our whole team lives in it every day.",
        "Easy to roll out to new regions.",
    ),
}
_INTERACTION_NOTES = {
    "email": ("Sent release notes and training links.", "Follow-up on open tickets.", "Shared adoption report."),
    "call": ("Check-in on adoption and open issues.", "Reviewed support backlog.", "Discussed roadmap questions."),
    "meeting": ("Working session on dashboards.", "Success plan review with the champion.", "Use-case discovery with a new team."),
    "qbr": ("Quarterly business review: health, ROI and next quarter goals.",),
    "kickoff": ("Kickoff: goals, stakeholders, rollout plan.",),
    "workshop": ("Admin and power-user training workshop.", "Reporting best-practice workshop."),
}  # fmt: skip
_TAM_NOTES = {
    "GREEN": ("Stable; no open incidents.", "Healthy integration sync and API error rates."),
    "AMBER": ("Elevated API error rate in the EU region.", "SSO misconfiguration after an IdP change.", "Sync backlog building up."),
    "RED": ("Repeated outages of the customer's integration.", "Critical incident open; exec escalation requested."),
}  # fmt: skip


# ------------------------------------------------------------------- rows
# Field names equal column names, so a row class's ``_fields`` is a COPY column list.


class AccountRow(NamedTuple):
    account_id: str
    name: str
    tier: str
    industry: str
    csm_owner: str
    csm_email: str
    rep_owner: str
    rep_email: str
    created_at: datetime


class ContractRow(NamedTuple):
    """contract_id is a bigserial: the database numbers rows on load."""

    account_id: str
    start_date: date
    end_date: date
    arr: Decimal
    seats_purchased: int
    price_per_seat: Decimal
    licensed_modules: tuple[str, ...]
    notice_on: date | None = None  # the day the customer gave notice on this term


class ProductUserRow(NamedTuple):
    account_id: str
    user_id: str
    email: str
    role: str
    created_at: datetime
    deactivated_at: datetime | None


class UsageEventRow(NamedTuple):
    account_id: str
    user_id: str
    occurred_at: datetime
    event_type: str
    quantity: int


class TicketRow(NamedTuple):
    ticket_id: str
    account_id: str
    opened_at: datetime
    closed_at: datetime | None
    priority: str
    sentiment: float | None
    escalated: bool
    subject: str
    body: str


class InvoiceRow(NamedTuple):
    invoice_id: str
    account_id: str
    issued_on: date
    due_on: date
    paid_on: date | None
    amount: Decimal


class NpsRow(NamedTuple):
    response_id: str
    account_id: str
    respondent: str
    responded_at: datetime
    score: int
    comment: str | None


class InteractionRow(NamedTuple):
    interaction_id: str
    account_id: str
    occurred_at: datetime
    kind: str
    meaningful: bool
    attendees: int
    notes: str


class StakeholderRow(NamedTuple):
    stakeholder_id: str
    account_id: str
    name: str
    email: str
    title: str
    role: str
    is_champion: bool
    joined_on: date
    left_on: date | None
    last_engaged_at: datetime | None


class StakeholderEngagementRow(NamedTuple):
    """One dated engagement: the history behind stakeholders.last_engaged_at."""

    account_id: str
    stakeholder_id: str
    engaged_at: datetime


class TamHealthRow(NamedTuple):
    account_id: str
    measured_at: datetime
    score: int
    rag: str
    escalation: bool
    note: str


class BadRow(NamedTuple):
    """A deliberately impossible telemetry row. ``row`` uses the DataIssue key
    convention: ticket_id / response_id, ``user_id@occurred_at`` for usage,
    ``measured_at`` (ISO) for tam_health."""

    table: str
    account_id: str
    row: str
    problem: str


# table name -> (row class, Portfolio attribute), in load (foreign-key) order
TABLES: dict[str, type] = {
    "accounts": AccountRow,
    "contracts": ContractRow,
    "product_users": ProductUserRow,
    # before stakeholders: their insert trigger then finds the last engagement on file
    "stakeholder_engagements": StakeholderEngagementRow,
    "stakeholders": StakeholderRow,
    "usage_events": UsageEventRow,
    "support_tickets": TicketRow,
    "invoices": InvoiceRow,
    "nps_responses": NpsRow,
    "interactions": InteractionRow,
    "tam_health": TamHealthRow,
}


@dataclass
class Portfolio:
    seed: int
    as_of: date
    accounts: list[AccountRow] = field(default_factory=list)
    contracts: list[ContractRow] = field(default_factory=list)
    product_users: list[ProductUserRow] = field(default_factory=list)
    stakeholders: list[StakeholderRow] = field(default_factory=list)
    stakeholder_engagements: list[StakeholderEngagementRow] = field(default_factory=list)
    usage_events: list[UsageEventRow] = field(default_factory=list)
    support_tickets: list[TicketRow] = field(default_factory=list)
    invoices: list[InvoiceRow] = field(default_factory=list)
    nps_responses: list[NpsRow] = field(default_factory=list)
    interactions: list[InteractionRow] = field(default_factory=list)
    tam_health: list[TamHealthRow] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)
    archetypes: dict[str, str] = field(default_factory=dict)
    goals: dict[str, list[str]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    # lifecycle milestones already reached (see Handoff.milestones): the demo
    # hands off accounts mid-life, so most skip the onboarding gates
    milestones: dict[str, list[str]] = field(default_factory=dict)

    # -- tables
    def tables(self) -> dict[str, list[Any]]:
        """Rows per table, in an order that respects the foreign keys."""
        return {name: getattr(self, name) for name in TABLES}

    def row_counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.tables().items()}

    @property
    def account_ids(self) -> list[str]:
        return [a.account_id for a in self.accounts]

    # -- archetypes and outcomes
    def archetype_of(self, account_id: str) -> str:
        return self.archetypes[account_id]

    def accounts_by_archetype(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {a: [] for a in ARCHETYPES}
        for account_id, archetype in self.archetypes.items():
            out[archetype].append(account_id)
        return out

    def contracts_of(self, account_id: str) -> list[ContractRow]:
        return sorted(
            (c for c in self.contracts if c.account_id == account_id), key=lambda c: c.start_date
        )

    def contract_in_force(self, account_id: str, at: date | None = None) -> ContractRow | None:
        """The latest row starting on or before `at`, if `at` is within its term."""
        at = at or self.as_of
        started = [c for c in self.contracts_of(account_id) if c.start_date <= at]
        if not started or started[-1].end_date < at:
            return None
        return started[-1]

    def churned_on(self, account_id: str) -> date | None:
        """When the churn became known (as ``fetch_outcomes`` dates it): the last contract
        row's notice, else its end date if it ended before as_of."""
        rows = self.contracts_of(account_id)
        if not rows:
            return None
        last = rows[-1]
        if last.notice_on is not None and last.notice_on < self.as_of:
            return last.notice_on
        return last.end_date if last.end_date < self.as_of else None

    def expanded_on(self, account_id: str) -> date | None:
        """Start of the first row inside the window with more seats or modules than the row before."""
        rows = self.contracts_of(account_id)
        window_start = self.as_of - timedelta(days=HISTORY_DAYS)
        for before, after in itertools.pairwise(rows):
            more_modules = set(after.licensed_modules) > set(before.licensed_modules)
            if after.start_date >= window_start and (
                after.seats_purchased > before.seats_purchased or more_modules
            ):
                return after.start_date
        return None

    def active_account_ids(self) -> list[str]:
        return [a for a in self.account_ids if self.contract_in_force(a) is not None]

    # -- handoffs
    def handoffs(self) -> list[Handoff]:
        """One Handoff per account whose contract is in force at as_of."""
        contracts: dict[str, list[ContractRow]] = {}
        for c in self.contracts:
            contracts.setdefault(c.account_id, []).append(c)
        people: dict[str, list[StakeholderRow]] = {}
        for s in self.stakeholders:
            if s.joined_on <= self.as_of and (s.left_on is None or s.left_on > self.as_of):
                people.setdefault(s.account_id, []).append(s)
        out: list[Handoff] = []
        for a in self.accounts:
            started = sorted(
                (c for c in contracts.get(a.account_id, []) if c.start_date <= self.as_of),
                key=lambda c: c.start_date,
            )
            if not started or started[-1].end_date < self.as_of:
                continue
            c = started[-1]
            out.append(
                Handoff(
                    account_id=a.account_id,
                    name=a.name,
                    tier=a.tier,
                    industry=a.industry,
                    csm_owner=a.csm_owner,
                    csm_email=a.csm_email,
                    rep_owner=a.rep_owner,
                    rep_email=a.rep_email,
                    contract=HandoffContract(
                        start_date=c.start_date,
                        end_date=c.end_date,
                        arr=float(c.arr),
                        seats_purchased=c.seats_purchased,
                        price_per_seat=float(c.price_per_seat),
                        licensed_modules=list(c.licensed_modules),
                        notice_on=c.notice_on,
                    ),
                    stakeholders=[
                        HandoffStakeholder(
                            name=s.name,
                            email=s.email,
                            title=s.title,
                            role=s.role,
                            is_champion=s.is_champion,
                        )
                        for s in people.get(a.account_id, [])
                    ],
                    goals=self.goals.get(a.account_id, []),
                    notes=self.notes.get(a.account_id),
                    milestones=self.milestones.get(a.account_id, []),
                )
            )
        return out


# ------------------------------------------------------------------ plans


@dataclass(slots=True)
class _User:
    user_id: str
    email: str
    role: str
    persona: str
    created_day: int  # may be negative: provisioned before the window
    deactivated_day: int | None
    active_from: int
    active_to: int  # inclusive; < active_from means never active in the window
    p: float  # chance of activity on a normal weekday


@dataclass
class _Plan:
    idx: int
    account_id: str
    name: str
    domain: str
    tier: str
    industry: str
    archetype: str
    csm: tuple[str, str]
    rep: tuple[str, str]
    created: date
    billing: str  # annual | quarterly | monthly
    net_days: int
    first_day: int  # first day with telemetry (0 unless onboarding)
    last_day: int  # last day with telemetry (HISTORY_DAYS - 1 unless churned)
    health: list[float]
    intensity: list[float]
    terms: list[tuple[ContractRow, bool]] = field(default_factory=list)  # (row, is_amendment)
    used_modules: list[str] = field(default_factory=list)
    trial_modules: list[str] = field(default_factory=list)  # used before being licensed
    trial_from: int = HISTORY_DAYS
    heavy_api: bool = False
    limit_hits: list[tuple[int, str]] = field(default_factory=list)  # (day, module)
    decline_from: int | None = None  # day a decline starts (declining/churned/at-risk)
    at_risk: bool = False
    expansion_day: int | None = None
    has_tam: bool = True
    has_nps: bool = True
    ticket_rate: float = 1.0  # expected tickets per 30 days at baseline
    users: list[_User] = field(default_factory=list)
    had_qbr: bool = False


_occurred_at = operator.attrgetter("occurred_at")


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def _money(x: float) -> Decimal:
    return Decimal(str(round(x, 2))).quantize(Decimal("0.01"))


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    days = (date(year + (month == 12), month % 12 + 1, 1) - date(year, month, 1)).days
    return date(year, month, min(d.day, days))


def _ramp(n: int, points: list[tuple[int, float]]) -> list[float]:
    """A piecewise-linear curve over days 0..n-1 through (day, value) points."""
    pts = sorted(points)
    out = []
    j = 0
    for d in range(n):
        while j + 1 < len(pts) and pts[j + 1][0] <= d:
            j += 1
        d0, v0 = pts[j]
        if j + 1 < len(pts) and d > d0:
            d1, v1 = pts[j + 1]
            out.append(v0 + (v1 - v0) * (d - d0) / (d1 - d0))
        else:
            out.append(v0)
    return out


def _archetype_counts(n_accounts: int) -> dict[str, int]:
    counts = {a: max(1, round(s * n_accounts)) for a, s in ARCHETYPE_SHARES.items()}
    counts["shelfware"] -= 1  # the reference account is a shelfware case
    healthy = n_accounts - 1 - sum(counts.values())
    if healthy < 3:
        raise ValueError(f"n_accounts={n_accounts} is too small for the archetype mix")
    return {"healthy": healthy, **counts}


class _Generator:
    def __init__(self, seed: int, as_of: date, n_accounts: int) -> None:
        self.seed = seed
        self.as_of = as_of
        self.n = n_accounts
        self.rng = random.Random(seed)
        self.day0 = as_of - timedelta(days=HISTORY_DAYS)
        self.as_of_dt = datetime.combine(as_of, time(), UTC)
        self.p = Portfolio(seed=seed, as_of=as_of)
        self.usage: dict[str, list[UsageEventRow]] = {}  # per account, by time
        # 15-minute slots per day, shared by every account's rows (saves memory too)
        self.slots = [
            [
                datetime.combine(self.day0 + timedelta(days=d), time(), UTC)
                + timedelta(minutes=15 * k)
                for k in range(96)
            ]
            for d in range(HISTORY_DAYS)
        ]
        # weekend and year-end holidays are quiet
        self.dayf: list[float] = []
        self.weekday: list[bool] = []
        for d in range(HISTORY_DAYS):
            dd = self.day0 + timedelta(days=d)
            holiday = (dd.month == 12 and dd.day >= 24) or (dd.month == 1 and dd.day == 1)
            wk = dd.weekday() < 5
            self.weekday.append(wk and not holiday)
            self.dayf.append(0.25 if holiday else 1.0 if wk else 0.08)

    # ---------------------------------------------------------- helpers
    def date_of(self, d: int) -> date:
        return self.day0 + timedelta(days=d)

    def at(self, d: int, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(self.day0 + timedelta(days=d), time(hour, minute), UTC)

    def day_of(self, d: date) -> int:
        return (d - self.day0).days

    # ---------------------------------------------------------- top level
    def run(self) -> Portfolio:
        rng = self.rng
        counts = _archetype_counts(self.n)
        archetypes = [a for a, k in counts.items() for _ in range(k)]
        rng.shuffle(archetypes)
        n_other = self.n - 1
        n_t1 = round(0.15 * self.n) - 1  # the reference account is tier-1 too
        n_t2 = round(0.30 * self.n)
        tiers = ["tier-1"] * n_t1 + ["tier-2"] * n_t2 + ["tier-3"] * (n_other - n_t1 - n_t2)
        rng.shuffle(tiers)
        # each account draws from its own stream, so accounts do not shift each other
        seeds = [rng.getrandbits(64) for _ in range(self.n)]

        plans = [self._reference_plan(random.Random(seeds[0]))]
        names = {plans[0].name}
        for i in range(n_other):
            plans.append(
                self._plan(random.Random(seeds[i + 1]), i + 1, archetypes[i], tiers[i], names)
            )
        for plan in plans:
            self._emit_account(plan, seeds[plan.idx])
        self._plant_bad_rows(plans)
        # (account_id, occurred_at) order: the order of the table's index, which
        # makes COPY about twice as fast and keeps an account's rows together
        for account_id in sorted(self.usage):
            self.p.usage_events.extend(self.usage[account_id])
        return self.p

    # ---------------------------------------------------------- plans
    def _identity(self, rng: random.Random, idx: int, names: set[str]) -> tuple[str, str, str, str]:
        while True:
            industry = rng.choice(list(_INDUSTRY_NOUNS))
            head = rng.choice(_NAME_HEADS) + rng.choice(_NAME_TAILS)
            name = f"{head} {rng.choice(_INDUSTRY_NOUNS[industry])}"
            if name not in names:
                names.add(name)
                slug = head.lower()
                return f"{slug}-{idx:04d}", name, f"{slug}.example.com", industry

    def _base_plan(
        self, rng: random.Random, idx: int, archetype: str, tier: str, names: set[str]
    ) -> _Plan:
        account_id, name, domain, industry = self._identity(rng, idx, names)
        if tier == "tier-1":
            billing = "annual" if rng.random() < 0.8 else "quarterly"
        elif tier == "tier-2":
            billing = rng.choices(["annual", "quarterly", "monthly"], [5, 3, 2])[0]
        else:
            billing = "monthly" if rng.random() < 0.6 else "annual"
        if archetype == "overdue":
            billing = "monthly"  # so several recent invoices can be past due
        return _Plan(
            idx=idx,
            account_id=account_id,
            name=name,
            domain=domain,
            tier=tier,
            industry=industry,
            archetype=archetype,
            csm=rng.choice(CSMS),
            rep=rng.choice(REPS),
            created=self.as_of - timedelta(days=rng.randint(400, 2000)),
            billing=billing,
            net_days=45 if tier == "tier-1" and rng.random() < 0.4 else 30,
            first_day=0,
            last_day=HISTORY_DAYS - 1,
            health=[1.0] * HISTORY_DAYS,
            intensity=[1.0] * HISTORY_DAYS,
            has_tam=tier == "tier-1" or rng.random() < (0.85 if tier == "tier-2" else 0.4),
            has_nps=tier == "tier-1" or rng.random() < (0.92 if tier == "tier-2" else 0.75),
            ticket_rate=self._ticket_rate(rng, tier),
        )

    @staticmethod
    def _ticket_rate(rng: random.Random, tier: str) -> float:
        """Expected tickets per 30 days; some small accounts never open one."""
        if tier == "tier-1":
            return rng.uniform(2.0, 6.0)
        if tier == "tier-2":
            return rng.uniform(1.0, 3.0)
        return 0.0 if rng.random() < 0.12 else rng.uniform(0.2, 1.2)

    @staticmethod
    def _seats_price(rng: random.Random, tier: str) -> tuple[int, int]:
        if tier == "tier-1":
            return 10 * rng.randint(10, 32), 10 * rng.randint(45, 70)
        if tier == "tier-2":
            return 5 * rng.randint(8, 24), 10 * rng.randint(30, 48)
        return rng.randint(8, 40), 10 * rng.randint(18, 36)

    @staticmethod
    def _modules(rng: random.Random, tier: str) -> list[str]:
        mods = ["core", "reports"]
        if tier == "tier-1":
            mods += ["dashboards", "automation", "api"]
            if rng.random() < 0.6:
                mods.append("integrations")
        elif tier == "tier-2":
            mods.append("dashboards")
            if rng.random() < 0.5:
                mods.append("automation")
            if rng.random() < 0.3:
                mods.append("api")
        elif rng.random() < 0.5:
            mods.append("dashboards")
        return mods

    def _contract(
        self, plan: _Plan, start: date, end: date, seats: int, price: int, modules: list[str]
    ) -> ContractRow:
        return ContractRow(
            account_id=plan.account_id,
            start_date=start,
            end_date=end,
            arr=_money(seats * price),
            seats_purchased=seats,
            price_per_seat=_money(price),
            licensed_modules=tuple(m for m in MODULES if m in modules),
        )

    def _two_terms(
        self, plan: _Plan, end: date, seats: int, price: int, modules: list[str]
    ) -> None:
        """The previous one-year term and the current one ending on `end`."""
        start = end - timedelta(days=364)
        prev_start = start - timedelta(days=365)
        plan.created = min(plan.created, prev_start)
        plan.terms = [
            (
                self._contract(plan, prev_start, start - timedelta(days=1), seats, price, modules),
                False,
            ),
            (self._contract(plan, start, end, seats, price, modules), False),
        ]

    def _health(
        self, rng: random.Random, base: float, drops: list[tuple[int, float]] | None = None
    ) -> list[float]:
        """A base level, optional piecewise drops, plus a slow random walk."""
        curve = _ramp(HISTORY_DAYS, [(0, base), *(drops or [])])
        walk, x = [], 0.0
        for _ in range(HISTORY_DAYS):
            x = _clamp(x * 0.97 + rng.gauss(0, 0.008), -0.05, 0.05)
            walk.append(x)
        return [_clamp(c + w, 0.02, 0.99) for c, w in zip(curve, walk, strict=True)]

    def _reference_plan(self, rng: random.Random) -> _Plan:
        """THE reference case: 100 seats at $600, 25 steady users, renewal in ~6 months."""
        plan = self._base_plan(rng, 0, "shelfware", "tier-1", set())
        plan.account_id = REFERENCE_ACCOUNT_ID
        plan.name = "Northwind Traders"
        plan.domain = "northwind.example.com"
        plan.industry = "Logistics"
        plan.csm, plan.rep = CSMS[0], REPS[0]
        plan.billing, plan.net_days = "annual", 30
        plan.has_tam = plan.has_nps = True
        plan.ticket_rate = 2.0
        modules = ["core", "reports", "dashboards", "automation"]  # automation: licensed, unused
        self._two_terms(plan, self.as_of + timedelta(days=182), 100, 600, modules)
        plan.used_modules = ["core", "reports", "dashboards"]
        plan.health = self._health(rng, 0.74)
        users = self._steady_users(plan, rng, 25, 0)
        n = len(users)
        for _ in range(8):  # former users, long gone: history, not current provisioning
            n += 1
            stop = rng.randint(20, 240)
            users.append(
                self._user(plan, rng, n, -rng.randint(60, 600), 0, stop, stop + rng.randint(1, 14))
            )
        plan.users = users
        return plan

    def _plan(
        self, rng: random.Random, idx: int, archetype: str, tier: str, names: set[str]
    ) -> _Plan:
        plan = self._base_plan(rng, idx, archetype, tier, names)
        seats, price = self._seats_price(rng, tier)
        modules = self._modules(rng, tier)
        last = HISTORY_DAYS - 1
        plan.used_modules = list(modules)
        if archetype != "shelfware" and len(modules) > 2 and rng.random() < 0.25:
            plan.used_modules.remove(rng.choice(modules[2:]))  # an ordinary adoption gap
        renew_in = rng.randint(5, 362)

        if archetype == "healthy":
            plan.health = self._health(rng, rng.uniform(0.82, 0.95))
            self._two_terms(plan, self.as_of + timedelta(days=renew_in), seats, price, modules)
            plan.users = self._steady_users(
                plan,
                rng,
                round(seats * rng.uniform(0.68, 0.9)),
                round(seats * rng.uniform(0, 0.06)),
            )

        elif archetype == "declining":
            span = rng.randint(60, 90)
            plan.decline_from = last - span
            plan.health = self._health(
                rng,
                rng.uniform(0.75, 0.88),
                [(last - span, rng.uniform(0.72, 0.85)), (last, rng.uniform(0.22, 0.38))],
            )
            plan.intensity = _ramp(
                HISTORY_DAYS, [(0, 1.0), (last - span, 1.0), (last, rng.uniform(0.35, 0.5))]
            )
            self._two_terms(plan, self.as_of + timedelta(days=renew_in), seats, price, modules)
            users = self._steady_users(
                plan,
                rng,
                round(seats * rng.uniform(0.6, 0.85)),
                round(seats * rng.uniform(0, 0.05)),
            )
            self._stop_some(rng, users, rng.uniform(0.45, 0.65), last - span, last - 25, 0.3)
            plan.users = users

        elif archetype == "spiky":
            plan.health = self._health(rng, rng.uniform(0.55, 0.7))
            plan.intensity = self._spiky_intensity(rng)
            self._two_terms(plan, self.as_of + timedelta(days=renew_in), seats, price, modules)
            plan.users = self._steady_users(
                plan, rng, round(seats * rng.uniform(0.5, 0.8)), round(seats * rng.uniform(0, 0.06))
            )

        elif archetype == "overloaded":
            plan.health = self._health(
                rng,
                rng.uniform(0.7, 0.85),
                [(last - 45, rng.uniform(0.68, 0.8)), (last, rng.uniform(0.25, 0.4))],
            )
            plan.ticket_rate = max(plan.ticket_rate, 1.0)
            self._two_terms(
                plan, self.as_of + timedelta(days=rng.randint(20, 75)), seats, price, modules
            )
            plan.users = self._steady_users(
                plan,
                rng,
                round(seats * rng.uniform(0.6, 0.85)),
                round(seats * rng.uniform(0, 0.05)),
            )

        elif archetype == "renewing":
            plan.at_risk = rng.random() < 0.5
            if plan.at_risk:
                plan.decline_from = last - 70
                plan.health = self._health(
                    rng,
                    rng.uniform(0.7, 0.8),
                    [(last - 70, rng.uniform(0.68, 0.78)), (last, rng.uniform(0.28, 0.5))],
                )
                plan.intensity = _ramp(HISTORY_DAYS, [(0, 1.0), (last - 60, 1.0), (last, 0.75)])
            else:
                plan.health = self._health(rng, rng.uniform(0.8, 0.92))
            self._two_terms(
                plan, self.as_of + timedelta(days=rng.randint(8, 58)), seats, price, modules
            )
            users = self._steady_users(
                plan,
                rng,
                round(seats * rng.uniform(0.6, 0.85)),
                round(seats * rng.uniform(0, 0.05)),
            )
            if plan.at_risk:
                self._stop_some(rng, users, rng.uniform(0.2, 0.3), last - 60, last - 25, 0.0)
            plan.users = users

        elif archetype == "expanding":
            modules = ["core", "reports", "dashboards", "api"]  # no automation, no integrations
            plan.used_modules = list(modules)
            plan.health = self._health(rng, rng.uniform(0.88, 0.97))
            self._two_terms(plan, self.as_of + timedelta(days=renew_in), seats, price, modules)
            n_active = rng.randint(math.ceil(0.93 * seats), seats)
            plan.users = self._steady_users(
                plan, rng, n_active, seats - n_active, same_day_replacement=True
            )
            # alternate the opportunity signals so every opportunity type shows up
            k = plan.idx % 3
            if k != 1:
                plan.trial_modules, plan.trial_from = ["automation"], last - rng.randint(45, 80)
            plan.heavy_api = k != 2
            admin_days = self._pick_days(rng, last - 27, last, rng.randint(3, 7))
            plan.limit_hits = [(d, "core") for d in admin_days]
            if plan.heavy_api:
                plan.limit_hits += [
                    (d, "api") for d in self._pick_days(rng, last - 27, last, rng.randint(5, 12))
                ]

        elif archetype == "shelfware":
            extra = [m for m in ("dashboards", "automation", "integrations") if m not in modules]
            modules = modules + extra[: rng.randint(1, max(1, len(extra)))]
            plan.used_modules = ["core", rng.choice(["reports", "dashboards"])]
            plan.health = self._health(rng, rng.uniform(0.65, 0.78))
            self._two_terms(plan, self.as_of + timedelta(days=renew_in), seats, price, modules)
            plan.users = self._steady_users(
                plan,
                rng,
                max(1, round(seats * rng.uniform(0.18, 0.4))),
                round(seats * rng.uniform(0.1, 0.3)),
                turnover=0.0,
            )

        elif archetype == "overdue":
            plan.health = self._health(rng, rng.uniform(0.6, 0.72))
            self._two_terms(plan, self.as_of + timedelta(days=renew_in), seats, price, modules)
            plan.users = self._steady_users(
                plan,
                rng,
                round(seats * rng.uniform(0.6, 0.82)),
                round(seats * rng.uniform(0, 0.06)),
            )

        elif archetype == "onboarding":
            start = rng.randint(last - 149, last - 39)
            plan.first_day = start
            plan.created = self.date_of(start) - timedelta(days=rng.randint(3, 20))
            plan.health = self._health(rng, rng.uniform(0.75, 0.9))
            plan.intensity = [0.0] * start + [1.0] * (HISTORY_DAYS - start)
            s = self.date_of(start)
            plan.terms = [
                (self._contract(plan, s, s + timedelta(days=364), seats, price, modules), False)
            ]
            plan.users = self._onboarding_users(plan, rng, round(seats * rng.uniform(0.45, 0.7)))

        elif archetype == "churned":
            end = last - rng.randint(29, 299)  # as_of - 30 .. as_of - 300 days
            span = min(rng.randint(60, 120), end - 10)
            plan.last_day, plan.decline_from = end, end - span
            plan.health = self._health(
                rng,
                rng.uniform(0.7, 0.85),
                [(end - span, rng.uniform(0.68, 0.8)), (end, rng.uniform(0.1, 0.25))],
            )
            plan.intensity = _ramp(HISTORY_DAYS, [(0, 1.0), (end - span, 1.0), (end, 0.3)])
            self._two_terms(plan, self.date_of(end), seats, price, modules)
            users = self._steady_users(
                plan,
                rng,
                round(seats * rng.uniform(0.55, 0.8)),
                round(seats * rng.uniform(0, 0.05)),
            )
            self._stop_some(rng, users, rng.uniform(0.6, 0.8), end - span, end - 5, 0.0)
            for u in users:  # the customer switches everything off after the end
                if u.deactivated_day is None or u.deactivated_day > end:
                    u.deactivated_day = end + rng.randint(1, 7)
            plan.users = users

        elif archetype == "expanded":
            self._expanded(plan, rng, seats, price, modules)
        else:  # pragma: no cover - ARCHETYPES and this switch move together
            raise AssertionError(archetype)
        return plan

    def _expanded(
        self, plan: _Plan, rng: random.Random, seats0: int, price: int, modules0: list[str]
    ) -> None:
        last = HISTORY_DAYS - 1
        seats1 = max(seats0 + 2, round(seats0 * rng.uniform(1.2, 1.6)))
        if plan.tier == "tier-1":
            seats1 = 10 * round(seats1 / 10)
        new_mods = [
            m for m in ("dashboards", "automation", "api", "integrations") if m not in modules0
        ]
        add_module = bool(new_mods) and rng.random() < 0.6
        modules1 = modules0 + ([rng.choice(new_mods)] if add_module else [])
        if rng.random() < 0.5:
            # co-termed amendment in the middle of the current term
            end = self.as_of + timedelta(days=rng.randint(30, 279))
            self._two_terms(plan, end, seats0, price, modules0)
            term_start = self.day_of(end - timedelta(days=364))
            x = rng.randint(max(term_start + 45, last - 299), last - 39)
            amend = self._contract(plan, self.date_of(x), end, seats1, price, modules1)
            plan.terms.append((amend, True))
        else:
            # expanded at renewal: the old term ends, a bigger one starts the next day
            x = rng.randint(last - 299, last - 39)
            prev_end = self.date_of(x) - timedelta(days=1)
            self._two_terms(plan, prev_end, seats0, price, modules0)
            new_start = self.date_of(x)
            row = self._contract(
                plan, new_start, new_start + timedelta(days=364), seats1, price, modules1
            )
            plan.terms.append((row, False))
        plan.expansion_day = x
        plan.health = self._health(rng, rng.uniform(0.86, 0.95))
        plan.used_modules = list(modules1) if add_module else list(modules0)
        if add_module:  # the new module was tried before it was bought
            plan.trial_modules, plan.trial_from = [modules1[-1]], max(0, x - 60)
        # high utilization before the expansion, with seat limit hits
        n0 = rng.randint(math.ceil(0.93 * seats0), seats0)
        users = self._steady_users(plan, rng, n0, seats0 - n0, same_day_replacement=True)
        plan.limit_hits = [
            (d, "core") for d in self._pick_days(rng, max(0, x - 60), x - 1, rng.randint(4, 8))
        ]
        # new seats fill up after the expansion
        target = max(n0 + 1, round(seats1 * rng.uniform(0.8, 0.9)))
        n = len(users)
        for _ in range(target - n0):
            n += 1
            created = min(x + int(rng.expovariate(1 / 20)), last - 30)
            users.append(self._user(plan, rng, n, created, created + rng.randint(0, 3), last, None))
        plan.users = users

    # ---------------------------------------------------------- users
    def _user(
        self,
        plan: _Plan,
        rng: random.Random,
        n: int,
        created_day: int,
        active_from: int,
        active_to: int,
        deactivated_day: int | None,
        persona: str | None = None,
    ) -> _User:
        if persona is None:
            persona = rng.choices(_PERSONAS, [20, 55, 25])[0]
        lo, hi = {"power": (0.4, 0.7), "regular": (0.18, 0.45), "light": (0.1, 0.25)}[persona]
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        return _User(
            user_id=f"u{n:04d}",
            email=f"{first}.{last}{n}@{plan.domain}".lower(),
            role="admin" if n <= 2 else _PERSONA_ROLE[persona],
            persona=persona,
            created_day=created_day,
            deactivated_day=deactivated_day,
            active_from=active_from,
            active_to=active_to,
            p=rng.uniform(lo, hi),
        )

    def _steady_users(
        self,
        plan: _Plan,
        rng: random.Random,
        n_active: int,
        n_dormant: int,
        *,
        turnover: float = 0.08,
        same_day_replacement: bool = False,
    ) -> list[_User]:
        """Users active all along, dormant provisioned users, and some turnover."""
        first, last = plan.first_day, plan.last_day
        users: list[_User] = []
        n = 0
        for _ in range(max(1, n_active)):
            n += 1
            users.append(
                self._user(
                    plan,
                    rng,
                    n,
                    -rng.randint(30, 700),
                    first,
                    last,
                    None,
                    "power" if n <= 2 else None,
                )
            )
        for _ in range(n_dormant):
            n += 1
            # never active in the window, or stopped long ago; still provisioned
            stop = -1 if rng.random() < 0.5 else rng.randint(0, max(0, last - 120))
            users.append(self._user(plan, rng, n, -rng.randint(30, 700), first, stop, None))
        for u in list(users[2:n_active]):
            if rng.random() >= turnover or last - 45 <= first + 30:
                continue
            t = rng.randint(first + 30, last - 45)
            gone = t + rng.randint(1, 10)
            u.active_to, u.deactivated_day = t, gone
            n += 1
            created = gone if same_day_replacement else t + rng.randint(0, 10)
            users.append(self._user(plan, rng, n, created, created + 1, last, None))
        return users

    def _onboarding_users(self, plan: _Plan, rng: random.Random, n_target: int) -> list[_User]:
        s, last = plan.first_day, plan.last_day
        users = []
        for n in range(1, max(2, n_target) + 1):
            created = s if n <= 2 else min(s + int(rng.expovariate(1 / 20)), last - 5)
            users.append(
                self._user(
                    plan,
                    rng,
                    n,
                    created,
                    created + rng.randint(0, 3),
                    last,
                    None,
                    "power" if n <= 2 else None,
                )
            )
        return users

    @staticmethod
    def _stop_some(
        rng: random.Random, users: list[_User], share: float, lo: int, hi: int, deactivate: float
    ) -> None:
        """A share of the active users stop using the product between days lo and hi."""
        active = [u for u in users if u.active_to >= hi]
        for u in rng.sample(active, round(len(active) * share)):
            u.active_to = min(u.active_to, rng.randint(lo, max(lo, hi)))
            if rng.random() < deactivate:
                u.deactivated_day = u.active_to + rng.randint(5, 20)

    def _spiky_intensity(self, rng: random.Random) -> list[float]:
        last = HISTORY_DAYS - 1
        m: list[float] = []
        while len(m) < HISTORY_DAYS:
            m += [rng.uniform(1.2, 1.7)] * rng.randint(4, 10)  # burst
            m += [0.0 if rng.random() < 0.6 else 0.05] * rng.randint(6, 16)  # gap
        m = m[:HISTORY_DAYS]
        gap = rng.randint(last - 70, last - 34)  # a hard gap of 12-16 days inside the last 90
        m[gap : gap + rng.randint(12, 16)] = [0.0] * 16
        m = m[:HISTORY_DAYS]
        m[last - 11 :] = [1.5] * 12  # and a burst at the end, so recent users are visible
        return m

    def _pick_days(self, rng: random.Random, lo: int, hi: int, k: int) -> list[int]:
        days = [d for d in range(max(0, lo), hi + 1) if self.weekday[d]]
        return sorted(rng.sample(days, min(k, len(days))))

    # ---------------------------------------------------------- emit
    def _emit_account(self, plan: _Plan, seed: int) -> None:
        # one stream per table, so changing how one table is drawn leaves the others be
        rng, u_rng, t_rng, i_rng, n_rng, x_rng, tam_rng, notice_rng, e_rng = (
            random.Random((seed << 4) | k) for k in range(1, 10)
        )
        p = self.p
        if plan.archetype == "churned":
            self._notice(plan, notice_rng)
        p.archetypes[plan.account_id] = plan.archetype
        p.accounts.append(
            AccountRow(
                account_id=plan.account_id,
                name=plan.name,
                tier=plan.tier,
                industry=plan.industry,
                csm_owner=plan.csm[0],
                csm_email=plan.csm[1],
                rep_owner=plan.rep[0],
                rep_email=plan.rep[1],
                created_at=datetime.combine(plan.created, time(10), UTC),
            )
        )
        p.contracts.extend(row for row, _ in plan.terms)
        p.goals[plan.account_id] = rng.sample(_GOALS, rng.randint(2, 3))
        p.notes[plan.account_id] = (
            f"{plan.tier} {plan.industry} customer since {plan.created.year}; billed {plan.billing}."
        )
        self._emit_users(plan)
        stakeholders = self._emit_stakeholders(plan, rng)
        self._emit_engagements(plan, e_rng, stakeholders)
        self._emit_usage(plan, u_rng)
        self._emit_tickets(plan, t_rng)
        self._emit_invoices(plan, i_rng)
        self._emit_nps(plan, n_rng, stakeholders)
        self._emit_interactions(plan, x_rng)
        self._emit_tam(plan, tam_rng)
        p.milestones[plan.account_id] = self._milestones(plan, rng)

    def _notice(self, plan: _Plan, rng: random.Random) -> None:
        """Notices on churned accounts, as a CS team records them. About a third left
        mid-term: they gave notice and stopped using the product around the last day of
        telemetry, while the term they had paid for ran on 30-120 days (end_date stays the
        term's scheduled end). About a third gave a non-renewal notice 30-90 days before
        the end. The rest left without a notice on file (the churn shows at the end)."""
        last = plan.last_day  # the last day with telemetry
        room = (self.as_of - self.date_of(last)).days - 1  # the term must end before as_of
        kind = rng.random()
        if kind < 0.35 and room >= 30:
            run_on = rng.randint(30, min(120, room))
            notice = self.date_of(last) - timedelta(days=rng.randint(0, 10))
            modules = [m for m in MODULES if m in plan.terms[-1][0].licensed_modules]
            c = plan.terms[-1][0]
            self._two_terms(
                plan,
                self.date_of(last) + timedelta(days=run_on),
                c.seats_purchased,
                int(c.price_per_seat),
                modules,
            )
        elif kind < 0.7:
            notice = plan.terms[-1][0].end_date - timedelta(days=rng.randint(30, 90))
        else:
            return
        row, amendment = plan.terms[-1]
        plan.terms[-1] = (row._replace(notice_on=max(notice, row.start_date)), amendment)

    def _emit_engagements(
        self, plan: _Plan, rng: random.Random, people: list[StakeholderRow]
    ) -> None:
        """Dated engagements of each stakeholder, back from their last one to when they
        joined: closer together while the account is healthy (every 2-5 weeks), months
        apart when it is not."""
        for sh in people:
            if sh.last_engaged_at is None:
                continue
            at = sh.last_engaged_at
            rows: list[StakeholderEngagementRow] = []
            while at.date() >= sh.joined_on:
                rows.append(StakeholderEngagementRow(sh.account_id, sh.stakeholder_id, at))
                health = plan.health[_clamp(self.day_of(at.date()), 0, HISTORY_DAYS - 1)]
                at -= timedelta(days=rng.randint(10, 30) + round((1 - health) * 90))
            self.p.stakeholder_engagements.extend(reversed(rows))

    def _milestones(self, plan: _Plan, rng: random.Random) -> list[str]:
        """Milestones reached before the handoff, as far as the history shows."""
        if plan.archetype == "onboarding":
            age = plan.last_day - plan.first_day
            steps = [
                (14, "questionnaire_answered"),
                (30, "maturity_assessed"),
                (45, "kickoff_held"),
                (60, "stakeholders_mapped"),
                (80, "cs_plan_approved"),
            ]
            return [m for days, m in steps if age >= days]
        reached = [
            "questionnaire_answered",
            "maturity_assessed",
            "kickoff_held",
            "stakeholders_mapped",
            "cs_plan_approved",
            "onboarding_complete",
        ]
        if plan.archetype != "shelfware":  # never got past 40% of seats in use
            reached.append("first_value")
        if plan.had_qbr:
            reached.append("first_qbr_delivered")
            if plan.archetype in ("healthy", "expanded", "expanding") and rng.random() < 0.3:
                reached.append("reference_given")
        return reached

    def _emit_users(self, plan: _Plan) -> None:
        for u in plan.users:
            created = self.day0 + timedelta(days=u.created_day)
            deact = (
                None
                if u.deactivated_day is None or u.deactivated_day >= HISTORY_DAYS
                else self.at(u.deactivated_day, 18)
            )
            self.p.product_users.append(
                ProductUserRow(
                    account_id=plan.account_id,
                    user_id=u.user_id,
                    email=u.email,
                    role=u.role,
                    created_at=datetime.combine(created, time(9), UTC),
                    deactivated_at=deact,
                )
            )

    def _bags(self, plan: _Plan, modules: list[str]) -> dict[str, list[str]]:
        bags = {}
        for persona in _PERSONAS:
            bag: list[str] = []
            for feature, (weight, _, _) in FEATURES.items():
                if feature.split(".")[0] in modules and feature in _PERSONA_FEATURES[persona]:
                    if feature == "api.call" and plan.heavy_api:
                        weight *= 3
                    bag += [feature] * max(1, round(weight * 5))
            bags[persona] = bag or ["core.search"]
        return bags

    def _emit_usage(self, plan: _Plan, rng: random.Random) -> None:
        aid = plan.account_id
        out: list[UsageEventRow] = []
        self.usage[aid] = out
        ev = UsageEventRow
        r = rng.random
        bags = self._bags(plan, plan.used_modules)
        tbags = self._bags(plan, plan.used_modules + plan.trial_modules)
        qty = {f: (lo, hi - lo + 1) for f, (_, lo, hi) in FEATURES.items()}
        if plan.heavy_api:
            qty["api.call"] = (400, 3600)
        fac = [self.dayf[d] * plan.intensity[d] for d in range(HISTORY_DAYS)]
        last = plan.last_day
        # A user active across a checkpoint shows up in the 25 days before it, so
        # "distinct users in the last 30 days" is exact at as_of (and before an
        # expansion) rather than missing the occasional light user.
        marks = [last + 1] + ([plan.expansion_day] if plan.expansion_day else [])
        windows = [
            (c, [d for d in range(max(plan.first_day, c - 25), c) if fac[d] >= 0.5]) for c in marks
        ]
        for u in plan.users:
            lo, hi = max(u.active_from, plan.first_day), min(u.active_to, last)
            if hi < lo:
                continue
            bag, tbag, trial_from = bags[u.persona], tbags[u.persona], plan.trial_from
            extra = 0.4 if u.persona == "power" else 0.25
            uid, p_user = u.user_id, u.p
            days = [d for d in range(lo, hi + 1) if r() < p_user * fac[d]]
            missing = [
                rng.choice(window)
                for c, window in windows
                if window
                and lo <= c - 26
                and hi >= c - 1
                and not any(c - 25 <= d < c for d in days)
            ]
            days += missing
            for d in days:
                slots = self.slots[d]
                k = 28 + int(r() * 48)  # 07:00-19:00 UTC
                out.append(ev(aid, uid, slots[k], "login", 1 + (r() < 0.3) + (r() < 0.1)))
                if r() < 0.15:
                    continue  # logged in, did nothing worth an event
                b = tbag if d >= trial_from else bag
                f1 = b[int(r() * len(b))]
                q0, span = qty[f1]
                out.append(ev(aid, uid, slots[k + 1], f1, q0 + int(r() * span)))
                if r() < extra:
                    f2 = b[int(r() * len(b))]
                    if f2 != f1:
                        q0, span = qty[f2]
                        out.append(ev(aid, uid, slots[k + 2], f2, q0 + int(r() * span)))
        admin = plan.users[0].user_id
        for d, module in plan.limit_hits:
            out.append(ev(aid, admin, self.at(d, 10, 5), f"{module}.limit_hit", rng.randint(1, 3)))
        out.sort(key=_occurred_at)

    def _emit_stakeholders(self, plan: _Plan, rng: random.Random) -> list[StakeholderRow]:
        last = plan.last_day
        start = self.date_of(plan.first_day) if plan.first_day > 0 else plan.created
        h_end = plan.health[last]
        rows: list[StakeholderRow] = []
        roles = ["executive_sponsor", "champion", "admin"]
        roles += ["admin"] if plan.tier == "tier-1" else []
        roles += ["user"] * rng.randint(0, 2 if plan.tier == "tier-3" else 3)

        def person(role: str, joined: date, left: date | None, champion: bool) -> StakeholderRow:
            first, last_name = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
            # engagement follows health; someone who left was last seen before leaving
            ref = min(left, self.date_of(last)) if left else self.date_of(last)
            if left:
                ago = rng.randint(5, 40)
            elif h_end >= 0.7:
                ago = rng.randint(10, 80) if role == "executive_sponsor" else rng.randint(1, 35)
            elif h_end >= 0.45:
                ago = rng.randint(20, 80)
            else:
                ago = rng.randint(50, 150)
            if plan.archetype == "churned":
                ago += rng.randint(5, 30)
            engaged_on = max(joined, ref - timedelta(days=ago))
            engaged = (
                None if engaged_on >= self.as_of else datetime.combine(engaged_on, time(15), UTC)
            )
            return StakeholderRow(
                stakeholder_id=f"{plan.account_id}-S{len(rows) + 1:02d}",
                account_id=plan.account_id,
                name=f"{first} {last_name}",
                email=f"{first}.{last_name}@{plan.domain}".lower(),
                title=rng.choice(_TITLES[role]),
                role=role,
                is_champion=champion,
                joined_on=joined,
                left_on=left,
                last_engaged_at=engaged,
            )

        for role in roles:
            joined = start + timedelta(days=rng.randint(0, 30))
            if joined >= self.as_of:
                joined = self.as_of - timedelta(days=1)
            left: date | None = None
            champion = role == "champion"
            if champion:
                leave_day = self._champion_leaves(plan, rng)
                if leave_day is not None and self.date_of(leave_day) > joined:
                    left = self.date_of(leave_day)
            elif role == "executive_sponsor" and plan.archetype == "churned" and rng.random() < 0.3:
                d = rng.randint(max(plan.first_day, last - 90), last)
                left = max(joined + timedelta(days=1), self.date_of(d))
            rows.append(person(role, joined, left, champion))
            # a healthy account replaces a champion who left long ago
            if champion and left and plan.archetype in ("healthy", "expanded"):
                rows.append(person(role, left + timedelta(days=rng.randint(7, 40)), None, True))
        # The people named in the handoff keep the id record_handoff gives them
        # ('<account>:handoff:<i>'), so handing the account off after the load
        # finds them already present instead of adding duplicates.
        handoff_i = 0
        for k, row in enumerate(rows):
            if plan.archetype != "churned" and row.left_on is None:
                rows[k] = row._replace(stakeholder_id=f"{plan.account_id}:handoff:{handoff_i}")
                handoff_i += 1
        self.p.stakeholders.extend(rows)
        return rows

    def _champion_leaves(self, plan: _Plan, rng: random.Random) -> int | None:
        last = plan.last_day
        a = plan.archetype
        if a == "declining" and rng.random() < 0.65:
            return rng.randint(last - 80, last - 15)
        if a == "churned" and rng.random() < 0.75:
            return rng.randint(
                max(plan.first_day + 5, last - 120), max(plan.first_day + 5, last - 25)
            )
        if a == "renewing" and plan.at_risk and rng.random() < 0.35:
            return rng.randint(last - 120, last - 30)
        if a in ("healthy", "expanded") and rng.random() < 0.08:
            return rng.randint(60, 200)
        return None

    def _emit_tickets(self, plan: _Plan, rng: random.Random) -> None:
        aid, last = plan.account_id, plan.last_day
        rows = self.p.support_tickets
        topics = [t for t in _TICKET_TOPICS if t[0] is None or t[0] in plan.used_modules]
        base = plan.ticket_rate / 30

        counter = itertools.count(1)

        def ticket(d: int, h: float, spike: bool = False) -> None:
            opened = self.at(d, rng.randint(7, 19), rng.randint(0, 59))
            if spike:
                priority = rng.choices(["normal", "high", "urgent"], [2, 5, 3])[0]
                sentiment = rng.uniform(-0.9, -0.35)
                escalated = rng.random() < 0.45
            else:
                worse = 1 - h
                priority = rng.choices(
                    ["low", "normal", "high", "urgent"],
                    [25, 60, 12 + 25 * worse, 3 + 12 * worse],
                )[0]
                sentiment = _clamp(rng.gauss(-0.75 + 1.35 * h, 0.22), -1.0, 1.0)
                serious = priority in ("high", "urgent")
                escalated = rng.random() < (0.05 + 0.4 * worse**2 if serious else 0.01)
            hours = {"urgent": (2, 48), "high": (4, 96), "normal": (12, 240), "low": (24, 480)}[
                priority
            ]
            closed: datetime | None = opened + timedelta(hours=rng.randint(*hours))
            if (spike and rng.random() < 0.5) or closed >= self.as_of_dt:
                closed = None
            _, subject, body = rng.choice(topics)
            when = (self.date_of(d) - timedelta(days=rng.randint(0, 3))).strftime("%A")
            tone = next(text for cut, text in _TONE if sentiment < cut)
            rows.append(
                TicketRow(
                    ticket_id=f"{aid}-T{next(counter):04d}",
                    account_id=aid,
                    opened_at=opened,
                    closed_at=closed,
                    priority=priority,
                    sentiment=round(sentiment, 2),
                    escalated=escalated,
                    subject=subject,
                    body=f"{body.format(when=when, n=rng.randint(2, 30))} {tone}",
                )
            )

        for d in range(plan.first_day, last + 1):
            h = plan.health[d]
            rate = base * (1.15 if self.weekday[d] else 0.3) * (1 + 2.0 * max(0.0, 0.7 - h))
            if rng.random() < rate:
                ticket(d, h)
        if plan.archetype == "overloaded":
            extra = math.ceil(3.5 * plan.ticket_rate) + rng.randint(5, 9)
            for d in sorted(rng.choices(range(last - 27, last + 1), k=extra)):
                ticket(d, plan.health[d], spike=True)

    def _emit_invoices(self, plan: _Plan, rng: random.Random) -> None:
        aid = plan.account_id
        rows: list[InvoiceRow] = []
        per_year = {"annual": 1, "quarterly": 4, "monthly": 12}[plan.billing]
        window_start, end_all = self.day0, self.date_of(plan.last_day)
        full = [row for row, amend in plan.terms if not amend]
        amendments = [row for row, amend in plan.terms if amend]
        late_p = 0.35 if plan.archetype == "overdue" else 0.06

        def invoice(issued: date, amount: float) -> None:
            if issued < window_start or issued >= self.as_of or issued > end_all:
                return
            due = issued + timedelta(days=plan.net_days)
            paid: date | None = issued + timedelta(days=rng.randint(3, plan.net_days))
            if rng.random() < late_p:
                late = due + timedelta(days=rng.randint(5, 40))
                if late < self.as_of:
                    paid = late
            if paid is not None and paid >= self.as_of:
                paid = None
            rows.append(
                InvoiceRow(f"{aid}-INV{len(rows) + 1:03d}", aid, issued, due, paid, _money(amount))
            )

        for term in full:
            for k in range(per_year):
                issued = _add_months(term.start_date, 12 // per_year * k)
                if issued > term.end_date:
                    break
                in_force = max(
                    (a for a in amendments if term.start_date <= a.start_date <= issued),
                    key=lambda a: a.start_date,
                    default=term,
                )
                invoice(issued, float(in_force.arr) / per_year)
            for a in amendments:
                if plan.billing == "annual" and term.start_date < a.start_date <= term.end_date:
                    days_left = (term.end_date - a.start_date).days + 1
                    invoice(a.start_date, float(a.arr - term.arr) * days_left / 365)
        rows.sort(key=lambda i: i.issued_on)
        if plan.archetype == "overdue":
            # the latest 2-3 invoices that are due are unpaid
            due = [i for i, row in enumerate(rows) if row.due_on < self.as_of - timedelta(days=5)]
            for i in due[-rng.randint(2, 3) :]:
                rows[i] = rows[i]._replace(paid_on=None)
        rows = [r._replace(invoice_id=f"{aid}-INV{i + 1:03d}") for i, r in enumerate(rows)]
        self.p.invoices.extend(rows)

    def _emit_nps(self, plan: _Plan, rng: random.Random, people: list[StakeholderRow]) -> None:
        if not plan.has_nps:
            return
        aid, last = plan.account_id, plan.last_day
        n_resp = {"tier-1": 3, "tier-2": 2, "tier-3": 1}[plan.tier]
        n = 0
        for round_day in (60, 150, 240, 330):  # quarterly surveys
            if round_day < plan.first_day + 30 or round_day > last:
                continue
            when = self.date_of(round_day)
            present = [
                s.email
                for s in people
                if s.joined_on <= when and (s.left_on is None or s.left_on > when)
            ]
            present += [u.email for u in plan.users[:4] if u.created_day <= round_day]
            for respondent in rng.sample(present, min(n_resp, len(present))):
                if rng.random() > 0.7:
                    continue
                d = min(round_day + rng.randint(0, 20), last)
                score = int(_clamp(round(rng.gauss(2.5 + 7.5 * plan.health[d], 1.1)), 0, 10))
                bucket = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
                comment = rng.choice(_NPS_COMMENTS[bucket]) if rng.random() < 0.65 else None
                n += 1
                self.p.nps_responses.append(
                    NpsRow(
                        f"{aid}-N{n:03d}",
                        aid,
                        respondent,
                        self.at(d, rng.randint(8, 20), rng.randint(0, 59)),
                        score,
                        comment,
                    )
                )

    def _emit_interactions(self, plan: _Plan, rng: random.Random) -> None:
        aid, first, last = plan.account_id, plan.first_day, plan.last_day
        cadence = {"tier-1": 9, "tier-2": 16, "tier-3": 21}[plan.tier]  # days between touches
        rows = self.p.interactions
        n = 0

        def add(d: int, kind: str, meaningful: bool) -> None:
            nonlocal n
            n += 1
            plan.had_qbr = plan.had_qbr or kind == "qbr"
            attendees = {
                "email": (1, 3),
                "call": (2, 4),
                "meeting": (2, 8),
                "qbr": (4, 10),
                "kickoff": (4, 12),
                "workshop": (5, 20),
            }[kind]
            rows.append(
                InteractionRow(
                    interaction_id=f"{aid}-I{n:04d}",
                    account_id=aid,
                    occurred_at=self.at(d, rng.randint(8, 17), 15 * rng.randint(0, 3)),
                    kind=kind,
                    meaningful=meaningful,
                    attendees=rng.randint(*attendees),
                    notes=rng.choice(_INTERACTION_NOTES[kind]),
                )
            )

        if plan.archetype == "onboarding":
            add(first + 2, "kickoff", True)
            for k in (10, 24, 40):
                if first + k <= last:
                    add(first + k, "workshop", True)
        cold_from = None if plan.decline_from is None else plan.decline_from + 10
        for d in range(first, last + 1):
            if not self.weekday[d]:
                continue
            h = plan.health[d]
            if self.date_of(d).day == 5 and self.date_of(d).month in (1, 4, 7, 10):
                warm = cold_from is None or d < cold_from
                if plan.tier != "tier-3" and h > 0.5 and d > first + 60 and warm:
                    add(d, "qbr", True)
                continue
            if rng.random() >= (0.5 + 0.7 * h) / cadence / 0.71:  # /0.71: weekdays only
                continue
            kind = rng.choices(["email", "call", "meeting"], [4, 3, 3])[0]
            if cold_from is not None and d >= cold_from:
                # the customer stops taking meetings: only outreach that goes nowhere
                add(d, rng.choice(["email", "call"]), False)
                continue
            chance = {"email": 0.15, "call": 0.25 + 0.5 * h, "meeting": 0.35 + 0.6 * h}[kind]
            add(d, kind, rng.random() < chance)

    def _emit_tam(self, plan: _Plan, rng: random.Random) -> None:
        if not plan.has_tam:
            return
        step = 14 if plan.tier == "tier-3" else 7
        days = list(range(plan.first_day + rng.randint(0, step - 1), plan.last_day + 1, step))
        for i, d in enumerate(days):
            h = plan.health[d]
            score = int(_clamp(round(rng.gauss(28 + 67 * h, 3.5)), 0, 100))
            rag = "GREEN" if score >= 70 else "AMBER" if score >= 50 else "RED"
            if plan.archetype == "overloaded" and i >= len(days) - 3:
                escalation = True
            else:
                escalation = rng.random() < (0.01 if h > 0.6 else 0.12 if h > 0.4 else 0.3)
            self.p.tam_health.append(
                TamHealthRow(
                    plan.account_id,
                    self.at(d, 9),
                    score,
                    rag,
                    escalation,
                    rng.choice(_TAM_NOTES[rag]),
                )
            )

    # ---------------------------------------------------------- bad rows
    def _plant_bad_rows(self, plans: list[_Plan]) -> None:
        """Impossible values on three healthy accounts, for the data-quality path."""
        healthy = sorted((p for p in plans if p.archetype == "healthy"), key=lambda p: p.account_id)
        a = healthy[0]
        b = healthy[1]
        c = next((p for p in healthy[2:] if p.has_tam), healthy[2])
        last = HISTORY_DAYS - 1
        bad = self.p.bad_rows

        t = TicketRow(
            f"{a.account_id}-T9001", a.account_id, self.at(last - 4, 11, 7), None, "normal", 3.5,
            False, "Export button greyed out", "The export button is greyed out for our analysts.",
        )  # fmt: skip
        self.p.support_tickets.append(t)
        bad.append(
            BadRow("support_tickets", a.account_id, t.ticket_id, "sentiment 3.5 outside -1..1")
        )

        u = UsageEventRow(
            a.account_id, a.users[0].user_id, self.at(last - 2, 12, 7), "core.search", -3
        )
        self.usage[a.account_id].append(u)
        self.usage[a.account_id].sort(key=_occurred_at)
        bad.append(
            BadRow(
                "usage_events",
                a.account_id,
                f"{u.user_id}@{u.occurred_at.isoformat()}",
                "negative quantity -3",
            )
        )

        n = NpsRow(
            f"{b.account_id}-N901",
            b.account_id,
            b.users[0].email,
            self.at(last - 9, 14, 7),
            14,
            "Great!",
        )
        self.p.nps_responses.append(n)
        bad.append(BadRow("nps_responses", b.account_id, n.response_id, "score 14 outside 0..10"))

        tam = TamHealthRow(
            c.account_id,
            self.at(last - 1, 13, 7),
            140,
            "GREEN",
            False,
            "Scored on the wrong scale.",
        )
        self.p.tam_health.append(tam)
        bad.append(
            BadRow(
                "tam_health", c.account_id, tam.measured_at.isoformat(), "score 140 outside 0..100"
            )
        )


def generate_portfolio(
    seed: int = 7, as_of: date = DEFAULT_AS_OF, n_accounts: int = 240
) -> Portfolio:
    """The demo portfolio for (seed, as_of, n_accounts); pure and deterministic."""
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    # Millions of small tuples and no reference cycles: the cyclic GC would
    # rescan the growing heap again and again (about 40% of the run time).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Generator(seed, as_of, n_accounts).run()
    finally:
        if was_enabled:
            gc.enable()


def iter_rows(portfolio: Portfolio) -> Iterator[tuple[str, Any]]:
    """(table, row) for every telemetry row: handy for whole-portfolio checks."""
    for table, rows in portfolio.tables().items():
        for row in rows:
            yield table, row
