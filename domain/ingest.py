"""Bulk usage ingestion at the edge: one validated row per product event, whatever the source.

Files (`starter.py ingest usage`), Segment-compatible HTTP calls (`python -m
ingest`) and the `usage` signal all end as `IngestEvent`s, written by one
path (`ingest/store.py`). Fields are built from `domain/limits.py`, so a row
Postgres would refuse is refused here, with its field and reason.

A message id makes a write idempotent: Segment's `messageId`, a file's
`message_id` column, or, when the sender gives none, a digest of the row's
content (the same event sent twice is the same event).

Pure: no I/O, no clock (the HTTP edge passes the time a call was received).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from domain.limits import EVENT_TYPE_MAX, QUANTITY_MAX, Finite, RecordId
from domain.messages import UsageEvent

# Segment's HTTP Tracking API limits: 32 KB per call (and per call in a batch), 500 KB
# per batch request; over them the answer is 400.
SEGMENT_CALL_BYTES = 32 * 1024
SEGMENT_BATCH_BYTES = 500 * 1024
SEGMENT_EVENT_MAX = EVENT_TYPE_MAX  # characters of a track call's event name

CSV_COLUMNS = ("account_id", "user_id", "occurred_at", "event_type", "quantity", "message_id")
CSV_REQUIRED = ("account_id", "user_id", "occurred_at", "event_type")


class IngestEvent(UsageEvent):
    """One usage row as it lands in `usage_events`, with its account and message id."""

    account_id: RecordId
    message_id: RecordId
    occurred_at: AwareDatetime  # a bulk row without a time zone would depend on the server's


def content_message_id(
    account_id: str, user_id: str, occurred_at: datetime, event_type: str, quantity: float
) -> str:
    """A stable id for a row its sender did not name: the digest of what it says."""
    text = "\x1f".join(
        [account_id, user_id, occurred_at.isoformat(), event_type, repr(float(quantity))]
    )
    return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()


def build_event(fields: Mapping[str, Any]) -> IngestEvent:
    """Validate one row (strings or typed values); a missing message id is derived."""
    return _validated({k: v for k, v in fields.items() if v is not None and v != ""})


def _validated(data: Mapping[str, Any]) -> IngestEvent:
    if "message_id" in data:
        return IngestEvent.model_validate(data)
    event = IngestEvent.model_validate({**data, "message_id": "-"})
    # The digest needs the validated (normalised) fields; set on the fresh object instead of
    # a model_copy, which cost a quarter of the per-row time of a bulk load.
    event.message_id = content_message_id(
        event.account_id, event.user_id, event.occurred_at, event.event_type, event.quantity
    )
    return event


def row_error(err: ValidationError | ValueError) -> str:
    """One line naming each bad field and why."""
    if isinstance(err, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in err.errors()[:5]
        )
    return str(err)


# ------------------------------------------------------------------- Segment


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SegmentContext(_Open):
    groupId: RecordId | None = None


class SegmentCall(_Open):
    """The fields of a Segment call this system reads (the others are accepted and ignored)."""

    type: Literal["track", "identify", "group", "page", "screen", "alias"] | None = None
    userId: RecordId | None = None
    anonymousId: RecordId | None = None
    event: RecordId | None = Field(default=None, max_length=SEGMENT_EVENT_MAX)
    properties: dict[str, Any] = Field(default_factory=dict)
    timestamp: AwareDatetime | None = None
    messageId: RecordId | None = None
    context: SegmentContext = Field(default_factory=SegmentContext)
    groupId: RecordId | None = None


class SegmentQuantity(BaseModel):
    quantity: Finite = Field(default=1, ge=0, le=QUANTITY_MAX)


class GroupLink(BaseModel):
    """A Segment `group` call: this user belongs to this account (group) from `at` on."""

    user_id: RecordId
    account_id: RecordId
    at: AwareDatetime


def segment_kind(raw: Any, call_type: str | None) -> str | None:
    """The call's type as sent (a batch item's `type`, else the endpoint's), unvalidated."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    return kind if isinstance(kind, str) else call_type


def segment_group_link(raw: Any, received_at: datetime, call_type: str | None) -> GroupLink | None:
    """The user-to-account link a `group` call carries; None for other calls or a bad one
    (segment_usage reports a bad call)."""
    if segment_kind(raw, call_type) != "group":
        return None
    try:
        call = SegmentCall.model_validate(raw)
        user = call.userId or call.anonymousId
        if user is None or call.groupId is None:
            return None
        return GroupLink(user_id=user, account_id=call.groupId, at=call.timestamp or received_at)
    except ValidationError:
        return None


