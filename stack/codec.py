"""Customer data encrypted in workflow histories: an AES-GCM payload codec.

Every payload the worker, `starter.py`, the demo and the tests write to
Temporal (workflow inputs, signals, updates, queries, activity arguments and
results, memos, summaries, failure messages) is encrypted before it leaves
the process and decrypted when it comes back, so the server, the Web UI and
`temporal workflow show` only see ciphertext. Search attributes, workflow
ids and types stay in clear (they are indexed): see README "Encryption".

Keys come from `VIM_ENCRYPTION_KEYS` (`id=base64key[,id=base64key...]`, the
first one encrypts, all of them decrypt, so a key rotates by putting the new
one first and dropping the old one once no open history needs it), or, when
that is unset, from the key file `<data dir>/encryption-keys` that
`make demo` creates on its first run. With neither, payloads go unencrypted
and the worker says so once at startup.

The wire format follows Temporal's samples-python `encryption` sample so the
Go/TypeScript codec servers interoperate: encoding `binary/encrypted`, the
key id in `encryption-key-id`, data = 12-byte nonce + AES-GCM(serialized
Payload).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID_FIELD = "encryption-key-id"
NONCE_BYTES = 12
KEY_FILE_NAME = "encryption-keys"


class KeyConfigError(ValueError):
    """The configured keys cannot be used; the message says which and why."""


@dataclass(frozen=True)
class EncryptionKeys:
    current_id: str
    keys: Mapping[str, bytes]

    @property
    def ids(self) -> list[str]:
        return list(self.keys)


def parse_keys(spec: str, *, source: str = "VIM_ENCRYPTION_KEYS") -> EncryptionKeys:
    """`id=base64key[,id=base64key...]` (commas or newlines); the first key encrypts."""
    keys: dict[str, bytes] = {}
    entries = [e.strip() for e in spec.replace("\n", ",").split(",")]
    for entry in (e for e in entries if e and not e.startswith("#")):
        key_id, sep, b64 = entry.partition("=")
        key_id = key_id.strip()
        if not sep or not key_id:
            raise KeyConfigError(f"{source}: expected id=base64key, got an entry without an id")
        try:
            key = base64.b64decode(b64.strip(), validate=True)
        except binascii.Error:
            raise KeyConfigError(f"{source}: key {key_id!r} is not valid base64") from None
        if len(key) not in (16, 24, 32):
            raise KeyConfigError(
                f"{source}: key {key_id!r} is {len(key)} bytes; AES-GCM needs 16, 24 or 32 "
                "(generate one with `python -m stack new-key`)"
            )
        if key_id in keys:
            raise KeyConfigError(f"{source}: key id {key_id!r} appears twice")
        keys[key_id] = key
    if not keys:
        raise KeyConfigError(f"{source}: no key in it")
    return EncryptionKeys(current_id=next(iter(keys)), keys=keys)


def new_key_entry(key_id: str | None = None) -> str:
    """A fresh 256-bit key as one `id=base64key` entry."""
    key_id = key_id or f"k{secrets.token_hex(4)}"
    return f"{key_id}={base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


def key_file(data_dir: Path) -> Path:
    return data_dir / KEY_FILE_NAME


def load_keys(env_spec: str | None, data_dir: Path) -> EncryptionKeys | None:
    """The keys in force: the environment first, then the key file under the data dir."""
    if env_spec:
        return parse_keys(env_spec)
    path = key_file(data_dir)
    if path.exists():
        return parse_keys(path.read_text(), source=str(path))
    return None


def ensure_local_key(data_dir: Path) -> Path:
    """Create the data dir's key file (owner-only) unless it exists; the demo's default."""
    path = key_file(data_dir)
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            # A random id: a key file made again over old histories is named as the wrong key.
            f.write(new_key_entry(f"local-{secrets.token_hex(3)}") + "\n")
    return path


class EncryptionCodec(PayloadCodec):
    """Encrypts with the current key; decrypts with whichever key id a payload names.

    Payloads not marked `binary/encrypted` (written before encryption was
    turned on) pass through unchanged, so existing histories keep replaying.
    """

    def __init__(self, keys: EncryptionKeys) -> None:
        super().__init__()
        self.keys = keys
        self._ciphers = {kid: AESGCM(k) for kid, k in keys.keys.items()}
        self._current = keys.current_id.encode()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encode_sync(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decode_sync(payloads)

    def encode_sync(self, payloads: Iterable[Payload]) -> list[Payload]:
        cipher = self._ciphers[self.keys.current_id]
        out = []
        for p in payloads:
            nonce = os.urandom(NONCE_BYTES)
            out.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_FIELD: self._current},
                    data=nonce + cipher.encrypt(nonce, p.SerializeToString(), None),
                )
            )
        return out

    def decode_sync(self, payloads: Iterable[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding", b"") != ENCODING:
                out.append(p)
                continue
            key_id = p.metadata.get(KEY_ID_FIELD, b"").decode()
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise KeyConfigError(
                    f"payload encrypted with key id {key_id!r}, which is not configured "
                    f"(configured: {', '.join(self.keys.ids)}); add it to VIM_ENCRYPTION_KEYS"
                )
            try:
                plain = cipher.decrypt(p.data[:NONCE_BYTES], p.data[NONCE_BYTES:], None)
            except InvalidTag:
                raise KeyConfigError(
                    f"payload with key id {key_id!r} does not authenticate: the key configured "
                    "under that id is not the one it was encrypted with, or the payload was altered"
                ) from None
            out.append(Payload.FromString(plain))
        return out


def data_converter(keys: EncryptionKeys | None) -> DataConverter:
    """The project's converter (pydantic), encrypted when keys are configured.

    With a codec, failure messages and stack traces move into the encoded
    attributes too, so an error quoting customer text is not readable in clear.
    """
    if keys is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
