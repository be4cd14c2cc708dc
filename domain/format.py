"""Small text helpers shared by every module that writes for people (pure, no I/O).

Number formatters live with the numbers they format in ``domain/health.py``
(``fmt_num``, ``fmt_money``, ``fmt_pct``, ``plural``); this module holds the
text ones.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError


def as_utc(ts: datetime) -> datetime:
    """A timestamp in UTC; a naive one is taken as UTC (so aware and naive values compare)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def clip(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def validation_errors(err: ValidationError, limit: int = 5, root: str = "payload") -> str:
    """A pydantic error as one line: ``field.path: message; ...`` (at most ``limit`` errors)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or root}: {e['msg']}" for e in err.errors()[:limit]
    )
