"""CLI for the demo portfolio.

    python -m demo generate --seed 7 --as-of 2026-11-21 --out DIR
        DIR/handoffs/<account_id>.json  one per active account
                                        (input for `python starter.py handoff FILE`)
        DIR/tables/<table>.csv          one per telemetry table, header = columns
                                        (psql: \\copy <table> (<header>) FROM FILE CSV HEADER)
        DIR/manifest.json               seed, as_of, counts, archetypes, bad rows

    python -m demo load [--seed 7] [--as-of DATE]
        COPY into DATABASE_URL, or the running embedded Postgres; migrates first.

--as-of defaults to today (UTC), so the demo's telemetry ends where the
workflows' clock is.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from demo.portfolio import Portfolio, generate_portfolio


def _cell(v: Any) -> str:
    """One CSV cell in a form Postgres COPY ... CSV reads back."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, date):  # datetime too
        return v.isoformat()
    if isinstance(v, tuple | list):
        return "{" + ",".join(str(x) for x in v) + "}"  # text[] literal
    return str(v)


def _write_csv(path: Path, rows: list[Any]) -> None:
    # usage_events shares one datetime object per 15-minute slot: format each once
    seen: dict[int, str] = {}
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(type(rows[0])._fields if rows else [])
        for row in rows:
            out = []
            for v in row:
                if type(v) is str:
                    out.append(v)
                elif type(v) is datetime:
                    s = seen.get(id(v))
                    if s is None:
                        s = seen[id(v)] = v.isoformat()
                    out.append(s)
                else:
                    out.append(_cell(v))
            w.writerow(out)


def write_outputs(portfolio: Portfolio, out: Path) -> dict[str, int]:
    handoffs_dir, tables_dir = out / "handoffs", out / "tables"
    handoffs_dir.mkdir(parents=True, exist_ok=True)
    tables_dir.mkdir(parents=True, exist_ok=True)
    handoffs = portfolio.handoffs()
    for h in handoffs:
        (handoffs_dir / f"{h.account_id}.json").write_text(h.model_dump_json(indent=2) + "\n")
    for table, rows in portfolio.tables().items():
        _write_csv(tables_dir / f"{table}.csv", rows)
    manifest = {
        "seed": portfolio.seed,
        "as_of": portfolio.as_of.isoformat(),
        "accounts": len(portfolio.accounts),
        "handoffs": len(handoffs),
        "row_counts": portfolio.row_counts(),
        "archetypes": portfolio.archetypes,
        "bad_rows": [r._asdict() for r in portfolio.bad_rows],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return {"handoffs": len(handoffs), **portfolio.row_counts()}


def _generate(args: argparse.Namespace) -> Portfolio:
    started = time.perf_counter()
    portfolio = generate_portfolio(args.seed, args.as_of, args.accounts)
    print(
        f"generated seed={args.seed} as_of={args.as_of} accounts={len(portfolio.accounts)} "
        f"usage_events={len(portfolio.usage_events):,} in {time.perf_counter() - started:.1f}s"
    )
    return portfolio


async def _load(args: argparse.Namespace) -> int:
    import asyncpg

    from demo.load import PortfolioConflict, load_portfolio
    from stack.migrate import migrate
    from stack.postgres import resolve_database_url
    from stack.settings import load_settings

    try:
        dsn = resolve_database_url(load_settings())  # before generating: fail fast
    except ConnectionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    portfolio = _generate(args)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        report = await load_portfolio(conn, portfolio)
    except PortfolioConflict as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        await conn.close()
    print(report.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("generate", "write handoff JSON files and table CSVs"),
        ("load", "COPY the portfolio into Postgres"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--seed", type=int, default=7)
        p.add_argument(
            "--as-of",
            type=date.fromisoformat,
            default=datetime.now(UTC).date(),
            help="last day + 1 of telemetry (default: today, UTC)",
        )
        p.add_argument("--accounts", type=int, default=240, help="number of accounts")
        if name == "generate":
            p.add_argument("--out", type=Path, required=True, help="output directory")
    args = parser.parse_args(argv)

    if args.command == "generate":
        counts = write_outputs(_generate(args), args.out)
        print(f"wrote {args.out}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        return 0
    return asyncio.run(_load(args))


if __name__ == "__main__":
    sys.exit(main())
