"""kill -9 of a real Celery worker in the middle of a trade cycle, then a new worker.

Worker A (solo pool, so the kill takes the whole worker down) runs the lane's cycle on a private
Redis and is killed right after the simulated broker accepted the first order and before our
database recorded it (`TORGHUT_FAULT_INJECT=after_broker_submit`). Nothing is lost: the task
message stays in Redis's `unacked` set (late acks; it comes back after the visibility timeout) and
the order is at the broker. Worker B starts, reconciles at start (the order is adopted, not
resent); once the dead worker's lane lease lapses, the next beat tick completes the cycle. Every
decision has exactly one order.
"""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.faults.conftest import (
    assert_lane_decisions,
    assert_one_order_per_decision,
    beat,
    lane_settled,
    lanes_ready,
    signals_csv,
    tick,
    trading_env,
    wait_for,
)
from trading.brokers.simulated import SimulatedBroker
from trading.models import Execution, LaneState, TradeDecision

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]


def test_worker_killed_after_broker_accept_then_new_worker_completes_the_cycle(
    private_redis, workers, tmp_path: Path
):
    lanes_ready(["paper"])
    signals = signals_csv(tmp_path / "signals.csv")
    client = beat(private_redis.url)

    a = workers("a", trading_env(signals, tmp_path, private_redis.url,
                                 TORGHUT_FAULT_INJECT="after_broker_submit"))  # fmt: skip
    tick(client, "paper")
    assert wait_for(lambda: a.proc.poll() is not None, timeout=90), a.log()
    assert a.proc.returncode == -signal.SIGKILL, a.log()

    # the crash point: the broker has the order, we have a decision in `submitting`, no execution
    decision = TradeDecision.objects.get()
    assert decision.status == "submitting"
    assert Execution.objects.count() == 0
    assert [o.client_order_id for o in SimulatedBroker("paper").list_orders(status="all")] == [
        decision.client_order_id
    ]
    # the cycle's message is not lost: unacknowledged, kept for redelivery
    unacked = private_redis.client().hvals("unacked")
    assert any(b"trading.tasks.run_trade_cycle" in body for body in unacked), unacked

    b = workers("b", trading_env(signals, tmp_path, private_redis.url))
    # start-up reconciliation records the order the dead worker sent (found by client order id)
    assert wait_for(lambda: Execution.objects.exists(), timeout=90), b.log()
    execution = Execution.objects.get()
    assert (execution.client_order_id, execution.adopted) == (decision.client_order_id, True)
    decision.refresh_from_db()
    assert decision.status == "submitted"

    # the dead worker's lease on the lane lapses (10 s here; moved forward rather than waited for)
    LaneState.objects.filter(account_label="paper").update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    tick(client, "paper")
    assert wait_for(lambda: lane_settled("paper", 3), timeout=90), (
        list(TradeDecision.objects.values_list("status", flat=True)),
        b.log(),
    )
    assert b.proc.poll() is None
    client_ids = assert_one_order_per_decision("paper")
    assert_lane_decisions("paper")
    assert client_ids.count(decision.client_order_id) == 1
    assert Execution.objects.get(client_order_id=decision.client_order_id).adopted is True
