"""Generated worlds with different ground truth, for proving rules on data they were not tuned on.

The demo portfolio (``demo/portfolio.py``) plants outcomes by archetype, shaped by the same
ideas the default rules encode, so scoring it proves little about the rules. A *world* here
is instead a small causal simulation: every account has latent state (engagement,
satisfaction, size, a champion, payment trouble) that evolves week by week; churn and
expansion happen by a per-week hazard that depends on that state *the way the world says*;
and the facts a CS platform would see (``AccountFacts``: seats used, logins, tickets, NPS,
meetings, invoices, ...) are noisy readings of the state, with the confounders real
portfolios have. Two worlds disagree on what drives churn:

- ``product_led``: churn is decided at renewal (notices come in the 13 weeks before the term
  ends) by product engagement: seat utilization, logins, adoption and a usage decline warn;
  relationship signals are noise.
- ``relationship_led``: churn is spread over the year and follows the relationship: a
  champion who left, falling satisfaction (NPS, stakeholder engagement), overdue invoices,
  escalations. Its confounders point familiar signals the wrong way: large accounts buy
  seats wall-to-wall (low utilization) yet churn least; CSMs meet the accounts they already
  worry about (a recent meeting comes before churn). Engaged customers also file more
  low-priority tickets, which a raw ticket count would misread; the support signal's
  ratio to the account's own baseline cancels it.

``World.truth`` names, per signal, the direction the world built in, so a test can check that
calibration recovers it. Pure and deterministic: ``random.Random(seed)``, no clock, no I/O.
The facts are generated directly (not as telemetry rows): the SQL that turns rows into facts
is tested on its own (tests/integration/test_telemetry_sql.py).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from domain.backtest import Outcome
from domain.config import DEFAULT_CONFIG, HealthConfig
from domain.facts import AccountFacts, ContractFacts, Windows

WorldName = Literal["product_led", "relationship_led"]
Truth = Literal["protective", "anti-predictive", "none"]
WORLDS: tuple[WorldName, ...] = ("product_led", "relationship_led")

_WARMUP_WEEKS = 30  # history before the first observation, so 180-day windows are full


def _clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo if x < lo else hi if x > hi else x


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@dataclass
class _Account:
    account_id: str
    seats: int
    size_z: float  # standardized log seats
    price: float
    modules: list[str]
    term_start: date
    n_stakeholders: int
    has_sponsor: bool
    # weekly series, index = week since origin
    engagement: list[float] = field(default_factory=list)
    satisfaction: list[float] = field(default_factory=list)
    util: list[float] = field(default_factory=list)
    champion: list[bool] = field(default_factory=list)
    overdue_since: list[int | None] = field(default_factory=list)  # week an unpaid invoice fell due
    tickets: list[int] = field(default_factory=list)
    escalated: list[int] = field(default_factory=list)
    sentiment: list[float] = field(default_factory=list)
    meetings: list[int] = field(default_factory=list)  # weeks with a meaningful meeting
    nps: list[tuple[int, int]] = field(default_factory=list)  # (week, score)
    champion_left: list[int] = field(default_factory=list)  # weeks a champion left
    churned_week: int | None = None
    expanded_week: int | None = None
    seats_after: int | None = None


@dataclass
class World:
    name: WorldName
    origin: date  # week 0
    observe_from: date
    observe_to: date
    accounts: list[_Account]
    truth: dict[str, Truth]
    config: HealthConfig

    def week_of(self, d: date) -> int:
        return (d - self.origin).days // 7

    def date_of(self, week: int) -> date:
        return self.origin + timedelta(weeks=week)

    def dates(self, every_days: int = 14) -> list[date]:
        out, d = [], self.observe_from
        while d <= self.observe_to:
            out.append(d)
            d += timedelta(days=every_days)
        return out

    @property
    def outcomes(self) -> dict[str, Outcome]:
        """Churn dated when it became known (the notice); expansion when it was signed."""
        return {
            a.account_id: Outcome(
                churned_on=None if a.churned_week is None else self.date_of(a.churned_week),
                expanded_on=None if a.expanded_week is None else self.date_of(a.expanded_week),
            )
            for a in self.accounts
            if a.churned_week is not None or a.expanded_week is not None
        }

    def facts_at(self, d: date) -> Iterator[AccountFacts]:
        """Facts of every account still a customer on ``d`` (no notice yet), as of ``d``."""
        t = self.week_of(d)
        for a in self.accounts:
            if a.churned_week is not None and a.churned_week <= t:
                continue
            yield _facts(self, a, d, t)


# ------------------------------------------------------------------ simulation


def _module_set(rng: random.Random, config: HealthConfig) -> list[str]:
    optional = sorted(m for m in config.catalogue if m != "core")
    return ["core", *sorted(rng.sample(optional, rng.randint(1, min(3, len(optional)))))]


def _term_containing(a: _Account, d: date) -> tuple[date, date]:
    start = a.term_start
    while start + timedelta(days=365) <= d:
        start += timedelta(days=365)
    return start, start + timedelta(days=365)


def generate_world(
    name: WorldName,
    seed: int = 1,
    n_accounts: int = 600,
    observe_from: date = date(2024, 1, 1),
    weeks: int = 104,
    config: HealthConfig = DEFAULT_CONFIG,
) -> World:
    """Simulate ``n_accounts`` for ``weeks`` weeks of observation (plus a warm-up)."""
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}; known: {', '.join(WORLDS)}")
    rng = random.Random(f"{name}:{seed}")
    origin = observe_from - timedelta(weeks=_WARMUP_WEEKS)
    total = _WARMUP_WEEKS + weeks
    accounts: list[_Account] = []
    for i in range(n_accounts):
        log_seats = rng.uniform(math.log(10), math.log(400))
        seats = round(math.exp(log_seats))
        a = _Account(
            account_id=f"{name[:3]}-{i:04d}",
            seats=seats,
            size_z=(log_seats - (math.log(10) + math.log(400)) / 2) / 1.06,
            price=float(rng.choice((300, 450, 600, 750, 900))),
            modules=_module_set(rng, config),
            term_start=origin - timedelta(days=rng.randrange(0, 365)),
            n_stakeholders=rng.randint(2, 6),
            has_sponsor=rng.random() < 0.7,
        )
        _simulate(a, name, rng, total, origin)
        accounts.append(a)
    truth: dict[str, Truth] = {s: "none" for s in config.weights}
    if name == "product_led":
        for s in ("seat_utilization", "login_frequency", "usage_trend", "feature_adoption"):
            truth[s] = "protective"
        truth["renewal_proximity"] = "protective"  # churn becomes known near renewal
    else:
        for s in ("stakeholder_engagement", "nps", "invoice_status", "escalations"):
            truth[s] = "protective"
        # Engaged customers file more tickets here, but the support signal compares recent
        # tickets with the account's own baseline, so that confounder cancels out: no
        # direction is claimed for it.
        for s in ("seat_utilization", "last_interaction"):
            truth[s] = "anti-predictive"
    return World(
        name=name,
        origin=origin,
        observe_from=observe_from,
        observe_to=observe_from + timedelta(weeks=weeks) - timedelta(days=1),
        accounts=accounts,
        truth=truth,
        config=config,
    )


def _simulate(a: _Account, world: WorldName, rng: random.Random, total: int, origin: date) -> None:
    product = world == "product_led"
    mu_e = rng.uniform(0.35, 0.95)
    mu_s = rng.uniform(0.4, 0.9)
    e, s = mu_e, mu_s
    champion = rng.random() < 0.8
    champion_back_at: int | None = None
    overdue_since: int | None = None
    declining = 0
    for t in range(total):
        # engagement: mean-reverting, with lasting declines that start at random
        if declining == 0 and rng.random() < 0.006:
            declining = rng.randint(6, 16)
        if declining > 0:
            mu_e = max(0.05, mu_e - 0.02)
            declining -= 1
        e = _clamp(mu_e + 0.7 * (e - mu_e) + rng.gauss(0, 0.05))
        # champion departures (and replacements, months later)
        if champion and rng.random() < 0.006:
            champion = False
            a.champion_left.append(t)
            champion_back_at = t + rng.randint(10, 40)
            if not product:
                mu_s = max(0.05, mu_s - 0.25)
        elif not champion and champion_back_at is not None and t >= champion_back_at:
            champion, champion_back_at = True, None
        # payment trouble: an invoice that stays unpaid for weeks
        if overdue_since is None and rng.random() < 0.006:
            overdue_since = t
            if not product:
                mu_s = max(0.05, mu_s - 0.1)
        elif overdue_since is not None and rng.random() < 0.12:
            overdue_since = None
        s = _clamp(mu_s + 0.75 * (s - mu_s) + rng.gauss(0, 0.05))
        if product:
            util = _clamp(0.1 + 0.85 * e + rng.gauss(0, 0.04))
        else:
            # large accounts buy wall-to-wall: low utilization, yet they churn least
            util = _clamp(0.75 - 0.22 * a.size_z + 0.1 * (e - 0.5) + rng.gauss(0, 0.04))
        weekly_rate = a.seats / 120
        if product:
            lam = weekly_rate * (0.4 + 1.2 * (1 - s))
            escalated = sum(1 for _ in range(_poisson(rng, lam)) if rng.random() < 0.03)
        else:
            # satisfied, engaged customers ask more (low priority); trouble escalates
            lam = weekly_rate * (0.1 + 3.0 * s)
            escalated = _poisson(rng, 0.02 + 0.3 * (1 - s) ** 2)
        n = _poisson(rng, lam) + escalated
        # product-led: tickets are complaints; relationship-led: mostly friendly questions
        mood = (2 * s - 1) * 0.8 if product else 0.2
        sentiment = _clamp(mood + rng.gauss(0, 0.2), -1, 1)
        meet_p = 0.18 if product else 0.04 + 0.6 * (1 - s) ** 2  # CSMs meet the worrying ones
        if rng.random() < meet_p:
            a.meetings.append(t)
        if t % 13 == int(a.account_id[-4:]) % 13 and rng.random() < 0.6:
            a.nps.append((t, round(_clamp(10 * s + rng.gauss(0, 1.2), 0, 10))))
        a.engagement.append(e)
        a.satisfaction.append(s)
        a.util.append(util)
        a.champion.append(champion)
        a.overdue_since.append(overdue_since)
        a.tickets.append(n)
        a.escalated.append(escalated)
        a.sentiment.append(sentiment)
        if t < _WARMUP_WEEKS:
            continue
        # expansion: sustained high utilization leads to more seats
        if a.expanded_week is None and t >= 5 and min(a.util[t - 4 :]) > 0.8:
            if rng.random() < 0.05:
                a.expanded_week = t
                a.seats_after = max(a.seats + 1, round(a.seats * 1.25))
        # churn hazard, by the world's own causes
        d = origin + timedelta(weeks=t)
        if product:
            _, end = _term_containing(a, d)
            weeks_left = (end - d).days / 7
            if weeks_left > 13:
                continue
            decline = max(0.0, a.engagement[t - 8] - e)
            x = -5.0 + 5.0 * (0.55 - util) + 8.0 * decline
        else:
            recent_left = any(t - w <= 26 for w in a.champion_left)
            recent_esc = sum(a.escalated[max(0, t - 26) : t + 1])
            x = (
                -6.3
                + 1.6 * recent_left
                + 4.5 * (0.6 - s)
                + 1.3 * (overdue_since is not None and t - overdue_since >= 4)
                + 0.35 * min(recent_esc, 4)
                - 0.8 * a.size_z
            )
        if rng.random() < _sigmoid(x):
            a.churned_week = t
            return


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


# ----------------------------------------------------------------------- facts


def _facts(w: World, a: _Account, d: date, t: int) -> AccountFacts:
    """What a CS platform would see on ``d``: readings of weeks up to ``t - 1`` only."""
    cfg = w.config
    windows: Windows = cfg.windows
    rng = random.Random(f"{a.account_id}:{t}")
    last = t - 1  # the week that just ended
    expanded = a.expanded_week is not None and a.expanded_week <= last
    seats = a.seats_after if expanded and a.seats_after else a.seats
    start, end = _term_containing(a, d)

    def active(week: int) -> int:
        return max(0, round(a.seats * a.util[week] + rng.gauss(0, 0.5)))

    now_users, prev_users = active(last), active(last - 4)
    intensity = 20 + 10 * a.engagement[last]
    e_now = a.engagement[last]
    login_days = round(30 * _clamp(0.1 + 0.8 * e_now + rng.gauss(0, 0.05)))
    adoption_users = max(now_users, round(now_users * 1.15))
    feature_users: dict[str, int] = {}
    for module, f in cfg.features():
        if module in a.modules:
            share = _clamp(f.benchmark * (0.3 + 1.2 * e_now) + rng.gauss(0, 0.05))
            feature_users[f.event_type] = round(adoption_users * share)
    tickets_recent = sum(a.tickets[last - 3 : last + 1])
    baseline_weeks = a.tickets[last - 29 : last - 3]
    tickets_baseline = sum(baseline_weeks) / (len(baseline_weeks) * 7 / windows.ticket_days)
    recent_sent = a.sentiment[last - 3 : last + 1]
    esc = sum(a.escalated[last - 25 : last + 1])
    meetings = [m for m in a.meetings if m <= last]
    last_meeting = (
        datetime.combine(w.date_of(meetings[-1]) + timedelta(days=2), datetime.min.time(), UTC)
        if meetings
        else None
    )
    s_now = a.satisfaction[last]
    engaged = sum(1 for _ in range(a.n_stakeholders) if rng.random() < _clamp(0.15 + 0.85 * s_now))
    left = [wk for wk in a.champion_left if wk <= last]
    nps = [(wk, sc) for wk, sc in a.nps if wk <= last and (last - wk) * 7 <= windows.nps_days]
    od = a.overdue_since[last]
    invoices_total = max(1, (d - a.term_start).days // 91)
    as_of = datetime.combine(d, datetime.min.time(), UTC)
    return AccountFacts(
        account_id=a.account_id,
        as_of=as_of,
        name=a.account_id,
        windows=windows,
        contract=ContractFacts(
            start_date=start,
            end_date=end,
            arr=seats * a.price,
            seats_purchased=seats,
            price_per_seat=a.price,
            licensed_modules=a.modules,
        ),
        active_users=now_users,
        active_users_prev=prev_users,
        usage_quantity=float(now_users * intensity),
        usage_quantity_prev=float(prev_users * (20 + 10 * a.engagement[last - 4])),
        logins=login_days * max(1, now_users // 2),
        login_days=login_days,
        weekly_active_users=[active(wk) for wk in range(last - 11, last + 1)],
        max_gap_days=1 if now_users else windows.adoption_days,
        feature_users=feature_users,
        adoption_users=adoption_users,
        module_usage={m: float(now_users * intensity) for m in a.modules},
        limit_hits={},
        provisioned_users=max(now_users, round(a.seats * _clamp(a.util[last] + 0.08))),
        tickets_recent=tickets_recent,
        tickets_baseline=round(tickets_baseline, 2),
        ticket_sentiment_recent=sum(recent_sent) / len(recent_sent) if tickets_recent else None,
        urgent_open=0,
        escalations=esc,
        any_tickets_ever=True,
        last_meaningful_interaction_at=last_meeting,
        stakeholders_active=a.n_stakeholders,
        stakeholders_engaged=engaged,
        champion_active=a.champion[last],
        champion_left_on=w.date_of(left[-1]) if left else None,
        exec_sponsor_active=a.has_sponsor,
        nps_latest=nps[-1][1] if nps else None,
        nps_latest_at=(
            datetime.combine(w.date_of(nps[-1][0]), datetime.min.time(), UTC) if nps else None
        ),
        nps_mean=sum(sc for _, sc in nps) / len(nps) if nps else None,
        nps_responses=len(nps) if nps else None,
        invoices_open_overdue=1 if od is not None else 0,
        overdue_amount=round(seats * a.price / 4, 2) if od is not None else None,
        max_days_overdue=(last - od) * 7 + 3 if od is not None else None,
        invoices_total=invoices_total,
    )
