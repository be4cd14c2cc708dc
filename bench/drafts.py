"""Drafts a CSM would read: a simulated month of the demo portfolio, then an audit of every draft.

``simulate_month`` loads a slice of the demo portfolio (``demo/portfolio.py``)
into a fresh database, hands its accounts off to the real worker on the
time-skipping server (templates, no model key), and skips the clock forward
in 5-day steps; last year's telemetry is copied a year forward first so the
month is lived rather than a decay to zero usage (as in ``bench/account_year.py``).

``read_drafts`` reads every draft the month produced from the local outbox
(email ``.eml``, QBR pages ``.md``, chat and Notion updates ``.json``), and
``audit`` checks each against its sources in Postgres: contracts, health
snapshots and findings. It is what ``tests/workflows/test_draft_audit.py``
asserts on, and ``python -m bench.drafts`` prints drafts per CSM per week.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import json
import os
import re
import sys
import tempfile
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from email import policy
from pathlib import Path
from typing import Any

import asyncpg

from bench.account_year import SHIFT_SQL, pick_accounts, skip_year
from cli.accounts import start_account
from demo.load import load_portfolio
from demo.portfolio import CSMS, Portfolio, generate_portfolio
from domain.config import load_health_config
from domain.handoff import Handoff
from stack.settings import Settings

DAYS = 30
# List prices per seat of the modules (the health configuration's catalogue): a source too.
MODULE_PRICES = [spec.price_per_seat for spec in load_health_config().catalogue.values()]


@dataclass
class Draft:
    """One thing a person reads: an email draft, a QBR page, a chat alert or a Notion update."""

    key: str
    account_id: str
    purpose: str
    kind: str  # email | qbr | page (an account page behind a digest line) | chat | notion
    to: str | None
    subject: str
    text: str
    path: str

    @property
    def label(self) -> str:
        return f"{self.account_id}/{self.purpose} ({self.kind}, {Path(self.path).name})"


@dataclass
class MonthRun:
    """What the simulated month left behind."""

    dsn: str
    outbox: Path
    accounts: list[Handoff]
    start: date
    days: int
    archetypes: dict[str, str] = field(default_factory=dict)
    # Email drafts (immediate and digests) made by the end of each simulated day.
    emails_by_day: list[int] = field(default_factory=list)


async def simulate_month(
    env: Any,
    dsn: str,
    settings: Settings,
    *,
    accounts: int = 16,
    days: int = DAYS,
    portfolio_size: int = 40,
    seed: int = 7,
) -> MonthRun:
    """Load a demo portfolio slice, hand its accounts off, live ``days`` days of it."""
    from tests.workflows.helpers import running_worker  # the real worker, in-process

    today = (await env.get_current_time()).date()
    portfolio: Portfolio = generate_portfolio(seed=seed, as_of=today, n_accounts=portfolio_size)
    chosen = pick_accounts(portfolio, accounts)
    ids = [h.account_id for h in chosen]
    conn = await asyncpg.connect(dsn)
    try:
        await load_portfolio(conn, portfolio)
        # 366 days, not 365: a row of the first history day must not land on today,
        # whose scans (at the time of day of the handoff) would count it.
        shift = SHIFT_SQL.replace("interval '365 days'", "interval '366 days'").replace(
            "+ 365", "+ 366"
        )
        for statement in filter(str.strip, shift.split(";")):
            await conn.execute(statement, ids)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    async with running_worker(env.client, dsn, settings):
        for h in chosen:
            await start_account(env.client, h, settings)
        emails_by_day = []
        for _ in range(days):
            # A loaded machine can take longer than the year bench's 5 s per step: only a
            # clock that stands still for 60 s is a leaked time-skipping lock.
            await skip_year(env, days=1, stall_seconds=60)
            conn = await asyncpg.connect(dsn)
            try:
                emails_by_day.append(
                    await conn.fetchval(
                        "SELECT count(*) FROM deliveries WHERE target LIKE '%.eml' OR channel = 'gmail'"
                    )
                )
            finally:
                await conn.close()
        for wf_id in [h.workflow_id for h in chosen] + ["digests"]:
            with contextlib.suppress(Exception):
                await env.client.get_workflow_handle(wf_id).terminate("month simulated")
    return MonthRun(
        dsn=dsn,
        outbox=settings.outbox_dir,
        accounts=chosen,
        start=today,
        days=days,
        archetypes={a: portfolio.archetype_of(a) for a in ids},
        emails_by_day=emails_by_day,
    )


# ----------------------------------------------------------------- reading drafts


def _eml(path: Path) -> tuple[str | None, str, str, str, str]:
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    to = email.utils.parseaddr(str(msg["To"] or ""))[1] or None
    return (
        to,
        str(msg["Subject"] or ""),
        text,
        str(msg["X-VIM-Purpose"] or ""),
        str(msg["X-VIM-Idempotency-Key"] or ""),
    )


async def read_drafts(dsn: str, outbox: Path) -> list[Draft]:
    """Every draft in the outbox, with the account it is about (from the deliveries table)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT idempotency_key, account_id, purpose, target FROM deliveries "
            "WHERE status = 'delivered' ORDER BY created_at"
        )
    finally:
        await conn.close()
    out: list[Draft] = []
    for r in rows:
        target = r["target"] or ""
        path = Path(target)
        if not path.is_absolute():
            path = (
                outbox.parent / target
                if not (Path.cwd() / target).exists()
                else Path.cwd() / target
            )
        if not path.exists():
            continue
        if path.suffix == ".eml":
            to, subject, text, _, _ = _eml(path)
            kind = "email"
        elif path.suffix == ".md":
            kind = "page" if path.parent.name == "pages" else "qbr"
            to, subject, text = None, "", path.read_text()
        else:
            data = json.loads(path.read_text())
            to, subject, text = None, str(data.get("title") or ""), str(data.get("markdown") or "")
            kind = "chat" if data.get("kind") == "chat_alert" else "notion"
        out.append(
            Draft(
                key=r["idempotency_key"],
                account_id=r["account_id"],
                purpose=r["purpose"],
                kind=kind,
                to=to,
                subject=subject,
                text=text,
                path=str(path),
            )
        )
    return out


