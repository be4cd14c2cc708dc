"""The Quarterly Business Review: four sections built from snapshots, findings and usage.

Pure: ``QbrData`` is gathered by ``activities/qbr.py``; ``build_qbr`` turns it
into a ``QbrDocument`` with the four sections of seed 001:

1. Account Health Summary: score history, band trend, the signals that moved it.
2. ROI & Business Impact: value delivered, as defensible proxies from telemetry
   (units of work x minutes saved per unit x loaded hourly cost, all in
   ``QbrConfig`` and printed as assumptions on the page).
3. Feature Adoption Scorecard: features used, adoption rate vs benchmark,
   under-used features with recommendations.
4. Expansion & Next Steps: expansion signals with ARR impact, renewal timing,
   ordered next steps.

Each section has metrics, a table, bullets and a narrative slot (2-3
sentences) filled by the deterministic template at build time; the QBR
workflow may replace it with model narratives through ``apply_narratives``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field, field_validator

from domain.delivery import (
    DeliveryMetric,
    DeliveryRequest,
    DeliverySection,
    DeliveryTable,
    render_sections_markdown,
)
from domain.facts import ContractFacts as ContractInfo
from domain.health import UNSCORED, a_or_an, fmt_money, fmt_pct
from domain.narrative import (
    FACTS_MODELS,
    AnyFacts,
    FactsModel,
    NarrativeOutput,
    QbrAdoptionFacts,
    QbrExpansionFacts,
    QbrHealthFacts,
    QbrRoiFacts,
    render_template,
)
from domain.onboarding import CriterionStatus

QbrReason = Literal["quarterly", "pre_renewal"]
SectionKey = Literal["health", "roi", "adoption", "expansion"]
SECTION_PURPOSES: dict[str, str] = {
    "health": "qbr_health_summary",
    "roi": "qbr_roi_impact",
    "adoption": "qbr_adoption_scorecard",
    "expansion": "qbr_expansion_next_steps",
}
BAND_ICONS = {"GREEN": "🟢", "AMBER": "🟠", "RED": "🔴"}


class QbrRequest(BaseModel):
    account_id: str
    quarter_label: str = Field(pattern=r"^\d{4}-Q[1-4]$", description='e.g. "2026-Q4"')
    as_of: datetime
    reason: QbrReason = "quarterly"
    window_days: int = Field(default=90, ge=7, le=366)


# ------------------------------------------------------------------ config


class ValueDriver(BaseModel):
    """One unit of work the product does for the customer, and the time it saves."""

    event_type: str
    label: str  # e.g. "Automation runs"
    unit: str  # plural, e.g. "runs"
    per: str  # singular, e.g. "run"
    minutes_per_unit: float = Field(gt=0)


DEFAULT_VALUE_DRIVERS = [
    ValueDriver(
        event_type="automation.run",
        label="Automation runs",
        unit="runs",
        per="run",
        minutes_per_unit=15,
    ),
    ValueDriver(
        event_type="reports.export",
        label="Reports exported",
        unit="exports",
        per="export",
        minutes_per_unit=20,
    ),
    ValueDriver(
        event_type="reports.schedule",
        label="Scheduled report deliveries",
        unit="deliveries",
        per="delivery",
        minutes_per_unit=30,
    ),
    ValueDriver(
        event_type="integrations.sync",
        label="Integration syncs",
        unit="syncs",
        per="sync",
        minutes_per_unit=5,
    ),
    ValueDriver(
        event_type="dashboards.share",
        label="Dashboards shared",
        unit="shares",
        per="share",
        minutes_per_unit=10,
    ),
    ValueDriver(
        event_type="api.webhook",
        label="Webhook deliveries",
        unit="webhooks",
        per="webhook",
        minutes_per_unit=2,
    ),
]

DEFAULT_PLAYS = {
    "core": "Run a 30-minute refresher on {label} inside the team's weekly workflow",
    "reports": "Walk the admin through {label} for the reports the team still builds by hand",
    "dashboards": "Agree one shared dashboard for the weekly team meeting ({label})",
    "automation": "Build two starter automations with the admin in a 45-minute workshop ({label})",
    "api": "Review the integration roadmap with their engineers ({label})",
    "integrations": "Connect the system they copy data from most often ({label})",
}


class QbrConfig(BaseModel):
    # Loaded cost of an hour of the customer's staff.
    hourly_cost_usd: float = Field(default=60.0, gt=0)
    value_drivers: list[ValueDriver] = Field(default_factory=lambda: list(DEFAULT_VALUE_DRIVERS))
    # A feature is under-used below this share of its benchmark.
    underused_share: float = Field(default=0.75, gt=0, le=1)
    plays: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PLAYS))
    expansion_seat_utilization: float = 0.9


# -------------------------------------------------------------------- data


class ScorePoint(BaseModel):
    as_of: datetime
    score: float | None
    band: str | None
    churn_risk: str | None = None


class FeatureBenchmark(BaseModel):
    module: str
    event_type: str
    label: str
    benchmark: float  # share of active users expected to use it


class FeatureUse(BaseModel):
    event_type: str
    users: int
    quantity: float


class FindingInfo(BaseModel):
    kind: str
    severity: str
    title: str
    as_of: datetime
    dollar_impact: float | None = None
    evidence: list[str] = Field(default_factory=list)
    play: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)  # the finding's typed metrics, dumped


class OpportunityInfo(BaseModel):
    opportunity_type: str  # seats | module | integration
    title: str
    estimated_arr_impact: float | None = None
    evidence: list[str] = Field(default_factory=list)


class QbrData(BaseModel):
    account_id: str
    account_name: str
    tier: str | None = None
    csm_owner: str | None = None
    csm_email: str | None = None
    rep_owner: str | None = None
    rep_email: str | None = None
    quarter_label: str
    reason: QbrReason = "quarterly"
    as_of: datetime
    period_start: datetime
    contract: ContractInfo | None = None
    # Oldest first; may start before the period (the score at its start).
    score_history: list[ScorePoint] = Field(default_factory=list)
    drivers: list[str] = Field(default_factory=list)  # the latest snapshot's drivers, in words
    active_users: int | None = None  # distinct users in the period
    # The latest snapshot's seat utilization figure and its window: what every
    # "N of M seats active" in the QBR states (the same number the Muda play uses).
    seat_active_users: int | None = None
    seat_window_days: int | None = None
    active_users_prev: int | None = None  # the period before
    provisioned_users: int | None = None
    feature_use: list[FeatureUse] = Field(default_factory=list)
    catalogue: list[FeatureBenchmark] = Field(default_factory=list)
    module_labels: dict[str, str] = Field(default_factory=dict)  # e.g. {"api": "API"}
    findings: list[FindingInfo] = Field(default_factory=list)
    opportunities: list[OpportunityInfo] = Field(default_factory=list)
    tickets_opened: int | None = None
    tickets_escalated: int | None = None
    ticket_sentiment: float | None = None
    nps_mean: float | None = None
    nps_responses: int | None = None
    tam_score: int | None = None
    tam_rag: str | None = None
    stakeholders: list[str] = Field(default_factory=list)  # "Name (title, role)"
    config: QbrConfig = Field(default_factory=QbrConfig)

    @property
    def period_days(self) -> int:
        return max(1, (self.as_of - self.period_start).days)


# ---------------------------------------------------------------- document


class QbrMetric(BaseModel):
    label: str
    value: str


class QbrTable(BaseModel):
    columns: list[str]
    rows: list[list[str]] = Field(default_factory=list)


class QbrSection(BaseModel):
    key: SectionKey
    purpose: str  # the narrative purpose of this section, e.g. "qbr_roi_impact"
    title: str
    headline: str
    narrative: list[str]  # 2-3 sentences (one paragraph)
    narrative_generated_by: Literal["model", "template"] = "template"
    narrative_note: str | None = None
    metrics: list[QbrMetric] = Field(default_factory=list)
    table: QbrTable | None = None
    bullets: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    facts: AnyFacts  # what the narrative may say (input of write_narrative)

    @field_validator("facts", mode="before")
    @classmethod
    def _legacy_facts(cls, v: Any) -> Any:
        """A QbrDocument recorded before typed facts (``metrics`` dict) still decodes, so a
        QBR in flight during an upgrade, and its recorded history, replay."""
        if not isinstance(v, dict) or "metrics" not in v:
            return v
        v = dict(v)
        metrics = v.pop("metrics") or {}
        model = FACTS_MODELS[v["purpose"]]
        for k, x in metrics.items():
            k = {"renewal_days": "days_to_renewal"}.get(k, k)
            if k in model.model_fields and model.metric_fields().count(k):
                v[k] = x
        if model is QbrRoiFacts:
            v.setdefault("period_days", 90)
        return v


class QbrDocument(BaseModel):
    account_id: str
    account_name: str
    quarter_label: str
    reason: QbrReason
    as_of: datetime
    period_start: datetime
    title: str
    summary: str  # the one line at the top
    band: str | None = None
    score: float | None = None
    days_to_renewal: int | None = None
    sections: list[QbrSection]
    assumptions: list[str] = Field(default_factory=list)
    # The approved CS plan's success criteria as of the account's last scan (value proof).
    plan_criteria: list[CriterionStatus] = Field(default_factory=list)

    def section(self, key: str) -> QbrSection:
        return next(s for s in self.sections if s.key == key)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def markdown(self) -> str:
        """The whole page as Markdown (what the outbox writes)."""
        return render_qbr_markdown(self)


# ------------------------------------------------------------------ format


_money = fmt_money
_pct = fmt_pct


def _num(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() or abs(x) >= 100 else f"{x:,.1f}"


def _day(d: datetime | date) -> str:
    return d.strftime("%Y-%m-%d")


def _signed(x: float) -> str:
    return f"{x:+.0f}"


# ------------------------------------------------------------------- build


def build_qbr(data: QbrData) -> QbrDocument:
    sections = [_health(data), _roi(data), _adoption(data), _expansion(data)]
    sections = [_with_template(s) for s in sections]
    latest = _latest(data)
    title = f"{data.account_name}: {'Pre-renewal ' if data.reason == 'pre_renewal' else ''}QBR {data.quarter_label}"
    parts = []
    if latest and latest.band == UNSCORED:
        # Too little data for a band: its score is for analysts, not a health figure to quote.
        parts.append("Health UNSCORED (too little data)")
    elif latest and latest.score is not None:
        parts.append(
            f"Health {latest.score:.0f}/100" + (f" ({latest.band})" if latest.band else "")
        )
    roi = sections[1].facts
    if isinstance(roi, QbrRoiFacts) and roi.value_usd is not None:
        parts.append(f"about {_money(roi.value_usd)} of value delivered")
    ad = sections[2].facts
    if isinstance(ad, QbrAdoptionFacts) and ad.features_tracked:
        parts.append(f"{ad.features_at_benchmark}/{ad.features_tracked} features at benchmark")
    days = _renewal_days(data)
    if days is not None:
        parts.append(f"renewal in {days} days")
    return QbrDocument(
        account_id=data.account_id,
        account_name=data.account_name,
        quarter_label=data.quarter_label,
        reason=data.reason,
        as_of=data.as_of,
        period_start=data.period_start,
        title=title,
        summary=" · ".join(parts) or f"Review of {data.period_days} days to {_day(data.as_of)}",
        band=latest.band if latest else None,
        score=latest.score if latest else None,
        days_to_renewal=days,
        sections=sections,
        assumptions=_assumptions(data),
    )


def _with_template(s: QbrSection) -> QbrSection:
    out = render_template(s.facts)
    return s.model_copy(
        update={
            "headline": out.headline,
            "narrative": out.paragraphs,
            "narrative_generated_by": "template",
            "narrative_note": out.note,
        }
    )


def apply_narratives(
    doc: QbrDocument, narratives: Mapping[str, NarrativeOutput | Mapping[str, Any]]
) -> QbrDocument:
    """Replace section narratives (keyed by section key or purpose) with e.g. model ones.

    Accepts ``write_narrative`` results as models or as the dicts a workflow
    gets with ``result_type=dict``.
    """
    sections = []
    for s in doc.sections:
        raw = narratives.get(s.key) or narratives.get(SECTION_PURPOSES[s.key])
        if raw is None:
            sections.append(s)
            continue
        n = (
            raw
            if isinstance(raw, NarrativeOutput)
            else NarrativeOutput.model_validate(dict(raw), strict=False)
        )
        sections.append(
            s.model_copy(
                update={
                    "headline": n.headline,
                    "narrative": n.paragraphs,
                    "narrative_generated_by": n.generated_by,
                    "narrative_note": n.note,
                }
            )
        )
    return doc.model_copy(update={"sections": sections})


def narrative_facts(doc: QbrDocument) -> dict[str, FactsModel]:
    """Section key -> the facts to send to ``write_narrative`` (one call per section)."""
    return {s.key: s.facts for s in doc.sections}


def _common(data: QbrData, evidence: list[str], actions: list[str]) -> dict[str, Any]:
    """The fields every QBR section's facts share."""
    return {
        "account_id": data.account_id,
        "account_name": data.account_name,
        "as_of": _day(data.as_of),
        "csm_name": data.csm_owner,
        "stakeholders": data.stakeholders[:4],
        "evidence": evidence,
        "recommended_actions": actions,
    }


