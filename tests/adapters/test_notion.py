"""Notion deliveries through the real notion-client against a contract-checking fake."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities.channels.notion import NotionConfig
from activities.deliveries import ChannelsConfig, DeliveryActivities
from domain.delivery import DeliveryMetric, DeliveryRequest, DeliverySection, DeliveryTable
from stack.settings import Settings
from tests.adapters.conftest import env_at
from tests.fakes.notion_api import NotionFake

QBR_DB = "11111111-1111-1111-1111-111111111111"
HEALTH_DB = "22222222-2222-2222-2222-222222222222"


def qbr_request(key: str = "account-acme:qbr:2026-Q4") -> DeliveryRequest:
    return DeliveryRequest(
        idempotency_key=key,
        account_id="acme",
        kind="qbr_page",
        purpose="qbr",
        title="Acme Corp QBR 2026-Q4",
        properties={
            "Account": "Acme Corp",
            "Band": "AMBER",
            "Score": 61.5,
            "Quarter": "2026-Q4",
            "Not In DB": "x",
        },
        sections=[
            DeliverySection(
                heading="Account Health Summary",
                callout="Health 61/100, AMBER, up 9 points",
                callout_icon="🟠",
                paragraphs=["Acme moved from 52 to 61 over the quarter. Seat use drove it."],
                metrics=[DeliveryMetric(label="Health score", value="61/100")],
                table=DeliveryTable(
                    columns=["Date", "Score", "Band"],
                    rows=[["2026-08-01", "52", "AMBER"], ["2026-10-31", "61", "AMBER"]],
                ),
                bullets=["Active users rose from 30 to 44"],
                note="Narrative generated without the model (no ANTHROPIC_API_KEY set).",
            )
        ],
    )


def activities(
    pool: asyncpg.Pool, settings: Settings, fake: NotionFake | None, **over: str | None
) -> DeliveryActivities:
    cfg = NotionConfig(
        token=fake.token if fake else None,
        base_url=fake.url if fake else None,
        qbr_database_id=QBR_DB,
        health_database_id=HEALTH_DB,
        timeout_s=0.5,
    )
    cfg = NotionConfig(**{**cfg.__dict__, **over})
    return DeliveryActivities(pool, settings, ChannelsConfig(notion=cfg))


async def test_qbr_page_is_built_from_rich_blocks(
    pool: asyncpg.Pool, settings: Settings, notion_fake: NotionFake
) -> None:
    notion_fake.add_database(QBR_DB)
    res = await env_at().run(activities(pool, settings, notion_fake).deliver, qbr_request())
    assert (res.channel, res.status, res.duplicate) == ("notion", "delivered", False)
    (page,) = notion_fake.pages
    assert (
        res.external_id == page["id"]
        and res.target
        and res.target.startswith("https://www.notion.so/")
    )
    types = [b["type"] for b in page["children"]]
    assert types == [
        "heading_2",
        "callout",
        "paragraph",
        "table",
        "table",
        "bulleted_list_item",
        "paragraph",
    ]
    table = page["children"][4]["table"]
    assert table["table_width"] == 3 and table["has_column_header"]
    assert [c[0]["text"]["content"] for c in table["children"][0]["table_row"]["cells"]] == [
        "Date",
        "Score",
        "Band",
    ]
    props = page["properties"]
    assert props["Name"]["title"][0]["text"]["content"] == "Acme Corp QBR 2026-Q4"
    assert props["Idempotency Key"]["rich_text"][0]["text"]["content"] == "account-acme:qbr:2026-Q4"
    assert props["Band"] == {"select": {"name": "AMBER"}} and props["Score"] == {"number": 61.5}
    assert "Not In DB" not in props  # only properties the database has
    row = await pool.fetchrow("SELECT * FROM deliveries")
    assert (row["channel"], row["status"], row["external_id"], row["attempts"]) == (
        "notion",
        "delivered",
        page["id"],
        1,
    )


async def test_duplicate_delivery_creates_nothing_new(
    pool: asyncpg.Pool, settings: Settings, notion_fake: NotionFake
) -> None:
    notion_fake.add_database(QBR_DB)
    acts = activities(pool, settings, notion_fake)
    first = await env_at().run(acts.deliver, qbr_request())
    again = await env_at(2).run(acts.deliver, qbr_request())
    assert again.duplicate and again.external_id == first.external_id
    assert len(notion_fake.calls("POST", "/v1/pages")) == 1 and len(notion_fake.pages) == 1
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 1


async def test_page_created_before_a_crash_is_found_not_duplicated(
    pool: asyncpg.Pool, settings: Settings, notion_fake: NotionFake
) -> None:
    notion_fake.add_database(QBR_DB)
    acts = activities(pool, settings, notion_fake)
    first = await env_at().run(acts.deliver, qbr_request())
    # The worker died after Notion answered and before the row said "delivered".
    await pool.execute("UPDATE deliveries SET status = 'pending'")
    again = await env_at(2).run(acts.deliver, qbr_request())
    assert again.external_id == first.external_id and "earlier attempt" in (again.note or "")
    assert len(notion_fake.pages) == 1
    assert await pool.fetchval("SELECT attempts FROM deliveries") == 2


@pytest.mark.parametrize(
    "status, expected",
    [
        (400, "Notion: 400 validation_error"),
        (401, "NOTION_TOKEN is invalid or revoked"),
        (403, "enable Read, Update and Insert content"),
    ],
)
async def test_client_errors_are_not_retried_and_name_the_fix(
    pool: asyncpg.Pool, settings: Settings, notion_fake: NotionFake, status: int, expected: str
) -> None:
    notion_fake.add_database(QBR_DB)
    notion_fake.fail(status, match="POST /v1/pages")
    with pytest.raises(ApplicationError) as err:
        await env_at().run(activities(pool, settings, notion_fake).deliver, qbr_request())
    assert err.value.non_retryable and expected in err.value.message
    assert notion_fake.token not in err.value.message
    row = await pool.fetchrow("SELECT status, error FROM deliveries")
    assert row["status"] == "failed" and expected in row["error"]


async def test_database_not_shared_names_the_fix(
    pool: asyncpg.Pool, settings: Settings, notion_fake: NotionFake
) -> None:
    # No database registered: Notion answers 404 object_not_found, as for an unshared one.
    with pytest.raises(ApplicationError) as err:
        await env_at().run(activities(pool, settings, notion_fake).deliver, qbr_request())
    assert err.value.non_retryable
    assert err.value.message.startswith(
        "Notion: database not shared with the integration (404 object_not_found): share NOTION_QBR_DATABASE_ID with the integration"
    )


async def test_missing_idempotency_property_is_a_setup_error(
    pool: asyncpg.Pool, settings: Settings, notion_fake: NotionFake
) -> None:
    notion_fake.add_database(QBR_DB, {"Name": "title"})
    with pytest.raises(ApplicationError) as err:
        await env_at().run(activities(pool, settings, notion_fake).deliver, qbr_request())
    assert err.value.non_retryable and "Text property named 'Idempotency Key'" in err.value.message
    assert notion_fake.calls("POST", "/v1/pages") == []


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_rate_limits_and_server_errors_retry_then_succeed_once(
    pool: asyncpg.Pool, settings: Settings, notion_fake: NotionFake, status: int
) -> None:
    notion_fake.add_database(QBR_DB)
    notion_fake.fail(
        status, headers={"Retry-After": "3"} if status == 429 else None, match="POST /v1/pages"
    )
    acts = activities(pool, settings, notion_fake)
    with pytest.raises(ApplicationError) as err:
        await env_at(1).run(acts.deliver, qbr_request())
    assert not err.value.non_retryable and f"Notion: {status}" in err.value.message
    if status == 429:
        assert err.value.next_retry_delay == timedelta(seconds=3)
    assert len(notion_fake.calls("POST", "/v1/pages")) == 1  # the client's own retries are off
    assert await pool.fetchval("SELECT status FROM deliveries") == "pending"
    res = await env_at(2).run(acts.deliver, qbr_request())  # Temporal's retry
    assert res.status == "delivered" and res.attempts == 2 and len(notion_fake.pages) == 1


async def test_timeout_is_retryable(
    pool: asyncpg.Pool, settings: Settings, notion_fake: NotionFake
) -> None:
    notion_fake.add_database(QBR_DB)
    notion_fake.hang(2.0, match="POST /v1/data_sources")
    acts = DeliveryActivities(
        pool,
        settings,
        ChannelsConfig(
            notion=NotionConfig(
                notion_fake.token, notion_fake.url, QBR_DB, HEALTH_DB, timeout_s=0.3
            )
        ),
    )
    with pytest.raises(ApplicationError) as err:
        await env_at().run(acts.deliver, qbr_request())
    assert not err.value.non_retryable and "timed out" in err.value.message


async def test_health_update_with_more_than_100_blocks(
    pool: asyncpg.Pool, settings: Settings, notion_fake: NotionFake
) -> None:
    notion_fake.add_database(HEALTH_DB)
    req = DeliveryRequest(
        idempotency_key="account-acme:health:2026-11-03",
        account_id="acme",
        kind="health_update",
        purpose="health_update",
        title="Acme Corp health: RED 38/100",
        properties={"Band": "RED", "Score": 38},
        sections=[DeliverySection(heading="Drivers", bullets=[f"driver {i}" for i in range(150)])],
    )
    res = await env_at().run(activities(pool, settings, notion_fake).deliver, req)
    assert res.channel == "notion"
    (page,) = notion_fake.pages
    assert len(page["children"]) == 151  # 100 at creation, 51 appended
    assert len(notion_fake.calls("PATCH", "/children")) == 1


async def test_without_token_the_qbr_goes_to_the_outbox(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    acts = DeliveryActivities(pool, settings, ChannelsConfig())
    res = await env_at().run(acts.deliver, qbr_request())
    assert res.channel == "outbox" and res.note and res.note.startswith("no NOTION_TOKEN: wrote ")
    path = settings.outbox_dir / "qbr"
    (md,) = list(path.glob("*.md"))
    text = md.read_text()
    assert text.startswith("# Acme Corp QBR 2026-Q4") and "| Date | Score | Band |" in text
    res2 = await env_at().run(acts.deliver, qbr_request())
    assert res2.duplicate and len(list(path.iterdir())) == 1


async def test_token_without_database_id_says_which_variable(
    pool: asyncpg.Pool, settings: Settings, notion_fake: NotionFake
) -> None:
    res = await env_at().run(
        activities(pool, settings, notion_fake, qbr_database_id=None).deliver, qbr_request()
    )
    assert res.channel == "outbox" and (res.note or "").startswith(
        "NOTION_TOKEN is set but NOTION_QBR_DATABASE_ID is not"
    )
    assert notion_fake.requests == []
