"""Per-strategy books in real trade cycles on the simulated broker over replayed signals: two
strategies on one symbol, each selling only what it bought, and the reconcile check against the
broker's positions (one incident per lane and symbol, resolved when the numbers agree again)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from trading.brokers.simulated import SimulatedBroker
from trading.models import Incident, Strategy, TradeCursor, TradeDecision
from trading.selectors.books import lane_books
from trading.services.cycle import trading_cycle_run
from trading.services.reconcile import reconcile_lane
from trading.simbroker.models import SimPosition
from trading.tests.cycle.conftest import REPLAY_START, write_signals

pytestmark = pytest.mark.django_db


def run(seconds: int):
    return trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=seconds))


def broker_positions() -> dict[str, Decimal]:
    return {p.symbol: p.qty for p in SimulatedBroker("paper").list_positions()}


def book_positions() -> dict[tuple[str | None, str], Decimal]:
    return {
        (line.strategy, line.symbol): line.position for line in lane_books(account_label="paper")
    }


def gauge(symbol: str) -> float | None:
    return REGISTRY.get_sample_value(
        "torghut_trading_book_mismatch", {"account": "paper", "symbol": symbol}
    )


@pytest.fixture
def two_strategies(settings, tmp_path):
    from tests.conftest import use_replay_trading

    rows = [
        ("2026-03-03T14:31:00Z", "AAPL", 1, "100.00", "1.2", "0.5", "20"),  # both buy
        ("2026-03-03T14:32:00Z", "AAPL", 2, "100.00", "0.1", "0.1", "50"),  # fills the buys
        ("2026-03-03T14:33:00Z", "AAPL", 3, "50.00", "-0.2", "0.1", "75"),  # only b sells
        ("2026-03-03T14:34:00Z", "AAPL", 4, "50.00", "0.1", "0.1", "50"),  # fills the sell
    ]
    use_replay_trading(settings, write_signals(tmp_path / "signals.csv", rows))
    settings.TRADING_RECONCILE_MS = 0  # a fresh account snapshot every cycle
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    # a sells only above RSI 90 (never here); b sells above 65
    Strategy.objects.create(
        name="a",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        max_notional_per_trade=Decimal(1000),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 90},
    )
    Strategy.objects.create(
        name="b",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        max_notional_per_trade=Decimal(500),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
    )


def test_a_strategys_sell_closes_only_its_own_position(two_strategies):
    run(30)
    run(90)
    assert broker_positions() == {"AAPL": Decimal(15)}
    assert book_positions() == {("a", "AAPL"): Decimal(10), ("b", "AAPL"): Decimal(5)}
    run(150)
    sell = TradeDecision.objects.get(action="sell")
    # b's budget sizes 500 / 50 = 10; b holds 5 of the account's 15, so it sells 5
    assert (sell.strategy.name, sell.status, sell.qty) == ("b", "submitted", Decimal(5))
    sizing = next(v for v in sell.gate_verdicts if v["gate"] == "sizing")["details"]
    assert (Decimal(sizing["sized_qty"]), Decimal(sizing["closing_long_qty"])) == (
        Decimal(10),
        Decimal(5),
    )
    run(210)
    assert broker_positions() == {"AAPL": Decimal(10)}
    assert book_positions() == {("a", "AAPL"): Decimal(10), ("b", "AAPL"): Decimal(0)}
    (b_line,) = [x for x in lane_books(account_label="paper") if x.strategy == "b"]
    # b bought 5 at 100.05 (5 bps of simulated slippage), sold 5 at 49.97: 5 x (49.97 - 100.05)
    assert (b_line.avg_cost, b_line.realised_pnl) == (None, Decimal("-250.400000"))

    result = reconcile_lane(account_label="paper")
    assert result.errors == 0
    assert Incident.objects.filter(kind="book_mismatch").count() == 0
    assert gauge("AAPL") == 0.0


def test_a_fill_our_executions_do_not_know_opens_one_incident_until_the_books_agree(
    two_strategies,
):
    run(30)
    run(90)
    reconcile_lane(account_label="paper")
    assert Incident.objects.filter(kind="book_mismatch").count() == 0

    # a fill applied at the broker that no execution of ours knows of
    SimPosition.objects.filter(symbol="AAPL").update(qty=Decimal(18))
    reconcile_lane(account_label="paper")
    reconcile_lane(account_label="paper")  # the next check finds it open: still one
    incident = Incident.objects.get(kind="book_mismatch")
    assert (incident.account_label, incident.symbol, incident.resolved_at) == (
        "paper",
        "AAPL",
        None,
    )
    assert incident.snapshot == {
        "account_label": "paper",
        "symbol": "AAPL",
        "broker_qty": "18.00000000",
        "books_qty": "15.00000000",
        "difference": "3.00000000",
        "strategies": {"a": "10.00000000", "b": "5.00000000"},
        "unattributed": "0",
    }
    assert gauge("AAPL") == 3.0

    SimPosition.objects.filter(symbol="AAPL").update(qty=Decimal(15))
    reconcile_lane(account_label="paper")
    incident.refresh_from_db()
    assert incident.resolved_at is not None
    assert gauge("AAPL") == 0.0
    # a later disagreement opens a new incident (the resolved one stays resolved)
    SimPosition.objects.filter(symbol="AAPL").update(qty=Decimal(14))
    reconcile_lane(account_label="paper")
    assert Incident.objects.filter(kind="book_mismatch", resolved_at__isnull=True).count() == 1
    assert Incident.objects.filter(kind="book_mismatch").count() == 2
    assert gauge("AAPL") == -1.0


def test_a_resting_sell_is_not_sold_again_by_the_next_cycle(settings, tmp_path):
    from tests.conftest import use_replay_trading

    # one signal a cycle; the two sells share a minute, so the first sell sees no newer price
    # and is still open at the broker when the second sell signal arrives
    rows = [
        ("2026-03-03T14:31:00Z", "AAPL", 1, "100.00", "1.2", "0.5", "20"),
        ("2026-03-03T14:32:00Z", "AAPL", 2, "100.00", "0.1", "0.1", "50"),
        ("2026-03-03T14:33:00Z", "AAPL", 3, "50.00", "-0.2", "0.1", "75"),
        ("2026-03-03T14:33:00Z", "AAPL", 4, "50.00", "-0.2", "0.1", "75"),
    ]
    use_replay_trading(settings, write_signals(tmp_path / "signals.csv", rows))
    settings.TRADING_RECONCILE_MS = 0
    settings.TRADING_SIGNAL_BATCH_SIZE = 1
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    Strategy.objects.create(
        name="b",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        max_notional_per_trade=Decimal(500),
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
    )
    for seconds in (30, 90, 150, 151):
        run(seconds)
    first, second = TradeDecision.objects.filter(action="sell").order_by("signal_seq")
    assert (first.status, first.qty) == ("submitted", Decimal(5))
    assert (second.status, second.reject_reason) == ("rejected", "shorts_not_allowed")
    open_sells = [o for o in SimulatedBroker("paper").list_orders(status="all") if o.side == "sell"]
    assert [(o.qty, o.status) for o in open_sells] == [(Decimal(5), "accepted")]
