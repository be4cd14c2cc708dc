"""Calibration: fit the health configuration on a team's own history, prove it on later dates.

Pure and deterministic (a seeded generator for the bootstrap; no clock, no I/O). The
driver (``cli/calibrate.py`` on Postgres, or a test on a generated world) feeds it, date
by date, the facts each account had *on* that date; it never sees a later row.

The procedure (``Calibrator``)
------------------------------
1. **Time-based split.** Dates before ``split_on`` fit; dates on or after it validate.
   Labels of the fit use ``fit_horizon`` (default: the middle of ``horizons``, 60 days of
   30/60/90, the churn rule's renewal window); the report covers every horizon. A fit
   date counts only when its longest horizon ends before ``split_on`` (no fit label reads
   the validation period). Never a random split: a CS team adopts a config for the future.
2. **Per-signal evidence** on the fit dates: for each signal, the ROC AUC of
   ``100 - sub_score`` for churn within the fit horizon, over the observations where the
   signal has data. AUC above 0.5 + ``min_edge``: the signal warns of churn the way the
   score assumes ("protective"). Below 0.5 - ``min_edge``: it points the other way on this
   history ("anti-predictive") and gets weight 0, named as such; never a negative weight.
   In between: "uninformative", weight 0.
3. **Weights.** A logistic regression of churn on the eligible signals' risk
   ``(100 - sub_score) / 100`` (a missing signal takes its fit-date mean), with the
   coefficients held non-negative (projected gradient descent), gives starting weights; a
   coordinate search then moves each weight (x0, x0.5, x0.8, x1.25, x2) while the ROC AUC
   of the composite score itself (``domain.health.composite_score``: missing signals left out
   and the rest renormalized) improves on the fit dates. Weights are rounded to whole
   numbers that sum to 100.
4. **Bands.** ``amber_min`` is the score below which the riskiest ``red_share`` of the fit
   observations fall (RED), ``green_min`` the one below which ``red_share + amber_share``
   fall: RED and AMBER mean "the riskiest 10%" and "the next 25%" of this portfolio.
5. **Churn levels.** ``high_points`` is the fewest behavioral points at which the observed
   churn rate on the fit dates is at least ``high_lift`` (2x) the base rate;
   ``critical_points`` the fewest above it at ``critical_lift`` (4x); the shipped values
   stay when the history cannot tell (fewer than ``min_support`` observations).
6. **Expansion.** ``seat_utilization_min`` (0.60-1.00) and ``sustained_windows`` (1 or 2)
   that maximize F1 of the seats rule for an expansion within the fit horizon; kept when
   there are fewer than ``min_fit_expanders`` expansions.
7. **Validation.** Every validation observation is assessed twice, by the current and the
   new config, with the real ``domain.assess.assess_account``; the report compares them
   (``CalibrationReport``) and the new config records, per band, the churn rate observed on
   the validation dates (``HealthConfig.calibration``).

Labels are ``domain.backtest.label_within``: churn (the date it became known) within
``(as_of, as_of + H]``; an observation whose horizon runs past ``observed_until`` without a
churn is censored.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from domain.assess import Assessment, assess_account
from domain.backtest import BacktestReport, Observation, Outcome, label_within, run_backtest
from domain.churn import ChurnRisk, assess_churn
from domain.config import (
    SIGNAL_LABELS,
    SIGNALS,
    BandChurnRate,
    CalibrationInfo,
    HealthConfig,
)
from domain.facts import AccountFacts
from domain.health import BANDS, HealthSnapshot, fmt_pct, one_in_n, score_health

Direction = Literal["protective", "anti-predictive", "uninformative", "no data"]
SCORED_BANDS: tuple[str, ...] = ("RED", "AMBER", "GREEN")
_MULTIPLIERS = (0.0, 0.5, 0.8, 1.25, 2.0)


class CalibrationError(ValueError):
    """The history cannot support a calibration; the message says what is missing."""


class CalibrationOptions(BaseModel):
    horizons: list[int] = Field(default_factory=lambda: [30, 60, 90], min_length=1)
    # default: the middle horizon (60 of 30,60,90: the churn rule's renewal window too)
    fit_horizon: int | None = None
    red_share: float = Field(default=0.10, gt=0, lt=1)
    amber_share: float = Field(default=0.25, gt=0, lt=1)
    min_edge: float = Field(default=0.02, ge=0, lt=0.5)
    high_lift: float = Field(default=2.0, gt=1)
    critical_lift: float = Field(default=4.0, gt=1)
    min_support: int = Field(default=20, ge=1)
    min_fit_churners: int = Field(default=10, ge=1)
    min_validation_churners: int = Field(default=5, ge=1)
    min_fit_expanders: int = Field(default=5, ge=1)
    top_share: float = Field(default=0.10, gt=0, lt=1)
    bootstrap: int = Field(default=200, ge=0)
    seed: int = 20261130

    @property
    def horizon(self) -> int:
        ordered = sorted(set(self.horizons))
        return self.fit_horizon or ordered[(len(ordered) - 1) // 2]


# ---------------------------------------------------------------- observations


@dataclass(slots=True)
class FitObservation:
    """What the fit needs of one account on one date (weights-independent)."""

    account_id: str
    as_of: date
    sub_scores: tuple[float | None, ...]  # SIGNALS order
    behavioral_points: int
    seat_util: float | None  # active users / seats, this activity window
    seat_util_prev: float | None
    over_provisioned: bool

    @classmethod
    def of(cls, facts: AccountFacts, assessment: Assessment) -> FitObservation:
        return cls.from_parts(facts, assessment.snapshot, assessment.churn)

    @classmethod
    def from_parts(
        cls, facts: AccountFacts, snapshot: HealthSnapshot, churn: ChurnRisk
    ) -> FitObservation:
        subs = {s.name: s.sub_score for s in snapshot.signals}
        c = facts.contract
        seats = c.seats_purchased if c is not None and c.seats_purchased > 0 else None
        return cls(
            account_id=facts.account_id,
            as_of=facts.as_of.date(),
            sub_scores=tuple(subs.get(n) for n in SIGNALS),
            behavioral_points=churn.behavioral_points,
            seat_util=facts.active_users / seats
            if seats and facts.active_users is not None
            else None,
            seat_util_prev=facts.active_users_prev / seats
            if seats and facts.active_users_prev is not None
            else None,
            over_provisioned=bool(
                seats and facts.provisioned_users is not None and facts.provisioned_users > seats
            ),
        )


@dataclass(slots=True, frozen=True)
class Verdict:
    """What one config said about one account on one date."""

    score: float | None
    band: str | None
    churn_level: str
    expansion: bool

    @classmethod
    def of(cls, a: Assessment) -> Verdict:
        return cls(a.snapshot.score, a.snapshot.band, a.churn.level, bool(a.opportunities))


@dataclass(slots=True, frozen=True)
class ValidationObservation:
    account_id: str
    as_of: date
    current: Verdict
    calibrated: Verdict


# ---------------------------------------------------------------- report model


class SignalEvidence(BaseModel):
    signal: str
    label: str
    coverage: float  # share of fit observations where the signal had data
    auc: float | None  # ROC AUC of (100 - sub_score) on the fit dates, where it had data
    direction: Direction
    current_weight: float
    calibrated_weight: float
    validation_auc: float | None = None  # the same on the validation dates


class Interval(BaseModel):
    value: float | None
    low: float | None = None
    high: float | None = None


class GroupRate(BaseModel):
    """One band or churn level: observations, churned, rate (precision), recall."""

    group: str
    observations: int
    churned: int
    rate: float | None
    recall: float | None
    predicted_rate: float | None = None  # the rate seen on the fit dates (reliability)


class ConfigMetrics(BaseModel):
    version: str
    auc: Interval
    pr_auc: float | None
    top_share: float
    precision_at_top: float | None
    recall_at_top: float | None
    lift_at_top: float | None
    bands: list[GroupRate]
    levels: list[GroupRate]
    backtest: BacktestReport  # HIGH+ precision/recall, lead times, expansion


class HorizonResult(BaseModel):
    horizon_days: int
    observations: int
    positives: int
    base_rate: float | None
    current: ConfigMetrics
    calibrated: ConfigMetrics
    auc_delta: Interval  # calibrated - current, paired bootstrap over accounts


class CalibrationReport(BaseModel):
    current_version: str
    calibrated_version: str
    fit_from: date
    fit_to: date
    validate_from: date
    validate_to: date
    observed_until: date
    fit_observations: int
    fit_churners: int
    fit_expanders: int
    validation_observations: int
    validation_churners: int
    fit_horizon: int
    bootstrap: int
    signals: list[SignalEvidence]
    bands: dict[str, float]  # calibrated green_min / amber_min
    churn_points: dict[str, int]  # calibrated high_points / critical_points
    expansion: dict[str, float]
    notes: list[str] = Field(default_factory=list)
    horizons: list[HorizonResult]
    better: bool  # calibrated AUC above current with the delta's 95% interval above 0
    verdict: str


# ------------------------------------------------------------------ statistics


def _tie_groups(values: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in a sorted array."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, values[1:] != values[:-1]])


def weighted_auc(risk: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float | None:
    """P(risk of a churner > risk of a survivor), ties 1/2; ``w`` weights rows (bootstrap)."""
    if w is None:
        w = np.ones(risk.shape[0])
    order = np.argsort(risk, kind="mergesort")
    r, yy, ww = risk[order], y[order], w[order]
    starts = _tie_groups(r)
    if starts.size == 0:
        return None
    gp = np.add.reduceat(ww * yy, starts)
    gn = np.add.reduceat(ww * (1 - yy), starts)
    pos, neg = gp.sum(), gn.sum()
    if pos <= 0 or neg <= 0:
        return None
    below = np.cumsum(gn) - gn
    return float(np.sum(gp * (below + 0.5 * gn)) / (pos * neg))


def average_precision(risk: np.ndarray, y: np.ndarray) -> float | None:
    """PR AUC as average precision, ties taken as one threshold."""
    pos = float(y.sum())
    if pos == 0 or risk.size == 0:
        return None
    order = np.argsort(-risk, kind="mergesort")
    r, yy = risk[order], y[order]
    starts = _tie_groups(r)
    ends = np.r_[starts[1:], r.size]
    tp = np.cumsum(yy)[ends - 1]
    precision = tp / ends
    recall_step = np.diff(np.r_[0.0, tp]) / pos
    return float(np.sum(precision * recall_step))


def top_share_metrics(
    risk: np.ndarray, y: np.ndarray, share: float
) -> tuple[float | None, float | None, float | None]:
    """(precision, recall, lift) of the riskiest ``share`` of observations (stable order)."""
    n = risk.size
    if n == 0:
        return None, None, None
    k = max(1, math.ceil(share * n))
    top = np.argsort(-risk, kind="mergesort")[:k]
    hits = float(y[top].sum())
    pos = float(y.sum())
    base = pos / n
    precision = hits / k
    return precision, (hits / pos if pos else None), (precision / base if base else None)


def _percentile_interval(samples: list[float]) -> tuple[float | None, float | None]:
    if not samples:
        return None, None
    arr = np.sort(np.asarray(samples))
    return float(np.quantile(arr, 0.025)), float(np.quantile(arr, 0.975))


def _bootstrap_weights(
    account_index: np.ndarray, n_accounts: int, rounds: int, seed: int
) -> Iterable[np.ndarray]:
    """Row weights of ``rounds`` resamples of whole accounts (observations of one account
    are not independent, so they are resampled together)."""
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        counts = np.bincount(rng.integers(0, n_accounts, n_accounts), minlength=n_accounts)
        yield counts[account_index].astype(float)


def vectorized_composite(subs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``composite_score`` for every row of ``subs`` (NaN = no data) at once, unrounded.

    Used only to search weights quickly; the calibrated config is then judged by the real
    ``score_health``. A unit test holds this equal to ``composite_score``.
    """
    has = ~np.isnan(subs) & (weights > 0)
    wsum = (has * weights).sum(axis=1)
    num = np.where(has, subs, 0.0) @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(wsum > 0, num / np.where(wsum > 0, wsum, 1.0), np.nan)