def _latest(data: QbrData) -> ScorePoint | None:
    pts = [p for p in data.score_history if p.as_of <= data.as_of and p.score is not None]
    return pts[-1] if pts else None


def _start(data: QbrData) -> ScorePoint | None:
    """The score at the start of the period: the last point at or before it, else the first in it."""
    before = [p for p in data.score_history if p.as_of <= data.period_start and p.score is not None]
    if before:
        return before[-1]
    inside = [p for p in data.score_history if p.score is not None]
    return inside[0] if inside else None


def _renewal_days(data: QbrData) -> int | None:
    if data.contract is None:
        return None
    return (data.contract.end_date - data.as_of.date()).days


def _history_rows(data: QbrData) -> list[list[str]]:
    """At most one row per month (the month's last point) plus the latest: a readable trend."""
    pts = [
        p
        for p in data.score_history
        if p.score is not None and p.as_of >= data.period_start - timedelta(days=1)
    ]
    by_month: dict[str, ScorePoint] = {}
    for p in pts:
        by_month[p.as_of.strftime("%Y-%m")] = p
    chosen = list(by_month.values())
    start = _start(data)
    # The period's first point opens the table unless its day already has a row (two scans
    # on one day would show as two rows of the same date with different scores).
    if start is not None and (not chosen or start.as_of.date() < chosen[0].as_of.date()):
        chosen.insert(0, start)
    return [
        [_day(p.as_of), f"{p.score:.0f}", p.band or "", p.churn_risk or ""] for p in chosen[-8:]
    ]


