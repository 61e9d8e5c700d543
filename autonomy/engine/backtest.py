"""Vectorised backtest of a live strategy over a `BarFrame`.

The strategy is the live plugin itself: `strategy.evaluate_arrays(frame.features, params)` gives
one action per row (+1 buy, -1 sell, 0 none), the same action `strategy.evaluate` gives for that
row's `SignalEnvelope` (tested per strategy in trading, and end to end in the parity test here).

From actions to fills, mirroring the live decision chain with its default limits
(`trading.gates`) and the simulated broker (`trading.simbroker.services`):

- every non-zero action is a decision (live stores a `TradeDecision` for every intent);
- size (`gate_sizing`): `floor(max_notional_per_trade / price)` shares when a budget is set, else
  `qty` (live `TRADING_DEFAULT_QTY`), floored to `qty_step` (1 share; crypto 1e-8). Live ignores a
  `qty` in strategy params, and so does this: sizing comes from `Sizing`;
- long only unless `allow_shorts`: a sell closes at most the held quantity; a sell with nothing
  held is rejected (`shorts_not_allowed`); buys add to the position (live pyramids: nothing in the
  default chain stops a second buy), up to `max_position_qty` when set (stands in for the
  portfolio caps). So the position after row t is `clip(pos[t-1] + order[t], lo, hi)`, which is
  computed without a Python loop (see `positions_from_orders`);
- a market order decided on row t fills on the symbol's next row (the simulated broker fills an
  order on the first price newer than the one it knew at submit: no look-ahead); the last row's
  order never fills (`unfilled_count`). The fill price is that next price moved against the
  taker by half the spread + slippage + impact bps and rounded to the tick like the broker does
  (buys up, sells down; $0.01, $0.0001 below $1). Fees: `fee_per_share × qty + fee_bps` of the
  notional (the broker's two fee settings);
- mark to market at each row's price; equity is cash + positions at their symbol's last price.

Not modelled (differences from live, by design of a vectorised research engine): buying power
(`insufficient_buying_power`) and % of equity caps, which depend on the equity path; cooldowns;
limit-order conversion (`TRADING_EXECUTION_PREFER_LIMIT`); orders of several cycles filling in
one later batch (live fills all pending orders on the batch's newest price; here each fills on the
next row, the live behaviour when one bar arrives per cycle).

Metrics (all float64, money in the quote currency):
- gross_pnl: PnL if every fill were at the reference (next-row) price with no fee;
- net_pnl: final equity - starting cash; total_cost = gross_pnl - net_pnl (spread, slippage,
  impact and tick rounding paid, plus fees); cost_bps = total_cost / traded_notional × 1e4;
- max_drawdown: largest fall of the equity curve from its running peak (starting cash included),
  in money (the gate-2 unit) and as a fraction of the peak;
- turnover_ratio: traded notional / starting cash;
- exposure: mean gross position value / starting cash; time_in_market: share of rows with an
  open position.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from autonomy.engine.data import BarFrame, FloatArray, ns_to_datetime
from trading.strategies.base import Strategy

Int8Array = npt.NDArray[np.int8]
IntpArray = npt.NDArray[np.intp]
BPS = 10_000.0
TICK = 0.01
SUB_DOLLAR_TICK = 0.0001
# A price computed in float lands a few ulps off the exact decimal; this is far below a tick.
_TICK_EPS = 1e-9


@dataclass(frozen=True)
class CostModel:
    """Per-fill costs. Defaults are the simulated broker's defaults (5 bps slippage, no fee and no
    spread model): the live paper fill of the same order."""

    spread_bps: float = 0.0  # full quoted spread; a taker pays half of it
    slippage_bps: float = 5.0  # SIMULATED_BROKER_SLIPPAGE_BPS
    impact_bps: float = 0.0  # extra price impact (the liquidity stress case)
    fee_bps: float = 0.0  # SIMULATED_BROKER_FEE_BPS
    fee_per_share: float = 0.0  # SIMULATED_BROKER_FEE_PER_SHARE
    tick_rounding: bool = True

    @property
    def adverse_bps(self) -> float:
        return self.spread_bps / 2.0 + self.slippage_bps + self.impact_bps


@dataclass(frozen=True)
class Sizing:
    qty: float = 1.0  # TRADING_DEFAULT_QTY: used when no budget is set
    max_notional_per_trade: float | None = None  # the strategy budget
    qty_step: float = 1.0
    allow_shorts: bool = False
    max_position_qty: float | None = None  # |position| cap; None = unbounded (live default)
    max_fill_qty: float | None = None  # fill-size cap per order (liquidity); remainder cancelled


@dataclass(frozen=True)
class BacktestConfig:
    costs: CostModel = field(default_factory=CostModel)
    sizing: Sizing = field(default_factory=Sizing)
    starting_cash: float = 100_000.0  # SIMULATED_BROKER_STARTING_CASH


@dataclass(frozen=True)
class BacktestMetrics:
    bars: int
    decision_count: int
    buy_decisions: int
    sell_decisions: int
    order_count: int  # decisions that passed sizing/position rules
    rejected_count: int
    unfilled_count: int
    trade_count: int  # fills
    filled_qty: float
    traded_notional: float
    gross_pnl: float
    net_pnl: float
    total_cost: float
    fees: float
    cost_bps: float
    max_drawdown: float
    max_drawdown_pct: float
    turnover_ratio: float
    exposure: float
    time_in_market: float
    end_equity: float

    def as_dict(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Decision:
    ts_ns: int
    symbol: str
    seq: int
    side: str  # buy | sell
    status: str  # accepted | rejected
    qty: float  # the order qty (0 when rejected)
    reason: str = ""


@dataclass(frozen=True)
class Trade:
    ts_ns: int
    symbol: str
    side: str
    qty: float
    price: float
    reference_price: float
    fee: float
    decision_ts_ns: int


@dataclass(frozen=True)
class BacktestResult:
    metrics: BacktestMetrics
    actions: Int8Array
    orders: FloatArray  # signed order qty at each decision row (0: none or rejected)
    reject_reason: npt.NDArray[np.int8]  # index into REJECT_REASONS (0 = not rejected)
    held: FloatArray  # the row's symbol position after that row's fill
    equity: FloatArray  # portfolio equity after each row
    fill_rows: IntpArray  # rows where a fill happened, increasing
    fill_qty: FloatArray  # signed
    fill_price: FloatArray
    fill_reference: FloatArray
    fill_fee: FloatArray
    fill_decision_rows: IntpArray

    def decisions(self, frame: BarFrame) -> list[Decision]:
        out: list[Decision] = []
        for row in np.flatnonzero(self.actions).tolist():
            reason = REJECT_REASONS[int(self.reject_reason[row])]
            out.append(
                Decision(
                    ts_ns=int(frame.ts[row]),
                    symbol=frame.symbols[int(frame.symbol[row])],
                    seq=int(frame.seq[row]),
                    side="buy" if self.actions[row] > 0 else "sell",
                    status="rejected" if reason else "accepted",
                    qty=abs(float(self.orders[row])),
                    reason=reason,
                )
            )
        return out

    def trades(self, frame: BarFrame) -> list[Trade]:
        return [
            Trade(
                ts_ns=int(frame.ts[row]),
                symbol=frame.symbols[int(frame.symbol[row])],
                side="buy" if qty > 0 else "sell",
                qty=abs(qty),
                price=price,
                reference_price=ref,
                fee=fee,
                decision_ts_ns=int(frame.ts[decision]),
            )
            for row, qty, price, ref, fee, decision in zip(
                self.fill_rows.tolist(),
                self.fill_qty.tolist(),
                self.fill_price.tolist(),
                self.fill_reference.tolist(),
                self.fill_fee.tolist(),
                self.fill_decision_rows.tolist(),
                strict=True,
            )
        ]

    def artifact(
        self, frame: BarFrame, *, include_trades: bool = True, equity_points: int = 200
    ) -> dict[str, Any]:
        """JSON-ready summary: metrics, trades (optional) and a downsampled equity curve."""
        out: dict[str, Any] = {"metrics": self.metrics.as_dict()}
        if include_trades:
            out["trades"] = [
                {
                    "ts": ns_to_datetime(t.ts_ns).isoformat(),
                    "symbol": t.symbol,
                    "side": t.side,
                    "qty": t.qty,
                    "price": t.price,
                    "reference_price": t.reference_price,
                    "fee": t.fee,
                    "decision_ts": ns_to_datetime(t.decision_ts_ns).isoformat(),
                }
                for t in self.trades(frame)
            ]
        out["equity_curve"] = equity_curve(frame, self.equity, points=equity_points)
        return out


REJECT_REASONS = ("", "shorts_not_allowed", "allocator_reject_zero_qty", "position_cap")


def _kernels() -> ModuleType:
    """`autonomy.engine.kernels`, imported on first use: numba costs about half a second to import,
    which every process that merely loads the engine (web, consumers) would pay."""
    from autonomy.engine import kernels

    return kernels


# kernels.SHORTS, kernels.ZERO_QTY, kernels.CAP index this tuple


def equity_curve(frame: BarFrame, equity: FloatArray, *, points: int = 200) -> list[list[Any]]:
    """[[iso ts, equity], ...] at `points` evenly spaced rows (first and last included)."""
    n = equity.shape[0]
    if n == 0:
        return []
    rows = np.unique(np.linspace(0, n - 1, num=min(points, n)).round().astype(np.intp))
    return [[ns_to_datetime(int(frame.ts[r])).isoformat(), float(equity[r])] for r in rows]


def positions_from_orders(orders: FloatArray, lo: float, hi: float) -> FloatArray:
    """pos[t] = clip(pos[t-1] + orders[t], lo, hi) with pos[-1] = 0, without a Python loop.

    lo = 0, hi = inf (long only, uncapped) is the reflected walk
    pos = S - min(0, running min of S) with S = cumsum(orders). Otherwise the maps
    p -> clip(p + a, l, h) are closed under composition,
    clip(clip(p + a1, l1, h1) + a2, l2, h2) = clip(p + a1 + a2, clip(l1 + a2, l2, h2),
    clip(h1 + a2, l2, h2)), so a log-depth prefix scan (Hillis-Steele) composes them.
    """
    if lo > 0 or hi < 0:
        raise ValueError(f"position bounds must contain 0, got [{lo}, {hi}]")
    if lo == -math.inf and hi == math.inf:
        return np.cumsum(orders)
    if lo == 0.0 and hi == math.inf:
        return np.asarray(_kernels().reflected_walk(np.ascontiguousarray(orders)), dtype=np.float64)
    n = orders.shape[0]
    a = np.array(orders, dtype=np.float64, copy=True)
    low = np.full(n, lo)
    high = np.full(n, hi)
    k = 1
    while k < n:
        a2, l2, h2 = a[k:], low[k:], high[k:]
        new_low = np.clip(low[:-k] + a2, l2, h2)
        new_high = np.clip(high[:-k] + a2, l2, h2)
        new_a = a[:-k] + a2
        a[k:], low[k:], high[k:] = new_a, new_low, new_high
        k *= 2
    return np.clip(a, low, high)


def _first_difference(x: FloatArray) -> FloatArray:
    """x[t] - x[t-1] with x[-1] = 0 (np.diff with prepend copies the whole array first)."""
    out = np.empty_like(x)
    if x.shape[0]:
        out[0] = x[0]
        np.subtract(x[1:], x[:-1], out=out[1:])
    return out


@dataclass
class _SymbolRun:
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
        cap = math.floor(sizing.max_fill_qty / step + _TICK_EPS) * step
    if sizing.max_notional_per_trade is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.where(price > 0, sizing.max_notional_per_trade / price, 0.0)
        return np.minimum(np.floor(raw / step + _TICK_EPS) * step, cap)
    return np.array([min(math.floor(sizing.qty / step + _TICK_EPS) * step, cap)])


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
        return _EMPTY_F, _EMPTY_I8, _EMPTY_F, _EMPTY_F, self._gross_value[:n]


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
    kernels = _kernels()
    kind, given, lo = walk
    costs = config.costs
    terms = (costs.adverse_bps / BPS, costs.fee_per_share, costs.fee_bps / BPS)
    cost_terms = np.array([*terms, TICK, SUB_DOLLAR_TICK, _TICK_EPS])
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


def _simulate_symbol(
    price: FloatArray,
    actions: Int8Array,
    config: BacktestConfig,
    rows: IntpArray | None,
    start: float | None = None,
    scratch: Scratch | None = None,
) -> _SymbolRun:
    """One symbol's run; `rows` = its rows in the frame (None: all of them, and then `start` is
    added to its equity). With `scratch` (and every row, a positive start) only the metrics are
    wanted: orders, reasons, held and equity are not written (empty)."""
    sizing = config.sizing
    n = price.shape[0]
    size = _order_sizes(price, sizing)
    hi = math.inf if sizing.max_position_qty is None else sizing.max_position_qty
    lo = -hi if sizing.allow_shorts else 0.0
    kernels = _kernels()
    walk, given = kernels.WALK_GIVEN, _EMPTY_F
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
    return _SymbolRun(
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


def _merged_runs(
    runs: list[_SymbolRun], n: int, start: float
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
            equity_inc[run.rows] = _first_difference(run.equity)
            value_inc[run.rows] = _first_difference(run.gross_value)
            open_inc[run.rows] = np.diff((run.held != 0.0).astype(np.int64), prepend=0)
        equity = start + np.cumsum(equity_inc)
        gross_value = np.cumsum(value_inc)
        in_market = np.count_nonzero(np.cumsum(open_inc))
    return orders, reasons, held, equity, gross_value, int(in_market)


def _merged_fills(
    runs: list[_SymbolRun],
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
        else _EMPTY_I
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
        else _EMPTY_I
    )
    return fill_rows, fill_qty, fill_price, fill_reference, fill_fee, decision_rows


def _drawdown(equity: FloatArray, start: float) -> tuple[float, float]:
    """(max_drawdown, max_drawdown_pct): the largest fall from the running peak (starting cash
    included) in money and as a fraction of that peak."""
    if not equity.shape[0]:
        return 0.0, 0.0
    if start > 0:
        worst, worst_pct = _kernels().drawdown(equity, start)
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
        runs = [_simulate_symbol(frame.price, actions, config, None, start, scratch)]
    else:
        runs = [
            _simulate_symbol(frame.price[rows], actions[rows], config, rows)
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


_EMPTY_I: IntpArray = np.zeros(0, dtype=np.intp)
_EMPTY_F: FloatArray = np.zeros(0, dtype=np.float64)
_EMPTY_I8: npt.NDArray[np.int8] = np.zeros(0, dtype=np.int8)


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
