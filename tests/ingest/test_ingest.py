"""Bulk usage ingestion (issue 16): a Segment-format batch over HTTP and a CSV file land
in Postgres once, refused items are named, unknown accounts are held, and each affected
account workflow gets one small `usage_arrived` signal."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

import starter
from domain.messages import UsageArrivedSignal
from ingest.http import Ingestor, build_server
from ingest.notify import Coalescer
from stack.settings import load_settings

pytestmark = pytest.mark.devserver
KEY = "wk_test"


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _track(account: str | None, mid: str, user: str = "u1", **extra: object) -> dict:
    call: dict = {
        "type": "track",
        "userId": user,
        "event": "reports.export",
        "properties": {"quantity": 3},
        "timestamp": "2026-11-20T10:00:00Z",
        "messageId": mid,
        **extra,
    }
    if account is not None:
        call["context"] = {"groupId": account}
    return call


async def _accounts(conn: asyncpg.Connection, *ids: str) -> None:
    await conn.executemany(
        "INSERT INTO accounts (account_id, name) VALUES ($1, $1)", [(i,) for i in ids]
    )


async def _idle_workflow(client: Client, account: str) -> WorkflowHandle:
    """An account workflow id with no worker: its history records every signal sent to it."""
    return await client.start_workflow(
        "AccountLifecycleWorkflow",
        id=f"account-{account}",
        task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
    )


async def _arrived(handle: WorkflowHandle) -> list[UsageArrivedSignal]:
    out = []
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            a = e.workflow_execution_signaled_event_attributes
            if a.signal_name == "usage_arrived":
                raw = json.loads(a.input.payloads[0].data)
                out.append(UsageArrivedSignal.model_validate(raw))
    return out


@pytest_asyncio.fixture
async def endpoint(
    db_dsn: str, dev_client: Client
) -> AsyncIterator[tuple[str, Coalescer, asyncpg.Pool]]:
    pool = await asyncpg.create_pool(db_dsn, min_size=1, max_size=2)
    coalescer = Coalescer(dev_client, interval=3600)
    server = build_server(
        Ingestor(pool, coalescer),
        asyncio.get_running_loop(),
        host="127.0.0.1",
        port=0,
        write_keys=[KEY],
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", coalescer, pool
    finally:
        server.shutdown()
        await pool.close()


async def test_a_segment_batch_lands_once_and_each_account_gets_one_signal(
    endpoint: tuple[str, Coalescer, asyncpg.Pool], db: asyncpg.Connection, dev_client: Client
) -> None:
    url, coalescer, _ = endpoint
    a, b = f"acme-{uuid.uuid4().hex[:6]}", f"beta-{uuid.uuid4().hex[:6]}"
    await _accounts(db, a, b)
    ha, hb = await _idle_workflow(dev_client, a), await _idle_workflow(dev_client, b)
    batch = {
        "batch": [
            _track(a, "m-1"),
            _track(a, "m-2", user="u2", timestamp="2026-11-21T08:30:00Z"),
            _track(b, "m-1"),  # the same messageId in another account is another message
            {"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}},
            {"type": "group", "userId": "u1", "groupId": a, "traits": {"name": "Acme"}},
            _track(a, "m-bad", event=None),  # no event name
            _track(None, "m-orphan", user="u-nobody"),  # no account, and no group call
            _track("ghost", "m-ghost"),  # an account nobody knows
        ]
    }
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        first = await http.post("/v1/batch", json=batch, headers=_auth(KEY))
        again = await http.post("/v1/batch", json=batch, headers=_auth(KEY))
        single = await http.post("/v1/track", json=_track(a, "m-2", user="u2"), headers=_auth(KEY))

    assert first.status_code == 400
    body = first.json()
    assert body["accepted"] == 6
    assert {(e["index"], e["field"]) for e in body["errors"]} == {
        (5, "event"),
        (6, "context.groupId"),
    }
    assert again.status_code == 400 and again.json()["accepted"] == 6
    assert single.status_code == 200 and single.json() == {"success": True}

    rows = await db.fetch(
        "SELECT account_id, message_id, user_id, event_type, quantity FROM usage_events "
        "ORDER BY account_id, message_id"
    )
    assert [(r["account_id"], r["message_id"], r["user_id"]) for r in rows] == [
        (a, "m-1", "u1"),
        (a, "m-2", "u2"),
        (b, "m-1", "u1"),
    ]
    assert {(r["event_type"], float(r["quantity"])) for r in rows} == {("reports.export", 3.0)}
    held = await db.fetch("SELECT account_id, message_id FROM usage_quarantine")
    assert [(r["account_id"], r["message_id"]) for r in held] == [("ghost", "m-ghost")]

    # Three posts, one coalesced signal per affected account with what was written.
    sent = await coalescer.flush(force=True)
    assert (sent.signalled, sent.not_running) == (2, 0)  # held rows signal nobody
    [sig_a], [sig_b] = await _arrived(ha), await _arrived(hb)
    assert (sig_a.events, sig_a.up_to.isoformat()) == (2, "2026-11-21T08:30:00+00:00")
    assert sig_b.events == 1


async def test_the_endpoint_refuses_bad_keys_and_oversized_bodies(
    endpoint: tuple[str, Coalescer, asyncpg.Pool], db: asyncpg.Connection
) -> None:
    url, _, _ = endpoint
    await _accounts(db, "acme")
    big = {"batch": [_track("acme", f"m-{i}", note="x" * 1000) for i in range(600)]}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        wrong = await http.post("/v1/track", json=_track("acme", "m"), headers=_auth("nope"))
        none = await http.post("/v1/track", json=_track("acme", "m"))
        too_big = await http.post("/v1/batch", json=big, headers=_auth(KEY))
        bad_json = await http.post("/v1/batch", content=b"{nope", headers=_auth(KEY))
        in_body = await http.post("/v1/track", json={**_track("acme", "m-k"), "writeKey": KEY})
    assert (wrong.status_code, none.status_code) == (401, 401)
    assert too_big.status_code == 400 and "limit" in too_big.json()["message"]
    assert bad_json.status_code == 400
    assert in_body.status_code == 200
    assert await db.fetchval("SELECT count(*) FROM usage_events") == 1


async def test_a_csv_file_is_loaded_once_with_refused_rows_named(
    tmp_path: Path,
    db_dsn: str,
    db: asyncpg.Connection,
    dev_client: Client,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a = f"acme-{uuid.uuid4().hex[:6]}"
    await _accounts(db, a)
    handle = await _idle_workflow(dev_client, a)
    path = tmp_path / "usage.csv"
    path.write_text(
        "account_id,user_id,occurred_at,event_type,quantity\n"
        f"{a},u1,2026-11-20T10:00:00Z,login,\n"
        f"{a},u2,2026-11-20T11:00:00+01:00,reports.export,2\n"
        f"{a},u2,2026-11-20T11:00:00+01:00,reports.export,2\n"  # the same row twice
        f"{a},u3,2026-11-20T12:00:00Z,login,-1\n"  # line 5: negative quantity
        f"{a},u4,yesterday,login,1\n"  # line 6: not a time
        "ghost,u1,2026-11-20T10:00:00Z,login,1\n"
    )
    settings = load_settings({"DATABASE_URL": db_dsn, "VIM_DATA_DIR": str(tmp_path)})
    code = await starter.main(["ingest", "usage", str(path)], client=dev_client, settings=settings)
    out, err = capsys.readouterr()
    assert code == 2
    assert "2 written, 1 duplicate(s) skipped, 1 held for unknown account(s), 2 refused" in out
    assert "unknown account 'ghost'" in out
    assert "line 5: quantity:" in err and "line 6: occurred_at:" in err
    assert await db.fetchval("SELECT count(*) FROM usage_events WHERE account_id = $1", a) == 2

    # Loading the same file again adds nothing and signals nobody.
    code = await starter.main(
        ["ingest", "usage", str(path), "-q"], client=dev_client, settings=settings
    )
    assert code == 2
    assert "0 written, 4 duplicate(s) skipped, 0 held" in capsys.readouterr().out
    assert await db.fetchval("SELECT count(*) FROM usage_events WHERE account_id = $1", a) == 2
    assert [s.events for s in await _arrived(handle)] == [2]


async def test_a_file_without_the_required_columns_exits_2(
    tmp_path: Path, db_dsn: str, dev_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("account,user\nx,y\n")
    settings = load_settings({"DATABASE_URL": db_dsn, "VIM_DATA_DIR": str(tmp_path)})
    code = await starter.main(["ingest", "usage", str(path)], client=dev_client, settings=settings)
    assert code == 2
    assert "lacks column(s) account_id, user_id, occurred_at, event_type" in capsys.readouterr().err


async def test_rows_from_stdin_are_loaded(
    tmp_path: Path,
    db_dsn: str,
    db: asyncpg.Connection,
    dev_client: Client,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a = f"acme-{uuid.uuid4().hex[:6]}"
    await _accounts(db, a)
    monkeypatch.setattr(
        "sys.stdin",
        io.StringIO(
            "occurred_at,account_id,user_id,event_type,message_id\n"
            f"2026-11-20T10:00:00Z,{a},u1,login,e-1\n"
            f"2026-11-20T10:05:00Z,{a},u1,login,e-1\n"  # the same message id: written once
        ),
    )
    settings = load_settings({"DATABASE_URL": db_dsn, "VIM_DATA_DIR": str(tmp_path)})
    code = await starter.main(["ingest", "usage", "-"], client=dev_client, settings=settings)
    assert code == 0
    assert "1 written, 1 duplicate(s) skipped" in capsys.readouterr().out
    row = await db.fetchrow(
        "SELECT message_id, occurred_at FROM usage_events WHERE account_id = $1", a
    )
    assert (
        row["message_id"] == "e-1" and row["occurred_at"].isoformat() == "2026-11-20T10:00:00+00:00"
    )


async def test_a_parquet_file_is_loaded_with_refused_rows_named_and_matches_its_csv(
    tmp_path: Path,
    db_dsn: str,
    db: asyncpg.Connection,
    dev_client: Client,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Parquet rows take the CSV path's rules: the same derived message ids, so loading the
    same events from a CSV afterwards adds nothing; a bad row is named by its row number."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    a = f"acme-{uuid.uuid4().hex[:6]}"
    await _accounts(db, a)
    handle = await _idle_workflow(dev_client, a)
    utc = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    table = pa.table(
        {
            "account_id": [a, a, a, a, "ghost"],
            "user_id": ["u1", "u2", "u3", "u4", "u1"],
            "occurred_at": pa.array(
                [utc, utc + timedelta(hours=1), utc, utc, utc], type=pa.timestamp("us", tz="UTC")
            ),
            "event_type": ["login", "reports.export", "login", "login", "login"],
            "quantity": [1.0, 2.0, -1.0, 1.0, 1.0],  # row 3: negative
        }
    )
    path = tmp_path / "usage.parquet"
    pq.write_table(table, path)
    naive = tmp_path / "naive.pq"  # a timestamp without a time zone is refused, not guessed
    pq.write_table(
        pa.table(
            {
                "account_id": [a],
                "user_id": ["u9"],
                "occurred_at": pa.array([datetime(2026, 11, 20, 9)], type=pa.timestamp("us")),
                "event_type": ["login"],
            }
        ),
        naive,
    )
    settings = load_settings({"DATABASE_URL": db_dsn, "VIM_DATA_DIR": str(tmp_path)})

    code = await starter.main(["ingest", "usage", str(path)], client=dev_client, settings=settings)
    out, err = capsys.readouterr()
    assert code == 2
    assert "3 written, 0 duplicate(s) skipped, 1 held for unknown account(s), 1 refused" in out
    assert "line 3: quantity:" in err
    assert await db.fetchval("SELECT count(*) FROM usage_events WHERE account_id = $1", a) == 3
    assert [s.events for s in await _arrived(handle)] == [3]

    csv_path = tmp_path / "same.csv"
    csv_path.write_text(
        "account_id,user_id,occurred_at,event_type,quantity\n"
        f"{a},u1,2026-11-20T10:00:00Z,login,1\n"
        f"{a},u2,2026-11-20T11:00:00+00:00,reports.export,2\n"
    )
    code = await starter.main(
        ["ingest", "usage", str(csv_path), "-q"], client=dev_client, settings=settings
    )
    assert code == 0 and "0 written, 2 duplicate(s) skipped" in capsys.readouterr().out

    code = await starter.main(["ingest", "usage", str(naive)], client=dev_client, settings=settings)
    assert code == 2 and "line 1: occurred_at:" in capsys.readouterr().err
    assert await db.fetchval("SELECT count(*) FROM usage_events WHERE account_id = $1", a) == 3


async def test_a_file_that_is_not_parquet_exits_2(
    tmp_path: Path, db_dsn: str, dev_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "usage.parquet"
    path.write_text("account_id,user_id\n")
    settings = load_settings({"DATABASE_URL": db_dsn, "VIM_DATA_DIR": str(tmp_path)})
    code = await starter.main(["ingest", "usage", str(path)], client=dev_client, settings=settings)
    assert code == 2 and "not a readable Parquet file" in capsys.readouterr().err


async def test_held_rows_are_listed_released_once_the_account_exists_and_dropped_on_request(
    tmp_path: Path,
    db_dsn: str,
    db: asyncpg.Connection,
    dev_client: Client,
    capsys: pytest.CaptureFixture[str],
) -> None:
    late, junk = f"late-{uuid.uuid4().hex[:6]}", f"junk-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "early.csv"
    path.write_text(
        "account_id,user_id,occurred_at,event_type,message_id\n"
        f"{late},u1,2026-11-20T10:00:00Z,login,m-1\n"
        f"{late},u2,2026-11-21T10:00:00Z,login,m-2\n"
        f"{junk},u1,2026-11-20T10:00:00Z,login,m-1\n"
    )
    settings = load_settings({"DATABASE_URL": db_dsn, "VIM_DATA_DIR": str(tmp_path)})

    async def cli(*argv: str) -> tuple[int, str, str]:
        code = await starter.main(list(argv), client=dev_client, settings=settings)
        out, err = capsys.readouterr()
        return code, out, err

    assert (await cli("ingest", "usage", str(path), "-q"))[0] == 0
    code, out, _ = await cli("ingest", "quarantine")
    lines = {ln.split()[0]: ln for ln in out.splitlines()[1:] if ln.strip()}
    assert code == 0 and lines[late].split()[1:3] == ["2", "2026-11-20"]
    assert "no" in lines[late].split() and "file" in lines[late]

    # The account arrives (a late handoff); its held rows move, once, and its workflow hears.
    await _accounts(db, late)
    handle = await _idle_workflow(dev_client, late)
    code, out, _ = await cli("ingest", "quarantine", "--release")
    assert code == 0 and "2 held row(s) released: 2 written" in out
    assert await db.fetchval("SELECT count(*) FROM usage_events WHERE account_id = $1", late) == 2
    assert [s.events for s in await _arrived(handle)] == [2]
    code, out, _ = await cli("ingest", "quarantine", "--release")
    assert "0 held row(s) released" in out

    # Naming an account that does not exist releases nothing and says so.
    code, _, err = await cli("ingest", "quarantine", "--release", junk)
    assert code == 2 and f"{junk}: not released" in err
    code, out, _ = await cli("ingest", "quarantine", "--drop", junk)
    assert code == 0 and f"{junk}: 1 held row(s) dropped" in out
    assert (await cli("ingest", "quarantine"))[1].strip() == "usage_quarantine is empty"


async def test_a_group_call_names_the_account_of_its_users_later_track_calls(
    endpoint: tuple[str, Coalescer, asyncpg.Pool], db: asyncpg.Connection
) -> None:
    """Most Segment sources send `context.groupId` only on group calls: a track call of a
    grouped user lands in the user's latest group; a newer group call moves the user, an
    older one (sent late) does not."""
    url, _, _ = endpoint
    a, b = f"acme-{uuid.uuid4().hex[:6]}", f"beta-{uuid.uuid4().hex[:6]}"
    await _accounts(db, a, b)

    def group(account: str, at: str) -> dict:
        return {"type": "group", "userId": "u7", "groupId": account, "timestamp": at}

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        same_batch = await http.post(
            "/v1/batch",
            json={
                "batch": [
                    group(a, "2026-11-01T00:00:00Z"),
                    _track(None, "t-1", user="u7"),
                    _track(None, "t-2", user="u-never-grouped"),
                    {"type": "group", "userId": "u8"},  # no groupId
                ]
            },
            headers=_auth(KEY),
        )
        later = await http.post(
            "/v1/track", json=_track(None, "t-3", user="u7"), headers=_auth(KEY)
        )
        moved = await http.post(
            "/v1/group", json=group(b, "2026-11-10T00:00:00Z"), headers=_auth(KEY)
        )
        stale = await http.post(
            "/v1/group", json=group(a, "2026-11-05T00:00:00Z"), headers=_auth(KEY)
        )
        after = await http.post(
            "/v1/track", json=_track(None, "t-4", user="u7"), headers=_auth(KEY)
        )

    assert same_batch.status_code == 400
    assert {(e["index"], e["field"]) for e in same_batch.json()["errors"]} == {
        (2, "context.groupId"),
        (3, "groupId"),
    }
    assert [r.status_code for r in (later, moved, stale, after)] == [200, 200, 200, 200]
    rows = await db.fetch("SELECT account_id, message_id FROM usage_events ORDER BY message_id")
    assert [(r["account_id"], r["message_id"]) for r in rows] == [
        (a, "t-1"),
        (a, "t-3"),
        (b, "t-4"),  # moved by the newer group call; the stale one did not move it back
    ]