# ----------------------------------------------------------------- sources


@dataclass
class Sources:
    """What the drafts of one account may state: its contracts, snapshots and findings."""

    account_id: str
    contracts: list[dict[str, Any]]
    scan_dates: list[date]
    snapshots: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    dollars: set[int] = field(default_factory=set)

    def contract_at(self, d: date) -> dict[str, Any] | None:
        rows = [c for c in self.contracts if c["start_date"] <= d]
        return rows[-1] if rows else None

    @property
    def end_dates(self) -> set[date]:
        return {c["end_date"] for c in self.contracts}


def _numbers(obj: Any) -> list[float]:
    if isinstance(obj, bool):
        return []
    if isinstance(obj, int | float):
        return [float(obj)]
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in _numbers(v)]
    if isinstance(obj, list):
        return [n for v in obj for n in _numbers(v)]
    if isinstance(obj, str):
        return [float(x.replace(",", "")) for x in re.findall(r"\$([\d,]+(?:\.\d+)?)", obj)]
    return []


async def load_sources(dsn: str, account_ids: list[str]) -> dict[str, Sources]:
    conn = await asyncpg.connect(dsn)
    try:
        out: dict[str, Sources] = {}
        for aid in account_ids:
            contracts = [
                dict(r)
                for r in await conn.fetch(
                    "SELECT start_date, end_date, arr::float8 AS arr, seats_purchased, "
                    "price_per_seat::float8 AS price_per_seat FROM contracts "
                    "WHERE account_id = $1 ORDER BY start_date",
                    aid,
                )
            ]
            snaps = await conn.fetch(
                "SELECT as_of, payload FROM health_snapshots WHERE account_id = $1 ORDER BY as_of",
                aid,
            )
            findings = [
                json.loads(r["payload"]) if isinstance(r["payload"], str) else dict(r["payload"])
                for r in await conn.fetch("SELECT payload FROM findings WHERE account_id = $1", aid)
            ]
            payloads = [
                json.loads(s["payload"]) if isinstance(s["payload"], str) else s["payload"]
                for s in snaps
            ]
            src = Sources(
                account_id=aid,
                contracts=contracts,
                scan_dates=sorted({s["as_of"].date() for s in snaps}),
                snapshots=payloads,
                findings=findings,
            )
            money = [n for c in contracts for n in (c["arr"], c["price_per_seat"])]
            for p in payloads:  # totals a draft may state: all opportunities, all waste
                money.append(
                    sum(o.get("estimated_arr_impact") or 0 for o in p.get("opportunities") or [])
                )
                money.append(sum(f.get("dollar_impact") or 0 for f in p.get("findings") or []))
            money += _numbers(findings) + _numbers(payloads)
            src.dollars = {round(m) for m in money}
            out[aid] = src
        return out
    finally:
        await conn.close()


