"""A Segment-compatible HTTP tracking endpoint: `python -m ingest` (see README, Bulk usage).

Routes (POST, JSON): `/v1/track`, `/v1/identify`, `/v1/group`, `/v1/page`,
`/v1/screen`, `/v1/alias` (one call, the type from the path) and
`/v1/batch` (`{"batch": [call, ...]}`, each item with its `type`; `/v1/import`
is the same). Auth is Segment's: HTTP basic auth with the write key as user
name and an empty password (or the key in a `writeKey` body field).

Limits are Segment's: 32 KB per call (and per batch item), 500 KB per batch
request; over them, 400. A `track` call is a usage row (domain/ingest.py
maps the fields); a `group` call links its user to an account, which names
the account of that user's later `track` calls without `context.groupId`
(ingest/groups.py); the other types are accepted and carry no row. The answer
is 200 `{"success": true}` when every call was accepted; otherwise 400 with
the rows that were fine kept and one error per refused item (index,
messageId, field, reason). Rows go straight to Postgres (ingest/store.py)
and each affected account workflow gets one coalesced `usage_arrived`
signal per interval (ingest/notify.py).

The HTTP server runs in threads; writes and signals run on the asyncio loop
that owns the Postgres pool and the Temporal client.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
from pydantic import ValidationError

from domain.ingest import (
    SEGMENT_BATCH_BYTES,
    SEGMENT_CALL_BYTES,
    GroupLink,
    row_error,
    segment_group_link,
    segment_unlinked_user,
    segment_usage,
)
from ingest.groups import accounts_of, link_users
from ingest.notify import Coalescer
from ingest.store import StoreResult, write_usage

log = logging.getLogger("vim.ingest")

SINGLE = ("track", "identify", "group", "page", "screen", "alias")
WRITE_TIMEOUT_SECONDS = 60.0
# Bodies up to this size are read and discarded before a 400; beyond it, we just close.
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024


class Ingestor:
    """Validated rows -> Postgres -> the coalescer; the totals for /healthz and logs."""

    def __init__(self, pool: asyncpg.Pool, coalescer: Coalescer) -> None:
        self.pool = pool
        self.coalescer = coalescer
        self.totals = StoreResult()

    async def resolve_groups(
        self, links: Sequence[GroupLink], users: Collection[str]
    ) -> dict[str, str]:
        """Record this request's group calls, then the accounts of its ungrouped users."""
        async with self.pool.acquire() as conn:
            if links:
                await link_users(conn, links)
            return await accounts_of(conn, users)

    async def write(self, events: Sequence[Any], source: str) -> StoreResult:
        result = await write_usage(self.pool, events, source)
        self.coalescer.add(result.arrived)
        self.totals.add(result)
        return result


def _field(reason: str) -> str:
    head = reason.split(":", 1)[0]
    return head if ":" in reason and " " not in head.strip() else "call"


