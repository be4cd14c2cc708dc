"""GRR and NRR by month from contract terms (domain/retention.py)."""

from __future__ import annotations

from datetime import date

import pytest

from domain.retention import ContractTerm, arr_in_force, monthly_retention


def term(account: str, start: str, end: str, arr: float) -> ContractTerm:
    return ContractTerm(
        account_id=account,
        start_date=date.fromisoformat(start),
        end_date=date.fromisoformat(end),
        arr=arr,
    )


TERMS = [
    # a: renews flat in March
    term("a", "2025-03-01", "2026-02-28", 100_000),
    term("a", "2026-03-01", "2027-02-28", 100_000),
    # b: its term ends on 31 March with no later term: March's churn
    term("b", "2025-04-01", "2026-03-31", 50_000),
    # c: expands mid-term in March (amendment with more ARR)
    term("c", "2025-06-01", "2026-05-31", 40_000),
    term("c", "2026-03-15", "2027-03-14", 60_000),
    # d: renews smaller in March (contraction)
    term("d", "2025-03-10", "2026-03-09", 30_000),
    term("d", "2026-03-10", "2027-03-09", 20_000),
    # e: new logo in March: not in March's cohort, in April's
    term("e", "2026-03-05", "2027-03-04", 70_000),
]


def test_arr_in_force_follows_the_latest_term_and_drops_to_zero_after_a_churn() -> None:
    b = [t for t in TERMS if t.account_id == "b"]
    c = [t for t in TERMS if t.account_id == "c"]
    assert arr_in_force(b, date(2026, 3, 31)) == 50_000
    assert arr_in_force(b, date(2026, 4, 1)) == 0
    assert arr_in_force(c, date(2026, 3, 14)) == 40_000
    assert arr_in_force(c, date(2026, 3, 15)) == 60_000
    assert arr_in_force(c, date(2025, 5, 31)) == 0


def test_march_counts_churn_contraction_and_expansion_and_leaves_new_logos_out() -> None:
    march, april = monthly_retention(TERMS, date(2026, 3, 1), date(2026, 4, 20))
    assert march.month == "2026-03"
    assert march.accounts == 4  # a, b, c, d; e started on the 5th
    assert march.starting_arr == 220_000
    assert march.churned_arr == 50_000  # b has no ARR on 1 April
    assert march.contraction_arr == 10_000
    assert march.expansion_arr == 20_000
    assert march.grr == pytest.approx((220_000 - 50_000 - 10_000) / 220_000)
    assert march.nrr == pytest.approx((100_000 + 60_000 + 20_000) / 220_000)
    assert april.accounts == 4  # a, c, d and the new logo e; b is gone
    assert april.starting_arr == 250_000
    assert april.grr == april.nrr == 1.0


def test_an_empty_month_has_no_ratio() -> None:
    (jan,) = monthly_retention(TERMS, date(2024, 1, 1), date(2024, 1, 31))
    assert jan.accounts == 0 and jan.grr is None and jan.nrr is None


def test_months_roll_over_the_year_end() -> None:
    months = monthly_retention(TERMS, date(2025, 11, 3), date(2026, 2, 1))
    assert [m.month for m in months] == ["2025-11", "2025-12", "2026-01", "2026-02"]


def test_the_total_row_is_the_period_as_one_cohort() -> None:
    from domain.retention import period_retention

    total = period_retention(TERMS, date(2026, 3, 1), date(2026, 4, 30))
    # Cohort on 1 March: a 100k, b 50k, c 40k, d 30k = 220k (e starts on the 5th: left out).
    # On 1 May: a 100k, b 0 (churned), c 60k (expanded), d 20k (contracted) = 180k.
    assert total.month == "2026-03..2026-04"
    assert total.accounts == 4
    assert total.starting_arr == 220_000
    assert total.ending_arr == 180_000
    assert (total.churned_arr, total.contraction_arr, total.expansion_arr) == (
        50_000,
        10_000,
        20_000,
    )
    assert total.grr == pytest.approx(160_000 / 220_000)  # 72.7%
    assert total.nrr == pytest.approx(180_000 / 220_000)  # 81.8%


def test_retention_by_group_splits_the_cohort_and_names_accounts_without_a_group() -> None:
    from domain.retention import retention_by_group

    tiers = {"a": "tier-1", "b": "tier-1", "c": "tier-2", "d": "tier-2", "e": "tier-2"}
    extra = [*TERMS, term("f", "2025-01-01", "2026-12-31", 10_000)]  # f: no tier on file
    groups = retention_by_group(extra, tiers, date(2026, 3, 1), date(2026, 3, 1))
    assert list(groups) == ["(none)", "tier-1", "tier-2"]
    (t1,), t1_total = groups["tier-1"]
    # tier-1 in March: a 100k + b 50k = 150k; on 1 April a 100k, b churned: GRR = NRR = 2/3.
    assert (t1.starting_arr, t1.ending_arr, t1.churned_arr) == (150_000, 100_000, 50_000)
    assert t1.grr == pytest.approx(100_000 / 150_000)
    assert t1.nrr == pytest.approx(100_000 / 150_000)
    assert t1_total.grr == t1.grr  # a one-month period is that month
    (t2,), _ = groups["tier-2"]
    # tier-2 in March: c 40k + d 30k = 70k (e is a new logo); 1 April: c 60k + d 20k = 80k.
    # GRR = (70k - 10k contraction) / 70k = 85.7%; NRR = 80k / 70k = 114.3%.
    assert (t2.accounts, t2.starting_arr, t2.ending_arr) == (2, 70_000, 80_000)
    assert t2.grr == pytest.approx(60_000 / 70_000)
    assert t2.nrr == pytest.approx(80_000 / 70_000)
    (none,), _ = groups["(none)"]
    assert none.accounts == 1 and none.grr == 1.0
