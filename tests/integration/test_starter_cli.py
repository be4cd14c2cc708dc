"""`starter.py` as a CS-ops engineer uses it: bad input named, nothing started, clear errors."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

import starter
from stack.settings import load_settings
from tests.workflows.helpers import make_handoff, running_worker, settings_for_test

UNREACHABLE = load_settings({"TEMPORAL_ADDRESS": "127.0.0.1:1", "VIM_DATA_DIR": "/tmp/vim-unused"})


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


async def test_a_handoff_that_is_not_json_exits_2_before_anything_is_contacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await starter.main(
        ["handoff", _write(tmp_path, "h.json", "{not json")], settings=UNREACHABLE
    )
    assert code == 2
    assert "is not JSON" in capsys.readouterr().err


async def test_each_bad_handoff_field_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = make_handoff("acme-1", date(2026, 11, 21)).model_dump(mode="json")
    del doc["csm_email"]
    doc["contract"]["end_date"] = "2020-01-01"
    doc["contract"]["seats_purchased"] = -5
    code = await starter.main(
        ["handoff", _write(tmp_path, "h.json", json.dumps(doc))], settings=UNREACHABLE
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "csm_email: Field required" in err
    assert "contract.seats_purchased" in err
    # Nothing was started: the unreachable server was never contacted (that would be exit 1).
    assert "cannot reach Temporal" not in err


async def test_bad_questionnaire_answers_are_named_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {
        "answered_by": "Lee Park",
        "answers": [{"question_id": "goals-outcome", "level": 7, "mood": "great"}],
    }
    code = await starter.main(
        ["questionnaire", "acme-1", _write(tmp_path, "a.json", json.dumps(doc))],
        settings=UNREACHABLE,
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "answers.0.level: Input should be less than or equal to 5" in err
    assert "answers.0.mood: Extra inputs are not permitted" in err
    assert "cannot reach Temporal" not in err


async def test_unreachable_temporal_is_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await starter.main(["list"], settings=UNREACHABLE)
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot reach Temporal at 127.0.0.1:1" in err and "make demo" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


async def test_handoff_starts_once_and_refuses_a_second_time(
    time_skipping_env: WorkflowEnvironment,
    db_dsn: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = time_skipping_env
    settings = settings_for_test(tmp_path)
    today = (await env.get_current_time()).date()
    h = make_handoff("cli-1", today, days_to_end=200)
    path = _write(tmp_path, "h.json", h.model_dump_json())
    async with running_worker(env.client, db_dsn, settings):
        assert await starter.main(["handoff", path], client=env.client, settings=settings) == 0
        assert "started account-cli-1" in capsys.readouterr().out
        assert await starter.main(["handoff", path], client=env.client, settings=settings) == 3
        assert "already handed off" in capsys.readouterr().err
        # A signal with a bad field is refused at the client, naming it.
        bad = _write(
            tmp_path,
            "nps.json",
            json.dumps({"response_id": "r", "responded_at": "2026-11-21T00:00:00Z", "score": 11}),
        )
        assert (
            await starter.main(
                ["signal", "nps", "cli-1", bad], client=env.client, settings=settings
            )
            == 2
        )
        assert "score: Input should be less than or equal to 10" in capsys.readouterr().err
        # An unknown account is named.
        good = _write(tmp_path, "m.json", json.dumps({"milestone": "kickoff_held"}))
        assert (
            await starter.main(
                ["signal", "milestone", "nobody", good], client=env.client, settings=settings
            )
            == 2
        )
        assert "unknown account 'nobody'" in capsys.readouterr().err
        await env.client.get_workflow_handle("account-cli-1").terminate("test done")
