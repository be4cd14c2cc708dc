"""Slack chat alerts (webhook and chat.postMessage) through httpx against a contract-checking fake."""

from __future__ import annotations

import json

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities.channels.slack import SlackConfig
from activities.deliveries import ChannelsConfig, DeliveryActivities
from domain.delivery import DeliveryMetric, DeliveryRequest, DeliverySection
from stack.settings import Settings
from tests.adapters.conftest import env_at
from tests.fakes.slack_api import WEBHOOK_PATH, SlackFake


def alert(key: str = "account-acme:chat_alert:churn:2026-11-03") -> DeliveryRequest:
    return DeliveryRequest(
        idempotency_key=key,
        account_id="acme",
        kind="chat_alert",
        purpose="churn_alert",
        title="Churn risk HIGH: Acme Corp",
        sections=[
            DeliverySection(
                callout="RED 38/100, renewal in 48 days",
                callout_icon="🔴",
                paragraphs=["Active users fell from 41 to 18 in 30 days <!channel>."],
                metrics=[
                    DeliveryMetric(label="ARR", value="$120,000"),
                    DeliveryMetric(label="Renewal", value="48 days"),
                ],
                bullets=["Champion Dana Lee left on 2026-10-02"],
            )
        ],
    )


def webhook_acts(
    pool: asyncpg.Pool, settings: Settings, fake: SlackFake, timeout_s: float = 0.5
) -> DeliveryActivities:
    return DeliveryActivities(
        pool,
        settings,
        ChannelsConfig(slack=SlackConfig(webhook_url=fake.webhook_url, timeout_s=timeout_s)),
    )


def api_acts(pool: asyncpg.Pool, settings: Settings, fake: SlackFake) -> DeliveryActivities:
    cfg = SlackConfig(
        # A generous timeout: these tests script answers, not hangs (a busy 2-core machine
        # took more than 0.5 s to answer once and turned a scripted error into a timeout).
        bot_token=fake.bot_token,
        channel="#cs-alerts",
        base_url=fake.url + "/api",
        timeout_s=5,
    )
    return DeliveryActivities(pool, settings, ChannelsConfig(slack=cfg))


async def test_webhook_posts_block_kit_once(
    pool: asyncpg.Pool, settings: Settings, slack_fake: SlackFake
) -> None:
    a = webhook_acts(pool, settings, slack_fake)
    res = await env_at().run(a.deliver, alert())
    assert (res.channel, res.status, res.external_id) == ("slack", "delivered", "webhook")
    assert WEBHOOK_PATH not in (res.target or "")  # the webhook URL is a secret
    (msg,) = slack_fake.messages
    assert msg["text"] == "Churn risk HIGH: Acme Corp"
    assert [b["type"] for b in msg["blocks"]] == [
        "header",
        "section",
        "section",
        "section",
        "context",
    ]
    assert "&lt;!channel&gt;" in msg["blocks"][1]["text"]["text"]  # no @channel from data
    assert msg["blocks"][2]["fields"][0]["text"] == "*ARR*\n$120,000"
    again = await env_at(2).run(a.deliver, alert())
    assert again.duplicate and len(slack_fake.messages) == 1


async def test_chat_post_message_with_bot_token(
    pool: asyncpg.Pool, settings: Settings, slack_fake: SlackFake
) -> None:
    res = await env_at().run(api_acts(pool, settings, slack_fake).deliver, alert())
    assert (res.channel, res.external_id, res.target) == ("slack", "1700000000.000001", "C0123")
    (req,) = slack_fake.requests
    body = req.json()
    assert req.headers["authorization"] == f"Bearer {slack_fake.bot_token}"
    assert (
        body["channel"] == "#cs-alerts"
        and body["metadata"]["event_payload"]["idempotency_key"] == alert().idempotency_key
    )


async def test_a_retry_after_a_lost_response_finds_the_posted_message_instead_of_reposting(
    pool: asyncpg.Pool, settings: Settings, slack_fake: SlackFake
) -> None:
    """Bot token: Slack took the message but the answer was lost; the retry must not post again."""
    a = api_acts(pool, settings, slack_fake)
    slack_fake.lose_responses = 1
    with pytest.raises(ApplicationError) as err:
        await env_at().run(a.deliver, alert())
    assert not err.value.non_retryable and len(slack_fake.messages) == 1
    res = await env_at(2).run(a.deliver, alert())
    assert res.status == "delivered" and res.external_id == "1700000000.000001"
    assert "earlier attempt posted" in (res.note or "")
    assert len(slack_fake.messages) == 1  # one message in the channel, not two
    (lookup,) = slack_fake.calls("GET", "conversations.history")
    assert lookup.query["include_all_metadata"] in (["true"], ["1"])
    # A different delivery key is not mistaken for this one.
    other = await env_at(2).run(a.deliver, alert("account-acme:chat_alert:churn:2026-11-04"))
    assert other.status == "delivered" and len(slack_fake.messages) == 2


