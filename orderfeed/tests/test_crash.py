"""kill -9 of the order-feed consumer mid-batch: after a restart every event is applied once.

Three real `manage.py run_orderfeed_consumer` processes in turn, one consumer group:
1. killed inside its first batch's transaction (nothing committed, no offsets);
2. killed after its first batch committed and before the offsets were stored (the group has no
   committed offset);
3. runs to the end, starting each partition after the events the second one stored (the handler's
   own state, `StartingHandler`): nothing is skipped, nothing read twice.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from orderfeed.models import OrderEvent
from orderfeed.tests.conftest import assert_executions_filled_once, fill_updates, make_order
from tests.conftest import manage_in_test_db
from torghut_site.models import DeadLetterMessage
from trading.models import TradeDecision, TradeDecisionTransition

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]

ORDERS = 6
BATCH = 4


def _consumer(feed, fault: str | None) -> subprocess.CompletedProcess[str]:
    env = {
        "TRADING_ORDER_FEED_ENABLED": "true",
        "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS": feed.bootstrap,
        "TRADING_ORDER_FEED_TOPIC": feed.topic,
        "TRADING_ORDER_FEED_GROUP_ID": feed.group,
        # the restarted process is the same member: it takes the partitions back at once
        "TRADING_ORDER_FEED_GROUP_INSTANCE_ID": "consumer-0",
        "TRADING_ORDER_FEED_AUTO_OFFSET_RESET": "earliest",
        "TRADING_ORDER_FEED_BATCH_SIZE": str(BATCH),
        "TRADING_ORDER_FEED_POLL_MS": "100",
        "TRADING_ORDER_FEED_DLQ_TOPIC": feed.dlq,
    }
    return manage_in_test_db(
        "run_orderfeed_consumer", "--idle-exit-seconds", "1", env=env, fault=fault
    )


def test_kill_9_mid_batch_then_restart_applies_every_event_exactly_once(feed):
    executions = []
    for n in range(ORDERS):
        _, execution = make_order(n=n + 1, symbol=f"SYM{n}")
        executions.append(execution)
        for update in fill_updates(execution):
            # keyed by symbol, as in production: spread over partitions
            feed.produce(update, key=execution.symbol.encode())

    first = _consumer(feed, "orderfeed_before_commit")
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert OrderEvent.objects.count() == 0

    second = _consumer(feed, "orderfeed_before_store_offsets")
    assert second.returncode == -signal.SIGKILL, second.stderr
    committed = OrderEvent.objects.count()
    assert 0 < committed <= BATCH

    third = _consumer(feed, None)
    assert third.returncode == 0, third.stderr
    stats = json.loads(third.stdout.strip().splitlines()[-1])
    # no offsets were ever stored: every partition started after its newest stored event
    assert stats["messages"] == ORDERS * 3 - committed
    assert stats["dead_letters"] == 0

    assert OrderEvent.objects.count() == ORDERS * 3
    assert set(OrderEvent.objects.values_list("outcome", flat=True)) == {"applied"}
    assert_executions_filled_once(executions)
    for decision in TradeDecision.objects.all():
        assert decision.status == "filled"
        path = list(
            TradeDecisionTransition.objects.filter(decision=decision)
            .order_by("pk")
            .values_list("to_status", flat=True)
        )
        # the partial fill shows when it was applied in an earlier batch than the fill; never twice
        assert path in (["filled"], ["partially_filled", "filled"])
    assert DeadLetterMessage.objects.count() == 0
