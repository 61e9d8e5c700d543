"""`/trading/status` and `/trading/metrics` match their response schemas with every block filled
in (lanes with state and equity, an emergency stop, TCA rows, decisions, an autonomy run and a
continuity audit): the fuzzing's seeded rows leave most of them empty. Each block is a closed
object (`trading.api_responses`), so a key added without its schema fails here."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from autonomy.models import ResearchRun
from autonomy.services.governance import evidence_continuity_check
from orderfeed.services import order_events_ingest
from orderfeed.tests.conftest import make_order, trade_update
from tests.schema_conformance import response_component, schema_errors
from torghut_site.kafka.messages import RawMessage
from torghut_site.models import (
    ConsumerGroupPartition,
    ConsumerGroupProbe,
    DeadLetterMessage,
    HeartbeatKind,
)
from torghut_site.services import heartbeat_record
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


FEED_GROUP = "torghut-order-feed-v1"


@pytest.fixture
def populated_feed(settings):
    """The order feed with events of two outcomes and a dead letter, a consumer's heartbeat
    holding a partition, and a fresh probe sample of two partitions (one lagging, never
    committed on the other), so `health` is Kafka's view, not null."""
    settings.TRADING_ORDER_FEED_ENABLED = True
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = "127.0.0.1:1"  # never asked: sample is fresh
    settings.TRADING_ORDER_FEED_GROUP_ID = FEED_GROUP
    settings.TRADING_ORDER_FEED_TOPIC = "feed"
    settings.TRADING_ORDER_FEED_PROBE_INTERVAL_SECONDS = 15.0
    settings.TRADING_ORDER_FEED_STALL_SECONDS = 60.0
    settings.TRADING_ORDER_FEED_LAG_ALERT = 50000
    with time_machine.travel(NOW - timedelta(minutes=1), tick=False):
        _, execution = make_order()
        updates = [
            trade_update(execution, "new", status="new", ts="2026-11-02T14:59:00Z"),
            {"order": {"id": "foreign", "status": "new"}, "event": "new"},
        ]
        result = order_events_ingest(
            [
                *(RawMessage("feed", 0, n, b"AAPL", json.dumps(u).encode()) for n, u in
                  enumerate(updates)),
                RawMessage("feed", 0, 2, b"AAPL", b"garbage"),
            ]
        )  # fmt: skip
        # the consumer keeps its dead letters (ingest only returns them)
        (dead,) = result.dead_letters
        DeadLetterMessage.objects.create(
            consumer="orderfeed", topic="feed", partition=0, offset=2, reason=dead.reason
        )
        heartbeat_record(
            kind=HeartbeatKind.ORDERFEED_CONSUMER,
            name="orderfeed-1",
            interval_seconds=3600,
            details={"state": "running", "assigned": ["feed[0]"]},
        )
    seen = NOW - timedelta(seconds=5)
    ConsumerGroupProbe.objects.create(
        group=FEED_GROUP, probed_at=seen, reachable=True, error="", state="stable", members=1
    )
    for partition, committed, end, assigned in ((0, 3, 3, True), (1, None, 4, False)):
        ConsumerGroupPartition.objects.create(
            group=FEED_GROUP,
            topic="feed",
            partition=partition,
            committed=committed,
            end_offset=end,
            lag=end - (committed or 0),
            assigned=assigned,
            probed_at=seen,
            committed_changed_at=seen,
            end_changed_at=seen,
            progress_at=seen,
            unassigned_since=None if assigned else NOW - timedelta(minutes=10),
        )


def test_status_matches_its_schema_with_the_order_feed_filled_in(reader, populated_feed):  # noqa: F811
    with time_machine.travel(NOW, tick=False):
        body = reader.get("/trading/status").json()
    feed = body["order_feed"]
    assert (feed["enabled"], feed["topics"], feed["events_window"]) == (True, ["feed"], 2)
    assert feed["outcomes_window"] == {"applied": 1, "unknown_order": 1}
    assert (feed["unknown_orders_open"], feed["dead_letters_window"]) == (1, 1)
    assert feed["consumers"] == [
        {
            "name": "orderfeed-1",
            "healthy": True,
            "age_seconds": 60.0,
            "state": "running",
            "pid": feed["consumers"][0]["pid"],
            "hostname": feed["consumers"][0]["hostname"],
            "assigned": ["feed[0]"],
        }
    ]
    health = feed["health"]
    assert (health["ok"], health["reasons"], health["lag"]) == (
        False,
        ["no_partition_assigned"],
        4,
    )
    assert [p["committed"] for p in health["partitions"]] == [3, None]
    assert schema_errors(body, "TradingStatus") == []
    assert schema_errors(feed, "OrderFeedStatus") == []
    # closed: the block, its health, a partition and a consumer row; the counts stay open
    for path, component in (
        ((), "OrderFeedStatus"),
        (("health",), "OrderFeedHealth"),
        (("health", "partitions", 0), "OrderFeedPartition"),
        (("consumers", 0), "OrderFeedConsumer"),
    ):
        node = feed
        for key in path:
            node = node[key]
        assert schema_errors({**node, "extra": 1}, component) == [
            ": Additional properties are not allowed ('extra' was unexpected)"
        ], component
    assert schema_errors({**feed, "outcomes_window": {"new_outcome": 2}}, "OrderFeedStatus") == []
    assert schema_errors({**body, "extra": 1}, "TradingStatus") == [
        ": Additional properties are not allowed ('extra' was unexpected)"
    ]


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


def test_the_status_schema_is_closed_and_types_the_order_feed():
    from drf_spectacular.generators import SchemaGenerator

    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    status = schemas["TradingStatus"]
    assert status["additionalProperties"] is False
    assert status["properties"]["order_feed"] == {
        "allOf": [{"$ref": "#/components/schemas/OrderFeedStatus"}],
        "nullable": True,
    }
    assert "order_feed" in status["required"]
    feed = schemas["OrderFeedStatus"]
    assert feed["additionalProperties"] is False
    assert sorted(feed["properties"]) == sorted(feed["required"]) == [
        "consumers", "dead_letters_window", "enabled", "events_window", "health",
        "last_event_at", "outcomes_window", "topics", "unknown_orders_open",
    ]  # fmt: skip
    assert feed["properties"]["outcomes_window"] == {
        "type": "object",
        "additionalProperties": {"type": "integer", "minimum": 1},
        "description": "events in the window, by outcome",
    }
    assert feed["properties"]["health"]["nullable"] is True
    for component in ("OrderFeedHealth", "OrderFeedPartition", "OrderFeedConsumer"):
        assert schemas[component]["additionalProperties"] is False, component
