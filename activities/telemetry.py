"""Set-based telemetry reads: AccountFacts for one account or a whole portfolio.

``fetch_facts`` runs three statements whatever the number of accounts:

1. *accounts*: one row per account with the contract in force, the first and
   last usage event (two index probes each on ``(account_id, occurred_at)``)
   and every small source (product users, tickets, invoices, NPS,
   interactions, stakeholders, TAM) aggregated in CTEs grouped by account.
2. *usage*: one pass over ``usage_events`` in the longest usage window,
   reduced to one row per (account, user, event type) with window sums and a
   bit mask of the days with an event, then rolled up per user (weeks, active
   windows), per event type (features, modules, limits) and per account (gaps
   and login days, finished in Python from the masks).
3. *issues*: every impossible row up to ``as_of``, by account, table and key.

One account and the whole portfolio go through the same statements; the
only difference is an ``account_id = ANY($ids)`` predicate, so a daily scan
and a single workflow compute identical facts. The three statements run in
one read-only REPEATABLE READ transaction, so they see one snapshot.

Rules (see ``domain/facts.py``): only rows at or before ``as_of``; windows
are half-open ``(as_of - N days, as_of]``; a day is a 24-hour period counted
back from ``as_of`` (not a calendar day), so results do not depend on the
session time zone; date columns (contracts, invoices, stakeholders) compare
with the UTC date of ``as_of``. Rows with impossible values are left out of
every aggregate and listed as ``DataIssue``. Usage rows are only checked
inside the usage window (the rows that feed aggregates; the table is big);
the small tables are checked over all rows up to ``as_of``. Rows after
``as_of`` are simply not looked at, valid or not (the back-test relies on
that: they are the future, not an error).

History as it was known: columns that are filled in or overwritten after the
row was written are compared with ``as_of`` too, so scoring a past date gives
the same facts whether or not the later updates happened: a ticket closed
after as_of is open, an invoice paid after it unpaid, a user deactivated or a
stakeholder who left after it still there, a contract's ``notice_on`` after it
unknown; stakeholder engagement is read from the dated
``stakeholder_engagements`` history, never from the overwritten
``stakeholders.last_engaged_at``. Which event types count as logins is
``HealthConfig.events.login`` (passed as ``login_types``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import asyncpg

from domain.backtest import Outcome
from domain.config import ANY_EVENT, LOGIN_EVENT_TYPES
from domain.facts import AccountFacts, ContractFacts, DataIssue, Windows
from domain.format import as_utc

# --------------------------------------------------------------- validity rules
# One list per table of (condition that makes a row impossible, message SQL).
# Conditions are wrapped in coalesce(..., false) so NULLs never count as bad,
# and the same list builds both the exclusion predicate and the issue report,
# so what is reported is exactly what is left out.

_BAD: dict[str, list[tuple[str, str]]] = {
    "contracts": [
        ("end_date < start_date", "'end_date ' || end_date || ' before start_date ' || start_date"),
        ("seats_purchased < 0", "'negative seats_purchased ' || seats_purchased"),
        ("price_per_seat < 0", "'negative price_per_seat ' || price_per_seat"),
        ("arr < 0", "'negative arr ' || arr"),
    ],
    "product_users": [
        (
            "deactivated_at < created_at",
            "'deactivated_at ' || deactivated_at || ' before created_at ' || created_at",
        ),
    ],
    "usage_events": [
        ("quantity < 0", "'negative quantity ' || quantity || ' (' || event_type || ')'"),
        # numeric NaN sorts above every number and Infinity above every finite one
        ("quantity >= 'Infinity'::numeric", "'non-finite quantity ' || quantity"),
        ("btrim(event_type) = ''", "'empty event_type'"),
    ],
    "support_tickets": [
        ("NOT (sentiment BETWEEN -1 AND 1)", "'sentiment ' || sentiment || ' outside -1..1'"),
        (
            "closed_at < opened_at",
            "'closed_at ' || closed_at || ' before opened_at ' || opened_at",
        ),
    ],
    "invoices": [
        ("due_on < issued_on", "'due_on ' || due_on || ' before issued_on ' || issued_on"),
        ("paid_on < issued_on", "'paid_on ' || paid_on || ' before issued_on ' || issued_on"),
        ("amount < 0", "'negative amount ' || amount"),
    ],
    "nps_responses": [
        ("NOT (score BETWEEN 0 AND 10)", "'NPS score ' || score || ' outside 0..10'"),
    ],
    "interactions": [
        ("attendees < 0", "'negative attendees ' || attendees"),
    ],
    "stakeholders": [
        ("left_on < joined_on", "'left_on ' || left_on || ' before joined_on ' || joined_on"),
    ],
    "tam_health": [
        ("NOT (score BETWEEN 0 AND 100)", "'TAM score ' || score || ' outside 0..100'"),
        (
            "upper(rag) NOT IN ('RED', 'AMBER', 'GREEN')",
            "'unknown rag ' || quote_literal(rag)",
        ),
    ],
}

# How each table names a row, and which of its rows are "up to as_of".
# $1 = as_of (timestamptz), $2 = as_of's UTC date.
_ROW_KEY: dict[str, str] = {
    "contracts": "contract_id::text",
    "product_users": "user_id",
    "usage_events": "user_id || '@' || to_char(occurred_at AT TIME ZONE 'UTC', "
    '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\')',
    "support_tickets": "ticket_id",
    "invoices": "invoice_id",
    "nps_responses": "response_id",
    "interactions": "interaction_id",
    "stakeholders": "stakeholder_id",
    "tam_health": "to_char(measured_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
}


def _in_scope(table: str, w: Windows) -> str:
    """Rows of `table` that exist as of as_of (and, for usage, feed an aggregate)."""
    return {
        "contracts": "start_date <= $2",
        "product_users": "created_at <= $1",
        "usage_events": f"occurred_at <= $1 AND occurred_at > {_since(usage_horizon(w))}",
        "support_tickets": "opened_at <= $1",
        "invoices": "issued_on <= $2",
        "nps_responses": "responded_at <= $1",
        "interactions": "occurred_at <= $1",
        "stakeholders": "(joined_on IS NULL OR joined_on <= $2)",
        "tam_health": "measured_at <= $1",
    }[table]


def _bad(table: str) -> str:
    return "(" + " OR ".join(f"coalesce({c}, false)" for c, _ in _BAD[table]) + ")"


# The same rule as NOT _bad() for these NOT NULL columns, written so the planner can
# estimate it (NOT coalesce(...) defeats its statistics on the big table).
_VALID_OVERRIDE = {
    "usage_events": "quantity >= 0 AND quantity < 'Infinity'::numeric AND btrim(event_type) <> ''",
}


def _valid(table: str) -> str:
    return _VALID_OVERRIDE.get(table) or f"NOT {_bad(table)}"


def _problem(table: str) -> str:
    parts = ", ".join(f"CASE WHEN coalesce({c}, false) THEN {m} END" for c, m in _BAD[table])
    return f"concat_ws('; ', {parts})"


def _ids(filtered: bool, col: str = "account_id") -> str:
    # The only difference between the one-account and the portfolio statements.
    return f"{col} = ANY($3::text[])" if filtered else "true"


def usage_horizon(w: Windows) -> int:
    return max(2 * w.activity_days, w.adoption_days, 7 * w.weeks_series)


# ----------------------------------------------------------------------- SQL


def accounts_sql(w: Windows, filtered: bool) -> str:
    t, tb = w.ticket_days, w.ticket_baseline_days
    return f"""
