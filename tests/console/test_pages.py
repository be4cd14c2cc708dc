"""The console's pages over a real database holding a scored demo portfolio (no Temporal:
the Postgres views must stand alone)."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg

from activities import config_store
from demo.portfolio import REFERENCE_ACCOUNT_ID
from domain.calibration import CalibrationReport
from domain.config import DEFAULT_CONFIG
from domain.health import fmt_money
from tests.console.conftest import AS_OF, console_settings, http, make_console


def _text(html: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert m, element_id
    return m.group(1).strip()


async def _expected_totals(pool: asyncpg.Pool) -> tuple[float, float, int]:
    """ARR, ARR at HIGH/CRITICAL churn risk and accounts, computed here from the tables."""
    rows = await pool.fetch(
        """SELECT c.account_id, c.arr, s.churn_risk FROM (
               SELECT DISTINCT ON (account_id) account_id, arr, end_date FROM contracts
               WHERE start_date <= $1 ORDER BY account_id, start_date DESC) c
           LEFT JOIN (SELECT DISTINCT ON (account_id) account_id, churn_risk
               FROM health_snapshots ORDER BY account_id, as_of DESC) s USING (account_id)
           WHERE c.end_date >= $1 - 30""",
        AS_OF,
    )
    total = sum(float(r["arr"]) for r in rows)
    risk = sum(float(r["arr"]) for r in rows if r["churn_risk"] in ("HIGH", "CRITICAL"))
    return total, risk, len(rows)


async def test_portfolio_shows_the_portfolios_arr_and_arr_at_risk(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    total, risk, n = await _expected_totals(pool)
    assert risk > 0, "the demo portfolio has accounts at risk"
    async with http(make_console(console_settings(tmp_path), pool)) as c:
        r = await c.get("/")
    assert r.status_code == 200
    assert _text(r.text, "accounts") == str(n)
    assert _text(r.text, "total-arr") == fmt_money(total)
    assert _text(r.text, "arr-at-risk") == fmt_money(risk)
    assert 'class="chart heatmap"' in r.text
    riskiest = r.text.split('id="riskiest"')[1]
    assert riskiest.count("<tr>") == 1 + min(15, n)
    first_level = re.search(r'class="lvl (\w+)"', riskiest)
    worst = await pool.fetchval(
        """SELECT churn_risk FROM (SELECT DISTINCT ON (account_id) churn_risk FROM health_snapshots
           ORDER BY account_id, as_of DESC) s
           ORDER BY array_position(ARRAY['CRITICAL','HIGH','MEDIUM','LOW'], churn_risk) LIMIT 1"""
    )
    assert first_level and first_level.group(1) == worst


async def test_filters_narrow_the_portfolio(pool: asyncpg.Pool, tmp_path: Path) -> None:
    csm = await pool.fetchval("SELECT csm_owner FROM accounts ORDER BY account_id LIMIT 1")
    async with http(make_console(console_settings(tmp_path), pool)) as c:
        everything = await c.get("/")
        one_csm = await c.get("/", params={"csm": csm})
        tier1 = await c.get("/", params={"tier": "tier-1", "renewal": "90"})
    n_all = int(_text(everything.text, "accounts"))
    n_csm = int(_text(one_csm.text, "accounts"))
    expected_csm = await pool.fetchval(
        """SELECT count(*) FROM accounts a WHERE csm_owner = $1 AND EXISTS (
               SELECT 1 FROM contracts c WHERE c.account_id = a.account_id AND c.start_date <= $2
               AND c.end_date >= $2 - 30 AND NOT EXISTS (SELECT 1 FROM contracts l
               WHERE l.account_id = c.account_id AND l.start_date > c.start_date AND l.start_date <= $2))""",
        csm,
        AS_OF,
    )
    assert n_csm == expected_csm < n_all
    assert int(_text(tier1.text, "accounts")) < n_all


async def test_account_page_shows_the_reference_accounts_waste_and_sub_scores(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    async with http(make_console(console_settings(tmp_path), pool)) as c:
        r = await c.get(f"/accounts/{REFERENCE_ACCOUNT_ID}")
        missing = await c.get("/accounts/no-such-account")
    assert r.status_code == 200
    assert "$45,000" in r.text.split('id="findings"')[1]  # 75 unused seats x $600
    assert 'class="chart score-chart"' in r.text and r.text.count("<circle") == 3
    latest = await pool.fetchval(
        "SELECT score FROM health_snapshots WHERE account_id = $1 ORDER BY as_of DESC LIMIT 1",
        REFERENCE_ACCOUNT_ID,
    )
    assert _text(r.text, "score") == f"{float(latest):g}"
    assert "Seat utilization" in r.text.split('id="signals"')[1]
    assert missing.status_code == 404


async def test_customer_text_is_escaped(pool: asyncpg.Pool, tmp_path: Path) -> None:
    await pool.execute(
        "UPDATE accounts SET name = '<script>alert(1)</script>' WHERE account_id = $1",
        REFERENCE_ACCOUNT_ID,
    )
    async with http(make_console(console_settings(tmp_path), pool)) as c:
        page = (await c.get(f"/accounts/{REFERENCE_ACCOUNT_ID}")).text
        portfolio = (await c.get("/")).text
    for html in (page, portfolio):
        assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_renewals_books_retention_and_calibration_render(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    due = await pool.fetch(
        """SELECT DISTINCT ON (account_id) account_id, end_date, arr FROM contracts
           WHERE start_date <= $1 ORDER BY account_id, start_date DESC""",
        AS_OF,
    )
    window = [r for r in due if 0 <= (r["end_date"] - AS_OF).days <= 120]
    async with http(make_console(console_settings(tmp_path), pool)) as c:
        by_date = (await c.get("/renewals")).text
        by_arr = (await c.get("/renewals", params={"sort": "arr"})).text
        books = (await c.get("/books")).text
        retention = (await c.get("/retention")).text
        calibration = (await c.get("/calibration")).text
    table = by_date.split('id="renewals"')[1]
    assert table.count("/accounts/") == len(window) > 0
    dates = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td>", table)
    assert dates == sorted(dates)
    arrs = [
        float(x.replace(",", ""))
        for x in re.findall(r'<td class="num">\$([\d,]+)</td>', by_arr.split('id="renewals"')[1])
    ]
    assert arrs == sorted(arrs, reverse=True)
    csms = await pool.fetchval("SELECT count(DISTINCT csm_owner) FROM accounts")
    assert books.split('id="books"')[1].count('href="/?csm=') == csms
    assert retention.split('id="retention"')[1].count("<tr>") == 13 + 1
    assert "No calibration yet" in calibration and DEFAULT_CONFIG.version in calibration


async def test_calibration_report_and_adopted_odds_are_shown(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = console_settings(tmp_path)
    report = CalibrationReport.model_validate(
        {
            "current_version": "2026.12-1",
            "calibrated_version": "cal-test-1",
            "fit_from": "2025-12-01",
            "fit_to": "2026-06-30",
            "validate_from": "2026-07-01",
            "validate_to": "2026-10-31",
            "observed_until": "2026-11-20",
            "fit_observations": 900,
            "fit_churners": 31,
            "fit_expanders": 12,
            "validation_observations": 500,
            "validation_churners": 14,
            "fit_horizon": 60,
            "bootstrap": 200,
            "signals": [],
            "bands": {"green_min": 66.0, "amber_min": 48.0},
            "churn_points": {"high_points": 3, "critical_points": 5},
            "expansion": {},
            "horizons": [],
            "better": True,
            "verdict": "calibrated ranks churn better <b>on later dates</b>",
        }
    )
    folder = settings.data_dir / "calibration"
    folder.mkdir(parents=True)
    (folder / "cal-test-1.report.json").write_text(report.model_dump_json())
    (folder / "cal-test-1.report.md").write_text("# Calibration cal-test-1\n\n| horizon | AUC |\n")
    calibrated = DEFAULT_CONFIG.with_overrides(
        {
            "version": "cal-test-1",
            "calibration": {
                "based_on_version": "2026.12-1",
                "fit_from": "2025-12-01",
                "fit_to": "2026-06-30",
                "validate_from": "2026-07-01",
                "validate_to": "2026-10-31",
                "observed_until": "2026-11-20",
                "horizons": [60],
                "churn_rate_by_band": {
                    "60": {
                        "RED": {"observations": 60, "churned": 20, "rate": 20 / 60},
                        "AMBER": {"observations": 200, "churned": 0, "rate": 0.0},
                    }
                },
            },
        }
    )
    async with pool.acquire() as conn:
        await config_store.store_and_adopt(conn, calibrated, by="Dana (CS ops)", source="test")
    async with http(make_console(settings, pool)) as c:
        cal = (await c.get("/calibration")).text
        home = (await c.get("/")).text
    assert _text(cal, "config-version") == "cal-test-1"
    assert "adopted by Dana (CS ops)" in cal
    assert "calibrated ranks churn better &lt;b&gt;on later dates&lt;/b&gt;" in cal
    assert "# Calibration cal-test-1" in cal.split('class="report"')[1]  # the Markdown, as text
    for html in (cal, home):
        odds = html.split('id="churn-odds"')[1].split("</ul>")[0]
        assert "accounts in RED churned about 1 in 3 times within 60 days" in odds
        assert "AMBER" not in odds  # nobody churned there: no odds stated


async def test_outbox_drafts_are_linked_and_nothing_outside_is_served(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    settings = console_settings(tmp_path)
    draft = settings.outbox_dir / "email" / "churn-alert.eml"
    draft.parent.mkdir(parents=True)
    draft.write_text("Subject: Northwind at risk\n\nusage fell 33%")
    (tmp_path / "secret.txt").write_text("not for the console")
    await pool.execute(
        """INSERT INTO deliveries (idempotency_key, account_id, channel, purpose, status, target)
           VALUES ('k1', $1, 'outbox', 'churn_alert', 'delivered', $2)""",
        REFERENCE_ACCOUNT_ID,
        str(draft),
    )
    async with http(make_console(settings, pool)) as c:
        page = (await c.get(f"/accounts/{REFERENCE_ACCOUNT_ID}")).text
        served = await c.get("/outbox/email/churn-alert.eml")
        outside = await c.get("/outbox/..%2Fsecret.txt")
    assert 'href="/outbox/email/churn-alert.eml"' in page.split('id="deliveries"')[1]
    assert served.status_code == 200 and "usage fell 33%" in served.text
    assert outside.status_code == 404 and "not for the console" not in outside.text
