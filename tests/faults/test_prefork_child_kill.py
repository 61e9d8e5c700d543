"""kill -9 of a Celery prefork pool CHILD in the middle of a trade cycle; the main worker lives.

One real `celery worker --pool=prefork --concurrency=1` on a private Redis. Its pool child runs
the lane's cycle and kills itself right after the simulated broker accepted the first order and
before our database recorded it (`TORGHUT_FAULT_INJECT=after_broker_submit`, armed once through
`TORGHUT_FAULT_INJECT_ONCE_FILE`: the variable is inherited by every child the pool starts, and
without the marker the redelivered task would crash its new child too, for ever).

What must happen, with the project's `task_acks_late` + `task_reject_on_worker_lost`:
- the main worker process survives and starts a new child (no supervisor needed);
- the task is not lost: the main process sees `WorkerLostError` and rejects the message with
  requeue, so Redis hands it back at once and the new child runs it again. That re-run finds
  the lane still leased by the dead child (`lane_busy`) — the lease is per process and lapses
  after TRADING_LANE_LEASE_SECONDS;
- once the lease lapsed, the next beat tick completes the cycle: the dead child's order is
  adopted from the broker by client order id (not sent again) and every decision has exactly
  one order.
"""

from __future__ import annotations

import re
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.conftest import ROOT
from tests.faults.conftest import (
    CELERY,
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

CYCLE = "trading.tasks.run_trade_cycle"


def _children(pid: int) -> set[int]:
    """The process's children (whichever of its threads forked them)."""
    found: set[int] = set()
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.update(int(p) for p in path.read_text().split())
        except OSError:  # the thread ended meanwhile
            continue
    return found


def _cycle_runs(log: str) -> list[tuple[str, str]]:
    """(task id, outcome) of every finished run of the cycle task, in log order."""
    return re.findall(
        rf"Task {re.escape(CYCLE)}\[([0-9a-f-]+)\] succeeded in [0-9.]+s: .*?'status': '(\w+)'",
        log,
    )


def test_pool_child_killed_after_broker_accept_task_redelivered_main_worker_survives(
    private_redis, tmp_path: Path
):
    lanes_ready(["paper"])
    signals = signals_csv(tmp_path / "signals.csv")
    marker = tmp_path / "fault-fired"
    env = trading_env(
        signals,
        tmp_path,
        private_redis.url,
        TORGHUT_FAULT_INJECT="after_broker_submit",
        TORGHUT_FAULT_INJECT_ONCE_FILE=str(marker),
        LOG_LEVEL="info",  # with --loglevel=info: the worker's task received/succeeded lines
        LOG_FORMAT="text",
    )
    log_path = tmp_path / "worker-prefork.log"
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [CELERY, "-A", "torghut_site", "worker", "--pool=prefork", "--concurrency=1",
             "-Q", "torghut", "-n", "prefork@faults", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--loglevel=info"],
            cwd=ROOT, env=env, stdout=log, stderr=log, text=True,
        )  # fmt: skip
    try:
        _run(worker, private_redis, log_path, marker)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)  # its pool children exit with it (parent death)
            worker.wait(timeout=20)


def _run(worker: subprocess.Popen[str], redis, log_path: Path, marker: Path) -> None:
    def log() -> str:
        return log_path.read_text()

    assert wait_for(lambda: "ready." in log(), timeout=60), log()
    [first_child] = _children(worker.pid)
    client = beat(redis.url)
    tick(client, "paper")

    # the child crashed at the worst point: the broker has the order, we have no execution
    assert wait_for(marker.exists, timeout=60), log()
    assert wait_for(lambda: "WorkerLostError" in log(), timeout=30), log()
    assert worker.poll() is None, log()  # the main worker is alive …
    assert wait_for(lambda: _children(worker.pid) - {first_child} != set(), timeout=30)
    assert first_child not in _children(worker.pid)  # … with a new child
    lost = re.findall(
        r"Process 'ForkPoolWorker-\d+' pid:(\d+) exited with 'signal 9 \(SIGKILL\)'", log()
    )
    assert lost == [str(first_child)], log()
    decision = TradeDecision.objects.get()
    assert decision.status == "submitting"
    assert [o.client_order_id for o in SimulatedBroker("paper").list_orders(status="all")] == [
        decision.client_order_id
    ]

    # redelivered at once (rejected with requeue), run again by the new child: the lane is still
    # leased by the dead child
    assert wait_for(lambda: len(_cycle_runs(log())) == 1, timeout=30), log()
    received = re.findall(rf"Task {re.escape(CYCLE)}\[([0-9a-f-]+)\] received", log())
    [(task_id, outcome)] = _cycle_runs(log())
    assert received == [task_id, task_id], log()  # the same message, twice
    assert outcome == "lane_busy"
    assert Execution.objects.count() == 0
    queue = redis.client()
    # acknowledged after that run: nothing left in flight
    assert wait_for(lambda: (queue.llen("torghut"), queue.hlen("unacked")) == (0, 0), timeout=10)

    # the lease lapses (10 s here; moved forward rather than waited for); the next tick
    # completes the cycle
    LaneState.objects.filter(account_label="paper").update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    tick(client, "paper")
    assert wait_for(lambda: lane_settled("paper", 3), timeout=60), (
        list(TradeDecision.objects.values_list("status", flat=True)),
        log(),
    )
    assert wait_for(lambda: len(_cycle_runs(log())) == 2, timeout=30), log()
    assert [outcome for _, outcome in _cycle_runs(log())] == ["lane_busy", "ok"]
    assert worker.poll() is None, log()
    assert len(re.findall(r"exited with 'signal 9", log())) == 1  # one child lost, once
    client_ids = assert_one_order_per_decision("paper")
    assert_lane_decisions("paper")
    assert client_ids.count(decision.client_order_id) == 1
    assert Execution.objects.get(client_order_id=decision.client_order_id).adopted is True
