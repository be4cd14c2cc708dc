"""Classes 2 and 3 on the real dev server, worker and Postgres.

Class 2: input that Postgres or Temporal would refuse is refused at the edge
(recorded as rejected with its reason, never retried, never fatal), pending
telemetry is flushed in chunks that fit Temporal's payload limit, and later
signals are still processed. Class 3: record ids are scoped by account.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from domain.messages import ReassignUpdate
from tests.drills.support import activity_attempts, events, wait_for
from tests.drills.test_malformed_burst import _failure_chain
from tests.hostile.support import assert_alive, every_run, snapshots
from tests.workflows.helpers import make_handoff, running_worker, settings_for_test, view

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

NOW = datetime.now(UTC).replace(microsecond=0)
TEMPORAL_PAYLOAD_BYTES = 2 * 1024 * 1024
TS = (NOW - timedelta(hours=1)).isoformat()


def _acct(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def _rejected(handle: WorkflowHandle, n: int) -> list[str]:
    async def enough() -> list[str] | None:
        v = await view(handle)
        texts = [t.text for t in v.timeline if t.kind == "rejected"]
        return texts if len(texts) >= n else None

    return await wait_for(enough, timeout=60, what=f"{n} rejections")


async def _row(pool: Any, sql: str, *args: Any) -> Any:
    async def found() -> Any:
        return await pool.fetchrow(sql, *args)

    return await wait_for(found, timeout=60, what=sql)


# Each would pass a model that checks only shapes, then be refused by Postgres (NUL,
# a key over the btree limit, integer or numeric overflow) or by Temporal.
POSTGRES_WOULD_REFUSE: list[tuple[str, dict[str, Any], str]] = [
    (
        "ticket",
        {"ticket_id": "T-nul", "opened_at": TS, "body": "broken \x00 export"},
        "body: Value error, contains a NUL character",
    ),
    (
        "ticket",
        {"ticket_id": "T" * 10_000, "opened_at": TS},
        "ticket_id: String should have at most 200",
    ),
    (
        "nps",
        {"response_id": "R-nul", "responded_at": TS, "score": 3, "comment": "\x00"},
        "comment: Value error, contains a NUL character",
    ),
    (
        "interaction",
        {"interaction_id": "X" * 10_000, "occurred_at": TS},
        "interaction_id: String should have at most 200",
    ),
    (
        "interaction",
        {"interaction_id": "X-big", "occurred_at": TS, "attendees": 3_000_000_000},
        "attendees: Input should be less than or equal to 2147483647",
    ),
    (
        "usage",
        {
            "batch_id": "b-nul",
            "events": [{"user_id": "u\x00", "occurred_at": TS, "event_type": "login"}],
        },
        "user_id: Value error",
    ),
    (
        "invoice",
        {"invoice_id": "I-big", "issued_on": "2026-10-01", "due_on": "2026-10-31", "amount": 1e15},
        "amount: Input should be less than or equal to",
    ),
    (
        "stakeholder",
        {"stakeholder_id": "S-crlf", "name": "Ann\r\nBcc: attacker@evil.example"},
        "name: Value error, contains a line break",
    ),
]


async def test_input_postgres_would_refuse_is_rejected_and_later_signals_still_land(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    client = dev_env.client
    settings = settings_for_test(tmp_path)
    h = make_handoff(_acct("refuse"), NOW.date())
    async with running_worker(client, db_dsn, settings) as pool:
        handle = client.get_workflow_handle(await start_account(client, h, settings))
        await wait_for(lambda: snapshots(pool, h.account_id), what="the first scan")
        for name, payload, _ in POSTGRES_WOULD_REFUSE:
            await handle.signal(name, payload)
        rejected = await _rejected(handle, len(POSTGRES_WOULD_REFUSE))
        for (name, _, reason), text in zip(POSTGRES_WOULD_REFUSE, rejected, strict=True):
            assert text.startswith(f"signal {name!r} rejected: ") and reason in text, text
        # An urgent escalated ticket sent after all of that is written and scanned at once.
        before = await snapshots(pool, h.account_id)
        await handle.signal(
            "ticket",
            {"ticket_id": "T-urgent", "opened_at": TS, "priority": "urgent", "escalated": True},
        )
        await _row(
            pool,
            "SELECT 1 FROM support_tickets WHERE account_id = $1 AND ticket_id = 'T-urgent'",
            h.account_id,
        )
        await wait_for(
            lambda: _more(pool, h.account_id, before), what="a scan after the urgent ticket"
        )
        await assert_alive(handle)
        assert (await view(handle)).signals_rejected == len(POSTGRES_WOULD_REFUSE)
        await handle.terminate("test done")


async def _more(pool: Any, account_id: str, n: int) -> bool:
    return await snapshots(pool, account_id) > n


async def test_a_row_postgres_refuses_anyway_is_rejected_once_not_retried(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    """Whatever the models miss: Postgres' own refusal of one item is permanent for that item."""
    client = dev_env.client
    settings = settings_for_test(tmp_path)
    h = make_handoff(_acct("pgrefuse"), NOW.date())
    async with running_worker(client, db_dsn, settings) as pool:
        await pool.execute(
            """CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN
                 IF NEW.ticket_id = 'T-refused' THEN
                   RAISE EXCEPTION 'value out of range for this column'
                     USING ERRCODE = 'numeric_value_out_of_range';
                 END IF; RETURN NEW; END $$ LANGUAGE plpgsql;
               CREATE TRIGGER refuse BEFORE INSERT ON support_tickets
                 FOR EACH ROW EXECUTE FUNCTION refuse();"""
        )
        handle = client.get_workflow_handle(await start_account(client, h, settings))
        await handle.signal("ticket", {"ticket_id": "T-refused", "opened_at": TS})
        await handle.signal("ticket", {"ticket_id": "T-ok", "opened_at": TS})
        (text,) = await _rejected(handle, 1)
        assert "ticket:T-refused refused by Postgres" in text
        assert "value out of range for this column" in text
        await _row(
            pool,
            "SELECT 1 FROM support_tickets WHERE account_id = $1 AND ticket_id = 'T-ok'",
            h.account_id,
        )
        assert set(activity_attempts(await events(handle), "record_telemetry")) == {1}
        await assert_alive(handle)
        await handle.terminate("test done")


