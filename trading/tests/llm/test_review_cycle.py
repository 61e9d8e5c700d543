"""LLM review off the hot path: a decision waits in `pending_review`, the review task answers
(through the OpenAI-compatible test server), and the decision goes on or stops. Every denied path
is checked for the absence of its side effects: no execution row, no order at the broker."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from tests.servers.base import Fault
from trading.brokers.simulated import SimulatedBroker
from trading.models import (
    Execution,
    LLMCircuitBreaker,
    LLMDecisionReview,
    TradeCursor,
    TradeDecision,
)
from trading.services.cycle import lane_reviews_continue, trading_cycle_run
from trading.services.reviews import review_run, reviews_expire
from trading.tests.cycle.conftest import REPLAY_START
from trading.tests.llm.answers import legacy_json

pytestmark = pytest.mark.django_db


def _cycle(seconds: int = 30):
    return trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=seconds))


def _start() -> None:
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )


def _no_order() -> None:
    assert Execution.objects.count() == 0
    assert SimulatedBroker("paper").list_orders(status="all") == []


def _pending_decision(
    django_capture_on_commit_callbacks,
) -> tuple[TradeDecision, LLMDecisionReview]:
    _start()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = _cycle()
    assert (result.intents, result.pending_review, result.submitted) == (1, 1, 0)
    assert len(callbacks) == 1  # the review task, queued after the commit
    decision = TradeDecision.objects.get()
    review = LLMDecisionReview.objects.get()
    assert (decision.status, decision.qty, decision.review_deadline) == (
        "pending_review",
        Decimal(10),
        review.deadline,
    )
    assert (review.status, review.deterministic_qty, review.shadow) == (
        "pending",
        Decimal(10),
        False,
    )
    assert review.input_json["decision"]["qty"] == "10"
    _no_order()
    return decision, review


def test_llm_review_off_leaves_the_chain_unchanged(replay_settings, macd_strategy, llm_server):
    _start()
    result = _cycle()
    decision = TradeDecision.objects.get()
    assert (result.submitted, decision.status) == (1, "submitted")
    hook = next(v for v in decision.gate_verdicts if v["gate"] == "llm_review")
    assert hook == {
        "gate": "llm_review",
        "passed": True,
        "reasons": [],
        "details": {"mode": "pass_through", "reviewed": False},
    }
    assert LLMDecisionReview.objects.count() == 0
    assert llm_server.completions() == []


def test_cycle_does_not_call_the_llm_and_an_approval_sends_the_deterministic_order(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    assert llm_server.completions() == []  # the cycle asked nothing: the task does
    llm_server.queue(legacy_json("approve"))

    outcome = review_run(review_id=review.pk)
    assert (outcome.result, outcome.effect) == ("completed", "pass")
    continued = lane_reviews_continue(
        account_label="paper", now=REPLAY_START + timedelta(seconds=31)
    )
    assert continued == {"submitted": 1}

    decision.refresh_from_db()
    review.refresh_from_db()
    execution = Execution.objects.get()
    assert (decision.status, decision.qty, execution.submitted_qty) == (
        "submitted",
        Decimal(10),
        Decimal(10),
    )
    assert [v["gate"] for v in decision.gate_verdicts] == [
        "universe",
        "sizing",
        "uncertainty",
        "participation",
        "allocator",
        "portfolio",
        "risk",
        "llm_review",
        "allocator",
        "portfolio",
        "risk",
        "execution_policy",
    ]
    assert (review.status, review.verdict, review.effect, review.final_qty) == (
        "completed",
        "approve",
        "pass",
        Decimal(10),
    )
    assert review.execution_id == execution.pk
    assert (review.provider, review.model, review.prompt_version, review.runtime) == (
        "self_hosted",
        "test-model",
        "v1",
        "legacy",
    )
    body = llm_server.completions()[0]
    assert body["messages"] == review.prompt_json
    assert (body["temperature"], body["seed"], body["max_tokens"]) == (0.0, 0, 300)
    prompt_words = sum(len(m["content"].split()) for m in review.prompt_json)
    assert (review.tokens_prompt, review.tokens_completion) == (
        prompt_words,
        len(legacy_json("approve").split()),
    )
    assert review.input_hash and review.response_hash and review.latency_ms is not None
    assert list(decision.transitions.values_list("from_status", "to_status")) == [
        ("", "planned"),
        ("planned", "pending_review"),
        ("pending_review", "submitting"),
        ("submitting", "submitted"),
    ]


def test_a_veto_rejects_the_decision_without_an_order(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("veto", rationale="earnings tonight; downside gap risk"))
    assert review_run(review_id=review.pk).effect == "veto"
    assert lane_reviews_continue(account_label="paper") == {"rejected": 1}
    decision.refresh_from_db()
    assert (decision.status, decision.reject_reason) == ("rejected", "llm_veto")
    assert decision.risk_reasons == ["llm_veto"]
    _no_order()
    review.refresh_from_db()
    assert (review.verdict, review.effect, review.final_qty, review.rationale) == (
        "veto",
        "veto",
        Decimal(0),
        "earnings tonight; downside gap risk",
    )


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        # above the deterministic 10 the answer is rejected before the clamp (test_review_evidence)
        ("10", Decimal(10)),
        ("6", Decimal(6)),
        ("1", Decimal(5)),  # below LLM_MIN_QTY_MULTIPLIER=0.5: clamped up to 5
        ("7.9", Decimal(7)),  # floored to whole shares
    ],
)
def test_an_adjustment_can_shrink_the_order_but_never_enlarge_it(
    replay_settings,
    macd_strategy,
    llm_settings,
    llm_server,
    django_capture_on_commit_callbacks,
    requested,
    expected,
):
    llm_settings.LLM_ADJUSTMENT_ALLOWED = True
    llm_settings.LLM_ADJUSTMENT_APPROVED = True
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("adjust", adjusted_qty=requested))
    review_run(review_id=review.pk)
    assert lane_reviews_continue(account_label="paper") == {"submitted": 1}
    execution = Execution.objects.get()
    decision.refresh_from_db()
    review.refresh_from_db()
    assert (execution.submitted_qty, decision.qty, review.final_qty) == (expected,) * 3
    assert review.adjusted_qty == Decimal(requested)
    (order,) = SimulatedBroker("paper").list_orders(status="all")
    assert order.qty == expected


def test_an_adjustment_is_a_veto_while_adjustments_are_not_allowed(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("adjust", adjusted_qty="5"))
    review_run(review_id=review.pk)
    lane_reviews_continue(account_label="paper")
    decision.refresh_from_db()
    assert (decision.status, decision.reject_reason) == ("rejected", "llm_adjustment_not_allowed")
    _no_order()


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ("the trade looks fine to me", "parse_error"),
        (
            legacy_json(
                calibrated_probabilities={
                    "approve": 0.9,
                    "veto": 0.3,
                    "adjust": 0.1,
                    "abstain": 0.1,
                    "escalate": 0.1,
                }
            ),
            "validation_error",
        ),
        (legacy_json(rationale="x" * 281), "validation_error"),
        (legacy_json("adjust"), "validation_error"),  # adjust without a quantity
        (legacy_json(verdict="buy_more"), "validation_error"),
    ],
)
def test_an_answer_outside_the_schema_takes_the_fail_mode(
    replay_settings,
    macd_strategy,
    llm_settings,
    llm_server,
    django_capture_on_commit_callbacks,
    content,
    kind,
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.queue(content)
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert (review.verdict, review.effect, review.reasons) == (
        "error",
        "veto",
        [f"llm_review_error:{kind}"],
    )
    assert review.error.startswith(f"{kind}: ")
    lane_reviews_continue(account_label="paper")
    decision.refresh_from_db()
    assert (decision.status, decision.reject_reason) == ("rejected", f"llm_review_error:{kind}")
    _no_order()


def test_probabilities_within_the_tolerance_are_accepted(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    probabilities = {
        "approve": 0.9,
        "veto": 0.05,
        "adjust": 0.02,
        "abstain": 0.02,
        "escalate": 0.02,
    }
    llm_server.queue(legacy_json(calibrated_probabilities=probabilities))  # sums to 1.01
    assert review_run(review_id=review.pk).effect == "pass"


def test_a_timeout_vetoes_under_strict_veto_and_passes_with_a_configured_pass_through(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_TIMEOUT_SECONDS = 0.3
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.inject(Fault("POST", "/v1/chat/completions", delay=1.0, after_handler=True))
    llm_server.queue(legacy_json("approve"))
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert (review.verdict, review.effect, review.reasons) == (
        "error",
        "veto",
        ["llm_review_error:timeout"],
    )
    lane_reviews_continue(account_label="paper")
    decision.refresh_from_db()
    assert decision.reject_reason == "llm_review_error:timeout"
    _no_order()


def test_a_configured_pass_through_sends_the_deterministic_order_after_an_error(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_FAIL_MODE = "pass_through"
    llm_settings.LLM_FAIL_MODE_ENFORCEMENT = "configured"
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.inject(Fault("POST", "/v1/chat/completions", status=503))
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert (review.verdict, review.effect, review.reasons, review.final_qty) == (
        "error",
        "pass",
        ["llm_review_error:http_503_pass_through"],
        Decimal(10),
    )
    assert lane_reviews_continue(account_label="paper") == {"submitted": 1}
    assert Execution.objects.get().submitted_qty == Decimal(10)


def test_pass_through_on_a_live_lane_needs_the_fail_open_approval(llm_settings):
    from trading.llm.config import ReviewConfig
    from trading.llm.policy import review_posture

    llm_settings.LLM_FAIL_MODE = "pass_through"
    llm_settings.LLM_FAIL_MODE_ENFORCEMENT = "configured"
    assert review_posture(ReviewConfig.current(), is_live=False).fail_mode == "pass_through"
    assert review_posture(ReviewConfig.current(), is_live=True).fail_mode == "veto"
    llm_settings.LLM_FAIL_OPEN_LIVE_APPROVED = True
    assert review_posture(ReviewConfig.current(), is_live=True).fail_mode == "pass_through"


def test_the_circuit_breaker_opens_after_max_errors_and_stops_calling(
    replay_settings, macd_strategy, llm_settings, llm_server
):
    from trading.llm.circuit import circuit_record_error, circuit_state

    now = timezone.now()
    for _ in range(2):
        circuit_record_error(now=now, error="http_503")
    assert circuit_state(now=now).open is False
    state = circuit_record_error(now=now, error="http_503")
    assert (state.open, state.open_until) == (True, now + timedelta(seconds=600))
    row = LLMCircuitBreaker.objects.get()
    assert (row.trips, row.error_times) == (1, [])
    assert circuit_state(now=now + timedelta(seconds=599)).open is True
    assert circuit_state(now=now + timedelta(seconds=601)).open is False


def test_errors_outside_the_window_do_not_open_the_circuit(llm_settings, db):
    from trading.llm.circuit import circuit_record_error

    start = timezone.now()
    circuit_record_error(now=start, error="timeout")
    circuit_record_error(now=start + timedelta(seconds=100), error="timeout")
    state = circuit_record_error(now=start + timedelta(seconds=301), error="timeout")
    assert (state.open, state.recent_errors) == (False, 2)


def test_reviews_share_the_circuit_and_an_open_circuit_makes_no_call(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_CIRCUIT_MAX_ERRORS = 1
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.inject(Fault("POST", "/v1/chat/completions", status=500))
    review_run(review_id=review.pk)
    assert len(llm_server.completions()) == 1
    assert LLMCircuitBreaker.objects.get().open_until is not None

    # a second decision (MSFT) while the circuit is open: no call, the fail mode decides
    with django_capture_on_commit_callbacks(execute=False):
        assert _cycle(90).pending_review == 1
    second = LLMDecisionReview.objects.exclude(pk=review.pk).get()
    llm_server.queue(legacy_json("approve"))
    review_run(review_id=second.pk)
    second.refresh_from_db()
    assert len(llm_server.completions()) == 1
    assert (second.verdict, second.reasons) == ("error", ["llm_circuit_open"])
    assert second.error.startswith("circuit_open: open until ")

    # after the cool-down the next review calls again
    with time_machine.travel(timezone.now() + timedelta(seconds=601), tick=False):
        from trading.llm.circuit import circuit_state

        assert circuit_state(now=timezone.now()).open is False


def test_the_deadline_applies_the_fail_mode_and_a_late_task_calls_nothing(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    assert reviews_expire(now=review.deadline - timedelta(seconds=1)) == []
    assert reviews_expire(now=review.deadline) == [review.pk]
    review.refresh_from_db()
    assert (review.status, review.verdict, review.effect, review.reasons) == (
        "expired",
        "error",
        "veto",
        ["llm_review_expired"],
    )
    assert lane_reviews_continue(account_label="paper") == {"rejected": 1}
    decision.refresh_from_db()
    assert (decision.status, decision.reject_reason) == ("rejected", "llm_review_expired")
    _no_order()
    llm_server.queue(legacy_json("approve"))
    assert review_run(review_id=review.pk).result == "not_pending"
    assert llm_server.completions() == []


def test_a_review_whose_row_is_gone_is_a_no_op_not_a_task_error(llm_settings, llm_server):
    # a queued task outliving its review (the decision deleted) ends quietly, asking nothing
    llm_server.queue(legacy_json("approve"))
    assert review_run(review_id=987654).result == "not_found"
    assert llm_server.completions() == []


def test_an_expired_review_with_pass_through_sends_the_deterministic_order(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_FAIL_MODE = "pass_through"
    llm_settings.LLM_FAIL_MODE_ENFORCEMENT = "configured"
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    reviews_expire(now=review.deadline + timedelta(seconds=1))
    # the next trade cycle carries it on before reading new signals
    result = _cycle(31)
    assert result.reviews_continued == 1
    decision.refresh_from_db()
    assert (decision.status, Execution.objects.get().submitted_qty) == ("submitted", Decimal(10))


def test_shadow_mode_records_the_review_but_never_holds_or_changes_the_order(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_SHADOW_MODE = True
    _start()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = _cycle()
    assert (result.submitted, result.pending_review, len(callbacks)) == (1, 0, 1)
    decision = TradeDecision.objects.get()
    review = LLMDecisionReview.objects.get()
    execution = Execution.objects.get()
    assert (decision.status, execution.submitted_qty) == ("submitted", Decimal(10))
    assert (review.shadow, review.shadow_reasons, review.execution_id) == (
        True,
        ["shadow_mode"],
        execution.pk,
    )
    llm_server.queue(legacy_json("veto"))
    assert review_run(review_id=review.pk).effect == "shadow"
    review.refresh_from_db()
    decision.refresh_from_db()
    assert (review.verdict, review.effect, review.reasons) == ("veto", "shadow", ["llm_veto"])
    assert decision.status == "submitted"
    assert lane_reviews_continue(account_label="paper") == {}


@pytest.mark.parametrize(
    ("stage", "unset", "reasons"),
    [
        ("stage1", None, ["rollout_stage1"]),
        ("stage0_baseline", None, ["rollout_stage0"]),
        ("stage3", "LLM_EVALUATION_REPORT", ["evaluation_report_missing"]),
        ("stage3", "LLM_MODEL_VERSION_LOCK", ["model_version_lock_missing"]),
    ],
)
def test_rollout_stages_without_evidence_force_shadow(
    replay_settings,
    macd_strategy,
    llm_settings,
    django_capture_on_commit_callbacks,
    stage,
    unset,
    reasons,
):
    llm_settings.LLM_ROLLOUT_STAGE = stage
    if unset:
        setattr(llm_settings, unset, "")
    _start()
    with django_capture_on_commit_callbacks(execute=False):
        result = _cycle()
    assert (result.submitted, result.pending_review) == (1, 0)
    assert LLMDecisionReview.objects.get().shadow_reasons == reasons


def test_a_guardrail_block_makes_no_call(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_ALLOWED_MODELS = ["gpt-approved"]
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert (review.verdict, review.reasons, review.error) == (
        "error",
        ["llm_guardrail_block"],
        "guardrail_block: model_not_allowed",
    )
    assert llm_server.completions() == []


def test_a_task_run_twice_calls_the_model_once(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("approve"), legacy_json("veto"))
    assert review_run(review_id=review.pk).result == "completed"
    assert review_run(review_id=review.pk).result == "not_pending"
    assert len(llm_server.completions()) == 1


def test_the_decision_page_shows_its_review_and_the_review_page_its_snapshot(
    replay_settings,
    macd_strategy,
    llm_settings,
    llm_server,
    django_capture_on_commit_callbacks,
    admin_client,
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("approve", rationale="momentum intact, spread tight"))
    review_run(review_id=review.pk)
    lane_reviews_continue(account_label="paper")
    execution = Execution.objects.get()
    page = admin_client.get(f"/admin/trading/tradedecision/{decision.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "approve → pass" in html
    assert "momentum intact, spread tight" in html
    assert "10.00000000 deterministic → 10.00000000 reviewed" in html
    assert f'href="/admin/trading/llmdecisionreview/{review.pk}/change/"' in html
    assert f'href="/admin/trading/execution/{execution.pk}/change/"' in html
    detail = admin_client.get(f"/admin/trading/llmdecisionreview/{review.pk}/change/")
    assert detail.status_code == 200
    assert "Review the following trade decision" in detail.content.decode()


def test_a_stored_review_can_be_asked_again_and_compared(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    from trading.services.review_replay import review_ask_again

    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("approve"))
    review_run(review_id=review.pk)
    review.refresh_from_db()

    llm_server.queue(legacy_json("approve"))
    same = review_ask_again(review_id=review.pk)
    assert (same.same_answer, same.original_verdict, same.replay_verdict) == (
        True,
        "approve",
        "approve",
    )
    sent, replayed = llm_server.completions()
    assert replayed["messages"] == sent["messages"] == review.prompt_json
    assert (replayed["temperature"], replayed["seed"], replayed["model"]) == (0.0, 0, "test-model")

    llm_server.queue(legacy_json("veto"))
    with pytest.raises(SystemExit) as exit_code:
        call_command("llm_review_replay", "--review-id", str(review.pk), "--ask-again")
    assert exit_code.value.code == 2
    decision.refresh_from_db()
    assert (decision.status, LLMDecisionReview.objects.get().verdict) == (
        "pending_review",
        "approve",
    )


def test_a_review_of_a_lane_no_longer_configured_expires_strictly_and_blocks_nothing(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_FAIL_MODE = "pass_through"
    llm_settings.LLM_FAIL_MODE_ENFORCEMENT = "configured"
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    replay_settings.TRADING_LANES = [{**replay_settings.TRADING_LANES[0], "label": "paper-2"}]
    assert reviews_expire(now=review.deadline) == [review.pk]
    review.refresh_from_db()
    # treated as live: pass_through without the live fail-open approval is a veto
    assert (review.status, review.effect, review.reasons) == (
        "expired",
        "veto",
        ["llm_review_expired"],
    )
    assert lane_reviews_continue(account_label="paper") == {}
    decision.refresh_from_db()
    assert decision.status == "pending_review"
    _no_order()
