"""Decision pipeline on one core, broker and database excluded.

500 signals × 10 strategies through the same code the trade cycle runs: strategy `evaluate`, then
for every intent the gate chain (universe, sizing, portfolio caps, risk engine, review hook,
execution policy). Prints p50/p99 per signal, signals/s and the whole batch time next to the poll
interval (5 s), and writes bench/results/decision_pipeline.json. Baseline, same run: the strategies'
`evaluate` alone over the same signals (the ratio is what the gate chain costs on top).

    .venv/bin/python bench/decision_pipeline.py
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from _common import ROOT, django_setup, percentile, write_result

django_setup()

from trading.gates import Candidate, CycleContext, RiskLimits, StrategySpec  # noqa: E402
from trading.services.decisions import candidate_evaluate  # noqa: E402
from trading.signals.replay import read_signal_rows  # noqa: E402
from trading.signals.types import parse_rows  # noqa: E402
from trading.strategies.registry import get_strategy  # noqa: E402

BATCH = 500
STRATEGIES = 10
ROUNDS = 20


def limits() -> RiskLimits:
    return RiskLimits(
        trading_enabled=True,
        live_enabled=False,
        kill_switch=False,
        allow_shorts=False,
        prefer_limit=True,
        default_qty=Decimal(1),
        max_notional_per_trade=Decimal(5000),
        min_notional_per_trade=Decimal(10),
        max_position_pct_equity=Decimal("0.1"),
        cooldown_seconds=0,
        notional_per_position=None,
        volatility_target=None,
        volatility_floor=Decimal(0),
        max_positions=20,
        max_notional_per_symbol=Decimal(20000),
        max_gross_exposure=None,
        max_gross_exposure_pct_equity=Decimal(2),
        max_net_exposure=None,
        max_net_exposure_pct_equity=None,
        crypto_ws_enabled=False,
        crypto_universe_enabled=False,
        crypto_enabled=False,
        crypto_live_enabled=False,
    )


def main() -> None:
    rows = read_signal_rows(ROOT / "trading" / "sample_data" / "signals-sample.csv")
    parsed = parse_rows(rows, source="replay")
    signals = list(parsed.signals)[:BATCH]
    specs = []
    for i in range(STRATEGIES):
        kind = "legacy_macd_rsi" if i % 2 == 0 else "intraday_tsmom"
        params = (
            {"buy_rsi_threshold": 35 + i, "sell_rsi_threshold": 65 - i}
            if kind == "legacy_macd_rsi"
            else {}
        )
        specs.append(
            (
                StrategySpec(
                    id=i,
                    name=f"s{i}",
                    version="1.0.0",
                    strategy_type=kind,
                    enabled=True,
                    universe_symbols=frozenset(),
                    max_notional_per_trade=Decimal(2500),
                    max_position_pct_equity=Decimal("0.05"),
                    params=params,
                    base_timeframe="1Min",
                ),
                get_strategy(kind),
            )
        )
    per_signal: list[float] = []
    batch_times: list[float] = []
    intents = 0
    for _ in range(ROUNDS):
        ctx = CycleContext(
            account_label="paper",
            is_live=False,
            equity=Decimal(100000),
            cash=Decimal(100000),
            buying_power=Decimal(100000),
            positions={},
            prices={},
            universe=frozenset({"AAPL", "MSFT", "NVDA", "SPY", "TSLA"}),
            limits=limits(),
            now=datetime.now(tz=UTC),
        )
        batch_start = time.perf_counter()
        for signal in signals:
            start = time.perf_counter()
            for spec, plugin in specs:
                intent = plugin.evaluate(signal, spec.params)
                if intent is None:
                    continue
                intents += 1
                candidate = Candidate(
                    strategy=spec,
                    symbol=signal.symbol,
                    side=intent.action,
                    price=signal.price,
                    features=dict(signal.features),
                    event_ts=signal.event_ts,
                )
                candidate_evaluate(candidate, ctx)
            per_signal.append(time.perf_counter() - start)
        batch_times.append(time.perf_counter() - batch_start)
    # baseline, same run: the strategies' `evaluate` alone (no gate chain) over the same signals
    evaluate_only: list[float] = []
    for _ in range(ROUNDS):
        batch_start = time.perf_counter()
        for signal in signals:
            for spec, plugin in specs:
                plugin.evaluate(signal, spec.params)
        evaluate_only.append(time.perf_counter() - batch_start)
    per_signal.sort()
    batch_times.sort()
    evaluate_only.sort()
    baseline_rate = len(signals) / percentile(evaluate_only, 0.50)
    figures = {
        "signals_per_batch": len(signals),
        "strategies": STRATEGIES,
        "rounds": ROUNDS,
        "intents_per_batch": intents // ROUNDS,
        "per_signal_p50_ms": round(percentile(per_signal, 0.50) * 1000, 4),
        "per_signal_p99_ms": round(percentile(per_signal, 0.99) * 1000, 4),
        "per_signal_max_ms": round(per_signal[-1] * 1000, 4),
        "signals_per_second": round(len(per_signal) / sum(per_signal), 1),
        "batch_p50_ms": round(percentile(batch_times, 0.50) * 1000, 2),
        "batch_max_ms": round(batch_times[-1] * 1000, 2),
        "poll_interval_ms": 5000,
        "batch_share_of_poll_interval": round(percentile(batch_times, 0.50) / 5.0, 4),
        "target_per_signal_p99_ms": 5.0,
        "baseline_evaluate_only_signals_per_second": round(baseline_rate, 1),
        "ratio_vs_evaluate_only": round(len(per_signal) / sum(per_signal) / baseline_rate, 3),
    }
    table: list[dict[str, Any]] = [
        {
            "name": "decision pipeline signals/s",
            "figure": figures["signals_per_second"],
            "baseline": figures["baseline_evaluate_only_signals_per_second"],
            "ratio": figures["ratio_vs_evaluate_only"],
            "unit": f"signals/s x {STRATEGIES} strategies (baseline: strategy evaluate, no gates)",
        },
        {
            "name": "decision pipeline p50/p99",
            "figure": f"{figures['per_signal_p50_ms']} / {figures['per_signal_p99_ms']}",
            "baseline": None,
            "ratio": None,
            "unit": "ms per signal",
        },
    ]
    path = write_result("decision_pipeline", figures, table)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