def _band_trend(data: QbrData) -> str | None:
    bands: list[str] = []
    start = _start(data)
    pts = ([start] if start else []) + [
        p for p in data.score_history if p.as_of > data.period_start
    ]
    for p in pts:
        if p.band and (not bands or bands[-1] != p.band):
            bands.append(p.band)
    return " → ".join(bands) if bands else None


def _snapshots(data: QbrData) -> int:
    """Scored snapshots a trend over the period can be read from (the start point included)."""
    start = _start(data)
    inside = [
        p
        for p in data.score_history
        if data.period_start < p.as_of <= data.as_of and p.score is not None
    ]
    return len(inside) + (1 if start is not None and start not in inside else 0)


def _health(data: QbrData) -> QbrSection:
    latest, start = _latest(data), _start(data)
    snapshots = _snapshots(data)
    facts = QbrHealthFacts(**_common(data, list(data.drivers[:4]), []), snapshots=snapshots)
    shown: list[QbrMetric] = []
    if latest is not None and latest.score is not None:
        facts.score = round(latest.score, 1)
        shown.append(QbrMetric(label="Health score", value=f"{latest.score:.0f}/100"))
        facts.band = latest.band
    if (
        start is not None
        and start.score is not None
        and latest is not None
        and latest.score is not None
        and snapshots >= 2
    ):
        facts.score_start = round(start.score, 1)
        facts.band_prev = start.band
        shown.append(
            QbrMetric(
                label="Change over the period",
                value=f"{_signed(latest.score - start.score)} points (from {start.score:.0f})",
            )
        )
    trend = _band_trend(data)
    if trend:
        shown.append(QbrMetric(label="Band trend", value=trend))
    if latest is not None and latest.churn_risk:
        shown.append(QbrMetric(label="Risk level", value=latest.churn_risk))
    if data.tam_score is not None:
        facts.tam_score = data.tam_score
        shown.append(
            QbrMetric(
                label="Technical (TAM) health",
                value=f"{data.tam_score}/100" + (f" {data.tam_rag}" if data.tam_rag else ""),
            )
        )
    if data.tickets_opened is not None:
        shown.append(
            QbrMetric(
                label="Support tickets in the period",
                value=f"{data.tickets_opened}"
                + (f" ({data.tickets_escalated} escalated)" if data.tickets_escalated else ""),
            )
        )
    if data.nps_mean is not None and data.nps_responses:
        shown.append(
            QbrMetric(
                label="NPS (mean score)",
                value=f"{data.nps_mean:.1f} from {data.nps_responses} responses",
            )
        )
    bullets = list(data.drivers[:4])
    rows = _history_rows(data)
    return QbrSection(
        key="health",
        purpose=SECTION_PURPOSES["health"],
        title="Account Health Summary",
        headline="",
        narrative=[],
        metrics=shown,
        table=QbrTable(columns=["Date", "Score", "Band", "Risk"], rows=rows) if rows else None,
        bullets=bullets,
        facts=facts,
    )


