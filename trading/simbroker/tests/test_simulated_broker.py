from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from trading.brokers.base import (
    DuplicateClientOrderIdError,
    OrderNotFoundError,
    OrderRequest,
    TerminalBrokerError,
)
from trading.brokers.simulated import SimulatedBroker
from trading.simbroker.models import SimOrder, SimTradeUpdate

T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


@pytest.fixture
def broker(db, settings):
    settings.SIMULATED_BROKER_STARTING_CASH = Decimal(10000)
    settings.SIMULATED_BROKER_SLIPPAGE_BPS = Decimal(10)
    settings.SIMULATED_BROKER_FEE_PER_SHARE = Decimal("0.01")
    settings.SIMULATED_BROKER_FEE_BPS = Decimal(0)
    b = SimulatedBroker("paper")
    b.observe_prices({"AAPL": (Decimal(100), T0)})
    return b


def req(cid: str, side: str = "buy", qty: str = "10", **kw) -> OrderRequest:
    return OrderRequest(
        symbol=kw.pop("symbol", "AAPL"), side=side, qty=Decimal(qty), client_order_id=cid, **kw
    )


def test_market_buy_fills_on_the_next_price_with_slippage_and_fees(broker):
    order = broker.submit_order(req("c1"))
    assert (order.status, order.filled_qty) == ("accepted", Decimal(0))
    broker.observe_prices({"AAPL": (Decimal(100), T0)})  # the same price again fills nothing
    assert broker.get_order(order.id).status == "accepted"
    broker.observe_prices({"AAPL": (Decimal(101), T0 + timedelta(minutes=1))})
    filled = broker.get_order(order.id)
    assert (filled.status, filled.filled_qty, filled.filled_avg_price) == (
        "filled",
        Decimal(10),
        Decimal("101.11"),
    )
    account = broker.get_account()
    assert account.cash == Decimal("10000") - Decimal("1011.10") - Decimal("0.10")
    assert account.equity == account.cash + Decimal(10) * Decimal(101)
    [position] = broker.list_positions()
    assert (position.symbol, position.qty, position.avg_entry_price) == (
        "AAPL",
        Decimal(10),
        Decimal("101.11"),
    )


def test_sell_realizes_and_flattens(broker):
    buy = broker.submit_order(req("b"))
    broker.observe_prices({"AAPL": (Decimal(100), T0 + timedelta(minutes=1))})
    sell = broker.submit_order(req("s", side="sell"))
    broker.observe_prices({"AAPL": (Decimal(110), T0 + timedelta(minutes=2))})
    assert broker.get_order(sell.id).filled_avg_price == Decimal("109.89")
    assert broker.list_positions() == []
    assert broker.get_account().cash == Decimal(10000) - Decimal("1001.00") + Decimal(
        "1098.90"
    ) - Decimal("0.20")
    assert broker.get_order(buy.id).status == "filled"


def test_limit_waits_for_its_price_and_fills_at_limit_or_better(broker):
    order = broker.submit_order(req("l1", order_type="limit", limit_price=Decimal("99.50")))
    broker.observe_prices({"AAPL": (Decimal("99.80"), T0 + timedelta(minutes=1))})
    assert broker.get_order(order.id).status == "accepted"
    broker.observe_prices({"AAPL": (Decimal("99.00"), T0 + timedelta(minutes=2))})
    assert broker.get_order(order.id).filled_avg_price == Decimal("99.10")


def test_stop_triggers_then_fills_like_market(broker):
    broker.submit_order(req("b"))
    broker.observe_prices({"AAPL": (Decimal(100), T0 + timedelta(minutes=1))})
    stop = broker.submit_order(req("st", side="sell", order_type="stop", stop_price=Decimal(95)))
    broker.observe_prices({"AAPL": (Decimal(96), T0 + timedelta(minutes=2))})
    assert broker.get_order(stop.id).status == "accepted"
    broker.observe_prices({"AAPL": (Decimal(94), T0 + timedelta(minutes=3))})
    assert broker.get_order(stop.id).filled_avg_price == Decimal("93.90")


def test_ioc_that_cannot_fill_is_cancelled(broker):
    order = broker.submit_order(
        req("i", order_type="limit", limit_price=Decimal(90), time_in_force="ioc")
    )
    broker.observe_prices({"AAPL": (Decimal(100), T0 + timedelta(minutes=1))})
    assert broker.get_order(order.id).status == "canceled"


def test_duplicate_client_order_id_is_refused_even_after_cancel(broker):
    order = broker.submit_order(req("dup"))
    broker.cancel_order(order.id)
    with pytest.raises(DuplicateClientOrderIdError):
        broker.submit_order(req("dup"))
    assert SimOrder.objects.filter(client_order_id="dup").count() == 1
    with pytest.raises(TerminalBrokerError):
        broker.cancel_order(order.id)  # already final


def test_insufficient_buying_power_creates_no_order(broker):
    with pytest.raises(TerminalBrokerError) as info:
        broker.submit_order(req("big", qty="1000"))
    assert info.value.status_code == 403
    assert SimOrder.objects.count() == 0
    assert SimTradeUpdate.objects.count() == 0


def test_lookups_and_cancel_all(broker):
    a = broker.submit_order(req("a"))
    broker.submit_order(req("b", qty="1"))
    assert broker.get_order_by_client_id("a").id == a.id
    with pytest.raises(OrderNotFoundError):
        broker.get_order_by_client_id("nope")
    with pytest.raises(OrderNotFoundError):
        broker.get_order("not-a-uuid")
    assert len(broker.cancel_all_orders()) == 2
    assert broker.list_orders(status="open") == []


def test_trade_updates_are_alpaca_shaped_and_ordered(broker):
    order = broker.submit_order(req("tu", qty="2"))
    broker.observe_prices({"AAPL": (Decimal(100), T0 + timedelta(minutes=1))})
    updates = list(SimTradeUpdate.objects.order_by("seq"))
    assert [(u.seq, u.event) for u in updates] == [(1, "new"), (2, "fill")]
    fill = updates[1].payload
    assert fill["price"] == "100.1"
    assert fill["qty"] == "2"
    assert fill["position_qty"] == "2"
    assert fill["order"]["id"] == order.id
    assert fill["order"]["status"] == "filled"
    assert fill["order"]["filled_avg_price"] == "100.1"


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_of_one_client_order_id_make_one_order(settings):
    settings.SIMULATED_BROKER_STARTING_CASH = Decimal(10000)
    SimulatedBroker("race").get_account()
    outcomes: list[str] = []

    def submit() -> None:
        try:
            SimulatedBroker("race").submit_order(req("same", qty="1"))
            outcomes.append("ok")
        except DuplicateClientOrderIdError:
            outcomes.append("duplicate")
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["duplicate", "duplicate", "duplicate", "ok"]
    assert SimOrder.objects.filter(client_order_id="same").count() == 1
