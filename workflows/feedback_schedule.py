"""The quarterly product feedback digest, sent by a Temporal Schedule.

The ``product-feedback`` Schedule (``starter.py schedule create``) starts
``QuarterlyFeedbackWorkflow`` on the first day of each quarter; it works out the last full
quarter from its own clock and starts ``ProductFeedbackWorkflow`` as a child with the id
``product-feedback-<quarter>`` (the id ``starter.py feedback --send`` uses), so a quarter
is drafted once however often the schedule fires or someone sends it by hand.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from domain.feedback import previous_quarter
    from workflows.engagement import FeedbackDigestInput, ProductFeedbackWorkflow

FEEDBACK_SCHEDULE_ID = "product-feedback"
QUARTERLY_WORKFLOW_ID = "product-feedback-quarterly"  # the server appends the scheduled time


class QuarterlyFeedbackInput(BaseModel):
    to: str
    owner_name: str | None = None
    llm_task_queue: str = "vim-llm"


def feedback_workflow_id(quarter: str) -> str:
    return f"product-feedback-{quarter}"


@workflow.defn
class QuarterlyFeedbackWorkflow:
    @workflow.run
    async def run(self, inp: QuarterlyFeedbackInput) -> str:
        quarter = previous_quarter(workflow.now().date())
        wf_id = feedback_workflow_id(quarter)
        try:
            handle = await workflow.start_child_workflow(
                ProductFeedbackWorkflow.run,
                FeedbackDigestInput(
                    quarter=quarter,
                    to=inp.to,
                    to_name=inp.owner_name,
                    owner_name=inp.owner_name,
                    llm_task_queue=inp.llm_task_queue,
                ),
                id=wf_id,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            return f"{quarter}: already drafted or under way ({wf_id}); nothing sent twice"
        result = await handle
        return (
            f"{quarter}: digest {result.status if result else 'not drafted'} to {inp.to} ({wf_id})"
        )
