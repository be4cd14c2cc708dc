"""A bulk row takes a fast path when it is plainly well-formed (domain/ingest.py
`_fast_event`); it must accept exactly what the model accepts, with the same values,
and leave every other row to the model, which names the field and the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from domain.ingest import (
    _fast_event,
    _model_event,
    _segment_fast,
    _segment_model,
    build_event,
    row_error,
    segment_usage,
)

GOOD: dict[str, Any] = {
    "account_id": "acct-1",
    "user_id": "u1",
    "occurred_at": "2026-11-30T10:00:00+00:00",
    "event_type": "login",
    "quantity": "3",
    "message_id": "m-1",
}

VARIANTS: list[dict[str, Any]] = [
    {},
    {"message_id": None},  # the digest of the row
    {"quantity": None},  # default 1
    {"quantity": None, "message_id": None},
    {"occurred_at": "2026-11-30T10:00:00Z"},
    {"occurred_at": "2026-11-30 10:00:00+05:30"},
    {"occurred_at": "2026-11-30T10:00:00.5-03:00"},
    {"occurred_at": "2026-11-30T10:00:00.123456+00:00", "message_id": None},
    {"occurred_at": datetime(2026, 11, 30, 10, tzinfo=UTC)},
    {"occurred_at": datetime(2026, 11, 30, 10, tzinfo=timezone(timedelta(hours=2)))},
    {"quantity": "2.75"},
    {"quantity": "1000000000000"},
    {"quantity": 4},
    {"quantity": 0.5, "message_id": None},
    {"quantity": "0"},
    # the model decides these (refusals, or shapes the fast path leaves alone)
    {"occurred_at": "2026-11-30T10:00:00"},  # no time zone
    {"occurred_at": datetime(2026, 11, 30, 10)},  # naive
    {"occurred_at": "2026-02-30T10:00:00Z"},
    {"occurred_at": "2026-11-30T24:00:00Z"},
    {"occurred_at": "yesterday"},
    {"occurred_at": "1764496800"},
    {"quantity": "-1"},
    {"quantity": "1e3"},
    {"quantity": "inf"},
    {"quantity": "nan"},
    {"quantity": " 3"},
    {"quantity": "1000000000000.5"},
    {"quantity": float("nan")},
    {"quantity": 1e13},
    {"quantity": True},
    {"quantity": "three"},
    {"account_id": "a" * 201},
    {"account_id": "a" * 200},
    {"event_type": "e" * 101},
    {"event_type": "e" * 100},
    {"user_id": "u\n1"},
    {"user_id": "u\u20281"},
    {"message_id": "m\x00"},
    {"event_type": "  "},
    {"account_id": 12},
    {"extra": "x"},
    {"account_id": None},
]


def _row(change: dict[str, Any]) -> dict[str, Any]:
    row = {**GOOD, **change}
    return {k: v for k, v in row.items() if v is not None and v != ""}


def _outcome(fn: Any, row: dict[str, Any]) -> tuple[str, Any]:
    try:
        event = fn(row)
    except (ValidationError, ValueError) as err:
        return "refused", row_error(err)
    if event is None:  # a Segment call that carries no usage row (identify, group, ...)
        return "no row", None
    return "event", (
        event.model_dump(),
        {k: type(v) for k, v in event.model_dump().items()},
        event.model_fields_set,
    )


@pytest.mark.parametrize("change", VARIANTS, ids=[repr(v)[:60] for v in VARIANTS])
def test_fast_path_accepts_only_what_the_model_accepts_with_the_same_values(
    change: dict[str, Any],
) -> None:
    row = _row(change)
    model = _outcome(_model_event, row)
    fast = _fast_event(row)
    if fast is not None:
        assert model[0] == "event", f"the fast path accepted a row the model refuses: {model}"
        assert _outcome(lambda _: fast, row) == model
    assert _outcome(build_event, row) == model  # and so every refusal keeps its reason


def test_plain_rows_take_the_fast_path() -> None:
    for change in VARIANTS[:15]:
        assert _fast_event(_row(change)) is not None, change


RECEIVED = datetime(2026, 11, 30, 12, tzinfo=UTC)
TRACK: dict[str, Any] = {
    "type": "track",
    "userId": "u1",
    "event": "login",
    "properties": {"quantity": 2},
    "timestamp": "2026-11-30T10:00:00Z",
    "messageId": "m-1",
    "context": {"groupId": "acct-1", "library": {"name": "analytics.js"}},
    "sentAt": "2026-11-30T10:00:01Z",
}
DROP = object()
SEGMENT_VARIANTS: list[dict[str, Any]] = [
    {},
    {"messageId": DROP},
    {"messageId": None},
    {"timestamp": DROP},
    {"timestamp": None},
    {"properties": DROP},
    {"properties": {"quantity": "4.5"}},
    {"properties": {"groupId": "acct-2"}, "context": {}},
    {"context": DROP, "properties": {}},  # the account of the user's group call
    {"type": DROP},  # the endpoint's type (track)
    # the model decides these
    {"timestamp": ""},
    {"timestamp": 1764496800},
    {"timestamp": "2026-11-30T10:00:00"},
    {"messageId": ""},
    {"userId": ""},
    {"userId": DROP},
    {"userId": DROP, "anonymousId": "anon-1"},
    {"anonymousId": "a\n1"},
    {"groupId": "acct-9"},
    {"type": "identify"},
    {"type": None},
    {"event": DROP},
    {"event": "e" * 101},
    {"properties": None},
    {"properties": {"quantity": None}},
    {"properties": {"quantity": "1e3"}},
    {"properties": {"quantity": -2}},
    {"properties": {"quantity": True}},
    {"context": None},
    {"context": {"groupId": ""}},
    {"context": {"groupId": 7}},
    {"context": {}, "properties": {"groupId": 7}},
    {"context": {}, "properties": {}, "userId": "nobody"},
]


def _call(change: dict[str, Any]) -> dict[str, Any]:
    call = {**TRACK, **change}
    return {k: v for k, v in call.items() if v is not DROP}


@pytest.mark.parametrize("change", SEGMENT_VARIANTS, ids=[repr(v)[:60] for v in SEGMENT_VARIANTS])
def test_segment_fast_path_agrees_with_the_model(change: dict[str, Any]) -> None:
    call, groups = _call(change), {"u1": "acct-3"}

    def model(c: dict[str, Any]) -> Any:
        return _segment_model(c, RECEIVED, "track", groups)

    expected = _outcome(model, call)
    fast = _segment_fast(call, RECEIVED, "track", groups)
    if fast is not None:
        assert expected[0] == "event", (
            f"the fast path accepted a call the model refuses: {expected}"
        )
        assert _outcome(lambda _: fast, call) == expected
    assert _outcome(lambda c: segment_usage(c, RECEIVED, "track", groups), call) == expected


def test_plain_track_calls_take_the_fast_path() -> None:
    for change in SEGMENT_VARIANTS[:10]:
        assert _segment_fast(_call(change), RECEIVED, "track", {"u1": "acct-3"}), change
