"""The activity interfaces the workflows call by reference match the worker's implementations."""

from __future__ import annotations

import inspect
from typing import get_type_hints

from temporalio import activity

from activities.account import AccountActivities
from activities.actions import ActionActivities
from activities.deliveries import DeliveryActivities
from activities.digest import DigestActivities
from activities.engagement import EngagementActivities
from activities.health import HealthActivities
from activities.hygiene import HygieneActivities
from activities.narrative import NarrativeActivities
from activities.onboarding import OnboardingActivities
from activities.qbr import QbrActivities
from workflows import activity_defs

IMPLEMENTATIONS = [
    AccountActivities.record_handoff,
    AccountActivities.record_telemetry,
    AccountActivities.check_renewal,
    HealthActivities.score_account,
    HealthActivities.scan_chunk,
    HealthActivities.record_renewal_forecast,
    NarrativeActivities.write_narrative,
    DeliveryActivities.deliver,
    DeliveryActivities.fail_delivery,
    DeliveryActivities.publish_event,
    QbrActivities.prepare_qbr,
    DigestActivities.add_digest_item,
    DigestActivities.send_digests,
    EngagementActivities.advocacy_data,
    EngagementActivities.adoption_targets,
    EngagementActivities.engagement_settings,
    EngagementActivities.feedback_digest,
    ActionActivities.record_actions,
    ActionActivities.action_contacts,
    HygieneActivities.account_hygiene,
    OnboardingActivities.onboarding_audience,
]


def _name(fn: object) -> str:
    defn = activity._Definition.from_callable(fn)  # type: ignore[arg-type]
    assert defn is not None
    return defn.name


def test_every_interface_has_an_implementation_with_the_same_name_and_types() -> None:
    impls = {_name(f): f for f in IMPLEMENTATIONS}
    assert {_name(f) for f in activity_defs.ALL} == set(impls)
    for stub in activity_defs.ALL:
        impl = impls[_name(stub)]
        want = get_type_hints(stub)
        got = {k: v for k, v in get_type_hints(impl).items() if k != "self"}
        assert list(inspect.signature(stub).parameters) == [
            p for p in inspect.signature(impl).parameters if p != "self"
        ], _name(stub)
        assert got == want, _name(stub)
