"""Fixtures for the adapter tests: a migrated database pool, settings with a temp outbox, fakes."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from stack.settings import Settings, load_settings
from tests.conftest import _with_database
from tests.fakes.anthropic_api import AnthropicFake
from tests.fakes.google_api import GmailFake, SheetsFake
from tests.fakes.notion_api import NotionFake
from tests.fakes.slack_api import SlackFake


@pytest_asyncio.fixture(scope="module")
async def _module_pool(pg_server: str, pg_template: str) -> AsyncIterator[asyncpg.Pool]:
    """One migrated database per test module (creating one per test costs ~0.5 s here)."""
    name = f"vim_adapters_{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    finally:
        await admin.close()
    p = await asyncpg.create_pool(_with_database(pg_server, name), min_size=1, max_size=4)
    try:
        yield p
    finally:
        await p.close()
        admin = await asyncpg.connect(pg_server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest_asyncio.fixture
async def pool(_module_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """The module's database, emptied before each test."""
    tables = await _module_pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
    )
    await _module_pool.execute(
        "TRUNCATE " + ", ".join(f'"{t["tablename"]}"' for t in tables) + " RESTART IDENTITY CASCADE"
    )
    yield _module_pool


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return dataclasses.replace(load_settings({"VIM_DATA_DIR": str(tmp_path / "data")}))


_counter = itertools.count()


def env_at(attempt: int = 1) -> ActivityEnvironment:
    """An ActivityEnvironment whose activity.info().attempt is `attempt`."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(ActivityEnvironment.default_info(), attempt=attempt)
    return env


def _serve(fake):  # type: ignore[no-untyped-def]
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
        assert not fake.violations, f"{fake.name} contract violations: {fake.violations}"


@pytest.fixture
def anthropic_fake() -> Iterator[AnthropicFake]:
    yield from _serve(AnthropicFake())


@pytest.fixture
def notion_fake() -> Iterator[NotionFake]:
    yield from _serve(NotionFake())


@pytest.fixture
def gmail_fake() -> Iterator[GmailFake]:
    yield from _serve(GmailFake())


@pytest.fixture
def sheets_fake() -> Iterator[SheetsFake]:
    yield from _serve(SheetsFake())


@pytest.fixture
def slack_fake() -> Iterator[SlackFake]:
    yield from _serve(SlackFake())
