"""Fold boundaries, per-fold evaluation and the gate-1 summary."""

import math

import numpy as np
import pytest

from autonomy.engine.backtest import BacktestConfig, run_backtest, simulate, strategy_actions
from autonomy.engine.data import frame_from_bars
from autonomy.engine.walkforward import (
    Fold,
    make_folds,
    make_time_folds,
    parameter_sweep,
    summarize,
    walk_forward,
)
from trading.strategies.registry import get_strategy

from .helpers import LEGACY_LOOSE, MINUTE_NS, START_NS, closes


def bounds(folds):
    return [(f.train_start, f.train_stop, f.test_start, f.test_stop) for f in folds]


def test_rolling_and_anchored_boundaries():
    assert bounds(make_folds(100, n_folds=4, train_bars=20, mode="rolling")) == [
        (0, 20, 20, 40),
        (20, 40, 40, 60),
        (40, 60, 60, 80),
        (60, 80, 80, 100),
    ]
    assert bounds(make_folds(100, n_folds=4, train_bars=20, mode="anchored")) == [
        (0, 20, 20, 40),
        (0, 40, 40, 60),
        (0, 60, 60, 80),
        (0, 80, 80, 100),
    ]
    # the last fold takes the remainder; explicit test windows leave it out
    assert bounds(make_folds(103, n_folds=4, train_bars=20))[-1] == (60, 80, 80, 103)
    assert bounds(make_folds(103, n_folds=2, train_bars=30, test_bars=10)) == [
        (0, 30, 30, 40),
        (10, 40, 40, 50),
    ]
    with pytest.raises(ValueError, match="cannot hold"):
        make_folds(50, n_folds=20, train_bars=40)


def test_time_folds():
    ts = START_NS + np.arange(100, dtype=np.int64) * MINUTE_NS
    rolling = make_time_folds(ts, train_ns=20 * MINUTE_NS, test_ns=30 * MINUTE_NS)
    assert bounds(rolling) == [(0, 20, 20, 50), (30, 50, 50, 80), (60, 80, 80, 100)]
    anchored = make_time_folds(ts, train_ns=20 * MINUTE_NS, test_ns=30 * MINUTE_NS, mode="anchored")
    assert bounds(anchored) == [(0, 20, 20, 50), (0, 50, 50, 80), (0, 80, 80, 100)]
    # two symbols share each minute: a window holds both symbols' rows
    both = make_time_folds(np.repeat(ts, 2), train_ns=0, test_ns=50 * MINUTE_NS)
    assert bounds(both) == [(0, 0, 0, 100), (100, 100, 100, 200)]


def bar_frame(n=6000, seed=5):
    return frame_from_bars(START_NS + np.arange(n) * MINUTE_NS, closes(n, seed), symbol="SYN")


def test_folds_are_independent_backtests_of_their_windows():
    frame = bar_frame()
    strategy = get_strategy("legacy_macd_rsi")
    folds = make_folds(len(frame), n_folds=5, train_bars=1000, mode="rolling")
    result = walk_forward(frame, strategy, folds=folds, param_grid=[LEGACY_LOOSE], mode="rolling")
    actions = strategy_actions(frame, strategy, LEGACY_LOOSE)
    for fold_result in result.folds:
        f = fold_result.fold
        alone = simulate(
            frame.slice(f.test_start, f.test_stop),
            actions[f.test_start : f.test_stop],
            BacktestConfig(),
        )
        assert fold_result.metrics == alone.metrics
        assert fold_result.params_index == 0
        assert fold_result.train_objective is None
    # decisions over the folds are the whole run's decisions over the tested rows
    assert result.summary.decision_count == int(np.count_nonzero(actions[1000:]))
    s = result.summary
    nets = [r.metrics.net_pnl for r in result.folds]
    assert s.fold_count == 5
    assert s.net_pnl == pytest.approx(math.fsum(nets), abs=1e-9)
    assert s.trade_count == sum(r.metrics.trade_count for r in result.folds)
    assert s.negative_fold_count == sum(1 for x in nets if x < 0)
    assert s.negative_fold_ratio == s.negative_fold_count / 5
    assert s.net_pnl_mean == pytest.approx(np.mean(nets), rel=1e-12)
    assert s.net_pnl_cv == pytest.approx(np.std(nets) / abs(np.mean(nets)), rel=1e-12)
    assert s.max_drawdown == max(r.metrics.max_drawdown for r in result.folds)


def test_one_fold_over_everything_is_the_whole_backtest():
    frame = bar_frame(2000)
    strategy = get_strategy("legacy_macd_rsi")
    folds = [Fold(0, 0, 0, 0, len(frame))]
    result = walk_forward(frame, strategy, folds=folds, param_grid=[LEGACY_LOOSE])
    assert result.folds[0].metrics == run_backtest(frame, strategy, LEGACY_LOOSE).metrics


def test_parameters_are_chosen_on_the_train_window():
    frame = bar_frame()
    strategy = get_strategy("legacy_macd_rsi")
    grid = [LEGACY_LOOSE, {"buy_rsi_threshold": 30, "sell_rsi_threshold": 70}, {}]
    folds = make_folds(len(frame), n_folds=3, train_bars=1500, mode="anchored")
    result = walk_forward(frame, strategy, folds=folds, param_grid=grid)
    for fold_result in result.folds:
        f = fold_result.fold
        train = frame.slice(f.train_start, f.train_stop)
        scores = [run_backtest(train, strategy, p).metrics.net_pnl for p in grid]
        assert fold_result.params_index == int(np.argmax(scores))
        assert fold_result.train_objective == max(scores)


def test_summary_of_no_folds_and_zero_mean():
    empty = summarize([])
    assert (empty.fold_count, empty.negative_fold_ratio, empty.net_pnl_cv) == (0, 0.0, None)


def test_parameter_sweep_reports_progress():
    frame = bar_frame(1500)
    calls = []
    sets = [{"buy_rsi_threshold": 30 + i, "sell_rsi_threshold": 70 - i} for i in range(4)]
    metrics = parameter_sweep(
        frame,
        get_strategy("legacy_macd_rsi"),
        sets,
        progress=lambda done, total, label: calls.append((done, total, label)),
    )
    assert calls == [(i, 4, f"sweep {i}/4") for i in range(1, 5)]
    assert [m.decision_count for m in metrics] == [
        run_backtest(frame, get_strategy("legacy_macd_rsi"), p).metrics.decision_count for p in sets
    ]
