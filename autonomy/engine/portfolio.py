"""Several strategies traded together (issue #21, item 3): each strategy on its own book, under the
allocator's caps, as one portfolio.

Live, every enabled strategy decides on every signal of its universe, each order is booked to
its strategy (the strategy books of `trading.services.books`), and the allocator
(`trading.gates.gate_allocator`, when `TRADING_ALLOCATOR_ENABLED`) clips a risk-increasing
order to the notional room left under its strategy's budget, its symbol's budget, the per-symbol
capacity (absolute and % of equity) and its correlation group's cap.

Here each (strategy, symbol) pair is simulated by the backtest engine on that symbol's rows with
the strategy's sizing (`autonomy.engine.backtest`), and the pairs are summed into one equity
path. The allocator's budgets are shared out statically, never dynamically:

- a strategy's budget is split evenly over the symbols it trades in the data; a symbol's budget
  and the per-symbol capacity evenly over the strategies trading that symbol; a correlation
  group's cap evenly over the (strategy, symbol) pairs in the group. The capacity's % of equity
  is taken of the starting cash;
- a pair's notional room is the smallest share that applies, and its position is capped at
  `floor(room / the symbol's highest price in the data)` shares (the position can then never
  exceed the room at any price of the window);
- an order beyond the cap is clipped, and refused with `position_cap` when nothing is left.

So the modelled book never holds more than any cap allows, and may hold less than live would
(live lends a quiet strategy's room to a busy one). With one strategy and no cap, the book is
exactly the engine's backtest of that strategy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from autonomy.engine.backtest import (
    BPS,
    BacktestConfig,
    BacktestMetrics,
    BacktestResult,
    CostModel,
    Int8Array,
    Sizing,
    simulate,
    strategy_actions,
)
from autonomy.engine.data import BarFrame
from trading.strategies.base import Strategy

Part = tuple[int, np.ndarray, BacktestResult]  # (leg index, frame rows, its backtest)


@dataclass(frozen=True)
class AllocatorCaps:
    """The allocator's notional caps (the `TRADING_ALLOCATOR_*` settings), as floats."""

    strategy_notional: Mapping[str, float] = field(default_factory=dict)
    symbol_notional: Mapping[str, float] = field(default_factory=dict)
    max_symbol_notional: float | None = None
    max_symbol_pct_equity: float | None = None
    symbol_groups: Mapping[str, str] = field(default_factory=dict)
    group_notional: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Leg:
    """One strategy of the portfolio: its plugin, parameters, sizing and universe."""

    name: str
    strategy: Strategy
    params: Mapping[str, Any]
    sizing: Sizing
    symbols: tuple[str, ...] = ()  # empty: every symbol of the data

    def trades(self, symbol: str) -> bool:
        return not self.symbols or symbol in self.symbols


@dataclass(frozen=True)
class BookResult:
    result: BacktestResult  # the portfolio: every book summed
    legs: dict[str, BacktestMetrics]  # each strategy's own book
    position_caps: dict[str, dict[str, float]]  # strategy -> symbol -> share cap applied


def leg_actions(frame: BarFrame, leg: Leg) -> Int8Array:
    """The strategy's action on every row, 0 on rows outside its universe."""
    actions = strategy_actions(frame, leg.strategy, leg.params)
    if not leg.symbols:
        return actions
    names = np.asarray(frame.symbols, dtype=object)[frame.symbol]
    return np.where(np.isin(names, list(leg.symbols)), actions, 0).astype(np.int8)


def _pairs(frame: BarFrame, legs: Sequence[Leg]) -> list[tuple[int, str, np.ndarray]]:
    """(leg index, symbol, its rows) for every strategy and symbol it trades in the data."""
    out: list[tuple[int, str, np.ndarray]] = []
    for code, symbol in enumerate(frame.symbols):
        rows = np.flatnonzero(frame.symbol == code)
        if rows.shape[0] == 0:
            continue
        out.extend((k, symbol, rows) for k, leg in enumerate(legs) if leg.trades(symbol))
    return out


