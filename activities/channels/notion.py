"""Notion: health updates and QBR pages as database pages built from rich blocks.

Uses ``notion-client`` (``AsyncClient(auth=NOTION_TOKEN, base_url=NOTION_BASE_URL)``)
at the client's Notion-Version (2025-09-03): a database holds data sources,
so a page is created under the database's data source, and the idempotency
lookup is a data-source query on the "Idempotency Key" property.

Database set-up (documented in the error messages too): share the database
with the integration; give it a rich-text property named "Idempotency Key".
Optional properties filled when present: Account (text), Band (select),
Score (number), Churn Risk (select), Quarter (text or select), As Of (date).
The client's own retries are off: Temporal's retry policy is the only one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from notion_client import AsyncClient
from notion_client.errors import APIResponseError, HTTPResponseError, RequestTimeoutError
from temporalio.exceptions import ApplicationError

from activities.channels.errors import by_status, redact, rejected, retry_after_seconds, retryable
from domain.delivery import DeliveryRequest, DeliverySection

CHANNEL = "Notion"
IDEMPOTENCY_PROPERTY = "Idempotency Key"
MAX_CHILDREN = 100  # Notion: at most 100 blocks per request
MAX_TEXT = 2000  # Notion: at most 2,000 characters per rich-text object


@dataclass(frozen=True)
class NotionConfig:
    token: str | None = field(default=None, repr=False)
    base_url: str | None = None
    qbr_database_id: str | None = None
    health_database_id: str | None = None
    timeout_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotionConfig:
        env = os.environ if env is None else env
        return cls(
            token=env.get("NOTION_TOKEN") or None,
            base_url=env.get("NOTION_BASE_URL") or None,
            qbr_database_id=env.get("NOTION_QBR_DATABASE_ID") or None,
            health_database_id=env.get("NOTION_HEALTH_DATABASE_ID") or None,
            timeout_s=float(env.get("NOTION_TIMEOUT_S") or 30),
        )

    def database_for(self, kind: str) -> tuple[str | None, str]:
        """(database id, name of its env var) for a delivery kind."""
        if kind == "qbr_page":
            return self.qbr_database_id, "NOTION_QBR_DATABASE_ID"
        return self.health_database_id, "NOTION_HEALTH_DATABASE_ID"


@dataclass
class _DataSource:
    id: str
    title_property: str
    properties: dict[str, str]  # name -> type


class NotionChannel:
    def __init__(self, config: NotionConfig) -> None:
        self.config = config
        options: dict[str, Any] = {
            "auth": config.token,
            "timeout_ms": int(config.timeout_s * 1000),
            "retry": False,  # Temporal retries, not the client
        }
        if config.base_url:
            options["base_url"] = config.base_url.rstrip("/")
        self.client = AsyncClient(**options)
        self._sources: dict[str, _DataSource] = {}

    async def aclose(self) -> None:
        await self.client.aclose()

    async def upsert_page(
        self, req: DeliveryRequest, database_id: str, env_name: str
    ) -> tuple[str, str | None, bool]:
        """Create the page unless one with this idempotency key exists: (page id, url, created)."""
        try:
            ds = await self._data_source(database_id, env_name)
            found = await self.client.data_sources.query(
                ds.id,
                filter={
                    "property": IDEMPOTENCY_PROPERTY,
                    "rich_text": {"equals": req.idempotency_key},
                },
                page_size=1,
            )
            if found.get("results"):
                page = found["results"][0]
                return page["id"], page.get("url"), False
            blocks = (
                sections_to_blocks(req.sections)
                if req.sections
                else markdown_to_blocks(req.markdown)
            )
            page = await self.client.pages.create(
                parent={"type": "data_source_id", "data_source_id": ds.id},
                properties=page_properties(req, ds),
                children=blocks[:MAX_CHILDREN],
            )
            for i in range(MAX_CHILDREN, len(blocks), MAX_CHILDREN):
                await self.client.blocks.children.append(
                    page["id"], children=blocks[i : i + MAX_CHILDREN]
                )
            return page["id"], page.get("url"), True
        except Exception as e:
            raise self.map_error(e, env_name) from None

    async def _data_source(self, database_id: str, env_name: str) -> _DataSource:
        if database_id in self._sources:
            return self._sources[database_id]
        db = await self.client.databases.retrieve(database_id)
        sources = db.get("data_sources") or []
        if not sources:
            raise rejected(
                CHANNEL,
                f"database {env_name} has no data source: point {env_name} at a database, not a page",
            )
        ds = await self.client.data_sources.retrieve(sources[0]["id"])
        props = {name: p.get("type", "") for name, p in (ds.get("properties") or {}).items()}
        title = next((n for n, t in props.items() if t == "title"), None)
        if title is None:
            raise rejected(CHANNEL, f"database {env_name} has no title property")
        if props.get(IDEMPOTENCY_PROPERTY) != "rich_text":
            raise rejected(
                CHANNEL,
                f"database {env_name} needs a Text property named '{IDEMPOTENCY_PROPERTY}' "
                "(it keeps deliveries idempotent): add it in Notion",
            )
        self._sources[database_id] = found = _DataSource(sources[0]["id"], title, props)
        return found

    def map_error(self, e: Exception, env_name: str) -> Exception:
        if isinstance(e, ApplicationError):
            return e
        secrets = [self.config.token]
        if isinstance(e, RequestTimeoutError):
            return retryable(CHANNEL, f"request timed out after {self.config.timeout_s:g}s")
        if isinstance(e, HTTPResponseError):
            code = str(getattr(e.code, "value", e.code))
            detail = (
                f"{code} ({redact(str(e), secrets)[:200]})"
                if isinstance(e, APIResponseError)
                else "unexpected response"
            )
            fixes = {
                400: f"check the database properties ('{IDEMPOTENCY_PROPERTY}' must be Text; Band/Churn Risk Select; Score Number)",
                401: "NOTION_TOKEN is invalid or revoked: create a new internal integration secret and set NOTION_TOKEN",
                403: "the integration lacks a capability: enable Read, Update and Insert content for it",
            }
            if e.status == 404:
                return rejected(
                    CHANNEL,
                    f"database not shared with the integration (404 {code}): share {env_name} with the integration (... > Connections) or fix the id",
                )
            return by_status(CHANNEL, e.status, detail, fixes, retry_after_seconds(e.headers))
        if isinstance(e, httpx.TimeoutException):
            return retryable(CHANNEL, "request timed out")
        if isinstance(e, httpx.TransportError):
            return retryable(CHANNEL, f"connection error ({type(e).__name__})")
        return e


# ----------------------------------------------------------------- blocks


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_RICH_TEXT_ITEMS = 100  # Notion's limit per rich_text array


def rich_text(text: str, *, italic: bool = False, bold: bool = False) -> list[dict[str, Any]]:
    """Plain text content (never a link: Notion links only what sets `link`), without the
    control characters Notion refuses, in chunks within its per-item and per-array limits."""
    text = _CONTROL.sub("", text)
    chunks = [text[i : i + MAX_TEXT] for i in range(0, len(text), MAX_TEXT)] or [""]
    chunks = chunks[:MAX_RICH_TEXT_ITEMS]
    out = []
    for c in chunks:
        rt: dict[str, Any] = {"type": "text", "text": {"content": c}}
        if italic or bold:
            rt["annotations"] = {"italic": italic, "bold": bold}
        out.append(rt)
    return out


def _block(kind: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"object": "block", "type": kind, kind: {"rich_text": rich_text(text), **extra}}


def table_block(columns: list[str], rows: list[list[str]]) -> dict[str, Any]:
    width = len(columns)

    def row(cells: list[str]) -> dict[str, Any]:
        padded = [*cells, *[""] * width][:width]
        return {
            "object": "block",
            "type": "table_row",
            "table_row": {"cells": [rich_text(str(c)) for c in padded]},
        }

    return {
        "object": "block",
        "type": "table",
        "table": {
            "table_width": width,
            "has_column_header": True,
            "has_row_header": False,
            "children": [row(columns), *(row(r) for r in rows[:99])],
        },
    }


def sections_to_blocks(sections: list[DeliverySection]) -> list[dict[str, Any]]:
    """heading_2 / callout / paragraph / table / bulleted_list_item: rich blocks, not a text blob."""
    blocks: list[dict[str, Any]] = []
    for s in sections:
        if s.heading:
            blocks.append(_block("heading_2", s.heading))
        if s.callout:
            blocks.append(
                _block(
                    "callout",
                    s.callout,
                    icon={"type": "emoji", "emoji": s.callout_icon or "💡"},
                    color="gray_background",
                )
            )
        blocks += [_block("paragraph", p) for p in s.paragraphs]
        if s.metrics:
            blocks.append(table_block(["Metric", "Value"], [[m.label, m.value] for m in s.metrics]))
        if s.table and s.table.columns:
            blocks.append(table_block(s.table.columns, s.table.rows))
        blocks += [_block("bulleted_list_item", b) for b in s.bullets]
        if s.note:
            blocks.append(
                {
                    "object": "block",
                    "type": "paragraph",
                    "paragraph": {"rich_text": rich_text(s.note, italic=True)},
                }
            )
    return blocks


def markdown_to_blocks(markdown: str) -> list[dict[str, Any]]:
    """A small Markdown subset (headings, bullets, paragraphs) for requests without sections."""
    blocks: list[dict[str, Any]] = []
    for line in markdown.splitlines():
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            blocks.append(
                _block("heading_2" if text.startswith("##") else "heading_1", text.lstrip("# "))
            )
        elif text.startswith(("- ", "* ")):
            blocks.append(_block("bulleted_list_item", text[2:]))
        else:
            blocks.append(_block("paragraph", text))
    return blocks or [_block("paragraph", "(empty)")]


def page_properties(req: DeliveryRequest, ds: _DataSource) -> dict[str, Any]:
    """Title + idempotency key, plus each requested property the database has, typed as it is there."""
    title = req.title or req.subject or req.purpose
    props: dict[str, Any] = {
        ds.title_property: {"title": rich_text(title[:MAX_TEXT])},
        IDEMPOTENCY_PROPERTY: {"rich_text": rich_text(req.idempotency_key)},
    }
    for name, value in req.properties.items():
        kind = ds.properties.get(name)
        if value is None or kind is None or name in props:
            continue
        if kind == "rich_text":
            props[name] = {"rich_text": rich_text(str(value))}
        elif kind == "select":
            props[name] = {"select": {"name": str(value)[:100].replace(",", " ")}}
        elif kind == "number" and isinstance(value, int | float):
            props[name] = {"number": value}
        elif kind == "date":
            props[name] = {"date": {"start": str(value)}}
        elif kind in ("url", "email", "phone_number"):
            props[name] = {kind: str(value)}
    return props
