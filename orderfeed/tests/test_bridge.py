"""The trade-updates bridge against a real websocket stream server and a real Kafka broker."""

from __future__ import annotations

import gc
import io
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # where the stubs define it (admin re-exports it)
from django.core.management import call_command
from django.core.management.base import CommandError
from prometheus_client import REGISTRY

from orderfeed.bridge import HEARTBEAT_KIND, TradeUpdatesBridge
from tests.servers.alpaca_stream_server import AlpacaStreamServer
from torghut_site.models import ProcessHeartbeat
from torghut_site.services import instance_name

KEY, SECRET = "PKTESTKEY", "test-secret"
PARTITIONS = 3


def lane(label: str, broker: str, *, api_key: str = KEY) -> dict[str, Any]:
    return {
        "label": label,
        "mode": "paper",
        "broker": broker,
        "enabled": True,
        "api_key": api_key if broker == "alpaca" else "",
        "secret_key": SECRET if broker == "alpaca" else "",
        "base_url": "",
    }


def update(n: int, symbol: str, event: str = "new", **order: Any) -> dict[str, Any]:
    """A trade update as Alpaca's stream sends it (the `data` of a `trade_updates` frame)."""
    ts = f"2026-03-03T14:30:{n:02d}.123456Z"
    data: dict[str, Any] = {
        "event": event,
        "timestamp": ts,
        "order": {
            "id": f"order-{n}",
            "client_order_id": f"cid-{n}",
            "symbol": symbol,
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "qty": "10",
            "filled_qty": "0",
            "filled_avg_price": None,
            "status": event,
            "updated_at": ts,
            **order,
        },
    }
    if event == "fill":
        data.update(price="187.25", qty="10", position_qty="10")
    return data


def envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "channel": "trade_updates",
        "payload": data,
        "accountLabel": "alp",
        "version": 2,
        "source": "alpaca_stream",
    }


def create_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    futures[name].result(timeout=10)


def record_count(bootstrap: str, topic: str) -> int:
    """Records in the topic, from the partitions' high watermarks."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"wm-{uuid.uuid4().hex}"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)
        )
    finally:
        consumer.close()


def read_records(bootstrap: str, topic: str, *, expect: int) -> list[tuple[int, bytes, Any]]:
    """(partition, key, decoded value) of the first `expect` records, in (partition, offset)
    order; fails unless the topic holds exactly `expect` records."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-bridge-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    # fresh topics start at offset 0: assigning there skips the group join and offset lookup
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    records: list[tuple[int | None, int | None, bytes | None, Any]] = []
    deadline = time.monotonic() + 10
    try:
        while len(records) < expect and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=100, timeout=0.2):
                assert message.error() is None, message.error()
                records.append(
                    (
                        message.partition(),
                        message.offset(),
                        message.key(),
                        json.loads(message.value() or b"null"),
                    )
                )
    finally:
        consumer.close()
    assert len(records) == expect
    assert record_count(bootstrap, topic) == expect
    records.sort(key=lambda r: (r[0] or 0, r[1] or 0))
    return [(p or 0, key or b"", value) for p, _, key, value in records]


def by_key(records: list[tuple[int, bytes, Any]]) -> dict[bytes, tuple[set[int], list[Any]]]:
    """Per key: the partitions it landed on and its values in log order."""
    grouped: dict[bytes, tuple[set[int], list[Any]]] = {}
    for partition, key, value in records:
        partitions, values = grouped.setdefault(key, (set(), []))
        partitions.add(partition)
        values.append(value)
    return grouped