def segment_unlinked_user(raw: Any, call_type: str | None) -> str | None:
    """The user of a `track` call that names no account itself (to look up its group)."""
    if segment_kind(raw, call_type) != "track" or not isinstance(raw, dict):
        return None
    ctx, props = raw.get("context"), raw.get("properties")
    if (isinstance(ctx, dict) and ctx.get("groupId")) or (
        isinstance(props, dict) and props.get("groupId")
    ):
        return None
    user = raw.get("userId") or raw.get("anonymousId")
    return user if isinstance(user, str) else None


def segment_usage(
    raw: Any,
    received_at: datetime,
    call_type: str | None,
    user_accounts: Mapping[str, str] | None = None,
) -> IngestEvent | None:
    """The usage row a Segment call carries: a `track` call becomes one; `identify`,
    `group`, `page`, `screen` and `alias` are accepted and carry none (None).

    The account is `context.groupId` (Segment's B2B convention), or
    `properties.groupId`, or the account of the user's latest `group` call
    (`user_accounts`: user id -> account); the event type is `event`; the quantity is
    `properties.quantity` (default 1); the time is `timestamp`, else when the
    call was received. Raises ValueError/ValidationError naming the field.
    """
    if not isinstance(raw, dict):
        raise ValueError("call: must be a JSON object")
    if (fast := _segment_fast(raw, received_at, call_type, user_accounts)) is not None:
        return fast
    return _segment_model(raw, received_at, call_type, user_accounts)


# A plain `track` call's fields (anything else, e.g. anonymousId or a top-level groupId, sends
# the call through SegmentCall); unread extras (sentAt, integrations, ...) are ignored as the
# model ignores them.
_SEGMENT_CHECKED = frozenset(("anonymousId", "groupId"))


def _segment_fast(
    raw: dict[str, Any],
    received_at: datetime,
    call_type: str | None,
    user_accounts: Mapping[str, str] | None,
) -> IngestEvent | None:
    """The event of a plain `track` call validated as the row it becomes (IngestEvent's
    fields are the same types and limits as SegmentCall's), without SegmentCall and
    SegmentQuantity: half the cost of a call. None for any other shape or a refused value:
    then the model decides and names the field (tests/unit/test_ingest_fast_path.py)."""
    if raw.get("type", call_type) != "track" or not _SEGMENT_CHECKED.isdisjoint(raw):
        return None
    user, event = raw.get("userId"), raw.get("event")
    props, ctx = raw.get("properties", {}), raw.get("context", {})
    if type(user) is not str or type(event) is not str or type(props) is not dict:
        return None
    if len(event) > SEGMENT_EVENT_MAX:  # SegmentCall.event's limit, stricter than the row's
        return None
    if type(ctx) is not dict:
        return None
    account = ctx.get("groupId")
    if account is None:
        account = props.get("groupId") or (user_accounts or {}).get(user)
    if type(account) is not str:
        return None
    data = {
        "account_id": account,
        "user_id": user,
        "occurred_at": received_at if raw.get("timestamp") is None else raw["timestamp"],
        "event_type": event,
        "quantity": props.get("quantity", 1),
    }
    if raw.get("messageId") is not None:
        data["message_id"] = raw["messageId"]
    try:
        return _validated(data)
    except (ValidationError, ValueError):
        return None


def _segment_model(
    raw: dict[str, Any],
    received_at: datetime,
    call_type: str | None,
    user_accounts: Mapping[str, str] | None,
) -> IngestEvent | None:
    call = SegmentCall.model_validate(raw)
    kind = call.type or call_type
    if kind is None:
        raise ValueError("type: required in a batch item (track, identify, group, ...)")
    if call.userId is None and call.anonymousId is None:
        raise ValueError("userId/anonymousId: one of them is required")
    if kind == "group" and call.groupId is None:
        raise ValueError("groupId: a group call needs the account (group) id")
    if kind != "track":
        return None
    if call.event is None:
        raise ValueError("event: a track call needs an event name")
    user = call.userId or call.anonymousId or ""
    account = (
        call.context.groupId or call.properties.get("groupId") or (user_accounts or {}).get(user)
    )
    if not account:
        raise ValueError(
            "context.groupId: required (or an earlier group call for this user), "
            "it names the account the event belongs to"
        )
    qty = SegmentQuantity.model_validate(
        {"quantity": call.properties["quantity"]} if "quantity" in call.properties else {}
    )
    return build_event(
        {
            "account_id": account,
            "user_id": call.userId or call.anonymousId,
            "occurred_at": call.timestamp or received_at,
            "event_type": call.event,
            "quantity": qty.quantity,
            "message_id": call.messageId,
        }
    )
