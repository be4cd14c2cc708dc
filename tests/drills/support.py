"""Helpers shared by the drills: a worker subprocess, waiting, a database gate, history checks."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from temporalio.api.enums.v1 import EventType, PendingActivityState, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowHandle

from stack.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
T = TypeVar("T")

# Variables the drills set themselves; never inherited from the developer's shell.
_SCRUBBED_PREFIXES = (
    "VIM_",
    "TEMPORAL_",
    "DATABASE_URL",
    "ANTHROPIC_",
    "NOTION_",
    "GMAIL_",
    "GOOGLE_",
    "SLACK_",
    "SHEETS_",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GiveUp(Exception):
    """Raised by a `wait_for` predicate when waiting longer cannot help."""


async def wait_for(
    predicate: Callable[[], Awaitable[T]],
    *,
    timeout: float = 60.0,
    every: float = 0.25,
    what: str = "condition",
) -> T:
    """Poll an async predicate until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = await predicate()
            if result:
                return result
        except GiveUp:
            raise
        except Exception as err:  # e.g. a query while a worker restarts
            last_error = err
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} not met within {timeout:.0f}s"
                + (f" (last error: {last_error!r})" if last_error else "")
            )
        await asyncio.sleep(every)


# ------------------------------------------------------------------ worker


class WorkerProcess:
    """`python worker.py` as a subprocess (its own session, so kill -9 hits only it)."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @staticmethod
    def environment(**values: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
        env.update(values)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    @classmethod
    def environment_for(
        cls, client: Client, db_dsn: str, settings: Settings, **values: str
    ) -> dict[str, str]:
        """The environment of a worker polling the test's server, database and queues."""
        return cls.environment(
            TEMPORAL_ADDRESS=client.service_client.config.target_host,
            TEMPORAL_NAMESPACE=client.namespace,
            DATABASE_URL=db_dsn,
            VIM_DATA_DIR=str(settings.data_dir),
            VIM_TASK_QUEUE=settings.task_queue,
            VIM_SALES_TASK_QUEUE=settings.sales_task_queue,
            VIM_LLM_TASK_QUEUE=settings.llm_task_queue,
            **values,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start(self, *, ready_timeout: float = 60.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "worker already running"
        self.starts += 1
        marker = f"=== worker start {self.starts} ===\n"
        with self.log_path.open("a") as f:
            f.write(marker)
        self.proc = self._spawn()

        async def polling() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise GiveUp(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            return "worker polling" in self.log().split(marker, 1)[-1]

        await wait_for(polling, timeout=ready_timeout, every=0.1, what="worker polling")

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, str(ROOT / "worker.py")],
                cwd=ROOT,
                env=dict(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill9(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown, connections dropped by the kernel."""
        assert self.proc is not None and self.proc.poll() is None, "worker is not running"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


# ------------------------------------------------------------- database gate


GATE_CLASS = 4242  # pg_advisory_lock(GATE_CLASS, n): a namespace no product lock uses
SNAPSHOT_GATE = 1  # blocks INSERTs into health_snapshots (mid-save of a health scan)
DELIVERED_GATE = 2  # blocks marking a delivery delivered (after its draft/file was made)


def gate_sql(snapshot_account: str) -> str:
    assert "'" not in snapshot_account
    return f"""
CREATE OR REPLACE FUNCTION drill_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_lock({GATE_CLASS}, TG_ARGV[0]::int);
    PERFORM pg_advisory_unlock({GATE_CLASS}, TG_ARGV[0]::int);
    RETURN NEW;
END $$;
CREATE TRIGGER drill_gate_snapshots BEFORE INSERT ON health_snapshots
    FOR EACH ROW WHEN (NEW.account_id LIKE '{snapshot_account}')
    EXECUTE FUNCTION drill_gate({SNAPSHOT_GATE});
CREATE TRIGGER drill_gate_delivered BEFORE UPDATE ON deliveries
    FOR EACH ROW WHEN (NEW.status = 'delivered' AND OLD.status IS DISTINCT FROM 'delivered')
    EXECUTE FUNCTION drill_gate({DELIVERED_GATE});
"""


class DbGate:
    """Fault injection inside the test's own database: triggers that wait on an advisory lock.

    While the drill holds gate `n`, a product statement that fires the trigger
    blocks in the middle of its activity, so a crash can be aimed at that point.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def install(self, *, snapshot_account: str = "%") -> None:
        """Snapshot inserts block only for accounts matching `snapshot_account` (LIKE)."""
        await self.conn.execute(gate_sql(snapshot_account))

    async def close(self, gate: int) -> None:
        await self.conn.execute("SELECT pg_advisory_lock($1, $2)", GATE_CLASS, gate)

    async def open(self, gate: int) -> None:
        await self.conn.execute("SELECT pg_advisory_unlock($1, $2)", GATE_CLASS, gate)

    async def waiting(self, gate: int) -> list[int]:
        """Backends of this database blocked at gate `n`."""
        rows = await self.conn.fetch(
            """SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND NOT l.granted AND l.classid = $1
                 AND l.objid = $2 AND l.objsubid = 2 AND a.datname = current_database()""",
            GATE_CLASS,
            gate,
        )
        return [r["pid"] for r in rows]

    async def terminate(self, pids: list[int]) -> None:
        """End the backends a killed worker left behind, so their statements never commit."""
        for pid in pids:
            await self.conn.execute("SELECT pg_terminate_backend($1)", pid)

        async def gone() -> bool:
            n = await self.conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
            )
            return n == 0

        await wait_for(gone, timeout=10, what="orphaned backends gone")


# ------------------------------------------------------------------ history


async def events(handle: WorkflowHandle) -> list[Any]:
    return list((await handle.fetch_history()).events)


# Failures the server records itself during a burst of signals, not failures of our code:
# a completion refused because new events arrived meanwhile (UNHANDLED_COMMAND), and a task
# failed by the history service to flush more than ~100 buffered events (FORCE_CLOSE_COMMAND).
# The worker simply runs the task again with the new events.
_BENIGN_TASK_FAILURES = {
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND,
}


def failed_workflow_tasks(history: list[Any]) -> list[str]:
    """Workflow task failures (cause: message), leaving out the server's benign retries."""
    out = []
    for e in history:
        if e.event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            continue
        a = e.workflow_task_failed_event_attributes
        if a.cause not in _BENIGN_TASK_FAILURES:
            out.append(f"{WorkflowTaskFailedCause.Name(a.cause)}: {a.failure.message}")
    return out


def activity_attempts(history: list[Any], activity_type: str) -> list[int]:
    """The attempt number of every completed activity of this type (attempt > 1: it was retried)."""
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    started = {
        e.event_id: e.activity_task_started_event_attributes
        for e in history
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    }
    out = []
    for e in history:
        if e.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            continue
        a = e.activity_task_completed_event_attributes
        if scheduled.get(a.scheduled_event_id) == activity_type:
            out.append(started[a.started_event_id].attempt)
    return out


async def pending_activity(handle: WorkflowHandle, activity_type: str) -> Any | None:
    """The pending activity of this type that a worker has started, if any."""
    desc = await handle.describe()
    for p in desc.raw_description.pending_activities:
        if p.activity_type.name == activity_type and p.state == STARTED:
            return p
    return None


async def failed_attempts(handle: WorkflowHandle, activity_type: str) -> list[str]:
    """Failure messages of a pending activity of this type that is being retried."""
    desc = await handle.describe()
    return [
        p.last_failure.message
        for p in desc.raw_description.pending_activities
        if p.activity_type.name == activity_type and p.attempt >= 2 and p.HasField("last_failure")
    ]


def decoded_text(obj: Any) -> str:
    """Every string of a proto-JSON dict, with payload `data` base64-decoded (histories)."""
    out: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "data" and isinstance(v, str):
                    with contextlib.suppress(ValueError):
                        out.append(base64.b64decode(v).decode("utf-8", "replace"))
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, str):
            out.append(x)

    walk(obj)
    return "\n".join(out)


@contextlib.asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()