WITH acc AS (
    SELECT account_id, name, tier, csm_owner FROM accounts WHERE {_ids(filtered)}
),
con AS (  -- the row in force: the latest valid one started by as_of
    SELECT DISTINCT ON (account_id) account_id, start_date, end_date, arr, seats_purchased,
           price_per_seat, licensed_modules,
           CASE WHEN notice_on <= $2 THEN notice_on END AS notice_on  -- known by as_of only
    FROM contracts
    WHERE start_date <= $2 AND {_valid("contracts")} AND {_ids(filtered)}
    ORDER BY account_id, start_date DESC
),
pu AS (
    SELECT account_id,
           count(*) FILTER (WHERE deactivated_at IS NULL OR deactivated_at > $1) AS provisioned
    FROM product_users
    WHERE created_at <= $1 AND {_valid("product_users")} AND {_ids(filtered)}
    GROUP BY account_id
),
tk AS (
    SELECT account_id,
           count(*) FILTER (WHERE opened_at > {_since(t)}) AS recent,
           count(*) FILTER (WHERE opened_at <= {_since(t)}
                              AND opened_at > {_since(t + tb)}) AS baseline_n,
           avg(sentiment) FILTER (WHERE opened_at > {_since(t)}) AS sentiment,
           count(*) FILTER (WHERE priority IN ('high', 'urgent')
                              AND (closed_at IS NULL OR closed_at > $1)) AS urgent_open,
           count(*) FILTER (WHERE escalated
                              AND opened_at > {_since(w.escalation_days)}) AS escalations
    FROM support_tickets
    WHERE opened_at <= $1 AND {_valid("support_tickets")} AND {_ids(filtered)}
    GROUP BY account_id
),
inv AS (
    SELECT account_id,
           count(*) AS total,
           count(*) FILTER (WHERE due_on < $2 AND (paid_on IS NULL OR paid_on > $2)) AS overdue,
           coalesce(sum(amount) FILTER (WHERE due_on < $2 AND (paid_on IS NULL OR paid_on > $2)), 0)
               AS overdue_amount,
           coalesce(max($2 - due_on) FILTER (WHERE due_on < $2 AND (paid_on IS NULL OR paid_on > $2)), 0)
               AS max_days_overdue
    FROM invoices
    WHERE issued_on <= $2 AND {_valid("invoices")} AND {_ids(filtered)}
    GROUP BY account_id
),
nps AS (
    SELECT account_id,
           (array_agg(score ORDER BY responded_at DESC, response_id DESC))[1] AS latest,
           max(responded_at) AS latest_at,
           avg(score) FILTER (WHERE responded_at > {_since(w.nps_days)}) AS mean,
           count(*) FILTER (WHERE responded_at > {_since(w.nps_days)}) AS n
    FROM nps_responses
    WHERE responded_at <= $1 AND {_valid("nps_responses")} AND {_ids(filtered)}
    GROUP BY account_id
),
ia AS (
    SELECT account_id, max(occurred_at) AS last_meaningful
    FROM interactions
    WHERE occurred_at <= $1 AND meaningful AND {_valid("interactions")} AND {_ids(filtered)}
    GROUP BY account_id
),
sh AS (
    SELECT account_id,
           count(*) FILTER (WHERE active) AS active,
           count(*) FILTER (WHERE active AND engaged) AS engaged,
           bool_or(active AND champion) AS champion_active,
           max(left_on) FILTER (WHERE champion AND left_on <= $2
                                  AND left_on > $2 - {w.champion_left_days}) AS champion_left_on,
           bool_or(active AND role = 'executive_sponsor') AS sponsor_active
    FROM (
        SELECT account_id, role, left_on,
               (is_champion OR role = 'champion') AS champion,
               (left_on IS NULL OR left_on > $2) AS active,
               -- engagement as it was at as_of: the dated history, never the overwritten
               -- stakeholders.last_engaged_at (which may hold a later date)
               EXISTS (SELECT 1 FROM stakeholder_engagements g
                       WHERE g.account_id = st.account_id AND g.stakeholder_id = st.stakeholder_id
                         AND g.engaged_at <= $1
                         AND g.engaged_at > {_since(w.stakeholder_days)}) AS engaged
        FROM stakeholders st
        WHERE (joined_on IS NULL OR joined_on <= $2) AND {_valid("stakeholders")} AND {_ids(filtered)}
    ) s
    GROUP BY account_id
),
tam AS (
    SELECT account_id,
           (array_agg(score ORDER BY measured_at DESC))[1] AS score,
           (array_agg(upper(rag) ORDER BY measured_at DESC))[1] AS rag,
           max(measured_at) AS measured_at,
           count(*) FILTER (WHERE escalation
                              AND measured_at > {_since(w.escalation_days)}) AS escalations
    FROM tam_health
    WHERE measured_at <= $1 AND {_valid("tam_health")} AND {_ids(filtered)}
    GROUP BY account_id
)
SELECT acc.account_id, acc.name, acc.tier, acc.csm_owner,
       con.start_date, con.end_date, con.arr, con.seats_purchased, con.price_per_seat,
       con.licensed_modules, con.notice_on,
       fe.occurred_at AS first_event_at, le.occurred_at AS last_event_at,
       pu.provisioned,
       tk.recent AS tickets_recent, tk.baseline_n AS tickets_baseline_n,
       tk.sentiment AS ticket_sentiment, tk.urgent_open, tk.escalations,
       inv.total AS invoices_total, inv.overdue AS invoices_overdue, inv.overdue_amount,
       inv.max_days_overdue,
       nps.latest AS nps_latest, nps.latest_at AS nps_latest_at, nps.mean AS nps_mean,
       nps.n AS nps_n,
       ia.last_meaningful,
       sh.active AS sh_active, sh.engaged AS sh_engaged, sh.champion_active,
       sh.champion_left_on, sh.sponsor_active,
       tam.score AS tam_score, tam.rag AS tam_rag, tam.measured_at AS tam_measured_at,
       tam.escalations AS tam_escalations