def _nonneg_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 3000) -> np.ndarray:
    """Coefficients (intercept excluded) of a logistic regression held >= 0.

    Projected gradient descent with Nesterov momentum on the mean log-loss plus a small
    ridge; the features are risks in 0..1, so one step size fits every history.
    """
    n, k = x.shape
    xb = np.c_[np.ones(n), x]
    beta = np.zeros(k + 1)
    prior = max(1e-6, min(1 - 1e-6, float(y.mean())))
    beta[0] = math.log(prior / (1 - prior))
    velocity = np.zeros_like(beta)
    step, ridge, momentum = 0.5, 1e-3, 0.9
    for _ in range(iterations):
        ahead = beta + momentum * velocity
        p = 1 / (1 + np.exp(-np.clip(xb @ ahead, -30, 30)))
        grad = xb.T @ (p - y) / n
        grad[1:] += ridge * ahead[1:]
        velocity = momentum * velocity - step * grad
        beta = beta + velocity
        negative = beta[1:] < 0
        beta[1:][negative] = 0.0
        velocity[1:][negative] = 0.0
    return beta[1:]


def integer_weights(raw: Mapping[str, float], total: int = 100) -> dict[str, float]:
    """Whole-number weights summing to ``total``, largest remainders first (ties by signal)."""
    s = math.fsum(raw.values())
    if s <= 0:
        raise CalibrationError("no signal carries any weight")
    exact = {n: raw.get(n, 0.0) * total / s for n in SIGNALS}
    floors = {n: math.floor(v) for n, v in exact.items()}
    left = total - sum(floors.values())
    order = sorted(SIGNALS, key=lambda n: (-(exact[n] - floors[n]), SIGNALS.index(n)))
    for n in order[:left]:
        floors[n] += 1
    return {n: float(floors[n]) for n in SIGNALS}


