"""Inputs and results of the account activities (activities/account.py, activities/health.py).

Pure pydantic so both the workflow (through passthrough) and the activities
import them without dragging I/O libraries into the workflow sandbox.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from domain.forecast import ForecastInput
from domain.handoff import HandoffContract
from domain.state import PendingTelemetry


class TelemetryBatch(BaseModel):
    account_id: str
    items: list[PendingTelemetry]


class TelemetryRejection(BaseModel):
    key: str
    signal: str
    reason: str


class TelemetryWriteResult(BaseModel):
    """What `record_telemetry` wrote, and the items Postgres refused (never retried)."""

    written: int = 0
    rejected: list[TelemetryRejection] = Field(default_factory=list)


class RenewalCheckRequest(BaseModel):
    account_id: str
    term_end: date


class RenewalCheckResult(BaseModel):
    next_term: HandoffContract | None = None


class ScoreAccountRequest(BaseModel):
    account_id: str
    as_of: datetime


class FeedbackDigestRequest(BaseModel):
    """Input of ``feedback_digest`` and of ProductFeedbackWorkflow: one quarter, one owner."""

    quarter: str = Field(pattern=r"^\d{4}-Q[1-4]$")
    to: str | None = None  # None: the configured product owner
    to_name: str | None = None


class RenewalForecastRequest(BaseModel):
    """What the workflow knows at a renewal checkpoint; the activity adds the calibrated
    churn probability and the notice on file, applies domain/forecast.py and stores it."""

    inputs: ForecastInput
    csm_owner: str
    tier: str
