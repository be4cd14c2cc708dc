"""The production-like stack: docker-compose.yml parses, registers our search attributes,
publishes nothing beyond localhost by default and holds no password."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from workflows.search_attributes import ALL_KEYS, cli_registrations

ROOT = Path(__file__).resolve().parents[2]


def _compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_available(), reason="no `docker compose` client on this machine")
def test_docker_compose_file_parses() -> None:
    required = {"POSTGRES_PASSWORD": "p1", "VIM_DB_PASSWORD": "p2", "VIM_ENCRYPTION_KEYS": "k=AA=="}
    proc = subprocess.run(
        ["docker", "compose", "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **required},
    )
    assert proc.returncode == 0, proc.stderr
    # Without the .env values it refuses to start, naming what is missing.
    bare = {k: v for k, v in os.environ.items() if k not in required}
    proc = subprocess.run(
        ["docker", "compose", "config", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=bare,
    )
    assert proc.returncode != 0 and ".env" in proc.stderr


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


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _with_defaults(value: str) -> str:
    """What compose makes of a value when .env sets nothing optional."""
    value = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m[2], value)
    return re.sub(r"\$\{(\w+):\?[^}]*\}", "<required>", value)


def test_compose_publishes_nothing_on_all_interfaces_by_default() -> None:
    published = []
    for name, svc in _compose()["services"].items():
        for port in svc.get("ports", []):
            assert isinstance(port, str), f"{name}: use the host:published:target form"
            host, _, rest = _with_defaults(port).rpartition(":")[0].rpartition(":")
            published.append((name, host, rest))
    assert published, "nothing published at all?"
    assert {host for _, host, _ in published} == {"127.0.0.1"}, published


def test_compose_commits_no_password() -> None:
    secretish = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|_KEY|KEYS$")
    for name, svc in _compose()["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            value = str(value)
            if secretish.search(key):
                assert value.startswith("${") and value.endswith("}"), f"{name}.{key} is fixed"
            if "://" in value and "@" in value:  # a URL with credentials
                userinfo = value.split("://", 1)[1].split("@", 1)[0]
                password = userinfo.partition(":")[2]
                assert password.startswith("${"), f"{name}.{key} has a fixed password"
    for script in (ROOT / "stack/compose").iterdir():
        assert not re.search(r"PASSWORD\s+'", script.read_text()), f"{script.name} fixes a password"
    example = (ROOT / ".env.example").read_text()
    for line in example.splitlines():
        if re.match(r"^\w*(PASSWORD|KEYS)\w*=", line):
            assert line.endswith("="), f".env.example ships a value: {line}"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_compose_wires_the_codec_server_and_metrics() -> None:
    services = _compose()["services"]
    codec = services["codec-server"]
    assert codec["command"][:4] == ["python", "-m", "stack", "codec-server"]
    assert "VIM_ENCRYPTION_KEYS" in codec["environment"]
    assert "TEMPORAL_CODEC_ENDPOINT" in services["temporal-ui"]["environment"]
    worker = services["worker"]["environment"]
    assert worker["VIM_ENCRYPTION_KEYS"] == codec["environment"]["VIM_ENCRYPTION_KEYS"]
    assert worker["VIM_METRICS_ADDRESS"].endswith(":9464")
