"""Drill: secrets never appear in logs, workflow histories, search attributes or outbox files.

The real worker (`python worker.py`, INFO logging) runs with fake credentials
for every channel, pointed at the contract-checking fakes. The fakes echo the
secrets back in their error bodies (a 500 that quotes the API key, a 502 that
quotes the Notion token...), the worst case for an error message that ends up
in a log line, an activity failure (kept in history) or a draft. A short
scenario (churn alert on every channel, a renewal-window email, a QBR whose
page goes to the outbox) runs to the end; then every log line, history
(payloads decoded), description, search attribute, file under the data
folder and row the system wrote is searched for each secret.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from google.protobuf.json_format import MessageToDict
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from cli.accounts import start_args
from domain.state import AccountWorkflowInput
from tests.drills.support import (
    WorkerProcess,
    connected,
    decoded_text,
    wait_for,
)
from tests.fakes.anthropic_api import AnthropicFake
from tests.fakes.base import Recorded
from tests.fakes.google_api import GmailFake
from tests.fakes.notion_api import NotionFake
from tests.fakes.slack_api import WEBHOOK_PATH, SlackFake
from tests.workflows.helpers import (
    ALL_BUT_QBR,
    bare_account_config,
    make_handoff,
    settings_for_test,
)

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

HEALTH_DB = "22222222-2222-2222-2222-222222222222"


class WebhookFake(SlackFake):
    """The Slack fake on a webhook path of our choosing (the path is the secret)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    @property
    def webhook_url(self) -> str:
        return self.url + self.path

    def check(self, req: Recorded) -> list[str]:
        if req.path == self.path:
            req.path = WEBHOOK_PATH  # the fake's own contract checks and routing
        return super().check(req)


class Secrets:
    """Fake credentials in each provider's shape; `core` is the random part searched for."""

    def __init__(self, slack_url: str) -> None:
        self.core = {name: uuid.uuid4().hex for name in ("anthropic", "notion", "gmail", "slack")}
        self.anthropic = f"sk-ant-FAKE{self.core['anthropic']}"
        self.notion = f"secret_FAKE{self.core['notion']}"
        self.gmail = f"ya29.FAKE{self.core['gmail']}"
        self.slack_path = f"/services/FAKE{self.core['slack'][:12]}/B0/{self.core['slack'][12:]}"
        self.slack = slack_url + self.slack_path

    def probes(self) -> dict[str, str]:
        """Each secret, and each half of its random part (a truncated leak still counts)."""
        out = {
            "ANTHROPIC_API_KEY": self.anthropic,
            "NOTION_TOKEN": self.notion,
            "GMAIL_TOKEN": self.gmail,
            "SLACK_WEBHOOK_URL": self.slack,
        }
        for name, core in self.core.items():
            out[f"{name} (first half)"] = core[:16]
            out[f"{name} (second half)"] = core[16:]
        return out


@contextlib.contextmanager
def fakes() -> Iterator[tuple[AnthropicFake, NotionFake, GmailFake, WebhookFake, Secrets]]:
    slack = WebhookFake("/services/placeholder")
    with slack:
        secrets = Secrets(slack.url)
        slack.path = secrets.slack_path
        with (
            AnthropicFake(api_key=secrets.anthropic) as model,
            NotionFake(token=secrets.notion) as notion,
            GmailFake(token=secrets.gmail) as gmail,
        ):
            yield model, notion, gmail, slack, secrets  # type: ignore[misc]


def _script_echoing_failures(
    model: AnthropicFake, notion: NotionFake, gmail: GmailFake, slack: WebhookFake, s: Secrets
) -> None:
    """Errors that quote the caller's credentials back (some APIs do)."""
    model.fail(
        500, {"type": "error", "error": {"type": "api_error", "message": f"key {s.anthropic}"}}
    )
    # Then every narrative is refused for good: the template stands in, the error is kept.
    model.fail(
        401,
        {
            "type": "error",
            "error": {"type": "authentication_error", "message": f"bad {s.anthropic}"},
        },
        times=20,
    )
    notion.fail(
        502,
        {"object": "error", "status": 502, "code": "bad_gateway", "message": f"token {s.notion}"},
        match="POST /v1/pages",
    )
    gmail.fail(503, {"error": {"code": 503, "message": f"Bearer {s.gmail} unavailable"}})
    slack.fail(500, f"internal_error: {s.slack}")