async def test_names_a_search_attribute_or_header_cannot_carry_are_refused_by_the_update(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    """A 10 KB CSM name used to exceed the 2 KB search-attribute limit: the server
    terminated the workflow. A CR/LF name broke every draft's MIME headers."""
    client = dev_env.client
    settings = settings_for_test(tmp_path)
    h = make_handoff(_acct("reassign"), NOW.date())
    async with running_worker(client, db_dsn, settings):
        handle = client.get_workflow_handle(await start_account(client, h, settings))
        for name in ("L" * 10_000, "Lee\r\nBcc: attacker@evil.example", "Lee\x00"):
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await handle.execute_update(
                    "reassign_csm",
                    {"csm_owner": name, "csm_email": "lee@example.com", "by": "ops"},
                )
            assert "csm_owner" in _failure_chain(err.value), _failure_chain(err.value)
        ok = await handle.execute_update(
            "reassign_csm",
            ReassignUpdate(csm_owner="Lee Chen", csm_email="lee@example.com", by="ops"),
        )
        assert ok["message"] == "CSM is now Lee Chen"
        await assert_alive(handle)
        assert (await view(handle)).csm_owner == "Lee Chen"
        await handle.terminate("test done")


def _batch(batch_id: str, n: int = 5000) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "events": [
            {
                "user_id": f"user-{uuid.uuid4()}",
                "occurred_at": (NOW - timedelta(minutes=i % 600)).isoformat(),
                "event_type": "reports.export_scheduled",
                "quantity": 1,
            }
            for i in range(n)
        ],
    }


