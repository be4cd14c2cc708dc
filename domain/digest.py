"""Less, better mail: what a person gets at once, and what waits for their digest.

Pure (no I/O, no clock). ``DraftPolicy`` says how mail is paced (digest
daily, weekly or off; a cap on immediate drafts per recipient and day; the
onboarding ramp of the Muda play); ``DigestItem`` is one line of a digest,
recorded by an account workflow (``add_digest_item``) with a link to the
account page that holds its detail; ``render_digest`` writes one recipient's
digest from their items, grouped by what they need to do.

Immediate drafts are only for what cannot wait: a CRITICAL churn risk, a
customer's churn notice and the save decision it needs (the save playbook's
drafts), each within the recipient's daily cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from domain.delivery import DeliveryRequest, DeliverySection, render_sections_markdown

DigestCadence = Literal["daily", "weekly", "off"]
Category = Literal[
    "risk", "play", "opportunity", "renewal", "qbr", "reminder", "churn", "onboarding"
]

CATEGORY_HEADINGS: dict[str, str] = {
    "churn": "Churn handling",
    "risk": "New risks",
    "play": "Plays to run",
    "renewal": "Renewals coming up",
    "opportunity": "Opportunities",
    "qbr": "QBRs ready for review",
    # Gate nudges, action chases, meeting prep and follow-ups, CRM hygiene, touchpoints.
    "reminder": "Reminders and follow-ups",
    "onboarding": "Onboarding drafts (briefs, questionnaires, CS plans)",
}


class DraftPolicy(BaseModel):
    """How a workflow paces the mail it drafts (``VIM_DIGEST``, ``VIM_IMMEDIATE_CAP``, ...)."""

    digest: DigestCadence = "daily"
    digest_hour_utc: int = Field(default=7, ge=0, le=23)
    immediate_cap_per_day: int = Field(default=3, ge=0)
    max_items_per_section: int = Field(default=15, ge=1)
    onboarding_ramp_days: int = Field(default=90, ge=0)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DraftPolicy:
        """The policy from environment variables; a bad value raises ValueError naming it."""
        values: dict[str, object] = {}
        for field, var in (
            ("digest", "VIM_DIGEST"),
            ("digest_hour_utc", "VIM_DIGEST_HOUR_UTC"),
            ("immediate_cap_per_day", "VIM_IMMEDIATE_CAP"),
            ("max_items_per_section", "VIM_DIGEST_MAX_ITEMS"),
            ("onboarding_ramp_days", "VIM_ONBOARDING_RAMP_DAYS"),
        ):
            if env.get(var):
                values[field] = env[var]
        try:
            return cls.model_validate(values)
        except ValueError as e:
            raise ValueError(f"draft policy from the environment: {e}") from None


class DigestItem(BaseModel):
    """One line of a digest (table ``digest_items``); ``urgent`` asks for an immediate draft."""

    item_key: str
    recipient: str
    recipient_name: str | None = None
    account_id: str
    account_name: str
    category: Category
    headline: str
    link: str | None = None  # the account page with the detail (Notion URL or outbox page)
    as_of: datetime
    urgent: bool = False
    immediate_cap: int = 0  # the recipient's cap on immediate drafts per day


class DigestRequest(BaseModel):
    until: datetime  # items recorded before this time go in
    period: Literal["day", "week"] = "day"
    max_items_per_section: int = 15


class DigestResult(BaseModel):
    drafts: int = 0
    items: int = 0
    recipients: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)  # "recipient: the channel's reason"


def next_digest_at(now: datetime, policy: DraftPolicy) -> datetime | None:
    """When the next digest goes out: the next digest hour (weekly: on a Monday)."""
    if policy.digest == "off":
        return None
    at = now.replace(hour=policy.digest_hour_utc, minute=0, second=0, microsecond=0)
    if at <= now:
        at += timedelta(days=1)
    if policy.digest == "weekly":
        at += timedelta(days=(7 - at.weekday()) % 7)
    return at


def page_link(target: str | None, outbox_root_name: str = "outbox") -> str | None:
    """A link a person can follow: the Notion URL, or the page's name in the outbox."""
    if not target:
        return None
    if target.startswith(("https://", "http://")):
        return target
    parts = target.replace("\\", "/").split("/")
    tail = parts[-2:] if len(parts) >= 2 else parts
    return f"outbox {'/'.join(tail)}"


def render_digest(
    recipient: str,
    recipient_name: str | None,
    items: list[DigestItem],
    *,
    day: date,
    period: Literal["day", "week"],
    idempotency_key: str,
    max_items_per_section: int = 15,
) -> DeliveryRequest:
    """One digest draft: the period's items for one recipient, grouped by what to do."""
    first = (recipient_name or "").split(" ")[0] or "there"
    accounts = len({i.account_id for i in items})
    when = f"week to {day}" if period == "week" else str(day)
    intro = (
        f"Hi {first}, {len(items)} update{'s' if len(items) != 1 else ''} on "
        f"{accounts} account{'s' if accounts != 1 else ''} of your book ({when}). "
        "Each line links to the account page with the detail and the draft text."
    )
    sections = [DeliverySection(paragraphs=[intro])]
    for category, heading in CATEGORY_HEADINGS.items():
        mine = [i for i in items if i.category == category]
        if not mine:
            continue
        lines = [
            f"{i.account_name}: {i.headline}"
            + (f" (as of {i.as_of.date()})" if i.as_of.date() != day else "")
            + (f" ({i.link})" if i.link else "")
            for i in mine[:max_items_per_section]
        ]
        lines = list(dict.fromkeys(lines))
        more = len(mine) - max_items_per_section
        sections.append(
            DeliverySection(
                heading=f"{heading} ({len(mine)})",
                bullets=lines,
                note=f"{more} more on the account pages." if more > 0 else None,
            )
        )
    title = f"Your book, {when}: {len(items)} update{'s' if len(items) != 1 else ''}"
    return DeliveryRequest(
        idempotency_key=idempotency_key,
        account_id="digest",
        kind="email_draft",
        purpose="digest",
        to=recipient,
        to_name=recipient_name,
        subject=title,
        title=title,
        markdown=render_sections_markdown(title, sections),
        sections=sections,
        metadata={"period": period, "day": str(day)},
    )
