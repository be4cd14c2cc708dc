"""Import telemetry from a Google Sheet (the seed's data source) into the telemetry tables.

One tab per table, named like the table (``accounts``, ``contracts``,
``usage_events`` ...); the first row holds column names (the table's
columns; unknown columns are reported and ignored). Every row is validated by
a pydantic model; invalid rows are reported with tab, row number and problem
and left out. Field types carry the columns' limits (``domain/limits.py``:
NUL, integer and numeric ranges, key sizes, serial dates on the calendar).
Valid rows are inserted in one transaction (COPY into a temp table, then
INSERT ... SELECT skipping rows already present), so a re-import adds nothing
twice; it only fills in the dated columns of rows already on file that were
empty then (a ticket's closed_at, an invoice's paid_on, a user's
deactivated_at, a stakeholder's left_on, a contract's notice_on) and moves a
stakeholder's last_engaged_at forward (every value is kept in
stakeholder_engagements); those rows count as inserted in the report. Each
tab is written in a savepoint, and if Postgres still refuses a row, that tab
row by row, each in its own savepoint: the refused row is reported with tab,
row and Postgres' reason and the rest lands. A lost connection writes
nothing. ``on_invalid="abort"`` inserts nothing at all when any row is invalid.

Reads with google-api-python-client Sheets v4 (``spreadsheets.get`` for the
tab names, ``spreadsheets.values.get`` per tab), endpoint ``SHEETS_BASE_URL``,
credentials ``SHEETS_TOKEN`` (OAuth access token) or a service account in
``GOOGLE_APPLICATION_CREDENTIALS`` (share the sheet with its email).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, ClassVar, Literal, get_args

import asyncpg
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from temporalio import activity

from activities.channels.errors import by_status, install_log_redaction, redact, rejected, retryable
from domain.handoff import check_notice
from domain.limits import (
    PG_INT_MAX,
    PG_NUMERIC_12_2_MAX,
    PG_NUMERIC_14_2_MAX,
    QUANTITY_MAX,
    Finite,
    Name,
    PgInt,
    RecordId,
    ShortText,
    Text,
)

CHANNEL = "Sheets"
_local = threading.local()  # httplib2 is not thread-safe: one service per worker thread
READONLY_SCOPE = "https://www.googleapis.com/auth/spreadsheets.readonly"
MAX_PROBLEMS_PER_TAB = 200
_SHEETS_EPOCH = datetime(1899, 12, 30, tzinfo=UTC)  # serial day 0 of Sheets dates
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y")
_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M")
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$"

# ------------------------------------------------------------------ rows


def _serial(v: float) -> datetime:
    """A Sheets serial date; one outside the calendar is a bad cell, not a crash."""
    try:
        return _SHEETS_EPOCH + timedelta(days=float(v))
    except (OverflowError, ValueError):
        raise ValueError(f"serial date {v!r} is outside the calendar") from None


def _parse_date(v: Any) -> Any:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return _serial(v).date()
    if isinstance(v, str):
        s = v.strip()
        for fmt in _DATE_FORMATS:
            try:
                return datetime.strptime(s, fmt).date()
            except ValueError:
                pass
    return v


def _parse_datetime(v: Any, tz: tzinfo) -> Any:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return _serial(v)
    if isinstance(v, str):
        s = v.strip()
        for fmt in (*_DATETIME_FORMATS, *_DATE_FORMATS):
            try:
                return datetime.strptime(s, fmt).replace(tzinfo=tz)
            except ValueError:
                pass
        try:
            d = datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            return v
        return d if d.tzinfo else d.replace(tzinfo=tz)
    return v


def _kinds(annotation: Any) -> set[Any]:
    args = get_args(annotation)
    return {a for a in args} if args else {annotation}


class _Row(BaseModel):
    """Base for one sheet row. Blank cells are None; dates accept ISO, US and serial numbers."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    table: ClassVar[str]
    key: ClassVar[tuple[str, ...]]  # what makes a row a duplicate
    conflict: ClassVar[Literal["on_conflict", "not_exists"]] = "on_conflict"
    # Dated columns a later import may fill in on a row already on file: ``fill_in`` when
    # the row on file has none (a ticket closed, an invoice paid, a notice given), and
    # ``advance`` when the sheet's value is later (stakeholders.last_engaged_at, whose
    # every value a trigger keeps in stakeholder_engagements). The facts SQL reads all of
    # them as of the date scored, so a later value never rewrites the past.
    fill_in: ClassVar[tuple[str, ...]] = ()
    advance: ClassVar[tuple[str, ...]] = ()

    account_id: str = Field(pattern=_ID)
    _sheet_row: int = PrivateAttr(default=0)

    @model_validator(mode="before")
    @classmethod
    def _cells(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        tz = data.pop("__tz__", UTC)
        out: dict[str, Any] = {}
        for k, v in data.items():
            if isinstance(v, str) and not v.strip():
                v = None
            kinds = _kinds(cls.model_fields[k].annotation) if k in cls.model_fields else set()
            if v is not None and datetime in kinds:
                v = _parse_datetime(v, tz)
            elif v is not None and date in kinds:
                v = _parse_date(v)
            elif v is not None and kinds & {int, float} and isinstance(v, str):
                v = v.replace(",", "").replace("$", "").strip()
            out[k] = v
        return out

    def record(self, columns: list[str]) -> tuple[Any, ...]:
        return tuple(getattr(self, c) for c in columns)


def _after(later: Any, earlier: Any, what: str) -> None:
    if later is not None and earlier is not None and later < earlier:
        raise ValueError(what)


class AccountRow(_Row):
    table = "accounts"
    key = ("account_id",)
    name: Name
    tier: Literal["tier-1", "tier-2", "tier-3"] = "tier-3"
    industry: ShortText | None = None
    csm_owner: Name | None = None
    csm_email: EmailStr | None = None
    rep_owner: Name | None = None
    rep_email: EmailStr | None = None

    @field_validator("tier", mode="before")
    @classmethod
    def _tier(cls, v: Any) -> Any:
        return "tier-3" if v is None else str(v).strip().lower().replace(" ", "-")


class ContractRow(_Row):
    table = "contracts"
    key = ("account_id", "start_date")
    fill_in = ("notice_on",)
    start_date: date
    end_date: date
    notice_on: date | None = None  # the day the customer gave notice on this term
    arr: Finite = Field(ge=0, le=PG_NUMERIC_14_2_MAX)
    seats_purchased: int = Field(gt=0, le=PG_INT_MAX)
    price_per_seat: Finite = Field(ge=0, le=PG_NUMERIC_12_2_MAX)
    licensed_modules: list[RecordId] = Field(default_factory=lambda: ["core"], max_length=100)

    @field_validator("licensed_modules", mode="before")
    @classmethod
    def _modules(cls, v: Any) -> Any:
        if v is None:
            return ["core"]
        if isinstance(v, str):
            return [m.strip() for m in re.split(r"[,;|]", v) if m.strip()]
        return v

    @model_validator(mode="after")
    def _dates(self) -> ContractRow:
        if self.end_date <= self.start_date:
            raise ValueError(f"end_date {self.end_date} is not after start_date {self.start_date}")
        check_notice(self.notice_on, self.start_date, self.end_date)
        return self


class ProductUserRow(_Row):
    table = "product_users"
    key = ("account_id", "user_id")
    fill_in = ("deactivated_at",)
    user_id: RecordId
    email: EmailStr | None = None
    role: ShortText | None = None
    created_at: datetime
    deactivated_at: datetime | None = None

    @model_validator(mode="after")
    def _dates(self) -> ProductUserRow:
        _after(self.deactivated_at, self.created_at, "deactivated_at is before created_at")
        return self


class UsageEventRow(_Row):
    table = "usage_events"
    key = ("account_id", "user_id", "occurred_at", "event_type")
    conflict = "not_exists"  # no primary key: skip rows already present
    user_id: RecordId
    occurred_at: datetime
    # 'login', '<module>.<feature>', or a feed's own event name (events.login in the config
    # may name it as the login event)
    event_type: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$", max_length=100)
    quantity: Finite = Field(default=1, ge=0, le=QUANTITY_MAX)

    @field_validator("quantity", mode="before")
    @classmethod
    def _qty(cls, v: Any) -> Any:
        return 1 if v is None else v


class SupportTicketRow(_Row):
    table = "support_tickets"
    key = ("account_id", "ticket_id")  # ids are scoped by account (migration 004)
    fill_in = ("closed_at",)
    ticket_id: RecordId
    opened_at: datetime
    closed_at: datetime | None = None
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    sentiment: Finite | None = Field(default=None, ge=-1, le=1)
    escalated: bool = False
    subject: ShortText | None = None
    body: Text | None = None

    @field_validator("priority", mode="before")
    @classmethod
    def _prio(cls, v: Any) -> Any:
        return "normal" if v is None else str(v).strip().lower()

    @field_validator("escalated", mode="before")
    @classmethod
    def _esc(cls, v: Any) -> Any:
        return False if v is None else v

    @model_validator(mode="after")
    def _dates(self) -> SupportTicketRow:
        _after(self.closed_at, self.opened_at, "closed_at is before opened_at")
        return self


class InvoiceRow(_Row):
    table = "invoices"
    key = ("account_id", "invoice_id")  # ids are scoped by account (migration 004)
    fill_in = ("paid_on",)
    invoice_id: RecordId
    issued_on: date
    due_on: date
    paid_on: date | None = None
    amount: Finite = Field(gt=0, le=PG_NUMERIC_14_2_MAX)

    @model_validator(mode="after")
    def _dates(self) -> InvoiceRow:
        _after(self.due_on, self.issued_on, "due_on is before issued_on")
        return self


class NpsRow(_Row):
    table = "nps_responses"
    key = ("account_id", "response_id")  # ids are scoped by account (migration 004)
    response_id: RecordId
    respondent: ShortText | None = None
    responded_at: datetime
    score: int = Field(ge=0, le=10)
    comment: Text | None = None


class InteractionRow(_Row):
    table = "interactions"
    key = ("account_id", "interaction_id")  # ids are scoped by account (migration 004)
    interaction_id: RecordId
    occurred_at: datetime
    kind: Literal["meeting", "call", "email", "qbr", "kickoff", "workshop"]
    meaningful: bool = True
    attendees: PgInt | None = Field(default=None, ge=0)
    notes: Text | None = None

    @field_validator("meaningful", mode="before")
    @classmethod
    def _m(cls, v: Any) -> Any:
        return True if v is None else v


class StakeholderRow(_Row):
    table = "stakeholders"
    key = ("account_id", "stakeholder_id")  # ids are scoped by account (migration 004)
    fill_in = ("left_on",)
    advance = ("last_engaged_at",)
    stakeholder_id: RecordId
    name: Name
    email: EmailStr | None = None
    title: ShortText | None = None
    role: ShortText | None = None
    is_champion: bool = False
    joined_on: date | None = None
    left_on: date | None = None
    last_engaged_at: datetime | None = None

    @field_validator("is_champion", mode="before")
    @classmethod
    def _c(cls, v: Any) -> Any:
        return False if v is None else v

    @model_validator(mode="after")
    def _dates(self) -> StakeholderRow:
        _after(self.left_on, self.joined_on, "left_on is before joined_on")
        return self


class TamHealthRow(_Row):
    table = "tam_health"
    key = ("account_id", "measured_at")
    measured_at: datetime
    score: int = Field(ge=0, le=100)
    rag: Literal["RED", "AMBER", "GREEN"] | None = None
    escalation: bool = False
    note: Text | None = None

    @field_validator("rag", mode="before")
    @classmethod
    def _rag(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) and v.strip() else None

    @field_validator("escalation", mode="before")
    @classmethod
    def _e(cls, v: Any) -> Any:
        return False if v is None else v


class StakeholderEngagementRow(_Row):
    """One dated engagement of a stakeholder (a meeting attended, a reply): the history
    the stakeholder signal is scored from at any past date."""

    table = "stakeholder_engagements"
    key = ("account_id", "stakeholder_id", "engaged_at")
    stakeholder_id: RecordId
    engaged_at: datetime


# Insert order: accounts first (contracts and product_users reference it).
ROW_MODELS: dict[str, type[_Row]] = {
    m.table: m
    for m in (
        AccountRow,
        ContractRow,
        ProductUserRow,
        UsageEventRow,
        SupportTicketRow,
        InvoiceRow,
        NpsRow,
        InteractionRow,
        StakeholderRow,
        StakeholderEngagementRow,
        TamHealthRow,
    )
}


def columns_of(model: type[_Row]) -> list[str]:
    return list(model.model_fields)


# ---------------------------------------------------------------- report


class RowProblem(BaseModel):
    tab: str
    row: int  # the sheet's row number (the header is row 1)
    column: str | None = None
    problem: str


class TabReport(BaseModel):
    tab: str
    table: str | None
    rows_read: int = 0
    valid: int = 0
    inserted: int = 0
    already_present: int = 0
    invalid: int = 0
    unknown_columns: list[str] = Field(default_factory=list)
    problems: list[RowProblem] = Field(default_factory=list)  # first MAX_PROBLEMS_PER_TAB


class ImportReport(BaseModel):
    spreadsheet_id: str
    tabs: list[TabReport] = Field(default_factory=list)
    ignored_tabs: list[str] = Field(default_factory=list)
    dry_run: bool = False
    aborted: bool = False  # on_invalid="abort" and some row was invalid: nothing written

    @property
    def inserted(self) -> int:
        return sum(t.inserted for t in self.tabs)

    @property
    def invalid(self) -> int:
        return sum(t.invalid for t in self.tabs)

    def summary(self) -> str:
        lines = [
            f"Sheet {self.spreadsheet_id}: {self.inserted} rows inserted, {self.invalid} invalid rows left out"
            + (" (dry run)" if self.dry_run else "")
            + (" (aborted: nothing written)" if self.aborted else "")
        ]
        for t in self.tabs:
            lines.append(
                f"  {t.tab}: read {t.rows_read}, valid {t.valid}, inserted {t.inserted}, already present {t.already_present}, invalid {t.invalid}"
            )
            lines += [
                f"    row {p.row}{' ' + p.column if p.column else ''}: {p.problem}"
                for p in t.problems[:20]
            ]
            if t.unknown_columns:
                lines.append(f"    ignored columns: {', '.join(t.unknown_columns)}")
        if self.ignored_tabs:
            lines.append(f"  ignored tabs (not a telemetry table): {', '.join(self.ignored_tabs)}")
        return "\n".join(lines)


# ----------------------------------------------------------------- sheets


@dataclass(frozen=True)
class SheetsConfig:
    token: str | None = field(default=None, repr=False)
    credentials_file: str | None = None
    base_url: str | None = None
    timeout_s: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SheetsConfig:
        env = os.environ if env is None else env
        return cls(
            token=env.get("SHEETS_TOKEN") or None,
            credentials_file=env.get("GOOGLE_APPLICATION_CREDENTIALS") or None,
            base_url=env.get("SHEETS_BASE_URL") or None,
            timeout_s=float(env.get("SHEETS_TIMEOUT_S") or 60),
        )

    def service(self) -> Any:
        """A Sheets service for this thread, built once per config (building one takes ~0.5 s)."""
        cache: dict[SheetsConfig, Any] = _local.__dict__.setdefault("services", {})
        if self not in cache:
            cache[self] = self.build_service()
        return cache[self]

    def build_service(self) -> Any:
        import google_auth_httplib2
        import httplib2
        from googleapiclient.discovery import build

        if self.token:
            from google.oauth2.credentials import Credentials

            creds: Any = Credentials(token=self.token)
        elif self.credentials_file:
            from google.oauth2 import service_account

            try:
                creds = service_account.Credentials.from_service_account_file(
                    self.credentials_file, scopes=[READONLY_SCOPE]
                )
            except (OSError, ValueError, KeyError):
                raise rejected(
                    CHANNEL,
                    "GOOGLE_APPLICATION_CREDENTIALS is not a readable service-account JSON file",
                ) from None
        else:
            raise rejected(
                CHANNEL,
                "no credentials: set SHEETS_TOKEN or GOOGLE_APPLICATION_CREDENTIALS (and share the sheet with it)",
            )
        http = google_auth_httplib2.AuthorizedHttp(
            creds, http=httplib2.Http(timeout=self.timeout_s)
        )
        options = {"api_endpoint": self.base_url.rstrip("/") + "/"} if self.base_url else None
        return build(
            "sheets",
            "v4",
            http=http,
            static_discovery=True,
            cache_discovery=False,
            client_options=options,
        )


def _map_error(e: Exception, token: str | None) -> Exception:
    from google.auth import exceptions as gauth
    from googleapiclient.errors import HttpError
    from temporalio.exceptions import ApplicationError

    if isinstance(e, ApplicationError):
        return e
    if isinstance(e, HttpError):
        status = int(e.resp.status)
        detail = redact(str(getattr(e, "reason", "") or ""), [token])[:200]
        fixes = {
            400: "check the tab names (one tab per table, e.g. 'usage_events')",
            401: "invalid credentials: refresh SHEETS_TOKEN (or check GOOGLE_APPLICATION_CREDENTIALS)",
            403: "no access: share the spreadsheet with the service account's email and enable the Sheets API",
            404: "spreadsheet not found: check the spreadsheet id and share it with the integration",
        }
        return by_status(CHANNEL, status, detail, fixes)
    if isinstance(e, gauth.RefreshError):
        return rejected(
            CHANNEL,
            "401 invalid credentials: refresh SHEETS_TOKEN or check GOOGLE_APPLICATION_CREDENTIALS",
        )
    if isinstance(e, TimeoutError | socket.timeout):
        return retryable(CHANNEL, "request timed out")
    if isinstance(e, OSError | gauth.TransportError) or type(e).__module__.startswith("httplib2"):
        return retryable(CHANNEL, f"connection error ({type(e).__name__})")
    return e


def _table_for(tab: str) -> str | None:
    name = re.sub(r"[\s-]+", "_", tab.strip().lower())
    return name if name in ROW_MODELS else None


def fetch_tabs(
    service: Any, spreadsheet_id: str, only: list[str] | None = None
) -> tuple[dict[str, list[list[Any]]], list[str]]:
    """{tab: rows} for tabs named like a table, and the other tab names. Synchronous (httplib2)."""
    meta = (
        service.spreadsheets()
        .get(spreadsheetId=spreadsheet_id, fields="sheets.properties.title")
        .execute()
    )
    titles = [s["properties"]["title"] for s in meta.get("sheets", [])]
    wanted = {
        t for t in titles if _table_for(t) and (only is None or _table_for(t) in only or t in only)
    }
    out: dict[str, list[list[Any]]] = {}
    for tab in titles:
        if tab not in wanted:
            continue
        quoted = "'" + tab.replace("'", "''") + "'"
        resp = (
            service.spreadsheets()
            .values()
            .get(
                spreadsheetId=spreadsheet_id,
                range=quoted,
                valueRenderOption="UNFORMATTED_VALUE",  # numbers as numbers, not "$1,200.00"
                dateTimeRenderOption="FORMATTED_STRING",
                majorDimension="ROWS",
            )
            .execute()
        )
        out[tab] = resp.get("values", [])
    return out, [t for t in titles if t not in wanted]


# ---------------------------------------------------------------- import


def validate_tab(tab: str, rows: list[list[Any]], tz: tzinfo = UTC) -> tuple[TabReport, list[_Row]]:
    table = _table_for(tab)
    report = TabReport(tab=tab, table=table)
    if table is None:
        return report, []
    model = ROW_MODELS[table]
    if not rows:
        report.problems.append(
            RowProblem(tab=tab, row=1, problem="empty tab: the first row must hold column names")
        )
        return report, []
    header = [str(h).strip().lower() for h in rows[0]]
    known = set(model.model_fields)
    report.unknown_columns = [h for h in header if h and h not in known]
    required = [n for n, f in model.model_fields.items() if f.is_required()]
    missing = [c for c in required if c not in header]
    if missing:
        report.problems.append(
            RowProblem(tab=tab, row=1, problem=f"missing required columns: {', '.join(missing)}")
        )
        report.rows_read = max(0, len(rows) - 1)
        report.invalid = report.rows_read
        return report, []
    valid: list[_Row] = []
    seen: dict[tuple[Any, ...], int] = {}
    for i, raw in enumerate(rows[1:], start=2):
        if not any(str(c).strip() for c in raw):
            continue  # blank line
        report.rows_read += 1
        data: dict[str, Any] = {
            h: (raw[j] if j < len(raw) else None) for j, h in enumerate(header) if h in known
        }
        data["__tz__"] = tz
        try:
            row = model.model_validate(data)
        except ValidationError as e:
            report.invalid += 1
            for err in e.errors()[:3]:
                col = ".".join(str(p) for p in err["loc"]) or None
                _add(
                    report,
                    RowProblem(
                        tab=tab, row=i, column=col, problem=err["msg"].removeprefix("Value error, ")
                    ),
                )
            continue
        k = tuple(getattr(row, c) for c in model.key)
        if k in seen:
            report.invalid += 1
            _add(
                report,
                RowProblem(
                    tab=tab, row=i, problem=f"duplicate of row {seen[k]} ({', '.join(model.key)})"
                ),
            )
            continue
        seen[k] = i
        row._sheet_row = i
        valid.append(row)
    report.valid = len(valid)
    return report, valid


def _add(report: TabReport, p: RowProblem) -> None:
    if len(report.problems) < MAX_PROBLEMS_PER_TAB:
        report.problems.append(p)


async def import_rows(
    conn: asyncpg.Connection,
    spreadsheet_id: str,
    tabs: dict[str, list[list[Any]]],
    *,
    ignored_tabs: list[str] | None = None,
    on_invalid: Literal["skip", "abort"] = "skip",
    dry_run: bool = False,
    tz: tzinfo = UTC,
) -> ImportReport:
    """Validate every tab, then insert all valid rows in one transaction."""
    report = ImportReport(
        spreadsheet_id=spreadsheet_id, ignored_tabs=list(ignored_tabs or []), dry_run=dry_run
    )
    per_table: dict[str, list[tuple[TabReport, list[_Row]]]] = {}
    for tab, rows in tabs.items():
        tr, valid = validate_tab(tab, rows, tz)
        if tr.table is None:
            report.ignored_tabs.append(tab)
            continue
        report.tabs.append(tr)
        per_table.setdefault(tr.table, []).append((tr, valid))

    # Rows must name a known account: in the database or valid in this sheet.
    known = {r["account_id"] for r in await conn.fetch("SELECT account_id FROM accounts")}
    known |= {row.account_id for _, rows in per_table.get("accounts", []) for row in rows}
    for table, parts in per_table.items():
        if table == "accounts":
            continue
        for tr, rows in parts:
            keep = []
            for row in rows:
                if row.account_id in known:
                    keep.append(row)
                else:
                    tr.invalid += 1
                    _add(
                        tr,
                        RowProblem(
                            tab=tr.tab,
                            row=row._sheet_row,
                            column="account_id",
                            problem=f"account {row.account_id!r} is not in accounts: add it to the accounts tab",
                        ),
                    )
            rows[:] = keep
    for parts in per_table.values():
        for tr, rows in parts:
            tr.valid = len(rows)

    if on_invalid == "abort" and report.invalid:
        report.aborted = True
        return report
    if dry_run:
        return report

    async with conn.transaction():
        for table in ROW_MODELS:  # dependency order
            for tr, rows in per_table.get(table, []):
                if rows:
                    inserted, refused = await _insert_keeping(conn, ROW_MODELS[table], tr, rows)
                    tr.inserted = inserted
                    tr.valid -= refused
                    tr.invalid += refused
                    tr.already_present = tr.valid - inserted
    return report


async def _insert_keeping(
    conn: asyncpg.Connection, model: type[_Row], tr: TabReport, rows: list[_Row]
) -> tuple[int, int]:
    """(rows inserted, rows Postgres refused). All at once in a savepoint; if Postgres
    refuses any row, row by row, each in its own savepoint, so one bad cell costs
    its row (reported with tab, row and Postgres' reason) and the rest lands."""
    try:
        async with conn.transaction():
            return await _insert(conn, model, rows), 0
    except REFUSED_ROW as err:
        activity.logger.info("tab %s: a row was refused (%s); inserting row by row", tr.tab, err)
    inserted = refused = 0
    for row in rows:
        try:
            async with conn.transaction():
                inserted += await _insert(conn, model, [row])
        except REFUSED_ROW as err:
            refused += 1
            _add(
                tr,
                RowProblem(
                    tab=tr.tab, row=row._sheet_row, problem=f"refused by Postgres: {err}"[:300]
                ),
            )
    return inserted, refused


# What Postgres says about a row itself (values, sizes, keys), as opposed to a lost connection.
REFUSED_ROW: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)


