"""`starter.py score` and `starter.py backtest` against a demo portfolio in a real database."""

from __future__ import annotations

import argparse
import functools
import json
from datetime import date

import asyncpg
import pytest

from activities.telemetry import fetch_data_until
from cli.backtest import add_backtest_parser
from cli.score import add_score_parser
from demo.load import load_portfolio
from demo.portfolio import REFERENCE_ACCOUNT_ID, Portfolio, generate_portfolio

AS_OF = date(2026, 11, 21)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="starter.py")
    sub = parser.add_subparsers(dest="command", required=True)
    add_score_parser(sub)
    add_backtest_parser(sub)
    return parser


async def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return await args.run(args)


@functools.cache
def _portfolio() -> Portfolio:
    return generate_portfolio(7, AS_OF, 60)


@pytest.fixture
async def demo_db(db: asyncpg.Connection, db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    await load_portfolio(db, _portfolio())
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    return db_dsn


async def test_score_prints_a_readable_layout_and_json(
    demo_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _run(["score", REFERENCE_ACCOUNT_ID, "--as-of", AS_OF.isoformat()]) == 0
    text = capsys.readouterr().out
    assert REFERENCE_ACCOUNT_ID in text
    for part in ("Health", "Seat utilization", "Churn risk", "MUDA", "$45,000"):
        assert part in text, part

    assert await _run(["score", REFERENCE_ACCOUNT_ID, "--as-of", "2026-11-21", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["account_id"] == REFERENCE_ACCOUNT_ID
    assert doc["assessment"]["snapshot"]["config_version"] == doc["summary"]["config_version"]
    assert any(f["kind"] == "muda" for f in doc["summary"]["findings"])


async def test_score_unknown_account_exits_2(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    assert await _run(["score", "no-such-account", "--as-of", "2026-11-21"]) == 2
    assert "unknown account" in capsys.readouterr().err


async def test_score_without_a_database_explains_itself(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("VIM_DATA_DIR", str(tmp_path))
    assert await _run(["score", "acme"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DATABASE_URL" in err and "Traceback" not in err


async def test_backtest_reports_churners_flagged(
    demo_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["backtest", "--from", "2026-05-25", "--to", "2026-10-22", "--every", "28"]
    argv += ["--observed-until", AS_OF.isoformat()]
    assert await _run(argv) == 0
    text = capsys.readouterr().out
    assert "flagged >=  30 days before churn" in text
    assert "ROC AUC" in text and "Expansion flags" in text

    assert await _run([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["churners"] > 0
    assert doc["observations"] > 0 and len(doc["dates"]) == 6
    flagged = sum(lt["churners_flagged"] for lt in doc["lead_times"])
    assert flagged > 0, "the demo's churners are flagged HIGH+ before they churn"


async def test_score_all_writes_one_csv_row_per_account_through_the_scan_path(
    demo_db: str, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    import csv
    from pathlib import Path

    from domain.config import SIGNALS

    out = Path(str(tmp_path)) / "scores.csv"
    assert await _run(["score", "--all", "--as-of", AS_OF.isoformat(), "--csv", str(out)]) == 0
    assert "60 accounts scored" in capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(_portfolio().account_ids) == 60
    assert [r["account_id"] for r in rows] == sorted(_portfolio().account_ids)
    for name in SIGNALS:
        assert f"sub_{name}" in rows[0]
    ref = next(r for r in rows if r["account_id"] == REFERENCE_ACCOUNT_ID)
    # the same figures as the one-account command
    assert await _run(["score", REFERENCE_ACCOUNT_ID, "--as-of", AS_OF.isoformat(), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)["summary"]
    assert float(ref["score"]) == one["score"] and ref["band"] == one["band"]
    assert ref["churn_level"] == one["churn_level"]
    assert "muda:" in ref["lean_findings"]
    assert {r["contract_in_force"] for r in rows} == {"true", "false"}  # churned ones too
    bands = {r["band"] for r in rows}
    assert bands <= {"GREEN", "AMBER", "RED", "UNSCORED", ""}

    assert {r["churn_probability"] for r in rows} == {""}  # the shipped config: no calibration

    # with a calibrated config, each row carries its band's observed churn rate
    rate = {"observations": 40, "churned": 10, "rate": 0.25}
    calibrated = Path(str(tmp_path)) / "calibrated.json"
    calibrated.write_text(
        json.dumps(
            {
                "version": "cal-test",
                "calibration": {
                    "based_on_version": "x",
                    "fit_from": "2026-01-01",
                    "fit_to": "2026-05-01",
                    "validate_from": "2026-05-02",
                    "validate_to": "2026-08-01",
                    "observed_until": "2026-11-20",
                    "horizons": [30, 60],
                    "churn_rate_by_band": {"60": {"RED": rate, "AMBER": rate, "GREEN": rate}},
                },
            }
        )
    )
    argv = ["score", "--all", "--as-of", AS_OF.isoformat(), "--csv", str(out)]
    assert await _run([*argv, "--config", str(calibrated)]) == 0
    capsys.readouterr()
    for r in csv.DictReader(out.open()):
        scored = r["band"] in ("RED", "AMBER", "GREEN")
        assert r["churn_probability"] == ("0.25" if scored else ""), r
        assert r["probability_horizon_days"] == ("60" if scored else "")

    # to standard output without --csv; refused without an account or --all
    assert await _run(["score", "--all", "--as-of", AS_OF.isoformat()]) == 0
    assert capsys.readouterr().out.count("\n") == 61
    assert await _run(["score"]) == 2
    assert "either ACCOUNT_ID or --all" in capsys.readouterr().err


async def test_cli_uses_the_workers_config_and_the_datas_last_date(
    demo_db: str,
    tmp_path: object,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pathlib import Path

    cfg = Path(str(tmp_path)) / "team.json"
    cfg.write_text(json.dumps({"version": "team-7", "bands": {"green_min": 99}}))
    monkeypatch.setenv("VIM_HEALTH_CONFIG", str(cfg))
    assert await _run(["score", REFERENCE_ACCOUNT_ID, "--as-of", AS_OF.isoformat(), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["config_version"] == "team-7"

    argv = ["backtest", "--from", "2026-05-25", "--to", "2026-10-22", "--every", "28"]
    assert await _run([*argv, "--horizon", "45"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("config team-7;")
    # no --observed-until: the latest date in the exported data (said so), not today
    conn = await asyncpg.connect(demo_db)
    try:
        data_until = await fetch_data_until(conn)
    finally:
        await conn.close()
    assert data_until is not None and data_until <= AS_OF
    assert f"outcomes known until {data_until} (the latest date with data;" in text
    # leads of 60 and 90 days cannot be measured on a 45-day horizon: said, not n/a
    assert "flagged >=  30 days before churn" in text
    assert "flagged >= 60, 90 days before churn: not measured" in text
    assert "n/a" not in text.split("Churn warnings")[1].split("precision")[0]

    cfg.write_text(json.dumps({"weights": {"nsp": 3}}))
    assert await _run(argv) == 2
    assert "nsp" in capsys.readouterr().err
