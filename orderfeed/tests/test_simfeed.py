"""The simulated broker's trade updates: applied directly (embedded) or published to Kafka."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orderfeed.consumer import order_feed_consumer
from orderfeed.models import OrderEvent
from orderfeed.simfeed import reset_producer, sim_trade_updates_flush
from orderfeed.tests.conftest import make_decision
from trading.brokers.base import OrderRequest
from trading.brokers.simulated import SimulatedBroker
from trading.models import Execution
from trading.simbroker.models import SimTradeUpdate

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_producer():
    reset_producer()
    yield
    reset_producer()


def _order_then_fill(decision) -> None:
    broker = SimulatedBroker("paper")
    broker.observe_prices({"AAPL": (Decimal("100"), datetime(2026, 3, 3, 14, 30, tzinfo=UTC))})
    broker.submit_order(
        OrderRequest(
            symbol="AAPL", side="buy", qty=Decimal("10"), client_order_id=decision.client_order_id
        )
    )
    broker.observe_prices({"AAPL": (Decimal("101"), datetime(2026, 3, 3, 14, 31, tzinfo=UTC))})


def test_embedded_default_applies_updates_directly_and_once(settings):
    settings.TRADING_ORDER_FEED_ENABLED = False
    settings.SIMULATED_BROKER_SLIPPAGE_BPS = 0
    decision = make_decision(status="submitting")
    _order_then_fill(decision)

    assert sim_trade_updates_flush(account_label="paper") == 2  # new, fill
    assert sim_trade_updates_flush(account_label="paper") == 0

    execution = Execution.objects.get()
    assert (execution.status, execution.filled_qty, execution.avg_fill_price) == (
        "filled",
        Decimal("10"),
        Decimal("101"),
    )
    decision.refresh_from_db()
    assert decision.status == "filled"
    events = list(OrderEvent.objects.order_by("source_offset"))
    assert [(e.source_topic, e.source_offset, e.event_type, e.outcome) for e in events] == [
        ("simbroker.paper", 1, "new", "applied"),
        ("simbroker.paper", 2, "fill", "applied"),
    ]
    assert not SimTradeUpdate.objects.filter(published_at__isnull=True).exists()


@pytest.mark.services
def test_with_kafka_updates_are_published_keyed_by_symbol_then_consumed(feed, settings):
    settings.SIMULATED_BROKER_SLIPPAGE_BPS = 0
    decision = make_decision(status="submitting")
    _order_then_fill(decision)

    assert sim_trade_updates_flush(account_label="paper") == 2
    assert sim_trade_updates_flush(account_label="paper") == 0
    assert OrderEvent.objects.count() == 0  # nothing applied here: the consumer does that

    records = feed.read_all(feed.topic, expect=2)
    assert [r.key() for r in records] == [b"AAPL", b"AAPL"]
    envelopes = [json.loads(r.value()) for r in records]
    assert [(e["channel"], e["seq"], e["accountLabel"], e["source"]) for e in envelopes] == [
        ("trade_updates", 1, "paper", "simulated"),
        ("trade_updates", 2, "paper", "simulated"),
    ]
    assert [e["payload"]["event"] for e in envelopes] == ["new", "fill"]

    order_feed_consumer(idle_exit_seconds=0.6).run()
    execution = Execution.objects.get()
    assert (execution.status, execution.filled_qty) == ("filled", Decimal("10"))
    assert OrderEvent.objects.filter(source_topic=feed.topic).count() == 2


def test_a_forked_process_makes_its_own_producer(settings, monkeypatch):
    """librdkafka's threads do not survive fork: a Celery prefork child that inherited the
    parent's producer must not produce through it (its records would never leave)."""
    import os

    from orderfeed import simfeed

    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    parent = simfeed._shared_producer()
    assert simfeed._shared_producer() is parent  # one per process
    child_pid = os.getpid() + 1
    monkeypatch.setattr(os, "getpid", lambda: child_pid)  # as in a forked child
    child = simfeed._shared_producer()
    assert child is not parent
    assert simfeed._shared_producer() is child
