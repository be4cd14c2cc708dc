"""The contract terms retention is computed from (``domain/retention.py``): one read, shared
by ``starter.py retention`` and the console's retention page."""

from __future__ import annotations

import asyncpg

from domain.retention import ContractTerm


async def fetch_contract_terms(conn: asyncpg.Connection | asyncpg.Pool) -> list[ContractTerm]:
    rows = await conn.fetch("SELECT account_id, start_date, end_date, arr FROM contracts")
    return [
        ContractTerm(
            account_id=r["account_id"],
            start_date=r["start_date"],
            end_date=r["end_date"],
            arr=float(r["arr"]),
        )
        for r in rows
    ]
