"""Class 6: the command line exits with the code it printed for.

`starter.py list/describe/signal` used to print the right output and then
abort in interpreter shutdown (`Fatal Python error: PyGILState_Release`,
exit 134, or a segfault): the Temporal client's Rust threads outlive the
event loop (temporalio/sdk-python#300). Deeply nested JSON gave a traceback
and exit 1. `make demo | tee log` and Ctrl-C left Postgres and Temporal
running (BrokenPipeError out of the cleanup).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

import starter
from cli.accounts import start_account
from stack.postgres import embedded_dsn, stop_embedded
from stack.settings import ROOT, load_settings
from stack.temporal_dev import port_open, stop_dev_server
from tests.drills.support import WorkerProcess, free_port
from tests.workflows.helpers import make_handoff, running_worker, settings_for_test, view

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

RUNS = 20
PARALLEL = 4  # a busy machine makes the shutdown race likelier


async def test_twenty_runs_of_list_describe_and_signal_all_exit_zero(
    dev_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    client = dev_env.client
    settings = settings_for_test(tmp_path)
    h = make_handoff(f"cli-{uuid.uuid4().hex[:6]}", datetime.now(UTC).date())
    env = WorkerProcess.environment_for(client, db_dsn, settings)
    ticket = json.dumps({"ticket_id": "T-cli", "opened_at": datetime.now(UTC).isoformat()})
    commands = [
        (["list"], None, h.account_id),
        (["describe", h.account_id], None, "phase"),
        (["signal", "ticket", h.account_id, "-"], ticket, "sent"),
    ]
    async with running_worker(client, db_dsn, settings):
        await start_account(client, h, settings)
        sem = asyncio.Semaphore(PARALLEL)

        async def run(i: int) -> tuple[list[str], int, str, str]:
            args, stdin, _ = commands[i % len(commands)]
            async with sem:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(ROOT / "starter.py"),
                    *args,
                    cwd=ROOT,
                    env=env,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                out, err = await proc.communicate(stdin.encode() if stdin else None)
            assert proc.returncode is not None
            return args, proc.returncode, out.decode(), err.decode()

        results = await asyncio.gather(*(run(i) for i in range(RUNS)))
        bad = [(a, code, err[-300:]) for a, code, _, err in results if code != 0]
        assert bad == [], bad
        for (args, _, out, _), (_, _, expected) in zip(
            results, [commands[i % len(commands)] for i in range(RUNS)], strict=True
        ):
            assert expected in out, (args, out)
        handle = client.get_workflow_handle(h.workflow_id)
        assert (await view(handle)).signals_received >= RUNS // len(commands)
        await handle.terminate("test done")


@pytest.mark.parametrize("depth", [2_000, 200_000])
async def test_deeply_nested_json_exits_2_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], depth: int
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * depth + "]" * depth)
    nested_event = tmp_path / "nested.json"
    nested_event.write_text('{"batch_id": "b", "events": ' + "[" * depth + "]" * depth + "}")
    settings = settings_for_test(tmp_path)
    for argv in (
        ["handoff", str(deep)],
        ["signal", "usage", "acme", str(nested_event)],
    ):
        code = await starter.main(argv, settings=settings)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert "nested too deeply" in err or "is invalid" in err, err


def test_an_oversized_signal_exits_2_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {
        "batch_id": "big",
        "events": [
            {
                "user_id": "u" * 190,
                "occurred_at": "2026-11-01T00:00:00Z",
                "event_type": "reports.export",
            }
        ]
        * 5000,
    }
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc))
    code = asyncio.run(
        starter.main(["signal", "usage", "acme", str(path)], settings=settings_for_test(tmp_path))
    )
    assert code == 2 and "over the 1,000,000-byte limit" in capsys.readouterr().err


def test_make_demo_stops_what_it_started_when_its_output_pipe_breaks(tmp_path: Path) -> None:
    """`make demo | tee log`, then Ctrl-C: the terminal signals both; tee dies first."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIM_", "TEMPORAL_", "DATABASE_URL"))
    }
    env.update(
        VIM_DATA_DIR=str(tmp_path / "data"),
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        VIM_UI_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    settings = load_settings(env)
    demo = subprocess.Popen(
        [sys.executable, "-m", "stack", "demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert demo.stdout is not None
        seen = []
        for line in demo.stdout:
            seen.append(line.decode(errors="replace"))
            if "Temporal: " in seen[-1]:
                break
        assert port_open(settings.temporal_address), "".join(seen)
        assert embedded_dsn(settings.pgdata) is not None, "".join(seen)
        demo.stdout.close()  # tee is gone: every later write hits a broken pipe
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=120)
        assert not port_open(settings.temporal_address), "the Temporal dev server still runs"
        assert embedded_dsn(settings.pgdata) is None, "the embedded Postgres still runs"
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        stop_dev_server(settings)
        stop_embedded(settings.pgdata)
