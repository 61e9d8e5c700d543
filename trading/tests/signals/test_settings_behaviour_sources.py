"""Signal-source and universe settings: the ClickHouse timeout's alias and the Jangar universe
timeout, each set to two values against a slow stand-in server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.servers.base import Fault, Response, TestHTTPServer
from trading.signals.clickhouse import ClickHouseError, ClickHouseSignalSource

NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(("timeout", "fails"), [("0.2", True), ("3", False)])
def test_clickhouse_timeout_alias_bounds_the_query(monkeypatch, settings, ch, timeout, fails):
    from tests.foundation.test_settings_behaviour_site import settings_from_env

    module = settings_from_env(monkeypatch, {"CLICKHOUSE_TIMEOUT_SECONDS": timeout})
    settings.TA_CLICKHOUSE_CONN_TIMEOUT_SECONDS = module["TA_CLICKHOUSE_CONN_TIMEOUT_SECONDS"]
    settings.TA_CLICKHOUSE_URL = ch.url
    settings.TA_CLICKHOUSE_USERNAME = "torghut"
    settings.TA_CLICKHOUSE_PASSWORD = "s3cret"
    settings.TRADING_SIGNAL_TABLE = f"{ch.database}.ta_signals"
    settings.TRADING_SIGNAL_SCHEMA = "flat"
    ch.execute(
        f"CREATE TABLE {ch.database}.ta_signals (event_ts DateTime64(3, 'UTC'), symbol String, "
        "seq UInt64, timeframe String, price Float64, macd Float64, macd_signal Float64, "
        "rsi14 Float64) ENGINE = MergeTree ORDER BY (event_ts, symbol, seq)"
    )
    ch.inject(Fault(method="GET", path_regex="/", delay=0.6, times=10))
    ch.inject(Fault(method="POST", path_regex="/", delay=0.6, times=10))
    source = ClickHouseSignalSource.from_settings()
    if fails:
        with pytest.raises(ClickHouseError, match="ClickHouse request failed"):
            source.fetch(None, limit=10, now=NOW)
    else:
        assert list(source.fetch(None, limit=10, now=NOW).signals) == []


class SymbolsServer(TestHTTPServer):
    def __init__(self) -> None:
        super().__init__()
        self.route("GET", "/symbols", lambda request: Response(200, {"symbols": ["AAPL", "msft"]}))


@pytest.mark.parametrize(("timeout", "status"), [(0.2, "unavailable"), (3.0, "ok")])
def test_universe_timeout_bounds_the_jangar_fetch(settings, timeout, status):
    from django.core.cache import cache

    from trading.services.universe import universe_resolve

    server = SymbolsServer().start()
    try:
        settings.TRADING_FEATURE_FLAGS_ENABLED = False
        settings.TRADING_UNIVERSE_SOURCE = "jangar"
        settings.JANGAR_SYMBOLS_URL = f"{server.url}/symbols"
        settings.JANGAR_API_KEY = ""
        settings.TRADING_UNIVERSE_TIMEOUT_SECONDS = timeout
        cache.clear()
        server.inject(Fault(method="GET", path_regex="/symbols", delay=0.6))
        universe = universe_resolve()
        assert universe.status == status
        if status == "ok":
            assert universe.symbols == frozenset({"AAPL", "MSFT"})
    finally:
        cache.clear()
        server.stop()
