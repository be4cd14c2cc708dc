"""The narrative activity: Claude writes the words, a template stands in when it cannot.

Run on the LLM task queue (``settings.llm_task_queue``) by a worker started
with ``max_task_queue_activities_per_second``: the server-side rate limit is
what keeps a large portfolio under Anthropic's limits.

Retries: the SDK's own retries are off (``max_retries=0``); Temporal's retry
policy is the only one. 429/5xx/timeouts/malformed answers raise a retryable
error, except on the final attempt (``req.max_attempts``), which returns the
template. 400/401/403/404 cannot succeed on retry, so they return the
template at once with the error recorded. The outcome is always a narrative.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import anthropic
import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channels.errors import install_log_redaction, redact, retry_after_seconds
from domain.narrative import (
    BODY_MODELS,
    Narrative,
    NarrativeFacts,
    NarrativeRequest,
    build_user_message,
    output_from_body,
    parse_model_json,
    render_template,
)
from stack import metrics
from stack.settings import ROOT

DEFAULT_MODEL = "claude-sonnet-4-6"
PROMPTS_DIR = ROOT / "prompts"
SHARED_PROMPT = "_shared"


@dataclass(frozen=True)
class LlmConfig:
    api_key: str | None = field(default=None, repr=False)  # never printed
    base_url: str | None = None
    model: str = DEFAULT_MODEL
    max_tokens: int = 1200
    timeout_s: float = 60.0
    # Structured outputs (output_config.format = json_schema). Off for models without it.
    structured_output: bool = True
    prompts_dir: Path = PROMPTS_DIR

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> LlmConfig:
        env = dict(os.environ) if env is None else env
        return cls(
            api_key=env.get("ANTHROPIC_API_KEY") or None,
            base_url=env.get("ANTHROPIC_BASE_URL") or None,
            model=env.get("VIM_MODEL") or DEFAULT_MODEL,
            max_tokens=int(env.get("VIM_LLM_MAX_TOKENS") or 1200),
            timeout_s=float(env.get("VIM_LLM_TIMEOUT_S") or 60),
            structured_output=(env.get("VIM_LLM_STRUCTURED_OUTPUT") or "1").lower()
            not in ("0", "false", "no"),
            prompts_dir=Path(env.get("VIM_PROMPTS_DIR") or PROMPTS_DIR),
        )


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    text: str


def load_prompt(name: str, prompts_dir: Path = PROMPTS_DIR) -> Prompt:
    """Read ``prompts/<name>.md``: header lines (``version: N``) up to a blank line, then the text."""
    path = prompts_dir / f"{name}.md"
    raw = path.read_text(encoding="utf-8")
    header, _, text = raw.partition("\n\n")
    meta = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition(":") for line in header.splitlines())
        if k.strip()
    )
    if "version" not in meta:
        raise ValueError(f"{path}: first line must be 'version: N'")
    return Prompt(name=name, version=meta["version"], text=text.strip())


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None, usage: Any = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.usage = usage


class _Fatal(Exception):
    pass


class NarrativeActivities:
    def __init__(self, pool: asyncpg.Pool | None, config: LlmConfig | None = None) -> None:
        self.pool = pool
        self.config = config or LlmConfig.from_env()
        install_log_redaction([self.config.api_key])
        self._client: anthropic.AsyncAnthropic | None = None
        self._prompts: dict[str, Prompt] = {}

    # ---------------------------------------------------------------- activity

    @activity.defn(name="write_narrative")
    async def write_narrative(self, req: NarrativeRequest) -> Narrative:
        facts = req.facts
        attempt = activity.info().attempt
        final = attempt >= req.max_attempts
        cfg = self.config
        if not cfg.api_key:
            await self._record(facts, None, None, fallback=True, error="no ANTHROPIC_API_KEY")
            return self._fallback(facts, attempt, "no ANTHROPIC_API_KEY set", error=None)

        shared, purpose = self._prompt(SHARED_PROMPT), self._prompt(facts.purpose)
        version = f"{shared.name}:{shared.version}+{purpose.name}:{purpose.version}"
        try:
            raw, usage = await self._call(facts, shared, purpose)
            try:
                body = parse_model_json(facts.purpose, raw, facts)
            except ValueError as e:
                raise _Retryable(f"Anthropic: malformed answer: {e}", usage=usage) from None
        except _Retryable as e:
            msg = self._safe(str(e))
            await self._record(facts, cfg.model, e.usage, fallback=final, error=msg)
            if final:
                activity.logger.warning("narrative fell back to template on final attempt: %s", msg)
                return self._fallback(
                    facts,
                    attempt,
                    f"the model failed after {attempt} attempts",
                    error=msg,
                    version=version,
                )
            raise ApplicationError(
                msg,
                type="NarrativeRetryable",
                next_retry_delay=timedelta(seconds=e.retry_after) if e.retry_after else None,
            ) from None
        except _Fatal as e:
            # Non-retryable on Anthropic's side; the workflow still gets a narrative.
            msg = self._safe(str(e))
            activity.logger.error("%s (falling back to template)", msg)
            await self._record(facts, cfg.model, None, fallback=True, error=msg)
            return self._fallback(
                facts,
                attempt,
                "the model call was refused; see the worker log",
                error=msg,
                version=version,
            )

        await self._record(facts, cfg.model, usage, fallback=False, error=None)
        out = output_from_body(facts, body, "model")
        return Narrative(
            **out.model_dump(),
            model=cfg.model,
            prompt_version=version,
            attempt=attempt,
            **_usage_fields(usage),
        )

    # ----------------------------------------------------------------- helpers

    def _fallback(
        self,
        facts: NarrativeFacts,
        attempt: int,
        reason: str,
        *,
        error: str | None,
        version: str | None = None,
    ) -> Narrative:
        out = render_template(facts, fallback=True, reason=reason)
        return Narrative(**out.model_dump(), error=error, attempt=attempt, prompt_version=version)

    def _prompt(self, name: str) -> Prompt:
        if name not in self._prompts:
            self._prompts[name] = load_prompt(name, self.config.prompts_dir)
        return self._prompts[name]

    def _anthropic(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            self._client = anthropic.AsyncAnthropic(
                api_key=self.config.api_key,
                base_url=self.config.base_url,  # None: the SDK default
                max_retries=0,  # Temporal's retry policy is the only one
                timeout=self.config.timeout_s,
            )
        return self._client

    async def _call(
        self, facts: NarrativeFacts, shared: Prompt, purpose: Prompt
    ) -> tuple[str, Any]:
        cfg = self.config
        schema = anthropic.transform_schema(BODY_MODELS[facts.purpose])
        # Two cached blocks: the shared preamble is reused by every purpose.
        system = [
            {"type": "text", "text": shared.text, "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": purpose.text, "cache_control": {"type": "ephemeral"}},
        ]
        kwargs: dict[str, Any] = {
            "model": cfg.model,
            "max_tokens": cfg.max_tokens,
            "system": system,
            "messages": [
                {
                    "role": "user",
                    "content": build_user_message(facts, None if cfg.structured_output else schema),
                }
            ],
            "metadata": {"user_id": facts.account_id[:64]},
        }
        if cfg.structured_output:
            kwargs["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        try:
            msg = await self._anthropic().messages.create(**kwargs)
        except anthropic.APITimeoutError:
            raise _Retryable(f"Anthropic: request timed out after {cfg.timeout_s:g}s") from None
        except anthropic.APIConnectionError as e:
            raise _Retryable(
                f"Anthropic: connection error ({type(e.__cause__ or e).__name__})"
            ) from None
        except anthropic.APIStatusError as e:
            raise _map_status(e, cfg.model) from None
        except anthropic.APIResponseValidationError as e:
            raise _Retryable(f"Anthropic: unexpected response shape ({e.status_code})") from None

        if msg.stop_reason == "refusal":
            raise _Fatal(
                "Anthropic: the model declined to write this narrative (stop_reason=refusal)"
            )
        text = "".join(b.text for b in msg.content if getattr(b, "type", None) == "text")
        if msg.stop_reason == "max_tokens":
            raise _Retryable(
                f"Anthropic: answer cut at max_tokens={cfg.max_tokens}: raise VIM_LLM_MAX_TOKENS",
                usage=msg.usage,
            )
        return text, msg.usage

    def _safe(self, text: str) -> str:
        return redact(text, [self.config.api_key])

    async def _record(
        self,
        facts: NarrativeFacts,
        model: str | None,
        usage: Any,
        *,
        fallback: bool,
        error: str | None,
    ) -> None:
        """One llm_usage row per call (and per template fallback): the cost ledger."""
        u = _usage_fields(usage)
        metrics.model_call(facts.purpose, model, u, fallback=fallback, error=error)
        if self.pool is None:
            return
        try:
            await self.pool.execute(
                """INSERT INTO llm_usage (account_id, purpose, model, input_tokens, output_tokens,
                       cache_read_tokens, cache_write_tokens, fallback, error)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
                facts.account_id,
                facts.purpose,
                model,
                u["input_tokens"],
                u["output_tokens"],
                u["cache_read_tokens"],
                u["cache_write_tokens"],
                fallback,
                error[:500] if error else None,
            )
        except (asyncpg.PostgresError, OSError) as e:
            # The ledger must not cost the customer a narrative; say so loudly.
            activity.logger.warning(
                "could not record llm_usage for %s: %s", facts.account_id, type(e).__name__
            )