FROM acc
LEFT JOIN con USING (account_id)
LEFT JOIN pu USING (account_id)
LEFT JOIN tk USING (account_id)
LEFT JOIN inv USING (account_id)
LEFT JOIN nps USING (account_id)
LEFT JOIN ia USING (account_id)
LEFT JOIN sh USING (account_id)
LEFT JOIN tam USING (account_id)
-- first/last valid event at any age: two index probes on (account_id, occurred_at)
LEFT JOIN LATERAL (
    SELECT occurred_at FROM usage_events e
    WHERE e.account_id = acc.account_id AND e.occurred_at <= $1 AND {_valid("usage_events")}
    ORDER BY e.occurred_at LIMIT 1
) fe ON true
LEFT JOIN LATERAL (
    SELECT occurred_at FROM usage_events e
    WHERE e.account_id = acc.account_id AND e.occurred_at <= $1 AND {_valid("usage_events")}
    ORDER BY e.occurred_at DESC LIMIT 1
) le ON true
ORDER BY acc.account_id
"""


def _chunks(n_bits: int) -> int:
    return max(1, math.ceil(n_bits / 64))


def _since(days: int) -> str:
    # Days are 24-hour periods back from as_of: hours, not 'days', so the session time
    # zone's DST never stretches a window (and no per-row time zone lookup happens).
    return f"$1::timestamptz - interval '{24 * days} hours'"


def _any_bits(lo: int, hi: int, prefix: str = "dm") -> str:
    """SQL: is any bit in [lo, hi) set in the chunked mask prefix0, prefix1, ...?"""
    tests = []
    for c in range(lo // 64, _chunks(hi)):
        a, b = max(lo, 64 * c) - 64 * c, min(hi, 64 * (c + 1)) - 64 * c
        if a >= b:
            continue
        # & with a mask of (b - a) ones drops the sign bits that >> drags in
        ones = (1 << (b - a)) - 1
        ones_sql = str(ones) if ones < 2**63 else "-1"
        tests.append(f"(({prefix}{c} >> {a}) & {ones_sql}) <> 0")
    return "(" + " OR ".join(f"coalesce({t}, false)" for t in tests) + ")"


def _sql_text(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def _login_pred(login_types: Sequence[str]) -> str:
    """SQL: is this event a login? ``*`` in the list: every event counts (a feed with no
    login event: login days become days with any activity)."""
    if ANY_EVENT in login_types:
        return "true"
    return f"event_type IN ({', '.join(_sql_text(t) for t in login_types)})"


def _not_login_feature(login_types: Sequence[str]) -> str:
    """SQL: an event type that is not a named login type (feature_users leaves those out)."""
    named = [t for t in login_types if t != ANY_EVENT]
    return f"event_type NOT IN ({', '.join(_sql_text(t) for t in named)})" if named else "true"


def _ut_raw(w: Windows, filtered: bool, chunks: range) -> str:
    """The one pass over raw usage_events: per account, user, event type."""
    a, ad, span = w.activity_days, w.adoption_days, usage_horizon(w)
    # d = whole days back from as_of (0 = the last 24 h); computed only for the masks. The
    # float8 epoch of an interval is exact to the microsecond at these magnitudes, so bit d
    # agrees with the timestamp comparisons used for the window sums.
    d = "floor(date_part('epoch', $1 - occurred_at) / 86400)::int"
    masks = ",\n           ".join(
        f"bit_or(1::bigint << ({d} - {64 * c})) FILTER (WHERE occurred_at <= {_since(64 * c)}"
        f" AND occurred_at > {_since(min(64 * (c + 1), span))}) AS dm{c}"
        for c in chunks
    )
    return f"""
    SELECT account_id, user_id, event_type,
           count(*) FILTER (WHERE occurred_at > {_since(a)}) AS n_act,
           sum(quantity) FILTER (WHERE occurred_at > {_since(a)}) AS q_act,
           sum(quantity) FILTER (WHERE occurred_at <= {_since(a)}
                                   AND occurred_at > {_since(2 * a)}) AS q_prev,
           sum(quantity) FILTER (WHERE occurred_at > {_since(ad)}) AS q_adopt,
           {masks}
    FROM usage_events
    WHERE occurred_at <= $1 AND occurred_at > {_since(span)}
      AND {_valid("usage_events")} AND {_ids(filtered)}
      AND $2::date IS NOT NULL  -- constant; keeps one parameter list for every statement
    GROUP BY account_id, user_id, event_type"""


def _ut_rollup(w: Windows, filtered: bool, chunks: range) -> str:
    """The same rows from the rollup (migration 010), exact when as_of is 00:00 UTC: then
    every window boundary is a midnight, each rollup day (00:00, 24:00] lies wholly inside or
    outside each window, and day D is `$2 - D - 1` whole days back from as_of ($2 = as_of's
    date). The rollup holds valid rows only.

    Two kinds of rows, which the statement keeps apart: per (account, user, event type) the
    day masks only (from usage_user_month), and per (account, event type) with user_id NULL
    the counts and quantities only (from usage_type_daily). Everything downstream either
    sums the counts or ORs/counts the masks, so the facts are the raw path's.

    A month row's bit p (31 - day of month) is day `month + 30 - p`, i.e. `p + off - 30`
    days back with off = `$2 - month - 1`: the mask shifted by `off - 30` (left, or right
    to drop the days on or after as_of's date), then cut to the usage horizon."""
    a, ad, span = w.activity_days, w.adoption_days, usage_horizon(w)
    off = "($2::date - month - 1)"

    def chunk(c: int) -> str:
        s = f"({off} - {30 + 64 * c})"
        shifted = (
            f"CASE WHEN {s} BETWEEN 0 AND 63 THEN days::bigint << {s}"
            f" WHEN {s} BETWEEN -30 AND -1 THEN days::bigint >> -{s} ELSE 0 END"
        )
        width = span - 64 * c
        if width < 64:
            shifted = f"({shifted}) & {(1 << width) - 1}"
        return f"nullif(bit_or({shifted}), 0) AS dm{c}"

    masks = ",\n               ".join(chunk(c) for c in chunks)
    any_mask = " OR ".join(f"dm{c} IS NOT NULL" for c in chunks)
    nulls = ", ".join(f"NULL::bigint AS dm{c}" for c in chunks)
    dms = ", ".join(f"dm{c}" for c in chunks)
    return f"""
    SELECT account_id, user_id, event_type, NULL::bigint AS n_act, NULL::numeric AS q_act,
           NULL::numeric AS q_prev, NULL::numeric AS q_adopt, {dms}
    FROM (
        SELECT account_id, user_id, event_type,
               {masks}
        FROM usage_user_month
        WHERE month < $2::date AND month >= date_trunc('month', ($2::date - {span})::timestamp)::date
          AND {_ids(filtered)}
          AND $1::timestamptz IS NOT NULL  -- constant; keeps one parameter list
        GROUP BY account_id, user_id, event_type
    ) um
    WHERE {any_mask}
    UNION ALL
    SELECT account_id, NULL::text, event_type,
           coalesce(sum(events) FILTER (WHERE day >= $2::date - {a}), 0)::bigint,
           sum(quantity) FILTER (WHERE day >= $2::date - {a}),
           sum(quantity) FILTER (WHERE day < $2::date - {a} AND day >= $2::date - {2 * a}),
           sum(quantity) FILTER (WHERE day >= $2::date - {ad}),
           {nulls}
    FROM usage_type_daily
    WHERE day < $2::date AND day >= $2::date - {span} AND {_ids(filtered)}
    GROUP BY account_id, event_type"""


def usage_sql(
    w: Windows,
    filtered: bool,
    login_types: Sequence[str] = LOGIN_EVENT_TYPES,
    rollup: bool = False,
) -> str:
    a, ad, ws = w.activity_days, w.adoption_days, w.weeks_series
    span = usage_horizon(w)  # the day masks cover every usage window
    chunks = range(_chunks(span))
    ut = (_ut_rollup if rollup else _ut_raw)(w, filtered, chunks)
    bits = ", ".join(f"bit_or(dm{c}) AS dm{c}" for c in chunks)
    login_bits = ", ".join(
        f"bit_or(dm{c}) FILTER (WHERE {_login_pred(login_types)}) AS login_dm{c}" for c in chunks
    )
    weeks = ", ".join(f"count(*) FILTER (WHERE {_any_bits(7 * k, 7 * k + 7)})" for k in range(ws))
    return f"""
WITH ut AS MATERIALIZED (  -- the one pass over usage: per account, user, event type
{ut}
),
usr AS (  -- per user: a day mask over every event type
    SELECT account_id, user_id, {bits} FROM ut GROUP BY account_id, user_id
),
u_acc AS (
    SELECT account_id,
           count(*) FILTER (WHERE {_any_bits(0, a)}) AS active_users,
           count(*) FILTER (WHERE {_any_bits(a, 2 * a)}) AS active_users_prev,
           count(*) FILTER (WHERE {_any_bits(0, ad)}) AS adoption_users,
           ARRAY[{weeks}]::int[] AS weeks_newest_first,
           {bits}
    FROM usr GROUP BY account_id
),
t_acc AS (
    SELECT account_id,
           coalesce(sum(q_act), 0) AS usage_quantity,
           coalesce(sum(q_prev), 0) AS usage_quantity_prev,
           coalesce(sum(n_act) FILTER (WHERE {_login_pred(login_types)}), 0) AS logins,
           {login_bits}
    FROM ut GROUP BY account_id
),
ft AS (  -- per account and event type
    SELECT account_id, event_type,
           CASE WHEN strpos(event_type, '.') > 0 THEN split_part(event_type, '.', 1) END AS module,
           event_type LIKE '%.limit_hit' AS is_limit,
           count(*) FILTER (WHERE {_any_bits(0, ad)}) AS users,
           sum(q_adopt) AS q_adopt, sum(n_act) AS n_act
    FROM ut GROUP BY account_id, event_type
),
f_acc AS (
    SELECT account_id,
           jsonb_object_agg(event_type, users) FILTER (
               WHERE users > 0 AND {_not_login_feature(login_types)} AND NOT is_limit)
               AS feature_users
    FROM ft GROUP BY account_id
),
m_acc AS (
    SELECT account_id,
           jsonb_object_agg(module, q) FILTER (WHERE users > 0 AND NOT is_limit) AS module_usage,
           jsonb_object_agg(module, n_act) FILTER (WHERE is_limit AND n_act > 0) AS limit_hits
    FROM (
        SELECT account_id, module, is_limit, coalesce(sum(q_adopt), 0) AS q,
               sum(n_act) AS n_act, sum(users) AS users
        FROM ft WHERE module IS NOT NULL
        GROUP BY account_id, module, is_limit
    ) mm
    GROUP BY account_id
)
SELECT t_acc.*, u_acc.active_users, u_acc.active_users_prev, u_acc.adoption_users,
       u_acc.weeks_newest_first, {", ".join(f"u_acc.dm{c}" for c in chunks)},
       f_acc.feature_users, m_acc.module_usage, m_acc.limit_hits
FROM t_acc
JOIN u_acc USING (account_id)
LEFT JOIN f_acc USING (account_id)
LEFT JOIN m_acc USING (account_id)  -- no row when every event is a login
"""


def issues_sql(w: Windows, filtered: bool) -> str:
    parts = [
        f"""SELECT account_id, '{table}' AS tbl, {_ROW_KEY[table]} AS row_key, {_problem(table)} AS problem
    FROM {table}
    WHERE {_in_scope(table, w)} AND {_bad(table)} AND {_ids(filtered)}"""
        for table in _BAD
    ]
    return "\nUNION ALL\n".join(parts) + "\nORDER BY account_id, tbl, row_key, problem"


# ------------------------------------------------------------------ assembly


_utc = as_utc  # one definition: domain/format.py


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def _mask(row: asyncpg.Record, prefix: str, n_chunks: int) -> int:
    m = 0
    for c in range(n_chunks):
        v = row[f"{prefix}{c}"]
        if v is not None:
            m |= (v & 0xFFFF_FFFF_FFFF_FFFF) << (64 * c)  # bigint is signed
    return m


def _days_back(as_of: datetime, ts: datetime) -> int:
    return (as_of - ts) // timedelta(days=1)


def _max_gap(day_mask: int, first_event_at: datetime, as_of: datetime, window: int) -> int:
    """Longest run of days without an event in the window (or since the first event)."""
    span = min(window, _days_back(as_of, first_event_at) + 1)  # days 0..span-1 are in play
    bits = format(day_mask & ((1 << span) - 1), f"0{span}b")
    return max(len(run) for run in bits.split("1"))


def _json_map(v: Any, cast: type) -> dict:
    if v is None:
        return {}
    import json

    d = json.loads(v) if isinstance(v, str) else v
    return {k: cast(x) for k, x in sorted(d.items())}


@dataclass(frozen=True)
class _Statements:
    accounts: str
    usage: str
    issues: str


_cache: dict[tuple[str, bool, tuple[str, ...], bool], _Statements] = {}


def statements(
    w: Windows,
    filtered: bool,
    login_types: Sequence[str] = LOGIN_EVENT_TYPES,
    rollup: bool = False,
) -> _Statements:
    key = (w.model_dump_json(), filtered, tuple(login_types), rollup)
    if key not in _cache:
        _cache[key] = _Statements(
            accounts_sql(w, filtered),
            usage_sql(w, filtered, login_types, rollup),
            issues_sql(w, filtered),
        )
    return _cache[key]


# Where the usage facts come from: "auto" reads the rollup (usage_type_daily and
# usage_user_month, migration 010) when as_of is 00:00 UTC, where it gives exactly the raw facts, else raw usage_events.
UsageSource = Literal["auto", "raw", "rollup"]


def reads_rollup(as_of: datetime, source: UsageSource = "auto") -> bool:
    t = _utc(as_of)
    midnight = (t.hour, t.minute, t.second, t.microsecond) == (0, 0, 0, 0)
    if source == "rollup" and not midnight:
        raise ValueError(f"the daily usage rollup gives exact facts as of 00:00 UTC only: {t}")
    return midnight if source == "auto" else source == "rollup"


async def _fetch_raw(
    conn: asyncpg.Connection,
    as_of: datetime,
    windows: Windows,
    account_ids: Sequence[str] | None,
    login_types: Sequence[str],
    usage_source: UsageSource = "auto",
) -> tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]:
    rollup = reads_rollup(as_of, usage_source)
    st = statements(windows, account_ids is not None, login_types, rollup)
    args: list[Any] = [as_of, as_of.date()]
    if account_ids is not None:
        args.append(list(account_ids))

    async def run() -> tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]:
        return (
            await conn.fetch(st.accounts, *args),
            await conn.fetch(st.usage, *args),
            await conn.fetch(st.issues, *args),
        )

    if conn.is_in_transaction():  # the caller owns the transaction (and its snapshot)
        return await run()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        # The portfolio aggregation hashes millions of groups; give it room (local to this tx).
        await conn.execute("SET LOCAL work_mem = '128MB'")
        return await run()


