"""An answer with a number the decision's snapshot does not support, end to end through the review
task and the OpenAI-compatible test server: the review row records the reasons and the raw
answer, and the fail mode decides (a veto, or the deterministic order unchanged): no invented
number reaches an order. The AAPL buy in these tests is 10 shares at a signal price of 100.00."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from dspy.utils import DummyLM
from prometheus_client import REGISTRY

from tests.conftest import manage
from trading.brokers.simulated import SimulatedBroker
from trading.models import Execution, LLMDecisionReview, TradeCursor, TradeDecision
from trading.services.cycle import lane_reviews_continue, trading_cycle_run
from trading.services.reviews import review_run
from trading.tests.cycle.conftest import REPLAY_START
from trading.tests.llm.answers import dspy_fields, legacy_json

pytestmark = pytest.mark.django_db

P = "llm_number_unsupported:"


def _rejections(reason: str) -> float:
    labels = {"reason": reason}
    return REGISTRY.get_sample_value("torghut_trading_llm_evidence_rejections_total", labels) or 0.0


def _pending(django_capture_on_commit_callbacks) -> tuple[TradeDecision, LLMDecisionReview]:
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    with django_capture_on_commit_callbacks(execute=False):
        result = trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=30))
    assert result.pending_review == 1
    review = LLMDecisionReview.objects.get()
    assert (review.input_json["market"]["price"], review.deterministic_qty) == (
        "100.00",
        Decimal(10),
    )
    return review.decision, review


def _no_order() -> None:
    assert Execution.objects.count() == 0
    assert SimulatedBroker("paper").list_orders(status="all") == []


@pytest.fixture
def adjusting(replay_settings, macd_strategy, llm_settings):
    llm_settings.LLM_ADJUSTMENT_ALLOWED = True
    llm_settings.LLM_ADJUSTMENT_APPROVED = True
    return llm_settings


def test_an_invented_limit_price_is_rejected_recorded_and_sends_nothing(
    adjusting, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending(django_capture_on_commit_callbacks)
    before = [_rejections(r) for r in ("limit_price_outside_band", "limit_price_wrong_side")]
    answer = legacy_json("adjust", adjusted_qty="5", adjusted_order_type="limit", limit_price=120.0)
    llm_server.queue(answer)
    assert review_run(review_id=review.pk).effect == "veto"
    review.refresh_from_db()
    reasons = [P + "limit_price_outside_band", P + "limit_price_wrong_side"]
    assert (review.verdict, review.effect, review.reasons, review.final_qty) == (
        "error",
        "veto",
        reasons,
        Decimal(0),
    )
    assert review.error == "evidence_mismatch: " + ",".join(reasons)
    assert (review.adjusted_qty, review.adjusted_order_type, review.limit_price) == (None, "", None)
    assert review.response_json is not None
    assert (review.response_json["limit_price"], review.response_json["adjusted_qty"]) == (
        120.0,
        "5",
    )
    assert review.config_json["evidence_price_band_bps"] == "100"
    after = [_rejections(r) for r in ("limit_price_outside_band", "limit_price_wrong_side")]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1.0, 1.0]

    assert lane_reviews_continue(account_label="paper") == {"rejected": 1}
    decision.refresh_from_db()
    assert (decision.status, decision.reject_reason) == ("rejected", reasons[0])
    assert decision.risk_reasons == reasons
    _no_order()


def test_pass_through_sends_the_deterministic_order_never_the_invented_quantity(
    adjusting, llm_server, django_capture_on_commit_callbacks
):
    adjusting.LLM_FAIL_MODE = "pass_through"
    adjusting.LLM_FAIL_MODE_ENFORCEMENT = "configured"
    decision, review = _pending(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("adjust", adjusted_qty="30", qty_multiplier="3"))
    assert review_run(review_id=review.pk).effect == "pass"
    review.refresh_from_db()
    assert (review.verdict, review.final_qty, review.adjusted_qty, review.reasons) == (
        "error",
        Decimal(10),
        None,
        [
            P + "qty_multiplier_above_one_pass_through",
            P + "adjusted_qty_above_deterministic_pass_through",
        ],
    )
    assert lane_reviews_continue(account_label="paper") == {"submitted": 1}
    (order,) = SimulatedBroker("paper").list_orders(status="all")
    assert (Execution.objects.get().submitted_qty, order.qty, order.order_type) == (
        Decimal(10),
        Decimal(10),
        "market",
    )


def test_a_veto_with_an_invented_number_stays_a_veto_under_pass_through(
    adjusting, llm_server, django_capture_on_commit_callbacks
):
    adjusting.LLM_FAIL_MODE = "pass_through"
    adjusting.LLM_FAIL_MODE_ENFORCEMENT = "configured"
    decision, review = _pending(django_capture_on_commit_callbacks)
    llm_server.queue(legacy_json("veto", stop_price="50"))
    assert review_run(review_id=review.pk).effect == "veto"
    review.refresh_from_db()
    assert (review.verdict, review.reasons) == ("error", [P + "stop_price_outside_band"])
    assert lane_reviews_continue(account_label="paper") == {"rejected": 1}
    _no_order()


@pytest.mark.parametrize(
    ("band_bps", "effect", "continued"),
    [("100", "shrink", {"submitted": 1}), ("50", "veto", {"rejected": 1})],
)
def test_llm_evidence_price_band_bps_decides_whether_a_price_is_supported(
    adjusting, llm_server, django_capture_on_commit_callbacks, band_bps, effect, continued
):
    adjusting.LLM_EVIDENCE_PRICE_BAND_BPS = Decimal(band_bps)
    decision, review = _pending(django_capture_on_commit_callbacks)
    # a passive buy limit 0.8 % under the signal price: inside a 1 % band, outside a 0.5 % one
    llm_server.queue(
        legacy_json("adjust", adjusted_qty="8", adjusted_order_type="limit", limit_price="99.20")
    )
    assert review_run(review_id=review.pk).effect == effect
    review.refresh_from_db()
    assert review.config_json["evidence_price_band_bps"] == band_bps
    assert lane_reviews_continue(account_label="paper") == continued
    if effect == "shrink":
        (order,) = SimulatedBroker("paper").list_orders(status="all")
        assert (order.qty, order.order_type, order.limit_price) == (
            Decimal(8),
            "limit",
            Decimal("99.20"),
        )
        assert review.reasons == ["llm_adjust"]
    else:
        assert review.reasons == [P + "limit_price_outside_band"]
        _no_order()


@pytest.fixture
def active(promoted, llm_settings, replay_settings, macd_strategy):
    llm_settings.LLM_DSPY_RUNTIME_MODE = "active"
    llm_settings.LLM_DSPY_ARTIFACT_HASH = promoted
    return promoted


def test_the_dspy_program_s_invented_price_is_rejected_too(
    active, llm_server, django_capture_on_commit_callbacks
):
    decision, review = _pending(django_capture_on_commit_callbacks)
    lm = DummyLM([dspy_fields("approve", limit_price="130")])
    review_run(review_id=review.pk, dspy_lm=lm)
    review.refresh_from_db()
    reasons = [P + "limit_price_outside_band", P + "limit_price_wrong_side"]
    assert (review.runtime, review.verdict, review.effect, review.reasons) == (
        "dspy_active",
        "error",
        "veto",
        reasons,
    )
    assert review.error == "evidence_mismatch: " + ",".join(reasons)
    assert review.response_json is not None
    assert review.response_json["dspy"]["output"]["limitPrice"] == "130"
    assert llm_server.completions() == []  # rejected, not retried through the legacy call
    assert lane_reviews_continue(account_label="paper") == {"rejected": 1}
    _no_order()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "- LLM_EVIDENCE_PRICE_BAND_BPS=0 must be > 0 and <= 5000"),
        ("5001", "- LLM_EVIDENCE_PRICE_BAND_BPS=5001 must be > 0 and <= 5000"),
    ],
)
def test_a_bad_price_band_stops_startup_naming_it(value, problem):
    result = manage("check", env={"LLM_EVIDENCE_PRICE_BAND_BPS": value})
    assert result.returncode != 0
    problems = [
        line.strip() for line in result.stderr.splitlines() if line.strip().startswith("- ")
    ]
    assert problems == [problem]
