"""`starter.py calibrate` and `starter.py config` on a demo portfolio in a real database:
refuse on too little history, write a config and a report, adopt explicitly, roll back."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import asyncpg
import pytest

from cli.calibrate import EXIT_REFUSED
from demo.load import load_portfolio
from demo.portfolio import REFERENCE_ACCOUNT_ID, Portfolio, generate_portfolio
from domain.config import DEFAULT_CONFIG, HealthConfig
from starter import build_parser
from tests.integration.test_backtest_cli import AS_OF

pytestmark = pytest.mark.slow
RANGE = ["--from", "2025-12-15", "--to", "2026-11-14", "--horizon", "30,60"]


async def _run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return await args.run(args)


@functools.cache
def _portfolio() -> Portfolio:
    return generate_portfolio(7, AS_OF, 120)  # 12 churned accounts, Feb to Oct 2026


@pytest.fixture
async def demo_db(db: asyncpg.Connection, db_dsn: str, monkeypatch: pytest.MonkeyPatch) -> str:
    await load_portfolio(db, _portfolio())
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    monkeypatch.delenv("VIM_HEALTH_CONFIG", raising=False)
    return db_dsn


async def test_calibrate_refuses_too_little_history_and_writes_nothing(
    demo_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cal.json"
    code = await _run(["calibrate", *RANGE, "--every", "28", "--out", str(out)])
    assert code == EXIT_REFUSED
    err = capsys.readouterr().err
    assert "calibration needs at least 10" in err and "No config was written" in err
    assert not list(tmp_path.iterdir())
    # a horizon longer than the observed period is bad input, named
    code = await _run(
        ["calibrate", "--from", "2026-10-01", "--to", "2026-11-14", "--out", str(out)]
    )
    assert code == 2
    assert "runs past the observed period" in capsys.readouterr().err
    assert not out.exists()


async def test_calibrate_writes_a_config_and_report_that_adopt_and_rollback_switch(
    demo_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cal.json"
    # the demo dates churns by their notices (some months before the term end): a split
    # in mid-May leaves enough of them on each side
    code = await _run(
        [
            "calibrate",
            *RANGE,
            *("--every", "14", "--split", "2026-05-15", "--min-churners", "4"),
            *("--out", str(out)),
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "# Calibration report" in printed.out and "**Verdict:**" in printed.out
    for section in ("Side by side", "ROC AUC", "lift in riskiest 10%", "## Signals"):
        assert section in printed.out, section
    config = HealthConfig.model_validate(json.loads(out.read_text()))
    assert config.version.startswith(DEFAULT_CONFIG.version + "+cal-")
    assert sum(config.weights.values()) == 100
    assert config.calibration is not None and config.calibration.horizons == [30, 60]
    assert out.with_suffix(".report.md").read_text() in printed.out
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["calibrated_version"] == config.version
    assert "Nothing changed yet" in printed.err

    # nothing is in force until adopted
    assert await _run(["score", REFERENCE_ACCOUNT_ID, "--as-of", "2026-11-21", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["config_version"] == DEFAULT_CONFIG.version

    assert await _run(["config", "adopt", str(out), "--by", "Dana (CS ops)"]) == 0
    assert config.version in capsys.readouterr().out
    assert await _run(["score", REFERENCE_ACCOUNT_ID, "--as-of", "2026-11-21", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["config_version"] == config.version
    assert await _run(["config", "list"]) == 0
    listed = capsys.readouterr().out
    assert "adopt" in listed and "Dana (CS ops)" in listed and config.version in listed

    assert await _run(["config", "rollback", "--by", "Dana (CS ops)"]) == 0
    assert "environment" in capsys.readouterr().out
    assert await _run(["score", REFERENCE_ACCOUNT_ID, "--as-of", "2026-11-21", "--json"]) == 0
    assert (
        json.loads(capsys.readouterr().out)["summary"]["config_version"] == DEFAULT_CONFIG.version
    )


async def test_adopt_refuses_an_invalid_config_and_adopts_nothing(
    demo_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": "bad-1", "weights": {"nsp": 5}}))
    assert await _run(["config", "adopt", str(bad)]) == 2
    assert "nsp" in capsys.readouterr().err
    same_version = tmp_path / "same.json"
    same_version.write_text(json.dumps({"bands": {"green_min": 80}}))
    assert await _run(["config", "adopt", str(same_version)]) == 2
    assert "give it a version of its own" in capsys.readouterr().err
    assert await _run(["config", "rollback"]) == 2
    assert "nothing to roll back" in capsys.readouterr().err
    assert await _run(["config", "status"]) == 0
    assert "no adopted version" in capsys.readouterr().out
