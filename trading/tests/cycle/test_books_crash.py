"""The per-strategy books survive a kill -9: they are read from the executions, so a trade cycle
killed with SIGKILL right after the broker accepted its order (before our database learnt of
it), then reconciled and run again, leaves books that equal the broker's positions, the fill
attributed once, and no incident open."""

from __future__ import annotations

import signal
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from tests.conftest import paper_lane
from trading.brokers.simulated import SimulatedBroker
from trading.models import Execution, Incident, LaneState, Strategy, TradeCursor
from trading.selectors.books import lane_books
from trading.services.reconcile import reconcile_lane
from trading.tests.cycle.conftest import write_signals
from trading.tests.cycle.test_crash_recovery import _cycle, _env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def lane_with_a_buy(tmp_path) -> Path:
    path = write_signals(
        tmp_path / "signals.csv",
        [
            ("2026-03-03T14:31:00Z", "AAPL", 1, "100.00", "1.2", "0.5", "20"),  # buy 10
            ("2026-03-03T14:32:00Z", "AAPL", 2, "100.00", "0.1", "0.1", "50"),  # a later price
        ],
    )
    Strategy.objects.create(
        name="macd",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        base_timeframe="1Min",
        max_notional_per_trade=1000,
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
    )
    anchor = timezone.now() - timedelta(seconds=30)  # at 1000x every row has been "played"
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": anchor.isoformat()}
    )
    return path


def _books_by_symbol() -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for line in lane_books(account_label="paper"):
        totals[line.symbol] = totals.get(line.symbol, Decimal(0)) + line.position
    return {symbol: qty for symbol, qty in totals.items() if qty}


def _broker_positions() -> dict[str, Decimal]:
    return {p.symbol: p.qty for p in SimulatedBroker("paper").list_positions()}


def test_books_equal_the_broker_after_a_kill_at_the_worst_moment(lane_with_a_buy, settings):
    crashed = _cycle(_env(lane_with_a_buy, TORGHUT_FAULT_INJECT="after_broker_submit"))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert Execution.objects.count() == 0  # the broker holds an order our database never saw

    settings.TRADING_LANES = [paper_lane()]
    reconcile_lane(account_label="paper")
    assert Execution.objects.get().status == "accepted"  # adopted, not filled yet
    assert _books_by_symbol() == _broker_positions() == {}
    assert not Incident.objects.filter(kind="book_mismatch").exists()

    # the lease of the killed process lapses; the lane runs the same signals again and does
    # not send the order a second time; then the market moves and the order fills
    LaneState.objects.filter(account_label="paper").update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    rerun = _cycle(_env(lane_with_a_buy))
    assert rerun.returncode == 0, rerun.stderr
    assert len(SimulatedBroker("paper").list_orders(status="all")) == 1
    later = timezone.now() + timedelta(minutes=1)  # the replay stamps its rows near now
    SimulatedBroker("paper").observe_prices({"AAPL": (Decimal(101), later)})
    reconcile_lane(account_label="paper")
    assert _broker_positions() == {"AAPL": Decimal(10)}
    assert _books_by_symbol() == {"AAPL": Decimal(10)}
    (line,) = lane_books(account_label="paper")
    assert (line.strategy, line.position, line.buy_qty, line.sell_qty) == (
        "macd",
        Decimal(10),
        Decimal(10),
        Decimal(0),
    )
    assert not Incident.objects.filter(kind="book_mismatch").exists()
