"""A review's cost is the sum over its calls: the DSPy shadow call is reserved and settled
apart (skipped alone when refused), a DSPy failure's tokens are settled with the legacy call
that followed it, and today's spend is published by scope (trading/services/llm_budget.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from trading.models import LLMSpendDay, LLMSpendReservation
from trading.services.llm_budget import cost_usd
from trading.services.reviews import review_run
from trading.tests.llm.answers import dspy_text, legacy_json
from trading.tests.llm.data import constant_dspy
from trading.tests.llm.test_dspy_runtime import _pending
from trading.tests.llm.test_llm_budget import PRICES, _estimate

pytestmark = pytest.mark.django_db


def _usage(body: dict, answer: str) -> tuple[int, int]:
    return sum(len(m["content"].split()) for m in body["messages"]), len(answer.split())


def _cost(usage: tuple[int, int]) -> Decimal:
    return cost_usd("test-model", tokens_prompt=usage[0], tokens_completion=usage[1])


@pytest.fixture
def shadow(promoted, llm_settings, replay_settings, macd_strategy):
    llm_settings.LLM_DSPY_RUNTIME_MODE = "shadow"
    llm_settings.LLM_DSPY_ARTIFACT_HASH = promoted
    llm_settings.LLM_MODEL_PRICES = PRICES
    return llm_settings


def test_the_shadow_call_is_reserved_and_settled_and_counted_in_the_review_cost(
    shadow, llm_server, macd_strategy, django_capture_on_commit_callbacks
):
    decision, review = _pending(django_capture_on_commit_callbacks)
    legacy, dspy = legacy_json("approve"), dspy_text("veto")
    llm_server.queue(legacy, dspy)
    review_run(review_id=review.pk)
    review.refresh_from_db()
    first, second = llm_server.completions()
    own, shadow_usage = _usage(first, legacy), _usage(second, dspy)
    rows = {r.call: r for r in LLMSpendReservation.objects.filter(review=review)}
    assert {call: (r.status, r.actual_usd) for call, r in rows.items()} == {
        "review": ("settled", _cost(own)),
        "dspy_shadow": ("settled", _cost(shadow_usage)),
    }
    assert review.cost_usd == _cost(own) + _cost(shadow_usage)
    assert (review.tokens_prompt, review.tokens_completion) == (
        own[0] + shadow_usage[0],
        own[1] + shadow_usage[1],
    )
    spent = LLMSpendDay.objects.get(scope="all")
    assert (spent.spent_usd, spent.reviews) == (review.cost_usd, 1)  # one review, two calls
    gauge = REGISTRY.get_sample_value(
        "torghut_trading_llm_spend_today_usd", {"scope": f"strategy:{macd_strategy.name}"}
    )
    assert gauge == pytest.approx(float(review.cost_usd))
    assert REGISTRY.get_sample_value(
        "torghut_trading_llm_spend_today_usd", {"scope": "all"}
    ) == pytest.approx(float(review.cost_usd))


def test_a_refused_shadow_reservation_skips_the_shadow_call_alone(
    shadow, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending(django_capture_on_commit_callbacks)
    shadow.LLM_BUDGET_USD_PER_DAY = _estimate(review)  # room for the review's own call only
    llm_server.queue(legacy_json("approve"), dspy_text("veto"))
    review_run(review_id=review.pk)
    review.refresh_from_db()
    (sent,) = llm_server.completions()
    assert (review.status, review.verdict, review.effect) == ("completed", "approve", "pass")
    assert (review.response_json or {})["dspy_shadow"] == {
        "error": "budget_exceeded",
        "detail": "no call made",
    }
    assert list(LLMSpendReservation.objects.values_list("call", "status")) == [
        ("review", "settled")
    ]
    assert review.cost_usd == _cost(_usage(sent, legacy_json("approve")))


def test_the_fallback_settles_the_failed_dspy_call_and_the_legacy_call(
    promoted, llm_settings, replay_settings, macd_strategy, llm_server,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    llm_settings.LLM_DSPY_RUNTIME_MODE = "active"
    llm_settings.LLM_DSPY_ARTIFACT_HASH = promoted
    llm_settings.LLM_MODEL_PRICES = PRICES
    decision, review = _pending(django_capture_on_commit_callbacks)
    # the DSPy answer breaks the contract (rationale too long): the legacy review follows
    llm_server.responder = constant_dspy("veto", legacy="approve", rationale="z" * 300)
    review_run(review_id=review.pk)
    review.refresh_from_db()
    dspy_body, legacy_body = llm_server.completions()
    dspy_answer = constant_dspy("veto", rationale="z" * 300)(dspy_body)
    dspy_usage, legacy_usage = _usage(dspy_body, dspy_answer), _usage(legacy_body, legacy_json())
    assert (review.runtime, review.verdict) == ("dspy_fallback", "approve")
    assert (review.tokens_prompt, review.tokens_completion) == (
        dspy_usage[0] + legacy_usage[0],
        dspy_usage[1] + legacy_usage[1],
    )
    both = _cost(dspy_usage) + _cost(legacy_usage)
    assert review.cost_usd == both
    assert LLMSpendReservation.objects.get(review=review).actual_usd == both
    assert review.response_body == legacy_json("approve")
