"""Slack chat alerts with Block Kit: an incoming webhook or ``chat.postMessage``.

Through Slack's official Python SDK (``slack_sdk``: ``AsyncWebhookClient``
and ``AsyncWebClient``). ``SLACK_WEBHOOK_URL`` wins when set; otherwise
``SLACK_BOT_TOKEN`` + ``SLACK_CHANNEL`` post through ``SLACK_BASE_URL``
(default https://slack.com/api). The SDK's own retry handlers are off:
Temporal retries the activity, and a retry first looks for the earlier post.

Errors: webhooks answer with HTTP status + a short text ("invalid_payload",
"no_service", ...); the Web API answers HTTP 200 with ``{"ok": false,
"error": ...}``. Both are mapped to retryable / rejected-with-fix.
All customer-derived text is escaped (&, <, >) so it cannot mention
@channel or forge links.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from temporalio.exceptions import ApplicationError

from activities.channels.errors import by_status, redact, rejected, retry_after_seconds, retryable
from domain.delivery import DeliveryRequest, DeliverySection

CHANNEL = "Slack"
# The SDK logs each request URL at DEBUG (a webhook URL is a secret): its clients get this
# logger, which install_log_redaction filters; the SDK's own module loggers are unfiltered.
SLACK_LOGGER = logging.getLogger("slack_sdk")
METADATA_EVENT = "vim_delivery"  # message metadata carrying the delivery key
HISTORY_LOOKBACK = 200  # recent messages searched for an earlier post of a delivery
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000

_RETRY_ERRORS = {
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}
_FIXES = {
    "invalid_auth": "SLACK_BOT_TOKEN is invalid: reinstall the app and set SLACK_BOT_TOKEN",
    "not_authed": "no token was sent: set SLACK_BOT_TOKEN",
    "token_revoked": "SLACK_BOT_TOKEN was revoked: reinstall the app and set SLACK_BOT_TOKEN",
    "account_inactive": "the bot user is deactivated: reinstall the app",
    "missing_scope": "the app lacks chat:write: add the scope and reinstall",
    "channel_not_found": "SLACK_CHANNEL does not exist or is private: fix SLACK_CHANNEL",
    "not_in_channel": "invite the app to SLACK_CHANNEL (/invite @app)",
    "is_archived": "SLACK_CHANNEL is archived: choose another channel",
    "channel_is_archived": "the webhook's channel is archived: create a new webhook",
    "invalid_blocks": "the Block Kit payload was rejected",
    "invalid_payload": "the Block Kit payload was rejected",
    "no_service": "the webhook was removed: create a new incoming webhook and set SLACK_WEBHOOK_URL",
    "invalid_token": "the webhook token is invalid: create a new incoming webhook and set SLACK_WEBHOOK_URL",
    "action_prohibited": "an admin restricted the webhook: ask a workspace admin",
    "posting_to_general_channel_denied": "the app may not post to #general: choose another channel",
}


@dataclass(frozen=True)
class SlackConfig:
    webhook_url: str | None = field(default=None, repr=False)  # the URL itself is a secret
    bot_token: str | None = field(default=None, repr=False)
    channel: str | None = None
    base_url: str = "https://slack.com/api"
    timeout_s: float = 15.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlackConfig:
        env = os.environ if env is None else env
        return cls(
            webhook_url=env.get("SLACK_WEBHOOK_URL") or None,
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            channel=env.get("SLACK_CHANNEL") or None,
            base_url=(env.get("SLACK_BASE_URL") or "https://slack.com/api").rstrip("/"),
            timeout_s=float(env.get("SLACK_TIMEOUT_S") or 15),
        )

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url or (self.bot_token and self.channel))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def esc(text: str) -> str:
    """Slack mrkdwn control characters; stops <!channel>, <@U...> and forged links.

    Control characters (NUL included) are dropped: Slack refuses or mangles them.
    """
    text = _CONTROL.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def section_blocks(s: DeliverySection) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    lines: list[str] = []
    if s.heading:
        lines.append(f"*{esc(s.heading)}*")
    if s.callout:
        lines.append(f"{s.callout_icon + ' ' if s.callout_icon else ''}{esc(s.callout)}")
    lines += [esc(p) for p in s.paragraphs]
    if lines:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip("\n".join(lines), MAX_SECTION_TEXT)},
            }
        )
    if s.metrics:
        fields = [
            {"type": "mrkdwn", "text": _clip(f"*{esc(m.label)}*\n{esc(m.value)}", 2000)}
            for m in s.metrics[:10]
        ]
        blocks.append({"type": "section", "fields": fields})
    if s.table and s.table.rows:
        rows = [" | ".join(s.table.columns), *(" | ".join(r) for r in s.table.rows[:15])]
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _clip("```" + esc("\n".join(rows)) + "```", MAX_SECTION_TEXT),
                },
            }
        )
    if s.bullets:
        text = "\n".join(f"• {esc(b)}" for b in s.bullets)
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, MAX_SECTION_TEXT)}}
        )
    if s.note:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _clip(f"_{esc(s.note)}_", 2000)}],
            }
        )
    return blocks


def build_message(req: DeliveryRequest) -> dict[str, Any]:
    """{"text", "blocks"}: ``text`` is the notification fallback Slack requires with blocks."""
    title = req.title or req.subject or req.purpose
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, 150), "emoji": True}}
    ]
    if req.sections:
        for s in req.sections:
            blocks += section_blocks(s)
    elif req.markdown:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip(esc(req.markdown), MAX_SECTION_TEXT)},
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": esc(f"account {req.account_id} · {req.purpose}")}
            ],
        }
    )
    if len(blocks) > MAX_BLOCKS:
        blocks = [*blocks[: MAX_BLOCKS - 1], blocks[-1]]
    return {"text": esc(_clip(title, 300)), "blocks": blocks}


class SlackChannel:
    def __init__(self, config: SlackConfig) -> None:
        self.config = config

    def _secrets(self) -> list[str | None]:
        return [self.config.webhook_url, self.config.bot_token]

    def _timeout(self) -> int:
        return max(1, round(self.config.timeout_s))  # the SDK takes whole seconds

    async def post(
        self, req: DeliveryRequest, *, check_existing: bool = False
    ) -> tuple[str, str, str | None]:
        """(external id, target, note). External id: the message ts (Web API) or 'webhook'.

        Exactly-once with a bot token: every message carries its delivery key in
        message metadata, and a retry (``check_existing``) first looks for a
        message with that key in the channel's recent history, so a post whose
        response was lost is found instead of posted again. Webhooks cannot
        read a channel: a retry after a lost response may post twice
        (at-least-once, see the README).
        """
        message = build_message(req)
        if self.config.webhook_url:
            hook = AsyncWebhookClient(
                self.config.webhook_url,
                timeout=self._timeout(),
                retry_handlers=[],
                logger=SLACK_LOGGER,
            )
            r = await self._transport(hook.send_dict(message))
            if r.status_code == 200:
                return "webhook", "slack webhook", None
            raise self._http_error(r.status_code, r.body or "", dict(r.headers or {}))
        web = AsyncWebClient(
            token=self.config.bot_token,
            base_url=self.config.base_url + "/",
            timeout=self._timeout(),
            retry_handlers=[],
            logger=SLACK_LOGGER,
        )
        note = None
        if check_existing:
            found, note = await self._find_posted(web, req.idempotency_key)
            if found is not None:
                return (
                    found,
                    self.config.channel or "",
                    "found the message an earlier attempt posted",
                )
        data = await self._api(
            "chat.postMessage",
            web.chat_postMessage(
                channel=self.config.channel or "",
                text=message["text"],
                blocks=message["blocks"],
                unfurl_links=False,
                unfurl_media=False,
                metadata={
                    "event_type": METADATA_EVENT,
                    "event_payload": {"idempotency_key": req.idempotency_key},
                },
            ),
        )
        return str(data.get("ts")), str(data.get("channel") or self.config.channel), note

    async def _transport(self, call: Awaitable[Any]) -> Any:
        """Await an SDK call; a timeout or a broken connection is retryable."""
        try:
            return await call
        except TimeoutError:
            raise retryable(
                CHANNEL, f"request timed out after {self.config.timeout_s:g}s"
            ) from None
        except aiohttp.ClientError as e:
            raise retryable(CHANNEL, f"connection error ({type(e).__name__})") from None

    async def _api(self, method: str, call: Awaitable[Any]) -> dict[str, Any]:
        """The body of a Web API answer with ``ok: true``; anything else, classified."""
        try:
            resp = await self._transport(call)
        except SlackApiError as e:
            r = e.response
            data = r.data if isinstance(r.data, dict) else {}
            headers = dict(r.headers or {})
            if r.status_code != 200:
                text = data.get("error") or (r.data if isinstance(r.data, str) else "")
                raise self._http_error(r.status_code, str(text), headers) from None
            error = str(data.get("error") or "unknown_error")
            if error in _RETRY_ERRORS:
                raise retryable(
                    CHANNEL, f"{method} {error}", retry_after_seconds(headers)
                ) from None
            raise rejected(
                CHANNEL, f"{method} {error}: {_FIXES.get(error, 'see the Slack API error list')}"
            ) from None
        except AttributeError:
            # The SDK's validation assumes a JSON object: a text/plain error page lands here.
            raise retryable(CHANNEL, f"{method} answered with something other than JSON") from None
        data = resp.data
        return data if isinstance(data, dict) else {}

    async def _find_posted(self, web: AsyncWebClient, key: str) -> tuple[str | None, str | None]:
        """(ts of the message carrying this delivery key, or None; a note when we could not look).

        ``conversations.history`` with metadata, over the last HISTORY_LOOKBACK
        messages (needs the channels:history scope and SLACK_CHANNEL as an id).
        """
        try:
            data = await self._api(
                "conversations.history",
                web.conversations_history(
                    channel=self.config.channel or "",
                    limit=HISTORY_LOOKBACK,
                    include_all_metadata=True,
                ),
            )
        except ApplicationError as err:
            # Cannot look (e.g. missing channels:history): post, and say it may be a repeat.
            # A transient failure is retried instead: the next attempt looks again.
            if not err.non_retryable:
                raise
            reason = err.message.removeprefix(f"{CHANNEL}: ").split(":", 1)[0]
            return None, (
                f"could not check for an earlier post ({reason}): "
                "this may repeat a message whose response was lost"
            )
        for m in data.get("messages") or []:
            meta = m.get("metadata") or {}
            if (
                meta.get("event_type") == METADATA_EVENT
                and (meta.get("event_payload") or {}).get("idempotency_key") == key
            ):
                return str(m.get("ts")), None
        return None, None

    def _http_error(self, status: int, body: str, headers: Mapping[str, str]) -> Exception:
        text = redact(body.strip()[:80], self._secrets())
        reason = text if text and " " not in text else f"HTTP {status}"
        fixes = {
            s: _FIXES.get(reason, f"the webhook rejected the message ({reason})")
            for s in (400, 401, 403, 404, 410)
        }
        if status in (401, 403, 404, 410) and reason not in _FIXES:
            fixes = {status: "check SLACK_WEBHOOK_URL / SLACK_BOT_TOKEN"}
        return by_status(CHANNEL, status, reason, fixes, retry_after_seconds(headers))