# ------------------------------------------------------------------- the fit


@dataclass
class FitResult:
    config: HealthConfig
    signals: list[SignalEvidence]
    notes: list[str]
    observations: int
    churners: int
    expanders: int
    fit_from: date
    fit_to: date
    band_rates: dict[str, float | None]  # fit-date churn rate per calibrated band


def _labels(
    rows: Sequence[FitObservation],
    outcomes: Mapping[str, Outcome],
    horizon: int,
    observed_until: date,
    event: Literal["churn", "expansion"],
) -> tuple[np.ndarray, np.ndarray]:
    """(mask of labelled rows, labels) for churn or expansion within ``horizon`` days."""
    h = timedelta(days=horizon)
    mask = np.zeros(len(rows), dtype=bool)
    y = np.zeros(len(rows))
    for i, r in enumerate(rows):
        out = outcomes.get(r.account_id, Outcome())
        if event == "expansion" and out.churned_on is not None and out.churned_on <= r.as_of:
            continue
        on = out.churned_on if event == "churn" else out.expanded_on
        label = label_within(r.as_of, on, h, observed_until)
        if label is not None:
            mask[i] = True
            y[i] = 1.0 if label else 0.0
    return mask, y


def _fit_points(
    points: np.ndarray, y: np.ndarray, base: HealthConfig, opts: CalibrationOptions
) -> tuple[int, int, list[str]]:
    c = base.churn
    base_rate = float(y.mean()) if y.size else 0.0
    notes: list[str] = []
    high = crit = None
    for p in range(1, int(points.max(initial=0)) + 1):
        sel = points >= p
        if sel.sum() < opts.min_support:
            break
        rate = float(y[sel].mean())
        if high is None and rate >= opts.high_lift * base_rate:
            high = p
        elif high is not None and p > high and rate >= opts.critical_lift * base_rate:
            crit = p
            break
    if high is None:
        notes.append(
            f"churn levels: no behavioral-points threshold reached {opts.high_lift:g}x the base "
            f"churn rate on {opts.min_support}+ observations; high_points stays {c.high_points}"
        )
        high = c.high_points
    if crit is None:
        crit = max(high, c.critical_points)
        notes.append(
            f"churn levels: no threshold above high_points reached {opts.critical_lift:g}x the "
            f"base rate; critical_points is {crit}"
        )
    return high, max(high, crit), notes


