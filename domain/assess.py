"""One observability cycle for one account: health, churn, Lean waste, expansion, decision.

The decision gate (seed 000, section 6), first rule that holds:

| Outcome | Rule | Next step |
|---|---|---|
| risk | churn level HIGH or CRITICAL, or any high-severity Lean finding | prevention playbook (churn save when CRITICAL) |
| opportunity | at least one expansion opportunity | expansion proposal to Sales (a draft for the rep) |
| routine | otherwise | nothing now; the QBR runs on its schedule |

An ``UNSCORED`` account (coverage below ``bands.min_coverage``) gets no Lean
finding and its band fires no churn trigger; a notice or behavioral flags still
make a risk (they are facts on their own), and expansion evidence still counts.

Risk wins over opportunity: expansion opportunities found while a risk is open are
kept in the assessment and named in the reasons, but not proposed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from domain.churn import CHURN_LEVELS, ChurnRisk, assess_churn, churn_level_rank
from domain.config import HealthConfig
from domain.expansion import ExpansionOpportunity, detect_expansion
from domain.facts import AccountFacts
from domain.health import UNSCORED, HealthSnapshot, score_health
from domain.lean import Finding, detect_waste, finding_id

__all__ = [
    "CHURN_LEVELS",
    "Assessment",
    "Decision",
    "assess_account",
    "churn_level_rank",
    "decide",
    "persistable_findings",
]


class Decision(BaseModel):
    outcome: Literal["risk", "opportunity", "routine"]
    reasons: list[str] = Field(default_factory=list)


class Assessment(BaseModel):
    account_id: str
    account_name: str | None = None
    snapshot: HealthSnapshot
    churn: ChurnRisk
    findings: list[Finding] = Field(default_factory=list)
    opportunities: list[ExpansionOpportunity] = Field(default_factory=list)
    decision: Decision


def decide(
    churn: ChurnRisk, findings: list[Finding], opportunities: list[ExpansionOpportunity]
) -> Decision:
    """The seed-000 decision gate (table in the module docstring)."""
    reasons: list[str] = []
    if churn_level_rank(churn.level) >= churn_level_rank("HIGH"):
        reasons.append(f"churn risk {churn.summary}")
    for f in findings:
        if f.severity == "high":
            reasons.append(f"high-severity {f.kind}: {f.title} -> {f.play}")
    if reasons:
        if opportunities:
            reasons.append(
                f"{len(opportunities)} expansion opportunit"
                f"{'y' if len(opportunities) == 1 else 'ies'} held back while the risk is open"
            )
        return Decision(outcome="risk", reasons=reasons)
    if opportunities:
        return Decision(
            outcome="opportunity",
            reasons=[
                f"{o.opportunity_type}: {o.title} ({o.confidence} confidence)"
                for o in opportunities
            ],
        )
    return Decision(
        outcome="routine",
        reasons=[
            f"churn risk {churn.level}, no high-severity Lean finding, no expansion signal: "
            "nothing now, QBR on its schedule"
        ],
    )


def assess_account(
    facts: AccountFacts, config: HealthConfig, previous: HealthSnapshot | None = None
) -> Assessment:
    """Score, churn, waste, expansion and the decision for one account at ``facts.as_of``."""
    snapshot = score_health(facts, config, previous)
    churn = assess_churn(facts, snapshot, config)
    # Too little data is not waste either: an UNSCORED account gets no Lean play.
    findings = detect_waste(facts, config) if snapshot.band != UNSCORED else []
    opportunities = detect_expansion(facts, config)
    return Assessment(
        account_id=facts.account_id,
        account_name=facts.name,
        snapshot=snapshot,
        churn=churn,
        findings=findings,
        opportunities=opportunities,
        decision=decide(churn, findings, opportunities),
    )


_CHURN_SEVERITY = {"MEDIUM": "medium", "HIGH": "high", "CRITICAL": "high"}


def persistable_findings(a: Assessment) -> list[Finding]:
    """Rows for the ``findings`` table: Lean findings, churn (MEDIUM and up), expansion."""
    rows = list(a.findings)
    if a.churn.level in _CHURN_SEVERITY:
        as_of = a.snapshot.as_of
        rows.append(
            Finding(
                finding_id=finding_id("churn", a.account_id, as_of),
                account_id=a.account_id,
                as_of=as_of,
                kind="churn",
                severity=_CHURN_SEVERITY[a.churn.level],  # type: ignore[arg-type]
                title=f"Churn risk {a.churn.level}",
                evidence=[f.evidence for f in a.churn.flags],
                dollar_impact=None,
                play=(
                    "Churn save playbook"
                    if a.churn.level == "CRITICAL"
                    else "Risk prevention playbook"
                ),
                metrics={
                    "level": a.churn.level,
                    "behavioral_points": a.churn.behavioral_points,
                    "days_to_renewal": (
                        a.churn.days_to_renewal if a.churn.days_to_renewal is not None else "n/a"
                    ),
                },
            )
        )
    for o in a.opportunities:
        rows.append(
            Finding(
                # dated like every finding; the undated opportunity_id is kept in metrics
                finding_id=finding_id(
                    "expansion", o.account_id, o.as_of, f"{o.opportunity_type}:{o.key}"
                ),
                account_id=o.account_id,
                as_of=o.as_of,
                kind="expansion",
                severity=o.confidence,
                title=o.title,
                evidence=o.evidence,
                dollar_impact=o.estimated_arr_impact,
                play="Expansion proposal to Sales",
                metrics={
                    "opportunity_id": o.opportunity_id,
                    "opportunity_type": o.opportunity_type,
                    "key": o.key,
                    **o.metrics,
                },
            )
        )
    return rows
