"""The narrative activity through the real anthropic client against a contract-checking fake."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities.narrative import LlmConfig, NarrativeActivities, load_prompt
from domain.narrative import PURPOSES, ChurnRiskFacts, NarrativeRequest
from tests.adapters.conftest import env_at
from tests.fakes.anthropic_api import VALID_ANSWER, AnthropicFake
from tests.unit.test_draft_facts import FACTS as WORKFLOW_FACTS

FACTS = ChurnRiskFacts(
    account_id="acme",
    account_name="Acme Corp",
    csm_name="Riley Chen",
    rep_name="Jordan Park",
    stakeholders=["Sam Ortiz (CFO, executive sponsor)"],
    score=38,
    band="RED",
    churn_level="HIGH",
    days_to_renewal=48,
    arr=120000,
    evidence=["active users fell from 41 to 18 in 30 days", "champion Dana Lee left on 2026-10-02"],
    recommended_actions=["Executive sponsor call within 5 business days"],
    customer_quotes=["The export keeps timing out and our team is frustrated."],
)


def acts(pool: asyncpg.Pool, fake: AnthropicFake, **over: object) -> NarrativeActivities:
    cfg = LlmConfig(
        api_key=fake.api_key, base_url=fake.url, model="claude-test-model", timeout_s=0.5
    )
    for k, v in over.items():
        cfg = LlmConfig(**{**cfg.__dict__, k: v})
    return NarrativeActivities(pool, cfg)


async def usage_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM llm_usage ORDER BY id")


async def test_model_narrative_with_cached_system_prompt_and_usage(
    pool: asyncpg.Pool, anthropic_fake: AnthropicFake
) -> None:
    a = acts(pool, anthropic_fake)
    out = await env_at(1).run(a.write_narrative, NarrativeRequest(facts=FACTS))
    assert out.generated_by == "model" and not out.fallback and out.note is None
    assert out.headline == VALID_ANSWER["headline"]
    assert out.model == "claude-test-model"
    assert out.prompt_version == "_shared:1+churn_risk:1"

    (req,) = anthropic_fake.calls("POST", "/v1/messages")
    body = req.json()
    assert body["model"] == "claude-test-model"
    # Prompt caching on both system blocks; structured output requested as a JSON schema.
    assert [b["cache_control"] for b in body["system"]] == [{"type": "ephemeral"}] * 2
    assert body["system"][1]["text"].startswith("Task: explain to the account rep")
    assert set(body["output_config"]["format"]["schema"]["properties"]) == {
        "headline",
        "paragraphs",
        "bullets",
        "actions",
        "questions",
    }
    user = body["messages"][0]["content"]
    assert '"arr": 120000' in user and '<customer_data index="1">' in user

    # A second call reads the cache; every call is in the ledger.
    await env_at(1).run(a.write_narrative, NarrativeRequest(facts=FACTS))
    rows = await usage_rows(pool)
    assert [
        (r["account_id"], r["purpose"], r["model"], r["fallback"], r["error"]) for r in rows
    ] == [("acme", "churn_risk", "claude-test-model", False, None)] * 2
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"], rows[0]["cache_write_tokens"]) == (
        420,
        180,
        1500,
    )
    assert rows[1]["cache_read_tokens"] == 1500


@pytest.mark.parametrize("status", [429, 500, 503, 529])
async def test_rate_limits_and_server_errors_are_retryable_and_sdk_does_not_retry(
    pool: asyncpg.Pool, anthropic_fake: AnthropicFake, status: int
) -> None:
    anthropic_fake.fail(status, headers={"Retry-After": "7"} if status == 429 else None)
    with pytest.raises(ApplicationError) as err:
        await env_at(1).run(
            acts(pool, anthropic_fake).write_narrative, NarrativeRequest(facts=FACTS)
        )
    assert not err.value.non_retryable
    assert f"Anthropic: {status}" in str(err.value)
    if status == 429:
        assert err.value.next_retry_delay == timedelta(seconds=7)
    assert len(anthropic_fake.requests) == 1  # max_retries=0: Temporal is the only retrier
    (row,) = await usage_rows(pool)
    assert row["error"].startswith(f"Anthropic: {status}") and not row["fallback"]


async def test_timeout_is_retryable(pool: asyncpg.Pool, anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.hang(2.0)
    with pytest.raises(ApplicationError) as err:
        await env_at(1).run(
            acts(pool, anthropic_fake, timeout_s=0.3).write_narrative, NarrativeRequest(facts=FACTS)
        )
    assert not err.value.non_retryable and "timed out" in str(err.value)


async def test_malformed_json_is_retried_then_falls_back_on_final_attempt(
    pool: asyncpg.Pool, anthropic_fake: AnthropicFake
) -> None:
    a = acts(pool, anthropic_fake)
    anthropic_fake.answer("Sure! Here is the narrative: {headline: oops", times=3)
    for attempt in (1, 2):
        with pytest.raises(ApplicationError) as err:
            await env_at(attempt).run(
                a.write_narrative, NarrativeRequest(facts=FACTS, max_attempts=3)
            )
        assert not err.value.non_retryable and "malformed answer: not JSON" in str(err.value)
    out = await env_at(3).run(a.write_narrative, NarrativeRequest(facts=FACTS, max_attempts=3))
    assert out.generated_by == "template" and out.fallback and out.attempt == 3
    assert "Generated without the model" in (out.note or "")
    assert "Acme Corp" in out.headline and "HIGH" in out.headline
    rows = await usage_rows(pool)
    assert [r["fallback"] for r in rows] == [False, False, True]
    assert all(r["input_tokens"] == 420 for r in rows)  # malformed answers still cost tokens


@pytest.mark.parametrize(
    "answer, problem",
    [
        ({**VALID_ANSWER, "send_to": "ceo@example.com"}, "Extra inputs are not permitted"),
        ({**VALID_ANSWER, "paragraphs": ["One sentence only with 38/100."]}, "expected 2-3"),
        (
            {
                **VALID_ANSWER,
                "headline": "At risk",
                "paragraphs": ["No numbers here. None at all."],
            },
            "cite no number",
        ),
    ],
)
async def test_schema_violations_are_malformed(
    pool: asyncpg.Pool, anthropic_fake: AnthropicFake, answer: dict, problem: str
) -> None:
    anthropic_fake.answer(answer)
    with pytest.raises(ApplicationError) as err:
        await env_at(1).run(
            acts(pool, anthropic_fake).write_narrative, NarrativeRequest(facts=FACTS)
        )
    assert problem in str(err.value) and not err.value.non_retryable


@pytest.mark.parametrize(
    "status, fix",
    [
        (400, "VIM_LLM_STRUCTURED_OUTPUT"),
        (401, "ANTHROPIC_API_KEY is invalid"),
        (403, "permissions"),
        (404, "set VIM_MODEL"),
    ],
)
async def test_client_errors_fall_back_at_once_naming_the_fix(
    pool: asyncpg.Pool, anthropic_fake: AnthropicFake, status: int, fix: str
) -> None:
    # The key appears in the error body: it must be redacted everywhere.
    anthropic_fake.fail(
        status,
        {
            "type": "error",
            "error": {"type": "x_error", "message": f"bad key {anthropic_fake.api_key}"},
        },
    )
    out = await env_at(1).run(
        acts(pool, anthropic_fake).write_narrative, NarrativeRequest(facts=FACTS)
    )
    assert out.generated_by == "template" and out.fallback
    assert out.error and out.error.startswith(f"Anthropic: {status}") and fix in out.error
    assert anthropic_fake.api_key not in out.error and anthropic_fake.api_key not in (
        out.note or ""
    )
    (row,) = await usage_rows(pool)
    assert row["fallback"] and anthropic_fake.api_key not in row["error"]
    assert len(anthropic_fake.requests) == 1


async def test_no_api_key_uses_the_template_without_calling(
    pool: asyncpg.Pool, anthropic_fake: AnthropicFake
) -> None:
    a = NarrativeActivities(pool, LlmConfig(api_key=None, base_url=anthropic_fake.url))
    for purpose in PURPOSES:
        out = await env_at(1).run(
            a.write_narrative, NarrativeRequest(facts=WORKFLOW_FACTS[purpose])
        )
        assert out.generated_by == "template" and out.fallback
        assert out.note == "Generated without the model (no ANTHROPIC_API_KEY set)."
    assert anthropic_fake.requests == []
    rows = await usage_rows(pool)
    assert len(rows) == len(PURPOSES) and all(r["fallback"] and r["model"] is None for r in rows)


def test_every_purpose_has_a_versioned_prompt() -> None:
    shared = load_prompt("_shared")
    assert shared.version == "1" and "<customer_data>" in shared.text
    for purpose in PURPOSES:
        p = load_prompt(purpose)
        assert p.version.isdigit(), purpose
        assert "headline" in p.text and "paragraphs" in p.text, purpose


def test_config_from_env_defaults() -> None:
    cfg = LlmConfig.from_env({})
    assert cfg.api_key is None and cfg.base_url is None and cfg.model.startswith("claude-")
    cfg = LlmConfig.from_env(
        {"ANTHROPIC_API_KEY": "k" * 10, "VIM_MODEL": "m", "VIM_LLM_STRUCTURED_OUTPUT": "0"}
    )
    assert cfg.model == "m" and not cfg.structured_output
    assert "k" * 10 not in repr(cfg)


async def test_without_structured_output_the_schema_goes_in_the_message(
    pool: asyncpg.Pool, anthropic_fake: AnthropicFake
) -> None:
    await env_at(1).run(
        acts(pool, anthropic_fake, structured_output=False).write_narrative,
        NarrativeRequest(facts=FACTS),
    )
    body = anthropic_fake.requests[0].json()
    assert "output_config" not in body
    assert "matching this schema" in body["messages"][0]["content"]
    json.loads(body["messages"][0]["content"].rsplit("\n", 1)[1])