def _fit_expansion(
    rows: Sequence[FitObservation], mask: np.ndarray, y: np.ndarray, base: HealthConfig
) -> tuple[float, int]:
    util = np.array([r.seat_util if r.seat_util is not None else np.nan for r in rows])
    prev = np.array([r.seat_util_prev if r.seat_util_prev is not None else np.nan for r in rows])
    over = np.array([r.over_provisioned for r in rows])
    best = (-1.0, base.expansion.seat_utilization_min, base.expansion.sustained_windows)
    for level in np.round(np.arange(0.60, 1.001, 0.05), 2):
        for windows in (2, 1):
            now = np.nan_to_num(util, nan=-1) >= level
            before = np.nan_to_num(prev, nan=-1) >= level
            predicted = (now & (before if windows == 2 else True)) | over
            tp = float((predicted & mask & (y == 1)).sum())
            fp = float((predicted & mask & (y == 0)).sum())
            fn = float((~predicted & mask & (y == 1)).sum())
            f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
            if f1 > best[0] + 1e-9:
                best = (f1, float(level), windows)
    return best[1], best[2]


def _signal_interval(
    risk: np.ndarray,
    y: np.ndarray,
    acct: np.ndarray,
    n_accounts: int,
    opts: CalibrationOptions,
    salt: int,
) -> tuple[float | None, float | None]:
    """95% interval of one signal's AUC (whole accounts resampled); None without bootstrap."""
    if opts.bootstrap == 0 or risk.size == 0:
        return None, None
    rounds = max(50, opts.bootstrap // 2)
    samples = [
        a
        for w in _bootstrap_weights(acct, n_accounts, rounds, opts.seed + 1000 + salt)
        if (a := weighted_auc(risk, y, w)) is not None
    ]
    return _percentile_interval(samples)


def _auc_or_none(risk: np.ndarray, y: np.ndarray) -> float | None:
    return weighted_auc(risk, y) if risk.size else None


def fit(
    rows: Sequence[FitObservation],
    outcomes: Mapping[str, Outcome],
    base: HealthConfig,
    observed_until: date,
    opts: CalibrationOptions,
) -> FitResult:
    """A calibrated config from the fit observations (steps 2-6 of the module docstring)."""
    if not rows:
        raise CalibrationError("no fit observations: widen --from/--to or move the split later")
    horizon = opts.horizon
    mask, y_all = _labels(rows, outcomes, horizon, observed_until, "churn")
    labelled = [r for r, m in zip(rows, mask, strict=True) if m]
    y = y_all[mask]
    churners = {r.account_id for r, yy in zip(labelled, y, strict=True) if yy}
    if len(churners) < opts.min_fit_churners:
        raise CalibrationError(
            f"only {len(churners)} account(s) churned within {horizon} days of a fit date; "
            f"calibration needs at least {opts.min_fit_churners} (start --from earlier, "
            "or lower --min-churners knowing the result will be noisy)"
        )
    subs = np.array(
        [[np.nan if v is None else v for v in r.sub_scores] for r in labelled], dtype=float
    )
    # 2. per-signal evidence, with an interval from resampling whole accounts
    ids = sorted({r.account_id for r in labelled})
    index = {a: i for i, a in enumerate(ids)}
    acct = np.array([index[r.account_id] for r in labelled], dtype=np.int64)
    evidence: list[SignalEvidence] = []
    eligible: list[int] = []
    for j, name in enumerate(SIGNALS):
        has = ~np.isnan(subs[:, j])
        auc = _auc_or_none(100 - subs[has, j], y[has]) if has.any() else None
        low, high = _signal_interval(100 - subs[has, j], y[has], acct[has], len(ids), opts, j)
        direction: Direction
        if auc is None:
            direction = "no data"
        elif auc > 0.5 + opts.min_edge and (low is None or low > 0.5):
            direction = "protective"
            eligible.append(j)
        elif auc < 0.5 - opts.min_edge and (high is None or high < 0.5):
            direction = "anti-predictive"
        else:
            direction = "uninformative"
        evidence.append(
            SignalEvidence(
                signal=name,
                label=SIGNAL_LABELS[name],
                coverage=round(float(has.mean()), 4),
                auc=None if auc is None else round(auc, 4),
                direction=direction,
                current_weight=base.weights[name],
                calibrated_weight=0.0,
            )
        )
    if not eligible:
        raise CalibrationError(
            "no signal ranks churn better than chance on the fit dates; the history may be "
            "too short or the telemetry unrelated to churn (see the per-signal AUCs)"
        )
    # 3. weights: non-negative logistic start, then search on the composite's own AUC
    risk = (100 - subs[:, eligible]) / 100
    means = np.nanmean(risk, axis=0)
    risk = np.where(np.isnan(risk), means, risk)
    coef = _nonneg_logistic(risk, y)
    weights = np.zeros(len(SIGNALS))
    if coef.sum() > 0:
        weights[eligible] = coef / coef.sum() * 100
    else:
        weights[eligible] = 100 / len(eligible)

    def objective(w: np.ndarray) -> float:
        score = vectorized_composite(subs, w)
        has = ~np.isnan(score)
        return weighted_auc(100 - score[has], y[has]) or 0.0

    best = objective(weights)
    for _ in range(3):
        improved = False
        for j in eligible:
            for m in _MULTIPLIERS:
                trial = weights.copy()
                trial[j] = weights[j] * m if weights[j] > 0 else (10.0 if m > 1 else 0.0)
                if trial.sum() <= 0:
                    continue
                value = objective(trial)
                if value > best + 1e-4:
                    best, weights, improved = value, trial, True
        if not improved:
            break
    new_weights = integer_weights(dict(zip(SIGNALS, weights, strict=True)))
    for e in evidence:
        e.calibrated_weight = new_weights[e.signal]
    # 4. bands from the fit-date score distribution
    w_vec = np.array([new_weights[n] for n in SIGNALS])
    fit_scores = vectorized_composite(subs, w_vec)
    # coverage under the new weights: an UNSCORED observation (below bands.min_coverage)
    # gets no band, so it neither sets the thresholds nor counts in a band's rate
    covered = (~np.isnan(subs) * w_vec).sum(axis=1) / w_vec.sum()
    banded = ~np.isnan(fit_scores) & (covered >= base.bands.min_coverage)
    scored = fit_scores[banded]
    amber_min = float(round(np.quantile(scored, opts.red_share), 1))
    green_min = float(round(np.quantile(scored, min(0.99, opts.red_share + opts.amber_share)), 1))
    notes: list[str] = []
    if green_min <= amber_min:
        green_min = min(100.0, amber_min + 1)
        notes.append("bands: the fit scores are bunched; GREEN starts 1 point above AMBER")
    # 5. churn levels from behavioral points
    points = np.array([r.behavioral_points for r in labelled], dtype=float)
    high, crit, point_notes = _fit_points(points, y, base, opts)
    notes += point_notes
    # 6. expansion
    emask, ey = _labels(rows, outcomes, horizon, observed_until, "expansion")
    expanders = {r.account_id for r, m, yy in zip(rows, emask, ey, strict=True) if m and yy}
    if len(expanders) >= opts.min_fit_expanders:
        util_min, windows = _fit_expansion(rows, emask, ey, base)
    else:
        util_min, windows = base.expansion.seat_utilization_min, base.expansion.sustained_windows
        notes.append(
            f"expansion: {len(expanders)} expansion(s) on the fit dates (need "
            f"{opts.min_fit_expanders}); the seats rule keeps its thresholds"
        )
    overrides = {
        "weights": new_weights,
        "bands": {"green_min": green_min, "amber_min": amber_min},
        "churn": {"high_points": high, "critical_points": crit},
        "expansion": {"seat_utilization_min": util_min, "sustained_windows": windows},
        "calibration": None,
    }
    digest = hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8]
    dates = sorted({r.as_of for r in rows})
    version = f"{base.version.split('+cal')[0]}+cal-{dates[-1].isoformat()}-{digest}"
    config = base.with_overrides({**overrides, "version": version})
    # fit-date churn rate per calibrated band: the "predicted" column of the reliability table
    band_rates: dict[str, float | None] = {}
    for band in SCORED_BANDS:
        lo = {"RED": -math.inf, "AMBER": amber_min, "GREEN": green_min}[band]
        hi = {"RED": amber_min, "AMBER": green_min, "GREEN": math.inf}[band]
        rounded = np.floor(fit_scores * 10 + 0.5) / 10
        sel = banded & (rounded >= lo) & (rounded < hi)
        band_rates[band] = float(y[sel].mean()) if sel.any() else None
    return FitResult(
        config=config,
        signals=evidence,
        notes=notes,
        observations=len(labelled),
        churners=len(churners),
        expanders=len(expanders),
        fit_from=dates[0],
        fit_to=dates[-1],
        band_rates=band_rates,
    )


