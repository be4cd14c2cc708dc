"""The local outbox (no credentials) and the Postgres event bus."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path

import asyncpg
import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.channels.notion import NotionConfig
from activities.channels.outbox import Outbox, outbox_name
from activities.deliveries import ChannelsConfig, DeliveryActivities
from domain.delivery import BusEvent, DeliveryRequest, DeliverySection, delivery_key
from stack.settings import Settings
from tests.adapters.conftest import env_at

NOW = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def _text(path: str) -> str:
    return Path(path).read_text()


def _bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def request(kind: str, key: str, **over: object) -> DeliveryRequest:
    base: dict[str, object] = {
        "idempotency_key": key,
        "account_id": "acme",
        "kind": kind,
        "purpose": kind,
        "title": f"Acme Corp {kind}",
        "subject": f"Acme Corp {kind}",
        "to": "riley.chen@vendor.example" if kind == "email_draft" else None,
        "sections": [
            DeliverySection(heading="Summary", callout="AMBER 58/100", bullets=["seat use 44%"])
        ],
    }
    return DeliveryRequest.model_validate({**base, **over})


async def test_every_kind_lands_in_the_outbox_as_a_file_a_person_can_open(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    a = DeliveryActivities(pool, settings, ChannelsConfig())
    paths = {}
    for kind in ("qbr_page", "email_draft", "chat_alert", "health_update"):
        res = await env_at().run(a.deliver, request(kind, f"account-acme:{kind}"))
        assert res.channel == "outbox" and res.external_id
        paths[kind] = res.external_id
    assert paths["qbr_page"].endswith(".md") and "AMBER 58/100" in _text(paths["qbr_page"])
    msg = BytesParser(policy=policy.default).parsebytes(_bytes(paths["email_draft"]))
    assert msg["Subject"] == "Acme Corp email_draft" and "seat use 44%" in msg.get_content()
    chat = json.loads(_text(paths["chat_alert"]))
    assert chat["slack"]["blocks"][0]["text"]["text"] == "Acme Corp chat_alert"
    notion = json.loads(_text(paths["health_update"]))
    assert [b["type"] for b in notion["notion_blocks"]] == [
        "heading_2",
        "callout",
        "bulleted_list_item",
    ]
    rows = await pool.fetch("SELECT channel, status, attempts FROM deliveries")
    assert [tuple(r) for r in rows] == [("outbox", "delivered", 1)] * 4


async def test_secrets_never_reach_the_outbox_or_the_table(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    token = "secret_abcdefghijklmnopqrstuvwxyz0123456789"
    a = DeliveryActivities(pool, settings, ChannelsConfig(notion=NotionConfig(token=token)))
    res = await env_at().run(a.deliver, request("health_update", "account-acme:health"))
    assert res.channel == "outbox" and res.note and token not in res.note
    for f in settings.outbox_dir.rglob("*"):
        if f.is_file():
            assert token not in f.read_text()
    dump = json.dumps([dict(r) for r in await pool.fetch("SELECT * FROM deliveries")], default=str)
    assert token not in dump and token not in repr(a.channels)


async def test_concurrent_duplicates_make_one_delivery(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    a = DeliveryActivities(pool, settings, ChannelsConfig())
    req = request("email_draft", "account-acme:same")
    results = await asyncio.gather(
        *(env_at().run(a.deliver, req) for _ in range(4)), return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    assert ok and all(isinstance(e, ApplicationError) and not e.non_retryable for e in errors)
    assert sum(1 for r in ok if not r.duplicate) == 1
    assert len(list((settings.outbox_dir / "email").iterdir())) == 1
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 1


async def test_a_key_cannot_move_to_another_account(pool: asyncpg.Pool, settings: Settings) -> None:
    a = DeliveryActivities(pool, settings, ChannelsConfig())
    await env_at().run(a.deliver, request("chat_alert", "k-1"))
    with pytest.raises(ApplicationError) as err:
        await env_at().run(a.deliver, request("chat_alert", "k-1", account_id="other"))
    assert err.value.non_retryable


def test_outbox_names_follow_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    box = Outbox(tmp_path)
    assert box.path_for("qbr_page", "account-a:qbr:2026-Q4") == box.path_for(
        "qbr_page", "account-a:qbr:2026-Q4"
    )
    assert box.path_for("qbr_page", "a/b") != box.path_for(
        "qbr_page", "a_b"
    )  # sanitized, still distinct
    name = outbox_name("../../etc/passwd")
    assert "/" not in name and not name.startswith(".")


def test_delivery_key_is_deterministic_and_safe() -> None:
    assert delivery_key("account-acme", "qbr", "2026-Q4") == "account-acme:qbr:2026-Q4"
    odd = delivery_key("account-ac me", "qbr\n", "x")
    assert odd == delivery_key("account-ac me", "qbr\n", "x") and "\n" not in odd and " " not in odd
    assert odd != delivery_key("account-ac_me", "qbr_", "x")


def test_headers_cannot_be_injected_and_recipients_are_single_addresses() -> None:
    req = request("email_draft", "k", subject="Hi\r\nBcc: attacker@evil.com")
    assert "\n" not in (req.subject or "") and "\r" not in (req.subject or "")
    with pytest.raises(ValidationError):
        request("email_draft", "k", to="a@b.co, attacker@evil.com")


async def test_publish_event_is_idempotent_and_notifies(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    a = DeliveryActivities(pool, settings, ChannelsConfig())
    got: asyncio.Queue[str] = asyncio.Queue()

    def on_notify(*args: object) -> None:
        got.put_nowait(str(args[3]))

    async with pool.acquire() as listener:
        await listener.add_listener("vim_events", on_notify)
        ev = BusEvent(
            event_key="account-acme:churn.alert:2026-11-03",
            account_id="acme",
            event_type="churn.alert",
            payload={"level": "HIGH", "score": 38.0},
            occurred_at=NOW,
        )
        first = await env_at().run(a.publish_event, ev)
        again = await env_at(2).run(a.publish_event, ev)
        assert isinstance(first, int) and again is None
        assert await asyncio.wait_for(got.get(), 5) == str(first)
        await listener.remove_listener("vim_events", on_notify)
    row = await pool.fetchrow("SELECT * FROM events")
    assert (row["event_type"], row["account_id"], json.loads(row["payload"])) == (
        "churn.alert",
        "acme",
        {"level": "HIGH", "score": 38.0},
    )
    assert await pool.fetchval("SELECT count(*) FROM events") == 1


def test_bus_events_need_aware_times() -> None:
    with pytest.raises(ValidationError):
        BusEvent(event_key="k", event_type="x", occurred_at=datetime(2026, 1, 1))
