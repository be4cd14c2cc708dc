"""The activities the workflows call, as typed references (interfaces, not implementations).

Workflows call ``workflow.execute_activity(activity_defs.deliver, req, ...)``:
the argument and result types come from these signatures, so a renamed
activity or a changed model is a type error in the workflow, not a string
that matches nothing at run time. Each stub has the name and signature of its
implementation in ``activities/`` (checked by tests/unit/test_activity_defs.py);
the implementations stay out of the workflow sandbox (they import asyncpg,
anthropic and the HTTP clients).
"""

from __future__ import annotations

from temporalio import activity

from domain.actions import ActionRecords, Contact, ContactsRequest
from domain.delivery import BusEvent, DeliveryFailure, DeliveryRequest, DeliveryResult
from domain.digest import DigestItem, DigestRequest, DigestResult
from domain.engagement import (
    AdoptionTargets,
    AdvocacyData,
    AdvocacyDataRequest,
    EngagementSettings,
)
from domain.feedback import FeedbackDigest
from domain.forecast import RenewalForecast
from domain.handoff import Handoff
from domain.hygiene import HygieneFinding, HygieneRequest
from domain.narrative import Narrative, NarrativeRequest
from domain.onboarding_plan import AudienceRequest, PlanAudience
from domain.qbr import QbrDocument, QbrRequest
from domain.summary import AssessmentSummary
from workflows.activity_models import (
    FeedbackDigestRequest,
    OwnerRecord,
    RenewalCheckRequest,
    RenewalCheckResult,
    RenewalForecastRequest,
    ScanChunkRequest,
    ScanChunkResult,
    ScoreAccountRequest,
    TelemetryBatch,
    TelemetryWriteResult,
)


def _elsewhere(name: str) -> NotImplementedError:
    return NotImplementedError(f"{name} runs on a worker (activities/); this is its interface")


@activity.defn(name="record_handoff")
async def record_handoff(handoff: Handoff) -> None:
    raise _elsewhere("record_handoff")


@activity.defn(name="record_owner")
async def record_owner(req: OwnerRecord) -> None:
    raise _elsewhere("record_owner")


@activity.defn(name="record_telemetry")
async def record_telemetry(batch: TelemetryBatch) -> TelemetryWriteResult:
    raise _elsewhere("record_telemetry")


@activity.defn(name="check_renewal")
async def check_renewal(req: RenewalCheckRequest) -> RenewalCheckResult:
    raise _elsewhere("check_renewal")


@activity.defn(name="score_account")
async def score_account(req: ScoreAccountRequest) -> AssessmentSummary:
    raise _elsewhere("score_account")


@activity.defn(name="scan_chunk")
async def scan_chunk(req: ScanChunkRequest) -> ScanChunkResult:
    raise _elsewhere("scan_chunk")


@activity.defn(name="record_renewal_forecast")
async def record_renewal_forecast(req: RenewalForecastRequest) -> RenewalForecast:
    raise _elsewhere("record_renewal_forecast")


@activity.defn(name="write_narrative")
async def write_narrative(req: NarrativeRequest) -> Narrative:
    raise _elsewhere("write_narrative")


@activity.defn(name="deliver")
async def deliver(req: DeliveryRequest) -> DeliveryResult:
    raise _elsewhere("deliver")


@activity.defn(name="fail_delivery")
async def fail_delivery(f: DeliveryFailure) -> None:
    raise _elsewhere("fail_delivery")


@activity.defn(name="publish_event")
async def publish_event(ev: BusEvent) -> int | None:
    raise _elsewhere("publish_event")


@activity.defn(name="prepare_qbr")
async def prepare_qbr(req: QbrRequest) -> QbrDocument:
    raise _elsewhere("prepare_qbr")


@activity.defn(name="add_digest_item")
async def add_digest_item(item: DigestItem) -> bool:
    raise _elsewhere("add_digest_item")


@activity.defn(name="send_digests")
async def send_digests(req: DigestRequest) -> DigestResult:
    raise _elsewhere("send_digests")


@activity.defn(name="advocacy_data")
async def advocacy_data(req: AdvocacyDataRequest) -> AdvocacyData:
    raise _elsewhere("advocacy_data")


@activity.defn(name="engagement_settings")
async def engagement_settings(account_id: str) -> EngagementSettings:
    raise _elsewhere("engagement_settings")


@activity.defn(name="adoption_targets")
async def adoption_targets(req: AdvocacyDataRequest) -> AdoptionTargets:
    raise _elsewhere("adoption_targets")


@activity.defn(name="feedback_digest")
async def feedback_digest(req: FeedbackDigestRequest) -> FeedbackDigest:
    raise _elsewhere("feedback_digest")


@activity.defn(name="record_actions")
async def record_actions(req: ActionRecords) -> int:
    raise _elsewhere("record_actions")


@activity.defn(name="action_contacts")
async def action_contacts(req: ContactsRequest) -> list[Contact]:
    raise _elsewhere("action_contacts")


@activity.defn(name="account_hygiene")
async def account_hygiene(req: HygieneRequest) -> list[HygieneFinding]:
    raise _elsewhere("account_hygiene")


@activity.defn(name="onboarding_audience")
async def onboarding_audience(req: AudienceRequest) -> PlanAudience:
    raise _elsewhere("onboarding_audience")


ALL = [
    record_handoff,
    record_telemetry,
    check_renewal,
    score_account,
    scan_chunk,
    record_renewal_forecast,
    write_narrative,
    deliver,
    fail_delivery,
    publish_event,
    prepare_qbr,
    add_digest_item,
    send_digests,
    advocacy_data,
    engagement_settings,
    adoption_targets,
    feedback_digest,
    record_actions,
    action_contacts,
    account_hygiene,
    onboarding_audience,
]