def _roi(data: QbrData) -> QbrSection:
    use = {f.event_type: f for f in data.feature_use}
    rows, bullets, evidence = [], [], []
    total_minutes = 0.0
    contributions: list[tuple[float, str]] = []
    for d in data.config.value_drivers:
        f = use.get(d.event_type)
        if f is None or f.quantity <= 0:
            continue
        minutes = f.quantity * d.minutes_per_unit
        total_minutes += minutes
        hours = minutes / 60
        rows.append([d.label, _num(f.quantity), f"{d.minutes_per_unit:g} min", _num(hours)])
        line = f"{d.label}: {_num(f.quantity)} {d.unit} by {f.users} users, about {_num(hours)} hours saved"
        contributions.append((hours, line))
    contributions.sort(key=lambda c: -c[0])
    evidence = [line for _, line in contributions[:4]]
    bullets = list(evidence)
    facts = QbrRoiFacts(**_common(data, evidence, []), period_days=data.period_days)
    shown: list[QbrMetric] = []
    hours = total_minutes / 60
    if total_minutes > 0:
        value = hours * data.config.hourly_cost_usd
        facts.hours_saved = round(hours, 1)
        facts.value_usd = round(value)
        facts.hourly_cost = data.config.hourly_cost_usd
        shown += [
            QbrMetric(label="Hours saved (estimate)", value=_num(hours)),
            QbrMetric(label="Value delivered (estimate)", value=_money(value)),
        ]
        if data.contract and data.contract.arr > 0:
            cost = data.contract.arr * data.period_days / 365
            facts.period_cost = round(cost)
            facts.roi_multiple = round(value / cost, 1)
            shown += [
                QbrMetric(label="Subscription cost for the period", value=_money(cost)),
                QbrMetric(label="Value vs cost", value=f"{value / cost:.1f}x"),
            ]
    exports = use.get("reports.export")
    if exports and exports.quantity > 0 and not any("Reports exported" in b for b in bullets):
        bullets.append(f"Reports exported: {_num(exports.quantity)}")
    if data.active_users is not None and data.active_users_prev:
        change = (data.active_users - data.active_users_prev) / data.active_users_prev
        bullets.append(
            f"Active users: {data.active_users} this period vs {data.active_users_prev} the period before ({_signed(change * 100)}%)"
        )
    actions = (
        ["Validate the time-saved assumptions with the customer's team before the meeting"]
        if total_minutes > 0
        else []
    )
    return QbrSection(
        key="roi",
        purpose=SECTION_PURPOSES["roi"],
        title="ROI & Business Impact",
        headline="",
        narrative=[],
        metrics=shown,
        table=QbrTable(columns=["Activity", "Volume", "Time saved each", "Hours saved"], rows=rows)
        if rows
        else None,
        bullets=bullets,
        recommendations=actions,
        facts=facts.model_copy(update={"recommended_actions": actions}),
    )