def _usage_fields(usage: Any) -> dict[str, int]:
    if usage is None:
        return {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
        }
    return {
        "input_tokens": int(getattr(usage, "input_tokens", 0) or 0),
        "output_tokens": int(getattr(usage, "output_tokens", 0) or 0),
        "cache_read_tokens": int(getattr(usage, "cache_read_input_tokens", 0) or 0),
        "cache_write_tokens": int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
    }


def _error_detail(e: anthropic.APIStatusError) -> tuple[str, str]:
    body = e.body if isinstance(e.body, dict) else {}
    err = body.get("error") if isinstance(body.get("error"), dict) else body
    kind = str(err.get("type") or "error") if isinstance(err, dict) else "error"
    message = str(err.get("message") or "") if isinstance(err, dict) else ""
    return kind, message[:300]


def _map_status(e: anthropic.APIStatusError, model: str) -> Exception:
    status = e.status_code
    kind, message = _error_detail(e)
    detail = f"Anthropic: {status} {kind}" + (f" ({message})" if message else "")
    if status == 429:
        return _Retryable(
            f"{detail}: rate limited; Temporal retries with backoff",
            retry_after_seconds(e.response.headers),
        )
    if status >= 500 or status in (408, 409):
        return _Retryable(
            f"{detail}: server error; Temporal retries", retry_after_seconds(e.response.headers)
        )
    fixes = {
        400: "check VIM_MODEL supports structured outputs (or set VIM_LLM_STRUCTURED_OUTPUT=0)",
        401: "ANTHROPIC_API_KEY is invalid or revoked: set a valid API key",
        402: "the Anthropic account has no credit: check billing",
        403: "the API key may not use this model or workspace: check the key's permissions",
        404: f"model {model!r} not found: set VIM_MODEL to a current model id",
        413: "the request is too large: fewer customer quotes or a smaller facts payload",
    }
    return _Fatal(f"{detail}: {fixes.get(status, 'fix the request; retrying cannot help')}")
