"""The one way every process connects to Temporal: worker, `starter.py`, the demo.

`connect(settings)` picks the data converter (encrypted when keys are
configured, see stack/codec.py) so a client that writes a payload and a
worker that reads it always agree.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime

from stack.codec import EncryptionKeys, key_file, load_keys
from stack.codec import data_converter as _converter
from stack.settings import Settings

log = logging.getLogger("vim.connect")
_warned_plaintext = False


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
    settings: Settings, *, runtime: Runtime | None = None, warn: bool = False
) -> Client:
    """Connect with the project's converter; raises RuntimeError when unreachable."""
    kwargs: dict[str, Any] = {
        "namespace": settings.temporal_namespace,
        "data_converter": data_converter(settings, warn=warn),
    }
    if runtime is not None:
        kwargs["runtime"] = runtime
    return await Client.connect(settings.temporal_address, **kwargs)
