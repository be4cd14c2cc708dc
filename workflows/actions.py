"""Action items of an account and the chasing of overdue ones (orchestration only).

The rules are in ``domain/actions.py``. ``record`` turns the action items of a follow-up
(``workflows/engagement.py:_followups``) into durable actions (state only); ``run_due``,
called once per pass after the follow-ups, chases the overdue ones and writes changed rows
to Postgres (``record_actions``). ``complete`` is the ``complete_action`` update. Everything
is behind the ``ACTIONS_PATCH`` marker, so histories recorded before it replay unchanged.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from domain.actions import (
        RECORDS_MAX,
        AccountAction,
        ActionConfig,
        ActionRecords,
        Contact,
        ContactsRequest,
        chase_due,
        chase_facts,
        completion_refusal,
        match_owner,
        new_actions,
        prune,
    )
    from domain.messages import ActionDoneUpdate, InteractionSignal
    from domain.touchpoints import ActionItem
    from workflows import activity_defs as act
    from workflows.context import PlaybookContext
    from workflows.drafting import deliver_narrative, draft_for_csm, narrative, publish, survived

# workflow.patched id: action items kept and chased (never reuse or rename it).
ACTIONS_PATCH = "account-actions-chased"
DB_RETRY_POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1), maximum_attempts=5
)


def _config(ctx: PlaybookContext) -> ActionConfig:
    return ctx.s.actions.config or ActionConfig()


def record(ctx: PlaybookContext, it: InteractionSignal, items: list[ActionItem]) -> None:
    """The follow-up's action items become the account's open actions (state only)."""
    if not items or not workflow.patched(ACTIONS_PATCH):
        return
    st = ctx.s.actions
    if any(a.interaction_id == it.interaction_id for a in st.actions):
        return  # already taken (the follow-up is drafted once per interaction)
    made = new_actions(
        items,
        interaction_id=it.interaction_id,
        interaction_kind=it.kind,
        agreed_on=it.occurred_at.date(),
        first_number=st.next_number,
        cfg=_config(ctx),
    )
    st.next_number += len(made)
    st.actions.extend(made)
    ctx.log(
        "decision",
        "actions recorded: "
        + "; ".join(f"{a.action_id} {a.owner or 'no owner'} due {a.due_on}" for a in made),
    )


def check_complete(ctx: PlaybookContext, upd: ActionDoneUpdate) -> None:
    """Validator of ``complete_action``: an unknown or already done id is refused."""
    reason = completion_refusal(ctx.s.actions, upd.action_id)
    if reason:
        raise ValueError(reason)


def complete(ctx: PlaybookContext, upd: ActionDoneUpdate) -> str:
    a = ctx.s.actions.find(upd.action_id)
    assert a is not None  # the validator refused unknown ids
    today = workflow.now().date()
    late = a.days_overdue(today)
    a.status, a.done_on, a.done_by, a.done_note = "done", today, upd.done_by, upd.note
    a.stored = False
    ctx.log(
        "update",
        f"action {a.action_id} done by {upd.done_by}"
        + (f", {late} day(s) after its due date" if late else "")
        + (f": {upd.note}" if upd.note else ""),
    )
    return f"action {a.action_id} marked done ({a.owner or 'no owner'}: {a.text})"


def view_lines(ctx: PlaybookContext) -> list[str]:
    today = workflow.now().date()
    acts = ctx.s.actions.actions
    open_ = sorted((a for a in acts if a.status == "open"), key=lambda a: (a.due_on, a.action_id))
    done = [a for a in acts if a.status == "done"]
    return [a.line(today) for a in [*open_, *done]]


async def run_due(ctx: PlaybookContext) -> None:
    """Chase what is overdue, then write the changed rows."""
    if not workflow.patched(ACTIONS_PATCH):
        return
    st = ctx.s.actions
    cfg = _config(ctx)
    today = workflow.now().date()
    due = [a for a in st.actions if chase_due(a, today, cfg)]
    if due:
        await _chase(ctx, due, cfg)
    await _store(ctx)
    prune(st, today)


async def _chase(ctx: PlaybookContext, due: list[AccountAction], cfg: ActionConfig) -> None:
    s = ctx.s
    now = workflow.now()
    contacts: list[Contact] = []
    if any(a.owner for a in due):
        try:
            contacts = await workflow.execute_activity(
                act.action_contacts,
                ContactsRequest(account_id=s.account_id, as_of=now),
                start_to_close_timeout=ctx.activity_timeout,
                retry_policy=DB_RETRY_POLICY,
                summary="stakeholders an overdue action may be chased with",
            )
        except FailureError as err:
            await survived("reading the stakeholders for action chases", err)
            return  # the next pass tries again; nothing was counted
    h = s.handoff
    for a in due:
        to = match_owner(a.owner, contacts, now.date())
        a.chases += 1
        a.last_chased_on = now.date()
        a.owner_email = to.email if to is not None else a.owner_email
        a.stored = False
        facts = chase_facts(h, now, a, cfg, to=to)
        occurrence = f"{a.action_id}:{a.chases}"
        # The notes often carry the date already ("send the user list by 2026-12-03").
        due_note = f" (due {a.due_on})" if a.due_on.isoformat() not in a.text[:80] else ""
        subject = f"Reminder: {a.text[:80]}{due_note}"
        if to is not None and to.email:
            ctx.log("decision", f"action {a.action_id} overdue: reminder {a.chases} drafted to {to.name}")  # fmt: skip
            await deliver_narrative(
                ctx,
                await narrative(ctx, facts),
                facts,
                kind="email_draft",
                occurrence=occurrence,
                to=to.email,
                to_name=to.name,
                subject=subject,
            )
        else:
            why = "no owner" if not a.owner else f"{a.owner} is not a stakeholder with an email"
            ctx.log("decision", f"action {a.action_id} overdue: reminder {a.chases} for the CSM ({why})")  # fmt: skip
            await draft_for_csm(
                ctx,
                facts,
                category="reminder",
                occurrence=occurrence,
                subject=f"Overdue action {a.action_id} at {h.name}: {a.text[:60]}",
            )
        await publish(
            ctx,
            "action.chased",
            {
                "action_id": a.action_id,
                "owner": a.owner,
                "to_owner": to is not None,
                "due_on": a.due_on.isoformat(),
                "days_overdue": a.days_overdue(now.date()),
                "chase": a.chases,
            },
            occurrence,
        )


async def _store(ctx: PlaybookContext) -> None:
    st = ctx.s.actions
    changed = [a for a in st.actions if not a.stored][:RECORDS_MAX]
    if not changed:
        return
    sent = {a.action_id: a.model_dump(exclude={"stored"}) for a in changed}
    try:
        await workflow.execute_activity(
            act.record_actions,
            ActionRecords(account_id=ctx.s.account_id, actions=changed),
            start_to_close_timeout=ctx.activity_timeout,
            retry_policy=DB_RETRY_POLICY,
            summary=f"action items: {len(changed)} row(s)",
        )
    except FailureError as err:
        await survived("writing the action items", err)
        return  # still marked unstored: the next pass writes them
    for a in changed:  # an update during the write leaves its action for the next pass
        a.stored = a.model_dump(exclude={"stored"}) == sent[a.action_id]
