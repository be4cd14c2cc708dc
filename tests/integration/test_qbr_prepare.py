"""prepare_qbr on a seeded account: the four sections from snapshots, findings and usage."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import asyncpg
from temporalio.testing import ActivityEnvironment

from activities.qbr import QbrActivities, driver_texts
from domain.qbr import QbrRequest, qbr_cover_note_request, qbr_page_request, render_qbr_markdown

AS_OF = datetime(2026, 10, 1, 6, 0, tzinfo=UTC)


async def seed(db: asyncpg.Connection) -> None:
    await db.execute(
        """INSERT INTO accounts (account_id, name, tier, csm_owner, csm_email, rep_owner, rep_email)
           VALUES ('acme', 'Acme Corp', 'tier-1', 'Riley Chen', 'riley@vendor.example', 'Jordan Park', 'jordan@vendor.example')"""
    )
    await db.execute(
        """INSERT INTO contracts (account_id, start_date, end_date, arr, seats_purchased, price_per_seat, licensed_modules)
           VALUES ('acme', '2026-01-01', '2026-12-31', 60000, 100, 600, '{core,reports,automation}')"""
    )
    await db.executemany(
        "INSERT INTO stakeholders (stakeholder_id, account_id, name, title, role, is_champion) VALUES ($1, 'acme', $2, $3, $4, $5)",
        [
            ("s1", "Sam Ortiz", "CFO", "executive_sponsor", False),
            ("s2", "Dana Lee", "Ops Lead", "champion", True),
        ],
    )
    # 40 active users this quarter; everyone searches, 10 export reports, 4 run automations.
    rows = []
    for u in range(40):
        t = AS_OF - timedelta(days=1 + u % 80)
        rows.append(("acme", f"u{u}", t, "core.search", 1))
        if u < 10:
            rows.append(("acme", f"u{u}", t, "reports.export", 12))
        if u < 4:
            rows.append(("acme", f"u{u}", t, "automation.run", 100))
        if u < 3:
            rows.append(("acme", f"u{u}", t, "dashboards.view", 5))  # unlicensed module
    for u in range(30):
        rows.append(
            ("acme", f"u{u}", AS_OF - timedelta(days=100), "core.search", 1)
        )  # the quarter before
    await db.copy_records_to_table(
        "usage_events",
        records=rows,
        columns=["account_id", "user_id", "occurred_at", "event_type", "quantity"],
    )
    for i, (score, band) in enumerate(
        [(52, "AMBER"), (55, "AMBER"), (58, "AMBER"), (64, "AMBER"), (71, "GREEN")]
    ):
        payload = (
            {"drivers": [{"text": "active users rose from 30 to 40 in 30 days"}]} if i == 4 else {}
        )
        await db.execute(
            """INSERT INTO health_snapshots (account_id, as_of, config_version, score, band, coverage, churn_risk, payload)
               VALUES ('acme', $1, 'v1', $2, $3, 0.9, 'LOW', $4::jsonb)""",
            AS_OF - timedelta(days=100 - i * 25),
            score,
            band,
            json.dumps(payload),
        )
    await db.execute(
        """INSERT INTO findings (finding_id, account_id, as_of, kind, severity, dollar_impact, payload) VALUES
           ('m1', 'acme', $1, 'muda', 'high', 36000, $2::jsonb),
           ('e1', 'acme', $1, 'expansion', 'medium', 9600, $3::jsonb)""",
        AS_OF - timedelta(days=5),
        json.dumps(
            {
                "title": "60 of 100 seats unused",
                "evidence": ["40 active users on 100 seats"],
                "play": "re-deploy",
            }
        ),
        json.dumps(
            {
                "title": "Dashboards module",
                "opportunity_type": "module",
                "estimated_arr_impact": 9600,
                "evidence": ["3 users use dashboards"],
            }
        ),
    )
    await db.execute(
        "INSERT INTO tam_health (account_id, measured_at, score, rag) VALUES ('acme', $1, 82, 'GREEN')",
        AS_OF - timedelta(days=3),
    )


async def test_prepare_qbr_builds_four_sections(db_dsn: str, db: asyncpg.Connection) -> None:
    await seed(db)
    pool = await asyncpg.create_pool(db_dsn, min_size=1, max_size=2)
    try:
        doc = await ActivityEnvironment().run(
            QbrActivities(pool).prepare_qbr,
            QbrRequest(account_id="acme", quarter_label="2026-Q4", as_of=AS_OF),
        )
    finally:
        await pool.close()
    assert [s.title for s in doc.sections] == [
        "Account Health Summary",
        "ROI & Business Impact",
        "Feature Adoption Scorecard",
        "Expansion & Next Steps",
    ]
    health, roi, adoption, expansion = doc.sections
    assert health.facts.score == 71 and health.facts.score_start == 52
    assert {"label": "Band trend", "value": "AMBER → GREEN"} in [
        m.model_dump() for m in health.metrics
    ]
    assert health.bullets == ["active users rose from 30 to 40 in 30 days"]
    # ROI proxies: 4 users x 100 runs x 15 min + 10 x 12 exports x 20 min = 100 h + 40 h.
    assert roi.facts.hours_saved == 140 and roi.facts.value_usd == 8400
    assert adoption.facts.seat_utilization == 0.4
    feature_rows = {r[0]: r for r in adoption.table.rows}  # type: ignore[union-attr]
    assert feature_rows["Search"][3:] == ["100%", "80%", "at or above"]
    assert feature_rows["Scheduled reports"][5] == "unused"
    assert adoption.recommendations[0].startswith(
        "Comments: 0% of active users vs a 50% benchmark."
    )
    assert "Dashboards module" in [r[0] for r in expansion.table.rows]  # type: ignore[union-attr]
    assert any("re-deployment" in s for s in expansion.recommendations)
    assert expansion.facts.days_to_renewal == (date(2026, 12, 31) - AS_OF.date()).days
    assert all(
        len(s.narrative) == 1 and s.narrative_generated_by == "template" for s in doc.sections
    )
    assert "Sam Ortiz (CFO, executive sponsor)" in health.facts.stakeholders

    md = render_qbr_markdown(doc)
    assert md.startswith("# Acme Corp: QBR 2026-Q4") and "## Feature Adoption Scorecard" in md
    page = qbr_page_request(doc, "account-acme:qbr:2026-Q4")
    assert page.properties["Band"] == "GREEN" and page.kind == "qbr_page"
    note = qbr_cover_note_request(
        doc, "account-acme:qbr_cover:2026-Q4", to="riley@vendor.example", to_name="Riley Chen"
    )
    assert note.to == "riley@vendor.example" and "Hi Riley," in note.markdown


def test_driver_texts_accepts_known_payload_shapes() -> None:
    assert driver_texts({"drivers": [{"text": "a"}, {"label": "b"}]}) == ["a", "b"]
    assert driver_texts({"health": {"drivers": ["c"]}}) == ["c"]
    assert driver_texts({}) == []
