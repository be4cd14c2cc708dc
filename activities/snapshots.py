"""Persistence of assessments: health_snapshots and findings.

Writes are idempotent so a retried activity (or a re-run scan) writes once:
``health_snapshots`` is keyed by (account_id, as_of) and upserted (a rerun
with the same inputs writes the same row; with a new config it replaces it);
``findings`` have deterministic ids (kind + account + as_of date [+ key]) and
are inserted ON CONFLICT DO NOTHING. A snapshot and its findings are written
in one transaction, so a reader never sees one without the other.

The snapshot row's ``payload`` is the explained HealthSnapshot (its fields at
the top level, so readers can take ``payload->'drivers'``) plus ``churn``,
``decision``, ``findings``, ``opportunities`` and ``account_name``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

import asyncpg
from pydantic import BaseModel

from domain.assess import Assessment, persistable_findings
from domain.health import HealthSnapshot

_SNAPSHOT_SQL = """
INSERT INTO health_snapshots
    (account_id, as_of, config_version, score, band, coverage, churn_risk, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
ON CONFLICT (account_id, as_of) DO UPDATE SET
    config_version = EXCLUDED.config_version, score = EXCLUDED.score, band = EXCLUDED.band,
    coverage = EXCLUDED.coverage, churn_risk = EXCLUDED.churn_risk, payload = EXCLUDED.payload
"""

_FINDING_SQL = """
INSERT INTO findings (finding_id, account_id, as_of, kind, severity, dollar_impact, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
ON CONFLICT (finding_id) DO NOTHING
"""


def snapshot_payload(a: Assessment) -> str:
    """The jsonb payload of a snapshot row (see the module docstring)."""
    body = a.snapshot.model_dump(mode="json")
    body.update(
        account_name=a.account_name,
        churn=a.churn.model_dump(mode="json"),
        decision=a.decision.model_dump(mode="json"),
        findings=[f.model_dump(mode="json") for f in a.findings],
        opportunities=[o.model_dump(mode="json") for o in a.opportunities],
    )
    return json.dumps(body, separators=(",", ":"))


def _rows(assessments: Iterable[Assessment]) -> tuple[list[tuple], list[tuple]]:
    snaps: list[tuple] = []
    finds: list[tuple] = []
    for a in assessments:
        s = a.snapshot
        snaps.append(
            (
                a.account_id,
                s.as_of,
                s.config_version,
                s.score,
                s.band,
                s.coverage,
                a.churn.level,
                snapshot_payload(a),
            )
        )
        for f in persistable_findings(a):
            finds.append(
                (
                    f.finding_id,
                    f.account_id,
                    f.as_of,
                    f.kind,
                    f.severity,
                    f.dollar_impact,
                    f.model_dump_json(),
                )
            )
    return snaps, finds


async def save_assessments(conn: asyncpg.Connection, assessments: Sequence[Assessment]) -> int:
    """Write snapshots and findings of many assessments in one transaction; returns
    the number of findings written now (those already there are left as they are)."""
    if not assessments:
        return 0
    snaps, finds = _rows(assessments)
    async with conn.transaction():
        await conn.executemany(_SNAPSHOT_SQL, snaps)
        if not finds:
            return 0
        before = await conn.fetchval(
            "SELECT count(*) FROM findings WHERE finding_id = ANY($1::text[])",
            [f[0] for f in finds],
        )
        await conn.executemany(_FINDING_SQL, finds)
        return len({f[0] for f in finds}) - before


async def save_assessment(conn: asyncpg.Connection, assessment: Assessment) -> int:
    """One account's snapshot and findings, in one transaction (idempotent)."""
    return await save_assessments(conn, [assessment])


def _snapshot(payload: str | dict) -> HealthSnapshot:
    data = json.loads(payload) if isinstance(payload, str) else payload
    return HealthSnapshot.model_validate(data)


async def latest_snapshot(
    conn: asyncpg.Connection, account_id: str, before: datetime
) -> HealthSnapshot | None:
    """The account's most recent snapshot strictly before `before` (a retry at the same
    as_of never sees its own earlier write as "previous")."""
    payload = await conn.fetchval(
        """SELECT payload FROM health_snapshots
           WHERE account_id = $1 AND as_of < $2 ORDER BY as_of DESC LIMIT 1""",
        account_id,
        before,
    )
    return None if payload is None else _snapshot(payload)


async def latest_snapshots(
    conn: asyncpg.Connection, account_ids: Sequence[str] | None, before: datetime
) -> dict[str, HealthSnapshot]:
    """latest_snapshot for many accounts (None: all) in one query (the primary key index)."""
    if account_ids is not None and not account_ids:
        return {}
    where = "AND account_id = ANY($2::text[])" if account_ids is not None else ""
    args: list = [before] + ([list(account_ids)] if account_ids is not None else [])
    rows = await conn.fetch(
        f"""SELECT DISTINCT ON (account_id) account_id, payload FROM health_snapshots
            WHERE as_of < $1 {where}
            ORDER BY account_id, as_of DESC""",
        *args,
    )
    return {r["account_id"]: _snapshot(r["payload"]) for r in rows}


class SnapshotPoint(BaseModel):
    """One point of an account's health trend (for QBR charts)."""

    as_of: datetime
    score: float | None
    band: str | None
    coverage: float
    churn_risk: str | None
    config_version: str


async def snapshot_history(
    conn: asyncpg.Connection, account_id: str, since: datetime, until: datetime
) -> list[SnapshotPoint]:
    """Snapshots with since <= as_of <= until, oldest first (light rows, no payload)."""
    rows = await conn.fetch(
        """SELECT as_of, score, band, coverage, churn_risk, config_version
           FROM health_snapshots
           WHERE account_id = $1 AND as_of >= $2 AND as_of <= $3
           ORDER BY as_of""",
        account_id,
        since,
        until,
    )
    return [
        SnapshotPoint(
            as_of=r["as_of"],
            score=None if r["score"] is None else float(r["score"]),
            band=r["band"],
            coverage=float(r["coverage"]),
            churn_risk=r["churn_risk"],
            config_version=r["config_version"],
        )
        for r in rows
    ]