# ----------------------------------------------------------------- the driver


@dataclass
class Calibrator:
    """Feed it facts date by date: fit dates first, then ``fit()``, then validation dates.

    ``outcomes`` maps account ids to when churn became known and when they expanded.
    """

    current: HealthConfig
    outcomes: Mapping[str, Outcome]
    observed_until: date
    split_on: date
    options: CalibrationOptions = field(default_factory=CalibrationOptions)
    fit_rows: list[FitObservation] = field(default_factory=list)
    validation_rows: list[ValidationObservation] = field(default_factory=list)
    result: FitResult | None = None
    _validation_subs: list[tuple[float | None, ...]] = field(default_factory=list)

    def is_fit_date(self, d: date) -> bool:
        return d + timedelta(days=max(self.options.horizons)) < self.split_on

    def is_validation_date(self, d: date) -> bool:
        return d >= self.split_on

    def add_fit(self, facts: AccountFacts, assessment: Assessment | None = None) -> None:
        if assessment is not None:
            self.fit_rows.append(FitObservation.of(facts, assessment))
            return
        # the fit reads sub-scores and churn points only: skip Lean and expansion rules
        snapshot = score_health(facts, self.current)
        churn = assess_churn(facts, snapshot, self.current)
        self.fit_rows.append(FitObservation.from_parts(facts, snapshot, churn))

    def fit(self) -> HealthConfig:
        self.result = fit(
            self.fit_rows, self.outcomes, self.current, self.observed_until, self.options
        )
        return self.result.config

    def add_validation(self, facts: AccountFacts, current: Assessment | None = None) -> None:
        if self.result is None:
            raise RuntimeError("fit() before validation dates")
        old = current or assess_account(facts, self.current)
        new = assess_account(facts, self.result.config)
        self.validation_rows.append(
            ValidationObservation(
                facts.account_id, facts.as_of.date(), Verdict.of(old), Verdict.of(new)
            )
        )
        self._validation_subs.append(
            tuple(s.sub_score for s in old.snapshot.signals)
        )  # per-signal AUC on later dates

    def report(self) -> tuple[CalibrationReport, HealthConfig]:
        """The report, and the calibrated config with its validated band churn rates."""
        if self.result is None:
            raise RuntimeError("fit() first")
        return build_report(self)


