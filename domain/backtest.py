"""Back-test metrics: how well past scores and flags predicted churn and expansion.

Pure: give it observations (what the engine said about an account on a date, computed
only from data up to that date) and outcomes (what happened later).

Definitions (``horizon_days`` H [180]):

- **Label of an observation**: positive when the account churned within
  ``(as_of, as_of + H]``. Observations on or after the churn date are dropped (the
  account is gone). When ``observed_until`` is given, a not-yet-positive observation
  whose horizon runs past it is dropped too (censored: the outcome is unknown).
- **Precision / recall of HIGH+**: an observation is predicted positive when its churn
  level is HIGH or CRITICAL; counted against the label above.
- **Lead time** for L in ``lead_days`` [30, 60, 90] with L < H: among churners with at
  least one observation dated in ``[churned_on - H, churned_on - L]``, the share that has
  a HIGH+ observation in that range ("flagged at least L days before churn"). A lead of
  H days or more has an empty range: it is listed in ``leads_beyond_horizon``, not
  measured.
- **ROC AUC** of ``100 - score`` as a churn predictor over the labelled observations
  with a score: the Mann-Whitney statistic, ties counted as 1/2 (average ranks).
  None when there are no positives or no negatives.
- **Expansion precision / recall**: the same with ``expansion_flagged`` and
  ``expanded_on`` (observations on or after the expansion, or after churn, are dropped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from domain.churn import ChurnLevel, churn_level_rank

HIGH_RANK = churn_level_rank("HIGH")


class Observation(BaseModel):
    account_id: str
    as_of: date
    score: float | None
    churn_level: ChurnLevel
    expansion_flagged: bool = False
    band: str | None = None  # GREEN/AMBER/RED, UNSCORED (too little data), None (no data)


class Outcome(BaseModel):
    churned_on: date | None = None
    expanded_on: date | None = None


class BinaryMetrics(BaseModel):
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    true_negative: int = 0
    precision: float | None = None
    recall: float | None = None

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[bool, bool]]) -> BinaryMetrics:
        """(predicted, actual) pairs -> counts, precision, recall (None when undefined)."""
        tp = fp = fn = tn = 0
        for predicted, actual in pairs:
            if predicted and actual:
                tp += 1
            elif predicted:
                fp += 1
            elif actual:
                fn += 1
            else:
                tn += 1
        return cls(
            true_positive=tp,
            false_positive=fp,
            false_negative=fn,
            true_negative=tn,
            precision=tp / (tp + fp) if tp + fp else None,
            recall=tp / (tp + fn) if tp + fn else None,
        )


class LeadTime(BaseModel):
    days: int
    churners_eligible: int  # had an observation in [churned_on - H, churned_on - days]
    churners_flagged: int  # ... and one of them was HIGH+
    share: float | None


class BacktestReport(BaseModel):
    horizon_days: int
    observations: int
    accounts: int
    churners: int
    expanders: int
    labelled_churn: int  # observations with a known churn label
    censored: int  # dropped because the horizon runs past observed_until
    lead_times: list[LeadTime] = Field(default_factory=list)
    leads_beyond_horizon: list[int] = Field(default_factory=list)  # not measurable
    churn_high: BinaryMetrics
    churn_auc: float | None = None
    auc_positives: int = 0
    auc_negatives: int = 0
    expansion: BinaryMetrics


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Mann-Whitney AUC: P(score of a positive > score of a negative), ties count 1/2."""
    if len(scores) != len(labels):
        raise ValueError("scores and labels must have the same length")
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1  # 1-based average rank of the tie group
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _obs(o: Observation | Sequence[Any] | Mapping[str, Any]) -> Observation:
    if isinstance(o, Observation):
        return o
    if isinstance(o, Mapping):
        return Observation.model_validate(o)
    account_id, as_of, score, level, flagged = o
    if isinstance(as_of, datetime):
        as_of = as_of.date()
    return Observation(
        account_id=account_id,
        as_of=as_of,
        score=score,
        churn_level=level,
        expansion_flagged=bool(flagged),
    )


def _outcome(o: Outcome | Sequence[Any] | Mapping[str, Any] | None) -> Outcome:
    if o is None:
        return Outcome()
    if isinstance(o, Outcome):
        return o
    if isinstance(o, Mapping):
        return Outcome.model_validate(o)
    churned_on, expanded_on = o
    return Outcome(churned_on=churned_on, expanded_on=expanded_on)


def label_within(
    as_of: date, event_on: date | None, horizon: timedelta, observed_until: date | None
) -> bool | None:
    """True/False, or None when the observation cannot be labelled."""
    if event_on is not None and event_on <= as_of:
        return None
    if event_on is not None and event_on <= as_of + horizon:
        return True
    if observed_until is not None and as_of + horizon > observed_until:
        return None
    return False


