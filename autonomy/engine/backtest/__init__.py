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

The package, by part (each submodule imports its siblings, never this package; the compiled
kernels stay in autonomy/engine/kernels.py, imported on first use by `positions.kernels_import`):

- `config`: `CostModel`, `Sizing`, `BacktestConfig`, `BacktestMetrics`, `REJECT_REASONS`, `BPS`,
  the tick constants and array types;
- `results`: `Decision`, `Trade`, `BacktestResult`, `equity_curve`;
- `positions`: `positions_from_orders`, the kernels' lazy import;
- `symbol`: `Scratch` and one symbol's run;
- `simulate`: `simulate`, `strategy_actions`, `run_backtest`.
"""

from __future__ import annotations

from autonomy.engine.backtest.config import (
    BPS,
    REJECT_REASONS,
    SUB_DOLLAR_TICK,
    TICK,
    BacktestConfig,
    BacktestMetrics,
    CostModel,
    Int8Array,
    IntpArray,
    Sizing,
)
from autonomy.engine.backtest.positions import (
    positions_from_orders,
)
from autonomy.engine.backtest.results import (
    BacktestResult,
    Decision,
    Trade,
    equity_curve,
)
from autonomy.engine.backtest.simulate import (
    run_backtest,
    simulate,
    strategy_actions,
)
from autonomy.engine.backtest.symbol import (
    Scratch,
)

__all__ = [
    "BPS",
    "BacktestConfig",
    "BacktestMetrics",
    "BacktestResult",
    "CostModel",
    "Decision",
    "Int8Array",
    "IntpArray",
    "REJECT_REASONS",
    "SUB_DOLLAR_TICK",
    "Scratch",
    "Sizing",
    "TICK",
    "Trade",
    "equity_curve",
    "positions_from_orders",
    "run_backtest",
    "simulate",
    "strategy_actions",
]