def _metrics(
    rows: Sequence[ValidationObservation],
    which: Literal["current", "calibrated"],
    version: str,
    y: np.ndarray,
    outcomes: Mapping[str, Outcome],
    horizon: int,
    observed_until: date,
    opts: CalibrationOptions,
    predicted: Mapping[str, float | None] | None,
) -> tuple[ConfigMetrics, np.ndarray]:
    verdicts = [getattr(r, which) for r in rows]
    risk = np.array([np.nan if v.score is None else 100 - v.score for v in verdicts])
    scored = ~np.isnan(risk)
    auc = weighted_auc(risk[scored], y[scored]) if scored.any() else None
    pr = average_precision(risk[scored], y[scored]) if scored.any() else None
    precision, recall, lift = top_share_metrics(risk[scored], y[scored], opts.top_share)
    positives = float(y.sum())

    def groups(key: str, order: Sequence[str]) -> list[GroupRate]:
        out = []
        for g in order:
            sel = np.array([getattr(v, key) == g for v in verdicts])
            n, hit = int(sel.sum()), float(y[sel].sum())
            out.append(
                GroupRate(
                    group=g,
                    observations=n,
                    churned=int(hit),
                    rate=hit / n if n else None,
                    recall=hit / positives if positives else None,
                    predicted_rate=(predicted or {}).get(g) if key == "band" else None,
                )
            )
        return out

    other = sorted({v.band for v in verdicts if v.band not in BANDS}, key=str)
    bands = groups("band", [*SCORED_BANDS, *[str(b) for b in other if b is not None]])
    levels = groups("churn_level", ["CRITICAL", "HIGH", "MEDIUM", "LOW"])
    bt = run_backtest(
        [
            Observation(
                account_id=r.account_id,
                as_of=r.as_of,
                score=v.score,
                churn_level=v.churn_level,  # type: ignore[arg-type]
                expansion_flagged=v.expansion,
            )
            for r, v in zip(rows, verdicts, strict=True)
        ],
        outcomes,
        horizon_days=horizon,
        lead_days=[d for d in (30, 60, 90) if d < horizon] or [0],
        observed_until=observed_until,
    )
    return (
        ConfigMetrics(
            version=version,
            auc=Interval(value=auc),
            pr_auc=pr,
            top_share=opts.top_share,
            precision_at_top=precision,
            recall_at_top=recall,
            lift_at_top=lift,
            bands=bands,
            levels=levels,
            backtest=bt,
        ),
        risk,
    )