def _adoption(data: QbrData) -> QbrSection:
    licensed = (
        set(data.contract.licensed_modules) if data.contract else {f.module for f in data.catalogue}
    )
    use = {f.event_type: f for f in data.feature_use}
    base = data.active_users or 0
    rows: list[list[str]] = []
    gaps: list[tuple[float, FeatureBenchmark, float, int]] = []
    at_benchmark = tracked = 0
    for fb in data.catalogue:
        if fb.module not in licensed:
            continue
        tracked += 1
        users = use[fb.event_type].users if fb.event_type in use else 0
        rate = users / base if base else 0.0
        status = "at or above" if rate >= fb.benchmark else ("unused" if users == 0 else "below")
        if rate >= fb.benchmark:
            at_benchmark += 1
        elif rate < fb.benchmark * data.config.underused_share:
            gaps.append((fb.benchmark - rate, fb, rate, users))
        rows.append([fb.label, fb.module, str(users), _pct(rate), _pct(fb.benchmark), status])
    gaps.sort(key=lambda g: -g[0])
    recs = []
    for _, fb, rate, _users in gaps[:3]:
        play = data.config.plays.get(
            fb.module, "Run a targeted enablement session on {label}"
        ).format(label=fb.label)
        recs.append(
            f"{fb.label}: {_pct(rate)} of active users vs {a_or_an(_pct(fb.benchmark))} {_pct(fb.benchmark)} benchmark. {play}"
        )
    facts = QbrAdoptionFacts(**_common(data, [], recs), adoption_window_days=data.period_days)
    shown: list[QbrMetric] = []
    # Seat utilization: one definition, the snapshot's (active users in its activity window).
    active, window = data.seat_active_users, data.seat_window_days
    if active is None:
        active, window = data.active_users, data.period_days
    if active is not None:
        facts.active_users = active
        facts.activity_window_days = window
        shown.append(QbrMetric(label=f"Active users (last {window} days)", value=str(active)))
    if data.contract:
        facts.seats_purchased = data.contract.seats_purchased
        if active is not None and data.contract.seats_purchased:
            util = active / data.contract.seats_purchased
            facts.seat_utilization = round(util, 3)
            shown.append(
                QbrMetric(
                    label=f"Seat utilization (last {window} days)",
                    value=f"{_pct(util)} of {data.contract.seats_purchased} seats",
                )
            )
    if tracked:
        facts.features_tracked, facts.features_at_benchmark = tracked, at_benchmark
        shown.append(
            QbrMetric(
                label=f"Features at benchmark (last {data.period_days} days)",
                value=f"{at_benchmark} of {tracked}",
            )
        )
    if gaps:
        _, fb, rate, _users = gaps[0]
        facts.top_gap_feature = fb.label
        facts.top_gap_rate = round(rate, 3)
        facts.top_gap_benchmark = fb.benchmark
    evidence = [
        f"{fb.label}: {users} users, {_pct(rate)} adoption vs {_pct(fb.benchmark)} benchmark"
        for _, fb, rate, users in gaps[:4]
    ]
    strong = sorted(
        (
            (use[fb.event_type].users / base, fb)
            for fb in data.catalogue
            if fb.module in licensed and fb.event_type in use and base
        ),
        key=lambda t: -(t[0] - t[1].benchmark),
    )
    bullets = [
        f"Strongest: {fb.label} at {_pct(r)} vs {_pct(fb.benchmark)} benchmark"
        for r, fb in strong[:1]
        if r >= fb.benchmark
    ]
    bullets += evidence[:3]
    return QbrSection(
        key="adoption",
        purpose=SECTION_PURPOSES["adoption"],
        title="Feature Adoption Scorecard",
        headline="",
        narrative=[],
        metrics=shown,
        table=QbrTable(
            columns=["Feature", "Module", "Users", "Adoption", "Benchmark", "Status"], rows=rows
        )
        if rows
        else None,
        bullets=bullets,
        recommendations=recs,
        facts=facts.model_copy(update={"evidence": evidence}),
    )


