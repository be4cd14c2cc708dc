"""Digest pacing and rendering (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.digest import DigestItem, DraftPolicy, next_digest_at, page_link, render_digest

T = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)  # a Wednesday


def item(n: int, category: str = "play", account: str = "acme") -> DigestItem:
    return DigestItem(
        item_key=f"k{n}",
        recipient="dana@example.com",
        recipient_name="Dana Reyes",
        account_id=account,
        account_name=account.title(),
        category=category,  # type: ignore[arg-type]
        headline=f"75 unused seats, about $45,000 a year ({n})",
        link="outbox pages/acme.md",
        as_of=T,
    )


def test_next_digest_daily_weekly_off() -> None:
    assert next_digest_at(T, DraftPolicy()) == datetime(2026, 12, 3, 7, tzinfo=UTC)
    assert next_digest_at(T.replace(hour=6), DraftPolicy()) == datetime(2026, 12, 2, 7, tzinfo=UTC)
    assert next_digest_at(T, DraftPolicy(digest="weekly")) == datetime(2026, 12, 7, 7, tzinfo=UTC)
    assert next_digest_at(T, DraftPolicy(digest="off")) is None


def test_policy_from_env_names_a_bad_value() -> None:
    p = DraftPolicy.from_env({"VIM_DIGEST": "weekly", "VIM_IMMEDIATE_CAP": "1"})
    assert (p.digest, p.immediate_cap_per_day) == ("weekly", 1)
    with pytest.raises(ValueError, match="digest"):
        DraftPolicy.from_env({"VIM_DIGEST": "hourly"})


def test_one_draft_groups_the_book_by_what_to_do_and_caps_sections() -> None:
    items = [item(i) for i in range(4)] + [item(9, "opportunity", "globex")]
    req = render_digest(
        "dana@example.com", "Dana Reyes", items, day=date(2026, 12, 3), period="day",
        idempotency_key="digest:day:dana:2026-12-03", max_items_per_section=3,
    )  # fmt: skip
    assert req.kind == "email_draft" and req.to == "dana@example.com"
    md = req.markdown
    assert "5 updates on 2 accounts" in md
    assert "## Plays to run (4)" in md and "## Opportunities (1)" in md
    assert md.count("- Acme:") == 3 and "1 more on the account pages." in md
    assert md.index("Plays to run") < md.index("Opportunities")


def test_page_links_are_urls_or_outbox_names_never_worker_paths() -> None:
    assert page_link("https://notion.so/x") == "https://notion.so/x"
    assert page_link("/srv/vim/.data/outbox/pages/a.md") == "outbox pages/a.md"
    assert page_link(None) is None


def test_reminders_are_not_all_called_stalled_phase_gates() -> None:
    """A CRM hygiene finding or an overdue action sat under 'Stalled phase gates'."""
    hygiene = item(1, "reminder").model_copy(update={"headline": "2 new CRM hygiene findings"})
    chase = item(2, "reminder").model_copy(update={"headline": "action A-2 is 1 day overdue"})
    md = render_digest(
        "dana@example.com", "Dana Reyes", [hygiene, chase], day=date(2026, 12, 3), period="day",
        idempotency_key="digest:day:dana:2026-12-03",
    ).markdown  # fmt: skip
    assert "## Reminders and follow-ups (2)" in md and "phase gate" not in md
