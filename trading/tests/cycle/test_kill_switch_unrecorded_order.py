"""The kill switch cancels an order the broker accepted that we have not recorded yet.

Found by the chaos soak (`tests/chaos/soak.py`): an ambiguous submit whose lookup failed leaves the
decision `submitting` with no execution while the simulated broker holds the order; with the
order feed silent meanwhile, the next cycle under the kill switch skipped the cancel ("the
simulated broker holds no order we do not know of") and the order filled on that cycle's prices.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from trading.brokers.simulated import SimulatedBroker
from trading.models import Execution, TradeCursor, TradeDecision
from trading.services.cycle import trading_cycle_run
from trading.tests.cycle.conftest import REPLAY_START

pytestmark = pytest.mark.django_db


def run(seconds: int):
    return trading_cycle_run(account_label="paper", now=REPLAY_START + timedelta(seconds=seconds))


def test_kill_switch_cancels_an_accepted_order_of_a_submitting_decision(
    replay_settings, macd_strategy
):
    TradeCursor.objects.create(
        source="replay", account_label="paper", state={"anchor": REPLAY_START.isoformat()}
    )
    assert run(30).submitted == 1  # AAPL buy: accepted at the broker, resting until a new price
    decision = TradeDecision.objects.get()
    # as after an ambiguous answer whose lookup failed: the broker holds the order, we do not know
    Execution.objects.all().delete()
    TradeDecision.objects.filter(pk=decision.pk).update(status="submitting")
    [order] = SimulatedBroker("paper").list_orders(status="open")
    assert order.client_order_id == decision.client_order_id

    replay_settings.TRADING_KILL_SWITCH_ENABLED = True
    result = run(150)  # AAPL's next price arrives in this cycle: it would fill the order
    assert result.cancelled_orders == 1
    assert SimulatedBroker("paper").get_order(order.id).status == "canceled"
    assert SimulatedBroker("paper").list_orders(status="open") == []
    assert result.submitted == 0
