"""QBR data gathering: snapshots, findings, usage vs benchmark, contracts -> ``QbrDocument``.

A few set-based queries per account over the review window; the document is
built by the pure ``domain.qbr.build_qbr``. Narratives are filled by the
template here; the QBR workflow replaces them with ``write_narrative``
results (``domain.qbr.apply_narratives``) and delivers the page plus a
cover-note draft (``qbr_page_request`` / ``qbr_cover_note_request``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.db import contract_fields
from domain.qbr import (
    ContractInfo,
    FeatureBenchmark,
    FeatureUse,
    FindingInfo,
    OpportunityInfo,
    QbrConfig,
    QbrData,
    QbrDocument,
    QbrRequest,
    ScorePoint,
    build_qbr,
)
from stack.settings import Settings


def load_catalogue() -> tuple[list[FeatureBenchmark], dict[str, str]]:
    """Feature benchmarks and module labels from the health configuration (VIM_HEALTH_CONFIG applies)."""
    import os

    from domain.config import load_health_config

    cfg = load_health_config(env=os.environ)
    features = [
        FeatureBenchmark(module=m, event_type=f.event_type, label=f.label, benchmark=f.benchmark)
        for m, f in cfg.features()
    ]
    return features, {m: spec.label for m, spec in cfg.catalogue.items()}


def default_qbr_config() -> QbrConfig:
    """The QBR's expansion threshold is the expansion rules' own (VIM_HEALTH_CONFIG applies)."""
    import os

    from domain.config import load_health_config

    cfg = load_health_config(env=os.environ)
    return QbrConfig(expansion_seat_utilization=cfg.expansion.seat_utilization_min)


class QbrActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings | None = None,
        config: QbrConfig | None = None,
        catalogue: tuple[list[FeatureBenchmark], dict[str, str]] | None = None,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.config = config or default_qbr_config()
        self._catalogue = catalogue

    @activity.defn(name="prepare_qbr")
    async def prepare_qbr(self, req: QbrRequest) -> QbrDocument:
        async with self.pool.acquire() as conn:
            data = await gather_qbr_data(conn, req, self.config, self.catalogue())
        return build_qbr(data)

    def catalogue(self) -> tuple[list[FeatureBenchmark], dict[str, str]]:
        if self._catalogue is None:
            self._catalogue = load_catalogue()
        return self._catalogue


async def gather_qbr_data(
    conn: asyncpg.Connection,
    req: QbrRequest,
    config: QbrConfig,
    catalogue: tuple[list[FeatureBenchmark], dict[str, str]],
) -> QbrData:
    as_of = req.as_of
    start = as_of - timedelta(days=req.window_days)
    prev_start = start - timedelta(days=req.window_days)
    acct = await conn.fetchrow(
        "SELECT name, tier, csm_owner, csm_email, rep_owner, rep_email FROM accounts WHERE account_id = $1",
        req.account_id,
    )
    if acct is None:
        raise ApplicationError(
            f"QBR: account {req.account_id!r} is not in the accounts table",
            non_retryable=True,
            type="QbrRejected",
        )
    contract = await conn.fetchrow(
        """SELECT start_date, end_date, arr, seats_purchased, price_per_seat, licensed_modules
           FROM contracts WHERE account_id = $1 AND start_date <= $2::date
           ORDER BY start_date DESC LIMIT 1""",
        req.account_id,
        as_of.date(),
    )
    snaps = await conn.fetch(
        """(SELECT as_of, score, band, churn_risk FROM health_snapshots
             WHERE account_id = $1 AND as_of <= $2 ORDER BY as_of DESC LIMIT 1)
           UNION ALL
           (SELECT as_of, score, band, churn_risk FROM health_snapshots
             WHERE account_id = $1 AND as_of > $2 AND as_of <= $3)
           ORDER BY as_of""",
        req.account_id,
        start,
        as_of,
    )
    latest_payload = await conn.fetchval(
        "SELECT payload FROM health_snapshots WHERE account_id = $1 AND as_of <= $2 ORDER BY as_of DESC LIMIT 1",
        req.account_id,
        as_of,
    )
    usage = await conn.fetch(
        """SELECT event_type, count(DISTINCT user_id) AS users, sum(quantity)::float8 AS qty
           FROM usage_events WHERE account_id = $1 AND occurred_at > $2 AND occurred_at <= $3
           GROUP BY event_type""",
        req.account_id,
        start,
        as_of,
    )
    users = await conn.fetchrow(
        """SELECT count(DISTINCT user_id) FILTER (WHERE occurred_at > $2) AS now,
                  count(DISTINCT user_id) FILTER (WHERE occurred_at <= $2) AS prev,
                  count(*) AS events
           FROM usage_events WHERE account_id = $1 AND occurred_at > $4 AND occurred_at <= $3""",
        req.account_id,
        start,
        as_of,
        prev_start,
    )
    provisioned = await conn.fetchval(
        """SELECT count(*) FROM product_users WHERE account_id = $1 AND created_at <= $2
           AND (deactivated_at IS NULL OR deactivated_at > $2)""",
        req.account_id,
        as_of,
    )
    findings = await conn.fetch(
        """SELECT kind, severity, as_of, dollar_impact, payload FROM findings
           WHERE account_id = $1 AND as_of > $2 AND as_of <= $3 ORDER BY as_of DESC""",
        req.account_id,
        start,
        as_of,
    )
    tickets = await conn.fetchrow(
        """SELECT count(*) AS n, count(*) FILTER (WHERE escalated) AS esc, avg(sentiment)::float8 AS sentiment
           FROM support_tickets WHERE account_id = $1 AND opened_at > $2 AND opened_at <= $3""",
        req.account_id,
        start,
        as_of,
    )
    nps = await conn.fetchrow(
        """SELECT avg(score)::float8 AS mean, count(*) AS n FROM nps_responses
           WHERE account_id = $1 AND responded_at > $2 AND responded_at <= $3""",
        req.account_id,
        start,
        as_of,
    )
    tam = await conn.fetchrow(
        "SELECT score, rag FROM tam_health WHERE account_id = $1 AND measured_at <= $2 ORDER BY measured_at DESC LIMIT 1",
        req.account_id,
        as_of,
    )
    people = await conn.fetch(
        """SELECT name, title, role, is_champion FROM stakeholders
           WHERE account_id = $1 AND (joined_on IS NULL OR joined_on <= $2::date)
             AND (left_on IS NULL OR left_on > $2::date)
           ORDER BY (role = 'executive_sponsor') DESC, is_champion DESC, name""",
        req.account_id,
        as_of.date(),
    )

    latest_findings: dict[str, FindingInfo] = {}
    opportunities: list[OpportunityInfo] = []
    seen_opps: set[str] = set()
    for f in findings:
        payload = _json(f["payload"])
        if f["kind"] == "expansion":
            key = str(payload.get("opportunity_id") or payload.get("key") or payload.get("title"))
            if key in seen_opps:
                continue
            seen_opps.add(key)
            opportunities.append(
                OpportunityInfo(
                    opportunity_type=str(
                        payload.get("opportunity_type")
                        or payload.get("metrics", {}).get("opportunity_type")
                        or "seats"
                    ),
                    title=str(payload.get("title") or "Expansion opportunity"),
                    estimated_arr_impact=_float(
                        payload.get("estimated_arr_impact") or f["dollar_impact"]
                    ),
                    evidence=[str(e) for e in payload.get("evidence") or []][:3],
                )
            )
        elif f["kind"] not in latest_findings:
            latest_findings[f["kind"]] = FindingInfo(
                kind=f["kind"],
                severity=f["severity"],
                title=str(payload.get("title") or f["kind"]),
                as_of=f["as_of"],
                dollar_impact=_float(f["dollar_impact"]),
                evidence=[str(e) for e in payload.get("evidence") or []][:3],
                play=payload.get("play"),
                metrics=payload.get("metrics") or {},
            )

    return QbrData(
        account_id=req.account_id,
        account_name=acct["name"],
        tier=acct["tier"],
        csm_owner=acct["csm_owner"],
        csm_email=acct["csm_email"],
        rep_owner=acct["rep_owner"],
        rep_email=acct["rep_email"],
        quarter_label=req.quarter_label,
        reason=req.reason,
        as_of=as_of,
        period_start=start,
        contract=ContractInfo(**contract_fields(contract)) if contract else None,
        score_history=[
            ScorePoint(
                as_of=s["as_of"],
                score=_float(s["score"]),
                band=s["band"],
                churn_risk=s["churn_risk"],
            )
            for s in snaps
        ],
        drivers=driver_texts(_json(latest_payload)),
        # Seat utilization has one definition: the latest snapshot's (its activity window).
        **seat_use(_json(latest_payload)),
        active_users=users["now"] if users["events"] else None,
        active_users_prev=users["prev"] if users["events"] else None,
        provisioned_users=provisioned,
        feature_use=[
            FeatureUse(event_type=u["event_type"], users=u["users"], quantity=u["qty"] or 0.0)
            for u in usage
        ],
        catalogue=catalogue[0],
        module_labels=catalogue[1],
        findings=list(latest_findings.values()),
        opportunities=opportunities,
        tickets_opened=tickets["n"],
        tickets_escalated=tickets["esc"],
        ticket_sentiment=tickets["sentiment"],
        nps_mean=nps["mean"],
        nps_responses=nps["n"],
        tam_score=tam["score"] if tam else None,
        tam_rag=tam["rag"] if tam else None,
        stakeholders=[_person(p) for p in people],
        config=config,
    )


def seat_use(payload: dict[str, Any]) -> dict[str, int]:
    """Active users and their window from a snapshot's seat utilization signal ({} if none)."""
    for sig in payload.get("signals") or []:
        if isinstance(sig, dict) and sig.get("name") == "seat_utilization":
            if isinstance(sig.get("value"), int | float) and sig.get("window_days"):
                return {
                    "seat_active_users": int(sig["value"]),
                    "seat_window_days": int(sig["window_days"]),
                }
    return {}


