"""DigestWorkflow: one per namespace (id ``digests``), sends each person one digest a day or week.

A durable loop: sleep until the next digest hour (``DraftPolicy``), then the
``send_digests`` activity gathers the lines the account workflows recorded
since and drafts one email per recipient. Started (or found running) with
every handoff (``cli/accounts.py``), so a portfolio never goes without one.
Continues as new every few weeks to keep its history short.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.digest import DigestRequest, DraftPolicy, next_digest_at
    from workflows import activity_defs as act
    from workflows.drafting import DELIVERY_RETRY

DIGEST_WORKFLOW_ID = "digests"
RUNS_BEFORE_CONTINUE = 28


@workflow.defn
class DigestWorkflow:
    def __init__(self) -> None:
        self._next: str = ""

    @workflow.query
    def next_digest(self) -> str:
        return self._next

    @workflow.run
    async def run(self, policy: DraftPolicy) -> int:
        sent = 0
        for _ in range(RUNS_BEFORE_CONTINUE):
            at = next_digest_at(workflow.now(), policy)
            if at is None:
                return sent  # digests are off
            self._next = at.isoformat()
            workflow.set_current_details(f"next {policy.digest} digest at {at:%Y-%m-%d %H:%M} UTC")
            await workflow.sleep(max(at - workflow.now(), timedelta(seconds=1)))
            try:
                result = await workflow.execute_activity(
                    act.send_digests,
                    DigestRequest(
                        until=at,
                        period="week" if policy.digest == "weekly" else "day",
                        max_items_per_section=policy.max_items_per_section,
                    ),
                    start_to_close_timeout=timedelta(minutes=10),
                    retry_policy=DELIVERY_RETRY,
                    summary=f"{policy.digest} digests up to {at:%Y-%m-%d %H:%M}",
                )
            except ActivityError as err:
                # a failed round never ends the loop: unsent items go out with the next digest
                cause = str(err.cause) if err.cause is not None else str(err)
                workflow.logger.warning("digest round at %s failed: %s", at, cause)
                workflow.set_current_details(
                    f"digest round at {at:%Y-%m-%d %H:%M} failed: {cause}"[:500]
                )
                continue
            sent += result.drafts
            if result.failed:
                workflow.set_current_details(
                    f"{len(result.failed)} digest(s) refused at {at:%Y-%m-%d %H:%M}: "
                    + "; ".join(result.failed)[:400]
                )
        workflow.continue_as_new(policy)
