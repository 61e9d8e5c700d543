"""The Alpaca adapter through real HTTP against an Alpaca-API stand-in."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.conftest import free_port
from tests.servers.alpaca_server import AlpacaServer
from tests.servers.base import Fault
from trading.brokers.alpaca import AlpacaBroker, AlpacaMarketData
from trading.brokers.base import (
    AmbiguousBrokerError,
    DuplicateClientOrderIdError,
    OrderNotFoundError,
    OrderRequest,
    RetryableBrokerError,
    TerminalBrokerError,
)


@pytest.fixture
def server():
    srv = AlpacaServer().start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()


def make_broker(
    url: str,
    *,
    key: str = "key",
    timeout: float = 0.5,
    per_minute: int = 1000,
    label: str = "paper",
):
    return AlpacaBroker(
        api_key=key,
        secret_key="secret",
        paper=True,
        base_url=url,
        account_label=label,
        timeout_seconds=timeout,
        rate_limit_per_minute=per_minute,
    )


def order(cid: str = "tg-1", **kw) -> OrderRequest:
    return OrderRequest(symbol="AAPL", side="buy", qty=Decimal("3"), client_order_id=cid, **kw)


def test_account_positions_clock_and_orders_map_to_decimals(server):
    server.positions = [
        {
            "symbol": "MSFT",
            "qty": "5",
            "side": "long",
            "avg_entry_price": "410.1234",
            "market_value": "2055.00",
        },
        {
            "symbol": "TSLA",
            "qty": "2",
            "side": "short",
            "avg_entry_price": "200.5",
            "market_value": "-401.00",
        },
    ]
    broker = make_broker(server.url)
    account = broker.get_account()
    assert (account.equity, account.cash, account.buying_power) == (
        Decimal("100250.50"),
        Decimal("100000.00"),
        Decimal("200000.00"),
    )
    assert [(p.symbol, p.qty, p.avg_entry_price, p.side) for p in broker.list_positions()] == [
        ("MSFT", Decimal(5), Decimal("410.1234"), "long"),
        ("TSLA", Decimal(-2), Decimal("200.5"), "short"),
    ]
    assert broker.get_clock().is_open is True
    placed = broker.submit_order(order(order_type="limit", limit_price=Decimal("189.25")))
    assert (placed.status, placed.qty, placed.limit_price, placed.client_order_id) == (
        "accepted",
        Decimal(3),
        Decimal("189.25"),
        "tg-1",
    )
    server.fill(placed.id, "3", "189.20")
    filled = broker.get_order(placed.id)
    assert (filled.status, filled.filled_qty, filled.filled_avg_price) == (
        "filled",
        Decimal(3),
        Decimal("189.20"),
    )
    assert broker.get_order_by_client_id("tg-1").id == placed.id
    assert [o.id for o in broker.list_orders(status="closed")] == [placed.id]
    assert broker.list_orders(status="open") == []


def test_duplicate_client_order_id_is_classified_and_creates_nothing(server):
    broker = make_broker(server.url)
    broker.submit_order(order("dup"))
    with pytest.raises(DuplicateClientOrderIdError) as info:
        broker.submit_order(order("dup"))
    assert (info.value.status_code, info.value.code) == (422, "40010001")
    assert len(server.orders) == 1


def test_timeout_after_acceptance_is_ambiguous_and_the_order_can_be_found(server):
    broker = make_broker(server.url, timeout=0.3)
    server.inject(Fault("POST", "/v2/orders", after_handler=True, delay=1.0))
    with pytest.raises(AmbiguousBrokerError):
        broker.submit_order(order("amb"))
    time.sleep(0.8)  # let the stand-in finish answering the abandoned request
    found = broker.get_order_by_client_id("amb")
    assert (found.client_order_id, found.status) == ("amb", "accepted")
    assert server.posts() == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, RetryableBrokerError),
        (500, AmbiguousBrokerError),
        (503, AmbiguousBrokerError),
        (504, AmbiguousBrokerError),
    ],
)
def test_submit_is_never_retried_behind_our_back(server, status, error):
    broker = make_broker(server.url)
    server.inject(
        Fault("POST", "/v2/orders", status=status, body={"code": 50010000, "message": "boom"})
    )
    with pytest.raises(error):
        broker.submit_order(order(f"x{status}"))
    assert server.posts() == 1
    assert server.orders == {}


def test_terminal_errors_and_not_found(server):
    broker = make_broker(server.url)
    server.inject(
        Fault(
            "POST", "/v2/orders", status=422, body={"code": 40010000, "message": "invalid symbol"}
        )
    )
    with pytest.raises(TerminalBrokerError) as info:
        broker.submit_order(order("z"))
    assert (type(info.value), info.value.status_code, info.value.code) == (
        TerminalBrokerError,
        422,
        "40010000",
    )
    server.inject(
        Fault(
            "POST",
            "/v2/orders",
            status=403,
            body={"code": 40310000, "message": "insufficient buying power"},
        )
    )
    with pytest.raises(TerminalBrokerError):
        broker.submit_order(order("z"))
    assert server.orders == {}
    with pytest.raises(OrderNotFoundError):
        broker.get_order_by_client_id("missing")
    with pytest.raises(TerminalBrokerError) as forbidden:
        make_broker(server.url, key="wrong").get_account()
    assert forbidden.value.status_code == 403


def test_reads_after_server_errors_are_retryable(server):
    broker = make_broker(server.url)
    server.inject(Fault("GET", "/v2/account", status=503))
    with pytest.raises(RetryableBrokerError):
        broker.get_account()


def test_connection_refused_is_retryable_even_for_submit():
    broker = make_broker(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RetryableBrokerError) as info:
        broker.submit_order(order())
    assert info.value.code == "connection_refused"


def test_timeout_is_enforced(server):
    broker = make_broker(server.url, timeout=0.3)
    server.inject(Fault("GET", "/v2/account", delay=2.0))
    started = time.perf_counter()
    with pytest.raises(RetryableBrokerError):
        broker.get_account()
    assert time.perf_counter() - started < 1.5


def test_client_side_rate_limit(server):
    broker = make_broker(server.url, per_minute=3, label="limited")
    for _ in range(3):
        broker.get_clock()
    with pytest.raises(RetryableBrokerError) as info:
        broker.get_clock()
    assert info.value.code == "client_rate_limited"
    assert sum(1 for r in server.requests if r.path == "/v2/clock") == 3


def test_cancel_and_cancel_all(server):
    broker = make_broker(server.url)
    first = broker.submit_order(order("c1"))
    broker.submit_order(order("c2"))
    broker.cancel_order(first.id)
    with pytest.raises(TerminalBrokerError):
        broker.cancel_order(first.id)  # already canceled
    assert len(broker.cancel_all_orders()) == 1
    assert broker.list_orders(status="open") == []


def test_bars_are_paged_and_decimal(server):
    server.bars = {
        "AAPL": [
            {
                "t": f"2026-03-03T14:3{i}:00Z",
                "o": 1.5,
                "h": 2,
                "l": 1,
                "c": "1.75",
                "v": 100,
                "vw": 1.6,
                "n": 3,
            }
            for i in range(3)
        ],
        "MSFT": [{"t": "2026-03-03T14:30:00Z", "o": 4, "h": 4, "l": 4, "c": 4, "v": 1, "n": 1}],
    }
    data = AlpacaMarketData(
        api_key="key", secret_key="secret", base_url=server.url, feed="iex", timeout_seconds=1
    )
    bars = data.get_bars(
        ["AAPL", "MSFT"], datetime(2026, 3, 3, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)
    )
    assert [(b.symbol, b.timestamp.minute, b.close) for b in bars] == [
        ("AAPL", 30, Decimal("1.75")),
        ("MSFT", 30, Decimal(4)),
        ("AAPL", 31, Decimal("1.75")),
        ("AAPL", 32, Decimal("1.75")),
    ]
    assert bars[0].open == Decimal("1.5") and bars[0].vwap == Decimal("1.6")
