"""A generated burst of hostile input across 20 accounts, through the real worker,
Postgres and the Temporal dev server.

Hypothesis generates signals, updates, handoffs and Sheets import rows from
valid documents with fields replaced by hostile values: NUL bytes, 10 KB
strings, CR/LF, link and mention markup, integers and numbers past the
columns' ranges, NaN and infinities, off-calendar serial dates, and record
ids that collide across accounts. Every record a valid input writes is
tagged with its account, so a write into another account is visible.

At the end: no workflow failed, was terminated or is stuck (every account
still answers, has handled every signal, writes a last valid ticket and
scans after it, and no activity is being retried), no record landed in
another account, and every refusal is visible with its reason (a rejected
signal in the account's timeline, an update failed with the validator's or
decoder's reason, a handoff refused with exit code 2, an import row reported
by tab and row).

`VIM_HOSTILE_SCALE` multiplies the number of inputs (default 1: 1,000+).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

import starter
from activities.sheets_import import import_rows
from cli.accounts import start_account
from domain.handoff import Handoff
from domain.limits import SIGNAL_PAYLOAD_BYTES
from domain.messages import SIGNALS, UPDATES
from domain.state import TIMELINE_LIMIT
from tests.drills.support import wait_for
from tests.drills.test_malformed_burst import _failure_chain, _over_the_wire, examples
from tests.hostile.support import assert_alive, snapshots
from tests.workflows.helpers import make_handoff, running_worker, settings_for_test, view

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

SCALE = float(os.environ.get("VIM_HOSTILE_SCALE", "1"))
N_ACCOUNTS = 20
SIGNALS_PER_ACCOUNT = max(1, round(36 * SCALE))
UPDATES_PER_ACCOUNT = max(1, round(6 * SCALE))
N_HANDOFFS = max(1, round(60 * SCALE))
N_IMPORT_ROWS = max(1, round(120 * SCALE))
COLLIDING_IDS = ["C-1", "C-2", "C-3"]  # the same ids in every account
NOW = datetime.now(UTC).replace(microsecond=0)
TS = (NOW - timedelta(hours=2)).isoformat()

# ------------------------------------------------------------------ hostile values

hostile_str = st.one_of(
    st.text(max_size=16),
    st.sampled_from(
        [
            "",
            "\x00",
            "body \x00 with a NUL",
            "Ann\r\nBcc: attacker@evil.example",
            "line\nbreak",
            "@here <!channel> see evil.example/x",
            "[click](javascript:alert(1)) //evil.example/x",
            "\u202eevil\u202c",
            "💥" * 600,
            "x" * 10_000,
            "   ",
        ]
    ),
)
hostile_num = st.one_of(
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([3e9, 1e15, 2**31, -1, 0, 1e308]),
)
hostile_value = st.one_of(hostile_str, hostile_num, st.none(), st.booleans())


def tag(account: str) -> str:
    return f"[acct:{account}]"


def amount_tag(index: int) -> float:
    return 7_000_000 + index * 10 + 0.25


def valid_signal(name: str, account: str, index: int, rid: str) -> tuple[dict[str, Any], str]:
    """A valid document for `name`, its record tagged with the account; and the tag's key."""
    t = tag(account)
    docs: dict[str, tuple[dict[str, Any], str]] = {
        "ticket": ({"ticket_id": rid, "opened_at": TS, "priority": "high", "body": t}, "body"),
        "nps": ({"response_id": rid, "responded_at": TS, "score": 6, "comment": t}, "comment"),
        "invoice": (
            {
                "invoice_id": rid,
                "issued_on": "2026-09-01",
                "due_on": "2026-09-30",
                "amount": amount_tag(index),
            },
            "amount",
        ),
        "interaction": (
            {"interaction_id": rid, "occurred_at": TS, "kind": "call", "notes": t},
            "notes",
        ),
        "stakeholder": ({"stakeholder_id": rid, "name": "Ann Lee", "title": t}, "title"),
        "tam": ({"measured_at": TS, "score": 60, "rag": "AMBER", "note": t}, "note"),
        "usage": (
            {
                "batch_id": rid,
                "events": [{"user_id": f"{account}-u1", "occurred_at": TS, "event_type": "login"}],
            },
            "batch_id",
        ),
    }
    return docs[name]


@st.composite
def hostile_signal(draw: st.DrawFn, account: str, index: int) -> tuple[str, dict[str, Any]]:
    name = draw(
        st.sampled_from(["ticket", "nps", "invoice", "interaction", "stakeholder", "tam", "usage"])
    )
    rid = draw(st.sampled_from(COLLIDING_IDS)) + f"-{draw(st.integers(0, 9))}"
    doc, tag_key = valid_signal(name, account, index, rid)
    for key in draw(
        st.lists(st.sampled_from(sorted(set(doc) - {tag_key})), max_size=2, unique=True)
    ):
        doc[key] = draw(hostile_value)
    events = doc.get("events")
    if name == "usage" and isinstance(events, list) and events and draw(st.booleans()):
        event = dict(doc["events"][0])
        event[draw(st.sampled_from(["user_id", "event_type", "quantity"]))] = draw(hostile_value)
        doc["events"] = [event]
    return name, doc


