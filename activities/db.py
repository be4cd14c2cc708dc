"""Connection pool creation, with an explanation instead of a traceback when Postgres is away."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, command_timeout=120)
    assert pool is not None
    return pool


def describe_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    if "@" not in dsn:
        return dsn
    scheme, _, rest = dsn.partition("://")
    creds, _, where = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}@{where}"


def contract_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A contracts row as plain fields for the contract models (numeric -> float)."""
    return {
        "start_date": row["start_date"],
        "end_date": row["end_date"],
        "arr": float(row["arr"]),
        "seats_purchased": row["seats_purchased"],
        "price_per_seat": float(row["price_per_seat"]),
        "licensed_modules": list(row["licensed_modules"]),
        "notice_on": row.get("notice_on"),
    }