def _expansion(data: QbrData) -> QbrSection:
    opps = list(data.opportunities)
    licensed = set(data.contract.licensed_modules) if data.contract else set()
    # Usage of modules the account does not license: a module signal even without a finding.
    if data.contract:
        modules_seen = {f.event_type.split(".")[0] for f in data.feature_use if "." in f.event_type}
        known = {o.title for o in opps}
        for m in sorted(modules_seen - licensed):
            users = max(
                (f.users for f in data.feature_use if f.event_type.startswith(m + ".")), default=0
            )
            title = f"{data.module_labels.get(m, m.title())} module"
            if title not in known and not any(
                o.opportunity_type == "module" and m in o.title.lower() for o in opps
            ):
                opps.append(
                    OpportunityInfo(
                        opportunity_type="module",
                        title=title,
                        evidence=[f"{users} users already use {m} features without a {m} license"],
                    )
                )
        active, window = data.seat_active_users, data.seat_window_days
        if (
            active is not None
            and data.contract.seats_purchased
            and not any(o.opportunity_type == "seats" for o in opps)
        ):
            util = active / data.contract.seats_purchased
            if util >= data.config.expansion_seat_utilization:
                opps.append(
                    OpportunityInfo(
                        opportunity_type="seats",
                        title="Additional seats",
                        evidence=[
                            f"{active} active users in the last {window} days on "
                            f"{data.contract.seats_purchased} seats ({_pct(util)})"
                        ],
                    )
                )
    rows = [
        [
            o.title,
            o.opportunity_type,
            _money(o.estimated_arr_impact) if o.estimated_arr_impact else "to size",
            "; ".join(o.evidence[:2]),
        ]
        for o in opps
    ]
    arr_impact = sum(o.estimated_arr_impact or 0 for o in opps)
    days = _renewal_days(data)
    sponsor = next(
        (s for s in data.stakeholders if "sponsor" in s.lower()),
        data.stakeholders[0] if data.stakeholders else None,
    )
    steps: list[str] = []
    muda = [f for f in data.findings if f.kind == "muda"]
    if muda:
        f = muda[0]
        fm = f.metrics
        if fm.get("unused_seats") is not None and fm.get("annual_waste") is not None:
            steps.append(
                f"Agree a seat re-deployment plan: {fm['unused_seats']} unused seats "
                f"(last {fm.get('activity_window_days', 30)} days), about "
                f"{_money(float(fm['annual_waste']))} a year"
            )
        else:
            steps.append(f"Agree a seat re-deployment plan: {f.title}")
    if opps:
        top = max(opps, key=lambda o: o.estimated_arr_impact or 0)
        steps.append(
            f"Explore {top.title.lower()} with {sponsor or 'the executive sponsor'}"
            + (
                f" (about {_money(top.estimated_arr_impact)} ARR)"
                if top.estimated_arr_impact
                else ""
            )
        )
    if days is not None and data.contract:
        if days <= 120:
            steps.append(
                f"Confirm renewal terms before {_day(data.contract.end_date)} ({days} days) with {sponsor or 'the executive sponsor'}"
            )
        else:
            steps.append(
                f"Plan the renewal conversation: the contract ends on {_day(data.contract.end_date)}"
            )
    adoption_first = [f for f in data.findings if f.kind == "mura"]
    if adoption_first:
        steps.append(f"Run the adoption plan: {adoption_first[0].title}")
    nxt = next_qbr_date(data)
    if nxt is not None:
        steps.append(f"Schedule the next QBR for the week of {_day(nxt)}")
    facts = QbrExpansionFacts(**_common(data, [], steps[:5]), opportunities=len(opps))
    shown = [QbrMetric(label="Expansion signals", value=str(len(opps)))]
    if arr_impact:
        facts.estimated_arr_impact = round(arr_impact)
        shown.append(QbrMetric(label="Estimated ARR impact", value=_money(arr_impact)))
    if data.contract:
        facts.arr = data.contract.arr
        shown.append(QbrMetric(label="Current ARR", value=_money(data.contract.arr)))
    if days is not None and data.contract:
        facts.days_to_renewal = days
        facts.renewal_date = data.contract.end_date
        shown.append(
            QbrMetric(label="Renewal", value=f"{_day(data.contract.end_date)} (in {days} days)")
        )
    evidence = [f"{o.title}: {'; '.join(o.evidence[:1])}" for o in opps if o.evidence][:4]
    return QbrSection(
        key="expansion",
        purpose=SECTION_PURPOSES["expansion"],
        title="Expansion & Next Steps",
        headline="",
        narrative=[],
        metrics=shown,
        table=QbrTable(columns=["Opportunity", "Type", "Est. ARR impact", "Evidence"], rows=rows)
        if rows
        else None,
        bullets=evidence,
        recommendations=steps[:5],
        facts=facts.model_copy(update={"evidence": evidence}),
    )


