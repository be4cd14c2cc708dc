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
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from cli.accounts import EXIT_CONFLICT, CliError
from stack.settings import Settings
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


async def ensure_schedule(
    client: Client, settings: Settings, sched: ScanSchedule, update: bool = False
) -> bool:
    """Create the portfolio scan's schedule unless it exists (then, with `update`, replace
    its spec and action). True when created."""
    schedule = build_schedule(settings, sched)
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
        return True
    except ScheduleAlreadyRunningError:
        if update:

            def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=schedule)

            await client.get_schedule_handle(SCHEDULE_ID).update(replace)
        return False


async def describe_schedule(client: Client) -> ScheduleDescription:
    try:
        return await client.get_schedule_handle(SCHEDULE_ID).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(
                f"no schedule {SCHEDULE_ID!r}: create it with `starter.py schedule create`",
                EXIT_CONFLICT,
            ) from None
        raise


def describe_lines(desc: ScheduleDescription) -> list[str]:
    spec, action = desc.schedule.spec, desc.schedule.action
    lines = [f"schedule      {desc.id}"]
    for iv in spec.intervals:
        lines.append(f"every         {iv.every} at offset {iv.offset or timedelta(0)} (UTC)")
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
    return 0


async def cmd_describe(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    for line in describe_lines(await describe_schedule(client)):
        print(line)
    return 0


async def cmd_trigger(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    await describe_schedule(client)  # a clear error when it does not exist
    await client.get_schedule_handle(SCHEDULE_ID).trigger()
    print(f"schedule {SCHEDULE_ID}: a portfolio scan starts now")
    return 0


async def cmd_delete(client: Client, settings: Settings, args: argparse.Namespace) -> int:
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
    c.set_defaults(temporal=cmd_create)
    for name, fn, text in (
        ("describe", cmd_describe, "spec, next and recent runs"),
        ("trigger", cmd_trigger, "start a portfolio scan now"),
        ("delete", cmd_delete, "delete the schedule (accounts fall back to their own scans)"),
    ):
        what.add_parser(name, help=text).set_defaults(temporal=fn)
