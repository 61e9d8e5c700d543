"""What a backtest is run with and reports: the array types, the tick and bps constants, the cost
model, the sizing, the config, the metrics and the reject reasons."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from autonomy.engine.data import FloatArray

Int8Array = npt.NDArray[np.int8]
IntpArray = npt.NDArray[np.intp]
BPS = 10_000.0
TICK = 0.01
SUB_DOLLAR_TICK = 0.0001
# A price computed in float lands a few ulps off the exact decimal; this is far below a tick.
TICK_EPS = 1e-9


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


# kernels.SHORTS, kernels.ZERO_QTY, kernels.CAP index this tuple
REJECT_REASONS = ("", "shorts_not_allowed", "allocator_reject_zero_qty", "position_cap")

EMPTY_I: IntpArray = np.zeros(0, dtype=np.intp)
EMPTY_F: FloatArray = np.zeros(0, dtype=np.float64)
EMPTY_I8: npt.NDArray[np.int8] = np.zeros(0, dtype=np.int8)
