"""Compiled (numba) kernels of the backtest: one pass over a symbol's rows instead of a dozen
whole-array numpy temporaries.

Each kernel performs, element by element, exactly the float operations the numpy formulation it
replaced performed (same operands, same order; numpy's `cumsum`/`minimum.accumulate` are
sequential, `np.minimum(a, b)` is `a if a < b else b`, `np.round(x, 4)` is
`rint(x * 1e4) / 1e4`), with numba's default strict IEEE arithmetic (no fused multiply-add, no
reassociation), so results are bit-for-bit those of the numpy code: tested against that code in
autonomy/tests/engine/test_kernels.py. Sums over many values (`gross_pnl`, traded notional, mean
exposure) stay numpy reductions in `autonomy.engine.backtest`, whose pairwise summation order a
loop would not reproduce.

`error_model="numpy"`: a float division by zero gives inf/NaN as in numpy (numba's default
raises ZeroDivisionError and checks every division). `cache=True`: compiled once per machine
into `__pycache__` beside this file (see `trading.kernels` for the cache and its cost).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

Array = Any  # numba dispatchers are untyped for mypy; `autonomy.engine.backtest` annotates

SHORTS, ZERO_QTY, CAP = 1, 2, 3  # indices into backtest.REJECT_REASONS
TICK = 0.01
SUB_DOLLAR_TICK = 0.0001
# A price computed in float lands a few ulps off the exact decimal; this is far below a tick.
TICK_EPS = 1e-9


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def fill_price(
    reference: float, side: float, adverse: float, tick_rounding: bool
) -> float:  # pragma: no cover - compiled
    """The reference moved against the taker by `adverse` (a fraction), rounded to the tick
    (buys up, sells down; $0.0001 below $1) and then to 4 decimals like the broker."""
    price = reference * (1.0 + side * adverse)
    if not tick_rounding:
        return price
    tick = SUB_DOLLAR_TICK if price < 1.0 else TICK
    steps = price / tick
    rounded = np.ceil(steps - TICK_EPS) if side > 0 else np.floor(steps + TICK_EPS)
    ten_thousandths: float = np.rint(rounded * tick * 10000.0)
    return ten_thousandths / 10000.0


WALK_GIVEN, WALK_UNBOUNDED, WALK_LONG_ONLY = 0, 1, 2


@njit(cache=True, error_model="numpy")
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
    orders: Array,
    reasons: Array,
    held: Array,
    equity: Array,
    gross_value: Array,
) -> tuple[Array, ...]:  # pragma: no cover - compiled
    """One symbol's backtest in one pass (see `autonomy.engine.backtest` for the rules).

    The order each row asks for is action × size (`size` has one value, or one per row). The
    position after each row is the running sum of those orders (`walk` WALK_UNBOUNDED), that sum
    reflected at 0 (WALK_LONG_ONLY: pos = S - min(0, running min of S)), or `given_pos`
    (WALK_GIVEN, other bounds); then rounded to `qty_step` unless it is 1. An order fills on the
    next row at `fill_price`; `costs` = (adverse fraction, fee per share, fee fraction).
    Writes orders, reject reasons, held position, equity (+ `start` when `add_start`) and
    |position value| into the five arrays given (length n: the caller may reuse them), and
    returns the fills (local row, qty, price, reference, fee), the counts (buy actions, sell
    actions, orders, rejected, rows holding a position) and, when `add_start` with a positive
    `start`, `drawdown` of the equity (else an empty array); `capacity` bounds the fill count
    (the non-zero actions: every order comes from one).
    """
    n = price.shape[0]
    adverse, fee_per_share, fee_frac = costs[0], costs[1], costs[2]
    per_row = size.shape[0] == n and n != 1
    fill_local = np.empty(capacity, dtype=np.intp)
    fill_qty = np.empty(capacity, dtype=np.float64)
    fill_px = np.empty(capacity, dtype=np.float64)
    fill_ref = np.empty(capacity, dtype=np.float64)
    fill_fee = np.empty(capacity, dtype=np.float64)
    fills = 0
    counts = np.zeros(5, dtype=np.int64)
    track = add_start and start > 0.0 and n > 0  # the frame's equity: its drawdown too
    dd_state = (0.0, 0.0, 0.0, 0.0, 0.0)
    cash = 0.0
    total = 0.0
    low = 0.0
    pos = 0.0
    prev_pos = 0.0
    prev_order = 0.0
    for t in range(n):
        action = actions[t]
        wanted = np.float64(action) * (size[t] if per_row else size[0])
        if walk == WALK_GIVEN:
            raw = given_pos[t]
        else:
            total = wanted if t == 0 else total + wanted
            if walk == WALK_UNBOUNDED:
                raw = total
            else:
                low = total if t == 0 else (low if low < total else total)
                raw = total - (low if low < 0.0 else 0.0)
        pos = raw if qty_step == 1.0 else np.rint(raw / qty_step) * qty_step
        order = pos if t == 0 else pos - prev_pos
        orders[t] = order
        reasons[t] = 0
        if action > 0:
            counts[0] += 1
        elif action < 0:
            counts[1] += 1
        if order != 0.0:
            counts[2] += 1
        elif action != 0:
            counts[3] += 1
            if wanted == 0.0:
                reasons[t] = ZERO_QTY
            elif action < 0 and long_only:
                reasons[t] = SHORTS
            else:
                reasons[t] = CAP
        flow = 0.0
        h = 0.0
        if t > 0:
            h = prev_pos
            if prev_order != 0.0:
                q = prev_order
                side = 1.0 if q > 0 else -1.0
                ref = price[t]
                px = fill_price(ref, side, adverse, tick_rounding)
                abs_q = np.abs(q)
                fee = abs_q * fee_per_share + abs_q * px * fee_frac
                flow = -(q * px) - fee
                fill_local[fills] = t
                fill_qty[fills] = q
                fill_px[fills] = px
                fill_ref[fills] = ref
                fill_fee[fills] = fee
                fills += 1
        cash = flow if t == 0 else cash + flow
        held[t] = h
        if h != 0.0:
            counts[4] += 1
        value = h * price[t]
        e = start + (cash + value) if add_start else cash + value
        equity[t] = e
        if track:
            dd_state = drawdown_step(e, t, start, dd_state)
        gross_value[t] = np.abs(value)
        prev_pos = pos
        prev_order = order
    return (
        fill_local[:fills].copy(),
        fill_qty[:fills].copy(),
        fill_px[:fills].copy(),
        fill_ref[:fills].copy(),
        fill_fee[:fills].copy(),
        counts,
        np.array(drawdown_end(dd_state)) if track else np.zeros(0),
    )


@njit(cache=True, error_model="numpy")
def drawdown_step(
    e: float, t: int, start: float, state: tuple[float, float, float, float, float]
) -> tuple[float, float, float, float, float]:  # pragma: no cover - compiled
    """One row of `drawdown`: state = (running max, peak, largest fall below that peak, worst
    fall, worst fall / peak of the peaks closed so far)."""
    running, peak, segment, worst, worst_pct = state
    # np.maximum(a, b) is `a if a > b else b`
    running = e if t == 0 else (running if running > e else e)
    new_peak = running if running > start else start
    dd = new_peak - e
    if t == 0 or dd > worst:
        worst = dd
    if t == 0:
        peak, segment = new_peak, dd
    elif new_peak != peak:
        pct = segment / peak
        if pct > worst_pct:
            worst_pct = pct
        peak, segment = new_peak, dd
    elif dd > segment:
        segment = dd
    return running, peak, segment, worst, worst_pct


@njit(cache=True, error_model="numpy")
def drawdown_end(
    state: tuple[float, float, float, float, float],
) -> tuple[float, float]:  # pragma: no cover - compiled
    """(max drawdown, max drawdown / peak) once every row went through `drawdown_step`."""
    _, peak, segment, worst, worst_pct = state
    pct = segment / peak
    return worst, (pct if pct > worst_pct else worst_pct)


@njit(cache=True, error_model="numpy")
def drawdown(equity: Array, start: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """(max of peak - equity, max of (peak - equity) / peak), peak = max(running max, start):
    numpy's `np.maximum(np.maximum.accumulate(equity), start)` and the two `.max()`, for a
    positive `start` (so every peak is positive; the caller keeps numpy for the others) and at
    least one row.

    While the peak stays the same, (peak - e) / peak is largest where peak - e is (a division by
    the same positive number keeps the order, rounding included), so the ratio is taken once per
    peak, not per row.
    """
    state = (0.0, 0.0, 0.0, 0.0, 0.0)
    for t in range(equity.shape[0]):
        state = drawdown_step(equity[t], t, start, state)
    return drawdown_end(state)
