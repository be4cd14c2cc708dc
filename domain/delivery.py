"""Delivery and event-bus contracts: what a workflow asks a channel to deliver.

Pure models (no I/O) so that workflows can build requests without importing
the channel clients. The activities in ``activities/deliveries.py`` carry
them out: Notion, Gmail (drafts only), Slack, or the local outbox when a
channel has no credentials.

A delivery is idempotent by ``idempotency_key``: derive it from the workflow
id and the purpose (``delivery_key``) so a retried activity, or a replayed
workflow, finds the earlier delivery instead of making a second draft.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.limits import header_safe

DeliveryKind = Literal["health_update", "qbr_page", "email_draft", "chat_alert"]
DeliveryChannel = Literal["notion", "gmail", "slack", "outbox"]
DeliveryStatus = Literal["pending", "delivered", "failed"]

# Event types the workflows publish on the bus (a vocabulary, not a closed set).
EVENT_TYPES = (
    "health.band_changed",
    "churn.risk_changed",
    "churn.alert",
    "finding.created",
    "qbr.ready",
    "expansion.dispatched",
    "phase.changed",
    "gate.nudged",
    "delivery.failed",
)

_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@=+-]{0,199}$")


def delivery_key(workflow_id: str, purpose: str, *parts: object) -> str:
    """The idempotency key of one delivery: workflow id + purpose (+ e.g. quarter, date).

    Deterministic, so the workflow computes the same key on replay and on
    every retry of the activity.
    """
    raw = ":".join([workflow_id, purpose, *(str(p) for p in parts)])
    if _KEY.match(raw):
        return raw
    # Keep it readable but safe: odd characters become '_', plus a short hash
    # so two ids that differ only in those characters stay distinct.
    safe = re.sub(r"[^A-Za-z0-9_.:/@=+-]", "_", raw)[:180].lstrip("_.:/@=+-") or "key"
    return f"{safe}~{hashlib.sha256(raw.encode()).hexdigest()[:10]}"


class DeliveryMetric(BaseModel):
    label: str
    value: str


class DeliveryTable(BaseModel):
    columns: list[str]
    rows: list[list[str]] = Field(default_factory=list)


class DeliverySection(BaseModel):
    """One titled block of a page or message; each channel renders it natively.

    Notion: heading_2, callout, paragraph, table, bulleted_list_item.
    Slack: header/section/fields. Email and outbox: Markdown.
    """

    heading: str | None = None
    callout: str | None = (
        None  # the one line a reader must see (e.g. "RED 38/100, HIGH churn risk")
    )
    callout_icon: str | None = None  # emoji for Notion callouts
    paragraphs: list[str] = Field(default_factory=list)
    metrics: list[DeliveryMetric] = Field(default_factory=list)
    table: DeliveryTable | None = None
    bullets: list[str] = Field(default_factory=list)
    note: str | None = None  # small print, e.g. "Narrative generated without the model"


class DeliveryRequest(BaseModel):
    """Input of ``DeliveryActivities.deliver``. Add fields with defaults only."""

    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(min_length=1, max_length=240)
    account_id: str = Field(min_length=1)
    kind: DeliveryKind
    purpose: str = Field(min_length=1, description="e.g. churn_alert, qbr, qbr_cover_note")
    to: str | None = Field(default=None, description="recipient email for drafts")
    to_name: str | None = None
    subject: str | None = None
    title: str | None = None
    markdown: str = ""
    sections: list[DeliverySection] = Field(default_factory=list)
    # Typed page properties for Notion (set only where the database has them).
    properties: dict[str, str | float | int | None] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("to")
    @classmethod
    def _email_shape(cls, v: str | None) -> str | None:
        if v is not None and not _EMAIL.match(v.strip()):
            raise ValueError(f"to must be one email address, got {v!r}")
        return v.strip() if v else v

    @field_validator("subject", "title", "to_name")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        # A header can never carry a second header (no CR/LF/NUL injection).
        return header_safe(v, 998) if v else v


class DeliveryResult(BaseModel):
    idempotency_key: str
    account_id: str
    kind: DeliveryKind
    channel: DeliveryChannel | None = None  # None: the delivery failed before a channel took it
    status: DeliveryStatus
    external_id: str | None = None  # Notion page id, Gmail draft id, Slack ts, outbox path
    target: str | None = None  # where a person finds it (URL, path, channel name)
    note: str | None = None  # e.g. "no NOTION_TOKEN: wrote .data/outbox/qbr/..."
    duplicate: bool = False  # True when an earlier attempt had already delivered it
    attempts: int = 1


class DeliveryFailure(BaseModel):
    """A delivery the workflow gave up on: marked failed, announced as ``delivery.failed``."""

    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(min_length=1, max_length=240)
    account_id: str = Field(min_length=1)
    kind: DeliveryKind
    purpose: str = Field(min_length=1)
    reason: str  # the channel's message, which names the fix for a refusal
    occurred_at: datetime


class BusEvent(BaseModel):
    """One decision published on the event bus (the ``events`` table + NOTIFY)."""

    model_config = ConfigDict(extra="forbid")

    event_key: str = Field(min_length=1, max_length=240, description="idempotency: written once")
    account_id: str | None = None
    event_type: str = Field(min_length=1, max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware (use workflow.now())")
        return v


def render_sections_markdown(title: str | None, sections: list[DeliverySection]) -> str:
    """Markdown for a page made of sections (the outbox and email bodies use it)."""
    out: list[str] = []
    if title:
        out += [f"# {title}", ""]
    for s in sections:
        if s.heading:
            out += [f"## {s.heading}", ""]
        if s.callout:
            out += [f"> {(s.callout_icon + ' ') if s.callout_icon else ''}{s.callout}", ""]
        for p in s.paragraphs:
            out += [p, ""]
        if s.metrics:
            out += ["| Metric | Value |", "| --- | --- |"]
            out += [f"| {_cell(m.label)} | {_cell(m.value)} |" for m in s.metrics]
            out.append("")
        if s.table and s.table.columns:
            out.append("| " + " | ".join(_cell(c) for c in s.table.columns) + " |")
            out.append("|" + " --- |" * len(s.table.columns))
            for row in s.table.rows:
                padded = [*row, *[""] * (len(s.table.columns) - len(row))][: len(s.table.columns)]
                out.append("| " + " | ".join(_cell(c) for c in padded) + " |")
            out.append("")
        if s.bullets:
            out += [f"- {b}" for b in s.bullets]
            out.append("")
        if s.note:
            out += [f"_{s.note}_", ""]
    return "\n".join(out).rstrip() + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
