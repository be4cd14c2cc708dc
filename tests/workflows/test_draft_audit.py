"""The draft audit: a simulated month of the demo portfolio, every draft read and checked.

A CSM trusts a draft until its first wrong number. This runs a slice of the
demo portfolio (the reference account first, then one account per archetype)
through 30 days on the time-skipping server with the real worker and the
templates (no model key), reads every draft from the local outbox and checks
each stated date, day count, dollar figure, percentage and count against its
source rows (contracts, health snapshots, findings), plus contradictions,
empty sections, repeated sentences and currency (see bench/drafts.py).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from bench.drafts import audit, load_sources, read_drafts, simulate_month
from demo.portfolio import REFERENCE_ACCOUNT_ID
from tests.workflows.helpers import settings_for_test

pytestmark = pytest.mark.slow


async def test_every_draft_of_a_simulated_month_matches_its_sources(
    time_skipping_env: WorkflowEnvironment, db_dsn: str, tmp_path: Path
) -> None:
    settings = settings_for_test(tmp_path)
    run = await simulate_month(time_skipping_env, db_dsn, settings, accounts=12)
    drafts = await read_drafts(db_dsn, run.outbox)
    assert drafts, "the month produced no draft at all"
    sources = await load_sources(db_dsn, [h.account_id for h in run.accounts])
    problems = audit(drafts, sources, run.start, run.days)
    by_check = Counter(p.check for p in problems)
    shown = "\n".join(f"- [{p.check}] {p.draft}: {p.detail}" for p in problems[:40])
    assert not problems, f"{len(problems)} problems {dict(by_check)}:\n{shown}"

    # The reference account on the day of its handoff: the seed-000 case, in the draft.
    first = f"muda:{REFERENCE_ACCOUNT_ID}:{run.start}"
    muda = [d for d in drafts if d.purpose == "muda_license_plan" and first in d.key]
    assert muda, "no Muda draft for the reference account on its first day"
    assert "75 unused seats, about $45,000 a year" in muda[0].text
    assert "re-deploy" in muda[0].text.lower()
