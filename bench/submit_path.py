"""The idempotent submit path under two concurrent workers.

Two processes run the decision → firewall → simulated broker path for the *same* N signals at the
same time (as two Celery workers would after a redelivery). Prints the decisions per second each
achieved, the end-to-end time, and checks the invariant: exactly N orders at the broker, N
decisions, every other attempt counted as a duplicate. Writes bench/results/submit_path.json.

Uses DB_DSN (Postgres recommended: the embedded SQLite serialises writers) — e.g.
    DB_DSN=postgresql://postgres@127.0.0.1:5432/torghut_bench .venv/bin/python bench/submit_path.py
Without DB_DSN it creates and drops a scratch database on the local Postgres.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from _common import ROOT, scratch_database, write_result

N = 400

WORKER = r"""
import os, sys, time, json
sys.path.insert(0, {root!r})
os.environ["DJANGO_SETTINGS_MODULE"] = "torghut_site.settings"
import django
django.setup()
from datetime import datetime, timedelta, UTC
from decimal import Decimal
from trading.firewall import OrderFirewall
from trading.gates import CycleContext, RiskLimits
from trading.lanes import lane_config
from trading.models import Strategy
from trading.services.decisions import decision_process, strategy_spec
from trading.signals.types import SignalEnvelope
from trading.strategies.base import Intent

lane = lane_config("paper")
strategy = Strategy.objects.get(name="bench")
spec = strategy_spec(strategy)
firewall = OrderFirewall(lane=lane)
limits = RiskLimits.from_settings(kill_switch=False)
ctx = CycleContext(account_label="paper", is_live=False, equity=Decimal(10**9), cash=Decimal(10**9),
                   buying_power=Decimal(10**9), positions={{}}, prices={{}}, universe=None, limits=limits,
                   now=datetime.now(tz=UTC))
t0 = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
outcomes = {{}}
started = time.perf_counter()
for i in range({n}):
    signal = SignalEnvelope(event_ts=t0 + timedelta(seconds=i), symbol="AAPL", seq=i, timeframe="1Min",
                            source="bench", price=Decimal("100"), features={{"macd": 1.0, "macd_signal": 0.5, "rsi14": 20.0}})
    intent = Intent(action="buy", confidence=0.65, rationale="bench")
    out = decision_process(strategy=strategy, spec=spec, signal=signal, intent=intent, ctx=ctx, firewall=firewall)
    outcomes[out.result] = outcomes.get(out.result, 0) + 1
print(json.dumps({{"seconds": time.perf_counter() - started, "outcomes": outcomes}}))
"""


def main() -> None:
    dsn = scratch_database("torghut_bench")
    env = {
        **os.environ,
        "DB_DSN": dsn,
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "TRADING_ENABLED": "true",
        "TRADING_KILL_SWITCH_ENABLED": "false",
        "TRADING_EXECUTION_PREFER_LIMIT": "false",
        "SIMULATED_BROKER_STARTING_CASH": "1000000000",
        "LOG_LEVEL": "warning",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], check=True, env=env, cwd=ROOT)
    setup = (
        "from trading.models import Strategy; Strategy.objects.get_or_create(name='bench', defaults="
        "{'strategy_type': 'legacy_macd_rsi', 'enabled': True, 'max_notional_per_trade': 1000})"
    )
    subprocess.run([*manage, "shell", "-c", setup], check=True, env=env, cwd=ROOT)
    code = WORKER.format(root=str(ROOT), n=N)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    wall = time.perf_counter() - started
    check = (
        "from trading.models import TradeDecision, Execution; from trading.simbroker.models import SimOrder; "
        "import json; print(json.dumps([TradeDecision.objects.count(), Execution.objects.count(), "
        "SimOrder.objects.count(), SimOrder.objects.values('client_order_id').distinct().count()]))"
    )
    counts = json.loads(
        subprocess.run(
            [*manage, "shell", "-c", check],
            check=True,
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    figures = {
        "signals": N,
        "workers": 2,
        "worker_outcomes": [r["outcomes"] for r in results],
        "worker_decisions_per_second": [round(N / r["seconds"], 1) for r in results],
        "wall_seconds": round(wall, 2),
        "decisions": counts[0],
        "executions": counts[1],
        "broker_orders": counts[2],
        "distinct_client_order_ids": counts[3],
        "invariant_one_order_per_decision": counts[0] == counts[1] == counts[2] == counts[3] == N,
    }
    path = write_result("submit_path", figures)
    for key, value in figures.items():
        print(f"{key:<34} {value}")
    print(f"wrote {path.relative_to(ROOT)}")
    if not figures["invariant_one_order_per_decision"]:
        raise SystemExit("duplicate or missing orders")


if __name__ == "__main__":
    main()
