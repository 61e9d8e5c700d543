"""The multi-process topology: two Celery workers and two `run_orderfeed_consumer` processes in
one consumer group on a 4-partition topic process everything exactly once.

- Four simulated-broker lanes; every lane's cycle is ticked several times at both workers at once
  (the lane lease lets one run it; decisions and client order ids are unique): each decision is
  sent once. The simulated broker's trade updates go to the topic (the order feed is on).
- Alongside, K Alpaca-shaped updates (new, partial fill, fill) for orders of two more lanes,
  keyed by symbol over every partition.
- Both consumers get partitions and process records; every update is stored once, every
  execution ends at its final state, with each transition once.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from orderfeed.models import OrderEvent
from orderfeed.tests.conftest import (  # noqa: F401 - kafka_bootstrap is a fixture
    assert_executions_filled_once,
    create_topics,
    fill_updates,
    kafka_bootstrap,
    make_order,
)
from tests.conftest import ROOT
from tests.faults.conftest import (
    assert_one_order_per_decision,
    beat,
    lane_settled,
    lanes_ready,
    signals_csv,
    tick,
    trading_env,
    wait_for,
)
from torghut_site.models import DeadLetterMessage, HeartbeatKind, ProcessHeartbeat
from trading.brokers.simulated import SimulatedBroker
from trading.models import Execution, TradeDecision
from trading.simbroker.models import SimTradeUpdate

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]

LANES = ["l1", "l2", "l3", "l4"]
FEED_LANES = ["feed-a", "feed-b"]
ORDERS_PER_FEED_LANE = 20  # K = 2 lanes x 20 orders x 3 updates = 120 records
PARTITIONS = 4


def test_two_workers_and_two_consumers_process_everything_exactly_once(
    workers,
    kafka_bootstrap,  # noqa: F811 - fixture
    tmp_path: Path,
    private_redis,
):
    suffix = uuid.uuid4().hex[:10]
    topic, dlq, group = f"scale.{suffix}", f"scale.dlq.{suffix}", f"scale-{suffix}"
    create_topics(kafka_bootstrap, (topic, PARTITIONS), (dlq, 1))
    lanes_ready(LANES)
    signals = signals_csv(tmp_path / "signals.csv")
    accounts = [{"label": label, "mode": "paper", "broker": "simulated"} for label in LANES]
    env = trading_env(
        signals,
        tmp_path,
        private_redis.url,
        TRADING_MULTI_ACCOUNT_ENABLED="true",
        TRADING_ACCOUNTS_JSON=json.dumps(accounts),
        TRADING_ORDER_FEED_ENABLED="true",
        TRADING_ORDER_FEED_BOOTSTRAP_SERVERS=kafka_bootstrap,
        TRADING_ORDER_FEED_TOPIC=topic,
        TRADING_ORDER_FEED_GROUP_ID=group,
        TRADING_ORDER_FEED_AUTO_OFFSET_RESET="earliest",
        TRADING_ORDER_FEED_POLL_MS="100",
        TRADING_ORDER_FEED_BATCH_SIZE="16",
        TRADING_ORDER_FEED_DLQ_TOPIC=dlq,
        KAFKA_CONSUMER_HEARTBEAT_SECONDS="1",  # the heartbeats say each one's partitions
    )
    # output goes to files, not pipes: a pipe nobody reads until the end fills up (64 KB of logs)
    # and blocks the consumer in the middle of the test
    logs = [(tmp_path / f"consumer{i}.out", tmp_path / f"consumer{i}.err") for i in range(2)]
    # one host, two consumers: each its own instance name (static membership)
    consumers = [_consumer(env, out, err, f"c{i}") for i, (out, err) in enumerate(logs)]
    try:
        # both in the group, the partitions split, before anything is published: a consumer that
        # joined late could find every record already taken by the other
        assert wait_for(lambda: _split(("c0", "c1")), timeout=90), [
            e.read_text()[-2000:] for _, e in logs
        ]
        for name in ("w1", "w2"):
            workers(name, env)
        client = beat(private_redis.url)
        for _ in range(3):  # both workers get ticks of every lane at once
            for label in LANES:
                tick(client, label)

        # the synthetic feed: updates for orders of two more lanes, keyed by symbol
        from confluent_kafka import Producer

        executions = []
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
        for lane_no, lane in enumerate(FEED_LANES):
            for n in range(ORDERS_PER_FEED_LANE):
                _, execution = make_order(
                    account_label=lane, symbol=f"S{lane_no}{n:02d}", n=1000 * lane_no + n
                )
                executions.append(execution)
                for update in fill_updates(execution, account=lane):
                    producer.produce(
                        topic, key=execution.symbol.encode(), value=json.dumps(update).encode()
                    )
        assert producer.flush(10) == 0
        synthetic = len(executions) * 3

        assert wait_for(lambda: all(lane_settled(label, 3) for label in LANES), timeout=120)
        assert wait_for(
            lambda: not SimTradeUpdate.objects.filter(published_at__isnull=True).exists(), 60
        )
        published = SimTradeUpdate.objects.count()
        assert wait_for(lambda: OrderEvent.objects.count() >= synthetic + published, 90), (
            OrderEvent.objects.count(),
            synthetic + published,
            [err.read_text()[-3000:] for _, err in logs],
        )
        # everything is stored: stop the consumers (SIGTERM: finish the batch, commit, leave);
        # an idle timeout alone could end one while a slow cycle still had updates to publish
        for c in consumers:
            c.send_signal(signal.SIGTERM)
        for c in consumers:
            c.wait(timeout=60)
    finally:
        for c in consumers:
            if c.poll() is None:
                c.kill()
                c.wait(timeout=10)

    assert [c.returncode for c in consumers] == [0, 0], [e.read_text()[-2000:] for _, e in logs]
    stats = [json.loads(out.read_text().strip().splitlines()[-1]) for out, _ in logs]
    # both processes took part: the group split the partitions between them
    assert all(s["messages"] > 0 for s in stats), stats
    assert sum(s["messages"] for s in stats) >= synthetic + published
    assert sum(s["dead_letters"] for s in stats) == 0
    assert DeadLetterMessage.objects.count() == 0

    # every record stored once: by position and by content
    events = list(OrderEvent.objects.values_list("source_partition", "source_offset"))
    assert len(events) == synthetic + published
    assert len(set(events)) == len(events)
    assert {p for p, _ in events} == set(range(PARTITIONS))
    assert OrderEvent.objects.values("event_fingerprint").distinct().count() == len(events)

    assert_executions_filled_once(executions)

    for label in LANES:
        assert_one_order_per_decision(label)
        broker = {
            o.client_order_id: o.status for o in SimulatedBroker(label).list_orders(status="all")
        }
        for execution in Execution.objects.filter(account_label=label):
            assert execution.status == broker[execution.client_order_id], label
    assert TradeDecision.objects.filter(account_label__in=LANES).count() == 3 * len(LANES)


def _split(names: tuple[str, ...]) -> bool:
    """Whether each named consumer's heartbeat holds partitions and together they hold all."""
    rows = ProcessHeartbeat.objects.filter(kind=HeartbeatKind.ORDERFEED_CONSUMER, name__in=names)
    held = [list(row.details.get("assigned", [])) for row in rows]
    return len(held) == len(names) and all(held) and sum(map(len, held)) == PARTITIONS


def _consumer(env: dict[str, str], out: Path, err: Path, name: str) -> subprocess.Popen[bytes]:
    with out.open("wb") as stdout, err.open("wb") as stderr:  # the child keeps its own copies
        return subprocess.Popen(
            [sys.executable, "manage.py", "run_orderfeed_consumer"]
            + ["--idle-exit-seconds", "300", "--name", name],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