def build_report(cal: Calibrator) -> tuple[CalibrationReport, HealthConfig]:
    result = cal.result
    assert result is not None
    opts = cal.options
    all_rows = cal.validation_rows
    if not all_rows:
        raise CalibrationError("no validation observations: --to must be on or after the split")
    per_horizon: list[HorizonResult] = []
    rates: dict[str, dict[str, BandChurnRate]] = {}
    val_churners: set[str] = set()
    for h in sorted(set(opts.horizons)):
        keep: list[int] = []
        labels: list[float] = []
        for i, r in enumerate(all_rows):
            out = cal.outcomes.get(r.account_id, Outcome())
            label = label_within(r.as_of, out.churned_on, timedelta(days=h), cal.observed_until)
            if label is not None:
                keep.append(i)
                labels.append(1.0 if label else 0.0)
        rows = [all_rows[i] for i in keep]
        y = np.array(labels)
        val_churners |= {r.account_id for r, yy in zip(rows, y, strict=True) if yy}
        cur, risk_cur = _metrics(
            rows, "current", cal.current.version, y, cal.outcomes, h, cal.observed_until,
            opts, None,
        )  # fmt: skip
        new, risk_new = _metrics(
            rows, "calibrated", result.config.version, y, cal.outcomes, h, cal.observed_until,
            opts, result.band_rates if h == opts.horizon else None,
        )  # fmt: skip
        # paired cluster bootstrap over accounts
        both = ~np.isnan(risk_cur) & ~np.isnan(risk_new)
        ids = sorted({r.account_id for r in rows})
        index = {a: i for i, a in enumerate(ids)}
        acct = np.array([index[r.account_id] for r in rows], dtype=np.int64)[both]
        a_cur, a_new, delta = [], [], []
        if both.any() and y[both].sum() > 0:
            for w in _bootstrap_weights(acct, len(ids), opts.bootstrap, opts.seed + h):
                u = weighted_auc(risk_cur[both], y[both], w)
                v = weighted_auc(risk_new[both], y[both], w)
                if u is not None and v is not None:
                    a_cur.append(u)
                    a_new.append(v)
                    delta.append(v - u)
        cur.auc.low, cur.auc.high = _percentile_interval(a_cur)
        new.auc.low, new.auc.high = _percentile_interval(a_new)
        d_lo, d_hi = _percentile_interval(delta)
        d_val = (
            new.auc.value - cur.auc.value
            if new.auc.value is not None and cur.auc.value is not None
            else None
        )
        per_horizon.append(
            HorizonResult(
                horizon_days=h,
                observations=len(rows),
                positives=int(y.sum()),
                base_rate=float(y.mean()) if y.size else None,
                current=cur,
                calibrated=new,
                auc_delta=Interval(value=d_val, low=d_lo, high=d_hi),
            )
        )
        rates[str(h)] = {
            g.group: BandChurnRate(observations=g.observations, churned=g.churned, rate=g.rate)
            for g in new.bands
            if g.group in SCORED_BANDS
        }
    if len(val_churners) < opts.min_validation_churners:
        raise CalibrationError(
            f"only {len(val_churners)} account(s) churned within the horizon of a validation "
            f"date; validating needs at least {opts.min_validation_churners} (extend --to or "
            "--observed-until, or move the split earlier)"
        )
    # per-signal AUC on the validation dates (does each direction hold later?)
    main = next(p for p in per_horizon if p.horizon_days == opts.horizon)
    _validation_signal_auc(cal, result.signals, opts.horizon)
    val_dates = sorted({r.as_of for r in all_rows})
    info = CalibrationInfo(
        based_on_version=cal.current.version,
        fit_from=result.fit_from,
        fit_to=result.fit_to,
        validate_from=val_dates[0],
        validate_to=val_dates[-1],
        observed_until=cal.observed_until,
        horizons=sorted(set(opts.horizons)),
        churn_rate_by_band=rates,
    )
    config = result.config.model_copy(update={"calibration": info})
    d = main.auc_delta
    better = d.value is not None and d.value > 0 and d.low is not None and d.low > 0
    if better:
        verdict = (
            f"The calibrated config ranks churn within {opts.horizon} days better on the "
            f"validation dates: ROC AUC {_f(main.calibrated.auc.value)} vs "
            f"{_f(main.current.auc.value)} (difference {_f(d.value)}, 95% interval "
            f"{_f(d.low)} to {_f(d.high)})."
        )
    elif d.value is not None and d.value > 0:
        verdict = (
            f"The calibrated config is not clearly better: ROC AUC {_f(main.calibrated.auc.value)}"
            f" vs {_f(main.current.auc.value)}, but the difference's 95% interval "
            f"({_f(d.low)} to {_f(d.high)}) includes 0. Gather more history before adopting."
        )
    else:
        verdict = (
            f"The calibrated config is NOT better on the validation dates: ROC AUC "
            f"{_f(main.calibrated.auc.value)} vs {_f(main.current.auc.value)}. Keep the "
            "current config."
        )
    report = CalibrationReport(
        current_version=cal.current.version,
        calibrated_version=config.version,
        fit_from=result.fit_from,
        fit_to=result.fit_to,
        validate_from=val_dates[0],
        validate_to=val_dates[-1],
        observed_until=cal.observed_until,
        fit_observations=result.observations,
        fit_churners=result.churners,
        fit_expanders=result.expanders,
        validation_observations=len(all_rows),
        validation_churners=len(val_churners),
        fit_horizon=opts.horizon,
        bootstrap=opts.bootstrap,
        signals=result.signals,
        bands={"green_min": config.bands.green_min, "amber_min": config.bands.amber_min},
        churn_points={
            "high_points": config.churn.high_points,
            "critical_points": config.churn.critical_points,
        },
        expansion={
            "seat_utilization_min": config.expansion.seat_utilization_min,
            "sustained_windows": config.expansion.sustained_windows,
        },
        notes=result.notes,
        horizons=per_horizon,
        better=better,
        verdict=verdict,
    )
    return report, config


def _validation_signal_auc(cal: Calibrator, signals: list[SignalEvidence], horizon: int) -> None:
    h = timedelta(days=horizon)
    labels: list[float] = []
    subs: list[tuple[float | None, ...]] = []
    for r, s in zip(cal.validation_rows, cal._validation_subs, strict=True):
        out = cal.outcomes.get(r.account_id, Outcome())
        label = label_within(r.as_of, out.churned_on, h, cal.observed_until)
        if label is not None:
            labels.append(1.0 if label else 0.0)
            subs.append(s)
    if not subs:
        return
    y = np.array(labels)
    m = np.array([[np.nan if v is None else v for v in row] for row in subs], dtype=float)
    for j, e in enumerate(signals):
        has = ~np.isnan(m[:, j])
        auc = weighted_auc(100 - m[has, j], y[has]) if has.any() else None
        e.validation_auc = None if auc is None else round(auc, 4)


# ------------------------------------------------------- what a draft may quote


def band_churn_rate(
    config: HealthConfig, band: str | None, horizon_days: int | None = None
) -> tuple[int, BandChurnRate] | None:
    """(horizon, observed churn rate of ``band`` within it) from the config's calibration
    (default horizon: its longest); None when not calibrated or the band was not measured."""
    info = config.calibration
    if info is None or band is None:
        return None
    h = horizon_days if horizon_days is not None else max(info.horizons)
    rate = info.churn_rate_by_band.get(str(h), {}).get(band)
    return None if rate is None else (h, rate)


def churn_odds(
    config: HealthConfig, band: str | None, horizon_days: int | None = None
) -> str | None:
    """ "Accounts in RED churned 1 in 3 times within 90 days ...", from an adopted calibration.

    None when the config was not calibrated, the band was not seen on the validation dates,
    or nobody in it churned (a draft then states no odds rather than a made-up one).
    """
    info = config.calibration
    found = band_churn_rate(config, band, horizon_days)
    if info is None or found is None:
        return None
    h, rate = found
    if rate.rate is None or rate.churned == 0:
        return None
    return (
        f"on this team's own history, accounts in {band} churned about 1 in {one_in_n(rate.rate)} times "
        f"within {h} days ({rate.churned} of {rate.observations} account-dates, "
        f"{info.validate_from} to {info.validate_to})"
    )


# ------------------------------------------------------------------ rendering


def _f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _p(x: float | None) -> str:
    return "n/a" if x is None else fmt_pct(x, 1)


