"""Back-test metrics on a small hand-worked history."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.backtest import (
    BacktestReport,
    BinaryMetrics,
    Observation,
    Outcome,
    render_backtest,
    roc_auc,
    run_backtest,
)

# A churns 2026-06-20 and is flagged HIGH 111 days before; D churns 2026-04-15 unflagged;
# B expands 2026-06-01 (flagged twice); C is a false HIGH alarm and a false expansion flag.
OBS = [
    ("A", date(2026, 1, 1), 60.0, "MEDIUM", False),
    ("A", date(2026, 3, 1), 40.0, "HIGH", False),
    ("A", date(2026, 5, 1), 30.0, "CRITICAL", False),
    ("A", date(2026, 7, 15), 20.0, "CRITICAL", False),  # after churn: dropped
    ("B", date(2026, 1, 1), 80.0, "LOW", False),
    ("B", date(2026, 3, 1), 85.0, "LOW", True),
    ("B", date(2026, 5, 1), 90.0, "LOW", True),
    ("C", date(2026, 1, 1), 50.0, "HIGH", False),
    ("C", date(2026, 3, 1), 60.0, "LOW", True),
    ("D", date(2026, 1, 1), 65.0, "LOW", False),
    ("D", date(2026, 3, 1), 60.0, "MEDIUM", False),
]
OUTCOMES = {
    "A": (date(2026, 6, 20), None),
    "B": (None, date(2026, 6, 1)),
    "D": Outcome(churned_on=date(2026, 4, 15)),
}


@pytest.fixture(scope="module")
def report() -> BacktestReport:
    return run_backtest(OBS, OUTCOMES, horizon_days=180, lead_days=(30, 60, 90, 120))


def test_counts(report: BacktestReport) -> None:
    assert report.observations == 11
    assert report.accounts == 4
    assert report.churners == 2
    assert report.expanders == 1
    assert report.labelled_churn == 10  # A's post-churn observation dropped
    assert report.censored == 0


def test_precision_recall_of_high(report: BacktestReport) -> None:
    # positives: A x3, D x2. HIGH+: A 03-01, A 05-01 (true), C 01-01 (false).
    m = report.churn_high
    assert (m.true_positive, m.false_positive, m.false_negative, m.true_negative) == (2, 1, 3, 4)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 5)


def test_lead_times(report: BacktestReport) -> None:
    got = {
        lt.days: (lt.churners_flagged, lt.churners_eligible, lt.share) for lt in report.lead_times
    }
    assert got == {
        30: (1, 2, 0.5),
        60: (1, 2, 0.5),
        90: (1, 2, 0.5),
        120: (0, 1, 0.0),  # only A had an observation 120+ days out, and it was MEDIUM
    }


def test_auc_with_ties(report: BacktestReport) -> None:
    # 100 - score: positives 40, 60, 70, 35, 40; negatives 20, 15, 10, 50, 40.
    # wins: 3.5 + 5 + 5 + 3 + 3.5 = 20 of 25 pairs
    assert report.churn_auc == pytest.approx(0.8)
    assert (report.auc_positives, report.auc_negatives) == (5, 5)


def test_expansion_precision_recall(report: BacktestReport) -> None:
    m = report.expansion
    assert (m.true_positive, m.false_positive, m.false_negative, m.true_negative) == (2, 1, 1, 6)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 3)


def test_censoring() -> None:
    # B's 05-01 horizon (10-28) runs past 09-01 and B has not churned: unknown, dropped.
    r = run_backtest(OBS, OUTCOMES, horizon_days=180, observed_until=date(2026, 9, 1))
    assert r.censored == 1
    assert r.labelled_churn == 9


def test_horizon_is_a_parameter() -> None:
    # 60-day horizon: A 01-01 and A 03-01 no longer precede churn closely enough.
    r = run_backtest(OBS, OUTCOMES, horizon_days=60)
    m = r.churn_high
    # positives: A 05-01 (50 days), D 03-01 (45 days)
    assert m.true_positive + m.false_negative == 2
    assert m.true_positive == 1


def test_accepts_models_dicts_and_datetimes() -> None:
    rows = [
        Observation(account_id="X", as_of=date(2026, 1, 1), score=20, churn_level="HIGH"),
        {"account_id": "Y", "as_of": "2026-01-01", "score": 90, "churn_level": "LOW"},
        ("Z", datetime(2026, 1, 1, 9, tzinfo=UTC), None, "LOW", False),
    ]
    r = run_backtest(rows, {"X": {"churned_on": "2026-02-01"}, "Y": None})
    assert r.churn_high.true_positive == 1 and r.churn_high.true_negative == 2
    assert r.auc_positives == 1 and r.auc_negatives == 1  # Z has no score
    assert r.churn_auc == 1.0


def test_bad_horizon() -> None:
    with pytest.raises(ValueError, match="horizon_days"):
        run_backtest([], {}, horizon_days=0)


# ---------------------------------------------------------------------------- AUC


def test_roc_auc_known_values() -> None:
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert roc_auc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert roc_auc([4, 3, 2, 1], [False, False, True, True]) == 0.0
    assert roc_auc([5, 5, 5, 5], [False, True, False, True]) == 0.5
    assert roc_auc([1, 2, 2, 3], [False, False, True, True]) == 0.875
    assert roc_auc([1, 2], [True, True]) is None
    assert roc_auc([], []) is None
    with pytest.raises(ValueError):
        roc_auc([1], [True, False])


def test_binary_metrics_undefined_is_none() -> None:
    m = BinaryMetrics.from_pairs([(False, False)])
    assert m.precision is None and m.recall is None and m.true_negative == 1


def test_render(report: BacktestReport) -> None:
    text = render_backtest(report)
    assert "Back-test over 11 observations of 4 accounts (horizon 180 days)" in text
    assert "flagged >=  30 days before churn:  50.0% (1 of 2 churners" in text
    assert "precision 66.7%  recall 40.0%  (TP 2, FP 1, FN 3, TN 4)" in text
    assert "ROC AUC of (100 - score): 0.800  (5 positive, 5 negative observations)" in text
    assert BacktestReport.model_validate_json(report.model_dump_json()) == report


def test_leads_not_shorter_than_the_horizon_are_named_not_measured() -> None:
    r = run_backtest(OBS, OUTCOMES, horizon_days=60, lead_days=(30, 60, 90))
    assert [lt.days for lt in r.lead_times] == [30]
    assert r.leads_beyond_horizon == [60, 90]
    text = render_backtest(r)
    assert "flagged >=  30 days before churn" in text
    assert "flagged >= 60, 90 days before churn: not measured" in text
    assert "n/a" not in text.split("Churn warnings")[1].split("precision")[0]
    assert run_backtest(OBS, OUTCOMES, horizon_days=180).leads_beyond_horizon == []