async def test_batches_that_pile_up_while_the_worker_is_down_are_flushed_in_chunks(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    """Three ordinary 5,000-event batches, each under the signal limit, together over
    Temporal's 2 MB payload limit; a signal whose id alone is 1.2 MB is refused."""
    client = dev_env.client
    settings = settings_for_test(tmp_path)
    h = make_handoff(_acct("pileup"), NOW.date())
    batches = [_batch(f"b{i}") for i in range(3)]
    assert sum(len(json.dumps(b)) for b in batches) > TEMPORAL_PAYLOAD_BYTES
    async with running_worker(client, db_dsn, settings) as pool:
        handle = client.get_workflow_handle(await start_account(client, h, settings))
        await wait_for(lambda: snapshots(pool, h.account_id), what="the first scan")
    # The worker is down: the batches wait in the workflow's history.
    await asyncio.gather(*(handle.signal("usage", b) for b in batches))
    await handle.signal("usage", {**_batch("x", 1), "batch_id": "B" * 1_200_000})
    async with running_worker(client, db_dsn, settings) as pool:

        async def landed() -> bool:
            n = await pool.fetchval(
                "SELECT count(*) FROM usage_events WHERE account_id = $1", h.account_id
            )
            return n == 15_000

        await wait_for(landed, timeout=120, what="15,000 usage events in Postgres")
        (text,) = await _rejected(handle, 1)
        assert "over the 1,000,000-byte limit of one signal" in text

        async def chunks() -> list[int]:
            return [
                a
                for history in await every_run(client, handle.id)
                for a in activity_attempts(history, "record_telemetry")
            ]

        # Written in two or more activities, none bigger than the payload limit allows.
        assert len(await wait_for(chunks, what="the flushes completed")) >= 2
        await assert_alive(handle)
        await handle.terminate("test done")


async def test_the_same_record_id_in_two_accounts_is_two_records(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    """One customer's INV-1001 paid must not mark another customer's INV-1001 paid; one
    account's stakeholder S-1 must not overwrite another's champion."""
    client = dev_env.client
    settings = settings_for_test(tmp_path)
    a = make_handoff(_acct("ids-a"), NOW.date())
    b = make_handoff(_acct("ids-b"), NOW.date())
    paid = date.today() - timedelta(days=5)
    per_account = {
        a.account_id: {
            "invoice": {
                "invoice_id": "INV-1001",
                "issued_on": "2026-08-01",
                "due_on": "2026-08-31",
                "amount": 100,
                "paid_on": paid.isoformat(),
            },
            "stakeholder": {"stakeholder_id": "S-1", "name": "Ann Lee", "is_champion": True},
            "ticket": {"ticket_id": "T-1", "opened_at": TS, "subject": "from a"},
            "nps": {"response_id": "R-1", "responded_at": TS, "score": 10},
            "interaction": {"interaction_id": "X-1", "occurred_at": TS, "notes": "from a"},
        },
        b.account_id: {
            "invoice": {
                "invoice_id": "INV-1001",
                "issued_on": "2026-08-01",
                "due_on": "2026-08-31",
                "amount": 200,
            },
            "stakeholder": {"stakeholder_id": "S-1", "name": "Bob Ray", "is_champion": False},
            "ticket": {"ticket_id": "T-1", "opened_at": TS, "subject": "from b"},
            "nps": {"response_id": "R-1", "responded_at": TS, "score": 0},
            "interaction": {"interaction_id": "X-1", "occurred_at": TS, "notes": "from b"},
        },
    }
    async with running_worker(client, db_dsn, settings) as pool:
        handles = {
            h.account_id: client.get_workflow_handle(await start_account(client, h, settings))
            for h in (a, b)
        }
        for account, signals in per_account.items():
            for name, payload in signals.items():
                await handles[account].signal(name, payload)

        async def all_written() -> bool:
            counts = [
                await pool.fetchval(f"SELECT count(*) FROM {t}")
                for t in (
                    "invoices",
                    "stakeholders",
                    "support_tickets",
                    "nps_responses",
                    "interactions",
                )
            ]
            return counts == [2, 2, 2, 2, 2]

        await wait_for(all_written, timeout=60, what="each account's five records")
        inv = {
            r["account_id"]: (float(r["amount"]), r["paid_on"])
            for r in await pool.fetch("SELECT account_id, amount, paid_on FROM invoices")
        }
        assert inv == {a.account_id: (100.0, paid), b.account_id: (200.0, None)}
        champions = {
            r["account_id"]: (r["name"], r["is_champion"])
            for r in await pool.fetch("SELECT account_id, name, is_champion FROM stakeholders")
        }
        assert champions == {a.account_id: ("Ann Lee", True), b.account_id: ("Bob Ray", False)}
        scores = dict(await pool.fetch("SELECT account_id, score FROM nps_responses"))
        assert scores == {a.account_id: 10, b.account_id: 0}
        for account in (a.account_id, b.account_id):
            assert (await view(handles[account])).signals_rejected == 0
            await assert_alive(handles[account])
            await handles[account].terminate("test done")
