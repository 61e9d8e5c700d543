"""The compile lane's MIPROv2 and GEPA against a local OpenAI-compatible server answering by the
demo model's rule (trading/llm/demo_server.py), with their small fixed budgets; `build-dataset`'s
warning when it builds no example; the demo model's rule and protocol."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.core.management import call_command

from torghut_site.storage import object_get
from trading.llm.demo_server import DEMO_INSTRUCTION, DemoModelServer, demo_answer
from trading.models import LLMDspyWorkflowArtifact
from trading.services.dspy_lanes import dspy_compile, dspy_dataset_build
from trading.services.dspy_lanes.optimizers import GEPA_EXTRA_METRIC_CALLS

pytestmark = pytest.mark.django_db


def _asked(llm_server, marker: str) -> int:
    return sum(1 for b in llm_server.completions() if marker in json.dumps(b["messages"]))


def test_miprov2_proposes_instructions_and_picks_one(
    labelled, llm_settings, llm_server, artifacts_dir
):
    llm_server.responder = demo_answer
    dataset = dspy_dataset_build()
    compiled = dspy_compile(dataset_hash=dataset.dataset_hash, optimizer="miprov2", max_demos=2)
    state = json.loads(object_get(compiled.metadata["program_state_key"]))
    assert (compiled.optimizer, compiled.metric_bundle) == (
        "miprov2",
        {"trainExamples": 14, "demos": 0, "maxDemos": 2},  # the zero-shot demo set scored best
    )
    # the LM proposed instructions (MIPROv2's grounded proposer), the program kept one of them
    assert _asked(llm_server, "proposed_instruction") == 2
    instructions = state["review"]["signature"]["instructions"]
    assert instructions in (DEMO_INSTRUCTION, compiled_default_instructions())
    calls = len(llm_server.completions())
    again = dspy_compile(dataset_hash=dataset.dataset_hash, optimizer="miprov2", max_demos=2)
    assert (again.pk, again.artifact_hash) == (compiled.pk, compiled.artifact_hash)
    assert len(llm_server.completions()) == 2 * calls  # the same run, call for call


def compiled_default_instructions() -> str:
    from trading.llm.dspy.program import TradeReviewCommitteeSignatureV1

    return str(TradeReviewCommitteeSignatureV1.instructions)


def test_gepa_reflects_within_its_metric_budget(labelled, llm_settings, llm_server, artifacts_dir):
    llm_server.responder = demo_answer
    dataset = dspy_dataset_build()
    compiled = dspy_compile(dataset_hash=dataset.dataset_hash, optimizer="gepa")
    assert (compiled.optimizer, compiled.metric_bundle["trainExamples"]) == ("gepa", 14)
    reviews = _asked(llm_server, "[[ ## request_json ## ]]") - _asked(llm_server, "new_instruction")
    reflections = _asked(llm_server, "new_instruction")
    assert reflections >= 1  # the reflection LM (the same server) proposed an instruction
    assert reviews <= 14 + GEPA_EXTRA_METRIC_CALLS  # one review per metric call, within budget
    again = dspy_compile(dataset_hash=dataset.dataset_hash, optimizer="gepa")
    assert (again.pk, again.artifact_hash) == (compiled.pk, compiled.artifact_hash)
    assert LLMDspyWorkflowArtifact.objects.filter(lane="compile").count() == 1


def test_build_dataset_warns_when_it_builds_no_example(
    labelled, llm_settings, artifacts_dir, capsys
):
    call_command("dspy", "build-dataset", "--since", "2027-01-01T00:00:00Z")
    captured = capsys.readouterr()
    empty = json.loads(captured.out)
    warning = (
        "0 labelled examples: no priced decision that passed the deterministic gates "
        "(universe, sizing, portfolio, risk) since 2027-01-01T00:00:00+00:00 until now"
    )
    assert (empty["metric_bundle"]["examples"], empty["warnings"]) == (0, [warning])
    assert captured.err.strip() == f"warning: {warning}"
    row = dspy_dataset_build(
        since=datetime(2026, 3, 3, 3, 30, tzinfo=UTC), horizon_minutes=30, veto_bps=Decimal(10)
    )
    # decision 20 (03:50), the last: no price 30 minutes later
    assert row.metadata["warnings"] == [
        "0 labelled examples: none of the 1 decisions since 2026-03-03T03:30:00+00:00 until now "
        "has a later price 30 minutes after it in trade_decisions.price"
    ]
    full = dspy_dataset_build()
    assert (full.metric_bundle["examples"], full.metadata["warnings"]) == (20, [])


def _review_prompt(demos: list[tuple[str, float, str]], asked: tuple[str, float]) -> dict:
    """A chat-format review prompt: demos (symbol, rsi14, verdict) then the asked decision."""

    def request(symbol: str, rsi: float) -> str:
        body: dict[str, Any] = {
            "decision": {"strategy_id": "s1", "symbol": symbol, "action": "buy"},
            "market": {"features": {"rsi14": rsi}},
        }
        return f"[[ ## request_json ## ]]\n{json.dumps(body)}"

    system = "Your output fields are:\n1. `verdict` (Literal['approve', 'veto']): v\n"
    messages = [{"role": "system", "content": system}]
    for symbol, rsi, verdict in demos:
        messages.append({"role": "user", "content": request(symbol, rsi)})
        messages.append({"role": "assistant", "content": f"[[ ## verdict ## ]]\n{verdict}"})
    messages.append({"role": "user", "content": request(*asked)})
    return {"messages": messages}


def test_the_demo_model_answers_the_nearest_demo_of_the_same_symbol():
    demos = [("AAPL", 30.0, "veto"), ("AAPL", 60.0, "approve"), ("MSFT", 41.0, "veto")]
    assert demo_answer(_review_prompt(demos, ("AAPL", 40.0))) == (
        "[[ ## verdict ## ]]\nveto\n\n[[ ## completed ## ]]"
    )
    assert demo_answer(_review_prompt(demos, ("AAPL", 50.0))).split("\n")[1] == "approve"
    assert demo_answer(_review_prompt(demos, ("NVDA", 41.0))).split("\n")[1] == "approve"
    assert demo_answer({"messages": [{"role": "user", "content": "propose"}]}) == (
        f"```\n{DEMO_INSTRUCTION}\n```"
    )
    with DemoModelServer() as server:
        ok = requests.post(
            f"{server.base_url}/chat/completions",
            json=_review_prompt(demos, ("AAPL", 31.0)),
            timeout=5,
        )
        bad = requests.post(f"{server.base_url}/chat/completions", json={"x": 1}, timeout=5)
        lost = requests.post(f"{server.base_url}/completions", json={}, timeout=5)
    assert ok.json()["choices"][0]["message"]["content"].split("\n")[1] == "veto"
    assert (ok.json()["model"], ok.json()["usage"]["completion_tokens"]) == (
        "torghut-demo-rule-v1",
        11,  # words of the answer, as the test server counts them
    )
    assert (bad.status_code, lost.status_code, server.completions) == (400, 404, 1)
