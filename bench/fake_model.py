"""A fake model endpoint for the account-year: the project's contract-checking fake,
answering every purpose validly and counting tokens from what is really sent.

`tests/fakes/anthropic_api.AnthropicFake` checks each request against the
Messages API contract and counts calls; its canned answer is written for one
churn-risk test, so other purposes would be rejected by
`domain.narrative.check_body` and retried. This subclass answers one body
that is valid for every purpose (one 2-sentence paragraph with a number, two
actions), so each narrative costs exactly one call, as with a working model.

Token counts are estimated from the request the worker really sends (about 4
characters a token): `input_tokens` is the user turn (the facts),
`cache_creation_input_tokens`/`cache_read_input_tokens` are the two cached
system blocks (shared preamble, then the purpose's prompt: each written the
first time it is seen, read afterwards; the 5-minute cache TTL never expires
in a year compressed into a minute, so reads are the best case). Output tokens are this short answer's, a floor: a real answer is longer
(up to VIM_LLM_MAX_TOKENS, 1,200).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from tests.fakes.anthropic_api import AnthropicFake
from tests.fakes.base import Recorded, Reply

API_KEY = "fake-bench-key"
CHARS_PER_TOKEN = 4

ANSWER = {
    "headline": "Account review: 3 signals changed this period",
    "paragraphs": [
        "The health score moved by 4 points since the last review. "
        "The rules engine lists the drivers below, each with its evidence."
    ],
    "bullets": ["Usage and seat utilization are the main drivers this period"],
    "actions": ["Review the drivers with the account team", "Agree on one next step this week"],
    "questions": ["What changed for the customer this quarter?"],
}


def _tokens(text: str) -> int:
    return max(1, round(len(text) / CHARS_PER_TOKEN))


class BenchModelFake(AnthropicFake):
    def __init__(self) -> None:
        super().__init__(api_key=API_KEY)
        self._seen_prefixes: set[str] = set()
        self._count_lock = threading.Lock()
        self.tokens = {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0}

    def route(self, req: Recorded) -> Reply:
        body: dict[str, Any] = req.json()
        text = json.dumps(ANSWER)
        user = "".join(
            m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
            for m in body.get("messages", [])
        )
        system = body.get("system") or []
        blocks = [b.get("text", "") for b in system] if isinstance(system, list) else [system]
        # Like the API: each cache breakpoint caches the prefix up to it; the
        # longest prefix seen before is read, the rest of the cached part written.
        prefixes = ["".join(blocks[: i + 1]) for i in range(len(blocks))]
        with self._count_lock:
            self.calls_made += 1
            hit = max((p for p in prefixes if p in self._seen_prefixes), key=len, default="")
            self._seen_prefixes.update(prefixes)
            cached = _tokens(prefixes[-1]) if prefixes else 0
            read = _tokens(hit) if hit else 0
            usage = {
                "input_tokens": _tokens(user),
                "output_tokens": _tokens(text),
                "cache_creation_input_tokens": cached - read,
                "cache_read_input_tokens": read,
            }
            self.tokens["input"] += usage["input_tokens"]
            self.tokens["output"] += usage["output_tokens"]
            self.tokens["cache_write"] += usage["cache_creation_input_tokens"]
            self.tokens["cache_read"] += usage["cache_read_input_tokens"]
            n = self.calls_made
        return Reply(
            200,
            {
                "id": f"msg_bench_{n}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": usage,
            },
        )
