"""Purged, embargoed combinatorial cross-validation (CPCV), as described by Marcos López de Prado
in "Advances in Financial Machine Learning": a fold plan beside rolling and anchored
(`autonomy.engine.walkforward`).

The rows [0, n) are cut into `groups` (N) consecutive groups of near-equal size (the first
n mod N groups one row longer, like `np.array_split`). Every choice of `test_groups` (k) of them
is a split, in lexicographic order of the chosen group indices (`itertools.combinations`), so
there are C(N, k) splits. In a split:

- test segments: the chosen groups, adjacent ones merged into one contiguous row range;
- train segments: every other row, minus the purge and the embargo, as maximal contiguous ranges:
  - purge: the `purge` rows just before each test segment. A decision on row t fills on the next
    row (`autonomy.engine.backtest`), so a train row right before a test segment has its outcome
    inside the test segment: `purge` >= 1 is the minimum, larger values cover longer holding
    horizons;
  - embargo: the `embargo` rows just after each test segment (features are causal but serially
    correlated: rows right after the test data are not independent of it).

Backtest paths: every group is tested in C(N-1, k-1) splits. Path p takes, for each group in row
order, the p-th split (in split order) that tests it, so the plan holds C(N-1, k-1) paths, each
covering every row exactly once. Path 0 (every group from the first split testing it) is what a
sweep counts as the setting's trial (`autonomy.sweep`).

`cpcv_evaluate` selects parameters per split: each parameter set's actions are computed once over
the whole frame (features are causal), every train segment is simulated flat (starting with no
position, marking open positions at its last row) and the set with the highest net PnL summed over
the train segments (ties: the earlier set) is simulated on each test segment, again flat.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from autonomy.engine.backtest import BacktestConfig, BacktestMetrics, simulate, strategy_actions
from autonomy.engine.data import BarFrame
from autonomy.engine.progress import Progress, no_progress
from trading.strategies.base import Strategy

Segment = tuple[int, int]  # rows [start, stop)


@dataclass(frozen=True)
class CpcvSplit:
    index: int
    test_groups: tuple[int, ...]
    test: tuple[Segment, ...]
    train: tuple[Segment, ...]

    @property
    def name(self) -> str:
        return "split-" + "-".join(str(g + 1) for g in self.test_groups)


@dataclass(frozen=True)
class CpcvPlan:
    n: int
    groups: int
    test_groups: int
    purge: int
    embargo: int
    bounds: tuple[int, ...]  # groups + 1 row boundaries
    splits: tuple[CpcvSplit, ...]

    def group_rows(self, group: int) -> Segment:
        return self.bounds[group], self.bounds[group + 1]

    @property
    def path_count(self) -> int:
        return math.comb(self.groups - 1, self.test_groups - 1)

    def paths(self) -> list[list[tuple[int, int]]]:
        """Path p: [(group, split index)] for every group in row order (module doc)."""
        testing: dict[int, list[int]] = {g: [] for g in range(self.groups)}
        for split in self.splits:
            for g in split.test_groups:
                testing[g].append(split.index)
        return [[(g, testing[g][p]) for g in range(self.groups)] for p in range(self.path_count)]

    def first_tests(self) -> dict[int, int]:
        """group -> the first split testing it (path 0)."""
        return dict(self.paths()[0])

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "groups": self.groups,
            "test_groups": self.test_groups,
            "purge": self.purge,
            "embargo": self.embargo,
            "bounds": list(self.bounds),
            "path_count": self.path_count,
            "splits": [
                {
                    "index": s.index,
                    "name": s.name,
                    "test_groups": list(s.test_groups),
                    "test": [list(seg) for seg in s.test],
                    "train": [list(seg) for seg in s.train],
                }
                for s in self.splits
            ],
        }


def group_bounds(n: int, groups: int) -> tuple[int, ...]:
    size, extra = divmod(n, groups)
    out, row = [0], 0
    for g in range(groups):
        row += size + (1 if g < extra else 0)
        out.append(row)
    return tuple(out)


def _runs(mask: np.ndarray) -> tuple[Segment, ...]:
    """Maximal runs of True in `mask` as [start, stop) ranges."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return tuple((int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True))


def _split(
    index: int, chosen: tuple[int, ...], plan_args: tuple[int, int, int, tuple[int, ...]]
) -> CpcvSplit:
    n, purge, embargo, bounds = plan_args
    test_mask = np.zeros(n, dtype=bool)
    for g in chosen:
        test_mask[bounds[g] : bounds[g + 1]] = True
    test = _runs(test_mask)
    train_mask = ~test_mask
    for start, stop in test:
        train_mask[max(0, start - purge) : start] = False
        train_mask[stop : min(n, stop + embargo)] = False
    return CpcvSplit(index=index, test_groups=chosen, test=test, train=_runs(train_mask))


