"""The original's policy and guardrail counters (`torghut_trading_llm_*`): how each review's
posture resolved, read as exact deltas of the Prometheus registry around one review."""

from __future__ import annotations

from dataclasses import replace

import pytest

from trading.llm.config import ReviewConfig
from trading.llm.policy import review_posture
from trading.llm.resolution import policy_resolution
from trading.models import LLMDecisionReview
from trading.services.reviews import review_run, reviews_expire
from trading.tests.llm.answers import legacy_json
from trading.tests.llm.test_review_committee import Names, delta, read
from trading.tests.llm.test_review_cycle import _cycle, _pending_decision, _start

pytestmark = pytest.mark.django_db

NAMES: Names = {
    "override": ("torghut_trading_llm_fail_mode_override_total", {}),
    "exception": ("torghut_trading_llm_fail_mode_exception_total", {}),
    "stage": ("torghut_trading_llm_stage_policy_violation_total", {}),
    "compliant": ("torghut_trading_llm_policy_resolution_total", {"classification": "compliant"}),
    "intentional": (
        "torghut_trading_llm_policy_resolution_total",
        {"classification": "intentional_exception"},
    ),
    "violation": ("torghut_trading_llm_policy_resolution_total", {"classification": "violation"}),
    "guardrail_shadow": ("torghut_trading_llm_guardrail_shadow_total", {}),
    "guardrail_block": ("torghut_trading_llm_guardrail_block_total", {}),
    "shadow": ("torghut_trading_llm_shadow_total", {}),
    "fallback": ("torghut_trading_llm_policy_fallback_total", {}),
}
ZERO = dict.fromkeys(NAMES, 0.0)


@pytest.mark.parametrize(
    ("changes", "is_live", "shadow_reasons", "expected"),
    [
        ({}, False, [], ("compliant", False, False, False, False)),
        ({}, True, ["shadow_mode"], ("compliant", False, False, False, False)),
        ({"fail_mode": "pass_through"}, False, [], ("violation", True, False, False, False)),
        ({"fail_mode": "pass_through", "fail_mode_enforcement": "configured"}, False, [],
         ("compliant", False, False, False, False)),
        ({"fail_mode": "pass_through", "fail_mode_enforcement": "configured"}, True, [],
         ("violation", True, False, False, False)),
        ({"fail_mode": "pass_through", "fail_mode_enforcement": "configured",
          "fail_open_live_approved": True}, True, [],
         ("intentional_exception", False, True, False, False)),
        ({}, False, ["rollout_stage1"], ("violation", False, False, True, True)),
        ({"allowed_models": ("other",)}, False, [], ("violation", False, False, True, False)),
    ],
)  # fmt: skip
def test_policy_resolution_classifies_the_posture(
    llm_settings, changes, is_live, shadow_reasons, expected
):
    config = replace(ReviewConfig.current(), **changes)
    posture = review_posture(config, is_live=is_live)
    resolution = policy_resolution(config, posture, is_live=is_live, shadow_reasons=shadow_reasons)
    assert (
        resolution.classification,
        resolution.fail_mode_override,
        resolution.fail_mode_exception,
        resolution.stage_policy_violation,
        resolution.guardrail_shadow,
    ) == expected


def test_a_compliant_review_counts_compliant_only(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("approve"))
    before = read(NAMES)
    review_run(review_id=review.pk)
    assert delta(before, NAMES) == {**ZERO, "compliant": 1.0}


def test_an_overridden_fail_mode_counts_an_override(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_FAIL_MODE = "pass_through"  # strict_veto enforcement makes it a veto
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.queue("not json")
    before = read(NAMES)
    review_run(review_id=review.pk)
    assert delta(before, NAMES) == {**ZERO, "override": 1.0, "violation": 1.0, "fallback": 1.0}


def test_a_live_fail_open_counts_an_intentional_exception(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_FAIL_MODE = "pass_through"
    llm_settings.LLM_FAIL_MODE_ENFORCEMENT = "configured"
    llm_settings.LLM_FAIL_OPEN_LIVE_APPROVED = True
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    # a lane no longer configured is treated as live (trading/services/reviews.py::_is_live)
    replay_settings.TRADING_LANES = [{**replay_settings.TRADING_LANES[0], "label": "paper-2"}]
    llm_server.queue("not json")
    before = read(NAMES)
    assert review_run(review_id=review.pk).effect == "pass"
    assert delta(before, NAMES) == {**ZERO, "exception": 1.0, "intentional": 1.0, "fallback": 1.0}


def test_a_stage_forced_shadow_counts_a_guardrail_shadow(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_ROLLOUT_STAGE = "stage1"
    _start()
    with django_capture_on_commit_callbacks(execute=False):
        _cycle()
    review = LLMDecisionReview.objects.get()
    assert review.shadow_reasons == ["rollout_stage1"]
    llm_server.queue(legacy_json("veto"))
    before = read(NAMES)
    assert review_run(review_id=review.pk).effect == "shadow"
    assert delta(before, NAMES) == {
        **ZERO, "stage": 1.0, "violation": 1.0, "guardrail_shadow": 1.0, "shadow": 1.0,
    }  # fmt: skip


def test_a_guardrail_block_counts_a_stage_policy_violation_and_a_fallback(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_ALLOWED_MODELS = ["gpt-approved"]
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    before = read(NAMES)
    review_run(review_id=review.pk)
    assert delta(before, NAMES) == {
        **ZERO, "stage": 1.0, "violation": 1.0, "guardrail_block": 1.0, "fallback": 1.0,
    }  # fmt: skip
    assert llm_server.completions() == []


def test_an_expired_review_counts_a_fallback(
    replay_settings, macd_strategy, llm_settings, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    before = read(NAMES)
    assert reviews_expire(now=review.deadline) == [review.pk]
    assert reviews_expire(now=review.deadline) == []  # counted once
    assert delta(before, NAMES) == {**ZERO, "fallback": 1.0}
