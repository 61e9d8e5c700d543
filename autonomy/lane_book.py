"""The research lane's backtests of its candidate, a book of strategies (`autonomy.lane_inputs`):
the book's walk-forward, whole-period run and stress cases (`autonomy.engine.portfolio`), and
each member's own trial and overfitting statistics (`autonomy.trials`).

A book of one strategy without allocator caps evaluates exactly as that strategy alone (the
portfolio engine then is the backtest engine), so a one-strategy config gives the numbers it
always gave. The book's overfitting statistics are its weakest member's: the smallest deflated
and probabilistic Sharpe ratios, the largest probability of backtest overfitting, and the trials
of every member's family counted (each member keeps its own block under `members`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from autonomy.engine.backtest import BacktestConfig, BacktestMetrics, Int8Array, simulate
from autonomy.engine.data import BarFrame, ns_to_datetime
from autonomy.engine.portfolio import Leg, leg_actions, simulate_book
from autonomy.engine.stress import StressReport, run_stress_with
from autonomy.engine.walkforward import (
    Fold,
    FoldResult,
    WalkForwardResult,
    make_folds,
    summarize,
)
from autonomy.evidence import row_pnl
from autonomy.lane_inputs import (
    CandidateBook,
    CandidateSpec,
    LaneInputs,
    lane_sizing,
    trial_config,
    trial_dataset,
    trial_plan,
)
from autonomy.trials import (
    BLOCKS,
    Trial,
    TrialHistory,
    TrialWindow,
    block_sums,
    overfitting_evidence,
    trial_of,
)
from trading.signals.types import SignalEnvelope
from trading.strategies.registry import get_strategy

PBO = "probability_of_backtest_overfitting"


def iso_time(ns: int) -> str:
    """An epoch-ns row time as the ISO text the lane's artifacts carry."""
    return ns_to_datetime(ns).isoformat()


