"""A plain Segment `track` call takes a fast path (domain/ingest.py `_segment_fast`:
validated as the row it becomes, without SegmentCall); it must accept exactly what the
model path accepts, with the same values, and leave every other call to the model path,
which names the field and the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from domain.ingest import _segment_fast, _segment_model, row_error, segment_usage


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
    {"properties": {"quantity": ""}},
    {"event": ""},
    {"properties": {"quantity": "nan"}},
    {"properties": {"quantity": 1e13}},
    {"timestamp": "2026-11-30T10:00:00.5-03:00"},
    {"timestamp": "2026-11-30 10:00:00+05:30"},
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
