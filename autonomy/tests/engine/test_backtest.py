"""Fills, positions, costs and metrics on hand-computed series."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from autonomy.engine.backtest import (
    BacktestConfig,
    CostModel,
    Sizing,
    positions_from_orders,
    run_backtest,
    simulate,
)
from autonomy.engine.data import frame_from_rows, ns_to_datetime
from trading.strategies.registry import get_strategy

from .helpers import ScriptedStrategy, scripted_frame

SAMPLE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "walkforward_signals.json"


def test_hand_computed_series():
    frame = scripted_frame([10, 11, 12, 11, 13, 12], [1, 1, -1, 0, -1, 1])
    config = BacktestConfig(
        costs=CostModel(spread_bps=100.0, slippage_bps=0.0, fee_per_share=0.01),
        starting_cash=1000.0,
    )
    result = run_backtest(frame, ScriptedStrategy(), {}, config)
    m = result.metrics
    assert result.orders.tolist() == [1, 1, -1, 0, -1, 1]
    assert result.held.tolist() == [0, 1, 2, 1, 1, 0]
    assert result.fill_rows.tolist() == [1, 2, 3, 5]
    assert result.fill_decision_rows.tolist() == [0, 1, 2, 4]
    assert result.fill_qty.tolist() == [1, 1, -1, -1]
    # next price ± half the 100 bps spread, buys rounded up and sells down to the cent
    assert result.fill_price.tolist() == [11.06, 12.06, 10.94, 11.94]
    assert result.fill_fee.tolist() == [0.01] * 4
    np.testing.assert_allclose(
        result.equity, [1000, 999.93, 1000.86, 998.79, 1000.79, 999.72], rtol=0, atol=1e-9
    )
    assert (m.decision_count, m.buy_decisions, m.sell_decisions) == (5, 3, 2)
    assert (m.order_count, m.rejected_count, m.unfilled_count, m.trade_count) == (5, 0, 1, 4)
    assert m.filled_qty == 4
    assert m.traded_notional == pytest.approx(46.0, abs=1e-12)
    assert m.gross_pnl == pytest.approx(0.0, abs=1e-12)
    assert m.net_pnl == pytest.approx(-0.28, abs=1e-9)
    assert m.total_cost == pytest.approx(0.28, abs=1e-12)
    assert m.fees == pytest.approx(0.04, abs=1e-12)
    assert m.cost_bps == pytest.approx(0.28 / 46.0 * 1e4, rel=1e-12)
    assert m.max_drawdown == pytest.approx(2.07, abs=1e-9)
    assert m.max_drawdown_pct == pytest.approx(2.07 / 1000.86, rel=1e-9)
    assert m.turnover_ratio == pytest.approx(0.046, rel=1e-12)
    assert m.exposure == pytest.approx(59 / 6 / 1000, rel=1e-12)
    assert m.time_in_market == pytest.approx(4 / 6, rel=1e-12)
    assert m.gross_pnl - m.net_pnl == pytest.approx(m.total_cost, abs=1e-9)


def test_sells_without_a_position_are_rejected_like_live():
    frame = scripted_frame([10, 10, 10, 10, 10], [-1, 1, -1, -1, 0])
    result = run_backtest(frame, ScriptedStrategy(), {}, BacktestConfig(starting_cash=100.0))
    decisions = result.decisions(frame)
    assert [(d.side, d.status, d.qty, d.reason) for d in decisions] == [
        ("sell", "rejected", 0.0, "shorts_not_allowed"),
        ("buy", "accepted", 1.0, ""),
        ("sell", "accepted", 1.0, ""),
        ("sell", "rejected", 0.0, "shorts_not_allowed"),
    ]
    assert result.metrics.rejected_count == 2
    assert result.metrics.trade_count == 2


def test_shorts_allowed_and_caps():
    frame = scripted_frame([10] * 6, [-1, -1, 1, 1, 1, 0])
    shorts = BacktestConfig(sizing=Sizing(allow_shorts=True, max_position_qty=1))
    result = run_backtest(frame, ScriptedStrategy(), {}, shorts)
    assert result.orders.tolist() == [-1, 0, 1, 1, 0, 0]
    assert [d.reason for d in result.decisions(frame)] == [
        "",
        "position_cap",
        "",
        "",
        "position_cap",
    ]


def test_notional_sizing_and_fill_cap():
    frame = scripted_frame([20, 30, 40, 50], [1, 1, -1, 0])
    config = BacktestConfig(
        costs=CostModel(slippage_bps=0.0),
        sizing=Sizing(max_notional_per_trade=100.0, max_fill_qty=4),
    )
    result = run_backtest(frame, ScriptedStrategy(), {}, config)
    # floor(100/20) = 5 capped to 4, floor(100/30) = 3; the sell of floor(100/40) = 2
    assert result.orders.tolist() == [4, 3, -2, 0]
    assert result.fill_price.tolist() == [30, 40, 50]


def test_multi_symbol_equals_the_symbols_run_alone():
    rng = np.random.default_rng(3)
    n = 400
    codes = rng.integers(0, 3, n)
    prices = np.round(100 + np.cumsum(rng.normal(0, 0.5, n)), 2)
    actions = rng.choice([-1, 0, 0, 1], n)
    frame = scripted_frame(prices, actions, symbols=codes)
    config = BacktestConfig(costs=CostModel(spread_bps=4, fee_bps=1))
    whole = run_backtest(frame, ScriptedStrategy(), {}, config)
    net = gross = cost = 0.0
    trades = 0
    for code in range(3):
        rows = np.flatnonzero(codes == code)
        alone = run_backtest(frame.take(rows), ScriptedStrategy(), {}, config)
        net += alone.metrics.net_pnl
        gross += alone.metrics.gross_pnl
        cost += alone.metrics.total_cost
        trades += alone.metrics.trade_count
        np.testing.assert_array_equal(whole.held[rows], alone.held)
    assert whole.metrics.net_pnl == pytest.approx(net, abs=1e-8)
    assert whole.metrics.gross_pnl == pytest.approx(gross, abs=1e-8)
    assert whole.metrics.total_cost == pytest.approx(cost, abs=1e-10)
    assert whole.metrics.trade_count == trades
    assert np.all(np.diff(whole.fill_rows) > 0)
    # every fill is on the next row of the same symbol as its decision
    for fill, decision in zip(whole.fill_rows, whole.fill_decision_rows, strict=True):
        later = np.flatnonzero(codes[decision + 1 :] == codes[decision])
        assert fill == decision + 1 + later[0]


def loop_positions(orders, lo, hi):
    pos, out = 0.0, []
    for x in orders:
        pos = min(max(pos + x, lo), hi)
        out.append(pos)
    return out


@pytest.mark.parametrize(
    ("lo", "hi"), [(0.0, math.inf), (-math.inf, math.inf), (0.0, 7.0), (-5.0, 5.0), (0.0, 0.0)]
)
def test_position_scan_equals_the_loop(lo, hi):
    rng = np.random.default_rng(11)
    orders = rng.integers(-4, 5, 5000).astype(np.float64)
    assert positions_from_orders(orders, lo, hi).tolist() == loop_positions(orders, lo, hi)


def test_section_8_1_sample_through_legacy_macd_rsi():
    rows = json.loads(SAMPLE.read_text())
    parsed = frame_from_rows(rows)
    params = {"buy_rsi_threshold": 35, "sell_rsi_threshold": 65, "qty": 1}
    result = run_backtest(parsed.frame, get_strategy("legacy_macd_rsi"), params)
    decisions = [
        (ns_to_datetime(d.ts_ns).isoformat(), d.symbol, d.side, d.status, d.qty)
        for d in result.decisions(parsed.frame)
    ]
    assert decisions == [
        ("2026-01-01T00:01:00+00:00", "AAPL", "buy", "accepted", 1.0),
        ("2026-01-01T00:02:00+00:00", "AAPL", "sell", "accepted", 1.0),
        ("2026-01-01T00:04:00+00:00", "AAPL", "buy", "accepted", 1.0),
    ]
    trades = [
        (ns_to_datetime(t.ts_ns).isoformat(), t.side, t.qty, t.price, t.reference_price)
        for t in result.trades(parsed.frame)
    ]
    # 5 bps slippage on the next price: 101 -> 101.0505 rounded up, 102 -> 101.949 rounded down
    assert trades == [
        ("2026-01-01T00:02:00+00:00", "buy", 1.0, 101.06, 101.0),
        ("2026-01-01T00:04:00+00:00", "sell", 1.0, 101.94, 102.0),
    ]
    m = result.metrics
    assert (m.decision_count, m.trade_count, m.unfilled_count) == (3, 2, 1)
    assert m.gross_pnl == pytest.approx(1.0, abs=1e-12)
    assert m.net_pnl == pytest.approx(0.88, abs=1e-9)
    assert m.total_cost == pytest.approx(0.12, abs=1e-12)
    assert m.cost_bps == pytest.approx(0.12 / 203.0 * 1e4, rel=1e-12)


def test_rejects_bad_input():
    frame = scripted_frame([10, 11], [1, 0])
    with pytest.raises(ValueError, match="actions have shape"):
        simulate(frame, np.zeros(3, dtype=np.int8), BacktestConfig())
    bad = scripted_frame([10, math.nan], [1, 0])
    with pytest.raises(ValueError, match="non-finite prices"):
        simulate(bad, np.zeros(2, dtype=np.int8), BacktestConfig())