def next_qbr_date(data: QbrData) -> date | None:
    """A quarter on, but always before the renewal it prepares: two weeks ahead of the end
    date when a quarter would pass it; None when the renewal is less than two weeks away."""
    nxt = (data.as_of + timedelta(days=90)).date()
    if data.contract is None or nxt < data.contract.end_date - timedelta(days=14):
        return nxt
    before = data.contract.end_date - timedelta(days=14)
    return before if before > data.as_of.date() else None


def _assumptions(data: QbrData) -> list[str]:
    drivers = ", ".join(
        f"{d.minutes_per_unit:g} min per {d.per}" for d in data.config.value_drivers
    )
    return [
        f"Value figures are estimates from product usage: {drivers}; ${data.config.hourly_cost_usd:,.0f} an hour loaded staff cost.",
        f"Adoption rate: users of a feature in the last {data.period_days} days / all active users in that window; benchmarks from the feature catalogue.",
    ]


# ------------------------------------------------------------------ render


def qbr_sections(doc: QbrDocument) -> list[DeliverySection]:
    """The document as channel-neutral sections (Notion blocks, Markdown, Slack)."""
    out = [
        DeliverySection(
            callout=doc.summary,
            callout_icon=BAND_ICONS.get(doc.band or "", "📊"),
            paragraphs=[
                f"Review period: {_day(doc.period_start)} to {_day(doc.as_of)}"
                + (
                    f" (prepared {doc.days_to_renewal} days before contract end)"
                    if doc.reason == "pre_renewal" and doc.days_to_renewal is not None
                    else ""
                )
                + "."
            ],
        )
    ]
    for s in doc.sections:
        bullets = list(s.bullets)
        bullets += [f"Recommended: {r}" for r in s.recommendations if r not in bullets]
        out.append(
            DeliverySection(
                heading=s.title,
                callout=s.headline,
                callout_icon="💡",
                paragraphs=list(s.narrative),
                metrics=[DeliveryMetric(label=m.label, value=m.value) for m in s.metrics],
                table=DeliveryTable(columns=s.table.columns, rows=s.table.rows)
                if s.table
                else None,
                bullets=bullets,
            )
        )
    if doc.plan_criteria:
        out.append(plan_criteria_section(doc.plan_criteria))
    notes = list(
        dict.fromkeys(
            s.narrative_note
            for s in doc.sections
            if s.narrative_generated_by == "template" and s.narrative_note
        )
    )
    out.append(
        DeliverySection(
            heading="Assumptions", bullets=list(doc.assumptions), note=" ".join(notes) or None
        )
    )
    return out


