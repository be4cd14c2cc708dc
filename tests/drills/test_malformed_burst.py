"""Drill: a burst of malformed signals, updates and handoffs, generated with hypothesis.

Every one must be rejected with a reason: signals recorded as rejected in the
timeline (and counted), updates failed with the validator's or decoder's
reason and the state untouched, handoffs refused by `starter.py handoff` with
exit code 2 naming each bad field and nothing started. The account workflow
must never fail a workflow task and must still answer queries and scan.

Hypothesis generates the inputs (random JSON, and valid documents with one
field dropped, retyped or added); only inputs that the product's own models
reject, after the same JSON round trip the data converter does, are kept.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

import starter
from cli.accounts import start_account
from domain.handoff import Handoff
from domain.lifecycle import MILESTONES
from domain.messages import SIGNALS, UPDATES, ChurnNoticeSignal, SupportTicketSignal
from tests.drills.support import events, failed_workflow_tasks, wait_for
from tests.workflows.helpers import make_handoff, running_worker, settings_for_test, view

pytestmark = [pytest.mark.devserver, pytest.mark.slow]

N_SIGNALS = 80
N_UPDATES = 30  # per account (two accounts)
N_HANDOFFS = 25
T = TypeVar("T")

TS = "2026-11-01T10:00:00Z"
VALID_SIGNALS: dict[str, dict[str, Any]] = {
    "usage": {
        "batch_id": "b1",
        "events": [{"user_id": "u1", "occurred_at": TS, "event_type": "login"}],
    },
    "ticket": {"ticket_id": "T-1", "opened_at": TS, "priority": "high", "sentiment": -0.5},
    "nps": {"response_id": "r1", "responded_at": TS, "score": 7},
    "invoice": {
        "invoice_id": "i1",
        "issued_on": "2026-10-01",
        "due_on": "2026-10-31",
        "amount": 10,
    },
    "interaction": {"interaction_id": "x1", "occurred_at": TS, "kind": "call"},
    "stakeholder": {"stakeholder_id": "s1", "name": "Ann Lee", "email": "ann@example.com"},
    "tam": {"measured_at": TS, "score": 50, "rag": "AMBER"},
    "contract": {
        "start_date": "2026-01-01",
        "end_date": "2027-01-01",
        "arr": 1000,
        "seats_purchased": 10,
        "price_per_seat": 100,
    },
    "milestone": {"milestone": "kickoff_held"},
    "churn_notice": {"reason": "budget cut"},
    "usage_arrived": {"events": 3, "up_to": TS},
    "portfolio_summary": {
        "summary": {
            "account_id": "acme",
            "as_of": TS,
            "config_version": "v1",
            "score": 50.0,
            "band": "AMBER",
            "coverage": 0.5,
            "churn_level": "LOW",
            "decision": {"outcome": "routine"},
        },
        "interval_seconds": 86400,
    },
    "feature_released": {
        "feature_id": "F-1",
        "module": "reports",
        "title": "Scheduled exports",
        "released_on": "2026-10-01",
    },
    "meeting_scheduled": {"meeting_id": "M-1", "scheduled_for": TS},
}
VALID_UPDATES: dict[str, dict[str, Any]] = {
    "approve_cs_plan": {"approved_by": "Ann", "objectives": ["Cut reporting time"]},
    "decide_save": {"decided_by": "Ann", "approve": True},
    "decide_expansion": {"decided_by": "Ann", "approve": True, "target_id": "opp-1"},
    "mark_milestone": {"milestone": "kickoff_held", "marked_by": "Ann"},
    "set_paused": {"paused": True, "by": "ops"},
    "reassign_csm": {"csm_owner": "Lee Chen", "csm_email": "lee@example.com", "by": "ops"},
    "submit_questionnaire": {
        "answered_by": "Ann",
        "answers": [{"question_id": "goals-outcome", "level": 3}],
    },
    "set_sentiment": {
        "value": "concerned",
        "reason": "CFO review",
        "author": "Ann",
        "expires_on": "2027-01-01",
    },
    "complete_action": {"action_id": "A-1", "done_by": "Ann"},
}
assert set(VALID_SIGNALS) == set(SIGNALS) and set(VALID_UPDATES) == set(UPDATES)

# ------------------------------------------------------------------ strategies

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=24).filter(
    lambda n: not n.startswith("__") and n.strip() == n and n.strip()
)


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """A valid document with one thing broken, or something else entirely."""
    doc = json.loads(json.dumps(valid))
    how = draw(st.sampled_from(["drop", "retype", "extra", "replace"]))
    key = draw(st.sampled_from(sorted(doc)))
    if how == "drop":
        del doc[key]
    elif how == "retype":
        doc[key] = draw(json_values)
    elif how == "extra":
        doc[draw(text.filter(lambda k: k not in valid))] = draw(json_values)
    else:
        return draw(json_values)
    return doc


def _over_the_wire(value: Any) -> Any:
    """The value a workflow decodes from this argument (the data converter's JSON round trip)."""
    payloads = pydantic_data_converter.payload_converter.to_payloads([value])
    return pydantic_data_converter.payload_converter.from_payloads(payloads, [Any])[0]


def rejected_by(model: type[BaseModel], value: Any) -> bool:
    try:
        model.model_validate(_over_the_wire(value))
    except ValidationError:
        return True
    return False


@dataclass(frozen=True)
class BadSignal:
    name: str
    args: tuple[Any, ...]


@st.composite
def bad_signals(draw: st.DrawFn) -> BadSignal:
    kind = draw(st.sampled_from(["payload", "payload", "payload", "unknown", "arity"]))
    if kind == "unknown":
        return BadSignal(draw(names.filter(lambda n: n not in SIGNALS)), (draw(json_values),))
    name = draw(st.sampled_from(sorted(SIGNALS)))
    if kind == "arity":
        return BadSignal(name, draw(st.sampled_from([(), (VALID_SIGNALS[name],) * 2])))
    payload = draw(mutated(VALID_SIGNALS[name]).filter(lambda p: rejected_by(SIGNALS[name], p)))
    return BadSignal(name, (payload,))


# Inputs the validators refuse in the drill account's state: phase 2, running, owned by
# Dana Reyes, no save plan, nothing dispatched, only `handoff_complete` recorded.
REFUSED_BY_VALIDATOR: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "approve_cs_plan": st.fixed_dictionaries(
        {
            "approved_by": text.filter(str.strip),
            "objectives": st.lists(text, min_size=1, max_size=2),
        }
    ),
    "decide_save": st.fixed_dictionaries(
        {"decided_by": text.filter(bool), "approve": st.booleans()}
    ),
    "decide_expansion": st.fixed_dictionaries(
        {"decided_by": text.filter(bool), "approve": st.booleans(), "target_id": st.none() | text}
    ),
    "mark_milestone": st.fixed_dictionaries(
        {
            "milestone": st.just("handoff_complete") | text.filter(lambda m: m not in MILESTONES),
            "marked_by": text.filter(bool),
        }
    ),
    "set_paused": st.fixed_dictionaries({"paused": st.just(False), "by": text.filter(bool)}),
    "reassign_csm": st.fixed_dictionaries(
        {"csm_owner": st.just("Dana Reyes"), "csm_email": st.emails(), "by": text.filter(bool)}
    ),
    # A question the account's questionnaire never asked.
    "submit_questionnaire": st.fixed_dictionaries(
        {
            "answered_by": st.just("Ann"),
            "answers": st.just([{"question_id": "no-such-question", "level": 3}]),
        }
    ),
    # an expiry that is not after the workflow's today
    "set_sentiment": st.fixed_dictionaries(
        {
            "value": st.sampled_from(["positive", "neutral", "concerned", "at_risk"]),
            "reason": st.just("CFO review"),
            "author": st.just("Ann"),
            "expires_on": st.dates(max_value=date(2025, 12, 31)).map(date.isoformat),
        }
    ),
    # a fresh account has no action items yet
    "complete_action": st.fixed_dictionaries(
        {"action_id": st.sampled_from(["A-1", "A-99"]), "done_by": st.just("Ann")}
    ),
}


