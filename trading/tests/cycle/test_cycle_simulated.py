"""Whole trade cycles on the simulated broker: signal → decision → firewall → order → fill."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from trading.brokers.simulated import SimulatedBroker
from trading.models import Execution, LaneState, TradeCursor, TradeDecision
from trading.services.cycle import trading_cycle_run
from trading.services.reconcile import reconcile_lane
from trading.services.safety import kill_switch_set
from trading.tests.cycle.conftest import REPLAY_START

pytestmark = pytest.mark.django_db


def run(seconds: int):
    return trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=seconds))


def test_cycle_submits_one_order_per_decision_and_fills_on_next_price(
    replay_settings, macd_strategy
):
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    first = run(30)
    assert (first.status, first.signals, first.intents, first.submitted) == ("ok", 1, 1, 1)
    decision = TradeDecision.objects.get()
    assert (decision.symbol, decision.action, decision.qty, decision.status) == (
        "AAPL",
        "buy",
        Decimal(10),
        "submitted",
    )
    assert decision.client_order_id == "tg-" + decision.decision_hash[:45]
    assert [v["gate"] for v in decision.gate_verdicts] == [
        "universe",
        "sizing",
        "uncertainty",
        "participation",
        "allocator",
        "portfolio",
        "risk",
        "llm_review",
        "execution_policy",
    ]
    execution = Execution.objects.get()
    assert (execution.client_order_id, execution.status, execution.filled_qty) == (
        decision.client_order_id,
        "accepted",
        Decimal(0),
    )

    second = run(90)  # MSFT signal: its price reaches the broker, AAPL has no new price yet
    assert second.submitted == 1
    third = run(150)  # AAPL at 101 fills the resting buy; the sell closes it
    assert third.intents == 1
    reconcile_lane(account_label="paper")
    aapl_buy = Execution.objects.get(symbol="AAPL", side="buy")
    assert (aapl_buy.status, aapl_buy.filled_qty) == ("filled", Decimal(10))
    assert aapl_buy.decision is not None
    assert aapl_buy.decision.status == "filled"
    assert aapl_buy.tca.slippage_bps is not None
    orders = SimulatedBroker("paper").list_orders(status="all")
    assert sorted(o.client_order_id for o in orders) == sorted(
        TradeDecision.objects.exclude(status="rejected").values_list("client_order_id", flat=True)
    )


def test_rerunning_the_same_signals_creates_no_second_decision_or_order(
    replay_settings, macd_strategy
):
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    run(30)
    # lose the cursor (as if the commit of the cursor never happened) and replay the same window
    TradeCursor.objects.filter(account_label="paper").update(
        cursor_at=None, cursor_symbol="", cursor_seq=0
    )
    again = run(30)
    assert (again.intents, again.duplicates, again.submitted) == (1, 1, 0)
    assert TradeDecision.objects.count() == 1
    assert Execution.objects.count() == 1
    assert len(SimulatedBroker("paper").list_orders(status="all")) == 1


def test_kill_switch_blocks_submission_and_records_the_reason(
    replay_settings, macd_strategy, admin_user
):
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    kill_switch_set(engaged=True, actor=admin_user, reason="drill")
    result = run(30)
    decision = TradeDecision.objects.get()
    assert (result.submitted, result.rejected) == (0, 1)
    assert (decision.status, decision.reject_reason) == ("rejected", "kill_switch_active")
    assert Execution.objects.count() == 0
    assert SimulatedBroker("paper").list_orders(status="all") == []


def test_trading_disabled_leaves_signals_unread(replay_settings, macd_strategy):
    replay_settings.TRADING_ENABLED = False
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    result = run(30)
    assert result.status == "trading_disabled"
    assert TradeCursor.objects.get().cursor_at is None
    assert TradeDecision.objects.count() == 0


def test_lane_lease_stops_a_second_concurrent_cycle(replay_settings, macd_strategy):
    from trading.services.lanes import lane_lease_acquire

    LaneState.objects.create(account_label="paper")
    assert lane_lease_acquire(account_label="paper", owner="other-worker:1") is True
    result = run(30)
    assert result.status == "lane_busy"
    assert TradeDecision.objects.count() == 0