async def fetch_facts(
    conn: asyncpg.Connection,
    as_of: datetime,
    windows: Windows,
    account_ids: Sequence[str] | None = None,
    login_types: Sequence[str] = LOGIN_EVENT_TYPES,
    usage_source: UsageSource = "auto",
) -> dict[str, AccountFacts]:
    """AccountFacts for `account_ids` (None: every account), keyed by account_id.

    ``login_types``: the event types that count as a login (``HealthConfig.events.login``;
    ``*`` = any event). Accounts that do not exist are absent from the result.
    ``usage_source``: see ``reads_rollup`` (the facts are the same either way).
    """
    as_of = _utc(as_of)
    if account_ids is not None and len(account_ids) == 0:
        return {}
    acc_rows, usage_rows, issue_rows = await _fetch_raw(
        conn, as_of, windows, account_ids, login_types, usage_source
    )
    usage = {r["account_id"]: r for r in usage_rows}
    issues: dict[str, list[DataIssue]] = {}
    for r in issue_rows:
        issues.setdefault(r["account_id"], []).append(
            DataIssue(table=r["tbl"], row=r["row_key"], problem=r["problem"])
        )
    days_chunks = _chunks(usage_horizon(windows))
    out: dict[str, AccountFacts] = {}
    for r in acc_rows:
        aid = r["account_id"]
        f: dict[str, Any] = {
            "account_id": aid,
            "as_of": as_of,
            "name": r["name"],
            "tier": r["tier"],
            "csm_owner": r["csm_owner"],
            "windows": windows,
            "data_issues": issues.get(aid, []),
        }
        if r["start_date"] is not None:
            f["contract"] = ContractFacts(
                start_date=r["start_date"],
                end_date=r["end_date"],
                arr=float(r["arr"]),
                seats_purchased=r["seats_purchased"],
                price_per_seat=float(r["price_per_seat"]),
                licensed_modules=sorted(r["licensed_modules"] or []),
                notice_on=r["notice_on"],
            )
        if r["first_event_at"] is not None:
            f.update(_usage_fields(usage.get(aid), r, as_of, windows, days_chunks))
        if r["provisioned"] is not None:
            f["provisioned_users"] = r["provisioned"]
        if r["tickets_recent"] is not None:
            f.update(
                any_tickets_ever=True,
                tickets_recent=r["tickets_recent"],
                tickets_baseline=r["tickets_baseline_n"]
                * windows.ticket_days
                / windows.ticket_baseline_days,
                ticket_sentiment_recent=_f(r["ticket_sentiment"]),
                urgent_open=r["urgent_open"],
                escalations=r["escalations"],
            )
        if r["invoices_total"] is not None:
            f.update(
                invoices_total=r["invoices_total"],
                invoices_open_overdue=r["invoices_overdue"],
                overdue_amount=float(r["overdue_amount"]),
                max_days_overdue=r["max_days_overdue"],
            )
        if r["nps_latest"] is not None:
            f.update(
                nps_latest=r["nps_latest"],
                nps_latest_at=r["nps_latest_at"],
                nps_mean=_f(r["nps_mean"]),
                nps_responses=r["nps_n"],
            )
        f["last_meaningful_interaction_at"] = r["last_meaningful"]
        if r["sh_active"] is not None:
            f.update(
                stakeholders_active=r["sh_active"],
                stakeholders_engaged=r["sh_engaged"],
                champion_active=bool(r["champion_active"]),
                champion_left_on=r["champion_left_on"],
                exec_sponsor_active=bool(r["sponsor_active"]),
            )
        if r["tam_measured_at"] is not None:
            f.update(
                tam_score=r["tam_score"],
                tam_rag=r["tam_rag"],
                tam_measured_at=r["tam_measured_at"],
                tam_escalations=r["tam_escalations"],
            )
        out[aid] = AccountFacts(**f)
    return out


