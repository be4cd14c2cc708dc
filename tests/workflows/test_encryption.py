"""Customer text never sits in clear in a workflow history when the codec is on.

A real account workflow on the dev server gets a ticket, an NPS comment, a
meeting note, a stakeholder and a churn notice through an encrypting client;
its history, fetched by a client with no codec, holds none of that text in
any byte, while the same payloads decrypt with the key and the history
replays deterministically with it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_account
from domain.messages import (
    InteractionSignal,
    NpsSignal,
    StakeholderChangeSignal,
    SupportTicketSignal,
)
from stack.codec import EncryptionCodec, data_converter, new_key_entry, parse_keys
from stack.codec_server import build_server, serve_in_thread
from tests.workflows.helpers import make_handoff, replayer, running_worker, settings_for_test

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

TICKET_BODY = "Our CFO Priya says the invoice export drops rows since Tuesday"
TICKET_SUBJECT = "Export broken again zq7"
NPS_COMMENT = "Honestly thinking about switching to a competitor xk4"
MEETING_NOTE = "Champion hinted budget freeze in Q3 wm2"
STAKEHOLDER_EMAIL = "jordan.lee.secret@customer-example.com"
CUSTOMER_TEXT = [TICKET_BODY, TICKET_SUBJECT, NPS_COMMENT, MEETING_NOTE, STAKEHOLDER_EMAIL]


def _payloads(msg: Message) -> list[Payload]:
    """Every Payload in a protobuf message (events, headers, memos, user metadata), except
    search attributes: those stay in clear by design (the server indexes them)."""
    found: list[Payload] = []
    for field, value in msg.ListFields():
        if field.message_type is None or field.name == "search_attributes":
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif isinstance(value, Message):
            items = [value]
        else:  # a repeated field
            items = list(value)
        for item in items:
            if isinstance(item, Payload):
                found.append(item)
            elif isinstance(item, Message):
                found.extend(_payloads(item))
    return found


async def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.3)


async def test_history_holds_no_customer_text_and_decrypts_with_the_key(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    keys = parse_keys(new_key_entry("test-1"))
    plain_client: Client = dev_env.client
    client = await Client.connect(
        plain_client.service_client.config.target_host,
        namespace=plain_client.namespace,
        data_converter=data_converter(keys),
    )
    settings = settings_for_test(tmp_path)
    now = datetime.now(UTC)
    h = make_handoff(f"enc-{uuid.uuid4().hex[:6]}", now.date())
    async with running_worker(client, db_dsn, settings) as pool:
        await start_account(client, h, settings)
        handle = client.get_workflow_handle(h.workflow_id)
        await handle.signal(
            "ticket",
            SupportTicketSignal(
                ticket_id="T-1", opened_at=now, subject=TICKET_SUBJECT, body=TICKET_BODY
            ),
        )
        await handle.signal(
            "nps", NpsSignal(response_id="N-1", responded_at=now, score=3, comment=NPS_COMMENT)
        )
        await handle.signal(
            "interaction",
            InteractionSignal(interaction_id="I-1", occurred_at=now, notes=MEETING_NOTE),
        )
        await handle.signal(
            "stakeholder",
            StakeholderChangeSignal(stakeholder_id="S-1", name="Jordan", email=STAKEHOLDER_EMAIL),
        )

        async def all_written() -> bool:
            return await pool.fetchval(
                """SELECT (SELECT count(*) FROM support_tickets WHERE body = $2)
                        + (SELECT count(*) FROM nps_responses WHERE comment = $3)
                        + (SELECT count(*) FROM interactions WHERE notes = $4)
                        + (SELECT count(*) FROM stakeholders WHERE email = $5)
                   = 4 AND EXISTS (SELECT 1 FROM health_snapshots WHERE account_id = $1)""",
                h.account_id,
                TICKET_BODY,
                NPS_COMMENT,
                MEETING_NOTE,
                STAKEHOLDER_EMAIL,
            )

        await _wait_for(all_written)
        # The workflow decodes its own state and answers queries through the codec.
        desc = await handle.describe()
        assert desc.status is not None

    history = await plain_client.get_workflow_handle(h.workflow_id).fetch_history()
    raw = history.to_json().encode() + b"".join(e.SerializeToString() for e in history.events)
    for text in CUSTOMER_TEXT:
        assert text.encode() not in raw, f"{text!r} is readable in the history"

    payloads = [p for e in history.events for p in _payloads(e)]
    # workflow.patched markers are written by the SDK's core, past the codec: they carry
    # only the patch id (a constant of ours), like search attributes they stay in clear.
    clear = [p for p in payloads if p.metadata.get("encoding") != b"binary/encrypted"]
    assert all(set(json.loads(p.data)) == {"id", "deprecated"} for p in clear), clear
    payloads = [p for p in payloads if p not in clear]
    assert payloads and all(p.metadata.get("encoding") == b"binary/encrypted" for p in payloads)
    decoded = b"".join(p.data for p in EncryptionCodec(keys).decode_sync(payloads))
    for text in CUSTOMER_TEXT:
        assert text.encode() in decoded, f"{text!r} did not come back with the key"

    result = await replayer(data_converter(keys)).replay_workflow(
        WorkflowHistory(h.workflow_id, history.events), raise_on_replay_failure=False
    )
    assert result.replay_failure is None


async def test_codec_server_decodes_the_web_ui_request_for_allowed_origins_only() -> None:
    old = new_key_entry("old")
    new = new_key_entry("new")
    # Rotation: payloads written with the old key still decode once a new key encrypts.
    written = EncryptionCodec(parse_keys(old)).encode_sync(
        [Payload(metadata={"encoding": b"json/plain"}, data=f'"{NPS_COMMENT}"'.encode())]
    )
    codec = EncryptionCodec(parse_keys(f"{new},{old}"))
    ui = "http://localhost:8233"
    server = build_server(codec, host="127.0.0.1", port=0, origins=[ui])
    serve_in_thread(server)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    body = json_format.MessageToJson(Payloads(payloads=written))
    try:
        async with httpx.AsyncClient(base_url=base) as http:
            pre = await http.options(
                "/decode",
                headers={
                    "Origin": ui,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type,x-namespace",
                },
            )
            assert pre.headers.get("access-control-allow-origin") == ui
            assert "x-namespace" in pre.headers["access-control-allow-headers"]

            r = await http.post(
                "/decode",
                content=body,
                headers={
                    "Origin": ui,
                    "Content-Type": "application/json",
                    "X-Namespace": "default",
                },
            )
            assert r.status_code == 200
            assert r.headers["access-control-allow-origin"] == ui
            out = json_format.Parse(r.text, Payloads()).payloads
            assert out[0].data.decode() == f'"{NPS_COMMENT}"'
            assert out[0].metadata["encoding"] == b"json/plain"

            other = await http.post(
                "/decode",
                content=body,
                headers={"Origin": "https://evil.example", "Content-Type": "application/json"},
            )
            assert "access-control-allow-origin" not in other.headers

            # A key that is no longer configured: a clear refusal, not a crash.
            only_new = build_server(
                EncryptionCodec(parse_keys(new)), host="127.0.0.1", port=0, origins=[ui]
            )
            serve_in_thread(only_new)
            try:
                refused = await http.post(
                    f"http://127.0.0.1:{only_new.server_address[1]}/decode",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )
                assert refused.status_code == 400
                assert "'old'" in refused.json()["error"]
            finally:
                only_new.shutdown()
                only_new.server_close()
    finally:
        server.shutdown()
        server.server_close()
