"""Deliveries: one idempotent activity for every draft, page and alert, plus the event bus.

``deliver`` looks up the ``deliveries`` row by idempotency key first: a
delivered row is returned as it is (no second draft, page or message). It
then picks the real channel when that channel's credentials are configured,
and the local outbox otherwise (saying so in the result's ``note``), and
records status, external id, attempts and the last error.

Error mapping (see ``channels/errors.py``): 429 / 5xx / timeouts /
connection errors raise a retryable ApplicationError (Temporal backs off);
400/401/403/404 raise ``ApplicationError(non_retryable=True)`` naming the
channel and the fix. Secrets never reach logs, errors, the table or the outbox.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channels import eventbus
from activities.channels.errors import install_log_redaction, redact, rejected, retryable
from activities.channels.gmail import GmailChannel, GmailConfig, build_mime
from activities.channels.notion import NotionChannel, NotionConfig, sections_to_blocks
from activities.channels.outbox import Outbox
from activities.channels.slack import SlackChannel, SlackConfig, build_message
from domain.delivery import (
    BusEvent,
    DeliveryChannel,
    DeliveryFailure,
    DeliveryRequest,
    DeliveryResult,
    render_sections_markdown,
)
from stack import metrics
from stack.settings import Settings

# Re-exported so callers can import the contracts from the activity module too.
__all__ = ["BusEvent", "ChannelsConfig", "DeliveryActivities", "DeliveryRequest", "DeliveryResult"]


@dataclass(frozen=True)
class ChannelsConfig:
    notion: NotionConfig = field(default_factory=NotionConfig)
    gmail: GmailConfig = field(default_factory=GmailConfig)
    slack: SlackConfig = field(default_factory=SlackConfig)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ChannelsConfig:
        env = os.environ if env is None else env
        return cls(NotionConfig.from_env(env), GmailConfig.from_env(env), SlackConfig.from_env(env))

    def secrets(self) -> list[str | None]:
        return [self.notion.token, self.gmail.token, self.slack.webhook_url, self.slack.bot_token]


class DeliveryActivities:
    def __init__(
        self, pool: asyncpg.Pool, settings: Settings, channels: ChannelsConfig | None = None
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.channels = channels or ChannelsConfig.from_env()
        install_log_redaction(self.channels.secrets())
        self.outbox = Outbox(settings.outbox_dir)
        self._notion: NotionChannel | None = None
        self._gmail: GmailChannel | None = None
        self._slack: SlackChannel | None = None

    # ------------------------------------------------------------ activities

    @activity.defn(name="deliver")
    async def deliver(self, req: DeliveryRequest) -> DeliveryResult:
        channel, why_outbox = self._choose(req)
        key = req.idempotency_key
        async with self.pool.acquire() as conn:
            # One attempt per key at a time: a second worker picking up the same
            # delivery (e.g. after a heartbeat timeout) waits for Temporal's retry.
            if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 5))", key):
                raise retryable("Delivery", f"another attempt of {key!r} is in progress")
            try:
                result = await self._deliver_locked(conn, req, channel, why_outbox)
            except ApplicationError as e:
                metrics.count(
                    metrics.DELIVERY_FAILURES,
                    1,
                    {"channel": channel, "kind": req.kind, "retryable": str(not e.non_retryable)},
                )
                raise
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 5))", key)
        if not result.duplicate:
            metrics.count(metrics.DRAFTS, 1, {"channel": result.channel, "kind": req.kind})
        return result

    @activity.defn(name="fail_delivery")
    async def fail_delivery(self, f: DeliveryFailure) -> None:
        """Mark a delivery the workflow gave up on as failed, and say so on the bus."""
        reason = redact(f.reason, self.channels.secrets())[:1000]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO deliveries (idempotency_key, account_id, channel, purpose, status, error, attempts)
                   VALUES ($1, $2, 'none', $3, 'failed', $4, 0)
                   ON CONFLICT (idempotency_key) DO UPDATE
                     SET status = 'failed', error = EXCLUDED.error, updated_at = now()
                   WHERE deliveries.status <> 'delivered'""",
                f.idempotency_key,
                f.account_id,
                f.purpose,
                reason,
            )
            await eventbus.publish(
                conn,
                BusEvent(
                    event_key=f"{f.idempotency_key}:failed"[:240],
                    account_id=f.account_id,
                    event_type="delivery.failed",
                    payload={
                        "idempotency_key": f.idempotency_key,
                        "kind": f.kind,
                        "purpose": f.purpose,
                        "reason": reason,
                    },
                    occurred_at=f.occurred_at,
                ),
            )

    @activity.defn(name="publish_event")
    async def publish_event(self, ev: BusEvent) -> int | None:
        """Publish one decision on the bus; None when the event key was already published."""
        return await eventbus.publish(self.pool, ev)

    # --------------------------------------------------------------- helpers

    async def _deliver_locked(
        self,
        conn: asyncpg.Connection,
        req: DeliveryRequest,
        channel: DeliveryChannel,
        why_outbox: str | None,
    ) -> DeliveryResult:
        key = req.idempotency_key
        row = await conn.fetchrow("SELECT * FROM deliveries WHERE idempotency_key = $1", key)
        if row is not None and row["account_id"] != req.account_id:
            raise rejected(
                "Delivery",
                f"idempotency key {key!r} already belongs to account {row['account_id']!r}",
            )
        if row is not None and row["status"] == "delivered":
            payload = _loads(row["payload"])
            return DeliveryResult(
                idempotency_key=key,
                account_id=req.account_id,
                kind=req.kind,
                channel=row["channel"],
                status="delivered",
                external_id=row["external_id"],
                target=row["target"],
                note=payload.get("note"),
                duplicate=True,
                attempts=row["attempts"],
            )
        attempts = await conn.fetchval(
            """INSERT INTO deliveries (idempotency_key, account_id, channel, purpose, status, target, payload, attempts)
               VALUES ($1, $2, $3, $4, 'pending', $5, $6::jsonb, 1)
               ON CONFLICT (idempotency_key) DO UPDATE
                 SET attempts = deliveries.attempts + 1, channel = EXCLUDED.channel,
                     status = 'pending', updated_at = now()
               RETURNING attempts""",
            key,
            req.account_id,
            channel,
            req.purpose,
            req.to,
            json.dumps(self._summary(req)),
        )
        try:
            external_id, target, note = await self._send(
                channel, req, prior_attempts=attempts - 1, why_outbox=why_outbox
            )
        except ApplicationError as e:
            await self._fail(conn, key, "failed" if e.non_retryable else "pending", str(e))
            raise
        except (ValueError, TypeError, UnicodeError) as e:
            # The request itself cannot be rendered for the channel (e.g. a header a
            # MIME builder refuses): every attempt would fail the same way.
            msg = redact(f"{type(e).__name__}: {e}", self.channels.secrets())[:500]
            await self._fail(conn, key, "failed", msg)
            raise rejected("Delivery", f"the request cannot be rendered: {msg}") from None
        except Exception as e:
            # Unexpected: keep it retryable, but never let a secret into history.
            msg = redact(f"{type(e).__name__}: {e}", self.channels.secrets())[:500]
            await self._fail(conn, key, "pending", msg)
            raise ApplicationError(f"Delivery: {msg}", type="DeliveryUnexpected") from None
        await conn.execute(
            """UPDATE deliveries SET status = 'delivered', external_id = $2, target = $3, error = NULL,
                   payload = payload || $4::jsonb, updated_at = now()
               WHERE idempotency_key = $1""",
            key,
            external_id,
            target,
            json.dumps({"note": note} if note else {}),
        )
        activity.logger.info("delivered %s via %s (%s)", key, channel, target)
        return DeliveryResult(
            idempotency_key=key,
            account_id=req.account_id,
            kind=req.kind,
            channel=channel,
            status="delivered",
            external_id=external_id,
            target=target,
            note=note,
            attempts=attempts,
        )

    async def _fail(self, conn: asyncpg.Connection, key: str, status: str, error: str) -> None:
        await conn.execute(
            "UPDATE deliveries SET status = $2, error = $3, updated_at = now() WHERE idempotency_key = $1",
            key,
            status,
            redact(error, self.channels.secrets())[:1000],
        )

    def _choose(self, req: DeliveryRequest) -> tuple[DeliveryChannel, str | None]:
        """The real channel when configured, else the outbox with the reason why."""
        c = self.channels
        if req.kind in ("qbr_page", "health_update"):
            db, env_name = c.notion.database_for(req.kind)
            if not c.notion.token:
                return "outbox", "no NOTION_TOKEN"
            if not db:
                return "outbox", f"NOTION_TOKEN is set but {env_name} is not"
            return "notion", None
        if req.kind == "email_draft":
            if not c.gmail.configured:
                if c.gmail.credentials_file and not c.gmail.token:
                    return (
                        "outbox",
                        "GOOGLE_APPLICATION_CREDENTIALS is set but GMAIL_USER (mailbox to impersonate) is not",
                    )
                return "outbox", "no GMAIL_TOKEN or GOOGLE_APPLICATION_CREDENTIALS"
            if not req.to:
                return "outbox", "the draft has no recipient"
            return "gmail", None
        if not c.slack.configured:
            return "outbox", "no SLACK_WEBHOOK_URL or SLACK_BOT_TOKEN + SLACK_CHANNEL"
        return "slack", None

    async def _send(
        self,
        channel: DeliveryChannel,
        req: DeliveryRequest,
        *,
        prior_attempts: int,
        why_outbox: str | None,
    ) -> tuple[str, str, str | None]:
        """(external id, target, note)."""
        if channel == "notion":
            db, env_name = self.channels.notion.database_for(req.kind)
            assert db is not None
            page_id, url, created = await self._notion_channel().upsert_page(req, db, env_name)
            return (
                page_id,
                url or page_id,
                None if created else "found the page an earlier attempt created",
            )
        if channel == "gmail":
            draft_id, created = await self._gmail_channel().create_draft(
                req, check_existing=prior_attempts > 0
            )
            note = "draft only, not sent" + (
                "" if created else "; found the draft an earlier attempt created"
            )
            return draft_id, req.to or "", note
        if channel == "slack":
            return await self._slack_channel().post(req, check_existing=prior_attempts > 0)
        path = await asyncio.to_thread(self._write_outbox, req)  # file I/O off the event loop
        shown = self._display_path(path)
        return str(path), str(path), f"{why_outbox}: wrote {shown}"

    def _write_outbox(self, req: DeliveryRequest) -> Path:
        key = req.idempotency_key
        markdown = req.markdown or render_sections_markdown(req.title, req.sections)
        if req.kind == "qbr_page":
            return self.outbox.write_text("qbr_page", key, markdown)
        if req.kind == "email_draft":
            if not req.to:
                raise rejected(
                    "Outbox", "an email draft needs a recipient: set `to` in the DeliveryRequest"
                )
            mime = build_mime(req, self.channels.gmail.sender, unsent_flag=True)
            return self.outbox.write_bytes("email_draft", key, mime.as_bytes())
        common = {
            "idempotency_key": key,
            "account_id": req.account_id,
            "kind": req.kind,
            "purpose": req.purpose,
            "title": req.title or req.subject,
            "properties": req.properties,
            "markdown": markdown,
        }
        if req.kind == "chat_alert":
            return self.outbox.write_json(
                "chat_alert", key, {**common, "slack": build_message(req)}
            )
        return self.outbox.write_json(
            "health_update", key, {**common, "notion_blocks": sections_to_blocks(req.sections)}
        )

    def _display_path(self, path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    @staticmethod
    def _summary(req: DeliveryRequest) -> dict[str, object]:
        return {
            "kind": req.kind,
            "subject": req.subject,
            "title": req.title,
            "to": req.to,
            "sections": len(req.sections),
            "metadata": req.metadata,
        }

    def _notion_channel(self) -> NotionChannel:
        if self._notion is None:
            self._notion = NotionChannel(self.channels.notion)
        return self._notion

    def _gmail_channel(self) -> GmailChannel:
        if self._gmail is None:
            self._gmail = GmailChannel(self.channels.gmail)
        return self._gmail

    def _slack_channel(self) -> SlackChannel:
        if self._slack is None:
            self._slack = SlackChannel(self.channels.slack)
        return self._slack


def _loads(value: object) -> dict[str, object]:
    if isinstance(value, dict):
        return value
    try:
        data = json.loads(value) if isinstance(value, str) else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
