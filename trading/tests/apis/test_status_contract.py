"""The original's dashboard contract: `/trading/status`'s top-level fields rolled up over the
lanes, and the `/metrics` database gauges (docs/compatibility.md#endpoints, #metrics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient

from torghut_site.models import HeartbeatKind
from torghut_site.services import heartbeat_record
from trading.models import Execution, ExecutionTcaMetric, LaneState

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def reader():
    cache.clear()  # the TCA summary is cached across requests
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("reader", password="x"))
    return client


@pytest.fixture
def three_lanes(settings):
    base = settings.TRADING_LANES[0]
    settings.TRADING_LANES = [
        {**base, "label": "paper", "enabled": True},
        {**base, "label": "paper-2", "enabled": True},
        {**base, "label": "paper-3", "enabled": False},
    ]
    settings.TRADING_ENABLED = True
    settings.TRADING_POLL_MS = 5000
    settings.TRADING_SIGNAL_NO_SIGNAL_STREAK_ALERT_THRESHOLD = 2
    settings.TRADING_SIGNAL_MARKET_CLOSED_EXPECTED_REASONS = ["cursor_tail_stable"]
    LaneState.objects.create(
        account_label="paper",
        last_cycle_finished_at=NOW - timedelta(seconds=10),
        last_reconcile_at=NOW - timedelta(seconds=20),
        last_signal_ts=NOW - timedelta(seconds=5),
        signal_lag_seconds=5.0,
        market_open=True,
    )
    LaneState.objects.create(
        account_label="paper-2",
        last_cycle_finished_at=NOW - timedelta(seconds=30),
        last_reconcile_at=NOW - timedelta(seconds=4),
        last_error="BrokerUnavailable: 503",
        last_signal_ts=NOW - timedelta(seconds=400),
        signal_lag_seconds=400.0,
        no_signal_reason="cursor_tail_stable",
        no_signal_streak=3,
        market_open=True,
    )
    # a disabled lane is left out of every roll-up, however fresh
    LaneState.objects.create(
        account_label="paper-3",
        last_cycle_finished_at=NOW - timedelta(seconds=1),
        last_reconcile_at=NOW - timedelta(seconds=1),
        last_error="Disabled: x",
        last_signal_ts=NOW,
        signal_lag_seconds=9999.0,
        no_signal_reason="no_signals_in_window",
        no_signal_streak=50,
        market_open=False,
    )


def _top(body: dict) -> dict:
    return {k: body[k] for k in ("running", "last_run", "last_reconcile", "last_error")}


def test_status_rolls_the_enabled_lanes_up(reader, three_lanes):
    with time_machine.travel(NOW, tick=False):
        body = reader.get("/trading/status").json()
    assert _top(body) == {
        "running": True,
        "last_run": "2026-11-02T14:59:50Z",
        "last_reconcile": "2026-11-02T14:59:56Z",
        "last_error": "BrokerUnavailable: 503",
    }
    assert body["signal_continuity"] == {
        "last_signal_ts": "2026-11-02T14:59:55Z",
        "max_signal_lag_seconds": 400.0,
        "no_signal_reasons": {"paper-2": "cursor_tail_stable"},
        "max_no_signal_streak": 3,
        "market_open": True,
        # the market is open, so an expected-while-closed reason still counts
        "actionable_lanes": ["paper-2"],
    }
    # the per-lane blocks are kept
    assert [lane["label"] for lane in body["lanes"]] == ["paper", "paper-2", "paper-3"]


def test_status_not_running_when_cycles_are_old_or_trading_is_off(reader, three_lanes, settings):
    # 3 poll intervals (15 s) after the newest enabled lane's cycle: still running; after, not
    with time_machine.travel(NOW + timedelta(seconds=5), tick=False):
        assert reader.get("/trading/status").json()["running"] is True
    with time_machine.travel(NOW + timedelta(seconds=6), tick=False):
        assert reader.get("/trading/status").json()["running"] is False
    settings.TRADING_ENABLED = False
    with time_machine.travel(NOW, tick=False):
        assert reader.get("/trading/status").json()["running"] is False


def test_market_closed_makes_an_expected_reason_not_actionable(reader, three_lanes):
    LaneState.objects.filter(account_label="paper-2").update(market_open=False)
    LaneState.objects.filter(account_label="paper").update(market_open=False)
    with time_machine.travel(NOW, tick=False):
        continuity = reader.get("/trading/status").json()["signal_continuity"]
    assert continuity["actionable_lanes"] == []
    assert continuity["market_open"] is False


def test_status_before_any_cycle(reader, settings):
    settings.TRADING_ENABLED = True
    LaneState.objects.all().delete()
    with time_machine.travel(NOW, tick=False):
        body = reader.get("/trading/status").json()
    assert _top(body) == {
        "running": False,
        "last_run": None,
        "last_reconcile": None,
        "last_error": None,
    }
    assert body["signal_continuity"] == {
        "last_signal_ts": None,
        "max_signal_lag_seconds": None,
        "no_signal_reasons": {},
        "max_no_signal_streak": 0,
        "market_open": None,
        "actionable_lanes": [],
    }
    assert body["tca"] == {
        "order_count": 0,
        "avg_slippage_bps": None,
        "total_shortfall_notional": None,
        "as_of": "2026-11-02T15:00:00Z",
        "since": "2026-08-04T15:00:00Z",
    }


def _tca(n: int, *, slippage: str, shortfall: str, at: datetime) -> None:
    execution = Execution.objects.create(
        account_label="paper",
        broker="simulated",
        broker_order_id=f"sim-st-{n}",
        client_order_id=f"tg-st-{n}",
        symbol="AAPL",
        side="buy",
        order_type="market",
        time_in_force="day",
        submitted_qty=Decimal("1"),
        filled_qty=Decimal("1"),
        avg_fill_price=Decimal("100"),
        status="filled",
    )
    ExecutionTcaMetric.objects.create(
        execution=execution,
        account_label="paper",
        symbol="AAPL",
        side="buy",
        arrival_price=Decimal("99.9"),
        avg_fill_price=Decimal("100"),
        filled_qty=Decimal("1"),
        slippage_bps=Decimal(slippage),
        shortfall_notional=Decimal(shortfall),
        computed_at=at,
    )


def _gauges(client, *prefixes: str) -> set[str]:
    text = client.get("/metrics").content.decode()
    return {line for line in text.splitlines() if line.startswith(prefixes)}


def test_tca_in_status_and_on_metrics_cover_the_lookback_window(reader, client, settings):
    settings.TRADING_TCA_SUMMARY_MAX_LOOKBACK_DAYS = 30
    _tca(1, slippage="10", shortfall="0.5", at=NOW - timedelta(days=1))
    _tca(2, slippage="20", shortfall="1.5", at=NOW - timedelta(days=2))
    _tca(3, slippage="900", shortfall="99", at=NOW - timedelta(days=31))  # outside the window
    with time_machine.travel(NOW, tick=False):
        tca = reader.get("/trading/status").json()["tca"]
        gauges = _gauges(client, "torghut_trading_tca_")
    assert (tca["order_count"], tca["since"]) == (2, "2026-10-03T15:00:00Z")
    assert Decimal(str(tca["avg_slippage_bps"])) == Decimal("15")
    assert Decimal(str(tca["total_shortfall_notional"])) == Decimal("2")
    assert gauges == {
        "torghut_trading_tca_order_count 2.0",
        "torghut_trading_tca_avg_slippage_bps 15.0",
        "torghut_trading_tca_avg_shortfall_notional 1.0",
    }


def test_tca_gauges_are_zero_without_rows(client):
    assert _gauges(client, "torghut_trading_tca_") == {
        "torghut_trading_tca_order_count 0.0",
        "torghut_trading_tca_avg_slippage_bps 0.0",
        "torghut_trading_tca_avg_shortfall_notional 0.0",
    }


def test_signal_continuity_series_per_lane(client, three_lanes):
    LaneState.objects.create(account_label="fresh")  # no cycle yet: no market sample
    assert _gauges(
        client,
        "torghut_trading_market_session_open",
        "torghut_trading_signal_continuity_actionable",
        "torghut_trading_no_signal_reason_streak",
    ) == {
        'torghut_trading_market_session_open{lane="paper"} 1.0',
        'torghut_trading_market_session_open{lane="paper-2"} 1.0',
        'torghut_trading_market_session_open{lane="paper-3"} 0.0',
        'torghut_trading_signal_continuity_actionable{lane="paper"} 0.0',
        'torghut_trading_signal_continuity_actionable{lane="paper-2"} 1.0',
        # closed market, expected reason? `no_signals_in_window` is not expected here: actionable
        'torghut_trading_signal_continuity_actionable{lane="paper-3"} 1.0',
        'torghut_trading_signal_continuity_actionable{lane="fresh"} 0.0',
        'torghut_trading_no_signal_reason_streak{lane="paper-2",reason="cursor_tail_stable"} 3.0',
        'torghut_trading_no_signal_reason_streak{lane="paper-3",reason="no_signals_in_window"} 50.0',
    }


def test_status_query_count_is_bounded(reader, three_lanes, django_assert_num_queries):
    with time_machine.travel(NOW, tick=False):
        reader.get("/trading/status")  # warm the TCA summary cache
        # the lane roll-ups reuse the rows the per-lane blocks read; the autonomy and
        # evidence_continuity blocks add one query each; the safety row is read once and the
        # order feed's window in one query (14 before); TRADING_STATUS_CACHE_SECONDS is 0 here
        with django_assert_num_queries(12):
            reader.get("/trading/status")


@pytest.fixture
def ch_server():
    from tests.servers.clickhouse_server import ClickHouseServer

    server = ClickHouseServer(user="torghut", password="s3cret").start()
    yield server
    server.stop()


def _health(client) -> tuple[int, dict]:
    response = client.get("/trading/health")
    return response.status_code, response.json()


def test_health_needs_a_beat_heartbeat_as_the_original_needed_its_scheduler(client, settings):
    settings.TRADING_SIGNAL_SOURCE = "replay"
    settings.TRADING_LANES = []
    heartbeat_record(kind=HeartbeatKind.CELERY_WORKER, name="w1", interval_seconds=60)
    code, body = _health(client)
    assert (code, body["status"], body["scheduler"]) == (
        503,
        "degraded",
        {"ok": False, "beats": []},
    )
    assert "clickhouse" not in body["dependencies"]  # not the signal source: not a dependency
    with time_machine.travel(NOW, tick=False):
        heartbeat_record(kind=HeartbeatKind.CELERY_BEAT, name="beat", interval_seconds=60)
    with time_machine.travel(NOW + timedelta(seconds=30), tick=False):
        code, body = _health(client)
    assert (code, body["status"]) == (200, "ok")
    assert body["scheduler"] == {
        "ok": True,
        "beats": [{"name": "beat", "state": "running", "age_seconds": 30.0}],
    }
    # three intervals without a write: the beat reads dead
    with time_machine.travel(NOW + timedelta(seconds=180), tick=False):
        code, body = _health(client)
    assert (code, body["scheduler"]["ok"], body["scheduler"]["beats"][0]["state"]) == (
        503,
        False,
        "dead",
    )


def test_health_checks_clickhouse_when_it_is_the_signal_source(client, settings, ch_server):
    settings.TRADING_SIGNAL_SOURCE = "clickhouse"
    settings.TRADING_LANES = []
    settings.TA_CLICKHOUSE_URL = ch_server.url
    settings.TA_CLICKHOUSE_USERNAME = "torghut"
    settings.TA_CLICKHOUSE_PASSWORD = "s3cret"
    heartbeat_record(kind=HeartbeatKind.CELERY_WORKER, name="w1", interval_seconds=60)
    heartbeat_record(kind=HeartbeatKind.CELERY_BEAT, name="beat", interval_seconds=60)
    code, body = _health(client)
    assert (code, body["dependencies"]["clickhouse"]) == (200, {"ok": True})
    assert ch_server.queries[-1:] == ["SELECT 1 AS ok FORMAT JSONEachRow"]
    settings.TA_CLICKHOUSE_PASSWORD = "wrong"
    code, body = _health(client)
    assert (code, body["status"], body["dependencies"]["clickhouse"]) == (
        503,
        "degraded",
        {"ok": False, "error": "ClickHouseError", "status": 401},
    )
    ch_server.stop()
    settings.TA_CLICKHOUSE_PASSWORD = "s3cret"
    code, body = _health(client)
    assert (code, body["dependencies"]["clickhouse"]) == (
        503,
        {"ok": False, "error": "ClickHouseError", "status": None},
    )
