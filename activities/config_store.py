"""Which health config is in force: adopted versions in Postgres, else the environment's.

``starter.py config adopt FILE`` stores a validated config under its version and records
who adopted it when; ``rollback`` restores what was in force before the last change. The
worker's health activities read the config in force at every scan (a cached parse per
version), so running account workflows pick an adoption up at their next scan, and every
snapshot records the version it was scored with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from domain.config import HealthConfig, load_health_config

ENVIRONMENT = "environment"  # the label of "no adopted version": VIM_HEALTH_CONFIG or defaults
MAX_NAME = 200


@dataclass(frozen=True)
class ConfigInForce:
    config: HealthConfig
    source: str  # "adopted by NAME at TS" or "environment (...)"


@dataclass(frozen=True)
class Adoption:
    id: int
    version: str | None  # None: the environment's config
    action: str
    adopted_by: str
    adopted_at: datetime
    note: str | None


class ConfigStoreError(ValueError):
    """A refused adoption; the message says why."""


def _check_name(name: str) -> str:
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in clean):
        raise ConfigStoreError(
            f"--by must be 1-{MAX_NAME} printable characters (no control characters)"
        )
    return clean


async def adoptions(conn: asyncpg.Connection, limit: int = 50) -> list[Adoption]:
    rows = await conn.fetch(
        """SELECT id, version, action, adopted_by, adopted_at, note
           FROM health_config_adoptions ORDER BY id DESC LIMIT $1""",
        limit,
    )
    return [Adoption(**dict(r)) for r in rows]


class ConfigResolver:
    """The config in force, read from Postgres each time and parsed once per version."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = dict(env)
        self._cache: dict[str, HealthConfig] = {}
        self._environment: HealthConfig | None = None

    def environment_config(self) -> HealthConfig:
        if self._environment is None:
            self._environment = load_health_config(env=self._env)
        return self._environment

    async def in_force(self, conn: asyncpg.Connection) -> ConfigInForce:
        row = await conn.fetchrow(
            """SELECT a.version, a.adopted_by, a.adopted_at, v.config::text AS config
               FROM health_config_adoptions a
               LEFT JOIN health_config_versions v USING (version)
               ORDER BY a.id DESC LIMIT 1"""
        )
        if row is None or row["version"] is None:
            cfg = self.environment_config()
            why = "no adopted version" if row is None else "rolled back to the environment"
            return ConfigInForce(cfg, f"{ENVIRONMENT} ({why}; VIM_HEALTH_CONFIG or defaults)")
        version = row["version"]
        if version not in self._cache:
            self._cache[version] = HealthConfig.model_validate(json.loads(row["config"]))
        return ConfigInForce(
            self._cache[version],
            f"adopted by {row['adopted_by']} at {row['adopted_at']:%Y-%m-%d %H:%M} UTC",
        )


async def store_and_adopt(
    conn: asyncpg.Connection, config: HealthConfig, by: str, source: str, note: str | None = None
) -> None:
    """Store ``config`` under its version (the same version must hold the same config) and
    make it the one in force, in one transaction."""
    by = _check_name(by)
    body = config.model_dump(mode="json")
    async with conn.transaction():
        existing = await conn.fetchval(
            "SELECT config::text FROM health_config_versions WHERE version = $1", config.version
        )
        if existing is not None and json.loads(existing) != body:
            raise ConfigStoreError(
                f"version {config.version!r} is already stored with different content; "
                "give the new config a new version"
            )
        if existing is None:
            await conn.execute(
                "INSERT INTO health_config_versions (version, config, source) VALUES ($1, $2, $3)",
                config.version,
                json.dumps(body),
                source[:1000],
            )
        await conn.execute(
            """INSERT INTO health_config_adoptions (version, action, adopted_by, note)
               VALUES ($1, 'adopt', $2, $3)""",
            config.version,
            by,
            (note or "")[:2000] or None,
        )


async def adopt_environment(conn: asyncpg.Connection, by: str, note: str | None = None) -> None:
    await conn.execute(
        """INSERT INTO health_config_adoptions (version, action, adopted_by, note)
           VALUES (NULL, 'adopt', $1, $2)""",
        _check_name(by),
        note,
    )


async def adopt_stored(conn: asyncpg.Connection, version: str, by: str) -> None:
    if await conn.fetchval("SELECT 1 FROM health_config_versions WHERE version = $1", version):
        await conn.execute(
            """INSERT INTO health_config_adoptions (version, action, adopted_by)
               VALUES ($1, 'adopt', $2)""",
            version,
            _check_name(by),
        )
        return
    raise ConfigStoreError(f"no stored config has version {version!r} (see `config list`)")


async def rollback(conn: asyncpg.Connection, by: str) -> str | None:
    """Restore what was in force before the last change; returns that version (None: the
    environment's config). Refused when nothing was ever adopted."""
    by = _check_name(by)
    async with conn.transaction():
        rows = await conn.fetch(
            "SELECT version FROM health_config_adoptions ORDER BY id DESC LIMIT 2 FOR UPDATE"
        )
        if not rows:
            raise ConfigStoreError("nothing to roll back: no config was ever adopted")
        previous = rows[1]["version"] if len(rows) > 1 else None
        await conn.execute(
            """INSERT INTO health_config_adoptions (version, action, adopted_by)
               VALUES ($1, 'rollback', $2)""",
            previous,
            by,
        )
    return previous
