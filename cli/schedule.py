"""`python starter.py schedule create|describe|trigger|delete`: the portfolio scan's Schedule.

One Temporal Schedule (id ``portfolio-scan``, visible in the Web UI's Schedules
page) starts PortfolioScanWorkflow (workflows/portfolio.py) every
``--every-hours`` hours (default 24, ``VIM_SCAN_EVERY_HOURS``) at ``--at`` UTC
(default 02:00, ``VIM_SCAN_AT_UTC``), scanning ``--chunk`` accounts per
activity (default 1000, ``VIM_SCAN_CHUNK``). A run still going when the next
is due is left to finish (overlap policy SKIP). ``create`` is idempotent: an
existing schedule is left as it is and described (``--update`` replaces its
spec and action with the ones given). Exit codes: 0 done, 2 bad option, 3 no
such schedule (describe, trigger, delete), 1 Temporal unreachable.

``create`` also creates the quarterly product feedback schedule (id
``product-feedback``): on the first day of each quarter at 06:00 UTC it drafts the
last full quarter's digest to the product owner (``--feedback-to``, else
``product_owner_email`` of VIM_ENGAGEMENT_CONFIG; without one it is not created).
``describe``, ``trigger`` and ``delete`` act on it with ``--feedback``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from cli.accounts import EXIT_CONFLICT, CliError
from stack.settings import Settings
from workflows.feedback_schedule import (
    FEEDBACK_SCHEDULE_ID,
    QUARTERLY_WORKFLOW_ID,
    QuarterlyFeedbackInput,
    QuarterlyFeedbackWorkflow,
)
from workflows.portfolio import (
    PORTFOLIO_SCAN_WORKFLOW_ID,
    PortfolioScanInput,
    PortfolioScanWorkflow,
)

SCHEDULE_ID = "portfolio-scan"


@dataclass(frozen=True)
class ScanSchedule:
    every_hours: float = 24.0
    at: timedelta = timedelta(hours=2)  # offset into each interval (UTC for a day)
    chunk: int = 1000

    @property
    def every(self) -> timedelta:
        return timedelta(hours=self.every_hours)


def parse_at(text: str) -> timedelta:
    """'HH:MM' -> an offset from 00:00 UTC."""
    try:
        hh, mm = text.split(":")
        h, m = int(hh), int(mm)
    except ValueError:
        raise CliError(f"--at {text!r}: expected HH:MM (UTC), e.g. 02:00") from None
    if not (0 <= h < 24 and 0 <= m < 60):
        raise CliError(f"--at {text!r}: hours 00-23, minutes 00-59")
    return timedelta(hours=h, minutes=m)


def schedule_from(every_hours: float | str, at: str | timedelta, chunk: int | str) -> ScanSchedule:
    """A validated schedule from options or environment strings."""
    try:
        hours, size = float(every_hours), int(chunk)
    except ValueError:
        raise CliError(
            f"--every-hours {every_hours!r} / --chunk {chunk!r}: expected numbers"
        ) from None
    if not (1 / 60 <= hours <= 24 * 31):
        raise CliError(f"--every-hours {every_hours}: between 1 minute and 31 days")
    if not (1 <= size <= 20_000):
        raise CliError(f"--chunk {chunk}: between 1 and 20000 accounts")
    offset = at if isinstance(at, timedelta) else parse_at(at)
    if offset >= timedelta(hours=hours):
        raise CliError(f"--at {at}: must fall within one interval of {hours:g} hours")
    return ScanSchedule(every_hours=hours, at=offset, chunk=size)


def schedule_from_env(env: Mapping[str, str] | None = None) -> ScanSchedule:
    env = os.environ if env is None else env
    return schedule_from(
        env.get("VIM_SCAN_EVERY_HOURS", "24"),
        env.get("VIM_SCAN_AT_UTC", "02:00"),
        env.get("VIM_SCAN_CHUNK", "1000"),
    )


def build_schedule(settings: Settings, sched: ScanSchedule) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            PortfolioScanWorkflow.run,
            PortfolioScanInput(
                chunk_size=sched.chunk, interval_seconds=int(sched.every.total_seconds())
            ),
            id=PORTFOLIO_SCAN_WORKFLOW_ID,  # the server appends the scheduled time
            task_queue=settings.task_queue,
            static_summary=f"portfolio scan, {sched.chunk} accounts per chunk",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=sched.every, offset=sched.at)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def build_feedback_schedule(settings: Settings, to: str, owner_name: str | None) -> Schedule:
    """First day of each quarter, 06:00 UTC: the last full quarter's feedback digest."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            QuarterlyFeedbackWorkflow.run,
            QuarterlyFeedbackInput(
                to=to, owner_name=owner_name, llm_task_queue=settings.llm_task_queue
            ),
            id=QUARTERLY_WORKFLOW_ID,
            task_queue=settings.task_queue,
            static_summary=f"quarterly product feedback digest to {to}",
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    month=[ScheduleRange(1), ScheduleRange(4), ScheduleRange(7), ScheduleRange(10)],
                    day_of_month=[ScheduleRange(1)],
                    hour=[ScheduleRange(6)],
                    minute=[ScheduleRange(0)],
                    second=[ScheduleRange(0)],
                    comment="first day of each quarter, 06:00 UTC",
                )
            ]
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def _ensure(client: Client, schedule_id: str, schedule: Schedule, update: bool) -> bool:
    try:
        await client.create_schedule(schedule_id, schedule)
        return True
    except ScheduleAlreadyRunningError:
        if update:

            def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=schedule)

            await client.get_schedule_handle(schedule_id).update(replace)
        return False


