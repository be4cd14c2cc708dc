"""Action items and chasing (domain/actions.py) on hand-computed cases."""

from __future__ import annotations

from datetime import date

from domain.actions import (
    AccountAction,
    ActionConfig,
    ActionsState,
    Contact,
    chase_due,
    completion_refusal,
    match_owner,
    new_actions,
    parse_due,
    prune,
)
from domain.touchpoints import parse_actions

TUE = date(2026, 12, 1)  # a Tuesday


def test_due_dates_read_from_the_line_counted_from_the_interaction() -> None:
    assert parse_due("send the export guide by 2026-12-10", TUE) == date(2026, 12, 10)
    assert parse_due("share the roadmap due 2026-12-04", TUE) == date(2026, 12, 4)
    assert parse_due("book the QBR by Friday", TUE) == date(2026, 12, 4)
    assert parse_due("book the QBR by Tuesday", TUE) == date(2026, 12, 8)  # next week's, not today
    assert parse_due("fix SSO within 2 weeks", TUE) == date(2026, 12, 15)
    assert parse_due("call back in 5 days", TUE) == date(2026, 12, 6)
    assert parse_due("send the list by 2026-11-20", TUE) is None  # before the meeting: ignored
    assert parse_due("send the list by 2026-02-30", TUE) is None  # no such day
    assert parse_due("send the 2026 plan", TUE) is None


def test_items_become_numbered_actions_with_the_default_due_date_when_none_is_given() -> None:
    items = parse_actions(
        "ACTION: Ada Park to send the user list by 2026-12-10\nTODO: book the QBR"
    )
    made = new_actions(
        items,
        interaction_id="I-1",
        interaction_kind="call",
        agreed_on=TUE,
        first_number=4,
        cfg=ActionConfig(default_due_days=10),
    )
    assert [(a.action_id, a.owner, a.due_on, a.due_from_notes) for a in made] == [
        ("A-4", "Ada Park", date(2026, 12, 10), True),
        ("A-5", None, date(2026, 12, 11), False),  # 1 Dec + 10 days
    ]
    assert all(a.status == "open" and a.interaction_kind == "call" for a in made)


def _action(**kw: object) -> AccountAction:
    base = {
        "action_id": "A-1",
        "text": "send the user list",
        "owner": "Ada Park",
        "due_on": date(2026, 12, 10),
        "interaction_id": "I-1",
        "agreed_on": TUE,
    }
    return AccountAction.model_validate(base | kw)


def test_chased_after_the_due_date_then_every_n_days_at_most_m_times() -> None:
    cfg = ActionConfig(chase_every_days=3, max_chases=2)
    a = _action()
    assert not chase_due(a, date(2026, 12, 10), cfg)  # due today: not overdue yet
    assert chase_due(a, date(2026, 12, 11), cfg)
    a.chases, a.last_chased_on = 1, date(2026, 12, 11)
    assert not chase_due(a, date(2026, 12, 13), cfg)  # 2 days since the last chase
    assert chase_due(a, date(2026, 12, 14), cfg)  # 3 days
    a.chases, a.last_chased_on = 2, date(2026, 12, 14)
    assert not chase_due(a, date(2027, 1, 30), cfg)  # at most 2 chases
    assert not chase_due(_action(status="done"), date(2026, 12, 20), cfg)
    assert not chase_due(_action(), date(2026, 12, 20), ActionConfig(max_chases=0))
    assert _action().days_overdue(date(2026, 12, 17)) == 7
    assert _action(status="done").days_overdue(date(2026, 12, 17)) == 0


def test_the_owner_is_matched_to_a_current_stakeholder_with_an_email() -> None:
    people = [
        Contact(name="Ada Park", email="ada@acme.example"),
        Contact(name="Ben Cole", email=None),
        Contact(name="Cy Lund", email="cy@acme.example", left_on=date(2026, 11, 30)),
        Contact(name="Dana Ruiz", email="dana@acme.example"),
        Contact(name="Dana Wu", email="wu@acme.example"),
    ]
    assert match_owner("ada  park", people, TUE) == people[0]
    assert match_owner("Ada", people, TUE) == people[0]  # the only current Ada
    assert match_owner("Ben Cole", people, TUE) is None  # no email
    assert match_owner("Cy Lund", people, TUE) is None  # left before today
    assert match_owner("Dana", people, TUE) is None  # two Danas: ambiguous
    assert match_owner("Ada Lovelace", people, TUE) is None
    assert match_owner(None, people, TUE) is None


def test_completing_an_unknown_or_done_action_is_refused_with_the_reason() -> None:
    st = ActionsState(
        actions=[
            _action(),
            _action(action_id="A-2", status="done", done_on=TUE, done_by="Dana Reyes"),
        ]
    )
    assert completion_refusal(st, "A-1") is None
    assert completion_refusal(st, "A-9") == "no action 'A-9' on this account; open: A-1"
    assert (
        completion_refusal(st, "A-2") == "action A-2 was already done on 2026-12-01 by Dana Reyes"
    )


def test_prune_keeps_open_unstored_and_recently_done_actions() -> None:
    st = ActionsState(
        actions=[
            _action(stored=True),
            _action(action_id="A-2", status="done", done_on=date(2026, 10, 1), stored=True),
            _action(action_id="A-3", status="done", done_on=date(2026, 10, 1), stored=False),
            _action(action_id="A-4", status="done", done_on=date(2026, 11, 20), stored=True),
        ]
    )
    prune(st, TUE)
    assert [a.action_id for a in st.actions] == ["A-1", "A-3", "A-4"]