def make_cpcv_plan(
    n: int, *, groups: int, test_groups: int, purge: int = 1, embargo: int = 0
) -> CpcvPlan:
    """The CPCV plan of `n` rows (module doc). Raises ValueError naming the bad number."""
    if groups < 2:
        raise ValueError(f"groups must be at least 2, got {groups}")
    if not 1 <= test_groups < groups:
        raise ValueError(f"test groups must be between 1 and {groups - 1}, got {test_groups}")
    if n < groups:
        raise ValueError(f"{n} rows cannot be cut into {groups} groups")
    if purge < 1:
        raise ValueError(
            f"purge must be at least 1 (a decision fills on the next row), got {purge}"
        )
    if embargo < 0:
        raise ValueError(f"embargo must be >= 0, got {embargo}")
    bounds = group_bounds(n, groups)
    args = (n, purge, embargo, bounds)
    splits = tuple(
        _split(i, chosen, args)
        for i, chosen in enumerate(itertools.combinations(range(groups), test_groups))
    )
    return CpcvPlan(n, groups, test_groups, purge, embargo, bounds, splits)


@dataclass(frozen=True)
class CpcvSplitResult:
    split: CpcvSplit
    params_index: int
    train_objective: float | None
    test_metrics: tuple[BacktestMetrics, ...]  # one per test segment
    group_net_pnl: Mapping[int, float]  # each test group's share of the test PnL

    @property
    def net_pnl(self) -> float:
        return math.fsum(m.net_pnl for m in self.test_metrics)


@dataclass(frozen=True)
class CpcvResult:
    plan: CpcvPlan
    splits: tuple[CpcvSplitResult, ...]

    def path_net_pnl(self) -> list[float]:
        """Net PnL of every backtest path (module doc), in path order."""
        return [
            math.fsum(self.splits[s].group_net_pnl[g] for g, s in path)
            for path in self.plan.paths()
        ]

    def as_dict(self) -> dict[str, Any]:
        paths = self.path_net_pnl()
        return {
            "plan": self.plan.as_dict(),
            "splits": [
                {
                    "name": r.split.name,
                    "params_index": r.params_index,
                    "train_objective": r.train_objective,
                    "net_pnl": r.net_pnl,
                    "test_metrics": [m.as_dict() for m in r.test_metrics],
                }
                for r in self.splits
            ],
            "path_net_pnl": paths,
            "negative_path_ratio": sum(p < 0 for p in paths) / len(paths) if paths else 0.0,
        }


def segment_run(
    frame: BarFrame, actions: np.ndarray, segment: Segment, config: BacktestConfig
) -> tuple[BacktestMetrics, np.ndarray]:
    """One segment simulated flat: its metrics and each row's PnL (equity change)."""
    start, stop = segment
    result = simulate(frame.slice(start, stop), actions[start:stop], config)
    return result.metrics, np.diff(result.equity, prepend=config.starting_cash)


def _train_score(
    frame: BarFrame, actions: np.ndarray, train: Sequence[Segment], config: BacktestConfig
) -> float:
    return math.fsum(segment_run(frame, actions, seg, config)[0].net_pnl for seg in train)


def _evaluate_split(
    frame: BarFrame,
    plan: CpcvPlan,
    split: CpcvSplit,
    actions: Sequence[np.ndarray],
    config: BacktestConfig,
) -> CpcvSplitResult:
    chosen, score = 0, None
    if len(actions) > 1 and split.train:
        scores = [_train_score(frame, a, split.train, config) for a in actions]
        chosen = int(np.argmax(scores))
        score = scores[chosen]
    metrics, group_pnl = [], {}
    for seg in split.test:
        m, pnl = segment_run(frame, actions[chosen], seg, config)
        metrics.append(m)
        for g in split.test_groups:
            lo, hi = plan.group_rows(g)
            if seg[0] <= lo and hi <= seg[1]:
                group_pnl[g] = math.fsum(pnl[lo - seg[0] : hi - seg[0]].tolist())
    return CpcvSplitResult(split, chosen, score, tuple(metrics), group_pnl)


def cpcv_evaluate(
    frame: BarFrame,
    strategy: Strategy,
    *,
    plan: CpcvPlan,
    param_grid: Sequence[Mapping[str, Any]],
    config: BacktestConfig | None = None,
    progress: Progress = no_progress,
) -> CpcvResult:
    """Choose parameters on each split's train segments, evaluate them on its test segments."""
    if not param_grid:
        raise ValueError("param_grid needs at least one parameter set")
    if plan.n != len(frame):
        raise ValueError(f"the plan covers {plan.n} rows, the frame has {len(frame)}")
    cfg = config or BacktestConfig()
    actions = [strategy_actions(frame, strategy, p) for p in param_grid]
    out = []
    for done, split in enumerate(plan.splits, start=1):
        out.append(_evaluate_split(frame, plan, split, actions, cfg))
        progress(done, len(plan.splits), f"cpcv {split.name}")
    return CpcvResult(plan, tuple(out))
