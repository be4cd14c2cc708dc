"""Handoff validation: every bad field is named."""

import pytest
from pydantic import ValidationError

from domain.handoff import Handoff

GOOD = {
    "account_id": "acme-001",
    "name": "Acme",
    "tier": "tier-1",
    "csm_owner": "Dana",
    "csm_email": "dana@example.com",
    "contract": {
        "start_date": "2026-01-01",
        "end_date": "2027-01-01",
        "arr": 60000,
        "seats_purchased": 100,
        "price_per_seat": 600,
    },
}


def test_a_good_handoff_validates() -> None:
    h = Handoff.model_validate(GOOD)
    assert h.workflow_id == "account-acme-001"
    assert h.contract.licensed_modules == ["core"]


def test_each_bad_field_is_named() -> None:
    bad = {
        **GOOD,
        "account_id": "bad id!",
        "tier": "gold",
        "csm_email": "nope",
        "contract": {**GOOD["contract"], "end_date": "2025-01-01", "seats_purchased": 0},
    }
    with pytest.raises(ValidationError) as err:
        Handoff.model_validate(bad)
    fields = {".".join(str(p) for p in e["loc"]) for e in err.value.errors()}
    assert {"account_id", "tier", "csm_email", "contract.seats_purchased"} <= fields


def test_contract_end_before_start_is_rejected() -> None:
    with pytest.raises(ValidationError, match="must be after start_date"):
        Handoff.model_validate({**GOOD, "contract": {**GOOD["contract"], "end_date": "2025-12-31"}})


def test_unknown_fields_and_milestones_are_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Handoff.model_validate({**GOOD, "colour": "red"})
    with pytest.raises(ValidationError, match="unknown milestones"):
        Handoff.model_validate({**GOOD, "milestones": ["world_peace"]})


def test_a_notice_must_fall_within_its_term() -> None:
    from datetime import date

    import pytest
    from pydantic import ValidationError

    from domain.handoff import HandoffContract
    from domain.messages import ContractChangeSignal

    base = {
        "start_date": date(2026, 1, 1),
        "end_date": date(2026, 12, 31),
        "arr": 1000,
        "seats_purchased": 10,
        "price_per_seat": 100,
    }
    assert HandoffContract(**base, notice_on=date(2026, 5, 1)).notice_on == date(2026, 5, 1)
    for model in (HandoffContract, ContractChangeSignal):
        with pytest.raises(ValidationError, match="notice_on 2027-01-01 must be within the term"):
            model(**base, notice_on=date(2027, 1, 1))
        with pytest.raises(ValidationError, match="notice_on 2025-12-31 must be within the term"):
            model(**base, notice_on=date(2025, 12, 31))
