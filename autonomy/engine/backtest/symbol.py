"""One symbol's run: its order sizes, the compiled pass over its rows, and the reusable scratch
array of a metrics-only caller."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from autonomy.engine.backtest.config import (
    BPS,
    EMPTY_F,
    EMPTY_I8,
    SUB_DOLLAR_TICK,
    TICK,
    TICK_EPS,
    BacktestConfig,
    Int8Array,
    IntpArray,
    Sizing,
)
from autonomy.engine.backtest.positions import kernels_import, positions_from_orders
from autonomy.engine.data import FloatArray


@dataclass
class SymbolRun:
    rows: IntpArray | None  # None: every row of the frame (then equity includes starting cash)
    orders: FloatArray
    reasons: npt.NDArray[np.int8]
    held: FloatArray
    equity: FloatArray  # cash flows to date + position value, excluding starting cash
    gross_value: FloatArray
    fill_local: IntpArray
    fill_qty: FloatArray
    fill_price: FloatArray
    fill_reference: FloatArray
    fill_fee: FloatArray
    gross_pnl: float
    unfilled: int
    counts: npt.NDArray[np.int64]  # buy actions, sell actions, orders, rejected, rows held
    drawdown: FloatArray  # (max drawdown, as a fraction of the peak) when rows is None, else []
    last_equity: float  # equity[-1] (also when the rows were not written)


def _order_sizes(price: FloatArray, sizing: Sizing) -> FloatArray:
    """The order size of a signal: one value, or one per row when a notional budget is set."""
    step = sizing.qty_step
    cap = math.inf
    if sizing.max_fill_qty is not None:
        cap = math.floor(sizing.max_fill_qty / step + TICK_EPS) * step
    if sizing.max_notional_per_trade is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.where(price > 0, sizing.max_notional_per_trade / price, 0.0)
        return np.minimum(np.floor(raw / step + TICK_EPS) * step, cap)
    return np.array([min(math.floor(sizing.qty / step + TICK_EPS) * step, cap)])


class Scratch:
    """The one row-sized array (|position value|, for the exposure) that a caller keeping only
    the metrics (walk-forward folds, sweeps) reuses from run to run: fresh arrays of a million
    rows cost more in page faults than the kernel takes to fill them."""

    def __init__(self) -> None:
        self._gross_value: FloatArray = np.zeros(0, dtype=np.float64)
        self.finite_prices: FloatArray | None = None  # the price column last checked finite

    def arrays(
        self, n: int
    ) -> tuple[FloatArray, npt.NDArray[np.int8], FloatArray, FloatArray, FloatArray]:
        """(orders, reasons, held, equity, gross value): empty but the last, a view of n rows."""
        if self._gross_value.shape[0] < n:
            self._gross_value = np.empty(n, dtype=np.float64)
        return EMPTY_F, EMPTY_I8, EMPTY_F, EMPTY_F, self._gross_value[:n]


def _fresh_arrays(
    n: int,
) -> tuple[FloatArray, npt.NDArray[np.int8], FloatArray, FloatArray, FloatArray]:
    return (
        np.empty(n, dtype=np.float64),
        np.empty(n, dtype=np.int8),
        np.empty(n, dtype=np.float64),
        np.empty(n, dtype=np.float64),
        np.empty(n, dtype=np.float64),
    )


def _symbol_kernel(
    price: FloatArray,
    actions: Int8Array,
    size: FloatArray,
    walk: tuple[int, FloatArray, float],
    config: BacktestConfig,
    start: float | None,
    capacity: int,
    write_rows: bool,
    out: tuple[FloatArray, npt.NDArray[np.int8], FloatArray, FloatArray, FloatArray],
) -> tuple[Any, ...]:
    """The compiled pass over one symbol (autonomy/engine/kernels.py), specialised for the
    live default's metrics-only runs; `walk` = (kind, given positions, lower bound)."""
    kernels = kernels_import()
    kind, given, lo = walk
    costs = config.costs
    terms = (costs.adverse_bps / BPS, costs.fee_per_share, costs.fee_bps / BPS)
    cost_terms = np.array([*terms, TICK, SUB_DOLLAR_TICK, TICK_EPS])
    price, actions = np.ascontiguousarray(price), np.ascontiguousarray(actions)
    step, rounding = float(config.sizing.qty_step), costs.tick_rounding
    if kind == kernels.WALK_LONG_ONLY and not write_rows and start is not None:
        return tuple(
            kernels.symbol_metrics_long_only(
                price, actions, size, step, cost_terms, rounding, start, capacity, out[4]
            )
        )
    add_start = start is not None
    settings = (kind, given, step, lo == 0.0, cost_terms, rounding, start or 0.0, add_start)
    return tuple(kernels.symbol_run(price, actions, size, *settings, capacity, write_rows, *out))


def simulate_symbol(
    price: FloatArray,
    actions: Int8Array,
    config: BacktestConfig,
    rows: IntpArray | None,
    start: float | None = None,
    scratch: Scratch | None = None,
) -> SymbolRun:
    """One symbol's run; `rows` = its rows in the frame (None: all of them, and then `start` is
    added to its equity). With `scratch` (and every row, a positive start) only the metrics are
    wanted: orders, reasons, held and equity are not written (empty)."""
    sizing = config.sizing
    n = price.shape[0]
    size = _order_sizes(price, sizing)
    hi = math.inf if sizing.max_position_qty is None else sizing.max_position_qty
    lo = -hi if sizing.allow_shorts else 0.0
    kernels = kernels_import()
    walk, given = kernels.WALK_GIVEN, EMPTY_F
    if lo == -math.inf and hi == math.inf:
        walk = kernels.WALK_UNBOUNDED
    elif lo == 0.0 and hi == math.inf:
        walk = kernels.WALK_LONG_ONLY
    else:
        given = positions_from_orders(actions.astype(np.float64) * size, lo, hi)
    # positions, orders, reasons, fills and the equity path in one compiled pass
    # (autonomy/engine/kernels.py; the same float operations as the numpy rules it replaced)
    write_rows = scratch is None or start is None or start <= 0
    # fills <= orders; an in-kernel walk moves only on a non-zero action, a given path (float
    # scan) is only bounded by the row count
    capacity = n if walk == kernels.WALK_GIVEN else int(np.count_nonzero(actions))
    out = _fresh_arrays(n) if write_rows or scratch is None else scratch.arrays(n)
    orders, reasons, held, equity, gross_value = out
    fill_local, fills, counts, drawdown, last = _symbol_kernel(
        price, actions, size, (walk, given, lo), config, start, capacity, write_rows, out
    )
    fq, fp, ref, fee = fills
    gross_pnl = float(-(fq * ref).sum() + last[1] * price[-1]) if n else 0.0
    return SymbolRun(
        rows=rows,
        orders=orders,
        reasons=reasons,
        held=held,
        equity=equity,
        gross_value=gross_value,
        fill_local=fill_local,
        fill_qty=fq,
        fill_price=fp,
        fill_reference=ref,
        fill_fee=fee,
        gross_pnl=gross_pnl,
        unfilled=int(n > 0 and last[2] != 0.0),
        counts=counts,
        drawdown=drawdown,
        last_equity=float(last[0]),
    )