async def _insert(conn: asyncpg.Connection, model: type[_Row], rows: list[_Row]) -> int:
    cols = columns_of(model)
    col_sql = ", ".join(cols)
    tmp = f"import_{model.table}"
    await conn.execute(
        f"CREATE TEMP TABLE {tmp} ON COMMIT DROP AS SELECT {col_sql} FROM {model.table} WITH NO DATA"
    )
    await conn.copy_records_to_table(tmp, records=[r.record(cols) for r in rows], columns=cols)
    if model.conflict == "on_conflict" and (model.fill_in or model.advance):
        t, x = model.table, "EXCLUDED"
        sets = [f"{c} = coalesce({t}.{c}, {x}.{c})" for c in model.fill_in]
        sets += [f"{c} = greatest({t}.{c}, {x}.{c})" for c in model.advance]
        when = [f"({t}.{c} IS NULL AND {x}.{c} IS NOT NULL)" for c in model.fill_in]
        when += [f"{x}.{c} > coalesce({t}.{c}, '-infinity')" for c in model.advance]
        status = await conn.execute(
            f"INSERT INTO {t} ({col_sql}) SELECT {col_sql} FROM {tmp} "
            f"ON CONFLICT ({', '.join(model.key)}) DO UPDATE SET {', '.join(sets)} "
            f"WHERE {' OR '.join(when)}"
        )
    elif model.conflict == "on_conflict":
        status = await conn.execute(
            f"INSERT INTO {model.table} ({col_sql}) SELECT {col_sql} FROM {tmp} ON CONFLICT DO NOTHING"
        )
    else:
        match = " AND ".join(f"u.{c} = t.{c}" for c in model.key)
        status = await conn.execute(
            f"INSERT INTO {model.table} ({col_sql}) SELECT {', '.join('t.' + c for c in cols)} FROM {tmp} t "
            f"WHERE NOT EXISTS (SELECT 1 FROM {model.table} u WHERE {match})"
        )
    await conn.execute(f"DROP TABLE {tmp}")
    return int(status.split()[-1])


