"""Walk-forward evaluation: rolling or anchored train/test folds, and parameter sweeps.

Folds are row ranges of a `BarFrame` (`make_folds` by bar count, `make_time_folds` by time).
The test windows of a fold plan are consecutive and do not overlap:

- rolling: train is the `train` window just before each test window;
- anchored: train runs from the first row to each test window (it grows).

In each fold, when several parameter sets are given, the one with the best objective (net PnL by
default; ties go to the earlier set) on the train window is evaluated on the test window; with one
set the train window only documents the warm-up. Every test window starts flat and marks open
positions at its last row, so folds are independent. Features are causal (each row depends only
on earlier bars), so actions are computed once over the whole frame and sliced per window.

Summary for gate 1 (docs/compatibility.md#gate-matrix): negative_fold_ratio = folds with net PnL < 0
/ folds; net_pnl_cv = population std of fold net PnL / |mean| (None when the mean is 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from autonomy.engine.backtest import (
    BPS,
    BacktestConfig,
    BacktestMetrics,
    Int8Array,
    Scratch,
    simulate,
    strategy_actions,
)
from autonomy.engine.data import BarFrame, ns_to_datetime
from autonomy.engine.progress import Progress, no_progress
from trading.strategies.base import Strategy

FoldMode = Literal["rolling", "anchored"]


@dataclass(frozen=True)
class Fold:
    index: int
    train_start: int
    train_stop: int
    test_start: int
    test_stop: int

    @property
    def name(self) -> str:
        return f"fold-{self.index + 1}"


def make_folds(
    n: int,
    *,
    n_folds: int,
    train_bars: int,
    test_bars: int | None = None,
    mode: FoldMode = "rolling",
) -> list[Fold]:
    """Folds by bar count. The test windows tile [train_bars, n): `test_bars` each (default
    (n - train_bars) // n_folds, the last fold taking the remainder)."""
    if n_folds < 1 or train_bars < 0:
        raise ValueError("n_folds must be >= 1 and train_bars >= 0")
    available = n - train_bars
    size = test_bars if test_bars is not None else available // n_folds
    if size < 1 or train_bars + size * n_folds > n:
        raise ValueError(
            f"{n} bars cannot hold {n_folds} test windows of {size} after {train_bars} train bars"
        )
    folds = []
    for k in range(n_folds):
        test_start = train_bars + k * size
        last = k == n_folds - 1 and test_bars is None
        test_stop = n if last else test_start + size
        train_start = 0 if mode == "anchored" else test_start - train_bars
        folds.append(Fold(k, train_start, test_start, test_start, test_stop))
    return folds


def make_time_folds(
    ts: npt.NDArray[np.int64], *, train_ns: int, test_ns: int, mode: FoldMode = "rolling"
) -> list[Fold]:
    """Folds by time (epoch ns, `ts` sorted): test windows [t0 + train + k·test, + test) until
    the data ends; a window's rows are those with ts inside it (every symbol's)."""
    if train_ns < 0 or test_ns <= 0:
        raise ValueError("train_ns must be >= 0 and test_ns > 0")
    if ts.shape[0] == 0:
        return []
    t0, t_end = int(ts[0]), int(ts[-1])
    folds: list[Fold] = []
    k = 0
    while (test_from := t0 + train_ns + k * test_ns) <= t_end:
        train_from = t0 if mode == "anchored" else test_from - train_ns
        bounds = np.searchsorted(ts, [train_from, test_from, test_from + test_ns], side="left")
        start, mid, stop = (int(b) for b in bounds)
        if stop > mid:
            folds.append(Fold(len(folds), start, mid, mid, stop))
        k += 1
    return folds


@dataclass(frozen=True)
class FoldResult:
    fold: Fold
    params_index: int
    params: Mapping[str, Any]
    metrics: BacktestMetrics
    test_from: str  # iso time of the first test row
    test_to: str  # iso time of the last test row
    train_objective: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fold_name": self.fold.name,
            "fold_order": self.fold.index,
            "train_rows": [self.fold.train_start, self.fold.train_stop],
            "test_rows": [self.fold.test_start, self.fold.test_stop],
            "test_from": self.test_from,
            "test_to": self.test_to,
            "params_index": self.params_index,
            "params": dict(self.params),
            "train_objective": self.train_objective,
            "metrics": self.metrics.as_dict(),
        }


