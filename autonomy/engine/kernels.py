"""Compiled (numba) kernels of the backtest: one pass over a symbol's rows instead of a dozen
whole-array numpy temporaries.

Each kernel performs, element by element, exactly the float operations the numpy formulation it
replaced performed (same operands, same order; numpy's `cumsum`/`minimum.accumulate` are
sequential, `np.minimum(a, b)` is `a if a < b else b`, `np.round(x, 4)` is
`rint(x * 1e4) / 1e4`), with strict IEEE arithmetic, so results are bit-for-bit those of the
numpy code: tested against that code in autonomy/tests/engine/test_kernels.py. Sums over many
values (`gross_pnl`, traded notional, mean exposure) stay numpy reductions in
`autonomy.engine.backtest`, whose pairwise summation order a loop would not reproduce.

Compiled with `trading.jit.kernel` (see trading/jit.py: arithmetic, error model, cache).
`autonomy.engine.backtest` imports this module on first use (numba's import cost).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trading.jit import inline_kernel, kernel

Array = Any  # numba dispatchers are untyped for mypy; `autonomy.engine.backtest` annotates

SHORTS, ZERO_QTY, CAP = 1, 2, 3  # indices into backtest.REJECT_REASONS


@kernel
def reflected_walk(orders: Array) -> Array:  # pragma: no cover - compiled
    """pos = S - min(0, running min of S), S = cumsum(orders): clip(pos + order, 0, inf)."""
    n = orders.shape[0]
    pos = np.empty(n, dtype=np.float64)
    s = 0.0
    low = 0.0
    for t in range(n):
        if t == 0:
            s = orders[0]
            low = s
        else:
            s = s + orders[t]
            low = low if low < s else s
        pos[t] = s - (low if low < 0.0 else 0.0)
    return pos


@kernel
def fill_price(
    reference: float, side: float, costs: Array, tick_rounding: bool
) -> float:  # pragma: no cover - compiled
    """The reference moved against the taker by the adverse fraction costs[0], rounded to the
    tick costs[3] (costs[4] below $1; buys up, sells down, with slack costs[5]) and then to 4
    decimals like the broker."""
    price: float = reference * (1.0 + side * costs[0])
    if not tick_rounding:
        return price
    tick = costs[4] if price < 1.0 else costs[3]
    steps = price / tick
    rounded = np.ceil(steps - costs[5]) if side > 0 else np.floor(steps + costs[5])
    ten_thousandths: float = np.rint(rounded * tick * 10000.0)
    return float(ten_thousandths / 10000.0)


WALK_GIVEN, WALK_UNBOUNDED, WALK_LONG_ONLY = 0, 1, 2
# The states before the first row are chosen so the first row needs no special case (each
# first-row result is the same float as numpy's first element).
WALK_START = (-0.0, np.inf)
DRAWDOWN_START = (-np.inf, np.nan, 0.0, -np.inf, 0.0)


@kernel
def position_step(
    walk: int, given_pos: Array, t: int, wanted: float, walk_state: tuple[float, float]
) -> tuple[float, tuple[float, float]]:  # pragma: no cover - compiled
    """The position after row t before step rounding, and the walk state (running sum S, its
    running min; WALK_START before the first row): S (WALK_UNBOUNDED), S - min(0, running min
    of S) (WALK_LONG_ONLY), or `given_pos[t]` (WALK_GIVEN)."""
    if walk == WALK_GIVEN:
        return given_pos[t], walk_state
    total, low = walk_state
    total = total + wanted  # -0.0 + w is w (np.cumsum's first element), -0.0 included
    if walk == WALK_UNBOUNDED:
        return total, (total, low)
    low = low if low < total else total  # inf at first: the first sum
    return total - (low if low < 0.0 else 0.0), (total, low)


@kernel
def reject_reason(
    action: int, wanted: float, long_only: bool
) -> int:  # pragma: no cover - compiled
    """Why a non-zero action gave no order: zero size, a sell with nothing held (long only), or
    the position cap."""
    if wanted == 0.0:
        return ZERO_QTY
    if action < 0 and long_only:
        return SHORTS
    return CAP


@kernel
def fill_into(
    fills: Array, k: int, q: float, reference: float, costs: Array, tick_rounding: bool
) -> float:  # pragma: no cover - compiled
    """Record fill k (qty, price, reference, fee in fills[0..3, k]); returns its cash flow."""
    side = 1.0 if q > 0 else -1.0
    px = fill_price(reference, side, costs, tick_rounding)
    abs_q = np.abs(q)
    fee = abs_q * costs[1] + abs_q * px * costs[2]
    fills[0, k] = q
    fills[1, k] = px
    fills[2, k] = reference
    fills[3, k] = fee
    flow: float = -(q * px) - fee
    return flow


@inline_kernel
def symbol_pass(
    price: Array,
    actions: Array,
    size: Array,
    walk: int,
    given_pos: Array,
    qty_step: float,
    long_only: bool,
    costs: Array,
    tick_rounding: bool,
    start: float,
    add_start: bool,
    capacity: int,
    write_rows: bool,
    orders: Array,
    reasons: Array,
    held: Array,
    equity: Array,
    gross_value: Array,
) -> tuple[Array, ...]:  # pragma: no cover - compiled
    """One symbol's backtest in one pass (`autonomy.engine.backtest` has the rules; called as
    `symbol_run` or `symbol_metrics_long_only`). The order each row asks for is action × size
    (`size` has one value, or one per row); the position after each row comes from
    `position_step`, rounded to `qty_step` unless it is 1. An order fills on the next row at
    `fill_price`; `costs` = (adverse fraction, fee per share, fee fraction, tick, sub-dollar tick,
    rounding slack). Writes |position value| and, when `write_rows`, orders, reject reasons, held
    position and equity (+ `start` when `add_start`) into the arrays given (length n, reusable);
    returns the fill rows, the fills (4 × count: qty, price, reference, fee), the counts (buy
    actions, sell actions, orders, rejected, rows holding a position), when `add_start` with a
    positive `start` the `drawdown` of the equity (else empty), and the last row's (equity, held,
    order). `capacity` bounds the fill count (the caller's bound on the orders)."""
    n = price.shape[0]
    size_stride = 1 if size.shape[0] == n and n != 1 else 0  # one size, or one per row
    fill_rows, fills = np.empty(capacity, dtype=np.intp), np.empty((4, capacity))
    k = buys = sells = n_orders = rejected = in_market = 0
    track = add_start and start > 0.0 and n > 0  # the frame's equity: its drawdown too
    dd_state = DRAWDOWN_START
    walk_state = WALK_START
    cash = -0.0  # -0.0 + the first flow (0.0) is np.cumsum's first element
    prev_pos = prev_order = e = h = 0.0
    for t in range(n):
        action = actions[t]
        wanted = np.float64(action) * size[t * size_stride]
        raw, walk_state = position_step(walk, given_pos, t, wanted, walk_state)
        pos = raw if qty_step == 1.0 else np.rint(raw / qty_step) * qty_step
        order = pos - prev_pos  # x - 0.0 is x: the first row's order is its position
        if write_rows:
            orders[t], reasons[t] = order, 0
        buys += action > 0
        sells += action < 0
        if order != 0.0:
            n_orders += 1
        elif action != 0:
            rejected += 1
            if write_rows:
                reasons[t] = reject_reason(action, wanted, long_only)
        flow = 0.0
        h = prev_pos
        if prev_order != 0.0:
            flow = fill_into(fills, k, prev_order, price[t], costs, tick_rounding)
            fill_rows[k] = t
            k += 1
        cash = cash + flow
        in_market += h != 0.0
        value = h * price[t]
        e = start + (cash + value) if add_start else cash + value
        if write_rows:
            held[t] = h
            equity[t] = e
        if track:
            dd_state = drawdown_step(e, start, dd_state)
        gross_value[t] = np.abs(value)
        prev_pos, prev_order = pos, order
    drawdowns = np.array(drawdown_end(dd_state)) if track else np.zeros(0)
    counts = np.array([buys, sells, n_orders, rejected, in_market], dtype=np.int64)
    last = np.array([e, h, prev_order])
    return fill_rows[:k].copy(), fills[:, :k].copy(), counts, drawdowns, last


@kernel
def symbol_run(
    price: Array,
    actions: Array,
    size: Array,
    walk: int,
    given_pos: Array,
    qty_step: float,
    long_only: bool,
    costs: Array,
    tick_rounding: bool,
    start: float,
    add_start: bool,
    capacity: int,
    write_rows: bool,
    orders: Array,
    reasons: Array,
    held: Array,
    equity: Array,
    gross_value: Array,
) -> tuple[Array, ...]:  # pragma: no cover - compiled
    """`symbol_pass` with every setting given at run time."""
    result: tuple[Array, ...] = symbol_pass(
        price,
        actions,
        size,
        walk,
        given_pos,
        qty_step,
        long_only,
        costs,
        tick_rounding,
        start,
        add_start,
        capacity,
        write_rows,
        orders,
        reasons,
        held,
        equity,
        gross_value,
    )
    return result


@kernel
def symbol_metrics_long_only(
    price: Array,
    actions: Array,
    size: Array,
    qty_step: float,
    costs: Array,
    tick_rounding: bool,
    start: float,
    capacity: int,
    gross_value: Array,
) -> tuple[Array, ...]:  # pragma: no cover - compiled
    """`symbol_pass` for the runs of walk-forward folds and sweeps in the live default (long
    only, no position cap, every row one symbol's, metrics only), compiled with those settings
    fixed: the per-row branches on them vanish (about a quarter of the pass)."""
    empty = np.empty(0, dtype=np.float64)
    result: tuple[Array, ...] = symbol_pass(
        price,
        actions,
        size,
        WALK_LONG_ONLY,
        empty,
        qty_step,
        True,
        costs,
        tick_rounding,
        start,
        True,
        capacity,
        False,
        empty,
        np.empty(0, dtype=np.int8),
        empty,
        empty,
        gross_value,
    )
    return result


@kernel
def drawdown_step(
    e: float, start: float, state: tuple[float, float, float, float, float]
) -> tuple[float, float, float, float, float]:  # pragma: no cover - compiled
    """One row of `drawdown`: state = (running max, peak, largest fall below that peak, worst
    fall, worst fall / peak of the peaks closed so far)."""
    running, peak, segment, worst, worst_pct = state
    # np.maximum(a, b) is `a if a > b else b`; from DRAWDOWN_START the first row sets everything
    running = running if running > e else e
    new_peak = running if running > start else start
    dd = new_peak - e
    if dd > worst:
        worst = dd
    if new_peak != peak:  # a new peak (the NaN start included): close the last one's segment
        pct = segment / peak
        if pct > worst_pct:
            worst_pct = pct
        peak, segment = new_peak, dd
    elif dd > segment:
        segment = dd
    return running, peak, segment, worst, worst_pct


@kernel
def drawdown_end(
    state: tuple[float, float, float, float, float],
) -> tuple[float, float]:  # pragma: no cover - compiled
    """(max drawdown, max drawdown / peak) once every row went through `drawdown_step`."""
    _, peak, segment, worst, worst_pct = state
    pct = segment / peak
    return worst, (pct if pct > worst_pct else worst_pct)


@kernel
def drawdown(equity: Array, start: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """(max of peak - equity, max of (peak - equity) / peak), peak = max(running max, start):
    numpy's `np.maximum(np.maximum.accumulate(equity), start)` and the two `.max()`, for a
    positive `start` (so every peak is positive; the caller keeps numpy for the others) and at
    least one row.

    While the peak stays the same, (peak - e) / peak is largest where peak - e is (a division by
    the same positive number keeps the order, rounding included), so the ratio is taken once per
    peak, not per row.
    """
    state = DRAWDOWN_START
    for t in range(equity.shape[0]):
        state = drawdown_step(equity[t], start, state)
    worst, worst_pct = drawdown_end(state)
    return float(worst), float(worst_pct)