def driver_texts(payload: dict[str, Any]) -> list[str]:
    """The drivers of a snapshot payload in words, whatever shape the payload has.

    Accepts ``{"drivers": [{"text": ...}]}`` (HealthSnapshot), ``{"drivers": ["..."]}``
    and the same under ``"health"`` (an assessment summary).
    """
    for holder in (
        payload,
        payload.get("health") if isinstance(payload.get("health"), dict) else {},
        payload.get("snapshot") if isinstance(payload.get("snapshot"), dict) else {},
    ):
        drivers = holder.get("drivers") if isinstance(holder, dict) else None
        if isinstance(drivers, list) and drivers:
            out = []
            for d in drivers:
                if isinstance(d, str):
                    out.append(d)
                elif isinstance(d, dict):
                    text = (
                        d.get("text") or d.get("explanation") or d.get("summary") or d.get("label")
                    )
                    if text:
                        out.append(str(text))
            return out
    return []


def _person(p: asyncpg.Record) -> str:
    role = {"executive_sponsor": "executive sponsor"}.get(p["role"] or "", p["role"] or "")
    bits = [
        b
        for b in (
            p["title"],
            "champion" if p["is_champion"] else None,
            role if role and role != "user" else None,
        )
        if b
    ]
    return f"{p['name']} ({', '.join(bits)})" if bits else p["name"]


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return {}


def _float(v: Any) -> float | None:
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None
