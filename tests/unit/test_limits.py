"""The limits of the sinks (domain/limits.py): chunking pending telemetry, and the edge types."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.delivery import DeliveryRequest
from domain.handoff import Handoff
from domain.limits import chunks_within, header_safe
from domain.messages import InvoiceSignal, ReassignUpdate, UsageEventsSignal


@given(st.lists(st.integers(1, 500)), st.integers(1, 1000))
def test_chunks_keep_order_and_stay_within_the_budget(sizes: list[int], budget: int) -> None:
    chunks = chunks_within(sizes, lambda n: n, budget)
    assert [n for c in chunks for n in c] == sizes
    for c in chunks:
        assert c and (sum(c) <= budget or len(c) == 1)


@pytest.mark.parametrize(
    "doc",
    [
        {
            "batch_id": "b\x00",
            "events": [
                {"user_id": "u", "occurred_at": "2026-01-01T00:00:00Z", "event_type": "login"}
            ],
        },
        {
            "batch_id": "b",
            "events": [
                {
                    "user_id": "u",
                    "occurred_at": "2026-01-01T00:00:00Z",
                    "event_type": "login",
                    "quantity": 1e300,
                }
            ],
        },
        {
            "batch_id": "b" * 201,
            "events": [
                {"user_id": "u", "occurred_at": "2026-01-01T00:00:00Z", "event_type": "login"}
            ],
        },
    ],
)
def test_usage_a_sink_would_refuse_is_refused_by_the_model(doc: dict) -> None:
    with pytest.raises(ValidationError):
        UsageEventsSignal.model_validate(doc)


def test_numbers_past_their_columns_and_non_finite_numbers_are_refused() -> None:
    base = {"invoice_id": "I-1", "issued_on": "2026-01-01", "due_on": "2026-01-31"}
    for amount in (1e12, float("inf"), float("nan")):
        with pytest.raises(ValidationError):
            InvoiceSignal.model_validate({**base, "amount": amount})
    assert InvoiceSignal.model_validate({**base, "amount": 999_999_999_999.99}).amount


def test_names_bound_for_headers_and_search_attributes() -> None:
    for name in ("Lee\r\nBcc: x@evil.example", "L" * 201, "Lee\x00"):
        with pytest.raises(ValidationError):
            ReassignUpdate.model_validate(
                {"csm_owner": name, "csm_email": "l@example.com", "by": "o"}
            )
    handoff = {
        "account_id": "acme",
        "name": "Acme",
        "csm_owner": "Dana\nReyes",
        "csm_email": "dana@example.com",
        "contract": {
            "start_date": "2026-01-01",
            "end_date": "2027-01-01",
            "arr": 1,
            "seats_purchased": 3_000_000_000,
            "price_per_seat": 1,
        },
    }
    with pytest.raises(ValidationError) as err:
        Handoff.model_validate(handoff)
    assert {e["loc"] for e in err.value.errors()} == {
        ("csm_owner",),
        ("contract", "seats_purchased"),
    }


def test_header_bound_text_in_a_delivery_is_one_clean_line() -> None:
    assert header_safe("Dana\r\nBcc: x@evil.example\x00") == "Dana Bcc: x@evil.example"
    req = DeliveryRequest(
        idempotency_key="k",
        account_id="acme",
        kind="email_draft",
        purpose="nudge",
        to="dana@example.com",
        to_name="Dana\r\nBcc: x@evil.example",
        subject="Hi\nthere",
    )
    assert (req.to_name, req.subject) == ("Dana Bcc: x@evil.example", "Hi there")


def test_an_event_type_has_one_limit_on_every_way_in() -> None:
    """100 characters, whether it comes in a usage signal, a file row or a Segment call
    (a Field(max_length) on a RecordId field used to be ignored: files took 200)."""
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from domain.ingest import build_event, row_error, segment_usage
    from domain.limits import EVENT_TYPE_MAX
    from domain.messages import UsageEvent

    at = datetime(2026, 1, 1, tzinfo=UTC)
    ok, long = "e" * EVENT_TYPE_MAX, "e" * (EVENT_TYPE_MAX + 1)
    assert UsageEvent(user_id="u", occurred_at=at, event_type=ok).event_type == ok
    with pytest.raises(ValidationError, match="at most 100 characters"):
        UsageEvent(user_id="u", occurred_at=at, event_type=long)
    row = {"account_id": "a", "user_id": "u", "occurred_at": "2026-01-01T00:00:00Z"}
    assert build_event({**row, "event_type": ok}).event_type == ok
    with pytest.raises(ValidationError) as err:
        build_event({**row, "event_type": long})
    assert "event_type" in row_error(err.value)
    call = {"type": "track", "userId": "u", "context": {"groupId": "a"}, "timestamp": "2026-01-01T00:00:00Z"}  # fmt: skip
    assert segment_usage({**call, "event": ok}, at, "track") is not None
    with pytest.raises((ValidationError, ValueError), match="100"):
        segment_usage({**call, "event": long}, at, "track")