def _shares(
    legs: Sequence[Leg],
    pairs: Sequence[tuple[int, str, np.ndarray]],
    caps: AllocatorCaps,
    cash: float,
) -> dict[tuple[int, str], float]:
    """Each pair's notional room: the smallest of its shares of the caps (module doc)."""
    per_leg = {k: sum(1 for j, _, _ in pairs if j == k) for k in range(len(legs))}
    per_symbol: dict[str, int] = {}
    per_group: dict[str, int] = {}
    for _, symbol, _ in pairs:
        per_symbol[symbol] = per_symbol.get(symbol, 0) + 1
        group = caps.symbol_groups.get(symbol)
        if group is not None:
            per_group[group] = per_group.get(group, 0) + 1
    capacity = [x for x in (caps.max_symbol_notional,) if x is not None]
    if caps.max_symbol_pct_equity is not None:
        capacity.append(cash * caps.max_symbol_pct_equity)
    rooms: dict[tuple[int, str], float] = {}
    for k, symbol, _ in pairs:
        shares = []
        if (budget := caps.strategy_notional.get(legs[k].name)) is not None:
            shares.append(budget / per_leg[k])
        if (budget := caps.symbol_notional.get(symbol)) is not None:
            shares.append(budget / per_symbol[symbol])
        if capacity:
            shares.append(min(capacity) / per_symbol[symbol])
        group = caps.symbol_groups.get(symbol)
        if group is not None and (budget := caps.group_notional.get(group)) is not None:
            shares.append(budget / per_group[group])
        if shares:
            rooms[(k, symbol)] = min(shares)
    return rooms


def _capped_sizing(sizing: Sizing, room: float | None, top_price: float) -> Sizing:
    if room is None:
        return sizing
    step = sizing.qty_step
    qty = math.floor(max(room, 0.0) / top_price / step + 1e-9) * step if top_price > 0 else 0.0
    current = sizing.max_position_qty
    return replace(sizing, max_position_qty=qty if current is None else min(current, qty))


def simulate_book(
    frame: BarFrame,
    legs: Sequence[Leg],
    *,
    costs: CostModel,
    starting_cash: float,
    caps: AllocatorCaps | None = None,
    max_fill_qty: float | None = None,
    actions: Sequence[Int8Array] | None = None,
) -> BookResult:
    """The portfolio of `legs` over `frame` (module doc). `actions`: each leg's actions on
    `frame`'s rows when already computed (`leg_actions`); `max_fill_qty` caps every fill."""
    if not legs:
        raise ValueError("a portfolio needs at least one strategy")
    acts = list(actions) if actions is not None else [leg_actions(frame, leg) for leg in legs]
    pairs = _pairs(frame, legs)
    rooms = _shares(legs, pairs, caps or AllocatorCaps(), starting_cash)

    def config(k: int, room: float | None, top: float) -> BacktestConfig:
        sizing = _capped_sizing(legs[k].sizing, room, top)
        if max_fill_qty is not None:
            sizing = replace(sizing, max_fill_qty=max_fill_qty)
        return BacktestConfig(costs=costs, sizing=sizing, starting_cash=starting_cash)

    if len(legs) == 1 and not rooms:
        whole = simulate(frame, acts[0], config(0, None, 0.0))
        return BookResult(whole, {legs[0].name: whole.metrics}, {legs[0].name: {}})
    parts: list[Part] = []
    applied: dict[str, dict[str, float]] = {leg.name: {} for leg in legs}
    for k, symbol, rows in pairs:
        room = rooms.get((k, symbol))
        sub = frame.take(rows)
        top = float(sub.price.max()) if rows.shape[0] else 0.0
        cfg = config(k, room, top)
        if room is not None:
            applied[legs[k].name][symbol] = float(cfg.sizing.max_position_qty or 0.0)
        parts.append((k, rows, simulate(sub, acts[k][rows], cfg)))
    result = _merge(frame, parts, acts, starting_cash)
    per_leg = {
        leg.name: _merge(frame, [p for p in parts if p[0] == k], [acts[k]], starting_cash).metrics
        for k, leg in enumerate(legs)
    }
    return BookResult(result, per_leg, applied)


def _increments(n: int, parts: Sequence[Part], series: Any) -> np.ndarray:
    """Each part's series (a level on its rows, held until its next row) as increments on the
    frame's rows, summed over the parts: the cumulative sum is the portfolio's level."""
    out = np.zeros(n)
    for _, rows, res in parts:
        np.add.at(out, rows, np.diff(series(rows, res), prepend=0.0))
    return out


