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