def plan_criteria_section(criteria: list[CriterionStatus]) -> DeliverySection:
    """Value realization: each success criterion of the approved CS plan, met / on track /
    behind, with the numbers of the account's last scan (domain/onboarding.py evaluates)."""
    met = sum(1 for c in criteria if c.status == "met")
    behind = sum(1 for c in criteria if c.status == "behind")
    return DeliverySection(
        heading="Value realization against the CS plan",
        callout=f"{met} of {len(criteria)} success criteria met"
        + (f", {behind} behind" if behind else ""),
        callout_icon="🎯",
        table=DeliveryTable(
            columns=["Success criterion", "Status", "Now", "Target", "Due"],
            rows=[c.cells for c in criteria],
        ),
        note=f"Measured on {criteria[0].as_of}; targets approved with the CS plan.",
    )


def render_qbr_markdown(doc: QbrDocument) -> str:
    return render_sections_markdown(doc.title, qbr_sections(doc))


def qbr_page_request(doc: QbrDocument, idempotency_key: str) -> DeliveryRequest:
    return DeliveryRequest(
        idempotency_key=idempotency_key,
        account_id=doc.account_id,
        kind="qbr_page",
        purpose="qbr",
        title=doc.title,
        markdown=render_qbr_markdown(doc),
        sections=qbr_sections(doc),
        properties={
            "Account": doc.account_name,
            "Quarter": doc.quarter_label,
            "Band": doc.band,
            "Score": round(doc.score, 1) if doc.score is not None else None,
            "As Of": _day(doc.as_of),
            "Reason": doc.reason,
        },
        metadata={"quarter": doc.quarter_label, "reason": doc.reason},
    )


def qbr_cover_note_request(
    doc: QbrDocument,
    idempotency_key: str,
    *,
    to: str,
    to_name: str | None = None,
    page_link: str | None = None,
) -> DeliveryRequest:
    """The cover-note draft to the CSM: what the QBR says in 30 seconds, and where it is.

    ``page_link``: the published page's URL (Notion). Without one, the note
    says the page is in the outbox; a path on the worker's disk is no link.
    """
    first = (to_name or "").split(" ")[0] or "there"
    lines = [
        f"Hi {first},",
        "",
        f"The {doc.quarter_label} QBR for {doc.account_name} is ready for your review"
        + (
            f": {page_link}"
            if page_link and page_link.startswith(("https://", "http://"))
            else " in the QBR outbox (not published to Notion: no Notion credentials)."
        ),
        "",
        doc.summary + ".",
        "",
    ]
    for s in doc.sections:
        lines.append(f"- {s.title}: {s.headline}")
    steps = doc.section("expansion").recommendations
    if steps:
        lines += ["", "Suggested next steps:"] + [
            f"{i}. {step}" for i, step in enumerate(steps[:3], 1)
        ]
    if any(s.narrative_generated_by == "template" for s in doc.sections):
        lines += [
            "",
            "Note: some narratives were generated without the model (deterministic templates).",
        ]
    lines += ["", "This is a draft: review and edit before sharing with the customer."]
    return DeliveryRequest(
        idempotency_key=idempotency_key,
        account_id=doc.account_id,
        kind="email_draft",
        purpose="qbr_cover_note",
        to=to,
        to_name=to_name,
        subject=f"QBR ready for review: {doc.account_name} {doc.quarter_label}",
        title=f"QBR ready: {doc.account_name} {doc.quarter_label}",
        markdown="\n".join(lines) + "\n",
        metadata={"quarter": doc.quarter_label},
    )
