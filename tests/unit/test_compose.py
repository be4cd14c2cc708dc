"""The production-like stack: docker-compose.yml parses, and it registers our search attributes."""

import shutil
import subprocess
from pathlib import Path

import pytest

from workflows.search_attributes import ALL_KEYS, cli_registrations

ROOT = Path(__file__).resolve().parents[2]


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_available(), reason="no `docker compose` client on this machine")
def test_docker_compose_file_parses() -> None:
    proc = subprocess.run(
        ["docker", "compose", "config", "--quiet"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_compose_registers_every_search_attribute_the_workflow_upserts() -> None:
    script = (ROOT / "stack/compose/register-search-attributes.sh").read_text()
    for reg in cli_registrations():
        name, kind = reg.split("=")
        assert f"--name {name} --type {kind}" in script, (
            f"{name} is not registered by docker-compose"
        )
    assert len(ALL_KEYS) == script.count("search-attribute create")


def test_compose_wires_the_worker_to_temporal_and_postgres() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for needle in (
        "temporalio/auto-setup",
        "temporalio/ui",
        "build: .",
        "TEMPORAL_ADDRESS: temporal:7233",
        "DATABASE_URL: postgresql://",
        "register-search-attributes.sh",
    ):
        assert needle in text