def parse_calls(
    calls: list[Any],
    call_type: str | None,
    received_at: datetime,
    user_accounts: Mapping[str, str] | None = None,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Usage rows of the valid calls, and one error per refused call."""
    events: list[Any] = []
    errors: list[dict[str, Any]] = []
    for i, raw in enumerate(calls):
        mid = raw.get("messageId") if isinstance(raw, dict) else None
        try:
            size = len(json.dumps(raw, separators=(",", ":")).encode("utf-8"))
            if size > SEGMENT_CALL_BYTES:
                raise ValueError(
                    f"call: {size:,} bytes, over the {SEGMENT_CALL_BYTES:,}-byte limit"
                )
            event = segment_usage(raw, received_at, call_type, user_accounts)
        except (ValidationError, ValueError) as err:
            reason = row_error(err)
            errors.append({"index": i, "messageId": mid, "field": _field(reason), "reason": reason})
            continue
        if event is not None:
            events.append(event)
    return events, errors


def build_server(
    ingestor: Ingestor,
    loop: asyncio.AbstractEventLoop,
    *,
    host: str,
    port: int,
    write_keys: Sequence[str],
) -> ThreadingHTTPServer:
    """A ready-to-serve server (call `serve_forever` in a thread); port 0 picks a free one."""
    keys = [k.encode() for k in write_keys if k]
    if not keys:
        raise ValueError("no write key configured: set VIM_INGEST_WRITE_KEYS or --write-key")

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self, body: Any) -> bool:
            given = b""
            auth = self.headers.get("Authorization", "")
            if auth.lower().startswith("basic "):
                try:
                    given = base64.b64decode(auth[6:].strip()).split(b":", 1)[0]
                except ValueError:
                    return False
            elif isinstance(body, dict) and isinstance(body.get("writeKey"), str):
                given = body["writeKey"].encode()
            return any(hmac.compare_digest(given, k) for k in keys)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                t = ingestor.totals
                self._reply(
                    HTTPStatus.OK,
                    {"received": t.received, "written": t.written, "quarantined": t.quarantined},
                )
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"success": False, "message": "not found"})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            kind = path.removeprefix("/v1/")
            if not path.startswith("/v1/") or kind not in (*SINGLE, "batch", "import"):
                self._reply(HTTPStatus.NOT_FOUND, {"success": False, "message": "not found"})
                return
            limit = SEGMENT_CALL_BYTES if kind in SINGLE else SEGMENT_BATCH_BYTES
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > limit:
                # Read (and drop) a moderately oversized body before answering:
                # closing a socket with unread data sends a TCP reset, and the
                # client sees a broken connection instead of this 400.
                if 0 < length <= DRAIN_LIMIT_BYTES:
                    left = length
                    while left > 0:
                        chunk = self.rfile.read(min(left, 65536))
                        if not chunk:
                            break
                        left -= len(chunk)
                self.close_connection = True
                self._reply(
                    HTTPStatus.BAD_REQUEST,
                    {"success": False, "message": f"body over the {limit:,}-byte limit"},
                )
                return
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except (ValueError, RecursionError):
                self._reply(HTTPStatus.BAD_REQUEST, {"success": False, "message": "invalid JSON"})
                return
            if not self._authorized(body):
                self.send_response(HTTPStatus.UNAUTHORIZED)
                self.send_header("WWW-Authenticate", 'Basic realm="ingest"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if kind in SINGLE:
                calls, call_type = [body], kind
            else:
                batch = body.get("batch") if isinstance(body, dict) else None
                if not isinstance(batch, list):
                    self._reply(
                        HTTPStatus.BAD_REQUEST,
                        {"success": False, "message": "batch: a list of calls is required"},
                    )
                    return
                calls, call_type = batch, None
            received_at = datetime.now(UTC)
            links = [
                link
                for raw in calls
                if (link := segment_group_link(raw, received_at, call_type)) is not None
            ]
            users = {u for raw in calls if (u := segment_unlinked_user(raw, call_type))}
            user_accounts: dict[str, str] = {}
            if links or users:
                fut_groups = asyncio.run_coroutine_threadsafe(
                    ingestor.resolve_groups(links, users), loop
                )
                try:
                    user_accounts = fut_groups.result(WRITE_TIMEOUT_SECONDS)
                except Exception as err:  # Postgres down: the sender retries (idempotent)
                    log.exception("ingest group lookup failed")
                    self._reply(
                        HTTPStatus.SERVICE_UNAVAILABLE,
                        {"success": False, "message": f"write failed: {type(err).__name__}"},
                    )
                    return
            events, errors = parse_calls(calls, call_type, received_at, user_accounts)
            if events:
                fut = asyncio.run_coroutine_threadsafe(ingestor.write(events, "segment"), loop)
                try:
                    fut.result(WRITE_TIMEOUT_SECONDS)
                except Exception as err:  # Postgres down: the sender retries (idempotent)
                    log.exception("ingest write failed")
                    self._reply(
                        HTTPStatus.SERVICE_UNAVAILABLE,
                        {"success": False, "message": f"write failed: {type(err).__name__}"},
                    )
                    return
            if errors:
                self._reply(
                    HTTPStatus.BAD_REQUEST,
                    {"success": False, "accepted": len(calls) - len(errors), "errors": errors},
                )
            else:
                self._reply(HTTPStatus.OK, {"success": True})

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("%s " + fmt, self.address_string(), *args)

    return ThreadingHTTPServer((host, port), Handler)