async def ensure_schedule(
    client: Client, settings: Settings, sched: ScanSchedule, update: bool = False
) -> bool:
    """Create the portfolio scan's schedule unless it exists (then, with `update`, replace
    its spec and action). True when created."""
    return await _ensure(client, SCHEDULE_ID, build_schedule(settings, sched), update)


async def ensure_feedback_schedule(
    client: Client, settings: Settings, to: str, owner_name: str | None, update: bool = False
) -> bool:
    """The quarterly feedback digest's schedule, like ``ensure_schedule``."""
    schedule = build_feedback_schedule(settings, to, owner_name)
    return await _ensure(client, FEEDBACK_SCHEDULE_ID, schedule, update)


async def describe_schedule(client: Client, schedule_id: str = SCHEDULE_ID) -> ScheduleDescription:
    try:
        return await client.get_schedule_handle(schedule_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(
                f"no schedule {schedule_id!r}: create it with `starter.py schedule create`",
                EXIT_CONFLICT,
            ) from None
        raise


def describe_lines(desc: ScheduleDescription) -> list[str]:
    spec, action = desc.schedule.spec, desc.schedule.action
    lines = [f"schedule      {desc.id}"]
    for iv in spec.intervals:
        lines.append(f"every         {iv.every} at offset {iv.offset or timedelta(0)} (UTC)")
    for cal in spec.calendars:
        lines.append(f"calendar      {cal.comment or cal}")
    if isinstance(action, ScheduleActionStartWorkflow):
        lines.append(f"starts        {action.workflow} on task queue {action.task_queue}")
    state = desc.schedule.state
    lines.append(
        f"paused        {'yes' if state.paused else 'no'}"
        + (f" ({state.note})" if state.note else "")
    )
    info = desc.info
    lines.append(
        f"runs so far   {info.num_actions}"
        + (
            f", {info.num_actions_skipped_overlap} skipped (overlap)"
            if info.num_actions_skipped_overlap
            else ""
        )
    )
    for t in info.next_action_times[:3]:
        lines.append(f"next          {t:%Y-%m-%d %H:%M} UTC")
    for r in info.recent_actions[-3:]:
        started = getattr(r.action, "workflow_id", "")
        lines.append(f"recent        {r.scheduled_at:%Y-%m-%d %H:%M} UTC {started}")
    return lines


# ------------------------------------------------------------------ commands


async def cmd_create(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    sched = schedule_from(args.every_hours, args.at, args.chunk)
    created = await ensure_schedule(client, settings, sched, update=args.update)
    what = "created" if created else ("updated" if args.update else "already exists (unchanged)")
    print(f"schedule {SCHEDULE_ID} {what}")
    for line in describe_lines(await describe_schedule(client)):
        print("  " + line)
    to, owner = args.feedback_to, args.feedback_owner
    if not to:
        print(
            f"schedule {FEEDBACK_SCHEDULE_ID} not created: no product owner "
            "(--feedback-to EMAIL, or product_owner_email in VIM_ENGAGEMENT_CONFIG)"
        )
        return 0
    created = await ensure_feedback_schedule(client, settings, to, owner, update=args.update)
    what = "created" if created else ("updated" if args.update else "already exists (unchanged)")
    print(f"schedule {FEEDBACK_SCHEDULE_ID} {what}")
    for line in describe_lines(await describe_schedule(client, FEEDBACK_SCHEDULE_ID)):
        print("  " + line)
    return 0


def _which(args: argparse.Namespace) -> str:
    return FEEDBACK_SCHEDULE_ID if getattr(args, "feedback", False) else SCHEDULE_ID


async def cmd_describe(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    for line in describe_lines(await describe_schedule(client, _which(args))):
        print(line)
    return 0


async def cmd_trigger(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    which = _which(args)
    await describe_schedule(client, which)  # a clear error when it does not exist
    await client.get_schedule_handle(which).trigger()
    what = "the last full quarter's feedback digest" if args.feedback else "a portfolio scan"
    print(f"schedule {which}: {what} starts now")
    return 0


async def cmd_delete(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    if args.feedback:
        await describe_schedule(client, FEEDBACK_SCHEDULE_ID)
        await client.get_schedule_handle(FEEDBACK_SCHEDULE_ID).delete()
        print(
            f"schedule {FEEDBACK_SCHEDULE_ID} deleted: send digests with `starter.py feedback --send`"
        )
        return 0
    await describe_schedule(client)
    await client.get_schedule_handle(SCHEDULE_ID).delete()
    print(
        f"schedule {SCHEDULE_ID} deleted: account workflows scan themselves daily again "
        "once their last scheduled summary is older than its interval plus 6 hours"
    )
    return 0


def add_schedule_parser(sub: Any) -> None:
    p = sub.add_parser(
        "schedule",
        help="the daily portfolio scan's Temporal Schedule (create, describe, trigger, delete)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_subparsers(dest="action", required=True)
    c = what.add_parser("create", help="create the schedule unless it exists (idempotent)")
    c.add_argument(
        "--every-hours",
        default=os.environ.get("VIM_SCAN_EVERY_HOURS", "24"),
        help="interval in hours (default 24, VIM_SCAN_EVERY_HOURS)",
    )
    c.add_argument(
        "--at",
        default=os.environ.get("VIM_SCAN_AT_UTC", "02:00"),
        help="offset into each interval, HH:MM UTC (default 02:00, VIM_SCAN_AT_UTC)",
    )
    c.add_argument(
        "--chunk",
        default=os.environ.get("VIM_SCAN_CHUNK", "1000"),
        help="accounts per activity (default 1000, VIM_SCAN_CHUNK)",
    )
    c.add_argument("--update", action="store_true", help="replace an existing schedule's spec")
    c.add_argument(
        "--feedback-to",
        default=None,
        metavar="EMAIL",
        help="product owner of the quarterly feedback digest (default: VIM_ENGAGEMENT_CONFIG)",
    )
    c.set_defaults(temporal=cmd_create, check=check_create)
    for name, fn, text in (
        ("describe", cmd_describe, "spec, next and recent runs"),
        ("trigger", cmd_trigger, "start a portfolio scan now"),
        ("delete", cmd_delete, "delete the schedule (accounts fall back to their own scans)"),
    ):
        sp = what.add_parser(name, help=text)
        sp.add_argument(
            "--feedback", action="store_true", help="the quarterly product feedback schedule"
        )
        sp.set_defaults(temporal=fn)


def check_create(args: argparse.Namespace) -> None:
    """The feedback digest's recipient: --feedback-to, else the configured product owner."""
    from pydantic import TypeAdapter, ValidationError
    from pydantic.networks import EmailStr

    from activities.engagement import engagement_config

    try:
        config = engagement_config()
    except ValueError as err:
        raise CliError(str(err)) from None
    to = args.feedback_to or config.product_owner_email
    if to:
        try:
            to = str(TypeAdapter(EmailStr).validate_python(to))
        except ValidationError:
            raise CliError(f"--feedback-to {to!r} is not an email address") from None
    args.feedback_to, args.feedback_owner = to, config.product_owner_name
