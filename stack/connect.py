"""The one way every process connects to Temporal: worker, `starter.py`, the demo.

Where to connect comes from Temporal's environment configuration
(`temporalio.envconfig`), the convention shared with the `temporal` CLI: a
profile in a TOML file (`TEMPORAL_CONFIG_FILE`, default
`~/.config/temporalio/temporal.toml`; `TEMPORAL_PROFILE` picks one, default
`default`) with `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`,
`TEMPORAL_TLS*` variables overriding it. Address and namespace fall back to
the project's settings (`localhost:7233`, `default`), so `make demo` needs
none of it. The data converter is picked here too (encrypted when keys are
configured, see stack/codec.py), so a client that writes a payload and a
worker that reads it always agree.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from stack.codec import EncryptionKeys, key_file, load_keys
from stack.codec import data_converter as _converter
from stack.settings import Settings

log = logging.getLogger("vim.connect")
_warned_plaintext = False


class ConnectConfigError(ValueError):
    """The Temporal profile cannot be loaded (missing file or profile, bad TOML)."""


@dataclass(frozen=True)
class Target:
    """Keyword arguments of `Client.connect` (without the converter), and a safe description."""

    kwargs: Mapping[str, Any]

    @property
    def address(self) -> str:
        return self.kwargs["target_host"]

    @property
    def namespace(self) -> str:
        return self.kwargs["namespace"]

    def describe(self) -> str:
        """Address, namespace and how it authenticates; never a secret."""
        tls = self.kwargs.get("tls")
        parts = [f"{self.address} (namespace {self.namespace}"]
        if isinstance(tls, TLSConfig):
            parts.append(", TLS with client certificate" if tls.client_cert else ", TLS")
        elif tls:
            parts.append(", TLS")
        if self.kwargs.get("api_key"):
            parts.append(", API key")
        return "".join(parts) + ")"


def target(settings: Settings, env: Mapping[str, str] | None = None) -> Target:
    """Resolve the envconfig profile for these settings (env defaults to the process's)."""
    env = os.environ if env is None else env
    config_file = env.get("TEMPORAL_CONFIG_FILE")
    if config_file and not os.path.exists(config_file):
        raise ConnectConfigError(f"TEMPORAL_CONFIG_FILE {config_file} does not exist")
    try:
        profile = ClientConfigProfile.load(
            profile=env.get("TEMPORAL_PROFILE") or None, override_env_vars=dict(env)
        )
        kwargs: dict[str, Any] = dict(profile.to_client_connect_config())
    except Exception as err:  # the bridge's ConfigError, or a certificate file it cannot read
        raise ConnectConfigError(f"Temporal client profile: {err}") from None
    kwargs.setdefault("target_host", settings.temporal_address)
    kwargs.setdefault("namespace", settings.temporal_namespace)
    return Target(kwargs)


def encryption_keys(settings: Settings) -> EncryptionKeys | None:
    return load_keys(settings.encryption_keys, settings.data_dir)


def data_converter(settings: Settings, *, warn: bool = False) -> DataConverter:
    """The converter for these settings; `warn` logs once when payloads go unencrypted."""
    global _warned_plaintext
    keys = encryption_keys(settings)
    if keys is None and warn and not _warned_plaintext:
        _warned_plaintext = True
        log.warning(
            "payload encryption is OFF: no VIM_ENCRYPTION_KEYS and no key file %s, so customer "
            "text is stored in clear in workflow histories (`make demo` creates a local key; "
            "`python -m stack new-key` makes one for production)",
            key_file(settings.data_dir),
        )
    return _converter(keys)


async def connect(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    warn: bool = False,
    env: Mapping[str, str] | None = None,
) -> Client:
    """Connect with the profile and the project's converter; RuntimeError when unreachable."""
    kwargs = dict(target(settings, env).kwargs)
    kwargs["data_converter"] = data_converter(settings, warn=warn)
    if runtime is not None:
        kwargs["runtime"] = runtime
    return await Client.connect(**kwargs)
