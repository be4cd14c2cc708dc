"""Fake Slack: incoming webhooks and the Web API's chat.postMessage, with Block Kit checks."""

from __future__ import annotations

import itertools
from typing import Any

from tests.fakes.base import FakeServer, Recorded, Reply, bearer, json_body

WEBHOOK_PATH = "/services/T0001/B0001/fakewebhooksecret123"
BLOCK_TYPES = {"header", "section", "context", "divider", "actions", "image", "rich_text"}


def check_blocks(blocks: Any) -> list[str]:
    if not isinstance(blocks, list):
        return ["blocks must be a list"]
    problems = []
    if len(blocks) > 50:
        problems.append("at most 50 blocks per message")
    for b in blocks:
        t = b.get("type")
        if t not in BLOCK_TYPES:
            problems.append(f"unknown block type {t!r}")
        elif t == "header":
            text = b.get("text") or {}
            if text.get("type") != "plain_text" or len(text.get("text", "")) > 150:
                problems.append("header text must be plain_text of at most 150 characters")
        elif t == "section":
            if "text" not in b and "fields" not in b:
                problems.append("a section needs text or fields")
            if "text" in b and (
                b["text"].get("type") not in ("mrkdwn", "plain_text")
                or len(b["text"].get("text", "")) > 3000
            ):
                problems.append("section text must be mrkdwn/plain_text of at most 3000 characters")
            if len(b.get("fields") or []) > 10:
                problems.append("a section has at most 10 fields")
        elif t == "context" and not b.get("elements"):
            problems.append("a context block needs elements")
    return problems


class SlackFake(FakeServer):
    name = "slack"

    def __init__(self, bot_token: str = "xoxb-fake-bot-token-123") -> None:
        super().__init__()
        self.bot_token = bot_token
        self.messages: list[dict[str, Any]] = []
        self.api_errors: list[str] = []  # scripted {"ok": false, "error": ...} answers
        self.history_errors: list[str] = []  # the same for conversations.history
        self.lose_responses = 0  # post the next N messages, then answer 500 (response lost)
        self._ts = itertools.count(1)

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    def error_body(self, status: int) -> Any:
        return {
            400: "invalid_payload",
            403: "invalid_token",
            404: "no_service",
            410: "channel_is_archived",
        }.get(status, "internal_error")

    def check(self, req: Recorded) -> list[str]:
        if req.path == "/api/conversations.history":
            problems = bearer(req, self.bot_token)
            if req.method != "GET" or not req.query.get("channel"):
                problems.append("conversations.history is a GET with a channel")
            return problems
        if req.method != "POST":
            return [f"unexpected method {req.method}"]
        problems: list[str] = []
        if req.path == "/api/chat.postMessage":
            problems += bearer(req, self.bot_token)
        elif req.path != WEBHOOK_PATH:
            return [f"unexpected endpoint {req.path}"]
        body, errs = json_body(req)
        if errs:
            return problems + errs
        if req.path == "/api/chat.postMessage" and not body.get("channel"):
            problems.append("chat.postMessage needs channel")
        if not body.get("text") and not body.get("blocks"):
            problems.append("a message needs text or blocks")
        if "blocks" in body:
            problems += check_blocks(body["blocks"])
            if not body.get("text"):
                problems.append("send a top-level text fallback with blocks")
        return problems

    def route(self, req: Recorded) -> Reply:
        if req.path == "/api/conversations.history":
            if self.history_errors:
                return Reply(200, {"ok": False, "error": self.history_errors.pop(0)})
            # Newest first, with metadata only when asked for (as the Web API does).
            # Slack reads a boolean argument as true from "true" or "1" (slack_sdk sends "1").
            with_meta = req.query.get("include_all_metadata") in (["true"], ["1"])
            limit = int((req.query.get("limit") or ["100"])[0])
            out = [
                {
                    "ts": m["_ts"],
                    "text": m.get("text"),
                    **({"metadata": m["metadata"]} if with_meta and "metadata" in m else {}),
                }
                for m in reversed(self.messages)
                if "_ts" in m
            ]
            return Reply(200, {"ok": True, "messages": out[:limit], "has_more": len(out) > limit})
        body = req.json()
        if req.path == WEBHOOK_PATH:
            self.messages.append(body)
            if self.lose_responses:
                self.lose_responses -= 1
                return Reply(500, "internal_error")
            return Reply(200, "ok")
        if self.api_errors:
            return Reply(200, {"ok": False, "error": self.api_errors.pop(0)})
        ts = f"1700000000.{next(self._ts):06d}"
        self.messages.append({**body, "_ts": ts})
        if self.lose_responses:
            self.lose_responses -= 1
            return Reply(500, "internal_error")
        return Reply(
            200, {"ok": True, "channel": "C0123", "ts": ts, "message": {"text": body.get("text")}}
        )
