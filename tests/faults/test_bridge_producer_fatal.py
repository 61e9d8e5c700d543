"""The trade-updates bridge's Kafka producer after a broker restart: fatal and non-fatal errors.

A private noida-db broker (its own port and data dir), a real `TradeUpdatesBridge` in a thread of
the test with the production producer settings (`torghut_site.kafka.config.producer_config`: idempotent,
acks=all), fed by the Alpaca stream stand-in, on a one-partition topic (every update keyed `AAPL`).

Fatal: noida-db writes its state to disk about once a second, so a SIGKILL right after a write
loses the records it acknowledged since then (phase B), and with them the sequence numbers of the
producer that sent them. Back on the same data dir it refuses that producer's next records (C,
produced while it was down) with OUT_OF_ORDER_SEQUENCE_NUMBER, which librdkafka makes fatal: the
producer can never produce again. The bridge must replace it, produce C again on the new one,
trigger a reconciliation (B is lost and only the broker REST API can tell), and keep bridging (D).

Non-fatal: an update produced while the broker is down times out (`message.timeout.ms`); that is
counted and reconciled as before, and the same producer goes on once the broker is back.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from orderfeed.bridge import TradeUpdatesBridge
from orderfeed.tests.conftest import create_topics
from orderfeed.tests.test_bridge import (
    KEY,
    SECRET,
    envelope,
    heartbeat_details,
    lane,
    metric,
    update,
    wait_until,
)
from tests.faults.conftest import KafkaBroker
from tests.servers.alpaca_stream_server import AlpacaStreamServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.services]

COUNTERS = ("updates", "produce_errors", "producer_fatal_errors", "reconnects")


def log_end(bootstrap: str, topic: str) -> int:
    """The partition's high watermark: records the broker has appended (and acknowledged)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"wm-{uuid.uuid4().hex}"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


