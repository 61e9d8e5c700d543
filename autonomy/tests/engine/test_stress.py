"""Each stress case changes what it should; fragility is defined as documented."""

from dataclasses import replace

import numpy as np
import pytest

from autonomy.engine.backtest import BacktestConfig, CostModel, Sizing, run_backtest
from autonomy.engine.data import frame_from_bars, frame_from_rows
from autonomy.engine.stress import (
    StressSettings,
    fragility,
    fragility_state,
    halt_window,
    run_stress,
    scale_volatility,
    stressed_inputs,
)
from trading.strategies.registry import get_strategy

from .helpers import (
    LEGACY_LOOSE,
    MINUTE_NS,
    START_NS,
    ScriptedStrategy,
    closes,
    scripted_frame,
    signal_rows,
)


def bar_frame(n=4000):
    return frame_from_bars(START_NS + np.arange(n) * MINUTE_NS, closes(n, 8), symbol="SYN")


def test_report_has_the_four_cases():
    frame = bar_frame()
    calls = []
    report = run_stress(
        frame,
        get_strategy("legacy_macd_rsi"),
        LEGACY_LOOSE,
        progress=lambda d, t, label: calls.append((d, t, label)),
    )
    assert [c.case for c in report.cases] == ["spread", "volatility", "liquidity", "halt"]
    assert calls == [
        (1, 4, "stress spread"),
        (2, 4, "stress volatility"),
        (3, 4, "stress liquidity"),
        (4, 4, "stress halt"),
    ]
    assert report.base == run_backtest(frame, get_strategy("legacy_macd_rsi"), LEGACY_LOOSE).metrics
    for case in report.cases:
        assert case.pnl_delta == case.metrics.net_pnl - report.base.net_pnl
        assert (case.fragility_score, case.fragility_state) == fragility(report.base, case.metrics)
    worst = max(c.fragility_score for c in report.cases)
    assert report.fragility_score == worst
    assert report.as_dict()["fragility_state_rank"] == report.fragility_state_rank


def test_spread_and_liquidity_raise_costs_not_decisions():
    frame = bar_frame()
    report = run_stress(frame, get_strategy("legacy_macd_rsi"), LEGACY_LOOSE)
    base = report.base
    spread, liquidity = report.cases[0], report.cases[2]
    for case in (spread, liquidity):
        assert case.metrics.decision_count == base.decision_count
        assert case.metrics.trade_count == base.trade_count
        assert case.metrics.total_cost > base.total_cost
        assert case.metrics.net_pnl < base.net_pnl
        assert case.fragility_score > 0
    # 5 bps slippage x3 plus half of a 5 bps spread floor: 17.5 bps against the taker
    assert spread.details == {"spread_bps": 5.0, "slippage_bps": 15.0}
    assert liquidity.details == {"impact_bps": 10.0, "max_fill_qty": None}


def test_liquidity_fill_cap():
    frame = scripted_frame([10, 10, 10, 10], [1, 1, -1, 0])
    config = BacktestConfig(sizing=Sizing(qty=3))
    s_frame, s_config, _ = stressed_inputs(
        "liquidity", frame, config, StressSettings(liquidity_max_fill_qty=2)
    )
    result = run_backtest(s_frame, ScriptedStrategy(), {}, s_config)
    assert result.fill_qty.tolist() == [2, 2, -2]


def test_volatility_scales_returns_and_recomputes_derived_features():
    price = closes(500, 3)
    scaled = scale_volatility(price, 2.0)
    r, r2 = np.diff(np.log(price)), np.diff(np.log(scaled))
    np.testing.assert_allclose(r2, r.mean() + 2 * (r - r.mean()), atol=1e-12)
    assert scaled[0] == price[0]
    assert scaled[-1] == pytest.approx(price[-1], rel=1e-9)  # same drift, same end point

    frame = bar_frame()
    s_frame, _, details = stressed_inputs("volatility", frame, BacktestConfig(), StressSettings())
    assert details == {"multiplier": 2.0, "features_recomputed": True}
    fresh = frame_from_bars(frame.ts, s_frame.price, symbol="SYN")
    for key, values in fresh.features.items():
        np.testing.assert_array_equal(s_frame.features[key], values)

    recorded = frame_from_rows(signal_rows({"AAPL": 1}, 300)).frame
    s_rec, _, details = stressed_inputs("volatility", recorded, BacktestConfig(), StressSettings())
    assert details["features_recomputed"] is False
    assert s_rec.features is recorded.features
    assert not np.array_equal(s_rec.price, recorded.price)


