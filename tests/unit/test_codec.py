"""Key configuration for the payload codec: what an operator gets wrong, and rotation."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from stack.codec import (
    EncryptionCodec,
    KeyConfigError,
    ensure_local_key,
    load_keys,
    new_key_entry,
    parse_keys,
)

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'"meeting notes"')


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("", "no key"),
        ("=" + base64.b64encode(b"x" * 32).decode(), "without an id"),
        ("k1=not-base64!!", "not valid base64"),
        ("k1=" + base64.b64encode(b"short").decode(), "5 bytes"),
        ("k1={0},k1={0}".format(base64.b64encode(b"x" * 32).decode()), "appears twice"),
    ],
)
def test_bad_key_specs_are_refused_with_the_reason(spec: str, reason: str) -> None:
    with pytest.raises(KeyConfigError, match=reason):
        parse_keys(spec)


def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    old, new = new_key_entry("2026-01"), new_key_entry("2026-06")
    before = EncryptionCodec(parse_keys(old)).encode_sync([PLAIN])[0]
    rotated = EncryptionCodec(parse_keys(f"{new}\n{old}"))
    after = rotated.encode_sync([PLAIN])[0]
    assert after.metadata["encryption-key-id"] == b"2026-06"
    assert b"meeting notes" not in before.data + after.data
    assert rotated.decode_sync([before, after]) == [PLAIN, PLAIN]
    with pytest.raises(KeyConfigError, match="2026-01"):
        EncryptionCodec(parse_keys(new)).decode_sync([before])


def test_a_different_key_under_the_same_id_is_named_not_a_crash() -> None:
    written = EncryptionCodec(parse_keys(new_key_entry("k1"))).encode_sync([PLAIN])
    with pytest.raises(KeyConfigError, match="'k1' does not authenticate"):
        EncryptionCodec(parse_keys(new_key_entry("k1"))).decode_sync(written)


def test_payloads_written_before_encryption_pass_through() -> None:
    codec = EncryptionCodec(parse_keys(new_key_entry()))
    assert codec.decode_sync([PLAIN]) == [PLAIN]


def test_environment_wins_over_the_local_key_file(tmp_path: Path) -> None:
    assert load_keys(None, tmp_path) is None
    path = ensure_local_key(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    (local_id,) = load_keys(None, tmp_path).ids
    assert local_id.startswith("local-")
    ensure_local_key(tmp_path)  # a second run keeps the key histories were written with
    assert load_keys(None, tmp_path).keys == parse_keys(path.read_text()).keys
    assert load_keys(new_key_entry("prod"), tmp_path).ids == ["prod"]