async def test_when_history_cannot_be_read_the_retry_posts_and_says_it_may_repeat(
    pool: asyncpg.Pool, settings: Settings, slack_fake: SlackFake
) -> None:
    a = api_acts(pool, settings, slack_fake)
    slack_fake.lose_responses = 1
    with pytest.raises(ApplicationError):
        await env_at().run(a.deliver, alert())
    slack_fake.history_errors.append("missing_scope")
    res = await env_at(2).run(a.deliver, alert())
    assert res.status == "delivered" and "may repeat" in (res.note or "")
    assert len(slack_fake.messages) == 2


@pytest.mark.parametrize(
    "error, retry, fix",
    [
        ("invalid_auth", False, "SLACK_BOT_TOKEN is invalid"),
        ("not_in_channel", False, "invite the app to SLACK_CHANNEL"),
        ("channel_not_found", False, "fix SLACK_CHANNEL"),
        ("ratelimited", True, "ratelimited"),
        ("internal_error", True, "internal_error"),
    ],
)
async def test_web_api_errors(
    pool: asyncpg.Pool, settings: Settings, slack_fake: SlackFake, error: str, retry: bool, fix: str
) -> None:
    slack_fake.api_errors.append(error)
    with pytest.raises(ApplicationError) as err:
        await env_at().run(api_acts(pool, settings, slack_fake).deliver, alert())
    assert (
        err.value.non_retryable is (not retry)
        and err.value.message.startswith("Slack: ")
        and fix in err.value.message
    )
    assert slack_fake.bot_token not in err.value.message


@pytest.mark.parametrize(
    "status, fix",
    [
        (400, "the Block Kit payload was rejected"),
        (403, "create a new incoming webhook"),
        (404, "the webhook was removed: create a new incoming webhook and set SLACK_WEBHOOK_URL"),
        (410, "the webhook's channel is archived"),
    ],
)
async def test_webhook_client_errors_name_the_fix(
    pool: asyncpg.Pool, settings: Settings, slack_fake: SlackFake, status: int, fix: str
) -> None:
    slack_fake.fail(status)
    with pytest.raises(ApplicationError) as err:
        await env_at().run(webhook_acts(pool, settings, slack_fake).deliver, alert())
    assert (
        err.value.non_retryable
        and err.value.message.startswith(f"Slack: {status}")
        and fix in err.value.message
    )
    row = await pool.fetchrow("SELECT status, error FROM deliveries")
    assert (
        row["status"] == "failed"
        and WEBHOOK_PATH not in row["error"]
        and "fakewebhooksecret" not in err.value.message
    )


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_webhook_rate_limit_and_server_errors_retry(
    pool: asyncpg.Pool, settings: Settings, slack_fake: SlackFake, status: int
) -> None:
    slack_fake.fail(status, headers={"Retry-After": "2"} if status == 429 else None)
    a = webhook_acts(pool, settings, slack_fake)
    with pytest.raises(ApplicationError) as err:
        await env_at().run(a.deliver, alert())
    assert not err.value.non_retryable
    res = await env_at(2).run(a.deliver, alert())
    assert res.status == "delivered" and len(slack_fake.messages) == 1


async def test_timeout_is_retryable(
    pool: asyncpg.Pool, settings: Settings, slack_fake: SlackFake
) -> None:
    slack_fake.hang(2.0)
    with pytest.raises(ApplicationError) as err:
        await env_at().run(webhook_acts(pool, settings, slack_fake, timeout_s=0.3).deliver, alert())
    assert not err.value.non_retryable and "timed out" in err.value.message


async def test_without_slack_the_alert_is_json_in_the_outbox(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    res = await env_at().run(DeliveryActivities(pool, settings, ChannelsConfig()).deliver, alert())
    assert res.channel == "outbox" and (res.note or "").startswith(
        "no SLACK_WEBHOOK_URL or SLACK_BOT_TOKEN + SLACK_CHANNEL: wrote "
    )
    (path,) = list((settings.outbox_dir / "chat").glob("*.json"))
    data = json.loads(path.read_text())
    assert (
        data["title"] == "Churn risk HIGH: Acme Corp"
        and data["slack"]["blocks"][0]["type"] == "header"
    )
    assert "RED 38/100" in data["markdown"]


async def test_the_webhook_url_never_reaches_a_log_line(
    pool: asyncpg.Pool, settings: Settings, slack_fake: SlackFake, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    await env_at().run(webhook_acts(pool, settings, slack_fake).deliver, alert())
    assert slack_fake.messages and "fakewebhooksecret" not in caplog.text
    # The client did log the request (with the URL redacted), so the check above means something.
    assert any("Sending a request" in r.getMessage() for r in caplog.records)
