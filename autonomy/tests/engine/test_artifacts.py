"""Same inputs, config and code: byte-identical artifacts and hashes."""

import hashlib
import io
import math

import numpy as np
import pytest

from autonomy.engine.artifacts import canonical_json, round_sig, sha256_hex
from autonomy.engine.backtest import BacktestConfig, CostModel, run_backtest
from autonomy.engine.data import frame_from_bars, frame_from_rows
from autonomy.engine.progress import fan_out, no_progress, terminal_progress
from autonomy.engine.stress import run_stress
from autonomy.engine.walkforward import make_folds, walk_forward
from trading.strategies.registry import get_strategy

from .helpers import LEGACY_LOOSE, MINUTE_NS, START_NS, closes, signal_rows


def full_run():
    n = 5000
    frame = frame_from_bars(START_NS + np.arange(n) * MINUTE_NS, closes(n, 21), symbol="SYN")
    strategy = get_strategy("legacy_macd_rsi")
    config = BacktestConfig(costs=CostModel(spread_bps=2.0, fee_bps=0.5))
    grid = [LEGACY_LOOSE, {"buy_rsi_threshold": 40, "sell_rsi_threshold": 60}]
    wf = walk_forward(
        frame,
        strategy,
        folds=make_folds(n, n_folds=4, train_bars=1000, mode="rolling"),
        param_grid=grid,
        config=config,
        mode="rolling",
    )
    stress = run_stress(frame, strategy, LEGACY_LOOSE, config=config)
    backtest = run_backtest(frame, strategy, LEGACY_LOOSE, config)
    signals = frame_from_rows(signal_rows({"AAPL": 1, "MSFT": 2}, 400)).frame
    multi = run_backtest(signals, strategy, LEGACY_LOOSE, config)
    return {
        "config": config,
        "walkforward": wf.as_dict(),
        "stress": stress.as_dict(),
        "backtest": backtest.artifact(frame),
        "multi_symbol": multi.artifact(signals, equity_points=50),
    }


def test_two_runs_give_identical_bytes_and_hashes():
    first, second = canonical_json(full_run()), canonical_json(full_run())
    assert first == second
    assert sha256_hex(full_run()) == sha256_hex(full_run()) == hashlib.sha256(first).hexdigest()
    assert b'"trades":[{' in first
    assert len(first) > 10_000


def test_canonical_encoding():
    assert canonical_json({"b": 0.1 + 0.2, "a": [1, np.int64(2), np.float64(1 / 3)]}) == (
        b'{"a":[1,2,0.3333333333],"b":0.3}'
    )
    assert canonical_json({"x": math.nan, "y": -0.0, "z": math.inf, "t": (True, None)}) == (
        b'{"t":[true,null],"x":null,"y":0.0,"z":null}'
    )
    assert round_sig(123456789.123456) == 123456789.1
    assert sha256_hex(b"raw") == hashlib.sha256(b"raw").hexdigest()
    with pytest.raises(TypeError, match="cannot encode"):
        canonical_json({"x": object()})


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_reporters():
    assert terminal_progress(io.StringIO()) is no_progress
    out = Terminal()
    bar = terminal_progress(out, use_tqdm=False)
    bar(1, 4, "fold 1")
    bar(4, 4, "fold 4")
    text = out.getvalue()
    assert text == (
        f"\r{'fold 1':<40} [{'#' * 7}{'-' * 23}] 1/4\r{'fold 4':<40} [{'#' * 30}] 4/4\n"
    )
    tq = Terminal()
    tqdm_bar = terminal_progress(tq)
    tqdm_bar(2, 5, "stress spread")
    tqdm_bar(5, 5, "stress halt")
    assert "5/5" in tq.getvalue()
    calls_a, calls_b = [], []
    both = fan_out(
        lambda d, t, label: calls_a.append((d, t, label)),
        lambda d, t, label: calls_b.append((d, t, label)),
    )
    both(1, 2, "x")
    assert calls_a == calls_b == [(1, 2, "x")]
