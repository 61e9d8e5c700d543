"""Crash tests with real processes.

A trade cycle runs in a separate `manage.py run_trade_cycle` process that is killed with SIGKILL
right after the broker accepted its order and before our database learnt of it
(TORGHUT_FAULT_INJECT=after_broker_submit). Reconciliation must then adopt the order exactly once,
and re-running the cycle must not send it again. Two processes running the same lane at once must
produce one order per decision.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.conftest import paper_lane, subprocess_db_dsn
from trading.brokers.simulated import SimulatedBroker
from trading.models import Execution, LaneState, Strategy, TradeCursor, TradeDecision
from trading.services.reconcile import reconcile_lane

ROOT = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _env(signals_file: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "torghut_site.settings",
        "DB_DSN": subprocess_db_dsn(),
        "TRADING_ENABLED": "true",
        "TRADING_KILL_SWITCH_ENABLED": "false",
        "TRADING_SIGNAL_SOURCE": "replay",
        "TRADING_SIGNAL_REPLAY_PATH": str(signals_file),
        "TRADING_SIGNAL_REPLAY_LOOP": "false",
        "TRADING_SIGNAL_REPLAY_SPEED": "1000",
        "TRADING_EXECUTION_PREFER_LIMIT": "false",
        "TRADING_FEATURE_QUALITY_ENABLED": "false",
        "TRADING_SUBMIT_UNCONFIRMED_GRACE_SECONDS": "10",
        "LOG_LEVEL": "warning",
    }
    env.pop("TORGHUT_FAULT_INJECT", None)
    env.update(extra)
    return env


def _cycle(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "run_trade_cycle", "--lane", "paper"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def lane_ready(signals_file):
    Strategy.objects.create(
        name="macd",
        strategy_type="legacy_macd_rsi",
        enabled=True,
        base_timeframe="1Min",
        max_notional_per_trade=1000,
        params={"buy_rsi_threshold": 35, "sell_rsi_threshold": 65},
    )
    # at 1000x the file's three minutes play in 0.18 s: 30 s ago means every row has been "played"
    anchor = timezone.now() - timedelta(seconds=30)
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": anchor.isoformat()}
    )
    return signals_file


def test_kill_after_broker_accept_is_adopted_exactly_once(lane_ready, settings):
    crashed = _cycle(_env(lane_ready, TORGHUT_FAULT_INJECT="after_broker_submit"))
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    decision = TradeDecision.objects.get()
    assert decision.status == "submitting"
    assert Execution.objects.count() == 0
    broker_orders = SimulatedBroker("paper").list_orders(status="all")
    assert [o.client_order_id for o in broker_orders] == [decision.client_order_id]

    # the restarted worker reconciles first: the order is adopted, not resent
    settings.TRADING_LANES = [paper_lane()]
    result = reconcile_lane(account_label="paper")
    # the broker's own trade update ("new") reached the order feed first and recorded the order
    # for our decision; the reconcile lookup then had nothing left to adopt
    assert result.adopted == 0
    execution = Execution.objects.get()
    assert (execution.client_order_id, execution.adopted) == (decision.client_order_id, True)
    assert execution.transitions.values_list("source", flat=True)[0] == "order_feed"
    decision.refresh_from_db()
    assert decision.status == "submitted"

    # the killed process still holds the lane lease; time passes and it lapses
    assert LaneState.objects.get(account_label="paper").lease_owner != ""
    LaneState.objects.filter(account_label="paper").update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )

    # a full re-run of the cycle over the same signals does not decide or send it again
    rerun = _cycle(_env(lane_ready))
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert summary["duplicates"] == 1, summary  # the crashed decision is found, not decided again
    assert TradeDecision.objects.count() == 3  # two buys and a sell, each decided once
    orders = SimulatedBroker("paper").list_orders(status="all")
    client_ids = [o.client_order_id for o in orders]
    assert client_ids.count(decision.client_order_id) == 1
    assert len(set(client_ids)) == len(client_ids)
    sent = TradeDecision.objects.exclude(status="rejected").values_list(
        "client_order_id", flat=True
    )
    assert sorted(client_ids) == sorted(sent)
    assert Execution.objects.count() == len(orders)


def test_two_processes_on_one_lane_send_one_order_per_decision(lane_ready):
    env = _env(lane_ready)
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "run_trade_cycle", "--lane", "paper"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outputs]
    statuses = sorted(json.loads(o[0].strip().splitlines()[-1])["status"] for o in outputs)
    # one ran the lane; the other found it leased, or ran after it and found nothing new
    assert statuses in (["lane_busy", "ok"], ["no_signals", "ok"])
    decisions = TradeDecision.objects.exclude(status="rejected")
    orders = SimulatedBroker("paper").list_orders(status="all")
    assert sorted(o.client_order_id for o in orders) == sorted(d.client_order_id for d in decisions)
    assert len({o.client_order_id for o in orders}) == len(orders)
    assert Execution.objects.count() == len(orders)
