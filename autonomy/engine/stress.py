"""The four stress cases of the promotion evidence (spread, volatility, liquidity, halt).

Each case re-runs the same strategy and parameters over a worsened market and reports the same
metrics as the base run:

- spread: the quoted spread is `spread_multiplier` times wider (at least `spread_floor_bps`) and
  slippage is `spread_multiplier` times larger: every fill pays more;
- volatility: each symbol's log returns are scaled by `volatility_multiplier` around their mean
  (same drift, k-times the noise), the price path is rebuilt from the first price, and a frame
  whose features were computed from bars gets them recomputed (so the strategy sees the new
  market). A frame of recorded signals keeps its recorded features: only the PnL path changes;
- liquidity: every fill pays `liquidity_impact_bps` more, and when `liquidity_max_fill_qty` is
  set an order fills at most that quantity (the rest is cancelled, like an ioc order);
- halt: a market-wide trading halt. Every row with a time in [halt_start, halt_end) is dropped
  (no data, so no decision and no fill inside the window); an order decided before the halt fills
  on the first row after it, and positions are marked at the resume price. A frame computed from
  bars gets its features recomputed without the halted bars (indicators resume where they stopped).
  The window is a time window: it starts `halt_start_fraction` of the way through the data's
  time span and lasts `halt_fraction` of the span, so data too sparse for a bar to fall inside
  it (a few signals minutes apart) has no halted row and the case equals the base run.

Fragility of a case: loss = max(0, base net PnL - stressed net PnL); scale = |base net PnL| +
base total cost (the size of the base run's edge before costs); score = min(1, loss / scale),
0 when nothing is lost and 1 when something is lost from a zero scale. State by score:
normal < 0.25 ≤ elevated < 0.5 ≤ stress < 0.85 ≤ crisis (ranks 0-3, so gate 2's defaults
max_fragility_score 0.85 and max_fragility_state_rank 2 agree). The report's score and state are
the worst case's. `pnl_delta` = stressed - base net PnL (the ledger's `pessimistic_pnl_delta`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from autonomy.engine.backtest import (
    BacktestConfig,
    BacktestMetrics,
    run_backtest,
)
from autonomy.engine.data import BarFrame, FloatArray, map_symbols, ns_to_datetime
from autonomy.engine.progress import Progress, no_progress
from trading.strategies.base import Strategy

STRESS_CASES = ("spread", "volatility", "liquidity", "halt")
FRAGILITY_STATES = ("normal", "elevated", "stress", "crisis")
_STATE_BOUNDS = (0.25, 0.5, 0.85)


@dataclass(frozen=True)
class StressSettings:
    spread_multiplier: float = 3.0
    spread_floor_bps: float = 5.0
    volatility_multiplier: float = 2.0
    liquidity_impact_bps: float = 10.0
    liquidity_max_fill_qty: float | None = None
    halt_start_fraction: float = 0.5
    halt_fraction: float = 0.05


@dataclass(frozen=True)
class StressCaseResult:
    case: str
    metrics: BacktestMetrics
    pnl_delta: float
    fragility_score: float
    fragility_state: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stress_case": self.case,
            "metrics": self.metrics.as_dict(),
            "pessimistic_pnl_delta": self.pnl_delta,
            "fragility_score": self.fragility_score,
            "fragility_state": self.fragility_state,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class StressReport:
    base: BacktestMetrics
    cases: list[StressCaseResult]
    fragility_score: float
    fragility_state: str

    @property
    def fragility_state_rank(self) -> int:
        return FRAGILITY_STATES.index(self.fragility_state)

    def as_dict(self) -> dict[str, Any]:
        return {
            "base": self.base.as_dict(),
            "cases": [c.as_dict() for c in self.cases],
            "fragility_score": self.fragility_score,
            "fragility_state": self.fragility_state,
            "fragility_state_rank": self.fragility_state_rank,
        }


def fragility(base: BacktestMetrics, stressed: BacktestMetrics) -> tuple[float, str]:
    """(score, state) of one stressed run against its base (see module doc)."""
    loss = max(0.0, base.net_pnl - stressed.net_pnl)
    scale = abs(base.net_pnl) + base.total_cost
    if loss == 0.0:
        score = 0.0
    elif scale == 0.0:
        score = 1.0
    else:
        score = min(1.0, loss / scale)
    return score, fragility_state(score)


def fragility_state(score: float) -> str:
    for state, bound in zip(FRAGILITY_STATES, _STATE_BOUNDS, strict=False):
        if score < bound:
            return state
    return FRAGILITY_STATES[-1]


def scale_volatility(price: FloatArray, multiplier: float) -> FloatArray:
    """The price path with log returns r -> mean + k (r - mean), from the same first price."""
    if price.shape[0] < 2:
        return price.copy()
    r = np.diff(np.log(price))
    mean = float(r.mean())
    out = np.empty_like(price)
    out[0] = price[0]
    out[1:] = price[0] * np.exp(np.cumsum(mean + multiplier * (r - mean)))
    return out


def halt_window(frame: BarFrame, settings: StressSettings) -> tuple[int, int]:
    """[start_ns, end_ns) of the halt: it starts `halt_start_fraction` of the way through the
    data's time span and lasts `halt_fraction` of it (see module doc). Empty for empty data."""
    if len(frame) == 0:
        return 0, 0
    t0, t1 = int(frame.ts[0]), int(frame.ts[-1])
    span = t1 - t0
    start = t0 + int(span * settings.halt_start_fraction)
    return start, start + int(span * settings.halt_fraction)


