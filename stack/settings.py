"""Settings read from the environment, in one place.

Every variable has an embedded default, so `make demo` needs none of them;
set them to point the same worker at a real cluster and database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from domain.digest import DraftPolicy

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None  # None: use the embedded Postgres under data_dir
    temporal_address: str
    temporal_namespace: str
    task_queue: str
    sales_task_queue: str
    llm_task_queue: str
    ui_port: int
    # VIM_DIGEST (daily|weekly|off), VIM_DIGEST_HOUR_UTC, VIM_IMMEDIATE_CAP,
    # VIM_DIGEST_MAX_ITEMS, VIM_ONBOARDING_RAMP_DAYS: how accounts pace their mail.
    policy: DraftPolicy = field(default_factory=DraftPolicy)
    # The CS console (`python -m console`): where it listens and who may use it.
    console_host: str = "127.0.0.1"
    console_port: int = 8400
    console_token: str | None = None  # VIM_CONSOLE_TOKEN: bearer token / cookie
    console_users: tuple[tuple[str, str], ...] = ()  # VIM_CONSOLE_USERS: name:password,...
    # Issue 15 (deployment): encryption, codec server, metrics, shutdown.
    encryption_keys: str | None = None  # VIM_ENCRYPTION_KEYS; None: the key file, if any
    codec_address: str = "127.0.0.1:8234"
    codec_origins: tuple[str, ...] = ()
    metrics_address: str | None = "127.0.0.1:9464"
    shutdown_grace_seconds: float = 60.0
    # Workflow instances a worker keeps in memory (VIM_MAX_CACHED_WORKFLOWS). Each cached
    # account workflow holds ~0.5 MB (bench: 395 MB at 2,000 accounts with 500 cached, 162
    # MB idle); past this many, an account is rebuilt from its history when its next task
    # comes (the daily summary, a signal), so RSS stays flat however many accounts run.
    max_cached_workflows: int = 250

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def temporal_db_file(self) -> Path:
        return self.data_dir / "temporal.sqlite"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def ui_url(self) -> str:
        host = self.temporal_address.rsplit(":", 1)[0]
        return f"http://{host}:{self.ui_port}"

    @property
    def codec_url(self) -> str:
        return f"http://{self.codec_address}"

    @property
    def metrics_url(self) -> str | None:
        return f"http://{self.metrics_address}/metrics" if self.metrics_address else None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("VIM_DATA_DIR") or ROOT / ".data").resolve()
    return Settings(
        data_dir=data_dir,
        database_url=env.get("DATABASE_URL") or None,
        temporal_address=env.get("TEMPORAL_ADDRESS", "localhost:7233"),
        temporal_namespace=env.get("TEMPORAL_NAMESPACE", "default"),
        task_queue=env.get("VIM_TASK_QUEUE", "vim-accounts"),
        sales_task_queue=env.get("VIM_SALES_TASK_QUEUE", "vim-sales"),
        llm_task_queue=env.get("VIM_LLM_TASK_QUEUE", "vim-llm"),
        ui_port=int(env.get("VIM_UI_PORT", "8233")),
        policy=DraftPolicy.from_env(env),
        console_host=env.get("VIM_CONSOLE_HOST", "127.0.0.1"),
        console_port=int(env.get("VIM_CONSOLE_PORT", "8400")),
        console_token=env.get("VIM_CONSOLE_TOKEN") or None,
        console_users=_users(env.get("VIM_CONSOLE_USERS", "")),
        encryption_keys=env.get("VIM_ENCRYPTION_KEYS") or None,
        codec_address=env.get("VIM_CODEC_ADDRESS") or "127.0.0.1:8234",
        codec_origins=tuple(
            o.strip() for o in (env.get("VIM_CODEC_CORS_ORIGINS") or "").split(",") if o.strip()
        ),
        # Empty string turns the Prometheus endpoint off.
        metrics_address=env.get("VIM_METRICS_ADDRESS", "127.0.0.1:9464") or None,
        shutdown_grace_seconds=float(env.get("VIM_SHUTDOWN_GRACE_SECONDS") or 60),
        max_cached_workflows=_non_negative_int(env, "VIM_MAX_CACHED_WORKFLOWS", 250),
    )


def _non_negative_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, got {value}")
    return value


def _users(text: str) -> tuple[tuple[str, str], ...]:
    """`name:password,name2:password2` -> ((name, password), ...); entries without ':' are
    refused so a typo never leaves a user without a password."""
    out: list[tuple[str, str]] = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, password = item.partition(":")
        if not sep or not name.strip() or not password:
            raise ValueError(
                f"VIM_CONSOLE_USERS entry {name.strip()!r} needs the form name:password"
            )
        out.append((name.strip(), password))
    return tuple(out)
