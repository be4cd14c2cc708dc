"""Plain-text rendering of an assessment for the terminal (``python starter.py score ID``).

No colours, no terminal queries: the same assessment always renders to the same text.
"""

from __future__ import annotations

import textwrap

from domain.assess import Assessment
from domain.calibration import band_churn_rate
from domain.config import SIGNALS, HealthConfig
from domain.health import fmt_money, fmt_num

WIDTH = 100


def _wrap(text: str, indent: str, width: int = WIDTH) -> list[str]:
    return textwrap.wrap(
        text, width=width, initial_indent=indent, subsequent_indent=indent + "  "
    ) or [indent]


def _section(title: str) -> list[str]:
    return ["", title, "-" * len(title)]


def render_assessment(a: Assessment) -> str:
    s = a.snapshot
    lines: list[str] = []
    name = f"{a.account_name} ({a.account_id})" if a.account_name else a.account_id
    header = f"Account {name}  |  as of {s.as_of:%Y-%m-%d %H:%M %Z}".rstrip()
    lines += [header, "=" * min(len(header), WIDTH)]
    score = f"{fmt_num(s.score)}/100" if s.score is not None else "no score"
    lines.append(
        f"Health {score}  {s.band or 'NO BAND'}  |  coverage {s.coverage * 100:.0f}% of signal "
        f"weight  |  config {s.config_version}"
    )
    if s.band_reason:
        lines += _wrap(f"Unscored: {s.band_reason}", "")
    if s.tam_adjustment:
        lines += _wrap(f"Technical health: {s.tam_adjustment}", "")
    lines.append(f"Decision: {a.decision.outcome.upper()}")
    for reason in a.decision.reasons:
        lines += _wrap(f"- {reason}", "  ")

    lines += _section("Signals")
    lines.append(f"{'signal':<24}{'score':>7}{'weight':>8}{'share':>7}  detail")
    for sig in s.signals:
        sub = fmt_num(sig.sub_score) if sig.sub_score is not None else "--"
        share = f"{sig.effective_weight * 100:.0f}%" if sig.sub_score is not None else "--"
        prefix = f"{sig.label:<24}{sub:>7}{fmt_num(sig.weight):>8}{share:>7}  "
        wrapped = textwrap.wrap(sig.detail, width=WIDTH - len(prefix)) or [""]
        lines.append(prefix + wrapped[0])
        lines += [" " * len(prefix) + rest for rest in wrapped[1:]]

    if s.drivers:
        lines += _section("What moved the score")
        for d in s.drivers:
            lines += _wrap(f"- {d.text}", "  ")

    c = a.churn
    lines += _section(f"Churn risk: {c.level}")
    if c.renewal_date is not None:
        when = (
            f"ended {-(c.days_to_renewal or 0)} days ago"
            if c.contract_ended
            else f"in {c.days_to_renewal} days"
        )
        lines.append(f"  renewal {c.renewal_date.isoformat()} ({when})")
    if not c.flags:
        lines.append("  no churn trigger fired")
    for f in c.flags:
        pts = f", {f.weight} pt" if f.weight else ""
        lines += _wrap(f"- [{f.trigger}{pts}] {f.code}: {f.evidence}", "  ")

    lines += _section("Lean findings")
    if not a.findings:
        lines.append("  none")
    for f in a.findings:
        money = f"  {fmt_money(f.dollar_impact)}/yr" if f.dollar_impact is not None else ""
        lines += _wrap(f"{f.kind.upper()} [{f.severity}]{money}  {f.title}", "  ")
        lines += _wrap(f"play: {f.play}", "    ")
        for ev in f.evidence:
            lines += _wrap(f"- {ev}", "    ")

    lines += _section("Expansion opportunities")
    if not a.opportunities:
        lines.append("  none")
    for o in a.opportunities:
        lines += _wrap(
            f"{o.opportunity_type.upper()} {o.key}  {fmt_money(o.estimated_arr_impact)} ARR  "
            f"({o.confidence} confidence)  {o.title}",
            "  ",
        )
        for ev in o.evidence:
            lines += _wrap(f"- {ev}", "    ")
        lines += _wrap(f"talk track: {o.talk_track}", "    ")

    if s.data_issues:
        lines += _section("Data issues (rows left out)")
        for issue in s.data_issues:
            lines += _wrap(f"- {issue.table} {issue.row}: {issue.problem}", "  ")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------ one row per account

# `starter.py score --all`: the columns of the per-account table, in order.
ROW_COLUMNS: tuple[str, ...] = (
    "account_id",
    "as_of",
    "config_version",
    "contract_in_force",
    "score",
    "band",
    "band_reason",
    "coverage",
    "churn_level",
    "churn_flags",
    "churn_probability",
    "probability_horizon_days",
    *(f"sub_{name}" for name in SIGNALS),
    "lean_findings",
    "opportunities",
    "expansion_arr",
)


def assessment_row(a: Assessment, in_force: bool, config: HealthConfig) -> dict[str, str]:
    """One account's assessment as flat text fields (``ROW_COLUMNS``): every sub-score
    (empty without data), churn flag codes and opportunities as ``type:key`` joined by ';'.
    ``churn_probability``: the observed churn rate of the account's band within the
    calibration's longest horizon, from an adopted calibration (empty without one)."""
    s = a.snapshot
    found = band_churn_rate(config, s.band)
    rate = found[1].rate if found is not None else None
    subs = {f"sub_{sig.name}": _cell(sig.sub_score) for sig in s.signals}
    row = {
        "account_id": a.account_id,
        "as_of": s.as_of.isoformat(),
        "config_version": s.config_version,
        "contract_in_force": "true" if in_force else "false",
        "score": _cell(s.score),
        "band": s.band or "",
        "band_reason": s.band_reason or "",
        "coverage": _cell(s.coverage),
        "churn_level": a.churn.level,
        "churn_flags": ";".join(f.code for f in a.churn.flags),
        "churn_probability": _cell(rate),
        "probability_horizon_days": str(found[0]) if found is not None and rate is not None else "",
        **subs,
        "lean_findings": ";".join(f"{f.kind}:{f.severity}" for f in a.findings),
        "opportunities": ";".join(f"{o.opportunity_type}:{o.key}" for o in a.opportunities),
        "expansion_arr": _cell(sum(o.estimated_arr_impact for o in a.opportunities) or None),
    }
    return {c: row[c] for c in ROW_COLUMNS}


def _cell(x: float | None) -> str:
    return "" if x is None else repr(float(x)) if not float(x).is_integer() else str(int(x))