def _merge(
    frame: BarFrame,
    parts: Sequence[Part],
    actions: Sequence[Int8Array],
    start: float,
) -> BacktestResult:
    """The parts (each a strategy's book on one symbol) as one portfolio result."""
    n = len(frame)
    equity = start + np.cumsum(_increments(n, parts, lambda rows, r: r.equity - start))
    price = frame.price
    gross_value = np.cumsum(_increments(n, parts, lambda rows, r: np.abs(r.held * price[rows])))
    orders, held = np.zeros(n), np.zeros(n)
    reasons = np.zeros(n, dtype=np.int8)
    open_inc = np.zeros(n, dtype=np.int64)
    for _, rows, res in parts:
        orders[rows] += res.orders
        held[rows] += res.held
        reasons[rows] = np.where(reasons[rows] == 0, res.reject_reason, reasons[rows])
        np.add.at(open_inc, rows, np.diff((res.held != 0.0).astype(np.int64), prepend=0))
    fills = _merged_fills(parts)
    combined = np.sign(np.sum(np.asarray(actions, dtype=np.int64), axis=0)).astype(np.int8)
    metrics = _metrics(
        parts, equity, start, n, gross_value, int(np.count_nonzero(np.cumsum(open_inc)))
    )
    return BacktestResult(
        metrics=metrics,
        actions=combined,
        orders=orders,
        reject_reason=reasons,
        held=held,
        equity=equity,
        **fills,
    )


def _merged_fills(parts: Sequence[Part]) -> dict[str, Any]:
    """Every part's fills on the frame's rows, in row order (a row's fills in strategy order)."""
    if not parts:
        empty_i, empty_f = np.zeros(0, dtype=np.intp), np.zeros(0)
        return {
            "fill_rows": empty_i,
            "fill_qty": empty_f,
            "fill_price": empty_f,
            "fill_reference": empty_f,
            "fill_fee": empty_f,
            "fill_decision_rows": empty_i,
        }
    rows = np.concatenate([r[res.fill_rows] for _, r, res in parts])
    order = np.argsort(rows, kind="stable")

    def cat(name: str) -> Any:
        return np.concatenate([getattr(res, name) for _, _, res in parts])[order]

    return {
        "fill_rows": rows[order],
        "fill_qty": cat("fill_qty"),
        "fill_price": cat("fill_price"),
        "fill_reference": cat("fill_reference"),
        "fill_fee": cat("fill_fee"),
        "fill_decision_rows": np.concatenate([r[res.fill_decision_rows] for _, r, res in parts])[
            order
        ],
    }


def _metrics(
    parts: Sequence[Part],
    equity: np.ndarray,
    start: float,
    n: int,
    gross_value: np.ndarray,
    in_market: int,
) -> BacktestMetrics:
    ms = [res.metrics for _, _, res in parts]

    def total(name: str) -> float:
        return math.fsum(float(getattr(m, name)) for m in ms)

    notional, cost = total("traded_notional"), total("total_cost")
    end = float(equity[-1]) if n else start
    peak = np.maximum(np.maximum.accumulate(equity), start) if n else np.zeros(0)
    drawdown = peak - equity
    return BacktestMetrics(
        bars=n,
        decision_count=int(total("decision_count")),
        buy_decisions=int(total("buy_decisions")),
        sell_decisions=int(total("sell_decisions")),
        order_count=int(total("order_count")),
        rejected_count=int(total("rejected_count")),
        unfilled_count=int(total("unfilled_count")),
        trade_count=int(total("trade_count")),
        filled_qty=total("filled_qty"),
        traded_notional=notional,
        gross_pnl=total("gross_pnl"),
        net_pnl=end - start,
        total_cost=cost,
        fees=total("fees"),
        cost_bps=cost / notional * BPS if notional > 0 else 0.0,
        max_drawdown=float(drawdown.max()) if n else 0.0,
        max_drawdown_pct=float((drawdown / peak).max()) if n else 0.0,
        turnover_ratio=notional / start if start > 0 else 0.0,
        exposure=float(gross_value.mean()) / start if n and start > 0 else 0.0,
        time_in_market=in_market / n if n else 0.0,
        end_equity=end,
    )
