"""The trade-updates stream watchdog on the trading side: the health rule, the risk gate's
refusal, the health selector on real rows, the bridge's writes, the gap fill against the
Alpaca stand-in (real HTTP), the broker port's `list_orders_after`, the schedule, the setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from tests.conftest import manage, paper_lane
from tests.servers.alpaca_server import AlpacaServer
from torghut_site.schedule import beat_schedule
from trading.brokers.alpaca import AlpacaBroker
from trading.brokers.base import OrderRequest
from trading.brokers.simulated import SimulatedBroker
from trading.gates import StreamHealth, gate_risk, stream_health_evaluate
from trading.lanes import lane_config
from trading.models import Execution, LaneState, Strategy, TradeDecision, TradeStreamState
from trading.selectors.trade_stream import trade_stream_health, trade_stream_watch_needed
from trading.selectors.trading import trading_health
from trading.services.execution import execution_record
from trading.services.gap_fill import orders_since, trade_stream_gap_fill
from trading.services.trade_stream import (
    trade_stream_connected,
    trade_stream_disconnected,
    trade_stream_touch,
)
from trading.tasks import trade_stream_gap_fill_run
from trading.tests.core.test_gates import cand, ctx

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def health(**overrides) -> StreamHealth:
    values: dict = dict(
        open_orders=True,
        market_open=True,
        connected=True,
        last_message_at=NOW - timedelta(seconds=61),
        since=None,
        now=NOW,
        max_silence_seconds=60.0,
    )
    values.update(overrides)
    return stream_health_evaluate(**values)


# -- the rule ---------------------------------------------------------------------------------------
def test_silent_or_disconnected_with_open_orders_in_session_is_unhealthy():
    assert health() == StreamHealth("silent", 61.0)
    assert health(connected=False) == StreamHealth("disconnected", 61.0)
    assert health(last_message_at=NOW - timedelta(seconds=60)) == StreamHealth("healthy")
    # never a message: the oldest open order's time stands in
    assert health(last_message_at=None, since=NOW - timedelta(seconds=90)) == StreamHealth(
        "silent", 90.0
    )
    assert health(connected=False, last_message_at=None, since=None) == StreamHealth(
        "disconnected", 0.0
    )


@pytest.mark.parametrize(
    ("open_orders", "market_open"), [(False, True), (True, False), (True, None), (False, False)]
)
def test_no_open_orders_or_market_closed_is_healthy_regardless_of_silence(open_orders, market_open):
    for connected in (True, False):
        verdict = health(
            open_orders=open_orders,
            market_open=market_open,
            connected=connected,
            last_message_at=NOW - timedelta(hours=5),
        )
        assert verdict == StreamHealth("healthy")
        assert verdict.healthy is True


def test_risk_gate_refuses_increasing_orders_while_unhealthy_and_lets_reductions_go():
    unhealthy = ctx(
        trade_stream=StreamHealth("silent", 75.5),
        positions={"AAPL": Decimal(10)},
        strategy_positions={"s": {"AAPL": Decimal(10)}},
    )
    buy = cand(qty=Decimal(5))
    verdict = gate_risk(buy, unhealthy)
    assert (verdict.passed, verdict.reasons) == (False, ("trade_updates_stream_unhealthy",))
    assert verdict.details == {
        "notional": Decimal(500),
        "trade_stream": "silent",
        "trade_stream_gap_seconds": 75.5,
    }
    sell = cand(side="sell", qty=Decimal(5))
    assert gate_risk(sell, unhealthy).passed is True
    assert gate_risk(buy, ctx(trade_stream=StreamHealth("healthy"))).passed is True
    assert gate_risk(buy, ctx()).details == {"notional": Decimal(500)}  # not watched


# -- the selector on real rows ---------------------------------------------------------------------
ALPACA_LANE = {**paper_lane("alp"), "broker": "alpaca", "api_key": "key", "secret_key": "secret"}


@pytest.fixture
def alpaca_lane(settings, db):
    settings.TRADING_LANES = [ALPACA_LANE, paper_lane()]
    settings.TRADING_FEATURE_FLAGS_ENABLED = False
    settings.TRADING_ORDER_FEED_ENABLED = True
    settings.TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS = 5.0
    LaneState.objects.create(account_label="alp", market_open=True)
    return settings


def open_execution(n: int = 1, *, lane: str = "alp", status: str = "accepted") -> Execution:
    return Execution.objects.create(
        account_label=lane,
        broker="alpaca",
        broker_order_id=f"o-{n}",
        client_order_id=f"cid-{n}",
        symbol="AAPL",
        side="buy",
        order_type="market",
        time_in_force="day",
        submitted_qty=Decimal(5),
        status=status,
        submitted_at=timezone.now() - timedelta(seconds=30),
    )


def test_health_selector_reads_the_bridge_rows(alpaca_lane):
    lane = lane_config("alp")
    now = timezone.now()
    # no open order: healthy although no bridge ever wrote anything
    assert trade_stream_health(lane=lane, now=now) == StreamHealth("healthy")
    assert trade_stream_watch_needed(account_label="alp") is False
    open_execution()
    assert trade_stream_watch_needed(account_label="alp") is True
    # open orders, market open, no row: disconnected since the order went out
    assert trade_stream_health(lane=lane, now=now).state == "disconnected"
    trade_stream_connected(account_label="alp", at=now - timedelta(seconds=4))
    assert trade_stream_health(lane=lane, now=now) == StreamHealth("healthy")
    assert trade_stream_health(lane=lane, now=now + timedelta(seconds=2)) == StreamHealth(
        "silent", 6.0
    )
    # the setting decides: a longer max silence keeps the same stream healthy
    alpaca_lane.TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS = 10.0
    assert trade_stream_health(lane=lane, now=now + timedelta(seconds=2)).healthy is True
    alpaca_lane.TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS = 5.0
    LaneState.objects.filter(account_label="alp").update(market_open=False)
    assert trade_stream_health(lane=lane, now=now + timedelta(seconds=60)).healthy is True
    assert trade_stream_watch_needed(account_label="alp") is False
    LaneState.objects.filter(account_label="alp").update(market_open=True)
    trade_stream_disconnected(account_label="alp", at=now)
    assert trade_stream_health(lane=lane, now=now).state == "disconnected"
    # not watched: the order feed off, or a simulated lane
    alpaca_lane.TRADING_ORDER_FEED_ENABLED = False
    assert trade_stream_health(lane=lane, now=now) == StreamHealth("")
    alpaca_lane.TRADING_ORDER_FEED_ENABLED = True
    open_execution(2, lane="paper")
    assert trade_stream_health(lane=lane_config("paper"), now=now) == StreamHealth("")


def test_touch_only_moves_forward(alpaca_lane):
    t0 = timezone.now()
    trade_stream_connected(account_label="alp", at=t0)
    assert trade_stream_touch(account_label="alp", at=t0 + timedelta(seconds=2), event_at=None)
    assert not trade_stream_touch(account_label="alp", at=t0 + timedelta(seconds=1), event_at=t0)
    event = t0 + timedelta(seconds=3)
    assert trade_stream_touch(account_label="alp", at=event, event_at=event)
    row = TradeStreamState.objects.get(account_label="alp")
    assert (row.connected, row.connected_at, row.last_message_at, row.last_event_at) == (
        True,
        t0,
        event,
        event,
    )
    trade_stream_disconnected(account_label="alp", at=event)
    row.refresh_from_db()
    assert (row.connected, row.disconnected_at, row.last_message_at) == (False, event, event)


# -- the gap fill against the Alpaca stand-in -------------------------------------------------------
@pytest.fixture
def rest(alpaca_lane):
    from django.core.cache import cache

    server = AlpacaServer().start()
    alpaca_lane.TRADING_LANES = [{**ALPACA_LANE, "base_url": server.url}]
    alpaca_lane.APCA_HTTP_TIMEOUT_SECONDS = 2.0
    cache.clear()
    yield server
    server.stop()


def broker_for(server: AlpacaServer) -> AlpacaBroker:
    return AlpacaBroker(
        api_key="key",
        secret_key="secret",
        paper=True,
        base_url=server.url,
        account_label="alp",
        timeout_seconds=2.0,
        rate_limit_per_minute=1000,
    )


def submit(server: AlpacaServer, cid: str, symbol: str = "AAPL") -> Execution:
    order = broker_for(server).submit_order(
        OrderRequest(symbol=symbol, side="buy", qty=Decimal(5), client_order_id=cid)
    )
    return execution_record(
        decision=None, order=order, broker="alpaca", adopted=True, account_label="alp"
    )


def gauge() -> float | None:
    return REGISTRY.get_sample_value(
        "torghut_trading_trade_updates_gap_seconds", {"account": "alp"}
    )


def test_gap_fill_applies_fills_from_rest_and_flags_orders_never_sent(rest):
    mine = submit(rest, "cid-mine")
    assert mine.status == "accepted"
    trade_stream_connected(account_label="alp", at=timezone.now() - timedelta(seconds=30))
    [order] = rest.orders.values()
    rest.fill(order["id"], "5", "187.25")
    rest.orders["manual"] = {  # placed by hand in Alpaca's UI, still open
        **order,
        "id": "manual",
        "client_order_id": "by-hand",
        "status": "accepted",
        "filled_qty": "0",
        "filled_avg_price": None,
    }

    result = trade_stream_gap_fill(account_label="alp")

    assert (result.status, result.stream, result.listed, result.applied) == (
        "filled",
        "silent",
        2,
        1,
    )
    assert (result.unknown_orders, result.adopted) == (1, 0)
    mine.refresh_from_db()
    assert (mine.status, mine.filled_qty, mine.avg_fill_price) == (
        "filled",
        Decimal(5),
        Decimal("187.25"),
    )
    assert list(mine.transitions.values_list("to_status", "source").order_by("pk"))[-1] == (
        "filled",
        "gap_fill",
    )
    unknown = Execution.objects.get(client_order_id="by-hand")
    assert (unknown.unknown_order, unknown.decision_id, unknown.account_label) == (
        True,
        None,
        "alp",
    )
    assert 29 < (gauge() or 0) < 60
    [listing] = [r for r in rest.requests if r.method == "GET" and r.path == "/v2/orders"]
    assert (listing.query["status"], listing.query["direction"]) == ("all", "asc")

    again = trade_stream_gap_fill(account_label="alp")  # idempotent
    assert (again.status, again.listed, again.applied, again.unknown_orders) == ("filled", 2, 0, 0)


def test_gap_fill_leaves_a_submitting_decision_to_the_reconciliation_which_adopts_it(rest):
    submit(rest, "cid-open")  # an open order keeps the lane watched
    trade_stream_connected(account_label="alp", at=timezone.now() - timedelta(seconds=30))
    strategy = Strategy.objects.create(name="s", strategy_type="legacy_macd_rsi")
    decision = TradeDecision.objects.create(
        strategy=strategy,
        account_label="alp",
        symbol="MSFT",
        timeframe="1Min",
        event_ts=timezone.now(),
        action="buy",
        qty=Decimal(5),
        decision_hash="a" * 64,
        client_order_id="tg-submitting",
        status="submitting",
    )
    # the submit reached Alpaca, its answer never reached us
    broker_for(rest).submit_order(
        OrderRequest(symbol="MSFT", side="buy", qty=Decimal(5), client_order_id="tg-submitting")
    )

    result = trade_stream_gap_fill(account_label="alp")

    assert (result.status, result.listed, result.adopted, result.unknown_orders) == (
        "filled",
        2,
        1,
        0,
    )
    adopted = Execution.objects.get(client_order_id="tg-submitting")
    assert (adopted.decision_id, adopted.adopted, adopted.unknown_order) == (
        decision.pk,
        True,
        False,
    )
    assert rest.posts() == 2  # nothing sent again


def test_gap_fill_is_a_no_op_while_healthy(rest):
    submit(rest, "cid-1")
    trade_stream_connected(account_label="alp", at=timezone.now())
    requests_before = len(rest.requests)
    result = trade_stream_gap_fill(account_label="alp")
    assert (result.status, result.stream, result.listed) == ("healthy", "healthy", 0)
    # the beat task's body: the same service, a JSON result
    assert trade_stream_gap_fill_run.run(account_label="alp") == {
        "account_label": "alp",
        "status": "healthy",
        "stream": "healthy",
        "listed": 0,
        "applied": 0,
        "unknown_orders": 0,
        "adopted": 0,
        "error": "",
    }
    assert len(rest.requests) == requests_before  # no broker call
    assert gauge() == 0.0


def test_health_endpoint_reports_the_stream(rest):
    submit(rest, "cid-1")
    trade_stream_connected(account_label="alp", at=timezone.now() - timedelta(seconds=30))
    stream = trading_health()["dependencies"]["trade_updates_stream:alp"]
    assert (stream["ok"], stream["state"]) == (False, "silent")
    assert 29 < stream["gap_seconds"] < 60
    trade_stream_connected(account_label="alp", at=timezone.now())
    assert trading_health()["dependencies"]["trade_updates_stream:alp"] == {
        "ok": True,
        "state": "healthy",
        "gap_seconds": 0.0,
    }


def test_orders_since_pages_oldest_first_from_after(rest):
    for n in range(5):
        submit(rest, f"cid-{n}")
    submitted = sorted(o["submitted_at"] for o in rest.orders.values())
    after = datetime.fromisoformat(submitted[0].replace("Z", "+00:00"))
    broker = broker_for(rest)
    page = broker.list_orders_after(after=after, limit=2)
    assert [o.client_order_id for o in page] == ["cid-1", "cid-2"]
    orders = orders_since(broker, after=after, page_size=2)
    assert [o.client_order_id for o in orders] == ["cid-1", "cid-2", "cid-3", "cid-4"]


def test_simulated_broker_lists_orders_after(settings, db):
    settings.TRADING_LANES = [paper_lane()]
    broker = SimulatedBroker("paper")
    broker.observe_prices({"AAPL": (Decimal(100), timezone.now())})
    first = broker.submit_order(
        OrderRequest(symbol="AAPL", side="buy", qty=Decimal(1), client_order_id="s-1")
    )
    second = broker.submit_order(
        OrderRequest(symbol="AAPL", side="buy", qty=Decimal(2), client_order_id="s-2")
    )
    assert first.submitted_at is not None
    assert [o.id for o in broker.list_orders_after(after=first.submitted_at)] == [second.id]
    before = first.submitted_at - timedelta(seconds=1)
    assert [o.id for o in broker.list_orders_after(after=before)] == [first.id, second.id]
    assert [o.id for o in broker.list_orders_after(after=before, limit=1)] == [first.id]


# -- wiring ------------------------------------------------------------------------------------------
def test_gap_fill_is_scheduled_every_15_s_for_alpaca_lanes_only(settings):
    settings.TRADING_LANES = [ALPACA_LANE, paper_lane()]
    schedule = beat_schedule()
    entry = schedule["trading-trade-stream-gap-fill-alp"]
    assert entry == {
        "task": "trading.tasks.trade_stream_gap_fill_run",
        "schedule": 15.0,
        "kwargs": {"account_label": "alp"},
        "options": {"expires": 15.0},
    }
    assert "trading-trade-stream-gap-fill-paper" not in schedule


def test_max_silence_below_one_second_stops_startup():
    result = manage("check", env={"TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS": "0.5"})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "torghut cannot start: invalid configuration",
        "  - TRADING_TRADE_UPDATES_MAX_SILENCE_SECONDS=0.5 must be >= 1.0",
    ]
