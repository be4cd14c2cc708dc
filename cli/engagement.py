"""`starter.py ttfv` and `starter.py feedback`: the Value Activation and feedback-loop reports.

- ``ttfv [--by month|quarter|tier] [--as-of DATE] [--json]``: time to first
  value per cohort (``domain/activation.py``), from the ``value.first_value``
  events the account workflows publish when an account reaches first value.
  Reads Postgres only.
- ``feedback QUARTER [--json]``: the quarter's ticket subjects and NPS comments
  grouped into themes (``domain/feedback.py``, themes from
  ``VIM_ENGAGEMENT_CONFIG``). ``--send [--to EMAIL]`` also starts
  ProductFeedbackWorkflow (id ``product-feedback-<quarter>``: started twice,
  drafted once), which drafts the digest to the product owner (``--to``, else
  the configured ``product_owner_email``).

Wiring (starter.py): ``add_engagement_parsers(subparsers)``; they set ``run``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from typing import Any

from cli.score import CommandError, connect_db, parse_as_of
from domain.activation import TtfvRecord, ttfv_cohorts
from domain.feedback import QUARTER_RE, previous_quarter

TTFV_COLUMNS = [
    ("cohort", "cohort"),
    ("accounts", "accounts"),
    ("reached", "reached"),
    ("median_days", "median days"),
    ("mean_days", "mean days"),
    ("fastest_days", "fastest"),
    ("slowest_days", "slowest"),
]


def _quarter(text: str) -> str:
    if not QUARTER_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a quarter like 2026-Q3")
    return text


def _days(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 7 <= n <= 366:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days from 7 to 366")
    return n


def add_engagement_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ttfv",
        help="time to first value per cohort (handoff month, quarter or tier; reads Postgres)",
        description=(
            "Days from the Sales handoff to the first-value milestone, per cohort of accounts "
            "that reached it (the value.first_value events of the account workflows)."
        ),
    )
    p.add_argument("--by", choices=["month", "quarter", "tier"], default="month")
    p.add_argument(
        "--as-of",
        type=date.fromisoformat,
        default=None,
        metavar="DATE",
        help="count first values reached by this date (YYYY-MM-DD); default today",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per cohort")
    p.set_defaults(run=run_ttfv)

    f = subparsers.add_parser(
        "feedback",
        help="a quarter's ticket subjects and NPS comments grouped into themes; --send drafts "
        "the digest to the product owner",
    )
    f.add_argument(
        "quarter",
        type=_quarter,
        nargs="?",
        metavar="QUARTER",
        help="e.g. 2026-Q3 (default: the last full quarter)",
    )
    f.add_argument("--json", action="store_true", help="the themes as JSON")
    f.add_argument(
        "--send",
        action="store_true",
        help="draft the digest to the product owner (starts ProductFeedbackWorkflow)",
    )
    f.add_argument("--to", metavar="EMAIL", help="recipient (default: product_owner_email)")
    f.set_defaults(run=run_feedback)

    v = subparsers.add_parser(
        "value",
        help="ROI and RoSI of one account as an executive summary (the QBR's value drivers)",
        description=(
            "Value delivered over the last --days days from the configured value drivers "
            "(the QBR's ROI section), against the subscription cost of the period: the ROI "
            "multiple and the RoSI. Reads Postgres; nothing is written."
        ),
    )
    v.add_argument("account_id", metavar="ACCOUNT_ID")
    v.add_argument("--as-of", type=parse_as_of, default=None, metavar="DATE")
    v.add_argument("--days", type=_days, default=90, metavar="DAYS", help="7 to 366 (default 90)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(run=run_value)

    h = subparsers.add_parser(
        "hygiene",
        help="CRM hygiene findings (no champion, stakeholder left, not engaged, missing "
        "renewal data), each with its fix",
    )
    h.add_argument("account_ids", metavar="ACCOUNT_ID", nargs="*", help="default: every account")
    h.add_argument("--as-of", type=parse_as_of, default=None, metavar="DATE")
    h.add_argument("--json", action="store_true", help="one JSON object per finding")
    h.set_defaults(run=run_hygiene)


async def ttfv_records(conn: Any) -> list[TtfvRecord]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (account_id) account_id, payload FROM events "
        "WHERE event_type = 'value.first_value' ORDER BY account_id, event_id"
    )
    out = []
    for r in rows:
        p = r["payload"] if isinstance(r["payload"], dict) else json.loads(r["payload"])
        out.append(
            TtfvRecord(
                account_id=r["account_id"],
                tier=p.get("tier"),
                handed_off_on=date.fromisoformat(p["handed_off_on"]),
                first_value_on=date.fromisoformat(p["first_value_on"]),
            )
        )
    return out


async def run_ttfv(args: argparse.Namespace) -> int:
    as_of = args.as_of or datetime.now(UTC).date()
    try:
        async with connect_db() as conn:
            records = await ttfv_records(conn)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    cohorts = ttfv_cohorts(records, args.by, as_of)
    if args.json:
        for c in cohorts:
            print(c.model_dump_json())
        return 0
    if not cohorts:
        print("no account has reached first value yet (no value.first_value event)")
        return 0
    table = [[h for _, h in TTFV_COLUMNS]] + [
        ["" if getattr(c, k) is None else str(getattr(c, k)) for k, _ in TTFV_COLUMNS]
        for c in cohorts
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(TTFV_COLUMNS))]
    print(f"Time to first value (days from handoff), by {args.by}, as of {as_of}")
    for n, row in enumerate(table):
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))))  # fmt: skip
        if n == 0:
            print("  ".join("-" * w for w in widths))
    return 0


async def run_feedback(args: argparse.Namespace) -> int:
    from activities.engagement import engagement_config, quarter_digest

    quarter = args.quarter or previous_quarter(datetime.now(UTC).date())
    try:
        config = engagement_config()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    to = args.to or config.product_owner_email
    if args.send and not to:
        print(
            "error: no recipient: give --to EMAIL or set product_owner_email in "
            "VIM_ENGAGEMENT_CONFIG",
            file=sys.stderr,
        )
        return 2
    try:
        async with connect_db() as conn:
            digest = await quarter_digest(conn, quarter, config)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    if args.json:
        print(digest.model_dump_json(indent=1))
    else:
        print(
            f"{quarter}: {digest.items} ticket subjects and NPS comments from "
            f"{digest.accounts} accounts"
        )
        for t in digest.themes:
            print(
                f"  {t.theme:<24} {t.items:>4} items  {t.tickets:>4} tickets  "
                f"{t.nps_comments:>4} NPS comments ({t.detractors} detractors)  "
                f"{len(t.accounts):>3} accounts"
            )
    if args.send:
        return await _send(quarter, to or "", config.product_owner_name)
    return 0


async def _send(quarter: str, to: str, owner_name: str | None) -> int:
    from temporalio.common import WorkflowIDReusePolicy

    from stack.settings import load_settings
    from starter import connect
    from workflows.engagement import FeedbackDigestInput

    settings = load_settings()
    client = await connect(settings)
    wf_id = f"product-feedback-{quarter}"
    try:
        await client.start_workflow(
            "ProductFeedbackWorkflow",
            FeedbackDigestInput(
                quarter=quarter,
                to=to,
                to_name=owner_name,
                owner_name=owner_name,
                llm_task_queue=settings.llm_task_queue,
            ),
            id=wf_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except Exception as err:  # WorkflowAlreadyStartedError: the digest of that quarter exists
        from temporalio.exceptions import WorkflowAlreadyStartedError

        if isinstance(err, WorkflowAlreadyStartedError):
            print(f"the {quarter} digest was already started ({wf_id}); nothing sent twice")
            return 0
        raise
    print(f"digest for {quarter} is being drafted to {to} ({wf_id})")
    return 0


async def run_value(args: argparse.Namespace) -> int:
    from temporalio.exceptions import ApplicationError

    from activities.qbr import default_qbr_config, gather_qbr_data, load_catalogue
    from domain.feedback import quarter_of
    from domain.narrative import QbrRoiFacts
    from domain.qbr import QbrRequest, build_qbr
    from domain.value import value_summary

    as_of: datetime = args.as_of or datetime.now(UTC)
    req = QbrRequest(
        account_id=args.account_id,
        quarter_label=quarter_of(as_of.date()),
        as_of=as_of,
        reason="quarterly",
        window_days=args.days,
    )
    try:
        async with connect_db() as conn:
            data = await gather_qbr_data(conn, req, default_qbr_config(), load_catalogue())
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except ApplicationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    roi = build_qbr(data).section("roi").facts
    assert isinstance(roi, QbrRoiFacts)
    summary = value_summary(roi)
    if args.json:
        print(summary.model_dump_json(indent=1))
    else:
        print("\n".join(summary.lines()))
    return 0


async def hygiene_findings(
    conn: Any, account_ids: list[str] | None, as_of: datetime
) -> dict[str, list[Any]]:
    """Per account (all accounts when ``account_ids`` is None), its hygiene findings."""
    from activities.hygiene import load_hygiene

    ids = account_ids or [
        r["account_id"]
        for r in await conn.fetch("SELECT account_id FROM accounts ORDER BY account_id")
    ]
    known = {
        r["account_id"]
        for r in await conn.fetch(
            "SELECT account_id FROM accounts WHERE account_id = ANY($1::text[])", ids
        )
    }
    unknown = [a for a in ids if a not in known]
    if unknown:
        raise CommandError(f"unknown account(s): {', '.join(unknown)}", 2)
    return await load_hygiene(conn, ids, as_of)


async def run_hygiene(args: argparse.Namespace) -> int:
    as_of: datetime = args.as_of or datetime.now(UTC)
    try:
        async with connect_db() as conn:
            found = await hygiene_findings(conn, args.account_ids or None, as_of)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    if args.json:
        for account, findings in found.items():
            for f in findings:
                print(json.dumps({"account_id": account, **f.model_dump()}))
        return 0
    total = sum(len(f) for f in found.values())
    print(f"CRM hygiene as of {as_of:%Y-%m-%d}: {total} findings in {len(found)} accounts")
    for account, findings in found.items():
        if not findings:
            continue
        print(f"\n{account}")
        for f in findings:
            print(f"  [{f.check}] {f.detail}\n      fix: {f.fix}")
    return 0
