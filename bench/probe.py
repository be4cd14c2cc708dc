"""What limited a measured phase: CPU per process, and the hottest call in each.

`Probe.phase(name)` wraps a timed block and records, for exactly that block:
- average cores used by each process group (worker, dev/test server,
  postgres, bench): on this 2-core machine, a group near 1.0 is a saturated
  single-threaded component, and a sum near 2.0 is a saturated machine;
- Python CPU of the profiled process by module and by project call (py-spy);
- Postgres execution time by statement (pg_stat_statements);
- dev-server persistence time by operation (its /metrics endpoint; SQLite
  takes one writer at a time, so a busy share near 1.0 is the wall).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stack import (
    DevServer,
    ProcessWatch,
    Profiler,
    cpu_cores,
    pg_statements_reset,
    pg_top_statements,
)


@dataclass
class PhaseReport:
    name: str
    seconds: float = 0.0
    cores: dict[str, float] = field(default_factory=dict)
    python: dict[str, Any] = field(default_factory=dict)
    python_of: str = ""
    postgres: list[dict[str, Any]] = field(default_factory=list)
    server_persistence: list[tuple[str, float]] = field(default_factory=list)
    # Persistence seconds per wall second: the average number of SQLite
    # operations in flight (waiting for the one writer counts), so > 1 means
    # operations queue behind each other.
    server_busy: float | None = None
    server_calls: int = 0  # persistence operations in the phase
    # Set by a scenario to see persistence operations per unit of work in the
    # notes, e.g. (2000, "workflow") or (200, "signal").
    per: tuple[int, str] = (0, "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2),
            "cores": self.cores,
            "python_profile_of": self.python_of,
            "python": self.python,
            "postgres_top": self.postgres,
            "server_persistence_top": self.server_persistence,
            "server_persistence_busy": self.server_busy,
            "server_persistence_calls": self.server_calls,
        }

    def notes(self) -> str:
        """One line for the results table: who was busy, and on what."""
        parts = []
        if self.cores:
            busy = sorted(self.cores.items(), key=lambda kv: -kv[1])
            parts.append(
                "cores "
                + ", ".join(f"{k} {v:.2f}" for k, v in busy if v >= 0.01)
                + f" (of {os.cpu_count()}, sum {sum(self.cores.values()):.2f})"
            )
        if self.python.get("by_project_call"):
            calls = ", ".join(
                f"{k} {v:.0%}" for k, v in self.python["by_project_call"][:3] if v >= 0.05
            )
            mods = ", ".join(f"{k} {v:.0%}" for k, v in self.python["by_owner"][:3] if v >= 0.05)
            parts.append(
                f"{self.python_of} Python CPU (py-spy) by library: {mods}; by our call: {calls}"
            )
        if self.postgres:
            top = self.postgres[0]
            parts.append(
                f"postgres top: `{top['statement'][:48]}` {top['share']:.0%} "
                f"({top['seconds']} s, {top['calls']} calls)"
            )
        if self.server_persistence:
            ops = ", ".join(f"{k} {v:.1f}s" for k, v in self.server_persistence[:2])
            count, unit = self.per
            per = f", {self.server_calls / count:.1f} per {unit}" if count else ""
            parts.append(
                f"dev server SQLite: {self.server_calls:,} persistence ops{per}, "
                f"{self.server_busy:.1f} in flight on average ({ops})"
            )
        return "; ".join(parts)


@dataclass
class Probe:
    watch: ProcessWatch
    workdir: Path
    dsn: str | None = None
    dev: DevServer | None = None
    profile_pid: int | None = None
    profile_label: str = "worker"
    profile: bool = True
    reports: dict[str, PhaseReport] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def phase(self, name: str, *, profile: bool = True) -> AsyncIterator[PhaseReport]:
        rep = PhaseReport(name)
        if self.dsn:
            await pg_statements_reset(self.dsn)
        persist0 = self.dev.persistence() if self.dev else {}
        prof = None
        if profile and self.profile and self.profile_pid and Profiler.available():
            safe = "".join(c if c.isalnum() else "_" for c in name)
            prof = Profiler(self.profile_pid, self.workdir / f"pyspy-{safe}.txt").start()
        a = self.watch.mark()
        t0 = time.perf_counter()
        try:
            yield rep
        except BaseException:
            if prof is not None:
                prof.stop()
            raise
        rep.seconds = time.perf_counter() - t0
        b = self.watch.mark()
        rep.cores = cpu_cores(a, b)
        if prof is not None:
            rep.python = prof.stop()
            rep.python_of = self.profile_label
        if self.dsn:
            rep.postgres = await pg_top_statements(self.dsn)
        if self.dev:
            persist1 = self.dev.persistence()
            secs = {k: v[0] - persist0.get(k, (0.0, 0.0))[0] for k, v in persist1.items()}
            calls = {k: v[1] - persist0.get(k, (0.0, 0.0))[1] for k, v in persist1.items()}
            top = sorted(((k, round(v, 2)) for k, v in secs.items() if v > 0), key=lambda x: -x[1])
            rep.server_persistence = top[:4]
            rep.server_busy = round(sum(secs.values()) / max(rep.seconds, 1e-6), 2)
            rep.server_calls = int(sum(calls.values()))
        self.reports[name] = rep
