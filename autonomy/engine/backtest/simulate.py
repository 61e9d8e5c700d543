"""`simulate` (the symbols' runs merged into one result with its metrics), `strategy_actions`
and `run_backtest`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from autonomy.engine.backtest.config import (
    BPS,
    EMPTY_I,
    BacktestConfig,
    BacktestMetrics,
    Int8Array,
    IntpArray,
)
from autonomy.engine.backtest.positions import first_difference, kernels_import
from autonomy.engine.backtest.results import BacktestResult
from autonomy.engine.backtest.symbol import Scratch, SymbolRun, simulate_symbol
from autonomy.engine.data import BarFrame, FloatArray
from trading.strategies.base import Strategy


def _merged_runs(
    runs: list[SymbolRun], n: int, start: float
) -> tuple[FloatArray, Int8Array, FloatArray, FloatArray, FloatArray, int]:
    """The per-symbol runs as whole-frame arrays: (orders, reject reasons, held, equity, gross
    value, bars in the market)."""
    if len(runs) == 1 and (runs[0].rows is None or runs[0].rows.shape[0] == n):
        run = runs[0]
        orders, reasons, held = run.orders, run.reasons, run.held
        equity = run.equity if run.rows is None else start + run.equity
        gross_value = run.gross_value
        in_market = run.counts[4]
    else:
        orders = np.zeros(n)
        reasons = np.zeros(n, dtype=np.int8)
        held = np.zeros(n)
        equity_inc = np.zeros(n)
        value_inc = np.zeros(n)
        open_inc = np.zeros(n, dtype=np.int64)
        for run in runs:
            assert run.rows is not None  # several symbols: each run has its rows
            orders[run.rows] = run.orders
            reasons[run.rows] = run.reasons
            held[run.rows] = run.held
            equity_inc[run.rows] = first_difference(run.equity)
            value_inc[run.rows] = first_difference(run.gross_value)
            open_inc[run.rows] = np.diff((run.held != 0.0).astype(np.int64), prepend=0)
        equity = start + np.cumsum(equity_inc)
        gross_value = np.cumsum(value_inc)
        in_market = np.count_nonzero(np.cumsum(open_inc))
    return orders, reasons, held, equity, gross_value, int(in_market)


def _merged_fills(
    runs: list[SymbolRun],
) -> tuple[IntpArray, FloatArray, FloatArray, FloatArray, FloatArray, IntpArray]:
    """Every symbol's fills in row order: (rows, qty, price, reference, fee, decision rows)."""
    if len(runs) == 1 and runs[0].rows is None:
        run = runs[0]
        return (
            run.fill_local,
            run.fill_qty,
            run.fill_price,
            run.fill_reference,
            run.fill_fee,
            run.fill_local - 1,
        )
    rows = [np.arange(0) if run.rows is None else run.rows for run in runs]
    fill_rows = (
        np.concatenate([r[run.fill_local] for r, run in zip(rows, runs, strict=True)])
        if runs
        else EMPTY_I
    )
    order = np.argsort(fill_rows, kind="stable")
    fill_rows = fill_rows[order]

    def cat(name: str) -> FloatArray:
        if not runs:
            return np.zeros(0)
        return np.concatenate([getattr(run, name) for run in runs])[order]

    fill_qty, fill_price = cat("fill_qty"), cat("fill_price")
    fill_reference, fill_fee = cat("fill_reference"), cat("fill_fee")
    decision_rows = (
        np.concatenate([r[run.fill_local - 1] for r, run in zip(rows, runs, strict=True)])[order]
        if runs
        else EMPTY_I
    )
    return fill_rows, fill_qty, fill_price, fill_reference, fill_fee, decision_rows


def _drawdown(equity: FloatArray, start: float) -> tuple[float, float]:
    """(max_drawdown, max_drawdown_pct): the largest fall from the running peak (starting cash
    included) in money and as a fraction of that peak."""
    if not equity.shape[0]:
        return 0.0, 0.0
    if start > 0:
        worst, worst_pct = kernels_import().drawdown(equity, start)
        return float(worst), float(worst_pct)
    peak = np.maximum(np.maximum.accumulate(equity), start)
    drawdown = peak - equity
    return float(drawdown.max()), float((drawdown / peak).max())


