"""LLM spend budgets (trading/services/llm_budget.py): the estimated cost is reserved before the
call and settled from the usage the OpenAI-compatible test server reports (word counts), a
review over a cap is skipped with its reason and takes the fail mode (never a larger position),
and a reservation a crashed worker left is settled by the sweep at its reserved amount."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from tests.conftest import manage
from trading.llm.config import ReviewConfig
from trading.llm.request import review_messages
from trading.models import (
    Execution,
    LLMDecisionReview,
    LLMSpendDay,
    LLMSpendReservation,
    TradeDecision,
)
from trading.services.cycle import lane_reviews_continue
from trading.services.llm_budget import (
    budget_reserve,
    budget_settle,
    budget_sweep,
    cost_usd,
    estimate_prompt_tokens,
)
from trading.services.reviews import review_run
from trading.tests.llm.answers import legacy_json
from trading.tests.llm.test_review_cycle import _pending_decision

pytestmark = pytest.mark.django_db

PRICES = {"test-model": {"input_per_1k": Decimal("1.5"), "output_per_1k": Decimal("2")}}


@pytest.fixture
def budget_settings(llm_settings):
    llm_settings.LLM_MODEL_PRICES = PRICES
    llm_settings.LLM_BUDGET_USD_PER_REVIEW = None
    llm_settings.LLM_BUDGET_USD_PER_DAY = None
    llm_settings.LLM_BUDGET_USD_PER_STRATEGY_PER_DAY = None
    return llm_settings


def _estimate(review: LLMDecisionReview) -> Decimal:
    config = ReviewConfig.current()
    messages = review_messages(review.input_json, prompt_version=config.prompt_version)
    return cost_usd(
        config.model,
        tokens_prompt=estimate_prompt_tokens(messages),
        tokens_completion=config.max_tokens,
    )


def _clones(decision: TradeDecision, review: LLMDecisionReview, n: int) -> list[int]:
    """`n` more pending reviews of copies of the decision (same snapshot, same estimate)."""
    ids = [review.pk]
    for i in range(1, n + 1):
        copy = TradeDecision.objects.get(pk=decision.pk)
        copy.pk = None
        copy.decision_hash = f"{decision.decision_hash[:-4]}{i:04x}"
        copy.client_order_id = f"{decision.client_order_id[:-4]}{i:04x}"
        copy.save()
        row = LLMDecisionReview.objects.get(pk=review.pk)
        row.pk = None
        row.decision = copy
        row.save()
        ids.append(row.pk)
    return ids


def _spend(scope: str = "all") -> Decimal:
    return LLMSpendDay.objects.get(scope=scope).spent_usd


def _metric(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


@pytest.mark.parametrize("max_tokens", [16, 300])
def test_a_runaway_loop_stops_at_the_daily_cap_with_at_most_one_call_over_it(
    max_tokens, budget_settings, replay_settings, macd_strategy, llm_server,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    # 16 output tokens and free input: the server's answer (about 60 words) costs more than
    # reserved, so the last call can end over the cap; 300 output tokens: the estimate covers
    # every call and none ends over it
    budget_settings.LLM_MAX_TOKENS = max_tokens
    if max_tokens == 16:
        budget_settings.LLM_MODEL_PRICES = {
            "test-model": {"input_per_1k": Decimal(0), "output_per_1k": Decimal(2)}
        }
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    estimate = _estimate(review)
    cap = (estimate * Decimal("4.5")).quantize(Decimal("0.01"))
    budget_settings.LLM_BUDGET_USD_PER_DAY = cap
    llm_server.responder = lambda body: legacy_json("approve")
    ids = _clones(decision, review, 29)

    for review_id in ids:
        review_run(review_id=review_id)

    calls = len(llm_server.completions())
    reservations = list(LLMSpendReservation.objects.order_by("pk"))
    assert len(reservations) == calls
    actual = reservations[0].actual_usd
    assert actual is not None
    assert {(r.status, r.estimated_usd, r.actual_usd) for r in reservations} == {
        ("settled", estimate, actual)
    }
    # the calls a sequential loop may make: reserve while spend + estimate <= cap
    expected, spent = 0, Decimal(0)
    while spent + estimate <= cap:
        expected, spent = expected + 1, spent + actual
    assert calls == expected
    assert _spend() == _spend(f"strategy:{macd_strategy.pk}") == spent == actual * calls
    assert (actual > estimate) == (max_tokens == 16)
    over = [i for i in range(1, calls + 1) if actual * i > cap]
    assert len(over) == (1 if max_tokens == 16 else 0)
    assert spent + estimate > cap  # the loop was stopped by the cap, not by running out
    skipped = LLMDecisionReview.objects.filter(error__startswith="budget_exceeded")
    assert skipped.count() == len(ids) - calls
    assert {(r.verdict, r.effect, tuple(r.reasons), r.final_qty) for r in skipped} == {
        ("error", "veto", ("llm_budget_exceeded:per_day",), Decimal(0))
    }
    assert {r.error for r in skipped} == {f"budget_exceeded: estimated {estimate} USD"}


def test_a_skipped_review_takes_the_pass_through_the_deterministic_order_not_more(
    budget_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    budget_settings.LLM_FAIL_MODE = "pass_through"
    budget_settings.LLM_FAIL_MODE_ENFORCEMENT = "configured"
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    budget_settings.LLM_BUDGET_USD_PER_STRATEGY_PER_DAY = _estimate(review) - Decimal("0.0001")
    llm_server.queue(legacy_json("approve"))
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert (review.verdict, review.effect, review.reasons, review.final_qty) == (
        "error",
        "pass",
        ["llm_budget_exceeded:per_strategy_per_day_pass_through"],
        Decimal(10),
    )
    assert llm_server.completions() == []
    # refused in the strategy's scope: the `all` row taken first was rolled back with it
    assert LLMSpendReservation.objects.count() == 0
    assert set(LLMSpendDay.objects.values_list("spent_usd", "reviews")) == set()
    assert lane_reviews_continue(account_label="paper") == {"submitted": 1}
    assert Execution.objects.get().submitted_qty == Decimal(10)


def test_a_review_dearer_than_the_per_review_cap_makes_no_call_and_writes_no_spend(
    budget_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    second = _clones(decision, review, 1)[1]
    before = _metric("torghut_llm_budget_exceeded_total", {"scope": "per_review"})
    budget_settings.LLM_BUDGET_USD_PER_REVIEW = _estimate(review) - Decimal("0.00000001")
    llm_server.queue(legacy_json("approve"))
    review_run(review_id=review.pk)
    review.refresh_from_db()
    assert (review.effect, review.reasons, review.final_qty) == (
        "veto",
        ["llm_budget_exceeded:per_review"],
        Decimal(0),
    )
    assert llm_server.completions() == []
    assert (LLMSpendReservation.objects.count(), LLMSpendDay.objects.count()) == (0, 0)
    assert _metric("torghut_llm_budget_exceeded_total", {"scope": "per_review"}) == before + 1
    budget_settings.LLM_BUDGET_USD_PER_REVIEW = _estimate(review)  # exactly the estimate: allowed
    review_run(review_id=second)
    assert len(llm_server.completions()) == 1


def test_the_settle_uses_the_reported_usage_and_feeds_the_metrics_and_the_admin(
    budget_settings,
    replay_settings,
    macd_strategy,
    llm_server,
    django_capture_on_commit_callbacks,
    admin_client,
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    answer = legacy_json("approve")
    llm_server.queue(answer)
    spent_before = _metric("torghut_llm_spend_usd_total", {"model": "test-model"})
    review_run(review_id=review.pk)
    review.refresh_from_db()
    prompt_words = sum(len(m["content"].split()) for m in llm_server.completions()[0]["messages"])
    assert (review.tokens_prompt, review.tokens_completion) == (prompt_words, len(answer.split()))
    expected = (Decimal("1.5") * prompt_words + 2 * len(answer.split())) / 1000
    reservation = LLMSpendReservation.objects.get()
    assert (reservation.status, reservation.actual_usd, reservation.estimated_usd) == (
        "settled",
        expected.quantize(Decimal("0.00000001")),
        _estimate(review),
    )
    assert _spend() == _spend(f"strategy:{macd_strategy.pk}") == reservation.actual_usd
    assert _metric("torghut_llm_spend_usd_total", {"model": "test-model"}) == pytest.approx(
        spent_before + float(expected)
    )
    assert _metric("torghut_llm_spend_reserved_today_usd") == pytest.approx(float(expected))
    assert _metric("torghut_llm_cost_per_1000_reviews_usd") == pytest.approx(
        float(expected * 1000), abs=1e-4
    )
    page = admin_client.get("/admin/trading/llmspendday/")
    assert page.status_code == 200
    html = page.content.decode()
    per_1000 = str((reservation.actual_usd * 1000).quantize(Decimal("0.0001")))
    assert html.count(per_1000) == 2  # the `all` row and the strategy's row
    assert f"strategy:{macd_strategy.pk}" in html
    assert admin_client.get("/admin/trading/llmspendreservation/").status_code == 200
    assert admin_client.get("/admin/trading/llmspendday/add/").status_code == 403


def test_a_crash_between_reserve_and_settle_is_swept_at_the_reserved_amount(
    budget_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    config = ReviewConfig.current()
    budget_settings.LLM_BUDGET_USD_PER_DAY = Decimal(100)
    # the worker reserved, then died before its call returned
    reserved = budget_reserve(
        review=review,
        strategy_id=decision.strategy_id,
        model="test-model",
        messages=review_messages(review.input_json, prompt_version=config.prompt_version),
        max_tokens=config.max_tokens,
    )
    assert reserved.allowed and reserved.estimated_usd == _estimate(review)
    assert _spend() == reserved.estimated_usd
    # a call may still be in flight until the deadline (plus a minute's grace)
    assert budget_sweep(now=review.deadline + timedelta(seconds=59)) == []
    assert budget_sweep(now=review.deadline + timedelta(seconds=60)) == [reserved.reservation_id]
    row = LLMSpendReservation.objects.get()
    assert (row.status, row.actual_usd) == ("swept", reserved.estimated_usd)
    assert _spend() == _spend(f"strategy:{macd_strategy.pk}") == reserved.estimated_usd
    # a late settle finds nothing open and frees nothing; a second sweep finds nothing
    assert (
        budget_settle(
            review_id=review.pk,
            model="test-model",
            tokens_prompt=1,
            tokens_completion=1,
            called=True,
        )
        is None
    )
    assert budget_sweep(now=review.deadline + timedelta(days=1)) == []
    assert _spend() == reserved.estimated_usd


def test_a_call_that_reports_no_usage_is_settled_at_its_estimate(
    budget_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    from tests.servers.base import Fault

    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.inject(Fault("POST", "/v1/chat/completions", status=503))
    review_run(review_id=review.pk)
    row = LLMSpendReservation.objects.get()
    assert (row.status, row.actual_usd) == ("settled", _estimate(review))


def test_no_prices_and_no_caps_keep_no_ledger(
    llm_settings, replay_settings, macd_strategy, llm_server, django_capture_on_commit_callbacks
):
    llm_settings.LLM_MODEL_PRICES = {}
    llm_settings.LLM_BUDGET_USD_PER_REVIEW = None
    llm_settings.LLM_BUDGET_USD_PER_DAY = None
    llm_settings.LLM_BUDGET_USD_PER_STRATEGY_PER_DAY = None
    decision, review = _pending_decision(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("approve"))
    assert review_run(review_id=review.pk).effect == "pass"
    assert (LLMSpendReservation.objects.count(), LLMSpendDay.objects.count()) == (0, 0)


SHOW = (
    "from django.conf import settings as s; print(repr((s.LLM_BUDGET_USD_PER_REVIEW, "
    "s.LLM_BUDGET_USD_PER_DAY, s.LLM_BUDGET_USD_PER_STRATEGY_PER_DAY, s.LLM_MODEL_PRICES)))"
)


def test_budget_settings_parse_and_fail_at_startup_naming_the_variable():
    ok = manage(
        "shell",
        "-c",
        SHOW,
        env={
            "LLM_MODEL": "m1",
            "LLM_BUDGET_USD_PER_REVIEW": "0.05",
            "LLM_BUDGET_USD_PER_DAY": "20",
            "LLM_BUDGET_USD_PER_STRATEGY_PER_DAY": "5.5",
            "LLM_MODEL_PRICES_JSON": '{"m1": {"input_per_1k": 0.003, "output_per_1k": "0.015"}}',
        },
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == (
        "(Decimal('0.05'), Decimal('20'), Decimal('5.5'), "
        "{'m1': {'input_per_1k': Decimal('0.003'), 'output_per_1k': Decimal('0.015')}})"
    )
    unset = manage("shell", "-c", SHOW, env={"LLM_MODEL": "m1"})
    assert unset.stdout.strip().splitlines()[-1] == "(None, None, None, {})"
    bad = manage(
        "check",
        env={
            "LLM_MODEL": "m1",
            "LLM_BUDGET_USD_PER_REVIEW": "-1",
            "LLM_BUDGET_USD_PER_DAY": "lots",
            "LLM_BUDGET_USD_PER_STRATEGY_PER_DAY": "3",
            "LLM_MODEL_PRICES_JSON": '{"m2": {"input_per_1k": -1, "output_per_1k": 1}, '
            '"m3": {"input_per_1k": 1}}',
        },
    )
    assert bad.returncode != 0
    problems = [line.strip() for line in bad.stderr.splitlines() if line.startswith("  - ")]
    assert problems == [
        "- LLM_BUDGET_USD_PER_REVIEW=-1 must be >= 0",
        "- LLM_BUDGET_USD_PER_DAY='lots' is not a decimal number",
        "- LLM_MODEL_PRICES_JSON['m2']['input_per_1k']=-1 is not a decimal number >= 0",
        "- LLM_MODEL_PRICES_JSON['m3'] must be an object with exactly input_per_1k and "
        "output_per_1k",
        "- LLM_MODEL_PRICES_JSON has no price for model 'm1' (a LLM_BUDGET_USD_* cap is set)",
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_reserve_past_the_cap(settings, macd_strategy):
    """Eight workers race for a budget that holds three calls: three get it, five are refused,
    and the spend is exactly three estimates (no check-then-act window)."""
    from threading import Barrier, Thread

    from django.db import connection
    from django.utils import timezone

    from trading.tests.llm.data import seed_decisions

    settings.LLM_MODEL_PRICES = PRICES
    settings.LLM_BUDGET_USD_PER_REVIEW = None
    settings.LLM_BUDGET_USD_PER_STRATEGY_PER_DAY = None
    seed_decisions(macd_strategy, ["approve"] * 7)
    reviews = [
        LLMDecisionReview.objects.create(
            decision=decision,
            account_label="paper",
            deadline=timezone.now() + timedelta(seconds=30),
            input_json={},
            deterministic_qty=Decimal(10),
        )
        for decision in TradeDecision.objects.order_by("pk")
    ]
    messages = [{"role": "user", "content": "x" * 300}]
    estimate = cost_usd("test-model", tokens_prompt=108, tokens_completion=300)
    assert estimate == Decimal("0.762")  # (300 / 3 + 8) × 1.5 / 1000 + 300 × 2 / 1000
    settings.LLM_BUDGET_USD_PER_DAY = estimate * 3 + Decimal("0.5")
    barrier = Barrier(len(reviews))
    results: list[bool] = []

    def worker(review: LLMDecisionReview) -> None:
        try:
            barrier.wait()
            decision = budget_reserve(
                review=review,
                strategy_id=macd_strategy.pk,
                model="test-model",
                messages=messages,
                max_tokens=300,
            )
            results.append(decision.allowed)
        finally:
            connection.close()

    threads = [Thread(target=worker, args=(review,)) for review in reviews]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True] * 3
    assert LLMSpendReservation.objects.count() == 3
    assert _spend() == _spend(f"strategy:{macd_strategy.pk}") == estimate * 3
    assert LLMSpendDay.objects.get(scope="all").reviews == 3
