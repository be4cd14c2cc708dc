"""The local outbox: where every channel writes when it has no credentials.

Files a person can open: QBR pages as Markdown, email drafts as .eml (with
``X-Unsent: 1``, so mail clients open them as drafts), chat alerts and Notion
health updates as JSON. The file name is derived from the idempotency key, so
a retried delivery overwrites its own file instead of adding one; writes are
atomic (temp file + rename), so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from domain.delivery import DeliveryKind

SUBDIRS: dict[str, tuple[str, str]] = {
    # kind: (folder, extension)
    "qbr_page": ("qbr", ".md"),
    "account_page": ("pages", ".md"),
    "email_draft": ("email", ".eml"),
    "chat_alert": ("chat", ".json"),
    "health_update": ("notion", ".json"),
}


def outbox_name(idempotency_key: str) -> str:
    """A readable, filesystem-safe name that is unique per key."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", idempotency_key).strip("._-")[:120] or "delivery"
    return f"{slug}.{hashlib.sha256(idempotency_key.encode()).hexdigest()[:8]}"


class Outbox:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, kind: DeliveryKind, idempotency_key: str) -> Path:
        folder, ext = SUBDIRS[kind]
        return self.root / folder / f"{outbox_name(idempotency_key)}{ext}"

    def write_text(self, kind: DeliveryKind, idempotency_key: str, text: str) -> Path:
        return self._write(self.path_for(kind, idempotency_key), text.encode("utf-8"))

    def write_bytes(self, kind: DeliveryKind, idempotency_key: str, data: bytes) -> Path:
        return self._write(self.path_for(kind, idempotency_key), data)

    def write_json(self, kind: DeliveryKind, idempotency_key: str, obj: Any) -> Path:
        text = json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n"
        return self._write(self.path_for(kind, idempotency_key), text.encode("utf-8"))

    @staticmethod
    def _write(path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
