"""A trade cycle on an Alpaca lane (real HTTP to the Alpaca stand-in): ambiguous submits are
looked up and adopted, never resent."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.servers.alpaca_server import AlpacaServer
from tests.servers.base import Fault
from trading.models import Execution, TradeCursor, TradeDecision
from trading.services.cycle import trading_cycle_run
from trading.services.reconcile import reconcile_lane
from trading.tests.cycle.conftest import REPLAY_START

pytestmark = pytest.mark.django_db


@pytest.fixture
def alpaca(replay_settings):
    server = AlpacaServer().start()
    replay_settings.TRADING_LANES = [
        {
            "label": "alp",
            "mode": "paper",
            "broker": "alpaca",
            "enabled": True,
            "api_key": "key",
            "secret_key": "secret",
            "base_url": server.url,
        }
    ]
    replay_settings.APCA_HTTP_TIMEOUT_SECONDS = 0.3
    TradeCursor.objects.create(
        source="replay", account_label="alp", state={"anchor": REPLAY_START.isoformat()}
    )
    from django.core.cache import cache

    cache.clear()
    yield server
    server.stop()


def run(seconds: int):
    return trading_cycle_run(account_label="alp", now=REPLAY_START + timedelta(seconds=seconds))


def test_submit_reaches_alpaca_with_the_decision_client_order_id(alpaca, macd_strategy):
    result = run(30)
    assert result.submitted == 1
    decision = TradeDecision.objects.get()
    [order] = alpaca.orders.values()
    assert (order["client_order_id"], order["symbol"], order["qty"]) == (
        decision.client_order_id,
        "AAPL",
        "10.0",
    )
    assert Execution.objects.get().broker_order_id == order["id"]


def test_ambiguous_submit_is_adopted_by_lookup_not_resent(alpaca, macd_strategy):
    alpaca.inject(Fault("POST", "/v2/orders", after_handler=True, delay=1.0))
    result = run(30)
    assert result.outcomes == {"adopted": 1}
    execution = Execution.objects.get()
    assert execution.adopted is True
    assert alpaca.posts() == 1
    assert len(alpaca.orders) == 1


def test_ambiguous_submit_unknown_to_alpaca_is_closed_by_reconcile(
    alpaca, macd_strategy, replay_settings
):
    alpaca.inject(Fault("POST", "/v2/orders", status=504))
    result = run(30)
    assert result.outcomes == {"deferred": 1}
    decision = TradeDecision.objects.get()
    assert decision.status == "submitting"
    replay_settings.TRADING_SUBMIT_UNCONFIRMED_GRACE_SECONDS = 0
    outcome = reconcile_lane(account_label="alp")
    decision.refresh_from_db()
    assert (outcome.unconfirmed, decision.status, decision.reject_reason) == (
        1,
        "rejected",
        "submit_unconfirmed",
    )
    assert alpaca.posts() == 1  # reconciliation never resubmits


def test_reconcile_applies_fills_and_flags_orders_we_never_sent(alpaca, macd_strategy):
    run(30)
    [order] = alpaca.orders.values()
    alpaca.fill(order["id"], "10", "100.05")
    # an order placed by hand in the Alpaca UI
    alpaca.orders["manual"] = {
        **order,
        "id": "manual",
        "client_order_id": "by-hand",
        "status": "accepted",
        "filled_qty": "0",
        "filled_avg_price": None,
    }
    result = reconcile_lane(account_label="alp")
    assert (result.updated, result.unknown_orders) == (1, 1)
    mine = Execution.objects.get(client_order_id=order["client_order_id"])
    assert (mine.status, mine.filled_qty, str(mine.avg_fill_price)) == (
        "filled",
        Decimal(10),
        "100.050000",
    )
    assert mine.decision is not None and mine.decision.status == "filled"
    assert mine.tca.slippage_bps == 5  # (100.05 - 100) / 100 * 10^4
    unknown = Execution.objects.get(client_order_id="by-hand")
    assert (unknown.unknown_order, unknown.decision_id) == (True, None)
