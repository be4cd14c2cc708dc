"""Fake Anthropic Messages API (POST /v1/messages), checked against the public contract."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.base import FakeServer, Recorded, Reply, json_body

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

VALID_ANSWER = {
    "headline": "HIGH churn risk: active users fell 56% with renewal in 48 days",
    "paragraphs": [
        "Acme Corp scores 38/100 (RED) and the rules rate churn risk HIGH on both triggers. "
        "Renewal of $120,000 ARR is 48 days away, and active users fell from 41 to 18 in 30 days."
    ],
    "bullets": [
        "Active users fell from 41 to 18 in 30 days",
        "Champion Dana Lee left on 2026-10-02",
    ],
    "actions": ["Call Sam Ortiz (CFO, executive sponsor) this week", "Prepare a value recap"],
    "questions": [],
}


class AnthropicFake(FakeServer):
    name = "anthropic"

    def __init__(self, api_key: str = "sk-ant-test-key-123456") -> None:
        super().__init__()
        self.api_key = api_key
        self.answers: list[str] = []  # scripted answer texts, first out first
        self.calls_made = 0

    def answer(self, text: str | dict[str, Any], times: int = 1) -> None:
        for _ in range(times):
            self.answers.append(text if isinstance(text, str) else json.dumps(text))

    def error_body(self, status: int) -> Any:
        return {
            "type": "error",
            "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": f"fake {status}"},
        }

    def check(self, req: Recorded) -> list[str]:
        problems: list[str] = []
        if (req.method, req.path) != ("POST", "/v1/messages"):
            return [f"unexpected endpoint {req.method} {req.path}"]
        if not req.headers.get("anthropic-version"):
            problems.append("missing anthropic-version header")
        key = req.headers.get("x-api-key") or req.headers.get("authorization", "").removeprefix(
            "Bearer "
        )
        if key != self.api_key:
            problems.append("missing or wrong API key (x-api-key or Authorization: Bearer)")
        body, errs = json_body(req)
        if errs:
            return problems + errs
        if not isinstance(body.get("model"), str) or not body["model"]:
            problems.append("model must be a non-empty string")
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            problems.append("max_tokens must be a positive integer")
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            problems.append("messages must be a non-empty list")
        else:
            for m in msgs:
                if m.get("role") not in ("user", "assistant") or not isinstance(
                    m.get("content"), str | list
                ):
                    problems.append("each message needs role user|assistant and content")
        system = body.get("system")
        if system is not None:
            if isinstance(system, list):
                for b in system:
                    if b.get("type") != "text" or not isinstance(b.get("text"), str):
                        problems.append("system blocks must be {type: text, text}")
                    cc = b.get("cache_control")
                    if cc is not None and cc.get("type") != "ephemeral":
                        problems.append("cache_control.type must be 'ephemeral'")
            elif not isinstance(system, str):
                problems.append("system must be a string or a list of text blocks")
        oc = body.get("output_config")
        if oc is not None:
            fmt = oc.get("format") or {}
            if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
                problems.append("output_config.format must be {type: json_schema, schema: {...}}")
            elif fmt["schema"].get("additionalProperties") is not False:
                problems.append("structured output schemas need additionalProperties: false")
        return problems

    def route(self, req: Recorded) -> Reply:
        self.calls_made += 1
        text = self.answers.pop(0) if self.answers else json.dumps(VALID_ANSWER)
        first = self.calls_made == 1
        body = req.json()
        return Reply(
            200,
            {
                "id": f"msg_fake_{self.calls_made}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 420,
                    "output_tokens": 180,
                    # The first call writes the cache, later ones read it.
                    "cache_creation_input_tokens": 1500 if first else 0,
                    "cache_read_input_tokens": 0 if first else 1500,
                },
            },
        )
