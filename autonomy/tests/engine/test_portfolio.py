"""Several strategies as one portfolio (autonomy/engine/portfolio.py): one strategy without caps is
the engine's backtest exactly; independent books add up; the allocator's caps bound every
position at every price of the window."""

from __future__ import annotations

import numpy as np
import pytest

from autonomy.engine.backtest import BacktestConfig, CostModel, Sizing, simulate, strategy_actions
from autonomy.engine.data import frame_from_rows
from autonomy.engine.portfolio import AllocatorCaps, Leg, leg_actions, simulate_book
from trading.strategies.registry import get_strategy

from .helpers import LEGACY_LOOSE, TSMOM_LOOSE, signal_rows

COSTS = CostModel()
CASH = 100_000.0


@pytest.fixture(scope="module")
def frame():
    return frame_from_rows(signal_rows({"AAA": 1, "BBB": 2}, 600), source="file").frame


def legacy(name: str = "legacy", symbols: tuple[str, ...] = (), qty: float = 10.0) -> Leg:
    return Leg(name, get_strategy("legacy_macd_rsi"), LEGACY_LOOSE, Sizing(qty=qty), symbols)


def tsmom(name: str = "tsmom", symbols: tuple[str, ...] = ()) -> Leg:
    return Leg(name, get_strategy("intraday_tsmom"), TSMOM_LOOSE, Sizing(qty=5.0), symbols)


def test_one_strategy_without_caps_is_the_engine_backtest(frame):
    leg = legacy()
    book = simulate_book(frame, [leg], costs=COSTS, starting_cash=CASH)
    alone = simulate(
        frame,
        strategy_actions(frame, leg.strategy, leg.params),
        BacktestConfig(costs=COSTS, sizing=leg.sizing, starting_cash=CASH),
    )
    assert book.result.metrics == alone.metrics
    np.testing.assert_array_equal(book.result.equity, alone.equity)
    assert book.legs == {"legacy": alone.metrics}


def test_independent_books_add_up(frame):
    a, b = legacy(symbols=("AAA",)), tsmom(symbols=("AAA", "BBB"))
    book = simulate_book(frame, [a, b], costs=COSTS, starting_cash=CASH)
    alone = {
        leg.name: simulate(
            frame,
            leg_actions(frame, leg),
            BacktestConfig(costs=COSTS, sizing=leg.sizing, starting_cash=CASH),
        )
        for leg in (a, b)
    }
    m = book.result.metrics
    assert m.trade_count == sum(r.metrics.trade_count for r in alone.values()) > 0
    assert m.decision_count == sum(r.metrics.decision_count for r in alone.values())
    assert m.net_pnl == pytest.approx(sum(r.metrics.net_pnl for r in alone.values()), abs=1e-6)
    expected = CASH + sum(r.equity - CASH for r in alone.values())
    np.testing.assert_allclose(book.result.equity, expected, atol=1e-6)
    assert book.legs["legacy"].net_pnl == pytest.approx(alone["legacy"].metrics.net_pnl, abs=1e-6)
    # fills in row order, each on a row of its symbol after its decision
    rows = book.result.fill_rows
    assert (np.diff(rows) >= 0).all() and (book.result.fill_decision_rows < rows).all()


def test_caps_bound_every_position_at_every_price(frame):
    caps = AllocatorCaps(strategy_notional={"legacy": 3_000.0}, symbol_notional={"AAA": 2_000.0})
    a, b = legacy(qty=20.0), legacy(name="legacy-2", qty=20.0, symbols=("AAA",))
    book = simulate_book(frame, [a, b], costs=COSTS, starting_cash=CASH, caps=caps)
    aaa = frame.symbols.index("AAA")
    top = {s: float(frame.price[frame.symbol == i].max()) for i, s in enumerate(frame.symbols)}
    # legacy: min(3000 / 2 symbols, 2000 / 2 strategies on AAA) on AAA, 1500 on BBB;
    # legacy-2: 2000 / 2 on AAA
    assert book.position_caps == {
        "legacy": {"AAA": float(int(1000 / top["AAA"])), "BBB": float(int(1500 / top["BBB"]))},
        "legacy-2": {"AAA": float(int(1000 / top["AAA"]))},
    }
    held = book.result.held
    on_aaa = frame.symbol == aaa
    assert (np.abs(held[on_aaa] * frame.price[on_aaa]) <= 2_000.0 + 1e-9).all()
    assert held[on_aaa].max() > 0
    assert book.result.metrics.rejected_count > 0  # orders beyond the caps were refused
    uncapped = simulate_book(frame, [a, b], costs=COSTS, starting_cash=CASH)
    assert uncapped.result.held[on_aaa].max() > held[on_aaa].max()


def test_pct_equity_capacity_and_groups_share_out(frame):
    caps = AllocatorCaps(
        max_symbol_pct_equity=0.01,
        symbol_groups={"AAA": "g", "BBB": "g"},
        group_notional={"g": 1_200.0},
    )
    book = simulate_book(frame, [legacy(qty=50.0)], costs=COSTS, starting_cash=CASH, caps=caps)
    top = {s: float(frame.price[frame.symbol == i].max()) for i, s in enumerate(frame.symbols)}
    # capacity 1% of 100k = 1000 per symbol, the group 1200 over 2 pairs = 600
    assert book.position_caps == {"legacy": {s: float(int(600 / top[s])) for s in top}}