def test_halt_drops_the_window_and_fills_at_the_resume_price():
    prices = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    frame = scripted_frame(prices, [0, 0, 0, 1, 1, 1, 0, 0, -1, 0])
    settings = StressSettings(halt_start_fraction=0.4, halt_fraction=0.3)
    start, end = halt_window(frame, settings)
    # 9 minutes of data: the halt starts 3.6 min in and lasts 2.7 min, over rows 4, 5 and 6
    t0 = int(frame.ts[0])
    assert (start, end) == (t0 + 216 * 10**9, t0 + 378 * 10**9)
    config = BacktestConfig(costs=CostModel(slippage_bps=0.0))
    s_frame, s_config, details = stressed_inputs("halt", frame, config, settings)
    assert details["halted_rows"] == 3
    result = run_backtest(s_frame, ScriptedStrategy(), {}, s_config)
    trades = result.trades(s_frame)
    # the buy decided at row 3 fills at the first price after the halt (row 7, 17)
    assert [(t.ts_ns, t.side, t.price) for t in trades] == [
        (int(frame.ts[7]), "buy", 17.0),
        (int(frame.ts[9]), "sell", 19.0),
    ]
    assert all(not (start <= t.ts_ns < end) for t in trades)
    assert result.metrics.decision_count == 2
    # held from the resume row: marked at 17 (fill), 18, then sold at 19
    assert result.equity.tolist() == [100000, 100000, 100000, 100000, 100000, 100001, 100002]


def test_halt_on_real_data_has_no_fills_in_the_window():
    frame = bar_frame()
    st = StressSettings()
    start, end = halt_window(frame, st)
    s_frame, s_config, _ = stressed_inputs("halt", frame, BacktestConfig(), st)
    result = run_backtest(s_frame, get_strategy("legacy_macd_rsi"), LEGACY_LOOSE, s_config)
    fill_ts = s_frame.ts[result.fill_rows]
    assert result.metrics.trade_count > 0
    assert not np.any((fill_ts >= start) & (fill_ts < end))
    halted = int(((frame.ts >= start) & (frame.ts < end)).sum())
    assert halted > 0
    assert len(s_frame) == len(frame) - halted


def test_halt_on_sparse_signals_halts_no_row():
    # three signals over 3 minutes: a 9-second halt falls between two of them
    frame = scripted_frame([100, 101, 102], [1, -1, 0], ts=[0, MINUTE_NS, 3 * MINUTE_NS])
    start, end = halt_window(frame, StressSettings())
    assert (start - int(frame.ts[0]), end - start) == (90 * 10**9, 9 * 10**9)
    s_frame, _, details = stressed_inputs("halt", frame, BacktestConfig(), StressSettings())
    assert details["halted_rows"] == 0
    assert len(s_frame) == 3


@pytest.mark.parametrize(
    ("base_net", "base_cost", "stressed_net", "score", "state"),
    [
        (100.0, 20.0, 100.0, 0.0, "normal"),
        (100.0, 20.0, 130.0, 0.0, "normal"),
        (100.0, 20.0, 70.0, 0.25, "elevated"),
        (100.0, 20.0, 50.0, 50 / 120, "elevated"),
        (100.0, 20.0, 40.0, 0.5, "stress"),
        (100.0, 20.0, -100.0, 1.0, "crisis"),
        (0.0, 0.0, -1.0, 1.0, "crisis"),
    ],
)
def test_fragility(base_net, base_cost, stressed_net, score, state):
    base = run_backtest(scripted_frame([1, 1], [0, 0]), ScriptedStrategy(), {}).metrics
    b = replace(base, net_pnl=base_net, total_cost=base_cost)
    s = replace(base, net_pnl=stressed_net)
    got_score, got_state = fragility(b, s)
    assert got_score == pytest.approx(score, rel=1e-12)
    assert got_state == state
    assert fragility_state(0.85) == "crisis"
    assert fragility_state(0.8499) == "stress"


def test_unknown_case():
    with pytest.raises(ValueError, match="unknown stress case"):
        stressed_inputs("tsunami", bar_frame(100), BacktestConfig(), StressSettings())
