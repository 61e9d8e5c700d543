"""Parameter sweeps (issue #21, items 4 and 5), pure: what a sweep is, its chunks, and its report.
The ledger rows and the Celery fan-out are `autonomy.models.Sweep`/`SweepChunk`,
`autonomy.services.sweeps` and `autonomy.tasks`.

A sweep is one strategy family (the strategy plugin, `strategy_type`) with base parameters, a
parameter grid, a fold plan and a cost/sizing configuration over one dataset (signal rows whose
canonical JSON has sha256 `dataset_sha256`). Its id (`SweepSpec.sweep_id`) hashes all of that and
`ENGINE_VERSION`, so the same sweep asked twice is the same sweep.

Settings: the grid's names in sorted order, each name's values in the order given, expanded as
`itertools.product` (the last name varies fastest); setting i is the base parameters updated with
the i-th combination.

Fold plans (`FoldPlanSpec`):
- rolling / anchored with `folds` test windows (`autonomy.engine.walkforward.make_folds`, train
  window n // (folds + 1) rows like the research lane); `folds` = 1 is one window over every row;
- cpcv with `folds` groups, `test_groups` of them tested per split, `purge` and `embargo` rows
  (`autonomy.engine.cpcv`).
A sweep evaluates every setting on every fold (no selection inside a fold: the selection is the
leaderboard, and the overfitting statistics price it). Each test segment is simulated flat.

A chunk is (setting index, fold index); `chunk_evaluate` is all a worker does. Its result carries
the fold's test metrics and the power sums per block (`autonomy.trials.block_sums`, on the trial
window's BLOCKS bounds) of the per-row returns (equity change / starting cash) it counts:
- rolling / anchored: every test row of the fold (test windows do not overlap);
- cpcv: a group is tested by C(N-1, k-1) splits; its rows are counted by the first split that tests
  it (backtest path 0, `CpcvPlan.paths`), so every row of the window is counted exactly once. The
  other paths are reported (net PnL and Sharpe ratio per path) from per-group totals.
The trial window is the rows of the test windows: [first test row, last test row) for rolling and
anchored, every row for cpcv.

The report (`sweep_report`) is a pure function of the spec, the chunk results and the family's
trial history. Chunk results are first normalised through their canonical JSON (the form stored in
the ledger), then taken in (setting, fold) order, so the report is byte-identical however many
workers computed the chunks, in any order. The history it is deflated against is the family's
recorded trials other than this sweep's own, plus every setting of this sweep (its trials are all
counted, whether recorded yet or not), so finishing, re-running or re-assembling a sweep gives the
same report as long as no other trial of the family was recorded meanwhile.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from autonomy.engine import ENGINE_VERSION
from autonomy.engine.artifacts import canonical, canonical_json, sha256_hex
from autonomy.engine.backtest import (
    BacktestConfig,
    BacktestMetrics,
    CostModel,
    Sizing,
    simulate,
    strategy_actions,
)
from autonomy.engine.cpcv import Segment, make_cpcv_plan
from autonomy.engine.data import BarFrame, ns_to_datetime
from autonomy.engine.walkforward import make_folds, summarize
from autonomy.overfitting import InsufficientData, power_sums, sharpe_from_sums
from autonomy.trials import (
    BLOCKS,
    HistoricTrial,
    Trial,
    TrialHistory,
    TrialWindow,
    block_sums,
    overfitting_evidence,
    trial_of,
)
from trading.strategies.registry import get_strategy

PlanKind = Literal["rolling", "anchored", "cpcv"]
PLAN_KINDS: tuple[str, ...] = ("rolling", "anchored", "cpcv")
LEADERBOARD_KEYS = (
    "deflated_sharpe_ratio",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "trial_count",
    "sharpe_ratio",
)


class SweepInputError(ValueError):
    """A sweep that cannot be evaluated (bad grid, plan too large for the data...); `flag` names
    the command-line option at fault when one is."""

    def __init__(self, message: str, *, flag: str = "") -> None:
        super().__init__(message)
        self.flag = flag


@dataclass(frozen=True)
class FoldPlanSpec:
    kind: str = "rolling"
    folds: int = 1  # rolling/anchored: test windows; cpcv: groups
    test_groups: int = 2  # cpcv only
    purge: int = 1  # cpcv only
    embargo: int = 0  # cpcv only

    def as_dict(self) -> dict[str, Any]:
        if self.kind == "cpcv":
            return {
                "kind": self.kind,
                "groups": self.folds,
                "test_groups": self.test_groups,
                "purge": self.purge,
                "embargo": self.embargo,
            }
        return {"kind": self.kind, "folds": self.folds}


@dataclass(frozen=True)
class SweepFold:
    index: int
    name: str
    test: tuple[Segment, ...]
    train: tuple[Segment, ...]
    counted: tuple[Segment, ...]  # rows whose returns count in the trial (module doc)
    groups: tuple[tuple[int, Segment], ...] = ()  # cpcv: (group, rows) of the test groups


def plan_folds(plan: FoldPlanSpec, n: int) -> list[SweepFold]:
    """The folds of `plan` over `n` rows; SweepInputError when they do not fit."""
    try:
        if plan.kind == "cpcv":
            return _cpcv_folds(plan, n)
        if plan.kind not in ("rolling", "anchored"):
            raise SweepInputError(
                f"fold plan must be one of {', '.join(PLAN_KINDS)}", flag="--fold-plan"
            )
        if plan.folds == 1:
            folds = make_folds(n, n_folds=1, train_bars=0)
        else:
            mode: Literal["rolling", "anchored"] = (
                "anchored" if plan.kind == "anchored" else "rolling"
            )
            folds = make_folds(n, n_folds=plan.folds, train_bars=n // (plan.folds + 1), mode=mode)
    except ValueError as exc:
        raise SweepInputError(str(exc), flag="--fold-plan") from exc
    out = []
    for f in folds:
        test = ((f.test_start, f.test_stop),)
        train = ((f.train_start, f.train_stop),) if f.train_stop > f.train_start else ()
        out.append(SweepFold(f.index, f.name, test, train, test))
    return out


def _cpcv_folds(plan: FoldPlanSpec, n: int) -> list[SweepFold]:
    try:
        cpcv = make_cpcv_plan(
            n,
            groups=plan.folds,
            test_groups=plan.test_groups,
            purge=plan.purge,
            embargo=plan.embargo,
        )
    except ValueError as exc:
        raise SweepInputError(str(exc), flag="--fold-plan") from exc
    first = cpcv.first_tests()
    out = []
    for s in cpcv.splits:
        owned = tuple(cpcv.group_rows(g) for g in s.test_groups if first[g] == s.index)
        groups = tuple((g, cpcv.group_rows(g)) for g in s.test_groups)
        out.append(SweepFold(s.index, s.name, s.test, s.train, owned, groups))
    return out


def plan_paths(plan: FoldPlanSpec, n: int) -> list[list[tuple[int, int]]]:
    if plan.kind != "cpcv":
        return []
    return make_cpcv_plan(
        n, groups=plan.folds, test_groups=plan.test_groups, purge=plan.purge, embargo=plan.embargo
    ).paths()


def expand_grid(
    base: Mapping[str, Any], grid: Sequence[tuple[str, Sequence[Any]]]
) -> list[dict[str, Any]]:
    """The settings of a grid (module doc): base parameters updated with each combination."""
    names = [name for name, _ in grid]
    return [
        {**dict(base), **dict(zip(names, combo, strict=True))}
        for combo in itertools.product(*(values for _, values in grid))
    ]


@dataclass(frozen=True)
class SweepSpec:
    family: str  # strategy_type
    strategy_name: str
    strategy_version: str
    timeframe: str
    universe: tuple[str, ...]
    base_params: Mapping[str, Any]
    grid: tuple[tuple[str, tuple[Any, ...]], ...]  # sorted by name
    plan: FoldPlanSpec
    config: BacktestConfig
    dataset_sha256: str
    signal_source: str
    rows: int  # the dataset's rows after the universe filter
    window_from: str  # iso time of the trial window's first row
    window_to: str  # ... and of its last row

    def settings(self) -> list[dict[str, Any]]:
        return expand_grid(self.base_params, self.grid)

    def folds(self) -> list[SweepFold]:
        return plan_folds(self.plan, self.rows)

    def window(self) -> TrialWindow:
        start, stop = trial_rows(self.folds())
        # the plan places the rows: trials of another plan on the same data are another window
        plan = "sweep:" + sha256_hex(self.plan.as_dict())
        return TrialWindow(
            self.dataset_sha256, start, stop, self.window_from, self.window_to, plan=plan
        )

    def trial_config(self) -> dict[str, Any]:
        return {"backtest": canonical(self.config), "fold_plan": self.plan.as_dict()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "strategy_name": self.strategy_name,
            "strategy_version": self.strategy_version,
            "timeframe": self.timeframe,
            "universe": list(self.universe),
            "base_params": dict(self.base_params),
            "grid": [[name, list(values)] for name, values in self.grid],
            "plan": self.plan.as_dict(),
            "config": canonical(self.config),
            "dataset_sha256": self.dataset_sha256,
            "signal_source": self.signal_source,
            "rows": self.rows,
            "window_from": self.window_from,
            "window_to": self.window_to,
        }

    @property
    def sweep_id(self) -> str:
        return sha256_hex({"sweep": self.as_dict(), "engine": ENGINE_VERSION})

    @property
    def chunk_count(self) -> int:
        return len(self.settings()) * len(self.folds())

    def chunks(self) -> list[tuple[int, int]]:
        folds = len(self.folds())
        return [(s, f) for s in range(len(self.settings())) for f in range(folds)]


def config_from_dict(raw: Mapping[str, Any]) -> BacktestConfig:
    return BacktestConfig(
        costs=CostModel(**raw["costs"]),
        sizing=Sizing(**raw["sizing"]),
        starting_cash=float(raw["starting_cash"]),
    )


def spec_from_dict(raw: Mapping[str, Any]) -> SweepSpec:
    """The spec `SweepSpec.as_dict` wrote (a ledger row's), with the same sweep id."""
    plan = raw["plan"]
    if plan["kind"] == "cpcv":
        fold_plan = FoldPlanSpec(
            "cpcv", plan["groups"], plan["test_groups"], plan["purge"], plan["embargo"]
        )
    else:
        fold_plan = FoldPlanSpec(plan["kind"], plan["folds"])
    return SweepSpec(
        family=raw["family"],
        strategy_name=raw["strategy_name"],
        strategy_version=raw["strategy_version"],
        timeframe=raw["timeframe"],
        universe=tuple(raw["universe"]),
        base_params=dict(raw["base_params"]),
        grid=tuple((name, tuple(values)) for name, values in raw["grid"]),
        plan=fold_plan,
        config=config_from_dict(raw["config"]),
        dataset_sha256=raw["dataset_sha256"],
        signal_source=raw["signal_source"],
        rows=int(raw["rows"]),
        window_from=raw["window_from"],
        window_to=raw["window_to"],
    )


def trial_rows(folds: Sequence[SweepFold]) -> tuple[int, int]:
    rows = [seg for f in folds for seg in f.counted]
    return min(a for a, _ in rows), max(b for _, b in rows)


def sweep_spec(
    frame: BarFrame,
    *,
    family: str,
    strategy_name: str,
    strategy_version: str,
    timeframe: str,
    universe: Sequence[str],
    base_params: Mapping[str, Any],
    grid: Sequence[tuple[str, Sequence[Any]]],
    plan: FoldPlanSpec,
    config: BacktestConfig,
    dataset_sha256: str,
    signal_source: str,
) -> SweepSpec:
    """A spec over `frame` (the dataset already kept to the universe); SweepInputError when the
    grid or the plan cannot be evaluated on it."""
    try:
        get_strategy(family)
    except KeyError as exc:
        raise SweepInputError(
            f"unknown strategy type {family!r}", flag="--strategy-config"
        ) from exc
    names = [name for name, _ in grid]
    if len(set(names)) != len(names):
        raise SweepInputError("a grid parameter is given twice", flag="--grid")
    if any(not values for _, values in grid):
        raise SweepInputError("a grid parameter has no values", flag="--grid")
    start, stop = trial_rows(plan_folds(plan, len(frame)))
    return SweepSpec(
        family=family,
        strategy_name=strategy_name,
        strategy_version=strategy_version,
        timeframe=timeframe,
        universe=tuple(universe),
        base_params=dict(canonical(dict(base_params))),
        grid=tuple(sorted((name, tuple(canonical(list(values)))) for name, values in grid)),
        plan=plan,
        config=config_from_dict(canonical(config)),  # as a worker reads it back
        dataset_sha256=dataset_sha256,
        signal_source=signal_source,
        rows=len(frame),
        window_from=ns_to_datetime(int(frame.ts[start])).isoformat(),
        window_to=ns_to_datetime(int(frame.ts[stop - 1])).isoformat(),
    )


@dataclass(frozen=True)
class ChunkResult:
    setting_index: int
    fold_index: int
    segments: tuple[Mapping[str, Any], ...]  # {"rows": [a, b], "metrics": {...}}
    sums: tuple[tuple[float, ...], ...]  # BLOCKS x 5, of the counted rows
    net_pnl: float  # of the counted rows
    trade_count: int  # fills on the counted rows
    groups: tuple[Mapping[str, Any], ...] = ()  # cpcv: {"group", "net_pnl", "sums": [5]}

    def as_dict(self) -> dict[str, Any]:
        return {
            "setting_index": self.setting_index,
            "fold_index": self.fold_index,
            "segments": [dict(s) for s in self.segments],
            "sums": [list(row) for row in self.sums],
            "net_pnl": self.net_pnl,
            "trade_count": self.trade_count,
            "groups": [dict(g) for g in self.groups],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ChunkResult:
        return cls(
            setting_index=int(raw["setting_index"]),
            fold_index=int(raw["fold_index"]),
            segments=tuple(raw["segments"]),
            sums=tuple(tuple(float(x) for x in row) for row in raw["sums"]),
            net_pnl=float(raw["net_pnl"]),
            trade_count=int(raw["trade_count"]),
            groups=tuple(raw.get("groups", ())),
        )

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.as_dict())

    @property
    def sha256(self) -> str:
        return sha256_hex(self.as_dict())

    def normalised(self) -> ChunkResult:
        """The result as stored: read back from its canonical JSON (floats rounded)."""
        return ChunkResult.from_dict(json.loads(self.canonical_bytes()))


def _inside(inner: Segment, outer: Segment) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


def chunk_evaluate(spec: SweepSpec, frame: BarFrame, chunk: tuple[int, int]) -> ChunkResult:
    """One setting on one fold (module doc)."""
    setting, fold_index = chunk
    if len(frame) != spec.rows:
        raise SweepInputError(f"the dataset has {len(frame)} rows, the sweep {spec.rows}")
    params = spec.settings()[setting]
    fold = spec.folds()[fold_index]
    bounds = spec.window().bounds()
    actions = strategy_actions(frame, get_strategy(spec.family), params)
    start_cash = spec.config.starting_cash
    segments: list[dict[str, Any]] = []
    sums = np.zeros((BLOCKS, 5))
    net: list[float] = []
    trades = 0
    groups: list[dict[str, Any]] = []
    for seg in fold.test:
        a, b = seg
        result = simulate(frame.slice(a, b), actions[a:b], spec.config)
        pnl = np.diff(result.equity, prepend=start_cash)
        segments.append({"rows": [a, b], "metrics": result.metrics.as_dict()})
        fills = result.fill_rows + a
        for lo, hi in (c for c in fold.counted if _inside(c, seg)):
            sums += block_sums(pnl[lo - a : hi - a] / start_cash, lo, bounds)
            net.append(math.fsum(pnl[lo - a : hi - a].tolist()))
            trades += int(np.count_nonzero((fills >= lo) & (fills < hi)))
        for g, (lo, hi) in (x for x in fold.groups if _inside(x[1], seg)):
            part = pnl[lo - a : hi - a]
            groups.append(
                {
                    "group": g,
                    "net_pnl": math.fsum(part.tolist()),
                    "sums": [float(x) for x in power_sums(part / start_cash)],
                }
            )
    return ChunkResult(
        setting_index=setting,
        fold_index=fold_index,
        segments=tuple(segments),
        sums=tuple(tuple(float(x) for x in row) for row in sums),
        net_pnl=math.fsum(net),
        trade_count=trades,
        groups=tuple(groups),
    )


def _ordered(spec: SweepSpec, results: Sequence[ChunkResult]) -> list[ChunkResult]:
    by_key: dict[tuple[int, int], ChunkResult] = {}
    for r in results:
        key = (r.setting_index, r.fold_index)
        norm = r.normalised()
        if key in by_key and by_key[key].sha256 != norm.sha256:
            raise SweepInputError(f"two different results for chunk {key}")
        by_key[key] = norm
    missing = [c for c in spec.chunks() if c not in by_key]
    extra = sorted(set(by_key) - set(spec.chunks()))
    if missing or extra:
        raise SweepInputError(f"chunk results missing {missing[:5]} or unknown {extra[:5]}")
    return [by_key[c] for c in spec.chunks()]


def sweep_trials(
    spec: SweepSpec, results: Sequence[ChunkResult], *, source: str, source_ref: str = ""
) -> list[Trial]:
    """Every setting's trial: its counted sums added over its folds, in fold order."""
    ordered = _ordered(spec, results)
    folds = len(spec.folds())
    window = spec.window()
    out = []
    for i, params in enumerate(spec.settings()):
        mine = ordered[i * folds : (i + 1) * folds]
        sums = np.zeros((BLOCKS, 5))
        for r in mine:
            sums += np.asarray(r.sums, dtype=np.float64)
        out.append(
            trial_of(
                family=spec.family,
                params=params,
                config=spec.trial_config(),
                window=window,
                sums=sums,
                strategy_name=spec.strategy_name,
                strategy_version=spec.strategy_version,
                net_pnl=math.fsum(r.net_pnl for r in mine),
                trade_count=sum(r.trade_count for r in mine),
                source=source,
                source_ref=source_ref,
            )
        )
    return out


def _paths(spec: SweepSpec, mine: Sequence[ChunkResult]) -> list[dict[str, Any]]:
    by_group = {(r.fold_index, int(g["group"])): g for r in mine for g in r.groups}
    out = []
    for p, path in enumerate(plan_paths(spec.plan, spec.rows)):
        parts = [by_group[(s, g)] for g, s in path]
        totals = np.sum([np.asarray(x["sums"], dtype=np.float64) for x in parts], axis=0)
        try:
            sharpe: float | None = sharpe_from_sums(totals).sharpe
        except InsufficientData:
            sharpe = None
        out.append(
            {
                "path": p,
                "net_pnl": math.fsum(float(x["net_pnl"]) for x in parts),
                "sharpe_ratio": sharpe,
            }
        )
    return out


def _setting_entry(
    spec: SweepSpec, trial: Trial, mine: Sequence[ChunkResult], evidence: dict[str, Any]
) -> dict[str, Any]:
    folds = spec.folds()
    metrics = [BacktestMetrics(**s["metrics"]) for r in mine for s in r.segments]
    return {
        "trial_key": trial.key,
        "params": dict(trial.params),
        "net_pnl": trial.net_pnl,
        "trade_count": trial.trade_count,
        "folds": [
            {
                "fold": folds[r.fold_index].name,
                "net_pnl": math.fsum(float(s["metrics"]["net_pnl"]) for s in r.segments),
                "segments": [dict(s) for s in r.segments],
            }
            for r in mine
        ],
        "summary": summarize(metrics).as_dict(),
        "paths": _paths(spec, mine),
        "overfitting": evidence,
    }


def _rank_key(entry: Mapping[str, Any]) -> tuple[int, float, int]:
    dsr = entry["deflated_sharpe_ratio"]
    return (0 if dsr is not None else 1, -(dsr or 0.0), int(entry["setting"]))


def sweep_report(
    spec: SweepSpec,
    results: Sequence[ChunkResult],
    history: TrialHistory,
    *,
    source: str = "sweep",
) -> dict[str, Any]:
    """The sweep's report (module doc): settings with their folds, trial and overfitting
    evidence, and the leaderboard (deflated Sharpe ratio, best first; ties and Nones by setting
    index)."""
    ordered = _ordered(spec, results)
    trials = sweep_trials(spec, ordered, source=source, source_ref=spec.sweep_id)
    keys = [t.key for t in trials]
    base = history.without(keys)
    own = [HistoricTrial(t.key, t.sharpe(), t.window.key, t.sums) for t in trials]
    combined = TrialHistory(spec.family, base.trials + tuple(own))
    folds = len(spec.folds())
    settings = []
    for i, trial in enumerate(trials):
        evidence = overfitting_evidence(trial, combined)
        entry = _setting_entry(spec, trial, ordered[i * folds : (i + 1) * folds], evidence)
        settings.append({"setting": i, **entry})
    board = sorted(
        (
            {
                "setting": s["setting"],
                "params": s["params"],
                "net_pnl": s["net_pnl"],
                "trade_count": s["trade_count"],
                **{k: s["overfitting"][k] for k in LEADERBOARD_KEYS},
            }
            for s in settings
        ),
        key=_rank_key,
    )
    return {
        "sweep_id": spec.sweep_id,
        "engine_version": ENGINE_VERSION,
        "spec": spec.as_dict(),
        "folds": [
            {"fold": f.name, "test": [list(x) for x in f.test], "train": [list(x) for x in f.train]}
            for f in spec.folds()
        ],
        "trial_window": {
            "key": spec.window().key,
            "rows": [spec.window().start_row, spec.window().stop_row],
        },
        "history_sha256": base.sha256(),
        "settings": settings,
        "leaderboard": [{"rank": r, **e} for r, e in enumerate(board, start=1)],
    }


def frame_rows(frame: BarFrame, universe: Sequence[str]) -> BarFrame:
    """The frame kept to `universe` (all symbols when empty), as the research lane does."""
    if not universe:
        return frame
    keep = np.flatnonzero(np.isin(np.asarray(frame.symbols)[frame.symbol], list(universe)))
    return frame.take(keep)
