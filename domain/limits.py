"""The limits of where input goes, in one place: Postgres, Temporal, mail and chat headers.

Every model at an edge (signals and updates in `domain/messages.py`, the
handoff, Sheets rows) builds its fields from the annotated types below, so an
input that a sink would refuse is refused *here*, with a reason, before it
reaches a workflow's state, an activity input or a SQL statement:

- Postgres refuses NUL (U+0000) in `text`, a btree key above ~2.7 KB, an
  `integer` above 2^31-1, `numeric(14, 2)` at 10^12, and NaN/Infinity where a
  number is summed.
- Temporal refuses a search-attribute value above 2 KB and any payload above
  2 MB (a workflow task whose command carries one fails forever).
- A mail or HTTP header may not carry CR, LF or NUL (the MIME builder raises).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field

# ------------------------------------------------------------------ the sinks

PG_INT_MAX = 2**31 - 1
PG_NUMERIC_14_2_MAX = 10**12 - 0.01  # numeric(14, 2): amounts, ARR
PG_NUMERIC_12_2_MAX = 10**10 - 0.01  # numeric(12, 2): price per seat
TEMPORAL_SEARCH_ATTRIBUTE_BYTES = 2048
TEMPORAL_PAYLOAD_BYTES = 2 * 1024 * 1024

# ------------------------------------------------------------- what we allow

ID_MAX = 200  # customer record ids: part of primary keys and idempotency keys
EVENT_TYPE_MAX = 100  # usage event types (a Segment track call's event name)
NAME_MAX = 200  # people and account names: search attributes, mail headers
SHORT_TEXT_MAX = 2_000  # titles, roles, reasons, single-line notes
TEXT_MAX = 20_000  # ticket bodies, comments, notes
QUANTITY_MAX = 1e12
# One signal's payload, and one activity input of pending telemetry: each well
# under Temporal's 2 MB so an item plus its envelope always fits.
SIGNAL_PAYLOAD_BYTES = 1_000_000
TELEMETRY_CHUNK_BYTES = 1_000_000

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def _no_nul(v: str) -> str:
    if "\x00" in v:
        raise ValueError("contains a NUL character (U+0000), which Postgres cannot store")
    return v


def _header_safe(v: str) -> str:
    if _HEADER_UNSAFE.search(v):
        raise ValueError(
            "contains a line break or control character, which a mail header or "
            "search attribute cannot carry"
        )
    return v


def _utf8_within(limit: int) -> Callable[[str], str]:
    def check(v: str) -> str:
        if len(v.encode("utf-8")) > limit:
            raise ValueError(f"is longer than {limit} bytes")
        return v

    return check


# Annotated field types. Lengths are in characters; names also in UTF-8 bytes
# (search attributes count bytes).
RecordId = Annotated[
    str,
    Field(min_length=1, max_length=ID_MAX),
    AfterValidator(_header_safe),
    AfterValidator(_no_nul),
]
# A Field(max_length=...) on a RecordId field does not override the RecordId's own limit
# (that one wins), so a stricter id is its own type.
EventType = Annotated[
    str,
    Field(min_length=1, max_length=EVENT_TYPE_MAX),
    AfterValidator(_header_safe),
    AfterValidator(_no_nul),
]
Name = Annotated[
    str,
    Field(min_length=1, max_length=NAME_MAX),
    AfterValidator(_header_safe),
    AfterValidator(_utf8_within(TEMPORAL_SEARCH_ATTRIBUTE_BYTES // 2)),
]
ShortText = Annotated[str, Field(max_length=SHORT_TEXT_MAX), AfterValidator(_no_nul)]
# One line of free text shown in a header, a table cell or a subject (a CSM's reason):
# bounded, no line break or control character.
ONE_LINE_MAX = 500
OneLine = Annotated[
    str,
    Field(min_length=1, max_length=ONE_LINE_MAX),
    AfterValidator(_header_safe),
    AfterValidator(_no_nul),
]
Text = Annotated[str, Field(max_length=TEXT_MAX), AfterValidator(_no_nul)]
PgInt = Annotated[int, Field(ge=-PG_INT_MAX, le=PG_INT_MAX)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


def header_safe(text: str, limit: int = NAME_MAX) -> str:
    """Clean a string bound for a header (mail To/Subject, Slack header): one line, no controls."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


def payload_bytes(value: Any) -> int:
    """Size of a JSON-encodable value as the data converter writes it (close enough for budgets)."""
    return len(json.dumps(value, default=str, separators=(",", ":")).encode("utf-8"))


T = TypeVar("T")


def chunks_within(items: Sequence[T], size: Callable[[T], int], budget: int) -> list[list[T]]:
    """Consecutive chunks whose sizes add up to at most `budget` (an item larger than the
    budget goes alone: callers refuse such items at the edge)."""
    out: list[list[T]] = []
    current: list[T] = []
    used = 0
    for item in items:
        n = size(item)
        if current and used + n > budget:
            out.append(current)
            current, used = [], 0
        current.append(item)
        used += n
    if current:
        out.append(current)
    return out