def stressed_inputs(
    case: str, frame: BarFrame, config: BacktestConfig, settings: StressSettings
) -> tuple[BarFrame, BacktestConfig, dict[str, Any]]:
    """(frame, config, details) for one case."""
    costs, sizing = config.costs, config.sizing
    details: dict[str, Any]
    if case == "spread":
        k = settings.spread_multiplier
        new_costs = replace(
            costs,
            spread_bps=max(costs.spread_bps * k, settings.spread_floor_bps),
            slippage_bps=costs.slippage_bps * k,
        )
        details = {"spread_bps": new_costs.spread_bps, "slippage_bps": new_costs.slippage_bps}
        return frame, replace(config, costs=new_costs), details
    if case == "volatility":
        k = settings.volatility_multiplier
        price = map_symbols(frame, lambda p: scale_volatility(p, k))
        details = {"multiplier": k, "features_recomputed": frame.derived}
        return frame.with_price(price), config, details
    if case == "liquidity":
        new_costs = replace(costs, impact_bps=costs.impact_bps + settings.liquidity_impact_bps)
        cap = settings.liquidity_max_fill_qty
        new_sizing = sizing if cap is None else replace(sizing, max_fill_qty=cap)
        details = {"impact_bps": new_costs.impact_bps, "max_fill_qty": cap}
        return frame, replace(config, costs=new_costs, sizing=new_sizing), details
    if case == "halt":
        start, end = halt_window(frame, settings)
        kept = np.flatnonzero((frame.ts < start) | (frame.ts >= end))
        details = {
            "halt_start": ns_to_datetime(start).isoformat(),
            "halt_end": ns_to_datetime(end).isoformat(),
            "halted_rows": len(frame) - int(kept.shape[0]),
        }
        halted = frame.take(kept)
        # bars resume where they stopped: a derived frame's indicators see no halted bar
        return halted.with_price(halted.price), config, details
    raise ValueError(f"unknown stress case {case!r}; known: {', '.join(STRESS_CASES)}")


def run_stress(
    frame: BarFrame,
    strategy: Strategy,
    params: Mapping[str, Any],
    *,
    config: BacktestConfig | None = None,
    settings: StressSettings | None = None,
    cases: tuple[str, ...] = STRESS_CASES,
    progress: Progress = no_progress,
) -> StressReport:
    """The base run and each stress case (progress per case)."""

    def evaluate(f: BarFrame, c: BacktestConfig) -> BacktestMetrics:
        return run_backtest(f, strategy, params, c).metrics

    return run_stress_with(
        evaluate, frame, config=config, settings=settings, cases=cases, progress=progress
    )


def run_stress_with(
    evaluate: Callable[[BarFrame, BacktestConfig], BacktestMetrics],
    frame: BarFrame,
    *,
    config: BacktestConfig | None = None,
    settings: StressSettings | None = None,
    cases: tuple[str, ...] = STRESS_CASES,
    progress: Progress = no_progress,
) -> StressReport:
    """`run_stress` for anything that runs a frame under a config (a book of strategies,
    `autonomy.engine.portfolio`): the base run and each case's worsened frame and config."""
    cfg = config or BacktestConfig()
    st = settings or StressSettings()
    base = evaluate(frame, cfg)
    results: list[StressCaseResult] = []
    for done, case in enumerate(cases, start=1):
        s_frame, s_config, details = stressed_inputs(case, frame, cfg, st)
        metrics = evaluate(s_frame, s_config)
        score, state = fragility(base, metrics)
        results.append(
            StressCaseResult(
                case=case,
                metrics=metrics,
                pnl_delta=metrics.net_pnl - base.net_pnl,
                fragility_score=score,
                fragility_state=state,
                details=details,
            )
        )
        progress(done, len(cases), f"stress {case}")
    worst = max(results, key=lambda r: r.fragility_score, default=None)
    return StressReport(
        base=base,
        cases=results,
        fragility_score=worst.fragility_score if worst else 0.0,
        fragility_state=worst.fragility_state if worst else FRAGILITY_STATES[0],
    )
