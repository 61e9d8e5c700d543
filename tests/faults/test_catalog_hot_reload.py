"""The strategy catalog edited under a running worker: the next trade cycle applies the new file
and goes on (it used to fail on a logging field named like a LogRecord attribute)."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from tests.faults.conftest import beat, signals_csv, tick, trading_env, wait_for
from trading.models import LaneState, Strategy, TradeCursor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]

CATALOG = """strategies:
  - name: macd
    type: legacy_macd_rsi
    version: 1.0.0
    enabled: true
    base_timeframe: 1Min
    max_notional_per_trade: {notional}
    params: {{buy_rsi_threshold: 35, sell_rsi_threshold: 65}}
{extra}"""
TSMOM = """  - name: tsmom
    type: intraday_tsmom
    version: 1.1.0
    enabled: true
    base_timeframe: 1Min
    max_notional_per_trade: 250
"""


def _finished_after(previous):
    state = LaneState.objects.filter(account_label="paper").first()
    if state is None or state.last_cycle_finished_at is None:
        return None
    if previous is not None and state.last_cycle_finished_at <= previous:
        return None
    return state


def test_an_edited_catalog_is_applied_by_the_next_cycle_of_a_running_worker(
    private_redis, workers, tmp_path: Path
):
    catalog = tmp_path / "strategies.yaml"
    catalog.write_text(CATALOG.format(notional=1000, extra=""))
    anchor = timezone.now() - timedelta(seconds=30)
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": anchor.isoformat()}
    )
    env = trading_env(
        signals_csv(tmp_path / "signals.csv"),
        tmp_path,
        private_redis.url,
        TRADING_STRATEGY_CONFIG_PATH=str(catalog),
        TRADING_STRATEGY_RELOAD_SECONDS="1",
    )
    # INFO: the failure was in building the "catalog applied" record, which a worker at its
    # default WARNING level never builds
    worker = workers("w", env, "--loglevel", "INFO")
    client = beat(private_redis.url)
    tick(client, "paper")
    assert wait_for(lambda: _finished_after(None) is not None, 90), worker.log()
    first = _finished_after(None)
    assert first is not None
    assert first.last_cycle_status == "ok", (first.last_error, worker.log())
    assert Strategy.objects.get(name="macd").max_notional_per_trade == Decimal(1000)

    catalog.write_text(CATALOG.format(notional=500, extra=TSMOM))
    time.sleep(1.2)  # TRADING_STRATEGY_RELOAD_SECONDS
    tick(client, "paper")
    assert wait_for(lambda: _finished_after(first.last_cycle_finished_at) is not None, 90)
    second = _finished_after(first.last_cycle_finished_at)
    assert second is not None
    assert second.last_cycle_status in ("ok", "no_signals"), (second.last_error, worker.log())
    assert second.last_error == ""
    assert Strategy.objects.get(name="macd").max_notional_per_trade == Decimal(500)
    assert Strategy.objects.get(name="tsmom").max_notional_per_trade == Decimal(250)
    assert worker.proc.poll() is None
