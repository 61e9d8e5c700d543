"""`GET /trading/tca` and `/trading/metrics` no longer aggregate the whole TCA table per request.

The summary covers at most TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS days and is answered from the
cache for TRADING_TCA_SUMMARY_CACHE_SECONDS; `summary_as_of` says how old it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from trading.models import Execution, ExecutionTcaMetric
from trading.selectors.trading import tca_rows, tca_summary

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def tca(n: int, *, symbol: str, slippage: str, at: datetime) -> ExecutionTcaMetric:
    execution = Execution.objects.create(
        account_label="paper",
        broker="simulated",
        broker_order_id=f"sim-tca-{n}",
        client_order_id=f"tg-tca-{n}",
        symbol=symbol,
        side="buy",
        order_type="market",
        time_in_force="day",
        submitted_qty=Decimal("1"),
        filled_qty=Decimal("1"),
        avg_fill_price=Decimal("100"),
        status="filled",
    )
    return ExecutionTcaMetric.objects.create(
        execution=execution,
        account_label="paper",
        symbol=symbol,
        side="buy",
        arrival_price=Decimal("99.9"),
        avg_fill_price=Decimal("100"),
        filled_qty=Decimal("1"),
        slippage_bps=Decimal(slippage),
        shortfall_notional=Decimal("0.1"),
        computed_at=at,
    )


@pytest.fixture
def client(django_user_model) -> Iterator[APIClient]:
    cache.clear()
    user = django_user_model.objects.create_user("tca-reader", password="pw-tca-reader-1")
    client = APIClient()
    client.force_authenticate(user)
    yield client
    cache.clear()


def summary_of(body: dict) -> dict:
    return {k: body[k] for k in ("summary", "by_strategy", "by_symbol")}


def expected(since: datetime) -> dict:
    """The full aggregation over the window, rendered as the API renders it."""
    rendered: dict = json.loads(JSONRenderer().render(tca_summary(tca_rows(since=since))))
    return rendered


def test_summary_is_window_bounded_cached_and_says_how_old_it_is(
    client, settings, django_assert_num_queries
):
    settings.TRADING_TCA_SUMMARY_CACHE_SECONDS = 60
    settings.TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS = 30
    tca(1, symbol="AAPL", slippage="4", at=NOW - timedelta(days=1))
    tca(2, symbol="AAPL", slippage="6", at=NOW - timedelta(days=2))
    tca(3, symbol="MSFT", slippage="-2", at=NOW - timedelta(days=29))
    tca(4, symbol="MSFT", slippage="100", at=NOW - timedelta(days=31))  # beyond the window
    window = NOW - timedelta(days=30)

    with time_machine.travel(NOW, tick=False):
        with CaptureQueriesContext(connection) as miss:
            first = client.get("/trading/tca").json()
        assert summary_of(first) == expected(window)
        assert first["summary"]["order_count"] == 3
        assert (first["summary_as_of"], first["summary_since"]) == (
            "2026-11-02T15:00:00Z",
            "2026-10-03T15:00:00Z",
        )
        assert first["summary_max_age_seconds"] == 60
        # the page itself is not windowed
        assert [row["execution_id"] for row in first["results"]] == [
            row.execution_id for row in ExecutionTcaMetric.objects.order_by("-id")
        ]

        tca(5, symbol="NVDA", slippage="1", at=NOW - timedelta(hours=1))
        # from the cache: the three aggregations are not run again, whatever the table holds
        with django_assert_num_queries(len(miss.captured_queries) - 3) as hit:
            cached = client.get("/trading/tca").json()
        assert not [q for q in hit.captured_queries if "AVG(" in q["sql"]]
        assert summary_of(cached) == summary_of(first)  # stale, and says since when
        assert cached["summary_as_of"] == "2026-11-02T15:00:00Z"

    later = NOW + timedelta(seconds=61)
    with time_machine.travel(later, tick=False):
        fresh = client.get("/trading/tca").json()
    assert summary_of(fresh) == expected(later - timedelta(days=30))
    assert (fresh["summary"]["order_count"], fresh["summary_as_of"]) == (
        4,
        "2026-11-02T15:01:01Z",
    )


def test_cache_is_per_filter_and_metrics_use_it(client, settings):
    settings.TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS = 30
    tca(1, symbol="AAPL", slippage="4", at=NOW - timedelta(days=1))
    tca(2, symbol="MSFT", slippage="8", at=NOW - timedelta(days=1))
    with time_machine.travel(NOW, tick=False):
        aapl = client.get("/trading/tca?symbol=aapl").json()
        msft = client.get("/trading/tca?symbol=MSFT").json()
        assert (aapl["summary"]["order_count"], msft["summary"]["order_count"]) == (1, 1)
        assert aapl["by_symbol"][0]["symbol"] == "AAPL"
        assert msft["by_symbol"][0]["symbol"] == "MSFT"
        since = client.get("/trading/tca?since=2026-11-01T16:00:00Z").json()
        assert (since["summary"]["order_count"], since["summary_since"]) == (
            0,
            "2026-11-01T16:00:00Z",
        )
        metrics = client.get("/trading/metrics").json()["tca"]
        assert (metrics["summary"]["order_count"], metrics["summary_as_of"]) == (
            2,
            "2026-11-02T15:00:00Z",
        )
        cache.clear()  # an operator clearing the cache gets a fresh computation at once
        tca(3, symbol="AAPL", slippage="2", at=NOW - timedelta(hours=1))
        assert client.get("/trading/tca?symbol=AAPL").json()["summary"]["order_count"] == 2