def _usage_fields(
    u: asyncpg.Record | None,
    acc: asyncpg.Record,
    as_of: datetime,
    w: Windows,
    days_chunks: int,
) -> dict[str, Any]:
    """Usage facts of an account that has events up to as_of (maybe none in the windows)."""
    first, last = acc["first_event_at"], acc["last_event_at"]
    if u is None:  # events exist, but all older than the usage windows
        return {
            "active_users": 0,
            "active_users_prev": 0,
            "usage_quantity": 0.0,
            "usage_quantity_prev": 0.0,
            "logins": 0,
            "login_days": 0,
            "weekly_active_users": [0] * w.weeks_series,
            "max_gap_days": _max_gap(0, first, as_of, w.adoption_days),
            "first_event_at": first,
            "last_event_at": last,
            "feature_users": {},
            "adoption_users": 0,
            "module_usage": {},
            "limit_hits": {},
        }
    day_mask = _mask(u, "dm", days_chunks)
    login_mask = _mask(u, "login_dm", days_chunks)
    return {
        "active_users": u["active_users"],
        "active_users_prev": u["active_users_prev"],
        "usage_quantity": float(u["usage_quantity"]),
        "usage_quantity_prev": float(u["usage_quantity_prev"]),
        "logins": int(u["logins"]),
        "login_days": (login_mask & ((1 << w.activity_days) - 1)).bit_count(),
        "weekly_active_users": list(reversed(u["weeks_newest_first"])),
        "max_gap_days": _max_gap(day_mask, first, as_of, w.adoption_days),
        "first_event_at": first,
        "last_event_at": last,
        "feature_users": _json_map(u["feature_users"], int),
        "adoption_users": u["adoption_users"],
        "module_usage": _json_map(u["module_usage"], float),
        "limit_hits": _json_map(u["limit_hits"], int),
    }


