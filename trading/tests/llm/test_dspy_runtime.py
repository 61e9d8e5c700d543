"""The DSPy program at run time: its contract (with DSPy's own DummyLM), shadow vs active, the
fallback to the legacy review on any DSPy failure, and the startup checks."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import dspy
import pytest
from dspy.utils import DummyLM

from tests.conftest import manage
from tests.servers.base import Fault
from trading.checks import dspy_artifact_promoted
from trading.llm.dspy.program import (
    TradeReviewCommitteeV1,
    prediction_output,
    program_inputs,
)
from trading.llm.schema import DspyReviewInput, ReviewSchemaError
from trading.models import Execution, LLMDecisionReview, TradeCursor, TradeDecision
from trading.services.cycle import lane_reviews_continue, trading_cycle_run
from trading.services.reviews import review_run
from trading.tests.cycle.conftest import REPLAY_START
from trading.tests.llm.answers import committee, dspy_fields
from trading.tests.llm.data import constant_dspy
from trading.tests.llm.test_review_committee import delta, read

pytestmark = pytest.mark.django_db

REVIEW_INPUT = DspyReviewInput.model_validate(
    {
        "schemaVersion": "torghut.dspy.trade-review-input.v1",
        "requestJson": {"decision": {"symbol": "AAPL", "action": "buy", "qty": "10"}},
        "programName": "trade-review-committee-v1",
        "signatureVersion": "v1",
        "artifactHash": "a" * 64,
        "marketSession": "regular",
    }
)


def test_the_program_answers_the_output_contract_with_dummy_lm():
    lm = DummyLM(
        [dspy_fields("adjust", adjusted_qty="6", adjusted_order_type="limit", limit_price="99.5")]
    )
    with dspy.context(lm=lm):
        prediction = TradeReviewCommitteeV1()(**program_inputs(REVIEW_INPUT))
    output = prediction_output(prediction).as_contract()
    assert output == {
        "verdict": "adjust",
        "confidence": 0.85,
        "rationale": "committee: adjust",
        "rationaleShort": "adjust",
        "requiredChecks": ["risk_engine", "order_firewall", "execution_policy"],
        "riskFlags": [],
        "adjustedQty": "6",
        "adjustedOrderType": "limit",
        "limitPrice": "99.5",
        "escalateReason": None,
        "uncertaintyBand": "low",
        "committee": [
            {
                "role": role,
                "verdict": "approve",
                "confidence": 0.8,
                "uncertaintyBand": "low",
                "rationaleShort": f"{role} view",
                "requiredChecks": [],
                "riskFlags": [],
            }
            for role in ("researcher", "risk_critic", "execution_critic", "policy_judge")
        ],
        "calibrationMetadata": {"quality_score": 0.8},
    }
    # the prompt DSPy sent carries the §9 input contract
    prompt = lm.history[-1]["messages"][-1]["content"]
    assert '"symbol":"AAPL"' in prompt and "trade-review-committee-v1" in prompt


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"verdict": "adjust"}, "adjusted_qty_required_for_adjust_verdict"),
        ({"verdict": "escalate"}, "escalate_reason_required_for_escalate_verdict"),
        ({"rationale": "y" * 281}, "rationale_too_long"),
        ({"adjusted_order_type": "limit"}, "limit_price_required_for_limit_orders"),
    ],
)
def test_an_answer_outside_the_output_contract_is_refused(overrides, error):
    with dspy.context(lm=DummyLM([dspy_fields(**overrides)])):
        prediction = TradeReviewCommitteeV1()(**program_inputs(REVIEW_INPUT))
    with pytest.raises(ReviewSchemaError, match=error):
        prediction_output(prediction)


def _response(review: LLMDecisionReview) -> dict[str, Any]:
    assert review.response_json is not None
    return dict(review.response_json)


def _pending(django_capture_on_commit_callbacks) -> tuple[TradeDecision, LLMDecisionReview]:
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    with django_capture_on_commit_callbacks(execute=False):
        result = trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=30))
    assert result.pending_review == 1
    review = LLMDecisionReview.objects.get()
    return review.decision, review


@pytest.fixture
def active(promoted, llm_settings, replay_settings, macd_strategy):
    llm_settings.LLM_DSPY_RUNTIME_MODE = "active"
    llm_settings.LLM_DSPY_ARTIFACT_HASH = promoted
    return promoted


def test_active_mode_the_dspy_answer_is_the_review(
    active, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending(django_capture_on_commit_callbacks)
    llm_server.responder = constant_dspy("veto", legacy="approve")
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert (review.runtime, review.model, review.prompt_version, review.provider) == (
        "dspy_active",
        "dspy:trade-review-committee-v1",
        "dspy:v1",
        "dspy",
    )
    assert (review.program_name, review.signature_version, review.artifact_hash) == (
        "trade-review-committee-v1",
        "v1",
        active,
    )
    assert (review.verdict, review.effect, review.reasons) == ("veto", "veto", ["llm_veto"])
    dspy_json = _response(review)["dspy"]
    assert dspy_json["output"]["verdict"] == "veto"
    assert (
        dspy_json["input"]["advisoryOnly"],
        dspy_json["input"]["artifactHash"],
        dspy_json["input"]["programName"],
        dspy_json["input"]["requestJson"],
    ) == (True, active, "trade-review-committee-v1", review.input_json)
    assert len(llm_server.completions()) == 1  # no legacy call
    assert review.tokens_prompt > 0 and review.tokens_completion > 0
    lane_reviews_continue(account_label="paper")
    decision.refresh_from_db()
    assert (decision.status, decision.reject_reason) == ("rejected", "llm_veto")
    assert Execution.objects.count() == 0


def test_active_mode_runs_with_dspy_dummy_lm(
    active, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending(django_capture_on_commit_callbacks)
    review_run(review_id=review.pk, dspy_lm=DummyLM([dspy_fields("approve")]))
    review.refresh_from_db()
    assert (review.runtime, review.verdict, review.effect) == ("dspy_active", "approve", "pass")
    assert llm_server.completions() == []
    assert lane_reviews_continue(account_label="paper") == {"submitted": 1}
    assert Execution.objects.get().submitted_qty == Decimal(10)


def test_a_mandatory_committee_veto_vetoes(active, llm_server, django_capture_on_commit_callbacks):
    decision, review = _pending(django_capture_on_commit_callbacks)
    llm_server.responder = constant_dspy(
        "approve", committee=committee("approve", risk_critic="veto")
    )
    names = {
        "requests": ("torghut_trading_llm_committee_requests_total", {"role": "risk_critic"}),
        "veto": ("torghut_trading_llm_committee_veto_total", {"role": "risk_critic"}),
        "alignment": ("torghut_trading_llm_committee_veto_alignment_total", {}),
    }
    before = read(names)
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert (review.verdict, review.effect, review.reasons) == (
        "approve",
        "veto",
        ["llm_committee_veto:risk_critic"],
    )
    # the program's members are stored as votes; they made no call of their own
    assert delta(before, names) == {"requests": 0.0, "veto": 1.0, "alignment": 1.0}
    votes = review.committee_votes.order_by("pk")
    assert [
        (v.role, v.verdict, v.rationale_short, v.tokens_prompt, v.response_sha256) for v in votes
    ] == [
        ("researcher", "approve", "researcher view", 0, ""),
        ("risk_critic", "veto", "risk_critic view", 0, ""),
        ("execution_critic", "approve", "execution_critic view", 0, ""),
        ("policy_judge", "approve", "policy_judge view", 0, ""),
    ]


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ("timeout", "timeout"),
        ("schema", "schema_error"),
        ("not_promoted", "artifact_not_promoted"),
        ("tampered", "artifact_tampered"),
    ],
)
def test_any_dspy_failure_falls_back_to_the_legacy_review_and_is_recorded(
    active,
    llm_settings,
    llm_server,
    artifacts_dir,
    django_capture_on_commit_callbacks,
    setup,
    error,
):
    decision, review = _pending(django_capture_on_commit_callbacks)
    llm_server.responder = constant_dspy("veto", legacy="approve")
    if setup == "timeout":
        llm_settings.LLM_DSPY_TIMEOUT_SECONDS = 0.3
        llm_server.inject(Fault("POST", "/v1/chat/completions", delay=1.0, after_handler=True))
    elif setup == "schema":
        llm_server.responder = constant_dspy("veto", legacy="approve", rationale="z" * 300)
    elif setup == "not_promoted":
        llm_settings.LLM_DSPY_ARTIFACT_HASH = "ab" * 32
    else:
        (state_file,) = artifacts_dir.rglob("program-state.json")
        state = json.loads(state_file.read_text())
        state["review"]["signature"]["instructions"] = "Approve every trade."
        state_file.write_text(json.dumps(state))
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert review.runtime == "dspy_fallback"
    assert _response(review)["dspy"]["fallback_to_legacy"] is True
    assert _response(review)["dspy"]["error"] == error
    assert (review.verdict, review.effect, review.model) == ("approve", "pass", "test-model")
    assert lane_reviews_continue(account_label="paper") == {"submitted": 1}


def test_shadow_mode_stores_the_dspy_answer_and_the_legacy_review_decides(
    promoted,
    llm_settings,
    replay_settings,
    macd_strategy,
    llm_server,
    django_capture_on_commit_callbacks,
):
    llm_settings.LLM_DSPY_RUNTIME_MODE = "shadow"
    llm_settings.LLM_DSPY_ARTIFACT_HASH = promoted
    decision, review = _pending(django_capture_on_commit_callbacks)
    llm_server.responder = constant_dspy("veto", legacy="approve")
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert (review.runtime, review.verdict, review.effect, review.model) == (
        "legacy",
        "approve",
        "pass",
        "test-model",
    )
    assert _response(review)["dspy_shadow"]["output"]["verdict"] == "veto"
    assert review.artifact_hash == promoted
    assert len(llm_server.completions()) == 2
    assert lane_reviews_continue(account_label="paper") == {"submitted": 1}


def test_the_system_check_requires_a_promoted_artifact(promoted, llm_settings):
    assert dspy_artifact_promoted(databases=["default"]) == []
    llm_settings.LLM_DSPY_RUNTIME_MODE = "active"
    llm_settings.LLM_DSPY_ARTIFACT_HASH = promoted
    assert dspy_artifact_promoted(databases=["default"]) == []
    assert dspy_artifact_promoted(databases=None) == []
    llm_settings.LLM_DSPY_ARTIFACT_HASH = "cd" * 32
    (error,) = dspy_artifact_promoted(databases=["default"])
    assert error.id == "trading.E001"
    assert error.msg == (
        f"LLM_DSPY_RUNTIME_MODE=active but LLM_DSPY_ARTIFACT_HASH={'cd' * 32} is not a stored, "
        "promoted DSPy artifact"
    )
    llm_settings.LLM_DSPY_PROGRAM_NAME = "trade-review-committee-v9"
    (error,) = dspy_artifact_promoted(databases=["default"])
    assert error.id == "trading.E002"


def test_bad_llm_settings_stop_startup_naming_each_variable():
    result = manage(
        "check",
        env={
            "LLM_DSPY_RUNTIME_MODE": "shadow",
            "LLM_FAIL_MODE": "pass_through",
            "LLM_MIN_QTY_MULTIPLIER": "1.5",
            "LLM_MAX_QTY_MULTIPLIER": "2",
            "LLM_MAX_TOKENS": "5000",
            "LLM_ROLLOUT_STAGE": "stage9",
            "LLM_MIN_CONFIDENCE": "1.5",
        },
    )
    assert result.returncode != 0
    problems = [
        line.strip() for line in result.stderr.splitlines() if line.strip().startswith("- ")
    ]
    assert problems == [
        "- LLM_FAIL_MODE='pass_through' needs LLM_FAIL_MODE_ENFORCEMENT=configured "
        "(strict_veto allows only veto)",
        "- LLM_MIN_CONFIDENCE=1.5 must be <= 1.0",
        "- LLM_MIN_QTY_MULTIPLIER=1.5 must be <= 1 (a review may shrink a trade, never enlarge it)",
        "- LLM_ROLLOUT_STAGE='stage9' must be one of: stage0, stage1, stage2, stage3, "
        "stage0_baseline, stage1_shadow_pilot, stage2_paper_advisory, stage3_controlled_live",
        "- LLM_MAX_TOKENS=5000 exceeds LLM_TOKEN_BUDGET_MAX=1200",
        "- LLM_DSPY_RUNTIME_MODE=shadow requires LLM_DSPY_ARTIFACT_HASH",
    ]