def _ci(i: Interval) -> str:
    if i.value is None:
        return "n/a"
    if i.low is None or i.high is None:
        return _f(i.value)
    return f"{_f(i.value)} [{_f(i.low)}, {_f(i.high)}]"


def render_report(report: CalibrationReport) -> str:
    """The report as Markdown (also what `starter.py calibrate` prints)."""
    r = report
    lines = [
        f"# Calibration report: {r.calibrated_version}",
        "",
        f"Current config `{r.current_version}` vs calibrated `{r.calibrated_version}`.",
        f"Fit on {r.fit_from} .. {r.fit_to} ({r.fit_observations} observations, "
        f"{r.fit_churners} churned accounts, {r.fit_expanders} expansions; churn within "
        f"{r.fit_horizon} days). Validated on {r.validate_from} .. {r.validate_to} "
        f"({r.validation_observations} observations, {r.validation_churners} churned accounts); "
        f"outcomes known until {r.observed_until}. Intervals: 95%, {r.bootstrap} bootstrap "
        "resamples of whole accounts.",
        "",
        f"**Verdict:** {r.verdict}",
        "",
        "## Side by side on the validation dates",
        "",
        "| horizon | metric | current | calibrated |",
        "|---|---|---|---|",
    ]
    for h in r.horizons:
        c, n = h.current, h.calibrated
        hd = f"{h.horizon_days} d"
        lines += [
            f"| {hd} | observations (churned) | {h.observations} ({h.positives}) | |",
            f"| {hd} | ROC AUC | {_ci(c.auc)} | {_ci(n.auc)} |",
            f"| {hd} | AUC difference | | {_ci(h.auc_delta)} |",
            f"| {hd} | PR AUC (base rate {_p(h.base_rate)}) | {_f(c.pr_auc)} | {_f(n.pr_auc)} |",
            f"| {hd} | precision in riskiest {_p(c.top_share)} | {_p(c.precision_at_top)} | "
            f"{_p(n.precision_at_top)} |",
            f"| {hd} | recall in riskiest {_p(c.top_share)} | {_p(c.recall_at_top)} | "
            f"{_p(n.recall_at_top)} |",
            f"| {hd} | lift in riskiest {_p(c.top_share)} | {_f(c.lift_at_top, 2)} | "
            f"{_f(n.lift_at_top, 2)} |",
            f"| {hd} | HIGH+ precision / recall | {_p(c.backtest.churn_high.precision)} / "
            f"{_p(c.backtest.churn_high.recall)} | {_p(n.backtest.churn_high.precision)} / "
            f"{_p(n.backtest.churn_high.recall)} |",
        ]
        for lc, ln in zip(c.backtest.lead_times, n.backtest.lead_times, strict=True):
            if lc.days <= 0:
                continue
            lines.append(
                f"| {hd} | churners flagged HIGH+ >= {lc.days} d before | "
                f"{_p(lc.share)} ({lc.churners_flagged}/{lc.churners_eligible}) | "
                f"{_p(ln.share)} ({ln.churners_flagged}/{ln.churners_eligible}) |"
            )
        lines.append(
            f"| {hd} | expansion precision / recall | {_p(c.backtest.expansion.precision)} / "
            f"{_p(c.backtest.expansion.recall)} | {_p(n.backtest.expansion.precision)} / "
            f"{_p(n.backtest.expansion.recall)} |"
        )
    main = next(h for h in r.horizons if h.horizon_days == r.fit_horizon)
    for title, which in (("current", main.current), ("calibrated", main.calibrated)):
        lines += [
            "",
            f"## Bands and churn levels, {title} config (churn within {r.fit_horizon} days)",
            "",
            "| group | observations | churned | churn rate (precision) | share of churners "
            "(recall) | fit-date rate |",
            "|---|---|---|---|---|---|",
        ]
        for g in [*which.bands, *which.levels]:
            lines.append(
                f"| {g.group} | {g.observations} | {g.churned} | {_p(g.rate)} | {_p(g.recall)} | "
                f"{_p(g.predicted_rate) if g.predicted_rate is not None else ''} |"
            )
    lines += [
        "",
        "The calibrated config's fit-date rate next to the validation rate is the reliability "
        "check: a band should mean on later dates what it meant on the fit dates.",
        "",
        "## Signals",
        "",
        "| signal | coverage | AUC fit | AUC validation | direction on this history | "
        "weight now | calibrated |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in r.signals:
        lines.append(
            f"| {s.label} | {_p(s.coverage)} | {_f(s.auc)} | {_f(s.validation_auc)} | "
            f"{s.direction} | {s.current_weight:g} | {s.calibrated_weight:g} |"
        )
    anti = [s.label for s in r.signals if s.direction == "anti-predictive"]
    if anti:
        lines += [
            "",
            "Anti-predictive here (a better value of the signal came before *more* churn), so "
            f"weight 0: {', '.join(anti)}.",
        ]
    lines += [
        "",
        "## Calibrated thresholds",
        "",
        f"- Bands: GREEN from {r.bands['green_min']:g}, AMBER from {r.bands['amber_min']:g}, "
        "RED below.",
        f"- Churn levels: HIGH from {r.churn_points['high_points']} behavioral points, CRITICAL "
        f"from {r.churn_points['critical_points']}.",
        f"- Expansion (seats): {fmt_pct(r.expansion['seat_utilization_min'])} of seats active "
        f"in {int(r.expansion['sustained_windows'])} consecutive window(s).",
    ]
    if r.notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in r.notes]]
    return "\n".join(lines) + "\n"