# ------------------------------------------------------------ accounts, outcomes


async def fetch_account_ids(
    conn: asyncpg.Connection, as_of: datetime, after: str | None = None, limit: int | None = None
) -> list[str]:
    """Accounts with a contract in force at as_of: the latest valid row started by then
    has not ended (end_date is inclusive). `after`/`limit`: the next page in account_id
    order (the scheduled scan's chunks)."""
    d = _utc(as_of).date()
    rows = await conn.fetch(
        f"""SELECT account_id FROM (
                SELECT DISTINCT ON (account_id) account_id, end_date
                FROM contracts WHERE start_date <= $1 AND {_valid("contracts")}
                  AND ($2::text IS NULL OR account_id > $2)
                ORDER BY account_id, start_date DESC) c
            WHERE end_date >= $1
            ORDER BY account_id
            LIMIT $3""",
        d,
        after,
        limit,
    )
    return [r["account_id"] for r in rows]


async def fetch_data_until(conn: asyncpg.Connection) -> date | None:
    """The latest date with a fact in the telemetry (events, tickets, invoices issued, NPS,
    interactions, engagements, TAM, notices), capped at the database's current date; None
    for an empty database. Contract start and end dates are not facts of a day (a renewal
    is signed ahead, an end date is scheduled), so they do not count. An exported history
    is observed until this date, not until today."""
    return await conn.fetchval(
        """SELECT least(current_date, latest) FROM (SELECT greatest(
               (SELECT max(le.at) FROM accounts a CROSS JOIN LATERAL (  -- index probes
                    SELECT (occurred_at AT TIME ZONE 'UTC')::date AS at FROM usage_events e
                    WHERE e.account_id = a.account_id ORDER BY occurred_at DESC LIMIT 1) le),
               (SELECT max((opened_at AT TIME ZONE 'UTC')::date) FROM support_tickets),
               (SELECT max(issued_on) FROM invoices),
               (SELECT max((responded_at AT TIME ZONE 'UTC')::date) FROM nps_responses),
               (SELECT max((occurred_at AT TIME ZONE 'UTC')::date) FROM interactions),
               (SELECT max((engaged_at AT TIME ZONE 'UTC')::date) FROM stakeholder_engagements),
               (SELECT max((measured_at AT TIME ZONE 'UTC')::date) FROM tam_health),
               (SELECT max(notice_on) FROM contracts)) AS latest) x
           WHERE latest IS NOT NULL"""
    )


