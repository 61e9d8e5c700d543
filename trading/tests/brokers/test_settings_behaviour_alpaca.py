"""Alpaca settings: each one, set to two values, changes where the adapter sends its requests,
what it asks for, or when it stops itself (against the Alpaca stand-in server)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.servers.alpaca_server import AlpacaServer
from trading.brokers.alpaca import AlpacaBroker, AlpacaMarketData
from trading.brokers.base import RetryableBrokerError


@pytest.fixture
def server():
    srv = AlpacaServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def alpaca(settings):
    from django.core.cache import cache

    cache.clear()  # the client-side rate limiter counts in the cache
    settings.APCA_API_KEY_ID = "key"
    settings.APCA_API_SECRET_KEY = "secret"
    settings.APCA_HTTP_TIMEOUT_SECONDS = 1.0
    settings.APCA_RATE_LIMIT_PER_MINUTE = 1000
    yield settings
    cache.clear()


def _gets(server: AlpacaServer, path: str) -> list:
    with server.lock:
        return [r for r in server.requests if r.method == "GET" and r.path == path]


def test_api_base_url_is_where_the_broker_calls(alpaca, server):
    alpaca.APCA_API_BASE_URL = server.url
    account = AlpacaBroker.from_settings(account_label="paper").get_account()
    assert (account.equity, len(_gets(server, "/v2/account"))) == (Decimal("100250.50"), 1)
    alpaca.APCA_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens there
    with pytest.raises(RetryableBrokerError):
        AlpacaBroker.from_settings(account_label="paper").get_account()
    assert len(_gets(server, "/v2/account")) == 1


def test_rate_limit_per_minute_stops_calls_over_the_budget(alpaca, server):
    alpaca.APCA_API_BASE_URL = server.url
    alpaca.APCA_RATE_LIMIT_PER_MINUTE = 2
    broker = AlpacaBroker.from_settings(account_label="rl-a")
    broker.get_account()
    broker.get_account()
    with pytest.raises(RetryableBrokerError) as refused:
        broker.get_account()
    assert refused.value.code == "client_rate_limited"
    assert len(_gets(server, "/v2/account")) == 2
    alpaca.APCA_RATE_LIMIT_PER_MINUTE = 3
    broker = AlpacaBroker.from_settings(account_label="rl-b")
    for _ in range(3):
        broker.get_account()
    assert len(_gets(server, "/v2/account")) == 5


@pytest.mark.parametrize("feed", ["iex", "sip"])
def test_data_api_base_url_and_feed_shape_the_bars_request(alpaca, server, feed):
    alpaca.APCA_DATA_API_BASE_URL = server.url
    alpaca.APCA_DATA_FEED = feed
    start = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
    bars = AlpacaMarketData.from_settings().get_bars(["AAPL"], start, start)
    assert bars == []
    (request,) = _gets(server, "/v2/stocks/bars")
    assert (request.query["feed"], request.query["symbols"]) == (feed, "AAPL")
