"""The draft audit's text rules (bench/drafts.py audit_draft), on hand-written drafts."""

from __future__ import annotations

from datetime import date

from bench.drafts import Draft, Sources, audit_draft

DAY = date(2027, 1, 4)


def _checks(text: str) -> list[str]:
    d = Draft("k", "acme", "maturity_assessment", "page", None, "", text, "x.md")
    src = Sources("acme", [], [DAY], [], [])
    return [f.check for f in audit_draft(d, src, DAY, DAY)]


def test_two_seat_utilizations_in_one_draft_are_a_contradiction() -> None:
    text = "Only 15% of seats active this month. Later: 40% of seats active."
    assert "contradiction" in _checks(text)


def test_a_rubric_band_or_a_target_is_not_a_second_utilization() -> None:
    text = (
        "3 of 20 seats active in the last 30 days (15% utilization). Raise adoption breadth "
        "from level 2: next level is '25% to 40% of seats active'; level 1 is under 10% of "
        "seats active. Target: 60% of seats active by day 90."
    )
    assert "contradiction" not in _checks(text)


def test_wording_a_reader_trips_on_is_flagged() -> None:
    assert _checks("First: none of the 0 active stakeholders is marked champion.") == [
        "count wording"
    ]
    assert _checks("Goals: level 4 (1 answer(s), mean level 4).") == ["plural"]
    assert _checks("It scores 67/100 (UNSCORED) and churn risk LOW.") == ["contradiction"]
    assert _checks("Search is at 0% of active users against a 80% benchmark.") == ["article"]
    fine = (
        "None of the 2 active stakeholders is marked champion. It is UNSCORED (too little data "
        "for a health score). Goals: level 4 (1 answer, mean level 4). It scores 61/100 (AMBER). "
        "Search is at 10% vs an 80% benchmark, Comments at 5% vs a 50% benchmark."
    )
    assert _checks(fine) == []
