"""The Kafka broker killed (SIGKILL) and restarted under a running order-feed consumer.

A private noida-db broker (its own port and data dir), one real `manage.py
run_orderfeed_consumer` with the default offset reset (`earliest`), trade updates produced with
the project's idempotent producer settings (`torghut_site.kafka.config.producer_config`) for executions
in the database (the group starts from committed offsets, as a deployed one does), three updates
per order in three phases:

A. `new` updates, applied; the group's offsets committed and written to the broker's disk;
B. `partial_fill` updates, written to the broker's disk, applied by the consumer — and the broker
   is killed right then: the consumer's commit for B never reached the broker's disk;
C. `fill` updates produced while the broker is down: the producer keeps them and delivers them
   once the broker is back on the same port and data dir.

What must hold: the consumer process stays up and reconnects by itself (it re-joins the group,
whose membership the broker forgot); B comes back from the last durable commit and is recognised
as already stored (counted as duplicates, changes nothing); C is applied; every update is stored
and applied exactly once, every execution ends `filled`, nothing is dead-lettered.

About the broker (observed, noida-db 0.2.3): it keeps records, topics and committed offsets in
memory and writes them to `<data dir>/kafka.json` about once a second, so a SIGKILL loses what
was acknowledged in the last second — records as well as commits. Real Kafka appends every record
and commit to its log before acknowledging it (the page cache survives a killed process). The test
therefore waits for noida's write where real Kafka would already be durable (records; the commit
of phase A) and kills it where real Kafka too could be behind (the consumer's commit of phase B,
which librdkafka only sends every second). Two ways to lose updates that the exploration showed
are outside this test and written up in tests/faults/README.md: a restart that loses *all* the
group's commits with an operator's `auto.offset.reset=latest` skips what was produced around the
outage (the default starts after the newest stored event instead), and a
broker that loses acknowledged records hands their offsets to new records.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from orderfeed.models import OrderEvent
from orderfeed.tests.conftest import (
    assert_executions_filled_once,
    create_topics,
    fill_updates,
    make_order,
)
from tests.conftest import ROOT, free_port, json_lines
from tests.faults.conftest import KafkaBroker, trading_env, wait_for
from torghut_site.kafka.config import producer_config
from torghut_site.models import DeadLetterMessage, HeartbeatKind, ProcessHeartbeat
from trading.models import Execution, TradeDecision

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]

ORDERS = 20
PARTITIONS = 3


def _metrics(port: int) -> dict[str, float]:
    """The consumer process's order-feed counters (its TORGHUT_METRICS_PORT exporter)."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    values = {}
    for line in text.splitlines():
        if line.startswith("torghut_trading_order_feed_") and "_total " in line:
            name, value = line.rsplit(" ", 1)
            values[name.removeprefix("torghut_trading_order_feed_")] = float(value)
    return values


def _commit_start(broker: KafkaBroker, group: str, topic: str) -> None:
    """The group's committed offsets at the start of every partition, as a long-running
    deployment's group has them: the consumer starts there, not at `latest` (which it resolves
    only after the assignment, so records produced meanwhile would be skipped)."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    start = [TopicPartition(topic, p, 0) for p in range(PARTITIONS)]
    futures = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, start)])
    futures[group].result(timeout=10)
    assert _committed(broker, group) == dict.fromkeys(range(PARTITIONS), 0)


def _committed(broker: KafkaBroker, group: str) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    result = futures[group].result(timeout=10)
    return {tp.partition: tp.offset for tp in result.topic_partitions if tp.offset >= 0}


class Delivered:
    """Delivery reports of the test's producer: the log position of every acknowledged record."""

    def __init__(self) -> None:
        self.offsets: list[tuple[int, int]] = []
        self.errors: list[str] = []

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.offsets.append((msg.partition() or 0, msg.offset() or 0))
        else:
            self.errors.append(str(err))

    def ends(self) -> dict[int, int]:
        """Per partition, the offset after the last acknowledged record (the high watermark)."""
        ends: dict[int, int] = {}
        for partition, offset in self.offsets:
            ends[partition] = max(ends.get(partition, 0), offset + 1)
        return ends


def test_broker_killed_and_restarted_every_update_applied_once(private_kafka, tmp_path: Path):
    suffix = uuid.uuid4().hex[:10]
    topic, dlq, group = f"restart.{suffix}", f"restart.dlq.{suffix}", f"restart-{suffix}"
    create_topics(private_kafka.bootstrap, (topic, PARTITIONS), (dlq, 1))
    _commit_start(private_kafka, group, topic)
    executions = [make_order(symbol=f"R{n:02d}", n=n + 1)[1] for n in range(ORDERS)]
    metrics_port = free_port()
    env = trading_env(
        tmp_path / "none.csv",
        tmp_path,
        "memory://",
        TRADING_ORDER_FEED_ENABLED="true",
        TRADING_ORDER_FEED_BOOTSTRAP_SERVERS=private_kafka.bootstrap,
        TRADING_ORDER_FEED_TOPIC=topic,
        TRADING_ORDER_FEED_GROUP_ID=group,
        TRADING_ORDER_FEED_POLL_MS="100",
        TRADING_ORDER_FEED_BATCH_SIZE="4",
        TRADING_ORDER_FEED_DLQ_TOPIC=dlq,
        KAFKA_CONSUMER_HEARTBEAT_SECONDS="0.2",  # the heartbeat row names the assignment
        TORGHUT_METRICS_PORT=str(metrics_port),
        LOG_LEVEL="info",  # JSON lines: the consumer's group events with their details
    )
    log_path = tmp_path / "consumer.log"
    with open(log_path, "w") as log:
        consumer = subprocess.Popen(
            [sys.executable, "manage.py", "run_orderfeed_consumer"],
            cwd=ROOT, env=env, stdout=log, stderr=log, text=True,
        )  # fmt: skip
    try:
        _run(private_kafka, consumer, log_path, topic, group, executions, metrics_port)
    finally:
        if consumer.poll() is None:
            consumer.send_signal(signal.SIGCONT)
            consumer.kill()
            consumer.wait(timeout=10)