# ----------------------------------------------------------------- the audit

_DATE = r"(\d{4}-\d{2}-\d{2})"
_MONEY = re.compile(r"\$(\d[\d,]*(?:\.\d+)?)(k|K|m|M)?")
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z$])")
_PATH = re.compile(r"(?:^|[\s(<\[])(/[\w.-]+/[\w./-]+|\.data/[\w./-]+|\w+/outbox/[\w./-]+)")
_BELOW = re.compile(r"\b(?:signals|evidence|details|steps|numbers|plan) below\b", re.I)


@dataclass
class Finding:
    check: str
    draft: str
    detail: str


def _money(raw: str, suffix: str | None) -> float:
    v = float(raw.replace(",", ""))
    return v * {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}.get(suffix or "", 1)


def _sentences(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.strip().lstrip("-*>#| ").strip("*_ ")
        if not line or line.startswith("|"):
            continue
        for s in _SENT_SPLIT.split(line):
            s = s.strip()
            if len(s) >= 25 and s.count(" ") >= 4:
                out.append(s)
    return out


def audit_draft(d: Draft, src: Sources, start: date, end: date) -> list[Finding]:
    """Every problem in one draft. ``start``/``end``: the simulated period."""
    out: list[Finding] = []
    text = d.text

    def bad(check: str, detail: str) -> None:
        out.append(Finding(check, d.label, detail))

    scan_days = set(src.scan_dates) or {start}
    # A QBR is written on its own as-of day (a quarter's first day), which need not be a
    # scan day: its day counts are checked against the day its review period ends.
    scan_days |= {
        date.fromisoformat(m.group(1))
        for m in re.finditer(r"Review period: \d{4}-\d{2}-\d{2} to (\d{4}-\d{2}-\d{2})", text)
    }
    ends = src.end_dates

    # -- wrong numbers: days to renewal against the date it names, the day it was written
    for m in re.finditer(
        r"(?i)(?:renew\w*|contract end\w*)[^.\n]{0,40}?\bin (\d+) days? \(" + _DATE + r"\)", text
    ):
        n, when = int(m.group(1)), date.fromisoformat(m.group(2))
        if when not in ends:
            bad("renewal date", f"{when} is no contract end date ({sorted(ends)})")
        elif not any((when - day).days == n for day in scan_days):
            bad("days to renewal", f"'{m.group(0)}': {when} is not {n} days after any scan day")
    for m in re.finditer(r"(\d+) days? before contract end", text):
        n = int(m.group(1))
        if not any((e - day).days == n for e in ends for day in scan_days):
            bad("days before contract end", f"'{m.group(0)}' matches no scan day")
    for m in re.finditer(r"(?:renews? in|renewal (?:is )?in|renewal) (\d+) days?(?! \()", text):
        n = int(m.group(1))
        if not any((e - day).days == n for e in ends for day in scan_days):
            bad("days to renewal", f"'{m.group(0)}' matches no scan day and contract end")

    # -- seats: unused seats and their cost
    for m in re.finditer(r"(\d[\d,]*) unused seats?", text):
        n = int(m.group(1).replace(",", ""))
        ok = False
        for snap in src.snapshots:
            c = src.contract_at(date.fromisoformat(str(snap.get("as_of", ""))[:10]) or start)
            active = _active_users(snap)
            if c is not None and active is not None and c["seats_purchased"] - active == n:
                ok = True
        if not ok:
            bad("unused seats", f"'{m.group(0)}' equals no snapshot's seats - active users")
    for m in re.finditer(r"(\d[\d,]*) of (\d[\d,]*) (?:licensed )?seats", text):
        seats = int(m.group(2).replace(",", ""))
        if seats not in {c["seats_purchased"] for c in src.contracts}:
            bad("seats purchased", f"'{m.group(0)}': no contract has {seats} seats")

    # -- dollars: every figure is a source figure
    for m in _MONEY.finditer(text):
        v = _money(m.group(1), m.group(2))
        if v < 100:
            continue
        tol = 1e3 if m.group(2) else 1.0
        if not any(abs(v - s) <= tol for s in src.dollars) and not _derived_dollar(v, src, text):
            bad("dollar figure", f"${m.group(1)}{m.group(2) or ''} is in no source row")

    # -- currency: a money row without its currency sign
    for m in re.finditer(
        r"(?im)^\|?\s*(?:[\w ]*(?:dollar|impact|ARR|waste|cost|value)[\w ()]*)\s*\|\s*([\d,]{4,})\s*\|?$",
        text,
    ):
        bad("currency", f"'{m.group(0).strip()}' has no currency")

    # -- contradictions: seat percentages
    # A measurement, not a target ("by day 90") or a rubric band ("25% to 40% of seats
    # active", "under 10% of seats active").
    active_pct = [
        int(x)
        for x in re.findall(
            r"(?<![\d.])(?<!% to )(?<!under )(\d+)% of (?:licensed )?seats (?:were )?active(?! by day)",
            text,
        )
    ]
    active_pct += [int(x) for x in re.findall(r"\((\d+)% utilization\)", text)]
    active_pct += [int(x) for x in re.findall(r"seats were active \((\d+)%\)", text)]
    unused_pct = [
        int(x) for x in re.findall(r"(\d+)% of (?:licensed )?seats (?:are |were )?unused", text)
    ]
    for a in active_pct:
        for u in unused_pct:
            if abs(a + u - 100) > 1:
                bad("contradiction", f"{a}% of seats active and {u}% unused in one draft")
    if len(set(active_pct)) > 1:
        bad("contradiction", f"seat utilization stated as {sorted(set(active_pct))}")

    # -- trends from a single point
    if re.search(r"held steady|moved from \d+ to \d+", text) and len(scan_days) < 2:
        bad("trend", "states a trend with fewer than two snapshots")
    if re.search(r"held steady|moved from \d+ to \d+", text) and d.kind == "qbr":
        first = min(scan_days)
        if not any(day < max(scan_days) for day in scan_days if day >= first) or (
            re.search(r"held steady", text)
            and len([x for x in scan_days if x <= start]) >= 1
            and len(scan_days) < 2
        ):
            bad("trend", "trend with one data point")

    # -- next QBR before the renewal it prepares
    for m in re.finditer(r"[Nn]ext QBR[^\n]{0,40}?" + _DATE, text):
        when = date.fromisoformat(m.group(1))
        c_end = min((e for e in ends if e >= start), default=None)
        if c_end is not None and when > c_end:
            bad("next QBR", f"next QBR {when} falls after the renewal {c_end}")

    # -- structure
    seen: Counter[str] = Counter(_sentences(text))
    for s, n in seen.items():
        if n > 1:
            bad("repeated sentence", f"{n}x: {s[:90]}")
    lines = [ln.rstrip() for ln in text.splitlines()]
    heads = [i for i, ln in enumerate(lines) if ln.startswith("#")]
    for i in heads:
        nxt = next((ln for ln in lines[i + 1 :] if ln.strip()), None)
        if nxt is None or (nxt.startswith("#") and nxt.count("#") <= lines[i].count("#")):
            bad("empty section", f"'{lines[i].strip()}' has no content")
    for m in _BELOW.finditer(text):
        rest = text[m.end() :]
        if not re.search(r"(?m)^\s*[-*] \S", rest):
            bad("nothing below", f"'{m.group(0)}' but no list follows")
    for m in _PATH.finditer(text):
        bad("disk path", f"links to a file path on the worker: {m.group(1)[:80]}")
    # -- wording a reader trips on: a count of nothing, a hedged plural, a score without a band
    for m in re.finditer(r"\b(?:none of the 0|all 1) \w+", text):
        bad("count wording", f"'{m.group(0)}'")
    for m in re.finditer(r"\b\w+\(s\)", text):
        bad("plural", f"'{m.group(0)}': a count and its noun should agree")
    for m in re.finditer(r"\b[Aa] (?:8\d*|11|18)(?:\.\d+)?%", text):
        bad("article", f"'{m.group(0)}': an eight, eleven or eighteen takes 'an'")
    for m in re.finditer(r"\d+(?:\.\d+)?/100 \(UNSCORED\)", text):
        bad("contradiction", f"'{m.group(0)}': a health score told with an UNSCORED band")
    if re.search(r"Why: risk confirmed|main cause: Why:", text):
        bad("garbled", "'Why:' label pasted into a sentence")
    return out


def _active_users(snap: dict[str, Any]) -> int | None:
    """Active users in the snapshot's activity window (the seat utilization signal's figure)."""
    for sig in snap.get("signals") or []:
        if sig.get("name") == "seat_utilization" and isinstance(sig.get("value"), int | float):
            return int(sig["value"])
    return None


def _derived_dollar(v: float, src: Sources, text: str) -> bool:
    """Figures that are plain products of source figures the draft states with them:
    seats x price per seat, a period's share of ARR, hours saved x the hourly cost."""
    for c in src.contracts:
        for p in [c["price_per_seat"] or 0, *MODULE_PRICES]:
            if p and (abs(v - p) < 1 or abs(v / p - c["seats_purchased"]) < 1e-6):
                return True
            if p and abs(v / p - round(v / p)) < 1e-6 and p == c["price_per_seat"]:
                return True
        for days in re.findall(r"(\d+) days", text) + re.findall(r"[Oo]ver (\d+) days", text):
            if abs(c["arr"] * int(days) / 365 - v) <= 1:
                return True
    for m in re.finditer(r"review period: (\d{4}-\d{2}-\d{2}) to (\d{4}-\d{2}-\d{2})", text, re.I):
        days = (date.fromisoformat(m.group(2)) - date.fromisoformat(m.group(1))).days
        if any(abs(c["arr"] * days / 365 - v) <= 1 for c in src.contracts):
            return True
    rates = [float(r.replace(",", "")) for r in re.findall(r"\$([\d,]+) an hour", text)]
    hours = [float(h.replace(",", "")) for h in re.findall(r"([\d,]+(?:\.\d+)?) hours", text)]
    # Hours are shown to 0.1, so their product with the rate is exact to half a tenth.
    return any(abs(h * r - v) <= 0.05 * r + 1 for h in hours for r in rates)


def audit(
    drafts: list[Draft], sources: dict[str, Sources], start: date, days: int
) -> list[Finding]:
    end = start + timedelta(days=days)
    out: list[Finding] = []
    # QBR pages first: a cover note may repeat a figure the page derives and shows its sources for.
    for d in sorted(drafts, key=lambda x: x.kind != "qbr"):
        src = sources.get(d.account_id)
        if src is None:  # a digest: its lines repeat checked headlines; check its structure
            src = Sources(d.account_id, [], [start], [], [])
            out += [
                f
                for f in audit_draft(d, src, start, end)
                if f.check
                not in (
                    "dollar figure",
                    "unused seats",
                    "seats purchased",
                    "days to renewal",
                    "renewal date",
                )
            ]
            continue
        found = audit_draft(d, src, start, end)
        out += found
        if d.kind == "qbr" and not any(f.check == "dollar figure" for f in found):
            src.dollars |= {round(_money(m.group(1), m.group(2))) for m in _MONEY.finditer(d.text)}
    return out


def drafts_per_recipient_week(drafts: list[Draft], days: int) -> dict[str, float]:
    """Email drafts per recipient per week (pages and chat alerts are not in anyone's inbox)."""
    weeks = days / 7
    n = Counter(d.to for d in drafts if d.kind == "email" and d.to)
    return {to: round(c / weeks, 1) for to, c in sorted(n.items())}


def csm_emails() -> set[str]:
    return {e for _, e in CSMS}


# ----------------------------------------------------------------- command line


async def _main(args: argparse.Namespace) -> int:
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from bench.stack import binary
    from stack.migrate import migrate_dsn
    from stack.postgres import start_embedded, stop_embedded
    from stack.settings import load_settings
    from stack.temporal_dev import register_search_attributes

    root = Path(tempfile.mkdtemp(prefix="vim-drafts-"))
    dsn = start_embedded(root / "pg")
    try:
        await migrate_dsn(dsn)
        env = await WorkflowEnvironment.start_time_skipping(
            data_converter=pydantic_data_converter,
            test_server_existing_path=binary("temporal-test-server"),
        )
        try:
            await register_search_attributes(env.client)
            q = uuid.uuid4().hex[:6]
            settings = load_settings(
                {
                    **{k: v for k, v in os.environ.items() if k.startswith("VIM_")},
                    "VIM_DATA_DIR": str(root / "data"),
                    "VIM_TASK_QUEUE": f"d-accounts-{q}",
                    "VIM_SALES_TASK_QUEUE": f"d-sales-{q}",
                    "VIM_LLM_TASK_QUEUE": f"d-llm-{q}",
                }
            )
            run = await simulate_month(
                env,
                dsn,
                settings,
                accounts=args.accounts,
                days=args.days,
                portfolio_size=max(40, args.portfolio),
            )
        finally:
            await env.shutdown()
        drafts = await read_drafts(dsn, run.outbox)
        sources = await load_sources(dsn, [h.account_id for h in run.accounts])
        problems = audit(drafts, sources, run.start, run.days)
        per = drafts_per_recipient_week(drafts, run.days)
        csms = csm_emails()
        by_kind = Counter(d.kind for d in drafts)
        by_purpose = Counter(d.purpose for d in drafts)
        print(
            f"{len(run.accounts)} accounts, {run.days} days, {len(drafts)} drafts: {dict(by_kind)}"
        )
        daily = [b - a for a, b in zip([0, *run.emails_by_day], run.emails_by_day, strict=False)]
        print(f"email drafts per simulated day: {daily}")
        print(
            f"email drafts on day 1: {daily[0] if daily else 0}; "
            f"digests: {sum(1 for d in drafts if d.purpose == 'digest')}"
        )
        print("by purpose:", dict(by_purpose.most_common()))
        print("email drafts per recipient per week:")
        for to, n in per.items():
            print(f"  {to:40s} {n:6.1f}{'  (CSM)' if to in csms else ''}")
        csm_rates = [n for to, n in per.items() if to in csms]
        if csm_rates:
            print(f"mean per CSM per week: {sum(csm_rates) / len(csm_rates):.1f}")
        by_check: dict[str, int] = defaultdict(int)
        for p in problems:
            by_check[p.check] += 1
        bad_drafts = len({p.draft for p in problems})
        print(f"audit: {len(problems)} problems in {bad_drafts} of {len(drafts)} drafts")
        for c, n in sorted(by_check.items(), key=lambda x: -x[1]):
            print(f"  {c:28s} {n}")
        if args.show:
            for p in problems[: args.show]:
                print(f"- [{p.check}] {p.draft}: {p.detail}")
        if args.keep:
            print(f"outbox kept in {run.outbox}")
        return 0
    finally:
        stop_embedded(root / "pg")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.drafts", description=__doc__)
    ap.add_argument("--accounts", type=int, default=16, help="accounts handed off")
    ap.add_argument("--portfolio", type=int, default=40, help="accounts in the demo portfolio")
    ap.add_argument("--days", type=int, default=DAYS)
    ap.add_argument("--show", type=int, default=0, help="print this many audit problems")
    ap.add_argument("--keep", action="store_true")
    return asyncio.run(_main(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
