"""One data set through the live decision path and through the backtester: same decisions.

The live path replayed here is the deepest pure part of the trade cycle
(`trading.services.cycle._run`): for each signal in stream order and each strategy,
`plugin.evaluate(signal, spec.params)`, then for each intent the gate chain
`trading.services.decisions.candidate_evaluate` (universe, sizing, portfolio, risk, review,
execution policy) on a `CycleContext`, and `ctx.record_order` (with the strategy) for every accepted order, as
`decision_process` does after a submit. What it leaves out needs the database: storing the
`TradeDecision` row and the broker submit. The fill price is checked against the simulated
broker's own `_fill_price`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from autonomy.engine.backtest import BacktestConfig, CostModel, Sizing, run_backtest
from autonomy.engine.data import datetime_to_ns, frame_from_rows
from trading.gates import Candidate, CycleContext, RiskLimits, StrategySpec
from trading.services.decisions import candidate_evaluate
from trading.signals.replay import read_signal_rows
from trading.simbroker.models import SimOrder
from trading.simbroker.services import _fill_price
from trading.strategies.registry import get_strategy
from trading.tests.core.test_gates import limits

from .helpers import LEGACY_LOOSE, TSMOM_LOOSE, signal_rows

SAMPLE = Path(__file__).resolve().parents[3] / "trading" / "sample_data" / "signals-sample.csv"


def default_limits() -> RiskLimits:
    """The live defaults (settings.py): no shorts, qty 1, no caps, no cooldown."""
    return limits()


@dataclass(frozen=True)
class LiveDecision:
    ts_ns: int
    symbol: str
    side: str
    status: str
    qty: float
    reason: str


def live_replay(signals, strategy_type, params, *, budget=None):
    plugin = get_strategy(strategy_type)
    spec = StrategySpec(
        id=1,
        name="candidate",
        version=plugin.version,
        strategy_type=strategy_type,
        enabled=True,
        universe_symbols=frozenset(),
        max_notional_per_trade=budget,
        max_position_pct_equity=None,
        params=params,
        base_timeframe="1Min",
    )
    ctx = CycleContext(
        account_label="paper",
        is_live=False,
        equity=Decimal(10**12),
        cash=Decimal(10**12),
        buying_power=Decimal(10**12),  # buying power is not modelled by the backtester
        positions={},
        prices={},
        universe=None,
        limits=default_limits(),
        now=datetime(2026, 3, 3, 21, 0, tzinfo=UTC),
    )
    out = []
    for signal in signals:
        if spec.base_timeframe != signal.timeframe:
            continue
        intent = plugin.evaluate(signal, spec.params)
        if intent is None:
            continue
        candidate = Candidate(
            strategy=spec,
            symbol=signal.symbol,
            side=intent.action,
            price=signal.price,
            features=dict(signal.features),
            event_ts=signal.event_ts,
            order_type=intent.order_type,
            time_in_force=intent.time_in_force,
        )
        candidate_evaluate(candidate, ctx)
        reasons = candidate.rejected_reasons
        if not reasons:
            ctx.record_order(
                symbol=signal.symbol,
                side=intent.action,
                qty=candidate.qty,
                price=signal.price or Decimal(0),
                at=ctx.now,
                strategy=spec.name,
            )
        out.append(
            LiveDecision(
                ts_ns=datetime_to_ns(signal.event_ts),
                symbol=signal.symbol,
                side=intent.action,
                status="rejected" if reasons else "accepted",
                qty=0.0 if reasons else float(candidate.qty),
                reason=reasons[0] if reasons else "",
            )
        )
    return out


def backtest_decisions(parsed, strategy_type, params, config):
    result = run_backtest(parsed.frame, get_strategy(strategy_type), params, config)
    decisions = [
        LiveDecision(d.ts_ns, d.symbol, d.side, d.status, d.qty, d.reason)
        for d in result.decisions(parsed.frame)
    ]
    return decisions, result


CASES = [
    ("legacy_macd_rsi", {}),
    ("legacy_macd_rsi", LEGACY_LOOSE),
    ("intraday_tsmom", {}),
    ("intraday_tsmom", TSMOM_LOOSE),
]


@pytest.mark.parametrize(("strategy_type", "params"), CASES)
@pytest.mark.parametrize("budget", [None, Decimal(1000)])
def test_generated_rows_same_decisions_live_and_backtest(strategy_type, params, budget):
    rows = signal_rows({"AAPL": 1, "MSFT": 2, "NVDA": 3}, 1500)
    parsed = frame_from_rows(rows, source="replay")
    assert parsed.invalid_rows == 3 * 14  # RSI warm-up rows: invalid for live and backtest alike
    live = live_replay(parsed.signals, strategy_type, params, budget=budget)
    sizing = Sizing(max_notional_per_trade=None if budget is None else float(budget))
    backtest, _ = backtest_decisions(parsed, strategy_type, params, BacktestConfig(sizing=sizing))
    assert backtest == live
    if params:  # the loosened thresholds trade both ways on this data
        assert sum(d.side == "buy" and d.status == "accepted" for d in live) > 20
        assert sum(d.side == "sell" and d.status == "accepted" for d in live) > 10
    else:
        assert len(live) > 0


def test_loose_params_exercise_rejections():
    rows = signal_rows({"AAPL": 1, "MSFT": 2, "NVDA": 3}, 1500)
    parsed = frame_from_rows(rows)
    live = live_replay(parsed.signals, "legacy_macd_rsi", LEGACY_LOOSE)
    assert {d.reason for d in live} == {"", "shorts_not_allowed"}


@pytest.mark.parametrize("strategy_type", ["legacy_macd_rsi", "intraday_tsmom"])
def test_bundled_sample_same_decisions_live_and_backtest(strategy_type):
    parsed = frame_from_rows(read_signal_rows(SAMPLE), source="replay")
    assert len(parsed.frame.symbols) == 5
    params = LEGACY_LOOSE if strategy_type == "legacy_macd_rsi" else TSMOM_LOOSE
    live = live_replay(parsed.signals, strategy_type, params)
    backtest, _ = backtest_decisions(parsed, strategy_type, params, BacktestConfig())
    assert backtest == live
    assert len(live) > 10


def test_fill_prices_match_the_simulated_broker():
    rows = signal_rows({"AAPL": 1, "PENNY": 9}, 800)
    for row in rows:  # a sub-dollar symbol exercises the $0.0001 tick
        if row["symbol"] == "PENNY":
            row["price"] = f"{float(row['price']) / 200:.4f}"
    parsed = frame_from_rows(rows)
    slippage = float(settings.SIMULATED_BROKER_SLIPPAGE_BPS or 0)
    config = BacktestConfig(costs=CostModel(slippage_bps=slippage))
    result = run_backtest(parsed.frame, get_strategy("legacy_macd_rsi"), LEGACY_LOOSE, config)
    trades = result.trades(parsed.frame)
    assert len(trades) > 50
    assert any(t.price < 1 for t in trades)
    for trade in trades:
        order = SimOrder(side=trade.side, order_type="market")
        expected = _fill_price(order, Decimal(repr(trade.reference_price)))
        assert expected is not None
        assert Decimal(repr(trade.price)) == expected, trade
