"""Redis (the Celery broker) killed and restarted empty while a worker runs a trade cycle.

A private redis-server without persistence: the kill loses every message it held, including the
running cycle's unacknowledged one, and the worker's acknowledgement has nowhere to go. The worker
reconnects on its own; the next beat tick runs the lane again, and the re-run finds its decisions
instead of deciding or sending them again.

Known defect, outside our code (kombu 5.7 Redis transport): when the connection drops while a task
is unacknowledged, the consumer's `Channel.close()` restores unacked messages through a connection
that is already released (`_connparams`: `'NoneType' object has no attribute 'hostname'`), Celery
calls it unrecoverable and the worker EXITS instead of reconnecting (about one run in three here).
The process supervisor (Kubernetes, systemd) restarts it; this test plays the supervisor then, and
asserts the same outcome either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
from trading.models import LaneState

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]


def _lane() -> LaneState | None:
    return LaneState.objects.filter(account_label="paper").first()


def test_redis_restart_mid_cycle_loses_no_order_and_sends_none_twice(
    private_redis, workers, tmp_path: Path
):
    lanes_ready(["paper"])
    signals = signals_csv(tmp_path / "signals.csv")
    worker = workers("w", trading_env(signals, tmp_path, private_redis.url))
    tick(beat(private_redis.url), "paper")

    # the cycle has started: Redis goes away under it
    assert wait_for(lambda: bool((s := _lane()) and s.last_cycle_started_at), 90, 0.01), (
        worker.log()
    )
    private_redis.kill()
    assert wait_for(lambda: bool((s := _lane()) and s.last_cycle_finished_at), 60), worker.log()
    first = _lane()
    assert first is not None
    assert first.last_cycle_status == "ok", first.last_cycle_summary

    private_redis.start()  # same port, empty
    if wait_for(lambda: worker.proc.poll() is not None, timeout=3):
        assert "no attribute 'hostname'" in worker.log(), worker.log()  # the kombu defect
        worker = workers("w2", trading_env(signals, tmp_path, private_redis.url))
    tick(beat(private_redis.url), "paper")
    assert wait_for(
        lambda: (
            (s := _lane()) is not None
            and s.last_cycle_finished_at is not None
            and first.last_cycle_finished_at is not None
            and s.last_cycle_finished_at > first.last_cycle_finished_at
        ),
        90,
    ), worker.log()
    assert worker.proc.poll() is None, worker.log()  # reconnected (or restarted) and running
    assert lane_settled("paper", 3)
    again = _lane()
    assert again is not None
    assert again.last_cycle_status in ("ok", "no_signals"), again.last_cycle_summary
    assert_one_order_per_decision("paper")
    assert_lane_decisions("paper")
