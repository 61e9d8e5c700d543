"""The trade-updates stream watchdog end to end: the bridge against the websocket stand-in, the
trade cycle and the gap fill against the Alpaca REST stand-in, real Postgres and Kafka.

A silent or disconnected stream while an order is open and the market is open refuses new
risk-increasing orders (`trade_updates_stream_unhealthy`, nothing reaches the broker), lets a
position-reducing sell go, and the gap fill applies what REST says; once the stream talks again
the next buy goes. The bridge reopens a silent stream only while orders are open, and backs off
at least the rate-limit floor after every refusal for too many connections."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from prometheus_client import REGISTRY

from orderfeed.bridge import TradeUpdatesBridge
from orderfeed.tests.conftest import make_decision
from orderfeed.tests.test_bridge import (  # noqa: F401  (fixtures)
    KEY,
    SECRET,
    bridge_settings,
    lane,
    stream,
    update,
    wait_until,
)
from tests.conftest import use_replay_trading
from tests.servers.alpaca_server import AlpacaServer
from tests.servers.alpaca_stream_server import AlpacaStreamServer
from trading.brokers.alpaca import AlpacaBroker
from trading.brokers.base import OrderRequest
from trading.lanes import lane_config
from trading.models import (
    Execution,
    LaneState,
    Strategy,
    TradeCursor,
    TradeDecision,
    TradeStreamState,
)
from trading.selectors.trade_stream import trade_stream_health
from trading.services.cycle import CycleResult, trading_cycle_run
from trading.services.execution import execution_record
from trading.services.gap_fill import trade_stream_gap_fill
from trading.tests.cycle.conftest import REPLAY_START, write_signals

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

MAX_SILENCE = 3.0
UNHEALTHY = "trade_updates_stream_unhealthy"


@dataclass
class World:
    rest: AlpacaServer
    stream: AlpacaStreamServer
    settings: Any


@pytest.fixture
def world(bridge_settings, tmp_path) -> Iterator[World]:  # noqa: F811
    """An Alpaca lane `alp` on both stand-ins holding 10 AAPL; signals: buy AAPL (14:31), sell
    AAPL (14:32, reduces the position), buy MSFT (14:33)."""
    signals = write_signals(
        tmp_path / "signals.csv",
        [
            ("2026-03-03T14:31:00Z", "AAPL", 1, "100.00", "1.2", "0.5", "20"),
            ("2026-03-03T14:32:00Z", "AAPL", 2, "101.00", "-0.2", "0.1", "75"),
            ("2026-03-03T14:33:00Z", "MSFT", 3, "50.00", "0.8", "0.1", "30"),
        ],
    )
    settings = use_replay_trading(bridge_settings, signals)
    rest = AlpacaServer(key=KEY, secret=SECRET)
    rest.start()
    ws = AlpacaStreamServer(key=KEY, secret=SECRET).start()
    settings.TRADING_LANES = [{**lane("alp", "alpaca"), "base_url": rest.url}]
    settings.TRADING_ORDER_FEED_ENABLED = True
    settings.TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS = MAX_SILENCE
    settings.APCA_HTTP_TIMEOUT_SECONDS = 2.0
    rest.positions = [
        {
            "symbol": "AAPL",
            "qty": "10",
            "side": "long",
            "avg_entry_price": "100",
            "market_value": "1000",
        }
    ]
    TradeCursor.objects.create(
        source="replay", account_label="alp", state={"anchor": REPLAY_START.isoformat()}
    )
    LaneState.objects.create(account_label="alp", market_open=True)  # the stand-in's clock says so
    Strategy.objects.create(
        name="macd",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        base_timeframe="1Min",
        max_notional_per_trade=Decimal(1000),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
    )
    held = make_decision(account_label="alp", symbol="AAPL", n=98, qty="10", status="filled")
    TradeDecision.objects.filter(pk=held.pk).update(strategy=Strategy.objects.get(name="macd"))
    Execution.objects.create(
        decision=held,
        account_label="alp",
        broker="alpaca",
        broker_order_id="held-aapl",
        client_order_id=held.client_order_id,
        symbol="AAPL",
        side="buy",
        order_type="market",
        time_in_force="day",
        submitted_qty=Decimal(10),
        filled_qty=Decimal(10),
        avg_fill_price=Decimal(100),
        status="filled",
    )
    cache.clear()
    yield World(rest, ws, settings)
    ws.stop()
    rest.stop()


class Running:
    """A bridge in its own thread, stopped on exit."""

    def __init__(self, bridge: TradeUpdatesBridge) -> None:
        self.bridge = bridge
        self.thread = threading.Thread(target=bridge.run)

    def __enter__(self) -> TradeUpdatesBridge:
        self.thread.start()
        return self.bridge

    def __exit__(self, *exc: object) -> None:
        self.bridge.stop()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive()


class Talking:
    """The stream delivers an update every 0.3 s while in the block (a lively account)."""

    def __init__(self, server: AlpacaStreamServer) -> None:
        self.server = server
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._talk)

    def _talk(self) -> None:
        n = 0
        while not self.done.wait(0.3):
            n += 1
            self.server.push(update(n % 60, "AAPL"))

    def __enter__(self) -> None:
        self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=5)


def bridge_for(server: AlpacaStreamServer, reconciled: list[str]) -> TradeUpdatesBridge:
    return TradeUpdatesBridge.for_lane("alp", stream_url=server.url, reconcile=reconciled.append)


def open_order(rest: AlpacaServer) -> Execution:
    """A buy of 5 NVDA torghut sent, accepted at the broker and not filled yet."""
    decision = make_decision(account_label="alp", symbol="NVDA", n=99, qty="5", price="200")
    broker = AlpacaBroker.from_settings(
        account_label="alp", api_key=KEY, secret_key=SECRET, base_url=rest.url, mode="paper"
    )
    order = broker.submit_order(
        OrderRequest(
            symbol="NVDA", side="buy", qty=Decimal(5), client_order_id=decision.client_order_id
        )
    )
    return execution_record(decision=decision, order=order, broker="alpaca", adopted=False)


def state() -> str:
    return trade_stream_health(lane=lane_config("alp"), now=timezone.now()).state


def connected() -> bool:
    return TradeStreamState.objects.filter(account_label="alp", connected=True).exists()


def run(seconds: int) -> CycleResult:
    return trading_cycle_run(account_label="alp", now=REPLAY_START + timedelta(seconds=seconds))


def gap_gauge() -> float:
    value = REGISTRY.get_sample_value(
        "torghut_trading_trade_updates_gap_seconds", {"account": "alp"}
    )
    assert value is not None
    return value


def stream_rejects() -> float:
    value = REGISTRY.get_sample_value(
        "torghut_trading_decision_rejects_total", {"reason": UNHEALTHY}
    )
    return value or 0.0


def assert_refused_then_reduce_goes(world: World, expected_state: str) -> None:
    """The buy is refused with nothing at the broker; the sell reducing AAPL goes."""
    rejects = stream_rejects()
    refused = run(30)
    assert (refused.trade_updates_stream, refused.rejected, refused.submitted) == (
        expected_state,
        1,
        0,
    )
    buy = TradeDecision.objects.get(account_label="alp", symbol="AAPL", action="buy", signal_seq=1)
    assert (buy.status, buy.reject_reason) == ("rejected", UNHEALTHY)
    assert world.rest.posts() == 1  # the NVDA order only
    assert stream_rejects() - rejects == 1
    summary = LaneState.objects.get(account_label="alp").last_cycle_summary
    assert summary["trade_updates_stream"] == expected_state
    assert gap_gauge() > 0

    reduced = run(90)
    assert (reduced.trade_updates_stream, reduced.submitted) == (expected_state, 1)
    sell = [o for o in world.rest.orders.values() if o["side"] == "sell"]
    assert [(o["symbol"], o["qty"]) for o in sell] == [("AAPL", "9.0")]
    assert world.rest.posts() == 2


def assert_gap_filled(world: World, execution: Execution, expected_state: str) -> None:
    result = trade_stream_gap_fill(account_label="alp")
    assert (result.status, result.stream, result.applied, result.unknown_orders) == (
        "filled",
        expected_state,
        1,
        0,
    )
    execution.refresh_from_db()
    assert (execution.status, execution.filled_qty, execution.avg_fill_price) == (
        "filled",
        Decimal(5),
        Decimal("200.10"),
    )
    assert execution.decision is not None and execution.decision.status == "filled"
    assert gap_gauge() > 0


def assert_next_buy_goes(world: World) -> None:
    result = run(150)
    assert (result.trade_updates_stream, result.submitted, result.rejected) == ("healthy", 1, 0)
    assert world.rest.posts() == 3
    assert gap_gauge() == 0.0


def test_silent_stream_refuses_new_risk_gap_fills_and_recovers(world):
    reconciled: list[str] = []
    bridge = bridge_for(world.stream, reconciled)
    bridge.max_silence_seconds = 3600.0  # its own reopen is tested below; here the stream stays
    with Running(bridge):
        wait_until(connected)
        execution = open_order(world.rest)
        world.rest.fill(execution.broker_order_id, "5", "200.10")  # the stream says nothing
        wait_until(lambda: state() == "silent", timeout=MAX_SILENCE + 3)

        assert_refused_then_reduce_goes(world, "silent")
        assert_gap_filled(world, execution, "silent")

        with Talking(world.stream):  # the stream talks again
            wait_until(lambda: state() == "healthy")
            assert_next_buy_goes(world)
    assert reconciled == []  # one connection all along


def test_disconnected_stream_refuses_new_risk_gap_fills_and_recovers(world):
    reconciled: list[str] = []
    bridge = bridge_for(world.stream, reconciled)
    bridge.rate_limit_backoff_seconds = 0.2
    with Running(bridge):
        wait_until(connected)
        execution = open_order(world.rest)
        world.rest.fill(execution.broker_order_id, "5", "200.10")
        world.stream.refuse(1000)  # every attempt refused until the test lets it in
        assert world.stream.drop_connections() == 1
        wait_until(lambda: not connected())

        assert_refused_then_reduce_goes(world, "disconnected")
        assert_gap_filled(world, execution, "disconnected")

        world.stream.refuse(0)
        wait_until(connected)
        with Talking(world.stream):
            wait_until(lambda: state() == "healthy")
            assert_next_buy_goes(world)
    assert reconciled == ["alp"]  # after the reconnection
    assert bridge.stats.rate_limited >= 1


def test_silent_stream_is_reopened_only_while_orders_are_open(world, caplog):
    world.settings.TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS = 1.0
    reconciled: list[str] = []
    bridge = bridge_for(world.stream, reconciled)
    assert bridge.max_silence_seconds == 1.0
    with caplog.at_level(logging.DEBUG, logger="orderfeed.bridge"), Running(bridge):
        wait_until(connected)
        time.sleep(2.5)  # silent, but no order is open: nothing to miss
        assert (world.stream.connections, bridge.stats.silence_reconnects) == (1, 0)

        open_order(world.rest)
        wait_until(lambda: world.stream.connections >= 3, timeout=20)  # slow under a loaded CI
    times = world.stream.attempt_times
    assert len(times) == world.stream.connections >= 3
    assert bridge.stats.silence_reconnects >= 2
    # every reopen waited for the max silence first: no burst of connections
    assert all(b - a >= 1.0 for a, b in zip(times, times[1:], strict=False))
    warnings = [
        r for r in caplog.records if r.getMessage().startswith("trade-updates stream silent")
    ]
    assert [r.levelname for r in warnings][:1] == ["WARNING"]
    assert all(r.levelname == "DEBUG" for r in warnings[1:])  # logged once per silence
    assert reconciled[:2] == ["alp", "alp"]  # each reopen is a reconnection: reconciled


@pytest.mark.parametrize("how", ["http", "frame"])
def test_refusals_for_too_many_connections_never_burst(bridge_settings, stream, how):  # noqa: F811
    bridge_settings.TRADING_LANES = [lane("alp", "alpaca")]
    refusals, floor = 4, 0.3
    stream.refuse(refusals, how)
    bridge = bridge_for(stream, [])
    assert bridge.rate_limit_backoff_seconds == 60.0  # the default floor
    bridge.rate_limit_backoff_seconds = floor
    with Running(bridge):
        wait_until(lambda: bridge.stats.connections == 1, timeout=10)
    times = stream.attempt_times
    assert len(times) == refusals + 1 == bridge.stats.attempts
    assert stream.refused == bridge.stats.rate_limited == refusals
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(gap >= floor for gap in gaps), gaps
    waits = list(bridge.stats.backoff_seconds)
    assert len(waits) == refusals
    for i, wait in enumerate(waits):
        assert floor + 0.05 <= wait <= floor + min(0.4, 0.05 * 2**i)
    assert "connection limit exceeded" in bridge.stats.last_error.lower() or how == "http"
