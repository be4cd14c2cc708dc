"""`make bench` still runs: a tiny handoff + ingestion run of `python -m bench`.

Not a benchmark (N is far too small to mean anything): it proves the runner
starts its own stack, runs the two cheapest scenarios end to end against the
real dev server, worker.py and Postgres, and writes figures and ratios.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.devserver, pytest.mark.slow]


def test_quick_handoff_and_ingestion_write_figures_and_ratios(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "handoff,ingestion",
            "--handoffs",
            "20",
            "--batches",
            "2",
            "--no-profile",  # py-spy is optional; the smoke run must not depend on it
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    scenarios = {s["name"]: s for s in results["scenarios"]}
    assert set(scenarios) == {"handoff", "ingestion"}
    for s in scenarios.values():
        assert s["error"] is None
        assert s["rows"], s["name"]
        for row in s["rows"]:
            assert row["value"] > 0, row
            assert row["baseline"] > 0, row
            assert row["ratio"] > 0, row
    table = (tmp_path / "results.md").read_text()
    assert "| handoff |" in table and "| ingestion |" in table
