"""Gross and net revenue retention by month, from contract rows.

Pure: no I/O, no clock. The rule for the ARR in force follows the `contracts` table's
definition (README, Telemetry schema): the row in force at a date is the latest with
``start_date <= date``; once its ``end_date`` has passed with no later row, the account
has churned and carries no ARR.

For a month, the cohort is every account with ARR in force on its first day. Its ARR on
the first day of the next month is compared with that (a term ending on the month's last
day with no renewal is that month's churn):

- GRR = sum(min(end, start)) / sum(start): churn and contraction lower it, expansion
  cannot raise it above 100%;
- NRR = sum(end) / sum(start): expansion counts too.

Accounts that start during the month (new logos) are left out of that month's cohort.
The total of a period (``period_retention``) is one cohort too: the accounts with ARR on
its first day against the first day after it (not a sum or product of the months).
``retention_by_group`` splits the portfolio by tier, CSM or any other key first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from pydantic import BaseModel


class ContractTerm(BaseModel):
    account_id: str
    start_date: date
    end_date: date
    arr: float


class MonthRetention(BaseModel):
    month: str  # YYYY-MM
    accounts: int  # cohort: accounts with ARR in force on the first day
    starting_arr: float
    churned_arr: float  # ARR of cohort accounts with none left at month end
    contraction_arr: float
    expansion_arr: float
    ending_arr: float  # the cohort's ARR on the next month's first day (new logos excluded)
    grr: float | None  # None: empty cohort
    nrr: float | None


def arr_in_force(terms: Sequence[ContractTerm], on: date) -> float:
    """ARR of one account's terms on a date (0 before the first term and after a churn)."""
    current: ContractTerm | None = None
    for t in terms:
        if t.start_date <= on and (current is None or t.start_date > current.start_date):
            current = t
    if current is None or on > current.end_date:
        return 0.0
    return current.arr


def _month_starts(first: date, last: date) -> list[date]:
    out: list[date] = []
    d = date(first.year, first.month, 1)
    while d <= last:
        out.append(d)
        d = _next_month(d)
    return out


def _next_month(start: date) -> date:
    return date(start.year + (start.month == 12), start.month % 12 + 1, 1)


def _cohort(
    by_account: Mapping[str, Sequence[ContractTerm]], start: date, end: date, label: str
) -> MonthRetention:
    """The accounts with ARR on ``start``, compared with their ARR on ``end``."""
    n = 0
    starting = churned = contraction = expansion = ending = 0.0
    for rows in by_account.values():
        a0 = arr_in_force(rows, start)
        if a0 <= 0:
            continue
        a1 = arr_in_force(rows, end)
        n += 1
        starting += a0
        ending += a1
        if a1 <= 0:
            churned += a0
        elif a1 < a0:
            contraction += a0 - a1
        else:
            expansion += a1 - a0
    return MonthRetention(
        month=label,
        accounts=n,
        starting_arr=starting,
        churned_arr=churned,
        contraction_arr=contraction,
        expansion_arr=expansion,
        ending_arr=ending,
        grr=(starting - churned - contraction) / starting if starting else None,
        nrr=ending / starting if starting else None,
    )


def _by_account(terms: Iterable[ContractTerm]) -> dict[str, list[ContractTerm]]:
    by_account: dict[str, list[ContractTerm]] = defaultdict(list)
    for t in terms:
        by_account[t.account_id].append(t)
    return by_account


def monthly_retention(
    terms: Iterable[ContractTerm], first_month: date, last_month: date
) -> list[MonthRetention]:
    """GRR and NRR for every month from ``first_month`` to ``last_month`` (any day in each)."""
    by_account = _by_account(terms)
    return [
        _cohort(by_account, start, _next_month(start), f"{start:%Y-%m}")
        for start in _month_starts(first_month, last_month)
    ]


def period_retention(
    terms: Iterable[ContractTerm], first_month: date, last_month: date
) -> MonthRetention:
    """The whole period as one cohort (the total row of a retention table): the accounts
    with ARR on the first day of ``first_month``, compared with the first day after
    ``last_month``; accounts that started during the period are left out, as in a month.
    Its label is ``"YYYY-MM..YYYY-MM"``."""
    start = date(first_month.year, first_month.month, 1)
    last = date(last_month.year, last_month.month, 1)
    return _cohort(_by_account(terms), start, _next_month(last), f"{start:%Y-%m}..{last:%Y-%m}")


def retention_by_group(
    terms: Iterable[ContractTerm],
    group_of: Mapping[str, str],
    first_month: date,
    last_month: date,
) -> dict[str, tuple[list[MonthRetention], MonthRetention]]:
    """Monthly retention and the period total per group (tier, CSM, ...): ``group_of`` maps
    an account id to its group; an account it does not name goes to ``"(none)"``."""
    grouped: dict[str, list[ContractTerm]] = defaultdict(list)
    for t in terms:
        grouped[group_of.get(t.account_id) or "(none)"].append(t)
    return {
        g: (
            monthly_retention(rows, first_month, last_month),
            period_retention(rows, first_month, last_month),
        )
        for g, rows in sorted(grouped.items())
    }