def fold_plan(n: int, folds: int) -> tuple[list[Fold], bool]:
    """(folds, single): one fold over every row when `folds` is 1 or the data is too short for
    rolling folds with a train window each."""
    if folds <= 1 or n < 2 * (folds + 1):
        return make_folds(n, n_folds=1, train_bars=0), True
    return make_folds(n, n_folds=folds, train_bars=n // (folds + 1), mode="rolling"), False


def keep_symbols(frame: BarFrame, symbols: Sequence[str]) -> np.ndarray:
    """The rows of `frame` on `symbols` (every row when `symbols` is empty)."""
    if not symbols:
        return np.arange(len(frame))
    names = np.asarray(frame.symbols)[frame.symbol]
    return np.flatnonzero(np.isin(names, list(symbols)))


def book_legs(inputs: LaneInputs, book: CandidateBook) -> tuple[Leg, ...]:
    return tuple(
        Leg(
            name=spec.name,
            strategy=get_strategy(spec.strategy_type),
            params=spec.params,
            sizing=lane_sizing(inputs, spec),
            symbols=spec.universe_symbols,
        )
        for spec in book.specs
    )


def base_config(inputs: LaneInputs, legs: Sequence[Leg]) -> BacktestConfig:
    """The config the stress cases worsen: the costs, the cash, and the one strategy's sizing
    (a book's members keep their own sizing; only a case's fill cap reaches them)."""
    return BacktestConfig(
        costs=inputs.costs, sizing=legs[0].sizing, starting_cash=inputs.starting_cash
    )


def book_run(
    inputs: LaneInputs,
    frame: BarFrame,
    legs: Sequence[Leg],
    config: BacktestConfig,
    actions: Sequence[Int8Array] | None = None,
) -> Any:
    """The book over `frame` under `config`'s costs, cash and fill cap (a `BookResult`)."""
    return simulate_book(
        frame,
        legs,
        costs=config.costs,
        starting_cash=config.starting_cash,
        caps=inputs.allocator,
        max_fill_qty=config.sizing.max_fill_qty,
        actions=actions,
    )


def book_walk_forward(
    inputs: LaneInputs,
    frame: BarFrame,
    legs: Sequence[Leg],
    actions: Sequence[Int8Array],
    folds: Sequence[Fold],
    mode: str,
) -> WalkForwardResult:
    """Each fold's test window as its own book (it starts flat), features computed once."""
    config = base_config(inputs, legs)
    params = (
        dict(legs[0].params) if len(legs) == 1 else {leg.name: dict(leg.params) for leg in legs}
    )
    results = []
    for fold in folds:
        rows = slice(fold.test_start, fold.test_stop)
        test = frame.slice(fold.test_start, fold.test_stop)
        metrics = book_run(inputs, test, legs, config, [a[rows] for a in actions]).result.metrics
        results.append(
            FoldResult(
                fold=fold,
                params_index=0,
                params=params,
                metrics=metrics,
                test_from=iso_time(int(test.ts[0])),
                test_to=iso_time(int(test.ts[-1])),
                train_objective=None,
            )
        )
    return WalkForwardResult(
        mode=mode, folds=results, summary=summarize([r.metrics for r in results])
    )


def book_stress(inputs: LaneInputs, frame: BarFrame, legs: Sequence[Leg]) -> StressReport:
    """The stress cases over the book (each case recomputes the members' actions on its
    market, as the one-strategy stress run does)."""

    def evaluate(f: BarFrame, c: BacktestConfig) -> BacktestMetrics:
        metrics: BacktestMetrics = book_run(inputs, f, legs, c).result.metrics
        return metrics

    return run_stress_with(
        evaluate, frame, config=base_config(inputs, legs), settings=inputs.stress
    )


def member_trial(inputs: LaneInputs, spec: CandidateSpec, parsed: BarFrame, run_id: str) -> Trial:
    """The member alone on its own universe, as a one-strategy lane evaluates it: its per-row
    returns in each walk-forward test window (each window starts flat), as power sums per block
    of the windows' span."""
    frame = parsed.take(keep_symbols(parsed, spec.universe_symbols))
    folds, _ = fold_plan(len(frame), inputs.folds)
    leg = Leg(spec.name, get_strategy(spec.strategy_type), spec.params, lane_sizing(inputs, spec))
    actions = leg_actions(frame, leg)
    config = BacktestConfig(
        costs=inputs.costs, sizing=leg.sizing, starting_cash=inputs.starting_cash
    )
    start, stop = folds[0].test_start, folds[-1].test_stop
    window = TrialWindow(
        dataset_sha256=trial_dataset(inputs, spec),
        start_row=start,
        stop_row=stop,
        window_from=iso_time(int(frame.ts[start])),
        window_to=iso_time(int(frame.ts[stop - 1])),
        plan=trial_plan(inputs),
    )
    bounds = window.bounds()
    sums = np.zeros((BLOCKS, 5))
    net, trades = 0.0, 0
    for fold in folds:
        rows = slice(fold.test_start, fold.test_stop)
        result = simulate(frame.slice(fold.test_start, fold.test_stop), actions[rows], config)
        sums += block_sums(
            row_pnl(result, config.starting_cash) / config.starting_cash, fold.test_start, bounds
        )
        net += result.metrics.net_pnl
        trades += result.metrics.trade_count
    return trial_of(
        family=spec.strategy_type,
        params=spec.params,
        config=trial_config(inputs, leg.sizing),
        window=window,
        sums=sums,
        strategy_name=spec.name,
        strategy_version=spec.version,
        net_pnl=net,
        trade_count=trades,
        source="lane",
        source_ref=run_id,
    )


def book_overfitting(
    inputs: LaneInputs, book: CandidateBook, trials: Sequence[Trial]
) -> dict[str, Any]:
    """Each member's statistics against its family's trials; the book's are the weakest
    member's (module doc)."""
    members = {
        spec.name: overfitting_evidence(
            trial, inputs.trial_history.get(spec.strategy_type, TrialHistory(spec.strategy_type))
        )
        for spec, trial in zip(book.specs, trials, strict=True)
    }
    if book.single:
        return members[book.name]
    blocks = list(members.values())

    def pick(key: str, worst: Any) -> Any:
        """The worst member's value; None when a member has none (it fails gate 8 as missing),
        except the PBO, where a member without one had no selection to test."""
        values = [b[key] for b in blocks if b[key] is not None]
        if not values or (len(values) < len(blocks) and key != PBO):
            return None
        return worst(values)

    return {
        "trial_count": sum(int(b["trial_count"]) for b in blocks),
        "deflated_sharpe_ratio": pick("deflated_sharpe_ratio", min),
        "probabilistic_sharpe_ratio": pick("probabilistic_sharpe_ratio", min),
        PBO: pick(PBO, max),
        "window_trial_count": min(int(b["window_trial_count"]) for b in blocks),
        "members": members,
    }


def book_confidences(
    signals: Sequence[SignalEnvelope],
    legs: Sequence[Leg],
    actions: Sequence[Int8Array],
    combined: Int8Array,
) -> np.ndarray:
    """The stated confidence behind the book's action on each row: the first member (in the
    config's order) that acted in the book's direction."""
    out = np.zeros(len(signals))
    for row in np.flatnonzero(combined).tolist():
        for leg, acts in zip(legs, actions, strict=True):
            if acts[row] == combined[row]:
                intent = leg.strategy.evaluate(signals[row], leg.params)
                out[row] = float(intent.confidence) if intent is not None else 0.0
                break
    return out
