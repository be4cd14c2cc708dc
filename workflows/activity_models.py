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


class OwnerRecord(BaseModel):
    """The account's CSM after a reassignment, for the `accounts` row reports group by."""

    account_id: str
    csm_owner: str
    csm_email: str


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


class ScanChunkRequest(BaseModel):
    """One chunk of the scheduled portfolio scan: the next `limit` accounts with a contract
    in force at `as_of`, after `after` in account_id order (keyset pagination)."""

    as_of: datetime
    after: str = ""
    limit: int = Field(default=1000, ge=1, le=20_000)
    signal_accounts: bool = True  # hand each running account workflow its summary
    interval_seconds: int = Field(default=86_400, ge=60)  # the schedule's, told to accounts
    # Accounts per part of the chunk: Postgres computes a part's facts while this worker
    # scores the previous part (activities/health.py assess_pipelined). `limit` or more:
    # one part, facts then scoring one after the other.
    part_size: int = Field(default=250, ge=1)


class ScanChunkResult(BaseModel):
    accounts: int
    last_account_id: str | None  # None: nothing left after `after`
    by_band: dict[str, int] = Field(default_factory=dict)
    by_decision: dict[str, int] = Field(default_factory=dict)
    findings_written: int = 0
    signalled: int = 0
    not_running: int = 0  # accounts with no running workflow (scored and saved all the same)
    seconds_facts: float = 0.0
    seconds_save: float = 0.0
    seconds_signal: float = 0.0


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