async def fetch_outcomes(
    conn: asyncpg.Connection, today: date | None = None, since: date | None = None
) -> dict[str, Outcome]:
    """What happened to each account, from its (valid) contract rows, for the back-test.

    churned_on: the day the churn became known. For the last row (a term with no later
    row): its notice_on when a notice is on file by `today` (default: the database's
    current date), else its end_date when that is before `today`. A notice on a term
    that was followed by a later row was withdrawn (the account renewed): no churn.
    expanded_on: the start_date
    of the first row on or after `since` with more seats than the row before, or a
    strict superset of its modules. Accounts with neither are absent.
    """
    rows = await conn.fetch(
        f"""SELECT account_id, start_date, end_date, notice_on, seats_purchased, licensed_modules,
                   lag(seats_purchased) OVER w AS prev_seats,
                   lag(licensed_modules) OVER w AS prev_modules,
                   lead(start_date) OVER w AS next_start,
                   coalesce($1::date, current_date) AS today
            FROM contracts WHERE {_valid("contracts")}
            WINDOW w AS (PARTITION BY account_id ORDER BY start_date)
            ORDER BY account_id, start_date""",
        today,
    )
    churned: dict[str, date] = {}
    expanded: dict[str, date] = {}
    for r in rows:
        aid = r["account_id"]
        if (
            r["prev_seats"] is not None
            and aid not in expanded
            and (since is None or r["start_date"] >= since)
            and (
                r["seats_purchased"] > r["prev_seats"]
                or set(r["licensed_modules"]) > set(r["prev_modules"])
            )
        ):
            expanded[aid] = r["start_date"]
        if r["next_start"] is None:
            if r["notice_on"] is not None and r["notice_on"] <= r["today"]:
                churned[aid] = r["notice_on"]
            elif r["end_date"] < r["today"]:
                churned[aid] = r["end_date"]
    return {
        aid: Outcome(churned_on=churned.get(aid), expanded_on=expanded.get(aid))
        for aid in sorted(churned.keys() | expanded.keys())
    }