def run_backtest(
    observations: Iterable[Observation | Sequence[Any] | Mapping[str, Any]],
    outcomes: Mapping[str, Outcome | Sequence[Any] | Mapping[str, Any] | None],
    horizon_days: int = 180,
    lead_days: Sequence[int] = (30, 60, 90),
    observed_until: date | None = None,
) -> BacktestReport:
    """Metrics of the definitions in the module docstring.

    ``observations``: ``Observation``s or ``(account_id, as_of, score, churn_level,
    expansion_flagged)`` tuples. ``outcomes``: account_id -> ``Outcome`` or
    ``(churned_on, expanded_on)``; accounts missing from it neither churned nor expanded.
    """
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    obs = sorted((_obs(o) for o in observations), key=lambda o: (o.account_id, o.as_of))
    outs = {k: _outcome(v) for k, v in outcomes.items()}
    horizon = timedelta(days=horizon_days)

    churn_pairs: list[tuple[bool, bool]] = []
    exp_pairs: list[tuple[bool, bool]] = []
    auc_scores: list[float] = []
    auc_labels: list[bool] = []
    censored = 0
    for o in obs:
        out = outs.get(o.account_id, Outcome())
        label = label_within(o.as_of, out.churned_on, horizon, observed_until)
        if label is None:
            if out.churned_on is None or out.churned_on > o.as_of:
                censored += 1
        else:
            churn_pairs.append((churn_level_rank(o.churn_level) >= HIGH_RANK, label))
            if o.score is not None:
                auc_scores.append(100.0 - o.score)
                auc_labels.append(label)
        if out.churned_on is not None and out.churned_on <= o.as_of:
            continue  # no expansion label for a churned account
        exp_label = label_within(o.as_of, out.expanded_on, horizon, observed_until)
        if exp_label is not None:
            exp_pairs.append((o.expansion_flagged, exp_label))

    churners = {k: v.churned_on for k, v in outs.items() if v.churned_on is not None}
    by_account: dict[str, list[Observation]] = {}
    for o in obs:
        by_account.setdefault(o.account_id, []).append(o)
    lead_times: list[LeadTime] = []
    for lead in sorted(d for d in set(lead_days) if d < horizon_days):
        eligible = flagged = 0
        for account_id, churned_on in sorted(churners.items()):
            lo, hi = churned_on - horizon, churned_on - timedelta(days=lead)
            window = [o for o in by_account.get(account_id, []) if lo <= o.as_of <= hi]
            if not window:
                continue
            eligible += 1
            if any(churn_level_rank(o.churn_level) >= HIGH_RANK for o in window):
                flagged += 1
        lead_times.append(
            LeadTime(
                days=lead,
                churners_eligible=eligible,
                churners_flagged=flagged,
                share=flagged / eligible if eligible else None,
            )
        )

    return BacktestReport(
        horizon_days=horizon_days,
        observations=len(obs),
        accounts=len({o.account_id for o in obs}),
        churners=len(churners),
        expanders=sum(1 for v in outs.values() if v.expanded_on is not None),
        labelled_churn=len(churn_pairs),
        censored=censored,
        lead_times=lead_times,
        leads_beyond_horizon=sorted(d for d in set(lead_days) if d >= horizon_days),
        churn_high=BinaryMetrics.from_pairs(churn_pairs),
        churn_auc=roc_auc(auc_scores, auc_labels),
        auc_positives=sum(1 for y in auc_labels if y),
        auc_negatives=sum(1 for y in auc_labels if not y),
        expansion=BinaryMetrics.from_pairs(exp_pairs),
    )


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"


def render_backtest(report: BacktestReport) -> str:
    r = report
    lines = [
        f"Back-test over {r.observations} observations of {r.accounts} accounts "
        f"(horizon {r.horizon_days} days)",
        f"  churners {r.churners}, expanders {r.expanders}, labelled {r.labelled_churn}, "
        f"censored {r.censored}",
        "",
        "Churn warnings (HIGH or CRITICAL)",
    ]
    for lt in r.lead_times:
        lines.append(
            f"  flagged >= {lt.days:>3} days before churn: {_pct(lt.share):>6} "
            f"({lt.churners_flagged} of {lt.churners_eligible} churners with an observation then)"
        )
    if r.leads_beyond_horizon:
        lines.append(
            f"  flagged >= {', '.join(str(d) for d in r.leads_beyond_horizon)} days before "
            f"churn: not measured (a lead must be shorter than the {r.horizon_days}-day horizon)"
        )
    m = r.churn_high
    lines += [
        f"  precision {_pct(m.precision)}  recall {_pct(m.recall)}  "
        f"(TP {m.true_positive}, FP {m.false_positive}, FN {m.false_negative}, "
        f"TN {m.true_negative})",
        "  ROC AUC of (100 - score): "
        + ("n/a" if r.churn_auc is None else f"{r.churn_auc:.3f}")
        + f"  ({r.auc_positives} positive, {r.auc_negatives} negative observations)",
        "",
        "Expansion flags",
    ]
    e = r.expansion
    lines.append(
        f"  precision {_pct(e.precision)}  recall {_pct(e.recall)}  "
        f"(TP {e.true_positive}, FP {e.false_positive}, FN {e.false_negative}, "
        f"TN {e.true_negative})"
    )
    return "\n".join(lines) + "\n"