def log_values(bootstrap: str, topic: str) -> list[Any]:
    """Every record of the topic's one partition, decoded, in log order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex}"})
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[Any] = []
        deadline = time.monotonic() + 10
        while len(values) < end and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=100, timeout=0.2):
                assert message.error() is None, message.error()
                values.append(json.loads(message.value() or b"null"))
        assert len(values) == end
        return values
    finally:
        consumer.close()


@pytest.fixture
def bridge_on(settings, private_kafka: KafkaBroker) -> Iterator[dict[str, Any]]:
    """Settings for lane `alp` on the private broker, a fresh topic, the stream stand-in."""
    topic = f"bridge.{uuid.uuid4().hex[:12]}"
    create_topics(private_kafka.bootstrap, (topic, 1))
    settings.TRADING_LANES = [lane("alp", "alpaca")]
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = private_kafka.bootstrap
    settings.TRADING_ORDER_FEED_TOPIC = topic
    settings.TRADING_ORDER_FEED_TOPIC_V2 = ""
    settings.TRADING_ORDER_FEED_KAFKA = {}
    settings.TRADING_ORDER_FEED_BRIDGE_BACKOFF_MIN_SECONDS = 0.05
    settings.TRADING_ORDER_FEED_BRIDGE_BACKOFF_MAX_SECONDS = 0.4
    settings.KAFKA_CONSUMER_HEARTBEAT_SECONDS = 60.0
    stream = AlpacaStreamServer(key=KEY, secret=SECRET).start()
    try:
        yield {"topic": topic, "stream": stream, "settings": settings}
    finally:
        stream.stop()


def start(stream: AlpacaStreamServer) -> tuple[TradeUpdatesBridge, threading.Thread, list[str]]:
    reconciled: list[str] = []
    bridge = TradeUpdatesBridge.for_lane("alp", stream_url=stream.url, reconcile=reconciled.append)
    thread = threading.Thread(target=bridge.run)
    thread.start()
    return bridge, thread, reconciled


def stop(bridge: TradeUpdatesBridge, thread: threading.Thread) -> None:
    bridge.stop()
    thread.join(timeout=20)
    assert not thread.is_alive()


A = [update(n, "AAPL") for n in (1, 2, 3)]
B = [update(n, "AAPL") for n in (4, 5, 6)]  # acknowledged, then lost by the broker
C = [update(n, "AAPL") for n in (7, 8, 9)]  # produced while the broker is down
D = [update(n, "AAPL") for n in (10, 11)]


def acknowledged_then_lost(
    bridge: TradeUpdatesBridge, stream: AlpacaStreamServer, broker: KafkaBroker, topic: str
) -> None:
    """A delivered and on the broker's disk; B delivered, then lost with the broker (killed);
    C handed to the producer while the broker is down."""
    stream.push(*A)
    wait_until(lambda: bridge.stats.delivered == 3, timeout=10)
    assert broker.sync()
    # B is appended and acknowledged right after that write; the broker dies before its next one
    # (~1 s later). The bridge serves delivery reports at least every second: it learns of B's
    # acknowledgement after the kill
    pushed_b = time.time()
    stream.push(*B)
    wait_until(lambda: log_end(broker.bootstrap, topic) == 6, timeout=5)
    time.sleep(0.1)  # the acknowledgement on its way back to the producer
    broker.kill()
    assert broker.persisted_at() < pushed_b, "noida wrote B to disk before the kill"
    wait_until(lambda: bridge.stats.delivered == 6, timeout=5)

    stream.push(*C)
    wait_until(lambda: bridge.stats.updates == 9, timeout=10)
    assert (bridge.stats.delivered, bridge.stats.producer_fatal_errors) == (6, 0)


def test_fatal_producer_error_replaces_the_producer_and_resends_what_was_unconfirmed(
    bridge_on, private_kafka: KafkaBroker
):
    stream: AlpacaStreamServer = bridge_on["stream"]
    topic: str = bridge_on["topic"]
    before = {name: metric(name) for name in COUNTERS}
    bridge, thread, reconciled = start(stream)
    try:
        acknowledged_then_lost(bridge, stream, private_kafka, topic)
        first = bridge.producer

        # the broker is back without B: the old producer's next records are out of sequence
        private_kafka.start()
        wait_until(lambda: bridge.stats.delivered == 9, timeout=15)
        assert bridge.producer is not first
        assert (bridge.stats.producer_fatal_errors, bridge.stats.resent) == (1, 3)
        wait_until(lambda: reconciled == ["alp"])

        # D: the new producer keeps bridging
        stream.push(*D)
        wait_until(lambda: bridge.stats.delivered == 11, timeout=10)
    finally:
        stop(bridge, thread)

    assert reconciled == ["alp"]  # once, for the replaced producer: the stream never dropped
    assert (stream.connections, bridge.stats.reconnects) == (1, 0)
    assert (bridge.stats.updates, bridge.stats.produce_errors) == (11, 0)
    # A, then C produced again on the new producer, then D; B was acknowledged and then lost by
    # the broker: no producer can bring it back, the reconciliation is what covers it
    assert log_values(private_kafka.bootstrap, topic) == [envelope(u) for u in A + C + D]
    assert {name: metric(name) - value for name, value in before.items()} == {
        "updates": 11,
        "produce_errors": 0,
        "producer_fatal_errors": 1,
        "reconnects": 0,
    }
    details = heartbeat_details()
    assert (details["state"], details["delivered"], details["producer_fatal_errors"]) == (
        "stopped",
        11,
        1,
    )
    assert details["resent"] == 3


def test_fatal_producer_error_while_stopping_still_delivers(bridge_on, private_kafka: KafkaBroker):
    """Stopped with C unconfirmed and the broker down: the final flush meets the fatal error once
    the broker is back, and C goes out on a new producer before the bridge exits."""
    stream: AlpacaStreamServer = bridge_on["stream"]
    topic: str = bridge_on["topic"]
    bridge, thread, reconciled = start(stream)
    try:
        acknowledged_then_lost(bridge, stream, private_kafka, topic)
        first = bridge.producer
        bridge.stop()
        wait_until(lambda: stream.connections == 1 and stream.listening == 0)  # flushing now
        private_kafka.start()
    finally:
        stop(bridge, thread)

    assert bridge.producer is not first
    assert (bridge.stats.updates, bridge.stats.delivered, bridge.stats.produce_errors) == (9, 9, 0)
    assert (bridge.stats.producer_fatal_errors, bridge.stats.resent) == (1, 3)
    assert reconciled == ["alp"]
    assert log_values(private_kafka.bootstrap, topic) == [envelope(u) for u in A + C]
    details = heartbeat_details()
    assert (details["state"], details["delivered"], details["producer_fatal_errors"]) == (
        "stopped",
        9,
        1,
    )


def test_non_fatal_delivery_error_keeps_the_producer(bridge_on, private_kafka: KafkaBroker):
    bridge_on["settings"].TRADING_ORDER_FEED_KAFKA = {"message.timeout.ms": "3000"}
    stream: AlpacaStreamServer = bridge_on["stream"]
    a = [update(n, "AAPL") for n in (1, 2)]
    lost, after = update(3, "AAPL"), update(4, "AAPL")
    before = {name: metric(name) for name in COUNTERS}
    bridge, thread, reconciled = start(stream)
    try:
        stream.push(*a)
        wait_until(lambda: bridge.stats.delivered == 2, timeout=10)
        assert private_kafka.sync()  # nothing acknowledged is lost with the broker
        first = bridge.producer
        private_kafka.kill()

        stream.push(lost)  # times out in the producer's queue after 3 s
        wait_until(lambda: bridge.stats.produce_errors == 1, timeout=10)
        wait_until(lambda: reconciled == ["alp"])

        private_kafka.start()
        stream.push(after)
        wait_until(lambda: bridge.stats.delivered == 3, timeout=15)
        assert bridge.producer is first
    finally:
        stop(bridge, thread)

    assert reconciled == ["alp"]
    assert (bridge.stats.producer_fatal_errors, bridge.stats.resent) == (0, 0)
    assert (bridge.stats.updates, bridge.stats.delivered, bridge.stats.produce_errors) == (4, 3, 1)
    assert log_values(private_kafka.bootstrap, bridge_on["topic"]) == [
        envelope(u) for u in [*a, after]
    ]
    assert {name: metric(name) - value for name, value in before.items()} == {
        "updates": 4,
        "produce_errors": 1,
        "producer_fatal_errors": 0,
        "reconnects": 0,
    }
