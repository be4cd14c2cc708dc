"""The product feedback loop: ticket subjects and NPS comments grouped into themes per quarter.

Pure (no I/O, no clock). Themes are configuration (``FeedbackConfig`` in
``domain/engagement.py``): an item belongs to the first theme, in the
configured order, one of whose keywords it contains as a word or phrase
(case-insensitive; "export" matches "exports" and "exporting" but not
"reexport"); an item no keyword matches goes to the ``other_theme``. Every
item is counted exactly once, so the theme counts add up to the items.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.engagement import FeedbackConfig

QUARTER_RE = re.compile(r"^(\d{4})-Q([1-4])$")


class FeedbackItem(BaseModel):
    account_id: str
    source: Literal["ticket", "nps"]
    at: datetime
    text: str
    nps_score: int | None = None  # NPS comments: the score given with it


class ThemeCount(BaseModel):
    theme: str
    items: int
    tickets: int
    nps_comments: int
    detractors: int  # NPS comments scored 0-6
    accounts: list[str]  # distinct accounts, sorted
    examples: list[str] = Field(default_factory=list)  # customer text: untrusted


class FeedbackDigest(BaseModel):
    quarter: str
    items: int
    accounts: int
    themes: list[ThemeCount]  # most items first; the other theme last
    other_theme: str = "Other"  # the name of the bucket for items no keyword matched


def quarter_bounds(quarter: str) -> tuple[date, date]:
    """'2026-Q3' -> (2026-07-01, 2026-10-01): the first day and the day after the last."""
    m = QUARTER_RE.match(quarter)
    if not m:
        raise ValueError(f"quarter {quarter!r} must look like 2026-Q3")
    year, q = int(m.group(1)), int(m.group(2))
    start = date(year, 3 * q - 2, 1)
    end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    return start, end


def quarter_of(d: date) -> str:
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def previous_quarter(d: date) -> str:
    """The last full quarter before ``d``'s quarter."""
    q = (d.month - 1) // 3 + 1
    return f"{d.year - 1}-Q4" if q == 1 else f"{d.year}-Q{q - 1}"


def _pattern(keyword: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in keyword.lower().split()]
    return re.compile(r"(?<![\w])" + r"\s+".join(words), re.IGNORECASE)


def theme_of(text: str, cfg: FeedbackConfig) -> str:
    for theme in cfg.themes:
        if any(_pattern(k).search(text) for k in theme.keywords):
            return theme.name
    return cfg.other_theme


def group_themes(quarter: str, items: list[FeedbackItem], cfg: FeedbackConfig) -> FeedbackDigest:
    """The quarter's items (those dated inside it; others are left out) grouped into themes."""
    start, end = quarter_bounds(quarter)
    inside = [i for i in items if start <= i.at.date() < end and i.text.strip()]
    inside.sort(key=lambda i: (i.at, i.account_id, i.text))
    groups: dict[str, list[FeedbackItem]] = {}
    for item in inside:
        groups.setdefault(theme_of(item.text, cfg), []).append(item)
    order = {t.name: n for n, t in enumerate(cfg.themes)}
    themes = [
        ThemeCount(
            theme=name,
            items=len(g),
            tickets=sum(i.source == "ticket" for i in g),
            nps_comments=sum(i.source == "nps" for i in g),
            detractors=sum(i.source == "nps" and (i.nps_score or 0) <= 6 for i in g),
            accounts=sorted({i.account_id for i in g}),
            examples=list(dict.fromkeys(" ".join(i.text.split())[:200] for i in g))[
                : cfg.examples_per_theme
            ],
        )
        for name, g in groups.items()
    ]
    themes.sort(key=lambda t: (t.theme == cfg.other_theme, -t.items, order.get(t.theme, 99)))
    return FeedbackDigest(
        quarter=quarter,
        items=len(inside),
        accounts=len({i.account_id for i in inside}),
        themes=themes,
        other_theme=cfg.other_theme,
    )
