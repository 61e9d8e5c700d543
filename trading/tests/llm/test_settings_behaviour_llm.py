"""LLM review settings: each one, read through `ReviewConfig.current()`, changes the posture,
the policy's verdict and reason, or what is sent to the OpenAI-compatible test server."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from tests.servers.llm_server import LLMServer
from trading.llm.config import ReviewConfig
from trading.llm.engine import review_execute
from trading.llm.policy import DeterministicOrder, apply_policy, review_posture
from trading.llm.schema import ReviewResponse
from trading.models import LLMDecisionReview
from trading.tests.llm.answers import legacy, legacy_json

ORDER = DeterministicOrder(
    side="buy",
    qty=Decimal(10),
    order_type="market",
    limit_price=None,
    price=Decimal(100),
    qty_step=Decimal(1),
)


def _outcome(**answer):
    config = ReviewConfig.current()
    response = ReviewResponse.model_validate(legacy(**answer))
    return apply_policy(
        response, order=ORDER, config=config, posture=review_posture(config, is_live=False)
    )


def _probabilities(top: float, second: float) -> dict[str, float]:
    rest = (1.0 - top - second) / 3
    return {"approve": top, "veto": second, "adjust": rest, "abstain": rest, "escalate": rest}


@pytest.mark.parametrize(
    ("setting", "strict", "lenient", "answer", "reason"),
    [
        ("LLM_MIN_CALIBRATED_TOP_PROBABILITY", 0.8, 0.7,
         {"calibrated_probabilities": _probabilities(0.75, 0.1)},
         "llm_top_probability_below_minimum"),
        ("LLM_MIN_PROBABILITY_MARGIN", 0.5, 0.4,
         {"calibrated_probabilities": _probabilities(0.6, 0.15)},
         "llm_probability_margin_below_minimum"),
        ("LLM_MAX_UNCERTAINTY", 0.3, 0.4, {"uncertainty": {"score": 0.35, "band": "low"}},
         "llm_uncertainty_above_maximum"),
        ("LLM_MAX_UNCERTAINTY_BAND", "low", "medium",
         {"uncertainty": {"score": 0.2, "band": "medium"}}, "llm_uncertainty_band_above_maximum"),
        ("LLM_MIN_CALIBRATION_QUALITY_SCORE", 0.7, 0.6,
         {"calibration_metadata": {"quality_score": 0.65}}, "llm_calibration_quality_below_minimum"),
    ],
)  # fmt: skip
def test_each_quality_threshold_yields_its_reason(
    llm_settings, setting, strict, lenient, answer, reason
):
    llm_settings.LLM_QUALITY_FAIL_MODE = "veto"
    setattr(llm_settings, setting, strict)
    outcome = _outcome(**answer)
    assert (outcome.effect, outcome.reasons, outcome.final_qty) == ("veto", (reason,), Decimal(0))
    setattr(llm_settings, setting, lenient)
    outcome = _outcome(**answer)
    assert (outcome.effect, outcome.reasons, outcome.final_qty) == ("pass", (), Decimal(10))


@pytest.mark.parametrize(
    ("setting", "verdict", "answer", "reason"),
    [
        ("LLM_ABSTAIN_FAIL_MODE", "abstain", {}, "llm_abstain"),
        ("LLM_ESCALATE_FAIL_MODE", "escalate", {"escalate_reason": "thin book"}, "llm_escalate"),
        ("LLM_QUALITY_FAIL_MODE", "approve", {"confidence": 0.1}, "llm_confidence_below_minimum"),
    ],
)
def test_each_verdict_fail_mode_vetoes_or_passes(llm_settings, setting, verdict, answer, reason):
    setattr(llm_settings, setting, "veto")
    outcome = _outcome(verdict=verdict, **answer)
    assert (outcome.effect, outcome.reasons, outcome.final_qty) == ("veto", (reason,), Decimal(0))
    setattr(llm_settings, setting, "pass_through")
    outcome = _outcome(verdict=verdict, **answer)
    assert (outcome.effect, outcome.reasons, outcome.final_qty) == ("pass", (reason,), Decimal(10))


def test_committee_roles_and_mandatory_roles_block_an_inconsistent_committee(llm_settings):
    llm_settings.LLM_COMMITTEE_ROLES = ["researcher", "risk_critic"]
    llm_settings.LLM_COMMITTEE_MANDATORY_ROLES = ["risk_critic", "policy_judge"]
    assert review_posture(ReviewConfig.current(), is_live=False).blocked == (
        "committee_roles_invalid",
    )
    llm_settings.LLM_COMMITTEE_ROLES = ["researcher", "risk_critic", "policy_judge"]
    assert review_posture(ReviewConfig.current(), is_live=False).blocked == ()


def test_mandatory_committee_roles_decide_which_member_can_veto(llm_settings):
    from trading.llm.schema import DspyCommitteeMember
    from trading.tests.llm.answers import committee

    members = [
        DspyCommitteeMember.model_validate(m) for m in committee("approve", researcher="veto")
    ]
    config = ReviewConfig.current()
    response = ReviewResponse.model_validate(legacy("approve"))
    posture = review_posture(config, is_live=False)
    outcome = apply_policy(response, order=ORDER, config=config, posture=posture, committee=members)
    assert outcome.effect == "pass"  # researcher is not mandatory by default
    llm_settings.LLM_COMMITTEE_MANDATORY_ROLES = ["researcher"]
    config = ReviewConfig.current()
    outcome = apply_policy(response, order=ORDER, config=config, posture=posture, committee=members)
    assert (outcome.effect, outcome.reasons) == ("veto", ("llm_committee_veto:researcher",))


def _review(now=None):
    config = ReviewConfig.current()
    now = now or timezone.now()
    return review_execute(
        snapshot={"decision": {"symbol": "AAPL", "qty": "10"}},
        order=ORDER,
        config=config,
        posture=review_posture(config, is_live=False),
        now=now,
        deadline_at=now + timedelta(seconds=10),
    )


@pytest.mark.django_db
def test_prompt_version_picks_the_template_and_the_allow_list_blocks(llm_settings, llm_server):
    llm_server.queue(legacy_json("approve"))
    llm_settings.LLM_PROMPT_VERSION = "v1"
    run = _review()
    assert (run.prompt_version, run.outcome.effect) == ("v1", "pass")
    system = (
        __import__("trading.llm.policy", fromlist=["PROMPTS_DIR"]).PROMPTS_DIR / "system_v1.txt"
    ).read_text(encoding="utf-8")
    assert llm_server.completions()[0]["messages"][0] == {"role": "system", "content": system}
    llm_settings.LLM_ALLOWED_PROMPT_VERSIONS = ["v0"]
    run = _review()
    assert (run.error_kind, run.error, run.outcome.reasons) == (
        "guardrail_block",
        "prompt_version_not_allowed",
        ("llm_guardrail_block",),
    )
    llm_settings.LLM_ALLOWED_PROMPT_VERSIONS = []
    llm_settings.LLM_PROMPT_VERSION = "v9"  # no system_v9.txt
    assert _review().error == "prompt_template_missing"
    assert len(llm_server.completions()) == 1  # blocked reviews call nothing


@pytest.mark.django_db
def test_temperature_and_seed_are_sent_to_the_model(llm_settings, llm_server):
    llm_server.queue(legacy_json("approve"), legacy_json("approve"))
    llm_settings.LLM_TEMPERATURE = 0.0
    llm_settings.LLM_SEED = 0
    _review()
    llm_settings.LLM_TEMPERATURE = 0.7
    llm_settings.LLM_SEED = 42
    _review()
    sent = [(b["temperature"], b["seed"]) for b in llm_server.completions()]
    assert sent == [(0.0, 0), (0.7, 42)]


@pytest.fixture(scope="module")
def openai_server():
    server = LLMServer(api_key="sk-test-123")
    server.start()
    yield server
    server.stop()


@pytest.mark.django_db
def test_openai_base_url_and_api_key_reach_the_provider(llm_settings, openai_server):
    openai_server.reset()
    llm_settings.LLM_PROVIDER = "openai"
    llm_settings.LLM_SELF_HOSTED_BASE_URL = ""  # no fallback
    llm_settings.LLM_MODEL_VERSION_LOCK = llm_settings.LLM_MODEL
    llm_settings.OPENAI_BASE_URL = openai_server.base_url
    llm_settings.OPENAI_API_KEY = "sk-wrong"
    run = _review()
    assert (run.error_kind, run.outcome.effect) == ("http_401", "veto")
    openai_server.queue(legacy_json("approve"))
    llm_settings.OPENAI_API_KEY = "sk-test-123"
    run = _review(timezone.now() + timedelta(hours=1))
    assert (run.provider, run.error_kind, run.outcome.effect) == ("openai", "", "pass")
    llm_settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens: a refused call
    run = _review(timezone.now() + timedelta(hours=2))
    assert run.error_kind == "connection"
    assert len(openai_server.completions()) == 2


@pytest.mark.django_db
@pytest.mark.parametrize("limit", [0, 5])
def test_recent_decisions_bounds_the_history_in_the_review_snapshot(
    replay_settings, macd_strategy, llm_settings, django_capture_on_commit_callbacks, limit
):
    from trading.models import TradeCursor
    from trading.services.cycle import trading_cycle_run
    from trading.tests.cycle.conftest import REPLAY_START

    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    llm_settings.LLM_RECENT_DECISIONS = limit
    with django_capture_on_commit_callbacks(execute=False):
        trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=30))
    review = LLMDecisionReview.objects.get()
    recent = [d["decision_id"] for d in review.input_json["recent_decisions"]]
    # the decision under review is the symbol's latest: listed once history is asked for
    assert recent == ([] if limit == 0 else [review.decision_id])


# -- DSPy programs ---------------------------------------------------------------------------
@pytest.mark.django_db
def test_dspy_secret_binding_ref_is_sent_with_the_lane_agentrun(jangar, settings):
    from trading.services.dspy_lanes import dspy_agentrun_submit

    base: dict[str, Any] = {
        "lane": "compile",
        "repository": "proompteng/lab",
        "base": "main",
        "head": "codex/dspy-compile",
        "artifact_path": "artifacts/dspy/x",
    }
    for key, ref in (("dspy-a", "binding-a"), ("dspy-b", "binding-b")):
        settings.LLM_DSPY_SECRET_BINDING_REF = ref
        dspy_agentrun_submit(**base, idempotency_key=key)
    sent = [r.json()["policy"]["secretBindingRef"] for r in jangar.submits()]
    assert sent == ["binding-a", "binding-b"]


def test_dspy_compile_metrics_policy_ref_sets_the_evaluation_gates(settings, tmp_path):
    from trading.llm.dspy.artifacts import EvalMetrics, gate_results, load_metrics_policy

    metrics = EvalMetrics(
        examples=50,
        schema_valid_rate=1.0,
        veto_alignment_rate=0.9,
        baseline_veto_alignment_rate=0.8,
        false_veto_rate=0.02,
        fallback_rate=0.0,
        latency_p95_ms=2500,
    )
    settings.LLM_DSPY_COMPILE_METRICS_POLICY_REF = "config/trading/llm/dspy-metrics.yaml"
    assert gate_results(metrics, load_metrics_policy())["latencyP95Ms"]["pass"] is False
    lenient = tmp_path / "metrics.yaml"
    shipped = (settings.BASE_DIR / "config" / "trading" / "llm" / "dspy-metrics.yaml").read_text()
    lenient.write_text(shipped.replace("latencyP95MsMax: 1800", "latencyP95MsMax: 3000"))
    settings.LLM_DSPY_COMPILE_METRICS_POLICY_REF = str(lenient)
    gates = gate_results(metrics, load_metrics_policy())
    assert (gates["latencyP95Ms"]["threshold"], gates["latencyP95Ms"]["pass"]) == (3000, True)


@pytest.mark.django_db
def test_dspy_signature_version_must_name_a_known_program(settings):
    from trading.checks import dspy_artifact_promoted

    settings.LLM_DSPY_RUNTIME_MODE = "shadow"
    settings.LLM_DSPY_ARTIFACT_HASH = "a" * 64
    settings.LLM_DSPY_PROGRAM_NAME = "trade-review-committee-v1"
    settings.LLM_DSPY_SIGNATURE_VERSION = "v9"
    assert [m.id for m in dspy_artifact_promoted(databases=["default"])] == ["trading.E002"]
    settings.LLM_DSPY_SIGNATURE_VERSION = "v1"  # known: now the artifact itself is checked
    assert [m.id for m in dspy_artifact_promoted(databases=["default"])] == ["trading.E001"]