async def import_sheet(
    conn: asyncpg.Connection,
    spreadsheet_id: str,
    *,
    service: Any = None,
    config: SheetsConfig | None = None,
    tabs: list[str] | None = None,
    on_invalid: Literal["skip", "abort"] = "skip",
    dry_run: bool = False,
    tz: tzinfo = UTC,
) -> ImportReport:
    """Read the sheet and import it. ``service``: a built Sheets v4 resource (else from env)."""
    config = config or SheetsConfig.from_env()

    def read() -> tuple[dict[str, list[list[Any]]], list[str]]:
        svc = service or config.service()
        return fetch_tabs(svc, spreadsheet_id, tabs)

    try:
        data, others = await asyncio.to_thread(read)
    except Exception as e:
        raise _map_error(e, config.token) from None
    return await import_rows(
        conn,
        spreadsheet_id,
        data,
        ignored_tabs=others,
        on_invalid=on_invalid,
        dry_run=dry_run,
        tz=tz,
    )


class SheetImportRequest(BaseModel):
    spreadsheet_id: str = Field(min_length=1)
    tabs: list[str] | None = None
    on_invalid: Literal["skip", "abort"] = "skip"
    dry_run: bool = False


class SheetsImportActivities:
    def __init__(self, pool: asyncpg.Pool, config: SheetsConfig | None = None) -> None:
        self.pool = pool
        self.config = config or SheetsConfig.from_env()
        install_log_redaction([self.config.token])

    @activity.defn(name="import_sheet")
    async def import_sheet(self, req: SheetImportRequest) -> ImportReport:
        async with self.pool.acquire() as conn:
            report = await import_sheet(
                conn,
                req.spreadsheet_id,
                config=self.config,
                tabs=req.tabs,
                on_invalid=req.on_invalid,
                dry_run=req.dry_run,
            )
        activity.logger.info(report.summary().splitlines()[0])
        return report
