"""`GET /trading/llm-evaluation` and the `llm` / `llm_evaluation` blocks of `/trading/status`:
one America/New_York day of reviews, aggregated in one query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from trading.models import LLMDecisionReview, Strategy, TradeDecision
from trading.selectors.llm import llm_evaluation

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # 10:00 in New York (EST)


@pytest.fixture
def reader():
    user = get_user_model().objects.create_user("reader", password="x")
    client = APIClient()
    client.force_authenticate(user)
    return client


def _review(n: int, created_at: datetime, **fields: Any) -> LLMDecisionReview:
    strategy, _ = Strategy.objects.get_or_create(
        name="s", defaults={"strategy_type": "legacy_macd_rsi"}
    )
    decision = TradeDecision.objects.create(
        strategy=strategy,
        account_label="paper",
        symbol="AAPL",
        timeframe="1Min",
        event_ts=created_at,
        action="buy",
        qty=Decimal(10),
        decision_hash=f"{n:064x}",
        client_order_id=f"tg-{n:045x}",
        status="planned",
    )
    review = LLMDecisionReview.objects.create(
        decision=decision,
        account_label="paper",
        deadline=created_at + timedelta(seconds=30),
        deterministic_qty=Decimal(10),
        **fields,
    )
    LLMDecisionReview.objects.filter(pk=review.pk).update(created_at=created_at)
    return review


def _quality(score: Any) -> dict[str, Any]:
    return {"calibration_metadata": {"quality_score": score}}


def _seed() -> None:
    done = {"status": "completed"}
    _review(
        1,
        NOW - timedelta(hours=1),
        **done,
        verdict="approve",
        effect="pass",
        confidence=0.9,
        tokens_prompt=100,
        tokens_completion=20,
        risk_flags=["a", "b"],
        response_json=_quality(0.8),
    )
    _review(
        2,
        NOW - timedelta(hours=2),
        **done,
        verdict="veto",
        effect="veto",
        confidence=0.7,
        tokens_prompt=50,
        tokens_completion=10,
        risk_flags=["a"],
        response_json=_quality("high"),
    )
    _review(
        3,
        NOW - timedelta(hours=3),
        **done,
        verdict="error",
        effect="veto",
        error="market_context_stale: 900s old",
        reasons=["market_context_stale"],
        market_context_reasons=["market_context_stale"],
    )
    _review(
        4,
        NOW - timedelta(hours=4),
        **done,
        verdict="adjust",
        effect="shrink",
        confidence=0.8,
        tokens_prompt=10,
        tokens_completion=5,
        risk_flags=["c"],
        response_json=_quality(0.6),
        market_context_reasons=["market_context_low_quality"],
    )
    _review(5, NOW - timedelta(minutes=1))  # pending
    # 23:59 on 2 March in New York: the day before
    _review(
        6,
        datetime(2026, 3, 3, 4, 59, tzinfo=UTC),
        **done,
        verdict="approve",
        effect="pass",
        confidence=0.5,
        tokens_prompt=7,
        tokens_completion=3,
    )
    # 00:00 on 4 March in New York: the day after
    _review(7, datetime(2026, 3, 4, 5, 0, tzinfo=UTC), **done, verdict="veto", effect="veto")


EXPECTED_TODAY = {
    "window": {
        "date": "2026-03-03",
        "start": "2026-03-03T05:00:00+00:00",
        "end": "2026-03-04T05:00:00+00:00",
        "timezone": "America/New_York",
    },
    "total_reviews": 5,
    "pending_reviews": 1,
    "verdict_counts": {
        "approve": 1, "veto": 1, "adjust": 1, "abstain": 0, "escalate": 0, "error": 1,
    },
    "error_rate": 0.25,
    "avg_confidence": 0.8,
    "decision_contribution": {"vetoed": 2, "shrunk": 1, "passed": 1, "shadow": 0},
    "tokens": {"prompt": 160, "completion": 35},
    "top_risk_flags": [
        {"flag": "a", "count": 2}, {"flag": "b", "count": 1}, {"flag": "c", "count": 1},
    ],
    "calibration_quality": {"avg_quality_score": 0.7, "samples": 2},
    "market_context": {"blocked": 1, "shadow": 1},
}  # fmt: skip


def test_the_evaluation_aggregates_todays_new_york_window_in_one_query(
    reader, django_assert_num_queries
):
    _seed()
    with time_machine.travel(NOW, tick=False):
        with django_assert_num_queries(1):
            assert llm_evaluation() == EXPECTED_TODAY
        assert reader.get("/trading/llm-evaluation").json() == EXPECTED_TODAY


def test_a_date_selects_another_day(reader):
    _seed()
    with time_machine.travel(NOW, tick=False):
        body = reader.get("/trading/llm-evaluation", {"date": "2026-03-02"}).json()
    assert body["window"]["start"] == "2026-03-02T05:00:00+00:00"
    assert (body["total_reviews"], body["verdict_counts"]["approve"], body["tokens"]) == (
        1,
        1,
        {"prompt": 7, "completion": 3},
    )
    assert (body["error_rate"], body["avg_confidence"], body["top_risk_flags"]) == (0.0, 0.5, [])


def test_an_empty_day_answers_zeros():
    with time_machine.travel(NOW, tick=False):
        body = llm_evaluation()
    assert (body["total_reviews"], body["error_rate"], body["avg_confidence"]) == (0, 0.0, None)
    assert body["calibration_quality"] == {"avg_quality_score": None, "samples": 0}


@pytest.mark.parametrize(
    ("day", "start", "end"),
    [
        # the day after tomorrow: no review yet, the same empty aggregate as any quiet day
        ("2026-03-05", "2026-03-05T05:00:00+00:00", "2026-03-06T05:00:00+00:00"),
        # the bounds the schema's pattern states
        ("2000-01-01", "2000-01-01T05:00:00+00:00", "2000-01-02T05:00:00+00:00"),
        ("2999-12-31", "2999-12-31T05:00:00+00:00", "3000-01-01T05:00:00+00:00"),
    ],
)
def test_a_day_without_reviews_answers_its_empty_aggregate(reader, day, start, end):
    _seed()
    with time_machine.travel(NOW, tick=False):
        response = reader.get("/trading/llm-evaluation", {"date": day})
    assert response.status_code == 200
    body = response.json()
    assert body["window"] == {
        "date": day,
        "start": start,
        "end": end,
        "timezone": "America/New_York",
    }
    assert (body["total_reviews"], body["pending_reviews"], body["error_rate"]) == (0, 0, 0.0)
    assert (body["avg_confidence"], body["top_risk_flags"], body["tokens"]) == (
        None,
        [],
        {"prompt": 0, "completion": 0},
    )


WRONG_FORMAT = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-13-01", WRONG_FORMAT),
        ("2026-02-30", WRONG_FORMAT),  # the pattern matches, the calendar (`format: date`) not
        ("2026-00-10", WRONG_FORMAT),
        ("2026-03-32", WRONG_FORMAT),
        ("03/03/2026", WRONG_FORMAT),
        ("1999-12-31", "must be between 2000-01-01 and 2999-12-31"),
        ("3000-01-01", "must be between 2000-01-01 and 2999-12-31"),
        ("0001-01-01", "must be between 2000-01-01 and 2999-12-31"),
    ],
)
def test_a_bad_date_is_refused_in_the_error_format(reader, value, message):
    with time_machine.travel(NOW, tick=False):
        response = reader.get("/trading/llm-evaluation", {"date": value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("invalid_request", {"date": [message]})


def test_the_evaluation_needs_authentication():
    response = APIClient().get("/trading/llm-evaluation")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_the_evaluation_is_in_the_api_schema(reader):
    schema = reader.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/trading/llm-evaluation"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["date"]
    # the bounds the server keeps are the ones the schema states (every other day is answered)
    assert operation["parameters"][0]["schema"] == {
        "type": "string",
        "format": "date",
        "pattern": "^2[0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
    }


def test_status_carries_the_llm_block_and_todays_evaluation(reader, settings):
    settings.TRADING_MARKET_CONTEXT_URL = "http://jangar.test/api/torghut/market-context"
    settings.TRADING_MARKET_CONTEXT_FAIL_MODE = "fail_closed"
    settings.LLM_FAIL_MODE_ENFORCEMENT = "configured"
    settings.LLM_FAIL_MODE = "pass_through"
    settings.LLM_FAIL_OPEN_LIVE_APPROVED = False
    settings.LLM_ROLLOUT_STAGE = "stage1"
    _seed()
    with time_machine.travel(NOW, tick=False):
        body = reader.get("/trading/status").json()
    assert body["llm_evaluation"] == EXPECTED_TODAY
    llm = body["llm"]
    assert llm["market_context"] == {
        "configured": True,
        "required": False,
        "fail_mode": "fail_closed",
        "min_quality": 0.4,
        "max_staleness_seconds": 300,
    }
    assert llm["circuit"] == {"open": False, "open_until": None, "recent_errors": 0}
    resolution = llm["policy_resolution"]
    assert (
        resolution["paper"]["fail_mode_effective"],
        resolution["live"]["fail_mode_effective"],
    ) == (
        "pass_through",
        "veto",
    )
    assert resolution["paper"]["shadow_reasons"] == ["rollout_stage1"]
    assert (llm["rollout_stage"], llm["dspy"]["runtime_mode"]) == ("stage1", "disabled")
    assert {"enabled", "kill_switch", "lanes", "feature_flags"} <= set(body)