@st.composite
def bad_updates(draw: st.DrawFn, kinds: tuple[str, ...]) -> tuple[str, Any]:
    """`payload`: the model rejects it; `validator`: refused in a fresh account; `unknown` name."""
    kind = draw(st.sampled_from(kinds))
    if kind == "unknown":
        return draw(names.filter(lambda n: n not in UPDATES)), draw(json_values)
    name = draw(st.sampled_from(sorted(UPDATES)))
    if kind == "validator":
        return name, draw(REFUSED_BY_VALIDATOR[name])
    return name, draw(mutated(VALID_UPDATES[name]).filter(lambda p: rejected_by(UPDATES[name], p)))


@st.composite
def bad_handoffs(draw: st.DrawFn, valid: dict[str, Any]) -> str:
    """A handoff file's text: not JSON, or JSON the Handoff model rejects."""
    if draw(st.integers(0, 7)) == 0:
        return draw(st.sampled_from(["", "{", "not json", "{'a': 1}", '{"account_id": '])) + draw(
            text
        )
    doc = draw(
        st.one_of(
            mutated(valid),
            mutated(valid["contract"]).map(lambda c: {**valid, "contract": c}),
            st.sampled_from(
                [
                    {**valid, "tier": "gold"},
                    {**valid, "csm_email": "not-an-email"},
                    {**valid, "milestones": ["world_peace"]},
                    {**valid, "account_id": "has spaces/and slashes"},
                    {**valid, "contract": {**valid["contract"], "end_date": "2000-01-01"}},
                ]
            ),
        ).filter(lambda d: rejected_by_json(Handoff, d))
    )
    return json.dumps(doc)


