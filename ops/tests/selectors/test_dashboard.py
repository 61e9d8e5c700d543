"""The dashboard selectors: the admin index at a glance and the chart aggregates, with exact
values over fixed times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from ops.dashboard import (
    Glance,
    LaneGlance,
    MinuteCount,
    ReasonCount,
    StrategyDecisions,
    SymbolFills,
    Tile,
    age_level,
    dashboard_data,
    decisions_by_strategy,
    duration_text,
    equity_by_lane,
    fills_by_symbol,
    glance,
    order_events_per_minute,
    pnl_by_lane,
    rejects_by_reason,
)
from orderfeed.models import OrderEvent
from tests.conftest import paper_lane
from torghut_site.models import ConsumerGroupPartition, ConsumerGroupProbe, ProcessHeartbeat
from trading.models import (
    Execution,
    ExecutionTcaMetric,
    LaneState,
    PositionSnapshot,
    SafetyState,
    Strategy,
    TradeDecision,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 3, 15, 0, 30, tzinfo=UTC)
SINCE = NOW - timedelta(hours=24)
PAPER = paper_lane()


@pytest.fixture(autouse=True)
def dash_settings(settings):
    settings.TRADING_FEATURE_FLAGS_ENABLED = False  # flags = the settings below
    settings.TRADING_ENABLED = True
    settings.TRADING_LIVE_ENABLED = False
    settings.TRADING_KILL_SWITCH_ENABLED = False
    settings.TRADING_EMERGENCY_STOP_ENABLED = True
    settings.TRADING_ORDER_FEED_ENABLED = False
    settings.TRADING_MODE = "paper"
    settings.TRADING_SIGNAL_SOURCE = "replay"
    settings.WHITEPAPER_KAFKA_ENABLED = False
    settings.TRADING_POLL_MS = 5000
    settings.TRADING_RECONCILE_MS = 15000
    settings.CELERY_WORKER_HEARTBEAT_SECONDS = 15
    settings.KAFKA_CONSUMER_HEARTBEAT_SECONDS = 15.0
    settings.TRADING_SIGNAL_STALE_LAG_ALERT_SECONDS = 300
    settings.TRADING_ROLLBACK_SIGNAL_LAG_SECONDS_LIMIT = 600.0
    settings.TRADING_ORDER_FEED_BATCH_SIZE = 2000
    settings.TRADING_LANES = [dict(PAPER)]
    return settings


def beat(kind: str, name: str, seconds_ago: float, **details) -> ProcessHeartbeat:
    seen = NOW - timedelta(seconds=seconds_ago)
    return ProcessHeartbeat.objects.create(
        kind=kind,
        name=name,
        pid=1,
        started_at=seen,
        last_seen_at=seen,
        interval_seconds=15.0,
        expires_at=seen + timedelta(seconds=45),
        details=details,
    )


# ------------------------------------------------------------------ levels and texts


@pytest.mark.parametrize(
    ("age", "level"),
    [(None, "bad"), (0.0, "ok"), (45.0, "ok"), (45.1, "warn"), (150.0, "warn"), (150.1, "bad")],
)
def test_age_level_is_ok_within_three_intervals_and_bad_beyond_ten(age, level):
    assert age_level(age, interval_seconds=15) == level


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-3.0, "0 s"), (4.4, "4 s"), (119.0, "119 s"), (120.0, "2 min"), (7199.0, "119 min"),
     (7200.0, "2 h"), (172799.0, "47 h"), (172800.0, "2 d")],
)  # fmt: skip
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text


# ------------------------------------------------------------------ at a glance


def test_a_healthy_system_is_ok_everywhere_in_four_queries(django_assert_num_queries):
    LaneState.objects.create(
        account_label="paper",
        last_cycle_finished_at=NOW - timedelta(seconds=4),
        last_cycle_status="ok",
        last_reconcile_at=NOW - timedelta(seconds=10),
        signal_lag_seconds=12.0,
        market_open=True,
    )
    beat("celery_worker", "w1", 5)
    beat("celery_beat", "beat", 20)

    with django_assert_num_queries(4):
        result = glance(now=NOW)

    assert result == Glance(
        trading=Tile("trading-enabled", "Trading", "enabled", "ok"),
        mode=Tile("trading-mode", "Mode", "paper", "ok"),
        kill_switch=Tile("kill-switch", "Kill switch", "off", "ok"),
        emergency_stop=Tile("emergency-stop", "Emergency stop", "clear", "ok"),
        lanes=[
            LaneGlance(
                "paper",
                "paper",
                "simulated",
                Tile("lane-paper-cycle", "Last cycle", "ok · 4 s ago", "ok", "", 4.0),
                Tile("lane-paper-reconcile", "Last reconcile", "10 s ago", "ok", "", 10.0),
                Tile("lane-paper-signal-lag", "Signal lag", "12 s", "ok", ""),
            )
        ],
        order_feed=Tile(
            "order-feed", "Order feed", "off", "ok", "broker updates are applied in the cycle"
        ),
        partitions=[],
        heartbeats=[
            Tile("heartbeat-celery-worker", "Celery worker", "1 live · 5 s ago", "ok", "w1", 5.0),
            Tile("heartbeat-celery-beat", "Celery beat", "1 live · 20 s ago", "ok", "beat", 20.0),
        ],
        as_of=NOW,
    )
    assert result.level == "ok"


def test_engaged_controls_failed_cycles_and_silent_processes_are_bad():
    SafetyState.objects.create(
        scope="global",
        kill_switch_engaged=True,
        kill_switch_reason="drill",
        emergency_stop_active=True,
        emergency_stop_reasons=["signal_lag_exceeded:700s", "universe_source_unavailable"],
        emergency_stop_triggered_at=NOW,
    )
    LaneState.objects.create(
        account_label="paper",
        last_cycle_finished_at=NOW - timedelta(seconds=30),
        last_cycle_status="error",
        last_error="RuntimeError: boom",
        last_reconcile_at=NOW - timedelta(seconds=100),
        signal_lag_seconds=400.0,
        no_signal_reason="cursor_ahead",
        market_open=True,
    )
    beat("celery_worker", "w-old", 200)  # silent for 13 periods: past its expiry, dead
    beat("celery_worker", "w-stopped", 2, state="stopped")  # fresh, but it has stopped
    beat("celery_worker", "w-yesterday", 25 * 3600)  # beyond the 24 h lookback
    beat("signal_consumer", "sig", 1000)  # not needed with replay signals: at most warn

    result = glance(now=NOW)

    assert result.kill_switch == Tile(
        "kill-switch", "Kill switch", "ENGAGED", "bad", "manual: drill"
    )
    assert result.emergency_stop == Tile(
        "emergency-stop",
        "Emergency stop",
        "LATCHED",
        "bad",
        "signal_lag_exceeded:700s, universe_source_unavailable",
    )
    assert result.lanes[0].cycle == Tile(
        "lane-paper-cycle", "Last cycle", "error · 30 s ago", "bad", "RuntimeError: boom", 30.0
    )
    assert result.lanes[0].reconcile == Tile(
        "lane-paper-reconcile", "Last reconcile", "100 s ago", "warn", "", 100.0
    )
    assert result.lanes[0].signal_lag == Tile(
        "lane-paper-signal-lag", "Signal lag", "6 min", "warn", "cursor_ahead"
    )
    assert result.heartbeats == [
        Tile(
            "heartbeat-celery-worker",
            "Celery worker",
            "dead · 3 min ago",
            "bad",
            "w-stopped, w-old",
            2.0,
        ),
        Tile("heartbeat-celery-beat", "Celery beat", "no heartbeat in 24 h", "bad"),
        Tile(
            "heartbeat-signal-consumer",
            "TA signal consumer",
            "dead · 16 min ago",
            "warn",
            "sig",
            1000.0,
        ),
    ]
    assert result.level == "bad"


def test_a_process_kind_whose_processes_all_stopped_is_bad():
    beat("celery_worker", "w1", 3, state="stopped")
    beat("celery_beat", "b", 50)  # 50 s > 3 × 15 s: past its expiry, dead (warn)

    worker, beat_tile = glance(now=NOW).heartbeats

    assert worker == Tile(
        "heartbeat-celery-worker", "Celery worker", "stopped · 3 s ago", "bad", "w1", 3.0
    )
    assert beat_tile == Tile(
        "heartbeat-celery-beat", "Celery beat", "dead · 50 s ago", "warn", "b", 50.0
    )


def probe(seconds_ago: float = 5, *, reachable: bool = True, error: str = "") -> None:
    ConsumerGroupProbe.objects.create(
        group="torghut-order-feed-v1",
        probed_at=NOW - timedelta(seconds=seconds_ago),
        reachable=reachable,
        error=error,
        state="stable",
        members=1,
    )


def sample(partition: int, *, committed: int, end: int, assigned: bool = True, **at) -> None:
    seen = NOW - timedelta(seconds=5)
    ConsumerGroupPartition.objects.create(
        group="torghut-order-feed-v1",
        topic="t",
        partition=partition,
        committed=committed,
        end_offset=end,
        lag=end - committed,
        assigned=assigned,
        probed_at=seen,
        committed_changed_at=at.get("progress_at", seen),
        end_changed_at=seen,
        progress_at=at.get("progress_at", seen),
        unassigned_since=None if assigned else at.get("unassigned_since", seen),
    )


@pytest.fixture
def feed_on(settings):
    settings.TRADING_ORDER_FEED_ENABLED = True
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = "127.0.0.1:1"  # never asked: samples are fresh
    settings.TRADING_ORDER_FEED_GROUP_ID = "torghut-order-feed-v1"
    settings.TRADING_ORDER_FEED_PROBE_INTERVAL_SECONDS = 15.0
    settings.TRADING_ORDER_FEED_STALL_SECONDS = 60.0
    settings.TRADING_ORDER_FEED_UNASSIGNED_GRACE_SECONDS = 30.0
    settings.TRADING_ORDER_FEED_LAG_ALERT = 50000
    with time_machine.travel(NOW, tick=False):
        yield settings


def test_order_feed_lag_per_partition_is_kafkas_not_a_consumers_report(feed_on):
    probe()
    sample(0, committed=10, end=15)
    sample(1, committed=0, end=2500)
    sample(2, committed=100, end=30100)
    # a dead consumer's last report ("0 behind") is not what the tiles show
    beat("orderfeed_consumer", "c-dead", 300, state="running", lag={"t[0]": 0})
    beat("orderfeed_consumer", "c1", 1, state="running", lag={})

    result = glance(now=NOW)

    assert result.partitions == [
        Tile("lag-t0", "t[0]", "5 behind", "ok", "committed 10 of 15", 5.0, 5),
        Tile("lag-t1", "t[1]", "2,500 behind", "warn", "committed 0 of 2,500", 5.0, 2500),
        Tile("lag-t2", "t[2]", "30,000 behind", "bad", "committed 100 of 30,100", 5.0, 30000),
    ]
    assert result.order_feed == Tile(
        "order-feed",
        "Order feed",
        "32,505 behind on 3 partition(s)",
        "bad",
        "1 live consumer(s)",
        number=32505,
    )
    assert result.heartbeats[2] == Tile(
        "heartbeat-orderfeed-consumer", "Order-feed consumer", "1 live · 1 s ago", "ok", "c1", 1.0
    )


def test_order_feed_tile_names_each_reason_kafka_gives(feed_on):
    probe()
    sample(0, committed=10, end=10, assigned=False, unassigned_since=NOW - timedelta(seconds=31))
    sample(1, committed=5, end=60005, progress_at=NOW - timedelta(seconds=61))
    beat("orderfeed_consumer", "c-dead", 300, state="running", lag={"t[0]": 0})

    result = glance(now=NOW)

    assert result.order_feed == Tile(
        "order-feed",
        "Order feed",
        "no_partition_assigned, offsets_stalled, lag_above_threshold",
        "bad",
        "0 live consumer(s)",
        number=60000,
    )
    assert [(t.value, t.level, t.detail) for t in result.partitions] == [
        ("0 behind", "bad", "no consumer, committed 10 of 10"),
        ("60,000 behind", "bad", "offsets stalled, committed 5 of 60,005"),
    ]
    # the dead consumer reads dead, not running
    assert result.heartbeats[2].value == "dead · 5 min ago"


def test_order_feed_tile_when_kafka_did_not_answer(feed_on):
    probe(reachable=False, error="Kafka did not answer before the probe's deadline")

    assert glance(now=NOW).order_feed == Tile(
        "order-feed",
        "Order feed",
        "kafka_unreachable",
        "bad",
        "0 live consumer(s); Kafka did not answer before the probe's deadline",
        number=0,
    )


def test_trading_off_live_mode_without_the_flag_and_a_disabled_lane(settings):
    settings.TRADING_ENABLED = False
    settings.TRADING_MODE = "live"
    settings.TRADING_EMERGENCY_STOP_ENABLED = False
    settings.TRADING_LANES = [
        dict(PAPER),
        {**PAPER, "label": "Live A", "mode": "live", "broker": "alpaca", "enabled": False},
    ]

    result = glance(now=NOW)

    assert result.trading == Tile(
        "trading-enabled",
        "Trading",
        "disabled",
        "warn",
        "TRADING_ENABLED is off: no cycle reads signals",
    )
    assert result.mode == Tile(
        "trading-mode", "Mode", "live", "warn", "TRADING_LIVE_ENABLED is off: no live order"
    )
    assert result.emergency_stop == Tile(
        "emergency-stop",
        "Emergency stop",
        "disarmed",
        "warn",
        "TRADING_EMERGENCY_STOP_ENABLED is off: nothing latches automatically",
    )
    # a lane that never ran is only warn while trading is off
    assert result.lanes == [
        LaneGlance(
            "paper",
            "paper",
            "simulated",
            Tile("lane-paper-cycle", "Last cycle", "never", "warn", "no cycle has finished"),
            Tile("lane-paper-reconcile", "Last reconcile", "never", "warn"),
            Tile("lane-paper-signal-lag", "Signal lag", "no signal yet", "warn", ""),
        ),
        LaneGlance(
            "Live A",
            "live",
            "alpaca",
            Tile("lane-live-a-cycle", "Last cycle", "lane disabled", "warn"),
            Tile("lane-live-a-reconcile", "Last reconcile", "lane disabled", "warn"),
            Tile("lane-live-a-signal-lag", "Signal lag", "lane disabled", "warn"),
        ),
    ]


def test_a_lane_that_never_ran_while_trading_is_on_is_bad():
    lane = glance(now=NOW).lanes[0]
    assert (lane.cycle.value, lane.cycle.level) == ("never", "bad")
    assert (lane.reconcile.value, lane.reconcile.level) == ("never", "bad")
    assert lane.level == "bad"


def test_signal_lag_is_ok_while_the_market_is_closed_and_bad_past_the_rollback_limit():
    state = LaneState.objects.create(
        account_label="paper",
        last_cycle_finished_at=NOW,
        last_cycle_status="no_signals",
        last_reconcile_at=NOW,
        signal_lag_seconds=5000.0,
        market_open=False,
    )
    assert glance(now=NOW).lanes[0].signal_lag == Tile(
        "lane-paper-signal-lag", "Signal lag", "83 min", "ok", "market closed"
    )
    state.market_open = True
    state.signal_lag_seconds = 600.0
    state.save()
    assert glance(now=NOW).lanes[0].signal_lag == Tile(
        "lane-paper-signal-lag", "Signal lag", "10 min", "bad", ""
    )


def test_a_no_signal_streak_warns_from_its_alert_threshold_and_is_bad_at_the_latch_limit(
    settings,
):
    settings.TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD = 2
    settings.TRADING_ROLLBACK_SIGNAL_STALENESS_ALERT_STREAK_LIMIT = 4
    settings.TRADING_SIGNAL_STALENESS_ALERT_CRITICAL_REASONS = ["no_signals_in_window"]
    settings.TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS = ["no_signals_in_window"]
    state = LaneState.objects.create(
        account_label="paper",
        last_cycle_finished_at=NOW,
        last_cycle_status="no_signals",
        last_reconcile_at=NOW,
        signal_lag_seconds=30.0,
        market_open=True,
        no_signal_reason="no_signals_in_window",
        no_signal_streak=1,
    )

    def tile() -> Tile:
        return glance(now=NOW).lanes[0].signal_lag

    assert tile() == Tile(
        "lane-paper-signal-lag", "Signal lag", "30 s", "ok", "no_signals_in_window"
    )
    state.no_signal_streak = 2
    state.save()
    assert tile() == Tile(
        "lane-paper-signal-lag", "Signal lag", "no signals for 2 cycles", "warn",
        "no_signals_in_window",
    )  # fmt: skip
    settings.TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD = 3
    assert tile().level == "ok"
    state.no_signal_streak = 4
    state.save()
    assert tile() == Tile(
        "lane-paper-signal-lag", "Signal lag", "no signals for 4 cycles", "bad",
        "no_signals_in_window",
    )  # fmt: skip
    state.market_open = False  # an expected reason while the market is closed
    state.save()
    assert tile().level == "ok"


def test_the_live_flag_on_still_warns_in_live_mode(settings):
    settings.TRADING_MODE = "live"
    settings.TRADING_LIVE_ENABLED = True
    assert glance(now=NOW).mode == Tile(
        "trading-mode", "Mode", "live", "warn", "live orders for lanes with a live approval"
    )


# ------------------------------------------------------------------ charts


def snapshot(label: str, at: datetime, equity: str) -> None:
    PositionSnapshot.objects.create(
        account_label=label, as_of=at, equity=Decimal(equity), cash=Decimal(0), buying_power=0
    )


def test_equity_per_lane_and_minute_and_its_pnl():
    snapshot("paper", NOW - timedelta(hours=25), "1")  # outside the 24 h window
    snapshot("paper", datetime(2026, 3, 3, 13, 0, 30, tzinfo=UTC), "100000")
    snapshot("paper", datetime(2026, 3, 3, 13, 0, 50, tzinfo=UTC), "100010")  # same minute
    snapshot("paper", datetime(2026, 3, 3, 14, 30, 10, tzinfo=UTC), "99990")
    snapshot("live", datetime(2026, 3, 3, 14, 59, 0, tzinfo=UTC), "5000.004")

    equity = equity_by_lane(since=SINCE)

    assert equity == {
        "live": [(datetime(2026, 3, 3, 14, 59, tzinfo=UTC), Decimal("5000.00"))],
        "paper": [
            (datetime(2026, 3, 3, 13, 0, tzinfo=UTC), Decimal("100005.00")),
            (datetime(2026, 3, 3, 14, 30, tzinfo=UTC), Decimal("99990.00")),
        ],
    }
    assert pnl_by_lane(equity) == {
        "live": [(datetime(2026, 3, 3, 14, 59, tzinfo=UTC), Decimal("0.00"))],
        "paper": [
            (datetime(2026, 3, 3, 13, 0, tzinfo=UTC), Decimal("0.00")),
            (datetime(2026, 3, 3, 14, 30, tzinfo=UTC), Decimal("-15.00")),
        ],
    }
    assert equity_by_lane(since=NOW) == {}
    assert pnl_by_lane({}) == {}


def decision(strategy: Strategy, n: int, *, status: str, reason: str = "", hours_ago: float = 1):
    made = TradeDecision.objects.create(
        strategy=strategy,
        account_label="paper",
        symbol="AAPL",
        timeframe="1Min",
        event_ts=NOW,
        action="buy",
        qty=Decimal(1),
        decision_hash=f"{n:064x}",
        client_order_id=f"tg-{n:045x}",
        status=status,
        reject_reason=reason,
    )
    TradeDecision.objects.filter(pk=made.pk).update(created_at=NOW - timedelta(hours=hours_ago))
    return made


def test_decisions_per_strategy_and_rejects_by_reason():
    macd = Strategy.objects.create(name="macd", strategy_type="legacy_macd_rsi")
    tsmom = Strategy.objects.create(name="tsmom", strategy_type="intraday_tsmom")
    Strategy.objects.create(name="idle", strategy_type="legacy_macd_rsi")  # no decision
    decision(macd, 1, status="filled")
    decision(macd, 2, status="rejected", reason="kill_switch_active")
    decision(macd, 3, status="rejected", reason="risk_max_notional")
    decision(tsmom, 4, status="rejected", reason="kill_switch_active", hours_ago=23.9)
    decision(macd, 5, status="rejected", reason="old_reason", hours_ago=24.1)  # outside

    assert decisions_by_strategy(since=SINCE) == [
        StrategyDecisions("macd", 3, 2),
        StrategyDecisions("tsmom", 1, 1),
    ]
    assert rejects_by_reason(since=SINCE) == [
        ReasonCount("kill_switch_active", 2),
        ReasonCount("risk_max_notional", 1),
    ]
    assert decisions_by_strategy(since=SINCE, limit=1) == [StrategyDecisions("macd", 3, 2)]
    assert rejects_by_reason(since=SINCE, limit=1) == [ReasonCount("kill_switch_active", 2)]


def tca(n: int, symbol: str, slippage: str | None, shortfall: str | None, hours_ago: float = 1):
    execution = Execution.objects.create(
        account_label="paper",
        broker="simulated",
        broker_order_id=f"o-{n}",
        client_order_id=f"c-{n}",
        symbol=symbol,
        side="buy",
        order_type="market",
        time_in_force="day",
        submitted_qty=Decimal(1),
        status="filled",
    )
    ExecutionTcaMetric.objects.create(
        execution=execution,
        account_label="paper",
        symbol=symbol,
        side="buy",
        slippage_bps=None if slippage is None else Decimal(slippage),
        shortfall_notional=None if shortfall is None else Decimal(shortfall),
        computed_at=NOW - timedelta(hours=hours_ago),
    )


def test_fills_and_mean_slippage_per_symbol():
    tca(1, "AAPL", "2.5", "0.25")
    tca(2, "AAPL", "1.5", "0.15")
    tca(3, "MSFT", "-3", "-0.3")
    tca(4, "TSLA", None, None)
    tca(5, "AAPL", "100", "9", hours_ago=25)  # outside

    assert fills_by_symbol(since=SINCE) == [
        SymbolFills("AAPL", 2, Decimal("2.00"), Decimal("0.40")),
        SymbolFills("MSFT", 1, Decimal("-3.00"), Decimal("-0.30")),
        SymbolFills("TSLA", 1, None, Decimal("0.00")),
    ]


def event(n: int, at: datetime) -> None:
    OrderEvent.objects.create(
        event_fingerprint=f"{n:064x}",
        source_topic="orders",
        source_partition=0,
        source_offset=n,
        account_label="paper",
        outcome="applied",
        received_at=at,
    )


def test_order_events_per_minute_over_the_last_hour_with_quiet_minutes_at_zero():
    event(1, datetime(2026, 3, 3, 14, 0, 59, tzinfo=UTC))  # before the first minute shown
    event(2, datetime(2026, 3, 3, 14, 1, 0, tzinfo=UTC))
    event(3, datetime(2026, 3, 3, 14, 1, 59, tzinfo=UTC))
    event(4, datetime(2026, 3, 3, 14, 30, 15, tzinfo=UTC))
    event(5, datetime(2026, 3, 3, 15, 0, 29, tzinfo=UTC))

    minutes = order_events_per_minute(now=NOW)

    assert len(minutes) == 60
    assert minutes[0] == MinuteCount(datetime(2026, 3, 3, 14, 1, tzinfo=UTC), 2)
    assert minutes[29] == MinuteCount(datetime(2026, 3, 3, 14, 30, tzinfo=UTC), 1)
    assert minutes[59] == MinuteCount(datetime(2026, 3, 3, 15, 0, tzinfo=UTC), 1)
    assert sum(m.count for m in minutes) == 4
    assert [i for i, m in enumerate(minutes) if m.count] == [0, 29, 59]


def test_dashboard_data_is_five_queries(django_assert_num_queries):
    snapshot("paper", NOW - timedelta(minutes=5), "100")
    with django_assert_num_queries(5):
        data = dashboard_data(now=NOW)
    assert (data.since, data.feed_since) == (SINCE, datetime(2026, 3, 3, 14, 1, tzinfo=UTC))
    assert data.equity == {"paper": [(datetime(2026, 3, 3, 14, 55, tzinfo=UTC), Decimal("100.00"))]}
    assert (data.decisions, data.rejects, data.fills) == ([], [], [])
    assert len(data.feed) == 60
