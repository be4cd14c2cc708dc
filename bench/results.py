"""Benchmark rows, and the Markdown table and JSON file they are written to.

Every row is a figure measured against a bare-limit baseline from the same
run; `ratio` is always figure / baseline (a throughput ratio below 1 is the
share of the bare limit reached; a time or memory ratio above 1 is the
overhead factor). Absolute figures vary with the machine; a ratio from one
run is comparable across runs.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    scenario: str
    figure: str  # what is measured, e.g. "accounts started per second"
    value: float
    unit: str
    baseline_label: str = ""
    baseline: float | None = None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = None if self.ratio is None else round(self.ratio, 3)
        return d


@dataclass
class ScenarioResult:
    name: str
    seconds: float = 0.0
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def add(self, *args: Any, **kwargs: Any) -> Row:
        row = Row(self.name, *args, **kwargs)
        self.rows.append(row)
        return row


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.2f}"
    return f"{text} {unit}".strip()


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cpu, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def markdown(results: list[ScenarioResult], meta: dict[str, Any]) -> str:
    lines = [
        f"# Benchmarks ({meta['started_at']}, {meta['machine']})",
        "",
        f"`{meta['command']}`. Ratio = figure / baseline, both measured in this run.",
        "",
        "| scenario | figure | baseline (bare limit) | ratio | notes (what limited it) |",
        "|---|---|---|---:|---|",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.name} | FAILED | | | {_cell(r.error)} |")
        for row in r.rows:
            base = (
                f"{fmt(row.baseline, row.unit)} {row.baseline_label}".strip()
                if row.baseline is not None
                else (row.baseline_label or "-")
            )
            ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
            lines.append(
                f"| {row.scenario} | {fmt(row.value, row.unit)} {row.figure} | {_cell(base)} "
                f"| {ratio} | {_cell(row.notes)} |"
            )
    lines += ["", "| scenario | wall time |", "|---|---:|"]
    for r in results:
        lines.append(f"| {r.name} | {r.seconds:,.0f} s |")
    lines.append(f"| total | {meta['seconds']:,.0f} s |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write(
    results: list[ScenarioResult], meta: dict[str, Any], out_dir: Path = RESULTS_DIR
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "results.md"
    js = out_dir / "results.json"
    md.write_text(markdown(results, meta))
    js.write_text(
        json.dumps(
            {
                **meta,
                "scenarios": [
                    {
                        "name": r.name,
                        "seconds": round(r.seconds, 1),
                        "error": r.error,
                        "rows": [row.as_dict() for row in r.rows],
                        "details": r.details,
                    }
                    for r in results
                ],
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    return md, js


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