async def test_secrets_never_reach_logs_histories_search_attributes_or_outbox(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    client = dev_env.client
    settings = settings_for_test(tmp_path / "data")
    account = f"secret-{uuid.uuid4().hex[:6]}"
    h = make_handoff(account, datetime.now(UTC).date(), days_to_end=20, milestones=ALL_BUT_QBR)
    qbr_id = f"qbr-{account}-renewal-{h.contract.end_date}"
    with fakes() as (model, notion, gmail, slack, secrets):
        notion.add_database(HEALTH_DB)  # the QBR database is left unset: QBR pages -> outbox
        _script_echoing_failures(model, notion, gmail, slack, secrets)
        worker = WorkerProcess(
            WorkerProcess.environment_for(
                client,
                db_dsn,
                settings,
                VIM_LLM_RATE_PER_SECOND="20",
                ANTHROPIC_API_KEY=secrets.anthropic,
                ANTHROPIC_BASE_URL=model.url,
                VIM_LLM_TIMEOUT_S="5",
                NOTION_TOKEN=secrets.notion,
                NOTION_BASE_URL=notion.url,
                NOTION_HEALTH_DATABASE_ID=HEALTH_DB,
                GMAIL_TOKEN=secrets.gmail,
                GMAIL_BASE_URL=gmail.url,
                SLACK_WEBHOOK_URL=secrets.slack,
                # a bare account near renewal: scored, so its churn alert drafts come
                VIM_HEALTH_CONFIG=bare_account_config(tmp_path),
            ),
            tmp_path / "worker.log",
        )
        async with connected(db_dsn) as conn:
            try:
                await worker.start()
                handle = await client.start_workflow(
                    "AccountLifecycleWorkflow",
                    AccountWorkflowInput(
                        handoff=h,
                        sales_task_queue=settings.sales_task_queue,
                        llm_task_queue=settings.llm_task_queue,
                    ),
                    **start_args(h, settings),
                )
                await wait_for(lambda: _delivered(conn, account, 6), timeout=90, what="drafts")
                await client.get_workflow_handle(qbr_id).result()
            finally:
                worker.stop()
            corpora = {"worker log": worker.log()}
            corpora.update(await _temporal_corpora(client, [handle.id, qbr_id]))
            corpora.update(_files(settings.data_dir))
            corpora.update(await _rows(conn, account))
            with contextlib.suppress(RPCError):
                await handle.terminate("drill done")

        # The secrets were really used (and echoed back), so their absence means something.
        used = {
            r.headers.get("x-api-key") or r.headers.get("authorization", "").removeprefix("Bearer ")
            for r in model.requests
        }
        assert used == {secrets.anthropic}, used
        assert notion.calls("POST", "/v1/pages") and gmail.calls("POST") and slack.messages
        channels = await _channels(db_dsn, account)
        assert {"notion", "gmail", "slack", "outbox"} <= channels, channels

    leaks = [
        f"{name} found in {where}: ...{text[max(0, i - 60) : i + 60]!r}..."
        for where, text in corpora.items()
        for name, probe in secrets.probes().items()
        if (i := text.find(probe)) >= 0
    ]
    assert not leaks, "\n".join(leaks)
    assert any(k.startswith("outbox file") for k in corpora), corpora.keys()
    assert "HTTP Request: POST" in corpora["worker log"]  # the httpx lines were logged, redacted


async def _delivered(conn: asyncpg.Connection, account: str, n: int) -> bool:
    got = await conn.fetchval(
        "SELECT count(*) FROM deliveries WHERE account_id = $1 AND status = 'delivered'", account
    )
    return got >= n


async def _channels(dsn: str, account: str) -> set[str]:
    async with connected(dsn) as conn:
        rows = await conn.fetch("SELECT channel FROM deliveries WHERE account_id = $1", account)
    return {r["channel"] for r in rows}


async def _temporal_corpora(client: Client, workflow_ids: list[str]) -> dict[str, str]:
    """History (payloads decoded), description and search attributes of each workflow."""
    out: dict[str, str] = {}
    for wf_id in workflow_ids:
        handle = client.get_workflow_handle(wf_id)
        history = await handle.fetch_history()
        out[f"history of {wf_id}"] = decoded_text(history.to_json_dict())
        desc = await handle.describe()
        out[f"description of {wf_id}"] = decoded_text(MessageToDict(desc.raw_description))
        async for wf in client.list_workflows(f"WorkflowId = '{wf_id}'"):
            out[f"search attributes of {wf_id}"] = "\n".join(
                f"{p.key.name}={p.value}" for p in wf.typed_search_attributes
            )
    return out


def _files(data_dir: Path) -> dict[str, str]:
    return {
        f"outbox file {p.relative_to(data_dir)}" if "outbox" in p.parts else f"file {p}": (
            p.read_bytes().decode("utf-8", "replace")
        )
        for p in data_dir.rglob("*")
        if p.is_file()
    }


async def _rows(conn: asyncpg.Connection, account: str) -> dict[str, str]:
    out = {}
    for table in ("deliveries", "llm_usage", "events", "health_snapshots", "findings"):
        rows = await conn.fetch(f"SELECT * FROM {table} WHERE account_id = $1", account)
        out[f"table {table}"] = "\n".join(str(dict(r)) for r in rows)
    return out