def rejected_by_json(model: type[BaseModel], doc: Any) -> bool:
    try:
        model.model_validate(json.loads(json.dumps(doc)))
    except ValidationError:
        return True
    return False


def examples(strategy: st.SearchStrategy[T], n: int) -> list[T]:
    """`n` inputs from a strategy (generation only: the property is checked on the whole burst)."""
    out: list[T] = []

    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(x: T) -> None:
        out.append(x)

    collect()
    return out


# ------------------------------------------------------------------------- drill


async def test_a_malformed_burst_is_rejected_with_reasons_and_nothing_breaks(
    dev_env: WorkflowEnvironment,
    db_dsn: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = dev_env.client
    cfg = settings_for_test(tmp_path)
    today = datetime.now(UTC).date()
    h = make_handoff(f"burst-{uuid.uuid4().hex[:6]}", today)
    churning = make_handoff(f"burst-churn-{uuid.uuid4().hex[:6]}", today)
    async with running_worker(client, db_dsn, cfg) as pool:
        handle = client.get_workflow_handle(await start_account(client, h, cfg))
        # A second account in churn handling, where a save plan waits for `decide_save`.
        other = client.get_workflow_handle(await start_account(client, churning, cfg))
        await other.signal("churn_notice", ChurnNoticeSignal(reason="budget cut"))

        async def scans(account_id: str, n: int) -> bool:
            got = await pool.fetchval(
                "SELECT count(*) FROM health_snapshots WHERE account_id = $1", account_id
            )
            return got >= n

        await wait_for(lambda: scans(h.account_id, 1), what="the first scan")

        async def first_pass_drafted() -> bool:
            # The first scan's pass ends with the phase 1-2 drafts (commercial brief, then
            # the questionnaire): a pass that is still drafting is not a settled state.
            return any("alignment questionnaire" in t.text for t in (await view(handle)).timeline)

        await wait_for(first_pass_drafted, what="the drafts of the first scan")

        async def save_plan_waiting() -> bool:
            return bool((await view(other)).save_workflow_id)

        await wait_for(save_plan_waiting, what="the churn save plan")

        # --- updates: each refused with a reason, the state untouched. A null input on
        # every update, then generated ones: the fresh account gets inputs its validators
        # refuse too; the churning one only malformed ones (its validators would accept).
        for wf, kinds in (
            (handle, ("payload", "validator", "validator", "unknown")),
            (other, ("payload", "payload", "unknown")),
        ):
            settled = await wait_for(lambda wf=wf: _settled(wf), what="a settled workflow")
            updates = [(name, None) for name in UPDATES] + examples(bad_updates(kinds), N_UPDATES)
            for name, payload in updates:
                with pytest.raises(WorkflowUpdateFailedError) as err:
                    await wf.execute_update(name, payload)
                _assert_update_reason(name, payload, _failure_chain(err.value))
            assert (await view(wf)) == settled, "a rejected update changed the workflow state"
            assert failed_workflow_tasks(await events(wf)) == []
        before = await view(handle)
        save = await view(other)
        assert save.phase == "11 Churn Handling" and save.save_workflow_id
        for wf_id in (other.id, save.save_workflow_id):
            await client.get_workflow_handle(wf_id).terminate("drill done")

        # --- signals: a burst, each recorded as rejected with its reason
        signals = examples(bad_signals(), N_SIGNALS)
        await asyncio.gather(*(handle.signal(s.name, args=list(s.args)) for s in signals))
        v = await wait_for(
            lambda: _received(handle, len(signals)), timeout=60, what="every signal handled"
        )
        assert v.signals_rejected == len(signals)
        rejected = [t.text for t in v.timeline if t.kind == "rejected"]
        expected = Counter(f"signal {s.name!r} rejected: " for s in signals)
        got = Counter(r[: r.index(" rejected: ") + len(" rejected: ")] for r in rejected)
        assert got == expected
        assert all(r.split(" rejected: ", 1)[1].strip() for r in rejected)  # each has a reason
        assert (v.phase, v.milestones, v.paused) == (before.phase, before.milestones, before.paused)

        # --- handoffs: exit code 2 naming the bad fields; nothing started
        valid = make_handoff(f"burst-h-{uuid.uuid4().hex[:6]}", datetime.now(UTC).date())
        docs = examples(bad_handoffs(valid.model_dump(mode="json")), N_HANDOFFS)
        for i, doc in enumerate(docs):
            path = tmp_path / f"handoff-{i}.json"
            path.write_text(doc)
            capsys.readouterr()
            code = await starter.main(["handoff", str(path)], client=client, settings=cfg)
            err = capsys.readouterr().err
            assert code == 2, (doc, err)
            _assert_names_the_problem(doc, err)
        with pytest.raises(RPCError) as missing:
            await client.get_workflow_handle(valid.workflow_id).describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND

        # --- nothing failed, nothing stuck: it still answers and scans
        history = await events(handle)
        assert failed_workflow_tasks(history) == []
        await handle.signal(
            "ticket", SupportTicketSignal(ticket_id="T-ok", opened_at=datetime.now(UTC))
        )
        await wait_for(lambda: scans(h.account_id, 2), what="a scan after the burst")
        v = await view(handle)
        assert v.signals_rejected == len(signals) and v.signals_received == len(signals) + 1
        await handle.terminate("drill done")


def _failure_chain(err: WorkflowUpdateFailedError) -> str:
    """Every message down the failure's cause chain (what `temporal` and the UI show)."""
    out: list[str] = []
    cause: BaseException | None = err.cause
    while cause is not None:
        out.append(str(getattr(cause, "message", "") or cause))
        cause = getattr(cause, "cause", None)
    return "\n".join(out)


def _assert_update_reason(name: str, payload: Any, reason: str) -> None:
    if name not in UPDATES:
        assert f"Update handler for '{name}' expected but not found" in reason, reason
        return
    model = UPDATES[name]
    if _over_the_wire(payload) is None:
        # A null payload decodes to None without pydantic: the validator must refuse it.
        assert f"expected a {model.__name__} object" in reason, reason
        return
    try:
        model.model_validate(_over_the_wire(payload))
    except ValidationError as e:
        # Refused while decoding: the pydantic error, naming each bad field, is the cause.
        assert "Failed decoding arguments" in reason, reason
        for problem in e.errors():
            assert ".".join(str(p) for p in problem["loc"]) in reason, (problem, reason)
        return
    assert reason.strip() and "Failed decoding" not in reason, reason  # refused by the validator


async def _settled(handle: WorkflowHandle) -> Any:
    """The view, once two reads a moment apart agree (the workflow has nothing in flight)."""
    first = await view(handle)
    await asyncio.sleep(0.5)
    return first if await view(handle) == first else None


async def _received(handle: WorkflowHandle, n: int) -> Any:
    v = await view(handle)
    return v if v.signals_received >= n else None


def _assert_names_the_problem(doc: str, err: str) -> None:
    try:
        data = json.loads(doc)
    except json.JSONDecodeError:
        assert "is not JSON" in err and "line" in err, err
        return
    try:
        Handoff.model_validate(data)
    except ValidationError as e:
        assert "is invalid" in err, err
        for problem in e.errors():
            field = ".".join(str(p) for p in problem["loc"]) or "(document)"
            assert f"  - {field}: " in err, (field, err)
        return
    raise AssertionError(f"the drill generated a valid handoff: {doc}")
