"""Account commands of `starter.py`: handoff, list, describe, signals and updates.

Input is validated here, before anything reaches Temporal: a bad file gets
exit code 2 and a message naming each bad field, and nothing is started or
sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import weakref
from collections.abc import Iterable
from datetime import UTC
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from domain.handoff import Handoff, account_workflow_id
from domain.limits import SIGNAL_PAYLOAD_BYTES, payload_bytes
from domain.messages import (
    SIGNALS,
    UPDATES,
    DecisionUpdate,
    MilestoneUpdate,
    PauseUpdate,
    ReassignUpdate,
)
from domain.state import AccountView, AccountWorkflowInput
from stack.settings import Settings
from workflows.search_attributes import (
    ACCOUNT_PHASE,
    ACCOUNT_TIER,
    ARR,
    CSM_OWNER,
    RENEWAL_DATE,
)

EXIT_BAD_INPUT = 2
EXIT_CONFLICT = 3


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def read_json(source: str) -> Any:
    """A JSON document from a file path or '-' for stdin."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as err:
        raise CliError(f"cannot read {source}: {err.strerror}") from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(
            f"{source} is not JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from err
    except RecursionError:
        raise CliError(f"{source} is nested too deeply to be a valid document") from None


def validate(model: type[BaseModel], data: Any, what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        lines = [f"{what} is invalid ({err.error_count()} problem(s)):"]
        for e in err.errors():
            field = ".".join(str(p) for p in e["loc"]) or "(document)"
            lines.append(f"  - {field}: {e['msg']}")
        raise CliError("\n".join(lines)) from err


# ------------------------------------------------------------------ handoff


def start_args(handoff: Handoff, settings: Settings) -> dict[str, Any]:
    """Arguments of `client.start_workflow` for a handoff (also used by the demo)."""
    c = handoff.contract
    from datetime import datetime

    return {
        "id": account_workflow_id(handoff.account_id),
        "task_queue": settings.task_queue,
        "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
        "id_conflict_policy": WorkflowIDConflictPolicy.FAIL,
        "static_summary": f"{handoff.name} ({handoff.tier}), CSM {handoff.csm_owner}",
        "static_details": (
            f"Account lifecycle of {handoff.name} ({handoff.account_id}). Contract {c.start_date} to "
            f"{c.end_date}, {c.seats_purchased} seats, ARR ${c.arr:,.0f}, modules {', '.join(c.licensed_modules)}."
        ),
        "search_attributes": _initial_attributes(
            handoff, datetime(c.end_date.year, c.end_date.month, c.end_date.day, tzinfo=UTC)
        ),
    }


def _initial_attributes(handoff: Handoff, renewal: Any) -> Any:
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    from domain.lifecycle import Phase

    return TypedSearchAttributes(
        [
            SearchAttributePair(ACCOUNT_PHASE, Phase.TRANSITION.slug),
            SearchAttributePair(RENEWAL_DATE, renewal),
            SearchAttributePair(ARR, float(handoff.contract.arr)),
            SearchAttributePair(CSM_OWNER, handoff.csm_owner),
            SearchAttributePair(ACCOUNT_TIER, handoff.tier),
        ]
    )


# Per client and task queue, the one start of the digest workflow this process made: a bulk
# handoff calls start_account thousands of times, and every start of the same workflow id
# contends for one lock on the server ("Workflow is busy" under 32 concurrent handoffs).
_digest_starts: weakref.WeakKeyDictionary[Client, dict[str, asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)


async def ensure_digests(client: Client, settings: Settings) -> None:
    """Start the digest workflow (one per namespace) unless it runs or digests are off.

    Once per client and task queue in a process; a failed start is tried again next time."""
    if settings.policy.digest == "off":
        return
    started = _digest_starts.setdefault(client, {})
    task = started.get(settings.task_queue)
    if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
        task = asyncio.ensure_future(_start_digests(client, settings))
        started[settings.task_queue] = task
    await asyncio.shield(task)


async def _start_digests(client: Client, settings: Settings) -> None:
    from workflows.digest import DIGEST_WORKFLOW_ID, DigestWorkflow

    try:
        await client.start_workflow(
            DigestWorkflow.run,
            settings.policy,
            id=DIGEST_WORKFLOW_ID,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"{settings.policy.digest} digest per recipient",
        )
    except WorkflowAlreadyStartedError:
        pass


async def start_account(client: Client, handoff: Handoff, settings: Settings) -> str:
    """Start one account workflow. Raises CliError(EXIT_CONFLICT) if it already runs."""
    await ensure_digests(client, settings)
    try:
        handle = await client.start_workflow(
            "AccountLifecycleWorkflow",
            AccountWorkflowInput(
                handoff=handoff,
                sales_task_queue=settings.sales_task_queue,
                llm_task_queue=settings.llm_task_queue,
                policy=settings.policy,
            ),
            **start_args(handoff, settings),
        )
    except WorkflowAlreadyStartedError as err:
        raise CliError(
            f"account {handoff.account_id} is already handed off (workflow {account_workflow_id(handoff.account_id)}); "
            "nothing started. Use `starter.py signal contract ...` to change its contract.",
            EXIT_CONFLICT,
        ) from err
    return handle.id


def check_handoff(args: argparse.Namespace) -> None:
    """Runs before connecting: bad input is reported even when Temporal is down."""
    args.handoff = validate(Handoff, read_json(args.file), f"handoff {args.file}")


async def cmd_handoff(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    handoff: Handoff = args.handoff
    wf_id = await start_account(client, handoff, settings)
    print(f"started {wf_id} for {handoff.name} on {settings.task_queue}")
    print(f"  see it: {settings.ui_url}/namespaces/{settings.temporal_namespace}/workflows/{wf_id}")
    return 0


# ----------------------------------------------------------- list/describe


async def cmd_list(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    query = "WorkflowType = 'AccountLifecycleWorkflow'"
    if args.status != "all":
        query += " AND ExecutionStatus = 'Running'"
    if args.query:
        query += f" AND ({args.query})"
    rows = []
    async for wf in client.list_workflows(query, limit=args.limit):
        sa = wf.typed_search_attributes
        rows.append(
            [
                wf.id.removeprefix("account-"),
                sa.get(ACCOUNT_PHASE) or "",
                _sa(sa, "HealthBand"),
                _sa(sa, "HealthScore"),
                _sa(sa, "ChurnRisk"),
                (renewal.date().isoformat() if (renewal := sa.get(RENEWAL_DATE)) else ""),
                f"{sa.get(ARR):,.0f}" if sa.get(ARR) is not None else "",
                sa.get(CSM_OWNER) or "",
                wf.status.name.lower() if wf.status else "",
            ]
        )
    print_table(
        ["account", "phase", "band", "score", "churn", "renewal", "ARR", "CSM", "status"], rows
    )
    print(f"{len(rows)} account(s). Query: {query}")
    return 0


def _sa(sa: Any, name: str) -> str:
    for pair in sa:
        if pair.key.name == name:
            v = pair.value
            return f"{v:.1f}" if isinstance(v, float) else str(v)
    return ""


def print_table(header: list[str], rows: Iterable[list[str]], right: Iterable[int] = ()) -> None:
    """Columns padded to their widest cell; the columns in ``right`` (numbers) right-aligned."""
    rows = list(rows)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    ralign = set(right)
    for r in [header, *rows]:
        cells = [
            str(x).rjust(w) if i in ralign else str(x).ljust(w)
            for i, (x, w) in enumerate(zip(r, widths, strict=False))
        ]
        print("  ".join(cells).rstrip())


async def cmd_describe(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    handle = client.get_workflow_handle(account_workflow_id(args.account))
    try:
        desc = await handle.describe()
    except RPCError as err:
        raise CliError(f"no workflow for account {args.account!r}: {err.message}") from err
    if desc.status != WorkflowExecutionStatus.RUNNING:
        print(
            f"account {args.account}: workflow is {desc.status.name.lower() if desc.status else 'unknown'}"
        )
        return 0
    view: AccountView = await handle.query("view", result_type=AccountView)
    if args.json:
        print(view.model_dump_json(indent=2))
        return 0
    print(
        f"{view.name} ({view.account_id})  phase: {view.phase}{'  [PAUSED]' if view.paused else ''}"
    )
    print(
        f"  health {view.score} {view.band}   churn risk {view.churn_level}   renewal {view.renewal_date}   ARR ${view.arr:,.0f}   CSM {view.csm_owner}"
    )
    if view.band_reason:
        print(f"  unscored: {view.band_reason}")
    if view.sentiment is not None:
        print(f"  {view.sentiment.line()} (beside the score, never replacing it)")
    if view.forecast is not None:
        print(f"  {view.forecast.line()}")
    if view.waiting_for:
        print(f"  {view.waiting_for}")
    for d in view.drivers:
        print(f"  driver: {d}")
    for f in view.open_findings:
        dollars = f" ${f.get('dollar_impact'):,.0f}/yr" if f.get("dollar_impact") else ""
        print(f"  finding [{f.get('kind')}/{f.get('severity')}]{dollars}: {f.get('title')}")
    for o in view.opportunities:
        print(
            f"  opportunity [{o.get('opportunity_type')}] ~${o.get('estimated_arr_impact', 0):,.0f} ARR ({o.get('opportunity_id')})"
        )
    if view.maturity is not None and view.maturity.overall is not None:
        print(f"  maturity {view.maturity.overall} of 5 ({view.maturity.stage})")
    for c in view.success_criteria:
        print(f"  criterion: {c.line}")
    if view.onboarding_plan:
        print(f"  onboarding plan: {view.onboarding_plan}")
    if view.time_to_first_value:
        print(f"  time to first value: {view.time_to_first_value}")
    for a in view.advocacy_asks:
        print(f"  advocacy ask: {a}")
    if view.advocacy_blocked:
        print("  no advocacy ask: " + "; ".join(view.advocacy_blocked))
    for a in view.actions:
        print(f"  action {a}")
    for line in view.crm_hygiene:
        print(f"  hygiene {line}")
    print("  next: " + "; ".join(view.next_checkpoints))
    print(f"  timeline (last {min(len(view.timeline), args.tail)} of {len(view.timeline)}):")
    for t in view.timeline[-args.tail :]:
        print(f"    {t.at:%Y-%m-%d %H:%M} {t.kind:<9} {t.text}")
    return 0


# ------------------------------------------------------- signals & updates


def check_signal(args: argparse.Namespace) -> None:
    args.message = validate(SIGNALS[args.signal], read_json(args.file), f"{args.signal} signal")
    size = payload_bytes(args.message.model_dump(mode="json"))
    if size > SIGNAL_PAYLOAD_BYTES:
        raise CliError(
            f"{args.signal} signal is {size:,} bytes, over the {SIGNAL_PAYLOAD_BYTES:,}-byte limit "
            "of one signal: split it (e.g. smaller usage batches)"
        )


async def cmd_signal(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    msg = args.message
    handle = client.get_workflow_handle(account_workflow_id(args.account))
    await _require_running(handle, args.account)
    await handle.signal(args.signal, msg)
    print(f"sent {args.signal} to account-{args.account}")
    return 0


async def _require_running(handle: Any, account: str) -> None:
    try:
        desc = await handle.describe()
    except RPCError as err:
        raise CliError(
            f"unknown account {account!r}: no workflow {handle.id} ({err.message})"
        ) from err
    if desc.status != WorkflowExecutionStatus.RUNNING:
        raise CliError(
            f"account {account!r} is not running (workflow {desc.status.name.lower()})",
            EXIT_CONFLICT,
        )


async def send_update(client: Client, account: str, name: str, msg: BaseModel) -> int:
    handle = client.get_workflow_handle(account_workflow_id(account))
    await _require_running(handle, account)
    try:
        result = await handle.execute_update(name, msg)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        raise CliError(
            f"{name} rejected: {getattr(cause, 'message', None) or cause}", EXIT_CONFLICT
        ) from err
    print(result.get("message") if isinstance(result, dict) else result)
    return 0


def check_questionnaire(args: argparse.Namespace) -> None:
    args.message = validate(
        UPDATES["submit_questionnaire"], read_json(args.file), "questionnaire answers"
    )


async def cmd_update(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    name = args.update_name
    if name == "approve_cs_plan":
        msg = validate(UPDATES[name], read_json(args.file), "CS plan")
    elif name == "submit_questionnaire":
        msg = args.message  # validated by check_questionnaire before Temporal is contacted
    elif name == "decide_save":
        msg = validate(
            DecisionUpdate,
            {"decided_by": args.by, "approve": args.approve, "note": args.note},
            "decision",
        )
    elif name == "decide_expansion":
        msg = validate(
            DecisionUpdate,
            {
                "decided_by": args.by,
                "approve": args.approve,
                "target_id": args.opportunity,
                "note": args.note,
            },
            "decision",
        )
    elif name == "mark_milestone":
        msg = validate(
            MilestoneUpdate,
            {"milestone": args.milestone, "marked_by": args.by, "note": args.note},
            "milestone",
        )
    elif name == "set_paused":
        msg = validate(
            PauseUpdate, {"paused": args.paused, "by": args.by, "reason": args.reason}, "pause"
        )
    elif name == "reassign_csm":
        msg = validate(
            ReassignUpdate,
            {"csm_owner": args.csm, "csm_email": args.email, "by": args.by},
            "reassignment",
        )
    else:  # pragma: no cover - argparse restricts the choices
        raise CliError(f"unknown update {name}")
    return await send_update(client, args.account, name, msg)


def add_account_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "handoff", help="start an account's lifecycle workflow from a sales-handoff JSON"
    )
    p.add_argument("file", help="handoff JSON file, or - for stdin")
    p.set_defaults(temporal=cmd_handoff, check=check_handoff)

    p = sub.add_parser("list", help="list account workflows with phase, health and renewal")
    p.add_argument("--query", help="extra visibility filter, e.g. \"HealthBand = 'RED'\"")
    p.add_argument("--status", choices=["running", "all"], default="running")
    p.add_argument("--limit", type=int, default=500)
    p.set_defaults(temporal=cmd_list)

    p = sub.add_parser("describe", help="one account: phase, health, drivers, findings, timeline")
    p.add_argument("account")
    p.add_argument("--tail", type=int, default=15)
    p.add_argument("--json", action="store_true")
    p.set_defaults(temporal=cmd_describe)

    p = sub.add_parser(
        "signal", help="send a signal (usage, ticket, nps, ...) from a JSON file or stdin"
    )
    p.add_argument("signal", choices=sorted(SIGNALS))
    p.add_argument("account")
    p.add_argument("file", help="JSON file, or - for stdin")
    p.set_defaults(temporal=cmd_signal, check=check_signal)

    p = sub.add_parser(
        "approve-plan",
        help="approve the CS plan (JSON: approved_by, objectives, success_metrics, "
        "success_criteria; without success_criteria the draft's criteria are adopted)",
    )
    p.add_argument("account")
    p.add_argument("file")
    p.set_defaults(temporal=cmd_update, update_name="approve_cs_plan")

    p = sub.add_parser(
        "questionnaire",
        help="record the alignment questionnaire's answers (JSON: answered_by, answers: "
        "[{question_id, level 1-5, note}])",
    )
    p.add_argument("account")
    p.add_argument("file", help="JSON file, or - for stdin")
    p.set_defaults(
        temporal=cmd_update, update_name="submit_questionnaire", check=check_questionnaire
    )

    for name, target in (("decide-save", "decide_save"), ("decide-expansion", "decide_expansion")):
        p = sub.add_parser(name, help=f"approve or decline ({target.split('_')[1]})")
        p.add_argument("account")
        if target == "decide_expansion":
            p.add_argument("opportunity", help="opportunity id, as `describe` shows it")
        g = p.add_mutually_exclusive_group(required=True)
        g.add_argument("--approve", dest="approve", action="store_true")
        g.add_argument("--decline", dest="approve", action="store_false")
        p.add_argument("--by", required=True)
        p.add_argument("--note")
        p.set_defaults(temporal=cmd_update, update_name=target)

    p = sub.add_parser("milestone", help="mark a lifecycle milestone reached")
    p.add_argument("account")
    p.add_argument("milestone")
    p.add_argument("--by", required=True)
    p.add_argument("--note")
    p.set_defaults(temporal=cmd_update, update_name="mark_milestone")

    for name, paused in (("pause", True), ("resume", False)):
        p = sub.add_parser(name, help=f"{name} an account's automation")
        p.add_argument("account")
        p.add_argument("--by", required=True)
        p.add_argument("--reason")
        p.set_defaults(temporal=cmd_update, update_name="set_paused", paused=paused)

    p = sub.add_parser("reassign", help="reassign the account's CSM")
    p.add_argument("account")
    p.add_argument("--csm", required=True)
    p.add_argument("--email", required=True)
    p.add_argument("--by", required=True)
    p.set_defaults(temporal=cmd_update, update_name="reassign_csm")
