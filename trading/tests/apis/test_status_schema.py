"""`/trading/status` and `/trading/metrics` match their response schemas with every block filled
in (lanes with state and equity, an emergency stop, TCA rows, decisions, an autonomy run and a
continuity audit): the fuzzing's seeded rows leave most of them empty. Each block is a closed
object (`trading.api_responses`), so a key added without its schema fails here."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from autonomy.models import ResearchRun
from autonomy.services.governance import evidence_continuity_check
from tests.schema_conformance import response_component, schema_errors
from trading.models import (
    LaneState,
    SafetyState,
    Strategy,
    TradeDecision,
)
from trading.tests.apis.test_status_contract import NOW, reader, three_lanes  # noqa: F401
from trading.tests.factories import filled_buy

pytestmark = pytest.mark.django_db


@pytest.fixture
def filled_in(three_lanes):  # noqa: F811 - the fixture imported above
    LaneState.objects.filter(account_label="paper").update(
        last_cycle_summary={"decisions": 2, "orders": 1},
        last_equity=Decimal("1000.50"),
        equity_high_water_mark=Decimal("1100"),
        session_start_equity=Decimal("1050"),
        session_day=NOW.date(),
    )
    SafetyState.objects.update_or_create(
        scope="global",
        defaults={
            "emergency_stop_active": True,
            "emergency_stop_reasons": ["drawdown"],
            "emergency_stop_triggered_at": NOW - timedelta(minutes=5),
        },
    )
    strategy = Strategy.objects.create(name="schema", strategy_type="legacy_macd_rsi")
    decision = TradeDecision.objects.create(
        strategy=strategy,
        account_label="paper",
        symbol="AAPL",
        timeframe="1Min",
        event_ts=NOW - timedelta(minutes=1),
        action="buy",
        qty=Decimal("2"),
        decision_hash="a" * 64,
        client_order_id="tg-" + "a" * 45,
        status="planned",
    )
    TradeDecision.objects.filter(pk=decision.pk).update(created_at=NOW - timedelta(minutes=1))
    filled_buy(
        decision,
        submitted_at=NOW - timedelta(minutes=1),
        computed_at=NOW - timedelta(minutes=1),
        shortfall_notional=Decimal("0.2"),
    )
    ResearchRun.objects.create(
        run_id="1" * 24, status="passed", recommended_mode="paper", gate_report={"allowed": True}
    )
    with time_machine.travel(NOW, tick=False):
        evidence_continuity_check(run_limit=5, requested_by="schema")


def test_status_matches_its_schema_with_every_block_filled_in(reader, filled_in):  # noqa: F811
    with time_machine.travel(NOW, tick=False):
        body = reader.get("/trading/status").json()
    assert body["rollback"]["emergency_stop_reasons"] == ["drawdown"]
    assert body["tca"]["order_count"] == 1
    assert body["decisions_24h"] == {"planned": 1}
    assert body["autonomy"]["last_run"]["gates_allowed"] is True
    assert body["evidence_continuity"]["failed_runs"] == [
        {"run_id": "1" * 24, "missing": ["research_candidates"]}
    ]
    assert body["lanes"][0]["equity"]["last_equity"] == 1000.5
    assert response_component("/trading/status") == "TradingStatus"
    assert schema_errors(body, "TradingStatus") == []
    # every block is closed: a key nobody named fails
    blocks = {
        "signal_continuity": "SignalContinuity",
        "kill_switch": "KillSwitchStatus",
        "rollback": "Rollback",
        "llm": "LlmStatus",
        "llm_evaluation": "LlmEvaluation",
        "tca": "StatusTca",
        "decisions_24h": "DecisionCounts",
        "autonomy": "AutonomyBrief",
        "evidence_continuity": "ContinuityBrief",
        "control_plane_contract": "ControlPlaneContract",
    }
    for block, component in blocks.items():
        assert schema_errors(body[block], component) == [], block
        assert schema_errors({**body[block], "extra": 1}, component) == [
            ": Additional properties are not allowed ('extra' was unexpected)"
        ], block
    flags = body["feature_flags"]
    assert flags["TRADING_ENABLED"] == {"value": True, "source": flags["TRADING_ENABLED"]["source"]}
    flags["TRADING_ENABLED"] = {**flags["TRADING_ENABLED"], "source": "guess"}
    assert schema_errors(body, "TradingStatus") == [
        "feature_flags/TRADING_ENABLED/source: 'guess' is not one of "
        "['env', 'flipt', 'last_known', 'env_fallback', 'disabled']"
    ]
    lane = body["lanes"][0]
    assert schema_errors({**lane, "extra": 1}, "StatusLane") != []
    assert schema_errors({**lane["equity"], "extra": 1}, "LaneEquity") != []


def test_metrics_match_their_schema(reader, filled_in):  # noqa: F811
    with time_machine.travel(NOW, tick=False):
        body = reader.get("/trading/metrics").json()
    assert body["tca"]["by_symbol"] == [
        {"symbol": "AAPL", "order_count": 1, "avg_slippage_bps": 5.25}
    ]
    assert body["lanes"]["paper"] == {"decisions": 2, "orders": 1}
    assert response_component("/trading/metrics") == "TradingMetrics"
    assert schema_errors(body, "TradingMetrics") == []
    assert schema_errors({**body, "extra": 1}, "TradingMetrics") == [
        ": Additional properties are not allowed ('extra' was unexpected)"
    ]
    # the counters' names are open, their values are numbers
    assert schema_errors({**body, "metrics": {"new_total": "x"}}, "TradingMetrics") == [
        "metrics/new_total: 'x' is not of type 'number'"
    ]


def test_the_status_schema_names_the_blocks_lent_by_the_apps_above():
    from drf_spectacular.generators import SchemaGenerator

    spec = SchemaGenerator().get_schema(request=None, public=True)
    status = spec["components"]["schemas"]["TradingStatus"]
    assert status["properties"]["autonomy"]["allOf"] == [
        {"$ref": "#/components/schemas/AutonomyBrief"}
    ]
    assert status["properties"]["evidence_continuity"]["nullable"] is True
    assert {"autonomy", "evidence_continuity"} <= set(status["required"])
    assert "additionalProperties" not in status  # order_feed: see its doc