@st.composite
def hostile_update(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(["reassign_csm", "mark_milestone", "set_paused"]))
    doc: dict[str, Any] = {
        "reassign_csm": {"csm_owner": "Lee Chen", "csm_email": "lee@example.com", "by": "ops"},
        "mark_milestone": {"milestone": "kickoff_held", "marked_by": "ops"},
        "set_paused": {"paused": True, "by": "ops", "reason": "freeze"},
    }[name]
    for key in draw(st.lists(st.sampled_from(sorted(doc)), min_size=1, max_size=2, unique=True)):
        doc[key] = draw(hostile_str | hostile_value)
    return name, doc


@st.composite
def hostile_handoff(draw: st.DrawFn, valid: dict[str, Any]) -> str:
    doc = json.loads(json.dumps(valid))
    for key in draw(
        st.lists(
            st.sampled_from(["name", "csm_owner", "rep_owner", "industry", "notes", "goals"]),
            min_size=1,
            max_size=2,
            unique=True,
        )
    ):
        doc[key] = draw(hostile_value)
    if draw(st.booleans()):
        doc["contract"][draw(st.sampled_from(["arr", "seats_purchased", "price_per_seat"]))] = draw(
            hostile_num
        )
    return json.dumps(doc)


@st.composite
def hostile_ticket_row(draw: st.DrawFn, accounts: list[str]) -> list[Any]:
    account = draw(st.sampled_from(accounts))
    row: list[Any] = [
        draw(st.sampled_from(COLLIDING_IDS)) + f"-s{draw(st.integers(0, 99))}",
        account,
        "2026-10-05 08:00:00",
        "high",
        tag(account),
    ]
    for i in draw(st.lists(st.sampled_from([0, 2, 3]), max_size=2, unique=True)):
        row[i] = draw(hostile_value | st.sampled_from([1e12, -1e12, 45000.5]))
    return row


def refused(model: type[BaseModel], value: Any) -> bool:
    try:
        model.model_validate(_over_the_wire(value))
    except (ValidationError, ValueError):
        return True
    return False


def too_big(value: Any) -> bool:
    return len(json.dumps(value).encode()) > SIGNAL_PAYLOAD_BYTES


# ------------------------------------------------------------------------- drill