def simulate(
    frame: BarFrame, actions: Int8Array, config: BacktestConfig, *, scratch: Scratch | None = None
) -> BacktestResult:
    """Fills, positions and PnL for given actions (see module doc for the rules). With
    `scratch`, for a caller that keeps only the metrics (and the fills), a one-symbol frame's
    result has empty `orders`, `reject_reason`, `held` and `equity` (not written)."""
    n = len(frame)
    actions = np.asarray(actions, dtype=np.int8)
    if actions.shape != (n,):
        raise ValueError(f"actions have shape {actions.shape}, expected ({n},)")
    checked = scratch is not None and scratch.finite_prices is frame.price  # a sweep's frame
    if n and not checked and not np.isfinite(frame.price).all():
        raise ValueError("the frame has non-finite prices")
    if scratch is not None:
        scratch.finite_prices = frame.price
    start = config.starting_cash
    if len(frame.symbols) == 1:  # every row is the one symbol's: no row index, no copies
        runs = [simulate_symbol(frame.price, actions, config, None, start, scratch)]
    else:
        runs = [
            simulate_symbol(frame.price[rows], actions[rows], config, rows)
            for _, rows in frame.symbol_rows()
        ]
    orders, reasons, held, equity, gross_value, in_market = _merged_runs(runs, n, start)
    counts = np.sum([run.counts for run in runs], axis=0) if runs else np.zeros(5, np.int64)
    fill_rows, fill_qty, fill_price, fill_reference, fill_fee, decision_rows = _merged_fills(runs)

    abs_fill = np.abs(fill_qty)
    traded_notional = float((abs_fill * fill_price).sum())
    fees = float(fill_fee.sum())
    total_cost = float((abs_fill * np.abs(fill_price - fill_reference)).sum()) + fees
    gross_pnl = float(sum(run.gross_pnl for run in runs))
    single = len(runs) == 1 and runs[0].rows is None
    end_equity = (runs[0].last_equity if single else float(equity[-1])) if n else start
    if len(runs) == 1 and runs[0].drawdown.shape[0]:  # computed in the symbol's pass
        max_drawdown, max_drawdown_pct = (float(v) for v in runs[0].drawdown)
    else:
        max_drawdown, max_drawdown_pct = _drawdown(equity, start)
    metrics = BacktestMetrics(
        bars=n,
        decision_count=int(counts[0] + counts[1]),
        buy_decisions=int(counts[0]),
        sell_decisions=int(counts[1]),
        order_count=int(counts[2]),
        rejected_count=int(counts[3]),
        unfilled_count=sum(run.unfilled for run in runs),
        trade_count=int(fill_rows.shape[0]),
        filled_qty=float(abs_fill.sum()),
        traded_notional=traded_notional,
        gross_pnl=gross_pnl,
        net_pnl=end_equity - start,
        total_cost=total_cost,
        fees=fees,
        cost_bps=total_cost / traded_notional * BPS if traded_notional > 0 else 0.0,
        max_drawdown=float(max_drawdown),
        max_drawdown_pct=float(max_drawdown_pct),
        turnover_ratio=traded_notional / start if start > 0 else 0.0,
        exposure=float(gross_value.mean()) / start if n and start > 0 else 0.0,
        time_in_market=in_market / n if n else 0.0,
        end_equity=end_equity,
    )
    return BacktestResult(
        metrics=metrics,
        actions=actions,
        orders=orders,
        reject_reason=reasons,
        held=held,
        equity=equity,
        fill_rows=fill_rows,
        fill_qty=fill_qty,
        fill_price=fill_price,
        fill_reference=fill_reference,
        fill_fee=fill_fee,
        fill_decision_rows=decision_rows,
    )


def strategy_actions(frame: BarFrame, strategy: Strategy, params: Mapping[str, Any]) -> Int8Array:
    """The live strategy's actions for every row (its backtest path)."""
    return np.asarray(strategy.evaluate_arrays(frame.features, params), dtype=np.int8)


def run_backtest(
    frame: BarFrame,
    strategy: Strategy,
    params: Mapping[str, Any],
    config: BacktestConfig | None = None,
) -> BacktestResult:
    return simulate(frame, strategy_actions(frame, strategy, params), config or BacktestConfig())