def _run(
    broker: KafkaBroker,
    consumer: subprocess.Popen[str],
    log_path: Path,
    topic: str,
    group: str,
    executions: list[Execution],
    metrics_port: int,
) -> None:
    def log() -> str:
        return log_path.read_text()[-5000:]

    def assigned() -> list[str]:
        row = ProcessHeartbeat.objects.filter(kind=HeartbeatKind.ORDERFEED_CONSUMER).first()
        return list(row.details.get("assigned", [])) if row else []

    def produce(step: int) -> None:
        for e in executions:
            update = fill_updates(e)[step]
            producer.produce(
                topic, key=e.symbol.encode(), value=json.dumps(update).encode(), on_delivery=sent
            )

    def stored(n: int) -> bool:
        return OrderEvent.objects.count() == n

    producer = Producer(producer_config(bootstrap_servers=broker.bootstrap, client_id="feed"))
    sent = Delivered()
    assert wait_for(lambda: len(assigned()) == PARTITIONS, timeout=30), log()

    # A: applied, committed, and the commit on the broker's disk
    produce(0)
    assert producer.flush(10) == 0
    after_a = sent.ends()
    assert wait_for(lambda: stored(ORDERS), timeout=30, step=0.01), log()
    assert wait_for(lambda: _committed(broker, group) == after_a, timeout=15), log()
    assert broker.sync()

    # B: on the broker's disk before the consumer sees it (paused meanwhile), then applied; the
    # broker dies at once, before the consumer's next commit (every second) reaches its disk
    consumer.send_signal(signal.SIGSTOP)
    produce(1)
    assert producer.flush(10) == 0
    after_b = sent.ends()
    assert broker.sync()
    consumer.send_signal(signal.SIGCONT)
    assert wait_for(lambda: stored(2 * ORDERS), timeout=30, step=0.002), log()
    broker.kill()

    # C: produced while the broker is down; the producer holds it
    produce(2)
    producer.poll(0.5)
    assert (len(producer), len(sent.offsets), sent.errors) == (ORDERS, 2 * ORDERS, [])
    assert consumer.poll() is None, log()  # the consumer is up and waiting for its broker

    # the broker is back on the same port and data dir. What it kept: every record of A and B,
    # and the commit of A (read before the consumer, paused, can commit anything)
    consumer.send_signal(signal.SIGSTOP)
    broker.start()
    restored = _committed(broker, group)
    assert restored == after_a
    assert producer.flush(20) == 0  # C delivered after the restart …
    assert sent.errors == []
    after_c = sent.ends()
    assert sum(after_c.values()) == 3 * ORDERS  # … after A and B: no offset handed out twice
    consumer.send_signal(signal.SIGCONT)

    # the consumer re-joins, gets B again from the last durable commit, then C
    redelivered = sum(after_b[p] - restored[p] for p in after_b)
    assert redelivered == ORDERS
    assert wait_for(lambda: stored(3 * ORDERS), timeout=30, step=0.05), log()
    counters: dict[str, float] = {}

    def caught_up() -> bool:
        counters.update(_metrics(metrics_port))
        return counters["messages_total"] == 3 * ORDERS + redelivered

    assert wait_for(caught_up, timeout=15), (counters, log())
    assert consumer.poll() is None, log()  # never exited: it reconnected by itself
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0, log()
    [stats] = [row for row in json_lines(log_path.read_text()) if "dead_letters" in row]
    assert stats["messages"] == 3 * ORDERS + redelivered
    assert (stats["dead_letters"], stats["transient_retries"], stats["handler_retries"]) == (
        0,
        0,
        0,
    )
    assert counters["events_persisted_total"] == 3 * ORDERS
    assert counters["duplicates_total"] == redelivered  # B the second time: found, not applied
    # in its log: the assignment lost with the broker (the commit of B with it), then re-joined
    events = [
        row for row in json_lines(log_path.read_text()) if row.get("logger") == "torghut_site.kafka"
    ]
    starts = ["partition start position"] * PARTITIONS
    assert [row["msg"] for row in events if row["level"] == "info"] == [
        "consumer started",
        "partitions assigned",
        *starts,
        "partitions revoked",
        "partitions assigned",
        *starts,
        "stop requested",
        "partitions revoked",
        "consumer stopped",
    ], log()
    # both times from the group's durable commit (phase A's offsets after the restart)
    assert [row["reason"] for row in events if row["msg"] == starts[0]] == ["committed"] * 6
    for row in events:
        if row["level"] != "info":
            assert (row["msg"], row["level"]) == ("commit on revoke failed", "warning"), row
            assert "_ASSIGNMENT_LOST" in row["error"], row
    _assert_applied_once(executions, topic)


def _assert_applied_once(executions: list[Execution], topic: str) -> None:
    assert DeadLetterMessage.objects.count() == 0
    assert OrderEvent.objects.count() == 3 * ORDERS
    assert set(OrderEvent.objects.values_list("outcome", flat=True)) == {"applied"}
    assert set(OrderEvent.objects.values_list("source_topic", flat=True)) == {topic}
    assert_executions_filled_once(executions)
    for execution in executions:
        events: list[Any] = list(
            OrderEvent.objects.filter(execution=execution)
            .order_by("source_offset")
            .values_list("event_type", flat=True)
        )
        assert events == ["new", "partial_fill", "fill"]
    assert set(TradeDecision.objects.values_list("status", flat=True)) == {"filled"}