async def test_a_hostile_burst_across_twenty_accounts_stops_nothing_and_crosses_no_account(
    dev_env: WorkflowEnvironment,
    db_dsn: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = dev_env.client
    settings = settings_for_test(tmp_path)
    today = NOW.date()
    run = uuid.uuid4().hex[:6]
    accounts = [f"burst-{run}-{i:02d}" for i in range(N_ACCOUNTS)]
    counts: Counter[str] = Counter()
    # Generated before the worker starts: hypothesis would hold the worker's event loop.
    plans = {a: examples(hostile_signal(a, i), SIGNALS_PER_ACCOUNT) for i, a in enumerate(accounts)}
    updates = {a: examples(hostile_update(), UPDATES_PER_ACCOUNT) for a in accounts}
    valid = make_handoff(f"burst-{run}-h", today).model_dump(mode="json")
    handoffs = examples(hostile_handoff(valid), N_HANDOFFS)
    rows = examples(hostile_ticket_row(accounts), N_IMPORT_ROWS)
    async with running_worker(client, db_dsn, settings) as pool:
        handles: dict[str, WorkflowHandle] = {}
        for a in accounts:
            h = make_handoff(a, today)
            handles[a] = client.get_workflow_handle(await start_account(client, h, settings))

        # --- signals
        expected_rejections = {
            a: sum(1 for n, d in plan if refused(SIGNALS[n], d) or too_big(d))
            for a, plan in plans.items()
        }

        async def send(a: str) -> None:
            for name, doc in plans[a]:
                await handles[a].signal(name, doc)

        await asyncio.gather(*(send(a) for a in accounts))
        counts["signals"] = sum(len(p) for p in plans.values())
        counts["signals refused"] = sum(expected_rejections.values())

        # --- updates: each accepted, or refused with the validator's or decoder's reason
        async def update(a: str) -> tuple[int, int]:
            ok = no = 0
            for name, doc in updates[a]:
                try:
                    await handles[a].execute_update(name, doc)
                    ok += 1
                    assert not refused(UPDATES[name], doc), (name, doc)
                except WorkflowUpdateFailedError as err:
                    no += 1
                    assert _failure_chain(err).strip(), (name, doc)
            return ok, no

        for ok, no in await asyncio.gather(*(update(a) for a in accounts)):
            counts["updates"] += ok + no
            counts["updates refused"] += no

        # --- handoffs through the command line: exit 2 naming the problem, or started
        started: list[str] = []
        for i, text in enumerate(handoffs):
            doc = json.loads(text)
            doc["account_id"] = f"burst-{run}-h{i:03d}"
            path = tmp_path / f"handoff-{i}.json"
            path.write_text(json.dumps(doc))
            capsys.readouterr()
            code = await starter.main(["handoff", str(path)], client=client, settings=settings)
            err = capsys.readouterr().err
            if refused(Handoff, doc):
                assert code == 2 and "is invalid" in err, (doc, err)
                counts["handoffs refused"] += 1
            else:
                assert code == 0, (doc, err)
                started.append(doc["account_id"])
            counts["handoffs"] += 1

        # --- Sheets import rows: reported by tab and row, the rest lands
        tabs = {
            "support_tickets": [["ticket_id", "account_id", "opened_at", "priority", "body"], *rows]
        }
        async with pool.acquire() as conn:
            report = await import_rows(conn, "burst", tabs)
        (tr,) = report.tabs
        assert tr.rows_read == len(rows)
        assert tr.inserted + tr.already_present + tr.invalid == tr.rows_read
        assert len({p.row for p in tr.problems}) == tr.invalid and all(
            p.problem for p in tr.problems
        )
        counts["import rows"] = len(rows)
        counts["import rows refused"] = tr.invalid

        # --- an operator resumes what a (valid) hostile update paused; then one valid
        # urgent ticket per account: processed, and scanned after
        for a in accounts:
            if (await view(handles[a])).paused:
                await handles[a].execute_update("set_paused", {"paused": False, "by": "ops"})
        before = {a: await snapshots(pool, a) for a in accounts}
        for a in accounts:
            await handles[a].signal(
                "ticket",
                {"ticket_id": "SENTINEL", "opened_at": TS, "priority": "urgent", "body": tag(a)},
            )

        state: dict[str, tuple[int, int, int]] = {}

        async def settled(a: str) -> bool:
            v = await view(handles[a])
            landed = await pool.fetchval(
                "SELECT count(*) FROM support_tickets WHERE account_id = $1 AND ticket_id = 'SENTINEL'",
                a,
            )
            state[a] = (v.signals_received, landed, await snapshots(pool, a))
            return state[a] == (len(plans[a]) + 1, 1, state[a][2]) and state[a][2] > before[a]

        for a in accounts:
            try:
                await wait_for(lambda a=a: settled(a), timeout=300, what=f"{a} settled")
            except AssertionError as err:
                raise AssertionError(
                    f"{err}: (signals received, sentinel rows, snapshots) = {state.get(a)}, "
                    f"expected ({len(plans[a]) + 1}, 1, >{before[a]}); "
                    f"timeline tail {(await view(handles[a])).timeline[-5:]}"
                ) from None

        # --- nothing failed, terminated or stuck; every refusal visible with its reason
        pg_refusals = 0
        for a in [*accounts, *started]:
            handle = client.get_workflow_handle(f"account-{a}")
            await assert_alive(handle)
            desc = await handle.describe()
            retrying = [p for p in desc.raw_description.pending_activities if p.attempt > 2]
            assert retrying == [], retrying
        for a in accounts:
            v = await view(handles[a])
            texts = [t.text for t in v.timeline if t.kind == "rejected"]
            pg_refusals += sum("refused by Postgres" in t for t in texts)
            assert v.signals_rejected == expected_rejections[a], (a, texts[-5:])
            # The timeline holds every one of them (unless a big scale filled all its entries).
            assert len(texts) == v.signals_rejected or len(v.timeline) == TIMELINE_LIMIT
            assert all(t.split(" rejected: ", 1)[1].strip() for t in texts)
        assert pg_refusals == 0  # the edge refused everything Postgres would have

        # --- no record in another account
        crossed = 0
        for table, col in (
            ("support_tickets", "body"),
            ("nps_responses", "comment"),
            ("interactions", "notes"),
            ("stakeholders", "title"),
            ("tam_health", "note"),
        ):
            crossed += await pool.fetchval(
                f"SELECT count(*) FROM {table} WHERE {col} LIKE '%[acct:%' "
                f"AND strpos({col}, '[acct:' || account_id || ']') = 0"
            )
        tags = {amount_tag(i): a for i, a in enumerate(accounts)}
        for r in await pool.fetch("SELECT account_id, amount FROM invoices"):
            owner = tags.get(float(r["amount"]))
            crossed += owner is not None and owner != r["account_id"]
        crossed += await pool.fetchval(
            "SELECT count(*) FROM usage_events WHERE user_id LIKE 'burst-%-u1' "
            "AND user_id <> account_id || '-u1'"
        )
        assert crossed == 0
        shared = await pool.fetchval(
            "SELECT count(*) FROM (SELECT ticket_id FROM support_tickets "
            "GROUP BY ticket_id HAVING count(DISTINCT account_id) > 1) s"
        )
        assert shared > 0  # the colliding ids did collide, and each account kept its own

        total = sum(counts[k] for k in ("signals", "updates", "handoffs", "import rows"))
        print(f"\nhostile burst: {total} inputs {dict(counts)}; cross-account writes {crossed}")
        assert total >= 1000 * SCALE
        for a in [*accounts, *started]:
            await client.get_workflow_handle(f"account-{a}").terminate("burst done")
