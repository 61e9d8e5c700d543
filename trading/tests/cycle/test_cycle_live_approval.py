"""A live Alpaca lane (real HTTP to the Alpaca stand-in) through whole trade cycles: an order
reaches the broker only while a two-person approval is in force, and a revocation takes
effect at the next cycle's submit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import staff_user
from tests.servers.alpaca_server import AlpacaServer
from trading.models import TradeCursor, TradeDecision
from trading.services.cycle import trading_cycle_run
from trading.services.live_approvals import (
    live_approval_approve,
    live_approval_request,
    live_approval_revoke,
)
from trading.tests.cycle.conftest import REPLAY_START, write_signals

pytestmark = pytest.mark.django_db

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA"]


@pytest.fixture
def signals_file(tmp_path):
    # one buy a minute (MACD above signal, RSI < 35), each on its own symbol
    return write_signals(
        tmp_path / "signals.csv",
        [
            (f"2026-03-03T14:3{i + 1}:00Z", symbol, i + 1, "50.00", "1.2", "0.5", "20")
            for i, symbol in enumerate(SYMBOLS)
        ],
    )


@pytest.fixture
def live_alpaca(replay_settings):
    server = AlpacaServer().start()
    replay_settings.TRADING_MODE = "live"
    replay_settings.TRADING_LIVE_ENABLED = True
    replay_settings.TRADING_LANES = [
        {
            "label": "live-1",
            "mode": "live",
            "broker": "alpaca",
            "enabled": True,
            "api_key": "key",
            "secret_key": "secret",
            "base_url": server.url,
        }
    ]
    replay_settings.APCA_HTTP_TIMEOUT_SECONDS = 0.3
    TradeCursor.objects.create(
        source="replay", account_label="live-1", state={"anchor": REPLAY_START.isoformat()}
    )
    from django.core.cache import cache

    cache.clear()
    yield server
    server.stop()


def cycle(minute: int) -> TradeDecision:
    """Run the cycle that sees the signal of `minute` (0-based) and return its decision."""
    result = trading_cycle_run(
        account_label="live-1", now=REPLAY_START + timedelta(seconds=60 * minute + 30)
    )
    assert result.intents == 1, result
    return TradeDecision.objects.get(symbol=SYMBOLS[minute])


def test_orders_reach_a_live_broker_only_under_a_two_person_approval(
    live_alpaca, macd_strategy, replay_settings
):
    requester = staff_user("rita", "add_liveapproval")
    approver = staff_user("omar", "approve_liveapproval")

    refused = cycle(0)  # no approval at all
    assert (refused.status, refused.reject_reason) == ("rejected", "live_approval_missing")
    assert live_alpaca.posts() == 0

    approval = live_approval_request(
        account_label="live-1", actor=requester, reason="go live", ttl=timedelta(hours=4)
    )
    refused = cycle(1)  # requested, not approved: still refused
    assert (refused.status, refused.reject_reason) == ("rejected", "live_approval_missing")
    assert live_alpaca.posts() == 0

    live_approval_approve(approval_id=approval.pk, actor=approver, reason="second pair of eyes")
    sent = cycle(2)
    assert sent.status == "submitted"
    [order] = live_alpaca.orders.values()
    assert (order["client_order_id"], order["symbol"]) == (sent.client_order_id, "NVDA")

    replay_settings.TRADING_LIVE_ENABLED = False  # approved, but live trading switched off
    refused = cycle(3)
    assert (refused.status, refused.reject_reason) == ("rejected", "live_trading_disabled")
    assert live_alpaca.posts() == 1
    replay_settings.TRADING_LIVE_ENABLED = True

    live_approval_revoke(approval_id=approval.pk, actor=approver, reason="pause")
    refused = cycle(4)  # the next cycle after the revocation
    assert (refused.status, refused.reject_reason) == ("rejected", "live_approval_missing")
    assert live_alpaca.posts() == 1
    assert len(live_alpaca.orders) == 1