@dataclass(frozen=True)
class WalkForwardSummary:
    fold_count: int
    negative_fold_count: int
    negative_fold_ratio: float
    net_pnl_mean: float
    net_pnl_std: float
    net_pnl_cv: float | None
    decision_count: int
    trade_count: int
    gross_pnl: float
    net_pnl: float
    total_cost: float
    traded_notional: float
    cost_bps: float
    max_drawdown: float  # the worst fold's
    turnover_ratio: float  # summed over folds

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class WalkForwardResult:
    mode: str
    folds: list[FoldResult]
    summary: WalkForwardSummary

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "folds": [f.as_dict() for f in self.folds],
            "summary": self.summary.as_dict(),
        }


Objective = Callable[[BacktestMetrics], float]


def net_pnl_objective(metrics: BacktestMetrics) -> float:
    return metrics.net_pnl


def summarize(metrics: Sequence[BacktestMetrics]) -> WalkForwardSummary:
    nets = np.array([m.net_pnl for m in metrics], dtype=np.float64)
    count = len(metrics)
    mean = float(nets.mean()) if count else 0.0
    std = float(nets.std()) if count else 0.0
    notional = math.fsum(m.traded_notional for m in metrics)
    cost = math.fsum(m.total_cost for m in metrics)
    negative = int((nets < 0).sum())
    return WalkForwardSummary(
        fold_count=count,
        negative_fold_count=negative,
        negative_fold_ratio=negative / count if count else 0.0,
        net_pnl_mean=mean,
        net_pnl_std=std,
        net_pnl_cv=std / abs(mean) if mean != 0 else None,
        decision_count=sum(m.decision_count for m in metrics),
        trade_count=sum(m.trade_count for m in metrics),
        gross_pnl=math.fsum(m.gross_pnl for m in metrics),
        net_pnl=math.fsum(m.net_pnl for m in metrics),
        total_cost=cost,
        traded_notional=notional,
        cost_bps=cost / notional * BPS if notional > 0 else 0.0,
        max_drawdown=max((m.max_drawdown for m in metrics), default=0.0),
        turnover_ratio=math.fsum(m.turnover_ratio for m in metrics),
    )


def walk_forward(
    frame: BarFrame,
    strategy: Strategy,
    *,
    folds: Sequence[Fold],
    param_grid: Sequence[Mapping[str, Any]],
    config: BacktestConfig | None = None,
    objective: Objective = net_pnl_objective,
    mode: str = "",
    progress: Progress = no_progress,
) -> WalkForwardResult:
    """Evaluate `strategy` fold by fold (see module doc); progress is reported per fold."""
    if not param_grid:
        raise ValueError("param_grid needs at least one parameter set")
    cfg = config or BacktestConfig()
    cache: dict[int, Int8Array] = {}
    scratch = Scratch()  # only metrics are kept: the row arrays are reused from fold to fold

    def actions(index: int) -> Int8Array:
        if index not in cache:
            cache[index] = strategy_actions(frame, strategy, param_grid[index])
        return cache[index]

    results: list[FoldResult] = []
    total = len(folds)
    for done, fold in enumerate(folds, start=1):
        chosen, train_score = 0, None
        if len(param_grid) > 1 and fold.train_stop > fold.train_start:
            train = frame.slice(fold.train_start, fold.train_stop)
            window = slice(fold.train_start, fold.train_stop)
            scores = [
                objective(simulate(train, actions(i)[window], cfg, scratch=scratch).metrics)
                for i in range(len(param_grid))
            ]
            chosen = int(np.argmax(scores))
            train_score = scores[chosen]
        test = frame.slice(fold.test_start, fold.test_stop)
        test_actions = actions(chosen)[fold.test_start : fold.test_stop]
        metrics = simulate(test, test_actions, cfg, scratch=scratch).metrics
        results.append(
            FoldResult(
                fold=fold,
                params_index=chosen,
                params=param_grid[chosen],
                metrics=metrics,
                test_from=ns_to_datetime(int(test.ts[0])).isoformat(),
                test_to=ns_to_datetime(int(test.ts[-1])).isoformat(),
                train_objective=train_score,
            )
        )
        progress(done, total, f"walk-forward {fold.name}")
    return WalkForwardResult(
        mode=mode, folds=results, summary=summarize([r.metrics for r in results])
    )


def parameter_sweep(
    frame: BarFrame,
    strategy: Strategy,
    param_sets: Sequence[Mapping[str, Any]],
    *,
    config: BacktestConfig | None = None,
    progress: Progress = no_progress,
) -> list[BacktestMetrics]:
    """Whole-frame metrics for each parameter set, in order; progress per set."""
    cfg = config or BacktestConfig()
    out: list[BacktestMetrics] = []
    total = len(param_sets)
    scratch = Scratch()
    for done, params in enumerate(param_sets, start=1):
        actions = strategy_actions(frame, strategy, params)
        out.append(simulate(frame, actions, cfg, scratch=scratch).metrics)
        progress(done, total, f"sweep {done}/{total}")
    return out