def wait_until(condition: Callable[[], bool], *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def metric(name: str) -> float:
    value = REGISTRY.get_sample_value(
        f"torghut_trading_order_feed_bridge_{name}_total", {"account": "alp"}
    )
    return value or 0.0


def run_command(*args: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    call_command("run_trade_updates_stream", *args, stdout=out)
    lanes: list[dict[str, Any]] = json.loads(out.getvalue())["lanes"]
    return lanes


@pytest.fixture
def stream() -> Iterator[AlpacaStreamServer]:
    server = AlpacaStreamServer(key=KEY, secret=SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def bridge_settings(settings, kafka_bootstrap):
    """An Alpaca lane `alp` (and a simulated lane the bridge must leave alone), a fresh topic."""
    settings.TRADING_LANES = [lane("paper", "simulated"), lane("alp", "alpaca")]
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = kafka_bootstrap
    settings.TRADING_ORDER_FEED_TOPIC = f"test.trade-updates.{uuid.uuid4().hex}"
    settings.TRADING_ORDER_FEED_TOPIC_V2 = ""
    settings.TRADING_ORDER_FEED_KAFKA = {}
    settings.TRADING_ORDER_FEED_BRIDGE_BACKOFF_MIN_SECONDS = 0.05
    settings.TRADING_ORDER_FEED_BRIDGE_BACKOFF_MAX_SECONDS = 0.4
    settings.KAFKA_CONSUMER_HEARTBEAT_SECONDS = 60.0
    create_topic(kafka_bootstrap, settings.TRADING_ORDER_FEED_TOPIC)
    return settings


def heartbeat_details() -> dict[str, Any]:
    heartbeat = ProcessHeartbeat.objects.get(kind=HEARTBEAT_KIND)
    assert heartbeat.name == f"alp:{instance_name()}"
    details: dict[str, Any] = heartbeat.details
    return details


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_updates_reach_the_topic_keyed_by_symbol_in_order(bridge_settings, kafka_bootstrap, stream):
    updates = [
        update(1, "AAPL"),
        update(2, "MSFT"),
        update(3, "AAPL", "fill", filled_qty="10", filled_avg_price="187.25", status="filled"),
        update(4, "MSFT", "canceled"),
    ]
    before = metric("updates")
    stream.push(*updates)  # binary frames, as the paper endpoint sends; queued until a listener
    lanes = run_command("--stream-url", stream.url, "--max-updates", "4")

    assert lanes == [
        {
            "account": "alp",
            "attempts": 1,
            "rate_limited": 0,
            "silence_reconnects": 0,
            "connections": 1,
            "reconnects": 0,
            "updates": 4,
            "delivered": 4,
            "produce_errors": 0,
            "producer_fatal_errors": 0,
            "resent": 0,
            "last_error": "",
            "backoff_seconds": [],
        }
    ]
    assert (stream.connections, stream.auth_attempts) == (1, 1)
    records = read_records(kafka_bootstrap, bridge_settings.TRADING_ORDER_FEED_TOPIC, expect=4)
    grouped = by_key(records)
    assert sorted(grouped) == [b"AAPL", b"MSFT"]
    assert grouped[b"AAPL"][1] == [envelope(updates[0]), envelope(updates[2])]
    assert grouped[b"MSFT"][1] == [envelope(updates[1]), envelope(updates[3])]
    assert all(len(partitions) == 1 for partitions, _ in grouped.values())
    assert metric("updates") - before == 4
    assert heartbeat_details() == {
        "state": "stopped",
        "account": "alp",
        "topic": bridge_settings.TRADING_ORDER_FEED_TOPIC,
        "endpoint": stream.url,
        "connected": False,
        "updates": 4,
        "delivered": 4,
        "produce_errors": 0,
        "producer_fatal_errors": 0,
        "resent": 0,
        "connections": 1,
        "reconnects": 0,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_topic_v2_wins_over_the_v1_topic(bridge_settings, kafka_bootstrap, stream):
    topic_v2 = f"test.trade-updates.v2.{uuid.uuid4().hex}"
    create_topic(kafka_bootstrap, topic_v2)
    bridge_settings.TRADING_ORDER_FEED_TOPIC_V2 = topic_v2
    data = update(7, "NVDA")
    stream.push(data)

    [stats] = run_command("--account", "alp", "--stream-url", stream.url, "--max-updates", "1")

    assert (stats["updates"], stats["delivered"]) == (1, 1)
    [(_, key, value)] = read_records(kafka_bootstrap, topic_v2, expect=1)
    assert (key, value) == (b"NVDA", envelope(data))
    assert record_count(kafka_bootstrap, bridge_settings.TRADING_ORDER_FEED_TOPIC) == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_reconnect_after_a_network_loss_reconciles_once_and_keeps_bridging(
    bridge_settings, kafka_bootstrap
):
    stream = AlpacaStreamServer(key=KEY, secret=SECRET, binary=False).start()  # text frames
    reconciled: list[str] = []
    bridge = TradeUpdatesBridge.for_lane("alp", stream_url=stream.url, reconcile=reconciled.append)
    before = {name: metric(name) for name in ("updates", "reconnects", "produce_errors")}
    thread = threading.Thread(target=bridge.run)
    thread.start()
    try:
        first, second = update(1, "AAPL"), update(2, "AAPL", "fill", status="filled")
        stream.push(first)
        wait_until(lambda: bridge.stats.updates == 1)
        assert reconciled == []  # the first connection is no reconnect

        assert stream.drop_connections() == 1
        wait_until(lambda: reconciled == ["alp"] and stream.listening == 1)
        assert bridge.stats.connected is True
        stream.push(second)
        wait_until(lambda: bridge.stats.updates == 2)
    finally:
        bridge.stop()
        thread.join(timeout=5)
        stream.stop()
    assert not thread.is_alive()

    assert reconciled == ["alp"]
    assert (stream.connections, stream.auth_attempts) == (2, 2)
    assert (bridge.stats.attempts, bridge.stats.connections, bridge.stats.reconnects) == (2, 2, 1)
    assert list(bridge.stats.backoff_seconds) == [0.05]  # reset after the good first session
    assert (bridge.stats.delivered, bridge.stats.produce_errors) == (2, 0)
    records = read_records(kafka_bootstrap, bridge_settings.TRADING_ORDER_FEED_TOPIC, expect=2)
    assert [(key, value) for _, key, value in records] == [
        (b"AAPL", envelope(first)),
        (b"AAPL", envelope(second)),
    ]
    assert {name: metric(name) - value for name, value in before.items()} == {
        "updates": 2,
        "reconnects": 1,
        "produce_errors": 0,
    }
    details = heartbeat_details()
    assert (details["state"], details["updates"], details["reconnects"]) == ("stopped", 2, 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_update_kafka_refuses_is_counted_and_reconciled_and_the_producer_kept(
    bridge_settings, kafka_bootstrap, stream
):
    """A non-fatal produce error (a record over `message.max.bytes`, refused by `produce()`):
    the update is counted as a produce error and reconciled; the producer stays."""
    bridge_settings.TRADING_ORDER_FEED_KAFKA = {"message.max.bytes": "1000"}
    reconciled: list[str] = []
    bridge = TradeUpdatesBridge.for_lane("alp", stream_url=stream.url, reconcile=reconciled.append)
    first = bridge.producer
    before = {name: metric(name) for name in ("updates", "produce_errors", "producer_fatal_errors")}
    small, large, after = update(1, "AAPL"), update(2, "AAPL", note="x" * 1000), update(3, "MSFT")
    thread = threading.Thread(target=bridge.run)
    thread.start()
    try:
        stream.push(small, large)
        wait_until(lambda: bridge.stats.produce_errors == 1 and reconciled == ["alp"])
        stream.push(after)
        wait_until(lambda: bridge.stats.delivered == 2)
    finally:
        bridge.stop()
        thread.join(timeout=15)
    assert not thread.is_alive()

    assert bridge.producer is first
    assert reconciled == ["alp"]
    assert (bridge.stats.updates, bridge.stats.delivered, bridge.stats.produce_errors) == (2, 2, 1)
    assert (bridge.stats.producer_fatal_errors, bridge.stats.resent) == (0, 0)
    records = read_records(kafka_bootstrap, bridge_settings.TRADING_ORDER_FEED_TOPIC, expect=2)
    assert sorted((key, value["payload"]["order"]["id"]) for _, key, value in records) == [
        (b"AAPL", "order-1"),
        (b"MSFT", "order-3"),
    ]
    assert {name: metric(name) - value for name, value in before.items()} == {
        "updates": 2,
        "produce_errors": 1,
        "producer_fatal_errors": 0,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_wrong_credentials_back_off_produce_nothing_and_stop_on_sigterm(
    bridge_settings, kafka_bootstrap, stream
):
    bridge_settings.TRADING_LANES = [lane("alp", "alpaca", api_key="wrong-key")]
    original = signal.getsignal(signal.SIGTERM)
    window = 1.0
    started = time.monotonic()

    def terminate() -> None:
        # SIGTERM once the command has installed its handler, `window` seconds after the start
        wait_until(lambda: signal.getsignal(signal.SIGTERM) is not original)
        time.sleep(max(0.0, window - (time.monotonic() - started)))
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate)
    killer.start()
    [stats] = run_command("--stream-url", stream.url, "--exit-after-seconds", "10")
    elapsed = time.monotonic() - started
    killer.join()

    assert elapsed < window + 0.5  # stopped by SIGTERM, not by --exit-after-seconds
    assert signal.getsignal(signal.SIGTERM) is original
    # full jitter under caps of 0.05, 0.1, 0.2, 0.4 s, never below 0.05 s: fewer attempts fit in
    # the window than the ~20 a fixed 0.05 s would allow
    assert 3 <= stream.auth_attempts <= 12
    assert stream.connections == stream.auth_attempts == stats["attempts"]
    for i, wait in enumerate(stats["backoff_seconds"]):
        assert 0.05 <= wait <= min(0.4, 0.05 * 2**i)
    assert len(stats["backoff_seconds"]) in (stats["attempts"] - 1, stats["attempts"])
    assert (stats["connections"], stats["updates"], stats["reconnects"]) == (
        0,
        0,
        stats["attempts"] - 1,
    )
    assert stats["last_error"] == "StreamAuthError: failed to authenticate"
    assert record_count(kafka_bootstrap, bridge_settings.TRADING_ORDER_FEED_TOPIC) == 0


def test_refuses_to_start_without_bootstrap_servers(settings):
    settings.TRADING_LANES = [lane("alp", "alpaca")]
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = ""
    with pytest.raises(CommandError) as excinfo:
        call_command("run_trade_updates_stream")
    assert str(excinfo.value) == (
        "TRADING_ORDER_FEED_BOOTSTRAP_SERVERS is empty: the bridge has no Kafka to produce to"
    )


def test_refuses_to_start_without_an_alpaca_lane(settings):
    settings.TRADING_LANES = [lane("paper", "simulated")]
    settings.TRADING_ORDER_FEED_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    with pytest.raises(CommandError) as excinfo:
        call_command("run_trade_updates_stream")
    assert str(excinfo.value) == (
        "no enabled account lane uses the alpaca broker: nothing to bridge "
        "(simulated lanes publish their own trade updates)"
    )
    with pytest.raises(CommandError) as excinfo:
        call_command("run_trade_updates_stream", "--account", "paper")
    assert str(excinfo.value) == (
        "lane 'paper' uses the simulated broker, not alpaca: "
        "only Alpaca lanes have a trade-updates stream"
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_refuses_a_missing_topic_before_opening_the_stream(
    bridge_settings, kafka_bootstrap, stream
):
    missing = f"test.trade-updates.missing.{uuid.uuid4().hex}"
    bridge_settings.TRADING_ORDER_FEED_TOPIC = missing
    stream.push(update(1, "AAPL"))
    with pytest.raises(CommandError) as excinfo:
        run_command("--stream-url", stream.url, "--max-updates", "1")
    assert str(excinfo.value) == (
        f"trade-updates bridge alp: Kafka topic '{missing}' does not exist on {kafka_bootstrap}; "
        "run `manage.py kafka_topics ensure` (topics are never auto-created)"
    )
    # the update stays with the broker: no stream was opened, no topic created
    assert stream.connections == 0
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap, "allow.auto.create.topics": False})
    assert missing not in admin.list_topics(timeout=10).topics


def rdkafka_threads() -> int:
    """librdkafka's threads in this process (`rdk:main`, `rdk:broker<n>`, ...)."""
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm", encoding="utf-8") as comm:
                count += comm.read().startswith("rdk:")
        except OSError:  # the thread ended meanwhile
            continue
    return count


def settled_rdkafka_threads() -> int:
    """The count once clients that earlier tests of this process dropped are collected and
    their threads gone (the count holds for half a second), so only this test's clients move it."""
    gc.collect()
    last, since = rdkafka_threads(), time.monotonic()
    deadline = since + 10.0
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = rdkafka_threads()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            break
    return last


@pytest.mark.django_db(transaction=True)
@pytest.mark.services
def test_a_stopped_bridge_leaves_no_producer_thread_reconnecting(bridge_settings, stream):
    """A producer's threads live (and, Kafka gone, reconnect) for as long as it does. Once the
    bridge has stopped, its producer is closed (librdkafka's threads gone) though the bridge
    object is still referenced, as a test or a command holding it would."""
    before = settled_rdkafka_threads()
    bridge = TradeUpdatesBridge.for_lane("alp", stream_url=stream.url, reconcile=lambda _: None)
    thread = threading.Thread(target=bridge.run)
    thread.start()
    try:
        wait_until(lambda: stream.listening == 1)
        assert rdkafka_threads() > before  # the producer's threads run meanwhile
    finally:
        bridge.stop()
        thread.join(timeout=15)
    assert not thread.is_alive()

    wait_until(lambda: rdkafka_threads() <= before, timeout=2.0)
    with pytest.raises(RuntimeError, match="closed"):
        bridge.producer.poll(0)
